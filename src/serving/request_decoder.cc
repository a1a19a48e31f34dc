#include "serving/request_decoder.h"

#include <simdjson.h>

#include <cstring>
#include <string>

namespace lathe {
namespace {

namespace od = simdjson::ondemand;
using ml::DatetimeFeatures;
using ml::DoubleToFeature;
using ml::FeaturePipeline;
using ml::IntToFeature;
using ml::kMissingFeature;
using ml::ParseIsoDatetimeMicros;
using Policy = FeaturePipeline::InputPolicy;
using Column = FeaturePipeline::InputColumn;

constexpr int kMaxSkipDepth = 16;  // deeper ignored values are left to the DOM path (and its depth limit)

// Consumes and validates a value nobody reads (an ignored field, the split's index).
bool SkipValue(od::value v, int depth) {
  od::json_type type;
  if (v.type().get(type) != simdjson::SUCCESS) return false;
  switch (type) {
    case od::json_type::array: {
      if (depth >= kMaxSkipDepth) return false;
      od::array a;
      if (v.get_array().get(a) != simdjson::SUCCESS) return false;
      for (auto e : a) {
        od::value ev;
        if (e.get(ev) != simdjson::SUCCESS || !SkipValue(ev, depth + 1)) return false;
      }
      return true;
    }
    case od::json_type::object: {
      if (depth >= kMaxSkipDepth) return false;
      od::object o;
      if (v.get_object().get(o) != simdjson::SUCCESS) return false;
      for (auto f : o) {
        std::string_view key;
        od::value fv;
        if (f.unescaped_key().get(key) != simdjson::SUCCESS || f.value().get(fv) != simdjson::SUCCESS ||
            !SkipValue(fv, depth + 1)) {
          return false;
        }
      }
      return true;
    }
    case od::json_type::number: {
      double d = 0;  // validates the token; integers of any size parse as a double
      return v.get_double().get(d) == simdjson::SUCCESS;
    }
    case od::json_type::string: {
      std::string_view s;
      return v.get_string().get(s) == simdjson::SUCCESS;
    }
    case od::json_type::boolean: {
      bool b;
      return v.get_bool().get(b) == simdjson::SUCCESS;
    }
    case od::json_type::null: {
      bool is_null = false;
      return v.is_null().get(is_null) == simdjson::SUCCESS && is_null;
    }
  }
  return false;
}

void SetMissing(const Column& in, float* row) {
  const int width = in.type == ColumnType::kDatetime ? FeaturePipeline::kDatetimeFeatures : 1;
  for (int k = 0; k < width; ++k) row[in.first_feature + k] = kMissingFeature;
}

// Encodes one feature value exactly as FeaturePipeline::EncodeInstanceInto does; false where that would fail.
bool EncodeValue(od::value v, const Column& in, const Policy& policy, float* row) {
  od::json_type type;
  if (v.type().get(type) != simdjson::SUCCESS) return false;
  float* dst = row + in.first_feature;
  switch (type) {
    case od::json_type::null: {
      bool is_null = false;
      if (v.is_null().get(is_null) != simdjson::SUCCESS || !is_null) return false;
      SetMissing(in, row);
      return true;
    }
    case od::json_type::number: {
      // Not get_number(): simdjson 3.0.1 returns 0 for some 19-digit decimals through it
      // ("1844674407370955.615"); the typed getters parse them right.
      od::number_type nt;
      if (v.get_number_type().get(nt) != simdjson::SUCCESS) return false;
      double d = 0;
      if (nt == od::number_type::signed_integer) {
        int64_t i = 0;
        if (v.get_int64().get(i) != simdjson::SUCCESS) return false;
        if (in.type == ColumnType::kInt64 || in.type == ColumnType::kFloat64) {
          *dst = IntToFeature(i);
          return true;
        }
        d = static_cast<double>(i);
      } else if (nt == od::number_type::unsigned_integer) {
        uint64_t u = 0;
        if (v.get_uint64().get(u) != simdjson::SUCCESS) return false;
        d = static_cast<double>(u);
      } else if (v.get_double().get(d) != simdjson::SUCCESS) {
        return false;
      }
      if (in.type == ColumnType::kInt64 || in.type == ColumnType::kFloat64) {
        *dst = DoubleToFeature(d);
        return true;
      }
      if (in.type == ColumnType::kBool && (d == 0.0 || d == 1.0)) {
        *dst = d == 1.0 ? 1.0f : 0.0f;
        return true;
      }
      return false;
    }
    case od::json_type::boolean: {
      bool b = false;
      if (in.type != ColumnType::kBool || v.get_bool().get(b) != simdjson::SUCCESS) return false;
      *dst = b ? 1.0f : 0.0f;
      return true;
    }
    case od::json_type::string: {
      std::string_view s;
      if (in.type != ColumnType::kString && in.type != ColumnType::kDatetime) return false;
      if (v.get_string().get(s) != simdjson::SUCCESS) return false;
      if (in.type == ColumnType::kDatetime) {
        auto micros = ParseIsoDatetimeMicros(s);
        if (!micros.ok()) return false;
        DatetimeFeatures(*micros, dst);
        return true;
      }
      auto code = in.category_codes.find(s);
      if (code == in.category_codes.end()) {
        if (policy.reject_unseen_categories) return false;
        *dst = kMissingFeature;
      } else {
        *dst = static_cast<float>(code->second);
      }
      return true;
    }
    case od::json_type::array:
    case od::json_type::object: return false;
  }
  return false;
}

class Decoder {
 public:
  Decoder(const FeaturePipeline& p, const Policy& policy, size_t max_rows, std::vector<float>* rows)
      : p_(p), policy_(policy), max_rows_(max_rows), width_(p.NumFeatures()), rows_(rows),
        seen_(p.inputs().size(), 0) {}

  size_t n() const { return n_; }

  // [{"a": 1, ...}, ...]
  bool Records(od::value v) {
    od::array arr;
    if (v.get_array().get(arr) != simdjson::SUCCESS) return false;
    for (auto e : arr) {
      od::object obj;
      if (e.get_object().get(obj) != simdjson::SUCCESS) return false;
      float* row = NewRow();
      if (row == nullptr) return false;
      size_t matched = 0;
      for (auto f : obj) {
        std::string_view key;
        od::value fv;
        if (f.unescaped_key().get(key) != simdjson::SUCCESS || f.value().get(fv) != simdjson::SUCCESS) return false;
        const int idx = p_.InputIndex(key);
        if (idx < 0) {
          if (!policy_.ignore_unknown_fields || !SkipValue(fv, 0)) return false;
          continue;
        }
        if (seen_[static_cast<size_t>(idx)] == n_) return false;  // duplicate field
        seen_[static_cast<size_t>(idx)] = n_;
        ++matched;
        if (!EncodeValue(fv, p_.inputs()[static_cast<size_t>(idx)], policy_, row)) return false;
      }
      if (matched != p_.inputs().size() && !FillMissing(row)) return false;
    }
    return n_ > 0;
  }

  // {"columns": [...], "data": [[...], ...]} (an "index" is ignored); `obj` is positioned at its first field.
  bool Split(od::object obj) {
    bool have_columns = false, have_data = false, have_index = false;
    for (auto f : obj) {
      std::string_view key;
      od::value fv;
      if (f.unescaped_key().get(key) != simdjson::SUCCESS || f.value().get(fv) != simdjson::SUCCESS) return false;
      if (key == "columns" && !have_columns) {
        have_columns = true;
        if (!Columns(fv)) return false;
      } else if (key == "data" && !have_data && have_columns) {
        have_data = true;
        if (!Data(fv)) return false;
      } else if (key == "index" && !have_index) {
        have_index = true;
        if (!SkipValue(fv, 0)) return false;
      } else {
        return false;
      }
    }
    return have_data && n_ > 0;
  }

  bool Columns(od::value v) {
    od::array arr;
    if (v.get_array().get(arr) != simdjson::SUCCESS) return false;
    std::vector<uint8_t> used(p_.inputs().size(), 0);
    for (auto e : arr) {
      std::string_view name;
      if (e.get_string().get(name) != simdjson::SUCCESS) return false;
      const int idx = p_.InputIndex(name);
      if (idx < 0) {
        // An unknown column the policy ignores; a repeated unknown name would be merged by the DOM path.
        if (!policy_.ignore_unknown_fields) return false;
        for (const std::string& u : unknown_) {
          if (u == name) return false;
        }
        unknown_.emplace_back(name);
      } else {
        if (used[static_cast<size_t>(idx)] != 0) return false;
        used[static_cast<size_t>(idx)] = 1;
        ++matched_columns_;
      }
      columns_.push_back(idx);
    }
    return matched_columns_ == p_.inputs().size() || policy_.missing_fields_as_null;
  }

  // [[...], ...] in the order of Columns(), which must have been read.
  bool Data(od::value v) {
    od::array arr;
    if (v.get_array().get(arr) != simdjson::SUCCESS) return false;
    for (auto e : arr) {
      od::array cells;
      if (e.get_array().get(cells) != simdjson::SUCCESS) return false;
      float* row = NewRow();
      if (row == nullptr) return false;
      size_t c = 0;
      for (auto cell : cells) {
        od::value cv;
        if (c >= columns_.size() || cell.get(cv) != simdjson::SUCCESS) return false;
        const int idx = columns_[c++];
        if (idx < 0) {
          if (!SkipValue(cv, 0)) return false;
        } else {
          seen_[static_cast<size_t>(idx)] = n_;
          if (!EncodeValue(cv, p_.inputs()[static_cast<size_t>(idx)], policy_, row)) return false;
        }
      }
      if (c != columns_.size()) return false;
      if (matched_columns_ != p_.inputs().size() && !FillMissing(row)) return false;
    }
    return true;
  }

 private:
  // A new zeroed row, or nullptr past max_rows.
  float* NewRow() {
    if (n_ >= max_rows_) return nullptr;
    ++n_;
    rows_->resize(n_ * width_, 0.0f);
    return rows_->data() + (n_ - 1) * width_;
  }

  // Inputs not seen in the current row (seen_[i] != n_) become missing when the policy allows.
  bool FillMissing(float* row) {
    if (!policy_.missing_fields_as_null) return false;
    for (size_t i = 0; i < seen_.size(); ++i) {
      if (seen_[i] != n_) SetMissing(p_.inputs()[i], row);
    }
    return true;
  }

  const FeaturePipeline& p_;
  const Policy& policy_;
  const size_t max_rows_;
  const size_t width_;
  std::vector<float>* rows_;
  size_t n_ = 0;
  std::vector<size_t> seen_;  // per input: the row (1-based) that last set it
  std::vector<int> columns_;  // split: input index per column, -1 for an ignored one
  std::vector<std::string> unknown_;
  size_t matched_columns_ = 0;
};

}  // namespace

bool DecodeRequestRows(std::string_view body, RequestShape shape, const FeaturePipeline& p, const Policy& policy,
                       size_t max_rows, std::vector<float>* rows, size_t* n, TextSpan* records) {
  thread_local od::parser parser;
  thread_local std::string padded;
  padded.assign(body.data(), body.size());
  padded.append(simdjson::SIMDJSON_PADDING, '\0');
  rows->clear();
  *n = 0;
  Decoder dec(p, policy, max_rows, rows);

  od::document doc;
  if (parser.iterate(padded.data(), body.size(), padded.size()).get(doc) != simdjson::SUCCESS) return false;
  od::object top;
  if (doc.get_object().get(top) != simdjson::SUCCESS) return false;
  // The forms are mutually exclusive: a second one (or anything unknown) is for the DOM path to judge.
  bool decoded = false, top_columns = false;
  TextSpan span;
  for (auto f : top) {
    std::string_view key;
    od::value v;
    if (f.unescaped_key().get(key) != simdjson::SUCCESS || f.value().get(v) != simdjson::SUCCESS) return false;
    if (decoded) return false;
    if (key == "instances" || key == "dataframe_records" || key == "inputs") {
      const char* begin = nullptr;
      if (top_columns || v.current_location().get(begin) != simdjson::SUCCESS || !dec.Records(v)) return false;
      decoded = true;
      // The array ends before the next token (',' or '}'), give or take whitespace.
      const char* next = nullptr;
      if (doc.current_location().get(next) == simdjson::SUCCESS && *begin == '[') {
        size_t end = static_cast<size_t>(next - padded.data());
        while (end > 0 && (padded[end - 1] == ' ' || padded[end - 1] == '\n' || padded[end - 1] == '\r' ||
                           padded[end - 1] == '\t')) {
          --end;
        }
        if (end > 0 && padded[end - 1] == ']') span = TextSpan{static_cast<size_t>(begin - padded.data()), end};
      }
    } else if (key == "dataframe_split") {
      od::object split;
      if (top_columns || v.get_object().get(split) != simdjson::SUCCESS || !dec.Split(split)) return false;
      decoded = true;
    } else if (key == "columns" && shape == RequestShape::kNative && !top_columns) {
      if (!dec.Columns(v)) return false;
      top_columns = true;
    } else if (key == "data" && top_columns) {
      if (!dec.Data(v) || dec.n() == 0) return false;
      decoded = true;
    } else {
      return false;  // everything else goes to the DOM path
    }
  }
  if (!decoded) return false;
  const char* rest = nullptr;
  if (doc.current_location().get(rest) == simdjson::SUCCESS) return false;  // trailing content
  *n = dec.n();
  if (records != nullptr) *records = span;
  return true;
}

}  // namespace lathe
