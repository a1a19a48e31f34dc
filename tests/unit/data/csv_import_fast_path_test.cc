// The importer's fast paths (SIMD row scanner, SWAR number parsing, decimal hints, the chunk dictionary)
// must give exactly what the general tokenizer and the value_parse.h parsers give. These tests generate
// hostile mixes of spellings and compare every imported value with an oracle built from value_parse.h.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "data/csv_import.h"
#include "data/dataset_file.h"
#include "data/lcol_format.h"
#include "data/value_parse.h"
#include "data_test_util.h"

namespace lathe {
namespace {

using testing::ImportText;
using testing::ScratchDir;

std::string RandomDigits(std::mt19937_64& rng, int n) {
  std::string s;
  for (int i = 0; i < n; ++i) s += static_cast<char>('0' + rng() % 10);
  return s;
}

// A float-column spelling: mostly plain decimals of every length (including > 19 digits and mantissas
// over 2^53), plus signs, -0, exponents, infinities, missing tokens and blanks around values.
std::string FloatSpelling(std::mt19937_64& rng) {
  switch (rng() % 12) {
    case 0: return "";
    case 1: return "NA";
    case 2: return "-0.0";
    case 3: return RandomDigits(rng, 1 + static_cast<int>(rng() % 3)) + "e" + std::to_string(rng() % 30);
    case 4: return " " + RandomDigits(rng, 2) + ".5 ";
    case 5: return RandomDigits(rng, 10 + static_cast<int>(rng() % 15)) + "." + RandomDigits(rng, 1 + rng() % 12);
    case 6: return "+." + RandomDigits(rng, 1 + static_cast<int>(rng() % 9));
    case 7: return "-" + RandomDigits(rng, 1 + static_cast<int>(rng() % 17)) + ".";
    case 8: return rng() % 2 ? "inf" : "-Infinity";
    default:
      return (rng() % 2 ? "-" : "") + RandomDigits(rng, 1 + static_cast<int>(rng() % 9)) + "." +
             RandomDigits(rng, static_cast<int>(rng() % 10));
  }
}

std::string IntSpelling(std::mt19937_64& rng) {
  switch (rng() % 8) {
    case 0: return "";
    case 1: return "-" + RandomDigits(rng, 1 + static_cast<int>(rng() % 18));
    case 2: return "+" + RandomDigits(rng, 1 + static_cast<int>(rng() % 8));
    case 3: return "9223372036854775807";
    case 4: return "-9223372036854775808";
    case 5: return " 42";
    default: return RandomDigits(rng, 1 + static_cast<int>(rng() % 18));
  }
}

std::string StringSpelling(std::mt19937_64& rng) {
  static const char* kWords[] = {"a", "bb", "ccc", "dddd", "eeeeeeee", "fffffffffffffffff", "N/A", " padded ",
                                 "caf\xC3\xA9", "\xE2\x82\xAC uro", "NULL", "x y", "abcdefgh12345678"};
  if (rng() % 20 == 0) return "\"quoted, \"\"with\"\" comma\"";
  if (rng() % 20 == 0) return "\"two\nlines\"";
  return kWords[rng() % (sizeof(kWords) / sizeof(kWords[0]))];
}

struct Generated {
  std::string csv;
  std::vector<std::string> f, i, s;  // raw values (unquoted/unescaped for s)
};

Generated Generate(uint64_t seed, int rows) {
  std::mt19937_64 rng(seed);
  Generated g;
  g.csv = "f,i,s,d\n";
  for (int r = 0; r < rows; ++r) {
    std::string f = FloatSpelling(rng), i = IntSpelling(rng), s = StringSpelling(rng);
    g.f.push_back(f), g.i.push_back(i);
    std::string unq = s;
    if (!s.empty() && s[0] == '"') {
      unq.clear();
      for (size_t k = 1; k + 1 < s.size(); ++k) {
        unq += s[k];
        if (s[k] == '"') ++k;
      }
    }
    g.s.push_back(unq);
    std::string d = "2021-0" + std::to_string(1 + rng() % 9) + "-1" + std::to_string(rng() % 10);
    const char* eol = rng() % 50 == 0 ? "\r\n" : "\n";
    g.csv += f + "," + i + "," + s + "," + d + eol;
    if (rng() % 200 == 0) g.csv += "\n";  // a blank line
  }
  return g;
}

// Two imports of the same text hold the same columns: types, validity and every value (floats bit for bit).
void ExpectSameTable(const Table& a, const Table& b, const std::string& context) {
  ASSERT_EQ(a.num_rows, b.num_rows) << context;
  ASSERT_EQ(a.columns.size(), b.columns.size()) << context;
  for (size_t c = 0; c < a.columns.size(); ++c) {
    const Column& x = a.columns[c];
    const Column& y = b.columns[c];
    ASSERT_EQ(x.type, y.type) << context << ", column " << c;
    ASSERT_EQ(x.valid, y.valid) << context << ", column " << c;
    for (size_t r = 0; r < x.size(); ++r) {
      if (!x.valid[r]) continue;
      switch (x.type) {
        case ColumnType::kFloat64: ASSERT_EQ(std::memcmp(&x.f64[r], &y.f64[r], 8), 0) << context << ", row " << r; break;
        case ColumnType::kString: ASSERT_EQ(x.StringAt(r), y.StringAt(r)) << context << ", row " << r; break;
        default: ASSERT_EQ(x.i64[r], y.i64[r]) << context << ", row " << r; break;
      }
    }
  }
}

TEST(CsvImportFastPath, ValuesEqualTheGeneralParsers) {
  Generated g = Generate(11, 30000);
  ScratchDir dir;
  auto x = ImportText(g.csv, dir);
  ASSERT_TRUE(x.status.ok()) << x.status.ToString();
  ASSERT_EQ(x.table.num_rows, 30000);
  const Column& f = x.table.columns[0];
  const Column& i = x.table.columns[1];
  const Column& s = x.table.columns[2];
  ASSERT_EQ(f.type, ColumnType::kFloat64);
  ASSERT_EQ(i.type, ColumnType::kInt64);
  ASSERT_EQ(s.type, ColumnType::kString);
  for (size_t r = 0; r < g.f.size(); ++r) {
    std::string_view fv = TrimBlanks(g.f[r]);
    if (IsMissingToken(fv)) {
      EXPECT_FALSE(f.IsValid(r)) << r;
    } else {
      double want;
      ASSERT_TRUE(ParseFloat64(fv, &want)) << g.f[r];
      ASSERT_TRUE(f.IsValid(r)) << r;
      EXPECT_EQ(std::memcmp(&want, &f.f64[r], 8), 0) << "row " << r << " '" << g.f[r] << "' got " << f.f64[r];
    }
    std::string_view iv = TrimBlanks(g.i[r]);
    if (IsMissingToken(iv)) {
      EXPECT_FALSE(i.IsValid(r)) << r;
    } else {
      int64_t want;
      ASSERT_EQ(ParseInt64(iv, &want), IntParse::kOk) << g.i[r];
      ASSERT_TRUE(i.IsValid(r));
      EXPECT_EQ(want, i.i64[r]) << "row " << r << " '" << g.i[r] << "'";
    }
    if (IsMissingToken(TrimBlanks(g.s[r]))) {
      EXPECT_FALSE(s.IsValid(r)) << r;
    } else {
      ASSERT_TRUE(s.IsValid(r)) << r;
      EXPECT_EQ(s.StringAt(r), g.s[r]) << r;
    }
  }
}

// Chunks whose every value is a plain decimal with at most 9 digits after the point are stored straight from
// the parsed mantissas (no double is computed while parsing): the values read back must still be exactly
// what ParseFloat64 gives, including mantissas near 2^53, and mixed chunks must fall back per value.
TEST(CsvImportFastPath, PlainDecimalChunksStoreExactValues) {
  std::mt19937_64 rng(7);
  std::vector<std::string> vals;
  std::string csv = "x,y\n";
  for (int r = 0; r < 20000; ++r) {
    std::string v;
    switch (rng() % 6) {
      case 0: v = ""; break;
      case 1: v = "9007199254740.992"; break;  // mantissa exactly 2^53
      case 2: v = "-" + RandomDigits(rng, 1 + rng() % 6) + "." + RandomDigits(rng, 1 + rng() % 9); break;
      default: v = RandomDigits(rng, 1 + rng() % 5) + "." + RandomDigits(rng, rng() % 5); break;
    }
    if (r % 997 == 0) v = r % 2 ? "-0.000" : "-0";  // -0.0 in otherwise decimal chunks keeps its sign
    // A later row group mixes in spellings the fast path does not take (exponent, 12 decimals).
    if (r > 15000 && rng() % 50 == 0) v = rng() % 2 ? "12e3" : "0.123456789012";
    vals.push_back(v);
    csv += v + "," + std::to_string(r) + "\n";
  }
  ScratchDir dir;
  auto x = ImportText(csv, dir);
  ASSERT_TRUE(x.status.ok()) << x.status.ToString();
  const Column& c = x.table.columns[0];
  ASSERT_EQ(c.type, ColumnType::kFloat64);
  for (size_t r = 0; r < vals.size(); ++r) {
    if (vals[r].empty()) {
      EXPECT_FALSE(c.IsValid(r)) << r;
      continue;
    }
    double want;
    ASSERT_TRUE(ParseFloat64(vals[r], &want)) << vals[r];
    ASSERT_TRUE(c.IsValid(r)) << r;
    EXPECT_EQ(std::memcmp(&want, &c.f64[r], 8), 0) << "row " << r << " '" << vals[r] << "' got " << c.f64[r];
  }
}

// Plain dates go through a per-column cache of parsed values: every value must still equal what
// ParseDatetimeMicros gives (dates before 1970 included), and an invalid date late in the file must still turn
// the column into strings.
TEST(CsvImportFastPath, RepeatedDatesEqualTheGeneralParser) {
  std::mt19937_64 rng(3);
  auto date = [&]() {
    char buf[16];
    std::snprintf(buf, sizeof buf, "%04d-%02d-%02d", 1890 + static_cast<int>(rng() % 220), 1 + static_cast<int>(rng() % 12),
                  1 + static_cast<int>(rng() % 28));
    return std::string(buf);
  };
  std::vector<std::string> vals;
  std::string csv = "d,i\n";
  for (int r = 0; r < 40000; ++r) {
    vals.push_back(r % 7 == 0 ? "" : (r % 3 == 0 ? "2020-02-29" : date()));
    csv += vals.back() + "," + std::to_string(r) + "\n";
  }
  ScratchDir dir;
  auto x = ImportText(csv, dir);
  ASSERT_TRUE(x.status.ok()) << x.status.ToString();
  const Column& c = x.table.columns[0];
  ASSERT_EQ(c.type, ColumnType::kDatetime);
  for (size_t r = 0; r < vals.size(); ++r) {
    if (vals[r].empty()) {
      EXPECT_FALSE(c.IsValid(r)) << r;
      continue;
    }
    int64_t want;
    ASSERT_TRUE(ParseDatetimeMicros(vals[r], &want)) << vals[r];
    ASSERT_TRUE(c.IsValid(r)) << r;
    EXPECT_EQ(c.i64[r], want) << "row " << r << " '" << vals[r] << "'";
  }
  // 2021-02-29 does not exist: the column is text, each value kept as written.
  ScratchDir dir2;
  auto y = ImportText(csv + "2021-02-29,0\n", dir2);
  ASSERT_TRUE(y.status.ok()) << y.status.ToString();
  ASSERT_EQ(y.table.columns[0].type, ColumnType::kString);
  EXPECT_EQ(y.table.columns[0].StringAt(vals.size()), "2021-02-29");
  EXPECT_EQ(y.table.columns[0].StringAt(3), vals[3]);
}

TEST(CsvImportFastPath, IntegersOfEveryLengthStayExact) {
  std::mt19937_64 rng(5);
  std::string csv = "i\n";
  std::vector<int64_t> want;
  for (int r = 0; r < 5000; ++r) {
    int digits = 1 + static_cast<int>(rng() % 18);
    std::string v = (rng() % 3 == 0 ? "-" : "") + RandomDigits(rng, digits);
    int64_t x;
    ASSERT_EQ(ParseInt64(v, &x), IntParse::kOk);
    want.push_back(x);
    csv += v + "\n";
  }
  csv += "9223372036854775807\n-9223372036854775808\n";
  want.push_back(INT64_MAX), want.push_back(INT64_MIN);
  ScratchDir dir;
  auto x = ImportText(csv, dir);
  ASSERT_TRUE(x.status.ok()) << x.status.ToString();
  ASSERT_EQ(x.table.columns[0].type, ColumnType::kInt64);
  EXPECT_EQ(x.table.columns[0].i64, want);
}

// Every combination of thread count and segment size yields the same table, to the bit.
TEST(CsvImportFastPath, ThreadsAndSegmentSizesAgreeExactly) {
  Generated g = Generate(23, 20000);
  ScratchDir dir;
  CsvOptions base;
  base.num_threads = 1;
  auto ref = ImportText(g.csv, dir, base);
  ASSERT_TRUE(ref.status.ok()) << ref.status.ToString();
  for (int threads : {1, 2, 3}) {
    for (size_t seg : {size_t{1024}, size_t{5000}, size_t{65536}, size_t{16} << 20}) {
      CsvOptions o;
      o.num_threads = threads;
      o.segment_bytes = seg;
      auto y = ImportText(g.csv, dir, o);
      ASSERT_TRUE(y.status.ok()) << y.status.ToString();
      ASSERT_NO_FATAL_FAILURE(
          ExpectSameTable(ref.table, y.table, std::to_string(threads) + " threads, segments of " + std::to_string(seg)));
    }
  }
}

// The chunk dictionary remembers the default missing tokens in slots of their own: they must stay missing
// while the table grows past thousands of distinct short values, and never become dictionary values.
TEST(CsvImportFastPath, MissingTokensAmongManyShortStrings) {
  std::mt19937_64 rng(3);
  static const char* kMissing[] = {"NA", "N/A", "NaN", "nan", "null", "NULL", "None", ""};
  static const char* kNear[] = {"Na", "na", "NONE", "nul", "N/AA", "NaNa", "n/a", "-"};
  std::string csv = "s,k\n";
  std::vector<std::string> want;
  for (int r = 0; r < 20000; ++r) {
    std::string v;
    switch (rng() % 4) {
      case 0: v = kMissing[rng() % 8]; break;
      case 1: v = kNear[rng() % 8]; break;
      default: v = "v" + std::to_string(rng() % (r < 10000 ? 40 : 6000)); break;  // 2..5 bytes, then many
    }
    want.push_back(v);
    csv += v + "," + std::to_string(r) + "\n";
  }
  csv += "x123456789,0\n";  // a long value too
  want.push_back("x123456789");
  ScratchDir dir;
  auto x = ImportText(csv, dir);
  ASSERT_TRUE(x.status.ok()) << x.status.ToString();
  const Column& c = x.table.columns[0];
  ASSERT_EQ(c.type, ColumnType::kString);
  for (size_t r = 0; r < want.size(); ++r) {
    if (IsMissingToken(want[r])) {
      ASSERT_FALSE(c.IsValid(r)) << r << " '" << want[r] << "'";
    } else {
      ASSERT_TRUE(c.IsValid(r)) << r << " '" << want[r] << "'";
      ASSERT_EQ(c.StringAt(r), want[r]) << r;
    }
  }
  for (const std::string& v : c.dict) EXPECT_FALSE(IsMissingToken(v)) << "'" << v << "' in the dictionary";
}

// Integers and decimals are parsed eight fields at a time where the CPU has AVX-512; lanes it cannot take go
// through the scalar path in row order. Each tricky spelling, at every lane position among ordinary numbers,
// must give the column type and values the scalar path gives.
TEST(CsvImportFastPath, VectorNumberParsingMatchesTheScalarPath) {
  const std::vector<std::string> tricky = {
      "",        "-",        "+",         ".",          "-.",        "+.",       "0",         "-0",
      "+0",      "-0.0",     "0.",        ".0",         "1.2.3",     "12345678", "-1234567",  "+1234567",
      "123456789", "-12345678", "1e5",    " 1",         "1 ",        "abc",      "9.",        "-9.9999",
      "99999.99", "0000.001", "-.0001",   "1..2",       "1-2",       "--1",      "+-1",       "NA",
      "\"12\"",  "\"1\"\"2\"", "12345.678", "-1.234567", "1234567.", "00000000", "1.",  "1234567a"};
  ScratchDir dir;
  for (const std::string& t : tricky) {
    for (size_t pos : {size_t{0}, size_t{3}, size_t{7}, size_t{8}, size_t{21}}) {
      std::string csv = "i,f\n";
      for (size_t r = 0; r < 40; ++r) {
        const std::string i = r == pos ? t : std::to_string(static_cast<int64_t>(r * 7919 % 2001) - 1000);
        const std::string f = r == pos ? t : (r % 2 ? "-" : "") + std::to_string(r % 97) + "." + std::to_string(r % 10);
        csv += i + "," + f + "\n";
      }
      CsvOptions scalar, vector;
      scalar.simd = CsvOptions::Simd::kBaseline;
      vector.simd = CsvOptions::Simd::kAvx512;  // the widest the CPU has
      auto a = ImportText(csv, dir, scalar);
      auto b = ImportText(csv, dir, vector);
      ASSERT_EQ(a.status.ok(), b.status.ok()) << "'" << t << "' at " << pos;
      if (!a.status.ok()) continue;
      ASSERT_NO_FATAL_FAILURE(ExpectSameTable(a.table, b.table, "'" + t + "' at row " + std::to_string(pos)));
    }
  }
}

// The bulk row scanner comes in vector widths picked at run time (baseline SSE2, AVX2, AVX-512, as far as the
// CPU has them); all must read the same rows, including non-ASCII text, quotes, CRLF and blank lines.
TEST(CsvImportFastPath, EveryScannerWidthReadsTheSame) {
  Generated g = Generate(31, 12000);
  ScratchDir dir;
  CsvOptions base;
  base.simd = CsvOptions::Simd::kBaseline;
  auto ref = ImportText(g.csv, dir, base);
  ASSERT_TRUE(ref.status.ok()) << ref.status.ToString();
  for (CsvOptions::Simd level : {CsvOptions::Simd::kAvx2, CsvOptions::Simd::kAvx512, CsvOptions::Simd::kAuto}) {
    CsvOptions o;
    o.simd = level;
    o.segment_bytes = 100000;
    auto y = ImportText(g.csv, dir, o);
    ASSERT_TRUE(y.status.ok()) << y.status.ToString();
    ASSERT_NO_FATAL_FAILURE(ExpectSameTable(ref.table, y.table, "width " + std::to_string(static_cast<int>(level))));
  }
  // A bad byte after thousands of fast rows is found at every width.
  std::string good;
  for (int r = 0; r < 3000; ++r) good += std::to_string(r) + ",caf\xC3\xA9 " + std::to_string(r % 7) + "\n";
  for (CsvOptions::Simd level : {CsvOptions::Simd::kBaseline, CsvOptions::Simd::kAvx2, CsvOptions::Simd::kAvx512}) {
    CsvOptions o;
    o.simd = level;
    o.encoding = "utf-8";
    auto bad = ImportText("a,b\n" + good + "1,\xC3\x28\n" + good, dir, o);
    ASSERT_FALSE(bad.status.ok());
    EXPECT_NE(bad.status.message().find("line 3002"), std::string::npos) << bad.status.ToString();
  }
}

TEST(CsvImportFastPath, InvalidUtf8AndRaggedRowsAfterFastRows) {
  std::string good;
  for (int r = 0; r < 3000; ++r) good += std::to_string(r) + ",x" + std::to_string(r % 7) + "\n";
  ScratchDir dir;
  CsvOptions utf8;
  utf8.encoding = "utf-8";  // detection would read the damaged byte as Latin-1
  auto bad_utf8 = ImportText("a,b\n" + good + "1,\xC3\x28\n" + good, dir, utf8);
  ASSERT_FALSE(bad_utf8.status.ok());
  EXPECT_NE(bad_utf8.status.message().find("line 3002"), std::string::npos) << bad_utf8.status.ToString();
  EXPECT_NE(bad_utf8.status.message().find("UTF-8"), std::string::npos);
  auto ragged = ImportText("a,b\n" + good + "1,2,3\n" + good, dir);
  ASSERT_FALSE(ragged.status.ok());
  EXPECT_NE(ragged.status.message().find("line 3002"), std::string::npos) << ragged.status.ToString();
  // The last row without a newline, and a row ending exactly at the end of the file.
  auto tail = ImportText("a,b\n" + good + "77,last", dir);
  ASSERT_TRUE(tail.status.ok()) << tail.status.ToString();
  EXPECT_EQ(tail.table.num_rows, 3001);
  EXPECT_EQ(tail.table.columns[1].StringAt(3000), "last");
}

// A value that breaks a column's type late in a row group (after many batches of rows were converted) makes
// the importer read the column's earlier rows of the group again from the text: rows of the simple scanner,
// rows that needed the general tokenizer (quotes, embedded newlines, CRLF), around skipped bad rows and
// blank lines. Every value must come out as if the column's final type had been known from the start.
TEST(CsvImportFastPath, LatePromotionsReadEarlierRowsAgain) {
  std::mt19937_64 rng(5);
  const int rows = 9000;
  std::string csv = "n,t,d,q,k\n";
  std::vector<std::string> n, t, d, q;
  int skipped = 0;
  for (int r = 0; r < rows; ++r) {
    // n: integers until row 1500, then a decimal; t: integers until row 4100, then text; d: dates until row
    // 7000, then text; q: quoted text with delimiters and newlines on some rows.
    std::string nv = r == 1500 ? "2.5" : std::to_string(static_cast<int64_t>(rng() % 2000000) - 1000000);
    std::string tv = r == 4100 ? "n/a yet" : (rng() % 10 == 0 ? "" : std::to_string(rng() % 100000));
    std::string dv = r == 7000 ? "someday" : "2020-0" + std::to_string(1 + rng() % 9) + "-2" + std::to_string(rng() % 9);
    std::string qv = "w" + std::to_string(rng() % 50);
    std::string qs = qv;
    if (rng() % 7 == 0) {
      qv = "a,\"b\"\n" + qv;
      qs = "\"a,\"\"b\"\"\n" + qs.substr(0) + "\"";
    }
    n.push_back(nv), t.push_back(tv), d.push_back(dv), q.push_back(qv);
    csv += nv + "," + tv + "," + dv + "," + qs + "," + std::to_string(r) + (rng() % 13 == 0 ? "\r\n" : "\n");
    if (rng() % 97 == 0) csv += "\n";
    if (rng() % 89 == 0) {
      csv += "1,2,3\n";  // ragged: skipped
      ++skipped;
    }
  }
  ScratchDir dir;
  for (int threads : {1, 2}) {
    CsvOptions o;
    o.num_threads = threads;
    ImportOptions skip;
    skip.bad_rows = BadRowPolicy::kSkip;
    skip.max_bad_rows = 1000;
    std::string dst = dir.Path("late.lcol");
    std::filesystem::remove(dst);
    auto r = ImportCsvFile(dir.Write("late.csv", csv), dst, o, skip, nullptr, nullptr);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_EQ(r->bad_rows, skipped);
    auto f = DatasetFile::Open(dst);
    ASSERT_TRUE(f.ok()) << f.status().ToString();
    auto table = (*f)->ReadAll();
    ASSERT_TRUE(table.ok()) << table.status().ToString();
    ASSERT_EQ(table->num_rows, rows);
    const Column& cn = table->columns[0];
    const Column& ct = table->columns[1];
    const Column& cd = table->columns[2];
    const Column& cq = table->columns[3];
    ASSERT_EQ(cn.type, ColumnType::kFloat64);
    ASSERT_EQ(ct.type, ColumnType::kString);
    ASSERT_EQ(cd.type, ColumnType::kString);
    ASSERT_EQ(cq.type, ColumnType::kString);
    for (int r = 0; r < rows; ++r) {
      double want;
      ASSERT_TRUE(ParseFloat64(n[r], &want));
      ASSERT_EQ(cn.f64[r], want) << r;
      if (t[r].empty()) {
        ASSERT_FALSE(ct.IsValid(r)) << r;
      } else {
        ASSERT_EQ(ct.StringAt(r), t[r]) << r;
      }
      ASSERT_EQ(cd.StringAt(r), d[r]) << r;
      ASSERT_EQ(cq.StringAt(r), q[r]) << r;
      ASSERT_EQ(table->columns[4].i64[r], r);
    }
  }
}

// The encoder verifies a producer's decimal claim and ignores a wrong one; width-3 offsets round-trip.
TEST(LcolEncoding, WrongDecimalHintIsIgnoredAndWidth3RoundTrips) {
  std::vector<double> v = {1.25, -3.5, 1e5 + 0.75, 0.0};
  std::vector<int64_t> wrong = {125, -350, 10000075, 1};  // the last one is wrong
  ChunkInput in;
  in.type = ColumnType::kFloat64;
  in.rows = v.size();
  in.f64 = v.data();
  in.decimal_mantissa = wrong.data();
  in.decimal_scale = 2;
  EncodedChunk e = EncodeChunk(in, 1);
  DecodedChunk d;
  ASSERT_TRUE(DecodeChunk(e.bytes, e.meta, ColumnType::kFloat64, v.size(), &d).ok());
  for (size_t i = 0; i < v.size(); ++i) EXPECT_EQ(std::memcmp(&d.f64[i], &v[i], 8), 0) << i;
  EXPECT_EQ(e.meta.encoding, ChunkEncoding::kDecimal);
  EXPECT_EQ(e.meta.width, 3);  // 10^7 + 75 - (-350) fits three bytes

  std::vector<int64_t> ints(1000);
  for (size_t i = 0; i < ints.size(); ++i) ints[i] = static_cast<int64_t>(i * 16000) - 7;
  ChunkInput ii;
  ii.type = ColumnType::kInt64;
  ii.rows = ints.size();
  ii.i64 = ints.data();
  EncodedChunk ei = EncodeChunk(ii, 1);
  EXPECT_EQ(ei.meta.width, 3);
  DecodedChunk di;
  ASSERT_TRUE(DecodeChunk(ei.bytes, ei.meta, ColumnType::kInt64, ints.size(), &di).ok());
  EXPECT_EQ(di.i64, ints);
}

}  // namespace
}  // namespace lathe
