#include "ml/train.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>

#include "common/clock.h"
#include "ml/learner_registry.h"
#include "ml/predictor.h"
#include "ml_test_tables.h"

namespace lathe::ml {
namespace {

using testing::MakeMixedTable;

TrainSpec Spec(const std::string& target, const std::string& task, Json params = Json::object()) {
  TrainSpec s;
  s.target = target;
  s.task = task;
  s.params = std::move(params);
  s.nthread = 2;
  return s;
}

TEST(Train, BinaryLearnsAndReportsEverything) {
  Table t = MakeMixedTable(3000, 11, "binary");
  std::vector<double> fractions;
  auto out = Train(t, Spec("label", "binary", {{"n_estimators", 40}, {"max_depth", 4}, {"learning_rate", 0.2}}),
                   [&](double f, const std::string&) { fractions.push_back(f); }, nullptr);
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  EXPECT_EQ(out->train_rows + out->test_rows, 3000);
  EXPECT_EQ(out->test_rows, 600);
  EXPECT_GT(out->metrics["accuracy"].get<double>(), 0.8) << out->metrics.dump();
  EXPECT_GT(out->metrics["roc_auc"].get<double>(), 0.88) << out->metrics.dump();
  for (const char* k : {"precision", "recall", "f1", "log_loss"}) EXPECT_TRUE(out->metrics[k].is_number()) << k;
  EXPECT_EQ(out->signature["output"]["positive_class"], "yes");
  EXPECT_EQ(out->signature["inputs"].size(), 5u);
  EXPECT_EQ(out->pipeline["dropped"][0]["name"], "customer_id");
  EXPECT_EQ(out->params["n_estimators"], 40);
  EXPECT_EQ(out->params["reg_lambda"], 1.0);  // default filled in
  ASSERT_EQ(fractions.size(), 43u);            // encode + 40 rounds + explaining + done
  for (size_t i = 1; i < fractions.size(); ++i) EXPECT_GE(fractions[i], fractions[i - 1]);
  EXPECT_DOUBLE_EQ(fractions.back(), 1.0);
  EXPECT_GT(out->train_seconds, 0.0);
  // Global importance on the holdout rows: the label is made from age, income, active and city == rome;
  // signup plays no part (ml_test_tables.h).
  const Json& ex = out->explanations;
  ASSERT_FALSE(ex.contains("error")) << ex.dump();
  EXPECT_EQ(ex["source"], "holdout");
  EXPECT_EQ(ex["rows"], 600);
  EXPECT_EQ(ex["columns"].size(), 5u);
  double gain_sum = 0;
  for (const auto& [col, v] : ex["gain"].items()) gain_sum += v.get<double>();
  EXPECT_NEAR(gain_sum, 1.0, 1e-9);
  EXPECT_EQ(ex["permutation"]["metric"], "log_loss");
  const Json& inc = ex["permutation"]["increase"];
  for (const char* informative : {"age", "income", "active"}) {
    EXPECT_GT(inc[informative]["mean"].get<double>(), 0.05) << informative << " " << inc.dump();
    EXPECT_GT(inc[informative]["mean"].get<double>(), 5 * std::fabs(inc["signup"]["mean"].get<double>()))
        << informative << " " << inc.dump();
    EXPECT_GT(ex["gain"][informative].get<double>(), ex["gain"]["signup"].get<double>()) << ex["gain"].dump();
    EXPECT_GT(ex["shap"][informative].get<double>(), ex["shap"]["signup"].get<double>()) << ex["shap"].dump();
  }
  // Off when asked (the training benchmark compares against XGBoost training alone).
  TrainSpec quiet = Spec("label", "binary", {{"n_estimators", 5}});
  quiet.explain = false;
  auto q = Train(t, quiet, nullptr, nullptr);
  ASSERT_TRUE(q.ok());
  EXPECT_TRUE(q->explanations.is_null());
}

TEST(Train, SameInputsGiveIdenticalModelBytes) {
  Table t = MakeMixedTable(1500, 12, "binary");
  const Json params = {{"n_estimators", 15}, {"subsample", 0.8}, {"colsample_bytree", 0.7}};
  auto a = Train(t, Spec("label", "binary", params), nullptr, nullptr);
  auto b = Train(t, Spec("label", "binary", params), nullptr, nullptr);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(a->model_bundle, b->model_bundle);
  EXPECT_EQ(a->metrics, b->metrics);
  TrainSpec other = Spec("label", "binary", params);
  other.split.seed = 7;
  auto c = Train(t, other, nullptr, nullptr);
  ASSERT_TRUE(c.ok());
  EXPECT_NE(a->model_bundle, c->model_bundle);
}

TEST(Train, MulticlassAndRegression) {
  Table mc = MakeMixedTable(2000, 13, "multiclass");
  auto m = Train(mc, Spec("tier", "multiclass", {{"n_estimators", 30}}), nullptr, nullptr);
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  EXPECT_GT(m->metrics["accuracy"].get<double>(), 0.7) << m->metrics.dump();
  for (const char* k : {"macro_f1", "weighted_f1", "log_loss"}) EXPECT_TRUE(m->metrics[k].is_number()) << k;
  EXPECT_EQ(m->signature["output"]["classes"], Json({"bronze", "gold", "silver"}));

  Table rg = MakeMixedTable(2000, 14, "regression");
  auto r = Train(rg, Spec("spend", "regression", {{"n_estimators", 60}}), nullptr, nullptr);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_GT(r->metrics["r2"].get<double>(), 0.8) << r->metrics.dump();
  EXPECT_LT(r->metrics["mae"].get<double>(), r->metrics["rmse"].get<double>() + 1e-9);
}

TEST(Train, CancelBetweenRounds) {
  Table t = MakeMixedTable(500, 15, "binary");
  int rounds = 0;
  auto out = Train(t, Spec("label", "binary", {{"n_estimators", 50}}),
                   [&](double, const std::string& msg) { rounds += msg.rfind("round", 0) == 0 ? 1 : 0; },
                   [&]() { return rounds >= 3; });
  ASSERT_FALSE(out.ok());
  EXPECT_EQ(out.status().code(), StatusCode::kCancelled);
  EXPECT_EQ(rounds, 3);
}

void ExpectFieldError(const Table& t, const TrainSpec& spec, const std::string& field) {
  auto out = Train(t, spec, nullptr, nullptr);
  ASSERT_FALSE(out.ok()) << field;
  EXPECT_EQ(out.status().code(), StatusCode::kInvalidArgument) << out.status().ToString();
  ASSERT_FALSE(out.status().details().empty()) << out.status().ToString();
  EXPECT_EQ(out.status().details()[0].field, field) << out.status().ToString();
}

TEST(Train, ValidationNamesTheField) {
  Table t = MakeMixedTable(200, 16, "binary");
  ExpectFieldError(t, Spec("nope", "binary"), "target");
  ExpectFieldError(t, Spec("label", "ordinal"), "task");
  ExpectFieldError(t, Spec("label", "ranking"), "params.query_column");  // ranking needs its query column
  TrainSpec s = Spec("label", "binary");
  s.learner = "lightgbm";
  ExpectFieldError(t, s, "learner");
  ExpectFieldError(t, Spec("label", "binary", {{"max_depht", 3}}), "params.max_depht");
  ExpectFieldError(t, Spec("label", "binary", {{"max_depth", -1}}), "params.max_depth");
  ExpectFieldError(t, Spec("label", "binary", {{"max_depth", 2.5}}), "params.max_depth");
  ExpectFieldError(t, Spec("label", "binary", {{"learning_rate", "0.1"}}), "params.learning_rate");
  ExpectFieldError(t, Spec("label", "binary", {{"learning_rate", 0}}), "params.learning_rate");
  ExpectFieldError(t, Spec("label", "binary", {{"eta", 0.1}, {"learning_rate", 0.2}}), "params.learning_rate");
  ExpectFieldError(t, Spec("label", "binary", {{"subsample", 1.5}}), "params.subsample");
  ExpectFieldError(t, Spec("label", "binary", {{"grow_policy", "sideways"}}), "params.grow_policy");
  ExpectFieldError(t, Spec("label", "binary", Json::array()), "params");
  ExpectFieldError(t, Spec("city", "binary"), "target");         // 5 classes
  ExpectFieldError(t, Spec("label", "regression"), "target");    // not numeric
  Table rg = MakeMixedTable(200, 16, "regression");
  ExpectFieldError(rg, Spec("spend", "regression", {{"scale_pos_weight", 2}}), "params.scale_pos_weight");
  for (double f : {0.0, -0.1, 0.95, std::nan("")}) {
    TrainSpec ts = Spec("label", "binary");
    ts.split.test_fraction = f;
    ExpectFieldError(t, ts, "split.test_fraction");
  }
}

TEST(Train, MissingTargetRowsAreDroppedAndAllMissingIsAnError) {
  Table t = MakeMixedTable(400, 17, "binary");
  Column& label = t.columns.back();
  for (size_t r = 0; r < 40; ++r) label.valid[r] = 0;
  auto out = Train(t, Spec("label", "binary", {{"n_estimators", 5}}), nullptr, nullptr);
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  EXPECT_EQ(out->metrics["dropped_rows"], 40);
  EXPECT_EQ(out->train_rows + out->test_rows, 360);
  for (auto& v : label.valid) v = 0;
  ExpectFieldError(t, Spec("label", "binary"), "target");
}

TEST(Train, StratifiedSplitKeepsClassShares) {
  std::vector<float> y;
  for (int i = 0; i < 1000; ++i) y.push_back(i % 10 == 0 ? 1.0f : 0.0f);  // 10% positives
  y.push_back(2.0f);                                                       // a singleton class
  std::vector<size_t> train, test;
  SplitRows(y, true, 0.2, 42, &train, &test);
  EXPECT_EQ(train.size() + test.size(), y.size());
  int pos_test = 0;
  for (size_t i : test) pos_test += y[i] == 1.0f ? 1 : 0;
  EXPECT_EQ(pos_test, 20);
  EXPECT_EQ(test.size(), 200u);
  EXPECT_TRUE(std::find(train.begin(), train.end(), 1000u) != train.end());
  std::vector<size_t> train2, test2;
  SplitRows(y, true, 0.2, 42, &train2, &test2);
  EXPECT_EQ(test, test2);
  SplitRows(y, true, 0.2, 43, &train2, &test2);
  EXPECT_NE(test, test2);
}

TrainSpec CvSpec(const std::string& target, const std::string& task, const char* split_json,
                 Json params = {{"n_estimators", 20}, {"subsample", 0.8}}) {
  TrainSpec s = Spec(target, task, std::move(params));
  auto split = ParseSplitSpec(Json::parse(split_json));
  EXPECT_TRUE(split.ok()) << split.status().ToString();
  if (split.ok()) s.split = *split;
  return s;
}

TEST(Train, KFoldReportsMeanAndStdPerFoldAndFitsTheFinalModelOnAllRows) {
  Table t = MakeMixedTable(1500, 21, "binary");
  std::vector<std::string> messages;
  auto out = Train(t, CvSpec("label", "binary", R"({"method":"kfold","folds":4})"),
                   [&](double, const std::string& m) { messages.push_back(m); }, nullptr);
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  const Json& m = out->metrics;
  EXPECT_EQ(out->train_rows, 1500);
  EXPECT_EQ(out->test_rows, 1500);  // every row predicted once out of fold
  EXPECT_EQ(m["rows"], 1500);
  EXPECT_EQ(m["split"]["method"], "kfold");
  EXPECT_EQ(m["split"]["folds"], 4);
  int fold_total = 0;
  for (const Json& n : m["split"]["fold_rows"]) fold_total += n.get<int>();
  EXPECT_EQ(fold_total, 1500);
  for (const char* k : {"roc_auc", "accuracy", "log_loss", "f1"}) {
    const Json& cv = m["cv"][k];
    ASSERT_EQ(cv["folds"].size(), 4u) << k << m.dump();
    double mean = 0, lo = 1e9, hi = -1e9;
    for (const Json& v : cv["folds"]) {
      mean += v.get<double>() / 4;
      lo = std::min(lo, v.get<double>());
      hi = std::max(hi, v.get<double>());
    }
    EXPECT_NEAR(cv["mean"].get<double>(), mean, 1e-12) << k;
    EXPECT_GT(cv["std"].get<double>(), 0.0) << k;
    EXPECT_LE(cv["std"].get<double>(), (hi - lo) / 2 + 1e-12) << k;
  }
  EXPECT_GT(m["cv"]["roc_auc"]["mean"].get<double>(), 0.85) << m.dump();
  // Pooled out-of-fold AUC is close to the fold mean.
  EXPECT_NEAR(m["roc_auc"].get<double>(), m["cv"]["roc_auc"]["mean"].get<double>(), 0.03);
  EXPECT_TRUE(std::find(messages.begin(), messages.end(), "fold 4/4: round 20/20") != messages.end());
  EXPECT_TRUE(std::find(messages.begin(), messages.end(), "all rows: round 20/20") != messages.end());
  // The final model is the one fit on all rows: a holdout run with the same params is a different model.
  auto holdout = Train(t, CvSpec("label", "binary", "{}"), nullptr, nullptr);
  ASSERT_TRUE(holdout.ok());
  EXPECT_NE(holdout->model_bundle, out->model_bundle);
}

TEST(Train, EverySplitMethodIsReproducibleAndSeedMatters) {
  Table t = MakeMixedTable(900, 22, "binary");
  for (const char* split : {R"({"method":"kfold","folds":3})", R"({"method":"group_kfold","group_column":"city","folds":3})",
                            R"({"method":"time","time_column":"signup"})"}) {
    auto a = Train(t, CvSpec("label", "binary", split), nullptr, nullptr);
    auto b = Train(t, CvSpec("label", "binary", split), nullptr, nullptr);
    ASSERT_TRUE(a.ok() && b.ok()) << split << " " << (a.ok() ? b.status() : a.status()).ToString();
    EXPECT_EQ(a->model_bundle, b->model_bundle) << split;
    EXPECT_EQ(a->metrics, b->metrics) << split;
    EXPECT_EQ(a->curves, b->curves) << split;
    TrainSpec other = CvSpec("label", "binary", split);
    other.split.seed = 9;
    auto c = Train(t, other, nullptr, nullptr);
    ASSERT_TRUE(c.ok());
    EXPECT_NE(a->model_bundle, c->model_bundle) << split;
  }
}

TEST(Train, GroupKFoldKeepsEachGroupInOneFold) {
  Table t = MakeMixedTable(1200, 23, "regression");
  auto out = Train(t, CvSpec("spend", "regression", R"({"method":"group_kfold","group_column":"city","folds":5})"),
                   nullptr, nullptr);
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  // 5 cities + missing = 6 groups; each fold holds whole groups, so fold sizes are sums of city counts.
  EXPECT_EQ(out->metrics["split"]["groups"], 6);
  EXPECT_EQ(out->metrics["cv"]["rmse"]["folds"].size(), 5u);
  EXPECT_GT(out->metrics["cv"]["r2"]["mean"].get<double>(), 0.5) << out->metrics.dump();
  auto too_many = Train(t, CvSpec("spend", "regression", R"({"method":"group_kfold","group_column":"city","folds":7})"),
                        nullptr, nullptr);
  ASSERT_FALSE(too_many.ok());
  EXPECT_EQ(too_many.status().details()[0].field, "split.folds");
  ExpectFieldError(t, CvSpec("spend", "regression", R"({"method":"group_kfold","group_column":"nope"})"),
                   "split.group_column");
  ExpectFieldError(t, CvSpec("spend", "regression", R"({"method":"group_kfold","group_column":"spend"})"),
                   "split.group_column");
}

TEST(Train, TimeSplitTrainsOnTheEarlierRows) {
  Table t = MakeMixedTable(1000, 24, "binary");
  auto out = Train(t, CvSpec("label", "binary", R"({"method":"time","time_column":"signup","test_fraction":0.25})"),
                   nullptr, nullptr);
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  const Json& info = out->metrics["split"];
  EXPECT_EQ(info["method"], "time");
  EXPECT_LT(info["train_time_max"].get<std::string>(), info["test_time_min"].get<std::string>());
  EXPECT_EQ(out->test_rows, 250);
  EXPECT_EQ(info["missing_time_rows"], 0);
  // Check against the data: exactly the 250 latest signups are the evaluation rows.
  const Column& signup = t.columns[4];
  std::vector<int64_t> times = signup.i64;
  std::sort(times.begin(), times.end());
  EXPECT_EQ(info["test_time_min"], FormatRfc3339(times[750]));
  EXPECT_EQ(info["train_time_max"], FormatRfc3339(times[749]));
  ExpectFieldError(t, CvSpec("label", "binary", R"({"method":"time","time_column":"age"})"), "split.time_column");
  ExpectFieldError(t, CvSpec("label", "binary", R"({"method":"time","time_column":"nope"})"), "split.time_column");
}

TEST(Train, KFoldNeedsRowsForEveryFold) {
  Table t = MakeMixedTable(6, 25, "regression");
  ExpectFieldError(t, CvSpec("spend", "regression", R"({"method":"kfold","folds":7})"), "split.folds");
}

TEST(Train, LearningCurvesHaveOnePointPerRound) {
  Table t = MakeMixedTable(1500, 26, "binary");
  auto out = Train(t, CvSpec("label", "binary", "{}", {{"n_estimators", 30}}), nullptr, nullptr);
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  const Json& c = out->curves["learning"];
  EXPECT_EQ(c["metric"], "logloss");
  EXPECT_EQ(c["source"], "holdout");
  ASSERT_EQ(c["train"].size(), 30u);
  ASSERT_EQ(c["valid"].size(), 30u);
  EXPECT_LT(c["train"][29].get<double>(), c["train"][0].get<double>());
  EXPECT_LT(c["valid"][29].get<double>(), c["valid"][0].get<double>());
  EXPECT_LT(c["train"][29].get<double>(), c["valid"][29].get<double>());  // the model fits its training rows better
  // The last validation point is the held-out log-loss (XGBoost prints it rounded).
  EXPECT_NEAR(c["valid"][29].get<double>(), out->metrics["log_loss"].get<double>(), 1e-4);
  auto cv = Train(t, CvSpec("label", "binary", R"({"method":"kfold","folds":3})", {{"n_estimators", 10}}), nullptr,
                  nullptr);
  ASSERT_TRUE(cv.ok());
  EXPECT_EQ(cv->curves["learning"]["source"], "cv_mean");
  EXPECT_EQ(cv->curves["learning"]["valid"].size(), 10u);
  EXPECT_EQ(cv->curves["roc_curve"]["fpr"].back(), 1.0);  // charts from the out-of-fold predictions
  auto mc = Train(MakeMixedTable(600, 27, "multiclass"), CvSpec("tier", "multiclass", "{}", {{"n_estimators", 5}}),
                  nullptr, nullptr);
  ASSERT_TRUE(mc.ok());
  EXPECT_EQ(mc->curves["learning"]["metric"], "mlogloss");
  EXPECT_EQ(mc->curves["learning"]["valid"].size(), 5u);
}

TEST(Train, LearningCurvesOnLargeSplitsUseABoundedSample) {
  // 80% of 15,000 rows is more than the 10,000 rows a curve is measured on; the evaluation side is not.
  Table t;
  t.num_rows = 15000;
  Column x = testing::MakeColumn("x", ColumnType::kFloat64), z = testing::MakeColumn("z", ColumnType::kFloat64);
  Column label = testing::MakeColumn("label", ColumnType::kString);
  std::mt19937_64 rng(28);
  std::normal_distribution<double> g(0.0, 1.0);
  for (int64_t r = 0; r < t.num_rows; ++r) {
    const double a = g(rng), b = g(rng);
    testing::PushFloat(&x, a);
    testing::PushFloat(&z, b);
    testing::PushString(&label, a + 0.5 * b + g(rng) > 0 ? "yes" : "no");
  }
  for (Column* c : {&x, &z, &label}) t.columns.push_back(std::move(*c));
  auto out = Train(t, CvSpec("label", "binary", "{}", {{"n_estimators", 4}}), nullptr, nullptr);
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  EXPECT_EQ(out->train_rows, 12000);
  const Json& c = out->curves["learning"];
  ASSERT_EQ(c["train"].size(), 4u);
  ASSERT_EQ(c["valid"].size(), 4u);
  EXPECT_LT(c["train"][3].get<double>(), c["train"][0].get<double>());
  EXPECT_NEAR(c["valid"][3].get<double>(), out->metrics["log_loss"].get<double>(), 1e-4);
  // Two smooth features and 4 shallow rounds barely overfit: the sampled training loss is near the held-out one.
  EXPECT_NEAR(c["train"][3].get<double>(), c["valid"][3].get<double>(), 0.05 * c["valid"][3].get<double>());
}

TEST(Train, AFoldWhoseTrainingRowsHaveOneClassIsAnErrorNamingTheTarget) {
  // The label follows the group exactly: leaving out group "a" leaves only "no" to train on.
  Table t;
  t.num_rows = 40;
  Column g = testing::MakeColumn("g", ColumnType::kString), x = testing::MakeColumn("x", ColumnType::kFloat64),
         label = testing::MakeColumn("label", ColumnType::kString);
  for (int i = 0; i < 40; ++i) {
    testing::PushString(&g, i < 20 ? "a" : "b");
    testing::PushFloat(&x, i);
    testing::PushString(&label, i < 20 ? "yes" : "no");
  }
  for (Column* c : {&g, &x, &label}) t.columns.push_back(std::move(*c));
  auto out = Train(t, CvSpec("label", "binary", R"({"method":"group_kfold","group_column":"g","folds":2})"), nullptr,
                   nullptr);
  ASSERT_FALSE(out.ok());
  EXPECT_EQ(out.status().details()[0].field, "target") << out.status().ToString();
  EXPECT_NE(out.status().message().find("fold"), std::string::npos) << out.status().ToString();
}

TEST(Train, CancelDuringCrossValidationSaysWhere) {
  Table t = MakeMixedTable(600, 29, "binary");
  int rounds = 0;
  auto out = Train(t, CvSpec("label", "binary", R"({"method":"kfold","folds":3})", {{"n_estimators", 10}}),
                   [&](double, const std::string& msg) { rounds += msg.find("round") != std::string::npos ? 1 : 0; },
                   [&]() { return rounds >= 14; });
  ASSERT_FALSE(out.ok());
  EXPECT_EQ(out.status().code(), StatusCode::kCancelled);
  EXPECT_NE(out.status().message().find("fold 2/3"), std::string::npos) << out.status().ToString();
}

TEST(LearnerRegistry, SchemaDescribesXgboost) {
  Json s = LearnerSchemaJson();
  ASSERT_EQ(s["learners"].size(), 8u);
  EXPECT_EQ(s["learners"][3]["name"], "linear");
  EXPECT_EQ(s["learners"][4]["name"], "xgboost_linear");
  EXPECT_EQ(s["learners"][5]["name"], "kmeans");
  EXPECT_EQ(s["learners"][5]["tasks"], Json({"clustering"}));
  EXPECT_EQ(s["learners"][6]["name"], "pca");
  EXPECT_EQ(s["learners"][7]["name"], "isolation_forest");
  EXPECT_EQ(s["learners"][1]["name"], "xgboost_dart");
  EXPECT_EQ(s["learners"][2]["name"], "random_forest");
  const Json& x = s["learners"][0];
  EXPECT_EQ(x["name"], "xgboost");
  EXPECT_EQ(x["tasks"], Json({"binary", "multiclass", "regression", "ranking"}));
  bool found = false;
  for (const Json& p : x["params"]) {
    if (p["name"] == "learning_rate") {
      found = true;
      EXPECT_EQ(p["type"], "number");
      EXPECT_EQ(p["aliases"], Json({"eta"}));
    }
  }
  EXPECT_TRUE(found);
  auto v = ValidateParams(*FindLearner("xgboost"), {{"num_boost_round", 7}, {"eta", 0.05}}, Task::kBinary);
  ASSERT_TRUE(v.ok());
  EXPECT_EQ((*v)["n_estimators"], 7);
  EXPECT_EQ((*v)["learning_rate"], 0.05);
  EXPECT_EQ((*v)["max_depth"], 6);
}

TEST(Train, DartTrainsWithXgboostCurvesAndServes) {
  Table t = MakeMixedTable(1500, 31, "binary");
  TrainSpec dart = Spec("label", "binary", {{"n_estimators", 15}, {"rate_drop", 0.2}, {"learning_rate", 0.3}});
  ExpectFieldError(t, dart, "params.rate_drop");  // not a gbtree parameter
  dart.learner = "xgboost_dart";
  auto d = Train(t, dart, nullptr, nullptr);
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  EXPECT_GT(d->metrics["roc_auc"].get<double>(), 0.85) << d->metrics.dump();
  const Json& lc = d->curves["learning"];
  ASSERT_EQ(lc["train"].size(), 15u);
  ASSERT_EQ(lc["valid"].size(), 15u);
  EXPECT_LT(lc["train"].back().get<double>(), lc["train"].front().get<double>());
  ASSERT_FALSE(d->explanations.contains("error")) << d->explanations.dump();
  // The served model (through XGBoost: dropout weights) gives the evaluation's predictions.
  auto p = Predictor::Load(d->model_bundle);
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  auto rows = (*p)->pipeline().TransformTable(t);
  ASSERT_TRUE(rows.ok());
  std::vector<float> ours(static_cast<size_t>(t.num_rows)), xgb;
  (*p)->PredictRows(rows->data(), ours.size(), ours.data());
  ASSERT_TRUE((*p)->PredictRowsXgboost(rows->data(), ours.size(), &xgb).ok());
  EXPECT_EQ(ours, xgb);
  // SHAP values still add up to the margin.
  std::vector<float> margin(3);
  (*p)->PredictRows(rows->data(), 3, margin.data(), true);
  auto contrib = (*p)->ColumnContributions(rows->data(), 3);
  ASSERT_TRUE(contrib.ok()) << contrib.status().ToString();
  const size_t block = (*p)->ContributionColumns().size() + 1;
  for (size_t i = 0; i < 3; ++i) {
    double sum = 0;
    for (size_t c = 0; c < block; ++c) sum += (*contrib)[i * block + c];
    EXPECT_NEAR(sum, margin[i], 1e-4);
  }
  // Same seed, same bytes.
  auto again = Train(t, dart, nullptr, nullptr);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->model_bundle, d->model_bundle);
}

TEST(Train, RandomForestIsOneRoundOfParallelTrees) {
  Table t = MakeMixedTable(2000, 32, "multiclass");
  TrainSpec rf = Spec("tier", "multiclass", {{"n_estimators", 30}, {"max_depth", 6}});
  rf.learner = "random_forest";
  auto out = Train(t, rf, nullptr, nullptr);
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  EXPECT_EQ(out->params["subsample"], 0.8);  // the forest's own defaults
  EXPECT_EQ(out->curves["learning"]["train"].size(), 1u);
  EXPECT_GT(out->metrics["accuracy"].get<double>(), 0.6) << out->metrics.dump();
  ExpectFieldError(t, [&] {
    TrainSpec bad = rf;
    bad.params["learning_rate"] = 0.1;  // a forest does not shrink
    return bad;
  }(), "params.learning_rate");
}

TEST(Train, RegressionObjectives) {
  Table t = MakeMixedTable(2000, 33, "regression");
  Column& y = t.columns.back();
  for (size_t i = 0; i < y.f64.size(); ++i) y.f64[i] = std::fabs(y.f64[i]);
  for (const char* obj : {"squared_error", "absolute_error", "huber", "poisson", "tweedie"}) {
    auto out = Train(t, Spec("spend", "regression", {{"n_estimators", 30}, {"objective", obj}}), nullptr, nullptr);
    ASSERT_TRUE(out.ok()) << obj << " " << out.status().ToString();
    EXPECT_GT(out->metrics["r2"].get<double>(), 0.3) << obj << " " << out->metrics.dump();
    EXPECT_EQ(out->params["objective"], obj);
    // The learning curve is the RMSE of the predictions (exp of the margin for the log-link objectives):
    // its last validation point is the reported RMSE.
    EXPECT_NEAR(out->curves["learning"]["valid"].back().get<double>(), out->metrics["rmse"].get<double>(),
                1e-3 * out->metrics["rmse"].get<double>()) << obj;
  }
  y.f64[7] = -1;
  ExpectFieldError(t, Spec("spend", "regression", {{"objective", "poisson"}}), "params.objective");
  ExpectFieldError(t, Spec("spend", "regression", {{"objective", "logcosh"}}), "params.objective");
  ExpectFieldError(t, Spec("spend", "regression", {{"tweedie_variance_power", 2.5}}), "params.tweedie_variance_power");
  Table b = MakeMixedTable(300, 33, "binary");
  ExpectFieldError(b, Spec("label", "binary", {{"objective", "poisson"}}), "params.objective");
}

// A rare class is found more often when each class counts equally; a weight column steers the fit and is
// not itself a feature.
TEST(Train, ClassAndSampleWeights) {
  Table t = MakeMixedTable(4000, 34, "binary");
  // Make "yes" rare: relabel most of them "no".
  Column& label = t.columns.back();
  const int32_t yes = static_cast<int32_t>(std::find(label.dict.begin(), label.dict.end(), "yes") - label.dict.begin());
  int32_t no = static_cast<int32_t>(std::find(label.dict.begin(), label.dict.end(), "no") - label.dict.begin());
  std::mt19937_64 rng(5);
  for (auto& code : label.codes) {
    if (code == yes && rng() % 100 < 85) code = no;
  }
  auto plain = Train(t, Spec("label", "binary", {{"n_estimators", 30}, {"max_depth", 3}}), nullptr, nullptr);
  auto balanced = Train(t, Spec("label", "binary", {{"n_estimators", 30}, {"max_depth", 3}, {"class_weight", "balanced"}}),
                        nullptr, nullptr);
  ASSERT_TRUE(plain.ok() && balanced.ok());
  EXPECT_GT(balanced->metrics["recall"].get<double>(), plain->metrics["recall"].get<double>() + 0.1)
      << plain->metrics.dump() << "\n" << balanced->metrics.dump();

  // A weight column: zero weight on every row of one city makes the model ignore those rows' labels.
  Column w = testing::MakeColumn("w", ColumnType::kFloat64);
  for (int64_t r = 0; r < t.num_rows; ++r) testing::PushFloat(&w, r % 2 == 0 ? 1.0 : 3.0, r != 5);
  t.columns.insert(t.columns.end() - 1, w);
  auto weighted = Train(t, Spec("label", "binary", {{"n_estimators", 10}, {"weight_column", "w"}}), nullptr, nullptr);
  ASSERT_TRUE(weighted.ok()) << weighted.status().ToString();
  for (const auto& in : weighted->signature["inputs"]) EXPECT_NE(in["name"], "w");
  EXPECT_EQ(weighted->metrics["dropped_rows"], 1);  // its weight is missing
  auto unweighted = Train(t, Spec("label", "binary", {{"n_estimators", 10}}), nullptr, nullptr);
  ASSERT_TRUE(unweighted.ok());
  EXPECT_NE(weighted->model_bundle, unweighted->model_bundle);
  ExpectFieldError(t, Spec("label", "binary", {{"weight_column", "nope"}}), "params.weight_column");
  ExpectFieldError(t, Spec("label", "binary", {{"weight_column", "city"}}), "params.weight_column");
  ExpectFieldError(t, Spec("label", "binary", {{"weight_column", "label"}}), "params.weight_column");
  ExpectFieldError(t, Spec("label", "binary", {{"weight_column", 3}}), "params.weight_column");
  t.columns[t.columns.size() - 2].f64[9] = -2;
  ExpectFieldError(t, Spec("label", "binary", {{"weight_column", "w"}}), "params.weight_column");
}

}  // namespace
}  // namespace lathe::ml

namespace lathe::ml {
namespace {

// The linear learner: ridge regression recovers a linear target, logistic regression separates, and both
// serve, explain and blend through the same Predictor.
TEST(Train, LinearLearnerFitsLinearStructure) {
  std::mt19937_64 rng(7);
  std::normal_distribution<double> noise(0, 0.1);
  std::uniform_real_distribution<double> u(-2, 2);
  Table t;
  Column a = testing::MakeColumn("a", ColumnType::kFloat64), b = testing::MakeColumn("b", ColumnType::kFloat64),
         g = testing::MakeColumn("g", ColumnType::kString), y = testing::MakeColumn("y", ColumnType::kFloat64),
         cls = testing::MakeColumn("cls", ColumnType::kString);
  const char* groups[] = {"x", "y", "z"};
  const double effect[] = {0, 5, -3};
  for (int i = 0; i < 800; ++i) {
    const double av = u(rng), bv = u(rng);
    const int gi = i % 3;
    testing::PushFloat(&a, av, i % 17 != 0);  // some missing: imputed with the mean plus an indicator
    testing::PushFloat(&b, bv);
    testing::PushString(&g, groups[gi]);
    testing::PushFloat(&y, 3 * (i % 17 != 0 ? av : 0) - 2 * bv + effect[gi] + noise(rng));
    testing::PushString(&cls, 2 * bv - (i % 17 != 0 ? av : 0) + noise(rng) > 0 ? "up" : "down");
  }
  t.columns = {a, b, g, y, cls};
  t.num_rows = 800;
  TrainSpec spec;
  spec.target = "y";
  spec.task = "regression";
  spec.learner = "linear";
  spec.params = {{"alpha", 0.01}};
  spec.nthread = 1;
  // "cls" would leak into "y"'s features and vice versa: train each without the other.
  Table reg = t;
  reg.columns.pop_back();
  auto out = Train(reg, spec, nullptr, nullptr);
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  EXPECT_GT(out->metrics["r2"].get<double>(), 0.99) << out->metrics.dump();
  EXPECT_FALSE(out->curves.contains("learning"));
  ASSERT_FALSE(out->explanations.contains("error")) << out->explanations.dump();
  auto p = Predictor::Load(out->model_bundle);
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  auto pred = (*p)->PredictInstances({{{"a", 1.0}, {"b", 0.5}, {"g", "y"}}});
  ASSERT_TRUE(pred.ok()) << pred.status().ToString();
  EXPECT_NEAR((*pred)[0].get<double>(), 3 - 1 + 5, 0.1);
  // SHAP of a linear model adds up to the margin.
  auto rows = (*p)->pipeline().TransformTable(reg);
  ASSERT_TRUE(rows.ok());
  std::vector<float> m(5);
  (*p)->PredictRows(rows->data(), 5, m.data(), true);
  auto contrib = (*p)->ColumnContributions(rows->data(), 5);
  ASSERT_TRUE(contrib.ok());
  const size_t block = (*p)->ContributionColumns().size() + 1;
  for (size_t i = 0; i < 5; ++i) {
    double sum = 0;
    for (size_t c = 0; c < block; ++c) sum += (*contrib)[i * block + c];
    EXPECT_NEAR(sum, m[i], 1e-3);
  }
  EXPECT_FALSE((*p)->PredictRowsXgboost(rows->data(), 1, nullptr).ok());

  Table clf = t;
  clf.columns.erase(clf.columns.begin() + 3);
  TrainSpec cs = spec;
  cs.target = "cls";
  cs.task = "binary";
  cs.params = {{"alpha", 1.0}};
  cs.split.method = SplitMethod::kKFold;
  auto c = Train(clf, cs, nullptr, nullptr);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_GT(c->metrics["roc_auc"].get<double>(), 0.99) << c->metrics.dump();
  EXPECT_EQ(c->metrics["cv"]["roc_auc"]["folds"].size(), 5u);
  ExpectFieldError(clf, [&] {
    TrainSpec bad = cs;
    bad.params = {{"alpha", -1}};
    return bad;
  }(), "params.alpha");
  ExpectFieldError(clf, [&] {
    TrainSpec bad = cs;
    bad.params = {{"max_depth", 3}};
    return bad;
  }(), "params.max_depth");
}

TEST(Train, LinearMulticlassAndItsBlendWithTrees) {
  Table t = MakeMixedTable(1500, 61, "multiclass");
  TrainSpec spec;
  spec.target = "tier";
  spec.task = "multiclass";
  spec.learner = "linear";
  spec.nthread = 1;
  auto out = Train(t, spec, nullptr, nullptr);
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  EXPECT_GT(out->metrics["accuracy"].get<double>(), 0.5) << out->metrics.dump();
  auto p = Predictor::Load(out->model_bundle);
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  auto pred = (*p)->PredictInstances({{{"age", 40}, {"income", 50000.0}, {"city", "rome"}, {"active", true},
                                       {"signup", "2020-01-01"}}});
  ASSERT_TRUE(pred.ok()) << pred.status().ToString();
  double total = 0;
  for (const auto& [k, v] : (*pred)[0]["probabilities"].items()) total += v.get<double>();
  EXPECT_NEAR(total, 1.0, 1e-5);

  // A blend of trees and a linear model: margins are the weighted sums.
  spec.explain = false;
  const EnsembleMember trees{"xgboost", {{"n_estimators", 20}}, 0.6}, lin{"linear", {{"alpha", 2.0}}, 0.4};
  auto blend = FitEnsemble(t, spec, {trees, lin}, nullptr, nullptr);
  auto one = FitEnsemble(t, spec, {trees}, nullptr, nullptr);
  auto two = FitEnsemble(t, spec, {lin}, nullptr, nullptr);
  ASSERT_TRUE(blend.ok()) << blend.status().ToString();
  ASSERT_TRUE(one.ok() && two.ok());
  auto pb = Predictor::Load(blend->model_bundle), p1 = Predictor::Load(one->model_bundle),
       p2 = Predictor::Load(two->model_bundle);
  ASSERT_TRUE(pb.ok()) << pb.status().ToString();
  auto rows = (*pb)->pipeline().TransformTable(t);
  ASSERT_TRUE(rows.ok());
  const size_t n = 200, k = 3;
  std::vector<float> mb(n * k), m1(n * k), m2(n * k);
  (*pb)->PredictRows(rows->data(), n, mb.data(), true);
  (*p1)->PredictRows(rows->data(), n, m1.data(), true);
  (*p2)->PredictRows(rows->data(), n, m2.data(), true);
  for (size_t i = 0; i < n * k; ++i) ASSERT_NEAR(mb[i], 0.6 * m1[i] + 0.4 * m2[i], 1e-4 * (1 + std::fabs(mb[i])));
  std::vector<float> probs(n * k);
  (*pb)->PredictRows(rows->data(), n, probs.data());
  EXPECT_NEAR(probs[0] + probs[1] + probs[2], 1.0, 1e-5);
}

}  // namespace
}  // namespace lathe::ml
