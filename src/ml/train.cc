#include "ml/train.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <limits>
#include <memory>
#include <numeric>
#include <optional>
#include <thread>

#include "common/clock.h"
#include "ml/learner_registry.h"
#include "ml/linear_model.h"
#include "ml/metrics.h"
#include "ml/explain.h"
#include "ml/model_bundle.h"
#include "ml/predictor.h"
#include "ml/pipeline.h"
#include "ml/split.h"
#include "ml/tree_evaluator.h"
#include "ml/xgb_handle.h"

namespace lathe::ml {
namespace {

constexpr int64_t kRowsPerThread = 20000;  // training threads are capped at train_rows / kRowsPerThread
constexpr size_t kMaxCurveRows = 10000;    // learning curves are measured on at most this many rows per side

Status FieldError(const std::string& field, const std::string& message) {
  return Status::InvalidArgument(field + ": " + message).WithDetail(ErrorDetail::Field(field, message));
}

std::string ParamText(const Json& v) {
  if (v.is_string()) return v.get<std::string>();
  return v.dump();  // shortest round-trip spelling for numbers
}

Result<std::string> SaveBoosterUbj(BoosterHandle h) {
  bst_ulong len = 0;
  const char* buf = nullptr;
  LATHE_XGB(XGBoosterSaveModelToBuffer(h, R"({"format":"ubj"})", &len, &buf), "saving the model");
  return std::string(buf, static_cast<size_t>(len));
}

// Loss per boosting round on the training rows and (when there are any) the evaluation rows.
struct LearningCurve {
  std::vector<double> train, valid;
};

// What every fit of one training run shares.
struct FitContext {
  const Table& table;
  const FeaturePipeline& pipe;
  const std::vector<int64_t>& kept;  // table row of each position (rows with a target)
  const std::vector<float>& y;       // encoded label of each position
  const std::vector<float>& weights; // weight of each position; empty = unweighted
  Task task;
  const LearnerInfo& learner;
  const Json& params;
  const TrainSpec& spec;
  const std::vector<int64_t>* query = nullptr;  // ranking: the query id of each position
  int rounds = 0;
  bool dart = false;  // xgboost_dart: no compiled evaluator (dropout weights); curves come from XGBoost
  bool gblinear = false;  // xgboost_linear: XGBoost's linear booster (no trees)
  // Learning curves from XGBoost's own per-round evaluation: DART, the linear booster, and ranking (NDCG
  // needs whole queries, which the strided sample of StagedLoss does not keep).
  bool xgb_curve = false;
  mutable std::vector<const char*> types;  // XGBoost feature types (the C API takes them non-const)
  std::function<void(double, const std::string&)> report;
  std::function<bool()> cancelled;
};

const char* EvalMetricName(Task task) {
  switch (task) {
    case Task::kBinary:
      return "logloss";
    case Task::kMulticlass:
      return "mlogloss";
    case Task::kRegression:
      return "rmse";
    case Task::kRanking:
      return "ndcg@10";
    case Task::kClustering:  // unsupervised tasks train in ml/train_unsupervised.cc, never here
    case Task::kDecomposition:
    case Task::kAnomaly:
      break;
  }
  return "rmse";
}

// Small training sets gain nothing from threads; OpenMP barriers then only spin (badly so on a busy host).
int ThreadsFor(const TrainSpec& spec, size_t train_rows) {
  const int wanted =
      spec.nthread > 0 ? spec.nthread : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  return static_cast<int>(
      std::min<int64_t>(wanted, std::max<int64_t>(1, static_cast<int64_t>(train_rows) / kRowsPerThread)));
}

Result<std::unique_ptr<internal::DMatrix>> MakeMatrix(const FitContext& c, const std::vector<size_t>& pos,
                                                      bool with_labels, int nthread) {
  std::vector<int64_t> rows(pos.size());
  for (size_t i = 0; i < pos.size(); ++i) rows[i] = c.kept[pos[i]];
  ASSIGN_OR_RETURN(std::vector<float> x, c.pipe.TransformRows(c.table, rows));
  const float kNaN = std::numeric_limits<float>::quiet_NaN();
  auto m = std::make_unique<internal::DMatrix>();
  LATHE_XGB(XGDMatrixCreateFromMat_omp(x.data(), rows.size(), c.pipe.NumFeatures(), kNaN, m->out(), nthread),
            "building a data matrix");
  if (with_labels) {
    std::vector<float> labels(pos.size());
    for (size_t i = 0; i < pos.size(); ++i) labels[i] = c.y[pos[i]];
    LATHE_XGB(XGDMatrixSetFloatInfo(m->get(), "label", labels.data(), labels.size()), "setting labels");
    if (!c.weights.empty()) {
      std::vector<float> w(pos.size());
      for (size_t i = 0; i < pos.size(); ++i) w[i] = c.weights[pos[i]];
      LATHE_XGB(XGDMatrixSetFloatInfo(m->get(), "weight", w.data(), w.size()), "setting weights");
    }
  }
  if (c.query != nullptr) {  // ranking: `pos` holds each query's rows together; XGBoost wants the group sizes
    std::vector<unsigned> sizes;
    for (size_t i = 0; i < pos.size(); ++i) {
      if (i == 0 || (*c.query)[pos[i]] != (*c.query)[pos[i - 1]]) sizes.push_back(0);
      ++sizes.back();
    }
    LATHE_XGB(XGDMatrixSetUIntInfo(m->get(), "group", sizes.data(), sizes.size()), "setting query groups");
  }
  LATHE_XGB(XGDMatrixSetStrFeatureInfo(m->get(), "feature_type", c.types.data(), c.types.size()),
            "setting feature types");
  return m;
}

// XGBoost's name of the ranking objective.
const char* RankingObjective(const Json& params) {
  const std::string o = params.value("rank_objective", std::string("ndcg"));
  if (o == "pairwise") return "rank:pairwise";
  if (o == "map") return "rank:map";
  return "rank:ndcg";
}

// XGBoost's name of the regression objective a learner's "objective" param chooses.
const char* RegressionObjective(const Json& params) {
  const std::string o = params.value("objective", std::string("squared_error"));
  if (o == "absolute_error") return "reg:absoluteerror";
  if (o == "huber") return "reg:pseudohubererror";
  if (o == "poisson") return "count:poisson";
  if (o == "tweedie") return "reg:tweedie";
  return "reg:squarederror";
}

// Parses one line of XGBoosterEvalOneIter ("[3]\ttrain-rmse:0.5\tvalid-rmse:0.6") into its values, in order.
std::vector<double> EvalValues(const char* line) {
  std::vector<double> out;
  for (const char* p = line; (p = std::strchr(p, ':')) != nullptr; ++p) out.push_back(std::strtod(p + 1, nullptr));
  return out;
}

// Sets a new booster's parameters: objective for the task, the learner's params, the learner's mode.
Status Configure(const FitContext& c, BoosterHandle h, size_t train_rows) {
  auto set = [&](const char* name, const std::string& value) -> Status {
    LATHE_XGB(XGBoosterSetParam(h, name, value.c_str()), std::string("setting ") + name);
    return Status::Ok();
  };
  RETURN_IF_ERROR(set("verbosity", "0"));
  RETURN_IF_ERROR(set("tree_method", "hist"));
  RETURN_IF_ERROR(set("seed", std::to_string(c.spec.split.seed)));
  RETURN_IF_ERROR(set("nthread", std::to_string(ThreadsFor(c.spec, train_rows))));
  switch (c.task) {
    case Task::kBinary:
      RETURN_IF_ERROR(set("objective", "binary:logistic"));
      break;
    case Task::kMulticlass:
      RETURN_IF_ERROR(set("objective", "multi:softprob"));
      RETURN_IF_ERROR(set("num_class", std::to_string(c.pipe.NumClasses())));
      break;
    case Task::kRegression:
      RETURN_IF_ERROR(set("objective", RegressionObjective(c.params)));
      break;
    case Task::kRanking:
      RETURN_IF_ERROR(set("objective", RankingObjective(c.params)));
      break;
    case Task::kClustering:  // unsupervised tasks train in ml/train_unsupervised.cc, never here
    case Task::kDecomposition:
    case Task::kAnomaly:
      break;
  }
  const std::string objective = c.params.value("objective", std::string());
  for (const ParamSpec& p : c.learner.params) {
    if (p.backend_name.empty() || !c.params.contains(p.name)) continue;
    if (p.name == "huber_slope" && objective != "huber") continue;
    if (p.name == "tweedie_variance_power" && objective != "tweedie") continue;
    // Poisson regression keeps its own max_delta_step (0.7) for stability unless the user chose one.
    if (p.name == "max_delta_step" && objective == "poisson" && !c.spec.params.contains("max_delta_step")) continue;
    RETURN_IF_ERROR(set(p.backend_name.c_str(), ParamText(c.params[p.name])));
  }
  if (c.learner.name == "random_forest") RETURN_IF_ERROR(set("eta", "1"));
  if (c.dart) RETURN_IF_ERROR(set("booster", "dart"));
  if (c.gblinear) {  // coordinate descent: deterministic, and takes every feature selector
    RETURN_IF_ERROR(set("booster", "gblinear"));
    RETURN_IF_ERROR(set("updater", "coord_descent"));
  }
  RETURN_IF_ERROR(set("eval_metric", EvalMetricName(c.task)));
  return Status::Ok();
}

// Fits one booster on `dtrain`. Progress runs from `from` to `to` with messages prefixed by `label`.
// For DART, `dvalid` (may be null) and `curve` receive XGBoost's own per-round evaluation.
Result<std::unique_ptr<internal::Booster>> Fit(const FitContext& c, const internal::DMatrix& dtrain,
                                               size_t train_rows, const std::string& label, double from,
                                               double to, const internal::DMatrix* dvalid = nullptr,
                                               LearningCurve* curve = nullptr) {
  auto booster = std::make_unique<internal::Booster>();
  DMatrixHandle dmats[] = {dtrain.get()};
  LATHE_XGB(XGBoosterCreate(dmats, 1, booster->out()), "creating the booster");
  RETURN_IF_ERROR(Configure(c, booster->get(), train_rows));
  std::vector<DMatrixHandle> eval_sets = {dtrain.get()};
  std::vector<const char*> eval_names = {"train"};
  if (c.xgb_curve && dvalid != nullptr) {
    eval_sets.push_back(dvalid->get());
    eval_names.push_back("valid");
  }
  for (int i = 0; i < c.rounds; ++i) {
    if (c.cancelled()) {
      return Status::Cancelled("training cancelled after " + std::to_string(i) + " rounds" +
                               (label.empty() ? "" : " (" + label.substr(0, label.size() - 2) + ")"));
    }
    LATHE_XGB(XGBoosterUpdateOneIter(booster->get(), i, dtrain.get()), "boosting round " + std::to_string(i));
    if (c.xgb_curve && curve != nullptr) {
      const char* line = nullptr;
      LATHE_XGB(XGBoosterEvalOneIter(booster->get(), i, eval_sets.data(), eval_names.data(), eval_sets.size(), &line),
                "evaluating round " + std::to_string(i));
      const std::vector<double> v = EvalValues(line);
      if (!v.empty()) curve->train.push_back(v[0]);
      if (v.size() > 1) curve->valid.push_back(v[1]);
    }
    c.report(from + (to - from) * (i + 1) / c.rounds,
             label + "round " + std::to_string(i + 1) + "/" + std::to_string(c.rounds));
  }
  return booster;
}

// Predictions for the `rows` rows of `d`: one probability per row (binary), one per class (multiclass), or
// the value (regression).
Result<std::vector<float>> Predict(const FitContext& c, const internal::Booster& booster,
                                   const internal::DMatrix& d, size_t rows) {
  bst_ulong const* shape = nullptr;
  bst_ulong dim = 0;
  const float* out = nullptr;
  LATHE_XGB(XGBoosterPredictFromDMatrix(
                booster.get(), d.get(),
                R"({"type":0,"training":false,"iteration_begin":0,"iteration_end":0,"strict_shape":false})",
                &shape, &dim, &out),
            "predicting the evaluation rows");
  size_t count = 1;
  for (bst_ulong i = 0; i < dim; ++i) count *= static_cast<size_t>(shape[i]);
  const size_t per_row = c.task == Task::kMulticlass ? c.pipe.NumClasses() : 1;
  if (count != rows * per_row) return Status::Internal("unexpected prediction shape");
  return std::vector<float>(out, out + count);
}

// Loss after each boosting round on the rows at `pos` (an evenly strided sample of kMaxCurveRows of them
// beyond that many), from the booster's trees evaluated stage by stage with lathe's own evaluator: one pass
// after training, rather than XGBoost evaluating every round (that costs several OpenMP regions per round
// and, on a busy 2-core host, doubled the training time). Losses are XGBoost's logloss, mlogloss and rmse.
Result<std::vector<double>> StagedLoss(const FitContext& c, const CompiledForest& forest,
                                       const std::vector<size_t>& pos) {
  std::vector<int64_t> rows;
  std::vector<float> labels;
  const size_t n = std::min(pos.size(), kMaxCurveRows);
  for (size_t i = 0; i < n; ++i) {
    const size_t p = pos.size() > kMaxCurveRows ? pos[i * pos.size() / kMaxCurveRows] : pos[i];
    rows.push_back(c.kept[p]);
    labels.push_back(c.y[p]);
  }
  ASSIGN_OR_RETURN(std::vector<float> x, c.pipe.TransformRows(c.table, rows));
  const auto rounds = static_cast<size_t>(c.rounds);
  if (rounds == 0 || forest.num_trees() % rounds != 0) return Status::Internal("unexpected number of trees");
  const size_t trees_per_round = forest.num_trees() / rounds;
  const auto groups = static_cast<size_t>(forest.num_groups());
  const size_t width = c.pipe.NumFeatures();
  const bool log_link = forest.objective() == "count:poisson" || forest.objective() == "reg:tweedie";
  std::vector<float> staged(rounds * groups);
  std::vector<double> sum(rounds, 0.0);
  for (size_t i = 0; i < n; ++i) {
    forest.StagedMargins(&x[i * width], trees_per_round, staged.data());
    const double y = labels[i];
    for (size_t r = 0; r < rounds; ++r) {
      const float* m = &staged[r * groups];
      switch (c.task) {
        case Task::kBinary: {
          // -log(sigmoid(±m)) = softplus(∓m), in float: this loop is the whole cost of a learning curve.
          const float z = y > 0.5 ? -m[0] : m[0];
          sum[r] += std::max(z, 0.0f) + std::log1p(std::exp(-std::fabs(z)));
          break;
        }
        case Task::kMulticlass: {
          double top = m[0], total = 0;
          for (size_t g = 1; g < groups; ++g) top = std::max(top, static_cast<double>(m[g]));
          for (size_t g = 0; g < groups; ++g) total += std::exp(m[g] - top);
          const double p = std::exp(m[static_cast<size_t>(y)] - top) / total;
          sum[r] -= std::log(std::clamp(p, kLogLossEpsilon, 1.0 - kLogLossEpsilon));
          break;
        }
        case Task::kRegression: {
          const double e = static_cast<double>(log_link ? std::exp(m[0]) : m[0]) - y;
          sum[r] += e * e;
          break;
        }
        case Task::kRanking:  // ranking curves come from XGBoost (xgb_curve), never from StagedLoss
        case Task::kClustering:  // unsupervised tasks train in ml/train_unsupervised.cc, never here
        case Task::kDecomposition:
        case Task::kAnomaly:
          break;
      }
    }
  }
  for (double& v : sum) {
    v /= static_cast<double>(n);
    if (c.task == Task::kRegression) v = std::sqrt(v);
  }
  return sum;
}

// The learning curve of a fitted booster on its training and evaluation rows.
Result<LearningCurve> CurveOf(const FitContext& c, const internal::Booster& booster,
                              const std::vector<size_t>& train_pos, const std::vector<size_t>& valid_pos) {
  ASSIGN_OR_RETURN(std::string ubj, SaveBoosterUbj(booster.get()));
  Json model = Json::from_ubjson(ubj);
  ASSIGN_OR_RETURN(CompiledForest forest, CompiledForest::FromXgboostModel(model));
  LearningCurve curve;
  ASSIGN_OR_RETURN(curve.train, StagedLoss(c, forest, train_pos));
  ASSIGN_OR_RETURN(curve.valid, StagedLoss(c, forest, valid_pos));
  return curve;
}

// Metrics of `pred` for the rows at positions `pos` (nullptr: every position, in order), labels y_true.
Result<Json> Evaluate(const FitContext& c, const std::vector<float>& y_true, const std::vector<float>& pred,
                      Json* plots, const std::vector<size_t>* pos = nullptr) {
  switch (c.task) {
    case Task::kBinary:
      return BinaryMetrics(y_true, pred, plots);
    case Task::kMulticlass:
      return MulticlassMetrics(y_true, pred, static_cast<int>(c.pipe.NumClasses()), plots);
    case Task::kRegression:
      return RegressionMetrics(y_true, pred, plots);
    case Task::kRanking: {
      if (pos == nullptr) return RankingMetrics(y_true, pred, *c.query, plots);
      std::vector<int64_t> query(pos->size());
      for (size_t i = 0; i < pos->size(); ++i) query[i] = (*c.query)[(*pos)[i]];
      return RankingMetrics(y_true, pred, query, plots);
    }
    case Task::kClustering:  // unsupervised tasks train in ml/train_unsupervised.cc, never here
    case Task::kDecomposition:
    case Task::kAnomaly:
      break;
  }
  return Status::Internal("unknown task");
}

// {"<metric>": {"mean", "std", "folds": [...]}} over every scalar metric of the folds. Folds where a metric
// is undefined (null) are listed as null and left out of mean and std; std is the population std (ddof = 0).
Json AggregateFolds(const std::vector<Json>& per_fold) {
  Json cv = Json::object();
  if (per_fold.empty()) return cv;
  for (auto it = per_fold[0].begin(); it != per_fold[0].end(); ++it) {
    if (it.key() == "rows" || !(it->is_number() || it->is_null())) continue;
    Json values = Json::array();
    std::vector<double> finite;
    for (const Json& m : per_fold) {
      const Json v = m.value(it.key(), Json(nullptr));
      values.push_back(v);
      if (v.is_number() && std::isfinite(v.get<double>())) finite.push_back(v.get<double>());
    }
    Json entry = {{"folds", values}, {"mean", nullptr}, {"std", nullptr}};
    if (!finite.empty()) {
      double mean = 0;
      for (double v : finite) mean += v;
      mean /= static_cast<double>(finite.size());
      double var = 0;
      for (double v : finite) var += (v - mean) * (v - mean);
      entry["mean"] = mean;
      entry["std"] = std::sqrt(var / static_cast<double>(finite.size()));
    }
    cv[it.key()] = entry;
  }
  return cv;
}

struct Fold {
  std::vector<size_t> train, test;
};

// Divides positions 0..y.size()-1 as spec.split says; describes the division in `info`.
Result<std::vector<Fold>> PlanFolds(const Table& table, const std::vector<int64_t>& kept,
                                    const std::vector<float>& y, Task task, const SplitSpec& split,
                                    Json* info) {
  const bool stratify = split.stratify && task != Task::kRegression;
  std::vector<Fold> folds;
  std::vector<int> assign;
  switch (split.method) {
    case SplitMethod::kHoldout: {
      Fold f;
      SplitRows(y, stratify, split.test_fraction, split.seed, &f.train, &f.test);
      if (f.train.empty() || f.test.empty()) {
        return FieldError("target", "too few rows with a target (" + std::to_string(kept.size()) +
                                        ") to hold out a test split");
      }
      folds.push_back(std::move(f));
      break;
    }
    case SplitMethod::kTime: {
      const Column& col = table.columns[static_cast<size_t>(table.FindColumn(split.time_column))];
      std::vector<double> times(kept.size());
      for (size_t i = 0; i < kept.size(); ++i) {
        const auto r = static_cast<size_t>(kept[i]);
        times[i] = col.IsValid(r) ? static_cast<double>(col.i64[r]) : std::nan("");
      }
      Fold f;
      RETURN_IF_ERROR(TimeSplit(times, split.test_fraction, &f.train, &f.test));
      int64_t train_max = std::numeric_limits<int64_t>::min(), test_min = std::numeric_limits<int64_t>::max();
      for (size_t p : f.train) train_max = std::max(train_max, col.i64[static_cast<size_t>(kept[p])]);
      for (size_t p : f.test) test_min = std::min(test_min, col.i64[static_cast<size_t>(kept[p])]);
      (*info)["train_time_max"] = FormatRfc3339(train_max);
      (*info)["test_time_min"] = FormatRfc3339(test_min);
      (*info)["missing_time_rows"] = kept.size() - f.train.size() - f.test.size();
      folds.push_back(std::move(f));
      break;
    }
    case SplitMethod::kKFold:
      if (static_cast<size_t>(split.folds) > kept.size()) {
        return FieldError("split.folds", "must be at most the number of rows with a target (" +
                                             std::to_string(kept.size()) + ")");
      }
      assign = KFoldAssign(y, stratify, split.folds, split.seed);
      break;
    case SplitMethod::kGroupKFold: {
      const Column& col = table.columns[static_cast<size_t>(table.FindColumn(split.group_column))];
      const std::vector<int64_t> groups = GroupIds(col, kept);
      ASSIGN_OR_RETURN(assign, GroupKFoldAssign(groups, split.folds, split.seed));
      (*info)["groups"] = groups.empty() ? 0 : *std::max_element(groups.begin(), groups.end()) + 1;
      break;
    }
  }
  if (split.IsCrossValidation()) {
    folds.resize(static_cast<size_t>(split.folds));
    for (size_t p = 0; p < assign.size(); ++p) {
      for (size_t f = 0; f < folds.size(); ++f) {
        (static_cast<int>(f) == assign[p] ? folds[f].test : folds[f].train).push_back(p);
      }
    }
    Json sizes = Json::array();
    for (const Fold& f : folds) sizes.push_back(f.test.size());
    (*info)["folds"] = split.folds;
    (*info)["fold_rows"] = sizes;
  }
  for (size_t i = 0; i < folds.size(); ++i) {
    const std::string which = split.IsCrossValidation() ? "fold " + std::to_string(i + 1) + "'s training rows"
                                                        : "the training split";
    if (folds[i].train.empty() || folds[i].test.empty()) {
      return FieldError("split", which + " or its evaluation rows are empty");
    }
    if (task != Task::kRegression) {
      const float first = y[folds[i].train[0]];
      if (std::all_of(folds[i].train.begin(), folds[i].train.end(),
                      [&](size_t p) { return y[p] == first; })) {
        return FieldError("target", which + " have only one class");
      }
    }
  }
  return folds;
}

// Ranking: folds of whole queries (holdout: the fold of the nearest 1/k to test_fraction), each fold's rows
// ordered by query so that a query's rows are contiguous, as XGBoost's ranking objectives need.
Result<std::vector<Fold>> PlanRankingFolds(const std::vector<int64_t>& query, const SplitSpec& split, Json* info) {
  if (split.method != SplitMethod::kHoldout && split.method != SplitMethod::kKFold) {
    return FieldError("split.method", "ranking evaluates whole queries: use holdout or kfold (both split by "
                                      "params.query_column)");
  }
  const bool cv = split.method == SplitMethod::kKFold;
  const int k = cv ? split.folds : std::max(2, static_cast<int>(std::lround(1.0 / split.test_fraction)));
  const int64_t queries = query.empty() ? 0 : *std::max_element(query.begin(), query.end()) + 1;
  if (queries < k) {
    return FieldError(cv ? "split.folds" : "split.test_fraction",
                      "needs at least " + std::to_string(k) + " queries; there are " + std::to_string(queries));
  }
  ASSIGN_OR_RETURN(std::vector<int> assign, GroupKFoldAssign(query, k, split.seed));
  std::vector<Fold> folds(cv ? static_cast<size_t>(k) : 1);
  for (size_t p = 0; p < assign.size(); ++p) {
    for (size_t f = 0; f < folds.size(); ++f) {
      (static_cast<int>(f) == assign[p] ? folds[f].test : folds[f].train).push_back(p);
    }
  }
  auto by_query = [&](size_t a, size_t b) { return query[a] != query[b] ? query[a] < query[b] : a < b; };
  Json sizes = Json::array();
  for (Fold& f : folds) {
    std::sort(f.train.begin(), f.train.end(), by_query);
    std::sort(f.test.begin(), f.test.end(), by_query);
    sizes.push_back(f.test.size());
  }
  (*info)["queries"] = queries;
  if (cv) {
    (*info)["folds"] = k;
    (*info)["fold_rows"] = sizes;
  } else {
    (*info)["test_fraction_used"] = 1.0 / k;
  }
  return folds;
}

Status CheckSplitColumns(const Table& table, const TrainSpec& spec) {
  const SplitSpec& split = spec.split;
  if (split.method == SplitMethod::kGroupKFold) {
    if (split.group_column == spec.target) return FieldError("split.group_column", "must not be the target");
    if (table.FindColumn(split.group_column) < 0) {
      return FieldError("split.group_column", "unknown column '" + split.group_column + "'");
    }
  }
  if (split.method == SplitMethod::kTime) {
    if (split.time_column == spec.target) return FieldError("split.time_column", "must not be the target");
    const int idx = table.FindColumn(split.time_column);
    if (idx < 0) return FieldError("split.time_column", "unknown column '" + split.time_column + "'");
    const ColumnType type = table.columns[static_cast<size_t>(idx)].type;
    if (type != ColumnType::kDatetime) {
      return FieldError("split.time_column",
                        "must be a date or datetime column, not " + std::string(ColumnTypeName(type)));
    }
  }
  return Status::Ok();
}

// Global importance (ml/explain.h) of the model in `bundle` on up to kMaxExplainRows of the rows at `pos`
// (evenly strided). A failure here does not fail the run: it is recorded as {"error": ...}.
Json Explain(const FitContext& c, const std::string& bundle, const std::vector<size_t>& pos, const char* source) {
  const size_t kMaxExplainRows = std::max<size_t>(1, c.spec.explain_rows);
  std::vector<size_t> sample;
  const size_t stride = std::max<size_t>(1, (pos.size() + kMaxExplainRows - 1) / kMaxExplainRows);
  for (size_t i = 0; i < pos.size(); i += stride) sample.push_back(pos[i]);
  auto run = [&]() -> Result<Json> {
    ASSIGN_OR_RETURN(std::shared_ptr<Predictor> p, Predictor::Load(bundle));
    std::vector<int64_t> table_rows;
    std::vector<float> y;
    for (size_t at : sample) {
      table_rows.push_back(c.kept[at]);
      y.push_back(c.y[at]);
    }
    ASSIGN_OR_RETURN(std::vector<float> rows, c.pipe.TransformRows(c.table, table_rows));
    ASSIGN_OR_RETURN(Json j, GlobalImportance(*p, rows.data(), sample.size(), y.data(),
                                              ImportanceOptions{.repeats = 3, .seed = c.spec.split.seed + 1}));
    j["source"] = source;
    return j;
  };
  auto j = run();
  return j.ok() ? std::move(j).value() : Json{{"error", j.status().message()}};
}

// Row weights from params.weight_column and params.class_weight, per kept position; rows whose weight is
// missing are dropped from `kept` and `y`. Empty when neither is set.
Result<std::vector<float>> RowWeights(const Table& table, const Json& params, Task task,
                                      const FeaturePipeline& pipe, std::vector<int64_t>* kept,
                                      std::vector<float>* y) {
  std::vector<float> w;
  const std::string column = params.value("weight_column", std::string());
  if (!column.empty()) {
    const std::string field = "params.weight_column";
    if (column == pipe.target()) return FieldError(field, "must not be the target");
    const int idx = table.FindColumn(column);
    if (idx < 0) return FieldError(field, "unknown column '" + column + "'");
    const Column& col = table.columns[static_cast<size_t>(idx)];
    if (col.type != ColumnType::kInt64 && col.type != ColumnType::kFloat64) {
      return FieldError(field, "'" + column + "' must be numeric, not " + ColumnTypeName(col.type));
    }
    std::vector<int64_t> rows;
    std::vector<float> labels;
    double total = 0;
    for (size_t i = 0; i < kept->size(); ++i) {
      const auto r = static_cast<size_t>((*kept)[i]);
      if (!col.IsValid(r)) continue;
      const double v = col.type == ColumnType::kInt64 ? static_cast<double>(col.i64[r]) : col.f64[r];
      if (std::isnan(v)) continue;
      if (!std::isfinite(v) || v < 0) {
        return FieldError(field, "weights must be finite and >= 0; row " + std::to_string(r + 1) + " has " +
                                     Json(v).dump());
      }
      rows.push_back((*kept)[i]);
      labels.push_back((*y)[i]);
      w.push_back(static_cast<float>(v));
      total += v;
    }
    if (!(total > 0)) return FieldError(field, "every weight is zero or missing");
    *kept = std::move(rows);
    *y = std::move(labels);
  }
  if (task != Task::kRegression && params.value("class_weight", std::string()) == "balanced") {
    const size_t k = pipe.NumClasses();
    std::vector<double> per_class(k, 0.0);
    if (w.empty()) w.assign(y->size(), 1.0f);
    for (size_t i = 0; i < y->size(); ++i) per_class[static_cast<size_t>((*y)[i])] += w[i];
    double total = 0;
    size_t present = 0;
    for (double v : per_class) {
      total += v;
      present += v > 0 ? 1 : 0;
    }
    for (size_t i = 0; i < y->size(); ++i) {
      const double share = per_class[static_cast<size_t>((*y)[i])];
      if (share > 0) w[i] = static_cast<float>(w[i] * total / (static_cast<double>(present) * share));
    }
  }
  return w;
}

// What every fit of a table needs, validated: the task, the learner and its canonical params, the fitted
// feature pipeline, the rows with a target (and weight) and their encoded labels and weights.
struct PreparedData {
  Task task = Task::kBinary;
  const LearnerInfo* learner = nullptr;
  Json params;
  FeaturePipeline pipe;
  std::vector<int64_t> kept;
  std::vector<float> y, weights;
  std::vector<int64_t> query;  // ranking: dense query id of each position
};

Result<PreparedData> PrepareData(const Table& table, const TrainSpec& spec) {
  PreparedData d;
  ASSIGN_OR_RETURN(d.task, ParseTask(spec.task, "task"));
  d.learner = FindLearner(spec.learner);
  if (d.learner == nullptr) return FieldError("learner", "unknown learner '" + spec.learner + "'");
  if (std::find(d.learner->tasks.begin(), d.learner->tasks.end(), d.task) == d.learner->tasks.end()) {
    return FieldError("task", "learner " + d.learner->name + " does not support task " + spec.task);
  }
  RETURN_IF_ERROR(ParseSplitSpec(SplitSpecToJson(spec.split)).status());  // ranges, required columns
  if (spec.nthread < 0) return FieldError("nthread", "must be >= 0 (0 = all cores)");
  ASSIGN_OR_RETURN(d.params, ValidateParams(*d.learner, spec.params, d.task));
  if (spec.target.empty()) return FieldError("target", "is required");
  if (table.num_rows <= 0) return Status::InvalidArgument("the dataset has no rows");
  RETURN_IF_ERROR(CheckSplitColumns(table, spec));

  const std::string weight_column = d.params.value("weight_column", std::string());
  std::vector<std::string> not_features;
  if (!weight_column.empty()) not_features.push_back(weight_column);
  const std::string query_column = d.params.value("query_column", std::string());
  if (d.task == Task::kRanking) {
    if (query_column.empty()) return FieldError("params.query_column", "is required for ranking");
    if (query_column == spec.target) return FieldError("params.query_column", "must not be the target");
    if (table.FindColumn(query_column) < 0) {
      return FieldError("params.query_column", "unknown column '" + query_column + "'");
    }
    not_features.push_back(query_column);
  }
  ASSIGN_OR_RETURN(d.pipe, FeaturePipeline::Fit(table, spec.target, d.task, not_features));
  ASSIGN_OR_RETURN(d.y, d.pipe.EncodeTarget(table, &d.kept));
  if (d.kept.empty()) return FieldError("target", "every row has a missing target value");
  ASSIGN_OR_RETURN(d.weights, RowWeights(table, d.params, d.task, d.pipe, &d.kept, &d.y));
  if (d.task == Task::kRegression) {
    const std::string objective = d.params.value("objective", std::string());
    if ((objective == "poisson" || objective == "tweedie") &&
        std::any_of(d.y.begin(), d.y.end(), [](float v) { return v < 0; })) {
      return FieldError("params.objective", objective + " regression needs a target >= 0; '" + spec.target +
                                                "' has negative values");
    }
  }
  if (d.task == Task::kRanking) {
    // LambdaMART's gain is 2^relevance - 1: XGBoost takes integer relevance grades from 0 to 31.
    for (float v : d.y) {
      if (!(v >= 0 && v <= 31 && v == std::floor(v))) {
        return FieldError("target", "ranking needs integer relevance grades from 0 to 31; '" + spec.target +
                                        "' has " + Json(v).dump());
      }
    }
    d.query = GroupIds(table.columns[static_cast<size_t>(table.FindColumn(query_column))], d.kept);
  }
  return d;
}

// Predictions from margins the way the objective turns them: sigmoid (binary), softmax (multiclass), exp for
// the log-link regression objectives, else the margin itself.
std::vector<float> PredictionsOfMargins(Task task, const std::vector<float>& margins, size_t w,
                                        const std::string& objective) {
  std::vector<float> pred(margins.size());
  const bool log_link = objective == "poisson" || objective == "tweedie";
  for (size_t i = 0; i + w <= margins.size(); i += w) {
    const float* m = &margins[i];
    float* p = &pred[i];
    switch (task) {
      case Task::kBinary:
        p[0] = static_cast<float>(1.0 / (1.0 + std::exp(-static_cast<double>(m[0]))));
        break;
      case Task::kMulticlass: {
        double top = m[0], total = 0;
        for (size_t g = 1; g < w; ++g) top = std::max(top, static_cast<double>(m[g]));
        for (size_t g = 0; g < w; ++g) total += std::exp(m[g] - top);
        for (size_t g = 0; g < w; ++g) p[g] = static_cast<float>(std::exp(m[g] - top) / total);
        break;
      }
      case Task::kRegression:
        p[0] = log_link ? std::exp(m[0]) : m[0];
        break;
      case Task::kRanking:  // scores are margins
        p[0] = m[0];
        break;
      case Task::kClustering:  // unsupervised tasks train in ml/train_unsupervised.cc, never here
      case Task::kDecomposition:
      case Task::kAnomaly:
        break;
    }
  }
  return pred;
}

LinearModel::Kind LinearKind(Task task) {
  switch (task) {
    case Task::kBinary: return LinearModel::Kind::kBinary;
    case Task::kMulticlass: return LinearModel::Kind::kMulticlass;
    case Task::kRegression: return LinearModel::Kind::kRegression;
    case Task::kRanking:  // the linear learner does not rank
    case Task::kClustering:  // unsupervised tasks train in ml/train_unsupervised.cc, never here
    case Task::kDecomposition:
    case Task::kAnomaly:
      break;
  }
  return LinearModel::Kind::kRegression;
}

// A linear model fitted on the rows at `pos` (positions into c.kept).
Result<LinearModel> FitLinear(const FitContext& c, const std::vector<size_t>& pos) {
  std::vector<int64_t> rows(pos.size());
  std::vector<float> labels(pos.size()), w;
  for (size_t i = 0; i < pos.size(); ++i) {
    rows[i] = c.kept[pos[i]];
    labels[i] = c.y[pos[i]];
    if (!c.weights.empty()) w.push_back(c.weights[pos[i]]);
  }
  ASSIGN_OR_RETURN(std::vector<float> x, c.pipe.TransformRows(c.table, rows));
  LinearModel::Options o;
  o.alpha = c.params.value("alpha", 1.0);
  o.max_iter = c.params.value("max_iter", 50);
  return LinearModel::Fit(x.data(), pos.size(), c.pipe.feature_types(), labels, w, LinearKind(c.task),
                          static_cast<int>(c.pipe.NumClasses()), o);
}

// Margins of a linear model for the rows at `pos`.
Result<std::vector<float>> LinearMargins(const FitContext& c, const LinearModel& m, const std::vector<size_t>& pos) {
  std::vector<int64_t> rows(pos.size());
  for (size_t i = 0; i < pos.size(); ++i) rows[i] = c.kept[pos[i]];
  ASSIGN_OR_RETURN(std::vector<float> x, c.pipe.TransformRows(c.table, rows));
  const size_t k = static_cast<size_t>(m.outputs()), width = c.pipe.NumFeatures();
  std::vector<float> out(pos.size() * k);
  for (size_t i = 0; i < pos.size(); ++i) m.Margin(&x[i * width], &out[i * k]);
  return out;
}

// The bundle, pipeline and signature of a fitted model (an XGBoost booster as UBJSON, or a linear model as
// JSON with format "linear").
}  // namespace

namespace internal {

TrainOutput Package(const TrainSpec& spec, const FeaturePipeline& pipe, Task task, const std::string& learner,
                    const Json& params, const std::string& booster_bytes, const char* format,
                    const Json& extra_meta) {
  int major = 0, minor = 0, patch = 0;
  XGBoostVersion(&major, &minor, &patch);
  TrainOutput result;
  result.pipeline = pipe.ToJson();
  result.signature = pipe.Signature();
  Json meta = {{"learner", learner},        {"task", TaskName(task)},
               {"params", params},          {"pipeline", result.pipeline},
               {"booster_format", format},  {"xgboost_version", {major, minor, patch}}};
  for (auto it = extra_meta.begin(); it != extra_meta.end(); ++it) meta[it.key()] = it.value();
  if (spec.preprocess.is_object() && !spec.preprocess.empty()) {
    meta["preprocess"] = spec.preprocess;
    Json inputs = Json::array();
    for (const auto& in : spec.preprocess["inputs"]) {
      if (in.value("name", std::string()) != spec.target) inputs.push_back(in);
    }
    result.signature["inputs"] = inputs;
    result.signature["preprocessed"] = true;
  }
  result.model_bundle = EncodeModelBundle(meta, booster_bytes);
  return result;
}

}  // namespace internal

namespace {

using internal::Package;

// Training of the linear learner: the same splits, metrics, plots and explanations as the boosted learners,
// no learning curve (there are no rounds).
Result<TrainOutput> TrainLinear(const Table& table, const TrainSpec& spec, PreparedData& d,
                                const TrainProgressFn& progress, const TrainCancelFn& cancel,
                                std::chrono::steady_clock::time_point start) {
  FitContext c{.table = table, .pipe = d.pipe, .kept = d.kept, .y = d.y, .weights = d.weights,
               .task = d.task, .learner = *d.learner, .params = d.params, .spec = spec};
  for (const std::string& t : d.pipe.feature_types()) c.types.push_back(t.c_str());
  c.report = [&](double f, const std::string& m) {
    if (progress) progress(f, m);
  };
  c.cancelled = [&] { return cancel && cancel(); };
  Json split_info = {{"method", SplitMethodName(spec.split.method)}};
  ASSIGN_OR_RETURN(std::vector<Fold> folds, PlanFolds(table, d.kept, d.y, d.task, spec.split, &split_info));
  const size_t k = d.task == Task::kMulticlass ? d.pipe.NumClasses() : 1;
  auto labels_of = [&](const std::vector<size_t>& pos) {
    std::vector<float> out(pos.size());
    for (size_t i = 0; i < pos.size(); ++i) out[i] = d.y[pos[i]];
    return out;
  };
  Json metrics, plots = Json::object();
  std::optional<LinearModel> model;
  std::vector<size_t> explain_pos;
  int64_t train_rows = 0, test_rows = 0;
  const bool cv = spec.split.IsCrossValidation();
  if (!cv) {
    const Fold& f = folds[0];
    ASSIGN_OR_RETURN(LinearModel m, FitLinear(c, f.train));
    ASSIGN_OR_RETURN(std::vector<float> margins, LinearMargins(c, m, f.test));
    ASSIGN_OR_RETURN(metrics, Evaluate(c, labels_of(f.test), PredictionsOfMargins(d.task, margins, k, ""), &plots));
    model = std::move(m);
    train_rows = static_cast<int64_t>(f.train.size());
    test_rows = static_cast<int64_t>(f.test.size());
    explain_pos = f.test;
  } else {
    std::vector<float> oof(d.kept.size() * k);
    std::vector<Json> fold_metrics;
    for (size_t i = 0; i < folds.size(); ++i) {
      if (c.cancelled()) return Status::Cancelled("training cancelled after " + std::to_string(i) + " folds");
      const Fold& f = folds[i];
      ASSIGN_OR_RETURN(LinearModel m, FitLinear(c, f.train));
      ASSIGN_OR_RETURN(std::vector<float> margins, LinearMargins(c, m, f.test));
      const std::vector<float> pred = PredictionsOfMargins(d.task, margins, k, "");
      for (size_t j = 0; j < f.test.size(); ++j) std::copy_n(&pred[j * k], k, &oof[f.test[j] * k]);
      ASSIGN_OR_RETURN(Json fm, Evaluate(c, labels_of(f.test), pred, nullptr));
      fold_metrics.push_back(std::move(fm));
      c.report(0.05 + 0.8 * static_cast<double>(i + 1) / static_cast<double>(folds.size() + 1),
               "fold " + std::to_string(i + 1) + "/" + std::to_string(folds.size()));
    }
    std::vector<size_t> all(d.kept.size());
    std::iota(all.begin(), all.end(), size_t{0});
    ASSIGN_OR_RETURN(LinearModel m, FitLinear(c, all));
    model = std::move(m);
    ASSIGN_OR_RETURN(metrics, Evaluate(c, d.y, oof, &plots));
    metrics["cv"] = AggregateFolds(fold_metrics);
    train_rows = test_rows = static_cast<int64_t>(d.kept.size());
    explain_pos = all;
  }
  metrics["train_rows"] = train_rows;
  metrics["test_rows"] = test_rows;
  metrics["dropped_rows"] = table.num_rows - static_cast<int64_t>(d.kept.size());
  metrics["split"] = split_info;
  TrainOutput result = Package(spec, d.pipe, d.task, "linear", d.params, model->ToJson().dump(), "linear");
  result.metrics = std::move(metrics);
  result.curves = std::move(plots);
  if (spec.explain) {
    c.report(0.97, "explaining");
    result.explanations = Explain(c, result.model_bundle, explain_pos, cv ? "training_rows" : "holdout");
  }
  result.params = d.params;
  result.train_rows = train_rows;
  result.test_rows = test_rows;
  result.train_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  c.report(1.0, "done");
  return result;
}

Result<TrainOutput> TrainImpl(const Table& table, const TrainSpec& spec, const TrainProgressFn& progress,
                              const TrainCancelFn& cancel) {
  const auto start = std::chrono::steady_clock::now();
  if (auto task = ParseTask(spec.task, "task"); task.ok() && !IsSupervised(*task)) {
    return TrainUnsupervised(table, spec, progress, cancel);
  }
  ASSIGN_OR_RETURN(PreparedData prepared, PrepareData(table, spec));
  if (prepared.learner->name == "linear") return TrainLinear(table, spec, prepared, progress, cancel, start);
  const Task task = prepared.task;
  const LearnerInfo* learner = prepared.learner;
  Json& params = prepared.params;
  FeaturePipeline& pipe = prepared.pipe;
  std::vector<int64_t>& kept = prepared.kept;
  std::vector<float>& y = prepared.y;
  std::vector<float>& weights = prepared.weights;
  const int64_t dropped_rows = table.num_rows - static_cast<int64_t>(kept.size());

  Json split_info = {{"method", SplitMethodName(spec.split.method)}};
  std::vector<Fold> folds;
  if (task == Task::kRanking) {
    ASSIGN_OR_RETURN(folds, PlanRankingFolds(prepared.query, spec.split, &split_info));
  } else {
    ASSIGN_OR_RETURN(folds, PlanFolds(table, kept, y, task, spec.split, &split_info));
  }

  FitContext c{.table = table,
               .pipe = pipe,
               .kept = kept,
               .y = y,
               .weights = weights,
               .task = task,
               .learner = *learner,
               .params = params,
               .spec = spec};
  // Random forest: one round of n_estimators parallel trees.
  c.rounds = learner->name == "random_forest" ? 1 : params["n_estimators"].get<int>();
  c.dart = learner->name == "xgboost_dart";
  c.gblinear = learner->name == "xgboost_linear";
  c.xgb_curve = c.dart || c.gblinear || task == Task::kRanking;
  if (task == Task::kRanking) c.query = &prepared.query;
  for (const std::string& t : pipe.feature_types()) c.types.push_back(t.c_str());
  c.report = [&](double fraction, const std::string& message) {
    if (progress) progress(fraction, message);
  };
  c.cancelled = [&]() { return cancel && cancel(); };
  c.report(0.05, "encoded " + std::to_string(pipe.NumFeatures()) + " features");

  auto labels_of = [&](const std::vector<size_t>& pos) {
    std::vector<float> out(pos.size());
    for (size_t i = 0; i < pos.size(); ++i) out[i] = y[pos[i]];
    return out;
  };
  std::unique_ptr<internal::Booster> model;
  Json metrics, plots = Json::object();
  LearningCurve curve;
  std::vector<size_t> explain_pos;  // rows the explanations are computed on: the evaluation rows
  int64_t train_rows = 0, test_rows = 0;
  const bool cv = spec.split.IsCrossValidation();
  if (!cv) {
    const Fold& f = folds[0];
    const int nthread = ThreadsFor(spec, f.train.size());
    ASSIGN_OR_RETURN(auto dtrain, MakeMatrix(c, f.train, true, nthread));
    ASSIGN_OR_RETURN(auto dtest, MakeMatrix(c, f.test, true, nthread));
    ASSIGN_OR_RETURN(model, Fit(c, *dtrain, f.train.size(), "", 0.05, 0.95, dtest.get(), &curve));
    if (!c.xgb_curve) {
      ASSIGN_OR_RETURN(curve, CurveOf(c, *model, f.train, f.test));
    }
    ASSIGN_OR_RETURN(std::vector<float> pred, Predict(c, *model, *dtest, f.test.size()));
    ASSIGN_OR_RETURN(metrics, Evaluate(c, labels_of(f.test), pred, &plots, &f.test));
    train_rows = static_cast<int64_t>(f.train.size());
    test_rows = static_cast<int64_t>(f.test.size());
    explain_pos = f.test;
  } else {
    // One fit per fold plus the final fit on all rows share the progress range evenly.
    const double step = 0.9 / static_cast<double>(folds.size() + 1);
    const size_t per_row = task == Task::kMulticlass ? pipe.NumClasses() : 1;
    std::vector<float> oof(kept.size() * per_row);
    std::vector<Json> fold_metrics;
    for (size_t i = 0; i < folds.size(); ++i) {
      const Fold& f = folds[i];
      const int nthread = ThreadsFor(spec, f.train.size());
      ASSIGN_OR_RETURN(auto dtrain, MakeMatrix(c, f.train, true, nthread));
      ASSIGN_OR_RETURN(auto dtest, MakeMatrix(c, f.test, true, nthread));
      LearningCurve fold_curve;
      const std::string label = "fold " + std::to_string(i + 1) + "/" + std::to_string(folds.size()) + ": ";
      const double from = 0.05 + step * static_cast<double>(i);
      ASSIGN_OR_RETURN(auto booster, Fit(c, *dtrain, f.train.size(), label, from, from + step, dtest.get(),
                                         &fold_curve));
      if (!c.xgb_curve) {
        ASSIGN_OR_RETURN(fold_curve, CurveOf(c, *booster, f.train, f.test));
      }
      ASSIGN_OR_RETURN(std::vector<float> pred, Predict(c, *booster, *dtest, f.test.size()));
      for (size_t j = 0; j < f.test.size(); ++j) {
        std::copy_n(pred.begin() + static_cast<std::ptrdiff_t>(j * per_row), per_row,
                    oof.begin() + static_cast<std::ptrdiff_t>(f.test[j] * per_row));
      }
      ASSIGN_OR_RETURN(Json m, Evaluate(c, labels_of(f.test), pred, nullptr, &f.test));
      fold_metrics.push_back(std::move(m));
      if (i == 0) {
        curve = std::move(fold_curve);
      } else {
        for (size_t r = 0; r < curve.train.size() && r < fold_curve.train.size(); ++r)
          curve.train[r] += fold_curve.train[r];
        for (size_t r = 0; r < curve.valid.size() && r < fold_curve.valid.size(); ++r)
          curve.valid[r] += fold_curve.valid[r];
      }
    }
    for (double& v : curve.train) v /= static_cast<double>(folds.size());
    for (double& v : curve.valid) v /= static_cast<double>(folds.size());
    std::vector<size_t> all(kept.size());
    std::iota(all.begin(), all.end(), size_t{0});
    if (c.query != nullptr) {  // ranking: each query's rows together
      std::stable_sort(all.begin(), all.end(), [&](size_t a, size_t b) { return (*c.query)[a] < (*c.query)[b]; });
    }
    ASSIGN_OR_RETURN(auto dall, MakeMatrix(c, all, true, ThreadsFor(spec, all.size())));
    ASSIGN_OR_RETURN(model, Fit(c, *dall, all.size(),
                                "all rows: ", 0.05 + step * static_cast<double>(folds.size()), 0.95));
    ASSIGN_OR_RETURN(metrics, Evaluate(c, y, oof, &plots));
    metrics["cv"] = AggregateFolds(fold_metrics);
    train_rows = static_cast<int64_t>(kept.size());
    test_rows = static_cast<int64_t>(kept.size());
    explain_pos = all;  // the kept model saw every row: its explanations are in-sample (said in "source")
  }
  metrics["train_rows"] = train_rows;
  metrics["test_rows"] = test_rows;
  metrics["dropped_rows"] = dropped_rows;
  metrics["split"] = split_info;

  ASSIGN_OR_RETURN(std::string booster_bytes, SaveBoosterUbj(model->get()));
  if (c.gblinear) {
    // Coordinate descent on unscaled features can diverge (a log link on large values, say): say so now
    // rather than store a model that cannot predict.
    const Json weights = Json::from_ubjson(booster_bytes)["learner"]["gradient_booster"]["model"]["weights"];
    for (const Json& w : weights) {
      if (!w.is_number() || !std::isfinite(w.get<double>())) {
        return Status::FailedPrecondition(
            "xgboost_linear diverged (its weights are not finite): lower learning_rate, raise reg_lambda, or use "
            "the linear learner, which standardizes the features");
      }
    }
  }
  TrainOutput result = Package(spec, pipe, task, learner->name, params, booster_bytes);
  result.metrics = std::move(metrics);
  result.curves = std::move(plots);
  result.curves["learning"] = {{"metric", EvalMetricName(task)},
                               {"source", cv ? "cv_mean" : "holdout"},
                               {"train", curve.train},
                               {"valid", curve.valid}};
  if (spec.explain) {
    c.report(0.97, "explaining");
    result.explanations = Explain(c, result.model_bundle, explain_pos, cv ? "training_rows" : "holdout");
  }
  result.params = std::move(params);
  result.train_rows = train_rows;
  result.test_rows = test_rows;
  result.train_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  c.report(1.0, "done");
  return result;
}

}  // namespace

Result<TrainOutput> Train(const Table& table, const TrainSpec& spec, const TrainProgressFn& progress,
                          const TrainCancelFn& cancel) {
  try {
    return TrainImpl(table, spec, progress, cancel);
  } catch (const std::bad_alloc&) {
    return Status::ResourceExhausted("out of memory while training");
  } catch (const std::exception& e) {
    return Status::Internal(std::string("training failed: ") + e.what());
  }
}

// ---- Ensembles

namespace {

// The margin an XGBoost model adds to every row before its trees (learner_model_param.base_score through
// the objective's ProbToMargin), as the compiled evaluator computes it.
Result<float> BaseMargin(const Json& model) {
  const Json& learner = model["learner"];
  const std::string objective = learner["objective"]["name"].get<std::string>();
  const Json& bs = learner["learner_model_param"]["base_score"];
  const float base = bs.is_string() ? std::stof(bs.get<std::string>()) : bs.get<float>();
  if (objective == "binary:logistic") return -std::log(1.0f / base - 1.0f);
  if (objective == "count:poisson" || objective == "reg:tweedie") return std::log(base);
  return base;
}

// The base_score whose margin is zero for the objective.
const char* NeutralBaseScore(const std::string& objective) {
  if (objective == "binary:logistic") return "5E-1";
  if (objective == "count:poisson" || objective == "reg:tweedie") return "1E0";
  return "0E0";
}

// One XGBoost model (JSON document) whose margin is sum_i weights[i] * margin_i of the members' models.
Result<Json> MergeModels(const std::vector<Json>& models, const std::vector<double>& weights) {
  Json merged = models[0];
  Json& learner = merged["learner"];
  const std::string objective = learner["objective"]["name"].get<std::string>();
  const Json& nc = learner["learner_model_param"]["num_class"];
  const int64_t groups = std::max<int64_t>(1, nc.is_string() ? std::stoll(nc.get<std::string>()) : nc.get<int64_t>());
  Json trees = Json::array(), info = Json::array();
  std::vector<double> bias(static_cast<size_t>(groups), 0.0);
  for (size_t m = 0; m < models.size(); ++m) {
    const Json& l = models[m]["learner"];
    if (l["gradient_booster"]["name"] != "gbtree") return Status::InvalidArgument("only tree models can be blended");
    if (l["objective"]["name"] != objective) return Status::InvalidArgument("blended models must share the objective");
    ASSIGN_OR_RETURN(float base, BaseMargin(models[m]));
    for (double& b : bias) b += weights[m] * static_cast<double>(base);
    const Json& gm = l["gradient_booster"]["model"];
    const float w = static_cast<float>(weights[m]);
    for (size_t t = 0; t < gm["trees"].size(); ++t) {
      Json tree = gm["trees"][t];
      auto& cond = tree["split_conditions"];
      auto& left = tree["left_children"];
      auto& bw = tree["base_weights"];
      for (size_t n = 0; n < cond.size(); ++n) {
        if (left[n].get<int64_t>() == -1) cond[n] = cond[n].get<float>() * w;
        if (n < bw.size()) bw[n] = bw[n].get<float>() * w;
      }
      tree["id"] = trees.size();
      trees.push_back(std::move(tree));
      info.push_back(gm["tree_info"][t]);
    }
  }
  // One single-leaf tree per output carries the blended base margin (the merged base_score adds nothing).
  for (int64_t g = 0; g < groups; ++g) {
    Json leaf = trees[0];
    const float v = static_cast<float>(bias[static_cast<size_t>(g)]);
    leaf["base_weights"] = {v};
    leaf["split_conditions"] = {v};
    leaf["left_children"] = {-1};
    leaf["right_children"] = {-1};
    leaf["parents"] = {2147483647};
    leaf["split_indices"] = {0};
    leaf["split_type"] = {0};
    leaf["default_left"] = {0};
    leaf["loss_changes"] = {0.0};
    leaf["sum_hessian"] = {1.0};
    leaf["categories"] = Json::array();
    leaf["categories_nodes"] = Json::array();
    leaf["categories_segments"] = Json::array();
    leaf["categories_sizes"] = Json::array();
    leaf["tree_param"]["num_nodes"] = "1";
    leaf["tree_param"]["num_deleted"] = "0";
    leaf["id"] = trees.size();
    trees.push_back(std::move(leaf));
    info.push_back(g);
  }
  Json& gm = learner["gradient_booster"]["model"];
  gm["trees"] = std::move(trees);
  gm["tree_info"] = std::move(info);
  gm["gbtree_model_param"]["num_trees"] = std::to_string(gm["tree_info"].size());
  gm["gbtree_model_param"]["num_parallel_tree"] = "1";
  learner["learner_model_param"]["base_score"] = NeutralBaseScore(objective);
  learner["attributes"] = Json::object();
  return merged;
}

}  // namespace

Result<TrainOutput> FitEnsemble(const Table& table, const TrainSpec& spec, const std::vector<EnsembleMember>& members,
                                const TrainProgressFn& progress, const TrainCancelFn& cancel) {
  try {
    const auto start = std::chrono::steady_clock::now();
    if (members.empty()) return Status::InvalidArgument("an ensemble needs at least one member");
    TrainSpec first = spec;
    first.learner = members[0].learner;
    first.params = members[0].params;
    ASSIGN_OR_RETURN(PreparedData d, PrepareData(table, first));
    std::vector<size_t> all(d.kept.size());
    std::iota(all.begin(), all.end(), size_t{0});
    std::vector<Json> models;
    std::vector<double> weights;
    std::vector<std::unique_ptr<internal::Booster>> boosters;
    std::unique_ptr<internal::DMatrix> dall;
    Json member_list = Json::array();
    std::optional<LinearModel> linear;  // the linear members, weighted and summed
    bool log_link_trees = false;
    for (size_t m = 0; m < members.size(); ++m) {
      const LearnerInfo* learner = FindLearner(members[m].learner);
      if (learner == nullptr) return FieldError("learner", "unknown learner '" + members[m].learner + "'");
      if (members.size() > 1 && learner->name == "xgboost_dart") {
        return FieldError("learner", "DART models cannot be blended (their trees carry dropout weights)");
      }
      ASSIGN_OR_RETURN(Json params, ValidateParams(*learner, members[m].params, d.task));
      const std::string objective = params.value("objective", std::string());
      log_link_trees = log_link_trees || objective == "poisson" || objective == "tweedie";
      if (learner->name == "linear") {
        TrainSpec ms = spec;
        ms.learner = learner->name;
        ms.params = members[m].params;
        FitContext c{.table = table, .pipe = d.pipe, .kept = d.kept, .y = d.y, .weights = d.weights,
                     .task = d.task, .learner = *learner, .params = params, .spec = ms};
        if (progress) progress(0.05 + 0.85 * static_cast<double>(m) / static_cast<double>(members.size()), "linear member");
        ASSIGN_OR_RETURN(LinearModel lm, FitLinear(c, all));
        if (members.size() == 1) {
          TrainOutput out = Package(spec, d.pipe, d.task, "linear", params, lm.ToJson().dump(), "linear");
          out.params = params;
          out.train_rows = static_cast<int64_t>(all.size());
          if (spec.explain) out.explanations = Explain(c, out.model_bundle, all, "training_rows");
          out.train_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
          return out;
        }
        lm.Scale(members[m].weight);
        if (linear) {
          RETURN_IF_ERROR(linear->Add(lm));
        } else {
          linear = std::move(lm);
        }
        member_list.push_back({{"learner", learner->name}, {"params", params}, {"weight", members[m].weight}});
        continue;
      }
      TrainSpec ms = spec;
      ms.learner = learner->name;
      ms.params = members[m].params;
      FitContext c{.table = table,
                   .pipe = d.pipe,
                   .kept = d.kept,
                   .y = d.y,
                   .weights = d.weights,
                   .task = d.task,
                   .learner = *learner,
                   .params = params,
                   .spec = ms};
      c.rounds = learner->name == "random_forest" ? 1 : params["n_estimators"].get<int>();
      c.dart = learner->name == "xgboost_dart";
      c.xgb_curve = c.dart;
      for (const std::string& t : d.pipe.feature_types()) c.types.push_back(t.c_str());
      const double from = 0.05 + 0.85 * static_cast<double>(m) / static_cast<double>(members.size());
      const double to = 0.05 + 0.85 * static_cast<double>(m + 1) / static_cast<double>(members.size());
      c.report = [&](double f, const std::string& msg) {
        if (progress) progress(f, msg);
      };
      c.cancelled = [&] { return cancel && cancel(); };
      if (!dall) {
        ASSIGN_OR_RETURN(dall, MakeMatrix(c, all, true, ThreadsFor(ms, all.size())));
      }
      const std::string label = "member " + std::to_string(m + 1) + "/" + std::to_string(members.size()) + ": ";
      ASSIGN_OR_RETURN(auto booster, Fit(c, *dall, all.size(), label, from, to));
      if (members.size() == 1) {
        ASSIGN_OR_RETURN(std::string bytes, SaveBoosterUbj(booster->get()));
        TrainOutput out = Package(spec, d.pipe, d.task, learner->name, params, bytes);
        out.params = params;
        out.train_rows = static_cast<int64_t>(all.size());
        if (spec.explain) out.explanations = Explain(c, out.model_bundle, all, "training_rows");
        out.train_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        return out;
      }
      ASSIGN_OR_RETURN(std::string ubj, SaveBoosterUbj(booster->get()));
      models.push_back(Json::from_ubjson(ubj));
      weights.push_back(members[m].weight);
      member_list.push_back({{"learner", learner->name}, {"params", params}, {"weight", members[m].weight}});
    }
    if (linear && log_link_trees) {
      return FieldError("learner", "a linear model cannot be blended with log-link (poisson, tweedie) trees");
    }
    const Json params = {{"members", member_list}};
    if (models.empty()) {  // linear members only: their blend is one linear model
      TrainOutput out = Package(spec, d.pipe, d.task, "linear", params, linear->ToJson().dump(), "linear");
      out.params = params;
      out.train_rows = static_cast<int64_t>(all.size());
      if (spec.explain) {
        FitContext c{.table = table, .pipe = d.pipe, .kept = d.kept, .y = d.y, .weights = d.weights,
                     .task = d.task, .learner = *FindLearner("linear"), .params = params, .spec = spec};
        out.explanations = Explain(c, out.model_bundle, all, "training_rows");
      }
      out.train_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      return out;
    }
    ASSIGN_OR_RETURN(Json merged, MergeModels(models, weights));
    internal::Booster combined;
    LATHE_XGB(XGBoosterCreate(nullptr, 0, combined.out()), "creating the ensemble booster");
    // As JSON text: XGBoost's UBJSON reader wants its own integer widths. Every number is a float held
    // exactly in a double, so the text round-trips bit for bit. Categorical splits hold NaN thresholds, which
    // nlohmann writes as null and XGBoost reads as the literal NaN (a model document has no other null).
    std::string text = merged.dump();
    for (size_t at = 0; (at = text.find("null", at)) != std::string::npos; at += 3) {
      if (at > 0 && (text[at - 1] == ',' || text[at - 1] == '[')) text.replace(at, 4, "NaN");
    }
    LATHE_XGB(XGBoosterLoadModelFromBuffer(combined.get(), text.data(), text.size()), "loading the ensemble");
    ASSIGN_OR_RETURN(std::string bytes, SaveBoosterUbj(combined.get()));
    Json extra = Json::object();
    if (linear) extra["linear"] = linear->ToJson();
    TrainOutput out = Package(spec, d.pipe, d.task, "ensemble", params, bytes, "ubj", extra);
    out.params = params;
    out.train_rows = static_cast<int64_t>(all.size());
    if (spec.explain) {
      if (progress) progress(0.95, "explaining");
      const LearnerInfo* any = FindLearner("xgboost");
      FitContext c{.table = table, .pipe = d.pipe, .kept = d.kept, .y = d.y, .weights = d.weights,
                   .task = d.task, .learner = *any, .params = params, .spec = spec};
      out.explanations = Explain(c, out.model_bundle, all, "training_rows");
    }
    out.train_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (progress) progress(1.0, "done");
    return out;
  } catch (const std::bad_alloc&) {
    return Status::ResourceExhausted("out of memory while fitting the ensemble");
  } catch (const std::exception& e) {
    return Status::Internal(std::string("fitting the ensemble failed: ") + e.what());
  }
}

// ---- Import

Result<TrainOutput> ImportXgboostModel(std::string_view model, const Json& declared) {
  try {
    if (!declared.is_object()) return FieldError("signature", "must be an object");
    ASSIGN_OR_RETURN(std::string task_name, GetString(declared, "task"));
    ASSIGN_OR_RETURN(const Task task, ParseTask(task_name, "signature.task"));
    const std::string target = GetStringOr(declared, "target", "target");
    if (!declared.contains("inputs") || !declared["inputs"].is_array() || declared["inputs"].empty()) {
      return FieldError("signature.inputs", "list the model's input columns in feature order");
    }
    Json pipeline = {{"format_version", 1}, {"task", TaskName(task)}, {"target", target},
                     {"inputs", Json::array()}, {"dropped", Json::array()}};
    for (size_t i = 0; i < declared["inputs"].size(); ++i) {
      const Json& in = declared["inputs"][i];
      const std::string field = "signature.inputs[" + std::to_string(i) + "]";
      if (!in.is_object() || !in.contains("name") || !in["name"].is_string() || !in.contains("type") ||
          !in["type"].is_string()) {
        return FieldError(field, "needs a name and a type");
      }
      Json entry = {{"name", in["name"]}, {"type", in["type"]}};
      if (in["type"] == "string") {
        if (!in.contains("categories") || !in["categories"].is_array()) {
          return FieldError(field, "a string input needs its categories, in the model's code order");
        }
        entry["categories"] = in["categories"];
        entry["other"] = false;
      }
      pipeline["inputs"].push_back(entry);
    }
    if (task == Task::kRegression) {
      pipeline["target_type"] = "float";
    } else {
      if (!declared.contains("labels") || !declared["labels"].is_array()) {
        return FieldError("signature.labels", "classification needs the class labels in the model's order");
      }
      pipeline["labels"] = declared["labels"];
      const Json& first = declared["labels"].empty() ? Json() : declared["labels"][0];
      pipeline["target_type"] = first.is_string() ? "string" : first.is_boolean() ? "boolean"
                                : first.is_number_integer() ? "integer" : "float";
    }
    auto pipe = FeaturePipeline::FromJson(pipeline);
    if (!pipe.ok()) return FieldError("signature", pipe.status().message());
    internal::Booster booster;
    LATHE_XGB(XGBoosterCreate(nullptr, 0, booster.out()), "creating the booster");
    if (XGBoosterLoadModelFromBuffer(booster.get(), model.data(), model.size()) != 0) {
      return FieldError("model", std::string("XGBoost cannot read it: ") + XGBGetLastError());
    }
    ASSIGN_OR_RETURN(std::string ubj, SaveBoosterUbj(booster.get()));
    TrainSpec spec;
    spec.target = target;
    TrainOutput out = Package(spec, *pipe, task, "xgboost", {{"imported", true}}, ubj);
    out.params = {{"imported", true}};
    auto loaded = Predictor::Load(out.model_bundle);
    if (!loaded.ok()) return FieldError("model", loaded.status().message());
    return out;
  } catch (const std::exception& e) {
    return FieldError("model", e.what());
  }
}

// ---- Compression

Status CheckCompressSpec(const CompressSpec& spec) {
  if (spec.method != "prune" && spec.method != "distill") return FieldError("method", "must be prune or distill");
  if (!spec.params.is_object()) return FieldError("params", "must be an object");
  struct Range {
    const char* name;
    double lo, hi;
    bool integer;
  };
  const std::vector<Range> allowed =
      spec.method == "prune"
          ? std::vector<Range>{{"max_rounds", 1, 100000, true}}
          : std::vector<Range>{{"max_depth", 1, 16, true}, {"n_estimators", 1, 5000, true}, {"learning_rate", 0, 1, false}};
  for (auto it = spec.params.begin(); it != spec.params.end(); ++it) {
    const Range* r = nullptr;
    for (const Range& a : allowed) r = it.key() == a.name ? &a : r;
    if (r == nullptr) return FieldError("params." + it.key(), "is not a parameter of " + spec.method);
    const Json& v = it.value();
    const bool ok = r->integer ? v.is_number_integer() && v.get<double>() >= r->lo && v.get<double>() <= r->hi
                               : v.is_number() && v.get<double>() > r->lo && v.get<double>() <= r->hi;
    if (!ok) {
      return FieldError("params." + it.key(), std::string(r->integer ? "an integer" : "a number") + " in " +
                                                  Json(r->lo).dump() + ".." + Json(r->hi).dump());
    }
  }
  return Status::Ok();
}

Result<TrainOutput> CompressModel(std::string_view teacher_bundle, const std::string& secret_salt, const Table& data,
                                  const CompressSpec& spec) {
  try {
    ASSIGN_OR_RETURN(std::shared_ptr<Predictor> teacher, Predictor::Load(teacher_bundle, secret_salt));
    ASSIGN_OR_RETURN(ModelBundle bundle, DecodeModelBundle(teacher_bundle));
    const Json& meta = bundle.meta;
    if (meta.value("booster_format", "") != "ubj" || meta.value("learner", "") == "xgboost_linear") {
      return FieldError("method", "only tree models can be compressed; this one is " + meta.value("learner", std::string("?")));
    }
    RETURN_IF_ERROR(CheckCompressSpec(spec));
    const FeaturePipeline& pipe = teacher->pipeline();
    const Task task = pipe.task();
    TrainSpec pack;
    pack.target = pipe.target();
    if (meta.contains("preprocess")) pack.preprocess = meta["preprocess"];
    if (!spec.params.is_object()) return FieldError("params", "must be an object");
    auto int_param = [&](const char* name, int def, int lo, int hi) -> Result<int> {
      if (!spec.params.contains(name)) return def;
      const Json& v = spec.params[name];
      if (!v.is_number_integer() || v.get<int64_t>() < lo || v.get<int64_t>() > hi) {
        return FieldError(std::string("params.") + name, "must be an integer from " + std::to_string(lo) + " to " +
                                                             std::to_string(hi));
      }
      return v.get<int>();
    };
    if (spec.method == "prune") {
      if (meta.contains("linear")) return FieldError("method", "a blend with a linear part cannot be pruned");
      for (auto it = spec.params.begin(); it != spec.params.end(); ++it) {
        if (it.key() != "max_rounds") return FieldError("params." + it.key(), "prune takes max_rounds");
      }
      internal::Booster full;
      LATHE_XGB(XGBoosterCreate(nullptr, 0, full.out()), "creating the booster");
      LATHE_XGB(XGBoosterLoadModelFromBuffer(full.get(), bundle.booster.data(), bundle.booster.size()),
                "loading the teacher");
      int rounds = 0;
      LATHE_XGB(XGBoosterBoostedRounds(full.get(), &rounds), "counting rounds");
      ASSIGN_OR_RETURN(const int keep, int_param("max_rounds", std::max(1, rounds / 2), 1, 100000));
      if (keep >= rounds) {
        return FieldError("params.max_rounds", "the model has " + std::to_string(rounds) + " rounds; keep fewer");
      }
      internal::Booster sliced;
      if (XGBoosterSlice(full.get(), 0, keep, 1, sliced.out()) != 0) {
        return FieldError("method", std::string("XGBoost cannot slice this model: ") + XGBGetLastError());
      }
      ASSIGN_OR_RETURN(std::string ubj, SaveBoosterUbj(sliced.get()));
      Json params = meta.value("params", Json::object());
      params["n_estimators"] = keep;
      TrainOutput out = Package(pack, pipe, task, meta.value("learner", std::string("xgboost")), params, ubj);
      out.params = {{"method", "prune"}, {"max_rounds", keep}, {"rounds_before", rounds}};
      return out;
    }
    if (spec.method != "distill") return FieldError("method", "must be prune or distill");
    for (auto it = spec.params.begin(); it != spec.params.end(); ++it) {
      if (it.key() != "max_depth" && it.key() != "n_estimators" && it.key() != "learning_rate") {
        return FieldError("params." + it.key(), "distill takes max_depth, n_estimators and learning_rate");
      }
    }
    ASSIGN_OR_RETURN(const int depth, int_param("max_depth", 4, 1, 16));
    ASSIGN_OR_RETURN(const int rounds, int_param("n_estimators", 50, 1, 5000));
    double eta = 0.1;
    if (spec.params.contains("learning_rate")) {
      const Json& v = spec.params["learning_rate"];
      if (!v.is_number() || !(v.get<double>() > 0) || v.get<double>() > 1) {
        return FieldError("params.learning_rate", "must be > 0 and <= 1");
      }
      eta = v.get<double>();
    }
    if (data.num_rows <= 0) return FieldError("dataset", "has no rows to distill on");
    ASSIGN_OR_RETURN(std::vector<float> x, teacher->EncodeTable(data));
    const size_t n = static_cast<size_t>(data.num_rows), k = teacher->OutputWidth(), width = pipe.NumFeatures();
    std::vector<float> out(n * k);
    teacher->PredictRows(x.data(), n, out.data());
    std::vector<float> labels(n);
    for (size_t i = 0; i < n; ++i) {
      if (task == Task::kMulticlass) {
        labels[i] = static_cast<float>(std::max_element(&out[i * k], &out[i * k] + k) - &out[i * k]);
      } else {
        labels[i] = out[i * k];
      }
    }
    internal::DMatrix dm;
    LATHE_XGB(XGDMatrixCreateFromMat_omp(x.data(), n, width, std::numeric_limits<float>::quiet_NaN(), dm.out(),
                                         std::max(1, spec.nthread)),
              "building the data matrix");
    LATHE_XGB(XGDMatrixSetFloatInfo(dm.get(), "label", labels.data(), labels.size()), "setting labels");
    std::vector<const char*> types;
    for (const std::string& t : pipe.feature_types()) types.push_back(t.c_str());
    LATHE_XGB(XGDMatrixSetStrFeatureInfo(dm.get(), "feature_type", types.data(), types.size()), "feature types");
    internal::Booster student;
    DMatrixHandle mats[] = {dm.get()};
    LATHE_XGB(XGBoosterCreate(mats, 1, student.out()), "creating the student");
    auto set = [&](const char* k2, const std::string& v) -> Status {
      LATHE_XGB(XGBoosterSetParam(student.get(), k2, v.c_str()), std::string("setting ") + k2);
      return Status::Ok();
    };
    RETURN_IF_ERROR(set("verbosity", "0"));
    RETURN_IF_ERROR(set("tree_method", "hist"));
    RETURN_IF_ERROR(set("seed", "42"));
    RETURN_IF_ERROR(set("nthread", std::to_string(std::max(1, spec.nthread))));
    RETURN_IF_ERROR(set("max_depth", std::to_string(depth)));
    RETURN_IF_ERROR(set("eta", Json(eta).dump()));
    const std::string teacher_objective = [&] {
      auto forest = CompiledForest::FromXgboostModel(Json::from_ubjson(bundle.booster));
      return forest.ok() ? forest->objective() : std::string("reg:squarederror");
    }();
    switch (task) {
      case Task::kBinary:
        RETURN_IF_ERROR(set("objective", "binary:logistic"));  // fractional labels: the teacher's probabilities
        break;
      case Task::kMulticlass:
        RETURN_IF_ERROR(set("objective", "multi:softprob"));
        RETURN_IF_ERROR(set("num_class", std::to_string(k)));
        break;
      case Task::kRegression:
        RETURN_IF_ERROR(set("objective", teacher_objective == "count:poisson" || teacher_objective == "reg:tweedie"
                                             ? "reg:squarederror"
                                             : teacher_objective.rfind("reg:", 0) == 0 ? teacher_objective
                                                                                       : "reg:squarederror"));
        break;
      case Task::kRanking:  // the student regresses the teacher's scores, which keeps their order
        RETURN_IF_ERROR(set("objective", "reg:squarederror"));
        break;
      case Task::kClustering:  // unsupervised tasks train in ml/train_unsupervised.cc, never here
      case Task::kDecomposition:
      case Task::kAnomaly:
        break;
    }
    for (int r = 0; r < rounds; ++r) {
      LATHE_XGB(XGBoosterUpdateOneIter(student.get(), r, dm.get()), "boosting round " + std::to_string(r));
    }
    ASSIGN_OR_RETURN(std::string ubj, SaveBoosterUbj(student.get()));
    const Json params = {{"max_depth", depth}, {"n_estimators", rounds}, {"learning_rate", eta}};
    TrainOutput result = Package(pack, pipe, task, "xgboost", params, ubj);
    result.params = {{"method", "distill"}, {"max_depth", depth}, {"n_estimators", rounds},
                     {"learning_rate", eta}, {"rows", n}};
    result.train_rows = static_cast<int64_t>(n);
    return result;
  } catch (const std::bad_alloc&) {
    return Status::ResourceExhausted("out of memory while compressing");
  } catch (const std::exception& e) {
    return Status::Internal(std::string("compressing failed: ") + e.what());
  }
}

// ---- TrialEvaluator

struct TrialEvaluator::Data {
  explicit Data(const Table& t) : table(t) {}
  const Table& table;
  TrainSpec spec;
  Task task = Task::kBinary;
  FeaturePipeline pipe;
  std::vector<int64_t> kept;
  std::vector<float> y, weights;
  std::vector<Fold> folds;
  std::vector<std::vector<size_t>> eval_index;  // per fold, per test row: its index in evaluation order
  std::vector<float> eval_labels;
  std::string task_name;
};

namespace {
struct WorkspaceImpl : TrialEvaluator::Workspace {
  std::vector<std::unique_ptr<internal::DMatrix>> train, valid;  // per fold, built on first use
};
}  // namespace

TrialEvaluator::TrialEvaluator(std::unique_ptr<Data> d) : d_(std::move(d)) {}
TrialEvaluator::~TrialEvaluator() = default;

std::unique_ptr<TrialEvaluator::Workspace> TrialEvaluator::NewWorkspace() const {
  return std::make_unique<WorkspaceImpl>();
}

const std::string& TrialEvaluator::task_name() const { return d_->task_name; }
size_t TrialEvaluator::OutputWidth() const { return d_->task == Task::kMulticlass ? d_->pipe.NumClasses() : 1; }
const std::vector<float>& TrialEvaluator::EvalLabels() const { return d_->eval_labels; }
size_t TrialEvaluator::NumFeatures() const { return d_->pipe.NumFeatures(); }
int64_t TrialEvaluator::NumRows() const { return static_cast<int64_t>(d_->kept.size()); }

Result<std::unique_ptr<TrialEvaluator>> TrialEvaluator::Prepare(const Table& table, const TrainSpec& spec) {
  try {
    auto d = std::make_unique<Data>(table);
    d->spec = spec;
    ASSIGN_OR_RETURN(PreparedData prepared, PrepareData(table, spec));
    if (prepared.task == Task::kRanking) {
      return FieldError("task", "searches (tune, AutoML) do not cover ranking; train ranking models with "
                                "POST …/runs");
    }
    d->task = prepared.task;
    d->task_name = TaskName(d->task);
    d->pipe = std::move(prepared.pipe);
    d->kept = std::move(prepared.kept);
    d->y = std::move(prepared.y);
    d->weights = std::move(prepared.weights);
    Json info;
    ASSIGN_OR_RETURN(d->folds, PlanFolds(table, d->kept, d->y, d->task, spec.split, &info));
    // Evaluation order: every position for cross-validation (out-of-fold), the held-out rows otherwise.
    const bool cv = spec.split.IsCrossValidation();
    d->eval_index.resize(d->folds.size());
    if (cv) {
      for (size_t k = 0; k < d->folds.size(); ++k) {
        for (size_t p : d->folds[k].test) d->eval_index[k].push_back(p);
      }
      d->eval_labels = d->y;
    } else {
      for (size_t j = 0; j < d->folds[0].test.size(); ++j) {
        d->eval_index[0].push_back(j);
        d->eval_labels.push_back(d->y[d->folds[0].test[j]]);
      }
    }
    return std::unique_ptr<TrialEvaluator>(new TrialEvaluator(std::move(d)));
  } catch (const std::bad_alloc&) {
    return Status::ResourceExhausted("out of memory while preparing trials");
  } catch (const std::exception& e) {
    return Status::Internal(std::string("preparing trials failed: ") + e.what());
  }
}

Result<Json> TrialEvaluator::MetricsOfMargins(const std::vector<float>& margins, const std::string& objective) const {
  const size_t w = OutputWidth();
  if (margins.size() != d_->eval_labels.size() * w) return Status::InvalidArgument("margins: wrong size");
  const std::vector<float> pred = PredictionsOfMargins(d_->task, margins, w, objective);
  switch (d_->task) {
    case Task::kBinary:
      return BinaryMetrics(d_->eval_labels, pred, nullptr);
    case Task::kMulticlass:
      return MulticlassMetrics(d_->eval_labels, pred, static_cast<int>(w), nullptr);
    case Task::kRegression:
      return RegressionMetrics(d_->eval_labels, pred, nullptr);
    case Task::kRanking:  // TrialEvaluator does not take ranking
    case Task::kClustering:  // unsupervised tasks train in ml/train_unsupervised.cc, never here
    case Task::kDecomposition:
    case Task::kAnomaly:
      break;
  }
  return Status::Internal("unknown task");
}

Result<TrialResult> TrialEvaluator::Run(Workspace& workspace, const std::string& learner_name,
                                        const Json& params, const TrialControl& control) const {
  try {
    auto& ws = static_cast<WorkspaceImpl&>(workspace);
    const auto start = std::chrono::steady_clock::now();
    const Data& d = *d_;
    const LearnerInfo* learner = FindLearner(learner_name);
    if (learner == nullptr) return FieldError("learner", "unknown learner '" + learner_name + "'");
    if (std::find(learner->tasks.begin(), learner->tasks.end(), d.task) == learner->tasks.end()) {
      return FieldError("task", "learner " + learner->name + " does not support task " + d.task_name);
    }
    TrainSpec spec = d.spec;
    spec.learner = learner_name;
    Json raw = spec.params.is_object() ? spec.params : Json::object();
    if (params.is_object()) raw.update(params);
    spec.params = raw;
    ASSIGN_OR_RETURN(Json canonical, ValidateParams(*learner, raw, d.task));
    FitContext c{.table = d.table,
                 .pipe = d.pipe,
                 .kept = d.kept,
                 .y = d.y,
                 .weights = d.weights,
                 .task = d.task,
                 .learner = *learner,
                 .params = canonical,
                 .spec = spec};
    c.dart = learner->name == "xgboost_dart";
    c.gblinear = learner->name == "xgboost_linear";
    c.xgb_curve = c.dart || c.gblinear;
    const bool forest = learner->name == "random_forest";
    // Rounds of a boosted tree learner are chosen by validation loss (XGBoost cannot cut DART or the linear
    // booster at a round).
    const bool early = !c.dart && !forest && !c.gblinear;
    c.rounds = forest ? 1
               : control.max_rounds > 0 && early ? control.max_rounds
                                                 : canonical["n_estimators"].get<int>();
    for (const std::string& t : d.pipe.feature_types()) c.types.push_back(t.c_str());
    c.report = [](double, const std::string&) {};
    c.cancelled = [] { return false; };

    if (learner->name == "linear") {
      TrialResult result;
      result.params = canonical;
      const size_t w = OutputWidth();
      result.margins.assign(d.eval_labels.size() * w, 0.0f);
      for (size_t f = 0; f < d.folds.size(); ++f) {
        if (f > 0 && control.stop && control.stop()) return Status::DeadlineExceeded("the budget ran out");
        ASSIGN_OR_RETURN(LinearModel m, FitLinear(c, d.folds[f].train));
        ASSIGN_OR_RETURN(std::vector<float> margins, LinearMargins(c, m, d.folds[f].test));
        const auto& index = d.eval_index[f];
        for (size_t j = 0; j < index.size(); ++j) std::copy_n(&margins[j * w], w, &result.margins[index[j] * w]);
        if (f == 0) {
          std::vector<int64_t> rows;
          for (size_t j = 0; j < d.folds[0].test.size() && rows.size() < 200; ++j) rows.push_back(d.kept[d.folds[0].test[j]]);
          ASSIGN_OR_RETURN(std::vector<float> x, d.pipe.TransformRows(d.table, rows));
          std::vector<float> out(w);
          const auto t0 = std::chrono::steady_clock::now();
          for (size_t i = 0; i < rows.size(); ++i) m.Margin(&x[i * d.pipe.NumFeatures()], out.data());
          const double us = std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count();
          result.predict_us = rows.empty() ? 0 : us / static_cast<double>(rows.size());
        }
      }
      ASSIGN_OR_RETURN(result.metrics, MetricsOfMargins(result.margins, ""));
      result.loss = std::nan("");
      result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      return result;
    }
    const size_t k = d.folds.size();
    if (ws.train.size() != k) {
      ws.train.clear();
      ws.valid.clear();
      for (const Fold& f : d.folds) {
        const int nthread = ThreadsFor(spec, f.train.size());
        ASSIGN_OR_RETURN(auto tr, MakeMatrix(c, f.train, true, nthread));
        ASSIGN_OR_RETURN(auto va, MakeMatrix(c, f.test, true, nthread));
        ws.train.push_back(std::move(tr));
        ws.valid.push_back(std::move(va));
      }
    }
    std::vector<std::unique_ptr<internal::Booster>> boosters;
    for (size_t f = 0; f < k; ++f) {
      auto b = std::make_unique<internal::Booster>();
      DMatrixHandle dmats[] = {ws.train[f]->get(), ws.valid[f]->get()};
      LATHE_XGB(XGBoosterCreate(dmats, 2, b->out()), "creating the booster");
      RETURN_IF_ERROR(Configure(c, b->get(), d.folds[f].train.size()));
      boosters.push_back(std::move(b));
    }
    TrialResult result;
    double best = std::numeric_limits<double>::infinity();
    int best_round = 0, done = 0;
    const char* valid_name[] = {"valid"};
    for (int r = 0; r < c.rounds; ++r) {
      if (r > 0 && control.stop && control.stop()) {
        result.stopped = true;
        break;
      }
      double sum = 0;
      for (size_t f = 0; f < k; ++f) {
        LATHE_XGB(XGBoosterUpdateOneIter(boosters[f]->get(), r, ws.train[f]->get()),
                  "boosting round " + std::to_string(r));
        DMatrixHandle valid[] = {ws.valid[f]->get()};
        const char* line = nullptr;
        LATHE_XGB(XGBoosterEvalOneIter(boosters[f]->get(), r, valid, valid_name, 1, &line),
                  "evaluating round " + std::to_string(r));
        const std::vector<double> v = EvalValues(line);
        if (v.empty()) return Status::Internal(std::string("unexpected evaluation output: ") + line);
        sum += v[0];
      }
      done = r + 1;
      const double mean = sum / static_cast<double>(k);
      result.curve.push_back(mean);
      if (mean < best || !std::isfinite(best)) {
        best = mean;
        best_round = done;
      }
      if (early && control.early_stopping_rounds > 0 && done - best_round >= control.early_stopping_rounds) break;
      if (control.at_rung &&
          std::find(control.rungs.begin(), control.rungs.end(), done) != control.rungs.end() &&
          !control.at_rung(done, best)) {
        result.pruned = true;
        break;
      }
    }
    const int keep = early ? best_round : done;
    result.rounds = keep;
    result.loss = early ? best : (result.curve.empty() ? best : result.curve.back());
    result.params = canonical;
    // Params of another objective are noise in a trial list.
    const std::string objective = canonical.value("objective", std::string());
    if (objective != "huber") result.params.erase("huber_slope");
    if (objective != "tweedie") result.params.erase("tweedie_variance_power");
    if (!forest) result.params["n_estimators"] = keep;
    if (!result.pruned) {
      const size_t w = OutputWidth();
      result.margins.assign(d.eval_labels.size() * w, 0.0f);
      const std::string config = R"({"type":1,"training":false,"iteration_begin":0,"iteration_end":)" +
                                 std::to_string(early ? keep : 0) + R"(,"strict_shape":false})";
      for (size_t f = 0; f < k; ++f) {
        bst_ulong const* shape = nullptr;
        bst_ulong dim = 0;
        const float* out = nullptr;
        LATHE_XGB(XGBoosterPredictFromDMatrix(boosters[f]->get(), ws.valid[f]->get(), config.c_str(), &shape, &dim,
                                              &out),
                  "predicting the evaluation rows");
        size_t count = 1;
        for (bst_ulong i = 0; i < dim; ++i) count *= static_cast<size_t>(shape[i]);
        const auto& index = d.eval_index[f];
        if (count != index.size() * w) return Status::Internal("unexpected prediction shape");
        for (size_t j = 0; j < index.size(); ++j) std::copy_n(out + j * w, w, &result.margins[index[j] * w]);
      }
      ASSIGN_OR_RETURN(result.metrics,
                       MetricsOfMargins(result.margins, canonical.value("objective", std::string())));
      if (!c.dart && !c.gblinear) {
        // Serving latency of a model of this size: the compiled evaluator on single rows of fold 0's
        // evaluation rows (its first 200), the trees cut at the rounds kept.
        ASSIGN_OR_RETURN(std::string ubj, SaveBoosterUbj(boosters[0]->get()));
        ASSIGN_OR_RETURN(CompiledForest forest, CompiledForest::FromXgboostModel(Json::from_ubjson(ubj)));
        std::vector<int64_t> rows;
        for (size_t j = 0; j < d.folds[0].test.size() && rows.size() < 200; ++j) {
          rows.push_back(d.kept[d.folds[0].test[j]]);
        }
        ASSIGN_OR_RETURN(std::vector<float> x, d.pipe.TransformRows(d.table, rows));
        const size_t width = d.pipe.NumFeatures();
        std::vector<float> out(static_cast<size_t>(forest.num_groups()));
        const auto t0 = std::chrono::steady_clock::now();
        for (size_t i = 0; i < rows.size(); ++i) forest.Predict(&x[i * width], out.data());
        const double us = std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count();
        // The trees past `keep` rounds are not in the kept model: scale by the share kept.
        result.predict_us = rows.empty() ? 0 : us / static_cast<double>(rows.size()) * keep / std::max(1, done);
      }
    }
    result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    return result;
  } catch (const std::bad_alloc&) {
    return Status::ResourceExhausted("out of memory in a trial");
  } catch (const std::exception& e) {
    return Status::Internal(std::string("trial failed: ") + e.what());
  }
}

}  // namespace lathe::ml
