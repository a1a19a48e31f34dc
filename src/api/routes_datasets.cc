// Datasets: import (an uploaded CSV/TSV/JSON/JSONL/XLSX file, or a SQL/HTTP source) as a job that makes a
// new version; list, show, versions; browse rows (paging, sorting, filtering by an expression, sampling);
// profile (exact, or differentially private: api/privacy.h); export as CSV or JSON Lines; quarantined bad
// rows.
#include <fcntl.h>
#include <unistd.h>

#include <filesystem>

#include "api/app.h"
#include "api/data_import.h"
#include "api/data_settings.h"
#include "api/data_sources.h"
#include "api/params.h"
#include "api/privacy.h"
#include "api/problem.h"
#include "common/clock.h"
#include "common/log.h"
#include "data/dataset_file.h"
#include "data/export.h"
#include "data/expr.h"
#include "data/profile.h"
#include "data/table_json.h"
#include "data/table_sort.h"

namespace lathe {

namespace fs = std::filesystem;

namespace {

Json VersionJson(const DatasetVersionRecord& v, bool with_details) {
  Json j = {{"name", v.dataset},
            {"version", v.version},
            {"rows", v.rows},
            {"columns", v.columns},
            {"bytes", v.bytes},
            {"source", v.source},
            {"lineage", v.lineage},
            {"bad_rows", v.bad_rows},
            {"created_at", FormatRfc3339(v.created_at)}};
  if (!v.quality.empty()) j["quality"] = with_details ? v.quality : Json{{"passed", v.quality.value("passed", true)}};
  if (with_details) j["stats"] = v.stats;
  // Rewritten by an erasure (routes_privacy.cc): same number, without one person's rows.
  if (v.lineage.contains("erasures")) j["erased"] = true;
  return j;
}

Status FieldError(const std::string& field, const std::string& problem) {
  return Status::InvalidArgument(field + " " + problem).WithDetail(ErrorDetail::Field(field, problem));
}

// The import options of an upload come from query parameters (the body is the file):
// ?format= &delimiter= &quote= &header= &encoding= &sheet= &header_row= &layout= &bad_rows= &max_bad_rows=
// &hints=<JSON>, or all at once as ?options=<JSON of ImportSpec>.
Result<ImportSpec> UploadSpec(const HttpRequest& req) {
  Json j = Json::object();
  if (const std::string* o = req.Query("options")) {
    auto parsed = ParseJson(*o, 16);
    if (!parsed.ok() || !parsed->is_object()) return FieldError("options", "must be a JSON object");
    j = std::move(parsed).value();
  }
  std::string format;
  if (const std::string* f = req.Query("format")) {
    format = *f;
  } else if (const std::string* ct = req.Header("content-type")) {
    if (ct->find("text/csv") != std::string::npos || ct->find("application/csv") != std::string::npos) format = "csv";
    else if (ct->find("tab-separated") != std::string::npos) format = "tsv";
    else if (ct->find("jsonl") != std::string::npos || ct->find("ndjson") != std::string::npos) format = "jsonl";
    else if (ct->find("json") != std::string::npos) format = "json";
    else if (ct->find("spreadsheetml") != std::string::npos) format = "xlsx";
  }
  if (!format.empty()) j["format"] = format;
  auto set = [&](const char* param, const char* section, const char* key) {
    if (const std::string* v = req.Query(param)) j[section][key] = *v;
  };
  set("delimiter", "csv", "delimiter");
  set("quote", "csv", "quote");
  set("header", "csv", "header");
  set("encoding", "csv", "encoding");
  set("sheet", "xlsx", "sheet");
  set("layout", "json", "layout");
  if (req.Query("header_row")) {
    ASSIGN_OR_RETURN(int64_t hr, QueryInt(req, "header_row", 1, 0, 1000));
    j["xlsx"]["header_row"] = hr;
  }
  if (const std::string* b = req.Query("bad_rows")) j["bad_rows"] = *b;
  if (req.Query("max_bad_rows")) {
    ASSIGN_OR_RETURN(int64_t m, QueryInt(req, "max_bad_rows", 0, 0, INT64_MAX / 2));
    j["max_bad_rows"] = m;
  }
  if (const std::string* h = req.Query("hints")) {
    auto parsed = ParseJson(*h, 16);
    if (!parsed.ok()) return FieldError("hints", "must be JSON: " + parsed.status().message());
    j["hints"] = std::move(parsed).value();
  }
  return ParseImportSpec(j);
}

// Submits an import job and, unless ?wait=false, waits for it: 201 with the version, the job's structured
// error, or 202 with the job when it takes longer than --import-wait-s.
Status SubmitImport(App& app, RequestContext& ctx, const std::string& dataset, Json payload, bool wait_default) {
  bool wait = wait_default;
  if (const std::string* w = ctx.req.Query("wait")) {
    if (*w != "true" && *w != "false") return FieldError("wait", "must be true or false");
    wait = *w == "true";
  }
  const std::string staged = payload.value("staged_file", std::string());
  auto job = app.jobs().Submit("import", ctx.Project(), payload, ctx.caller.user_id);
  if (!job.ok()) {
    if (!staged.empty()) {
      std::error_code ec;
      fs::remove(staged, ec);
    }
    return job.TakeStatus();
  }
  const std::string base = "/api/v1/projects/" + ctx.Project() + "/datasets/" + dataset;
  if (wait) {
    ASSIGN_OR_RETURN(JobRecord done, app.jobs().Wait(job->id, app.config().import_wait_s * 1000));
    if (done.state == JobState::kSucceeded) {
      Json body = done.result;
      body["job"] = done.id;
      ctx.res.headers.emplace_back("Location", base + "/versions/" + std::to_string(body.value("version", 0)));
      WriteJson(201, body, ctx.res);
      return Status::Ok();
    }
    if (done.state == JobState::kFailed) {
      if (done.result.contains("error")) return StatusFromJson(done.result["error"]);
      return Status::Internal(done.error);
    }
    if (done.state == JobState::kCancelled) return Status::Cancelled("the import job " + done.id + " was cancelled");
  }
  ctx.res.headers.emplace_back("Location", "/api/v1/jobs/" + job->id);
  WriteJson(202, {{"job", job->id}, {"state", JobStateName(job->state)}, {"dataset", dataset}}, ctx.res);
  return Status::Ok();
}

Status ImportUpload(App& app, RequestContext& ctx) {
  const std::string* name = ctx.req.Query("name");
  if (!name) {
    return Status::InvalidArgument("query parameter 'name' is required: POST …/datasets?name=NAME")
        .WithDetail(ErrorDetail::Field("name", "is required"));
  }
  RETURN_IF_ERROR(CheckName(*name, "name"));
  ASSIGN_OR_RETURN(ImportSpec spec, UploadSpec(ctx.req));
  std::error_code ec;
  if (ctx.req.body_file.empty() || fs::file_size(ctx.req.body_file, ec) == 0 || ec) {
    return Status::InvalidArgument("the request body is empty; send the file as the body");
  }
  const int64_t bytes = static_cast<int64_t>(fs::file_size(ctx.req.body_file, ec));
  std::string filename;
  if (const std::string* f = ctx.req.Query("filename")) filename = f->substr(0, 255);
  // The upload moves into the blob store's temp area (same filesystem) for the job; the job removes it.
  std::string staged = app.blobs().TempPath("upload");
  fs::rename(ctx.req.body_file, staged, ec);
  if (ec) {
    fs::copy_file(ctx.req.body_file, staged, ec);
    if (ec) return Status::Internal("cannot stage the upload: " + ec.message());
  }
  Json source = {{"kind", "upload"}, {"bytes", bytes}};
  if (!filename.empty()) source["filename"] = filename;
  Json payload = {{"dataset", *name}, {"staged_file", staged}, {"import", ImportSpecToJson(spec)},
                  {"source", source}};
  return SubmitImport(app, ctx, *name, std::move(payload), true);
}

// POST …/datasets/{name}/imports {"source": {...}, "import": {...}}: a SQL query, an HTTP URL or a saved
// connection. Answers 202 with the job unless ?wait=true.
Status ImportFromSource(App& app, RequestContext& ctx) {
  RETURN_IF_ERROR(CheckName(ctx.Param("name"), "name"));
  ASSIGN_OR_RETURN(Json body, ctx.JsonBody(app.config().max_json_depth));
  if (!body.is_object() || !body.contains("source")) {
    return FieldError("source", "is required: {\"source\": {\"connection\": NAME, \"query\": …} or {\"kind\": "
                                "\"postgres\"|\"sqlite\"|\"http\", …}}");
  }
  ImportSpec spec;
  if (body.contains("import")) {
    ASSIGN_OR_RETURN(spec, ParseImportSpec(body["import"]));
  }
  for (const auto& [k, v] : body.items()) {
    if (k != "source" && k != "import") return FieldError(k.substr(0, 40), "is not a known field (source, import)");
  }
  ASSIGN_OR_RETURN(Json sealed_source, PrepareSourcePayload(app, ctx.Project(), body["source"]));
  Json payload = {{"dataset", ctx.Param("name")}, {"import", ImportSpecToJson(spec)}, {"source", sealed_source}};
  return SubmitImport(app, ctx, ctx.Param("name"), std::move(payload), false);
}

Result<std::vector<SortKey>> ParseSort(const std::string& text, const Table& t) {
  std::vector<SortKey> keys;
  size_t start = 0;
  while (start <= text.size()) {
    size_t comma = text.find(',', start);
    std::string part = text.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    start = comma == std::string::npos ? text.size() + 1 : comma + 1;
    if (part.empty()) continue;
    SortKey k;
    if (part[0] == '-' || part[0] == '+') {
      k.descending = part[0] == '-';
      part = part.substr(1);
    }
    if (t.FindColumn(part) < 0) return FieldError("sort", "names no column '" + part.substr(0, 100) + "'");
    k.column = part;
    keys.push_back(std::move(k));
  }
  if (keys.empty()) return FieldError("sort", "must name columns: sort=col or sort=-col,other");
  return keys;
}

Status BrowseRows(App& app, RequestContext& ctx) {
  ASSIGN_OR_RETURN(int64_t version, ParseVersion(ctx.Param("version"), "dataset"));
  ASSIGN_OR_RETURN(int64_t offset, QueryInt(ctx.req, "offset", 0, 0, INT64_MAX / 2));
  ASSIGN_OR_RETURN(int64_t limit, QueryInt(ctx.req, "limit", 100, 0, app.config().max_page_rows));
  ASSIGN_OR_RETURN(int64_t sample, QueryInt(ctx.req, "sample", 0, 0, 1000000));
  ASSIGN_OR_RETURN(int64_t seed, QueryInt(ctx.req, "seed", 42, 0, INT64_MAX));
  const std::string* sort = ctx.req.Query("sort");
  const std::string* filter = ctx.req.Query("filter");
  ASSIGN_OR_RETURN(auto v, app.store().GetDatasetVersion(ctx.Project(), ctx.Param("name"), version));
  ASSIGN_OR_RETURN(auto file, OpenDatasetVersion(app, v));
  Table page;
  int64_t total = file->num_rows();
  if (!sample && !sort && !filter) {
    int64_t start = std::min(offset, total);
    ASSIGN_OR_RETURN(page, file->ReadRows(start, std::min(limit, total - start)));
  } else {
    Table t;
    if (sample) {
      ASSIGN_OR_RETURN(t, SampleRows(*file, sample, static_cast<uint64_t>(seed)));
    } else {
      if (total > app.config().max_browse_rows) {
        return Status::FailedPrecondition("sorting or filtering " + std::to_string(total) +
                                          " rows exceeds the browse limit of " +
                                          std::to_string(app.config().max_browse_rows) +
                                          "; add sample=N, or apply a recipe with filter_rows");
      }
      ASSIGN_OR_RETURN(t, file->ReadAll());
    }
    if (filter) {
      auto expr = ParseExpr(*filter);
      if (!expr.ok()) return expr.TakeStatus().Annotate("filter");
      ASSIGN_OR_RETURN(t, FilterRows(t, *expr));
    }
    if (sort) {
      ASSIGN_OR_RETURN(auto keys, ParseSort(*sort, t));
      ASSIGN_OR_RETURN(t, SortTable(t, keys));
    }
    total = t.num_rows;
    std::vector<int64_t> rows;
    for (int64_t r = offset; r < total && r < offset + limit; ++r) rows.push_back(r);
    ASSIGN_OR_RETURN(page, GatherRows(t, rows));
  }
  Json cols = Json::array();
  for (const auto& c : file->columns()) cols.push_back({{"name", c.name}, {"type", ColumnTypeName(c.type)}});
  WriteJson(200, {{"name", v.dataset}, {"version", v.version}, {"offset", offset}, {"limit", limit},
                  {"total", total}, {"columns", cols}, {"rows", TableRowsToJson(page)}},
            ctx.res);
  return Status::Ok();
}

Result<Json> LoadOrComputeProfile(App& app, const DatasetVersionRecord& v, const std::string& target) {
  if (!v.profile_blob.empty() && target.empty()) {
    ASSIGN_OR_RETURN(std::string text, app.blobs().Get(v.profile_blob));
    return ParseJson(text, 64);
  }
  ASSIGN_OR_RETURN(auto file, OpenDatasetVersion(app, v));
  ProfileOptions opt;
  opt.target = target;
  if (target.empty()) {
    ASSIGN_OR_RETURN(auto settings, LoadDatasetSettings(app, v.project, v.dataset));
    opt.target = settings.target;
  }
  ASSIGN_OR_RETURN(Json profile, ProfileDataset(*file, opt, nullptr));
  if (target.empty()) {
    // Versions imported before profiles existed get theirs stored on first view.
    ASSIGN_OR_RETURN(std::string blob, app.blobs().Put(DumpJson(profile)));
    RETURN_IF_ERROR(app.store().SetDatasetVersionProfile(v.project, v.dataset, v.version, blob));
  }
  return profile;
}

Status ExportVersion(App& app, RequestContext& ctx) {
  ASSIGN_OR_RETURN(int64_t version, ParseVersion(ctx.Param("version"), "dataset"));
  std::string format = "csv";
  if (const std::string* f = ctx.req.Query("format")) format = *f;
  if (format != "csv" && format != "jsonl") return FieldError("format", "must be csv or jsonl");
  ASSIGN_OR_RETURN(auto v, app.store().GetDatasetVersion(ctx.Project(), ctx.Param("name"), version));
  ASSIGN_OR_RETURN(auto file, OpenDatasetVersion(app, v));
  const std::string path = app.blobs().TempPath("export");
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return Status::Internal("cannot create the export file");
  auto sink = [fd](std::string_view chunk) -> Status {
    while (!chunk.empty()) {
      ssize_t n = ::write(fd, chunk.data(), chunk.size());
      if (n <= 0) return Status::Internal("writing the export failed (disk full?)");
      chunk.remove_prefix(static_cast<size_t>(n));
    }
    return Status::Ok();
  };
  Status st = ExportDataset(*file, format == "csv" ? ExportFormat::kCsv : ExportFormat::kJsonl, sink, nullptr);
  ::close(fd);
  if (!st.ok()) {
    std::error_code ec;
    fs::remove(path, ec);
    return st;
  }
  ctx.res.status = 200;
  ctx.res.content_type = format == "csv" ? "text/csv; charset=utf-8" : "application/x-ndjson";
  ctx.res.body_file = path;
  ctx.res.body_file_owned = true;
  ctx.res.headers.emplace_back("Content-Disposition", "attachment; filename=\"" + v.dataset + "-v" +
                                                          std::to_string(v.version) + "." + format + "\"");
  return Status::Ok();
}

void RegisterImportJobImpl(App& app) {
  app.jobs().Register("import", {.handler = [&app](JobContext& ctx) -> Result<Json> {
    const Json& p = ctx.payload();
    const std::string staged = p.value("staged_file", std::string());
    struct RemoveStaged {
      std::string path;
      ~RemoveStaged() {
        std::error_code ec;
        if (!path.empty()) fs::remove(path, ec);
      }
    } cleanup{staged};
    ImportRequest req;
    req.project = ctx.job().project;
    req.dataset = p.value("dataset", std::string());
    ASSIGN_OR_RETURN(req.spec, ParseImportSpec(p.value("import", Json::object())));
    const Json& source = p.value("source", Json::object());
    if (source.value("kind", std::string()) == "upload") {
      std::error_code ec;
      if (staged.empty() || !fs::exists(staged, ec)) {
        return Status::FailedPrecondition("the uploaded file is gone (the server restarted before the import "
                                          "started); upload it again");
      }
      req.input_path = staged;
      req.filename = source.value("filename", std::string());
      req.source = source;
      return ImportIntoVersion(app, ctx, req);
    }
    // A SQL or HTTP source: fetch into a spool file first.
    const std::string spool = app.blobs().TempPath("fetch");
    struct RemoveSpool {
      std::string path;
      ~RemoveSpool() {
        std::error_code ec;
        fs::remove(path, ec);
      }
    } spool_cleanup{spool};
    ctx.Progress(0.0, "fetching");
    ASSIGN_OR_RETURN(FetchedSource fetched, FetchSource(app, req.project, source, spool, [&] { return ctx.Cancelled(); }));
    ctx.Log("fetched " + std::to_string(fetched.fetch.bytes) + " bytes as " + fetched.fetch.format);
    req.input_path = spool;
    if (req.spec.format == "auto") req.spec.format = fetched.fetch.format;
    // Types the source declares (database column types) apply unless the user hinted otherwise.
    for (const auto& [col, type] : fetched.fetch.hints.types) req.spec.import.hints.types.emplace(col, type);
    req.source = fetched.shown;
    return ImportIntoVersion(app, ctx, req);
  }});
}

}  // namespace

void RegisterImportJob(App& app) { RegisterImportJobImpl(app); }

Result<std::unique_ptr<DatasetFile>> OpenDatasetVersion(App& app, const DatasetVersionRecord& v) {
  // An encrypted version is decrypted into memory (a memfd) for the mapping's lifetime; the DatasetFile holds
  // its own descriptor, so the PlainFile may close here.
  ASSIGN_OR_RETURN(PlainFile plain, app.blobs().OpenPlain(v.blob));
  return DatasetFile::OpenFd(plain.fd(), plain.name());
}

void RegisterDatasetRoutes(Router& router, App& app) {
  const std::string base = "/api/v1/projects/{project}/datasets";
  const std::string version = base + "/{name}/versions/{version}";
  router.Add({.method = "POST", .pattern = base, .permission = Permission::kProjectWrite,
              .handler = [&app](RequestContext& ctx) { return ImportUpload(app, ctx); },
              .summary = "Import a file (?name=N; ?format=csv|tsv|json|jsonl|xlsx or Content-Type) as a new "
                         "dataset version; waits for the import job unless ?wait=false",
              .tag = "datasets", .upload = true, .success_status = 201});
  router.Add({.method = "POST", .pattern = base + "/{name}/imports", .permission = Permission::kProjectWrite,
              .handler = [&app](RequestContext& ctx) { return ImportFromSource(app, ctx); },
              .summary = "Import from a SQL query, an HTTP URL or a saved connection (a job; ?wait=true to wait)",
              .tag = "datasets", .success_status = 202,
              .request_example = {{"source", {{"connection", "warehouse"}, {"query", "SELECT * FROM sales"}}},
                                  {"import", {{"bad_rows", "quarantine"}}}}});
  router.Add({.method = "GET", .pattern = base, .permission = Permission::kProjectRead,
              .handler = [&app](RequestContext& ctx) -> Status {
                ASSIGN_OR_RETURN(auto list, app.store().ListDatasets(ctx.Project()));
                Json out = Json::array();
                for (const auto& d : list) {
                  out.push_back({{"name", d.name}, {"latest_version", d.latest_version}, {"versions", d.versions},
                                 {"created_at", FormatRfc3339(d.created_at)},
                                 {"updated_at", FormatRfc3339(d.updated_at)}});
                }
                WriteJson(200, {{"datasets", out}}, ctx.res);
                return Status::Ok();
              },
              .summary = "List datasets", .tag = "datasets"});
  router.Add({.method = "GET", .pattern = base + "/{name}", .permission = Permission::kProjectRead,
              .handler = [&app](RequestContext& ctx) -> Status {
                ASSIGN_OR_RETURN(auto versions, app.store().ListDatasetVersions(ctx.Project(), ctx.Param("name")));
                Json vs = Json::array();
                for (const auto& v : versions) vs.push_back(VersionJson(v, false));
                WriteJson(200, {{"name", ctx.Param("name")}, {"latest_version", versions.back().version},
                                {"versions", vs}},
                          ctx.res);
                return Status::Ok();
              },
              .summary = "A dataset and its versions", .tag = "datasets"});
  router.Add({.method = "GET", .pattern = version, .permission = Permission::kProjectRead,
              .handler = [&app](RequestContext& ctx) -> Status {
                ASSIGN_OR_RETURN(int64_t version, ParseVersion(ctx.Param("version"), "dataset"));
                ASSIGN_OR_RETURN(auto v, app.store().GetDatasetVersion(ctx.Project(), ctx.Param("name"), version));
                WriteJson(200, VersionJson(v, true), ctx.res);
                return Status::Ok();
              },
              .summary = "One dataset version: schema, row count, statistics, lineage, quality report",
              .tag = "datasets"});
  router.Add({.method = "GET", .pattern = version + "/rows", .permission = Permission::kProjectRead,
              .handler = [&app](RequestContext& ctx) { return BrowseRows(app, ctx); },
              .summary = "Rows of a version: ?offset=&limit=, ?sort=col,-col, ?filter=EXPR, ?sample=N&seed=S",
              .tag = "datasets"});
  router.Add({.method = "GET", .pattern = version + "/profile", .permission = Permission::kProjectRead,
              .handler = [&app](RequestContext& ctx) -> Status {
                ASSIGN_OR_RETURN(int64_t version, ParseVersion(ctx.Param("version"), "dataset"));
                ASSIGN_OR_RETURN(auto v, app.store().GetDatasetVersion(ctx.Project(), ctx.Param("name"), version));
                std::string target;
                if (const std::string* t = ctx.req.Query("target")) target = *t;
                ASSIGN_OR_RETURN(auto settings, LoadDatasetSettings(app, v.project, v.dataset));
                ASSIGN_OR_RETURN(double epsilon, ProfileEpsilon(ctx.req, settings));
                ASSIGN_OR_RETURN(Json profile, LoadOrComputeProfile(app, v, target));
                if (epsilon > 0) {
                  ASSIGN_OR_RETURN(profile, PrivateProfile(app, v, profile, epsilon, settings));
                }
                profile["name"] = v.dataset;
                profile["version"] = v.version;
                WriteJson(200, profile, ctx.res);
                return Status::Ok();
              },
              .summary = "Profile of a version (computed at import; ?target=COL recomputes leakage and balance "
                         "warnings for that target; ?dp_epsilon=E, or the dataset's dp_epsilon setting, publishes a "
                         "differentially private view)",
              .tag = "datasets"});
  router.Add({.method = "GET", .pattern = version + "/export", .permission = Permission::kProjectRead,
              .handler = [&app](RequestContext& ctx) { return ExportVersion(app, ctx); },
              .summary = "Download a version as CSV or JSON Lines (?format=csv|jsonl)", .tag = "datasets"});
  router.Add({.method = "GET", .pattern = version + "/quarantine", .permission = Permission::kProjectRead,
              .handler = [&app](RequestContext& ctx) -> Status {
                ASSIGN_OR_RETURN(int64_t version, ParseVersion(ctx.Param("version"), "dataset"));
                ASSIGN_OR_RETURN(auto v, app.store().GetDatasetVersion(ctx.Project(), ctx.Param("name"), version));
                if (v.quarantine_blob.empty()) {
                  return Status::NotFound("version " + std::to_string(v.version) + " of '" + v.dataset +
                                          "' has no quarantined rows");
                }
                ASSIGN_OR_RETURN(std::string text, app.blobs().Get(v.quarantine_blob));
                ctx.res.status = 200;
                ctx.res.content_type = "application/x-ndjson";
                ctx.res.body = std::move(text);
                return Status::Ok();
              },
              .summary = "Bad rows set aside by a quarantine import, as JSON lines {line, reason, raw}",
              .tag = "datasets"});
}

}  // namespace lathe
