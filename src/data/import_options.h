// What every importer (CSV/TSV, JSON Lines / JSON array, XLSX, and the SQL/HTTP sources that land as one
// of those) shares: schema hints, the bad-row policy, the result, and the progress/cancel callbacks.
//
// Schema hints change how values are read, never silently drop data:
//  - `types` forces a column's type; a value that does not parse as that type makes its row bad (see
//    `bad_rows`). A hint naming a column the input does not have is an error (kInvalidArgument naming it).
//  - `date_formats` gives a strptime-style pattern for a column (%Y %m %d %H %M %S %y %b %f and literals);
//    the column becomes a datetime column and a value that does not match makes its row bad.
//  - `decimal_comma` reads "1.234,5" / "3,14" as 1234.5 / 3.14 in columns whose values all parse that way
//    (for CSV the delimiter then cannot be ',').
//  - `missing_tokens`, if not empty, REPLACES the default missing-value spellings (value_parse.h); the
//    empty field always means missing.
//
// Bad rows: a row that cannot be read as the file's structure (wrong number of fields, invalid text
// encoding, malformed JSON line) or that holds a value that breaks a hint. kFail stops the import at the
// first bad row with an error naming line, column and reason, and nothing is written. kSkip drops such rows
// and counts them. kQuarantine drops them from the dataset and writes each one to `quarantine_path` as a
// JSON line {"line":N,"reason":"...","raw":"..."} (raw text capped at 64 KiB) so it can be downloaded.
// `max_bad_rows` caps skipped/quarantined rows: past it the import fails (a file that is mostly bad is an
// error, not a dataset).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "common/json.h"
#include "common/status.h"
#include "data/dataset_file.h"
#include "data/table.h"

namespace lathe {

enum class BadRowPolicy : uint8_t { kFail = 0, kSkip = 1, kQuarantine = 2 };
const char* BadRowPolicyName(BadRowPolicy p);  // "fail", "skip", "quarantine"
Result<BadRowPolicy> ParseBadRowPolicy(std::string_view name);

struct SchemaHints {
  std::map<std::string, ColumnType> types;          // column -> forced type
  std::map<std::string, std::string> date_formats;  // column -> strptime-style pattern
  bool decimal_comma = false;
  std::vector<std::string> missing_tokens;          // empty = the default spellings
};

// Parses {"types":{"col":"integer",...},"date_formats":{"col":"%d/%m/%Y"},"decimal_comma":true,
// "missing_tokens":["-","?"]} — every key optional, unknown keys rejected — with errors naming the field.
Result<SchemaHints> ParseSchemaHints(const Json& j);
Json SchemaHintsToJson(const SchemaHints& h);

struct ImportOptions {
  SchemaHints hints;
  BadRowPolicy bad_rows = BadRowPolicy::kFail;
  std::string quarantine_path;    // required for kQuarantine; written atomically, absent if no bad row
  int64_t max_bad_rows = 1000000;
  int num_threads = 0;            // 0 = one per core
  int zstd_level = 1;
};

struct ImportResult {
  int64_t rows = 0;
  std::vector<ColumnInfo> columns;
  int64_t input_bytes = 0;
  int64_t output_bytes = 0;
  int64_t bad_rows = 0;           // skipped or quarantined
  std::string encoding;           // the text encoding the input was read as ("utf-8", "gb18030", "latin-1")
};

using ProgressFn = std::function<void(double fraction)>;  // may be empty; fraction of the work in [0, 1]
using CancelFn = std::function<bool()>;                   // may be empty; true = stop with kCancelled

}  // namespace lathe
