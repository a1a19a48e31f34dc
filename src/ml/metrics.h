// Held-out evaluation metrics. Pure functions over label/prediction vectors; thread-safe; no allocation beyond
// temporaries. Inputs with mismatched sizes or no rows are kInvalidArgument. A metric that is undefined for the
// data (ROC-AUC with a single class present, R² with constant truth) is reported as JSON null.
#pragma once

#include <cstdint>
#include <vector>

#include "common/json.h"
#include "common/status.h"

namespace lathe::ml {

constexpr double kLogLossEpsilon = 1e-15;  // probabilities are clipped to [eps, 1 - eps]

// y_true in {0,1}; p = probability of class 1. Threshold 0.5 (p >= 0.5 predicts 1) for the label metrics.
// -> {accuracy, precision, recall, f1, roc_auc, log_loss, rows}
Result<Json> BinaryMetrics(const std::vector<float>& y_true, const std::vector<float>& p);

// ROC-AUC by the rank statistic with midranks for tied scores (= probability a random positive outscores a
// random negative, ties counting one half). Returns NaN if only one class is present.
double RocAuc(const std::vector<float>& y_true, const std::vector<float>& score);

// y_true = class index in [0, num_classes); probs row-major rows x num_classes.
// -> {accuracy, macro_f1, weighted_f1, log_loss, rows}
Result<Json> MulticlassMetrics(const std::vector<float>& y_true, const std::vector<float>& probs, int num_classes);

// -> {rmse, mae, r2, rows}
Result<Json> RegressionMetrics(const std::vector<float>& y_true, const std::vector<float>& y_pred);

}  // namespace lathe::ml
