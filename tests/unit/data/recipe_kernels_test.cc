// Randomized checks of the vectorized and partitioned recipe kernels against plain row-by-row references:
// dedupe (partitioned hashing, the single-key shortcut), the branch-free expression kernels (arithmetic,
// comparisons, three-valued and/or with scalars on either side and missing values), and the one-pass numeric
// fits (mean, min/max, z-score, median).
#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <random>
#include <set>

#include "data/expr.h"
#include "data/recipe.h"
#include "data/table_ops.h"

namespace lathe {
namespace {

Table ApplySteps(const std::string& steps_json, Table t) {
  auto recipe = ParseRecipe(ParseJson(steps_json).value());
  EXPECT_TRUE(recipe.ok()) << recipe.status().message();
  auto out = ApplyRecipe(*recipe, std::move(t), {}, nullptr);
  EXPECT_TRUE(out.ok()) << out.status().message();
  return out.ok() ? std::move(out->table) : Table{};
}

// Columns: k (int, few distinct, some missing when `nulls`), f (float with -0.0/0.0 and NaN), s (string whose
// dictionary holds a duplicate entry), row (the original row number).
Table DedupeInput(size_t n, bool nulls, std::mt19937_64& rng) {
  Table t;
  t.num_rows = static_cast<int64_t>(n);
  Column k = NullColumn("k", ColumnType::kInt64, n), f = NullColumn("f", ColumnType::kFloat64, n),
         s = NullColumn("s", ColumnType::kString, n), row = NullColumn("row", ColumnType::kInt64, n);
  s.dict = {"x", "y", "x", "z"};
  const double floats[] = {0.0, -0.0, 1.5, std::nan(""), -2.0};
  for (size_t r = 0; r < n; ++r) {
    k.valid[r] = !nulls || rng() % 10 != 0;
    k.i64[r] = static_cast<int64_t>(rng() % (n / 3 + 1)) - 5;
    f.valid[r] = !nulls || rng() % 10 != 0;
    f.f64[r] = floats[rng() % 5];
    s.valid[r] = 1;
    s.codes[r] = static_cast<int32_t>(rng() % 4);
    row.valid[r] = 1;
    row.i64[r] = static_cast<int64_t>(r);
  }
  t.columns = {k, f, s, row};
  return t;
}

// The key of a row over `cols` as text, with one spelling for missing, -0.0/0.0, NaN and equal strings.
std::string RowKey(const Table& t, const std::vector<int>& cols, size_t r) {
  std::string key;
  for (int ci : cols) {
    const Column& c = t.columns[static_cast<size_t>(ci)];
    if (!c.valid[r]) {
      key += "<null>|";
      continue;
    }
    if (c.type == ColumnType::kFloat64 && std::isnan(c.f64[r])) key += "nan|";
    else if (c.type == ColumnType::kFloat64 && c.f64[r] == 0) key += "0|";
    else key += ValueText(c, r) + "|";
  }
  return key;
}

TEST(DedupeKernel, KeepsTheFirstOrLastRowOfEachKeyLikeAReference) {
  std::mt19937_64 rng(11);
  const std::vector<std::pair<std::string, std::vector<int>>> keys = {
      {R"(["k"])", {0}}, {R"(["f"])", {1}}, {R"(["s"])", {2}}, {R"(["k","s"])", {0, 2}}, {R"(["k","f","s"])", {0, 1, 2}}};
  for (size_t n : {size_t{1}, size_t{100}, size_t{5000}, size_t{70000}}) {
    for (bool nulls : {false, true}) {
      for (const auto& [cols_json, cols] : keys) {
        for (const std::string keep : {"first", "last"}) {
          const Table in = DedupeInput(n, nulls, rng);
          // Reference: the surviving original row numbers.
          std::map<std::string, size_t> chosen;
          for (size_t r = 0; r < n; ++r) {
            const std::string key = RowKey(in, cols, r);
            if (keep == "last" || !chosen.count(key)) chosen[key] = r;
          }
          std::set<int64_t> want;
          for (const auto& [key, r] : chosen) want.insert(static_cast<int64_t>(r));
          const Table out = ApplySteps(R"([{"op":"dedupe","params":{"columns":)" + cols_json + R"(,"keep":")" + keep + R"("}}])", in);
          ASSERT_EQ(out.num_rows, static_cast<int64_t>(want.size())) << n << " rows, nulls " << nulls << ", " << cols_json << ", " << keep;
          const Column& row = out.columns[3];
          std::set<int64_t> got(row.i64.begin(), row.i64.end());
          EXPECT_EQ(got, want) << n << " rows, nulls " << nulls << ", " << cols_json << ", " << keep;
          for (size_t i = 1; i < row.i64.size(); ++i) ASSERT_LT(row.i64[i - 1], row.i64[i]) << "table order kept";
        }
      }
    }
  }
}

// A number of the reference, or missing.
struct Num {
  bool valid;
  double v;
};

TEST(ExprKernels, ArithmeticComparisonsAndLogicMatchARowByRowReference) {
  std::mt19937_64 rng(5);
  const size_t n = 1000;
  Table t;
  t.num_rows = static_cast<int64_t>(n);
  Column a = NullColumn("a", ColumnType::kFloat64, n), i = NullColumn("i", ColumnType::kInt64, n),
         p = NullColumn("p", ColumnType::kBool, n), q = NullColumn("q", ColumnType::kBool, n);
  for (size_t r = 0; r < n; ++r) {
    a.valid[r] = rng() % 7 != 0;
    a.f64[r] = static_cast<double>(static_cast<int>(rng() % 21) - 10) / 4.0;
    i.valid[r] = rng() % 7 != 0;
    i.i64[r] = static_cast<int64_t>(rng() % 11) - 5;
    p.valid[r] = rng() % 5 != 0;
    p.b[r] = rng() % 2;
    q.valid[r] = rng() % 5 != 0;
    q.b[r] = rng() % 2;
  }
  t.columns = {a, i, p, q};
  auto eval = [&](const std::string& text) {
    auto e = ParseExpr(text);
    EXPECT_TRUE(e.ok()) << text;
    auto c = EvalExpr(*e, t);
    EXPECT_TRUE(c.ok()) << text << ": " << c.status().message();
    return std::move(c).value();
  };
  auto A = [&](size_t r) { return Num{a.valid[r] != 0, a.f64[r]}; };
  auto I = [&](size_t r) { return Num{i.valid[r] != 0, static_cast<double>(i.i64[r])}; };
  struct ArithCase {
    std::string text;
    std::function<Num(size_t)> want;
  };
  const std::vector<ArithCase> arith = {
      {"a + i", [&](size_t r) { return Num{A(r).valid && I(r).valid, A(r).v + I(r).v}; }},
      {"a - 2", [&](size_t r) { return Num{A(r).valid, A(r).v - 2}; }},
      {"3 * a", [&](size_t r) { return Num{A(r).valid, 3 * A(r).v}; }},
      {"a / i", [&](size_t r) { return Num{A(r).valid && I(r).valid && I(r).v != 0, A(r).v / I(r).v}; }},
      {"10 / a", [&](size_t r) { return Num{A(r).valid && A(r).v != 0, 10 / A(r).v}; }},
      {"i / 4", [&](size_t r) { return Num{I(r).valid, I(r).v / 4}; }},
      {"a * 2 + i / 10", [&](size_t r) { return Num{A(r).valid && I(r).valid, A(r).v * 2 + I(r).v / 10}; }},
  };
  for (const auto& c : arith) {
    const Column got = eval(c.text);
    ASSERT_EQ(got.type, ColumnType::kFloat64) << c.text;
    for (size_t r = 0; r < n; ++r) {
      const Num w = c.want(r);
      ASSERT_EQ(got.valid[r] != 0, w.valid) << c.text << " row " << r;
      if (w.valid) {
        ASSERT_EQ(got.f64[r], w.v) << c.text << " row " << r;
      } else {
        ASSERT_EQ(got.f64[r], 0.0) << c.text << ": a missing row's slot is zeroed";
      }
    }
  }
  struct BoolCase {
    std::string text;
    std::function<int(size_t)> want;  // -1 missing, 0 false, 1 true
  };
  auto P = [&](size_t r) { return p.valid[r] ? static_cast<int>(p.b[r]) : -1; };
  auto Q = [&](size_t r) { return q.valid[r] ? static_cast<int>(q.b[r]) : -1; };
  auto and3 = [](int x, int y) { return (x == 0 || y == 0) ? 0 : (x == 1 && y == 1) ? 1 : -1; };
  auto or3 = [](int x, int y) { return (x == 1 || y == 1) ? 1 : (x == 0 && y == 0) ? 0 : -1; };
  auto cmp = [](Num x, Num y, auto f) { return x.valid && y.valid ? static_cast<int>(f(x.v, y.v)) : -1; };
  const std::vector<BoolCase> logic = {
      {"p and q", [&](size_t r) { return and3(P(r), Q(r)); }},
      {"p or q", [&](size_t r) { return or3(P(r), Q(r)); }},
      {"p and true", [&](size_t r) { return and3(P(r), 1); }},
      {"false or q", [&](size_t r) { return or3(0, Q(r)); }},
      {"a > 0", [&](size_t r) { return cmp(A(r), Num{true, 0}, std::greater<>()); }},
      {"1 <= i", [&](size_t r) { return cmp(Num{true, 1}, I(r), std::less_equal<>()); }},
      {"a = i", [&](size_t r) { return cmp(A(r), I(r), std::equal_to<>()); }},
      {"i != 0", [&](size_t r) { return cmp(I(r), Num{true, 0}, std::not_equal_to<>()); }},
      {"a < 1 and i >= 2 or p", [&](size_t r) {
         return or3(and3(cmp(A(r), Num{true, 1}, std::less<>()), cmp(I(r), Num{true, 2}, std::greater_equal<>())), P(r));
       }},
  };
  for (const auto& c : logic) {
    const Column got = eval(c.text);
    ASSERT_EQ(got.type, ColumnType::kBool) << c.text;
    for (size_t r = 0; r < n; ++r) {
      const int w = c.want(r);
      ASSERT_EQ(got.valid[r] != 0, w >= 0) << c.text << " row " << r;
      if (w >= 0) {
        ASSERT_EQ(got.b[r], w) << c.text << " row " << r;
      }
    }
    // As a filter: exactly the rows where the expression is true.
    auto e = ParseExpr(c.text);
    auto keep = EvalPredicate(*e, t);
    ASSERT_TRUE(keep.ok());
    for (size_t r = 0; r < n; ++r) ASSERT_EQ((*keep)[r] != 0, c.want(r) == 1) << c.text << " row " << r;
  }
}

TEST(NumericFits, OnePassStatisticsSkipMissingAndNaN) {
  Table t;
  const std::vector<double> values = {4, 1, std::nan(""), 7, 2, 10, 0};
  t.num_rows = static_cast<int64_t>(values.size());
  Column x = NullColumn("x", ColumnType::kFloat64, values.size()), k = NullColumn("k", ColumnType::kInt64, values.size());
  for (size_t r = 0; r < values.size(); ++r) {
    x.f64[r] = values[r];
    x.valid[r] = r != 5;  // 10 is missing; NaN is skipped: numbers 4 1 7 2 0
    k.i64[r] = static_cast<int64_t>(r);
    k.valid[r] = r != 0;  // 1..6
  }
  t.columns = {x, k};
  auto fitted = [&](const std::string& steps) {
    auto recipe = ParseRecipe(ParseJson(steps).value());
    auto out = ApplyRecipe(*recipe, t, {}, nullptr);
    EXPECT_TRUE(out.ok()) << out.status().message();
    return out->fitted[0]["state"]["columns"];
  };
  EXPECT_DOUBLE_EQ(fitted(R"([{"op":"impute","params":{"columns":["x"],"strategy":"mean"}}])")[0]["fill"].get<double>(), 14.0 / 5);
  EXPECT_DOUBLE_EQ(fitted(R"([{"op":"impute","params":{"columns":["x"],"strategy":"median"}}])")[0]["fill"].get<double>(), 2.0);
  EXPECT_DOUBLE_EQ(fitted(R"([{"op":"impute","params":{"columns":["k"],"strategy":"median"}}])")[0]["fill"].get<double>(), 3.5);
  const Json mm = fitted(R"([{"op":"scale_minmax","params":{"columns":["x","k"]}}])");
  EXPECT_EQ(mm[0]["min"].get<double>(), 0.0);
  EXPECT_EQ(mm[0]["max"].get<double>(), 7.0);
  EXPECT_EQ(mm[1]["min"].get<double>(), 1.0);
  EXPECT_EQ(mm[1]["max"].get<double>(), 6.0);
  const Json z = fitted(R"([{"op":"scale_zscore","params":{"columns":["k"]}}])");
  EXPECT_DOUBLE_EQ(z[0]["mean"].get<double>(), 3.5);
  EXPECT_DOUBLE_EQ(z[0]["std"].get<double>(), std::sqrt(17.5 / 6));
}

}  // namespace
}  // namespace lathe
