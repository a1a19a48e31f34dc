// CSV import: text encodings, header detection, quote detection and hostile input.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <random>

#include "data/csv_import.h"
#include "data/table_json.h"
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

Run ImportWith(const std::string& path, const ScratchDir& dir, const CsvOptions& csv,
               const ImportOptions& import = {}) {
  Run out;
  std::string dst = dir.Path("out.lcol");
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

Run ImportBytes(const std::string& bytes, const ScratchDir& dir, const CsvOptions& csv = {},
                const ImportOptions& import = {}) {
  return ImportWith(dir.Write("in.csv", bytes), dir, csv, import);
}

std::vector<std::string> Names(const Table& t) {
  std::vector<std::string> n;
  for (const auto& c : t.columns) n.push_back(c.name);
  return n;
}

// ---------------------------------------------------------------- encodings

struct EncodingCase {
  const char* name;
  std::string bytes;
  const char* option;   // CsvOptions::encoding
  const char* want;     // ImportResult::encoding
  const char* cell;     // expected value of column 0, row 0 (UTF-8)
};

TEST(CsvImportEncoding, EachEncodingReadsAsUtf8) {
  // "名字,数\n张三,1\n李四,2\n" in GB18030; the Latin-1 rows spell "José" and "Zürich".
  const std::string gb = "\xC3\xFB\xD7\xD6,\xCA\xFD\n\xD5\xC5\xC8\xFD,1\n\xC0\xEE\xCB\xC4,2\n";
  const std::string latin = "name,n\nJos\xE9,1\nZ\xFCrich,2\n";
  const EncodingCase cases[] = {
      {"utf8", "name,n\nJosé,1\n", "", "utf-8", "José"},
      {"utf8_bom", "\xEF\xBB\xBFname,n\nJosé,1\n", "", "utf-8", "José"},
      {"utf8_explicit", "name,n\nJosé,1\n", "UTF-8", "utf-8", "José"},
      {"gb18030_detected", gb, "", "gb18030", "张三"},
      {"gb18030_explicit", gb, "gb18030", "gb18030", "张三"},
      {"gbk_alias", gb, "gbk", "gb18030", "张三"},
      {"gb2312_alias", gb, "gb2312", "gb18030", "张三"},
      {"gb18030_bom", "\x84\x31\x95\x33" + gb, "gb18030", "gb18030", "张三"},
      {"latin1_detected", latin, "", "latin-1", "José"},
      {"latin1_explicit", latin, "latin-1", "latin-1", "José"},
      {"iso_alias", latin, "iso-8859-1", "latin-1", "José"},
      {"ascii_as_latin1", "name,n\nabc,1\n", "latin-1", "latin-1", "abc"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    ScratchDir dir;
    CsvOptions opts;
    opts.encoding = c.option;
    auto r = ImportBytes(c.bytes, dir, opts);
    ASSERT_TRUE(r.status.ok()) << r.status.ToString();
    EXPECT_EQ(r.result.encoding, c.want);
    ASSERT_EQ(r.table.columns.size(), 2u);
    EXPECT_EQ(r.table.columns[0].StringAt(0), c.cell);
    EXPECT_EQ(r.table.columns[1].type, ColumnType::kInt64);
    EXPECT_EQ(dir.FileCount(), 2u);  // in.csv and out.lcol: the decoded copy is gone
  }
}

TEST(CsvImportEncoding, FixtureFiles) {
  ScratchDir dir;
  auto gb = ImportWith(Fixture("csv/gb18030.csv"), dir, {});
  ASSERT_TRUE(gb.status.ok()) << gb.status.ToString();
  EXPECT_EQ(gb.result.encoding, "gb18030");
  EXPECT_EQ(Names(gb.table), (std::vector<std::string>{"城市", "人口", "备注"}));
  EXPECT_EQ(gb.table.columns[2].StringAt(0), "首都，政治中心");
  EXPECT_EQ(gb.table.columns[2].StringAt(2), "多行\n备注");
  EXPECT_EQ(gb.table.columns[1].i64[1], 2424);

  ImportOptions hints;
  hints.hints.decimal_comma = true;
  auto latin = ImportWith(Fixture("csv/latin1_semicolon.csv"), dir, {}, hints);
  ASSERT_TRUE(latin.status.ok()) << latin.status.ToString();
  EXPECT_EQ(latin.result.encoding, "latin-1");
  EXPECT_EQ(latin.table.columns[1].StringAt(1), "Zürich");
  ASSERT_EQ(latin.table.columns[2].type, ColumnType::kFloat64);
  EXPECT_EQ(latin.table.columns[2].f64[0], 3.5);
}

TEST(CsvImportEncoding, ExplicitEncodingThatDoesNotFitFails) {
  ScratchDir dir;
  CsvOptions utf8;
  utf8.encoding = "utf-8";
  auto r = ImportBytes("a,b\n1,x\n2,caf\xE9\n", dir, utf8);
  ASSERT_FALSE(r.status.ok());
  EXPECT_EQ(r.status.code(), StatusCode::kInvalidArgument);
  ASSERT_EQ(r.status.details().size(), 1u);
  EXPECT_EQ(r.status.details()[0].line, 3);
  EXPECT_EQ(r.status.details()[0].column, "b");
  EXPECT_NE(r.status.message().find("byte 6 of the line (file offset 13)"), std::string::npos) << r.status.message();

  CsvOptions gb;
  gb.encoding = "gb18030";
  // Line 3 holds 0xFF, which no GB18030 sequence contains.
  auto g = ImportBytes("a,b\n1,\xB1\xB1\n2,x\xFFy\n", dir, gb);
  ASSERT_FALSE(g.status.ok());
  ASSERT_EQ(g.status.details().size(), 1u);
  EXPECT_EQ(g.status.details()[0].line, 3);
  EXPECT_NE(g.status.message().find("byte 4 of the line (file offset 12)"), std::string::npos) << g.status.message();
  EXPECT_NE(g.status.message().find("gb18030"), std::string::npos);
  EXPECT_EQ(dir.FileCount(), 1u);  // no output, no decoded copy

  CsvOptions unknown;
  unknown.encoding = "ebcdic";
  auto u = ImportBytes("a\n1\n", dir, unknown);
  ASSERT_EQ(u.status.details().size(), 1u);
  EXPECT_EQ(u.status.details()[0].field, "encoding");
}

TEST(CsvImportEncoding, LineNumbersMatchTheOriginalFile) {
  // Errors found after decoding name the lines of the original file, multi-line fields included.
  ScratchDir dir;
  std::string latin = "a,b\n";
  for (int i = 0; i < 3000; ++i) latin += std::to_string(i) + ",\"Z\xFCrich\nline two\"\n";
  latin += "1,2,3\n";  // line 2 + 3000 * 2
  for (int threads : {1, 4}) {
    SCOPED_TRACE(threads);
    CsvOptions opts;
    opts.num_threads = threads;
    opts.segment_bytes = 1024;
    auto r = ImportBytes(latin, dir, opts);
    ASSERT_FALSE(r.status.ok());
    ASSERT_EQ(r.status.details().size(), 1u);
    EXPECT_EQ(r.status.details()[0].line, 2 + 3000 * 2) << r.status.ToString();
    EXPECT_NE(r.status.message().find("expected 2 fields"), std::string::npos);
  }
  // Undecodable GB18030 bytes under skip: the row is dropped and named by its original line.
  ImportOptions skip;
  skip.bad_rows = BadRowPolicy::kQuarantine;
  skip.quarantine_path = dir.Path("q.jsonl");
  CsvOptions gb;
  gb.encoding = "gb18030";
  auto s = ImportBytes("a,b\n1,\"\xB1\xB1\n\xB1\xB1\"\n2,x\x80y\n3,z\n", dir, gb, skip);
  ASSERT_TRUE(s.status.ok()) << s.status.ToString();
  EXPECT_EQ(s.result.rows, 2);
  EXPECT_EQ(s.result.bad_rows, 1);
  EXPECT_EQ(s.table.columns[1].StringAt(0), "北\n北");
  std::ifstream q(dir.Path("q.jsonl"));
  std::string line;
  ASSERT_TRUE(std::getline(q, line));
  Json j = Json::parse(line);
  EXPECT_EQ(j["line"], 4);
  EXPECT_NE(j["reason"].get<std::string>().find("not valid gb18030"), std::string::npos) << line;
}

TEST(CsvImportEncoding, ThreadsAndSegmentsAgreeOnDecodedInput) {
  std::mt19937 rng(11);
  std::string gb = "k,v,t\n";
  for (int i = 0; i < 20000; ++i) {
    gb += std::to_string(rng() % 1000) + "," + std::to_string(rng() % 100) + ".5,\xB1\xB1\xBE\xA9" +
          std::to_string(rng() % 9) + "\n";
  }
  ScratchDir dir;
  CsvOptions one;
  one.num_threads = 1;
  CsvOptions many;
  many.num_threads = 4;
  many.segment_bytes = 4096;
  auto x = ImportBytes(gb, dir, one);
  auto y = ImportBytes(gb, dir, many);
  ASSERT_TRUE(x.status.ok() && y.status.ok()) << x.status.ToString() << y.status.ToString();
  EXPECT_EQ(x.result.encoding, "gb18030");
  EXPECT_EQ(x.table.num_rows, 20000);
  EXPECT_EQ(TableRowsToJson(x.table), TableRowsToJson(y.table));
  EXPECT_EQ(x.table.columns[2].StringAt(0).substr(0, 6), "北京");
}

// ---------------------------------------------------------------- header detection

struct HeaderCase {
  const char* name;
  std::string csv;
  HeaderMode mode;
  std::vector<std::string> names;
  int64_t rows;
};

TEST(CsvImportHeader, DetectionTable) {
  const HeaderCase cases[] = {
      {"names_over_numbers", "id,x\n1,2\n3,4\n", HeaderMode::kAuto, {"id", "x"}, 2},
      {"all_numbers", "1,2\n3,4\n5,6\n", HeaderMode::kAuto, {"column_1", "column_2"}, 3},
      {"numbers_dates_bools", "1,2024-01-01,true\n2,2024-01-02,false\n", HeaderMode::kAuto,
       {"column_1", "column_2", "column_3"}, 2},
      {"float_in_int_column_is_data", "1.5,x\n2,y\n3,z\n", HeaderMode::kAuto, {"column_1", "column_2"}, 3},
      {"header_with_text_and_numbers", "name,age\nAlice,30\nBob,41\n", HeaderMode::kAuto, {"name", "age"}, 2},
      // Ambiguous: only text. Most files have a header, so that is the guess (say kNo when it is not).
      {"all_text_ambiguous", "Alice,Paris\nBob,Berlin\n", HeaderMode::kAuto, {"Alice", "Paris"}, 1},
      {"all_text_forced_no", "Alice,Paris\nBob,Berlin\n", HeaderMode::kNo, {"column_1", "column_2"}, 2},
      // Ambiguous: numeric names over numbers read as data unless kYes.
      {"year_header_ambiguous", "2019,2020\n1,2\n", HeaderMode::kAuto, {"column_1", "column_2"}, 2},
      {"year_header_forced", "2019,2020\n1,2\n", HeaderMode::kYes, {"2019", "2020"}, 1},
      // Same-length codes under a name of another length (csv.Sniffer's length rule).
      {"fixed_length_codes", "1,nm,label\n2,AB12,XY99\n3,CD34,ZZ11\n", HeaderMode::kAuto, {"1", "nm", "label"}, 2},
      // One numeric column says data, two text columns say nothing: data.
      {"mixed_votes", "5,a,b\n6,c,d\n7,e,f\n", HeaderMode::kAuto, {"column_1", "column_2", "column_3"}, 3},
      // A missing value in the first row does not vote.
      {"missing_first", "NA,1\n2,3\n", HeaderMode::kAuto, {"column_1", "column_2"}, 2},
      {"single_row_no_header", "a,b\n", HeaderMode::kNo, {"column_1", "column_2"}, 1},
      {"blank_lines_first", "\n\n1,2\n3,4\n", HeaderMode::kAuto, {"column_1", "column_2"}, 2},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    ScratchDir dir;
    CsvOptions opts;
    opts.header = c.mode;
    auto r = ImportBytes(c.csv, dir, opts);
    ASSERT_TRUE(r.status.ok()) << r.status.ToString();
    EXPECT_EQ(Names(r.table), c.names);
    EXPECT_EQ(r.table.num_rows, c.rows);
  }
}

TEST(CsvImportHeader, WithoutHeaderTheFirstRowIsData) {
  ScratchDir dir;
  auto r = ImportWith(Fixture("csv/no_header.csv"), dir, {});
  ASSERT_TRUE(r.status.ok()) << r.status.ToString();
  EXPECT_EQ(Names(r.table), (std::vector<std::string>{"column_1", "column_2", "column_3"}));
  ASSERT_EQ(r.table.num_rows, 3);
  EXPECT_EQ(r.table.columns[0].i64[0], 1);
  EXPECT_EQ(r.table.columns[1].type, ColumnType::kFloat64);
  EXPECT_EQ(r.table.columns[2].type, ColumnType::kDatetime);
  // Errors keep their line numbers: the bad row is line 3 of the file, the first row is data.
  CsvOptions no;
  no.header = HeaderMode::kNo;
  auto bad = ImportBytes("1,2\n3,4\n5\n", dir, no);
  ASSERT_EQ(bad.status.details().size(), 1u);
  EXPECT_EQ(bad.status.details()[0].line, 3);
  // Hints may name the default names, which also settles kAuto.
  ImportOptions hint;
  hint.hints.types["column_2"] = ColumnType::kString;
  auto h = ImportBytes("x,007\ny,008\n", dir, {}, hint);
  ASSERT_TRUE(h.status.ok()) << h.status.ToString();
  EXPECT_EQ(h.table.num_rows, 2);
  EXPECT_EQ(h.table.columns[1].StringAt(0), "007");
  // ... and a hint naming a first-row field makes it the header.
  ImportOptions named;
  named.hints.types["2020"] = ColumnType::kFloat64;
  auto n = ImportBytes("2019,2020\n1,2\n", dir, {}, named);
  ASSERT_TRUE(n.status.ok()) << n.status.ToString();
  EXPECT_EQ(Names(n.table), (std::vector<std::string>{"2019", "2020"}));
  EXPECT_EQ(n.table.columns[1].type, ColumnType::kFloat64);
}

TEST(CsvImportHeader, ForcedHeaderKeepsItsChecks) {
  ScratchDir dir;
  CsvOptions yes;
  yes.header = HeaderMode::kYes;
  auto dup = ImportBytes("1,1\n2,3\n", dir, yes);
  ASSERT_FALSE(dup.status.ok());
  EXPECT_NE(dup.status.message().find("duplicate column name '1'"), std::string::npos);
  auto only = ImportBytes("a,b\n", dir, yes);
  EXPECT_NE(only.status.message().find("no data rows"), std::string::npos);
}

// ---------------------------------------------------------------- quotes

TEST(CsvImportQuotes, SingleQuotesAreDetected) {
  ScratchDir dir;
  auto r = ImportWith(Fixture("csv/single_quoted.csv"), dir, {});
  ASSERT_TRUE(r.status.ok()) << r.status.ToString();
  ASSERT_EQ(r.table.num_rows, 3);
  const Column& name = r.table.columns[1];
  const Column& note = r.table.columns[2];
  EXPECT_EQ(name.StringAt(0), "Smith, John");
  EXPECT_EQ(note.StringAt(0), "it's \"quoted\"");
  EXPECT_EQ(name.StringAt(1), "O'Brien");
  EXPECT_EQ(name.StringAt(2), "multi\nline");
  EXPECT_EQ(r.table.columns[0].type, ColumnType::kInt64);
}

struct QuoteCase {
  const char* name;
  std::string csv;
  char quote;                 // CsvOptions::quote
  std::vector<std::string> b;  // values of column b
};

TEST(CsvImportQuotes, Table) {
  const QuoteCase cases[] = {
      // Apostrophes inside words do not make a file single-quoted.
      {"apostrophes_in_double_quoted", "a,b\n1,\"O'Neil, Jr\"\n2,it's\n", 0, {"O'Neil, Jr", "it's"}},
      {"no_quotes", "a,b\n1,x\n", 0, {"x"}},
      {"explicit_single", "a,b\n1,'x,y'\n2,\"z\n", '\'', {"x,y", "\"z"}},
      {"single_wraps_leading_double", "a,b\n1,'p'\n2,\"q\"r\n", 0, {"p", "\"q\"r"}},
      {"single_crlf", "a,b\r\n1,'x'\r\n2,'y\r\nz'\r\n", 0, {"x", "y\r\nz"}},
      {"single_doubled", "a;b\n1;'it''s'\n2;''\n", 0, {"it's", ""}},
      {"single_tabs", "a\tb\n'1'\t'x\ty'\n", 0, {"x\ty"}},
      {"explicit_double_keeps_single_literal", "a,b\n1,'x'\n", '"', {"'x'"}},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    ScratchDir dir;
    CsvOptions opts;
    opts.quote = c.quote;
    auto r = ImportBytes(c.csv, dir, opts);
    ASSERT_TRUE(r.status.ok()) << r.status.ToString();
    ASSERT_EQ(r.table.columns.size(), 2u);
    ASSERT_EQ(r.table.num_rows, static_cast<int64_t>(c.b.size()));
    for (size_t i = 0; i < c.b.size(); ++i) {
      const Column& b = r.table.columns[1];
      if (c.b[i].empty()) {
        EXPECT_FALSE(b.IsValid(i));
      } else {
        EXPECT_EQ(b.StringAt(i), c.b[i]) << i;
      }
    }
  }
}

TEST(CsvImportQuotes, ErrorsInSingleQuotedFilesKeepTheirLines) {
  ScratchDir dir;
  auto unclosed = ImportBytes("a,b\n1,'x'\n2,'y'\n3,'open\n4,z\n", dir);
  ASSERT_EQ(unclosed.status.details().size(), 1u) << unclosed.status.ToString();
  EXPECT_EQ(unclosed.status.details()[0].line, 4);
  EXPECT_NE(unclosed.status.message().find("unclosed quote"), std::string::npos);
  auto junk = ImportBytes("a,b\n1,'x'\n2,'multi\nline'junk\n", dir);
  ASSERT_EQ(junk.status.details().size(), 1u) << junk.status.ToString();
  EXPECT_EQ(junk.status.details()[0].line, 4);
  EXPECT_NE(junk.status.message().find("after the closing quote"), std::string::npos);
  CsvOptions bad;
  bad.quote = '`';
  auto q = ImportBytes("a\n1\n", dir, bad);
  ASSERT_EQ(q.status.details().size(), 1u);
  EXPECT_EQ(q.status.details()[0].field, "quote");
  EXPECT_EQ(dir.FileCount(), 1u);
}

// ---------------------------------------------------------------- hostile input

TEST(CsvImportHostile, OnlyABomIsEmpty) {
  ScratchDir dir;
  auto r = ImportWith(Fixture("csv/only_bom.csv"), dir, {});
  ASSERT_FALSE(r.status.ok());
  ASSERT_EQ(r.status.details().size(), 1u);
  EXPECT_EQ(r.status.details()[0].line, 1);
  EXPECT_NE(r.status.message().find("empty"), std::string::npos);
  auto bom_newlines = ImportBytes("\xEF\xBB\xBF\n\n", dir);
  EXPECT_NE(bom_newlines.status.message().find("empty"), std::string::npos);
}

TEST(CsvImportHostile, NulBytesAreData) {
  ScratchDir dir;
  auto r = ImportBytes(std::string("a,b\n1,x\0y\n2,\0\n", 14), dir);
  ASSERT_TRUE(r.status.ok()) << r.status.ToString();
  EXPECT_EQ(r.result.encoding, "utf-8");
  EXPECT_EQ(r.table.columns[1].StringAt(0), std::string("x\0y", 3));
  EXPECT_EQ(r.table.columns[1].StringAt(1), std::string("\0", 1));
}

TEST(CsvImportHostile, TenMegabyteField) {
  ScratchDir dir;
  std::string big(10 << 20, 'x');
  std::string csv = "a,b\n1," + big + "\n2,y\n";
  CsvOptions roomy;
  roomy.max_field_bytes = 16 << 20;
  roomy.max_line_bytes = 32 << 20;
  roomy.segment_bytes = 1 << 20;
  auto ok = ImportBytes(csv, dir, roomy);
  ASSERT_TRUE(ok.status.ok()) << ok.status.ToString();
  EXPECT_EQ(ok.table.columns[1].StringAt(0).size(), big.size());
  auto limited = ImportBytes(csv, dir);  // default max_field_bytes: 1 MB
  ASSERT_EQ(limited.status.details().size(), 1u);
  EXPECT_EQ(limited.status.details()[0].line, 2);
  EXPECT_NE(limited.status.message().find("max_field_bytes"), std::string::npos);
  // Quoted, with the field split across segments, under the skip policy: still a limit error, not a skip.
  ImportOptions skip;
  skip.bad_rows = BadRowPolicy::kSkip;
  auto quoted = ImportBytes("a,b\n1,\"" + big + "\"\n", dir, {}, skip);
  EXPECT_NE(quoted.status.message().find("max_field_bytes"), std::string::npos) << quoted.status.ToString();
}

// Offsets in a segment buffer are 31-bit: limits past 1 GiB are refused up front, and no output is written.
TEST(CsvImportHostile, OversizedBufferLimitsAreRefused) {
  ScratchDir dir;
  for (int which = 0; which < 2; ++which) {
    CsvOptions o;
    (which == 0 ? o.max_line_bytes : o.segment_bytes) = (size_t{1} << 30) + 1;
    auto r = ImportBytes("a,b\n1,2\n", dir, o);
    ASSERT_EQ(r.status.code(), StatusCode::kInvalidArgument) << r.status.ToString();
    EXPECT_NE(r.status.message().find("at most 1 GiB"), std::string::npos) << r.status.ToString();
    EXPECT_FALSE(std::filesystem::exists(dir.Path("out.lcol")));
  }
}

TEST(CsvImportHostile, TruncatedMultibyteSequences) {
  ScratchDir dir;
  // UTF-8 (plenty of valid sequences) whose last byte sequence is cut.
  std::string utf8 = "a,b\n";
  for (int i = 0; i < 20; ++i) utf8 += std::to_string(i) + ",名\n";
  auto cut = ImportBytes(utf8 + "20,\xE5\x90", dir);
  ASSERT_FALSE(cut.status.ok());
  ASSERT_EQ(cut.status.details().size(), 1u);
  EXPECT_EQ(cut.status.details()[0].line, 22);
  EXPECT_NE(cut.status.message().find("invalid UTF-8"), std::string::npos);
  // GB18030 cut in the middle of a 2-byte and of a 4-byte sequence.
  CsvOptions gb;
  gb.encoding = "gb18030";
  for (const std::string& tail : {std::string("\xB1"), std::string("\x81\x30"), std::string("\x81\x30\x81")}) {
    auto g = ImportBytes("a,b\n1,\xB1\xB1\n2," + tail, dir, gb);
    ASSERT_FALSE(g.status.ok());
    ASSERT_EQ(g.status.details().size(), 1u);
    EXPECT_EQ(g.status.details()[0].line, 3) << g.status.ToString();
  }
  // UTF-16 is refused by name rather than read as garbage.
  auto u16 = ImportBytes(std::string("\xFF\xFE" "a\0,\0b\0\n\0", 10), dir);
  EXPECT_NE(u16.status.message().find("UTF-16"), std::string::npos) << u16.status.ToString();
}

TEST(CsvImportHostile, RandomBytesNeverCrash) {
  std::mt19937 rng(5);
  ScratchDir dir;
  const char alphabet[] = {',', ';', '"', '\'', '\n', '\r', 'a', '1', '.', '\xE4', '\xB8', '\xAD', '\xFF', '\0', ' '};
  for (int round = 0; round < 200; ++round) {
    std::string s;
    size_t n = rng() % 400;
    for (size_t i = 0; i < n; ++i) s.push_back(alphabet[rng() % sizeof(alphabet)]);
    CsvOptions opts;
    opts.segment_bytes = 1024;
    opts.num_threads = 1 + static_cast<int>(rng() % 3);
    ImportOptions imp;
    imp.bad_rows = static_cast<BadRowPolicy>(rng() % 3);
    imp.quarantine_path = dir.Path("q.jsonl");
    auto r = ImportBytes(s, dir, opts, imp);
    if (!r.status.ok()) {
      EXPECT_TRUE(r.status.code() == StatusCode::kInvalidArgument) << r.status.ToString();
      EXPECT_FALSE(std::filesystem::exists(dir.Path("q.jsonl")));
    }
    std::filesystem::remove(dir.Path("q.jsonl"));
  }
}

}  // namespace
}  // namespace lathe
