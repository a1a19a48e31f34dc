#include "data/dataset_file.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <fstream>
#include <limits>
#include <random>

#include "data/table_json.h"
#include "data_test_util.h"

namespace lathe {
namespace {

using testing::ScratchDir;

// A table with every type, missing values, and strings that repeat across row groups.
Table MakeTable(int64_t rows, uint32_t seed) {
  std::mt19937_64 rng(seed);
  Table t;
  t.num_rows = rows;
  Column i{"i", ColumnType::kInt64}, f{"f", ColumnType::kFloat64}, b{"b", ColumnType::kBool},
      s{"s", ColumnType::kString}, d{"d", ColumnType::kDatetime}, big{"big", ColumnType::kInt64},
      raw{"raw", ColumnType::kFloat64};
  s.dict = {"alpha", "beta", "gamma", "", "δέλτα", "x,y\n\"z\""};
  for (int64_t r = 0; r < rows; ++r) {
    auto missing = [&](int pct) { return static_cast<int>(rng() % 100) < pct; };
    i.valid.push_back(!missing(5));
    i.i64.push_back(i.valid.back() ? static_cast<int64_t>(rng() % 2001) - 1000 : 0);
    f.valid.push_back(!missing(10));
    f.f64.push_back(f.valid.back() ? static_cast<double>(static_cast<int64_t>(rng() % 200000) - 100000) / 100 : 0);
    b.valid.push_back(!missing(3));
    b.b.push_back(b.valid.back() ? static_cast<uint8_t>(rng() % 2) : 0);
    s.valid.push_back(!missing(7));
    s.codes.push_back(s.valid.back() ? static_cast<int32_t>(rng() % s.dict.size()) : 0);
    d.valid.push_back(1);
    d.i64.push_back(1600000000000000LL + static_cast<int64_t>(rng() % 100000000000ULL));
    big.valid.push_back(1);
    big.i64.push_back(r % 2 ? std::numeric_limits<int64_t>::min() + r : std::numeric_limits<int64_t>::max() - r);
    raw.valid.push_back(r % 50 != 0);
    double x;
    uint64_t bits = rng();
    std::memcpy(&x, &bits, 8);
    if (std::isnan(x)) x = -0.0;
    raw.f64.push_back(raw.valid.back() ? x : 0);
  }
  t.columns = {i, f, b, s, d, big, raw};
  return t;
}

// Equal as data: same names, types, validity and values (string compared by text).
void ExpectSameTable(const Table& a, const Table& b) {
  ASSERT_EQ(a.num_rows, b.num_rows);
  ASSERT_EQ(a.columns.size(), b.columns.size());
  for (size_t c = 0; c < a.columns.size(); ++c) {
    const Column& x = a.columns[c];
    const Column& y = b.columns[c];
    ASSERT_EQ(x.name, y.name);
    ASSERT_EQ(x.type, y.type);
    ASSERT_EQ(x.valid, y.valid) << x.name;
    for (size_t r = 0; r < static_cast<size_t>(a.num_rows); ++r) {
      if (!x.IsValid(r)) continue;
      switch (x.type) {
        case ColumnType::kInt64:
        case ColumnType::kDatetime: ASSERT_EQ(x.i64[r], y.i64[r]) << x.name << " row " << r; break;
        case ColumnType::kFloat64:
          ASSERT_EQ(std::memcmp(&x.f64[r], &y.f64[r], 8), 0) << x.name << " row " << r << " " << x.f64[r];
          break;
        case ColumnType::kBool: ASSERT_EQ(x.b[r], y.b[r]) << x.name; break;
        case ColumnType::kString: ASSERT_EQ(x.StringAt(r), y.StringAt(r)) << x.name << " row " << r; break;
      }
    }
  }
}

TEST(DatasetFile, RoundTripExactlyEqual) {
  ScratchDir dir;
  for (int64_t rows : {int64_t{0}, int64_t{1}, int64_t{1000}, int64_t{150000}}) {
    SCOPED_TRACE(rows);
    Table t = MakeTable(rows, 11);
    std::string path = dir.Path("t" + std::to_string(rows) + ".lcol");
    ASSERT_TRUE(WriteDatasetFile(t, path).ok());
    auto f = DatasetFile::Open(path);
    ASSERT_TRUE(f.ok()) << f.status().ToString();
    EXPECT_EQ((*f)->num_rows(), rows);
    ASSERT_EQ((*f)->columns().size(), 7u);
    EXPECT_EQ((*f)->columns()[3].type, ColumnType::kString);
    auto back = (*f)->ReadAll();
    ASSERT_TRUE(back.ok()) << back.status().ToString();
    ExpectSameTable(t, *back);
  }
}

TEST(DatasetFile, WindowsAcrossChunkBoundaries) {
  ScratchDir dir;
  Table t = MakeTable(200000, 5);  // groups of 65536: boundaries at 65536, 131072, 196608
  std::string path = dir.Path("w.lcol");
  ASSERT_TRUE(WriteDatasetFile(t, path).ok());
  auto f = DatasetFile::Open(path);
  ASSERT_TRUE(f.ok());
  struct Window {
    int64_t offset, limit, want_rows;
  } windows[] = {{0, 10, 10},          {65530, 12, 12},        {65536, 1, 1},        {131000, 70000, 69000},
                 {196600, 5000, 3400}, {199999, 100, 1},       {200000, 5, 0},       {500000, 5, 0},
                 {0, 0, 0},            {10, 200000, 199990}};
  for (const auto& w : windows) {
    SCOPED_TRACE(std::to_string(w.offset) + "+" + std::to_string(w.limit));
    auto part = (*f)->ReadRows(w.offset, w.limit);
    ASSERT_TRUE(part.ok()) << part.status().ToString();
    ASSERT_EQ(part->num_rows, w.want_rows);
    Json got = TableRowsToJson(*part);
    for (int64_t r = 0; r < w.want_rows; r += std::max<int64_t>(1, w.want_rows / 50)) {
      size_t src = static_cast<size_t>(w.offset + r);
      const Column& s = t.columns[3];
      const Json& row = got[static_cast<size_t>(r)];
      if (s.IsValid(src)) {
        EXPECT_EQ(row["s"], std::string(s.StringAt(src)));
      } else {
        EXPECT_TRUE(row["s"].is_null());
      }
      if (t.columns[0].IsValid(src)) {
        EXPECT_EQ(row["i"], t.columns[0].i64[src]);
      }
      EXPECT_EQ(row["big"], t.columns[5].i64[src]);
    }
  }
  EXPECT_EQ((*f)->ReadRows(-1, 5).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ((*f)->ReadRows(0, -5).status().code(), StatusCode::kInvalidArgument);
}

// DecodeGroup hands out the stored row groups one at a time in reused buffers: the same values as the table,
// missing slots 0, for a last group whose length is not a multiple of 8 (the bitmap's tail).
TEST(DatasetFile, DecodeGroupMatchesTheTable) {
  ScratchDir dir;
  Table t = MakeTable(140003, 7);
  std::string path = dir.Path("g.lcol");
  ASSERT_TRUE(WriteDatasetFile(t, path).ok());
  auto f = DatasetFile::Open(path);
  ASSERT_TRUE(f.ok());
  ASSERT_EQ((*f)->num_groups(), 3);
  std::vector<DecodedChunk> chunks;
  int64_t first = 0;
  for (int64_t g = 0; g < (*f)->num_groups(); ++g) {
    ASSERT_TRUE((*f)->DecodeGroup(g, &chunks).ok());
    const size_t rows = static_cast<size_t>((*f)->group_rows(g));
    ASSERT_EQ(chunks.size(), t.columns.size());
    for (size_t c = 0; c < t.columns.size(); ++c) {
      const Column& col = t.columns[c];
      const DecodedChunk& d = chunks[c];
      ASSERT_EQ(d.valid.size(), rows) << col.name;
      for (size_t r = 0; r < rows; ++r) {
        const size_t src = static_cast<size_t>(first) + r;
        ASSERT_EQ(d.valid[r], col.valid[src]) << col.name << " row " << src;
        const bool ok = col.valid[src] != 0;
        switch (col.type) {
          case ColumnType::kInt64:
          case ColumnType::kDatetime:
            ASSERT_EQ(d.i64[r], ok ? col.i64[src] : 0) << col.name << " row " << src;
            break;
          case ColumnType::kFloat64: {
            const double want = ok ? col.f64[src] : 0.0;
            ASSERT_EQ(std::memcmp(&d.f64[r], &want, 8), 0) << col.name << " row " << src;
            break;
          }
          case ColumnType::kBool:
            ASSERT_EQ(d.b[r], ok ? col.b[src] : 0) << col.name;
            break;
          case ColumnType::kString:
            if (ok) {
              ASSERT_EQ(d.dict[static_cast<size_t>(d.codes[r])], col.StringAt(src))
                  << col.name << " row " << src;
            }
            break;
        }
      }
    }
    first += static_cast<int64_t>(rows);
  }
  EXPECT_EQ(first, 140003);
  EXPECT_EQ((*f)->DecodeGroup(-1, &chunks).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ((*f)->DecodeGroup(3, &chunks).code(), StatusCode::kInvalidArgument);
}

TEST(DatasetFile, StatsFromFooter) {
  ScratchDir dir;
  Table t;
  t.num_rows = 4;
  Column a{"a", ColumnType::kInt64};
  a.i64 = {5, -3, 0, 9};
  a.valid = {1, 1, 0, 1};
  Column s{"s", ColumnType::kString};
  s.dict = {"x", "y", "z"};
  s.codes = {0, 1, 0, 2};
  s.valid = {1, 1, 1, 0};
  Column d{"d", ColumnType::kDatetime};
  d.i64 = {0, 86400000000LL, 0, 0};
  d.valid = {1, 1, 0, 0};
  Column b{"b", ColumnType::kBool};
  b.b = {1, 1, 0, 0};
  b.valid = {1, 1, 1, 1};
  t.columns = {a, s, d, b};
  ASSERT_TRUE(WriteDatasetFile(t, dir.Path("s.lcol")).ok());
  auto f = DatasetFile::Open(dir.Path("s.lcol"));
  ASSERT_TRUE(f.ok());
  Json st = (*f)->StatsJson();
  EXPECT_EQ(st["rows"], 4);
  const Json& cols = st["columns"];
  EXPECT_EQ(cols[0]["min"], -3);
  EXPECT_EQ(cols[0]["max"], 9);
  EXPECT_EQ(cols[0]["missing"], 1);
  EXPECT_EQ(cols[0]["count"], 3);
  EXPECT_EQ(cols[1]["distinct"], 2);  // x, y (z only in a missing row)
  EXPECT_EQ(cols[2]["max"], "1970-01-02T00:00:00Z");
  EXPECT_EQ(cols[3]["true_count"], 2);
  EXPECT_EQ((*f)->columns()[0].missing, 1);
}

TEST(DatasetFile, RejectsInconsistentTables) {
  ScratchDir dir;
  Table t;
  t.num_rows = 2;
  Column a{"a", ColumnType::kString};
  a.dict = {"x"};
  a.codes = {0, 3};
  a.valid = {1, 1};
  t.columns = {a};
  EXPECT_EQ(WriteDatasetFile(t, dir.Path("bad.lcol")).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(dir.FileCount(), 0u);
}

std::string ReadBytes(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(f), {});
}

// Opening and fully reading a damaged file must answer kDataLoss (or, for damage that leaves it
// well-formed, never happens: every byte is covered by a magic number, a check or a checksum).
Status OpenAndRead(const std::string& path) {
  auto f = DatasetFile::Open(path);
  if (!f.ok()) return f.status();
  auto t = (*f)->ReadAll();
  return t.ok() ? Status::Ok() : t.status();
}

TEST(DatasetFileCorruption, TruncationAndBitFlipsAreDataLoss) {
  ScratchDir dir;
  Table t = MakeTable(3000, 9);
  std::string good = dir.Path("good.lcol");
  ASSERT_TRUE(WriteDatasetFile(t, good).ok());
  std::string bytes = ReadBytes(good);
  ASSERT_GT(bytes.size(), 100u);
  std::string bad = dir.Path("bad.lcol");
  auto write = [&](const std::string& content) {
    std::ofstream f(bad, std::ios::binary | std::ios::trunc);
    f << content;
  };
  std::mt19937 rng(1);
  // Every truncation length near both ends, and a spread in between.
  std::vector<size_t> cuts;
  for (size_t n = 0; n < 64; ++n) cuts.push_back(n);
  for (size_t n = bytes.size() - 64; n < bytes.size(); ++n) cuts.push_back(n);
  for (int k = 0; k < 100; ++k) cuts.push_back(rng() % bytes.size());
  for (size_t n : cuts) {
    write(bytes.substr(0, n));
    Status s = OpenAndRead(bad);
    ASSERT_EQ(s.code(), StatusCode::kDataLoss) << "truncated to " << n << ": " << s.ToString();
  }
  // Bit flips at every byte of the header, footer and trailer, and at random places in the chunks.
  std::vector<size_t> spots;
  for (size_t p = 0; p < 16; ++p) spots.push_back(p);
  for (size_t p = bytes.size() - 600; p < bytes.size(); ++p) spots.push_back(p);
  for (int k = 0; k < 400; ++k) spots.push_back(rng() % bytes.size());
  for (size_t p : spots) {
    std::string damaged = bytes;
    damaged[p] = static_cast<char>(damaged[p] ^ (1 << (rng() % 8)));
    write(damaged);
    Status s = OpenAndRead(bad);
    ASSERT_EQ(s.code(), StatusCode::kDataLoss) << "bit flip at " << p << ": " << s.ToString();
  }
  // Garbage and hostile files.
  for (const std::string& junk : {std::string(), std::string("LATHECOL"), std::string(1000, '\0'),
                                  std::string(4096, 'x'), std::string("LATHECOL") + std::string(100, '\xff')}) {
    write(junk);
    EXPECT_EQ(OpenAndRead(bad).code(), StatusCode::kDataLoss);
  }
  EXPECT_EQ(DatasetFile::Open(dir.Path("missing.lcol")).status().code(), StatusCode::kNotFound);
}

TEST(TableJson, RowsWithNullsAndDatetimes) {
  Table t;
  t.num_rows = 2;
  Column f{"f", ColumnType::kFloat64};
  f.f64 = {1.5, std::numeric_limits<double>::infinity()};
  f.valid = {1, 1};
  Column d{"d", ColumnType::kDatetime};
  d.i64 = {1500, 0};
  d.valid = {1, 0};
  t.columns = {f, d};
  Json j = TableRowsToJson(t);
  EXPECT_EQ(j.dump(), R"([{"d":"1970-01-01T00:00:00.001500Z","f":1.5},{"d":null,"f":null}])");
}

}  // namespace
}  // namespace lathe
