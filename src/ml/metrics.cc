#include "ml/metrics.h"

#include <algorithm>
#include <functional>
#include <cmath>
#include <numeric>

namespace lathe::ml {
namespace {

Json NumberOrNull(double v) { return std::isfinite(v) ? Json(v) : Json(nullptr); }

double Clip(double p) { return std::min(std::max(p, kLogLossEpsilon), 1.0 - kLogLossEpsilon); }

double SafeDiv(double a, double b) { return b == 0 ? 0.0 : a / b; }

double F1(double precision, double recall) { return SafeDiv(2 * precision * recall, precision + recall); }

// Positions sorted by descending score, ties by position (a stable order, so results never depend on the
// sort).
std::vector<size_t> ByScoreDescending(const std::vector<float>& score) {
  std::vector<size_t> order(score.size());
  std::iota(order.begin(), order.end(), size_t{0});
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return score[a] > score[b]; });
  return order;
}

// Cumulative true/false positives at each distinct threshold, highest threshold first.
struct ThresholdCounts {
  std::vector<double> tp, fp, threshold;
  double positives = 0, negatives = 0;
};

ThresholdCounts CountByThreshold(const std::vector<float>& y_true, const std::vector<float>& score) {
  ThresholdCounts c;
  const std::vector<size_t> order = ByScoreDescending(score);
  double tp = 0, fp = 0;
  for (size_t i = 0; i < order.size(); ++i) {
    if (y_true[order[i]] > 0.5f)
      tp += 1;
    else
      fp += 1;
    if (i + 1 == order.size() || score[order[i + 1]] != score[order[i]]) {
      c.tp.push_back(tp);
      c.fp.push_back(fp);
      c.threshold.push_back(score[order[i]]);
    }
  }
  c.positives = tp;
  c.negatives = fp;
  return c;
}

// At most kMaxCurvePoints indices into [0, n), evenly spaced, always with the first and the last.
std::vector<size_t> CurveIndices(size_t n) {
  std::vector<size_t> idx;
  if (n <= kMaxCurvePoints) {
    idx.resize(n);
    std::iota(idx.begin(), idx.end(), size_t{0});
    return idx;
  }
  for (size_t i = 0; i < kMaxCurvePoints; ++i) idx.push_back(i * (n - 1) / (kMaxCurvePoints - 1));
  return idx;
}

Json RocCurve(const ThresholdCounts& c) {
  // Point 0 is (0, 0) above every score (threshold null, as JSON has no infinity).
  std::vector<double> fpr = {0}, tpr = {0};
  Json thr_all = Json::array({nullptr});
  for (size_t i = 0; i < c.tp.size(); ++i) {
    fpr.push_back(SafeDiv(c.fp[i], c.negatives));
    tpr.push_back(SafeDiv(c.tp[i], c.positives));
    thr_all.push_back(c.threshold[i]);
  }
  Json out = {{"fpr", Json::array()}, {"tpr", Json::array()}, {"threshold", Json::array()}};
  for (size_t i : CurveIndices(fpr.size())) {
    out["fpr"].push_back(fpr[i]);
    out["tpr"].push_back(tpr[i]);
    out["threshold"].push_back(thr_all[i]);
  }
  return out;
}

Json PrCurve(const ThresholdCounts& c) {
  // Point 0 is recall 0 at precision 1 (scikit-learn's convention for the end of the curve).
  std::vector<double> recall = {0}, precision = {1};
  Json thr_all = Json::array({nullptr});
  for (size_t i = 0; i < c.tp.size(); ++i) {
    recall.push_back(SafeDiv(c.tp[i], c.positives));
    precision.push_back(SafeDiv(c.tp[i], c.tp[i] + c.fp[i]));
    thr_all.push_back(c.threshold[i]);
  }
  Json out = {{"recall", Json::array()}, {"precision", Json::array()}, {"threshold", Json::array()}};
  for (size_t i : CurveIndices(recall.size())) {
    out["recall"].push_back(recall[i]);
    out["precision"].push_back(precision[i]);
    out["threshold"].push_back(thr_all[i]);
  }
  return out;
}

double AveragePrecisionFrom(const ThresholdCounts& c) {
  if (c.positives == 0) return std::nan("");
  double ap = 0, prev_recall = 0;
  for (size_t i = 0; i < c.tp.size(); ++i) {
    const double recall = c.tp[i] / c.positives;
    ap += (recall - prev_recall) * (c.tp[i] / (c.tp[i] + c.fp[i]));
    prev_recall = recall;
  }
  return ap;
}

// scikit-learn's calibration_curve(strategy="uniform"): bin b holds p with edge[b] < p <= edge[b+1] (bin 0
// also takes 0), edges at k / kCalibrationBins computed as numpy's linspace does.
Json Calibration(const std::vector<float>& y_true, const std::vector<float>& p) {
  std::vector<double> sum_p(kCalibrationBins, 0), sum_y(kCalibrationBins, 0), count(kCalibrationBins, 0);
  const double step = 1.0 / kCalibrationBins;
  for (size_t i = 0; i < p.size(); ++i) {
    const double v = p[i];
    int b = 0;
    while (b < kCalibrationBins - 1 && static_cast<double>(b + 1) * step < v) ++b;
    sum_p[static_cast<size_t>(b)] += v;
    sum_y[static_cast<size_t>(b)] += y_true[i] > 0.5f ? 1 : 0;
    count[static_cast<size_t>(b)] += 1;
  }
  Json out = {
      {"mean_predicted", Json::array()}, {"fraction_positive", Json::array()}, {"count", Json::array()}};
  for (size_t b = 0; b < count.size(); ++b) {
    if (count[b] == 0) continue;
    out["mean_predicted"].push_back(sum_p[b] / count[b]);
    out["fraction_positive"].push_back(sum_y[b] / count[b]);
    out["count"].push_back(static_cast<int64_t>(count[b]));
  }
  return out;
}

// Cumulative gains and lift by deciles of rows in descending score order (ties by position).
Json Lift(const std::vector<float>& y_true, const std::vector<float>& score) {
  const std::vector<size_t> order = ByScoreDescending(score);
  const size_t n = order.size();
  double positives = 0;
  for (float v : y_true) positives += v > 0.5f ? 1 : 0;
  Json out = {{"fraction", Json::array()}, {"gain", Json::array()}, {"lift", Json::array()}};
  size_t taken = 0;
  double captured = 0;
  for (int d = 1; d <= kLiftBuckets; ++d) {
    const auto end = static_cast<size_t>(std::llround(static_cast<double>(n) * d / kLiftBuckets));
    for (; taken < end; ++taken) captured += y_true[order[taken]] > 0.5f ? 1 : 0;
    const double fraction = static_cast<double>(end) / static_cast<double>(n);
    const double gain = positives > 0 ? captured / positives : std::nan("");
    out["fraction"].push_back(fraction);
    out["gain"].push_back(NumberOrNull(gain));
    out["lift"].push_back(NumberOrNull(fraction > 0 ? gain / fraction : std::nan("")));
  }
  return out;
}

double Quantile(const std::vector<double>& sorted, double q) {
  const double pos = q * static_cast<double>(sorted.size() - 1);
  const auto lo = static_cast<size_t>(std::floor(pos));
  const size_t hi = std::min(lo + 1, sorted.size() - 1);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - static_cast<double>(lo));
}

// numpy.histogram(values, bins=kResidualBins).
Json Histogram(const std::vector<double>& sorted) {
  double lo = sorted.front(), hi = sorted.back();
  if (lo == hi) {
    lo -= 0.5;
    hi += 0.5;
  }
  std::vector<double> edges(kResidualBins + 1);
  const double step = (hi - lo) / kResidualBins;
  for (int i = 0; i <= kResidualBins; ++i) edges[static_cast<size_t>(i)] = static_cast<double>(i) * step + lo;
  edges.back() = hi;
  std::vector<int64_t> counts(kResidualBins, 0);
  for (double v : sorted) {
    auto b = static_cast<int>(std::floor((v - lo) / (hi - lo) * kResidualBins));
    b = std::clamp(b, 0, kResidualBins - 1);
    if (v < edges[static_cast<size_t>(b)] && b > 0) --b;
    if (b < kResidualBins - 1 && v >= edges[static_cast<size_t>(b) + 1]) ++b;
    ++counts[static_cast<size_t>(b)];
  }
  return {{"edges", edges}, {"counts", counts}};
}

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

double AveragePrecision(const std::vector<float>& y_true, const std::vector<float>& score) {
  return AveragePrecisionFrom(CountByThreshold(y_true, score));
}

Result<Json> BinaryMetrics(const std::vector<float>& y_true, const std::vector<float>& p, Json* plots) {
  if (y_true.size() != p.size())
    return Status::InvalidArgument("metrics: label and prediction counts differ");
  if (y_true.empty()) return Status::InvalidArgument("metrics: no rows to evaluate");
  double tp = 0, fp = 0, tn = 0, fn = 0, ll = 0;
  for (size_t i = 0; i < p.size(); ++i) {
    const bool actual = y_true[i] > 0.5f;
    const bool predicted = p[i] >= 0.5f;
    if (actual && predicted)
      tp += 1;
    else if (actual)
      fn += 1;
    else if (predicted)
      fp += 1;
    else
      tn += 1;
    const double q = Clip(p[i]);
    ll -= actual ? std::log(q) : std::log(1.0 - q);
  }
  const double n = static_cast<double>(p.size());
  const double precision = SafeDiv(tp, tp + fp);
  const double recall = SafeDiv(tp, tp + fn);
  // Mean recall over the classes present in the truth.
  double recall_sum = 0, present = 0;
  if (tp + fn > 0) recall_sum += recall, present += 1;
  if (tn + fp > 0) recall_sum += tn / (tn + fp), present += 1;
  const ThresholdCounts counts = CountByThreshold(y_true, p);
  if (plots != nullptr) {
    *plots = {{"roc_curve", RocCurve(counts)},
              {"pr_curve", PrCurve(counts)},
              {"calibration", Calibration(y_true, p)},
              {"lift", Lift(y_true, p)}};
  }
  return Json{{"accuracy", (tp + tn) / n},
              {"balanced_accuracy", recall_sum / present},
              {"precision", precision},
              {"recall", recall},
              {"f1", F1(precision, recall)},
              {"roc_auc", NumberOrNull(RocAuc(y_true, p))},
              {"pr_auc", NumberOrNull(AveragePrecisionFrom(counts))},
              {"log_loss", ll / n},
              {"confusion_matrix",
               {{static_cast<int64_t>(tn), static_cast<int64_t>(fp)},
                {static_cast<int64_t>(fn), static_cast<int64_t>(tp)}}},
              {"rows", p.size()}};
}

Result<Json> MulticlassMetrics(const std::vector<float>& y_true, const std::vector<float>& probs,
                               int num_classes, Json* plots) {
  if (num_classes < 2) return Status::InvalidArgument("metrics: need at least two classes");
  const auto k = static_cast<size_t>(num_classes);
  if (probs.size() != y_true.size() * k)
    return Status::InvalidArgument("metrics: label and prediction counts differ");
  if (y_true.empty()) return Status::InvalidArgument("metrics: no rows to evaluate");
  std::vector<double> tp(k, 0), fp(k, 0), support(k, 0), predicted_count(k, 0);
  const bool with_matrix = k <= kMaxConfusionClasses;
  std::vector<std::vector<int64_t>> confusion(with_matrix ? k : 0,
                                              std::vector<int64_t>(with_matrix ? k : 0, 0));
  double correct = 0, ll = 0;
  for (size_t i = 0; i < y_true.size(); ++i) {
    const float* row = &probs[i * k];
    if (y_true[i] < 0 || static_cast<size_t>(y_true[i]) >= k) {
      return Status::InvalidArgument("metrics: class index out of range");
    }
    const auto actual = static_cast<size_t>(y_true[i]);
    const auto predicted = static_cast<size_t>(std::max_element(row, row + k) - row);
    support[actual] += 1;
    predicted_count[predicted] += 1;
    if (with_matrix) ++confusion[actual][predicted];
    if (predicted == actual) {
      correct += 1;
      tp[actual] += 1;
    } else {
      fp[predicted] += 1;
    }
    ll -= std::log(Clip(row[actual]));
  }
  const double n = static_cast<double>(y_true.size());
  // Averages over the classes present in the truth or the predictions (scikit-learn's unique_labels).
  double labels = 0, in_truth = 0;
  double macro_p = 0, macro_r = 0, macro_f = 0, weighted_p = 0, weighted_r = 0, weighted_f = 0,
         recall_sum = 0;
  double auc_sum = 0, auc_classes = 0, ap_sum = 0, ap_classes = 0;
  std::vector<float> is_class(y_true.size()), score(y_true.size());
  for (size_t c = 0; c < k; ++c) {
    if (support[c] == 0 && predicted_count[c] == 0) continue;
    labels += 1;
    const double precision = SafeDiv(tp[c], tp[c] + fp[c]);
    const double recall = SafeDiv(tp[c], support[c]);
    const double f1 = F1(precision, recall);
    macro_p += precision;
    macro_r += recall;
    macro_f += f1;
    weighted_p += precision * support[c];
    weighted_r += recall * support[c];
    weighted_f += f1 * support[c];
    if (support[c] > 0) {
      in_truth += 1;
      recall_sum += recall;
    }
    if (support[c] == 0) continue;
    for (size_t i = 0; i < y_true.size(); ++i) {
      is_class[i] = static_cast<size_t>(y_true[i]) == c ? 1.0f : 0.0f;
      score[i] = probs[i * k + c];
    }
    const double auc = RocAuc(is_class, score);
    if (std::isfinite(auc)) auc_sum += auc, auc_classes += 1;
    const double ap = AveragePrecision(is_class, score);
    if (std::isfinite(ap)) ap_sum += ap, ap_classes += 1;
  }
  const double accuracy = correct / n;
  Json out = {{"accuracy", accuracy},
              {"balanced_accuracy", recall_sum / in_truth},
              {"macro_precision", macro_p / labels},
              {"macro_recall", macro_r / labels},
              {"macro_f1", macro_f / labels},
              {"micro_precision", accuracy},
              {"micro_recall", accuracy},
              {"micro_f1", accuracy},
              {"weighted_precision", weighted_p / n},
              {"weighted_recall", weighted_r / n},
              {"weighted_f1", weighted_f / n},
              {"roc_auc", auc_classes > 0 ? Json(auc_sum / auc_classes) : Json(nullptr)},
              {"pr_auc", ap_classes > 0 ? Json(ap_sum / ap_classes) : Json(nullptr)},
              {"log_loss", ll / n},
              {"rows", y_true.size()}};
  if (with_matrix) out["confusion_matrix"] = confusion;
  if (plots != nullptr) *plots = Json::object();
  return out;
}

Result<Json> RegressionMetrics(const std::vector<float>& y_true, const std::vector<float>& y_pred,
                               Json* plots) {
  if (y_true.size() != y_pred.size())
    return Status::InvalidArgument("metrics: label and prediction counts differ");
  if (y_true.empty()) return Status::InvalidArgument("metrics: no rows to evaluate");
  const double n = static_cast<double>(y_true.size());
  double mean = 0;
  for (float v : y_true) mean += v;
  mean /= n;
  double sse = 0, sae = 0, sst = 0, sape = 0, ape_rows = 0, residual_sum = 0;
  std::vector<double> residuals(y_true.size());
  for (size_t i = 0; i < y_true.size(); ++i) {
    const double truth = y_true[i];
    const double e = truth - static_cast<double>(y_pred[i]);
    residuals[i] = e;
    residual_sum += e;
    sse += e * e;
    sae += std::fabs(e);
    if (truth != 0) {
      sape += std::fabs(e) / std::fabs(truth);
      ape_rows += 1;
    }
    const double d = truth - mean;
    sst += d * d;
  }
  if (plots != nullptr) {
    std::sort(residuals.begin(), residuals.end());
    *plots = {{"residuals",
               {{"quantiles",
                 {{"min", residuals.front()},
                  {"p05", Quantile(residuals, 0.05)},
                  {"p25", Quantile(residuals, 0.25)},
                  {"p50", Quantile(residuals, 0.5)},
                  {"p75", Quantile(residuals, 0.75)},
                  {"p95", Quantile(residuals, 0.95)},
                  {"max", residuals.back()}}},
                {"mean", residual_sum / n},
                {"histogram", Histogram(residuals)}}}};
  }
  return Json{{"rmse", std::sqrt(sse / n)},
              {"mae", sae / n},
              {"mape", ape_rows > 0 ? Json(sape / ape_rows) : Json(nullptr)},
              {"mape_rows", static_cast<int64_t>(ape_rows)},
              {"r2", sst == 0 ? Json(nullptr) : Json(1.0 - sse / sst)},
              {"rows", y_true.size()}};
}

Result<Json> RankingMetrics(const std::vector<float>& y_true, const std::vector<float>& score,
                            const std::vector<int64_t>& query, Json* plots) {
  if (y_true.size() != score.size() || y_true.size() != query.size()) {
    return Status::InvalidArgument("metrics: label, score and query counts differ");
  }
  if (y_true.empty()) return Status::InvalidArgument("metrics: no rows to evaluate");
  // Rows grouped by query, each query's rows by descending score (ties: ascending relevance).
  std::vector<size_t> order(y_true.size());
  std::iota(order.begin(), order.end(), size_t{0});
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    if (query[a] != query[b]) return query[a] < query[b];
    if (score[a] != score[b]) return score[a] > score[b];
    if (y_true[a] != y_true[b]) return y_true[a] < y_true[b];
    return a < b;
  });
  constexpr int kCurveMax = 20;
  auto gain = [](double rel) { return std::exp2(rel) - 1.0; };
  double sum_5 = 0, sum_10 = 0, sum_all = 0, sum_ap = 0;
  std::vector<double> sum_at(kCurveMax, 0.0);
  int64_t queries = 0, scored = 0;
  std::vector<double> rel, ideal;
  for (size_t begin = 0; begin < order.size();) {
    size_t end = begin;
    while (end < order.size() && query[order[end]] == query[order[begin]]) ++end;
    ++queries;
    rel.clear();
    for (size_t i = begin; i < end; ++i) rel.push_back(y_true[order[i]]);
    begin = end;
    ideal = rel;
    std::sort(ideal.begin(), ideal.end(), std::greater<>());
    if (ideal.empty() || !(ideal[0] > 0)) continue;  // no relevant row: NDCG and AP are undefined
    ++scored;
    auto ndcg = [&](size_t k) {
      double dcg = 0, idcg = 0;
      for (size_t i = 0; i < std::min(k, rel.size()); ++i) {
        const double discount = 1.0 / std::log2(static_cast<double>(i) + 2.0);
        dcg += gain(rel[i]) * discount;
        idcg += gain(ideal[i]) * discount;
      }
      return idcg > 0 ? dcg / idcg : 0.0;
    };
    sum_5 += ndcg(5);
    sum_10 += ndcg(10);
    sum_all += ndcg(rel.size());
    for (int k = 1; k <= kCurveMax; ++k) sum_at[static_cast<size_t>(k - 1)] += ndcg(static_cast<size_t>(k));
    double hits = 0, ap = 0;
    for (size_t i = 0; i < rel.size(); ++i) {
      if (rel[i] > 0) ap += ++hits / static_cast<double>(i + 1);
    }
    sum_ap += ap / hits;
  }
  auto mean = [&](double sum) { return scored > 0 ? Json(sum / static_cast<double>(scored)) : Json(nullptr); };
  if (plots != nullptr) {
    Json ks = Json::array(), values = Json::array();
    for (int k = 1; k <= kCurveMax; ++k) {
      ks.push_back(k);
      values.push_back(mean(sum_at[static_cast<size_t>(k - 1)]));
    }
    (*plots)["ndcg_at_k"] = {{"k", std::move(ks)}, {"ndcg", std::move(values)}};
  }
  return Json{{"ndcg_at_5", mean(sum_5)},
              {"ndcg_at_10", mean(sum_10)},
              {"ndcg", mean(sum_all)},
              {"map", mean(sum_ap)},
              {"queries", queries},
              {"queries_without_relevant", queries - scored},
              {"rows", y_true.size()}};
}

}  // namespace lathe::ml
