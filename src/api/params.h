// Validation helpers shared by route handlers: query integers, path versions, names. Each error names
// the parameter it is about.
#pragma once

#include <string>

#include "api/router.h"
#include "common/status.h"

namespace lathe {

// ?name=123 as an integer in [min, max]; `fallback` when absent.
Result<int64_t> QueryInt(const HttpRequest& req, const std::string& name, int64_t fallback, int64_t min, int64_t max);
// A {version} path segment: a positive integer, or "latest" (returned as 0).
Result<int64_t> ParseVersion(const std::string& text, const std::string& what);
// A user-chosen resource name (dataset, model, deployment) in `field`.
Status CheckName(const std::string& name, const std::string& field);
// An optional integer field of a JSON body: 0 when absent; error naming the field when not a positive integer.
Result<int64_t> OptionalVersionField(const Json& body, const std::string& field);

}  // namespace lathe
