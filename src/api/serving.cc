#include "api/serving.h"

#include <chrono>

#include "api/app.h"
#include "api/data_import.h"
#include "common/clock.h"
#include "common/log.h"

namespace lathe {
namespace {

int StatsKind(const ml::Predictor& p) {
  const std::string task = p.Task();
  return task == "binary" ? 0 : task == "multiclass" ? 1 : 2;
}

Result<ServingVersion> LoadOne(App& app, const std::string& project, const std::string& model, int64_t version,
                               const LoadedDeployment* previous) {
  if (previous != nullptr) {
    for (const auto& r : previous->routes) {
      if (r.model == model && r.version == version) return r;
    }
    if (previous->shadow && previous->shadow->model == model && previous->shadow->version == version) {
      return *previous->shadow;
    }
  }
  ASSIGN_OR_RETURN(ModelVersionRecord mv, app.store().GetModelVersion(project, model, version));
  const std::string what = "model '" + model + "' version " + std::to_string(mv.version);
  // One slot per model version for the whole process; its loader reads the bundle again after an unload.
  BlobStore* blobs = &app.blobs();
  ModelCache::Loader loader = [blobs, blob = mv.blob, salt = PiiSalt(app, project),
                               what]() -> Result<std::shared_ptr<ml::Predictor>> {
    auto bytes = blobs->Get(blob);
    if (!bytes.ok()) return Status::FailedPrecondition(what + " cannot be loaded: " + bytes.status().message());
    auto predictor = ml::Predictor::Load(*bytes, salt);
    if (!predictor.ok()) {
      return Status::FailedPrecondition(what + " cannot be loaded: " + predictor.status().message());
    }
    return predictor;
  };
  ServingVersion sv;
  sv.model = model;
  sv.version = mv.version;
  sv.model_slot = app.model_cache().Slot(project + "/" + model + "/" + std::to_string(mv.version), std::move(loader));
  // Loaded now: a deploy of a file that cannot load is refused at once (the cache may unload it later).
  ASSIGN_OR_RETURN(std::shared_ptr<ml::Predictor> p, sv.model_slot->Acquire());
  sv.task = p->Task();
  sv.label_keys = p->pipeline().label_keys();
  std::vector<std::string> labels;
  if (sv.task == "multiclass") labels = sv.label_keys;
  sv.stats = std::make_shared<VersionStats>(StatsKind(*p), std::move(labels), p->unsupervised() ? p->OutputWidth() : 1);
  return sv;
}

// The log's stored form of a request's instances: the JSON array of instance objects.
std::string InputsText(RequestInstances& inputs) {
  auto text = inputs.TakeText();
  return text.ok() ? std::move(text).value() : "[]";
}

}  // namespace

std::string LabelText(const Json& label) { return label.is_string() ? label.get<std::string>() : label.dump(); }

ServingRuntime::ServingRuntime(App& app) : app_(app) {
  Store* store = &app.store();
  log_ = std::make_unique<PredictionLog>([store](std::vector<PredictionLogEntry>& batch) {
    std::vector<PredictionRecord> records;
    records.reserve(batch.size());
    for (auto& e : batch) {
      records.push_back(PredictionRecord{.project = std::move(e.project),
                                         .deployment = std::move(e.deployment),
                                         .request_id = std::move(e.request_id),
                                         .model = std::move(e.model),
                                         .version = e.version,
                                         .shadow = e.shadow,
                                         .created_at = e.created_at,
                                         .latency_ms = e.latency_ms,
                                         .inputs = InputsText(e.inputs),
                                         .outputs = std::move(e.outputs)});
    }
    return store->AppendPredictions(records);
  });
  // Per-version serving series in /metrics, read from the live stats at scrape time.
  DeploymentRegistry* registry = &app.deployments();
  PredictionLog* log = log_.get();
  std::atomic<uint64_t>* shadow_dropped = &shadow_dropped_;
  ModelCache* cache = &app.model_cache();
  app.metrics().AddCollector([registry, log, shadow_dropped, cache] {
    CollectedFamily requests{"lathe_deployment_requests_total", "Prediction requests per deployment version",
                             MetricType::kCounter, {}};
    CollectedFamily errors{"lathe_deployment_errors_total", "Failed prediction requests per deployment version",
                           MetricType::kCounter, {}};
    CollectedFamily latency{"lathe_deployment_latency_ms", "Prediction latency quantiles per deployment version",
                            MetricType::kGauge, {}};
    CollectedFamily weight{"lathe_deployment_route_weight", "Traffic weight of each route", MetricType::kGauge, {}};
    for (const auto& d : registry->All()) {
      auto add = [&](const ServingVersion& v, const char* role) {
        LabelPairs labels = {{"project", d->project}, {"deployment", d->name}, {"model", v.model},
                             {"version", std::to_string(v.version)}, {"role", role}};
        Json s = v.stats->ToJson();
        requests.samples.push_back({labels, s["requests"].get<double>()});
        errors.samples.push_back({labels, s["errors"].get<double>()});
        for (const char* q : {"p50", "p90", "p99"}) {
          LabelPairs l = labels;
          l.emplace_back("quantile", q);
          latency.samples.push_back({l, s["latency_ms"][q].get<double>()});
        }
        if (std::string(role) == "route") weight.samples.push_back({labels, v.weight});
      };
      for (const auto& r : d->routes) add(r, "route");
      if (d->shadow) add(*d->shadow, "shadow");
    }
    CollectedFamily logged{"lathe_prediction_log_entries_total", "Prediction log entries by outcome",
                           MetricType::kCounter,
                           {{{{"outcome", "written"}}, static_cast<double>(log->written())},
                            {{{"outcome", "dropped"}}, static_cast<double>(log->dropped())}}};
    CollectedFamily shadow{"lathe_shadow_dropped_total", "Shadow copies dropped because the shadow queue was full",
                           MetricType::kCounter, {{{}, static_cast<double>(shadow_dropped->load())}}};
    const Json c = cache->ToJson();
    auto gauge = [&](const char* name, const char* help, const char* key, MetricType type = MetricType::kGauge) {
      return CollectedFamily{name, help, type, {{{}, c[key].get<double>()}}};
    };
    return std::vector<CollectedFamily>{
        requests, errors, latency, weight, logged, shadow,
        gauge("lathe_model_cache_bytes", "Estimated memory of the loaded models", "loaded_bytes"),
        gauge("lathe_model_cache_budget_bytes", "The loaded models' memory budget (0 = none)", "budget_bytes"),
        gauge("lathe_model_cache_loaded", "Model versions loaded", "loaded"),
        gauge("lathe_model_cache_loads_total", "Model loads (first use and reloads after an unload)", "loads",
              MetricType::kCounter),
        gauge("lathe_model_cache_unloads_total", "Models unloaded to stay within the budget", "unloads",
              MetricType::kCounter)};
  });
}

ServingRuntime::~ServingRuntime() { Stop(); }

void ServingRuntime::Start() {
  std::lock_guard lock(mu_);
  if (started_) return;
  started_ = true;
  stop_ = false;
  shadow_thread_ = std::thread([this] { ShadowLoop(); });
  monitor_thread_ = std::thread([this] { MonitorLoop(); });
}

void ServingRuntime::Stop() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  wake_.notify_all();
  if (shadow_thread_.joinable()) shadow_thread_.join();
  if (monitor_thread_.joinable()) monitor_thread_.join();
  if (log_) log_->Flush();
}

Result<std::shared_ptr<const LoadedDeployment>> ServingRuntime::Build(const DeploymentRecord& record,
                                                                      const LoadedDeployment* previous) {
  ASSIGN_OR_RETURN(DeploymentConfig config, ParseDeploymentConfig(record.config, DeploymentConfig{}));
  if (config.routes.empty()) config.routes.push_back(RouteSpec{record.model, record.version, 1});
  auto live = std::make_shared<LoadedDeployment>();
  live->project = record.project;
  live->name = record.name;
  for (auto& r : config.routes) {
    ASSIGN_OR_RETURN(ServingVersion sv, LoadOne(app_, record.project, r.model, r.version, previous));
    r.version = sv.version;
    sv.weight = r.weight;
    // Micro-batching: a version keeps its batcher (and its queue) while the options stay the same.
    if (!config.batching) {
      sv.batcher.reset();
    } else if (!sv.batcher || !(sv.batcher->options() == *config.batching)) {
      // The batcher holds the model: a version with micro-batching stays loaded.
      ASSIGN_OR_RETURN(std::shared_ptr<ml::Predictor> p, sv.model_slot->Acquire());
      sv.batcher = std::make_shared<MicroBatcher>(std::move(p), *config.batching);
    }
    live->routes.push_back(std::move(sv));
  }
  if (config.shadow) {
    ASSIGN_OR_RETURN(ServingVersion sv, LoadOne(app_, record.project, config.shadow->model, config.shadow->version,
                                                previous));
    config.shadow->version = sv.version;
    sv.batcher.reset();  // the shadow worker predicts directly
    sv.weight = 0;
    live->shadow = std::move(sv);
  }
  live->config = std::move(config);
  live->gate = previous != nullptr && previous->gate ? previous->gate : std::make_shared<AdmissionGate>();
  live->log_budget =
      previous != nullptr && previous->log_budget ? previous->log_budget : std::make_shared<RateBudget>();
  return std::shared_ptr<const LoadedDeployment>(std::move(live));
}

void ServingRuntime::OfferShadow(std::shared_ptr<const LoadedDeployment> d, RequestInstances instances,
                                 std::string request_id) {
  {
    std::lock_guard lock(mu_);
    if (stop_ || !started_ || shadow_queue_.size() >= kShadowQueue) {
      shadow_dropped_.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    shadow_queue_.push_back(ShadowTask{std::move(d), std::move(instances), std::move(request_id)});
  }
  wake_.notify_all();
}

void ServingRuntime::ShadowLoop() {
  std::unique_lock lock(mu_);
  for (;;) {
    wake_.wait(lock, [&] { return stop_ || !shadow_queue_.empty(); });
    if (stop_) return;
    ShadowTask task = std::move(shadow_queue_.front());
    shadow_queue_.pop_front();
    lock.unlock();
    RunShadow(task);
    lock.lock();
  }
}

void ServingRuntime::RunShadow(ShadowTask& task) {
  const LoadedDeployment& d = *task.deployment;
  if (!d.shadow) return;
  const ServingVersion& sv = *d.shadow;
  const auto t0 = std::chrono::steady_clock::now();
  auto model = sv.model_slot->Acquire();
  if (!model.ok()) {
    sv.stats->Record(NowMicros(), 0, true, nullptr, 0);
    return;
  }
  const ml::Predictor& predictor = **model;
  std::vector<float> rows;
  size_t n = 0;
  Status st;
  const std::string* body = task.instances.body();
  if (body == nullptr || !predictor.direct_input() ||
      !DecodeRequestRows(*body, task.instances.shape(), predictor.pipeline(), d.config.input,
                         ml::Predictor::kMaxInstances, &rows, &n)) {
    auto instances = task.instances.Take();
    if (!instances.ok()) return;  // the request itself was answered with this error; nothing to shadow
    st = predictor.EncodeInstances(*instances, &rows, d.config.input);
    n = instances->size();
    task.instances = RequestInstances(std::move(instances).value());
  }
  std::vector<float> out;
  std::string outputs;
  if (st.ok()) {
    out.resize(n * predictor.OutputWidth());
    predictor.PredictRows(rows.data(), n, out.data());
    outputs = predictor.PredictionsText(out.data(), n);
  }
  const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  const int64_t now = NowMicros();
  sv.stats->Record(now, ms, !st.ok(), st.ok() ? out.data() : nullptr, n);
  if (!st.ok()) return;
  log_->Offer(PredictionLogEntry{.project = d.project,
                                 .deployment = d.name,
                                 .request_id = std::move(task.request_id),
                                 .model = sv.model,
                                 .version = sv.version,
                                 .shadow = true,
                                 .created_at = now,
                                 .latency_ms = ms,
                                 .inputs = std::move(task.instances),
                                 .outputs = std::move(outputs)});
}

void ServingRuntime::MonitorLoop() {
  std::unique_lock lock(mu_);
  while (!stop_) {
    wake_.wait_for(lock, std::chrono::seconds(1), [&] { return stop_; });
    if (stop_) return;
    lock.unlock();
    CheckRollbacks(NowMicros());
    lock.lock();
  }
}

void ServingRuntime::CheckRollbacks(int64_t now_us) {
  for (const auto& d : app_.deployments().All()) {
    if (!d->config.rollback) continue;
    const RollbackPolicy& policy = *d->config.rollback;
    for (size_t i = 1; i < d->routes.size(); ++i) {
      const ServingVersion& canary = d->routes[i];
      if (canary.weight <= 0) continue;
      const VersionStats::Window w = canary.stats->Recent(now_us, policy.window_s);
      if (w.requests < policy.min_requests) continue;
      const double error_rate = static_cast<double>(w.errors) / static_cast<double>(w.requests);
      std::string reason;
      if (error_rate > policy.max_error_rate) {
        reason = "error rate " + std::to_string(error_rate) + " over the limit " + std::to_string(policy.max_error_rate);
      } else if (policy.max_p99_ms > 0 && w.p99_ms > policy.max_p99_ms) {
        reason = "p99 latency " + std::to_string(w.p99_ms) + " ms over the limit " + std::to_string(policy.max_p99_ms) +
                 " ms";
      } else {
        continue;
      }
      std::lock_guard mutate(mutate_mu_);
      auto current = app_.deployments().Get(d->project, d->name);
      if (current != d) break;  // changed meanwhile: judge the new configuration on the next pass
      auto record = app_.store().GetDeployment(d->project, d->name);
      if (!record.ok()) break;
      DeploymentConfig config = d->config;
      config.routes[i].weight = 0;
      double total = 0;
      for (const auto& r : config.routes) total += r.weight;
      if (total <= 0) config.routes[0].weight = 1;
      record->config = DeploymentConfigJson(config);
      record->updated_at = now_us;
      auto rebuilt = Build(*record, d.get());
      if (!rebuilt.ok() || !app_.store().UpdateDeployment(*record).ok()) break;
      app_.deployments().Put(std::move(rebuilt).value());
      Json detail = {{"model", canary.model},      {"version", canary.version}, {"reason", reason},
                     {"window_s", policy.window_s}, {"requests", w.requests},    {"errors", w.errors},
                     {"p99_ms", w.p99_ms}};
      (void)app_.store().AddDeploymentEvent(
          DeploymentEventRecord{d->project, d->name, now_us, "rollback", detail});
      LogWarn("canary rolled back", {{"project", d->project}, {"deployment", d->name}, {"model", canary.model},
                                     {"version", canary.version}, {"reason", reason}});
      break;  // the deployment changed: the next pass judges the new configuration
    }
  }
}

}  // namespace lathe
