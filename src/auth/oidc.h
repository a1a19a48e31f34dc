// OpenID Connect single sign-on, relying-party side (authorization code flow with PKCE, client_secret_basic).
//
// The pieces, from the bottom up:
//   - base64url (RFC 4648 §5, no padding), PKCE S256 (RFC 7636);
//   - provider metadata from OIDC Discovery, checked against the configured issuer (Discovery §4.3);
//   - a JWK set (RSA and EC P-256 signing keys) as OpenSSL 3 EVP_PKEYs;
//   - ID token verification (OIDC Core §3.1.3.7): signature (RS256/RS384/RS512/ES256 only — never "none",
//     never an HMAC algorithm), iss, aud/azp, exp/iat/nbf with leeway, nonce, sub;
//   - the authorization URL and the token request (libcurl, bounded and timed out);
//   - OidcClient, which caches discovery and the JWKS and refreshes the JWKS when a token names an unknown
//     key id (key rotation).
// The HTTP routes, the state/nonce/verifier cookie and the mapping of claims to users live in the api layer.
//
// Errors. A token that is not a well-formed JWS (segments, base64url, JSON header/payload, size) is
// kInvalidArgument; a well-formed token that must not be trusted (algorithm, key, signature, any claim) is
// kUnauthenticated; each message says what failed ("id token signature does not verify", "id token audience
// …", "id token expired …"). Trouble talking to the provider (network, timeout, HTTP 5xx, oversized or
// malformed discovery/JWKS documents) is kUnavailable naming the URL; the token endpoint refusing the code
// (HTTP 4xx) is kUnauthenticated with the provider's error and error_description. No message contains a
// secret, a code, a verifier or a token.
//
// Thread safety: free functions are thread-safe; a Jwks is immutable after Parse and may be shared; an
// OidcClient is thread-safe and holds no lock across network I/O.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/json.h"
#include "common/status.h"

struct evp_pkey_st;  // OpenSSL's EVP_PKEY, kept out of this header

namespace lathe {

// Named limits.
inline constexpr size_t kMaxIdTokenBytes = 16 << 10;        // a longer token is refused unparsed
inline constexpr size_t kMaxOidcDocumentBytes = 512 << 10;  // discovery, JWKS and token responses
inline constexpr size_t kMaxJwksKeys = 64;                  // keys looked at in one JWK set
inline constexpr int kMaxOidcRedirects = 3;                 // redirects followed on discovery/JWKS GETs
inline constexpr int kMinRsaKeyBits = 2048;                 // smaller RSA keys are ignored

// ---- encodings ----

// base64url without padding (RFC 7515 §2).
std::string Base64UrlEncode(std::string_view bytes);
// Strict: only [A-Za-z0-9_-], no padding, no whitespace, no impossible length (len % 4 == 1), and unused
// trailing bits must be zero (so each byte string has exactly one encoding). kInvalidArgument otherwise.
Result<std::string> Base64UrlDecode(std::string_view text);

// ---- PKCE (RFC 7636) ----

// 64 characters from the unreserved set [A-Za-z0-9-._~], 384 bits from the OS CSPRNG.
std::string MakePkceVerifier();
// True for 43-128 characters of [A-Za-z0-9-._~] (RFC 7636 §4.1).
bool IsValidPkceVerifier(std::string_view verifier);
// BASE64URL(SHA256(ASCII(verifier))) (RFC 7636 §4.2).
std::string PkceChallengeS256(std::string_view verifier);

// ---- discovery ----

struct OidcProviderMetadata {
  std::string issuer;
  std::string authorization_endpoint;
  std::string token_endpoint;
  std::string jwks_uri;
  std::string userinfo_endpoint;     // "" when the provider has none
  std::string end_session_endpoint;  // "" when the provider has none (RP-initiated logout)
  // As advertised; empty when the provider does not say.
  std::vector<std::string> scopes_supported;
  std::vector<std::string> id_token_signing_alg_values_supported;
  std::vector<std::string> token_endpoint_auth_methods_supported;
  std::vector<std::string> code_challenge_methods_supported;
};

// issuer + "/.well-known/openid-configuration" (a trailing slash of the issuer is not doubled).
std::string DiscoveryUrl(std::string_view issuer);

// Parses a discovery document. `issuer` must equal expected_issuer exactly (byte for byte; no slash
// normalisation); authorization_endpoint, token_endpoint and jwks_uri are required absolute http(s) URLs with
// a host and no fragment (userinfo/end_session likewise when present); when the provider lists its ID token
// algorithms, at least one must be one lathe verifies. kInvalidArgument naming the field.
Result<OidcProviderMetadata> ParseDiscovery(std::string_view json_text, std::string_view expected_issuer);

// ---- JWKS ----

struct Jwk {
  std::string kid;  // may be ""
  std::string kty;  // "RSA" or "EC"
  std::string crv;  // "P-256" for EC, "" for RSA
  std::string alg;  // as published; "" when the key does not restrict it
  std::string use;  // as published; "" or "sig"
  std::shared_ptr<evp_pkey_st> key;

  // Whether this key may verify a JWS with `alg` (RS* needs RSA, ES256 an EC P-256 key; a published alg
  // must match exactly; a published use must be "sig").
  bool Allows(std::string_view jws_alg) const;
};

// An immutable JWK set. Keys of kinds lathe does not verify with (oct, OKP, other curves, encryption keys,
// RSA under kMinRsaKeyBits, broken parameters) are skipped, not errors.
class Jwks {
 public:
  Jwks() = default;
  // kInvalidArgument when the text is not a JSON object with a "keys" array or is over
  // kMaxOidcDocumentBytes. An empty usable set is not an error (find will fail).
  static Result<Jwks> Parse(std::string_view json_text);

  // The key for a token's header. With a kid: the key with that kid that allows `alg`. Without one: the only
  // key that allows `alg` (several candidates = ambiguous). kUnauthenticated naming the kid otherwise.
  Result<const Jwk*> Find(std::string_view kid, std::string_view alg) const;

  const std::vector<Jwk>& keys() const { return keys_; }
  // One line per skipped key ("key 2 (kid \"x\"): kty \"oct\" is not supported"), for diagnostics.
  const std::vector<std::string>& skipped() const { return skipped_; }

 private:
  std::vector<Jwk> keys_;
  std::vector<std::string> skipped_;
};

// ---- ID token ----

struct IdTokenCheck {
  std::string expected_issuer;
  std::string client_id;  // the audience
  std::string nonce;      // required: the nonce sent with the authorization request
  int64_t now_s = 0;      // Unix seconds
  int64_t leeway_s = 60;  // clock skew allowed on exp, nbf and iat
};

// The JOSE header of a compact JWS, decoded but not verified (alg, kid, typ …). kInvalidArgument when the
// token is oversized, not three segments, or the header is not a base64url JSON object.
Result<Json> DecodeJwtHeader(std::string_view jwt);

// Verifies an ID token and returns its claims (the payload object). See the file comment for error codes.
// Requires: three segments; header alg RS256/RS384/RS512/ES256 and no "crit"; a JWKS key that allows the alg
// (by kid, or the only one without a kid); a valid signature (ES256: 64-byte R||S); iss == expected_issuer;
// aud == client_id or an array containing it (several audiences need azp == client_id; azp, when present,
// must be client_id); exp > now - leeway; iat present and not after now + leeway; nbf (if present)
// <= now + leeway; nonce == check.nonce; sub a non-empty string.
Result<Json> VerifyIdToken(std::string_view jwt, const Jwks& jwks, const IdTokenCheck& check);

// ---- authorization request and token exchange ----

// "application/x-www-form-urlencoded" encoding of one value: unreserved characters kept, space as '+',
// everything else %XX (upper-case hex).
std::string FormUrlEncode(std::string_view s);

// authorization_endpoint with response_type=code, client_id, redirect_uri, scope, state, nonce,
// code_challenge and code_challenge_method=S256 (then `extra`, e.g. {"prompt","login"}) appended to its
// query, every value percent-encoded (RFC 3986 unreserved kept, space as %20). A query string already in
// the endpoint is kept.
std::string BuildAuthorizationUrl(const OidcProviderMetadata& metadata, std::string_view client_id,
                                  std::string_view redirect_uri, std::string_view scope,
                                  std::string_view state, std::string_view nonce,
                                  std::string_view code_challenge,
                                  const std::vector<std::pair<std::string, std::string>>& extra = {});

struct OidcTokenResponse {
  std::string id_token;
  std::string access_token;
  std::string token_type;     // "Bearer"
  std::string refresh_token;  // "" when none
  std::string scope;          // "" when the provider did not say
  int64_t expires_in_s = 0;   // 0 when the provider did not say
};

// The authorization code grant (RFC 6749 §4.1.3 + RFC 7636 §4.5): POSTs grant_type, code, redirect_uri,
// code_verifier and client_id to the token endpoint with client_secret_basic (Basic auth of the
// form-urlencoded id and secret, RFC 6749 §2.3.1). Requires an id_token and token_type Bearer in the answer.
// HTTP 4xx: kUnauthenticated "token endpoint refused the authorization code: <error>: <error_description>";
// network, timeout, 5xx, oversized or malformed answers: kUnavailable.
Result<OidcTokenResponse> ExchangeCode(const OidcProviderMetadata& metadata, std::string_view client_id,
                                       std::string_view client_secret, std::string_view redirect_uri,
                                       std::string_view code, std::string_view code_verifier,
                                       int64_t timeout_ms);

// GET of a small text document (discovery, JWKS): only http/https, at most kMaxOidcRedirects redirects (also
// http/https only), `timeout_ms` for the whole request, at most `max_bytes` of body. A URL that is not
// absolute http(s) is kInvalidArgument; any network failure, timeout, oversized body or non-2xx status is
// kUnavailable naming the URL (without its query string). No address policy: the URLs come from the admin's
// configuration and the issuer's own discovery document (loopback works).
Result<std::string> FetchUrlText(const std::string& url, int64_t timeout_ms,
                                 size_t max_bytes = kMaxOidcDocumentBytes);

// ---- claims ----

// The string value of claim `name`; a name with dots that is not itself a claim is a path into nested
// objects ("realm_access.roles" style). nullopt when absent or not a string.
std::optional<std::string> ClaimString(const Json& claims, std::string_view name);
// Group names from claim `name` (same lookup as ClaimString): an array of strings (other elements
// ignored), or one string split on spaces and commas. Trimmed, empties dropped, duplicates removed, order
// kept, at most 1000 groups. Empty when absent.
std::vector<std::string> ClaimGroups(const Json& claims, std::string_view name);

// ---- client ----

struct OidcClientOptions {
  std::string issuer;  // exactly as the provider's discovery document states it
  std::string client_id;
  std::string client_secret;
  std::string redirect_uri;                    // lathe's callback URL, registered at the provider
  std::string scope = "openid profile email";  // must contain "openid"
  int64_t http_timeout_ms = 10000;
  int64_t metadata_ttl_s = 3600;             // discovery and JWKS are refetched after this
  int64_t min_jwks_refresh_interval_s = 30;  // an unknown kid refetches the JWKS at most this often
  int64_t leeway_s = 60;
};

// What the login route keeps (in a short-lived, signed/encrypted cookie or server-side) between sending the
// browser to the provider and the callback.
struct OidcLoginStart {
  std::string url;    // send the browser here (302)
  std::string state;  // compare with the callback's state (constant time) before anything else
  std::string nonce;
  std::string code_verifier;  // secret: never log it
};

class OidcClient {
 public:
  // Validates options (no network): issuer/redirect_uri http(s) URLs, client_id set, scope has "openid",
  // positive timeouts. kInvalidArgument naming the option.
  static Result<std::unique_ptr<OidcClient>> Create(OidcClientOptions options);

  const OidcClientOptions& options() const { return options_; }

  // Discovery document, fetched on first use and after metadata_ttl_s. When a refetch fails, the previous
  // document keeps being used (and the failure logged); with nothing cached the failure is kUnavailable.
  // The JWKS is cached the same way.
  Result<OidcProviderMetadata> Metadata();
  // Fresh state, nonce and PKCE verifier, and the authorization URL carrying them (+ `extra` parameters).
  Result<OidcLoginStart> StartLogin(const std::vector<std::pair<std::string, std::string>>& extra = {});
  // Exchanges the callback's code and verifies the ID token against the nonce of the same login; returns
  // the verified claims. now_s = 0 means the wall clock.
  Result<Json> FinishLogin(std::string_view code, std::string_view code_verifier, std::string_view nonce,
                           int64_t now_s = 0);
  // Verifies an ID token with the cached JWKS, refetching it once when the token names a key the cached set
  // lacks (at most once per min_jwks_refresh_interval_s). now_s = 0 means the wall clock.
  Result<Json> VerifyIdToken(std::string_view id_token, std::string_view nonce, int64_t now_s = 0);

  // Drops the cached discovery document and JWKS (configuration change, tests).
  void Invalidate();

 private:
  explicit OidcClient(OidcClientOptions options) : options_(std::move(options)) {}
  Result<std::shared_ptr<const Jwks>> CurrentJwks(const OidcProviderMetadata& md, bool force_refresh);

  const OidcClientOptions options_;
  mutable std::mutex mu_;
  // Guarded by mu_. Times are monotonic microseconds.
  std::shared_ptr<const OidcProviderMetadata> metadata_;
  int64_t metadata_fetched_us_ = 0;
  std::shared_ptr<const Jwks> jwks_;
  std::string jwks_uri_;  // the URL jwks_ came from (a changed discovery document refetches)
  int64_t jwks_fetched_us_ = 0;
};

}  // namespace lathe
