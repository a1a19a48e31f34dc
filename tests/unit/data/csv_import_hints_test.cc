// CSV import: schema hints and the bad-row policies (fail / skip / quarantine).
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <random>

#include "data/csv_import.h"
#include "data/table_json.h"
#include "data/value_parse.h"
#include "data_test_util.h"

namespace lathe {
namespace {

using testing::Fixture;
using testing::ScratchDir;

struct Run {
  Status status;
  ImportResult result;
  Table table;
};

Run ImportWith(const std::string& path, const std::string& dst, const CsvOptions& csv, const ImportOptions& import) {
  Run out;
  std::filesystem::remove(dst);
  auto r = ImportCsvFile(path, dst, csv, import, nullptr, nullptr);
  if (!r.ok()) {
    out.status = r.status();
    return out;
  }
  out.result = *r;
  auto f = DatasetFile::Open(dst);
  if (!f.ok()) {
    out.status = f.status();
    return out;
  }
  auto t = (*f)->ReadAll();
  if (!t.ok()) {
    out.status = t.status();
    return out;
  }
  out.table = std::move(*t);
  return out;
}

Run ImportBytes(const std::string& bytes, const ScratchDir& dir, const ImportOptions& import,
                const CsvOptions& csv = {}) {
  return ImportWith(dir.Write("in.csv", bytes), dir.Path("out.lcol"), csv, import);
}

const Column& Col(const Table& t, const std::string& name) {
  int i = t.FindColumn(name);
  EXPECT_GE(i, 0) << name;
  return t.columns[static_cast<size_t>(i < 0 ? 0 : i)];
}

std::vector<Json> ReadJsonLines(const std::string& path) {
  std::vector<Json> out;
  std::ifstream f(path);
  std::string line;
  while (std::getline(f, line)) out.push_back(Json::parse(line));
  return out;
}

// ---------------------------------------------------------------- hints

struct HintCase {
  const char* name;
  std::string csv;
  SchemaHints hints;
  ColumnType want;            // type of column v
  std::vector<std::string> values;  // column v as JSON text per row ("null" for missing)
};

SchemaHints Types(const std::string& col, ColumnType t) {
  SchemaHints h;
  h.types[col] = t;
  return h;
}
SchemaHints Dates(const std::string& col, const std::string& fmt) {
  SchemaHints h;
  h.date_formats[col] = fmt;
  return h;
}

TEST(CsvImportHints, Table) {
  SchemaHints comma;
  comma.decimal_comma = true;
  SchemaHints missing;
  missing.missing_tokens = {"-", "?"};
  SchemaHints missing_num;
  missing_num.missing_tokens = {"-999"};
  const HintCase cases[] = {
      {"string_keeps_zeros", "k,v\n1,007\n2,010\n", Types("v", ColumnType::kString), ColumnType::kString,
       {"\"007\"", "\"010\""}},
      {"float_from_ints", "k,v\n1,1\n2,2\n", Types("v", ColumnType::kFloat64), ColumnType::kFloat64, {"1.0", "2.0"}},
      {"integer", "k,v\n1, 5 \n2,NA\n", Types("v", ColumnType::kInt64), ColumnType::kInt64, {"5", "null"}},
      {"boolean", "k,v\n1,yes\n2,F\n", Types("v", ColumnType::kBool), ColumnType::kBool, {"true", "false"}},
      {"datetime_iso", "k,v\n1,2024-01-02\n2,\n", Types("v", ColumnType::kDatetime), ColumnType::kDatetime,
       {"\"2024-01-02T00:00:00Z\"", "null"}},
      {"all_missing_keeps_forced_type", "k,v\n1,\n2,NA\n", Types("v", ColumnType::kFloat64), ColumnType::kFloat64,
       {"null", "null"}},
      {"date_format_dmy", "k,v\n1,01/02/2024\n2,31/12/1999\n", Dates("v", "%d/%m/%Y"), ColumnType::kDatetime,
       {"\"2024-02-01T00:00:00Z\"", "\"1999-12-31T00:00:00Z\""}},
      {"date_format_names", "k,v\n1,\"Mar 5, 2024 3:04 PM\"\n2,\"December 25, 2023 12:00 AM\"\n",
       Dates("v", "%b %d, %Y %I:%M %p"), ColumnType::kDatetime,
       {"\"2024-03-05T15:04:00Z\"", "\"2023-12-25T00:00:00Z\""}},
      {"date_format_with_datetime_type", "k,v\n1,20240102\n", [] {
         SchemaHints h = Dates("v", "%Y%m%d");
         h.types["v"] = ColumnType::kDatetime;
         return h;
       }(), ColumnType::kDatetime, {"\"2024-01-02T00:00:00Z\""}},
      {"decimal_comma", "k;v\n1;1.234,5\n2;3,14\n3;-2\n", comma, ColumnType::kFloat64, {"1234.5", "3.14", "-2.0"}},
      {"decimal_comma_ints_stay_ints", "k;v\n1;12\n2;-3\n", comma, ColumnType::kInt64, {"12", "-3"}},
      {"decimal_comma_rejects_dots", "k;v\n1;1.5\n2;3,14\n", comma, ColumnType::kString, {"\"1.5\"", "\"3,14\""}},
      {"decimal_comma_forced_float", "k;v\n1;2,5\n2;\n", [] {
         SchemaHints h = Types("v", ColumnType::kFloat64);
         h.decimal_comma = true;
         return h;
       }(), ColumnType::kFloat64, {"2.5", "null"}},
      {"missing_tokens_replace", "k,v\n1,-\n2,?\n3,4\n", missing, ColumnType::kInt64, {"null", "null", "4"}},
      {"missing_tokens_na_is_text", "k,v\n1,NA\n2,x\n", missing, ColumnType::kString, {"\"NA\"", "\"x\""}},
      {"missing_token_that_looks_numeric", "k,v\n1,-999\n2,5\n", missing_num, ColumnType::kInt64, {"null", "5"}},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    for (int threads : {1, 3}) {
      ScratchDir dir;
      ImportOptions imp;
      imp.hints = c.hints;
      imp.num_threads = threads;
      auto r = ImportBytes(c.csv, dir, imp);
      ASSERT_TRUE(r.status.ok()) << r.status.ToString();
      const Column& v = Col(r.table, "v");
      EXPECT_EQ(ColumnTypeName(v.type), std::string(ColumnTypeName(c.want)));
      Json rows = TableRowsToJson(r.table);
      ASSERT_EQ(rows.size(), c.values.size());
      for (size_t i = 0; i < c.values.size(); ++i) {
        EXPECT_EQ(rows[i]["v"].dump(), Json::parse(c.values[i]).dump()) << "row " << i;
      }
    }
  }
}

struct HintErrorCase {
  const char* name;
  SchemaHints hints;
  CsvOptions csv;
  const char* field;
  const char* message_part;
};

TEST(CsvImportHints, BadHintsNameTheField) {
  CsvOptions comma_delim;
  comma_delim.delimiter = ',';
  SchemaHints comma;
  comma.decimal_comma = true;
  SchemaHints conflict = Dates("d", "%Y");
  conflict.types["d"] = ColumnType::kInt64;
  const HintErrorCase cases[] = {
      {"unknown_type_column", Types("zzz", ColumnType::kInt64), {}, "hints.types.zzz", "names no column"},
      {"unknown_date_column", Dates("nope", "%Y"), {}, "hints.date_formats.nope", "columns: a, d"},
      {"bad_pattern", Dates("d", "%Y-%Q"), {}, "hints.date_formats.d", "unknown directive %Q"},
      {"type_conflict", conflict, {}, "hints.date_formats.d", "datetime"},
      {"decimal_comma_with_comma", comma, comma_delim, "hints.decimal_comma", "delimiter"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    ScratchDir dir;
    ImportOptions imp;
    imp.hints = c.hints;
    auto r = ImportBytes("a,d\n1,2024\n", dir, imp, c.csv);
    ASSERT_FALSE(r.status.ok());
    EXPECT_EQ(r.status.code(), StatusCode::kInvalidArgument);
    ASSERT_EQ(r.status.details().size(), 1u) << r.status.ToString();
    EXPECT_EQ(r.status.details()[0].field, c.field);
    EXPECT_NE(r.status.message().find(c.message_part), std::string::npos) << r.status.message();
    EXPECT_EQ(dir.FileCount(), 1u);
  }
  ScratchDir dir;
  ImportOptions q;
  q.bad_rows = BadRowPolicy::kQuarantine;
  auto r = ImportBytes("a\n1\n", dir, q);
  ASSERT_EQ(r.status.details().size(), 1u);
  EXPECT_EQ(r.status.details()[0].field, "quarantine_path");
}

// ---------------------------------------------------------------- bad rows

ImportOptions FixtureHints(BadRowPolicy policy, const std::string& quarantine = "") {
  ImportOptions imp;
  imp.hints.date_formats["when"] = "%d/%m/%Y";
  imp.hints.types["amount"] = ColumnType::kInt64;
  imp.bad_rows = policy;
  imp.quarantine_path = quarantine;
  return imp;
}

CsvOptions Utf8() {
  CsvOptions c;
  c.encoding = "utf-8";  // the fixture's last row is damaged UTF-8, not Latin-1
  return c;
}

TEST(CsvImportBadRows, FailNamesLineColumnAndReason) {
  ScratchDir dir;
  auto r = ImportWith(Fixture("csv/bad_rows.csv"), dir.Path("out.lcol"), Utf8(), FixtureHints(BadRowPolicy::kFail));
  ASSERT_FALSE(r.status.ok());
  ASSERT_EQ(r.status.details().size(), 1u);
  const ErrorDetail& d = r.status.details()[0];
  EXPECT_EQ(d.line, 3);
  EXPECT_EQ(d.column, "when");
  EXPECT_NE(r.status.message().find("'31/02/2024' does not match the date format '%d/%m/%Y'"), std::string::npos)
      << r.status.message();
  EXPECT_EQ(dir.FileCount(), 0u);

  struct Case {
    std::string csv;
    int64_t line;
    const char* column;
    const char* part;
  };
  const Case cases[] = {
      {"a,b\n1,2\n3,x\n", 3, "b", "'x' is not a valid integer"},
      {"a,b\n\"1\n\",2\n3,99999999999999999999\n", 4, "b", "not a valid integer"},
      {"a,b\n1,2\n3\n", 3, "", "expected 2 fields"},
      {"a,b\n1,2\n3,\xC3\x28\n", 3, "b", "invalid UTF-8"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.csv);
    ImportOptions imp;
    imp.hints.types["b"] = ColumnType::kInt64;
    auto e = ImportBytes(c.csv, dir, imp, Utf8());
    ASSERT_EQ(e.status.details().size(), 1u) << e.status.ToString();
    EXPECT_EQ(e.status.details()[0].line, c.line);
    EXPECT_EQ(e.status.details()[0].column, c.column);
    EXPECT_NE(e.status.message().find(c.part), std::string::npos) << e.status.message();
  }
}

TEST(CsvImportBadRows, SkipDropsAndCounts) {
  ScratchDir dir;
  auto r = ImportWith(Fixture("csv/bad_rows.csv"), dir.Path("out.lcol"), Utf8(), FixtureHints(BadRowPolicy::kSkip));
  ASSERT_TRUE(r.status.ok()) << r.status.ToString();
  EXPECT_EQ(r.result.rows, 2);
  EXPECT_EQ(r.result.bad_rows, 4);
  ASSERT_EQ(r.table.num_rows, 2);
  EXPECT_EQ(Col(r.table, "id").i64[0], 1);
  EXPECT_EQ(Col(r.table, "id").i64[1], 5);
  EXPECT_EQ(Col(r.table, "amount").type, ColumnType::kInt64);
  EXPECT_EQ(FormatDatetimeMicros(Col(r.table, "when").i64[1]), "2024-02-05T00:00:00Z");
  EXPECT_EQ(dir.FileCount(), 1u);  // out.lcol, no quarantine file
}

TEST(CsvImportBadRows, QuarantineWritesEachBadRow) {
  ScratchDir dir;
  std::string q = dir.Path("bad.jsonl");
  auto r = ImportWith(Fixture("csv/bad_rows.csv"), dir.Path("out.lcol"), Utf8(),
                      FixtureHints(BadRowPolicy::kQuarantine, q));
  ASSERT_TRUE(r.status.ok()) << r.status.ToString();
  EXPECT_EQ(r.result.bad_rows, 4);
  auto lines = ReadJsonLines(q);
  ASSERT_EQ(lines.size(), 4u);
  EXPECT_EQ(lines[0]["line"], 3);
  EXPECT_EQ(lines[0]["raw"], "2,31/02/2024,20");
  EXPECT_NE(lines[0]["reason"].get<std::string>().find("column 'when'"), std::string::npos);
  EXPECT_EQ(lines[1]["line"], 4);
  EXPECT_EQ(lines[1]["raw"], "3,03/02/2024");
  EXPECT_NE(lines[1]["reason"].get<std::string>().find("expected 3 fields"), std::string::npos);
  EXPECT_EQ(lines[2]["line"], 5);
  EXPECT_NE(lines[2]["reason"].get<std::string>().find("'x' is not a valid integer"), std::string::npos);
  EXPECT_EQ(lines[3]["line"], 7);
  EXPECT_EQ(lines[3]["raw"], "6,06/02/2024,caf\xEF\xBF\xBD");  // the invalid byte as U+FFFD
  EXPECT_NE(lines[3]["reason"].get<std::string>().find("invalid UTF-8"), std::string::npos);
  for (const auto& l : lines) EXPECT_EQ(l.size(), 3u) << l.dump();
  // No temp files next to it.
  EXPECT_EQ(dir.FileCount(), 2u);

  // Without bad rows the quarantine file is not created.
  std::string q2 = dir.Path("none.jsonl");
  auto clean = ImportBytes("id,when,amount\n1,01/02/2024,3\n", dir, FixtureHints(BadRowPolicy::kQuarantine, q2));
  ASSERT_TRUE(clean.status.ok()) << clean.status.ToString();
  EXPECT_EQ(clean.result.bad_rows, 0);
  EXPECT_FALSE(std::filesystem::exists(q2));
}

TEST(CsvImportBadRows, QuarantinedRawTextIsCapped) {
  ScratchDir dir;
  std::string q = dir.Path("bad.jsonl");
  std::string big(200 << 10, 'z');
  ImportOptions imp;
  imp.bad_rows = BadRowPolicy::kQuarantine;
  imp.quarantine_path = q;
  auto r = ImportBytes("a,b\n1,2\n3,\"" + big + "\",4\r\n5,6\n", dir, imp);
  ASSERT_TRUE(r.status.ok()) << r.status.ToString();
  EXPECT_EQ(r.result.rows, 2);
  auto lines = ReadJsonLines(q);
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(lines[0]["line"], 3);
  EXPECT_EQ(lines[0]["raw"].get<std::string>().size(), 64u << 10);
  EXPECT_EQ(lines[0]["raw"].get<std::string>().substr(0, 4), "3,\"z");
}

TEST(CsvImportBadRows, MaxBadRowsCapFailsAndLeavesNothing) {
  ScratchDir dir;
  std::string q = dir.Path("bad.jsonl");
  std::string csv = "a,b\n";
  for (int i = 0; i < 10; ++i) csv += std::to_string(i) + (i % 3 == 0 ? "\n" : ",1\n");  // bad: lines 2, 5, 8, 11
  for (BadRowPolicy p : {BadRowPolicy::kSkip, BadRowPolicy::kQuarantine}) {
    SCOPED_TRACE(BadRowPolicyName(p));
    ImportOptions imp;
    imp.bad_rows = p;
    imp.quarantine_path = q;
    imp.max_bad_rows = 3;
    auto r = ImportBytes(csv, dir, imp);
    ASSERT_FALSE(r.status.ok());
    ASSERT_EQ(r.status.details().size(), 1u);
    EXPECT_EQ(r.status.details()[0].line, 11);
    EXPECT_NE(r.status.message().find("more than max_bad_rows (3)"), std::string::npos) << r.status.message();
    EXPECT_FALSE(std::filesystem::exists(q));
    EXPECT_FALSE(std::filesystem::exists(dir.Path("out.lcol")));
    EXPECT_EQ(dir.FileCount(), 1u);
    imp.max_bad_rows = 4;
    auto ok = ImportBytes(csv, dir, imp);
    ASSERT_TRUE(ok.status.ok()) << ok.status.ToString();
    EXPECT_EQ(ok.result.bad_rows, 4);
    EXPECT_EQ(ok.result.rows, 6);
    EXPECT_EQ(std::filesystem::exists(q), p == BadRowPolicy::kQuarantine);
    std::filesystem::remove(q);
  }
  // max_bad_rows = 0 with skip: the first bad row fails.
  ImportOptions zero;
  zero.bad_rows = BadRowPolicy::kSkip;
  zero.max_bad_rows = 0;
  auto z = ImportBytes(csv, dir, zero);
  ASSERT_EQ(z.status.details().size(), 1u);
  EXPECT_EQ(z.status.details()[0].line, 2);
  // All rows bad: nothing to import is an error, not an empty dataset.
  ImportOptions skip;
  skip.bad_rows = BadRowPolicy::kSkip;
  auto all = ImportBytes("a,b\n1\n2\n", dir, skip);
  EXPECT_NE(all.status.message().find("all 2 data rows are bad"), std::string::npos) << all.status.ToString();
}

TEST(CsvImportBadRows, DecisionsDoNotDependOnThreadsOrSegments) {
  std::mt19937 rng(3);
  std::string csv = "id,when,amount,note\n";
  int expected_bad = 0;
  for (int i = 0; i < 30000; ++i) {
    int kind = static_cast<int>(rng() % 50);
    std::string when = "0" + std::to_string(1 + rng() % 9) + "/0" + std::to_string(1 + rng() % 9) + "/2024";
    std::string note = (i % 7 == 0) ? "\"multi\nline, " + std::to_string(i) + "\"" : "n" + std::to_string(i % 13);
    switch (kind) {
      case 0: csv += std::to_string(i) + "," + when + "\n"; ++expected_bad; break;               // ragged
      case 1: csv += std::to_string(i) + ",2024-01-01,1," + note + "\n"; ++expected_bad; break;  // date
      case 2: csv += std::to_string(i) + "," + when + ",1.5," + note + "\n"; ++expected_bad; break;  // int hint
      case 3: csv += std::to_string(i) + "," + when + ",1,\xE9t\xE9\n"; ++expected_bad; break;    // UTF-8
      default: csv += std::to_string(i) + "," + when + "," + std::to_string(rng() % 1000) + "," + note + "\n";
    }
  }
  ScratchDir dir;
  std::string in = dir.Write("in.csv", csv);
  std::string ref_rows, ref_quarantine;
  int64_t ref_bad = -1;
  for (int threads : {1, 4}) {
    for (size_t seg : {size_t{1024}, size_t{4096}, size_t{16} << 20}) {
      SCOPED_TRACE(std::to_string(threads) + " threads, segments of " + std::to_string(seg));
      CsvOptions opts = Utf8();
      opts.num_threads = threads;
      opts.segment_bytes = seg;
      ImportOptions imp;
      imp.hints.date_formats["when"] = "%d/%m/%Y";
      imp.hints.types["amount"] = ColumnType::kInt64;
      imp.bad_rows = BadRowPolicy::kQuarantine;
      imp.quarantine_path = dir.Path("q.jsonl");
      auto r = ImportWith(in, dir.Path("out.lcol"), opts, imp);
      ASSERT_TRUE(r.status.ok()) << r.status.ToString();
      EXPECT_EQ(r.result.bad_rows, expected_bad);
      std::ifstream f(dir.Path("q.jsonl"));
      std::string quarantine((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
      std::string rows = TableRowsToJson(r.table).dump();
      if (ref_bad < 0) {
        ref_bad = r.result.bad_rows;
        ref_rows = rows;
        ref_quarantine = quarantine;
        EXPECT_EQ(r.result.rows + r.result.bad_rows, 30000);
      } else {
        EXPECT_EQ(rows, ref_rows);
        EXPECT_EQ(quarantine, ref_quarantine);
      }
      std::filesystem::remove(dir.Path("q.jsonl"));
    }
  }
  // Each quarantined line names the original line: check one against the text.
  EXPECT_GT(ref_bad, 100);
}

}  // namespace
}  // namespace lathe
