// Authentication and authorization.
//
// Users log in with a password (argon2id) and get a bearer token: 32 random bytes, returned once, stored
// only as its SHA-256, with an expiry, revocable. Authenticate() resolves a bearer token to a Caller; valid
// tokens are cached in memory for `cache_ttl_ms` so the predict path does not hit the store per request
// (logout evicts the cache entry at once on this node; other nodes see it within the TTL).
//
// Authorization: every route declares a Permission; Authorize() checks it for a caller in a project. Today
// every active user may do everything in every project and admins additionally hold kAdmin; per-project
// roles (owner/maintainer/developer/viewer/predictor) plug in here without touching routes. Thread-safe.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

#include "common/status.h"
#include "store/store.h"

namespace lathe {

enum class Permission {
  kPublic,         // no credentials needed (health, login)
  kAuthenticated,  // any logged-in caller (whoami, logout, own jobs)
  kProjectRead,    // read datasets, runs, models, deployments of a project
  kProjectWrite,   // import data, train, register models
  kDeploy,         // create or change deployments
  kPredict,        // call a deployment
  kAdmin,          // server-wide administration
};
const char* PermissionName(Permission p);

struct Caller {
  std::string user_id;
  std::string username;
  bool is_admin = false;
  std::string token_hash;
  int64_t expires_at = 0;
};

struct AuthOptions {
  int64_t token_ttl_s = 7 * 24 * 3600;
  int64_t cache_ttl_ms = 30000;
  size_t min_password_length = 8;
};

struct LoginResult {
  std::string token;
  int64_t expires_at = 0;  // micros
  Caller caller;
};

class AuthService {
 public:
  AuthService(Store* store, AuthOptions options) : store_(store), options_(options) {}

  // On first start (no users): creates `admin` with `admin_password`, or with a random password that is
  // written once to the log. Does nothing when users exist.
  Status Bootstrap(const std::string& admin_password);

  Result<LoginResult> Login(const std::string& username, const std::string& password);
  // `header` is the Authorization header value ("Bearer <token>").
  Result<Caller> Authenticate(std::string_view header);
  Status Logout(const Caller& caller);
  Status Authorize(const Caller& caller, Permission permission, const std::string& project) const;

 private:
  Store* store_;
  AuthOptions options_;
  struct CacheEntry {
    Caller caller;
    int64_t cached_until_us;
  };
  std::mutex mu_;
  std::unordered_map<std::string, CacheEntry> cache_;  // token hash -> caller; guarded by mu_
};

}  // namespace lathe
