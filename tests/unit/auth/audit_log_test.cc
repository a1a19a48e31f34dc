#include "auth/audit_log.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <thread>
#include <vector>

#include "common/crypto.h"
#include "store/blob_store.h"

namespace lathe {
namespace {

namespace fs = std::filesystem;

class AuditLogTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("lathe-audit-" + RandomHex(6));
    fs::create_directories(dir_);
    store_ = std::move(OpenSqliteStore((dir_ / "meta.db").string())).value();
  }
  void TearDown() override {
    store_.reset();
    fs::remove_all(dir_);
  }
  std::unique_ptr<AuditLog> Open(const std::string& key = "chain-key") {
    return std::move(AuditLog::Open(store_.get(), key, (dir_ / "audit.head").string())).value();
  }
  static AuditRecord Entry(const std::string& actor, int i) {
    AuditRecord e;
    e.actor = actor;
    e.action = "POST /api/v1/things";
    e.target = "/api/v1/things/" + std::to_string(i);
    e.status = 201;
    e.outcome = "ok";
    return e;
  }
  fs::path dir_;
  std::unique_ptr<Store> store_;
};

TEST_F(AuditLogTest, ConcurrentWritersMakeOneGaplessVerifiedChain) {
  auto log = Open();
  std::vector<std::thread> writers;
  for (int t = 0; t < 4; ++t) {
    writers.emplace_back([&, t] {
      for (int i = 0; i < 500; ++i) log->Record(Entry("user" + std::to_string(t), i));
    });
  }
  for (auto& w : writers) w.join();
  ASSERT_TRUE(log->Flush().ok());
  auto v = log->Verify();
  ASSERT_TRUE(v.ok()) << v.status().ToString();
  EXPECT_TRUE(v->ok) << v->problem;
  EXPECT_EQ(v->entries, 2000);
  EXPECT_EQ(v->head_seq, 2000);
  EXPECT_EQ(log->Head()["seq"], 2000);
  AuditQuery q;
  q.actor = "user2";
  q.limit = 1000;
  EXPECT_EQ(store_->ListAudit(q).value().size(), 500u);
}

TEST_F(AuditLogTest, TheChainContinuesAcrossRestarts) {
  {
    auto log = Open();
    for (int i = 0; i < 10; ++i) log->Record(Entry("a", i));
  }  // destroyed: writes what is queued
  auto log = Open();
  log->Record(Entry("b", 0));
  ASSERT_TRUE(log->Flush().ok());
  auto v = log->Verify().value();
  EXPECT_TRUE(v.ok) << v.problem;
  EXPECT_EQ(v.entries, 11);
}

TEST_F(AuditLogTest, AnotherKeyCannotVouchForTheChain) {
  {
    auto log = Open("the-real-key");
    log->Record(Entry("a", 1));
    ASSERT_TRUE(log->Flush().ok());
  }
  auto forged = Open("a-guessed-key");
  auto v = forged->Verify().value();
  EXPECT_FALSE(v.ok);
  EXPECT_EQ(v.first_bad_seq, 1);
  EXPECT_NE(v.problem.find("modified"), std::string::npos) << v.problem;
}

TEST_F(AuditLogTest, ChainHashCoversEveryField) {
  AuditRecord base = Entry("a", 1);
  base.seq = 7;
  base.prev_hash = std::string(64, '0');
  const std::string h = AuditLog::ChainHash("k", base);
  auto differs = [&](auto mutate) {
    AuditRecord e = base;
    mutate(e);
    return AuditLog::ChainHash("k", e) != h;
  };
  EXPECT_TRUE(differs([](AuditRecord& e) { e.seq = 8; }));
  EXPECT_TRUE(differs([](AuditRecord& e) { e.at_ms += 1; }));
  EXPECT_TRUE(differs([](AuditRecord& e) { e.actor = "b"; }));
  EXPECT_TRUE(differs([](AuditRecord& e) { e.key_id = "k1"; }));
  EXPECT_TRUE(differs([](AuditRecord& e) { e.ip = "10.0.0.1"; }));
  EXPECT_TRUE(differs([](AuditRecord& e) { e.project = "p"; }));
  EXPECT_TRUE(differs([](AuditRecord& e) { e.status = 500; }));
  EXPECT_TRUE(differs([](AuditRecord& e) { e.outcome = "failed"; }));
  EXPECT_TRUE(differs([](AuditRecord& e) { e.detail = "{\"x\":1}"; }));
  EXPECT_TRUE(differs([](AuditRecord& e) { e.prev_hash = std::string(64, '1'); }));
  // Invalid UTF-8 in a hostile path is hashed, not thrown on.
  EXPECT_TRUE(differs([](AuditRecord& e) { e.target = std::string("/x\xff\xfe", 4); }));
}

TEST_F(AuditLogTest, EntriesDeletedFromTheEndAreNotReusedAfterARestart) {
  {
    auto log = Open();
    for (int i = 0; i < 5; ++i) log->Record(Entry("a", i));
  }
  // Someone removes the last two entries while the server is down (the store has no delete: use SQL).
  store_.reset();
  ASSERT_EQ(std::system(("sqlite3 " + (dir_ / "meta.db").string() + " 'DELETE FROM audit_log WHERE seq >= 4'").c_str()), 0)
      << "needs the sqlite3 command";
  store_ = std::move(OpenSqliteStore((dir_ / "meta.db").string())).value();
  auto log = Open();
  log->Record(Entry("b", 0));
  ASSERT_TRUE(log->Flush().ok());
  auto v = log->Verify().value();
  EXPECT_FALSE(v.ok);
  EXPECT_EQ(v.first_bad_seq, 4);
  EXPECT_NE(v.problem.find("missing"), std::string::npos) << v.problem;
}

}  // namespace
}  // namespace lathe
