#include "data/table_sort.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <map>

#include "data_test_util.h"

namespace lathe {
namespace {

using lathe::testing::ScratchDir;

Table Sample() {
  double nan = std::numeric_limits<double>::quiet_NaN();
  Table t;
  t.num_rows = 6;
  Column g{"g", ColumnType::kString};
  g.dict = {"b", "a", "B", "\xc3\xa9"};  // bytes: "B" < "a" < "b" < "é"
  g.codes = {0, 1, 0, 2, 3, 1};
  g.valid = {1, 1, 1, 1, 1, 0};
  Column x{"x", ColumnType::kFloat64};
  x.f64 = {2, 1, nan, 5, -1, 3};
  x.valid = {1, 1, 1, 0, 1, 1};
  Column id{"id", ColumnType::kInt64};
  id.i64 = {0, 1, 2, 3, 4, 5};
  id.valid = {1, 1, 1, 1, 1, 1};
  t.columns = {g, x, id};
  return t;
}

std::vector<int64_t> Ids(const Table& t) { return t.columns[2].i64; }

TEST(SortTableTest, MissingLastNaNBeforeMissingBothDirections) {
  Table t = Sample();
  auto asc = SortTable(t, {{"x", false}});
  ASSERT_TRUE(asc.ok());
  EXPECT_EQ(Ids(*asc), (std::vector<int64_t>{4, 1, 0, 5, 2, 3}));
  auto desc = SortTable(t, {{"x", true}});
  ASSERT_TRUE(desc.ok());
  EXPECT_EQ(Ids(*desc), (std::vector<int64_t>{5, 0, 1, 4, 2, 3}));
  EXPECT_EQ(desc->columns[1].valid.back(), 0);
}

TEST(SortTableTest, StringsByBytesMultiKeyAndStable) {
  Table t = Sample();
  auto r = SortTable(t, {{"g", false}});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(Ids(*r), (std::vector<int64_t>{3, 1, 0, 2, 4, 5}));  // equal "b" rows keep order 0, 2
  EXPECT_EQ(r->columns[0].StringAt(0), "B");
  auto r2 = SortTable(t, {{"g", true}, {"x", false}});
  ASSERT_TRUE(r2.ok());
  EXPECT_EQ(Ids(*r2), (std::vector<int64_t>{4, 0, 2, 1, 3, 5}));
  auto same = SortTable(t, {});
  ASSERT_TRUE(same.ok());
  EXPECT_EQ(Ids(*same), Ids(t));
  auto bad = SortTable(t, {{"nope", false}});
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument);
  ASSERT_FALSE(bad.status().details().empty());
}

TEST(GatherRowsTest, PicksRowsAndCompactsDictionaries) {
  Table t = Sample();
  auto r = GatherRows(t, {5, 0, 0});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->num_rows, 3);
  EXPECT_EQ(Ids(*r), (std::vector<int64_t>{5, 0, 0}));
  EXPECT_EQ(r->columns[0].valid, (std::vector<uint8_t>{0, 1, 1}));
  EXPECT_EQ(r->columns[0].dict, (std::vector<std::string>{"b"}));
  EXPECT_FALSE(GatherRows(t, {6}).ok());
  EXPECT_FALSE(GatherRows(t, {-1}).ok());
  auto none = GatherRows(t, {});
  ASSERT_TRUE(none.ok());
  EXPECT_EQ(none->num_rows, 0);
  EXPECT_EQ(none->columns.size(), 3u);
}

TEST(SampleRowsTest, UniformDistinctInFileOrder) {
  ScratchDir dir;
  Table t;
  t.num_rows = 200000;  // several row groups
  Column c{"v", ColumnType::kInt64};
  Column s{"s", ColumnType::kString};
  s.dict = {"even", "odd"};
  for (int64_t k = 0; k < t.num_rows; ++k) {
    c.i64.push_back(k), c.valid.push_back(1);
    s.codes.push_back(static_cast<int32_t>(k % 2)), s.valid.push_back(1);
  }
  t.columns = {c, s};
  ASSERT_TRUE(WriteDatasetFile(t, dir.Path("d.lcol")).ok());
  auto f = DatasetFile::Open(dir.Path("d.lcol"));
  ASSERT_TRUE(f.ok());
  auto r = SampleRows(**f, 1000, 42);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(r->num_rows, 1000);
  const auto& v = r->columns[0].i64;
  EXPECT_TRUE(std::is_sorted(v.begin(), v.end()));
  EXPECT_EQ(std::adjacent_find(v.begin(), v.end()), v.end());
  for (size_t k = 0; k < v.size(); ++k) EXPECT_EQ(r->columns[1].StringAt(k), v[k] % 2 ? "odd" : "even");
  // Deterministic per seed, different across seeds.
  auto again = SampleRows(**f, 1000, 42);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->columns[0].i64, v);
  auto other = SampleRows(**f, 1000, 43);
  ASSERT_TRUE(other.ok());
  EXPECT_NE(other->columns[0].i64, v);
  // Uniform: each of 10 equal slices of the file gets ~100 of the 1000 (chi-square, 9 dof, p < 0.001 -> 27.9).
  std::vector<int> slice(10, 0);
  for (int64_t x : v) ++slice[static_cast<size_t>(x / 20000)];
  double chi2 = 0;
  for (int n : slice) chi2 += (n - 100.0) * (n - 100.0) / 100.0;
  EXPECT_LT(chi2, 27.9);
  // More than the file holds: everything, in order.
  auto all = SampleRows(**f, 500000, 1);
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(all->num_rows, 200000);
  EXPECT_EQ(all->columns[0].i64, t.columns[0].i64);
  auto zero = SampleRows(**f, 0, 1);
  ASSERT_TRUE(zero.ok());
  EXPECT_EQ(zero->num_rows, 0);
  EXPECT_FALSE(SampleRows(**f, -1, 1).ok());
}

TEST(SampleRowsTest, SmallFileEveryRowEquallyLikely) {
  ScratchDir dir;
  Table t;
  t.num_rows = 10;
  Column c{"v", ColumnType::kInt64};
  for (int64_t k = 0; k < 10; ++k) c.i64.push_back(k), c.valid.push_back(1);
  t.columns = {c};
  ASSERT_TRUE(WriteDatasetFile(t, dir.Path("s.lcol")).ok());
  auto f = DatasetFile::Open(dir.Path("s.lcol"));
  ASSERT_TRUE(f.ok());
  std::vector<int> hits(10, 0);
  for (uint64_t seed = 0; seed < 2000; ++seed) {
    auto r = SampleRows(**f, 3, seed);
    ASSERT_TRUE(r.ok());
    ASSERT_EQ(r->num_rows, 3);
    for (int64_t x : r->columns[0].i64) ++hits[static_cast<size_t>(x)];
  }
  for (int h : hits) EXPECT_NEAR(h, 600, 90);  // 2000 * 3 / 10, ~4.5 sigma
}

}  // namespace
}  // namespace lathe
