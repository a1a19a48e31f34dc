#include "ml/metrics.h"

#include <gtest/gtest.h>

#include <cmath>

namespace lathe::ml {
namespace {

TEST(Metrics, BinaryHandComputed) {
  const std::vector<float> y = {1, 0, 1, 1, 0, 0};
  const std::vector<float> p = {0.9f, 0.4f, 0.6f, 0.3f, 0.7f, 0.1f};
  auto m = BinaryMetrics(y, p);
  ASSERT_TRUE(m.ok());
  EXPECT_NEAR((*m)["accuracy"].get<double>(), 4.0 / 6, 1e-12);
  EXPECT_NEAR((*m)["precision"].get<double>(), 2.0 / 3, 1e-12);
  EXPECT_NEAR((*m)["recall"].get<double>(), 2.0 / 3, 1e-12);
  EXPECT_NEAR((*m)["f1"].get<double>(), 2.0 / 3, 1e-12);
  EXPECT_NEAR((*m)["roc_auc"].get<double>(), 6.0 / 9, 1e-12);
  const double ll = -(2 * std::log(0.9) + 2 * std::log(0.6) + 2 * std::log(0.3)) / 6;
  EXPECT_NEAR((*m)["log_loss"].get<double>(), ll, 1e-6);
  EXPECT_EQ((*m)["rows"], 6);
}

TEST(Metrics, RocAucTiesCountHalf) {
  EXPECT_DOUBLE_EQ(RocAuc({1, 0, 1, 0}, {0.5f, 0.5f, 0.8f, 0.2f}), 3.5 / 4);
  EXPECT_DOUBLE_EQ(RocAuc({1, 0, 1, 0}, {0.3f, 0.3f, 0.3f, 0.3f}), 0.5);
  EXPECT_DOUBLE_EQ(RocAuc({1, 1, 0, 0}, {0.9f, 0.8f, 0.2f, 0.1f}), 1.0);
  EXPECT_DOUBLE_EQ(RocAuc({0, 0, 1, 1}, {0.9f, 0.8f, 0.2f, 0.1f}), 0.0);
  EXPECT_TRUE(std::isnan(RocAuc({1, 1}, {0.2f, 0.3f})));
  auto m = BinaryMetrics({1, 1}, {0.2f, 0.9f});
  ASSERT_TRUE(m.ok());
  EXPECT_TRUE((*m)["roc_auc"].is_null());
}

TEST(Metrics, LogLossClipsCertainMistakes) {
  auto m = BinaryMetrics({1}, {0.0f});
  ASSERT_TRUE(m.ok());
  EXPECT_NEAR((*m)["log_loss"].get<double>(), -std::log(kLogLossEpsilon), 1e-6);
  EXPECT_TRUE(std::isfinite((*m)["log_loss"].get<double>()));
}

TEST(Metrics, MulticlassHandComputed) {
  const std::vector<float> y = {0, 1, 2, 2};
  const std::vector<float> p = {0.7f, 0.2f, 0.1f, 0.3f, 0.4f, 0.3f, 0.2f, 0.5f, 0.3f, 0.1f, 0.1f, 0.8f};
  auto m = MulticlassMetrics(y, p, 3);
  ASSERT_TRUE(m.ok());
  EXPECT_NEAR((*m)["accuracy"].get<double>(), 0.75, 1e-12);
  EXPECT_NEAR((*m)["macro_f1"].get<double>(), (1 + 2.0 / 3 + 2.0 / 3) / 3, 1e-12);
  EXPECT_NEAR((*m)["weighted_f1"].get<double>(), (1 + 2.0 / 3 + 2 * 2.0 / 3) / 4, 1e-12);
  EXPECT_NEAR((*m)["log_loss"].get<double>(), -(std::log(0.7) + std::log(0.4) + std::log(0.3) + std::log(0.8)) / 4,
              1e-6);
}

TEST(Metrics, RegressionHandComputed) {
  auto m = RegressionMetrics({1, 2, 3, 4}, {1.5f, 2, 2, 5});
  ASSERT_TRUE(m.ok());
  EXPECT_NEAR((*m)["rmse"].get<double>(), 0.75, 1e-12);
  EXPECT_NEAR((*m)["mae"].get<double>(), 0.625, 1e-12);
  EXPECT_NEAR((*m)["r2"].get<double>(), 0.55, 1e-12);
  auto c = RegressionMetrics({2, 2}, {1, 3});
  ASSERT_TRUE(c.ok());
  EXPECT_TRUE((*c)["r2"].is_null());
}

TEST(Metrics, RejectsBadShapes) {
  EXPECT_FALSE(BinaryMetrics({}, {}).ok());
  EXPECT_FALSE(BinaryMetrics({1, 0}, {0.5f}).ok());
  EXPECT_FALSE(MulticlassMetrics({0, 1}, {0.5f, 0.5f, 0.5f}, 2).ok());
  EXPECT_FALSE(MulticlassMetrics({0, 5}, {0.5f, 0.5f, 0.5f, 0.5f}, 2).ok());
  EXPECT_FALSE(MulticlassMetrics({0}, {1.0f}, 1).ok());
  EXPECT_FALSE(RegressionMetrics({1}, {}).ok());
}

}  // namespace
}  // namespace lathe::ml
