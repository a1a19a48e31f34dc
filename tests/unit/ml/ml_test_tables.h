// In-memory Tables for the ml tests (the CSV reader lives in another layer).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <random>
#include <string>
#include <unordered_map>
#include <vector>

#include "data/table.h"

namespace lathe::ml::testing {

inline Column MakeColumn(const std::string& name, ColumnType type) {
  Column c;
  c.name = name;
  c.type = type;
  return c;
}
inline void PushInt(Column* c, int64_t v, bool valid = true) {
  c->i64.push_back(valid ? v : 0);
  c->valid.push_back(valid ? 1 : 0);
}
inline void PushFloat(Column* c, double v, bool valid = true) {
  c->f64.push_back(valid ? v : 0.0);
  c->valid.push_back(valid ? 1 : 0);
}
inline void PushBool(Column* c, bool v, bool valid = true) {
  c->b.push_back(v ? 1 : 0);
  c->valid.push_back(valid ? 1 : 0);
}
// A value known to be new (an id): appended to the dictionary without a search.
inline void PushUniqueString(Column* c, const std::string& v) {
  c->dict.push_back(v);
  c->codes.push_back(static_cast<int32_t>(c->dict.size() - 1));
  c->valid.push_back(1);
}

inline void PushString(Column* c, const std::string& v, bool valid = true) {
  int32_t code = 0;
  if (valid) {
    auto it = std::find(c->dict.begin(), c->dict.end(), v);
    if (it == c->dict.end()) {
      c->dict.push_back(v);
      code = static_cast<int32_t>(c->dict.size() - 1);
    } else {
      code = static_cast<int32_t>(it - c->dict.begin());
    }
  }
  c->codes.push_back(code);
  c->valid.push_back(valid ? 1 : 0);
}

// Mixed-type table: age (int), income (float, ~5% missing), active (bool), city (string, 5 values),
// signup (datetime), customer_id (unique string), and a target chosen by `task`:
//   "binary" -> label "yes"/"no"; "multiclass" -> tier "gold"/"silver"/"bronze"; "regression" -> spend (float).
inline Table MakeMixedTable(int64_t rows, uint64_t seed, const std::string& task) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> u(0.0, 1.0);
  const char* cities[] = {"berlin", "paris", "rome", "oslo", "lima"};
  Column age = MakeColumn("age", ColumnType::kInt64), income = MakeColumn("income", ColumnType::kFloat64),
         active = MakeColumn("active", ColumnType::kBool), city = MakeColumn("city", ColumnType::kString),
         signup = MakeColumn("signup", ColumnType::kDatetime), id = MakeColumn("customer_id", ColumnType::kString);
  Column target = MakeColumn(task == "binary" ? "label" : task == "multiclass" ? "tier" : "spend",
                             task == "regression" ? ColumnType::kFloat64 : ColumnType::kString);
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t a = 18 + static_cast<int64_t>(u(rng) * 60);
    const double inc = 20000 + u(rng) * 80000;
    const bool inc_valid = u(rng) > 0.05;
    const bool act = u(rng) < 0.6;
    const int ci = static_cast<int>(u(rng) * 5) % 5;
    const int64_t day = 18000 + static_cast<int64_t>(u(rng) * 1500);
    PushInt(&age, a);
    PushFloat(&income, inc, inc_valid);
    PushBool(&active, act, u(rng) > 0.02);
    PushString(&city, cities[ci], u(rng) > 0.03);
    PushInt(&signup, day * 86400LL * 1000000LL + static_cast<int64_t>(u(rng) * 86400) * 1000000LL);
    char id_text[32];
    std::snprintf(id_text, sizeof(id_text), "c%lld", static_cast<long long>(r));
    PushUniqueString(&id, id_text);
    const double score = (a - 45) / 15.0 + (inc_valid ? (inc - 60000) / 30000.0 : 0.0) + (act ? 0.8 : -0.8) +
                         (ci == 2 ? 1.2 : 0.0) + (u(rng) - 0.5) * 1.5;
    if (task == "binary") {
      PushString(&target, score > 0.3 ? "yes" : "no");
    } else if (task == "multiclass") {
      PushString(&target, score > 1.0 ? "gold" : score > -0.5 ? "silver" : "bronze");
    } else {
      PushFloat(&target, 100 + 40 * score);
    }
  }
  Table t;
  t.num_rows = rows;
  for (Column* c : {&age, &income, &active, &city, &signup, &id, &target}) t.columns.push_back(std::move(*c));
  return t;
}

}  // namespace lathe::ml::testing
