// The one place where internal error codes become HTTP: RFC 9457 application/problem+json bodies with
// type, title, status, detail, instance, request_id and, for validation errors, errors[] pointing at a
// field, line or column.
#pragma once

#include <string>

#include "common/json.h"
#include "common/status.h"
#include "server/http_server.h"

namespace lathe {

int HttpStatusFor(StatusCode code);
const char* HttpReason(int status);

// Renders `status` into `res` as problem+json. `instance` is the request path.
void WriteProblem(const Status& status, const HttpRequest& req, HttpResponse& res);
// Same for an HTTP status decided outside Status (e.g. 405, or the server's own 408/413/431).
void WriteProblem(int http_status, const std::string& detail, const HttpRequest& req, HttpResponse& res,
                  const std::vector<ErrorDetail>& details = {});

void WriteJson(int http_status, const Json& body, HttpResponse& res);

}  // namespace lathe
