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

std::vector<LearnerInfo> BuildLearners() {
  LearnerInfo xgb;
  xgb.name = "xgboost";
  xgb.description = "Gradient-boosted decision trees (XGBoost, histogram method, native categorical splits)";
  xgb.tasks = {Task::kBinary, Task::kMulticlass, Task::kRegression};
  xgb.params = {
      Int("n_estimators", {"num_boost_round", "num_round"}, 1, 10000, 100, "", "number of boosting rounds"),
      Int("max_depth", {}, 1, 32, 6, "max_depth", "maximum tree depth"),
      Num("learning_rate", {"eta"}, 0, true, 1, 0.3, "eta", "shrinkage applied to each tree"),
      Num("subsample", {}, 0, true, 1, 1, "subsample", "row sampling ratio per tree"),
      Num("colsample_bytree", {}, 0, true, 1, 1, "colsample_bytree", "column sampling ratio per tree"),
      Num("colsample_bylevel", {}, 0, true, 1, 1, "colsample_bylevel", "column sampling ratio per level"),
      Num("colsample_bynode", {}, 0, true, 1, 1, "colsample_bynode", "column sampling ratio per split"),
      Num("min_child_weight", {}, 0, false, kBig, 1, "min_child_weight", "minimum hessian sum in a child"),
      Num("reg_lambda", {"lambda"}, 0, false, kBig, 1, "lambda", "L2 regularization on leaf weights"),
      Num("reg_alpha", {"alpha"}, 0, false, kBig, 0, "alpha", "L1 regularization on leaf weights"),
      Num("gamma", {"min_split_loss"}, 0, false, kBig, 0, "gamma", "minimum loss reduction to split"),
      Num("max_delta_step", {}, 0, false, kBig, 0, "max_delta_step", "maximum leaf weight step (0 = none)"),
      Int("max_bin", {}, 2, 4096, 256, "max_bin", "histogram bins per feature"),
      Int("max_leaves", {}, 0, 1 << 20, 0, "max_leaves", "maximum leaves per tree (0 = no limit)"),
      Int("max_cat_to_onehot", {}, 1, 1000, 4, "max_cat_to_onehot",
          "categorical features with fewer categories use one-vs-rest splits"),
  };
  ParamSpec spw = Num("scale_pos_weight", {}, 0, true, kBig, 1, "scale_pos_weight",
                      "weight of positive examples (binary only)");
  spw.tasks = {Task::kBinary};
  xgb.params.push_back(spw);
  ParamSpec grow;
  grow.name = "grow_policy";
  grow.type = ParamSpec::Type::kEnum;
  grow.choices = {"depthwise", "lossguide"};
  grow.default_value = "depthwise";
  grow.backend_name = "grow_policy";
  grow.description = "depthwise: split level by level; lossguide: split the best leaf first";
  xgb.params.push_back(grow);
  return {xgb};
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
      }
    }
  }
  for (const ParamSpec& p : learner.params) {
    if (out.contains(p.name)) continue;
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
