#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <thread>

#include "auth/auth.h"
#include "common/crypto.h"

namespace lathe {
namespace {
namespace fs = std::filesystem;

class AuthTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("lathe-auth-" + RandomHex(6));
    fs::create_directories(dir_);
    store_ = std::move(OpenSqliteStore((dir_ / "meta.db").string())).value();
  }
  void TearDown() override { fs::remove_all(dir_); }
  fs::path dir_;
  std::unique_ptr<Store> store_;
};

TEST_F(AuthTest, BootstrapLoginAuthenticateLogout) {
  AuthService auth(store_.get(), AuthOptions{});
  ASSERT_TRUE(auth.Bootstrap("s3cret-password").ok());
  ASSERT_TRUE(auth.Bootstrap("other-password").ok());  // no-op once users exist
  EXPECT_EQ(*store_->CountUsers(), 1);

  EXPECT_EQ(auth.Login("admin", "wrong").status().code(), StatusCode::kUnauthenticated);
  EXPECT_EQ(auth.Login("nobody", "s3cret-password").status().code(), StatusCode::kUnauthenticated);
  auto login = auth.Login("admin", "s3cret-password");
  ASSERT_TRUE(login.ok());
  // Only the hash is stored.
  EXPECT_EQ(store_->GetToken(login->token).status().code(), StatusCode::kNotFound);
  EXPECT_TRUE(store_->GetToken(Sha256Hex(login->token)).ok());

  auto caller = auth.Authenticate("Bearer " + login->token);
  ASSERT_TRUE(caller.ok());
  EXPECT_EQ(caller->username, "admin");
  EXPECT_TRUE(caller->is_admin);
  EXPECT_TRUE(auth.Authorize(*caller, Permission::kAdmin, "").ok());

  EXPECT_EQ(auth.Authenticate(login->token).status().code(), StatusCode::kUnauthenticated);  // no scheme
  EXPECT_EQ(auth.Authenticate("Bearer nope").status().code(), StatusCode::kUnauthenticated);
  EXPECT_EQ(auth.Authenticate("Bearer " + std::string(10000, 'a')).status().code(), StatusCode::kUnauthenticated);

  ASSERT_TRUE(auth.Logout(*caller).ok());
  EXPECT_EQ(auth.Authenticate("Bearer " + login->token).status().code(), StatusCode::kUnauthenticated);
}

TEST_F(AuthTest, ExpiredTokenIsRejectedEvenWhenCached) {
  AuthService auth(store_.get(), AuthOptions{.token_ttl_s = 1, .cache_ttl_ms = 60000});
  ASSERT_TRUE(auth.Bootstrap("s3cret-password").ok());
  auto login = auth.Login("admin", "s3cret-password");
  ASSERT_TRUE(login.ok());
  ASSERT_TRUE(auth.Authenticate("Bearer " + login->token).ok());
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));
  EXPECT_EQ(auth.Authenticate("Bearer " + login->token).status().code(), StatusCode::kUnauthenticated);
}

TEST_F(AuthTest, NonAdminCannotUseAdminRoutes) {
  AuthService auth(store_.get(), AuthOptions{});
  Caller user{.user_id = "usr_x", .username = "bob", .is_admin = false};
  EXPECT_EQ(auth.Authorize(user, Permission::kAdmin, "").code(), StatusCode::kPermissionDenied);
  EXPECT_TRUE(auth.Authorize(user, Permission::kProjectWrite, "default").ok());
}

TEST_F(AuthTest, ShortAdminPasswordIsRefused) {
  AuthService auth(store_.get(), AuthOptions{});
  EXPECT_EQ(auth.Bootstrap("short").code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(*store_->CountUsers(), 0);
}

}  // namespace
}  // namespace lathe
