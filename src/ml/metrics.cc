#include "ml/metrics.h"

#include <algorithm>
#include <cmath>
#include <numeric>

namespace lathe::ml {
namespace {

Json NumberOrNull(double v) { return std::isfinite(v) ? Json(v) : Json(nullptr); }

double Clip(double p) { return std::min(std::max(p, kLogLossEpsilon), 1.0 - kLogLossEpsilon); }

double SafeDiv(double a, double b) { return b == 0 ? 0.0 : a / b; }

}  // namespace

double RocAuc(const std::vector<float>& y_true, const std::vector<float>& score) {
  const size_t n = std::min(y_true.size(), score.size());
  std::vector<size_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return score[a] < score[b]; });
  double pos = 0, neg = 0, rank_sum_pos = 0;
  size_t i = 0;
  while (i < n) {
    size_t j = i;
    while (j + 1 < n && score[order[j + 1]] == score[order[i]]) ++j;
    const double midrank = (static_cast<double>(i + 1) + static_cast<double>(j + 1)) / 2.0;
    for (size_t k = i; k <= j; ++k) {
      if (y_true[order[k]] > 0.5f) {
        pos += 1;
        rank_sum_pos += midrank;
      } else {
        neg += 1;
      }
    }
    i = j + 1;
  }
  if (pos == 0 || neg == 0) return std::nan("");
  return (rank_sum_pos - pos * (pos + 1) / 2.0) / (pos * neg);
}

Result<Json> BinaryMetrics(const std::vector<float>& y_true, const std::vector<float>& p) {
  if (y_true.size() != p.size()) return Status::InvalidArgument("metrics: label and prediction counts differ");
  if (y_true.empty()) return Status::InvalidArgument("metrics: no rows to evaluate");
  double tp = 0, fp = 0, tn = 0, fn = 0, ll = 0;
  for (size_t i = 0; i < p.size(); ++i) {
    const bool actual = y_true[i] > 0.5f;
    const bool predicted = p[i] >= 0.5f;
    if (actual && predicted) tp += 1;
    else if (actual) fn += 1;
    else if (predicted) fp += 1;
    else tn += 1;
    const double q = Clip(p[i]);
    ll -= actual ? std::log(q) : std::log(1.0 - q);
  }
  const double n = static_cast<double>(p.size());
  const double precision = SafeDiv(tp, tp + fp);
  const double recall = SafeDiv(tp, tp + fn);
  return Json{{"accuracy", (tp + tn) / n},
              {"precision", precision},
              {"recall", recall},
              {"f1", SafeDiv(2 * precision * recall, precision + recall)},
              {"roc_auc", NumberOrNull(RocAuc(y_true, p))},
              {"log_loss", ll / n},
              {"rows", p.size()}};
}

Result<Json> MulticlassMetrics(const std::vector<float>& y_true, const std::vector<float>& probs, int num_classes) {
  if (num_classes < 2) return Status::InvalidArgument("metrics: need at least two classes");
  const auto k = static_cast<size_t>(num_classes);
  if (probs.size() != y_true.size() * k) return Status::InvalidArgument("metrics: label and prediction counts differ");
  if (y_true.empty()) return Status::InvalidArgument("metrics: no rows to evaluate");
  std::vector<double> tp(k, 0), fp(k, 0), support(k, 0);
  double correct = 0, ll = 0;
  for (size_t i = 0; i < y_true.size(); ++i) {
    const float* row = &probs[i * k];
    const auto actual = static_cast<size_t>(y_true[i]);
    if (actual >= k || y_true[i] < 0) return Status::InvalidArgument("metrics: class index out of range");
    const auto predicted = static_cast<size_t>(std::max_element(row, row + k) - row);
    support[actual] += 1;
    if (predicted == actual) {
      correct += 1;
      tp[actual] += 1;
    } else {
      fp[predicted] += 1;
    }
    ll -= std::log(Clip(row[actual]));
  }
  const double n = static_cast<double>(y_true.size());
  double macro = 0, weighted = 0;
  for (size_t c = 0; c < k; ++c) {
    const double precision = SafeDiv(tp[c], tp[c] + fp[c]);
    const double recall = SafeDiv(tp[c], support[c]);
    const double f1 = SafeDiv(2 * precision * recall, precision + recall);
    macro += f1;
    weighted += f1 * support[c];
  }
  return Json{{"accuracy", correct / n},
              {"macro_f1", macro / static_cast<double>(k)},
              {"weighted_f1", weighted / n},
              {"log_loss", ll / n},
              {"rows", y_true.size()}};
}

Result<Json> RegressionMetrics(const std::vector<float>& y_true, const std::vector<float>& y_pred) {
  if (y_true.size() != y_pred.size()) return Status::InvalidArgument("metrics: label and prediction counts differ");
  if (y_true.empty()) return Status::InvalidArgument("metrics: no rows to evaluate");
  const double n = static_cast<double>(y_true.size());
  double mean = 0;
  for (float v : y_true) mean += v;
  mean /= n;
  double sse = 0, sae = 0, sst = 0;
  for (size_t i = 0; i < y_true.size(); ++i) {
    const double e = static_cast<double>(y_true[i]) - static_cast<double>(y_pred[i]);
    sse += e * e;
    sae += std::fabs(e);
    const double d = static_cast<double>(y_true[i]) - mean;
    sst += d * d;
  }
  return Json{{"rmse", std::sqrt(sse / n)},
              {"mae", sae / n},
              {"r2", sst == 0 ? Json(nullptr) : Json(1.0 - sse / sst)},
              {"rows", y_true.size()}};
}

}  // namespace lathe::ml
