#include "data/expr.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <random>

#include "data/table_ops.h"
#include "data/value_parse.h"

namespace lathe {
namespace {

// A small table: x integer, y float, s string, b boolean, d datetime, `first name` string.
Table Sample() {
  Table t;
  t.num_rows = 4;
  Column x = NullColumn("x", ColumnType::kInt64, 4);
  x.i64 = {1, 2, 3, 0};
  x.valid = {1, 1, 1, 0};
  Column y = NullColumn("y", ColumnType::kFloat64, 4);
  y.f64 = {0.5, -1.5, 2.0, 4.0};
  y.valid = {1, 1, 1, 1};
  Column s = NullColumn("s", ColumnType::kString, 4);
  s.dict = {" Apple ", "banana", "cherry"};
  s.codes = {0, 1, 2, 0};
  s.valid = {1, 1, 1, 0};
  Column b = NullColumn("b", ColumnType::kBool, 4);
  b.b = {1, 0, 0, 0};
  b.valid = {1, 1, 0, 1};
  Column d = NullColumn("d", ColumnType::kDatetime, 4);
  int64_t us = 0;
  ParseDatetimeMicros("2024-01-31T10:30:00Z", &us);
  d.i64 = {us, us + 86400LL * 1000000 * 3, 0, 0};
  d.valid = {1, 1, 0, 1};
  Column fn = NullColumn("first name", ColumnType::kString, 4);
  fn.dict = {"Ann"};
  fn.valid = {1, 1, 1, 1};
  t.columns = {x, y, s, b, d, fn};
  return t;
}

struct ErrorCase {
  const char* text;
  int64_t pos;
  const char* message;  // substring of the message
};

int64_t ErrPos(const Status& st) { return st.details().empty() ? -1 : st.details()[0].position; }

TEST(ExprParse, EveryErrorClassPointsAtTheCharacter) {
  const ErrorCase cases[] = {
      {"x + (y * 2))", 12, "unexpected ')' at 12"},
      {"x +", 4, "unexpected end of expression"},
      {"(x + 1", 1, "unclosed '('"},
      {"'abc", 1, "unterminated string"},
      {"x = 'a\\qb'", 7, "unknown escape"},
      {"`col", 1, "unterminated `quoted column name`"},
      {"x # 2", 3, "unexpected character '#'"},
      {"1.5e+", 4, "malformed number"},
      {"12abc", 3, "after a number"},
      {"x and and y", 7, "unexpected 'and'"},
      {"lower(s", 1, "unclosed '(' of lower("},
      {"x in 1, 2", 6, "unexpected '1'"},
      {"x between 1 or 2", 13, "unexpected 'or'"},
      {"x is nul", 6, "unexpected 'nul'"},
      {"", 1, "empty expression"},
      {"'\\u12'", 2, "\\u needs 4 hex digits"},
      {"'é' + ) ", 7, "unexpected ')'"},  // positions count characters, not bytes
  };
  for (const auto& c : cases) {
    auto r = ParseExpr(c.text);
    ASSERT_FALSE(r.ok()) << c.text;
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
    EXPECT_EQ(ErrPos(r.status()), c.pos) << c.text << ": " << r.status().message();
    EXPECT_NE(r.status().message().find(c.message), std::string::npos) << c.text << ": " << r.status().message();
    EXPECT_EQ(r.status().details()[0].field, "expression");
  }
}

TEST(ExprCheck, TypeErrorsPointAtTheCharacter) {
  Table t = Sample();
  const ErrorCase cases[] = {
      {"x + sz", 5, "unknown column 'sz' (did you mean 's'?)"},
      {"s + 1", 3, "operator '+' cannot apply to string and integer"},
      {"x = 'a'", 3, "cannot compare integer with string"},
      {"round(x, 1, 2)", 1, "round() takes 1 or 2 arguments, got 3"},
      {"lower(x)", 1, "lower() argument 1 must be a string, got integer"},
      {"lowr(s)", 1, "unknown function 'lowr' (did you mean 'lower'?)"},
      {"x > 1 and s", 7, "'and' needs booleans"},
      {"d > 'yesterday'", 5, "is not a date"},
      {"regex_match(s, '(a+)+$')", 16, "nested quantifiers"},
      {"regex_match(s, s)", 16, "pattern must be a text literal"},
      {"regex_match(s, '(')", 16, "invalid regex"},
      {"date('31/01/2024')", 6, "is not a date"},
      {"if(x, 1, 2)", 1, "must be a boolean"},
      {"coalesce(x, s)", 1, "must have one type"},
      {"not x", 1, "'not' needs a boolean"},
      {"-s", 1, "unary '-' needs a number"},
      {"d - d", 3, "days_between"},
  };
  for (const auto& c : cases) {
    auto e = ParseExpr(c.text);
    ASSERT_TRUE(e.ok()) << c.text << ": " << e.status().message();
    auto r = CheckExpr(*e, t);
    ASSERT_FALSE(r.ok()) << c.text;
    EXPECT_EQ(ErrPos(r.status()), c.pos) << c.text << ": " << r.status().message();
    EXPECT_NE(r.status().message().find(c.message), std::string::npos) << c.text << ": " << r.status().message();
  }
}

// Evaluates and renders each row as text ("null" for missing) to compare compactly.
std::vector<std::string> EvalRows(const std::string& text, const Table& t, ColumnType* type = nullptr) {
  auto e = ParseExpr(text);
  EXPECT_TRUE(e.ok()) << text << ": " << e.status().message();
  if (!e.ok()) return {};
  auto c = EvalExpr(*e, t);
  EXPECT_TRUE(c.ok()) << text << ": " << c.status().message();
  if (!c.ok()) return {};
  if (type != nullptr) *type = c->type;
  std::vector<std::string> out;
  for (size_t r = 0; r < c->size(); ++r) out.push_back(c->IsValid(r) ? ValueText(*c, r) : "null");
  return out;
}

using Rows = std::vector<std::string>;

TEST(ExprEval, ArithmeticPromotionAndNulls) {
  Table t = Sample();
  ColumnType ty;
  EXPECT_EQ(EvalRows("x + 1", t, &ty), (Rows{"2", "3", "4", "null"}));
  EXPECT_EQ(ty, ColumnType::kInt64);
  EXPECT_EQ(EvalRows("x + y", t, &ty), (Rows{"1.5", "0.5", "5", "null"}));
  EXPECT_EQ(ty, ColumnType::kFloat64);
  EXPECT_EQ(EvalRows("x / 2", t), (Rows{"0.5", "1", "1.5", "null"}));
  EXPECT_EQ(EvalRows("x / (x - 2)", t), (Rows{"-1", "null", "3", "null"}));  // division by zero -> null
  EXPECT_EQ(EvalRows("x % 2", t), (Rows{"1", "0", "1", "null"}));
  EXPECT_EQ(EvalRows("x % 0", t), (Rows{"null", "null", "null", "null"}));
  EXPECT_EQ(EvalRows("-x * 2", t), (Rows{"-2", "-4", "-6", "null"}));
  EXPECT_EQ(EvalRows("9223372036854775807 + x", t), (Rows{"null", "null", "null", "null"}));  // overflow
  EXPECT_EQ(EvalRows("-9223372036854775808", t), (Rows{"-9223372036854775808", "-9223372036854775808",
                                                       "-9223372036854775808", "-9223372036854775808"}));
  EXPECT_EQ(EvalRows("2 + 3 * 4 - 1", t)[0], "13");
  EXPECT_EQ(EvalRows("null + 1", t)[0], "null");
}

TEST(ExprEval, ThreeValuedLogic) {
  Table t = Sample();  // b = true, false, null, false
  EXPECT_EQ(EvalRows("b and true", t), (Rows{"true", "false", "null", "false"}));
  EXPECT_EQ(EvalRows("b and false", t), (Rows{"false", "false", "false", "false"}));
  EXPECT_EQ(EvalRows("b or true", t), (Rows{"true", "true", "true", "true"}));
  EXPECT_EQ(EvalRows("b or false", t), (Rows{"true", "false", "null", "false"}));
  EXPECT_EQ(EvalRows("not b", t), (Rows{"false", "true", "null", "true"}));
  EXPECT_EQ(EvalRows("b is null", t), (Rows{"false", "false", "true", "false"}));
  EXPECT_EQ(EvalRows("x is not null", t), (Rows{"true", "true", "true", "false"}));
  EXPECT_EQ(EvalRows("null and false", t)[0], "false");
}

TEST(ExprEval, ComparisonsInBetween) {
  Table t = Sample();
  EXPECT_EQ(EvalRows("x >= 2", t), (Rows{"false", "true", "true", "null"}));
  EXPECT_EQ(EvalRows("x <> 2", t), (Rows{"true", "false", "true", "null"}));
  EXPECT_EQ(EvalRows("x == y * 2", t), (Rows{"true", "false", "false", "null"}));
  EXPECT_EQ(EvalRows("s = 'banana'", t), (Rows{"false", "true", "false", "null"}));
  EXPECT_EQ(EvalRows("'b' < s", t), (Rows{"false", "true", "true", "null"}));
  EXPECT_EQ(EvalRows("x in (1, 3)", t), (Rows{"true", "false", "true", "null"}));
  EXPECT_EQ(EvalRows("x not in (1, 3)", t), (Rows{"false", "true", "false", "null"}));
  EXPECT_EQ(EvalRows("x in (1, null)", t), (Rows{"true", "null", "null", "null"}));
  EXPECT_EQ(EvalRows("y between 0 and 2", t), (Rows{"true", "false", "true", "false"}));
  EXPECT_EQ(EvalRows("y not between 0 and 2", t), (Rows{"false", "true", "false", "true"}));
  EXPECT_EQ(EvalRows("d > '2024-02-01'", t), (Rows{"false", "true", "null", "false"}));
  EXPECT_EQ(EvalRows("d < date('2024-02-01')", t), (Rows{"true", "false", "null", "true"}));
}

TEST(ExprEval, StringFunctions) {
  Table t = Sample();
  EXPECT_EQ(EvalRows("upper(trim(s))", t), (Rows{"APPLE", "BANANA", "CHERRY", "null"}));
  EXPECT_EQ(EvalRows("length(s)", t), (Rows{"7", "6", "6", "null"}));
  EXPECT_EQ(EvalRows("s || '!'", t), (Rows{" Apple !", "banana!", "cherry!", "null"}));
  EXPECT_EQ(EvalRows("`first name` || '-' || x", t), (Rows{"Ann-1", "Ann-2", "Ann-3", "null"}));
  EXPECT_EQ(EvalRows("contains(s, 'an')", t), (Rows{"false", "true", "false", "null"}));
  EXPECT_EQ(EvalRows("starts_with(s, 'ch')", t)[2], "true");
  EXPECT_EQ(EvalRows("ends_with(s, 'na')", t)[1], "true");
  EXPECT_EQ(EvalRows("replace(s, 'an', 'AN')", t)[1], "bANANa");
  EXPECT_EQ(EvalRows("substr(s, 2, 3)", t), (Rows{"App", "ana", "her", "null"}));
  EXPECT_EQ(EvalRows("substr('héllo', 2)", t)[0], "éllo");
  EXPECT_EQ(EvalRows("regex_match(s, '[a-z]+')", t), (Rows{"false", "true", "true", "null"}));
  EXPECT_EQ(EvalRows("lower(\"A\\\"B\\n\")", t)[0], "a\"b\n");
  EXPECT_EQ(EvalRows("'it''s'", t)[0], "it's");
}

TEST(ExprEval, MathDatesConversions) {
  Table t = Sample();
  EXPECT_EQ(EvalRows("abs(y)", t), (Rows{"0.5", "1.5", "2", "4"}));
  EXPECT_EQ(EvalRows("round(y)", t), (Rows{"1", "-2", "2", "4"}));  // half away from zero
  EXPECT_EQ(EvalRows("round(3.14159, 2)", t)[0], "3.14");
  EXPECT_EQ(EvalRows("floor(y)", t)[1], "-2");
  EXPECT_EQ(EvalRows("ceil(y)", t)[0], "1");
  EXPECT_EQ(EvalRows("log(y)", t), (Rows{"-0.6931471805599453", "null", "0.6931471805599453", "1.3862943611198906"}));
  EXPECT_EQ(EvalRows("sqrt(y)", t)[1], "null");
  EXPECT_EQ(EvalRows("log10(100)", t)[0], "2");
  EXPECT_EQ(EvalRows("pow(2, 10)", t)[0], "1024");
  EXPECT_EQ(EvalRows("exp(0)", t)[0], "1");
  EXPECT_EQ(EvalRows("min(x, y)", t), (Rows{"0.5", "-1.5", "2", "4"}));  // nulls ignored
  EXPECT_EQ(EvalRows("max(x, 2)", t), (Rows{"2", "2", "3", "2"}));
  EXPECT_EQ(EvalRows("coalesce(x, -1)", t), (Rows{"1", "2", "3", "-1"}));
  EXPECT_EQ(EvalRows("coalesce(s, 'none')", t), (Rows{" Apple ", "banana", "cherry", "none"}));
  EXPECT_EQ(EvalRows("if(x > 1, 'big', 'small')", t), (Rows{"small", "big", "big", "small"}));
  EXPECT_EQ(EvalRows("year(d)", t), (Rows{"2024", "2024", "null", "1970"}));
  EXPECT_EQ(EvalRows("month(d)", t), (Rows{"1", "2", "null", "1"}));
  EXPECT_EQ(EvalRows("day(d)", t), (Rows{"31", "3", "null", "1"}));
  EXPECT_EQ(EvalRows("hour(d)", t)[0], "10");
  EXPECT_EQ(EvalRows("weekday(d)", t), (Rows{"2", "5", "null", "3"}));  // Wed, Sat, -, Thu
  EXPECT_EQ(EvalRows("days_between(d, date('2024-02-10'))", t)[0], "9");
  EXPECT_EQ(EvalRows("to_int('42')", t)[0], "42");
  EXPECT_EQ(EvalRows("to_int(y)", t), (Rows{"0", "-1", "2", "4"}));
  EXPECT_EQ(EvalRows("to_float(s)", t)[1], "null");
  EXPECT_EQ(EvalRows("to_string(y)", t)[1], "-1.5");
  EXPECT_EQ(EvalRows("is_null(x)", t)[3], "true");
  EXPECT_EQ(EvalRows("null", t)[0], "null");
}

TEST(ExprEval, FilterRowsKeepsTrueOnly) {
  Table t = Sample();
  auto e = ParseExpr("x > 1 or b");
  ASSERT_TRUE(e.ok());
  auto f = FilterRows(t, *e);
  ASSERT_TRUE(f.ok()) << f.status().message();
  EXPECT_EQ(f->num_rows, 3);  // rows 0 (b), 1, 2; row 3: x null, b false -> null/false -> dropped
  auto bad = ParseExpr("x + 1");
  ASSERT_TRUE(bad.ok());
  auto nf = FilterRows(t, *bad);
  ASSERT_FALSE(nf.ok());
  EXPECT_NE(nf.status().message().find("boolean"), std::string::npos);
}

TEST(ExprLimits, DepthAndLengthAreErrorsNotCrashes) {
  std::string deep(5000, '(');
  deep += "1";
  deep += std::string(5000, ')');
  auto r = ParseExpr(deep);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("nested too deeply"), std::string::npos);
  EXPECT_EQ(ErrPos(r.status()), 201);

  std::string nots;
  for (int i = 0; i < 10000; ++i) nots += "not ";
  nots += "true";
  EXPECT_FALSE(ParseExpr(nots).ok());

  std::string minus(20000, '-');
  minus += "1";
  EXPECT_FALSE(ParseExpr(minus).ok());

  // A long flat chain builds a deep tree: refused by the tree-depth limit, not the stack.
  std::string chain = "1";
  for (int i = 0; i < 5000; ++i) chain += "+1";
  auto c = ParseExpr(chain);
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("nested too deeply"), std::string::npos);

  std::string ok_chain = "1";
  for (int i = 0; i < 150; ++i) ok_chain += "+1";
  EXPECT_TRUE(ParseExpr(ok_chain).ok());

  std::string big(kMaxExprBytes + 1, ' ');
  EXPECT_FALSE(ParseExpr(big).ok());

  // A wide IN list is flat and fine.
  std::string in = "x in (";
  for (int i = 0; i < 3000; ++i) in += std::to_string(i) + ",";
  in += "-1)";
  auto wide = ParseExpr(in);
  ASSERT_TRUE(wide.ok()) << wide.status().message();
  Table t = Sample();
  EXPECT_TRUE(EvalExpr(*wide, t).ok());
}

TEST(ExprLimits, HostileRegexInputIsBounded) {
  Table t;
  t.num_rows = 1;
  Column s = NullColumn("s", ColumnType::kString, 1);
  s.dict = {std::string(100000, 'a')};
  s.valid = {1};
  t.columns.push_back(s);
  auto e = ParseExpr("regex_match(s, 'a*b')");
  ASSERT_TRUE(e.ok());
  auto c = EvalExpr(*e, t);
  ASSERT_TRUE(c.ok());
  EXPECT_FALSE(c->IsValid(0));  // over the input cap: null
  EXPECT_FALSE(ValidateSafeRegex("(a|aa)*c").ok());
  EXPECT_FALSE(ValidateSafeRegex("(x)\\1").ok());
  EXPECT_TRUE(ValidateSafeRegex("^[a-z]+@[a-z]+\\.(com|org)$").ok());
}

TEST(ExprFuzz, RandomBytesAndTokensNeverCrash) {
  std::mt19937_64 rng(12345);
  Table t = Sample();
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < 3000; ++i) {
    std::string s(rng() % 64, '\0');
    for (char& c : s) c = static_cast<char>(rng() % 256);
    auto e = ParseExpr(s);
    if (e.ok()) (void)EvalExpr(*e, t);
  }
  const char* toks[] = {"x", "y", "s", "b", "d", "`first name`", "1", "2.5", "'a'", "null", "true", "(", ")", ",",
                        "+", "-", "*", "/", "%", "=", "<", ">=", "!=", "||", "and", "or", "not", "in", "between",
                        "is", "lower(", "round(", "coalesce(", "if(", "substr(", "date('2024-01-01')", "min(",
                        "regex_match(", "days_between(", "year("};
  int parsed = 0;
  for (int i = 0; i < 20000; ++i) {
    std::string s;
    const size_t n = 1 + rng() % 12;
    for (size_t k = 0; k < n; ++k) s += std::string(toks[rng() % std::size(toks)]) + " ";
    auto e = ParseExpr(s);
    if (!e.ok()) {
      EXPECT_GE(ErrPos(e.status()), 1) << s;
      continue;
    }
    ++parsed;
    auto c = EvalExpr(*e, t);
    if (c.ok()) {
      EXPECT_EQ(c->size(), 4u);
    }
  }
  EXPECT_GT(parsed, 100);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(60));
}

}  // namespace
}  // namespace lathe
