// Argument parsing for the `lathe` data commands (datasets, recipes, connections, labels): turns flags into
// the request bodies and query strings of the data API. Pure functions over strings and JSON: no I/O,
// thread-safe.
//
// Errors are kInvalidArgument Status values with a message for the user naming the flag and the bad value
// ("--hint expects COL=TYPE ...", "--bad-rows must be fail, skip or quarantine"); the CLI prints them as
// usage errors (exit 2) before anything is sent, so a bad flag never costs a large upload.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "cli/client_args.h"
#include "common/json.h"
#include "common/status.h"

namespace lathe::cli {

// NAME or NAME@VERSION. `version` is "latest" when absent, else the positive integer as written.
struct DatasetRef {
  std::string name;
  std::string version = "latest";
  bool explicit_version = false;
};
// require_version: NAME alone is an error ("give NAME@VERSION").
Result<DatasetRef> ParseDatasetRef(const std::string& text, bool require_version);
// "/datasets/<name>/versions/<version>" with both parts URL-encoded.
std::string VersionPath(const DatasetRef& ref);

// "KEY=VALUE" split at the first '='; KEY must be non-empty (after trimming spaces), VALUE may be empty.
Result<std::pair<std::string, std::string>> ParseKeyValue(const std::string& flag, const std::string& text);

// A one-character flag value: "x", or the escapes "\t" / "tab" (TAB), "\\" ... ; anything else is an error.
Result<char> ParseCharFlag(const std::string& flag, const std::string& text);

// "a, b,c" -> {"a","b","c"}; empty items are errors.
Result<std::vector<std::string>> SplitList(const std::string& flag, const std::string& text);

// The import format from a file name's extension (.csv .tsv .tab .json .jsonl .ndjson .xlsx, any case);
// "" when the extension is none of those.
std::string FormatFromExtension(const std::string& path);

// The flags that set import options, shared by `datasets import` and `datasets import-source`:
// --format --delimiter --quote --header --encoding --sheet --header-row --layout --bad-rows --max-bad-rows
// --hint COL=TYPE (repeatable) --date-format COL=FMT (repeatable) --decimal-comma --missing TOKEN
// (repeatable).
const std::vector<FlagSpec>& ImportSpecFlags();

// The server's import spec ({"format", "csv":{…}, "json":{…}, "xlsx":{…}, "hints":{…}, "bad_rows",
// "max_bad_rows"}) from those flags. `inferred_format` ("" = unknown) is used when --format is absent; the
// spec's format is then that, or "auto" (the server sniffs). Options that cannot apply to the known format
// (--sheet on a CSV file) are errors.
Result<Json> ImportSpecFromFlags(const ParsedArgs& a, const std::string& inferred_format);

// The query string (without '?') of GET …/rows from --offset --limit --sort --filter --sample --seed.
Result<std::string> RowsQuery(const ParsedArgs& a);

// "Name: value" (an HTTP header for an http connection). The name must be a valid header token.
Result<std::pair<std::string, std::string>> ParseHeaderFlag(const std::string& text);

// The PUT …/connections/{name} body from --kind --dsn --path --url --header --query --timeout-ms
// --format --records-pointer, plus the password (read from stdin or the environment by the caller, never a
// flag). Flags that do not belong to the kind are errors.
Result<Json> ConnectionBody(const ParsedArgs& a, const std::optional<std::string>& password);

// An inline --source JSON for `import-source`: an object with a "kind" or a "connection". A "password" in
// it is refused (it would sit in the shell history); the caller adds one read from stdin.
Result<Json> ParseSourceJson(std::string_view text);

// "ROW=LABEL" -> {"row": ROW, "label": LABEL}; ROW a non-negative integer, LABEL non-empty.
Result<Json> ParseLabelAssignment(const std::string& text);

// A recipe steps document: a JSON array of steps, or an object with a "steps" array. Returns the array.
Result<Json> ParseStepsDocument(std::string_view text);

// The new dataset settings: `current` (from GET …/settings) changed by --target --contract/--no-contract
// --enforce/--no-enforce --tag COL=TAG (TAG "none" removes it) --retention-days --description. `contract`
// is the parsed --contract file, if given.
Result<Json> MergeDatasetSettings(Json current, const ParsedArgs& a, const std::optional<Json>& contract);
// True when any flag that changes settings was given.
bool ChangesDatasetSettings(const ParsedArgs& a);

}  // namespace lathe::cli
