#include "ml/tree_evaluator.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdlib>
#include <limits>

namespace lathe::ml {
namespace {

Status Bad(const std::string& m) { return Status::InvalidArgument("model trees: " + m); }

// Reads a JSON array of integers (UBJSON typed arrays arrive as plain arrays of numbers).
Status IntArray(const Json& tree, const char* key, std::vector<int64_t>* out) {
  auto it = tree.find(key);
  if (it == tree.end() || !it->is_array()) return Bad(std::string("tree lacks '") + key + "'");
  out->clear();
  out->reserve(it->size());
  for (const Json& v : *it) {
    if (v.is_boolean()) {
      out->push_back(v.get<bool>() ? 1 : 0);
    } else if (v.is_number_integer()) {
      out->push_back(v.get<int64_t>());
    } else {
      return Bad(std::string("'") + key + "' holds a non-integer");
    }
  }
  return Status::Ok();
}

Status FloatArray(const Json& tree, const char* key, std::vector<float>* out) {
  auto it = tree.find(key);
  if (it == tree.end() || !it->is_array()) return Bad(std::string("tree lacks '") + key + "'");
  out->clear();
  out->reserve(it->size());
  for (const Json& v : *it) {
    if (v.is_number()) {
      out->push_back(static_cast<float>(v.get<double>()));
    } else if (v.is_null()) {  // NaN (categorical nodes) has no JSON spelling
      out->push_back(std::numeric_limits<float>::quiet_NaN());
    } else {
      return Bad(std::string("'") + key + "' holds a non-number");
    }
  }
  return Status::Ok();
}

Result<int64_t> IntParam(const Json& obj, const char* key) {
  auto it = obj.find(key);
  if (it == obj.end()) return Bad(std::string("missing '") + key + "'");
  if (it->is_number_integer()) return it->get<int64_t>();
  if (it->is_string()) {
    const std::string& s = it->get_ref<const std::string&>();
    char* end = nullptr;
    const long long v = std::strtoll(s.c_str(), &end, 10);
    if (!s.empty() && end == s.c_str() + s.size()) return static_cast<int64_t>(v);
  }
  return Bad(std::string("'") + key + "' is not an integer");
}

Result<float> FloatParam(const Json& obj, const char* key) {
  auto it = obj.find(key);
  if (it == obj.end()) return Bad(std::string("missing '") + key + "'");
  if (it->is_number()) return static_cast<float>(it->get<double>());
  if (it->is_string()) {
    const std::string& s = it->get_ref<const std::string&>();
    char* end = nullptr;
    const float v = std::strtof(s.c_str(), &end);
    if (!s.empty() && end == s.c_str() + s.size()) return v;
  }
  return Bad(std::string("'") + key + "' is not a number");
}

inline float Sigmoid(float x) {
  // xgboost::common::Sigmoid
  constexpr float kEps = 1e-16f;
  const float denom = std::exp(-x) + 1.0f + kEps;
  return 1.0f / denom;
}

}  // namespace

Result<CompiledForest> CompiledForest::FromXgboostModel(const Json& model) {
  if (!model.is_object() || !model.contains("learner") || !model["learner"].is_object()) {
    return Bad("not an XGBoost model document");
  }
  const Json& learner = model["learner"];
  CompiledForest f;
  if (!learner.contains("objective") || !learner["objective"].is_object() ||
      !learner["objective"].contains("name") || !learner["objective"]["name"].is_string()) {
    return Bad("missing objective");
  }
  f.objective_ = learner["objective"]["name"].get<std::string>();
  if (!learner.contains("learner_model_param") || !learner["learner_model_param"].is_object()) {
    return Bad("missing learner_model_param");
  }
  const Json& lmp = learner["learner_model_param"];
  ASSIGN_OR_RETURN(const int64_t num_feature, IntParam(lmp, "num_feature"));
  ASSIGN_OR_RETURN(const int64_t num_class, IntParam(lmp, "num_class"));
  ASSIGN_OR_RETURN(const float base_score, FloatParam(lmp, "base_score"));
  if (num_feature <= 0 || num_feature > (1 << 24)) return Bad("bad num_feature");
  if (num_class < 0 || num_class > 100000) return Bad("bad num_class");
  f.num_features_ = static_cast<int>(num_feature);
  f.num_groups_ = num_class > 1 ? static_cast<int>(num_class) : 1;

  float base_margin;
  if (f.objective_ == "binary:logistic" || f.objective_ == "reg:logistic") {
    if (!(base_score > 0.0f && base_score < 1.0f)) return Bad("base_score must be in (0, 1) for logistic");
    base_margin = -std::log(1.0f / base_score - 1.0f);  // RegLossObj::ProbToMargin
    f.transform_ = Transform::kSigmoid;
  } else if (f.objective_ == "multi:softprob") {
    base_margin = base_score;
    f.transform_ = Transform::kSoftmax;
  } else if (f.objective_ == "reg:squarederror" || f.objective_ == "reg:absoluteerror" ||
             f.objective_ == "reg:pseudohubererror" || f.objective_ == "rank:pairwise" ||
             f.objective_ == "rank:ndcg" || f.objective_ == "rank:map") {
    base_margin = base_score;
    f.transform_ = Transform::kIdentity;
  } else if (f.objective_ == "count:poisson" || f.objective_ == "reg:tweedie") {
    if (!(base_score > 0.0f)) return Bad("base_score must be > 0 for a log-link objective");
    base_margin = std::log(base_score);  // PoissonRegression / TweedieRegression::ProbToMargin
    f.transform_ = Transform::kExp;
  } else {
    return Bad("objective '" + f.objective_ + "' is not supported by the compiled evaluator");
  }
  if (f.transform_ == Transform::kSoftmax && f.num_groups_ < 2) return Bad("softprob model without classes");
  f.base_margin_.assign(static_cast<size_t>(f.num_groups_), base_margin);

  if (!learner.contains("gradient_booster") || !learner["gradient_booster"].is_object()) return Bad("no booster");
  const Json& gb = learner["gradient_booster"];
  if (!gb.contains("name") || gb["name"] != "gbtree") return Bad("only gbtree boosters are supported");
  if (!gb.contains("model") || !gb["model"].is_object()) return Bad("booster has no model");
  const Json& m = gb["model"];
  if (!m.contains("trees") || !m["trees"].is_array() || !m.contains("tree_info") || !m["tree_info"].is_array()) {
    return Bad("model lacks trees/tree_info");
  }
  const Json& trees = m["trees"];
  const Json& info = m["tree_info"];
  if (trees.size() != info.size()) return Bad("tree_info and trees differ in length");

  std::vector<int64_t> left, right, split_index, default_left, split_type, cats, cat_nodes, cat_segments, cat_sizes;
  std::vector<float> cond;
  std::vector<int32_t> remap;
  for (size_t t = 0; t < trees.size(); ++t) {
    const Json& tree = trees[t];
    if (!tree.is_object()) return Bad("tree is not an object");
    if (!info[t].is_number_integer()) return Bad("tree_info holds a non-integer");
    const int64_t group = info[t].get<int64_t>();
    if (group < 0 || group >= f.num_groups_) return Bad("tree group out of range");
    RETURN_IF_ERROR(IntArray(tree, "left_children", &left));
    RETURN_IF_ERROR(IntArray(tree, "right_children", &right));
    RETURN_IF_ERROR(IntArray(tree, "split_indices", &split_index));
    RETURN_IF_ERROR(IntArray(tree, "default_left", &default_left));
    RETURN_IF_ERROR(FloatArray(tree, "split_conditions", &cond));
    const size_t n = left.size();
    if (n == 0 || right.size() != n || split_index.size() != n || default_left.size() != n || cond.size() != n) {
      return Bad("tree arrays differ in length");
    }
    if (f.nodes_.size() + n > kMaxNodes) return Bad("too many nodes");
    split_type.assign(n, 0);
    if (tree.contains("split_type")) {
      RETURN_IF_ERROR(IntArray(tree, "split_type", &split_type));
      if (split_type.size() != n) return Bad("split_type length differs");
    }
    // Categorical node -> its category list.
    std::vector<std::pair<int64_t, int64_t>> node_cats(n, {0, 0});
    if (tree.contains("categories_nodes")) {
      RETURN_IF_ERROR(IntArray(tree, "categories", &cats));
      RETURN_IF_ERROR(IntArray(tree, "categories_nodes", &cat_nodes));
      RETURN_IF_ERROR(IntArray(tree, "categories_segments", &cat_segments));
      RETURN_IF_ERROR(IntArray(tree, "categories_sizes", &cat_sizes));
      if (cat_segments.size() != cat_nodes.size() || cat_sizes.size() != cat_nodes.size()) {
        return Bad("categorical arrays differ in length");
      }
      for (size_t k = 0; k < cat_nodes.size(); ++k) {
        const int64_t nid = cat_nodes[k], beg = cat_segments[k], size = cat_sizes[k];
        if (nid < 0 || static_cast<size_t>(nid) >= n || beg < 0 || size < 0 ||
            static_cast<uint64_t>(beg) + static_cast<uint64_t>(size) > cats.size()) {
          return Bad("categorical split out of range");
        }
        node_cats[static_cast<size_t>(nid)] = {beg, size};
      }
    }
    // Depth-first preorder re-layout; every node reachable at most once (no cycles, no sharing).
    remap.assign(n, -1);
    const auto base = static_cast<int32_t>(f.nodes_.size());
    std::vector<std::pair<int64_t, int32_t>> stack;  // (old node id, new index of parent needing a right link or -1)
    stack.push_back({0, -1});
    while (!stack.empty()) {
      auto [old_id, parent_new] = stack.back();
      stack.pop_back();
      if (old_id < 0 || static_cast<size_t>(old_id) >= n) return Bad("child index out of range");
      const auto oid = static_cast<size_t>(old_id);
      if (remap[oid] != -1) return Bad("tree is not a tree (node reached twice)");
      const auto new_id = static_cast<int32_t>(f.nodes_.size());
      remap[oid] = new_id;
      if (parent_new >= 0) f.nodes_[static_cast<size_t>(parent_new)].right = new_id;
      Node node{};
      const bool leaf = left[oid] == -1;
      if (leaf) {
        if (right[oid] != -1) return Bad("half-leaf node");
        node.value = cond[oid];
        node.feature = -1;
        node.right = -1;
        f.nodes_.push_back(node);
        continue;
      }
      if (split_index[oid] < 0 || split_index[oid] >= num_feature) return Bad("split feature out of range");
      node.feature = static_cast<int32_t>(split_index[oid]);
      node.value = cond[oid];
      node.default_left = default_left[oid] != 0 ? 1 : 0;
      node.right = -1;
      if (split_type[oid] == 1) {
        const auto [beg, size] = node_cats[oid];
        int64_t max_cat = -1;
        for (int64_t k = beg; k < beg + size; ++k) {
          const int64_t c = cats[static_cast<size_t>(k)];
          if (c < 0 || c >= kMaxCategory) return Bad("category out of range");
          max_cat = std::max(max_cat, c);
        }
        CatSet set{static_cast<uint32_t>(f.cat_words_.size()), static_cast<uint32_t>(max_cat / 32 + 1)};
        f.cat_words_.resize(f.cat_words_.size() + set.words, 0);
        for (int64_t k = beg; k < beg + size; ++k) {
          const auto c = static_cast<uint32_t>(cats[static_cast<size_t>(k)]);
          f.cat_words_[set.offset + c / 32] |= 1u << (c % 32);
        }
        f.cat_sets_.push_back(set);
        node.cat_set = static_cast<uint32_t>(f.cat_sets_.size());
      } else if (split_type[oid] != 0) {
        return Bad("unknown split type");
      } else if (std::isnan(node.value)) {
        return Bad("numeric split without a threshold");
      }
      f.nodes_.push_back(node);
      // Right pushed first so the left subtree is laid out immediately after this node.
      stack.push_back({right[oid], new_id});
      stack.push_back({left[oid], -1});
    }
    f.roots_.push_back(static_cast<uint32_t>(base));
    f.groups_.push_back(static_cast<int32_t>(group));
  }
  f.BuildWalkLayout();
  return f;
}

void CompiledForest::BuildWalkLayout() {
  walk_.resize(nodes_.size());
  leaf_.assign(nodes_.size(), 0.0f);
  depth_.assign(roots_.size(), 0);
  std::vector<uint32_t> node_depth(nodes_.size(), 0);
  for (size_t t = 0; t < roots_.size(); ++t) {
    const uint32_t begin = roots_[t];
    const auto end = static_cast<uint32_t>(t + 1 < roots_.size() ? roots_[t + 1] : nodes_.size());
    node_depth[begin] = 0;
    // Preorder: a node's depth is known before its children are visited.
    for (uint32_t i = begin; i < end; ++i) {
      const Node& n = nodes_[i];
      WalkNode& w = walk_[i];
      if (n.feature < 0) {
        w = WalkNode{0.0f, 0, {i, i}};  // a leaf loops on itself, so every walk can take the tree's full depth
        leaf_[i] = n.value;
        depth_[t] = std::max(depth_[t], node_depth[i]);
        continue;
      }
      w.threshold = n.value;
      w.feature = static_cast<uint32_t>(n.feature) | (n.default_left ? kDefaultLeft : 0u) |
                  (n.cat_set != 0 ? kCategorical : 0u);
      w.child[0] = i + 1;
      w.child[1] = static_cast<uint32_t>(n.right);
      if (n.cat_set != 0) w.threshold = std::bit_cast<float>(n.cat_set);
      node_depth[i + 1] = node_depth[i] + 1;
      node_depth[static_cast<size_t>(n.right)] = node_depth[i] + 1;
    }
  }
}

inline uint32_t CompiledForest::Next(uint32_t i, const float* row) const {
  const Node& n = nodes_[i];
  const float v = row[n.feature];
  bool go_left;
  if (std::isnan(v)) {
    go_left = n.default_left != 0;
  } else if (n.cat_set == 0) {
    go_left = v < n.value;
  } else {
    const CatSet& s = cat_sets_[n.cat_set - 1];
    go_left = true;
    if (v >= 0.0f && v < static_cast<float>(kMaxCategory)) {
      const auto c = static_cast<uint32_t>(v);
      if (c / 32 < s.words) go_left = ((cat_words_[s.offset + c / 32] >> (c % 32)) & 1u) == 0;
    }
  }
  return go_left ? i + 1 : static_cast<uint32_t>(n.right);
}

inline float CompiledForest::LeafValue(uint32_t root, const float* row) const {
  uint32_t i = root;
  while (nodes_[i].feature >= 0) i = Next(i, row);
  return nodes_[i].value;
}

inline uint32_t CompiledForest::Step(uint32_t i, const float* row) const {
  const WalkNode& w = walk_[i];
  const float v = row[w.feature & kFeatureMask];
  if (w.feature & kCategorical) [[unlikely]] {
    const CatSet& s = cat_sets_[std::bit_cast<uint32_t>(w.threshold) - 1];
    if (v != v) return w.child[(w.feature & kDefaultLeft) == 0];  // missing: default direction
    bool go_left = true;
    if (v >= 0.0f && v < static_cast<float>(kMaxCategory)) {
      const auto c = static_cast<uint32_t>(v);
      if (c / 32 < s.words) go_left = ((cat_words_[s.offset + c / 32] >> (c % 32)) & 1u) == 0;
    }
    return w.child[!go_left];
  }
  // NaN compares false: it goes left only when that is the node's default direction.
  const bool go_left = (v < w.threshold) | ((v != v) & ((w.feature & kDefaultLeft) != 0));
  return w.child[!go_left];
}

std::vector<CompiledForest::NodeView> CompiledForest::TreeNodes(size_t tree) const {
  const uint32_t begin = roots_[tree];
  const auto end = static_cast<uint32_t>(tree + 1 < roots_.size() ? roots_[tree + 1] : nodes_.size());
  std::vector<NodeView> out(end - begin);
  for (uint32_t i = begin; i < end; ++i) {
    const Node& n = nodes_[i];
    NodeView& v = out[i - begin];
    v.feature = n.feature;
    v.value = n.value;
    if (n.feature < 0) continue;
    v.left = i + 1 - begin;
    v.right = static_cast<uint32_t>(n.right) - begin;
    v.default_left = n.default_left != 0;
    if (n.cat_set != 0) {
      v.categorical = true;
      const CatSet& s = cat_sets_[n.cat_set - 1];
      for (uint32_t w = 0; w < s.words; ++w) {
        for (uint32_t b = 0; b < 32; ++b) {
          if ((cat_words_[s.offset + w] >> b) & 1u) v.categories.push_back(w * 32 + b);
        }
      }
    }
  }
  return out;
}

const char* CompiledForest::TransformName() const {
  switch (transform_) {
    case Transform::kSigmoid: return "sigmoid";
    case Transform::kSoftmax: return "softmax";
    case Transform::kExp: return "exp";
    case Transform::kIdentity: break;
  }
  return "identity";
}

size_t CompiledForest::MemoryBytes() const {
  return nodes_.capacity() * sizeof(Node) + roots_.capacity() * sizeof(uint32_t) +
         walk_.capacity() * sizeof(WalkNode) + leaf_.capacity() * sizeof(float) + depth_.capacity() * sizeof(uint32_t) +
         groups_.capacity() * sizeof(int32_t) + cat_sets_.capacity() * sizeof(CatSet) +
         cat_words_.capacity() * sizeof(uint32_t) + base_margin_.capacity() * sizeof(float);
}

void CompiledForest::PredictMargin(const float* row, float* out) const {
  for (int g = 0; g < num_groups_; ++g) out[g] = base_margin_[static_cast<size_t>(g)];
  // Several trees walked in lockstep: one tree's walk is a chain of dependent loads, so a lone row would
  // wait on memory at every step; independent chains overlap. Leaves loop on themselves, so a shallower
  // tree simply stays put while the deepest of its group finishes. Leaves are added in tree order, as the
  // batch path and XGBoost do: bit-identical margins.
  constexpr size_t kTrees = 8;
  const size_t trees = roots_.size();
  size_t t = 0;
  for (; t + kTrees <= trees; t += kTrees) {
    uint32_t at[kTrees];
    uint32_t depth = 0;
    for (size_t k = 0; k < kTrees; ++k) {
      at[k] = roots_[t + k];
      depth = std::max(depth, depth_[t + k]);
    }
    for (uint32_t d = 0; d < depth; ++d) {
      for (size_t k = 0; k < kTrees; ++k) at[k] = Step(at[k], row);
    }
    for (size_t k = 0; k < kTrees; ++k) out[groups_[t + k]] += leaf_[at[k]];
  }
  for (; t < trees; ++t) {
    uint32_t at = roots_[t];
    for (uint32_t d = 0; d < depth_[t]; ++d) at = Step(at, row);  // branch-free walk of the tree's full depth
    out[groups_[t]] += leaf_[at];
  }
}

void CompiledForest::PredictMarginBatch(const float* rows, size_t n, size_t stride, float* out) const {
  const auto groups = static_cast<size_t>(num_groups_);
  constexpr size_t kBlock = 64;  // rows per block: their margins and the current tree stay in L1
  constexpr size_t kLanes = 8;   // rows walking one tree in lockstep: independent loads overlap
  for (size_t b = 0; b < n; b += kBlock) {
    const size_t m = std::min(kBlock, n - b);
    const size_t full = m - m % kLanes;  // rows walked kLanes at a time; the rest one by one below
    const float* block = rows + b * stride;
    float* o = out + b * groups;
    for (size_t r = 0; r < full; ++r) {
      for (size_t g = 0; g < groups; ++g) o[r * groups + g] = base_margin_[g];
    }
    for (size_t t = 0; t < roots_.size() && full > 0; ++t) {
      const auto g = static_cast<size_t>(groups_[t]);
      const uint32_t root = roots_[t];
      const uint32_t depth = depth_[t];
      for (size_t r = 0; r < full; r += kLanes) {
        uint32_t at[kLanes];
        for (size_t k = 0; k < kLanes; ++k) at[k] = root;
        // Every lane takes the tree's full depth; a lane at a leaf stays there.
        for (uint32_t d = 0; d < depth; ++d) {
          for (size_t k = 0; k < kLanes; ++k) at[k] = Step(at[k], block + (r + k) * stride);
        }
        // Added per row in tree order, exactly as PredictMargin does: bit-identical margins.
        for (size_t k = 0; k < kLanes; ++k) o[(r + k) * groups + g] += leaf_[at[k]];
      }
    }
    for (size_t r = full; r < m; ++r) PredictMargin(block + r * stride, o + r * groups);
  }
}

void CompiledForest::StagedMargins(const float* row, size_t trees_per_stage, float* out) const {
  const auto groups = static_cast<size_t>(num_groups_);
  std::vector<float> acc(base_margin_.begin(), base_margin_.begin() + static_cast<std::ptrdiff_t>(groups));
  for (size_t t = 0; t < roots_.size(); ++t) {
    acc[static_cast<size_t>(groups_[t])] += LeafValue(roots_[t], row);
    if ((t + 1) % trees_per_stage == 0) {
      std::copy(acc.begin(), acc.end(), out + ((t + 1) / trees_per_stage - 1) * groups);
    }
  }
}

void CompiledForest::ApplyTransform(float* out) const {
  switch (transform_) {
    case Transform::kIdentity: break;
    case Transform::kExp:
      for (int g = 0; g < num_groups_; ++g) out[g] = std::exp(out[g]);
      break;
    case Transform::kSigmoid:
      for (int g = 0; g < num_groups_; ++g) out[g] = Sigmoid(out[g]);
      break;
    case Transform::kSoftmax: {
      float wmax = out[0];
      for (int g = 1; g < num_groups_; ++g) wmax = std::max(wmax, out[g]);
      float sum = 0.0f;
      for (int g = 0; g < num_groups_; ++g) {
        out[g] = std::exp(out[g] - wmax);
        sum += out[g];
      }
      for (int g = 0; g < num_groups_; ++g) out[g] /= sum;
      break;
    }
  }
}

void CompiledForest::Predict(const float* row, float* out) const {
  PredictMargin(row, out);
  ApplyTransform(out);
}

void CompiledForest::PredictBatch(const float* rows, size_t n, size_t stride, float* out) const {
  PredictMarginBatch(rows, n, stride, out);
  for (size_t i = 0; i < n; ++i) ApplyTransform(out + i * static_cast<size_t>(num_groups_));
}

}  // namespace lathe::ml
