// TLS material and server setup: the self-signed certificate loads into a TLS server, files are written with
// the right modes and kept across starts, and bad or mismatched files fail HttpServer::Create by name.
#include "server/tls.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>

#include "server/http_server.h"

namespace lathe {
namespace {

namespace fs = std::filesystem;

class NullService : public HttpService {
 public:
  BodyPolicy OnHeaders(const HttpRequest&) override { return BodyPolicy{}; }
  void Handle(HttpRequest&, HttpResponse& res) override { res.status = 204; }
  void OnRejected(const HttpRequest&, int status, const std::string&, HttpResponse& res) override {
    res.status = status;
  }
};

class TlsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("lathe-tls-" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  fs::path dir_;
};

TEST_F(TlsTest, SelfSignedFilesLoadAndAreKept) {
  auto files = EnsureSelfSignedFiles((dir_ / "tls").string(), {"localhost", "127.0.0.1", "::1"});
  ASSERT_TRUE(files.ok()) << files.status().ToString();
  struct stat st;
  ASSERT_EQ(::stat(files->key_file.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  std::ifstream cert(files->cert_file);
  std::string pem((std::istreambuf_iterator<char>(cert)), std::istreambuf_iterator<char>());
  EXPECT_EQ(pem.rfind("-----BEGIN CERTIFICATE-----", 0), 0u);
  // A second start keeps the same certificate (clients may have pinned it).
  auto again = EnsureSelfSignedFiles((dir_ / "tls").string(), {"localhost"});
  ASSERT_TRUE(again.ok());
  std::ifstream cert2(again->cert_file);
  std::string pem2((std::istreambuf_iterator<char>(cert2)), std::istreambuf_iterator<char>());
  EXPECT_EQ(pem, pem2);

  NullService svc;
  ServerOptions opt;
  opt.port = 0;
  opt.tls_cert_file = files->cert_file;
  opt.tls_key_file = files->key_file;
  auto server = HttpServer::Create(opt, &svc);
  EXPECT_TRUE(server.ok()) << server.status().ToString();
}

TEST_F(TlsTest, BadOrMismatchedFilesAreNamed) {
  auto a = EnsureSelfSignedFiles((dir_ / "a").string(), {"localhost"});
  auto b = EnsureSelfSignedFiles((dir_ / "b").string(), {"localhost"});
  ASSERT_TRUE(a.ok() && b.ok());
  NullService svc;
  auto create = [&](const std::string& cert, const std::string& key) {
    ServerOptions opt;
    opt.port = 0;
    opt.tls_cert_file = cert;
    opt.tls_key_file = key;
    return HttpServer::Create(opt, &svc).status();
  };
  Status mismatch = create(a->cert_file, b->key_file);
  EXPECT_EQ(mismatch.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(mismatch.message().find("match"), std::string::npos) << mismatch.ToString();
  Status missing = create((dir_ / "nope.crt").string(), a->key_file);
  EXPECT_EQ(missing.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(missing.message().find("nope.crt"), std::string::npos) << missing.ToString();
  std::ofstream((dir_ / "garbage.key").string()) << "not a key";
  Status garbage = create(a->cert_file, (dir_ / "garbage.key").string());
  EXPECT_EQ(garbage.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(garbage.message().find("garbage.key"), std::string::npos) << garbage.ToString();
  EXPECT_EQ(create(a->cert_file, "").code(), StatusCode::kInvalidArgument);
}

TEST(SelfSigned, NeedsAName) {
  EXPECT_EQ(MakeSelfSignedCertificate({}, 30).status().code(), StatusCode::kInvalidArgument);
  auto s = MakeSelfSignedCertificate({"example.test", "10.0.0.1"}, 30);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_NE(s->key_pem.find("PRIVATE KEY"), std::string::npos);
}

}  // namespace
}  // namespace lathe
