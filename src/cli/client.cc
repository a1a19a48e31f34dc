#include "cli/client.h"

#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <functional>
#include <optional>
#include <set>
#include <thread>

#include "cli/client_args.h"
#include "cli/client_config.h"
#include "cli/http_client.h"
#include "cli/table_printer.h"
#include "common/json.h"

namespace lathe {
namespace cli {
namespace {

constexpr int kExitOk = 0;
constexpr int kExitError = 1;
constexpr int kExitUsage = 2;
constexpr size_t kMaxInstancesBytes = 256u << 20;
constexpr auto kPollInterval = std::chrono::milliseconds(200);
constexpr int kMaxConsecutivePollFailures = 10;
constexpr int kDataDigits = 10;

void Out(const std::string& s) { std::fwrite(s.data(), 1, s.size(), stdout); }
void Err(const std::string& s) { std::fwrite(s.data(), 1, s.size(), stderr); }
bool StderrIsTty() { return ::isatty(STDERR_FILENO) == 1; }

void PrintStatusError(const Status& s) {
  Err("error: " + SanitizeCell(s.message()) + "\n");
  for (const auto& d : s.details()) {
    std::string where = !d.field.empty() ? d.field
                        : d.line >= 0    ? "line " + std::to_string(d.line)
                                         : d.column;
    Err("  " + SanitizeCell(where) + ": " + SanitizeCell(d.message) + "\n");
  }
}

void PrintJson(const Json& j) { Out(DumpJson(j, 2) + "\n"); }

// ---------------------------------------------------------------------------------------------------------
// Progress display on stderr: a redrawn bar on a terminal, plain lines (or nothing) otherwise.

class ProgressLine {
 public:
  explicit ProgressLine(bool plain_lines_when_not_tty)
      : tty_(StderrIsTty()), plain_(plain_lines_when_not_tty) {}
  ~ProgressLine() { Finish(); }

  void Update(double fraction, const std::string& label) {
    if (!std::isfinite(fraction)) fraction = 0;
    fraction = std::min(1.0, std::max(0.0, fraction));
    const int percent = static_cast<int>(fraction * 100);
    const std::string clean = SanitizeCell(label, 60);
    if (tty_) {
      auto now = std::chrono::steady_clock::now();
      if (drawn_ && now - last_draw_ < std::chrono::milliseconds(100) && percent != 100) return;
      last_draw_ = now;
      constexpr int kWidth = 30;
      const int filled = static_cast<int>(fraction * kWidth);
      std::string bar = "\r[" + std::string(filled, '#') + std::string(kWidth - filled, '.') + "] ";
      char pct[8];
      std::snprintf(pct, sizeof(pct), "%3d%%", percent);
      bar += pct;
      bar += "  " + clean;
      if (bar == last_bar_) return;
      last_bar_ = bar;
      if (bar.size() < last_len_) bar += std::string(last_len_ - bar.size(), ' ');
      last_len_ = bar.size();
      Err(bar);
      std::fflush(stderr);
      drawn_ = true;
    } else if (plain_) {
      // One line per change of label or per 10% step, so logs stay short.
      if (clean != last_label_ || percent / 10 != last_decile_) {
        Err(std::to_string(percent) + "% " + clean + "\n");
        last_label_ = clean;
        last_decile_ = percent / 10;
      }
    }
  }

  void Finish() {
    if (tty_ && drawn_) {
      Err("\n");
      drawn_ = false;
    }
  }

 private:
  bool tty_;
  bool plain_;
  bool drawn_ = false;
  size_t last_len_ = 0;
  std::string last_bar_;
  std::chrono::steady_clock::time_point last_draw_{};
  std::string last_label_;
  int last_decile_ = -1;
};

std::string HumanBytes(uint64_t bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = static_cast<double>(bytes);
  int u = 0;
  while (v >= 1024 && u < 4) {
    v /= 1024;
    ++u;
  }
  char buf[32];
  if (u == 0)
    std::snprintf(buf, sizeof(buf), "%llu B", static_cast<unsigned long long>(bytes));
  else
    std::snprintf(buf, sizeof(buf), "%.1f %s", v, units[u]);
  return buf;
}

// ---------------------------------------------------------------------------------------------------------
// One invocation: the resolved server, project and output mode, and the HTTP client.

struct Context {
  EnvLookup env = ProcessEnv();
  std::string credentials_path;
  std::optional<Credentials> saved;
  Connection conn;
  std::string project = "default";
  bool json = false;
  std::unique_ptr<HttpClient> http_client;

  HttpClient& http() {
    if (!http_client) http_client = std::make_unique<HttpClient>(HttpClientOptions{conn.url, conn.token});
    return *http_client;
  }

  std::string ProjectPath(const std::string& suffix) const {
    return "/api/v1/projects/" + UrlEncode(project) + suffix;
  }

  Result<HttpResult> Raw(const std::string& method, const std::string& path, const Json* body = nullptr) {
    return http().Send(method, path, body ? DumpJson(*body) : std::string());
  }

  // Prints a non-2xx response as the server's problem+json: detail, each error entry, the request id.
  void PrintApiError(const HttpResult& r) const {
    auto doc = ParseJson(r.body, 64);
    if (!doc.ok() || !doc->is_object()) {
      std::string body = r.body.size() > 500 ? r.body.substr(0, 500) + "…" : r.body;
      Err("error: the server answered HTTP " + std::to_string(r.status) +
          (body.empty() ? "" : ": " + SanitizeCell(body)) + "\n");
      return;
    }
    const Json& p = *doc;
    std::string detail = GetStringOr(p, "detail", "");
    if (detail.empty()) detail = GetStringOr(p, "title", "HTTP " + std::to_string(r.status));
    Err("error: " + SanitizeCell(detail) + "\n");
    if (p.contains("errors") && p["errors"].is_array()) {
      for (const auto& e : p["errors"]) {
        if (!e.is_object()) continue;
        std::string where;
        if (e.contains("field"))
          where = FormatCell(e["field"]);
        else if (e.contains("line"))
          where = "line " + FormatCell(e["line"]);
        else if (e.contains("column"))
          where = "column " + FormatCell(e["column"]);
        std::string msg = GetStringOr(e, "message", "");
        std::string entry = where.empty() ? msg : where + ": " + msg;
        if (entry == detail || msg == detail) continue;  // already said by the detail line
        Err("  " + SanitizeCell(entry) + "\n");
      }
    }
    if (r.status == 401) Err("  hint: run `lathe login` (server " + conn.url + ")\n");
    std::string rid = GetStringOr(p, "request_id", "");
    if (!rid.empty()) Err("  request id: " + SanitizeCell(rid) + "\n");
  }

  // Parses a 2xx body; an empty body (204) is an empty object.
  std::optional<Json> ParseOk(const HttpResult& r) const {
    if (r.body.find_first_not_of(" \t\r\n") == std::string::npos) return Json::object();
    auto doc = ParseJson(r.body, 256);
    if (!doc.ok()) {
      Err("error: the server sent a response that is not JSON (HTTP " + std::to_string(r.status) +
          "): " + doc.status().message() + "\n");
      return std::nullopt;
    }
    return std::move(*doc);
  }

  // Sends the request; on a transport error or a non-2xx status prints the error and returns nullopt.
  std::optional<Json> Call(const std::string& method, const std::string& path, const Json* body = nullptr) {
    auto r = Raw(method, path, body);
    if (!r.ok()) {
      PrintStatusError(r.status());
      return std::nullopt;
    }
    if (!r->ok()) {
      PrintApiError(*r);
      return std::nullopt;
    }
    return ParseOk(*r);
  }
};

// ---------------------------------------------------------------------------------------------------------
// Output helpers.

struct ColumnSpec {
  std::string header;
  std::string key;
  std::function<std::string(const Json&)> format = nullptr;  // default FormatCell
};

std::string CompactMetrics(const Json& metrics) {
  if (!metrics.is_object()) return FormatCell(metrics);
  std::string out;
  for (const auto& [k, v] : metrics.items()) {
    if (!out.empty()) out += ' ';
    out += k + "=" + FormatCell(v);
  }
  return out;
}

std::string CountOrValue(const Json& v) { return v.is_array() ? std::to_string(v.size()) : FormatCell(v); }

// Table of an array of objects; columns that no row has are left out.
void PrintObjectTable(const Json& rows, const std::vector<ColumnSpec>& columns) {
  std::vector<const ColumnSpec*> used;
  for (const auto& c : columns) {
    for (const auto& row : rows) {
      if (row.is_object() && row.contains(c.key)) {
        used.push_back(&c);
        break;
      }
    }
  }
  if (used.empty()) {
    for (const auto& c : columns) used.push_back(&c);
  }
  std::vector<std::string> headers;
  for (const auto* c : used) headers.push_back(c->header);
  TablePrinter t(headers);
  for (const auto& row : rows) {
    std::vector<std::string> cells;
    for (const auto* c : used) {
      if (!row.is_object() || !row.contains(c->key)) {
        cells.emplace_back();
        continue;
      }
      cells.push_back(c->format ? c->format(row[c->key]) : FormatCell(row[c->key]));
    }
    t.AddRow(std::move(cells));
  }
  Out(t.Render());
}

// FIELD VALUE table of an object's members, except those in `skip`.
void PrintKeyValues(const Json& obj, const std::set<std::string>& skip = {}) {
  if (!obj.is_object()) {
    Out(DumpJson(obj, 2) + "\n");
    return;
  }
  TablePrinter t({"FIELD", "VALUE"}, 100);
  for (const auto& [k, v] : obj.items()) {
    if (skip.count(k)) continue;
    t.AddRow({k, FormatCell(v)});
  }
  Out(t.Render());
}

void PrintMetricsTable(const Json& metrics) {
  if (!metrics.is_object() || metrics.empty()) {
    Out("(no metrics)\n");
    return;
  }
  TablePrinter t({"METRIC", "VALUE"});
  for (const auto& [k, v] : metrics.items()) t.AddRow({k, FormatCell(v)});
  Out(t.Render());
}

const Json& Member(const Json& obj, const std::string& key) {
  static const Json kNull;
  if (!obj.is_object()) return kNull;
  auto it = obj.find(key);
  return it == obj.end() ? kNull : *it;
}

std::string MemberText(const Json& obj, const std::string& key) { return FormatCell(Member(obj, key)); }

// The id in a JSON member that may be a string or a number.
std::string IdText(const Json& v) { return v.is_string() ? v.get<std::string>() : FormatCell(v); }

// ---------------------------------------------------------------------------------------------------------
// Waiting on jobs.

bool IsTerminal(const std::string& state) {
  return state == "succeeded" || state == "failed" || state == "cancelled";
}

// Polls the job until it ends, showing progress on stderr. Returns the final job object, or nullopt after
// printing why polling gave up.
std::optional<Json> WaitForJob(Context& ctx, const std::string& job_id) {
  ProgressLine progress(/*plain_lines_when_not_tty=*/true);
  int failures = 0;
  const std::string path = "/api/v1/jobs/" + UrlEncode(job_id);
  while (true) {
    auto r = ctx.Raw("GET", path);
    if (!r.ok() || r->status >= 500) {
      // A restarting server or a flaky link should not abandon a long job; give up after a few seconds.
      if (++failures >= kMaxConsecutivePollFailures) {
        progress.Finish();
        if (!r.ok())
          PrintStatusError(r.status());
        else
          ctx.PrintApiError(*r);
        Err("  the job may still be running: `lathe jobs wait " + job_id + "`\n");
        return std::nullopt;
      }
      std::this_thread::sleep_for(kPollInterval * failures);
      continue;
    }
    failures = 0;
    if (!r->ok()) {
      progress.Finish();
      ctx.PrintApiError(*r);
      return std::nullopt;
    }
    auto job = ctx.ParseOk(*r);
    if (!job) return std::nullopt;
    const std::string state = GetStringOr(*job, "state", "");
    const double fraction =
        Member(*job, "progress").is_number() ? Member(*job, "progress").get<double>() : 0.0;
    std::string label = state;
    const std::string msg = GetStringOr(*job, "message", "");
    if (!msg.empty()) label += ": " + msg;
    if (IsTerminal(state)) {
      progress.Update(state == "succeeded" ? 1.0 : fraction, label);
      progress.Finish();
      return job;
    }
    progress.Update(fraction, label);
    std::this_thread::sleep_for(kPollInterval);
  }
}

std::string JobError(const Json& job) {
  for (const char* key : {"error", "message"}) {
    const Json& v = Member(job, key);
    if (v.is_string() && !v.get<std::string>().empty()) return v.get<std::string>();
    if (v.is_object()) {
      std::string d = GetStringOr(v, "message", GetStringOr(v, "detail", ""));
      if (!d.empty()) return d;
    }
  }
  return "no reason given";
}

// ---------------------------------------------------------------------------------------------------------
// Commands.

using Handler = int (*)(Context&, const ParsedArgs&);

struct Command {
  std::string name;  // "datasets import"
  std::string args;  // "FILE"
  std::string summary;
  std::vector<FlagSpec> flags;
  size_t min_positionals = 0;
  size_t max_positionals = 0;
  Handler run = nullptr;
};

Result<std::optional<int64_t>> OptionalVersion(const ParsedArgs& a, const std::string& flag = "version") {
  auto v = a.GetOptional(flag);
  if (!v) return std::optional<int64_t>();
  ASSIGN_OR_RETURN(int64_t n, ParseIntFlag(flag, *v, 1, INT64_MAX));
  return std::optional<int64_t>(n);
}

// --- login / logout

Result<std::string> ReadPassword(const ParsedArgs& a, const EnvLookup& env) {
  if (a.Has("password-stdin")) {
    std::string line;
    int c;
    while ((c = std::fgetc(stdin)) != EOF && c != '\n') {
      line += static_cast<char>(c);
      if (line.size() > 4096)
        return Status::InvalidArgument("the password on stdin is longer than 4096 bytes");
    }
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty()) return Status::InvalidArgument("--password-stdin: no password on stdin");
    return line;
  }
  if (auto p = env("LATHE_PASSWORD"); p && !p->empty()) return *p;
  if (::isatty(STDIN_FILENO) != 1) {
    return Status::InvalidArgument(
        "no password: use --password-stdin, set LATHE_PASSWORD, or run on a terminal");
  }
  Err("Password: ");
  termios old{};
  bool restore = ::tcgetattr(STDIN_FILENO, &old) == 0;
  if (restore) {
    termios quiet = old;
    quiet.c_lflag &= ~static_cast<tcflag_t>(ECHO);
    ::tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet);
  }
  std::string line;
  int c;
  while ((c = std::fgetc(stdin)) != EOF && c != '\n' && line.size() <= 4096) line += static_cast<char>(c);
  if (restore) ::tcsetattr(STDIN_FILENO, TCSAFLUSH, &old);
  Err("\n");
  if (line.empty()) return Status::InvalidArgument("no password entered");
  return line;
}

int CmdLogin(Context& ctx, const ParsedArgs& a) {
  const std::string user = a.Get("username", "admin");
  auto password = ReadPassword(a, ctx.env);
  if (!password.ok()) {
    PrintStatusError(password.status());
    return kExitUsage;
  }
  // Logging in never sends an old token.
  ctx.conn.token.clear();
  Json body = {{"username", user}, {"password", *password}};
  auto resp = ctx.Call("POST", "/api/v1/auth/login", &body);
  if (!resp) return kExitError;
  auto token = GetString(*resp, "token");
  if (!token.ok()) {
    Err("error: the server's login response has no token\n");
    return kExitError;
  }
  Status saved = SaveCredentials(ctx.credentials_path, {ctx.conn.url, *token});
  if (!saved.ok()) {
    PrintStatusError(saved);
    return kExitError;
  }
  if (ctx.json) {
    PrintJson(*resp);
  } else {
    Out("Logged in as " + SanitizeCell(GetStringOr(*resp, "user", user)) + " at " + ctx.conn.url + "\n");
    std::string exp = GetStringOr(*resp, "expires_at", "");
    if (!exp.empty())
      Err("Token saved to " + ctx.credentials_path + " (expires " + SanitizeCell(exp) + ")\n");
  }
  return kExitOk;
}

int CmdLogout(Context& ctx, const ParsedArgs&) {
  int rc = kExitOk;
  if (ctx.conn.token.empty()) {
    Out("Not logged in to " + ctx.conn.url + "\n");
  } else {
    auto r = ctx.Raw("POST", "/api/v1/auth/logout");
    if (!r.ok()) {
      PrintStatusError(r.status());
      rc = kExitError;
    } else if (!r->ok() && r->status != 401) {  // 401: the token had already expired; nothing to revoke
      ctx.PrintApiError(*r);
      rc = kExitError;
    }
  }
  // The saved token is removed even if the server could not be told, so it is not used again.
  if (ctx.saved && NormalizeUrl(ctx.saved->url) == ctx.conn.url) {
    Status s = RemoveCredentials(ctx.credentials_path);
    if (!s.ok()) {
      PrintStatusError(s);
      return kExitError;
    }
  }
  if (rc == kExitOk && !ctx.conn.token.empty()) Out("Logged out of " + ctx.conn.url + "\n");
  return rc;
}

// --- datasets

std::string FormatFromPath(const std::string& path) {
  size_t dot = path.rfind('.');
  size_t slash = path.rfind('/');
  if (dot == std::string::npos || (slash != std::string::npos && dot < slash)) return "csv";
  std::string ext = path.substr(dot + 1);
  for (auto& ch : ext) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  if (ext == "tsv" || ext == "tab") return "tsv";
  if (ext == "jsonl" || ext == "ndjson") return "jsonl";
  if (ext == "json") return "json";
  if (ext == "xlsx") return "xlsx";
  return "csv";
}

std::string ContentTypeFor(const std::string& format) {
  if (format == "tsv") return "text/tab-separated-values";
  if (format == "jsonl") return "application/x-ndjson";
  if (format == "json") return "application/json";
  if (format == "xlsx") return "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";
  return "text/csv";
}

std::string StemOf(const std::string& path) {
  size_t slash = path.rfind('/');
  std::string base = slash == std::string::npos ? path : path.substr(slash + 1);
  size_t dot = base.find('.');
  return dot == std::string::npos || dot == 0 ? base : base.substr(0, dot);
}

int CmdDatasetsImport(Context& ctx, const ParsedArgs& a) {
  const std::string file = a.positionals[0];
  const std::string name = a.Get("name", StemOf(file));
  const std::string format = a.Get("format", FormatFromPath(file));
  static const std::set<std::string> kFormats = {"csv", "tsv", "jsonl", "json", "xlsx"};
  if (!kFormats.count(format)) {
    Err("error: --format must be one of csv, tsv, jsonl, json, xlsx (got '" + SanitizeCell(format) + "')\n");
    return kExitUsage;
  }
  struct stat st {};
  if (::stat(file.c_str(), &st) != 0) {
    Err("error: cannot read " + SanitizeCell(file) + ": " + std::strerror(errno) + "\n");
    return kExitError;
  }
  if (!S_ISREG(st.st_mode)) {
    Err("error: " + SanitizeCell(file) + " is not a regular file\n");
    return kExitError;
  }
  ProgressLine bar(/*plain_lines_when_not_tty=*/false);
  const std::string label = "uploading " + StemOf(file);
  UploadProgressFn on_progress = [&](uint64_t sent, uint64_t total) {
    bar.Update(static_cast<double>(sent) / static_cast<double>(total),
               label + "  " + HumanBytes(sent) + " / " + HumanBytes(total));
  };
  const std::string path =
      ctx.ProjectPath("/datasets?name=" + UrlEncode(name) + "&format=" + UrlEncode(format));
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
  if (ctx.json) {
    PrintJson(*resp);
    return kExitOk;
  }
  const Json& cols = Member(*resp, "columns");
  Out("Imported " + SanitizeCell(MemberText(*resp, "name")) + " version " + MemberText(*resp, "version") +
      ": " + MemberText(*resp, "rows") + " rows, " + std::to_string(cols.is_array() ? cols.size() : 0) +
      " columns (" + HumanBytes(static_cast<uint64_t>(st.st_size)) + ")\n");
  if (cols.is_array() && !cols.empty()) {
    PrintObjectTable(cols, {{"COLUMN", "name"}, {"TYPE", "type"}, {"MISSING", "missing"}});
  }
  return kExitOk;
}

// GET a project collection and print it: raw JSON with --json, else a table of `columns`.
int ListProjectCollection(Context& ctx, const std::string& collection,
                          const std::vector<ColumnSpec>& columns) {
  auto resp = ctx.Call("GET", ctx.ProjectPath("/" + collection));
  if (!resp) return kExitError;
  if (ctx.json) {
    PrintJson(*resp);
    return kExitOk;
  }
  const Json& list = Member(*resp, collection);
  if (!list.is_array() || list.empty()) {
    Out("No " + collection + " in project " + ctx.project + "\n");
    return kExitOk;
  }
  PrintObjectTable(list, columns);
  return kExitOk;
}

int CmdDatasetsList(Context& ctx, const ParsedArgs&) {
  return ListProjectCollection(ctx, "datasets",
                               {{"NAME", "name"},
                                {"LATEST", "latest_version"},
                                {"VERSIONS", "versions", CountOrValue},
                                {"UPDATED", "updated_at"}});
}

int CmdDatasetsShow(Context& ctx, const ParsedArgs& a) {
  auto resp = ctx.Call("GET", ctx.ProjectPath("/datasets/" + UrlEncode(a.positionals[0])));
  if (!resp) return kExitError;
  if (ctx.json) {
    PrintJson(*resp);
    return kExitOk;
  }
  Out("Dataset " + SanitizeCell(GetStringOr(*resp, "name", a.positionals[0])) + "\n");
  const Json& versions = Member(*resp, "versions");
  if (versions.is_array() && !versions.empty()) {
    PrintObjectTable(versions, {{"VERSION", "version"},
                                {"ROWS", "rows"},
                                {"COLUMNS", "columns", CountOrValue},
                                {"BYTES", "bytes"},
                                {"CREATED", "created_at"}});
  }
  return kExitOk;
}

// The newest version of a dataset, from `datasets show`.
std::optional<int64_t> LatestDatasetVersion(Context& ctx, const std::string& name) {
  auto resp = ctx.Call("GET", ctx.ProjectPath("/datasets/" + UrlEncode(name)));
  if (!resp) return std::nullopt;
  const Json& latest = Member(*resp, "latest_version");
  if (latest.is_number_integer()) return latest.get<int64_t>();
  int64_t best = -1;
  const Json& versions = Member(*resp, "versions");
  if (versions.is_array()) {
    for (const auto& v : versions) {
      const Json& n = Member(v, "version");
      if (n.is_number_integer()) best = std::max(best, n.get<int64_t>());
    }
  }
  if (best < 0) {
    Err("error: dataset " + SanitizeCell(name) + " has no versions\n");
    return std::nullopt;
  }
  return best;
}

int CmdDatasetsRows(Context& ctx, const ParsedArgs& a) {
  const std::string& name = a.positionals[0];
  auto version = OptionalVersion(a);
  auto offset = ParseIntFlag("offset", a.Get("offset", "0"), 0, INT64_MAX);
  auto limit = ParseIntFlag("limit", a.Get("limit", "20"), 1, 100000);
  for (const Status* s : {&version.status(), &offset.status(), &limit.status()}) {
    if (!s->ok()) {
      PrintStatusError(*s);
      return kExitUsage;
    }
  }
  int64_t v = 0;
  if (version->has_value()) {
    v = **version;
  } else {
    auto latest = LatestDatasetVersion(ctx, name);
    if (!latest) return kExitError;
    v = *latest;
  }
  auto resp = ctx.Call(
      "GET", ctx.ProjectPath("/datasets/" + UrlEncode(name) + "/versions/" + std::to_string(v) +
                             "/rows?offset=" + std::to_string(*offset) + "&limit=" + std::to_string(*limit)));
  if (!resp) return kExitError;
  if (ctx.json) {
    PrintJson(*resp);
    return kExitOk;
  }
  std::vector<std::string> names;
  for (const auto& c : Member(*resp, "columns")) {
    names.push_back(c.is_object() ? GetStringOr(c, "name", "?") : FormatCell(c));
  }
  const Json& rows = Member(*resp, "rows");
  if (names.empty() && rows.is_array() && !rows.empty() && rows[0].is_object()) {
    for (const auto& [k, _] : rows[0].items()) names.push_back(k);
  }
  TablePrinter t(names, 40);
  if (rows.is_array()) {
    for (const auto& row : rows) {
      std::vector<std::string> cells;
      for (size_t i = 0; i < names.size(); ++i) {
        // Data keeps 10 significant digits; the 4-digit rounding is for metrics.
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
  const int64_t shown = rows.is_array() ? static_cast<int64_t>(rows.size()) : 0;
  const int64_t first = shown > 0 ? *offset + 1 : *offset;
  Out("(" + SanitizeCell(name) + " v" + std::to_string(v) + ": rows " + std::to_string(first) + "-" +
      std::to_string(*offset + shown) + " of " + MemberText(*resp, "total") + ")\n");
  return kExitOk;
}

// --- train / runs / jobs

int PrintRunResult(Context& ctx, const std::string& run_id) {
  auto run = ctx.Call("GET", ctx.ProjectPath("/runs/" + UrlEncode(run_id)));
  if (!run) return kExitError;
  if (ctx.json) {
    PrintJson(*run);
  } else {
    std::string line =
        "Run " + SanitizeCell(run_id) + " " + SanitizeCell(GetStringOr(*run, "state", "succeeded"));
    const Json& tr = Member(*run, "train_rows");
    const Json& te = Member(*run, "test_rows");
    if (tr.is_number() && te.is_number())
      line += " (" + FormatCell(tr) + " train rows, " + FormatCell(te) + " test rows";
    const Json& secs = Member(*run, "train_seconds");
    if (tr.is_number() && te.is_number())
      line += secs.is_number() ? ", " + FormatSignificant(secs.get<double>(), 3) + " s)" : ")";
    Out(line + "\n");
    PrintMetricsTable(Member(*run, "metrics"));
  }
  return kExitOk;
}

int FinishJob(Context& ctx, const std::string& job_id, const std::string& run_id) {
  auto job = WaitForJob(ctx, job_id);
  if (!job) return kExitError;
  const std::string state = GetStringOr(*job, "state", "");
  if (state != "succeeded") {
    Err("error: job " + SanitizeCell(job_id) + " " + SanitizeCell(state) + ": " +
        SanitizeCell(JobError(*job)) + "\n");
    if (!run_id.empty()) Err("  run: " + SanitizeCell(run_id) + "\n");
    if (ctx.json) PrintJson(*job);
    return kExitError;
  }
  if (run_id.empty()) {
    if (ctx.json)
      PrintJson(*job);
    else
      Out("Job " + SanitizeCell(job_id) + " succeeded\n");
    return kExitOk;
  }
  return PrintRunResult(ctx, run_id);
}

int CmdTrain(Context& ctx, const ParsedArgs& a) {
  for (const char* required : {"dataset", "target", "task"}) {
    if (!a.Has(required)) {
      Err(std::string("error: --") + required + " is required\n");
      return -kExitUsage;  // negative: the dispatcher prints usage
    }
  }
  Json params = Json::object();
  for (const auto& p : a.GetAll("param")) {
    auto kv = ParseParam(p);
    if (!kv.ok()) {
      PrintStatusError(kv.status());
      return -kExitUsage;
    }
    params[kv->first] = kv->second;
  }
  auto version = OptionalVersion(a);
  auto fraction = ParseDoubleFlag("test-fraction", a.Get("test-fraction", "0.2"), 0.0, 0.99);
  auto seed = ParseIntFlag("seed", a.Get("seed", "42"), 0, INT64_MAX);
  for (const Status* s : {&version.status(), &fraction.status(), &seed.status()}) {
    if (!s->ok()) {
      PrintStatusError(*s);
      return -kExitUsage;
    }
  }
  Json body = {{"dataset", a.Get("dataset")},
               {"target", a.Get("target")},
               {"task", a.Get("task")},
               {"learner", a.Get("learner", "xgboost")},
               {"params", params},
               {"split", {{"test_fraction", *fraction}, {"seed", *seed}}}};
  if (version->has_value()) body["version"] = **version;
  auto resp = ctx.Call("POST", ctx.ProjectPath("/runs"), &body);
  if (!resp) return kExitError;
  const std::string run_id = IdText(Member(*resp, "run"));
  const std::string job_id = IdText(Member(*resp, "job"));
  if (a.Has("no-wait")) {
    if (ctx.json)
      PrintJson(*resp);
    else
      Out("Run " + SanitizeCell(run_id) + " queued (job " + SanitizeCell(job_id) + ")\n");
    return kExitOk;
  }
  if (job_id.empty()) {
    Err("error: the server did not return a job id\n");
    return kExitError;
  }
  Err("Training run " + SanitizeCell(run_id) + " (job " + SanitizeCell(job_id) + ")\n");
  return FinishJob(ctx, job_id, run_id);
}

int CmdRunsShow(Context& ctx, const ParsedArgs& a) {
  auto run = ctx.Call("GET", ctx.ProjectPath("/runs/" + UrlEncode(a.positionals[0])));
  if (!run) return kExitError;
  if (ctx.json) {
    PrintJson(*run);
    return kExitOk;
  }
  PrintKeyValues(*run, {"metrics"});
  Out("\n");
  PrintMetricsTable(Member(*run, "metrics"));
  return kExitOk;
}

int CmdRunsList(Context& ctx, const ParsedArgs&) {
  return ListProjectCollection(ctx, "runs",
                               {{"ID", "id"},
                                {"STATE", "state"},
                                {"DATASET", "dataset"},
                                {"VERSION", "version"},
                                {"TARGET", "target"},
                                {"TASK", "task"},
                                {"LEARNER", "learner"},
                                {"METRICS", "metrics", CompactMetrics},
                                {"CREATED", "created_at"}});
}

int CmdJobsShow(Context& ctx, const ParsedArgs& a) {
  auto job = ctx.Call("GET", "/api/v1/jobs/" + UrlEncode(a.positionals[0]));
  if (!job) return kExitError;
  if (ctx.json)
    PrintJson(*job);
  else
    PrintKeyValues(*job, {"log"});
  return kExitOk;
}

int CmdJobsWait(Context& ctx, const ParsedArgs& a) {
  const std::string& id = a.positionals[0];
  auto job = WaitForJob(ctx, id);
  if (!job) return kExitError;
  const std::string state = GetStringOr(*job, "state", "");
  if (ctx.json)
    PrintJson(*job);
  else
    Out("Job " + SanitizeCell(id) + " " + SanitizeCell(state) + "\n");
  if (state != "succeeded") {
    Err("error: job " + SanitizeCell(id) + " " + SanitizeCell(state) + ": " + SanitizeCell(JobError(*job)) +
        "\n");
    return kExitError;
  }
  return kExitOk;
}

int CmdJobsCancel(Context& ctx, const ParsedArgs& a) {
  const std::string& id = a.positionals[0];
  auto job = ctx.Call("POST", "/api/v1/jobs/" + UrlEncode(id) + "/cancel");
  if (!job) return kExitError;
  if (ctx.json)
    PrintJson(*job);
  else
    Out("Cancel requested for job " + SanitizeCell(id) +
        " (state: " + SanitizeCell(GetStringOr(*job, "state", "?")) + ")\n");
  return kExitOk;
}

// --- models / deployments / predict

int CmdModelsRegister(Context& ctx, const ParsedArgs& a) {
  if (!a.Has("run")) {
    Err("error: --run is required\n");
    return -kExitUsage;
  }
  const std::string& name = a.positionals[0];
  Json body = {{"run", a.Get("run")}};
  auto resp = ctx.Call("POST", ctx.ProjectPath("/models/" + UrlEncode(name) + "/versions"), &body);
  if (!resp) return kExitError;
  if (ctx.json)
    PrintJson(*resp);
  else
    Out("Registered model " + SanitizeCell(GetStringOr(*resp, "name", name)) + " version " +
        MemberText(*resp, "version") + " from run " + SanitizeCell(GetStringOr(*resp, "run", a.Get("run"))) +
        "\n");
  return kExitOk;
}

int CmdModelsList(Context& ctx, const ParsedArgs&) {
  return ListProjectCollection(ctx, "models",
                               {{"NAME", "name"},
                                {"LATEST", "latest_version"},
                                {"VERSIONS", "versions", CountOrValue},
                                {"TASK", "task"},
                                {"METRICS", "metrics", CompactMetrics},
                                {"UPDATED", "updated_at"}});
}

int CmdModelsShow(Context& ctx, const ParsedArgs& a) {
  const std::string& name = a.positionals[0];
  auto resp = ctx.Call("GET", ctx.ProjectPath("/models/" + UrlEncode(name)));
  if (!resp) return kExitError;
  if (ctx.json) {
    PrintJson(*resp);
    return kExitOk;
  }
  Out("Model " + SanitizeCell(GetStringOr(*resp, "name", name)) + "\n");
  const Json& versions = Member(*resp, "versions");
  if (versions.is_array() && !versions.empty()) {
    PrintObjectTable(versions, {{"VERSION", "version"},
                                {"RUN", "run"},
                                {"STAGE", "stage"},
                                {"METRICS", "metrics", CompactMetrics},
                                {"CREATED", "created_at"}});
  }
  return kExitOk;
}

int CmdDeploy(Context& ctx, const ParsedArgs& a) {
  if (!a.Has("model")) {
    Err("error: --model is required\n");
    return -kExitUsage;
  }
  auto version = OptionalVersion(a);
  if (!version.ok()) {
    PrintStatusError(version.status());
    return -kExitUsage;
  }
  const std::string& name = a.positionals[0];
  Json body = {{"name", name}, {"model", a.Get("model")}};
  if (version->has_value()) body["version"] = **version;
  auto r = ctx.Raw("POST", ctx.ProjectPath("/deployments"), &body);
  if (!r.ok()) {
    PrintStatusError(r.status());
    return kExitError;
  }
  bool switched = false;
  if (r->status == 409) {
    // It exists: switch it to the requested model version instead.
    Json patch = {{"model", a.Get("model")}};
    if (version->has_value()) patch["version"] = **version;
    r = ctx.Raw("PATCH", ctx.ProjectPath("/deployments/" + UrlEncode(name)), &patch);
    if (!r.ok()) {
      PrintStatusError(r.status());
      return kExitError;
    }
    switched = true;
  }
  if (!r->ok()) {
    ctx.PrintApiError(*r);
    return kExitError;
  }
  auto resp = ctx.ParseOk(*r);
  if (!resp) return kExitError;
  if (ctx.json) {
    PrintJson(*resp);
    return kExitOk;
  }
  std::string what = "model " + SanitizeCell(GetStringOr(*resp, "model", a.Get("model"))) + " version " +
                     MemberText(*resp, "version");
  std::string state = GetStringOr(*resp, "state", "");
  Out((switched ? "Deployment " + SanitizeCell(name) + " already existed; switched it to " + what
                : "Deployed " + what + " as " + SanitizeCell(name)) +
      (state.empty() ? "" : " (" + SanitizeCell(state) + ")") + "\n");
  std::string endpoint = GetStringOr(*resp, "endpoint", "");
  if (!endpoint.empty()) Out("Endpoint: " + ctx.conn.url + SanitizeCell(endpoint) + "\n");
  return kExitOk;
}

int CmdDeploymentsList(Context& ctx, const ParsedArgs&) {
  return ListProjectCollection(ctx, "deployments",
                               {{"NAME", "name"},
                                {"MODEL", "model"},
                                {"VERSION", "version"},
                                {"STATE", "state"},
                                {"UPDATED", "updated_at"}});
}

int CmdDeploymentsShow(Context& ctx, const ParsedArgs& a) {
  auto resp = ctx.Call("GET", ctx.ProjectPath("/deployments/" + UrlEncode(a.positionals[0])));
  if (!resp) return kExitError;
  if (ctx.json)
    PrintJson(*resp);
  else
    PrintKeyValues(*resp);
  return kExitOk;
}

int CmdDeploymentsDelete(Context& ctx, const ParsedArgs& a) {
  const std::string& name = a.positionals[0];
  auto resp = ctx.Call("DELETE", ctx.ProjectPath("/deployments/" + UrlEncode(name)));
  if (!resp) return kExitError;
  if (ctx.json)
    PrintJson(*resp);
  else
    Out("Deleted deployment " + SanitizeCell(name) + "\n");
  return kExitOk;
}

Result<std::string> ReadAll(std::FILE* f, const std::string& what) {
  std::string text;
  char buf[65536];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof(buf), f)) > 0) {
    text.append(buf, n);
    if (text.size() > kMaxInstancesBytes) {
      return Status::InvalidArgument(what + " is larger than the limit of " +
                                     std::to_string(kMaxInstancesBytes) + " bytes");
    }
  }
  if (std::ferror(f)) return Status::InvalidArgument("reading " + what + " failed: " + std::strerror(errno));
  return text;
}

Result<std::string> ReadPredictInput(const ParsedArgs& a) {
  if (a.Has("data") && a.Has("file")) return Status::InvalidArgument("give --data or --file, not both");
  if (a.Has("data")) return a.Get("data");
  std::string file = a.Get("file", "-");
  if (file == "-") {
    if (::isatty(STDIN_FILENO) == 1)
      Err("Reading instances from stdin (JSON or JSON Lines; Ctrl-D to end)\n");
    return ReadAll(stdin, "stdin");
  }
  std::FILE* f = std::fopen(file.c_str(), "rb");
  if (!f) return Status::NotFound("cannot read " + file + ": " + std::strerror(errno));
  auto text = ReadAll(f, file);
  std::fclose(f);
  return text;
}

int CmdPredict(Context& ctx, const ParsedArgs& a) {
  auto text = ReadPredictInput(a);
  if (!text.ok()) {
    PrintStatusError(text.status());
    return text.status().code() == StatusCode::kNotFound ? kExitError : kExitUsage;
  }
  auto instances = ParseInstances(*text, kMaxInstancesBytes);
  if (!instances.ok()) {
    PrintStatusError(instances.status().Annotate("input"));
    return kExitUsage;
  }
  Json body = {{"instances", std::move(*instances)}};
  auto resp =
      ctx.Call("POST", ctx.ProjectPath("/deployments/" + UrlEncode(a.positionals[0]) + "/predict"), &body);
  if (!resp) return kExitError;
  if (ctx.json) {
    PrintJson(*resp);
    return kExitOk;
  }
  const Json& preds = Member(*resp, "predictions");
  if (!preds.is_array()) {
    Err("error: the server's response has no predictions array\n");
    return kExitError;
  }
  std::string out;
  for (const auto& p : preds) out += DumpJson(p) + "\n";
  Out(out);
  return kExitOk;
}

// ---------------------------------------------------------------------------------------------------------
// The command table.

const std::vector<Command>& Commands() {
  static const std::vector<Command> kCommands = {
      {"login",
       "",
       "log in and save the token for later commands",
       {{"username", "USER", "user name (default: admin)"},
        {"password-stdin", "",
         "read the password from the first line of stdin (else $LATHE_PASSWORD, else a prompt)"}},
       0,
       0,
       CmdLogin},
      {"logout", "", "revoke the saved token and forget it", {}, 0, 0, CmdLogout},
      {"datasets import",
       "FILE",
       "upload a file (streamed) as a new dataset version",
       {{"name", "N", "dataset name (default: the file name without extension)"},
        {"format", "F", "csv|tsv (default: from the file extension, else csv)"}},
       1,
       1,
       CmdDatasetsImport},
      {"datasets list", "", "list the project's datasets", {}, 0, 0, CmdDatasetsList},
      {"datasets show", "NAME", "show a dataset's versions", {}, 1, 1, CmdDatasetsShow},
      {"datasets rows",
       "NAME",
       "print rows of a dataset version",
       {{"version", "V", "dataset version (default: latest)"},
        {"offset", "N", "first row, from 0 (default: 0)"},
        {"limit", "N", "rows to print, 1..100000 (default: 20)"}},
       1,
       1,
       CmdDatasetsRows},
      {"train",
       "",
       "train a model on a dataset and wait for the run",
       {{"dataset", "N", "dataset name (required)"},
        {"version", "V", "dataset version (default: latest)"},
        {"target", "T", "target column (required)"},
        {"task", "TASK", "binary|multiclass|regression (required)"},
        {"learner", "L", "learner (default: xgboost)"},
        {"param", "KEY=VALUE", "learner parameter; numbers and true/false are typed (repeatable)", true},
        {"test-fraction", "F", "held-out fraction, 0..0.99 (default: 0.2)"},
        {"seed", "N", "split seed (default: 42)"},
        {"no-wait", "", "print the run and job ids and return at once"}},
       0,
       0,
       CmdTrain},
      {"runs list", "", "list training runs", {}, 0, 0, CmdRunsList},
      {"runs show", "ID", "show a run and its metrics", {}, 1, 1, CmdRunsShow},
      {"jobs show", "ID", "show a job's state and progress", {}, 1, 1, CmdJobsShow},
      {"jobs wait",
       "ID",
       "wait for a job to finish, with a progress bar; exit 1 unless it succeeded",
       {},
       1,
       1,
       CmdJobsWait},
      {"jobs cancel", "ID", "ask a job to stop", {}, 1, 1, CmdJobsCancel},
      {"models register",
       "NAME",
       "register a run's model as a new version of model NAME",
       {{"run", "RUN", "run id (required)"}},
       1,
       1,
       CmdModelsRegister},
      {"models list", "", "list registered models", {}, 0, 0, CmdModelsList},
      {"models show", "NAME", "show a model's versions", {}, 1, 1, CmdModelsShow},
      {"deploy",
       "NAME",
       "serve a model version at deployment NAME (switches it if NAME exists)",
       {{"model", "M", "registered model name (required)"},
        {"version", "V", "model version (default: latest)"}},
       1,
       1,
       CmdDeploy},
      {"deployments list", "", "list deployments", {}, 0, 0, CmdDeploymentsList},
      {"deployments show", "NAME", "show a deployment", {}, 1, 1, CmdDeploymentsShow},
      {"deployments delete", "NAME", "delete a deployment", {}, 1, 1, CmdDeploymentsDelete},
      {"predict",
       "DEPLOYMENT",
       "score instances: one JSON object, an array of objects, or JSON Lines",
       {{"data", "JSON", "the instances inline"},
        {"file", "F", "read the instances from F ('-' = stdin, the default)"}},
       1,
       1,
       CmdPredict},
  };
  return kCommands;
}

const std::set<std::string>& Groups() {
  static const std::set<std::string> kGroups = {"datasets", "runs", "jobs", "models", "deployments"};
  return kGroups;
}

std::string FlagLine(const FlagSpec& f) {
  std::string left = "  ";
  left += f.short_name ? std::string("-") + f.short_name + ", " : "";
  left += "--" + f.name + (f.value_name.empty() ? "" : " " + f.value_name);
  if (left.size() < 26)
    left += std::string(26 - left.size(), ' ');
  else
    left += "  ";
  return left + f.help + "\n";
}

std::string CommandUsage(const Command& c) {
  std::string s =
      "usage: lathe " + c.name + (c.args.empty() ? "" : " " + c.args) + " [flags]\n\n" + c.summary + "\n";
  if (!c.flags.empty()) {
    s += "\nflags:\n";
    for (const auto& f : c.flags) s += FlagLine(f);
  }
  s += "\nglobal flags:\n";
  for (const auto& f : GlobalFlags()) s += FlagLine(f);
  return s;
}

std::string CommandList(const std::string& group) {
  std::string s;
  for (const auto& c : Commands()) {
    if (!group.empty() && c.name.rfind(group + " ", 0) != 0) continue;
    std::string left = "  lathe " + c.name + (c.args.empty() ? "" : " " + c.args);
    if (left.size() < 36)
      left += std::string(36 - left.size(), ' ');
    else
      left += "  ";
    s += left + c.summary + "\n";
  }
  return s;
}

std::string TopUsage() {
  std::string s = "usage: lathe <command> [args] [flags]\n\ncommands:\n" + CommandList("");
  s += "\nglobal flags (anywhere on the line):\n";
  for (const auto& f : GlobalFlags()) s += FlagLine(f);
  s += "\nRun `lathe <command> --help` for a command's flags. Exit codes: 0 ok, 1 server or job error, 2 "
       "usage.\n";
  return s;
}

int UsageError(const std::string& message, const Command& cmd) {
  Err("error: " + message + "\n\n" + CommandUsage(cmd));
  return kExitUsage;
}

bool WantsHelp(const std::vector<std::string>& args) {
  for (const auto& a : args) {
    if (a == "--") return false;
    if (a == "-h" || a == "--help") return true;
  }
  return false;
}

}  // namespace
}  // namespace cli

void PrintClientUsage() { cli::Out(cli::TopUsage()); }

int RunClient(const std::vector<std::string>& args) {
  using namespace cli;
  CommandLine line = SplitCommandWords(args, Groups());
  if (line.words.empty()) {
    if (WantsHelp(args)) {
      Out(TopUsage());
      return kExitOk;
    }
    Err("error: no command given\n\n" + TopUsage());
    return kExitUsage;
  }
  const std::string& first = line.words[0];
  if (first == "help") {
    Out(TopUsage());
    return kExitOk;
  }
  const bool is_group = Groups().count(first) > 0;
  if (is_group && line.words.size() < 2) {
    std::string s = "usage: lathe " + first + " <command>\n\ncommands:\n" + CommandList(first);
    if (WantsHelp(args)) {
      Out(s);
      return kExitOk;
    }
    Err("error: `lathe " + first + "` needs a command\n\n" + s);
    return kExitUsage;
  }
  const std::string name = is_group ? first + " " + line.words[1] : first;
  const Command* cmd = nullptr;
  for (const auto& c : Commands()) {
    if (c.name == name) cmd = &c;
  }
  if (!cmd) {
    std::string s =
        is_group ? "usage: lathe " + first + " <command>\n\ncommands:\n" + CommandList(first) : TopUsage();
    Err("error: unknown command '" + SanitizeCell(name) + "'\n\n" + s);
    return kExitUsage;
  }
  if (WantsHelp(line.rest)) {
    Out(CommandUsage(*cmd));
    return kExitOk;
  }
  std::vector<FlagSpec> flags = cmd->flags;
  flags.insert(flags.end(), GlobalFlags().begin(), GlobalFlags().end());
  auto parsed = ParseArgs(line.rest, flags);
  if (!parsed.ok()) return UsageError(parsed.status().message(), *cmd);
  const ParsedArgs& a = *parsed;
  if (a.positionals.size() < cmd->min_positionals) {
    return UsageError("missing " + cmd->args, *cmd);
  }
  if (a.positionals.size() > cmd->max_positionals) {
    return UsageError("unexpected argument '" + SanitizeCell(a.positionals[cmd->max_positionals]) + "'",
                      *cmd);
  }

  Context ctx;
  ctx.credentials_path = CredentialsPath(ctx.env);
  auto saved = LoadCredentials(ctx.credentials_path);
  if (saved.ok()) {
    ctx.saved = *saved;
  } else {
    Err("warning: ignoring the saved login: " + saved.status().message() + "\n");
  }
  ctx.conn = ResolveConnection(a.GetOptional("url"), a.GetOptional("token"), ctx.env, ctx.saved);
  ctx.project = a.Get("project", "default");
  ctx.json = a.Has("json");
  if (ctx.project.empty()) return UsageError("--project must not be empty", *cmd);
  if (ctx.conn.url.rfind("http://", 0) != 0 && ctx.conn.url.rfind("https://", 0) != 0) {
    return UsageError("the server URL must start with http:// or https:// (got '" +
                          SanitizeCell(ctx.conn.url) + "' from " + ctx.conn.url_source + ")",
                      *cmd);
  }
  int rc = cmd->run(ctx, a);
  if (rc < 0) {  // a usage problem found by the handler, already described
    Err("\n" + CommandUsage(*cmd));
    return -rc;
  }
  std::fflush(stdout);
  return rc;
}

}  // namespace lathe
