#include "data/http_source.h"

#include <curl/curl.h>
#include <sys/socket.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <memory>
#include <mutex>
#include <set>

namespace lathe {
namespace {

using Clock = std::chrono::steady_clock;

constexpr int64_t kMaxTimeoutMs = 7LL * 24 * 3600 * 1000;
constexpr size_t kSniffBytes = 64 << 10;
constexpr size_t kMaxCsvHeaderBytes = 16 << 20;
constexpr size_t kErrorBodyBytes = 300;
constexpr size_t kMaxHeaders = 64;
constexpr size_t kMaxHeaderBytes = 8 << 10;
constexpr size_t kMaxJsonDepth = 256;

Status FieldError(const std::string& field, const std::string& msg) {
  return Status::InvalidArgument(field + ": " + msg).WithDetail(ErrorDetail::Field(field, msg));
}

void GlobalInitCurl() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

struct UrlFree {
  void operator()(CURLU* u) const { curl_url_cleanup(u); }
};
using Url = std::unique_ptr<CURLU, UrlFree>;

std::string UrlPart(CURLU* u, CURLUPart part) {
  char* p = nullptr;
  if (curl_url_get(u, part, &p, 0) != CURLUE_OK || p == nullptr) return "";
  std::string s = p;
  curl_free(p);
  return s;
}

// `ref` resolved against `base` (RFC 3986); empty on failure.
std::string ResolveUrl(const std::string& base, const std::string& ref) {
  Url u(curl_url());
  if (!u || curl_url_set(u.get(), CURLUPART_URL, base.c_str(), 0) != CURLUE_OK) return "";
  if (curl_url_set(u.get(), CURLUPART_URL, ref.c_str(), 0) != CURLUE_OK) return "";
  return UrlPart(u.get(), CURLUPART_URL);
}

// `url` with query parameter `name` set to `value` (other occurrences of `name` removed).
std::string WithQueryParam(const std::string& url, const std::string& name, const std::string& value) {
  Url u(curl_url());
  if (!u || curl_url_set(u.get(), CURLUPART_URL, url.c_str(), 0) != CURLUE_OK) return "";
  std::string query = UrlPart(u.get(), CURLUPART_QUERY);
  std::string kept;
  size_t start = 0;
  while (start <= query.size() && !query.empty()) {
    size_t amp = query.find('&', start);
    std::string item = query.substr(start, amp == std::string::npos ? std::string::npos : amp - start);
    std::string key = item.substr(0, item.find('='));
    if (!item.empty() && key != name) kept += (kept.empty() ? "" : "&") + item;
    if (amp == std::string::npos) break;
    start = amp + 1;
  }
  kept += (kept.empty() ? "" : "&") + name + "=" + value;
  if (curl_url_set(u.get(), CURLUPART_QUERY, kept.c_str(), 0) != CURLUE_OK) return "";
  return UrlPart(u.get(), CURLUPART_URL);
}

bool IsTokenChar(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) ||
         std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

std::string Lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

std::string Trim(std::string_view s) {
  size_t b = 0, e = s.size();
  while (b < e && std::isspace(static_cast<unsigned char>(s[b]))) ++b;
  while (e > b && std::isspace(static_cast<unsigned char>(s[e - 1]))) --e;
  return std::string(s.substr(b, e - b));
}

Status CheckPointer(const std::string& field, const std::string& p, bool required) {
  if (p.empty()) return required ? FieldError(field, "is required") : Status::Ok();
  try {
    Json::json_pointer jp(p);
    (void)jp;
  } catch (const std::exception&) {
    return FieldError(field, "is not a JSON pointer (RFC 6901, e.g. \"/data\" or \"/links/next\")");
  }
  return Status::Ok();
}

// "csv", "json", "jsonl" or "" from a Content-Type value.
std::string FormatFromContentType(const std::string& content_type) {
  std::string ct = Lower(Trim(content_type.substr(0, content_type.find(';'))));
  if (ct == "text/csv" || ct == "application/csv" || ct == "text/comma-separated-values") return "csv";
  if (ct == "application/x-ndjson" || ct == "application/ndjson" || ct == "application/jsonl" ||
      ct == "application/x-jsonlines" || ct == "application/jsonlines" || ct == "application/json-lines") {
    return "jsonl";
  }
  if (ct == "application/json" || ct == "text/json" ||
      (ct.size() > 5 && ct.compare(ct.size() - 5, 5, "+json") == 0)) {
    return "json";
  }
  if (ct == "text/html" || ct == "application/xhtml+xml") return "html";
  return "";
}

// Decides the format from the first bytes of a body.
std::string SniffFormat(std::string_view head) {
  size_t i = 0;
  if (head.substr(0, 3) == "\xEF\xBB\xBF") i = 3;
  while (i < head.size() && std::isspace(static_cast<unsigned char>(head[i]))) ++i;
  if (i == head.size()) return "";
  char c = head[i];
  if (c == '<') return "html";
  if (c == '[') return "json";
  if (c == '{') {
    // JSON Lines if the first line is a complete JSON value and another line follows.
    size_t nl = head.find('\n', i);
    if (nl == std::string_view::npos) return "json";
    std::string_view first = head.substr(i, nl - i);
    if (!Json::accept(first)) return "json";
    size_t j = nl + 1;
    while (j < head.size() && std::isspace(static_cast<unsigned char>(head[j]))) ++j;
    return j < head.size() ? "jsonl" : "json";
  }
  return "csv";
}

struct CurlFree {
  void operator()(CURL* c) const { curl_easy_cleanup(c); }
};
struct SlistFree {
  void operator()(curl_slist* l) const { curl_slist_free_all(l); }
};

class HttpFetcher {
 public:
  HttpFetcher(const HttpSource& src, const std::function<bool()>& cancel)
      : src_(src),
        cancel_(cancel),
        started_(Clock::now()),
        deadline_(started_ + std::chrono::milliseconds(src.timeout_ms)) {}

  Result<SourceFetch> Run(const std::string& out_path);

 private:
  enum class Mode { kUndecided, kCsvHeader, kStream, kJson, kHttpError, kDiscard };

  struct Page {
    int64_t index = 0;  // 1-based
    std::string url;
    Mode mode = Mode::kUndecided;
    long status = 0;
    std::string content_type;
    std::vector<std::string> links;  // raw Link header values of the final response
    std::string pending;             // sniff buffer, CSV header buffer, or the error body
    std::string json;                // whole JSON page
    int64_t records = 0;
    // CSV/JSONL record counting across chunks.
    bool in_quotes = false;
    bool line_has_content = false;
    Status error;
  };

  static size_t OnWrite(char* data, size_t size, size_t n, void* self);
  static size_t OnHeader(char* data, size_t size, size_t n, void* self);
  static int OnProgress(void* self, curl_off_t, curl_off_t, curl_off_t, curl_off_t);
  static curl_socket_t OnOpenSocket(void* self, curlsocktype purpose, curl_sockaddr* address);

  Status Consume(std::string_view data);
  Status Decide();
  Status StartCsvBody();
  Status WriteCounted(std::string_view data);
  Status FinishPage();
  Status FetchPage(const std::string& url);
  Result<std::string> NextUrl();
  Status HttpStatusError() const;
  Status CurlError(CURLcode rc, const char* errbuf) const;
  std::string PageName() const {
    return "page " + std::to_string(page_.index) + " (" + RedactUrl(page_.url) + ")";
  }
  std::string refused_;  // why the address policy refused the last connection ("" = it did not)

  const HttpSource& src_;
  const std::function<bool()>& cancel_;
  Clock::time_point started_, deadline_;
  std::unique_ptr<CURL, CurlFree> curl_;
  std::unique_ptr<curl_slist, SlistFree> header_list_;
  SpoolFile spool_;
  std::string format_;      // decided on the first page
  std::string csv_header_;  // first page's header record, normalised
  std::string first_content_type_;
  int64_t total_bytes_ = 0;
  int64_t rows_ = 0;
  bool cancelled_ = false;
  Page page_;
  Json json_doc_;  // last parsed JSON page (for the cursor)
};

size_t HttpFetcher::OnHeader(char* data, size_t size, size_t n, void* self) {
  auto* f = static_cast<HttpFetcher*>(self);
  std::string_view line(data, size * n);
  if (line.substr(0, 5) == "HTTP/") {
    f->page_.links.clear();  // a new response (after a redirect or 100-continue) starts
    return size * n;
  }
  size_t colon = line.find(':');
  if (colon != std::string_view::npos && Lower(std::string(line.substr(0, colon))) == "link") {
    f->page_.links.push_back(Trim(line.substr(colon + 1)));
  }
  return size * n;
}

int HttpFetcher::OnProgress(void* self, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
  auto* f = static_cast<HttpFetcher*>(self);
  if (f->cancel_ && f->cancel_()) {
    f->cancelled_ = true;
    return 1;
  }
  return 0;
}

size_t HttpFetcher::OnWrite(char* data, size_t size, size_t n, void* self) {
  auto* f = static_cast<HttpFetcher*>(self);
  Status st = f->Consume(std::string_view(data, size * n));
  if (!st.ok()) {
    f->page_.error = std::move(st);
    return 0;  // aborts the transfer with CURLE_WRITE_ERROR
  }
  return size * n;
}

Status HttpFetcher::Consume(std::string_view data) {
  Page& p = page_;
  if (p.status == 0) {
    curl_easy_getinfo(curl_.get(), CURLINFO_RESPONSE_CODE, &p.status);
    if (p.status >= 400) p.mode = Mode::kHttpError;
    char* ct = nullptr;
    curl_easy_getinfo(curl_.get(), CURLINFO_CONTENT_TYPE, &ct);
    if (ct != nullptr) p.content_type = ct;
  }
  if (p.mode == Mode::kHttpError) {
    p.pending.append(data.substr(0, kErrorBodyBytes - std::min(kErrorBodyBytes, p.pending.size())));
    if (p.pending.size() >= kErrorBodyBytes) return HttpStatusError();
    return Status::Ok();
  }
  if (p.mode == Mode::kDiscard) return Status::Ok();
  total_bytes_ += static_cast<int64_t>(data.size());
  if (total_bytes_ > src_.max_bytes) {
    return Status::PayloadTooLarge("the HTTP source sent more than max_bytes=" +
                                   std::to_string(src_.max_bytes) + " bytes (at " + PageName() + ")");
  }
  switch (p.mode) {
    case Mode::kUndecided:
      p.pending.append(data);
      if (p.pending.size() >= kSniffBytes) RETURN_IF_ERROR(Decide());
      return Status::Ok();
    case Mode::kCsvHeader:
      p.pending.append(data);
      return StartCsvBody();
    case Mode::kStream:
      return WriteCounted(data);
    case Mode::kJson:
      if (p.json.size() + data.size() > static_cast<size_t>(kMaxHttpJsonPageBytes)) {
        return Status::PayloadTooLarge(PageName() + " is a JSON document over " +
                                       std::to_string(kMaxHttpJsonPageBytes) +
                                       " bytes; page the source or serve JSON Lines");
      }
      p.json.append(data);
      return Status::Ok();
    default:
      return Status::Ok();
  }
}

Status HttpFetcher::Decide() {
  Page& p = page_;
  if (format_.empty()) {
    std::string f = src_.format;
    if (f == "auto") {
      f = FormatFromContentType(p.content_type);
      if (f.empty()) f = SniffFormat(p.pending);
      if (f.empty()) {  // empty first page: nothing to decide from, and nothing to land
        p.mode = Mode::kDiscard;
        return Status::Ok();
      }
    }
    if (f == "html") {
      return Status::UnsupportedMedia(PageName() + " is an HTML page (Content-Type '" + p.content_type +
                                      "'), not CSV or JSON data");
    }
    if (src_.pagination.kind == "cursor" && f != "json") {
      return FieldError("pagination.kind", "cursor paging needs JSON pages, but the source sends " + f);
    }
    format_ = f;
    first_content_type_ = p.content_type;
  }
  std::string buffered = std::move(p.pending);
  p.pending.clear();
  if (format_ == "csv") {
    p.mode = Mode::kCsvHeader;
    p.pending = std::move(buffered);
    return StartCsvBody();
  }
  if (format_ == "jsonl") {
    p.mode = Mode::kStream;
    if (spool_.last_byte() != -1 && spool_.last_byte() != '\n') RETURN_IF_ERROR(spool_.Write("\n"));
    return WriteCounted(buffered);
  }
  p.mode = Mode::kJson;
  p.json = std::move(buffered);
  return Status::Ok();
}

// Once the CSV header record is complete: checks it against the first page's and streams the rest.
Status HttpFetcher::StartCsvBody() {
  Page& p = page_;
  bool quoted = false;
  size_t end = std::string::npos;
  for (size_t i = 0; i < p.pending.size(); ++i) {
    char c = p.pending[i];
    if (c == '"') quoted = !quoted;
    if (c == '\n' && !quoted) {
      end = i;
      break;
    }
  }
  if (end == std::string::npos) {
    if (p.pending.size() > kMaxCsvHeaderBytes) {
      return Status::InvalidArgument(PageName() + ": the CSV header is longer than " +
                                     std::to_string(kMaxCsvHeaderBytes) + " bytes");
    }
    return Status::Ok();  // wait for more bytes (or the end of the page)
  }
  std::string header = p.pending.substr(0, end + 1);
  std::string rest = p.pending.substr(end + 1);
  p.pending.clear();
  std::string norm = header;
  if (norm.substr(0, 3) == "\xEF\xBB\xBF") norm.erase(0, 3);
  while (!norm.empty() && (norm.back() == '\n' || norm.back() == '\r')) norm.pop_back();
  p.mode = Mode::kStream;
  if (spool_.bytes_written() == 0) {
    csv_header_ = norm;
    RETURN_IF_ERROR(spool_.Write(header));
  } else if (norm != csv_header_) {
    return Status::InvalidArgument(PageName() + " has a different CSV header than page 1")
        .WithDetail(ErrorDetail::Field("page " + std::to_string(p.index), "CSV header differs from page 1"));
  } else if (spool_.last_byte() != '\n') {
    RETURN_IF_ERROR(spool_.Write("\n"));
  }
  return WriteCounted(rest);
}

// Streams body bytes to the spool, counting records (lines with content; CSV quotes may hold newlines).
Status HttpFetcher::WriteCounted(std::string_view data) {
  Page& p = page_;
  bool csv = format_ == "csv";
  for (char c : data) {
    if (csv && c == '"') p.in_quotes = !p.in_quotes;
    if (c == '\n' && !p.in_quotes) {
      if (p.line_has_content) ++p.records;
      p.line_has_content = false;
    } else if (!std::isspace(static_cast<unsigned char>(c))) {
      p.line_has_content = true;
    }
  }
  return spool_.Write(data);
}

Status HttpFetcher::HttpStatusError() const {
  std::string body = page_.pending.substr(0, kErrorBodyBytes);
  for (char& c : body) {
    if (static_cast<unsigned char>(c) < 0x20) c = ' ';
  }
  std::string msg = "HTTP " + std::to_string(page_.status) + " from GET " + RedactUrl(page_.url) + " (page " +
                    std::to_string(page_.index) + ")" + (body.empty() ? "" : ": " + Trim(body));
  if (page_.status >= 500 || page_.status == 408 || page_.status == 429) return Status::Unavailable(msg);
  return Status::InvalidArgument(msg).WithDetail(
      ErrorDetail::Field("url", "HTTP " + std::to_string(page_.status)));
}

Status HttpFetcher::CurlError(CURLcode rc, const char* errbuf) const {
  std::string detail = errbuf[0] ? errbuf : curl_easy_strerror(rc);
  std::string where = " fetching " + PageName();
  switch (rc) {
    case CURLE_OPERATION_TIMEDOUT:
      return Status::DeadlineExceeded("timed out after " + std::to_string(src_.timeout_ms) + " ms" + where);
    case CURLE_TOO_MANY_REDIRECTS:
      return Status::FailedPrecondition("more than " + std::to_string(kMaxHttpRedirects) + " redirects" +
                                        where);
    case CURLE_UNSUPPORTED_PROTOCOL:
      return Status::InvalidArgument("redirect to a URL that is not http or https refused" + where);
    case CURLE_URL_MALFORMAT:
      return FieldError("url", "malformed URL: " + detail);
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CONNECT_ERROR:
      return Status::Unavailable("TLS error" + where + ": " + detail);
    default:
      return Status::Unavailable(detail + where);
  }
}

// Every connection (first request, redirects, retries on other resolved addresses) goes through the address
// policy before the socket exists.
curl_socket_t HttpFetcher::OnOpenSocket(void* self, curlsocktype purpose, curl_sockaddr* address) {
  auto* f = static_cast<HttpFetcher*>(self);
  if (purpose != CURLSOCKTYPE_IPCXN || address == nullptr) return CURL_SOCKET_BAD;
  std::string why;
  if (!f->src_.addresses.Allowed(&address->addr, &why)) {
    f->refused_ = "the host resolves to " + AddressPolicy::Format(&address->addr) + ", " + why;
    return CURL_SOCKET_BAD;
  }
  return ::socket(address->family, address->socktype | SOCK_CLOEXEC, address->protocol);
}

Status HttpFetcher::FetchPage(const std::string& url) {
  page_.url = url;
  refused_.clear();
  char errbuf[CURL_ERROR_SIZE];
  errbuf[0] = 0;
  int64_t left_ms = std::chrono::duration_cast<std::chrono::milliseconds>(deadline_ - Clock::now()).count();
  if (left_ms <= 0) {
    return Status::DeadlineExceeded("timed out after " + std::to_string(src_.timeout_ms) + " ms before " +
                                    PageName());
  }
  CURL* c = curl_.get();
  curl_easy_setopt(c, CURLOPT_URL, url.c_str());
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, static_cast<long>(left_ms));
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(std::min<int64_t>(left_ms, 30000)));
  CURLcode rc = curl_easy_perform(c);
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, nullptr);
  if (rc == CURLE_WRITE_ERROR && !page_.error.ok()) return page_.error;
  if (cancelled_ || rc == CURLE_ABORTED_BY_CALLBACK) return Status::Cancelled("HTTP fetch cancelled");
  if (rc != CURLE_OK && !refused_.empty()) {
    return Status::PermissionDenied(PageName() + ": " + refused_ +
                                    "; HTTP sources may only connect to public addresses unless the server "
                                    "allows the range (--http-source-allow)")
        .WithDetail(ErrorDetail::Field("url", "refused destination address"));
  }
  if (rc != CURLE_OK) return CurlError(rc, errbuf);
  if (page_.status == 0) curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &page_.status);
  if (page_.status >= 400 || page_.mode == Mode::kHttpError) return HttpStatusError();
  char* effective = nullptr;
  curl_easy_getinfo(c, CURLINFO_EFFECTIVE_URL, &effective);
  if (effective != nullptr) page_.url = effective;
  if (page_.content_type.empty()) {
    char* ct = nullptr;
    curl_easy_getinfo(c, CURLINFO_CONTENT_TYPE, &ct);
    if (ct != nullptr) page_.content_type = ct;
  }
  return FinishPage();
}

Status HttpFetcher::FinishPage() {
  Page& p = page_;
  if (p.mode == Mode::kUndecided) RETURN_IF_ERROR(Decide());
  if (p.mode == Mode::kCsvHeader) {
    // The page ended inside the header record: a header-only page (no trailing newline).
    p.pending.push_back('\n');
    RETURN_IF_ERROR(StartCsvBody());
  }
  if (p.mode == Mode::kStream) {
    if (p.line_has_content && !p.in_quotes) ++p.records;
    if (p.in_quotes) {
      return Status::InvalidArgument(PageName() + " ends inside a quoted CSV field");
    }
  }
  if (p.mode != Mode::kJson) {
    rows_ += p.records;
    return Status::Ok();
  }
  auto parsed = ParseJson(p.json, kMaxJsonDepth);
  if (!parsed.ok()) {
    const std::string& m = parsed.status().message();
    int64_t byte = -1;
    size_t at = m.find("at byte ");
    if (at != std::string::npos) byte = std::atoll(m.c_str() + at + 8);
    std::string msg = PageName() + ": " + (p.json.empty() ? "empty body; expected JSON" : m);
    Status st = Status::InvalidArgument(msg);
    if (byte >= 0) st.AddDetail(ErrorDetail::Position("page " + std::to_string(p.index), byte, m));
    return st;
  }
  p.json.clear();
  p.json.shrink_to_fit();
  json_doc_ = std::move(*parsed);
  const Json* records = &json_doc_;
  if (!src_.records_pointer.empty()) {
    Json::json_pointer jp(src_.records_pointer);
    if (!json_doc_.contains(jp)) {
      return Status::InvalidArgument(PageName() + ": records_pointer " + src_.records_pointer +
                                     " is not in the page")
          .WithDetail(ErrorDetail::Field("records_pointer", "not found in page " + std::to_string(p.index)));
    }
    records = &json_doc_.at(jp);
  }
  if (!records->is_array()) {
    std::string msg = PageName() + ": expected an array of records" +
                      (src_.records_pointer.empty() ? "" : " at " + src_.records_pointer) + ", found " +
                      records->type_name();
    if (records->is_object()) {
      std::vector<std::string> arrays;
      for (auto it = records->begin(); it != records->end() && arrays.size() < 5; ++it) {
        if (it->is_array()) arrays.push_back("\"" + src_.records_pointer + "/" + it.key() + "\"");
      }
      if (!arrays.empty()) {
        msg += "; set records_pointer to one of";
        for (const auto& a : arrays) msg += " " + a;
      }
    }
    return Status::InvalidArgument(msg).WithDetail(ErrorDetail::Field("records_pointer", "not an array"));
  }
  if (spool_.last_byte() != -1 && spool_.last_byte() != '\n') RETURN_IF_ERROR(spool_.Write("\n"));
  std::string buf;
  size_t i = 0;
  for (const Json& rec : *records) {
    if (!rec.is_object()) {
      return Status::InvalidArgument(PageName() + ": record " + std::to_string(i) + " is a " +
                                     rec.type_name() + ", not an object")
          .WithDetail(ErrorDetail::Field("page " + std::to_string(p.index), "record " + std::to_string(i)));
    }
    buf += DumpJson(rec);
    buf.push_back('\n');
    if (buf.size() >= (1 << 20)) {
      RETURN_IF_ERROR(spool_.Write(buf));
      buf.clear();
    }
    ++i;
  }
  RETURN_IF_ERROR(spool_.Write(buf));
  p.records = static_cast<int64_t>(i);
  rows_ += p.records;
  return Status::Ok();
}

// The next page's URL, or "" when paging is over.
Result<std::string> HttpFetcher::NextUrl() {
  const HttpPagination& pg = src_.pagination;
  if (pg.kind == "none" || page_.records == 0) return std::string();
  if (pg.kind == "page") {
    return WithQueryParam(page_.url, pg.page_param, std::to_string(pg.start_page + page_.index));
  }
  if (pg.kind == "link") {
    for (const std::string& value : page_.links) {
      // value: <url>; rel="next"; title="x", <url2>; rel=prev
      size_t pos = 0;
      while (pos < value.size()) {
        size_t lt = value.find('<', pos);
        if (lt == std::string::npos) break;
        size_t gt = value.find('>', lt);
        if (gt == std::string::npos) break;
        std::string target = value.substr(lt + 1, gt - lt - 1);
        size_t next_lt = value.find('<', gt);
        std::string params =
            Lower(value.substr(gt + 1, next_lt == std::string::npos ? std::string::npos : next_lt - gt - 1));
        size_t rel = params.find("rel=");
        if (rel != std::string::npos) {
          std::string rels = params.substr(rel + 4);
          if (!rels.empty() && rels[0] == '"')
            rels = rels.substr(1, rels.find('"', 1) - 1);
          else
            rels = rels.substr(0, rels.find_first_of(";, "));
          std::string tok;
          for (size_t k = 0; k <= rels.size(); ++k) {
            if (k == rels.size() || rels[k] == ' ') {
              if (tok == "next") return ResolveUrl(page_.url, target);
              tok.clear();
            } else {
              tok.push_back(rels[k]);
            }
          }
        }
        if (next_lt == std::string::npos) break;
        pos = next_lt;
      }
    }
    return std::string();
  }
  // cursor
  Json::json_pointer jp(pg.next_pointer);
  if (!json_doc_.contains(jp)) return std::string();
  const Json& next = json_doc_.at(jp);
  if (next.is_null()) return std::string();
  if (!next.is_string()) {
    return Status::InvalidArgument(PageName() + ": the value at next_pointer " + pg.next_pointer + " is a " +
                                   next.type_name() + ", not a URL string")
        .WithDetail(ErrorDetail::Field("pagination.next_pointer", "not a string"));
  }
  std::string ref = next.get<std::string>();
  if (ref.empty()) return std::string();
  std::string resolved = ResolveUrl(page_.url, ref);
  if (resolved.empty()) {
    return Status::InvalidArgument(PageName() + ": the next URL at " + pg.next_pointer +
                                   " is not a valid URL");
  }
  return resolved;
}

Result<SourceFetch> HttpFetcher::Run(const std::string& out_path) {
  GlobalInitCurl();
  curl_.reset(curl_easy_init());
  if (!curl_) return Status::Internal("curl_easy_init failed");
  CURL* c = curl_.get();
  for (const auto& [name, value] : src_.headers) {
    std::string line = name + (value.empty() ? ";" : ": " + value);
    curl_slist* l = curl_slist_append(header_list_.get(), line.c_str());
    if (l == nullptr) return Status::Internal("curl_slist_append failed");
    header_list_.release();
    header_list_.reset(l);
  }
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, header_list_.get());
  curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
  curl_easy_setopt(c, CURLOPT_MAXREDIRS, static_cast<long>(kMaxHttpRedirects));
  curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_ACCEPT_ENCODING, "");
  curl_easy_setopt(c, CURLOPT_USERAGENT, "lathe/0.1 (+data source)");
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, &HttpFetcher::OnWrite);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, this);
  curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, &HttpFetcher::OnHeader);
  curl_easy_setopt(c, CURLOPT_HEADERDATA, this);
  curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
  curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, &HttpFetcher::OnProgress);
  curl_easy_setopt(c, CURLOPT_XFERINFODATA, this);
  curl_easy_setopt(c, CURLOPT_OPENSOCKETFUNCTION, &HttpFetcher::OnOpenSocket);
  curl_easy_setopt(c, CURLOPT_OPENSOCKETDATA, this);

  RETURN_IF_ERROR(spool_.Open(out_path));
  std::string url = src_.url;
  if (src_.pagination.kind == "page") {
    url = WithQueryParam(url, src_.pagination.page_param, std::to_string(src_.pagination.start_page));
    if (url.empty()) return FieldError("url", "cannot set the page parameter on this URL");
  }
  std::set<std::string> seen;
  Json urls = Json::array();
  bool truncated = false;
  int64_t pages = 0;
  while (!url.empty()) {
    if (pages == src_.pagination.max_pages) {
      truncated = true;
      break;
    }
    if (!seen.insert(url).second) break;  // a next link pointing back: paging is over
    page_ = Page();
    page_.index = ++pages;
    RETURN_IF_ERROR(FetchPage(url));
    urls.push_back(RedactUrl(page_.url));
    seen.insert(page_.url);
    ASSIGN_OR_RETURN(url, NextUrl());
  }
  if (format_.empty()) {
    return Status::FailedPrecondition("the HTTP source returned an empty body for " + RedactUrl(src_.url));
  }
  RETURN_IF_ERROR(spool_.Commit());

  SourceFetch fetch;
  fetch.format = format_ == "json" ? "jsonl" : format_;
  fetch.rows = rows_;
  fetch.bytes = spool_.bytes_written();
  Json header_names = Json::array();
  for (const auto& h : src_.headers) header_names.push_back(h.first);
  fetch.info = {
      {"kind", "http"},
      {"url", RedactUrl(src_.url)},
      {"urls", urls},
      {"pages", pages},
      {"format", format_},
      {"content_type", first_content_type_},
      {"truncated", truncated},
      {"header_names", header_names},
      {"rows", rows_},
      {"elapsed_ms", std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - started_).count()}};
  return fetch;
}

}  // namespace

std::string RedactUrl(const std::string& url) {
  Url u(curl_url());
  if (!u || curl_url_set(u.get(), CURLUPART_URL, url.c_str(), 0) != CURLUE_OK) return "<invalid url>";
  std::string out = UrlPart(u.get(), CURLUPART_SCHEME) + "://" + UrlPart(u.get(), CURLUPART_HOST);
  std::string port = UrlPart(u.get(), CURLUPART_PORT);
  if (!port.empty()) out += ":" + port;
  out += UrlPart(u.get(), CURLUPART_PATH);
  if (!UrlPart(u.get(), CURLUPART_QUERY).empty()) out += "?…";
  return out;
}

Status CheckHttpSource(const HttpSource& s) {
  GlobalInitCurl();
  if (s.url.empty()) return FieldError("url", "is required");
  if (s.url.size() > 8192) return FieldError("url", "is longer than 8192 characters");
  Url u(curl_url());
  if (!u) return Status::Internal("curl_url failed");
  if (curl_url_set(u.get(), CURLUPART_URL, s.url.c_str(), 0) != CURLUE_OK) {
    return FieldError("url", "is not a valid absolute URL");
  }
  std::string scheme = Lower(UrlPart(u.get(), CURLUPART_SCHEME));
  if (scheme != "http" && scheme != "https") return FieldError("url", "must be http or https, not " + scheme);
  if (UrlPart(u.get(), CURLUPART_HOST).empty()) return FieldError("url", "has no host");
  if (s.headers.size() > kMaxHeaders)
    return FieldError("headers", "at most " + std::to_string(kMaxHeaders) + " headers");
  for (size_t i = 0; i < s.headers.size(); ++i) {
    const auto& [name, value] = s.headers[i];
    std::string field = "headers[" + std::to_string(i) + "]";
    if (name.empty() || !std::all_of(name.begin(), name.end(), IsTokenChar)) {
      return FieldError(field, "the header name must be a token (letters, digits, !#$%&'*+-.^_`|~)");
    }
    if (value.find_first_of(std::string("\r\n\0", 3)) != std::string::npos) {
      return FieldError(field, "the header value must not contain CR, LF or NUL");
    }
    if (name.size() + value.size() > kMaxHeaderBytes) return FieldError(field, "is longer than 8 KiB");
    std::string lower = Lower(name);
    if (lower == "content-length" || lower == "transfer-encoding" || lower == "connection" ||
        lower == "host") {
      return FieldError(field, "the header " + name + " is set by lathe and cannot be overridden");
    }
  }
  if (s.format != "auto" && s.format != "csv" && s.format != "json" && s.format != "jsonl") {
    return FieldError("format", "must be auto, csv, json or jsonl");
  }
  RETURN_IF_ERROR(CheckPointer("records_pointer", s.records_pointer, false));
  const HttpPagination& p = s.pagination;
  if (p.kind != "none" && p.kind != "link" && p.kind != "page" && p.kind != "cursor") {
    return FieldError("pagination.kind", "must be none, link, page or cursor");
  }
  if (p.kind == "page") {
    if (p.page_param.empty() || !std::all_of(p.page_param.begin(), p.page_param.end(), [](char c) {
          return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.' ||
                 c == '[' || c == ']';
        })) {
      return FieldError("pagination.page_param", "must be a plain query parameter name");
    }
    if (p.start_page < 0) return FieldError("pagination.start_page", "must be >= 0");
  }
  if (p.kind == "cursor") {
    RETURN_IF_ERROR(CheckPointer("pagination.next_pointer", p.next_pointer, true));
    if (s.format == "csv" || s.format == "jsonl") {
      return FieldError("pagination.kind", "cursor paging needs JSON pages (format json or auto)");
    }
  }
  if (p.max_pages < 1 || p.max_pages > 100000) return FieldError("pagination.max_pages", "must be 1..100000");
  if (s.timeout_ms < 1 || s.timeout_ms > kMaxTimeoutMs) {
    return FieldError("timeout_ms", "must be between 1 and " + std::to_string(kMaxTimeoutMs));
  }
  if (s.max_bytes < 1) return FieldError("max_bytes", "must be at least 1");
  return Status::Ok();
}

Result<SourceFetch> FetchHttp(const HttpSource& s, const std::string& out_path,
                              const std::function<bool()>& cancel) {
  RETURN_IF_ERROR(CheckHttpSource(s));
  if (cancel && cancel()) return Status::Cancelled("HTTP fetch cancelled");
  HttpFetcher f(s, cancel);
  return f.Run(out_path);
}

}  // namespace lathe
