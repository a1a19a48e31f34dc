#include "api/app.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <limits>
#include <thread>

#include "api/problem.h"
#include "api/serving.h"
#include "api/session.h"
#include "common/clock.h"
#include "common/crypto.h"
#include "common/log.h"

#ifndef LATHE_VERSION
#define LATHE_VERSION "0.1.0"
#endif

namespace lathe {

const char* LatheVersion() { return LATHE_VERSION; }

namespace fs = std::filesystem;

namespace {

// The audit chain key file holds 64 hex characters (32 bytes). Created with mode 0600 when absent; a file that
// exists but is malformed is an error (never silently replaced: that would break the chain's verification).
Result<std::string> LoadOrCreateKeyFile(const std::string& path) {
  std::error_code ec;
  if (!fs::exists(path, ec)) {
    std::string key = RandomBytes(32);
    std::string hex = HexEncode(key) + "\n";
    int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) return Status::FailedPrecondition("cannot create key file " + path + ": " + std::strerror(errno));
    bool ok = ::write(fd, hex.data(), hex.size()) == static_cast<ssize_t>(hex.size()) && ::fsync(fd) == 0;
    ::close(fd);
    if (!ok) return Status::Internal("cannot write key file " + path);
    LogInfo("created key file", {{"path", path}});
    return key;
  }
  ASSIGN_OR_RETURN(std::string text, ReadFile(path, 4096));
  auto key = Keyring::ParseKeyHex(text, "key file " + path);
  if (!key.ok()) return Status::FailedPrecondition(key.status().message());
  return key;
}

// Blobs under a key the ring lacks cannot be read: say so at start, loudly, without refusing to serve the rest.
void ReportUnreadableBlobs(const BlobStore& blobs, const Keyring& keyring, bool encrypting) {
  auto counts = blobs.CountByKeyId();
  if (!counts.ok()) {
    LogWarn("could not scan blobs for their master keys", {{"error", counts.status().ToString()}});
    return;
  }
  const auto held = keyring.Ids();
  for (const auto& [key_id, n] : *counts) {
    if (key_id.empty()) {
      if (!encrypting) continue;
      LogInfo("blobs stored before encryption at rest (encrypted by the next `lathe admin rotate-key`)",
              {{"count", std::to_string(n)}});
    } else if (std::find(held.begin(), held.end(), key_id) == held.end()) {
      LogError("blobs are encrypted under a master key this server does not hold; reading them fails until that "
               "key is supplied (" + keyring.SourceName() + ")",
               {{"key_id", key_id}, {"count", std::to_string(n)}, {"active_key_id", keyring.Active().id}});
    }
  }
}

}  // namespace

Result<std::unique_ptr<App>> App::Create(const AppConfig& config) {
  std::unique_ptr<App> app(new App(config));
  std::error_code ec;
  fs::create_directories(config.data_dir, ec);
  if (ec) return Status::FailedPrecondition("cannot create data dir " + config.data_dir + ": " + ec.message());
  ASSIGN_OR_RETURN(app->store_, OpenSqliteStore((fs::path(config.data_dir) / "lathe.db").string()));
  ASSIGN_OR_RETURN(std::string audit_key,
                   LoadOrCreateKeyFile(config.audit_key_file.empty()
                                           ? (fs::path(config.data_dir) / "audit.key").string()
                                           : config.audit_key_file));
  ASSIGN_OR_RETURN(app->audit_, AuditLog::Open(app->store_.get(), std::move(audit_key),
                                               (fs::path(config.data_dir) / "audit.head").string()));
  KeyringOptions keys{.key_file = config.master_key_file.empty()
                                      ? (fs::path(config.data_dir) / "master.key").string()
                                      : config.master_key_file,
                       .env_keys = config.master_key_env,
                       .state_dir = (fs::path(config.data_dir) / "keys").string()};
  ASSIGN_OR_RETURN(app->keyring_, Keyring::Load(keys));
  ASSIGN_OR_RETURN(app->blobs_, BlobStore::Open((fs::path(config.data_dir) / "blobs").string(), app->keyring_.get(),
                                                BlobStoreOptions{.encrypt = config.encrypt_blobs}));
  LogInfo("master keys loaded", {{"source", app->keyring_->SourceName()}, {"active_key_id", app->keyring_->Active().id},
                                 {"keys", std::to_string(app->keyring_->Ids().size())},
                                 {"encrypt_blobs", config.encrypt_blobs ? "true" : "false"}});
  ReportUnreadableBlobs(*app->blobs_, *app->keyring_, config.encrypt_blobs);
  app->auth_ = std::make_unique<AuthService>(app->store_.get(), AuthOptions{.token_ttl_s = config.token_ttl_s});
  RETURN_IF_ERROR(app->auth_->Bootstrap(config.admin_password));
  RETURN_IF_ERROR(app->store_->EnsureProject("default"));
  RETURN_IF_ERROR(app->store_->DeleteExpiredTokens(NowMicros()));
  app->usage_ = std::make_unique<UsageMeter>(app->store_.get(), config.prices);
  app->jobs_ = std::make_unique<JobRunner>(app->store_.get(), config.workers);
  UsageMeter* usage = app->usage_.get();
  app->jobs_->SetAdmission([usage](const std::string& kind, const std::string& project) {
    return usage->CheckJob(kind, project);
  });
  app->jobs_->SetRanObserver([usage](const JobRecord& job, double seconds) {
    // Training is billed by the CPU it holds: its wall-clock time on every core (training uses them all).
    static const std::set<std::string> kTraining = {"train", "tune", "automl", "compress"};
    if (kTraining.count(job.kind)) {
      usage->Add(job.project, "", kMetricTrainingCpu,
                 seconds * static_cast<double>(std::max(1u, std::thread::hardware_concurrency())));
    }
  });
  app->model_cache_ = std::make_unique<ModelCache>(config.model_cache_mb * (int64_t{1} << 20));
  app->serving_ = std::make_unique<ServingRuntime>(*app);

  Store* store = app->store_.get();
  app->metrics_.AddCollector([store] {
    CollectedFamily f{"lathe_jobs", "Jobs by state", MetricType::kGauge, {}};
    for (const char* s : {"queued", "running", "succeeded", "failed", "cancelled"}) {
      f.samples.push_back({{{"state", s}}, 0});
    }
    auto counts = store->CountJobsByState();
    if (counts.ok()) {
      for (const auto& [state, n] : *counts) {
        for (auto& sample : f.samples) {
          if (sample.labels[0].second == state) sample.value = static_cast<double>(n);
        }
      }
    }
    return std::vector<CollectedFamily>{f};
  });
  DeploymentRegistry* live = &app->deployments_;
  app->metrics_.AddCollector([live] {
    return std::vector<CollectedFamily>{
        {"lathe_deployments_live", "Deployments loaded and serving", MetricType::kGauge,
         {{{}, static_cast<double>(live->size())}}}};
  });

  RegisterSystemRoutes(app->router_, *app);
  RegisterAuthRoutes(app->router_, *app);
  RegisterTenancyRoutes(app->router_, *app);
  RegisterDatasetRoutes(app->router_, *app);
  RegisterRunRoutes(app->router_, *app);
  RegisterSearchRoutes(app->router_, *app);
  RegisterJobRoutes(app->router_, *app);
  RegisterModelRoutes(app->router_, *app);
  RegisterDeploymentRoutes(app->router_, *app);
  RegisterDatasetSettingsRoutes(app->router_, *app);
  RegisterRecipeRoutes(app->router_, *app);
  RegisterConnectionRoutes(app->router_, *app);
  RegisterLabelRoutes(app->router_, *app);
  RegisterBatchRoutes(app->router_, *app);
  RegisterPrivacyRoutes(app->router_, *app);
  RegisterAuditRoutes(app->router_, *app);
  RegisterSsoRoutes(app->router_, *app);
  RegisterUsageRoutes(app->router_, *app);
  RegisterAdminRoutes(app->router_, *app);
  RegisterTrainJob(*app);
  RegisterImportJob(*app);
  RegisterRecipeJob(*app);
  return app;
}

App::~App() { Stop(); }

Status App::Start() {
  RETURN_IF_ERROR(usage_->Start());
  RETURN_IF_ERROR(jobs_->Start());
  RETURN_IF_ERROR(LoadDeployments(*this));
  serving_->Start();
  ready_ = true;
  return Status::Ok();
}

void App::Stop() {
  ready_ = false;
  if (jobs_) jobs_->Stop();
  if (serving_) serving_->Stop();
  if (usage_) usage_->Stop();
}

BodyPolicy App::OnHeaders(const HttpRequest& req) {
  auto m = router_.Find(req.method, req.path);
  if (m.kind == Router::MatchKind::kMatched && m.route->upload) {
    return BodyPolicy{.spool_to_file = true, .max_bytes = config_.max_upload_bytes};
  }
  return BodyPolicy{.spool_to_file = false, .max_bytes = config_.max_body_bytes};
}

void App::Handle(HttpRequest& req, HttpResponse& res) {
  auto m = router_.Find(req.method, req.path);
  if (m.kind != Router::MatchKind::kMatched) {
    res.route = "unmatched";
    if (m.kind == Router::MatchKind::kWrongMethod) {
      WriteProblem(405, "method " + req.method + " is not allowed on " + req.path + "; allowed: " + m.allow, req, res);
      res.headers.emplace_back("Allow", m.allow);
    } else {
      WriteProblem(404, "no route for " + req.method + " " + req.path, req, res);
    }
    return;
  }
  const Route& route = *m.route;
  res.route = route.pattern;
  RequestContext ctx{req, res, Caller{}, std::move(m.params)};
  Status st;
  bool denied = false;  // refused by authentication or authorization (audited as "denied")
  bool public_route = route.permission == Permission::kPublic ||
                      (config_.metrics_public && route.pattern == "/metrics");
  auto health = [&] {
    return route.pattern == "/healthz" || route.pattern == "/readyz" || route.pattern.rfind("/v2/health", 0) == 0;
  };
  if (config_.rate_limit_ip.enabled() && !health()) {
    // The client address without its port ("[::1]:5000" -> "[::1]", "10.0.0.7:5000" -> "10.0.0.7").
    const std::string& addr = req.remote_addr;
    const size_t colon = addr.rfind(':');
    st = TakeRate("ip:" + (colon == std::string::npos ? addr : addr.substr(0, colon)), config_.rate_limit_ip,
                  "client address", res);
  }
  if (!st.ok()) {
    // refused by the address limit: no authentication work for it
  } else if (!public_route) {
    const std::string* authz = req.Header("authorization");
    // Without an Authorization header, a browser session's cookie (api/session.h) stands for it.
    std::optional<std::string> session;
    std::string session_bearer;
    if (!authz) {
      session = CookieValue(req, kSessionCookie);
      if (session && !session->empty()) {
        session_bearer = "Bearer " + *session;
        authz = &session_bearer;
      }
    }
    if (!authz) {
      st = Status::Unauthenticated("this route needs 'Authorization: Bearer <token or API key>'; log in at "
                                   "POST /api/v1/auth/login");
    } else {
      auto caller = session && session->rfind("lt_", 0) != 0
                        ? Result<Caller>(Status::Unauthenticated("the session cookie is invalid; log in again"))
                        : auth_->Authenticate(*authz);
      if (!caller.ok()) {
        st = caller.TakeStatus();
      } else {
        ctx.caller = std::move(caller).value();
        res.caller = ctx.caller.username;
        if (session && req.method != "GET" && req.method != "HEAD") st = CheckCsrf(req, *session);
        if (st.ok()) st = auth_->Authorize(ctx.caller, route.permission, ctx.Project());
        if (st.ok() && ctx.caller.IsApiKey()) st = CheckApiKeyScope(ctx, route);
        if (st.ok() && ctx.caller.IsApiKey() && config_.rate_limit_key.enabled()) {
          st = TakeRate("key:" + ctx.caller.key_id, config_.rate_limit_key, "API key", res);
        } else if (st.ok() && !ctx.caller.IsApiKey() && config_.rate_limit_user.enabled()) {
          st = TakeRate("user:" + ctx.caller.user_id, config_.rate_limit_user, "user", res);
        }
      }
    }
    if (st.ok() && !ctx.Project().empty()) st = CheckProject(ctx.Project());
    denied = !st.ok() && st.code() != StatusCode::kResourceExhausted;
  }
  if (st.ok()) {
    try {
      st = route.handler(ctx);
    } catch (const std::exception& e) {
      st = Status::Internal(std::string("unhandled exception: ") + e.what());
    }
  }
  AuditRequest(ctx, route, st, denied);
  if (!st.ok()) {
    if (HttpStatusFor(st.code()) >= 500) {
      LogError("request failed", {{"request_id", req.request_id}, {"route", route.pattern},
                                  {"error", st.ToString()}});
    }
    WriteProblem(st, req, res);
  }
}

Status App::TakeRate(const std::string& key, const RateLimit& limit, const std::string& scope, HttpResponse& res) {
  const RateDecision d = rate_limiter_.Take(key, limit, NowMicros());
  // Several limits may apply to one request: the headers describe the one with the fewest requests left.
  int64_t shown = std::numeric_limits<int64_t>::max();
  for (const auto& [name, value] : res.headers) {
    if (name == "RateLimit-Remaining") shown = std::atoll(value.c_str());
  }
  if (d.remaining < shown || !d.allowed) {
    std::erase_if(res.headers, [](const auto& h) { return h.first.rfind("RateLimit-", 0) == 0; });
    res.headers.emplace_back("RateLimit-Limit", std::to_string(d.limit));
    res.headers.emplace_back("RateLimit-Remaining", std::to_string(d.remaining));
    res.headers.emplace_back("RateLimit-Reset", std::to_string(d.reset_s));
  }
  if (d.allowed) return Status::Ok();
  res.headers.emplace_back("Retry-After", std::to_string(d.retry_after_s));
  char rate[32];
  std::snprintf(rate, sizeof(rate), "%g", limit.per_second);
  return Status::ResourceExhausted("rate limit exceeded: " + std::string(rate) + " requests per second per " + scope +
                                   " (burst " + std::to_string(d.limit) + "); retry in " +
                                   std::to_string(d.retry_after_s) + " s");
}

// What Authorize cannot see from a permission alone: an API key may not call user-only routes, and a key
// for one deployment may call no other.
Status App::CheckApiKeyScope(const RequestContext& ctx, const Route& route) {
  if (route.user_only) return Status::PermissionDenied("an API key cannot " + route.summary.substr(0, 80) + "; log in as a user");
  const std::string& only = ctx.caller.key_deployment;
  if (only.empty() || route.permission != Permission::kPredict) return Status::Ok();
  std::string deployment = ctx.Param("deployment");
  if (deployment.empty() && route.pattern.find("/deployments/{name}") != std::string::npos) deployment = ctx.Param("name");
  if (deployment.empty()) deployment = ctx.Param("model");
  if (!deployment.empty() && deployment != only) {
    return Status::PermissionDenied("this API key may only call deployment '" + only + "'");
  }
  return Status::Ok();
}

// Audited: every call that changes something (any method but GET/HEAD, less routes marked changes_nothing),
// except calls of deployments, which are
// the data plane (an API key's use of them, and of read routes, is recorded once per key per minute as
// "key.use"); every login attempt (password or single sign-on); and every refusal by authentication or
// authorization, whatever the method.
void App::AuditRequest(const RequestContext& ctx, const Route& route, const Status& st, bool denied) {
  const bool read_only = ctx.req.method == "GET" || ctx.req.method == "HEAD" || route.changes_nothing;
  const bool data_plane = route.permission == Permission::kPredict;
  // Decided before anything is allocated: this runs for every prediction.
  bool key_use = false;
  // Logins (password and single sign-on) are audited whatever their method; whoami is a plain read.
  const bool login = route.permission == Permission::kPublic && route.pattern.rfind("/api/v1/auth/", 0) == 0;
  if (!login && !denied && !(!st.ok() && (HttpStatusFor(st.code()) == 401 || HttpStatusFor(st.code()) == 403))) {
    if (data_plane || read_only) {
      if (!ctx.caller.IsApiKey() || !KeyUseDue(ctx.caller.key_id, NowMicros() / 1000)) return;
      key_use = true;
    }
    if (route.permission == Permission::kPublic) return;
  }
  std::string action = key_use ? std::string("key.use") : ctx.req.method + " " + route.pattern;
  AuditRecord e;
  e.actor = ctx.caller.username.empty() ? ctx.audit_actor : ctx.caller.username;
  e.actor_id = ctx.caller.user_id;
  e.key_id = ctx.caller.key_id;
  const std::string& addr = ctx.req.remote_addr;
  const size_t colon = addr.rfind(':');
  e.ip = colon == std::string::npos ? addr : addr.substr(0, colon);
  e.action = std::move(action);
  e.project = ctx.Project();
  e.target = ctx.req.path.substr(0, 1024);
  e.request_id = ctx.req.request_id;
  // A deferred (micro-batched) answer is not known yet; the handler's status is.
  e.status = st.ok() ? ctx.res.status : HttpStatusFor(st.code());
  denied = denied || e.status == 401 || e.status == 403;
  e.outcome = denied ? "denied" : (st.ok() && e.status < 400 ? "ok" : "failed");
  Json detail = ctx.audit;
  if (!st.ok()) detail["error"] = st.message().substr(0, 300);
  e.detail = detail.dump(-1, ' ', false, Json::error_handler_t::replace);
  audit_->Record(std::move(e));
}

bool App::KeyUseDue(const std::string& key_id, int64_t now_ms) {
  const int64_t minute = now_ms / 60000;
  std::lock_guard<std::mutex> lock(key_use_mu_);
  int64_t& last = key_use_minute_[key_id];
  if (last == minute) return false;
  last = minute;
  return true;
}

Status App::CheckProject(const std::string& project) {
  {
    std::shared_lock lock(projects_mu_);
    if (known_projects_.count(project)) return Status::Ok();
  }
  ASSIGN_OR_RETURN(bool exists, store_->ProjectExists(project));
  if (!exists) return Status::NotFound("project '" + project + "' not found");
  std::unique_lock lock(projects_mu_);
  known_projects_.insert(project);
  return Status::Ok();
}

void App::OnRejected(const HttpRequest& req, int status, const std::string& detail, HttpResponse& res) {
  WriteProblem(status, detail, req, res);
  res.route = "rejected";
}

// ---- system routes: health, readiness, metrics, OpenAPI
void RegisterSystemRoutes(Router& router, App& app) {
  router.Add({.method = "GET", .pattern = "/healthz", .permission = Permission::kPublic,
              .handler = [](RequestContext& ctx) {
                WriteJson(200, {{"status", "ok"}}, ctx.res);
                return Status::Ok();
              },
              .summary = "Liveness: the process is up", .tag = "system"});
  router.Add({.method = "GET", .pattern = "/readyz", .permission = Permission::kPublic,
              .handler = [&app](RequestContext& ctx) {
                if (!app.ready()) return Status::Unavailable("lathe is starting or stopping");
                if (app.store().SchemaVersion() != CurrentSchemaVersion()) {
                  return Status::Unavailable("metadata store is not reachable");
                }
                WriteJson(200, {{"status", "ready"}}, ctx.res);
                return Status::Ok();
              },
              .summary = "Readiness: store reachable, jobs and deployments loaded", .tag = "system"});
  router.Add({.method = "GET", .pattern = "/metrics", .permission = Permission::kAdmin,
              .handler = [&app](RequestContext& ctx) {
                ctx.res.status = 200;
                ctx.res.content_type = "text/plain; version=0.0.4; charset=utf-8";
                ctx.res.body = app.metrics().RenderPrometheus();
                return Status::Ok();
              },
              .summary = "Prometheus metrics (public unless metrics_public=false)", .tag = "system"});
  router.Add({.method = "POST", .pattern = "/api/v1/ping", .permission = Permission::kAuthenticated,
              .handler = [](RequestContext& ctx) {
                WriteJson(200, {{"ok", true}}, ctx.res);
                return Status::Ok();
              },
              .summary = "Authenticated no-op: the floor of the HTTP + auth path (used by benchmarks)",
              .tag = "system", .changes_nothing = true});
  router.Add({.method = "GET", .pattern = "/api/v1/openapi.json", .permission = Permission::kAuthenticated,
              .handler = [&app](RequestContext& ctx) {
                WriteJson(200, app.router().OpenApi(LATHE_VERSION), ctx.res);
                return Status::Ok();
              },
              .summary = "This API's OpenAPI 3.1 document, generated from the route table", .tag = "system"});
}

Status RespondWithJob(App& app, RequestContext& ctx, const JobRecord& job, bool wait, Json accepted) {
  if (wait) {
    ASSIGN_OR_RETURN(JobRecord done, app.jobs().Wait(job.id, app.config().import_wait_s * 1000));
    if (done.state == JobState::kSucceeded) {
      Json out = done.result;
      out["job"] = job.id;
      WriteJson(201, out, ctx.res);
      return Status::Ok();
    }
    if (done.state == JobState::kFailed && done.result.contains("error")) return StatusFromJson(done.result["error"]);
    if (done.state == JobState::kCancelled) return Status::Cancelled("job " + done.id + " was cancelled");
  }
  ctx.res.headers.emplace_back("Location", "/api/v1/jobs/" + job.id);
  accepted["job"] = job.id;
  accepted["state"] = JobStateName(job.state);
  WriteJson(202, accepted, ctx.res);
  return Status::Ok();
}

}  // namespace lathe
