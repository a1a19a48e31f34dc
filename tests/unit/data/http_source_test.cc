// HTTP sources against a real local HTTP/1.1 server started inside the test (a blocking socket server on a
// thread, one request per connection, canned responses): formats, sniffing, every pagination kind, gzip,
// redirects, HTTP errors, timeouts, cancel, limits, malformed JSON, and header/URL secrecy.
#include "data/http_source.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <fstream>
#include <map>
#include <mutex>
#include <sstream>
#include <thread>

#include "data_test_util.h"

namespace lathe {
namespace {

// Sources aimed at the test servers on 127.0.0.1, which the default address policy refuses.
HttpSource Loopback() {
  HttpSource s;
  s.addresses = AddressPolicy::Parse("127.0.0.1/32").value();
  return s;
}

using lathe::testing::ScratchDir;
using Clock = std::chrono::steady_clock;

std::string ReadAll(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

struct Request {
  std::string target;                          // path + query
  std::map<std::string, std::string> headers;  // lower-case names
};

struct Response {
  int status = 200;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  int delay_ms = 0;  // before the body is sent (headers go out first)
};

class TestHttpServer {
 public:
  using Handler = std::function<Response(const Request&)>;

  explicit TestHttpServer(Handler h) : handler_(std::move(h)) {
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a);
    socklen_t len = sizeof a;
    getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    listen(fd_, 16);
    thread_ = std::thread([this] { Loop(); });
  }
  ~TestHttpServer() {
    stop_ = true;
    thread_.join();
    close(fd_);
  }

  std::string Url(const std::string& target) const {
    return "http://127.0.0.1:" + std::to_string(port_) + target;
  }
  std::vector<Request> requests() {
    std::lock_guard<std::mutex> l(mu_);
    return requests_;
  }

 private:
  void Loop() {
    while (!stop_) {
      pollfd p{fd_, POLLIN, 0};
      if (poll(&p, 1, 50) <= 0) continue;
      int c = accept(fd_, nullptr, nullptr);
      if (c < 0) continue;
      Serve(c);
      close(c);
    }
  }

  void Serve(int c) {
    std::string in;
    char buf[4096];
    while (in.find("\r\n\r\n") == std::string::npos) {
      pollfd p{c, POLLIN, 0};
      if (poll(&p, 1, 2000) <= 0) return;
      ssize_t n = recv(c, buf, sizeof buf, 0);
      if (n <= 0) return;
      in.append(buf, static_cast<size_t>(n));
    }
    Request req;
    std::istringstream lines(in.substr(0, in.find("\r\n\r\n")));
    std::string line;
    std::getline(lines, line);
    std::istringstream rl(line);
    std::string method;
    rl >> method >> req.target;
    while (std::getline(lines, line)) {
      if (!line.empty() && line.back() == '\r') line.pop_back();
      size_t colon = line.find(':');
      if (colon == std::string::npos) continue;
      std::string name = line.substr(0, colon);
      for (char& ch : name) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
      std::string value = line.substr(colon + 1);
      if (!value.empty() && value[0] == ' ') value.erase(0, 1);
      req.headers[name] = value;
    }
    {
      std::lock_guard<std::mutex> l(mu_);
      requests_.push_back(req);
    }
    Response r = handler_(req);
    std::string head = "HTTP/1.1 " + std::to_string(r.status) +
                       " X\r\nContent-Length: " + std::to_string(r.body.size()) + "\r\nConnection: close\r\n";
    for (const auto& [k, v] : r.headers) head += k + ": " + v + "\r\n";
    head += "\r\n";
    SendAll(c, head);
    for (int waited = 0; waited < r.delay_ms && !stop_; waited += 10) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    SendAll(c, r.body);
  }

  static void SendAll(int c, const std::string& s) {
    size_t off = 0;
    while (off < s.size()) {
      ssize_t n = send(c, s.data() + off, s.size() - off, MSG_NOSIGNAL);
      if (n <= 0) return;
      off += static_cast<size_t>(n);
    }
  }

  Handler handler_;
  int fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::thread thread_;
  std::mutex mu_;
  std::vector<Request> requests_;
};

// "/x?page=3&a=b" -> "3" for name "page".
std::string Param(const std::string& target, const std::string& name) {
  size_t q = target.find('?');
  if (q == std::string::npos) return "";
  std::string query = target.substr(q + 1);
  std::istringstream ss(query);
  std::string item;
  while (std::getline(ss, item, '&')) {
    if (item.rfind(name + "=", 0) == 0) return item.substr(name.size() + 1);
  }
  return "";
}

std::string Path(const std::string& target) { return target.substr(0, target.find('?')); }

Response Csv(std::string body) {
  return Response{200, {{"Content-Type", "text/csv; charset=utf-8"}}, std::move(body)};
}
Response JsonResp(std::string body) {
  return Response{200, {{"Content-Type", "application/json"}}, std::move(body)};
}

class HttpSourceTest : public ::testing::Test {
 protected:
  Result<SourceFetch> Fetch(const HttpSource& s, const std::function<bool()>& cancel = nullptr) {
    return FetchHttp(s, out_, cancel);
  }
  bool NothingLeft() const { return scratch_.FileCount() == 0; }

  ScratchDir scratch_;
  std::string out_ = scratch_.Path("out.data");
};

TEST_F(HttpSourceTest, SingleCsvPageWithAuthorizationHeader) {
  TestHttpServer server([](const Request&) { return Csv("a,b\n1,x\n2,\"y\nz\"\n"); });
  HttpSource s = Loopback();
  s.url = server.Url("/data.csv?api_key=TOPSECRET");
  s.headers = {{"Authorization", "Bearer tok-123"}, {"X-Empty", ""}};
  auto r = Fetch(s);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->format, "csv");
  EXPECT_EQ(r->rows, 2);
  EXPECT_EQ(ReadAll(out_), "a,b\n1,x\n2,\"y\nz\"\n");
  EXPECT_EQ(r->bytes, 16);
  auto reqs = server.requests();
  ASSERT_EQ(reqs.size(), 1u);
  EXPECT_EQ(reqs[0].headers["authorization"], "Bearer tok-123");
  EXPECT_EQ(reqs[0].headers.count("x-empty"), 1u);
  std::string info = r->info.dump();
  EXPECT_EQ(info.find("tok-123"), std::string::npos);
  EXPECT_EQ(info.find("TOPSECRET"), std::string::npos);
  EXPECT_EQ(r->info["url"], server.Url("/data.csv?…"));
  EXPECT_EQ(r->info["header_names"][0], "Authorization");
  EXPECT_EQ(r->info["pages"], 1);
}

TEST_F(HttpSourceTest, CsvLinkPaginationWithRelativeNext) {
  TestHttpServer server([](const Request& req) {
    std::string p = Param(req.target, "p");
    if (p.empty())
      return Response{200, {{"Content-Type", "text/csv"}, {"Link", "</d?p=2>; rel=\"next\""}}, "id,v\n1,a"};
    if (p == "2") {
      return Response{
          200,
          {{"Content-Type", "text/csv"},
           {"Link", "<http://elsewhere.invalid/prev>; rel=\"prev\", </d?p=3>; rel=\"next last\""}},
          "id,v\r\n2,b\r\n3,c\r\n"};
    }
    return Csv("id,v\n4,d\n");
  });
  HttpSource s = Loopback();
  s.url = server.Url("/d");
  s.pagination.kind = "link";
  auto r = Fetch(s);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(ReadAll(out_), "id,v\n1,a\n2,b\r\n3,c\r\n4,d\n");
  EXPECT_EQ(r->rows, 4);
  EXPECT_EQ(r->info["pages"], 3);
  EXPECT_EQ(r->info["truncated"], false);
}

TEST_F(HttpSourceTest, CsvPageParamStopsOnHeaderOnlyPage) {
  TestHttpServer server([](const Request& req) {
    int page = std::stoi(Param(req.target, "page"));
    if (page >= 3) return Csv("n\n");
    return Csv("n\n" + std::to_string(page) + "\n");
  });
  HttpSource s = Loopback();
  s.url = server.Url("/n?page=77&keep=1");
  s.pagination.kind = "page";
  auto r = Fetch(s);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(ReadAll(out_), "n\n1\n2\n");
  EXPECT_EQ(r->rows, 2);
  auto reqs = server.requests();
  ASSERT_EQ(reqs.size(), 3u);
  EXPECT_EQ(Param(reqs[0].target, "keep"), "1");
  EXPECT_EQ(Param(reqs[0].target, "page"), "1");
  EXPECT_EQ(Param(reqs[2].target, "page"), "3");
}

TEST_F(HttpSourceTest, CsvHeaderMismatchFailsAndLeavesNothing) {
  TestHttpServer server([](const Request& req) {
    if (Param(req.target, "page") == "1") return Csv("a,b\n1,2\n");
    return Csv("a,c\n3,4\n");
  });
  HttpSource s = Loopback();
  s.url = server.Url("/x");
  s.pagination.kind = "page";
  auto r = Fetch(s);
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("page 2"), std::string::npos) << r.status().message();
  EXPECT_TRUE(NothingLeft());
}

TEST_F(HttpSourceTest, CsvEndingInsideQuoteFails) {
  TestHttpServer server([](const Request&) { return Csv("a,b\n1,\"open\n"); });
  HttpSource s = Loopback();
  s.url = server.Url("/q");
  auto r = Fetch(s);
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("quoted"), std::string::npos);
  EXPECT_TRUE(NothingLeft());
}

TEST_F(HttpSourceTest, JsonPagesWithRecordsPointer) {
  TestHttpServer server([](const Request& req) {
    int page = std::stoi(Param(req.target, "page"));
    if (page == 0)
      return JsonResp(R"({"data": [{"id": 1, "name": "a\nb"},
                                             {"id": 2, "tags": [1, {"x": null}], "big": 12345678901234567890123}]})");
    if (page == 1) return JsonResp(R"({"data": [{"id": 3, "u": "Ünï 🎉"}], "meta": {}})");
    return JsonResp(R"({"data": []})");
  });
  HttpSource s = Loopback();
  s.url = server.Url("/api");
  s.records_pointer = "/data";
  s.pagination.kind = "page";
  s.pagination.start_page = 0;
  auto r = Fetch(s);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->format, "jsonl");
  EXPECT_EQ(r->rows, 3);
  EXPECT_EQ(ReadAll(out_),
            "{\"id\":1,\"name\":\"a\\nb\"}\n"
            "{\"big\":1.2345678901234568e+22,\"id\":2,\"tags\":[1,{\"x\":null}]}\n"
            "{\"id\":3,\"u\":\"Ünï 🎉\"}\n");
  EXPECT_EQ(r->info["pages"], 3);
}

TEST_F(HttpSourceTest, JsonCursorPagination) {
  TestHttpServer server([](const Request& req) {
    std::string path = Path(req.target);
    if (path == "/start") return JsonResp(R"({"items":[{"k":1}],"links":{"next":"/c?after=1"}})");
    if (Param(req.target, "after") == "1") {
      return JsonResp(R"({"items":[{"k":2},{"k":3}],"links":{"next":")" + std::string("http://127.0.0.1:") +
                      req.headers.at("host").substr(req.headers.at("host").find(':') + 1) + "/c?after=3\"}}");
    }
    return JsonResp(R"({"items":[{"k":4}],"links":{"next":null}})");
  });
  HttpSource s = Loopback();
  s.url = server.Url("/start");
  s.records_pointer = "/items";
  s.pagination.kind = "cursor";
  s.pagination.next_pointer = "/links/next";
  auto r = Fetch(s);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(ReadAll(out_), "{\"k\":1}\n{\"k\":2}\n{\"k\":3}\n{\"k\":4}\n");
  EXPECT_EQ(r->info["pages"], 3);
}

TEST_F(HttpSourceTest, MaxPagesTruncatesAndFlags) {
  TestHttpServer server([](const Request& req) {
    int n = std::stoi(Param(req.target, "page"));
    return JsonResp("[{\"n\":" + std::to_string(n) + "}]");
  });
  HttpSource s = Loopback();
  s.url = server.Url("/endless");
  s.pagination.kind = "page";
  s.pagination.max_pages = 4;
  auto r = Fetch(s);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->rows, 4);
  EXPECT_EQ(r->info["truncated"], true);
  EXPECT_EQ(server.requests().size(), 4u);
}

TEST_F(HttpSourceTest, LinkLoopStops) {
  TestHttpServer server([](const Request&) {
    return Response{
        200, {{"Content-Type", "application/x-ndjson"}, {"Link", "</self>; rel=next"}}, "{\"a\":1}\n"};
  });
  HttpSource s = Loopback();
  s.url = server.Url("/self");
  s.pagination.kind = "link";
  auto r = Fetch(s);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->rows, 1);
  EXPECT_EQ(server.requests().size(), 1u);
}

TEST_F(HttpSourceTest, FormatSniffing) {
  struct Case {
    std::string content_type, body, format;
    int64_t rows;
  };
  for (const Case& c : {Case{"text/plain", "{\"a\":1}\n{\"a\":2}\n", "jsonl", 2},
                        Case{"application/octet-stream", "  [{\"a\":1}]", "jsonl", 1},
                        Case{"",
                             "\xEF\xBB\xBF"
                             "x,y\n1,2\n",
                             "csv", 1},
                        Case{"text/plain", "{\n  \"a\": 1\n}", "", 0},  // one object, not an array: error
                        Case{"application/vnd.api+json", "[]", "jsonl", 0}}) {
    TestHttpServer server([&](const Request&) {
      Response r{200, {}, c.body};
      if (!c.content_type.empty()) r.headers.push_back({"Content-Type", c.content_type});
      return r;
    });
    HttpSource s = Loopback();
    s.url = server.Url("/s");
    auto r = Fetch(s);
    if (c.format.empty()) {
      EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << c.body;
      continue;
    }
    ASSERT_TRUE(r.ok()) << c.body << ": " << r.status().ToString();
    EXPECT_EQ(r->format, c.format) << c.body;
    EXPECT_EQ(r->rows, c.rows) << c.body;
    std::filesystem::remove(out_);
  }
}

TEST_F(HttpSourceTest, HtmlIsRefused) {
  TestHttpServer server([](const Request&) {
    return Response{200, {{"Content-Type", "text/html"}}, "<html><body>login</body></html>"};
  });
  HttpSource s = Loopback();
  s.url = server.Url("/login");
  EXPECT_EQ(Fetch(s).status().code(), StatusCode::kUnsupportedMedia);
  TestHttpServer sniffed([](const Request&) { return Response{200, {}, "<!doctype html><p>hi"}; });
  s.url = sniffed.Url("/x");
  EXPECT_EQ(Fetch(s).status().code(), StatusCode::kUnsupportedMedia);
  EXPECT_TRUE(NothingLeft());
}

TEST_F(HttpSourceTest, ObjectPageSuggestsRecordsPointer) {
  TestHttpServer server([](const Request&) { return JsonResp(R"({"count":2,"results":[{"a":1}]})"); });
  HttpSource s = Loopback();
  s.url = server.Url("/o");
  auto r = Fetch(s);
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("\"/results\""), std::string::npos) << r.status().message();
  s.records_pointer = "/missing";
  r = Fetch(s);
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(r.status().details()[0].field, "records_pointer");
  TestHttpServer scalars([](const Request&) { return JsonResp("[{\"a\":1}, 5]"); });
  s.url = scalars.Url("/s");
  s.records_pointer = "";
  r = Fetch(s);
  EXPECT_NE(r.status().message().find("record 1 is a number"), std::string::npos) << r.status().message();
  EXPECT_TRUE(NothingLeft());
}

TEST_F(HttpSourceTest, MalformedJsonNamesPageAndByte) {
  TestHttpServer server([](const Request& req) {
    if (Param(req.target, "page") == "1") return JsonResp("[{\"a\":1}]");
    return JsonResp("[{\"a\":1}, {\"a\": tru}]");
  });
  HttpSource s = Loopback();
  s.url = server.Url("/j");
  s.pagination.kind = "page";
  auto r = Fetch(s);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("page 2"), std::string::npos) << r.status().message();
  ASSERT_FALSE(r.status().details().empty());
  EXPECT_EQ(r.status().details()[0].field, "page 2");
  EXPECT_GE(r.status().details()[0].position, 16);
  EXPECT_LE(r.status().details()[0].position, 20);
  EXPECT_TRUE(NothingLeft());

  // Truncated, deeply nested and empty bodies.
  for (std::string body : {std::string("[{\"a\":"), std::string(100000, '['), std::string()}) {
    TestHttpServer bad([&](const Request&) { return JsonResp(body); });
    HttpSource b = Loopback();
    b.url = bad.Url("/b");
    auto rb = Fetch(b);
    EXPECT_FALSE(rb.ok());
    EXPECT_TRUE(rb.status().code() == StatusCode::kInvalidArgument ||
                rb.status().code() == StatusCode::kFailedPrecondition)
        << rb.status().ToString();
  }
  EXPECT_TRUE(NothingLeft());
}

TEST_F(HttpSourceTest, HttpErrorsNameStatusAndRedactedUrl) {
  TestHttpServer server([](const Request& req) {
    if (Path(req.target) == "/boom") return Response{500, {}, "internal\nfailure details"};
    return Response{404, {}, "not here"};
  });
  HttpSource s = Loopback();
  s.url = server.Url("/boom?token=SECRET42");
  auto r = Fetch(s);
  EXPECT_EQ(r.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(r.status().message().find("HTTP 500"), std::string::npos);
  EXPECT_NE(r.status().message().find(server.Url("/boom?…")), std::string::npos) << r.status().message();
  EXPECT_NE(r.status().message().find("internal failure"), std::string::npos);
  EXPECT_EQ(r.status().ToString().find("SECRET42"), std::string::npos);
  s.url = server.Url("/gone");
  r = Fetch(s);
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("HTTP 404"), std::string::npos);
  EXPECT_TRUE(NothingLeft());
}

TEST_F(HttpSourceTest, ErrorOnLaterPageLeavesNothing) {
  TestHttpServer server([](const Request& req) {
    if (Param(req.target, "page") == "3") return Response{503, {}, ""};
    return Csv("a\n" + Param(req.target, "page") + "\n");
  });
  HttpSource s = Loopback();
  s.url = server.Url("/p");
  s.pagination.kind = "page";
  auto r = Fetch(s);
  EXPECT_EQ(r.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(r.status().message().find("page 3"), std::string::npos);
  EXPECT_TRUE(NothingLeft());
}

TEST_F(HttpSourceTest, SlowResponseTimesOut) {
  TestHttpServer server([](const Request&) {
    return Response{200, {{"Content-Type", "text/csv"}}, "a\n1\n", 5000};
  });
  HttpSource s = Loopback();
  s.url = server.Url("/slow");
  s.timeout_ms = 400;
  auto t0 = Clock::now();
  auto r = Fetch(s);
  EXPECT_EQ(r.status().code(), StatusCode::kDeadlineExceeded) << r.status().ToString();
  EXPECT_LT(std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0).count(), 2000);
  EXPECT_TRUE(NothingLeft());
}

TEST_F(HttpSourceTest, CancelDuringSlowResponse) {
  TestHttpServer server([](const Request&) { return Response{200, {}, "a\n1\n", 5000}; });
  HttpSource s = Loopback();
  s.url = server.Url("/slow");
  auto t0 = Clock::now();
  auto r = Fetch(s, [&] { return Clock::now() - t0 > std::chrono::milliseconds(200); });
  EXPECT_EQ(r.status().code(), StatusCode::kCancelled) << r.status().ToString();
  EXPECT_LT(std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0).count(), 2000);
  EXPECT_TRUE(NothingLeft());
}

TEST_F(HttpSourceTest, MaxBytesOverAllPages) {
  TestHttpServer server([](const Request&) { return Csv("v\n" + std::string(600, '7') + "\n"); });
  HttpSource s = Loopback();
  s.url = server.Url("/big");
  s.pagination.kind = "page";
  s.max_bytes = 1000;
  auto r = Fetch(s);
  EXPECT_EQ(r.status().code(), StatusCode::kPayloadTooLarge) << r.status().ToString();
  EXPECT_NE(r.status().message().find("max_bytes=1000"), std::string::npos);
  EXPECT_TRUE(NothingLeft());
}

TEST_F(HttpSourceTest, GzipIsDecoded) {
  std::string gz = ReadAll(std::string(LATHE_TEST_DATA_DIR) + "/sources/scores.csv.gz");
  std::string plain = ReadAll(std::string(LATHE_TEST_DATA_DIR) + "/sources/scores.csv");
  ASSERT_FALSE(gz.empty());
  TestHttpServer server([&](const Request& req) {
    EXPECT_NE(req.headers.at("accept-encoding").find("gzip"), std::string::npos);
    return Response{200, {{"Content-Type", "text/csv"}, {"Content-Encoding", "gzip"}}, gz};
  });
  HttpSource s = Loopback();
  s.url = server.Url("/scores.csv");
  auto r = Fetch(s);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(ReadAll(out_), plain);
  EXPECT_EQ(r->rows, 1000);
  ScratchDir dir;
  auto imp = lathe::testing::ImportPath(out_, dir);
  ASSERT_TRUE(imp.status.ok()) << imp.status.ToString();
  EXPECT_EQ(imp.result.rows, 1000);
}

TEST_F(HttpSourceTest, Redirects) {
  TestHttpServer server([](const Request& req) {
    std::string path = Path(req.target);
    if (path == "/moved") return Response{302, {{"Location", "/final"}}, ""};
    if (path == "/ftp") return Response{301, {{"Location", "ftp://127.0.0.1/x.csv"}}, ""};
    if (path == "/file") return Response{301, {{"Location", "file:///etc/passwd"}}, ""};
    if (path.rfind("/loop", 0) == 0) {
      return Response{302, {{"Location", "/loop" + std::to_string(path.size())}}, ""};
    }
    return Csv("ok\n1\n");
  });
  HttpSource s = Loopback();
  s.url = server.Url("/moved");
  auto r = Fetch(s);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->info["urls"][0], server.Url("/final"));
  std::filesystem::remove(out_);
  for (const char* p : {"/ftp", "/file"}) {
    s.url = server.Url(p);
    auto bad = Fetch(s);
    EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument) << p << ": " << bad.status().ToString();
  }
  s.url = server.Url("/loop");
  auto loop = Fetch(s);
  EXPECT_EQ(loop.status().code(), StatusCode::kFailedPrecondition) << loop.status().ToString();
  EXPECT_TRUE(NothingLeft());
}

TEST_F(HttpSourceTest, ConnectionRefused) {
  int port = 0;
  {
    TestHttpServer gone([](const Request&) { return Response{}; });
    port = std::stoi(gone.Url("").substr(17));
  }
  HttpSource s = Loopback();
  s.url = "http://127.0.0.1:" + std::to_string(port) + "/x";
  auto r = Fetch(s);
  EXPECT_EQ(r.status().code(), StatusCode::kUnavailable) << r.status().ToString();
  EXPECT_TRUE(NothingLeft());
}

// The default policy refuses loopback, and says so by name before any byte is sent: the test server sees no
// request. Redirects from an allowed host to a refused one are refused the same way.
TEST_F(HttpSourceTest, DefaultPolicyRefusesLoopbackAndRedirectsToIt) {
  std::atomic<int> requests{0};
  TestHttpServer server([&](const Request& req) {
    ++requests;
    if (req.target == "/hop") return Response{302, {{"Location", "http://[::1]:9/x.csv"}}, ""};
    return Response{200, {{"Content-Type", "text/csv"}}, "a,b\n1,2\n"};
  });
  HttpSource s;  // default: public addresses only
  s.url = server.Url("/x.csv");
  auto r = Fetch(s);
  ASSERT_EQ(r.status().code(), StatusCode::kPermissionDenied) << r.status().ToString();
  EXPECT_NE(r.status().message().find("127.0.0.1, a loopback address"), std::string::npos) << r.status().ToString();
  ASSERT_FALSE(r.status().details().empty());
  EXPECT_EQ(r.status().details()[0].field, "url");
  EXPECT_EQ(requests.load(), 0);
  EXPECT_TRUE(NothingLeft());

  HttpSource allowed = Loopback();  // 127.0.0.1 only: ::1 stays refused
  allowed.url = server.Url("/hop");
  auto hop = Fetch(allowed);
  ASSERT_EQ(hop.status().code(), StatusCode::kPermissionDenied) << hop.status().ToString();
  EXPECT_NE(hop.status().message().find("::1, a loopback address"), std::string::npos) << hop.status().ToString();
  EXPECT_EQ(requests.load(), 1);
  EXPECT_TRUE(NothingLeft());
}

sockaddr_storage V4(const char* ip) {
  sockaddr_storage ss{};
  auto* in = reinterpret_cast<sockaddr_in*>(&ss);
  in->sin_family = AF_INET;
  inet_pton(AF_INET, ip, &in->sin_addr);
  return ss;
}

sockaddr_storage V6(const char* ip) {
  sockaddr_storage ss{};
  auto* in6 = reinterpret_cast<sockaddr_in6*>(&ss);
  in6->sin6_family = AF_INET6;
  inet_pton(AF_INET6, ip, &in6->sin6_addr);
  return ss;
}

TEST(AddressPolicy, SpecialRangesAreRefusedUnlessAllowed) {
  AddressPolicy def;
  struct Case {
    const char* ip;
    bool v6;
    bool allowed;
  };
  const Case cases[] = {
      {"8.8.8.8", false, true},          {"93.184.216.34", false, true},   {"127.0.0.1", false, false},
      {"127.255.0.9", false, false},     {"10.1.2.3", false, false},       {"172.16.0.1", false, false},
      {"172.31.255.255", false, false},  {"172.32.0.1", false, true},      {"192.168.1.1", false, false},
      {"169.254.169.254", false, false}, {"100.64.0.1", false, false},     {"100.128.0.1", false, true},
      {"0.0.0.0", false, false},         {"224.0.0.1", false, false},      {"255.255.255.255", false, false},
      {"198.18.0.1", false, false},      {"2001:4860:4860::8888", true, true}, {"::1", true, false},
      {"::", true, false},               {"fd12::1", true, false},         {"fe80::1", true, false},
      {"ff02::1", true, false},          {"::ffff:127.0.0.1", true, false}, {"::ffff:8.8.8.8", true, true},
      {"64:ff9b::a9fe:a9fe", true, false},
  };
  for (const Case& c : cases) {
    sockaddr_storage ss = c.v6 ? V6(c.ip) : V4(c.ip);
    std::string why;
    EXPECT_EQ(def.Allowed(reinterpret_cast<sockaddr*>(&ss), &why), c.allowed) << c.ip << " " << why;
    if (!c.allowed) {
      EXPECT_FALSE(why.empty()) << c.ip;
    }
  }
  auto some = AddressPolicy::Parse(" 10.0.0.0/8, fd00::/8 ,192.168.1.7");
  ASSERT_TRUE(some.ok()) << some.status().ToString();
  for (const char* ip : {"10.200.0.1", "192.168.1.7"}) {
    sockaddr_storage ss = V4(ip);
    EXPECT_TRUE(some->Allowed(reinterpret_cast<sockaddr*>(&ss), nullptr)) << ip;
  }
  for (const char* ip : {"192.168.1.8", "127.0.0.1", "11.0.0.1"}) {
    sockaddr_storage ss = V4(ip);
    EXPECT_EQ(some->Allowed(reinterpret_cast<sockaddr*>(&ss), nullptr), std::string(ip) == "11.0.0.1") << ip;
  }
  sockaddr_storage ula = V6("fd00::5"), mapped = V6("::ffff:10.0.0.1");
  EXPECT_TRUE(some->Allowed(reinterpret_cast<sockaddr*>(&ula), nullptr));
  EXPECT_TRUE(some->Allowed(reinterpret_cast<sockaddr*>(&mapped), nullptr));
  auto any = AddressPolicy::Parse("any");
  sockaddr_storage lo = V4("127.0.0.1");
  EXPECT_TRUE(any->Allowed(reinterpret_cast<sockaddr*>(&lo), nullptr));
  for (const char* bad : {"10.0.0.0/33", "fd00::/129", "example.com", "10.0.0.0/", "10.0.0.0/x", "1.2.3.4/8/9"}) {
    auto p = AddressPolicy::Parse(bad);
    EXPECT_EQ(p.status().code(), StatusCode::kInvalidArgument) << bad;
  }
}

TEST(HttpSourceCheck, RejectsBadFields) {
  auto field_of = [](const HttpSource& s) {
    Status st = CheckHttpSource(s);
    return st.ok() || st.details().empty() ? std::string("ok") : st.details()[0].field;
  };
  HttpSource s = Loopback();
  s.url = "https://example.com/data.csv";
  EXPECT_EQ(field_of(s), "ok");
  for (const char* u : {"", "ftp://example.com/x", "file:///etc/passwd", "not a url", "http://"}) {
    HttpSource b = s;
    b.url = u;
    EXPECT_EQ(field_of(b), "url") << u;
  }
  for (auto h : std::vector<std::pair<std::string, std::string>>{{"X-Bad", "a\r\nInjected: 1"},
                                                                 {"X-Bad", "a\nb"},
                                                                 {"Bad Name", "v"},
                                                                 {"", "v"},
                                                                 {"X:Y", "v"},
                                                                 {"Content-Length", "5"},
                                                                 {"Host", "evil"},
                                                                 {"X-Nul", std::string("a\0b", 3)}}) {
    HttpSource b = s;
    b.headers = {{"Ok", "fine"}, h};
    EXPECT_EQ(field_of(b), "headers[1]") << h.first;
  }
  HttpSource b = s;
  b.format = "xml";
  EXPECT_EQ(field_of(b), "format");
  b = s;
  b.records_pointer = "data";
  EXPECT_EQ(field_of(b), "records_pointer");
  b = s;
  b.pagination.kind = "offset";
  EXPECT_EQ(field_of(b), "pagination.kind");
  b = s;
  b.pagination.kind = "cursor";
  EXPECT_EQ(field_of(b), "pagination.next_pointer");
  b.pagination.next_pointer = "/next";
  b.format = "csv";
  EXPECT_EQ(field_of(b), "pagination.kind");
  b = s;
  b.pagination.kind = "page";
  b.pagination.page_param = "p&x=1";
  EXPECT_EQ(field_of(b), "pagination.page_param");
  b = s;
  b.pagination.max_pages = 0;
  EXPECT_EQ(field_of(b), "pagination.max_pages");
  b = s;
  b.timeout_ms = 0;
  EXPECT_EQ(field_of(b), "timeout_ms");
  b = s;
  b.max_bytes = 0;
  EXPECT_EQ(field_of(b), "max_bytes");
}

TEST(HttpSourceCheck, RedactUrl) {
  EXPECT_EQ(RedactUrl("https://user:pw@api.example.com:8443/v1/x?key=s3cret#frag"),
            "https://api.example.com:8443/v1/x?…");
  EXPECT_EQ(RedactUrl("http://h/p"), "http://h/p");
  EXPECT_EQ(RedactUrl("::"), "<invalid url>");
}

}  // namespace
}  // namespace lathe
