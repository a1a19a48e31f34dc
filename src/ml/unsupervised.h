// Unsupervised learning on dense rows: k-means clustering (with a silhouette-driven choice of k), principal
// component analysis, an isolation forest for anomaly scores, and two clustering-quality metrics.
//
// Input: every function takes `rows`, a dense row-major n x d matrix of doubles. The caller has imputed and
// standardized it; values must still be finite — each Fit checks (O(n·d)) and answers kInvalidArgument with
// the row and column otherwise. Sizes are bounded: 1 <= d <= kUnsupervisedMaxDim and
// 2 <= k <= kKMeansMaxClusters.
//
// Determinism: every random choice comes from std::mt19937_64 seeded with `seed`, turned into numbers by our
// own code (no std::*_distribution, whose output differs between standard libraries), and every sum runs in a
// fixed order, so the same inputs and seed give bitwise-identical models (across standard libraries too, as
// long as the compiler does not contract a*b+c into FMA differently).
//
// Algorithms:
//   - KMeans: k-means++ seeding with 2 + floor(ln k) greedy local trials per centre (as sklearn), then Lloyd
//     iterations until the labels stop changing, the squared centre shift summed over centres is <= tol times
//     the mean per-feature variance (sklearn's rule), or max_iter. An empty cluster is re-seeded with the row
//     farthest from its centroid (taken from a cluster of at least two rows). A final assignment step makes
//     the labels and inertia match the returned centroids. The best of n_init restarts (lowest inertia, the
//     earliest on ties) wins. Cost O(n_init · (max_iter + ln k) · n · k · d), single-threaded: n=100k, d=20
//     takes ~0.2 s for k=8 and ~1-2.5 s for k=10 (4 restarts, up to 100 iterations each).
//   - PCA: covariance (divisor n - 1, accumulated in row blocks so memory is O(d²), not O(n·d)) eigen-
//     decomposed with Eigen::SelfAdjointEigenSolver; O(n·d² + d³): ~1 s for n=100k, d=200; ~8 s for n=10k,
//     d=2000; d=4000 takes about a minute.
//   - IsolationForest: Liu, Ting & Zhou (2008), with c(1) = 0 and c(2) = 1 exactly (as sklearn) and
//     c(m) = 2(ln(m-1) + γ) - 2(m-1)/m for m > 2. A row is anomalous when Score(row) > threshold().
//   - Silhouette / DaviesBouldin: sklearn's definitions (clusters absent from the labels are ignored;
//     singleton clusters score 0 in the silhouette; Davies–Bouldin is 0 when all clusters are points or all
//     centroids coincide). Silhouette never builds an n x n matrix: O(m²·d) time and O(m·d + k) memory for a
//     sample of m rows.
//
// Errors: bad options or sizes are kInvalidArgument naming the parameter and its allowed range; FromJson of
// anything malformed (missing keys, wrong sizes, non-finite values) is kInvalidArgument; data a result is not
// defined for (PCA of rows without variance, a clustering metric with fewer than two non-empty clusters) is
// kFailedPrecondition; running out of memory is kResourceExhausted. No exception escapes.
//
// Thread safety: fitted models are immutable; const methods may be called concurrently.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "common/json.h"
#include "common/status.h"

namespace lathe::ml {

inline constexpr size_t kUnsupervisedMaxDim = 4000;  // columns d
inline constexpr int kKMeansMaxClusters = 1000;      // k
inline constexpr size_t kAutoSilhouetteRows = 2000;  // FitAuto's silhouette sample

struct KMeansOptions {
  int n_clusters = 8;  // k, in [2, kKMeansMaxClusters] and <= n
  int n_init = 4;      // restarts with different k-means++ seeds, in [1, 100]; best inertia wins
  int max_iter = 100;  // Lloyd iterations per restart, in [1, 10000]
  // >= 0; stop when centroids move less than tol (relative to the data's variance, like sklearn).
  double tol = 1e-6;
  uint64_t seed = 0;
};

class KMeansModel {
 public:
  static Result<KMeansModel> Fit(const double* rows, size_t n, size_t d, const KMeansOptions& options);
  // Chooses k in [k_min, k_max] (2 <= k_min <= k_max <= min(n, kKMeansMaxClusters)): fits each k with
  // `options` (its n_clusters is ignored), picks the highest silhouette (on a deterministic sample of at most
  // kAutoSilhouetteRows rows, the same sample for every k, seeded by options.seed; ties: the smaller k).
  // *curve (if non-null) gets [{"k":2,"inertia":…,"silhouette":…,"davies_bouldin":…}, …], one entry per k,
  // for the elbow plot; a metric that is undefined for a k (fewer than two non-empty clusters) is null.
  static Result<KMeansModel> FitAuto(const double* rows, size_t n, size_t d, int k_min, int k_max,
                                     const KMeansOptions& options, Json* curve);

  int n_clusters() const { return k_; }
  size_t dim() const { return d_; }
  double inertia() const { return inertia_; }  // sum of squared distances to the nearest centroid (training)
  const std::vector<double>& centroids() const { return centroids_; }  // k x d row-major
  // Index of the nearest centroid (ties: lowest index); *distance (if non-null) = Euclidean distance to it.
  // `row` has dim() values.
  int Assign(const double* row, double* distance) const;

  // {"kind":"kmeans","dim":d,"n_clusters":k,"inertia":…,"centroids":[[d values] x k]}
  Json ToJson() const;
  static Result<KMeansModel> FromJson(const Json& j);  // validates everything (sizes, finiteness)

 private:
  KMeansModel() = default;
  // Fit, also returning the training rows' labels (FitAuto measures them).
  static Result<KMeansModel> FitWithLabels(const double* rows, size_t n, size_t d,
                                           const KMeansOptions& options, std::vector<int>* labels);
  void Transpose();  // centroids_ -> centroids_t_

  int k_ = 0;
  size_t d_ = 0;
  double inertia_ = 0;
  std::vector<double> centroids_;
  std::vector<double> centroids_t_;  // d x k: the layout the distance loop vectorizes over
};

struct PcaOptions {
  int n_components = 0;           // 0 = the fewest components explaining >= variance_target of the variance
  double variance_target = 0.95;  // in (0, 1]; used only when n_components == 0
};

class PcaModel {
 public:
  // Centers the data (no scaling: the caller standardizes), eigen-decomposes the covariance (d x d,
  // Eigen::SelfAdjointEigenSolver) — d <= kUnsupervisedMaxDim, n >= 2. Component signs are made deterministic
  // (the largest-|loading| entry, the first on ties, is positive). n_components must be in [1, min(n, d)], or
  // 0 for the fewest reaching variance_target (cumulative ratio >= target - 1e-12, so 1.0 means "all the
  // variance up to rounding").
  static Result<PcaModel> Fit(const double* rows, size_t n, size_t d, const PcaOptions& options);

  int n_components() const { return static_cast<int>(explained_variance_.size()); }
  size_t dim() const { return d_; }
  const std::vector<double>& mean() const { return mean_; }              // d
  const std::vector<double>& components() const { return components_; }  // n_components x d row-major, unit
  const std::vector<double>& explained_variance() const { return explained_variance_; }  // eigenvalues
  // Per component, descending.
  const std::vector<double>& explained_variance_ratio() const { return explained_variance_ratio_; }
  // out[0..n_components()) = projection of (row - mean) on each component.
  void Transform(const double* row, double* out) const;
  // Reconstruction error of one row: squared distance between the row and its projection back (an anomaly
  // signal).
  double ReconstructionError(const double* row) const;

  // {"kind":"pca","dim":d,"mean":[d],"components":[[d] x p],"explained_variance":[p],
  //  "explained_variance_ratio":[p]}
  Json ToJson() const;
  static Result<PcaModel> FromJson(const Json& j);

 private:
  PcaModel() = default;

  size_t d_ = 0;
  std::vector<double> mean_;
  std::vector<double> components_;
  std::vector<double> explained_variance_;
  std::vector<double> explained_variance_ratio_;
};

inline constexpr size_t kIsolationMaxTreeRows = 10'000'000;  // n_trees x psi at most (memory: ~32 bytes each)

struct IsolationForestOptions {
  int n_trees = 100;      // in [1, 5000]
  int sample_size = 256;  // psi, in [2, 1000000]; min(sample_size, n) rows per tree, drawn without
                          // replacement; n_trees x min(sample_size, n) <= kIsolationMaxTreeRows
  // Expected anomaly share in (0, 0.5]: sets threshold() from the training scores.
  double contamination = 0.1;
  uint64_t seed = 0;
};

class IsolationForest {
 public:
  // Liu, Ting & Zhou (2008): each tree splits a random feature at a uniform random value between the
  // sample's min and max of that feature (rows < value go left), until one row remains, the rows are all
  // equal, or depth reaches ceil(log2(psi)); a leaf with m rows adds c(m) to the path length. Features that
  // are constant in a node's rows are not chosen. n >= 2.
  static Result<IsolationForest> Fit(const double* rows, size_t n, size_t d,
                                     const IsolationForestOptions& options);
  // Anomaly score s = 2^(-E[h(x)] / c(psi)) in (0, 1]: near 1 = anomalous, well below 0.5 = normal.
  double Score(const double* row) const;
  // The (1 - contamination) quantile (linear interpolation, numpy's default) of the training rows' scores;
  // rows scoring above it are the anomalies (sklearn's IsolationForest.predict convention).
  double threshold() const { return threshold_; }
  size_t dim() const { return d_; }
  int n_trees() const { return static_cast<int>(trees_.size()); }
  int sample_size() const { return psi_; }

  // {"kind":"isolation_forest","dim":d,"sample_size":psi,"threshold":…,
  //  "trees":[{"feature":[…],"value":[…],"left":[…]}, …]} — per node: feature (-1 = leaf), split value (or
  // c(m) at a leaf), index of the left child (the right child follows it).
  Json ToJson() const;
  static Result<IsolationForest> FromJson(const Json& j);

 private:
  IsolationForest() = default;

  struct Tree {
    std::vector<int32_t> feature;  // -1 = leaf
    std::vector<double> value;     // split value, or c(leaf size) at a leaf
    std::vector<int32_t> left;     // left child index (> this node's); right child = left + 1
  };
  double PathLength(const Tree& tree, const double* row) const;

  size_t d_ = 0;
  int psi_ = 0;
  double c_psi_ = 1;
  double threshold_ = 0;
  std::vector<Tree> trees_;
};

// Clustering quality. labels.size() == n and labels[i] in [0, k), 2 <= k <= kKMeansMaxClusters, else
// kInvalidArgument. As in sklearn, the number of non-empty clusters (in the sample, for the silhouette) must
// be between 2 and the number of rows - 1, else kFailedPrecondition (the metric is undefined). Rows in
// clusters of size 1 get silhouette 0 (sklearn's convention).
// Silhouette is O(n^2): computed on a deterministic sample of at most max_rows (>= 2) rows (seeded), exact
// when n <= max_rows; the sample is both the rows scored and the rows they are compared with (sklearn's
// silhouette_score(sample_size=…)).
Result<double> Silhouette(const double* rows, size_t n, size_t d, const std::vector<int>& labels, int k,
                          size_t max_rows = 2000, uint64_t seed = 0);
// Davies–Bouldin index (lower is better), with centroids = the mean of each cluster's rows.
Result<double> DaviesBouldin(const double* rows, size_t n, size_t d, const std::vector<int>& labels, int k);

}  // namespace lathe::ml
