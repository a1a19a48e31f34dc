// lathe_batch_bench [rows] [repeats]: batch scoring throughput against the raw XGBoost C API on the same rows.
//
// A binary model (100 trees, depth 6) is trained on 200,000 rows of the benchmark table (bench_table.h);
// `rows` (default 1,000,000) other rows are written as a dataset file. Then, best of `repeats` (default 3),
// alternating order:
//   (a) raw: XGBoosterPredictFromDense on the already-encoded dense float matrix of those rows, nthread = all
//       cores, one call — prediction only, no reading, encoding or writing;
//   (b) lathe: ml::ScoreDataset from the dataset file to a new dataset file — read and decode every row group,
//       encode features, predict (compiled evaluator, all cores), build the output columns, encode and write.
// Prints rows/s of both and lathe/raw (issue 6 target: >= 0.90).
#include <xgboost/c_api.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "bench_table.h"
#include "common/crypto.h"
#include "common/memory.h"
#include "data/dataset_file.h"
#include "ml/batch_score.h"
#include "ml/model_bundle.h"
#include "ml/predictor.h"
#include "ml/train.h"

namespace {

using lathe::bench::Check;

namespace fs = std::filesystem;
using lathe::Table;

#define XGB_CHECK(call)                                                \
  do {                                                                 \
    if ((call) != 0) {                                                 \
      std::fprintf(stderr, "xgboost error: %s\n", XGBGetLastError()); \
      std::exit(1);                                                    \
    }                                                                  \
  } while (0)

double Seconds(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace

int main(int argc, char** argv) {
  lathe::TuneAllocator();
  const int64_t rows = argc > 1 ? std::atoll(argv[1]) : 1000000;
  const int repeats = argc > 2 ? std::atoi(argv[2]) : 3;
  const int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  const fs::path dir = fs::temp_directory_path() / ("lathe-batch-bench-" + lathe::RandomHex(6));
  fs::create_directories(dir);

  Table train = lathe::bench::MakeBenchTable(200000, 11);
  lathe::ml::TrainSpec spec;
  spec.target = "label";
  spec.task = "binary";
  spec.params = {{"n_estimators", 100}, {"max_depth", 6}, {"learning_rate", 0.1}};
  spec.nthread = cores;
  auto trained = Check(lathe::ml::Train(train, spec, nullptr, nullptr), "train");
  auto predictor = Check(lathe::ml::Predictor::Load(trained.model_bundle), "load");

  Table score = lathe::bench::MakeBenchTable(rows, 12);
  const std::string input = (dir / "input.lcol").string();
  if (auto st = lathe::WriteDatasetFile(score, input); !st.ok()) {
    std::fprintf(stderr, "write: %s\n", st.ToString().c_str());
    return 1;
  }
  const std::vector<float> dense = Check(predictor->EncodeTable(score), "encode");
  score = Table{};
  const size_t width = predictor->NumFeatures();

  auto bundle = Check(lathe::ml::DecodeModelBundle(trained.model_bundle), "bundle");
  BoosterHandle booster = nullptr;
  XGB_CHECK(XGBoosterCreate(nullptr, 0, &booster));
  XGB_CHECK(XGBoosterLoadModelFromBuffer(booster, bundle.booster.data(), bundle.booster.size()));
  XGB_CHECK(XGBoosterSetParam(booster, "nthread", std::to_string(cores).c_str()));
  char array[256];
  std::snprintf(array, sizeof(array), R"({"data":[%llu,true],"shape":[%lld,%zu],"typestr":"<f4","version":3})",
                static_cast<unsigned long long>(reinterpret_cast<uintptr_t>(dense.data())),
                static_cast<long long>(rows), width);
  const char* config = R"({"type":0,"training":false,"iteration_begin":0,"iteration_end":0,)"
                       R"("strict_shape":false,"missing":NaN,"cache_id":0})";

  auto file = Check(lathe::DatasetFile::Open(input), "open");
  double best_raw = 1e30, best_lathe = 1e30;
  float raw_first = 0;
  for (int rep = 0; rep < repeats; ++rep) {
    for (int order = 0; order < 2; ++order) {
      if ((rep + order) % 2 == 0) {
        const auto start = std::chrono::steady_clock::now();
        bst_ulong const* shape = nullptr;
        bst_ulong dim = 0;
        const float* result = nullptr;
        XGB_CHECK(XGBoosterPredictFromDense(booster, array, config, nullptr, &shape, &dim, &result));
        best_raw = std::min(best_raw, Seconds(start));
        raw_first = result[0];
      } else {
        const std::string output = (dir / ("out-" + std::to_string(rep) + ".lcol")).string();
        const auto start = std::chrono::steady_clock::now();
        auto summary = Check(lathe::ml::ScoreDataset(*file, *predictor, output, lathe::ml::BatchScoreOptions{}),
                             "score");
        best_lathe = std::min(best_lathe, Seconds(start));
        if (summary.rows != rows) return 1;
        fs::remove(output);
      }
    }
  }
  // The compiled evaluator alone on the encoded matrix, all cores: how much of (b) is prediction.
  double best_eval = 1e30;
  {
    std::vector<float> out(static_cast<size_t>(rows));
    for (int rep = 0; rep < repeats; ++rep) {
      const auto start = std::chrono::steady_clock::now();
      std::vector<std::thread> pool;
      const size_t per = (static_cast<size_t>(rows) + static_cast<size_t>(cores) - 1) / static_cast<size_t>(cores);
      for (size_t begin = 0; begin < static_cast<size_t>(rows); begin += per) {
        const size_t len = std::min(per, static_cast<size_t>(rows) - begin);
        pool.emplace_back([&, begin, len] { predictor->PredictRows(dense.data() + begin * width, len, out.data() + begin); });
      }
      for (auto& t : pool) t.join();
      best_eval = std::min(best_eval, Seconds(start));
    }
  }
  // Same model, same first row: the two paths agree.
  std::vector<float> check(1);
  predictor->PredictRows(dense.data(), 1, check.data());
  XGB_CHECK(XGBoosterFree(booster));
  fs::remove_all(dir);
  std::printf("batch scoring %lld rows x %zu features, 100 trees depth 6, %d cores\n", static_cast<long long>(rows),
              width, cores);
  std::printf("  raw XGBoost predict (encoded matrix, in memory): %.3f s  %.0f rows/s\n", best_raw,
              static_cast<double>(rows) / best_raw);
  std::printf("  lathe ScoreDataset (file -> file):               %.3f s  %.0f rows/s\n", best_lathe,
              static_cast<double>(rows) / best_lathe);
  std::printf("  lathe compiled evaluator only (encoded matrix):  %.3f s  %.0f rows/s\n", best_eval,
              static_cast<double>(rows) / best_eval);
  std::printf("  first row: raw %.7f lathe %.7f\n", static_cast<double>(raw_first), static_cast<double>(check[0]));
  std::printf("  throughput lathe/raw: %.2f (target >= 0.90)\n", best_raw / best_lathe);
  return 0;
}
