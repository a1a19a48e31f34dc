// The audit log over HTTP (auth/audit_log.h):
//
//   GET /api/v1/admin/audit?after=&since=&until=&actor=&project=&action=&outcome=&limit=   (admin)
//   GET /api/v1/admin/audit/export?format=csv|jsonl&…same filters                          (admin, streamed file)
//   GET /api/v1/admin/audit/verify      walks the whole chain: {"ok","entries","head_seq",["first_bad_seq","problem"]}
//   GET /api/v1/admin/audit/head        the newest entry's seq and hash, to keep elsewhere
//   GET /api/v1/projects/{project}/audit?…                                                  (project owners)
// since/until are epoch milliseconds; entries come oldest first; `next_after` pages on.
#include <cstdio>
#include <fstream>

#include "api/app.h"
#include "api/params.h"
#include "api/problem.h"
#include "common/clock.h"
#include "common/ids.h"

namespace lathe {

namespace {

constexpr int64_t kMaxPage = 1000;

Result<AuditQuery> QueryFromRequest(const HttpRequest& req, int64_t max_limit) {
  AuditQuery q;
  ASSIGN_OR_RETURN(q.after_seq, QueryInt(req, "after", 0, 0, std::numeric_limits<int64_t>::max()));
  ASSIGN_OR_RETURN(q.since_ms, QueryInt(req, "since", 0, 0, std::numeric_limits<int64_t>::max()));
  ASSIGN_OR_RETURN(q.until_ms, QueryInt(req, "until", 0, 0, std::numeric_limits<int64_t>::max()));
  ASSIGN_OR_RETURN(q.limit, QueryInt(req, "limit", std::min<int64_t>(100, max_limit), 1, max_limit));
  if (const auto* v = req.Query("actor")) q.actor = *v;
  if (const auto* v = req.Query("project")) q.project = *v;
  if (const auto* v = req.Query("action")) q.action_prefix = *v;
  if (const auto* v = req.Query("outcome")) {
    if (*v != "ok" && *v != "denied" && *v != "failed") {
      return Status::InvalidArgument("outcome must be ok, denied or failed")
          .WithDetail(ErrorDetail::Field("outcome", "must be ok, denied or failed"));
    }
    q.outcome = *v;
  }
  return q;
}

Json EntryJson(const AuditRecord& e) {
  Json detail = Json::parse(e.detail, nullptr, false);
  return {{"seq", e.seq},
          {"at", FormatRfc3339(e.at_ms * 1000)},
          {"at_ms", e.at_ms},
          {"actor", e.actor},
          {"actor_id", e.actor_id},
          {"api_key", e.key_id.empty() ? Json(nullptr) : Json(e.key_id)},
          {"ip", e.ip},
          {"action", e.action},
          {"project", e.project},
          {"target", e.target},
          {"request_id", e.request_id},
          {"status", e.status},
          {"outcome", e.outcome},
          {"detail", detail.is_discarded() ? Json(e.detail) : detail},
          {"prev_hash", e.prev_hash},
          {"hash", e.hash}};
}

// One CSV field (RFC 4180), with a leading =, +, - or @ neutralised so a spreadsheet never runs it.
std::string CsvField(std::string s) {
  if (!s.empty() && (s[0] == '=' || s[0] == '+' || s[0] == '-' || s[0] == '@')) s.insert(s.begin(), '\'');
  if (s.find_first_of(",\"\r\n") == std::string::npos) return s;
  std::string out = "\"";
  for (char c : s) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + "\"";
}

Status ListAuditPage(App& app, RequestContext& ctx, AuditQuery q) {
  RETURN_IF_ERROR(app.audit().Flush());
  ASSIGN_OR_RETURN(std::vector<AuditRecord> rows, app.store().ListAudit(q));
  Json entries = Json::array();
  for (const auto& e : rows) entries.push_back(EntryJson(e));
  Json out = {{"entries", std::move(entries)}};
  out["next_after"] = static_cast<int64_t>(rows.size()) == q.limit ? Json(rows.back().seq) : Json(nullptr);
  WriteJson(200, out, ctx.res);
  return Status::Ok();
}

Status ExportAudit(App& app, RequestContext& ctx, AuditQuery q) {
  const std::string* format_param = ctx.req.Query("format");
  const std::string format = format_param ? *format_param : "jsonl";
  if (format != "csv" && format != "jsonl") {
    return Status::InvalidArgument("format must be csv or jsonl").WithDetail(ErrorDetail::Field("format", "must be csv or jsonl"));
  }
  RETURN_IF_ERROR(app.audit().Flush());
  const std::string path = app.blobs().TempPath("audit-export");
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) return Status::Internal("cannot create " + path);
  static const char* kCols[] = {"seq", "at", "actor", "actor_id", "api_key", "ip", "action", "project",
                                "target", "request_id", "status", "outcome", "detail", "prev_hash", "hash"};
  if (format == "csv") {
    for (size_t i = 0; i < std::size(kCols); ++i) out << (i ? "," : "") << kCols[i];
    out << "\r\n";
  }
  const int64_t wanted = q.limit;  // the export has no page size; `limit` caps the whole export when given
  int64_t written = 0;
  q.limit = 5000;
  while (written < wanted) {
    ASSIGN_OR_RETURN(std::vector<AuditRecord> rows, app.store().ListAudit(q));
    for (const auto& e : rows) {
      if (written >= wanted) break;
      if (format == "jsonl") {
        out << EntryJson(e).dump(-1, ' ', false, Json::error_handler_t::replace) << "\n";
      } else {
        out << e.seq << "," << FormatRfc3339(e.at_ms * 1000) << "," << CsvField(e.actor) << ","
            << CsvField(e.actor_id) << "," << CsvField(e.key_id) << "," << CsvField(e.ip) << ","
            << CsvField(e.action) << "," << CsvField(e.project) << "," << CsvField(e.target) << ","
            << CsvField(e.request_id) << "," << e.status << "," << e.outcome << "," << CsvField(e.detail) << ","
            << e.prev_hash << "," << e.hash << "\r\n";
      }
      ++written;
      q.after_seq = e.seq;
    }
    if (static_cast<int64_t>(rows.size()) < q.limit) break;
  }
  out.close();
  if (!out) {
    std::remove(path.c_str());
    return Status::Internal("cannot write the audit export");
  }
  ctx.res.status = 200;
  ctx.res.content_type = format == "csv" ? "text/csv; charset=utf-8" : "application/x-ndjson";
  ctx.res.headers.emplace_back("Content-Disposition",
                               std::string("attachment; filename=\"audit.") + format + "\"");
  ctx.res.body_file = path;
  ctx.res.body_file_owned = true;
  return Status::Ok();
}

}  // namespace

void RegisterAuditRoutes(Router& router, App& app) {
  router.Add({.method = "GET", .pattern = "/api/v1/admin/audit", .permission = Permission::kAdmin,
              .handler = [&app](RequestContext& ctx) -> Status {
                ASSIGN_OR_RETURN(AuditQuery q, QueryFromRequest(ctx.req, kMaxPage));
                return ListAuditPage(app, ctx, std::move(q));
              },
              .summary = "Query the audit log (oldest first; filters: after, since, until, actor, project, action "
                         "prefix, outcome; page with next_after)",
              .tag = "audit"});
  router.Add({.method = "GET", .pattern = "/api/v1/admin/audit/export", .permission = Permission::kAdmin,
              .handler = [&app](RequestContext& ctx) -> Status {
                ASSIGN_OR_RETURN(AuditQuery q,
                                 QueryFromRequest(ctx.req, std::numeric_limits<int64_t>::max()));
                if (ctx.req.Query("limit") == nullptr) q.limit = std::numeric_limits<int64_t>::max();
                return ExportAudit(app, ctx, std::move(q));
              },
              .summary = "Export the audit log as CSV or JSON Lines (?format=csv|jsonl, same filters)",
              .tag = "audit"});
  router.Add({.method = "GET", .pattern = "/api/v1/admin/audit/verify", .permission = Permission::kAdmin,
              .handler = [&app](RequestContext& ctx) -> Status {
                RETURN_IF_ERROR(app.audit().Flush());
                ASSIGN_OR_RETURN(AuditVerification v, app.audit().Verify());
                WriteJson(200, v.ToJson(), ctx.res);
                return Status::Ok();
              },
              .summary = "Verify the audit log's hash chain and head: any edited, inserted or deleted entry is found",
              .tag = "audit"});
  router.Add({.method = "GET", .pattern = "/api/v1/admin/audit/head", .permission = Permission::kAdmin,
              .handler = [&app](RequestContext& ctx) -> Status {
                RETURN_IF_ERROR(app.audit().Flush());
                WriteJson(200, app.audit().Head(), ctx.res);
                return Status::Ok();
              },
              .summary = "The newest audit entry's seq and hash (keep it elsewhere to detect a rollback)",
              .tag = "audit"});
  router.Add({.method = "GET", .pattern = "/api/v1/projects/{project}/audit", .permission = Permission::kManageMembers,
              .handler = [&app](RequestContext& ctx) -> Status {
                ASSIGN_OR_RETURN(AuditQuery q, QueryFromRequest(ctx.req, kMaxPage));
                q.project = ctx.Project();
                return ListAuditPage(app, ctx, std::move(q));
              },
              .summary = "The audit log of one project (same filters as the server-wide log)",
              .tag = "audit"});
}

}  // namespace lathe
