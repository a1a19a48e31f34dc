#include "ml/batch_score.h"

#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>

#include "common/crypto.h"
#include "ml/train.h"
#include "ml_test_tables.h"

namespace lathe::ml {
namespace {

namespace fs = std::filesystem;
using testing::MakeMixedTable;

std::shared_ptr<Predictor> TrainModel(const std::string& task) {
  Table t = MakeMixedTable(2000, 5, task);
  TrainSpec spec;
  spec.target = t.columns.back().name;
  spec.task = task;
  spec.params = {{"n_estimators", 30}, {"max_depth", 5}, {"learning_rate", 0.2}};
  spec.nthread = 2;
  auto out = Train(t, spec, nullptr, nullptr);
  EXPECT_TRUE(out.ok()) << out.status().ToString();
  auto p = Predictor::Load(out->model_bundle);
  EXPECT_TRUE(p.ok()) << p.status().ToString();
  return *p;
}

class BatchScore : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("lathe-score-" + RandomHex(6));
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::unique_ptr<DatasetFile> Write(const Table& t, const std::string& name) {
    const std::string path = (dir_ / name).string();
    EXPECT_TRUE(WriteDatasetFile(t, path).ok());
    auto f = DatasetFile::Open(path);
    EXPECT_TRUE(f.ok()) << f.status().ToString();
    return std::move(*f);
  }
  std::string Out(const std::string& name) const { return (dir_ / name).string(); }

  fs::path dir_;
};

TEST_F(BatchScore, BinaryOutputsEqualThePredictorAcrossRowGroups) {
  auto p = TrainModel("binary");
  Table t = MakeMixedTable(70000, 99, "binary");  // two row groups
  auto in = Write(t, "in.lcol");
  int calls = 0;
  auto summary = ScoreDataset(*in, *p, Out("out.lcol"), BatchScoreOptions{}, [&](int64_t done, int64_t total) {
    EXPECT_EQ(total, 70000);
    EXPECT_LE(done, total);
    ++calls;
    return true;
  });
  ASSERT_TRUE(summary.ok()) << summary.status().ToString();
  EXPECT_EQ(calls, 2);
  EXPECT_EQ(summary->rows, 70000);
  EXPECT_EQ(summary->output_columns, (std::vector<std::string>{"prediction", "probability"}));

  auto out = DatasetFile::Open(Out("out.lcol"));
  ASSERT_TRUE(out.ok());
  auto scored = (*out)->ReadAll();
  ASSERT_TRUE(scored.ok());
  ASSERT_EQ(scored->columns.size(), t.columns.size() + 2);  // every input column kept, the label too
  auto rows = p->EncodeTable(t);
  ASSERT_TRUE(rows.ok());
  std::vector<float> expected(70000);
  p->PredictRows(rows->data(), 70000, expected.data());
  const Column& prob = scored->columns[static_cast<size_t>(scored->FindColumn("probability"))];
  const Column& pred = scored->columns[static_cast<size_t>(scored->FindColumn("prediction"))];
  ASSERT_EQ(pred.type, ColumnType::kString);
  for (size_t i = 0; i < 70000; ++i) {
    ASSERT_EQ(prob.f64[i], static_cast<double>(expected[i])) << i;
    ASSERT_EQ(pred.StringAt(i), expected[i] >= 0.5f ? "yes" : "no") << i;
  }
  // The kept columns are the input's, row for row.
  const Column& ids = scored->columns[static_cast<size_t>(scored->FindColumn("customer_id"))];
  EXPECT_EQ(ids.StringAt(65537), "c65537");
}

TEST_F(BatchScore, MulticlassAndRegressionLayouts) {
  auto multi = TrainModel("multiclass");
  Table t = MakeMixedTable(3000, 7, "multiclass");
  auto in = Write(t, "m.lcol");
  BatchScoreOptions opt;
  opt.keep_columns = {"customer_id"};
  auto summary = ScoreDataset(*in, *multi, Out("m-out.lcol"), opt);
  ASSERT_TRUE(summary.ok()) << summary.status().ToString();
  auto scored = (*DatasetFile::Open(Out("m-out.lcol")))->ReadAll();
  ASSERT_TRUE(scored.ok());
  std::vector<std::string> names;
  for (const auto& c : scored->columns) names.push_back(c.name);
  ASSERT_EQ(names.size(), 2u + multi->pipeline().label_keys().size());
  EXPECT_EQ(names[0], "customer_id");
  EXPECT_EQ(names[1], "prediction");
  for (size_t i = 0; i < 3000; ++i) {
    double sum = 0;
    size_t best = 2;
    for (size_t c = 2; c < names.size(); ++c) {
      sum += scored->columns[c].f64[i];
      if (scored->columns[c].f64[i] > scored->columns[best].f64[i]) best = c;
    }
    ASSERT_NEAR(sum, 1.0, 1e-5);
    ASSERT_EQ("probability_" + std::string(scored->columns[1].StringAt(i)), names[best]);
  }

  auto reg = TrainModel("regression");
  Table r = MakeMixedTable(1000, 8, "regression");
  auto rin = Write(r, "r.lcol");
  auto rs = ScoreDataset(*rin, *reg, Out("r-out.lcol"), BatchScoreOptions{});
  ASSERT_TRUE(rs.ok());
  auto rscored = (*DatasetFile::Open(Out("r-out.lcol")))->ReadAll();
  const Column& pred = rscored->columns.back();
  EXPECT_EQ(pred.name, "prediction");
  EXPECT_EQ(pred.type, ColumnType::kFloat64);
  // Scoring the scored file again replaces "prediction" instead of adding a second one.
  auto again_in = DatasetFile::Open(Out("r-out.lcol"));
  ASSERT_TRUE(ScoreDataset(**again_in, *reg, Out("r-again.lcol"), BatchScoreOptions{}).ok());
  auto again = (*DatasetFile::Open(Out("r-again.lcol")))->ReadAll();
  EXPECT_EQ(again->columns.size(), rscored->columns.size());
  EXPECT_EQ(again->columns.back().f64, pred.f64);
}

TEST_F(BatchScore, ExplainColumnsSumToTheMargin) {
  auto p = TrainModel("binary");
  Table t = MakeMixedTable(500, 3, "binary");
  auto in = Write(t, "e.lcol");
  BatchScoreOptions opt;
  opt.explain = true;
  opt.keep_columns = {"customer_id"};
  auto summary = ScoreDataset(*in, *p, Out("e-out.lcol"), opt);
  ASSERT_TRUE(summary.ok()) << summary.status().ToString();
  auto scored = (*DatasetFile::Open(Out("e-out.lcol")))->ReadAll();
  ASSERT_TRUE(scored.ok());
  auto rows = p->EncodeTable(t);
  std::vector<float> margin(500);
  p->PredictRows(rows->data(), 500, margin.data(), /*margin=*/true);
  ASSERT_GE(scored->FindColumn("shap_signup"), 0);  // a date is one column, not its encoded parts
  ASSERT_GE(scored->FindColumn("shap_bias"), 0);
  for (size_t i = 0; i < 500; ++i) {
    double sum = 0;
    for (const auto& c : scored->columns) {
      if (c.name.rfind("shap_", 0) == 0) sum += c.f64[i];
    }
    ASSERT_NEAR(sum, margin[i], 1e-3) << i;
  }
}

TEST_F(BatchScore, ErrorsLeaveNoOutput) {
  auto p = TrainModel("binary");
  Table t = MakeMixedTable(100, 3, "binary");
  Table missing = t;
  missing.columns.erase(missing.columns.begin() + 1);  // income
  auto in = Write(missing, "missing.lcol");
  auto st = ScoreDataset(*in, *p, Out("x.lcol"), BatchScoreOptions{});
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.status().message().find("income"), std::string::npos) << st.status().ToString();
  EXPECT_FALSE(fs::exists(Out("x.lcol")));

  auto good = Write(t, "good.lcol");
  BatchScoreOptions opt;
  opt.keep_columns = {"nope"};
  auto bad_keep = ScoreDataset(*good, *p, Out("y.lcol"), opt);
  ASSERT_FALSE(bad_keep.ok());
  EXPECT_EQ(bad_keep.status().details()[0].field, "keep_columns");
  EXPECT_FALSE(fs::exists(Out("y.lcol")));

  auto cancelled = ScoreDataset(*good, *p, Out("z.lcol"), BatchScoreOptions{}, [](int64_t, int64_t) { return false; });
  ASSERT_FALSE(cancelled.ok());
  EXPECT_EQ(cancelled.status().code(), StatusCode::kCancelled);
  EXPECT_FALSE(fs::exists(Out("z.lcol")));
}

}  // namespace
}  // namespace lathe::ml
