#include "cli/http_client.h"

#include <curl/curl.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <mutex>

namespace lathe::cli {

namespace {

void GlobalInitOnce() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

struct ResponseSink {
  std::string* body;
  size_t limit;
  bool overflow = false;
};

size_t WriteBody(char* data, size_t size, size_t nmemb, void* user) {
  auto* sink = static_cast<ResponseSink*>(user);
  size_t n = size * nmemb;
  if (sink->body->size() + n > sink->limit) {
    sink->overflow = true;
    return 0;  // aborts the transfer with CURLE_WRITE_ERROR
  }
  sink->body->append(data, n);
  return n;
}

struct UploadSource {
  std::FILE* file = nullptr;
  bool read_error = false;
  int read_errno = 0;
};

size_t ReadBody(char* buffer, size_t size, size_t nitems, void* user) {
  auto* src = static_cast<UploadSource*>(user);
  size_t n = std::fread(buffer, 1, size * nitems, src->file);
  if (n == 0 && std::ferror(src->file)) {
    src->read_error = true;
    src->read_errno = errno;
    return CURL_READFUNC_ABORT;
  }
  return n;
}

int UploadProgress(void* user, curl_off_t /*dltotal*/, curl_off_t /*dlnow*/, curl_off_t ultotal,
                   curl_off_t ulnow) {
  const auto* fn = static_cast<const UploadProgressFn*>(user);
  if (fn && *fn && ultotal > 0) (*fn)(static_cast<uint64_t>(ulnow), static_cast<uint64_t>(ultotal));
  return 0;
}

struct HeaderList {
  curl_slist* list = nullptr;
  void Add(const std::string& h) {
    curl_slist* next = curl_slist_append(list, h.c_str());
    if (next) list = next;
  }
  ~HeaderList() { curl_slist_free_all(list); }
};

}  // namespace

struct HttpClient::Handle {
  CURL* curl = nullptr;
  char error[CURL_ERROR_SIZE] = {0};
  ~Handle() {
    if (curl) curl_easy_cleanup(curl);
  }
};

std::string UrlEncode(std::string_view text) {
  static const char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(text.size());
  for (unsigned char c : text) {
    if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_' ||
        c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

std::string JoinUrl(std::string_view base, std::string_view path) {
  while (!base.empty() && base.back() == '/') base.remove_suffix(1);
  while (!path.empty() && path.front() == '/') path.remove_prefix(1);
  std::string out(base);
  out += '/';
  out += path;
  return out;
}

HttpClient::HttpClient(HttpClientOptions options) : options_(std::move(options)), handle_(new Handle) {
  GlobalInitOnce();
  handle_->curl = curl_easy_init();
}

HttpClient::~HttpClient() = default;

Result<HttpResult> HttpClient::Perform(const std::string& url) {
  CURL* c = handle_->curl;
  HttpResult result;
  ResponseSink sink{&result.body, options_.max_response_bytes};
  handle_->error[0] = '\0';
  curl_easy_setopt(c, CURLOPT_URL, url.c_str());
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, handle_->error);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, WriteBody);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &sink);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_TCP_NODELAY, 1L);
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, options_.connect_timeout_ms);
  if (!options_.ca_file.empty()) curl_easy_setopt(c, CURLOPT_CAINFO, options_.ca_file.c_str());
  curl_easy_setopt(c, CURLOPT_ACCEPT_ENCODING, "");  // whatever libcurl can decode
  curl_easy_setopt(c, CURLOPT_USERAGENT, "lathe-cli/0.1");
  CURLcode rc = curl_easy_perform(c);
  if (rc != CURLE_OK) {
    if (sink.overflow) {
      return Status::ResourceExhausted("response from " + url + " is larger than the limit of " +
                                       std::to_string(options_.max_response_bytes) + " bytes");
    }
    std::string why = handle_->error[0] ? handle_->error : curl_easy_strerror(rc);
    if (rc == CURLE_OPERATION_TIMEDOUT) return Status::DeadlineExceeded("request to " + url + " timed out: " + why);
    if (rc == CURLE_COULDNT_CONNECT || rc == CURLE_COULDNT_RESOLVE_HOST) {
      return Status::Unavailable("cannot connect to the lathe server at " + options_.base_url + ": " + why +
                                 " (is `lathe serve` running? set --url or LATHE_URL)");
    }
    return Status::Unavailable("request to " + url + " failed: " + why);
  }
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &result.status);
  char* ct = nullptr;
  if (curl_easy_getinfo(c, CURLINFO_CONTENT_TYPE, &ct) == CURLE_OK && ct) result.content_type = ct;
  return result;
}

Result<HttpResult> HttpClient::Send(const std::string& method, const std::string& path_and_query,
                                    const std::string& json_body) {
  if (!handle_->curl) return Status::Internal("libcurl failed to initialise");
  CURL* c = handle_->curl;
  curl_easy_reset(c);
  HeaderList headers;
  headers.Add("Accept: application/json");
  if (!options_.token.empty()) headers.Add("Authorization: Bearer " + options_.token);
  if (method == "GET") {
    curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
  } else {
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method.c_str());
    // POSTFIELDS with an explicit size: the body may contain NUL bytes and is sent even when empty.
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(json_body.size()));
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, json_body.data());
    headers.Add("Content-Type: application/json");
    headers.Add("Expect:");
  }
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers.list);
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, options_.request_timeout_ms);
  return Perform(JoinUrl(options_.base_url, path_and_query));
}

Result<HttpResult> HttpClient::UploadFile(const std::string& path_and_query, const std::string& file_path,
                                          const std::string& content_type, const UploadProgressFn& progress) {
  if (!handle_->curl) return Status::Internal("libcurl failed to initialise");
  struct stat st {};
  if (::stat(file_path.c_str(), &st) != 0) {
    return Status::NotFound("cannot open " + file_path + ": " + std::strerror(errno));
  }
  if (!S_ISREG(st.st_mode)) return Status::InvalidArgument(file_path + " is not a regular file");
  UploadSource src;
  src.file = std::fopen(file_path.c_str(), "rb");
  if (!src.file) return Status::NotFound("cannot open " + file_path + ": " + std::strerror(errno));
  struct Closer {
    std::FILE* f;
    ~Closer() { std::fclose(f); }
  } closer{src.file};

  CURL* c = handle_->curl;
  curl_easy_reset(c);
  HeaderList headers;
  headers.Add("Accept: application/json");
  if (!options_.token.empty()) headers.Add("Authorization: Bearer " + options_.token);
  headers.Add("Content-Type: " + content_type);
  headers.Add("Expect:");
  curl_easy_setopt(c, CURLOPT_POST, 1L);
  curl_easy_setopt(c, CURLOPT_READFUNCTION, ReadBody);
  curl_easy_setopt(c, CURLOPT_READDATA, &src);
  curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(st.st_size));
  curl_easy_setopt(c, CURLOPT_UPLOAD_BUFFERSIZE, 512L * 1024L);
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers.list);
  // No total timeout (a big file on a slow link takes as long as it takes), but a stalled transfer fails.
  curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
  curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, options_.upload_stall_timeout_s);
  curl_easy_setopt(c, CURLOPT_NOPROGRESS, progress ? 0L : 1L);
  curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, UploadProgress);
  curl_easy_setopt(c, CURLOPT_XFERINFODATA, const_cast<void*>(static_cast<const void*>(&progress)));
  auto result = Perform(JoinUrl(options_.base_url, path_and_query));
  if (src.read_error) {
    return Status::InvalidArgument("reading " + file_path + " failed: " + std::strerror(src.read_errno));
  }
  return result;
}

}  // namespace lathe::cli
