#include "data/export.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <string>

#include "data/csv_import.h"
#include "data_test_util.h"

namespace lathe {
namespace {

using lathe::testing::ScratchDir;

Table MixedTable() {
  Table t;
  t.num_rows = 4;
  Column i{"id", ColumnType::kInt64};
  i.i64 = {1, -2, 3, 4};
  i.valid = {1, 1, 0, 1};
  Column f{"score", ColumnType::kFloat64};
  f.f64 = {0.1, 1e300, -2.5, 3};
  f.valid = {1, 1, 1, 0};
  Column b{"ok", ColumnType::kBool};
  b.b = {1, 0, 1, 0};
  b.valid = {1, 1, 1, 0};
  Column d{"when", ColumnType::kDatetime};
  d.i64 = {0, 1709294400000000, 1709294400123456, 0};
  d.valid = {1, 1, 1, 0};
  Column s{"text, \"quoted\"", ColumnType::kString};
  s.dict = {"plain", "a,b", "say \"hi\"", "line\nbreak", " padded "};
  s.codes = {0, 1, 2, 3};
  s.valid = {1, 1, 1, 1};
  Column s2{"more", ColumnType::kString};
  s2.dict = {"x", " padded "};
  s2.codes = {1, 0, 0, 0};
  s2.valid = {1, 1, 0, 1};
  t.columns = {i, f, b, d, s, s2};
  return t;
}

std::string Collect(const Table& t, ExportFormat fmt) {
  std::string out;
  Status s = ExportTable(t, fmt, [&](std::string_view c) {
    out.append(c);
    return Status::Ok();
  });
  EXPECT_TRUE(s.ok()) << s.ToString();
  return out;
}

TEST(ExportTest, CsvQuotingAndValueFormats) {
  std::string csv = Collect(MixedTable(), ExportFormat::kCsv);
  EXPECT_EQ(csv,
            "id,score,ok,when,\"text, \"\"quoted\"\"\",more\n"
            "1,0.1,true,1970-01-01T00:00:00Z,plain,\" padded \"\n"
            "-2,1e+300,false,2024-03-01T12:00:00Z,\"a,b\",x\n"
            ",-2.5,true,2024-03-01T12:00:00.123456Z,\"say \"\"hi\"\"\",\n"
            "4,,,,\"line\nbreak\",x\n");
}

TEST(ExportTest, JsonlNullsNonFiniteAndEscapes) {
  Table t = MixedTable();
  t.columns[1].f64[1] = std::numeric_limits<double>::infinity();
  t.columns[4].dict[0] = std::string("bad \xff byte\t");
  std::string out = Collect(t, ExportFormat::kJsonl);
  std::vector<Json> rows;
  size_t start = 0;
  for (size_t nl = out.find('\n'); nl != std::string::npos; start = nl + 1, nl = out.find('\n', start)) {
    rows.push_back(Json::parse(out.substr(start, nl - start)));
  }
  ASSERT_EQ(rows.size(), 4u);
  EXPECT_EQ(rows[0]["id"], 1);
  EXPECT_EQ(rows[0]["score"], 0.1);
  EXPECT_EQ(rows[0]["ok"], true);
  EXPECT_EQ(rows[0]["when"], "1970-01-01T00:00:00Z");
  EXPECT_EQ(rows[0]["text, \"quoted\""], "bad \xEF\xBF\xBD byte\t");
  EXPECT_TRUE(rows[1]["score"].is_null());  // inf
  EXPECT_TRUE(rows[2]["id"].is_null());
  EXPECT_TRUE(rows[3]["score"].is_null());
  EXPECT_EQ(rows[3]["text, \"quoted\""], "line\nbreak");
  EXPECT_EQ(out.substr(0, 8), "{\"id\":1,");  // keys in column order
}

TEST(ExportTest, CsvRoundTripsThroughTheImporter) {
  ScratchDir dir;
  Table t;
  t.num_rows = 3;
  Column i{"n", ColumnType::kInt64};
  i.i64 = {10, 20, 30};
  i.valid = {1, 0, 1};
  Column f{"x", ColumnType::kFloat64};
  f.f64 = {0.1, 2.0 / 3.0, -1e-7};
  f.valid = {1, 1, 1};
  Column s{"s", ColumnType::kString};
  s.dict = {"a,b", "c \"d\"", "e\nf"};
  s.codes = {0, 1, 2};
  s.valid = {1, 1, 1};
  Column d{"d", ColumnType::kDatetime};
  d.i64 = {0, 86400000000, 1709294400123456};
  d.valid = {1, 1, 1};
  Column b{"b", ColumnType::kBool};
  b.b = {1, 0, 1};
  b.valid = {1, 1, 1};
  t.columns = {i, f, s, d, b};
  std::string csv = Collect(t, ExportFormat::kCsv);
  auto imported = lathe::testing::ImportText(csv, dir);
  ASSERT_TRUE(imported.status.ok()) << imported.status.ToString();
  const Table& r = imported.table;
  ASSERT_EQ(r.num_rows, 3);
  ASSERT_EQ(r.columns.size(), 5u);
  for (size_t c = 0; c < 5; ++c) {
    EXPECT_EQ(r.columns[c].name, t.columns[c].name);
    EXPECT_EQ(r.columns[c].type, t.columns[c].type) << t.columns[c].name;
    EXPECT_EQ(r.columns[c].valid, t.columns[c].valid) << t.columns[c].name;
  }
  EXPECT_EQ(r.columns[0].i64[0], 10);
  EXPECT_EQ(r.columns[0].i64[2], 30);
  EXPECT_EQ(r.columns[1].f64, t.columns[1].f64);  // bit-exact floats
  for (size_t k = 0; k < 3; ++k) EXPECT_EQ(r.columns[2].StringAt(k), t.columns[2].StringAt(k));
  EXPECT_EQ(r.columns[3].i64, t.columns[3].i64);
  EXPECT_EQ(r.columns[4].b, t.columns[4].b);
}

TEST(ExportTest, DatasetStreamsInChunksAndStopsOnErrors) {
  ScratchDir dir;
  Table t;
  t.num_rows = 150000;
  Column c{"v", ColumnType::kInt64};
  for (int64_t k = 0; k < t.num_rows; ++k) c.i64.push_back(k * 1000003), c.valid.push_back(1);
  t.columns = {c};
  ASSERT_TRUE(WriteDatasetFile(t, dir.Path("d.lcol")).ok());
  auto f = DatasetFile::Open(dir.Path("d.lcol"));
  ASSERT_TRUE(f.ok());
  std::string all;
  int chunks = 0;
  size_t biggest = 0;
  ASSERT_TRUE(ExportDataset(**f, ExportFormat::kCsv,
                            [&](std::string_view s) {
                              all.append(s);
                              ++chunks;
                              biggest = std::max(biggest, s.size());
                              return Status::Ok();
                            },
                            nullptr)
                  .ok());
  EXPECT_GT(chunks, 1);
  EXPECT_LT(biggest, (size_t{1} << 20) + 4096);
  std::string direct = Collect(t, ExportFormat::kCsv);
  EXPECT_EQ(all, direct);
  EXPECT_EQ(std::count(all.begin(), all.end(), '\n'), 150001);

  Status s = ExportDataset(**f, ExportFormat::kJsonl, [](std::string_view) { return Status::Unavailable("disk full"); }, nullptr);
  EXPECT_EQ(s.code(), StatusCode::kUnavailable);
  Status c2 = ExportDataset(**f, ExportFormat::kCsv, [](std::string_view) { return Status::Ok(); }, [] { return true; });
  EXPECT_EQ(c2.code(), StatusCode::kCancelled);
}

TEST(ExportTest, FormatNamesAndBadTables) {
  EXPECT_EQ(*ParseExportFormat("csv"), ExportFormat::kCsv);
  EXPECT_EQ(*ParseExportFormat("ndjson"), ExportFormat::kJsonl);
  EXPECT_FALSE(ParseExportFormat("xml").ok());
  Table t = MixedTable();
  t.columns[4].codes[0] = 99;  // out of the dictionary
  Status s = ExportTable(t, ExportFormat::kCsv, [](std::string_view) { return Status::Ok(); });
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  Table empty;
  std::string out = Collect(empty, ExportFormat::kCsv);
  EXPECT_EQ(out, "\n");
}

}  // namespace
}  // namespace lathe
