#include "api/session.h"

#include "common/crypto.h"

namespace lathe {

std::optional<std::string> CookieValue(const HttpRequest& req, std::string_view name) {
  for (const auto& [header, value] : req.headers) {
    if (header != "cookie") continue;
    std::string_view rest = value;
    while (!rest.empty()) {
      const size_t semi = rest.find(';');
      std::string_view pair = rest.substr(0, semi);
      rest = semi == std::string_view::npos ? std::string_view() : rest.substr(semi + 1);
      while (!pair.empty() && pair.front() == ' ') pair.remove_prefix(1);
      const size_t eq = pair.find('=');
      if (eq == std::string_view::npos || pair.substr(0, eq) != name) continue;
      std::string_view v = pair.substr(eq + 1);
      while (!v.empty() && v.back() == ' ') v.remove_suffix(1);
      if (v.size() >= 2 && v.front() == '"' && v.back() == '"') v = v.substr(1, v.size() - 2);
      return std::string(v);
    }
  }
  return std::nullopt;
}

std::string CsrfTokenFor(std::string_view session_token) {
  return HexEncode(HmacSha256(session_token, "lathe-csrf-v1"));
}

std::string CookieHeader(std::string_view name, std::string_view value, int64_t max_age_s, bool http_only,
                         std::string_view same_site, std::string_view path) {
  std::string c = std::string(name) + "=" + std::string(value) + "; Path=" + std::string(path) +
                  "; Max-Age=" + std::to_string(max_age_s) + "; Secure; SameSite=" + std::string(same_site);
  if (http_only) c += "; HttpOnly";
  return c;
}

void SetSessionCookies(HttpResponse& res, std::string_view token, int64_t max_age_s) {
  const bool end = max_age_s <= 0;
  res.headers.emplace_back("Set-Cookie", CookieHeader(kSessionCookie, end ? "" : token, end ? 0 : max_age_s, true, "Strict"));
  res.headers.emplace_back("Set-Cookie",
                           CookieHeader(kCsrfCookie, end ? "" : CsrfTokenFor(token), end ? 0 : max_age_s, false, "Strict"));
}

Status CheckCsrf(const HttpRequest& req, std::string_view session_token) {
  const std::string* sent = req.Header(kCsrfHeader);
  if (sent == nullptr) {
    return Status::PermissionDenied("a request authenticated by the session cookie must send the X-CSRF-Token "
                                    "header (the lathe_csrf cookie's value)");
  }
  if (!ConstantTimeEquals(*sent, CsrfTokenFor(session_token))) {
    return Status::PermissionDenied("the X-CSRF-Token header does not match this session");
  }
  const std::string* origin = req.Header("origin");
  const std::string* host = req.Header("host");
  if (origin != nullptr && *origin != "null" && host != nullptr) {
    // "https://host:port" must end in "://" + Host.
    const size_t scheme = origin->find("://");
    if (scheme == std::string::npos || origin->substr(scheme + 3) != *host) {
      return Status::PermissionDenied("cross-site request refused: Origin " + origin->substr(0, 200) +
                                      " is not this server");
    }
  } else if (origin != nullptr && *origin == "null") {
    return Status::PermissionDenied("cross-site request refused: Origin null");
  }
  return Status::Ok();
}

}  // namespace lathe
