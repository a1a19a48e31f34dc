// HTTP(S) data source: fetch one or more pages from a URL with libcurl and land them as one local file the
// importers read: CSV pages concatenated (header once), JSON Lines pages concatenated, JSON pages converted
// to JSON Lines (the records array of each page, one compact object per line).
//
// Format: "auto" decides from the first page's Content-Type (text/csv, application/json or +json,
// application/x-ndjson / jsonl / jsonlines), then by sniffing the body ('[' or '{…' = JSON, a line per JSON
// value = JSONL, else CSV; HTML is refused with kUnsupportedMedia). Later pages use the same format.
// Pagination: "link" follows RFC 8288 Link: <…>; rel="next"; "page" sets the query parameter page_param to
// start_page, start_page+1, …; "cursor" follows the URL found at next_pointer (a JSON pointer) in each JSON
// page. Relative next URLs resolve against the page's final URL. Paging stops on an empty page, a missing
// next link, a URL already fetched, or max_pages (then info.truncated = true if a next page was announced).
// CSV pages must repeat the first page's header exactly (kInvalidArgument naming the page otherwise).
//
// Limits and safety: only http and https, also for redirects (at most 5); connections only to addresses
// `addresses` allows (public ones by default; a refused address is kPermissionDenied naming it, field "url"); timeout_ms bounds the WHOLE fetch
// (all pages); max_bytes bounds the decoded bytes received over all pages (kPayloadTooLarge); a JSON page is
// parsed in memory and may be at most kMaxHttpJsonPageBytes. gzip/deflate/brotli responses are decoded.
// Custom headers (e.g. Authorization) are sent only to the original host on redirects (libcurl's rule), and
// never appear in info or errors; URLs in info and errors are shown without user info and query string.
//
// Errors: kInvalidArgument for bad fields (ErrorDetail::Field), HTTP 4xx (naming status, URL and page),
// malformed JSON (page and byte offset, ErrorDetail::Position with field "page N"), bad records_pointer,
// mismatched CSV headers; kUnavailable for HTTP 5xx/408/429 and network errors; kDeadlineExceeded;
// kPayloadTooLarge; kCancelled; kFailedPrecondition for too many redirects. Writes are atomic (SpoolFile):
// on any error nothing exists at out_path. Thread-safe: independent fetches may run concurrently (libcurl
// must have been globally initialised, which FetchHttp does once, thread-safely).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "common/status.h"
#include "data/address_policy.h"
#include "data/source_fetch.h"

namespace lathe {

struct HttpPagination {
  std::string kind = "none";  // none | link (RFC 8288 Link rel="next") | page (query param) | cursor
  std::string page_param = "page";
  int64_t start_page = 1;
  std::string next_pointer;  // JSON pointer of the next URL (cursor)
  int64_t max_pages = 100;
};

struct HttpSource {
  std::string url;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string format = "auto";  // auto | csv | json | jsonl
  std::string records_pointer;  // JSON pointer of the records array in each JSON page; "" = the page itself
  HttpPagination pagination;
  int64_t timeout_ms = 60000;     // whole fetch, all pages
  int64_t max_bytes = 1ll << 30;  // decoded bytes over all pages
  // Addresses the fetch may connect to, checked at every connect (redirects and DNS included): public
  // addresses only unless the server allows more (--http-source-allow). Not part of the user's request.
  AddressPolicy addresses;
};

inline constexpr int64_t kMaxHttpJsonPageBytes = 256ll << 20;
inline constexpr int kMaxHttpRedirects = 5;

// Validates fields without network access: http/https URL with a host, header names (RFC 9110 tokens) and
// values (no CR, LF or NUL), format, pagination, pointers, limits.
Status CheckHttpSource(const HttpSource& s);

// Fetches and lands the data at out_path; format is "csv" or "jsonl". info: kind, url (redacted), urls
// (redacted, one per page), pages, format, content_type, truncated, header_names, elapsed_ms.
Result<SourceFetch> FetchHttp(const HttpSource& s, const std::string& out_path,
                              const std::function<bool()>& cancel);

// scheme://host[:port]/path, with "?…" in place of a query string and no user info (for display).
std::string RedactUrl(const std::string& url);

}  // namespace lathe
