// Evaluation metrics. Pure functions over label/prediction vectors; thread-safe. Inputs with mismatched sizes
// or no rows are kInvalidArgument. A metric that is undefined for the data (ROC-AUC with a single class
// present, R² with constant truth, MAPE when every truth is zero) is reported as JSON null.
//
// Definitions follow scikit-learn's (the unit tests hold reference values computed with it):
//   - precision/recall/F1 with zero_division = 0; macro/weighted averages run over the classes present in the
//     truth or the predictions; micro averages pool the counts (for single-label multiclass all three equal
//     accuracy).
//   - balanced accuracy: the mean recall over the classes present in the truth.
//   - ROC-AUC: the rank statistic with midranks for ties; multiclass is one-vs-rest, macro over the classes
//   that
//     have both positives and negatives.
//   - PR-AUC: average precision, sum over thresholds of (R_n - R_n-1) * P_n (no interpolation); multiclass is
//     one-vs-rest macro.
//   - log-loss: probabilities clipped to [kLogLossEpsilon, 1 - kLogLossEpsilon].
//   - MAPE: a fraction (0.05 = 5 %), over the rows whose truth is not zero (those rows are skipped; the count
//     used is reported as mape_rows). scikit-learn instead divides by max(|y|, machine epsilon), which turns
//     a zero truth into an astronomically large error.
//
// Chart data (curves, calibration, lift, residual distribution) goes into `*plots` when given, so that the
// scalar metrics stay small enough to list and compare across many runs.
#pragma once

#include <cstdint>
#include <vector>

#include "common/json.h"
#include "common/status.h"

namespace lathe::ml {

constexpr double kLogLossEpsilon = 1e-15;     // probabilities are clipped to [eps, 1 - eps]
constexpr size_t kMaxCurvePoints = 200;       // ROC and PR curves are downsampled to at most this many points
constexpr int kCalibrationBins = 10;          // equal-width bins over [0, 1]
constexpr int kLiftBuckets = 10;              // deciles of the score
constexpr int kResidualBins = 20;             // histogram of residuals
constexpr size_t kMaxConfusionClasses = 100;  // larger confusion matrices are left out

// y_true in {0,1}; p = probability of class 1. Threshold 0.5 (p >= 0.5 predicts 1) for the label metrics.
// -> {accuracy, balanced_accuracy, precision, recall, f1, roc_auc, pr_auc, log_loss,
//     confusion_matrix: [[tn, fp], [fn, tp]] (rows = truth, columns = prediction), rows}
// plots -> {roc_curve: {fpr, tpr, threshold}, pr_curve: {recall, precision, threshold},
//           calibration: {mean_predicted, fraction_positive, count} per non-empty bin,
//           lift: {fraction, gain, lift} per decile of rows by descending score}
Result<Json> BinaryMetrics(const std::vector<float>& y_true, const std::vector<float>& p,
                           Json* plots = nullptr);

// ROC-AUC by the rank statistic with midranks for tied scores (= probability a random positive outscores a
// random negative, ties counting one half). Returns NaN if only one class is present.
double RocAuc(const std::vector<float>& y_true, const std::vector<float>& score);
// Average precision of `score` for the positives (y_true > 0.5). NaN if there is no positive.
double AveragePrecision(const std::vector<float>& y_true, const std::vector<float>& score);

// y_true = class index in [0, num_classes); probs row-major rows x num_classes.
// -> {accuracy, balanced_accuracy, macro_/micro_/weighted_ precision, recall, f1, roc_auc (one-vs-rest
// macro),
//     pr_auc (one-vs-rest macro), log_loss, confusion_matrix (when num_classes <= kMaxConfusionClasses),
//     rows}
Result<Json> MulticlassMetrics(const std::vector<float>& y_true, const std::vector<float>& probs,
                               int num_classes, Json* plots = nullptr);

// -> {rmse, mae, mape, mape_rows, r2, rows}
// plots -> {residuals: {quantiles: {min, p05, p25, p50, p75, p95, max}, mean, histogram: {edges, counts}}}
// where residual = truth - prediction; quantiles interpolate linearly (numpy's default); the histogram has
// kResidualBins equal-width bins from min to max, the last one closed on the right.
Result<Json> RegressionMetrics(const std::vector<float>& y_true, const std::vector<float>& y_pred,
                               Json* plots = nullptr);

// Ranking: relevance y_true >= 0, a score per row and the query id of each row (a query's rows need not be
// contiguous). Within each query rows are ordered by descending score; tied scores are ordered by ascending
// relevance (worst case), so a model earns nothing from ties.
// -> {ndcg_at_5, ndcg_at_10, ndcg (whole list), map, queries, queries_without_relevant, rows}
//   NDCG@k = DCG@k / ideal DCG@k with gain 2^rel - 1 and discount 1 / log2(1 + position) (Burges et al.; the
//   definition XGBoost's rank:ndcg optimizes), averaged over the queries with at least one relevant row
//   (rel > 0); MAP = the mean over the same queries of average precision with relevant = rel > 0.
// plots -> {ndcg_at_k: {k: [1..20], ndcg: [...]}}
Result<Json> RankingMetrics(const std::vector<float>& y_true, const std::vector<float>& score,
                            const std::vector<int64_t>& query, Json* plots = nullptr);

}  // namespace lathe::ml
