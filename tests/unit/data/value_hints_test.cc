#include "data/value_hints.h"

#include <gtest/gtest.h>

#include <cmath>

#include "data/value_parse.h"

namespace lathe {
namespace {

struct DateCase {
  const char* pattern;
  const char* input;
  const char* want;  // RFC 3339 of the parsed value, or nullptr if the input must not match
};

TEST(DateFormat, ParsesTable) {
  const DateCase cases[] = {
      {"%Y-%m-%d", "2024-03-01", "2024-03-01T00:00:00Z"},
      {"%d/%m/%Y", "01/03/2024", "2024-03-01T00:00:00Z"},
      {"%d/%m/%Y", "1/3/2024", "2024-03-01T00:00:00Z"},
      {"%m/%d/%y", "12/31/99", "1999-12-31T00:00:00Z"},
      {"%m/%d/%y", "01/02/68", "2068-01-02T00:00:00Z"},
      {"%m/%d/%y", "01/02/69", "1969-01-02T00:00:00Z"},
      {"%Y%m%d", "20240301", "2024-03-01T00:00:00Z"},
      {"%Y%m%d%H%M%S", "20240301235958", "2024-03-01T23:59:58Z"},
      {"%Y%m%d", "2024311", "2024-03-11T00:00:00Z"},  // backtracks: month 31 is impossible
      {"%d %b %Y", "05 Mar 2024", "2024-03-05T00:00:00Z"},
      {"%d %B %Y", "05 march 2024", "2024-03-05T00:00:00Z"},
      {"%b %d, %Y", "SEPTEMBER 9, 2021", "2021-09-09T00:00:00Z"},
      {"%a, %d %b %Y %H:%M:%S %z", "Mon, 01 Jan 2024 10:00:00 +0200", "2024-01-01T08:00:00Z"},
      {"%Y-%m-%dT%H:%M:%S%z", "2024-01-01T10:00:00Z", "2024-01-01T10:00:00Z"},
      {"%Y-%m-%dT%H:%M:%S%z", "2024-01-01t10:00:00-05:30", "2024-01-01T15:30:00Z"},
      {"%H:%M:%S.%f", "12:34:56.5", "1900-01-01T12:34:56.500000Z"},
      {"%H:%M:%S.%f", "12:34:56.123456", "1900-01-01T12:34:56.123456Z"},
      {"%I:%M %p", "12:05 AM", "1900-01-01T00:05:00Z"},
      {"%I:%M %p", "12:05 pm", "1900-01-01T12:05:00Z"},
      {"%I:%M %p", "1:05 PM", "1900-01-01T13:05:00Z"},
      {"%Y-%m-%d  %H:%M", "2024-03-01 \t 07:08", "2024-03-01T07:08:00Z"},  // spaces match any run
      {"%d%%%m", "5%6", "1900-06-05T00:00:00Z"},
      {"%Y-%m-%d", "2024-02-29", "2024-02-29T00:00:00Z"},
      // Not matching.
      {"%Y-%m-%d", "2023-02-29", nullptr},
      {"%Y-%m-%d", "2024-04-31", nullptr},
      {"%Y-%m-%d", "2024-13-01", nullptr},
      {"%Y-%m-%d", "24-01-01", nullptr},
      {"%Y-%m-%d", "2024-01-01 ", nullptr},  // the whole value must match
      {"%Y-%m-%d", "2024-01-01x", nullptr},
      {"%Y-%m-%d", "", nullptr},
      {"%H:%M", "24:00", nullptr},
      {"%H:%M:%S", "10:60:00", nullptr},
      {"%H:%M:%S.%f", "10:00:00.1234567", nullptr},
      {"%d %b %Y", "05 Foo 2024", nullptr},
      {"%I:%M %p", "13:00 PM", nullptr},
      {"%I:%M %p", "10:00 XM", nullptr},
      {"%z", "+2400", nullptr},
      {"%Y-%m-%d", "2024-01-", nullptr},
      {"%Y%m%d", "111111111111111111111111111111", nullptr},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(std::string(c.pattern) + " <- '" + c.input + "'");
    auto f = DateFormat::Compile(c.pattern);
    ASSERT_TRUE(f.ok()) << f.status().ToString();
    int64_t micros = 0;
    bool ok = f->Parse(c.input, &micros);
    if (c.want == nullptr) {
      EXPECT_FALSE(ok) << FormatDatetimeMicros(micros);
    } else {
      ASSERT_TRUE(ok);
      EXPECT_EQ(FormatDatetimeMicros(micros), c.want);
    }
  }
}

TEST(DateFormat, BacktrackingIsBounded) {
  // Many adjacent 1-2 digit directives over digits that never fit: must give up quickly, not hang.
  auto f = DateFormat::Compile("%m%d%H%M%S%m%d%H%M%S%m%d%H%M%S%m%d%H%M%S%m%d%H%M%S%m%d%H");
  ASSERT_TRUE(f.ok()) << f.status().ToString();
  int64_t micros;
  EXPECT_FALSE(f->Parse(std::string(60, '9'), &micros));
  EXPECT_FALSE(f->Parse(std::string(100, '1') + "x", &micros));
}

TEST(DateFormat, CompileErrorsNameTheProblem) {
  const std::pair<const char*, const char*> cases[] = {
      {"%Y-%q", "unknown directive %q at position 4"},
      {"%Y-%", "lone %"},
      {"plain text", "no % directive"},
      {"", "1-64 characters"},
  };
  for (const auto& [pattern, part] : cases) {
    SCOPED_TRACE(pattern);
    auto f = DateFormat::Compile(pattern);
    ASSERT_FALSE(f.ok());
    EXPECT_EQ(f.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(f.status().message().find(part), std::string::npos) << f.status().message();
  }
  EXPECT_FALSE(DateFormat::Compile(std::string(65, 'Y') + "%Y").ok());
}

TEST(DecimalComma, Table) {
  const std::pair<const char*, double> good[] = {
      {"3,14", 3.14},   {"-1.234,5", -1234.5}, {"1.234.567", 1234567}, {",5", 0.5},     {"2,5e3", 2500},
      {"+7", 7},        {"0,001", 0.001},      {"12", 12},             {"-inf", -INFINITY},
  };
  for (const auto& [s, want] : good) {
    SCOPED_TRACE(s);
    double v = 0;
    ASSERT_TRUE(ParseDecimalCommaFloat(s, &v));
    EXPECT_DOUBLE_EQ(v, want);
  }
  for (const char* s : {"1.5", "1.23", "1.2345", "1234.567", ",", "", "-", "1,2,3", "1,5e", "1.234,5x", "a", ".123",
                        "1..234", "1,5 "}) {
    SCOPED_TRACE(s);
    double v = 0;
    EXPECT_FALSE(ParseDecimalCommaFloat(s, &v));
  }
}

TEST(MissingTokens, DefaultsAndReplacement) {
  MissingTokens defaults;
  EXPECT_FALSE(defaults.custom());
  for (const char* s : {"", "NA", "N/A", "null", "NULL", "NaN", "nan", "None"}) EXPECT_TRUE(defaults.Contains(s)) << s;
  EXPECT_FALSE(defaults.Contains("-"));
  MissingTokens custom({"-", " ? ", "999"});
  EXPECT_TRUE(custom.custom());
  EXPECT_TRUE(custom.Contains(""));  // the empty value always is
  EXPECT_TRUE(custom.Contains("-"));
  EXPECT_TRUE(custom.Contains("?"));  // tokens are trimmed
  EXPECT_TRUE(custom.Contains("999"));
  EXPECT_FALSE(custom.Contains("NA"));  // replaced, not added to
  EXPECT_FALSE(custom.Contains("--"));
  MissingTokens empty_list(std::vector<std::string>{});
  EXPECT_FALSE(empty_list.custom());
}

TEST(InferValueType, FollowsTheImportRules) {
  MissingTokens defaults;
  MissingTokens custom({"-"});
  EXPECT_EQ(InferValueType("12", false, defaults), ColumnType::kInt64);
  EXPECT_EQ(InferValueType("1.5", false, defaults), ColumnType::kFloat64);
  EXPECT_EQ(InferValueType("1,5", false, defaults), ColumnType::kString);
  EXPECT_EQ(InferValueType("1,5", true, defaults), ColumnType::kFloat64);
  EXPECT_EQ(InferValueType("1.5", true, defaults), ColumnType::kString);
  EXPECT_EQ(InferValueType("yes", false, defaults), ColumnType::kBool);
  EXPECT_EQ(InferValueType("2024-01-01", false, defaults), ColumnType::kDatetime);
  EXPECT_EQ(InferValueType("NA", false, defaults), std::nullopt);
  EXPECT_EQ(InferValueType("NA", false, custom), ColumnType::kString);
  EXPECT_EQ(InferValueType("-", false, custom), std::nullopt);
}

}  // namespace
}  // namespace lathe
