#include "ml/split.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <set>

namespace lathe::ml {
namespace {

TEST(SplitSpec, DefaultsAndCanonicalForm) {
  auto s = ParseSplitSpec(Json::object());
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->method, SplitMethod::kHoldout);
  EXPECT_EQ(SplitSpecToJson(*s),
            Json::parse(R"({"method":"holdout","test_fraction":0.2,"seed":42,"stratify":true})"));
  // A request from before split methods existed still parses as holdout.
  auto old = ParseSplitSpec(Json::parse(R"({"test_fraction":0.3,"seed":7})"));
  ASSERT_TRUE(old.ok());
  EXPECT_DOUBLE_EQ(old->test_fraction, 0.3);
  EXPECT_EQ(old->seed, 7u);
  auto k = ParseSplitSpec(Json::parse(R"({"method":"kfold","folds":3,"stratify":false})"));
  ASSERT_TRUE(k.ok());
  EXPECT_EQ(SplitSpecToJson(*k), Json::parse(R"({"method":"kfold","folds":3,"seed":42,"stratify":false})"));
  auto g = ParseSplitSpec(Json::parse(R"({"method":"group_kfold","group_column":"store"})"));
  ASSERT_TRUE(g.ok());
  EXPECT_EQ(SplitSpecToJson(*g),
            Json::parse(R"({"method":"group_kfold","folds":5,"group_column":"store","seed":42})"));
  auto t = ParseSplitSpec(Json::parse(R"({"method":"time","time_column":"day","test_fraction":0.25})"));
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(SplitSpecToJson(*t),
            Json::parse(R"({"method":"time","test_fraction":0.25,"time_column":"day","seed":42})"));
  // The canonical form parses back to itself.
  for (const auto* spec : {&*s, &*k, &*g, &*t}) {
    auto again = ParseSplitSpec(SplitSpecToJson(*spec));
    ASSERT_TRUE(again.ok());
    EXPECT_EQ(SplitSpecToJson(*again), SplitSpecToJson(*spec));
  }
}

struct BadSplit {
  const char* json;
  const char* field;
};

TEST(SplitSpec, EveryBadFieldIsNamed) {
  const BadSplit cases[] = {
      {R"([])", "split"},
      {R"({"method":"loo"})", "split.method"},
      {R"({"method":3})", "split.method"},
      {R"({"test_fraction":"0.2"})", "split.test_fraction"},
      {R"({"test_fraction":0})", "split.test_fraction"},
      {R"({"test_fraction":0.95})", "split.test_fraction"},
      {R"({"method":"kfold","folds":1})", "split.folds"},
      {R"({"method":"kfold","folds":21})", "split.folds"},
      {R"({"method":"kfold","folds":2.5})", "split.folds"},
      {R"({"method":"kfold","folds":"5"})", "split.folds"},
      {R"({"method":"kfold","test_fraction":0.2})", "split.test_fraction"},
      {R"({"folds":5})", "split.folds"},
      {R"({"method":"group_kfold"})", "split.group_column"},
      {R"({"method":"group_kfold","group_column":""})", "split.group_column"},
      {R"({"method":"group_kfold","group_column":7})", "split.group_column"},
      {R"({"method":"group_kfold","group_column":"g","stratify":true})", "split.stratify"},
      {R"({"method":"time"})", "split.time_column"},
      {R"({"method":"time","time_column":["d"]})", "split.time_column"},
      {R"({"method":"kfold","time_column":"d"})", "split.time_column"},
      {R"({"seed":-1})", "split.seed"},
      {R"({"seed":1.5})", "split.seed"},
      {R"({"seed":true})", "split.seed"},
      {R"({"stratify":"yes"})", "split.stratify"},
      {R"({"shuffle":true})", "split.shuffle"},
  };
  for (const auto& c : cases) {
    auto s = ParseSplitSpec(Json::parse(c.json));
    ASSERT_FALSE(s.ok()) << c.json;
    EXPECT_EQ(s.status().code(), StatusCode::kInvalidArgument) << c.json;
    ASSERT_FALSE(s.status().details().empty()) << c.json;
    EXPECT_EQ(s.status().details()[0].field, c.field) << c.json << " -> " << s.status().ToString();
  }
}

TEST(KFold, StratifiedFoldsAreBalancedDisjointAndSeeded) {
  std::vector<float> y;
  for (int i = 0; i < 1003; ++i) y.push_back(i % 10 == 0 ? 1.0f : i % 3 == 0 ? 2.0f : 0.0f);
  const auto fold = KFoldAssign(y, true, 5, 42);
  ASSERT_EQ(fold.size(), y.size());
  std::map<int, int> size;
  std::map<std::pair<int, float>, int> per_class;
  for (size_t i = 0; i < y.size(); ++i) {
    ASSERT_GE(fold[i], 0);
    ASSERT_LT(fold[i], 5);
    ++size[fold[i]];
    ++per_class[{fold[i], y[i]}];
  }
  ASSERT_EQ(size.size(), 5u);
  for (const auto& [f, n] : size) EXPECT_NEAR(n, 1003 / 5.0, 1.0) << "fold " << f;
  std::map<float, int> class_total;
  for (float v : y) ++class_total[v];
  for (const auto& [key, n] : per_class) {
    EXPECT_NEAR(n, class_total[key.second] / 5.0, 1.0) << "fold " << key.first << " class " << key.second;
  }
  EXPECT_EQ(KFoldAssign(y, true, 5, 42), fold);
  EXPECT_NE(KFoldAssign(y, true, 5, 43), fold);
  const auto plain = KFoldAssign(y, false, 4, 42);
  std::map<int, int> plain_size;
  for (int f : plain) ++plain_size[f];
  for (const auto& [f, n] : plain_size) EXPECT_NEAR(n, 1003 / 4.0, 1.0);
}

TEST(GroupKFold, EachGroupInOneFoldAndFoldsBalanced) {
  // 40 groups of sizes 1..40.
  std::vector<int64_t> groups;
  for (int64_t g = 0; g < 40; ++g) {
    for (int64_t i = 0; i <= g; ++i) groups.push_back(g);
  }
  auto fold = GroupKFoldAssign(groups, 4, 42);
  ASSERT_TRUE(fold.ok());
  std::map<int64_t, std::set<int>> folds_of_group;
  std::map<int, int> size;
  for (size_t i = 0; i < groups.size(); ++i) {
    folds_of_group[groups[i]].insert((*fold)[i]);
    ++size[(*fold)[i]];
  }
  for (const auto& [g, fs] : folds_of_group) EXPECT_EQ(fs.size(), 1u) << "group " << g;
  ASSERT_EQ(size.size(), 4u);
  // Largest first into the lightest fold keeps every fold within one largest group of the mean.
  for (const auto& [f, n] : size) EXPECT_NEAR(n, 820 / 4.0, 40.0) << "fold " << f;
  EXPECT_EQ(*GroupKFoldAssign(groups, 4, 42), *fold);

  auto too_few = GroupKFoldAssign({0, 0, 1, 1, 2}, 4, 42);
  ASSERT_FALSE(too_few.ok());
  EXPECT_EQ(too_few.status().details()[0].field, "split.folds");
}

TEST(GroupKFold, GroupIdsFollowValuesAndMissingIsOneGroup) {
  Column c;
  c.name = "store";
  c.type = ColumnType::kString;
  c.dict = {"a", "b"};
  c.codes = {0, 1, 0, 0, 1};
  c.valid = {1, 1, 1, 0, 0};
  EXPECT_EQ(GroupIds(c, {0, 1, 2, 3, 4}), (std::vector<int64_t>{0, 1, 0, 2, 2}));
  EXPECT_EQ(GroupIds(c, {4, 2}), (std::vector<int64_t>{0, 1}));
  Column f;
  f.type = ColumnType::kFloat64;
  f.f64 = {1.5, 2.0, 1.5};
  f.valid = {1, 1, 1};
  EXPECT_EQ(GroupIds(f, {0, 1, 2}), (std::vector<int64_t>{0, 1, 0}));
}

TEST(TimeSplit, TrainsOnTheEarliestAndKeepsTheBoundaryInstantTogether) {
  // Times 0..99 shuffled by a stride, with 10 rows at t = 79.5 and two missing.
  std::vector<double> t;
  for (int i = 0; i < 100; ++i) t.push_back((i * 37) % 100);
  for (int i = 0; i < 10; ++i) t.push_back(79.5);
  t.push_back(std::nan(""));
  t.push_back(std::nan(""));
  std::vector<size_t> train, test;
  ASSERT_TRUE(TimeSplit(t, 0.2, &train, &test).ok());
  EXPECT_EQ(train.size() + test.size(), 110u);
  double train_max = -1, test_min = 1e9;
  for (size_t p : train) train_max = std::max(train_max, t[p]);
  for (size_t p : test) test_min = std::min(test_min, t[p]);
  EXPECT_LT(train_max, test_min);
  // round(110 * 0.2) = 22 test rows would cut inside t = 79.5 (rows 78..79.5 ...): the whole instant is in
  // test.
  EXPECT_EQ(test.size(), 30u);  // 80..99 and the ten at 79.5
  EXPECT_DOUBLE_EQ(test_min, 79.5);
  EXPECT_TRUE(std::is_sorted(train.begin(), train.end()));

  std::vector<size_t> a, b;
  auto one_instant = TimeSplit({5, 5, 5, std::nan("")}, 0.5, &a, &b);
  ASSERT_FALSE(one_instant.ok());
  EXPECT_EQ(one_instant.details()[0].field, "split.time_column");
  // Most rows share the first instant: train on it, test on the rest.
  ASSERT_TRUE(TimeSplit({1, 1, 1, 1, 2}, 0.6, &a, &b).ok());
  EXPECT_EQ(a, (std::vector<size_t>{0, 1, 2, 3}));
  EXPECT_EQ(b, (std::vector<size_t>{4}));
}

}  // namespace
}  // namespace lathe::ml
