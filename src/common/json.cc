#include "common/json.h"

namespace lathe {

size_t JsonNestingDepth(std::string_view text, size_t limit) {
  size_t depth = 0, max_depth = 0;
  bool in_string = false, escaped = false;
  for (char c : text) {
    if (in_string) {
      if (escaped) escaped = false;
      else if (c == '\\') escaped = true;
      else if (c == '"') in_string = false;
      continue;
    }
    if (c == '"') in_string = true;
    else if (c == '[' || c == '{') {
      if (++depth > max_depth) {
        max_depth = depth;
        if (max_depth > limit) return max_depth;
      }
    } else if ((c == ']' || c == '}') && depth > 0) {
      --depth;
    }
  }
  return max_depth;
}

Result<Json> ParseJson(std::string_view text, size_t max_depth) {
  if (text.find_first_not_of(" \t\r\n") == std::string_view::npos) {
    return Status::InvalidArgument("body is empty; expected a JSON document");
  }
  if (JsonNestingDepth(text, max_depth) > max_depth) {
    return Status::InvalidArgument("JSON is nested deeper than the limit of " + std::to_string(max_depth) +
                                   " levels (max_json_depth)");
  }
  try {
    return Json::parse(text.begin(), text.end());
  } catch (const Json::parse_error& e) {
    return Status::InvalidArgument("body is not valid JSON at byte " + std::to_string(e.byte) + ": " +
                                   std::string(e.what()).substr(std::string(e.what()).find(':') + 2));
  } catch (const Json::exception& e) {  // out_of_range: a number beyond double range ("1e999")
    const std::string what = e.what();
    return Status::InvalidArgument("body is not valid JSON: " + what.substr(what.find(']') + 2));
  }
}

Result<std::string> GetString(const Json& obj, const std::string& field) {
  if (!obj.is_object()) return Status::InvalidArgument("expected a JSON object");
  auto it = obj.find(field);
  if (it == obj.end() || it->is_null()) {
    return Status::InvalidArgument("missing required field '" + field + "'")
        .WithDetail(ErrorDetail::Field(field, "is required"));
  }
  if (!it->is_string()) {
    return Status::InvalidArgument("field '" + field + "' must be a string")
        .WithDetail(ErrorDetail::Field(field, "must be a string"));
  }
  return it->get<std::string>();
}

Result<int64_t> GetInt(const Json& obj, const std::string& field) {
  if (!obj.is_object()) return Status::InvalidArgument("expected a JSON object");
  auto it = obj.find(field);
  if (it == obj.end() || it->is_null()) {
    return Status::InvalidArgument("missing required field '" + field + "'")
        .WithDetail(ErrorDetail::Field(field, "is required"));
  }
  if (!it->is_number_integer()) {
    return Status::InvalidArgument("field '" + field + "' must be an integer")
        .WithDetail(ErrorDetail::Field(field, "must be an integer"));
  }
  return it->get<int64_t>();
}

Result<double> GetNumber(const Json& obj, const std::string& field) {
  if (!obj.is_object()) return Status::InvalidArgument("expected a JSON object");
  auto it = obj.find(field);
  if (it == obj.end() || it->is_null()) {
    return Status::InvalidArgument("missing required field '" + field + "'")
        .WithDetail(ErrorDetail::Field(field, "is required"));
  }
  if (!it->is_number()) {
    return Status::InvalidArgument("field '" + field + "' must be a number")
        .WithDetail(ErrorDetail::Field(field, "must be a number"));
  }
  return it->get<double>();
}

std::string GetStringOr(const Json& obj, const std::string& field, const std::string& fallback) {
  if (!obj.is_object()) return fallback;
  auto it = obj.find(field);
  return (it != obj.end() && it->is_string()) ? it->get<std::string>() : fallback;
}

int64_t GetIntOr(const Json& obj, const std::string& field, int64_t fallback) {
  if (!obj.is_object()) return fallback;
  auto it = obj.find(field);
  return (it != obj.end() && it->is_number_integer()) ? it->get<int64_t>() : fallback;
}

double GetNumberOr(const Json& obj, const std::string& field, double fallback) {
  if (!obj.is_object()) return fallback;
  auto it = obj.find(field);
  return (it != obj.end() && it->is_number()) ? it->get<double>() : fallback;
}

std::string DumpJson(const Json& j, int indent) {
  return j.dump(indent, ' ', false, Json::error_handler_t::replace);
}

Json StatusToJson(const Status& st) {
  Json j = {{"code", StatusCodeName(st.code())}, {"message", st.message()}};
  if (!st.details().empty()) {
    Json errors = Json::array();
    for (const auto& d : st.details()) {
      Json e = {{"message", d.message}};
      if (!d.field.empty()) e["field"] = d.field;
      if (d.line >= 0) e["line"] = d.line;
      if (!d.column.empty()) e["column"] = d.column;
      if (d.position >= 0) e["position"] = d.position;
      errors.push_back(std::move(e));
    }
    j["errors"] = std::move(errors);
  }
  return j;
}

Status StatusFromJson(const Json& j) {
  if (!j.is_object() || !j.contains("code") || !j["code"].is_string()) {
    return Status::Internal("unrecognised error record: " + DumpJson(j).substr(0, 200));
  }
  const std::string code_name = j["code"].get<std::string>();
  StatusCode code = StatusCode::kInternal;
  for (int c = 1; c <= static_cast<int>(StatusCode::kInternal); ++c) {
    if (code_name == StatusCodeName(static_cast<StatusCode>(c))) code = static_cast<StatusCode>(c);
  }
  Status st(code, GetStringOr(j, "message", ""));
  if (j.contains("errors") && j["errors"].is_array()) {
    for (const auto& e : j["errors"]) {
      if (!e.is_object()) continue;
      ErrorDetail d;
      d.message = GetStringOr(e, "message", "");
      d.field = GetStringOr(e, "field", "");
      d.line = GetIntOr(e, "line", -1);
      d.column = GetStringOr(e, "column", "");
      d.position = GetIntOr(e, "position", -1);
      st = std::move(st).WithDetail(std::move(d));
    }
  }
  return st;
}

}  // namespace lathe
