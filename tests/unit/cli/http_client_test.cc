// HttpClient and RunClient against a tiny in-process HTTP server that records what it received.
#include "cli/http_client.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <thread>

#include "cli/client.h"
#include "common/json.h"

namespace lathe::cli {
namespace {

namespace fs = std::filesystem;

// Serves `responses` in order, one per connection or keep-alive request, recording each raw request.
class FakeServer {
 public:
  explicit FakeServer(std::vector<std::string> responses) : responses_(std::move(responses)) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    EXPECT_EQ(::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
    EXPECT_EQ(::listen(fd_, 8), 0);
    socklen_t len = sizeof(addr);
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    thread_ = std::thread([this] { Serve(); });
  }
  ~FakeServer() {
    ::shutdown(fd_, SHUT_RDWR);
    ::close(fd_);
    thread_.join();
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  const std::vector<std::string>& requests() const { return requests_; }

  static std::string Response(int status, const std::string& body, const std::string& type = "application/json") {
    return "HTTP/1.1 " + std::to_string(status) + " X\r\nContent-Type: " + type +
           "\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
  }

 private:
  void Serve() {
    size_t next = 0;
    while (next < responses_.size()) {
      int c = ::accept(fd_, nullptr, nullptr);
      if (c < 0) return;
      std::string buf;
      while (next < responses_.size()) {
        // Read one request: headers, then Content-Length bytes of body.
        size_t header_end;
        while ((header_end = buf.find("\r\n\r\n")) == std::string::npos) {
          char tmp[65536];
          ssize_t n = ::recv(c, tmp, sizeof(tmp), 0);
          if (n <= 0) break;
          buf.append(tmp, static_cast<size_t>(n));
        }
        if (header_end == std::string::npos) break;
        size_t content_length = 0;
        auto pos = buf.find("Content-Length: ");
        if (pos != std::string::npos && pos < header_end) content_length = std::stoul(buf.substr(pos + 16));
        while (buf.size() < header_end + 4 + content_length) {
          char tmp[65536];
          ssize_t n = ::recv(c, tmp, sizeof(tmp), 0);
          if (n <= 0) break;
          buf.append(tmp, static_cast<size_t>(n));
        }
        size_t total = std::min(buf.size(), header_end + 4 + content_length);
        requests_.push_back(buf.substr(0, total));
        buf.erase(0, total);
        const std::string& r = responses_[next++];
        ::send(c, r.data(), r.size(), MSG_NOSIGNAL);
      }
      ::close(c);
    }
  }

  std::vector<std::string> responses_;
  std::vector<std::string> requests_;
  int fd_ = -1;
  int port_ = 0;
  std::thread thread_;
};

TEST(HttpClientTest, SendCarriesBearerTokenAndJsonBodyAndReusesTheConnection) {
  FakeServer server({FakeServer::Response(200, R"({"ok":true})"), FakeServer::Response(201, "{}")});
  HttpClient client({server.url(), "tok-123"});
  auto r = client.Send("GET", "/api/v1/x?a=1");
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, R"({"ok":true})");
  EXPECT_EQ(r->content_type, "application/json");
  auto p = client.Send("POST", "/api/v1/y", R"({"k":"v"})");
  ASSERT_TRUE(p.ok()) << p.status().message();
  EXPECT_EQ(p->status, 201);
  ASSERT_EQ(server.requests().size(), 2u);
  EXPECT_EQ(server.requests()[0].rfind("GET /api/v1/x?a=1 HTTP/1.1\r\n", 0), 0u);
  EXPECT_NE(server.requests()[0].find("Authorization: Bearer tok-123\r\n"), std::string::npos);
  EXPECT_EQ(server.requests()[1].rfind("POST /api/v1/y HTTP/1.1\r\n", 0), 0u);
  EXPECT_NE(server.requests()[1].find("Content-Type: application/json\r\n"), std::string::npos);
  EXPECT_EQ(server.requests()[1].substr(server.requests()[1].size() - 9), R"({"k":"v"})");
  EXPECT_EQ(server.requests()[1].find("Expect:"), std::string::npos);
}

TEST(HttpClientTest, ErrorStatusesAreResultsNotErrors) {
  FakeServer server({FakeServer::Response(404, R"({"detail":"no"})", "application/problem+json")});
  HttpClient client({server.url(), ""});
  auto r = client.Send("DELETE", "/x");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 404);
  EXPECT_FALSE(r->ok());
  EXPECT_EQ(server.requests()[0].find("Authorization"), std::string::npos);
}

TEST(HttpClientTest, UploadStreamsTheWholeFileWithoutExpectContinue) {
  const fs::path file = fs::temp_directory_path() / ("lathe-upload-" + std::to_string(::getpid()) + ".csv");
  std::string content;
  for (int i = 0; i < 200000; ++i) content += std::to_string(i) + ",x\n";  // ~1.5 MB: several read chunks
  { std::ofstream(file, std::ios::binary) << content; }
  FakeServer server({FakeServer::Response(201, R"({"name":"d"})")});
  HttpClient client({server.url(), "t"});
  uint64_t last_sent = 0, last_total = 0;
  auto r = client.UploadFile("/up?name=d", file.string(), "text/csv", [&](uint64_t s, uint64_t t) {
    last_sent = s;
    last_total = t;
  });
  fs::remove(file);
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->status, 201);
  const std::string& req = server.requests().at(0);
  EXPECT_EQ(req.rfind("POST /up?name=d HTTP/1.1\r\n", 0), 0u);
  EXPECT_NE(req.find("Content-Length: " + std::to_string(content.size()) + "\r\n"), std::string::npos);
  EXPECT_NE(req.find("Content-Type: text/csv\r\n"), std::string::npos);
  EXPECT_EQ(req.find("Expect:"), std::string::npos);
  EXPECT_EQ(req.substr(req.find("\r\n\r\n") + 4), content);
  EXPECT_EQ(last_total, content.size());
  EXPECT_EQ(last_sent, content.size());
}

TEST(HttpClientTest, UploadOfAMissingFileOrADirectoryIsAClearError) {
  HttpClient client({"http://127.0.0.1:1", ""});
  auto missing = client.UploadFile("/x", "/nonexistent/file.csv", "text/csv", nullptr);
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find("/nonexistent/file.csv"), std::string::npos);
  auto dir = client.UploadFile("/x", "/tmp", "text/csv", nullptr);
  ASSERT_FALSE(dir.ok());
  EXPECT_NE(dir.status().message().find("not a regular file"), std::string::npos);
}

TEST(HttpClientTest, ConnectionRefusedNamesTheUrl) {
  // Bind then close a socket to find a port nobody listens on.
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  socklen_t len = sizeof(addr);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  const std::string url = "http://127.0.0.1:" + std::to_string(ntohs(addr.sin_port));
  HttpClient client({url, ""});
  auto r = client.Send("GET", "/healthz");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(r.status().message().find(url), std::string::npos) << r.status().message();
}

TEST(HttpClientTest, OversizedResponseIsAnError) {
  FakeServer server({FakeServer::Response(200, std::string(10000, 'x'))});
  HttpClientOptions o{server.url(), ""};
  o.max_response_bytes = 1000;
  HttpClient client(o);
  auto r = client.Send("GET", "/big");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("larger than the limit"), std::string::npos);
}

TEST(UrlTest, EncodeAndJoin) {
  EXPECT_EQ(UrlEncode("a b/c?d=e&f~_.-"), "a%20b%2Fc%3Fd%3De%26f~_.-");
  EXPECT_EQ(UrlEncode("é"), "%C3%A9");
  EXPECT_EQ(UrlEncode(std::string("\0", 1)), "%00");
  EXPECT_EQ(JoinUrl("http://h:1/", "/api"), "http://h:1/api");
  EXPECT_EQ(JoinUrl("http://h:1", "api"), "http://h:1/api");
}

// RunClient: exit codes of whole commands, with stdout/stderr discarded.
class RunClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (fs::temp_directory_path() / "lathe-run-XXXXXX").string();
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    home_ = tmpl;
    ::setenv("HOME", home_.c_str(), 1);
    ::unsetenv("XDG_CONFIG_HOME");
    ::unsetenv("LATHE_URL");
    ::unsetenv("LATHE_TOKEN");
    ::unsetenv("LATHE_PASSWORD");
  }
  void TearDown() override { fs::remove_all(home_); }

  // Runs with stdout and stderr redirected to files; returns the exit code.
  int Run(const std::vector<std::string>& args) {
    std::fflush(stdout);
    std::fflush(stderr);
    int saved_out = ::dup(1), saved_err = ::dup(2);
    std::FILE* out = std::fopen((home_ + "/out").c_str(), "w");
    std::FILE* err = std::fopen((home_ + "/err").c_str(), "w");
    ::dup2(::fileno(out), 1);
    ::dup2(::fileno(err), 2);
    int rc = RunClient(args);
    std::fflush(stdout);
    std::fflush(stderr);
    ::dup2(saved_out, 1);
    ::dup2(saved_err, 2);
    ::close(saved_out);
    ::close(saved_err);
    std::fclose(out);
    std::fclose(err);
    out_ = Slurp(home_ + "/out");
    err_ = Slurp(home_ + "/err");
    return rc;
  }
  static std::string Slurp(const std::string& p) {
    std::ifstream in(p);
    return {std::istreambuf_iterator<char>(in), {}};
  }

  std::string home_, out_, err_;
};

TEST_F(RunClientTest, UsageErrorsExitTwoAndHelpExitsZero) {
  EXPECT_EQ(Run({}), 2);
  EXPECT_EQ(Run({"bogus"}), 2);
  EXPECT_NE(err_.find("unknown command 'bogus'"), std::string::npos);
  EXPECT_NE(err_.find("usage: lathe"), std::string::npos);
  EXPECT_EQ(Run({"datasets"}), 2);
  EXPECT_EQ(Run({"datasets", "frobnicate"}), 2);
  EXPECT_EQ(Run({"datasets", "import"}), 2);
  EXPECT_NE(err_.find("missing FILE"), std::string::npos);
  EXPECT_EQ(Run({"datasets", "list", "extra"}), 2);
  EXPECT_EQ(Run({"datasets", "list", "--bogus"}), 2);
  EXPECT_EQ(Run({"datasets", "rows", "x", "--limit", "abc"}), 2);
  EXPECT_EQ(Run({"train", "--dataset", "d"}), 2);
  EXPECT_NE(err_.find("--target is required"), std::string::npos);
  EXPECT_EQ(Run({"train", "--dataset", "d", "--target", "y", "--task", "binary", "--param", "oops"}), 2);
  EXPECT_EQ(Run({"deploy", "x"}), 2);
  EXPECT_EQ(Run({"predict", "d", "--data", "[1,2]"}), 2);
  EXPECT_NE(err_.find("not a JSON object"), std::string::npos);
  EXPECT_EQ(Run({"datasets", "list", "--url", "ftp://x"}), 2);

  EXPECT_EQ(Run({"--help"}), 0);
  EXPECT_NE(out_.find("lathe datasets import FILE"), std::string::npos);
  EXPECT_EQ(Run({"train", "--help"}), 0);
  EXPECT_NE(out_.find("--test-fraction F"), std::string::npos);
  EXPECT_EQ(Run({"datasets", "-h"}), 0);
  EXPECT_NE(out_.find("lathe datasets rows NAME"), std::string::npos);
}

TEST_F(RunClientTest, ApiErrorPrintsDetailErrorsAndRequestIdAndExitsOne) {
  FakeServer server({FakeServer::Response(
      404,
      R"({"type":"t","title":"Not Found","status":404,"detail":"dataset 'nope' not found","request_id":"req-42",)"
      R"("errors":[{"field":"name","message":"unknown"},{"line":3,"message":"bad row"},)"
      R"({"field":"dataset","message":"dataset 'nope' not found"}]})",
      "application/problem+json")});
  EXPECT_EQ(Run({"datasets", "show", "nope", "--url", server.url(), "--token", "t"}), 1);
  EXPECT_NE(err_.find("error: dataset 'nope' not found"), std::string::npos) << err_;
  EXPECT_NE(err_.find("name: unknown"), std::string::npos) << err_;
  EXPECT_NE(err_.find("line 3: bad row"), std::string::npos) << err_;
  EXPECT_NE(err_.find("req-42"), std::string::npos) << err_;
  // An entry that repeats the detail is not printed twice.
  EXPECT_EQ(err_.find("dataset: dataset 'nope'"), std::string::npos) << err_;
  EXPECT_EQ(server.requests().at(0).rfind("GET /api/v1/projects/default/datasets/nope HTTP/1.1", 0), 0u);
}

TEST_F(RunClientTest, LoginSavesTokenAndLaterCommandsSendIt) {
  FakeServer server({FakeServer::Response(200, R"({"token":"tok-xyz","expires_at":"2030-01-01T00:00:00Z"})"),
                     FakeServer::Response(200, R"({"datasets":[{"name":"iris","latest_version":2,"versions":2}]})")});
  ::setenv("LATHE_URL", server.url().c_str(), 1);
  ::setenv("LATHE_PASSWORD", "pw\"1", 1);
  EXPECT_EQ(Run({"login", "--username", "alice"}), 0) << err_;
  EXPECT_NE(out_.find("Logged in as alice"), std::string::npos);
  EXPECT_NE(server.requests().at(0).find(R"({"password":"pw\"1","username":"alice"})"), std::string::npos);
  EXPECT_EQ(Run({"datasets", "list", "--project", "p 1"}), 0) << err_;
  EXPECT_NE(out_.find("iris"), std::string::npos);
  EXPECT_EQ(server.requests().at(1).rfind("GET /api/v1/projects/p%201/datasets HTTP/1.1", 0), 0u);
  EXPECT_NE(server.requests().at(1).find("Authorization: Bearer tok-xyz"), std::string::npos);
}

TEST_F(RunClientTest, TrainWaitsForTheJobAndFailsWhenItFails) {
  FakeServer server({FakeServer::Response(202, R"({"run":"r1","job":"j1"})"),
                     FakeServer::Response(200, R"({"id":"j1","state":"running","progress":0.5})"),
                     FakeServer::Response(200, R"({"id":"j1","state":"failed","progress":0.5,"error":"target has one class"})")});
  EXPECT_EQ(Run({"train", "--url", server.url(), "--dataset", "d", "--target", "y", "--task", "binary", "--param",
                 "max_depth=3", "--param", "eta=0.1", "--param", "tree_method=hist", "--version", "2"}),
            1);
  EXPECT_NE(err_.find("target has one class"), std::string::npos) << err_;
  const std::string& post = server.requests().at(0);
  auto body = Json::parse(post.substr(post.find("\r\n\r\n") + 4));
  EXPECT_EQ(body["params"], Json::parse(R"({"max_depth":3,"eta":0.1,"tree_method":"hist"})"));
  EXPECT_EQ(body["version"], 2);
  EXPECT_EQ(body["learner"], "xgboost");
  EXPECT_EQ(body["split"], Json::parse(R"({"test_fraction":0.2,"seed":42})"));
  EXPECT_EQ(server.requests().at(2).rfind("GET /api/v1/jobs/j1 ", 0), 0u);
}

TEST_F(RunClientTest, DeployFallsBackToPatchOnConflict) {
  FakeServer server({FakeServer::Response(409, R"({"detail":"exists","status":409})", "application/problem+json"),
                     FakeServer::Response(200, R"({"name":"api","model":"m","version":3,"state":"ready"})")});
  EXPECT_EQ(Run({"deploy", "api", "--model", "m", "--version", "3", "--url", server.url()}), 0) << err_;
  EXPECT_NE(out_.find("switched"), std::string::npos) << out_;
  EXPECT_EQ(server.requests().at(1).rfind("PATCH /api/v1/projects/default/deployments/api ", 0), 0u);
}

TEST_F(RunClientTest, NetworkErrorNamesTheUrlAndExitsOne) {
  EXPECT_EQ(Run({"datasets", "list", "--url", "http://127.0.0.1:1"}), 1);
  EXPECT_NE(err_.find("http://127.0.0.1:1"), std::string::npos) << err_;
}

}  // namespace
}  // namespace lathe::cli
