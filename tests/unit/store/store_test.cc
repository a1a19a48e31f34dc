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
  // Without a keyring the store writes plaintext, as before encryption existed; OpenPlain maps the file.
  EXPECT_EQ(*ReadFile(*blobs->FilePathForTest(*raw)), "raw-bytes");
  auto plain = blobs->OpenPlain(*raw);
  ASSERT_TRUE(plain.ok());
  EXPECT_FALSE(plain->in_memory());

  // Flip a byte of the compressed blob: Get must report data loss, not return garbage.
  std::string path = (dir_ / "blobs" / "z" / id->substr(2, 2) / id->substr(2)).string();
  std::string stored = *ReadFile(path);
  stored[stored.size() / 2] ^= 0x5a;
  fs::permissions(path, fs::perms::owner_read | fs::perms::owner_write);
  ASSERT_TRUE(WriteFileAtomic(path, stored).ok());
  EXPECT_EQ(blobs->Get(*id).status().code(), StatusCode::kDataLoss);
}


// Regression: a bare file name (`lathe serve --port-file port`) failed with "open : No such file", because
// the parent directory to fsync was "" instead of ".".
TEST_F(StoreTest, WriteFileAtomicTakesABareFileName) {
  const fs::path cwd = fs::current_path();
  fs::current_path(dir_);
  Status st = WriteFileAtomic("bare-name.txt", "8080");
  fs::current_path(cwd);
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_EQ(*ReadFile((dir_ / "bare-name.txt").string()), "8080");
}

TEST_F(StoreTest, DatasetLineageProfileAndDeletionGuardedByModels) {
  auto store = std::move(OpenSqliteStore(DbPath())).value();
  ASSERT_TRUE(store->EnsureProject("default").ok());
  DatasetVersionRecord rec;
  rec.project = "default";
  rec.dataset = "sales";
  rec.blob = "r-a";
  ASSERT_EQ(*store->AddDatasetVersion(rec), 1);
  rec.lineage = {{"parent", {{"dataset", "sales"}, {"version", 1}}}, {"recipe", {{"steps", Json::array()}}}};
  rec.quarantine_blob = "z-q";
  rec.bad_rows = 3;
  rec.quality = {{"passed", false}};
  ASSERT_EQ(*store->AddDatasetVersion(rec), 2);
  auto v2 = std::move(store->GetDatasetVersion("default", "sales", 2)).value();
  EXPECT_EQ(v2.lineage["parent"]["version"], 1);
  EXPECT_EQ(v2.quarantine_blob, "z-q");
  EXPECT_EQ(v2.bad_rows, 3);
  EXPECT_EQ(v2.quality["passed"], false);
  ASSERT_TRUE(store->SetDatasetVersionProfile("default", "sales", 2, "z-p").ok());
  EXPECT_EQ(store->GetDatasetVersion("default", "sales", 2)->profile_blob, "z-p");
  EXPECT_EQ(store->SetDatasetVersionProfile("default", "sales", 9, "z-p").code(), StatusCode::kNotFound);
  EXPECT_TRUE(*store->BlobReferenced("z-p"));
  EXPECT_FALSE(*store->BlobReferenced("z-nothing"));

  // A registered model trained on version 1 protects it.
  RunRecord run{.id = "run_1", .project = "default", .dataset = "sales", .dataset_version = 1, .job_id = "j"};
  ASSERT_TRUE(store->CreateRun(run).ok());
  ModelVersionRecord mv{.project = "default", .model = "churn", .run_id = "run_1", .blob = "z-m"};
  ASSERT_EQ(*store->AddModelVersion(mv), 1);
  auto refused = store->DeleteDatasetVersion("default", "sales", 1);
  ASSERT_EQ(refused.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(refused.status().message().find("churn@1"), std::string::npos);
  EXPECT_TRUE(store->GetDatasetVersion("default", "sales", 1).ok());

  auto deleted = store->DeleteDatasetVersion("default", "sales", 2);
  ASSERT_TRUE(deleted.ok()) << deleted.status().ToString();
  EXPECT_EQ(deleted->blob, "r-a");
  EXPECT_EQ(store->GetDatasetVersion("default", "sales", 2).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(store->DeleteDatasetVersion("default", "sales", 2).status().code(), StatusCode::kNotFound);
  // The next version number does not reuse a deleted one while a later version exists; here 1 is the max.
  EXPECT_EQ(store->GetDatasetVersion("default", "sales", 0)->version, 1);
}

TEST_F(StoreTest, DocumentsAreVersionedPerProjectKindAndName) {
  auto store = std::move(OpenSqliteStore(DbPath())).value();
  ASSERT_TRUE(store->EnsureProject("default").ok());
  DocumentRecord d{.project = "default", .kind = "recipe", .name = "clean", .body = {{"steps", 1}}};
  EXPECT_EQ(*store->PutDocument(d), 1);
  d.body = {{"steps", 2}};
  EXPECT_EQ(*store->PutDocument(d), 2);
  d.name = "other";
  EXPECT_EQ(*store->PutDocument(d), 1);
  d.kind = "connection";
  EXPECT_EQ(*store->PutDocument(d), 1);
  EXPECT_EQ(store->GetDocument("default", "recipe", "clean", 0)->body["steps"], 2);
  EXPECT_EQ(store->GetDocument("default", "recipe", "clean", 1)->body["steps"], 1);
  EXPECT_EQ(store->GetDocument("default", "recipe", "clean", 5).status().code(), StatusCode::kNotFound);
  auto list = std::move(store->ListDocuments("default", "recipe")).value();
  ASSERT_EQ(list.size(), 2u);
  EXPECT_EQ(list[0].name, "clean");
  EXPECT_EQ(list[0].version, 2);
  EXPECT_EQ(store->ListDocumentVersions("default", "recipe", "clean")->size(), 2u);
  // Re-sealing on key rotation rewrites one version in place: no new version, the others untouched.
  ASSERT_TRUE(store->ReplaceDocumentBody("default", "recipe", "clean", 1, {{"steps", 10}}).ok());
  EXPECT_EQ(store->GetDocument("default", "recipe", "clean", 1)->body["steps"], 10);
  EXPECT_EQ(store->GetDocument("default", "recipe", "clean", 0)->body["steps"], 2);
  EXPECT_EQ(store->ListDocumentVersions("default", "recipe", "clean")->size(), 2u);
  EXPECT_EQ(store->ReplaceDocumentBody("default", "recipe", "clean", 3, {}).code(), StatusCode::kNotFound);
  ASSERT_TRUE(store->DeleteDocument("default", "recipe", "clean").ok());
  EXPECT_EQ(store->GetDocument("default", "recipe", "clean", 0).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(store->DeleteDocument("default", "recipe", "clean").code(), StatusCode::kNotFound);
  EXPECT_TRUE(store->GetDocument("default", "connection", "other", 0).ok());
}

TEST_F(StoreTest, LabelsKeepOnePerRowAndLabeler) {
  auto store = std::move(OpenSqliteStore(DbPath())).value();
  ASSERT_TRUE(store->EnsureProject("default").ok());
  ASSERT_TRUE(store
                  ->PutLabels({{"default", "q", 3, "u1", "cat", 1}, {"default", "q", 3, "u2", "dog", 2},
                               {"default", "q", 1, "u1", "dog", 3}})
                  .ok());
  ASSERT_TRUE(store->PutLabels({{"default", "q", 3, "u1", "dog", 4}}).ok());
  auto labels = std::move(store->ListLabels("default", "q")).value();
  ASSERT_EQ(labels.size(), 3u);
  EXPECT_EQ(labels[0].row_index, 1);
  EXPECT_EQ(labels[1].label, "dog");  // u1 changed its mind on row 3
  EXPECT_EQ(labels[2].labeler, "u2");
  ASSERT_TRUE(store->DeleteLabels("default", "q").ok());
  EXPECT_TRUE(store->ListLabels("default", "q")->empty());
}
}  // namespace
}  // namespace lathe
