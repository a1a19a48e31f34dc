#include "api/run_query.h"

#include <gtest/gtest.h>

namespace lathe {
namespace {

Json MakeRun(const std::string& id, double auc, int depth, const std::string& state = "succeeded") {
  return {{"id", id},
          {"state", state},
          {"learner", "xgboost"},
          {"params", {{"max_depth", depth}, {"learning_rate", 0.1}}},
          {"metrics",
           {{"roc_auc", auc}, {"log_loss", 1 - auc}, {"cv", {{"roc_auc", {{"mean", auc}, {"std", 0.01}}}}}}}};
}

std::vector<std::string> Ids(const std::vector<Json>& runs) {
  std::vector<std::string> out;
  for (const auto& r : runs) out.push_back(r["id"]);
  return out;
}

TEST(RunQuery, FiltersAllConditionsAndNumbersCompareNumerically) {
  const std::vector<Json> runs = {MakeRun("a", 0.81, 4), MakeRun("b", 0.9, 6), MakeRun("c", 0.75, 6),
                                  MakeRun("d", 0.95, 10, "failed")};
  auto keep = [&](const std::string& filter) {
    auto f = ParseRunFilter(filter);
    EXPECT_TRUE(f.ok()) << filter << ": " << f.status().ToString();
    std::vector<Json> out;
    for (const auto& r : runs) {
      if (f.ok() && RunMatches(r, *f)) out.push_back(r);
    }
    return Ids(out);
  };
  EXPECT_EQ(keep("metrics.roc_auc>=0.81"), (std::vector<std::string>{"a", "b", "d"}));
  EXPECT_EQ(keep("metrics.roc_auc>0.81"), (std::vector<std::string>{"b", "d"}));
  EXPECT_EQ(keep("params.max_depth=6"), (std::vector<std::string>{"b", "c"}));
  EXPECT_EQ(keep("params.max_depth = 6 , state=succeeded, metrics.log_loss<0.2"),
            (std::vector<std::string>{"b"}));
  EXPECT_EQ(keep("state!=succeeded"), (std::vector<std::string>{"d"}));
  EXPECT_EQ(keep("params.max_depth<=4"), (std::vector<std::string>{"a"}));
  EXPECT_EQ(keep("metrics.cv.roc_auc.mean<0.8"), (std::vector<std::string>{"c"}));
  EXPECT_EQ(keep("metrics.r2>0"), (std::vector<std::string>{}));           // absent never matches
  EXPECT_EQ(keep("metrics.r2!=0").size(), 4u);                             // ... except for !=
  EXPECT_EQ(keep("params.max_depth=deep"), (std::vector<std::string>{}));  // number vs text
}

TEST(RunQuery, BadFiltersAndPathsNameTheParameter) {
  for (const char* bad :
       {"", "metrics.roc_auc", "=3", "nonsense>1", "metrics..auc>1", "metrics.roc_auc>1,"}) {
    auto f = ParseRunFilter(bad);
    ASSERT_FALSE(f.ok()) << bad;
    EXPECT_EQ(f.status().details()[0].field, "filter") << bad;
  }
  auto p = ParseRunPath("password.hash", "sort");
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.status().details()[0].field, "sort");
  EXPECT_TRUE(ParseRunPath("metrics.cv.roc_auc.mean", "sort").ok());
}

TEST(RunQuery, SortsEitherWayWithMissingValuesLast) {
  std::vector<Json> runs = {MakeRun("a", 0.81, 4), MakeRun("b", 0.9, 6), MakeRun("c", 0.75, 6)};
  runs.push_back({{"id", "none"}, {"metrics", Json::object()}});
  SortRuns(&runs, {"metrics", "roc_auc"}, true);
  EXPECT_EQ(Ids(runs), (std::vector<std::string>{"b", "a", "c", "none"}));
  SortRuns(&runs, {"metrics", "roc_auc"}, false);
  EXPECT_EQ(Ids(runs), (std::vector<std::string>{"c", "a", "b", "none"}));
  SortRuns(&runs, {"params", "max_depth"}, true);  // ties keep the incoming order
  EXPECT_EQ(Ids(runs), (std::vector<std::string>{"c", "b", "a", "none"}));
}

TEST(RunQuery, CompareListsParamsMetricsAndWhatDiffers) {
  Json a = MakeRun("a", 0.8, 4), b = MakeRun("b", 0.9, 6);
  b["params"]["subsample"] = 0.5;
  b["metrics"].erase("cv");
  const Json c = CompareRuns({a, b});
  EXPECT_EQ(c["runs"].size(), 2u);
  EXPECT_EQ(c["runs"][1]["id"], "b");
  EXPECT_EQ(c["params"]["max_depth"], Json::parse("[4, 6]"));
  EXPECT_EQ(c["params"]["subsample"], Json::parse("[null, 0.5]"));
  EXPECT_EQ(c["differing_params"], Json::parse(R"(["max_depth", "subsample"])"));
  EXPECT_EQ(c["metrics"]["roc_auc"], Json::parse("[0.8, 0.9]"));
  EXPECT_EQ(c["metrics"]["cv.roc_auc.mean"], Json::parse("[0.8, null]"));
  EXPECT_FALSE(c["metrics"].contains("cv"));
}

}  // namespace
}  // namespace lathe
