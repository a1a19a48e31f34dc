// Store: lathe's metadata (users, tokens, datasets, runs, models, deployments, jobs) behind one interface.
// SQL lives only in the implementations (sqlite_store.cc now; PostgreSQL later). Every method is one
// transaction: it either fully applies or returns an error and changes nothing. Implementations are
// thread-safe. Timestamps are microseconds since the Unix epoch.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/json.h"
#include "common/status.h"

namespace lathe {

struct UserRecord {
  std::string id;
  std::string username;
  std::string password_hash;  // argon2id PHC string
  bool is_admin = false;
  bool disabled = false;
  int64_t created_at = 0;
};

// A user's role in one project (auth/ decides what each role may do).
struct MemberRecord {
  std::string project;
  std::string user_id;
  std::string username;  // filled by reads
  std::string role;
  int64_t created_at = 0;
};

struct TokenRecord {
  std::string token_hash;  // SHA-256 hex of the bearer token; the token itself is never stored
  std::string user_id;
  int64_t created_at = 0;
  int64_t expires_at = 0;
  bool revoked = false;
};

// An API key of a project: the key itself is shown once and stored only as its SHA-256.
struct ApiKeyRecord {
  std::string id;           // also the key's recognisable prefix: "lk_<id>_..."
  std::string project;
  std::string name;
  std::string token_hash;   // SHA-256 hex of the whole key
  std::string permissions;  // comma-separated permission names (auth::PermissionName)
  std::string deployment;   // "" = any deployment of the project
  std::string created_by;   // user id
  int64_t created_at = 0;
  int64_t expires_at = 0;    // 0 = never
  int64_t revoked_at = 0;    // 0 = active
  int64_t last_used_at = 0;  // 0 = never used
};

struct DatasetVersionRecord {
  std::string project;
  std::string dataset;
  int64_t version = 0;
  int64_t rows = 0;
  Json columns = Json::array();  // [{"name","type","missing"}]
  Json stats = Json::object();
  std::string blob;               // blob id of the columnar file
  int64_t bytes = 0;
  Json source = Json::object();   // {"kind":"upload","format":"csv","filename":...}
  int64_t created_at = 0;
  Json lineage = Json::object();  // {"parent":{"dataset","version"},"recipe":{"name","version","steps"}} or {}
  std::string profile_blob;       // blob id of the profile JSON (zstd), "" if not computed
  std::string quarantine_blob;    // blob id of the quarantined bad rows (JSON lines), "" if none
  int64_t bad_rows = 0;           // rows skipped or quarantined at import
  Json quality = Json::object();  // the data-contract report: {"passed":bool,"checks":[...]} or {}
};

// New content for an existing dataset version (Store::RewriteDatasetVersions): `record` replaces every stored
// field of (record.project, record.dataset, record.version) except created_at, provided the stored blob is
// still `expected_blob`.
struct DatasetVersionRewrite {
  DatasetVersionRecord record;
  std::string expected_blob;
};

// A named, versioned JSON document in a project: recipes ("recipe"), connections ("connection"),
// dataset settings ("dataset_settings"), label queues ("label_queue"). Every Put adds a version.
struct DocumentRecord {
  std::string project;
  std::string kind;
  std::string name;
  int64_t version = 0;
  Json body = Json::object();
  std::string created_by;
  int64_t created_at = 0;
};

struct LabelRecord {
  std::string project;
  std::string queue;
  int64_t row_index = 0;  // 0-based row of the queue's dataset version
  std::string labeler;    // user id
  std::string label;
  int64_t created_at = 0;
};

struct DatasetSummary {
  std::string project;
  std::string name;
  int64_t latest_version = 0;
  int64_t versions = 0;
  int64_t created_at = 0;
  int64_t updated_at = 0;
};

enum class JobState { kQueued, kRunning, kSucceeded, kFailed, kCancelled };
const char* JobStateName(JobState s);
Result<JobState> ParseJobState(const std::string& s);
inline bool IsTerminal(JobState s) {
  return s == JobState::kSucceeded || s == JobState::kFailed || s == JobState::kCancelled;
}

struct JobRecord {
  std::string id;
  std::string kind;      // "train", ...
  std::string project;
  JobState state = JobState::kQueued;
  double progress = 0;
  std::string message;   // latest progress message
  Json payload = Json::object();
  Json result = Json::object();
  std::string error;
  bool cancel_requested = false;
  int64_t attempts = 0;
  std::string created_by;
  int64_t created_at = 0, started_at = 0, finished_at = 0;
};

struct RunRecord {
  std::string id;
  std::string project;
  std::string dataset;
  int64_t dataset_version = 0;
  std::string target, task, learner;
  Json params = Json::object();
  Json split = Json::object();
  std::string state = "queued";  // mirrors its job: queued|running|succeeded|failed|cancelled
  Json metrics = Json::object();
  Json signature = Json::object();
  Json pipeline = Json::object();
  Json explanations = Json::object();  // ml/explain.h GlobalImportance of the model (ml/train.h)
  Json curves = Json::object();  // learning curves: {"metric","source","train":[per round],"valid":[per round]}
  std::string kind = "train";  // "train" | "tune" | "automl" | "trial" (a child of a tune/automl run)
  std::string parent;          // trials: the search run
  Json search = Json::object();  // tune/automl: the request (space, sampler, budget...) and its outcome
  std::string experiment;        // a free name grouping runs ("" = none)
  Json tags = Json::object();    // {"key": "value"}
  std::string notes;
  std::string lathe_version;
  std::string model_blob;  // blob id of the model bundle once trained
  std::string job_id;
  std::string error;
  int64_t train_rows = 0, test_rows = 0;
  double train_seconds = 0;
  std::string created_by;
  int64_t created_at = 0, finished_at = 0;
};

struct ModelVersionRecord {
  std::string project;
  std::string model;
  int64_t version = 0;
  std::string run_id;
  std::string blob;
  Json signature = Json::object();
  Json metrics = Json::object();
  std::string task;
  int64_t created_at = 0;
  std::string stage = "none";  // "none" | "staging" | "production" | "archived"
  int64_t stage_changed_at = 0;
  Json card = Json::object();  // the user's part of the model card: description, intended_use, limitations
};

struct DeploymentRecord {
  std::string project;
  std::string name;
  std::string model;     // the stable route's model (config.routes[0])
  int64_t version = 0;   // and version
  std::string state = "ready";
  int64_t created_at = 0, updated_at = 0;
  Json config = Json::object();  // serving/deployment_config.h: routes, shadow, input policy, rollback, log
};

// Something that happened to a deployment: created, updated, rolled back, failed to load.
struct DeploymentEventRecord {
  std::string project;
  std::string deployment;
  int64_t at = 0;
  std::string kind;  // "created" | "updated" | "rollback" | "load_failed"
  Json detail = Json::object();
};

// One logged prediction request (serving/prediction_log.h) and, once feedback arrives, its ground truth.
struct PredictionRecord {
  std::string project;
  std::string deployment;
  std::string request_id;
  std::string model;
  int64_t version = 0;
  bool shadow = false;
  int64_t created_at = 0;
  double latency_ms = 0;
  std::string inputs = "[]";   // JSON text: the instances
  std::string outputs = "[]";  // JSON text: the predictions
  std::string labels;          // JSON text: one label per instance; "" until feedback
  int64_t labeled_at = 0;
};

// One entry of the audit log (auth/audit_log.h describes the chain that links them).
struct AuditRecord {
  int64_t seq = 0;          // 1, 2, 3, … without gaps
  int64_t at_ms = 0;        // epoch milliseconds
  std::string actor;        // username; for a failed login the name that was tried; "" when unknown
  std::string actor_id;     // user id, "" when unknown
  std::string key_id;       // the API key's id when the call used one
  std::string ip;           // client address
  std::string action;       // "POST /api/v1/projects/{project}/datasets", "login", "key.use", …
  std::string project;      // "" for server-wide actions
  std::string target;       // the request path (or the object acted on)
  std::string request_id;
  int64_t status = 0;       // HTTP status answered (0 when not an HTTP call)
  std::string outcome;      // "ok", "denied" or "failed"
  std::string detail = "{}";  // JSON object text
  std::string prev_hash;    // hash of entry seq-1 (64 zeros for the first)
  std::string hash;         // HMAC-SHA256 over this entry's fields and prev_hash
};

// Filters of an audit query; entries come oldest first, seq > after_seq.
struct AuditQuery {
  int64_t after_seq = 0;
  int64_t since_ms = 0;      // at_ms >= since_ms
  int64_t until_ms = 0;      // at_ms < until_ms (0 = no bound)
  std::string actor;         // exact
  std::string project;       // exact
  std::string action_prefix;
  std::string outcome;       // exact
  int64_t limit = 100;
};

// Usage of one project (and API key, "" for calls made without one) on one UTC day, by metric.
struct UsageRecord {
  std::string project;
  std::string key_id;
  std::string day;     // "YYYY-MM-DD"
  std::string metric;  // "predictions", "rows_scored", "training_cpu_seconds", "storage_gb_hours"
  double quantity = 0;
};

struct PredictionQuery {
  bool labeled_only = false;
  bool include_shadow = false;
  int64_t since = 0;     // created_at >= since
  int64_t limit = 1000;  // newest first
};

class Store {
 public:
  virtual ~Store() = default;

  // Schema
  virtual int64_t SchemaVersion() = 0;

  // Users and tokens
  virtual Status CreateUser(const UserRecord& user) = 0;  // kAlreadyExists on a taken username
  virtual Result<UserRecord> GetUserByName(const std::string& username) = 0;
  virtual Result<UserRecord> GetUserById(const std::string& id) = 0;
  virtual Result<int64_t> CountUsers() = 0;
  virtual Result<std::vector<UserRecord>> ListUsers() = 0;
  // Replaces password_hash, is_admin and disabled of the user with u.id (kNotFound if none).
  virtual Status UpdateUser(const UserRecord& u) = 0;
  virtual Status CreateToken(const TokenRecord& token) = 0;
  virtual Result<TokenRecord> GetToken(const std::string& token_hash) = 0;
  virtual Status RevokeToken(const std::string& token_hash) = 0;
  virtual Status DeleteExpiredTokens(int64_t now) = 0;
  // API keys. GetApiKeyByHash: kNotFound if none. RevokeApiKey: kNotFound unless an active key `id` of
  // `project` exists. TouchApiKey records a use.
  virtual Status CreateApiKey(const ApiKeyRecord& key) = 0;
  virtual Result<ApiKeyRecord> GetApiKeyByHash(const std::string& token_hash) = 0;
  virtual Result<std::vector<ApiKeyRecord>> ListApiKeys(const std::string& project) = 0;
  virtual Status RevokeApiKey(const std::string& project, const std::string& id, int64_t when) = 0;
  virtual Status TouchApiKey(const std::string& id, int64_t when) = 0;

  // Projects
  virtual Status EnsureProject(const std::string& name) = 0;
  virtual Result<bool> ProjectExists(const std::string& name) = 0;
  // Creates the project with `owner` as its member in role "owner", in one transaction; kAlreadyExists if
  // the name is taken.
  virtual Status CreateProject(const std::string& name, const std::string& owner_user_id) = 0;
  virtual Result<std::vector<std::string>> ListProjects() = 0;
  // Members: one role per user and project. SetMember inserts or replaces.
  virtual Status SetMember(const MemberRecord& m) = 0;
  virtual Status RemoveMember(const std::string& project, const std::string& user_id) = 0;  // kNotFound
  virtual Result<std::vector<MemberRecord>> ListMembers(const std::string& project) = 0;
  virtual Result<std::vector<MemberRecord>> ListMemberships(const std::string& user_id) = 0;

  // Datasets: a version number is assigned atomically (max+1) and returned in `rec.version`.
  virtual Result<int64_t> AddDatasetVersion(DatasetVersionRecord rec) = 0;
  virtual Result<std::vector<DatasetSummary>> ListDatasets(const std::string& project) = 0;
  virtual Result<std::vector<DatasetVersionRecord>> ListDatasetVersions(const std::string& project,
                                                                        const std::string& dataset) = 0;
  // version 0 = latest
  virtual Result<DatasetVersionRecord> GetDatasetVersion(const std::string& project, const std::string& dataset,
                                                         int64_t version) = 0;
  virtual Status SetDatasetVersionProfile(const std::string& project, const std::string& dataset, int64_t version,
                                          const std::string& profile_blob) = 0;
  // "model@version" for every registered model version trained on this dataset version.
  virtual Result<std::vector<std::string>> ModelsUsingDatasetVersion(const std::string& project,
                                                                     const std::string& dataset,
                                                                     int64_t version) = 0;
  // Deletes one version. kFailedPrecondition naming the models if a registered model version references it.
  // Returns the deleted record (its blobs are the caller's to release). The dataset disappears with its
  // last version.
  virtual Result<DatasetVersionRecord> DeleteDatasetVersion(const std::string& project, const std::string& dataset,
                                                            int64_t version) = 0;
  // The one path that changes the data of existing versions (erasure, api/routes_privacy.cc), in one
  // transaction: applies every rewrite, then adds `append` as a new version (numbered as by AddDatasetVersion;
  // its number is returned, 0 when there is none), then adds `document` as a new document version.
  // kFailedPrecondition (and nothing changed) if a rewritten version is gone or its blob is no longer the
  // expected one (a concurrent rewrite).
  virtual Result<int64_t> RewriteDatasetVersions(const std::vector<DatasetVersionRewrite>& rewrites,
                                                 const std::optional<DatasetVersionRecord>& append,
                                                 const std::optional<DocumentRecord>& document) = 0;
  // Bytes of every dataset version of the project (its columnar files), for quotas and metering.
  virtual Result<int64_t> ProjectStorageBytes(const std::string& project) = 0;
  // True if any dataset version, run or model version still points at blob id `blob`.
  virtual Result<bool> BlobReferenced(const std::string& blob) = 0;

  // Documents: Put assigns version max+1 and returns it; version 0 = latest; Delete removes every version.
  virtual Result<int64_t> PutDocument(DocumentRecord doc) = 0;
  virtual Result<DocumentRecord> GetDocument(const std::string& project, const std::string& kind,
                                             const std::string& name, int64_t version) = 0;
  // The latest version of each document of `kind` in the project, by name.
  virtual Result<std::vector<DocumentRecord>> ListDocuments(const std::string& project, const std::string& kind) = 0;
  virtual Result<std::vector<DocumentRecord>> ListDocumentVersions(const std::string& project,
                                                                   const std::string& kind,
                                                                   const std::string& name) = 0;
  virtual Status DeleteDocument(const std::string& project, const std::string& kind, const std::string& name) = 0;
  // Rewrites one stored version's body in place (no new version): for re-sealing secrets under a new master
  // key. kNotFound when that version does not exist.
  virtual Status ReplaceDocumentBody(const std::string& project, const std::string& kind, const std::string& name,
                                     int64_t version, const Json& body) = 0;

  // Labels: one label per (queue, row, labeler); a later submission by the same labeler replaces it.
  virtual Status PutLabels(const std::vector<LabelRecord>& labels) = 0;
  virtual Result<std::vector<LabelRecord>> ListLabels(const std::string& project, const std::string& queue) = 0;
  virtual Status DeleteLabels(const std::string& project, const std::string& queue) = 0;

  // Jobs
  virtual Status CreateJob(const JobRecord& job) = 0;
  virtual Result<JobRecord> GetJob(const std::string& id) = 0;
  virtual Result<std::vector<JobRecord>> ListJobs(const std::string& project, int64_t limit) = 0;
  // Atomically moves the oldest queued job (of the given kinds, or any if empty) to running.
  virtual Result<std::optional<JobRecord>> ClaimNextJob(int64_t now) = 0;
  virtual Status UpdateJobProgress(const std::string& id, double progress, const std::string& message) = 0;
  virtual Status AppendJobLog(const std::string& id, const std::string& line, int64_t now) = 0;
  virtual Result<std::vector<std::pair<int64_t, std::string>>> GetJobLog(const std::string& id, int64_t limit) = 0;
  // Sets a terminal state. Refuses (kFailedPrecondition) if the job is already terminal.
  virtual Status FinishJob(const std::string& id, JobState state, const Json& result, const std::string& error,
                           int64_t now) = 0;
  // Queued -> cancelled immediately; running -> cancel_requested. Returns the updated job.
  virtual Result<JobRecord> RequestJobCancel(const std::string& id, int64_t now) = 0;
  // At start: every job left running by a dead process is failed with `error`. Returns how many.
  virtual Result<int64_t> FailRunningJobs(const std::string& error, int64_t now) = 0;
  virtual Result<std::vector<std::pair<std::string, int64_t>>> CountJobsByState() = 0;

  // Runs
  virtual Status CreateRun(const RunRecord& run) = 0;
  virtual Status UpdateRun(const RunRecord& run) = 0;
  virtual Result<RunRecord> GetRun(const std::string& project, const std::string& id) = 0;
  // Newest first; the trials of searches only when `with_trials`.
  virtual Result<std::vector<RunRecord>> ListRuns(const std::string& project, int64_t limit, bool with_trials) = 0;
  // Experiments of a project: name, number of runs, first and last run time; by last run, newest first.
  virtual Result<Json> ListExperiments(const std::string& project) = 0;
  // The trials of a search run, oldest first.
  virtual Result<std::vector<RunRecord>> ListChildRuns(const std::string& project, const std::string& parent) = 0;
  // Runs whose job is no longer running get its terminal state (repairs after a crash).
  virtual Status SyncRunStatesFromJobs() = 0;

  // Models
  virtual Result<int64_t> AddModelVersion(ModelVersionRecord rec) = 0;
  virtual Result<std::vector<std::string>> ListModels(const std::string& project) = 0;
  virtual Result<std::vector<ModelVersionRecord>> ListModelVersions(const std::string& project,
                                                                    const std::string& model) = 0;
  // version 0 = latest
  // Moves a version to `stage`; moving one to "production" archives the version that was in production, in
  // the same transaction (at most one production version per model).
  virtual Status SetModelStage(const std::string& project, const std::string& model, int64_t version,
                               const std::string& stage, int64_t now) = 0;
  virtual Status SetModelCard(const std::string& project, const std::string& model, int64_t version,
                              const Json& card) = 0;
  virtual Result<ModelVersionRecord> GetModelVersion(const std::string& project, const std::string& model,
                                                     int64_t version) = 0;

  // Deployments
  virtual Status CreateDeployment(const DeploymentRecord& d) = 0;  // kAlreadyExists
  virtual Status UpdateDeployment(const DeploymentRecord& d) = 0;  // kNotFound
  virtual Status DeleteDeployment(const std::string& project, const std::string& name) = 0;
  virtual Result<DeploymentRecord> GetDeployment(const std::string& project, const std::string& name) = 0;
  virtual Result<std::vector<DeploymentRecord>> ListDeployments(const std::string& project) = 0;
  virtual Result<std::vector<DeploymentRecord>> ListAllDeployments() = 0;
  virtual Status AddDeploymentEvent(const DeploymentEventRecord& e) = 0;
  // Newest first.
  virtual Result<std::vector<DeploymentEventRecord>> ListDeploymentEvents(const std::string& project,
                                                                          const std::string& deployment,
                                                                          int64_t limit) = 0;

  // Prediction log. AppendPredictions writes all records in one transaction.
  virtual Status AppendPredictions(const std::vector<PredictionRecord>& records) = 0;
  // Sets the labels of the (non-shadow) logged request; returns how many records matched (0 = not logged).
  virtual Result<int64_t> SetPredictionLabels(const std::string& project, const std::string& deployment,
                                              const std::string& request_id, const std::string& labels_json,
                                              int64_t labeled_at) = 0;
  virtual Result<std::vector<PredictionRecord>> ListPredictions(const std::string& project,
                                                                const std::string& deployment,
                                                                const PredictionQuery& query) = 0;

  // Audit log (append-only). AppendAudit writes all records in one transaction.
  virtual Status AppendAudit(const std::vector<AuditRecord>& records) = 0;
  virtual Result<std::vector<AuditRecord>> ListAudit(const AuditQuery& query) = 0;
  // The entry with the highest seq, if any.
  virtual Result<std::optional<AuditRecord>> LastAudit() = 0;

  // Usage metering. AddUsage adds each record's quantity to its (project, key, day, metric) row, in one
  // transaction. ListUsage: the rows of `project` ("" = every project) with from_day <= day <= to_day
  // (strings "YYYY-MM-DD"; "" = unbounded), ordered by project, day, key, metric.
  virtual Status AddUsage(const std::vector<UsageRecord>& records) = 0;
  virtual Result<std::vector<UsageRecord>> ListUsage(const std::string& project, const std::string& from_day,
                                                     const std::string& to_day) = 0;
};

// Opens (creating if needed) the SQLite store at `path`, applying pending migrations. Refuses to open a
// database whose schema is newer than this binary knows.
Result<std::unique_ptr<Store>> OpenSqliteStore(const std::string& path);

// The schema version this binary writes.
int64_t CurrentSchemaVersion();

}  // namespace lathe
