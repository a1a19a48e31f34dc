#include "data/labeling.h"

#include <gtest/gtest.h>

namespace lathe {
namespace {

TEST(LabelingTest, ConsensusIsTheMajorityAndTiesStayUnlabeled) {
  std::vector<RowLabel> labels = {{1, "a", "cat"}, {1, "b", "cat"}, {1, "c", "dog"},
                                  {2, "a", "cat"}, {2, "b", "dog"},
                                  {3, "a", "dog"}};
  auto c = ConsensusLabels(labels);
  EXPECT_EQ(c.size(), 2u);
  EXPECT_EQ(c[1], "cat");
  EXPECT_EQ(c.count(2), 0u);
  EXPECT_EQ(c[3], "dog");
}

TEST(LabelingTest, AgreementAndCohensKappaMatchTheTextbookExample) {
  // Two raters, 50 items: yes/yes 20, yes/no 5, no/yes 10, no/no 15 -> po = 0.7, pe = 0.5, kappa = 0.4.
  std::vector<RowLabel> labels;
  int64_t row = 0;
  auto add = [&](int n, const char* a, const char* b) {
    for (int i = 0; i < n; ++i, ++row) {
      labels.push_back({row, "ann", a});
      labels.push_back({row, "bob", b});
    }
  };
  add(20, "yes", "yes");
  add(5, "yes", "no");
  add(10, "no", "yes");
  add(15, "no", "no");
  labels.push_back({row, "ann", "yes"});  // labeled once: not counted
  Json a = LabelAgreement(labels);
  EXPECT_EQ(a["rows_labeled_twice"], 50);
  EXPECT_NEAR(a["percent_agreement"].get<double>(), 0.7, 1e-12);
  EXPECT_NEAR(a["cohens_kappa"]["value"].get<double>(), 0.4, 1e-12);
  EXPECT_EQ(a["cohens_kappa"]["rows"], 50);
}

TEST(LabelingTest, NoOverlapGivesNoAgreementFigures) {
  Json a = LabelAgreement({{0, "a", "x"}, {1, "b", "y"}});
  EXPECT_EQ(a["rows_labeled_twice"], 0);
  EXPECT_FALSE(a.contains("cohens_kappa"));
  Json same = LabelAgreement({{0, "a", "x"}, {0, "b", "x"}});
  EXPECT_TRUE(same["cohens_kappa"]["value"].is_null());  // chance agreement is 1
  EXPECT_EQ(same["percent_agreement"], 1.0);
}

}  // namespace
}  // namespace lathe
