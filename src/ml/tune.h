// Hyper-parameter search: a Study runs trials (ml/train.h TrialEvaluator) of one or more learners with
// parameters drawn from a search space by a sampler, stops bad trials early, and keeps every trial's score.
//
//   Samplers   grid    every combination of listed values (a shuffled order, seeded); float ranges are an error
//              random  independent uniform draws (log-uniform where the space says log)
//              tpe     Tree-structured Parzen Estimator, univariate, as Optuna's default: after
//                      `startup_trials` random trials, each parameter is drawn from 24 candidates of the
//                      density of the best ~10 % of trials (at most 25) and the one maximising
//                      l(x) / g(x) against the density of the rest is kept. Pruned trials count among the rest.
//   Pruning    boosted learners train up to max_rounds with early stopping on the mean validation loss; with
//              ASHA on, at rungs of min_rounds * reduction^k rounds a trial continues only if its best loss is
//              in the best 1/reduction of the losses other trials of its learner reported at that rung
//              (asynchronous successive halving, as Optuna's SuccessiveHalvingPruner).
//   Budget     trials start while fewer than max_trials ran and the deadline has not passed; running trials
//              end at the deadline with the rounds they have (a score still counts) — a trial with no
//              complete round fails.
//   Parallel   `parallel` trials at once, each with its own data matrices; each uses ThreadsFor its rows.
//
// The score is spec.metric on the evaluation predictions (out-of-fold for cross-validation); higher is better
// for accuracy-like metrics and R², lower for losses and errors (MetricMaximized). An undefined metric (null)
// ranks last. Thread-safe: a Study serializes its own bookkeeping; one Optimize call at a time.
#pragma once

#include <chrono>
#include <cmath>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "common/json.h"
#include "common/status.h"
#include "ml/learner_registry.h"
#include "ml/train.h"

namespace lathe::ml {

struct ParamDistribution {
  enum class Kind { kInt, kFloat, kChoice };
  std::string name;
  Kind kind = Kind::kFloat;
  double low = 0, high = 0;
  bool log = false;
  std::vector<Json> choices;  // kChoice
};

struct SearchSpace {
  std::vector<ParamDistribution> params;
  Json ToJson() const;
};

// {"max_depth": {"type":"int","low":2,"high":10}, "learning_rate": {"type":"float","low":0.01,"high":0.3,
//  "log":true}, "grow_policy": ["depthwise","lossguide"]}: a list is a choice. Names (or aliases) must be the
// learner's params for the task and bounds inside the param's range; errors name "space.<param>".
Result<SearchSpace> ParseSearchSpace(const Json& j, const LearnerInfo& learner, Task task);
// What a careful user would search for the learner (boosting rounds are left to early stopping).
SearchSpace DefaultSearchSpace(const LearnerInfo& learner, Task task);

enum class SamplerKind { kGrid, kRandom, kTpe };
// Points of a grid search over `space`: kInvalidArgument naming "space.<param>" for a float range (or a grid
// beyond 100,000 points).
Result<size_t> GridSize(const SearchSpace& space);
Result<SamplerKind> ParseSampler(const std::string& name);  // "grid" | "random" | "tpe"
const char* SamplerName(SamplerKind k);

// Metric names a run reports for the task; whether larger is better. Unknown: kInvalidArgument naming `field`.
Result<bool> MetricMaximized(const std::string& metric, Task task, const std::string& field = "metric");
const char* DefaultMetric(Task task);  // binary roc_auc, multiclass log_loss, regression rmse

struct TrialRecord {
  int number = 0;
  std::string learner;
  Json params;          // canonical; n_estimators = rounds kept for boosted learners
  std::string state;    // "complete" | "pruned" | "failed"
  double score = std::nan("");
  Json metrics;
  int rounds = 0;
  double loss = std::nan("");  // the learner's validation loss at `rounds`
  double seconds = 0;
  double predict_us = 0;  // one-row latency of the compiled model (0 = not measured)
  bool stopped = false;  // cut by the deadline
  std::string error;
  std::vector<float> margins;  // complete trials: evaluation-row margins (ensembles are built from them)
  Json ToJson() const;         // everything but margins
};

struct StudyOptions {
  std::string metric;  // "" = DefaultMetric
  uint64_t seed = 42;
  int parallel = 0;  // 0 = one per core when the data is small, else 1
  int max_rounds = 2000;
  int early_stopping_rounds = 50;
  bool asha = true;
  int asha_min_rounds = 50;  // lower rungs favour high learning rates (slow learners look bad early)
  int asha_reduction = 3;
  int startup_trials = 10;  // TPE: random trials first
};

class Study {
 public:
  using Clock = std::chrono::steady_clock;
  using TrialCallback = std::function<void(const TrialRecord&)>;  // called serialized, after each trial

  static Result<std::unique_ptr<Study>> Create(const TrialEvaluator& eval, const StudyOptions& options,
                                               TrialCallback on_trial);

  // Runs up to max_trials trials of `learner` (params from `space` by `sampler`, merged over `fixed`) until
  // the deadline or cancel(). Returns how many trials it ran.
  Result<int> Optimize(const std::string& learner, const SearchSpace& space, SamplerKind sampler, int max_trials,
                       Clock::time_point deadline, const Json& fixed, const std::function<bool()>& cancel);

  const std::vector<TrialRecord>& trials() const { return trials_; }
  int best() const;  // index of the best complete trial, -1 if none
  // Best complete trial of a learner, -1 if none.
  int BestOf(const std::string& learner) const;
  bool maximize() const { return maximize_; }
  // ASHA on or off for the next Optimize calls (AutoML turns it on when trials turn out to be slow).
  void set_asha(bool on) { options_.asha = on; }
  const std::string& metric() const { return metric_; }
  // Orders scores: true when a is better than b (NaN is worst).
  bool Better(double a, double b) const;
  const TrialEvaluator& evaluator() const { return eval_; }

 private:
  Study(const TrialEvaluator& eval, StudyOptions options, TrialCallback cb);

  const TrialEvaluator& eval_;
  StudyOptions options_;
  TrialCallback on_trial_;
  std::string metric_;
  bool maximize_ = true;
  std::mutex mu_;
  std::vector<TrialRecord> trials_;
  std::vector<std::unique_ptr<TrialEvaluator::Workspace>> workspaces_;
  // ASHA: losses reported at each rung, per learner.
  std::vector<std::pair<std::string, std::vector<std::pair<int, std::vector<double>>>>> rungs_;
};

}  // namespace lathe::ml
