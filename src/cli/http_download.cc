#include "cli/http_download.h"

#include <curl/curl.h>

#include <memory>
#include <mutex>

namespace lathe::cli {

namespace {

constexpr size_t kMaxErrorBodyBytes = 1u << 20;

struct Transfer {
  CURL* curl = nullptr;
  const DownloadSink* sink = nullptr;
  const DownloadProgressFn* progress = nullptr;
  DownloadResult* result = nullptr;
  bool status_known = false;
  bool success = false;
  bool sink_failed = false;
};

size_t OnBody(char* data, size_t size, size_t nmemb, void* user) {
  auto* t = static_cast<Transfer*>(user);
  const size_t n = size * nmemb;
  if (!t->status_known) {
    long code = 0;
    curl_easy_getinfo(t->curl, CURLINFO_RESPONSE_CODE, &code);
    t->success = code >= 200 && code < 300;
    t->status_known = true;
  }
  if (!t->success) {
    std::string& body = t->result->error_body;
    if (body.size() < kMaxErrorBodyBytes) body.append(data, std::min(n, kMaxErrorBodyBytes - body.size()));
    return n;
  }
  if (!(*t->sink)(std::string_view(data, n))) {
    t->sink_failed = true;
    return 0;  // aborts with CURLE_WRITE_ERROR
  }
  t->result->bytes_written += n;
  return n;
}

int OnProgress(void* user, curl_off_t dltotal, curl_off_t dlnow, curl_off_t, curl_off_t) {
  auto* t = static_cast<Transfer*>(user);
  if (t->progress && *t->progress && t->success) {
    (*t->progress)(static_cast<uint64_t>(dlnow), static_cast<uint64_t>(dltotal > 0 ? dltotal : 0));
  }
  return 0;
}

struct CurlDeleter {
  void operator()(CURL* c) const { curl_easy_cleanup(c); }
};
struct SlistDeleter {
  void operator()(curl_slist* l) const { curl_slist_free_all(l); }
};

}  // namespace

Result<DownloadResult> Download(const HttpClientOptions& options, const std::string& path_and_query,
                                const DownloadSink& sink, const DownloadProgressFn& progress) {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
  std::unique_ptr<CURL, CurlDeleter> curl(curl_easy_init());
  if (!curl) return Status::Internal("libcurl failed to initialise");
  const std::string url = JoinUrl(options.base_url, path_and_query);
  DownloadResult result;
  Transfer t{curl.get(), &sink, &progress, &result};
  char error[CURL_ERROR_SIZE] = {0};

  curl_slist* raw = nullptr;
  auto add = [&](const std::string& h) {
    if (curl_slist* next = curl_slist_append(raw, h.c_str())) raw = next;
  };
  add("Accept: */*");
  if (!options.token.empty()) add("Authorization: Bearer " + options.token);
  std::unique_ptr<curl_slist, SlistDeleter> headers(raw);

  CURL* c = curl.get();
  curl_easy_setopt(c, CURLOPT_URL, url.c_str());
  curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers.get());
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, error);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, OnBody);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &t);
  curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
  curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, OnProgress);
  curl_easy_setopt(c, CURLOPT_XFERINFODATA, &t);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_TCP_NODELAY, 1L);
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, options.connect_timeout_ms);
  if (!options.ca_file.empty()) curl_easy_setopt(c, CURLOPT_CAINFO, options.ca_file.c_str());
  curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
  curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, options.upload_stall_timeout_s);
  curl_easy_setopt(c, CURLOPT_ACCEPT_ENCODING, "");
  curl_easy_setopt(c, CURLOPT_USERAGENT, "lathe-cli/0.1");

  const CURLcode rc = curl_easy_perform(c);
  if (t.sink_failed) return Status::Internal("writing the download failed (disk full or closed output?)");
  if (rc != CURLE_OK) {
    const std::string why = error[0] ? error : curl_easy_strerror(rc);
    if (rc == CURLE_OPERATION_TIMEDOUT)
      return Status::DeadlineExceeded("download from " + url + " stalled: " + why);
    if (rc == CURLE_COULDNT_CONNECT || rc == CURLE_COULDNT_RESOLVE_HOST) {
      return Status::Unavailable("cannot connect to the lathe server at " + options.base_url + ": " + why +
                                 " (is `lathe serve` running? set --url or LATHE_URL)");
    }
    return Status::Unavailable("download from " + url + " failed: " + why);
  }
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &result.status);
  char* ct = nullptr;
  if (curl_easy_getinfo(c, CURLINFO_CONTENT_TYPE, &ct) == CURLE_OK && ct) result.content_type = ct;
  return result;
}

}  // namespace lathe::cli
