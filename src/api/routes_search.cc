// Searches: hyper-parameter tuning (POST …/tune) and AutoML (POST …/automl). Each is a run of kind "tune" or
// "automl" executed as a job; every trial is recorded as a child run (kind "trial", parent = the search run)
// as it finishes; at the end the search run holds the chosen model, so it registers like any run.
#include <algorithm>
#include <mutex>
#include <set>

#include "api/app.h"
#include "api/params.h"
#include "api/problem.h"
#include "api/runs.h"
#include "common/clock.h"
#include "common/ids.h"
#include "ml/automl.h"
#include "ml/learner_registry.h"
#include "ml/train.h"
#include "ml/tune.h"

namespace lathe {
namespace {

constexpr double kMaxBudgetSeconds = 7 * 86400;
constexpr int64_t kMinAutoMlRows = 10;

Status FieldError(const std::string& field, const std::string& message) {
  return Status::InvalidArgument(field + ": " + message).WithDetail(ErrorDetail::Field(field, message));
}

// The fields of `body` that ParseRunRequest knows, so the search fields can be validated separately.
Json RunFields(const Json& body, const std::set<std::string>& search_fields) {
  Json run = Json::object();
  for (auto it = body.begin(); it != body.end(); ++it) {
    if (!search_fields.count(it.key())) run[it.key()] = it.value();
  }
  return run;
}

Result<double> BudgetField(const Json& body, double fallback) {
  if (!body.contains("time_budget_s")) return fallback;
  const Json& b = body["time_budget_s"];
  if (!b.is_number() || !(b.get<double>() > 0) || b.get<double>() > kMaxBudgetSeconds) {
    return FieldError("time_budget_s", "must be a number of seconds > 0 and at most a week");
  }
  return b.get<double>();
}

Result<int64_t> IntField(const Json& body, const std::string& name, int64_t fallback, int64_t min, int64_t max) {
  if (!body.contains(name)) return fallback;
  const Json& v = body[name];
  if (!v.is_number_integer() || v.get<int64_t>() < min || v.get<int64_t>() > max) {
    return FieldError(name, "must be an integer from " + std::to_string(min) + " to " + std::to_string(max));
  }
  return v.get<int64_t>();
}

// Cancellation polled from several trial threads: JobContext is not thread-safe, so one at a time.
struct SharedCancel {
  JobContext& ctx;
  std::mutex mu;
  bool operator()() {
    std::lock_guard<std::mutex> lock(mu);
    return ctx.Cancelled();
  }
};

// Records one finished trial as a child run of `parent`.
void RecordTrial(App& app, const RunRecord& parent, const ml::TrialRecord& t) {
  RunRecord child;
  child.id = NewId("run");
  child.project = parent.project;
  child.dataset = parent.dataset;
  child.dataset_version = parent.dataset_version;
  child.target = parent.target;
  child.task = parent.task;
  child.learner = t.learner;
  child.params = t.params;
  child.split = parent.split;
  child.kind = "trial";
  child.parent = parent.id;
  child.experiment = parent.experiment;
  child.lathe_version = parent.lathe_version;
  child.state = t.state == "complete" ? "succeeded" : t.state;
  child.metrics = t.metrics.is_null() ? Json::object() : t.metrics;
  child.train_seconds = t.seconds;
  child.error = t.error;
  child.search = t.ToJson();
  child.search.erase("params");
  child.search.erase("metrics");
  child.search.erase("learner");
  child.created_by = parent.created_by;
  child.created_at = NowMicros();
  child.finished_at = child.created_at;
  (void)app.store().CreateRun(child);
}

Result<RunRecord> BeginSearchRun(App& app, RequestContext& ctx, const Json& run_body, const std::string& kind) {
  ASSIGN_OR_RETURN(RunRecord run, ParseRunRequest(app, ctx.Project(), run_body));
  if (auto task = ml::ParseTask(run.task); task.ok() && (!ml::IsSupervised(*task) || *task == ml::Task::kRanking)) {
    return FieldError("task", kind + " searches binary, multiclass and regression learners; train " + run.task +
                                  " models with POST …/runs");
  }
  run.id = NewId("run");
  run.kind = kind;
  run.lathe_version = LatheVersion();
  run.created_by = ctx.caller.username;
  run.created_at = NowMicros();
  run.state = "queued";
  run.job_id = NewId("job");
  return run;
}

Status Submit(App& app, RequestContext& ctx, RunRecord& run, const std::string& job_kind) {
  RETURN_IF_ERROR(app.store().CreateRun(run));
  ASSIGN_OR_RETURN(JobRecord job, app.jobs().Submit(job_kind, run.project, {{"run", run.id}}, ctx.caller.username,
                                                    run.job_id));
  ctx.res.headers.emplace_back("Location", "/api/v1/projects/" + run.project + "/runs/" + run.id);
  WriteJson(202, {{"run", run.id}, {"job", job.id}, {"state", "queued"}}, ctx.res);
  return Status::Ok();
}

// ---- POST …/tune

const std::set<std::string> kTuneFields = {"space", "sampler", "max_trials", "time_budget_s", "metric", "asha",
                                           "max_rounds", "early_stopping_rounds", "parallel"};

Status TuneRoute(App& app, RequestContext& ctx) {
  ASSIGN_OR_RETURN(Json body, ctx.JsonBody(app.config().max_json_depth));
  if (!body.is_object()) return Status::InvalidArgument("body must be a JSON object");
  Json run_body = RunFields(body, kTuneFields);
  if (!run_body.contains("split")) run_body["split"] = {{"method", "kfold"}, {"folds", 5}};
  ASSIGN_OR_RETURN(RunRecord run, BeginSearchRun(app, ctx, run_body, "tune"));
  ASSIGN_OR_RETURN(Json fixed, ValidateTrainParams(run.learner, run.task, run.params));
  const ml::LearnerInfo* learner = ml::FindLearner(run.learner);
  ASSIGN_OR_RETURN(const ml::Task task, ml::ParseTask(run.task));
  ml::SearchSpace space = ml::DefaultSearchSpace(*learner, task);
  if (body.contains("space")) {
    ASSIGN_OR_RETURN(space, ml::ParseSearchSpace(body["space"], *learner, task));
    if (space.params.empty()) return FieldError("space", "name at least one parameter to search");
  }
  const std::string sampler_name = GetStringOr(body, "sampler", "tpe");
  ASSIGN_OR_RETURN(const ml::SamplerKind sampler, ml::ParseSampler(sampler_name));
  if (sampler == ml::SamplerKind::kGrid) RETURN_IF_ERROR(ml::GridSize(space).status());
  ASSIGN_OR_RETURN(const int64_t max_trials, IntField(body, "max_trials", 50, 1, 10000));
  ASSIGN_OR_RETURN(const double budget, BudgetField(body, 300));
  const std::string metric = GetStringOr(body, "metric", ml::DefaultMetric(task));
  ASSIGN_OR_RETURN(const bool maximize, ml::MetricMaximized(metric, task));
  ASSIGN_OR_RETURN(const int64_t max_rounds, IntField(body, "max_rounds", 2000, 1, 10000));
  ASSIGN_OR_RETURN(const int64_t esr, IntField(body, "early_stopping_rounds", 50, 0, 10000));
  ASSIGN_OR_RETURN(const int64_t parallel, IntField(body, "parallel", 0, 0, 64));
  if (body.contains("asha") && !body["asha"].is_boolean()) return FieldError("asha", "must be true or false");
  const bool asha = body.value("asha", true);
  run.search = {{"sampler", sampler_name}, {"space", space.ToJson()},  {"max_trials", max_trials},
                {"time_budget_s", budget},  {"metric", metric},          {"maximize", maximize},
                {"asha", asha},             {"max_rounds", max_rounds},  {"early_stopping_rounds", esr},
                {"parallel", parallel},     {"fixed_params", run.params}};
  run.params = Json::object();  // the best trial's, once known
  (void)fixed;
  return Submit(app, ctx, run, "tune");
}

Result<Json> RunTuneJob(App& app, JobContext& ctx) {
  ASSIGN_OR_RETURN(RunRecord run, app.store().GetRun(ctx.job().project, ctx.payload().value("run", "")));
  run.state = "running";
  RETURN_IF_ERROR(app.store().UpdateRun(run));
  ml::TrainSpec spec;
  run.params = run.search.value("fixed_params", Json::object());
  ASSIGN_OR_RETURN(Table table, LoadRunTable(app, ctx, run, &spec));
  const Json& s = run.search;
  ASSIGN_OR_RETURN(const ml::Task task, ml::ParseTask(run.task));
  const ml::LearnerInfo* learner = ml::FindLearner(run.learner);
  if (learner == nullptr) return Status::InvalidArgument("unknown learner '" + run.learner + "'");
  ASSIGN_OR_RETURN(ml::SearchSpace space, ml::ParseSearchSpace(s["space"], *learner, task));
  ASSIGN_OR_RETURN(const ml::SamplerKind sampler, ml::ParseSampler(s.value("sampler", "tpe")));
  ctx.Progress(0.03, "preparing the folds");
  ASSIGN_OR_RETURN(auto eval, ml::TrialEvaluator::Prepare(table, spec));
  ml::StudyOptions options;
  options.metric = s.value("metric", "");
  options.seed = spec.split.seed;
  options.parallel = s.value("parallel", 0);
  options.max_rounds = s.value("max_rounds", 2000);
  options.early_stopping_rounds = s.value("early_stopping_rounds", 50);
  options.asha = s.value("asha", true);
  const int max_trials = s.value("max_trials", 50);
  const double budget = s.value("time_budget_s", 300.0);
  const auto start = ml::Study::Clock::now();
  const auto deadline = start + std::chrono::microseconds(static_cast<int64_t>(budget * 1e6));
  int recorded = 0;
  ASSIGN_OR_RETURN(auto study, ml::Study::Create(*eval, options, [&](const ml::TrialRecord& t) {
    RecordTrial(app, run, t);
    ++recorded;
    const double by_trials = static_cast<double>(recorded) / max_trials;
    const double by_time = std::chrono::duration<double>(ml::Study::Clock::now() - start).count() / budget;
    ctx.Progress(0.05 + 0.8 * std::min(1.0, std::max(by_trials, by_time)),
                 "trial " + std::to_string(t.number) + ": " + t.state +
                     (std::isfinite(t.score) ? " " + std::to_string(t.score) : ""));
  }));
  SharedCancel cancel{ctx, {}};
  ASSIGN_OR_RETURN(const int ran, study->Optimize(run.learner, space, sampler, max_trials, deadline, run.params,
                                                  [&cancel] { return cancel(); }));
  if (ctx.Cancelled()) return Status::Cancelled("tuning cancelled after " + std::to_string(ran) + " trials");
  const int best = study->best();
  if (best < 0) return Status::DeadlineExceeded("no trial finished within the budget; give it more time");
  const ml::TrialRecord& winner = study->trials()[static_cast<size_t>(best)];
  ctx.Log("best of " + std::to_string(ran) + " trials: trial " + std::to_string(winner.number) + " " +
          study->metric() + " " + std::to_string(winner.score) + " with " + DumpJson(winner.params));

  // The chosen params are trained like an ordinary run: the same split gives its full evaluation.
  spec.params = winner.params;
  ctx.Progress(0.86, "training the best parameters");
  auto out = ml::Train(
      table, spec, [&ctx](double f, const std::string& msg) { ctx.Progress(0.86 + 0.12 * f, msg); },
      [&ctx] { return ctx.Cancelled(); });
  if (!out.ok()) return out.TakeStatus();
  ASSIGN_OR_RETURN(run.model_blob, app.blobs().Put(out->model_bundle));
  int pruned = 0, failed = 0;
  for (const auto& t : study->trials()) {
    pruned += t.state == "pruned";
    failed += t.state == "failed";
  }
  run.search["result"] = {{"trials", ran}, {"pruned", pruned}, {"failed", failed},
                          {"best_trial", winner.number}, {"best_score", winner.score},
                          {"seconds", std::chrono::duration<double>(ml::Study::Clock::now() - start).count()}};
  run.params = out->params;
  ApplyTrainOutput(*out, &run);
  run.train_seconds = std::chrono::duration<double>(ml::Study::Clock::now() - start).count();
  RETURN_IF_ERROR(app.store().UpdateRun(run));
  return Json{{"run", run.id}, {"trials", ran}, {"best_trial", winner.number}, {"metrics", run.metrics}};
}

// ---- POST …/automl

const std::set<std::string> kAutoMlFields = {"time_budget_s", "metric", "learners", "ensemble"};

Status AutoMlRoute(App& app, RequestContext& ctx) {
  ASSIGN_OR_RETURN(Json body, ctx.JsonBody(app.config().max_json_depth));
  if (!body.is_object()) return Status::InvalidArgument("body must be a JSON object");
  for (const char* f : {"learner", "params"}) {
    if (body.contains(f)) return FieldError(f, "AutoML chooses learners and params itself; see learners");
  }
  Json run_body = RunFields(body, kAutoMlFields);
  const bool infer = !run_body.contains("task");
  // The run checks need a task; "binary" stands in for them (its one-class check applies to any target the
  // job could infer a classification task for), and the job infers the real one.
  if (infer) run_body["task"] = "binary";
  ASSIGN_OR_RETURN(RunRecord run, BeginSearchRun(app, ctx, run_body, "automl"));
  // Cross-validated candidates need rows in every fold: refuse a dataset too small to say anything.
  ASSIGN_OR_RETURN(auto version, app.store().GetDatasetVersion(run.project, run.dataset, run.dataset_version));
  int64_t with_target = version.rows;
  for (const auto& c : version.columns) {
    if (c.value("name", "") == run.target) with_target -= c.value("missing", int64_t{0});
  }
  if (with_target < kMinAutoMlRows) {
    return FieldError("target", "AutoML needs at least " + std::to_string(kMinAutoMlRows) + " rows with a target; '" +
                                    run.target + "' has " + std::to_string(with_target));
  }
  if (infer) run.task = "auto";
  run.learner = "automl";
  ASSIGN_OR_RETURN(const double budget, BudgetField(body, 60));
  Json learners = body.value("learners", Json{"xgboost", "random_forest"});
  if (!learners.is_array() || learners.empty() || learners.size() > 10) {
    return FieldError("learners", "must be a non-empty list of learner names");
  }
  for (const Json& l : learners) {
    const ml::LearnerInfo* info = l.is_string() ? ml::FindLearner(l.get<std::string>()) : nullptr;
    if (info == nullptr) return FieldError("learners", "unknown learner " + l.dump() + "; see GET /api/v1/learners");
    if (!std::any_of(info->tasks.begin(), info->tasks.end(), ml::IsSupervised)) {
      return FieldError("learners", info->name + " is unsupervised; AutoML searches supervised learners");
    }
  }
  if (body.contains("ensemble") && !body["ensemble"].is_boolean()) return FieldError("ensemble", "must be true or false");
  const std::string metric = GetStringOr(body, "metric", "");
  if (!infer && !metric.empty()) {
    ASSIGN_OR_RETURN(const ml::Task task, ml::ParseTask(run.task));
    RETURN_IF_ERROR(ml::MetricMaximized(metric, task).status());
  }
  run.search = {{"time_budget_s", budget}, {"metric", metric}, {"learners", learners},
                {"ensemble", body.value("ensemble", true)}, {"split_given", body.contains("split")}};
  return Submit(app, ctx, run, "automl");
}

Result<Json> RunAutoMlJob(App& app, JobContext& ctx) {
  ASSIGN_OR_RETURN(RunRecord run, app.store().GetRun(ctx.job().project, ctx.payload().value("run", "")));
  run.state = "running";
  RETURN_IF_ERROR(app.store().UpdateRun(run));
  ml::AutoMlSpec spec;
  RunRecord load = run;
  load.learner = "xgboost";
  load.params = Json::object();
  if (load.task == "auto") load.task = "";
  ASSIGN_OR_RETURN(Table table, LoadRunTable(app, ctx, load, &spec.base));
  spec.split_given = run.search.value("split_given", false);
  spec.metric = run.search.value("metric", "");
  spec.time_budget_s = run.search.value("time_budget_s", 60.0);
  spec.learners.clear();
  for (const Json& l : run.search["learners"]) spec.learners.push_back(l.get<std::string>());
  spec.ensemble = run.search.value("ensemble", true);
  SharedCancel cancel{ctx, {}};
  auto result = ml::RunAutoMl(
      table, spec, [&](const ml::TrialRecord& t) { RecordTrial(app, run, t); },
      [&ctx](double f, const std::string& msg) { ctx.Progress(0.03 + 0.95 * f, msg); },
      [&cancel] { return cancel(); });
  if (!result.ok()) return result.TakeStatus();
  ASSIGN_OR_RETURN(run.model_blob, app.blobs().Put(result->model.model_bundle));
  run.task = result->task;
  run.learner = "ensemble";
  for (const Json& row : result->leaderboard) {
    if (row.value("chosen", false)) run.learner = row.value("learner", run.learner);
  }
  run.params = result->model.params;
  run.split = result->split;
  run.search["task_inferred"] = result->task_inferred;
  run.search["metric"] = result->metric;
  run.search["maximize"] = result->maximize;
  run.search["leaderboard"] = result->leaderboard;
  run.search["chosen"] = result->chosen;
  run.search["trials"] = result->trials.size();
  run.search["search_seconds"] = result->search_seconds;
  run.state = "succeeded";
  run.metrics = result->metrics;
  run.signature = result->model.signature;
  run.pipeline = result->model.pipeline;
  run.explanations = result->model.explanations;
  run.train_rows = result->model.train_rows;
  run.test_rows = result->metrics.value("rows", int64_t{0});
  run.train_seconds = result->search_seconds + result->model.train_seconds;
  run.finished_at = NowMicros();
  RETURN_IF_ERROR(app.store().UpdateRun(run));
  return Json{{"run", run.id}, {"task", run.task}, {"chosen", result->chosen}, {"metrics", run.metrics}};
}

}  // namespace

void RegisterSearchRoutes(Router& router, App& app) {
  app.jobs().Register("tune", JobKind{.handler = [&app](JobContext& ctx) { return RunTuneJob(app, ctx); },
                                      .on_finished = [&app](const JobRecord& job) { MirrorJobFailure(app, job); }});
  app.jobs().Register("automl", JobKind{.handler = [&app](JobContext& ctx) { return RunAutoMlJob(app, ctx); },
                                        .on_finished = [&app](const JobRecord& job) { MirrorJobFailure(app, job); }});
  router.Add({.method = "POST", .pattern = "/api/v1/projects/{project}/tune", .permission = Permission::kProjectWrite,
              .handler = [&app](RequestContext& ctx) { return TuneRoute(app, ctx); },
              .summary = "Tune a learner's params (grid, random or TPE search with early stopping and ASHA); every "
                         "trial becomes a child run, the run keeps the best model",
              .tag = "runs", .success_status = 202,
              .request_example = {{"dataset", "churn"}, {"target", "churned"}, {"task", "binary"},
                                  {"learner", "xgboost"}, {"sampler", "tpe"}, {"max_trials", 40},
                                  {"time_budget_s", 120}, {"metric", "roc_auc"},
                                  {"space", {{"max_depth", {{"type", "int"}, {"low", 2}, {"high", 10}}},
                                             {"learning_rate", {{"type", "float"}, {"low", 0.01}, {"high", 0.3},
                                                                {"log", true}}}}}}});
  router.Add({.method = "POST", .pattern = "/api/v1/projects/{project}/automl",
              .permission = Permission::kProjectWrite,
              .handler = [&app](RequestContext& ctx) { return AutoMlRoute(app, ctx); },
              .summary = "AutoML: infer the task, search several learner families, blend the best out of fold; "
                         "the run keeps the chosen model and a leaderboard",
              .tag = "runs", .success_status = 202,
              .request_example = {{"dataset", "churn"}, {"target", "churned"}, {"metric", "roc_auc"},
                                  {"time_budget_s", 120}}});
  router.Add({.method = "GET", .pattern = "/api/v1/projects/{project}/runs/{id}/trials",
              .permission = Permission::kProjectRead,
              .handler = [&app](RequestContext& ctx) -> Status {
                ASSIGN_OR_RETURN(RunRecord parent, app.store().GetRun(ctx.Project(), ctx.Param("id")));
                ASSIGN_OR_RETURN(auto children, app.store().ListChildRuns(ctx.Project(), parent.id));
                Json out = Json::array();
                for (const auto& c : children) out.push_back(RunJson(c));
                WriteJson(200, {{"run", parent.id}, {"kind", parent.kind}, {"trials", out}}, ctx.res);
                return Status::Ok();
              },
              .summary = "The trials of a tune or AutoML run (child runs), in the order they finished",
              .tag = "runs"});
}

}  // namespace lathe
