#include "ml/split.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <numeric>
#include <random>
#include <set>
#include <unordered_map>

namespace lathe::ml {
namespace {

Status SplitFieldError(const std::string& name, const std::string& message) {
  const std::string field = "split." + name;
  return Status::InvalidArgument(field + " " + message).WithDetail(ErrorDetail::Field(field, message));
}

// Fisher-Yates over mt19937_64 (std::shuffle's algorithm is implementation-defined).
void Shuffle(std::vector<size_t>* v, std::mt19937_64* rng) {
  for (size_t i = v->size(); i > 1; --i) std::swap((*v)[i - 1], (*v)[static_cast<size_t>((*rng)() % i)]);
}

std::vector<std::vector<size_t>> ClassGroups(const std::vector<float>& y) {
  size_t classes = 0;
  for (float v : y) classes = std::max(classes, static_cast<size_t>(v) + 1);
  std::vector<std::vector<size_t>> groups(classes);
  for (size_t i = 0; i < y.size(); ++i) groups[static_cast<size_t>(y[i])].push_back(i);
  return groups;
}

bool AppliesTo(const std::string& field, SplitMethod m) {
  if (field == "test_fraction") return m == SplitMethod::kHoldout || m == SplitMethod::kTime;
  if (field == "folds") return m == SplitMethod::kKFold || m == SplitMethod::kGroupKFold;
  if (field == "group_column") return m == SplitMethod::kGroupKFold;
  if (field == "time_column") return m == SplitMethod::kTime;
  if (field == "stratify") return m == SplitMethod::kHoldout || m == SplitMethod::kKFold;
  return true;  // method, seed
}

}  // namespace

const char* SplitMethodName(SplitMethod m) {
  switch (m) {
    case SplitMethod::kHoldout:
      return "holdout";
    case SplitMethod::kKFold:
      return "kfold";
    case SplitMethod::kGroupKFold:
      return "group_kfold";
    case SplitMethod::kTime:
      return "time";
  }
  return "holdout";
}

Result<SplitSpec> ParseSplitSpec(const Json& j) {
  if (!j.is_object()) {
    return Status::InvalidArgument("split must be an object")
        .WithDetail(ErrorDetail::Field("split", "must be an object"));
  }
  static const std::set<std::string> kKnown = {"method",      "test_fraction", "folds",   "group_column",
                                               "time_column", "seed",          "stratify"};
  for (auto it = j.begin(); it != j.end(); ++it) {
    if (!kKnown.count(it.key())) {
      return SplitFieldError(it.key(),
                             "is not a split field (method, test_fraction, folds, group_column, "
                             "time_column, seed, stratify)");
    }
  }
  SplitSpec spec;
  if (j.contains("method")) {
    const Json& m = j["method"];
    const std::string name = m.is_string() ? m.get<std::string>() : "";
    if (name == "holdout")
      spec.method = SplitMethod::kHoldout;
    else if (name == "kfold")
      spec.method = SplitMethod::kKFold;
    else if (name == "group_kfold")
      spec.method = SplitMethod::kGroupKFold;
    else if (name == "time")
      spec.method = SplitMethod::kTime;
    else
      return SplitFieldError("method", "must be one of holdout, kfold, group_kfold, time");
  }
  for (auto it = j.begin(); it != j.end(); ++it) {
    if (!AppliesTo(it.key(), spec.method)) {
      return SplitFieldError(it.key(),
                             std::string("does not apply to method ") + SplitMethodName(spec.method));
    }
  }
  if (j.contains("test_fraction")) {
    if (!j["test_fraction"].is_number()) return SplitFieldError("test_fraction", "must be a number");
    spec.test_fraction = j["test_fraction"].get<double>();
    if (!(spec.test_fraction > 0 && spec.test_fraction <= 0.9)) {
      return SplitFieldError("test_fraction", "must be in (0, 0.9]");
    }
  }
  if (j.contains("folds")) {
    const Json& f = j["folds"];
    if (!f.is_number_integer()) return SplitFieldError("folds", "must be an integer");
    const int64_t folds = f.get<int64_t>();
    if (folds < SplitSpec::kMinFolds || folds > SplitSpec::kMaxFolds) {
      return SplitFieldError("folds", "must be in [" + std::to_string(SplitSpec::kMinFolds) + ", " +
                                          std::to_string(SplitSpec::kMaxFolds) + "]");
    }
    spec.folds = static_cast<int>(folds);
  }
  for (const char* col : {"group_column", "time_column"}) {
    if (!j.contains(col)) continue;
    if (!j[col].is_string() || j[col].get<std::string>().empty()) {
      return SplitFieldError(col, "must be a non-empty column name");
    }
    (std::string(col) == "group_column" ? spec.group_column : spec.time_column) = j[col].get<std::string>();
  }
  if (spec.method == SplitMethod::kGroupKFold && spec.group_column.empty()) {
    return SplitFieldError("group_column", "is required for method group_kfold");
  }
  if (spec.method == SplitMethod::kTime && spec.time_column.empty()) {
    return SplitFieldError("time_column", "is required for method time");
  }
  if (j.contains("seed")) {
    const Json& s = j["seed"];
    if (!s.is_number_integer() ||
        (s.is_number_integer() && !s.is_number_unsigned() && s.get<int64_t>() < 0)) {
      return SplitFieldError("seed", "must be a non-negative integer");
    }
    spec.seed = s.get<uint64_t>();
  }
  if (j.contains("stratify")) {
    if (!j["stratify"].is_boolean()) return SplitFieldError("stratify", "must be true or false");
    spec.stratify = j["stratify"].get<bool>();
  }
  return spec;
}

Json SplitSpecToJson(const SplitSpec& spec) {
  Json j = {{"method", SplitMethodName(spec.method)}, {"seed", spec.seed}};
  switch (spec.method) {
    case SplitMethod::kHoldout:
      j["test_fraction"] = spec.test_fraction;
      j["stratify"] = spec.stratify;
      break;
    case SplitMethod::kKFold:
      j["folds"] = spec.folds;
      j["stratify"] = spec.stratify;
      break;
    case SplitMethod::kGroupKFold:
      j["folds"] = spec.folds;
      j["group_column"] = spec.group_column;
      break;
    case SplitMethod::kTime:
      j["test_fraction"] = spec.test_fraction;
      j["time_column"] = spec.time_column;
      break;
  }
  return j;
}

void SplitRows(const std::vector<float>& y, bool stratify, double test_fraction, uint64_t seed,
               std::vector<size_t>* train_pos, std::vector<size_t>* test_pos) {
  train_pos->clear();
  test_pos->clear();
  std::mt19937_64 rng(seed);
  auto take = [&](std::vector<size_t>* group) {
    Shuffle(group, &rng);
    const size_t n = group->size();
    auto n_test = static_cast<size_t>(std::llround(static_cast<double>(n) * test_fraction));
    if (n >= 2)
      n_test = std::clamp<size_t>(n_test, 1, n - 1);
    else
      n_test = 0;
    test_pos->insert(test_pos->end(), group->begin(), group->begin() + static_cast<std::ptrdiff_t>(n_test));
    train_pos->insert(train_pos->end(), group->begin() + static_cast<std::ptrdiff_t>(n_test), group->end());
  };
  if (stratify) {
    for (auto& g : ClassGroups(y)) take(&g);
  } else {
    std::vector<size_t> all(y.size());
    std::iota(all.begin(), all.end(), size_t{0});
    take(&all);
  }
  std::sort(train_pos->begin(), train_pos->end());
  std::sort(test_pos->begin(), test_pos->end());
}

std::vector<int> KFoldAssign(const std::vector<float>& y, bool stratify, int folds, uint64_t seed) {
  std::vector<int> fold(y.size(), 0);
  std::mt19937_64 rng(seed);
  std::vector<std::vector<size_t>> groups;
  if (stratify) {
    groups = ClassGroups(y);
  } else {
    groups.emplace_back(y.size());
    std::iota(groups[0].begin(), groups[0].end(), size_t{0});
  }
  // Dealing continues where the previous class stopped, so small classes do not all start at fold 0 and the
  // fold sizes stay within one of each other overall.
  size_t next = 0;
  for (auto& g : groups) {
    Shuffle(&g, &rng);
    for (size_t pos : g) fold[pos] = static_cast<int>(next++ % static_cast<size_t>(folds));
  }
  return fold;
}

Result<std::vector<int>> GroupKFoldAssign(const std::vector<int64_t>& group_ids, int folds, uint64_t seed) {
  int64_t n_groups = 0;
  for (int64_t g : group_ids) n_groups = std::max(n_groups, g + 1);
  if (n_groups < folds) {
    return SplitFieldError(
        "folds", "must be at most the number of distinct groups (" + std::to_string(n_groups) + ")");
  }
  std::vector<size_t> size(static_cast<size_t>(n_groups), 0);
  for (int64_t g : group_ids) ++size[static_cast<size_t>(g)];
  std::vector<size_t> order(size.size());
  std::iota(order.begin(), order.end(), size_t{0});
  std::mt19937_64 rng(seed);
  Shuffle(&order, &rng);
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return size[a] > size[b]; });
  std::vector<size_t> fold_size(static_cast<size_t>(folds), 0);
  std::vector<int> group_fold(size.size(), 0);
  for (size_t g : order) {
    const auto lightest =
        static_cast<size_t>(std::min_element(fold_size.begin(), fold_size.end()) - fold_size.begin());
    group_fold[g] = static_cast<int>(lightest);
    fold_size[lightest] += size[g];
  }
  std::vector<int> fold(group_ids.size());
  for (size_t i = 0; i < group_ids.size(); ++i) fold[i] = group_fold[static_cast<size_t>(group_ids[i])];
  return fold;
}

std::vector<int64_t> GroupIds(const Column& column, const std::vector<int64_t>& rows) {
  std::unordered_map<std::string, int64_t> ids;
  std::vector<int64_t> out(rows.size());
  for (size_t i = 0; i < rows.size(); ++i) {
    const auto r = static_cast<size_t>(rows[i]);
    std::string key;
    if (!column.IsValid(r)) {
      key.assign(1, '\0');  // missing: one group, distinct from every value (values start with a type tag)
    } else if (column.type == ColumnType::kString) {
      key = "s";
      key += column.StringAt(r);
    } else if (column.type == ColumnType::kInt64 || column.type == ColumnType::kDatetime) {
      key = "i" + std::to_string(column.i64[r]);
    } else if (column.type == ColumnType::kBool) {
      key = column.b[r] ? "b1" : "b0";
    } else {
      char buf[40];
      std::snprintf(buf, sizeof(buf), "f%.17g", column.f64[r]);
      key = buf;
    }
    auto [it, inserted] = ids.emplace(std::move(key), static_cast<int64_t>(ids.size()));
    out[i] = it->second;
  }
  return out;
}

Status TimeSplit(const std::vector<double>& times, double test_fraction, std::vector<size_t>* train_pos,
                 std::vector<size_t>* test_pos) {
  train_pos->clear();
  test_pos->clear();
  std::vector<size_t> order;
  for (size_t i = 0; i < times.size(); ++i) {
    if (!std::isnan(times[i])) order.push_back(i);
  }
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return times[a] < times[b]; });
  const size_t n = order.size();
  if (n < 2 || times[order.front()] == times[order.back()]) {
    return SplitFieldError("time_column", "needs at least two distinct non-missing times to split on");
  }
  auto n_test = static_cast<size_t>(std::llround(static_cast<double>(n) * test_fraction));
  n_test = std::clamp<size_t>(n_test, 1, n - 1);
  size_t cut = n - n_test;
  while (cut > 0 && times[order[cut - 1]] == times[order[cut]]) --cut;
  if (cut == 0) {
    // The boundary instant reaches back to the first row: keep it in training and test on what follows.
    cut = n - n_test;
    while (cut < n && times[order[cut - 1]] == times[order[cut]]) ++cut;
  }
  train_pos->assign(order.begin(), order.begin() + static_cast<std::ptrdiff_t>(cut));
  test_pos->assign(order.begin() + static_cast<std::ptrdiff_t>(cut), order.end());
  std::sort(train_pos->begin(), train_pos->end());
  std::sort(test_pos->begin(), test_pos->end());
  return Status::Ok();
}

}  // namespace lathe::ml
