#include "data/table_ops.h"

#include <gtest/gtest.h>

#include <random>

namespace lathe {
namespace {

// A table of every column type with random values and ~1 in 5 missing (or none missing, per column).
Table RandomTable(size_t n, std::mt19937_64& rng) {
  Table t;
  t.num_rows = static_cast<int64_t>(n);
  const ColumnType types[] = {ColumnType::kInt64, ColumnType::kFloat64, ColumnType::kBool, ColumnType::kString,
                              ColumnType::kDatetime};
  int k = 0;
  for (ColumnType type : types) {
    for (bool nulls : {false, true}) {
      Column c = NullColumn("c" + std::to_string(k++), type, n);
      c.dict = {"a", "b", "c"};
      for (size_t r = 0; r < n; ++r) {
        c.valid[r] = nulls ? rng() % 5 != 0 : 1;
        switch (type) {
          case ColumnType::kInt64:
          case ColumnType::kDatetime: c.i64[r] = static_cast<int64_t>(rng()); break;
          case ColumnType::kFloat64: c.f64[r] = static_cast<double>(rng() % 100000) / 7.0; break;
          case ColumnType::kBool: c.b[r] = rng() % 2; break;
          case ColumnType::kString: c.codes[r] = static_cast<int32_t>(rng() % 3); break;
        }
      }
      t.columns.push_back(std::move(c));
    }
  }
  return t;
}

void ExpectSame(const Table& a, const Table& b, const std::string& what) {
  ASSERT_EQ(a.num_rows, b.num_rows) << what;
  ASSERT_EQ(a.columns.size(), b.columns.size()) << what;
  for (size_t c = 0; c < a.columns.size(); ++c) {
    const Column& x = a.columns[c];
    const Column& y = b.columns[c];
    ASSERT_EQ(x.valid, y.valid) << what << " column " << x.name;
    EXPECT_EQ(x.i64, y.i64) << what << " column " << x.name;
    EXPECT_EQ(x.f64, y.f64) << what << " column " << x.name;
    EXPECT_EQ(x.b, y.b) << what << " column " << x.name;
    EXPECT_EQ(x.codes, y.codes) << what << " column " << x.name;
  }
}

// KeepRowsInPlace (in place, vectorized where the CPU allows, columns in parallel on big tables) must keep
// exactly what SelectRows (a plain gather into a new table) keeps: sizes around the 64-row blocks and tails,
// keep-all, keep-none and sparse/dense masks.
TEST(KeepRowsInPlace, MatchesSelectRowsOnEveryTypeAndSize) {
  std::mt19937_64 rng(7);
  for (size_t n : {size_t{0}, size_t{1}, size_t{63}, size_t{64}, size_t{65}, size_t{127}, size_t{1000}, size_t{300001}}) {
    for (int density : {0, 1, 50, 95, 100}) {
      Table t = RandomTable(n, rng);
      std::vector<uint8_t> keep(n);
      for (size_t i = 0; i < n; ++i) keep[i] = static_cast<uint8_t>(static_cast<int>(rng() % 100) < density ? 1 + rng() % 3 : 0);
      const Table want = SelectRows(t, keep);
      KeepRowsInPlace(t, keep);
      ExpectSame(t, want, "n=" + std::to_string(n) + " density=" + std::to_string(density));
      ASSERT_TRUE(ValidateTable(t).ok());
    }
  }
}

}  // namespace
}  // namespace lathe
