#include "ml/train.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <exception>
#include <limits>
#include <random>
#include <thread>

#include "ml/learner_registry.h"
#include "ml/metrics.h"
#include "ml/model_bundle.h"
#include "ml/pipeline.h"
#include "ml/xgb_handle.h"

namespace lathe::ml {
namespace {

constexpr int64_t kRowsPerThread = 20000;  // training threads are capped at train_rows / kRowsPerThread

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

Result<TrainOutput> TrainImpl(const Table& table, const TrainSpec& spec, const TrainProgressFn& progress,
                              const TrainCancelFn& cancel) {
  const auto start = std::chrono::steady_clock::now();
  auto report = [&](double fraction, const std::string& message) {
    if (progress) progress(fraction, message);
  };
  auto cancelled = [&]() { return cancel && cancel(); };

  ASSIGN_OR_RETURN(const Task task, ParseTask(spec.task, "task"));
  const LearnerInfo* learner = FindLearner(spec.learner);
  if (learner == nullptr) return FieldError("learner", "unknown learner '" + spec.learner + "'");
  if (std::find(learner->tasks.begin(), learner->tasks.end(), task) == learner->tasks.end()) {
    return FieldError("task", "learner " + learner->name + " does not support task " + spec.task);
  }
  if (!(spec.test_fraction > 0.0 && spec.test_fraction <= 0.9)) {
    return FieldError("test_fraction", "must be in (0, 0.9]");
  }
  if (spec.nthread < 0) return FieldError("nthread", "must be >= 0 (0 = all cores)");
  ASSIGN_OR_RETURN(Json params, ValidateParams(*learner, spec.params, task));
  if (spec.target.empty()) return FieldError("target", "is required");
  if (table.num_rows <= 0) return Status::InvalidArgument("the dataset has no rows");

  ASSIGN_OR_RETURN(FeaturePipeline pipe, FeaturePipeline::Fit(table, spec.target, task));
  std::vector<int64_t> kept;
  ASSIGN_OR_RETURN(std::vector<float> y, pipe.EncodeTarget(table, &kept));
  if (kept.empty()) return FieldError("target", "every row has a missing target value");
  const int64_t dropped_rows = table.num_rows - static_cast<int64_t>(kept.size());

  std::vector<size_t> train_pos, test_pos;
  SplitRows(y, task != Task::kRegression, spec.test_fraction, spec.seed, &train_pos, &test_pos);
  if (train_pos.empty() || test_pos.empty()) {
    return FieldError("target", "too few rows with a target (" + std::to_string(kept.size()) +
                                    ") to hold out a test split");
  }
  std::vector<int64_t> train_rows(train_pos.size()), test_rows(test_pos.size());
  std::vector<float> y_train(train_pos.size()), y_test(test_pos.size());
  for (size_t i = 0; i < train_pos.size(); ++i) {
    train_rows[i] = kept[train_pos[i]];
    y_train[i] = y[train_pos[i]];
  }
  for (size_t i = 0; i < test_pos.size(); ++i) {
    test_rows[i] = kept[test_pos[i]];
    y_test[i] = y[test_pos[i]];
  }
  if (task != Task::kRegression) {
    const float first = y_train[0];
    if (std::all_of(y_train.begin(), y_train.end(), [&](float v) { return v == first; })) {
      return FieldError("target", "the training split has only one class");
    }
  }
  const size_t width = pipe.NumFeatures();
  ASSIGN_OR_RETURN(std::vector<float> x_train, pipe.TransformRows(table, train_rows));
  ASSIGN_OR_RETURN(std::vector<float> x_test, pipe.TransformRows(table, test_rows));
  report(0.05, "encoded " + std::to_string(width) + " features");
  if (cancelled()) return Status::Cancelled("training cancelled");

  // Small training sets gain nothing from threads; OpenMP barriers then only spin (badly so on a busy host).
  int nthread = spec.nthread > 0 ? spec.nthread : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  nthread = static_cast<int>(
      std::min<int64_t>(nthread, std::max<int64_t>(1, static_cast<int64_t>(train_rows.size()) / kRowsPerThread)));

  const float kNaN = std::numeric_limits<float>::quiet_NaN();
  internal::DMatrix dtrain;
  LATHE_XGB(XGDMatrixCreateFromMat_omp(x_train.data(), train_rows.size(), width, kNaN, dtrain.out(), nthread),
            "building the training matrix");
  LATHE_XGB(XGDMatrixSetFloatInfo(dtrain.get(), "label", y_train.data(), y_train.size()), "setting labels");
  std::vector<const char*> types;
  for (const std::string& t : pipe.feature_types()) types.push_back(t.c_str());
  LATHE_XGB(XGDMatrixSetStrFeatureInfo(dtrain.get(), "feature_type", types.data(), types.size()),
            "setting feature types");
  x_train.clear();
  x_train.shrink_to_fit();

  internal::Booster booster;
  DMatrixHandle dmats[] = {dtrain.get()};
  LATHE_XGB(XGBoosterCreate(dmats, 1, booster.out()), "creating the booster");
  auto set = [&](const char* name, const std::string& value) -> Status {
    LATHE_XGB(XGBoosterSetParam(booster.get(), name, value.c_str()), std::string("setting ") + name);
    return Status::Ok();
  };
  RETURN_IF_ERROR(set("verbosity", "0"));
  RETURN_IF_ERROR(set("tree_method", "hist"));
  RETURN_IF_ERROR(set("seed", std::to_string(spec.seed)));
  RETURN_IF_ERROR(set("nthread", std::to_string(nthread)));
  switch (task) {
    case Task::kBinary: RETURN_IF_ERROR(set("objective", "binary:logistic")); break;
    case Task::kMulticlass:
      RETURN_IF_ERROR(set("objective", "multi:softprob"));
      RETURN_IF_ERROR(set("num_class", std::to_string(pipe.NumClasses())));
      break;
    case Task::kRegression: RETURN_IF_ERROR(set("objective", "reg:squarederror")); break;
  }
  for (const ParamSpec& p : learner->params) {
    if (p.backend_name.empty() || !params.contains(p.name)) continue;
    RETURN_IF_ERROR(set(p.backend_name.c_str(), ParamText(params[p.name])));
  }

  const int rounds = params["n_estimators"].get<int>();
  for (int i = 0; i < rounds; ++i) {
    if (cancelled()) return Status::Cancelled("training cancelled after " + std::to_string(i) + " rounds");
    LATHE_XGB(XGBoosterUpdateOneIter(booster.get(), i, dtrain.get()), "boosting round " + std::to_string(i));
    report(0.05 + 0.9 * (i + 1) / rounds, "round " + std::to_string(i + 1) + "/" + std::to_string(rounds));
  }

  // Held-out evaluation.
  internal::DMatrix dtest;
  LATHE_XGB(XGDMatrixCreateFromMat_omp(x_test.data(), test_rows.size(), width, kNaN, dtest.out(), nthread),
            "building the test matrix");
  LATHE_XGB(XGDMatrixSetStrFeatureInfo(dtest.get(), "feature_type", types.data(), types.size()),
            "setting feature types");
  bst_ulong const* shape = nullptr;
  bst_ulong dim = 0;
  const float* out = nullptr;
  LATHE_XGB(XGBoosterPredictFromDMatrix(
                booster.get(), dtest.get(),
                R"({"type":0,"training":false,"iteration_begin":0,"iteration_end":0,"strict_shape":false})",
                &shape, &dim, &out),
            "predicting the test split");
  size_t count = 1;
  for (bst_ulong d = 0; d < dim; ++d) count *= static_cast<size_t>(shape[d]);
  const size_t per_row = task == Task::kMulticlass ? pipe.NumClasses() : 1;
  if (count != test_rows.size() * per_row) return Status::Internal("unexpected prediction shape");
  std::vector<float> pred(out, out + count);
  Json metrics;
  switch (task) {
    case Task::kBinary: {
      ASSIGN_OR_RETURN(metrics, BinaryMetrics(y_test, pred));
      break;
    }
    case Task::kMulticlass: {
      ASSIGN_OR_RETURN(metrics, MulticlassMetrics(y_test, pred, static_cast<int>(pipe.NumClasses())));
      break;
    }
    case Task::kRegression: {
      ASSIGN_OR_RETURN(metrics, RegressionMetrics(y_test, pred));
      break;
    }
  }
  metrics["train_rows"] = train_rows.size();
  metrics["test_rows"] = test_rows.size();
  metrics["dropped_rows"] = dropped_rows;

  ASSIGN_OR_RETURN(std::string booster_bytes, SaveBoosterUbj(booster.get()));
  int major = 0, minor = 0, patch = 0;
  XGBoostVersion(&major, &minor, &patch);
  TrainOutput result;
  result.pipeline = pipe.ToJson();
  result.signature = pipe.Signature();
  Json meta = {{"learner", learner->name},
               {"task", TaskName(task)},
               {"params", params},
               {"pipeline", result.pipeline},
               {"booster_format", "ubj"},
               {"xgboost_version", {major, minor, patch}}};
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
  result.metrics = std::move(metrics);
  result.params = std::move(params);
  result.train_rows = static_cast<int64_t>(train_rows.size());
  result.test_rows = static_cast<int64_t>(test_rows.size());
  result.train_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  report(1.0, "done");
  return result;
}

}  // namespace

void SplitRows(const std::vector<float>& y, bool stratify, double test_fraction, uint64_t seed,
               std::vector<size_t>* train_pos, std::vector<size_t>* test_pos) {
  train_pos->clear();
  test_pos->clear();
  std::mt19937_64 rng(seed);
  auto shuffle = [&](std::vector<size_t>* v) {
    for (size_t i = v->size(); i > 1; --i) std::swap((*v)[i - 1], (*v)[static_cast<size_t>(rng() % i)]);
  };
  auto take = [&](std::vector<size_t>* group) {
    shuffle(group);
    const size_t n = group->size();
    auto n_test = static_cast<size_t>(std::llround(static_cast<double>(n) * test_fraction));
    if (n >= 2) n_test = std::clamp<size_t>(n_test, 1, n - 1);
    else n_test = 0;
    test_pos->insert(test_pos->end(), group->begin(), group->begin() + static_cast<std::ptrdiff_t>(n_test));
    train_pos->insert(train_pos->end(), group->begin() + static_cast<std::ptrdiff_t>(n_test), group->end());
  };
  if (stratify) {
    size_t classes = 0;
    for (float v : y) classes = std::max(classes, static_cast<size_t>(v) + 1);
    std::vector<std::vector<size_t>> groups(classes);
    for (size_t i = 0; i < y.size(); ++i) groups[static_cast<size_t>(y[i])].push_back(i);
    for (auto& g : groups) take(&g);
  } else {
    std::vector<size_t> all(y.size());
    for (size_t i = 0; i < all.size(); ++i) all[i] = i;
    take(&all);
  }
  std::sort(train_pos->begin(), train_pos->end());
  std::sort(test_pos->begin(), test_pos->end());
}

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

}  // namespace lathe::ml
