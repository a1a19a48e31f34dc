// lathe_raw_predict_bench BUNDLE BODY.json [seconds] [threads]: the raw XGBoost C API's rows/s on a request's
// rows — the peer of bench_predict.py's 1000-row-request measurement.
//
// BUNDLE is a model version's file (GET …/models/{m}/versions/{v}/bundle), BODY a native predict body
// ({"instances": [...]}). Its rows are encoded once by the model's own pipeline; then `threads` threads
// (default: all cores) each call XGBoosterPredictFromDense (in-place, nthread = 1, as a serving thread
// would) on the whole block, over and over, for `seconds` (default 5). Prints one JSON line:
// {"rows_per_call", "calls", "seconds", "rows_per_s"} — and the same for lathe's compiled evaluator.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "bench_table.h"
#include "common/json.h"
#include "ml/predictor.h"
#include "serving/request_body.h"

namespace {

using lathe::bench::Check;

std::string ReadFile(const char* path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    std::fprintf(stderr, "cannot read %s\n", path);
    std::exit(1);
  }
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Calls `predict` on every thread until `seconds` pass; returns calls made.
template <typename F>
uint64_t Hammer(int threads, double seconds, F predict) {
  std::atomic<uint64_t> calls{0};
  const auto end = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&] {
      uint64_t mine = 0;
      while (std::chrono::steady_clock::now() < end) {
        predict();
        ++mine;
      }
      calls += mine;
    });
  }
  for (auto& t : pool) t.join();
  return calls.load();
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: lathe_raw_predict_bench BUNDLE BODY.json [seconds] [threads]\n");
    return 2;
  }
  const double seconds = argc > 3 ? std::atof(argv[3]) : 5.0;
  const int threads = argc > 4 ? std::atoi(argv[4]) : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  auto predictor = Check(lathe::ml::Predictor::Load(ReadFile(argv[1])), "load bundle");
  lathe::Json body = Check(lathe::ParseJson(ReadFile(argv[2]), 64), "parse body");
  lathe::Json instances = Check(lathe::NativeInstances(body, lathe::ml::Predictor::kMaxInstances), "body");
  std::vector<float> rows;
  if (auto st = predictor->EncodeInstances(instances, &rows); !st.ok()) {
    std::fprintf(stderr, "encode: %s\n", st.ToString().c_str());
    return 1;
  }
  const size_t n = instances.size();
  const uint64_t raw_calls = Hammer(threads, seconds, [&] {
    std::vector<float> out;
    if (!predictor->PredictRowsXgboost(rows.data(), n, &out).ok()) std::abort();
  });
  const uint64_t eval_calls = Hammer(threads, seconds, [&] {
    std::vector<float> out(n * predictor->OutputWidth());
    predictor->PredictRows(rows.data(), n, out.data());
  });
  std::printf("{\"rows_per_call\": %zu, \"threads\": %d, \"seconds\": %.1f, \"raw_calls\": %llu, "
              "\"raw_rows_per_s\": %.0f, \"evaluator_rows_per_s\": %.0f}\n",
              n, threads, seconds, static_cast<unsigned long long>(raw_calls),
              static_cast<double>(raw_calls * n) / seconds, static_cast<double>(eval_calls * n) / seconds);
  return 0;
}
