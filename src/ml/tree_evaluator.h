// CompiledForest: lathe's own evaluator for XGBoost tree ensembles, used on the serving hot path instead of
// XGBoost's predictor (which costs tens of µs per single-row call in setup and threading).
//
// Built from XGBoost's JSON/UBJSON model document (the parsed `learner` object). Trees are re-laid out in
// depth-first preorder into one flat node array (left child = next node, right child stored), so a traversal
// walks forward through memory. Semantics match XGBoost 1.7 exactly:
//   - a missing value (NaN) follows the node's default direction;
//   - numeric split: value < threshold goes left;
//   - categorical split: the category goes right iff it is in the node's category set; negative, non-finite
//     or out-of-range categories go left (xgboost::common::Decision);
//   - margin = float(base_margin) + leaf_0 + leaf_1 + ... accumulated in float in tree order, so margins are
//     bit-identical to XGBoost's (checked in tests/unit/ml/predictor_test.cc). Probabilities are computed in
//     float with the same formulas as XGBoost (sigmoid, max-shifted softmax) and agree to within 1 ulp-scale
//     float error (the test allows 1e-6) because libm expf may differ from XGBoost's vectorized path.
// Loading validates everything (indices, cycles, sizes), so a hostile model is an error, never a crash.
// Immutable after construction; Predict* are const and thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/json.h"
#include "common/status.h"

namespace lathe::ml {

class CompiledForest {
 public:
  static constexpr size_t kMaxNodes = 64u << 20;
  static constexpr int64_t kMaxCategory = 1 << 20;

  // `model` is the whole XGBoost model document ({"learner": ..., "version": ...}).
  static Result<CompiledForest> FromXgboostModel(const Json& model);

  int num_features() const { return num_features_; }
  int num_groups() const { return num_groups_; }  // margins per row (classes for multi:softprob, else 1)
  size_t num_trees() const { return roots_.size(); }
  const std::string& objective() const { return objective_; }
  size_t MemoryBytes() const;  // heap held by the compiled arrays

  // out[0..num_groups()) = raw margins for one row of num_features() floats (NaN = missing).
  void PredictMargin(const float* row, float* out) const;
  // Transformed output: probability (binary:logistic), class probabilities (multi:softprob) or value.
  void Predict(const float* row, float* out) const;
  // Many rows (row i at rows + i * stride): the same results as PredictMargin / Predict row by row, bit for
  // bit, computed in blocks of rows that walk each tree together (several times faster for large n).
  void PredictMarginBatch(const float* rows, size_t n, size_t stride, float* out) const;
  void PredictBatch(const float* rows, size_t n, size_t stride, float* out) const;
  // Margins after every `trees_per_stage` trees (one boosting round: 1 tree, or one per class for
  // multi:softprob): out[s * num_groups() + g] for s in [0, num_trees() / trees_per_stage). Accumulated like
  // PredictMargin, so the last stage equals it bit for bit. Used for learning curves after training.
  void StagedMargins(const float* row, size_t trees_per_stage, float* out) const;
  // Margins of one row -> outputs, in place (sigmoid, softmax, exp or nothing, as the objective says).
  void ApplyTransform(float* out) const;

  // Read-only structure for exporters (ml/onnx_export.h). A tree's nodes in preorder, children indexed
  // within the tree (the root is 0).
  struct NodeView {
    int32_t feature = -1;  // -1: a leaf
    float value = 0;       // split threshold (numeric), or the leaf value
    uint32_t left = 0, right = 0;
    bool default_left = false;
    bool categorical = false;
    std::vector<uint32_t> categories;  // categorical: the categories that go right, ascending
  };
  std::vector<NodeView> TreeNodes(size_t tree) const;
  int TreeGroup(size_t tree) const { return groups_[tree]; }
  float BaseMargin(int group) const { return base_margin_[static_cast<size_t>(group)]; }
  // "identity" | "sigmoid" | "softmax" | "exp": what ApplyTransform does.
  const char* TransformName() const;

 private:
  struct Node {
    float value;        // split threshold, or leaf value when feature < 0
    int32_t feature;    // -1 for a leaf
    int32_t right;      // index of the right child (left child is this index + 1)
    uint32_t cat_set;   // categorical: index into cat_sets_ + 1; 0 = numeric split
    uint8_t default_left;
  };
  struct CatSet {
    uint32_t offset;  // into cat_words_
    uint32_t words;
  };
  // The batch layout: 16-byte nodes with both children explicit and leaves pointing at themselves, so a
  // block of rows walks a tree a fixed number of steps (its depth) with no leaf test and no branch on the
  // numeric path. Built from nodes_ at load.
  struct WalkNode {
    float threshold;   // numeric split threshold; categorical: bit pattern of the cat_set index (1-based)
    uint32_t feature;  // feature index | kDefaultLeft | kCategorical
    uint32_t child[2];  // [left, right]: the walk indexes it with the decision, no branch
  };
  static constexpr uint32_t kDefaultLeft = 1u << 31;
  static constexpr uint32_t kCategorical = 1u << 30;
  static constexpr uint32_t kFeatureMask = kCategorical - 1;
  enum class Transform { kIdentity, kSigmoid, kSoftmax, kExp };

  void BuildWalkLayout();
  uint32_t Step(uint32_t i, const float* row) const;  // one step in the batch layout

  // The child of split node `i` that `row` goes to.
  uint32_t Next(uint32_t i, const float* row) const;
  // The leaf value `row` reaches in the tree rooted at `root`.
  float LeafValue(uint32_t root, const float* row) const;
  // Margins -> outputs (sigmoid, softmax or identity) for one row, in place.

  std::vector<Node> nodes_;
  std::vector<uint32_t> roots_;
  std::vector<WalkNode> walk_;   // parallel to nodes_
  std::vector<float> leaf_;      // parallel to nodes_: leaf values (0 for splits)
  std::vector<uint32_t> depth_;  // per tree: the longest root-to-leaf path, in steps
  std::vector<int32_t> groups_;
  std::vector<CatSet> cat_sets_;
  std::vector<uint32_t> cat_words_;
  std::vector<float> base_margin_;
  int num_features_ = 0;
  int num_groups_ = 1;
  std::string objective_;
  Transform transform_ = Transform::kIdentity;
};

}  // namespace lathe::ml
