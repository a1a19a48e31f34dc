// Data contracts: rules a dataset's versions must satisfy, checked on every new version.
//
// A contract is JSON:
//   {"columns": {"age":   {"required": true, "not_null": true, "type": "integer", "min": 0, "max": 150},
//                "email": {"regex": "^[^@]+@[^@.]+\\.[a-z]+$"},
//                "plan":  {"allowed": ["free", "pro"]},
//                "id":    {"unique": true}},
//    "rows": {"min": 100, "max": 10000000},
//    "freshness": {"column": "updated_at", "max_age_hours": 24}}
// Column rules: required (the column exists; default true when any rule names it), not_null, type
// (integer|float|boolean|string|datetime; integer also satisfies float), min/max (numbers; datetimes as
// RFC 3339 strings), regex (ECMAScript, whole value; values over 4096 bytes fail it), allowed (values compared
// as text), unique (no value repeats among non-missing rows). Dataset rules: rows.min/max, freshness (the
// newest value of a datetime column is at most max_age_hours before `now`).
//
// CheckContract streams the file row group by row group (memory: one group plus one 8-byte hash per row of
// a unique column) and returns a report:
//   {"passed": bool, "summary": "2 of 9 checks failed", "failed": ["age.min", ...],
//    "checks": [{"rule":"min","column":"age","passed":false,"failing_rows":3,
//                "examples":[{"row":17,"value":"-4"}],"message":"3 rows below 0"}]}
// Thread-safe (pure functions).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/json.h"
#include "common/status.h"
#include "data/dataset_file.h"

namespace lathe {

struct ColumnRule {
  std::string column;
  bool required = true;
  bool not_null = false;
  std::optional<ColumnType> type;
  std::optional<double> min, max;             // numbers (datetimes: seconds since the epoch)
  std::optional<std::string> regex;
  std::optional<std::vector<std::string>> allowed;
  bool unique = false;
};

struct Contract {
  std::vector<ColumnRule> columns;
  std::optional<int64_t> min_rows, max_rows;
  std::string freshness_column;
  double freshness_max_age_hours = 0;
};

// Validates a contract; errors name the field ("contract.columns.age.min").
Result<Contract> ParseContract(const Json& j);

Result<Json> CheckContract(const DatasetFile& file, const Contract& contract, int64_t now_micros);

}  // namespace lathe
