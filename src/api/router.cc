#include "api/router.h"

#include <set>

namespace lathe {

namespace {
std::vector<std::string_view> SplitPath(std::string_view path) {
  std::vector<std::string_view> out;
  size_t i = 0;
  while (i < path.size()) {
    if (path[i] == '/') {
      ++i;
      continue;
    }
    size_t j = path.find('/', i);
    if (j == std::string_view::npos) j = path.size();
    out.push_back(path.substr(i, j - i));
    i = j;
  }
  return out;
}

bool IsParam(const std::string& seg) { return seg.size() > 2 && seg.front() == '{' && seg.back() == '}'; }
}  // namespace

const std::string& RequestContext::Param(std::string_view name) const {
  static const std::string kEmpty;
  for (const auto& [k, v] : params) {
    if (k == name) return v;
  }
  return kEmpty;
}

Status RequestContext::CheckJsonBody() const {
  if (!req.body_file.empty()) return Status::InvalidArgument("expected a JSON body");
  const std::string* ct = req.Header("content-type");
  // curl -d sends application/x-www-form-urlencoded by default; the body is still parsed strictly as JSON.
  if (ct && !ct->empty() && ct->find("json") == std::string::npos &&
      ct->find("application/x-www-form-urlencoded") == std::string::npos) {
    return Status::UnsupportedMedia("Content-Type must be application/json, not '" + *ct + "'");
  }
  return Status::Ok();
}

Result<Json> RequestContext::JsonBody(size_t max_depth) const {
  RETURN_IF_ERROR(CheckJsonBody());
  return ParseJson(req.body, max_depth);
}

void Router::Add(Route route) {
  for (auto seg : SplitPath(route.pattern)) route.segments.emplace_back(seg);
  routes_.push_back(std::move(route));
}

Router::Match Router::Find(std::string_view method, std::string_view path) const {
  Match m;
  auto segs = SplitPath(path);
  std::set<std::string> allowed;
  for (const auto& r : routes_) {
    if (r.segments.size() != segs.size()) continue;
    bool ok = true;
    for (size_t i = 0; i < segs.size() && ok; ++i) {
      ok = IsParam(r.segments[i]) ? !segs[i].empty() : r.segments[i] == segs[i];
    }
    if (!ok) continue;
    if (r.method != method) {
      allowed.insert(r.method);
      continue;
    }
    m.kind = MatchKind::kMatched;
    m.route = &r;
    for (size_t i = 0; i < segs.size(); ++i) {
      if (IsParam(r.segments[i])) {
        m.params.emplace_back(r.segments[i].substr(1, r.segments[i].size() - 2), std::string(segs[i]));
      }
    }
    if (!r.project_in.empty()) {
      for (const auto& [k, v] : std::vector<std::pair<std::string, std::string>>(m.params)) {
        if (k != r.project_in) continue;
        const size_t colon = v.find(':');
        m.params.emplace_back("project", colon == std::string::npos ? "default" : v.substr(0, colon));
        m.params.emplace_back("deployment", colon == std::string::npos ? v : v.substr(colon + 1));
      }
    }
    return m;
  }
  if (!allowed.empty()) {
    m.kind = MatchKind::kWrongMethod;
    for (const auto& a : allowed) m.allow += (m.allow.empty() ? "" : ", ") + a;
  }
  return m;
}

Json Router::OpenApi(const std::string& version) const {
  Json paths = Json::object();
  for (const auto& r : routes_) {
    std::string method = r.method;
    for (auto& c : method) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    Json op = {{"summary", r.summary},
               {"tags", Json::array({r.tag})},
               {"operationId", method + r.pattern},
               {"x-lathe-permission", PermissionName(r.permission)}};
    Json params = Json::array();
    for (const auto& seg : r.segments) {
      if (IsParam(seg)) {
        params.push_back({{"name", seg.substr(1, seg.size() - 2)},
                          {"in", "path"},
                          {"required", true},
                          {"schema", {{"type", "string"}}}});
      }
    }
    if (!params.empty()) op["parameters"] = params;
    if (r.permission != Permission::kPublic) op["security"] = Json::array({{{"bearerAuth", Json::array()}}});
    else op["security"] = Json::array();
    if (r.upload) {
      op["requestBody"] = {{"required", true},
                           {"content",
                            {{"text/csv", {{"schema", {{"type", "string"}, {"format", "binary"}}}}},
                             {"text/tab-separated-values", {{"schema", {{"type", "string"}, {"format", "binary"}}}}}}}};
    } else if (!r.request_example.is_null()) {
      op["requestBody"] = {{"required", true},
                           {"content", {{"application/json", {{"schema", {{"type", "object"}}},
                                                              {"example", r.request_example}}}}}};
    }
    Json responses = Json::object();
    responses[std::to_string(r.success_status)] = {{"description", "success"}};
    responses["default"] = {
        {"description", "error"},
        {"content", {{"application/problem+json", {{"schema", {{"$ref", "#/components/schemas/Problem"}}}}}}}};
    op["responses"] = responses;
    paths[r.pattern][method] = op;
  }
  Json problem = {
      {"type", "object"},
      {"required", {"type", "title", "status", "detail", "request_id"}},
      {"properties",
       {{"type", {{"type", "string"}}},
        {"title", {{"type", "string"}}},
        {"status", {{"type", "integer"}}},
        {"detail", {{"type", "string"}}},
        {"instance", {{"type", "string"}}},
        {"request_id", {{"type", "string"}}},
        {"errors",
         {{"type", "array"},
          {"items",
           {{"type", "object"},
            {"properties",
             {{"field", {{"type", "string"}}},
              {"line", {{"type", "integer"}}},
              {"column", {{"type", "string"}}},
              {"message", {{"type", "string"}}}}}}}}}}}};
  return {{"openapi", "3.1.0"},
          {"info", {{"title", "lathe"}, {"version", version},
                    {"description", "Self-hosted ML platform: data, training, registry, serving."}}},
          {"paths", paths},
          {"components",
           {{"securitySchemes", {{"bearerAuth", {{"type", "http"}, {"scheme", "bearer"}}}}},
            {"schemas", {{"Problem", problem}}}}}};
}

}  // namespace lathe
