// Streaming downloads for the `lathe` CLI (dataset exports, quarantined rows), on libcurl.
//
// Guarantees: a 2xx body is written to the sink as it arrives (memory stays bounded by libcurl's buffer,
// whatever the size); a non-2xx body (problem+json) is kept in memory instead, capped at 1 MiB, and never
// written to the sink. The request carries the bearer token when set, has a connect timeout and a stall
// timeout (fails if under 1 byte/s for the stall period) but no total timeout. Transport failures are
// kUnavailable / kDeadlineExceeded naming the URL; a sink that fails (disk full) is kInternal. One call owns
// its own curl handle: thread-compatible.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "cli/http_client.h"
#include "common/status.h"

namespace lathe::cli {

// Receives each chunk of a 2xx body; returns false to abort (write failure).
using DownloadSink = std::function<bool(std::string_view chunk)>;
// Bytes received so far and the total when the server sent Content-Length (else 0).
using DownloadProgressFn = std::function<void(uint64_t received_bytes, uint64_t total_bytes)>;

struct DownloadResult {
  long status = 0;
  std::string content_type;
  std::string error_body;      // the body of a non-2xx response
  uint64_t bytes_written = 0;  // bytes handed to the sink
  bool ok() const { return status >= 200 && status < 300; }
};

// GETs base_url + path_and_query, streaming a 2xx body into `sink`.
Result<DownloadResult> Download(const HttpClientOptions& options, const std::string& path_and_query,
                                const DownloadSink& sink, const DownloadProgressFn& progress);

}  // namespace lathe::cli
