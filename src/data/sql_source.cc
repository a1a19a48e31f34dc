#include "data/sql_source.h"

#include <libpq-fe.h>
#include <poll.h>
#include <sqlite3.h>
#include <stdlib.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <climits>
#include <cstring>
#include <map>
#include <memory>
#include <set>
#include <vector>

#include "data/value_parse.h"

namespace lathe {
namespace {

using Clock = std::chrono::steady_clock;

constexpr int64_t kMaxTimeoutMs = 7LL * 24 * 3600 * 1000;
constexpr size_t kFlushBytes = 1 << 20;
// How often (in rows / SQLite VM steps) the cancel callback and the deadline are checked.
constexpr int kCheckEveryRows = 1024;
constexpr int kSqliteProgressOps = 10000;

struct Deadline {
  Clock::time_point end;
  int64_t RemainingMs() const {
    return std::max<int64_t>(
        0, std::chrono::duration_cast<std::chrono::milliseconds>(end - Clock::now()).count());
  }
  bool Passed() const { return Clock::now() >= end; }
};

bool Cancelled(const std::function<bool()>& cancel) { return cancel && cancel(); }

Status FieldError(const std::string& field, const std::string& msg) {
  return Status::InvalidArgument(field + ": " + msg).WithDetail(ErrorDetail::Field(field, msg));
}

// Renames empty and duplicate column names so the CSV header is importable: "", "a", "a" -> column_1, a, a_2.
std::vector<std::string> UniqueColumnNames(const std::vector<std::string>& raw) {
  std::vector<std::string> out;
  std::set<std::string> used;
  for (size_t i = 0; i < raw.size(); ++i) {
    std::string base = raw[i].empty() ? "column_" + std::to_string(i + 1) : raw[i];
    std::string name = base;
    for (int k = 2; used.count(name) != 0; ++k) name = base + "_" + std::to_string(k);
    used.insert(name);
    out.push_back(name);
  }
  return out;
}

std::string CsvHeader(const std::vector<std::string>& names) {
  std::string line;
  for (size_t i = 0; i < names.size(); ++i) {
    if (i) line.push_back(',');
    AppendCsvField(names[i], true, &line);
  }
  line.push_back('\n');
  return line;
}

Status TooManyRows(int64_t max_rows) {
  return Status::FailedPrecondition("the query returned more than max_rows=" + std::to_string(max_rows) +
                                    " rows; add a LIMIT to the query or raise max_rows")
      .WithDetail(ErrorDetail::Field("max_rows", "exceeded"));
}

std::string TrimSqlEnd(std::string_view q) {
  size_t e = q.size();
  while (e > 0 && (q[e - 1] == ';' || std::isspace(static_cast<unsigned char>(q[e - 1])))) --e;
  size_t b = 0;
  while (b < e && std::isspace(static_cast<unsigned char>(q[b]))) ++b;
  return std::string(q.substr(b, e - b));
}

// ---------------------------------------------------------------------------------------------- PostgreSQL

const std::set<std::string>& ForbiddenPgKeywords() {
  static const std::set<std::string> k = {"service",     "passfile",   "sslkey",   "sslcert",
                                          "sslpassword", "sslcrlfile", "sslcrldir"};
  return k;
}

struct PgOptionsFree {
  void operator()(PQconninfoOption* o) const { PQconninfoFree(o); }
};
using PgOptions = std::unique_ptr<PQconninfoOption, PgOptionsFree>;

// Parsed conninfo as (keyword, value) pairs of the options that were set. libpq's parse error may quote
// pieces of the input (which can hold the password), so it is not passed on.
Result<std::vector<std::pair<std::string, std::string>>> ParsePgDsn(const std::string& dsn) {
  char* err = nullptr;
  PgOptions opts(PQconninfoParse(dsn.c_str(), &err));
  if (err != nullptr) PQfreemem(err);
  if (!opts) {
    return FieldError("dsn", "not a valid libpq connection string or postgresql:// URI");
  }
  std::vector<std::pair<std::string, std::string>> out;
  for (PQconninfoOption* o = opts.get(); o->keyword != nullptr; ++o) {
    if (o->val != nullptr) out.emplace_back(o->keyword, o->val);
  }
  return out;
}

std::string Lookup(const std::vector<std::pair<std::string, std::string>>& kv, const std::string& key) {
  for (const auto& [k, v] : kv) {
    if (k == key) return v;
  }
  return "";
}

// Replaces every occurrence of `secret` in `text` (libpq messages never should hold it; belt and braces).
std::string Scrub(std::string text, const std::string& secret) {
  if (secret.size() < 2) return text;
  for (size_t p = text.find(secret); p != std::string::npos; p = text.find(secret, p)) {
    text.replace(p, secret.size(), "***");
  }
  return text;
}

std::string OneLine(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  for (char& c : s) {
    if (c == '\n' || c == '\t') c = ' ';
  }
  return s;
}

struct PgConnFree {
  void operator()(PGconn* c) const { PQfinish(c); }
};
using PgConn = std::unique_ptr<PGconn, PgConnFree>;
struct PgResultFree {
  void operator()(PGresult* r) const { PQclear(r); }
};
using PgResult = std::unique_ptr<PGresult, PgResultFree>;

struct PgSession {
  PgConn conn;
  std::string password;
  std::string where;  // "host:port/db" for messages
  Deadline deadline;
  const std::function<bool()>* cancel = nullptr;
};

// Asks the server to cancel the running statement (best effort; the connection is closed right after).
void SendPgCancel(PGconn* c) {
  PGcancel* pc = PQgetCancel(c);
  if (pc == nullptr) return;
  char buf[256];
  PQcancel(pc, buf, sizeof buf);
  PQfreeCancel(pc);
}

// Waits until the connection's socket is readable (or writable), polling in short slices so the
// cancel callback and the deadline are honoured.
Status WaitSocket(PgSession& s, bool for_write, const char* phase) {
  int fd = PQsocket(s.conn.get());
  if (fd < 0) return Status::Unavailable("postgres connection to " + s.where + " lost");
  while (true) {
    if (Cancelled(*s.cancel)) return Status::Cancelled("postgres fetch cancelled");
    int64_t left = s.deadline.RemainingMs();
    if (left <= 0) {
      return Status::DeadlineExceeded(std::string("postgres ") + phase + " at " + s.where + " timed out");
    }
    pollfd p{fd, static_cast<short>(for_write ? POLLOUT : POLLIN), 0};
    int rc = poll(&p, 1, static_cast<int>(std::min<int64_t>(left, 100)));
    if (rc > 0) return Status::Ok();
    if (rc < 0 && errno != EINTR) return Status::Internal(std::string("poll: ") + std::strerror(errno));
  }
}

Status MapPgConnectError(const PgSession& s, const std::string& raw) {
  std::string msg = OneLine(Scrub(raw, s.password));
  std::string text = "connecting to postgres at " + s.where + ": " + msg;
  if (msg.find("authentication failed") != std::string::npos ||
      msg.find("no password supplied") != std::string::npos ||
      msg.find("does not exist") != std::string::npos ||
      msg.find("no pg_hba.conf entry") != std::string::npos || msg.find("SCRAM") != std::string::npos) {
    return Status::InvalidArgument(text).WithDetail(ErrorDetail::Field("dsn", msg));
  }
  if (msg.find("timeout expired") != std::string::npos) return Status::DeadlineExceeded(text);
  return Status::Unavailable(text);
}

Status PgConnect(PgSession& s, const std::vector<std::pair<std::string, std::string>>& kv,
                 int64_t timeout_ms) {
  std::vector<std::string> keys, vals;
  for (const auto& [k, v] : kv) {
    if (k == "connect_timeout" || k == "passfile" || k == "client_encoding") continue;
    keys.push_back(k);
    vals.push_back(v);
  }
  keys.push_back("connect_timeout");
  vals.push_back(std::to_string(std::max<int64_t>(2, (timeout_ms + 999) / 1000)));
  // A path that cannot exist: libpq then skips ~/.pgpass silently instead of using the server's passwords.
  keys.push_back("passfile");
  vals.push_back("/nonexistent/lathe-no-pgpass");
  keys.push_back("client_encoding");
  vals.push_back("UTF8");
  if (Lookup(kv, "password").empty()) {
    // libpq ignores empty values and would fall back to PGPASSWORD from the lathe server's environment; a
    // placeholder that no account uses makes a password-protected login fail as it should.
    keys.push_back("password");
    vals.push_back("lathe:no-password-given");
  }
  if (Lookup(kv, "application_name").empty()) {
    keys.push_back("application_name");
    vals.push_back("lathe");
  }
  std::vector<const char*> kp, vp;
  for (size_t i = 0; i < keys.size(); ++i) {
    kp.push_back(keys[i].c_str());
    vp.push_back(vals[i].c_str());
  }
  kp.push_back(nullptr);
  vp.push_back(nullptr);
  s.conn.reset(PQconnectStartParams(kp.data(), vp.data(), 0));
  if (!s.conn) return Status::Internal("libpq: out of memory");
  if (PQstatus(s.conn.get()) == CONNECTION_BAD) return MapPgConnectError(s, PQerrorMessage(s.conn.get()));
  while (true) {
    PostgresPollingStatusType st = PQconnectPoll(s.conn.get());
    if (st == PGRES_POLLING_OK) break;
    if (st == PGRES_POLLING_FAILED) return MapPgConnectError(s, PQerrorMessage(s.conn.get()));
    RETURN_IF_ERROR(WaitSocket(s, st == PGRES_POLLING_WRITING, "connect"));
  }
  if (PQsetnonblocking(s.conn.get(), 1) != 0) return Status::Internal("libpq: cannot set non-blocking mode");
  return Status::Ok();
}

Status FlushPg(PgSession& s) {
  while (true) {
    int rc = PQflush(s.conn.get());
    if (rc == 0) return Status::Ok();
    if (rc < 0) return Status::Unavailable("postgres: " + OneLine(PQerrorMessage(s.conn.get())));
    RETURN_IF_ERROR(WaitSocket(s, true, "query"));
    if (PQconsumeInput(s.conn.get()) == 0) {
      return Status::Unavailable("postgres: " + OneLine(PQerrorMessage(s.conn.get())));
    }
  }
}

// The next result of the command in flight, or null when it is complete.
Result<PgResult> NextPgResult(PgSession& s) {
  while (PQisBusy(s.conn.get())) {
    Status w = WaitSocket(s, false, "query");
    if (!w.ok()) {
      SendPgCancel(s.conn.get());
      return w;
    }
    if (PQconsumeInput(s.conn.get()) == 0) {
      return Status::Unavailable("postgres connection to " + s.where +
                                 " failed: " + OneLine(PQerrorMessage(s.conn.get())));
    }
  }
  return PgResult(PQgetResult(s.conn.get()));
}

Status MapPgResultError(const PGresult* r, const std::string& query_for_position) {
  const char* state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
  const char* primary = PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY);
  const char* pos = PQresultErrorField(r, PG_DIAG_STATEMENT_POSITION);
  std::string sqlstate = state ? state : "";
  std::string msg = primary ? primary : OneLine(PQresultErrorMessage(r));
  std::string text = "postgres: " + msg + (sqlstate.empty() ? "" : " (SQLSTATE " + sqlstate + ")");
  Status st;
  if (sqlstate == "57014") {
    st = Status::DeadlineExceeded(text);
  } else if (sqlstate.rfind("42", 0) == 0 || sqlstate.rfind("22", 0) == 0 || sqlstate == "25006" ||
             sqlstate.rfind("0A", 0) == 0) {
    st = Status::InvalidArgument(text);
  } else if (sqlstate.rfind("53", 0) == 0) {
    st = Status::ResourceExhausted(text);
  } else if (sqlstate.rfind("08", 0) == 0 || sqlstate.rfind("57", 0) == 0) {
    st = Status::Unavailable(text);
  } else {
    st = Status::FailedPrecondition(text);
  }
  if (pos != nullptr && !query_for_position.empty()) {
    int64_t p = std::atoll(pos);
    st = Status(st.code(), st.message() + " at character " + std::to_string(p) + " of the query")
             .WithDetail(ErrorDetail::Position("query", p, msg));
  } else if (st.code() == StatusCode::kInvalidArgument) {
    st.AddDetail(ErrorDetail::Field("query", msg));
  }
  return st;
}

// Runs a command whose results are all COMMAND_OK / TUPLES_OK; returns the last one.
Result<PgResult> RunPg(PgSession& s, const std::function<int()>& send,
                       const std::string& query_for_position) {
  if (send() == 0) return Status::Unavailable("postgres: " + OneLine(PQerrorMessage(s.conn.get())));
  RETURN_IF_ERROR(FlushPg(s));
  PgResult last;
  Status err;
  while (true) {
    ASSIGN_OR_RETURN(PgResult r, NextPgResult(s));
    if (!r) break;
    ExecStatusType st = PQresultStatus(r.get());
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK && err.ok()) {
      err = MapPgResultError(r.get(), query_for_position);
    }
    last = std::move(r);
  }
  if (!err.ok()) return err;
  return last;
}

Status RunPgSimple(PgSession& s, const std::string& sql) {
  auto r = RunPg(
      s, [&] { return PQsendQuery(s.conn.get(), sql.c_str()); }, "");
  return r.TakeStatus();
}

const char* PgTypeName(Oid t) {
  switch (t) {
    case 16:
      return "bool";
    case 17:
      return "bytea";
    case 20:
      return "int8";
    case 21:
      return "int2";
    case 23:
      return "int4";
    case 25:
      return "text";
    case 700:
      return "float4";
    case 701:
      return "float8";
    case 1042:
      return "bpchar";
    case 1043:
      return "varchar";
    case 1082:
      return "date";
    case 1083:
      return "time";
    case 1114:
      return "timestamp";
    case 1184:
      return "timestamptz";
    case 1700:
      return "numeric";
    case 114:
      return "json";
    case 3802:
      return "jsonb";
    case 2950:
      return "uuid";
    case 1186:
      return "interval";
    default:
      return nullptr;
  }
}

ColumnType PgHintType(Oid t) {
  switch (t) {
    case 20:
    case 21:
    case 23:
      return ColumnType::kInt64;
    case 700:
    case 701:
    case 1700:
      return ColumnType::kFloat64;
    case 16:
      return ColumnType::kBool;
    case 1082:
    case 1114:
    case 1184:
      return ColumnType::kDatetime;
    default:
      return ColumnType::kString;
  }
}

Result<SourceFetch> FetchPostgres(const SqlSource& src, const std::string& out_path,
                                  const std::function<bool()>& cancel) {
  auto started = Clock::now();
  ASSIGN_OR_RETURN(auto kv, ParsePgDsn(src.dsn));
  PgSession s;
  s.cancel = &cancel;
  s.deadline.end = started + std::chrono::milliseconds(src.timeout_ms);
  s.password = Lookup(kv, "password");
  std::string host = Lookup(kv, "host");
  if (host.empty()) host = Lookup(kv, "hostaddr");
  std::string port = Lookup(kv, "port");
  std::string dbname = Lookup(kv, "dbname");
  std::string user = Lookup(kv, "user");
  s.where = (host.empty() ? "localhost" : host) + (port.empty() ? "" : ":" + port) + "/" + dbname;

  RETURN_IF_ERROR(PgConnect(s, kv, src.timeout_ms));
  RETURN_IF_ERROR(RunPgSimple(s, "BEGIN READ ONLY"));
  RETURN_IF_ERROR(RunPgSimple(
      s, "SET LOCAL statement_timeout = " + std::to_string(std::max<int64_t>(1, s.deadline.RemainingMs()))));
  RETURN_IF_ERROR(RunPgSimple(s, "SET LOCAL DateStyle = 'ISO, YMD'"));
  RETURN_IF_ERROR(RunPgSimple(s, "SET LOCAL TimeZone = 'UTC'"));
  RETURN_IF_ERROR(RunPgSimple(s, "SET LOCAL extra_float_digits = 3"));

  // Prepare the query on its own: the server proves it is exactly one complete statement (so wrapping it
  // in COPY ( … ) cannot change its meaning) and reports its columns.
  const std::string query = TrimSqlEnd(src.query);
  RETURN_IF_ERROR(RunPg(
                      s, [&] { return PQsendPrepare(s.conn.get(), "", query.c_str(), 0, nullptr); }, query)
                      .TakeStatus());
  ASSIGN_OR_RETURN(PgResult desc, RunPg(
                                      s, [&] { return PQsendDescribePrepared(s.conn.get(), ""); }, query));
  int nfields = desc ? PQnfields(desc.get()) : 0;
  if (nfields == 0) {
    return FieldError("query",
                      "returns no columns; it must be a SELECT, WITH … SELECT, VALUES or TABLE query");
  }
  std::vector<std::string> raw_names;
  std::vector<Oid> types;
  for (int i = 0; i < nfields; ++i) {
    raw_names.emplace_back(PQfname(desc.get(), i));
    types.push_back(PQftype(desc.get(), i));
  }
  desc.reset();
  std::vector<std::string> names = UniqueColumnNames(raw_names);

  SourceFetch fetch;
  fetch.format = "csv";
  fetch.hints.missing_tokens = {"", "NaN"};
  Json columns = Json::array();
  for (int i = 0; i < nfields; ++i) {
    fetch.hints.types[names[i]] = PgHintType(types[i]);
    const char* tn = PgTypeName(types[i]);
    columns.push_back(
        {{"name", names[i]}, {"db_type", tn ? std::string(tn) : "oid " + std::to_string(types[i])}});
  }

  SpoolFile spool;
  RETURN_IF_ERROR(spool.Open(out_path));
  RETURN_IF_ERROR(spool.Write(CsvHeader(names)));

  const std::string copy = "COPY (\n" + query + "\n) TO STDOUT WITH (FORMAT csv)";
  // Extended protocol: the server refuses more than one statement in the string.
  if (PQsendQueryParams(s.conn.get(), copy.c_str(), 0, nullptr, nullptr, nullptr, nullptr, 0) == 0) {
    return Status::Unavailable("postgres: " + OneLine(PQerrorMessage(s.conn.get())));
  }
  RETURN_IF_ERROR(FlushPg(s));
  ASSIGN_OR_RETURN(PgResult start, NextPgResult(s));
  if (!start) return Status::Internal("postgres: no result for COPY");
  if (PQresultStatus(start.get()) != PGRES_COPY_OUT) {
    // Errors in the wrapped query point past the "COPY (\n" prefix; shift positions back into the query.
    Status st = MapPgResultError(start.get(), "");
    const char* pos = PQresultErrorField(start.get(), PG_DIAG_STATEMENT_POSITION);
    if (pos != nullptr) {
      int64_t p = std::atoll(pos) - 7;
      if (p >= 1) st.AddDetail(ErrorDetail::Position("query", p, st.message()));
    }
    return st;
  }
  start.reset();

  int64_t rows = 0;
  std::string buf;
  buf.reserve(kFlushBytes + 4096);
  while (true) {
    char* data = nullptr;
    int n = PQgetCopyData(s.conn.get(), &data, 1);
    if (n > 0) {
      // COPY writes NULL as an empty field; in a one-column result that is a blank line, which CSV readers
      // skip, so it is written as "" (also read as missing) — the SQLite source does the same.
      if (nfields == 1 && (std::string_view(data, static_cast<size_t>(n)) == "\n" ||
                           std::string_view(data, static_cast<size_t>(n)) == "\r\n")) {
        buf.append("\"\"\n");
      } else {
        buf.append(data, static_cast<size_t>(n));
      }
      PQfreemem(data);
      ++rows;
      if (rows > src.max_rows) {
        SendPgCancel(s.conn.get());
        return TooManyRows(src.max_rows);
      }
      if (buf.size() >= kFlushBytes) {
        RETURN_IF_ERROR(spool.Write(buf));
        buf.clear();
      }
      if (rows % kCheckEveryRows == 0) {
        if (Cancelled(cancel)) {
          SendPgCancel(s.conn.get());
          return Status::Cancelled("postgres fetch cancelled");
        }
        if (s.deadline.Passed()) {
          SendPgCancel(s.conn.get());
          return Status::DeadlineExceeded("postgres fetch from " + s.where + " timed out after " +
                                          std::to_string(src.timeout_ms) + " ms");
        }
      }
      continue;
    }
    if (n == 0) {
      Status w = WaitSocket(s, false, "transfer");
      if (!w.ok()) {
        SendPgCancel(s.conn.get());
        return w;
      }
      if (PQconsumeInput(s.conn.get()) == 0) {
        return Status::Unavailable("postgres connection to " + s.where +
                                   " failed: " + OneLine(PQerrorMessage(s.conn.get())));
      }
      continue;
    }
    if (n == -2) {
      return Status::Unavailable("postgres: " + OneLine(PQerrorMessage(s.conn.get())));
    }
    break;  // -1: COPY finished; the final status follows
  }
  while (true) {
    ASSIGN_OR_RETURN(PgResult r, NextPgResult(s));
    if (!r) break;
    if (PQresultStatus(r.get()) != PGRES_COMMAND_OK) return MapPgResultError(r.get(), "");
  }
  RETURN_IF_ERROR(spool.Write(buf));
  RETURN_IF_ERROR(spool.Commit());
  (void)RunPgSimple(s, "ROLLBACK");

  fetch.rows = rows;
  fetch.bytes = spool.bytes_written();
  fetch.info = {
      {"kind", "postgres"},
      {"host", host},
      {"port", port},
      {"dbname", dbname},
      {"user", user},
      {"query", src.query},
      {"columns", columns},
      {"rows", rows},
      {"elapsed_ms", std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - started).count()}};
  return fetch;
}

// ------------------------------------------------------------------------------------------------- SQLite

Result<std::string> ResolveSqlitePath(const std::string& dsn, const std::string& sqlite_root) {
  if (sqlite_root.empty()) {
    return Status::PermissionDenied(
        "sqlite sources are disabled on this server; start it with --sqlite-dir DIR to allow SQLite files "
        "under DIR");
  }
  char root_buf[PATH_MAX];
  if (realpath(sqlite_root.c_str(), root_buf) == nullptr) {
    return Status::FailedPrecondition("the configured --sqlite-dir does not exist: " + sqlite_root);
  }
  std::string root = root_buf;
  std::string path = dsn;
  if (path.rfind("file:", 0) == 0)
    return FieldError("dsn", "URI filenames are not accepted; give a file path");
  if (path.empty() || path[0] != '/') path = root + "/" + path;
  char path_buf[PATH_MAX];
  if (realpath(path.c_str(), path_buf) == nullptr) {
    return Status::NotFound("sqlite file " + dsn + " does not exist under --sqlite-dir")
        .WithDetail(ErrorDetail::Field("dsn", "does not exist"));
  }
  std::string real = path_buf;
  std::string prefix = root == "/" ? "/" : root + "/";
  if (real.rfind(prefix, 0) != 0 || real == root) {
    return Status::PermissionDenied("sqlite file " + dsn + " is outside --sqlite-dir")
        .WithDetail(ErrorDetail::Field("dsn", "outside --sqlite-dir"));
  }
  return real;
}

struct SqliteDbClose {
  void operator()(sqlite3* d) const { sqlite3_close_v2(d); }
};
struct SqliteStmtFree {
  void operator()(sqlite3_stmt* st) const { sqlite3_finalize(st); }
};

struct SqliteProgress {
  const std::function<bool()>* cancel;
  Deadline deadline;
  bool cancelled = false;
  bool timed_out = false;
};

int SqliteProgressCb(void* arg) {
  auto* p = static_cast<SqliteProgress*>(arg);
  if (Cancelled(*p->cancel)) {
    p->cancelled = true;
    return 1;
  }
  if (p->deadline.Passed()) {
    p->timed_out = true;
    return 1;
  }
  return 0;
}

// Only reading is allowed: no pragmas, no attach, no writes (the file is read-only anyway).
int SqliteAuthorizer(void*, int action, const char*, const char*, const char*, const char*) {
  switch (action) {
    case SQLITE_SELECT:
    case SQLITE_READ:
    case SQLITE_FUNCTION:
    case SQLITE_RECURSIVE:
      return SQLITE_OK;
    default:
      return SQLITE_DENY;
  }
}

enum class DeclKind { kNone, kInt, kText, kBool, kFloat, kDate, kBlob };

DeclKind ClassifyDecl(const char* decl) {
  if (decl == nullptr) return DeclKind::kNone;
  std::string d = decl;
  for (char& c : d) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  auto has = [&](const char* s) { return d.find(s) != std::string::npos; };
  if (has("BOOL")) return DeclKind::kBool;
  if (has("INT")) return DeclKind::kInt;
  if (has("CHAR") || has("CLOB") || has("TEXT")) return DeclKind::kText;
  if (has("BLOB")) return DeclKind::kBlob;
  if (has("REAL") || has("FLOA") || has("DOUB") || has("NUMERIC") || has("DECIMAL")) return DeclKind::kFloat;
  if (has("DATE") || has("TIME")) return DeclKind::kDate;
  return DeclKind::kNone;
}

Status SqliteError(sqlite3* db, const std::string& context) {
  int code = sqlite3_extended_errcode(db);
  std::string msg = sqlite3_errmsg(db);
  std::string text = "sqlite " + context + ": " + msg;
  int primary = code & 0xff;
  if (primary == SQLITE_BUSY || primary == SQLITE_LOCKED) return Status::Unavailable(text);
  if (primary == SQLITE_NOMEM) return Status::ResourceExhausted(text);
  if (primary == SQLITE_IOERR || primary == SQLITE_CANTOPEN) return Status::FailedPrecondition(text);
  if (primary == SQLITE_CORRUPT || primary == SQLITE_NOTADB) {
    return Status::InvalidArgument(text).WithDetail(ErrorDetail::Field("dsn", msg));
  }
  return Status::InvalidArgument(text).WithDetail(ErrorDetail::Field("query", msg));
}

Result<SourceFetch> FetchSqlite(const SqlSource& src, const std::string& sqlite_root,
                                const std::string& out_path, const std::function<bool()>& cancel) {
  auto started = Clock::now();
  ASSIGN_OR_RETURN(std::string path, ResolveSqlitePath(src.dsn, sqlite_root));
  sqlite3* raw_db = nullptr;
  int rc = sqlite3_open_v2(path.c_str(), &raw_db, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, nullptr);
  std::unique_ptr<sqlite3, SqliteDbClose> db(raw_db);
  if (rc != SQLITE_OK) {
    return Status::FailedPrecondition("sqlite: cannot open " + src.dsn + ": " +
                                      (db ? sqlite3_errmsg(db.get()) : "out of memory"));
  }
  sqlite3_extended_result_codes(db.get(), 1);
  sqlite3_limit(db.get(), SQLITE_LIMIT_ATTACHED, 0);
  sqlite3_set_authorizer(db.get(), SqliteAuthorizer, nullptr);
  sqlite3_busy_timeout(db.get(), static_cast<int>(std::min<int64_t>(src.timeout_ms, INT_MAX)));
  SqliteProgress progress{&cancel, Deadline{started + std::chrono::milliseconds(src.timeout_ms)}};
  sqlite3_progress_handler(db.get(), kSqliteProgressOps, SqliteProgressCb, &progress);

  const char* tail = nullptr;
  sqlite3_stmt* raw_stmt = nullptr;
  rc = sqlite3_prepare_v2(db.get(), src.query.data(), static_cast<int>(src.query.size()), &raw_stmt, &tail);
  std::unique_ptr<sqlite3_stmt, SqliteStmtFree> stmt(raw_stmt);
  if (rc != SQLITE_OK) {
    if (progress.cancelled) return Status::Cancelled("sqlite fetch cancelled");
    int off = sqlite3_error_offset(db.get());
    Status st = SqliteError(db.get(), "query");
    if (off >= 0) {
      st = Status(st.code(), st.message() + " at character " + std::to_string(off + 1) + " of the query")
               .WithDetail(ErrorDetail::Position("query", off + 1, sqlite3_errmsg(db.get())));
    }
    return st;
  }
  if (!stmt) return FieldError("query", "is empty");
  // Anything after the first statement other than blanks, comments and semicolons is refused.
  size_t tail_off = static_cast<size_t>(tail - src.query.data());
  if (tail_off < src.query.size()) {
    sqlite3_stmt* next = nullptr;
    const char* rest = nullptr;
    int rc2 = sqlite3_prepare_v2(db.get(), tail, static_cast<int>(src.query.size() - tail_off), &next, &rest);
    sqlite3_finalize(next);
    if (rc2 != SQLITE_OK || next != nullptr) {
      return Status::InvalidArgument("query: only one statement is allowed; more SQL follows at character " +
                                     std::to_string(tail_off + 1))
          .WithDetail(ErrorDetail::Position("query", static_cast<int64_t>(tail_off) + 1,
                                            "only one statement is allowed"));
    }
  }
  if (!sqlite3_stmt_readonly(stmt.get())) return FieldError("query", "must be read-only (a SELECT)");
  int ncol = sqlite3_column_count(stmt.get());
  if (ncol == 0) return FieldError("query", "returns no columns; it must be a SELECT or VALUES query");

  std::vector<std::string> raw_names;
  std::vector<DeclKind> decl;
  Json columns = Json::array();
  for (int i = 0; i < ncol; ++i) {
    const char* n = sqlite3_column_name(stmt.get(), i);
    raw_names.emplace_back(n ? n : "");
    const char* d = sqlite3_column_decltype(stmt.get(), i);
    decl.push_back(ClassifyDecl(d));
  }
  std::vector<std::string> names = UniqueColumnNames(raw_names);
  for (int i = 0; i < ncol; ++i) {
    const char* d = sqlite3_column_decltype(stmt.get(), i);
    columns.push_back({{"name", names[i]}, {"db_type", d ? d : ""}});
  }
  // Whether every non-null value so far fits the declared type (decides the hint at the end).
  std::vector<char> fits(static_cast<size_t>(ncol), 1);

  SpoolFile spool;
  RETURN_IF_ERROR(spool.Open(out_path));
  RETURN_IF_ERROR(spool.Write(CsvHeader(names)));

  std::string buf;
  buf.reserve(kFlushBytes + 4096);
  int64_t rows = 0;
  char num[64];
  while (true) {
    rc = sqlite3_step(stmt.get());
    if (rc == SQLITE_DONE) break;
    if (rc != SQLITE_ROW) {
      if (progress.cancelled) return Status::Cancelled("sqlite fetch cancelled");
      if (progress.timed_out) {
        return Status::DeadlineExceeded("sqlite query timed out after " + std::to_string(src.timeout_ms) +
                                        " ms");
      }
      return SqliteError(db.get(), "query");
    }
    if (++rows > src.max_rows) return TooManyRows(src.max_rows);
    for (int i = 0; i < ncol; ++i) {
      if (i) buf.push_back(',');
      int t = sqlite3_column_type(stmt.get(), i);
      DeclKind k = decl[static_cast<size_t>(i)];
      char& fit = fits[static_cast<size_t>(i)];
      switch (t) {
        case SQLITE_NULL:
          // Missing is an empty field; a one-column row of it would be a blank line, which CSV readers skip,
          // so there it is written as "" (also read as missing).
          if (ncol == 1) buf.append("\"\"");
          break;
        case SQLITE_INTEGER: {
          sqlite3_int64 v = sqlite3_column_int64(stmt.get(), i);
          if (k == DeclKind::kBool && (v == 0 || v == 1)) {
            buf.append(v ? "true" : "false");
            break;
          }
          if (k == DeclKind::kBool || k == DeclKind::kDate) fit = 0;
          auto r = std::to_chars(num, num + sizeof num, static_cast<int64_t>(v));
          buf.append(num, r.ptr);
          break;
        }
        case SQLITE_FLOAT: {
          double v = sqlite3_column_double(stmt.get(), i);
          if (k != DeclKind::kFloat) fit = 0;
          auto r = std::to_chars(num, num + sizeof num, v);
          buf.append(num, r.ptr);
          break;
        }
        case SQLITE_TEXT: {
          const char* p = reinterpret_cast<const char*>(sqlite3_column_text(stmt.get(), i));
          std::string_view v(p ? p : "", static_cast<size_t>(sqlite3_column_bytes(stmt.get(), i)));
          if (k == DeclKind::kDate) {
            int64_t us = 0;
            if (!ParseDatetimeMicros(TrimBlanks(v), &us)) fit = 0;
          } else if (k != DeclKind::kText) {
            fit = 0;
          }
          AppendCsvField(v, true, &buf);
          break;
        }
        default: {  // SQLITE_BLOB
          const char* p = static_cast<const char*>(sqlite3_column_blob(stmt.get(), i));
          size_t n = static_cast<size_t>(sqlite3_column_bytes(stmt.get(), i));
          if (k != DeclKind::kBlob) fit = 0;
          if (n == 0) {
            buf.append("\"\"");
          } else {
            static const char* kHex = "0123456789abcdef";
            for (size_t j = 0; j < n; ++j) {
              auto b = static_cast<unsigned char>(p[j]);
              buf.push_back(kHex[b >> 4]);
              buf.push_back(kHex[b & 15]);
            }
          }
          break;
        }
      }
    }
    buf.push_back('\n');
    if (buf.size() >= kFlushBytes) {
      RETURN_IF_ERROR(spool.Write(buf));
      buf.clear();
    }
  }
  RETURN_IF_ERROR(spool.Write(buf));
  RETURN_IF_ERROR(spool.Commit());

  SourceFetch fetch;
  fetch.format = "csv";
  fetch.rows = rows;
  fetch.bytes = spool.bytes_written();
  fetch.hints.missing_tokens = {"", "NaN"};
  for (int i = 0; i < ncol; ++i) {
    if (!fits[static_cast<size_t>(i)]) continue;
    switch (decl[static_cast<size_t>(i)]) {
      case DeclKind::kInt:
        fetch.hints.types[names[i]] = ColumnType::kInt64;
        break;
      case DeclKind::kFloat:
        fetch.hints.types[names[i]] = ColumnType::kFloat64;
        break;
      case DeclKind::kBool:
        fetch.hints.types[names[i]] = ColumnType::kBool;
        break;
      case DeclKind::kDate:
        fetch.hints.types[names[i]] = ColumnType::kDatetime;
        break;
      case DeclKind::kText:
      case DeclKind::kBlob:
        fetch.hints.types[names[i]] = ColumnType::kString;
        break;
      case DeclKind::kNone:
        break;
    }
  }
  std::string rel = path.substr(std::min(path.size(), [&] {
    char rb[PATH_MAX];
    return realpath(sqlite_root.c_str(), rb) ? std::strlen(rb) + 1 : size_t{0};
  }()));
  fetch.info = {
      {"kind", "sqlite"},
      {"path", rel},
      {"query", src.query},
      {"columns", columns},
      {"rows", rows},
      {"elapsed_ms", std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - started).count()}};
  return fetch;
}

}  // namespace

std::string RedactPostgresDsn(const std::string& dsn) {
  auto kv = ParsePgDsn(dsn);
  if (!kv.ok()) return "<invalid dsn>";
  std::string out;
  for (const auto& [k, v] : *kv) {
    if (k == "password") continue;
    if (!out.empty()) out.push_back(' ');
    out += k + "='";
    for (char c : v) {
      if (c == '\'' || c == '\\') out.push_back('\\');
      out.push_back(c);
    }
    out.push_back('\'');
  }
  return out;
}

Status CheckSqlSource(const SqlSource& s, const std::string& sqlite_root) {
  if (s.kind != "postgres" && s.kind != "sqlite")
    return FieldError("kind", "must be \"postgres\" or \"sqlite\"");
  if (s.dsn.empty()) return FieldError("dsn", "is required");
  if (s.dsn.find('\0') != std::string::npos) return FieldError("dsn", "contains a NUL byte");
  if (TrimSqlEnd(s.query).empty()) return FieldError("query", "is required");
  if (s.query.size() > kMaxSqlQueryBytes) {
    return FieldError("query", "is longer than " + std::to_string(kMaxSqlQueryBytes) + " bytes");
  }
  if (s.query.find('\0') != std::string::npos) return FieldError("query", "contains a NUL byte");
  if (s.timeout_ms < 1 || s.timeout_ms > kMaxTimeoutMs) {
    return FieldError("timeout_ms", "must be between 1 and " + std::to_string(kMaxTimeoutMs));
  }
  if (s.max_rows < 1) return FieldError("max_rows", "must be at least 1");
  if (s.kind == "postgres") {
    ASSIGN_OR_RETURN(auto kv, ParsePgDsn(s.dsn));
    std::string hosts = Lookup(kv, "host") + "," + Lookup(kv, "hostaddr");
    if (hosts == ",") {
      return FieldError("dsn",
                        "host is required (the default would be a unix-domain socket on the lathe server)");
    }
    for (size_t b = 0; b <= hosts.size();) {
      size_t e = hosts.find(',', b);
      if (e == std::string::npos) e = hosts.size();
      std::string h = hosts.substr(b, e - b);
      if (!h.empty() && (h[0] == '/' || h[0] == '@')) {
        return FieldError("dsn",
                          "unix-domain socket hosts are not allowed (they authenticate as the lathe "
                          "server's own OS user); give a TCP host name or address");
      }
      b = e + 1;
    }
    for (const auto& [k, v] : kv) {
      if (ForbiddenPgKeywords().count(k) != 0) {
        return FieldError("dsn",
                          "the connection option '" + k + "' is not allowed (it reads files on the server)");
      }
    }
    return Status::Ok();
  }
  return ResolveSqlitePath(s.dsn, sqlite_root).TakeStatus();
}

Result<SourceFetch> FetchSql(const SqlSource& s, const std::string& sqlite_root, const std::string& out_path,
                             const std::function<bool()>& cancel) {
  RETURN_IF_ERROR(CheckSqlSource(s, sqlite_root));
  if (Cancelled(cancel)) return Status::Cancelled("sql fetch cancelled");
  if (s.kind == "postgres") return FetchPostgres(s, out_path, cancel);
  return FetchSqlite(s, sqlite_root, out_path, cancel);
}

}  // namespace lathe
