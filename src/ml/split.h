// Evaluation splits: how a training run divides its rows into training and evaluation sets.
//
//   holdout      one seeded random split (stratified per class for classification unless stratify=false).
//   kfold        k seeded folds (stratified per class for classification unless stratify=false); each row is
//                evaluated exactly once by a model that did not see it.
//   group_kfold  k folds where every value of `group_column` lies in exactly one fold (no group is in both
//                training and evaluation). Groups are assigned largest first to the currently smallest fold,
//                with seeded tie-breaking, so fold sizes stay balanced. A missing group value is its own
//                group.
//   time         train on the earliest rows by `time_column` (a datetime column), evaluate on the latest
//                `test_fraction`. Rows sharing the boundary timestamp all go to evaluation, so no instant is
//                on both sides. Rows with a missing time are in neither set.
//
// Every function here is deterministic for a given input and seed on every platform (own shuffles over
// mt19937_64), pure and thread-safe. Errors are kInvalidArgument with ErrorDetail::Field naming
// "split.<field>" as a run request spells it.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/json.h"
#include "common/status.h"
#include "data/table.h"

namespace lathe::ml {

enum class SplitMethod { kHoldout, kKFold, kGroupKFold, kTime };

struct SplitSpec {
  static constexpr int kMinFolds = 2;
  static constexpr int kMaxFolds = 20;

  SplitMethod method = SplitMethod::kHoldout;
  double test_fraction = 0.2;  // holdout, time: in (0, 0.9]
  int folds = 5;               // kfold, group_kfold: in [kMinFolds, kMaxFolds]
  std::string group_column;    // group_kfold: required
  std::string time_column;     // time: required, a datetime column
  uint64_t seed = 42;
  bool stratify = true;  // holdout, kfold: keep class shares per split (classification only)

  bool IsCrossValidation() const {
    return method == SplitMethod::kKFold || method == SplitMethod::kGroupKFold;
  }
};

const char* SplitMethodName(SplitMethod m);  // "holdout" | "kfold" | "group_kfold" | "time"

// Parses the `split` object of a run request ({} = holdout with defaults). Unknown fields, wrong JSON types,
// out-of-range values, fields that do not apply to the method and missing required columns are errors naming
// the field ("split.folds", "split.group_column", ...).
Result<SplitSpec> ParseSplitSpec(const Json& j);
// The canonical form stored with a run: method plus exactly the fields that apply to it.
Json SplitSpecToJson(const SplitSpec& spec);

// Holdout: seeded split of positions 0..y.size()-1, stratified by the class index in `y` when `stratify`.
// Each class with >= 2 rows gets at least one test row and one training row (a class with a single row goes
// to training). Outputs are sorted.
void SplitRows(const std::vector<float>& y, bool stratify, double test_fraction, uint64_t seed,
               std::vector<size_t>* train_pos, std::vector<size_t>* test_pos);

// K-fold: the fold (0..folds-1) of each position. With `stratify`, each class is shuffled and dealt
// round-robin over the folds, so every fold holds its share of each class; fold sizes differ by at most one
// (plus one per class when stratified). Requires 2 <= folds <= y.size().
std::vector<int> KFoldAssign(const std::vector<float>& y, bool stratify, int folds, uint64_t seed);

// Group k-fold: the fold of each position given its group id. kInvalidArgument naming "split.folds" when
// there are fewer distinct groups than folds.
Result<std::vector<int>> GroupKFoldAssign(const std::vector<int64_t>& group_ids, int folds, uint64_t seed);

// Dense group ids (0..n_groups-1, in order of first appearance) of `rows` of `column`; missing is one group.
std::vector<int64_t> GroupIds(const Column& column, const std::vector<int64_t>& rows);

// Time split over `times` (seconds; NaN = missing). Positions are sorted by time (ties by position); the last
// round(n * test_fraction) go to test, moved earlier so that the boundary timestamp is wholly in test.
// kInvalidArgument naming "split.time_column" when fewer than two distinct times are present.
Status TimeSplit(const std::vector<double>& times, double test_fraction, std::vector<size_t>* train_pos,
                 std::vector<size_t>* test_pos);

}  // namespace lathe::ml
