// Authentication and authorization.
//
// Users log in with a password (argon2id) and get a bearer token: 32 random bytes, returned once, stored
// only as its SHA-256, with an expiry, revocable. Authenticate() resolves a bearer token to a Caller; valid
// tokens are cached in memory for `cache_ttl_ms` so the predict path does not hit the store per request
// (logout evicts the cache entry at once on this node; other nodes see it within the TTL). When an entry goes
// stale, one request revalidates it against the store while concurrent requests keep using it, so a slow
// store stalls one request per token per TTL, not all of them.
//
// Authorization: every route declares a Permission; Authorize() checks it for a caller in a project against
// the caller's role there (RoleAllows). Server-wide admins may do everything. A caller who is not a member
// of a project gets kNotFound for it (another team's project is invisible, not forbidden); a member whose
// role lacks the permission gets kPermissionDenied naming the role. A caller's memberships are loaded with
// the token and cached with it; InvalidateCaches() drops every cached caller (membership or user changes),
// so on this node a change takes effect at once and on other nodes within cache_ttl_ms. Thread-safe.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string_view>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

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
  kManageMembers,  // add, change or remove a project's members
  kAdmin,          // server-wide administration
};
const char* PermissionName(Permission p);

// Roles in a project, from most to least powerful:
//   owner       everything in the project, including its members
//   maintainer  everything except membership: data, training, registry, deployments, predictions
//   developer   data, training, registry and predictions; no deployments
//   viewer      read only
//   predictor   call deployments only
enum class Role { kOwner, kMaintainer, kDeveloper, kViewer, kPredictor };
const char* RoleName(Role r);
// nullopt for an unknown name.
std::optional<Role> ParseRole(std::string_view name);
// What each role may do. Permissions that are not project permissions (kPublic, kAuthenticated, kAdmin) are
// never granted by a role.
bool RoleAllows(Role role, Permission permission);

struct Caller {
  std::string user_id;
  std::string username;
  bool is_admin = false;
  std::string token_hash;
  int64_t expires_at = 0;
  // project -> role, shared by the cached copies of this caller.
  std::shared_ptr<const std::map<std::string, Role, std::less<>>> roles;
  // An API key's caller acts for the user who created it (user_id, username, roles), limited to the key's
  // project, its permissions and, if set, one deployment.
  std::string key_id;
  std::string key_project;
  uint32_t key_permissions = 0;  // bit (1 << Permission)
  std::string key_deployment;
  bool key_creator_admin = false;
  bool IsApiKey() const { return !key_id.empty(); }
};

// The permissions an API key can carry, by the names the API uses: "read" (kProjectRead), "write"
// (kProjectWrite), "deploy" (kDeploy), "predict" (kPredict). nullopt for anything else.
std::optional<Permission> ParseKeyPermission(std::string_view name);
const char* KeyPermissionName(Permission p);

struct NewApiKey {
  ApiKeyRecord record;
  std::string key;  // "lk_<id>_<secret>": returned once, never stored
};

struct AuthOptions {
  int64_t token_ttl_s = 7 * 24 * 3600;
  int64_t cache_ttl_ms = 30000;
  size_t min_password_length = 8;
  // Login lockout: after this many consecutive failures for one username (existing or not), logins for it
  // are refused — even with the right password — for lockout_s, doubling with each further lockout up to
  // max_lockout_s. A success clears the count. Per node, in memory.
  int max_failed_logins = 5;
  int64_t lockout_s = 60;
  int64_t max_lockout_s = 900;
};

inline constexpr const char* kSsoHashPrefix = "sso:";

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

  // Errors: kUnauthenticated "invalid username or password" (the same for every cause); kResourceExhausted
  // while the username is locked out, with *retry_after_s (if given) set to the seconds left.
  Result<LoginResult> Login(const std::string& username, const std::string& password,
                            int64_t* retry_after_s = nullptr);
  // A new bearer token for `user` (the tail of Login; single sign-on calls it after the provider's check).
  // kUnauthenticated for a disabled user.
  Result<LoginResult> IssueSession(const UserRecord& user);
  // The lathe user of a single sign-on identity (`identity` = "<issuer>|<sub>"): created on first login with no
  // password (its stored hash is the marker kSsoHashPrefix + identity, which no password matches). A local user
  // of the same name that is not linked to this identity is kAlreadyExists (never taken over). `is_admin`,
  // when given, is applied.
  Result<UserRecord> UpsertSsoUser(const std::string& username, const std::string& identity,
                                   std::optional<bool> is_admin);
  // `header` is the Authorization header value ("Bearer <token>").
  Result<Caller> Authenticate(std::string_view header);
  Status Logout(const Caller& caller);
  Status Authorize(const Caller& caller, Permission permission, const std::string& project) const;

  // Users (admin operations; the api layer checks kAdmin). The password policy: at least
  // min_password_length characters, at most 1024, not the username, not one of the most common passwords, not
  // one character repeated. Usernames: 1-64 of [A-Za-z0-9._@-].
  Result<UserRecord> CreateUser(const std::string& username, const std::string& password, bool is_admin);
  // Any of the optional fields; disabling a user or changing the password revokes nothing stored but makes
  // every cached token of theirs re-check the store at once (disabled users are refused).
  Result<UserRecord> UpdateUser(const std::string& username, const std::optional<std::string>& password,
                                std::optional<bool> disabled, std::optional<bool> is_admin);
  Status CheckPassword(const std::string& username, const std::string& password) const;
  // Drops every cached caller (after membership or user changes).
  void InvalidateCaches();

  // API keys of a project. The creator (not itself an API key) must hold every permission it grants in the
  // project (admins hold all); name: 1-64 printable characters; expires_at 0 = never. Errors are
  // kInvalidArgument / kPermissionDenied naming the field. A key works only while its creator could still do
  // what it does (a disabled creator, or one whose role no longer allows it, disables the key).
  Result<NewApiKey> CreateApiKey(const Caller& creator, const std::string& project, const std::string& name,
                                 const std::vector<Permission>& permissions, const std::string& deployment,
                                 int64_t expires_at);
  // Revoked at once on this node (cache evicted), on other nodes within cache_ttl_ms. kNotFound if no active
  // key `id` in `project`.
  Status RevokeApiKey(const std::string& project, const std::string& id);

 private:
  Result<std::shared_ptr<const std::map<std::string, Role, std::less<>>>> LoadRoles(const std::string& user_id);

  Store* store_;
  AuthOptions options_;
  struct LoginFailures {
    int count = 0;             // consecutive failures since the last success or lockout
    int lockouts = 0;          // lockouts so far (each doubles the next)
    int64_t locked_until = 0;  // µs
  };
  std::unordered_map<std::string, LoginFailures> failures_;  // username -> failures; guarded by mu_

  struct CacheEntry {
    Caller caller;
    int64_t cached_until_us;
    bool refreshing = false;  // a request is revalidating it; others use it meanwhile
    int64_t touched_us = 0;   // API keys: when last_used_at was last written (at most once a minute)
  };
  static constexpr int64_t kKeyTouchIntervalUs = 60'000'000;  // last_used_at is written at most once a minute
  Result<Caller> LoadApiKeyCaller(const std::string& hash, int64_t now);
  void TouchKey(const Caller& caller, int64_t now);
  std::mutex mu_;
  std::unordered_map<std::string, CacheEntry> cache_;  // token hash -> caller; guarded by mu_
};

}  // namespace lathe
