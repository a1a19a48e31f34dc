// Predictor: a loaded model bundle ready to serve. Load() validates the bundle (checksum, pipeline, booster,
// compiled trees); afterwards the object is immutable and every const method is safe to call concurrently
// from any number of threads without locks.
//
// The hot path (PredictInstances / PredictRows) uses CompiledForest, lathe's flat-array tree evaluator; the
// XGBoost in-place predictor (nthread=1 per call) stays available as PredictRowsXgboost for verification and
// comparison. Both give bit-identical margins (tests/unit/ml/predictor_test.cc).
//
// Errors: a corrupt or truncated bundle is kDataLoss/kInvalidArgument (never a crash); bad instances are
// kInvalidArgument with ErrorDetail::Field("instances[i].name", ...); too many rows is kPayloadTooLarge.
#pragma once

#include "ml/preprocess.h"

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/json.h"
#include "common/status.h"
#include "ml/pipeline.h"
#include "ml/linear_model.h"
#include "ml/tree_evaluator.h"

namespace lathe::ml {

class Predictor {
 public:
  static constexpr size_t kMaxInstances = 10000;  // rows per PredictInstances call (max_predict_rows)

  // `secret_salt` is the mask_pii salt of the project (used only by models trained on masked data).
  static Result<std::shared_ptr<Predictor>> Load(std::string_view model_bundle, const std::string& secret_salt = "");
  ~Predictor();
  Predictor(const Predictor&) = delete;
  Predictor& operator=(const Predictor&) = delete;

  // instances: JSON array of objects. Output: JSON array — binary: probability of the positive class;
  // multiclass: {"label": ..., "probabilities": {label: p, ...}}; regression: number; clustering:
  // {"cluster", "distance"}; decomposition: {"components": [...], "reconstruction_error"}; anomaly:
  // {"anomaly_score", "is_anomaly"}.
  Result<Json> PredictInstances(const Json& instances,
                                const FeaturePipeline::InputPolicy& policy = FeaturePipeline::InputPolicy{}) const;
  Json Signature() const;
  std::string Task() const;

  // Lower-level pieces for micro-batching and tests.
  const FeaturePipeline& pipeline() const { return pipeline_; }
  const Json& meta() const { return meta_; }
  size_t NumFeatures() const { return pipeline_.NumFeatures(); }
  // True when instances map straight onto pipeline() — no recipe to replay first — so a request body may be
  // decoded directly into rows (serving/request_decoder.h).
  bool direct_input() const { return preprocess_.empty(); }
  // Floats per row from PredictRows: classes for multiclass; 2 for clustering (cluster, distance) and anomaly
  // (score, 0/1 anomaly); components + 1 (reconstruction error) for decomposition; else 1.
  size_t OutputWidth() const;
  bool unsupervised() const { return unsupervised_ != nullptr; }
  size_t NumTrees() const { return has_trees_ ? forest_.num_trees() : 0; }
  // Validates + encodes `instances` (same rules as PredictInstances) into a dense row-major buffer.
  // `policy` applies to models trained on raw data; a model trained on a recipe's output validates its raw
  // input by the recipe's own rules.
  Status EncodeInstances(const Json& instances, std::vector<float>* rows,
                         const FeaturePipeline::InputPolicy& policy = FeaturePipeline::InputPolicy{}) const;
  // Encodes a Table of input columns (the raw columns, for a model trained on a recipe's output: the recipes
  // are replayed on it first) into dense rows; integer and float columns are interchangeable, a missing
  // column or a column of another type is kInvalidArgument naming it. Unseen categories encode as missing.
  Result<std::vector<float>> EncodeTable(const Table& table) const;
  // Compiled evaluator (XGBoost for DART models): out has n * OutputWidth() floats (probabilities / values);
  // `margin` gives raw margins.
  void PredictRows(const float* rows, size_t n, float* out, bool margin = false) const;
  // XGBoost in-place prediction (XGBoosterPredictFromDense, nthread=1).
  Status PredictRowsXgboost(const float* rows, size_t n, std::vector<float>* out, bool margin = false) const;
  // SHAP values (XGBoost's TreeSHAP, pred_contribs) of already-encoded rows: one JSON object per row,
  // {input column: contribution, ..., "bias": expected value}, in margin units (log-odds for classification),
  // a column's value being the sum over the features it is encoded into (a date's parts, for example);
  // multiclass gives {class label: {...}}. The contributions of a row sum to its margin.
  Result<Json> Contributions(const float* rows, size_t n) const;
  // The same values as numbers: n * OutputWidth() blocks of (ContributionColumns().size() + 1) doubles, the
  // last of each block the bias.
  Result<std::vector<double>> ColumnContributions(const float* rows, size_t n) const;
  std::vector<std::string> ContributionColumns() const;  // the pipeline's input columns, in order
  // Total split gain per input column (XGBoost total_gain, summed over the features a column is encoded into),
  // in ContributionColumns() order.
  Result<std::vector<double>> GainImportance() const;
  // For each encoded feature, the index of the input column it belongs to.
  std::vector<size_t> FeatureOwners() const;
  // Estimated memory held: the compiled trees, XGBoost's booster (2.5x its serialized size) and the
  // pipeline's vocabularies. For the serving model cache's budget.
  size_t MemoryBytes() const;
  // The model's parts, for exporters (ml/onnx_export.h): the trees (nullptr for a linear model), each tree's
  // DART weight (empty unless DART: prediction scales tree t by tree_weights()[t]) and the linear part
  // (nullptr if none; added to the trees' margins).
  const CompiledForest* forest() const { return has_trees_ ? &forest_ : nullptr; }
  const std::vector<float>& tree_weights() const { return tree_weights_; }
  const LinearModel* linear() const { return linear_.get(); }
  bool exp_link() const { return exp_link_; }  // a linear model whose outputs are exp(margin)
  // Output JSON for already-computed rows of PredictRows.
  Json FormatPredictions(const float* outputs, size_t n) const;
  // The same, as text: byte for byte DumpJson(FormatPredictions(outputs, n)), written directly (no DOM) for
  // binary and regression models.
  std::string PredictionsText(const float* outputs, size_t n) const;

 private:
  Predictor() = default;

  FeaturePipeline pipeline_;
  Preprocess preprocess_;  // recipe steps replayed on raw input; empty for models trained on raw data
  std::string secret_salt_;
  // Margins of the trees alone (compiled evaluator, or XGBoost for DART), transformed unless `margin`.
  void TreeRows(const float* rows, size_t n, float* out, bool margin) const;

  CompiledForest forest_;
  bool has_trees_ = true;              // false for a linear model
  bool exp_link_ = false;              // a linear model of a log-link objective (Poisson, Tweedie)
  bool gblinear_ = false;              // XGBoost's linear booster (served as linear_; booster_ for checks)
  std::shared_ptr<LinearModel> linear_;  // a linear model, or the linear part of an ensemble (added to margins)
  std::vector<float> tree_weights_;  // DART only
  struct Unsupervised;  // k-means / PCA / isolation forest on design terms (predictor.cc)
  std::shared_ptr<const Unsupervised> unsupervised_;
  bool compiled_ = true;  // false for DART: PredictRows goes through XGBoost (forest_ only validated the trees)
  Json meta_;
  void* booster_ = nullptr;  // BoosterHandle; owned
  size_t booster_bytes_ = 0;  // its serialized size
};

}  // namespace lathe::ml
