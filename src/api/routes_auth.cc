// Login, logout, whoami.
#include <limits>

#include "api/app.h"
#include "api/problem.h"
#include "api/session.h"
#include "common/clock.h"
#include "common/log.h"

namespace lathe {

void RegisterAuthRoutes(Router& router, App& app) {
  router.Add({.method = "POST", .pattern = "/api/v1/auth/login", .permission = Permission::kPublic,
              .handler = [&app](RequestContext& ctx) -> Status {
                ASSIGN_OR_RETURN(Json body, ctx.JsonBody(app.config().max_json_depth));
                ASSIGN_OR_RETURN(std::string username, GetString(body, "username"));
                ASSIGN_OR_RETURN(std::string password, GetString(body, "password"));
                bool session = false;
                if (body.contains("session")) {
                  if (!body["session"].is_boolean()) {
                    return Status::InvalidArgument("session must be true or false")
                        .WithDetail(ErrorDetail::Field("session", "must be a boolean"));
                  }
                  session = body["session"].get<bool>();
                }
                ctx.audit_actor = username.substr(0, 256);
                int64_t retry_after = 0;
                auto login = app.auth().Login(username, password, &retry_after);
                if (!login.ok()) {
                  LogWarn("login failed", {{"username", username}, {"remote", ctx.req.remote_addr},
                                           {"request_id", ctx.req.request_id}});
                  if (retry_after > 0) ctx.res.headers.emplace_back("Retry-After", std::to_string(retry_after));
                  return login.TakeStatus();
                }
                ctx.res.caller = username;
                Json out = {{"token", login->token}, {"expires_at", FormatRfc3339(login->expires_at)},
                            {"user", username}};
                if (session) {
                  // A browser session: the token also goes into an HttpOnly cookie (api/session.h).
                  SetSessionCookies(ctx.res, login->token, app.config().token_ttl_s);
                  out["csrf_token"] = CsrfTokenFor(login->token);
                }
                WriteJson(200, out, ctx.res);
                return Status::Ok();
              },
              .summary = "Log in with a username and password; returns a bearer token (with \"session\": true also as HttpOnly session and CSRF cookies for browsers)",
              .tag = "auth",
              .request_example = {{"username", "admin"}, {"password", "…"}, {"session", false}}});
  router.Add({.method = "POST", .pattern = "/api/v1/auth/logout", .permission = Permission::kAuthenticated,
              .handler = [&app](RequestContext& ctx) -> Status {
                RETURN_IF_ERROR(app.auth().Logout(ctx.caller));
                if (!ctx.req.Header("authorization")) SetSessionCookies(ctx.res, "", 0);  // a browser session
                ctx.res.status = 204;
                ctx.res.body.clear();
                return Status::Ok();
              },
              .summary = "Revoke the token used for this call", .tag = "auth", .success_status = 204, .user_only = true});
  router.Add({.method = "GET", .pattern = "/api/v1/auth/whoami", .permission = Permission::kAuthenticated,
              .handler = [](RequestContext& ctx) -> Status {
                Json out = {{"user", ctx.caller.username}, {"admin", ctx.caller.is_admin}};
                if (ctx.caller.IsApiKey()) {
                  out["api_key"] = {{"id", ctx.caller.key_id}, {"project", ctx.caller.key_project},
                                    {"deployment", ctx.caller.key_deployment.empty() ? Json(nullptr)
                                                                                     : Json(ctx.caller.key_deployment)}};
                  out["expires_at"] = ctx.caller.expires_at == std::numeric_limits<int64_t>::max()
                                          ? Json(nullptr)
                                          : Json(FormatRfc3339(ctx.caller.expires_at));
                } else {
                  out["expires_at"] = FormatRfc3339(ctx.caller.expires_at);
                }
                WriteJson(200, out, ctx.res);
                return Status::Ok();
              },
              .summary = "Who the token belongs to", .tag = "auth"});
}

}  // namespace lathe
