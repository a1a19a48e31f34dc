#include <gtest/gtest.h>

#include <filesystem>
#include <set>

#include "api/app.h"
#include "common/crypto.h"

namespace lathe {
namespace {
namespace fs = std::filesystem;

TEST(Router, MatchesParamsAndReportsWrongMethod) {
  Router r;
  auto ok = [](RequestContext&) { return Status::Ok(); };
  r.Add({.method = "GET", .pattern = "/api/v1/projects/{project}/datasets/{name}", .permission = Permission::kProjectRead,
         .handler = ok});
  r.Add({.method = "POST", .pattern = "/api/v1/projects/{project}/datasets", .permission = Permission::kProjectWrite,
         .handler = ok});
  auto m = r.Find("GET", "/api/v1/projects/default/datasets/iris");
  ASSERT_EQ(m.kind, Router::MatchKind::kMatched);
  ASSERT_EQ(m.params.size(), 2u);
  EXPECT_EQ(m.params[0].second, "default");
  EXPECT_EQ(m.params[1].second, "iris");
  EXPECT_EQ(r.Find("DELETE", "/api/v1/projects/default/datasets/iris").kind, Router::MatchKind::kWrongMethod);
  EXPECT_EQ(r.Find("GET", "/api/v1/projects/default/datasets").allow, "POST");
  EXPECT_EQ(r.Find("GET", "/api/v1/projects/default").kind, Router::MatchKind::kNoPath);
  EXPECT_EQ(r.Find("GET", "/api/v1/projects/default/datasets/iris/extra").kind, Router::MatchKind::kNoPath);
}

// Generated from the real route table: every route declares a permission, only the documented ones are
// public, and every route is in the OpenAPI document.
TEST(RouteTable, EveryRouteIsProtectedExceptTheDocumentedPublicOnes) {
  fs::path dir = fs::temp_directory_path() / ("lathe-routes-" + RandomHex(6));
  AppConfig cfg;
  cfg.data_dir = dir.string();
  cfg.admin_password = "route-table-test";
  auto app = App::Create(cfg);
  ASSERT_TRUE(app.ok()) << app.status().ToString();
  const std::set<std::string> kPublic = {"POST /api/v1/auth/login",       "GET /api/v1/auth/oidc/login",
                                         "GET /api/v1/auth/oidc/callback", "GET /healthz",
                                         "GET /readyz",                    "GET /v2/health/live",
                                         "GET /v2/health/ready"};
  Json openapi = (*app)->router().OpenApi("test");
  std::set<std::string> seen;
  for (const auto& route : (*app)->router().routes()) {
    std::string key = route.method + " " + route.pattern;
    EXPECT_TRUE(seen.insert(key).second) << "duplicate route " << key;
    EXPECT_TRUE(route.handler) << key;
    EXPECT_FALSE(route.summary.empty()) << key << " has no summary";
    if (route.permission == Permission::kPublic) {
      EXPECT_TRUE(kPublic.count(key)) << key << " is public but not in the documented public list";
    }
    if (route.pattern.find("{project}") != std::string::npos) {
      EXPECT_NE(route.permission, Permission::kAuthenticated)
          << key << " is project-scoped and must declare a project permission";
    }
    std::string method = route.method;
    for (auto& c : method) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    EXPECT_TRUE(openapi["paths"].contains(route.pattern) && openapi["paths"][route.pattern].contains(method))
        << key << " missing from OpenAPI";
  }
  EXPECT_GE(seen.size(), 20u);
  app->reset();
  fs::remove_all(dir);
}

}  // namespace
}  // namespace lathe
