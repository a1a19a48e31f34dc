// Shared machinery of the record-oriented importers (JSON, XLSX): cell values as a reader sees them, type
// inference over all rows, schema-hint conversion (forced types, strptime-style date formats, missing
// tokens), the bad-row policy with its quarantine file, and a row-group writer that streams typed rows into
// a dataset file (DatasetWriter) with memory bounded by one row group.
//
// Internal to src/data. Nothing here is thread-safe; each import owns its own objects.
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/status.h"
#include "data/dataset_file.h"
#include "data/import_options.h"
#include "data/lcol_format.h"
#include "data/table.h"

namespace lathe {

// The kind of one input value. kText is a value that can only ever be text (a JSON array kept as its
// compact JSON); kDatetime is a value the input itself marks as a date (an XLSX date-formatted cell).
enum class CellKind : uint8_t { kMissing, kInt, kFloat, kBool, kString, kDatetime, kText };

struct CellValue {
  CellKind kind = CellKind::kMissing;
  int64_t i = 0;          // kInt, kBool (0/1), kDatetime (UTC micros)
  double f = 0;           // kFloat
  std::string_view text;  // kString / kText: the value; other kinds: their source spelling, may be empty
};

// Parses `s` with a strptime-style pattern: %Y (4 digits) %y (2 digits, 69-99 -> 19xx) %m %d %H %M %S
// (1-2 digits) %b (month name or abbreviation, any case) %f (1-9 fraction digits) %% and literal
// characters. Whole-string match; validates the calendar. UTC micros.
bool ParseDateWithFormat(std::string_view format, std::string_view s, int64_t* micros);
// Checks that a pattern uses only the directives above.
Status ValidateDateFormat(const std::string& column, const std::string& format);

// Pass-1 type inference for one column (see the JSON/XLSX headers for the rules).
class ColumnTypeTracker {
 public:
  void Observe(const CellValue& v);
  ColumnType Resolve() const;
  bool seen() const { return flags_ != 0; }

 private:
  enum : uint16_t {
    kSawInt = 1,
    kSawFloat = 2,
    kSawBool = 4,
    kSawString = 8,
    kSawNonDateString = 16,
    kSawDatetime = 32,
    kSawText = 64,
  };
  uint16_t flags_ = 0;
};

// A column's target type and how values are read into it.
struct ColumnSpec {
  ColumnType type = ColumnType::kString;
  bool forced = false;              // from a hint: values that do not convert make their row bad
  const std::string* date_format = nullptr;
};

struct ConvertedCell {
  bool valid = false;
  int64_t i = 0;
  double f = 0;
  std::string_view s;  // kString columns; may point into the converter's scratch
};

// Converts cells to column types; knows the missing-value spellings (hints.missing_tokens or the defaults).
class CellConverter {
 public:
  explicit CellConverter(const SchemaHints& hints);
  // Replaces a kString whose trimmed text is a missing token with kMissing.
  bool IsMissingText(std::string_view s) const;
  CellValue Normalize(const CellValue& v) const {
    if (v.kind == CellKind::kString && IsMissingText(v.text)) return CellValue{};
    return v;
  }
  // False (with a reason) if the value cannot be read as spec.type. `v` must be Normalize()d.
  bool Convert(const CellValue& v, const ColumnSpec& spec, ConvertedCell* out, std::string* reason);

 private:
  std::vector<std::string> tokens_;
  bool custom_ = false;
  std::string scratch_;
};

// Applies the hints to the discovered columns: forced types and date formats; kInvalidArgument naming a
// hint whose column does not exist or whose pattern is invalid.
Result<std::vector<ColumnSpec>> BuildColumnSpecs(const std::vector<std::string>& names,
                                                 const std::vector<ColumnType>& inferred, const SchemaHints& hints);
// The spec a column gets from the hints alone (pass 1 checks hinted values against it).
std::optional<ColumnSpec> HintedSpec(const std::string& name, const SchemaHints& hints);

// The bad-row policy: kFail turns the first bad row into an error, kSkip counts, kQuarantine also writes
// {"line":N,"reason":...,"raw":...} lines to a temp file next to quarantine_path that Commit() renames
// into place (nothing is left if the import fails). Past max_bad_rows the import fails.
Status CheckBadRowOptions(const ImportOptions& options);
class BadRowSink {
 public:
  explicit BadRowSink(const ImportOptions& options, std::string unit = "line");
  ~BadRowSink();
  BadRowSink(const BadRowSink&) = delete;
  BadRowSink& operator=(const BadRowSink&) = delete;

  // `column` may be empty. Returns the import's error when the policy says stop.
  Status Report(int64_t line, const std::string& column, const std::string& reason, std::string_view raw);
  int64_t count() const { return count_; }
  Status Commit();
  // The error message kFail produces: "line 3: column \"a\": reason".
  Status RowError(int64_t line, const std::string& column, const std::string& reason) const;

 private:
  const ImportOptions& options_;
  std::string unit_;
  int64_t count_ = 0;
  int fd_ = -1;
  std::string temp_path_;
  std::string pending_;
  bool committed_ = false;
  Status Flush();
};

// Streams rows into a dataset file. Rows are built cell by cell (any column order; unset cells are
// missing) and encoded per row group of group_rows() rows.
class RowGroupWriter {
 public:
  static Result<std::unique_ptr<RowGroupWriter>> Create(const std::string& output_path,
                                                        const std::vector<std::string>& names,
                                                        const std::vector<ColumnType>& types, int zstd_level);
  size_t group_rows() const { return group_rows_; }
  // Starts a new row; the previous one is complete.
  Status StartRow();
  void Set(size_t column, const ConvertedCell& cell);
  // Flushes the last group and renames the file into place; returns the file size.
  Result<int64_t> Finish();
  int64_t rows() const { return rows_; }
  const std::vector<ColumnStats>& stats() const { return writer_->stats(); }

 private:
  struct Dict {
    std::unordered_map<std::string_view, int32_t> index;
    std::deque<std::string> owned;
    std::vector<std::string_view> values;
    void Clear() {
      index.clear();
      owned.clear();
      values.clear();
    }
    int32_t Insert(std::string_view s);
  };
  struct ColumnBuffer {
    ColumnType type;
    std::vector<uint8_t> valid;
    std::vector<int64_t> i64;
    std::vector<double> f64;
    std::vector<uint8_t> b;
    std::vector<int32_t> codes;
    Dict dict;
  };
  Status FlushGroup();

  std::unique_ptr<DatasetWriter> writer_;
  std::vector<ColumnType> types_;
  std::vector<ColumnBuffer> cols_;
  size_t group_rows_ = 0;
  size_t in_group_ = 0;  // rows in the current group, including the one being built
  int64_t rows_ = 0;
  int zstd_level_ = 1;
};

// Rows per group for `ncols` columns: about 8M cells per group at most.
size_t RowsPerGroup(size_t ncols);

// Formats a double as the shortest text that reads back to the same value ("1.5", "1e+300").
std::string FormatDouble(double v);

}  // namespace lathe
