#include "data/privacy.h"

#include <cmath>
#include <cstring>
#include <limits>
#include <memory>

#include "common/crypto.h"
#include "data/value_parse.h"

namespace lathe {

namespace {

std::string AsciiLower(std::string_view s) {
  std::string out(s);
  for (char& ch : out) {
    if (ch >= 'A' && ch <= 'Z') ch = static_cast<char>(ch - 'A' + 'a');
  }
  return out;
}

bool EqualsIgnoringAsciiCase(std::string_view a, std::string_view lower_b) {
  if (a.size() != lower_b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    char ch = a[i];
    if (ch >= 'A' && ch <= 'Z') ch = static_cast<char>(ch - 'A' + 'a');
    if (ch != lower_b[i]) return false;
  }
  return true;
}

uint64_t WordFromBytes(const char* p) {
  uint64_t w = 0;
  std::memcpy(&w, p, sizeof(w));
  return w;
}

}  // namespace

Result<SubjectMatch> ParseSubjectMatch(std::string_view text) {
  if (text == "exact") return SubjectMatch::kExact;
  if (text == "case_insensitive") return SubjectMatch::kCaseInsensitive;
  return Status::InvalidArgument("match must be exact or case_insensitive")
      .WithDetail(ErrorDetail::Field("match", "must be exact or case_insensitive"));
}

const char* SubjectMatchName(SubjectMatch m) {
  return m == SubjectMatch::kExact ? "exact" : "case_insensitive";
}

SubjectMatcher::SubjectMatcher(std::string value, SubjectMatch mode) : value_(std::move(value)), mode_(mode) {
  normalized_ = mode_ == SubjectMatch::kCaseInsensitive ? AsciiLower(value_) : value_;
  std::string_view t = TrimBlanks(value_);
  has_int_ = ParseInt64(t, &int_) == IntParse::kOk;
  has_float_ = ParseFloat64(t, &float_) && !std::isnan(float_);
  has_bool_ = ParseBool(t, &bool_);
  has_datetime_ = ParseDatetimeMicros(t, &datetime_);
}

std::vector<int64_t> SubjectMatcher::MatchingRows(const Column& c) const {
  std::vector<int64_t> rows;
  const size_t n = c.size();
  switch (c.type) {
    case ColumnType::kString: {
      // Decide per dictionary entry once, then look codes up.
      std::vector<uint8_t> hit(c.dict.size(), 0);
      bool any = false;
      for (size_t k = 0; k < c.dict.size(); ++k) {
        hit[k] = mode_ == SubjectMatch::kExact ? c.dict[k] == value_
                                               : EqualsIgnoringAsciiCase(c.dict[k], normalized_);
        any = any || hit[k];
      }
      if (!any) return rows;
      for (size_t i = 0; i < n; ++i) {
        if (c.IsValid(i) && hit[static_cast<size_t>(c.codes[i])]) rows.push_back(static_cast<int64_t>(i));
      }
      return rows;
    }
    case ColumnType::kInt64:
      if (!has_int_) return rows;
      for (size_t i = 0; i < n; ++i) {
        if (c.IsValid(i) && c.i64[i] == int_) rows.push_back(static_cast<int64_t>(i));
      }
      return rows;
    case ColumnType::kFloat64:
      if (!has_float_) return rows;
      for (size_t i = 0; i < n; ++i) {
        if (c.IsValid(i) && c.f64[i] == float_) rows.push_back(static_cast<int64_t>(i));
      }
      return rows;
    case ColumnType::kBool:
      if (!has_bool_) return rows;
      for (size_t i = 0; i < n; ++i) {
        if (c.IsValid(i) && (c.b[i] != 0) == bool_) rows.push_back(static_cast<int64_t>(i));
      }
      return rows;
    case ColumnType::kDatetime:
      if (!has_datetime_) return rows;
      for (size_t i = 0; i < n; ++i) {
        if (c.IsValid(i) && c.i64[i] == datetime_) rows.push_back(static_cast<int64_t>(i));
      }
      return rows;
  }
  return rows;
}

bool SubjectMatcher::Contains(std::string_view text) const {
  if (value_.empty()) return false;
  std::string lowered;
  if (mode_ == SubjectMatch::kCaseInsensitive) {
    lowered = AsciiLower(text);
    text = lowered;
  }
  auto alnum = [](char ch) {
    return (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z');
  };
  const std::string& needle = normalized_;
  for (size_t pos = text.find(needle); pos != std::string_view::npos; pos = text.find(needle, pos + 1)) {
    const size_t end = pos + needle.size();
    if ((pos == 0 || !alnum(text[pos - 1])) && (end == text.size() || !alnum(text[end]))) return true;
  }
  return false;
}

// ---------------------------------------------------------------- randomness

RandomWords SecureRandomWords() {
  struct Buffer {
    std::string bytes;
    size_t next = 0;
  };
  auto buf = std::make_shared<Buffer>();
  return [buf]() -> uint64_t {
    if (buf->next + 8 > buf->bytes.size()) {
      buf->bytes = RandomBytes(4096);
      buf->next = 0;
    }
    uint64_t w = WordFromBytes(buf->bytes.data() + buf->next);
    buf->next += 8;
    return w;
  };
}

RandomWords KeyedRandomWords(std::string key, std::string context) {
  struct Stream {
    std::string key, context;
    uint64_t counter = 0;
    std::string block;  // 32 bytes of HMAC output
    size_t next = 32;
  };
  auto s = std::make_shared<Stream>();
  s->key = std::move(key);
  s->context = std::move(context);
  return [s]() -> uint64_t {
    if (s->next + 8 > s->block.size()) {
      s->block = HmacSha256(s->key, s->context + "#" + std::to_string(s->counter++));
      s->next = 0;
    }
    uint64_t w = WordFromBytes(s->block.data() + s->next);
    s->next += 8;
    return w;
  };
}

double UniformOpen01(uint64_t word) {
  // The top 52 bits, centred in their cell: (k + 0.5) / 2^52 is exact in a double for every k < 2^52, so the
  // result is never 0 or 1 (with 53 bits the largest cell rounds up to 1.0).
  return (static_cast<double>(word >> 12) + 0.5) * (1.0 / 4503599627370496.0);
}

double SampleLaplace(double scale, const RandomWords& words) {
  const double u = UniformOpen01(words()) - 0.5;  // (-0.5, 0.5)
  const double magnitude = -scale * std::log(1.0 - 2.0 * std::fabs(u));
  return u < 0 ? -magnitude : magnitude;
}

int64_t NoisyCount(int64_t value, double scale, const RandomWords& words) {
  const double noisy = std::round(static_cast<double>(value) + SampleLaplace(scale, words));
  if (!(noisy > 0)) return 0;
  if (noisy >= 9.0e18) return std::numeric_limits<int64_t>::max();
  return static_cast<int64_t>(noisy);
}

// ---------------------------------------------------------------- profiles

namespace {

int64_t IntField(const Json& j, const char* key) {
  if (!j.contains(key)) return 0;
  const Json& v = j[key];
  if (v.is_number_integer()) return v.get<int64_t>();
  if (v.is_number()) return static_cast<int64_t>(std::llround(v.get<double>()));
  return 0;
}

bool IdentifyingKind(const Json& col) {
  if (!col.contains("semantic_kinds") || !col["semantic_kinds"].is_array()) return false;
  for (const auto& k : col["semantic_kinds"]) {
    if (!k.is_string()) continue;
    const std::string s = k.get<std::string>();
    if (s == "identifier" || s == "email" || s == "phone" || s == "id_card") return true;
  }
  return false;
}

}  // namespace

Result<Json> PrivatizeProfile(const Json& profile, const DpOptions& options, const RandomWords& words) {
  if (!(options.epsilon > 0) || !std::isfinite(options.epsilon)) {
    return Status::InvalidArgument("dp_epsilon must be a number > 0")
        .WithDetail(ErrorDetail::Field("dp_epsilon", "must be a number > 0"));
  }
  if (!(options.delta > 0 && options.delta < 1)) return Status::InvalidArgument("delta must be in (0, 1)");
  if (!profile.is_object() || !profile.contains("columns") || !profile["columns"].is_array()) {
    return Status::InvalidArgument("not a profile: no columns");
  }
  const Json& cols = profile["columns"];

  // First decide what is published, to count the queries that share the budget.
  struct Plan {
    bool boolean = false, signs = false, top = false;
    std::string top_withheld;  // why top values are withheld ("" = shown)
  };
  std::vector<Plan> plans;
  int64_t queries = 2;  // rows, duplicate_rows
  for (const auto& c : cols) {
    Plan p;
    const std::string type = c.value("type", std::string());
    const std::string name = c.value("name", std::string());
    p.boolean = type == "boolean";
    p.signs = type == "integer" || type == "float";
    if (options.identifying_columns.count(name))
      p.top_withheld = "the column is tagged personal";
    else if (IdentifyingKind(c))
      p.top_withheld = "the column looks like an identifier (email, phone, id)";
    else if (!c.contains("top_values") || !c["top_values"].is_array())
      p.top_withheld = "no top values";
    p.top = p.top_withheld.empty();
    queries += 2 + (p.signs ? 1 : 0) + (p.top ? 1 : 0);  // {count, missing}, distinct, signs, top values
    plans.push_back(std::move(p));
  }
  const double eps_each = options.epsilon / static_cast<double>(queries);
  const double scale = 1.0 / eps_each;  // sensitivity 1
  const double threshold = 1.0 + scale * std::log(1.0 / (2.0 * options.delta));

  Json out = Json::object();
  out["rows"] = NoisyCount(IntField(profile, "rows"), scale, words);
  out["num_columns"] = profile.value("num_columns", static_cast<int64_t>(cols.size()));
  out["duplicate_rows"] = NoisyCount(IntField(profile, "duplicate_rows"), scale, words);
  out["target"] = profile.value("target", Json(nullptr));
  bool candidates_truncated = false;
  Json out_cols = Json::array();
  for (size_t i = 0; i < cols.size(); ++i) {
    const Json& c = cols[i];
    const Plan& p = plans[i];
    Json oc = {{"name", c.value("name", std::string())}, {"type", c.value("type", std::string())}};
    const int64_t count = IntField(c, "count"), missing = IntField(c, "missing");
    if (p.boolean) {
      const double mean = c.contains("mean") && c["mean"].is_number() ? c["mean"].get<double>() : 0.0;
      const int64_t trues = std::llround(mean * static_cast<double>(count));
      const int64_t t = NoisyCount(trues, scale, words), f = NoisyCount(count - trues, scale, words);
      oc["true_count"] = t;
      oc["false_count"] = f;
      oc["count"] = t + f;
    } else {
      oc["count"] = NoisyCount(count, scale, words);
    }
    oc["missing"] = NoisyCount(missing, scale, words);
    const int64_t total = oc["count"].get<int64_t>() + oc["missing"].get<int64_t>();
    oc["missing_fraction"] = total > 0 ? static_cast<double>(oc["missing"].get<int64_t>()) / total : 0.0;
    oc["distinct"] = NoisyCount(IntField(c, "distinct"), scale, words);
    if (p.signs) {
      const int64_t zeros = IntField(c, "zeros"), negatives = IntField(c, "negatives");
      oc["zeros"] = NoisyCount(zeros, scale, words);
      oc["negatives"] = NoisyCount(negatives, scale, words);
      oc["positives"] =
          NoisyCount(std::max<int64_t>(0, count - zeros - negatives - IntField(c, "nan")), scale, words);
    }
    if (p.top) {
      Json top = Json::array();
      for (const auto& tv : c["top_values"]) {
        const int64_t noisy = NoisyCount(IntField(tv, "count"), scale, words);
        if (static_cast<double>(noisy) >= threshold)
          top.push_back({{"value", tv.value("value", Json(nullptr))}, {"count", noisy}});
      }
      oc["top_values"] = std::move(top);
      if (IntField(c, "distinct") > static_cast<int64_t>(c["top_values"].size())) candidates_truncated = true;
    } else {
      oc["top_values"] = nullptr;
      oc["top_values_withheld"] = p.top_withheld;
    }
    out_cols.push_back(std::move(oc));
  }
  out["columns"] = std::move(out_cols);
  Json notes = Json::array(
      {"Counts are rounded to integers and clamped at 0 after the noise (post-processing).",
       "The same version and epsilon always give the same noisy values: asking again reveals nothing new. "
       "Each "
       "different epsilon (and each version) is a separate release, and the budgets of releases add up.",
       "Only the profile is protected: project members who can read rows still see the data itself."});
  if (candidates_truncated) {
    notes.push_back(
        "Top-value candidates come from the exact profile's top values; for columns with more distinct "
        "values "
        "than are listed, that selection depends on the data and is protected only by the threshold, without "
        "a "
        "formal (epsilon, delta) guarantee.");
  }
  out["differential_privacy"] = {
      {"epsilon", options.epsilon},
      {"mechanism", "laplace"},
      {"neighbouring", "datasets differing by one row (added or removed)"},
      {"sensitivity", 1},
      {"statistics", queries},
      {"epsilon_per_statistic", eps_each},
      {"scale", scale},
      {"delta", options.delta},
      {"top_value_threshold", threshold},
      {"composition",
       "basic sequential composition: each of the published count statistics (rows, duplicate_rows, and per "
       "column {count, missing}, distinct, {zeros, negatives, positives}, the top-value counts) gets epsilon "
       "/ "
       "statistics"},
      {"withheld",
       {"min", "max", "mean", "std", "quantiles", "histogram", "length", "semantic_kinds", "correlations",
        "warnings", "memory_bytes_estimate", "file_bytes"}},
      {"notes", std::move(notes)}};
  return out;
}

}  // namespace lathe
