#include "ml/automl.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <set>

namespace lathe::ml {
namespace {

constexpr int64_t kMaxCvRows = 100000;     // more rows with a target: a holdout instead of 5 folds
constexpr size_t kEnsembleCandidates = 20;  // best complete trials considered for the blend
constexpr int kEnsembleRounds = 25;
constexpr double kSearchShare = 0.75;    // of the budget; the rest is for the blend and the final fit
constexpr double kLinearMaxWork = 5e10;
constexpr int64_t kWideWork = 300000;     // rows x columns x classes above which AutoML cross-validates in 3 folds  // rows x (outputs x features)²: above it the linear family is skipped
constexpr size_t kMaxLeaderboard = 200;
constexpr size_t kExplainRows = 200;  // the chosen model's explanations (SHAP on a blend of deep trees is slow)

Status FieldError(const std::string& field, const std::string& message) {
  return Status::InvalidArgument(field + ": " + message).WithDetail(ErrorDetail::Field(field, message));
}

// Defaults tried first for each family: a careful user's starting point (boosting rounds by early stopping).
Json DefaultParams(const std::string& learner) {
  if (learner == "random_forest") return Json::object();
  if (learner == "linear") return {{"alpha", 1.0}};
  return {{"learning_rate", 0.1}};
}

// Distinct non-missing values of the target (for the cost estimate of a multiclass search).
int64_t CountClasses(const Table& table, const std::string& target) {
  const int idx = table.FindColumn(target);
  if (idx < 0) return 1;
  const Column& c = table.columns[static_cast<size_t>(idx)];
  std::set<double> values;
  std::set<int32_t> codes;
  for (size_t r = 0; r < c.size() && values.size() + codes.size() <= 1000; ++r) {
    if (!c.IsValid(r)) continue;
    if (c.type == ColumnType::kString) {
      codes.insert(c.codes[r]);
    } else {
      values.insert(c.NumericAt(r));
    }
  }
  return std::max<int64_t>(1, static_cast<int64_t>(values.size() + codes.size()));
}

}  // namespace

Result<std::string> InferTask(const Table& table, const std::string& target) {
  const int idx = table.FindColumn(target);
  if (idx < 0) return FieldError("target", "unknown column '" + target + "'");
  const Column& c = table.columns[static_cast<size_t>(idx)];
  std::set<double> numbers;
  std::set<int32_t> codes;
  bool all_integer = true;
  for (size_t r = 0; r < c.size(); ++r) {
    if (!c.IsValid(r)) continue;
    switch (c.type) {
      case ColumnType::kString:
        codes.insert(c.codes[r]);
        break;
      case ColumnType::kBool:
        numbers.insert(c.b[r] ? 1 : 0);
        break;
      case ColumnType::kInt64:
        if (numbers.size() <= 11) numbers.insert(static_cast<double>(c.i64[r]));
        break;
      case ColumnType::kFloat64:
        if (std::isnan(c.f64[r])) break;
        if (c.f64[r] != std::floor(c.f64[r])) all_integer = false;
        if (numbers.size() <= 11) numbers.insert(c.f64[r]);
        break;
      case ColumnType::kDatetime:
        return FieldError("target", "'" + target + "' is a datetime; choose another target");
    }
  }
  const size_t distinct = c.type == ColumnType::kString ? codes.size() : numbers.size();
  if (distinct == 0) return FieldError("target", "'" + target + "' has no values");
  if (distinct == 1) return FieldError("target", "'" + target + "' has a single value; there is nothing to learn");
  if (c.type == ColumnType::kString) return std::string(distinct == 2 ? "binary" : "multiclass");
  if (distinct == 2) return std::string("binary");
  if (all_integer && distinct <= 10) return std::string("multiclass");
  return std::string("regression");
}

std::vector<int> GreedyEnsemble(const std::vector<const std::vector<float>*>& margins,
                                const std::function<double(const std::vector<float>&)>& score, bool maximize,
                                int max_rounds) {
  std::vector<int> counts(margins.size(), 0);
  if (margins.empty()) return counts;
  auto better = [&](double a, double b) {
    if (std::isnan(a)) return false;
    if (std::isnan(b)) return true;
    return maximize ? a > b : a < b;
  };
  const size_t n = margins[0]->size();
  std::vector<double> sum(n, 0.0);
  std::vector<float> blend(n);
  int total = 0;
  double current = std::nan("");
  for (int round = 0; round < max_rounds; ++round) {
    int pick = -1;
    double pick_score = std::nan("");
    for (size_t c = 0; c < margins.size(); ++c) {
      const std::vector<float>& m = *margins[c];
      for (size_t i = 0; i < n; ++i) {
        blend[i] = static_cast<float>((sum[i] + static_cast<double>(m[i])) / static_cast<double>(total + 1));
      }
      const double s = score(blend);
      if (pick < 0 || better(s, pick_score)) {
        pick = static_cast<int>(c);
        pick_score = s;
      }
    }
    if (total > 0 && !better(pick_score, current)) break;
    const std::vector<float>& m = *margins[static_cast<size_t>(pick)];
    for (size_t i = 0; i < n; ++i) sum[i] += static_cast<double>(m[i]);
    ++counts[static_cast<size_t>(pick)];
    ++total;
    current = pick_score;
  }
  return counts;
}

Result<AutoMlResult> RunAutoMl(const Table& table, const AutoMlSpec& in, const Study::TrialCallback& on_trial,
                               const TrainProgressFn& progress, const TrainCancelFn& cancel) {
  using Clock = Study::Clock;
  const auto start = Clock::now();
  if (!(in.time_budget_s > 0) || !std::isfinite(in.time_budget_s) || in.time_budget_s > 7 * 86400) {
    return FieldError("time_budget_s", "must be > 0 and at most a week");
  }
  if (in.learners.empty()) return FieldError("learners", "list at least one learner");
  AutoMlResult result;
  TrainSpec base = in.base;
  if (base.task.empty()) {
    ASSIGN_OR_RETURN(base.task, InferTask(table, base.target));
    result.task_inferred = true;
  }
  result.task = base.task;
  ASSIGN_OR_RETURN(const Task task, ParseTask(base.task, "task"));
  for (const std::string& l : in.learners) {
    const LearnerInfo* info = FindLearner(l);
    if (info == nullptr) return FieldError("learners", "unknown learner '" + l + "'");
    if (std::find(info->tasks.begin(), info->tasks.end(), task) == info->tasks.end()) {
      return FieldError("learners", l + " does not support task " + base.task);
    }
  }
  if (!in.split_given) {
    int64_t with_target = 0;
    const int idx = table.FindColumn(base.target);
    if (idx >= 0) {
      const Column& c = table.columns[static_cast<size_t>(idx)];
      for (size_t r = 0; r < c.size(); ++r) with_target += c.IsValid(r) ? 1 : 0;
    }
    SplitSpec split;
    split.seed = base.split.seed;
    if (with_target <= kMaxCvRows) {
      split.method = SplitMethod::kKFold;
      split.folds = static_cast<int>(std::clamp<int64_t>(with_target / 2, 2, 5));
      // Wide multi-output data makes every fold expensive (a tree per class per round): 3 folds leave the
      // search more trials, which matters more than the lower variance of 5.
      const int64_t outputs = base.task == "multiclass" ? CountClasses(table, base.target) : 1;
      if (with_target * static_cast<int64_t>(table.columns.size()) * outputs > kWideWork) {
        split.folds = std::min(split.folds, 3);
      }
    }
    base.split = split;
  }
  result.split = SplitSpecToJson(base.split);
  base.learner = in.learners[0];
  base.params = Json::object();
  ASSIGN_OR_RETURN(auto eval, TrialEvaluator::Prepare(table, base));

  StudyOptions options;
  options.metric = in.metric;
  options.seed = base.split.seed;
  // ASHA stays off while trials are cheap: its early rungs favour fast learning rates, and on small data the
  // budget affords complete trials. It goes on when a family's default trial takes over 5 % of the budget.
  options.asha = false;
  ASSIGN_OR_RETURN(auto study, Study::Create(*eval, options, on_trial));
  result.metric = study->metric();
  result.maximize = study->maximize();

  const auto budget = std::chrono::microseconds(static_cast<int64_t>(in.time_budget_s * 1e6));
  const auto search_end = start + std::chrono::duration_cast<Clock::duration>(budget * kSearchShare);
  auto report = [&](const std::string& message) {
    if (!progress) return;
    const double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
    progress(std::min(0.8, 0.8 * elapsed / in.time_budget_s), message);
  };
  auto stop = [&] { return cancel && cancel(); };

  // The families that fit this data.
  std::vector<std::string> learners;
  for (const std::string& l : in.learners) {
    if (l == "linear") {
      const double outputs = static_cast<double>(eval->OutputWidth());
      const double terms = outputs * static_cast<double>(eval->NumFeatures() + 1);
      if (static_cast<double>(eval->NumRows()) * terms * terms > kLinearMaxWork) continue;
    }
    learners.push_back(l);
  }
  // Defaults of every family.
  for (const std::string& l : learners) {
    report("defaults of " + l);
    RETURN_IF_ERROR(study->Optimize(l, SearchSpace{}, SamplerKind::kRandom, 1, search_end, DefaultParams(l), stop)
                        .status());
    if (stop()) return Status::Cancelled("AutoML cancelled");
  }
  for (const TrialRecord& t : study->trials()) {
    if (t.seconds > 0.05 * in.time_budget_s) study->set_asha(true);
  }
  // Then the searches, each family in its share of what is left: boosted trees 7, random forest 2, linear 1.
  auto weight = [](const std::string& l) { return l == "random_forest" ? 2.0 : l == "linear" ? 1.0 : 7.0; };
  double total_weight = 0;
  for (const std::string& l : learners) total_weight += weight(l);
  const auto after_defaults = Clock::now();
  const auto left = search_end > after_defaults ? search_end - after_defaults : Clock::duration::zero();
  auto slot_end = after_defaults;
  {
    for (const std::string& l : learners) {
      slot_end += std::chrono::duration_cast<Clock::duration>(left * (weight(l) / total_weight));
      const auto end = std::min(slot_end, search_end);
      if (Clock::now() >= end) continue;
      report("searching " + l);
      RETURN_IF_ERROR(study->Optimize(l, DefaultSearchSpace(*FindLearner(l), task), SamplerKind::kTpe, 100000, end,
                                      Json::object(), stop)
                          .status());
      if (stop()) return Status::Cancelled("AutoML cancelled");
    }
  }
  result.search_seconds = std::chrono::duration<double>(Clock::now() - start).count();
  result.trials = study->trials();
  if (study->best() < 0) {
    return Status::DeadlineExceeded("no candidate finished within the time budget; give it more time");
  }

  // Ensemble selection over the best candidates' out-of-fold margins.
  std::vector<const TrialRecord*> ranked;
  for (const TrialRecord& t : result.trials) {
    if (t.state == "complete" && !t.margins.empty()) ranked.push_back(&t);
  }
  std::stable_sort(ranked.begin(), ranked.end(),
                   [&](const TrialRecord* a, const TrialRecord* b) { return study->Better(a->score, b->score); });
  const TrialRecord& best = *ranked[0];
  // A candidate's final fit on every row takes about its trial time / (folds - 1) (a trial fits each fold
  // on (folds - 1) / folds of the rows); the blend must fit in what is left of the budget.
  const double folds = base.split.IsCrossValidation() ? base.split.folds : 1.0;
  auto fit_estimate = [&](const TrialRecord& t) { return t.seconds / std::max(1.0, folds - 1); };
  const auto budget_end = start + std::chrono::duration_cast<Clock::duration>(budget);
  const double remaining = std::max(0.0, std::chrono::duration<double>(budget_end - Clock::now()).count());
  std::vector<const TrialRecord*> pool;
  for (const TrialRecord* t : ranked) {
    const bool blendable = t->learner != "xgboost_dart" && t->learner != "xgboost_linear";  // no mergeable trees
    if (pool.size() < kEnsembleCandidates && blendable && fit_estimate(*t) <= remaining / 2) {
      pool.push_back(t);
    }
  }
  Json ensemble_entry;
  std::vector<EnsembleMember> members = {{best.learner, best.params, 1.0}};
  result.chosen = {{"candidate", "trial " + std::to_string(best.number)}, {"score", best.score}};
  result.metrics = best.metrics;
  if (in.ensemble && pool.size() >= 2) {
    report("selecting an ensemble");
    std::vector<const std::vector<float>*> margins;
    for (const TrialRecord* t : pool) margins.push_back(&t->margins);
    auto score = [&](const std::vector<float>& blend) {
      auto m = eval->MetricsOfMargins(blend, "");
      if (!m.ok()) return std::nan("");
      const Json v = m->value(result.metric, Json(nullptr));
      return v.is_number() ? v.get<double>() : std::nan("");
    };
    const int rounds = eval->NumRows() > 50000 ? 10 : kEnsembleRounds;
    const std::vector<int> counts = GreedyEnsemble(margins, score, study->maximize(), rounds);
    int total = 0, used = 0;
    for (int c : counts) {
      total += c;
      used += c > 0 ? 1 : 0;
    }
    double estimate = 0;
    for (size_t c = 0; c < counts.size(); ++c) estimate += counts[c] > 0 ? fit_estimate(*pool[c]) : 0.0;
    if (used >= 2 && estimate <= remaining) {
      std::vector<float> blend(margins[0]->size());
      std::vector<double> sum(blend.size(), 0.0);
      std::vector<EnsembleMember> blend_members;
      Json member_json = Json::array();
      double fit_seconds = 0, predict_us = 0;
      for (size_t c = 0; c < counts.size(); ++c) {
        if (counts[c] == 0) continue;
        const double w = static_cast<double>(counts[c]) / static_cast<double>(total);
        for (size_t i = 0; i < sum.size(); ++i) sum[i] += counts[c] * static_cast<double>((*margins[c])[i]);
        blend_members.push_back({pool[c]->learner, pool[c]->params, w});
        member_json.push_back({{"trial", pool[c]->number}, {"learner", pool[c]->learner}, {"weight", w}});
        fit_seconds += pool[c]->seconds;
        predict_us += pool[c]->predict_us;
      }
      for (size_t i = 0; i < sum.size(); ++i) blend[i] = static_cast<float>(sum[i] / total);
      ASSIGN_OR_RETURN(Json metrics, eval->MetricsOfMargins(blend, ""));
      const Json v = metrics.value(result.metric, Json(nullptr));
      const double s = v.is_number() ? v.get<double>() : std::nan("");
      ensemble_entry = {{"candidate", "ensemble"}, {"learner", "ensemble"}, {"members", member_json},
                        {"score", v},              {"metrics", metrics},    {"fit_seconds", fit_seconds},
                        {"predict_us", predict_us}};
      if (study->Better(s, best.score)) {
        members = std::move(blend_members);
        result.chosen = {{"candidate", "ensemble"}, {"members", member_json}, {"score", s}};
        result.metrics = std::move(metrics);
      }
    }
  }

  // Leaderboard: every complete candidate and the ensemble, best first.
  std::vector<Json> rows;
  for (const TrialRecord* t : ranked) {
    rows.push_back({{"candidate", "trial " + std::to_string(t->number)}, {"trial", t->number},
                    {"learner", t->learner}, {"params", t->params}, {"score", t->score},
                    {"metrics", t->metrics}, {"fit_seconds", t->seconds}, {"predict_us", t->predict_us}});
  }
  if (!ensemble_entry.is_null()) rows.push_back(ensemble_entry);
  std::stable_sort(rows.begin(), rows.end(), [&](const Json& a, const Json& b) {
    const double sa = a["score"].is_number() ? a["score"].get<double>() : std::nan("");
    const double sb = b["score"].is_number() ? b["score"].get<double>() : std::nan("");
    return study->Better(sa, sb);
  });
  result.leaderboard = Json::array();
  for (size_t i = 0; i < rows.size() && i < kMaxLeaderboard; ++i) {
    rows[i]["rank"] = i + 1;
    rows[i]["chosen"] = rows[i]["candidate"] == result.chosen["candidate"];
    result.leaderboard.push_back(std::move(rows[i]));
  }

  // The final fit on every row.
  if (progress) progress(0.82, "fitting the final model");
  TrainProgressFn fit_progress = [&](double f, const std::string& msg) {
    if (progress) progress(0.82 + 0.17 * f, msg);
  };
  base.explain_rows = kExplainRows;
  ASSIGN_OR_RETURN(result.model, FitEnsemble(table, base, members, fit_progress, cancel));
  result.metrics["split"] = result.split;
  result.metrics["rows"] = eval->NumRows();
  return result;
}

}  // namespace lathe::ml
