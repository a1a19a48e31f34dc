#include "data/import_options.h"

namespace lathe {

const char* BadRowPolicyName(BadRowPolicy p) {
  switch (p) {
    case BadRowPolicy::kFail: return "fail";
    case BadRowPolicy::kSkip: return "skip";
    case BadRowPolicy::kQuarantine: return "quarantine";
  }
  return "fail";
}

Result<BadRowPolicy> ParseBadRowPolicy(std::string_view name) {
  if (name == "fail") return BadRowPolicy::kFail;
  if (name == "skip") return BadRowPolicy::kSkip;
  if (name == "quarantine") return BadRowPolicy::kQuarantine;
  return Status::InvalidArgument("bad_rows must be fail, skip or quarantine, not '" +
                                 std::string(name.substr(0, 40)) + "'")
      .WithDetail(ErrorDetail::Field("bad_rows", "must be fail, skip or quarantine"));
}

namespace {

Status HintError(const std::string& field, const std::string& problem) {
  return Status::InvalidArgument("schema hint " + field + " " + problem).WithDetail(ErrorDetail::Field(field, problem));
}

Result<std::map<std::string, std::string>> StringMap(const Json& j, const std::string& field) {
  if (!j.is_object()) return HintError(field, "must be an object of column name to string");
  std::map<std::string, std::string> out;
  for (const auto& [k, v] : j.items()) {
    if (!v.is_string()) return HintError(field + "." + k, "must be a string");
    if (k.empty()) return HintError(field, "has an empty column name");
    out[k] = v.get<std::string>();
  }
  return out;
}

}  // namespace

Result<SchemaHints> ParseSchemaHints(const Json& j) {
  SchemaHints h;
  if (j.is_null()) return h;
  if (!j.is_object()) return HintError("hints", "must be an object");
  for (const auto& [key, value] : j.items()) {
    if (key == "types") {
      ASSIGN_OR_RETURN(auto m, StringMap(value, "hints.types"));
      for (const auto& [col, type_name] : m) {
        auto t = ParseColumnType(type_name);
        if (!t.ok()) return HintError("hints.types." + col, "must be integer, float, boolean, string or datetime");
        h.types[col] = *t;
      }
    } else if (key == "date_formats") {
      ASSIGN_OR_RETURN(h.date_formats, StringMap(value, "hints.date_formats"));
      for (const auto& [col, fmt] : h.date_formats) {
        if (fmt.empty() || fmt.size() > 64) return HintError("hints.date_formats." + col, "must be 1-64 characters");
      }
    } else if (key == "decimal_comma") {
      if (!value.is_boolean()) return HintError("hints.decimal_comma", "must be true or false");
      h.decimal_comma = value.get<bool>();
    } else if (key == "missing_tokens") {
      if (!value.is_array()) return HintError("hints.missing_tokens", "must be an array of strings");
      for (const auto& t : value) {
        if (!t.is_string() || t.get<std::string>().size() > 64) {
          return HintError("hints.missing_tokens", "must hold strings of at most 64 characters");
        }
        h.missing_tokens.push_back(t.get<std::string>());
      }
      if (h.missing_tokens.size() > 100) return HintError("hints.missing_tokens", "may hold at most 100 tokens");
    } else {
      return HintError(key.substr(0, 40), "is not a known hint (types, date_formats, decimal_comma, missing_tokens)");
    }
  }
  return h;
}

Json SchemaHintsToJson(const SchemaHints& h) {
  Json j = Json::object();
  if (!h.types.empty()) {
    Json t = Json::object();
    for (const auto& [c, ty] : h.types) t[c] = ColumnTypeName(ty);
    j["types"] = t;
  }
  if (!h.date_formats.empty()) j["date_formats"] = h.date_formats;
  if (h.decimal_comma) j["decimal_comma"] = true;
  if (!h.missing_tokens.empty()) j["missing_tokens"] = h.missing_tokens;
  return j;
}

}  // namespace lathe
