#include <gtest/gtest.h>

#include "common/compress.h"
#include "common/crypto.h"
#include "common/ids.h"
#include "common/json.h"
#include "common/status.h"

namespace lathe {
namespace {

Result<int> Half(int x) {
  if (x % 2) return Status::InvalidArgument("odd");
  return x / 2;
}
Result<int> Quarter(int x) {
  ASSIGN_OR_RETURN(int h, Half(x));
  return Half(h);
}

TEST(Status, ResultPropagates) {
  EXPECT_EQ(*Quarter(8), 2);
  EXPECT_EQ(Quarter(6).status().code(), StatusCode::kInvalidArgument);
  Status s = Status::InvalidArgument("bad").WithDetail(ErrorDetail::Line(3, "ragged"));
  EXPECT_EQ(s.details().size(), 1u);
  EXPECT_EQ(s.Annotate("import").message(), "import: bad");
  EXPECT_EQ(s.Annotate("import").details().size(), 1u);
}

TEST(Json, DepthLimitAndErrors) {
  EXPECT_TRUE(ParseJson("{\"a\":[1,2,{\"b\":null}]}").ok());
  std::string deep(100000, '[');
  auto r = ParseJson(deep, 64);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("nested"), std::string::npos);
  // Brackets inside strings do not count.
  EXPECT_TRUE(ParseJson("{\"a\":\"[[[[[[[[[[[[\"}", 2).ok());
  auto bad = ParseJson("{\"a\": }");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("byte"), std::string::npos);
  EXPECT_FALSE(ParseJson("   ").ok());
  EXPECT_FALSE(ParseJson("{\"a\":1} trailing").ok());
  // Invalid UTF-8 is rejected, not crashed on.
  EXPECT_FALSE(ParseJson("\"\xff\xfe\"").ok());
  // A number beyond double range is a bad request, not an exception.
  auto huge = ParseJson("{\"a\": 1e999}");
  ASSERT_FALSE(huge.ok());
  EXPECT_EQ(huge.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(huge.status().message().find("overflow"), std::string::npos) << huge.status().message();
}

TEST(Json, TypedFieldErrorsNameTheField) {
  Json j = {{"name", 3}};
  auto r = GetString(j, "name");
  ASSERT_FALSE(r.ok());
  ASSERT_EQ(r.status().details().size(), 1u);
  EXPECT_EQ(r.status().details()[0].field, "name");
  EXPECT_EQ(GetString(j, "missing").status().details()[0].field, "missing");
}

TEST(Crypto, PasswordHashVerify) {
  auto h = HashPassword("correct horse");
  ASSERT_TRUE(h.ok());
  EXPECT_EQ(h->rfind("$argon2id$", 0), 0u);
  EXPECT_TRUE(VerifyPassword("correct horse", *h));
  EXPECT_FALSE(VerifyPassword("wrong", *h));
  EXPECT_FALSE(VerifyPassword("x", "not-a-hash"));
  EXPECT_EQ(Sha256Hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_NE(RandomToken(32), RandomToken(32));
}

TEST(Compress, RoundTripAndCorruption) {
  std::string data(50000, 'a');
  for (size_t i = 0; i < data.size(); i += 7) data[i] = static_cast<char>('a' + i % 26);
  std::string z = ZstdCompress(data);
  EXPECT_LT(z.size(), data.size());
  EXPECT_EQ(*ZstdDecompress(z), data);
  EXPECT_EQ(ZstdDecompress(z.substr(0, z.size() / 2)).status().code(), StatusCode::kDataLoss);
  EXPECT_EQ(ZstdDecompress("garbage").status().code(), StatusCode::kDataLoss);
}

TEST(Ids, NamesAreSafe) {
  EXPECT_TRUE(IsValidName("churn-2024_v1.csv"));
  EXPECT_FALSE(IsValidName(""));
  EXPECT_FALSE(IsValidName("../etc"));
  EXPECT_FALSE(IsValidName("a/b"));
  EXPECT_FALSE(IsValidName("<script>"));
  EXPECT_FALSE(IsValidName(std::string(65, 'a')));
  EXPECT_EQ(NewId("job").size(), 20u);
}

}  // namespace
}  // namespace lathe
