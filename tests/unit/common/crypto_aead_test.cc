// AES-256-GCM sealing and HMAC-SHA256: known-answer vectors, round trips, and every way a sealed
// secret can be damaged (each byte flipped, truncation, wrong key, wrong aad, wrong version).
#include <gtest/gtest.h>

#include <string>

#include "common/crypto.h"

namespace lathe {
namespace {

std::string Unhex(const std::string& hex) {
  std::string out;
  for (size_t i = 0; i + 1 < hex.size(); i += 2)
    out.push_back(static_cast<char>(std::stoi(hex.substr(i, 2), nullptr, 16)));
  return out;
}

const std::string kKey = Unhex("feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308");

// Test Case 16 of "The Galois/Counter Mode of Operation (GCM)" (McGrew & Viega), the NIST submission.
TEST(AesGcm, NistVectorWithAad) {
  std::string p = Unhex(
      "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a721c3c0c95956809532fcf0e2449a6b525b16aed"
      "f5aa0de657"
      "ba637b39");
  std::string aad = Unhex("feedfacedeadbeeffeedfacedeadbeefabaddad2");
  std::string iv = Unhex("cafebabefacedbaddecaf888");
  auto r = AesGcmSealWithNonceForTest(kKey, iv, p, aad);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(HexEncode(*r),
            "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa8cb08e48590dbb3da7b08b1056828838"
            "c5f61e6393ba"
            "7a0abcc9f662"
            "76fc6ece0f4e1768cddf8853bb2d551b");
  // The same bytes in the sealed layout decrypt back.
  std::string sealed = std::string(1, static_cast<char>(kAesGcmVersion)) + iv + *r;
  auto d = DecryptAesGcm(kKey, sealed, aad);
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  EXPECT_EQ(*d, p);
}

// Test Cases 13 and 14: zero key, zero nonce, empty and one-block plaintext.
TEST(AesGcm, NistVectorsZeroKey) {
  std::string key(32, '\0'), iv(12, '\0');
  auto empty = AesGcmSealWithNonceForTest(key, iv, "", "");
  ASSERT_TRUE(empty.ok());
  EXPECT_EQ(HexEncode(*empty), "530f8afbc74536b9a963b4f1c4cb738b");
  auto block = AesGcmSealWithNonceForTest(key, iv, std::string(16, '\0'), "");
  ASSERT_TRUE(block.ok());
  EXPECT_EQ(HexEncode(*block), "cea7403d4d606b6e074ec5d3baf39d18d0d1c8a799996bf0265b98b5d48ab919");
}

TEST(AesGcm, RoundTripAndLayout) {
  for (size_t n : {0, 1, 15, 16, 17, 1000, 1 << 20}) {
    std::string p = RandomBytes(n);
    auto s = EncryptAesGcm(kKey, p, "dataset-source:42");
    ASSERT_TRUE(s.ok());
    EXPECT_EQ(s->size(), n + kAesGcmOverheadBytes);
    EXPECT_EQ(static_cast<uint8_t>((*s)[0]), kAesGcmVersion);
    auto d = DecryptAesGcm(kKey, *s, "dataset-source:42");
    ASSERT_TRUE(d.ok()) << d.status().ToString();
    EXPECT_EQ(*d, p);
  }
}

TEST(AesGcm, NonceIsFreshPerCall) {
  auto a = EncryptAesGcm(kKey, "same secret", "");
  auto b = EncryptAesGcm(kKey, "same secret", "");
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_NE(a->substr(1, 12), b->substr(1, 12));
  EXPECT_NE(*a, *b);
}

TEST(AesGcm, TamperEveryByteFails) {
  auto s = EncryptAesGcm(kKey, "postgres password: hunter2", "conn-7");
  ASSERT_TRUE(s.ok());
  for (size_t i = 0; i < s->size(); ++i) {
    for (unsigned char flip : {0x01, 0x80}) {
      std::string t = *s;
      t[i] = static_cast<char>(static_cast<unsigned char>(t[i]) ^ flip);
      auto d = DecryptAesGcm(kKey, t, "conn-7");
      ASSERT_FALSE(d.ok()) << "byte " << i;
      EXPECT_EQ(d.status().code(), StatusCode::kDataLoss);
      EXPECT_EQ(d.status().message(), "authentication failed");
    }
  }
}

TEST(AesGcm, TruncatedOrExtendedFails) {
  auto s = EncryptAesGcm(kKey, "abc", "");
  ASSERT_TRUE(s.ok());
  for (size_t n = 0; n < s->size(); ++n) {
    auto d = DecryptAesGcm(kKey, s->substr(0, n), "");
    ASSERT_FALSE(d.ok()) << n;
    EXPECT_EQ(d.status().code(), StatusCode::kDataLoss);
  }
  auto d = DecryptAesGcm(kKey, *s + "x", "");
  EXPECT_EQ(d.status().code(), StatusCode::kDataLoss);
}

TEST(AesGcm, WrongAadOrKeyFails) {
  auto s = EncryptAesGcm(kKey, "secret", "row-1");
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(DecryptAesGcm(kKey, *s, "row-2").status().code(), StatusCode::kDataLoss);
  EXPECT_EQ(DecryptAesGcm(kKey, *s, "").status().code(), StatusCode::kDataLoss);
  std::string other = kKey;
  other[31] ^= 1;
  EXPECT_EQ(DecryptAesGcm(other, *s, "row-1").status().code(), StatusCode::kDataLoss);
  EXPECT_TRUE(DecryptAesGcm(kKey, *s, "row-1").ok());
}

TEST(AesGcm, KeyMustBe32Bytes) {
  for (size_t n : {0, 16, 24, 31, 33, 64}) {
    std::string key(n, 'k');
    EXPECT_EQ(EncryptAesGcm(key, "x", "").status().code(), StatusCode::kInvalidArgument) << n;
    EXPECT_EQ(DecryptAesGcm(key, std::string(40, 'x'), "").status().code(), StatusCode::kInvalidArgument)
        << n;
  }
  EXPECT_EQ(AesGcmSealWithNonceForTest(kKey, "short", "x", "").status().code(), StatusCode::kInvalidArgument);
}

// RFC 4231 test cases 1, 2 and 6 (key longer than the block size).
TEST(HmacSha256, Rfc4231Vectors) {
  EXPECT_EQ(HexEncode(HmacSha256(std::string(20, '\x0b'), "Hi There")),
            "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");
  EXPECT_EQ(HexEncode(HmacSha256("Jefe", "what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
  EXPECT_EQ(HexEncode(HmacSha256(std::string(131, '\xaa'),
                                 "Test Using Larger Than Block-Size Key - Hash Key First")),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");
  EXPECT_EQ(HmacSha256("", "").size(), 32u);
}

TEST(Base64, DecodesRfc4648AndRefusesTheRest) {
  EXPECT_EQ(Base64Decode("").value(), "");
  EXPECT_EQ(Base64Decode("Zg==").value(), "f");
  EXPECT_EQ(Base64Decode("Zm8=").value(), "fo");
  EXPECT_EQ(Base64Decode("Zm9v").value(), "foo");
  EXPECT_EQ(Base64Decode("Zm9vYmFy").value(), "foobar");
  EXPECT_EQ(Base64Decode("AAEC/w==").value(), std::string("\x00\x01\x02\xff", 4));
  for (const char* bad : {"Zg=", "Zm9v!A==", "Zg==Zg==", "Z=9v", "Zm9v\n", "===="}) {
    EXPECT_FALSE(Base64Decode(bad).ok()) << bad;
  }
}

}  // namespace
}  // namespace lathe
