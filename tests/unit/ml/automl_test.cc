#include "ml/automl.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <random>

#include "ml/predictor.h"
#include "ml_test_tables.h"

namespace lathe::ml {
namespace {

using testing::MakeMixedTable;

TEST(AutoMl, InfersTheTaskFromTheTarget) {
  EXPECT_EQ(InferTask(MakeMixedTable(200, 1, "binary"), "label").value(), "binary");
  EXPECT_EQ(InferTask(MakeMixedTable(200, 1, "multiclass"), "tier").value(), "multiclass");
  EXPECT_EQ(InferTask(MakeMixedTable(200, 1, "regression"), "spend").value(), "regression");
  Table t = MakeMixedTable(200, 1, "binary");
  EXPECT_EQ(InferTask(t, "active").value(), "binary");  // a boolean
  EXPECT_EQ(InferTask(t, "age").value(), "regression");  // 60 distinct integers
  Column digits = testing::MakeColumn("digit", ColumnType::kInt64);
  for (int64_t r = 0; r < t.num_rows; ++r) testing::PushInt(&digits, r % 10);
  t.columns.push_back(digits);
  EXPECT_EQ(InferTask(t, "digit").value(), "multiclass");
  for (const char* bad : {"signup", "nope"}) {
    auto r = InferTask(t, bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.status().details()[0].field, "target");
  }
}

TEST(AutoMl, GreedyEnsembleAveragesIndependentErrors) {
  // Two predictors of y with independent noise: their mean is better than either (squared error).
  std::mt19937_64 rng(1);
  std::normal_distribution<float> noise(0, 1);
  const size_t n = 2000;
  std::vector<float> y(n), a(n), b(n), bad(n);
  for (size_t i = 0; i < n; ++i) {
    y[i] = noise(rng);
    a[i] = y[i] + noise(rng);
    b[i] = y[i] + noise(rng);
    bad[i] = noise(rng) * 3;
  }
  auto mse = [&](const std::vector<float>& p) {
    double s = 0;
    for (size_t i = 0; i < n; ++i) s += (p[i] - y[i]) * (p[i] - y[i]);
    return s / n;
  };
  const std::vector<int> counts = GreedyEnsemble({&bad, &a, &b}, mse, /*maximize=*/false, 25);
  EXPECT_EQ(counts[0], 0);
  EXPECT_GE(counts[1], 1);
  EXPECT_GE(counts[2], 1);
  EXPECT_LE(std::abs(counts[1] - counts[2]), 2);
}

// The blended model is exactly the weighted sum of its members' margins.
TEST(AutoMl, FitEnsembleMergesMembersIntoOneServableModel) {
  for (const char* task : {"binary", "multiclass", "regression"}) {
    SCOPED_TRACE(task);
    Table t = MakeMixedTable(1200, 51, task);
    TrainSpec spec;
    spec.target = t.columns.back().name;
    spec.task = task;
    spec.nthread = 1;
    spec.explain = false;
    const EnsembleMember gbt{"xgboost", {{"n_estimators", 30}, {"max_depth", 4}}, 0.7};
    const EnsembleMember rf{"random_forest", {{"n_estimators", 20}, {"max_depth", 5}}, 0.3};
    auto blend = FitEnsemble(t, spec, {gbt, rf}, nullptr, nullptr);
    ASSERT_TRUE(blend.ok()) << blend.status().ToString();
    auto one = FitEnsemble(t, spec, {gbt}, nullptr, nullptr);
    auto two = FitEnsemble(t, spec, {rf}, nullptr, nullptr);
    ASSERT_TRUE(one.ok() && two.ok());
    auto pb = Predictor::Load(blend->model_bundle);
    auto p1 = Predictor::Load(one->model_bundle);
    auto p2 = Predictor::Load(two->model_bundle);
    ASSERT_TRUE(pb.ok()) << pb.status().ToString();
    ASSERT_TRUE(p1.ok() && p2.ok());
    EXPECT_EQ((*pb)->meta()["learner"], "ensemble");
    EXPECT_EQ((*pb)->meta()["params"]["members"].size(), 2u);
    auto rows = (*pb)->pipeline().TransformTable(t);
    ASSERT_TRUE(rows.ok());
    const size_t n = 300, k = (*pb)->OutputWidth();
    std::vector<float> mb(n * k), m1(n * k), m2(n * k);
    (*pb)->PredictRows(rows->data(), n, mb.data(), true);
    (*p1)->PredictRows(rows->data(), n, m1.data(), true);
    (*p2)->PredictRows(rows->data(), n, m2.data(), true);
    for (size_t i = 0; i < n * k; ++i) {
      ASSERT_NEAR(mb[i], 0.7 * m1[i] + 0.3 * m2[i], 1e-4 * (1 + std::fabs(mb[i]))) << i;
    }
    // And the compiled evaluator still agrees with XGBoost on it, bit for bit.
    std::vector<float> xgb;
    ASSERT_TRUE((*pb)->PredictRowsXgboost(rows->data(), n, &xgb, true).ok());
    EXPECT_EQ(std::vector<float>(mb.begin(), mb.end()), xgb);
  }
}

TEST(AutoMl, FindsAGoodModelInItsBudgetAndExplainsTheChoice) {
  Table t = MakeMixedTable(1500, 52, "binary");
  AutoMlSpec spec;
  spec.base.target = "label";
  spec.time_budget_s = 6;
  int trials = 0;
  const auto start = std::chrono::steady_clock::now();
  auto r = RunAutoMl(t, spec, [&](const TrialRecord&) { ++trials; }, nullptr, nullptr);
  const double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_LT(took, 6 * 1.5);
  EXPECT_EQ(r->task, "binary");
  EXPECT_TRUE(r->task_inferred);
  EXPECT_EQ(r->metric, "roc_auc");
  EXPECT_EQ(r->split["method"], "kfold");
  EXPECT_GE(trials, 5);
  EXPECT_EQ(static_cast<size_t>(trials), r->trials.size());
  ASSERT_FALSE(r->leaderboard.empty());
  EXPECT_EQ(r->leaderboard[0]["rank"], 1);
  bool both = false, rf = false;
  for (const Json& row : r->leaderboard) {
    rf = rf || row["learner"] == "random_forest";
    both = both || row["chosen"] == true;
    EXPECT_GE(r->leaderboard[0]["score"].get<double>(), row["score"].get<double>());
  }
  EXPECT_TRUE(rf);
  EXPECT_TRUE(both);
  EXPECT_GT(r->metrics["roc_auc"].get<double>(), 0.85);
  auto p = Predictor::Load(r->model.model_bundle);
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  EXPECT_EQ(r->model.train_rows, 1500);

  AutoMlSpec zero = spec;
  zero.time_budget_s = 0;
  auto z = RunAutoMl(t, zero, nullptr, nullptr, nullptr);
  ASSERT_FALSE(z.ok());
  EXPECT_EQ(z.status().details()[0].field, "time_budget_s");
  AutoMlSpec bad_metric = spec;
  bad_metric.metric = "rmse";
  auto m = RunAutoMl(t, bad_metric, nullptr, nullptr, nullptr);
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.status().details()[0].field, "metric");
}

}  // namespace
}  // namespace lathe::ml
