#include "cli/client_data.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <set>

#include "cli/client_data_args.h"
#include "cli/http_download.h"
#include "cli/table_printer.h"

namespace lathe::cli {

namespace {

// A usage problem found by a handler: print it; the dispatcher adds the command's usage (exit 2).
int UsageProblem(const Status& s) {
  PrintStatusError(s);
  return -kExitUsage;
}

std::string BaseName(const std::string& path) {
  const size_t slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

std::string StemOf(const std::string& path) {
  const std::string base = BaseName(path);
  const size_t dot = base.find('.');
  return dot == std::string::npos || dot == 0 ? base : base.substr(0, dot);
}

std::string ContentTypeFor(const std::string& format) {
  if (format == "csv") return "text/csv";
  if (format == "tsv") return "text/tab-separated-values";
  if (format == "jsonl") return "application/x-ndjson";
  if (format == "json") return "application/json";
  if (format == "xlsx") return "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";
  return "application/octet-stream";  // the server detects the format
}

std::string Percent(double fraction) {
  if (!std::isfinite(fraction)) return "";
  const double p = fraction * 100;
  if (p == 0) return "0%";
  if (p < 0.1) return "<0.1%";
  char buf[32];
  std::snprintf(buf, sizeof(buf), p < 10 ? "%.1f%%" : "%.0f%%", p);
  return buf;
}

// A profile statistic: numbers with 4 significant digits, text (datetimes) as is.
std::string Stat(const Json& v) {
  if (v.is_number_float()) return FormatSignificant(v.get<double>(), 6);
  return FormatCell(v);
}

std::string JoinStrings(const Json& arr, const std::string& sep) {
  std::string out;
  if (!arr.is_array()) return FormatCell(arr);
  for (const auto& x : arr)
    out += (out.empty() ? "" : sep) + (x.is_string() ? x.get<std::string>() : FormatCell(x));
  return out;
}

// The version as text ("3") from a response member.
std::string VersionText(const Json& obj) { return MemberText(obj, "version"); }

// Rows of an API response ({"columns":[{"name"}], "rows":[{col: value}]}) as a table.
void PrintRowsTable(const Json& resp) {
  std::vector<std::string> names;
  for (const auto& c : Member(resp, "columns"))
    names.push_back(c.is_object() ? GetStringOr(c, "name", "?") : FormatCell(c));
  const Json& rows = Member(resp, "rows");
  if (names.empty() && rows.is_array() && !rows.empty() && rows[0].is_object()) {
    for (const auto& [k, _] : rows[0].items()) names.push_back(k);
  }
  TablePrinter t(names, 40);
  if (rows.is_array()) {
    for (const auto& row : rows) {
      std::vector<std::string> cells;
      for (size_t i = 0; i < names.size(); ++i) {
        if (row.is_object())
          cells.push_back(FormatCell(Member(row, names[i]), kDataDigits));
        else if (row.is_array() && i < row.size())
          cells.push_back(FormatCell(row[i], kDataDigits));
        else
          cells.emplace_back();
      }
      t.AddRow(std::move(cells));
    }
  }
  Out(t.Render());
}

// Sends a request whose success answer may be 201 (done) or 202 (a job): waits for the job unless
// `no_wait`. Returns the finished result (the job's result for a 202), or nullopt after printing why.
// With `no_wait` and a 202, prints the job (JSON or its id) and sets *queued.
std::optional<Json> CallMaybeJob(Context& ctx, const std::string& method, const std::string& path,
                                 const Json* body, bool no_wait, const std::string& what, bool* queued) {
  auto r = ctx.Raw(method, path, body);
  if (!r.ok()) {
    PrintStatusError(r.status());
    return std::nullopt;
  }
  if (!r->ok()) {
    ctx.PrintApiError(*r);
    return std::nullopt;
  }
  auto resp = ctx.ParseOk(*r);
  if (!resp) return std::nullopt;
  if (r->status != 202) return resp;
  const std::string job_id = IdText(Member(*resp, "job"));
  if (job_id.empty()) {
    Err("error: the server accepted the request but sent no job id\n");
    return std::nullopt;
  }
  if (no_wait) {
    *queued = true;
    if (ctx.json) {
      PrintJson(*resp);
    } else {
      Out(job_id + "\n");
      Err(what + " queued; follow it with `lathe jobs wait " + SanitizeCell(job_id) + "`\n");
    }
    return resp;
  }
  Err(what + " (job " + SanitizeCell(job_id) + ")\n");
  auto job = WaitForJob(ctx, job_id);
  if (!job) return std::nullopt;
  if (GetStringOr(*job, "state", "") != "succeeded") {
    PrintJobFailure(*job, job_id);
    return std::nullopt;
  }
  Json result = Member(*job, "result");
  if (!result.is_object()) result = Json::object();
  result["job"] = job_id;
  return result;
}

// The summary of a new version (import, recipe apply, labeling): name, version, rows, columns, bad rows,
// the quarantine hint and a failed data contract.
void PrintNewVersion(const Json& v, const std::string& verb, const std::string& bad_row_policy,
                     uint64_t file_bytes) {
  const Json& cols = Member(v, "columns");
  const std::string name = GetStringOr(v, "name", "?");
  const std::string version = VersionText(v);
  std::string line = verb + " " + SanitizeCell(name) + " version " + version + ": " + MemberText(v, "rows") +
                     " rows, " + std::to_string(cols.is_array() ? cols.size() : 0) + " columns";
  if (file_bytes > 0) line += " (" + HumanBytes(file_bytes) + ")";
  Out(line + "\n");
  if (cols.is_array() && !cols.empty()) {
    PrintObjectTable(cols, {{"COLUMN", "name"}, {"TYPE", "type"}, {"MISSING", "missing"}});
  }
  const Json& bad = Member(v, "bad_rows");
  if (bad.is_number_integer() && bad.get<int64_t>() > 0) {
    const std::string n = FormatCell(bad);
    if (bad_row_policy == "skip") {
      Out(n + " bad rows skipped\n");
    } else {
      Out(n + " bad rows quarantined; see them with: lathe datasets quarantine " + SanitizeCell(name) + "@" +
          version + " -o " + SanitizeCell(name) + "-v" + version + "-bad.jsonl\n");
    }
  }
  const Json& quality = Member(v, "quality");
  if (quality.is_object() && Member(quality, "passed").is_boolean() && !quality["passed"].get<bool>()) {
    Err("warning: this version breaks the dataset's data contract: " +
        SanitizeCell(GetStringOr(quality, "summary", "see `lathe datasets check`")) + "\n");
    for (const auto& f : Member(quality, "failed")) Err("  failed: " + SanitizeCell(FormatCell(f)) + "\n");
  }
}

// --- datasets import (a file)

int CmdDatasetsImport(Context& ctx, const ParsedArgs& a) {
  const std::string file = a.positionals[0];
  const std::string name = a.Get("name", StemOf(file));
  auto spec = ImportSpecFromFlags(a, FormatFromExtension(file));
  if (!spec.ok()) return UsageProblem(spec.status());
  struct stat st {};
  if (::stat(file.c_str(), &st) != 0) {
    Err("error: cannot read " + SanitizeCell(file) + ": " + std::strerror(errno) + "\n");
    return kExitError;
  }
  if (!S_ISREG(st.st_mode)) {
    Err("error: " + SanitizeCell(file) + " is not a regular file\n");
    return kExitError;
  }
  const std::string format = GetStringOr(*spec, "format", "auto");
  const bool no_wait = a.Has("no-wait");
  std::string path =
      ctx.ProjectPath("/datasets?name=" + UrlEncode(name) + "&filename=" + UrlEncode(BaseName(file)) +
                      "&options=" + UrlEncode(DumpJson(*spec)));
  if (no_wait) path += "&wait=false";
  ProgressLine bar(/*plain_lines_when_not_tty=*/false);
  const std::string label = "uploading " + BaseName(file);
  UploadProgressFn on_progress = [&](uint64_t sent, uint64_t total) {
    bar.Update(static_cast<double>(sent) / static_cast<double>(total),
               label + "  " + HumanBytes(sent) + " / " + HumanBytes(total));
  };
  auto r = ctx.http().UploadFile(path, file, ContentTypeFor(format), on_progress);
  bar.Finish();
  if (!r.ok()) {
    PrintStatusError(r.status());
    return kExitError;
  }
  if (!r->ok()) {
    ctx.PrintApiError(*r);
    return kExitError;
  }
  auto resp = ctx.ParseOk(*r);
  if (!resp) return kExitError;
  Json result = *resp;
  if (r->status == 202) {
    const std::string job_id = IdText(Member(*resp, "job"));
    if (no_wait) {
      if (ctx.json) {
        PrintJson(*resp);
      } else {
        Out(job_id + "\n");
        Err("Import of " + SanitizeCell(name) + " queued; follow it with `lathe jobs wait " +
            SanitizeCell(job_id) + "`\n");
      }
      return kExitOk;
    }
    Err("Importing " + SanitizeCell(name) + " (job " + SanitizeCell(job_id) + ")\n");
    auto job = WaitForJob(ctx, job_id);
    if (!job) return kExitError;
    if (GetStringOr(*job, "state", "") != "succeeded") {
      PrintJobFailure(*job, job_id);
      return kExitError;
    }
    result = Member(*job, "result");
    result["job"] = job_id;
  }
  if (ctx.json) {
    PrintJson(result);
    return kExitOk;
  }
  PrintNewVersion(result, "Imported", a.Get("bad-rows", "fail"), static_cast<uint64_t>(st.st_size));
  return kExitOk;
}

// --- datasets import-source (SQL query, HTTP URL, saved connection)

int CmdDatasetsImportSource(Context& ctx, const ParsedArgs& a) {
  const std::string& name = a.positionals[0];
  if (a.Has("wait") && a.Has("no-wait"))
    return UsageProblem(Status::InvalidArgument("give --wait or --no-wait, not both"));
  auto spec = ImportSpecFromFlags(a, "");
  if (!spec.ok()) return UsageProblem(spec.status());
  Json source;
  if (a.Has("source")) {
    for (const char* f : {"connection", "query", "source-url"}) {
      if (a.Has(f))
        return UsageProblem(
            Status::InvalidArgument(std::string("--source already says it all; drop --") + f));
    }
    std::string text = a.Get("source");
    if (!text.empty() && text[0] == '@') {
      auto file = ReadFileOrStdin(text.substr(1), "source file");
      if (!file.ok()) return UsageProblem(file.status());
      text = std::move(*file);
    }
    auto parsed = ParseSourceJson(text);
    if (!parsed.ok()) return UsageProblem(parsed.status());
    source = std::move(*parsed);
  } else if (a.Has("connection")) {
    if (a.Has("query") && a.Has("source-url")) {
      return UsageProblem(Status::InvalidArgument("give --query or --source-url, not both"));
    }
    source = {{"connection", a.Get("connection")}};
    if (a.Has("query")) source["query"] = a.Get("query");
    if (a.Has("source-url")) source["url"] = a.Get("source-url");
  } else {
    return UsageProblem(
        Status::InvalidArgument("say where the data comes from: --connection NAME [--query SQL | "
                                "--source-url URL], or --source JSON"));
  }
  if (a.Has("password-stdin") ||
      (source.value("kind", std::string()) == "postgres" && ctx.env("LATHE_SOURCE_PASSWORD"))) {
    if (source.contains("connection")) {
      return UsageProblem(
          Status::InvalidArgument("a saved connection already holds its password; "
                                  "--password-stdin is for an inline --source"));
    }
    auto pw = ReadSecret(a, ctx.env, "password-stdin", "LATHE_SOURCE_PASSWORD", "Source password");
    if (!pw.ok()) return UsageProblem(pw.status());
    source["password"] = *pw;
  }
  Json body = {{"source", source}, {"import", *spec}};
  bool queued = false;
  auto result = CallMaybeJob(ctx, "POST", ctx.ProjectPath("/datasets/" + UrlEncode(name) + "/imports"), &body,
                             a.Has("no-wait"), "Importing " + SanitizeCell(name), &queued);
  if (!result) return kExitError;
  if (queued) return kExitOk;
  if (ctx.json) {
    PrintJson(*result);
    return kExitOk;
  }
  PrintNewVersion(*result, "Imported", a.Get("bad-rows", "fail"), 0);
  const Json& src = Member(*result, "source");
  if (src.is_object() && src.contains("bytes_fetched")) {
    Out("Fetched " + MemberText(src, "rows_fetched") + " rows (" +
        HumanBytes(static_cast<uint64_t>(std::max<int64_t>(0, GetIntOr(src, "bytes_fetched", 0)))) + ")\n");
  }
  return kExitOk;
}

// --- datasets list / show / rows

int CmdDatasetsList(Context& ctx, const ParsedArgs&) {
  return ListProjectCollection(ctx, "datasets",
                               {{"NAME", "name"},
                                {"LATEST", "latest_version"},
                                {"VERSIONS", "versions", CountOrValue},
                                {"UPDATED", "updated_at"}});
}

int CmdDatasetsShow(Context& ctx, const ParsedArgs& a) {
  auto ref = ParseDatasetRef(a.positionals[0], false);
  if (!ref.ok()) return UsageProblem(ref.status());
  if (ref->explicit_version) {
    // One version: schema, statistics, lineage and quality.
    auto v = ctx.Call("GET", ctx.ProjectPath(VersionPath(*ref)));
    if (!v) return kExitError;
    if (ctx.json) {
      PrintJson(*v);
      return kExitOk;
    }
    PrintKeyValues(*v, {"columns", "stats"});
    const Json& cols = Member(*v, "columns");
    if (cols.is_array() && !cols.empty()) {
      Out("\n");
      PrintObjectTable(cols, {{"COLUMN", "name"}, {"TYPE", "type"}, {"MISSING", "missing"}});
    }
    return kExitOk;
  }
  auto resp = ctx.Call("GET", ctx.ProjectPath("/datasets/" + UrlEncode(ref->name)));
  if (!resp) return kExitError;
  if (ctx.json) {
    PrintJson(*resp);
    return kExitOk;
  }
  Out("Dataset " + SanitizeCell(GetStringOr(*resp, "name", ref->name)) + "\n");
  const Json& versions = Member(*resp, "versions");
  if (versions.is_array() && !versions.empty()) {
    auto made_by = [](const Json& source) {
      return source.is_object() ? GetStringOr(source, "kind", "") : FormatCell(source);
    };
    PrintObjectTable(versions, {{"VERSION", "version"},
                                {"ROWS", "rows"},
                                {"COLUMNS", "columns", CountOrValue},
                                {"BAD ROWS", "bad_rows"},
                                {"BYTES", "bytes"},
                                {"SOURCE", "source", made_by},
                                {"CREATED", "created_at"}});
  }
  return kExitOk;
}

// NAME[@V] with the legacy --version flag.
Result<DatasetRef> RefWithVersionFlag(const ParsedArgs& a) {
  ASSIGN_OR_RETURN(DatasetRef ref, ParseDatasetRef(a.positionals[0], false));
  if (a.Has("version")) {
    if (ref.explicit_version)
      return Status::InvalidArgument("give the version as NAME@V or --version, not both");
    ASSIGN_OR_RETURN(auto v, OptionalVersion(a));
    ref.version = std::to_string(*v);
    ref.explicit_version = true;
  }
  return ref;
}

int CmdDatasetsRows(Context& ctx, const ParsedArgs& a) {
  auto ref = RefWithVersionFlag(a);
  if (!ref.ok()) return UsageProblem(ref.status());
  auto query = RowsQuery(a);
  if (!query.ok()) return UsageProblem(query.status());
  auto resp = ctx.Call("GET", ctx.ProjectPath(VersionPath(*ref) + "/rows?" + *query));
  if (!resp) return kExitError;
  if (ctx.json) {
    PrintJson(*resp);
    return kExitOk;
  }
  PrintRowsTable(*resp);
  const Json& rows = Member(*resp, "rows");
  const int64_t shown = rows.is_array() ? static_cast<int64_t>(rows.size()) : 0;
  const int64_t offset = GetIntOr(*resp, "offset", 0);
  const int64_t first = shown > 0 ? offset + 1 : offset;
  std::string what = "of " + MemberText(*resp, "total");
  if (a.Has("sample")) what += " sampled";
  if (a.Has("filter")) what += " matching";
  Out("(" + SanitizeCell(GetStringOr(*resp, "name", ref->name)) + " v" + VersionText(*resp) + ": rows " +
      std::to_string(first) + "-" + std::to_string(offset + shown) + " " + what + ")\n");
  return kExitOk;
}

// --- datasets profile

int CmdDatasetsProfile(Context& ctx, const ParsedArgs& a) {
  auto ref = ParseDatasetRef(a.positionals[0], false);
  if (!ref.ok()) return UsageProblem(ref.status());
  std::string path = VersionPath(*ref) + "/profile";
  if (a.Has("target")) path += "?target=" + UrlEncode(a.Get("target"));
  auto p = ctx.Call("GET", ctx.ProjectPath(path));
  if (!p) return kExitError;
  if (ctx.json) {
    PrintJson(*p);
    return kExitOk;
  }
  std::string head = SanitizeCell(GetStringOr(*p, "name", ref->name)) + " v" + VersionText(*p) + ": " +
                     MemberText(*p, "rows") + " rows, " + MemberText(*p, "num_columns") + " columns";
  const Json& dups = Member(*p, "duplicate_rows");
  if (dups.is_number()) {
    head += ", " + std::string(Member(*p, "duplicate_rows_approximate") == true ? "~" : "") +
            FormatCell(dups) + " duplicate rows";
  }
  const Json& target = Member(*p, "target");
  if (target.is_string()) head += ", target " + SanitizeCell(target.get<std::string>());
  Out(head + "\n");
  TablePrinter t({"COLUMN", "TYPE", "MISSING", "DISTINCT", "MIN", "MAX", "MEAN", "KINDS"}, 40);
  for (const auto& c : Member(*p, "columns")) {
    if (!c.is_object()) continue;
    std::string distinct = Stat(Member(c, "distinct"));
    if (Member(c, "distinct_approximate") == true) distinct = "~" + distinct;
    std::string missing = MemberText(c, "missing");
    const Json& frac = Member(c, "missing_fraction");
    if (frac.is_number()) missing = Percent(frac.get<double>());
    std::string mn = Stat(Member(c, "min")), mx = Stat(Member(c, "max"));
    const Json& len = Member(c, "length");
    if (mn.empty() && len.is_object()) {  // strings: their lengths
      mn = "len " + Stat(Member(len, "min"));
      mx = "len " + Stat(Member(len, "max"));
    }
    t.AddRow({GetStringOr(c, "name", "?"), GetStringOr(c, "type", ""), missing, distinct, mn, mx,
              Stat(Member(c, "mean")), JoinStrings(Member(c, "semantic_kinds"), ",")});
  }
  Out(t.Render());
  const Json& warnings = Member(*p, "warnings");
  if (warnings.is_array() && !warnings.empty()) {
    Out("\nwarnings:\n");
    for (const auto& w : warnings) {
      std::string cols = JoinStrings(Member(w, "columns"), ", ");
      Out("  [" + SanitizeCell(GetStringOr(w, "kind", "?")) + "] " +
          (cols.empty() ? "" : SanitizeCell(cols) + ": ") + SanitizeCell(GetStringOr(w, "message", "")) +
          "\n");
    }
  } else {
    Out("\nno warnings\n");
  }
  return kExitOk;
}

// --- downloads: export and quarantine

}  // namespace

// Streams GET `path` to `out` ("-" = stdout; a file is written to a temp name and renamed when complete,
// so a failed download leaves nothing behind). Returns the bytes written, or nullopt after printing why.
std::optional<uint64_t> DownloadTo(Context& ctx, const std::string& path, const std::string& out,
                                   const std::string& label) {
  std::FILE* f = stdout;
  std::string tmp;
  if (out != "-") {
    tmp = out + ".part-" + std::to_string(::getpid());
    f = std::fopen(tmp.c_str(), "wb");
    if (!f) {
      Err("error: cannot write " + SanitizeCell(out) + ": " + std::strerror(errno) + "\n");
      return std::nullopt;
    }
  }
  auto discard = [&] {
    if (!tmp.empty()) {
      std::fclose(f);
      std::remove(tmp.c_str());
    }
  };
  ProgressLine bar(/*plain_lines_when_not_tty=*/false);
  DownloadProgressFn on_progress = [&](uint64_t got, uint64_t total) {
    bar.Update(total > 0 ? static_cast<double>(got) / static_cast<double>(total) : 0.0,
               label + "  " + HumanBytes(got) + (total > 0 ? " / " + HumanBytes(total) : ""));
  };
  DownloadSink sink = [f](std::string_view chunk) {
    return std::fwrite(chunk.data(), 1, chunk.size(), f) == chunk.size();
  };
  auto r = Download(HttpClientOptions{ctx.conn.url, ctx.conn.token}, path, sink, on_progress);
  bar.Finish();
  if (!r.ok()) {
    discard();
    PrintStatusError(r.status());
    return std::nullopt;
  }
  if (!r->ok()) {
    discard();
    ctx.PrintApiError(HttpResult{r->status, r->content_type, r->error_body});
    return std::nullopt;
  }
  if (tmp.empty()) {
    if (std::fflush(stdout) != 0) {
      Err(std::string("error: writing to stdout failed: ") + std::strerror(errno) + "\n");
      return std::nullopt;
    }
    return r->bytes_written;
  }
  const bool flushed = std::fflush(f) == 0 && ::fsync(::fileno(f)) == 0;
  const int close_rc = std::fclose(f);
  if (!flushed || close_rc != 0 || std::rename(tmp.c_str(), out.c_str()) != 0) {
    Err("error: cannot write " + SanitizeCell(out) + ": " + std::strerror(errno) + "\n");
    std::remove(tmp.c_str());
    return std::nullopt;
  }
  return r->bytes_written;
}

namespace {

int CmdDatasetsExport(Context& ctx, const ParsedArgs& a) {
  auto ref = ParseDatasetRef(a.positionals[0], false);
  if (!ref.ok()) return UsageProblem(ref.status());
  const std::string out = a.Get("output", "-");
  std::string format = a.Get("format", "");
  if (format.empty()) format = FormatFromExtension(out) == "jsonl" ? "jsonl" : "csv";
  if (format != "csv" && format != "jsonl") {
    return UsageProblem(
        Status::InvalidArgument("--format must be csv or jsonl (got '" + SanitizeCell(format) + "')"));
  }
  auto bytes = DownloadTo(ctx, ctx.ProjectPath(VersionPath(*ref) + "/export?format=" + format), out,
                          "exporting " + ref->name);
  if (!bytes) return kExitError;
  if (out == "-") return kExitOk;
  if (ctx.json) {
    PrintJson({{"name", ref->name},
               {"version", ref->version},
               {"format", format},
               {"path", out},
               {"bytes", *bytes}});
  } else {
    Out("Exported " + SanitizeCell(ref->name) + "@" + ref->version + " as " + format + " to " +
        SanitizeCell(out) + " (" + HumanBytes(*bytes) + ")\n");
  }
  return kExitOk;
}

int CmdDatasetsQuarantine(Context& ctx, const ParsedArgs& a) {
  auto ref = ParseDatasetRef(a.positionals[0], true);
  if (!ref.ok()) return UsageProblem(ref.status());
  const std::string out = a.Get("output", "-");
  auto bytes =
      DownloadTo(ctx, ctx.ProjectPath(VersionPath(*ref) + "/quarantine"), out, "downloading bad rows");
  if (!bytes) return kExitError;
  if (out != "-") {
    Out("Wrote the quarantined rows of " + SanitizeCell(ref->name) + "@" + ref->version + " to " +
        SanitizeCell(out) + " (" + HumanBytes(*bytes) + "; JSON lines {line, reason, raw})\n");
  }
  return kExitOk;
}

// --- datasets delete / settings / check

int CmdDatasetsDelete(Context& ctx, const ParsedArgs& a) {
  auto ref = ParseDatasetRef(a.positionals[0], true);
  if (!ref.ok()) return UsageProblem(ref.status());
  auto resp = ctx.Call("DELETE", ctx.ProjectPath(VersionPath(*ref)));
  if (!resp) return kExitError;
  if (ctx.json)
    PrintJson({{"name", ref->name}, {"version", std::stoll(ref->version)}, {"deleted", true}});
  else
    Out("Deleted " + SanitizeCell(ref->name) + " version " + ref->version + "\n");
  return kExitOk;
}

Result<Json> ReadJsonFile(const std::string& path, const std::string& what) {
  ASSIGN_OR_RETURN(std::string text, ReadFileOrStdin(path, what));
  auto doc = ParseJson(text, 64);
  if (!doc.ok()) return doc.TakeStatus().Annotate(what + " " + path);
  return std::move(*doc);
}

void PrintSettings(const Json& s) {
  TablePrinter t({"SETTING", "VALUE"}, 100);
  auto text = [&](const char* k) { return FormatCell(Member(s, k)); };
  t.AddRow({"target", Member(s, "target").is_null() ? "(none)" : text("target")});
  const Json& contract = Member(s, "contract");
  std::string c = "(none)";
  if (contract.is_object() && !contract.empty()) {
    const Json& cols = Member(contract, "columns");
    c = std::to_string(cols.is_object() ? cols.size() : 0) + " column rules";
    if (contract.contains("rows")) c += ", row count rule";
    if (contract.contains("freshness")) c += ", freshness rule";
  }
  t.AddRow({"contract", c});
  t.AddRow({"enforce_contract", text("enforce_contract")});
  std::string tags;
  const Json& tag_map = Member(s, "tags");
  if (tag_map.is_object()) {
    for (const auto& [col, tag] : tag_map.items())
      tags += (tags.empty() ? "" : ", ") + col + "=" + FormatCell(tag);
  }
  t.AddRow({"tags", tags.empty() ? "(none)" : tags});
  const Json& days = Member(s, "retention_days");
  t.AddRow({"retention_days", days == 0 ? "0 (keep forever)" : FormatCell(days)});
  t.AddRow({"description", text("description")});
  Out(t.Render());
}

int CmdDatasetsSettings(Context& ctx, const ParsedArgs& a) {
  const std::string& name = a.positionals[0];
  const std::string path = ctx.ProjectPath("/datasets/" + UrlEncode(name) + "/settings");
  std::optional<Json> contract;
  if (a.Has("contract")) {
    auto c = ReadJsonFile(a.Get("contract"), "contract");
    if (!c.ok()) return UsageProblem(c.status());
    contract = std::move(*c);
  }
  if (!ChangesDatasetSettings(a)) {
    auto s = ctx.Call("GET", path);
    if (!s) return kExitError;
    if (ctx.json)
      PrintJson(*s);
    else
      PrintSettings(*s);
    return kExitOk;
  }
  Json current = Json::object();
  if (!a.Has("set")) {
    auto s = ctx.Call("GET", path);
    if (!s) return kExitError;
    current = std::move(*s);
  }
  auto merged = MergeDatasetSettings(std::move(current), a, contract);
  if (!merged.ok()) return UsageProblem(merged.status());
  auto saved = ctx.Call("PUT", path, &*merged);
  if (!saved) return kExitError;
  if (ctx.json) {
    PrintJson(*saved);
  } else {
    Out("Saved the settings of " + SanitizeCell(name) + "\n");
    PrintSettings(*saved);
  }
  return kExitOk;
}

int CmdDatasetsCheck(Context& ctx, const ParsedArgs& a) {
  auto ref = ParseDatasetRef(a.positionals[0], false);
  if (!ref.ok()) return UsageProblem(ref.status());
  Json body = Json::object();
  if (a.Has("contract")) {
    auto c = ReadJsonFile(a.Get("contract"), "contract");
    if (!c.ok()) return UsageProblem(c.status());
    body["contract"] = c->is_object() && c->contains("contract") ? (*c)["contract"] : *c;
  }
  auto report = ctx.Call("POST", ctx.ProjectPath(VersionPath(*ref) + "/check"), &body);
  if (!report) return kExitError;
  const bool passed = Member(*report, "passed") == true;
  if (ctx.json) {
    PrintJson(*report);
    return passed ? kExitOk : kExitError;
  }
  Out(std::string(passed ? "passed" : "FAILED") + ": " + SanitizeCell(GetStringOr(*report, "summary", "")) +
      "\n");
  const Json& checks = Member(*report, "checks");
  if (checks.is_array() && !checks.empty()) {
    TablePrinter t({"RULE", "COLUMN", "RESULT", "FAILING ROWS", "MESSAGE"}, 80);
    for (const auto& c : checks) {
      t.AddRow({GetStringOr(c, "rule", ""), GetStringOr(c, "column", ""),
                Member(c, "passed") == true ? "ok" : "FAIL", MemberText(c, "failing_rows"),
                GetStringOr(c, "message", "")});
    }
    Out(t.Render());
    for (const auto& c : checks) {
      if (Member(c, "passed") == true) continue;
      const Json& ex = Member(c, "examples");
      if (!ex.is_array() || ex.empty()) continue;
      std::string line =
          "  " + GetStringOr(c, "column", "(dataset)") + "." + GetStringOr(c, "rule", "") + ":";
      for (const auto& e : ex) line += " row " + MemberText(e, "row") + "=" + MemberText(e, "value") + ";";
      line.pop_back();
      Out(SanitizeCell(line, 200) + "\n");
    }
  }
  if (!passed) Err("error: " + SanitizeCell(ref->name) + "@" + ref->version + " breaks the contract\n");
  return passed ? kExitOk : kExitError;
}

// --- recipes

int CmdRecipesSteps(Context& ctx, const ParsedArgs& a) {
  auto resp = ctx.Call("GET", "/api/v1/recipe-steps");
  if (!resp) return kExitError;
  const Json& steps = Member(*resp, "steps");
  auto op_of = [](const Json& s) { return GetStringOr(s, "name", GetStringOr(s, "op", "?")); };
  auto params_of = [](const Json& s) -> const Json& {
    const Json& p = Member(s, "params");
    return p.is_null() ? Member(s, "parameters") : p;
  };
  if (!a.positionals.empty()) {
    const std::string& want = a.positionals[0];
    for (const auto& s : steps) {
      if (op_of(s) != want) continue;
      if (ctx.json) {
        PrintJson(s);
        return kExitOk;
      }
      Out(SanitizeCell(want) + ": " +
          SanitizeCell(GetStringOr(s, "summary", GetStringOr(s, "description", ""))) + "\n");
      const Json& schema = params_of(s);
      const Json& props = Member(schema, "properties");
      std::set<std::string> required;
      for (const auto& r : Member(schema, "required")) {
        if (r.is_string()) required.insert(r.get<std::string>());
      }
      if (!props.is_object() || props.empty()) {
        Out("(no parameters)\n");
        return kExitOk;
      }
      TablePrinter t({"PARAM", "TYPE", "REQUIRED", "DEFAULT", "DESCRIPTION"}, 80);
      for (const auto& [k, v] : props.items()) {
        std::string type = FormatCell(Member(v, "type"));
        if (Member(v, "enum").is_array()) type = JoinStrings(Member(v, "enum"), "|");
        t.AddRow({k, type, required.count(k) ? "yes" : "", FormatCell(Member(v, "default")),
                  GetStringOr(v, "description", "")});
      }
      Out(t.Render());
      return kExitOk;
    }
    Err("error: no recipe step named '" + SanitizeCell(want) + "'; `lathe recipes steps` lists them\n");
    return kExitError;
  }
  if (ctx.json) {
    PrintJson(*resp);
    return kExitOk;
  }
  TablePrinter t({"STEP", "ROW-WISE", "PARAMS", "SUMMARY"}, 70);
  for (const auto& s : steps) {
    std::string params;
    const Json& schema = params_of(s);
    std::set<std::string> required;
    for (const auto& r : Member(schema, "required")) {
      if (r.is_string()) required.insert(r.get<std::string>());
    }
    const Json& props = Member(schema, "properties");
    if (props.is_object()) {
      for (const auto& [k, _] : props.items())
        params += (params.empty() ? "" : ",") + k + (required.count(k) ? "*" : "");
    }
    const Json& rw = Member(s, "row_wise");
    t.AddRow({op_of(s), rw.is_boolean() ? (rw.get<bool>() ? "yes" : "no") : "", params,
              GetStringOr(s, "summary", GetStringOr(s, "description", ""))});
  }
  Out(t.Render());
  Out("(" + std::to_string(steps.is_array() ? steps.size() : 0) +
      " steps; * = required parameter; `lathe recipes steps STEP` shows one step's parameters)\n");
  return kExitOk;
}

int CmdRecipesList(Context& ctx, const ParsedArgs&) {
  return ListProjectCollection(ctx, "recipes",
                               {{"NAME", "name"},
                                {"VERSION", "version"},
                                {"STEPS", "steps", CountOrValue},
                                {"DESCRIPTION", "description"},
                                {"UPDATED", "updated_at"}});
}

void PrintSteps(const Json& steps) {
  TablePrinter t({"#", "OP", "PARAMS"}, 100);
  size_t i = 0;
  for (const auto& s : steps)
    t.AddRow({std::to_string(++i), GetStringOr(s, "op", "?"), FormatCell(Member(s, "params"))});
  Out(t.Render());
}

int CmdRecipesShow(Context& ctx, const ParsedArgs& a) {
  auto version = OptionalVersion(a);
  if (!version.ok()) return UsageProblem(version.status());
  std::string path = ctx.ProjectPath("/recipes/" + UrlEncode(a.positionals[0]));
  if (version->has_value()) path += "?version=" + std::to_string(**version);
  auto r = ctx.Call("GET", path);
  if (!r) return kExitError;
  if (ctx.json) {
    PrintJson(*r);
    return kExitOk;
  }
  Out("Recipe " + SanitizeCell(GetStringOr(*r, "name", a.positionals[0])) + " version " + VersionText(*r) +
      " (of " + MemberText(*r, "versions") + ")\n");
  const std::string desc = GetStringOr(*r, "description", "");
  if (!desc.empty()) Out(SanitizeCell(desc) + "\n");
  PrintSteps(Member(*r, "steps"));
  return kExitOk;
}

int CmdRecipesSave(Context& ctx, const ParsedArgs& a) {
  if (!a.Has("steps")) return UsageProblem(Status::InvalidArgument("--steps FILE.json is required"));
  auto text = ReadFileOrStdin(a.Get("steps"), "steps file");
  if (!text.ok()) return UsageProblem(text.status());
  auto steps = ParseStepsDocument(*text);
  if (!steps.ok()) return UsageProblem(steps.status());
  Json body = {{"name", a.positionals[0]}, {"steps", *steps}};
  if (a.Has("description")) body["description"] = a.Get("description");
  auto r = ctx.Call("POST", ctx.ProjectPath("/recipes"), &body);
  if (!r) return kExitError;
  if (ctx.json)
    PrintJson(*r);
  else
    Out("Saved recipe " + SanitizeCell(GetStringOr(*r, "name", a.positionals[0])) + " version " +
        VersionText(*r) + " (" + std::to_string(steps->size()) + " steps)\n");
  return kExitOk;
}

int CmdRecipesDelete(Context& ctx, const ParsedArgs& a) {
  auto r = ctx.Call("DELETE", ctx.ProjectPath("/recipes/" + UrlEncode(a.positionals[0])));
  if (!r) return kExitError;
  if (ctx.json)
    PrintJson({{"name", a.positionals[0]}, {"deleted", true}});
  else
    Out("Deleted recipe " + SanitizeCell(a.positionals[0]) + "\n");
  return kExitOk;
}

// {"steps": […]} from --steps FILE, or {"recipe": R[, "recipe_version": N]} from --recipe.
Result<Json> RecipeSelection(const ParsedArgs& a) {
  if (a.Has("steps") == a.Has("recipe")) {
    return Status::InvalidArgument(
        "give the steps with --steps FILE.json or name a saved recipe with --recipe R");
  }
  if (a.Has("steps")) {
    if (a.Has("recipe-version")) return Status::InvalidArgument("--recipe-version goes with --recipe");
    ASSIGN_OR_RETURN(std::string text, ReadFileOrStdin(a.Get("steps"), "steps file"));
    ASSIGN_OR_RETURN(Json steps, ParseStepsDocument(text));
    return Json{{"steps", steps}};
  }
  Json body = {{"recipe", a.Get("recipe")}};
  ASSIGN_OR_RETURN(auto v, OptionalVersion(a, "recipe-version"));
  if (v.has_value()) body["recipe_version"] = *v;
  return body;
}

int CmdRecipesPreview(Context& ctx, const ParsedArgs& a) {
  auto ref = ParseDatasetRef(a.positionals[0], false);
  if (!ref.ok()) return UsageProblem(ref.status());
  auto body = RecipeSelection(a);
  if (!body.ok()) return UsageProblem(body.status());
  auto limit = ParseIntFlag("limit", a.Get("limit", "20"), 0, 100000);
  if (!limit.ok()) return UsageProblem(limit.status());
  (*body)["limit"] = *limit;
  auto r = ctx.Call("POST", ctx.ProjectPath(VersionPath(*ref) + "/preview"), &*body);
  if (!r) return kExitError;
  if (ctx.json) {
    PrintJson(*r);
    return kExitOk;
  }
  TablePrinter steps({"#", "STEP", "ROWS IN", "ROWS OUT", "COLUMNS"});
  size_t i = 0;
  for (const auto& s : Member(*r, "steps")) {
    steps.AddRow({std::to_string(++i), GetStringOr(s, "op", "?"), MemberText(s, "rows_in"),
                  MemberText(s, "rows_out"), MemberText(s, "columns_out")});
  }
  Out(steps.Render() + "\n");
  PrintRowsTable(*r);
  const Json& rows = Member(*r, "rows");
  std::string foot = "(first " + std::to_string(rows.is_array() ? rows.size() : 0) + " of " +
                     MemberText(*r, "rows_out") + " rows after the steps";
  if (Member(*r, "sampled") == true)
    foot += "; previewed on the first " + MemberText(*r, "input_rows") + " input rows";
  Out(foot + ")\n");
  return kExitOk;
}

int CmdRecipesApply(Context& ctx, const ParsedArgs& a) {
  auto ref = ParseDatasetRef(a.positionals[0], false);
  if (!ref.ok()) return UsageProblem(ref.status());
  auto body = RecipeSelection(a);
  if (!body.ok()) return UsageProblem(body.status());
  if (a.Has("output")) (*body)["output"] = a.Get("output");
  bool queued = false;
  auto result =
      CallMaybeJob(ctx, "POST", ctx.ProjectPath(VersionPath(*ref) + "/apply"), &*body, a.Has("no-wait"),
                   "Applying to " + SanitizeCell(ref->name) + "@" + ref->version, &queued);
  if (!result) return kExitError;
  if (queued) return kExitOk;
  if (ctx.json) {
    PrintJson(*result);
    return kExitOk;
  }
  PrintNewVersion(*result, "Created", "", 0);
  const Json& parent = Member(Member(*result, "lineage"), "parent");
  if (parent.is_object()) {
    Out("(from " + SanitizeCell(GetStringOr(parent, "dataset", "?")) + "@" + MemberText(parent, "version") +
        ")\n");
  }
  return kExitOk;
}

// --- connections

std::string ConnectionTarget(const Json& c) {
  for (const char* k : {"dsn", "path", "url"}) {
    if (Member(c, k).is_string()) return Member(c, k).get<std::string>();
  }
  return "";
}

std::string ConnectionSecrets(const Json& c) {
  std::string s;
  if (Member(c, "has_password") == true) s = "password";
  const Json& h = Member(c, "header_names");
  if (h.is_array() && !h.empty())
    s += (s.empty() ? "" : ", ") + std::string("headers: ") + JoinStrings(h, ",");
  return s.empty() ? "-" : s + " (encrypted)";
}

int CmdConnectionsList(Context& ctx, const ParsedArgs&) {
  auto resp = ctx.Call("GET", ctx.ProjectPath("/connections"));
  if (!resp) return kExitError;
  if (ctx.json) {
    PrintJson(*resp);
    return kExitOk;
  }
  const Json& list = Member(*resp, "connections");
  if (!list.is_array() || list.empty()) {
    Out("No connections in project " + ctx.project + "\n");
    return kExitOk;
  }
  TablePrinter t({"NAME", "KIND", "TARGET", "QUERY", "SECRETS", "UPDATED"}, 50);
  for (const auto& c : list) {
    t.AddRow({GetStringOr(c, "name", "?"), GetStringOr(c, "kind", ""), ConnectionTarget(c),
              GetStringOr(c, "query", ""), ConnectionSecrets(c), GetStringOr(c, "updated_at", "")});
  }
  Out(t.Render());
  return kExitOk;
}

int CmdConnectionsShow(Context& ctx, const ParsedArgs& a) {
  auto c = ctx.Call("GET", ctx.ProjectPath("/connections/" + UrlEncode(a.positionals[0])));
  if (!c) return kExitError;
  if (ctx.json)
    PrintJson(*c);
  else
    PrintKeyValues(*c);
  return kExitOk;
}

int CmdConnectionsSave(Context& ctx, const ParsedArgs& a) {
  std::optional<std::string> password;
  const bool postgres = a.Get("kind") == "postgres";
  if (a.Has("password-stdin") || (postgres && ctx.env("LATHE_SOURCE_PASSWORD"))) {
    if (!postgres) {
      return UsageProblem(Status::InvalidArgument("--password-stdin applies to postgres connections"));
    }
    auto pw = ReadSecret(a, ctx.env, "password-stdin", "LATHE_SOURCE_PASSWORD", "Database password");
    if (!pw.ok()) return UsageProblem(pw.status());
    password = std::move(*pw);
  }
  auto body = ConnectionBody(a, password);
  if (!body.ok()) return UsageProblem(body.status());
  auto c = ctx.Call("PUT", ctx.ProjectPath("/connections/" + UrlEncode(a.positionals[0])), &*body);
  if (!c) return kExitError;
  if (ctx.json) {
    PrintJson(*c);
    return kExitOk;
  }
  std::string line = "Saved connection " + SanitizeCell(a.positionals[0]) + " (" +
                     SanitizeCell(GetStringOr(*c, "kind", a.Get("kind"))) + ", version " + VersionText(*c) +
                     ")";
  const std::string secrets = ConnectionSecrets(*c);
  if (secrets != "-") line += "; secrets stored encrypted: " + secrets.substr(0, secrets.size() - 12);
  Out(line + "\n");
  return kExitOk;
}

int CmdConnectionsDelete(Context& ctx, const ParsedArgs& a) {
  auto r = ctx.Call("DELETE", ctx.ProjectPath("/connections/" + UrlEncode(a.positionals[0])));
  if (!r) return kExitError;
  if (ctx.json)
    PrintJson({{"name", a.positionals[0]}, {"deleted", true}});
  else
    Out("Deleted connection " + SanitizeCell(a.positionals[0]) + "\n");
  return kExitOk;
}

// --- labels

std::string QueuePath(Context& ctx, const std::string& queue, const std::string& suffix = "") {
  return ctx.ProjectPath("/label-queues/" + UrlEncode(queue) + suffix);
}

int CmdLabelsCreate(Context& ctx, const ParsedArgs& a) {
  for (const char* f : {"dataset", "label-column"}) {
    if (!a.Has(f)) return UsageProblem(Status::InvalidArgument(std::string("--") + f + " is required"));
  }
  auto ref = ParseDatasetRef(a.Get("dataset"), false);
  if (!ref.ok()) return UsageProblem(ref.status());
  Json body = {{"name", a.positionals[0]}, {"dataset", ref->name}, {"label_column", a.Get("label-column")}};
  if (ref->explicit_version && ref->version != "latest") body["version"] = std::stoll(ref->version);
  if (a.Has("labels")) {
    auto labels = SplitList("labels", a.Get("labels"));
    if (!labels.ok()) return UsageProblem(labels.status());
    body["labels"] = *labels;
  }
  if (a.Has("per-row")) {
    auto n = ParseIntFlag("per-row", a.Get("per-row"), 1, 10);
    if (!n.ok()) return UsageProblem(n.status());
    body["labels_per_row"] = *n;
  }
  if (a.Has("instructions")) body["instructions"] = a.Get("instructions");
  auto q = ctx.Call("POST", ctx.ProjectPath("/label-queues"), &body);
  if (!q) return kExitError;
  if (ctx.json) {
    PrintJson(*q);
    return kExitOk;
  }
  Out("Created label queue " + SanitizeCell(a.positionals[0]) + " on " +
      SanitizeCell(GetStringOr(*q, "dataset", "")) + "@" + VersionText(*q) + ", label column " +
      SanitizeCell(GetStringOr(*q, "label_column", "")) + "\n");
  Err("Next: `lathe labels next " + SanitizeCell(a.positionals[0]) + "`\n");
  return kExitOk;
}

int CmdLabelsNext(Context& ctx, const ParsedArgs& a) {
  auto limit = ParseIntFlag("limit", a.Get("limit", "10"), 1, 1000);
  if (!limit.ok()) return UsageProblem(limit.status());
  auto r = ctx.Call("GET", QueuePath(ctx, a.positionals[0], "/next?limit=" + std::to_string(*limit)));
  if (!r) return kExitError;
  if (ctx.json) {
    PrintJson(*r);
    return kExitOk;
  }
  const Json& rows = Member(*r, "rows");
  if (!rows.is_array() || rows.empty()) {
    Out("No rows left for you to label in " + SanitizeCell(a.positionals[0]) + "\n");
    return kExitOk;
  }
  const std::string instructions = GetStringOr(*r, "instructions", "");
  if (!instructions.empty()) Out(SanitizeCell(instructions) + "\n");
  const Json& labels = Member(*r, "labels");
  if (labels.is_array() && !labels.empty()) Out("labels: " + SanitizeCell(JoinStrings(labels, ", ")) + "\n");
  std::vector<std::string> headers = {"ROW"};
  const Json& first = Member(rows[0], "values");
  if (first.is_object()) {
    for (const auto& [k, _] : first.items()) headers.push_back(k);
  }
  TablePrinter t(headers, 40);
  for (const auto& row : rows) {
    std::vector<std::string> cells = {MemberText(row, "row")};
    for (size_t i = 1; i < headers.size(); ++i)
      cells.push_back(FormatCell(Member(Member(row, "values"), headers[i]), kDataDigits));
    t.AddRow(std::move(cells));
  }
  Out(t.Render());
  Err("Label them with `lathe labels submit " + SanitizeCell(a.positionals[0]) + " ROW=LABEL …`\n");
  return kExitOk;
}

int CmdLabelsSubmit(Context& ctx, const ParsedArgs& a) {
  Json labels = Json::array();
  for (size_t i = 1; i < a.positionals.size(); ++i) {
    auto l = ParseLabelAssignment(a.positionals[i]);
    if (!l.ok()) return UsageProblem(l.status());
    labels.push_back(std::move(*l));
  }
  Json body = {{"labels", labels}};
  auto r = ctx.Call("POST", QueuePath(ctx, a.positionals[0], "/labels"), &body);
  if (!r) return kExitError;
  if (ctx.json)
    PrintJson(*r);
  else
    Out("Recorded " + MemberText(*r, "recorded") + " labels in " + SanitizeCell(a.positionals[0]) + "\n");
  return kExitOk;
}

int CmdLabelsStatus(Context& ctx, const ParsedArgs& a) {
  auto q = ctx.Call("GET", QueuePath(ctx, a.positionals[0]));
  if (!q) return kExitError;
  if (ctx.json) {
    PrintJson(*q);
    return kExitOk;
  }
  Out("Label queue " + SanitizeCell(GetStringOr(*q, "name", a.positionals[0])) + " on " +
      SanitizeCell(GetStringOr(*q, "dataset", "")) + "@" + VersionText(*q) + ", label column " +
      SanitizeCell(GetStringOr(*q, "label_column", "")) +
      (Member(*q, "finished") == true ? " (finished)" : "") + "\n");
  Out(MemberText(*q, "rows_done") + " of " + MemberText(*q, "rows_to_label") + " rows done (" +
      MemberText(*q, "labels_per_row") + " labels per row), " + MemberText(*q, "labels_recorded") +
      " labels recorded\n");
  const Json& labelers = Member(*q, "labelers");
  if (labelers.is_array() && !labelers.empty())
    PrintObjectTable(labelers, {{"LABELER", "user"}, {"LABELS", "labels"}});
  const Json& ag = Member(*q, "agreement");
  if (ag.is_object() && GetIntOr(ag, "rows_labeled_twice", 0) > 0) {
    std::string line =
        "agreement: " +
        Percent(Member(ag, "percent_agreement").is_number() ? ag["percent_agreement"].get<double>() : NAN) +
        " of " + MemberText(ag, "rows_labeled_twice") + " rows labeled more than once";
    const Json& kappa = Member(Member(ag, "cohens_kappa"), "value");
    if (kappa.is_number()) line += ", Cohen's kappa " + FormatSignificant(kappa.get<double>(), 3);
    Out(line + "\n");
  }
  return kExitOk;
}

int CmdLabelsFinish(Context& ctx, const ParsedArgs& a) {
  bool queued = false;
  auto result = CallMaybeJob(ctx, "POST", QueuePath(ctx, a.positionals[0], "/finish"), nullptr, false,
                             "Finishing " + SanitizeCell(a.positionals[0]), &queued);
  if (!result) return kExitError;
  if (ctx.json) {
    PrintJson(*result);
    return kExitOk;
  }
  PrintNewVersion(*result, "Created", "", 0);
  const Json& labeling = Member(Member(*result, "lineage"), "labeling");
  if (labeling.is_object())
    Out(MemberText(labeling, "rows_labeled") + " rows got their label from the queue\n");
  return kExitOk;
}

// --- datasets subjects / erase (privacy: one person's rows across versions)

// {"column","value","match"} from the flags; the value goes in a request body, never in a URL.
std::optional<Json> SubjectBody(const ParsedArgs& a) {
  if (!a.Has("column") || !a.Has("value")) {
    Err("error: --column and --value are required\n");
    return std::nullopt;
  }
  Json body = {{"column", a.Get("column")}, {"value", a.Get("value")}};
  if (a.Has("match")) body["match"] = a.Get("match");
  return body;
}

std::string SubjectPath(Context& ctx, const std::string& name, const std::string& suffix) {
  return ctx.ProjectPath("/datasets/" + UrlEncode(name) + suffix);
}

int CmdDatasetsSubjects(Context& ctx, const ParsedArgs& a) {
  auto body = SubjectBody(a);
  if (!body) return kExitUsage;
  std::string query;
  if (a.Has("limit")) query = "?limit=" + UrlEncode(a.Get("limit"));
  auto resp = ctx.Call("POST", SubjectPath(ctx, a.positionals[0], "/subjects" + query), &*body);
  if (!resp) return kExitError;
  if (ctx.json) {
    PrintJson(*resp);
    return kExitOk;
  }
  const Json& versions = Member(*resp, "versions");
  Out(MemberText(*resp, "total_matches") + " matching rows in " +
      std::to_string(versions.is_array() ? versions.size() : 0) + " versions\n");
  if (versions.is_array()) {
    for (const auto& v : versions) {
      Out("version " + MemberText(v, "version") + ": " + MemberText(v, "matches") + " rows\n");
      const Json& rows = Member(v, "rows");
      if (!rows.is_array()) continue;
      for (const auto& row : rows) {
        std::string line;
        const Json& values = Member(row, "values");
        if (values.is_object()) {
          for (const auto& [col, val] : values.items()) {
            line += (line.empty() ? "" : ", ") + SanitizeCell(col) + "=" + FormatCell(val);
          }
        }
        Out("  row " + MemberText(row, "row") + ": " + line + "\n");
      }
      const Json& lines = Member(v, "quarantined");
      if (lines.is_array() && !lines.empty()) Out("  + " + std::to_string(lines.size()) + " quarantined lines\n");
    }
  }
  if (Member(*resp, "message").is_string()) Err(GetStringOr(*resp, "message", "") + "\n");
  return kExitOk;
}

int CmdDatasetsErase(Context& ctx, const ParsedArgs& a) {
  auto body = SubjectBody(a);
  if (!body) return kExitUsage;
  if (a.Has("reason")) (*body)["reason"] = a.Get("reason");
  bool queued = false;
  auto result = CallMaybeJob(ctx, "POST", SubjectPath(ctx, a.positionals[0], "/erase"), &*body, a.Has("no-wait"),
                             "Erasing from " + SanitizeCell(a.positionals[0]), &queued);
  if (!result) return kExitError;
  if (queued) return kExitOk;
  if (ctx.json) {
    PrintJson(*result);
    return kExitOk;
  }
  Out(GetStringOr(*result, "message", "") + "\n");
  const Json& versions = Member(*result, "versions");
  if (versions.is_array()) {
    for (const auto& v : versions) {
      Out("  version " + MemberText(v, "version") + ": " + MemberText(v, "rows_removed") + " rows removed, " +
          MemberText(v, "rows_after") + " left\n");
    }
  }
  if (Member(*result, "new_version").is_number()) Out("new latest version " + MemberText(*result, "new_version") + "\n");
  const Json& models = Member(*result, "models_affected");
  if (models.is_array()) {
    for (const auto& m : models) {
      Out("retrain: model " + SanitizeCell(GetStringOr(m, "model", "?")) + " (trained on version " +
          MemberText(m, "dataset_version") + ")\n");
    }
  }
  Out("erasure " + SanitizeCell(GetStringOr(*result, "erasure", "")) + " recorded\n");
  return kExitOk;
}

std::vector<FlagSpec> With(std::vector<FlagSpec> a, const std::vector<FlagSpec>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

constexpr size_t kMany = 100000;

}  // namespace

std::vector<Command> DataCommands() {
  const FlagSpec no_wait = {"no-wait", "", "print the job id and return at once"};
  const FlagSpec output = {"output", "FILE", "write to FILE ('-' = stdout, the default)", false, 'o'};
  const std::vector<FlagSpec> recipe_choice = {
      {"steps", "FILE", "the steps: a JSON file with an array of {\"op\",\"params\"} ('-' = stdin)"},
      {"recipe", "R", "a saved recipe instead of --steps"},
      {"recipe-version", "N", "version of the saved recipe (default: latest)"}};
  return {
      {"datasets import", "FILE",
       "upload a file (streamed) as a new dataset version; waits for the import job",
       With({{"name", "N", "dataset name (default: the file name without extension)"}},
            With(ImportSpecFlags(), {no_wait})),
       1, 1, CmdDatasetsImport},
      {"datasets import-source", "NAME",
       "import from a database query or an HTTP URL as a new version of NAME (a job, with a progress bar)",
       With({{"connection", "C", "a saved connection (`lathe connections save`)"},
             {"query", "SQL", "the SQL query (for a postgres or sqlite connection)"},
             {"source-url", "URL", "the URL (for an http connection; replaces its saved URL)"},
             {"source", "JSON",
              "an inline source instead: {\"kind\":\"postgres\"|\"sqlite\"|\"http\", …}, or @FILE"},
             {"password-stdin", "",
              "read the database password of an inline --source from stdin "
              "(else $LATHE_SOURCE_PASSWORD)"}},
            With(ImportSpecFlags(),
                 {{"wait", "", "wait for the import job with a progress bar (the default)"}, no_wait})),
       1, 1, CmdDatasetsImportSource},
      {"datasets list", "", "list the project's datasets", {}, 0, 0, CmdDatasetsList},
      {"datasets show",
       "NAME[@V]",
       "show a dataset's versions, or one version's schema, lineage and quality",
       {},
       1,
       1,
       CmdDatasetsShow},
      {"datasets rows",
       "NAME[@V]",
       "print rows of a dataset version (default: latest), sorted, filtered or sampled",
       {{"version", "V", "dataset version (same as NAME@V)"},
        {"offset", "N", "first row, from 0 (default: 0)"},
        {"limit", "N", "rows to print, 1..100000 (default: 20)"},
        {"sort", "COLS", "sort by columns, '-' for descending: --sort -income,age"},
        {"filter", "EXPR", "keep rows where EXPR is true: --filter \"age > 30 and plan = 'pro'\""},
        {"sample", "N", "a random sample of N rows"},
        {"seed", "N", "the sample's seed (default: 42)"}},
       1,
       1,
       CmdDatasetsRows},
      {"datasets profile",
       "NAME[@V]",
       "per-column profile (type, missing, distinct, range, kinds) and warnings",
       {{"target", "COL",
         "check leakage and class balance against COL (default: the dataset's target setting)"}},
       1,
       1,
       CmdDatasetsProfile},
      {"datasets export",
       "NAME[@V]",
       "download a version as CSV or JSON Lines (streamed)",
       {{"format", "F", "csv|jsonl (default: from the -o extension, else csv)"}, output},
       1,
       1,
       CmdDatasetsExport},
      {"datasets quarantine",
       "NAME@V",
       "download the bad rows a quarantine import set aside (JSON lines {line, reason, raw})",
       {output},
       1,
       1,
       CmdDatasetsQuarantine},
      {"datasets delete",
       "NAME@V",
       "delete one version (refused while a registered model uses it)",
       {},
       1,
       1,
       CmdDatasetsDelete},
      {"datasets settings",
       "NAME",
       "show or change a dataset's settings: target, data contract, column tags, retention",
       {{"set", "JSON", "replace all settings with this JSON object"},
        {"target", "COL", "the target column ('' = none)"},
        {"contract", "FILE", "the data contract, a JSON file, checked on every new version"},
        {"no-contract", "", "remove the contract"},
        {"enforce", "", "refuse new versions that break the contract"},
        {"no-enforce", "", "only report contract failures"},
        {"tag", "COL=TAG", "tag a column public|internal|confidential|personal (none removes; repeatable)",
         true},
        {"retention-days", "N", "delete versions older than N days unless a model uses them (0 = keep)"},
        {"description", "TEXT", "a description of the dataset"}},
       1,
       1,
       CmdDatasetsSettings},
      {"datasets check",
       "NAME[@V]",
       "check a version against the dataset's contract (or --contract FILE); exit 1 if it fails",
       {{"contract", "FILE", "check this contract instead of the saved one"}},
       1,
       1,
       CmdDatasetsCheck},
      {"datasets subjects",
       "NAME",
       "one person's rows in every version of NAME, by an identifier column",
       {{"column", "C", "the identifier column (required)"},
        {"value", "V", "the person's identifier (required)"},
        {"match", "M", "exact|case_insensitive (default: exact)"},
        {"limit", "N", "rows to return at most (default: 1000)"}},
       1,
       1,
       CmdDatasetsSubjects},
      {"datasets erase",
       "NAME",
       "erase one person's rows from every version of NAME (versions are rewritten; models trained on them "
       "are listed)",
       {{"column", "C", "the identifier column (required)"},
        {"value", "V", "the person's identifier (required)"},
        {"match", "M", "exact|case_insensitive (default: exact)"},
        {"reason", "TEXT", "why, kept in the erasure record"},
        no_wait},
       1,
       1,
       CmdDatasetsErase},
      {"recipes steps",
       "[STEP]",
       "list the recipe steps, or one step's parameters",
       {},
       0,
       1,
       CmdRecipesSteps},
      {"recipes list", "", "list saved recipes", {}, 0, 0, CmdRecipesList},
      {"recipes show",
       "NAME",
       "show a saved recipe's steps",
       {{"version", "N", "recipe version (default: latest)"}},
       1,
       1,
       CmdRecipesShow},
      {"recipes save",
       "NAME",
       "save steps as recipe NAME (saving an existing name adds a version)",
       {recipe_choice[0], {"description", "TEXT", "what the recipe does"}},
       1,
       1,
       CmdRecipesSave},
      {"recipes delete", "NAME", "delete a saved recipe", {}, 1, 1, CmdRecipesDelete},
      {"recipes preview", "NAME[@V]",
       "try steps on a dataset version: per-step row counts, then the first rows",
       With(recipe_choice, {{"limit", "N", "rows to show, 0..100000 (default: 20)"}}), 1, 1,
       CmdRecipesPreview},
      {"recipes apply", "NAME[@V]",
       "apply steps to a dataset version, making a new version with lineage (waits with a progress bar)",
       With(recipe_choice,
            {{"output", "DS", "dataset to write the new version to (default: NAME)"}, no_wait}),
       1, 1, CmdRecipesApply},
      {"connections list", "", "list saved connections (never their secrets)", {}, 0, 0, CmdConnectionsList},
      {"connections show",
       "NAME",
       "show a saved connection (never its secrets)",
       {},
       1,
       1,
       CmdConnectionsShow},
      {"connections save",
       "NAME",
       "create or replace a saved connection; the password comes from stdin or $LATHE_SOURCE_PASSWORD, "
       "never a flag",
       {{"kind", "K", "postgres|sqlite|http (required)"},
        {"dsn", "DSN", "postgres: \"host=db dbname=shop user=reader\" or postgresql://… (no password)"},
        {"password-stdin", "", "postgres: read the password from the first line of stdin"},
        {"path", "P", "sqlite: the database file, under the server's --sqlite-dir"},
        {"url", "URL", "http: the URL (may also be given per import)"},
        {"header", "\"NAME: VALUE\"", "http: a request header, stored encrypted (repeatable)", true},
        {"format", "F", "http: auto|csv|json|jsonl (default: auto)"},
        {"records-pointer", "PTR", "http: JSON pointer to the records array, e.g. /data"},
        {"query", "SQL", "postgres/sqlite: the default query"},
        {"timeout-ms", "MS", "fetch timeout, 100..86400000"}},
       1,
       1,
       CmdConnectionsSave},
      {"connections delete",
       "NAME",
       "delete a saved connection and its secrets",
       {},
       1,
       1,
       CmdConnectionsDelete},
      {"labels create",
       "NAME",
       "create a label queue over the rows of a dataset version whose label column is missing",
       {{"dataset", "D[@V]", "dataset and version (required; default version: latest)"},
        {"label-column", "C", "the column to fill (required)"},
        {"labels", "A,B,…", "the allowed labels (default: any text)"},
        {"per-row", "N", "labels wanted per row, 1..10 (default: 1)"},
        {"instructions", "TEXT", "instructions shown to labelers"}},
       1,
       1,
       CmdLabelsCreate},
      {"labels next",
       "NAME",
       "show the next rows for you to label",
       {{"limit", "N", "rows, 1..1000 (default: 10)"}},
       1,
       1,
       CmdLabelsNext},
      {"labels submit",
       "NAME ROW=LABEL…",
       "record labels for rows (row numbers from `labels next`)",
       {},
       2,
       kMany,
       CmdLabelsSubmit},
      {"labels status", "NAME", "a queue's progress, labelers and agreement", {}, 1, 1, CmdLabelsStatus},
      {"labels finish",
       "NAME",
       "make a new dataset version with the agreed labels filled in",
       {},
       1,
       1,
       CmdLabelsFinish},
  };
}

}  // namespace lathe::cli
