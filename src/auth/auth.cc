#include "auth/auth.h"

#include "common/clock.h"
#include "common/crypto.h"
#include "common/ids.h"
#include "common/log.h"

namespace lathe {

const char* PermissionName(Permission p) {
  switch (p) {
    case Permission::kPublic: return "public";
    case Permission::kAuthenticated: return "authenticated";
    case Permission::kProjectRead: return "project:read";
    case Permission::kProjectWrite: return "project:write";
    case Permission::kDeploy: return "project:deploy";
    case Permission::kPredict: return "project:predict";
    case Permission::kAdmin: return "admin";
  }
  return "admin";
}

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

Result<LoginResult> AuthService::Login(const std::string& username, const std::string& password) {
  // A dummy hash keeps the timing of "no such user" close to "wrong password".
  static const std::string kDummy = HashPassword("lathe-dummy-password").value();
  auto user = store_->GetUserByName(username);
  if (!user.ok()) {
    if (user.status().code() != StatusCode::kNotFound) return user.TakeStatus();
    (void)VerifyPassword(password, kDummy);
    return Status::Unauthenticated("invalid username or password");
  }
  if (!VerifyPassword(password, user->password_hash) || user->disabled) {
    return Status::Unauthenticated("invalid username or password");
  }
  LoginResult out;
  out.token = "lt_" + RandomToken(32);
  int64_t now = NowMicros();
  out.expires_at = now + options_.token_ttl_s * 1000000;
  TokenRecord rec{Sha256Hex(out.token), user->id, now, out.expires_at, false};
  RETURN_IF_ERROR(store_->CreateToken(rec));
  out.caller = Caller{user->id, user->username, user->is_admin, rec.token_hash, out.expires_at};
  return out;
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
    std::lock_guard<std::mutex> lock(mu_);
    auto it = cache_.find(hash);
    if (it != cache_.end()) {
      if (it->second.cached_until_us > now && it->second.caller.expires_at > now) return it->second.caller;
      cache_.erase(it);
    }
  }
  auto rec = store_->GetToken(hash);
  if (!rec.ok()) {
    if (rec.status().code() == StatusCode::kNotFound) return Status::Unauthenticated("invalid or expired token");
    return rec.TakeStatus();
  }
  if (rec->revoked || rec->expires_at <= now) return Status::Unauthenticated("invalid or expired token");
  auto user = store_->GetUserById(rec->user_id);
  if (!user.ok() || user->disabled) return Status::Unauthenticated("invalid or expired token");
  Caller caller{user->id, user->username, user->is_admin, hash, rec->expires_at};
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

Status AuthService::Authorize(const Caller& caller, Permission permission, const std::string& project) const {
  (void)project;  // per-project roles arrive with multi-tenancy; see the header comment.
  if (permission == Permission::kAdmin && !caller.is_admin) {
    return Status::PermissionDenied("this operation needs the server-wide admin role");
  }
  return Status::Ok();
}

}  // namespace lathe
