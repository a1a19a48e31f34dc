#include "cli/client_config.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <vector>

namespace lathe::cli {
namespace {

namespace fs = std::filesystem;

class TempHome : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (fs::temp_directory_path() / "lathe-cli-test-XXXXXX").string();
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    home_ = tmpl;
  }
  void TearDown() override { fs::remove_all(home_); }

  EnvLookup Env(std::map<std::string, std::string> vars) {
    return [vars](const std::string& k) -> std::optional<std::string> {
      auto it = vars.find(k);
      if (it == vars.end()) return std::nullopt;
      return it->second;
    };
  }

  static mode_t Mode(const std::string& p) {
    struct stat st {};
    EXPECT_EQ(::stat(p.c_str(), &st), 0) << p;
    return st.st_mode & 0777;
  }

  std::string home_;
};

TEST_F(TempHome, PathPrefersXdgThenHome) {
  EXPECT_EQ(CredentialsPath(Env({{"HOME", home_}})), home_ + "/.config/lathe/credentials");
  EXPECT_EQ(CredentialsPath(Env({{"HOME", home_}, {"XDG_CONFIG_HOME", "/x/cfg"}})), "/x/cfg/lathe/credentials");
  // A relative XDG_CONFIG_HOME is invalid per the XDG spec and ignored.
  EXPECT_EQ(CredentialsPath(Env({{"HOME", home_}, {"XDG_CONFIG_HOME", "rel"}})), home_ + "/.config/lathe/credentials");
  EXPECT_EQ(CredentialsPath(Env({})), "");
}

TEST_F(TempHome, SaveWritesMode0600InA0700DirectoryAndRoundTrips) {
  const mode_t old_umask = ::umask(0);  // even a permissive umask must not widen the file
  const std::string path = CredentialsPath(Env({{"HOME", home_}}));
  ASSERT_TRUE(SaveCredentials(path, {"http://h:1", "tok-1"}).ok());
  ::umask(old_umask);
  EXPECT_EQ(Mode(path), 0600u);
  EXPECT_EQ(Mode(home_ + "/.config/lathe"), 0700u);
  auto loaded = LoadCredentials(path);
  ASSERT_TRUE(loaded.ok());
  ASSERT_TRUE(loaded->has_value());
  EXPECT_EQ((*loaded)->url, "http://h:1");
  EXPECT_EQ((*loaded)->token, "tok-1");
  // No temp file is left behind.
  size_t files = 0;
  for (const auto& e : fs::directory_iterator(home_ + "/.config/lathe")) files += e.is_regular_file();
  EXPECT_EQ(files, 1u);
}

TEST_F(TempHome, SaveTightensAnExistingWorldReadableFile) {
  const std::string path = home_ + "/creds";
  { std::ofstream(path) << "{}"; }
  ASSERT_EQ(::chmod(path.c_str(), 0644), 0);
  ASSERT_TRUE(SaveCredentials(path, {"http://h", "t2"}).ok());
  EXPECT_EQ(Mode(path), 0600u);
  EXPECT_EQ((*LoadCredentials(path))->token, "t2");
}

TEST_F(TempHome, LoadMissingIsEmptyMalformedIsAnError) {
  auto missing = LoadCredentials(home_ + "/nope");
  ASSERT_TRUE(missing.ok());
  EXPECT_FALSE(missing->has_value());
  EXPECT_FALSE(LoadCredentials("")->has_value());
  const std::vector<std::string> bodies = {"", "{", "[1]", "\"x\"", std::string(100, '[') + std::string(100, ']'), "\xff"};
  for (const std::string& body : bodies) {
    std::ofstream(home_ + "/bad", std::ios::trunc) << body;
    auto r = LoadCredentials(home_ + "/bad");
    EXPECT_FALSE(r.ok()) << body;
    if (!r.ok()) {
      EXPECT_NE(r.status().message().find(home_ + "/bad"), std::string::npos);
    }
  }
  // Wrong member types read as empty rather than failing.
  std::ofstream(home_ + "/odd", std::ios::trunc) << R"({"url": 5, "token": null})";
  auto odd = LoadCredentials(home_ + "/odd");
  ASSERT_TRUE(odd.ok());
  EXPECT_EQ((*odd)->url, "");
}

TEST_F(TempHome, SaveFailsCleanlyWhenTheDirectoryIsAFile) {
  { std::ofstream(home_ + "/file") << "x"; }
  Status s = SaveCredentials(home_ + "/file/lathe/credentials", {"u", "t"});
  EXPECT_FALSE(s.ok());
  EXPECT_FALSE(SaveCredentials("", {"u", "t"}).ok());
}

TEST_F(TempHome, RemoveIsIdempotent) {
  const std::string path = home_ + "/c";
  ASSERT_TRUE(SaveCredentials(path, {"u", "t"}).ok());
  EXPECT_TRUE(RemoveCredentials(path).ok());
  EXPECT_FALSE(fs::exists(path));
  EXPECT_TRUE(RemoveCredentials(path).ok());
}

TEST(ResolveConnectionTest, Precedence) {
  auto env = [](std::map<std::string, std::string> vars) -> EnvLookup {
    return [vars](const std::string& k) -> std::optional<std::string> {
      auto it = vars.find(k);
      if (it == vars.end()) return std::nullopt;
      return it->second;
    };
  };
  Credentials saved{"http://saved:1/", "saved-token"};
  auto c = ResolveConnection(std::nullopt, std::nullopt, env({}), std::nullopt);
  EXPECT_EQ(c.url, kDefaultServerUrl);
  EXPECT_EQ(c.token, "");

  c = ResolveConnection(std::nullopt, std::nullopt, env({}), saved);
  EXPECT_EQ(c.url, "http://saved:1");
  EXPECT_EQ(c.token, "saved-token");
  EXPECT_EQ(c.url_source, "saved login");

  c = ResolveConnection(std::nullopt, std::nullopt, env({{"LATHE_URL", "http://saved:1"}}), saved);
  EXPECT_EQ(c.token, "saved-token");  // same server as the saved login

  c = ResolveConnection(std::nullopt, std::nullopt, env({{"LATHE_URL", "http://other:2"}}), saved);
  EXPECT_EQ(c.url, "http://other:2");
  EXPECT_EQ(c.token, "");  // never send the saved token to another server

  c = ResolveConnection(std::nullopt, std::nullopt, env({{"LATHE_URL", "http://e"}, {"LATHE_TOKEN", "et"}}), saved);
  EXPECT_EQ(c.token, "et");

  c = ResolveConnection(std::string("http://f/"), std::string("ft"),
                        env({{"LATHE_URL", "http://e"}, {"LATHE_TOKEN", "et"}}), saved);
  EXPECT_EQ(c.url, "http://f");
  EXPECT_EQ(c.token, "ft");
  EXPECT_EQ(c.url_source, "--url");

  // Empty environment values count as unset.
  c = ResolveConnection(std::nullopt, std::nullopt, env({{"LATHE_URL", ""}, {"LATHE_TOKEN", ""}}), saved);
  EXPECT_EQ(c.url, "http://saved:1");
  EXPECT_EQ(c.token, "saved-token");
}

}  // namespace
}  // namespace lathe::cli
