#include "ml/tune.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <limits>
#include <numeric>
#include <random>
#include <set>
#include <thread>

namespace lathe::ml {
namespace {

constexpr int kTpeCandidates = 24;
constexpr double kTpePriorWeight = 1.0;
constexpr size_t kMaxGridPoints = 100000;

Status SpaceError(const std::string& name, const std::string& message) {
  const std::string field = "space." + name;
  return Status::InvalidArgument(field + ": " + message).WithDetail(ErrorDetail::Field(field, message));
}

const ParamSpec* FindParam(const LearnerInfo& learner, const std::string& name) {
  for (const ParamSpec& p : learner.params) {
    if (p.name == name) return &p;
    for (const std::string& a : p.aliases) {
      if (a == name) return &p;
    }
  }
  return nullptr;
}

bool AppliesTo(const ParamSpec& p, Task task) {
  return p.tasks.empty() || std::find(p.tasks.begin(), p.tasks.end(), task) != p.tasks.end();
}

ParamDistribution IntDist(std::string name, double low, double high, bool log = false) {
  return {std::move(name), ParamDistribution::Kind::kInt, low, high, log, {}};
}
ParamDistribution FloatDist(std::string name, double low, double high, bool log = false) {
  return {std::move(name), ParamDistribution::Kind::kFloat, low, high, log, {}};
}

// ---- Parzen estimator (one parameter), in the sampler's internal space: log for log distributions,
// integers widened by half a step on each side.
struct Parzen {
  std::vector<double> mu, sigma, weight;  // numeric components (last = prior)
  std::vector<double> cat_weight;         // categorical: probability per choice
};

double NormalCdf(double z) { return 0.5 * std::erfc(-z / std::sqrt(2.0)); }

// Optuna's default_weights: flat for the 25 newest observations, a ramp for older ones.
std::vector<double> ObservationWeights(size_t n) {
  std::vector<double> w(n, 1.0);
  if (n >= 25) {
    const size_t ramp = n - 25;
    for (size_t i = 0; i < ramp; ++i) {
      w[i] = ramp == 1 ? 1.0 / static_cast<double>(n)
                       : 1.0 / static_cast<double>(n) +
                             (1.0 - 1.0 / static_cast<double>(n)) * static_cast<double>(i) /
                                 static_cast<double>(ramp - 1);
    }
  }
  return w;
}

struct Bounds {
  double low, high;
};

Bounds InternalBounds(const ParamDistribution& d) {
  double low = d.low, high = d.high;
  if (d.kind == ParamDistribution::Kind::kInt) {
    low -= 0.5;
    high += 0.5;
  }
  if (d.log) {
    low = std::log(std::max(low, 1e-300));
    high = std::log(high);
  }
  return {low, high};
}

double ToInternal(const ParamDistribution& d, double v) { return d.log ? std::log(v) : v; }

Json FromInternal(const ParamDistribution& d, double x) {
  double v = d.log ? std::exp(x) : x;
  if (d.kind == ParamDistribution::Kind::kInt) {
    v = std::clamp(std::round(v), d.low, d.high);
    return static_cast<int64_t>(v);
  }
  return std::clamp(v, d.low, d.high);
}

Parzen BuildParzen(const ParamDistribution& d, const std::vector<Json>& obs) {
  Parzen p;
  const std::vector<double> ow = ObservationWeights(obs.size());
  if (d.kind == ParamDistribution::Kind::kChoice) {
    const size_t k = d.choices.size();
    p.cat_weight.assign(k, kTpePriorWeight / static_cast<double>(k));
    for (size_t i = 0; i < obs.size(); ++i) {
      for (size_t c = 0; c < k; ++c) {
        if (d.choices[c] == obs[i]) p.cat_weight[c] += ow[i];
      }
    }
    const double total = std::accumulate(p.cat_weight.begin(), p.cat_weight.end(), 0.0);
    for (double& w : p.cat_weight) w /= total;
    return p;
  }
  const Bounds b = InternalBounds(d);
  std::vector<double> mus;
  for (const Json& o : obs) mus.push_back(ToInternal(d, o.get<double>()));
  const size_t n = mus.size();
  std::vector<size_t> order(n);
  std::iota(order.begin(), order.end(), size_t{0});
  std::sort(order.begin(), order.end(), [&](size_t a, size_t c) { return mus[a] < mus[c]; });
  std::vector<double> sorted(n + 2);
  sorted[0] = b.low;
  for (size_t i = 0; i < n; ++i) sorted[i + 1] = mus[order[i]];
  sorted[n + 1] = b.high;
  std::vector<double> sig(n);
  for (size_t i = 0; i < n; ++i) sig[order[i]] = std::max(sorted[i + 1] - sorted[i], sorted[i + 2] - sorted[i + 1]);
  if (n >= 2) {  // consider_endpoints = false: the outermost use their inner neighbour only
    sig[order[0]] = sorted[2] - sorted[1];
    sig[order[n - 1]] = sorted[n] - sorted[n - 1];
  }
  const double range = b.high - b.low;
  const double max_sigma = range;
  const double min_sigma = range / std::min(100.0, 1.0 + static_cast<double>(n + 1));
  for (size_t i = 0; i < n; ++i) {
    p.mu.push_back(mus[i]);
    p.sigma.push_back(std::clamp(sig[i], min_sigma, max_sigma));
    p.weight.push_back(ow[i]);
  }
  p.mu.push_back(0.5 * (b.low + b.high));
  p.sigma.push_back(max_sigma);
  p.weight.push_back(kTpePriorWeight);
  const double total = std::accumulate(p.weight.begin(), p.weight.end(), 0.0);
  for (double& w : p.weight) w /= total;
  return p;
}

double SampleParzen(const ParamDistribution& d, const Parzen& p, std::mt19937_64& rng) {
  std::uniform_real_distribution<double> u(0.0, 1.0);
  if (d.kind == ParamDistribution::Kind::kChoice) {
    std::discrete_distribution<size_t> pick(p.cat_weight.begin(), p.cat_weight.end());
    return static_cast<double>(pick(rng));
  }
  const Bounds b = InternalBounds(d);
  std::discrete_distribution<size_t> pick(p.weight.begin(), p.weight.end());
  const size_t i = pick(rng);
  std::normal_distribution<double> normal(p.mu[i], p.sigma[i]);
  for (int attempt = 0; attempt < 100; ++attempt) {
    const double x = normal(rng);
    if (x >= b.low && x <= b.high) return x;
  }
  return std::clamp(p.mu[i], b.low, b.high);
}

double LogDensity(const ParamDistribution& d, const Parzen& p, double x) {
  if (d.kind == ParamDistribution::Kind::kChoice) return std::log(p.cat_weight[static_cast<size_t>(x)]);
  const Bounds b = InternalBounds(d);
  double top = -std::numeric_limits<double>::infinity();
  std::vector<double> terms(p.mu.size());
  for (size_t i = 0; i < p.mu.size(); ++i) {
    const double s = p.sigma[i];
    const double z = (x - p.mu[i]) / s;
    const double mass = NormalCdf((b.high - p.mu[i]) / s) - NormalCdf((b.low - p.mu[i]) / s);
    terms[i] = std::log(p.weight[i]) - 0.5 * z * z - std::log(s * std::sqrt(2 * M_PI)) - std::log(std::max(mass, 1e-300));
    top = std::max(top, terms[i]);
  }
  double sum = 0;
  for (double t : terms) sum += std::exp(t - top);
  return top + std::log(sum);
}

Json SampleUniform(const ParamDistribution& d, std::mt19937_64& rng) {
  if (d.kind == ParamDistribution::Kind::kChoice) {
    std::uniform_int_distribution<size_t> pick(0, d.choices.size() - 1);
    return d.choices[pick(rng)];
  }
  const Bounds b = InternalBounds(d);
  std::uniform_real_distribution<double> u(b.low, b.high);
  return FromInternal(d, u(rng));
}

// Grid points: the values of each parameter (choices, or every integer of a small int range).
Result<std::vector<std::vector<Json>>> GridValues(const SearchSpace& space) {
  std::vector<std::vector<Json>> values;
  size_t total = 1;
  for (const ParamDistribution& d : space.params) {
    std::vector<Json> v;
    if (d.kind == ParamDistribution::Kind::kChoice) {
      v = d.choices;
    } else if (d.kind == ParamDistribution::Kind::kInt && d.high - d.low < 1000) {
      for (double x = d.low; x <= d.high; x += 1) v.push_back(static_cast<int64_t>(x));
    } else {
      return SpaceError(d.name, "grid search needs a list of values (or a small integer range)");
    }
    total *= v.size();
    if (total > kMaxGridPoints) {
      return SpaceError(d.name, "the grid has more than " + std::to_string(kMaxGridPoints) + " points");
    }
    values.push_back(std::move(v));
  }
  return values;
}

}  // namespace

// ---- Spaces

Json SearchSpace::ToJson() const {
  Json out = Json::object();
  for (const ParamDistribution& d : params) {
    switch (d.kind) {
      case ParamDistribution::Kind::kChoice:
        out[d.name] = d.choices;
        break;
      case ParamDistribution::Kind::kInt:
        out[d.name] = {{"type", "int"}, {"low", static_cast<int64_t>(d.low)}, {"high", static_cast<int64_t>(d.high)}};
        if (d.log) out[d.name]["log"] = true;
        break;
      case ParamDistribution::Kind::kFloat:
        out[d.name] = {{"type", "float"}, {"low", d.low}, {"high", d.high}};
        if (d.log) out[d.name]["log"] = true;
        break;
    }
  }
  return out;
}

Result<SearchSpace> ParseSearchSpace(const Json& j, const LearnerInfo& learner, Task task) {
  if (!j.is_object()) {
    return Status::InvalidArgument("space must be a JSON object")
        .WithDetail(ErrorDetail::Field("space", std::string("expected an object, got ") + j.type_name()));
  }
  SearchSpace space;
  std::set<std::string> seen;
  for (auto it = j.begin(); it != j.end(); ++it) {
    const ParamSpec* spec = FindParam(learner, it.key());
    if (spec == nullptr) return SpaceError(it.key(), "unknown parameter for learner " + learner.name);
    if (!AppliesTo(*spec, task)) return SpaceError(it.key(), "does not apply to task " + std::string(TaskName(task)));
    if (spec->type == ParamSpec::Type::kColumn) return SpaceError(it.key(), "a column is not searched; set it in params");
    if (!seen.insert(spec->name).second) return SpaceError(it.key(), "given twice");
    ParamDistribution d;
    d.name = spec->name;
    const Json& v = it.value();
    if (v.is_array()) {
      if (v.empty()) return SpaceError(it.key(), "the list of values is empty");
      if (v.size() > 1000) return SpaceError(it.key(), "more than 1000 values");
      d.kind = ParamDistribution::Kind::kChoice;
      for (const Json& c : v) {
        // Each value must be valid for the param: checked through the learner's own validation.
        auto ok = ValidateParams(learner, Json{{spec->name, c}}, task);
        if (!ok.ok()) return SpaceError(it.key(), "value " + c.dump() + ": " + ok.status().details()[0].message);
        d.choices.push_back((*ok)[spec->name]);
      }
      space.params.push_back(std::move(d));
      continue;
    }
    if (!v.is_object()) return SpaceError(it.key(), "expected a list of values or {\"type\",\"low\",\"high\"}");
    const std::string type = v.value("type", spec->type == ParamSpec::Type::kInteger ? "int" : "float");
    if (type != "int" && type != "float") return SpaceError(it.key(), "type must be int or float");
    if (spec->type == ParamSpec::Type::kEnum) return SpaceError(it.key(), "a string parameter takes a list of values");
    if (type == "float" && spec->type == ParamSpec::Type::kInteger) {
      return SpaceError(it.key(), "is an integer parameter: type must be int");
    }
    for (auto f = v.begin(); f != v.end(); ++f) {
      if (f.key() != "type" && f.key() != "low" && f.key() != "high" && f.key() != "log") {
        return SpaceError(it.key(), "unknown field '" + f.key() + "' (type, low, high, log)");
      }
    }
    if (!v.contains("low") || !v["low"].is_number() || !v.contains("high") || !v["high"].is_number()) {
      return SpaceError(it.key(), "low and high must be numbers");
    }
    d.kind = type == "int" ? ParamDistribution::Kind::kInt : ParamDistribution::Kind::kFloat;
    d.low = v["low"].get<double>();
    d.high = v["high"].get<double>();
    if (v.contains("log")) {
      if (!v["log"].is_boolean()) return SpaceError(it.key(), "log must be true or false");
      d.log = v["log"].get<bool>();
    }
    if (!std::isfinite(d.low) || !std::isfinite(d.high) || !(d.low < d.high)) {
      return SpaceError(it.key(), "needs finite low < high");
    }
    if (d.kind == ParamDistribution::Kind::kInt && (d.low != std::floor(d.low) || d.high != std::floor(d.high))) {
      return SpaceError(it.key(), "int bounds must be integers");
    }
    if (d.log && !(d.low > 0)) return SpaceError(it.key(), "a log range needs low > 0");
    for (double bound : {d.low, d.high}) {
      auto ok = ValidateParams(learner, Json{{spec->name, d.kind == ParamDistribution::Kind::kInt
                                                              ? Json(static_cast<int64_t>(bound))
                                                              : Json(bound)}},
                               task);
      if (!ok.ok()) return SpaceError(it.key(), ok.status().details()[0].message);
    }
    space.params.push_back(std::move(d));
  }
  return space;
}

SearchSpace DefaultSearchSpace(const LearnerInfo& learner, Task /*task*/) {
  SearchSpace s;
  if (learner.name == "linear") {
    s.params = {FloatDist("alpha", 1e-4, 1e4, true)};
    return s;
  }
  if (learner.name == "random_forest") {
    s.params = {IntDist("n_estimators", 50, 400, true), IntDist("max_depth", 4, 16),
                FloatDist("colsample_bynode", 0.3, 1.0), FloatDist("subsample", 0.5, 1.0),
                FloatDist("min_child_weight", 0.1, 10, true)};
    return s;
  }
  s.params = {IntDist("max_depth", 2, 10),
              FloatDist("learning_rate", 0.01, 0.3, true),
              FloatDist("min_child_weight", 0.1, 20, true),
              FloatDist("subsample", 0.5, 1.0),
              FloatDist("colsample_bytree", 0.4, 1.0),
              FloatDist("reg_lambda", 1e-3, 10, true),
              FloatDist("reg_alpha", 1e-3, 10, true)};
  if (learner.name == "xgboost_dart") {
    s.params.push_back(FloatDist("rate_drop", 0.0, 0.3));
    s.params.push_back(FloatDist("skip_drop", 0.0, 0.7));
  }
  return s;
}

Result<size_t> GridSize(const SearchSpace& space) {
  ASSIGN_OR_RETURN(auto values, GridValues(space));
  size_t total = 1;
  for (const auto& v : values) total *= v.size();
  return total;
}

Result<SamplerKind> ParseSampler(const std::string& name) {
  if (name == "grid") return SamplerKind::kGrid;
  if (name == "random") return SamplerKind::kRandom;
  if (name == "tpe") return SamplerKind::kTpe;
  return Status::InvalidArgument("sampler must be grid, random or tpe, not '" + name + "'")
      .WithDetail(ErrorDetail::Field("sampler", "must be grid, random or tpe"));
}

const char* SamplerName(SamplerKind k) {
  switch (k) {
    case SamplerKind::kGrid: return "grid";
    case SamplerKind::kRandom: return "random";
    case SamplerKind::kTpe: return "tpe";
  }
  return "tpe";
}

Result<bool> MetricMaximized(const std::string& metric, Task task, const std::string& field) {
  static const std::set<std::string> kClassUp = {"accuracy", "balanced_accuracy", "roc_auc", "pr_auc"};
  static const std::set<std::string> kBinaryUp = {"precision", "recall", "f1"};
  static const std::set<std::string> kMultiUp = {"macro_precision", "macro_recall", "macro_f1",
                                                 "micro_precision", "micro_recall", "micro_f1",
                                                 "weighted_precision", "weighted_recall", "weighted_f1"};
  static const std::set<std::string> kRegressionDown = {"rmse", "mae", "mape"};
  switch (task) {
    case Task::kBinary:
    case Task::kMulticlass:
      if (kClassUp.count(metric) || (task == Task::kBinary ? kBinaryUp : kMultiUp).count(metric)) return true;
      if (metric == "log_loss") return false;
      break;
    case Task::kRegression:
      if (metric == "r2") return true;
      if (kRegressionDown.count(metric)) return false;
      break;
    case Task::kRanking:
      if (metric == "ndcg" || metric == "ndcg_at_5" || metric == "ndcg_at_10" || metric == "map") return true;
      break;
    case Task::kClustering:
      if (metric == "silhouette") return true;
      if (metric == "davies_bouldin" || metric == "inertia") return false;
      break;
    case Task::kDecomposition:
    case Task::kAnomaly:
      break;
  }
  return Status::InvalidArgument("unknown metric '" + metric + "' for task " + TaskName(task))
      .WithDetail(ErrorDetail::Field(field, "not a metric of task " + std::string(TaskName(task))));
}

const char* DefaultMetric(Task task) {
  switch (task) {
    case Task::kBinary: return "roc_auc";
    case Task::kMulticlass: return "log_loss";
    case Task::kRegression: return "rmse";
    case Task::kRanking: return "ndcg_at_10";
    case Task::kClustering: return "silhouette";
    case Task::kDecomposition:  // no metric to compare models by
    case Task::kAnomaly:
      break;
  }
  return "rmse";
}

Json TrialRecord::ToJson() const {
  Json j = {{"number", number}, {"learner", learner}, {"params", params}, {"state", state},
            {"metrics", metrics}, {"rounds", rounds}, {"seconds", seconds}};
  if (predict_us > 0) j["predict_us"] = predict_us;
  j["score"] = std::isfinite(score) ? Json(score) : Json(nullptr);
  j["loss"] = std::isfinite(loss) ? Json(loss) : Json(nullptr);
  if (stopped) j["stopped_by_budget"] = true;
  if (!error.empty()) j["error"] = error;
  return j;
}

// ---- Study

Study::Study(const TrialEvaluator& eval, StudyOptions options, TrialCallback cb)
    : eval_(eval), options_(std::move(options)), on_trial_(std::move(cb)) {}

Result<std::unique_ptr<Study>> Study::Create(const TrialEvaluator& eval, const StudyOptions& options,
                                             TrialCallback on_trial) {
  std::unique_ptr<Study> s(new Study(eval, options, std::move(on_trial)));
  ASSIGN_OR_RETURN(const Task task, ParseTask(eval.task_name()));
  s->metric_ = options.metric.empty() ? DefaultMetric(task) : options.metric;
  ASSIGN_OR_RETURN(s->maximize_, MetricMaximized(s->metric_, task));
  if (options.max_rounds < 1 || options.max_rounds > 10000) {
    return Status::InvalidArgument("max_rounds must be 1..10000").WithDetail(ErrorDetail::Field("max_rounds", "1..10000"));
  }
  if (options.asha_reduction < 2) {
    return Status::InvalidArgument("asha reduction must be >= 2").WithDetail(ErrorDetail::Field("asha", ">= 2"));
  }
  return s;
}

bool Study::Better(double a, double b) const {
  if (std::isnan(a)) return false;
  if (std::isnan(b)) return true;
  return maximize_ ? a > b : a < b;
}

int Study::BestOf(const std::string& learner) const {
  int best = -1;
  for (size_t i = 0; i < trials_.size(); ++i) {
    const TrialRecord& t = trials_[i];
    if (t.state != "complete" || (!learner.empty() && t.learner != learner)) continue;
    if (best < 0 || Better(t.score, trials_[static_cast<size_t>(best)].score)) best = static_cast<int>(i);
  }
  return best;
}

int Study::best() const { return BestOf(""); }

Result<int> Study::Optimize(const std::string& learner_name, const SearchSpace& space, SamplerKind sampler,
                            int max_trials, Clock::time_point deadline, const Json& fixed,
                            const std::function<bool()>& cancel) {
  const LearnerInfo* learner = FindLearner(learner_name);
  if (learner == nullptr) {
    return Status::InvalidArgument("unknown learner '" + learner_name + "'")
        .WithDetail(ErrorDetail::Field("learner", "unknown learner"));
  }
  if (max_trials <= 0) return 0;
  // Grid: the whole grid in a seeded shuffled order (so a cut-short search still spreads over the grid).
  std::vector<Json> grid;
  if (sampler == SamplerKind::kGrid) {
    ASSIGN_OR_RETURN(auto values, GridValues(space));
    size_t total = 1;
    for (const auto& v : values) total *= v.size();
    for (size_t g = 0; g < total; ++g) {
      Json point = Json::object();
      size_t rest = g;
      for (size_t p = 0; p < values.size(); ++p) {
        point[space.params[p].name] = values[p][rest % values[p].size()];
        rest /= values[p].size();
      }
      grid.push_back(std::move(point));
    }
    std::mt19937_64 rng(options_.seed);
    std::shuffle(grid.begin(), grid.end(), rng);
    max_trials = std::min<int>(max_trials, static_cast<int>(grid.size()));
  }
  std::vector<int> rungs;
  if (options_.asha) {
    for (int64_t r = options_.asha_min_rounds; r < options_.max_rounds; r *= options_.asha_reduction) {
      rungs.push_back(static_cast<int>(r));
    }
  }
  int parallel = options_.parallel;
  const int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  if (parallel <= 0) parallel = eval_.NumRows() < 40000 ? cores : 1;
  parallel = std::max(1, std::min(parallel, max_trials));
  while (static_cast<int>(workspaces_.size()) < parallel) workspaces_.push_back(eval_.NewWorkspace());

  int started = 0, finished = 0;
  const int first_number = static_cast<int>(trials_.size());
  Status failure = Status::Ok();
  const uint64_t base_seed = options_.seed;
  auto over = [&] { return Clock::now() >= deadline || (cancel && cancel()); };

  // The next trial's params, under mu_.
  auto next_params = [&](int index, int number) -> Json {
    std::mt19937_64 rng(base_seed * 1000003 + static_cast<uint64_t>(number));
    Json p = fixed.is_object() ? fixed : Json::object();
    if (sampler == SamplerKind::kGrid) {
      p.update(grid[static_cast<size_t>(index)]);
      return p;
    }
    // This learner's finished trials: complete ones ranked by score, pruned ones after them.
    std::vector<const TrialRecord*> done;
    for (const TrialRecord& t : trials_) {
      if (t.learner == learner_name && (t.state == "complete" || t.state == "pruned")) done.push_back(&t);
    }
    const bool tpe = sampler == SamplerKind::kTpe && static_cast<int>(done.size()) >= options_.startup_trials;
    if (!tpe) {
      for (const ParamDistribution& d : space.params) p[d.name] = SampleUniform(d, rng);
      return p;
    }
    std::vector<const TrialRecord*> ranked = done;
    std::stable_sort(ranked.begin(), ranked.end(), [&](const TrialRecord* a, const TrialRecord* b) {
      const bool ca = a->state == "complete", cb = b->state == "complete";
      if (ca != cb) return ca;
      return ca && Better(a->score, b->score);
    });
    size_t complete = 0;
    for (const TrialRecord* t : ranked) complete += t->state == "complete" ? 1 : 0;
    const size_t n_below = std::min<size_t>(
        complete, std::min<size_t>(25, static_cast<size_t>(std::ceil(0.1 * static_cast<double>(ranked.size())))));
    std::vector<const TrialRecord*> below(ranked.begin(), ranked.begin() + static_cast<std::ptrdiff_t>(n_below));
    std::vector<const TrialRecord*> above(ranked.begin() + static_cast<std::ptrdiff_t>(n_below), ranked.end());
    // Oldest first, as the observation weights expect.
    auto by_number = [](const TrialRecord* a, const TrialRecord* b) { return a->number < b->number; };
    std::sort(below.begin(), below.end(), by_number);
    std::sort(above.begin(), above.end(), by_number);
    for (const ParamDistribution& d : space.params) {
      auto values = [&](const std::vector<const TrialRecord*>& set) {
        std::vector<Json> v;
        for (const TrialRecord* t : set) {
          if (t->params.contains(d.name)) v.push_back(t->params[d.name]);
        }
        return v;
      };
      const Parzen l = BuildParzen(d, values(below));
      const Parzen g = BuildParzen(d, values(above));
      double best_x = 0, best_gain = -std::numeric_limits<double>::infinity();
      for (int c = 0; c < kTpeCandidates; ++c) {
        const double x = SampleParzen(d, l, rng);
        const double gain = LogDensity(d, l, x) - LogDensity(d, g, x);
        if (gain > best_gain) {
          best_gain = gain;
          best_x = x;
        }
      }
      p[d.name] = d.kind == ParamDistribution::Kind::kChoice ? d.choices[static_cast<size_t>(best_x)]
                                                             : FromInternal(d, best_x);
    }
    return p;
  };

  auto at_rung = [&](int round, double loss) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = std::find_if(rungs_.begin(), rungs_.end(), [&](const auto& e) { return e.first == learner_name; });
    if (it == rungs_.end()) {
      rungs_.push_back({learner_name, {}});
      it = rungs_.end() - 1;
    }
    auto rung = std::find_if(it->second.begin(), it->second.end(), [&](const auto& e) { return e.first == round; });
    if (rung == it->second.end()) {
      it->second.push_back({round, {}});
      rung = it->second.end() - 1;
    }
    std::vector<double>& losses = rung->second;
    losses.push_back(loss);
    std::vector<double> sorted = losses;
    std::sort(sorted.begin(), sorted.end());
    int64_t idx = static_cast<int64_t>(sorted.size()) / options_.asha_reduction - 1;
    if (idx < 0) idx = 0;
    return loss <= sorted[static_cast<size_t>(idx)];
  };

  auto worker = [&](TrialEvaluator::Workspace* ws) {
    for (;;) {
      Json params;
      int number = 0;
      {
        std::lock_guard<std::mutex> lock(mu_);
        if (started >= max_trials || !failure.ok() || over()) return;
        number = first_number + started;
        params = next_params(started, number);
        ++started;
      }
      TrialControl control;
      control.max_rounds = options_.max_rounds;
      control.early_stopping_rounds = options_.early_stopping_rounds;
      control.rungs = rungs;
      if (options_.asha) control.at_rung = at_rung;
      control.stop = over;
      auto result = eval_.Run(*ws, learner_name, params, control);
      std::lock_guard<std::mutex> lock(mu_);
      ++finished;
      TrialRecord rec;
      rec.number = number;
      rec.learner = learner_name;
      if (!result.ok()) {
        const Status& st = result.status();
        if (st.code() == StatusCode::kInvalidArgument || st.code() == StatusCode::kResourceExhausted) {
          failure = st;  // the same params would fail again: a bad request, not a bad trial
          return;
        }
        rec.params = params;
        rec.state = "failed";
        rec.error = st.message();
      } else {
        rec.params = result->params;
        rec.state = result->pruned ? "pruned" : "complete";
        rec.metrics = result->metrics;
        rec.rounds = result->rounds;
        rec.loss = result->loss;
        rec.seconds = result->seconds;
        rec.predict_us = result->predict_us;
        rec.stopped = result->stopped;
        rec.margins = std::move(result->margins);
        if (!result->pruned) {
          const Json m = rec.metrics.value(metric_, Json(nullptr));
          rec.score = m.is_number() ? m.get<double>() : std::nan("");
        }
      }
      // Kept in trial-number order (parallel trials finish out of order).
      auto at = std::upper_bound(trials_.begin(), trials_.end(), number,
                                 [](int n, const TrialRecord& t) { return n < t.number; });
      at = trials_.insert(at, std::move(rec));
      if (on_trial_) on_trial_(*at);
    }
  };
  std::vector<std::thread> threads;
  for (int i = 1; i < parallel; ++i) threads.emplace_back(worker, workspaces_[static_cast<size_t>(i)].get());
  worker(workspaces_[0].get());
  for (auto& t : threads) t.join();
  RETURN_IF_ERROR(failure);
  return finished;
}

}  // namespace lathe::ml
