#include "data/csv_import.h"

#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <random>

#include "data/table_json.h"
#include "data_test_util.h"

namespace lathe {
namespace {

using testing::Fixture;
using testing::ImportPath;
using testing::ImportText;
using testing::ScratchDir;

const Column& Col(const Table& t, const std::string& name) {
  int i = t.FindColumn(name);
  EXPECT_GE(i, 0) << name;
  return t.columns[static_cast<size_t>(i < 0 ? 0 : i)];
}

// ---------------------------------------------------------------- errors

struct ErrorCase {
  const char* name;
  std::string csv;
  int64_t line;             // expected ErrorDetail line, or -1 for a column detail
  const char* column;       // expected ErrorDetail column (when line == -1)
  const char* message_part;
};

TEST(CsvImportErrors, EveryErrorNamesItsPlace) {
  std::string long_field = "a,b\n1," + std::string(200, 'x') + "\n";
  std::string long_line = "a,b\n1,2\n" + std::string(150, 'y') + "," + std::string(150, 'z') + "\n";
  const ErrorCase cases[] = {
      {"empty", "", 1, nullptr, "empty"},
      {"only_blank_lines", "\n\n", 1, nullptr, "empty"},
      {"header_only", "a,b\n", 2, nullptr, "no data rows"},
      {"header_only_no_newline", "a,b", 1, nullptr, "no data rows"},
      {"empty_header_name", "a,,c\n1,2,3\n", 1, nullptr, "column 2 of the header has an empty name"},
      {"duplicate_header", "a,b,a\n1,2,3\n", -1, "a", "duplicate column name 'a' (columns 1 and 3"},
      {"ragged_short", "a,b\n1,2\n3\n", 3, nullptr, "expected 2 fields (as in the header) but found 1"},
      {"ragged_long", "a,b\n1,2\n3,4\n5,6,7\n", 4, nullptr, "expected 2 fields (as in the header) but found 3"},
      {"ragged_after_multiline", "a,b\n1,\"x\ny\"\n3\n", 4, nullptr, "found 1"},
      {"unclosed_quote", "a,b\n1,2\n3,\"open\n4,5\n6,7\n", 3, nullptr, "line 3: unclosed quote: the quoted field that begins on this line"},
      {"unclosed_quote_header", "\"a,b\n1,2\n", 1, nullptr, "line 1: unclosed quote"},
      {"junk_after_quote", "a,b\n1,\"x\"y\n", 2, nullptr, "after the closing quote"},
      {"invalid_utf8", "a,b\n1,ok\n2,caf\xE9\n", 3, nullptr, "invalid UTF-8 at byte 6"},
      {"invalid_utf8_header", "a,\xFF\n1,2\n", 1, nullptr, "invalid UTF-8"},
      {"field_too_long", long_field, 2, nullptr, "max_field_bytes"},
      {"line_too_long", long_line, 3, nullptr, "max_line_bytes"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    ScratchDir dir;
    CsvOptions opts;
    opts.max_field_bytes = 160;
    opts.max_line_bytes = 250;
    opts.encoding = "utf-8";  // detection would read the invalid UTF-8 cases as Latin-1
    auto r = ImportText(c.csv, dir, opts);
    ASSERT_FALSE(r.status.ok());
    EXPECT_EQ(r.status.code(), StatusCode::kInvalidArgument) << r.status.ToString();
    EXPECT_NE(r.status.message().find(c.message_part), std::string::npos) << r.status.message();
    ASSERT_EQ(r.status.details().size(), 1u) << r.status.ToString();
    const ErrorDetail& d = r.status.details()[0];
    if (c.line >= 0) {
      EXPECT_EQ(d.line, c.line) << r.status.ToString();
      EXPECT_NE(r.status.message().find("line " + std::to_string(c.line)), std::string::npos) << r.status.message();
    } else {
      EXPECT_EQ(d.column, c.column);
    }
    // Nothing is left behind: only the input file remains in the directory.
    EXPECT_EQ(dir.FileCount(), 1u);
  }
}

TEST(CsvImportErrors, FixtureFilesReportLines) {
  ScratchDir dir;
  auto ragged = ImportPath(Fixture("ragged.csv"), dir);
  ASSERT_EQ(ragged.status.details().size(), 1u);
  EXPECT_EQ(ragged.status.details()[0].line, 3);
  auto unclosed = ImportPath(Fixture("unclosed.csv"), dir);
  ASSERT_EQ(unclosed.status.details().size(), 1u);
  EXPECT_EQ(unclosed.status.details()[0].line, 2);
  CsvOptions utf8;
  utf8.encoding = "utf-8";
  auto latin1 = ImportPath(Fixture("latin1.csv"), dir, utf8);
  EXPECT_NE(latin1.status.message().find("invalid UTF-8"), std::string::npos);
  EXPECT_EQ(dir.FileCount(), 0u);
  // Detected, the same file is Latin-1.
  auto detected = ImportPath(Fixture("latin1.csv"), dir);
  ASSERT_TRUE(detected.status.ok()) << detected.status.ToString();
  EXPECT_EQ(detected.result.encoding, "latin-1");
  EXPECT_EQ(detected.table.columns[1].StringAt(0), "caf\xC3\xA9");
}

TEST(CsvImportErrors, MissingInputIsNotFound) {
  ScratchDir dir;
  auto r = ImportCsvFile(dir.Path("nope.csv"), dir.Path("out.lcol"), {}, nullptr, nullptr);
  EXPECT_EQ(r.status().code(), StatusCode::kNotFound);
}

TEST(CsvImportErrors, ErrorsDeepInLargeFilesAcrossSegments) {
  // Small segments make the parallel scan and its joins do the work; the error is far from the start.
  std::string csv = "id,v\n";
  for (int i = 0; i < 5000; ++i) csv += std::to_string(i) + "," + std::to_string(i * 2) + "\n";
  csv += "5000\n";  // line 5002
  for (int i = 0; i < 100; ++i) csv += "1,2\n";
  ScratchDir dir;
  CsvOptions opts;
  opts.segment_bytes = 1024;
  auto r = ImportText(csv, dir, opts);
  ASSERT_EQ(r.status.details().size(), 1u) << r.status.ToString();
  EXPECT_EQ(r.status.details()[0].line, 5002);
  EXPECT_EQ(dir.FileCount(), 1u);
}

// ---------------------------------------------------------------- parsing

TEST(CsvImport, BomCrlfAndQuotes) {
  ScratchDir dir;
  auto r = ImportPath(Fixture("bom_crlf_quoted.csv"), dir);
  ASSERT_TRUE(r.status.ok()) << r.status.ToString();
  ASSERT_EQ(r.table.columns.size(), 2u);
  EXPECT_EQ(r.table.columns[0].name, "id");  // BOM stripped
  const Column& name = Col(r.table, "name");
  ASSERT_EQ(r.table.num_rows, 3);
  EXPECT_EQ(name.StringAt(0), "Smith, John");
  EXPECT_EQ(name.StringAt(1), "say \"hi\"");
  EXPECT_EQ(name.StringAt(2), "multi\r\nline");
  EXPECT_EQ(Col(r.table, "id").type, ColumnType::kInt64);
}

TEST(CsvImport, QuotingEdgeCases) {
  ScratchDir dir;
  auto r = ImportText(
      "a,b,c\n"
      "\"\",\"\"\"\",x\n"          // empty quoted (missing), a lone quote
      "\"a,b\",\"\"\"x\"\"\",y\n"  // delimiter inside, quotes at both ends
      "plain\"quote,2,z\n"         // a quote inside an unquoted field is literal
      "\"line1\nline2\",3,w\n"     // embedded newline
      "last,4,\"end\"",            // no final newline
      dir);
  ASSERT_TRUE(r.status.ok()) << r.status.ToString();
  const Column& a = Col(r.table, "a");
  const Column& b = Col(r.table, "b");
  ASSERT_EQ(r.table.num_rows, 5);
  EXPECT_FALSE(a.IsValid(0));
  EXPECT_EQ(b.StringAt(0), "\"");
  EXPECT_EQ(a.StringAt(1), "a,b");
  EXPECT_EQ(b.StringAt(1), "\"x\"");
  EXPECT_EQ(a.StringAt(2), "plain\"quote");
  EXPECT_EQ(a.StringAt(3), "line1\nline2");
  EXPECT_EQ(Col(r.table, "c").StringAt(4), "end");
}

TEST(CsvImport, BlankLinesAreSkippedAndCrlfEverywhere) {
  ScratchDir dir;
  auto r = ImportText("x,y\r\n\r\n1,2\r\n\r\n3,4\r\n", dir);
  ASSERT_TRUE(r.status.ok()) << r.status.ToString();
  EXPECT_EQ(r.table.num_rows, 2);
  EXPECT_EQ(Col(r.table, "y").i64[1], 4);
}

TEST(CsvImport, DelimiterDetectionAndOverride) {
  ScratchDir dir;
  auto semi = ImportPath(Fixture("semicolon.csv"), dir);
  ASSERT_TRUE(semi.status.ok()) << semi.status.ToString();
  ASSERT_EQ(semi.table.columns.size(), 3u);
  EXPECT_EQ(Col(semi.table, "b").type, ColumnType::kString);  // "2,5" is not a float
  auto tabs = ImportPath(Fixture("tabs.csv"), dir);
  ASSERT_TRUE(tabs.status.ok()) << tabs.status.ToString();
  EXPECT_EQ(Col(tabs.table, "score").type, ColumnType::kFloat64);
  EXPECT_EQ(Col(tabs.table, "ok").type, ColumnType::kBool);
  EXPECT_EQ(Col(tabs.table, "when").type, ColumnType::kDatetime);
  auto pipes = ImportText("a|b\n1|2\n", dir);
  ASSERT_TRUE(pipes.status.ok());
  EXPECT_EQ(pipes.table.columns.size(), 2u);
  CsvOptions forced;
  forced.delimiter = ',';
  auto one = ImportText("a;b\n1;2\n", dir, forced);
  ASSERT_TRUE(one.status.ok());
  EXPECT_EQ(one.table.columns.size(), 1u);
  EXPECT_EQ(one.table.columns[0].name, "a;b");
}

// ---------------------------------------------------------------- type inference

struct TypeCase {
  const char* name;
  std::vector<std::string> values;
  ColumnType want;
  int64_t missing;
};

TEST(CsvImportTypes, InferenceTable) {
  const TypeCase cases[] = {
      {"ints", {"1", "-2", "+3", "007"}, ColumnType::kInt64, 0},
      {"floats", {"1.5", "2", "-3e2", ".5"}, ColumnType::kFloat64, 0},
      {"int_then_float", {"1", "2", "3", "4.5"}, ColumnType::kFloat64, 0},
      {"int_overflow", {"1", "99999999999999999999"}, ColumnType::kFloat64, 0},
      {"int_and_text", {"1", "2", "x"}, ColumnType::kString, 0},
      {"bools", {"true", "False", "YES", "no", "t", "F"}, ColumnType::kBool, 0},
      {"zero_one_is_int", {"0", "1", "1", "0"}, ColumnType::kInt64, 0},
      {"bool_and_int", {"true", "1"}, ColumnType::kString, 0},
      {"dates", {"2024-01-01", "2024-02-29 10:00:00", "2024-03-01T00:00:00Z"}, ColumnType::kDatetime, 0},
      {"bad_date", {"2024-01-01", "2023-02-29"}, ColumnType::kString, 0},
      {"missing_tokens", {"1", "", "NA", "N/A", "null", "NULL", "NaN", "nan", "None"}, ColumnType::kInt64, 8},
      {"all_missing", {"", "NA", ""}, ColumnType::kString, 3},
      {"floats_missing", {"1.5", "", "2.5"}, ColumnType::kFloat64, 1},
      {"padded_ints", {" 1", "2 ", " 3 "}, ColumnType::kInt64, 0},
      {"text", {"a", "b", "a"}, ColumnType::kString, 0},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    std::string csv = "v,k\n";
    for (size_t i = 0; i < c.values.size(); ++i) csv += "\"" + c.values[i] + "\"," + std::to_string(i) + "\n";
    ScratchDir dir;
    auto r = ImportText(csv, dir);
    ASSERT_TRUE(r.status.ok()) << r.status.ToString();
    EXPECT_EQ(r.result.columns[0].type, c.want) << ColumnTypeName(r.result.columns[0].type);
    EXPECT_EQ(r.result.columns[0].missing, c.missing);
    EXPECT_EQ(r.table.columns[0].type, c.want);
    EXPECT_EQ(r.result.rows, static_cast<int64_t>(c.values.size()));
  }
}

TEST(CsvImportTypes, ValuesAreConverted) {
  ScratchDir dir;
  auto r = ImportText("i,f,b,d,s\n1,1.25,yes,2024-03-01T12:30:00+01:00,x\n-5,NA,F,2024-03-02,\n", dir);
  ASSERT_TRUE(r.status.ok()) << r.status.ToString();
  EXPECT_EQ(Col(r.table, "i").i64[1], -5);
  EXPECT_EQ(Col(r.table, "f").f64[0], 1.25);
  EXPECT_FALSE(Col(r.table, "f").IsValid(1));
  EXPECT_EQ(Col(r.table, "b").b[0], 1);
  EXPECT_EQ(Col(r.table, "b").b[1], 0);
  EXPECT_EQ(Col(r.table, "d").i64[0], 1709292600LL * 1000000);
  EXPECT_FALSE(Col(r.table, "s").IsValid(1));
  Json rows = TableRowsToJson(r.table);
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0]["d"], "2024-03-01T11:30:00Z");
  EXPECT_EQ(rows[0]["b"], true);
  EXPECT_TRUE(rows[1]["f"].is_null());
  EXPECT_TRUE(rows[1]["s"].is_null());
  EXPECT_EQ(rows[1]["i"], -5);
}

// Types decided late: early segments see only integers, a later one text or floats. Early chunks must
// be re-encoded (text) or read as floats, with every value exactly as written.
TEST(CsvImportTypes, PromotionAcrossRowGroups) {
  std::string csv = "code,amount,flag\n";
  for (int i = 0; i < 3000; ++i) {
    csv.append("0").append(std::to_string(i)).append(",").append(std::to_string(i)).append(",\n");
  }
  csv += "A-1,2.5,true\n";
  ScratchDir dir;
  CsvOptions opts;
  opts.segment_bytes = 2048;
  auto r = ImportText(csv, dir, opts);
  ASSERT_TRUE(r.status.ok()) << r.status.ToString();
  const Column& code = Col(r.table, "code");
  const Column& amount = Col(r.table, "amount");
  const Column& flag = Col(r.table, "flag");
  ASSERT_EQ(code.type, ColumnType::kString);
  ASSERT_EQ(amount.type, ColumnType::kFloat64);
  ASSERT_EQ(flag.type, ColumnType::kBool);
  EXPECT_EQ(code.StringAt(0), "00");  // the original text, not the integer
  EXPECT_EQ(code.StringAt(2999), "02999");
  EXPECT_EQ(code.StringAt(3000), "A-1");
  EXPECT_EQ(amount.f64[1234], 1234.0);
  EXPECT_EQ(amount.f64[3000], 2.5);
  EXPECT_EQ(r.result.columns[2].missing, 3000);
  EXPECT_TRUE(flag.IsValid(3000));
  EXPECT_FALSE(flag.IsValid(0));
}

TEST(CsvImport, QuotedNewlinesAcrossSegmentBoundaries) {
  // Many multi-line quoted fields; with tiny segments the split guesses often land inside quotes.
  std::string csv = "id,text\n";
  for (int i = 0; i < 2000; ++i) {
    csv += std::to_string(i) + ",\"row " + std::to_string(i) + "\nsecond line, with comma\n\"\n";
  }
  csv += "2000,\"\n";  // unclosed: the quote begins on line 2 + 2000*3
  ScratchDir dir;
  CsvOptions opts;
  opts.segment_bytes = 1000;
  auto bad = ImportText(csv, dir, opts);
  ASSERT_EQ(bad.status.details().size(), 1u) << bad.status.ToString();
  EXPECT_EQ(bad.status.details()[0].line, 2 + 2000 * 3);
  csv.resize(csv.size() - 7);
  auto ok = ImportText(csv, dir, opts);
  ASSERT_TRUE(ok.status.ok()) << ok.status.ToString();
  ASSERT_EQ(ok.table.num_rows, 2000);
  for (int i : {0, 1, 777, 1999}) {
    EXPECT_EQ(ok.table.columns[0].i64[static_cast<size_t>(i)], i);
    EXPECT_EQ(ok.table.columns[1].StringAt(static_cast<size_t>(i)),
              "row " + std::to_string(i) + "\nsecond line, with comma\n");
  }
}

TEST(CsvImport, SegmentedAndSingleThreadedImportsAgree) {
  std::mt19937 rng(7);
  std::string csv = "a,b,c,d\n";
  for (int i = 0; i < 20000; ++i) {
    csv += std::to_string(static_cast<int>(rng() % 1000)) + "," + std::to_string(rng() % 100000) + "." +
           std::to_string(rng() % 10) + ",\"cat" + std::to_string(rng() % 7) + "\",2020-01-" +
           std::to_string(10 + rng() % 18) + "\n";
  }
  ScratchDir dir;
  CsvOptions one;
  one.num_threads = 1;
  CsvOptions many;
  many.num_threads = 4;
  many.segment_bytes = 4096;
  auto x = ImportText(csv, dir, one);
  auto y = ImportText(csv, dir, many);
  ASSERT_TRUE(x.status.ok() && y.status.ok());
  EXPECT_EQ(TableRowsToJson(x.table), TableRowsToJson(y.table));
  EXPECT_EQ(x.table.num_rows, 20000);
}

TEST(CsvImport, ProgressAndCancel) {
  std::string csv = "a,b\n";
  for (int i = 0; i < 50000; ++i) csv += std::to_string(i) + ",x\n";
  ScratchDir dir;
  std::string in = dir.Write("in.csv", csv);
  CsvOptions opts;
  opts.segment_bytes = 16384;
  std::vector<double> seen;
  auto ok = ImportCsvFile(in, dir.Path("a.lcol"), opts, [&](double f) { seen.push_back(f); }, nullptr);
  ASSERT_TRUE(ok.ok()) << ok.status().ToString();
  ASSERT_GE(seen.size(), 3u);
  for (size_t i = 1; i < seen.size(); ++i) EXPECT_GE(seen[i], seen[i - 1]);
  EXPECT_EQ(seen.back(), 1.0);
  int calls = 0;
  auto cancelled = ImportCsvFile(in, dir.Path("b.lcol"), opts, nullptr, [&] { return ++calls > 3; });
  EXPECT_EQ(cancelled.status().code(), StatusCode::kCancelled);
  EXPECT_FALSE(std::filesystem::exists(dir.Path("b.lcol")));
  EXPECT_EQ(dir.FileCount(), 2u);  // in.csv and a.lcol: no temp files left
}

// ---------------------------------------------------------------- memory

int64_t PeakRssKb() {
  std::ifstream f("/proc/self/status");
  std::string line;
  while (std::getline(f, line)) {
    if (line.rfind("VmHWM:", 0) == 0) return std::stoll(line.substr(6));
  }
  return -1;
}

TEST(CsvImportMemory, LargeFileImportsWithBoundedMemory) {
  ScratchDir dir;
  std::string in = dir.Path("big.csv");
  {
    std::ofstream f(in, std::ios::binary);
    f << "id,x,y,cat,when,note\n";
    std::string block;
    std::mt19937_64 rng(3);
    int64_t bytes = 0, id = 0;
    while (bytes < (int64_t{200} << 20)) {
      block.clear();
      for (int i = 0; i < 10000; ++i, ++id) {
        block += std::to_string(id) + "," + std::to_string(rng() % 1000000) + "." + std::to_string(rng() % 100) +
                 "," + std::to_string(static_cast<int64_t>(rng() % 2000000) - 1000000) + ",c" +
                 std::to_string(rng() % 12) + ",2021-0" + std::to_string(1 + rng() % 9) + "-1" +
                 std::to_string(rng() % 10) + ",note number " + std::to_string(rng() % 100000) + "\n";
      }
      f << block;
      bytes += static_cast<int64_t>(block.size());
    }
  }
  int64_t before = PeakRssKb();
  auto r = ImportCsvFile(in, dir.Path("big.lcol"), {}, nullptr, nullptr);
  int64_t after = PeakRssKb();
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_GT(r->rows, 2000000);
  EXPECT_EQ(r->columns[1].type, ColumnType::kFloat64);
  int64_t growth_mb = (after - before) / 1024;
  std::printf("imported %lld rows (%lld MB): peak RSS growth %lld MB\n", static_cast<long long>(r->rows),
              static_cast<long long>(r->input_bytes >> 20), static_cast<long long>(growth_mb));
  // ASan's quarantine keeps up to 256 MB of freed memory resident, so the bound is looser under it.
#if defined(__SANITIZE_ADDRESS__)
  EXPECT_LT(growth_mb, 300 + 256);
#else
  EXPECT_LT(growth_mb, 300);
#endif
  auto f = DatasetFile::Open(dir.Path("big.lcol"));
  ASSERT_TRUE(f.ok()) << f.status().ToString();
  EXPECT_EQ((*f)->num_rows(), r->rows);
  auto tail = (*f)->ReadRows(r->rows - 2, 10);
  ASSERT_TRUE(tail.ok());
  EXPECT_EQ(tail->num_rows, 2);
  EXPECT_EQ(tail->columns[0].i64[1], r->rows - 1);
}

}  // namespace
}  // namespace lathe
