// Shared by the C++ bench drivers. MakeBenchTable: the in-memory benchmark table — shaped like the benchmark
// CSV (6 integers, 8 floats with ~5% missing, 4 low-cardinality strings, 2 dates, and a binary `label`
// correlated with them), deterministic for a seed. Check: a Result's value, or exit(1) saying what failed.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "common/status.h"
#include "data/table.h"

namespace lathe::bench {

template <typename T>
T Check(lathe::Result<T> r, const char* what) {
  if (!r.ok()) {
    std::fprintf(stderr, "%s: %s\n", what, r.status().ToString().c_str());
    std::exit(1);
  }
  return std::move(r).value();
}

inline Table MakeBenchTable(int64_t rows, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> u(0.0, 1.0);
  std::normal_distribution<double> gauss(0.0, 1.0);
  Table t;
  t.num_rows = rows;
  const auto n = static_cast<size_t>(rows);
  auto add = [&](const std::string& name, ColumnType type) -> Column& {
    Column c;
    c.name = name;
    c.type = type;
    c.valid.assign(n, 1);
    switch (type) {
      case ColumnType::kInt64:
      case ColumnType::kDatetime: c.i64.resize(n); break;
      case ColumnType::kFloat64: c.f64.resize(n); break;
      case ColumnType::kBool: c.b.resize(n); break;
      case ColumnType::kString: c.codes.resize(n); break;
    }
    t.columns.push_back(std::move(c));
    return t.columns.back();
  };
  const char* int_names[] = {"age", "tenure_days", "num_orders", "visits", "zip_prefix", "support_calls"};
  for (const char* name : int_names) add(name, ColumnType::kInt64);
  for (int k = 0; k < 8; ++k) add("metric_" + std::to_string(k), ColumnType::kFloat64);
  const std::vector<std::vector<std::string>> dicts = {{"north", "south", "east", "west", "central"},
                                                       {"free", "basic", "pro", "enterprise"},
                                                       {"web", "ios", "android", "email", "partner", "retail"},
                                                       {"desktop", "mobile", "tablet"}};
  const char* str_names[] = {"region", "plan", "channel", "device"};
  for (int k = 0; k < 4; ++k) add(str_names[k], ColumnType::kString).dict = dicts[static_cast<size_t>(k)];
  add("signup_date", ColumnType::kDatetime);
  add("last_seen", ColumnType::kDatetime);
  Column& label = add("label", ColumnType::kInt64);

  const int64_t kDay = 86400LL * 1000000LL;
  for (size_t r = 0; r < n; ++r) {
    double score = 0;
    const int64_t ints[6] = {18 + static_cast<int64_t>(u(rng) * 62), static_cast<int64_t>(u(rng) * 3000),
                             static_cast<int64_t>(std::fabs(gauss(rng)) * 20), static_cast<int64_t>(u(rng) * 500),
                             static_cast<int64_t>(u(rng) * 1000), static_cast<int64_t>(u(rng) * u(rng) * 10)};
    for (int k = 0; k < 6; ++k) t.columns[static_cast<size_t>(k)].i64[r] = ints[k];
    score += (ints[0] - 45) / 20.0 + ints[2] / 20.0 - ints[5] / 4.0;
    for (int k = 0; k < 8; ++k) {
      Column& c = t.columns[static_cast<size_t>(6 + k)];
      const double v = gauss(rng);
      c.f64[r] = v;
      if (u(rng) < 0.05) {
        c.valid[r] = 0;
      } else if (k < 3) {
        score += v * (k == 0 ? 0.8 : 0.4);
      }
    }
    for (int k = 0; k < 4; ++k) {
      Column& c = t.columns[static_cast<size_t>(14 + k)];
      const auto code = static_cast<int32_t>(u(rng) * static_cast<double>(c.dict.size())) %
                        static_cast<int32_t>(c.dict.size());
      c.codes[r] = code;
      if (k == 1) score += code * 0.3;
      if (k == 2 && code == 3) score -= 0.7;
    }
    const int64_t signup = (16000 + static_cast<int64_t>(u(rng) * 3000)) * kDay;
    t.columns[18].i64[r] = signup;
    t.columns[19].i64[r] = signup + static_cast<int64_t>(u(rng) * 400) * kDay;
    score += (t.columns[19].i64[r] - signup) / kDay / 400.0;
    label.i64[r] = score + gauss(rng) * 0.8 > 0.6 ? 1 : 0;
  }
  return t;
}

}  // namespace lathe::bench
