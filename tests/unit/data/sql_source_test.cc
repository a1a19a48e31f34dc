// SQL sources against a real PostgreSQL 15 (tests/tools/pgtmp starts a throwaway cluster once per binary)
// and real SQLite files: types and hints, quoting, nulls, unicode, 100k rows, credentials, timeouts,
// cancellation, max_rows, read-only enforcement, and that nothing is left at out_path on error.
#include "data/sql_source.h"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <sqlite3.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "data_test_util.h"

namespace lathe {
namespace {

using lathe::testing::ScratchDir;
using Clock = std::chrono::steady_clock;

std::string ReadAll(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

std::string RunShell(const std::string& cmd, int* rc) {
  std::string out;
  FILE* p = popen(cmd.c_str(), "r");
  if (p == nullptr) {
    *rc = -1;
    return out;
  }
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  *rc = pclose(p);
  return out;
}

int64_t ElapsedMs(Clock::time_point t0) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0).count();
}

bool NoSpoolLeft(const ScratchDir& dir) { return dir.FileCount() == 0; }

// ------------------------------------------------------------------------------------------------ PostgreSQL

class PostgresSource : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    char tmpl[] = "/tmp/lathe-pgtmp-XXXXXX";
    dir_ = ::mkdtemp(tmpl);
    std::string tool = std::string(LATHE_TEST_DATA_DIR) + "/../tools/pgtmp";
    int rc = 0;
    std::string out = RunShell(tool + " start " + dir_ + " 2>&1", &rc);
    if (WIFEXITED(rc) && WEXITSTATUS(rc) == 77) {
      dir_.clear();
      skip_reason_ = out;  // every test skips with this reason (gtest 1.12 does not skip from SetUpTestSuite)
      return;
    }
    ASSERT_EQ(rc, 0) << out;
    port_ = std::stoi(out);
    Psql(R"sql(
CREATE TABLE all_types (
  id int4 PRIMARY KEY, small int2, big int8, r float4, d float8, n numeric(12,3), flag bool,
  day date, ts timestamp, tstz timestamptz, name text, code varchar(10), doc jsonb, uid uuid, raw bytea);
INSERT INTO all_types VALUES
 (1, 7, 9007199254740993, 1.5, 0.1, 12345.678, true, '2024-02-29', '2024-02-29 13:14:15.123456',
  '2024-02-29 13:14:15+02', 'plain', 'A1', '{"k": [1, 2]}', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '\xdeadbeef'),
 (2, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
 (3, -32768, -9223372036854775808, 'NaN', 'Infinity', -0.5, false, '1970-01-01', '1970-01-01 00:00:00',
  '1970-01-01 00:00:00+00', 'comma, "quote"' || E'\n' || 'newline', '', '[]', NULL, ''),
 (4, 0, 0, 0, 1e300, 0, true, '9999-12-31', '2000-01-01', '2000-01-01 00:00:00-08', 'Ünïcødé 日本語 🎉', 'NA', 'null',
  NULL, NULL);
CREATE TABLE big AS SELECT g AS id, g * 0.5 AS half, 'row ' || g AS label, (g % 2 = 0) AS even
  FROM generate_series(1, 100000) g;
CREATE TABLE victim (x int);
INSERT INTO victim VALUES (1), (2);
)sql");
  }

  static void TearDownTestSuite() {
    if (dir_.empty()) return;
    int rc = 0;
    RunShell(std::string(LATHE_TEST_DATA_DIR) + "/../tools/pgtmp stop " + dir_ + " 2>&1", &rc);
  }

  static void Psql(const std::string& sql) {
    std::string file = dir_ + "-setup.sql";
    {
      std::ofstream f(file);
      f << sql;
    }
    int rc = 0;
    std::string out = RunShell("psql -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p " + std::to_string(port_) +
                                   " -U lathe_test -d lathe_test -f " + file + " 2>&1",
                               &rc);
    std::remove(file.c_str());
    ASSERT_EQ(rc, 0) << out;
  }

  static std::string Dsn(const std::string& extra = "") {
    return "host=127.0.0.1 port=" + std::to_string(port_) + " dbname=lathe_test user=lathe_test " + extra;
  }

  static SqlSource Pg(const std::string& query) {
    SqlSource s;
    s.kind = "postgres";
    s.dsn = Dsn();
    s.query = query;
    return s;
  }

  Result<SourceFetch> Fetch(const SqlSource& s, const std::function<bool()>& cancel = nullptr) {
    return FetchSql(s, "", out_, cancel);
  }

  void SetUp() override {
    if (!skip_reason_.empty()) GTEST_SKIP() << skip_reason_;
  }

  ScratchDir scratch_;
  std::string out_ = scratch_.Path("out.csv");
  static std::string dir_;
  static std::string skip_reason_;
  static int port_;
};

std::string PostgresSource::dir_;
std::string PostgresSource::skip_reason_;
int PostgresSource::port_ = 0;

TEST_F(PostgresSource, AllTypesCsvAndHints) {
  auto r = Fetch(Pg("SELECT * FROM all_types ORDER BY id;"));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->format, "csv");
  EXPECT_EQ(r->rows, 4);
  std::string csv = ReadAll(out_);
  EXPECT_EQ(r->bytes, static_cast<int64_t>(csv.size()));
  std::string expected =
      "id,small,big,r,d,n,flag,day,ts,tstz,name,code,doc,uid,raw\n"
      "1,7,9007199254740993,1.5,0.1,12345.678,t,2024-02-29,2024-02-29 13:14:15.123456,2024-02-29 11:14:15+00,"
      "plain,A1,\"{\"\"k\"\": [1, 2]}\",a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11,\\xdeadbeef\n"
      "2,,,,,,,,,,,,,,\n"
      "3,-32768,-9223372036854775808,NaN,Infinity,-0.500,f,1970-01-01,1970-01-01 00:00:00,1970-01-01 "
      "00:00:00+00,"
      "\"comma, \"\"quote\"\"\nnewline\",\"\",[],,\\x\n"
      "4,0,0,0,1e+300,0.000,t,9999-12-31,2000-01-01 00:00:00,2000-01-01 08:00:00+00,Ünïcødé 日本語 "
      "🎉,NA,null,,\n";
  EXPECT_EQ(csv, expected);
  const auto& t = r->hints.types;
  EXPECT_EQ(t.at("id"), ColumnType::kInt64);
  EXPECT_EQ(t.at("small"), ColumnType::kInt64);
  EXPECT_EQ(t.at("big"), ColumnType::kInt64);
  EXPECT_EQ(t.at("r"), ColumnType::kFloat64);
  EXPECT_EQ(t.at("d"), ColumnType::kFloat64);
  EXPECT_EQ(t.at("n"), ColumnType::kFloat64);
  EXPECT_EQ(t.at("flag"), ColumnType::kBool);
  EXPECT_EQ(t.at("day"), ColumnType::kDatetime);
  EXPECT_EQ(t.at("ts"), ColumnType::kDatetime);
  EXPECT_EQ(t.at("tstz"), ColumnType::kDatetime);
  EXPECT_EQ(t.at("name"), ColumnType::kString);
  EXPECT_EQ(t.at("doc"), ColumnType::kString);
  EXPECT_EQ(t.at("uid"), ColumnType::kString);
  EXPECT_EQ(t.at("raw"), ColumnType::kString);
  EXPECT_EQ(r->hints.missing_tokens, (std::vector<std::string>{"", "NaN"}));
  EXPECT_EQ(r->info["kind"], "postgres");
  EXPECT_EQ(r->info["dbname"], "lathe_test");
  EXPECT_EQ(r->info["columns"][7]["db_type"], "date");
  EXPECT_EQ(r->info["rows"], 4);
}

TEST_F(PostgresSource, OutputImportsAsCsv) {
  auto r =
      Fetch(Pg("SELECT id, small, big, d, flag, day, tstz, name FROM all_types WHERE id <> 3 ORDER BY id"));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ScratchDir dir;
  auto imp = lathe::testing::ImportPath(out_, dir);
  ASSERT_TRUE(imp.status.ok()) << imp.status.ToString();
  EXPECT_EQ(imp.result.rows, 3);
}

TEST_F(PostgresSource, HundredThousandRows) {
  auto t0 = Clock::now();
  auto r = Fetch(Pg("SELECT * FROM big ORDER BY id"));
  int64_t ms = ElapsedMs(t0);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->rows, 100000);
  std::string csv = ReadAll(out_);
  EXPECT_EQ(std::count(csv.begin(), csv.end(), '\n'), 100001);
  EXPECT_EQ(csv.substr(0, 40), "id,half,label,even\n1,0.5,row 1,f\n2,1.0,r");
  EXPECT_NE(csv.find("\n100000,50000.0,row 100000,t\n"), std::string::npos);
  EXPECT_EQ(r->hints.types.at("half"), ColumnType::kFloat64);
  EXPECT_EQ(r->hints.types.at("even"), ColumnType::kBool);
  std::printf("[ measure ] postgres 100k rows, %zu bytes: %lld ms\n", csv.size(), static_cast<long long>(ms));
}

TEST_F(PostgresSource, DuplicateAndEmptyColumnNamesAreRenamed) {
  auto r = Fetch(Pg("SELECT 1 AS a, 2 AS a, 3 AS \"x,y\""));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(ReadAll(out_), "a,a_2,\"x,y\"\n1,2,3\n");
}

TEST_F(PostgresSource, PasswordUserAndRedaction) {
  SqlSource s = Pg("SELECT count(*) AS n FROM big");
  s.dsn = "postgresql://lathe_pw:lathe-pw-secret@127.0.0.1:" + std::to_string(port_) + "/lathe_test";
  auto r = Fetch(s);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(ReadAll(out_), "n\n100000\n");
  EXPECT_EQ(r->info["user"], "lathe_pw");
  EXPECT_EQ(r->info.dump().find("lathe-pw-secret"), std::string::npos);
  EXPECT_EQ(RedactPostgresDsn(s.dsn).find("secret"), std::string::npos);
  EXPECT_NE(RedactPostgresDsn(s.dsn).find("user='lathe_pw'"), std::string::npos);
  EXPECT_EQ(RedactPostgresDsn("host=x password='p w'"), "host='x'");
  EXPECT_EQ(RedactPostgresDsn("host='unclosed"), "<invalid dsn>");
}

TEST_F(PostgresSource, WrongPasswordIsInvalidArgumentWithoutThePassword) {
  SqlSource s = Pg("SELECT 1");
  s.dsn = "host=127.0.0.1 port=" + std::to_string(port_) +
          " dbname=lathe_test user=lathe_pw password=WrongHorse42";
  auto r = Fetch(s);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << r.status().ToString();
  EXPECT_NE(r.status().message().find("password authentication failed"), std::string::npos);
  EXPECT_EQ(r.status().ToString().find("WrongHorse42"), std::string::npos);
  EXPECT_TRUE(NoSpoolLeft(scratch_));
}

TEST_F(PostgresSource, ServerEnvironmentPasswordIsNotUsed) {
  setenv("PGPASSWORD", "lathe-pw-secret", 1);
  SqlSource s = Pg("SELECT 1");
  s.dsn = "host=127.0.0.1 port=" + std::to_string(port_) + " dbname=lathe_test user=lathe_pw";
  auto r = Fetch(s);
  unsetenv("PGPASSWORD");
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << r.status().ToString();
}

TEST_F(PostgresSource, UnknownDatabase) {
  SqlSource s = Pg("SELECT 1");
  s.dsn = "host=127.0.0.1 port=" + std::to_string(port_) + " dbname=nope user=lathe_test";
  auto r = Fetch(s);
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << r.status().ToString();
  EXPECT_NE(r.status().message().find("\"nope\" does not exist"), std::string::npos);
}

TEST_F(PostgresSource, ConnectionRefused) {
  // Bind and close a socket to find a port nothing listens on.
  int rc = 0;
  std::string port = RunShell(
      "/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind((\"127.0.0.1\",0)); "
      "print(s.getsockname()[1])'",
      &rc);
  SqlSource s = Pg("SELECT 1");
  s.dsn = "host=127.0.0.1 port=" + std::to_string(std::stoi(port)) + " dbname=x user=y password=Sekrit99";
  auto r = Fetch(s);
  EXPECT_EQ(r.status().code(), StatusCode::kUnavailable) << r.status().ToString();
  EXPECT_NE(r.status().message().find("refused"), std::string::npos) << r.status().message();
  EXPECT_EQ(r.status().ToString().find("Sekrit99"), std::string::npos);
}

TEST_F(PostgresSource, UnreachableHostTimesOut) {
  SqlSource s = Pg("SELECT 1");
  // TEST-NET-1 (RFC 5737): never routed, so the SYN goes unanswered (or the network is unreachable at once).
  s.dsn = "host=192.0.2.1 port=5432 dbname=x user=y connect_timeout=30";
  s.timeout_ms = 1500;
  auto t0 = Clock::now();
  auto r = Fetch(s);
  int64_t ms = ElapsedMs(t0);
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(r.status().code() == StatusCode::kDeadlineExceeded ||
              r.status().code() == StatusCode::kUnavailable)
      << r.status().ToString();
  EXPECT_LT(ms, 4000);
}

TEST_F(PostgresSource, SyntaxErrorNamesPosition) {
  auto r = Fetch(Pg("SELECT id FROM all_types WHERE id = = 1"));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("syntax error"), std::string::npos) << r.status().message();
  ASSERT_FALSE(r.status().details().empty());
  EXPECT_EQ(r.status().details()[0].field, "query");
  EXPECT_EQ(r.status().details()[0].position, 37);

  auto r2 = Fetch(Pg("SELECT * FROM no_such_table"));
  EXPECT_EQ(r2.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(r2.status().message().find("no_such_table"), std::string::npos);
  EXPECT_EQ(r2.status().details()[0].position, 15);
  EXPECT_TRUE(NoSpoolLeft(scratch_));
}

TEST_F(PostgresSource, RuntimeErrorDuringCopy) {
  auto r = Fetch(Pg("SELECT 1 / (id - 3) FROM all_types ORDER BY id"));
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << r.status().ToString();
  EXPECT_NE(r.status().message().find("division by zero"), std::string::npos);
  EXPECT_TRUE(NoSpoolLeft(scratch_));
}

TEST_F(PostgresSource, StatementTimeout) {
  SqlSource s = Pg("SELECT pg_sleep(10)");
  s.timeout_ms = 800;
  auto t0 = Clock::now();
  auto r = Fetch(s);
  EXPECT_EQ(r.status().code(), StatusCode::kDeadlineExceeded) << r.status().ToString();
  EXPECT_LT(ElapsedMs(t0), 3000);
  EXPECT_TRUE(NoSpoolLeft(scratch_));
}

TEST_F(PostgresSource, MaxRows) {
  SqlSource s = Pg("SELECT g FROM generate_series(1, 100) g");
  s.max_rows = 100;
  auto ok = Fetch(s);
  ASSERT_TRUE(ok.ok()) << ok.status().ToString();
  EXPECT_EQ(ok->rows, 100);
  std::filesystem::remove(out_);
  s.max_rows = 99;
  auto r = Fetch(s);
  EXPECT_EQ(r.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(r.status().message().find("max_rows=99"), std::string::npos);
  EXPECT_TRUE(NoSpoolLeft(scratch_));
}

TEST_F(PostgresSource, CancelDuringQuery) {
  std::atomic<bool> stop{false};
  std::thread t([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    stop = true;
  });
  auto t0 = Clock::now();
  auto r = Fetch(Pg("SELECT pg_sleep(20)"), [&] { return stop.load(); });
  t.join();
  EXPECT_EQ(r.status().code(), StatusCode::kCancelled) << r.status().ToString();
  EXPECT_LT(ElapsedMs(t0), 3000);
  EXPECT_TRUE(NoSpoolLeft(scratch_));
}

TEST_F(PostgresSource, CancelDuringTransfer) {
  std::atomic<int> calls{0};
  auto r = Fetch(Pg("SELECT * FROM big"), [&] { return ++calls > 5; });
  EXPECT_EQ(r.status().code(), StatusCode::kCancelled) << r.status().ToString();
  EXPECT_TRUE(NoSpoolLeft(scratch_));
}

TEST_F(PostgresSource, WritesAndMultipleStatementsAreRefused) {
  for (const char* q :
       {"DELETE FROM victim RETURNING x", "SELECT 1; DELETE FROM victim",
        "SELECT 1) TO STDOUT; DELETE FROM victim; --", "COMMIT", "CREATE TABLE t2 (x int)", "SELECT 1 --"}) {
    auto r = Fetch(Pg(q));
    if (std::string(q) == "SELECT 1 --") {
      EXPECT_TRUE(r.ok()) << q << ": " << r.status().ToString();  // a trailing comment is harmless
      continue;
    }
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << q << ": " << r.status().ToString();
  }
  auto count = Fetch(Pg("SELECT count(*) FROM victim"));
  ASSERT_TRUE(count.ok());
  EXPECT_EQ(ReadAll(out_), "count\n2\n");
}

TEST_F(PostgresSource, CheckRejectsBadFields) {
  SqlSource s = Pg("SELECT 1");
  s.kind = "mysql";
  EXPECT_EQ(CheckSqlSource(s, "").details()[0].field, "kind");
  s = Pg("   ;  ");
  EXPECT_EQ(CheckSqlSource(s, "").details()[0].field, "query");
  s = Pg("SELECT 1");
  s.timeout_ms = 0;
  EXPECT_EQ(CheckSqlSource(s, "").details()[0].field, "timeout_ms");
  s = Pg("SELECT 1");
  s.max_rows = 0;
  EXPECT_EQ(CheckSqlSource(s, "").details()[0].field, "max_rows");
  for (const char* dsn : {"dbname=x user=y", "host=/var/run/postgresql dbname=x", "host=h1,/tmp dbname=x",
                          "postgresql:///db?host=/tmp"}) {
    s = Pg("SELECT 1");
    s.dsn = dsn;
    Status st = CheckSqlSource(s, "");
    EXPECT_EQ(st.code(), StatusCode::kInvalidArgument) << dsn;
    EXPECT_EQ(st.details()[0].field, "dsn") << dsn;
  }
  for (const char* opt : {"passfile=/etc/passwd", "service=x", "sslkey=/root/key"}) {
    s = Pg("SELECT 1");
    s.dsn = Dsn(opt);
    Status st = CheckSqlSource(s, "");
    EXPECT_EQ(st.code(), StatusCode::kInvalidArgument) << opt;
    EXPECT_EQ(st.details()[0].field, "dsn");
  }
  s = Pg("SELECT 1");
  s.dsn = "host='unterminated password=abc";
  Status st = CheckSqlSource(s, "");
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(st.ToString().find("abc"), std::string::npos);
  s = Pg(std::string(kMaxSqlQueryBytes + 1, ' ') + "x");
  EXPECT_EQ(CheckSqlSource(s, "").details()[0].field, "query");
}

// ---------------------------------------------------------------------------------------------------- SQLite

class SqliteSource : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = root_dir_.Path("");
    root_.pop_back();
    db_path_ = root_dir_.Path("test.db");
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(db_path_.c_str(), &db), SQLITE_OK);
    const char* sql = R"sql(
CREATE TABLE t (id INTEGER, price REAL, name TEXT, active BOOLEAN, seen DATETIME, payload BLOB, anything,
                dirty_int INTEGER, code VARCHAR(8));
INSERT INTO t VALUES (1, 9.5, 'plain', 1, '2024-01-02 03:04:05', x'00ff', 5, 1, '007');
INSERT INTO t VALUES (2, NULL, 'comma, "q"' || char(10) || 'line', 0, '2024-01-03', NULL, 'x', 'oops', '');
INSERT INTO t VALUES (3, 3, 'Ünïcødé 🎉', NULL, NULL, x'', NULL, NULL, NULL);
INSERT INTO t VALUES (4, 0.1, '', 1, '2024-12-31T23:59:59Z', NULL, 2.5, -9223372036854775808, 'NA');
)sql";
    char* err = nullptr;
    ASSERT_EQ(sqlite3_exec(db, sql, nullptr, nullptr, &err), SQLITE_OK) << (err ? err : "");
    sqlite3_close(db);
  }

  SqlSource Lite(const std::string& query, const std::string& dsn = "test.db") {
    SqlSource s;
    s.kind = "sqlite";
    s.dsn = dsn;
    s.query = query;
    return s;
  }

  Result<SourceFetch> Fetch(const SqlSource& s, const std::function<bool()>& cancel = nullptr) {
    return FetchSql(s, root_, out_, cancel);
  }

  ScratchDir root_dir_, out_dir_;
  std::string root_, db_path_;
  std::string out_ = out_dir_.Path("out.csv");
};

TEST_F(SqliteSource, TypesQuotingAndHints) {
  auto r = Fetch(Lite("SELECT * FROM t ORDER BY id;  -- trailing comment\n;"));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->rows, 4);
  EXPECT_EQ(ReadAll(out_),
            "id,price,name,active,seen,payload,anything,dirty_int,code\n"
            "1,9.5,plain,true,2024-01-02 03:04:05,00ff,5,1,007\n"
            "2,,\"comma, \"\"q\"\"\nline\",false,2024-01-03,,x,oops,\"\"\n"
            "3,3,Ünïcødé 🎉,,,\"\",,,\n"
            "4,0.1,\"\",true,2024-12-31T23:59:59Z,,2.5,-9223372036854775808,NA\n");
  const auto& h = r->hints.types;
  EXPECT_EQ(h.at("id"), ColumnType::kInt64);
  EXPECT_EQ(h.at("price"), ColumnType::kFloat64);  // REAL affinity stores 3 as 3.0
  EXPECT_EQ(h.at("name"), ColumnType::kString);
  EXPECT_EQ(h.at("active"), ColumnType::kBool);
  EXPECT_EQ(h.at("seen"), ColumnType::kDatetime);
  EXPECT_EQ(h.at("payload"), ColumnType::kString);
  EXPECT_EQ(h.at("code"), ColumnType::kString);
  EXPECT_EQ(h.count("anything"), 0u);   // no declared type
  EXPECT_EQ(h.count("dirty_int"), 0u);  // declared INTEGER but holds 'oops'
  EXPECT_EQ(r->info["path"], "test.db");
  EXPECT_EQ(r->info["columns"][3]["db_type"], "BOOLEAN");
}

TEST_F(SqliteSource, DisabledWithoutRoot) {
  Status st = CheckSqlSource(Lite("SELECT 1"), "");
  EXPECT_EQ(st.code(), StatusCode::kPermissionDenied);
  EXPECT_NE(st.message().find("--sqlite-dir"), std::string::npos);
  auto r = FetchSql(Lite("SELECT 1"), "", out_, nullptr);
  EXPECT_EQ(r.status().code(), StatusCode::kPermissionDenied);
}

TEST_F(SqliteSource, PathMustStayInsideRoot) {
  ScratchDir outside;
  std::string other = outside.Path("x.db");
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(other.c_str(), &db), SQLITE_OK);
  sqlite3_exec(db, "CREATE TABLE a(x)", nullptr, nullptr, nullptr);
  sqlite3_close(db);
  std::filesystem::create_symlink(other, root_dir_.Path("link.db"));
  for (const std::string& dsn :
       {other, std::string("../") + std::filesystem::path(other).parent_path().filename().string() + "/x.db",
        std::string("link.db"), root_ + "/.."}) {
    Status st = CheckSqlSource(Lite("SELECT 1", dsn), root_);
    EXPECT_EQ(st.code(), StatusCode::kPermissionDenied) << dsn << ": " << st.ToString();
  }
  EXPECT_EQ(CheckSqlSource(Lite("SELECT 1", "missing.db"), root_).code(), StatusCode::kNotFound);
  EXPECT_EQ(CheckSqlSource(Lite("SELECT 1", "file:test.db?mode=rwc"), root_).code(),
            StatusCode::kInvalidArgument);
  EXPECT_TRUE(CheckSqlSource(Lite("SELECT 1", db_path_), root_).ok());
}

TEST_F(SqliteSource, OnlyOneReadOnlyStatement) {
  struct Case {
    const char* q;
    StatusCode code;
  };
  for (const Case& c : {Case{"SELECT 1; SELECT 2", StatusCode::kInvalidArgument},
                        Case{"SELECT 1; DELETE FROM t", StatusCode::kInvalidArgument},
                        Case{"DELETE FROM t", StatusCode::kInvalidArgument},
                        Case{"INSERT INTO t(id) VALUES (9) RETURNING id", StatusCode::kInvalidArgument},
                        Case{"ATTACH '/etc/passwd' AS x", StatusCode::kInvalidArgument},
                        Case{"PRAGMA table_info(t)", StatusCode::kInvalidArgument},
                        Case{"SELECT load_extension('x')", StatusCode::kInvalidArgument},
                        Case{"-- nothing", StatusCode::kInvalidArgument}}) {
    auto r = Fetch(Lite(c.q));
    EXPECT_EQ(r.status().code(), c.code) << c.q << ": " << r.status().ToString();
  }
  auto r = Fetch(Lite("SELECT count(*) AS n FROM t"));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(ReadAll(out_), "n\n4\n");
  EXPECT_EQ(r->hints.types.count("n"), 0u);
}

TEST_F(SqliteSource, SyntaxErrorNamesPosition) {
  auto r = Fetch(Lite("SELECT id FROM t WHERE id = = 1"));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  ASSERT_FALSE(r.status().details().empty());
  EXPECT_EQ(r.status().details()[0].field, "query");
  EXPECT_GT(r.status().details()[0].position, 0);
  auto r2 = Fetch(Lite("SELECT * FROM nope"));
  EXPECT_NE(r2.status().message().find("no such table: nope"), std::string::npos);
  EXPECT_TRUE(NoSpoolLeft(out_dir_));
}

TEST_F(SqliteSource, NotADatabase) {
  root_dir_.Write("junk.db", std::string(4096, 'x'));
  auto r = Fetch(Lite("SELECT 1 FROM sqlite_master", "junk.db"));
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << r.status().ToString();
  EXPECT_TRUE(NoSpoolLeft(out_dir_));
}

constexpr const char* kEndless =
    "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT max(x) FROM c";

TEST_F(SqliteSource, TimeoutInterruptsQuery) {
  SqlSource s = Lite(kEndless);
  s.timeout_ms = 300;
  auto t0 = Clock::now();
  auto r = Fetch(s);
  EXPECT_EQ(r.status().code(), StatusCode::kDeadlineExceeded) << r.status().ToString();
  EXPECT_LT(ElapsedMs(t0), 2000);
  EXPECT_TRUE(NoSpoolLeft(out_dir_));
}

TEST_F(SqliteSource, CancelInterruptsQuery) {
  std::atomic<bool> stop{false};
  std::thread t([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    stop = true;
  });
  auto r = Fetch(Lite(kEndless), [&] { return stop.load(); });
  t.join();
  EXPECT_EQ(r.status().code(), StatusCode::kCancelled) << r.status().ToString();
  EXPECT_TRUE(NoSpoolLeft(out_dir_));
}

TEST_F(SqliteSource, MaxRowsAndManyRows) {
  SqlSource s = Lite(
      "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c LIMIT 100000) "
      "SELECT x, x * 0.25 AS q, 'r' || x AS s FROM c");
  auto t0 = Clock::now();
  auto r = Fetch(s);
  int64_t ms = ElapsedMs(t0);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->rows, 100000);
  std::string csv = ReadAll(out_);
  EXPECT_EQ(std::count(csv.begin(), csv.end(), '\n'), 100001);
  EXPECT_NE(csv.find("\n100000,25000,r100000\n"), std::string::npos);
  std::printf("[ measure ] sqlite 100k rows, %zu bytes: %lld ms\n", csv.size(), static_cast<long long>(ms));
  std::filesystem::remove(out_);
  s.max_rows = 99999;
  auto over = Fetch(s);
  EXPECT_EQ(over.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_TRUE(NoSpoolLeft(out_dir_));
}

}  // namespace
}  // namespace lathe
