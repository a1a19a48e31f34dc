#include "data/text_encoding.h"

#include <gtest/gtest.h>

namespace lathe {
namespace {

// "城市,人口\n北京,2154\n" in GB18030.
const std::string kGbText =
    "\xB3\xC7\xCA\xD0,\xC8\xCB\xBF\xDA\n\xB1\xB1\xBE\xA9,2154\n";
const std::string kGbTextUtf8 = "城市,人口\n北京,2154\n";

struct DetectCase {
  const char* name;
  std::string bytes;
  bool complete;
  TextEncoding want;
};

TEST(TextEncoding, DetectTable) {
  std::string mostly_utf8;
  for (int i = 0; i < 10; ++i) mostly_utf8 += "Zürich,";
  mostly_utf8 += "caf\xE9\n";  // one damaged byte among 10 valid sequences
  const DetectCase cases[] = {
      {"ascii", "a,b\n1,2\n", true, TextEncoding::kUtf8},
      {"utf8", "név,város\nÁrpád,Győr\n", true, TextEncoding::kUtf8},
      {"utf8_bom", "\xEF\xBB\xBF" "a\n", true, TextEncoding::kUtf8},
      {"utf8_cut_by_sample", "a,\xE4\xB8", false, TextEncoding::kUtf8},
      {"utf8_mostly", mostly_utf8, true, TextEncoding::kUtf8},
      {"gb18030", kGbText, true, TextEncoding::kGb18030},
      {"gb18030_cut_by_sample", kGbText + "\xB1", false, TextEncoding::kGb18030},
      {"latin1", "nom;ville\nJos\xE9;Montr\xE9" "al\n", true, TextEncoding::kLatin1},
      {"latin1_trailing_high", "a,\xE9", true, TextEncoding::kLatin1},
      {"binary_ff", "\xFF\xFF\xFF\n", true, TextEncoding::kLatin1},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    EXPECT_EQ(TextEncodingName(DetectTextEncoding(c.bytes, c.complete)), std::string(TextEncodingName(c.want)));
  }
}

TEST(TextEncoding, NamesAndAliases) {
  const std::pair<const char*, TextEncoding> names[] = {
      {"utf-8", TextEncoding::kUtf8},       {"UTF8", TextEncoding::kUtf8},          {"gb18030", TextEncoding::kGb18030},
      {"GBK", TextEncoding::kGb18030},      {"gb2312", TextEncoding::kGb18030},     {"latin-1", TextEncoding::kLatin1},
      {"ISO-8859-1", TextEncoding::kLatin1}, {"latin1", TextEncoding::kLatin1},
  };
  for (const auto& [n, want] : names) {
    auto e = ParseTextEncoding(n);
    ASSERT_TRUE(e.ok()) << n;
    EXPECT_EQ(*e, want) << n;
  }
  auto bad = ParseTextEncoding("ebcdic");
  ASSERT_FALSE(bad.ok());
  ASSERT_EQ(bad.status().details().size(), 1u);
  EXPECT_EQ(bad.status().details()[0].field, "encoding");
  EXPECT_TRUE(HasUtf16Or32Bom(std::string("\xFF\xFE" "a\0", 4)));
  EXPECT_TRUE(HasUtf16Or32Bom("\xFE\xFF"));
  EXPECT_FALSE(HasUtf16Or32Bom("\xEF\xBB\xBF"));
}

TEST(Utf8Decoder, StreamingSplitsAnywhere) {
  for (TextEncoding enc : {TextEncoding::kGb18030, TextEncoding::kLatin1}) {
    std::string input = enc == TextEncoding::kGb18030 ? kGbText : std::string("Jos\xE9,\xC5sa\n\xFF\x00x\n", 13);
    std::string want = enc == TextEncoding::kGb18030 ? kGbTextUtf8 : std::string("José,Åsa\nÿ\0x\n", 16);
    for (size_t split = 0; split <= input.size(); ++split) {
      auto dec = Utf8Decoder::Create(enc, Utf8Decoder::OnInvalid::kFail);
      ASSERT_TRUE(dec.ok());
      std::string out;
      ASSERT_TRUE((*dec)->Decode(input.data(), split, false, &out).ok()) << split;
      ASSERT_TRUE((*dec)->Decode(input.data() + split, input.size() - split, true, &out).ok()) << split;
      EXPECT_EQ(out, want) << "split at " << split;
    }
  }
  EXPECT_FALSE(Utf8Decoder::Create(TextEncoding::kUtf8, Utf8Decoder::OnInvalid::kFail).ok());
}

TEST(Utf8Decoder, InvalidBytesNameLineAndOffset) {
  // Line 3, byte 3 of the line: 0xFF is never valid GB18030.
  std::string input = kGbText + "ab\xFF" "cd\n";
  auto dec = Utf8Decoder::Create(TextEncoding::kGb18030, Utf8Decoder::OnInvalid::kFail);
  ASSERT_TRUE(dec.ok());
  std::string out;
  // Fed in two calls, so the position bookkeeping crosses a call boundary.
  ASSERT_TRUE((*dec)->Decode(input.data(), 7, false, &out).ok());
  Status st = (*dec)->Decode(input.data() + 7, input.size() - 7, true, &out);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  ASSERT_EQ(st.details().size(), 1u);
  EXPECT_EQ(st.details()[0].line, 3);
  EXPECT_NE(st.message().find("byte 3 of the line (file offset " + std::to_string(kGbText.size() + 2) + ")"),
            std::string::npos)
      << st.message();

  // A sequence cut by the end of the input.
  auto cut = Utf8Decoder::Create(TextEncoding::kGb18030, Utf8Decoder::OnInvalid::kFail);
  out.clear();
  Status st2 = (*cut)->Decode("a\n\xB1", 3, true, &out);
  ASSERT_FALSE(st2.ok());
  EXPECT_EQ(st2.details()[0].line, 2);

  // kMark: each undecodable byte becomes 0xFF, the rest decodes.
  auto mark = Utf8Decoder::Create(TextEncoding::kGb18030, Utf8Decoder::OnInvalid::kMark);
  out.clear();
  ASSERT_TRUE((*mark)->Decode(input.data(), input.size(), true, &out).ok());
  EXPECT_EQ(out, kGbTextUtf8 + "ab\xFF" "cd\n");
  EXPECT_EQ((*mark)->invalid_bytes(), 1);
}

}  // namespace
}  // namespace lathe
