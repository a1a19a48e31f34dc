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
  EXPECT_NEAR((*m)["log_loss"].get<double>(),
              -(std::log(0.7) + std::log(0.4) + std::log(0.3) + std::log(0.8)) / 4, 1e-6);
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

// ---- Reference values from scikit-learn 1.2.1 / numpy (Debian python3-sklearn), computed by
// tests/unit/ml/metrics_reference.py on the same inputs rounded to float32. Change both together.

struct Expected {
  const char* key;
  double value;
};

void ExpectMetrics(const Json& m, std::initializer_list<Expected> expected, double tol = 1e-9) {
  for (const auto& e : expected) {
    ASSERT_TRUE(m.contains(e.key) && m[e.key].is_number()) << e.key << " in " << m.dump();
    EXPECT_NEAR(m[e.key].get<double>(), e.value, tol) << e.key;
  }
}

const std::vector<float> kBinaryY = {1, 0, 1, 1, 0, 0, 1, 0, 1, 0, 0, 1, 1, 0, 0, 1, 0, 1, 0, 0};
const std::vector<float> kBinaryP = {0.92f, 0.35f, 0.8f,  0.35f, 0.61f, 0.08f, 0.55f, 0.35f, 0.8f,  0.27f,
                                     0.44f, 0.71f, 0.49f, 0.15f, 0.8f,  0.97f, 0.03f, 0.66f, 0.52f, 0.21f};

TEST(MetricsReference, BinaryMatchesScikitLearn) {
  Json plots;
  auto m = BinaryMetrics(kBinaryY, kBinaryP, &plots);
  ASSERT_TRUE(m.ok());
  ExpectMetrics(*m, {{"accuracy", 0.75},
                     {"balanced_accuracy", 0.7525252525252526},
                     {"precision", 0.7},
                     {"recall", 0.7777777777777778},
                     {"f1", 0.7368421052631577},
                     {"roc_auc", 0.8686868686868687},
                     {"pr_auc", 0.821725188391855}});
  ExpectMetrics(*m, {{"log_loss", 0.4616167698925702}}, 1e-7);  // float32 probabilities, clipped differently
  EXPECT_EQ((*m)["confusion_matrix"], Json::parse("[[8, 3], [2, 7]]"));

  // roc_curve(drop_intermediate=False): one point per distinct threshold after (0, 0).
  const std::vector<double> fpr = {0.0,
                                   0.0,
                                   0.0,
                                   0.09090909090909091,
                                   0.09090909090909091,
                                   0.09090909090909091,
                                   0.18181818181818182,
                                   0.18181818181818182,
                                   0.2727272727272727,
                                   0.2727272727272727,
                                   0.36363636363636365,
                                   0.5454545454545454,
                                   0.6363636363636364,
                                   0.7272727272727273,
                                   0.8181818181818182,
                                   0.9090909090909091,
                                   1.0};
  const std::vector<double> tpr = {0.0,
                                   0.1111111111111111,
                                   0.2222222222222222,
                                   0.4444444444444444,
                                   0.5555555555555556,
                                   0.6666666666666666,
                                   0.6666666666666666,
                                   0.7777777777777778,
                                   0.7777777777777778,
                                   0.8888888888888888,
                                   0.8888888888888888,
                                   1.0,
                                   1.0,
                                   1.0,
                                   1.0,
                                   1.0,
                                   1.0};
  const Json& roc = plots["roc_curve"];
  ASSERT_EQ(roc["fpr"].size(), fpr.size());
  for (size_t i = 0; i < fpr.size(); ++i) {
    EXPECT_NEAR(roc["fpr"][i].get<double>(), fpr[i], 1e-12) << i;
    EXPECT_NEAR(roc["tpr"][i].get<double>(), tpr[i], 1e-12) << i;
  }
  EXPECT_TRUE(roc["threshold"][0].is_null());
  EXPECT_NEAR(roc["threshold"][1].get<double>(), 0.97, 1e-6);

  // calibration_curve(n_bins=10, strategy="uniform"): non-empty bins only.
  const std::vector<double> frac = {0.0, 0.0, 0.0, 0.3333333333333333, 0.5,
                                    0.5, 0.5, 1.0, 0.6666666666666666, 1.0};
  const std::vector<double> mean = {
      0.0549999987706542, 0.15000000596046448, 0.24000000208616257, 0.3499999940395355, 0.4650000035762787,
      0.5349999964237213, 0.6350000202655792,  0.7099999785423279,  0.800000011920929,  0.945000022649765};
  const Json& cal = plots["calibration"];
  ASSERT_EQ(cal["fraction_positive"].size(), frac.size());
  int64_t counted = 0;
  for (size_t i = 0; i < frac.size(); ++i) {
    EXPECT_NEAR(cal["fraction_positive"][i].get<double>(), frac[i], 1e-12) << i;
    EXPECT_NEAR(cal["mean_predicted"][i].get<double>(), mean[i], 1e-9) << i;
    counted += cal["count"][i].get<int64_t>();
  }
  EXPECT_EQ(counted, 20);

  // Cumulative gains by decile (rows by descending score, ties in input order), computed with numpy.
  const std::vector<double> gains = {0.2222222222222222,
                                     0.4444444444444444,
                                     0.5555555555555556,
                                     0.6666666666666666,
                                     0.7777777777777778,
                                     0.8888888888888888,
                                     1.0,
                                     1.0,
                                     1.0,
                                     1.0};
  const Json& lift = plots["lift"];
  ASSERT_EQ(lift["gain"].size(), 10u);
  for (size_t i = 0; i < gains.size(); ++i) {
    EXPECT_NEAR(lift["gain"][i].get<double>(), gains[i], 1e-12) << i;
    EXPECT_NEAR(lift["fraction"][i].get<double>(), 0.1 * static_cast<double>(i + 1), 1e-12) << i;
    EXPECT_NEAR(lift["lift"][i].get<double>(), gains[i] / (0.1 * static_cast<double>(i + 1)), 1e-12) << i;
  }

  // The PR curve ends where average precision says: its area by the step rule is pr_auc.
  const Json& pr = plots["pr_curve"];
  double ap = 0;
  for (size_t i = 1; i < pr["recall"].size(); ++i) {
    ap += (pr["recall"][i].get<double>() - pr["recall"][i - 1].get<double>()) *
          pr["precision"][i].get<double>();
  }
  EXPECT_NEAR(ap, 0.821725188391855, 1e-12);
  EXPECT_EQ(pr["recall"].back(), 1.0);
}

TEST(MetricsReference, MulticlassMatchesScikitLearn) {
  const std::vector<float> y = {0, 1, 2, 2, 1, 0, 0, 2, 1, 1, 2, 2};
  const std::vector<float> p = {0.7f, 0.2f, 0.1f, 0.3f,  0.4f,  0.3f,  0.2f, 0.5f,  0.3f,
                                0.1f, 0.1f, 0.8f, 0.25f, 0.6f,  0.15f, 0.4f, 0.35f, 0.25f,
                                0.2f, 0.3f, 0.5f, 0.05f, 0.15f, 0.8f,  0.6f, 0.3f,  0.1f,
                                0.1f, 0.8f, 0.1f, 0.3f,  0.3f,  0.4f,  0.9f, 0.05f, 0.05f};
  auto m = MulticlassMetrics(y, p, 3);
  ASSERT_TRUE(m.ok());
  ExpectMetrics(*m, {{"accuracy", 0.6666666666666666},
                     {"balanced_accuracy", 0.6722222222222222},
                     {"macro_precision", 0.6666666666666666},
                     {"macro_recall", 0.6722222222222222},
                     {"macro_f1", 0.6626984126984127},
                     {"micro_precision", 0.6666666666666666},
                     {"micro_recall", 0.6666666666666666},
                     {"micro_f1", 0.6666666666666666},
                     {"weighted_precision", 0.6875},
                     {"weighted_recall", 0.6666666666666666},
                     {"weighted_f1", 0.6706349206349206},
                     {"roc_auc", 0.7629188712522046},
                     {"pr_auc", 0.674537037037037}});
  ExpectMetrics(*m, {{"log_loss", 0.9415765971341453}}, 1e-6);  // scikit-learn renormalizes float32 rows
  EXPECT_EQ((*m)["confusion_matrix"], Json::parse("[[2, 0, 1], [1, 3, 0], [1, 1, 3]]"));
}

TEST(MetricsReference, RegressionMatchesScikitLearnAndSkipsZeroTruthsForMape) {
  const std::vector<float> y = {3.0f, -1.5f, 0.0f, 7.25f, 2.0f, 4.5f, -0.5f, 10.0f, 1.0f, 6.0f};
  const std::vector<float> p = {2.5f, -1.0f, 0.5f, 8.0f, 2.0f, 3.0f, 0.25f, 9.0f, 1.5f, 6.75f};
  Json plots;
  auto m = RegressionMetrics(y, p, &plots);
  ASSERT_TRUE(m.ok());
  ExpectMetrics(*m, {{"rmse", 0.770551750371122},
                     {"mae", 0.675},
                     {"mape", 0.351309067688378},  // sklearn on the 9 rows whose truth is not 0
                     {"r2", 0.9523116309422218}});
  EXPECT_EQ((*m)["mape_rows"], 9);
  const Json& r = plots["residuals"];
  ExpectMetrics(r["quantiles"], {{"min", -0.75},
                                 {"p05", -0.75},
                                 {"p25", -0.6875},
                                 {"p50", -0.5},
                                 {"p75", 0.375},
                                 {"p95", 1.2749999999999995},
                                 {"max", 1.5}});
  EXPECT_NEAR(r["mean"].get<double>(), -0.075, 1e-12);
  EXPECT_EQ(r["histogram"]["counts"],
            Json::parse("[3, 0, 3, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1]"));
  EXPECT_EQ(r["histogram"]["edges"].size(), 21u);
  EXPECT_DOUBLE_EQ(r["histogram"]["edges"][1].get<double>(), -0.6375);

  auto zeros = RegressionMetrics({0, 0}, {1, 2});
  ASSERT_TRUE(zeros.ok());
  EXPECT_TRUE((*zeros)["mape"].is_null());
  EXPECT_EQ((*zeros)["mape_rows"], 0);
}

TEST(MetricsReference, CurvesAreDownsampledToTheCap) {
  std::vector<float> y, p;
  for (int i = 0; i < 5000; ++i) {
    y.push_back(i % 3 == 0 ? 1.0f : 0.0f);
    p.push_back(static_cast<float>((i * 7919) % 5000) / 5000.0f);
  }
  Json plots;
  auto m = BinaryMetrics(y, p, &plots);
  ASSERT_TRUE(m.ok());
  for (const char* curve : {"roc_curve", "pr_curve"}) {
    const Json& c = plots[curve];
    for (auto it = c.begin(); it != c.end(); ++it)
      EXPECT_EQ(it->size(), kMaxCurvePoints) << curve << " " << it.key();
  }
  const Json& roc = plots["roc_curve"];
  EXPECT_EQ(roc["fpr"].front(), 0.0);
  EXPECT_EQ(roc["fpr"].back(), 1.0);
  EXPECT_EQ(roc["tpr"].back(), 1.0);
  for (size_t i = 1; i < roc["fpr"].size(); ++i) {
    EXPECT_GE(roc["fpr"][i].get<double>(), roc["fpr"][i - 1].get<double>());
    EXPECT_GE(roc["tpr"][i].get<double>(), roc["tpr"][i - 1].get<double>());
  }
}

// Reference values by hand (exponential gain 2^rel - 1, discount 1/log2(1 + position)), checked with:
//   ndcg = dcg(order) / dcg(sorted desc) in Python for query A ordered [0, 2, 1, 3] and query C [0, 1].
TEST(RankingMetrics, NdcgAndMapPerQueryWithTiesOrderedWorstFirst) {
  // Query 7: relevance 3, 0, 2, 1 scored so the order is [0, 2, 1, 3]; query 2: nothing relevant; query 5: a
  // tie between a relevant and an irrelevant row (the irrelevant one counts as first). Rows interleaved.
  const std::vector<float> y = {3, 0, 1, 0, 2, 0, 1};
  const std::vector<float> s = {0.1f, 0.9f, 0.5f, 0.7f, 0.5f, 0.5f, 0.3f};
  const std::vector<int64_t> q = {7, 7, 5, 2, 7, 5, 7};
  Json plots;
  auto m = RankingMetrics(y, s, q, &plots);
  ASSERT_TRUE(m.ok()) << m.status().message();
  EXPECT_NEAR((*m)["ndcg"].get<double>(), 0.6033200078406361, 1e-12);
  EXPECT_NEAR((*m)["ndcg_at_10"].get<double>(), 0.6033200078406361, 1e-12);
  EXPECT_NEAR((*m)["ndcg_at_5"].get<double>(), 0.6033200078406361, 1e-12);
  EXPECT_NEAR((*m)["map"].get<double>(), 0.5694444444444444, 1e-12);
  EXPECT_EQ((*m)["queries"], 3);
  EXPECT_EQ((*m)["queries_without_relevant"], 1);
  EXPECT_EQ((*m)["rows"], 7);
  EXPECT_EQ(plots["ndcg_at_k"]["ndcg"][0].get<double>(), 0.0);  // both queries put an irrelevant row first
  // A perfect order scores 1; nothing relevant anywhere leaves the metrics undefined (null).
  auto perfect = RankingMetrics({2, 1, 0}, {3, 2, 1}, {1, 1, 1});
  ASSERT_TRUE(perfect.ok());
  EXPECT_DOUBLE_EQ((*perfect)["ndcg"].get<double>(), 1.0);
  EXPECT_DOUBLE_EQ((*perfect)["map"].get<double>(), 1.0);
  auto none = RankingMetrics({0, 0}, {1, 2}, {1, 1});
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE((*none)["ndcg_at_10"].is_null());
  EXPECT_FALSE(RankingMetrics({1}, {1, 2}, {1, 1}).ok());
  EXPECT_FALSE(RankingMetrics({}, {}, {}).ok());
}

}  // namespace
}  // namespace lathe::ml
