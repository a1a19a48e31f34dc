// lathe_profile_bench FILE.csv|FILE.lcol [repeats] [target]: imports FILE.csv once into a temp dataset file, then times
// ImportCsvFile and ProfileDataset on it (best of N each, wall and process CPU seconds) and prints
// {"rows":..,"import_seconds":..,"import_cpu_seconds":..,"profile_seconds":..,"profile_cpu_seconds":..,
//  "ratio_wall":profile/import,"ratio_cpu":profile/import}. Given a .lcol file it only profiles it (import
// figures are then 0). LATHE_PROFILE_KEEP=1 keeps the imported file. LATHE_THREADS sets both thread counts; LATHE_PROFILE_DUMP=1 prints the profile JSON
// to stderr. Exit code 1 on errors.
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "common/memory.h"
#include "data/csv_import.h"
#include "data/dataset_file.h"
#include "data/profile.h"

namespace {

double CpuSeconds() {
  rusage ru{};
  ::getrusage(RUSAGE_SELF, &ru);
  return static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
         static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

double WallSeconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

}  // namespace

int main(int argc, char** argv) {
  lathe::TuneAllocator();
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s FILE.csv [repeats] [target]\n", argv[0]);
    return 2;
  }
  std::string input = argv[1];
  int repeats = argc > 2 ? std::max(1, std::atoi(argv[2])) : 3;
  std::string output = input + ".profile-bench-" + std::to_string(::getpid()) + ".lcol";
  lathe::CsvOptions csv;
  lathe::ProfileOptions options;
  if (argc > 3) options.target = argv[3];
  if (const char* th = std::getenv("LATHE_THREADS")) csv.num_threads = options.num_threads = std::atoi(th);
  double import_wall = 0, import_cpu = 0, profile_wall = 1e30, profile_cpu = 1e30;
  int64_t rows = 0;
  bool lcol_input = input.size() > 5 && input.substr(input.size() - 5) == ".lcol";
  if (lcol_input) output = input;  // profile an existing dataset file; no import timing
  for (int i = 0; i < repeats && !lcol_input; ++i) {
    ::unlink(output.c_str());
    double w0 = WallSeconds(), c0 = CpuSeconds();
    auto r = lathe::ImportCsvFile(input, output, csv, nullptr, nullptr);
    double iw = WallSeconds() - w0, ic = CpuSeconds() - c0;
    import_wall = i == 0 ? iw : std::min(import_wall, iw);
    import_cpu = i == 0 ? ic : std::min(import_cpu, ic);
    if (!r.ok()) {
      std::fprintf(stderr, "import failed: %s\n", r.status().ToString().c_str());
      return 1;
    }
    rows = r->rows;
  }
  auto file = lathe::DatasetFile::Open(output);
  if (!file.ok()) {
    std::fprintf(stderr, "open failed: %s\n", file.status().ToString().c_str());
    if (!lcol_input) ::unlink(output.c_str());
    return 1;
  }
  rows = (*file)->num_rows();
  for (int i = 0; i < repeats; ++i) {
    double w0 = WallSeconds(), c0 = CpuSeconds();
    auto p = lathe::ProfileDataset(**file, options, nullptr);
    profile_wall = std::min(profile_wall, WallSeconds() - w0);
    profile_cpu = std::min(profile_cpu, CpuSeconds() - c0);
    if (!p.ok()) {
      std::fprintf(stderr, "profile failed: %s\n", p.status().ToString().c_str());
      if (!lcol_input) ::unlink(output.c_str());
      return 1;
    }
    if (std::getenv("LATHE_PROFILE_DUMP")) std::fprintf(stderr, "%s\n", p->dump(1).c_str());
  }
  // LATHE_PROFILE_KEEP=1 keeps the imported dataset file (its path goes to stderr) for profiling runs.
  if (std::getenv("LATHE_PROFILE_KEEP")) {
    std::fprintf(stderr, "kept %s\n", output.c_str());
  } else if (!lcol_input) {
    ::unlink(output.c_str());
  }
  std::printf(
      "{\"rows\":%lld,\"import_seconds\":%.4f,\"import_cpu_seconds\":%.4f,\"profile_seconds\":%.4f,"
      "\"profile_cpu_seconds\":%.4f,\"ratio_wall\":%.3f,\"ratio_cpu\":%.3f}\n",
      static_cast<long long>(rows), import_wall, import_cpu, profile_wall, profile_cpu, import_wall > 0 ? profile_wall / import_wall : 0.0,
      import_cpu > 0 ? profile_cpu / import_cpu : 0.0);
  return 0;
}
