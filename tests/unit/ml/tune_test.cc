#include "ml/tune.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <set>

#include "ml_test_tables.h"

namespace lathe::ml {
namespace {

using testing::MakeMixedTable;

TrainSpec Base(const std::string& target, const std::string& task) {
  TrainSpec s;
  s.target = target;
  s.task = task;
  s.split.method = SplitMethod::kKFold;
  s.split.folds = 3;
  s.nthread = 1;
  return s;
}

Study::Clock::time_point Later(double seconds) {
  return Study::Clock::now() + std::chrono::microseconds(static_cast<int64_t>(seconds * 1e6));
}

void ExpectSpaceError(const Json& space, const std::string& field, const std::string& learner = "xgboost") {
  auto s = ParseSearchSpace(space, *FindLearner(learner), Task::kBinary);
  ASSERT_FALSE(s.ok()) << space.dump();
  EXPECT_EQ(s.status().code(), StatusCode::kInvalidArgument);
  ASSERT_FALSE(s.status().details().empty());
  EXPECT_EQ(s.status().details()[0].field, field) << s.status().ToString();
}

TEST(SearchSpace, ParsesAndNamesEveryMistake) {
  auto s = ParseSearchSpace({{"max_depth", {{"type", "int"}, {"low", 2}, {"high", 8}}},
                             {"eta", {{"type", "float"}, {"low", 0.01}, {"high", 0.3}, {"log", true}}},
                             {"grow_policy", {"depthwise", "lossguide"}}},
                            *FindLearner("xgboost"), Task::kBinary);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  ASSERT_EQ(s->params.size(), 3u);
  EXPECT_EQ(s->ToJson()["learning_rate"]["log"], true);  // the alias is stored canonically
  ExpectSpaceError({{"max_depht", {1, 2}}}, "space.max_depht");
  ExpectSpaceError({{"max_depth", {{"type", "int"}, {"low", 5}, {"high", 2}}}}, "space.max_depth");
  ExpectSpaceError({{"max_depth", {{"type", "int"}, {"low", 1}, {"high", 99}}}}, "space.max_depth");  // > 32
  ExpectSpaceError({{"max_depth", {{"type", "float"}, {"low", 1}, {"high", 9}}}}, "space.max_depth");
  ExpectSpaceError({{"learning_rate", {{"type", "float"}, {"low", 0}, {"high", 0.3}, {"log", true}}}},
                   "space.learning_rate");
  ExpectSpaceError({{"learning_rate", {{"low", 0.1}, {"high", "x"}}}}, "space.learning_rate");
  ExpectSpaceError({{"learning_rate", {{"low", 0.1}, {"high", 0.2}, {"step", 1}}}}, "space.learning_rate");
  ExpectSpaceError({{"grow_policy", {{"low", 0}, {"high", 1}}}}, "space.grow_policy");
  ExpectSpaceError({{"grow_policy", {"depthwise", "sideways"}}}, "space.grow_policy");
  ExpectSpaceError({{"max_depth", Json::array()}}, "space.max_depth");
  ExpectSpaceError({{"weight_column", {"a"}}}, "space.weight_column");
  ExpectSpaceError({{"objective", {"huber"}}}, "space.objective");  // regression only
  ExpectSpaceError({{"learning_rate", {0.1}}}, "space.learning_rate", "random_forest");
  EXPECT_FALSE(ParseSearchSpace(Json::array(), *FindLearner("xgboost"), Task::kBinary).ok());
}

TEST(Study, GridRunsEveryPointOnceAndRandomStaysInBounds) {
  Table t = MakeMixedTable(600, 41, "binary");
  auto eval = TrialEvaluator::Prepare(t, Base("label", "binary"));
  ASSERT_TRUE(eval.ok()) << eval.status().ToString();
  int calls = 0;
  auto study = Study::Create(**eval, StudyOptions{.parallel = 2, .max_rounds = 30},
                             [&](const TrialRecord&) { ++calls; });
  ASSERT_TRUE(study.ok());
  auto space = ParseSearchSpace({{"max_depth", {2, 3, 4}}, {"learning_rate", {0.1, 0.3}}}, *FindLearner("xgboost"),
                                Task::kBinary);
  ASSERT_TRUE(space.ok());
  auto n = (*study)->Optimize("xgboost", *space, SamplerKind::kGrid, 100, Later(60), Json::object(), nullptr);
  ASSERT_TRUE(n.ok()) << n.status().ToString();
  EXPECT_EQ(*n, 6);
  EXPECT_EQ(calls, 6);
  std::set<std::string> points;
  for (const TrialRecord& tr : (*study)->trials()) {
    EXPECT_NE(tr.state, "failed") << tr.error;
    points.insert(std::to_string(tr.params["max_depth"].get<int>()) + "/" + tr.params["learning_rate"].dump());
  }
  EXPECT_EQ(points.size(), 6u);
  const int best = (*study)->best();
  ASSERT_GE(best, 0);
  for (const TrialRecord& tr : (*study)->trials()) {
    if (tr.state == "complete") {
      EXPECT_GE((*study)->trials()[static_cast<size_t>(best)].score, tr.score);
    }
  }

  // Random: ints are ints, log ranges inside their bounds.
  auto rs = ParseSearchSpace({{"max_depth", {{"type", "int"}, {"low", 2}, {"high", 5}}},
                              {"min_child_weight", {{"type", "float"}, {"low", 0.5}, {"high", 8}, {"log", true}}}},
                             *FindLearner("xgboost"), Task::kBinary);
  ASSERT_TRUE(rs.ok());
  ASSERT_TRUE((*study)->Optimize("xgboost", *rs, SamplerKind::kRandom, 8, Later(60), Json::object(), nullptr).ok());
  EXPECT_EQ((*study)->trials().size(), 14u);
  for (size_t i = 6; i < 14; ++i) {
    const Json& p = (*study)->trials()[i].params;
    EXPECT_TRUE(p["max_depth"].is_number_integer());
    EXPECT_GE(p["max_depth"].get<int>(), 2);
    EXPECT_LE(p["max_depth"].get<int>(), 5);
    EXPECT_GE(p["min_child_weight"].get<double>(), 0.5);
    EXPECT_LE(p["min_child_weight"].get<double>(), 8.0);
    EXPECT_EQ((*study)->trials()[i].number, static_cast<int>(i));
  }
  // Grid over a float range is an error naming it.
  auto fs = ParseSearchSpace({{"subsample", {{"low", 0.5}, {"high", 1}}}}, *FindLearner("xgboost"), Task::kBinary);
  ASSERT_TRUE(fs.ok());
  auto bad = (*study)->Optimize("xgboost", *fs, SamplerKind::kGrid, 5, Later(60), Json::object(), nullptr);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().details()[0].field, "space.subsample");
}

TEST(Study, EarlyStoppingPicksRoundsAndAshaPrunes) {
  Table t = MakeMixedTable(1500, 42, "binary");
  auto eval = TrialEvaluator::Prepare(t, Base("label", "binary"));
  ASSERT_TRUE(eval.ok());
  // A high learning rate overfits quickly: early stopping keeps far fewer than max_rounds.
  auto ws = (*eval)->NewWorkspace();
  TrialControl control{.max_rounds = 400, .early_stopping_rounds = 20};
  auto r = (*eval)->Run(*ws, "xgboost", {{"learning_rate", 0.5}, {"max_depth", 8}}, control);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_LT(r->rounds, 100);
  EXPECT_EQ(r->params["n_estimators"], r->rounds);
  EXPECT_LE(r->curve.size(), static_cast<size_t>(r->rounds + 20));
  EXPECT_DOUBLE_EQ(r->loss, *std::min_element(r->curve.begin(), r->curve.end()));
  EXPECT_EQ(r->margins.size(), 1500u);  // out-of-fold: every row
  // Its metrics are those of its margins.
  auto again = (*eval)->MetricsOfMargins(r->margins, "");
  ASSERT_TRUE(again.ok());
  EXPECT_EQ((*again)["roc_auc"], r->metrics["roc_auc"]);

  StudyOptions o{.seed = 3, .parallel = 1, .max_rounds = 300, .early_stopping_rounds = 1000,
                 .asha_min_rounds = 5, .asha_reduction = 3, .startup_trials = 5};
  auto study = Study::Create(**eval, o, nullptr);
  ASSERT_TRUE(study.ok());
  const SearchSpace space = DefaultSearchSpace(*FindLearner("xgboost"), Task::kBinary);
  ASSERT_TRUE((*study)->Optimize("xgboost", space, SamplerKind::kTpe, 15, Later(120), Json::object(), nullptr).ok());
  int pruned = 0, complete = 0;
  for (const TrialRecord& tr : (*study)->trials()) {
    pruned += tr.state == "pruned";
    complete += tr.state == "complete";
    if (tr.state == "pruned") {
      EXPECT_TRUE(tr.margins.empty());
    }
  }
  EXPECT_GT(pruned, 3);
  EXPECT_GE(complete, 1);
  EXPECT_EQ(pruned + complete, 15);

  // The same seed, one trial at a time: the same params in the same order.
  auto twin = Study::Create(**eval, o, nullptr);
  ASSERT_TRUE((*twin)->Optimize("xgboost", space, SamplerKind::kTpe, 15, Later(120), Json::object(), nullptr).ok());
  for (size_t i = 0; i < 15; ++i) EXPECT_EQ((*twin)->trials()[i].params, (*study)->trials()[i].params) << i;
}

TEST(Study, DeadlineEndsTheSearchAndCutsRunningTrials) {
  Table t = MakeMixedTable(3000, 43, "regression");
  auto eval = TrialEvaluator::Prepare(t, Base("spend", "regression"));
  ASSERT_TRUE(eval.ok());
  auto study = Study::Create(**eval, StudyOptions{.parallel = 1, .max_rounds = 10000, .early_stopping_rounds = 10000,
                                                  .asha = false},
                             nullptr);
  ASSERT_TRUE(study.ok());
  EXPECT_EQ((*study)->metric(), "rmse");
  EXPECT_FALSE((*study)->maximize());
  const auto start = Study::Clock::now();
  auto n = (*study)->Optimize("xgboost", DefaultSearchSpace(*FindLearner("xgboost"), Task::kRegression),
                              SamplerKind::kRandom, 1000, Later(1.0), Json::object(), nullptr);
  const double took = std::chrono::duration<double>(Study::Clock::now() - start).count();
  ASSERT_TRUE(n.ok());
  EXPECT_GE(*n, 1);
  EXPECT_LT(took, 3.0);
  const TrialRecord& last = (*study)->trials().back();
  EXPECT_TRUE(last.stopped);
  EXPECT_EQ(last.state, "complete");  // what it had boosted still counts
  EXPECT_TRUE(std::isfinite(last.score));
  // A cancel stops it too.
  auto c = (*study)->Optimize("random_forest", DefaultSearchSpace(*FindLearner("random_forest"), Task::kRegression),
                              SamplerKind::kRandom, 50, Later(60), Json::object(), [] { return true; });
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(*c, 0);
}

TEST(Study, MetricsAndBadParamsAreErrors) {
  Table t = MakeMixedTable(300, 44, "binary");
  auto eval = TrialEvaluator::Prepare(t, Base("label", "binary"));
  ASSERT_TRUE(eval.ok());
  EXPECT_FALSE(Study::Create(**eval, StudyOptions{.metric = "rmse"}, nullptr).ok());
  auto study = Study::Create(**eval, StudyOptions{.metric = "log_loss"}, nullptr);
  ASSERT_TRUE(study.ok());
  EXPECT_FALSE((*study)->maximize());
  // Fixed params outside the schema fail the whole search as a bad request.
  auto n = (*study)->Optimize("xgboost", SearchSpace{}, SamplerKind::kRandom, 3, Later(30), {{"max_depth", 99}},
                              nullptr);
  ASSERT_FALSE(n.ok());
  EXPECT_EQ(n.status().details()[0].field, "params.max_depth");
  EXPECT_TRUE(MetricMaximized("macro_f1", Task::kMulticlass).value());
  EXPECT_FALSE(MetricMaximized("macro_f1", Task::kBinary).ok());
  EXPECT_FALSE(MetricMaximized("mape", Task::kRegression).value());
}

}  // namespace
}  // namespace lathe::ml
