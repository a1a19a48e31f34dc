#include "auth/auth.h"

#include <algorithm>
#include <cctype>
#include <limits>
#include <set>

#include "common/clock.h"
#include "common/crypto.h"
#include "common/ids.h"
#include "common/log.h"
#include "common/text.h"

namespace lathe {

const char* PermissionName(Permission p) {
  switch (p) {
    case Permission::kPublic: return "public";
    case Permission::kAuthenticated: return "authenticated";
    case Permission::kProjectRead: return "project:read";
    case Permission::kProjectWrite: return "project:write";
    case Permission::kDeploy: return "project:deploy";
    case Permission::kPredict: return "project:predict";
    case Permission::kManageMembers: return "project:members";
    case Permission::kAdmin: return "admin";
  }
  return "admin";
}

const char* RoleName(Role r) {
  switch (r) {
    case Role::kOwner: return "owner";
    case Role::kMaintainer: return "maintainer";
    case Role::kDeveloper: return "developer";
    case Role::kViewer: return "viewer";
    case Role::kPredictor: return "predictor";
  }
  return "viewer";
}

std::optional<Role> ParseRole(std::string_view name) {
  for (Role r : {Role::kOwner, Role::kMaintainer, Role::kDeveloper, Role::kViewer, Role::kPredictor}) {
    if (name == RoleName(r)) return r;
  }
  return std::nullopt;
}

bool RoleAllows(Role role, Permission permission) {
  switch (permission) {
    case Permission::kProjectRead: return role != Role::kPredictor;
    case Permission::kProjectWrite: return role == Role::kOwner || role == Role::kMaintainer || role == Role::kDeveloper;
    case Permission::kDeploy: return role == Role::kOwner || role == Role::kMaintainer;
    case Permission::kPredict: return role != Role::kViewer;
    case Permission::kManageMembers: return role == Role::kOwner;
    case Permission::kPublic:
    case Permission::kAuthenticated:
    case Permission::kAdmin: return false;
  }
  return false;
}

namespace {

// 1-64 of A-Z a-z 0-9 . _ @ -, starting with a letter or digit: names appear in URL paths and command lines,
// where ".", "..", a hidden-file name or a leading '-' (read as an option) would mean something else.
bool ValidUsername(std::string_view u) {
  if (u.empty() || u.size() > 64) return false;
  const char c0 = u[0];
  if (!((c0 >= 'a' && c0 <= 'z') || (c0 >= 'A' && c0 <= 'Z') || (c0 >= '0' && c0 <= '9'))) return false;
  for (char c : u) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
                    c == '_' || c == '@' || c == '-';
    if (!ok) return false;
  }
  return true;
}

// The caller's role in `project`, if a member.
std::optional<Role> RoleIn(const Caller& caller, const std::string& project) {
  if (!caller.roles) return std::nullopt;
  auto it = caller.roles->find(project);
  if (it == caller.roles->end()) return std::nullopt;
  return it->second;
}

Status PasswordError(const std::string& message) {
  return Status::InvalidArgument("password " + message).WithDetail(ErrorDetail::Field("password", message));
}

}  // namespace

Status AuthService::Bootstrap(const std::string& admin_password) {
  ASSIGN_OR_RETURN(int64_t users, store_->CountUsers());
  if (users > 0) return Status::Ok();
  std::string password = admin_password;
  bool generated = password.empty();
  if (generated) password = RandomToken(20);
  if (password.size() < options_.min_password_length) {
    return Status::InvalidArgument("LATHE_ADMIN_PASSWORD must be at least " +
                                   std::to_string(options_.min_password_length) + " characters");
  }
  ASSIGN_OR_RETURN(std::string hash, HashPassword(password));
  UserRecord admin{.id = NewId("usr"), .username = "admin", .password_hash = hash, .is_admin = true,
                   .disabled = false, .created_at = NowMicros()};
  RETURN_IF_ERROR(store_->CreateUser(admin));
  if (generated) {
    LogWarn("created user 'admin' with a generated password; it is shown only this once",
            {{"username", "admin"}, {"password", password}});
  } else {
    LogInfo("created user 'admin' with the password from LATHE_ADMIN_PASSWORD");
  }
  return Status::Ok();
}

Result<LoginResult> AuthService::Login(const std::string& username, const std::string& password,
                                       int64_t* retry_after_s) {
  // A dummy hash keeps the timing of "no such user" close to "wrong password".
  static const std::string kDummy = HashPassword("lathe-dummy-password").value();
  const int64_t now = NowMicros();
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = failures_.find(username);
    if (it != failures_.end() && it->second.locked_until > now) {
      const int64_t left = (it->second.locked_until - now + 999999) / 1000000;
      if (retry_after_s != nullptr) *retry_after_s = left;
      return Status::ResourceExhausted("too many failed logins for this username; try again in " +
                                       std::to_string(left) + " s");
    }
  }
  auto failed = [&]() -> Status {
    std::lock_guard<std::mutex> lock(mu_);
    if (failures_.size() > 100000) failures_.clear();  // bound memory under a flood of names
    LoginFailures& f = failures_[username];
    if (++f.count >= options_.max_failed_logins) {
      const int64_t seconds =
          std::min(options_.max_lockout_s, options_.lockout_s << std::min(f.lockouts, 20));
      f.locked_until = now + seconds * 1000000;
      f.count = 0;
      ++f.lockouts;
      LogWarn("login locked after repeated failures", {{"username", username}, {"seconds", seconds}});
    }
    return Status::Unauthenticated("invalid username or password");
  };
  auto user = store_->GetUserByName(username);
  if (!user.ok()) {
    if (user.status().code() != StatusCode::kNotFound) return user.TakeStatus();
    (void)VerifyPassword(password, kDummy);
    return failed();
  }
  if (!VerifyPassword(password, user->password_hash) || user->disabled) return failed();
  {
    std::lock_guard<std::mutex> lock(mu_);
    failures_.erase(username);
  }
  return IssueSession(*user);
}

Result<LoginResult> AuthService::IssueSession(const UserRecord& user) {
  if (user.disabled) return Status::Unauthenticated("user '" + user.username + "' is disabled");
  const int64_t now = NowMicros();
  LoginResult out;
  out.token = "lt_" + RandomToken(32);
  out.expires_at = now + options_.token_ttl_s * 1000000;
  TokenRecord rec{Sha256Hex(out.token), user.id, now, out.expires_at, false};
  RETURN_IF_ERROR(store_->CreateToken(rec));
  out.caller = Caller{user.id, user.username, user.is_admin, rec.token_hash, out.expires_at, nullptr};
  ASSIGN_OR_RETURN(out.caller.roles, LoadRoles(user.id));
  return out;
}

Result<UserRecord> AuthService::UpsertSsoUser(const std::string& username, const std::string& identity,
                                              std::optional<bool> is_admin) {
  const std::string marker = std::string(kSsoHashPrefix) + identity;
  // An existing linked user keeps signing in even if the username rules have since become stricter; only a
  // new user's name is checked.
  auto existing = store_->GetUserByName(username);
  if (existing.ok()) {
    if (existing->password_hash != marker) {
      return Status::AlreadyExists("user '" + username + "' exists and is not linked to this single sign-on "
                                   "identity; an administrator must rename one of them");
    }
    if (is_admin && *is_admin != existing->is_admin) {
      existing->is_admin = *is_admin;
      RETURN_IF_ERROR(store_->UpdateUser(*existing));
      InvalidateCaches();
    }
    return *existing;
  }
  if (existing.status().code() != StatusCode::kNotFound) return existing.status();
  if (!ValidUsername(username)) {
    return Status::InvalidArgument("the identity provider's username '" + username.substr(0, 80) +
                                   "' is not a valid lathe username (1-64 of A-Z a-z 0-9 . _ @ -, starting "
                                   "with a letter or digit)");
  }
  UserRecord u;
  u.id = NewId("usr");
  u.username = username;
  u.password_hash = marker;  // never a valid argon2id hash: password login is impossible for this user
  u.is_admin = is_admin.value_or(false);
  u.created_at = NowMicros();
  RETURN_IF_ERROR(store_->CreateUser(u));
  LogInfo("created single sign-on user", {{"username", username}});
  return u;
}

Result<Caller> AuthService::Authenticate(std::string_view header) {
  constexpr std::string_view kBearer = "Bearer ";
  if (header.size() <= kBearer.size() || header.substr(0, kBearer.size()) != kBearer) {
    return Status::Unauthenticated("the Authorization header must be 'Bearer <token>'");
  }
  std::string_view token = header.substr(kBearer.size());
  if (token.size() > 256) return Status::Unauthenticated("invalid or expired token");
  std::string hash = Sha256Hex(token);
  int64_t now = NowMicros();
  {
    std::unique_lock<std::mutex> lock(mu_);
    auto it = cache_.find(hash);
    if (it != cache_.end()) {
      CacheEntry& e = it->second;
      if (e.caller.expires_at <= now) {
        cache_.erase(it);
      } else if (e.cached_until_us > now || e.refreshing) {
        Caller caller = e.caller;  // fresh, or stale while another request revalidates it
        const bool touch = caller.IsApiKey() && now - e.touched_us > kKeyTouchIntervalUs;
        if (touch) e.touched_us = now;
        lock.unlock();
        if (touch) TouchKey(caller, now);
        return caller;
      } else {
        e.refreshing = true;  // this request revalidates
      }
    }
  }
  // On failure the stale entry must go, so the next request tries again (or is refused).
  auto drop_stale = [&] {
    std::lock_guard<std::mutex> lock(mu_);
    cache_.erase(hash);
  };
  if (token.substr(0, 3) == "lk_") {  // an API key
    auto caller = LoadApiKeyCaller(hash, now);
    if (!caller.ok()) {
      drop_stale();
      return caller.TakeStatus();
    }
    TouchKey(*caller, now);
    std::lock_guard<std::mutex> lock(mu_);
    if (cache_.size() > 100000) cache_.clear();
    cache_[hash] = CacheEntry{*caller, now + options_.cache_ttl_ms * 1000, false, now};
    return caller;
  }
  auto rec = store_->GetToken(hash);
  if (!rec.ok()) {
    drop_stale();
    if (rec.status().code() == StatusCode::kNotFound) return Status::Unauthenticated("invalid or expired token");
    return rec.TakeStatus();
  }
  if (rec->revoked || rec->expires_at <= now) {
    drop_stale();
    return Status::Unauthenticated("invalid or expired token");
  }
  auto user = store_->GetUserById(rec->user_id);
  if (!user.ok() || user->disabled) {
    drop_stale();
    return Status::Unauthenticated("invalid or expired token");
  }
  Caller caller{user->id, user->username, user->is_admin, hash, rec->expires_at, nullptr};
  auto roles = LoadRoles(user->id);
  if (!roles.ok()) {
    drop_stale();
    return roles.TakeStatus();
  }
  caller.roles = std::move(roles).value();
  std::lock_guard<std::mutex> lock(mu_);
  if (cache_.size() > 100000) cache_.clear();  // bound memory under token floods
  cache_[hash] = CacheEntry{caller, now + options_.cache_ttl_ms * 1000};
  return caller;
}

Status AuthService::Logout(const Caller& caller) {
  RETURN_IF_ERROR(store_->RevokeToken(caller.token_hash));
  std::lock_guard<std::mutex> lock(mu_);
  cache_.erase(caller.token_hash);
  return Status::Ok();
}

Result<std::shared_ptr<const std::map<std::string, Role, std::less<>>>> AuthService::LoadRoles(
    const std::string& user_id) {
  ASSIGN_OR_RETURN(auto members, store_->ListMemberships(user_id));
  auto roles = std::make_shared<std::map<std::string, Role, std::less<>>>();
  for (const MemberRecord& m : members) {
    if (auto r = ParseRole(m.role)) (*roles)[m.project] = *r;
  }
  return std::shared_ptr<const std::map<std::string, Role, std::less<>>>(std::move(roles));
}

Status AuthService::Authorize(const Caller& caller, Permission permission, const std::string& project) const {
  if (permission == Permission::kPublic || permission == Permission::kAuthenticated) return Status::Ok();
  if (caller.IsApiKey()) {
    // Another project is invisible to a key, as to a user who is not a member.
    if (project.empty() || project != caller.key_project) return Status::NotFound("project '" + project + "' not found");
    if ((caller.key_permissions & (1u << static_cast<unsigned>(permission))) == 0) {
      return Status::PermissionDenied(std::string("this API key does not allow ") + PermissionName(permission));
    }
    if (caller.key_creator_admin) return Status::Ok();
    if (const auto role = RoleIn(caller, project); role && RoleAllows(*role, permission)) return Status::Ok();
    return Status::PermissionDenied(std::string("the creator of this API key may no longer ") +
                                    PermissionName(permission) + " in project '" + project + "'");
  }
  if (caller.is_admin) return Status::Ok();
  if (permission == Permission::kAdmin) {
    // A project's admin-only routes (quotas) are as invisible to outsiders as the rest of the project.
    if (!project.empty() && (!caller.roles || caller.roles->find(project) == caller.roles->end())) {
      return Status::NotFound("project '" + project + "' not found");
    }
    return Status::PermissionDenied("this operation needs the server-wide admin role");
  }
  // A project permission outside any project (e.g. /metrics when it is not public) is for admins.
  if (project.empty()) return Status::PermissionDenied("this operation needs the server-wide admin role");
  if (caller.roles) {
    auto it = caller.roles->find(project);
    if (it != caller.roles->end()) {
      if (RoleAllows(it->second, permission)) return Status::Ok();
      return Status::PermissionDenied(std::string("your role in project '") + project + "' is " +
                                      RoleName(it->second) + ", which does not allow " + PermissionName(permission));
    }
  }
  return Status::NotFound("project '" + project + "' not found");
}

std::optional<Permission> ParseKeyPermission(std::string_view name) {
  if (name == "read") return Permission::kProjectRead;
  if (name == "write") return Permission::kProjectWrite;
  if (name == "deploy") return Permission::kDeploy;
  if (name == "predict") return Permission::kPredict;
  return std::nullopt;
}

const char* KeyPermissionName(Permission p) {
  switch (p) {
    case Permission::kProjectRead: return "read";
    case Permission::kProjectWrite: return "write";
    case Permission::kDeploy: return "deploy";
    case Permission::kPredict: return "predict";
    default: return PermissionName(p);
  }
}

Result<NewApiKey> AuthService::CreateApiKey(const Caller& creator, const std::string& project, const std::string& name,
                                            const std::vector<Permission>& permissions, const std::string& deployment,
                                            int64_t expires_at) {
  auto field = [](const std::string& f, const std::string& m) {
    return Status::InvalidArgument(f + ": " + m).WithDetail(ErrorDetail::Field(f, m));
  };
  if (creator.IsApiKey()) return Status::PermissionDenied("an API key cannot create API keys; log in as a user");
  if (name.empty() || name.size() > 64 || !IsDisplaySafeText(name)) {
    return field("name", "must be 1-64 bytes of printable UTF-8 text (no control or bidirectional characters)");
  }
  if (permissions.empty()) return field("permissions", "must name at least one of read, write, deploy, predict");
  std::string names;
  for (Permission p : permissions) {
    if (!ParseKeyPermission(KeyPermissionName(p))) return field("permissions", "unknown permission");
    if (!creator.is_admin) {
      if (const auto role = RoleIn(creator, project); !role || !RoleAllows(*role, p)) {
        return Status::PermissionDenied(std::string("you may not grant '") + KeyPermissionName(p) +
                                        "': your role in project '" + project + "' does not allow it")
            .WithDetail(ErrorDetail::Field("permissions", std::string("cannot grant ") + KeyPermissionName(p)));
      }
    }
    if (names.find(KeyPermissionName(p)) != std::string::npos) continue;
    names += std::string(names.empty() ? "" : ",") + KeyPermissionName(p);
  }
  const int64_t now = NowMicros();
  if (expires_at != 0 && expires_at <= now) return field("expires_in_days", "must be in the future");
  NewApiKey out;
  out.record.id = RandomToken(9);  // 9 url-safe characters (54 bits): the key's public prefix
  std::replace(out.record.id.begin(), out.record.id.end(), '_', 'x');  // keep "lk_<id>_" parseable
  // An id is typed as a command-line argument (`lathe keys revoke ID`), where a leading '-' reads as an option.
  if (out.record.id[0] == '-') out.record.id[0] = 'k';
  out.key = "lk_" + out.record.id + "_" + RandomToken(32);
  out.record.project = project;
  out.record.name = name;
  out.record.token_hash = Sha256Hex(out.key);
  out.record.permissions = names;
  out.record.deployment = deployment;
  out.record.created_by = creator.user_id;
  out.record.created_at = now;
  out.record.expires_at = expires_at;
  RETURN_IF_ERROR(store_->CreateApiKey(out.record));
  return out;
}

Status AuthService::RevokeApiKey(const std::string& project, const std::string& id) {
  RETURN_IF_ERROR(store_->RevokeApiKey(project, id, NowMicros()));
  std::lock_guard<std::mutex> lock(mu_);
  for (auto it = cache_.begin(); it != cache_.end();) {
    it = it->second.caller.key_id == id ? cache_.erase(it) : std::next(it);
  }
  return Status::Ok();
}

Result<Caller> AuthService::LoadApiKeyCaller(const std::string& hash, int64_t now) {
  auto rec = store_->GetApiKeyByHash(hash);
  if (!rec.ok()) {
    if (rec.status().code() == StatusCode::kNotFound) return Status::Unauthenticated("invalid, expired or revoked API key");
    return rec.TakeStatus();
  }
  if (rec->revoked_at != 0 || (rec->expires_at != 0 && rec->expires_at <= now)) {
    return Status::Unauthenticated("invalid, expired or revoked API key");
  }
  auto user = store_->GetUserById(rec->created_by);
  if (!user.ok() || user->disabled) return Status::Unauthenticated("invalid, expired or revoked API key");
  Caller caller{user->id, user->username, false, hash,
                rec->expires_at != 0 ? rec->expires_at : std::numeric_limits<int64_t>::max(), nullptr};
  ASSIGN_OR_RETURN(caller.roles, LoadRoles(user->id));
  caller.key_id = rec->id;
  caller.key_project = rec->project;
  caller.key_deployment = rec->deployment;
  caller.key_creator_admin = user->is_admin;
  size_t start = 0;
  while (start <= rec->permissions.size()) {
    const size_t end = std::min(rec->permissions.find(',', start), rec->permissions.size());
    if (auto p = ParseKeyPermission(std::string_view(rec->permissions).substr(start, end - start))) {
      caller.key_permissions |= 1u << static_cast<unsigned>(*p);
    }
    start = end + 1;
  }
  return caller;
}

void AuthService::TouchKey(const Caller& caller, int64_t now) {
  const Status st = store_->TouchApiKey(caller.key_id, now);
  if (!st.ok()) LogWarn("recording an API key's use failed", {{"key", caller.key_id}, {"error", st.ToString()}});
}

Status AuthService::CheckPassword(const std::string& username, const std::string& password) const {
  if (password.size() < options_.min_password_length) {
    return PasswordError("must be at least " + std::to_string(options_.min_password_length) + " characters");
  }
  if (password.size() > 1024) return PasswordError("must be at most 1024 characters");
  if (password == username) return PasswordError("must not be the username");
  // Guessed first by every password sprayer: the most common passwords (lower-cased) and one repeated character.
  static const std::set<std::string, std::less<>> kCommon = {
      "password", "password1", "password12", "password123", "12345678", "123456789", "1234567890", "11111111",
      "00000000", "qwertyui", "qwerty123", "qwertyuiop", "1q2w3e4r", "1qaz2wsx", "iloveyou", "sunshine",
      "princess", "football", "baseball", "welcome1", "welcome123", "abc12345", "abcd1234", "letmein1",
      "passw0rd", "p@ssw0rd", "p@ssword", "admin123", "administrator", "changeme", "trustno1", "whatever",
      "superman", "starwars", "dragon12", "master12", "monkey12", "87654321", "12341234", "asdfghjk",
      "zaq12wsx", "q1w2e3r4", "computer", "internet", "corvette", "mercedes", "michelle", "jennifer"};
  std::string lower(password);
  std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char c) { return std::tolower(c); });
  if (kCommon.count(lower) != 0) return PasswordError("is one of the most common passwords; choose another");
  if (password.find_first_not_of(password[0]) == std::string::npos) {
    return PasswordError("must not be one character repeated");
  }
  return Status::Ok();
}

Result<UserRecord> AuthService::CreateUser(const std::string& username, const std::string& password,
                                           bool is_admin) {
  if (!ValidUsername(username)) {
    return Status::InvalidArgument(
               "username must be 1-64 characters of A-Z a-z 0-9 . _ @ -, starting with a letter or digit")
        .WithDetail(
            ErrorDetail::Field("username", "1-64 characters of A-Z a-z 0-9 . _ @ -, starting with a letter or digit"));
  }
  RETURN_IF_ERROR(CheckPassword(username, password));
  ASSIGN_OR_RETURN(std::string hash, HashPassword(password));
  UserRecord u{.id = NewId("usr"), .username = username, .password_hash = hash, .is_admin = is_admin,
               .disabled = false, .created_at = NowMicros()};
  RETURN_IF_ERROR(store_->CreateUser(u));
  return u;
}

Result<UserRecord> AuthService::UpdateUser(const std::string& username, const std::optional<std::string>& password,
                                           std::optional<bool> disabled, std::optional<bool> is_admin) {
  ASSIGN_OR_RETURN(UserRecord u, store_->GetUserByName(username));
  if (password) {
    RETURN_IF_ERROR(CheckPassword(username, *password));
    ASSIGN_OR_RETURN(u.password_hash, HashPassword(*password));
  }
  if (disabled) u.disabled = *disabled;
  if (is_admin) u.is_admin = *is_admin;
  RETURN_IF_ERROR(store_->UpdateUser(u));
  InvalidateCaches();
  return u;
}

void AuthService::InvalidateCaches() {
  std::lock_guard<std::mutex> lock(mu_);
  cache_.clear();
}

}  // namespace lathe
