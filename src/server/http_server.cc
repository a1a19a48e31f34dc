#include "server/http_server.h"

#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <chrono>
#include <cstring>
#include <ctime>
#include <exception>
#include <limits>
#include <list>
#include <mutex>
#include <random>
#include <thread>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/file_posix.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/file_body.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/status.hpp>
#include <boost/beast/http/string_body.hpp>

#include "common/clock.h"
#include "common/log.h"
#include "monitor/metrics.h"

namespace lathe {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using boost::system::error_code;
using SteadyClock = std::chrono::steady_clock;

// ---------------------------------------------------------------------------------------------------------
// Request / response helpers.

const std::string* HttpRequest::Header(std::string_view lower_name) const {
  for (const auto& [k, v] : headers) {
    if (k == lower_name) return &v;
  }
  return nullptr;
}

const std::string* HttpRequest::Query(std::string_view name) const {
  for (const auto& [k, v] : query) {
    if (k == name) return &v;
  }
  return nullptr;
}

void HttpRequest::Clear() {
  method.clear();
  target.clear();
  path.clear();
  query.clear();
  headers.clear();
  body.clear();
  body_file.clear();
  request_id.clear();
  version = 11;
  // remote_addr is per connection and kept.
}

void HttpResponse::Clear() {
  status = 200;
  content_type = "application/json";
  headers.clear();
  body.clear();
  if (body_file_owned && !body_file.empty()) ::unlink(body_file.c_str());
  body_file.clear();
  body_file_owned = false;
  route.clear();
  caller.clear();
}

namespace {

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

char LowerAscii(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (LowerAscii(a[i]) != LowerAscii(b[i])) return false;
  }
  return true;
}

// True if the comma-separated header value contains `token` (case-insensitive).
bool HasToken(std::string_view value, std::string_view token) {
  size_t pos = 0;
  while (pos <= value.size()) {
    size_t comma = value.find(',', pos);
    if (comma == std::string_view::npos) comma = value.size();
    std::string_view item = value.substr(pos, comma - pos);
    while (!item.empty() && (item.front() == ' ' || item.front() == '\t')) item.remove_prefix(1);
    while (!item.empty() && (item.back() == ' ' || item.back() == '\t')) item.remove_suffix(1);
    if (EqualsIgnoreCase(item, token)) return true;
    pos = comma + 1;
  }
  return false;
}

std::string GenerateRequestId() {
  thread_local std::mt19937_64 rng{std::random_device{}() ^
                                   (static_cast<uint64_t>(std::hash<std::thread::id>{}(std::this_thread::get_id()))
                                    << 1)};
  static const char kHex[] = "0123456789abcdef";
  uint64_t v = rng();
  std::string id(16, '0');
  for (int i = 15; i >= 0; --i) {
    id[i] = kHex[v & 0xf];
    v >>= 4;
  }
  return id;
}

// "Sun, 06 Nov 1994 08:49:37 GMT", cached per thread per second; independent of the C locale.
const std::string& HttpDate() {
  thread_local time_t cached_sec = -1;
  thread_local std::string cached;
  time_t now = std::time(nullptr);
  if (now != cached_sec) {
    static const char* kDays[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static const char* kMonths[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                    "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    struct tm tm;
    gmtime_r(&now, &tm);
    char buf[64];
    std::snprintf(buf, sizeof(buf), "%s, %02d %s %04d %02d:%02d:%02d GMT", kDays[tm.tm_wday % 7], tm.tm_mday,
                  kMonths[tm.tm_mon % 12], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
    cached = buf;
    cached_sec = now;
  }
  return cached;
}

bool IsTokenChar(char c) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
  return std::strchr("!#$%&'*+-.^_`|~", c) != nullptr && c != '\0';
}

bool IsSafeHeaderValue(std::string_view v) {
  for (char c : v) {
    if (c == '\r' || c == '\n' || c == '\0') return false;
  }
  return true;
}

// A protocol violation by the client (beast's http error category), as opposed to a transport error.
bool IsParseError(const error_code& ec) {
  static const auto& kCategory = error_code(http::error::bad_target).category();
  return ec.category() == kCategory;
}

bool BodyAllowed(int status) { return !(status < 200 || status == 204 || status == 304); }

const char* MethodLabel(std::string_view m) {
  static const char* kKnown[] = {"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"};
  for (const char* k : kKnown) {
    if (m == k) return k;
  }
  return "other";
}

std::string_view StatusReason(int status) {
  auto sv = http::obsolete_reason(static_cast<http::status>(status));
  if (sv.empty() || sv[0] == '<') return "Unknown";
  return std::string_view(sv.data(), sv.size());
}

void AppendInt(std::string* out, uint64_t v) {
  char buf[24];
  int n = 0;
  do {
    buf[n++] = static_cast<char>('0' + v % 10);
    v /= 10;
  } while (v);
  while (n) out->push_back(buf[--n]);
}

}  // namespace

bool PercentDecode(std::string_view in, bool plus_as_space, std::string* out) {
  out->clear();
  out->reserve(in.size());
  for (size_t i = 0; i < in.size(); ++i) {
    char c = in[i];
    if (c == '%') {
      if (i + 2 >= in.size()) return false;
      int hi = HexValue(in[i + 1]);
      int lo = HexValue(in[i + 2]);
      if (hi < 0 || lo < 0) return false;
      out->push_back(static_cast<char>(hi * 16 + lo));
      i += 2;
    } else if (c == '+' && plus_as_space) {
      out->push_back(' ');
    } else {
      out->push_back(c);
    }
  }
  return true;
}

bool ParseQueryString(std::string_view qs, std::vector<std::pair<std::string, std::string>>* out) {
  size_t pos = 0;
  while (pos < qs.size()) {
    size_t amp = qs.find('&', pos);
    if (amp == std::string_view::npos) amp = qs.size();
    std::string_view item = qs.substr(pos, amp - pos);
    pos = amp + 1;
    if (item.empty()) continue;
    size_t eq = item.find('=');
    std::string key, value;
    if (!PercentDecode(item.substr(0, eq), true, &key)) return false;
    if (eq != std::string_view::npos && !PercentDecode(item.substr(eq + 1), true, &value)) return false;
    out->emplace_back(std::move(key), std::move(value));
  }
  return true;
}

bool IsValidRequestId(std::string_view id) {
  if (id.empty() || id.size() > 128) return false;
  for (char c : id) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
              c == '_' || c == ':' || c == '-';
    if (!ok) return false;
  }
  return true;
}

namespace {
// Fills path and query from the raw target. False (with a reason) for a target we cannot route.
bool SplitTarget(HttpRequest* req, std::string* why) {
  std::string_view t = req->target;
  if (t == "*") {
    req->path = "*";
    return true;
  }
  if (t.empty() || t.front() != '/') {
    // absolute-form (RFC 9112 3.2.2): drop scheme and authority.
    size_t scheme = t.find("://");
    if (scheme == std::string_view::npos || scheme == 0) {
      *why = "request target must start with '/'";
      return false;
    }
    size_t slash = t.find('/', scheme + 3);
    t = slash == std::string_view::npos ? std::string_view("/") : t.substr(slash);
  }
  size_t q = t.find('?');
  size_t hash = t.find('#');
  std::string_view raw_path = t.substr(0, std::min(q, hash));
  if (!PercentDecode(raw_path, false, &req->path)) {
    *why = "malformed percent-encoding in the path";
    return false;
  }
  if (req->path.find('\0') != std::string::npos) {
    *why = "NUL byte in the path";
    return false;
  }
  if (q != std::string_view::npos) {
    std::string_view qs = t.substr(q + 1);
    if (hash != std::string_view::npos && hash > q) qs = t.substr(q + 1, hash - q - 1);
    if (!ParseQueryString(qs, &req->query)) {
      *why = "malformed percent-encoding in the query string";
      return false;
    }
  }
  return true;
}
}  // namespace

// The server's TLS context: TLS 1.2 and newer, the PEM chain and key from the files, which must match.
Result<std::unique_ptr<asio::ssl::context>> MakeTlsContext(const std::string& cert_file, const std::string& key_file) {
  if (cert_file.empty() || key_file.empty()) {
    return Status::InvalidArgument("TLS needs both a certificate file and a key file");
  }
  auto ctx = std::make_unique<asio::ssl::context>(asio::ssl::context::tls_server);
  ctx->set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                   asio::ssl::context::no_sslv3 | asio::ssl::context::no_tlsv1 | asio::ssl::context::no_tlsv1_1 |
                   asio::ssl::context::single_dh_use);
  SSL_CTX_set_min_proto_version(ctx->native_handle(), TLS1_2_VERSION);
  error_code ec;
  ctx->use_certificate_chain_file(cert_file, ec);
  if (ec) return Status::InvalidArgument("TLS certificate " + cert_file + ": " + ec.message());
  ctx->use_private_key_file(key_file, asio::ssl::context::pem, ec);
  if (ec) return Status::InvalidArgument("TLS key " + key_file + ": " + ec.message());
  if (SSL_CTX_check_private_key(ctx->native_handle()) != 1) {
    return Status::InvalidArgument("TLS key " + key_file + " does not match the certificate " + cert_file);
  }
  return ctx;
}

// ---------------------------------------------------------------------------------------------------------
// Server state.

// What Stop() needs of a connection, whatever its stream type.
class SessionBase {
 public:
  virtual ~SessionBase() = default;
  virtual void OnStop() = 0;
  virtual asio::any_io_executor Executor() = 0;
  std::list<std::weak_ptr<SessionBase>>::iterator registry_pos;  // guarded by Impl::sessions_mu
};

struct HttpServer::Impl {
  ServerOptions opt;
  HttpService* service = nullptr;
  asio::io_context ioc;
  tcp::acceptor acceptor;
  uint16_t port = 0;
  std::atomic<bool> stopping{false};
  std::atomic<bool> ran{false};

  std::mutex sessions_mu;  // taken on connect / disconnect / Stop only, never per request
  std::list<std::weak_ptr<SessionBase>> sessions;
  std::unique_ptr<asio::ssl::context> tls;  // set: connections speak TLS only

  // Metrics (all null without ServerOptions::metrics).
  CounterFamily* requests = nullptr;
  HistogramFamily* durations = nullptr;
  Gauge* connections_open = nullptr;
  Gauge* in_flight = nullptr;

  Impl(const ServerOptions& o, HttpService* s, int threads)
      : opt(o), service(s), ioc(threads), acceptor(asio::make_strand(ioc)) {}

  asio::awaitable<void> AcceptLoop();
  template <class Stream>
  void StartSession(Stream stream);
};

// One connection over Stream (tcp::socket, or ssl::stream<tcp::socket> with TLS). Everything runs on the
// connection's strand: the coroutine in Run(), the deadline timer's handler and the Stop() notification, so
// members need no lock.
template <class Stream>
class Session : public SessionBase, public std::enable_shared_from_this<Session<Stream>> {
  static constexpr bool kTls = !std::is_same_v<Stream, tcp::socket>;

 public:
  Session(HttpServer::Impl* srv, Stream stream)
      : srv_(srv), stream_(std::move(stream)), timer_(stream_.get_executor()),
        deferral_(std::make_shared<Deferral>(stream_.get_executor())) {
    error_code ec;
    auto ep = Sock().remote_endpoint(ec);
    if (!ec) {
      req_.remote_addr = ep.address().to_string() + ":" + std::to_string(ep.port());
    }
  }

  asio::any_io_executor Executor() override { return stream_.get_executor(); }

  asio::awaitable<void> Run() {
    auto self = this->shared_from_this();
    try {
      if constexpr (kTls) {
        // The handshake gets the header deadline. A client speaking plain HTTP (its first byte is not a TLS
        // handshake record, 0x16) gets a plain 400 that says so, as nginx does, instead of a silent close.
        SetDeadline(srv_->opt.header_read_timeout_ms);
        error_code ec;
        unsigned char first = 0;
        size_t peeked = co_await stream_.next_layer().async_receive(asio::buffer(&first, 1), asio::socket_base::message_peek,
                                                      asio::redirect_error(asio::use_awaitable, ec));
        if (ec || peeked == 0) {
          Close();
          co_return;
        }
        if (first != 0x16) {
          static constexpr std::string_view kBody = "This server speaks HTTPS only: use an https:// URL.\n";
          std::string plain = "HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\nConnection: close\r\n"
                              "Content-Length: " + std::to_string(kBody.size()) + "\r\n\r\n" + std::string(kBody);
          co_await asio::async_write(stream_.next_layer(), asio::buffer(plain), asio::redirect_error(asio::use_awaitable, ec));
          Close();
          co_return;
        }
        co_await stream_.async_handshake(asio::ssl::stream_base::server,
                                         asio::redirect_error(asio::use_awaitable, ec));
        if (ec) {
          LogDebug("tls handshake failed", {{"error", ec.message()}, {"remote", req_.remote_addr}});
          Close();
          co_return;
        }
      }
      co_await Serve();
    } catch (const std::exception& e) {
      LogError("http connection failed", {{"error", e.what()}, {"remote", req_.remote_addr}});
    } catch (...) {
      LogError("http connection failed", {{"remote", req_.remote_addr}});
    }
    Close();
  }

  // Called (on the strand) by HttpServer::Stop.
  void OnStop() override {
    if (idle_) {
      error_code ec;
      Sock().cancel(ec);
    }
  }

 private:
  struct CachedCounter {
    const char* method;
    std::string route;
    int status;
    Counter* counter;
  };
  struct CachedHistogram {
    std::string route;
    Histogram* histogram;
  };

  void SetDeadline(int timeout_ms) {
    timed_out_ = false;
    deadline_ = SteadyClock::now() + std::chrono::milliseconds(timeout_ms);
    // Extending the deadline only updates deadline_; the timer re-arms lazily when it fires early.
    if (!timer_armed_ || deadline_ < timer_.expiry()) {
      timer_.expires_at(deadline_);
      timer_armed_ = true;
      timer_.async_wait([self = this->shared_from_this()](error_code ec) { self->OnTimer(ec); });
    }
  }

  void OnTimer(error_code ec) {
    if (ec == asio::error::operation_aborted || closed_) return;  // re-armed or closing
    if (SteadyClock::now() >= deadline_) {
      timer_armed_ = false;
      timed_out_ = true;
      error_code ignored;
      Sock().cancel(ignored);
      return;
    }
    timer_.expires_at(deadline_);
    timer_.async_wait([self = this->shared_from_this()](error_code e) { self->OnTimer(e); });
  }

  void Close() {
    closed_ = true;
    timer_.cancel();
    error_code ec;
    Sock().shutdown(tcp::socket::shutdown_both, ec);
    Sock().close(ec);
    if (!req_.body_file.empty()) ::unlink(req_.body_file.c_str());
  }

  asio::awaitable<void> Serve() {
    const ServerOptions& opt = srv_->opt;
    bool first = true;
    for (;;) {
      req_.Clear();
      res_.Clear();
      // Wait for the first byte of the next request: this is the "idle" state Stop() may interrupt.
      if (buf_.size() == 0) {
        if (srv_->stopping.load(std::memory_order_acquire)) co_return;
        idle_ = true;
        SetDeadline(first ? opt.header_read_timeout_ms : opt.keepalive_timeout_ms);
        error_code ec;
        size_t n = co_await stream_.async_read_some(buf_.prepare(kReadChunk),
                                                  asio::redirect_error(asio::use_awaitable, ec));
        idle_ = false;
        if (ec) co_return;  // peer closed, idle timeout, or shutdown
        buf_.commit(n);
      }
      first = false;
      start_us_ = MonotonicMicros();

      // Headers.
      SetDeadline(opt.header_read_timeout_ms);
      http::request_parser<http::empty_body> hp;
      hp.header_limit(static_cast<uint32_t>(std::min<size_t>(opt.max_header_bytes, UINT32_MAX)));
      hp.body_limit(std::numeric_limits<uint64_t>::max());  // checked below against the BodyPolicy
      error_code ec;
      co_await http::async_read_header(stream_, buf_, hp, asio::redirect_error(asio::use_awaitable, ec));
      if (ec) {
        if (ec == http::error::header_limit) {
          co_await Reject(431, "request headers exceed " + std::to_string(opt.max_header_bytes) + " bytes");
        } else if (timed_out_) {
          co_await Reject(408, "request headers not received within " +
                                   std::to_string(opt.header_read_timeout_ms) + " ms");
        } else if (IsParseError(ec) && ec != http::error::partial_message &&
                   ec != http::error::end_of_stream) {
          co_await Reject(400, "malformed request: " + ec.message());
        }
        co_return;
      }
      auto& msg = hp.get();
      auto method = msg.method_string();
      req_.method.assign(method.data(), method.size());
      auto target = msg.target();
      req_.target.assign(target.data(), target.size());
      req_.version = msg.version();
      for (const auto& field : msg) {
        auto name = field.name_string();
        auto value = field.value();
        auto& h = req_.headers.emplace_back();
        h.first.resize(name.size());
        for (size_t i = 0; i < name.size(); ++i) h.first[i] = LowerAscii(name[i]);
        h.second.assign(value.data(), value.size());
      }
      const std::string* rid = req_.Header("x-request-id");
      req_.request_id = (rid && IsValidRequestId(*rid)) ? *rid : GenerateRequestId();
      bool keep_alive = hp.keep_alive();
      {
        std::string why;
        if (!SplitTarget(&req_, &why)) {
          co_await Reject(400, why);
          co_return;
        }
      }

      BodyPolicy policy;
      bool policy_ok = true;
      try {
        policy = srv_->service->OnHeaders(req_);
      } catch (const std::exception& e) {
        LogError("http OnHeaders threw", {{"error", e.what()}, {"request_id", req_.request_id}});
        policy_ok = false;
      } catch (...) {
        policy_ok = false;
      }
      if (!policy_ok) {
        co_await Reject(500, "internal error");
        co_return;
      }
      const uint64_t limit = policy.max_bytes ? policy.max_bytes : opt.max_body_bytes;
      auto content_length = hp.content_length();
      const bool has_body = hp.chunked() || (content_length && *content_length > 0);
      if (content_length && *content_length > limit) {
        co_await Reject(413, "request body of " + std::to_string(*content_length) + " bytes exceeds the limit of " +
                                 std::to_string(limit) + " bytes");
        co_return;
      }

      if (has_body) {
        const std::string* expect = req_.Header("expect");
        if (expect && EqualsIgnoreCase(*expect, "100-continue") && req_.version >= 11) {
          static const char kContinue[] = "HTTP/1.1 100 Continue\r\n\r\n";
          SetDeadline(opt.request_timeout_ms);
          co_await asio::async_write(stream_, asio::buffer(kContinue, sizeof(kContinue) - 1),
                                     asio::redirect_error(asio::use_awaitable, ec));
          if (ec) co_return;
        }
        SetDeadline(opt.request_timeout_ms);
        if (policy.spool_to_file) {
          std::string path = opt.spool_dir + "/lathe-spool-XXXXXX";
          int fd = ::mkstemp(path.data());
          if (fd < 0) {
            LogError("http spool file", {{"error", std::strerror(errno)}, {"dir", opt.spool_dir}});
            co_await Reject(500, "cannot create a spool file for the request body");
            co_return;
          }
          req_.body_file = path;
          http::request_parser<http::file_body> bp(std::move(hp));
          bp.body_limit(limit);
          beast::file_posix file;
          file.native_handle(fd);
          bp.get().body().reset(std::move(file), ec);
          if (!ec) {
            co_await http::async_read(stream_, buf_, bp, asio::redirect_error(asio::use_awaitable, ec));
          }
          if (ec) {
            co_await BodyError(ec, limit);
            co_return;
          }
          keep_alive = bp.keep_alive();
        } else {
          http::request_parser<http::string_body> bp(std::move(hp));
          bp.body_limit(limit);
          bp.get().body().swap(req_.body);  // reuse this connection's body buffer
          co_await http::async_read(stream_, buf_, bp, asio::redirect_error(asio::use_awaitable, ec));
          bp.get().body().swap(req_.body);
          if (ec) {
            co_await BodyError(ec, limit);
            co_return;
          }
          keep_alive = bp.keep_alive();
        }
      }

      if (srv_->in_flight) srv_->in_flight->Inc();
      deferral_->deferred = false;
      deferral_->done = false;
      res_.defer_hook = [this]() -> std::function<void()> {
        deferral_->deferred = true;
        return [self = this->shared_from_this(), d = deferral_]() {
          asio::post(self->stream_.get_executor(), [d] {
            d->done = true;
            d->timer.cancel();
          });
        };
      };
      try {
        srv_->service->Handle(req_, res_);
      } catch (const std::exception& e) {
        LogError("http handler threw", {{"error", e.what()}, {"request_id", req_.request_id}});
        if (!deferral_->deferred) FillRejected(500, "internal error");
      } catch (...) {
        LogError("http handler threw", {{"request_id", req_.request_id}});
        if (!deferral_->deferred) FillRejected(500, "internal error");
      }
      res_.defer_hook = nullptr;
      // A deferred response: wait (on this strand, holding no thread) until its completion is posted here.
      while (deferral_->deferred && !deferral_->done) {
        error_code wait_ec;
        deferral_->timer.expires_at(SteadyClock::time_point::max());
        co_await deferral_->timer.async_wait(asio::redirect_error(asio::use_awaitable, wait_ec));
      }
      if (srv_->in_flight) srv_->in_flight->Dec();
      // The handler is done with a spooled body (it renames the file away to keep it): remove it before the
      // response goes out, so a client that saw the response never finds the temp file.
      if (!req_.body_file.empty()) {
        ::unlink(req_.body_file.c_str());
        req_.body_file.clear();
      }

      if (srv_->stopping.load(std::memory_order_acquire)) keep_alive = false;
      bool ok = co_await WriteResponse(&keep_alive);
      if (!ok || !keep_alive) co_return;
      // Keep small buffers for the next request, but do not pin a large body's memory to an idle connection.
      if (req_.body.capacity() > kKeepBodyCapacity) std::string().swap(req_.body);
      if (res_.body.capacity() > kKeepBodyCapacity) std::string().swap(res_.body);
    }
  }

  asio::awaitable<void> BodyError(error_code ec, uint64_t limit) {
    if (ec == http::error::body_limit) {
      co_await Reject(413, "request body exceeds the limit of " + std::to_string(limit) + " bytes");
    } else if (timed_out_) {
      co_await Reject(408, "request body not received within " + std::to_string(srv_->opt.request_timeout_ms) +
                               " ms");
    } else if (IsParseError(ec) && ec != http::error::partial_message &&
               ec != http::error::end_of_stream) {
      co_await Reject(400, "malformed request body: " + ec.message());
    } else if (ec != asio::error::eof && ec != http::error::partial_message &&
               ec != http::error::end_of_stream && ec != asio::error::connection_reset) {
      LogWarn("http body read failed", {{"error", ec.message()}, {"request_id", req_.request_id}});
    }
  }

  void FillRejected(int status, const std::string& detail) {
    res_.Clear();
    try {
      srv_->service->OnRejected(req_, status, detail, res_);
    } catch (...) {
      res_.Clear();
    }
    if (res_.status < 100 || res_.status > 999 || res_.body.empty()) {
      res_.status = status;
      res_.content_type = "application/problem+json";
      Json j = {{"type", "about:blank"}, {"title", std::string(StatusReason(status))}, {"status", status}, {"detail", detail}};
      res_.body = DumpJson(j);
    }
  }

  // Sends the server's own error response, then closes the connection gracefully.
  asio::awaitable<void> Reject(int status, const std::string& detail) {
    if (req_.request_id.empty()) req_.request_id = GenerateRequestId();
    if (start_us_ == 0) start_us_ = MonotonicMicros();
    FillRejected(status, detail);
    bool keep_alive = false;
    bool ok = co_await WriteResponse(&keep_alive);
    if (!ok) co_return;
    // Half-close and drain briefly so the client reads the response instead of a reset.
    error_code ec;
    Sock().shutdown(tcp::socket::shutdown_send, ec);
    SetDeadline(1000);
    size_t drained = 0;
    while (!ec && drained < (4u << 20)) {
      buf_.clear();
      size_t n = co_await stream_.async_read_some(buf_.prepare(kReadChunk), asio::redirect_error(asio::use_awaitable, ec));
      drained += n;
    }
  }

  // Writes res_; returns false when the write failed. *keep_alive becomes false on "Connection: close".
  asio::awaitable<bool> WriteResponse(bool* keep_alive) {
    int status = res_.status;
    if (status < 100 || status > 999) status = 500;
    const bool body_allowed = BodyAllowed(status);
    const bool head_request = req_.method == "HEAD";
    // A file body: opened now so its size goes into Content-Length; a file that vanished is a 500.
    int file_fd = -1;
    uint64_t file_size = 0;
    if (!res_.body_file.empty()) {
      file_fd = ::open(res_.body_file.c_str(), O_RDONLY | O_CLOEXEC);
      struct stat st;
      if (file_fd < 0 || ::fstat(file_fd, &st) != 0) {
        if (file_fd >= 0) ::close(file_fd);
        file_fd = -1;
        status = 500;
        res_.content_type = "application/problem+json";
        res_.body = R"({"type":"about:blank","title":"Internal Server Error","status":500,"detail":"the response file is gone"})";
      } else {
        file_size = static_cast<uint64_t>(st.st_size);
      }
    }
    struct FdCloser {
      int& fd;
      HttpResponse& res;
      ~FdCloser() {
        if (fd >= 0) ::close(fd);
        if (res.body_file_owned && !res.body_file.empty()) ::unlink(res.body_file.c_str());
        res.body_file.clear();
        res.body_file_owned = false;
      }
    } closer{file_fd, res_};
    std::string& h = head_;
    h.clear();
    h.append("HTTP/1.1 ");
    AppendInt(&h, static_cast<uint64_t>(status));
    h.push_back(' ');
    h.append(StatusReason(status));
    h.append("\r\nServer: lathe\r\nDate: ");
    h.append(HttpDate());
    h.append("\r\n");
    if (body_allowed) {
      if (!res_.content_type.empty() && IsSafeHeaderValue(res_.content_type)) {
        h.append("Content-Type: ").append(res_.content_type).append("\r\n");
      }
      h.append("Content-Length: ");
      AppendInt(&h, file_fd >= 0 ? file_size : res_.body.size());
      h.append("\r\n");
    }
    h.append("X-Request-Id: ").append(req_.request_id).append("\r\n");
    for (const auto& [name, value] : res_.headers) {
      bool valid = !name.empty() && IsSafeHeaderValue(value);
      for (char c : name) valid = valid && IsTokenChar(c);
      if (!valid || EqualsIgnoreCase(name, "content-length") || EqualsIgnoreCase(name, "transfer-encoding") ||
          EqualsIgnoreCase(name, "date") || EqualsIgnoreCase(name, "server") ||
          EqualsIgnoreCase(name, "x-request-id") || EqualsIgnoreCase(name, "content-type")) {
        continue;
      }
      if (EqualsIgnoreCase(name, "connection")) {
        if (HasToken(value, "close")) *keep_alive = false;
        continue;
      }
      h.append(name).append(": ").append(value).append("\r\n");
    }
    for (const auto& [name, value] : srv_->opt.security_headers) {
      bool overridden = false;
      for (const auto& set : res_.headers) overridden = overridden || EqualsIgnoreCase(set.first, name);
      if (!overridden) h.append(name).append(": ").append(value).append("\r\n");
    }
    if (!*keep_alive) {
      h.append("Connection: close\r\n");
    } else if (req_.version == 10) {
      h.append("Connection: keep-alive\r\n");
    }
    h.append("\r\n");

    // Metrics are recorded before the write so a client that saw the response also sees it counted.
    RecordMetrics(status);
    SetDeadline(srv_->opt.request_timeout_ms);
    error_code ec;
    if (file_fd >= 0) {
      co_await asio::async_write(stream_, asio::buffer(h), asio::redirect_error(asio::use_awaitable, ec));
      uint64_t sent = 0;
      if (body_allowed && !head_request) {
        std::string block(256 * 1024, '\0');
        while (!ec && sent < file_size) {
          ssize_t n = ::read(file_fd, block.data(), block.size());
          if (n <= 0) {
            // The file shrank under us: the client sees a short body and the connection closes.
            ec = boost::asio::error::broken_pipe;
            break;
          }
          SetDeadline(srv_->opt.request_timeout_ms);
          co_await asio::async_write(stream_, asio::buffer(block.data(), static_cast<size_t>(n)),
                                     asio::redirect_error(asio::use_awaitable, ec));
          sent += static_cast<uint64_t>(n);
        }
      }
      LogAccess(status, sent, ec);
      co_return !ec;
    }
    size_t body_bytes = (body_allowed && !head_request) ? res_.body.size() : 0;
    std::array<asio::const_buffer, 2> bufs = {asio::buffer(h), asio::buffer(res_.body.data(), body_bytes)};
    co_await asio::async_write(stream_, bufs, asio::redirect_error(asio::use_awaitable, ec));
    LogAccess(status, body_bytes, ec);
    co_return !ec;
  }

  void RecordMetrics(int status) {
    if (srv_->requests) {
      const int64_t dur_us = MonotonicMicros() - start_us_;
      const std::string& route = res_.route.empty() ? kUnmatched : res_.route;
      const char* method = MethodLabel(req_.method);
      Counter* c = nullptr;
      for (const auto& e : counter_cache_) {
        if (e.method == method && e.status == status && e.route == route) {
          c = e.counter;
          break;
        }
      }
      if (!c) {
        c = srv_->requests->WithLabels({method, route, std::to_string(status)});
        if (counter_cache_.size() >= kCacheSize) counter_cache_.erase(counter_cache_.begin());
        counter_cache_.push_back({method, route, status, c});
      }
      c->Inc();
      Histogram* hist = nullptr;
      for (const auto& e : histogram_cache_) {
        if (e.route == route) {
          hist = e.histogram;
          break;
        }
      }
      if (!hist) {
        hist = srv_->durations->WithLabels({route});
        if (histogram_cache_.size() >= kCacheSize) histogram_cache_.erase(histogram_cache_.begin());
        histogram_cache_.push_back({route, hist});
      }
      hist->Observe(static_cast<double>(dur_us) / 1e6);
    }
  }

  void LogAccess(int status, size_t body_bytes, error_code write_ec) {
    const int64_t dur_us = MonotonicMicros() - start_us_;
    start_us_ = 0;
    const std::string& route = res_.route.empty() ? kUnmatched : res_.route;
    if (srv_->opt.access_log) {
      Json line = {{"method", req_.method},
                   {"path", req_.path},
                   {"status", status},
                   {"bytes", body_bytes},
                   {"duration_ms", static_cast<double>(dur_us) / 1000.0},
                   {"request_id", req_.request_id},
                   {"remote", req_.remote_addr},
                   {"caller", res_.caller},
                   {"route", route}};
      if (write_ec) line["write_error"] = write_ec.message();
      LogInfo("access", line);
    }
  }

  static constexpr size_t kReadChunk = 16 * 1024;
  static constexpr size_t kCacheSize = 16;
  static constexpr size_t kKeepBodyCapacity = 256 * 1024;
  inline static const std::string kUnmatched = "unmatched";

  HttpServer::Impl* srv_;
  tcp::socket::lowest_layer_type& Sock() { return stream_.lowest_layer(); }

  // A deferred response's completion: set and the timer cancelled on this connection's strand.
  struct Deferral {
    explicit Deferral(const asio::any_io_executor& ex) : timer(ex) {}
    asio::steady_timer timer;
    bool deferred = false;
    bool done = false;
  };

  Stream stream_;
  asio::steady_timer timer_;
  std::shared_ptr<Deferral> deferral_;
  SteadyClock::time_point deadline_{};
  bool timer_armed_ = false;
  bool timed_out_ = false;
  bool idle_ = false;
  bool closed_ = false;
  int64_t start_us_ = 0;
  beast::flat_buffer buf_;
  HttpRequest req_;
  HttpResponse res_;
  std::string head_;
  std::vector<CachedCounter> counter_cache_;
  std::vector<CachedHistogram> histogram_cache_;
};

asio::awaitable<void> HttpServer::Impl::AcceptLoop() {
  for (;;) {
    tcp::socket sock(asio::make_strand(ioc));
    error_code ec;
    co_await acceptor.async_accept(sock, asio::redirect_error(asio::use_awaitable, ec));
    if (stopping.load(std::memory_order_acquire)) co_return;
    if (ec) {
      if (ec == asio::error::operation_aborted || ec == asio::error::bad_descriptor) co_return;
      // E.g. EMFILE: back off briefly instead of spinning.
      LogWarn("http accept failed", {{"error", ec.message()}});
      asio::steady_timer backoff(acceptor.get_executor(), std::chrono::milliseconds(50));
      co_await backoff.async_wait(asio::redirect_error(asio::use_awaitable, ec));
      continue;
    }
    sock.set_option(tcp::no_delay(true), ec);
    if (tls) {
      StartSession(asio::ssl::stream<tcp::socket>(std::move(sock), *tls));
    } else {
      StartSession(std::move(sock));
    }
  }
}

template <class Stream>
void HttpServer::Impl::StartSession(Stream stream) {
  auto session = std::make_shared<Session<Stream>>(this, std::move(stream));
  {
    std::lock_guard<std::mutex> lock(sessions_mu);
    sessions.push_front(session);
    session->registry_pos = sessions.begin();
  }
  if (connections_open) connections_open->Inc();
  auto exec = session->Executor();
  asio::co_spawn(exec, [this, session]() -> asio::awaitable<void> {
    co_await session->Run();
    if (connections_open) connections_open->Dec();
    std::lock_guard<std::mutex> lock(sessions_mu);
    sessions.erase(session->registry_pos);
  }, asio::detached);
}

HttpServer::HttpServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

HttpServer::~HttpServer() {
  // Destroy pending coroutines (they hold sessions) before the rest of Impl goes away.
  impl_->stopping.store(true);
  error_code ec;
  impl_->acceptor.close(ec);
  impl_->ioc.stop();
}

Result<std::unique_ptr<HttpServer>> HttpServer::Create(const ServerOptions& options, HttpService* service) {
  if (service == nullptr) return Status::InvalidArgument("http server: no service");
  if (options.io_threads < 1 || options.io_threads > 1024) {
    return Status::InvalidArgument("http server: io_threads must be 1-1024");
  }
  if (options.max_header_bytes < 64) return Status::InvalidArgument("http server: max_header_bytes below 64");
  if (options.header_read_timeout_ms <= 0 || options.request_timeout_ms <= 0 || options.keepalive_timeout_ms <= 0) {
    return Status::InvalidArgument("http server: timeouts must be positive");
  }
  error_code ec;
  auto address = asio::ip::make_address(options.host, ec);
  if (ec) return Status::InvalidArgument("http server: invalid host address '" + options.host + "'");
  auto impl = std::make_unique<Impl>(options, service, options.io_threads);
  if (!options.tls_cert_file.empty() || !options.tls_key_file.empty()) {
    ASSIGN_OR_RETURN(impl->tls, MakeTlsContext(options.tls_cert_file, options.tls_key_file));
    impl->opt.security_headers.emplace_back("Strict-Transport-Security", "max-age=31536000");
  }
  tcp::endpoint endpoint(address, options.port);
  std::string where = options.host + ":" + std::to_string(options.port);
  impl->acceptor.open(endpoint.protocol(), ec);
  if (!ec) impl->acceptor.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) impl->acceptor.bind(endpoint, ec);
  if (ec) return Status::Unavailable("http server: cannot bind " + where + ": " + ec.message());
  impl->acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) return Status::Unavailable("http server: cannot listen on " + where + ": " + ec.message());
  impl->port = impl->acceptor.local_endpoint(ec).port();
  if (options.metrics) {
    MetricsRegistry* m = options.metrics;
    auto requests = m->AddCounter("lathe_http_requests_total", "HTTP requests by method, route and status.",
                                  {"method", "route", "status"});
    auto durations = m->AddHistogram("lathe_http_request_duration_seconds",
                                     "HTTP request duration from the first header byte to the response, by route.",
                                     {"route"});
    auto conns = m->AddGauge("lathe_http_connections_open", "Open HTTP connections.");
    auto inflight = m->AddGauge("lathe_http_requests_in_flight", "HTTP requests being handled.");
    if (!requests.ok()) return requests.TakeStatus();
    if (!durations.ok()) return durations.TakeStatus();
    if (!conns.ok()) return conns.TakeStatus();
    if (!inflight.ok()) return inflight.TakeStatus();
    impl->requests = *requests;
    impl->durations = *durations;
    impl->connections_open = (*conns)->Get();
    impl->in_flight = (*inflight)->Get();
  }
  return std::unique_ptr<HttpServer>(new HttpServer(std::move(impl)));
}

uint16_t HttpServer::port() const { return impl_->port; }

void HttpServer::Run() {
  Impl* impl = impl_.get();
  if (impl->ran.exchange(true)) return;
  if (!impl->stopping.load(std::memory_order_acquire)) {
    asio::co_spawn(impl->acceptor.get_executor(), impl->AcceptLoop(), asio::detached);
  }
  auto run = [impl] {
    for (;;) {
      try {
        impl->ioc.run();
        return;
      } catch (const std::exception& e) {
        LogError("http io thread caught an exception", {{"error", e.what()}});
      } catch (...) {
        LogError("http io thread caught an exception");
      }
    }
  };
  std::vector<std::thread> threads;
  for (int i = 1; i < impl->opt.io_threads; ++i) threads.emplace_back(run);
  run();
  for (auto& t : threads) t.join();
}

void HttpServer::Stop() {
  Impl* impl = impl_.get();
  impl->stopping.store(true, std::memory_order_release);
  asio::post(impl->acceptor.get_executor(), [impl] {
    error_code ec;
    impl->acceptor.close(ec);
  });
  std::lock_guard<std::mutex> lock(impl->sessions_mu);
  for (auto& weak : impl->sessions) {
    if (auto s = weak.lock()) {
      asio::post(s->Executor(), [s] { s->OnStop(); });
    }
  }
}

}  // namespace lathe
