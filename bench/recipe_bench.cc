// Recipe apply throughput: a typical 6-step recipe (impute, scale, one_hot, filter, derive, dedupe) over a
// generated table. Usage: lathe_recipe_bench ROWS REPEATS. Prints one JSON line: rows, rows_out, seconds (best
// of REPEATS, apply only), rows_per_s. bench/bench_recipe.py runs it next to the same steps in pandas.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <random>

#include "common/json.h"
#include "common/memory.h"
#include "data/recipe.h"
#include "data/table_ops.h"

using namespace lathe;

static Table Generate(size_t n) {
  std::mt19937_64 rng(42);
  Table t;
  t.num_rows = static_cast<int64_t>(n);
  Column id = NullColumn("id", ColumnType::kInt64, n);
  Column age = NullColumn("age", ColumnType::kFloat64, n);
  Column income = NullColumn("income", ColumnType::kFloat64, n);
  Column city = NullColumn("city", ColumnType::kString, n);
  Column score = NullColumn("score", ColumnType::kInt64, n);
  for (int c = 0; c < 50; ++c) city.dict.push_back("city_" + std::to_string(c));
  std::normal_distribution<double> nage(40, 15), ninc(50000, 20000);
  for (size_t r = 0; r < n; ++r) {
    id.valid[r] = 1;
    id.i64[r] = static_cast<int64_t>(rng() % (n - n / 20));  // ~5% repeated ids
    age.valid[r] = rng() % 10 != 0;
    age.f64[r] = nage(rng);
    income.valid[r] = 1;
    income.f64[r] = ninc(rng);
    city.valid[r] = 1;
    city.codes[r] = static_cast<int32_t>(std::min<uint64_t>(rng() % 64, 49));
    score.valid[r] = 1;
    score.i64[r] = static_cast<int64_t>(rng() % 100);
  }
  t.columns = {id, age, income, city, score};
  return t;
}

int main(int argc, char** argv) {
  lathe::TuneAllocator();
  const size_t n = argc > 1 ? std::strtoull(argv[1], nullptr, 10) : 1000000;
  const int repeats = argc > 2 ? std::atoi(argv[2]) : 3;
  auto steps = ParseJson(R"([
    {"op":"impute","params":{"columns":["age"],"strategy":"mean"}},
    {"op":"scale_minmax","params":{"columns":["income"]}},
    {"op":"one_hot","params":{"columns":["city"],"max_categories":20}},
    {"op":"filter_rows","params":{"expr":"age > 18 and score >= 10"}},
    {"op":"derive","params":{"name":"ratio","expr":"income * 2 + age / 10"}},
    {"op":"dedupe","params":{"columns":["id"],"keep":"first"}}])");
  // Optional third argument: run only the first K steps (to see where time goes).
  if (argc > 3) steps->erase(steps->begin() + std::atoi(argv[3]), steps->end());
  auto recipe = ParseRecipe(*steps);
  if (!recipe.ok()) {
    std::fprintf(stderr, "%s\n", recipe.status().ToString().c_str());
    return 1;
  }
  const Table input = Generate(n);
  double best = 1e300;
  int64_t rows_out = 0;
  for (int i = 0; i < repeats; ++i) {
    Table copy = input;  // the copy is not timed: pandas works on a frame it already holds too
    const auto t0 = std::chrono::steady_clock::now();
    auto out = ApplyRecipe(*recipe, std::move(copy), {}, nullptr);
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (!out.ok()) {
      std::fprintf(stderr, "%s\n", out.status().ToString().c_str());
      return 1;
    }
    rows_out = out->table.num_rows;
    best = std::min(best, s);
  }
  std::printf("{\"rows\": %zu, \"rows_out\": %lld, \"seconds\": %.4f, \"rows_per_s\": %.0f}\n", n,
              static_cast<long long>(rows_out), best, static_cast<double>(n) / best);
  return 0;
}
