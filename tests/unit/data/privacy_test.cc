#include "data/privacy.h"

#include <gtest/gtest.h>

#include <cmath>

namespace lathe {
namespace {

Column Strings(std::vector<std::string> dict, std::vector<int32_t> codes, std::vector<uint8_t> valid) {
  Column c;
  c.name = "s";
  c.type = ColumnType::kString;
  c.dict = std::move(dict);
  c.codes = std::move(codes);
  c.valid = std::move(valid);
  return c;
}

TEST(SubjectMatcher, StringsExactAndCaseInsensitive) {
  Column c = Strings({"a@b.com", "A@B.com", "x@y.com"}, {0, 1, 2, 0, 0}, {1, 1, 1, 0, 1});
  EXPECT_EQ(SubjectMatcher("a@b.com", SubjectMatch::kExact).MatchingRows(c), (std::vector<int64_t>{0, 4}));
  EXPECT_EQ(SubjectMatcher("a@B.COM", SubjectMatch::kCaseInsensitive).MatchingRows(c),
            (std::vector<int64_t>{0, 1, 4}));
  EXPECT_TRUE(SubjectMatcher(" a@b.com", SubjectMatch::kExact).MatchingRows(c).empty());  // no trimming
  EXPECT_TRUE(SubjectMatcher("nobody", SubjectMatch::kExact).MatchingRows(c).empty());
}

TEST(SubjectMatcher, NumbersByValueNotText) {
  Column i;
  i.type = ColumnType::kInt64;
  i.i64 = {42, 7, 42};
  i.valid = {1, 1, 0};
  EXPECT_EQ(SubjectMatcher("42", SubjectMatch::kExact).MatchingRows(i), (std::vector<int64_t>{0}));
  EXPECT_EQ(SubjectMatcher(" 42 ", SubjectMatch::kExact).MatchingRows(i), (std::vector<int64_t>{0}));
  EXPECT_TRUE(SubjectMatcher("42.0", SubjectMatch::kExact).MatchingRows(i).empty());
  EXPECT_TRUE(SubjectMatcher("forty-two", SubjectMatch::kExact).MatchingRows(i).empty());
  Column f;
  f.type = ColumnType::kFloat64;
  f.f64 = {1.5, NAN, 2.0};
  f.valid = {1, 1, 1};
  EXPECT_EQ(SubjectMatcher("1.50", SubjectMatch::kExact).MatchingRows(f), (std::vector<int64_t>{0}));
  EXPECT_EQ(SubjectMatcher("2", SubjectMatch::kExact).MatchingRows(f), (std::vector<int64_t>{2}));
  EXPECT_TRUE(SubjectMatcher("nan", SubjectMatch::kExact).MatchingRows(f).empty());
}

TEST(SubjectMatcher, DatetimesAndBooleansAndRawText) {
  Column d;
  d.type = ColumnType::kDatetime;
  d.i64 = {1709294400000000, 0};  // 2024-03-01T12:00:00Z
  d.valid = {1, 1};
  EXPECT_EQ(SubjectMatcher("2024-03-01T12:00:00Z", SubjectMatch::kExact).MatchingRows(d),
            (std::vector<int64_t>{0}));
  EXPECT_EQ(SubjectMatcher("2024-03-01 13:00:00+01:00", SubjectMatch::kExact).MatchingRows(d),
            (std::vector<int64_t>{0}));
  Column b;
  b.type = ColumnType::kBool;
  b.b = {1, 0};
  b.valid = {1, 1};
  EXPECT_EQ(SubjectMatcher("TRUE", SubjectMatch::kExact).MatchingRows(b), (std::vector<int64_t>{0}));
  SubjectMatcher ci("Ann@Example.org", SubjectMatch::kCaseInsensitive);
  EXPECT_TRUE(ci.Contains("3,ann@example.ORG,oops"));
  EXPECT_FALSE(ci.Contains("3,joann@example.org,oops"));
  SubjectMatcher one("1", SubjectMatch::kExact);
  EXPECT_TRUE(one.Contains("1,x"));
  EXPECT_TRUE(one.Contains("a;\"1\""));
  EXPECT_FALSE(one.Contains("12,x"));
  EXPECT_FALSE(SubjectMatcher("Ann@Example.org", SubjectMatch::kExact).Contains("ann@example.org"));
  EXPECT_EQ(ci.normalized(), "ann@example.org");
  EXPECT_FALSE(ParseSubjectMatch("fuzzy").ok());
}

TEST(Laplace, UniformIsOpenInterval) {
  EXPECT_GT(UniformOpen01(0), 0.0);
  EXPECT_LT(UniformOpen01(~uint64_t{0}), 1.0);
}

// Laplace(0, b): mean 0, E|X| = b, Var = 2b^2, median 0. Tolerances are ~6 standard errors.
void CheckLaplace(const RandomWords& words, double b) {
  const int n = 200000;
  double sum = 0, abs_sum = 0, sq = 0;
  int positive = 0;
  for (int i = 0; i < n; ++i) {
    double x = SampleLaplace(b, words);
    ASSERT_TRUE(std::isfinite(x));
    sum += x;
    abs_sum += std::fabs(x);
    sq += x * x;
    positive += x > 0;
  }
  const double mean = sum / n, mean_abs = abs_sum / n, var = sq / n - mean * mean;
  EXPECT_NEAR(mean, 0.0, 6 * std::sqrt(2.0) * b / std::sqrt(n));
  EXPECT_NEAR(mean_abs, b, 6 * b / std::sqrt(n));  // sd of |X| is b
  EXPECT_NEAR(var, 2 * b * b, 0.05 * 2 * b * b);
  EXPECT_NEAR(positive / static_cast<double>(n), 0.5, 6 * 0.5 / std::sqrt(n));
}

TEST(Laplace, SecureSamplerHasTheRightDistribution) {
  CheckLaplace(SecureRandomWords(), 1.0);
  CheckLaplace(SecureRandomWords(), 7.5);
}

TEST(Laplace, KeyedSamplerHasTheRightDistributionAndRepeats) {
  CheckLaplace(KeyedRandomWords("key", "ctx"), 3.0);
  RandomWords a = KeyedRandomWords("key", "ctx"), b = KeyedRandomWords("key", "ctx"),
              c = KeyedRandomWords("key", "other");
  bool differs = false;
  for (int i = 0; i < 100; ++i) {
    uint64_t x = a(), y = b(), z = c();
    EXPECT_EQ(x, y);
    differs = differs || x != z;
  }
  EXPECT_TRUE(differs);
}

TEST(Laplace, NoisyCountsAreNonNegativeIntegersCenteredOnTheValue) {
  RandomWords words = SecureRandomWords();
  double sum = 0;
  for (int i = 0; i < 50000; ++i) {
    int64_t v = NoisyCount(0, 5.0, words);
    EXPECT_GE(v, 0);
  }
  for (int i = 0; i < 50000; ++i) sum += static_cast<double>(NoisyCount(1000, 2.0, words));
  EXPECT_NEAR(sum / 50000, 1000.0, 0.1);
}

Json SmallProfile() {
  return Json::parse(R"({
    "rows": 500, "num_columns": 4, "duplicate_rows": 3, "target": null,
    "columns": [
      {"name": "email", "type": "string", "count": 500, "missing": 0, "distinct": 500,
       "top_values": [{"value": "a@b.com", "count": 1}], "semantic_kinds": ["email", "identifier"],
       "length": {"min": 5, "mean": 10, "max": 20}},
      {"name": "city", "type": "string", "count": 490, "missing": 10, "distinct": 2,
       "top_values": [{"value": "Paris", "count": 480}, {"value": "Lyon", "count": 10}], "semantic_kinds": []},
      {"name": "age", "type": "integer", "count": 500, "missing": 0, "distinct": 60, "min": 18, "max": 90,
       "mean": 40.5, "std": 10, "zeros": 0, "negatives": 0, "top_values": [{"value": 30, "count": 40}],
       "quantiles": {"p50": 40}, "histogram": {"kind": "equal_width", "bins": []}},
      {"name": "vip", "type": "boolean", "count": 400, "missing": 100, "distinct": 2, "mean": 0.25,
       "top_values": [{"value": false, "count": 300}, {"value": true, "count": 100}]}
    ]})");
}

TEST(PrivatizeProfile, PublishesOnlyNoisedCountsAndWithholdsTheRest) {
  DpOptions opt;
  opt.epsilon = 2.0;
  opt.identifying_columns = {"city"};
  auto r = PrivatizeProfile(SmallProfile(), opt, SecureRandomWords());
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  const Json& p = *r;
  const Json& dp = p["differential_privacy"];
  EXPECT_EQ(dp["mechanism"], "laplace");
  EXPECT_EQ(dp["epsilon"], 2.0);
  // rows, duplicates + 4 columns x ({count,missing}, distinct) + age signs + top values of age and vip.
  EXPECT_EQ(dp["statistics"], 2 + 4 * 2 + 1 + 2);
  EXPECT_NEAR(dp["scale"].get<double>(), 13 / 2.0, 1e-12);
  for (const auto& c : p["columns"]) {
    for (const char* k :
         {"min", "max", "mean", "std", "quantiles", "histogram", "length", "semantic_kinds"}) {
      EXPECT_FALSE(c.contains(k)) << k;
    }
    for (const char* k : {"count", "missing", "distinct"}) {
      ASSERT_TRUE(c[k].is_number_integer()) << k;
      EXPECT_GE(c[k].get<int64_t>(), 0);
    }
  }
  EXPECT_TRUE(p["columns"][0]["top_values"].is_null());  // an email column
  EXPECT_TRUE(p["columns"][1]["top_values"].is_null());  // tagged personal
  EXPECT_TRUE(p["columns"][2].contains("zeros"));
  EXPECT_TRUE(p["columns"][3].contains("true_count"));
  // A value held by one row never clears the threshold here (it would need noise above ~85).
  const double tau = dp["top_value_threshold"].get<double>();
  EXPECT_GT(tau, 50);
  for (const auto& tv : p["columns"][3]["top_values"]) EXPECT_GE(tv["count"].get<double>(), tau);
  EXPECT_FALSE(p.contains("correlations"));
  EXPECT_FALSE(p.contains("warnings"));
}

TEST(PrivatizeProfile, RejectsBadEpsilonAndRepeatsWithAKeyedStream) {
  DpOptions opt;
  for (double eps : {0.0, -1.0, std::nan(""), HUGE_VAL}) {
    opt.epsilon = eps;
    EXPECT_FALSE(PrivatizeProfile(SmallProfile(), opt, SecureRandomWords()).ok()) << eps;
  }
  opt.epsilon = 0.5;
  auto a = PrivatizeProfile(SmallProfile(), opt, KeyedRandomWords("k", "v1"));
  auto b = PrivatizeProfile(SmallProfile(), opt, KeyedRandomWords("k", "v1"));
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(*a, *b);
}

}  // namespace
}  // namespace lathe
