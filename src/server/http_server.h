// HTTP/1.1 server on Boost.Asio/Beast: keep-alive, pipelining, chunked request bodies, Expect: 100-continue,
// bodies either in memory or spooled to a temp file, limits with the right status, graceful shutdown.
//
// Guarantees:
// - Every response carries Date, Server: lathe, X-Request-Id and ServerOptions::security_headers (unless the
//   handler set a header of the same name). TCP_NODELAY is set on every connection.
// - Limits: headers over max_header_bytes -> 431; body over the BodyPolicy limit -> 413; headers not complete
//   within header_read_timeout_ms -> 408; body not complete within request_timeout_ms -> 408; malformed
//   request -> 400. The server asks HttpService::OnRejected to fill the response, sends it with
//   `Connection: close` and closes the connection. An idle keep-alive connection is closed silently after
//   keepalive_timeout_ms.
// - A handler (OnHeaders / Handle) that throws gets a 500 through OnRejected; the process never crashes on
//   request input.
// - A spooled body is in `body_file` (created 0600 by mkstemp in spool_dir); it is deleted as soon as Handle()
//   returns, before the response is written (rename it away inside Handle() to keep it), and on every error
//   path. Memory stays bounded for any upload size.
// - One structured access log line per request: LogInfo("access", {method, path, status, bytes, duration_ms,
//   request_id, remote, caller, route}), unless ServerOptions::access_log is false.
// - No lock is taken per request; requests of one connection are handled in order on one strand, requests of
//   different connections run in parallel on io_threads threads. Handle() blocks its I/O thread while it runs;
//   a response it defers (HttpResponse::Defer) does not: the connection's coroutine waits on a timer.
//
// Thread safety: Run() is called once, from one thread. Stop() may be called from any thread (or from an
// asio signal_set handler), any number of times, before or during Run(); it takes a mutex, so it is not
// async-signal-safe in a raw POSIX signal handler. Destroy the server only after Run() has returned (or if
// it never ran). The service and ServerOptions::metrics must outlive the server.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/status.h"

namespace lathe {

class MetricsRegistry;

struct HttpRequest {
  std::string method;        // "GET", "POST", ...
  std::string target;        // raw request target "/api/v1/x?y=1"
  std::string path;          // percent-decoded path without the query string
  std::vector<std::pair<std::string, std::string>> query;    // percent-decoded, '+' as space
  std::vector<std::pair<std::string, std::string>> headers;  // names lower-cased
  std::string body;          // the body, when it was read into memory
  std::string body_file;     // when spooled: path of a temp file holding the body; deleted when Handle() returns
  std::string remote_addr;   // "127.0.0.1:53422"
  std::string request_id;    // X-Request-Id from the client if it is 1-128 chars of [A-Za-z0-9._:-], else generated
  int version = 11;          // 10 for HTTP/1.0, 11 for HTTP/1.1

  const std::string* Header(std::string_view lower_name) const;  // nullptr if absent
  const std::string* Query(std::string_view name) const;         // nullptr if absent
  // Empties every field, keeping allocated capacity (the server reuses one object per connection).
  void Clear();
};

struct HttpResponse {
  int status = 200;
  std::string content_type = "application/json";
  std::vector<std::pair<std::string, std::string>> headers;  // extra headers; CR/LF in a value drops it;
                                                             // Content-Length/Transfer-Encoding/Date/Server
                                                             // are ignored; "Connection: close" is honoured
  std::string body;
  // When set, the body is this file's contents instead of `body`, streamed in blocks (bounded memory for
  // exports of any size). The file is removed after the response if body_file_owned.
  std::string body_file;
  bool body_file_owned = false;
  std::string route;    // set by the handler: route pattern for logs/metrics ("/api/v1/jobs/{id}")
  std::string caller;   // set by the handler: who made the call, for the access log

  // Answering later, off the I/O thread (micro-batching): a handler calls Defer() before it returns and keeps
  // the callback it gets. The connection then waits for it without holding an I/O thread; the request and this
  // response stay valid, and the handler (or whoever it handed them to) fills the response and calls the
  // callback exactly once, from any thread, to send it. An empty callback means this server cannot defer here
  // (answer before returning).
  std::function<void()> Defer() { return defer_hook ? defer_hook() : std::function<void()>(); }
  std::function<std::function<void()>()> defer_hook;  // set by the server for each request

  void Clear();  // every field but defer_hook
};

// Where the body goes and its size limit; max_bytes == 0 means ServerOptions::max_body_bytes.
struct BodyPolicy {
  bool spool_to_file = false;
  size_t max_bytes = 0;
};

class HttpService {  // implemented by the api layer
 public:
  virtual ~HttpService() = default;
  // Called once the headers are read, before the body: where the body goes and its size limit.
  virtual BodyPolicy OnHeaders(const HttpRequest& req) = 0;
  // Produces the response. Called on an I/O thread; may block (e.g. a CSV import).
  virtual void Handle(HttpRequest& req, HttpResponse& res) = 0;
  // The server itself rejected the request (status 400/408/413/431/500, `detail` says why): fill `res`
  // (the api layer renders problem+json and counts it). `req` holds whatever was parsed so far.
  virtual void OnRejected(const HttpRequest& req, int status, const std::string& detail, HttpResponse& res) = 0;
};

struct ServerOptions {
  std::string host = "127.0.0.1";
  uint16_t port = 8080;                     // 0 picks a free port; see HttpServer::port()
  int io_threads = 2;
  size_t max_header_bytes = 16 * 1024;      // over -> 431
  size_t max_body_bytes = 16 << 20;         // default limit for in-memory bodies -> 413 (BodyPolicy may override)
  int header_read_timeout_ms = 10000;       // slow headers -> 408
  int request_timeout_ms = 300000;          // whole body read -> 408
  int keepalive_timeout_ms = 60000;         // idle keep-alive connection closed
  std::string spool_dir = "/tmp";           // where spooled bodies go
  bool access_log = true;                   // one LogInfo("access", ...) line per request
  // TLS: with both files (PEM) set, the server speaks HTTPS only, TLS 1.2 and newer, and adds
  // Strict-Transport-Security to security_headers. A bad or mismatched file fails Create (kInvalidArgument).
  std::string tls_cert_file;
  std::string tls_key_file;
  // Sent on every response (also 4xx/5xx from the server itself) unless the handler set the same header.
  // The defaults suit a JSON API: nothing may be framed, sniffed, or loaded by the document.
  std::vector<std::pair<std::string, std::string>> security_headers = {
      {"Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'"},
      {"X-Content-Type-Options", "nosniff"},
      {"X-Frame-Options", "DENY"},
      {"Referrer-Policy", "no-referrer"},
  };
  // When set, the server records lathe_http_requests_total{method,route,status},
  // lathe_http_request_duration_seconds{route}, lathe_http_connections_open and lathe_http_requests_in_flight.
  // Must outlive the server.
  MetricsRegistry* metrics = nullptr;
};

class HttpServer {
 public:
  // Binds and listens (errors: kInvalidArgument for a bad host, kUnavailable when the bind/listen fails).
  // `service` must outlive the server.
  static Result<std::unique_ptr<HttpServer>> Create(const ServerOptions& options, HttpService* service);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  uint16_t port() const;       // the real bound port
  void Run();                  // serve on io_threads threads until Stop(); returns after in-flight requests finish
  void Stop();                 // graceful: stop accepting, let in-flight requests finish, close idle connections

  struct Impl;

 private:
  explicit HttpServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Helpers, exposed for tests and for other layers that parse URLs.
// Percent-decodes `in`; '+' becomes a space when plus_as_space. False on a malformed escape ("%4", "%zz").
bool PercentDecode(std::string_view in, bool plus_as_space, std::string* out);
// Splits "a=1&b=%20" into decoded pairs (a key without '=' gets an empty value). False on a malformed escape.
bool ParseQueryString(std::string_view qs, std::vector<std::pair<std::string, std::string>>* out);
// 1-128 chars of [A-Za-z0-9._:-].
bool IsValidRequestId(std::string_view id);

}  // namespace lathe
