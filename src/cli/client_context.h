// What every `lathe` client command shares: the resolved server and project (Context), calling the API and
// printing its problem+json errors, waiting on a job with a progress line, table/key-value output, and the
// Command table entry type. Internal to src/cli.
//
// Output conventions: results to stdout, errors, progress and hints to stderr; every server-supplied text
// that reaches the terminal goes through SanitizeCell (no escape-sequence injection). Not thread-safe: one
// invocation runs on the main thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "cli/client_args.h"
#include "cli/client_config.h"
#include "cli/http_client.h"
#include "common/json.h"
#include "common/status.h"

namespace lathe::cli {

inline constexpr int kExitOk = 0;
inline constexpr int kExitError = 1;
inline constexpr int kExitUsage = 2;
inline constexpr size_t kMaxInputBytes = 256u << 20;  // --data, --steps, --contract, stdin
inline constexpr auto kPollInterval = std::chrono::milliseconds(200);
inline constexpr int kMaxConsecutivePollFailures = 10;
inline constexpr int kDataDigits = 10;  // significant digits for data cells (metrics use 4)

void Out(const std::string& s);
void Err(const std::string& s);
bool StderrIsTty();
void PrintStatusError(const Status& s);
void PrintJson(const Json& j);
std::string HumanBytes(uint64_t bytes);

// Progress display on stderr: a redrawn bar on a terminal; otherwise plain lines (one per label change or
// 10 % step) when plain_lines_when_not_tty, else nothing.
class ProgressLine {
 public:
  explicit ProgressLine(bool plain_lines_when_not_tty);
  ~ProgressLine();
  ProgressLine(const ProgressLine&) = delete;
  ProgressLine& operator=(const ProgressLine&) = delete;

  void Update(double fraction, const std::string& label);
  void Finish();

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

// One invocation: the resolved server, project and output mode, and the HTTP client.
struct Context {
  EnvLookup env = ProcessEnv();
  std::string credentials_path;
  std::optional<Credentials> saved;
  Connection conn;
  std::string project = "default";
  bool json = false;
  std::unique_ptr<HttpClient> http_client;

  HttpClient& http();
  // "/api/v1/projects/<project>" + suffix.
  std::string ProjectPath(const std::string& suffix) const;
  Result<HttpResult> Raw(const std::string& method, const std::string& path, const Json* body = nullptr);
  // Prints a non-2xx response as the server's problem+json: detail, each error entry, the request id.
  void PrintApiError(const HttpResult& r) const;
  // Parses a 2xx body; an empty body (204) is an empty object. Prints why on failure.
  std::optional<Json> ParseOk(const HttpResult& r) const;
  // Sends the request; on a transport error or a non-2xx status prints the error and returns nullopt.
  std::optional<Json> Call(const std::string& method, const std::string& path, const Json* body = nullptr);
};

struct ColumnSpec {
  std::string header;
  std::string key;
  std::function<std::string(const Json&)> format = nullptr;  // default FormatCell
};

std::string CompactMetrics(const Json& metrics);
std::string CountOrValue(const Json& v);
// Table of an array of objects; columns that no row has are left out.
void PrintObjectTable(const Json& rows, const std::vector<ColumnSpec>& columns);
// FIELD VALUE table of an object's members, except those in `skip`.
void PrintKeyValues(const Json& obj, const std::set<std::string>& skip = {});
void PrintMetricsTable(const Json& metrics);
// obj[key], or a null Json when obj is not an object or lacks the key.
const Json& Member(const Json& obj, const std::string& key);
std::string MemberText(const Json& obj, const std::string& key);
// The id in a JSON member that may be a string or a number.
std::string IdText(const Json& v);

// GET a project collection and print it: raw JSON with --json, else a table of `columns`. `query` ("?a=b&…" or
// empty) is appended to the request path.
int ListProjectCollection(Context& ctx, const std::string& collection, const std::vector<ColumnSpec>& columns,
                          const std::string& query = "");

bool IsTerminalJobState(const std::string& state);
// Polls the job until it ends, showing progress on stderr. Returns the final job object, or nullopt after
// printing why polling gave up.
std::optional<Json> WaitForJob(Context& ctx, const std::string& job_id);
// The reason a job failed: the structured result.error message, else the job's error text.
std::string JobError(const Json& job);
// Prints "error: job ID STATE: reason" and the structured error's entries (field/line/column).
void PrintJobFailure(const Json& job, const std::string& job_id);

// Reads all of `f` (at most kMaxInputBytes).
Result<std::string> ReadAll(std::FILE* f, const std::string& what);
// Reads a file, or stdin for "-".
Result<std::string> ReadFileOrStdin(const std::string& path, const std::string& what);

// A secret (password) from the first line of stdin when `stdin_flag` was given, else from the environment
// variable `env_var`, else a no-echo prompt on a terminal; kInvalidArgument when none is available.
Result<std::string> ReadSecret(const ParsedArgs& a, const EnvLookup& env, const std::string& stdin_flag,
                               const std::string& env_var, const std::string& prompt);

using Handler = int (*)(Context&, const ParsedArgs&);

// One client command. A handler returns an exit code; a negative code is a usage problem the handler has
// already described, after which the dispatcher prints the command's usage and exits with -code.
struct Command {
  std::string name;  // "datasets import"
  std::string args;  // "FILE"
  std::string summary;
  std::vector<FlagSpec> flags;
  size_t min_positionals = 0;
  size_t max_positionals = 0;
  Handler run = nullptr;
};

// --FLAG as a version number >= 1, if given.
Result<std::optional<int64_t>> OptionalVersion(const ParsedArgs& a, const std::string& flag = "version");

}  // namespace lathe::cli
