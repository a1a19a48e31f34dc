#include "auth/oidc.h"

#include <curl/curl.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cmath>
#include <set>
#include <stdexcept>

#include "common/clock.h"
#include "common/crypto.h"
#include "common/log.h"

namespace lathe {
namespace {

constexpr std::string_view kSupportedAlgs[] = {"RS256", "RS384", "RS512", "ES256"};
constexpr size_t kMaxUrlBytes = 8192;
constexpr size_t kMaxJsonDepth = 32;
constexpr size_t kMaxGroups = 1000;
constexpr size_t kMaxGroupBytes = 256;
constexpr size_t kMaxCodeBytes = 4096;
constexpr size_t kMaxSubBytes = 255;
constexpr size_t kMaxProviderTextBytes = 200;  // provider-supplied text quoted in our messages

bool IsSupportedAlg(std::string_view alg) {
  return std::find(std::begin(kSupportedAlgs), std::end(kSupportedAlgs), alg) != std::end(kSupportedAlgs);
}

// Text from outside (a kid, an issuer, an error description) made safe to put in a message: printable ASCII
// only, bounded, quoted.
std::string Quote(std::string_view s) {
  std::string out = "\"";
  for (size_t i = 0; i < s.size() && i < kMaxProviderTextBytes; ++i) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    out.push_back(c >= 0x20 && c < 0x7f && c != '"' && c != '\\' ? static_cast<char>(c) : '?');
  }
  if (s.size() > kMaxProviderTextBytes) out += "…";
  return out + "\"";
}

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

Status FieldError(const std::string& context, const std::string& field, const std::string& msg) {
  return Status::InvalidArgument(context + ": " + field + " " + msg)
      .WithDetail(ErrorDetail::Field(field, msg));
}

// ---- base64 ----

constexpr char kB64Std[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
constexpr char kB64Url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

std::string Base64EncodeWith(std::string_view bytes, const char* alphabet, bool pad) {
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  size_t i = 0;
  auto at = [&](size_t k) { return static_cast<uint32_t>(static_cast<unsigned char>(bytes[k])); };
  for (; i + 3 <= bytes.size(); i += 3) {
    uint32_t v = at(i) << 16 | at(i + 1) << 8 | at(i + 2);
    out.push_back(alphabet[(v >> 18) & 63]);
    out.push_back(alphabet[(v >> 12) & 63]);
    out.push_back(alphabet[(v >> 6) & 63]);
    out.push_back(alphabet[v & 63]);
  }
  size_t rest = bytes.size() - i;
  if (rest == 1) {
    uint32_t v = at(i) << 16;
    out.push_back(alphabet[(v >> 18) & 63]);
    out.push_back(alphabet[(v >> 12) & 63]);
    if (pad) out += "==";
  } else if (rest == 2) {
    uint32_t v = at(i) << 16 | at(i + 1) << 8;
    out.push_back(alphabet[(v >> 18) & 63]);
    out.push_back(alphabet[(v >> 12) & 63]);
    out.push_back(alphabet[(v >> 6) & 63]);
    if (pad) out.push_back('=');
  }
  return out;
}

int Base64UrlValue(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '-') return 62;
  if (c == '_') return 63;
  return -1;
}

std::string Sha256Raw(std::string_view data) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (EVP_Digest(data.data(), data.size(), md, &len, EVP_sha256(), nullptr) != 1) {
    throw std::runtime_error("EVP_Digest(sha256) failed");  // cannot happen with the default provider
  }
  return std::string(reinterpret_cast<char*>(md), len);
}

// ---- URLs ----

void InitCurlOnce() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

struct CurlUrlFree {
  void operator()(CURLU* u) const { curl_url_cleanup(u); }
};
using CurlUrl = std::unique_ptr<CURLU, CurlUrlFree>;

std::string UrlPart(CURLU* u, CURLUPart part) {
  char* p = nullptr;
  if (curl_url_get(u, part, &p, 0) != CURLUE_OK || p == nullptr) return "";
  std::string s = p;
  curl_free(p);
  return s;
}

// "" when `url` is an absolute http(s) URL with a host, no user info and no fragment; else what is wrong.
std::string HttpUrlProblem(std::string_view url) {
  InitCurlOnce();
  if (url.empty()) return "is missing";
  if (url.size() > kMaxUrlBytes) return "is longer than " + std::to_string(kMaxUrlBytes) + " bytes";
  if (url.find_first_of(std::string_view(" \t\r\n\0", 5)) != std::string_view::npos) {
    return "contains whitespace or control characters";
  }
  CurlUrl u(curl_url());
  if (!u) return "cannot be parsed (out of memory)";
  std::string s(url);
  if (curl_url_set(u.get(), CURLUPART_URL, s.c_str(), 0) != CURLUE_OK) return "is not an absolute URL";
  std::string scheme = Lower(UrlPart(u.get(), CURLUPART_SCHEME));
  if (scheme != "http" && scheme != "https") return "must be an http or https URL, not " + Quote(scheme);
  if (UrlPart(u.get(), CURLUPART_HOST).empty()) return "has no host";
  if (!UrlPart(u.get(), CURLUPART_USER).empty()) return "must not contain user info";
  if (!UrlPart(u.get(), CURLUPART_FRAGMENT).empty() || url.find('#') != std::string_view::npos) {
    return "must not contain a fragment";
  }
  return "";
}

// scheme://host[:port]/path, without user info or query: for messages.
std::string UrlForMessage(const std::string& url) {
  InitCurlOnce();
  CurlUrl u(curl_url());
  if (!u || curl_url_set(u.get(), CURLUPART_URL, url.c_str(), 0) != CURLUE_OK) return "<invalid url>";
  std::string out = UrlPart(u.get(), CURLUPART_SCHEME) + "://" + UrlPart(u.get(), CURLUPART_HOST);
  std::string port = UrlPart(u.get(), CURLUPART_PORT);
  if (!port.empty()) out += ":" + port;
  out += UrlPart(u.get(), CURLUPART_PATH);
  if (!UrlPart(u.get(), CURLUPART_QUERY).empty()) out += "?…";
  return out;
}

// RFC 3986 percent-encoding of everything but the unreserved set.
std::string PercentEncode(std::string_view s, bool space_as_plus) {
  static const char* kHex = "0123456789ABCDEF";
  std::string out;
  out.reserve(s.size() * 3);
  for (char ch : s) {
    unsigned char c = static_cast<unsigned char>(ch);
    if (std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else if (c == ' ' && space_as_plus) {
      out.push_back('+');
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    }
  }
  return out;
}

// ---- OpenSSL helpers ----

struct PkeyFree {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
struct PkeyCtxFree {
  void operator()(EVP_PKEY_CTX* c) const { EVP_PKEY_CTX_free(c); }
};
struct ParamBldFree {
  void operator()(OSSL_PARAM_BLD* b) const { OSSL_PARAM_BLD_free(b); }
};
struct ParamFree {
  void operator()(OSSL_PARAM* p) const { OSSL_PARAM_free(p); }
};
struct BnFree {
  void operator()(BIGNUM* b) const { BN_free(b); }
};
struct MdCtxFree {
  void operator()(EVP_MD_CTX* c) const { EVP_MD_CTX_free(c); }
};
struct EcdsaSigFree {
  void operator()(ECDSA_SIG* s) const { ECDSA_SIG_free(s); }
};
using BnPtr = std::unique_ptr<BIGNUM, BnFree>;

BnPtr BnFromBytes(std::string_view bytes) {
  return BnPtr(BN_bin2bn(reinterpret_cast<const unsigned char*>(bytes.data()), static_cast<int>(bytes.size()),
                         nullptr));
}

// A public key from OSSL_PARAMs of `type` ("RSA" or "EC"), checked with EVP_PKEY_public_check; "" error on
// success, else why it was refused.
std::shared_ptr<EVP_PKEY> PkeyFromParams(const char* type, OSSL_PARAM_BLD* bld, std::string* why) {
  std::unique_ptr<OSSL_PARAM, ParamFree> params(OSSL_PARAM_BLD_to_param(bld));
  std::unique_ptr<EVP_PKEY_CTX, PkeyCtxFree> ctx(EVP_PKEY_CTX_new_from_name(nullptr, type, nullptr));
  EVP_PKEY* raw = nullptr;
  if (!params || !ctx || EVP_PKEY_fromdata_init(ctx.get()) != 1 ||
      EVP_PKEY_fromdata(ctx.get(), &raw, EVP_PKEY_PUBLIC_KEY, params.get()) != 1 || raw == nullptr) {
    ERR_clear_error();
    *why = "the key parameters are not a valid public key";
    return nullptr;
  }
  std::shared_ptr<EVP_PKEY> key(raw, PkeyFree());
  std::unique_ptr<EVP_PKEY_CTX, PkeyCtxFree> check(EVP_PKEY_CTX_new_from_pkey(nullptr, raw, nullptr));
  if (!check || EVP_PKEY_public_check(check.get()) != 1) {
    ERR_clear_error();
    *why = "the public key fails OpenSSL's checks";
    return nullptr;
  }
  return key;
}

std::shared_ptr<EVP_PKEY> RsaPublicKey(std::string_view n, std::string_view e, std::string* why) {
  while (!n.empty() && n[0] == '\0') n.remove_prefix(1);
  while (!e.empty() && e[0] == '\0') e.remove_prefix(1);
  if (n.size() * 8 < static_cast<size_t>(kMinRsaKeyBits) - 7) {
    *why =
        "RSA modulus of " + std::to_string(n.size() * 8) + " bits is under " + std::to_string(kMinRsaKeyBits);
    return nullptr;
  }
  if (n.size() > 2048) {
    *why = "RSA modulus over 16384 bits";
    return nullptr;
  }
  if (e.empty() || e.size() > 8) {
    *why = "RSA exponent is empty or too long";
    return nullptr;
  }
  BnPtr bn_n = BnFromBytes(n), bn_e = BnFromBytes(e);
  std::unique_ptr<OSSL_PARAM_BLD, ParamBldFree> bld(OSSL_PARAM_BLD_new());
  if (!bn_n || !bn_e || !bld || OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_N, bn_n.get()) != 1 ||
      OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_E, bn_e.get()) != 1) {
    ERR_clear_error();
    *why = "out of memory building the RSA key";
    return nullptr;
  }
  auto key = PkeyFromParams("RSA", bld.get(), why);
  if (key && EVP_PKEY_get_bits(key.get()) < kMinRsaKeyBits) {
    *why = "RSA key of " + std::to_string(EVP_PKEY_get_bits(key.get())) + " bits is under " +
           std::to_string(kMinRsaKeyBits);
    return nullptr;
  }
  return key;
}

std::shared_ptr<EVP_PKEY> P256PublicKey(std::string_view x, std::string_view y, std::string* why) {
  if (x.size() != 32 || y.size() != 32) {
    *why = "P-256 coordinates must be 32 bytes each";
    return nullptr;
  }
  std::string point = "\x04";
  point += x;
  point += y;
  std::unique_ptr<OSSL_PARAM_BLD, ParamBldFree> bld(OSSL_PARAM_BLD_new());
  if (!bld || OSSL_PARAM_BLD_push_utf8_string(bld.get(), OSSL_PKEY_PARAM_GROUP_NAME, "prime256v1", 0) != 1 ||
      OSSL_PARAM_BLD_push_octet_string(bld.get(), OSSL_PKEY_PARAM_PUB_KEY, point.data(), point.size()) != 1) {
    ERR_clear_error();
    *why = "out of memory building the EC key";
    return nullptr;
  }
  return PkeyFromParams("EC", bld.get(), why);
}

const EVP_MD* DigestForAlg(std::string_view alg) {
  if (alg == "RS256" || alg == "ES256") return EVP_sha256();
  if (alg == "RS384") return EVP_sha384();
  if (alg == "RS512") return EVP_sha512();
  return nullptr;
}

bool VerifySignature(EVP_PKEY* key, std::string_view alg, std::string_view signing_input,
                     std::string_view signature) {
  const EVP_MD* md = DigestForAlg(alg);
  if (md == nullptr || key == nullptr) return false;
  std::string der;
  std::string_view sig = signature;
  if (alg == "ES256") {
    // JWS carries ECDSA signatures as the fixed-width R || S (RFC 7518 §3.4); OpenSSL wants DER.
    if (signature.size() != 64) return false;
    std::unique_ptr<ECDSA_SIG, EcdsaSigFree> es(ECDSA_SIG_new());
    BnPtr r = BnFromBytes(signature.substr(0, 32)), s = BnFromBytes(signature.substr(32));
    if (!es || !r || !s || ECDSA_SIG_set0(es.get(), r.get(), s.get()) != 1) {
      ERR_clear_error();
      return false;
    }
    r.release();  // owned by es now
    s.release();
    int len = i2d_ECDSA_SIG(es.get(), nullptr);
    if (len <= 0) {
      ERR_clear_error();
      return false;
    }
    der.resize(static_cast<size_t>(len));
    unsigned char* p = reinterpret_cast<unsigned char*>(der.data());
    if (i2d_ECDSA_SIG(es.get(), &p) != len) {
      ERR_clear_error();
      return false;
    }
    sig = der;
  }
  std::unique_ptr<EVP_MD_CTX, MdCtxFree> ctx(EVP_MD_CTX_new());
  bool ok = ctx && EVP_DigestVerifyInit(ctx.get(), nullptr, md, nullptr, key) == 1 &&
            EVP_DigestVerify(ctx.get(), reinterpret_cast<const unsigned char*>(sig.data()), sig.size(),
                             reinterpret_cast<const unsigned char*>(signing_input.data()),
                             signing_input.size()) == 1;
  ERR_clear_error();
  return ok;
}

// ---- JSON helpers ----

// A list of strings at `field` of a discovery document: absent = empty; anything but an array of strings is
// an error naming the field.
Status StringList(const Json& doc, const char* field, std::vector<std::string>* out) {
  auto it = doc.find(field);
  if (it == doc.end() || it->is_null()) return Status::Ok();
  if (!it->is_array()) return FieldError("discovery document", field, "must be an array of strings");
  for (const Json& v : *it) {
    if (!v.is_string()) return FieldError("discovery document", field, "must be an array of strings");
    out->push_back(v.get<std::string>());
  }
  return Status::Ok();
}

Status EndpointField(const Json& doc, const char* field, bool required, std::string* out) {
  auto it = doc.find(field);
  if (it == doc.end() || it->is_null()) {
    return required ? FieldError("discovery document", field, "is missing") : Status::Ok();
  }
  if (!it->is_string()) return FieldError("discovery document", field, "must be a string");
  std::string url = it->get<std::string>();
  std::string problem = HttpUrlProblem(url);
  if (!problem.empty()) return FieldError("discovery document", field, problem);
  *out = std::move(url);
  return Status::Ok();
}

// A NumericDate claim (RFC 7519 §2): absent = nullopt; present and not a finite number = error.
Result<std::optional<double>> NumericDate(const Json& claims, const char* name) {
  auto it = claims.find(name);
  if (it == claims.end()) return std::optional<double>();
  if (!it->is_number()) return Status::Unauthenticated(std::string("id token ") + name + " is not a number");
  double v = it->get<double>();
  if (!std::isfinite(v)) return Status::Unauthenticated(std::string("id token ") + name + " is not a number");
  return std::optional<double>(v);
}

std::string FormatSeconds(double v) {
  if (v >= -9e15 && v <= 9e15) return std::to_string(static_cast<int64_t>(std::floor(v)));
  return std::to_string(v);
}

const Json* FindClaim(const Json& claims, std::string_view name) {
  if (!claims.is_object() || name.empty()) return nullptr;
  auto it = claims.find(std::string(name));
  if (it != claims.end()) return &*it;
  if (name.find('.') == std::string_view::npos) return nullptr;
  const Json* cur = &claims;
  size_t start = 0;
  while (true) {
    size_t dot = name.find('.', start);
    std::string part(
        name.substr(start, dot == std::string_view::npos ? std::string_view::npos : dot - start));
    if (!cur->is_object()) return nullptr;
    auto jt = cur->find(part);
    if (jt == cur->end()) return nullptr;
    cur = &*jt;
    if (dot == std::string_view::npos) return cur;
    start = dot + 1;
  }
}

// ---- HTTP ----

struct HttpCall {
  std::string url;
  std::vector<std::string> headers;
  const std::string* post_body = nullptr;  // POST when set, GET otherwise
  int64_t timeout_ms = 10000;
  size_t max_bytes = kMaxOidcDocumentBytes;
  bool follow_redirects = false;
};

struct HttpReply {
  long status = 0;
  std::string body;
};

struct CurlEasyFree {
  void operator()(CURL* c) const { curl_easy_cleanup(c); }
};
struct SlistFree {
  void operator()(curl_slist* l) const { curl_slist_free_all(l); }
};

struct BodySink {
  std::string* body;
  size_t max_bytes;
  bool too_large = false;
};

size_t OnBody(char* data, size_t size, size_t n, void* user) {
  auto* sink = static_cast<BodySink*>(user);
  size_t bytes = size * n;
  if (sink->body->size() + bytes > sink->max_bytes) {
    sink->too_large = true;
    return 0;  // aborts the transfer with CURLE_WRITE_ERROR
  }
  sink->body->append(data, bytes);
  return bytes;
}

Result<HttpReply> PerformHttp(const HttpCall& call) {
  InitCurlOnce();
  const std::string shown = UrlForMessage(call.url);
  const std::string what = std::string(call.post_body ? "POST " : "GET ") + shown;
  if (call.timeout_ms <= 0) return Status::InvalidArgument(what + ": timeout_ms must be positive");
  std::unique_ptr<CURL, CurlEasyFree> curl(curl_easy_init());
  if (!curl) return Status::Internal("curl_easy_init failed");
  std::unique_ptr<curl_slist, SlistFree> headers;
  for (const std::string& h : call.headers) {
    curl_slist* l = curl_slist_append(headers.get(), h.c_str());
    if (l == nullptr) return Status::Internal("curl_slist_append failed");
    headers.release();
    headers.reset(l);
  }
  HttpReply reply;
  BodySink sink{&reply.body, call.max_bytes};
  char errbuf[CURL_ERROR_SIZE];
  errbuf[0] = 0;
  CURL* c = curl.get();
  curl_easy_setopt(c, CURLOPT_URL, call.url.c_str());
  curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, call.follow_redirects ? 1L : 0L);
  curl_easy_setopt(c, CURLOPT_MAXREDIRS, static_cast<long>(kMaxOidcRedirects));
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, static_cast<long>(call.timeout_ms));
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS,
                   static_cast<long>(std::min<int64_t>(call.timeout_ms, 30000)));
  curl_easy_setopt(c, CURLOPT_ACCEPT_ENCODING, "");
  curl_easy_setopt(c, CURLOPT_MAXFILESIZE_LARGE, static_cast<curl_off_t>(call.max_bytes));
  curl_easy_setopt(c, CURLOPT_USERAGENT, "lathe/0.1 (+oidc)");
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers.get());
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, &OnBody);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &sink);
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
  if (call.post_body != nullptr) {
    curl_easy_setopt(c, CURLOPT_POST, 1L);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, call.post_body->c_str());
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(call.post_body->size()));
  }
  CURLcode rc = curl_easy_perform(c);
  if (rc == CURLE_OK) {
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &reply.status);
    return reply;
  }
  if (sink.too_large || rc == CURLE_FILESIZE_EXCEEDED) {
    return Status::Unavailable(what + ": the response is larger than " + std::to_string(call.max_bytes) +
                               " bytes");
  }
  if (rc == CURLE_OPERATION_TIMEDOUT) {
    return Status::Unavailable(what + ": no answer within " + std::to_string(call.timeout_ms) + " ms");
  }
  if (rc == CURLE_TOO_MANY_REDIRECTS) {
    return Status::Unavailable(what + ": more than " + std::to_string(kMaxOidcRedirects) + " redirects");
  }
  if (rc == CURLE_UNSUPPORTED_PROTOCOL) {
    return Status::Unavailable(what + ": redirected to a scheme other than http or https");
  }
  std::string detail = errbuf[0] != 0 ? errbuf : curl_easy_strerror(rc);
  return Status::Unavailable(what + ": " + detail);
}

// The token endpoint's RFC 6749 §5.2 error as "invalid_grant: description", or "" when the body is not one.
std::string OAuthError(const std::string& body) {
  auto parsed = ParseJson(body, 8);
  if (!parsed.ok() || !parsed->is_object()) return "";
  std::string error = GetStringOr(*parsed, "error", "");
  if (error.empty()) return "";
  std::string out = Quote(error);
  std::string description = GetStringOr(*parsed, "error_description", "");
  if (!description.empty()) out += ": " + Quote(description);
  return out;
}

}  // namespace

// ---- encodings ----

std::string Base64UrlEncode(std::string_view bytes) { return Base64EncodeWith(bytes, kB64Url, false); }

Result<std::string> Base64UrlDecode(std::string_view text) {
  if (text.size() % 4 == 1) return Status::InvalidArgument("invalid base64url: impossible length");
  std::string out;
  out.reserve(text.size() / 4 * 3 + 2);
  uint32_t acc = 0;
  int bits = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    int v = Base64UrlValue(text[i]);
    if (v < 0) {
      return Status::InvalidArgument("invalid base64url: unexpected character at offset " +
                                     std::to_string(i));
    }
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((acc >> bits) & 0xff));
    }
  }
  if ((acc & ((1u << bits) - 1)) != 0)
    return Status::InvalidArgument("invalid base64url: non-zero trailing bits");
  return out;
}

// ---- PKCE ----

std::string MakePkceVerifier() { return Base64UrlEncode(RandomBytes(48)); }

bool IsValidPkceVerifier(std::string_view verifier) {
  if (verifier.size() < 43 || verifier.size() > 128) return false;
  return std::all_of(verifier.begin(), verifier.end(), [](char ch) {
    unsigned char c = static_cast<unsigned char>(ch);
    return std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~';
  });
}

std::string PkceChallengeS256(std::string_view verifier) { return Base64UrlEncode(Sha256Raw(verifier)); }

// ---- discovery ----

std::string DiscoveryUrl(std::string_view issuer) {
  std::string url(issuer);
  if (!url.empty() && url.back() == '/') url.pop_back();
  return url + "/.well-known/openid-configuration";
}

Result<OidcProviderMetadata> ParseDiscovery(std::string_view json_text, std::string_view expected_issuer) {
  if (json_text.size() > kMaxOidcDocumentBytes) {
    return Status::InvalidArgument("discovery document is larger than " +
                                   std::to_string(kMaxOidcDocumentBytes) + " bytes");
  }
  auto parsed = ParseJson(json_text, kMaxJsonDepth);
  if (!parsed.ok())
    return Status::InvalidArgument("discovery document is not JSON: " + parsed.status().message());
  const Json& doc = *parsed;
  if (!doc.is_object()) return Status::InvalidArgument("discovery document is not a JSON object");

  OidcProviderMetadata md;
  auto iss = doc.find("issuer");
  if (iss == doc.end() || !iss->is_string()) {
    return FieldError("discovery document", "issuer", iss == doc.end() ? "is missing" : "must be a string");
  }
  md.issuer = iss->get<std::string>();
  if (md.issuer != expected_issuer) {
    // OIDC Discovery §4.3: exactly equal, or the document may belong to another issuer.
    return FieldError("discovery document", "issuer",
                      Quote(md.issuer) + " does not match the configured issuer " + Quote(expected_issuer));
  }
  RETURN_IF_ERROR(EndpointField(doc, "authorization_endpoint", true, &md.authorization_endpoint));
  RETURN_IF_ERROR(EndpointField(doc, "token_endpoint", true, &md.token_endpoint));
  RETURN_IF_ERROR(EndpointField(doc, "jwks_uri", true, &md.jwks_uri));
  RETURN_IF_ERROR(EndpointField(doc, "userinfo_endpoint", false, &md.userinfo_endpoint));
  RETURN_IF_ERROR(EndpointField(doc, "end_session_endpoint", false, &md.end_session_endpoint));
  RETURN_IF_ERROR(StringList(doc, "scopes_supported", &md.scopes_supported));
  RETURN_IF_ERROR(
      StringList(doc, "id_token_signing_alg_values_supported", &md.id_token_signing_alg_values_supported));
  RETURN_IF_ERROR(
      StringList(doc, "token_endpoint_auth_methods_supported", &md.token_endpoint_auth_methods_supported));
  RETURN_IF_ERROR(StringList(doc, "code_challenge_methods_supported", &md.code_challenge_methods_supported));
  std::vector<std::string> response_types;
  RETURN_IF_ERROR(StringList(doc, "response_types_supported", &response_types));
  if (!response_types.empty() &&
      std::find(response_types.begin(), response_types.end(), "code") == response_types.end()) {
    return FieldError("discovery document", "response_types_supported",
                      "does not include \"code\" (lathe uses the authorization code flow)");
  }
  const auto& algs = md.id_token_signing_alg_values_supported;
  if (!algs.empty() &&
      std::none_of(algs.begin(), algs.end(), [](const std::string& a) { return IsSupportedAlg(a); })) {
    return FieldError("discovery document", "id_token_signing_alg_values_supported",
                      "has none of RS256, RS384, RS512, ES256");
  }
  return md;
}

// ---- JWKS ----

bool Jwk::Allows(std::string_view jws_alg) const {
  if (!key || !IsSupportedAlg(jws_alg)) return false;
  if (!use.empty() && use != "sig") return false;
  if (!alg.empty() && alg != jws_alg) return false;
  if (jws_alg == "ES256") return kty == "EC" && crv == "P-256";
  return kty == "RSA";
}

Result<Jwks> Jwks::Parse(std::string_view json_text) {
  if (json_text.size() > kMaxOidcDocumentBytes) {
    return Status::InvalidArgument("JWKS is larger than " + std::to_string(kMaxOidcDocumentBytes) + " bytes");
  }
  auto parsed = ParseJson(json_text, kMaxJsonDepth);
  if (!parsed.ok()) return Status::InvalidArgument("JWKS is not JSON: " + parsed.status().message());
  if (!parsed->is_object()) return Status::InvalidArgument("JWKS is not a JSON object");
  auto keys = parsed->find("keys");
  if (keys == parsed->end() || !keys->is_array()) {
    return Status::InvalidArgument("JWKS: keys must be an array")
        .WithDetail(ErrorDetail::Field("keys", "must be an array"));
  }
  Jwks set;
  size_t index = 0;
  for (const Json& k : *keys) {
    size_t i = index++;
    if (i >= kMaxJwksKeys) {
      set.skipped_.push_back("keys after the first " + std::to_string(kMaxJwksKeys) + " are ignored");
      break;
    }
    std::string name = "key " + std::to_string(i);
    if (!k.is_object()) {
      set.skipped_.push_back(name + ": not an object");
      continue;
    }
    Jwk jwk;
    jwk.kid = GetStringOr(k, "kid", "");
    jwk.kty = GetStringOr(k, "kty", "");
    jwk.alg = GetStringOr(k, "alg", "");
    jwk.use = GetStringOr(k, "use", "");
    jwk.crv = GetStringOr(k, "crv", "");
    if (!jwk.kid.empty()) name += " (kid " + Quote(jwk.kid) + ")";
    if (!jwk.use.empty() && jwk.use != "sig") {
      set.skipped_.push_back(name + ": use " + Quote(jwk.use) + " is not \"sig\"");
      continue;
    }
    if (!jwk.alg.empty() && !IsSupportedAlg(jwk.alg)) {
      set.skipped_.push_back(name + ": alg " + Quote(jwk.alg) + " is not supported");
      continue;
    }
    std::string why;
    auto b64 = [&](const char* field) -> std::optional<std::string> {
      auto it = k.find(field);
      if (it == k.end() || !it->is_string()) return std::nullopt;
      auto decoded = Base64UrlDecode(it->get_ref<const std::string&>());
      if (!decoded.ok()) return std::nullopt;
      return std::move(decoded).value();
    };
    if (jwk.kty == "RSA") {
      auto n = b64("n"), e = b64("e");
      if (!n || !e) {
        set.skipped_.push_back(name + ": RSA key without base64url n and e");
        continue;
      }
      jwk.key = RsaPublicKey(*n, *e, &why);
    } else if (jwk.kty == "EC") {
      if (jwk.crv != "P-256") {
        set.skipped_.push_back(name + ": curve " + Quote(jwk.crv) + " is not supported");
        continue;
      }
      auto x = b64("x"), y = b64("y");
      if (!x || !y) {
        set.skipped_.push_back(name + ": EC key without base64url x and y");
        continue;
      }
      jwk.key = P256PublicKey(*x, *y, &why);
    } else {
      set.skipped_.push_back(name + ": kty " + Quote(jwk.kty) + " is not supported");
      continue;
    }
    if (!jwk.key) {
      set.skipped_.push_back(name + ": " + why);
      continue;
    }
    set.keys_.push_back(std::move(jwk));
  }
  return set;
}

Result<const Jwk*> Jwks::Find(std::string_view kid, std::string_view alg) const {
  if (!kid.empty()) {
    bool seen = false;
    for (const Jwk& k : keys_) {
      if (k.kid != kid) continue;
      if (k.Allows(alg)) return &k;
      seen = true;
    }
    if (seen) {
      return Status::Unauthenticated("id token key id " + Quote(kid) + " names a key that does not allow " +
                                     Quote(alg));
    }
    return Status::Unauthenticated("id token key id " + Quote(kid) + " is not in the provider's JWKS");
  }
  const Jwk* found = nullptr;
  size_t count = 0;
  for (const Jwk& k : keys_) {
    if (k.Allows(alg)) {
      found = &k;
      ++count;
    }
  }
  if (count == 1) return found;
  if (count == 0)
    return Status::Unauthenticated("id token key: the provider's JWKS has no key for " + Quote(alg));
  return Status::Unauthenticated("id token has no key id and the provider's JWKS has " +
                                 std::to_string(count) + " keys for " + Quote(alg));
}

// ---- ID token ----

namespace {

struct JwsParts {
  std::string_view header_b64, payload_b64, signature_b64;
};

Result<JwsParts> SplitJws(std::string_view jwt) {
  if (jwt.size() > kMaxIdTokenBytes) {
    return Status::InvalidArgument("id token is larger than " + std::to_string(kMaxIdTokenBytes) + " bytes");
  }
  if (jwt.empty()) return Status::InvalidArgument("id token is empty");
  size_t dots = static_cast<size_t>(std::count(jwt.begin(), jwt.end(), '.'));
  if (dots != 2) {
    return Status::InvalidArgument("id token is not a compact JWS: expected 3 segments, found " +
                                   std::to_string(dots + 1));
  }
  size_t a = jwt.find('.'), b = jwt.find('.', a + 1);
  return JwsParts{jwt.substr(0, a), jwt.substr(a + 1, b - a - 1), jwt.substr(b + 1)};
}

Result<Json> DecodeHeader(std::string_view header_b64) {
  auto raw = Base64UrlDecode(header_b64);
  if (!raw.ok())
    return Status::InvalidArgument("id token header is not base64url: " + raw.status().message());
  auto header = ParseJson(*raw, 8);
  if (!header.ok() || !header->is_object())
    return Status::InvalidArgument("id token header is not a JSON object");
  return std::move(header).value();
}

}  // namespace

Result<Json> DecodeJwtHeader(std::string_view jwt) {
  ASSIGN_OR_RETURN(JwsParts parts, SplitJws(jwt));
  return DecodeHeader(parts.header_b64);
}

Result<Json> VerifyIdToken(std::string_view jwt, const Jwks& jwks, const IdTokenCheck& check) {
  if (check.nonce.empty()) return Status::InvalidArgument("id token check: the expected nonce is required");
  if (check.client_id.empty()) return Status::InvalidArgument("id token check: the client id is required");
  if (check.now_s <= 0)
    return Status::InvalidArgument("id token check: now_s (the current time) is required");
  ASSIGN_OR_RETURN(JwsParts parts, SplitJws(jwt));
  ASSIGN_OR_RETURN(Json header, DecodeHeader(parts.header_b64));
  auto alg_it = header.find("alg");
  if (alg_it == header.end() || !alg_it->is_string()) {
    return Status::InvalidArgument("id token header has no alg");
  }
  const std::string alg = alg_it->get<std::string>();
  if (!IsSupportedAlg(alg)) {
    // Above all "none" and HS*: an HMAC "verified" with a public key proves nothing.
    return Status::Unauthenticated("id token algorithm " + Quote(alg) +
                                   " is not accepted (only RS256, RS384, RS512, ES256)");
  }
  if (header.contains("crit")) {
    return Status::Unauthenticated(
        "id token header has critical extensions (crit) lathe does not understand");
  }
  std::string kid;
  if (auto kid_it = header.find("kid"); kid_it != header.end()) {
    if (!kid_it->is_string()) return Status::InvalidArgument("id token header kid is not a string");
    kid = kid_it->get<std::string>();
  }
  auto payload = Base64UrlDecode(parts.payload_b64);
  if (!payload.ok())
    return Status::InvalidArgument("id token payload is not base64url: " + payload.status().message());
  auto signature = Base64UrlDecode(parts.signature_b64);
  if (!signature.ok()) {
    return Status::InvalidArgument("id token signature is not base64url: " + signature.status().message());
  }
  ASSIGN_OR_RETURN(const Jwk* key, jwks.Find(kid, alg));
  std::string_view signing_input = jwt.substr(0, parts.header_b64.size() + 1 + parts.payload_b64.size());
  if (!VerifySignature(key->key.get(), alg, signing_input, *signature)) {
    return Status::Unauthenticated("id token signature does not verify");
  }

  auto parsed = ParseJson(*payload, kMaxJsonDepth);
  if (!parsed.ok() || !parsed->is_object())
    return Status::InvalidArgument("id token payload is not a JSON object");
  Json claims = std::move(parsed).value();

  // iss (OIDC Core §3.1.3.7 step 2)
  auto iss = claims.find("iss");
  if (iss == claims.end() || !iss->is_string())
    return Status::Unauthenticated("id token issuer (iss) is missing");
  if (iss->get_ref<const std::string&>() != check.expected_issuer) {
    return Status::Unauthenticated("id token issuer " + Quote(iss->get_ref<const std::string&>()) +
                                   " is not the configured issuer " + Quote(check.expected_issuer));
  }
  // aud, azp (steps 3-5)
  std::vector<std::string> auds;
  auto aud = claims.find("aud");
  if (aud == claims.end()) return Status::Unauthenticated("id token audience (aud) is missing");
  if (aud->is_string()) {
    auds.push_back(aud->get<std::string>());
  } else if (aud->is_array() && !aud->empty()) {
    for (const Json& a : *aud) {
      if (!a.is_string()) return Status::Unauthenticated("id token audience (aud) has a non-string entry");
      auds.push_back(a.get<std::string>());
    }
  } else {
    return Status::Unauthenticated("id token audience (aud) is not a string or a non-empty array");
  }
  if (std::find(auds.begin(), auds.end(), check.client_id) == auds.end()) {
    std::string list;
    for (size_t i = 0; i < auds.size() && i < 5; ++i) list += (i ? ", " : "") + Quote(auds[i]);
    if (auds.size() > 5) list += ", …";
    return Status::Unauthenticated("id token audience [" + list + "] does not include the client id " +
                                   Quote(check.client_id));
  }
  auto azp = claims.find("azp");
  if (azp != claims.end()) {
    if (!azp->is_string() || azp->get_ref<const std::string&>() != check.client_id) {
      return Status::Unauthenticated("id token authorized party (azp) " +
                                     (azp->is_string() ? Quote(azp->get_ref<const std::string&>()) : "") +
                                     " is not the client id " + Quote(check.client_id));
    }
  } else if (auds.size() > 1) {
    return Status::Unauthenticated("id token audience has " + std::to_string(auds.size()) +
                                   " entries but no authorized party (azp)");
  }
  // exp, iat, nbf (steps 9-10, RFC 7519 §4.1.4-5)
  const double now = static_cast<double>(check.now_s);
  const double leeway = static_cast<double>(std::max<int64_t>(0, check.leeway_s));
  ASSIGN_OR_RETURN(std::optional<double> exp, NumericDate(claims, "exp"));
  if (!exp) return Status::Unauthenticated("id token expiry (exp) is missing");
  if (now >= *exp + leeway) {
    return Status::Unauthenticated("id token expired at " + FormatSeconds(*exp) + " (now " +
                                   std::to_string(check.now_s) + ", leeway " + FormatSeconds(leeway) + " s)");
  }
  ASSIGN_OR_RETURN(std::optional<double> iat, NumericDate(claims, "iat"));
  if (!iat) return Status::Unauthenticated("id token issue time (iat) is missing");
  if (*iat > now + leeway) {
    return Status::Unauthenticated("id token issue time (iat) " + FormatSeconds(*iat) +
                                   " is in the future (now " + std::to_string(check.now_s) + ")");
  }
  ASSIGN_OR_RETURN(std::optional<double> nbf, NumericDate(claims, "nbf"));
  if (nbf && now + leeway < *nbf) {
    return Status::Unauthenticated("id token is not valid before " + FormatSeconds(*nbf) + " (nbf; now " +
                                   std::to_string(check.now_s) + ")");
  }
  // nonce (step 11)
  auto nonce = claims.find("nonce");
  if (nonce == claims.end() || !nonce->is_string())
    return Status::Unauthenticated("id token nonce is missing");
  if (!ConstantTimeEquals(nonce->get_ref<const std::string&>(), check.nonce)) {
    return Status::Unauthenticated("id token nonce does not match the login's nonce");
  }
  // sub (Core §2: required, at most 255 ASCII characters)
  auto sub = claims.find("sub");
  if (sub == claims.end() || !sub->is_string() || sub->get_ref<const std::string&>().empty()) {
    return Status::Unauthenticated("id token subject (sub) is missing");
  }
  if (sub->get_ref<const std::string&>().size() > kMaxSubBytes) {
    return Status::Unauthenticated("id token subject (sub) is longer than 255 characters");
  }
  return claims;
}

// ---- authorization request, token exchange ----

std::string FormUrlEncode(std::string_view s) { return PercentEncode(s, true); }

std::string BuildAuthorizationUrl(const OidcProviderMetadata& metadata, std::string_view client_id,
                                  std::string_view redirect_uri, std::string_view scope,
                                  std::string_view state, std::string_view nonce,
                                  std::string_view code_challenge,
                                  const std::vector<std::pair<std::string, std::string>>& extra) {
  std::string url = metadata.authorization_endpoint;
  // ParseDiscovery refused fragments; drop one defensively rather than put parameters after it.
  if (size_t hash = url.find('#'); hash != std::string::npos) url.resize(hash);
  char sep = url.find('?') == std::string::npos ? '?' : '&';
  if (!url.empty() && (url.back() == '?' || url.back() == '&')) sep = 0;
  auto add = [&](std::string_view name, std::string_view value) {
    if (sep != 0) url.push_back(sep);
    sep = '&';
    url += PercentEncode(name, false);
    url.push_back('=');
    url += PercentEncode(value, false);
  };
  add("response_type", "code");
  add("client_id", client_id);
  add("redirect_uri", redirect_uri);
  add("scope", scope);
  add("state", state);
  add("nonce", nonce);
  add("code_challenge", code_challenge);
  add("code_challenge_method", "S256");
  for (const auto& [name, value] : extra) add(name, value);
  return url;
}

Result<OidcTokenResponse> ExchangeCode(const OidcProviderMetadata& metadata, std::string_view client_id,
                                       std::string_view client_secret, std::string_view redirect_uri,
                                       std::string_view code, std::string_view code_verifier,
                                       int64_t timeout_ms) {
  if (client_id.empty()) return Status::InvalidArgument("token request: the client id is required");
  if (code.empty() || code.size() > kMaxCodeBytes) {
    return Status::InvalidArgument("token request: the authorization code is empty or longer than " +
                                   std::to_string(kMaxCodeBytes) + " bytes");
  }
  if (!IsValidPkceVerifier(code_verifier)) {
    return Status::InvalidArgument("token request: the code verifier is not 43-128 unreserved characters");
  }
  std::string problem = HttpUrlProblem(metadata.token_endpoint);
  if (!problem.empty()) return Status::InvalidArgument("token_endpoint " + problem);

  std::string body = "grant_type=authorization_code&code=" + FormUrlEncode(code) +
                     "&redirect_uri=" + FormUrlEncode(redirect_uri) +
                     "&code_verifier=" + FormUrlEncode(code_verifier) +
                     "&client_id=" + FormUrlEncode(client_id);
  // client_secret_basic: RFC 6749 §2.3.1 form-encodes both parts before they become Basic credentials.
  std::string credentials = FormUrlEncode(client_id) + ":" + FormUrlEncode(client_secret);
  HttpCall call;
  call.url = metadata.token_endpoint;
  call.headers = {"Content-Type: application/x-www-form-urlencoded", "Accept: application/json",
                  "Authorization: Basic " + Base64EncodeWith(credentials, kB64Std, true), "Expect:"};
  call.post_body = &body;
  call.timeout_ms = timeout_ms;
  call.follow_redirects = false;
  ASSIGN_OR_RETURN(HttpReply reply, PerformHttp(call));

  const std::string endpoint = UrlForMessage(metadata.token_endpoint);
  if (reply.status >= 400 && reply.status < 500) {
    std::string err = OAuthError(reply.body);
    return Status::Unauthenticated("token endpoint refused the authorization code (HTTP " +
                                   std::to_string(reply.status) + ")" + (err.empty() ? "" : ": " + err));
  }
  if (reply.status < 200 || reply.status >= 300) {
    return Status::Unavailable("token endpoint " + endpoint + " returned HTTP " +
                               std::to_string(reply.status));
  }
  auto parsed = ParseJson(reply.body, kMaxJsonDepth);
  if (!parsed.ok() || !parsed->is_object()) {
    return Status::Unavailable("token endpoint " + endpoint + " did not answer with a JSON object");
  }
  const Json& doc = *parsed;
  auto str = [&](const char* field) -> std::string {
    auto it = doc.find(field);
    return it != doc.end() && it->is_string() ? it->get<std::string>() : std::string();
  };
  OidcTokenResponse out;
  out.id_token = str("id_token");
  out.access_token = str("access_token");
  out.token_type = str("token_type");
  out.refresh_token = str("refresh_token");
  out.scope = str("scope");
  if (out.id_token.empty()) {
    return Status::Unavailable("token endpoint " + endpoint +
                               " answered without an id_token (is \"openid\" in "
                               "the scope?)");
  }
  if (out.access_token.empty())
    return Status::Unavailable("token endpoint " + endpoint + " answered without an access_token");
  if (Lower(out.token_type) != "bearer") {
    return Status::Unavailable("token endpoint " + endpoint + " answered with token_type " +
                               Quote(out.token_type) + ", not Bearer");
  }
  if (auto it = doc.find("expires_in"); it != doc.end()) {
    if (it->is_number()) {
      double v = it->get<double>();
      if (std::isfinite(v) && v > 0 && v < 1e12) out.expires_in_s = static_cast<int64_t>(v);
    } else if (it->is_string()) {
      // Some providers send it as a string.
      const std::string& s = it->get_ref<const std::string&>();
      if (!s.empty() && s.size() < 12 &&
          std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; }))
        out.expires_in_s = std::stoll(s);
    }
  }
  return out;
}

Result<std::string> FetchUrlText(const std::string& url, int64_t timeout_ms, size_t max_bytes) {
  std::string problem = HttpUrlProblem(url);
  if (!problem.empty()) return Status::InvalidArgument("URL " + problem);
  HttpCall call;
  call.url = url;
  call.headers = {"Accept: application/json"};
  call.timeout_ms = timeout_ms;
  call.max_bytes = max_bytes;
  call.follow_redirects = true;
  ASSIGN_OR_RETURN(HttpReply reply, PerformHttp(call));
  if (reply.status < 200 || reply.status >= 300) {
    return Status::Unavailable("GET " + UrlForMessage(url) + " returned HTTP " +
                               std::to_string(reply.status));
  }
  return std::move(reply.body);
}

// ---- claims ----

std::optional<std::string> ClaimString(const Json& claims, std::string_view name) {
  const Json* v = FindClaim(claims, name);
  if (v == nullptr || !v->is_string()) return std::nullopt;
  return v->get<std::string>();
}

std::vector<std::string> ClaimGroups(const Json& claims, std::string_view name) {
  std::vector<std::string> out;
  std::set<std::string, std::less<>> seen;
  auto add = [&](std::string_view g) {
    while (!g.empty() && std::isspace(static_cast<unsigned char>(g.front()))) g.remove_prefix(1);
    while (!g.empty() && std::isspace(static_cast<unsigned char>(g.back()))) g.remove_suffix(1);
    if (g.empty() || g.size() > kMaxGroupBytes || out.size() >= kMaxGroups) return;
    if (seen.insert(std::string(g)).second) out.emplace_back(g);
  };
  const Json* v = FindClaim(claims, name);
  if (v == nullptr) return out;
  if (v->is_array()) {
    for (const Json& g : *v) {
      if (g.is_string()) add(g.get_ref<const std::string&>());
    }
  } else if (v->is_string()) {
    const std::string& s = v->get_ref<const std::string&>();
    size_t start = 0;
    for (size_t i = 0; i <= s.size(); ++i) {
      if (i == s.size() || s[i] == ',' || std::isspace(static_cast<unsigned char>(s[i]))) {
        add(std::string_view(s).substr(start, i - start));
        start = i + 1;
      }
    }
  }
  return out;
}

// ---- OidcClient ----

Result<std::unique_ptr<OidcClient>> OidcClient::Create(OidcClientOptions options) {
  auto bad = [](const std::string& field, const std::string& msg) {
    return Status::InvalidArgument("OIDC option " + field + " " + msg)
        .WithDetail(ErrorDetail::Field(field, msg));
  };
  if (std::string p = HttpUrlProblem(options.issuer); !p.empty()) return bad("issuer", p);
  if (options.issuer.find('?') != std::string::npos) {
    return bad("issuer", "must not contain a query string");
  }
  if (std::string p = HttpUrlProblem(options.redirect_uri); !p.empty()) return bad("redirect_uri", p);
  if (options.client_id.empty()) return bad("client_id", "is required");
  bool has_openid = false;
  for (size_t start = 0; start <= options.scope.size();) {
    size_t sp = options.scope.find(' ', start);
    if (options.scope.substr(start, sp == std::string::npos ? std::string::npos : sp - start) == "openid") {
      has_openid = true;
    }
    if (sp == std::string::npos) break;
    start = sp + 1;
  }
  if (!has_openid) return bad("scope", "must contain \"openid\"");
  if (options.http_timeout_ms <= 0) return bad("http_timeout_ms", "must be positive");
  if (options.metadata_ttl_s < 0) return bad("metadata_ttl_s", "must not be negative");
  if (options.min_jwks_refresh_interval_s < 0)
    return bad("min_jwks_refresh_interval_s", "must not be negative");
  if (options.leeway_s < 0 || options.leeway_s > 3600) return bad("leeway_s", "must be 0..3600");
  return std::unique_ptr<OidcClient>(new OidcClient(std::move(options)));
}

void OidcClient::Invalidate() {
  std::lock_guard<std::mutex> lock(mu_);
  metadata_.reset();
  jwks_.reset();
  jwks_uri_.clear();
  metadata_fetched_us_ = jwks_fetched_us_ = 0;
}

Result<OidcProviderMetadata> OidcClient::Metadata() {
  const int64_t now_us = MonotonicMicros();
  std::shared_ptr<const OidcProviderMetadata> cached;
  {
    std::lock_guard<std::mutex> lock(mu_);
    cached = metadata_;
    if (cached && now_us - metadata_fetched_us_ < options_.metadata_ttl_s * 1000000) return *cached;
  }
  // Fetched without the lock: concurrent callers may both fetch once, which is harmless.
  const std::string url = DiscoveryUrl(options_.issuer);
  Status failure;
  auto text = FetchUrlText(url, options_.http_timeout_ms);
  if (text.ok()) {
    auto md = ParseDiscovery(*text, options_.issuer);
    if (md.ok()) {
      auto fresh = std::make_shared<const OidcProviderMetadata>(std::move(md).value());
      std::lock_guard<std::mutex> lock(mu_);
      metadata_ = fresh;
      metadata_fetched_us_ = now_us;
      return *fresh;
    }
    failure =
        Status::Unavailable("identity provider at " + UrlForMessage(url) + ": " + md.status().message());
  } else {
    failure = Status::Unavailable("identity provider discovery: " + text.status().message());
  }
  if (cached) {
    LogWarn("oidc: discovery refresh failed; keeping the cached document", {{"error", failure.message()}});
    return *cached;
  }
  return failure;
}

Result<std::shared_ptr<const Jwks>> OidcClient::CurrentJwks(const OidcProviderMetadata& md,
                                                            bool force_refresh) {
  const int64_t now_us = MonotonicMicros();
  std::shared_ptr<const Jwks> cached;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (jwks_ && jwks_uri_ == md.jwks_uri) {
      cached = jwks_;
      int64_t age_us = now_us - jwks_fetched_us_;
      if (!force_refresh && age_us < options_.metadata_ttl_s * 1000000) return cached;
      // An unknown kid refetches at most once per interval, so tokens with made-up kids cannot make lathe
      // hammer the provider.
      if (force_refresh && age_us < options_.min_jwks_refresh_interval_s * 1000000) return cached;
    }
  }
  Status failure;
  auto text = FetchUrlText(md.jwks_uri, options_.http_timeout_ms);
  if (text.ok()) {
    auto parsed = Jwks::Parse(*text);
    if (parsed.ok()) {
      auto fresh = std::make_shared<const Jwks>(std::move(parsed).value());
      for (const std::string& s : fresh->skipped()) LogDebug("oidc: JWKS key skipped", {{"why", s}});
      std::lock_guard<std::mutex> lock(mu_);
      jwks_ = fresh;
      jwks_uri_ = md.jwks_uri;
      jwks_fetched_us_ = now_us;
      return fresh;
    }
    failure = Status::Unavailable("identity provider at " + UrlForMessage(md.jwks_uri) + ": " +
                                  parsed.status().message());
  } else {
    failure = Status::Unavailable("identity provider JWKS: " + text.status().message());
  }
  if (cached) {
    LogWarn("oidc: JWKS refresh failed; keeping the cached keys", {{"error", failure.message()}});
    std::lock_guard<std::mutex> lock(mu_);
    // Count the failed attempt as a refresh so a provider outage is not retried on every request.
    if (jwks_ == cached) jwks_fetched_us_ = now_us;
    return cached;
  }
  return failure;
}

Result<OidcLoginStart> OidcClient::StartLogin(const std::vector<std::pair<std::string, std::string>>& extra) {
  ASSIGN_OR_RETURN(OidcProviderMetadata md, Metadata());
  OidcLoginStart start;
  start.state = Base64UrlEncode(RandomBytes(24));
  start.nonce = Base64UrlEncode(RandomBytes(24));
  start.code_verifier = MakePkceVerifier();
  start.url = BuildAuthorizationUrl(md, options_.client_id, options_.redirect_uri, options_.scope,
                                    start.state, start.nonce, PkceChallengeS256(start.code_verifier), extra);
  return start;
}

Result<Json> OidcClient::FinishLogin(std::string_view code, std::string_view code_verifier,
                                     std::string_view nonce, int64_t now_s) {
  ASSIGN_OR_RETURN(OidcProviderMetadata md, Metadata());
  ASSIGN_OR_RETURN(OidcTokenResponse tokens,
                   ExchangeCode(md, options_.client_id, options_.client_secret, options_.redirect_uri, code,
                                code_verifier, options_.http_timeout_ms));
  return VerifyIdToken(tokens.id_token, nonce, now_s);
}

Result<Json> OidcClient::VerifyIdToken(std::string_view id_token, std::string_view nonce, int64_t now_s) {
  ASSIGN_OR_RETURN(OidcProviderMetadata md, Metadata());
  ASSIGN_OR_RETURN(Json header, DecodeJwtHeader(id_token));
  const std::string kid =
      header.contains("kid") && header["kid"].is_string() ? header["kid"].get<std::string>() : "";
  const std::string alg =
      header.contains("alg") && header["alg"].is_string() ? header["alg"].get<std::string>() : "";
  ASSIGN_OR_RETURN(std::shared_ptr<const Jwks> jwks, CurrentJwks(md, false));
  if (IsSupportedAlg(alg) && !jwks->Find(kid, alg).ok()) {
    // The provider may have rotated its keys since we fetched them.
    ASSIGN_OR_RETURN(jwks, CurrentJwks(md, true));
  }
  IdTokenCheck check;
  check.expected_issuer = options_.issuer;
  check.client_id = options_.client_id;
  check.nonce = std::string(nonce);
  check.now_s = now_s != 0 ? now_s : NowMicros() / 1000000;
  check.leeway_s = options_.leeway_s;
  return lathe::VerifyIdToken(id_token, *jwks, check);
}

}  // namespace lathe
