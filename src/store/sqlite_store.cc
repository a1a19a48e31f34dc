// SQLite implementation of Store: one connection in WAL mode, serialized by a mutex (SQLite allows one
// writer at a time anyway, and metadata calls are short; the predict path does not touch the store).
#include <sqlite3.h>

#include <algorithm>
#include <initializer_list>
#include <mutex>

#include "common/clock.h"
#include "common/log.h"
#include "store/migrations.h"
#include "store/sqlite_db.h"
#include "store/store.h"

namespace lathe {

const char* JobStateName(JobState s) {
  switch (s) {
    case JobState::kQueued:
      return "queued";
    case JobState::kRunning:
      return "running";
    case JobState::kSucceeded:
      return "succeeded";
    case JobState::kFailed:
      return "failed";
    case JobState::kCancelled:
      return "cancelled";
  }
  return "queued";
}

Result<JobState> ParseJobState(const std::string& s) {
  if (s == "queued") return JobState::kQueued;
  if (s == "running") return JobState::kRunning;
  if (s == "succeeded") return JobState::kSucceeded;
  if (s == "failed") return JobState::kFailed;
  if (s == "cancelled") return JobState::kCancelled;
  return Status::InvalidArgument("unknown job state '" + s + "'");
}

int64_t CurrentSchemaVersion() { return static_cast<int64_t>(SqliteMigrations().size()); }

namespace {

using sqlite::Stmt;

Json ParseStoredJson(const std::string& s) {
  auto r = ParseJson(s, 256);
  return r.ok() ? std::move(r).value() : Json::object();
}

class SqliteStore final : public Store {
 public:
  explicit SqliteStore(sqlite3* db) : db_(db) {}
  ~SqliteStore() override {
    if (log_db_ != nullptr) sqlite3_close_v2(log_db_);
    sqlite3_close_v2(db_);
  }

  Status Init(const std::string& path) {
    RETURN_IF_ERROR(sqlite::ExecScript(db_,
                                       "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; "
                                       "PRAGMA foreign_keys=ON; PRAGMA cache_size=-8192;"));
    sqlite3_busy_timeout(db_, 5000);
    RETURN_IF_ERROR(sqlite::ExecScript(db_,
                                       "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL, "
                                       "applied_at INTEGER NOT NULL);"));
    int64_t have = SchemaVersionLocked();
    const auto& migrations = SqliteMigrations();
    int64_t want = static_cast<int64_t>(migrations.size());
    if (have > want) {
      return Status::FailedPrecondition("the metadata store at " + path + " has schema version " +
                                        std::to_string(have) + ", newer than this lathe binary supports (" +
                                        std::to_string(want) +
                                        "); upgrade lathe or restore a backup made by this version");
    }
    for (int64_t v = have + 1; v <= want; ++v) {
      RETURN_IF_ERROR(sqlite::ExecScript(db_, "BEGIN IMMEDIATE"));
      Status st = sqlite::ExecScript(db_, migrations[static_cast<size_t>(v - 1)]);
      if (st.ok()) {
        Stmt s(db_, "INSERT INTO schema_version(version, applied_at) VALUES (?, ?)");
        st = s.Bind(1, v).Bind(2, NowMicros()).Exec();
      }
      if (!st.ok()) {
        (void)sqlite::ExecScript(db_, "ROLLBACK");
        return st.Annotate("applying migration " + std::to_string(v));
      }
      RETURN_IF_ERROR(sqlite::ExecScript(db_, "COMMIT"));
      LogInfo("applied store migration", {{"version", v}});
    }
    // The prediction log has a connection and a mutex of its own: its frequent commits (and the WAL
    // checkpoints they run) never hold the mutex that logins, token checks and jobs wait on.
    int rc = sqlite3_open_v2(path.c_str(), &log_db_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_FULLMUTEX, nullptr);
    if (rc != SQLITE_OK) return sqlite::ErrorFromSqlite(log_db_, rc, "opening " + path + " for the prediction log");
    RETURN_IF_ERROR(sqlite::ExecScript(log_db_, "PRAGMA synchronous=NORMAL; PRAGMA cache_size=-8192;"));
    sqlite3_busy_timeout(log_db_, 5000);
    return Status::Ok();
  }

  int64_t SchemaVersion() override {
    std::lock_guard<std::mutex> lock(mu_);
    return SchemaVersionLocked();
  }

  // ---- users and tokens
  Status CreateUser(const UserRecord& u) override {
    std::lock_guard<std::mutex> lock(mu_);
    Stmt s(db_,
           "INSERT INTO users(id, username, password_hash, is_admin, disabled, created_at) VALUES "
           "(?,?,?,?,?,?)");
    Status st = s.Bind(1, u.id)
                    .Bind(2, u.username)
                    .Bind(3, u.password_hash)
                    .Bind(4, u.is_admin)
                    .Bind(5, u.disabled)
                    .Bind(6, u.created_at)
                    .Exec();
    if (st.code() == StatusCode::kAlreadyExists)
      return Status::AlreadyExists("user '" + u.username + "' exists");
    return st;
  }

  Result<UserRecord> GetUserByName(const std::string& username) override {
    return GetUser("username", username);
  }
  Result<UserRecord> GetUserById(const std::string& id) override { return GetUser("id", id); }

  Result<int64_t> CountUsers() override {
    std::lock_guard<std::mutex> lock(mu_);
    Stmt s(db_, "SELECT COUNT(*) FROM users");
    ASSIGN_OR_RETURN(bool row, s.Step());
    return row ? s.Int(0) : 0;
  }

  Result<int64_t> ProjectStorageBytes(const std::string& project) override {
    std::lock_guard<std::mutex> lock(mu_);
    Stmt s(db_, "SELECT COALESCE(SUM(bytes), 0) FROM dataset_versions WHERE project = ?");
    s.Bind(1, project);
    ASSIGN_OR_RETURN(bool row, s.Step());
    return row ? s.Int(0) : 0;
  }

  Result<std::vector<UserRecord>> ListUsers() override {
    std::lock_guard<std::mutex> lock(mu_);
    Stmt s(db_, "SELECT id, username, password_hash, is_admin, disabled, created_at FROM users ORDER BY username");
    return sqlite::CollectRows(s, [](const Stmt& r) {
      return UserRecord{r.Text(0), r.Text(1), r.Text(2), r.Int(3) != 0, r.Int(4) != 0, r.Int(5)};
    });
  }

  Status UpdateUser(const UserRecord& u) override {
    std::lock_guard<std::mutex> lock(mu_);
    Stmt s(db_, "UPDATE users SET password_hash = ?, is_admin = ?, disabled = ? WHERE id = ?");
    RETURN_IF_ERROR(s.Bind(1, u.password_hash).Bind(2, u.is_admin).Bind(3, u.disabled).Bind(4, u.id).Exec());
    if (sqlite3_changes(db_) == 0) return Status::NotFound("user not found");
    return Status::Ok();
  }

  Status CreateToken(const TokenRecord& t) override {
    std::lock_guard<std::mutex> lock(mu_);
    Stmt s(db_,
           "INSERT INTO tokens(token_hash, user_id, created_at, expires_at, revoked) VALUES (?,?,?,?,0)");
    return s.Bind(1, t.token_hash).Bind(2, t.user_id).Bind(3, t.created_at).Bind(4, t.expires_at).Exec();
  }

  Result<TokenRecord> GetToken(const std::string& token_hash) override {
    std::lock_guard<std::mutex> lock(mu_);
    Stmt s(db_,
           "SELECT token_hash, user_id, created_at, expires_at, revoked FROM tokens WHERE token_hash = ?");
    s.Bind(1, token_hash);
    ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) return Status::NotFound("token not found");
    return TokenRecord{s.Text(0), s.Text(1), s.Int(2), s.Int(3), s.Int(4) != 0};
  }

  Status RevokeToken(const std::string& token_hash) override {
    std::lock_guard<std::mutex> lock(mu_);
    Stmt s(db_, "UPDATE tokens SET revoked = 1 WHERE token_hash = ?");
    return s.Bind(1, token_hash).Exec();
  }

  Status DeleteExpiredTokens(int64_t now) override {
    std::lock_guard<std::mutex> lock(mu_);
    Stmt s(db_, "DELETE FROM tokens WHERE expires_at < ?");
    return s.Bind(1, now).Exec();
  }

  // ---- API keys
  static constexpr const char* kApiKeyColumns =
      "id, project, name, token_hash, permissions, deployment, created_by, created_at, expires_at, revoked_at, "
      "last_used_at";
  static ApiKeyRecord ApiKeyRow(Stmt& s) {
    return ApiKeyRecord{s.Text(0), s.Text(1), s.Text(2), s.Text(3), s.Text(4), s.Text(5),
                        s.Text(6), s.Int(7),  s.Int(8),  s.Int(9),  s.Int(10)};
  }

  Status CreateApiKey(const ApiKeyRecord& k) override {
    std::lock_guard<std::mutex> lock(mu_);
    Stmt s(db_, std::string("INSERT INTO api_keys(") + kApiKeyColumns + ") VALUES (?,?,?,?,?,?,?,?,?,0,0)");
    return s.Bind(1, k.id).Bind(2, k.project).Bind(3, k.name).Bind(4, k.token_hash).Bind(5, k.permissions)
        .Bind(6, k.deployment).Bind(7, k.created_by).Bind(8, k.created_at).Bind(9, k.expires_at).Exec();
  }

  Result<ApiKeyRecord> GetApiKeyByHash(const std::string& token_hash) override {
    std::lock_guard<std::mutex> lock(mu_);
    Stmt s(db_, std::string("SELECT ") + kApiKeyColumns + " FROM api_keys WHERE token_hash = ?");
    s.Bind(1, token_hash);
    ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) return Status::NotFound("API key not found");
    return ApiKeyRow(s);
  }

  Result<std::vector<ApiKeyRecord>> ListApiKeys(const std::string& project) override {
    std::lock_guard<std::mutex> lock(mu_);
    Stmt s(db_, std::string("SELECT ") + kApiKeyColumns + " FROM api_keys WHERE project = ? ORDER BY created_at, id");
    s.Bind(1, project);
    std::vector<ApiKeyRecord> out;
    while (true) {
      ASSIGN_OR_RETURN(bool row, s.Step());
      if (!row) break;
      out.push_back(ApiKeyRow(s));
    }
    return out;
  }

  Status RevokeApiKey(const std::string& project, const std::string& id, int64_t when) override {
    std::lock_guard<std::mutex> lock(mu_);
    Stmt s(db_, "UPDATE api_keys SET revoked_at = ? WHERE project = ? AND id = ? AND revoked_at = 0");
    RETURN_IF_ERROR(s.Bind(1, when).Bind(2, project).Bind(3, id).Exec());
    if (sqlite3_changes(db_) == 0) return Status::NotFound("API key '" + id + "' not found");
    return Status::Ok();
  }

  Status TouchApiKey(const std::string& id, int64_t when) override {
    std::lock_guard<std::mutex> lock(mu_);
    Stmt s(db_, "UPDATE api_keys SET last_used_at = ? WHERE id = ?");
    return s.Bind(1, when).Bind(2, id).Exec();
  }

  // ---- projects
  Status EnsureProject(const std::string& name) override {
    std::lock_guard<std::mutex> lock(mu_);
    Stmt s(db_, "INSERT OR IGNORE INTO projects(name, created_at) VALUES (?, ?)");
    return s.Bind(1, name).Bind(2, NowMicros()).Exec();
  }

  Result<bool> ProjectExists(const std::string& name) override {
    std::lock_guard<std::mutex> lock(mu_);
    Stmt s(db_, "SELECT 1 FROM projects WHERE name = ?");
    s.Bind(1, name);
    return s.Step();
  }

  Status CreateProject(const std::string& name, const std::string& owner_user_id) override {
    std::lock_guard<std::mutex> lock(mu_);
    return InTransaction<bool>([&]() -> Result<bool> {
             const int64_t now = NowMicros();
             Stmt p(db_, "INSERT INTO projects(name, created_at) VALUES (?, ?)");
             Status st = p.Bind(1, name).Bind(2, now).Exec();
             if (st.code() == StatusCode::kAlreadyExists) return Status::AlreadyExists("project '" + name + "' exists");
             RETURN_IF_ERROR(st);
             Stmt m(db_, "INSERT INTO members(project, user_id, role, created_at) VALUES (?, ?, 'owner', ?)");
             RETURN_IF_ERROR(m.Bind(1, name).Bind(2, owner_user_id).Bind(3, now).Exec());
             return true;
           })
        .status();
  }

  Result<std::vector<std::string>> ListProjects() override {
    std::lock_guard<std::mutex> lock(mu_);
    Stmt s(db_, "SELECT name FROM projects ORDER BY name");
    return sqlite::CollectRows(s, [](const Stmt& r) { return r.Text(0); });
  }

  Status SetMember(const MemberRecord& m) override {
    std::lock_guard<std::mutex> lock(mu_);
    Stmt s(db_,
           "INSERT INTO members(project, user_id, role, created_at) VALUES (?, ?, ?, ?) "
           "ON CONFLICT(project, user_id) DO UPDATE SET role = excluded.role");
    return s.Bind(1, m.project).Bind(2, m.user_id).Bind(3, m.role).Bind(4, NowMicros()).Exec();
  }

  Status RemoveMember(const std::string& project, const std::string& user_id) override {
    std::lock_guard<std::mutex> lock(mu_);
    Stmt s(db_, "DELETE FROM members WHERE project = ? AND user_id = ?");
    RETURN_IF_ERROR(s.Bind(1, project).Bind(2, user_id).Exec());
    if (sqlite3_changes(db_) == 0) return Status::NotFound("not a member of project '" + project + "'");
    return Status::Ok();
  }

  Result<std::vector<MemberRecord>> ListMembers(const std::string& project) override {
    return Members("m.project = ? ORDER BY u.username", project);
  }

  Result<std::vector<MemberRecord>> ListMemberships(const std::string& user_id) override {
    return Members("m.user_id = ? ORDER BY m.project", user_id);
  }

  Result<std::vector<MemberRecord>> Members(const char* where_order, const std::string& value) {
    std::lock_guard<std::mutex> lock(mu_);
    Stmt s(db_, std::string("SELECT m.project, m.user_id, u.username, m.role, m.created_at FROM members m JOIN "
                            "users u ON u.id = m.user_id WHERE ") +
                    where_order);
    s.Bind(1, value);
    return sqlite::CollectRows(s, ReadMember);
  }

  // ---- datasets
  Result<int64_t> AddDatasetVersion(DatasetVersionRecord rec) override {
    std::lock_guard<std::mutex> lock(mu_);
    return InTransaction<int64_t>([&]() -> Result<int64_t> {
      {
        Stmt s(db_,
               "INSERT INTO datasets(project, name, created_at, updated_at) VALUES (?,?,?,?) "
               "ON CONFLICT(project, name) DO UPDATE SET updated_at = excluded.updated_at");
        RETURN_IF_ERROR(s.Bind(1, rec.project)
                            .Bind(2, rec.dataset)
                            .Bind(3, rec.created_at)
                            .Bind(4, rec.created_at)
                            .Exec());
      }
      ASSIGN_OR_RETURN(int64_t next, NextVersionLocked("dataset_versions", "project = ? AND dataset = ?",
                                                       {rec.project, rec.dataset}));
      Stmt s(db_,
             "INSERT INTO dataset_versions(project, dataset, version, rows, columns, stats, blob, bytes, "
             "source, created_at, lineage, profile_blob, quarantine_blob, bad_rows, quality) "
             "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)");
      RETURN_IF_ERROR(s.Bind(1, rec.project)
                          .Bind(2, rec.dataset)
                          .Bind(3, next)
                          .Bind(4, rec.rows)
                          .Bind(5, DumpJson(rec.columns))
                          .Bind(6, DumpJson(rec.stats))
                          .Bind(7, rec.blob)
                          .Bind(8, rec.bytes)
                          .Bind(9, DumpJson(rec.source))
                          .Bind(10, rec.created_at)
                          .Bind(11, DumpJson(rec.lineage))
                          .Bind(12, rec.profile_blob)
                          .Bind(13, rec.quarantine_blob)
                          .Bind(14, rec.bad_rows)
                          .Bind(15, DumpJson(rec.quality))
                          .Exec());
      return next;
    });
  }

  Result<std::vector<DatasetSummary>> ListDatasets(const std::string& project) override {
    std::lock_guard<std::mutex> lock(mu_);
    Stmt s(db_,
           "SELECT d.project, d.name, MAX(v.version), COUNT(v.version), d.created_at, d.updated_at "
           "FROM datasets d JOIN dataset_versions v ON v.project = d.project AND v.dataset = d.name "
           "WHERE d.project = ? GROUP BY d.project, d.name ORDER BY d.name");
    s.Bind(1, project);
    return sqlite::CollectRows(s, [](const Stmt& r) {
      return DatasetSummary{r.Text(0), r.Text(1), r.Int(2), r.Int(3), r.Int(4), r.Int(5)};
    });
  }

  Result<std::vector<DatasetVersionRecord>> ListDatasetVersions(const std::string& project,
                                                                const std::string& dataset) override {
    std::lock_guard<std::mutex> lock(mu_);
    Stmt s(db_, std::string(kDatasetVersionCols) + " WHERE project = ? AND dataset = ? ORDER BY version");
    s.Bind(1, project).Bind(2, dataset);
    ASSIGN_OR_RETURN(auto out, sqlite::CollectRows(s, ReadDatasetVersion));
    if (out.empty())
      return Status::NotFound("dataset '" + dataset + "' not found in project '" + project + "'");
    return out;
  }

  Result<DatasetVersionRecord> GetDatasetVersion(const std::string& project, const std::string& dataset,
                                                 int64_t version) override {
    std::lock_guard<std::mutex> lock(mu_);
    Stmt s(db_, std::string(kDatasetVersionCols) +
                    (version > 0 ? " WHERE project = ? AND dataset = ? AND version = ?"
                                 : " WHERE project = ? AND dataset = ? ORDER BY version DESC LIMIT 1"));
    s.Bind(1, project).Bind(2, dataset);
    if (version > 0) s.Bind(3, version);
    ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) {
      if (version > 0) {
        return Status::NotFound("dataset '" + dataset + "' has no version " + std::to_string(version));
      }
      return Status::NotFound("dataset '" + dataset + "' not found in project '" + project + "'");
    }
    return ReadDatasetVersion(s);
  }

  Status SetDatasetVersionProfile(const std::string& project, const std::string& dataset, int64_t version,
                                  const std::string& profile_blob) override {
    std::lock_guard<std::mutex> lock(mu_);
    Stmt s(db_, "UPDATE dataset_versions SET profile_blob = ? WHERE project = ? AND dataset = ? AND version = ?");
    RETURN_IF_ERROR(s.Bind(1, profile_blob).Bind(2, project).Bind(3, dataset).Bind(4, version).Exec());
    if (sqlite3_changes(db_) == 0) {
      return Status::NotFound("dataset '" + dataset + "' has no version " + std::to_string(version));
    }
    return Status::Ok();
  }

  Result<std::vector<std::string>> ModelsUsingDatasetVersion(const std::string& project, const std::string& dataset,
                                                             int64_t version) override {
    std::lock_guard<std::mutex> lock(mu_);
    return ModelsUsingLocked(project, dataset, version);
  }

  Result<DatasetVersionRecord> DeleteDatasetVersion(const std::string& project, const std::string& dataset,
                                                    int64_t version) override {
    std::lock_guard<std::mutex> lock(mu_);
    return InTransaction<DatasetVersionRecord>([&]() -> Result<DatasetVersionRecord> {
      Stmt get(db_, std::string(kDatasetVersionCols) + " WHERE project = ? AND dataset = ? AND version = ?");
      get.Bind(1, project).Bind(2, dataset).Bind(3, version);
      ASSIGN_OR_RETURN(bool row, get.Step());
      if (!row) return Status::NotFound("dataset '" + dataset + "' has no version " + std::to_string(version));
      DatasetVersionRecord rec = ReadDatasetVersion(get);
      ASSIGN_OR_RETURN(auto models, ModelsUsingLocked(project, dataset, version));
      if (!models.empty()) {
        std::string names;
        for (const auto& m : models) names += (names.empty() ? "" : ", ") + m;
        return Status::FailedPrecondition("dataset '" + dataset + "' version " + std::to_string(version) +
                                          " is referenced by registered model " + names +
                                          "; delete or archive those model versions first");
      }
      Stmt del(db_, "DELETE FROM dataset_versions WHERE project = ? AND dataset = ? AND version = ?");
      RETURN_IF_ERROR(del.Bind(1, project).Bind(2, dataset).Bind(3, version).Exec());
      Stmt gone(db_,
                "DELETE FROM datasets WHERE project = ? AND name = ? AND NOT EXISTS (SELECT 1 FROM "
                "dataset_versions WHERE project = ? AND dataset = ?)");
      RETURN_IF_ERROR(gone.Bind(1, project).Bind(2, dataset).Bind(3, project).Bind(4, dataset).Exec());
      return rec;
    });
  }

  Result<bool> BlobReferenced(const std::string& blob) override {
    std::lock_guard<std::mutex> lock(mu_);
    Stmt s(db_,
           "SELECT 1 FROM dataset_versions WHERE blob = ?1 OR profile_blob = ?1 OR quarantine_blob = ?1 "
           "UNION ALL SELECT 1 FROM runs WHERE model_blob = ?1 UNION ALL SELECT 1 FROM model_versions "
           "WHERE blob = ?1 LIMIT 1");
    s.Bind(1, blob);
    return s.Step();
  }

  Result<int64_t> RewriteDatasetVersions(const std::vector<DatasetVersionRewrite>& rewrites,
                                         const std::optional<DatasetVersionRecord>& append,
                                         const std::optional<DocumentRecord>& document) override {
    std::lock_guard<std::mutex> lock(mu_);
    return InTransaction<int64_t>([&]() -> Result<int64_t> {
      for (const auto& w : rewrites) {
        const DatasetVersionRecord& r = w.record;
        Stmt s(db_,
               "UPDATE dataset_versions SET rows = ?, columns = ?, stats = ?, blob = ?, bytes = ?, source = ?, "
               "lineage = ?, profile_blob = ?, quarantine_blob = ?, bad_rows = ?, quality = ? "
               "WHERE project = ? AND dataset = ? AND version = ? AND blob = ?");
        RETURN_IF_ERROR(s.Bind(1, r.rows)
                            .Bind(2, DumpJson(r.columns))
                            .Bind(3, DumpJson(r.stats))
                            .Bind(4, r.blob)
                            .Bind(5, r.bytes)
                            .Bind(6, DumpJson(r.source))
                            .Bind(7, DumpJson(r.lineage))
                            .Bind(8, r.profile_blob)
                            .Bind(9, r.quarantine_blob)
                            .Bind(10, r.bad_rows)
                            .Bind(11, DumpJson(r.quality))
                            .Bind(12, r.project)
                            .Bind(13, r.dataset)
                            .Bind(14, r.version)
                            .Bind(15, w.expected_blob)
                            .Exec());
        if (sqlite3_changes(db_) == 0) {
          return Status::FailedPrecondition("dataset '" + r.dataset + "' version " + std::to_string(r.version) +
                                            " was deleted or changed while it was being rewritten; try again");
        }
      }
      int64_t appended = 0;
      if (append) {
        const DatasetVersionRecord& rec = *append;
        {
          Stmt s(db_, "UPDATE datasets SET updated_at = ? WHERE project = ? AND name = ?");
          RETURN_IF_ERROR(s.Bind(1, rec.created_at).Bind(2, rec.project).Bind(3, rec.dataset).Exec());
        }
        ASSIGN_OR_RETURN(appended, NextVersionLocked("dataset_versions", "project = ? AND dataset = ?",
                                                     {rec.project, rec.dataset}));
        Stmt s(db_,
               "INSERT INTO dataset_versions(project, dataset, version, rows, columns, stats, blob, bytes, "
               "source, created_at, lineage, profile_blob, quarantine_blob, bad_rows, quality) "
               "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)");
        RETURN_IF_ERROR(s.Bind(1, rec.project)
                            .Bind(2, rec.dataset)
                            .Bind(3, appended)
                            .Bind(4, rec.rows)
                            .Bind(5, DumpJson(rec.columns))
                            .Bind(6, DumpJson(rec.stats))
                            .Bind(7, rec.blob)
                            .Bind(8, rec.bytes)
                            .Bind(9, DumpJson(rec.source))
                            .Bind(10, rec.created_at)
                            .Bind(11, DumpJson(rec.lineage))
                            .Bind(12, rec.profile_blob)
                            .Bind(13, rec.quarantine_blob)
                            .Bind(14, rec.bad_rows)
                            .Bind(15, DumpJson(rec.quality))
                            .Exec());
      }
      if (document) RETURN_IF_ERROR(InsertDocumentLocked(*document).status());
      return appended;
    });
  }

  // ---- documents
  Result<int64_t> PutDocument(DocumentRecord doc) override {
    std::lock_guard<std::mutex> lock(mu_);
    return InTransaction<int64_t>([&]() { return InsertDocumentLocked(doc); });
  }

  // max(version) + 1 over the rows of `table` that match `where` (its ? bound to `keys` in order), 1 for none;
  // the caller holds mu_ inside a transaction. table and where are constants of this file, never input.
  Result<int64_t> NextVersionLocked(const char* table, const char* where,
                                    std::initializer_list<std::string_view> keys) {
    Stmt s(db_, std::string("SELECT COALESCE(MAX(version), 0) + 1 FROM ") + table + " WHERE " + where);
    int i = 1;
    for (std::string_view k : keys) s.Bind(i++, k);
    ASSIGN_OR_RETURN(bool row, s.Step());
    return row ? s.Int(0) : int64_t{1};
  }

  // The next version of `doc` (max + 1), inserted; the caller holds mu_ inside a transaction.
  Result<int64_t> InsertDocumentLocked(const DocumentRecord& doc) {
    ASSIGN_OR_RETURN(int64_t next, NextVersionLocked("documents", "project = ? AND kind = ? AND name = ?",
                                                     {doc.project, doc.kind, doc.name}));
    Stmt s(db_,
           "INSERT INTO documents(project, kind, name, version, body, created_by, created_at) "
           "VALUES (?,?,?,?,?,?,?)");
    RETURN_IF_ERROR(s.Bind(1, doc.project)
                        .Bind(2, doc.kind)
                        .Bind(3, doc.name)
                        .Bind(4, next)
                        .Bind(5, DumpJson(doc.body))
                        .Bind(6, doc.created_by)
                        .Bind(7, doc.created_at)
                        .Exec());
    return next;
  }

  Result<DocumentRecord> GetDocument(const std::string& project, const std::string& kind, const std::string& name,
                                     int64_t version) override {
    std::lock_guard<std::mutex> lock(mu_);
    Stmt s(db_, std::string(kDocumentCols) +
                    (version > 0 ? " WHERE project = ? AND kind = ? AND name = ? AND version = ?"
                                 : " WHERE project = ? AND kind = ? AND name = ? ORDER BY version DESC LIMIT 1"));
    s.Bind(1, project).Bind(2, kind).Bind(3, name);
    if (version > 0) s.Bind(4, version);
    ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) {
      std::string what = kind;
      std::replace(what.begin(), what.end(), '_', ' ');
      if (version > 0) return Status::NotFound(what + " '" + name + "' has no version " + std::to_string(version));
      return Status::NotFound(what + " '" + name + "' not found in project '" + project + "'");
    }
    return ReadDocument(s);
  }

  Result<std::vector<DocumentRecord>> ListDocuments(const std::string& project, const std::string& kind) override {
    std::lock_guard<std::mutex> lock(mu_);
    Stmt s(db_, std::string(kDocumentCols) +
                    " d WHERE project = ?1 AND kind = ?2 AND version = (SELECT MAX(version) FROM documents x "
                    "WHERE x.project = d.project AND x.kind = d.kind AND x.name = d.name) ORDER BY name");
    s.Bind(1, project).Bind(2, kind);
    return sqlite::CollectRows(s, ReadDocument);
  }

  Result<std::vector<DocumentRecord>> ListDocumentVersions(const std::string& project, const std::string& kind,
                                                           const std::string& name) override {
    std::lock_guard<std::mutex> lock(mu_);
    Stmt s(db_, std::string(kDocumentCols) + " WHERE project = ? AND kind = ? AND name = ? ORDER BY version");
    s.Bind(1, project).Bind(2, kind).Bind(3, name);
    return sqlite::CollectRows(s, ReadDocument);
  }

  Status DeleteDocument(const std::string& project, const std::string& kind, const std::string& name) override {
    std::lock_guard<std::mutex> lock(mu_);
    Stmt s(db_, "DELETE FROM documents WHERE project = ? AND kind = ? AND name = ?");
    RETURN_IF_ERROR(s.Bind(1, project).Bind(2, kind).Bind(3, name).Exec());
    if (sqlite3_changes(db_) == 0) return Status::NotFound(kind + " '" + name + "' not found");
    return Status::Ok();
  }

  Status ReplaceDocumentBody(const std::string& project, const std::string& kind, const std::string& name,
                             int64_t version, const Json& body) override {
    std::lock_guard<std::mutex> lock(mu_);
    Stmt s(db_, "UPDATE documents SET body = ? WHERE project = ? AND kind = ? AND name = ? AND version = ?");
    RETURN_IF_ERROR(s.Bind(1, DumpJson(body)).Bind(2, project).Bind(3, kind).Bind(4, name).Bind(5, version).Exec());
    if (sqlite3_changes(db_) == 0) {
      return Status::NotFound(kind + " '" + name + "' has no version " + std::to_string(version));
    }
    return Status::Ok();
  }

  // ---- labels
  Status PutLabels(const std::vector<LabelRecord>& labels) override {
    std::lock_guard<std::mutex> lock(mu_);
    return InTransaction<bool>([&]() -> Result<bool> {
             for (const auto& l : labels) {
               Stmt s(db_,
                      "INSERT INTO labels(project, queue, row_index, labeler, label, created_at) VALUES "
                      "(?,?,?,?,?,?) ON CONFLICT(project, queue, row_index, labeler) DO UPDATE SET "
                      "label = excluded.label, created_at = excluded.created_at");
               RETURN_IF_ERROR(s.Bind(1, l.project)
                                   .Bind(2, l.queue)
                                   .Bind(3, l.row_index)
                                   .Bind(4, l.labeler)
                                   .Bind(5, l.label)
                                   .Bind(6, l.created_at)
                                   .Exec());
             }
             return true;
           })
        .status();
  }

  Result<std::vector<LabelRecord>> ListLabels(const std::string& project, const std::string& queue) override {
    std::lock_guard<std::mutex> lock(mu_);
    Stmt s(db_,
           "SELECT project, queue, row_index, labeler, label, created_at FROM labels WHERE project = ? AND "
           "queue = ? ORDER BY row_index, labeler");
    s.Bind(1, project).Bind(2, queue);
    return sqlite::CollectRows(s, [](const Stmt& r) {
      return LabelRecord{r.Text(0), r.Text(1), r.Int(2), r.Text(3), r.Text(4), r.Int(5)};
    });
  }

  Status DeleteLabels(const std::string& project, const std::string& queue) override {
    std::lock_guard<std::mutex> lock(mu_);
    Stmt s(db_, "DELETE FROM labels WHERE project = ? AND queue = ?");
    return s.Bind(1, project).Bind(2, queue).Exec();
  }

  // ---- jobs
  Status CreateJob(const JobRecord& j) override {
    std::lock_guard<std::mutex> lock(mu_);
    Stmt s(db_,
           "INSERT INTO jobs(id, kind, project, state, progress, message, payload, created_by, created_at) "
           "VALUES (?,?,?,?,?,?,?,?,?)");
    return s.Bind(1, j.id)
        .Bind(2, j.kind)
        .Bind(3, j.project)
        .Bind(4, JobStateName(j.state))
        .Bind(5, j.progress)
        .Bind(6, j.message)
        .Bind(7, DumpJson(j.payload))
        .Bind(8, j.created_by)
        .Bind(9, j.created_at)
        .Exec();
  }

  Result<JobRecord> GetJob(const std::string& id) override {
    std::lock_guard<std::mutex> lock(mu_);
    return GetJobLocked(id);
  }

  Result<std::vector<JobRecord>> ListJobs(const std::string& project, int64_t limit) override {
    std::lock_guard<std::mutex> lock(mu_);
    Stmt s(db_, std::string(kJobCols) + (project.empty() ? " WHERE ?1 = ?1" : " WHERE project = ?1") +
                    " ORDER BY created_at DESC LIMIT ?2");
    s.Bind(1, project).Bind(2, limit);
    return sqlite::CollectRows(s, ReadJob);
  }

  Result<std::optional<JobRecord>> ClaimNextJob(int64_t now) override {
    std::lock_guard<std::mutex> lock(mu_);
    return InTransaction<std::optional<JobRecord>>([&]() -> Result<std::optional<JobRecord>> {
      std::string id;
      {
        Stmt s(db_, "SELECT id FROM jobs WHERE state = 'queued' ORDER BY created_at, id LIMIT 1");
        ASSIGN_OR_RETURN(bool row, s.Step());
        if (!row) return std::optional<JobRecord>();
        id = s.Text(0);
      }
      Stmt u(db_, "UPDATE jobs SET state = 'running', started_at = ?, attempts = attempts + 1 WHERE id = ?");
      RETURN_IF_ERROR(u.Bind(1, now).Bind(2, id).Exec());
      ASSIGN_OR_RETURN(JobRecord job, GetJobLocked(id));
      return std::optional<JobRecord>(std::move(job));
    });
  }

  Status UpdateJobProgress(const std::string& id, double progress, const std::string& message) override {
    std::lock_guard<std::mutex> lock(mu_);
    Stmt s(db_, "UPDATE jobs SET progress = ?, message = ? WHERE id = ? AND state = 'running'");
    return s.Bind(1, progress).Bind(2, message).Bind(3, id).Exec();
  }

  Status AppendJobLog(const std::string& id, const std::string& line, int64_t now) override {
    std::lock_guard<std::mutex> lock(mu_);
    Stmt s(db_,
           "INSERT INTO job_logs(job_id, seq, ts, line) VALUES (?1, "
           "(SELECT COALESCE(MAX(seq), 0) + 1 FROM job_logs WHERE job_id = ?1), ?2, ?3)");
    return s.Bind(1, id).Bind(2, now).Bind(3, line).Exec();
  }

  Result<std::vector<std::pair<int64_t, std::string>>> GetJobLog(const std::string& id,
                                                                 int64_t limit) override {
    std::lock_guard<std::mutex> lock(mu_);
    Stmt s(db_, "SELECT ts, line FROM job_logs WHERE job_id = ? ORDER BY seq LIMIT ?");
    s.Bind(1, id).Bind(2, limit);
    return sqlite::CollectRows(
        s, [](const Stmt& r) { return std::pair<int64_t, std::string>(r.Int(0), r.Text(1)); });
  }

  Status FinishJob(const std::string& id, JobState state, const Json& result, const std::string& error,
                   int64_t now) override {
    std::lock_guard<std::mutex> lock(mu_);
    Stmt s(db_,
           "UPDATE jobs SET state = ?, result = ?, error = ?, finished_at = ?, "
           "progress = CASE WHEN ?5 = 'succeeded' THEN 1.0 ELSE progress END, "
           "message = CASE WHEN ?5 = 'succeeded' THEN 'done' ELSE message END "
           "WHERE id = ? AND state IN ('queued', 'running')");
    const char* name = JobStateName(state);
    RETURN_IF_ERROR(s.Bind(1, name)
                        .Bind(2, DumpJson(result))
                        .Bind(3, error)
                        .Bind(4, now)
                        .Bind(5, name)
                        .Bind(6, id)
                        .Exec());
    if (sqlite3_changes(db_) == 0) return Status::FailedPrecondition("job " + id + " is not active");
    return Status::Ok();
  }

  Result<JobRecord> RequestJobCancel(const std::string& id, int64_t now) override {
    std::lock_guard<std::mutex> lock(mu_);
    return InTransaction<JobRecord>([&]() -> Result<JobRecord> {
      ASSIGN_OR_RETURN(JobRecord job, GetJobLocked(id));
      if (job.state == JobState::kQueued) {
        Stmt s(db_,
               "UPDATE jobs SET state = 'cancelled', finished_at = ?, cancel_requested = 1, "
               "error = 'cancelled before it started' WHERE id = ?");
        RETURN_IF_ERROR(s.Bind(1, now).Bind(2, id).Exec());
      } else if (job.state == JobState::kRunning) {
        Stmt s(db_, "UPDATE jobs SET cancel_requested = 1 WHERE id = ?");
        RETURN_IF_ERROR(s.Bind(1, id).Exec());
      }
      return GetJobLocked(id);
    });
  }

  Result<int64_t> FailRunningJobs(const std::string& error, int64_t now) override {
    std::lock_guard<std::mutex> lock(mu_);
    Stmt s(db_, "UPDATE jobs SET state = 'failed', error = ?, finished_at = ? WHERE state = 'running'");
    RETURN_IF_ERROR(s.Bind(1, error).Bind(2, now).Exec());
    return static_cast<int64_t>(sqlite3_changes(db_));
  }

  Result<std::vector<std::pair<std::string, int64_t>>> CountJobsByState() override {
    std::lock_guard<std::mutex> lock(mu_);
    Stmt s(db_, "SELECT state, COUNT(*) FROM jobs GROUP BY state");
    return sqlite::CollectRows(
        s, [](const Stmt& r) { return std::pair<std::string, int64_t>(r.Text(0), r.Int(1)); });
  }

  // ---- runs
  Status CreateRun(const RunRecord& r) override {
    std::lock_guard<std::mutex> lock(mu_);
    Stmt s(db_,
           "INSERT INTO runs(id, project, dataset, dataset_version, target, task, learner, params, split, "
           "state, job_id, created_by, created_at, kind, parent, search, experiment, tags, notes, lathe_version, "
           "metrics, train_seconds, finished_at, error) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)");
    return s.Bind(1, r.id)
        .Bind(2, r.project)
        .Bind(3, r.dataset)
        .Bind(4, r.dataset_version)
        .Bind(5, r.target)
        .Bind(6, r.task)
        .Bind(7, r.learner)
        .Bind(8, DumpJson(r.params))
        .Bind(9, DumpJson(r.split))
        .Bind(10, r.state)
        .Bind(11, r.job_id)
        .Bind(12, r.created_by)
        .Bind(13, r.created_at)
        .Bind(14, r.kind)
        .Bind(15, r.parent)
        .Bind(16, DumpJson(r.search))
        .Bind(17, r.experiment)
        .Bind(18, DumpJson(r.tags))
        .Bind(19, r.notes)
        .Bind(20, r.lathe_version)
        .Bind(21, DumpJson(r.metrics))
        .Bind(22, r.train_seconds)
        .Bind(23, r.finished_at)
        .Bind(24, r.error)
        .Exec();
  }

  Status UpdateRun(const RunRecord& r) override {
    std::lock_guard<std::mutex> lock(mu_);
    Stmt s(db_,
           "UPDATE runs SET state = ?, metrics = ?, signature = ?, pipeline = ?, model_blob = ?, error = ?, "
           "train_rows = ?, test_rows = ?, train_seconds = ?, finished_at = ?, curves = ?, explanations = ?, "
           "params = ?, search = ?, tags = ?, notes = ?, experiment = ?, task = ?, learner = ? WHERE id = ?");
    RETURN_IF_ERROR(s.Bind(1, r.state)
                        .Bind(2, DumpJson(r.metrics))
                        .Bind(3, DumpJson(r.signature))
                        .Bind(4, DumpJson(r.pipeline))
                        .Bind(5, r.model_blob)
                        .Bind(6, r.error)
                        .Bind(7, r.train_rows)
                        .Bind(8, r.test_rows)
                        .Bind(9, r.train_seconds)
                        .Bind(10, r.finished_at)
                        .Bind(11, DumpJson(r.curves))
                        .Bind(12, DumpJson(r.explanations))
                        .Bind(13, DumpJson(r.params))
                        .Bind(14, DumpJson(r.search))
                        .Bind(15, DumpJson(r.tags))
                        .Bind(16, r.notes)
                        .Bind(17, r.experiment)
                        .Bind(18, r.task)
                        .Bind(19, r.learner)
                        .Bind(20, r.id)
                        .Exec());
    if (sqlite3_changes(db_) == 0) return Status::NotFound("run '" + r.id + "' not found");
    return Status::Ok();
  }

  Result<RunRecord> GetRun(const std::string& project, const std::string& id) override {
    std::lock_guard<std::mutex> lock(mu_);
    Stmt s(db_, std::string(kRunCols) + " WHERE project = ? AND id = ?");
    s.Bind(1, project).Bind(2, id);
    ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) return Status::NotFound("run '" + id + "' not found in project '" + project + "'");
    return ReadRun(s);
  }

  Result<std::vector<RunRecord>> ListRuns(const std::string& project, int64_t limit, bool with_trials) override {
    std::lock_guard<std::mutex> lock(mu_);
    Stmt s(db_, std::string(kRunCols) + " WHERE project = ?" + (with_trials ? "" : " AND kind != 'trial'") +
                    " ORDER BY created_at DESC LIMIT ?");
    s.Bind(1, project).Bind(2, limit);
    return sqlite::CollectRows(s, ReadRun);
  }

  Result<Json> ListExperiments(const std::string& project) override {
    std::lock_guard<std::mutex> lock(mu_);
    Stmt s(db_,
           "SELECT experiment, COUNT(*), MIN(created_at), MAX(created_at), "
           "SUM(CASE WHEN kind != 'trial' THEN 1 ELSE 0 END) FROM runs WHERE project = ? AND experiment != '' "
           "GROUP BY experiment ORDER BY MAX(created_at) DESC");
    s.Bind(1, project);
    Json out = Json::array();
    for (;;) {
      ASSIGN_OR_RETURN(bool row, s.Step());
      if (!row) break;
      out.push_back({{"name", s.Text(0)}, {"runs", s.Int(1)}, {"first_run_at", s.Int(2)},
                     {"last_run_at", s.Int(3)}, {"runs_without_trials", s.Int(4)}});
    }
    return out;
  }

  Result<std::vector<RunRecord>> ListChildRuns(const std::string& project, const std::string& parent) override {
    std::lock_guard<std::mutex> lock(mu_);
    Stmt s(db_, std::string(kRunCols) + " WHERE project = ? AND parent = ? ORDER BY created_at, id");
    s.Bind(1, project).Bind(2, parent);
    return sqlite::CollectRows(s, ReadRun);
  }

  Status SyncRunStatesFromJobs() override {
    std::lock_guard<std::mutex> lock(mu_);
    Stmt s(db_,
           "UPDATE runs SET state = j.state, error = j.error, finished_at = j.finished_at FROM jobs j "
           "WHERE runs.job_id = j.id AND runs.state IN ('queued', 'running') "
           "AND j.state IN ('failed', 'cancelled')");
    return s.Exec();
  }

  // ---- models
  Result<int64_t> AddModelVersion(ModelVersionRecord rec) override {
    std::lock_guard<std::mutex> lock(mu_);
    return InTransaction<int64_t>([&]() -> Result<int64_t> {
      {
        Stmt s(db_, "INSERT OR IGNORE INTO models(project, name, created_at) VALUES (?,?,?)");
        RETURN_IF_ERROR(s.Bind(1, rec.project).Bind(2, rec.model).Bind(3, rec.created_at).Exec());
      }
      ASSIGN_OR_RETURN(int64_t next,
                       NextVersionLocked("model_versions", "project = ? AND model = ?", {rec.project, rec.model}));
      Stmt s(db_,
             "INSERT INTO model_versions(project, model, version, run_id, blob, signature, metrics, task, "
             "created_at) VALUES (?,?,?,?,?,?,?,?,?)");
      RETURN_IF_ERROR(s.Bind(1, rec.project)
                          .Bind(2, rec.model)
                          .Bind(3, next)
                          .Bind(4, rec.run_id)
                          .Bind(5, rec.blob)
                          .Bind(6, DumpJson(rec.signature))
                          .Bind(7, DumpJson(rec.metrics))
                          .Bind(8, rec.task)
                          .Bind(9, rec.created_at)
                          .Exec());
      return next;
    });
  }

  Result<std::vector<std::string>> ListModels(const std::string& project) override {
    std::lock_guard<std::mutex> lock(mu_);
    Stmt s(db_, "SELECT name FROM models WHERE project = ? ORDER BY name");
    s.Bind(1, project);
    return sqlite::CollectRows(s, [](const Stmt& r) { return r.Text(0); });
  }

  Result<std::vector<ModelVersionRecord>> ListModelVersions(const std::string& project,
                                                            const std::string& model) override {
    std::lock_guard<std::mutex> lock(mu_);
    Stmt s(db_, std::string(kModelCols) + " WHERE project = ? AND model = ? ORDER BY version");
    s.Bind(1, project).Bind(2, model);
    ASSIGN_OR_RETURN(auto out, sqlite::CollectRows(s, ReadModel));
    if (out.empty()) return Status::NotFound("model '" + model + "' not found in project '" + project + "'");
    return out;
  }

  Result<ModelVersionRecord> GetModelVersion(const std::string& project, const std::string& model,
                                             int64_t version) override {
    std::lock_guard<std::mutex> lock(mu_);
    Stmt s(db_, std::string(kModelCols) +
                    (version > 0 ? " WHERE project = ? AND model = ? AND version = ?"
                                 : " WHERE project = ? AND model = ? ORDER BY version DESC LIMIT 1"));
    s.Bind(1, project).Bind(2, model);
    if (version > 0) s.Bind(3, version);
    ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) {
      if (version > 0)
        return Status::NotFound("model '" + model + "' has no version " + std::to_string(version));
      return Status::NotFound("model '" + model + "' not found in project '" + project + "'");
    }
    return ReadModel(s);
  }

  Status SetModelStage(const std::string& project, const std::string& model, int64_t version,
                       const std::string& stage, int64_t now) override {
    std::lock_guard<std::mutex> lock(mu_);
    return InTransaction<bool>([&]() -> Result<bool> {
             if (stage == "production") {
               Stmt s(db_,
                      "UPDATE model_versions SET stage = 'archived', stage_changed_at = ? WHERE project = ? AND "
                      "model = ? AND stage = 'production' AND version != ?");
               RETURN_IF_ERROR(s.Bind(1, now).Bind(2, project).Bind(3, model).Bind(4, version).Exec());
             }
             Stmt s(db_,
                    "UPDATE model_versions SET stage = ?, stage_changed_at = ? WHERE project = ? AND model = ? AND "
                    "version = ?");
             RETURN_IF_ERROR(s.Bind(1, stage).Bind(2, now).Bind(3, project).Bind(4, model).Bind(5, version).Exec());
             if (sqlite3_changes(db_) == 0) {
               return Status::NotFound("model '" + model + "' has no version " + std::to_string(version));
             }
             return true;
           })
        .status();
  }

  Status SetModelCard(const std::string& project, const std::string& model, int64_t version,
                      const Json& card) override {
    std::lock_guard<std::mutex> lock(mu_);
    Stmt s(db_, "UPDATE model_versions SET card = ? WHERE project = ? AND model = ? AND version = ?");
    RETURN_IF_ERROR(s.Bind(1, DumpJson(card)).Bind(2, project).Bind(3, model).Bind(4, version).Exec());
    if (sqlite3_changes(db_) == 0) return Status::NotFound("model '" + model + "' has no version " + std::to_string(version));
    return Status::Ok();
  }

  // ---- deployments
  Status CreateDeployment(const DeploymentRecord& d) override {
    std::lock_guard<std::mutex> lock(mu_);
    Stmt s(db_,
           "INSERT INTO deployments(project, name, model, version, state, created_at, updated_at, config) "
           "VALUES (?,?,?,?,?,?,?,?)");
    Status st = s.Bind(1, d.project)
                    .Bind(2, d.name)
                    .Bind(3, d.model)
                    .Bind(4, d.version)
                    .Bind(5, d.state)
                    .Bind(6, d.created_at)
                    .Bind(7, d.updated_at)
                    .Bind(8, d.config.dump())
                    .Exec();
    if (st.code() == StatusCode::kAlreadyExists) {
      return Status::AlreadyExists("deployment '" + d.name +
                                   "' already exists; PATCH it to change its version");
    }
    return st;
  }

  Status UpdateDeployment(const DeploymentRecord& d) override {
    std::lock_guard<std::mutex> lock(mu_);
    Stmt s(db_,
           "UPDATE deployments SET model = ?, version = ?, state = ?, updated_at = ?, config = ? WHERE project = ? "
           "AND name = ?");
    RETURN_IF_ERROR(s.Bind(1, d.model)
                        .Bind(2, d.version)
                        .Bind(3, d.state)
                        .Bind(4, d.updated_at)
                        .Bind(5, d.config.dump())
                        .Bind(6, d.project)
                        .Bind(7, d.name)
                        .Exec());
    if (sqlite3_changes(db_) == 0) return Status::NotFound("deployment '" + d.name + "' not found");
    return Status::Ok();
  }

  Status DeleteDeployment(const std::string& project, const std::string& name) override {
    std::lock_guard<std::mutex> lock(mu_);
    Stmt s(db_, "DELETE FROM deployments WHERE project = ? AND name = ?");
    RETURN_IF_ERROR(s.Bind(1, project).Bind(2, name).Exec());
    if (sqlite3_changes(db_) == 0) return Status::NotFound("deployment '" + name + "' not found");
    return Status::Ok();
  }

  Result<DeploymentRecord> GetDeployment(const std::string& project, const std::string& name) override {
    std::lock_guard<std::mutex> lock(mu_);
    Stmt s(db_, std::string(kDeploymentCols) + " WHERE project = ? AND name = ?");
    s.Bind(1, project).Bind(2, name);
    ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) return Status::NotFound("deployment '" + name + "' not found in project '" + project + "'");
    return ReadDeployment(s);
  }

  Result<std::vector<DeploymentRecord>> ListDeployments(const std::string& project) override {
    std::lock_guard<std::mutex> lock(mu_);
    Stmt s(db_, std::string(kDeploymentCols) + " WHERE project = ? ORDER BY name");
    s.Bind(1, project);
    return ReadDeployments(s);
  }

  Result<std::vector<DeploymentRecord>> ListAllDeployments() override {
    std::lock_guard<std::mutex> lock(mu_);
    Stmt s(db_, std::string(kDeploymentCols) + " ORDER BY project, name");
    return ReadDeployments(s);
  }

  Status AddDeploymentEvent(const DeploymentEventRecord& e) override {
    std::lock_guard<std::mutex> lock(mu_);
    Stmt s(db_, "INSERT INTO deployment_events(project, deployment, at, kind, detail) VALUES (?,?,?,?,?)");
    return s.Bind(1, e.project).Bind(2, e.deployment).Bind(3, e.at).Bind(4, e.kind).Bind(5, e.detail.dump()).Exec();
  }

  Result<std::vector<DeploymentEventRecord>> ListDeploymentEvents(const std::string& project,
                                                                  const std::string& deployment,
                                                                  int64_t limit) override {
    std::lock_guard<std::mutex> lock(mu_);
    Stmt s(db_,
           "SELECT project, deployment, at, kind, detail FROM deployment_events WHERE project = ? AND "
           "deployment = ? ORDER BY id DESC LIMIT ?");
    s.Bind(1, project).Bind(2, deployment).Bind(3, limit);
    return sqlite::CollectRows(s, [](const Stmt& r) {
      return DeploymentEventRecord{r.Text(0), r.Text(1), r.Int(2), r.Text(3), ParseStoredJson(r.Text(4))};
    });
  }

  Status AppendPredictions(const std::vector<PredictionRecord>& records) override {
    std::lock_guard<std::mutex> lock(log_mu_);
    return InTransaction<bool>([&]() -> Result<bool> {
             Stmt s(log_db_,
                    "INSERT INTO predictions(project, deployment, request_id, model, version, shadow, created_at, "
                    "latency_ms, inputs, outputs) VALUES (?,?,?,?,?,?,?,?,?,?)");
             for (const auto& p : records) {
               s.Reset();
               RETURN_IF_ERROR(s.Bind(1, p.project)
                                   .Bind(2, p.deployment)
                                   .Bind(3, p.request_id)
                                   .Bind(4, p.model)
                                   .Bind(5, p.version)
                                   .Bind(6, p.shadow)
                                   .Bind(7, p.created_at)
                                   .Bind(8, p.latency_ms)
                                   .Bind(9, p.inputs)
                                   .Bind(10, p.outputs)
                                   .Exec());
             }
             return true;
           }, log_db_)
        .status();
  }

  Result<int64_t> SetPredictionLabels(const std::string& project, const std::string& deployment,
                                      const std::string& request_id, const std::string& labels_json,
                                      int64_t labeled_at) override {
    std::lock_guard<std::mutex> lock(log_mu_);
    Stmt s(log_db_,
           "UPDATE predictions SET labels = ?, labeled_at = ? WHERE project = ? AND deployment = ? AND "
           "request_id = ? AND shadow = 0");
    RETURN_IF_ERROR(
        s.Bind(1, labels_json).Bind(2, labeled_at).Bind(3, project).Bind(4, deployment).Bind(5, request_id).Exec());
    return static_cast<int64_t>(sqlite3_changes(log_db_));
  }

  Result<std::vector<PredictionRecord>> ListPredictions(const std::string& project, const std::string& deployment,
                                                        const PredictionQuery& q) override {
    std::lock_guard<std::mutex> lock(log_mu_);
    std::string sql =
        "SELECT project, deployment, request_id, model, version, shadow, created_at, latency_ms, inputs, outputs, "
        "COALESCE(labels, ''), COALESCE(labeled_at, 0) FROM predictions WHERE project = ? AND deployment = ? AND "
        "created_at >= ?";
    if (q.labeled_only) sql += " AND labels IS NOT NULL";
    if (!q.include_shadow) sql += " AND shadow = 0";
    sql += " ORDER BY id DESC LIMIT ?";
    Stmt s(log_db_, sql);
    s.Bind(1, project).Bind(2, deployment).Bind(3, q.since).Bind(4, q.limit);
    return sqlite::CollectRows(s, [](const Stmt& r) {
      return PredictionRecord{r.Text(0), r.Text(1), r.Text(2),  r.Text(3),   r.Int(4),  r.Int(5) != 0,
                              r.Int(6),  r.Double(7), r.Text(8), r.Text(9), r.Text(10), r.Int(11)};
    });
  }

  // ---- audit log and usage (on the log connection: appends are frequent and must not wait for mu_)
  Status AppendAudit(const std::vector<AuditRecord>& records) override {
    std::lock_guard<std::mutex> lock(log_mu_);
    return InTransaction<bool>([&]() -> Result<bool> {
             Stmt s(log_db_, std::string("INSERT INTO audit_log(") + kAuditCols +
                                 ") VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)");
             for (const auto& a : records) {
               s.Reset();
               RETURN_IF_ERROR(s.Bind(1, a.seq).Bind(2, a.at_ms).Bind(3, a.actor).Bind(4, a.actor_id)
                                   .Bind(5, a.key_id).Bind(6, a.ip).Bind(7, a.action).Bind(8, a.project)
                                   .Bind(9, a.target).Bind(10, a.request_id).Bind(11, a.status)
                                   .Bind(12, a.outcome).Bind(13, a.detail).Bind(14, a.prev_hash)
                                   .Bind(15, a.hash).Exec());
             }
             return true;
           }, log_db_)
        .status();
  }

  Result<std::vector<AuditRecord>> ListAudit(const AuditQuery& q) override {
    std::lock_guard<std::mutex> lock(log_mu_);
    std::string sql = std::string("SELECT ") + kAuditCols + " FROM audit_log WHERE seq > ? AND at_ms >= ?";
    if (q.until_ms > 0) sql += " AND at_ms < ?";
    if (!q.actor.empty()) sql += " AND actor = ?";
    if (!q.project.empty()) sql += " AND project = ?";
    if (!q.action_prefix.empty()) sql += " AND substr(action, 1, ?) = ?";
    if (!q.outcome.empty()) sql += " AND outcome = ?";
    sql += " ORDER BY seq LIMIT ?";
    Stmt s(log_db_, sql);
    int i = 1;
    s.Bind(i++, q.after_seq);
    s.Bind(i++, q.since_ms);
    if (q.until_ms > 0) s.Bind(i++, q.until_ms);
    if (!q.actor.empty()) s.Bind(i++, q.actor);
    if (!q.project.empty()) s.Bind(i++, q.project);
    if (!q.action_prefix.empty()) {
      s.Bind(i++, static_cast<int64_t>(q.action_prefix.size()));
      s.Bind(i++, q.action_prefix);
    }
    if (!q.outcome.empty()) s.Bind(i++, q.outcome);
    s.Bind(i++, q.limit);
    return sqlite::CollectRows(s, ReadAudit);
  }

  Result<std::optional<AuditRecord>> LastAudit() override {
    std::lock_guard<std::mutex> lock(log_mu_);
    Stmt s(log_db_, std::string("SELECT ") + kAuditCols + " FROM audit_log ORDER BY seq DESC LIMIT 1");
    ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) return std::optional<AuditRecord>();
    return std::optional<AuditRecord>(ReadAudit(s));
  }

  Status AddUsage(const std::vector<UsageRecord>& records) override {
    std::lock_guard<std::mutex> lock(log_mu_);
    return InTransaction<bool>([&]() -> Result<bool> {
             Stmt s(log_db_,
                    "INSERT INTO usage(project, key_id, day, metric, quantity) VALUES (?,?,?,?,?) "
                    "ON CONFLICT(project, day, key_id, metric) DO UPDATE SET quantity = quantity + excluded.quantity");
             for (const auto& u : records) {
               s.Reset();
               RETURN_IF_ERROR(
                   s.Bind(1, u.project).Bind(2, u.key_id).Bind(3, u.day).Bind(4, u.metric).Bind(5, u.quantity).Exec());
             }
             return true;
           }, log_db_)
        .status();
  }

  Result<std::vector<UsageRecord>> ListUsage(const std::string& project, const std::string& from_day,
                                             const std::string& to_day) override {
    std::lock_guard<std::mutex> lock(log_mu_);
    std::string sql = "SELECT project, key_id, day, metric, quantity FROM usage WHERE day >= ?";
    if (!to_day.empty()) sql += " AND day <= ?";
    if (!project.empty()) sql += " AND project = ?";
    sql += " ORDER BY project, day, key_id, metric";
    Stmt s(log_db_, sql);
    int i = 1;
    s.Bind(i++, from_day);
    if (!to_day.empty()) s.Bind(i++, to_day);
    if (!project.empty()) s.Bind(i++, project);
    return sqlite::CollectRows(s, [](const Stmt& r) {
      return UsageRecord{r.Text(0), r.Text(1), r.Text(2), r.Text(3), r.Double(4)};
    });
  }

 private:
  static constexpr const char* kAuditCols =
      "seq, at_ms, actor, actor_id, key_id, ip, action, project, target, request_id, status, outcome, detail, "
      "prev_hash, hash";
  static AuditRecord ReadAudit(const Stmt& r) {
    return AuditRecord{r.Int(0),   r.Int(1),   r.Text(2),  r.Text(3),  r.Text(4),  r.Text(5),  r.Text(6), r.Text(7),
                       r.Text(8),  r.Text(9),  r.Int(10),  r.Text(11), r.Text(12), r.Text(13), r.Text(14)};
  }
  static constexpr const char* kDatasetVersionCols =
      "SELECT project, dataset, version, rows, columns, stats, blob, bytes, source, created_at, lineage, "
      "profile_blob, quarantine_blob, bad_rows, quality FROM dataset_versions";
  static constexpr const char* kDocumentCols =
      "SELECT project, kind, name, version, body, created_by, created_at FROM documents";
  static constexpr const char* kJobCols =
      "SELECT id, kind, project, state, progress, message, payload, result, error, cancel_requested, "
      "attempts, "
      "created_by, created_at, started_at, finished_at FROM jobs";
  static constexpr const char* kRunCols =
      "SELECT id, project, dataset, dataset_version, target, task, learner, params, split, state, metrics, "
      "signature, pipeline, model_blob, job_id, error, train_rows, test_rows, train_seconds, created_by, "
      "created_at, finished_at, curves, explanations, kind, parent, search, experiment, tags, notes, lathe_version "
      "FROM runs";
  static constexpr const char* kModelCols =
      "SELECT project, model, version, run_id, blob, signature, metrics, task, created_at, stage, "
      "stage_changed_at, card FROM model_versions";
  static constexpr const char* kDeploymentCols =
      "SELECT project, name, model, version, state, created_at, updated_at, config FROM deployments";

  int64_t SchemaVersionLocked() {
    Stmt s(db_, "SELECT COALESCE(MAX(version), 0) FROM schema_version");
    auto row = s.Step();
    return (row.ok() && *row) ? s.Int(0) : 0;
  }

  template <class T, class F>
  Result<T> InTransaction(F&& body, sqlite3* on = nullptr) {
    sqlite3* db = on != nullptr ? on : db_;
    RETURN_IF_ERROR(sqlite::ExecScript(db, "BEGIN IMMEDIATE"));
    Result<T> r = body();
    if (!r.ok()) {
      (void)sqlite::ExecScript(db, "ROLLBACK");
      return r;
    }
    Status st = sqlite::ExecScript(db, "COMMIT");
    if (!st.ok()) {
      (void)sqlite::ExecScript(db, "ROLLBACK");
      return st;
    }
    return r;
  }

  static MemberRecord ReadMember(const Stmt& r) {
    return MemberRecord{r.Text(0), r.Text(1), r.Text(2), r.Text(3), r.Int(4)};
  }

  Result<UserRecord> GetUser(const char* key, const std::string& value) {
    std::lock_guard<std::mutex> lock(mu_);
    Stmt s(db_, std::string(
                    "SELECT id, username, password_hash, is_admin, disabled, created_at FROM users WHERE ") +
                    key + " = ?");
    s.Bind(1, value);
    ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) return Status::NotFound("user not found");
    return UserRecord{s.Text(0), s.Text(1), s.Text(2), s.Int(3) != 0, s.Int(4) != 0, s.Int(5)};
  }

  Result<JobRecord> GetJobLocked(const std::string& id) {
    Stmt s(db_, std::string(kJobCols) + " WHERE id = ?");
    s.Bind(1, id);
    ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) return Status::NotFound("job '" + id + "' not found");
    return ReadJob(s);
  }

  static DatasetVersionRecord ReadDatasetVersion(const Stmt& s) {
    DatasetVersionRecord r;
    r.project = s.Text(0);
    r.dataset = s.Text(1);
    r.version = s.Int(2);
    r.rows = s.Int(3);
    r.columns = ParseStoredJson(s.Text(4));
    r.stats = ParseStoredJson(s.Text(5));
    r.blob = s.Text(6);
    r.bytes = s.Int(7);
    r.source = ParseStoredJson(s.Text(8));
    r.created_at = s.Int(9);
    r.lineage = ParseStoredJson(s.Text(10));
    r.profile_blob = s.Text(11);
    r.quarantine_blob = s.Text(12);
    r.bad_rows = s.Int(13);
    r.quality = ParseStoredJson(s.Text(14));
    return r;
  }

  static DocumentRecord ReadDocument(const Stmt& s) {
    return DocumentRecord{s.Text(0), s.Text(1), s.Text(2), s.Int(3), ParseStoredJson(s.Text(4)), s.Text(5), s.Int(6)};
  }

  Result<std::vector<std::string>> ModelsUsingLocked(const std::string& project, const std::string& dataset,
                                                     int64_t version) {
    Stmt s(db_,
           "SELECT m.model || '@' || m.version FROM model_versions m JOIN runs r ON r.id = m.run_id WHERE "
           "r.project = ? AND r.dataset = ? AND r.dataset_version = ? ORDER BY m.model, m.version");
    s.Bind(1, project).Bind(2, dataset).Bind(3, version);
    return sqlite::CollectRows(s, [](const Stmt& r) { return r.Text(0); });
  }

  static JobRecord ReadJob(const Stmt& s) {
    JobRecord j;
    j.id = s.Text(0);
    j.kind = s.Text(1);
    j.project = s.Text(2);
    auto st = ParseJobState(s.Text(3));
    j.state = st.ok() ? *st : JobState::kFailed;
    j.progress = s.Double(4);
    j.message = s.Text(5);
    j.payload = ParseStoredJson(s.Text(6));
    j.result = ParseStoredJson(s.Text(7));
    j.error = s.Text(8);
    j.cancel_requested = s.Int(9) != 0;
    j.attempts = s.Int(10);
    j.created_by = s.Text(11);
    j.created_at = s.Int(12);
    j.started_at = s.Int(13);
    j.finished_at = s.Int(14);
    return j;
  }

  static RunRecord ReadRun(const Stmt& s) {
    RunRecord r;
    r.id = s.Text(0);
    r.project = s.Text(1);
    r.dataset = s.Text(2);
    r.dataset_version = s.Int(3);
    r.target = s.Text(4);
    r.task = s.Text(5);
    r.learner = s.Text(6);
    r.params = ParseStoredJson(s.Text(7));
    r.split = ParseStoredJson(s.Text(8));
    r.state = s.Text(9);
    r.metrics = ParseStoredJson(s.Text(10));
    r.signature = ParseStoredJson(s.Text(11));
    r.pipeline = ParseStoredJson(s.Text(12));
    r.model_blob = s.Text(13);
    r.job_id = s.Text(14);
    r.error = s.Text(15);
    r.train_rows = s.Int(16);
    r.test_rows = s.Int(17);
    r.train_seconds = s.Double(18);
    r.created_by = s.Text(19);
    r.created_at = s.Int(20);
    r.finished_at = s.Int(21);
    r.curves = ParseStoredJson(s.Text(22));
    r.explanations = ParseStoredJson(s.Text(23));
    r.kind = s.Text(24);
    r.parent = s.Text(25);
    r.search = ParseStoredJson(s.Text(26));
    r.experiment = s.Text(27);
    r.tags = ParseStoredJson(s.Text(28));
    r.notes = s.Text(29);
    r.lathe_version = s.Text(30);
    return r;
  }

  static ModelVersionRecord ReadModel(const Stmt& s) {
    ModelVersionRecord m;
    m.project = s.Text(0);
    m.model = s.Text(1);
    m.version = s.Int(2);
    m.run_id = s.Text(3);
    m.blob = s.Text(4);
    m.signature = ParseStoredJson(s.Text(5));
    m.metrics = ParseStoredJson(s.Text(6));
    m.task = s.Text(7);
    m.created_at = s.Int(8);
    m.stage = s.Text(9);
    m.stage_changed_at = s.Int(10);
    m.card = ParseStoredJson(s.Text(11));
    return m;
  }

  static DeploymentRecord ReadDeployment(const Stmt& s) {
    return DeploymentRecord{s.Text(0), s.Text(1), s.Text(2), s.Int(3),
                            s.Text(4), s.Int(5),  s.Int(6),  ParseStoredJson(s.Text(7))};
  }

  Result<std::vector<DeploymentRecord>> ReadDeployments(Stmt& s) {
    return sqlite::CollectRows(s, ReadDeployment);
  }

  std::mutex mu_;
  sqlite3* db_;
  std::mutex log_mu_;         // guards log_db_
  sqlite3* log_db_ = nullptr;  // the prediction log's connection (same file)
};

}  // namespace

Result<std::unique_ptr<Store>> OpenSqliteStore(const std::string& path) {
  sqlite3* db = nullptr;
  int rc = sqlite3_open_v2(path.c_str(), &db,
                           SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX, nullptr);
  if (rc != SQLITE_OK) {
    Status st = sqlite::ErrorFromSqlite(db, rc, "opening " + path);
    sqlite3_close_v2(db);
    return st;
  }
  auto store = std::make_unique<SqliteStore>(db);
  RETURN_IF_ERROR(store->Init(path));
  return std::unique_ptr<Store>(std::move(store));
}

}  // namespace lathe
