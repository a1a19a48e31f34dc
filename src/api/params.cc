#include "api/params.h"

#include <charconv>

#include "common/ids.h"

namespace lathe {

namespace {
bool ParseInt64(const std::string& s, int64_t* out) {
  if (s.empty()) return false;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), *out);
  return ec == std::errc() && p == s.data() + s.size();
}
}  // namespace

Result<int64_t> QueryInt(const HttpRequest& req, const std::string& name, int64_t fallback, int64_t min,
                         int64_t max) {
  const std::string* v = req.Query(name);
  if (!v) return fallback;
  int64_t n = 0;
  if (!ParseInt64(*v, &n) || n < min || n > max) {
    std::string msg = "must be an integer from " + std::to_string(min) + " to " + std::to_string(max);
    return Status::InvalidArgument("query parameter '" + name + "' " + msg)
        .WithDetail(ErrorDetail::Field(name, msg));
  }
  return n;
}

Result<int64_t> ParseVersion(const std::string& text, const std::string& what) {
  if (text == "latest") return 0;
  int64_t n = 0;
  if (!ParseInt64(text, &n) || n < 1) {
    return Status::InvalidArgument(what + " version must be a positive integer or 'latest', not '" + text + "'")
        .WithDetail(ErrorDetail::Field("version", "must be a positive integer or 'latest'"));
  }
  return n;
}

Status CheckName(const std::string& name, const std::string& field) {
  if (IsValidName(name)) return Status::Ok();
  return Status::InvalidArgument("invalid " + field + " '" + name.substr(0, 80) + "': " + NameRules())
      .WithDetail(ErrorDetail::Field(field, NameRules()));
}

Result<int64_t> OptionalVersionField(const Json& body, const std::string& field) {
  auto it = body.find(field);
  if (it == body.end() || it->is_null()) return 0;
  if (it->is_string() && *it == "latest") return 0;
  if (!it->is_number_integer() || it->get<int64_t>() < 1) {
    return Status::InvalidArgument("field '" + field + "' must be a positive integer")
        .WithDetail(ErrorDetail::Field(field, "must be a positive integer"));
  }
  return it->get<int64_t>();
}

}  // namespace lathe
