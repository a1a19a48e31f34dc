// ONNX export: writes a loaded model (trees, a linear model, or an ensemble of both) as one self-contained
// ONNX file that ONNX Runtime (or any ONNX-ML runtime) scores with the same results as lathe's predictor.
//
// The graph takes one input per input column of the model's signature, each of shape [N, 1]:
//   integer / float / boolean columns -> tensor(double) (booleans as 0/1; NaN = missing);
//   string columns                    -> tensor(string) (a value never seen in training is missing);
//   datetime columns                  -> tensor(double), seconds since 1970-01-01T00:00:00Z (NaN = missing).
// Input names are the column names, made into C identifiers (other characters become '_', a leading digit
// gets a '_' prefix, duplicates a numbered suffix); metadata_props["lathe.inputs"] maps them back.
// Inside, the graph rebuilds lathe's feature rows exactly as FeaturePipeline does (ai.onnx.ml LabelEncoder
// for vocabularies; calendar arithmetic for dates; infinities become missing), then:
//   trees  -> ai.onnx.ml TreeEnsembleRegressor (one target per class, SUM, the XGBoost base margin), with
//             XGBoost's split rule (value < threshold goes left, NaN follows the default branch). A native
//             categorical split (category in a set goes right) becomes a chain of BRANCH_EQ tests over the
//             smaller of the set and its complement within the column's vocabulary, each hit sharing a copy
//             of that side's subtree; DART trees have their dropout weight folded into the leaves;
//   linear -> the LinearModel's terms (imputed standardized numbers, missing indicators, one-hot codes) as
//             Gather / Where / Equal / MatMul in double precision;
//   then the objective's transform (Sigmoid, Softmax or Exp).
// Outputs: classification: "label" (tensor(string) [N], the class label's text) and "probabilities"
// (float [N, classes]; binary: [1 - p, p]); regression and ranking: "prediction" (float [N, 1]; ranking: the
// score).
// Operator sets: ONNX 13 and ai.onnx.ml 3, IR version 8 (ONNX Runtime 1.10 and newer).
// Errors: kFailedPrecondition for a model that cannot be expressed (trained on a recipe's output, or whose
// categorical splits would expand beyond kOnnxMaxTreeNodes). Thread-safe (reads the immutable Predictor).
#pragma once

#include <string>

#include "common/status.h"
#include "ml/predictor.h"

namespace lathe::ml {

struct OnnxExportOptions {
  std::string model_name;     // graph name and metadata
  std::string model_version;  // metadata_props["lathe.version"]
  std::string producer_version;
};

inline constexpr size_t kOnnxMaxTreeNodes = 8u << 20;

// The serialized onnx.ModelProto.
Result<std::string> ExportOnnx(const Predictor& model, const OnnxExportOptions& options);

}  // namespace lathe::ml
