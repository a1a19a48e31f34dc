// Design terms: the numeric columns a linear model or an unsupervised learner (k-means, PCA, isolation
// forest) sees, built from the feature pipeline's dense rows and learned from the training rows:
//   - numeric features ("q"): missing values imputed with the training mean, then standardized
//     ((x - mean) / std); a 0/1 missing indicator is added for a feature that had missing training values;
//     a feature that is constant (or all missing) gets no standardized term;
//   - categorical features ("c", integer codes): one-hot over the most frequent `max_levels` codes seen in
//     training; any other code, or missing, is all zeros. A categorical feature with one level and no
//     missing values gets no term.
// Pure functions over immutable data: thread-safe.
#pragma once

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "common/json.h"
#include "common/status.h"

namespace lathe::ml {

struct DesignTerm {
  int32_t feature;
  int32_t kind;   // 0 numeric (standardized), 1 missing indicator, 2 one-hot code
  float code;     // kind 2: the category code
  double mean;    // kind 0: imputation mean
  double scale;   // kind 0: 1 / std
  double center;  // mean of the term over the training rows (set by the learner; contributions)
  double spread;  // std of the term over the training rows (set by the learner; importance)
};

inline double DesignValue(const DesignTerm& t, const float* row) {
  const float x = row[t.feature];
  switch (t.kind) {
    case 0:
      return ((std::isnan(x) ? t.mean : static_cast<double>(x)) - t.mean) * t.scale;
    case 1:
      return std::isnan(x) ? 1.0 : 0.0;
    default:
      return x == t.code ? 1.0 : 0.0;
  }
}

// rows: n x types.size() row-major (NaN = missing); types[f] "q" or "c".
std::vector<DesignTerm> FitDesignTerms(const float* rows, size_t n, const std::vector<std::string>& types,
                                       size_t max_levels);
// [[feature, kind, code, mean, scale, center, spread], ...]
Json DesignTermsJson(const std::vector<DesignTerm>& terms);
// Validates (features < width, kinds, finiteness, at most max_terms); kInvalidArgument prefixed by `what`.
Result<std::vector<DesignTerm>> ParseDesignTerms(const Json& terms, size_t width, size_t max_terms,
                                                 const std::string& what);

}  // namespace lathe::ml
