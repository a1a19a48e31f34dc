// Parsing and formatting of single CSV field values: missing-value tokens, integers, floats, booleans and
// ISO 8601 datetimes. Pure functions on string views; thread-safe; never allocate except the formatters.
//
// Accepted spellings (the CSV importer's type inference uses exactly these):
//   missing   empty field, NA, N/A, null, NULL, NaN, nan, None (after trimming spaces/tabs)
//   integer   [+-]?[0-9]+ that fits int64 (a longer integer is a float)
//   float     [+-]?(digits[.digits]|.digits)([eE][+-]?digits)?, or [+-]?inf/infinity (any case)
//   boolean   true/false, yes/no, t/f in any case (NOT 0/1: those are integers)
//   datetime  YYYY-MM-DD, optionally followed by T|t|space and HH:MM[:SS[.fraction]] and Z|z|+HH[:MM]|-HH[:MM];
//             stored as microseconds since the Unix epoch, UTC (fractions beyond micros are truncated)
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "common/clock.h"

namespace lathe {

// Strips leading and trailing spaces and tabs.
inline std::string_view TrimBlanks(std::string_view s) {
  size_t b = 0, e = s.size();
  while (b < e && (s[b] == ' ' || s[b] == '\t')) ++b;
  while (e > b && (s[e - 1] == ' ' || s[e - 1] == '\t')) --e;
  return s.substr(b, e - b);
}

// True if `s` (already trimmed) is one of the missing-value tokens listed above.
inline bool IsMissingToken(std::string_view s) {
  switch (s.size()) {
    case 0: return true;
    case 2: return s == "NA";
    case 3: return s == "N/A" || s == "NaN" || s == "nan";
    case 4: return s == "null" || s == "NULL" || s == "None";
    default: return false;
  }
}

enum class IntParse : uint8_t { kOk, kNotInteger, kOverflow };
// Parses a trimmed integer. kOverflow means the syntax is integral but the value does not fit int64.
IntParse ParseInt64(std::string_view s, int64_t* out);

// Syntax check for the float grammar above (cheap: does not compute the value).
bool LooksLikeFloat(std::string_view s);
// Parses a trimmed float; false if it does not match the grammar. Out-of-range values become +-inf or 0.
bool ParseFloat64(std::string_view s, double* out);

bool ParseBool(std::string_view s, bool* out);

// Parses a trimmed ISO 8601 date or datetime to UTC microseconds since the epoch (years 0000-9999).
bool ParseDatetimeMicros(std::string_view s, int64_t* out);

// Formats UTC micros as RFC 3339: 2024-03-01T12:00:00Z, with .ffffff only when micros are non-zero.
std::string FormatDatetimeMicros(int64_t micros);

// Days since 1970-01-01 for a proleptic Gregorian date (no range checks).

}  // namespace lathe
