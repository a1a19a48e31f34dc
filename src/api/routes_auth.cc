// Login, logout, whoami.
#include "api/app.h"
#include "api/problem.h"
#include "common/clock.h"
#include "common/log.h"

namespace lathe {

void RegisterAuthRoutes(Router& router, App& app) {
  router.Add({.method = "POST", .pattern = "/api/v1/auth/login", .permission = Permission::kPublic,
              .handler = [&app](RequestContext& ctx) -> Status {
                ASSIGN_OR_RETURN(Json body, ctx.JsonBody(app.config().max_json_depth));
                ASSIGN_OR_RETURN(std::string username, GetString(body, "username"));
                ASSIGN_OR_RETURN(std::string password, GetString(body, "password"));
                int64_t retry_after = 0;
                auto login = app.auth().Login(username, password, &retry_after);
                if (!login.ok()) {
                  LogWarn("login failed", {{"username", username}, {"remote", ctx.req.remote_addr},
                                           {"request_id", ctx.req.request_id}});
                  if (retry_after > 0) ctx.res.headers.emplace_back("Retry-After", std::to_string(retry_after));
                  return login.TakeStatus();
                }
                ctx.res.caller = username;
                WriteJson(200, {{"token", login->token}, {"expires_at", FormatRfc3339(login->expires_at)},
                                {"user", username}},
                          ctx.res);
                return Status::Ok();
              },
              .summary = "Log in with a username and password; returns a bearer token",
              .tag = "auth",
              .request_example = {{"username", "admin"}, {"password", "…"}}});
  router.Add({.method = "POST", .pattern = "/api/v1/auth/logout", .permission = Permission::kAuthenticated,
              .handler = [&app](RequestContext& ctx) -> Status {
                RETURN_IF_ERROR(app.auth().Logout(ctx.caller));
                ctx.res.status = 204;
                ctx.res.body.clear();
                return Status::Ok();
              },
              .summary = "Revoke the token used for this call", .tag = "auth", .success_status = 204});
  router.Add({.method = "GET", .pattern = "/api/v1/auth/whoami", .permission = Permission::kAuthenticated,
              .handler = [](RequestContext& ctx) -> Status {
                WriteJson(200, {{"user", ctx.caller.username}, {"admin", ctx.caller.is_admin},
                                {"expires_at", FormatRfc3339(ctx.caller.expires_at)}},
                          ctx.res);
                return Status::Ok();
              },
              .summary = "Who the token belongs to", .tag = "auth"});
}

}  // namespace lathe
