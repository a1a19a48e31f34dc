// JSON helpers around nlohmann::json: bounded parsing (depth limit checked before the parser runs, so a
// hostile body cannot exhaust the stack) and typed field access that reports which field is wrong.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "common/status.h"

namespace lathe {

using Json = nlohmann::json;

// Parses `text` as one JSON document. Errors are kInvalidArgument naming the byte offset, or the depth limit.
Result<Json> ParseJson(std::string_view text, size_t max_depth = 64);

// Returns the deepest nesting of arrays/objects in `text` (strings are skipped), stopping early past `limit`.
size_t JsonNestingDepth(std::string_view text, size_t limit);

// Typed access to a member of a JSON object, naming the field in errors.
Result<std::string> GetString(const Json& obj, const std::string& field);
Result<int64_t> GetInt(const Json& obj, const std::string& field);
Result<double> GetNumber(const Json& obj, const std::string& field);
std::string GetStringOr(const Json& obj, const std::string& field, const std::string& fallback);
int64_t GetIntOr(const Json& obj, const std::string& field, int64_t fallback);
double GetNumberOr(const Json& obj, const std::string& field, double fallback);

// Dumps with invalid UTF-8 replaced rather than throwing.
std::string DumpJson(const Json& j, int indent = -1);

// A Status as JSON and back, details included: {"code":"invalid_argument","message":…,"errors":[{"line",…}]}.
// Lets a job record the structured error its caller turns into problem+json. StatusFromJson of anything
// unrecognised is kInternal with the text it found.
Json StatusToJson(const Status& st);
Status StatusFromJson(const Json& j);

}  // namespace lathe
