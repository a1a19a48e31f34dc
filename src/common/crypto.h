// Cryptographic primitives on OpenSSL and libargon2: hashing, secure randomness, constant-time compare,
// argon2id password hashing, HMAC-SHA256 and AES-256-GCM sealing. All functions are thread-safe.
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
// Standard base64 (RFC 4648, with padding; whitespace is not allowed). kInvalidArgument for anything else.
Result<std::string> Base64Decode(std::string_view text);

// argon2id in PHC string format ($argon2id$v=19$m=...,t=...,p=...$salt$hash).
Result<std::string> HashPassword(std::string_view password);
bool VerifyPassword(std::string_view password, const std::string& encoded);

// HMAC-SHA256 of `data` under `key` (any length); 32 raw bytes (HexEncode for text).
std::string HmacSha256(std::string_view key, std::string_view data);

// AES-256-GCM sealing for secrets at rest (stored credentials, blobs).
// Sealed layout: version byte (kAesGcmVersion) || 12-byte random nonce || ciphertext || 16-byte tag;
// the sealed text is plaintext.size() + kAesGcmOverheadBytes long. `aad` (additional authenticated data,
// e.g. the record id the secret belongs to) is authenticated but not stored: decrypting needs the same aad.
// Errors: key not exactly 32 bytes -> kInvalidArgument; on decrypt, a wrong key, wrong aad, unknown version,
// truncated or tampered input -> kDataLoss "authentication failed" (no plaintext is released). A fresh
// random nonce per call: do not seal more than ~2^32 messages under one key.
inline constexpr uint8_t kAesGcmVersion = 1;
inline constexpr size_t kAesGcmKeyBytes = 32;
inline constexpr size_t kAesGcmNonceBytes = 12;
inline constexpr size_t kAesGcmTagBytes = 16;
inline constexpr size_t kAesGcmOverheadBytes = 1 + kAesGcmNonceBytes + kAesGcmTagBytes;
Result<std::string> EncryptAesGcm(std::string_view key, std::string_view plaintext, std::string_view aad);
Result<std::string> DecryptAesGcm(std::string_view key, std::string_view sealed, std::string_view aad);
// The raw primitive with a caller-chosen nonce (12 bytes); returns ciphertext || tag. For known-answer
// tests only; production code uses EncryptAesGcm (random nonce). Never reuse a nonce under one key.
Result<std::string> AesGcmSealWithNonceForTest(std::string_view key, std::string_view nonce,
                                               std::string_view plaintext, std::string_view aad);

}  // namespace lathe
