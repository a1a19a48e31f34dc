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
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/json.h"
#include "common/status.h"
#include "data/table.h"
#include "ml/pipeline.h"
#include "ml/split.h"

namespace lathe::ml {

struct TrainSpec {
  std::string target;
  std::string task;  // "binary" | "multiclass" | "regression" | "clustering" | "decomposition" | "anomaly"
  std::string learner = "xgboost";
  Json params = Json::object();  // validated against the learner's schema (ml/learner_registry.h)
  SplitSpec split;               // how rows are divided for evaluation; split.seed also seeds the learner
  int nthread = 0;               // 0 = all cores
  bool explain = true;  // compute TrainOutput::explanations (a second or so on large models)
  size_t explain_rows = 2000;  // rows the explanations are computed on (an evenly strided sample)
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

// ---- Unsupervised learners (task clustering / decomposition / anomaly; Train() dispatches here).
// No target and no evaluation split: `spec.target`, if set, names a column left out of the features; the
// model is fit on the design terms (ml/design.h) of every row — an evenly strided sample of at most
// kUnsupervisedFitCells / terms rows for large tables — and measured on the training rows:
//   clustering (kmeans): n_clusters, inertia, silhouette (on at most 2,000 rows), davies_bouldin,
//     cluster_sizes over all rows; curves.elbow {"k","inertia","silhouette"} when k was chosen;
//   decomposition (pca): n_components, explained_variance_ratio, cumulative_variance, mean
//     reconstruction_error; curves.scree;
//   anomaly (isolation_forest): threshold, anomalies and anomaly_share over all rows, score quantiles;
//     curves.score_histogram.
// Errors: fewer than kUnsupervisedMinRows rows, no feature that varies, or a bad param are kInvalidArgument /
// kFailedPrecondition naming the field.
inline constexpr int64_t kUnsupervisedMinRows = 10;
inline constexpr size_t kUnsupervisedFitCells = 20'000'000;
Result<TrainOutput> TrainUnsupervised(const Table& table, const TrainSpec& spec, const TrainProgressFn& progress,
                                      const TrainCancelFn& cancel);

namespace internal {
// Model bundle + signature of a fitted model, shared by the trainers: meta {learner, task, params, pipeline,
// booster_format, xgboost_version} plus extra_meta and the recipe replay (spec.preprocess).
TrainOutput Package(const TrainSpec& spec, const FeaturePipeline& pipe, Task task, const std::string& learner,
                    const Json& params, const std::string& booster_bytes, const char* format = "ubj",
                    const Json& extra_meta = Json::object());
}  // namespace internal

// ---- Final fits of a search.
struct EnsembleMember {
  std::string learner;
  Json params;  // n_estimators = the rounds the search kept
  double weight = 1;
};
// Fits every member on all rows with a target (no evaluation: the search already has the out-of-fold one)
// and, for more than one member, merges them into one model whose margin is the weighted sum of the
// members' margins: an ordinary XGBoost tree ensemble (leaf values scaled by the weights, one single-leaf
// tree per output carrying the blended base margin), so it is served by the compiled evaluator like any
// model. Members must share the objective; DART cannot be blended. metrics and curves are left empty;
// explanations (spec.explain) are computed on the training rows. The bundle's learner is "ensemble" and its
// params {"members": [{"learner","params","weight"}]}.
Result<TrainOutput> FitEnsemble(const Table& table, const TrainSpec& spec, const std::vector<EnsembleMember>& members,
                                const TrainProgressFn& progress, const TrainCancelFn& cancel);

// ---- Import of a model trained elsewhere.
// `model` is an XGBoost model file (JSON or UBJSON, as XGBoost saves it); `declared` its signature:
//   {"task":"binary|multiclass|regression","target":"y","inputs":[{"name","type":"integer|float|boolean|string|
//    datetime","categories":[...]}],"labels":[...]}
// Inputs map to the model's features in order (a datetime input is several features, a string input one
// categorical feature whose codes are the positions in `categories`); classification needs `labels` in the
// model's class order (binary: [negative, positive]). The result is a lathe bundle, validated end to end by
// Predictor::Load: feature count, objective and task must agree. Errors are kInvalidArgument naming the field.
Result<TrainOutput> ImportXgboostModel(std::string_view model, const Json& declared);

// ---- Compression of a trained model.
// "prune": keeps the first `max_rounds` boosting rounds of a tree model (XGBoost's slice).
// "distill": fits a smaller boosted-tree student on the teacher's own predictions for the rows of `data`
// (soft labels: the teacher's probability for binary, its value for regression; its most likely class for
// multiclass), with params.max_depth (4), params.n_estimators (50), params.learning_rate (0.1). The student
// keeps the teacher's feature pipeline and recipe replay, so it takes the same requests.
struct CompressSpec {
  std::string method;  // "prune" | "distill"
  Json params = Json::object();
  int nthread = 0;
};
// The method and params alone (names, types, ranges); CompressModel checks them again.
Status CheckCompressSpec(const CompressSpec& spec);
Result<TrainOutput> CompressModel(std::string_view teacher_bundle, const std::string& secret_salt, const Table& data,
                                  const CompressSpec& spec);

// ---- Trials: many fits of one table (hyper-parameter search, AutoML).
//
// A TrialEvaluator fits the feature pipeline, encodes the rows and plans the evaluation split (spec.split)
// once; Run() then fits a learner with given params on every fold and scores it on the evaluation rows
// (out-of-fold for cross-validation, the held-out rows otherwise). The folds' boosters are boosted in lockstep
// so that the mean validation loss per round is known as training goes: that drives early stopping (the
// trial's rounds are those of the lowest mean loss) and rung checks (ASHA).
//
// Thread safety: Run() is const and may be called concurrently, each caller with its own Workspace (the data
// matrices XGBoost trains on are not shared between threads).
struct TrialControl {
  int max_rounds = 0;             // boosting rounds at most; 0 = params.n_estimators
  int early_stopping_rounds = 0;  // stop after this many rounds without a better validation loss; 0 = never
  std::vector<int> rungs;         // rounds at which at_rung is asked whether the trial may go on
  std::function<bool(int round, double best_loss)> at_rung;  // false = prune the trial
  std::function<bool()> stop;     // polled between rounds: true ends the trial with what it has (budget)
};

struct TrialResult {
  Json params;               // canonical params; for boosted learners n_estimators = rounds
  Json metrics;              // metrics of the evaluation predictions at `rounds` (ml/metrics.h)
  int rounds = 0;            // rounds kept (best mean validation loss)
  double loss = 0;           // the learner's mean validation loss at `rounds` (logloss / mlogloss / rmse)
  std::vector<double> curve; // mean validation loss per round boosted
  bool pruned = false;       // stopped by at_rung: metrics and margins are empty
  bool stopped = false;      // cut short by `stop`
  std::vector<float> margins;  // raw margins of the evaluation rows (EvalRows() order), OutputWidth per row
  double seconds = 0;
  double predict_us = 0;       // one-row prediction latency of the compiled model (0 for DART: not measured)
};

class TrialEvaluator {
 public:
  // Per-thread data matrices (opaque; built on first use by Run).
  struct Workspace {
    virtual ~Workspace() = default;
  };
  // `table` must outlive the evaluator. spec.params are the fixed params (weights); spec.learner the default.
  static Result<std::unique_ptr<TrialEvaluator>> Prepare(const Table& table, const TrainSpec& spec);
  ~TrialEvaluator();
  std::unique_ptr<Workspace> NewWorkspace() const;
  // Params are validated against the learner's schema (kInvalidArgument naming "params.<name>").
  Result<TrialResult> Run(Workspace& ws, const std::string& learner, const Json& params,
                          const TrialControl& control) const;

  const std::string& task_name() const;
  size_t OutputWidth() const;                   // margins per evaluation row
  const std::vector<float>& EvalLabels() const;  // encoded label per evaluation row
  // Metrics of margins (EvalLabels() order) turned into predictions the way `objective` does: sigmoid,
  // softmax, exp for the log-link regression objectives.
  Result<Json> MetricsOfMargins(const std::vector<float>& margins, const std::string& objective) const;
  size_t NumFeatures() const;
  int64_t NumRows() const;  // rows with a target

 private:
  struct Data;
  explicit TrialEvaluator(std::unique_ptr<Data> d);
  std::unique_ptr<Data> d_;
};

}  // namespace lathe::ml
