#include "ml/explain.h"

#include <gtest/gtest.h>

#include <cmath>

#include "ml/train.h"
#include "ml_test_tables.h"

namespace lathe::ml {
namespace {

struct Trained {
  std::shared_ptr<Predictor> p;
  std::vector<float> rows, y;
  size_t n = 0;
};

Trained Make(const std::string& task) {
  Table t = testing::MakeMixedTable(1500, 31, task);
  TrainSpec spec;
  spec.target = t.columns.back().name;
  spec.task = task;
  spec.params = {{"n_estimators", 40}, {"max_depth", 4}};
  spec.nthread = 2;
  spec.explain = false;
  auto out = Train(t, spec, nullptr, nullptr);
  EXPECT_TRUE(out.ok()) << out.status().ToString();
  Trained r;
  r.p = std::move(Predictor::Load(out->model_bundle)).value();
  Table eval = testing::MakeMixedTable(400, 32, task);
  r.rows = std::move(r.p->EncodeTable(eval)).value();
  std::vector<int64_t> kept;
  r.y = std::move(r.p->pipeline().EncodeTarget(eval, &kept)).value();
  r.n = 400;
  EXPECT_EQ(kept.size(), 400u);
  return r;
}

TEST(Explain, RegressionImportanceUsesRmseAndFindsTheDrivers) {
  Trained m = Make("regression");
  auto j = GlobalImportance(*m.p, m.rows.data(), m.n, m.y.data());
  ASSERT_TRUE(j.ok()) << j.status().ToString();
  EXPECT_EQ((*j)["permutation"]["metric"], "rmse");
  const Json& inc = (*j)["permutation"]["increase"];
  EXPECT_GT(inc["age"]["mean"].get<double>(), 10 * std::fabs(inc["signup"]["mean"].get<double>())) << inc.dump();
  // Summary plot points: one value and one SHAP value per sampled row and column, values as a person reads them.
  const Json& summary = (*j)["shap_summary"];
  EXPECT_EQ(summary["age"]["values"].size(), 200u);  // 400 rows, every second one
  EXPECT_EQ(summary["age"]["shap"].size(), 200u);
  EXPECT_TRUE(summary["city"]["values"][0].is_string() || summary["city"]["values"][0].is_null());
  EXPECT_TRUE(summary["active"]["values"][0].is_boolean() || summary["active"]["values"][0].is_null());
  // Same seed, same answer.
  auto again = GlobalImportance(*m.p, m.rows.data(), m.n, m.y.data());
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(*j, *again);
}

TEST(Explain, PartialDependenceForEachKindOfColumn) {
  Trained m = Make("multiclass");
  auto age = PartialDependence(*m.p, m.rows.data(), m.n, "age", 8);
  ASSERT_TRUE(age.ok()) << age.status().ToString();
  EXPECT_EQ((*age)["kind"], "numeric");
  EXPECT_EQ((*age)["classes"], Json({"bronze", "gold", "silver"}));
  const size_t points = (*age)["values"].size();
  ASSERT_GE(points, 5u);
  ASSERT_LE(points, 8u);
  for (size_t g = 0; g < points; ++g) {  // per grid point the class means are a distribution
    double sum = 0;
    for (size_t c = 0; c < 3; ++c) sum += (*age)["mean"][c][g].get<double>();
    EXPECT_NEAR(sum, 1.0, 1e-4);
  }
  // Older customers score higher, so "gold" rises with age.
  EXPECT_GT((*age)["mean"][1][points - 1].get<double>(), (*age)["mean"][1][0].get<double>());

  auto active = PartialDependence(*m.p, m.rows.data(), m.n, "active");
  ASSERT_TRUE(active.ok());
  EXPECT_EQ((*active)["values"], Json({false, true}));
  auto city = PartialDependence(*m.p, m.rows.data(), m.n, "city", 3);
  ASSERT_TRUE(city.ok());
  EXPECT_EQ((*city)["kind"], "categorical");
  EXPECT_EQ((*city)["values"].size(), 3u);  // the three most frequent of five
  auto signup = PartialDependence(*m.p, m.rows.data(), m.n, "signup", 4);
  ASSERT_TRUE(signup.ok());
  EXPECT_EQ((*signup)["kind"], "datetime");
  EXPECT_EQ((*signup)["values"][0].get<std::string>().size(), 20u);  // 2019-04-16T10:00:00Z

  auto bad = PartialDependence(*m.p, m.rows.data(), m.n, "customer_id");  // dropped: not an input
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(bad.status().message().find("customer_id"), std::string::npos);
  EXPECT_FALSE(PartialDependence(*m.p, m.rows.data(), 0, "age").ok());
}

}  // namespace
}  // namespace lathe::ml
