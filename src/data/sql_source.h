// SQL data sources: run one read-only query against PostgreSQL (libpq) or a SQLite file and land the result
// as a CSV file (RFC 4180, header row) that the CSV importer then reads.
//
// PostgreSQL: `dsn` is a libpq conninfo ("host=… dbname=… user=… password=…") or URI
// ("postgresql://user:pw@host:5432/db"). The connection is non-blocking and honours `timeout_ms` and
// `cancel` throughout (connect, query, transfer). The query is first prepared on its own (which proves it is
// exactly one complete statement and yields its column types), then streamed with
// COPY (query) TO STDOUT (FORMAT csv) inside BEGIN READ ONLY with SET LOCAL statement_timeout, DateStyle ISO
// and TimeZone UTC. The read-only transaction is a guard, not a sandbox: give lathe a database role that can
// only SELECT what users may import. The conninfo keywords service, passfile, sslkey, sslcert,
// sslpassword, sslcrlfile and sslcrldir are refused (they read files on the lathe server), a TCP host is required
// (unix-domain sockets would authenticate as the lathe server's OS user), and neither ~/.pgpass nor the
// server's PGPASSWORD is ever used.
// PG types map to hints: int2/4/8 -> integer, float4/8/numeric -> float, bool -> boolean,
// date/timestamp/timestamptz -> datetime (timestamptz rendered in UTC), everything else -> string.
//
// SQLite: `dsn` is a file path, relative paths resolved against sqlite_root; the real path (symlinks
// resolved) must lie inside sqlite_root. Opened with SQLITE_OPEN_READONLY (no URI filenames), ATTACH
// disabled, and an authorizer that allows only reading; exactly one statement, which must be read-only.
// Declared column types become hints only when every value matched them (SQLite does not enforce types):
// INT -> integer, CHAR/CLOB/TEXT -> string, BOOL with 0/1 values -> boolean (written as true/false),
// REAL/FLOA/DOUB/NUMERIC/DECIMAL -> float, DATE/TIME with ISO 8601 text -> datetime. Blobs are written as
// lower-case hex strings.
//
// Both: NULL is written as an empty field, an empty string as "" (quoted); the hints set missing_tokens to
// {"", "NaN"} so text such as "NA" or "None" stays text. Duplicate or empty column names are renamed
// (a, a_2, …; column_3). max_rows: a result with MORE rows than max_rows is an error
// (kFailedPrecondition naming the limit; nothing is written) rather than a silent truncation — put a LIMIT in
// the query to take a sample.
//
// Errors: kInvalidArgument for bad fields (ErrorDetail::Field), rejected credentials or unknown database
// (field "dsn"), SQL errors (with ErrorDetail::Position into "query" when the database reports one);
// kPermissionDenied for a sqlite path outside sqlite_root or sqlite disabled; kUnavailable when the server
// cannot be reached; kDeadlineExceeded on timeout (client deadline or statement_timeout); kCancelled;
// kFailedPrecondition for max_rows. Passwords never appear in messages or info.
// Writes are atomic (SpoolFile): on any error nothing exists at out_path. Thread-safe: independent calls
// may run concurrently; `cancel` is called on the calling thread.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "common/status.h"
#include "data/source_fetch.h"

namespace lathe {

struct SqlSource {
  std::string kind;             // "postgres" | "sqlite"
  std::string dsn;              // libpq conninfo or URI; for sqlite the file path
  std::string query;            // one SELECT / WITH / VALUES / TABLE statement
  int64_t timeout_ms = 60000;   // whole fetch: connect + query + transfer
  int64_t max_rows = 10000000;  // more rows than this is an error
};

inline constexpr size_t kMaxSqlQueryBytes = 1 << 20;

// Validates fields without connecting. sqlite: the path must resolve (realpath) inside sqlite_root; an empty
// sqlite_root means sqlite sources are disabled (kPermissionDenied naming the server flag --sqlite-dir).
Status CheckSqlSource(const SqlSource& s, const std::string& sqlite_root);

// Runs the query and lands the result at out_path as CSV (format "csv"). info holds kind, host, port,
// dbname, user (postgres) or path (sqlite), query, columns [{name, db_type}], rows and elapsed_ms.
Result<SourceFetch> FetchSql(const SqlSource& s, const std::string& sqlite_root, const std::string& out_path,
                             const std::function<bool()>& cancel);

// The conninfo / URI with any password removed, as libpq-style key=value text (for display and logs).
// Unparseable input yields "<invalid dsn>".
std::string RedactPostgresDsn(const std::string& dsn);

}  // namespace lathe
