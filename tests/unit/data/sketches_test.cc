#include "data/sketches.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <string>
#include <vector>

namespace lathe {
namespace {

TEST(HyperLogLogTest, OneMillionDistinctWithinThreeStandardErrors) {
  HyperLogLog a, b;
  for (uint64_t i = 0; i < 1000000; ++i) (i % 2 ? a : b).Add(MixHash64(i));
  for (uint64_t i = 0; i < 1000000; i += 3) a.Add(MixHash64(i));  // repeats do not count
  a.Merge(b);
  EXPECT_NEAR(a.Estimate(), 1e6, 1e6 * 3 * 0.0081);
}

TEST(HyperLogLogTest, SmallAndEmpty) {
  HyperLogLog h;
  EXPECT_EQ(h.Estimate(), 0.0);
  h.Add(MixHash64(42));
  EXPECT_NEAR(h.Estimate(), 1.0, 0.05);
  for (uint64_t i = 0; i < 1000; ++i) h.Add(MixHash64(i));
  EXPECT_NEAR(h.Estimate(), 1001, 1001 * 0.03);
}

TEST(QuantileSketchTest, ExactWhileSmall) {
  QuantileSketch q(64);
  std::vector<double> v = {1, 2, 3, 4, 5};
  q.AddSorted(v.data(), v.size());
  EXPECT_TRUE(q.exact());
  EXPECT_EQ(q.count(), 5);
  EXPECT_EQ(q.Quantile(0), 1);
  EXPECT_EQ(q.Quantile(0.5), 3);
  EXPECT_EQ(q.Quantile(1), 5);
  QuantileSketch empty;
  EXPECT_TRUE(std::isnan(empty.Quantile(0.5)));
}

TEST(QuantileSketchTest, RankErrorSmallOnAMillionValues) {
  const int n = 1000000;
  std::vector<double> all(n);
  for (int i = 0; i < n; ++i) all[static_cast<size_t>(i)] = i;
  std::mt19937_64 rng(7);
  std::shuffle(all.begin(), all.end(), rng);
  QuantileSketch a(2048), b(2048);
  for (int start = 0; start < n; start += 65536) {
    std::vector<double> part(all.begin() + start, all.begin() + std::min(n, start + 65536));
    std::sort(part.begin(), part.end());
    ((start / 65536) % 2 ? a : b).AddSorted(part.data(), part.size());
  }
  a.Merge(b);
  EXPECT_FALSE(a.exact());
  EXPECT_EQ(a.count(), n);
  for (double q : {0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99}) {
    // Value i has rank i, so the returned value's rank error is |value - q (n - 1)|.
    EXPECT_NEAR(a.Quantile(q), q * (n - 1), 0.002 * n) << q;
  }
  int64_t total = 0;
  for (const auto& it : a.Items()) total += it.second;
  EXPECT_EQ(total, n);
  EXPECT_LT(a.Items().size(), 2048u * 12);  // bounded memory
}

TEST(QuantileSketchTest, WeightedRunsCountEveryCopy) {
  QuantileSketch q(16);
  std::vector<double> v = {1, 2, 3};
  std::vector<int64_t> c = {1000, 1, 999};
  q.AddSortedWeighted(v.data(), c.data(), v.size());
  EXPECT_EQ(q.count(), 2000);
  EXPECT_EQ(q.Quantile(0.25), 1);
  EXPECT_EQ(q.Quantile(0.75), 3);
}

TEST(FrequentItemsTest, HeavyHittersSurviveAndBoundsHold) {
  FrequentItems<uint64_t> f(16), g(16);
  std::vector<std::pair<uint64_t, int64_t>> batch;
  int64_t n = 0;
  for (uint64_t i = 0; i < 10000; ++i) {
    uint64_t key = i % 10 == 0 ? 7 : (i % 10 == 1 ? 9 : 1000 + i);  // 7 and 9 are 10 % each
    batch.emplace_back(key, 1);
    ++n;
    if (batch.size() == 1000) {
      ((i / 1000) % 2 ? f : g).AddBatch(batch);
      batch.clear();
    }
  }
  f.Merge(g);
  auto top = f.Top(2);
  ASSERT_EQ(top.size(), 2u);
  std::vector<uint64_t> keys = {top[0].first, top[1].first};
  std::sort(keys.begin(), keys.end());
  EXPECT_EQ(keys, (std::vector<uint64_t>{7, 9}));
  for (const auto& [k, est] : top) {
    EXPECT_LE(est, 1000);
    EXPECT_GE(est + f.max_error(), 1000);
  }
  EXPECT_LE(f.max_error(), n / 17 + 1);
  EXPECT_LE(f.size(), 16u);
}

TEST(FrequentItemsTest, StringKeysExactBelowCapacity) {
  FrequentItems<std::string> f(8);
  f.AddBatch({{"b", 2}, {"a", 5}, {"b", 1}});
  f.AddBatch({{"c", 1}});
  auto top = f.Top(10);
  ASSERT_EQ(top.size(), 3u);
  EXPECT_EQ(top[0], (std::pair<std::string, int64_t>{"a", 5}));
  EXPECT_EQ(top[1], (std::pair<std::string, int64_t>{"b", 3}));
  EXPECT_EQ(f.max_error(), 0);
}

}  // namespace
}  // namespace lathe
