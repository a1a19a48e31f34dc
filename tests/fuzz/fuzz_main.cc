// Standalone fuzz driver (g++ has no libFuzzer): links with one target's LLVMFuzzerTestOneInput.
//
//   fuzz_<target> SEED_PATH...      files, or directories whose regular files are seeds
//
// Replays every seed, then mutates them (bit flips, byte inserts/deletes/overwrites with interesting values,
// truncation, duplication, splicing two seeds) until FUZZ_SECONDS (default 10) or FUZZ_ITERATIONS (default
// unbounded) runs out. FUZZ_SEED fixes the random seed (default 1, so a run is reproducible). The input being
// run is kept in memory; on a crash signal it is written to ./fuzz-crash-<pid>.bin before the process dies,
// so the failure can be replayed by passing that file as the only seed.
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

namespace {

std::string g_current;

void OnCrash(int sig) {
  char name[64];
  std::snprintf(name, sizeof(name), "fuzz-crash-%d.bin", static_cast<int>(::getpid()));
  FILE* f = std::fopen(name, "wb");
  if (f) {
    std::fwrite(g_current.data(), 1, g_current.size(), f);
    std::fclose(f);
  }
  const char msg[] = "fuzz: crash; input saved to fuzz-crash-<pid>.bin\n";
  (void)!::write(2, msg, sizeof(msg) - 1);
  ::signal(sig, SIG_DFL);
  ::raise(sig);
}

void Run(const std::string& input) {
  g_current = input;
  LLVMFuzzerTestOneInput(reinterpret_cast<const uint8_t*>(g_current.data()), g_current.size());
}

std::string Mutate(const std::vector<std::string>& seeds, std::mt19937_64& rng) {
  std::string s = seeds[rng() % seeds.size()];
  static const char* kInteresting[] = {"\"", "'", ",", ";", "\t", "\n", "\r\n", "\\", "{", "}", "[", "]", ":",
                                       "\xEF\xBB\xBF", "\xFF", "\xC3", "\x00", "null", "NaN", "-0", "1e400",
                                       "9223372036854775808", "((((", "))", "and", "`", "PK\x03\x04"};
  const int ops = 1 + static_cast<int>(rng() % 4);
  for (int k = 0; k < ops; ++k) {
    size_t pos = s.empty() ? 0 : rng() % (s.size() + 1);
    switch (rng() % 8) {
      case 0:
        if (!s.empty()) s[pos % s.size()] ^= static_cast<char>(1u << (rng() % 8));
        break;
      case 1: s.insert(pos, 1, static_cast<char>(rng())); break;
      case 2:
        if (!s.empty()) s.erase(pos % s.size(), 1 + rng() % 8);
        break;
      case 3: {
        const char* t = kInteresting[rng() % (sizeof(kInteresting) / sizeof(*kInteresting))];
        s.insert(pos, t, std::strlen(t) ? std::strlen(t) : 1);
        break;
      }
      case 4: s.resize(pos); break;
      case 5:
        if (!s.empty() && s.size() < (1u << 20)) {
          size_t from = rng() % s.size();
          s.insert(pos, s.substr(from, 1 + rng() % 64));
        }
        break;
      case 6: {
        const std::string& other = seeds[rng() % seeds.size()];
        if (!other.empty()) s = s.substr(0, pos) + other.substr(rng() % other.size());
        break;
      }
      default:
        if (!s.empty()) s[pos % s.size()] = static_cast<char>(rng());
        break;
    }
  }
  return s;
}

}  // namespace

int main(int argc, char** argv) {
  for (int sig : {SIGSEGV, SIGABRT, SIGBUS, SIGFPE, SIGILL}) ::signal(sig, OnCrash);
  std::vector<std::string> seeds;
  for (int i = 1; i < argc; ++i) {
    std::error_code ec;
    std::vector<std::filesystem::path> files;
    if (std::filesystem::is_directory(argv[i], ec)) {
      for (const auto& e : std::filesystem::recursive_directory_iterator(argv[i], ec)) {
        if (e.is_regular_file()) files.push_back(e.path());
      }
    } else {
      files.emplace_back(argv[i]);
    }
    for (const auto& f : files) {
      std::ifstream in(f, std::ios::binary);
      std::stringstream ss;
      ss << in.rdbuf();
      seeds.push_back(ss.str());
    }
  }
  if (seeds.empty()) seeds.push_back("");
  for (const auto& s : seeds) Run(s);
  const char* secs = std::getenv("FUZZ_SECONDS");
  const char* iters = std::getenv("FUZZ_ITERATIONS");
  const char* seed = std::getenv("FUZZ_SEED");
  const double budget = secs ? std::atof(secs) : 10.0;
  const long long max_iters = iters ? std::atoll(iters) : -1;
  std::mt19937_64 rng(seed ? std::strtoull(seed, nullptr, 10) : 1);
  const auto start = std::chrono::steady_clock::now();
  long long n = 0;
  while (max_iters < 0 || n < max_iters) {
    if (std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() > budget) break;
    Run(Mutate(seeds, rng));
    ++n;
  }
  std::printf("fuzz: %zu seeds, %lld mutated inputs, no crash\n", seeds.size(), n);
  return 0;
}
