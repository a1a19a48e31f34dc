// The building blocks of lathe's columnar dataset file (".lcol", docs/formats.md): constants, the encoding
// of one column chunk (validity bitmap, frame-of-reference integers, dictionary-encoded strings, zstd), and
// mergeable column statistics. Internal to src/data: DatasetWriter and DatasetFile use it.
// Encoding is thread-safe (each thread keeps its own zstd context); decoding validates every length, offset,
// code and checksum and answers kDataLoss on anything inconsistent — it never reads out of bounds.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/json.h"
#include "common/status.h"
#include "data/table.h"

namespace lathe {

inline constexpr char kLcolMagic[8] = {'L', 'A', 'T', 'H', 'E', 'C', 'O', 'L'};
inline constexpr uint32_t kLcolVersion = 1;
inline constexpr size_t kLcolHeaderBytes = 16;   // magic(8) version(u32) reserved(u32)
inline constexpr size_t kLcolTrailerBytes = 32;  // footer_offset(u64) footer_size(u64) footer_crc32(u32) version(u32) magic(8)
inline constexpr int64_t kLcolRowsPerGroup = 65536;
inline constexpr size_t kLcolMaxFooterBytes = size_t{256} << 20;

// How a chunk's payload represents its column: kPlain in the column's own type; kNull: every row is
// missing and there is no payload; kDecimal: a float column chunk stored as integers m (frame of reference)
// with value = m / 10^scale, used when that reproduces every value bit for bit; kDecimalNegZero: kDecimal
// plus a list of the rows that hold -0.0; kScaled: an integer/datetime chunk stored as u with
// value = base + u * step (step >= 2, e.g. whole days or seconds of a datetime column).
// Readers from before kDecimalNegZero / kScaled reject them as an unknown encoding (never misread them).
enum class ChunkEncoding : uint8_t { kPlain = 0, kNull = 1, kDecimal = 2, kDecimalNegZero = 3, kScaled = 4 };

// The value a kDecimal / kDecimalNegZero chunk stores as `mantissa` at `scale` (0..9): mantissa / 10^scale,
// rounded once (DecodeChunk computes exactly this). Non-decreasing in the mantissa for a fixed scale.
inline constexpr double kLcolPow10[10] = {1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9};
inline double DecimalValue(int64_t mantissa, int scale) {
  return static_cast<double>(mantissa) / kLcolPow10[scale];
}

// Where and how one column chunk is stored; serialized in the footer.
struct ChunkMeta {
  ChunkEncoding encoding = ChunkEncoding::kPlain;
  uint64_t offset = 0;    // of the stored bytes in the file
  uint64_t size = 0;      // stored bytes
  uint64_t raw_size = 0;  // payload bytes after decompression
  uint32_t crc32 = 0;     // of the stored bytes
  bool zstd = false;      // codec: zstd frame, or the raw payload
  int64_t nulls = 0;      // missing rows; 0 means the validity bitmap is omitted
  int width = 8;          // bytes per integer offset / dictionary code: 1, 2, 3, 4 or 8
  int64_t base = 0;       // frame of reference for integers and datetimes
  int64_t dict_count = 0;
  int64_t dict_bytes = 0;
  int scale = 0;  // kDecimal / kDecimalNegZero: power of ten, 0..9
  int64_t neg_zeros = 0;  // kDecimalNegZero: number of u32 row indices after the values (> 0)
  int64_t step = 1;       // kScaled: multiplier of the stored offsets (>= 2)

  Json ToJson() const;
  static Result<ChunkMeta> FromJson(const Json& j);
  ChunkMeta WithEncoding(ChunkEncoding e) const {
    ChunkMeta m = *this;
    m.encoding = e;
    return m;
  }
};

// Counts distinct 64-bit hashes exactly up to kExactLimit, then estimates with HyperLogLog (p = 14).
class DistinctCounter {
 public:
  static constexpr size_t kExactLimit = size_t{1} << 20;
  DistinctCounter();
  void Add(uint64_t hash);
  int64_t Count() const;
  bool approximate() const { return overflowed_; }

 private:
  void InsertExact(uint64_t hash);
  std::vector<uint64_t> slots_;  // open addressing, 0 = empty (hash 0 is remapped)
  size_t used_ = 0;
  bool overflowed_ = false;
  std::vector<uint8_t> hll_;
};

// Statistics of one chunk, or (merged) of a whole column.
struct ColumnStats {
  int64_t count = 0;    // non-missing values
  int64_t missing = 0;
  bool has_range = false;
  int64_t min_i = 0, max_i = 0;  // integer, datetime
  double min_f = 0, max_f = 0;   // float (NaN values are ignored)
  int64_t true_count = 0;        // boolean
  std::vector<uint64_t> dict_hashes;  // string chunks: hashes of the chunk dictionary (merged into a counter)

  void Merge(ColumnType type, const ColumnStats& chunk, DistinctCounter* distinct);
  Json ToJson(ColumnType type, const DistinctCounter* distinct) const;
};

// One column chunk in memory, ready to encode. Pointers cover `rows` entries; only the vector for `type` is
// used; `valid` may be null (no missing values). Strings: `codes` index into `dict`.
struct ChunkInput {
  ColumnType type = ColumnType::kString;
  size_t rows = 0;
  const uint8_t* valid = nullptr;
  const int64_t* i64 = nullptr;
  const double* f64 = nullptr;
  const uint8_t* b = nullptr;
  const int32_t* codes = nullptr;
  const std::string_view* dict = nullptr;
  size_t dict_size = 0;
  // Optional, kFloat64 only: when decimal_scale is in [0, 9], the producer claims every valid value equals
  // decimal_mantissa[i] / 10^decimal_scale (it saw the digits while parsing). With f64 set, the encoder
  // checks the claim value by value (one division each) and falls back to searching for a scale if it does
  // not hold. With f64 == nullptr the mantissas *are* the values (|m| <= 2^53, no -0.0 among them).
  const int64_t* decimal_mantissa = nullptr;
  int decimal_scale = -1;
};

struct EncodedChunk {
  std::string bytes;  // what goes into the file
  ChunkMeta meta;     // offset filled in by the writer
  ColumnStats stats;
  ColumnType physical = ColumnType::kString;  // the type the payload is encoded in (unless all_null)
  bool all_null = false;                      // encoding kNull: fits a column of any type
};

// Encodes in.type; a chunk whose rows are all missing becomes an all_null chunk.
EncodedChunk EncodeChunk(const ChunkInput& in, int zstd_level);

// A decoded chunk. Strings: `dict` views point into `payload`. Missing slots hold 0 / false / code 0.
struct DecodedChunk {
  // The chunk's decompressed bytes: a view of `stored` for uncompressed chunks, else of payload_buf (grown as
  // needed, never zero-filled: decompression writes every byte). Dictionary views point into it.
  std::string_view payload;
  std::unique_ptr<char[]> payload_buf;
  size_t payload_cap = 0;
  std::vector<uint8_t> valid;
  std::vector<int64_t> i64;
  std::vector<double> f64;
  std::vector<uint8_t> b;
  std::vector<int32_t> codes;
  std::vector<std::string_view> dict;
};

// `stored` is exactly meta.size bytes at meta.offset. kDataLoss on any inconsistency.
Status DecodeChunk(std::string_view stored, const ChunkMeta& meta, ColumnType type, size_t rows, DecodedChunk* out);

}  // namespace lathe
