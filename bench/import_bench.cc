// lathe_import_bench FILE.csv [repeats]: times ImportCsvFile (best of N) into a temp file next to the
// input and prints {"seconds":..,"rows":..,"mb_per_s":..,"output_bytes":..}. Exit code 1 on import errors.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <algorithm>

#include <unistd.h>

#include "common/memory.h"
#include "data/csv_import.h"

int main(int argc, char** argv) {
  lathe::TuneAllocator();
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s FILE.csv [repeats]\n", argv[0]);
    return 2;
  }
  std::string input = argv[1];
  int repeats = argc > 2 ? std::max(1, std::atoi(argv[2])) : 3;
  std::string output = input + ".bench-" + std::to_string(::getpid()) + ".lcol";
  lathe::CsvOptions options;
  if (const char* level = std::getenv("LATHE_ZSTD_LEVEL")) options.zstd_level = std::atoi(level);
  if (const char* th = std::getenv("LATHE_THREADS")) options.num_threads = std::atoi(th);
  double best = 1e30;
  lathe::ImportResult last;
  for (int i = 0; i < repeats; ++i) {
    auto t0 = std::chrono::steady_clock::now();
    auto r = lathe::ImportCsvFile(input, output, options, nullptr, nullptr);
    double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (!r.ok()) {
      std::fprintf(stderr, "import failed: %s\n", r.status().ToString().c_str());
      return 1;
    }
    last = *r;
    best = std::min(best, s);
    ::unlink(output.c_str());
  }
  std::printf("{\"seconds\":%.4f,\"rows\":%lld,\"mb_per_s\":%.1f,\"input_bytes\":%lld,\"output_bytes\":%lld}\n", best,
              static_cast<long long>(last.rows), static_cast<double>(last.input_bytes) / 1e6 / best,
              static_cast<long long>(last.input_bytes), static_cast<long long>(last.output_bytes));
  return 0;
}
