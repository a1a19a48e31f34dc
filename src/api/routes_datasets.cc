// Datasets: import (CSV/TSV upload, streamed to disk and parsed into lathe's columnar format), list,
// show, version details, and paged rows.
#include <filesystem>

#include "api/app.h"
#include "api/params.h"
#include "api/problem.h"
#include "common/clock.h"
#include "common/log.h"
#include "data/csv_import.h"
#include "data/dataset_file.h"
#include "data/table_json.h"

namespace lathe {

namespace {

Json ColumnsJson(const std::vector<ColumnInfo>& cols) {
  Json out = Json::array();
  for (const auto& c : cols) out.push_back({{"name", c.name}, {"type", ColumnTypeName(c.type)}, {"missing", c.missing}});
  return out;
}

Json VersionJson(const DatasetVersionRecord& v, bool with_stats) {
  Json j = {{"name", v.dataset},
            {"version", v.version},
            {"rows", v.rows},
            {"columns", v.columns},
            {"bytes", v.bytes},
            {"source", v.source},
            {"created_at", FormatRfc3339(v.created_at)}};
  if (with_stats) j["stats"] = v.stats;
  return j;
}

// Decides the upload format from ?format= or the Content-Type header.
Result<std::string> UploadFormat(const HttpRequest& req) {
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
  if (format.empty()) format = "csv";
  if (format == "csv" || format == "tsv") return format;
  if (format == "jsonl" || format == "json" || format == "xlsx") {
    return Status::UnsupportedMedia("importing " + format + " is not supported yet; upload CSV or TSV");
  }
  return Status::InvalidArgument("unknown format '" + format.substr(0, 40) + "'; expected csv or tsv")
      .WithDetail(ErrorDetail::Field("format", "must be csv or tsv"));
}

Status ImportDataset(App& app, RequestContext& ctx) {
  const std::string* name = ctx.req.Query("name");
  if (!name) {
    return Status::InvalidArgument("query parameter 'name' is required: POST …/datasets?name=NAME")
        .WithDetail(ErrorDetail::Field("name", "is required"));
  }
  RETURN_IF_ERROR(CheckName(*name, "name"));
  ASSIGN_OR_RETURN(std::string format, UploadFormat(ctx.req));
  std::error_code ec;
  if (ctx.req.body_file.empty() || std::filesystem::file_size(ctx.req.body_file, ec) == 0 || ec) {
    return Status::InvalidArgument("the request body is empty; send the " + format + " file as the body");
  }
  CsvOptions options;
  if (format == "tsv") options.delimiter = '\t';
  if (const std::string* d = ctx.req.Query("delimiter")) {
    if (d->size() != 1) {
      return Status::InvalidArgument("delimiter must be one character")
          .WithDetail(ErrorDetail::Field("delimiter", "must be one character"));
    }
    options.delimiter = (*d)[0];
  }
  std::string out_path = app.blobs().TempPath("import");
  int64_t started = MonotonicMicros();
  auto imported = ImportCsvFile(ctx.req.body_file, out_path, options, nullptr, nullptr);
  if (!imported.ok()) {
    std::filesystem::remove(out_path, ec);
    return imported.TakeStatus().Annotate("import of '" + *name + "' failed");
  }
  Json stats = Json::object();
  {
    auto file = DatasetFile::Open(out_path);
    if (!file.ok()) {
      std::filesystem::remove(out_path, ec);
      return file.TakeStatus();
    }
    stats = (*file)->StatsJson();
  }
  auto blob = app.blobs().AdoptFile(out_path);
  if (!blob.ok()) {
    std::filesystem::remove(out_path, ec);
    return blob.TakeStatus();
  }
  DatasetVersionRecord rec;
  rec.project = ctx.Project();
  rec.dataset = *name;
  rec.rows = imported->rows;
  rec.columns = ColumnsJson(imported->columns);
  rec.stats = std::move(stats);
  rec.blob = *blob;
  rec.bytes = imported->output_bytes;
  rec.source = {{"kind", "upload"}, {"format", format}, {"input_bytes", imported->input_bytes}};
  rec.created_at = NowMicros();
  ASSIGN_OR_RETURN(rec.version, app.store().AddDatasetVersion(rec));
  LogInfo("dataset imported", {{"project", rec.project}, {"dataset", rec.dataset}, {"version", rec.version},
                               {"rows", rec.rows}, {"seconds", (MonotonicMicros() - started) / 1e6},
                               {"request_id", ctx.req.request_id}});
  Json body = VersionJson(rec, false);
  ctx.res.headers.emplace_back("Location", "/api/v1/projects/" + rec.project + "/datasets/" + rec.dataset +
                                               "/versions/" + std::to_string(rec.version));
  WriteJson(201, body, ctx.res);
  return Status::Ok();
}

}  // namespace

Result<std::unique_ptr<DatasetFile>> OpenDatasetVersion(App& app, const DatasetVersionRecord& v) {
  ASSIGN_OR_RETURN(std::string path, app.blobs().PathOf(v.blob));
  return DatasetFile::Open(path);
}

void RegisterDatasetRoutes(Router& router, App& app) {
  router.Add({.method = "POST", .pattern = "/api/v1/projects/{project}/datasets",
              .permission = Permission::kProjectWrite,
              .handler = [&app](RequestContext& ctx) { return ImportDataset(app, ctx); },
              .summary = "Import a file (?name=N, ?format=csv|tsv) as a new dataset version", .tag = "datasets",
              .upload = true, .success_status = 201});
  router.Add({.method = "GET", .pattern = "/api/v1/projects/{project}/datasets",
              .permission = Permission::kProjectRead,
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
  router.Add({.method = "GET", .pattern = "/api/v1/projects/{project}/datasets/{name}",
              .permission = Permission::kProjectRead,
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
  router.Add({.method = "GET", .pattern = "/api/v1/projects/{project}/datasets/{name}/versions/{version}",
              .permission = Permission::kProjectRead,
              .handler = [&app](RequestContext& ctx) -> Status {
                ASSIGN_OR_RETURN(int64_t version, ParseVersion(ctx.Param("version"), "dataset"));
                ASSIGN_OR_RETURN(auto v, app.store().GetDatasetVersion(ctx.Project(), ctx.Param("name"), version));
                WriteJson(200, VersionJson(v, true), ctx.res);
                return Status::Ok();
              },
              .summary = "One dataset version: schema, row count, column statistics", .tag = "datasets"});
  router.Add({.method = "GET", .pattern = "/api/v1/projects/{project}/datasets/{name}/versions/{version}/rows",
              .permission = Permission::kProjectRead,
              .handler = [&app](RequestContext& ctx) -> Status {
                ASSIGN_OR_RETURN(int64_t version, ParseVersion(ctx.Param("version"), "dataset"));
                ASSIGN_OR_RETURN(int64_t offset, QueryInt(ctx.req, "offset", 0, 0, INT64_MAX / 2));
                ASSIGN_OR_RETURN(int64_t limit, QueryInt(ctx.req, "limit", 100, 0, app.config().max_page_rows));
                ASSIGN_OR_RETURN(auto v, app.store().GetDatasetVersion(ctx.Project(), ctx.Param("name"), version));
                ASSIGN_OR_RETURN(auto file, OpenDatasetVersion(app, v));
                int64_t total = file->num_rows();
                int64_t start = std::min(offset, total);
                int64_t n = std::min(limit, total - start);
                ASSIGN_OR_RETURN(Table t, file->ReadRows(start, n));
                Json cols = Json::array();
                for (const auto& c : file->columns()) cols.push_back({{"name", c.name}, {"type", ColumnTypeName(c.type)}});
                WriteJson(200, {{"name", v.dataset}, {"version", v.version}, {"offset", offset}, {"limit", limit},
                                {"total", total}, {"columns", cols}, {"rows", TableRowsToJson(t)}},
                          ctx.res);
                return Status::Ok();
              },
              .summary = "Rows of a dataset version (?offset=&limit=)", .tag = "datasets"});
}

}  // namespace lathe
