// A small blocking HTTP/1.1 client for the `lathe` CLI, on libcurl.
//
// Guarantees: one connection is kept alive and reused across calls of one HttpClient; every request has a
// connect timeout and either a total timeout (JSON calls) or a stall timeout (uploads, which may run long);
// TCP_NODELAY is on; uploads stream the file from disk in fixed-size chunks (never the whole file in memory)
// with `Expect: 100-continue` disabled. Every request carries `Authorization: Bearer <token>` when a token is
// set. Transport failures (connection refused, DNS, timeout, TLS) come back as kUnavailable /
// kDeadlineExceeded Status values naming the URL; any HTTP status, including 4xx/5xx, is a successful
// HttpResult for the caller to interpret. Not thread-safe: one HttpClient per thread.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <cstdlib>
#include <string>
#include <string_view>

#include "common/status.h"

namespace lathe::cli {

struct HttpResult {
  long status = 0;             // HTTP status code
  std::string content_type;    // the Content-Type response header, "" if absent
  std::string body;            // the whole response body
  bool ok() const { return status >= 200 && status < 300; }
};

// LATHE_CA_CERT: a PEM file of CAs to trust instead of the system's (e.g. DATA_DIR/tls/self-signed.crt of a
// server started with --tls-self-signed); "" = the system CAs.
inline std::string DefaultCaFile() {
  const char* v = std::getenv("LATHE_CA_CERT");
  return v != nullptr ? v : "";
}

struct HttpClientOptions {
  std::string base_url;                  // "http://host:port", no trailing slash needed
  std::string token;                     // bearer token; empty sends no Authorization header
  long connect_timeout_ms = 10'000;
  std::string ca_file = DefaultCaFile();  // CAs for https URLs; "" = the system's
  long request_timeout_ms = 120'000;     // total time for one JSON request
  long upload_stall_timeout_s = 300;     // an upload fails if under 1 byte/s for this long
  size_t max_response_bytes = 512u << 20;  // a larger response is an error, not an allocation
};

// Progress of an upload: bytes sent so far and the total.
using UploadProgressFn = std::function<void(uint64_t sent_bytes, uint64_t total_bytes)>;

class HttpClient {
 public:
  explicit HttpClient(HttpClientOptions options);
  ~HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  const std::string& base_url() const { return options_.base_url; }

  // Sends `method` to base_url + path_and_query. A non-empty json_body is sent with Content-Type
  // application/json.
  Result<HttpResult> Send(const std::string& method, const std::string& path_and_query,
                          const std::string& json_body = "");

  // POSTs the file at file_path as the request body, streamed from disk. Errors opening or reading the file
  // are kNotFound / kInvalidArgument naming the path.
  Result<HttpResult> UploadFile(const std::string& path_and_query, const std::string& file_path,
                                const std::string& content_type, const UploadProgressFn& progress);

 private:
  struct Handle;
  Result<HttpResult> Perform(const std::string& url);

  HttpClientOptions options_;
  std::unique_ptr<Handle> handle_;
};

// Percent-encodes everything except RFC 3986 unreserved characters (for path segments and query values).
std::string UrlEncode(std::string_view text);

// Joins base and path with exactly one '/' between them.
std::string JoinUrl(std::string_view base, std::string_view path);

}  // namespace lathe::cli
