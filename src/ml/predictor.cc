#include "ml/predictor.h"

#include <optional>

#include "ml/design.h"
#include "ml/unsupervised.h"

#include <cmath>


#include <cstdio>
#include <exception>
#include <limits>

#include "ml/model_bundle.h"
#include "ml/xgb_handle.h"

namespace lathe::ml {
namespace {

Status InstancesError(const std::string& field, const std::string& message) {
  return Status::InvalidArgument(field + ": " + message).WithDetail(ErrorDetail::Field(field, message));
}

Result<std::shared_ptr<Predictor>> Fail(Status s) { return s; }

double JsonNumber(const Json& v) {  // XGBoost writes some model params as strings
  return v.is_string() ? std::stod(v.get<std::string>()) : v.get<double>();
}

// XGBoost's linear booster as a LinearModel (ml/linear_model.h) over the raw features: one term per feature
// with mean 0 and scale 1, so a missing value adds nothing (as in XGBoost), the coefficients its weights and
// the intercept its bias plus the base margin. *objective gets the objective's name.
Result<Json> GblinearAsLinearModel(const Json& model, std::string* objective) {
  const Json& learner = model.at("learner");
  *objective = learner.at("objective").at("name").get<std::string>();
  const Json& lmp = learner.at("learner_model_param");
  const auto width = static_cast<size_t>(JsonNumber(lmp.at("num_feature")));
  const auto k = static_cast<size_t>(std::max(1.0, JsonNumber(lmp.at("num_class"))));
  const auto base_score = static_cast<float>(JsonNumber(lmp.at("base_score")));
  float base = base_score;  // the objective's ProbToMargin, as CompiledForest computes it
  if (*objective == "binary:logistic" || *objective == "reg:logistic") {
    base = -std::log(1.0f / base_score - 1.0f);
  } else if (*objective == "count:poisson" || *objective == "reg:tweedie") {
    base = std::log(base_score);
  }
  const Json& weights = learner.at("gradient_booster").at("model").at("weights");
  if (!weights.is_array() || width == 0 || weights.size() != (width + 1) * k) {
    return Status::InvalidArgument("model bundle: linear booster weights do not match its features");
  }
  Json terms = Json::array(), coef = Json::array(), intercept = Json::array();
  for (size_t f = 0; f < width; ++f) terms.push_back({f, 0, 0.0, 0.0, 1.0, 0.0, 1.0});
  for (size_t g = 0; g < k; ++g) {
    for (size_t f = 0; f < width; ++f) coef.push_back(weights[f * k + g].get<double>());
    intercept.push_back(weights[width * k + g].get<double>() + static_cast<double>(base));
  }
  return Json{{"width", width}, {"outputs", k}, {"terms", terms}, {"coef", coef}, {"intercept", intercept}};
}

}  // namespace

struct Predictor::Unsupervised {
  ml::Task task = ml::Task::kClustering;
  std::vector<DesignTerm> terms;
  std::optional<KMeansModel> kmeans;
  std::optional<PcaModel> pca;
  std::optional<IsolationForest> iforest;

  size_t Width() const { return task == ml::Task::kDecomposition ? static_cast<size_t>(pca->n_components()) + 1 : 2; }
  // `design` and `scratch` are the caller's buffers, reused across rows.
  void Predict(const float* row, float* out, std::vector<double>& design, std::vector<double>& scratch) const {
    design.resize(terms.size());
    for (size_t t = 0; t < terms.size(); ++t) design[t] = DesignValue(terms[t], row);
    if (kmeans) {
      double distance = 0;
      out[0] = static_cast<float>(kmeans->Assign(design.data(), &distance));
      out[1] = static_cast<float>(distance);
    } else if (pca) {
      scratch.resize(static_cast<size_t>(pca->n_components()));
      pca->Transform(design.data(), scratch.data());
      for (size_t i = 0; i < scratch.size(); ++i) out[i] = static_cast<float>(scratch[i]);
      out[scratch.size()] = static_cast<float>(pca->ReconstructionError(design.data()));
    } else {
      const double score = iforest->Score(design.data());
      out[0] = static_cast<float>(score);
      out[1] = score > iforest->threshold() ? 1.0f : 0.0f;
    }
  }
  static Result<std::shared_ptr<const Unsupervised>> Load(const std::string& learner, ml::Task task,
                                                          std::string_view bytes, size_t width) {
    Json j;
    try {
      j = Json::parse(bytes);
    } catch (const std::exception& e) {
      return Status::InvalidArgument(std::string("model bundle: model is not valid JSON: ") + e.what());
    }
    if (!j.is_object() || !j.contains("terms") || !j.contains("model")) {
      return Status::InvalidArgument("model bundle: unsupervised model lacks its terms or model");
    }
    auto u = std::make_shared<Unsupervised>();
    u->task = task;
    ASSIGN_OR_RETURN(u->terms, ParseDesignTerms(j["terms"], width, 100000, "model bundle"));
    size_t dim = 0;
    if (learner == "kmeans" && task == ml::Task::kClustering) {
      ASSIGN_OR_RETURN(auto m, KMeansModel::FromJson(j["model"]));
      dim = m.dim();
      u->kmeans = std::move(m);
    } else if (learner == "pca" && task == ml::Task::kDecomposition) {
      ASSIGN_OR_RETURN(auto m, PcaModel::FromJson(j["model"]));
      dim = m.dim();
      u->pca = std::move(m);
    } else if (learner == "isolation_forest" && task == ml::Task::kAnomaly) {
      ASSIGN_OR_RETURN(auto m, IsolationForest::FromJson(j["model"]));
      dim = m.dim();
      u->iforest = std::move(m);
    } else {
      return Status::InvalidArgument("model bundle: learner " + learner + " does not fit task " + TaskName(task));
    }
    if (dim != u->terms.size()) return Status::InvalidArgument("model bundle: model and terms differ in width");
    return std::shared_ptr<const Unsupervised>(std::move(u));
  }
};

Predictor::~Predictor() {
  if (booster_ != nullptr) XGBoosterFree(booster_);
}

Result<std::shared_ptr<Predictor>> Predictor::Load(std::string_view model_bundle, const std::string& secret_salt) {
  try {
    ASSIGN_OR_RETURN(ModelBundle bundle, DecodeModelBundle(model_bundle));
    std::shared_ptr<Predictor> p(new Predictor());
    p->meta_ = std::move(bundle.meta);
    const Json learner = p->meta_.value("learner", Json());
    if (learner != "xgboost" && learner != "xgboost_dart" && learner != "random_forest" && learner != "ensemble" &&
        learner != "linear" && learner != "xgboost_linear" && learner != "kmeans" && learner != "pca" &&
        learner != "isolation_forest") {
      return Status::InvalidArgument("model bundle: unsupported learner");
    }
    const Json format = p->meta_.value("booster_format", Json());
    if (format != "ubj" && format != "linear" && format != "unsupervised") {
      return Status::InvalidArgument("model bundle: unsupported booster format");
    }
    if (!p->meta_.contains("pipeline")) return Status::InvalidArgument("model bundle: no pipeline");
    ASSIGN_OR_RETURN(p->pipeline_, FeaturePipeline::FromJson(p->meta_["pipeline"]));
    if (p->meta_.contains("preprocess")) {
      ASSIGN_OR_RETURN(p->preprocess_, Preprocess::Parse(p->meta_["preprocess"]));
    }
    p->secret_salt_ = secret_salt;
    if (p->meta_["task"] != TaskName(p->pipeline_.task())) {
      return Status::InvalidArgument("model bundle: task and pipeline disagree");
    }
    auto load_linear = [&](const Json& j) -> Status {
      ASSIGN_OR_RETURN(LinearModel m, LinearModel::FromJson(j, p->pipeline_.NumFeatures()));
      if (static_cast<size_t>(m.outputs()) != p->OutputWidth()) {
        return Status::InvalidArgument("model bundle: the linear model's outputs do not fit the task");
      }
      p->linear_ = std::make_shared<LinearModel>(std::move(m));
      return Status::Ok();
    };
    if (format == "unsupervised" || !IsSupervised(p->pipeline_.task())) {
      if (format != "unsupervised" || IsSupervised(p->pipeline_.task())) {
        return Status::InvalidArgument("model bundle: booster format and task disagree");
      }
      ASSIGN_OR_RETURN(p->unsupervised_, Unsupervised::Load(learner.get<std::string>(), p->pipeline_.task(),
                                                            bundle.booster, p->pipeline_.NumFeatures()));
      p->has_trees_ = false;
      p->booster_bytes_ = bundle.booster.size();
      return p;
    }
    if (format == "linear") {
      Json j;
      try {
        j = Json::parse(bundle.booster);
      } catch (const std::exception& e) {
        return Status::InvalidArgument(std::string("model bundle: linear model is not valid JSON: ") + e.what());
      }
      RETURN_IF_ERROR(load_linear(j));
      p->has_trees_ = false;
      p->booster_bytes_ = bundle.booster.size();
      return p;
    }
    if (p->meta_.contains("linear")) RETURN_IF_ERROR(load_linear(p->meta_["linear"]));
    // Our own parse of the booster first: it is fully validated, so XGBoost only ever sees a sane model.
    Json model;
    try {
      model = Json::from_ubjson(bundle.booster);
    } catch (const std::exception& e) {
      return Status::InvalidArgument(std::string("model bundle: booster is not valid UBJSON: ") + e.what());
    }
    // DART scales each tree by its dropout weight at prediction: its trees are validated (compiled) here, but
    // predictions come from XGBoost.
    const Json* gb = nullptr;
    if (model.is_object() && model.contains("learner") && model["learner"].is_object() &&
        model["learner"].contains("gradient_booster")) {
      gb = &model["learner"]["gradient_booster"];
    }
    std::string obj;
    size_t n_features = 0, groups = 1;
    const bool gblinear = gb != nullptr && gb->is_object() && gb->value("name", Json()) == "gblinear";
    if (gblinear) {  // XGBoost's linear booster: served as a linear model
      if (p->linear_) return Status::InvalidArgument("model bundle: a linear booster with a linear part");
      ASSIGN_OR_RETURN(Json linear, GblinearAsLinearModel(model, &obj));
      n_features = linear["width"].get<size_t>();
      groups = linear["outputs"].get<size_t>();
      if (n_features != p->pipeline_.NumFeatures()) {
        return Status::InvalidArgument("model bundle: booster and pipeline disagree on the feature count");
      }
      RETURN_IF_ERROR(load_linear(linear));
      p->has_trees_ = false;
      p->gblinear_ = true;
      p->exp_link_ = obj == "count:poisson" || obj == "reg:tweedie";
    } else if (gb != nullptr && gb->is_object() && gb->value("name", Json()) == "dart") {
      if (!gb->contains("gbtree") || !gb->contains("weight_drop") || !(*gb)["weight_drop"].is_array()) {
        return Status::InvalidArgument("model bundle: DART booster lacks its trees or weights");
      }
      Json inner = model;
      inner["learner"]["gradient_booster"] = (*gb)["gbtree"];
      ASSIGN_OR_RETURN(p->forest_, CompiledForest::FromXgboostModel(inner));
      if ((*gb)["weight_drop"].size() != p->forest_.num_trees()) {
        return Status::InvalidArgument("model bundle: DART weights and trees differ in number");
      }
      for (const Json& w : (*gb)["weight_drop"]) {
        if (!w.is_number()) return Status::InvalidArgument("model bundle: a DART weight is not a number");
        p->tree_weights_.push_back(w.get<float>());
      }
      p->compiled_ = false;
    } else {
      ASSIGN_OR_RETURN(p->forest_, CompiledForest::FromXgboostModel(model));
    }
    if (!gblinear) {
      n_features = static_cast<size_t>(p->forest_.num_features());
      groups = static_cast<size_t>(p->forest_.num_groups());
      obj = p->forest_.objective();
    }
    if (n_features != p->pipeline_.NumFeatures()) {
      return Status::InvalidArgument("model bundle: booster and pipeline disagree on the feature count");
    }
    const ml::Task task = p->pipeline_.task();
    const bool consistent = (task == ml::Task::kBinary && obj == "binary:logistic") ||
                            (task == ml::Task::kMulticlass && obj == "multi:softprob" &&
                             groups == p->pipeline_.NumClasses()) ||
                            (task == ml::Task::kRegression && groups == 1 &&
                             ((obj.rfind("reg:", 0) == 0 && obj != "reg:logistic") || obj == "count:poisson")) ||
                            // ranking: a rank: objective, or a distilled student regressing the scores
                            (task == ml::Task::kRanking && groups == 1 &&
                             (obj.rfind("rank:", 0) == 0 || obj == "reg:squarederror"));
    if (!consistent) return Status::InvalidArgument("model bundle: objective '" + obj + "' does not fit the task");

    BoosterHandle h = nullptr;
    if (XGBoosterCreate(nullptr, 0, &h) != 0) return Fail(internal::XgbError("creating the booster"));
    p->booster_ = h;
    p->booster_bytes_ = bundle.booster.size();
    if (XGBoosterLoadModelFromBuffer(h, bundle.booster.data(), bundle.booster.size()) != 0) {
      return Status::InvalidArgument(std::string("model bundle: XGBoost rejected the booster: ") + XGBGetLastError());
    }
    LATHE_XGB(XGBoosterSetParam(h, "nthread", "1"), "setting nthread");
    LATHE_XGB(XGBoosterSetParam(h, "verbosity", "0"), "setting verbosity");
    return p;
  } catch (const std::bad_alloc&) {
    return Status::ResourceExhausted("out of memory loading the model");
  } catch (const std::exception& e) {
    return Status::InvalidArgument(std::string("model bundle: ") + e.what());
  }
}

std::string Predictor::Task() const { return TaskName(pipeline_.task()); }
Json Predictor::Signature() const {
  Json sig = pipeline_.Signature();
  // A model trained on a recipe's output takes the raw columns the recipe started from.
  if (!preprocess_.empty()) {
    Json inputs = Json::array();
    for (const auto& in : preprocess_.Signature()) {
      if (in.value("name", std::string()) != pipeline_.target()) inputs.push_back(in);
    }
    sig["inputs"] = inputs;
    sig["preprocessed"] = true;
  }
  return sig;
}

size_t Predictor::OutputWidth() const {
  if (unsupervised_) return unsupervised_->Width();
  return pipeline_.task() == ml::Task::kMulticlass ? pipeline_.NumClasses() : 1;
}

Status Predictor::EncodeInstances(const Json& instances, std::vector<float>* rows,
                                  const FeaturePipeline::InputPolicy& policy) const {
  if (!instances.is_array()) {
    return InstancesError("instances", std::string("expected a JSON array of objects, got ") + instances.type_name());
  }
  if (instances.empty()) return InstancesError("instances", "is empty; send at least one instance");
  if (instances.size() > kMaxInstances) {
    return Status(StatusCode::kPayloadTooLarge, "instances: " + std::to_string(instances.size()) +
                                                    " rows exceed the limit of " + std::to_string(kMaxInstances) +
                                                    " (max_predict_rows)")
        .WithDetail(ErrorDetail::Field("instances", "too many rows"));
  }
  if (!preprocess_.empty()) {
    ASSIGN_OR_RETURN(Table raw, preprocess_.Apply(instances, pipeline_.target(), secret_salt_));
    ASSIGN_OR_RETURN(*rows, pipeline_.TransformTable(raw));
    return Status::Ok();
  }
  const size_t width = NumFeatures();
  rows->assign(instances.size() * width, 0.0f);
  std::string prefix;
  for (size_t i = 0; i < instances.size(); ++i) {
    prefix = "instances[";
    prefix += std::to_string(i);
    prefix += ']';
    RETURN_IF_ERROR(pipeline_.EncodeInstanceInto(instances[i], rows->data() + i * width, prefix, policy));
  }
  return Status::Ok();
}

void Predictor::PredictRows(const float* rows, size_t n, float* out, bool margin) const {
  if (unsupervised_) {
    const size_t width = NumFeatures(), k = OutputWidth();
    std::vector<double> design, scratch;
    for (size_t i = 0; i < n; ++i) unsupervised_->Predict(rows + i * width, out + i * k, design, scratch);
    return;
  }
  if (!linear_) {
    TreeRows(rows, n, out, margin);
    return;
  }
  const size_t width = NumFeatures(), k = OutputWidth();
  if (has_trees_) {
    TreeRows(rows, n, out, /*margin=*/true);
  } else {
    std::fill(out, out + n * k, 0.0f);
  }
  std::vector<float> lin(k);
  for (size_t i = 0; i < n; ++i) {
    float* o = out + i * k;
    linear_->Margin(rows + i * width, lin.data());
    for (size_t g = 0; g < k; ++g) o[g] += lin[g];
    if (margin) continue;
    if (has_trees_) {
      forest_.ApplyTransform(o);
    } else if (exp_link_) {
      o[0] = std::exp(o[0]);
    } else if (pipeline_.task() == ml::Task::kBinary) {
      o[0] = 1.0f / (1.0f + std::exp(-o[0]));
    } else if (pipeline_.task() == ml::Task::kMulticlass) {
      float top = o[0];
      for (size_t g = 1; g < k; ++g) top = std::max(top, o[g]);
      float sum = 0;
      for (size_t g = 0; g < k; ++g) sum += (o[g] = std::exp(o[g] - top));
      for (size_t g = 0; g < k; ++g) o[g] /= sum;
    }
  }
}

void Predictor::TreeRows(const float* rows, size_t n, float* out, bool margin) const {
  const size_t width = NumFeatures();
  const size_t out_width = OutputWidth();
  if (!compiled_) {
    std::vector<float> result;
    if (PredictRowsXgboost(rows, n, &result, margin).ok()) {
      std::copy(result.begin(), result.end(), out);
    } else {
      std::fill(out, out + n * out_width, std::numeric_limits<float>::quiet_NaN());
    }
    return;
  }
  // Binary: the forest has one group; regression: one group; multiclass: k groups.
  if (n >= 8) {  // blocks of rows walking each tree together; identical results
    if (margin) forest_.PredictMarginBatch(rows, n, width, out);
    else forest_.PredictBatch(rows, n, width, out);
    return;
  }
  for (size_t i = 0; i < n; ++i) {
    if (margin) forest_.PredictMargin(rows + i * width, out + i * out_width);
    else forest_.Predict(rows + i * width, out + i * out_width);
  }
}

Status Predictor::PredictRowsXgboost(const float* rows, size_t n, std::vector<float>* out, bool margin) const {
  if (booster_ == nullptr) return Status::FailedPrecondition("only tree models have an XGBoost booster");
  char array[256];
  std::snprintf(array, sizeof(array),
                R"({"data":[%llu,true],"shape":[%zu,%zu],"typestr":"<f4","version":3})",
                static_cast<unsigned long long>(reinterpret_cast<uintptr_t>(rows)), n, NumFeatures());
  const char* config = margin ? R"({"type":1,"training":false,"iteration_begin":0,"iteration_end":0,)"
                                R"("strict_shape":false,"missing":NaN,"cache_id":0})"
                              : R"({"type":0,"training":false,"iteration_begin":0,"iteration_end":0,)"
                                R"("strict_shape":false,"missing":NaN,"cache_id":0})";
  bst_ulong const* shape = nullptr;
  bst_ulong dim = 0;
  const float* result = nullptr;
  if (gblinear_) {  // the linear booster has no in-place prediction: through a DMatrix
    internal::DMatrix dm;
    LATHE_XGB(XGDMatrixCreateFromMat(rows, n, NumFeatures(), std::numeric_limits<float>::quiet_NaN(), dm.out()),
              "creating the prediction matrix");
    LATHE_XGB(XGBoosterPredictFromDMatrix(booster_, dm.get(), config, &shape, &dim, &result), "xgboost predict");
  } else {
    LATHE_XGB(XGBoosterPredictFromDense(booster_, array, config, nullptr, &shape, &dim, &result), "xgboost predict");
  }
  size_t count = 1;
  for (bst_ulong d = 0; d < dim; ++d) count *= static_cast<size_t>(shape[d]);
  if (count != n * OutputWidth()) return Status::Internal("unexpected XGBoost prediction shape");
  out->assign(result, result + count);
  return Status::Ok();
}

Result<std::vector<float>> Predictor::EncodeTable(const Table& table) const {
  if (preprocess_.empty()) return pipeline_.TransformTable(table);
  Table raw = table;
  RETURN_IF_ERROR(preprocess_.ApplyToTable(raw, pipeline_.target(), secret_salt_));
  return pipeline_.TransformTable(raw);
}

std::vector<size_t> Predictor::FeatureOwners() const {
  const auto& inputs = pipeline_.inputs();
  const size_t width = NumFeatures(), cols = inputs.size();
  std::vector<size_t> owner(width, cols);
  for (size_t c = 0; c < cols; ++c) {
    const size_t first = static_cast<size_t>(inputs[c].first_feature);
    size_t end = width;
    for (const auto& other : inputs) {
      const auto f = static_cast<size_t>(other.first_feature);
      if (f > first && f < end) end = f;
    }
    for (size_t f = first; f < end; ++f) owner[f] = c;
  }
  return owner;
}

Result<std::vector<double>> Predictor::GainImportance() const {
  if (unsupervised_) return Status::FailedPrecondition("importance is defined for supervised models");
  if (!has_trees_) {  // a linear model: the spread each column puts in the margins
    const std::vector<size_t> owner = FeatureOwners();
    const size_t cols = pipeline_.inputs().size();
    std::vector<double> out(cols, 0.0);
    const std::vector<double> fw = linear_->FeatureWeight();
    for (size_t f = 0; f < fw.size(); ++f) {
      if (owner[f] < cols) out[owner[f]] += fw[f];
    }
    return out;
  }
  bst_ulong n_features = 0, dim = 0;
  const char** names = nullptr;
  bst_ulong const* shape = nullptr;
  const float* scores = nullptr;
  LATHE_XGB(XGBoosterFeatureScore(booster_, R"({"importance_type":"total_gain","feature_map":""})", &n_features,
                                  &names, &dim, &shape, &scores),
            "computing gain importance");
  // Features are named by the pipeline's feature names when the booster has them, else "f<index>".
  std::unordered_map<std::string, size_t> index;
  const auto& feature_names = pipeline_.feature_names();
  for (size_t f = 0; f < feature_names.size(); ++f) {
    index[feature_names[f]] = f;
    index["f" + std::to_string(f)] = f;
  }
  const std::vector<size_t> owner = FeatureOwners();
  const size_t cols = pipeline_.inputs().size();
  // total_gain has one score per feature (dim 1); for multiclass models XGBoost still sums over classes.
  const size_t per_feature = dim == 2 ? static_cast<size_t>(shape[1]) : 1;
  std::vector<double> gain(cols, 0.0);
  for (size_t i = 0; i < n_features; ++i) {
    auto it = index.find(names[i]);
    if (it == index.end() || owner[it->second] >= cols) continue;
    for (size_t g = 0; g < per_feature; ++g) gain[owner[it->second]] += static_cast<double>(scores[i * per_feature + g]);
  }
  return gain;
}

Result<std::vector<double>> Predictor::ColumnContributions(const float* rows, size_t n) const {
  if (unsupervised_) return Status::FailedPrecondition("SHAP values are defined for supervised models");
  const size_t width = NumFeatures();
  const size_t groups = OutputWidth();
  // Per feature first: (rows, groups, features + 1), the last the bias.
  std::vector<double> feat(n * groups * (width + 1), 0.0);
  if (has_trees_) {
    internal::DMatrix dm;
    LATHE_XGB(XGDMatrixCreateFromMat(rows, n, width, std::numeric_limits<float>::quiet_NaN(), dm.out()),
              "creating the explain matrix");
    const char* config = R"({"type":2,"training":false,"iteration_begin":0,"iteration_end":0,"strict_shape":true})";
    bst_ulong const* shape = nullptr;
    bst_ulong dim = 0;
    const float* result = nullptr;
    LATHE_XGB(XGBoosterPredictFromDMatrix(booster_, dm.get(), config, &shape, &dim, &result),
              "computing SHAP values");
    if (dim != 3 || shape[0] != n || shape[1] != groups || shape[2] != width + 1) {
      return Status::Internal("unexpected XGBoost SHAP shape");
    }
    for (size_t i = 0; i < feat.size(); ++i) feat[i] = static_cast<double>(result[i]);
  }
  if (linear_) {  // SHAP values are additive over the parts of an ensemble
    std::vector<double> lin(groups * (width + 1));
    for (size_t i = 0; i < n; ++i) {
      linear_->Contributions(rows + i * width, lin.data());
      double* dst = feat.data() + i * groups * (width + 1);
      for (size_t j = 0; j < lin.size(); ++j) dst[j] += lin[j];
    }
  }
  // A column's contribution is the sum over the features it is encoded into (SHAP values are additive), so a
  // date reads as one number, like the instance the caller sent.
  const size_t cols = pipeline_.inputs().size();
  const std::vector<size_t> owner = FeatureOwners();
  std::vector<double> out(n * groups * (cols + 1), 0.0);
  for (size_t i = 0; i < n * groups; ++i) {
    const double* v = feat.data() + i * (width + 1);
    double* dst = out.data() + i * (cols + 1);
    for (size_t f = 0; f < width; ++f) {
      if (owner[f] < cols) dst[owner[f]] += v[f];
    }
    dst[cols] = v[width];
  }
  return out;
}

std::vector<std::string> Predictor::ContributionColumns() const {
  std::vector<std::string> names;
  for (const auto& in : pipeline_.inputs()) names.push_back(in.name);
  return names;
}

Result<Json> Predictor::Contributions(const float* rows, size_t n) const {
  ASSIGN_OR_RETURN(std::vector<double> values, ColumnContributions(rows, n));
  const std::vector<std::string> names = ContributionColumns();
  const size_t cols = names.size();
  const size_t groups = OutputWidth();
  auto one = [&](const double* v) {
    Json j = Json::object();
    for (size_t c = 0; c < cols; ++c) j[names[c]] = v[c];
    j["bias"] = v[cols];
    return j;
  };
  Json out = Json::array();
  for (size_t i = 0; i < n; ++i) {
    const double* row = values.data() + i * groups * (cols + 1);
    if (groups == 1) {
      out.push_back(one(row));
      continue;
    }
    Json per_class = Json::object();
    for (size_t g = 0; g < groups; ++g) per_class[pipeline_.label_keys()[g]] = one(row + g * (cols + 1));
    out.push_back(std::move(per_class));
  }
  return out;
}

Json Predictor::FormatPredictions(const float* outputs, size_t n) const {
  Json preds = Json::array();
  const size_t k = OutputWidth();
  for (size_t i = 0; i < n; ++i) {
    const float* o = outputs + i * k;
    if (unsupervised_) {
      switch (pipeline_.task()) {
        case ml::Task::kClustering:
          preds.push_back({{"cluster", static_cast<int>(o[0])}, {"distance", static_cast<double>(o[1])}});
          break;
        case ml::Task::kDecomposition: {
          Json c = Json::array();
          for (size_t j = 0; j + 1 < k; ++j) c.push_back(static_cast<double>(o[j]));
          preds.push_back({{"components", std::move(c)}, {"reconstruction_error", static_cast<double>(o[k - 1])}});
          break;
        }
        default:
          preds.push_back({{"anomaly_score", static_cast<double>(o[0])}, {"is_anomaly", o[1] > 0.5f}});
          break;
      }
      continue;
    }
    if (pipeline_.task() != ml::Task::kMulticlass) {
      preds.push_back(static_cast<double>(o[0]));
      continue;
    }
    size_t best = 0;
    Json probs = Json::object();
    for (size_t c = 0; c < k; ++c) {
      if (o[c] > o[best]) best = c;
      probs[pipeline_.label_keys()[c]] = static_cast<double>(o[c]);
    }
    preds.push_back({{"label", pipeline_.labels()[best]}, {"probabilities", std::move(probs)}});
  }
  return preds;
}

size_t Predictor::MemoryBytes() const {
  // XGBoost's in-memory trees weigh about 2.5x their serialized form (measured: RSS of eight loaded copies of
  // a 120-tree depth-10 model, tests/unit/serving/model_cache_test.cc).
  size_t bytes = sizeof(Predictor) + forest_.MemoryBytes() + booster_bytes_ * 5 / 2 +
                 (linear_ ? linear_->MemoryBytes() : 0);
  for (const auto& in : pipeline_.inputs()) {
    for (const auto& c : in.categories) bytes += 2 * (c.capacity() + 64);  // the list and the lookup map
  }
  return bytes;
}

std::string Predictor::PredictionsText(const float* outputs, size_t n) const {
  if (OutputWidth() != 1) return DumpJson(FormatPredictions(outputs, n));
  std::string text;
  text.reserve(2 + n * 24);
  text += '[';
  char buf[64];
  for (size_t i = 0; i < n; ++i) {
    if (i > 0) text += ',';
    const double v = static_cast<double>(outputs[i]);
    if (!std::isfinite(v)) {
      text += "null";  // as nlohmann's dump writes a non-finite number
      continue;
    }
    // nlohmann's own shortest round-trip formatting (what dump() calls), so the bytes are the same.
    char* end = nlohmann::detail::to_chars(buf, buf + sizeof(buf), v);
    text.append(buf, static_cast<size_t>(end - buf));
  }
  text += ']';
  return text;
}

Result<Json> Predictor::PredictInstances(const Json& instances, const FeaturePipeline::InputPolicy& policy) const {
  try {
    std::vector<float> rows;
    RETURN_IF_ERROR(EncodeInstances(instances, &rows, policy));
    const size_t n = instances.size();
    std::vector<float> out(n * OutputWidth());
    PredictRows(rows.data(), n, out.data());
    return FormatPredictions(out.data(), n);
  } catch (const std::bad_alloc&) {
    return Status::ResourceExhausted("out of memory while predicting");
  } catch (const std::exception& e) {
    return Status::Internal(std::string("prediction failed: ") + e.what());
  }
}

}  // namespace lathe::ml
