// The fast request decoder against the DOM path it stands in for: for every body it accepts, the DOM path
// (ParseJson + NativeInstances/MlflowInstances + FeaturePipeline::EncodeInstanceInto) accepts it too and gives
// bit-identical rows; every body the DOM path rejects, it declines.
#include "serving/request_decoder.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>

#include "../ml/ml_test_tables.h"
#include "serving/request_body.h"

namespace lathe {
namespace {

using ml::FeaturePipeline;
using Policy = FeaturePipeline::InputPolicy;

constexpr size_t kMaxRows = 100;

const FeaturePipeline& Pipeline() {
  static const FeaturePipeline p = [] {
    auto fit = FeaturePipeline::Fit(ml::testing::MakeMixedTable(400, 7, "binary"), "label", ml::Task::kBinary);
    EXPECT_TRUE(fit.ok()) << fit.status().ToString();
    return std::move(fit).value();
  }();
  return p;
}

// The DOM path; nullopt when it rejects the body.
std::optional<std::vector<float>> DomRows(const std::string& body, RequestShape shape, const Policy& policy) {
  auto parsed = ParseJson(body);
  if (!parsed.ok()) return std::nullopt;
  auto instances = shape == RequestShape::kNative ? NativeInstances(*parsed, kMaxRows) : MlflowInstances(*parsed, kMaxRows);
  if (!instances.ok()) return std::nullopt;
  const FeaturePipeline& p = Pipeline();
  std::vector<float> rows(instances->size() * p.NumFeatures(), 0.0f);
  for (size_t i = 0; i < instances->size(); ++i) {
    if (!p.EncodeInstanceInto((*instances)[i], rows.data() + i * p.NumFeatures(), "x", policy).ok()) {
      return std::nullopt;
    }
  }
  return rows;
}

std::optional<std::vector<float>> FastRows(const std::string& body, RequestShape shape, const Policy& policy) {
  std::vector<float> rows;
  size_t n = 0;
  TextSpan span;
  if (!DecodeRequestRows(body, shape, Pipeline(), policy, kMaxRows, &rows, &n, &span)) return std::nullopt;
  EXPECT_EQ(rows.size(), n * Pipeline().NumFeatures());
  // The records' span (what the prediction log stores) is the same instances the DOM path reads.
  auto parsed = ParseJson(body);
  if (span.end > span.begin && parsed.ok()) {
    auto instances = shape == RequestShape::kNative ? NativeInstances(*parsed, kMaxRows) : MlflowInstances(*parsed, kMaxRows);
    auto from_span = ParseJson(std::string_view(body).substr(span.begin, span.end - span.begin));
    EXPECT_TRUE(from_span.ok() && instances.ok() && *from_span == *instances) << body;
  }
  return rows;
}

// Equal as features: same bits, except that every NaN is the same missing value and 0 == -0.
bool SameFeatures(const std::vector<float>& a, const std::vector<float>& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (std::isnan(a[i]) && std::isnan(b[i])) continue;
    if (a[i] == 0.0f && b[i] == 0.0f) continue;
    if (std::memcmp(&a[i], &b[i], sizeof(float)) != 0) return false;
  }
  return true;
}

// Checks the contract on one body; returns whether the fast path took it.
bool Check(const std::string& body, RequestShape shape = RequestShape::kNative, const Policy& policy = Policy{}) {
  auto fast = FastRows(body, shape, policy);
  auto dom = DomRows(body, shape, policy);
  if (fast) {
    EXPECT_TRUE(dom.has_value()) << "fast path accepted what the DOM path rejects: " << body.substr(0, 300);
    if (dom) {
      EXPECT_TRUE(SameFeatures(*fast, *dom)) << "rows differ for " << body;
      for (size_t i = 0; i < fast->size() && i < dom->size(); ++i) {
        if (!SameFeatures({(*fast)[i]}, {(*dom)[i]})) ADD_FAILURE() << "feature " << i << ": " << (*fast)[i] << " vs " << (*dom)[i];
      }
    }
  }
  return fast.has_value();
}

std::string Record(int age, const std::string& income, const std::string& active, const std::string& city,
                   const std::string& signup) {
  return "{\"age\":" + std::to_string(age) + ",\"income\":" + income + ",\"active\":" + active + ",\"city\":" + city +
         ",\"signup\":" + signup + "}";
}

TEST(RequestDecoder, CommonBodiesTakeTheFastPathWithIdenticalRows) {
  const std::string r1 = Record(30, "51234.5", "true", "\"paris\"", "\"2021-03-04T05:06:07Z\"");
  const std::string r2 = Record(-7, "null", "false", "\"atlantis\"", "null");
  const std::string r3 = Record(61, "1e300", "1", "\"r\\u006fme\"", "\"2020-02-29\"");
  const std::string records = "[" + r1 + "," + r2 + "," + r3 + "]";
  EXPECT_TRUE(Check("{\"instances\":" + records + "}"));
  EXPECT_TRUE(Check("{\"dataframe_records\":" + records + "}"));
  EXPECT_TRUE(Check("{\"inputs\":" + records + "}", RequestShape::kMlflow));
  EXPECT_TRUE(Check(" \n{ \"instances\" : " + records + " }\n "));
  {
    std::vector<float> rows;
    size_t n = 0;
    TextSpan span;
    const std::string spaced = "{ \"instances\" :\n " + records + " \t}";
    ASSERT_TRUE(DecodeRequestRows(spaced, RequestShape::kNative, Pipeline(), Policy{}, kMaxRows, &rows, &n, &span));
    EXPECT_EQ(n, 3u);
    EXPECT_EQ(spaced.substr(span.begin, span.end - span.begin), records);
  }
  const std::string split =
      "{\"columns\":[\"signup\",\"city\",\"age\",\"income\",\"active\"],\"data\":[[\"2021-01-01T00:00:00+02:00\","
      "\"oslo\",40,123.25,false],[null,null,18446744073709551615,-0.0,0]]}";
  EXPECT_TRUE(Check(split));
  EXPECT_TRUE(Check("{\"dataframe_split\":" + split + "}"));
  EXPECT_TRUE(Check("{\"dataframe_split\":" + split + "}", RequestShape::kMlflow));
  EXPECT_TRUE(Check("{\"dataframe_split\":{\"index\":[0,1],\"columns\":[\"age\",\"income\",\"active\",\"city\","
                    "\"signup\"],\"data\":[[1,2,true,\"lima\",null],[3,4.5,false,\"rome\",\"2019-12-31\"]]}}"));
}

TEST(RequestDecoder, PoliciesMatchTheDomPath) {
  const std::string extra = "{\"instances\":[{\"age\":1,\"income\":2,\"active\":true,\"city\":\"x\",\"signup\":null,"
                            "\"label\":\"yes\",\"note\":{\"deep\":[1,{\"a\":null}]}}]}";
  EXPECT_FALSE(Check(extra));
  EXPECT_TRUE(Check(extra, RequestShape::kNative, Policy{.ignore_unknown_fields = true}));
  const std::string missing = "{\"instances\":[{\"age\":1},{}]}";
  EXPECT_FALSE(Check(missing));
  EXPECT_TRUE(Check(missing, RequestShape::kNative, Policy{.missing_fields_as_null = true}));
  const std::string split_missing = "{\"columns\":[\"city\",\"other\"],\"data\":[[\"rome\",[1]],[\"lima\",2]]}";
  EXPECT_FALSE(Check(split_missing, RequestShape::kNative, Policy{.missing_fields_as_null = true}));
  EXPECT_TRUE(Check(split_missing, RequestShape::kNative,
                    Policy{.ignore_unknown_fields = true, .missing_fields_as_null = true}));
  const std::string unseen = "{\"instances\":[" + Record(3, "4", "true", "\"atlantis\"", "null") + "]}";
  EXPECT_TRUE(Check(unseen));
  EXPECT_FALSE(Check(unseen, RequestShape::kNative, Policy{.reject_unseen_categories = true}));
}

TEST(RequestDecoder, DeclinesEveryBodyTheDomPathRejectsOrWouldReadDifferently) {
  const std::string ok = Record(30, "5.5", "true", "\"paris\"", "\"2021-03-04\"");
  const std::vector<std::string> bodies = {
      "",
      "[]",
      "{\"instances\":[]}",
      "{\"instances\":{}}",
      "{\"instances\":[" + ok + "],\"instances\":[" + ok + "]}",
      "{\"instances\":[" + ok + "],\"dataframe_records\":[" + ok + "]}",
      "{\"instances\":[" + ok + "]} x",
      "{\"instances\":[" + ok + "]}}",
      "{\"instances\":[" + ok + "]",
      "{\"instances\":[" + ok + ",]}",
      "{\"instances\":[" + Record(30, "\"5\"", "true", "\"paris\"", "null") + "]}",
      "{\"instances\":[" + Record(30, "5", "2", "\"paris\"", "null") + "]}",
      "{\"instances\":[" + Record(30, "5", "true", "7", "null") + "]}",
      "{\"instances\":[" + Record(30, "5", "true", "\"paris\"", "\"yesterday\"") + "]}",
      "{\"instances\":[" + Record(30, "5", "true", "\"paris\"", "17") + "]}",
      "{\"instances\":[" + Record(30, "[5]", "true", "\"paris\"", "null") + "]}",
      "{\"instances\":[" + Record(30, "123456789012345678901234567890", "true", "\"a\"", "null") + "]}",
      "{\"instances\":[" + Record(30, "nul", "true", "\"paris\"", "null") + "]}",
      "{\"instances\":[" + Record(30, "01", "true", "\"paris\"", "null") + "]}",
      "{\"instances\":[" + Record(30, "5", "true", "\"pa\\xris\"", "null") + "]}",
      "{\"instances\":[{\"age\":1,\"age\":2,\"income\":1,\"active\":true,\"city\":\"a\",\"signup\":null}]}",
      "{\"instances\":[" + ok + "],\"extra\":1}",
      "{\"data\":[[1]],\"columns\":[\"age\"]}",
      "{\"columns\":[\"age\",\"age\",\"income\",\"active\",\"city\",\"signup\"],\"data\":[[1,1,2,true,\"a\",null]]}",
      "{\"columns\":[\"age\",\"income\",\"active\",\"city\",\"signup\"],\"data\":[[1,2,true,\"a\"]]}",
      "{\"columns\":[\"age\",\"income\",\"active\",\"city\",\"signup\"],\"data\":[[1,2,true,\"a\",null,3]]}",
      "{\"columns\":[\"age\",\"income\",\"active\",\"city\",\"signup\"],\"data\":[]}",
      "{\"dataframe_split\":{\"columns\":[\"age\"],\"data\":[[1]],\"dtype\":{}}}",
  };
  for (const std::string& b : bodies) EXPECT_FALSE(Check(b)) << b;
  // MLflow has no top-level split form.
  EXPECT_FALSE(Check("{\"columns\":[\"age\",\"income\",\"active\",\"city\",\"signup\"],\"data\":[[1,2,true,\"a\",null]]}",
                     RequestShape::kMlflow));
  // More rows than allowed.
  std::string many = "{\"instances\":[";
  for (size_t i = 0; i <= kMaxRows; ++i) many += (i ? "," : "") + ok;
  EXPECT_FALSE(Check(many + "]}"));
}

// Random valid bodies (every value type, escapes, numbers at the edges), then every truncation and random
// byte damage of some of them: whatever the fast path accepts, the DOM path accepts with the same rows.
// (This found simdjson 3.0.1's get_number() reading "1844674407370955.615" as 0, and nlohmann's number
// overflow exception escaping ParseJson.)
TEST(RequestDecoder, RandomAndDamagedBodiesNeverDisagree) {
  std::mt19937_64 rng(42);
  auto pick = [&](std::initializer_list<const char*> xs) {
    return std::string(*(xs.begin() + static_cast<std::ptrdiff_t>(rng() % xs.size())));
  };
  size_t taken = 0;
  for (int iter = 0; iter < 300; ++iter) {
    std::string body = "{\"instances\":[";
    const int rows = 1 + static_cast<int>(rng() % 4);
    for (int r = 0; r < rows; ++r) {
      body += r ? "," : "";
      body += "{\"age\":" + pick({"0", "-1", "42", "9223372036854775807", "-9223372036854775808", "1.5", "null",
                                  "1e-320", "3.4028235e38", "3.5e38", "-0"}) +
              ",\"income\":" + pick({"0.1", "12345.678", "1E5", "null", "-2.5e-3", "18446744073709551615"}) +
              ",\"active\":" + pick({"true", "false", "0", "1", "1.0", "null"}) +
              ",\"city\":" + pick({"\"paris\"", "\"rome\"", "\"r\\u00f6me\"", "\"\\\"q\\\"\"", "\"\"", "null"}) +
              ",\"signup\":" + pick({"\"2021-03-04\"", "\"2021-03-04T05:06:07.123456Z\"", "\"1970-01-01 00:00\"",
                                     "null", "\"2021-03-04T05:06:07+05:30\""}) +
              "}";
    }
    body += "]}";
    taken += Check(body) ? 1 : 0;
    if (iter % 10 == 0) {
      for (size_t cut = 0; cut < body.size(); ++cut) Check(body.substr(0, cut));
      for (int k = 0; k < 50; ++k) {
        std::string damaged = body;
        damaged[rng() % damaged.size()] = static_cast<char>(rng() % 256);
        Check(damaged);
      }
    }
  }
  EXPECT_GT(taken, 250u);  // all of them are valid; the fast path must take (nearly) all
}

}  // namespace
}  // namespace lathe
