// Model registry: versions registered from finished runs. (Deployments and predictions: routes_serving.cc.)
#include "api/app.h"
#include "api/data_import.h"
#include "api/params.h"
#include "api/problem.h"
#include "api/runs.h"
#include "common/clock.h"
#include "common/log.h"
#include "data/dataset_file.h"
#include "ml/metrics.h"
#include "ml/onnx_export.h"
#include "ml/predictor.h"
#include "ml/split.h"
#include "ml/train.h"
#include "ml/tune.h"
#include "common/crypto.h"
#include "common/ids.h"

namespace lathe {

namespace {

Json ModelVersionJson(const ModelVersionRecord& m) {
  Json j = {{"name", m.model},   {"version", m.version},     {"run", m.run_id},
            {"task", m.task},    {"metrics", m.metrics},     {"signature", m.signature},
            {"stage", m.stage},  {"created_at", FormatRfc3339(m.created_at)}};
  if (m.stage_changed_at > 0) j["stage_changed_at"] = FormatRfc3339(m.stage_changed_at);
  return j;
}

Status FieldError(const std::string& field, const std::string& message) {
  return Status::InvalidArgument(field + ": " + message).WithDetail(ErrorDetail::Field(field, message));
}

// The model card: what the model was trained on and how (lineage: dataset version -> recipe -> run), how well
// it did, and what its owners say it is for.
Json ModelCard(App& app, const ModelVersionRecord& m) {
  Json card = {{"description", m.card.value("description", "")},
               {"intended_use", m.card.value("intended_use", "")},
               {"limitations", m.card.value("limitations", "")},
               {"task", m.task},
               {"metrics", m.metrics},
               {"signature", m.signature}};
  auto run = app.store().GetRun(m.project, m.run_id);
  if (run.ok() && run->kind == "import") {
    card["training"] = {{"imported", true}, {"run", run->id}, {"imported_at", FormatRfc3339(run->created_at)},
                        {"imported_by", run->created_by}};
  } else if (run.ok()) {
    card["training"] = {{"run", run->id},           {"kind", run->kind},      {"learner", run->learner},
                        {"params", run->params},     {"split", run->split},    {"target", run->target},
                        {"train_rows", run->train_rows}, {"trained_at", FormatRfc3339(run->finished_at)},
                        {"lathe_version", run->lathe_version}};
    Json lineage = Json::array();
    // Walk the dataset versions back through the recipes that made them.
    std::string dataset = run->dataset;
    int64_t version = run->dataset_version;
    for (int depth = 0; depth < 20 && !dataset.empty(); ++depth) {
      auto v = app.store().GetDatasetVersion(m.project, dataset, version);
      if (!v.ok()) break;
      Json step = {{"dataset", dataset}, {"version", version}, {"rows", v->rows}, {"source", v->source}};
      if (v->lineage.contains("recipe")) step["recipe"] = v->lineage["recipe"].value("name", Json());
      lineage.push_back(step);
      if (!v->lineage.contains("parent")) break;
      dataset = v->lineage["parent"].value("dataset", "");
      version = v->lineage["parent"].value("version", int64_t{0});
    }
    card["data"] = lineage;
  }
  return card;
}

// Metrics of a model version on every row of `table` that has a target.
Result<Json> ScoreOn(App& app, const std::string& project, const ModelVersionRecord& mv, const Table& table) {
  ASSIGN_OR_RETURN(std::string bundle, app.blobs().Get(mv.blob));
  ASSIGN_OR_RETURN(auto p, ml::Predictor::Load(bundle, PiiSalt(app, project)));
  std::vector<int64_t> kept;
  ASSIGN_OR_RETURN(std::vector<float> y, p->pipeline().EncodeTarget(table, &kept));
  if (kept.empty()) return FieldError("evaluate_on", "no row has the target '" + p->pipeline().target() + "'");
  ASSIGN_OR_RETURN(std::vector<float> x, p->EncodeTable(table));
  const size_t k = p->OutputWidth(), n = static_cast<size_t>(table.num_rows);
  std::vector<float> all(n * k);
  p->PredictRows(x.data(), n, all.data());  // every row at once (the batch walk), then the rows with a target
  std::vector<float> pred(kept.size() * k);
  for (size_t i = 0; i < kept.size(); ++i) {
    std::copy_n(&all[static_cast<size_t>(kept[i]) * k], k, &pred[i * k]);
  }
  switch (p->pipeline().task()) {
    case ml::Task::kBinary:
      return ml::BinaryMetrics(y, pred);
    case ml::Task::kMulticlass:
      return ml::MulticlassMetrics(y, pred, static_cast<int>(k));
    case ml::Task::kRegression:
      return ml::RegressionMetrics(y, pred);
    case ml::Task::kRanking: {
      const std::string column = p->meta()["params"].value("query_column", std::string());
      const int idx = table.FindColumn(column);
      if (idx < 0) return FieldError("evaluate_on", "the data lacks the query column '" + column + "'");
      return ml::RankingMetrics(y, pred, ml::GroupIds(table.columns[static_cast<size_t>(idx)], kept));
    }
    case ml::Task::kClustering:  // EncodeTarget already refused: there is no target to score against
    case ml::Task::kDecomposition:
    case ml::Task::kAnomaly:
      break;
  }
  return Status::FailedPrecondition("a " + p->Task() + " model has no target to be scored against");
}

// Size, one-row latency and (with `table`) metrics of a model bundle: the compression report's two sides.
Result<Json> Profile(App& app, const std::string& project, const std::string& bundle, const ModelVersionRecord* mv,
                     const Table* table) {
  ASSIGN_OR_RETURN(auto p, ml::Predictor::Load(bundle, PiiSalt(app, project)));
  Json j = {{"bundle_bytes", bundle.size()}, {"trees", p->NumTrees()}};
  if (table != nullptr && table->num_rows > 0) {
    ASSIGN_OR_RETURN(std::vector<float> x, p->EncodeTable(*table));
    const size_t n = std::min<size_t>(1000, static_cast<size_t>(table->num_rows));
    std::vector<float> out(p->OutputWidth());
    const int64_t t0 = NowMicros();
    for (size_t i = 0; i < n; ++i) p->PredictRows(&x[i * p->NumFeatures()], 1, out.data());
    j["predict_us"] = static_cast<double>(NowMicros() - t0) / static_cast<double>(n);
    if (mv != nullptr) {
      ASSIGN_OR_RETURN(j["metrics"], ScoreOn(app, project, *mv, *table));
    }
  }
  return j;
}

Result<Json> RunCompressJob(App& app, JobContext& ctx) {
  ASSIGN_OR_RETURN(RunRecord run, app.store().GetRun(ctx.job().project, ctx.payload().value("run", "")));
  run.state = "running";
  RETURN_IF_ERROR(app.store().UpdateRun(run));
  const Json& s = run.search;
  ASSIGN_OR_RETURN(ModelVersionRecord teacher, app.store().GetModelVersion(run.project, s.value("model", ""),
                                                                          s.value("model_version", int64_t{0})));
  ASSIGN_OR_RETURN(std::string teacher_bundle, app.blobs().Get(teacher.blob));
  ctx.Progress(0.05, "loading " + run.dataset + " v" + std::to_string(run.dataset_version));
  ASSIGN_OR_RETURN(auto dv, app.store().GetDatasetVersion(run.project, run.dataset, run.dataset_version));
  ASSIGN_OR_RETURN(auto file, OpenDatasetVersion(app, dv));
  ASSIGN_OR_RETURN(Table table, file->ReadAll());
  ml::CompressSpec spec{.method = s.value("method", ""), .params = s.value("params", Json::object())};
  ctx.Progress(0.2, s.value("method", "") == "distill" ? "distilling" : "pruning");
  ASSIGN_OR_RETURN(ml::TrainOutput out, ml::CompressModel(teacher_bundle, PiiSalt(app, run.project), table, spec));
  ASSIGN_OR_RETURN(run.model_blob, app.blobs().Put(out.model_bundle));
  ModelVersionRecord student{.project = run.project, .model = teacher.model, .run_id = run.id,
                             .blob = run.model_blob, .signature = out.signature, .metrics = Json::object(),
                             .task = teacher.task, .created_at = NowMicros()};
  ctx.Progress(0.8, "measuring before and after");
  // Metrics need the target; evaluate on the data when it has it.
  const bool has_target = table.FindColumn(run.target) >= 0;
  ASSIGN_OR_RETURN(Json before, Profile(app, run.project, teacher_bundle, has_target ? &teacher : nullptr, &table));
  ASSIGN_OR_RETURN(Json after, Profile(app, run.project, out.model_bundle, has_target ? &student : nullptr, &table));
  if (after.contains("metrics")) student.metrics = after["metrics"];
  ASSIGN_OR_RETURN(student.version, app.store().AddModelVersion(student));
  run.search["report"] = {{"before", before}, {"after", after},
                          {"evaluated_on", {{"dataset", run.dataset}, {"version", run.dataset_version}}},
                          {"new_version", student.version}};
  run.params = out.params;
  run.signature = out.signature;
  run.pipeline = out.pipeline;
  run.metrics = student.metrics;
  run.train_rows = out.train_rows;
  run.state = "succeeded";
  run.finished_at = NowMicros();
  RETURN_IF_ERROR(app.store().UpdateRun(run));
  return Json{{"run", run.id}, {"model", teacher.model}, {"version", student.version}, {"report", run.search["report"]}};
}

// POST …/models/{name}/versions/{version}/compress
Status CompressRoute(App& app, RequestContext& ctx) {
  ASSIGN_OR_RETURN(int64_t version, ParseVersion(ctx.Param("version"), "model"));
  ASSIGN_OR_RETURN(Json body, ctx.JsonBody(app.config().max_json_depth));
  if (!body.is_object()) return Status::InvalidArgument("body must be a JSON object");
  for (auto it = body.begin(); it != body.end(); ++it) {
    if (it.key() != "method" && it.key() != "params" && it.key() != "dataset" && it.key() != "version") {
      return FieldError(it.key(), "is not a compress field (method, params, dataset, version)");
    }
  }
  ASSIGN_OR_RETURN(std::string method, GetString(body, "method"));
  RETURN_IF_ERROR(ml::CheckCompressSpec({.method = method, .params = body.value("params", Json::object())}));
  ASSIGN_OR_RETURN(ModelVersionRecord teacher, app.store().GetModelVersion(ctx.Project(), ctx.Param("name"), version));
  auto source = app.store().GetRun(ctx.Project(), teacher.run_id);
  RunRecord run;
  run.dataset = GetStringOr(body, "dataset", source.ok() ? source->dataset : "");
  ASSIGN_OR_RETURN(run.dataset_version, OptionalVersionField(body, "version"));
  if (!body.contains("dataset") && source.ok()) run.dataset_version = source->dataset_version;
  if (run.dataset.empty()) return FieldError("dataset", "name the data to distill on and measure with");
  auto dv = app.store().GetDatasetVersion(ctx.Project(), run.dataset, run.dataset_version);
  if (!dv.ok()) return Status::NotFound(dv.status().message()).WithDetail(ErrorDetail::Field("dataset", "not found"));
  run.dataset_version = dv->version;
  run.id = NewId("run");
  run.project = ctx.Project();
  run.kind = "compress";
  run.target = source.ok() ? source->target : teacher.signature.value("output", Json::object()).value("name", "");
  run.task = teacher.task;
  run.learner = "xgboost";
  run.params = body.value("params", Json::object());
  run.search = {{"method", method}, {"params", run.params}, {"model", teacher.model}, {"model_version", teacher.version}};
  run.lathe_version = LatheVersion();
  run.created_by = ctx.caller.username;
  run.created_at = NowMicros();
  run.job_id = NewId("job");
  RETURN_IF_ERROR(app.store().CreateRun(run));
  ASSIGN_OR_RETURN(JobRecord job, app.jobs().Submit("compress", run.project, {{"run", run.id}}, ctx.caller.username,
                                                    run.job_id));
  WriteJson(202, {{"run", run.id}, {"job", job.id}, {"state", "queued"}}, ctx.res);
  return Status::Ok();
}

// POST …/models/{name}/versions/{version}/stage
Status StageRoute(App& app, RequestContext& ctx) {
  ASSIGN_OR_RETURN(int64_t version, ParseVersion(ctx.Param("version"), "model"));
  ASSIGN_OR_RETURN(Json body, ctx.JsonBody(app.config().max_json_depth));
  if (!body.is_object()) return Status::InvalidArgument("body must be a JSON object");
  for (auto it = body.begin(); it != body.end(); ++it) {
    if (it.key() != "stage" && it.key() != "require_better" && it.key() != "evaluate_on" && it.key() != "metric") {
      return FieldError(it.key(), "is not a stage field (stage, require_better, evaluate_on, metric)");
    }
  }
  ASSIGN_OR_RETURN(std::string stage, GetString(body, "stage"));
  if (stage != "none" && stage != "staging" && stage != "production" && stage != "archived") {
    return FieldError("stage", "must be none, staging, production or archived");
  }
  if (body.contains("require_better") && !body["require_better"].is_boolean()) {
    return FieldError("require_better", "must be true or false");
  }
  const bool require_better = body.value("require_better", false);
  ASSIGN_OR_RETURN(ModelVersionRecord candidate, app.store().GetModelVersion(ctx.Project(), ctx.Param("name"), version));
  // Developers manage the registry; moving a version into or out of production is a deploy decision.
  if (stage == "production" || candidate.stage == "production") {
    RETURN_IF_ERROR(app.auth().Authorize(ctx.caller, Permission::kDeploy, ctx.Project()));
  }
  Json out = Json::object();
  if (stage == "production" && require_better) {
    if (!body.contains("evaluate_on") || !body["evaluate_on"].is_object()) {
      return FieldError("evaluate_on", "require_better needs {\"dataset\",\"version\"?}: data both versions are scored on");
    }
    ASSIGN_OR_RETURN(std::string dataset, GetString(body["evaluate_on"], "dataset"));
    ASSIGN_OR_RETURN(int64_t dversion, OptionalVersionField(body["evaluate_on"], "version"));
    auto dv = app.store().GetDatasetVersion(ctx.Project(), dataset, dversion);
    if (!dv.ok()) {
      return Status::NotFound(dv.status().message()).WithDetail(ErrorDetail::Field("evaluate_on.dataset", "not found"));
    }
    ASSIGN_OR_RETURN(ml::Task task, ml::ParseTask(candidate.task));
    const std::string metric = GetStringOr(body, "metric", ml::DefaultMetric(task));
    ASSIGN_OR_RETURN(const bool maximize, ml::MetricMaximized(metric, task));
    ModelVersionRecord current;
    bool has_current = false;
    ASSIGN_OR_RETURN(auto versions, app.store().ListModelVersions(ctx.Project(), candidate.model));
    for (const auto& v : versions) {
      if (v.stage == "production" && v.version != candidate.version) {
        current = v;
        has_current = true;
      }
    }
    if (has_current) {
      ASSIGN_OR_RETURN(auto file, OpenDatasetVersion(app, *dv));
      ASSIGN_OR_RETURN(Table table, file->ReadAll());
      ASSIGN_OR_RETURN(Json cm, ScoreOn(app, ctx.Project(), candidate, table));
      ASSIGN_OR_RETURN(Json pm, ScoreOn(app, ctx.Project(), current, table));
      const Json cv = cm.value(metric, Json()), pv = pm.value(metric, Json());
      out["comparison"] = {{"metric", metric},          {"dataset", dataset},
                           {"version", dv->version},     {"rows", cm.value("rows", Json())},
                           {"candidate", {{"version", candidate.version}, {"score", cv}}},
                           {"production", {{"version", current.version}, {"score", pv}}}};
      const bool better = cv.is_number() && (!pv.is_number() || (maximize ? cv.get<double>() > pv.get<double>()
                                                                          : cv.get<double>() < pv.get<double>()));
      if (!better) {
        return Status::FailedPrecondition("version " + std::to_string(candidate.version) + " does not beat production "
                                          "version " + std::to_string(current.version) + " on " + dataset + " v" +
                                          std::to_string(dv->version) + ": " + metric + " " + cv.dump() + " vs " +
                                          pv.dump())
            .WithDetail(ErrorDetail::Field("require_better", "the candidate is not better"));
      }
    }
  }
  RETURN_IF_ERROR(app.store().SetModelStage(ctx.Project(), candidate.model, candidate.version, stage, NowMicros()));
  ASSIGN_OR_RETURN(ModelVersionRecord updated, app.store().GetModelVersion(ctx.Project(), candidate.model, version));
  Json j = ModelVersionJson(updated);
  if (out.contains("comparison")) j["comparison"] = out["comparison"];
  WriteJson(200, j, ctx.res);
  return Status::Ok();
}

}  // namespace

void RegisterModelRoutes(Router& router, App& app) {
  app.jobs().Register("compress", JobKind{.handler = [&app](JobContext& ctx) { return RunCompressJob(app, ctx); },
                                          .on_finished = [&app](const JobRecord& job) { MirrorJobFailure(app, job); }});
  router.Add({.method = "POST", .pattern = "/api/v1/projects/{project}/models/{name}/versions/{version}/compress",
              .permission = Permission::kProjectWrite,
              .handler = [&app](RequestContext& ctx) { return CompressRoute(app, ctx); },
              .summary = "Compress a tree model (prune to fewer rounds, or distill into a smaller model) as a job; "
                         "the result is a new version with a before/after report",
              .tag = "models", .success_status = 202,
              .request_example = {{"method", "distill"}, {"params", {{"max_depth", 4}, {"n_estimators", 50}}}}});
  router.Add({.method = "POST", .pattern = "/api/v1/projects/{project}/models/{name}/versions",
              .permission = Permission::kProjectWrite,
              .handler = [&app](RequestContext& ctx) -> Status {
                RETURN_IF_ERROR(CheckName(ctx.Param("name"), "name"));
                ASSIGN_OR_RETURN(Json body, ctx.JsonBody(app.config().max_json_depth));
                ASSIGN_OR_RETURN(std::string run_id, GetString(body, "run"));
                auto run = app.store().GetRun(ctx.Project(), run_id);
                if (!run.ok()) {
                  Status st = run.TakeStatus();
                  return st.code() == StatusCode::kNotFound
                             ? Status::NotFound(st.message()).WithDetail(ErrorDetail::Field("run", "not found"))
                             : st;
                }
                if (run->state != "succeeded" || run->model_blob.empty()) {
                  return Status::FailedPrecondition("run '" + run_id + "' is " + run->state +
                                                    "; only a succeeded run can be registered")
                      .WithDetail(ErrorDetail::Field("run", "is not succeeded"));
                }
                ModelVersionRecord mv{.project = ctx.Project(), .model = ctx.Param("name"), .run_id = run->id,
                                      .blob = run->model_blob, .signature = run->signature,
                                      .metrics = run->metrics, .task = run->task, .created_at = NowMicros()};
                ASSIGN_OR_RETURN(mv.version, app.store().AddModelVersion(mv));
                WriteJson(201, ModelVersionJson(mv), ctx.res);
                return Status::Ok();
              },
              .summary = "Register a succeeded run as a new model version", .tag = "models",
              .success_status = 201, .request_example = {{"run", "run_0123456789abcdef"}}});
  router.Add({.method = "POST", .pattern = "/api/v1/projects/{project}/models/{name}/import",
              .permission = Permission::kProjectWrite,
              .handler = [&app](RequestContext& ctx) -> Status {
                RETURN_IF_ERROR(CheckName(ctx.Param("name"), "name"));
                ASSIGN_OR_RETURN(Json body, ctx.JsonBody(app.config().max_json_depth));
                if (!body.is_object()) return Status::InvalidArgument("body must be a JSON object");
                for (auto it = body.begin(); it != body.end(); ++it) {
                  if (it.key() != "model_base64" && it.key() != "signature" && it.key() != "description") {
                    return FieldError(it.key(), "is not an import field (model_base64, signature, description)");
                  }
                }
                ASSIGN_OR_RETURN(std::string encoded, GetString(body, "model_base64"));
                auto bytes = Base64Decode(encoded);
                if (!bytes.ok()) return FieldError("model_base64", bytes.status().message());
                if (!body.contains("signature")) return FieldError("signature", "is required");
                ASSIGN_OR_RETURN(ml::TrainOutput out, ml::ImportXgboostModel(*bytes, body["signature"]));
                ASSIGN_OR_RETURN(std::string blob, app.blobs().Put(out.model_bundle));
                // The import is recorded as a run of kind "import" (no dataset): the version's lineage.
                RunRecord run;
                run.id = NewId("run");
                run.project = ctx.Project();
                run.kind = "import";
                run.task = body["signature"].value("task", "");
                run.target = body["signature"].value("target", "target");
                run.learner = "xgboost";
                run.params = out.params;
                run.state = "succeeded";
                run.signature = out.signature;
                run.pipeline = out.pipeline;
                run.model_blob = blob;
                run.lathe_version = LatheVersion();
                run.created_by = ctx.caller.username;
                run.created_at = run.finished_at = NowMicros();
                RETURN_IF_ERROR(app.store().CreateRun(run));
                RETURN_IF_ERROR(app.store().UpdateRun(run));
                ModelVersionRecord mv{.project = ctx.Project(), .model = ctx.Param("name"), .run_id = run.id,
                                      .blob = blob, .signature = out.signature, .metrics = Json::object(),
                                      .task = run.task, .created_at = NowMicros()};
                ASSIGN_OR_RETURN(mv.version, app.store().AddModelVersion(mv));
                if (body.contains("description") && body["description"].is_string()) {
                  mv.card = {{"description", body["description"]}};
                  RETURN_IF_ERROR(app.store().SetModelCard(ctx.Project(), mv.model, mv.version, mv.card));
                }
                WriteJson(201, ModelVersionJson(mv), ctx.res);
                return Status::Ok();
              },
              .summary = "Import an XGBoost model file (JSON or UBJSON, base64) with its declared signature as a "
                         "new version",
              .tag = "models", .success_status = 201,
              .request_example = {{"model_base64", "eyJsZWFybmVyIjp7Li4ufX0="},
                                  {"signature", {{"task", "binary"}, {"target", "churned"},
                                                 {"inputs", {{{"name", "age"}, {"type", "integer"}},
                                                             {{"name", "plan"}, {"type", "string"},
                                                              {"categories", {"basic", "pro"}}}}},
                                                 {"labels", {0, 1}}}}}});
  router.Add({.method = "GET", .pattern = "/api/v1/projects/{project}/models", .permission = Permission::kProjectRead,
              .handler = [&app](RequestContext& ctx) -> Status {
                ASSIGN_OR_RETURN(auto names, app.store().ListModels(ctx.Project()));
                Json out = Json::array();
                for (const auto& n : names) {
                  auto latest = app.store().GetModelVersion(ctx.Project(), n, 0);
                  Json m = {{"name", n}};
                  if (latest.ok()) {
                    m["latest_version"] = latest->version;
                    m["task"] = latest->task;
                    m["updated_at"] = FormatRfc3339(latest->created_at);
                  }
                  out.push_back(std::move(m));
                }
                WriteJson(200, {{"models", out}}, ctx.res);
                return Status::Ok();
              },
              .summary = "List registered models", .tag = "models"});
  router.Add({.method = "GET", .pattern = "/api/v1/projects/{project}/models/{name}",
              .permission = Permission::kProjectRead,
              .handler = [&app](RequestContext& ctx) -> Status {
                ASSIGN_OR_RETURN(auto versions, app.store().ListModelVersions(ctx.Project(), ctx.Param("name")));
                Json vs = Json::array();
                for (const auto& v : versions) vs.push_back(ModelVersionJson(v));
                WriteJson(200, {{"name", ctx.Param("name")}, {"latest_version", versions.back().version},
                                {"versions", vs}},
                          ctx.res);
                return Status::Ok();
              },
              .summary = "A model and its versions", .tag = "models"});
  router.Add({.method = "GET", .pattern = "/api/v1/projects/{project}/models/{name}/versions/{version}",
              .permission = Permission::kProjectRead,
              .handler = [&app](RequestContext& ctx) -> Status {
                ASSIGN_OR_RETURN(int64_t version, ParseVersion(ctx.Param("version"), "model"));
                ASSIGN_OR_RETURN(auto mv, app.store().GetModelVersion(ctx.Project(), ctx.Param("name"), version));
                Json j = ModelVersionJson(mv);
                j["card"] = ModelCard(app, mv);
                WriteJson(200, j, ctx.res);
                return Status::Ok();
              },
              .summary = "One model version: stage, signature, metrics, source run, model card with lineage",
              .tag = "models"});
  router.Add({.method = "POST", .pattern = "/api/v1/projects/{project}/models/{name}/versions/{version}/stage",
              .permission = Permission::kProjectWrite,
              .handler = [&app](RequestContext& ctx) { return StageRoute(app, ctx); },
              .summary = "Move a version to none, staging, production (archiving the previous one; optionally only "
                         "if it beats it on given data) or archived; promoting an older version is a rollback",
              .tag = "models",
              .request_example = {{"stage", "production"}, {"require_better", true},
                                  {"evaluate_on", {{"dataset", "churn_holdout"}}}, {"metric", "roc_auc"}}});
  router.Add({.method = "PATCH", .pattern = "/api/v1/projects/{project}/models/{name}/versions/{version}",
              .permission = Permission::kProjectWrite,
              .handler = [&app](RequestContext& ctx) -> Status {
                ASSIGN_OR_RETURN(int64_t version, ParseVersion(ctx.Param("version"), "model"));
                ASSIGN_OR_RETURN(Json body, ctx.JsonBody(app.config().max_json_depth));
                if (!body.is_object() || body.empty()) {
                  return Status::InvalidArgument("body must be an object with description, intended_use or limitations");
                }
                ASSIGN_OR_RETURN(auto mv, app.store().GetModelVersion(ctx.Project(), ctx.Param("name"), version));
                Json card = mv.card;
                for (auto it = body.begin(); it != body.end(); ++it) {
                  if (it.key() != "description" && it.key() != "intended_use" && it.key() != "limitations") {
                    return FieldError(it.key(), "the card takes description, intended_use and limitations");
                  }
                  if (!it->is_string() || it->get<std::string>().size() > 20000) {
                    return FieldError(it.key(), "must be a string of at most 20000 characters");
                  }
                  card[it.key()] = *it;
                }
                RETURN_IF_ERROR(app.store().SetModelCard(ctx.Project(), mv.model, mv.version, card));
                mv.card = card;
                Json j = ModelVersionJson(mv);
                j["card"] = ModelCard(app, mv);
                WriteJson(200, j, ctx.res);
                return Status::Ok();
              },
              .summary = "Write a version's model card: description, intended use, limitations", .tag = "models",
              .request_example = {{"intended_use", "monthly churn risk for retention offers"},
                                  {"limitations", "trained on 2024 customers; not for new markets"}}});
  // The model file itself (lathe's bundle: pipeline, booster, metadata, checksum), for offline scoring and
  // benchmarks. Developers and up: a model can leak what it was trained on, so viewers do not get it.
  router.Add({.method = "GET", .pattern = "/api/v1/projects/{project}/models/{name}/versions/{version}/bundle",
              .permission = Permission::kProjectWrite,
              .handler = [&app](RequestContext& ctx) -> Status {
                ASSIGN_OR_RETURN(int64_t version, ParseVersion(ctx.Param("version"), "model"));
                ASSIGN_OR_RETURN(auto mv, app.store().GetModelVersion(ctx.Project(), ctx.Param("name"), version));
                ASSIGN_OR_RETURN(ctx.res.body, app.blobs().Get(mv.blob));
                ctx.res.status = 200;
                ctx.res.content_type = "application/octet-stream";
                ctx.res.headers.emplace_back("Content-Disposition", "attachment; filename=\"" + mv.model + "-v" +
                                                                        std::to_string(mv.version) + ".lathe\"");
                return Status::Ok();
              },
              .summary = "Download a model version's bundle file", .tag = "models"});
  // The same model as ONNX (ml/onnx_export.h says what the graph takes and returns). Same permission as the
  // bundle. A model ONNX cannot express (trained on a recipe's output, say) is a 409 that says why.
  router.Add({.method = "GET", .pattern = "/api/v1/projects/{project}/models/{name}/versions/{version}/onnx",
              .permission = Permission::kProjectWrite,
              .handler = [&app](RequestContext& ctx) -> Status {
                ASSIGN_OR_RETURN(int64_t version, ParseVersion(ctx.Param("version"), "model"));
                ASSIGN_OR_RETURN(auto mv, app.store().GetModelVersion(ctx.Project(), ctx.Param("name"), version));
                ASSIGN_OR_RETURN(std::string bundle, app.blobs().Get(mv.blob));
                ASSIGN_OR_RETURN(auto predictor, ml::Predictor::Load(bundle, PiiSalt(app, ctx.Project())));
                ml::OnnxExportOptions options{.model_name = mv.model,
                                              .model_version = std::to_string(mv.version),
                                              .producer_version = LatheVersion()};
                ASSIGN_OR_RETURN(ctx.res.body, ml::ExportOnnx(*predictor, options));
                ctx.res.status = 200;
                ctx.res.content_type = "application/octet-stream";
                ctx.res.headers.emplace_back("Content-Disposition", "attachment; filename=\"" + mv.model + "-v" +
                                                                        std::to_string(mv.version) + ".onnx\"");
                return Status::Ok();
              },
              .summary = "Download a model version as ONNX (ONNX-ML tree ensemble and linear operators)",
              .tag = "models"});
}

}  // namespace lathe
