// Browser sessions: the bearer token of a login kept in an HttpOnly cookie, with CSRF protection.
//
// POST /api/v1/auth/login {"session": true} (and single sign-on) set two cookies, both Secure, SameSite=Strict,
// Path=/ and as long-lived as the token:
//   lathe_session  the token itself, HttpOnly (scripts cannot read it)
//   lathe_csrf     CsrfTokenFor(token), readable by the web UI's own scripts
// A request without an Authorization header is authenticated by lathe_session; if its method changes
// anything (not GET/HEAD), it must also send X-CSRF-Token equal to CsrfTokenFor(token), and an Origin header,
// when present, must name this server. Another site can make the browser send the cookie (SameSite=Strict
// already stops that in current browsers) but cannot read lathe_csrf, so it cannot forge the header. The CSRF
// token is an HMAC of the session token: stateless, valid on every node, dead with the session.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "server/http_server.h"

namespace lathe {

inline constexpr const char* kSessionCookie = "lathe_session";
inline constexpr const char* kCsrfCookie = "lathe_csrf";
inline constexpr const char* kCsrfHeader = "x-csrf-token";

// The value of cookie `name` in the request's Cookie header(s), if present.
std::optional<std::string> CookieValue(const HttpRequest& req, std::string_view name);
std::string CsrfTokenFor(std::string_view session_token);
// Adds the Set-Cookie headers of a new session (max_age_s > 0) or of its end (max_age_s == 0: both cleared).
void SetSessionCookies(HttpResponse& res, std::string_view token, int64_t max_age_s);
// One Set-Cookie value; `same_site` "Strict" or "Lax".
std::string CookieHeader(std::string_view name, std::string_view value, int64_t max_age_s, bool http_only,
                         std::string_view same_site, std::string_view path = "/");
// For a cookie-authenticated request that changes something: the CSRF header matches and the Origin (if sent)
// is this server. kPermissionDenied saying what is missing otherwise.
Status CheckCsrf(const HttpRequest& req, std::string_view session_token);

}  // namespace lathe
