// Chunk encodings decimal_negzero (decimal floats with -0.0) and scaled (datetimes in whole days / seconds /
// milliseconds): bit-exact round trips against the input values, the metadata's JSON round trip, and
// kDataLoss for every kind of damage to payload or metadata.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>

#include "data/checksum.h"
#include "data/lcol_format.h"

namespace lathe {
namespace {

bool SameBits(double a, double b) { return std::memcmp(&a, &b, 8) == 0; }

// Encode, pass the metadata through its JSON form, decode.
Status RoundTrip(const ChunkInput& in, EncodedChunk* e, DecodedChunk* d) {
  *e = EncodeChunk(in, 1);
  auto meta = ChunkMeta::FromJson(e->meta.ToJson());
  if (!meta.ok()) return meta.status();
  e->meta = *meta;
  return DecodeChunk(e->bytes, e->meta, in.type, in.rows, d);
}

TEST(LcolEncoding, NegativeZeroKeepsDecimalEncodingAndSign) {
  std::mt19937_64 rng(7);
  std::vector<double> v(5000);
  std::vector<uint8_t> valid(v.size(), 1);
  for (size_t i = 0; i < v.size(); ++i) {
    int64_t m = static_cast<int64_t>(rng() % 20001) - 10000;
    v[i] = static_cast<double>(m) / 1e4;
    if (i % 97 == 0) v[i] = -0.0;
    if (i % 89 == 0) v[i] = 0.0;
    if (i % 101 == 0) valid[i] = 0, v[i] = -0.0;  // a missing row's -0.0 is not recorded
  }
  ChunkInput in;
  in.type = ColumnType::kFloat64;
  in.rows = v.size();
  in.f64 = v.data();
  in.valid = valid.data();
  EncodedChunk e;
  DecodedChunk d;
  ASSERT_TRUE(RoundTrip(in, &e, &d).ok());
  EXPECT_EQ(e.meta.encoding, ChunkEncoding::kDecimalNegZero);
  EXPECT_EQ(e.meta.scale, 4);
  EXPECT_LE(e.meta.width, 2);
  int64_t expect_nz = 0;
  for (size_t i = 0; i < v.size(); ++i) {
    expect_nz += valid[i] && std::signbit(v[i]) && v[i] == 0;
    ASSERT_EQ(d.valid[i], valid[i]) << i;
    if (valid[i]) {
      ASSERT_TRUE(SameBits(d.f64[i], v[i])) << i << " " << v[i] << " " << d.f64[i];
    }
  }
  EXPECT_EQ(e.meta.neg_zeros, expect_nz);

  // Without any -0.0 the plain decimal encoding (readable by older readers) is still used.
  for (double& x : v) x = x == 0 ? 0.0 : x;
  ASSERT_TRUE(RoundTrip(in, &e, &d).ok());
  EXPECT_EQ(e.meta.encoding, ChunkEncoding::kDecimal);

  // A producer claim (mantissa 0 for "-0.0") is accepted for -0.0 and the sign survives.
  std::vector<double> w = {-0.0, 1.5, 0.0, -2.25, -0.0};
  std::vector<int64_t> mant = {0, 150, 0, -225, 0};
  ChunkInput ci;
  ci.type = ColumnType::kFloat64;
  ci.rows = w.size();
  ci.f64 = w.data();
  ci.decimal_mantissa = mant.data();
  ci.decimal_scale = 2;
  ASSERT_TRUE(RoundTrip(ci, &e, &d).ok());
  EXPECT_EQ(e.meta.encoding, ChunkEncoding::kDecimalNegZero);
  EXPECT_EQ(e.meta.neg_zeros, 2);
  for (size_t i = 0; i < w.size(); ++i) EXPECT_TRUE(SameBits(d.f64[i], w[i])) << i;
}

TEST(LcolEncoding, DatetimeStepsShrinkAndRoundTrip) {
  struct Case {
    int64_t unit;
    int64_t step;
    int64_t span_days;  // ms over 30 years would need 8 bytes anyway (no 5-7 byte widths): keep it short
  };
  const int64_t kDay = 86400000000LL;
  for (Case c : {Case{kDay, kDay, 30 * 365}, Case{1000000, 1000000, 30 * 365}, Case{1000, 1000, 40},
                 Case{1000, 1, 30 * 365}, Case{7, 1, 30 * 365}}) {
    std::mt19937_64 rng(static_cast<uint64_t>(c.unit));
    std::vector<int64_t> v(3000);
    std::vector<uint8_t> valid(v.size(), 1);
    // Around the epoch (negative values too).
    for (size_t i = 0; i < v.size(); ++i) {
      v[i] = (static_cast<int64_t>(rng() % static_cast<uint64_t>(c.span_days * kDay / c.unit)) -
              c.span_days / 6 * kDay / c.unit) * c.unit;
      if (i % 13 == 0) valid[i] = 0, v[i] = 12345;  // missing rows hold anything
    }
    ChunkInput in;
    in.type = ColumnType::kDatetime;
    in.rows = v.size();
    in.i64 = v.data();
    in.valid = valid.data();
    EncodedChunk e;
    DecodedChunk d;
    ASSERT_TRUE(RoundTrip(in, &e, &d).ok()) << c.unit;
    if (c.step > 1) {
      EXPECT_EQ(e.meta.encoding, ChunkEncoding::kScaled) << c.unit;
      EXPECT_EQ(e.meta.step, c.step);
      EXPECT_LT(e.meta.width, 8);
    } else {
      EXPECT_EQ(e.meta.encoding, ChunkEncoding::kPlain);
    }
    for (size_t i = 0; i < v.size(); ++i) {
      ASSERT_EQ(d.valid[i], valid[i]);
      ASSERT_EQ(d.i64[i], valid[i] ? v[i] : 0) << c.unit << " row " << i;
    }
  }
  // Extreme values: a range that needs 8 bytes even after scaling is stored plain and still exact.
  std::vector<int64_t> ext = {INT64_MIN / kDay * kDay, INT64_MAX / kDay * kDay, 0};
  ChunkInput in;
  in.type = ColumnType::kDatetime;
  in.rows = ext.size();
  in.i64 = ext.data();
  EncodedChunk e;
  DecodedChunk d;
  ASSERT_TRUE(RoundTrip(in, &e, &d).ok());
  EXPECT_EQ(d.i64, ext);
  // Integer columns are never scaled (their chunks may be relabelled as decimal in a float column).
  std::vector<int64_t> ints = {0, 1000000, 2000000, 5000000};
  in.type = ColumnType::kInt64;
  in.rows = ints.size();
  in.i64 = ints.data();
  ASSERT_TRUE(RoundTrip(in, &e, &d).ok());
  EXPECT_EQ(e.meta.encoding, ChunkEncoding::kPlain);
  EXPECT_EQ(d.i64, ints);
}

// Stores `payload` uncompressed under `meta` with a correct CRC, so only the payload's meaning is wrong.
Status DecodeRaw(const std::string& payload, ChunkMeta meta, ColumnType type, size_t rows) {
  meta.zstd = false;
  meta.size = meta.raw_size = payload.size();
  meta.crc32 = Crc32(payload);
  DecodedChunk d;
  return DecodeChunk(payload, meta, type, rows, &d);
}

std::string U32s(std::initializer_list<uint32_t> xs) {
  std::string s;
  for (uint32_t x : xs) s.append(reinterpret_cast<const char*>(&x), 4);
  return s;
}

TEST(LcolEncoding, DamagedNegZeroAndScaledChunksAreDataLoss) {
  // 4 rows, width 1, base -1: values m = -1, 0, 0, 1 at scale 1.
  const std::string values = std::string("\x00\x01\x01\x02", 4);
  ChunkMeta m;
  m.encoding = ChunkEncoding::kDecimalNegZero;
  m.width = 1;
  m.base = -1;
  m.scale = 1;
  m.neg_zeros = 2;
  EXPECT_TRUE(DecodeRaw(values + U32s({1, 2}), m, ColumnType::kFloat64, 4).ok());
  auto loss = [](const Status& s) { return s.code() == StatusCode::kDataLoss; };
  EXPECT_TRUE(loss(DecodeRaw(values + U32s({2, 1}), m, ColumnType::kFloat64, 4)));   // out of order
  EXPECT_TRUE(loss(DecodeRaw(values + U32s({1, 1}), m, ColumnType::kFloat64, 4)));   // repeated
  EXPECT_TRUE(loss(DecodeRaw(values + U32s({1, 4}), m, ColumnType::kFloat64, 4)));   // past the rows
  EXPECT_TRUE(loss(DecodeRaw(values + U32s({0, 1}), m, ColumnType::kFloat64, 4)));   // not a zero
  EXPECT_TRUE(loss(DecodeRaw(values + U32s({1, 0xFFFFFFFFu}), m, ColumnType::kFloat64, 4)));
  EXPECT_TRUE(loss(DecodeRaw(values + U32s({1}), m, ColumnType::kFloat64, 4)));      // truncated list
  EXPECT_TRUE(loss(DecodeRaw(values + U32s({1, 2, 3}), m, ColumnType::kFloat64, 4)));  // extra bytes
  EXPECT_TRUE(loss(DecodeRaw(values + U32s({1, 2}), m, ColumnType::kInt64, 4)));      // wrong column type
  ChunkMeta huge = m;
  huge.neg_zeros = int64_t{1} << 62;
  EXPECT_TRUE(loss(DecodeRaw(values + U32s({1, 2}), huge, ColumnType::kFloat64, 4)));
  // A -0.0 row that is missing.
  ChunkMeta with_nulls = m;
  with_nulls.nulls = 1;
  with_nulls.neg_zeros = 1;
  EXPECT_TRUE(DecodeRaw(std::string("\x0B", 1) + values + U32s({1}), with_nulls, ColumnType::kFloat64, 4).ok());
  EXPECT_TRUE(loss(DecodeRaw(std::string("\x0B", 1) + values + U32s({2}), with_nulls, ColumnType::kFloat64, 4)));

  ChunkMeta s;
  s.encoding = ChunkEncoding::kScaled;
  s.width = 1;
  s.step = 86400000000LL;
  EXPECT_TRUE(DecodeRaw(values, s, ColumnType::kDatetime, 4).ok());
  EXPECT_TRUE(loss(DecodeRaw(values, s, ColumnType::kFloat64, 4)));
  EXPECT_TRUE(loss(DecodeRaw(values, s, ColumnType::kString, 4)));
  EXPECT_TRUE(loss(DecodeRaw(values.substr(1), s, ColumnType::kDatetime, 4)));
  s.step = 1;
  EXPECT_TRUE(loss(DecodeRaw(values, s, ColumnType::kDatetime, 4)));

  // Footer entries: missing or invalid neg_zeros / step, unknown encodings.
  Json j = m.ToJson();
  EXPECT_EQ(j["encoding"], "decimal_negzero");
  EXPECT_TRUE(ChunkMeta::FromJson(j).ok());
  for (Json bad : {Json(0), Json(-3), Json("2"), Json(nullptr)}) {
    Json k = j;
    k["neg_zeros"] = bad;
    EXPECT_TRUE(loss(ChunkMeta::FromJson(k).status())) << bad.dump();
  }
  j.erase("neg_zeros");
  EXPECT_TRUE(loss(ChunkMeta::FromJson(j).status()));
  ChunkMeta sm;
  sm.encoding = ChunkEncoding::kScaled;
  sm.step = 1000;
  Json js = sm.ToJson();
  EXPECT_EQ(js["encoding"], "scaled");
  auto back = ChunkMeta::FromJson(js);
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->step, 1000);
  for (Json bad : {Json(1), Json(0), Json(-1000), Json(1.5)}) {
    Json k = js;
    k["step"] = bad;
    EXPECT_TRUE(loss(ChunkMeta::FromJson(k).status())) << bad.dump();
  }
  js["encoding"] = "scaled2";
  EXPECT_TRUE(loss(ChunkMeta::FromJson(js).status()));
  // A plain entry carrying a neg_zeros field ignores it (only decimal_negzero reads it).
  Json plain = ChunkMeta().ToJson();
  plain["neg_zeros"] = 5;
  auto p = ChunkMeta::FromJson(plain);
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->neg_zeros, 0);
}

}  // namespace
}  // namespace lathe
