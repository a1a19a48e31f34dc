// Batch scoring: every row of a dataset file through a model, into a new dataset file holding the input
// columns (all, or the ones named) followed by the model's outputs.
//
// Streaming: row groups (kLcolRowsPerGroup = 65,536 rows) are read, encoded, predicted and turned into
// output columns `threads` at a time, one per thread (the compiled evaluator's batch path is thread-safe),
// then appended to the output in order, so memory is bounded by `threads` row groups whatever the dataset's
// size. SHAP values come from XGBoost's TreeSHAP.
//
// Output columns, after the kept input columns (an input column named like an output is replaced):
//   binary      "prediction" (the predicted class label, string, threshold 0.5) and "probability"
//               (of the positive class);
//   multiclass  "prediction" and "probability_<label>" per class;
//   regression, ranking  "prediction" (float; ranking: the score);
//   clustering  "cluster" (integer) and "distance"; decomposition "component_1".. and "reconstruction_error";
//   anomaly     "anomaly_score" and "is_anomaly" (boolean);
//   explain     "shap_<column>" per model input column and "shap_bias", in margin units (log-odds for
//               classification; multiclass: of the predicted class). A row's shap_* values sum to its margin.
//
// Errors: a column the model needs that is missing or of another type is kInvalidArgument naming it;
// `keep_columns` naming an unknown column is kInvalidArgument; progress returning false ends the scoring
// with kCancelled. On any error nothing is left at output_path. Thread-safe (no shared state).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "common/status.h"
#include "data/dataset_file.h"
#include "ml/predictor.h"

namespace lathe::ml {

struct BatchScoreOptions {
  bool explain = false;
  std::vector<std::string> keep_columns;  // empty: keep every input column
  int threads = 0;                        // 0: one per core
};

struct BatchScoreSummary {
  int64_t rows = 0;
  std::vector<std::string> output_columns;  // the model outputs appended (not the kept input columns)
};

// Called after each row group with (rows done, rows total); returning false cancels.
using BatchProgress = std::function<bool(int64_t done, int64_t total)>;

Result<BatchScoreSummary> ScoreDataset(const DatasetFile& input, const Predictor& predictor,
                                       const std::string& output_path, const BatchScoreOptions& options,
                                       const BatchProgress& progress = nullptr);

}  // namespace lathe::ml
