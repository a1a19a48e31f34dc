#include "data/xlsx_import.h"

#include <zip.h>

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

XlsxOptions XlsxOptionsFrom(const Json& j) {
  XlsxOptions o;
  if (!j.is_object()) return o;
  o.sheet = j.value("sheet", o.sheet);
  o.header_row = j.value("header_row", o.header_row);
  o.max_uncompressed_bytes = j.value("max_uncompressed_bytes", o.max_uncompressed_bytes);
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

// Every case in tests/data/xlsx/cases.json: the file, the options, and either the expected columns, rows,
// bad-row count and quarantine lines, or the expected error (code, message part, line, column).
TEST(XlsxImportCases, FixtureTable) {
  std::ifstream f(Fixture("xlsx/cases.json"));
  ASSERT_TRUE(f.good());
  Json cases = Json::parse(f);
  ASSERT_GT(cases.size(), 25u);
  for (const Json& c : cases) {
    std::string name = c["name"];
    SCOPED_TRACE(name);
    ScratchDir dir;
    std::string out = dir.Path("out.lcol");
    ImportOptions import = ImportOptionsFrom(c.value("import", Json()), dir);
    auto r = ImportXlsxFile(Fixture("xlsx/" + c["file"].get<std::string>()), out,
                            XlsxOptionsFrom(c.value("xlsx", Json())), import, nullptr, nullptr);
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
    EXPECT_GT(r->input_bytes, 0);
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

// Builds a workbook in memory with libzip: one sheet of `rows` data rows, shared strings, a date style.
std::string WriteWorkbook(const ScratchDir& dir, int rows) {
  std::string sheet =
      "<?xml version=\"1.0\"?><worksheet xmlns=\"http://schemas.openxmlformats.org/spreadsheetml/2006/main\">"
      "<sheetData><row r=\"1\"><c t=\"s\"><v>0</v></c><c t=\"s\"><v>1</v></c><c t=\"s\"><v>2</v></c>"
      "<c t=\"s\"><v>3</v></c></row>";
  for (int i = 0; i < rows; ++i) {
    std::string r = std::to_string(i + 2);
    sheet += "<row r=\"" + r + "\"><c r=\"A" + r + "\"><v>" + std::to_string(i) + "</v></c>";
    if (i % 5 != 0) sheet += "<c r=\"B" + r + "\"><v>" + std::to_string(i) + ".5</v></c>";
    sheet += "<c r=\"C" + r + "\" t=\"s\"><v>" + std::to_string(4 + i % 3) + "</v></c>";
    sheet += "<c r=\"D" + r + "\" s=\"1\"><v>" + std::to_string(40000 + i % 1000) + "</v></c></row>";
  }
  sheet += "</sheetData></worksheet>";
  std::string sst =
      "<sst xmlns=\"http://schemas.openxmlformats.org/spreadsheetml/2006/main\"><si><t>n</t></si><si><t>x</t></si>"
      "<si><t>g</t></si><si><t>d</t></si><si><t>red</t></si><si><t>green</t></si><si><t>blue</t></si></sst>";
  std::string styles =
      "<styleSheet xmlns=\"http://schemas.openxmlformats.org/spreadsheetml/2006/main\"><cellXfs>"
      "<xf numFmtId=\"0\"/><xf numFmtId=\"14\"/></cellXfs></styleSheet>";
  std::string wb =
      "<workbook xmlns=\"http://schemas.openxmlformats.org/spreadsheetml/2006/main\" "
      "xmlns:r=\"http://schemas.openxmlformats.org/officeDocument/2006/relationships\"><sheets>"
      "<sheet name=\"Big\" sheetId=\"1\" r:id=\"rId1\"/></sheets></workbook>";
  std::string rels =
      "<Relationships xmlns=\"http://schemas.openxmlformats.org/package/2006/relationships\">"
      "<Relationship Id=\"rId1\" Type=\"x/worksheet\" Target=\"worksheets/sheet1.xml\"/></Relationships>";
  std::string path = dir.Path("big.xlsx");
  int err = 0;
  zip_t* z = zip_open(path.c_str(), ZIP_CREATE | ZIP_TRUNCATE, &err);
  EXPECT_NE(z, nullptr);
  std::vector<std::unique_ptr<std::string>> keep;
  auto add = [&](const char* name, const std::string& data) {
    keep.push_back(std::make_unique<std::string>(data));
    zip_source_t* s = zip_source_buffer(z, keep.back()->data(), keep.back()->size(), 0);
    EXPECT_GE(zip_file_add(z, name, s, ZIP_FL_OVERWRITE), 0);
  };
  add("xl/workbook.xml", wb);
  add("xl/_rels/workbook.xml.rels", rels);
  add("xl/sharedStrings.xml", sst);
  add("xl/styles.xml", styles);
  add("xl/worksheets/sheet1.xml", sheet);
  EXPECT_EQ(zip_close(z), 0);
  return path;
}

TEST(XlsxImport, ManyRowGroupsStreamed) {
  ScratchDir dir;
  const int n = 140000;
  std::string path = WriteWorkbook(dir, n);
  std::string out = dir.Path("out.lcol");
  std::vector<double> progress;
  auto r = ImportXlsxFile(path, out, {}, {}, [&](double p) { progress.push_back(p); }, nullptr);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->rows, n);
  ASSERT_EQ(r->columns.size(), 4u);
  EXPECT_EQ(r->columns[0].type, ColumnType::kInt64);
  EXPECT_EQ(r->columns[1].type, ColumnType::kFloat64);
  EXPECT_EQ(r->columns[1].missing, (n + 4) / 5);
  EXPECT_EQ(r->columns[2].type, ColumnType::kString);
  EXPECT_EQ(r->columns[3].type, ColumnType::kDatetime);
  ASSERT_FALSE(progress.empty());
  EXPECT_DOUBLE_EQ(progress.back(), 1.0);
  auto t = (*DatasetFile::Open(out))->ReadAll();
  ASSERT_TRUE(t.ok());
  for (int i = 0; i < n; i += 1009) {
    size_t k = static_cast<size_t>(i);
    EXPECT_EQ(t->columns[0].i64[k], i);
    EXPECT_EQ(t->columns[1].IsValid(k), i % 5 != 0);
    if (i % 5 != 0) {
      EXPECT_DOUBLE_EQ(t->columns[1].f64[k], i + 0.5);
    }
    const char* colors[] = {"red", "green", "blue"};
    EXPECT_EQ(t->columns[2].StringAt(k), colors[i % 3]);
    EXPECT_EQ(t->columns[3].i64[k], (40000 + i % 1000 - 25569) * 86400000000LL);
  }
}

TEST(XlsxImport, CancelLeavesNothing) {
  ScratchDir dir;
  std::string path = WriteWorkbook(dir, 5000);
  int calls = 0;
  auto r = ImportXlsxFile(path, dir.Path("out.lcol"), {}, {}, nullptr, [&] { return ++calls > 2; });
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kCancelled);
  EXPECT_EQ(dir.FileCount(), 1u);
}

TEST(XlsxImport, ListSheets) {
  auto s = ListXlsxSheets(Fixture("xlsx/multi.xlsx"));
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(*s, (std::vector<std::string>{"People", "Report", "Numbers"}));
  auto h = ListXlsxSheets(Fixture("xlsx/handmade.xlsx"));
  ASSERT_TRUE(h.ok());
  EXPECT_EQ(*h, (std::vector<std::string>{"Data", "Errors"}));
  auto bad = ListXlsxSheets(Fixture("xlsx/old.xls"));
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find(".xls file"), std::string::npos);
  auto missing = ListXlsxSheets(Fixture("xlsx/missing_workbook.xlsx"));
  ASSERT_FALSE(missing.ok());
}

// Every single-byte corruption of a small workbook is answered with a value, never a crash.
TEST(XlsxImport, CorruptedBytesNeverCrash) {
  ScratchDir dir;
  std::ifstream f(Fixture("xlsx/handmade.xlsx"), std::ios::binary);
  std::string data((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  ASSERT_GT(data.size(), 1000u);
  int failures = 0;
  for (size_t i = 0; i < data.size(); i += 7) {
    std::string bad = data;
    bad[i] = static_cast<char>(bad[i] ^ 0x5A);
    std::string in = dir.Write("in.xlsx", bad);
    auto r = ImportXlsxFile(in, dir.Path("out.lcol"), {}, {}, nullptr, nullptr);
    if (!r.ok()) {
      ++failures;
      EXPECT_NE(r.status().code(), StatusCode::kInternal) << r.status().ToString();
      EXPECT_FALSE(std::filesystem::exists(dir.Path("out.lcol")));
    }
    std::filesystem::remove(dir.Path("out.lcol"));
  }
  EXPECT_GT(failures, 0);
}

}  // namespace
}  // namespace lathe
