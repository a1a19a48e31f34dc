// lathe_train_bench [rows]: end-to-end training cost of lathe's Train() against the raw XGBoost C API on the
// same data and parameters, in the same process.
//
// Data: an in-memory Table shaped like the benchmark CSV (default 1,000,000 rows x 21 columns: 6 integers,
// 8 floats with ~5% missing, 4 low-cardinality strings, 2 dates, and a binary `label` correlated with them).
// (a) lathe: Train() with {n_estimators:100, max_depth:6, learning_rate:0.1}, task binary, test_fraction 0.2,
//     all cores: fits the pipeline, stratified split, encodes, trains, evaluates, packages the bundle.
// (b) raw: a minimal float encoding of the same columns into the same features lathe's pipeline makes
//     (numbers as-is, string dictionary codes as native categoricals, each date as epoch seconds, month and
//     day of week), the first 80% of rows for training, then the same XGBoost
//     parameters (tree_method=hist) through XGDMatrixCreateFromMat_omp + XGBoosterUpdateOneIter, and a
//     prediction over the remaining 20% — i.e. the same amount of work minus lathe's own layers.
// Prints both wall times (best of `repeats`, default 2, alternating order) and lathe/raw (target <= 1.10).
// Usage: lathe_train_bench [rows] [repeats]
#include <xgboost/c_api.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "bench_table.h"
#include "common/memory.h"
#include "data/table.h"
#include "ml/pipeline.h"
#include "ml/train.h"

namespace {

using lathe::Column;
using lathe::ColumnType;
using lathe::Table;
using lathe::bench::MakeBenchTable;

#define XGB_CHECK(call)                                                     \
  do {                                                                      \
    if ((call) != 0) {                                                      \
      std::fprintf(stderr, "xgboost error: %s\n", XGBGetLastError());      \
      std::exit(1);                                                         \
    }                                                                       \
  } while (0)

double RawXgboost(const Table& t, int nthread) {
  const auto start = std::chrono::steady_clock::now();
  const size_t n = static_cast<size_t>(t.num_rows);
  const size_t n_train = n * 8 / 10;
  const float kNaN = std::numeric_limits<float>::quiet_NaN();
  // The features lathe's pipeline gives XGBoost: one per column, three per date (epoch seconds, month, day of
  // week), so both sides boost over the same number of features and only lathe's own layers differ.
  std::vector<const char*> types;
  for (size_t c = 0; c + 1 < t.columns.size(); ++c) {
    const ColumnType type = t.columns[c].type;
    for (int k = 0; k < (type == ColumnType::kDatetime ? lathe::ml::FeaturePipeline::kDatetimeFeatures : 1); ++k) {
      types.push_back(type == ColumnType::kString ? "c" : "q");
    }
  }
  const size_t width = types.size();
  std::vector<float> x(n * width);
  std::vector<float> y(n);
  size_t f = 0;
  for (size_t c = 0; c + 1 < t.columns.size(); ++c) {
    const Column& col = t.columns[c];
    for (size_t r = 0; r < n; ++r) {
      float* out = &x[r * width + f];
      if (!col.valid[r]) {
        std::fill(out, out + (col.type == ColumnType::kDatetime ? 3 : 1), kNaN);
        continue;
      }
      switch (col.type) {
        case ColumnType::kInt64: *out = static_cast<float>(col.i64[r]); break;
        case ColumnType::kFloat64: *out = static_cast<float>(col.f64[r]); break;
        case ColumnType::kBool: *out = col.b[r] ? 1.0f : 0.0f; break;
        case ColumnType::kString: *out = static_cast<float>(col.codes[r]); break;
        case ColumnType::kDatetime: lathe::ml::DatetimeFeatures(col.i64[r], out); break;
      }
    }
    f += col.type == ColumnType::kDatetime ? 3 : 1;
  }
  for (size_t r = 0; r < n; ++r) y[r] = static_cast<float>(t.columns.back().i64[r]);

  DMatrixHandle dtrain, dtest;
  XGB_CHECK(XGDMatrixCreateFromMat_omp(x.data(), n_train, width, kNaN, &dtrain, nthread));
  XGB_CHECK(XGDMatrixSetFloatInfo(dtrain, "label", y.data(), n_train));
  XGB_CHECK(XGDMatrixSetStrFeatureInfo(dtrain, "feature_type", types.data(), types.size()));
  BoosterHandle booster;
  XGB_CHECK(XGBoosterCreate(&dtrain, 1, &booster));
  const std::pair<const char*, std::string> params[] = {
      {"objective", "binary:logistic"}, {"tree_method", "hist"}, {"max_depth", "6"}, {"eta", "0.1"},
      {"nthread", std::to_string(nthread)}, {"verbosity", "0"}, {"seed", "42"}};
  for (const auto& [k, v] : params) XGB_CHECK(XGBoosterSetParam(booster, k, v.c_str()));
  for (int i = 0; i < 100; ++i) XGB_CHECK(XGBoosterUpdateOneIter(booster, i, dtrain));
  XGB_CHECK(XGDMatrixCreateFromMat_omp(x.data() + n_train * width, n - n_train, width, kNaN, &dtest, nthread));
  XGB_CHECK(XGDMatrixSetStrFeatureInfo(dtest, "feature_type", types.data(), types.size()));
  bst_ulong const* shape;
  bst_ulong dim;
  const float* out;
  XGB_CHECK(XGBoosterPredictFromDMatrix(booster, dtest, R"({"type":0,"training":false,"iteration_begin":0,)"
                                                        R"("iteration_end":0,"strict_shape":false})",
                                        &shape, &dim, &out));
  double correct = 0;
  for (size_t r = n_train; r < n; ++r) correct += ((out[r - n_train] >= 0.5f) == (y[r] > 0.5f)) ? 1 : 0;
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("raw xgboost: %.2f s (held-out accuracy %.4f)\n", seconds, correct / static_cast<double>(n - n_train));
  XGBoosterFree(booster);
  XGDMatrixFree(dtrain);
  XGDMatrixFree(dtest);
  return seconds;
}

double Lathe(const Table& t) {
  lathe::ml::TrainSpec spec;
  spec.target = "label";
  spec.task = "binary";
  spec.params = {{"n_estimators", 100}, {"max_depth", 6}, {"learning_rate", 0.1}};
  spec.explain = false;  // the peer trains only; importance is extra work it does not do
  const auto start = std::chrono::steady_clock::now();
  double encoded_s = 0, boosted_s = 0;
  auto since = [&]() { return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(); };
  auto out = lathe::ml::Train(
      t, spec,
      [&](double fraction, const std::string& message) {
        if (message.rfind("encoded", 0) == 0) encoded_s = since();
        if (fraction >= 0.95 && fraction < 1.0) boosted_s = since();
      },
      nullptr);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (!out.ok()) {
    std::fprintf(stderr, "lathe Train failed: %s\n", out.status().ToString().c_str());
    std::exit(1);
  }
  std::printf("lathe Train: %.2f s [fit+split+encode %.2f s, boosting %.2f s, evaluate+package %.2f s] (held-out accuracy %.4f, auc %.4f, %lld train rows, %zu features, bundle %zu bytes)\n",
              seconds, encoded_s, boosted_s - encoded_s, seconds - boosted_s, out->metrics["accuracy"].get<double>(), out->metrics["roc_auc"].get<double>(),
              static_cast<long long>(out->train_rows), out->pipeline["features"].size(), out->model_bundle.size());
  return seconds;
}

}  // namespace

int main(int argc, char** argv) {
  lathe::TuneAllocator();
  int64_t rows = 1000000;
  int repeats = 2;
  if (argc > 2) repeats = std::max(1, std::atoi(argv[2]));
  if (argc > 1) {
    rows = std::atoll(argv[1]);
    if (rows < 100) {
      std::fprintf(stderr, "usage: lathe_train_bench [rows >= 100] [repeats]\n");
      return 2;
    }
  }
  const int nthread = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  std::printf("building table: %lld rows x 21 columns\n", static_cast<long long>(rows));
  const Table t = MakeBenchTable(rows, 1);
  // Alternating order (raw, lathe, lathe, raw, ...) and best-of-N, so warm-up and a busy host bias neither side.
  double raw = 1e300, lathe = 1e300;
  for (int i = 0; i < repeats; ++i) {
    if (i % 2 == 0) {
      raw = std::min(raw, RawXgboost(t, nthread));
      lathe = std::min(lathe, Lathe(t));
    } else {
      lathe = std::min(lathe, Lathe(t));
      raw = std::min(raw, RawXgboost(t, nthread));
    }
  }
  std::printf("lathe/raw = %.3f (target <= 1.10); best of %d: lathe %.2f s, raw %.2f s, %d threads\n", lathe / raw,
              repeats, lathe, raw, nthread);
  return 0;
}
