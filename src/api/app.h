// App: the lathe service. Owns the store, blobs, auth, job runner, live deployments and metrics; builds
// the route table; and implements HttpService so the HTTP server hands it every request:
//   route lookup -> authenticate -> authorize(route permission, project) -> handler -> response,
// with problem+json for every error. (Per-route request metrics are recorded by the server from
// HttpResponse::route into metrics(); pass it as ServerOptions::metrics.)
#pragma once

#include <atomic>
#include <memory>
#include <set>
#include <shared_mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "api/router.h"
#include "api/serving.h"
#include "api/usage.h"
#include "auth/audit_log.h"
#include "auth/auth.h"
#include "data/address_policy.h"
#include "serving/rate_limiter.h"
#include "jobs/job_runner.h"
#include "monitor/metrics.h"
#include "serving/deployment_registry.h"
#include "serving/model_cache.h"
#include "server/http_server.h"
#include "store/blob_store.h"
#include "store/keyring.h"
#include "store/store.h"

namespace lathe {

class DatasetFile;
class OidcClient;

// Single sign-on with an OpenID Connect provider (api/routes_sso.cc); off while issuer is empty.
struct OidcConfig {
  std::string issuer;          // exactly as the provider's discovery document names itself
  std::string client_id;
  std::string client_secret;
  std::string redirect_uri;    // this server's …/api/v1/auth/oidc/callback as the provider knows it
  std::string scope = "openid profile email";
  std::string username_claim = "preferred_username";
  std::string groups_claim = "groups";
  std::string admin_group;     // members of this group are server admins ("" = the provider makes no admins)
  int64_t jwks_min_refresh_s = 30;  // a token signed by an unknown key refetches the provider's keys at most this often
  struct RoleGrant {
    std::string group, project, role;
  };
  std::vector<RoleGrant> role_map;  // group -> role in a project, kept in sync at every login
  bool enabled() const { return !issuer.empty(); }
};
// "group=project:role,group2=project2:role2" -> grants; kInvalidArgument naming the bad entry.
Result<std::vector<OidcConfig::RoleGrant>> ParseOidcRoleMap(const std::string& text);

struct AppConfig {
  std::string data_dir = "./lathe-data";
  std::string admin_password;            // LATHE_ADMIN_PASSWORD; empty = generate once and log it
  int workers = 2;                       // concurrent jobs
  size_t max_body_bytes = 16 << 20;      // JSON bodies
  size_t max_upload_bytes = size_t{16} << 30;  // dataset uploads (spooled to disk)
  size_t max_json_depth = 64;
  int64_t max_predict_rows = 10000;      // instances per predict request
  int64_t model_cache_mb = 4096;         // loaded models' memory budget (serving/model_cache.h); 0 = none
  int64_t max_page_rows = 10000;         // rows per browse request
  int64_t max_browse_rows = 5000000;     // largest version that browse may sort or filter in memory
  int64_t token_ttl_s = 7 * 24 * 3600;
  bool metrics_public = true;            // GET /metrics without a token
  std::string master_key_file;           // "" = data_dir/master.key (created with mode 0600 if absent)
  std::string audit_key_file;            // "" = data_dir/audit.key: the audit log's chain key (created if absent)
  std::string master_key_env;            // LATHE_MASTER_KEY ("HEX[,HEX…]"); non-empty = keys come from it alone
  bool encrypt_blobs = true;             // encrypt new blobs at rest (store/blob_store.h); reading always works
  std::string sqlite_dir;                // SQLite files users may import from; "" = disabled
  AddressPolicy http_source_addresses;   // where HTTP sources may connect: public addresses + these ranges
  int64_t import_wait_s = 3600;          // an upload waits this long for its import job, then 202
  // Rate limits (serving/rate_limiter.h; off by default): per client address on every route but the health
  // checks, per user and per API key on authenticated routes. A deployment adds its own (limits.rate_*).
  RateLimit rate_limit_ip, rate_limit_user, rate_limit_key;
  OidcConfig oidc;
  PriceTable prices;  // usage statements (api/usage.h)
};

class App : public HttpService {
 public:
  static Result<std::unique_ptr<App>> Create(const AppConfig& config);
  ~App() override;

  // Starts the job workers and loads live deployments; after this /readyz is 200.
  Status Start();
  // Stops the job workers (running jobs finish their current step).
  void Stop();

  BodyPolicy OnHeaders(const HttpRequest& req) override;
  void Handle(HttpRequest& req, HttpResponse& res) override;
  void OnRejected(const HttpRequest& req, int status, const std::string& detail, HttpResponse& res) override;

  const AppConfig& config() const { return config_; }
  Store& store() { return *store_; }
  BlobStore& blobs() { return *blobs_; }
  AuthService& auth() { return *auth_; }
  JobRunner& jobs() { return *jobs_; }
  DeploymentRegistry& deployments() { return deployments_; }
  ModelCache& model_cache() { return *model_cache_; }
  // Takes one request from `key`'s bucket under `limit`; records the tightest decision of this request in the
  // response's RateLimit-* headers, and refused is kResourceExhausted (429) with Retry-After, naming `scope`.
  Status TakeRate(const std::string& key, const RateLimit& limit, const std::string& scope, HttpResponse& res);
  ServingRuntime& serving() { return *serving_; }
  AuditLog& audit() { return *audit_; }
  UsageMeter& usage() { return *usage_; }
  MetricsRegistry& metrics() { return metrics_; }
  const Router& router() const { return router_; }
  // The master keys: wrap blob data keys, seal secrets at rest (connection passwords, header values).
  Keyring& keyring() { return *keyring_; }
  // One key rotation at a time: true if this call took the slot (release with EndRotation).
  bool BeginRotation() { return !rotating_.exchange(true); }
  void EndRotation() { rotating_ = false; }
  bool ready() const { return ready_.load(); }
  // kNotFound unless the project exists. Known projects are cached: this is on every request's path.
  Status CheckProject(const std::string& project);

 private:
  static Status CheckApiKeyScope(const RequestContext& ctx, const Route& route);
  // The audit entry of a finished request, if it needs one (see docs/security.md, "Audit log").
  void AuditRequest(const RequestContext& ctx, const Route& route, const Status& st, bool denied);
  bool KeyUseDue(const std::string& key_id, int64_t now_ms);
  explicit App(const AppConfig& config) : config_(config) {}

  AppConfig config_;
  std::unique_ptr<Keyring> keyring_;  // before blobs_: the blob store refers to it
  std::atomic<bool> rotating_{false};
  std::unique_ptr<Store> store_;
  std::unique_ptr<AuditLog> audit_;  // after store_: flushes into it when destroyed
  std::unique_ptr<BlobStore> blobs_;
  std::unique_ptr<AuthService> auth_;
  std::unique_ptr<UsageMeter> usage_;  // before jobs_: the runner's hooks call it
  std::unique_ptr<JobRunner> jobs_;
  std::unique_ptr<ModelCache> model_cache_;  // before deployments_: their slots refer to it
  RateLimiter rate_limiter_;
  DeploymentRegistry deployments_;
  std::unique_ptr<ServingRuntime> serving_;  // after deployments_: its threads read the registry
  MetricsRegistry metrics_;
  Router router_;
  std::atomic<bool> ready_{false};
  std::shared_mutex projects_mu_;
  std::set<std::string> known_projects_;  // guarded by projects_mu_; projects are never deleted today
  std::mutex key_use_mu_;
  std::unordered_map<std::string, int64_t> key_use_minute_;  // API key id -> minute of its last key.use entry
};

// The version lathe reports (OpenAPI, runs).
const char* LatheVersion();

// Route registration, one function per resource (routes_*.cc).
void RegisterSystemRoutes(Router& router, App& app);
void RegisterAuthRoutes(Router& router, App& app);
void RegisterTenancyRoutes(Router& router, App& app);
void RegisterDatasetRoutes(Router& router, App& app);
void RegisterRunRoutes(Router& router, App& app);
void RegisterJobRoutes(Router& router, App& app);
void RegisterModelRoutes(Router& router, App& app);
void RegisterDeploymentRoutes(Router& router, App& app);
void RegisterDatasetSettingsRoutes(Router& router, App& app);
void RegisterRecipeRoutes(Router& router, App& app);
void RegisterConnectionRoutes(Router& router, App& app);
void RegisterLabelRoutes(Router& router, App& app);
void RegisterBatchRoutes(Router& router, App& app);  // and its job
void RegisterSearchRoutes(Router& router, App& app);  // tuning and AutoML, and their jobs
void RegisterPrivacyRoutes(Router& router, App& app);  // export and erase one person's data
void RegisterAuditRoutes(Router& router, App& app);    // the audit log: query, export, verify
void RegisterSsoRoutes(Router& router, App& app);      // OpenID Connect login and callback
void RegisterUsageRoutes(Router& router, App& app);    // quotas, usage and statements
void RegisterAdminRoutes(Router& router, App& app);    // key rotation, and its job

// Job kinds (registered with the JobRunner by App::Create).
void RegisterTrainJob(App& app);
void RegisterImportJob(App& app);
void RegisterRecipeJob(App& app);
// Opens the columnar file of a dataset version (memory-mapped).
Result<std::unique_ptr<DatasetFile>> OpenDatasetVersion(App& app, const DatasetVersionRecord& v);
// Answers the request that submitted `job`: with `wait`, waits up to import_wait_s and answers 201 with the
// job's result (plus "job") or the job's own error; otherwise, or while it still runs, 202 with `accepted`
// (plus "job" and "state") and Location: /api/v1/jobs/{id}.
Status RespondWithJob(App& app, RequestContext& ctx, const JobRecord& job, bool wait, Json accepted);
// Loads every stored deployment into the live registry (at start).
Status LoadDeployments(App& app);

}  // namespace lathe
