// LinearModel: regularized linear regression (ridge) and logistic regression (binary and multinomial, L2),
// fitted with Eigen on the feature pipeline's dense rows.
//
// Design matrix, learned at fit time from the training rows:
//   - numeric features ("q"): missing values imputed with the training mean, then standardized
//     ((x - mean) / std); a 0/1 missing indicator is added for a feature that had missing training values;
//   - categorical features ("c", integer codes): one-hot over the most frequent `kMaxLevels` codes seen in
//     training; any other code, or missing, is all zeros.
// Fitting: the intercept is not penalized. Regression solves the weighted ridge normal equations
// (XᵀWX + αI)β = XᵀWy (LDLT). Classification minimizes the weighted mean log-loss + α/(2n)·‖β‖² (sklearn's
// C = 1/α convention scaled per row) by Newton's method with step halving, for at most `max_iter` iterations
// or until the loss improves by less than 1e-9 relative.
// Margins are on XGBoost's scale (log-odds, per-class logits, value), so they blend with tree models.
// Immutable after Fit/FromJson; const methods are thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/json.h"
#include "common/status.h"
#include "ml/design.h"

namespace lathe::ml {

class LinearModel {
 public:
  static constexpr size_t kMaxLevels = 64;     // one-hot columns per categorical feature
  static constexpr size_t kMaxTerms = 4000;    // design columns (terms) in all
  enum class Kind { kRegression, kBinary, kMulticlass };

  struct Options {
    double alpha = 1.0;   // L2 strength
    int max_iter = 50;    // Newton iterations (classification)
  };

  // rows: n x width row-major (NaN = missing); types[f] "q" or "c"; y: values / class indices; w: row weights
  // (empty = 1). classes: for kMulticlass.
  static Result<LinearModel> Fit(const float* rows, size_t n, const std::vector<std::string>& types,
                                 const std::vector<float>& y, const std::vector<float>& w, Kind kind,
                                 int classes, const Options& options);
  static Result<LinearModel> FromJson(const Json& j, size_t width);
  Json ToJson() const;

  size_t width() const { return width_; }
  int outputs() const { return outputs_; }  // margins per row
  // out[0..outputs()) = margins of one row.
  void Margin(const float* row, float* out) const;
  // Scales every coefficient and intercept (a blend member's weight).
  void Scale(double factor);
  // Adds another model's coefficients (models fitted on the same rows have the same terms); a blend of
  // linear models is the linear model of the summed coefficients. kInvalidArgument if the terms differ.
  Status Add(const LinearModel& other);
  // SHAP values of a linear model with independent features: coef · (term - training mean of the term),
  // summed per input feature; out has outputs() blocks of (width + 1): per feature, then the bias (the margin
  // at the training means).
  void Contributions(const float* row, double* out) const;
  // |coef| · std of each term, summed per feature and over outputs: the spread each feature puts in margins.
  std::vector<double> FeatureWeight() const;
  size_t MemoryBytes() const;

 private:
  using Term = DesignTerm;
  static bool SameTerm(const Term& a, const Term& b);

  size_t width_ = 0;
  int outputs_ = 1;
  std::vector<Term> terms_;
  std::vector<double> coef_;       // outputs_ x terms_ row-major
  std::vector<double> intercept_;  // outputs_
};

}  // namespace lathe::ml
