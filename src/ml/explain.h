// Global explanations of a trained model: which input columns it relies on, and how its prediction moves with
// one column.
//
//   GlobalImportance(p, rows, n, y):  on n encoded evaluation rows with their encoded labels y
//     {"rows": n,
//      "columns": [input columns, in signature order],
//      "gain":        {col: share of the model's total split gain (sums to 1)},
//      "permutation": {"metric": "log_loss" | "rmse", "baseline": loss,
//                      "increase": {col: {"mean", "std"}}},   // loss with the column shuffled − baseline
//      "shap":        {col: mean |SHAP value| (margin units; summed over classes for multiclass)},
//      "shap_summary": {col: {"values": [the column's value per row], "shap": [its SHAP value per row]}}}
//                      for up to 200 evenly strided rows: the points of a SHAP summary (beeswarm) plot.
//     Permutation shuffles all the features a column is encoded into together (a date's parts stay one
//     value), `repeats` times with a seeded generator, and re-predicts with the compiled evaluator.
//   PartialDependence(p, rows, n, column, grid): the mean prediction over the rows when `column` is set to each
//     grid value in turn — numeric columns: up to `grid` distinct quantiles of the column over the rows;
//     string columns: the most frequent categories (up to `grid`); booleans: false, true; dates: quantiles of
//     the timestamp. {"column","kind","values":[...],"mean":[...]} (multiclass: "mean" holds one array per
//     class, in label order, and "classes" names them).
//
// Errors: kInvalidArgument naming the column; XGBoost failures kInternal. Deterministic for a seed.
// Thread safety: pure functions of their inputs.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "common/json.h"
#include "common/status.h"
#include "ml/predictor.h"

namespace lathe::ml {

struct ImportanceOptions {
  int repeats = 3;
  uint64_t seed = 1;
};

Result<Json> GlobalImportance(const Predictor& p, const float* rows, size_t n, const float* y,
                              const ImportanceOptions& options = ImportanceOptions{});

Result<Json> PartialDependence(const Predictor& p, const float* rows, size_t n, const std::string& column,
                               int grid = 20);

}  // namespace lathe::ml
