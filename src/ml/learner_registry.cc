#include "ml/learner_registry.h"

#include <cmath>
#include <limits>
#include <set>

namespace lathe::ml {
namespace {

constexpr double kBig = 1e9;

ParamSpec Int(std::string name, std::vector<std::string> aliases, double min, double max, int64_t def,
              std::string backend, std::string desc) {
  ParamSpec p;
  p.name = std::move(name);
  p.aliases = std::move(aliases);
  p.type = ParamSpec::Type::kInteger;
  p.min = min;
  p.max = max;
  p.default_value = def;
  p.backend_name = std::move(backend);
  p.description = std::move(desc);
  return p;
}

ParamSpec Num(std::string name, std::vector<std::string> aliases, double min, bool min_exclusive, double max,
              double def, std::string backend, std::string desc) {
  ParamSpec p;
  p.name = std::move(name);
  p.aliases = std::move(aliases);
  p.type = ParamSpec::Type::kNumber;
  p.min = min;
  p.min_exclusive = min_exclusive;
  p.max = max;
  p.default_value = def;
  p.backend_name = std::move(backend);
  p.description = std::move(desc);
  return p;
}

ParamSpec Enum(std::string name, std::vector<std::string> choices, std::string def, std::string backend,
               std::string desc) {
  ParamSpec p;
  p.name = std::move(name);
  p.type = ParamSpec::Type::kEnum;
  p.choices = std::move(choices);
  p.default_value = std::move(def);
  p.backend_name = std::move(backend);
  p.description = std::move(desc);
  return p;
}

ParamSpec ForTasks(ParamSpec p, std::vector<Task> tasks) {
  p.tasks = std::move(tasks);
  return p;
}

// Parameters every tree learner of XGBoost shares (gbtree, dart and random-forest mode); `rf` changes the
// defaults the way XGBoost's own random-forest estimators do (sampled rows and columns, almost no L2).
std::vector<ParamSpec> TreeParams(bool rf) {
  std::vector<ParamSpec> p = {
      Int("max_depth", {}, 1, 32, rf ? 8 : 6, "max_depth", "maximum tree depth"),
      Num("subsample", {}, 0, true, 1, rf ? 0.8 : 1, "subsample", "row sampling ratio per tree"),
      Num("colsample_bytree", {}, 0, true, 1, 1, "colsample_bytree", "column sampling ratio per tree"),
      Num("colsample_bylevel", {}, 0, true, 1, 1, "colsample_bylevel", "column sampling ratio per level"),
      Num("colsample_bynode", {}, 0, true, 1, rf ? 0.8 : 1, "colsample_bynode", "column sampling ratio per split"),
      Num("min_child_weight", {}, 0, false, kBig, 1, "min_child_weight", "minimum hessian sum in a child"),
      Num("reg_lambda", {"lambda"}, 0, false, kBig, rf ? 1e-5 : 1, "lambda", "L2 regularization on leaf weights"),
      Num("reg_alpha", {"alpha"}, 0, false, kBig, 0, "alpha", "L1 regularization on leaf weights"),
      Num("gamma", {"min_split_loss"}, 0, false, kBig, 0, "gamma", "minimum loss reduction to split"),
      Num("max_delta_step", {}, 0, false, kBig, 0, "max_delta_step", "maximum leaf weight step (0 = none)"),
      Int("max_bin", {}, 2, 4096, 256, "max_bin", "histogram bins per feature"),
      Int("max_leaves", {}, 0, 1 << 20, 0, "max_leaves", "maximum leaves per tree (0 = no limit)"),
      Int("max_cat_to_onehot", {}, 1, 1000, 4, "max_cat_to_onehot",
          "categorical features with fewer categories use one-vs-rest splits"),
      Enum("grow_policy", {"depthwise", "lossguide"}, "depthwise", "grow_policy",
           "depthwise: split level by level; lossguide: split the best leaf first"),
  };
  return p;
}

// Parameters of the objective and of weighting, shared by every XGBoost learner. They are not passed to
// XGBoost by name (backend ""): ml/train.cc maps them.
std::vector<ParamSpec> ObjectiveParams() {
  std::vector<ParamSpec> p;
  p.push_back(ForTasks(Enum("objective", {"squared_error", "absolute_error", "huber", "poisson", "tweedie"},
                            "squared_error", "",
                            "regression loss: squared_error, absolute_error (median), huber (robust to "
                            "outliers), poisson (counts, target >= 0), tweedie (zero-inflated amounts, target >= 0)"),
                       {Task::kRegression}));
  p.push_back(ForTasks(Num("huber_slope", {}, 0, true, kBig, 1, "huber_slope",
                           "huber: the error size beyond which the loss grows linearly"),
                       {Task::kRegression}));
  p.push_back(ForTasks(Num("tweedie_variance_power", {}, 1, true, 1.999, 1.5, "tweedie_variance_power",
                           "tweedie: variance power in (1, 2); near 1 is Poisson-like, near 2 gamma-like"),
                       {Task::kRegression}));
  p.push_back(ForTasks(Num("scale_pos_weight", {}, 0, true, kBig, 1, "scale_pos_weight",
                           "weight of positive examples (binary only)"),
                       {Task::kBinary}));
  p.push_back(ForTasks(Enum("class_weight", {"none", "balanced"}, "none", "",
                            "balanced: weight each row by n_rows / (n_classes * rows of its class), so every "
                            "class counts equally"),
                       {Task::kBinary, Task::kMulticlass}));
  ParamSpec wc;
  wc.name = "weight_column";
  wc.type = ParamSpec::Type::kColumn;
  wc.default_value = nullptr;
  wc.description = "a numeric column of non-negative row weights (not used as a feature)";
  wc.tasks = {Task::kBinary, Task::kMulticlass, Task::kRegression};
  p.push_back(wc);
  return p;
}

// Learning to rank (XGBoost's rank: objectives): rows are grouped into queries by a column.
std::vector<ParamSpec> RankingParams() {
  std::vector<ParamSpec> p;
  ParamSpec qc;
  qc.name = "query_column";
  qc.aliases = {"group_column", "qid"};
  qc.type = ParamSpec::Type::kColumn;
  qc.default_value = nullptr;
  qc.description = "ranking (required): the column whose value identifies a row's query; rows of one query are "
                   "ranked against each other and never split between training and evaluation";
  qc.tasks = {Task::kRanking};
  p.push_back(qc);
  p.push_back(ForTasks(Enum("rank_objective", {"ndcg", "pairwise", "map"}, "ndcg", "",
                            "ranking loss: ndcg (LambdaMART on NDCG), pairwise (RankNet pairs), map (LambdaMART on "
                            "mean average precision)"),
                       {Task::kRanking}));
  return p;
}

std::vector<LearnerInfo> BuildLearners() {
  const std::vector<Task> all = {Task::kBinary, Task::kMulticlass, Task::kRegression};
  auto append = [](std::vector<ParamSpec>* to, std::vector<ParamSpec> from) {
    for (auto& p : from) to->push_back(std::move(p));
  };
  LearnerInfo xgb;
  xgb.name = "xgboost";
  xgb.description = "Gradient-boosted decision trees (XGBoost, histogram method, native categorical splits)";
  xgb.tasks = all;
  xgb.params = {
      Int("n_estimators", {"num_boost_round", "num_round"}, 1, 10000, 100, "", "number of boosting rounds"),
      Num("learning_rate", {"eta"}, 0, true, 1, 0.3, "eta", "shrinkage applied to each tree"),
  };
  append(&xgb.params, TreeParams(false));
  append(&xgb.params, ObjectiveParams());
  append(&xgb.params, RankingParams());
  xgb.tasks.push_back(Task::kRanking);

  LearnerInfo dart = xgb;
  dart.name = "xgboost_dart";
  dart.description = "Boosted trees with dropout (XGBoost DART): each round drops a share of the earlier trees, "
                     "which curbs over-specialisation of late trees; slower to train and to serve";
  append(&dart.params,
         {Num("rate_drop", {}, 0, false, 1, 0.1, "rate_drop", "share of trees dropped per round"),
          Num("skip_drop", {}, 0, false, 1, 0, "skip_drop", "probability of skipping the dropout in a round"),
          Enum("sample_type", {"uniform", "weighted"}, "uniform", "sample_type",
               "uniform: every tree equally likely to be dropped; weighted: in proportion to its weight"),
          Enum("normalize_type", {"tree", "forest"}, "tree", "normalize_type",
               "how new trees are weighted against the dropped ones"),
          Int("one_drop", {}, 0, 1, 0, "one_drop", "1: always drop at least one tree")});

  LearnerInfo rf;
  rf.name = "random_forest";
  rf.description = "Random forest (XGBoost random-forest mode): n_estimators trees grown in parallel on sampled "
                   "rows and columns and averaged";
  rf.tasks = all;
  rf.params = {Int("n_estimators", {"num_parallel_tree"}, 1, 5000, 100, "num_parallel_tree", "number of trees")};
  append(&rf.params, TreeParams(true));
  append(&rf.params, ObjectiveParams());
  LearnerInfo linear;
  linear.name = "linear";
  linear.description = "Regularized linear models (Eigen): ridge regression, L2 logistic regression (binary and "
                       "multinomial), on standardized numbers with missing indicators and one-hot categories";
  linear.tasks = all;
  linear.params = {
      Num("alpha", {"l2"}, 0, false, kBig, 1.0, "", "L2 penalty strength (sklearn's alpha; C = 1 / alpha)"),
      Int("max_iter", {}, 1, 1000, 50, "", "Newton iterations at most (classification)"),
  };
  for (ParamSpec& p : ObjectiveParams()) {
    if (p.name == "class_weight" || p.name == "weight_column") linear.params.push_back(std::move(p));
  }
  LearnerInfo xlin;
  xlin.name = "xgboost_linear";
  xlin.description = "XGBoost's linear booster (gblinear): a generalized linear model fitted by coordinate "
                     "descent with L1/L2 penalties on the features as they are (no scaling; category codes as "
                     "numbers; a missing value adds nothing) — the linear learner scales and one-hot encodes";
  xlin.tasks = all;
  xlin.params = {
      Int("n_estimators", {"num_boost_round", "num_round"}, 1, 10000, 100, "", "coordinate descent rounds"),
      Num("learning_rate", {"eta"}, 0, true, 1, 0.5, "eta", "step size of each round"),
      Num("reg_lambda", {"lambda"}, 0, false, kBig, 0, "lambda", "L2 penalty on the weights"),
      Num("reg_alpha", {"alpha"}, 0, false, kBig, 0, "alpha", "L1 penalty on the weights"),
      Enum("feature_selector", {"cyclic", "shuffle", "random", "greedy", "thrifty"}, "cyclic", "feature_selector",
           "order in which coordinates are updated"),
      Int("top_k", {}, 0, 1000000, 0, "top_k", "greedy/thrifty: features considered per round (0 = all)"),
  };
  append(&xlin.params, ObjectiveParams());
  // Unsupervised learners (ml/unsupervised.h): fit on the design terms of ml/design.h; the seed is split.seed.
  LearnerInfo kmeans;
  kmeans.name = "kmeans";
  kmeans.description = "k-means clustering (k-means++ starts, Lloyd iterations) on standardized numbers and "
                       "one-hot categories; k chosen by silhouette when n_clusters is 0";
  kmeans.tasks = {Task::kClustering};
  kmeans.params = {
      Int("n_clusters", {"k"}, 0, 1000, 0, "", "clusters; 0 = choose k in [min_clusters, max_clusters] by silhouette"),
      Int("min_clusters", {}, 2, 1000, 2, "", "smallest k tried when n_clusters is 0"),
      Int("max_clusters", {}, 2, 1000, 10, "", "largest k tried when n_clusters is 0"),
      Int("n_init", {}, 1, 50, 4, "", "restarts from different k-means++ seeds; the lowest inertia wins"),
      Int("max_iter", {}, 1, 10000, 100, "", "Lloyd iterations per restart at most"),
      Num("tol", {}, 0, false, 1, 1e-4, "", "stop when centroids move less than this (relative to the data's variance)"),
  };
  LearnerInfo pca;
  pca.name = "pca";
  pca.description = "Principal component analysis: projections on the leading components of the standardized "
                    "data, and each row's reconstruction error";
  pca.tasks = {Task::kDecomposition};
  pca.params = {
      Int("n_components", {}, 0, 1000, 0, "", "components kept; 0 = the fewest explaining variance_target"),
      Num("variance_target", {}, 0, true, 1, 0.95, "", "share of the variance to explain when n_components is 0"),
  };
  LearnerInfo iforest;
  iforest.name = "isolation_forest";
  iforest.description = "Isolation forest anomaly detection (Liu, Ting & Zhou 2008): scores in (0, 1], higher is "
                        "more unusual; contamination sets the anomaly threshold";
  iforest.tasks = {Task::kAnomaly};
  iforest.params = {
      Int("n_estimators", {"n_trees"}, 1, 1000, 100, "", "isolation trees"),
      Int("max_samples", {"sample_size"}, 2, 10000, 256, "", "rows drawn (without replacement) per tree"),
      Num("contamination", {}, 0, true, 0.5, 0.1, "", "expected share of anomalies: rows scoring above the "
                                                      "training scores' (1 - contamination) quantile are anomalies"),
  };
  return {xgb, dart, rf, linear, xlin, kmeans, pca, iforest};
}

std::string FormatNumber(double v) {
  Json j = v;
  return j.dump();
}

Status ParamError(const std::string& name, const std::string& message) {
  const std::string field = "params." + name;
  return Status::InvalidArgument(field + ": " + message).WithDetail(ErrorDetail::Field(field, message));
}

}  // namespace

const std::vector<LearnerInfo>& Learners() {
  static const std::vector<LearnerInfo> kLearners = BuildLearners();
  return kLearners;
}

const LearnerInfo* FindLearner(std::string_view name) {
  for (const LearnerInfo& l : Learners()) {
    if (l.name == name) return &l;
  }
  return nullptr;
}

Json LearnerSchemaJson() {
  Json learners = Json::array();
  for (const LearnerInfo& l : Learners()) {
    Json tasks = Json::array();
    for (Task t : l.tasks) tasks.push_back(TaskName(t));
    Json params = Json::array();
    for (const ParamSpec& p : l.params) {
      Json j = {{"name", p.name}, {"default", p.default_value}, {"description", p.description}};
      switch (p.type) {
        case ParamSpec::Type::kInteger:
          j["type"] = "integer";
          j["min"] = static_cast<int64_t>(p.min);
          j["max"] = static_cast<int64_t>(p.max);
          break;
        case ParamSpec::Type::kNumber:
          j["type"] = "number";
          j[p.min_exclusive ? "exclusive_min" : "min"] = p.min;
          j["max"] = p.max;
          break;
        case ParamSpec::Type::kEnum:
          j["type"] = "string";
          j["enum"] = p.choices;
          break;
        case ParamSpec::Type::kColumn:
          j["type"] = "column";
          break;
      }
      if (!p.aliases.empty()) j["aliases"] = p.aliases;
      if (!p.tasks.empty()) {
        Json pt = Json::array();
        for (Task t : p.tasks) pt.push_back(TaskName(t));
        j["tasks"] = pt;
      }
      params.push_back(std::move(j));
    }
    learners.push_back({{"name", l.name}, {"description", l.description}, {"tasks", tasks}, {"params", params}});
  }
  return {{"learners", learners}};
}

Result<Json> ValidateParams(const LearnerInfo& learner, const Json& params, Task task) {
  if (!params.is_null() && !params.is_object()) {
    return Status::InvalidArgument("params must be a JSON object").WithDetail(
        ErrorDetail::Field("params", std::string("expected an object, got ") + params.type_name()));
  }
  Json out = Json::object();
  std::set<std::string> given;
  if (params.is_object()) {
    for (auto it = params.begin(); it != params.end(); ++it) {
      const std::string& key = it.key();
      const ParamSpec* spec = nullptr;
      for (const ParamSpec& p : learner.params) {
        if (p.name == key) spec = &p;
        for (const std::string& a : p.aliases) {
          if (a == key) spec = &p;
        }
      }
      if (spec == nullptr) {
        return ParamError(key, "unknown parameter for learner " + learner.name);
      }
      if (!spec->tasks.empty()) {
        bool ok = false;
        for (Task t : spec->tasks) ok = ok || t == task;
        if (!ok) return ParamError(key, "does not apply to task " + std::string(TaskName(task)));
      }
      if (!given.insert(spec->name).second) {
        return ParamError(key, "given twice (as '" + spec->name + "' and an alias)");
      }
      const Json& v = it.value();
      switch (spec->type) {
        case ParamSpec::Type::kInteger: {
          if (!v.is_number()) return ParamError(key, std::string("expected an integer, got ") + v.type_name());
          const double d = v.get<double>();
          if (!std::isfinite(d) || d != std::floor(d)) return ParamError(key, "expected an integer, got " + v.dump());
          if (d < spec->min || d > spec->max) {
            return ParamError(key, "must be between " + FormatNumber(spec->min) + " and " + FormatNumber(spec->max) +
                                       ", got " + v.dump());
          }
          out[spec->name] = static_cast<int64_t>(d);
          break;
        }
        case ParamSpec::Type::kNumber: {
          if (!v.is_number()) return ParamError(key, std::string("expected a number, got ") + v.type_name());
          const double d = v.get<double>();
          const bool low = spec->min_exclusive ? !(d > spec->min) : !(d >= spec->min);
          if (!std::isfinite(d) || low || d > spec->max) {
            return ParamError(key, std::string("must be ") + (spec->min_exclusive ? "> " : ">= ") +
                                       FormatNumber(spec->min) + " and <= " + FormatNumber(spec->max) + ", got " +
                                       v.dump());
          }
          out[spec->name] = d;
          break;
        }
        case ParamSpec::Type::kEnum: {
          if (!v.is_string()) return ParamError(key, std::string("expected a string, got ") + v.type_name());
          bool ok = false;
          for (const std::string& c : spec->choices) ok = ok || c == v.get<std::string>();
          if (!ok) {
            std::string list;
            for (const std::string& c : spec->choices) list += (list.empty() ? "" : ", ") + c;
            return ParamError(key, "must be one of " + list + ", got " + v.dump());
          }
          out[spec->name] = v;
          break;
        }
        case ParamSpec::Type::kColumn: {
          if (v.is_null()) break;
          if (!v.is_string() || v.get<std::string>().empty()) {
            return ParamError(key, std::string("expected a column name, got ") + v.dump());
          }
          out[spec->name] = v;
          break;
        }
      }
    }
  }
  for (const ParamSpec& p : learner.params) {
    if (out.contains(p.name) || p.default_value.is_null()) continue;  // unset optional columns stay absent
    if (!p.tasks.empty()) {
      bool ok = false;
      for (Task t : p.tasks) ok = ok || t == task;
      if (!ok) continue;
    }
    out[p.name] = p.default_value;
  }
  return out;
}

}  // namespace lathe::ml
