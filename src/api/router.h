// The route table: every HTTP route lathe serves, with its method, path pattern, the permission it needs
// and its handler. The OpenAPI document is generated from this table, and a route cannot exist without a
// permission. Patterns use {name} segments ("/api/v1/projects/{project}/datasets/{name}"); a path
// parameter named `project` selects the project the permission is checked in. Built once at start-up,
// then read-only (thread-safe for concurrent Match).
#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "auth/auth.h"
#include "common/json.h"
#include "common/status.h"
#include "server/http_server.h"

namespace lathe {

struct RequestContext {
  HttpRequest& req;
  HttpResponse& res;
  Caller caller;
  std::vector<std::pair<std::string, std::string>> params;
  // What the audit log records about this call beyond who/what/outcome (a handler may add fields, e.g. the
  // id it created); audit_actor names the actor when there is no caller (the username a login tried).
  Json audit = Json::object();
  std::string audit_actor;

  const std::string& Param(std::string_view name) const;
  // The project of the route ({project}), or "" for server-wide routes.
  const std::string& Project() const { return Param("project"); }
  // Parses the JSON body with the configured depth limit, mapping errors to 400 naming the problem.
  Result<Json> JsonBody(size_t max_depth) const;
  // JsonBody's checks without the parse: an in-memory body of a JSON (or unspecified) content type.
  Status CheckJsonBody() const;
};

using RouteHandler = std::function<Status(RequestContext&)>;

struct Route {
  std::string method;
  std::string pattern;
  Permission permission = Permission::kAdmin;
  RouteHandler handler;
  std::string summary;
  std::string tag;
  bool upload = false;             // the body is spooled to a file and may be up to max_upload_bytes
  int success_status = 200;        // for OpenAPI
  Json request_example = nullptr;  // for OpenAPI
  // For routes without a {project} segment whose resource name carries its project (KServe /v2 model names):
  // the path parameter "{project}:{name}" (or "{name}", meaning project "default") is split into the params
  // "project" and "deployment" before authorization.
  std::string project_in;
  // Routes an API key may not call (they act for a user across projects: creating or listing projects).
  bool user_only = false;
  // A non-GET route that changes nothing (the no-op ping, recipe previews): audited like a read.
  bool changes_nothing = false;

  std::vector<std::string> segments;  // compiled from pattern
};

class Router {
 public:
  void Add(Route route);

  enum class MatchKind { kMatched, kNoPath, kWrongMethod };
  struct Match {
    MatchKind kind = MatchKind::kNoPath;
    const Route* route = nullptr;
    std::vector<std::pair<std::string, std::string>> params;
    std::string allow;  // for kWrongMethod: the methods the path accepts
  };
  Match Find(std::string_view method, std::string_view path) const;

  const std::vector<Route>& routes() const { return routes_; }
  Json OpenApi(const std::string& version) const;

 private:
  std::vector<Route> routes_;
};

}  // namespace lathe
