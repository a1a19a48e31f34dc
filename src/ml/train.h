// Training: fits a FeaturePipeline and a learner on a Table, evaluates it as the split spec says (ml/split.h:
// holdout, k-fold, group k-fold or time-ordered), and packages pipeline + model into a versioned model bundle
// (ml/model_bundle.h) that ml/predictor.h loads.
//
// What the evaluation reports:
//   - holdout / time: the model is fit on the training rows; metrics are those of the held-out rows.
//   - kfold / group_kfold: one model per fold is fit on the other folds and predicts its fold. metrics are
//     computed on these pooled out-of-fold predictions (every row predicted once, by a model that did not see
//     it), and metrics.cv holds each scalar metric per fold with its mean and population std. The model that
//     is kept is then fit on all rows: the folds only estimate how well that procedure generalizes, and a
//     model fit on (k-1)/k of the data would be a worse model for no benefit. Its train_rows is every row,
//     and test_rows counts the out-of-fold predictions (also every row).
//   - metrics.split describes what was evaluated (method, fold sizes, time boundary, ...).
//   - curves.learning: per boosting round, the learner's loss on the training rows and on the evaluation rows
//     (for cross-validation the mean over folds), computed after training from the booster's trees round by
//     round on at most 10,000 rows of each side (an evenly strided sample beyond that); the other curves are
//     computed from the same predictions as metrics.
//
// Guarantees:
//   - Validation errors are kInvalidArgument with ErrorDetail::Field naming what is wrong ("target", "task",
//     "learner", "params.max_depth", "split.test_fraction", "split.folds", "split.time_column", "nthread").
//   - Rows with a missing target are dropped (reported in metrics.dropped_rows); none left is an error.
//   - All splits are seeded: the same table + spec gives byte-identical model bundles and identical metrics.
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
#include "ml/split.h"

namespace lathe::ml {

struct TrainSpec {
  std::string target;
  std::string task;  // "binary" | "multiclass" | "regression"
  std::string learner = "xgboost";
  Json params = Json::object();  // validated against the learner's schema (ml/learner_registry.h)
  SplitSpec split;               // how rows are divided for evaluation; split.seed also seeds the learner
  int nthread = 0;               // 0 = all cores
  bool explain = true;  // compute TrainOutput::explanations (a second or so on large models)
  // Recipe steps the training table went through, replayed at serving (ml/preprocess.h); {} = none.
  Json preprocess = Json::object();
};

struct TrainOutput {
  std::string model_bundle;  // bytes: pipeline + booster, self-describing, versioned header
  Json metrics;  // evaluation metrics (see ml/metrics.h and above) plus train_rows/test_rows/dropped_rows
  // Chart data of the evaluation: {"learning": {"metric","source","train":[per round],"valid":[per round]}}
  // plus the plots of ml/metrics.h for the task (roc_curve, pr_curve, calibration, lift; residuals).
  Json curves;
  // Global importance of the model (ml/explain.h: gain, permutation, mean |SHAP|) on up to 2,000 evaluation
  // rows — the holdout rows, or for cross-validation the training rows ("source"); {"error"} if it failed.
  Json explanations;
  Json signature;  // FeaturePipeline::Signature()
  Json pipeline;   // FeaturePipeline::ToJson()
  Json params;     // the canonical params actually used (defaults filled in)
  int64_t train_rows = 0, test_rows = 0;
  double train_seconds = 0;
};

using TrainProgressFn = std::function<void(double fraction, const std::string& message)>;
using TrainCancelFn = std::function<bool()>;

Result<TrainOutput> Train(const Table& table, const TrainSpec& spec, const TrainProgressFn& progress,
                          const TrainCancelFn& cancel);

}  // namespace lathe::ml
