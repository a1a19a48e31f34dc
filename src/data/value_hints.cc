#include "data/value_hints.h"

#include <array>
#include <cstring>

#include "data/value_parse.h"

namespace lathe {

namespace {

constexpr size_t kMaxPatternBytes = 64;
// Steps the matcher may take per value; only adjacent numeric directives ("%Y%m%d") ever backtrack.
constexpr int kMatchBudget = 256;

char Lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

bool IsDigit(char c) { return c >= '0' && c <= '9'; }

// Case-insensitive ASCII prefix test of `word` (lower case) at s[pos].
bool HasWordAt(std::string_view s, size_t pos, std::string_view word) {
  if (s.size() - pos < word.size()) return false;
  for (size_t i = 0; i < word.size(); ++i) {
    if (Lower(s[pos + i]) != word[i]) return false;
  }
  return true;
}

constexpr std::array<std::string_view, 12> kMonths = {"january", "february", "march",     "april",
                                                      "may",     "june",     "july",      "august",
                                                      "september", "october", "november", "december"};
constexpr std::array<std::string_view, 7> kWeekdays = {"monday", "tuesday",  "wednesday", "thursday",
                                                       "friday", "saturday", "sunday"};

// Matches a full or 3-letter English name from `names` at s[pos]; returns the bytes consumed (0: none) and
// the index. The full name is preferred so "March" is not read as "Mar" + "ch".
size_t MatchName(std::string_view s, size_t pos, const std::string_view* names, size_t n, int* index) {
  for (size_t k = 0; k < n; ++k) {
    if (HasWordAt(s, pos, names[k])) {
      *index = static_cast<int>(k);
      return names[k].size();
    }
  }
  for (size_t k = 0; k < n; ++k) {
    if (HasWordAt(s, pos, names[k].substr(0, 3))) {
      *index = static_cast<int>(k);
      return 3;
    }
  }
  return 0;
}

bool IsLeap(int64_t y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }

int DaysInMonth(int64_t y, int m) {
  static constexpr int kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  return m == 2 && IsLeap(y) ? 29 : kDays[m - 1];
}

}  // namespace

struct DateFormat::Fields {
  int64_t year = 1900;
  int month = 1, day = 1, hour = 0, minute = 0, second = 0;
  int64_t micros = 0;
  int hour12 = -1;  // set by %I
  int pm = -1;      // set by %p: 0 AM, 1 PM
  int64_t offset_s = 0;
};

Result<DateFormat> DateFormat::Compile(std::string_view pattern) {
  auto fail = [&](const std::string& why) {
    return Status::InvalidArgument("date format '" + std::string(pattern.substr(0, kMaxPatternBytes)) + "' " + why);
  };
  if (pattern.empty() || pattern.size() > kMaxPatternBytes) return fail("must be 1-64 characters");
  DateFormat f;
  f.pattern_ = std::string(pattern);
  bool any_directive = false;
  for (size_t i = 0; i < pattern.size(); ++i) {
    char c = pattern[i];
    if (c == ' ' || c == '\t') {
      if (f.items_.empty() || f.items_.back().kind != Kind::kBlanks) f.items_.push_back({Kind::kBlanks, ' '});
      continue;
    }
    if (c != '%') {
      f.items_.push_back({Kind::kLiteral, Lower(c)});
      continue;
    }
    if (i + 1 == pattern.size()) return fail("ends with a lone % (write %% for a literal percent sign)");
    char d = pattern[++i];
    Kind k;
    switch (d) {
      case 'Y': k = Kind::kYear4; break;
      case 'y': k = Kind::kYear2; break;
      case 'm': k = Kind::kMonth; break;
      case 'b':
      case 'B': k = Kind::kMonthName; break;
      case 'a':
      case 'A': k = Kind::kWeekday; break;
      case 'd': k = Kind::kDay; break;
      case 'H': k = Kind::kHour24; break;
      case 'I': k = Kind::kHour12; break;
      case 'M': k = Kind::kMinute; break;
      case 'S': k = Kind::kSecond; break;
      case 'f': k = Kind::kFraction; break;
      case 'p': k = Kind::kAmPm; break;
      case 'z': k = Kind::kZone; break;
      case '%': f.items_.push_back({Kind::kLiteral, '%'}); continue;
      default: {
        std::string shown = (d >= 0x20 && d < 0x7f) ? std::string(1, d) : "\\x" + std::to_string(static_cast<unsigned char>(d));
        return fail("has an unknown directive %" + shown + " at position " + std::to_string(i) +
                    " (known: %Y %y %m %d %b %B %a %A %H %I %M %S %f %p %z %%)");
      }
    }
    any_directive = true;
    f.items_.push_back({k, 0});
  }
  if (!any_directive) return fail("has no % directive");
  return f;
}

bool DateFormat::Match(size_t item, std::string_view s, size_t pos, Fields* f, int* budget) const {
  if (--*budget < 0) return false;
  if (item == items_.size()) return pos == s.size();
  const Item& it = items_[item];
  // Numeric directives: [min_digits, max_digits], longest first (backtracking only matters when the next
  // item also starts with a digit).
  auto numeric = [&](size_t min_d, size_t max_d, int64_t lo, int64_t hi, auto assign) -> bool {
    size_t n = 0;
    while (n < max_d && pos + n < s.size() && IsDigit(s[pos + n])) ++n;
    for (; n >= min_d && n > 0; --n) {
      int64_t v = 0;
      for (size_t i = 0; i < n; ++i) v = v * 10 + (s[pos + i] - '0');
      if (v < lo || v > hi) continue;
      Fields saved = *f;
      assign(v, n);
      if (Match(item + 1, s, pos + n, f, budget)) return true;
      *f = saved;
      if (*budget < 0) return false;
    }
    return false;
  };
  switch (it.kind) {
    case Kind::kLiteral:
      return pos < s.size() && Lower(s[pos]) == it.ch && Match(item + 1, s, pos + 1, f, budget);
    case Kind::kBlanks: {
      size_t n = 0;
      while (pos + n < s.size() && (s[pos + n] == ' ' || s[pos + n] == '\t')) ++n;
      return n > 0 && Match(item + 1, s, pos + n, f, budget);
    }
    case Kind::kYear4:
      return numeric(4, 4, 0, 9999, [&](int64_t v, size_t) { f->year = v; });
    case Kind::kYear2:
      return numeric(2, 2, 0, 99, [&](int64_t v, size_t) { f->year = v < 69 ? 2000 + v : 1900 + v; });
    case Kind::kMonth:
      return numeric(1, 2, 1, 12, [&](int64_t v, size_t) { f->month = static_cast<int>(v); });
    case Kind::kDay:
      return numeric(1, 2, 1, 31, [&](int64_t v, size_t) { f->day = static_cast<int>(v); });
    case Kind::kHour24:
      return numeric(1, 2, 0, 23, [&](int64_t v, size_t) { f->hour = static_cast<int>(v); });
    case Kind::kHour12:
      return numeric(1, 2, 1, 12, [&](int64_t v, size_t) { f->hour12 = static_cast<int>(v); });
    case Kind::kMinute:
      return numeric(1, 2, 0, 59, [&](int64_t v, size_t) { f->minute = static_cast<int>(v); });
    case Kind::kSecond:
      return numeric(1, 2, 0, 59, [&](int64_t v, size_t) { f->second = static_cast<int>(v); });
    case Kind::kFraction:
      return numeric(1, 6, 0, 999999, [&](int64_t v, size_t n) {
        for (size_t i = n; i < 6; ++i) v *= 10;
        f->micros = v;
      });
    case Kind::kMonthName: {
      int idx = 0;
      size_t n = MatchName(s, pos, kMonths.data(), kMonths.size(), &idx);
      if (n == 0) return false;
      f->month = idx + 1;
      return Match(item + 1, s, pos + n, f, budget);
    }
    case Kind::kWeekday: {
      int idx = 0;
      size_t n = MatchName(s, pos, kWeekdays.data(), kWeekdays.size(), &idx);
      return n > 0 && Match(item + 1, s, pos + n, f, budget);
    }
    case Kind::kAmPm: {
      if (HasWordAt(s, pos, "am")) f->pm = 0;
      else if (HasWordAt(s, pos, "pm")) f->pm = 1;
      else return false;
      return Match(item + 1, s, pos + 2, f, budget);
    }
    case Kind::kZone: {
      if (pos < s.size() && (s[pos] == 'Z' || s[pos] == 'z')) {
        f->offset_s = 0;
        return Match(item + 1, s, pos + 1, f, budget);
      }
      if (pos >= s.size() || (s[pos] != '+' && s[pos] != '-')) return false;
      int sign = s[pos] == '-' ? -1 : 1;
      size_t p = pos + 1;
      auto two = [&](size_t at, int* out) {
        if (at + 2 > s.size() || !IsDigit(s[at]) || !IsDigit(s[at + 1])) return false;
        *out = (s[at] - '0') * 10 + (s[at + 1] - '0');
        return true;
      };
      int hh = 0, mm = 0;
      if (!two(p, &hh) || hh > 23) return false;
      p += 2;
      if (p < s.size() && s[p] == ':') {
        if (!two(p + 1, &mm)) return false;
        p += 3;
      } else if (two(p, &mm)) {
        p += 2;
      }
      if (mm > 59) return false;
      f->offset_s = sign * (hh * 3600 + mm * 60);
      return Match(item + 1, s, p, f, budget);
    }
  }
  return false;
}

bool DateFormat::Parse(std::string_view s, int64_t* micros) const {
  Fields f;
  int budget = kMatchBudget;
  if (!Match(0, s, 0, &f, &budget)) return false;
  if (f.day > DaysInMonth(f.year, f.month)) return false;
  int hour = f.hour;
  if (f.hour12 >= 0) hour = (f.hour12 % 12) + (f.pm == 1 ? 12 : 0);
  int64_t days = DaysFromCivil(f.year, static_cast<unsigned>(f.month), static_cast<unsigned>(f.day));
  int64_t secs = days * 86400 + hour * 3600 + f.minute * 60 + f.second - f.offset_s;
  *micros = secs * 1000000 + f.micros;
  return true;
}

bool ParseDecimalCommaFloat(std::string_view s, double* out) {
  if (s.empty()) return false;
  size_t i = 0;
  std::string canon;
  canon.reserve(s.size() + 1);
  if (s[0] == '+' || s[0] == '-') canon.push_back(s[i++]);
  if (i < s.size() && ((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z'))) {
    // inf / infinity: no separators involved.
    return ParseFloat64(s, out);
  }
  // Integer part: plain digits, or 1-3 digits followed by .ddd groups.
  size_t int_start = i;
  while (i < s.size() && IsDigit(s[i])) canon.push_back(s[i++]);
  size_t lead = i - int_start;
  if (i < s.size() && s[i] == '.') {
    if (lead == 0 || lead > 3) return false;
    while (i < s.size() && s[i] == '.') {
      if (i + 4 > s.size() || !IsDigit(s[i + 1]) || !IsDigit(s[i + 2]) || !IsDigit(s[i + 3])) return false;
      if (i + 4 < s.size() && IsDigit(s[i + 4])) return false;
      canon.append(s.data() + i + 1, 3);
      i += 4;
    }
  }
  size_t digits = i - int_start;
  if (i < s.size() && s[i] == ',') {
    canon.push_back('.');
    ++i;
    size_t fs = i;
    while (i < s.size() && IsDigit(s[i])) canon.push_back(s[i++]);
    digits += i - fs;
  }
  if (digits == 0) return false;
  if (i < s.size() && (s[i] == 'e' || s[i] == 'E')) {
    canon.push_back('e');
    ++i;
    if (i < s.size() && (s[i] == '+' || s[i] == '-')) canon.push_back(s[i++]);
    size_t es = i;
    while (i < s.size() && IsDigit(s[i])) canon.push_back(s[i++]);
    if (i == es) return false;
  }
  if (i != s.size()) return false;
  return ParseFloat64(canon, out);
}

MissingTokens::MissingTokens(const std::vector<std::string>& tokens) {
  if (tokens.empty()) return;
  custom_ = true;
  for (const auto& t : tokens) {
    std::string_view v = TrimBlanks(t);
    if (!v.empty()) tokens_.emplace_back(v);
  }
}

bool MissingTokens::Contains(std::string_view trimmed) const {
  if (!custom_) return IsMissingToken(trimmed);
  if (trimmed.empty()) return true;
  for (const auto& t : tokens_) {
    if (t.size() == trimmed.size() && std::memcmp(t.data(), trimmed.data(), t.size()) == 0) return true;
  }
  return false;
}

std::optional<ColumnType> InferValueType(std::string_view v, bool decimal_comma, const MissingTokens& missing) {
  if (missing.Contains(v)) return std::nullopt;
  int64_t i;
  if (ParseInt64(v, &i) == IntParse::kOk) return ColumnType::kInt64;
  double d;
  if (decimal_comma ? ParseDecimalCommaFloat(v, &d) : ParseFloat64(v, &d)) return ColumnType::kFloat64;
  bool b;
  if (ParseBool(v, &b)) return ColumnType::kBool;
  if (ParseDatetimeMicros(v, &i)) return ColumnType::kDatetime;
  return ColumnType::kString;
}

}  // namespace lathe
