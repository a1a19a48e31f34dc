// Model registry (versions registered from finished runs), deployments (a name bound to a model version,
// loaded and serving), and the predict endpoint.
#include "api/app.h"
#include "api/data_import.h"
#include "api/params.h"
#include "api/problem.h"
#include "common/clock.h"
#include "common/log.h"

namespace lathe {

namespace {

Json ModelVersionJson(const ModelVersionRecord& m) {
  return {{"name", m.model},   {"version", m.version},     {"run", m.run_id},
          {"task", m.task},    {"metrics", m.metrics},     {"signature", m.signature},
          {"created_at", FormatRfc3339(m.created_at)}};
}

Json DeploymentJson(const DeploymentRecord& d) {
  return {{"name", d.name},
          {"project", d.project},
          {"model", d.model},
          {"version", d.version},
          {"state", d.state},
          {"endpoint", "/api/v1/projects/" + d.project + "/deployments/" + d.name + "/predict"},
          {"created_at", FormatRfc3339(d.created_at)},
          {"updated_at", FormatRfc3339(d.updated_at)}};
}

// Loads a model version into a Predictor. A corrupt or incompatible bundle is refused here, before any
// deployment points at it.
Result<std::shared_ptr<const LoadedDeployment>> LoadVersion(App& app, const DeploymentRecord& d) {
  ASSIGN_OR_RETURN(ModelVersionRecord mv, app.store().GetModelVersion(d.project, d.model, d.version));
  auto bytes = app.blobs().Get(mv.blob);
  if (!bytes.ok()) {
    return Status::FailedPrecondition("model '" + d.model + "' version " + std::to_string(d.version) +
                                      " cannot be loaded: " + bytes.status().message());
  }
  auto predictor = ml::Predictor::Load(*bytes, PiiSalt(app, d.project));
  if (!predictor.ok()) {
    return Status::FailedPrecondition("model '" + d.model + "' version " + std::to_string(d.version) +
                                      " cannot be loaded: " + predictor.status().message());
  }
  auto live = std::make_shared<LoadedDeployment>();
  live->project = d.project;
  live->name = d.name;
  live->model = d.model;
  live->version = mv.version;
  live->predictor = std::move(predictor).value();
  return std::shared_ptr<const LoadedDeployment>(std::move(live));
}

// Turns any accepted request shape into an array of instance objects:
//   {"instances":[{...}]}, {"dataframe_records":[{...}]}, {"inputs":[{...}]},
//   {"columns":[...],"data":[[...]]}, {"dataframe_split":{"columns":[...],"data":[[...]]}}.
Result<Json> InstancesFromBody(Json& body, int64_t max_rows) {
  if (!body.is_object()) {
    return Status::InvalidArgument("body must be a JSON object with 'instances'");
  }
  Json instances;
  auto split_to_records = [](const Json& split, const std::string& where) -> Result<Json> {
    if (!split.is_object() || !split.contains("columns") || !split.contains("data") ||
        !split["columns"].is_array() || !split["data"].is_array()) {
      return Status::InvalidArgument(where + " must have 'columns' (array) and 'data' (array of rows)")
          .WithDetail(ErrorDetail::Field(where, "needs columns and data arrays"));
    }
    const Json& cols = split["columns"];
    for (size_t c = 0; c < cols.size(); ++c) {
      if (!cols[c].is_string()) {
        return Status::InvalidArgument(where + ".columns must be strings")
            .WithDetail(ErrorDetail::Field(where + ".columns[" + std::to_string(c) + "]", "must be a string"));
      }
    }
    Json out = Json::array();
    const Json& data = split["data"];
    for (size_t i = 0; i < data.size(); ++i) {
      if (!data[i].is_array() || data[i].size() != cols.size()) {
        return Status::InvalidArgument(where + ".data[" + std::to_string(i) + "] must be an array of " +
                                       std::to_string(cols.size()) + " values")
            .WithDetail(ErrorDetail::Field(where + ".data[" + std::to_string(i) + "]", "wrong number of values"));
      }
      Json rec = Json::object();
      for (size_t c = 0; c < cols.size(); ++c) rec[cols[c].get<std::string>()] = data[i][c];
      out.push_back(std::move(rec));
    }
    return out;
  };
  if (body.contains("instances")) instances = std::move(body["instances"]);
  else if (body.contains("dataframe_records")) instances = std::move(body["dataframe_records"]);
  else if (body.contains("inputs")) instances = std::move(body["inputs"]);
  else if (body.contains("dataframe_split")) {
    ASSIGN_OR_RETURN(instances, split_to_records(body["dataframe_split"], "dataframe_split"));
  } else if (body.contains("columns") && body.contains("data")) {
    ASSIGN_OR_RETURN(instances, split_to_records(body, "body"));
  } else {
    return Status::InvalidArgument(
               "body needs 'instances' (array of objects), 'dataframe_records', 'dataframe_split' or columns+data")
        .WithDetail(ErrorDetail::Field("instances", "is required"));
  }
  if (!instances.is_array()) {
    return Status::InvalidArgument("'instances' must be an array of objects")
        .WithDetail(ErrorDetail::Field("instances", "must be an array"));
  }
  if (instances.empty()) {
    return Status::InvalidArgument("'instances' is empty").WithDetail(ErrorDetail::Field("instances", "is empty"));
  }
  if (static_cast<int64_t>(instances.size()) > max_rows) {
    return Status::PayloadTooLarge("'instances' has " + std::to_string(instances.size()) +
                                   " rows; the limit is " + std::to_string(max_rows) + " (max_predict_rows)")
        .WithDetail(ErrorDetail::Field("instances", "too many rows"));
  }
  return instances;
}

Status Predict(App& app, RequestContext& ctx) {
  auto live = app.deployments().Get(ctx.Project(), ctx.Param("name"));
  if (!live) return Status::NotFound("deployment '" + ctx.Param("name") + "' not found");
  ASSIGN_OR_RETURN(Json body, ctx.JsonBody(app.config().max_json_depth));
  ASSIGN_OR_RETURN(Json instances, InstancesFromBody(body, app.config().max_predict_rows));
  ASSIGN_OR_RETURN(Json predictions, live->predictor->PredictInstances(instances));
  WriteJson(200, {{"predictions", std::move(predictions)}, {"model", live->model}, {"version", live->version},
                  {"deployment", live->name}},
            ctx.res);
  return Status::Ok();
}

}  // namespace

Status LoadDeployments(App& app) {
  ASSIGN_OR_RETURN(auto all, app.store().ListAllDeployments());
  for (auto& d : all) {
    auto live = LoadVersion(app, d);
    if (!live.ok()) {
      LogError("deployment could not be loaded; it is not serving",
               {{"project", d.project}, {"deployment", d.name}, {"error", live.status().message()}});
      d.state = "failed";
      d.updated_at = NowMicros();
      (void)app.store().UpdateDeployment(d);
      continue;
    }
    app.deployments().Put(std::move(live).value());
  }
  return Status::Ok();
}

void RegisterModelRoutes(Router& router, App& app) {
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
                WriteJson(200, ModelVersionJson(mv), ctx.res);
                return Status::Ok();
              },
              .summary = "One model version: signature, metrics, source run", .tag = "models"});
}

void RegisterDeploymentRoutes(Router& router, App& app) {
  router.Add({.method = "POST", .pattern = "/api/v1/projects/{project}/deployments", .permission = Permission::kDeploy,
              .handler = [&app](RequestContext& ctx) -> Status {
                ASSIGN_OR_RETURN(Json body, ctx.JsonBody(app.config().max_json_depth));
                DeploymentRecord d;
                d.project = ctx.Project();
                ASSIGN_OR_RETURN(d.name, GetString(body, "name"));
                RETURN_IF_ERROR(CheckName(d.name, "name"));
                ASSIGN_OR_RETURN(d.model, GetString(body, "model"));
                ASSIGN_OR_RETURN(d.version, OptionalVersionField(body, "version"));
                auto mv = app.store().GetModelVersion(d.project, d.model, d.version);
                if (!mv.ok()) {
                  Status st = mv.TakeStatus();
                  std::string msg = st.message();
                  return std::move(st).WithDetail(ErrorDetail::Field(d.version ? "version" : "model", msg));
                }
                d.version = mv->version;
                if (app.store().GetDeployment(d.project, d.name).ok()) {
                  return Status::AlreadyExists("deployment '" + d.name +
                                               "' already exists; PATCH it to change its model version");
                }
                ASSIGN_OR_RETURN(auto live, LoadVersion(app, d));
                d.state = "ready";
                d.created_at = d.updated_at = NowMicros();
                RETURN_IF_ERROR(app.store().CreateDeployment(d));
                app.deployments().Put(std::move(live));
                LogInfo("deployment created", {{"project", d.project}, {"deployment", d.name},
                                               {"model", d.model}, {"version", d.version}});
                WriteJson(201, DeploymentJson(d), ctx.res);
                return Status::Ok();
              },
              .summary = "Deploy a model version under a name; it serves as soon as this returns",
              .tag = "deployments", .success_status = 201,
              .request_example = {{"name", "churn-api"}, {"model", "churn"}, {"version", 1}}});
  router.Add({.method = "PATCH", .pattern = "/api/v1/projects/{project}/deployments/{name}",
              .permission = Permission::kDeploy,
              .handler = [&app](RequestContext& ctx) -> Status {
                ASSIGN_OR_RETURN(Json body, ctx.JsonBody(app.config().max_json_depth));
                ASSIGN_OR_RETURN(DeploymentRecord d, app.store().GetDeployment(ctx.Project(), ctx.Param("name")));
                if (!body.is_object()) return Status::InvalidArgument("body must be a JSON object");
                if (body.contains("model")) {
                  ASSIGN_OR_RETURN(d.model, GetString(body, "model"));
                }
                ASSIGN_OR_RETURN(int64_t version, OptionalVersionField(body, "version"));
                ASSIGN_OR_RETURN(auto mv, app.store().GetModelVersion(d.project, d.model, version));
                d.version = mv.version;
                // Load first: a model that cannot load never replaces the one serving.
                ASSIGN_OR_RETURN(auto live, LoadVersion(app, d));
                d.state = "ready";
                d.updated_at = NowMicros();
                RETURN_IF_ERROR(app.store().UpdateDeployment(d));
                app.deployments().Put(std::move(live));
                LogInfo("deployment updated", {{"project", d.project}, {"deployment", d.name},
                                               {"model", d.model}, {"version", d.version}});
                WriteJson(200, DeploymentJson(d), ctx.res);
                return Status::Ok();
              },
              .summary = "Switch a deployment to another model version (atomic; in-flight requests finish on the old one)",
              .tag = "deployments", .request_example = {{"version", 2}}});
  router.Add({.method = "GET", .pattern = "/api/v1/projects/{project}/deployments",
              .permission = Permission::kProjectRead,
              .handler = [&app](RequestContext& ctx) -> Status {
                ASSIGN_OR_RETURN(auto list, app.store().ListDeployments(ctx.Project()));
                Json out = Json::array();
                for (const auto& d : list) out.push_back(DeploymentJson(d));
                WriteJson(200, {{"deployments", out}}, ctx.res);
                return Status::Ok();
              },
              .summary = "List deployments", .tag = "deployments"});
  router.Add({.method = "GET", .pattern = "/api/v1/projects/{project}/deployments/{name}",
              .permission = Permission::kProjectRead,
              .handler = [&app](RequestContext& ctx) -> Status {
                ASSIGN_OR_RETURN(auto d, app.store().GetDeployment(ctx.Project(), ctx.Param("name")));
                Json j = DeploymentJson(d);
                if (auto live = app.deployments().Get(d.project, d.name)) j["signature"] = live->predictor->Signature();
                WriteJson(200, j, ctx.res);
                return Status::Ok();
              },
              .summary = "A deployment: model version, state, input signature", .tag = "deployments"});
  router.Add({.method = "DELETE", .pattern = "/api/v1/projects/{project}/deployments/{name}",
              .permission = Permission::kDeploy,
              .handler = [&app](RequestContext& ctx) -> Status {
                RETURN_IF_ERROR(app.store().DeleteDeployment(ctx.Project(), ctx.Param("name")));
                app.deployments().Remove(ctx.Project(), ctx.Param("name"));
                ctx.res.status = 204;
                ctx.res.body.clear();
                return Status::Ok();
              },
              .summary = "Stop and delete a deployment", .tag = "deployments", .success_status = 204});
  router.Add({.method = "POST", .pattern = "/api/v1/projects/{project}/deployments/{name}/predict",
              .permission = Permission::kPredict,
              .handler = [&app](RequestContext& ctx) { return Predict(app, ctx); },
              .summary = "Predict: {\"instances\":[{column: value}]} (also MLflow dataframe_split/dataframe_records)",
              .tag = "serving",
              .request_example = {{"instances", Json::array({{{"age", 42}, {"plan", "pro"}}})}}});
}

}  // namespace lathe
