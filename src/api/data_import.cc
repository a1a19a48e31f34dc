// Import jobs: every source (an uploaded file, a SQL query, an HTTP URL, a saved connection) lands as a
// local file, is read by the importer for its format into a new columnar file, profiled, checked against
// the dataset's contract, and only then becomes a dataset version in one store transaction. Any failure
// leaves nothing behind: no version, no blob, no quarantine file.
#include "api/data_import.h"

#include <filesystem>
#include <fstream>

#include "api/app.h"
#include "api/data_settings.h"
#include "api/params.h"
#include "common/clock.h"
#include "common/compress.h"
#include "common/crypto.h"
#include "common/log.h"
#include "common/memory.h"
#include "data/csv_import.h"
#include "data/dataset_file.h"
#include "data/json_import.h"
#include "data/profile.h"
#include "data/text_encoding.h"
#include "data/xlsx_import.h"

namespace lathe {

namespace fs = std::filesystem;

namespace {

void RemoveQuietly(const std::string& path) {
  if (path.empty()) return;
  std::error_code ec;
  fs::remove(path, ec);
}

// Removes the files it holds when it goes out of scope, unless released.
class TempFiles {
 public:
  ~TempFiles() {
    for (const auto& p : paths_) RemoveQuietly(p);
  }
  const std::string& Add(std::string path) {
    paths_.push_back(std::move(path));
    return paths_.back();
  }

 private:
  std::vector<std::string> paths_;
};

Status FieldError(const std::string& field, const std::string& problem) {
  return Status::InvalidArgument(field + " " + problem).WithDetail(ErrorDetail::Field(field, problem));
}

Result<char> OneChar(const Json& obj, const std::string& key, const std::string& field) {
  if (!obj.contains(key)) return '\0';
  if (!obj[key].is_string() || obj[key].get<std::string>().size() != 1) {
    return FieldError(field, "must be a single character");
  }
  return obj[key].get<std::string>()[0];
}

}  // namespace

Result<ImportSpec> ParseImportSpec(const Json& j) {
  ImportSpec spec;
  if (!j.is_object()) return FieldError("import", "must be a JSON object");
  for (const auto& [key, value] : j.items()) {
    static const char* kKnown[] = {"format", "csv", "json", "xlsx", "hints", "bad_rows", "max_bad_rows"};
    bool known = false;
    for (const char* k : kKnown) known = known || key == k;
    if (!known) return FieldError(key.substr(0, 40), "is not a known import option");
  }
  spec.format = GetStringOr(j, "format", "auto");
  static const char* kFormats[] = {"auto", "csv", "tsv", "json", "jsonl", "xlsx"};
  bool format_ok = false;
  for (const char* f : kFormats) format_ok = format_ok || spec.format == f;
  if (!format_ok) return FieldError("format", "must be one of auto, csv, tsv, json, jsonl, xlsx");
  if (spec.format == "tsv") spec.csv.delimiter = '\t';
  if (j.contains("csv")) {
    const Json& c = j["csv"];
    if (!c.is_object()) return FieldError("csv", "must be an object");
    ASSIGN_OR_RETURN(char d, OneChar(c, "delimiter", "csv.delimiter"));
    if (d) spec.csv.delimiter = d;
    ASSIGN_OR_RETURN(char q, OneChar(c, "quote", "csv.quote"));
    spec.csv.quote = q;
    std::string header = GetStringOr(c, "header", "auto");
    if (header == "auto") spec.csv.header = HeaderMode::kAuto;
    else if (header == "yes" || header == "true") spec.csv.header = HeaderMode::kYes;
    else if (header == "no" || header == "false") spec.csv.header = HeaderMode::kNo;
    else return FieldError("csv.header", "must be auto, yes or no");
    spec.csv.encoding = GetStringOr(c, "encoding", "");
    if (!spec.csv.encoding.empty() && !ParseTextEncoding(spec.csv.encoding).ok()) {
      return FieldError("csv.encoding", "must be utf-8, gb18030 (gbk, gb2312, cp936), latin-1 (iso-8859-1) or "
                                        "empty (detect)");
    }
  }
  if (j.contains("json")) {
    const Json& c = j["json"];
    if (!c.is_object()) return FieldError("json", "must be an object");
    std::string layout = GetStringOr(c, "layout", "auto");
    if (layout == "auto") spec.json.layout = JsonLayout::kAuto;
    else if (layout == "lines") spec.json.layout = JsonLayout::kLines;
    else if (layout == "array") spec.json.layout = JsonLayout::kArray;
    else return FieldError("json.layout", "must be auto, lines or array");
  }
  if (j.contains("xlsx")) {
    const Json& c = j["xlsx"];
    if (!c.is_object()) return FieldError("xlsx", "must be an object");
    spec.xlsx.sheet = GetStringOr(c, "sheet", "");
    int64_t header_row = GetIntOr(c, "header_row", 1);
    if (header_row < 0 || header_row > 1000) return FieldError("xlsx.header_row", "must be 0..1000");
    spec.xlsx.header_row = static_cast<int>(header_row);
  }
  if (j.contains("hints")) {
    ASSIGN_OR_RETURN(spec.import.hints, ParseSchemaHints(j["hints"]));
  }
  if (j.contains("bad_rows")) {
    if (!j["bad_rows"].is_string()) return FieldError("bad_rows", "must be fail, skip or quarantine");
    ASSIGN_OR_RETURN(spec.import.bad_rows, ParseBadRowPolicy(j["bad_rows"].get<std::string>()));
  }
  if (j.contains("max_bad_rows")) {
    if (!j["max_bad_rows"].is_number_integer() || j["max_bad_rows"].get<int64_t>() < 0) {
      return FieldError("max_bad_rows", "must be a non-negative integer");
    }
    spec.import.max_bad_rows = j["max_bad_rows"].get<int64_t>();
  }
  return spec;
}

Json ImportSpecToJson(const ImportSpec& spec) {
  Json j = {{"format", spec.format}, {"bad_rows", BadRowPolicyName(spec.import.bad_rows)},
            {"max_bad_rows", spec.import.max_bad_rows}};
  Json csv = Json::object();
  if (spec.csv.delimiter) csv["delimiter"] = std::string(1, spec.csv.delimiter);
  if (spec.csv.quote) csv["quote"] = std::string(1, spec.csv.quote);
  csv["header"] = spec.csv.header == HeaderMode::kAuto ? "auto" : spec.csv.header == HeaderMode::kYes ? "yes" : "no";
  if (!spec.csv.encoding.empty()) csv["encoding"] = spec.csv.encoding;
  j["csv"] = csv;
  j["json"] = {{"layout", spec.json.layout == JsonLayout::kLines   ? "lines"
                          : spec.json.layout == JsonLayout::kArray ? "array"
                                                                   : "auto"}};
  j["xlsx"] = {{"sheet", spec.xlsx.sheet}, {"header_row", spec.xlsx.header_row}};
  Json hints = SchemaHintsToJson(spec.import.hints);
  if (!hints.empty()) j["hints"] = hints;
  return j;
}

std::string DetectFormat(const std::string& path, const std::string& filename_hint) {
  auto ends_with = [](const std::string& s, const char* suffix) {
    std::string suf(suffix);
    if (s.size() < suf.size()) return false;
    for (size_t i = 0; i < suf.size(); ++i) {
      if (std::tolower(static_cast<unsigned char>(s[s.size() - suf.size() + i])) != suf[i]) return false;
    }
    return true;
  };
  if (ends_with(filename_hint, ".tsv") || ends_with(filename_hint, ".tab")) return "tsv";
  if (ends_with(filename_hint, ".jsonl") || ends_with(filename_hint, ".ndjson")) return "jsonl";
  if (ends_with(filename_hint, ".json")) return "json";
  if (ends_with(filename_hint, ".xlsx")) return "xlsx";
  if (ends_with(filename_hint, ".csv")) return "csv";
  // Sniff the first bytes: a zip (xlsx), a JSON document, otherwise delimited text.
  std::ifstream in(path, std::ios::binary);
  char buf[512] = {};
  in.read(buf, sizeof(buf));
  size_t n = static_cast<size_t>(in.gcount());
  size_t i = 0;
  if (n >= 3 && static_cast<unsigned char>(buf[0]) == 0xEF && static_cast<unsigned char>(buf[1]) == 0xBB &&
      static_cast<unsigned char>(buf[2]) == 0xBF) {
    i = 3;
  }
  if (n >= 4 && buf[0] == 'P' && buf[1] == 'K' && buf[2] == 3 && buf[3] == 4) return "xlsx";
  if (n >= 8 && static_cast<unsigned char>(buf[0]) == 0xD0 && static_cast<unsigned char>(buf[1]) == 0xCF) return "xlsx";
  while (i < n && (buf[i] == ' ' || buf[i] == '\t' || buf[i] == '\r' || buf[i] == '\n')) ++i;
  if (i < n && buf[i] == '[') return "json";
  if (i < n && buf[i] == '{') return "jsonl";
  return "csv";
}

Result<ImportResult> RunImporter(const ImportSpec& spec, const std::string& format, const std::string& input_path,
                                 const std::string& output_path, const ImportOptions& import,
                                 const ProgressFn& progress, const CancelFn& cancel) {
  if (format == "csv" || format == "tsv") {
    CsvOptions csv = spec.csv;
    if (format == "tsv" && !csv.delimiter) csv.delimiter = '\t';
    return ImportCsvFile(input_path, output_path, csv, import, progress, cancel);
  }
  if (format == "json" || format == "jsonl") {
    JsonImportOptions json = spec.json;
    if (json.layout == JsonLayout::kAuto) json.layout = format == "jsonl" ? JsonLayout::kLines : JsonLayout::kAuto;
    return ImportJsonFile(input_path, output_path, json, import, progress, cancel);
  }
  if (format == "xlsx") return ImportXlsxFile(input_path, output_path, spec.xlsx, import, progress, cancel);
  return Status::UnsupportedMedia("unknown import format '" + format + "'");
}

Result<Json> ImportIntoVersion(App& app, JobContext& ctx, const ImportRequest& req) {
  TempFiles temps;
  const std::string out_path = temps.Add(app.blobs().TempPath("import"));
  const std::string quarantine_path = temps.Add(app.blobs().TempPath("quarantine"));
  std::string format = req.spec.format;
  if (format == "auto") format = DetectFormat(req.input_path, req.filename);
  ImportOptions import = req.spec.import;
  import.quarantine_path = quarantine_path;
  ctx.Progress(0.0, "importing " + format);
  int64_t started = MonotonicMicros();
  auto progress = [&](double f) { ctx.Progress(0.05 + 0.75 * f, "importing " + format); };
  auto cancel = [&] { return ctx.Cancelled(); };
  auto imported = RunImporter(req.spec, format, req.input_path, out_path, import, progress, cancel);
  // The importer's per-thread buffers are free now: hand them back to the OS before profiling, so the peak
  // resident memory of an import is the larger of the two phases, not their sum.
  ReleaseFreeMemory();
  if (!imported.ok()) return imported.TakeStatus().Annotate("import of '" + req.dataset + "' failed");
  ctx.Log("read " + std::to_string(imported->rows) + " rows, " + std::to_string(imported->columns.size()) +
          " columns as " + format + (imported->encoding.empty() ? "" : " (" + imported->encoding + ")") +
          (imported->bad_rows ? ", " + std::to_string(imported->bad_rows) + " bad rows" : ""));
  ctx.Progress(0.8, "profiling");
  return FinishVersion(app, ctx, req.project, req.dataset, out_path, imported->bad_rows > 0 ? quarantine_path : "",
                       imported->bad_rows, req.source, Json::object(),
                       {{"format", format},
                        {"input_bytes", imported->input_bytes},
                        {"encoding", imported->encoding},
                        {"import_seconds", (MonotonicMicros() - started) / 1e6}});
}

Result<Json> FinishVersion(App& app, JobContext& ctx, const std::string& project, const std::string& dataset,
                           const std::string& table_path, const std::string& quarantine_path, int64_t bad_rows,
                           Json source, Json lineage, const Json& extra_source) {
  TempFiles temps;
  temps.Add(table_path);
  if (!quarantine_path.empty()) temps.Add(quarantine_path);
  ASSIGN_OR_RETURN(auto file, DatasetFile::Open(table_path));
  Json stats = file->StatsJson();
  // Profile at import: the profile is part of the version, computed once.
  ProfileOptions popt;
  ASSIGN_OR_RETURN(auto settings, LoadDatasetSettings(app, project, dataset));
  popt.target = settings.target;
  auto cancel = [&] { return ctx.Cancelled(); };
  int64_t profile_started = MonotonicMicros();
  ASSIGN_OR_RETURN(Json profile, ProfileDataset(*file, popt, cancel));
  double profile_seconds = (MonotonicMicros() - profile_started) / 1e6;
  ctx.Progress(0.9, "checking data quality");
  Json quality = Json::object();
  if (!settings.contract.empty()) {
    ASSIGN_OR_RETURN(auto contract, ParseContract(settings.contract));
    ASSIGN_OR_RETURN(quality, CheckContract(*file, contract, NowMicros()));
    if (!quality.value("passed", true)) {
      ctx.Log("data contract failed: " + DumpJson(quality["failed"]));
      if (settings.enforce_contract) {
        Status st = Status::FailedPrecondition("the new version of '" + dataset +
                                               "' breaks its data contract and the contract is enforced: " +
                                               quality.value("summary", std::string("see the report")));
        for (const auto& c : quality["checks"]) {
          if (c.value("passed", true)) continue;
          st = std::move(st).WithDetail(
              ErrorDetail::Column(c.value("column", std::string("(dataset)")), c.value("message", std::string())));
        }
        return st;
      }
    }
  }
  std::vector<ColumnInfo> columns = file->columns();
  const int64_t rows = file->num_rows();
  const int64_t bytes = file->file_bytes();
  file.reset();

  // Blobs: content-addressed, so a failure after this point leaves at most unreferenced blobs that the
  // next identical import reuses.
  ASSIGN_OR_RETURN(std::string profile_blob, app.blobs().Put(DumpJson(profile)));
  std::string quarantine_blob;
  if (!quarantine_path.empty() && fs::exists(quarantine_path)) {
    ASSIGN_OR_RETURN(auto text, ReadFile(quarantine_path));
    ASSIGN_OR_RETURN(quarantine_blob, app.blobs().Put(text));
  }
  ASSIGN_OR_RETURN(std::string blob, app.blobs().AdoptFile(table_path));

  DatasetVersionRecord rec;
  rec.project = project;
  rec.dataset = dataset;
  rec.rows = rows;
  rec.columns = Json::array();
  for (const auto& c : columns) {
    rec.columns.push_back({{"name", c.name}, {"type", ColumnTypeName(c.type)}, {"missing", c.missing}});
  }
  rec.stats = std::move(stats);
  rec.blob = blob;
  rec.bytes = bytes;
  for (const auto& [k, v] : extra_source.items()) source[k] = v;
  source["profile_seconds"] = profile_seconds;
  rec.source = std::move(source);
  rec.lineage = std::move(lineage);
  rec.profile_blob = profile_blob;
  rec.quarantine_blob = quarantine_blob;
  rec.bad_rows = bad_rows;
  rec.quality = quality;
  rec.created_at = NowMicros();
  ASSIGN_OR_RETURN(rec.version, app.store().AddDatasetVersion(rec));
  LogInfo("dataset version created", {{"project", project}, {"dataset", dataset}, {"version", rec.version},
                                      {"rows", rows}, {"job", ctx.job().id}});
  if (settings.retention_days > 0) {
    auto swept = ApplyRetention(app, project, dataset, NowMicros());
    if (swept.ok() && !(*swept)["deleted"].empty()) ctx.Log("retention deleted versions " + (*swept)["deleted"].dump());
    if (!swept.ok()) ctx.Log("retention sweep failed: " + swept.status().ToString());
  }
  Json out = {{"name", dataset},        {"version", rec.version}, {"rows", rows},
              {"columns", rec.columns}, {"bytes", bytes},         {"bad_rows", bad_rows},
              {"source", rec.source},   {"lineage", rec.lineage}, {"created_at", FormatRfc3339(rec.created_at)}};
  if (!quality.empty()) out["quality"] = quality;
  return out;
}

std::string PiiSalt(App& app, const std::string& project) {
  return HexEncode(HmacSha256(app.keyring().PiiKey(), "lathe-pii-salt:" + project));
}

Result<Json> PreprocessFromLineage(App& app, const DatasetVersionRecord& v) {
  Json recipes = Json::array();
  DatasetVersionRecord cur = v;
  for (int depth = 0; cur.lineage.contains("recipe") && cur.lineage.contains("parent"); ++depth) {
    if (depth > 100) return Status::FailedPrecondition("dataset lineage is deeper than 100 recipes");
    const Json& r = cur.lineage["recipe"];
    recipes.insert(recipes.begin(), Json{{"steps", r.value("steps", Json::array())},
                                         {"fitted", r.value("fitted", Json::object())}});
    const Json& parent = cur.lineage["parent"];
    auto next = app.store().GetDatasetVersion(cur.project, parent.value("dataset", std::string()),
                                              parent.value("version", int64_t{0}));
    if (!next.ok()) {
      return Status::FailedPrecondition("cannot trace the lineage of '" + v.dataset + "' version " +
                                        std::to_string(v.version) + ": its parent " +
                                        parent.value("dataset", std::string()) + " version " +
                                        std::to_string(parent.value("version", int64_t{0})) + " is gone");
    }
    cur = std::move(next).value();
  }
  if (recipes.empty()) return Json::object();
  Json inputs = Json::array();
  for (const auto& c : cur.columns) inputs.push_back({{"name", c.value("name", std::string())}, {"type", c.value("type", std::string())}});
  return Json{{"inputs", inputs}, {"recipes", recipes}, {"root", {{"dataset", cur.dataset}, {"version", cur.version}}}};
}

}  // namespace lathe
