#include "cli/client_context.h"

#include <termios.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <thread>

#include "cli/table_printer.h"

namespace lathe::cli {

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
// Progress display.

ProgressLine::ProgressLine(bool plain_lines_when_not_tty)
    : tty_(StderrIsTty()), plain_(plain_lines_when_not_tty) {}
ProgressLine::~ProgressLine() { Finish(); }

void ProgressLine::Update(double fraction, const std::string& label) {
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

void ProgressLine::Finish() {
  if (tty_ && drawn_) {
    Err("\n");
    drawn_ = false;
  }
}

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
// Context.

HttpClient& Context::http() {
  if (!http_client) http_client = std::make_unique<HttpClient>(HttpClientOptions{conn.url, conn.token});
  return *http_client;
}

std::string Context::ProjectPath(const std::string& suffix) const {
  return "/api/v1/projects/" + UrlEncode(project) + suffix;
}

Result<HttpResult> Context::Raw(const std::string& method, const std::string& path, const Json* body) {
  return http().Send(method, path, body ? DumpJson(*body) : std::string());
}

void Context::PrintApiError(const HttpResult& r) const {
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
      // Already said by the detail line (which may carry a prefix such as "filter: ").
      const bool said = entry == detail || msg == detail ||
                        (!msg.empty() && detail.size() >= msg.size() &&
                         detail.compare(detail.size() - msg.size(), msg.size(), msg) == 0);
      if (said) continue;
      Err("  " + SanitizeCell(entry) + "\n");
    }
  }
  if (r.status == 401) Err("  hint: run `lathe login` (server " + conn.url + ")\n");
  std::string rid = GetStringOr(p, "request_id", "");
  if (!rid.empty()) Err("  request id: " + SanitizeCell(rid) + "\n");
}

std::optional<Json> Context::ParseOk(const HttpResult& r) const {
  if (r.body.find_first_not_of(" \t\r\n") == std::string::npos) return Json::object();
  auto doc = ParseJson(r.body, 256);
  if (!doc.ok()) {
    Err("error: the server sent a response that is not JSON (HTTP " + std::to_string(r.status) +
        "): " + doc.status().message() + "\n");
    return std::nullopt;
  }
  return std::move(*doc);
}

std::optional<Json> Context::Call(const std::string& method, const std::string& path, const Json* body) {
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

// ---------------------------------------------------------------------------------------------------------
// Output helpers.

std::string CompactMetrics(const Json& metrics) {
  if (!metrics.is_object()) return FormatCell(metrics);
  std::string out;
  for (const auto& [k, v] : metrics.items()) {
    if (v.is_structured()) continue;  // confusion matrix, cross-validation folds: see `runs show`
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
void PrintKeyValues(const Json& obj, const std::set<std::string>& skip) {
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
  // Scalars as they are; cross-validation as mean ± std per metric; other structures (confusion matrix, split
  // description) only in --json output.
  for (const auto& [k, v] : metrics.items()) {
    if (!v.is_structured()) t.AddRow({k, FormatCell(v)});
  }
  const Json& cv = Member(metrics, "cv");
  if (cv.is_object()) {
    for (const auto& [k, v] : cv.items()) {
      t.AddRow({"cv " + k + " (mean ± std)", FormatCell(Member(v, "mean")) + " ± " + FormatCell(Member(v, "std"))});
    }
  }
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

bool IsTerminalJobState(const std::string& state) {
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
    if (IsTerminalJobState(state)) {
      progress.Update(state == "succeeded" ? 1.0 : fraction, label);
      progress.Finish();
      return job;
    }
    progress.Update(fraction, label);
    std::this_thread::sleep_for(kPollInterval);
  }
}

std::string JobError(const Json& job) {
  const Json& structured = Member(Member(job, "result"), "error");
  if (structured.is_object()) {
    std::string m = GetStringOr(structured, "message", "");
    if (!m.empty()) return m;
  }
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

void PrintJobFailure(const Json& job, const std::string& job_id) {
  const std::string reason = JobError(job);
  Err("error: job " + SanitizeCell(job_id) + " " + SanitizeCell(GetStringOr(job, "state", "failed")) + ": " +
      SanitizeCell(reason) + "\n");
  const Json& errors = Member(Member(Member(job, "result"), "error"), "errors");
  if (!errors.is_array()) return;
  for (const auto& e : errors) {
    if (!e.is_object()) continue;
    std::string where;
    if (e.contains("field")) where = FormatCell(e["field"]);
    if (e.contains("line"))
      where += (where.empty() ? "" : ", ") + std::string("line ") + FormatCell(e["line"]);
    if (e.contains("column"))
      where += (where.empty() ? "" : ", ") + std::string("column ") + FormatCell(e["column"]);
    const std::string msg = GetStringOr(e, "message", "");
    if (msg == reason) continue;
    Err("  " + SanitizeCell(where.empty() ? msg : where + ": " + msg) + "\n");
  }
}

int ListProjectCollection(Context& ctx, const std::string& collection, const std::vector<ColumnSpec>& columns,
                          const std::string& query) {
  auto resp = ctx.Call("GET", ctx.ProjectPath("/" + collection) + query);
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

Result<std::string> ReadAll(std::FILE* f, const std::string& what) {
  std::string text;
  char buf[65536];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof(buf), f)) > 0) {
    text.append(buf, n);
    if (text.size() > kMaxInputBytes) {
      return Status::InvalidArgument(what + " is larger than the limit of " + std::to_string(kMaxInputBytes) +
                                     " bytes");
    }
  }
  if (std::ferror(f)) return Status::InvalidArgument("reading " + what + " failed: " + std::strerror(errno));
  return text;
}

Result<std::string> ReadFileOrStdin(const std::string& path, const std::string& what) {
  if (path == "-") return ReadAll(stdin, what + " (stdin)");
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) return Status::NotFound("cannot read " + what + " " + path + ": " + std::strerror(errno));
  auto text = ReadAll(f, what + " " + path);
  std::fclose(f);
  return text;
}

Result<std::string> ReadSecret(const ParsedArgs& a, const EnvLookup& env, const std::string& stdin_flag,
                               const std::string& env_var, const std::string& prompt) {
  if (a.Has(stdin_flag)) {
    std::string line;
    int c;
    while ((c = std::fgetc(stdin)) != EOF && c != '\n') {
      line += static_cast<char>(c);
      if (line.size() > 4096) return Status::InvalidArgument("the secret on stdin is longer than 4096 bytes");
    }
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty()) return Status::InvalidArgument("--" + stdin_flag + ": nothing on stdin");
    return line;
  }
  if (auto p = env(env_var); p && !p->empty()) return *p;
  std::string noun = prompt;
  if (!noun.empty()) noun[0] = static_cast<char>(std::tolower(static_cast<unsigned char>(noun[0])));
  if (::isatty(STDIN_FILENO) != 1) {
    return Status::InvalidArgument("no " + noun + ": use --" + stdin_flag + ", set " + env_var +
                                   ", or run on a terminal");
  }
  Err(prompt + ": ");
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
  if (line.empty()) return Status::InvalidArgument("no " + noun + " entered");
  return line;
}

Result<std::optional<int64_t>> OptionalVersion(const ParsedArgs& a, const std::string& flag) {
  auto v = a.GetOptional(flag);
  if (!v) return std::optional<int64_t>();
  ASSIGN_OR_RETURN(int64_t n, ParseIntFlag(flag, *v, 1, INT64_MAX));
  return std::optional<int64_t>(n);
}

}  // namespace lathe::cli
