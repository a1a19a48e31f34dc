#include "ml/pipeline.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>

#include "ml_test_tables.h"

namespace lathe::ml {
namespace {

using testing::MakeColumn;
using testing::MakeMixedTable;
using testing::PushBool;
using testing::PushFloat;
using testing::PushInt;
using testing::PushString;

// Avoids GCC 12's false -Wrestrict on `"literal" + std::string`.
std::string ValueName(size_t i) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "v%zu", i);
  return buf;
}

bool SameBits(float a, float b) { return std::memcmp(&a, &b, sizeof(float)) == 0; }

std::string FormatIso(int64_t micros) {
  const int64_t secs = micros / 1000000;
  const time_t t = static_cast<time_t>(secs);
  struct tm tm_utc;
  gmtime_r(&t, &tm_utc);
  char buf[64];
  std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm_utc);
  return buf;
}

// The same rows given as JSON instances (raw values, as a client would send them).
Json RowAsInstance(const Table& t, size_t r, const std::string& target) {
  Json o = Json::object();
  for (const Column& c : t.columns) {
    if (c.name == target) continue;
    if (!c.IsValid(r)) {
      o[c.name] = nullptr;
      continue;
    }
    switch (c.type) {
      case ColumnType::kInt64: o[c.name] = c.i64[r]; break;
      case ColumnType::kFloat64: o[c.name] = c.f64[r]; break;
      case ColumnType::kBool: o[c.name] = c.b[r] != 0; break;
      case ColumnType::kString: o[c.name] = std::string(c.StringAt(r)); break;
      case ColumnType::kDatetime: o[c.name] = FormatIso(c.i64[r]); break;
    }
  }
  return o;
}

TEST(FeaturePipeline, FitsTypesDropsIdentifierAndEncodesLabels) {
  Table t = MakeMixedTable(500, 1, "binary");
  auto p = FeaturePipeline::Fit(t, "label", Task::kBinary);
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  // age, income, active, city, signup(3) = 7 features; customer_id dropped as an identifier.
  EXPECT_EQ(p->NumFeatures(), 7u);
  Json j = p->ToJson();
  ASSERT_EQ(j["dropped"].size(), 1u);
  EXPECT_EQ(j["dropped"][0]["name"], "customer_id");
  EXPECT_NE(j["dropped"][0]["reason"].get<std::string>().find("identifier"), std::string::npos);
  EXPECT_EQ(p->feature_types()[3], "c");
  EXPECT_EQ(p->feature_names()[4], "signup.epoch_s");
  // "yes" is the positive class.
  ASSERT_EQ(p->labels().size(), 2u);
  EXPECT_EQ(p->labels()[0], "no");
  EXPECT_EQ(p->labels()[1], "yes");
}

TEST(FeaturePipeline, PositiveClassRules) {
  auto make = [](std::vector<std::string> values) {
    Table t;
    Column x = MakeColumn("x", ColumnType::kFloat64), y = MakeColumn("y", ColumnType::kString);
    for (size_t i = 0; i < values.size(); ++i) {
      PushFloat(&x, static_cast<double>(i));
      PushString(&y, values[i]);
    }
    t.num_rows = static_cast<int64_t>(values.size());
    t.columns = {x, y};
    return t;
  };
  auto p1 = FeaturePipeline::Fit(make({"true", "false", "true"}), "y", Task::kBinary);
  ASSERT_TRUE(p1.ok());
  EXPECT_EQ(p1->labels()[1], "true");
  auto p2 = FeaturePipeline::Fit(make({"Yes", "zzz", "Yes"}), "y", Task::kBinary);
  ASSERT_TRUE(p2.ok());
  EXPECT_EQ(p2->labels()[1], "Yes");  // named yes beats the larger "zzz"
  auto p3 = FeaturePipeline::Fit(make({"cat", "dog"}), "y", Task::kBinary);
  ASSERT_TRUE(p3.ok());
  EXPECT_EQ(p3->labels()[1], "dog");  // larger after sorting
  auto p4 = FeaturePipeline::Fit(make({"a", "b", "c"}), "y", Task::kBinary);
  ASSERT_FALSE(p4.ok());
  EXPECT_EQ(p4.status().details()[0].field, "target");
  auto p5 = FeaturePipeline::Fit(make({"a", "a"}), "y", Task::kMulticlass);
  ASSERT_FALSE(p5.ok());
  EXPECT_NE(p5.status().message().find("one class"), std::string::npos);
  auto p6 = FeaturePipeline::Fit(make({"a", "b"}), "y", Task::kRegression);
  ASSERT_FALSE(p6.ok());
  EXPECT_NE(p6.status().message().find("numeric"), std::string::npos);
  auto p7 = FeaturePipeline::Fit(make({"a", "b"}), "nope", Task::kBinary);
  ASSERT_FALSE(p7.ok());
  EXPECT_EQ(p7.status().code(), StatusCode::kInvalidArgument);

  // Integer labels keep their JSON type; 1 is positive.
  Table ti;
  Column x = MakeColumn("x", ColumnType::kFloat64), y = MakeColumn("y", ColumnType::kInt64);
  for (int i = 0; i < 4; ++i) {
    PushFloat(&x, i);
    PushInt(&y, i % 2);
  }
  ti.num_rows = 4;
  ti.columns = {x, y};
  auto pi = FeaturePipeline::Fit(ti, "y", Task::kBinary);
  ASSERT_TRUE(pi.ok());
  EXPECT_EQ(pi->labels()[1], 1);
  std::vector<int64_t> kept;
  auto yy = pi->EncodeTarget(ti, &kept);
  ASSERT_TRUE(yy.ok());
  EXPECT_EQ(*yy, (std::vector<float>{0, 1, 0, 1}));
}

TEST(FeaturePipeline, TableAndJsonEncodingsAreBitIdentical) {
  for (const char* task : {"binary", "multiclass", "regression"}) {
    Table t = MakeMixedTable(400, 7, task);
    const std::string target = t.columns.back().name;
    auto p = FeaturePipeline::Fit(t, target, *ParseTask(task));
    ASSERT_TRUE(p.ok()) << p.status().ToString();
    // Datetimes in JSON carry whole seconds; use whole-second timestamps (the generator does).
    auto m = p->TransformTable(t);
    ASSERT_TRUE(m.ok());
    const size_t w = p->NumFeatures();
    size_t nan_count = 0;
    for (size_t r = 0; r < static_cast<size_t>(t.num_rows); ++r) {
      Json inst = RowAsInstance(t, r, target);
      inst.erase("customer_id");  // dropped column: not a feature
      auto row = p->EncodeInstance(inst, "instances[" + std::to_string(r) + "]");
      ASSERT_TRUE(row.ok()) << row.status().ToString();
      for (size_t f = 0; f < w; ++f) {
        ASSERT_TRUE(SameBits((*m)[r * w + f], (*row)[f])) << task << " row " << r << " feature " << f;
        nan_count += std::isnan((*row)[f]) ? 1 : 0;
      }
    }
    EXPECT_GT(nan_count, 0u);  // missing values were exercised
  }
}

TEST(FeaturePipeline, SerializationRoundTripEncodesTheSame) {
  Table t = MakeMixedTable(300, 3, "multiclass");
  auto p = FeaturePipeline::Fit(t, "tier", Task::kMulticlass);
  ASSERT_TRUE(p.ok());
  auto q = FeaturePipeline::FromJson(Json::parse(p->ToJson().dump()));
  ASSERT_TRUE(q.ok()) << q.status().ToString();
  EXPECT_EQ(q->ToJson(), p->ToJson());
  auto a = p->TransformTable(t);
  auto b = q->TransformTable(t);
  ASSERT_TRUE(a.ok() && b.ok());
  ASSERT_EQ(a->size(), b->size());
  EXPECT_EQ(std::memcmp(a->data(), b->data(), a->size() * sizeof(float)), 0);
  EXPECT_EQ(q->labels(), p->labels());
}

TEST(FeaturePipeline, FromJsonRejectsHostileDocuments) {
  Table t = MakeMixedTable(100, 3, "binary");
  auto p = FeaturePipeline::Fit(t, "label", Task::kBinary);
  ASSERT_TRUE(p.ok());
  const Json good = p->ToJson();
  std::vector<Json> bad;
  bad.push_back(Json::array());
  bad.push_back(Json(nullptr));
  Json j = good; j["format_version"] = 99; bad.push_back(j);
  j = good; j["task"] = "ordinal"; bad.push_back(j);
  j = good; j["inputs"] = Json::array(); bad.push_back(j);
  j = good; j["inputs"][0]["type"] = "tensor"; bad.push_back(j);
  j = good; j["inputs"][3]["categories"] = {1, 2}; bad.push_back(j);
  j = good; j["inputs"][3]["categories"] = {"a", "a"}; bad.push_back(j);
  j = good; j["inputs"][1]["name"] = j["inputs"][0]["name"]; bad.push_back(j);
  j = good; j["labels"] = {"x"}; bad.push_back(j);
  j = good; j["labels"] = {"x", Json::object()}; bad.push_back(j);
  j = good; j.erase("target"); bad.push_back(j);
  j = good; j["inputs"][0] = "age"; bad.push_back(j);
  j = good; j["inputs"][3]["other"] = "yes"; bad.push_back(j);
  j = good; j["format_version"] = "1"; bad.push_back(j);
  j = good; j["dropped"] = {{{"name", 5}, {"other_values", 7}}};
  EXPECT_TRUE(FeaturePipeline::FromJson(j).ok());  // descriptive only; tolerated
  for (const Json& b : bad) {
    auto r = FeaturePipeline::FromJson(b);
    EXPECT_FALSE(r.ok()) << b.dump();
    if (!r.ok()) {
      EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
    }
  }
}

TEST(FeaturePipeline, EncodeInstanceValidation) {
  Table t = MakeMixedTable(200, 5, "binary");
  auto p = FeaturePipeline::Fit(t, "label", Task::kBinary);
  ASSERT_TRUE(p.ok());
  const Json ok = {{"age", 30}, {"income", 50000.5}, {"active", true}, {"city", "rome"},
                   {"signup", "2021-03-04T05:06:07Z"}};
  ASSERT_TRUE(p->EncodeInstance(ok, "instances[3]").ok());

  auto expect_field = [&](const Json& inst, const std::string& field, const std::string& needle) {
    auto r = p->EncodeInstance(inst, "instances[3]");
    ASSERT_FALSE(r.ok()) << inst.dump();
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
    ASSERT_EQ(r.status().details().size(), 1u);
    EXPECT_EQ(r.status().details()[0].field, field) << r.status().ToString();
    EXPECT_NE(r.status().message().find(needle), std::string::npos) << r.status().message();
  };
  Json j = ok; j.erase("age");
  expect_field(j, "instances[3].age", "missing");
  j = ok; j["favorite_color"] = "red";
  expect_field(j, "instances[3].favorite_color", "unknown field");
  j = ok; j["label"] = "yes";
  expect_field(j, "instances[3].label", "target");
  j = ok; j["age"] = "thirty";
  expect_field(j, "instances[3].age", "expected a number");
  j = ok; j["income"] = Json::object();
  expect_field(j, "instances[3].income", "expected a number");
  j = ok; j["city"] = Json::array();
  expect_field(j, "instances[3].city", "expected a string");
  j = ok; j["city"] = 5;
  expect_field(j, "instances[3].city", "expected a string");
  j = ok; j["active"] = "yes";
  expect_field(j, "instances[3].active", "boolean");
  j = ok; j["signup"] = "last tuesday";
  expect_field(j, "instances[3].signup", "ISO 8601");
  j = ok; j["signup"] = 1700000000;
  expect_field(j, "instances[3].signup", "ISO 8601");
  expect_field(Json::array({1, 2}), "instances[3]", "JSON object");
  expect_field(Json("x"), "instances[3]", "JSON object");

  // Explicit null -> missing; unseen category -> missing.
  j = ok; j["age"] = nullptr; j["city"] = "atlantis"; j["signup"] = nullptr;
  auto row = p->EncodeInstance(j);
  ASSERT_TRUE(row.ok());
  EXPECT_TRUE(std::isnan((*row)[0]));
  EXPECT_TRUE(std::isnan((*row)[3]));
  for (int k = 4; k < 7; ++k) EXPECT_TRUE(std::isnan((*row)[static_cast<size_t>(k)]));
  EXPECT_FALSE(std::isnan((*row)[1]));

  // Beyond float range -> missing, on both paths.
  j = ok; j["income"] = 1e300; j["age"] = 18446744073709551615ULL;
  row = p->EncodeInstance(j);
  ASSERT_TRUE(row.ok());
  EXPECT_TRUE(std::isnan((*row)[1]));
  EXPECT_EQ((*row)[0], static_cast<float>(18446744073709551615.0));
  Table t2 = t;
  t2.columns[1].f64[0] = std::numeric_limits<double>::infinity();
  t2.columns[1].valid[0] = 1;
  auto m = p->TransformTable(t2);
  ASSERT_TRUE(m.ok());
  EXPECT_TRUE(std::isnan((*m)[1]));
}

TEST(FeaturePipeline, CategoryCodesByFrequencyAndCap) {
  Table t;
  Column s = MakeColumn("s", ColumnType::kString), y = MakeColumn("y", ColumnType::kFloat64);
  // "b" x3, "a" x2, "c" x1 (repeated so it is not an identifier)
  for (const char* v : {"b", "a", "b", "c", "a", "b"}) {
    PushString(&s, v);
    PushFloat(&y, 1.0);
  }
  t.num_rows = 6;
  t.columns = {s, y};
  auto p = FeaturePipeline::Fit(t, "y", Task::kRegression);
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->inputs()[0].categories, (std::vector<std::string>{"b", "a", "c"}));
  EXPECT_EQ((*p->EncodeInstance({{"s", "b"}}))[0], 0.0f);
  EXPECT_EQ((*p->EncodeInstance({{"s", "c"}}))[0], 2.0f);

  // Above the cap: rare values share the "other" code, which survives serialization.
  Table big;
  Column s2 = MakeColumn("s", ColumnType::kString), y2 = MakeColumn("y", ColumnType::kFloat64);
  const size_t n_values = FeaturePipeline::kMaxCategories + 50;
  for (size_t i = 0; i < n_values; ++i) {
    for (int rep = 0; rep < (i < FeaturePipeline::kMaxCategories ? 3 : 2); ++rep) {
      PushString(&s2, ValueName(i));
      PushFloat(&y2, 1.0);
    }
  }
  big.num_rows = static_cast<int64_t>(s2.size());
  big.columns = {s2, y2};
  auto pb = FeaturePipeline::Fit(big, "y", Task::kRegression);
  ASSERT_TRUE(pb.ok());
  EXPECT_EQ(pb->inputs()[0].categories.size(), FeaturePipeline::kMaxCategories);
  auto rt = FeaturePipeline::FromJson(pb->ToJson());
  ASSERT_TRUE(rt.ok());
  const float other = static_cast<float>(FeaturePipeline::kMaxCategories);
  EXPECT_EQ((*rt->EncodeInstance({{"s", ValueName(n_values - 1)}}))[0], other);
  EXPECT_TRUE(std::isnan((*rt->EncodeInstance({{"s", "never-seen"}}))[0]));
}

TEST(FeaturePipeline, AllMissingColumnIsDropped) {
  Table t;
  Column a = MakeColumn("a", ColumnType::kFloat64), e = MakeColumn("empty", ColumnType::kFloat64),
         y = MakeColumn("y", ColumnType::kBool);
  for (int i = 0; i < 10; ++i) {
    PushFloat(&a, i);
    PushFloat(&e, 0, false);
    PushBool(&y, i % 2 == 0);
  }
  t.num_rows = 10;
  t.columns = {a, e, y};
  auto p = FeaturePipeline::Fit(t, "y", Task::kBinary);
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->NumFeatures(), 1u);
  EXPECT_EQ(p->ToJson()["dropped"][0]["name"], "empty");
  EXPECT_EQ(p->labels()[1], true);
}

TEST(IsoDatetime, ParsesAndRejects) {
  EXPECT_EQ(*ParseIsoDatetimeMicros("1970-01-01"), 0);
  EXPECT_EQ(*ParseIsoDatetimeMicros("1970-01-02T00:00:01Z"), 86401000000LL);
  EXPECT_EQ(*ParseIsoDatetimeMicros("1970-01-01 01:00:00+01:00"), 0);
  EXPECT_EQ(*ParseIsoDatetimeMicros("1969-12-31T23:59:59.5"), -500000);
  EXPECT_EQ(*ParseIsoDatetimeMicros("2024-02-29T12:30"), 1709209800LL * 1000000);
  for (const char* bad : {"", "2024", "2024-13-01", "2023-02-29", "2024-01-01T25:00", "2024-01-01X",
                          "2024-01-01T10:00:00+2", "2024-01-01T10:00:00.", "  2024-01-01", "2024-1-1"}) {
    EXPECT_FALSE(ParseIsoDatetimeMicros(bad).ok()) << bad;
  }
  float f[FeaturePipeline::kDatetimeFeatures];
  DatetimeFeatures(*ParseIsoDatetimeMicros("2024-02-29T12:30:00Z"), f);
  EXPECT_EQ(f[0], 1709209800.0f);
  EXPECT_EQ(f[1], 2.0f);
  EXPECT_EQ(f[2], 3.0f);  // Thursday (Monday = 0)
  DatetimeFeatures(*ParseIsoDatetimeMicros("1969-12-31T23:00:00Z"), f);
  EXPECT_EQ(f[0], -3600.0f);
  EXPECT_EQ(f[1], 12.0f);
  EXPECT_EQ(f[2], 2.0f);  // Wednesday
}

}  // namespace
}  // namespace lathe::ml
