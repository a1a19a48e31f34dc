#include "ml/unsupervised.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>
#include <limits>
#include <map>
#include <string>
#include <vector>

#include "common/json.h"

// Reference numbers ("sklearn: …") come from scikit-learn 1.2.1 / numpy 1.24.2 (Debian python3-sklearn) run
// on the same data: tests/unit/ml/unsupervised_reference.py builds them with the same LCG as Lcg below, bit for
// bit.

namespace lathe::ml {
namespace {

// Knuth's MMIX LCG; uniforms are its top 53 bits, normals Irwin–Hall (12 uniforms - 6): exact in any IEEE
// arithmetic, so Python reproduces the data bit for bit.
class Lcg {
 public:
  explicit Lcg(uint64_t seed) : s_(seed) {}
  double Uniform() {
    s_ = s_ * 6364136223846793005ULL + 1442695040888963407ULL;
    return static_cast<double>(s_ >> 11) * 0x1.0p-53;
  }
  double Normal() {
    double t = 0;
    for (int i = 0; i < 12; ++i) t += Uniform();
    return t - 6.0;
  }

 private:
  uint64_t s_;
};

constexpr size_t kBlobRows = 120, kBlobDim = 3;

// Three unit-variance blobs around (0,0,0), (10,0,0), (5,8,0); row i belongs to blob i % 3.
std::vector<double> Blobs(std::vector<int>* truth = nullptr) {
  Lcg g(42);
  const double centers[3][3] = {{0, 0, 0}, {10, 0, 0}, {5, 8, 0}};
  std::vector<double> x;
  for (size_t i = 0; i < kBlobRows; ++i) {
    for (size_t j = 0; j < kBlobDim; ++j) x.push_back(centers[i % 3][j] + g.Normal());
    if (truth != nullptr) truth->push_back(static_cast<int>(i % 3));
  }
  return x;
}

constexpr size_t kPcaRows = 40, kPcaDim = 5;

// Five columns driven by three latent factors plus noise.
std::vector<double> Correlated() {
  Lcg g(7);
  std::vector<double> x;
  for (size_t i = 0; i < kPcaRows; ++i) {
    const double z1 = g.Normal(), z2 = g.Normal(), z3 = g.Normal();
    const double e1 = g.Normal(), e2 = g.Normal(), e3 = g.Normal(), e4 = g.Normal();
    for (double v : {2 * z1 + 0.1 * e1, z1 - z2 + 0.1 * e2, 0.5 * z2 + z3, z3 + 0.2 * e3, 0.3 * e4})
      x.push_back(v);
  }
  return x;
}

// 10 rows in 2-D with labels {0, 1, 3, 4} of k = 5: cluster 2 is absent, cluster 4 a singleton.
const std::vector<double> kSmall = {0, 0, 1, 0.5, 0.5, 1.5, 4, 4, 5, 3.5, 4.5, 5, 9, 0, 8, 1, 9.5, 1.5, 3, 9};
const std::vector<int> kSmallLabels = {0, 0, 0, 1, 1, 1, 3, 3, 3, 4};
const std::vector<int> kSmallMixedLabels = {0, 1, 0, 1, 3, 3, 0, 1, 3, 1};  // a poor clustering

std::vector<int> AssignAll(const KMeansModel& m, const std::vector<double>& x) {
  std::vector<int> out;
  for (size_t i = 0; i < x.size() / m.dim(); ++i) out.push_back(m.Assign(&x[i * m.dim()], nullptr));
  return out;
}

double Choose2(double v) { return v * (v - 1) / 2; }

double AdjustedRandIndex(const std::vector<int>& a, const std::vector<int>& b) {
  std::map<std::pair<int, int>, double> both;
  std::map<int, double> ca, cb;
  for (size_t i = 0; i < a.size(); ++i) {
    ++both[{a[i], b[i]}];
    ++ca[a[i]];
    ++cb[b[i]];
  }
  double index = 0, sa = 0, sb = 0;
  for (const auto& [key, v] : both) index += Choose2(v);
  for (const auto& [key, v] : ca) sa += Choose2(v);
  for (const auto& [key, v] : cb) sb += Choose2(v);
  const double expected = sa * sb / Choose2(static_cast<double>(a.size()));
  return (index - expected) / ((sa + sb) / 2 - expected);
}

bool BitwiseEqual(const std::vector<double>& a, const std::vector<double>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(double)) == 0;
}

Json TextRoundTrip(const Json& j) {
  auto parsed = ParseJson(DumpJson(j));
  EXPECT_TRUE(parsed.ok()) << parsed.status().ToString();
  return parsed.ok() ? *parsed : Json();
}

void ExpectInvalid(const Status& st, const std::string& names) {
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument) << st.ToString();
  EXPECT_NE(st.message().find(names), std::string::npos)
      << "'" << st.message() << "' does not name " << names;
}

// Every mutation of a valid model JSON must be refused with kInvalidArgument — never a crash.
template <class Model>
void ExpectRejected(const Json& valid, const std::vector<std::pair<std::string, Json>>& mutations) {
  for (const auto& [pointer, replacement] : mutations) {
    Json j = valid;
    j[Json::json_pointer(pointer)] = replacement;
    auto m = Model::FromJson(j);
    EXPECT_FALSE(m.ok()) << pointer << " = " << DumpJson(replacement);
    if (!m.ok()) {
      EXPECT_EQ(m.status().code(), StatusCode::kInvalidArgument) << m.status().ToString();
    }
  }
  for (const auto& [key, value] : valid.items()) {
    Json j = valid;
    j.erase(key);
    auto m = Model::FromJson(j);
    EXPECT_FALSE(m.ok()) << "without " << key;
    if (!m.ok()) {
      EXPECT_NE(m.status().message().find(key), std::string::npos) << m.status().ToString();
    }
  }
  for (const Json& garbage : {Json(), Json(1), Json("kmeans"), Json::array(), Json::object()}) {
    EXPECT_FALSE(Model::FromJson(garbage).ok()) << DumpJson(garbage);
  }
}

// ---------------------------------------------------------------- k-means

TEST(KMeans, DataMatchesTheReferenceScript) {
  const std::vector<double> x = Blobs();
  // The reference script prints X[0] and X[119]; equal bits mean sklearn saw exactly these rows.
  EXPECT_EQ(x[0], -1.8980658453021801);
  EXPECT_EQ(x[1], -0.052051982297786736);
  EXPECT_EQ(x[2], 0.32310869198793135);
  EXPECT_EQ(x[119 * 3 + 0], 5.383477264475909);
  EXPECT_EQ(x[119 * 3 + 2], -1.0791948607723985);
}

TEST(KMeans, RecoversThreeBlobs) {
  std::vector<int> truth;
  const std::vector<double> x = Blobs(&truth);
  KMeansOptions o;
  o.n_clusters = 3;
  auto m = KMeansModel::Fit(x.data(), kBlobRows, kBlobDim, o);
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  EXPECT_EQ(m->n_clusters(), 3);
  EXPECT_EQ(m->dim(), kBlobDim);
  ASSERT_EQ(m->centroids().size(), 9u);
  EXPECT_DOUBLE_EQ(AdjustedRandIndex(AssignAll(*m, x), truth), 1.0);
  // sklearn: KMeans(n_clusters=3, n_init=10, random_state=0).fit(X).inertia_
  EXPECT_NEAR(m->inertia(), 378.9745285011152, 1e-9 * 378.97);
  // Each centroid sits near its blob's centre.
  for (const auto& centre : {std::vector<double>{0, 0, 0}, {10, 0, 0}, {5, 8, 0}}) {
    double distance = 0;
    m->Assign(centre.data(), &distance);
    EXPECT_LT(distance, 0.5);
  }
  // inertia() is the sum of the squared Assign distances of the training rows.
  double sum = 0;
  for (size_t i = 0; i < kBlobRows; ++i) {
    double distance = 0;
    m->Assign(&x[i * kBlobDim], &distance);
    sum += distance * distance;
  }
  EXPECT_NEAR(sum, m->inertia(), 1e-9);
}

TEST(KMeans, InertiaMatchesSklearnForOtherK) {
  const std::vector<double> x = Blobs();
  // sklearn: KMeans(n_clusters=k, n_init=10, random_state=0).fit(X).inertia_
  for (const auto& [k, inertia] : {std::pair{2, 2179.543902348887}, std::pair{4, 337.4137249238078}}) {
    KMeansOptions o;
    o.n_clusters = k;
    o.n_init = 10;
    auto m = KMeansModel::Fit(x.data(), kBlobRows, kBlobDim, o);
    ASSERT_TRUE(m.ok()) << m.status().ToString();
    EXPECT_NEAR(m->inertia(), inertia, 1e-9 * inertia) << "k=" << k;
  }
}

TEST(KMeans, EverySeedRecoversTheBlobs) {
  std::vector<int> truth;
  const std::vector<double> x = Blobs(&truth);
  for (uint64_t seed = 1; seed <= 8; ++seed) {
    KMeansOptions o;
    o.n_clusters = 3;
    o.n_init = 1;
    o.seed = seed;
    auto m = KMeansModel::Fit(x.data(), kBlobRows, kBlobDim, o);
    ASSERT_TRUE(m.ok());
    EXPECT_DOUBLE_EQ(AdjustedRandIndex(AssignAll(*m, x), truth), 1.0) << "seed " << seed;
  }
}

TEST(KMeans, SameSeedGivesBitwiseIdenticalCentroids) {
  const std::vector<double> x = Blobs();
  KMeansOptions o;
  o.n_clusters = 5;  // more clusters than blobs: the split of a blob depends on the seed
  o.seed = 123;
  auto a = KMeansModel::Fit(x.data(), kBlobRows, kBlobDim, o);
  auto b = KMeansModel::Fit(x.data(), kBlobRows, kBlobDim, o);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_TRUE(BitwiseEqual(a->centroids(), b->centroids()));
  EXPECT_EQ(a->inertia(), b->inertia());
  bool any_differs = false;
  for (uint64_t seed = 0; seed < 10 && !any_differs; ++seed) {
    o.seed = seed;
    auto c = KMeansModel::Fit(x.data(), kBlobRows, kBlobDim, o);
    ASSERT_TRUE(c.ok());
    any_differs = !BitwiseEqual(a->centroids(), c->centroids());
  }
  EXPECT_TRUE(any_differs) << "the seed has no effect";
}

TEST(KMeans, JsonRoundTripAssignsIdentically) {
  const std::vector<double> x = Blobs();
  KMeansOptions o;
  o.n_clusters = 4;
  auto m = KMeansModel::Fit(x.data(), kBlobRows, kBlobDim, o);
  ASSERT_TRUE(m.ok());
  auto back = KMeansModel::FromJson(TextRoundTrip(m->ToJson()));
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->n_clusters(), 4);
  EXPECT_EQ(back->inertia(), m->inertia());
  EXPECT_TRUE(BitwiseEqual(back->centroids(), m->centroids()));
  std::vector<double> probes = x;
  for (double v : {-30.0, 0.0, 2.5, 5.0, 7.5, 100.0}) probes.insert(probes.end(), {v, v / 2, -v});
  for (size_t i = 0; i < probes.size() / kBlobDim; ++i) {
    double da = 0, db = 0;
    EXPECT_EQ(m->Assign(&probes[i * kBlobDim], &da), back->Assign(&probes[i * kBlobDim], &db));
    EXPECT_EQ(da, db);
  }
  EXPECT_EQ(back->ToJson(), m->ToJson());
}

TEST(KMeans, FromJsonRejectsGarbage) {
  const std::vector<double> x = Blobs();
  KMeansOptions o;
  o.n_clusters = 3;
  auto m = KMeansModel::Fit(x.data(), kBlobRows, kBlobDim, o);
  ASSERT_TRUE(m.ok());
  const double nan = std::numeric_limits<double>::quiet_NaN(), inf = std::numeric_limits<double>::infinity();
  ExpectRejected<KMeansModel>(m->ToJson(), {
                                               {"/kind", "pca"},
                                               {"/dim", 2},
                                               {"/dim", 0},
                                               {"/dim", 4001},
                                               {"/dim", 3.5},
                                               {"/dim", "3"},
                                               {"/n_clusters", 4},
                                               {"/n_clusters", 1},
                                               {"/n_clusters", -3},
                                               {"/inertia", nan},
                                               {"/inertia", -1.0},
                                               {"/inertia", "big"},
                                               {"/centroids/1/2", nan},
                                               {"/centroids/0/0", inf},
                                               {"/centroids/0/0", true},
                                               {"/centroids/0/0", nullptr},
                                               {"/centroids/2", Json::array({1, 2})},
                                               {"/centroids/2", 7},
                                               {"/centroids", Json::array()},
                                               {"/centroids", "none"},
                                           });
}

TEST(KMeans, AssignBreaksTiesTowardsTheLowestIndex) {
  const Json j = {{"kind", "kmeans"},
                  {"dim", 2},
                  {"n_clusters", 3},
                  {"inertia", 0.0},
                  {"centroids", {{2.0, 0.0}, {0.0, 0.0}, {2.0, 0.0}}}};
  auto m = KMeansModel::FromJson(j);
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  const double mid[2] = {1, 0}, right[2] = {3, 0}, left[2] = {-1, 0};
  double distance = -1;
  EXPECT_EQ(m->Assign(mid, &distance), 0);  // equidistant from all three
  EXPECT_DOUBLE_EQ(distance, 1.0);
  EXPECT_EQ(m->Assign(right, nullptr), 0);  // centroids 0 and 2 coincide
  EXPECT_EQ(m->Assign(left, &distance), 1);
  EXPECT_DOUBLE_EQ(distance, 1.0);
}

TEST(KMeans, FewerDistinctRowsThanClusters) {
  // 12 rows but only 2 distinct points, k = 4: seeding runs out of distinct rows and Lloyd keeps emptying
  // clusters; the fit must still end, with zero inertia.
  std::vector<double> x;
  for (int i = 0; i < 12; ++i) x.insert(x.end(), {i % 2 == 0 ? 1.0 : -1.0, 3.0});
  KMeansOptions o;
  o.n_clusters = 4;
  auto m = KMeansModel::Fit(x.data(), 12, 2, o);
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  EXPECT_EQ(m->inertia(), 0.0);
  std::vector<int> labels = AssignAll(*m, x);
  EXPECT_NE(labels[0], labels[1]);
}

TEST(KMeans, UsesEveryCentroidOnUnevenData) {
  // One far point and a tight pair of groups: k = 3 must use every centroid (no centroid left on nothing).
  std::vector<double> x;
  Lcg g(5);
  for (int i = 0; i < 30; ++i) x.insert(x.end(), {(i % 2 ? 3.0 : -3.0) + 0.1 * g.Normal(), 0.1 * g.Normal()});
  x.insert(x.end(), {50.0, 50.0});
  KMeansOptions o;
  o.n_clusters = 3;
  o.n_init = 1;
  for (uint64_t seed = 0; seed < 5; ++seed) {
    o.seed = seed;
    auto m = KMeansModel::Fit(x.data(), 31, 2, o);
    ASSERT_TRUE(m.ok());
    std::vector<int> counts(3, 0);
    for (int label : AssignAll(*m, x)) ++counts[static_cast<size_t>(label)];
    EXPECT_EQ(std::count(counts.begin(), counts.end(), 0), 0) << "seed " << seed;
    EXPECT_LT(m->inertia(), 5.0) << "seed " << seed;
  }
}

TEST(KMeans, FitAutoPicksThreeOnThreeBlobs) {
  const std::vector<double> x = Blobs();
  KMeansOptions o;
  Json curve;
  auto m = KMeansModel::FitAuto(x.data(), kBlobRows, kBlobDim, 2, 6, o, &curve);
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  EXPECT_EQ(m->n_clusters(), 3);
  EXPECT_NEAR(m->inertia(), 378.9745285011152, 1e-9 * 378.97);  // sklearn, as in RecoversThreeBlobs
  ASSERT_TRUE(curve.is_array());
  ASSERT_EQ(curve.size(), 5u);
  double best = -2;
  int best_k = 0;
  for (size_t i = 0; i < curve.size(); ++i) {
    EXPECT_EQ(curve[i]["k"], static_cast<int>(i) + 2);
    ASSERT_TRUE(curve[i]["inertia"].is_number());
    ASSERT_TRUE(curve[i]["silhouette"].is_number());
    ASSERT_TRUE(curve[i]["davies_bouldin"].is_number());
    if (i > 0) {
      EXPECT_LT(curve[i]["inertia"].get<double>(), curve[i - 1]["inertia"].get<double>());
    }
    if (curve[i]["silhouette"].get<double>() > best) {
      best = curve[i]["silhouette"].get<double>();
      best_k = curve[i]["k"].get<int>();
    }
  }
  EXPECT_EQ(best_k, 3);
  EXPECT_NEAR(curve[0]["inertia"].get<double>(), 2179.543902348887, 1e-9 * 2179.5);  // sklearn, k = 2
  EXPECT_NEAR(curve[1]["inertia"].get<double>(), m->inertia(), 1e-12);
  // A null curve is allowed.
  EXPECT_TRUE(KMeansModel::FitAuto(x.data(), kBlobRows, kBlobDim, 3, 3, o, nullptr).ok());
}

TEST(KMeans, BadOptionsNameTheParameter) {
  const std::vector<double> x = Blobs();
  auto fit = [&](const std::function<void(KMeansOptions&)>& change, size_t n = kBlobRows,
                 size_t d = kBlobDim) {
    KMeansOptions o;
    o.n_clusters = 3;
    change(o);
    return KMeansModel::Fit(x.data(), n, d, o).status();
  };
  ExpectInvalid(fit([](KMeansOptions& o) { o.n_clusters = 1; }),
                "n_clusters must be between 2 and 1000, got 1");
  ExpectInvalid(fit([](KMeansOptions& o) { o.n_clusters = 1001; }), "n_clusters");
  ExpectInvalid(fit([](KMeansOptions& o) { o.n_clusters = 50; }, 20),
                "n_clusters (50) exceeds the number of rows (20)");
  ExpectInvalid(fit([](KMeansOptions& o) { o.n_init = 0; }), "n_init must be between 1 and 100, got 0");
  ExpectInvalid(fit([](KMeansOptions& o) { o.max_iter = 0; }), "max_iter");
  ExpectInvalid(fit([](KMeansOptions& o) { o.max_iter = 10001; }), "max_iter");
  ExpectInvalid(fit([](KMeansOptions& o) { o.tol = -1; }), "tol");
  ExpectInvalid(fit([](KMeansOptions& o) { o.tol = std::nan(""); }), "tol");
  ExpectInvalid(fit([](KMeansOptions&) {}, kBlobRows, 0), "d must be between 1 and 4000, got 0");
  ExpectInvalid(fit([](KMeansOptions&) {}, 1, 4001), "d must be between 1 and 4000");
  ExpectInvalid(fit([](KMeansOptions&) {}, 1), "n must be at least 2");
  std::vector<double> bad = x;
  bad[3 * kBlobDim + 1] = std::numeric_limits<double>::infinity();
  KMeansOptions o;
  ExpectInvalid(KMeansModel::Fit(bad.data(), kBlobRows, kBlobDim, o).status(), "row 3, column 1 is inf");
  ExpectInvalid(KMeansModel::Fit(nullptr, kBlobRows, kBlobDim, o).status(), "rows");
  ExpectInvalid(KMeansModel::FitAuto(x.data(), kBlobRows, kBlobDim, 1, 4, o, nullptr).status(),
                "k_min must be between 2 and 1000, got 1");
  ExpectInvalid(KMeansModel::FitAuto(x.data(), kBlobRows, kBlobDim, 4, 3, o, nullptr).status(),
                "k_max must be between k_min (4) and 1000, got 3");
  ExpectInvalid(KMeansModel::FitAuto(x.data(), 20, kBlobDim, 2, 30, o, nullptr).status(),
                "k_max (30) exceeds the number of rows (20)");
  o.n_init = 0;
  ExpectInvalid(KMeansModel::FitAuto(x.data(), kBlobRows, kBlobDim, 2, 4, o, nullptr).status(), "n_init");
}

// ---------------------------------------------------------------- clustering metrics

TEST(ClusterMetrics, SilhouetteMatchesSklearn) {
  std::vector<int> truth;
  const std::vector<double> x = Blobs(&truth);
  // sklearn: silhouette_score(X, labels)
  auto blobs = Silhouette(x.data(), kBlobRows, kBlobDim, truth, 3);
  ASSERT_TRUE(blobs.ok()) << blobs.status().ToString();
  EXPECT_NEAR(*blobs, 0.7512866243898166, 1e-9);
  auto small = Silhouette(kSmall.data(), 10, 2, kSmallLabels, 5);  // an absent cluster and a singleton
  ASSERT_TRUE(small.ok()) << small.status().ToString();
  EXPECT_NEAR(*small, 0.6613640124929759, 1e-9);
  auto mixed = Silhouette(kSmall.data(), 10, 2, kSmallMixedLabels, 4);
  ASSERT_TRUE(mixed.ok());
  EXPECT_NEAR(*mixed, -0.15045450149122855, 1e-9);
}

TEST(ClusterMetrics, DaviesBouldinMatchesSklearn) {
  std::vector<int> truth;
  const std::vector<double> x = Blobs(&truth);
  // sklearn: davies_bouldin_score(X, labels)
  auto blobs = DaviesBouldin(x.data(), kBlobRows, kBlobDim, truth, 3);
  ASSERT_TRUE(blobs.ok()) << blobs.status().ToString();
  EXPECT_NEAR(*blobs, 0.34287602955986857, 1e-9);
  auto small = DaviesBouldin(kSmall.data(), 10, 2, kSmallLabels, 5);
  ASSERT_TRUE(small.ok());
  EXPECT_NEAR(*small, 0.2523461070304075, 1e-9);
  auto mixed = DaviesBouldin(kSmall.data(), 10, 2, kSmallMixedLabels, 4);
  ASSERT_TRUE(mixed.ok());
  EXPECT_NEAR(*mixed, 2.5616909232668643, 1e-9);
}

TEST(ClusterMetrics, SampledSilhouetteIsDeterministicAndClose) {
  std::vector<int> truth;
  const std::vector<double> x = Blobs(&truth);
  auto a = Silhouette(x.data(), kBlobRows, kBlobDim, truth, 3, 60, 9);
  auto b = Silhouette(x.data(), kBlobRows, kBlobDim, truth, 3, 60, 9);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(*a, *b);
  EXPECT_NE(*a, 0.7512866243898166);          // a sample, not the exact value…
  EXPECT_NEAR(*a, 0.7512866243898166, 0.05);  // …but close to it
  auto exact = Silhouette(x.data(), kBlobRows, kBlobDim, truth, 3, kBlobRows, 9);
  ASSERT_TRUE(exact.ok());
  EXPECT_NEAR(*exact, 0.7512866243898166, 1e-9);
}

TEST(ClusterMetrics, BadInputsAreErrors) {
  std::vector<int> truth;
  const std::vector<double> x = Blobs(&truth);
  ExpectInvalid(Silhouette(x.data(), kBlobRows, kBlobDim, {0, 1}, 3).status(), "labels has 2 entries");
  std::vector<int> bad = truth;
  bad[7] = 3;
  ExpectInvalid(Silhouette(x.data(), kBlobRows, kBlobDim, bad, 3).status(), "labels[7] = 3");
  ExpectInvalid(DaviesBouldin(x.data(), kBlobRows, kBlobDim, bad, 3).status(), "labels[7] = 3");
  bad[7] = -1;
  ExpectInvalid(DaviesBouldin(x.data(), kBlobRows, kBlobDim, bad, 3).status(), "labels[7] = -1");
  ExpectInvalid(Silhouette(x.data(), kBlobRows, kBlobDim, truth, 1).status(), "k must be between 2 and 1000");
  ExpectInvalid(Silhouette(x.data(), kBlobRows, kBlobDim, truth, 3, 1).status(), "max_rows");
  // One non-empty cluster: undefined, a FailedPrecondition (FitAuto reports it as null).
  const std::vector<int> one(kBlobRows, 1);
  EXPECT_EQ(Silhouette(x.data(), kBlobRows, kBlobDim, one, 3).status().code(),
            StatusCode::kFailedPrecondition);
  EXPECT_EQ(DaviesBouldin(x.data(), kBlobRows, kBlobDim, one, 3).status().code(),
            StatusCode::kFailedPrecondition);
}

// ---------------------------------------------------------------- PCA

TEST(Pca, MatchesSklearn) {
  const std::vector<double> x = Correlated();
  PcaOptions o;
  o.n_components = 5;
  auto m = PcaModel::Fit(x.data(), kPcaRows, kPcaDim, o);
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  ASSERT_EQ(m->n_components(), 5);
  EXPECT_EQ(m->dim(), kPcaDim);
  // sklearn: PCA(n_components=5).fit(X).explained_variance_ratio_ / explained_variance_
  const double ratio[5] = {0.5849727201501773, 0.31122487057465775, 0.08985548150537259, 0.011312659362402656,
                           0.002634268407389609};
  const double variance[5] = {4.75085448396512, 2.5276120081488362, 0.7297610683606763, 0.09187573472425005,
                              0.02139420428358036};
  for (size_t c = 0; c < 5; ++c) {
    EXPECT_NEAR(m->explained_variance_ratio()[c], ratio[c], 1e-9) << c;
    EXPECT_NEAR(m->explained_variance()[c], variance[c], 1e-9) << c;
  }
  // sklearn: (X - mean_) @ components_.T with each component's largest-|loading| entry made positive.
  const std::map<size_t, std::vector<double>> transformed = {
      {0,
       {1.109920235675015, -0.7807818877860906, -0.20245003129594547, -0.4395235819032721,
        0.17640600336554013}},
      {1,
       {6.583365943806853, -0.8358713603247365, -0.3205667509830987, -0.23121571375357075,
        0.13183945622496204}},
      {39,
       {1.320232417808107, 1.8247590897847104, 0.23147876162870848, 0.3033630237741925,
        -0.11637781532827912}}};
  for (const auto& [row, expected] : transformed) {
    double out[5];
    m->Transform(&x[row * kPcaDim], out);
    for (size_t c = 0; c < 5; ++c)
      EXPECT_NEAR(out[c], expected[c], 1e-9) << "row " << row << " component " << c;
  }
  // The sign rule holds, and the components are orthonormal.
  const std::vector<double>& v = m->components();
  for (size_t a = 0; a < 5; ++a) {
    size_t top = 0;
    for (size_t j = 1; j < kPcaDim; ++j) top = std::fabs(v[a * 5 + j]) > std::fabs(v[a * 5 + top]) ? j : top;
    EXPECT_GT(v[a * 5 + top], 0);
    for (size_t b = 0; b < 5; ++b) {
      double dot = 0;
      for (size_t j = 0; j < kPcaDim; ++j) dot += v[a * 5 + j] * v[b * 5 + j];
      EXPECT_NEAR(dot, a == b ? 1.0 : 0.0, 1e-12);
    }
  }
}

TEST(Pca, ChoosesComponentsByVarianceTarget) {
  const std::vector<double> x = Correlated();
  // sklearn: PCA(n_components=target, svd_solver="full").fit(X).n_components_ (cumulative ratios 0.585,
  // 0.896, 0.986, 0.9974, 1)
  for (const auto& [target, count] :
       {std::pair{0.8, 2}, std::pair{0.95, 3}, std::pair{0.99, 4}, std::pair{0.5, 1}, std::pair{1.0, 5}}) {
    PcaOptions o;
    o.variance_target = target;
    auto m = PcaModel::Fit(x.data(), kPcaRows, kPcaDim, o);
    ASSERT_TRUE(m.ok()) << m.status().ToString();
    EXPECT_EQ(m->n_components(), count) << "target " << target;
  }
}

TEST(Pca, VarianceTargetIsInclusive) {
  // "The fewest components explaining >= variance_target": a target equal to the first ratio keeps one.
  const std::vector<double> x = Correlated();
  PcaOptions o;
  o.n_components = 1;
  auto first = PcaModel::Fit(x.data(), kPcaRows, kPcaDim, o);
  ASSERT_TRUE(first.ok());
  o.n_components = 0;
  o.variance_target = first->explained_variance_ratio()[0];
  auto m = PcaModel::Fit(x.data(), kPcaRows, kPcaDim, o);
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m->n_components(), 1);
  o.variance_target = std::nextafter(o.variance_target + 1e-9, 1.0);
  m = PcaModel::Fit(x.data(), kPcaRows, kPcaDim, o);
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m->n_components(), 2);
}

TEST(Pca, ReconstructionErrorMatchesSklearn) {
  const std::vector<double> x = Correlated();
  PcaOptions o;
  o.n_components = 2;
  auto m = PcaModel::Fit(x.data(), kPcaRows, kPcaDim, o);
  ASSERT_TRUE(m.ok());
  // sklearn: p = PCA(2).fit(X); ((X - p.inverse_transform(p.transform(X)))**2).sum(axis=1)
  EXPECT_NEAR(m->ReconstructionError(&x[0]), 0.26528607224421474, 1e-9);
  EXPECT_NEAR(m->ReconstructionError(&x[1 * kPcaDim]), 0.1736053903401268, 1e-9);
  EXPECT_NEAR(m->ReconstructionError(&x[39 * kPcaDim]), 0.15915533717916508, 1e-9);
  // A row far off the plane of the first two components is an anomaly.
  std::vector<double> off(m->mean());
  for (size_t j = 0; j < kPcaDim; ++j) off[j] += 3.0 * m->components()[kPcaDim * 0 + j];
  EXPECT_NEAR(m->ReconstructionError(off.data()), 0.0, 1e-12);  // in the plane
  off[4] += 5.0;
  EXPECT_GT(m->ReconstructionError(off.data()), 20.0);
  // With every component, every row is reconstructed exactly.
  o.n_components = 5;
  auto full = PcaModel::Fit(x.data(), kPcaRows, kPcaDim, o);
  ASSERT_TRUE(full.ok());
  for (size_t i = 0; i < kPcaRows; ++i) EXPECT_NEAR(full->ReconstructionError(&x[i * kPcaDim]), 0.0, 1e-20);
}

TEST(Pca, WiderThanTall) {
  // n < d: at most n components, the rest of the spectrum is zero.
  std::vector<double> x(4 * 10);
  Lcg g(3);
  for (double& v : x) v = g.Normal();
  PcaOptions o;
  o.n_components = 4;
  auto m = PcaModel::Fit(x.data(), 4, 10, o);
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  double sum = 0;
  for (double r : m->explained_variance_ratio()) sum += r;
  EXPECT_NEAR(sum, 1.0, 1e-12);
  EXPECT_NEAR(m->explained_variance_ratio()[3], 0.0, 1e-12);  // 4 centred rows span 3 dimensions
  o.n_components = 5;
  ExpectInvalid(PcaModel::Fit(x.data(), 4, 10, o).status(), "n_components must be between 0");
}

TEST(Pca, JsonRoundTrip) {
  const std::vector<double> x = Correlated();
  PcaOptions o;
  auto m = PcaModel::Fit(x.data(), kPcaRows, kPcaDim, o);
  ASSERT_TRUE(m.ok());
  auto back = PcaModel::FromJson(TextRoundTrip(m->ToJson()));
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  ASSERT_EQ(back->n_components(), m->n_components());
  EXPECT_TRUE(BitwiseEqual(back->explained_variance_ratio(), m->explained_variance_ratio()));
  for (size_t i = 0; i < kPcaRows; ++i) {
    std::vector<double> a(3), b(3);
    m->Transform(&x[i * kPcaDim], a.data());
    back->Transform(&x[i * kPcaDim], b.data());
    EXPECT_TRUE(BitwiseEqual(a, b));
    EXPECT_EQ(m->ReconstructionError(&x[i * kPcaDim]), back->ReconstructionError(&x[i * kPcaDim]));
  }
  EXPECT_EQ(back->ToJson(), m->ToJson());
}

TEST(Pca, FromJsonRejectsGarbage) {
  const std::vector<double> x = Correlated();
  PcaOptions o;
  o.n_components = 3;
  auto m = PcaModel::Fit(x.data(), kPcaRows, kPcaDim, o);
  ASSERT_TRUE(m.ok());
  const double nan = std::numeric_limits<double>::quiet_NaN();
  ExpectRejected<PcaModel>(m->ToJson(), {
                                            {"/kind", "kmeans"},
                                            {"/dim", 4},
                                            {"/dim", 6},
                                            {"/n_components", 2},
                                            {"/n_components", 0},
                                            {"/n_components", 6},
                                            {"/mean/2", nan},
                                            {"/mean", Json::array({1, 2})},
                                            {"/components/1/1", nan},
                                            {"/components/1/1", 5.0},  // not a unit vector
                                            {"/components/2", Json::array()},
                                            {"/explained_variance/0", -1.0},
                                            {"/explained_variance/2", 100.0},  // not descending
                                            {"/explained_variance_ratio/0", 1.5},
                                            {"/explained_variance_ratio/1", 0.99},
                                            {"/explained_variance_ratio", Json::array({0.5})},
                                            {"/explained_variance_ratio/2", "x"},
                                        });
}

TEST(Pca, BadOptionsNameTheParameter) {
  const std::vector<double> x = Correlated();
  PcaOptions o;
  o.n_components = -1;
  ExpectInvalid(PcaModel::Fit(x.data(), kPcaRows, kPcaDim, o).status(), "n_components");
  o.n_components = 6;
  ExpectInvalid(PcaModel::Fit(x.data(), kPcaRows, kPcaDim, o).status(),
                "n_components must be between 0 (choose by variance_target) and min(n, d) = 5, got 6");
  o.n_components = 0;
  for (double target : {0.0, -0.5, 1.5, std::nan("")}) {
    o.variance_target = target;
    ExpectInvalid(PcaModel::Fit(x.data(), kPcaRows, kPcaDim, o).status(),
                  "variance_target must be in (0, 1]");
  }
  o.variance_target = 0.9;
  ExpectInvalid(PcaModel::Fit(x.data(), 1, kPcaDim, o).status(), "n must be at least 2, got 1");
  ExpectInvalid(PcaModel::Fit(x.data(), kPcaRows, 4001, o).status(), "d must be between 1 and 4000");
  // Constant rows have no variance to explain.
  const std::vector<double> flat(20, 1.5);
  EXPECT_EQ(PcaModel::Fit(flat.data(), 10, 2, o).status().code(), StatusCode::kFailedPrecondition);
}

// ---------------------------------------------------------------- isolation forest

constexpr size_t kForestRows = 510, kForestDim = 4;

// 500 standard-normal rows and 10 planted outliers (rows 0, 51, 102, …) at ±4 on every axis (distance ~8).
std::vector<double> WithOutliers(std::vector<bool>* is_outlier) {
  Lcg g(99);
  std::vector<double> x;
  is_outlier->assign(kForestRows, false);
  for (size_t i = 0; i < kForestRows; ++i) {
    const bool outlier = i % 51 == 0;
    (*is_outlier)[i] = outlier;
    for (size_t j = 0; j < kForestDim; ++j) {
      x.push_back(outlier ? (((i / 51) >> j) & 1 ? 4.0 : -4.0) + 0.3 * g.Normal() : g.Normal());
    }
  }
  return x;
}

TEST(IsolationForest, PlantedOutliersScoreHigh) {
  std::vector<bool> is_outlier;
  const std::vector<double> x = WithOutliers(&is_outlier);
  IsolationForestOptions o;
  o.contamination = 0.05;
  auto f = IsolationForest::Fit(x.data(), kForestRows, kForestDim, o);
  ASSERT_TRUE(f.ok()) << f.status().ToString();
  EXPECT_EQ(f->dim(), kForestDim);
  EXPECT_EQ(f->n_trees(), 100);
  EXPECT_EQ(f->sample_size(), 256);
  std::vector<double> normal, outliers;
  for (size_t i = 0; i < kForestRows; ++i) {
    const double s = f->Score(&x[i * kForestDim]);
    EXPECT_GT(s, 0);
    EXPECT_LE(s, 1);
    (is_outlier[i] ? outliers : normal).push_back(s);
  }
  ASSERT_EQ(outliers.size(), 10u);
  std::vector<double> sorted = normal;
  std::sort(sorted.begin(), sorted.end());
  const double median = sorted[sorted.size() / 2];
  double mean = 0;
  for (double s : normal) mean += s / static_cast<double>(normal.size());
  EXPECT_LT(mean, 0.5);
  int above = 0;
  for (double s : outliers) {
    EXPECT_GT(s, median);
    EXPECT_GT(s, sorted.back());  // the ten planted rows are the ten highest scores
    EXPECT_GT(s, 0.6);
    above += s > f->threshold() ? 1 : 0;
  }
  EXPECT_EQ(above, 10);
  const double origin[kForestDim] = {0, 0, 0, 0};
  EXPECT_LT(f->Score(origin), 0.45);
  const double far[kForestDim] = {40, -40, 40, -40};
  EXPECT_GT(f->Score(far), 0.7);
}

TEST(IsolationForest, ThresholdFlagsTheContaminationShare) {
  std::vector<bool> is_outlier;
  const std::vector<double> x = WithOutliers(&is_outlier);
  for (double contamination : {0.02, 0.1, 0.5}) {
    IsolationForestOptions o;
    o.contamination = contamination;
    o.n_trees = 50;
    auto f = IsolationForest::Fit(x.data(), kForestRows, kForestDim, o);
    ASSERT_TRUE(f.ok());
    int flagged = 0;
    for (size_t i = 0; i < kForestRows; ++i) flagged += f->Score(&x[i * kForestDim]) > f->threshold() ? 1 : 0;
    const double expected = contamination * static_cast<double>(kForestRows);
    // Rows above the linearly interpolated quantile: n - ceil((1 - c)(n - 1)) without ties.
    EXPECT_LE(flagged, expected + 1) << contamination;
    EXPECT_GE(flagged, expected - 2) << contamination;
  }
}

TEST(IsolationForest, DeterministicBySeed) {
  std::vector<bool> is_outlier;
  const std::vector<double> x = WithOutliers(&is_outlier);
  IsolationForestOptions o;
  o.seed = 17;
  o.n_trees = 20;
  auto a = IsolationForest::Fit(x.data(), kForestRows, kForestDim, o);
  auto b = IsolationForest::Fit(x.data(), kForestRows, kForestDim, o);
  o.seed = 18;
  auto c = IsolationForest::Fit(x.data(), kForestRows, kForestDim, o);
  ASSERT_TRUE(a.ok() && b.ok() && c.ok());
  EXPECT_EQ(a->ToJson(), b->ToJson());
  EXPECT_NE(a->ToJson(), c->ToJson());
  EXPECT_EQ(a->threshold(), b->threshold());
  for (size_t i = 0; i < kForestRows; ++i)
    EXPECT_EQ(a->Score(&x[i * kForestDim]), b->Score(&x[i * kForestDim]));
}

TEST(IsolationForest, JsonRoundTripScoresIdentically) {
  std::vector<bool> is_outlier;
  const std::vector<double> x = WithOutliers(&is_outlier);
  IsolationForestOptions o;
  o.n_trees = 30;
  auto f = IsolationForest::Fit(x.data(), kForestRows, kForestDim, o);
  ASSERT_TRUE(f.ok());
  auto back = IsolationForest::FromJson(TextRoundTrip(f->ToJson()));
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->threshold(), f->threshold());
  EXPECT_EQ(back->sample_size(), f->sample_size());
  for (size_t i = 0; i < kForestRows; ++i) {
    EXPECT_EQ(back->Score(&x[i * kForestDim]), f->Score(&x[i * kForestDim]));
  }
  EXPECT_EQ(back->ToJson(), f->ToJson());
}

TEST(IsolationForest, FromJsonRejectsGarbage) {
  std::vector<bool> is_outlier;
  const std::vector<double> x = WithOutliers(&is_outlier);
  IsolationForestOptions o;
  o.n_trees = 3;
  o.sample_size = 16;
  auto f = IsolationForest::Fit(x.data(), kForestRows, kForestDim, o);
  ASSERT_TRUE(f.ok());
  const Json valid = f->ToJson();
  ASSERT_GE(valid["trees"][0]["feature"][0].get<int>(), 0);  // the root splits
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const size_t nodes = valid["trees"][0]["feature"].size();
  ExpectRejected<IsolationForest>(
      valid, {
                 {"/kind", "kmeans"},
                 {"/dim", 0},
                 {"/sample_size", 1},
                 {"/sample_size", 2},  // more nodes than two rows can make
                 {"/threshold", nan},
                 {"/threshold", 2.0},
                 {"/trees", Json::array()},
                 {"/trees/1", 5},
                 {"/trees/0/feature/0", 4},  // column out of range
                 {"/trees/0/feature/0", -2},
                 {"/trees/0/feature/0", 0.5},
                 {"/trees/0/left/0", 0},                            // a cycle
                 {"/trees/0/left/0", static_cast<int>(nodes) - 1},  // the right child would be past the end
                 {"/trees/0/left/0", -1},
                 {"/trees/0/value/0", nan},
                 {"/trees/0/value", Json::array({1.0})},
                 {"/trees/2/left", "x"},
                 {"/trees/2/feature", nullptr},
             });
  // A leaf must have no child and a non-negative path length.
  Json leaf = valid;
  auto one_leaf = [](double value, int left) {
    return Json{
        {"feature", Json::array({-1})}, {"value", Json::array({value})}, {"left", Json::array({left})}};
  };
  leaf["trees"][0] = one_leaf(-1.0, -1);
  EXPECT_FALSE(IsolationForest::FromJson(leaf).ok());
  leaf["trees"][0] = one_leaf(1.0, 3);
  EXPECT_FALSE(IsolationForest::FromJson(leaf).ok());
  leaf["trees"][0] = one_leaf(1.0, -1);
  EXPECT_TRUE(IsolationForest::FromJson(leaf).ok()) << IsolationForest::FromJson(leaf).status().ToString();
}

TEST(IsolationForest, ConstantColumnsAreNeverSplit) {
  std::vector<double> x;
  Lcg g(11);
  for (int i = 0; i < 200; ++i) x.insert(x.end(), {g.Normal(), 7.0, g.Normal()});
  IsolationForestOptions o;
  o.n_trees = 20;
  auto f = IsolationForest::Fit(x.data(), 200, 3, o);
  ASSERT_TRUE(f.ok());
  EXPECT_EQ(f->sample_size(), 200);  // min(sample_size, n)
  int splits = 0;
  const Json model = f->ToJson();
  for (const Json& tree : model["trees"]) {
    for (const Json& feature : tree["feature"]) {
      EXPECT_NE(feature.get<int>(), 1);
      splits += feature.get<int>() >= 0 ? 1 : 0;
    }
  }
  EXPECT_GT(splits, 20);
}

TEST(IsolationForest, IdenticalRowsScoreOneHalf) {
  // Nothing to isolate: every tree is one leaf of psi rows, so E[h] = c(psi) and s = 2^-1.
  const std::vector<double> x(2 * 50, 3.0);
  auto f = IsolationForest::Fit(x.data(), 50, 2, IsolationForestOptions{});
  ASSERT_TRUE(f.ok());
  EXPECT_DOUBLE_EQ(f->Score(x.data()), 0.5);
  EXPECT_DOUBLE_EQ(f->threshold(), 0.5);
}

TEST(IsolationForest, AveragePathLengthNormalizesScores) {
  // A forest of one-leaf trees whose path length is h scores 2^(-h / c(psi)), c(n) = 2H(n-1) - 2(n-1)/n with
  // H(i) = ln(i) + Euler's gamma.
  const double c256 = 2 * (std::log(255.0) + 0.5772156649015329) - 2.0 * 255 / 256;
  for (double h : {0.0, 1.0, 4.5, 10.0}) {
    const Json j = {{"kind", "isolation_forest"},
                    {"dim", 1},
                    {"sample_size", 256},
                    {"threshold", 0.5},
                    {"trees", Json::array({Json{{"feature", Json::array({-1})},
                                                {"value", Json::array({h})},
                                                {"left", Json::array({-1})}}})}};
    auto f = IsolationForest::FromJson(j);
    ASSERT_TRUE(f.ok()) << f.status().ToString();
    const double row[1] = {0};
    EXPECT_NEAR(f->Score(row), std::exp2(-h / c256), 1e-12) << h;
  }
  // Samples of two rows: every tree is one split into two single-row leaves, so every row has path length 1,
  // and c(2) = 1 exactly (the formula's 0.15 would score 0.01).
  std::vector<bool> is_outlier;
  const std::vector<double> x = WithOutliers(&is_outlier);
  IsolationForestOptions o;
  o.sample_size = 2;
  auto f = IsolationForest::Fit(x.data(), kForestRows, kForestDim, o);
  ASSERT_TRUE(f.ok());
  EXPECT_DOUBLE_EQ(f->Score(&x[5 * kForestDim]), 0.5);
  EXPECT_DOUBLE_EQ(f->Score(&x[0]), 0.5);
}

TEST(IsolationForest, BadOptionsNameTheParameter) {
  std::vector<bool> is_outlier;
  const std::vector<double> x = WithOutliers(&is_outlier);
  auto fit = [&](const std::function<void(IsolationForestOptions&)>& change) {
    IsolationForestOptions o;
    change(o);
    return IsolationForest::Fit(x.data(), kForestRows, kForestDim, o).status();
  };
  ExpectInvalid(fit([](IsolationForestOptions& o) { o.n_trees = 0; }),
                "n_trees must be between 1 and 5000, got 0");
  ExpectInvalid(fit([](IsolationForestOptions& o) { o.n_trees = 5001; }), "n_trees");
  ExpectInvalid(fit([](IsolationForestOptions& o) { o.sample_size = 1; }),
                "sample_size must be between 2 and 1000000, got 1");
  ExpectInvalid(fit([](IsolationForestOptions& o) { o.contamination = 0; }),
                "contamination must be in (0, 0.5]");
  ExpectInvalid(fit([](IsolationForestOptions& o) { o.contamination = 0.51; }), "contamination");
  ExpectInvalid(fit([](IsolationForestOptions& o) { o.contamination = std::nan(""); }), "contamination");
  // 5000 trees of 510 rows are within the budget; a bigger sample is not.
  std::vector<double> big(30000 * 1);
  Lcg g(1);
  for (double& v : big) v = g.Normal();
  IsolationForestOptions o;
  o.n_trees = 5000;
  o.sample_size = 30000;
  ExpectInvalid(IsolationForest::Fit(big.data(), 30000, 1, o).status(),
                "n_trees x min(sample_size, n) = 5000 x 30000 exceeds 10000000");
  ExpectInvalid(IsolationForest::Fit(x.data(), 1, kForestDim, IsolationForestOptions{}).status(),
                "n must be at least 2");
}

}  // namespace
}  // namespace lathe::ml
