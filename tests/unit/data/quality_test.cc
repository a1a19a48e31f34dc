#include "data/quality.h"

#include <gtest/gtest.h>

#include "data/value_parse.h"
#include "data_test_util.h"

namespace lathe {
namespace {

using testing::ScratchDir;

std::unique_ptr<DatasetFile> Dataset(const ScratchDir& dir, const std::string& csv) {
  auto r = ImportCsvFile(dir.Write("in.csv", csv), dir.Path("d.lcol"), CsvOptions{}, nullptr, nullptr);
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  return std::move(DatasetFile::Open(dir.Path("d.lcol"))).value();
}

Json CheckFor(const Json& report, const std::string& column, const std::string& rule) {
  for (const auto& c : report["checks"]) {
    if (c.value("column", std::string()) == column && c["rule"] == rule) return c;
  }
  ADD_FAILURE() << "no check " << column << "." << rule << " in " << report.dump();
  return Json::object();
}

constexpr const char* kCsv =
    "id,age,email,plan,updated\n"
    "1,34,ann@example.com,free,2026-11-20T10:00:00Z\n"
    "2,-4,bob@example,pro,2026-11-21T10:00:00Z\n"
    "3,,cy@example.org,gold,2026-11-22T10:00:00Z\n"
    "3,200,dee@example.net,pro,2026-11-22T12:00:00Z\n";

TEST(QualityTest, EveryColumnRuleCountsFailingRowsWithExamples) {
  ScratchDir dir;
  auto file = Dataset(dir, kCsv);
  auto contract = ParseContract(Json::parse(R"({
    "columns": {
      "id": {"unique": true, "type": "integer"},
      "age": {"not_null": true, "min": 0, "max": 150, "type": "float"},
      "email": {"regex": "^[^@]+@[^@.]+\\.[a-z]+$"},
      "plan": {"allowed": ["free", "pro"]},
      "missing_col": {"not_null": true}
    },
    "rows": {"min": 5}
  })"));
  ASSERT_TRUE(contract.ok()) << contract.status().ToString();
  auto report = CheckContract(*file, *contract, 0);
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  EXPECT_FALSE((*report)["passed"]);
  auto unique = CheckFor(*report, "id", "unique");
  EXPECT_EQ(unique["failing_rows"], 1);
  EXPECT_EQ(unique["examples"][0]["row"], 3);
  EXPECT_EQ(unique["examples"][0]["value"], "3");
  EXPECT_TRUE(CheckFor(*report, "id", "type")["passed"]);
  EXPECT_TRUE(CheckFor(*report, "age", "type")["passed"]);  // integer satisfies float
  EXPECT_EQ(CheckFor(*report, "age", "not_null")["failing_rows"], 1);
  EXPECT_EQ(CheckFor(*report, "age", "min")["examples"][0]["value"], "-4");
  EXPECT_EQ(CheckFor(*report, "age", "max")["failing_rows"], 1);
  auto regex = CheckFor(*report, "email", "regex");
  EXPECT_EQ(regex["failing_rows"], 1);
  EXPECT_EQ(regex["examples"][0]["value"], "bob@example");
  EXPECT_EQ(CheckFor(*report, "plan", "allowed")["examples"][0]["value"], "gold");
  EXPECT_NE(CheckFor(*report, "missing_col", "required")["message"].get<std::string>().find("missing"),
            std::string::npos);
  EXPECT_NE(CheckFor(*report, "", "rows")["message"].get<std::string>().find("fewer"), std::string::npos);
}

TEST(QualityTest, AContractThatHoldsPassesAndFreshnessUsesNow) {
  ScratchDir dir;
  auto file = Dataset(dir, kCsv);
  auto contract = ParseContract(Json::parse(R"({
    "columns": {"plan": {"allowed": ["free", "pro", "gold"]}, "email": {"not_null": true}},
    "rows": {"min": 1, "max": 4},
    "freshness": {"column": "updated", "max_age_hours": 24}
  })"));
  ASSERT_TRUE(contract.ok());
  int64_t newest = 0;
  ASSERT_TRUE(ParseDatetimeMicros("2026-11-22T12:00:00Z", &newest));
  auto fresh = CheckContract(*file, *contract, newest + int64_t{3600} * 1000000);
  ASSERT_TRUE(fresh.ok());
  EXPECT_TRUE((*fresh)["passed"]) << fresh->dump();
  auto stale = CheckContract(*file, *contract, newest + int64_t{48} * 3600 * 1000000);
  EXPECT_FALSE((*stale)["passed"]);
  EXPECT_FALSE(CheckFor(*stale, "updated", "freshness")["passed"]);
}

TEST(QualityTest, TypeMismatchAndRangeOnTextAreReportedNotCrashed) {
  ScratchDir dir;
  auto file = Dataset(dir, kCsv);
  auto contract = ParseContract(Json::parse(R"({"columns": {"email": {"type": "integer", "min": 1}}})"));
  ASSERT_TRUE(contract.ok());
  auto report = CheckContract(*file, *contract, 0);
  ASSERT_TRUE(report.ok());
  EXPECT_NE(CheckFor(*report, "email", "type")["message"].get<std::string>().find("expected integer"),
            std::string::npos);
  EXPECT_FALSE(CheckFor(*report, "email", "min")["passed"]);
}

TEST(QualityTest, MalformedContractsNameTheField) {
  struct Case {
    const char* json;
    const char* field;
  } cases[] = {
      {R"([])", "contract"},
      {R"({"columns": {"a": {"min": "soon"}}})", "contract.columns.a.min"},
      {R"({"columns": {"a": {"regex": "(unclosed"}}})", "contract.columns.a.regex"},
      {R"({"columns": {"a": {"allowed": []}}})", "contract.columns.a.allowed"},
      {R"({"columns": {"a": {"nullable": true}}})", "contract.columns.a.nullable"},
      {R"({"columns": {"a": {"type": "decimal"}}})", "contract.columns.a.type"},
      {R"({"columns": {"a": {"min": 5, "max": 1}}})", "contract.columns.a.min"},
      {R"({"rows": {"min": -1}})", "contract.rows.min"},
      {R"({"freshness": {"column": "t"}})", "contract.freshness"},
      {R"({"extra": 1})", "contract.extra"},
  };
  for (const auto& c : cases) {
    auto r = ParseContract(Json::parse(c.json));
    ASSERT_FALSE(r.ok()) << c.json;
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
    ASSERT_FALSE(r.status().details().empty());
    EXPECT_EQ(r.status().details()[0].field, c.field) << c.json;
  }
}

}  // namespace
}  // namespace lathe
