#include "data/value_parse.h"

#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace lathe {

namespace {

bool IsDigit(char c) { return c >= '0' && c <= '9'; }

// c - '0' as an unsigned number: > 9 for anything that is not a digit.
unsigned DigitValue(char c) { return static_cast<unsigned>(static_cast<unsigned char>(c)) - '0'; }

char Lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

bool EqualsNoCase(std::string_view s, std::string_view lower_word) {
  if (s.size() != lower_word.size()) return false;
  for (size_t i = 0; i < s.size(); ++i) {
    if (Lower(s[i]) != lower_word[i]) return false;
  }
  return true;
}

// Reads exactly `n` digits at s[pos..]; false if any is not a digit.
bool Digits(std::string_view s, size_t pos, size_t n, int* out) {
  if (pos + n > s.size()) return false;
  int v = 0;
  for (size_t i = 0; i < n; ++i) {
    char c = s[pos + i];
    if (!IsDigit(c)) return false;
    v = v * 10 + (c - '0');
  }
  *out = v;
  return true;
}

bool IsLeap(int y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }

int DaysInMonth(int y, int m) {
  static const int kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  return m == 2 && IsLeap(y) ? 29 : kDays[m - 1];
}

}  // namespace

IntParse ParseInt64(std::string_view s, int64_t* out) {
  size_t i = 0, n = s.size();
  bool neg = false;
  if (n > 0 && (s[0] == '+' || s[0] == '-')) neg = s[0] == '-', i = 1;
  if (i == n) return IntParse::kNotInteger;
  uint64_t acc = 0;
  bool overflow = false;
  for (; i < n; ++i) {
    unsigned d = static_cast<unsigned char>(s[i]) - '0';
    if (d > 9) return IntParse::kNotInteger;
    if (!overflow && (__builtin_mul_overflow(acc, uint64_t{10}, &acc) || __builtin_add_overflow(acc, d, &acc))) {
      overflow = true;
    }
  }
  constexpr uint64_t kMaxPos = static_cast<uint64_t>(INT64_MAX);
  if (overflow || acc > kMaxPos + (neg ? 1 : 0)) return IntParse::kOverflow;
  *out = neg ? static_cast<int64_t>(0 - acc) : static_cast<int64_t>(acc);
  return IntParse::kOk;
}

bool LooksLikeFloat(std::string_view s) {
  size_t i = 0, n = s.size();
  if (i < n && (s[i] == '+' || s[i] == '-')) ++i;
  if (i == n) return false;
  if (!IsDigit(s[i]) && s[i] != '.') {
    std::string_view rest = s.substr(i);
    return EqualsNoCase(rest, "inf") || EqualsNoCase(rest, "infinity");
  }
  size_t int_digits = 0, frac_digits = 0;
  while (i < n && IsDigit(s[i])) ++i, ++int_digits;
  if (i < n && s[i] == '.') {
    ++i;
    while (i < n && IsDigit(s[i])) ++i, ++frac_digits;
  }
  if (int_digits + frac_digits == 0) return false;
  if (i < n && (s[i] == 'e' || s[i] == 'E')) {
    ++i;
    if (i < n && (s[i] == '+' || s[i] == '-')) ++i;
    size_t exp_digits = 0;
    while (i < n && IsDigit(s[i])) ++i, ++exp_digits;
    if (exp_digits == 0) return false;
  }
  return i == n;
}

bool ParseFloat64(std::string_view s, double* out) {
  // Fast path (Clinger): the decimal digits as an integer m <= 2^53 (at most 19 digits, so no overflow)
  // times 10^e with |e| <= 22 is one IEEE multiplication or division of exact operands, hence correctly
  // rounded, i.e. the value strtod gives. Larger exponents still qualify while m * 10^(e - 22) stays an
  // exact integer <= 2^53. Everything else goes to std::from_chars (also correctly rounded).
  static constexpr double kPow10[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,  1e8,  1e9,  1e10, 1e11,
                                      1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};
  static constexpr uint64_t kTwo53 = uint64_t{1} << 53;
  {
    const char* p = s.data();
    const char* const end = p + s.size();
    bool neg = false;
    if (p < end && (*p == '+' || *p == '-')) neg = *p == '-', ++p;
    uint64_t m = 0;
    int digits = 0, frac = 0;
    while (p < end && IsDigit(*p)) m = m * 10 + static_cast<uint64_t>(*p++ - '0'), ++digits;
    if (p < end && *p == '.') {
      ++p;
      while (p < end && IsDigit(*p)) m = m * 10 + static_cast<uint64_t>(*p++ - '0'), ++digits, ++frac;
    }
    int exp10 = 0;
    bool exp_ok = true;
    if (p < end && (*p == 'e' || *p == 'E') && digits > 0) {
      ++p;
      bool exp_neg = false;
      if (p < end && (*p == '+' || *p == '-')) exp_neg = *p == '-', ++p;
      exp_ok = p < end && IsDigit(*p);
      while (p < end && IsDigit(*p)) {
        if (exp10 < 100000) exp10 = exp10 * 10 + (*p - '0');  // beyond that only the digits are checked
        ++p;
      }
      if (exp_neg) exp10 = -exp10;
    }
    if (p == end && exp_ok && digits > 0 && digits <= 19 && m <= kTwo53) {
      const int e = exp10 - frac;  // |exp10| < 10^6 and frac <= 19: no overflow
      double v;
      bool exact = true;
      if (m == 0) {
        v = 0;
      } else if (e >= 0 && e <= 22) {
        v = static_cast<double>(m) * kPow10[e];
      } else if (e < 0 && e >= -22) {
        v = static_cast<double>(m) / kPow10[-e];
      } else if (e > 22 && e <= 22 + 15) {
        uint64_t scale = 1;
        for (int k = 0; k < e - 22; ++k) scale *= 10;  // <= 10^15
        unsigned __int128 big = static_cast<unsigned __int128>(m) * scale;
        exact = big <= kTwo53;
        v = static_cast<double>(static_cast<uint64_t>(exact ? big : 0)) * 1e22;
      } else {
        exact = false;
        v = 0;
      }
      if (exact) {
        *out = neg ? -v : v;
        return true;
      }
    }
  }
  if (!LooksLikeFloat(s)) return false;
  const char* b = s.data();
  const char* e = s.data() + s.size();
  if (*b == '+') ++b;
  auto [ptr, ec] = std::from_chars(b, e, *out);
  if (ec == std::errc() && ptr == e) return true;
  // Out of range (or a spelling from_chars rejects): strtod gives +-inf / 0 with the right sign.
  std::string copy(b, static_cast<size_t>(e - b));
  *out = std::strtod(copy.c_str(), nullptr);
  return true;
}

bool ParseBool(std::string_view s, bool* out) {
  switch (s.size()) {
    case 1:
      if (Lower(s[0]) == 't') return *out = true, true;
      if (Lower(s[0]) == 'f') return *out = false, true;
      return false;
    case 2: return EqualsNoCase(s, "no") ? (*out = false, true) : false;
    case 3: return EqualsNoCase(s, "yes") ? (*out = true, true) : false;
    case 4: return EqualsNoCase(s, "true") ? (*out = true, true) : false;
    case 5: return EqualsNoCase(s, "false") ? (*out = false, true) : false;
    default: return false;
  }
}

namespace {

// DaysFromCivil for years 0..9999 in unsigned arithmetic: shifted by one 400-year era (146097 days) so the
// year before March stays non-negative, the divisions by constants need no sign fix-ups.
int64_t DaysFromCivilYear0To9999(unsigned y, unsigned m, unsigned d) {
  const uint32_t yy = y + 400 - (m <= 2 ? 1 : 0);
  const uint32_t doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
  const uint32_t days = yy * 365 + yy / 4 - yy / 100 + yy / 400 + doy;
  return static_cast<int64_t>(days) - 719468 - 146097;
}

}  // namespace

bool ParseDatetimeMicros(std::string_view s, int64_t* out) {
  if (s.size() < 10) return false;
  // YYYY-MM-DD without branches per character: all ten bytes are checked, then the values combined.
  const unsigned y0 = DigitValue(s[0]), y1 = DigitValue(s[1]), y2 = DigitValue(s[2]), y3 = DigitValue(s[3]);
  const unsigned m0 = DigitValue(s[5]), m1 = DigitValue(s[6]), d0 = DigitValue(s[8]), d1 = DigitValue(s[9]);
  const bool digits = (y0 <= 9) & (y1 <= 9) & (y2 <= 9) & (y3 <= 9) & (m0 <= 9) & (m1 <= 9) & (d0 <= 9) & (d1 <= 9);
  if (!digits | (s[4] != '-') | (s[7] != '-')) return false;
  const int year = static_cast<int>(y0 * 1000 + y1 * 100 + y2 * 10 + y3);
  const int month = static_cast<int>(m0 * 10 + m1), day = static_cast<int>(d0 * 10 + d1);
  if (month < 1 || month > 12 || day < 1 || day > DaysInMonth(year, month)) return false;
  int64_t micros = DaysFromCivilYear0To9999(static_cast<unsigned>(year), static_cast<unsigned>(month),
                                             static_cast<unsigned>(day)) *
                   86400000000LL;
  size_t i = 10;
  if (i == s.size()) {
    *out = micros;
    return true;
  }
  if (s[i] != 'T' && s[i] != 't' && s[i] != ' ') return false;
  ++i;
  int hh, mm, ss = 0;
  if (!Digits(s, i, 2, &hh) || i + 2 >= s.size() || s[i + 2] != ':' || !Digits(s, i + 3, 2, &mm)) return false;
  i += 5;
  if (hh > 23 || mm > 59) return false;
  int64_t frac_micros = 0;
  if (i < s.size() && s[i] == ':') {
    if (!Digits(s, i + 1, 2, &ss) || ss > 59) return false;
    i += 3;
    if (i < s.size() && (s[i] == '.' || s[i] == ',')) {
      ++i;
      size_t digits = 0;
      int64_t scale = 100000;
      while (i < s.size() && IsDigit(s[i])) {
        if (digits < 6) frac_micros += (s[i] - '0') * scale, scale /= 10;
        ++i, ++digits;
      }
      if (digits == 0 || digits > 9) return false;
    }
  }
  micros += (hh * 3600LL + mm * 60LL + ss) * 1000000LL + frac_micros;
  if (i == s.size()) {
    *out = micros;
    return true;
  }
  if ((s[i] == 'Z' || s[i] == 'z') && i + 1 == s.size()) {
    *out = micros;
    return true;
  }
  if (s[i] != '+' && s[i] != '-') return false;
  int sign = s[i] == '-' ? -1 : 1;
  int oh, om = 0;
  if (!Digits(s, i + 1, 2, &oh)) return false;
  i += 3;
  if (i < s.size()) {
    if (s[i] == ':') ++i;
    if (!Digits(s, i, 2, &om)) return false;
    i += 2;
  }
  if (i != s.size() || oh > 23 || om > 59) return false;
  *out = micros - sign * (oh * 3600LL + om * 60LL) * 1000000LL;
  return true;
}

std::string FormatDatetimeMicros(int64_t micros) {
  int64_t days = micros / 86400000000LL;
  int64_t rem = micros % 86400000000LL;
  if (rem < 0) rem += 86400000000LL, --days;
  // civil_from_days (H. Hinnant).
  int64_t z = days + 719468;
  const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const unsigned doe = static_cast<unsigned>(z - era * 146097);
  const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  int64_t y = static_cast<int64_t>(yoe) + era * 400;
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const unsigned mp = (5 * doy + 2) / 153;
  const unsigned d = doy - (153 * mp + 2) / 5 + 1;
  const unsigned m = mp < 10 ? mp + 3 : mp - 9;
  y += m <= 2;
  int64_t secs = rem / 1000000;
  int64_t us = rem % 1000000;
  char buf[64];
  int n = std::snprintf(buf, sizeof(buf), "%04lld-%02u-%02uT%02lld:%02lld:%02lld", static_cast<long long>(y), m, d,
                        static_cast<long long>(secs / 3600), static_cast<long long>(secs / 60 % 60),
                        static_cast<long long>(secs % 60));
  std::string out(buf, static_cast<size_t>(n));
  if (us != 0) {
    std::snprintf(buf, sizeof(buf), ".%06lld", static_cast<long long>(us));
    out += buf;
  }
  out += 'Z';
  return out;
}

}  // namespace lathe
