// Batch scoring: a dataset version through a model version (or a deployment's stable version) into a new
// dataset version holding the kept input columns and the predictions (ml/batch_score.h), as a job with
// progress, cancellable, with lineage naming the parent version and the model.
//
//   POST …/batch-predictions {"dataset","version"?,"model","model_version"? | "deployment",
//                             "output"?,"explain"?,"keep_columns"?}   -> 202 {job, state, dataset}
//        (?wait=true waits for the job and answers 201 with the new version)
#include <algorithm>

#include "api/app.h"
#include "api/data_import.h"
#include "api/params.h"
#include "api/problem.h"
#include "common/clock.h"
#include "ml/batch_score.h"

namespace lathe {
namespace {

constexpr const char* kJobKind = "batch_predict";

Status FieldError(const std::string& field, const std::string& problem) {
  return Status::InvalidArgument(field + " " + problem).WithDetail(ErrorDetail::Field(field, problem));
}

// Checks the request and returns the job payload with every version resolved.
Result<Json> ValidateRequest(App& app, const std::string& project, const Json& body) {
  if (!body.is_object()) return FieldError("body", "must be a JSON object");
  static const char* kFields[] = {"dataset", "version", "model", "model_version", "deployment",
                                  "output", "explain", "keep_columns"};
  for (auto it = body.begin(); it != body.end(); ++it) {
    if (std::find_if(std::begin(kFields), std::end(kFields), [&](const char* f) { return it.key() == f; }) ==
        std::end(kFields)) {
      return FieldError(it.key().substr(0, 80), "is not a field of a batch prediction");
    }
  }
  ASSIGN_OR_RETURN(std::string dataset, GetString(body, "dataset"));
  ASSIGN_OR_RETURN(int64_t version, OptionalVersionField(body, "version"));
  auto dv = app.store().GetDatasetVersion(project, dataset, version);
  if (!dv.ok()) {
    const std::string msg = dv.status().message();
    return Status(dv.status().code(), msg).WithDetail(ErrorDetail::Field(version ? "version" : "dataset", msg));
  }
  std::string model;
  int64_t model_version = 0;
  if (body.contains("deployment")) {
    if (body.contains("model") || body.contains("model_version")) {
      return FieldError("deployment", "conflicts with model/model_version: name one or the other");
    }
    ASSIGN_OR_RETURN(std::string name, GetString(body, "deployment"));
    ASSIGN_OR_RETURN(DeploymentRecord d, app.store().GetDeployment(project, name));
    model = d.model;
    model_version = d.version;
  } else {
    ASSIGN_OR_RETURN(model, GetString(body, "model"));
    ASSIGN_OR_RETURN(model_version, OptionalVersionField(body, "model_version"));
  }
  auto mv = app.store().GetModelVersion(project, model, model_version);
  if (!mv.ok()) {
    const std::string msg = mv.status().message();
    return Status(mv.status().code(), msg).WithDetail(ErrorDetail::Field(model_version ? "model_version" : "model", msg));
  }
  const std::string output = body.value("output", dv->dataset + "-scored");
  RETURN_IF_ERROR(CheckName(output, "output"));
  Json payload = {{"dataset", dv->dataset}, {"version", dv->version}, {"model", mv->model},
                  {"model_version", mv->version}, {"output", output}, {"explain", false},
                  {"keep_columns", Json::array()}};
  if (body.contains("explain")) {
    if (!body["explain"].is_boolean()) return FieldError("explain", "must be true or false");
    payload["explain"] = body["explain"];
  }
  if (body.contains("keep_columns")) {
    const Json& k = body["keep_columns"];
    if (!k.is_array() || k.size() > 10000) return FieldError("keep_columns", "must be an array of column names");
    for (size_t i = 0; i < k.size(); ++i) {
      if (!k[i].is_string()) return FieldError("keep_columns[" + std::to_string(i) + "]", "must be a column name");
      bool found = false;
      for (const auto& c : dv->columns) found = found || c.value("name", "") == k[i].get<std::string>();
      if (!found) {
        return FieldError("keep_columns[" + std::to_string(i) + "]",
                          "names no column of " + dv->dataset + " version " + std::to_string(dv->version));
      }
    }
    payload["keep_columns"] = k;
  }
  return payload;
}

Result<Json> ScoreJob(App& app, JobContext& ctx) {
  const Json& p = ctx.payload();
  const std::string project = ctx.job().project;
  ASSIGN_OR_RETURN(auto dv, app.store().GetDatasetVersion(project, p.value("dataset", ""), p.value("version", int64_t{0})));
  ASSIGN_OR_RETURN(auto mv, app.store().GetModelVersion(project, p.value("model", ""), p.value("model_version", int64_t{0})));
  ctx.Progress(0.01, "loading model " + mv.model + " version " + std::to_string(mv.version));
  ASSIGN_OR_RETURN(std::string bundle, app.blobs().Get(mv.blob));
  auto predictor = ml::Predictor::Load(bundle, PiiSalt(app, project));
  if (!predictor.ok()) {
    return Status::FailedPrecondition("model '" + mv.model + "' version " + std::to_string(mv.version) +
                                      " cannot be loaded: " + predictor.status().message());
  }
  bundle.clear();
  ASSIGN_OR_RETURN(auto file, OpenDatasetVersion(app, dv));
  ml::BatchScoreOptions opt;
  opt.explain = p.value("explain", false);
  for (const auto& k : p.value("keep_columns", Json::array())) opt.keep_columns.push_back(k.get<std::string>());
  opt.threads = 0;  // every core: one batch job is meant to use the machine
  const std::string path = app.blobs().TempPath("score");
  const int64_t started = MonotonicMicros();
  auto summary = ml::ScoreDataset(*file, **predictor, path, opt, [&](int64_t done, int64_t total) {
    ctx.Progress(0.02 + 0.88 * static_cast<double>(done) / static_cast<double>(std::max<int64_t>(total, 1)),
                 "scored " + std::to_string(done) + " of " + std::to_string(total) + " rows");
    return !ctx.Cancelled();
  });
  file.reset();
  if (!summary.ok()) return summary.status();
  const double seconds = static_cast<double>(MonotonicMicros() - started) / 1e6;
  app.usage().Add(project, "", kMetricRowsScored, static_cast<double>(summary->rows));
  ctx.Log("scored " + std::to_string(summary->rows) + " rows in " + std::to_string(seconds) + " s");
  ctx.Progress(0.9, "profiling the scored version");
  Json source = {{"kind", "batch_prediction"}, {"model", mv.model}, {"model_version", mv.version},
                 {"explain", opt.explain}};
  Json lineage = {{"parent", {{"dataset", dv.dataset}, {"version", dv.version}}},
                  {"model", {{"name", mv.model}, {"version", mv.version}}},
                  {"outputs", summary->output_columns}};
  const double rate = seconds > 0 ? static_cast<double>(summary->rows) / seconds : 0;
  return FinishVersion(app, ctx, project, p.value("output", ""), path, "", 0, source, lineage,
                       {{"score_seconds", seconds}, {"rows_per_second", rate}});
}

}  // namespace

void RegisterBatchRoutes(Router& router, App& app) {
  app.jobs().Register(kJobKind, {.handler = [&app](JobContext& ctx) { return ScoreJob(app, ctx); }});
  router.Add({.method = "POST", .pattern = "/api/v1/projects/{project}/batch-predictions",
              .permission = Permission::kProjectWrite,
              .handler = [&app](RequestContext& ctx) -> Status {
                ASSIGN_OR_RETURN(Json body, ctx.JsonBody(app.config().max_json_depth));
                ASSIGN_OR_RETURN(Json payload, ValidateRequest(app, ctx.Project(), body));
                ASSIGN_OR_RETURN(JobRecord job, app.jobs().Submit(kJobKind, ctx.Project(), payload, ctx.caller.user_id));
                const std::string* w = ctx.req.Query("wait");
                return RespondWithJob(app, ctx, job, w != nullptr && *w == "true",
                                      {{"dataset", payload["output"]}, {"model", payload["model"]},
                                       {"model_version", payload["model_version"]}});
              },
              .summary = "Score a dataset version with a model version (or a deployment): a job making a new "
                         "dataset version with the predictions (and SHAP values with explain) (?wait=true waits)",
              .tag = "serving", .success_status = 202,
              .request_example = {{"dataset", "customers"}, {"model", "churn"}, {"output", "customers-scored"},
                                  {"keep_columns", {"customer_id"}}}});
}

}  // namespace lathe
