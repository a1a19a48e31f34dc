#include "api/data_settings.h"

#include "api/app.h"
#include "api/params.h"
#include "api/problem.h"
#include "common/clock.h"
#include "common/log.h"
#include "data/dataset_file.h"

namespace lathe {

namespace {

constexpr const char* kSettingsKind = "dataset_settings";
constexpr double kMaxDpEpsilon = 100;

Status FieldError(const std::string& field, const std::string& problem) {
  return Status::InvalidArgument(field + " " + problem).WithDetail(ErrorDetail::Field(field, problem));
}

bool IsTag(const std::string& t) {
  return t == "public" || t == "internal" || t == "confidential" || t == "personal";
}

}  // namespace

Result<DatasetSettings> ParseDatasetSettings(const Json& j) {
  if (!j.is_object()) return FieldError("body", "must be a JSON object");
  DatasetSettings s;
  for (const auto& [key, value] : j.items()) {
    if (key == "target") {
      if (!value.is_string() && !value.is_null()) return FieldError("target", "must be a column name or null");
      s.target = value.is_string() ? value.get<std::string>() : "";
    } else if (key == "contract") {
      if (value.is_null() || (value.is_object() && value.empty())) continue;
      RETURN_IF_ERROR(ParseContract(value).status());
      s.contract = value;
    } else if (key == "enforce_contract") {
      if (!value.is_boolean()) return FieldError("enforce_contract", "must be true or false");
      s.enforce_contract = value.get<bool>();
    } else if (key == "tags") {
      if (!value.is_object()) return FieldError("tags", "must be an object of column name to tag");
      for (const auto& [col, tag] : value.items()) {
        if (!tag.is_string() || !IsTag(tag.get<std::string>())) {
          return FieldError("tags." + col, "must be public, internal, confidential or personal");
        }
        s.tags[col] = tag.get<std::string>();
      }
    } else if (key == "retention_days") {
      if (!value.is_number_integer() || value.get<int64_t>() < 0 || value.get<int64_t>() > 365 * 100) {
        return FieldError("retention_days", "must be an integer from 0 (keep forever) to 36500");
      }
      s.retention_days = value.get<int64_t>();
    } else if (key == "description") {
      if (!value.is_string() || value.get<std::string>().size() > 10000) {
        return FieldError("description", "must be a string of at most 10000 characters");
      }
      s.description = value.get<std::string>();
    } else if (key == "dp_epsilon") {
      if (value.is_null()) continue;
      if (!value.is_number() || !(value.get<double>() > 0) || !(value.get<double>() <= kMaxDpEpsilon)) {
        return FieldError("dp_epsilon", "must be null (exact profiles) or a number > 0 and <= 100");
      }
      s.dp_epsilon = value.get<double>();
    } else {
      return FieldError(key.substr(0, 40),
                        "is not a dataset setting (target, contract, enforce_contract, tags, retention_days, "
                        "description, dp_epsilon)");
    }
  }
  return s;
}

Json DatasetSettingsToJson(const DatasetSettings& s) {
  Json tags = Json::object();
  for (const auto& [c, t] : s.tags) tags[c] = t;
  return {{"target", s.target.empty() ? Json(nullptr) : Json(s.target)},
          {"contract", s.contract},
          {"enforce_contract", s.enforce_contract},
          {"tags", tags},
          {"retention_days", s.retention_days},
          {"description", s.description},
          {"dp_epsilon", s.dp_epsilon > 0 ? Json(s.dp_epsilon) : Json(nullptr)}};
}

Result<DatasetSettings> LoadDatasetSettings(App& app, const std::string& project, const std::string& dataset) {
  auto doc = app.store().GetDocument(project, kSettingsKind, dataset, 0);
  if (!doc.ok()) {
    if (doc.status().code() == StatusCode::kNotFound) return DatasetSettings{};
    return doc.TakeStatus();
  }
  return ParseDatasetSettings(doc->body);
}

Status DeleteVersion(App& app, const std::string& project, const std::string& dataset, int64_t version) {
  ASSIGN_OR_RETURN(DatasetVersionRecord gone, app.store().DeleteDatasetVersion(project, dataset, version));
  for (const std::string* blob : {&gone.blob, &gone.profile_blob, &gone.quarantine_blob}) {
    if (blob->empty()) continue;
    auto used = app.store().BlobReferenced(*blob);
    if (used.ok() && !*used) {
      Status st = app.blobs().Remove(*blob);
      if (!st.ok()) LogWarn("blob not removed", {{"blob", *blob}, {"error", st.ToString()}});
    }
  }
  LogInfo("dataset version deleted", {{"project", project}, {"dataset", dataset}, {"version", version}});
  return Status::Ok();
}

Result<Json> ApplyRetention(App& app, const std::string& project, const std::string& dataset, int64_t now_micros) {
  ASSIGN_OR_RETURN(DatasetSettings settings, LoadDatasetSettings(app, project, dataset));
  Json deleted = Json::array(), kept = Json::array();
  if (settings.retention_days <= 0) return Json{{"deleted", deleted}, {"kept", kept}};
  ASSIGN_OR_RETURN(auto versions, app.store().ListDatasetVersions(project, dataset));
  const int64_t cutoff = now_micros - settings.retention_days * int64_t{86400} * 1000000;
  for (const auto& v : versions) {
    if (v.version == versions.back().version || v.created_at >= cutoff) continue;
    ASSIGN_OR_RETURN(auto models, app.store().ModelsUsingDatasetVersion(project, dataset, v.version));
    if (!models.empty()) {
      std::string names;
      for (const auto& m : models) names += (names.empty() ? "" : ", ") + m;
      kept.push_back({{"version", v.version}, {"reason", "referenced by registered model " + names}});
      continue;
    }
    RETURN_IF_ERROR(DeleteVersion(app, project, dataset, v.version));
    deleted.push_back(v.version);
  }
  return Json{{"deleted", deleted}, {"kept", kept}};
}

void RegisterDatasetSettingsRoutes(Router& router, App& app) {
  const std::string base = "/api/v1/projects/{project}/datasets/{name}";
  router.Add({.method = "GET", .pattern = base + "/settings", .permission = Permission::kProjectRead,
              .handler = [&app](RequestContext& ctx) -> Status {
                RETURN_IF_ERROR(app.store().GetDatasetVersion(ctx.Project(), ctx.Param("name"), 0).status());
                ASSIGN_OR_RETURN(auto s, LoadDatasetSettings(app, ctx.Project(), ctx.Param("name")));
                WriteJson(200, DatasetSettingsToJson(s), ctx.res);
                return Status::Ok();
              },
              .summary = "A dataset's settings: target, data contract, column tags, retention", .tag = "datasets"});
  router.Add({.method = "PUT", .pattern = base + "/settings", .permission = Permission::kProjectWrite,
              .handler = [&app](RequestContext& ctx) -> Status {
                ASSIGN_OR_RETURN(auto latest, app.store().GetDatasetVersion(ctx.Project(), ctx.Param("name"), 0));
                ASSIGN_OR_RETURN(Json body, ctx.JsonBody(app.config().max_json_depth));
                ASSIGN_OR_RETURN(DatasetSettings s, ParseDatasetSettings(body));
                // Tags and the target must name columns of the latest version.
                auto has_column = [&](const std::string& name) {
                  for (const auto& c : latest.columns) {
                    if (c.value("name", std::string()) == name) return true;
                  }
                  return false;
                };
                if (!s.target.empty() && !has_column(s.target)) {
                  return FieldError("target", "names no column of version " + std::to_string(latest.version));
                }
                for (const auto& [col, tag] : s.tags) {
                  if (!has_column(col)) {
                    return FieldError("tags." + col, "names no column of version " + std::to_string(latest.version));
                  }
                }
                DocumentRecord doc{.project = ctx.Project(), .kind = kSettingsKind, .name = ctx.Param("name"),
                                   .body = DatasetSettingsToJson(s), .created_by = ctx.caller.user_id,
                                   .created_at = NowMicros()};
                RETURN_IF_ERROR(app.store().PutDocument(doc).status());
                WriteJson(200, doc.body, ctx.res);
                return Status::Ok();
              },
              .summary = "Replace a dataset's settings", .tag = "datasets",
              .request_example = {{"target", "churned"},
                                  {"contract", {{"columns", {{"age", {{"not_null", true}, {"min", 0}}}}}}},
                                  {"enforce_contract", true},
                                  {"tags", {{"email", "personal"}}},
                                  {"retention_days", 90}}});
  router.Add({.method = "POST", .pattern = base + "/versions/{version}/check", .permission = Permission::kProjectRead,
              .handler = [&app](RequestContext& ctx) -> Status {
                ASSIGN_OR_RETURN(int64_t version, ParseVersion(ctx.Param("version"), "dataset"));
                ASSIGN_OR_RETURN(auto v, app.store().GetDatasetVersion(ctx.Project(), ctx.Param("name"), version));
                Json contract_json;
                auto body = ctx.JsonBody(app.config().max_json_depth);
                if (body.ok() && body->is_object() && body->contains("contract")) {
                  contract_json = (*body)["contract"];
                } else {
                  ASSIGN_OR_RETURN(auto s, LoadDatasetSettings(app, ctx.Project(), ctx.Param("name")));
                  if (s.contract.empty()) {
                    return Status::FailedPrecondition("dataset '" + v.dataset +
                                                      "' has no contract; PUT …/settings with one, or send "
                                                      "{\"contract\": …} in this request");
                  }
                  contract_json = s.contract;
                }
                ASSIGN_OR_RETURN(Contract contract, ParseContract(contract_json));
                ASSIGN_OR_RETURN(auto file, OpenDatasetVersion(app, v));
                ASSIGN_OR_RETURN(Json report, CheckContract(*file, contract, NowMicros()));
                WriteJson(200, report, ctx.res);
                return Status::Ok();
              },
              .summary = "Check a version against the dataset's contract (or one in the body)", .tag = "datasets"});
  router.Add({.method = "DELETE", .pattern = base + "/versions/{version}", .permission = Permission::kProjectWrite,
              .handler = [&app](RequestContext& ctx) -> Status {
                ASSIGN_OR_RETURN(int64_t version, ParseVersion(ctx.Param("version"), "dataset"));
                if (version == 0) return FieldError("version", "must be a number to delete (not latest)");
                RETURN_IF_ERROR(DeleteVersion(app, ctx.Project(), ctx.Param("name"), version));
                ctx.res.status = 204;
                ctx.res.body.clear();
                return Status::Ok();
              },
              .summary = "Delete a version (refused while a registered model references it)", .tag = "datasets",
              .success_status = 204});
  router.Add({.method = "POST", .pattern = base + "/retention", .permission = Permission::kProjectWrite,
              .handler = [&app](RequestContext& ctx) -> Status {
                RETURN_IF_ERROR(app.store().GetDatasetVersion(ctx.Project(), ctx.Param("name"), 0).status());
                ASSIGN_OR_RETURN(Json out, ApplyRetention(app, ctx.Project(), ctx.Param("name"), NowMicros()));
                WriteJson(200, out, ctx.res);
                return Status::Ok();
              },
              .summary = "Apply the retention period now (also applied after every import)", .tag = "datasets"});
}

}  // namespace lathe
