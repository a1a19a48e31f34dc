#include "data/value_parse.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>

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
