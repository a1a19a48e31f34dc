#include "ml/unsupervised.h"

#include <Eigen/Dense>
#include <algorithm>
#include <cmath>
#include <limits>
#include <new>
#include <numeric>
#include <optional>
#include <random>
#include <string>
#include <utility>

namespace lathe::ml {
namespace {

using Rng = std::mt19937_64;

constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr int kMaxInit = 100;
constexpr int kMaxIter = 10000;
constexpr int kMaxTrees = 5000;
constexpr int kMaxSampleSize = 1000000;
constexpr double kEulerGamma = 0.5772156649015329;

// ---- errors and messages

Status Bad(const char* who, const std::string& what) {
  return Status::InvalidArgument(std::string(who) + ": " + what);
}

std::string Num(double v) {
  if (std::isnan(v)) return "nan";
  if (!std::isfinite(v)) return v > 0 ? "inf" : "-inf";
  return Json(v).dump();
}

template <class T>
std::string Str(T v) {
  return std::to_string(v);
}

// "<name> must be between <lo> and <hi>, got <v>"
Status OutOfRange(const char* who, const std::string& name, long long lo, long long hi, long long v) {
  return Bad(who, name + " must be between " + Str(lo) + " and " + Str(hi) + ", got " + Str(v));
}

Status CheckRows(const char* who, const double* rows, size_t n, size_t d, size_t min_rows) {
  if (d < 1 || d > kUnsupervisedMaxDim) {
    return Bad(
        who, "the number of columns d must be between 1 and " + Str(kUnsupervisedMaxDim) + ", got " + Str(d));
  }
  if (n < min_rows)
    return Bad(who, "the number of rows n must be at least " + Str(min_rows) + ", got " + Str(n));
  if (rows == nullptr) return Bad(who, "rows is null");
  for (size_t i = 0; i < n; ++i) {
    for (size_t j = 0; j < d; ++j) {
      const double v = rows[i * d + j];
      if (!std::isfinite(v)) {
        return Bad(who, "rows must be finite: row " + Str(i) + ", column " + Str(j) + " is " + Num(v));
      }
    }
  }
  return Status::Ok();
}

Status OutOfMemory(const char* who) {
  return Status::ResourceExhausted(std::string(who) + ": out of memory");
}

// ---- seeded randomness: our own mapping of mt19937_64 output, identical under every standard library

double Uniform01(Rng& rng) { return static_cast<double>(rng() >> 11) * 0x1.0p-53; }  // [0, 1)

// Uniform in [0, m), m >= 1, without modulo bias.
uint64_t Below(Rng& rng, uint64_t m) {
  const uint64_t reject_below = (0 - m) % m;  // 2^64 mod m
  uint64_t r = rng();
  while (r < reject_below) r = rng();
  return r % m;
}

// Makes perm[0..m) a uniform sample without replacement of perm's entries (partial Fisher–Yates; perm stays a
// permutation, so it can be reused for the next sample).
void PartialShuffle(std::vector<size_t>& perm, size_t m, Rng& rng) {
  for (size_t i = 0; i < m; ++i) std::swap(perm[i], perm[i + Below(rng, perm.size() - i)]);
}

// ---- distances

double SquaredDistance(const double* a, const double* b, size_t d) {
  double s = 0;
  for (size_t j = 0; j < d; ++j) {
    const double diff = a[j] - b[j];
    s += diff * diff;
  }
  return s;
}

// acc[i] = squared distance from x to point i of a d x m transposed ("column per point") matrix. Each sum
// runs over the features in order, exactly like SquaredDistance; the inner loop over points vectorizes.
void SquaredDistancesT(const double* x, const double* pts_t, size_t d, size_t m, double* __restrict acc) {
  std::fill(acc, acc + m, 0.0);
  for (size_t j = 0; j < d; ++j) {
    const double xj = x[j];
    const double* __restrict col = pts_t + j * m;
    for (size_t i = 0; i < m; ++i) {
      const double diff = xj - col[i];
      acc[i] += diff * diff;
    }
  }
}

// Index of the smallest value (the lowest on ties).
size_t ArgMin(const double* v, size_t m) {
  size_t best = 0;
  for (size_t i = 1; i < m; ++i) {
    if (v[i] < v[best]) best = i;
  }
  return best;
}

// m x d row-major -> d x m.
void TransposeInto(const double* a, size_t m, size_t d, std::vector<double>* out) {
  out->resize(m * d);
  for (size_t i = 0; i < m; ++i) {
    for (size_t j = 0; j < d; ++j) (*out)[j * m + i] = a[i * d + j];
  }
}

// ---- k-means

Status CheckKMeansOptions(const KMeansOptions& o, size_t n) {
  const char* who = "k-means";
  if (o.n_clusters < 2 || o.n_clusters > kKMeansMaxClusters) {
    return OutOfRange(who, "n_clusters", 2, kKMeansMaxClusters, o.n_clusters);
  }
  if (static_cast<size_t>(o.n_clusters) > n) {
    return Bad(who, "n_clusters (" + Str(o.n_clusters) + ") exceeds the number of rows (" + Str(n) + ")");
  }
  if (o.n_init < 1 || o.n_init > kMaxInit) return OutOfRange(who, "n_init", 1, kMaxInit, o.n_init);
  if (o.max_iter < 1 || o.max_iter > kMaxIter) return OutOfRange(who, "max_iter", 1, kMaxIter, o.max_iter);
  if (!(o.tol >= 0) || !std::isfinite(o.tol))
    return Bad(who, "tol must be a finite number >= 0, got " + Num(o.tol));
  return Status::Ok();
}

struct KMeansRun {
  std::vector<double> centroids;  // k x d
  std::vector<int> labels;
  double inertia = kInf;
};

class Lloyd {
 public:
  Lloyd(const double* rows, size_t n, size_t d, size_t k, const KMeansOptions& o)
      : rows_(rows), n_(n), d_(d), k_(k), max_iter_(o.max_iter) {
    // sklearn's tolerance: tol x the mean per-feature variance (two passes over the rows in storage order).
    std::vector<double> mean(d, 0.0), var(d, 0.0);
    for (size_t i = 0; i < n; ++i) {
      for (size_t j = 0; j < d; ++j) mean[j] += Row(i)[j];
    }
    for (double& m : mean) m /= static_cast<double>(n);
    for (size_t i = 0; i < n; ++i) {
      for (size_t j = 0; j < d; ++j) var[j] += (Row(i)[j] - mean[j]) * (Row(i)[j] - mean[j]);
    }
    double var_sum = 0;
    for (double v : var) var_sum += v / static_cast<double>(n);
    tol_ = o.tol * var_sum / static_cast<double>(d);
    acc_.resize(k);
  }

  KMeansRun Once(Rng& rng) {
    KMeansRun run;
    run.centroids = PlusPlus(rng);
    std::vector<double>& centers = run.centroids;
    run.labels.assign(n_, -1);
    std::vector<int> previous(n_, -1);
    std::vector<double> d2(n_), sums(k_ * d_);
    std::vector<size_t> counts(k_);
    for (int iter = 0; iter < max_iter_; ++iter) {
      AssignAll(centers, &run.labels, &d2);
      std::fill(sums.begin(), sums.end(), 0.0);
      std::fill(counts.begin(), counts.end(), 0);
      for (size_t i = 0; i < n_; ++i) {
        const auto c = static_cast<size_t>(run.labels[i]);
        ++counts[c];
        double* s = &sums[c * d_];
        const double* x = Row(i);
        for (size_t j = 0; j < d_; ++j) s[j] += x[j];
      }
      RelocateEmpty(d2, &run.labels, &sums, &counts);
      double shift = 0;
      for (size_t c = 0; c < k_; ++c) {
        if (counts[c] == 0) continue;  // unreachable when n >= k; keeps the old centroid
        const auto count = static_cast<double>(counts[c]);
        for (size_t j = 0; j < d_; ++j) {
          const double v = sums[c * d_ + j] / count;
          const double diff = v - centers[c * d_ + j];
          shift += diff * diff;
          centers[c * d_ + j] = v;
        }
      }
      if (run.labels == previous || shift <= tol_) break;
      previous = run.labels;
    }
    // A last assignment, so the labels and the inertia belong to the returned centroids.
    run.inertia = AssignAll(centers, &run.labels, &d2);
    return run;
  }

 private:
  const double* Row(size_t i) const { return rows_ + i * d_; }

  // Labels every row with its nearest centroid, d2 = the squared distance to it; returns their sum.
  double AssignAll(const std::vector<double>& centers, std::vector<int>* labels, std::vector<double>* d2) {
    TransposeInto(centers.data(), k_, d_, &centers_t_);
    double inertia = 0;
    for (size_t i = 0; i < n_; ++i) {
      SquaredDistancesT(Row(i), centers_t_.data(), d_, k_, acc_.data());
      const size_t best = ArgMin(acc_.data(), k_);
      (*labels)[i] = static_cast<int>(best);
      (*d2)[i] = acc_[best];
      inertia += acc_[best];
    }
    return inertia;
  }

  // k-means++ (Arthur & Vassilvitskii 2007) with sklearn's greedy variant: 2 + floor(ln k) candidates drawn
  // by D² sampling per centre, keeping the one that lowers the potential most.
  std::vector<double> PlusPlus(Rng& rng) const {
    std::vector<double> centers(k_ * d_);
    const size_t trials = 2 + static_cast<size_t>(std::log(static_cast<double>(k_)));
    size_t chosen = Below(rng, n_);
    std::copy(Row(chosen), Row(chosen) + d_, centers.begin());
    std::vector<double> closest(n_), candidate(n_), best(n_), cumulative(n_);
    for (size_t i = 0; i < n_; ++i) closest[i] = SquaredDistance(Row(i), Row(chosen), d_);
    for (size_t c = 1; c < k_; ++c) {
      double total = 0;
      size_t last_positive = 0;
      for (size_t i = 0; i < n_; ++i) {
        total += closest[i];
        cumulative[i] = total;
        if (closest[i] > 0) last_positive = i;
      }
      double best_potential = kInf;
      for (size_t t = 0; t < trials; ++t) {
        size_t id;
        if (total > 0) {
          // The first row whose cumulative weight exceeds r: never a row already at distance 0.
          const double r = Uniform01(rng) * total;
          id = static_cast<size_t>(std::upper_bound(cumulative.begin(), cumulative.end(), r) -
                                   cumulative.begin());
          id = std::min(id, last_positive);
        } else {
          id = Below(rng, n_);  // every row sits on a centre already (fewer distinct rows than k)
        }
        double potential = 0;
        for (size_t i = 0; i < n_; ++i) {
          candidate[i] = std::min(closest[i], SquaredDistance(Row(i), Row(id), d_));
          potential += candidate[i];
        }
        if (potential < best_potential) {
          best_potential = potential;
          chosen = id;
          best.swap(candidate);
        }
      }
      closest.swap(best);
      std::copy(Row(chosen), Row(chosen) + d_, centers.begin() + static_cast<std::ptrdiff_t>(c * d_));
    }
    return centers;
  }

  // An empty cluster takes the row farthest from its centroid (ties: the lowest row), from a cluster that
  // keeps at least one row.
  void RelocateEmpty(const std::vector<double>& d2, std::vector<int>* labels, std::vector<double>* sums,
                     std::vector<size_t>* counts) const {
    std::vector<size_t> empty;
    for (size_t c = 0; c < k_; ++c) {
      if ((*counts)[c] == 0) empty.push_back(c);
    }
    if (empty.empty()) return;
    std::vector<size_t> order(n_);
    std::iota(order.begin(), order.end(), size_t{0});
    std::sort(order.begin(), order.end(),
              [&](size_t a, size_t b) { return d2[a] > d2[b] || (d2[a] == d2[b] && a < b); });
    size_t pos = 0;
    for (size_t c : empty) {
      while (pos < n_ && (*counts)[static_cast<size_t>((*labels)[order[pos]])] <= 1) ++pos;
      if (pos == n_) return;
      const size_t i = order[pos++];
      const auto from = static_cast<size_t>((*labels)[i]);
      const double* x = Row(i);
      for (size_t j = 0; j < d_; ++j) {
        (*sums)[from * d_ + j] -= x[j];
        (*sums)[c * d_ + j] = x[j];
      }
      --(*counts)[from];
      (*counts)[c] = 1;
      (*labels)[i] = static_cast<int>(c);
    }
  }

  const double* rows_;
  size_t n_, d_, k_;
  int max_iter_;
  double tol_ = 0;
  std::vector<double> centers_t_, acc_;
};

// ---- JSON reading: every field checked, naming it

const Json* Field(const Json& j, const char* key) {
  auto it = j.find(key);
  return it == j.end() ? nullptr : &*it;
}

Status CheckKind(const char* who, const Json& j, const char* kind) {
  if (!j.is_object()) return Bad(who, "not a JSON object");
  const Json* k = Field(j, "kind");
  if (k == nullptr || !k->is_string() || k->get<std::string>() != kind) {
    return Bad(who, std::string("\"kind\" must be \"") + kind + "\"");
  }
  return Status::Ok();
}

Result<int64_t> ReadInt(const char* who, const Json& v, const std::string& name, int64_t lo, int64_t hi) {
  if (!v.is_number_integer() ||
      (v.is_number_unsigned() &&
       v.get<uint64_t>() > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))) {
    return Bad(who, "\"" + name + "\" must be an integer");
  }
  const auto x = v.get<int64_t>();
  if (x < lo || x > hi) return OutOfRange(who, "\"" + name + "\"", lo, hi, x);
  return x;
}

Result<int64_t> IntField(const char* who, const Json& j, const char* key, int64_t lo, int64_t hi) {
  const Json* v = Field(j, key);
  if (v == nullptr) return Bad(who, std::string("missing \"") + key + "\"");
  return ReadInt(who, *v, std::string(key), lo, hi);
}

Result<double> ReadNumber(const char* who, const Json& v, const std::string& name) {
  if (!v.is_number()) return Bad(who, "\"" + name + "\" must be a number");
  const auto x = v.get<double>();
  if (!std::isfinite(x)) return Bad(who, "\"" + name + "\" must be finite");
  return x;
}

Result<double> NumberField(const char* who, const Json& j, const char* key) {
  const Json* v = Field(j, key);
  if (v == nullptr) return Bad(who, std::string("missing \"") + key + "\"");
  return ReadNumber(who, *v, std::string(key));
}

// An array of `size` finite numbers, appended to *out.
Status ReadNumbers(const char* who, const Json& v, const std::string& name, size_t size,
                   std::vector<double>* out) {
  if (!v.is_array()) return Bad(who, "\"" + name + "\" must be an array");
  if (v.size() != size) {
    return Bad(who, "\"" + name + "\" has " + Str(v.size()) + " values, expected " + Str(size));
  }
  for (const Json& x : v) {
    ASSIGN_OR_RETURN(const double value, ReadNumber(who, x, name));
    out->push_back(value);
  }
  return Status::Ok();
}

Result<std::vector<double>> VectorField(const char* who, const Json& j, const char* key, size_t size) {
  const Json* v = Field(j, key);
  if (v == nullptr) return Bad(who, std::string("missing \"") + key + "\"");
  std::vector<double> out;
  RETURN_IF_ERROR(ReadNumbers(who, *v, key, size, &out));
  return out;
}

// rows arrays of cols numbers -> rows x cols row-major.
Result<std::vector<double>> MatrixField(const char* who, const Json& j, const char* key, size_t rows,
                                        size_t cols) {
  const Json* v = Field(j, key);
  if (v == nullptr) return Bad(who, std::string("missing \"") + key + "\"");
  if (!v->is_array() || v->size() != rows) {
    return Bad(who, std::string("\"") + key + "\" must be an array of " + Str(rows) + " rows");
  }
  std::vector<double> out;
  out.reserve(rows * cols);
  for (size_t r = 0; r < rows; ++r) {
    RETURN_IF_ERROR(ReadNumbers(who, (*v)[r], std::string(key) + "[" + Str(r) + "]", cols, &out));
  }
  return out;
}

Json MatrixJson(const std::vector<double>& a, size_t rows, size_t cols) {
  Json out = Json::array();
  for (size_t r = 0; r < rows; ++r) {
    out.push_back(std::vector<double>(a.begin() + static_cast<std::ptrdiff_t>(r * cols),
                                      a.begin() + static_cast<std::ptrdiff_t>((r + 1) * cols)));
  }
  return out;
}

// ---- clustering metrics

Status CheckLabels(const char* who, const double* rows, size_t n, size_t d, const std::vector<int>& labels,
                   int k) {
  RETURN_IF_ERROR(CheckRows(who, rows, n, d, 2));
  if (k < 2 || k > kKMeansMaxClusters) return OutOfRange(who, "k", 2, kKMeansMaxClusters, k);
  if (labels.size() != n) {
    return Bad(who, "labels has " + Str(labels.size()) + " entries for " + Str(n) + " rows");
  }
  for (size_t i = 0; i < n; ++i) {
    if (labels[i] < 0 || labels[i] >= k) {
      return Bad(who,
                 "labels[" + Str(i) + "] = " + Str(labels[i]) + " is outside [0, k) = [0, " + Str(k) + ")");
    }
  }
  return Status::Ok();
}

// sklearn's rule: the metrics are defined for 2 <= non-empty clusters <= rows - 1.
Status CheckClusterCount(const char* who, size_t present, size_t rows) {
  if (present < 2 || present + 1 > rows) {
    return Status::FailedPrecondition(std::string(who) + ": needs between 2 and " + Str(rows - 1) +
                                      " non-empty clusters among the " + Str(rows) + " rows, got " +
                                      Str(present));
  }
  return Status::Ok();
}

// ---- isolation forest

// c(m): the average path length of an unsuccessful search in a binary search tree of m rows.
double AveragePathLength(size_t m) {
  if (m <= 1) return 0;
  if (m == 2) return 1;
  const auto x = static_cast<double>(m);
  return 2.0 * (std::log(x - 1.0) + kEulerGamma) - 2.0 * (x - 1.0) / x;
}

struct IsolationTreeNodes {
  std::vector<int32_t> feature;
  std::vector<double> value;
  std::vector<int32_t> left;
};

class IsolationTreeBuilder {
 public:
  IsolationTreeBuilder(const double* rows, size_t d, int max_depth, Rng& rng)
      : rows_(rows), d_(d), max_depth_(max_depth), rng_(rng), features_(d) {
    std::iota(features_.begin(), features_.end(), size_t{0});
  }

  // Grows one tree on the rows listed in sample (reordered in place).
  IsolationTreeNodes Build(std::vector<size_t>* sample) {
    idx_ = sample;
    nodes_ = {};
    AddNode();
    Grow(0, 0, sample->size(), 0);
    return std::move(nodes_);
  }

 private:
  size_t AddNode() {
    nodes_.feature.push_back(-1);
    nodes_.value.push_back(0);
    nodes_.left.push_back(-1);
    return nodes_.feature.size() - 1;
  }

  void Grow(size_t node, size_t lo, size_t hi, int depth) {
    std::vector<size_t>& idx = *idx_;
    const size_t m = hi - lo;
    if (m > 1 && depth < max_depth_) {
      // Features in a fresh random order until one varies in this node: a uniform choice among those that do.
      for (size_t t = 0; t < d_; ++t) {
        std::swap(features_[t], features_[t + Below(rng_, d_ - t)]);
        const size_t f = features_[t];
        double min = kInf, max = -kInf;
        for (size_t r = lo; r < hi; ++r) {
          const double v = rows_[idx[r] * d_ + f];
          min = std::min(min, v);
          max = std::max(max, v);
        }
        if (!(min < max)) continue;
        // Clamped so that both sides get a row whatever the rounding: left = {x < split} holds min.
        const double split = std::clamp(min + Uniform01(rng_) * (max - min), std::nextafter(min, max), max);
        size_t mid = lo;
        for (size_t r = lo; r < hi; ++r) {
          if (rows_[idx[r] * d_ + f] < split) std::swap(idx[r], idx[mid++]);
        }
        const size_t left = AddNode();
        AddNode();
        nodes_.feature[node] = static_cast<int32_t>(f);
        nodes_.value[node] = split;
        nodes_.left[node] = static_cast<int32_t>(left);
        Grow(left, lo, mid, depth + 1);
        Grow(left + 1, mid, hi, depth + 1);
        return;
      }
    }
    nodes_.value[node] = AveragePathLength(m);  // a leaf: one row, equal rows, or the depth limit
  }

  const double* rows_;
  size_t d_;
  int max_depth_;
  Rng& rng_;
  std::vector<size_t> features_;
  std::vector<size_t>* idx_ = nullptr;
  IsolationTreeNodes nodes_;
};

// numpy's default ("linear") quantile.
double Quantile(std::vector<double> v, double q) {
  std::sort(v.begin(), v.end());
  const double pos = q * static_cast<double>(v.size() - 1);
  const auto lo = static_cast<size_t>(std::floor(pos));
  const size_t hi = std::min(v.size() - 1, lo + 1);
  return v[lo] + (v[hi] - v[lo]) * (pos - static_cast<double>(lo));
}

}  // namespace

// ================================================================ k-means

void KMeansModel::Transpose() {
  TransposeInto(centroids_.data(), static_cast<size_t>(k_), d_, &centroids_t_);
}

Result<KMeansModel> KMeansModel::Fit(const double* rows, size_t n, size_t d, const KMeansOptions& options) {
  return FitWithLabels(rows, n, d, options, nullptr);
}

Result<KMeansModel> KMeansModel::FitWithLabels(const double* rows, size_t n, size_t d,
                                               const KMeansOptions& options, std::vector<int>* labels) {
  RETURN_IF_ERROR(CheckRows("k-means", rows, n, d, 2));
  RETURN_IF_ERROR(CheckKMeansOptions(options, n));
  try {
    const auto k = static_cast<size_t>(options.n_clusters);
    Lloyd lloyd(rows, n, d, k, options);
    Rng rng(options.seed);
    KMeansRun best;
    for (int r = 0; r < options.n_init; ++r) {
      KMeansRun run = lloyd.Once(rng);
      if (run.inertia < best.inertia || best.centroids.empty()) best = std::move(run);
    }
    KMeansModel m;
    m.k_ = options.n_clusters;
    m.d_ = d;
    m.inertia_ = best.inertia;
    m.centroids_ = std::move(best.centroids);
    m.Transpose();
    if (labels != nullptr) *labels = std::move(best.labels);
    return m;
  } catch (const std::bad_alloc&) {
    return OutOfMemory("k-means");
  }
}

Result<KMeansModel> KMeansModel::FitAuto(const double* rows, size_t n, size_t d, int k_min, int k_max,
                                         const KMeansOptions& options, Json* curve) {
  const char* who = "k-means";
  if (k_min < 2 || k_min > kKMeansMaxClusters) return OutOfRange(who, "k_min", 2, kKMeansMaxClusters, k_min);
  if (k_max < k_min || k_max > kKMeansMaxClusters) {
    return Bad(who, "k_max must be between k_min (" + Str(k_min) + ") and " + Str(kKMeansMaxClusters) +
                        ", got " + Str(k_max));
  }
  RETURN_IF_ERROR(CheckRows(who, rows, n, d, 2));
  if (static_cast<size_t>(k_max) > n) {
    return Bad(who, "k_max (" + Str(k_max) + ") exceeds the number of rows (" + Str(n) + ")");
  }
  KMeansOptions o = options;
  o.n_clusters = k_min;
  RETURN_IF_ERROR(CheckKMeansOptions(o, n));
  try {
    Json points = Json::array();
    std::optional<KMeansModel> best, first;
    double best_silhouette = -kInf;
    std::vector<int> labels;
    for (int k = k_min; k <= k_max; ++k) {
      o.n_clusters = k;
      ASSIGN_OR_RETURN(KMeansModel model, FitWithLabels(rows, n, d, o, &labels));
      // A metric is undefined (FailedPrecondition) when fewer than two clusters are non-empty; other errors
      // are ours to report.
      Result<double> silhouette = Silhouette(rows, n, d, labels, k, kAutoSilhouetteRows, options.seed);
      Result<double> db = DaviesBouldin(rows, n, d, labels, k);
      for (const Status* st : {&silhouette.status(), &db.status()}) {
        if (!st->ok() && st->code() != StatusCode::kFailedPrecondition) return *st;
      }
      points.push_back({{"k", k},
                        {"inertia", model.inertia()},
                        {"silhouette", silhouette.ok() ? Json(*silhouette) : Json(nullptr)},
                        {"davies_bouldin", db.ok() ? Json(*db) : Json(nullptr)}});
      if (silhouette.ok() && (!best || *silhouette > best_silhouette)) {
        best_silhouette = *silhouette;
        best = model;
      }
      if (!first) first = std::move(model);
    }
    if (curve != nullptr) *curve = std::move(points);
    return best ? std::move(*best) : std::move(*first);
  } catch (const std::bad_alloc&) {
    return OutOfMemory(who);
  }
}

int KMeansModel::Assign(const double* row, double* distance) const {
  const auto k = static_cast<size_t>(k_);
  constexpr size_t kStack = 256;
  double stack[kStack];
  std::vector<double> heap;
  double* acc = stack;
  if (k > kStack) {
    heap.resize(k);
    acc = heap.data();
  }
  SquaredDistancesT(row, centroids_t_.data(), d_, k, acc);
  const size_t best = ArgMin(acc, k);
  if (distance != nullptr) *distance = std::sqrt(acc[best]);
  return static_cast<int>(best);
}

Json KMeansModel::ToJson() const {
  return {{"kind", "kmeans"},
          {"dim", d_},
          {"n_clusters", k_},
          {"inertia", inertia_},
          {"centroids", MatrixJson(centroids_, static_cast<size_t>(k_), d_)}};
}

Result<KMeansModel> KMeansModel::FromJson(const Json& j) {
  const char* who = "k-means model";
  try {
    RETURN_IF_ERROR(CheckKind(who, j, "kmeans"));
    KMeansModel m;
    ASSIGN_OR_RETURN(const int64_t d, IntField(who, j, "dim", 1, static_cast<int64_t>(kUnsupervisedMaxDim)));
    ASSIGN_OR_RETURN(const int64_t k, IntField(who, j, "n_clusters", 2, kKMeansMaxClusters));
    ASSIGN_OR_RETURN(m.inertia_, NumberField(who, j, "inertia"));
    if (m.inertia_ < 0) return Bad(who, "\"inertia\" must be >= 0");
    m.d_ = static_cast<size_t>(d);
    m.k_ = static_cast<int>(k);
    ASSIGN_OR_RETURN(m.centroids_, MatrixField(who, j, "centroids", static_cast<size_t>(k), m.d_));
    m.Transpose();
    return m;
  } catch (const std::bad_alloc&) {
    return OutOfMemory(who);
  } catch (const std::exception& e) {
    return Bad(who, e.what());
  }
}

// ================================================================ PCA

Result<PcaModel> PcaModel::Fit(const double* rows, size_t n, size_t d, const PcaOptions& options) {
  const char* who = "pca";
  RETURN_IF_ERROR(CheckRows(who, rows, n, d, 2));
  const size_t max_components = std::min(n, d);
  if (options.n_components < 0 || static_cast<size_t>(options.n_components) > max_components) {
    return Bad(who, "n_components must be between 0 (choose by variance_target) and min(n, d) = " +
                        Str(max_components) + ", got " + Str(options.n_components));
  }
  if (!(options.variance_target > 0 && options.variance_target <= 1)) {
    return Bad(who, "variance_target must be in (0, 1], got " + Num(options.variance_target));
  }
  try {
    using Eigen::Index;
    PcaModel m;
    m.d_ = d;
    m.mean_.assign(d, 0.0);
    for (size_t i = 0; i < n; ++i) {
      for (size_t j = 0; j < d; ++j) m.mean_[j] += rows[i * d + j];
    }
    for (double& v : m.mean_) v /= static_cast<double>(n);
    // Covariance (lower triangle) from blocks of centred rows: O(d²) memory whatever n.
    const auto D = static_cast<Index>(d);
    Eigen::MatrixXd cov = Eigen::MatrixXd::Zero(D, D);
    constexpr size_t kBlock = 256;
    Eigen::MatrixXd block;
    for (size_t start = 0; start < n; start += kBlock) {
      const size_t b = std::min(kBlock, n - start);
      block.resize(static_cast<Index>(b), D);
      for (size_t i = 0; i < b; ++i) {
        for (size_t j = 0; j < d; ++j) {
          block(static_cast<Index>(i), static_cast<Index>(j)) = rows[(start + i) * d + j] - m.mean_[j];
        }
      }
      cov.selfadjointView<Eigen::Lower>().rankUpdate(block.transpose());
    }
    cov /= static_cast<double>(n - 1);
    Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> solver(cov);  // reads the lower triangle
    if (solver.info() != Eigen::Success)
      return Status::FailedPrecondition("pca: the eigen-decomposition failed");
    std::vector<double> eig(d);  // descending, rounding noise below 0 clamped
    for (size_t c = 0; c < d; ++c)
      eig[c] = std::max(0.0, solver.eigenvalues()(D - 1 - static_cast<Index>(c)));
    double total = 0;
    for (double v : eig) total += v;
    if (!(total > 0)) return Status::FailedPrecondition("pca: the rows have no variance");
    size_t p = static_cast<size_t>(options.n_components);
    if (p == 0) {
      p = max_components;
      double cumulative = 0;
      for (size_t c = 0; c < max_components; ++c) {
        cumulative += eig[c] / total;
        if (cumulative >= options.variance_target - 1e-12) {
          p = c + 1;
          break;
        }
      }
    }
    m.components_.resize(p * d);
    m.explained_variance_.resize(p);
    m.explained_variance_ratio_.resize(p);
    for (size_t c = 0; c < p; ++c) {
      const auto v = solver.eigenvectors().col(D - 1 - static_cast<Index>(c));
      Index top = 0;
      for (Index j = 1; j < D; ++j) {
        if (std::fabs(v(j)) > std::fabs(v(top))) top = j;
      }
      const double sign = v(top) < 0 ? -1.0 : 1.0;
      for (size_t j = 0; j < d; ++j) m.components_[c * d + j] = sign * v(static_cast<Index>(j));
      m.explained_variance_[c] = eig[c];
      m.explained_variance_ratio_[c] = eig[c] / total;
    }
    return m;
  } catch (const std::bad_alloc&) {
    return OutOfMemory(who);
  }
}

void PcaModel::Transform(const double* row, double* out) const {
  const size_t p = explained_variance_.size();
  for (size_t c = 0; c < p; ++c) {
    const double* comp = &components_[c * d_];
    double s = 0;
    for (size_t j = 0; j < d_; ++j) s += (row[j] - mean_[j]) * comp[j];
    out[c] = s;
  }
}

double PcaModel::ReconstructionError(const double* row) const {
  const size_t p = explained_variance_.size();
  std::vector<double> coef(p);
  Transform(row, coef.data());
  double err = 0;
  for (size_t j = 0; j < d_; ++j) {
    double r = row[j] - mean_[j];
    for (size_t c = 0; c < p; ++c) r -= coef[c] * components_[c * d_ + j];
    err += r * r;
  }
  return err;
}

Json PcaModel::ToJson() const {
  const size_t p = explained_variance_.size();
  return {{"kind", "pca"},
          {"dim", d_},
          {"n_components", p},
          {"mean", mean_},
          {"components", MatrixJson(components_, p, d_)},
          {"explained_variance", explained_variance_},
          {"explained_variance_ratio", explained_variance_ratio_}};
}

Result<PcaModel> PcaModel::FromJson(const Json& j) {
  const char* who = "pca model";
  try {
    RETURN_IF_ERROR(CheckKind(who, j, "pca"));
    PcaModel m;
    ASSIGN_OR_RETURN(const int64_t d, IntField(who, j, "dim", 1, static_cast<int64_t>(kUnsupervisedMaxDim)));
    ASSIGN_OR_RETURN(const int64_t p, IntField(who, j, "n_components", 1, d));
    m.d_ = static_cast<size_t>(d);
    const auto np = static_cast<size_t>(p);
    ASSIGN_OR_RETURN(m.mean_, VectorField(who, j, "mean", m.d_));
    ASSIGN_OR_RETURN(m.components_, MatrixField(who, j, "components", np, m.d_));
    ASSIGN_OR_RETURN(m.explained_variance_, VectorField(who, j, "explained_variance", np));
    ASSIGN_OR_RETURN(m.explained_variance_ratio_, VectorField(who, j, "explained_variance_ratio", np));
    double ratio_sum = 0;
    for (size_t c = 0; c < np; ++c) {
      const double var = m.explained_variance_[c], ratio = m.explained_variance_ratio_[c];
      if (var < 0) return Bad(who, "\"explained_variance\" must be >= 0");
      if (ratio < 0 || ratio > 1) return Bad(who, "\"explained_variance_ratio\" must be in [0, 1]");
      if (c > 0 && (var > m.explained_variance_[c - 1] || ratio > m.explained_variance_ratio_[c - 1])) {
        return Bad(who, "the explained variances must be in descending order");
      }
      ratio_sum += ratio;
      double norm = 0;
      for (size_t k = 0; k < m.d_; ++k) norm += m.components_[c * m.d_ + k] * m.components_[c * m.d_ + k];
      if (std::fabs(std::sqrt(norm) - 1) > 1e-6)
        return Bad(who, "component " + Str(c) + " is not a unit vector");
    }
    if (ratio_sum > 1 + 1e-9) return Bad(who, "\"explained_variance_ratio\" sums to more than 1");
    return m;
  } catch (const std::bad_alloc&) {
    return OutOfMemory(who);
  } catch (const std::exception& e) {
    return Bad(who, e.what());
  }
}

// ================================================================ isolation forest

Result<IsolationForest> IsolationForest::Fit(const double* rows, size_t n, size_t d,
                                             const IsolationForestOptions& options) {
  const char* who = "isolation forest";
  RETURN_IF_ERROR(CheckRows(who, rows, n, d, 2));
  if (options.n_trees < 1 || options.n_trees > kMaxTrees)
    return OutOfRange(who, "n_trees", 1, kMaxTrees, options.n_trees);
  if (options.sample_size < 2 || options.sample_size > kMaxSampleSize) {
    return OutOfRange(who, "sample_size", 2, kMaxSampleSize, options.sample_size);
  }
  if (!(options.contamination > 0 && options.contamination <= 0.5)) {
    return Bad(who, "contamination must be in (0, 0.5], got " + Num(options.contamination));
  }
  const size_t psi = std::min(static_cast<size_t>(options.sample_size), n);
  if (static_cast<size_t>(options.n_trees) * psi > kIsolationMaxTreeRows) {
    return Bad(who, "n_trees x min(sample_size, n) = " + Str(options.n_trees) + " x " + Str(psi) +
                        " exceeds " + Str(kIsolationMaxTreeRows));
  }
  try {
    IsolationForest forest;
    forest.d_ = d;
    forest.psi_ = static_cast<int>(psi);
    forest.c_psi_ = AveragePathLength(psi);
    int max_depth = 0;  // ceil(log2(psi))
    while ((size_t{1} << max_depth) < psi) ++max_depth;
    Rng rng(options.seed);
    IsolationTreeBuilder builder(rows, d, max_depth, rng);
    std::vector<size_t> perm(n), sample(psi);
    std::iota(perm.begin(), perm.end(), size_t{0});
    forest.trees_.reserve(static_cast<size_t>(options.n_trees));
    for (int t = 0; t < options.n_trees; ++t) {
      PartialShuffle(perm, psi, rng);
      std::copy(perm.begin(), perm.begin() + static_cast<std::ptrdiff_t>(psi), sample.begin());
      IsolationTreeNodes nodes = builder.Build(&sample);
      forest.trees_.push_back({std::move(nodes.feature), std::move(nodes.value), std::move(nodes.left)});
    }
    std::vector<double> scores(n);
    for (size_t i = 0; i < n; ++i) scores[i] = forest.Score(rows + i * d);
    forest.threshold_ = Quantile(std::move(scores), 1.0 - options.contamination);
    return forest;
  } catch (const std::bad_alloc&) {
    return OutOfMemory(who);
  }
}

double IsolationForest::PathLength(const Tree& tree, const double* row) const {
  size_t node = 0;
  int depth = 0;
  while (tree.feature[node] >= 0) {
    const auto left = static_cast<size_t>(tree.left[node]);
    node = row[static_cast<size_t>(tree.feature[node])] < tree.value[node] ? left : left + 1;
    ++depth;
  }
  return depth + tree.value[node];
}

double IsolationForest::Score(const double* row) const {
  double total = 0;
  for (const Tree& tree : trees_) total += PathLength(tree, row);
  return std::exp2(-(total / static_cast<double>(trees_.size())) / c_psi_);
}

Json IsolationForest::ToJson() const {
  Json trees = Json::array();
  for (const Tree& t : trees_)
    trees.push_back({{"feature", t.feature}, {"value", t.value}, {"left", t.left}});
  return {{"kind", "isolation_forest"},
          {"dim", d_},
          {"sample_size", psi_},
          {"threshold", threshold_},
          {"trees", std::move(trees)}};
}

Result<IsolationForest> IsolationForest::FromJson(const Json& j) {
  const char* who = "isolation forest model";
  try {
    RETURN_IF_ERROR(CheckKind(who, j, "isolation_forest"));
    IsolationForest f;
    ASSIGN_OR_RETURN(const int64_t d, IntField(who, j, "dim", 1, static_cast<int64_t>(kUnsupervisedMaxDim)));
    ASSIGN_OR_RETURN(const int64_t psi, IntField(who, j, "sample_size", 2, kMaxSampleSize));
    ASSIGN_OR_RETURN(f.threshold_, NumberField(who, j, "threshold"));
    if (f.threshold_ < 0 || f.threshold_ > 1) return Bad(who, "\"threshold\" must be in [0, 1]");
    f.d_ = static_cast<size_t>(d);
    f.psi_ = static_cast<int>(psi);
    f.c_psi_ = AveragePathLength(static_cast<size_t>(psi));
    const Json* trees = Field(j, "trees");
    if (trees == nullptr || !trees->is_array() || trees->empty() ||
        trees->size() > static_cast<size_t>(kMaxTrees)) {
      return Bad(who, "\"trees\" must be an array of 1 to " + Str(kMaxTrees) + " trees");
    }
    const size_t max_nodes = 2 * static_cast<size_t>(psi) - 1;
    for (size_t t = 0; t < trees->size(); ++t) {
      const Json& tj = (*trees)[t];
      const std::string name = "trees[" + Str(t) + "]";
      if (!tj.is_object()) return Bad(who, name + " must be an object");
      const Json *feature = Field(tj, "feature"), *value = Field(tj, "value"), *left = Field(tj, "left");
      if (feature == nullptr || value == nullptr || left == nullptr || !feature->is_array() ||
          !value->is_array() || !left->is_array()) {
        return Bad(who, name + " needs the arrays \"feature\", \"value\" and \"left\"");
      }
      const size_t nodes = feature->size();
      if (nodes < 1 || nodes > max_nodes || value->size() != nodes || left->size() != nodes) {
        return Bad(who, name + ": \"feature\", \"value\" and \"left\" must have the same length, 1 to " +
                            Str(max_nodes) + " nodes");
      }
      Tree tree;
      tree.feature.resize(nodes);
      tree.left.resize(nodes);
      RETURN_IF_ERROR(ReadNumbers(who, *value, name + ".value", nodes, &tree.value));
      for (size_t i = 0; i < nodes; ++i) {
        ASSIGN_OR_RETURN(const int64_t fi, ReadInt(who, (*feature)[i], name + ".feature", -1, d - 1));
        tree.feature[i] = static_cast<int32_t>(fi);
        if (fi >= 0) {
          // Children after their parent: every walk ends at a leaf.
          ASSIGN_OR_RETURN(const int64_t li,
                           ReadInt(who, (*left)[i], name + ".left", static_cast<int64_t>(i) + 1,
                                   static_cast<int64_t>(nodes) - 2));
          tree.left[i] = static_cast<int32_t>(li);
        } else {
          ASSIGN_OR_RETURN(const int64_t li, ReadInt(who, (*left)[i], name + ".left", -1, -1));
          tree.left[i] = static_cast<int32_t>(li);
          if (tree.value[i] < 0) return Bad(who, name + ": a leaf's value must be >= 0");
        }
      }
      f.trees_.push_back(std::move(tree));
    }
    return f;
  } catch (const std::bad_alloc&) {
    return OutOfMemory(who);
  } catch (const std::exception& e) {
    return Bad(who, e.what());
  }
}

// ================================================================ metrics

Result<double> Silhouette(const double* rows, size_t n, size_t d, const std::vector<int>& labels, int k,
                          size_t max_rows, uint64_t seed) {
  const char* who = "silhouette";
  RETURN_IF_ERROR(CheckLabels(who, rows, n, d, labels, k));
  if (max_rows < 2) return Bad(who, "max_rows must be at least 2, got " + Str(max_rows));
  try {
    std::vector<size_t> sample(n);
    std::iota(sample.begin(), sample.end(), size_t{0});
    if (n > max_rows) {
      Rng rng(seed);
      PartialShuffle(sample, max_rows, rng);
      sample.resize(max_rows);
      std::sort(sample.begin(), sample.end());
    }
    const size_t m = sample.size();
    const auto K = static_cast<size_t>(k);
    std::vector<size_t> counts(K, 0);
    std::vector<size_t> lab(m);
    std::vector<double> pts_t(d * m);  // the sample, one column per row
    for (size_t s = 0; s < m; ++s) {
      lab[s] = static_cast<size_t>(labels[sample[s]]);
      ++counts[lab[s]];
      for (size_t j = 0; j < d; ++j) pts_t[j * m + s] = rows[sample[s] * d + j];
    }
    size_t present = 0;
    for (size_t c : counts) present += c > 0 ? 1 : 0;
    RETURN_IF_ERROR(CheckClusterCount(who, present, m));
    std::vector<double> acc(m), sums(K), x(d);
    double total = 0;
    for (size_t a = 0; a < m; ++a) {
      const size_t own = lab[a];
      if (counts[own] == 1) continue;  // a singleton scores 0
      for (size_t j = 0; j < d; ++j) x[j] = pts_t[j * m + a];
      SquaredDistancesT(x.data(), pts_t.data(), d, m, acc.data());
      std::fill(sums.begin(), sums.end(), 0.0);
      for (size_t b = 0; b < m; ++b) sums[lab[b]] += std::sqrt(acc[b]);
      const double intra = sums[own] / static_cast<double>(counts[own] - 1);
      double inter = kInf;
      for (size_t c = 0; c < K; ++c) {
        if (c != own && counts[c] > 0) inter = std::min(inter, sums[c] / static_cast<double>(counts[c]));
      }
      const double denom = std::max(intra, inter);
      if (denom > 0) total += (inter - intra) / denom;  // 0/0 (all rows equal) scores 0, as sklearn
    }
    return total / static_cast<double>(m);
  } catch (const std::bad_alloc&) {
    return OutOfMemory(who);
  }
}

Result<double> DaviesBouldin(const double* rows, size_t n, size_t d, const std::vector<int>& labels, int k) {
  const char* who = "davies-bouldin";
  RETURN_IF_ERROR(CheckLabels(who, rows, n, d, labels, k));
  try {
    const auto K = static_cast<size_t>(k);
    std::vector<size_t> counts(K, 0);
    std::vector<double> centroids(K * d, 0.0);
    for (size_t i = 0; i < n; ++i) {
      const auto c = static_cast<size_t>(labels[i]);
      ++counts[c];
      for (size_t j = 0; j < d; ++j) centroids[c * d + j] += rows[i * d + j];
    }
    std::vector<size_t> present;
    for (size_t c = 0; c < K; ++c) {
      if (counts[c] == 0) continue;
      present.push_back(c);
      for (size_t j = 0; j < d; ++j) centroids[c * d + j] /= static_cast<double>(counts[c]);
    }
    RETURN_IF_ERROR(CheckClusterCount(who, present.size(), n));
    std::vector<double> intra(K, 0.0);  // mean distance of a cluster's rows to its centroid
    for (size_t i = 0; i < n; ++i) {
      const auto c = static_cast<size_t>(labels[i]);
      intra[c] += std::sqrt(SquaredDistance(rows + i * d, &centroids[c * d], d));
    }
    for (size_t c : present) intra[c] /= static_cast<double>(counts[c]);
    const size_t kp = present.size();
    std::vector<double> between(kp * kp, 0.0);  // distances between the present clusters' centroids
    for (size_t a = 0; a < kp; ++a) {
      for (size_t b = a + 1; b < kp; ++b) {
        const double dist =
            std::sqrt(SquaredDistance(&centroids[present[a] * d], &centroids[present[b] * d], d));
        between[a * kp + b] = between[b * kp + a] = dist;
      }
    }
    // sklearn: 0 when every cluster is a point or every centroid coincides (np.allclose(·, 0), atol 1e-8).
    constexpr double kAtol = 1e-8;
    const bool intra_zero =
        std::all_of(present.begin(), present.end(), [&](size_t c) { return std::fabs(intra[c]) <= kAtol; });
    const bool centroids_zero =
        std::all_of(between.begin(), between.end(), [&](double v) { return v <= kAtol; });
    if (intra_zero || centroids_zero) return 0.0;
    double total = 0;
    for (size_t a = 0; a < kp; ++a) {
      double worst = 0;  // coinciding centroids divide by infinity in sklearn: ratio 0
      for (size_t b = 0; b < kp; ++b) {
        const double dist = between[a * kp + b];
        if (dist > 0) worst = std::max(worst, (intra[present[a]] + intra[present[b]]) / dist);
      }
      total += worst;
    }
    return total / static_cast<double>(present.size());
  } catch (const std::bad_alloc&) {
    return OutOfMemory(who);
  }
}

}  // namespace lathe::ml
