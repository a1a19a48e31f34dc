// Users (server admins manage them), projects (any user may create one and owns it) and project members
// with roles (the project's owners manage them). See auth/auth.h for what each role may do.
#include <algorithm>
#include <optional>
#include <set>

#include "api/app.h"
#include "api/params.h"
#include "api/problem.h"
#include "common/clock.h"
#include "common/log.h"

namespace lathe {
namespace {

Json UserJson(const UserRecord& u) {
  return {{"username", u.username}, {"admin", u.is_admin}, {"disabled", u.disabled},
          {"created_at", FormatRfc3339(u.created_at)}};
}

Json MemberJson(const MemberRecord& m) {
  return {{"user", m.username}, {"role", m.role}, {"since", FormatRfc3339(m.created_at)}};
}

Status FieldProblem(const std::string& field, const std::string& message) {
  return Status::InvalidArgument(field + ": " + message).WithDetail(ErrorDetail::Field(field, message));
}

// Rejects body fields outside `known`, naming the first.
Status OnlyFields(const Json& body, const std::set<std::string>& known) {
  if (!body.is_object()) return Status::InvalidArgument("the body must be a JSON object");
  for (const auto& [k, v] : body.items()) {
    if (!known.count(k)) return FieldProblem(k, "unknown field");
  }
  return Status::Ok();
}

Result<std::optional<bool>> OptionalBool(const Json& body, const std::string& field) {
  auto it = body.find(field);
  if (it == body.end() || it->is_null()) return std::optional<bool>();
  if (!it->is_boolean()) return FieldProblem(field, "must be true or false");
  return std::optional<bool>(it->get<bool>());
}

Json ApiKeyJson(const ApiKeyRecord& k, const std::string& creator) {
  Json perms = Json::array();
  size_t start = 0;
  while (start < k.permissions.size()) {
    const size_t end = std::min(k.permissions.find(',', start), k.permissions.size());
    perms.push_back(k.permissions.substr(start, end - start));
    start = end + 1;
  }
  const int64_t now = NowMicros();
  Json j = {{"id", k.id},
            {"name", k.name},
            {"prefix", "lk_" + k.id},
            {"permissions", std::move(perms)},
            {"deployment", k.deployment.empty() ? Json(nullptr) : Json(k.deployment)},
            {"created_by", creator},
            {"created_at", FormatRfc3339(k.created_at)},
            {"expires_at", k.expires_at ? Json(FormatRfc3339(k.expires_at)) : Json(nullptr)},
            {"last_used_at", k.last_used_at ? Json(FormatRfc3339(k.last_used_at)) : Json(nullptr)},
            {"state", k.revoked_at ? "revoked" : (k.expires_at && k.expires_at <= now ? "expired" : "active")}};
  if (k.revoked_at) j["revoked_at"] = FormatRfc3339(k.revoked_at);
  return j;
}

Result<Role> RoleField(const Json& body) {
  ASSIGN_OR_RETURN(std::string name, GetString(body, "role"));
  auto role = ParseRole(name);
  if (!role) return FieldProblem("role", "must be owner, maintainer, developer, viewer or predictor");
  return *role;
}

// kFailedPrecondition if `user` is the project's only owner (who then may neither step down nor leave).
Status NotLastOwner(App& app, const std::string& project, const UserRecord& user) {
  ASSIGN_OR_RETURN(auto members, app.store().ListMembers(project));
  int owners = 0;
  bool is_owner = false;
  for (const MemberRecord& m : members) {
    owners += m.role == "owner";
    is_owner = is_owner || (m.user_id == user.id && m.role == "owner");
  }
  if (is_owner && owners == 1) {
    return Status::FailedPrecondition("'" + user.username + "' is the project's last owner; make someone else "
                                      "owner first");
  }
  return Status::Ok();
}

}  // namespace

void RegisterTenancyRoutes(Router& router, App& app) {
  // ---- users (server admins)
  router.Add({.method = "POST", .pattern = "/api/v1/users", .permission = Permission::kAdmin,
              .handler = [&app](RequestContext& ctx) -> Status {
                ASSIGN_OR_RETURN(Json body, ctx.JsonBody(app.config().max_json_depth));
                RETURN_IF_ERROR(OnlyFields(body, {"username", "password", "admin"}));
                ASSIGN_OR_RETURN(std::string username, GetString(body, "username"));
                ASSIGN_OR_RETURN(std::string password, GetString(body, "password"));
                ASSIGN_OR_RETURN(std::optional<bool> admin, OptionalBool(body, "admin"));
                ASSIGN_OR_RETURN(UserRecord u, app.auth().CreateUser(username, password, admin.value_or(false)));
                LogInfo("user created", {{"user", username}, {"by", ctx.caller.username}, {"admin", u.is_admin}});
                WriteJson(201, UserJson(u), ctx.res);
                return Status::Ok();
              },
              .summary = "Create a user (server admins)", .tag = "users", .success_status = 201,
              .request_example = {{"username", "ana"}, {"password", "…"}, {"admin", false}}});
  router.Add({.method = "GET", .pattern = "/api/v1/users", .permission = Permission::kAdmin,
              .handler = [&app](RequestContext& ctx) -> Status {
                ASSIGN_OR_RETURN(auto users, app.store().ListUsers());
                Json out = Json::array();
                for (const UserRecord& u : users) out.push_back(UserJson(u));
                WriteJson(200, {{"users", std::move(out)}}, ctx.res);
                return Status::Ok();
              },
              .summary = "List users (server admins)", .tag = "users"});
  router.Add({.method = "PATCH", .pattern = "/api/v1/users/{user}", .permission = Permission::kAdmin,
              .handler = [&app](RequestContext& ctx) -> Status {
                ASSIGN_OR_RETURN(Json body, ctx.JsonBody(app.config().max_json_depth));
                RETURN_IF_ERROR(OnlyFields(body, {"password", "disabled", "admin"}));
                std::optional<std::string> password;
                if (body.contains("password")) {
                  ASSIGN_OR_RETURN(std::string p, GetString(body, "password"));
                  password = std::move(p);
                }
                ASSIGN_OR_RETURN(std::optional<bool> disabled, OptionalBool(body, "disabled"));
                ASSIGN_OR_RETURN(std::optional<bool> admin, OptionalBool(body, "admin"));
                const std::string& name = ctx.Param("user");
                if (name == ctx.caller.username && ((disabled && *disabled) || (admin && !*admin))) {
                  return Status::FailedPrecondition("you cannot disable yourself or drop your own admin role");
                }
                auto u = app.auth().UpdateUser(name, password, disabled, admin);
                if (!u.ok() && u.status().code() == StatusCode::kNotFound) {
                  return Status::NotFound("user '" + name + "' not found");
                }
                RETURN_IF_ERROR(u.status());
                LogInfo("user changed", {{"user", name}, {"by", ctx.caller.username}, {"password", password.has_value()},
                                         {"disabled", u->disabled}, {"admin", u->is_admin}});
                WriteJson(200, UserJson(*u), ctx.res);
                return Status::Ok();
              },
              .summary = "Change a user's password, disable or enable them, grant or drop admin (server admins)",
              .tag = "users", .request_example = {{"disabled", true}}});

  // ---- projects
  router.Add({.method = "POST", .pattern = "/api/v1/projects", .permission = Permission::kAuthenticated,
              .handler = [&app](RequestContext& ctx) -> Status {
                ASSIGN_OR_RETURN(Json body, ctx.JsonBody(app.config().max_json_depth));
                RETURN_IF_ERROR(OnlyFields(body, {"name"}));
                ASSIGN_OR_RETURN(std::string name, GetString(body, "name"));
                RETURN_IF_ERROR(CheckName(name, "name"));
                RETURN_IF_ERROR(app.store().CreateProject(name, ctx.caller.user_id));
                app.auth().InvalidateCaches();
                LogInfo("project created", {{"project", name}, {"owner", ctx.caller.username}});
                WriteJson(201, {{"name", name}, {"role", "owner"}}, ctx.res);
                return Status::Ok();
              },
              .summary = "Create a project; the caller becomes its owner", .tag = "projects", .success_status = 201,
              .request_example = {{"name", "churn"}}, .user_only = true});
  router.Add({.method = "GET", .pattern = "/api/v1/projects", .permission = Permission::kAuthenticated,
              .handler = [&app](RequestContext& ctx) -> Status {
                Json out = Json::array();
                if (ctx.caller.is_admin) {
                  ASSIGN_OR_RETURN(auto names, app.store().ListProjects());
                  for (const std::string& n : names) {
                    auto it = ctx.caller.roles ? ctx.caller.roles->find(n) : decltype(ctx.caller.roles->end()){};
                    const bool member = ctx.caller.roles && it != ctx.caller.roles->end();
                    out.push_back({{"name", n}, {"role", member ? Json(RoleName(it->second)) : Json(nullptr)}});
                  }
                } else if (ctx.caller.roles) {
                  for (const auto& [n, role] : *ctx.caller.roles) out.push_back({{"name", n}, {"role", RoleName(role)}});
                }
                WriteJson(200, {{"projects", std::move(out)}}, ctx.res);
                return Status::Ok();
              },
              .summary = "Projects the caller is a member of (all of them for server admins), with the caller's role",
              .tag = "projects", .user_only = true});

  // ---- API keys: maintainers and owners (kDeploy) manage them; a key carries at most its creator's rights.
  router.Add({.method = "POST", .pattern = "/api/v1/projects/{project}/api-keys", .permission = Permission::kDeploy,
              .handler = [&app](RequestContext& ctx) -> Status {
                ASSIGN_OR_RETURN(Json body, ctx.JsonBody(app.config().max_json_depth));
                RETURN_IF_ERROR(OnlyFields(body, {"name", "permissions", "deployment", "expires_in_days"}));
                ASSIGN_OR_RETURN(std::string name, GetString(body, "name"));
                const Json perms = body.value("permissions", Json());
                if (!perms.is_array() || perms.empty() || perms.size() > 4) {
                  return FieldProblem("permissions", "must be a list of read, write, deploy, predict");
                }
                std::vector<Permission> granted;
                for (const Json& p : perms) {
                  auto perm = p.is_string() ? ParseKeyPermission(p.get<std::string>()) : std::nullopt;
                  if (!perm) return FieldProblem("permissions", "unknown permission " + p.dump().substr(0, 40) +
                                                                    "; use read, write, deploy or predict");
                  granted.push_back(*perm);
                }
                std::string deployment;
                if (body.contains("deployment") && !body["deployment"].is_null()) {
                  ASSIGN_OR_RETURN(deployment, GetString(body, "deployment"));
                  RETURN_IF_ERROR(CheckName(deployment, "deployment"));
                }
                int64_t expires_at = 0;
                if (body.contains("expires_in_days") && !body["expires_in_days"].is_null()) {
                  const Json& d = body["expires_in_days"];
                  if (!d.is_number() || !(d.get<double>() > 0) || d.get<double>() > 3650) {
                    return FieldProblem("expires_in_days", "must be a number of days in (0, 3650]");
                  }
                  expires_at = NowMicros() + static_cast<int64_t>(d.get<double>() * 86400.0 * 1e6);
                }
                ASSIGN_OR_RETURN(NewApiKey key, app.auth().CreateApiKey(ctx.caller, ctx.Project(), name, granted,
                                                                        deployment, expires_at));
                LogInfo("API key created", {{"project", ctx.Project()}, {"key", key.record.id},
                                            {"by", ctx.caller.username}, {"permissions", key.record.permissions}});
                Json out = ApiKeyJson(key.record, ctx.caller.username);
                out["key"] = key.key;
                WriteJson(201, out, ctx.res);
                return Status::Ok();
              },
              .summary = "Create an API key for this project (the key is in the response only)", .tag = "projects",
              .success_status = 201,
              .request_example = {{"name", "checkout-service"}, {"permissions", {"predict"}},
                                  {"deployment", "churn-api"}, {"expires_in_days", 90}}});
  router.Add({.method = "GET", .pattern = "/api/v1/projects/{project}/api-keys", .permission = Permission::kDeploy,
              .handler = [&app](RequestContext& ctx) -> Status {
                ASSIGN_OR_RETURN(auto keys, app.store().ListApiKeys(ctx.Project()));
                Json out = Json::array();
                for (const ApiKeyRecord& k : keys) {
                  auto user = app.store().GetUserById(k.created_by);
                  out.push_back(ApiKeyJson(k, user.ok() ? user->username : k.created_by));
                }
                WriteJson(200, {{"api_keys", std::move(out)}}, ctx.res);
                return Status::Ok();
              },
              .summary = "The project's API keys (never the keys themselves), with their last use", .tag = "projects"});
  router.Add({.method = "DELETE", .pattern = "/api/v1/projects/{project}/api-keys/{id}",
              .permission = Permission::kDeploy,
              .handler = [&app](RequestContext& ctx) -> Status {
                if (ctx.caller.IsApiKey()) {
                  return Status::PermissionDenied("an API key cannot revoke API keys; log in as a user");
                }
                RETURN_IF_ERROR(app.auth().RevokeApiKey(ctx.Project(), ctx.Param("id")));
                LogInfo("API key revoked", {{"project", ctx.Project()}, {"key", ctx.Param("id")},
                                            {"by", ctx.caller.username}});
                ctx.res.status = 204;
                return Status::Ok();
              },
              .summary = "Revoke an API key (at once)", .tag = "projects", .success_status = 204});

  // ---- members
  router.Add({.method = "GET", .pattern = "/api/v1/projects/{project}/members", .permission = Permission::kProjectRead,
              .handler = [&app](RequestContext& ctx) -> Status {
                ASSIGN_OR_RETURN(auto members, app.store().ListMembers(ctx.Project()));
                Json out = Json::array();
                for (const MemberRecord& m : members) out.push_back(MemberJson(m));
                WriteJson(200, {{"members", std::move(out)}}, ctx.res);
                return Status::Ok();
              },
              .summary = "The project's members and their roles", .tag = "projects"});
  router.Add({.method = "PUT", .pattern = "/api/v1/projects/{project}/members/{user}",
              .permission = Permission::kManageMembers,
              .handler = [&app](RequestContext& ctx) -> Status {
                ASSIGN_OR_RETURN(Json body, ctx.JsonBody(app.config().max_json_depth));
                RETURN_IF_ERROR(OnlyFields(body, {"role"}));
                ASSIGN_OR_RETURN(Role role, RoleField(body));
                auto user = app.store().GetUserByName(ctx.Param("user"));
                if (!user.ok()) return Status::NotFound("user '" + ctx.Param("user") + "' not found");
                // The last owner cannot step down: someone must be able to manage the project.
                if (role != Role::kOwner) RETURN_IF_ERROR(NotLastOwner(app, ctx.Project(), *user));
                RETURN_IF_ERROR(app.store().SetMember(
                    MemberRecord{ctx.Project(), user->id, user->username, RoleName(role), NowMicros()}));
                app.auth().InvalidateCaches();
                LogInfo("member set", {{"project", ctx.Project()}, {"user", user->username}, {"role", RoleName(role)},
                                       {"by", ctx.caller.username}});
                WriteJson(200, {{"user", user->username}, {"role", RoleName(role)}}, ctx.res);
                return Status::Ok();
              },
              .summary = "Add a member or change their role (owners)", .tag = "projects",
              .request_example = {{"role", "developer"}}});
  router.Add({.method = "DELETE", .pattern = "/api/v1/projects/{project}/members/{user}",
              .permission = Permission::kManageMembers,
              .handler = [&app](RequestContext& ctx) -> Status {
                auto user = app.store().GetUserByName(ctx.Param("user"));
                if (!user.ok()) return Status::NotFound("user '" + ctx.Param("user") + "' not found");
                RETURN_IF_ERROR(NotLastOwner(app, ctx.Project(), *user));
                RETURN_IF_ERROR(app.store().RemoveMember(ctx.Project(), user->id));
                app.auth().InvalidateCaches();
                LogInfo("member removed", {{"project", ctx.Project()}, {"user", user->username},
                                           {"by", ctx.caller.username}});
                ctx.res.status = 204;
                ctx.res.body.clear();
                return Status::Ok();
              },
              .summary = "Remove a member (owners)", .tag = "projects", .success_status = 204});
}

}  // namespace lathe
