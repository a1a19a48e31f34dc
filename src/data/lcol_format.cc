#include "data/lcol_format.h"

#include <zstd.h>

#include <bit>
#include <cmath>
#include <cstring>
#include <memory>

#include "data/checksum.h"
#include "data/value_parse.h"

namespace lathe {

static_assert(std::endian::native == std::endian::little, "the .lcol encoder assumes a little-endian host");

namespace {

int WidthFor(uint64_t range) {
  if (range <= 0xFFu) return 1;
  if (range <= 0xFFFFu) return 2;
  if (range <= 0xFFFFFFu) return 3;
  if (range <= 0xFFFFFFFFu) return 4;
  return 8;
}

// Unpacks n values of W bytes each (little-endian) as base + value, 0 where invalid. W is a template
// parameter so each load is a fixed-size, inlined copy (a variable-size memcpy is a libc call per value).
// `valid` may be null (no missing rows): then the loop has no select and vectorizes for W = 1, 2, 4, 8.
template <int W, class Out>
void UnpackOffsets(const char* src, const uint8_t* valid, size_t n, uint64_t base, Out* out) {
  size_t i = 0;
  if constexpr (W == 3) {
    // One 4-byte load and a mask instead of a 2-byte and a 1-byte load; the last value is read exactly.
    auto load = [src](size_t k) {
      uint32_t v;
      std::memcpy(&v, src + k * 3, 4);
      return v & 0xFFFFFFu;
    };
    if (valid == nullptr) {
      for (; i + 1 < n; ++i) out[i] = static_cast<Out>(base + load(i));
    } else {
      for (; i + 1 < n; ++i) out[i] = static_cast<Out>(valid[i] ? base + load(i) : 0);
    }
  }
  if (valid == nullptr) {
    for (; i < n; ++i) {
      uint64_t v = 0;
      std::memcpy(&v, src + i * W, W);
      out[i] = static_cast<Out>(base + v);
    }
    return;
  }
  for (; i < n; ++i) {
    uint64_t v = 0;
    std::memcpy(&v, src + i * W, W);
    out[i] = static_cast<Out>(valid[i] ? base + v : 0);
  }
}

template <class Out>
void UnpackOffsetsWidth(const char* src, int width, const uint8_t* valid, size_t n, uint64_t base, Out* out) {
  switch (width) {
    case 1: UnpackOffsets<1>(src, valid, n, base, out); break;
    case 2: UnpackOffsets<2>(src, valid, n, base, out); break;
    case 3: UnpackOffsets<3>(src, valid, n, base, out); break;
    case 4: UnpackOffsets<4>(src, valid, n, base, out); break;
    default: UnpackOffsets<8>(src, valid, n, base, out); break;
  }
}

struct CCtxDeleter {
  void operator()(ZSTD_CCtx* c) const { ZSTD_freeCCtx(c); }
};
struct DCtxDeleter {
  void operator()(ZSTD_DCtx* c) const { ZSTD_freeDCtx(c); }
};

Status Corrupt(const std::string& what) { return Status::DataLoss("dataset file is corrupt: " + what); }

constexpr int kMaxDecimalScale = 9;
constexpr auto& kPow10 = kLcolPow10;
constexpr double kTwo53 = 9007199254740992.0;
constexpr uint64_t kNegZeroBits = uint64_t{1} << 63;

// The smallest scale k <= 9 such that every valid value equals m / 10^k (bit for bit, except that -0.0
// counts as m = 0) for an integer |m| <= 2^53, written to m[]; -1 if there is none.
int DecimalScale(const double* v, const uint8_t* valid, size_t n, int64_t* m) {
  int k = 0;
  for (size_t i = 0; i < n; ++i) {
    if (valid != nullptr && !valid[i]) continue;
    double x = v[i];
    if (!std::isfinite(x)) return -1;  // -0.0 passes as m = 0; the caller records its sign
    for (;;) {
      double r = std::nearbyint(x * kPow10[k]);
      if (std::fabs(r) <= kTwo53 && (k == 0 ? r : r / kPow10[k]) == x) break;
      if (++k > kMaxDecimalScale) return -1;
    }
  }
  for (size_t i = 0; i < n; ++i) {
    if (valid != nullptr && !valid[i]) {
      m[i] = 0;
      continue;
    }
    double r = std::nearbyint(v[i] * kPow10[k]);
    if (std::fabs(r) > kTwo53 || (k == 0 ? r : r / kPow10[k]) != v[i]) return -1;
    m[i] = static_cast<int64_t>(r);
  }
  return k;
}

}  // namespace

Json ChunkMeta::ToJson() const {
  const char* enc = "plain";
  switch (encoding) {
    case ChunkEncoding::kPlain: enc = "plain"; break;
    case ChunkEncoding::kNull: enc = "null"; break;
    case ChunkEncoding::kDecimal: enc = "decimal"; break;
    case ChunkEncoding::kDecimalNegZero: enc = "decimal_negzero"; break;
    case ChunkEncoding::kScaled: enc = "scaled"; break;
  }
  Json j = {{"encoding", enc},
            {"offset", offset}, {"size", size},   {"raw_size", raw_size}, {"crc32", crc32},
            {"codec", zstd ? "zstd" : "none"},    {"nulls", nulls},       {"width", width}, {"base", base}};
  if (encoding == ChunkEncoding::kDecimal || encoding == ChunkEncoding::kDecimalNegZero) j["scale"] = scale;
  if (encoding == ChunkEncoding::kDecimalNegZero) j["neg_zeros"] = neg_zeros;
  if (encoding == ChunkEncoding::kScaled) j["step"] = step;
  if (dict_count > 0 || dict_bytes > 0) {
    j["dict_count"] = dict_count;
    j["dict_bytes"] = dict_bytes;
  }
  return j;
}

Result<ChunkMeta> ChunkMeta::FromJson(const Json& j) {
  if (!j.is_object()) return Corrupt("chunk entry is not an object");
  auto u64 = [&](const char* k, uint64_t* out) -> bool {
    auto it = j.find(k);
    if (it == j.end() || !it->is_number_integer() || (it->is_number_integer() && !it->is_number_unsigned() &&
                                                       it->get<int64_t>() < 0)) {
      return false;
    }
    *out = it->get<uint64_t>();
    return true;
  };
  auto i64 = [&](const char* k, int64_t* out, bool required) -> bool {
    auto it = j.find(k);
    if (it == j.end()) return !required;
    if (!it->is_number_integer()) return false;
    if (it->is_number_unsigned() && it->get<uint64_t>() > static_cast<uint64_t>(INT64_MAX)) return false;
    *out = it->get<int64_t>();
    return true;
  };
  ChunkMeta m;
  uint64_t crc = 0;
  int64_t width = 0;
  if (!u64("offset", &m.offset) || !u64("size", &m.size) || !u64("raw_size", &m.raw_size) || !u64("crc32", &crc) ||
      crc > 0xFFFFFFFFu || !i64("nulls", &m.nulls, true) || !i64("width", &width, true) ||
      !i64("base", &m.base, true) || !i64("dict_count", &m.dict_count, false) ||
      !i64("dict_bytes", &m.dict_bytes, false)) {
    return Corrupt("chunk entry has missing or invalid fields");
  }
  m.crc32 = static_cast<uint32_t>(crc);
  if (width != 1 && width != 2 && width != 3 && width != 4 && width != 8) {
    return Corrupt("chunk width must be 1, 2, 3, 4 or 8");
  }
  m.width = static_cast<int>(width);
  auto codec = j.find("codec");
  if (codec == j.end() || !codec->is_string()) return Corrupt("chunk codec missing");
  if (*codec == "zstd") m.zstd = true;
  else if (*codec == "none") m.zstd = false;
  else return Corrupt("unknown chunk codec");
  auto enc = j.find("encoding");
  if (enc == j.end() || !enc->is_string()) return Corrupt("chunk encoding missing");
  if (*enc == "plain") m.encoding = ChunkEncoding::kPlain;
  else if (*enc == "null") m.encoding = ChunkEncoding::kNull;
  else if (*enc == "decimal") m.encoding = ChunkEncoding::kDecimal;
  else if (*enc == "decimal_negzero") m.encoding = ChunkEncoding::kDecimalNegZero;
  else if (*enc == "scaled") m.encoding = ChunkEncoding::kScaled;
  else return Corrupt("unknown chunk encoding");
  if (m.encoding == ChunkEncoding::kDecimalNegZero) {
    if (!i64("neg_zeros", &m.neg_zeros, true) || m.neg_zeros <= 0) return Corrupt("bad negative-zero count");
  }
  if (m.encoding == ChunkEncoding::kScaled) {
    if (!i64("step", &m.step, true) || m.step < 2) return Corrupt("bad scaled step");
  }
  int64_t scale = 0;
  if (!i64("scale", &scale, false) || scale < 0 || scale > kMaxDecimalScale) return Corrupt("bad decimal scale");
  m.scale = static_cast<int>(scale);
  if (m.nulls < 0 || m.dict_count < 0 || m.dict_bytes < 0) return Corrupt("negative chunk counts");
  return m;
}

// ---- distinct counting

DistinctCounter::DistinctCounter() : hll_(size_t{1} << 14, 0) {}

void DistinctCounter::Add(uint64_t hash) {
  if (hash == 0) hash = 1;
  size_t idx = hash >> 50;  // top 14 bits
  uint64_t rest = (hash << 14) | (uint64_t{1} << 13);
  uint8_t rank = static_cast<uint8_t>(std::countl_zero(rest) + 1);
  if (rank > hll_[idx]) hll_[idx] = rank;
  if (!overflowed_) InsertExact(hash);
}

void DistinctCounter::InsertExact(uint64_t hash) {
  if ((used_ + 1) * 2 > slots_.size()) {
    if (used_ >= kExactLimit) {
      overflowed_ = true;
      slots_.clear();
      slots_.shrink_to_fit();
      return;
    }
    std::vector<uint64_t> old = std::move(slots_);
    slots_.assign(old.empty() ? 1024 : old.size() * 2, 0);
    used_ = 0;
    for (uint64_t h : old) {
      if (h != 0) InsertExact(h);
    }
  }
  size_t mask = slots_.size() - 1;
  for (size_t i = hash & mask;; i = (i + 1) & mask) {
    if (slots_[i] == hash) return;
    if (slots_[i] == 0) {
      slots_[i] = hash;
      ++used_;
      return;
    }
  }
}

int64_t DistinctCounter::Count() const {
  if (!overflowed_) return static_cast<int64_t>(used_);
  double m = static_cast<double>(hll_.size());
  double sum = 0;
  int zeros = 0;
  for (uint8_t r : hll_) {
    sum += std::ldexp(1.0, -r);
    zeros += r == 0;
  }
  double est = 0.7213 / (1 + 1.079 / m) * m * m / sum;
  if (est <= 2.5 * m && zeros > 0) est = m * std::log(m / zeros);
  return static_cast<int64_t>(std::llround(est));
}

// ---- statistics

void ColumnStats::Merge(ColumnType type, const ColumnStats& c, DistinctCounter* distinct) {
  count += c.count;
  missing += c.missing;
  true_count += c.true_count;
  if (c.has_range) {
    if (!has_range) {
      min_i = c.min_i, max_i = c.max_i, min_f = c.min_f, max_f = c.max_f;
      has_range = true;
    } else {
      min_i = std::min(min_i, c.min_i), max_i = std::max(max_i, c.max_i);
      min_f = std::min(min_f, c.min_f), max_f = std::max(max_f, c.max_f);
    }
  }
  if (type == ColumnType::kString && distinct != nullptr) {
    for (uint64_t h : c.dict_hashes) distinct->Add(h);
  }
}

Json ColumnStats::ToJson(ColumnType type, const DistinctCounter* distinct) const {
  Json j = {{"count", count}, {"missing", missing}};
  switch (type) {
    case ColumnType::kInt64:
      if (has_range) j["min"] = min_i, j["max"] = max_i;
      break;
    case ColumnType::kDatetime:
      if (has_range) j["min"] = FormatDatetimeMicros(min_i), j["max"] = FormatDatetimeMicros(max_i);
      break;
    case ColumnType::kFloat64:
      // JSON has no infinities: an infinite bound is written as null.
      if (has_range) {
        j["min"] = std::isfinite(min_f) ? Json(min_f) : Json(nullptr);
        j["max"] = std::isfinite(max_f) ? Json(max_f) : Json(nullptr);
      }
      break;
    case ColumnType::kBool:
      j["true_count"] = true_count;
      break;
    case ColumnType::kString:
      if (distinct != nullptr) {
        j["distinct"] = distinct->Count();
        j["distinct_approximate"] = distinct->approximate();
      }
      break;
  }
  return j;
}

// ---- encoding

namespace {

// Reusable per-thread scratch so encoding a chunk allocates only its output.
struct EncodeScratch {
  std::string payload;
  std::string compressed;
  std::vector<int64_t> mantissa;
  std::unique_ptr<ZSTD_CCtx, CCtxDeleter> cctx{ZSTD_createCCtx()};
  int cctx_level = 1 << 30;
};

// Level 1 (the importers' default) is tuned for column chunks: numeric payloads have few long matches, so
// zstd's fast strategy only looks for matches of 7+ bytes (instead of 6). Measured on the 1M-row benchmark
// file: compression CPU -9 %, same size; on a mixed file with long repeated strings +1.2 %. The frames are
// ordinary zstd frames. If the library rejects the parameter the context stays at plain level 1.
void SetFastChunkParameters(ZSTD_CCtx* cctx) {
  if (ZSTD_isError(ZSTD_CCtx_setParameter(cctx, ZSTD_c_minMatch, 7))) {
    ZSTD_CCtx_reset(cctx, ZSTD_reset_session_and_parameters);
    ZSTD_CCtx_setParameter(cctx, ZSTD_c_compressionLevel, 1);
  }
}

EncodeScratch& Scratch() {
  thread_local EncodeScratch s;
  return s;
}

// All ones for a valid row (valid[i] != 0, or no bitmap at all), zero for a missing one: lets the loops
// below select without branching.
inline uint64_t ValidMask(const uint8_t* valid, size_t i) {
  return valid == nullptr ? ~uint64_t{0} : uint64_t{0} - static_cast<uint64_t>(valid[i] != 0);
}

// Stores the low W bytes of u at dst (little-endian). W = 3 stores 8 bytes: callers leave kPackSlackBytes
// after the last value, which the next value (or the payload's final resize) overwrites.
template <int W>
inline void StoreLow(char* dst, uint64_t u) {
  if constexpr (W == 1) {
    *dst = static_cast<char>(u);
  } else if constexpr (W == 2) {
    uint16_t x = static_cast<uint16_t>(u);
    std::memcpy(dst, &x, 2);
  } else if constexpr (W == 4) {
    uint32_t x = static_cast<uint32_t>(u);
    std::memcpy(dst, &x, 4);
  } else {
    std::memcpy(dst, &u, 8);
  }
}

// Bytes a Pack* call may write past n * W.
constexpr size_t kPackSlackBytes = 8;

// Writes n offsets v[i] - lo of W bytes each (little-endian), 0 for missing rows.
template <int W>
void PackOffsets(char* dst, const int64_t* v, const uint8_t* valid, size_t n, uint64_t lo) {
  if (valid == nullptr) {
    for (size_t i = 0; i < n; ++i) StoreLow<W>(dst + i * W, static_cast<uint64_t>(v[i]) - lo);
  } else {
    for (size_t i = 0; i < n; ++i) StoreLow<W>(dst + i * W, (static_cast<uint64_t>(v[i]) - lo) & ValidMask(valid, i));
  }
}

void PackOffsetsWidth(char* dst, int w, const int64_t* v, const uint8_t* valid, size_t n, uint64_t lo) {
  switch (w) {
    case 1: PackOffsets<1>(dst, v, valid, n, lo); break;
    case 2: PackOffsets<2>(dst, v, valid, n, lo); break;
    case 3: PackOffsets<3>(dst, v, valid, n, lo); break;
    case 4: PackOffsets<4>(dst, v, valid, n, lo); break;
    default: PackOffsets<8>(dst, v, valid, n, lo); break;
  }
}

template <int W>
void PackCodes(char* dst, const int32_t* codes, const uint8_t* valid, size_t n) {
  for (size_t i = 0; i < n; ++i) StoreLow<W>(dst + i * W, static_cast<uint32_t>(codes[i]) & ValidMask(valid, i));
}

// The validity bitmap (bit i % 8 of byte i / 8 set for a valid row), eight rows per step.
void PackBitmap(char* dst, const uint8_t* valid, size_t n) {
  const size_t full = n / 8;
  for (size_t k = 0; k < full; ++k) {
    uint64_t w;
    std::memcpy(&w, valid + k * 8, 8);
    // 0x80 in every non-zero byte; the multiplication then moves bit 7 of byte j to bit 56 + j (the partial
    // products land on distinct bits, so nothing carries into the top byte).
    uint64_t t = (((w & 0x7F7F7F7F7F7F7F7FULL) + 0x7F7F7F7F7F7F7F7FULL) | w) & 0x8080808080808080ULL;
    dst[k] = static_cast<char>((t * 0x0002040810204081ULL) >> 56);
  }
  if (full * 8 < n) {
    unsigned v = 0;
    for (size_t i = full * 8; i < n; ++i) v |= static_cast<unsigned>(valid[i] != 0) << (i - full * 8);
    dst[full] = static_cast<char>(v);
  }
}

// Min and max of the valid values; false if there are none. Branch-free: a missing row offers INT64_MAX to
// the minimum and INT64_MIN to the maximum.
bool IntRange(const int64_t* v, const uint8_t* valid, size_t n, int64_t* lo, int64_t* hi) {
  int64_t a = INT64_MAX, b = INT64_MIN;
  if (valid == nullptr) {
    for (size_t i = 0; i < n; ++i) {
      a = v[i] < a ? v[i] : a;
      b = v[i] > b ? v[i] : b;
    }
  } else {
    for (size_t i = 0; i < n; ++i) {
      const bool ok = valid[i] != 0;
      const int64_t for_min = ok ? v[i] : INT64_MAX, for_max = ok ? v[i] : INT64_MIN;
      a = for_min < a ? for_min : a;
      b = for_max > b ? for_max : b;
    }
  }
  const bool any = a <= b;  // also right for a single valid INT64_MAX or INT64_MIN
  *lo = any ? a : 0;
  *hi = any ? b : 0;
  return any;
}

// Checks the producer's claim that valid values are mantissa[i] / 10^scale bit for bit, with |m| <= 2^53
// (-0.0 is accepted as m = 0 and counted in *neg_zeros), and gives the range of the valid mantissas.
bool DecimalClaimHolds(const double* v, const uint8_t* valid, size_t n, const int64_t* mantissa, int scale,
                       int64_t* mlo, int64_t* mhi, size_t* neg_zeros) {
  if (scale < 0 || scale > kMaxDecimalScale) return false;
  const double p = kPow10[scale];
  constexpr int64_t kTwo53i = int64_t{1} << 53;
  uint64_t bad = 0;
  size_t nz = 0;
  int64_t a = INT64_MAX, b = INT64_MIN;
  for (size_t i = 0; i < n; ++i) {
    const uint64_t keep = ValidMask(valid, i);
    const int64_t mi = mantissa[i];
    const double x = scale == 0 ? static_cast<double>(mi) : static_cast<double>(mi) / p;
    uint64_t xb, vb;
    std::memcpy(&xb, &x, 8);
    std::memcpy(&vb, &v[i], 8);
    const uint64_t is_nz = vb == kNegZeroBits ? 1 : 0;
    vb = is_nz ? 0 : vb;
    const uint64_t out_of_range = static_cast<uint64_t>(mi > kTwo53i) | static_cast<uint64_t>(mi < -kTwo53i);
    bad |= ((xb ^ vb) | out_of_range) & keep;
    nz += is_nz & keep;
    const int64_t for_min = keep ? mi : INT64_MAX, for_max = keep ? mi : INT64_MIN;
    a = for_min < a ? for_min : a;
    b = for_max > b ? for_max : b;
  }
  if (bad != 0) return false;
  const bool any = a <= b;
  *mlo = any ? a : 0;
  *mhi = any ? b : 0;
  *neg_zeros = nz;
  return true;
}

// Exact division by a constant: for x a multiple of Step = 2^s * odd, x / Step is (x >> s) times the inverse
// of `odd` modulo 2^64 (one shift and one multiplication instead of a 64-bit divide).
template <uint64_t Step>
struct ExactDivisor {
  static constexpr int kShift = std::countr_zero(Step);
  static constexpr uint64_t kInverse = [] {
    constexpr uint64_t odd = Step >> std::countr_zero(Step);
    uint64_t x = odd;  // correct to 3 bits; each Newton step doubles that
    for (int i = 0; i < 5; ++i) x *= 2 - odd * x;
    return x;
  }();
  static_assert((Step >> kShift) * kInverse == 1, "modular inverse");
  static uint64_t Divide(uint64_t x) { return (x >> kShift) * kInverse; }
};

// True when every valid v[i] - lo is a multiple of Step.
template <uint64_t Step>
bool AllMultiples(const int64_t* v, const uint8_t* valid, size_t n, uint64_t lo) {
  uint64_t bad = 0;
  for (size_t i = 0; i < n; ++i) bad |= ((static_cast<uint64_t>(v[i]) - lo) % Step) & ValidMask(valid, i);
  return bad == 0;
}

// Offsets (v[i] - lo) / Step for chunks that passed AllMultiples<Step>.
template <uint64_t Step, int W>
void PackScaled(char* dst, const int64_t* v, const uint8_t* valid, size_t n, uint64_t lo) {
  for (size_t i = 0; i < n; ++i) {
    StoreLow<W>(dst + i * W, ExactDivisor<Step>::Divide(static_cast<uint64_t>(v[i]) - lo) & ValidMask(valid, i));
  }
}

template <uint64_t Step>
void PackScaledWidth(char* dst, int w, const int64_t* v, const uint8_t* valid, size_t n, uint64_t lo) {
  switch (w) {
    case 1: PackScaled<Step, 1>(dst, v, valid, n, lo); break;
    case 2: PackScaled<Step, 2>(dst, v, valid, n, lo); break;
    case 3: PackScaled<Step, 3>(dst, v, valid, n, lo); break;
    case 4: PackScaled<Step, 4>(dst, v, valid, n, lo); break;
    default: PackScaled<Step, 8>(dst, v, valid, n, lo); break;
  }
}

constexpr uint64_t kMicrosPerDay = 86400000000ull;
constexpr uint64_t kMicrosPerSecond = 1000000ull;
constexpr uint64_t kMicrosPerMilli = 1000ull;

// Datetime chunks: the largest of days / seconds / milliseconds that divides every valid value - lo; 1 if none.
uint64_t DatetimeStep(const int64_t* v, const uint8_t* valid, size_t n, uint64_t lo) {
  if (AllMultiples<kMicrosPerDay>(v, valid, n, lo)) return kMicrosPerDay;
  if (AllMultiples<kMicrosPerSecond>(v, valid, n, lo)) return kMicrosPerSecond;
  if (AllMultiples<kMicrosPerMilli>(v, valid, n, lo)) return kMicrosPerMilli;
  return 1;
}

}  // namespace

EncodedChunk EncodeChunk(const ChunkInput& in, int zstd_level) {
  EncodedChunk out;
  ChunkMeta& m = out.meta;
  ColumnStats& st = out.stats;
  const size_t n = in.rows;
  const uint8_t* valid = in.valid;
  if (valid != nullptr) {
    size_t ones = 0;
    for (size_t i = 0; i < n; ++i) ones += valid[i] != 0;
    m.nulls = static_cast<int64_t>(n - ones);
    if (m.nulls == 0) valid = nullptr;  // no missing rows: skip per-row checks below
  }
  st.missing = m.nulls;
  st.count = static_cast<int64_t>(n) - m.nulls;
  out.physical = in.type;
  if (n > 0 && m.nulls == static_cast<int64_t>(n)) {
    out.all_null = true;
    m.encoding = ChunkEncoding::kNull;
    m.width = 1;
    m.crc32 = Crc32(nullptr, 0);
    return out;
  }

  EncodeScratch& sc = Scratch();
  std::string& payload = sc.payload;
  payload.clear();
  size_t bitmap_bytes = m.nulls > 0 ? (n + 7) / 8 : 0;
  size_t pos = 0;
  // Room for `extra` bytes at pos plus the slack the Pack* helpers may write into (cut off at the end).
  auto grow = [&](size_t extra) {
    if (payload.size() < pos + extra + kPackSlackBytes) payload.resize(pos + extra + kPackSlackBytes);
    return payload.data() + pos;
  };
  if (bitmap_bytes > 0) {
    PackBitmap(grow(bitmap_bytes), valid, n);
    pos += bitmap_bytes;
  }
  switch (in.type) {
    case ColumnType::kInt64:
    case ColumnType::kDatetime: {
      int64_t lo, hi;
      if (IntRange(in.i64, valid, n, &lo, &hi)) {
        st.has_range = true, st.min_i = lo, st.max_i = hi;
        st.min_f = static_cast<double>(lo), st.max_f = static_cast<double>(hi);  // if read as a float column
      }
      m.base = lo;
      const uint64_t range = static_cast<uint64_t>(hi) - static_cast<uint64_t>(lo);
      m.width = WidthFor(range);
      // Datetimes that are whole days / seconds / milliseconds shrink 2-4x before zstd as `scaled`.
      const uint64_t step = in.type == ColumnType::kDatetime && range > 0 ? DatetimeStep(in.i64, valid, n, lo) : 1;
      if (step > 1 && WidthFor(range / step) < m.width) {
        m.encoding = ChunkEncoding::kScaled;
        m.step = static_cast<int64_t>(step);
        m.width = WidthFor(range / step);
        char* dst = grow(n * static_cast<size_t>(m.width));
        const uint64_t ulo = static_cast<uint64_t>(lo);
        if (step == kMicrosPerDay) PackScaledWidth<kMicrosPerDay>(dst, m.width, in.i64, valid, n, ulo);
        else if (step == kMicrosPerSecond) PackScaledWidth<kMicrosPerSecond>(dst, m.width, in.i64, valid, n, ulo);
        else PackScaledWidth<kMicrosPerMilli>(dst, m.width, in.i64, valid, n, ulo);
        pos += n * static_cast<size_t>(m.width);
        break;
      }
      const int w = m.width;
      char* dst = grow(n * static_cast<size_t>(w));
      PackOffsetsWidth(dst, w, in.i64, valid, n, static_cast<uint64_t>(lo));
      pos += n * static_cast<size_t>(w);
      break;
    }
    case ColumnType::kFloat64: {
      const int64_t* mant = nullptr;
      int k = -1;
      int64_t mlo = 0, mhi = 0;
      size_t neg_zeros = 0;
      const bool mantissas_only = in.f64 == nullptr && in.decimal_mantissa != nullptr && in.decimal_scale >= 0 &&
                                  in.decimal_scale <= kMaxDecimalScale;
      if (mantissas_only) IntRange(in.decimal_mantissa, valid, n, &mlo, &mhi);
      if (mantissas_only || (in.decimal_mantissa != nullptr && in.f64 != nullptr &&
                             DecimalClaimHolds(in.f64, valid, n, in.decimal_mantissa, in.decimal_scale, &mlo,
                                               &mhi, &neg_zeros))) {
        // Every valid value is mlo..mhi over 10^k, all finite: division rounds monotonically, so the
        // extremes of the values are those of the mantissas.
        mant = in.decimal_mantissa;
        k = in.decimal_scale;
        if (st.count > 0) {
          st.has_range = true;
          st.min_f = k == 0 ? static_cast<double>(mlo) : static_cast<double>(mlo) / kPow10[k];
          st.max_f = k == 0 ? static_cast<double>(mhi) : static_cast<double>(mhi) / kPow10[k];
          if (mlo == 0 && neg_zeros > 0) st.min_f = -0.0;
        }
      } else {
        double lo = 0, hi = 0;
        bool any = false;
        for (size_t i = 0; i < n; ++i) {
          double v = in.f64[i];
          if ((valid == nullptr || valid[i]) && !std::isnan(v)) {
            if (!any) any = true, lo = hi = v;
            else lo = std::min(lo, v), hi = std::max(hi, v);
          }
        }
        if (any) st.has_range = true, st.min_f = lo, st.max_f = hi;
        if (sc.mantissa.size() < n) sc.mantissa.resize(n);
        k = DecimalScale(in.f64, valid, n, sc.mantissa.data());
        mant = sc.mantissa.data();
        if (k >= 0) {
          IntRange(mant, valid, n, &mlo, &mhi);
          for (size_t i = 0; i < n; ++i) {
            uint64_t b;
            std::memcpy(&b, &in.f64[i], 8);
            neg_zeros += (b == kNegZeroBits) & (valid == nullptr || valid[i] != 0);
          }
        }
      }
      if (k >= 0) {
        // Decimal: integers m with value = m / 10^k; far smaller and faster to compress than raw doubles.
        // Rows holding -0.0 (stored as m = 0) are listed after the values (encoding decimal_negzero).
        m.encoding = neg_zeros > 0 ? ChunkEncoding::kDecimalNegZero : ChunkEncoding::kDecimal;
        m.neg_zeros = static_cast<int64_t>(neg_zeros);
        m.scale = k;
        m.base = mlo;
        m.width = WidthFor(static_cast<uint64_t>(mhi) - static_cast<uint64_t>(mlo));
        const int w = m.width;
        char* dst = grow(n * static_cast<size_t>(w));
        PackOffsetsWidth(dst, w, mant, valid, n, static_cast<uint64_t>(mlo));
        pos += n * static_cast<size_t>(w);
        if (neg_zeros > 0) {
          char* idx = grow(neg_zeros * 4);
          for (size_t i = 0; i < n; ++i) {
            uint64_t b;
            std::memcpy(&b, &in.f64[i], 8);
            if (b != kNegZeroBits || (valid != nullptr && !valid[i])) continue;
            uint32_t row = static_cast<uint32_t>(i);
            std::memcpy(idx, &row, 4);
            idx += 4;
          }
          pos += neg_zeros * 4;
        }
        break;
      }
      char* dst = grow(n * 8);
      for (size_t i = 0; i < n; ++i) {
        double v = (valid == nullptr || valid[i]) ? in.f64[i] : 0.0;
        std::memcpy(dst + i * 8, &v, 8);
      }
      pos += n * 8;
      break;
    }
    case ColumnType::kBool: {
      char* dst = grow(n);
      for (size_t i = 0; i < n; ++i) {
        bool v = (valid == nullptr || valid[i]) && in.b[i] != 0;
        dst[i] = v ? 1 : 0;
        st.true_count += v;
      }
      pos += n;
      break;
    }
    case ColumnType::kString: {
      m.dict_count = static_cast<int64_t>(in.dict_size);
      size_t total = 0;
      for (size_t k = 0; k < in.dict_size; ++k) total += in.dict[k].size();
      m.dict_bytes = static_cast<int64_t>(total);
      char* dst = grow(in.dict_size * 4 + total);
      for (size_t k = 0; k < in.dict_size; ++k) {
        uint32_t len = static_cast<uint32_t>(in.dict[k].size());
        std::memcpy(dst + k * 4, &len, 4);
      }
      char* bytes = dst + in.dict_size * 4;
      st.dict_hashes.reserve(in.dict_size);
      for (size_t k = 0; k < in.dict_size; ++k) {
        std::memcpy(bytes, in.dict[k].data(), in.dict[k].size());
        bytes += in.dict[k].size();
        st.dict_hashes.push_back(Hash64(in.dict[k].data(), in.dict[k].size()));
      }
      pos += in.dict_size * 4 + total;
      m.width = WidthFor(in.dict_size == 0 ? 0 : in.dict_size - 1);
      if (m.width == 8) m.width = 4;
      const int w = m.width;
      char* cd = grow(n * static_cast<size_t>(w));
      switch (w) {
        case 1: PackCodes<1>(cd, in.codes, valid, n); break;
        case 2: PackCodes<2>(cd, in.codes, valid, n); break;
        case 3: PackCodes<3>(cd, in.codes, valid, n); break;
        default: PackCodes<4>(cd, in.codes, valid, n); break;
      }
      pos += n * static_cast<size_t>(w);
      break;
    }
  }
  payload.resize(pos);
  m.raw_size = payload.size();

  bool compressed_ok = false;
  if (sc.cctx && !payload.empty()) {
    size_t bound = ZSTD_compressBound(payload.size());
    if (sc.compressed.size() < bound) sc.compressed.resize(bound);
    if (sc.cctx_level != zstd_level) {
      ZSTD_CCtx_reset(sc.cctx.get(), ZSTD_reset_session_and_parameters);
      ZSTD_CCtx_setParameter(sc.cctx.get(), ZSTD_c_compressionLevel, zstd_level);
      if (zstd_level == 1) SetFastChunkParameters(sc.cctx.get());
      sc.cctx_level = zstd_level;
    }
    size_t r = ZSTD_compress2(sc.cctx.get(), sc.compressed.data(), bound, payload.data(), payload.size());
    if (!ZSTD_isError(r) && r < payload.size()) {
      out.bytes.assign(sc.compressed.data(), r);
      compressed_ok = true;
    }
  }
  m.zstd = compressed_ok;
  if (!compressed_ok) out.bytes.assign(payload.data(), payload.size());
  m.size = out.bytes.size();
  m.crc32 = Crc32(out.bytes.data(), out.bytes.size());
  return out;
}

// ---- decoding

Status DecodeChunk(std::string_view stored, const ChunkMeta& m, ColumnType type, size_t rows, DecodedChunk* out) {
  if (stored.size() != m.size) return Corrupt("chunk size mismatch");
  if (Crc32(stored.data(), stored.size()) != m.crc32) return Corrupt("chunk checksum mismatch");
  if (m.nulls > static_cast<int64_t>(rows)) return Corrupt("chunk null count exceeds its rows");
  if (m.encoding == ChunkEncoding::kNull) {
    if (m.nulls != static_cast<int64_t>(rows) || m.raw_size != 0 || m.zstd) return Corrupt("bad all-null chunk");
    out->valid.assign(rows, 0);
    out->i64.assign(type == ColumnType::kInt64 || type == ColumnType::kDatetime ? rows : 0, 0);
    out->f64.assign(type == ColumnType::kFloat64 ? rows : 0, 0.0);
    out->b.assign(type == ColumnType::kBool ? rows : 0, 0);
    out->codes.assign(type == ColumnType::kString ? rows : 0, 0);
    out->dict.clear();
    return Status::Ok();
  }
  if (m.encoding == ChunkEncoding::kScaled) {
    if (type != ColumnType::kInt64 && type != ColumnType::kDatetime) return Corrupt("scaled encoding in a non-integer column");
    if (m.step < 2) return Corrupt("bad scaled step");
    RETURN_IF_ERROR(DecodeChunk(stored, m.WithEncoding(ChunkEncoding::kPlain), type, rows, out));
    const uint64_t base = static_cast<uint64_t>(m.base), step = static_cast<uint64_t>(m.step);
    for (size_t i = 0; i < rows; ++i) {
      if (out->valid[i]) out->i64[i] = static_cast<int64_t>(base + (static_cast<uint64_t>(out->i64[i]) - base) * step);
    }
    return Status::Ok();
  }
  if (m.encoding == ChunkEncoding::kDecimal || m.encoding == ChunkEncoding::kDecimalNegZero) {
    if (type != ColumnType::kFloat64) return Corrupt("decimal encoding in a non-float column");
    const bool nz = m.encoding == ChunkEncoding::kDecimalNegZero;
    if (nz && (m.neg_zeros <= 0 || static_cast<uint64_t>(m.neg_zeros) > rows)) return Corrupt("bad negative-zero count");
    ChunkMeta inner = m.WithEncoding(ChunkEncoding::kPlain);
    inner.neg_zeros = nz ? m.neg_zeros : 0;  // the plain decoder leaves the row list at the payload's end
    RETURN_IF_ERROR(DecodeChunk(stored, inner, ColumnType::kInt64, rows, out));
    out->f64.resize(rows);
    for (size_t i = 0; i < rows; ++i) out->f64[i] = DecimalValue(out->i64[i], m.scale);
    if (nz) {
      const char* idx = out->payload.data() + out->payload.size() - static_cast<size_t>(m.neg_zeros) * 4;
      int64_t prev = -1;
      for (int64_t k = 0; k < m.neg_zeros; ++k) {
        uint32_t row;
        std::memcpy(&row, idx + k * 4, 4);
        if (static_cast<int64_t>(row) <= prev || row >= rows) return Corrupt("negative-zero rows out of order or range");
        if (!out->valid[row] || out->i64[row] != 0) return Corrupt("negative-zero row that does not hold zero");
        out->f64[row] = -0.0;
        prev = row;
      }
    }
    // out->i64 keeps the mantissas: clearing it would make the next chunk's decode zero-fill it again.
    return Status::Ok();
  }
  // The payload size is fully determined by the metadata; check it before inflating anything.
  size_t bitmap_bytes = m.nulls > 0 ? (rows + 7) / 8 : 0;
  size_t w = static_cast<size_t>(m.width);
  uint64_t expect = bitmap_bytes;
  switch (type) {
    case ColumnType::kInt64:
    case ColumnType::kDatetime: expect += rows * w; break;
    case ColumnType::kFloat64: expect += rows * 8; break;
    case ColumnType::kBool: expect += rows; break;
    case ColumnType::kString:
      if (w > 4) return Corrupt("dictionary code width over 4");
      if (static_cast<uint64_t>(m.dict_count) > rows || static_cast<uint64_t>(m.dict_bytes) > m.raw_size) {
        return Corrupt("dictionary larger than its chunk");
      }
      expect += static_cast<uint64_t>(m.dict_count) * 4 + static_cast<uint64_t>(m.dict_bytes) + rows * w;
      break;
  }
  // Only reached with neg_zeros > 0 from the decimal_negzero branch (FromJson reads it for no other encoding).
  if (m.neg_zeros < 0 || static_cast<uint64_t>(m.neg_zeros) > rows) return Corrupt("bad negative-zero count");
  expect += static_cast<uint64_t>(m.neg_zeros) * 4;
  if (expect != m.raw_size) return Corrupt("chunk payload size does not match its metadata");
  if (m.zstd) {
    unsigned long long content = ZSTD_getFrameContentSize(stored.data(), stored.size());
    if (content != m.raw_size) return Corrupt("zstd frame size does not match the chunk metadata");
    const size_t raw = static_cast<size_t>(m.raw_size);
    if (out->payload_cap < raw) {
      out->payload_buf.reset(new char[raw]);
      out->payload_cap = raw;
    }
    thread_local std::unique_ptr<ZSTD_DCtx, DCtxDeleter> dctx(ZSTD_createDCtx());
    if (!dctx) return Status::Internal("zstd: cannot allocate a decompression context");
    size_t r = ZSTD_decompressDCtx(dctx.get(), out->payload_buf.get(), raw, stored.data(), stored.size());
    if (ZSTD_isError(r) || r != m.raw_size) return Corrupt("zstd frame does not decompress");
    out->payload = std::string_view(out->payload_buf.get(), raw);
  } else {
    if (stored.size() != m.raw_size) return Corrupt("raw chunk size mismatch");
    out->payload = stored;  // read in place: no copy
  }
  const char* p = out->payload.data();
  if (bitmap_bytes == 0) {
    out->valid.assign(rows, 1);
  } else {
    out->valid.resize(rows);  // every byte is written below
    // Eight rows per bitmap byte: spread its bits to one byte each with a multiply and add them up with
    // another.
    int64_t present = 0;
    uint8_t* dst = out->valid.data();
    const size_t full = rows / 8;
    for (size_t k = 0; k < full; ++k) {
      const uint64_t bits = static_cast<uint8_t>(p[k]);
      // Copies of the low seven bits 7 apart never overlap, so bit i lands alone at bit 8i; bit 7 goes to
      // bit 56.
      const uint64_t spread =
          (((bits & 0x7f) * 0x0002040810204081ULL) & 0x0101010101010101ULL) | ((bits >> 7) << 56);
      std::memcpy(dst + 8 * k, &spread, 8);
      present += static_cast<int64_t>((spread * 0x0101010101010101ULL) >> 56);  // sum of the eight bytes
    }
    for (size_t i = full * 8; i < rows; ++i) {
      uint8_t v = (static_cast<uint8_t>(p[i >> 3]) >> (i & 7)) & 1;
      dst[i] = v;
      present += v;
    }
    if (static_cast<int64_t>(rows) - present != m.nulls)
      return Corrupt("validity bitmap disagrees with the null count");
    p += bitmap_bytes;
  }
  switch (type) {
    case ColumnType::kInt64:
    case ColumnType::kDatetime: {
      out->i64.resize(rows);
      UnpackOffsetsWidth(p, m.width, bitmap_bytes > 0 ? out->valid.data() : nullptr, rows,
                         static_cast<uint64_t>(m.base), out->i64.data());
      break;
    }
    case ColumnType::kFloat64: {
      out->f64.resize(rows);
      std::memcpy(out->f64.data(), p, rows * 8);
      for (size_t i = 0; i < rows; ++i) {
        if (!out->valid[i]) out->f64[i] = 0;
      }
      break;
    }
    case ColumnType::kBool: {
      out->b.resize(rows);
      for (size_t i = 0; i < rows; ++i) {
        uint8_t v = static_cast<uint8_t>(p[i]);
        if (v > 1) return Corrupt("boolean value other than 0 or 1");
        out->b[i] = out->valid[i] ? v : 0;
      }
      break;
    }
    case ColumnType::kString: {
      size_t dc = static_cast<size_t>(m.dict_count);
      const char* lens = p;
      const char* bytes = p + dc * 4;
      uint64_t total = 0;
      out->dict.clear();
      out->dict.reserve(dc);
      for (size_t k = 0; k < dc; ++k) {
        uint32_t len;
        std::memcpy(&len, lens + k * 4, 4);
        if (total + len > static_cast<uint64_t>(m.dict_bytes)) return Corrupt("dictionary lengths overflow");
        out->dict.emplace_back(bytes + total, len);
        total += len;
      }
      if (total != static_cast<uint64_t>(m.dict_bytes)) return Corrupt("dictionary lengths do not add up");
      const char* cd = bytes + total;
      out->codes.resize(rows);
      // Unpack straight into the codes (width <= 4: they fit 32 bits; missing rows get 0), then range-check.
      UnpackOffsetsWidth(cd, m.width, bitmap_bytes > 0 ? out->valid.data() : nullptr, rows, 0,
                         reinterpret_cast<uint32_t*>(out->codes.data()));
      uint32_t max_code = 0;
      for (size_t i = 0; i < rows; ++i) max_code = std::max(max_code, static_cast<uint32_t>(out->codes[i]));
      if (rows > 0 && max_code >= dc) return Corrupt("dictionary code out of range");
      break;
    }
  }
  return Status::Ok();
}

}  // namespace lathe
