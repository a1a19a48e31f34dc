#include "ml/predictor.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <cstring>
#include <random>
#include <thread>

#include "ml/model_bundle.h"
#include "ml/train.h"
#include "ml/tree_evaluator.h"
#include "ml_test_tables.h"

namespace lathe::ml {
namespace {

using testing::MakeMixedTable;

// One trained model per (task, learner, extra params), shared by the tests in this file.
const TrainOutput& Trained(const std::string& task, const std::string& learner = "xgboost",
                           const Json& extra = Json::object()) {
  static std::map<std::string, TrainOutput> cache;
  const std::string key = task + "/" + learner + "/" + extra.dump();
  auto it = cache.find(key);
  if (it != cache.end()) return it->second;
  Table t = MakeMixedTable(2000, 21, task);
  if (task == "regression") {  // a positive target, so the log-link objectives apply too
    Column& y = t.columns.back();
    for (double& v : y.f64) v = std::fabs(v) + 0.5;
  }
  TrainSpec spec;
  spec.target = t.columns.back().name;
  spec.task = task;
  spec.learner = learner;
  spec.params = {{"n_estimators", 50}, {"max_depth", 6}};
  if (learner != "random_forest") spec.params["learning_rate"] = 0.1;
  if (learner == "xgboost_linear") spec.params.erase("max_depth");  // no trees
  spec.params.update(extra);
  spec.nthread = 2;
  auto out = Train(t, spec, nullptr, nullptr);
  EXPECT_TRUE(out.ok()) << out.status().ToString();
  return cache.emplace(key, std::move(*out)).first->second;
}

std::shared_ptr<Predictor> Load(const std::string& task, const std::string& learner = "xgboost",
                                const Json& extra = Json::object()) {
  auto p = Predictor::Load(Trained(task, learner, extra).model_bundle);
  EXPECT_TRUE(p.ok()) << p.status().ToString();
  return *p;
}

// Random rows over the model's features: typical ranges, ~15% missing, categorical codes including ones the
// model has never seen (large codes), negative values and extreme magnitudes.
std::vector<float> RandomRows(const Predictor& p, size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<float> u(0.0f, 1.0f);
  const auto& types = p.pipeline().feature_types();
  const size_t w = p.NumFeatures();
  std::vector<float> rows(n * w);
  for (size_t i = 0; i < n; ++i) {
    for (size_t f = 0; f < w; ++f) {
      float v;
      const float r = u(rng);
      if (r < 0.15f) {
        v = std::nanf("");
      } else if (types[f] == "c") {
        v = r < 0.2f ? static_cast<float>(static_cast<int>(u(rng) * 3000)) : static_cast<float>(static_cast<int>(u(rng) * 6));
      } else if (r < 0.2f) {
        v = (u(rng) - 0.5f) * 2e9f;
      } else {
        v = (u(rng) - 0.2f) * 120000.0f * (f == 0 ? 0.001f : 1.0f);
      }
      rows[i * w + f] = v;
    }
  }
  // Also reuse real encoded values so splits are exercised on both sides of thresholds.
  return rows;
}

TEST(Predictor, CompiledEvaluatorMatchesXgboostBitExactOnMargins) {
  struct Case {
    const char* task;
    const char* learner;
    Json extra;
  };
  const std::vector<Case> cases = {
      {"binary", "xgboost", Json::object()},
      {"multiclass", "xgboost", Json::object()},
      {"regression", "xgboost", Json::object()},
      {"binary", "random_forest", Json::object()},
      {"multiclass", "random_forest", {{"n_estimators", 20}}},
      {"regression", "xgboost", {{"objective", "poisson"}}},
      {"regression", "xgboost", {{"objective", "tweedie"}, {"tweedie_variance_power", 1.3}}},
      {"regression", "xgboost", {{"objective", "huber"}}},
      {"regression", "xgboost", {{"objective", "absolute_error"}}},
  };
  for (const Case& cs : cases) {
    const char* task = cs.task;
    SCOPED_TRACE(std::string(task) + " " + cs.learner + " " + cs.extra.dump());
    auto p = Load(task, cs.learner, cs.extra);
    ASSERT_TRUE(p);
    const size_t n = 5000;
    std::vector<float> rows = RandomRows(*p, n, 99);
    // Add the real training rows' encodings too.
    Table t = MakeMixedTable(1000, 21, task);
    auto real = p->pipeline().TransformTable(t);
    ASSERT_TRUE(real.ok());
    rows.insert(rows.end(), real->begin(), real->end());
    const size_t total = rows.size() / p->NumFeatures();
    const size_t k = p->OutputWidth();

    std::vector<float> ours_margin(total * k), ours(total * k);
    p->PredictRows(rows.data(), total, ours_margin.data(), /*margin=*/true);
    p->PredictRows(rows.data(), total, ours.data());
    std::vector<float> xgb_margin, xgb;
    ASSERT_TRUE(p->PredictRowsXgboost(rows.data(), total, &xgb_margin, true).ok());
    ASSERT_TRUE(p->PredictRowsXgboost(rows.data(), total, &xgb).ok());
    ASSERT_EQ(xgb_margin.size(), total * k);
    size_t mismatches = 0;
    for (size_t i = 0; i < total * k; ++i) {
      if (std::memcmp(&ours_margin[i], &xgb_margin[i], sizeof(float)) != 0) {
        if (++mismatches < 5) ADD_FAILURE() << task << " margin " << i << ": " << ours_margin[i] << " vs " << xgb_margin[i];
      }
      ASSERT_NEAR(ours[i], xgb[i], 1e-6 * std::max(1.0f, std::fabs(xgb[i]))) << task << " output " << i;
    }
    EXPECT_EQ(mismatches, 0u) << task;
    // The single-row path (serving) and the batch path (blocks of rows) give the same bits.
    std::vector<float> one(k);
    for (size_t i = 0; i < total; ++i) {
      p->PredictRows(rows.data() + i * p->NumFeatures(), 1, one.data(), /*margin=*/true);
      ASSERT_EQ(std::memcmp(one.data(), &ours_margin[i * k], k * sizeof(float)), 0) << task << " row " << i;
    }
    // Batches whose size is not a multiple of the lane count (the tail rows take the single-row walk).
    for (size_t n_small : {3, 13, 71}) {
      std::vector<float> part(n_small * k);
      p->PredictRows(rows.data() + 5 * p->NumFeatures(), n_small, part.data(), /*margin=*/true);
      ASSERT_EQ(std::memcmp(part.data(), &ours_margin[5 * k], part.size() * sizeof(float)), 0) << task << " " << n_small;
    }
  }
}

// XGBoost's linear booster is served as a LinearModel over the raw features (a missing value adds nothing);
// it must give XGBoost's own predictions, margins and outputs, for every task and a log link.
TEST(Predictor, LinearBoosterMatchesXgboost) {
  for (const auto& [task, extra] : std::vector<std::pair<const char*, Json>>{
           {"binary", Json::object()}, {"multiclass", Json::object()}, {"regression", Json::object()}}) {
    SCOPED_TRACE(std::string(task) + " " + extra.dump());
    auto p = Load(task, "xgboost_linear", extra);
    ASSERT_TRUE(p);
    EXPECT_EQ(p->NumTrees(), 0u);
    ASSERT_NE(p->linear(), nullptr);
    std::vector<float> rows = RandomRows(*p, 3000, 5);
    const size_t n = rows.size() / p->NumFeatures(), k = p->OutputWidth();
    for (bool margin : {true, false}) {
      std::vector<float> ours(n * k), xgb;
      p->PredictRows(rows.data(), n, ours.data(), margin);
      auto st = p->PredictRowsXgboost(rows.data(), n, &xgb, margin);
      ASSERT_TRUE(st.ok()) << st.ToString();
      ASSERT_EQ(xgb.size(), n * k);
      for (size_t i = 0; i < n * k; ++i) {
        // lathe sums in double, XGBoost in float: extreme inputs differ in the float rounding of the sum.
        ASSERT_NEAR(ours[i], xgb[i], 1e-4 * std::max(1.0f, std::fabs(xgb[i]))) << "margin " << margin << " at " << i;
      }
    }
  }
}

// A linear booster that diverges (Poisson's log link on unscaled epoch seconds) is a clear error, not a model
// that cannot predict.
TEST(Predictor, DivergedLinearBoosterIsAnError) {
  Table t = MakeMixedTable(2000, 21, "regression");
  for (double& v : t.columns.back().f64) v = std::fabs(v) + 0.5;
  TrainSpec spec;
  spec.target = t.columns.back().name;
  spec.task = "regression";
  spec.learner = "xgboost_linear";
  spec.params = {{"n_estimators", 50}, {"learning_rate", 0.1}, {"objective", "poisson"}};
  auto out = Train(t, spec, nullptr, nullptr);
  ASSERT_FALSE(out.ok());
  EXPECT_EQ(out.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(out.status().message().find("diverged"), std::string::npos) << out.status().message();
}

// Learning curves rely on StagedMargins: stage r must be exactly the margin of the model cut after round r.
TEST(Predictor, StagedMarginsEqualTheMarginsOfTruncatedModels) {
  for (const char* task : {"binary", "multiclass", "regression"}) {
    auto bundle = DecodeModelBundle(Trained(task).model_bundle);
    ASSERT_TRUE(bundle.ok());
    const Json model = Json::from_ubjson(bundle->booster);
    auto forest = CompiledForest::FromXgboostModel(model);
    ASSERT_TRUE(forest.ok()) << forest.status().ToString();
    const size_t groups = static_cast<size_t>(forest->num_groups());
    const size_t rounds = 50, per_round = forest->num_trees() / rounds;
    ASSERT_EQ(forest->num_trees(), rounds * (std::string(task) == "multiclass" ? 3u : 1u)) << task;
    auto p = Load(task);
    const size_t n = 300, w = p->NumFeatures();
    const std::vector<float> rows = RandomRows(*p, n, 7);
    std::vector<float> staged(rounds * groups), full(groups), cut_margin(groups);
    for (size_t cut : {size_t{1}, size_t{17}, rounds}) {
      Json truncated = model;
      Json& m = truncated["learner"]["gradient_booster"]["model"];
      m["trees"] = Json(std::vector<Json>(m["trees"].begin(), m["trees"].begin() + cut * per_round));
      m["tree_info"] = Json(std::vector<Json>(m["tree_info"].begin(), m["tree_info"].begin() + cut * per_round));
      m["gbtree_model_param"]["num_trees"] = std::to_string(cut * per_round);
      auto cut_forest = CompiledForest::FromXgboostModel(truncated);
      ASSERT_TRUE(cut_forest.ok()) << cut_forest.status().ToString();
      for (size_t i = 0; i < n; ++i) {
        forest->StagedMargins(&rows[i * w], per_round, staged.data());
        cut_forest->PredictMargin(&rows[i * w], cut_margin.data());
        ASSERT_EQ(std::memcmp(&staged[(cut - 1) * groups], cut_margin.data(), groups * sizeof(float)), 0)
            << task << " row " << i << " round " << cut;
        if (cut == rounds) {
          forest->PredictMargin(&rows[i * w], full.data());
          ASSERT_EQ(std::memcmp(&staged[(rounds - 1) * groups], full.data(), groups * sizeof(float)), 0);
        }
      }
    }
  }
}

// The direct writer serving uses is byte for byte the DOM's dump, for every kind of float.
TEST(Predictor, PredictionsTextIsTheDumpOfFormatPredictions) {
  std::mt19937 rng(3);
  std::uniform_real_distribution<float> u(-1e6f, 1e6f);
  for (const char* task : {"binary", "regression", "multiclass"}) {
    auto p = Load(task);
    const size_t k = p->OutputWidth();
    std::vector<float> outputs = {0.0f, -0.0f, 1.0f, 0.5f, 1e-30f, 3.4e38f, 123456.789f, 1.0f / 3.0f,
                                  std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity(),
                                  std::numeric_limits<float>::denorm_min()};
    for (int i = 0; i < 500; ++i) outputs.push_back(i % 2 ? u(rng) : u(rng) * 1e-7f);
    outputs.resize(outputs.size() / k * k);
    const size_t n = outputs.size() / k;
    EXPECT_EQ(p->PredictionsText(outputs.data(), n), DumpJson(p->FormatPredictions(outputs.data(), n))) << task;
  }
}

TEST(Predictor, PredictInstancesFormats) {
  const Json inst = {{"age", 61}, {"income", 95000}, {"active", true}, {"city", "rome"}, {"signup", "2020-01-05"}};
  const Json low = {{"age", 19}, {"income", nullptr}, {"active", false}, {"city", "oslo"}, {"signup", nullptr}};
  auto b = Load("binary");
  auto out = b->PredictInstances(Json::array({inst, low}));
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  ASSERT_EQ(out->size(), 2u);
  EXPECT_GT((*out)[0].get<double>(), 0.8);
  EXPECT_LT((*out)[1].get<double>(), 0.2);
  EXPECT_EQ(b->Task(), "binary");
  EXPECT_EQ(b->Signature()["output"]["positive_class"], "yes");

  auto m = Load("multiclass");
  auto mo = m->PredictInstances(Json::array({inst}));
  ASSERT_TRUE(mo.ok()) << mo.status().ToString();
  EXPECT_EQ((*mo)[0]["label"], "gold");
  double sum = 0;
  for (auto& [k, v] : (*mo)[0]["probabilities"].items()) sum += v.get<double>();
  EXPECT_NEAR(sum, 1.0, 1e-5);
  EXPECT_EQ((*mo)[0]["probabilities"].size(), 3u);

  auto r = Load("regression");
  auto ro = r->PredictInstances(Json::array({inst, low}));
  ASSERT_TRUE(ro.ok());
  EXPECT_GT((*ro)[0].get<double>(), (*ro)[1].get<double>());
}

TEST(Predictor, BadInstances) {
  auto p = Load("binary");
  auto field_of = [&](const Json& j) {
    auto r = p->PredictInstances(j);
    EXPECT_FALSE(r.ok()) << j.dump();
    if (r.ok() || r.status().details().empty()) return std::string("<none>");
    return r.status().details()[0].field;
  };
  EXPECT_EQ(field_of(Json::object()), "instances");
  EXPECT_EQ(field_of(Json::array()), "instances");
  EXPECT_EQ(field_of(Json::array({1})), "instances[0]");
  const Json ok = {{"age", 30}, {"income", 1.0}, {"active", true}, {"city", "rome"}, {"signup", "2020-01-05"}};
  Json bad = ok;
  bad["age"] = Json::array();
  EXPECT_EQ(field_of(Json::array({ok, ok, bad})), "instances[2].age");
  Json many = Json::array();
  for (size_t i = 0; i <= Predictor::kMaxInstances; ++i) many.push_back(ok);
  auto r = p->PredictInstances(many);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kPayloadTooLarge);
}

TEST(Predictor, CorruptBundlesAreErrorsNeverCrashes) {
  const std::string& good = Trained("binary").model_bundle;
  auto expect_rejected = [](std::string_view bytes) {
    auto r = Predictor::Load(bytes);
    EXPECT_FALSE(r.ok());
    if (!r.ok()) {
      EXPECT_TRUE(r.status().code() == StatusCode::kDataLoss || r.status().code() == StatusCode::kInvalidArgument)
          << r.status().ToString();
    }
  };
  expect_rejected("");
  expect_rejected("LATHEMDL");
  expect_rejected(std::string(1 << 16, '\xff'));
  for (size_t len = 0; len < good.size(); len += std::max<size_t>(1, good.size() / 97)) {
    expect_rejected(std::string_view(good).substr(0, len));
  }
  std::mt19937_64 rng(5);
  for (int i = 0; i < 50; ++i) {
    std::string flipped = good;
    flipped[rng() % flipped.size()] ^= static_cast<char>(1 + rng() % 255);
    expect_rejected(flipped);
  }
  // Checksum-valid but hostile contents: the bundle is well-formed, its parts are not.
  auto decoded = DecodeModelBundle(good);
  ASSERT_TRUE(decoded.ok());
  const Json meta = decoded->meta;
  const Json model = Json::from_ubjson(decoded->booster);
  expect_rejected(EncodeModelBundle(meta, "not ubjson at all"));
  expect_rejected(EncodeModelBundle(Json::array(), decoded->booster));
  Json m2 = meta;
  m2["pipeline"]["inputs"].erase(0);  // feature count no longer matches the booster
  expect_rejected(EncodeModelBundle(m2, decoded->booster));
  m2 = meta;
  m2["task"] = "regression";
  expect_rejected(EncodeModelBundle(m2, decoded->booster));
  auto with_tree_edit = [&](const std::function<void(Json&)>& edit) {
    Json mm = model;
    edit(mm["learner"]["gradient_booster"]["model"]["trees"][0]);
    std::vector<uint8_t> ubj = Json::to_ubjson(mm);
    expect_rejected(EncodeModelBundle(meta, std::string(ubj.begin(), ubj.end())));
  };
  with_tree_edit([](Json& t) { t["left_children"][0] = 0; });                 // cycle
  with_tree_edit([](Json& t) { t["left_children"][0] = 1 << 30; });           // out of range
  with_tree_edit([](Json& t) { t["split_indices"][0] = 1000; });              // unknown feature
  with_tree_edit([](Json& t) { t["split_conditions"] = Json::array(); });     // lengths differ
  with_tree_edit([](Json& t) { t["right_children"][0] = t["left_children"][0]; });  // shared child
  with_tree_edit([](Json& t) { t.erase("default_left"); });
}

TEST(Predictor, ConcurrentPredictionsAgree) {
  auto p = Load("multiclass");
  const Json inst = Json::array({{{"age", 40}, {"income", 60000}, {"active", true}, {"city", "lima"},
                                  {"signup", "2021-06-01T10:00:00Z"}}});
  auto expected = p->PredictInstances(inst);
  ASSERT_TRUE(expected.ok());
  std::atomic<int> bad{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&]() {
      for (int i = 0; i < 500; ++i) {
        auto r = p->PredictInstances(inst);
        if (!r.ok() || *r != *expected) ++bad;
        std::vector<float> row(p->NumFeatures()), out;
        if (!p->EncodeInstances(inst, &row).ok() || !p->PredictRowsXgboost(row.data(), 1, &out).ok()) ++bad;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(bad.load(), 0);
}

TEST(Predictor, SingleRowLatency) {
  auto p = Load("binary");
  const TrainOutput& t = Trained("binary");
  const Json inst = Json::array({{{"age", 40}, {"income", 60000}, {"active", true}, {"city", "lima"},
                                  {"signup", "2021-06-01T10:00:00Z"}}});
  std::vector<float> row;
  ASSERT_TRUE(p->EncodeInstances(inst, &row).ok());
  const int iters = 20000;
  using Clock = std::chrono::steady_clock;
  float sink = 0, out = 0;
  auto t0 = Clock::now();
  for (int i = 0; i < iters; ++i) {
    p->PredictRows(row.data(), 1, &out);
    sink += out;
  }
  auto t1 = Clock::now();
  std::vector<float> xout;
  for (int i = 0; i < iters / 10; ++i) {
    ASSERT_TRUE(p->PredictRowsXgboost(row.data(), 1, &xout).ok());
    sink += xout[0];
  }
  auto t2 = Clock::now();
  for (int i = 0; i < iters / 10; ++i) {
    auto r = p->PredictInstances(inst);
    ASSERT_TRUE(r.ok());
  }
  auto t3 = Clock::now();
  auto us = [](Clock::duration d, int n) { return std::chrono::duration<double, std::micro>(d).count() / n; };
  std::printf("[timing] binary model, depth 6, %zu trees: compiled %.3f us/row, xgboost in-place (nthread=1) %.3f us/row, "
              "PredictInstances (JSON->row->compiled->JSON) %.3f us/call  (sink %g)\n",
              static_cast<size_t>(t.params["n_estimators"].get<int>()), us(t1 - t0, iters),
              us(t2 - t1, iters / 10), us(t3 - t2, iters / 10), static_cast<double>(sink));
}

}  // namespace
}  // namespace lathe::ml
