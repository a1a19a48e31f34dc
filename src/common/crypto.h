// Cryptographic primitives on OpenSSL and libargon2: hashing, secure randomness, constant-time compare,
// and argon2id password hashing. All functions are thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "common/status.h"

namespace lathe {

// Lower-case hex SHA-256 of `data`.
std::string Sha256Hex(std::string_view data);

// Incremental SHA-256 for streams (e.g. blob writes).
class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;
  void Update(std::string_view data);
  std::string FinalHex();

 private:
  void* ctx_;
};

// `n` cryptographically secure random bytes.
std::string RandomBytes(size_t n);
// `n` random bytes, hex-encoded (2n characters).
std::string RandomHex(size_t n);
// URL-safe random token of `n` bytes of entropy.
std::string RandomToken(size_t n);

bool ConstantTimeEquals(std::string_view a, std::string_view b);

std::string HexEncode(std::string_view bytes);

// argon2id in PHC string format ($argon2id$v=19$m=...,t=...,p=...$salt$hash).
Result<std::string> HashPassword(std::string_view password);
bool VerifyPassword(std::string_view password, const std::string& encoded);

}  // namespace lathe
