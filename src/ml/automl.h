// AutoML: from a table and a target to the best model lathe can find in a time budget.
//
//   1. Task: given, or inferred from the target (text/boolean: binary with two values, else multiclass;
//      numbers: binary with two distinct values, multiclass for at most 10 distinct integers, else regression).
//   2. Evaluation: stratified 5-fold cross-validation up to 100,000 rows with a target (3 folds when rows x
//      columns x classes exceeds 300,000: each fold then costs a tree per class per round), a 20 % holdout beyond
//      (or the given split); every candidate is scored on the same out-of-fold predictions.
//   3. Search (75 % of the budget): each learner family's defaults first, then TPE with early stopping and
//      ASHA (ml/tune.h) — boosted trees get 70 % of the search time, the random forest 20 %, the linear model
//      10 % (it is skipped when a multinomial fit would be too large: rows x (classes x features)² > 5e10).
//   4. Ensemble: greedy forward selection with replacement (Caruana et al., 2004) over the 20 best candidates'
//      out-of-fold margins, kept only if it beats the best single candidate out of fold.
//   5. Final fit of the chosen model (a single candidate or the blend, ml/train.h FitEnsemble) on every row.
//
// The leaderboard lists every complete candidate (and the ensemble) with its score, fit time and one-row
// predict latency, best first. Errors: a bad target/metric/budget is kInvalidArgument naming the field.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "common/json.h"
#include "common/status.h"
#include "data/table.h"
#include "ml/train.h"
#include "ml/tune.h"

namespace lathe::ml {

struct AutoMlSpec {
  TrainSpec base;           // target; task ("" = infer); split (empty method = automatic); nthread; seed
  bool split_given = false;  // base.split was chosen by the caller
  std::string metric;        // "" = DefaultMetric(task)
  double time_budget_s = 60;
  std::vector<std::string> learners = {"xgboost", "random_forest", "linear"};
  bool ensemble = true;
};

struct AutoMlResult {
  std::string task;
  bool task_inferred = false;
  std::string metric;
  bool maximize = true;
  Json split;                      // the evaluation split used
  std::vector<TrialRecord> trials;
  Json leaderboard;                // [{"rank","candidate","learner","params","score","metrics","fit_seconds","predict_us"}]
  Json chosen;                     // {"candidate": "trial 7" | "ensemble", "members": [...], "score"}
  Json metrics;                    // out-of-fold metrics of the chosen model (plus rows/split info)
  TrainOutput model;               // the final fit
  double search_seconds = 0;
};

// "binary" | "multiclass" | "regression" for the target column (kInvalidArgument naming "target").
Result<std::string> InferTask(const Table& table, const std::string& target);

Result<AutoMlResult> RunAutoMl(const Table& table, const AutoMlSpec& spec, const Study::TrialCallback& on_trial,
                               const TrainProgressFn& progress, const TrainCancelFn& cancel);

// Greedy ensemble selection with replacement over candidates' margins (row-major, `width` per row): returns
// how many times each candidate was picked (the blend is the count-weighted mean of margins). `score`
// evaluates a blended margin vector. Starts from the best single candidate; stops when no addition improves
// the score or after `max_rounds` additions.
std::vector<int> GreedyEnsemble(const std::vector<const std::vector<float>*>& margins,
                                const std::function<double(const std::vector<float>&)>& score, bool maximize,
                                int max_rounds);

}  // namespace lathe::ml
