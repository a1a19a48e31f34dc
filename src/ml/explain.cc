#include "ml/explain.h"

#include <algorithm>
#include <cmath>
#include <ctime>
#include <limits>
#include <map>
#include <numeric>
#include <random>
#include <vector>

namespace lathe::ml {
namespace {

// [first, end) of each input column's features.
std::vector<std::pair<size_t, size_t>> ColumnRanges(const Predictor& p) {
  const std::vector<size_t> owner = p.FeatureOwners();
  const size_t cols = p.pipeline().inputs().size();
  std::vector<std::pair<size_t, size_t>> ranges(cols, {0, 0});
  for (size_t c = 0; c < cols; ++c) {
    const auto first = static_cast<size_t>(p.pipeline().inputs()[c].first_feature);
    size_t end = first;
    while (end < owner.size() && owner[end] == c) ++end;
    ranges[c] = {first, end};
  }
  return ranges;
}

// Mean loss of predictions against encoded labels: log loss (classification) or RMSE (regression).
double Loss(const Predictor& p, const std::vector<float>& out, const float* y, size_t n) {
  const size_t k = p.OutputWidth();
  constexpr double kEps = 1e-15;
  double sum = 0;
  if (HasNumericTarget(p.pipeline().task())) {
    for (size_t i = 0; i < n; ++i) sum += (out[i] - y[i]) * static_cast<double>(out[i] - y[i]);
    return std::sqrt(sum / static_cast<double>(n));
  }
  for (size_t i = 0; i < n; ++i) {
    double prob;
    if (k == 1) {
      prob = y[i] > 0.5f ? out[i] : 1.0 - out[i];
    } else {
      prob = out[i * k + static_cast<size_t>(y[i])];
    }
    sum -= std::log(std::clamp(prob, kEps, 1.0));
  }
  return sum / static_cast<double>(n);
}

std::string IsoDate(double epoch_seconds) {
  const auto t = static_cast<time_t>(std::llround(epoch_seconds));
  struct tm tm_utc;
  gmtime_r(&t, &tm_utc);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm_utc);
  return buf;
}

// A column's value as a person reads it, from its first encoded feature: the number, the category, the date,
// the boolean; null when missing.
Json ValueJson(const FeaturePipeline::InputColumn& in, float v) {
  if (std::isnan(v)) return nullptr;
  switch (in.type) {
    case ColumnType::kString: {
      const auto code = static_cast<size_t>(v);
      return code < in.categories.size() ? Json(in.categories[code]) : Json("(other)");
    }
    case ColumnType::kBool: return v != 0.0f;
    case ColumnType::kDatetime: return IsoDate(v);
    default: return static_cast<double>(v);
  }
}

}  // namespace

Result<Json> GlobalImportance(const Predictor& p, const float* rows, size_t n, const float* y,
                              const ImportanceOptions& options) {
  if (p.unsupervised()) return Status::FailedPrecondition("importance is defined for supervised models, not " + p.Task());
  if (n == 0) return Status::InvalidArgument("no rows to explain");
  const size_t width = p.NumFeatures(), k = p.OutputWidth();
  const std::vector<std::string> names = p.ContributionColumns();
  const size_t cols = names.size();
  const auto ranges = ColumnRanges(p);

  Json gain = Json::object();
  ASSIGN_OR_RETURN(std::vector<double> g, p.GainImportance());
  const double total = std::accumulate(g.begin(), g.end(), 0.0);
  for (size_t c = 0; c < cols; ++c) gain[names[c]] = total > 0 ? g[c] / total : 0.0;

  std::vector<float> out(n * k);
  p.PredictRows(rows, n, out.data());
  // Ranking scores are only comparable within a query, which a sample of rows does not keep whole: a
  // column's weight there is how far its shuffling moves the scores (mean absolute change).
  const bool ranking = p.pipeline().task() == Task::kRanking;
  const std::vector<float> base = out;
  auto loss = [&]() {
    if (!ranking) return Loss(p, out, y, n);
    double moved = 0;
    for (size_t i = 0; i < n; ++i) moved += std::fabs(static_cast<double>(out[i]) - base[i]);
    return moved / static_cast<double>(n);
  };
  const double baseline = loss();
  std::vector<float> buf(rows, rows + n * width);
  std::vector<size_t> perm(n);
  Json increase = Json::object();
  for (size_t c = 0; c < cols; ++c) {
    const auto [first, end] = ranges[c];
    std::vector<double> deltas;
    for (int r = 0; r < std::max(1, options.repeats); ++r) {
      std::iota(perm.begin(), perm.end(), size_t{0});
      std::mt19937_64 rng(options.seed * 1000003 + c * 101 + static_cast<uint64_t>(r));
      std::shuffle(perm.begin(), perm.end(), rng);
      for (size_t i = 0; i < n; ++i) {
        std::copy(rows + perm[i] * width + first, rows + perm[i] * width + end, buf.data() + i * width + first);
      }
      p.PredictRows(buf.data(), n, out.data());
      deltas.push_back(loss() - baseline);
    }
    for (size_t i = 0; i < n; ++i) {  // restore the column
      std::copy(rows + i * width + first, rows + i * width + end, buf.data() + i * width + first);
    }
    const double mean = std::accumulate(deltas.begin(), deltas.end(), 0.0) / static_cast<double>(deltas.size());
    double var = 0;
    for (double d : deltas) var += (d - mean) * (d - mean);
    increase[names[c]] = {{"mean", mean}, {"std", std::sqrt(var / static_cast<double>(deltas.size()))}};
  }

  ASSIGN_OR_RETURN(std::vector<double> contrib, p.ColumnContributions(rows, n));
  std::vector<double> mean_abs(cols, 0.0);
  for (size_t i = 0; i < n * k; ++i) {
    for (size_t c = 0; c < cols; ++c) mean_abs[c] += std::fabs(contrib[i * (cols + 1) + c]);
  }
  Json shap = Json::object();
  for (size_t c = 0; c < cols; ++c) shap[names[c]] = mean_abs[c] / static_cast<double>(n);
  // The points of a SHAP summary ("beeswarm") plot: for up to kSummaryRows evenly strided rows, each column's
  // value and its SHAP value (summed over classes for multiclass).
  constexpr size_t kSummaryRows = 200;
  const size_t stride = std::max<size_t>(1, (n + kSummaryRows - 1) / kSummaryRows);
  Json summary = Json::object();
  for (size_t c = 0; c < cols; ++c) {
    const auto& in = p.pipeline().inputs()[c];
    Json values = Json::array(), shaps = Json::array();
    for (size_t i = 0; i < n; i += stride) {
      values.push_back(ValueJson(in, rows[i * width + ranges[c].first]));
      double v = 0;
      for (size_t g = 0; g < k; ++g) v += contrib[(i * k + g) * (cols + 1) + c];
      shaps.push_back(v);
    }
    summary[names[c]] = {{"values", std::move(values)}, {"shap", std::move(shaps)}};
  }

  return Json{{"rows", n},
              {"columns", names},
              {"gain", std::move(gain)},
              {"permutation",
               {{"metric", ranking ? "mean_abs_score_change"
                                   : p.pipeline().task() == Task::kRegression ? "rmse" : "log_loss"},
                {"baseline", baseline},
                {"repeats", std::max(1, options.repeats)},
                {"increase", std::move(increase)}}},
              {"shap", std::move(shap)},
              {"shap_summary", std::move(summary)}};
}

Result<Json> PartialDependence(const Predictor& p, const float* rows, size_t n, const std::string& column,
                               int grid) {
  if (p.unsupervised()) {
    return Status::FailedPrecondition("partial dependence is defined for supervised models, not " + p.Task());
  }
  if (n == 0) return Status::InvalidArgument("no rows to compute partial dependence on");
  const int c = p.pipeline().InputIndex(column);
  if (c < 0) {
    return Status::InvalidArgument("column '" + column.substr(0, 80) + "' is not an input of the model")
        .WithDetail(ErrorDetail::Field("columns", "unknown column '" + column.substr(0, 80) + "'"));
  }
  grid = std::clamp(grid, 2, 100);
  const size_t width = p.NumFeatures(), k = p.OutputWidth();
  const auto [first, end] = ColumnRanges(p)[static_cast<size_t>(c)];
  const auto& in = p.pipeline().inputs()[static_cast<size_t>(c)];

  // The grid: slices of the column's features taken from the rows themselves (so a date's parts agree).
  std::vector<std::vector<float>> slices;
  Json values = Json::array();
  std::string kind;
  auto slice_of = [&](size_t row) {
    return std::vector<float>(rows + row * width + first, rows + row * width + end);
  };
  if (in.type == ColumnType::kString) {
    kind = "categorical";
    std::map<float, size_t> counts;
    for (size_t i = 0; i < n; ++i) {
      const float code = rows[i * width + first];
      if (!std::isnan(code)) ++counts[code];
    }
    std::vector<std::pair<size_t, float>> by_count;
    for (const auto& [code, count] : counts) by_count.emplace_back(count, code);
    std::sort(by_count.begin(), by_count.end(), [](const auto& a, const auto& b) {
      return a.first != b.first ? a.first > b.first : a.second < b.second;
    });
    for (size_t i = 0; i < by_count.size() && static_cast<int>(i) < grid; ++i) {
      slices.push_back({by_count[i].second});
      values.push_back(ValueJson(in, by_count[i].second));
    }
  } else if (in.type == ColumnType::kBool) {
    kind = "boolean";
    slices = {{0.0f}, {1.0f}};
    values = {false, true};
  } else {
    kind = in.type == ColumnType::kDatetime ? "datetime" : "numeric";
    std::vector<size_t> present;
    for (size_t i = 0; i < n; ++i) {
      if (!std::isnan(rows[i * width + first])) present.push_back(i);
    }
    std::stable_sort(present.begin(), present.end(),
                     [&](size_t a, size_t b) { return rows[a * width + first] < rows[b * width + first]; });
    float last = std::numeric_limits<float>::quiet_NaN();
    for (int g = 0; g < grid && !present.empty(); ++g) {
      const size_t at = static_cast<size_t>(std::llround(static_cast<double>(g) / (grid - 1) *
                                                         static_cast<double>(present.size() - 1)));
      const float v = rows[present[at] * width + first];
      if (v == last) continue;
      last = v;
      slices.push_back(slice_of(present[at]));
      values.push_back(ValueJson(in, v));
    }
  }
  if (slices.empty()) {
    return Status::InvalidArgument("column '" + column.substr(0, 80) + "' has no values in the rows")
        .WithDetail(ErrorDetail::Field("columns", "no values"));
  }

  std::vector<float> buf(rows, rows + n * width), out(n * k);
  std::vector<std::vector<double>> mean(k, std::vector<double>(slices.size(), 0.0));
  for (size_t s = 0; s < slices.size(); ++s) {
    for (size_t i = 0; i < n; ++i) std::copy(slices[s].begin(), slices[s].end(), buf.data() + i * width + first);
    p.PredictRows(buf.data(), n, out.data());
    for (size_t i = 0; i < n; ++i) {
      for (size_t g = 0; g < k; ++g) mean[g][s] += out[i * k + g];
    }
    for (size_t g = 0; g < k; ++g) mean[g][s] /= static_cast<double>(n);
  }
  Json j = {{"column", column}, {"kind", kind}, {"values", std::move(values)}};
  if (k == 1) {
    j["mean"] = mean[0];
  } else {
    j["mean"] = mean;
    j["classes"] = p.pipeline().label_keys();
  }
  j["rows"] = n;
  return j;
}

}  // namespace lathe::ml
