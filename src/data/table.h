// Table: lathe's in-memory columnar data. Each column is typed, has a validity (null) mask, and stores
// strings dictionary-encoded. A Table is a plain value: not thread-safe for mutation, safe to share const.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace lathe {

enum class ColumnType : uint8_t {
  kInt64 = 1,
  kFloat64 = 2,
  kBool = 3,
  kString = 4,    // dictionary-encoded: codes index into dict
  kDatetime = 5,  // microseconds since the Unix epoch, UTC
};

const char* ColumnTypeName(ColumnType t);  // "integer", "float", "boolean", "string", "datetime"
Result<ColumnType> ParseColumnType(std::string_view name);

struct Column {
  std::string name;
  ColumnType type = ColumnType::kString;
  // Exactly one value vector is used, by type: i64 (kInt64, kDatetime), f64 (kFloat64), b (kBool),
  // codes + dict (kString). valid[i] == 0 marks row i missing (its value slot is unspecified).
  std::vector<int64_t> i64;
  std::vector<double> f64;
  std::vector<uint8_t> b;
  std::vector<int32_t> codes;
  std::vector<std::string> dict;
  std::vector<uint8_t> valid;

  size_t size() const { return valid.size(); }
  bool IsValid(size_t row) const { return valid[row] != 0; }
  std::string_view StringAt(size_t row) const { return dict[static_cast<size_t>(codes[row])]; }
  // The numeric value of a non-missing row for kInt64/kFloat64/kBool/kDatetime (datetimes as seconds).
  double NumericAt(size_t row) const;
};

struct Table {
  std::vector<Column> columns;
  int64_t num_rows = 0;

  // Index of the column named `name`, or -1.
  int FindColumn(std::string_view name) const;
};

}  // namespace lathe
