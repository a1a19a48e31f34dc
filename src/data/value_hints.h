// The value-level pieces of schema hints (import_options.h): strptime-style date/time patterns, numbers with
// a decimal comma, replacement missing-value tokens, and the inference of one value's type under those rules.
// Everything here is pure: a compiled DateFormat or a MissingTokens set is immutable and safe to share across
// threads; nothing allocates per parsed value.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "data/table.h"

namespace lathe {

// A strptime-style pattern, compiled once. Directives:
//   %Y 4-digit year      %y 2-digit year (69-99 -> 19xx, 00-68 -> 20xx)   %m month 1-12 (1 or 2 digits)
//   %d day 1-31 (checked against the month, leap years included)          %b %B English month name, full
//   or 3-letter, any case (both directives accept both)                     %a %A English weekday (ignored)
//   %H hour 0-23   %I hour 1-12 (with %p)   %M minute   %S second 0-59 (each 1 or 2 digits)
//   %f fraction of a second, 1-6 digits     %p AM/PM (any case; only affects %I)
//   %z UTC offset Z, +HH, +HHMM or +HH:MM  %% a literal %
// Any other character is a literal (ASCII letters match in any case); a run of spaces matches one or more
// spaces or tabs. The whole value must match. Fields not in the pattern default to 1900-01-01 00:00:00 UTC.
// Adjacent numeric directives without a separator ("%Y%m%d") are matched with bounded backtracking.
class DateFormat {
 public:
  // kInvalidArgument (message names the directive and its position) for an unknown directive, a lone % at
  // the end, no directive at all, or a pattern over 64 bytes.
  static Result<DateFormat> Compile(std::string_view pattern);

  // Parses an already trimmed value into UTC microseconds since the Unix epoch. False if it does not match.
  bool Parse(std::string_view s, int64_t* micros) const;

  const std::string& pattern() const { return pattern_; }

 private:
  enum class Kind : uint8_t {
    kLiteral, kBlanks, kYear4, kYear2, kMonth, kMonthName, kWeekday, kDay, kHour24, kHour12, kMinute, kSecond,
    kFraction, kAmPm, kZone
  };
  struct Item {
    Kind kind;
    char ch;  // kLiteral
  };
  struct Fields;
  bool Match(size_t item, std::string_view s, size_t pos, Fields* f, int* budget) const;

  std::string pattern_;
  std::vector<Item> items_;
};

// Reads a number written with a decimal comma and optional dot thousands separators: "3,14", "-1.234,5",
// "1.234.567", ",5", "2,5e3". Dots must separate groups of exactly three digits. False otherwise (in
// particular "1.5" is not a decimal-comma number).
bool ParseDecimalCommaFloat(std::string_view s, double* out);

// The set of spellings that mean "missing": the defaults of value_parse.h, or a replacement list. The empty
// value is always missing. Values are compared after trimming spaces and tabs (callers pass them trimmed).
class MissingTokens {
 public:
  MissingTokens() = default;  // the default spellings
  // Replaces the defaults with `tokens` (each trimmed); an empty list keeps the defaults.
  explicit MissingTokens(const std::vector<std::string>& tokens);

  bool custom() const { return custom_; }
  bool Contains(std::string_view trimmed) const;

 private:
  bool custom_ = false;
  std::vector<std::string> tokens_;
};

// The type one trimmed value supports under the import rules (value_parse.h's inference order: integer,
// float, boolean, datetime, string), or nullopt if it is missing. With decimal_comma, floats are read by
// ParseDecimalCommaFloat instead of the dot grammar.
std::optional<ColumnType> InferValueType(std::string_view trimmed, bool decimal_comma, const MissingTokens& missing);

}  // namespace lathe
