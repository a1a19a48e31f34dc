#include "data/json_import.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "common/json.h"
#include "data/table_json.h"
#include "data_test_util.h"

namespace lathe {
namespace {

using testing::Fixture;
using testing::ScratchDir;

std::string ReadText(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

JsonImportOptions JsonOptionsFrom(const Json& j) {
  JsonImportOptions o;
  if (!j.is_object()) return o;
  std::string layout = j.value("layout", "auto");
  o.layout = layout == "lines" ? JsonLayout::kLines : layout == "array" ? JsonLayout::kArray : JsonLayout::kAuto;
  o.max_depth = j.value("max_depth", o.max_depth);
  o.max_record_bytes = j.value("max_record_bytes", o.max_record_bytes);
  o.max_columns = j.value("max_columns", o.max_columns);
  return o;
}

ImportOptions ImportOptionsFrom(const Json& j, const ScratchDir& dir) {
  ImportOptions o;
  o.quarantine_path = dir.Path("quarantine.jsonl");
  if (!j.is_object()) return o;
  if (j.contains("hints")) {
    auto h = ParseSchemaHints(j["hints"]);
    EXPECT_TRUE(h.ok()) << h.status().ToString();
    if (h.ok()) o.hints = *h;
  }
  if (j.contains("bad_rows")) o.bad_rows = *ParseBadRowPolicy(j["bad_rows"].get<std::string>());
  o.max_bad_rows = j.value("max_bad_rows", o.max_bad_rows);
  return o;
}

// Every case in tests/data/json/cases.json: the file, the options, and either the expected columns, rows,
// bad-row count and quarantine lines, or the expected error (code, message part, line, column).
TEST(JsonImportCases, FixtureTable) {
  std::ifstream f(Fixture("json/cases.json"));
  ASSERT_TRUE(f.good());
  Json cases = Json::parse(f);
  ASSERT_GT(cases.size(), 40u);
  for (const Json& c : cases) {
    std::string name = c["name"];
    SCOPED_TRACE(name);
    ScratchDir dir;
    std::string out = dir.Path("out.lcol");
    ImportOptions import = ImportOptionsFrom(c.value("import", Json()), dir);
    auto r = ImportJsonFile(Fixture("json/" + c["file"].get<std::string>()), out,
                            JsonOptionsFrom(c.value("json", Json())), import, nullptr, nullptr);
    if (c.contains("error")) {
      const Json& e = c["error"];
      ASSERT_FALSE(r.ok());
      EXPECT_EQ(StatusCodeName(r.status().code()), e["code"].get<std::string>()) << r.status().ToString();
      EXPECT_NE(r.status().message().find(e["contains"].get<std::string>()), std::string::npos)
          << r.status().message();
      if (e.contains("line")) {
        ASSERT_FALSE(r.status().details().empty()) << r.status().ToString();
        EXPECT_EQ(r.status().details()[0].line, e["line"].get<int64_t>()) << r.status().ToString();
      }
      if (e.contains("column")) {
        ASSERT_FALSE(r.status().details().empty());
        EXPECT_EQ(r.status().details()[0].column, e["column"].get<std::string>());
      }
      EXPECT_FALSE(std::filesystem::exists(out));
      EXPECT_FALSE(std::filesystem::exists(import.quarantine_path));
      EXPECT_EQ(dir.FileCount(), 0u) << "a failed import left files behind";
      continue;
    }
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    auto file = DatasetFile::Open(out);
    ASSERT_TRUE(file.ok()) << file.status().ToString();
    auto table = (*file)->ReadAll();
    ASSERT_TRUE(table.ok());
    if (c.contains("columns")) {
      Json got = Json::array();
      for (const auto& col : r->columns) got.push_back(Json::array({col.name, ColumnTypeName(col.type)}));
      EXPECT_EQ(got, c["columns"]);
      ASSERT_EQ(table->columns.size(), r->columns.size());
      for (size_t i = 0; i < r->columns.size(); ++i) EXPECT_EQ(table->columns[i].type, r->columns[i].type);
    }
    if (c.contains("rows")) {
      Json rows = TableRowsToJson(*table);
      EXPECT_EQ(rows, c["rows"]) << rows.dump();
      // -0.0 == 0.0 in JSON comparison: check the sign bit where a case holds -0.0.
      for (size_t i = 0; i < c["rows"].size(); ++i) {
        for (const auto& [k, v] : c["rows"][i].items()) {
          if (v.is_number_float() && v.get<double>() == 0 && std::signbit(v.get<double>())) {
            EXPECT_TRUE(std::signbit(rows[i][k].get<double>())) << k;
          }
        }
      }
    }
    if (c.contains("rows_count")) {
      EXPECT_EQ(r->rows, c["rows_count"].get<int64_t>());
    }
    EXPECT_EQ(r->rows, table->num_rows);
    EXPECT_EQ(r->bad_rows, c.value("bad_rows", 0));
    EXPECT_EQ(r->encoding, "utf-8");
    if (c.contains("quarantine")) {
      std::istringstream lines(ReadText(import.quarantine_path));
      std::string line;
      size_t k = 0;
      while (std::getline(lines, line)) {
        ASSERT_LT(k, c["quarantine"].size()) << line;
        const Json& want = c["quarantine"][k++];
        Json got = Json::parse(line);
        EXPECT_EQ(got["line"], want["line"]);
        EXPECT_NE(got["reason"].get<std::string>().find(want["reason"].get<std::string>()), std::string::npos)
            << got.dump();
        if (want.contains("raw")) {
          EXPECT_EQ(got["raw"], want["raw"]);
        }
        if (want.contains("raw_prefix")) {
          EXPECT_EQ(got["raw"].get<std::string>().rfind(want["raw_prefix"].get<std::string>(), 0), 0u);
        }
        if (want.contains("raw_length")) {
          EXPECT_EQ(got["raw"].get<std::string>().size(), want["raw_length"].get<size_t>());
        }
      }
      EXPECT_EQ(k, c["quarantine"].size());
    } else {
      EXPECT_FALSE(std::filesystem::exists(import.quarantine_path)) << "quarantine written without bad rows";
    }
    EXPECT_EQ(dir.FileCount(), std::filesystem::exists(import.quarantine_path) ? 2u : 1u) << "temp files left";
  }
}

// Many row groups, both layouts, values checked row by row after the round trip.
TEST(JsonImport, ManyRowGroupsBothLayouts) {
  ScratchDir dir;
  const int n = 150000;
  std::string lines, array = "[";
  for (int i = 0; i < n; ++i) {
    std::string rec = "{\"id\":" + std::to_string(i) + ",\"x\":" + std::to_string(i * 0.5) +
                      ",\"g\":\"g" + std::to_string(i % 7) + "\"" +
                      (i % 3 == 0 ? ",\"opt\":{\"v\":" + std::to_string(i) + "}" : std::string()) + "}";
    lines += rec + "\n";
    array += (i ? ",\n" : "") + rec;
  }
  array += "]";
  for (const std::string& text : {lines, array}) {
    std::string in = dir.Write("in.json", text);
    std::string out = dir.Path("out.lcol");
    std::vector<double> progress;
    auto r = ImportJsonFile(in, out, {}, {}, [&](double p) { progress.push_back(p); }, nullptr);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_EQ(r->rows, n);
    ASSERT_EQ(r->columns.size(), 4u);
    EXPECT_EQ(r->columns[3].name, "opt.v");
    EXPECT_EQ(r->columns[3].missing, n - (n + 2) / 3);
    ASSERT_FALSE(progress.empty());
    EXPECT_DOUBLE_EQ(progress.back(), 1.0);
    EXPECT_TRUE(std::is_sorted(progress.begin(), progress.end()));
    auto t = (*DatasetFile::Open(out))->ReadAll();
    ASSERT_TRUE(t.ok());
    const Table& tab = *t;
    ASSERT_EQ(tab.columns[0].type, ColumnType::kInt64);
    ASSERT_EQ(tab.columns[1].type, ColumnType::kFloat64);
    ASSERT_EQ(tab.columns[2].type, ColumnType::kString);
    for (int i = 0; i < n; i += 997) {
      size_t r2 = static_cast<size_t>(i);
      EXPECT_EQ(tab.columns[0].i64[r2], i);
      EXPECT_DOUBLE_EQ(tab.columns[1].f64[r2], i * 0.5);
      EXPECT_EQ(tab.columns[2].StringAt(r2), "g" + std::to_string(i % 7));
      EXPECT_EQ(tab.columns[3].IsValid(r2), i % 3 == 0);
    }
    std::filesystem::remove(out);
  }
}

TEST(JsonImport, CancelLeavesNothing) {
  ScratchDir dir;
  std::string text;
  for (int i = 0; i < 5000; ++i) text += "{\"a\":" + std::to_string(i) + "}\n";
  std::string in = dir.Write("in.jsonl", text);
  int calls = 0;
  auto r = ImportJsonFile(in, dir.Path("out.lcol"), {}, {}, nullptr, [&] { return ++calls > 3; });
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kCancelled);
  EXPECT_EQ(dir.FileCount(), 1u);  // only the input
}

TEST(JsonImport, QuarantineNeedsAPath) {
  ScratchDir dir;
  std::string in = dir.Write("in.jsonl", "{\"a\":1}\n");
  ImportOptions o;
  o.bad_rows = BadRowPolicy::kQuarantine;
  auto r = ImportJsonFile(in, dir.Path("out.lcol"), {}, o, nullptr, nullptr);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("quarantine_path"), std::string::npos);
}

// Hostile inputs of every shape must come back as a value, never a crash.
TEST(JsonImport, HostileInputsNeverCrash) {
  ScratchDir dir;
  std::string deep_open(100000, '[');
  std::string deep_obj;
  for (int i = 0; i < 20000; ++i) deep_obj += "{\"a\":";
  const std::string inputs[] = {
      deep_open,
      "[" + deep_open,
      deep_obj,
      "[" + deep_obj,
      "{\"a\":\"\\",
      "[\"\\",
      "[{\"a\":1}" + std::string(1000, ','),
      std::string("{\"a\":1}\n\0\0\0\n", 12),
      "{\"a\":1e999999}\n",
      "{\"a\":-}\n{\"a\":--1}\n",
      "[{]",
      "[}]",
      "\xEF\xBB\xBF",
      "{\"a\":\"\xF0\x9F\x98\"}\n",
  };
  for (const auto& text : inputs) {
    std::string in = dir.Write("in.json", text);
    for (BadRowPolicy p : {BadRowPolicy::kFail, BadRowPolicy::kSkip}) {
      ImportOptions o;
      o.bad_rows = p;
      auto r = ImportJsonFile(in, dir.Path("out.lcol"), {}, o, nullptr, nullptr);
      if (p == BadRowPolicy::kFail) {
        EXPECT_FALSE(r.ok()) << text.substr(0, 40);
      }
      if (!r.ok()) {
        EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << r.status().ToString();
        EXPECT_FALSE(std::filesystem::exists(dir.Path("out.lcol")));
      }
      std::filesystem::remove(dir.Path("out.lcol"));
    }
  }
}

// A long single line that spans many read blocks is still one record.
TEST(JsonImport, RecordLargerThanAReadBlock) {
  ScratchDir dir;
  std::string big(12 << 20, 'q');
  std::string in = dir.Write("in.jsonl", "{\"a\":1}\n{\"a\":2,\"s\":\"" + big + "\"}\n{\"a\":3}");
  auto r = ImportJsonFile(in, dir.Path("out.lcol"), {}, {}, nullptr, nullptr);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->rows, 3);
  auto t = (*DatasetFile::Open(dir.Path("out.lcol")))->ReadAll();
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->columns[1].StringAt(1).size(), big.size());
}

}  // namespace
}  // namespace lathe
