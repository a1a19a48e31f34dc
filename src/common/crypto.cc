#include "common/crypto.h"

#include <argon2.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include <algorithm>
#include <memory>
#include <stdexcept>

namespace lathe {

std::string HexEncode(std::string_view bytes) {
  static const char* kHex = "0123456789abcdef";
  std::string out;
  out.resize(bytes.size() * 2);
  for (size_t i = 0; i < bytes.size(); ++i) {
    auto b = static_cast<unsigned char>(bytes[i]);
    out[2 * i] = kHex[b >> 4];
    out[2 * i + 1] = kHex[b & 15];
  }
  return out;
}

Sha256::Sha256() : ctx_(EVP_MD_CTX_new()) {
  EVP_DigestInit_ex(static_cast<EVP_MD_CTX*>(ctx_), EVP_sha256(), nullptr);
}
Sha256::~Sha256() { EVP_MD_CTX_free(static_cast<EVP_MD_CTX*>(ctx_)); }
void Sha256::Update(std::string_view data) {
  EVP_DigestUpdate(static_cast<EVP_MD_CTX*>(ctx_), data.data(), data.size());
}
std::string Sha256::FinalHex() {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_DigestFinal_ex(static_cast<EVP_MD_CTX*>(ctx_), md, &len);
  return HexEncode(std::string_view(reinterpret_cast<char*>(md), len));
}

std::string Sha256Hex(std::string_view data) {
  Sha256 h;
  h.Update(data);
  return h.FinalHex();
}

std::string RandomBytes(size_t n) {
  std::string out(n, '\0');
  if (RAND_bytes(reinterpret_cast<unsigned char*>(out.data()), static_cast<int>(n)) != 1) {
    // The OS CSPRNG failing is not recoverable; refusing to continue is safer than weak tokens.
    throw std::runtime_error("RAND_bytes failed");
  }
  return out;
}

std::string RandomHex(size_t n) { return HexEncode(RandomBytes(n)); }

std::string RandomToken(size_t n) {
  static const char* kAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::string bytes = RandomBytes(n);
  std::string out;
  out.reserve(n);
  for (char c : bytes) out.push_back(kAlphabet[static_cast<unsigned char>(c) & 63]);
  return out;
}

bool ConstantTimeEquals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

namespace {
// OWASP-recommended argon2id minimum: m=19 MiB, t=2, p=1.
constexpr uint32_t kArgonTime = 2;
constexpr uint32_t kArgonMemKiB = 19 * 1024;
constexpr uint32_t kArgonLanes = 1;
constexpr size_t kSaltLen = 16;
constexpr size_t kHashLen = 32;
}  // namespace

Result<std::string> HashPassword(std::string_view password) {
  std::string salt = RandomBytes(kSaltLen);
  size_t enc_len = argon2_encodedlen(kArgonTime, kArgonMemKiB, kArgonLanes, kSaltLen, kHashLen, Argon2_id);
  std::string encoded(enc_len, '\0');
  int rc = argon2id_hash_encoded(kArgonTime, kArgonMemKiB, kArgonLanes, password.data(), password.size(),
                                 salt.data(), salt.size(), kHashLen, encoded.data(), encoded.size());
  if (rc != ARGON2_OK) return Status::Internal(std::string("argon2id: ") + argon2_error_message(rc));
  encoded.resize(std::char_traits<char>::length(encoded.c_str()));
  return encoded;
}

bool VerifyPassword(std::string_view password, const std::string& encoded) {
  return argon2id_verify(encoded.c_str(), password.data(), password.size()) == ARGON2_OK;
}

std::string HmacSha256(std::string_view key, std::string_view data) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  // An empty key is legal for HMAC; HMAC() wants a non-null pointer either way.
  static const unsigned char kEmpty = 0;
  const void* key_ptr = key.empty() ? static_cast<const void*>(&kEmpty) : key.data();
  if (HMAC(EVP_sha256(), key_ptr, static_cast<int>(key.size()),
           reinterpret_cast<const unsigned char*>(data.data()), data.size(), md, &len) == nullptr) {
    throw std::runtime_error("HMAC-SHA256 failed");  // only on allocation failure inside OpenSSL
  }
  return std::string(reinterpret_cast<char*>(md), len);
}

namespace {

struct CipherCtxFree {
  void operator()(EVP_CIPHER_CTX* c) const { EVP_CIPHER_CTX_free(c); }
};
using CipherCtx = std::unique_ptr<EVP_CIPHER_CTX, CipherCtxFree>;

const unsigned char* Bytes(std::string_view s) { return reinterpret_cast<const unsigned char*>(s.data()); }

Status CheckGcmKey(std::string_view key) {
  if (key.size() != kAesGcmKeyBytes) {
    return Status::InvalidArgument("AES-256-GCM key must be 32 bytes, got " + std::to_string(key.size()));
  }
  return Status::Ok();
}

// ciphertext || tag of `plaintext` under key/nonce/aad.
Result<std::string> GcmSeal(std::string_view key, std::string_view nonce, std::string_view plaintext,
                            std::string_view aad) {
  if (plaintext.size() > (size_t{1} << 36)) return Status::InvalidArgument("AES-GCM plaintext too large");
  CipherCtx ctx(EVP_CIPHER_CTX_new());
  if (!ctx) return Status::Internal("EVP_CIPHER_CTX_new failed");
  int len = 0;
  if (EVP_EncryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, nullptr, nullptr) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_IVLEN, static_cast<int>(nonce.size()), nullptr) != 1 ||
      EVP_EncryptInit_ex(ctx.get(), nullptr, nullptr, Bytes(key), Bytes(nonce)) != 1) {
    return Status::Internal("AES-GCM init failed");
  }
  if (!aad.empty() &&
      EVP_EncryptUpdate(ctx.get(), nullptr, &len, Bytes(aad), static_cast<int>(aad.size())) != 1) {
    return Status::Internal("AES-GCM aad failed");
  }
  std::string out(plaintext.size() + kAesGcmTagBytes, '\0');
  auto* dst = reinterpret_cast<unsigned char*>(out.data());
  size_t done = 0;
  // EVP takes int lengths: feed in chunks so multi-GiB inputs cannot overflow.
  constexpr size_t kChunk = size_t{1} << 30;
  while (done < plaintext.size()) {
    size_t n = std::min(kChunk, plaintext.size() - done);
    if (EVP_EncryptUpdate(ctx.get(), dst + done, &len, Bytes(plaintext) + done, static_cast<int>(n)) != 1) {
      return Status::Internal("AES-GCM encrypt failed");
    }
    done += static_cast<size_t>(len);
  }
  if (EVP_EncryptFinal_ex(ctx.get(), dst + done, &len) != 1) return Status::Internal("AES-GCM final failed");
  done += static_cast<size_t>(len);
  if (EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_GET_TAG, static_cast<int>(kAesGcmTagBytes), dst + done) !=
      1) {
    return Status::Internal("AES-GCM tag failed");
  }
  out.resize(done + kAesGcmTagBytes);
  return out;
}

}  // namespace

Result<std::string> AesGcmSealWithNonceForTest(std::string_view key, std::string_view nonce,
                                               std::string_view plaintext, std::string_view aad) {
  RETURN_IF_ERROR(CheckGcmKey(key));
  if (nonce.size() != kAesGcmNonceBytes) return Status::InvalidArgument("AES-GCM nonce must be 12 bytes");
  return GcmSeal(key, nonce, plaintext, aad);
}

Result<std::string> EncryptAesGcm(std::string_view key, std::string_view plaintext, std::string_view aad) {
  RETURN_IF_ERROR(CheckGcmKey(key));
  std::string nonce = RandomBytes(kAesGcmNonceBytes);
  ASSIGN_OR_RETURN(std::string body, GcmSeal(key, nonce, plaintext, aad));
  std::string out;
  out.reserve(1 + nonce.size() + body.size());
  out.push_back(static_cast<char>(kAesGcmVersion));
  out += nonce;
  out += body;
  return out;
}

Result<std::string> DecryptAesGcm(std::string_view key, std::string_view sealed, std::string_view aad) {
  RETURN_IF_ERROR(CheckGcmKey(key));
  const Status kAuthFailed = Status::DataLoss("authentication failed");
  if (sealed.size() < kAesGcmOverheadBytes) return kAuthFailed;
  if (static_cast<uint8_t>(sealed[0]) != kAesGcmVersion) return kAuthFailed;
  std::string_view nonce = sealed.substr(1, kAesGcmNonceBytes);
  std::string_view body = sealed.substr(1 + kAesGcmNonceBytes);
  std::string_view ct = body.substr(0, body.size() - kAesGcmTagBytes);
  std::string tag(body.substr(body.size() - kAesGcmTagBytes));

  CipherCtx ctx(EVP_CIPHER_CTX_new());
  if (!ctx) return Status::Internal("EVP_CIPHER_CTX_new failed");
  int len = 0;
  if (EVP_DecryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, nullptr, nullptr) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_IVLEN, static_cast<int>(nonce.size()), nullptr) != 1 ||
      EVP_DecryptInit_ex(ctx.get(), nullptr, nullptr, Bytes(key), Bytes(nonce)) != 1) {
    return Status::Internal("AES-GCM init failed");
  }
  if (!aad.empty() &&
      EVP_DecryptUpdate(ctx.get(), nullptr, &len, Bytes(aad), static_cast<int>(aad.size())) != 1) {
    return Status::Internal("AES-GCM aad failed");
  }
  std::string out(ct.size(), '\0');
  auto* dst = reinterpret_cast<unsigned char*>(out.data());
  size_t done = 0;
  constexpr size_t kChunk = size_t{1} << 30;
  while (done < ct.size()) {
    size_t n = std::min(kChunk, ct.size() - done);
    if (EVP_DecryptUpdate(ctx.get(), dst + done, &len, Bytes(ct) + done, static_cast<int>(n)) != 1) {
      return kAuthFailed;
    }
    done += static_cast<size_t>(len);
  }
  if (EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_TAG, static_cast<int>(kAesGcmTagBytes), tag.data()) !=
      1) {
    return Status::Internal("AES-GCM set tag failed");
  }
  if (EVP_DecryptFinal_ex(ctx.get(), dst + done, &len) != 1) {
    OPENSSL_cleanse(out.data(), out.size());  // never release unauthenticated plaintext
    return kAuthFailed;
  }
  out.resize(done + static_cast<size_t>(len));
  return out;
}

Result<std::string> Base64Decode(std::string_view text) {
  if (text.size() % 4 != 0) return Status::InvalidArgument("base64: length is not a multiple of 4");
  if (text.size() > (1u << 30)) return Status::InvalidArgument("base64: too long");
  for (char c : text) {
    const bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' ||
                    c == '/' || c == '=';
    if (!ok) return Status::InvalidArgument("base64: invalid character");
  }
  const size_t first_pad = text.find('=');
  if (first_pad != std::string_view::npos && first_pad + 2 < text.size()) {
    return Status::InvalidArgument("base64: padding inside the text");
  }
  if (first_pad != std::string_view::npos && text.find_first_not_of('=', first_pad) != std::string_view::npos) {
    return Status::InvalidArgument("base64: padding inside the text");
  }
  std::string out(text.size() / 4 * 3, '\0');
  const int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(text.data()), static_cast<int>(text.size()));
  if (n < 0) return Status::InvalidArgument("base64: malformed");
  size_t len = static_cast<size_t>(n);
  // EVP_DecodeBlock keeps the bytes the padding stands for; drop them.
  if (!text.empty() && text.back() == '=') --len;
  if (text.size() >= 2 && text[text.size() - 2] == '=') --len;
  out.resize(len);
  return out;
}

}  // namespace lathe
