#include "data/value_parse.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <algorithm>
#include <cstdio>
#include <random>
#include <string>

#include "data/checksum.h"
#include "data/csv_tokenizer.h"

namespace lathe {
namespace {

TEST(ValueParse, MissingTokens) {
  for (const char* s : {"", "NA", "N/A", "null", "NULL", "NaN", "nan", "None"}) EXPECT_TRUE(IsMissingToken(s)) << s;
  for (const char* s : {"na", "n/a", "Null", "NAN", "none", "-", "0", " "}) EXPECT_FALSE(IsMissingToken(s)) << s;
}

TEST(ValueParse, Integers) {
  struct Case {
    const char* in;
    IntParse want;
    int64_t value;
  } cases[] = {
      {"0", IntParse::kOk, 0},
      {"-17", IntParse::kOk, -17},
      {"+42", IntParse::kOk, 42},
      {"007", IntParse::kOk, 7},
      {"9223372036854775807", IntParse::kOk, std::numeric_limits<int64_t>::max()},
      {"-9223372036854775808", IntParse::kOk, std::numeric_limits<int64_t>::min()},
      {"9223372036854775808", IntParse::kOverflow, 0},
      {"-9223372036854775809", IntParse::kOverflow, 0},
      {"123456789012345678901234567890", IntParse::kOverflow, 0},
      {"1.0", IntParse::kNotInteger, 0},
      {"1e3", IntParse::kNotInteger, 0},
      {"-", IntParse::kNotInteger, 0},
      {"", IntParse::kNotInteger, 0},
      {"12a", IntParse::kNotInteger, 0},
  };
  for (const auto& c : cases) {
    int64_t v = 0;
    EXPECT_EQ(ParseInt64(c.in, &v), c.want) << c.in;
    if (c.want == IntParse::kOk) {
      EXPECT_EQ(v, c.value) << c.in;
    }
  }
}

TEST(ValueParse, Floats) {
  struct Case {
    const char* in;
    bool ok;
    double value;
  } cases[] = {
      {"1.5", true, 1.5},      {"-0.25", true, -0.25}, {".5", true, 0.5},       {"5.", true, 5.0},
      {"1e3", true, 1000.0},   {"+2.5E-2", true, 0.025}, {"3", true, 3.0},      {"0.1", true, 0.1},
      {"123456.7890", true, 123456.789}, {"12345678901234567890.5", true, 12345678901234567890.5},
      {"e5", false, 0},        {"1e", false, 0},       {"1.2.3", false, 0},     {"abc", false, 0},
      {".", false, 0},         {"--1", false, 0},      {"1,5", false, 0},
  };
  for (const auto& c : cases) {
    double v = 0;
    EXPECT_EQ(ParseFloat64(c.in, &v), c.ok) << c.in;
    if (c.ok) {
      EXPECT_EQ(v, c.value) << c.in;
    }
    EXPECT_EQ(LooksLikeFloat(c.in), c.ok) << c.in;
  }
  double v = 0;
  ASSERT_TRUE(ParseFloat64("inf", &v));
  EXPECT_TRUE(std::isinf(v));
  ASSERT_TRUE(ParseFloat64("-Infinity", &v));
  EXPECT_TRUE(std::isinf(v) && v < 0);
  ASSERT_TRUE(ParseFloat64("1e999", &v));
  EXPECT_TRUE(std::isinf(v));
  // The fast path must agree with correctly rounded parsing.
  for (const char* s : {"0.3", "2.2250738585072014", "9007199254740993", "0.000001234", "4.35", "1.7976931348623157"}) {
    double fast = 0;
    ASSERT_TRUE(ParseFloat64(s, &fast));
    EXPECT_EQ(fast, std::strtod(s, nullptr)) << s;
  }
}

// ParseFloat64 returns exactly what strtod returns (bit for bit, sign of zero included) wherever the grammar
// accepts the text.
void ExpectSameAsStrtod(const std::string& s) {
  double got = 0;
  ASSERT_TRUE(ParseFloat64(s, &got)) << s;
  double want = std::strtod(s.c_str(), nullptr);
  uint64_t a, b;
  std::memcpy(&a, &got, 8);
  std::memcpy(&b, &want, 8);
  ASSERT_EQ(a, b) << s << " parsed as " << got << ", strtod gives " << want;
}

TEST(ValueParse, FloatEdgeCasesMatchStrtod) {
  for (const char* s :
       {"0", "-0", "+0", "-0.0", "0.0e0", "-0e-999", "0e999999999", ".5", "5.", "-.5", "+5.", "1e400", "-1e400",
        "1e-400", "-1e-400", "1e308", "1.7976931348623157e308", "1.7976931348623159e308", "2.2250738585072011e-308",
        "2.2250738585072014e-308", "4.9e-324", "2.4e-324", "2.5e-324", "5e-324", "1e-320", "9007199254740992",
        "9007199254740993", "9007199254740994", "9007199254740995", "18014398509481985", "1e22", "1e23", "9e22",
        "123456789e22", "9007199254740992e15", "9007199254740993e15", "1e37", "4e37", "1e38", "0.1e-22",
        "1234567890123456789", "12345678901234567890", "1234567890123456789012345", "0.30000000000000004",
        "1.00000000000000011102230246251565404236316680908203125", "1.000000000000000111022302462515654042363166809082031251",
        "000000000000000000000000001.5", "0.0000000000000000000000000015", "123.456e-5", "123.456E+5", "7e-22",
        "7e-23", "1E0", "1e00000000000000000000022", "1e-0000000000000000000000022", "179769313486231580793728971405303415079934132710037826936173778980444968292764750946649017977587207096330286416692887910946555547851940402630657488671505820681908902000708383676273854845817711531764475730270069855571366959622842914819860834936475292719074168444365510704342711559699508093042880177904174497791.9999"}) {
    ExpectSameAsStrtod(s);
  }
  // Beyond 2^53, over 19 digits and past 10^22 the fast path must hand over; the results still match.
  double v = 0;
  ASSERT_TRUE(ParseFloat64("1e400", &v));
  EXPECT_TRUE(std::isinf(v) && v > 0);
  ASSERT_TRUE(ParseFloat64("-1e-400", &v));
  EXPECT_TRUE(v == 0 && std::signbit(v));
  for (const char* bad : {"1e", "1e+", "1e-", "e1", ".e1", "1.e", "1ee1", "1e1.5", "1e1e1", "+-1", "1 ", " 1", "0x10",
                          "1_000", "nan", "NaN", "infinit", "in", "1e99999999999999999999x"}) {
    EXPECT_FALSE(ParseFloat64(bad, &v)) << bad;
    EXPECT_FALSE(LooksLikeFloat(bad)) << bad;
  }
}

TEST(ValueParse, RandomFloatsMatchStrtod) {
  std::mt19937_64 rng(20261123);
  auto digits = [&](int n) {
    std::string d;
    for (int i = 0; i < n; ++i) d += static_cast<char>('0' + rng() % 10);
    return d;
  };
  std::string s;
  for (int iter = 0; iter < 1000000; ++iter) {
    s.clear();
    switch (rng() % 3) {
      case 0: break;
      case 1: s += '-'; break;
      default: s += '+'; break;
    }
    // Mantissa shapes: int, int., .frac, int.frac with 1..25 digits in all (often around 15-20 digits).
    int total = 1 + static_cast<int>(rng() % (rng() % 2 ? 25 : 10));
    int shape = static_cast<int>(rng() % 4);
    int before = shape == 2 ? 0 : (shape == 0 || shape == 1 ? total : static_cast<int>(rng() % (total + 1)));
    int after = shape == 0 || shape == 1 ? 0 : total - before;
    if (before + after == 0) before = 1;
    s += digits(before);
    if (shape != 0) s += '.';
    s += digits(after);
    if (rng() % 2) {
      s += rng() % 2 ? 'e' : 'E';
      int range = rng() % 4 == 0 ? 700 : 60;
      int e = static_cast<int>(rng() % (2 * range + 1)) - range;
      if (e >= 0 && rng() % 2) s += '+';
      s += std::to_string(e);
    }
    ExpectSameAsStrtod(s);
  }
}

TEST(ValueParse, DatetimeDatesExhaustiveAgainstCalendar) {
  // Every date of a few centuries (and the first and last years) against DaysFromCivil, plus the invalid
  // day and month numbers around each month.
  auto leap = [](int y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; };
  const int mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  char buf[32];
  for (int y = 0; y <= 9999; ++y) {
    if (!(y < 3 || (y >= 1890 && y <= 2110) || y > 9996)) continue;
    for (int m = 0; m <= 13; ++m) {
      for (int d = 0; d <= 32; ++d) {
        std::snprintf(buf, sizeof(buf), "%04d-%02d-%02d", y, m, d);
        bool valid = m >= 1 && m <= 12 && d >= 1 && d <= mdays[m - 1] + (m == 2 && leap(y) ? 1 : 0);
        int64_t v = 0;
        ASSERT_EQ(ParseDatetimeMicros(buf, &v), valid) << buf;
        if (valid) {
          ASSERT_EQ(v, DaysFromCivil(y, static_cast<unsigned>(m), static_cast<unsigned>(d)) * 86400000000LL) << buf;
        }
      }
    }
  }
  // Any byte other than a digit in a digit position (or other than '-' in a separator position) is rejected.
  const std::string good = "2024-03-01T12:30:00Z";
  for (size_t pos = 0; pos < 10; ++pos) {
    for (int c = 0; c < 256; ++c) {
      std::string t = good;
      t[pos] = static_cast<char>(c);
      bool is_sep = pos == 4 || pos == 7;
      bool keeps_shape = is_sep ? c == '-' : (c >= '0' && c <= '9');
      int64_t v = 0;
      bool ok = ParseDatetimeMicros(t, &v);
      if (!keeps_shape) {
        EXPECT_FALSE(ok) << "byte " << c << " at " << pos;
      }
    }
  }
  int64_t v = 0;
  for (const char* bad : {"2024-03-0", "2024-03-", "", "2024/03/01", "２024-03-01", "2024-03-01 ", "-024-03-01"}) {
    EXPECT_FALSE(ParseDatetimeMicros(bad, &v)) << bad;
  }
}

TEST(ValueParse, Booleans) {
  for (const char* s : {"true", "TRUE", "True", "yes", "YES", "t", "T"}) {
    bool b = false;
    EXPECT_TRUE(ParseBool(s, &b) && b) << s;
  }
  for (const char* s : {"false", "False", "no", "NO", "f", "F"}) {
    bool b = true;
    EXPECT_TRUE(ParseBool(s, &b) && !b) << s;
  }
  for (const char* s : {"0", "1", "y", "n", "on", "off", "truth"}) {
    bool b;
    EXPECT_FALSE(ParseBool(s, &b)) << s;
  }
}

TEST(ValueParse, Datetimes) {
  struct Case {
    const char* in;
    bool ok;
    int64_t micros;
  } cases[] = {
      {"1970-01-01", true, 0},
      {"2024-02-29", true, 1709164800LL * 1000000},
      {"2024-03-01 12:30:00", true, 1709296200LL * 1000000},
      {"2024-03-01T12:30:00Z", true, 1709296200LL * 1000000},
      {"2024-03-01T12:30", true, 1709296200LL * 1000000},
      {"2024-03-01T12:30:00.250", true, 1709296200LL * 1000000 + 250000},
      {"2024-03-01T14:30:00+02:00", true, 1709296200LL * 1000000},
      {"2024-03-01T07:30:00-0500", true, 1709296200LL * 1000000},
      {"1969-12-31T23:59:59Z", true, -1000000},
      {"2023-02-29", false, 0},
      {"2024-13-01", false, 0},
      {"2024-1-01", false, 0},
      {"2024-01-01T25:00:00", false, 0},
      {"2024-01-01X", false, 0},
      {"2024-01-01T10:00:00+", false, 0},
      {"20240101", false, 0},
  };
  for (const auto& c : cases) {
    int64_t v = 0;
    EXPECT_EQ(ParseDatetimeMicros(c.in, &v), c.ok) << c.in;
    if (c.ok) {
      EXPECT_EQ(v, c.micros) << c.in;
    }
  }
  EXPECT_EQ(FormatDatetimeMicros(1709296200LL * 1000000), "2024-03-01T12:30:00Z");
  EXPECT_EQ(FormatDatetimeMicros(1709296200LL * 1000000 + 250000), "2024-03-01T12:30:00.250000Z");
  EXPECT_EQ(FormatDatetimeMicros(-1000000), "1969-12-31T23:59:59Z");
}

TEST(Checksum, Crc32KnownValues) {
  EXPECT_EQ(Crc32(std::string_view("")), 0u);
  EXPECT_EQ(Crc32(std::string_view("123456789")), 0xCBF43926u);
  std::string s(1000, 'x');
  EXPECT_EQ(Crc32(s.data() + 10, 990, Crc32(s.data(), 10)), Crc32(s));
}

TEST(Checksum, AcceleratedCrc32MatchesTables) {
  // Every length 0..600 at every alignment 0..15, then random long buffers with random starting values:
  // the accelerated path (where the CPU has one) must give the table-driven result.
  std::mt19937_64 rng(7);
  std::string buf(1 << 18, '\0');
  for (auto& c : buf) c = static_cast<char>(rng());
  for (size_t off = 0; off < 16; ++off) {
    for (size_t len = 0; len <= 600; ++len) {
      ASSERT_EQ(Crc32(buf.data() + off, len), Crc32PortableForTest(buf.data() + off, len)) << off << " " << len;
    }
  }
  for (int i = 0; i < 300; ++i) {
    size_t off = rng() % 64, len = rng() % (buf.size() - 64);
    uint32_t init = static_cast<uint32_t>(rng());
    ASSERT_EQ(Crc32(buf.data() + off, len, init), Crc32PortableForTest(buf.data() + off, len, init)) << len;
  }
  // Streaming in pieces equals one call.
  uint32_t pieces = 0;
  for (size_t at = 0; at < 100000;) {
    size_t n = std::min<size_t>(100000 - at, rng() % 300);
    pieces = Crc32(buf.data() + at, n, pieces);
    at += n;
  }
  EXPECT_EQ(pieces, Crc32(buf.data(), 100000));
  std::string zeros(4096, '\0'), ones(4096, '\xFF');
  EXPECT_EQ(Crc32(zeros), Crc32PortableForTest(zeros.data(), zeros.size()));
  EXPECT_EQ(Crc32(ones), Crc32PortableForTest(ones.data(), ones.size()));
}

TEST(Tokenizer, DetectDelimiter) {
  EXPECT_EQ(DetectDelimiter("a,b,c\n1,2,3\n"), ',');
  EXPECT_EQ(DetectDelimiter("a\tb\tc\n1\t2\t3\n"), '\t');
  EXPECT_EQ(DetectDelimiter("a;b;c\n1,5;2,5;3\n"), ';');
  EXPECT_EQ(DetectDelimiter("a|b\n1|2\n"), '|');
  EXPECT_EQ(DetectDelimiter("\"x,y\";b\n\"1,2\";3\n"), ';');
  EXPECT_EQ(DetectDelimiter("single\n1\n"), ',');
}

TEST(Tokenizer, Utf8Validation) {
  EXPECT_EQ(FindInvalidUtf8("plain ascii", 11), -1);
  std::string ok = "caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80";
  EXPECT_EQ(FindInvalidUtf8(ok.data(), ok.size()), -1);
  for (std::string bad : {std::string("ab\xE9"), std::string("ab\xC0\xAF"), std::string("ab\xED\xA0\x80"),
                          std::string("ab\xF4\x90\x80\x80"), std::string("ab\xE2\x82")}) {
    EXPECT_EQ(FindInvalidUtf8(bad.data(), bad.size()), 2) << bad;
  }
}

}  // namespace
}  // namespace lathe
