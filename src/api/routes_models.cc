// Model registry: versions registered from finished runs. (Deployments and predictions: routes_serving.cc.)
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

}  // namespace

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
}

}  // namespace lathe
