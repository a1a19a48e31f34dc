// Quotas, usage and statements (api/usage.h):
//
//   GET /api/v1/projects/{project}/quota                quotas and this month's use of each (project readers)
//   PUT /api/v1/projects/{project}/quota {…}            set quotas (server admins; fields left out keep their value)
//   GET /api/v1/projects/{project}/usage?from=&to=      metered usage by day, API key and metric (YYYY-MM-DD)
//   GET /api/v1/projects/{project}/statement?month=YYYY-MM[&format=csv]   usage priced with the price table
//   GET /api/v1/admin/usage?from=&to=                   every project's usage (server admins)
#include <sstream>

#include "api/app.h"
#include "api/problem.h"
#include "common/clock.h"

namespace lathe {

namespace {

Result<std::string> DayParam(const HttpRequest& req, const char* name) {
  const std::string* v = req.Query(name);
  if (v == nullptr) return std::string();
  int y = 0;
  unsigned m = 0, d = 0;
  char extra = 0;
  if (v->size() != 10 || std::sscanf(v->c_str(), "%4d-%2u-%2u%c", &y, &m, &d, &extra) != 3 || m < 1 || m > 12 ||
      d < 1 || d > 31) {
    return Status::InvalidArgument(std::string(name) + " must be a date YYYY-MM-DD")
        .WithDetail(ErrorDetail::Field(name, "must be YYYY-MM-DD"));
  }
  return *v;
}

Status ListUsage(App& app, RequestContext& ctx, const std::string& project) {
  ASSIGN_OR_RETURN(std::string from, DayParam(ctx.req, "from"));
  ASSIGN_OR_RETURN(std::string to, DayParam(ctx.req, "to"));
  RETURN_IF_ERROR(app.usage().Flush());
  ASSIGN_OR_RETURN(std::vector<UsageRecord> rows, app.store().ListUsage(project, from, to));
  Json out = Json::array();
  for (const auto& r : rows) {
    out.push_back({{"project", r.project},
                   {"day", r.day},
                   {"api_key", r.key_id.empty() ? Json(nullptr) : Json(r.key_id)},
                   {"metric", r.metric},
                   {"quantity", r.quantity}});
  }
  WriteJson(200, {{"usage", std::move(out)}}, ctx.res);
  return Status::Ok();
}

}  // namespace

void RegisterUsageRoutes(Router& router, App& app) {
  router.Add({.method = "GET", .pattern = "/api/v1/projects/{project}/quota", .permission = Permission::kProjectRead,
              .handler = [&app](RequestContext& ctx) -> Status {
                const std::string& p = ctx.Project();
                ASSIGN_OR_RETURN(int64_t bytes, app.store().ProjectStorageBytes(p));
                Json used = {{"storage_bytes", bytes},
                             {"training_cpu_seconds_this_month", app.usage().MonthToDate(p, kMetricTrainingCpu)},
                             {"predictions_this_month", app.usage().MonthToDate(p, kMetricPredictions)}};
                WriteJson(200, {{"project", p}, {"quota", app.usage().GetQuota(p).ToJson()}, {"used", used}}, ctx.res);
                return Status::Ok();
              },
              .summary = "The project's quotas (0 = unlimited) and how much of each is used",
              .tag = "usage"});
  router.Add({.method = "PUT", .pattern = "/api/v1/projects/{project}/quota", .permission = Permission::kAdmin,
              .handler = [&app](RequestContext& ctx) -> Status {
                ASSIGN_OR_RETURN(Json body, ctx.JsonBody(app.config().max_json_depth));
                ASSIGN_OR_RETURN(Quota q, Quota::FromJson(body, app.usage().GetQuota(ctx.Project())));
                RETURN_IF_ERROR(app.usage().SetQuota(ctx.Project(), q, ctx.caller.user_id));
                ctx.audit["quota"] = q.ToJson();
                WriteJson(200, {{"project", ctx.Project()}, {"quota", q.ToJson()}}, ctx.res);
                return Status::Ok();
              },
              .summary = "Set the project's quotas: storage_bytes, concurrent_jobs, training_cpu_seconds_per_month, "
                         "predictions_per_month (0 = unlimited)",
              .tag = "usage",
              .request_example = {{"predictions_per_month", 1000000}, {"concurrent_jobs", 2}}});
  router.Add({.method = "GET", .pattern = "/api/v1/projects/{project}/usage", .permission = Permission::kProjectRead,
              .handler = [&app](RequestContext& ctx) { return ListUsage(app, ctx, ctx.Project()); },
              .summary = "Metered usage by day, API key and metric (?from=&to= as YYYY-MM-DD)",
              .tag = "usage"});
  router.Add({.method = "GET", .pattern = "/api/v1/admin/usage", .permission = Permission::kAdmin,
              .handler = [&app](RequestContext& ctx) { return ListUsage(app, ctx, ""); },
              .summary = "Every project's metered usage (?from=&to= as YYYY-MM-DD)",
              .tag = "usage"});
  router.Add({.method = "GET", .pattern = "/api/v1/projects/{project}/statement",
              .permission = Permission::kProjectRead,
              .handler = [&app](RequestContext& ctx) -> Status {
                const std::string* month = ctx.req.Query("month");
                const std::string m = month ? *month : MonthString(MonthOfDay(NowMicros() / (int64_t{86400} * 1000000)));
                ASSIGN_OR_RETURN(Json st, app.usage().Statement(ctx.Project(), m));
                const std::string* format = ctx.req.Query("format");
                if (format == nullptr || *format == "json") {
                  WriteJson(200, st, ctx.res);
                  return Status::Ok();
                }
                if (*format != "csv") {
                  return Status::InvalidArgument("format must be json or csv")
                      .WithDetail(ErrorDetail::Field("format", "must be json or csv"));
                }
                std::ostringstream csv;
                csv.precision(12);
                csv << "project,month,metric,quantity,unit_price,amount,currency\r\n";
                for (const auto& line : st["lines"]) {
                  csv << ctx.Project() << "," << m << "," << line["metric"].get<std::string>() << ","
                      << line["quantity"].get<double>() << "," << line["unit_price"].get<double>() << ","
                      << line["amount"].get<double>() << "," << st["currency"].get<std::string>() << "\r\n";
                }
                csv << ctx.Project() << "," << m << ",total,,," << st["total"].get<double>() << ","
                    << st["currency"].get<std::string>() << "\r\n";
                ctx.res.status = 200;
                ctx.res.content_type = "text/csv; charset=utf-8";
                ctx.res.headers.emplace_back("Content-Disposition",
                                             "attachment; filename=\"statement-" + m + ".csv\"");
                ctx.res.body = csv.str();
                return Status::Ok();
              },
              .summary = "The month's usage priced with the server's price table (?month=YYYY-MM, ?format=csv)",
              .tag = "usage"});
}

}  // namespace lathe
