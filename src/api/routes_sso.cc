// Single sign-on with OpenID Connect (authorization code flow with PKCE; auth/oidc.h does the protocol):
//
//   GET /api/v1/auth/oidc/login?return_to=/path   302 to the provider; the login's state, nonce and PKCE
//                                                 verifier travel in an encrypted, HttpOnly cookie (10 minutes)
//   GET /api/v1/auth/oidc/callback?code=&state=   checks the state, exchanges the code, verifies the ID token
//                                                 (signature, issuer, audience, expiry, nonce), maps the identity
//                                                 to a lathe user and its groups to project roles, and starts a
//                                                 browser session (api/session.h). Answers a small page that
//                                                 continues to return_to (JSON with Accept: application/json).
//
// Identity: the user named by the username claim, linked to "<issuer>|<sub>"; a local user of that name is
// never taken over. Groups: every grant in the role map whose group the user is in gives its role in its
// project (the strongest wins; the project is created if needed); a mapped project where the user no longer
// has a group loses the membership. With an admin group, membership in it makes (or unmakes) a server admin.
#include <algorithm>

#include "api/app.h"
#include "api/problem.h"
#include "api/session.h"
#include "auth/oidc.h"
#include "common/clock.h"
#include "common/crypto.h"
#include "common/log.h"

namespace lathe {

namespace {

constexpr const char* kStateCookie = "lathe_oidc";
constexpr const char* kStatePath = "/api/v1/auth/oidc";
constexpr int64_t kStateTtlS = 600;
constexpr const char* kStateAad = "lathe-oidc-login-state";

// Only a path on this server: never another site (an open redirect) nor a scheme-relative "//host".
std::string SafeReturnTo(const std::string* requested) {
  if (requested == nullptr || requested->empty() || (*requested)[0] != '/' || requested->size() > 2048) return "/";
  if (requested->size() > 1 && ((*requested)[1] == '/' || (*requested)[1] == '\\')) return "/";
  for (char c : *requested) {
    if (static_cast<unsigned char>(c) < 0x20 || c == '\\' || c == '"' || c == '<' || c == '>') return "/";
  }
  return *requested;
}

Status SyncRoles(App& app, const OidcConfig& cfg, const UserRecord& user, const std::vector<std::string>& groups) {
  ASSIGN_OR_RETURN(std::vector<MemberRecord> current, app.store().ListMemberships(user.id));
  std::map<std::string, Role> want;
  std::set<std::string> mapped;
  for (const auto& g : cfg.role_map) {
    mapped.insert(g.project);
    if (std::find(groups.begin(), groups.end(), g.group) == groups.end()) continue;
    const Role r = *ParseRole(g.role);  // validated at start
    auto it = want.find(g.project);
    if (it == want.end() || r < it->second) want[g.project] = r;  // lower enum value = more powerful
  }
  for (const auto& [project, role] : want) {
    RETURN_IF_ERROR(app.store().EnsureProject(project));
    RETURN_IF_ERROR(app.store().SetMember(MemberRecord{project, user.id, user.username, RoleName(role), NowMicros()}));
  }
  for (const auto& m : current) {
    if (mapped.count(m.project) && !want.count(m.project)) {
      RETURN_IF_ERROR(app.store().RemoveMember(m.project, user.id));
    }
  }
  app.auth().InvalidateCaches();
  return Status::Ok();
}

Status NotConfigured() {
  return Status::NotFound("single sign-on is not configured on this server (see --oidc-issuer in `lathe serve --help`)");
}

std::string HtmlEscape(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return out;
}

}  // namespace

Result<std::vector<OidcConfig::RoleGrant>> ParseOidcRoleMap(const std::string& text) {
  std::vector<OidcConfig::RoleGrant> out;
  size_t start = 0;
  while (start <= text.size()) {
    size_t comma = text.find(',', start);
    std::string entry = text.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    start = comma == std::string::npos ? text.size() + 1 : comma + 1;
    while (!entry.empty() && entry.front() == ' ') entry.erase(entry.begin());
    while (!entry.empty() && entry.back() == ' ') entry.pop_back();
    if (entry.empty()) continue;
    const size_t eq = entry.rfind('=');
    const size_t colon = entry.rfind(':');
    if (eq == std::string::npos || colon == std::string::npos || colon < eq || eq == 0 || colon == eq + 1 ||
        colon + 1 == entry.size()) {
      return Status::InvalidArgument("oidc-role-map entry '" + entry + "' must be GROUP=PROJECT:ROLE");
    }
    OidcConfig::RoleGrant g{entry.substr(0, eq), entry.substr(eq + 1, colon - eq - 1), entry.substr(colon + 1)};
    if (!ParseRole(g.role)) {
      return Status::InvalidArgument("oidc-role-map entry '" + entry +
                                     "': role must be owner, maintainer, developer, viewer or predictor");
    }
    out.push_back(std::move(g));
  }
  return out;
}

void RegisterSsoRoutes(Router& router, App& app) {
  std::shared_ptr<OidcClient> client;
  const OidcConfig& cfg = app.config().oidc;
  if (cfg.enabled()) {
    auto made = OidcClient::Create(OidcClientOptions{.issuer = cfg.issuer,
                                                     .client_id = cfg.client_id,
                                                     .client_secret = cfg.client_secret,
                                                     .redirect_uri = cfg.redirect_uri,
                                                     .scope = cfg.scope,
                                                     .min_jwks_refresh_interval_s = cfg.jwks_min_refresh_s});
    if (made.ok()) {
      client = std::move(made).value();
    } else {
      LogError("single sign-on is off: its configuration is invalid", {{"error", made.status().ToString()}});
    }
  }

  router.Add({.method = "GET", .pattern = "/api/v1/auth/oidc/login", .permission = Permission::kPublic,
              .handler = [&app, client](RequestContext& ctx) -> Status {
                if (!client) return NotConfigured();
                ASSIGN_OR_RETURN(OidcLoginStart start, client->StartLogin());
                Json state = {{"state", start.state},
                              {"nonce", start.nonce},
                              {"verifier", start.code_verifier},
                              {"return_to", SafeReturnTo(ctx.req.Query("return_to"))},
                              {"exp", NowMicros() / 1000000 + kStateTtlS}};
                ASSIGN_OR_RETURN(SealedValue sealed, app.keyring().Seal(state.dump(), kStateAad));
                // Lax, not Strict: the provider sends the browser back with a cross-site redirect.
                ctx.res.headers.emplace_back(
                    "Set-Cookie", CookieHeader(kStateCookie, sealed.key_id + "." + Base64UrlEncode(sealed.sealed), kStateTtlS, true, "Lax", kStatePath));
                ctx.res.headers.emplace_back("Location", start.url);
                ctx.res.headers.emplace_back("Cache-Control", "no-store");
                ctx.res.status = 302;
                ctx.res.content_type = "text/plain; charset=utf-8";
                ctx.res.body = "continue at the identity provider\n";
                return Status::Ok();
              },
              .summary = "Start single sign-on: redirects to the OpenID Connect provider (?return_to=/path)",
              .tag = "auth",
              .success_status = 302});

  router.Add({.method = "GET", .pattern = "/api/v1/auth/oidc/callback", .permission = Permission::kPublic,
              .handler = [&app, client](RequestContext& ctx) -> Status {
                if (!client) return NotConfigured();
                const OidcConfig& cfg = app.config().oidc;
                // The login state cookie is single-use: cleared whatever happens next.
                ctx.res.headers.emplace_back("Set-Cookie", CookieHeader(kStateCookie, "", 0, true, "Lax", kStatePath));
                if (const std::string* err = ctx.req.Query("error")) {
                  const std::string* desc = ctx.req.Query("error_description");
                  return Status::Unauthenticated("the identity provider refused the login: " + err->substr(0, 100) +
                                                 (desc ? " (" + desc->substr(0, 200) + ")" : ""));
                }
                const std::string* code = ctx.req.Query("code");
                const std::string* state = ctx.req.Query("state");
                if (code == nullptr || state == nullptr || code->empty() || state->empty()) {
                  return Status::InvalidArgument("the callback needs the code and state parameters");
                }
                auto cookie = CookieValue(ctx.req, kStateCookie);
                if (!cookie || cookie->empty()) {
                  return Status::InvalidArgument("no login in progress: start at /api/v1/auth/oidc/login (cookies "
                                                 "must be enabled)");
                }
                // "<master key id>.<base64url sealed state>"
                const size_t dot = cookie->find('.');
                auto raw = Base64UrlDecode(dot == std::string::npos ? "" : cookie->substr(dot + 1));
                Result<std::string> plain =
                    raw.ok() && dot > 0 ? app.keyring().Open(SealedValue{cookie->substr(0, dot), *raw}, kStateAad)
                                        : Result<std::string>(Status::InvalidArgument("malformed"));
                Json saved = plain.ok() ? Json::parse(*plain, nullptr, false) : Json();
                if (!saved.is_object() || !saved["state"].is_string() || !saved["exp"].is_number_integer()) {
                  return Status::InvalidArgument("the login state cookie is invalid; start the login again");
                }
                if (saved["exp"].get<int64_t>() < NowMicros() / 1000000) {
                  return Status::InvalidArgument("the login took too long; start it again");
                }
                if (!ConstantTimeEquals(saved["state"].get<std::string>(), *state)) {
                  return Status::InvalidArgument("the state parameter does not match this browser's login");
                }
                ASSIGN_OR_RETURN(Json claims, client->FinishLogin(*code, saved["verifier"].get<std::string>(),
                                                                  saved["nonce"].get<std::string>()));
                auto username = ClaimString(claims, cfg.username_claim);
                if (!username || username->empty()) {
                  return Status::Unauthenticated("the ID token has no '" + cfg.username_claim + "' claim to name the user");
                }
                ctx.audit_actor = username->substr(0, 256);
                const std::vector<std::string> groups = ClaimGroups(claims, cfg.groups_claim);
                std::optional<bool> admin;
                if (!cfg.admin_group.empty()) {
                  admin = std::find(groups.begin(), groups.end(), cfg.admin_group) != groups.end();
                }
                const std::string identity = cfg.issuer + "|" + ClaimString(claims, "sub").value_or("");
                ASSIGN_OR_RETURN(UserRecord user, app.auth().UpsertSsoUser(*username, identity, admin));
                if (user.disabled) return Status::PermissionDenied("user '" + user.username + "' is disabled");
                RETURN_IF_ERROR(SyncRoles(app, cfg, user, groups));
                ASSIGN_OR_RETURN(LoginResult login, app.auth().IssueSession(user));
                SetSessionCookies(ctx.res, login.token, app.config().token_ttl_s);
                ctx.res.caller = user.username;
                ctx.audit["sso"] = cfg.issuer;
                ctx.audit["groups"] = groups;
                const std::string return_to = saved.value("return_to", std::string("/"));
                const std::string* accept = ctx.req.Header("accept");
                if (accept && accept->find("application/json") != std::string::npos) {
                  WriteJson(200,
                            {{"user", user.username}, {"admin", user.is_admin},
                             {"expires_at", FormatRfc3339(login.expires_at)},
                             {"csrf_token", CsrfTokenFor(login.token)}, {"return_to", return_to}},
                            ctx.res);
                  return Status::Ok();
                }
                // A same-site page that continues: a redirect chain that began at another site would not carry
                // the SameSite=Strict session cookie on its last hop.
                ctx.res.status = 200;
                ctx.res.content_type = "text/html; charset=utf-8";
                ctx.res.headers.emplace_back("Cache-Control", "no-store");
                const std::string to = HtmlEscape(return_to);
                ctx.res.body = "<!doctype html><meta charset=\"utf-8\"><meta http-equiv=\"refresh\" content=\"0;url=" +
                               to + "\"><title>Signed in</title><p>Signed in as " + HtmlEscape(user.username) +
                               ". <a href=\"" + to + "\">Continue</a></p>\n";
                return Status::Ok();
              },
              .summary = "Single sign-on callback: verifies the provider's answer and starts a browser session",
              .tag = "auth"});
}

}  // namespace lathe
