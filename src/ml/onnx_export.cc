#include "ml/onnx_export.h"

#include <onnx/onnx_pb.h>  // defines ONNX_API, then includes onnx-ml.pb.h (ONNX_ML=1)

#include <algorithm>
#include <cmath>
#include <limits>
#include <set>
#include <unordered_set>

namespace lathe::ml {
namespace {

using onnx::AttributeProto;
using onnx::TensorProto;

constexpr const char* kMl = "ai.onnx.ml";
constexpr int kOpset = 13;
constexpr int kMlOpset = 3;
constexpr int64_t kIrVersion = 8;

// Builds an onnx.GraphProto: unique value names, initializers and nodes, with one-call helpers per operator.
class GraphBuilder {
 public:
  explicit GraphBuilder(onnx::GraphProto* g) : g_(g) {}

  // Reserves `want` made into a unique C identifier (for inputs and outputs).
  std::string Reserve(const std::string& want) {
    std::string base;
    for (char c : want) base += (std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '_') ? c : '_';
    if (base.empty() || (std::isdigit(static_cast<unsigned char>(base[0])) != 0)) base = "_" + base;
    std::string name = base;
    for (int k = 1; used_.count(name) != 0; ++k) name = base + "_" + std::to_string(k);
    used_.insert(name);
    return name;
  }
  // A fresh internal value name.
  std::string Fresh() {
    std::string name;
    do {
      name = "lathe_v" + std::to_string(next_++);
    } while (used_.count(name) != 0);
    used_.insert(name);
    return name;
  }

  onnx::NodeProto* Node(const std::string& op, const std::vector<std::string>& inputs,
                        const std::vector<std::string>& outputs, const char* domain = "") {
    onnx::NodeProto* n = g_->add_node();
    n->set_op_type(op);
    if (*domain != 0) n->set_domain(domain);
    n->set_name("lathe_n" + std::to_string(g_->node_size()));
    for (const auto& i : inputs) n->add_input(i);
    for (const auto& o : outputs) n->add_output(o);
    return n;
  }
  // One-output node; returns the output's name.
  std::string Op(const std::string& op, const std::vector<std::string>& inputs, onnx::NodeProto** node = nullptr,
                 const char* domain = "") {
    std::string out = Fresh();
    onnx::NodeProto* n = Node(op, inputs, {out}, domain);
    if (node != nullptr) *node = n;
    return out;
  }
  std::string Cast(const std::string& x, int to) {
    onnx::NodeProto* n = nullptr;
    std::string out = Op("Cast", {x}, &n);
    AttrInt(n, "to", to);
    return out;
  }

  std::string ConstDouble(const std::vector<double>& v, const std::vector<int64_t>& dims) {
    TensorProto* t = Init(TensorProto::DOUBLE, dims);
    for (double x : v) t->add_double_data(x);
    return t->name();
  }
  std::string ConstFloat(const std::vector<float>& v, const std::vector<int64_t>& dims) {
    TensorProto* t = Init(TensorProto::FLOAT, dims);
    for (float x : v) t->add_float_data(x);
    return t->name();
  }
  std::string ConstInt64(const std::vector<int64_t>& v, const std::vector<int64_t>& dims) {
    TensorProto* t = Init(TensorProto::INT64, dims);
    for (int64_t x : v) t->add_int64_data(x);
    return t->name();
  }
  std::string ScalarDouble(double v) { return ConstDouble({v}, {}); }

  static AttributeProto* Attr(onnx::NodeProto* n, const char* name, AttributeProto::AttributeType type) {
    AttributeProto* a = n->add_attribute();
    a->set_name(name);
    a->set_type(type);
    return a;
  }
  static void AttrInt(onnx::NodeProto* n, const char* name, int64_t v) { Attr(n, name, AttributeProto::INT)->set_i(v); }
  static void AttrFloat(onnx::NodeProto* n, const char* name, float v) {
    Attr(n, name, AttributeProto::FLOAT)->set_f(v);
  }
  static void AttrString(onnx::NodeProto* n, const char* name, const std::string& v) {
    Attr(n, name, AttributeProto::STRING)->set_s(v);
  }

  static void ValueInfo(onnx::ValueInfoProto* vi, const std::string& name, int elem_type,
                        const std::vector<int64_t>& dims) {  // -1 = the batch dimension "N"
    vi->set_name(name);
    auto* tt = vi->mutable_type()->mutable_tensor_type();
    tt->set_elem_type(elem_type);
    auto* shape = tt->mutable_shape();
    for (int64_t d : dims) {
      auto* dim = shape->add_dim();
      if (d < 0) {
        dim->set_dim_param("N");
      } else {
        dim->set_dim_value(d);
      }
    }
  }

 private:
  TensorProto* Init(int type, const std::vector<int64_t>& dims) {
    TensorProto* t = g_->add_initializer();
    t->set_name(Fresh());
    t->set_data_type(type);
    for (int64_t d : dims) t->add_dims(d);
    return t;
  }

  onnx::GraphProto* g_;
  std::unordered_set<std::string> used_;
  int64_t next_ = 0;
};

Status Unsupported(const std::string& why) { return Status::FailedPrecondition("ONNX export: " + why); }

// The calendar features of a datetime input (seconds since the epoch, double [N,1]): float [N,3] of epoch
// seconds, month (1-12) and day of week (0 = Monday), as DatetimeFeatures computes them.
std::string DatetimeGraph(GraphBuilder& b, const std::string& secs) {
  auto c = [&](double v) { return b.ScalarDouble(v); };
  auto floor_div = [&](const std::string& x, double d) { return b.Op("Floor", {b.Op("Div", {x, c(d)})}); };
  const std::string days = floor_div(secs, 86400);
  // Day of week: floor-mod(days + 3, 7) (1970-01-01 was a Thursday).
  const std::string a = b.Op("Add", {days, c(3)});
  const std::string dow = b.Op("Sub", {a, b.Op("Mul", {floor_div(a, 7), c(7)})});
  // Month: Howard Hinnant's civil_from_days, in exact double arithmetic on integers.
  const std::string z = b.Op("Add", {days, c(719468)});
  const std::string era = floor_div(z, 146097);
  const std::string doe = b.Op("Sub", {z, b.Op("Mul", {era, c(146097)})});
  std::string t = b.Op("Sub", {doe, floor_div(doe, 1460)});
  t = b.Op("Add", {t, floor_div(doe, 36524)});
  t = b.Op("Sub", {t, floor_div(doe, 146096)});
  const std::string yoe = floor_div(t, 365);
  std::string days_before = b.Op("Mul", {yoe, c(365)});
  days_before = b.Op("Add", {days_before, floor_div(yoe, 4)});
  days_before = b.Op("Sub", {days_before, floor_div(yoe, 100)});
  const std::string doy = b.Op("Sub", {doe, days_before});
  const std::string mp = floor_div(b.Op("Add", {b.Op("Mul", {doy, c(5)}), c(2)}), 153);
  const std::string month =
      b.Op("Where", {b.Op("Less", {mp, c(10)}), b.Op("Add", {mp, c(3)}), b.Op("Sub", {mp, c(9)})});
  onnx::NodeProto* concat = nullptr;
  const std::string out = b.Op("Concat", {b.Cast(secs, TensorProto::FLOAT), b.Cast(month, TensorProto::FLOAT),
                                          b.Cast(dow, TensorProto::FLOAT)},
                               &concat);
  GraphBuilder::AttrInt(concat, "axis", 1);
  return out;
}

// The trees as one TreeEnsembleRegressor: margins float [N, groups] without the transform.
class TreeWriter {
 public:
  TreeWriter(const CompiledForest& forest, const std::vector<float>& weights, const std::vector<int64_t>& vocab)
      : forest_(forest), weights_(weights), vocab_(vocab) {}

  Result<std::string> Write(GraphBuilder& b, const std::string& x) {
    RETURN_IF_ERROR(CountNodes());
    onnx::NodeProto* n = nullptr;
    const std::string out = b.Op("TreeEnsembleRegressor", {x}, &n, kMl);
    for (size_t t = 0; t < forest_.num_trees(); ++t) EmitTree(t);
    auto ints = [&](const char* name, const std::vector<int64_t>& v) {
      auto* a = GraphBuilder::Attr(n, name, AttributeProto::INTS);
      for (int64_t i : v) a->add_ints(i);
    };
    auto floats = [&](const char* name, const std::vector<float>& v) {
      auto* a = GraphBuilder::Attr(n, name, AttributeProto::FLOATS);
      for (float f : v) a->add_floats(f);
    };
    ints("nodes_treeids", tree_ids_);
    ints("nodes_nodeids", node_ids_);
    ints("nodes_featureids", feature_ids_);
    floats("nodes_values", values_);
    auto* modes = GraphBuilder::Attr(n, "nodes_modes", AttributeProto::STRINGS);
    for (const char* m : modes_) modes->add_strings(m);
    ints("nodes_truenodeids", true_ids_);
    ints("nodes_falsenodeids", false_ids_);
    ints("nodes_missing_value_tracks_true", missing_true_);
    ints("target_treeids", target_tree_);
    ints("target_nodeids", target_node_);
    ints("target_ids", target_id_);
    floats("target_weights", target_weight_);
    std::vector<float> base;
    for (int g = 0; g < forest_.num_groups(); ++g) base.push_back(forest_.BaseMargin(g));
    floats("base_values", base);
    GraphBuilder::AttrInt(n, "n_targets", forest_.num_groups());
    GraphBuilder::AttrString(n, "aggregate_function", "SUM");
    GraphBuilder::AttrString(n, "post_transform", "NONE");
    return out;
  }

 private:
  // How a categorical split is written: a chain of equality tests over `codes`; a hit goes to `hit` (a
  // child index), everything else to the other child.
  struct Chain {
    std::vector<uint32_t> codes;
    bool hit_right = true;
  };
  Chain ChainOf(const CompiledForest::NodeView& v) const {
    Chain c;
    const int64_t n_codes = vocab_[static_cast<size_t>(v.feature)];
    const bool within = n_codes > 0 && (v.categories.empty() || v.categories.back() < n_codes);
    if (within && static_cast<int64_t>(v.categories.size()) * 2 > n_codes) {
      // The complement is shorter: every code the input can take that is not in the set goes left.
      std::set<uint32_t> in(v.categories.begin(), v.categories.end());
      for (int64_t k = 0; k < n_codes; ++k) {
        if (in.count(static_cast<uint32_t>(k)) == 0) c.codes.push_back(static_cast<uint32_t>(k));
      }
      c.hit_right = false;
    } else {
      c.codes = v.categories;
    }
    return c;
  }

  // Counts the ONNX nodes the expansion produces, bottom up, before anything is built.
  Status CountNodes() {
    double total = 0;
    for (size_t t = 0; t < forest_.num_trees(); ++t) {
      const auto nodes = forest_.TreeNodes(t);
      std::vector<double> size(nodes.size(), 1);
      for (size_t i = nodes.size(); i-- > 0;) {  // preorder: children come after their parent
        const auto& v = nodes[i];
        if (v.feature < 0) continue;
        if (!v.categorical) {
          size[i] = 1 + size[v.left] + size[v.right];
          continue;
        }
        const Chain c = ChainOf(v);
        const double hit = size[c.hit_right ? v.right : v.left], miss = size[c.hit_right ? v.left : v.right];
        const auto k = static_cast<double>(c.codes.size());
        const double guard = c.hit_right != v.default_left ? 1 + hit : 0;  // see EmitTree
        size[i] = c.codes.empty() ? 1 + hit + miss : guard + k + k * hit + miss;
      }
      total += size[0];
      if (total > static_cast<double>(kOnnxMaxTreeNodes)) {
        return Unsupported("the model's categorical splits would expand to more than " +
                           std::to_string(kOnnxMaxTreeNodes) + " tree nodes");
      }
    }
    return Status::Ok();
  }

  int64_t Add(int64_t tree, int feature, float value, const char* mode, int64_t yes, int64_t no, bool missing_yes) {
    const auto id = static_cast<int64_t>(node_ids_.size()) - tree_base_;
    tree_ids_.push_back(tree);
    node_ids_.push_back(id);
    feature_ids_.push_back(feature);
    values_.push_back(value);
    modes_.push_back(mode);
    true_ids_.push_back(yes);
    false_ids_.push_back(no);
    missing_true_.push_back(missing_yes ? 1 : 0);
    return id;
  }

  // Emits tree t with nodes numbered in the order they are created; children are patched in once their ids
  // are known (an explicit stack: a tree can be deep).
  void EmitTree(size_t t) {
    const auto nodes = forest_.TreeNodes(t);
    const float weight = weights_.empty() ? 1.0f : weights_[t];
    const auto tree = static_cast<int64_t>(t);
    tree_base_ = static_cast<int64_t>(node_ids_.size());
    struct Work {
      uint32_t src;
      int64_t parent;  // global attribute index of the parent, -1 for the root
      bool as_true;    // which of the parent's links to patch
    };
    std::vector<Work> stack{{0, -1, false}};
    while (!stack.empty()) {
      const Work w = stack.back();
      stack.pop_back();
      const auto& v = nodes[w.src];
      const auto self = static_cast<int64_t>(node_ids_.size());  // global index of the node about to be added
      if (w.parent >= 0) (w.as_true ? true_ids_ : false_ids_)[static_cast<size_t>(w.parent)] = self - tree_base_;
      if (v.feature < 0) {
        const int64_t id = Add(tree, 0, 0, "LEAF", 0, 0, false);
        target_tree_.push_back(tree);
        target_node_.push_back(id);
        target_id_.push_back(forest_.TreeGroup(t));
        target_weight_.push_back(weights_.empty() ? v.value : v.value * weight);
        continue;
      }
      if (!v.categorical) {
        Add(tree, v.feature, v.value, "BRANCH_LT", 0, 0, v.default_left);  // true = value < threshold = left
        stack.push_back({v.right, self, false});
        stack.push_back({v.left, self, true});
        continue;
      }
      const Chain c = ChainOf(v);
      const uint32_t hit = c.hit_right ? v.right : v.left, miss = c.hit_right ? v.left : v.right;
      const bool missing_hits = c.hit_right != v.default_left;  // NaN follows the default branch
      if (c.codes.empty()) {
        // Every code the input can take goes one way: only NaN (the default) can go elsewhere.
        Add(tree, v.feature, std::numeric_limits<float>::infinity(), "BRANCH_LT", 0, 0, !missing_hits);
        stack.push_back({hit, self, false});
        stack.push_back({miss, self, true});
        continue;
      }
      // The equality chain never sees a missing value: ONNX Runtime merges runs of BRANCH_EQ nodes on one feature
      // whose true branches are equal leaves into one set-membership test that keeps only the first node's
      // missing flag, so a chain node may not carry one. When NaN must take the hit side, a guard routes it
      // there first (x < +inf is false only for NaN: the inputs are codes or NaN).
      int64_t guard = -1;
      if (missing_hits) {
        guard = static_cast<int64_t>(node_ids_.size());
        Add(tree, v.feature, std::numeric_limits<float>::infinity(), "BRANCH_LT", 0, 0, false);
        stack.push_back({hit, guard, false});
      }
      for (size_t k = 0; k < c.codes.size(); ++k) {
        const auto link = static_cast<int64_t>(node_ids_.size());
        Add(tree, v.feature, static_cast<float>(c.codes[k]), "BRANCH_EQ", 0, 0, false);
        if (k > 0) false_ids_[static_cast<size_t>(link - 1)] = link - tree_base_;
        if (k == 0 && guard >= 0) true_ids_[static_cast<size_t>(guard)] = link - tree_base_;
        stack.push_back({hit, link, true});  // one copy of the hit side per code
      }
      stack.push_back({miss, static_cast<int64_t>(node_ids_.size()) - 1, false});
    }
  }

  const CompiledForest& forest_;
  const std::vector<float>& weights_;
  const std::vector<int64_t>& vocab_;  // per feature: codes a categorical input can take (0 = not categorical)
  int64_t tree_base_ = 0;
  std::vector<int64_t> tree_ids_, node_ids_, feature_ids_, true_ids_, false_ids_, missing_true_;
  std::vector<float> values_;
  std::vector<const char*> modes_;
  std::vector<int64_t> target_tree_, target_node_, target_id_;
  std::vector<float> target_weight_;
};

// The linear model's margins: float [N, outputs], computed in double like LinearModel::Margin.
Result<std::string> LinearGraph(GraphBuilder& b, const LinearModel& model, const std::string& x) {
  const Json j = model.ToJson();
  const auto& terms = j.at("terms");
  const auto& coef = j.at("coef");
  const auto& intercept = j.at("intercept");
  const int64_t k = model.outputs();
  const size_t p = terms.size();
  const std::string xd = b.Cast(x, TensorProto::DOUBLE);
  std::vector<std::string> parts;
  for (int kind = 0; kind <= 2; ++kind) {
    std::vector<int64_t> idx;
    std::vector<double> mean, scale, code, w;
    std::vector<size_t> cols;
    for (size_t t = 0; t < p; ++t) {
      if (terms[t][1].get<int>() != kind) continue;
      cols.push_back(t);
      idx.push_back(terms[t][0].get<int64_t>());
      code.push_back(static_cast<double>(terms[t][2].get<float>()));
      mean.push_back(terms[t][3].get<double>());
      scale.push_back(terms[t][4].get<double>());
    }
    if (cols.empty()) continue;
    const auto n_terms = static_cast<int64_t>(cols.size());
    for (size_t t : cols) {
      for (int64_t o = 0; o < k; ++o) w.push_back(coef[static_cast<size_t>(o) * p + t].get<double>());
    }
    onnx::NodeProto* gather = nullptr;
    const std::string g = b.Op("Gather", {xd, b.ConstInt64(idx, {n_terms})}, &gather);
    GraphBuilder::AttrInt(gather, "axis", 1);
    std::string z;
    if (kind == 0) {
      const std::string m = b.ConstDouble(mean, {n_terms});
      const std::string imputed = b.Op("Where", {b.Op("IsNaN", {g}), m, g});
      z = b.Op("Mul", {b.Op("Sub", {imputed, m}), b.ConstDouble(scale, {n_terms})});
    } else if (kind == 1) {
      z = b.Cast(b.Op("IsNaN", {g}), TensorProto::DOUBLE);
    } else {
      z = b.Cast(b.Op("Equal", {g, b.ConstDouble(code, {n_terms})}), TensorProto::DOUBLE);
    }
    parts.push_back(b.Op("MatMul", {z, b.ConstDouble(w, {n_terms, k})}));
  }
  std::string sum = b.ConstDouble(intercept.get<std::vector<double>>(), {k});
  for (const auto& part : parts) sum = b.Op("Add", {part, sum});
  if (parts.empty()) {  // an intercept-only model still needs one row per input row: add a zero column
    onnx::NodeProto* gather = nullptr;
    const std::string first = b.Op("Gather", {xd, b.ConstInt64({0}, {1})}, &gather);
    GraphBuilder::AttrInt(gather, "axis", 1);
    const std::string zeros = b.Op("Mul", {b.Cast(b.Op("IsNaN", {first}), TensorProto::DOUBLE), b.ScalarDouble(0)});
    sum = b.Op("Add", {zeros, sum});
  }
  return b.Cast(sum, TensorProto::FLOAT);
}

}  // namespace

Result<std::string> ExportOnnx(const Predictor& model, const OnnxExportOptions& options) {
  try {
    if (model.unsupervised()) {
      return Unsupported("ONNX export covers supervised models (trees, linear models and their blends); a " +
                         model.Task() + " model is not one");
    }
    if (!model.direct_input()) {
      return Unsupported("the model replays recipe steps on its input, which ONNX cannot express; export a model "
                         "trained on a dataset version without a recipe");
    }
    const FeaturePipeline& pipe = model.pipeline();
    const Task task = pipe.task();
    onnx::ModelProto proto;
    proto.set_ir_version(kIrVersion);
    proto.set_producer_name("lathe");
    proto.set_producer_version(options.producer_version);
    proto.set_domain("ai.lathe");
    proto.set_doc_string("lathe model " + options.model_name + " version " + options.model_version);
    auto* op = proto.add_opset_import();
    op->set_domain("");
    op->set_version(kOpset);
    op = proto.add_opset_import();
    op->set_domain(kMl);
    op->set_version(kMlOpset);
    onnx::GraphProto* graph = proto.mutable_graph();
    graph->set_name(options.model_name.empty() ? "lathe_model" : options.model_name);
    GraphBuilder b(graph);

    // Output names first, so no input can take them.
    const bool numeric = HasNumericTarget(task);  // regression value or ranking score
    const std::string out_label = numeric ? "" : b.Reserve("label");
    const std::string out_probs = numeric ? "" : b.Reserve("probabilities");
    const std::string out_pred = numeric ? b.Reserve("prediction") : "";

    // Inputs -> feature pieces, in feature order.
    std::vector<const FeaturePipeline::InputColumn*> inputs;
    for (const auto& in : pipe.inputs()) inputs.push_back(&in);
    std::sort(inputs.begin(), inputs.end(), [](auto* a, auto* c) { return a->first_feature < c->first_feature; });
    std::vector<int64_t> vocab(pipe.NumFeatures(), 0);
    std::vector<std::string> pieces;
    Json input_map = Json::array();
    int next_feature = 0;
    for (const auto* in : inputs) {
      if (in->first_feature != next_feature) return Status::Internal("ONNX export: the pipeline's features have a gap");
      const std::string name = b.Reserve(in->name);
      const bool is_string = in->type == ColumnType::kString;
      GraphBuilder::ValueInfo(graph->add_input(), name, is_string ? TensorProto::STRING : TensorProto::DOUBLE,
                              {-1, 1});
      input_map.push_back({{"input", name}, {"column", in->name}, {"type", ColumnTypeName(in->type)}});
      switch (in->type) {
        case ColumnType::kString: {
          onnx::NodeProto* n = nullptr;
          pieces.push_back(b.Op("LabelEncoder", {name}, &n, kMl));
          auto* keys = GraphBuilder::Attr(n, "keys_strings", AttributeProto::STRINGS);
          auto* values = GraphBuilder::Attr(n, "values_floats", AttributeProto::FLOATS);
          std::vector<std::pair<std::string, int32_t>> codes(in->category_codes.begin(), in->category_codes.end());
          std::sort(codes.begin(), codes.end());
          for (const auto& [value, code] : codes) {
            keys->add_strings(value);
            values->add_floats(static_cast<float>(code));
          }
          GraphBuilder::AttrFloat(n, "default_float", std::numeric_limits<float>::quiet_NaN());
          vocab[static_cast<size_t>(next_feature)] =
              static_cast<int64_t>(in->categories.size()) + (in->has_other ? 1 : 0);
          next_feature += 1;
          break;
        }
        case ColumnType::kDatetime:
          pieces.push_back(DatetimeGraph(b, name));
          next_feature += FeaturePipeline::kDatetimeFeatures;
          break;
        default:
          pieces.push_back(b.Cast(name, TensorProto::FLOAT));
          next_feature += 1;
          break;
      }
    }
    if (static_cast<size_t>(next_feature) != pipe.NumFeatures()) {
      return Status::Internal("ONNX export: the pipeline's inputs do not cover its features");
    }
    if (pieces.empty()) return Unsupported("the model has no input columns");
    std::string x = pieces[0];
    if (pieces.size() > 1) {
      onnx::NodeProto* concat = nullptr;
      x = b.Op("Concat", pieces, &concat);
      GraphBuilder::AttrInt(concat, "axis", 1);
    }
    // Infinities are missing values, as in the pipeline.
    x = b.Op("Where", {b.Op("IsInf", {x}), b.ConstFloat({std::numeric_limits<float>::quiet_NaN()}, {}), x});

    // Margins.
    const CompiledForest* forest = model.forest();
    const LinearModel* linear = model.linear();
    std::string margins;
    if (forest != nullptr) {
      TreeWriter writer(*forest, model.tree_weights(), vocab);
      ASSIGN_OR_RETURN(margins, writer.Write(b, x));
    }
    if (linear != nullptr) {
      ASSIGN_OR_RETURN(std::string lin, LinearGraph(b, *linear, x));
      margins = margins.empty() ? lin : b.Op("Add", {margins, lin});
    }
    if (margins.empty()) return Unsupported("the model has neither trees nor a linear part");
    const std::string transform =
        forest != nullptr ? forest->TransformName()
        : model.exp_link() ? "exp"
                           : (task == Task::kBinary ? "sigmoid" : task == Task::kMulticlass ? "softmax" : "identity");
    const auto classes = static_cast<int64_t>(pipe.NumClasses());

    // Outputs.
    if (numeric) {
      const std::string y = transform == "exp" ? b.Op("Exp", {margins}) : margins;
      b.Node("Identity", {y}, {out_pred});
      GraphBuilder::ValueInfo(graph->add_output(), out_pred, TensorProto::FLOAT, {-1, 1});
    } else {
      if (task == Task::kBinary) {
        const std::string p = b.Op("Sigmoid", {margins});
        onnx::NodeProto* concat = b.Node("Concat", {b.Op("Sub", {b.ConstFloat({1.0f}, {}), p}), p}, {out_probs});
        GraphBuilder::AttrInt(concat, "axis", 1);
      } else {
        onnx::NodeProto* sm = b.Node("Softmax", {margins}, {out_probs});
        GraphBuilder::AttrInt(sm, "axis", 1);
      }
      onnx::NodeProto* am = nullptr;
      const std::string index = b.Op("ArgMax", {out_probs}, &am);
      GraphBuilder::AttrInt(am, "axis", 1);
      GraphBuilder::AttrInt(am, "keepdims", 0);
      onnx::NodeProto* le = b.Node("LabelEncoder", {index}, {out_label}, kMl);
      auto* keys = GraphBuilder::Attr(le, "keys_int64s", AttributeProto::INTS);
      auto* values = GraphBuilder::Attr(le, "values_strings", AttributeProto::STRINGS);
      for (int64_t c = 0; c < classes; ++c) {
        keys->add_ints(c);
        values->add_strings(pipe.label_keys()[static_cast<size_t>(c)]);
      }
      GraphBuilder::ValueInfo(graph->add_output(), out_label, TensorProto::STRING, {-1});
      GraphBuilder::ValueInfo(graph->add_output(), out_probs, TensorProto::FLOAT, {-1, classes});
    }

    auto meta = [&](const std::string& key, const std::string& value) {
      auto* m = proto.add_metadata_props();
      m->set_key(key);
      m->set_value(value);
    };
    meta("lathe.model", options.model_name);
    meta("lathe.version", options.model_version);
    meta("lathe.task", TaskName(task));
    meta("lathe.learner", model.meta().value("learner", std::string()));
    meta("lathe.inputs", input_map.dump());
    if (!numeric) meta("lathe.labels", Json(pipe.labels()).dump());
    std::string bytes;
    if (!proto.SerializeToString(&bytes)) return Status::Internal("ONNX export: serializing the model failed");
    return bytes;
  } catch (const std::bad_alloc&) {
    return Status::ResourceExhausted("out of memory writing the ONNX model");
  } catch (const std::exception& e) {
    return Status::Internal(std::string("ONNX export: ") + e.what());
  }
}

}  // namespace lathe::ml
