#include "api/problem.h"

namespace lathe {

int HttpStatusFor(StatusCode code) {
  switch (code) {
    case StatusCode::kOk: return 200;
    case StatusCode::kInvalidArgument: return 400;
    case StatusCode::kUnauthenticated: return 401;
    case StatusCode::kPermissionDenied: return 403;
    case StatusCode::kNotFound: return 404;
    case StatusCode::kDeadlineExceeded: return 408;
    case StatusCode::kAlreadyExists: return 409;
    case StatusCode::kFailedPrecondition: return 409;
    case StatusCode::kCancelled: return 409;
    case StatusCode::kPayloadTooLarge: return 413;
    case StatusCode::kUnsupportedMedia: return 415;
    case StatusCode::kResourceExhausted: return 429;
    case StatusCode::kHeadersTooLarge: return 431;
    case StatusCode::kUnavailable: return 503;
    case StatusCode::kDataLoss: return 500;
    case StatusCode::kInternal: return 500;
  }
  return 500;
}

const char* HttpReason(int status) {
  switch (status) {
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 204: return "No Content";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 413: return "Content Too Large";
    case 415: return "Unsupported Media Type";
    case 422: return "Unprocessable Content";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 503: return "Service Unavailable";
    default: return "Error";
  }
}

namespace {
std::string ProblemType(int status) {
  switch (status) {
    case 400: return "urn:lathe:problem:invalid-request";
    case 401: return "urn:lathe:problem:unauthenticated";
    case 403: return "urn:lathe:problem:forbidden";
    case 404: return "urn:lathe:problem:not-found";
    case 405: return "urn:lathe:problem:method-not-allowed";
    case 408: return "urn:lathe:problem:timeout";
    case 409: return "urn:lathe:problem:conflict";
    case 413: return "urn:lathe:problem:too-large";
    case 415: return "urn:lathe:problem:unsupported-media-type";
    case 429: return "urn:lathe:problem:too-many-requests";
    case 431: return "urn:lathe:problem:headers-too-large";
    case 503: return "urn:lathe:problem:unavailable";
    default: return "urn:lathe:problem:internal";
  }
}
}  // namespace

void WriteProblem(int http_status, const std::string& detail, const HttpRequest& req, HttpResponse& res,
                  const std::vector<ErrorDetail>& details) {
  Json body = {{"type", ProblemType(http_status)},
               {"title", HttpReason(http_status)},
               {"status", http_status},
               {"detail", detail},
               {"instance", req.path},
               {"request_id", req.request_id}};
  if (!details.empty()) {
    Json errors = Json::array();
    for (const auto& d : details) {
      Json e = Json::object();
      if (!d.field.empty()) e["field"] = d.field;
      if (d.line >= 0) e["line"] = d.line;
      if (!d.column.empty()) e["column"] = d.column;
      if (d.position >= 0) e["position"] = d.position;
      e["message"] = d.message;
      errors.push_back(std::move(e));
    }
    body["errors"] = std::move(errors);
  }
  res.status = http_status;
  res.content_type = "application/problem+json";
  res.body = DumpJson(body);
  if (http_status == 401) res.headers.emplace_back("WWW-Authenticate", "Bearer realm=\"lathe\"");
}

void WriteProblem(const Status& status, const HttpRequest& req, HttpResponse& res) {
  int code = HttpStatusFor(status.code());
  // Internal errors keep their detail in the log, not in the response. Data loss is told: the caller must know
  // that stored data failed its integrity check (a tampered or corrupt blob, a missing master key), and the
  // message names only the blob and what failed, never content or keys.
  std::string detail = code >= 500 && status.code() != StatusCode::kUnavailable &&
                               status.code() != StatusCode::kDataLoss
                           ? "internal error; see the server log for request " + req.request_id
                           : status.message();
  WriteProblem(code, detail, req, res, status.details());
}

void WriteJson(int http_status, const Json& body, HttpResponse& res) {
  res.status = http_status;
  res.content_type = "application/json";
  res.body = DumpJson(body);
}

}  // namespace lathe
