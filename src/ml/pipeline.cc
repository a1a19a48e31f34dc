#include "ml/pipeline.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <set>

#include "common/clock.h"

namespace lathe::ml {
namespace {

constexpr float kMissing = kMissingFeature;
constexpr int kPipelineFormatVersion = 1;

std::string FieldName(std::string_view prefix, const std::string& name) {
  if (prefix.empty()) return name;
  std::string f(prefix);
  f += '.';
  f += name;
  return f;
}

Status FieldError(std::string field, const std::string& message) {
  return Status::InvalidArgument(field + ": " + message).WithDetail(ErrorDetail::Field(field, message));
}


int64_t FloorDiv(int64_t a, int64_t b) {
  int64_t q = a / b;
  if ((a % b != 0) && ((a < 0) != (b < 0))) --q;
  return q;
}

bool IsLeap(int64_t y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }
int DaysInMonth(int64_t y, int64_t m) {
  static constexpr int kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  return m == 2 && IsLeap(y) ? 29 : kDays[m - 1];
}

// Reads exactly `n` digits at text[*pos].
bool ReadDigits(std::string_view text, size_t* pos, int n, int64_t* out) {
  if (*pos + static_cast<size_t>(n) > text.size()) return false;
  int64_t v = 0;
  for (int i = 0; i < n; ++i) {
    const char c = text[*pos + static_cast<size_t>(i)];
    if (c < '0' || c > '9') return false;
    v = v * 10 + (c - '0');
  }
  *pos += static_cast<size_t>(n);
  *out = v;
  return true;
}

std::string LabelKey(const Json& label) {
  if (label.is_string()) return label.get<std::string>();
  return label.dump();
}

bool IsPositiveName(const std::string& key) {
  std::string lower;
  for (char c : key) lower += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return lower == "1" || lower == "true" || lower == "yes" || lower == "1.0";
}

const char* kTypeKeys[] = {"integer", "float", "boolean", "string", "datetime"};

}  // namespace

const char* TaskName(Task task) {
  switch (task) {
    case Task::kBinary: return "binary";
    case Task::kMulticlass: return "multiclass";
    case Task::kRegression: return "regression";
    case Task::kRanking: return "ranking";
    case Task::kClustering: return "clustering";
    case Task::kDecomposition: return "decomposition";
    case Task::kAnomaly: return "anomaly";
  }
  return "regression";
}

Result<Task> ParseTask(std::string_view name, const std::string& field) {
  if (name == "binary") return Task::kBinary;
  if (name == "multiclass") return Task::kMulticlass;
  if (name == "regression") return Task::kRegression;
  if (name == "ranking") return Task::kRanking;
  if (name == "clustering") return Task::kClustering;
  if (name == "decomposition") return Task::kDecomposition;
  if (name == "anomaly") return Task::kAnomaly;
  return FieldError(field, "unknown task '" + std::string(name) +
                               "'; expected binary, multiclass, regression, ranking, clustering, decomposition or "
                               "anomaly");
}

Result<int64_t> ParseIsoDatetimeMicros(std::string_view text) {
  auto bad = [&]() {
    std::string msg(1, '\'');
    msg.append(text.substr(0, 64));
    msg.append("' is not an ISO 8601 date/time (YYYY-MM-DD[THH:MM[:SS[.ffffff]]][Z|+HH:MM])");
    return Status::InvalidArgument(std::move(msg));
  };
  size_t pos = 0;
  int64_t y = 0, mo = 0, d = 0, h = 0, mi = 0, s = 0, frac_us = 0;
  if (!ReadDigits(text, &pos, 4, &y) || pos >= text.size() || text[pos++] != '-' ||
      !ReadDigits(text, &pos, 2, &mo) || pos >= text.size() || text[pos++] != '-' ||
      !ReadDigits(text, &pos, 2, &d)) {
    return bad();
  }
  if (mo < 1 || mo > 12 || d < 1 || d > DaysInMonth(y, mo)) return bad();
  int64_t offset_s = 0;
  if (pos < text.size()) {
    if (text[pos] != 'T' && text[pos] != 't' && text[pos] != ' ') return bad();
    ++pos;
    if (!ReadDigits(text, &pos, 2, &h) || pos >= text.size() || text[pos++] != ':' ||
        !ReadDigits(text, &pos, 2, &mi)) {
      return bad();
    }
    if (pos < text.size() && text[pos] == ':') {
      ++pos;
      if (!ReadDigits(text, &pos, 2, &s)) return bad();
      if (pos < text.size() && (text[pos] == '.' || text[pos] == ',')) {
        ++pos;
        int digits = 0;
        int64_t scale = 100000;
        while (pos < text.size() && text[pos] >= '0' && text[pos] <= '9') {
          if (digits < 6) {
            frac_us += (text[pos] - '0') * scale;
            scale /= 10;
          }
          ++digits;
          ++pos;
        }
        if (digits == 0 || digits > 9) return bad();
      }
    }
    if (h > 23 || mi > 59 || s > 59) return bad();
    if (pos < text.size()) {
      const char z = text[pos];
      if (z == 'Z' || z == 'z') {
        ++pos;
      } else if (z == '+' || z == '-') {
        ++pos;
        int64_t oh = 0, om = 0;
        if (!ReadDigits(text, &pos, 2, &oh)) return bad();
        if (pos < text.size() && text[pos] == ':') ++pos;
        if (!ReadDigits(text, &pos, 2, &om)) return bad();
        if (oh > 23 || om > 59) return bad();
        offset_s = (oh * 3600 + om * 60) * (z == '+' ? 1 : -1);
      } else {
        return bad();
      }
    }
    if (pos != text.size()) return bad();
  }
  const int64_t days = DaysFromCivil(y, static_cast<unsigned>(mo), static_cast<unsigned>(d));
  const int64_t secs = days * 86400 + h * 3600 + mi * 60 + s - offset_s;
  return secs * 1000000 + frac_us;
}

void DatetimeFeatures(int64_t micros, float* out) {
  const int64_t secs = FloorDiv(micros, 1000000);
  const int64_t days = FloorDiv(secs, 86400);
  int64_t y = 0;
  unsigned m = 0, d = 0;
  CivilFromDays(days, &y, &m, &d);
  out[0] = static_cast<float>(static_cast<double>(micros) / 1e6);
  out[1] = static_cast<float>(m);
  out[2] = static_cast<float>(((days % 7) + 7 + 3) % 7);  // 1970-01-01 was a Thursday (3)
}

// ---------------------------------------------------------------------------------------------------------
// Fitting

Result<FeaturePipeline> FeaturePipeline::Fit(const Table& table, const std::string& target, Task task,
                                             const std::vector<std::string>& exclude) {
  const int target_idx = table.FindColumn(target);
  if (target_idx < 0 && (IsSupervised(task) || !target.empty())) {
    return FieldError("target", "column '" + target + "' does not exist in the dataset");
  }
  for (const Column& c : table.columns) {
    if (c.size() != static_cast<size_t>(table.num_rows)) {
      return Status::InvalidArgument("column '" + c.name + "' has " + std::to_string(c.size()) +
                                     " rows, table has " + std::to_string(table.num_rows));
    }
  }
  FeaturePipeline p;
  p.task_ = task;
  p.target_ = target;
  // Labels (an unsupervised task has none).
  if (IsSupervised(task)) {
    const Column& tc = table.columns[static_cast<size_t>(target_idx)];
    p.target_type_ = tc.type;
    if (HasNumericTarget(task)) {
      if (tc.type != ColumnType::kInt64 && tc.type != ColumnType::kFloat64) {
        return FieldError("target", std::string(TaskName(task)) + " needs a numeric target; column '" + target +
                                        "' is " + ColumnTypeName(tc.type));
      }
    } else {
      std::vector<Json> labels;
      switch (tc.type) {
        case ColumnType::kString: {
          std::vector<uint8_t> used(tc.dict.size(), 0);
          for (size_t r = 0; r < tc.size(); ++r) {
            if (tc.IsValid(r)) {
              const auto code = static_cast<size_t>(tc.codes[r]);
              if (code >= used.size()) return Status::InvalidArgument("column '" + target + "' has a bad code");
              used[code] = 1;
            }
          }
          std::set<std::string> distinct;
          for (size_t i = 0; i < used.size(); ++i) {
            if (used[i]) distinct.insert(tc.dict[i]);
          }
          for (const auto& s : distinct) labels.emplace_back(s);
          break;
        }
        case ColumnType::kInt64: {
          std::set<int64_t> distinct;
          for (size_t r = 0; r < tc.size() && distinct.size() <= kMaxClasses; ++r) {
            if (tc.IsValid(r)) distinct.insert(tc.i64[r]);
          }
          for (int64_t v : distinct) labels.emplace_back(v);
          break;
        }
        case ColumnType::kBool: {
          bool seen[2] = {false, false};
          for (size_t r = 0; r < tc.size(); ++r) {
            if (tc.IsValid(r)) seen[tc.b[r] ? 1 : 0] = true;
          }
          if (seen[0]) labels.emplace_back(false);
          if (seen[1]) labels.emplace_back(true);
          break;
        }
        case ColumnType::kFloat64: {
          std::set<double> distinct;
          for (size_t r = 0; r < tc.size() && distinct.size() <= kMaxClasses; ++r) {
            if (tc.IsValid(r) && !std::isnan(tc.f64[r])) distinct.insert(tc.f64[r]);
          }
          for (double v : distinct) labels.emplace_back(v);
          break;
        }
        case ColumnType::kDatetime:
          return FieldError("target", "column '" + target + "' is a datetime and cannot be a class label");
      }
      if (labels.empty()) return FieldError("target", "column '" + target + "' has no non-missing values");
      if (labels.size() == 1) {
        return FieldError("target", "column '" + target + "' has only one class (" + LabelKey(labels[0]) +
                                        "); classification needs at least two");
      }
      if (task == Task::kBinary && labels.size() > 2) {
        return FieldError("target", "binary classification needs exactly two classes; column '" + target +
                                        "' has " + (labels.size() > kMaxClasses ? "more than " + std::to_string(kMaxClasses)
                                                                                  : std::to_string(labels.size())) +
                                        "; use task multiclass");
      }
      if (labels.size() > kMaxClasses) {
        return FieldError("target", "column '" + target + "' has more than " + std::to_string(kMaxClasses) +
                                        " classes");
      }
      if (task == Task::kBinary) {
        const bool pos0 = IsPositiveName(LabelKey(labels[0]));
        const bool pos1 = IsPositiveName(LabelKey(labels[1]));
        if (pos0 && !pos1) std::swap(labels[0], labels[1]);
      }
      p.labels_ = std::move(labels);
    }
  }

  // Feature columns.
  int next_feature = 0;
  for (size_t ci = 0; ci < table.columns.size(); ++ci) {
    if (static_cast<int>(ci) == target_idx) continue;
    const Column& c = table.columns[ci];
    if (std::find(exclude.begin(), exclude.end(), c.name) != exclude.end()) {
      p.dropped_.push_back({{"name", c.name}, {"reason", "excluded from the features (weight or group column)"}});
      continue;
    }
    int64_t non_missing = 0;
    for (size_t r = 0; r < c.size(); ++r) non_missing += c.IsValid(r) ? 1 : 0;
    if (non_missing == 0) {
      p.dropped_.push_back({{"name", c.name}, {"reason", "all values are missing"}});
      continue;
    }
    InputColumn in;
    in.name = c.name;
    in.type = c.type;
    in.first_feature = next_feature;
    if (c.type == ColumnType::kString) {
      std::vector<int64_t> counts(c.dict.size(), 0);
      for (size_t r = 0; r < c.size(); ++r) {
        if (!c.IsValid(r)) continue;
        const auto code = static_cast<size_t>(c.codes[r]);
        if (code >= counts.size()) return Status::InvalidArgument("column '" + c.name + "' has a bad code");
        ++counts[code];
      }
      // Merge dictionary entries that spell the same value (a dictionary is not required to be unique).
      std::map<std::string_view, int64_t> by_value;
      for (size_t i = 0; i < counts.size(); ++i) {
        if (counts[i] > 0) by_value[c.dict[i]] += counts[i];
      }
      if (non_missing >= kMinRowsForIdentifier && static_cast<int64_t>(by_value.size()) == non_missing) {
        p.dropped_.push_back({{"name", c.name}, {"reason", "identifier: every value is distinct"}});
        continue;
      }
      std::vector<std::pair<std::string_view, int64_t>> freq(by_value.begin(), by_value.end());
      std::stable_sort(freq.begin(), freq.end(), [](const auto& a, const auto& b) { return a.second > b.second; });
      const size_t kept = std::min(freq.size(), kMaxCategories);
      for (size_t i = 0; i < kept; ++i) in.categories.emplace_back(freq[i].first);
      in.has_other = freq.size() > kMaxCategories;
      // Values beyond the cap are recorded so they encode as "other" rather than missing.
      p.inputs_.push_back(std::move(in));
      if (p.inputs_.back().has_other) {
        Json others = Json::array();
        for (size_t i = kept; i < freq.size(); ++i) others.push_back(std::string(freq[i].first));
        p.dropped_.push_back({{"name", c.name},
                              {"reason", "vocabulary capped at " + std::to_string(kMaxCategories) + "; " +
                                             std::to_string(freq.size() - kept) + " rare values share one code"},
                              {"other_values", std::move(others)}});
      }
      next_feature += 1;
      continue;
    }
    next_feature += c.type == ColumnType::kDatetime ? kDatetimeFeatures : 1;
    p.inputs_.push_back(std::move(in));
  }
  if (p.inputs_.empty()) return FieldError("target", "no usable feature columns besides the target");
  RETURN_IF_ERROR(p.Finalize());
  return p;
}

Status FeaturePipeline::Finalize() {
  feature_names_.clear();
  feature_types_.clear();
  input_index_.clear();
  label_keys_.clear();
  label_index_.clear();
  for (size_t i = 0; i < inputs_.size(); ++i) {
    InputColumn& in = inputs_[i];
    if (!input_index_.emplace(in.name, i).second) {
      return Status::InvalidArgument("duplicate feature column '" + in.name + "'");
    }
    if (in.name == target_) return Status::InvalidArgument("the target '" + target_ + "' cannot be a feature");
    in.first_feature = static_cast<int>(feature_names_.size());
    if (in.type == ColumnType::kDatetime) {
      for (const char* suffix : {".epoch_s", ".month", ".day_of_week"}) {
        feature_names_.push_back(in.name + suffix);
        feature_types_.push_back("q");
      }
    } else {
      feature_names_.push_back(in.name);
      feature_types_.push_back(in.type == ColumnType::kString ? "c" : "q");
    }
    in.category_codes.clear();
    if (in.type == ColumnType::kString) {
      for (size_t k = 0; k < in.categories.size(); ++k) {
        if (!in.category_codes.emplace(in.categories[k], static_cast<int32_t>(k)).second) {
          return Status::InvalidArgument("column '" + in.name + "' lists category '" + in.categories[k] + "' twice");
        }
      }
    }
  }
  // "Other" values of capped vocabularies.
  for (const Json& d : dropped_) {
    if (!d.is_object() || !d.contains("other_values")) continue;
    auto name = d.find("name");
    if (name == d.end() || !name->is_string()) continue;
    auto it = input_index_.find(name->get<std::string>());
    if (it == input_index_.end() || !d["other_values"].is_array()) continue;
    InputColumn& in = inputs_[it->second];
    const auto other_code = static_cast<int32_t>(in.categories.size());
    for (const Json& v : d["other_values"]) {
      if (v.is_string()) in.category_codes.emplace(v.get<std::string>(), other_code);
    }
  }
  for (size_t k = 0; k < labels_.size(); ++k) {
    label_keys_.push_back(LabelKey(labels_[k]));
    if (!label_index_.emplace(label_keys_.back(), static_cast<int>(k)).second) {
      return Status::InvalidArgument("duplicate class label '" + label_keys_.back() + "'");
    }
  }
  return Status::Ok();
}

// ---------------------------------------------------------------------------------------------------------
// Serialization

Json FeaturePipeline::ToJson() const {
  Json inputs = Json::array();
  for (const InputColumn& in : inputs_) {
    Json j = {{"name", in.name}, {"type", ColumnTypeName(in.type)}};
    if (in.type == ColumnType::kString) {
      j["categories"] = in.categories;
      j["other"] = in.has_other;
    }
    inputs.push_back(std::move(j));
  }
  Json features = Json::array();
  for (size_t i = 0; i < feature_names_.size(); ++i) {
    features.push_back({{"name", feature_names_[i]}, {"type", feature_types_[i]}});
  }
  Json j = {{"format_version", kPipelineFormatVersion},
            {"task", TaskName(task_)},
            {"target", target_},
            {"target_type", ColumnTypeName(target_type_)},
            {"inputs", std::move(inputs)},
            {"features", std::move(features)},
            {"dropped", dropped_}};
  if (IsClassification(task_)) j["labels"] = labels_;
  return j;
}

Result<FeaturePipeline> FeaturePipeline::FromJson(const Json& j) {
  auto bad = [](const std::string& m) { return Status::InvalidArgument("model pipeline: " + m); };
  if (!j.is_object()) return bad("not a JSON object");
  if (!j.contains("format_version") || !j["format_version"].is_number_integer() ||
      j["format_version"].get<int64_t>() != kPipelineFormatVersion) {
    return bad("unsupported format_version (this build reads " + std::to_string(kPipelineFormatVersion) + ")");
  }
  FeaturePipeline p;
  if (!j.contains("task") || !j["task"].is_string()) return bad("missing task");
  auto task = ParseTask(j["task"].get<std::string>());
  if (!task.ok()) return bad("unknown task");
  p.task_ = *task;
  if (!j.contains("target") || !j["target"].is_string()) return bad("missing target");
  p.target_ = j["target"].get<std::string>();
  if (!j.contains("target_type") || !j["target_type"].is_string()) return bad("missing target_type");
  auto tt = ParseColumnType(j["target_type"].get<std::string>());
  if (!tt.ok()) return bad("bad target_type");
  p.target_type_ = *tt;
  if (!j.contains("inputs") || !j["inputs"].is_array() || j["inputs"].empty()) return bad("missing inputs");
  for (const Json& ij : j["inputs"]) {
    if (!ij.is_object() || !ij.contains("name") || !ij["name"].is_string() || !ij.contains("type") ||
        !ij["type"].is_string()) {
      return bad("input without name/type");
    }
    InputColumn in;
    in.name = ij["name"].get<std::string>();
    const std::string type = ij["type"].get<std::string>();
    bool known = false;
    for (const char* k : kTypeKeys) known = known || type == k;
    if (!known) return bad("input '" + in.name + "' has unknown type '" + type + "'");
    in.type = *ParseColumnType(type);
    if (in.type == ColumnType::kString) {
      if (!ij.contains("categories") || !ij["categories"].is_array()) {
        return bad("string input '" + in.name + "' has no categories");
      }
      if (ij["categories"].size() > kMaxCategories) return bad("too many categories for '" + in.name + "'");
      for (const Json& c : ij["categories"]) {
        if (!c.is_string()) return bad("category of '" + in.name + "' is not a string");
        in.categories.push_back(c.get<std::string>());
      }
      if (ij.contains("other") && !ij["other"].is_boolean()) return bad("'other' of '" + in.name + "' is not a boolean");
      in.has_other = ij.contains("other") && ij["other"].get<bool>();
    }
    p.inputs_.push_back(std::move(in));
  }
  if (j.contains("dropped")) {
    if (!j["dropped"].is_array()) return bad("dropped is not an array");
    p.dropped_ = j["dropped"];
  }
  if (IsClassification(p.task_)) {
    if (!j.contains("labels") || !j["labels"].is_array()) return bad("classification model without labels");
    for (const Json& l : j["labels"]) {
      if (!l.is_string() && !l.is_number() && !l.is_boolean()) return bad("label is not a string/number/bool");
      p.labels_.push_back(l);
    }
    if (p.labels_.size() < 2 || p.labels_.size() > kMaxClasses ||
        (p.task_ == Task::kBinary && p.labels_.size() != 2)) {
      return bad("wrong number of labels for task " + std::string(TaskName(p.task_)));
    }
  }
  Status st = p.Finalize();
  if (!st.ok()) return bad(st.message());
  return p;
}

// ---------------------------------------------------------------------------------------------------------
// Encoding

Result<std::vector<float>> FeaturePipeline::TransformTable(const Table& table) const {
  std::vector<int64_t> rows(static_cast<size_t>(std::max<int64_t>(table.num_rows, 0)));
  for (size_t i = 0; i < rows.size(); ++i) rows[i] = static_cast<int64_t>(i);
  return TransformRows(table, rows);
}

Result<std::vector<float>> FeaturePipeline::TransformRows(const Table& table, const std::vector<int64_t>& rows) const {
  const size_t width = NumFeatures();
  struct Source {
    const Column* column;
    size_t first_feature;
    std::vector<float> dict_codes;  // kString: table dictionary index -> feature value
  };
  std::vector<Source> sources;
  for (const InputColumn& in : inputs_) {
    const int ci = table.FindColumn(in.name);
    if (ci < 0) {
      return Status::InvalidArgument("column '" + in.name + "' is missing")
          .WithDetail(ErrorDetail::Column(in.name, "the model needs this column"));
    }
    const Column& c = table.columns[static_cast<size_t>(ci)];
    const auto numeric = [](ColumnType t) { return t == ColumnType::kInt64 || t == ColumnType::kFloat64; };
    if (c.type != in.type && !(numeric(c.type) && numeric(in.type))) {  // integers and floats encode alike
      return Status::InvalidArgument("column '" + in.name + "' is " + ColumnTypeName(c.type) + ", the model expects " +
                                     ColumnTypeName(in.type))
          .WithDetail(ErrorDetail::Column(in.name, "wrong type"));
    }
    if (c.size() != static_cast<size_t>(table.num_rows)) {
      return Status::InvalidArgument("column '" + in.name + "' has " + std::to_string(c.size()) + " rows, table has " +
                                     std::to_string(table.num_rows));
    }
    Source src{&c, static_cast<size_t>(in.first_feature), {}};
    // Per-dictionary code translation, so the row loop is a table lookup.
    if (c.type == ColumnType::kString) {
      src.dict_codes.resize(c.dict.size(), kMissing);
      for (size_t k = 0; k < c.dict.size(); ++k) {
        auto it = in.category_codes.find(c.dict[k]);
        if (it != in.category_codes.end()) src.dict_codes[k] = static_cast<float>(it->second);
      }
    }
    sources.push_back(std::move(src));
  }
  for (int64_t r : rows) {
    if (r < 0 || r >= table.num_rows) return Status::InvalidArgument("row " + std::to_string(r) + " out of range");
  }
  std::vector<float> out(rows.size() * width, kMissing);
  // Row blocks keep the block's slice of the output matrix in cache while every column is written into it.
  constexpr size_t kBlockRows = 2048;
  for (size_t block = 0; block < rows.size(); block += kBlockRows) {
    const size_t block_end = std::min(rows.size(), block + kBlockRows);
    for (const Source& src : sources) {
      const Column& c = *src.column;
      for (size_t i = block; i < block_end; ++i) {
        const auto r = static_cast<size_t>(rows[i]);
        if (!c.IsValid(r)) continue;
        float* dst = &out[i * width + src.first_feature];
        switch (c.type) {
          case ColumnType::kInt64: *dst = IntToFeature(c.i64[r]); break;
          case ColumnType::kFloat64: *dst = DoubleToFeature(c.f64[r]); break;
          case ColumnType::kBool: *dst = c.b[r] ? 1.0f : 0.0f; break;
          case ColumnType::kDatetime: DatetimeFeatures(c.i64[r], dst); break;
          case ColumnType::kString: {
            const auto code = static_cast<size_t>(c.codes[r]);
            if (code >= src.dict_codes.size()) {
              return Status::InvalidArgument("column '" + c.name + "' has a bad dictionary code");
            }
            *dst = src.dict_codes[code];
            break;
          }
        }
      }
    }
  }
  return out;
}

Result<std::vector<float>> FeaturePipeline::EncodeInstance(const Json& instance, const std::string& field_prefix) const {
  std::vector<float> out(NumFeatures(), kMissing);
  RETURN_IF_ERROR(EncodeInstanceInto(instance, out.data(), field_prefix));
  return out;
}

Status FeaturePipeline::EncodeInstanceInto(const Json& instance, float* out, std::string_view field_prefix,
                                           const InputPolicy& policy) const {
  if (!instance.is_object()) {
    return FieldError(field_prefix.empty() ? "instance" : std::string(field_prefix),
                      std::string("expected a JSON object of feature values, got ") + instance.type_name());
  }
  size_t matched = 0;
  for (auto it = instance.begin(); it != instance.end(); ++it) {
    auto found = input_index_.find(it.key());
    if (found == input_index_.end()) {
      if (policy.ignore_unknown_fields) continue;
      if (it.key() == target_) {
        return FieldError(FieldName(field_prefix, it.key()), "is the model's target, not a feature; remove it");
      }
      return FieldError(FieldName(field_prefix, it.key()), "unknown field; the model has no feature of this name");
    }
    ++matched;
    const InputColumn& in = inputs_[found->second];
    float* dst = out + in.first_feature;
    const Json& v = it.value();
    if (v.is_null()) {
      const int n = in.type == ColumnType::kDatetime ? kDatetimeFeatures : 1;
      for (int k = 0; k < n; ++k) dst[k] = kMissing;
      continue;
    }
    switch (in.type) {
      case ColumnType::kInt64:
      case ColumnType::kFloat64:
        if (v.is_number_unsigned()) {
          *dst = DoubleToFeature(static_cast<double>(v.get<uint64_t>()));
        } else if (v.is_number_integer()) {
          *dst = IntToFeature(v.get<int64_t>());
        } else if (v.is_number()) {
          *dst = DoubleToFeature(v.get<double>());
        } else {
          return FieldError(FieldName(field_prefix, it.key()),
                            std::string("expected a number (column type ") + ColumnTypeName(in.type) + "), got " +
                                v.type_name());
        }
        break;
      case ColumnType::kBool:
        if (v.is_boolean()) {
          *dst = v.get<bool>() ? 1.0f : 0.0f;
        } else if (v.is_number() && (v.get<double>() == 0.0 || v.get<double>() == 1.0)) {
          *dst = v.get<double>() == 1.0 ? 1.0f : 0.0f;
        } else {
          return FieldError(FieldName(field_prefix, it.key()), std::string("expected a boolean, got ") + v.type_name());
        }
        break;
      case ColumnType::kDatetime: {
        if (!v.is_string()) {
          return FieldError(FieldName(field_prefix, it.key()),
                            std::string("expected an ISO 8601 date/time string, got ") + v.type_name());
        }
        auto micros = ParseIsoDatetimeMicros(v.get_ref<const std::string&>());
        if (!micros.ok()) return FieldError(FieldName(field_prefix, it.key()), micros.status().message());
        DatetimeFeatures(*micros, dst);
        break;
      }
      case ColumnType::kString: {
        if (!v.is_string()) {
          return FieldError(FieldName(field_prefix, it.key()), std::string("expected a string, got ") + v.type_name());
        }
        auto code = in.category_codes.find(v.get_ref<const std::string&>());
        if (code == in.category_codes.end() && policy.reject_unseen_categories) {
          std::string shown = v.get_ref<const std::string&>().substr(0, 80);
          return FieldError(FieldName(field_prefix, it.key()),
                            "unseen category '" + shown + "': the model was not trained on this value");
        }
        *dst = code == in.category_codes.end() ? kMissing : static_cast<float>(code->second);
        break;
      }
    }
  }
  if (matched != inputs_.size()) {
    for (const InputColumn& in : inputs_) {
      if (!instance.contains(in.name)) {
        if (policy.missing_fields_as_null) {
          const int n = in.type == ColumnType::kDatetime ? kDatetimeFeatures : 1;
          for (int k = 0; k < n; ++k) out[in.first_feature + k] = kMissing;
          continue;
        }
        return FieldError(FieldName(field_prefix, in.name),
                          "missing feature; send null for a missing value");
      }
    }
  }
  return Status::Ok();
}

Result<std::vector<float>> FeaturePipeline::EncodeTarget(const Table& table, std::vector<int64_t>* kept_rows) const {
  if (!IsSupervised(task_)) return Status::FailedPrecondition(std::string(TaskName(task_)) + " has no target");
  const int ti = table.FindColumn(target_);
  if (ti < 0) return FieldError("target", "column '" + target_ + "' does not exist in the dataset");
  const Column& c = table.columns[static_cast<size_t>(ti)];
  if (c.type != target_type_) return FieldError("target", "target column changed type");
  std::vector<float> y;
  y.reserve(c.size());
  kept_rows->clear();
  kept_rows->reserve(c.size());
  auto keep = [&](size_t r, float v) {
    y.push_back(v);
    kept_rows->push_back(static_cast<int64_t>(r));
  };
  if (HasNumericTarget(task_)) {
    for (size_t r = 0; r < c.size(); ++r) {
      if (!c.IsValid(r)) continue;
      const double v = c.NumericAt(r);
      if (std::isnan(v)) continue;
      if (!std::isfinite(v)) return FieldError("target", "target has an infinite value at row " + std::to_string(r));
      keep(r, static_cast<float>(v));
    }
    return y;
  }
  std::vector<float> dict_class;
  if (c.type == ColumnType::kString) {
    dict_class.resize(c.dict.size(), -1.0f);
    for (size_t k = 0; k < c.dict.size(); ++k) {
      auto it = label_index_.find(c.dict[k]);
      if (it != label_index_.end()) dict_class[k] = static_cast<float>(it->second);
    }
  }
  std::unordered_map<int64_t, int> int_class;
  std::map<double, int> float_class;
  for (size_t k = 0; k < labels_.size(); ++k) {
    if (labels_[k].is_number_integer()) int_class[labels_[k].get<int64_t>()] = static_cast<int>(k);
    if (labels_[k].is_number()) float_class[labels_[k].get<double>()] = static_cast<int>(k);
  }
  for (size_t r = 0; r < c.size(); ++r) {
    if (!c.IsValid(r)) continue;
    float cls = -1.0f;
    switch (c.type) {
      case ColumnType::kString: {
        const auto code = static_cast<size_t>(c.codes[r]);
        if (code < dict_class.size()) cls = dict_class[code];
        break;
      }
      case ColumnType::kInt64: {
        auto it = int_class.find(c.i64[r]);
        if (it != int_class.end()) cls = static_cast<float>(it->second);
        break;
      }
      case ColumnType::kBool: {
        auto it = label_index_.find(c.b[r] ? "true" : "false");
        if (it != label_index_.end()) cls = static_cast<float>(it->second);
        break;
      }
      case ColumnType::kFloat64: {
        if (std::isnan(c.f64[r])) continue;
        auto it = float_class.find(c.f64[r]);
        if (it != float_class.end()) cls = static_cast<float>(it->second);
        break;
      }
      case ColumnType::kDatetime: break;
    }
    if (cls < 0) {
      return FieldError("target", "row " + std::to_string(r) + " has a class the model does not know");
    }
    keep(r, cls);
  }
  return y;
}

Json FeaturePipeline::Signature() const {
  Json inputs = Json::array();
  for (const InputColumn& in : inputs_) {
    Json j = {{"name", in.name}, {"type", ColumnTypeName(in.type)}};
    if (in.type == ColumnType::kString) j["categories"] = in.categories.size();
    inputs.push_back(std::move(j));
  }
  Json output = {{"name", target_}, {"task", TaskName(task_)}};
  switch (task_) {
    case Task::kBinary:
      output["type"] = "probability";
      output["description"] = "probability that " + target_ + " is the positive class";
      output["positive_class"] = labels_[1];
      output["negative_class"] = labels_[0];
      break;
    case Task::kMulticlass:
      output["type"] = "class";
      output["description"] = "{label, probabilities: {label: p}}";
      output["classes"] = labels_;
      break;
    case Task::kRegression:
      output["type"] = "number";
      output["description"] = "predicted value of " + target_;
      break;
    case Task::kRanking:
      output["type"] = "score";
      output["description"] = "relevance score for " + target_ + ": within a query, higher ranks first";
      break;
    case Task::kClustering:
      output = {{"task", TaskName(task_)}, {"type", "cluster"},
                {"description", "{cluster: id of the nearest centroid, distance: to it in standardized units}"}};
      break;
    case Task::kDecomposition:
      output = {{"task", TaskName(task_)}, {"type", "components"},
                {"description", "{components: [projection on each principal component], reconstruction_error}"}};
      break;
    case Task::kAnomaly:
      output = {{"task", TaskName(task_)}, {"type", "anomaly"},
                {"description", "{anomaly_score: in (0, 1], higher is more unusual, is_anomaly: score above the "
                                "threshold set by contamination}"}};
      break;
  }
  return {{"inputs", std::move(inputs)}, {"output", std::move(output)}};
}

}  // namespace lathe::ml
