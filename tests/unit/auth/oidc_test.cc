#include "auth/oidc.h"

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <functional>
#include <map>
#include <thread>

#include "common/crypto.h"

namespace lathe {
namespace {

constexpr char kIssuer[] = "https://idp.example.com/realms/lathe";
constexpr char kClient[] = "lathe-client";
constexpr char kNonce[] = "n-0S6_WzA2Mj";
constexpr int64_t kNow = 1700000000;

// ---- keys and signing, done with OpenSSL directly so the code under test does not check itself ----

struct PkeyDeleter {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
using Pkey = std::unique_ptr<EVP_PKEY, PkeyDeleter>;

std::string BnBytes(const BIGNUM* bn, int pad = 0) {
  std::string out(pad > 0 ? pad : BN_num_bytes(bn), '\0');
  if (pad > 0) {
    BN_bn2binpad(bn, reinterpret_cast<unsigned char*>(out.data()), pad);
  } else {
    BN_bn2bin(bn, reinterpret_cast<unsigned char*>(out.data()));
  }
  return out;
}

std::string BnParam(EVP_PKEY* k, const char* name, int pad = 0) {
  BIGNUM* bn = nullptr;
  EXPECT_EQ(EVP_PKEY_get_bn_param(k, name, &bn), 1) << name;
  std::string out = BnBytes(bn, pad);
  BN_free(bn);
  return out;
}

struct TestKey {
  Pkey pkey;
  std::string kid;
  std::string alg;  // RS256 / ES256 (the JWK's alg, "" to leave it out)
  Json Jwk() const {
    Json j;
    if (EVP_PKEY_is_a(pkey.get(), "RSA")) {
      j = {{"kty", "RSA"},
           {"n", Base64UrlEncode(BnParam(pkey.get(), OSSL_PKEY_PARAM_RSA_N))},
           {"e", Base64UrlEncode(BnParam(pkey.get(), OSSL_PKEY_PARAM_RSA_E))}};
    } else {
      j = {{"kty", "EC"},
           {"crv", "P-256"},
           {"x", Base64UrlEncode(BnParam(pkey.get(), OSSL_PKEY_PARAM_EC_PUB_X, 32))},
           {"y", Base64UrlEncode(BnParam(pkey.get(), OSSL_PKEY_PARAM_EC_PUB_Y, 32))}};
    }
    if (!kid.empty()) j["kid"] = kid;
    if (!alg.empty()) j["alg"] = alg;
    j["use"] = "sig";
    return j;
  }
  std::string PublicPem() const {
    BIO* bio = BIO_new(BIO_s_mem());
    PEM_write_bio_PUBKEY(bio, pkey.get());
    char* data = nullptr;
    long len = BIO_get_mem_data(bio, &data);
    std::string out(data, static_cast<size_t>(len));
    BIO_free(bio);
    return out;
  }
};

TestKey MakeRsaKey(const std::string& kid, unsigned bits = 2048) {
  return TestKey{Pkey(EVP_RSA_gen(bits)), kid, "RS256"};
}
TestKey MakeEcKey(const std::string& kid, const char* curve = "P-256") {
  return TestKey{Pkey(EVP_EC_gen(curve)), kid, "ES256"};
}

std::string SignRaw(EVP_PKEY* key, const std::string& alg, const std::string& input) {
  const EVP_MD* md = alg == "RS384" ? EVP_sha384() : alg == "RS512" ? EVP_sha512() : EVP_sha256();
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  size_t len = 0;
  EXPECT_EQ(EVP_DigestSignInit(ctx, nullptr, md, nullptr, key), 1);
  EXPECT_EQ(
      EVP_DigestSign(ctx, nullptr, &len, reinterpret_cast<const unsigned char*>(input.data()), input.size()),
      1);
  std::string sig(len, '\0');
  EXPECT_EQ(EVP_DigestSign(ctx, reinterpret_cast<unsigned char*>(sig.data()), &len,
                           reinterpret_cast<const unsigned char*>(input.data()), input.size()),
            1);
  sig.resize(len);
  EVP_MD_CTX_free(ctx);
  if (alg != "ES256") return sig;
  // DER -> JWS R || S.
  const unsigned char* p = reinterpret_cast<const unsigned char*>(sig.data());
  ECDSA_SIG* es = d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(sig.size()));
  const BIGNUM *r = nullptr, *s = nullptr;
  ECDSA_SIG_get0(es, &r, &s);
  std::string out = BnBytes(r, 32) + BnBytes(s, 32);
  ECDSA_SIG_free(es);
  return out;
}

std::string MakeJwt(const Json& header, const Json& claims, EVP_PKEY* key, const std::string& alg) {
  std::string input = Base64UrlEncode(header.dump()) + "." + Base64UrlEncode(claims.dump());
  return input + "." + Base64UrlEncode(SignRaw(key, alg, input));
}

std::string MakeJwt(const TestKey& key, const Json& claims, std::string alg = "") {
  if (alg.empty()) alg = key.alg;
  Json header = {{"alg", alg}, {"typ", "JWT"}};
  if (!key.kid.empty()) header["kid"] = key.kid;
  return MakeJwt(header, claims, key.pkey.get(), alg);
}

Json GoodClaims() {
  return {
      {"iss", kIssuer},    {"aud", kClient},  {"sub", "user-123"},          {"iat", kNow - 10},
      {"exp", kNow + 300}, {"nonce", kNonce}, {"email", "ann@example.com"}, {"preferred_username", "ann"}};
}

IdTokenCheck Check() {
  IdTokenCheck c;
  c.expected_issuer = kIssuer;
  c.client_id = kClient;
  c.nonce = kNonce;
  c.now_s = kNow;
  return c;
}

// Shared keys: RSA generation is slow enough to do once.
class OidcTokenTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    rsa_ = new TestKey(MakeRsaKey("rsa-1"));
    ec_ = new TestKey(MakeEcKey("ec-1"));
    other_rsa_ = new TestKey(MakeRsaKey("rsa-1"));  // same kid, unpublished key
    Json set = {{"keys", Json::array({rsa_->Jwk(), ec_->Jwk()})}};
    jwks_ = new Jwks(std::move(Jwks::Parse(set.dump())).value());
  }
  static void TearDownTestSuite() {
    delete rsa_;
    delete ec_;
    delete other_rsa_;
    delete jwks_;
  }
  static Result<Json> Verify(const std::string& jwt, const IdTokenCheck& check = Check()) {
    return VerifyIdToken(jwt, *jwks_, check);
  }
  static void ExpectRefused(const std::string& jwt, StatusCode code, const std::string& message_part,
                            const IdTokenCheck& check = Check()) {
    auto r = Verify(jwt, check);
    ASSERT_FALSE(r.ok()) << "expected refusal containing: " << message_part;
    EXPECT_EQ(r.status().code(), code) << r.status().ToString();
    EXPECT_NE(r.status().message().find(message_part), std::string::npos) << r.status().message();
  }
  static TestKey* rsa_;
  static TestKey* ec_;
  static TestKey* other_rsa_;
  static Jwks* jwks_;
};
TestKey* OidcTokenTest::rsa_ = nullptr;
TestKey* OidcTokenTest::ec_ = nullptr;
TestKey* OidcTokenTest::other_rsa_ = nullptr;
Jwks* OidcTokenTest::jwks_ = nullptr;

// ---- encodings and PKCE ----

TEST(Base64Url, RoundTripsAndIsStrict) {
  for (const std::string& s : std::vector<std::string>{"", "f", "fo", "foo", "foob", "fooba", "foobar",
                                                       std::string("\xff\xfe\x00\x01", 4)}) {
    std::string enc = Base64UrlEncode(s);
    EXPECT_EQ(enc.find('='), std::string::npos);
    auto dec = Base64UrlDecode(enc);
    ASSERT_TRUE(dec.ok()) << enc;
    EXPECT_EQ(*dec, s);
  }
  EXPECT_EQ(Base64UrlEncode("\xfb\xff"), "-_8");
  EXPECT_FALSE(Base64UrlDecode("Zm9v+g").ok());   // standard alphabet
  EXPECT_FALSE(Base64UrlDecode("Zm8=").ok());     // padding
  EXPECT_FALSE(Base64UrlDecode("Zm9v Zg").ok());  // whitespace
  EXPECT_FALSE(Base64UrlDecode("Zm9vY").ok());    // impossible length
  EXPECT_FALSE(Base64UrlDecode("QR").ok());       // non-zero trailing bits
  EXPECT_TRUE(Base64UrlDecode("QQ").ok());
}

TEST(Pkce, Rfc7636AppendixB) {
  EXPECT_EQ(PkceChallengeS256("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM");
}

TEST(Pkce, VerifiersAreValidAndFresh) {
  std::string a = MakePkceVerifier(), b = MakePkceVerifier();
  EXPECT_TRUE(IsValidPkceVerifier(a));
  EXPECT_GE(a.size(), 43u);
  EXPECT_LE(a.size(), 128u);
  EXPECT_NE(a, b);
  EXPECT_FALSE(IsValidPkceVerifier(std::string(42, 'a')));
  EXPECT_FALSE(IsValidPkceVerifier(std::string(129, 'a')));
  EXPECT_FALSE(IsValidPkceVerifier(std::string(43, 'a') + "+"));
  EXPECT_TRUE(IsValidPkceVerifier(std::string(40, 'a') + "-._~"));
}

TEST(FormEncoding, SpacesAndReserved) {
  EXPECT_EQ(FormUrlEncode("a b+c&d=e/é~"), "a+b%2Bc%26d%3De%2F%C3%A9~");
  EXPECT_EQ(FormUrlEncode("client:id"), "client%3Aid");
}

// ---- discovery ----

Json GoodDiscovery() {
  return {{"issuer", kIssuer},
          {"authorization_endpoint", std::string(kIssuer) + "/protocol/openid-connect/auth"},
          {"token_endpoint", std::string(kIssuer) + "/protocol/openid-connect/token"},
          {"jwks_uri", std::string(kIssuer) + "/protocol/openid-connect/certs"},
          {"userinfo_endpoint", std::string(kIssuer) + "/protocol/openid-connect/userinfo"},
          {"response_types_supported", {"code", "id_token"}},
          {"id_token_signing_alg_values_supported", {"RS256", "ES256"}},
          {"code_challenge_methods_supported", {"plain", "S256"}}};
}

void ExpectDiscoveryError(const Json& doc, const std::string& part, const std::string& issuer = kIssuer) {
  auto r = ParseDiscovery(doc.dump(), issuer);
  ASSERT_FALSE(r.ok()) << part;
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find(part), std::string::npos) << r.status().message();
}

TEST(Discovery, ParsesGoodDocument) {
  auto md = ParseDiscovery(GoodDiscovery().dump(), kIssuer);
  ASSERT_TRUE(md.ok()) << md.status().ToString();
  EXPECT_EQ(md->issuer, kIssuer);
  EXPECT_EQ(md->token_endpoint, std::string(kIssuer) + "/protocol/openid-connect/token");
  EXPECT_EQ(md->userinfo_endpoint, std::string(kIssuer) + "/protocol/openid-connect/userinfo");
  EXPECT_EQ(md->end_session_endpoint, "");
  EXPECT_EQ(md->code_challenge_methods_supported.size(), 2u);
  Json no_userinfo = GoodDiscovery();
  no_userinfo.erase("userinfo_endpoint");
  EXPECT_TRUE(ParseDiscovery(no_userinfo.dump(), kIssuer).ok());
  // Loopback http issuers work (tests, local providers).
  Json local = GoodDiscovery();
  local["issuer"] = "http://127.0.0.1:5556";
  local["jwks_uri"] = "http://127.0.0.1:5556/jwks";
  EXPECT_TRUE(ParseDiscovery(local.dump(), "http://127.0.0.1:5556").ok());
  EXPECT_EQ(DiscoveryUrl("https://a.example/x/"), "https://a.example/x/.well-known/openid-configuration");
  EXPECT_EQ(DiscoveryUrl("https://a.example"), "https://a.example/.well-known/openid-configuration");
}

TEST(Discovery, IssuerMustMatchExactly) {
  ExpectDiscoveryError(GoodDiscovery(), "issuer", std::string(kIssuer) + "/");
  ExpectDiscoveryError(GoodDiscovery(), "does not match the configured issuer", "https://evil.example.com");
  Json doc = GoodDiscovery();
  doc.erase("issuer");
  ExpectDiscoveryError(doc, "issuer is missing");
  doc["issuer"] = 7;
  ExpectDiscoveryError(doc, "issuer must be a string");
}

TEST(Discovery, EndpointsAreCheckedByName) {
  Json doc = GoodDiscovery();
  doc.erase("token_endpoint");
  ExpectDiscoveryError(doc, "token_endpoint is missing");
  doc = GoodDiscovery();
  doc["jwks_uri"] = "ftp://idp.example.com/jwks";
  ExpectDiscoveryError(doc, "jwks_uri must be an http or https URL");
  doc = GoodDiscovery();
  doc["authorization_endpoint"] = "/relative/auth";
  ExpectDiscoveryError(doc, "authorization_endpoint is not an absolute URL");
  doc = GoodDiscovery();
  doc["authorization_endpoint"] = "https://idp.example.com/auth#frag";
  ExpectDiscoveryError(doc, "authorization_endpoint must not contain a fragment");
  doc = GoodDiscovery();
  doc["userinfo_endpoint"] = "javascript:alert(1)";
  ExpectDiscoveryError(doc, "userinfo_endpoint");
  doc = GoodDiscovery();
  doc["id_token_signing_alg_values_supported"] = {"HS256", "none"};
  ExpectDiscoveryError(doc, "id_token_signing_alg_values_supported has none of");
  doc = GoodDiscovery();
  doc["response_types_supported"] = {"id_token"};
  ExpectDiscoveryError(doc, "response_types_supported");
  doc = GoodDiscovery();
  doc["scopes_supported"] = "openid";
  ExpectDiscoveryError(doc, "scopes_supported must be an array of strings");

  auto r = ParseDiscovery("{not json", kIssuer);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("not JSON"), std::string::npos);
  r = ParseDiscovery("[1,2]", kIssuer);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("not a JSON object"), std::string::npos);
  r = ParseDiscovery(std::string(kMaxOidcDocumentBytes + 1, ' '), kIssuer);
  EXPECT_FALSE(r.ok());
}

// ---- authorization URL ----

TEST(AuthorizationUrl, EncodesEveryParameter) {
  OidcProviderMetadata md;
  md.authorization_endpoint = "https://idp.example.com/auth";
  std::string url =
      BuildAuthorizationUrl(md, "client id&x", "https://lathe.example/api/v1/auth/oidc/callback?a=1",
                            "openid profile email", "st/ate+=", "no nce", "abc-_", {{"prompt", "login"}});
  EXPECT_EQ(url,
            "https://idp.example.com/auth?response_type=code&client_id=client%20id%26x"
            "&redirect_uri=https%3A%2F%2Flathe.example%2Fapi%2Fv1%2Fauth%2Foidc%2Fcallback%3Fa%3D1"
            "&scope=openid%20profile%20email&state=st%2Fate%2B%3D&nonce=no%20nce&code_challenge=abc-_"
            "&code_challenge_method=S256&prompt=login");
}

TEST(AuthorizationUrl, KeepsExistingQuery) {
  OidcProviderMetadata md;
  md.authorization_endpoint = "https://login.example.com/oauth2/authorize?p=B2C_1_signin";
  std::string url = BuildAuthorizationUrl(md, "c", "https://r", "openid", "s", "n", "x");
  EXPECT_EQ(
      url.rfind("https://login.example.com/oauth2/authorize?p=B2C_1_signin&response_type=code&client_id=c",
                0),
      0u)
      << url;
  md.authorization_endpoint = "https://login.example.com/authorize?";
  url = BuildAuthorizationUrl(md, "c", "https://r", "openid", "s", "n", "x");
  EXPECT_EQ(url.rfind("https://login.example.com/authorize?response_type=code", 0), 0u) << url;
}

// ---- JWKS ----

TEST_F(OidcTokenTest, JwksKeepsSupportedKeysAndSkipsTheRest) {
  TestKey small = MakeRsaKey("small", 1024);
  Json enc = rsa_->Jwk();
  enc["kid"] = "enc";
  enc["use"] = "enc";
  Json ps = rsa_->Jwk();
  ps["kid"] = "ps";
  ps["alg"] = "PS256";
  Json p384_jwk = {{"kty", "EC"}, {"crv", "P-384"}, {"kid", "p384"}, {"x", "AA"}, {"y", "AA"}};
  Json bad_point = ec_->Jwk();
  bad_point["kid"] = "off-curve";
  bad_point["y"] = Base64UrlEncode(std::string(32, '\x01'));
  Json set = {{"keys",
               {rsa_->Jwk(),
                ec_->Jwk(),
                {{"kty", "oct"}, {"k", "c2VjcmV0"}, {"kid", "hmac"}},
                enc,
                ps,
                small.Jwk(),
                p384_jwk,
                bad_point,
                "not an object",
                {{"kty", "RSA"}, {"kid", "no-n"}, {"e", "AQAB"}}}}};
  auto jwks = Jwks::Parse(set.dump());
  ASSERT_TRUE(jwks.ok()) << jwks.status().ToString();
  ASSERT_EQ(jwks->keys().size(), 2u);
  EXPECT_EQ(jwks->skipped().size(), 8u);
  EXPECT_EQ(jwks->keys()[0].kty, "RSA");
  EXPECT_EQ(jwks->keys()[1].crv, "P-256");

  auto found = jwks->Find("rsa-1", "RS256");
  ASSERT_TRUE(found.ok());
  EXPECT_EQ((*found)->kid, "rsa-1");
  EXPECT_FALSE(jwks->Find("rsa-1", "ES256").ok());  // kty/alg mismatch
  EXPECT_FALSE(jwks->Find("hmac", "RS256").ok());
  EXPECT_EQ(jwks->Find("nope", "RS256").status().code(), StatusCode::kUnauthenticated);
  // Without a kid, the only key for the algorithm is used.
  ASSERT_TRUE(jwks->Find("", "ES256").ok());
  EXPECT_EQ((*jwks->Find("", "ES256"))->kid, "ec-1");

  EXPECT_FALSE(Jwks::Parse("{}").ok());
  EXPECT_FALSE(Jwks::Parse("{\"keys\":{}}").ok());
  EXPECT_FALSE(Jwks::Parse("nope").ok());
  EXPECT_TRUE(Jwks::Parse("{\"keys\":[]}").ok());
}

TEST_F(OidcTokenTest, NoKidIsAmbiguousWithSeveralKeys) {
  TestKey second = MakeRsaKey("");
  TestKey first = MakeRsaKey("");
  Json set = {{"keys", {first.Jwk(), second.Jwk()}}};
  auto jwks = Jwks::Parse(set.dump());
  ASSERT_TRUE(jwks.ok());
  auto r = VerifyIdToken(MakeJwt(first, GoodClaims()), *jwks, Check());
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("no key id"), std::string::npos) << r.status().message();
  Json one = {{"keys", {first.Jwk()}}};
  auto single = Jwks::Parse(one.dump());
  ASSERT_TRUE(single.ok());
  EXPECT_TRUE(VerifyIdToken(MakeJwt(first, GoodClaims()), *single, Check()).ok());
}

// ---- ID token ----

TEST_F(OidcTokenTest, ValidTokensVerify) {
  auto r = Verify(MakeJwt(*rsa_, GoodClaims()));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ((*r)["sub"], "user-123");
  auto e = Verify(MakeJwt(*ec_, GoodClaims()));
  ASSERT_TRUE(e.ok()) << e.status().ToString();
  EXPECT_EQ((*e)["email"], "ann@example.com");

  // RS384 / RS512 with a JWK that does not pin its alg.
  TestKey loose = MakeRsaKey("loose");
  loose.alg = "";
  auto set = Jwks::Parse(Json{{"keys", {loose.Jwk()}}}.dump());
  ASSERT_TRUE(set.ok());
  for (const char* alg : {"RS256", "RS384", "RS512"}) {
    auto v = VerifyIdToken(MakeJwt(loose, GoodClaims(), alg), *set, Check());
    EXPECT_TRUE(v.ok()) << alg << ": " << v.status().ToString();
  }
  // An alg-pinned key refuses another alg.
  ExpectRefused(MakeJwt(*rsa_, GoodClaims(), "RS512"), StatusCode::kUnauthenticated, "does not allow");

  // aud as an array with one entry; several entries with azp; leeway on exp.
  Json c = GoodClaims();
  c["aud"] = {kClient};
  EXPECT_TRUE(Verify(MakeJwt(*rsa_, c)).ok());
  c["aud"] = {"other", kClient};
  c["azp"] = kClient;
  EXPECT_TRUE(Verify(MakeJwt(*rsa_, c)).ok());
  c = GoodClaims();
  c["exp"] = kNow - 30;
  EXPECT_TRUE(Verify(MakeJwt(*rsa_, c)).ok());
  c["nbf"] = kNow + 30;
  EXPECT_TRUE(Verify(MakeJwt(*rsa_, c)).ok());
  c = GoodClaims();
  c["exp"] = static_cast<double>(kNow) + 100.5;  // NumericDate may be fractional
  EXPECT_TRUE(Verify(MakeJwt(*rsa_, c)).ok());
}

TEST_F(OidcTokenTest, BadSignatureIsRefused) {
  std::string jwt = MakeJwt(*rsa_, GoodClaims());
  // Flip one byte of the signature (decode, flip, re-encode so the base64url stays valid).
  size_t dot = jwt.rfind('.');
  std::string sig = *Base64UrlDecode(jwt.substr(dot + 1));
  sig[10] = static_cast<char>(sig[10] ^ 0x01);
  ExpectRefused(jwt.substr(0, dot + 1) + Base64UrlEncode(sig), StatusCode::kUnauthenticated,
                "id token signature does not verify");
  // Same for ES256.
  std::string ejwt = MakeJwt(*ec_, GoodClaims());
  dot = ejwt.rfind('.');
  sig = *Base64UrlDecode(ejwt.substr(dot + 1));
  sig[40] = static_cast<char>(sig[40] ^ 0x80);
  ExpectRefused(ejwt.substr(0, dot + 1) + Base64UrlEncode(sig), StatusCode::kUnauthenticated,
                "id token signature does not verify");
  // ES256 signature in DER rather than R||S.
  ExpectRefused(ejwt.substr(0, dot + 1) + Base64UrlEncode(std::string(70, '\x30')),
                StatusCode::kUnauthenticated, "signature does not verify");
  // Tampered payload, original signature.
  Json evil = GoodClaims();
  evil["sub"] = "admin";
  std::string forged = Base64UrlEncode(Json({{"alg", "RS256"}, {"typ", "JWT"}, {"kid", "rsa-1"}}).dump()) +
                       "." + Base64UrlEncode(evil.dump()) + jwt.substr(jwt.rfind('.'));
  ExpectRefused(forged, StatusCode::kUnauthenticated, "signature does not verify");
  // Signed by an unpublished key that claims a published kid.
  ExpectRefused(MakeJwt(*other_rsa_, GoodClaims()), StatusCode::kUnauthenticated,
                "signature does not verify");
  // Empty signature.
  ExpectRefused(jwt.substr(0, jwt.rfind('.') + 1), StatusCode::kUnauthenticated, "signature does not verify");
}

TEST_F(OidcTokenTest, AlgNoneAndHmacAreRefused) {
  std::string none = Base64UrlEncode(Json({{"alg", "none"}, {"kid", "rsa-1"}}).dump()) + "." +
                     Base64UrlEncode(GoodClaims().dump()) + ".";
  ExpectRefused(none, StatusCode::kUnauthenticated, "algorithm \"none\" is not accepted");
  std::string none_upper =
      Base64UrlEncode(Json({{"alg", "None"}}).dump()) + "." + Base64UrlEncode(GoodClaims().dump()) + ".";
  ExpectRefused(none_upper, StatusCode::kUnauthenticated, "is not accepted");

  // HS256 "signed" with the public key as the HMAC secret: the classic key-confusion attack.
  for (const std::string& secret : {rsa_->PublicPem(), rsa_->Jwk().dump()}) {
    std::string input = Base64UrlEncode(Json({{"alg", "HS256"}, {"typ", "JWT"}, {"kid", "rsa-1"}}).dump()) +
                        "." + Base64UrlEncode(GoodClaims().dump());
    ExpectRefused(input + "." + Base64UrlEncode(HmacSha256(secret, input)), StatusCode::kUnauthenticated,
                  "algorithm \"HS256\" is not accepted");
  }
  std::string input = Base64UrlEncode(Json({{"alg", "RS256"}, {"kid", "rsa-1"}, {"crit", {"exp"}}}).dump()) +
                      "." + Base64UrlEncode(GoodClaims().dump());
  ExpectRefused(input + "." + Base64UrlEncode(SignRaw(rsa_->pkey.get(), "RS256", input)),
                StatusCode::kUnauthenticated, "crit");
}

TEST_F(OidcTokenTest, ClaimFailuresNameTheClaim) {
  struct Case {
    std::function<void(Json&)> mutate;
    std::string message;
  };
  std::vector<Case> cases = {
      {[](Json& c) { c["iss"] = "https://evil.example.com"; },
       "id token issuer \"https://evil.example.com\""},
      {[](Json& c) { c["iss"] = std::string(kIssuer) + "/"; }, "is not the configured issuer"},
      {[](Json& c) { c.erase("iss"); }, "id token issuer (iss) is missing"},
      {[](Json& c) { c["aud"] = "someone-else"; }, "id token audience [\"someone-else\"] does not include"},
      {[](Json& c) {
         c["aud"] = Json::array({"a", "b"});
       },
       "does not include the client id"},
      {[](Json& c) { c.erase("aud"); }, "id token audience (aud) is missing"},
      {[](Json& c) { c["aud"] = Json::array(); }, "id token audience (aud) is not a string"},
      {[](Json& c) {
         c["aud"] = {kClient, "other"};
       },
       "entries but no authorized party (azp)"},
      {[](Json& c) {
         c["aud"] = {kClient, "other"};
         c["azp"] = "other";
       },
       "authorized party (azp) \"other\" is not the client id"},
      {[](Json& c) { c["azp"] = "other"; }, "azp"},
      {[](Json& c) { c["exp"] = kNow - 61; }, "id token expired at"},
      {[](Json& c) { c["exp"] = kNow - 60; }, "id token expired at"},
      {[](Json& c) { c.erase("exp"); }, "id token expiry (exp) is missing"},
      {[](Json& c) { c["exp"] = "tomorrow"; }, "id token exp is not a number"},
      {[](Json& c) { c.erase("iat"); }, "id token issue time (iat) is missing"},
      {[](Json& c) { c["iat"] = kNow + 3600; }, "is in the future"},
      {[](Json& c) { c["nbf"] = kNow + 120; }, "id token is not valid before"},
      {[](Json& c) { c["nonce"] = "other-nonce"; }, "id token nonce does not match"},
      {[](Json& c) { c.erase("nonce"); }, "id token nonce is missing"},
      {[](Json& c) { c.erase("sub"); }, "id token subject (sub) is missing"},
      {[](Json& c) { c["sub"] = ""; }, "id token subject (sub) is missing"},
  };
  for (const Case& tc : cases) {
    Json claims = GoodClaims();
    tc.mutate(claims);
    SCOPED_TRACE(tc.message);
    ExpectRefused(MakeJwt(*rsa_, claims), StatusCode::kUnauthenticated, tc.message);
    ExpectRefused(MakeJwt(*ec_, claims), StatusCode::kUnauthenticated, tc.message);
  }
  // The expected nonce is mandatory for the caller, too.
  IdTokenCheck no_nonce = Check();
  no_nonce.nonce = "";
  ExpectRefused(MakeJwt(*rsa_, GoodClaims()), StatusCode::kInvalidArgument, "expected nonce is required",
                no_nonce);
  IdTokenCheck no_time = Check();
  no_time.now_s = 0;
  ExpectRefused(MakeJwt(*rsa_, GoodClaims()), StatusCode::kInvalidArgument, "now_s", no_time);
}

TEST_F(OidcTokenTest, UnknownKidIsRefused) {
  TestKey stranger = MakeEcKey("rotated-away");
  ExpectRefused(MakeJwt(stranger, GoodClaims()), StatusCode::kUnauthenticated,
                "key id \"rotated-away\" is not in the provider's JWKS");
}

TEST_F(OidcTokenTest, MalformedTokensAreInvalidArgument) {
  std::string jwt = MakeJwt(*rsa_, GoodClaims());
  size_t first = jwt.find('.');
  size_t last = jwt.rfind('.');
  ExpectRefused(jwt.substr(0, last), StatusCode::kInvalidArgument, "expected 3 segments, found 2");
  ExpectRefused(jwt + ".x", StatusCode::kInvalidArgument, "expected 3 segments, found 4");
  ExpectRefused("", StatusCode::kInvalidArgument, "empty");
  ExpectRefused("!!!" + jwt.substr(first), StatusCode::kInvalidArgument, "id token header is not base64url");
  ExpectRefused(Base64UrlEncode("not json") + jwt.substr(first), StatusCode::kInvalidArgument,
                "id token header is not a JSON object");
  ExpectRefused(Base64UrlEncode("[1]") + jwt.substr(first), StatusCode::kInvalidArgument,
                "not a JSON object");
  ExpectRefused(Base64UrlEncode("{\"typ\":\"JWT\"}") + jwt.substr(first), StatusCode::kInvalidArgument,
                "id token header has no alg");
  ExpectRefused(jwt.substr(0, first + 1) + "a+b/" + jwt.substr(last), StatusCode::kInvalidArgument,
                "id token payload is not base64url");
  ExpectRefused(jwt.substr(0, last + 1) + "a=b", StatusCode::kInvalidArgument,
                "id token signature is not base64url");
  // A signed payload that is not JSON.
  Json header = {{"alg", "RS256"}, {"kid", "rsa-1"}};
  std::string input = Base64UrlEncode(header.dump()) + "." + Base64UrlEncode("hello");
  ExpectRefused(input + "." + Base64UrlEncode(SignRaw(rsa_->pkey.get(), "RS256", input)),
                StatusCode::kInvalidArgument, "id token payload is not a JSON object");
}

TEST_F(OidcTokenTest, OversizedTokenIsRefusedUnparsed) {
  Json claims = GoodClaims();
  claims["padding"] = std::string(kMaxIdTokenBytes, 'x');
  ExpectRefused(MakeJwt(*rsa_, claims), StatusCode::kInvalidArgument, "id token is larger than 16384 bytes");
  ExpectRefused(std::string(kMaxIdTokenBytes + 1, 'a'), StatusCode::kInvalidArgument, "larger than");
  auto header = DecodeJwtHeader(MakeJwt(*ec_, GoodClaims()));
  ASSERT_TRUE(header.ok());
  EXPECT_EQ((*header)["kid"], "ec-1");
}

// ---- claims ----

TEST(Claims, StringsAndGroups) {
  Json c = {{"sub", "u1"},
            {"email", "a@b.c"},
            {"email_verified", true},
            {"groups", {"ml-team", "admins", 7, "ml-team", " spaced "}},
            {"roles", "reader, writer  admin,,reader"},
            {"realm_access", {{"roles", {"offline_access", "lathe-admin"}}}},
            {"odd.name", "dotted"}};
  EXPECT_EQ(ClaimString(c, "sub"), "u1");
  EXPECT_EQ(ClaimString(c, "email"), "a@b.c");
  EXPECT_EQ(ClaimString(c, "email_verified"), std::nullopt);
  EXPECT_EQ(ClaimString(c, "preferred_username"), std::nullopt);
  EXPECT_EQ(ClaimString(c, "odd.name"), "dotted");
  EXPECT_EQ(ClaimString(Json::array(), "sub"), std::nullopt);
  EXPECT_EQ(ClaimGroups(c, "groups"), (std::vector<std::string>{"ml-team", "admins", "spaced"}));
  EXPECT_EQ(ClaimGroups(c, "roles"), (std::vector<std::string>{"reader", "writer", "admin"}));
  EXPECT_EQ(ClaimGroups(c, "realm_access.roles"),
            (std::vector<std::string>{"offline_access", "lathe-admin"}));
  EXPECT_TRUE(ClaimGroups(c, "missing").empty());
  EXPECT_TRUE(ClaimGroups(c, "email_verified").empty());
}

// ---- HTTP: token exchange and the caching client against a tiny in-process HTTP server ----

struct HttpRequest {
  std::string method, path, body;
  std::map<std::string, std::string> headers;  // lower-case names
};
struct HttpAnswer {
  int status = 200;
  std::string body;
  std::string content_type = "application/json";
};

// One connection per request, Connection: close. Good enough for libcurl in tests.
class TinyHttpServer {
 public:
  explicit TinyHttpServer(std::function<HttpAnswer(const HttpRequest&)> handler)
      : handler_(std::move(handler)) {
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    EXPECT_EQ(bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
    EXPECT_EQ(listen(fd_, 16), 0);
    socklen_t len = sizeof(addr);
    getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    thread_ = std::thread([this] { Loop(); });
  }
  ~TinyHttpServer() {
    stop_ = true;
    shutdown(fd_, SHUT_RDWR);
    thread_.join();
    close(fd_);
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  int hits(const std::string& path) {
    std::lock_guard<std::mutex> lock(mu_);
    return hits_[path];
  }
  HttpRequest last(const std::string& path) {
    std::lock_guard<std::mutex> lock(mu_);
    return last_[path];
  }

 private:
  void Loop() {
    while (!stop_) {
      int c = accept(fd_, nullptr, nullptr);
      if (c < 0) continue;
      Serve(c);
      close(c);
    }
  }
  void Serve(int c) {
    std::string data;
    char buf[4096];
    size_t header_end;
    while ((header_end = data.find("\r\n\r\n")) == std::string::npos) {
      ssize_t n = read(c, buf, sizeof(buf));
      if (n <= 0) return;
      data.append(buf, static_cast<size_t>(n));
    }
    HttpRequest req;
    std::string head = data.substr(0, header_end);
    size_t sp1 = head.find(' '), sp2 = head.find(' ', sp1 + 1);
    req.method = head.substr(0, sp1);
    req.path = head.substr(sp1 + 1, sp2 - sp1 - 1);
    size_t pos = head.find("\r\n");
    while (pos != std::string::npos && pos < head.size()) {
      size_t next = head.find("\r\n", pos + 2);
      std::string line = head.substr(pos + 2, next == std::string::npos ? std::string::npos : next - pos - 2);
      size_t colon = line.find(':');
      if (colon != std::string::npos) {
        std::string name = line.substr(0, colon);
        for (char& ch : name) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
        size_t v = line.find_first_not_of(' ', colon + 1);
        req.headers[name] = v == std::string::npos ? "" : line.substr(v);
      }
      pos = next;
    }
    size_t want = req.headers.count("content-length") ? std::stoul(req.headers["content-length"]) : 0;
    req.body = data.substr(header_end + 4);
    while (req.body.size() < want) {
      ssize_t n = read(c, buf, sizeof(buf));
      if (n <= 0) return;
      req.body.append(buf, static_cast<size_t>(n));
    }
    std::string path = req.path.substr(0, req.path.find('?'));
    {
      std::lock_guard<std::mutex> lock(mu_);
      ++hits_[path];
      last_[path] = req;
    }
    HttpAnswer a = handler_(req);
    std::string out = "HTTP/1.1 " + std::to_string(a.status) + " X\r\nContent-Type: " + a.content_type +
                      "\r\nContent-Length: " + std::to_string(a.body.size()) +
                      "\r\nConnection: close\r\n\r\n" + a.body;
    size_t off = 0;
    while (off < out.size()) {
      ssize_t n = write(c, out.data() + off, out.size() - off);
      if (n <= 0) return;
      off += static_cast<size_t>(n);
    }
  }

  std::function<HttpAnswer(const HttpRequest&)> handler_;
  int fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::thread thread_;
  std::mutex mu_;
  std::map<std::string, int> hits_;
  std::map<std::string, HttpRequest> last_;
};

std::map<std::string, std::string> ParseForm(const std::string& body) {
  std::map<std::string, std::string> out;
  size_t start = 0;
  while (start <= body.size()) {
    size_t amp = body.find('&', start);
    std::string item = body.substr(start, amp == std::string::npos ? std::string::npos : amp - start);
    size_t eq = item.find('=');
    out[item.substr(0, eq)] = eq == std::string::npos ? "" : item.substr(eq + 1);
    if (amp == std::string::npos) break;
    start = amp + 1;
  }
  return out;
}

// A fake provider: discovery, a JWKS the test can swap, and a token endpoint that returns `id_token`.
class FakeProvider {
 public:
  FakeProvider() : server_([this](const HttpRequest& r) { return Handle(r); }) {}
  std::string issuer() { return server_.url(); }
  void SetJwks(const Json& jwks) {
    std::lock_guard<std::mutex> lock(mu_);
    jwks_ = jwks;
  }
  void SetTokenAnswer(HttpAnswer a) {
    std::lock_guard<std::mutex> lock(mu_);
    token_ = std::move(a);
  }
  TinyHttpServer& server() { return server_; }

 private:
  HttpAnswer Handle(const HttpRequest& r) {
    std::lock_guard<std::mutex> lock(mu_);
    std::string iss = server_.url();
    if (r.path == "/.well-known/openid-configuration") {
      return {200, Json({{"issuer", iss},
                         {"authorization_endpoint", iss + "/authorize"},
                         {"token_endpoint", iss + "/token"},
                         {"jwks_uri", iss + "/jwks"},
                         {"response_types_supported", {"code"}}})
                       .dump()};
    }
    if (r.path == "/jwks") return {200, jwks_.dump()};
    if (r.path == "/token") return token_;
    if (r.path == "/big") return {200, std::string(kMaxOidcDocumentBytes + 10, 'x')};
    return {404, "{}"};
  }
  std::mutex mu_;
  Json jwks_ = {{"keys", Json::array()}};
  HttpAnswer token_;
  TinyHttpServer server_;  // last: stops before the state it reads goes away
};

TEST_F(OidcTokenTest, FetchUrlTextBoundsAndStatus) {
  FakeProvider p;
  auto ok = FetchUrlText(p.issuer() + "/jwks", 5000);
  ASSERT_TRUE(ok.ok()) << ok.status().ToString();
  auto missing = FetchUrlText(p.issuer() + "/nothing?secret=1", 5000);
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(missing.status().message().find("HTTP 404"), std::string::npos) << missing.status().message();
  EXPECT_EQ(missing.status().message().find("secret"), std::string::npos);
  auto big = FetchUrlText(p.issuer() + "/big", 5000);
  ASSERT_FALSE(big.ok());
  EXPECT_NE(big.status().message().find("larger than"), std::string::npos) << big.status().message();
  EXPECT_EQ(FetchUrlText("file:///etc/passwd", 5000).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(FetchUrlText("gopher://x/", 5000).status().code(), StatusCode::kInvalidArgument);
  // Nothing listens on port 1.
  EXPECT_EQ(FetchUrlText("http://127.0.0.1:1/x", 5000).status().code(), StatusCode::kUnavailable);
}

TEST_F(OidcTokenTest, ExchangeCodeSendsBasicAuthAndPkce) {
  FakeProvider p;
  p.SetTokenAnswer({200, Json({{"id_token", "a.b.c"},
                               {"access_token", "at"},
                               {"token_type", "bearer"},
                               {"expires_in", 300},
                               {"refresh_token", "rt"}})
                             .dump()});
  OidcProviderMetadata md;
  md.token_endpoint = p.issuer() + "/token";
  std::string verifier = MakePkceVerifier();
  auto r = ExchangeCode(md, "my client", "s3cr:t+&", "http://127.0.0.1/cb", "the code", verifier, 5000);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->id_token, "a.b.c");
  EXPECT_EQ(r->access_token, "at");
  EXPECT_EQ(r->refresh_token, "rt");
  EXPECT_EQ(r->expires_in_s, 300);
  HttpRequest req = p.server().last("/token");
  EXPECT_EQ(req.method, "POST");
  EXPECT_EQ(req.headers["content-type"], "application/x-www-form-urlencoded");
  // RFC 6749 §2.3.1: both parts form-urlencoded, then Basic.
  std::string basic = req.headers["authorization"];
  ASSERT_EQ(basic.rfind("Basic ", 0), 0u) << basic;
  EXPECT_EQ(*Base64Decode(basic.substr(6)), "my+client:s3cr%3At%2B%26");
  auto form = ParseForm(req.body);
  EXPECT_EQ(form["grant_type"], "authorization_code");
  EXPECT_EQ(form["code"], "the+code");
  EXPECT_EQ(form["redirect_uri"], "http%3A%2F%2F127.0.0.1%2Fcb");
  EXPECT_EQ(form["code_verifier"], verifier);
  EXPECT_EQ(form.count("client_secret"), 0u);
}

TEST_F(OidcTokenTest, ExchangeCodeReportsProviderErrors) {
  FakeProvider p;
  OidcProviderMetadata md;
  md.token_endpoint = p.issuer() + "/token";
  std::string verifier = MakePkceVerifier();
  p.SetTokenAnswer({400, R"({"error":"invalid_grant","error_description":"code already used"})"});
  auto r = ExchangeCode(md, "c", "s", "http://127.0.0.1/cb", "code", verifier, 5000);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kUnauthenticated);
  EXPECT_NE(r.status().message().find("\"invalid_grant\": \"code already used\""), std::string::npos)
      << r.status().message();
  p.SetTokenAnswer({401, R"({"error":"invalid_client"})"});
  r = ExchangeCode(md, "c", "s", "http://127.0.0.1/cb", "code", verifier, 5000);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("invalid_client"), std::string::npos);
  p.SetTokenAnswer({503, "busy", "text/plain"});
  r = ExchangeCode(md, "c", "s", "http://127.0.0.1/cb", "code", verifier, 5000);
  EXPECT_EQ(r.status().code(), StatusCode::kUnavailable);
  p.SetTokenAnswer({200, R"({"access_token":"at","token_type":"Bearer"})"});
  r = ExchangeCode(md, "c", "s", "http://127.0.0.1/cb", "code", verifier, 5000);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("without an id_token"), std::string::npos);
  p.SetTokenAnswer({200, R"({"id_token":"x","access_token":"at","token_type":"mac"})"});
  r = ExchangeCode(md, "c", "s", "http://127.0.0.1/cb", "code", verifier, 5000);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("token_type"), std::string::npos);
  EXPECT_EQ(ExchangeCode(md, "c", "s", "http://127.0.0.1/cb", "code", "short", 5000).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(ExchangeCode(md, "c", "s", "http://127.0.0.1/cb", "", verifier, 5000).status().code(),
            StatusCode::kInvalidArgument);
}

TEST_F(OidcTokenTest, ClientCachesAndRefetchesJwksOnKeyRotation) {
  FakeProvider p;
  p.SetJwks({{"keys", {rsa_->Jwk()}}});
  OidcClientOptions o;
  o.issuer = p.issuer();
  o.client_id = kClient;
  o.client_secret = "secret";
  o.redirect_uri = "http://127.0.0.1:9/api/v1/auth/oidc/callback";
  o.min_jwks_refresh_interval_s = 0;
  auto client = OidcClient::Create(o);
  ASSERT_TRUE(client.ok()) << client.status().ToString();

  auto start = (*client)->StartLogin();
  ASSERT_TRUE(start.ok()) << start.status().ToString();
  EXPECT_EQ(start->url.rfind(p.issuer() + "/authorize?response_type=code&client_id=lathe-client", 0), 0u);
  EXPECT_NE(start->url.find("code_challenge=" + PkceChallengeS256(start->code_verifier)), std::string::npos);
  EXPECT_NE(start->url.find("state=" + start->state), std::string::npos);
  EXPECT_NE(start->url.find("nonce=" + start->nonce), std::string::npos);
  EXPECT_TRUE(IsValidPkceVerifier(start->code_verifier));

  Json claims = GoodClaims();
  claims["iss"] = p.issuer();
  claims["nonce"] = start->nonce;
  auto v = (*client)->VerifyIdToken(MakeJwt(*rsa_, claims), start->nonce, kNow);
  ASSERT_TRUE(v.ok()) << v.status().ToString();
  EXPECT_EQ(p.server().hits("/.well-known/openid-configuration"), 1);
  EXPECT_EQ(p.server().hits("/jwks"), 1);
  ASSERT_TRUE((*client)->VerifyIdToken(MakeJwt(*rsa_, claims), start->nonce, kNow).ok());
  EXPECT_EQ(p.server().hits("/jwks"), 1);  // cached

  // The provider rotates to the EC key: one refetch, then success.
  p.SetJwks({{"keys", {ec_->Jwk()}}});
  v = (*client)->VerifyIdToken(MakeJwt(*ec_, claims), start->nonce, kNow);
  ASSERT_TRUE(v.ok()) << v.status().ToString();
  EXPECT_EQ(p.server().hits("/jwks"), 2);
  // The old key is gone now.
  v = (*client)->VerifyIdToken(MakeJwt(*rsa_, claims), start->nonce, kNow);
  ASSERT_FALSE(v.ok());
  EXPECT_NE(v.status().message().find("not in the provider's JWKS"), std::string::npos)
      << v.status().message();

  // FinishLogin: exchange + verify against the login's nonce.
  p.SetTokenAnswer(
      {200,
       Json({{"id_token", MakeJwt(*ec_, claims)}, {"access_token", "at"}, {"token_type", "Bearer"}}).dump()});
  auto done = (*client)->FinishLogin("code-1", start->code_verifier, start->nonce, kNow);
  ASSERT_TRUE(done.ok()) << done.status().ToString();
  EXPECT_EQ(ClaimString(*done, "preferred_username"), "ann");
  auto wrong_nonce = (*client)->FinishLogin("code-1", start->code_verifier, "another-login", kNow);
  ASSERT_FALSE(wrong_nonce.ok());
  EXPECT_NE(wrong_nonce.status().message().find("nonce"), std::string::npos);
}

TEST_F(OidcTokenTest, ClientRateLimitsJwksRefetchForUnknownKids) {
  FakeProvider p;
  p.SetJwks({{"keys", {rsa_->Jwk()}}});
  OidcClientOptions o;
  o.issuer = p.issuer();
  o.client_id = kClient;
  o.redirect_uri = "http://127.0.0.1:9/cb";
  o.min_jwks_refresh_interval_s = 3600;
  auto client = OidcClient::Create(o);
  ASSERT_TRUE(client.ok());
  Json claims = GoodClaims();
  claims["iss"] = p.issuer();
  TestKey made_up = MakeEcKey("made-up");
  for (int i = 0; i < 5; ++i) {
    EXPECT_FALSE((*client)->VerifyIdToken(MakeJwt(made_up, claims), kNonce, kNow).ok());
  }
  EXPECT_EQ(p.server().hits("/jwks"), 1);
  EXPECT_TRUE((*client)->VerifyIdToken(MakeJwt(*rsa_, claims), kNonce, kNow).ok());
}

TEST(OidcClientOptions, AreValidated) {
  OidcClientOptions o;
  o.issuer = "https://idp.example.com";
  o.client_id = "c";
  o.redirect_uri = "https://lathe.example.com/cb";
  EXPECT_TRUE(OidcClient::Create(o).ok());
  auto bad = [&](std::function<void(OidcClientOptions&)> f, const std::string& field) {
    OidcClientOptions x = o;
    f(x);
    auto r = OidcClient::Create(x);
    ASSERT_FALSE(r.ok()) << field;
    EXPECT_NE(r.status().message().find(field), std::string::npos) << r.status().message();
  };
  bad([](OidcClientOptions& x) { x.issuer = "idp.example.com"; }, "issuer");
  bad([](OidcClientOptions& x) { x.issuer = "https://idp.example.com/?tenant=1"; }, "issuer");
  bad([](OidcClientOptions& x) { x.redirect_uri = ""; }, "redirect_uri");
  bad([](OidcClientOptions& x) { x.client_id = ""; }, "client_id");
  bad([](OidcClientOptions& x) { x.scope = "profile email"; }, "scope");
  bad([](OidcClientOptions& x) { x.scope = "openidx"; }, "scope");
  bad([](OidcClientOptions& x) { x.http_timeout_ms = 0; }, "http_timeout_ms");
}

TEST(OidcClientOptions, UnreachableProviderIsUnavailable) {
  OidcClientOptions o;
  o.issuer = "http://127.0.0.1:1";
  o.client_id = "c";
  o.redirect_uri = "http://127.0.0.1:9/cb";
  o.http_timeout_ms = 2000;
  auto client = OidcClient::Create(o);
  ASSERT_TRUE(client.ok());
  auto r = (*client)->StartLogin();
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(r.status().message().find("discovery"), std::string::npos) << r.status().message();
}

}  // namespace
}  // namespace lathe
