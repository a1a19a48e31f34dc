// Training: fits a FeaturePipeline and a learner on a Table, evaluates on a seeded held-out split, and
// packages pipeline + model into a versioned model bundle (ml/model_bundle.h) that ml/predictor.h loads.
//
// Guarantees:
//   - Validation errors are kInvalidArgument with ErrorDetail::Field naming what is wrong ("target", "task",
//     "learner", "params.max_depth", "test_fraction", "nthread").
//   - Rows with a missing target are dropped (reported in metrics.dropped_rows); none left is an error.
//   - Classification splits are stratified per class; all splits are seeded: the same table + spec gives
//     byte-identical model bundles.
//   - progress(fraction, message) is called from the calling thread after each boosting round; cancel() is
//     polled between rounds and a true result ends training with kCancelled. Both may be empty functions.
//   - Threads: spec.nthread (0 = all cores), capped at one per 20,000 training rows (OpenMP overhead).
//   - XGBoost exceptions never escape: library failures become kInternal.
// Thread safety: Train is reentrant; concurrent calls on different tables are fine (each uses its own
// XGBoost handles; nthread threads each).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "common/json.h"
#include "common/status.h"
#include "data/table.h"

namespace lathe::ml {

struct TrainSpec {
  std::string target;
  std::string task;              // "binary" | "multiclass" | "regression"
  std::string learner = "xgboost";
  Json params = Json::object();  // validated against the learner's schema (ml/learner_registry.h)
  double test_fraction = 0.2;    // in (0, 0.9]
  uint64_t seed = 42;
  int nthread = 0;               // 0 = all cores
  // Recipe steps the training table went through, replayed at serving (ml/preprocess.h); {} = none.
  Json preprocess = Json::object();
};

struct TrainOutput {
  std::string model_bundle;  // bytes: pipeline + booster, self-describing, versioned header
  Json metrics;              // held-out metrics (see ml/metrics.h) plus train_rows/test_rows/dropped_rows
  Json signature;            // FeaturePipeline::Signature()
  Json pipeline;             // FeaturePipeline::ToJson()
  Json params;               // the canonical params actually used (defaults filled in)
  int64_t train_rows = 0, test_rows = 0;
  double train_seconds = 0;
};

using TrainProgressFn = std::function<void(double fraction, const std::string& message)>;
using TrainCancelFn = std::function<bool()>;

Result<TrainOutput> Train(const Table& table, const TrainSpec& spec, const TrainProgressFn& progress,
                          const TrainCancelFn& cancel);

// Seeded split of positions 0..y.size()-1, stratified by the class index in `y` when `stratify`.
// Deterministic across platforms (own Fisher-Yates over mt19937_64). Each class with >= 2 rows gets at least
// one test row and one training row (a class with a single row goes to training). Outputs are sorted.
void SplitRows(const std::vector<float>& y, bool stratify, double test_fraction, uint64_t seed,
               std::vector<size_t>* train_pos, std::vector<size_t>* test_pos);

}  // namespace lathe::ml
