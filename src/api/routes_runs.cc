// Training runs (each executed as a "train" job), and the job resource.
#include <algorithm>
#include <set>

#include "api/app.h"
#include "api/data_import.h"
#include "api/params.h"
#include "api/problem.h"
#include "api/run_query.h"
#include "api/runs.h"
#include "common/clock.h"
#include "common/ids.h"
#include "common/log.h"
#include "data/dataset_file.h"
#include "ml/explain.h"
#include "ml/learner_registry.h"
#include "ml/predictor.h"
#include "ml/split.h"
#include "ml/train.h"

namespace lathe {

namespace {

constexpr int64_t kMaxRunsScanned = 10000;  // a filtered or sorted run list looks at this many newest runs
constexpr size_t kMaxRunsCompared = 10;

std::string Ts(int64_t micros) { return micros > 0 ? FormatRfc3339(micros) : ""; }

}  // namespace

Json RunJson(const RunRecord& r) {
  Json j = {{"id", r.id},
            {"project", r.project},
            {"state", r.state},
            {"dataset", r.dataset},
            {"version", r.dataset_version},
            {"target", r.target},
            {"task", r.task},
            {"learner", r.learner},
            {"params", r.params},
            {"split", r.split},
            {"metrics", r.metrics},
            {"job", r.job_id},
            {"train_rows", r.train_rows},
            {"test_rows", r.test_rows},
            {"train_seconds", r.train_seconds},
            {"created_by", r.created_by},
            {"created_at", Ts(r.created_at)},
            {"finished_at", Ts(r.finished_at)}};
  if (!r.error.empty()) j["error"] = r.error;
  j["kind"] = r.kind;
  if (!r.parent.empty()) j["parent"] = r.parent;
  if (!r.search.empty()) j["search"] = r.search;
  j["experiment"] = r.experiment;
  j["tags"] = r.tags;
  j["notes"] = r.notes;
  if (!r.lathe_version.empty()) j["lathe_version"] = r.lathe_version;
  if (r.state == "succeeded") {
    j["signature"] = r.signature;
    j["pipeline"] = r.pipeline;
  }
  return j;
}

Json JobJson(const JobRecord& j, const std::vector<std::pair<int64_t, std::string>>* log) {
  Json out = {{"id", j.id},
              {"kind", j.kind},
              {"project", j.project},
              {"state", JobStateName(j.state)},
              {"progress", j.progress},
              {"message", j.message},
              {"result", j.result},
              {"cancel_requested", j.cancel_requested},
              {"attempts", j.attempts},
              {"created_by", j.created_by},
              {"created_at", Ts(j.created_at)},
              {"started_at", Ts(j.started_at)},
              {"finished_at", Ts(j.finished_at)}};
  if (!j.error.empty()) out["error"] = j.error;
  if (log) {
    Json lines = Json::array();
    for (const auto& [ts, line] : *log) lines.push_back({{"ts", FormatRfc3339(ts)}, {"line", line}});
    out["log"] = lines;
  }
  return out;
}

// The column statistics of `name` in a version's stats, or null.
static Json ColumnStats(const DatasetVersionRecord& version, const std::string& name) {
  if (!version.stats.is_object()) return nullptr;
  const Json& cs = version.stats.contains("columns") ? version.stats["columns"] : version.stats;
  if (cs.is_array()) {
    for (const auto& c : cs) {
      if (c.is_object() && c.value("name", "") == name) return c;
    }
  } else if (cs.is_object() && cs.contains(name)) {
    return cs[name];
  }
  return nullptr;
}

Status ParseTracking(const Json& body, RunRecord* run) {
  auto bad = [](const std::string& field, const std::string& msg) {
    return Status::InvalidArgument(field + ": " + msg).WithDetail(ErrorDetail::Field(field, msg));
  };
  if (body.contains("experiment")) {
    const Json& e = body["experiment"];
    if (!e.is_string() || e.get<std::string>().size() > 200) return bad("experiment", "must be a string of at most 200 characters");
    run->experiment = e.get<std::string>();
  }
  if (body.contains("notes")) {
    const Json& n = body["notes"];
    if (!n.is_string() || n.get<std::string>().size() > 20000) return bad("notes", "must be a string of at most 20000 characters");
    run->notes = n.get<std::string>();
  }
  if (body.contains("tags")) {
    const Json& t = body["tags"];
    if (!t.is_object() || t.size() > 50) return bad("tags", "must be an object of at most 50 string values");
    for (auto it = t.begin(); it != t.end(); ++it) {
      if (it.key().empty() || it.key().size() > 100) return bad("tags", "keys must be 1 to 100 characters");
      if (!it->is_string() || it->get<std::string>().size() > 500) {
        return bad("tags." + it.key(), "must be a string of at most 500 characters");
      }
    }
    run->tags = t;
  }
  return Status::Ok();
}

static Status SplitColumnError(const std::string& field, const std::string& message) {
  return Status::InvalidArgument(field + " " + message).WithDetail(ErrorDetail::Field(field, message));
}

// The split's columns exist with a usable type and there are rows enough for its folds, judged from the
// version's schema and statistics; training re-checks what only the data can tell (distinct groups).
static Status CheckSplitAgainstSchema(const ml::SplitSpec& split, const std::string& target,
                               const DatasetVersionRecord& version) {
  auto find = [&](const std::string& name) -> const Json* {
    for (const auto& c : version.columns) {
      if (c.value("name", "") == name) return &c;
    }
    return nullptr;
  };
  if (split.method == ml::SplitMethod::kGroupKFold) {
    if (split.group_column == target) return SplitColumnError("split.group_column", "must not be the target");
    const Json* col = find(split.group_column);
    if (!col) {
      return SplitColumnError("split.group_column", "names no column of dataset '" + version.dataset + "' version " +
                                                        std::to_string(version.version) + " ('" + split.group_column + "')");
    }
    const Json stats = ColumnStats(version, split.group_column);
    if (stats.is_object() && stats.contains("distinct") && stats["distinct"].is_number_integer() &&
        !stats.value("distinct_approximate", false)) {
      // Missing values form one more group.
      const int64_t groups = stats["distinct"].get<int64_t>() + (col->value("missing", int64_t{0}) > 0 ? 1 : 0);
      if (groups < split.folds) {
        return SplitColumnError("split.folds", "must be at most the number of distinct groups in '" +
                                                   split.group_column + "' (" + std::to_string(groups) + ")");
      }
    }
  }
  if (split.method == ml::SplitMethod::kTime) {
    if (split.time_column == target) return SplitColumnError("split.time_column", "must not be the target");
    const Json* col = find(split.time_column);
    if (!col) {
      return SplitColumnError("split.time_column", "names no column of dataset '" + version.dataset + "' version " +
                                                       std::to_string(version.version) + " ('" + split.time_column + "')");
    }
    const std::string type = col->value("type", "");
    if (type != "datetime") {
      return SplitColumnError("split.time_column", "must be a date or datetime column; '" + split.time_column +
                                                       "' is " + type);
    }
  }
  if (split.IsCrossValidation() && version.rows > 0 && split.folds > version.rows) {
    return SplitColumnError("split.folds", "must be at most the number of rows (" + std::to_string(version.rows) + ")");
  }
  return Status::Ok();
}

// Validates a run request against the dataset version's schema, so mistakes are a 400 now rather than a
// failed job later.
Result<RunRecord> ParseRunRequest(App& app, const std::string& project, const Json& body) {
  if (!body.is_object()) return Status::InvalidArgument("body must be a JSON object");
  static const std::set<std::string> kKnown = {"dataset", "version", "target", "task", "learner", "params", "split",
                                               "experiment", "tags", "notes"};
  for (auto it = body.begin(); it != body.end(); ++it) {
    if (!kKnown.count(it.key())) {
      return Status::InvalidArgument("unknown field '" + it.key() + "'")
          .WithDetail(ErrorDetail::Field(it.key(), "is not a run field"));
    }
  }
  RunRecord run;
  run.project = project;
  ASSIGN_OR_RETURN(run.dataset, GetString(body, "dataset"));
  ASSIGN_OR_RETURN(run.dataset_version, OptionalVersionField(body, "version"));
  run.learner = GetStringOr(body, "learner", "xgboost");
  // An unsupervised learner has one task, which is then the default; a supervised task needs a target.
  const ml::LearnerInfo* learner = ml::FindLearner(run.learner);
  if (!body.contains("task") && learner != nullptr && learner->tasks.size() == 1 &&
      !ml::IsSupervised(learner->tasks[0])) {
    run.task = ml::TaskName(learner->tasks[0]);
  } else {
    if (!body.contains("task")) RETURN_IF_ERROR(GetString(body, "target").status());  // the first thing missing
    ASSIGN_OR_RETURN(run.task, GetString(body, "task"));
  }
  ASSIGN_OR_RETURN(const ml::Task task, ml::ParseTask(run.task, "task"));
  const bool supervised = ml::IsSupervised(task);
  if (supervised || body.contains("target")) {
    ASSIGN_OR_RETURN(run.target, GetString(body, "target"));
  }
  RETURN_IF_ERROR(ParseTracking(body, &run));
  if (body.contains("params") && !body["params"].is_object()) {
    return Status::InvalidArgument("params must be an object").WithDetail(ErrorDetail::Field("params", "must be an object"));
  }
  run.params = body.value("params", Json::object());
  ASSIGN_OR_RETURN(const ml::SplitSpec split, ml::ParseSplitSpec(body.value("split", Json::object())));
  run.split = ml::SplitSpecToJson(split);

  auto version = app.store().GetDatasetVersion(project, run.dataset, run.dataset_version);
  if (!version.ok()) {
    Status st = version.TakeStatus();
    return st.code() == StatusCode::kNotFound ? Status::NotFound(st.message()).WithDetail(ErrorDetail::Field("dataset", st.message())) : st;
  }
  run.dataset_version = version->version;
  const Json* target_col = nullptr;
  for (const auto& c : version->columns) {
    if (c.value("name", "") == run.target) target_col = &c;
  }
  if (!supervised) {
    // The target of an unsupervised run is only a column left out of the features (an id, a known label).
    if (!run.target.empty() && !target_col) {
      return Status::InvalidArgument("target column '" + run.target + "' is not in dataset '" + run.dataset +
                                     "' version " + std::to_string(run.dataset_version))
          .WithDetail(ErrorDetail::Field("target", "unknown column"));
    }
    if (version->rows > 0 && version->rows < ml::kUnsupervisedMinRows) {
      return Status::InvalidArgument("dataset '" + run.dataset + "' has " + std::to_string(version->rows) +
                                     " rows; " + run.task + " needs at least " +
                                     std::to_string(ml::kUnsupervisedMinRows))
          .WithDetail(ErrorDetail::Field("dataset", "too few rows"));
    }
    const Json k = run.params.value("n_clusters", Json());
    if (k.is_number_integer() && k.get<int64_t>() == 1) {
      return Status::InvalidArgument("params.n_clusters: must be 0 (choose k by silhouette) or at least 2")
          .WithDetail(ErrorDetail::Field("params.n_clusters", "one cluster is no clustering"));
    }
    if (k.is_number_integer() && version->rows > 0 && k.get<int64_t>() > version->rows) {
      return Status::InvalidArgument("params.n_clusters: must be at most the number of rows (" +
                                     std::to_string(version->rows) + ")")
          .WithDetail(ErrorDetail::Field("params.n_clusters", "more clusters than rows"));
    }
    return run;
  }
  if (!target_col) {
    return Status::InvalidArgument("target column '" + run.target + "' is not in dataset '" + run.dataset +
                                   "' version " + std::to_string(run.dataset_version))
        .WithDetail(ErrorDetail::Field("target", "unknown column"));
  }
  if (version->rows > 0 && target_col->value("missing", 0) >= version->rows) {
    return Status::InvalidArgument("target column '" + run.target + "' has no values")
        .WithDetail(ErrorDetail::Field("target", "has no values"));
  }
  RETURN_IF_ERROR(CheckSplitAgainstSchema(split, run.target, *version));
  // A weight column must be a numeric column of this version (the learner schema only checks it is a name).
  if (run.params.contains("weight_column") && run.params["weight_column"].is_string()) {
    const std::string name = run.params["weight_column"].get<std::string>();
    const Json* col = nullptr;
    for (const auto& c : version->columns) {
      if (c.value("name", "") == name) col = &c;
    }
    const std::string type = col ? col->value("type", "") : "";
    std::string problem;
    if (!col) problem = "unknown column '" + name + "'";
    else if (name == run.target) problem = "must not be the target";
    else if (type != "integer" && type != "float") problem = "'" + name + "' must be numeric, not " + type;
    if (!problem.empty()) {
      return Status::InvalidArgument("params.weight_column: " + problem)
          .WithDetail(ErrorDetail::Field("params.weight_column", problem));
    }
  }
  if (task == ml::Task::kRanking) {
    const Json q = run.params.value("query_column", run.params.value("group_column", run.params.value("qid", Json())));
    std::string problem;
    if (!q.is_string() || q.get<std::string>().empty()) {
      problem = "is required for ranking (the column that identifies each row's query)";
    } else {
      const std::string name = q.get<std::string>();
      bool found = false;
      for (const auto& c : version->columns) found = found || c.value("name", "") == name;
      if (!found) problem = "unknown column '" + name + "'";
      else if (name == run.target) problem = "must not be the target";
    }
    if (!problem.empty()) {
      return Status::InvalidArgument("params.query_column: " + problem)
          .WithDetail(ErrorDetail::Field("params.query_column", problem));
    }
    if (split.method != ml::SplitMethod::kHoldout && split.method != ml::SplitMethod::kKFold) {
      return Status::InvalidArgument("split.method: ranking evaluates whole queries; use holdout or kfold")
          .WithDetail(ErrorDetail::Field("split.method", "holdout or kfold for ranking"));
    }
    // Relevance grades are integers 0..31 (LambdaMART's gain 2^rel - 1).
    const Json stats = ColumnStats(*version, run.target);
    const bool integer = target_col->value("type", "") == "integer";
    const bool in_range = !stats.is_object() || !stats.contains("min") || !stats.contains("max") ||
                          !stats["min"].is_number() || !stats["max"].is_number() ||
                          (stats["min"].get<double>() >= 0 && stats["max"].get<double>() <= 31);
    if (!integer || !in_range) {
      return Status::InvalidArgument("target column '" + run.target +
                                     "' must hold integer relevance grades from 0 to 31 for ranking")
          .WithDetail(ErrorDetail::Field("target", "integer relevance grades 0..31"));
    }
  }
  // Column statistics tell a one-class target before any training starts.
  if (ml::IsClassification(task)) {
    const Json col_stats = ColumnStats(*version, run.target);
    if (col_stats.is_object()) {
      bool one_class = (col_stats.contains("distinct") && col_stats["distinct"].is_number() &&
                        col_stats["distinct"].get<double>() == 1) ||
                       (col_stats.contains("min") && col_stats.contains("max") && !col_stats["min"].is_null() &&
                        col_stats["min"] == col_stats["max"]) ||
                       (col_stats.contains("true_count") && col_stats.contains("count") &&
                        (col_stats["true_count"] == 0 || col_stats["true_count"] == col_stats["count"]));
      if (one_class) {
        return Status::InvalidArgument("target column '" + run.target + "' has only one class; " + run.task +
                                       " classification needs at least two")
            .WithDetail(ErrorDetail::Field("target", "has only one class"));
      }
    }
  }
  return run;
}

// Checks the learner and its params against the learner registry; returns the canonical params.
Result<Json> ValidateTrainParams(const std::string& learner, const std::string& task, const Json& params) {
  const ml::LearnerInfo* info = ml::FindLearner(learner);
  if (!info) {
    return Status::InvalidArgument("unknown learner '" + learner + "'; see GET /api/v1/learners")
        .WithDetail(ErrorDetail::Field("learner", "unknown learner"));
  }
  ASSIGN_OR_RETURN(ml::Task t, ml::ParseTask(task));
  if (std::find(info->tasks.begin(), info->tasks.end(), t) == info->tasks.end()) {
    std::string tasks;
    for (ml::Task x : info->tasks) tasks += std::string(tasks.empty() ? "" : ", ") + ml::TaskName(x);
    return Status::InvalidArgument("learner " + info->name + " does not do task " + task + " (it does " + tasks + ")")
        .WithDetail(ErrorDetail::Field("task", "not a task of learner " + info->name));
  }
  return ml::ValidateParams(*info, params, t);
}

Result<Table> LoadRunTable(App& app, JobContext& ctx, const RunRecord& run, ml::TrainSpec* spec) {
  ctx.Progress(0.01, "loading dataset");
  ASSIGN_OR_RETURN(auto version, app.store().GetDatasetVersion(run.project, run.dataset, run.dataset_version));
  ASSIGN_OR_RETURN(auto file, OpenDatasetVersion(app, version));
  ASSIGN_OR_RETURN(Table table, file->ReadAll());
  ctx.Log("loaded " + std::to_string(table.num_rows) + " rows from " + run.dataset + " v" +
          std::to_string(run.dataset_version));
  spec->target = run.target;
  spec->task = run.task;
  spec->learner = run.learner;
  spec->params = run.params;
  ASSIGN_OR_RETURN(spec->split, ml::ParseSplitSpec(run.split));
  ASSIGN_OR_RETURN(spec->preprocess, PreprocessFromLineage(app, version));
  if (!spec->preprocess.empty()) {
    ctx.Log("the model will replay " + std::to_string(spec->preprocess["recipes"].size()) +
            " recipe(s) on raw input from " + spec->preprocess["root"].value("dataset", std::string()) + " v" +
            std::to_string(spec->preprocess["root"].value("version", int64_t{0})));
  }
  return table;
}

void ApplyTrainOutput(const ml::TrainOutput& out, RunRecord* run) {
  run->state = "succeeded";
  run->metrics = out.metrics;
  run->signature = out.signature;
  run->pipeline = out.pipeline;
  run->curves = out.curves;
  run->explanations = out.explanations;
  run->train_rows = out.train_rows;
  run->test_rows = out.test_rows;
  run->train_seconds = out.train_seconds;
  run->finished_at = NowMicros();
}

namespace {

Result<Json> RunTrainJob(App& app, JobContext& ctx) {
  std::string run_id = ctx.payload().value("run", "");
  ASSIGN_OR_RETURN(RunRecord run, app.store().GetRun(ctx.job().project, run_id));
  run.state = "running";
  RETURN_IF_ERROR(app.store().UpdateRun(run));
  ml::TrainSpec spec;
  ASSIGN_OR_RETURN(Table table, LoadRunTable(app, ctx, run, &spec));
  auto out = ml::Train(
      table, spec, [&ctx](double f, const std::string& msg) { ctx.Progress(0.05 + 0.9 * f, msg); },
      [&ctx] { return ctx.Cancelled(); });
  if (!out.ok()) return out.TakeStatus();
  ctx.Progress(0.97, "saving model");
  ASSIGN_OR_RETURN(run.model_blob, app.blobs().Put(out->model_bundle));
  ApplyTrainOutput(*out, &run);
  RETURN_IF_ERROR(app.store().UpdateRun(run));
  ctx.Log("trained in " + std::to_string(out->train_seconds) + " s; metrics " + DumpJson(out->metrics));
  return Json{{"run", run.id}, {"metrics", run.metrics}};
}

}  // namespace

void RegisterTrainJob(App& app) {
  app.jobs().Register(
      "train", JobKind{.handler = [&app](JobContext& ctx) { return RunTrainJob(app, ctx); },
                       .on_finished = [&app](const JobRecord& job) { MirrorJobFailure(app, job); }});
}

void MirrorJobFailure(App& app, const JobRecord& job) {
  if (job.state == JobState::kSucceeded) return;
  auto run = app.store().GetRun(job.project, job.payload.value("run", ""));
  if (!run.ok()) return;
  run->state = JobStateName(job.state);
  run->error = job.error;
  run->finished_at = job.finished_at > 0 ? job.finished_at : NowMicros();
  (void)app.store().UpdateRun(*run);
}

namespace {

// {"columns": [1-10 names], "grid": 2-100 (20), "rows": 10-10000 (1000)} -> {"items": [per column], "rows"}:
// the run's model over an evenly spread sample of its dataset version's rows (ml/explain.h).
Status PartialDependenceRoute(App& app, RequestContext& ctx) {
  ASSIGN_OR_RETURN(Json body, ctx.JsonBody(app.config().max_json_depth));
  if (!body.is_object() || !body.contains("columns") || !body["columns"].is_array() || body["columns"].empty() ||
      body["columns"].size() > 10) {
    return Status::InvalidArgument("'columns' must be an array of 1 to 10 column names")
        .WithDetail(ErrorDetail::Field("columns", "1 to 10 column names"));
  }
  for (const auto& c : body["columns"]) {
    if (!c.is_string()) {
      return Status::InvalidArgument("'columns' must hold strings").WithDetail(ErrorDetail::Field("columns", "strings"));
    }
  }
  const int64_t grid = GetIntOr(body, "grid", 20), want = GetIntOr(body, "rows", 1000);
  if (grid < 2 || grid > 100) {
    return Status::InvalidArgument("'grid' must be 2 to 100").WithDetail(ErrorDetail::Field("grid", "2 to 100"));
  }
  if (want < 10 || want > 10000) {
    return Status::InvalidArgument("'rows' must be 10 to 10000").WithDetail(ErrorDetail::Field("rows", "10 to 10000"));
  }
  ASSIGN_OR_RETURN(RunRecord run, app.store().GetRun(ctx.Project(), ctx.Param("id")));
  if (run.state != "succeeded" || run.model_blob.empty()) {
    return Status::FailedPrecondition("run '" + run.id + "' has no model (state " + run.state + ")");
  }
  ASSIGN_OR_RETURN(std::string bundle, app.blobs().Get(run.model_blob));
  ASSIGN_OR_RETURN(auto predictor, ml::Predictor::Load(bundle, PiiSalt(app, ctx.Project())));
  ASSIGN_OR_RETURN(auto dv, app.store().GetDatasetVersion(ctx.Project(), run.dataset, run.dataset_version));
  ASSIGN_OR_RETURN(auto file, OpenDatasetVersion(app, dv));
  // Ten evenly spaced blocks of rows (or all of them), encoded by the model's own pipeline.
  const int64_t total = file->num_rows();
  const int64_t blocks = total <= want ? 1 : 10, per = total <= want ? total : want / blocks;
  std::vector<float> rows;
  for (int64_t b = 0; b < blocks; ++b) {
    const int64_t offset = blocks == 1 ? 0 : b * (total - per) / (blocks - 1);
    ASSIGN_OR_RETURN(Table part, file->ReadRows(offset, per));
    ASSIGN_OR_RETURN(std::vector<float> encoded, predictor->EncodeTable(part));
    rows.insert(rows.end(), encoded.begin(), encoded.end());
  }
  const size_t n = rows.size() / std::max<size_t>(1, predictor->NumFeatures());
  Json items = Json::array();
  for (const auto& c : body["columns"]) {
    ASSIGN_OR_RETURN(Json pd, ml::PartialDependence(*predictor, rows.data(), n, c.get<std::string>(),
                                                    static_cast<int>(grid)));
    items.push_back(std::move(pd));
  }
  WriteJson(200, {{"run", run.id}, {"rows", n}, {"items", std::move(items)}}, ctx.res);
  return Status::Ok();
}

}  // namespace

void RegisterRunRoutes(Router& router, App& app) {
  router.Add({.method = "POST", .pattern = "/api/v1/projects/{project}/runs", .permission = Permission::kProjectWrite,
              .handler = [&app](RequestContext& ctx) -> Status {
                ASSIGN_OR_RETURN(Json body, ctx.JsonBody(app.config().max_json_depth));
                ASSIGN_OR_RETURN(RunRecord run, ParseRunRequest(app, ctx.Project(), body));
                ASSIGN_OR_RETURN(run.params, ValidateTrainParams(run.learner, run.task, run.params));
                run.id = NewId("run");
                run.lathe_version = LatheVersion();
                run.created_by = ctx.caller.username;
                run.created_at = NowMicros();
                run.state = "queued";
                // The run row exists before its job can start, so the job always finds it.
                run.job_id = NewId("job");
                RETURN_IF_ERROR(app.store().CreateRun(run));
                ASSIGN_OR_RETURN(JobRecord job, app.jobs().Submit("train", run.project, {{"run", run.id}},
                                                                  ctx.caller.username, run.job_id));
                ctx.res.headers.emplace_back("Location", "/api/v1/projects/" + run.project + "/runs/" + run.id);
                WriteJson(202, {{"run", run.id}, {"job", job.id}, {"state", "queued"}}, ctx.res);
                return Status::Ok();
              },
              .summary = "Start a training run (a job); returns the run and job ids", .tag = "runs",
              .success_status = 202,
              .request_example = {{"dataset", "churn"}, {"target", "churned"}, {"task", "binary"},
                                  {"learner", "xgboost"}, {"params", {{"n_estimators", 100}, {"max_depth", 6}}},
                                  {"split", {{"method", "kfold"}, {"folds", 5}, {"seed", 42}}}}});
  router.Add({.method = "GET", .pattern = "/api/v1/projects/{project}/runs", .permission = Permission::kProjectRead,
              .handler = [&app](RequestContext& ctx) -> Status {
                ASSIGN_OR_RETURN(int64_t limit, QueryInt(ctx.req, "limit", 100, 1, 1000));
                std::vector<RunCondition> filter;
                if (const std::string* f = ctx.req.Query("filter")) {
                  ASSIGN_OR_RETURN(filter, ParseRunFilter(*f));
                }
                std::vector<std::string> sort;
                if (const std::string* s = ctx.req.Query("sort")) {
                  ASSIGN_OR_RETURN(sort, ParseRunPath(*s, "sort"));
                }
                const std::string* order = ctx.req.Query("order");
                if (order && *order != "asc" && *order != "desc") {
                  return Status::InvalidArgument("order must be asc or desc")
                      .WithDetail(ErrorDetail::Field("order", "must be asc or desc"));
                }
                // Without a filter or sort the store's newest-first page is the answer; otherwise both apply
                // to the newest kMaxRunsScanned runs of the project.
                const bool query = !filter.empty() || !sort.empty();
                // The trials of searches (hundreds per AutoML run) are listed when asked for: ?trials=true, or
                // a filter on kind or parent.
                bool with_trials = false;
                if (const std::string* t = ctx.req.Query("trials")) {
                  if (*t != "true" && *t != "false") {
                    return Status::InvalidArgument("trials must be true or false")
                        .WithDetail(ErrorDetail::Field("trials", "must be true or false"));
                  }
                  with_trials = *t == "true";
                }
                for (const auto& c : filter) {
                  with_trials = with_trials || (!c.path.empty() && (c.path[0] == "kind" || c.path[0] == "parent"));
                }
                ASSIGN_OR_RETURN(auto runs, app.store().ListRuns(ctx.Project(), query ? kMaxRunsScanned : limit,
                                                                 with_trials));
                std::vector<Json> out;
                for (const auto& r : runs) {
                  Json j = RunJson(r);
                  if (RunMatches(j, filter)) out.push_back(std::move(j));
                }
                if (!sort.empty()) SortRuns(&out, sort, !order || *order == "desc");
                if (out.size() > static_cast<size_t>(limit)) out.resize(static_cast<size_t>(limit));
                WriteJson(200, {{"runs", out}}, ctx.res);
                return Status::Ok();
              },
              .summary = "List runs, newest first, without the trials of searches unless ?trials=true or the "
                         "filter names kind or parent; ?filter=metrics.roc_auc>=0.8,params.max_depth=6 "
                         "&sort=metrics.roc_auc&order=desc|asc&limit=",
              .tag = "runs"});
  router.Add({.method = "GET", .pattern = "/api/v1/projects/{project}/experiments",
              .permission = Permission::kProjectRead,
              .handler = [&app](RequestContext& ctx) -> Status {
                ASSIGN_OR_RETURN(Json list, app.store().ListExperiments(ctx.Project()));
                for (Json& e : list) {
                  e["first_run_at"] = Ts(e["first_run_at"].get<int64_t>());
                  e["last_run_at"] = Ts(e["last_run_at"].get<int64_t>());
                }
                WriteJson(200, {{"experiments", list}}, ctx.res);
                return Status::Ok();
              },
              .summary = "Experiments (the names runs are grouped by) with their run counts; list one's runs with "
                         "GET …/runs?filter=experiment=NAME",
              .tag = "runs"});
  // Registered before runs/{id} so that "compare" is not taken for a run id.
  router.Add({.method = "GET", .pattern = "/api/v1/projects/{project}/runs/compare",
              .permission = Permission::kProjectRead,
              .handler = [&app](RequestContext& ctx) -> Status {
                const std::string* ids = ctx.req.Query("ids");
                if (!ids || ids->empty()) {
                  return Status::InvalidArgument("ids is required: ?ids=RUN,RUN[,…]")
                      .WithDetail(ErrorDetail::Field("ids", "is required"));
                }
                std::vector<std::string> list;
                for (size_t start = 0; start <= ids->size();) {
                  const size_t comma = ids->find(',', start);
                  list.push_back(ids->substr(start, comma == std::string::npos ? std::string::npos : comma - start));
                  start = comma == std::string::npos ? ids->size() + 1 : comma + 1;
                }
                const std::set<std::string> distinct(list.begin(), list.end());
                if (list.size() < 2 || list.size() > kMaxRunsCompared || distinct.size() != list.size() ||
                    distinct.count("")) {
                  const std::string msg = "must list 2 to " + std::to_string(kMaxRunsCompared) +
                                          " distinct run ids separated by commas";
                  return Status::InvalidArgument("ids " + msg).WithDetail(ErrorDetail::Field("ids", msg));
                }
                std::vector<Json> runs;
                for (const auto& id : list) {
                  auto run = app.store().GetRun(ctx.Project(), id);
                  if (!run.ok()) {
                    Status st = run.TakeStatus();
                    return st.code() == StatusCode::kNotFound
                               ? Status::NotFound(st.message()).WithDetail(ErrorDetail::Field("ids", st.message()))
                               : st;
                  }
                  runs.push_back(RunJson(*run));
                }
                WriteJson(200, CompareRuns(runs), ctx.res);
                return Status::Ok();
              },
              .summary = "Compare runs side by side (?ids=a,b,…): params, metrics, which params differ",
              .tag = "runs"});
  router.Add({.method = "GET", .pattern = "/api/v1/projects/{project}/runs/{id}", .permission = Permission::kProjectRead,
              .handler = [&app](RequestContext& ctx) -> Status {
                ASSIGN_OR_RETURN(RunRecord run, app.store().GetRun(ctx.Project(), ctx.Param("id")));
                Json j = RunJson(run);
                if (run.state == "succeeded") {
                  j["curves"] = run.curves;
                  j["explanations"] = run.explanations;
                }
                if (run.state == "queued" || run.state == "running") {
                  auto job = app.store().GetJob(run.job_id);
                  if (job.ok()) j["progress"] = job->progress;
                }
                WriteJson(200, j, ctx.res);
                return Status::Ok();
              },
              .summary = "A run: state, params, split, metrics (cross-validation per fold), learning curves, "
                         "explanations (gain, permutation and SHAP importance), signature",
              .tag = "runs"});
  router.Add({.method = "PATCH", .pattern = "/api/v1/projects/{project}/runs/{id}",
              .permission = Permission::kProjectWrite,
              .handler = [&app](RequestContext& ctx) -> Status {
                ASSIGN_OR_RETURN(Json body, ctx.JsonBody(app.config().max_json_depth));
                if (!body.is_object() || body.empty()) {
                  return Status::InvalidArgument("body must be an object with experiment, tags or notes");
                }
                for (auto it = body.begin(); it != body.end(); ++it) {
                  if (it.key() != "experiment" && it.key() != "tags" && it.key() != "notes") {
                    return Status::InvalidArgument("unknown field '" + it.key() + "'")
                        .WithDetail(ErrorDetail::Field(it.key(), "only experiment, tags and notes can change"));
                  }
                }
                ASSIGN_OR_RETURN(RunRecord run, app.store().GetRun(ctx.Project(), ctx.Param("id")));
                RunRecord edited = run;
                RETURN_IF_ERROR(ParseTracking(body, &edited));
                // Re-read just before writing so a job's concurrent update of the same run is not undone:
                // only the tracking fields are taken from this request.
                ASSIGN_OR_RETURN(RunRecord latest, app.store().GetRun(ctx.Project(), run.id));
                latest.experiment = edited.experiment;
                latest.tags = edited.tags;
                latest.notes = edited.notes;
                RETURN_IF_ERROR(app.store().UpdateRun(latest));
                WriteJson(200, RunJson(latest), ctx.res);
                return Status::Ok();
              },
              .summary = "Set a run's experiment, tags (replaced as a whole) or notes", .tag = "runs",
              .request_example = {{"tags", {{"owner", "ml-team"}, {"stage", "candidate"}}},
                                  {"notes", "baseline with default params"}}});
  router.Add({.method = "POST", .pattern = "/api/v1/projects/{project}/runs/{id}/partial-dependence",
              .permission = Permission::kProjectRead,
              .handler = [&app](RequestContext& ctx) { return PartialDependenceRoute(app, ctx); },
              .summary = "Partial dependence of a run's model on chosen columns, over rows of its dataset version",
              .tag = "runs",
              .request_example = {{"columns", {"age", "plan"}}, {"grid", 20}, {"rows", 1000}}});
}

void RegisterJobRoutes(Router& router, App& app) {
  router.Add({.method = "GET", .pattern = "/api/v1/learners", .permission = Permission::kAuthenticated,
              .handler = [](RequestContext& ctx) {
                WriteJson(200, ml::LearnerSchemaJson(), ctx.res);
                return Status::Ok();
              },
              .summary = "Learners, their tasks and parameter schemas (types, ranges, defaults)", .tag = "runs"});
  router.Add({.method = "GET", .pattern = "/api/v1/jobs", .permission = Permission::kAuthenticated,
              .handler = [&app](RequestContext& ctx) -> Status {
                ASSIGN_OR_RETURN(int64_t limit, QueryInt(ctx.req, "limit", 100, 1, 1000));
                const std::string* project = ctx.req.Query("project");
                ASSIGN_OR_RETURN(auto jobs, app.store().ListJobs(project ? *project : "", limit));
                Json out = Json::array();
                for (const auto& j : jobs) {
                  if (app.auth().Authorize(ctx.caller, Permission::kProjectRead, j.project).ok()) {
                    out.push_back(JobJson(j, nullptr));
                  }
                }
                WriteJson(200, {{"jobs", out}}, ctx.res);
                return Status::Ok();
              },
              .summary = "List jobs (?project=&limit=), newest first", .tag = "jobs"});
  router.Add({.method = "GET", .pattern = "/api/v1/jobs/{id}", .permission = Permission::kAuthenticated,
              .handler = [&app](RequestContext& ctx) -> Status {
                ASSIGN_OR_RETURN(JobRecord job, app.store().GetJob(ctx.Param("id")));
                if (!app.auth().Authorize(ctx.caller, Permission::kProjectRead, job.project).ok()) {
                  return Status::NotFound("job '" + ctx.Param("id") + "' not found");
                }
                ASSIGN_OR_RETURN(auto log, app.store().GetJobLog(job.id, 1000));
                WriteJson(200, JobJson(job, &log), ctx.res);
                return Status::Ok();
              },
              .summary = "A job: state, progress, log, result", .tag = "jobs"});
  router.Add({.method = "POST", .pattern = "/api/v1/jobs/{id}/cancel", .permission = Permission::kAuthenticated,
              .handler = [&app](RequestContext& ctx) -> Status {
                ASSIGN_OR_RETURN(JobRecord job, app.store().GetJob(ctx.Param("id")));
                if (!app.auth().Authorize(ctx.caller, Permission::kProjectWrite, job.project).ok()) {
                  return Status::NotFound("job '" + ctx.Param("id") + "' not found");
                }
                if (IsTerminal(job.state)) {
                  return Status::FailedPrecondition("job '" + job.id + "' already " + JobStateName(job.state));
                }
                ASSIGN_OR_RETURN(JobRecord updated, app.jobs().Cancel(job.id));
                WriteJson(200, JobJson(updated, nullptr), ctx.res);
                return Status::Ok();
              },
              .summary = "Cancel a queued or running job", .tag = "jobs"});
}

}  // namespace lathe
