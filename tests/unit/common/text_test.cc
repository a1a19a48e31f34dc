#include "common/text.h"

#include <gtest/gtest.h>

#include <string>

namespace lathe {
namespace {

TEST(DisplaySafeText, AcceptsOrdinaryTextInAnyScript) {
  for (const char* s : {"ci deploy key", "résumé-bot", "模型部署", "ключ №2", "emoji 🔑 key", "a", ""}) {
    EXPECT_TRUE(IsDisplaySafeText(s)) << s;
  }
}

TEST(DisplaySafeText, RejectsControlsBidiAndInvalidUtf8) {
  const std::string bad[] = {
      std::string("tab\there"),
      std::string("nl\n"),
      std::string("nul\0x", 5),
      "del\x7f",
      "c1 \xC2\x85",  // U+0085 next line
      "\xE2\x80\xAE"
      "evil",  // U+202E right-to-left override
      "\xE2\x81\xA6"
      "x",             // U+2066 left-to-right isolate
      "\xE2\x80\x8F",  // U+200F right-to-left mark
      "\xD8\x9C",      // U+061C arabic letter mark
      "\xE2\x80\xA8",  // U+2028 line separator
      "\xEF\xBB\xBF"
      "bom",               // U+FEFF
      "\xC3",              // truncated
      "\xC0\xAF",          // overlong '/'
      "\xE0\x80\xAF",      // overlong 3-byte
      "\xED\xA0\x80",      // surrogate U+D800
      "\xF4\x90\x80\x80",  // above U+10FFFF
      "\x80"
      "x",  // continuation byte first
      "\xE2\x82"
      "x",  // bad continuation
  };
  for (const std::string& s : bad) EXPECT_FALSE(IsDisplaySafeText(s)) << s;
}

}  // namespace
}  // namespace lathe
