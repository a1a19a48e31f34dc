// Store::RewriteDatasetVersions: the erasure path's one transaction (rewrites, new version, record).
#include <gtest/gtest.h>

#include <filesystem>

#include "common/crypto.h"
#include "store/store.h"

namespace lathe {
namespace {
namespace fs = std::filesystem;

class RewriteVersionsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("lathe-rewrite-" + RandomHex(6));
    fs::create_directories(dir_);
    auto s = OpenSqliteStore((dir_ / "meta.db").string());
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    store_ = std::move(s).value();
    ASSERT_TRUE(store_->EnsureProject("p").ok());
    for (const char* blob : {"r-1", "r-2"}) {
      DatasetVersionRecord v{.project = "p", .dataset = "d", .rows = 10, .blob = blob, .created_at = 100};
      ASSERT_TRUE(store_->AddDatasetVersion(v).ok());
    }
  }
  void TearDown() override {
    store_.reset();
    fs::remove_all(dir_);
  }
  DatasetVersionRecord Get(int64_t v) { return store_->GetDatasetVersion("p", "d", v).value(); }

  fs::path dir_;
  std::unique_ptr<Store> store_;
};

TEST_F(RewriteVersionsTest, SwitchesVersionsAppendsAndRecordsInOneTransaction) {
  DatasetVersionRecord one = Get(1), two = Get(2);
  one.blob = "r-1b";
  one.rows = 9;
  one.lineage = {{"erasures", Json::array({{{"erasure", "e1"}}})}};
  two.blob = "r-2b";
  two.rows = 8;
  DatasetVersionRecord added = two;
  added.created_at = 200;
  DocumentRecord doc{.project = "p", .kind = "erasure", .name = "e1", .body = {{"rows_removed", 3}}};
  auto n = store_->RewriteDatasetVersions({{one, "r-1"}, {two, "r-2"}}, added, doc);
  ASSERT_TRUE(n.ok()) << n.status().ToString();
  EXPECT_EQ(*n, 3);
  EXPECT_EQ(Get(1).blob, "r-1b");
  EXPECT_EQ(Get(1).rows, 9);
  EXPECT_EQ(Get(1).created_at, 100);  // history keeps its times
  EXPECT_TRUE(Get(1).lineage.contains("erasures"));
  EXPECT_EQ(Get(2).blob, "r-2b");
  EXPECT_EQ(Get(3).blob, "r-2b");
  EXPECT_EQ(Get(3).created_at, 200);
  EXPECT_EQ(store_->GetDocument("p", "erasure", "e1", 0).value().body["rows_removed"], 3);
  EXPECT_FALSE(*store_->BlobReferenced("r-1"));
}

TEST_F(RewriteVersionsTest, AConcurrentChangeAbortsEverything) {
  DatasetVersionRecord one = Get(1), two = Get(2);
  one.blob = "r-1b";
  two.blob = "r-2b";
  DocumentRecord doc{.project = "p", .kind = "erasure", .name = "e2"};
  // Version 2's blob is no longer the one the caller read: nothing may change, not even version 1.
  auto n = store_->RewriteDatasetVersions({{one, "r-1"}, {two, "r-other"}}, Get(2), doc);
  ASSERT_FALSE(n.ok());
  EXPECT_EQ(n.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(Get(1).blob, "r-1");
  EXPECT_EQ(Get(0).version, 2);
  EXPECT_FALSE(store_->GetDocument("p", "erasure", "e2", 0).ok());
  // Nothing to rewrite and nothing to add is a no-op that returns 0.
  auto none = store_->RewriteDatasetVersions({}, std::nullopt, std::nullopt);
  ASSERT_TRUE(none.ok());
  EXPECT_EQ(*none, 0);
}

}  // namespace
}  // namespace lathe
