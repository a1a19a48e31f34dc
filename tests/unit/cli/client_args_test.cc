#include "cli/client_args.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace lathe::cli {
namespace {

const std::vector<FlagSpec> kFlags = {
    {"name", "N", "name"},
    {"param", "K=V", "param", true},
    {"no-wait", "", "no wait"},
    {"json", "", "json"},
    {"help", "", "help", false, 'h'},
};

TEST(ParseArgsTest, PositionalsAndFlagsInAnyOrder) {
  auto r = ParseArgs({"x.csv", "--name", "iris", "--no-wait", "extra"}, kFlags);
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->positionals, (std::vector<std::string>{"x.csv", "extra"}));
  EXPECT_EQ(r->Get("name"), "iris");
  EXPECT_TRUE(r->Has("no-wait"));
  EXPECT_FALSE(r->Has("json"));
  EXPECT_EQ(r->Get("missing", "fallback"), "fallback");
  EXPECT_FALSE(r->GetOptional("missing").has_value());
}

TEST(ParseArgsTest, EqualsFormAndEmptyValue) {
  auto r = ParseArgs({"--name=a=b", "--param="}, kFlags);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->Get("name"), "a=b");
  EXPECT_EQ(r->GetAll("param"), (std::vector<std::string>{""}));
}

TEST(ParseArgsTest, RepeatedFlagsKeepAllValuesOthersKeepLast) {
  auto r = ParseArgs({"--param", "a=1", "--name", "x", "--param", "b=2", "--name", "y"}, kFlags);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->GetAll("param"), (std::vector<std::string>{"a=1", "b=2"}));
  EXPECT_EQ(r->GetAll("name"), (std::vector<std::string>{"y"}));
}

TEST(ParseArgsTest, ValueMayLookLikeAFlag) {
  auto r = ParseArgs({"--name", "--json"}, kFlags);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->Get("name"), "--json");
  EXPECT_FALSE(r->Has("json"));
}

TEST(ParseArgsTest, DoubleDashEndsFlagsAndDashIsPositional) {
  auto r = ParseArgs({"-", "--", "--name", "-h"}, kFlags);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->positionals, (std::vector<std::string>{"-", "--name", "-h"}));
  EXPECT_FALSE(r->Has("name"));
}

TEST(ParseArgsTest, ShortFlagAndNegativeNumbers) {
  auto r = ParseArgs({"-h", "-5", "-0.5"}, kFlags);
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->Has("help"));
  EXPECT_EQ(r->positionals, (std::vector<std::string>{"-5", "-0.5"}));
}

TEST(ParseArgsTest, Errors) {
  auto unknown = ParseArgs({"--nope"}, kFlags);
  ASSERT_FALSE(unknown.ok());
  EXPECT_NE(unknown.status().message().find("unknown flag --nope"), std::string::npos);
  EXPECT_FALSE(ParseArgs({"-x"}, kFlags).ok());
  EXPECT_FALSE(ParseArgs({"-xyz"}, kFlags).ok());
  auto missing = ParseArgs({"x", "--name"}, kFlags);
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find("--name needs a value"), std::string::npos);
  auto bool_value = ParseArgs({"--json=yes"}, kFlags);
  ASSERT_FALSE(bool_value.ok());
  EXPECT_NE(bool_value.status().message().find("takes no value"), std::string::npos);
}

TEST(ParseArgsTest, HostileTokensDoNotCrash) {
  std::vector<std::string> args = {"", "-", "--=", "---", "--\xff\xfe", std::string(100000, '-'),
                                   std::string("--na\0me", 7), "=", "--name"};
  for (const auto& a : args) {
    auto r = ParseArgs({a}, kFlags);
    (void)r;
  }
  EXPECT_FALSE(ParseArgs({std::string(100000, '-')}, kFlags).ok());
  EXPECT_FALSE(ParseArgs({"---"}, kFlags).ok());
}

TEST(SplitCommandWordsTest, GroupsTakeTwoWordsAndGlobalsAnywhere) {
  const std::set<std::string> groups = {"datasets", "runs"};
  auto l = SplitCommandWords({"--json", "--url", "http://x", "datasets", "--project=p", "list", "--limit", "3"},
                             groups);
  EXPECT_EQ(l.words, (std::vector<std::string>{"datasets", "list"}));
  EXPECT_EQ(l.rest, (std::vector<std::string>{"--json", "--url", "http://x", "--project=p", "--limit", "3"}));

  auto t = SplitCommandWords({"predict", "churn", "--data", "{}"}, groups);
  EXPECT_EQ(t.words, (std::vector<std::string>{"predict"}));
  EXPECT_EQ(t.rest, (std::vector<std::string>{"churn", "--data", "{}"}));

  auto g = SplitCommandWords({"datasets", "show", "iris"}, groups);
  EXPECT_EQ(g.words, (std::vector<std::string>{"datasets", "show"}));
  EXPECT_EQ(g.rest, (std::vector<std::string>{"iris"}));

  // A command flag before the words ends them: "--name" is not a global.
  auto f = SplitCommandWords({"--name", "x", "datasets", "list"}, groups);
  EXPECT_TRUE(f.words.empty());

  auto lone = SplitCommandWords({"datasets"}, groups);
  EXPECT_EQ(lone.words, (std::vector<std::string>{"datasets"}));
  EXPECT_TRUE(SplitCommandWords({}, groups).words.empty());
  // A trailing global flag without its value does not read past the end.
  EXPECT_EQ(SplitCommandWords({"--url"}, groups).rest, (std::vector<std::string>{"--url"}));
}

TEST(FlagNumberTest, IntegersAreStrict) {
  EXPECT_EQ(*ParseIntFlag("limit", "20", 1, 100), 20);
  for (const char* bad : {"", "abc", "1.5", "0", "101", " 5", "+5", "5x", "99999999999999999999999", "0x10"}) {
    auto r = ParseIntFlag("limit", bad, 1, 100);
    EXPECT_FALSE(r.ok()) << bad;
    if (!r.ok()) {
      EXPECT_NE(r.status().message().find("--limit"), std::string::npos);
    }
  }
}

TEST(FlagNumberTest, DoublesAreStrictAndFinite) {
  EXPECT_DOUBLE_EQ(*ParseDoubleFlag("test-fraction", "0.25", 0, 0.99), 0.25);
  for (const char* bad : {"", "nan", "inf", "1e400", "1.0", "-0.1", ".5", "0.2.3", "0x1p-2"}) {
    EXPECT_FALSE(ParseDoubleFlag("test-fraction", bad, 0, 0.99).ok()) << bad;
  }
}

TEST(ParamValueTest, TypesNumbersAndBooleansOnly) {
  EXPECT_EQ(ParseParamValue("6"), Json(6));
  EXPECT_TRUE(ParseParamValue("6").is_number_integer());
  EXPECT_EQ(ParseParamValue("-3"), Json(-3));
  EXPECT_EQ(ParseParamValue("0.1"), Json(0.1));
  EXPECT_TRUE(ParseParamValue("1e-3").is_number_float());
  EXPECT_EQ(ParseParamValue("true"), Json(true));
  EXPECT_EQ(ParseParamValue("false"), Json(false));
  for (const char* s : {"", "True", "null", "hist", "1e", "0x10", "NaN", "inf", "01", "1.", ".5", "+1", " 1",
                        "1 ", "1,000", "[1]", "{}"}) {
    EXPECT_EQ(ParseParamValue(s), Json(s)) << s;
  }
  // Out of range numbers are kept as text rather than becoming inf.
  EXPECT_EQ(ParseParamValue("1e999"), Json("1e999"));
  EXPECT_TRUE(ParseParamValue("123456789012345678901234567890").is_number());
  EXPECT_TRUE(ParseParamValue(std::string(1000, '9')).is_string());
}

TEST(ParamTest, SplitsOnFirstEquals) {
  auto p = ParseParam("max_depth=6");
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->first, "max_depth");
  EXPECT_EQ(p->second, Json(6));
  auto q = ParseParam("objective=reg:squarederror=x");
  ASSERT_TRUE(q.ok());
  EXPECT_EQ(q->second, Json("reg:squarederror=x"));
  auto e = ParseParam("eta=");
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(e->second, Json(""));
  EXPECT_FALSE(ParseParam("max_depth").ok());
  EXPECT_FALSE(ParseParam("=6").ok());
  EXPECT_FALSE(ParseParam(" =6").ok());
}

TEST(InstancesTest, OneObjectArrayWrappedAndJsonLines) {
  auto one = ParseInstances(R"({"a": 1, "b": "x"})");
  ASSERT_TRUE(one.ok()) << one.status().message();
  EXPECT_EQ(*one, Json::parse(R"([{"a":1,"b":"x"}])"));

  auto arr = ParseInstances("\xEF\xBB\xBF [ {\"a\":1}, {\"a\":2} ]\n");
  ASSERT_TRUE(arr.ok());
  EXPECT_EQ(arr->size(), 2u);

  auto wrapped = ParseInstances(R"({"instances":[{"a":1},{"a":2},{"a":3}]})");
  ASSERT_TRUE(wrapped.ok());
  EXPECT_EQ(wrapped->size(), 3u);

  auto lines = ParseInstances("{\"a\":1}\n\n{\"a\":2}\r\n  {\"a\":3}  \n");
  ASSERT_TRUE(lines.ok()) << lines.status().message();
  EXPECT_EQ(*lines, Json::parse(R"([{"a":1},{"a":2},{"a":3}])"));

  // A pretty-printed multi-line object is one document, not JSON Lines.
  auto pretty = ParseInstances("{\n  \"a\": 1,\n  \"b\": 2\n}\n");
  ASSERT_TRUE(pretty.ok());
  EXPECT_EQ(pretty->size(), 1u);
}

TEST(InstancesTest, ErrorsNameTheLineOrIndex) {
  auto bad_line = ParseInstances("{\"a\":1}\n{\"a\":2}\n{\"a\":\n");
  ASSERT_FALSE(bad_line.ok());
  EXPECT_NE(bad_line.status().message().find("line 3"), std::string::npos) << bad_line.status().message();
  ASSERT_EQ(bad_line.status().details().size(), 1u);
  EXPECT_EQ(bad_line.status().details()[0].line, 3);

  auto not_obj = ParseInstances("{\"a\":1}\n[1,2]\n");
  ASSERT_FALSE(not_obj.ok());
  EXPECT_NE(not_obj.status().message().find("line 2"), std::string::npos);

  auto arr_elem = ParseInstances(R"([{"a":1}, 5])");
  ASSERT_FALSE(arr_elem.ok());
  EXPECT_NE(arr_elem.status().message().find("instance 1"), std::string::npos);

  for (const char* bad : {"", "   \n\t", "[]", "5", "\"x\"", "null", "{", "{\"a\":1", "[{\"a\":1}", "{\"a\":1}}",
                          R"({"instances":[]})", "\xff\xfe", "{\"a\":1} garbage"}) {
    EXPECT_FALSE(ParseInstances(bad).ok()) << bad;
  }
}

TEST(InstancesTest, HostileInputIsRejectedNotCrashed) {
  std::string deep(100000, '[');
  EXPECT_FALSE(ParseInstances(deep).ok());
  std::string deep_lines = "{\"a\":1}\n" + std::string(5000, '[') + "\n";
  EXPECT_FALSE(ParseInstances(deep_lines).ok());
  EXPECT_FALSE(ParseInstances(std::string(2000, '{'), 1000).ok());  // over max_bytes
  auto limited = ParseInstances(std::string(2000, ' ') + "{}", 100);
  ASSERT_FALSE(limited.ok());
  EXPECT_NE(limited.status().message().find("limit"), std::string::npos);
  // Truncations of a valid input are all errors or valid, never crashes.
  const std::string good = "{\"a\":1,\"b\":[1,2,{\"c\":\"\\u00e9\"}]}\n{\"a\":2}\n";
  for (size_t i = 0; i < good.size(); ++i) {
    auto r = ParseInstances(good.substr(0, i));
    if (r.ok()) {
      EXPECT_TRUE(r->is_array());
    }
  }
}

}  // namespace
}  // namespace lathe::cli
