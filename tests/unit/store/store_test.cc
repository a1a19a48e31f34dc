#include <gtest/gtest.h>
#include <sqlite3.h>

#include <filesystem>

#include "common/clock.h"
#include "common/crypto.h"
#include "store/blob_store.h"
#include "store/store.h"

namespace lathe {
namespace {
namespace fs = std::filesystem;

class StoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("lathe-store-" + RandomHex(6));
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string DbPath() const { return (dir_ / "meta.db").string(); }
  fs::path dir_;
};

TEST_F(StoreTest, MigratesToCurrentVersionAndReopens) {
  {
    auto store = OpenSqliteStore(DbPath());
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    EXPECT_EQ((*store)->SchemaVersion(), CurrentSchemaVersion());
    ASSERT_TRUE((*store)->EnsureProject("default").ok());
  }
  auto again = OpenSqliteStore(DbPath());
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE(*(*again)->ProjectExists("default"));
}

TEST_F(StoreTest, RefusesNewerSchema) {
  { ASSERT_TRUE(OpenSqliteStore(DbPath()).ok()); }
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(DbPath().c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db, "INSERT INTO schema_version VALUES (999, 0)", nullptr, nullptr, nullptr), SQLITE_OK);
  sqlite3_close(db);
  auto store = OpenSqliteStore(DbPath());
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(store.status().message().find("newer"), std::string::npos);
}

TEST_F(StoreTest, DatasetVersionsAreNumberedPerDataset) {
  auto store = std::move(OpenSqliteStore(DbPath())).value();
  ASSERT_TRUE(store->EnsureProject("default").ok());
  DatasetVersionRecord rec;
  rec.project = "default";
  rec.dataset = "iris";
  rec.blob = "r-x";
  EXPECT_EQ(*store->AddDatasetVersion(rec), 1);
  EXPECT_EQ(*store->AddDatasetVersion(rec), 2);
  rec.dataset = "other";
  EXPECT_EQ(*store->AddDatasetVersion(rec), 1);
  auto latest = store->GetDatasetVersion("default", "iris", 0);
  ASSERT_TRUE(latest.ok());
  EXPECT_EQ(latest->version, 2);
  EXPECT_EQ(store->GetDatasetVersion("default", "iris", 7).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(store->GetDatasetVersion("default", "nope", 0).status().code(), StatusCode::kNotFound);
  auto list = store->ListDatasets("default");
  ASSERT_TRUE(list.ok());
  ASSERT_EQ(list->size(), 2u);
  EXPECT_EQ((*list)[0].name, "iris");
  EXPECT_EQ((*list)[0].latest_version, 2);
}

TEST_F(StoreTest, JobLifecycleClaimFinishCancelAndCrashRecovery) {
  auto store = std::move(OpenSqliteStore(DbPath())).value();
  JobRecord a{.id = "job_a", .kind = "train", .project = "default", .created_at = 1};
  JobRecord b{.id = "job_b", .kind = "train", .project = "default", .created_at = 2};
  JobRecord c{.id = "job_c", .kind = "train", .project = "default", .created_at = 3};
  ASSERT_TRUE(store->CreateJob(a).ok());
  ASSERT_TRUE(store->CreateJob(b).ok());
  ASSERT_TRUE(store->CreateJob(c).ok());

  auto claimed = store->ClaimNextJob(10);
  ASSERT_TRUE(claimed.ok() && claimed->has_value());
  EXPECT_EQ((*claimed)->id, "job_a");
  EXPECT_EQ((*claimed)->state, JobState::kRunning);
  ASSERT_TRUE(store->UpdateJobProgress("job_a", 0.5, "half").ok());
  ASSERT_TRUE(store->AppendJobLog("job_a", "line one", 11).ok());
  ASSERT_TRUE(store->AppendJobLog("job_a", "line two", 12).ok());
  EXPECT_EQ(store->GetJobLog("job_a", 10)->size(), 2u);
  ASSERT_TRUE(store->FinishJob("job_a", JobState::kSucceeded, {{"ok", true}}, "", 20).ok());
  EXPECT_EQ(store->FinishJob("job_a", JobState::kFailed, {}, "x", 21).code(), StatusCode::kFailedPrecondition);
  auto done = store->GetJob("job_a");
  EXPECT_EQ(done->state, JobState::kSucceeded);
  EXPECT_DOUBLE_EQ(done->progress, 1.0);

  // Cancelling a queued job is immediate.
  auto cancelled = store->RequestJobCancel("job_c", 30);
  ASSERT_TRUE(cancelled.ok());
  EXPECT_EQ(cancelled->state, JobState::kCancelled);

  // A job left running by a dead process fails at the next start.
  claimed = store->ClaimNextJob(40);
  ASSERT_TRUE(claimed.ok() && claimed->has_value());
  EXPECT_EQ((*claimed)->id, "job_b");
  auto running = store->RequestJobCancel("job_b", 41);
  EXPECT_TRUE(running->cancel_requested);
  EXPECT_EQ(running->state, JobState::kRunning);
  EXPECT_EQ(*store->FailRunningJobs("interrupted by restart", 50), 1);
  EXPECT_EQ(store->GetJob("job_b")->state, JobState::kFailed);
  EXPECT_EQ(store->GetJob("job_b")->error, "interrupted by restart");
  EXPECT_FALSE(store->ClaimNextJob(60)->has_value());
}

TEST_F(StoreTest, UsersTokensAndUniqueness) {
  auto store = std::move(OpenSqliteStore(DbPath())).value();
  UserRecord u{.id = "usr_1", .username = "admin", .password_hash = "h", .is_admin = true, .created_at = 1};
  ASSERT_TRUE(store->CreateUser(u).ok());
  u.id = "usr_2";
  EXPECT_EQ(store->CreateUser(u).code(), StatusCode::kAlreadyExists);
  EXPECT_EQ(*store->CountUsers(), 1);
  ASSERT_TRUE(store->CreateToken({"hash1", "usr_1", 1, 100, false}).ok());
  EXPECT_FALSE(store->GetToken("hash1")->revoked);
  ASSERT_TRUE(store->RevokeToken("hash1").ok());
  EXPECT_TRUE(store->GetToken("hash1")->revoked);
  ASSERT_TRUE(store->DeleteExpiredTokens(1000).ok());
  EXPECT_EQ(store->GetToken("hash1").status().code(), StatusCode::kNotFound);
}

TEST_F(StoreTest, BlobStoreRoundTripDedupAndCorruptionDetected) {
  auto blobs = std::move(BlobStore::Open((dir_ / "blobs").string())).value();
  std::string data(100000, 'x');
  auto id = blobs->Put(data);
  ASSERT_TRUE(id.ok());
  EXPECT_EQ(id->substr(0, 2), "z-");
  EXPECT_EQ(*blobs->Put(data), *id);
  EXPECT_EQ(*blobs->Get(*id), data);
  EXPECT_EQ(blobs->Get("z-../../etc/passwd").status().code(), StatusCode::kInvalidArgument);

  // Adopted raw file: moved in, addressable, mmappable path.
  std::string tmp = blobs->TempPath("ds");
  ASSERT_TRUE(WriteFileAtomic(tmp, "raw-bytes").ok());
  auto raw = blobs->AdoptFile(tmp);
  ASSERT_TRUE(raw.ok());
  EXPECT_FALSE(fs::exists(tmp));
  EXPECT_EQ(*ReadFile(*blobs->PathOf(*raw)), "raw-bytes");

  // Flip a byte of the compressed blob: Get must report data loss, not return garbage.
  std::string path = (dir_ / "blobs" / "z" / id->substr(2, 2) / id->substr(2)).string();
  std::string stored = *ReadFile(path);
  stored[stored.size() / 2] ^= 0x5a;
  fs::permissions(path, fs::perms::owner_read | fs::perms::owner_write);
  ASSERT_TRUE(WriteFileAtomic(path, stored).ok());
  EXPECT_EQ(blobs->Get(*id).status().code(), StatusCode::kDataLoss);
}

}  // namespace
}  // namespace lathe
