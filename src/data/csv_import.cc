#include "data/csv_import.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <memory>
#include <mutex>
#include <new>
#include <optional>
#include <thread>
#include <unordered_map>

#if defined(__x86_64__)
#include <immintrin.h>
#elif defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "common/memory.h"
#include "common/parallel.h"
#include "data/checksum.h"
#include "data/csv_tokenizer.h"
#include "data/lcol_format.h"
#include "data/text_encoding.h"
#include "data/value_hints.h"
#include "data/value_parse.h"

namespace lathe {

namespace {

#if defined(__x86_64__)
// Functions compiled for wider vector units than the baseline; called only where the CPU has them (checked
// at run time with __builtin_cpu_supports).
#define LATHE_AVX2 __attribute__((target("avx2,bmi,bmi2,popcnt")))
#define LATHE_AVX512 __attribute__((target("avx2,bmi,bmi2,popcnt,avx512f,avx512bw")))
#define LATHE_AVX512_DQ __attribute__((target("avx2,bmi,bmi2,popcnt,avx512f,avx512bw,avx512dq,avx512cd,avx512vl")))

// The CPU runs the LATHE_AVX512_DQ functions.
bool HaveAvx512Dq() {
  static const bool have = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                           __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512cd") &&
                           __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("bmi2") &&
                           __builtin_cpu_supports("popcnt");
  return have;
}
#endif

// IsMissingToken with its comparisons inlined: the converters call it for nearly every string value, and
// the linker may otherwise pick an out-of-line copy that calls string_view::compare and memcmp (+1.5%).
__attribute__((noinline, flatten)) bool DefaultMissing(std::string_view s) { return IsMissingToken(s); }

// A growable byte buffer that does not zero-initialize (reads overwrite it anyway).
class ByteBuffer {
 public:
  char* data() { return mem_.data(); }
  size_t size() const { return size_; }
  size_t capacity() const { return mem_.size(); }
  void Reserve(size_t n) {
    size_t keep = size_;
    Resize(n);
    size_ = keep;
  }
  void Resize(size_t n) {
    if (n > mem_.size()) {
      LargeBuffer next(std::max(n, mem_.size() + mem_.size() / 2));
      if (size_ > 0) std::memcpy(next.data(), mem_.data(), size_);
      mem_ = std::move(next);
    }
    size_ = n;
  }

 private:
  LargeBuffer mem_;  // segment-sized: huge pages where the kernel offers them
  size_t size_ = 0;
};

class InputFile {
 public:
  ~InputFile() {
    if (fd_ >= 0) ::close(fd_);
  }
  Status Open(const std::string& path) {
    fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd_ < 0) {
      if (errno == ENOENT) return Status::NotFound("input file " + path + " does not exist");
      return Status::InvalidArgument("cannot open " + path + ": " + std::strerror(errno));
    }
    struct stat st;
    if (::fstat(fd_, &st) != 0) return Status::Internal("stat " + path + ": " + std::strerror(errno));
    if (!S_ISREG(st.st_mode)) return Status::InvalidArgument(path + " is not a regular file");
    size_ = st.st_size;
    return Status::Ok();
  }
  // Reads exactly n bytes at `offset` (thread-safe: pread).
  Status ReadAt(int64_t offset, char* dst, size_t n) const {
    while (n > 0) {
      ssize_t r = ::pread(fd_, dst, n, offset);
      if (r < 0) {
        if (errno == EINTR) continue;
        return Status::Internal(std::string("reading the input: ") + std::strerror(errno));
      }
      if (r == 0) return Status::Internal("the input file shrank while it was being imported");
      dst += r;
      n -= static_cast<size_t>(r);
      offset += r;
    }
    return Status::Ok();
  }
  int64_t size() const { return size_; }

 private:
  int fd_ = -1;
  int64_t size_ = 0;
};

struct GroupSpan {
  int64_t begin = 0, end = 0;  // file offsets
  int64_t rows = 0;
  int64_t first_line = 0;  // relative to the segment in a SegmentScan; absolute (1-based) once merged
};

// One field of a buffered row group: its offset in the segment buffer and its length (bit 31: escaped).
struct FieldRef {
  uint32_t offset;
  uint32_t len_flags;
};
constexpr uint32_t kEscapedBit = 1u << 31;

// A row dropped under BadRowPolicy::kSkip / kQuarantine.
struct BadRow {
  int64_t line = 0;  // relative newline count in a SegmentResult; absolute (1-based) once merged
  std::string reason;
  std::string raw;   // the row's text without its line break, capped (kQuarantine only)
};

// What one segment of the file produced: its rows, converted and encoded in the types the rows themselves
// support (joined across segments later).
struct SegmentResult {
  Status io;  // an I/O or internal failure (not an input error)
  int64_t start = 0, end_pos = 0;
  int64_t rows = 0, lines = 0;
  std::vector<GroupSpan> groups;
  std::vector<std::vector<EncodedChunk>> chunks;  // per group, per column
  std::vector<BadRow> bad;                         // in file order
  bool has_error = false;
  std::string error;
  std::string error_column;  // the column the error is in, if known
  int64_t error_line = 0;    // relative newline count
};

// How one column's values are read, from the schema hints.
struct ColumnRule {
  bool fixed = false;                      // the type is forced: never promoted, a value that does not parse is bad
  ColumnType type = ColumnType::kInt64;    // the first candidate type (the forced one if fixed)
  const DateFormat* date = nullptr;        // datetime values are read with this pattern
};

constexpr size_t kQuarantineRawBytes = 64 << 10;
constexpr int64_t kEncodingSampleBytes = 2 << 20;  // bytes read to detect the encoding
constexpr size_t kHeaderSampleRows = 200;          // rows after the first that HeaderMode::kAuto looks at

struct ImportPlan {
  const InputFile* file = nullptr;
  const CsvOptions* opts = nullptr;
  char delim = ',';
  size_t ncols = 0;
  int64_t data_start = 0;
  size_t group_rows = 0;  // rows per group: 65536, fewer for very wide files so buffers stay bounded
  const std::vector<std::string>* names = nullptr;
  std::vector<ColumnRule> rules;  // per column
  std::vector<size_t> checked;    // columns with a fixed type, validated row by row
  bool decimal_comma = false;
  const MissingTokens* missing = nullptr;
  BadRowPolicy policy = BadRowPolicy::kFail;
  int64_t max_bad_rows = 0;
  TextEncoding encoding = TextEncoding::kUtf8;
  bool exact_offsets = true;  // the file read is the input itself (not a decoded/requoted copy)
  int zstd_level = 1;
};

std::string Plural(int64_t n, const char* word) { return std::to_string(n) + " " + word + (n == 1 ? "" : "s"); }

std::string RaggedMessage(size_t expected, size_t got) {
  return "expected " + Plural(static_cast<int64_t>(expected), "field") + " (as in the header) but found " +
         std::to_string(got);
}

// Finds the first offset p >= from with byte p-1 == '\n' (a plausible row start), or the file size.
Result<int64_t> NextLineStart(const InputFile& f, int64_t from) {
  if (from <= 0) return int64_t{0};
  int64_t off = from - 1;
  char buf[1 << 16];
  while (off < f.size()) {
    size_t n = static_cast<size_t>(std::min<int64_t>(sizeof(buf), f.size() - off));
    RETURN_IF_ERROR(f.ReadAt(off, buf, n));
    const void* hit = std::memchr(buf, '\n', n);
    if (hit != nullptr) return off + (static_cast<const char*>(hit) - buf) + 1;
    off += static_cast<int64_t>(n);
  }
  return f.size();
}

// Number of leading ASCII digits among the 8 bytes of w (the first byte in the low bits).
inline uint32_t LeadingDigitsWord(uint64_t w) {
  uint64_t d = w - 0x3030303030303030ULL;
  // A byte is a digit iff it is in [0, 9] after the subtraction; the first non-digit is found exactly (any
  // borrow it causes only affects later bytes).
  uint64_t bad = (d | (d + 0x7676767676767676ULL)) & 0x8080808080808080ULL;
  return bad == 0 ? 8 : static_cast<uint32_t>(__builtin_ctzll(bad)) / 8;
}

// Number of leading ASCII digits among the 8 bytes at p (which may extend past the field: callers clamp).
inline uint32_t LeadingDigits8(const char* p) {
  uint64_t w;
  std::memcpy(&w, p, 8);
  return LeadingDigitsWord(w);
}

// The value of the n ASCII digits in the low bytes of w (1 <= n <= 8, all known to be digits).
inline uint64_t DigitsValueWord(uint64_t w, uint32_t n) {
  uint64_t v = (w - 0x3030303030303030ULL) << (8 * (8 - n));  // leading zero digits in the low bytes
  v = (v * 10) + (v >> 8);
  v = (((v & 0x000000FF000000FFULL) * (100 + (1000000ULL << 32))) +
       (((v >> 16) & 0x000000FF000000FFULL) * (1 + (10000ULL << 32)))) >>
      32;
  return v;
}

// The value of the n ASCII digits at p (1 <= n <= 8, all known to be digits), eight bytes read at once.
inline uint64_t DigitsValue8(const char* p, uint32_t n) {
  uint64_t w;
  std::memcpy(&w, p, 8);
  return DigitsValueWord(w, n);
}

// Parses the run of digits at p[0..n) into *m (at most 19 digits); returns how many digits there were.
// Reads up to 8 bytes past the run (the segment buffer is padded).
__attribute__((always_inline)) inline uint32_t ParseDigitRun(const char* p, uint32_t n, uint64_t* m,
                                                              bool* too_long) {
  uint32_t k = LeadingDigits8(p);
  if (k < 8 || n <= 8) {
    k = std::min(k, n);
    *m = k == 0 ? 0 : DigitsValue8(p, k);
    return k;
  }
  uint64_t acc = DigitsValue8(p, 8);
  uint32_t i = 8;
  for (;;) {
    k = std::min(LeadingDigits8(p + i), n - i);
    if (i + k > 19) {
      *too_long = true;
      return i + k;
    }
    if (k > 0) {
      static constexpr uint64_t kPow10u[] = {1, 10, 100, 1000, 10000, 100000, 1000000, 10000000, 100000000};
      acc = acc * kPow10u[k] + DigitsValue8(p + i, k);
      i += k;
    }
    if (k < 8 || i == n) break;
  }
  *m = acc;
  return i;
}

// A fast hash for dictionary lookups (not persisted; Hash64 stays the stable hash for statistics).
inline uint64_t DictHash(const char* p, size_t n) {
  constexpr uint64_t kMul = 0x9E3779B97F4A7C15ULL;
  uint64_t a, b;
  if (n >= 8) {
    std::memcpy(&a, p, 8);
    std::memcpy(&b, p + n - 8, 8);
    for (size_t i = 8; i + 8 < n; i += 8) {
      uint64_t w;
      std::memcpy(&w, p + i, 8);
      a = (a ^ w) * kMul;
      a ^= a >> 29;
    }
  } else if (n >= 4) {
    uint32_t x, y;
    std::memcpy(&x, p, 4);
    std::memcpy(&y, p + n - 4, 4);
    a = x, b = y;
  } else {
    a = n == 0 ? 0 : (static_cast<uint64_t>(static_cast<unsigned char>(p[0])) |
                      static_cast<uint64_t>(static_cast<unsigned char>(p[n / 2])) << 8 |
                      static_cast<uint64_t>(static_cast<unsigned char>(p[n - 1])) << 16);
    b = 0;
  }
  unsigned __int128 x = static_cast<unsigned __int128>(a ^ (n * kMul)) * (b ^ 0xC2B2AE3D27D4EB4FULL);
  return static_cast<uint64_t>(x) ^ static_cast<uint64_t>(x >> 64);
}

// Equality of two n-byte strings; short ones by overlapping word loads that stay inside both strings.
inline bool SameBytes(const char* a, const char* b, size_t n) {
  if (n >= 8 && n <= 16) {
    uint64_t a0, a1, b0, b1;
    std::memcpy(&a0, a, 8), std::memcpy(&a1, a + n - 8, 8);
    std::memcpy(&b0, b, 8), std::memcpy(&b1, b + n - 8, 8);
    return ((a0 ^ b0) | (a1 ^ b1)) == 0;
  }
  if (n >= 4 && n < 8) {
    uint32_t a0, a1, b0, b1;
    std::memcpy(&a0, a, 4), std::memcpy(&a1, a + n - 4, 4);
    std::memcpy(&b0, b, 4), std::memcpy(&b1, b + n - 4, 4);
    return ((a0 ^ b0) | (a1 ^ b1)) == 0;
  }
  if (n < 4) {
    for (size_t i = 0; i < n; ++i) {
      if (a[i] != b[i]) return false;
    }
    return true;
  }
  return std::memcmp(a, b, n) == 0;
}

// A chunk-local string dictionary: open addressing over views into the row group's buffer. A slot holds a key
// and the value's length and index + 1. Values of at most 8 bytes (most categories) are their own key: the
// bytes as a little-endian word, so a lookup is one word compare and never touches the value. Longer values
// are keyed by their hash and compared byte by byte on a key match. The fast path's lookups (FindShort) also
// remember the default missing tokens ("NA", "null", ...) in slots of their own, so a value is checked against
// them once per chunk instead of once per row; those slots have no value.
class ChunkDict {
 public:
  void Clear() {
    if (slots_.size() != 64 || used_ != 0) slots_.assign(64, Slot{});
    mask_ = slots_.size() - 1;
    used_ = 0;
    values_.clear();
    owned_.clear();
  }
  // The code of an unpadded value of 1..8 bytes at p in the segment buffer (readable 8 bytes past p), added if
  // new; -1 if it is a default missing token.
  __attribute__((always_inline)) int32_t FindShort(const char* p, uint32_t n) {
    uint64_t key;
    std::memcpy(&key, p, 8);
    key &= n == 8 ? ~uint64_t{0} : (uint64_t{1} << (8 * n)) - 1;
    const Slot& s = slots_.data()[Mix(key ^ n) & mask_];
    if (s.key == key && s.len == n) return s.index == kMissingSlot ? -1 : static_cast<int32_t>(s.index - 1);
    return FindShortSlow(key, p, n);
  }
  // The code of value v, added if new (the general path: v is not a missing token).
  // stable: v points into the segment buffer, which stays put and is readable 8 bytes past any value.
  int32_t Insert(std::string_view v, bool stable) {
    const size_t n = v.size();
    uint64_t key;
    if (n <= 8) {
      key = 0;
      if (stable) {
        std::memcpy(&key, v.data(), 8);
        key &= n == 8 ? ~uint64_t{0} : (uint64_t{1} << (8 * n)) - 1;
      } else {
        std::memcpy(&key, v.data(), n);
      }
    } else {
      key = DictHash(v.data(), n);
    }
    const uint64_t h = n <= 8 ? Mix(key ^ n) : key;
    for (size_t i = h & mask_;; i = (i + 1) & mask_) {
      Slot& s = slots_[i];
      if (s.index == 0) {
        if (!stable) {
          owned_.emplace_back(v);
          v = owned_.back();
        }
        return Add(s, key, v);
      }
      if (s.key == key && s.len == n && s.index != kMissingSlot) {
        const size_t k = s.index - 1;
        if (n <= 8 || SameBytes(values_[k].data(), v.data(), n)) return static_cast<int32_t>(k);
      }
    }
  }
  const std::vector<std::string_view>& values() const { return values_; }

 private:
  static constexpr uint32_t kMissingSlot = ~uint32_t{0};
  struct Slot {
    uint64_t key = 0;
    uint32_t len = 0;
    uint32_t index = 0;  // value index + 1; 0 = empty; kMissingSlot = a default missing token
  };
  static uint64_t Mix(uint64_t x) {
    unsigned __int128 p = static_cast<unsigned __int128>(x) * 0x9E3779B97F4A7C15ULL;
    return static_cast<uint64_t>(p) ^ static_cast<uint64_t>(p >> 64);
  }
  __attribute__((noinline)) int32_t FindShortSlow(uint64_t key, const char* p, uint32_t n) {
    for (size_t i = Mix(key ^ n) & mask_;; i = (i + 1) & mask_) {
      Slot& s = slots_[i];
      if (s.index == 0) {
        const std::string_view v(p, n);
        if (n <= 4 && IsMissingToken(v)) {
          s = Slot{key, n, kMissingSlot};
          if (++used_ * 2 > slots_.size()) Grow();
          return -1;
        }
        return Add(s, key, v);
      }
      if (s.key == key && s.len == n) return s.index == kMissingSlot ? -1 : static_cast<int32_t>(s.index - 1);
    }
  }
  int32_t Add(Slot& s, uint64_t key, std::string_view v) {
    values_.push_back(v);
    s = Slot{key, static_cast<uint32_t>(v.size()), static_cast<uint32_t>(values_.size())};
    if (++used_ * 2 > slots_.size()) Grow();
    return static_cast<int32_t>(values_.size() - 1);
  }
  void Grow() {
    std::vector<Slot> next(slots_.size() * 2);
    const size_t mask = next.size() - 1;
    for (const Slot& s : slots_) {
      if (s.index == 0) continue;
      size_t i = (s.len <= 8 ? Mix(s.key ^ s.len) : s.key) & mask;
      while (next[i].index != 0) i = (i + 1) & mask;
      next[i] = s;
    }
    slots_ = std::move(next);
    mask_ = mask;
  }
  std::vector<Slot> slots_;
  size_t mask_ = 0;
  size_t used_ = 0;  // slots in use (values and missing tokens)
  std::vector<std::string_view> values_;
  std::deque<std::string> owned_;
};

constexpr uint8_t kNoDecimal = 0xFF;  // ColumnScratch::frac: the value's digits were not seen
constexpr uint8_t kNegZero = 0xFE;    // ColumnScratch::frac: the fast path read -0 (f64 holds -0.0)

// Bump allocation of a worker's scratch arrays from large mappings (huge pages where the kernel offers them):
// a cold import faults its column buffers in 2 MiB at a time instead of 4 KiB, and on virtual machines those
// faults were most of the extra time of the first import after the server went idle. Memory goes back when
// the arena does (with its Workspace).
class ScratchArena {
 public:
  void* Allocate(size_t bytes) {
    bytes = (bytes + 63) & ~size_t{63};
    if (chunks_.empty() || used_ + bytes > chunks_.back().size()) {
      chunks_.emplace_back(std::max(bytes, kChunkBytes));
      used_ = 0;
    }
    void* p = chunks_.back().data() + used_;
    used_ += bytes;
    return p;
  }

 private:
  static constexpr size_t kChunkBytes = size_t{8} << 20;
  std::vector<LargeBuffer> chunks_;
  size_t used_ = 0;
};

// An array of trivially copyable T in a ScratchArena that grows without initializing its elements: the
// conversion writes every row before anything reads it, so zero-filling megabytes per row group would be
// wasted work. Growing abandons the old block to the arena (arrays grow once, to the group capacity).
template <class T>
class ScratchArray {
 public:
  size_t size() const { return size_; }
  void resize(size_t n, ScratchArena* arena) {  // contents are not kept
    if (n <= size_) return;
    data_ = static_cast<T*>(arena->Allocate(n * sizeof(T)));
    size_ = n;
  }
  T* data() { return data_; }
  const T* data() const { return data_; }
  T& operator[](size_t i) { return data_[i]; }
  const T& operator[](size_t i) const { return data_[i]; }

 private:
  T* data_ = nullptr;
  size_t size_ = 0;
};

// Buffers for converting one column of a row group, sized to the group capacity.
struct ColumnScratch {
  ColumnType type = ColumnType::kInt64;
  ScratchArray<uint8_t> valid;
  ScratchArray<int64_t> i64;
  ScratchArray<double> f64;
  ScratchArray<uint8_t> b;
  ScratchArray<int32_t> codes;
  // Float columns: the signed decimal mantissa and digits after the point of each value parsed by the
  // fast path (frac = kNoDecimal otherwise), so encoding need not search for a decimal scale.
  ScratchArray<int64_t> mant;
  ScratchArray<uint8_t> frac;
  ScratchArray<int64_t> scaled;
  ChunkDict dict;
  std::string unescaped;
  // Plain dates (exactly 10 bytes) repeat a lot: a direct-mapped cache of their bytes -> day number, filled
  // only by successful parses, so a hit is exactly what ParseDatetimeMicros yields.
  struct DateSlot {
    uint64_t head = 0;  // bytes 0..7 (0 = empty: a date has no zero bytes)
    uint16_t tail = 0;  // bytes 8..9
    int32_t days = 0;
  };
  static constexpr size_t kDateSlots = 4096;
  std::vector<DateSlot> date_cache;
  // How values are read (import hints). fast == false sends every value through PutGeneral (custom missing
  // tokens may look like numbers or dates, which the fast paths would take as values).
  bool fast = true;
  bool vector_numbers = false;  // integers and decimals eight at a time (PutRange*Avx512)
  bool decimal_comma = false;
  const DateFormat* date = nullptr;
  const MissingTokens* missing = nullptr;  // nullptr: the default spellings

  ScratchArena* arena = nullptr;  // where the arrays live (the Workspace's)

  void Configure(ScratchArena* arena_in, bool decimal_comma_in, const DateFormat* date_in,
                 const MissingTokens* missing_in, bool vector_numbers_in) {
    arena = arena_in;
    vector_numbers = vector_numbers_in;
    decimal_comma = decimal_comma_in;
    date = date_in;
    missing = missing_in != nullptr && missing_in->custom() ? missing_in : nullptr;
    fast = missing == nullptr;
  }

  void Start(ColumnType t, size_t cap) {
    type = t;
    valid.resize(cap, arena);
    switch (t) {
      case ColumnType::kInt64:
      case ColumnType::kDatetime:
        i64.resize(cap, arena);
        break;
      case ColumnType::kFloat64:
        f64.resize(cap, arena);
        mant.resize(cap, arena);
        frac.resize(cap, arena);
        break;
      case ColumnType::kBool:
        b.resize(cap, arena);
        break;
      case ColumnType::kString:
        codes.resize(cap, arena);
        dict.Clear();
        break;
    }
  }

  // Converts the value of row r; false if it does not parse as `type`. The common spellings (plain
  // integers and decimals, empty fields, unpadded strings) take a fast path that yields exactly what the
  // general parsers in value_parse.h yield; anything else goes through them.
  bool Put(size_t r, const char* data, uint32_t size, bool escaped) {
    if (!escaped && fast && PutFast<false>(r, data, size)) return true;
    if (type == ColumnType::kFloat64) frac[r] = kNoDecimal;
    return PutGeneral(r, data, size, escaped);
  }

  // Converts rows [row, end), whose fields are refs[row - first], until one does not parse; returns that row,
  // or `end`.
  size_t PutRange(size_t row, size_t end, const FieldRef* refs, size_t first, const char* base) {
    if (!fast) return PutRangeGeneral(row, end, refs, first, base);
    // One loop per type, with the output arrays in locals: no dispatch per value, and the stores through
    // uint8_t pointers do not force the vectors' data pointers to be reloaded.
    switch (type) {
      case ColumnType::kInt64:
#if defined(__x86_64__)
        if (vector_numbers) return PutRangeIntAvx512(row, end, refs, first, base);
#endif
        return PutRangeInt(row, end, refs, first, base);
      case ColumnType::kFloat64:
        if (decimal_comma) return PutRangeGeneral(row, end, refs, first, base);
#if defined(__x86_64__)
        if (vector_numbers) return PutRangeFloatAvx512(row, end, refs, first, base);
#endif
        return PutRangeFloat(row, end, refs, first, base);
      case ColumnType::kString: return PutRangeString(row, end, refs, first, base);
      case ColumnType::kDatetime:
        return date != nullptr ? PutRangeGeneral(row, end, refs, first, base) : PutRangeDate(row, end, refs, first, base);
      case ColumnType::kBool: break;
    }
    return PutRangeGeneral(row, end, refs, first, base);
  }
  size_t PutRangeGeneral(size_t row, size_t end, const FieldRef* refs, size_t first, const char* base) {
    for (; row < end; ++row) {
      const FieldRef& f = refs[row - first];
      if (type == ColumnType::kFloat64) frac[row] = kNoDecimal;
      if (!PutGeneral(row, base + f.offset, f.len_flags & ~kEscapedBit, (f.len_flags & kEscapedBit) != 0)) break;
    }
    return row;
  }
  size_t PutRangeInt(size_t row, size_t end, const FieldRef* refs, size_t first, const char* base) {
    uint8_t* const v = valid.data();
    int64_t* const out = i64.data();
    for (; row < end; ++row) {
      const FieldRef f = refs[row - first];
      const char* data = base + f.offset;
      // An escaped field's flag bit makes its size too long for the fast path.
      if (PutIntTo(data, f.len_flags, &v[row], &out[row])) continue;
      if (!PutGeneral(row, data, f.len_flags & ~kEscapedBit, (f.len_flags & kEscapedBit) != 0)) break;
    }
    return row;
  }
  size_t PutRangeFloat(size_t row, size_t end, const FieldRef* refs, size_t first, const char* base) {
    uint8_t* const v = valid.data();
    double* const out = f64.data();
    int64_t* const mt = mant.data();
    uint8_t* const fr = frac.data();
    for (; row < end; ++row) {
      const FieldRef f = refs[row - first];
      const char* data = base + f.offset;
      if ((f.len_flags & kEscapedBit) == 0) {
        if (f.len_flags == 0) {
          v[row] = 0, out[row] = 0, fr[row] = 0;
          continue;
        }
        if (PutDecimalTo(data, f.len_flags, &v[row], &out[row], &mt[row], &fr[row])) continue;
      }
      fr[row] = kNoDecimal;
      if (!PutGeneral(row, data, f.len_flags & ~kEscapedBit, (f.len_flags & kEscapedBit) != 0)) break;
    }
    return row;
  }
  // One row of PutRangeFloat (the vectorized version's fallback for the lanes it leaves).
  __attribute__((always_inline)) bool PutFloatRow(size_t row, FieldRef f, const char* base) {
    const char* data = base + f.offset;
    if ((f.len_flags & kEscapedBit) == 0) {
      if (f.len_flags == 0) {
        valid[row] = 0, f64[row] = 0, frac[row] = 0;
        return true;
      }
      if (PutDecimalTo(data, f.len_flags, &valid[row], &f64[row], &mant[row], &frac[row])) return true;
    }
    frac[row] = kNoDecimal;
    return PutGeneral(row, data, f.len_flags & ~kEscapedBit, (f.len_flags & kEscapedBit) != 0);
  }
#if defined(__x86_64__)
  // Eight fields read at once (AVX-512 with DQ for 64-bit multiplies and CD for bit counts): lanes whose field
  // is unescaped and at most 8 bytes with its sign go through the steps of the scalar fast paths (PutIntTo;
  // PutDecimalTo and ShortDecimal with kDecimal) with the same 64-bit arithmetic per lane, so they yield the
  // same values. ok: such lanes that parsed (decimals: not -0, which the scalar path keeps as a double);
  // m: their digits' value (unsigned); scale: digits after the point; empty: lanes with an empty field.
  // (The maskz_ forms with a full mask stand for the plain intrinsics, which GCC 12 builds on an undefined
  // register that -Wmaybe-uninitialized reports.)
  struct Lanes8 {
    __m512i m, scale;
    __mmask8 minus, ok, empty;
  };
  template <bool kDecimal>
  LATHE_AVX512_DQ __attribute__((always_inline)) static inline Lanes8 ParseLanes8(const FieldRef* refs,
                                                                                  const char* base) {
    static_assert(sizeof(FieldRef) == 8 && offsetof(FieldRef, len_flags) == 4);
    const __m512i zero = _mm512_setzero_si512(), one = _mm512_set1_epi64(1);
    const __m512i c30 = _mm512_set1_epi64(0x3030303030303030LL), c76 = _mm512_set1_epi64(0x7676767676767676LL);
    const __m512i c80 = _mm512_set1_epi64(static_cast<int64_t>(0x8080808080808080ULL));
    const __m512i pairs = _mm512_set1_epi64(0x000000FF000000FFLL);
    const __m512i ref = _mm512_loadu_si512(refs);  // offset: low half, len_flags: high half
    const __m512i n = _mm512_maskz_srli_epi64(0xFF, ref, 32);  // the escaped bit makes n > 8
    const __m512i w0 =
        _mm512_mask_i64gather_epi64(zero, 0xFF, _mm512_and_si512(ref, _mm512_set1_epi64(0xFFFFFFFFLL)), base, 1);
    const __m512i b0 = _mm512_and_si512(w0, _mm512_set1_epi64(0xFF));
    Lanes8 r;
    r.minus = _mm512_cmpeq_epi64_mask(b0, _mm512_set1_epi64('-'));
    const __mmask8 sign = r.minus | _mm512_cmpeq_epi64_mask(b0, _mm512_set1_epi64('+'));
    const __m512i i0 = _mm512_maskz_mov_epi64(sign, one);
    __m512i w = _mm512_maskz_srlv_epi64(0xFF, w0, _mm512_maskz_slli_epi64(0xFF, i0, 3));  // after the sign
    const __m512i len = _mm512_sub_epi64(n, i0);
    r.empty = _mm512_cmpeq_epi64_mask(n, zero);
    const __mmask8 fits = _mm512_cmple_epu64_mask(n, _mm512_set1_epi64(8)) & _mm512_cmpge_epu64_mask(len, one);
    __m512i digits = len;
    __mmask8 bad_dot = 0;
    r.scale = zero;
    if constexpr (kDecimal) {
      // The first '.', squeezed out of the word.
      const __m512i inside =
          _mm512_sub_epi64(_mm512_maskz_sllv_epi64(0xFF, one, _mm512_maskz_slli_epi64(0xFF, len, 3)), one);
      const __m512i x = _mm512_xor_si512(w, _mm512_set1_epi64(0x2E2E2E2E2E2E2E2ELL));
      const __m512i dots = _mm512_and_si512(
          _mm512_and_si512(_mm512_sub_epi64(x, _mm512_set1_epi64(0x0101010101010101LL)),
                           _mm512_maskz_andnot_epi64(0xFF, x, c80)),
          inside);
      const __mmask8 has_dot = _mm512_test_epi64_mask(dots, dots);
      const __m512i lowest = _mm512_and_si512(dots, _mm512_sub_epi64(zero, dots));
      const __m512i k = _mm512_maskz_srli_epi64(
          0xFF, _mm512_sub_epi64(_mm512_set1_epi64(63), _mm512_maskz_lzcnt_epi64(0xFF, lowest)), 3);
      const __m512i below = _mm512_sub_epi64(_mm512_maskz_sllv_epi64(0xFF, one, _mm512_maskz_slli_epi64(0xFF, k, 3)), one);
      const __m512i squeezed = _mm512_or_si512(
          _mm512_and_si512(w, below), _mm512_maskz_andnot_epi64(0xFF, below, _mm512_maskz_srli_epi64(0xFF, w, 8)));
      w = _mm512_mask_mov_epi64(w, has_dot, squeezed);
      digits = _mm512_mask_sub_epi64(len, has_dot, len, one);
      r.scale = _mm512_maskz_sub_epi64(has_dot, digits, k);
      bad_dot = has_dot & _mm512_cmpeq_epi64_mask(digits, zero);
    }
    // LeadingDigitsWord(w) >= digits: no flagged byte among the first `digits`.
    const __m512i d = _mm512_sub_epi64(w, c30);
    const __m512i bad = _mm512_and_si512(_mm512_or_si512(d, _mm512_add_epi64(d, c76)), c80);
    const __m512i first_digits =
        _mm512_sub_epi64(_mm512_maskz_sllv_epi64(0xFF, one, _mm512_maskz_slli_epi64(0xFF, digits, 3)), one);
    const __mmask8 not_digits = _mm512_test_epi64_mask(bad, first_digits);
    // DigitsValueWord(w, digits).
    __m512i m = _mm512_maskz_sllv_epi64(
        0xFF, d, _mm512_maskz_slli_epi64(0xFF, _mm512_sub_epi64(_mm512_set1_epi64(8), digits), 3));
    m = _mm512_add_epi64(_mm512_mullo_epi64(m, _mm512_set1_epi64(10)), _mm512_maskz_srli_epi64(0xFF, m, 8));
    m = _mm512_maskz_srli_epi64(
        0xFF,
        _mm512_add_epi64(
            _mm512_mullo_epi64(_mm512_and_si512(m, pairs),
                               _mm512_set1_epi64(static_cast<int64_t>(100 + (1000000ULL << 32)))),
            _mm512_mullo_epi64(_mm512_and_si512(_mm512_maskz_srli_epi64(0xFF, m, 16), pairs),
                               _mm512_set1_epi64(static_cast<int64_t>(1 + (10000ULL << 32))))),
        32);
    r.m = m;
    r.ok = fits & ~bad_dot & ~not_digits;
    if constexpr (kDecimal) r.ok &= ~(r.minus & _mm512_cmpeq_epi64_mask(m, zero));
    return r;
  }
  // PutRangeFloat / PutRangeInt eight rows at a time (ParseLanes8); the lanes it leaves take the scalar row
  // path, in row order, and the first row that does not parse ends the range as in the scalar versions.
  LATHE_AVX512_DQ size_t PutRangeFloatAvx512(size_t row, size_t end, const FieldRef* refs, size_t first,
                                             const char* base) {
    uint8_t* const v = valid.data();
    double* const out = f64.data();
    int64_t* const mt = mant.data();
    uint8_t* const fr = frac.data();
    const __m512i zero = _mm512_setzero_si512(), one = _mm512_set1_epi64(1);
    for (; row + 8 <= end; row += 8) {
      const Lanes8 l = ParseLanes8<true>(refs + (row - first), base);
      const __mmask8 done = l.ok | l.empty;
      _mm512_mask_storeu_epi64(mt + row, done, _mm512_maskz_mov_epi64(l.ok, _mm512_mask_sub_epi64(l.m, l.minus, zero, l.m)));
      _mm_mask_storeu_epi8(fr + row, done, _mm512_maskz_cvtepi64_epi8(0xFF, _mm512_maskz_mov_epi64(l.ok, l.scale)));
      _mm_mask_storeu_epi8(v + row, done, _mm512_maskz_cvtepi64_epi8(0xFF, _mm512_maskz_mov_epi64(l.ok, one)));
      _mm512_mask_storeu_pd(out + row, l.empty, _mm512_setzero_pd());
      if (done != 0xFF) {
        for (size_t j = 0; j < 8; ++j) {
          if (((done >> j) & 1) == 0 && !PutFloatRow(row + j, refs[row + j - first], base)) return row + j;
        }
      }
    }
    return PutRangeFloat(row, end, refs, first, base);
  }
  LATHE_AVX512_DQ size_t PutRangeIntAvx512(size_t row, size_t end, const FieldRef* refs, size_t first,
                                           const char* base) {
    uint8_t* const v = valid.data();
    int64_t* const out = i64.data();
    const __m512i zero = _mm512_setzero_si512(), one = _mm512_set1_epi64(1);
    for (; row + 8 <= end; row += 8) {
      const Lanes8 l = ParseLanes8<false>(refs + (row - first), base);
      const __mmask8 done = l.ok | l.empty;
      _mm512_mask_storeu_epi64(out + row, done, _mm512_maskz_mov_epi64(l.ok, _mm512_mask_sub_epi64(l.m, l.minus, zero, l.m)));
      _mm_mask_storeu_epi8(v + row, done, _mm512_maskz_cvtepi64_epi8(0xFF, _mm512_maskz_mov_epi64(l.ok, one)));
      if (done != 0xFF) {
        for (size_t j = 0; j < 8; ++j) {
          if (((done >> j) & 1) != 0) continue;
          const FieldRef f = refs[row + j - first];
          const char* data = base + f.offset;
          if (PutIntTo(data, f.len_flags, &v[row + j], &out[row + j])) continue;
          if (!PutGeneral(row + j, data, f.len_flags & ~kEscapedBit, (f.len_flags & kEscapedBit) != 0)) return row + j;
        }
      }
    }
    return PutRangeInt(row, end, refs, first, base);
  }
#endif
  size_t PutRangeString(size_t row, size_t end, const FieldRef* refs, size_t first, const char* base) {
    uint8_t* const v = valid.data();
    int32_t* const out = codes.data();
    for (; row < end; ++row) {
      const FieldRef f = refs[row - first];
      const char* data = base + f.offset;
      if ((f.len_flags & kEscapedBit) == 0) {
        const uint32_t size = f.len_flags;
        if (size == 0) {
          v[row] = 0, out[row] = 0;
          continue;
        }
        const char first = data[0], last = data[size - 1];
        if (first != ' ' && first != '\t' && last != ' ' && last != '\t') {
          PutUnpaddedString(data, size, &v[row], &out[row]);
          continue;
        }
      }
      if (!PutGeneral(row, data, f.len_flags & ~kEscapedBit, (f.len_flags & kEscapedBit) != 0)) break;
    }
    return row;
  }
  size_t PutRangeDate(size_t row, size_t end, const FieldRef* refs, size_t first, const char* base) {
    for (; row < end; ++row) {
      const FieldRef f = refs[row - first];
      const char* data = base + f.offset;
      if ((f.len_flags & kEscapedBit) == 0 && PutFast<true>(row, data, f.len_flags)) continue;
      if (!PutGeneral(row, data, f.len_flags & ~kEscapedBit, (f.len_flags & kEscapedBit) != 0)) break;
    }
    return row;
  }

  // A non-empty string field without blanks around it, in the segment buffer.
  __attribute__((always_inline)) void PutUnpaddedString(const char* data, uint32_t size, uint8_t* valid_out,
                                                        int32_t* code_out) {
    const int32_t code = size <= 8 ? dict.FindShort(data, size) : dict.Insert(std::string_view(data, size), true);
    *valid_out = code >= 0;
    *code_out = code >= 0 ? code : 0;
  }

  // [+-]?digits with at most 18 digits (size counts the sign); false: PutGeneral decides.
  __attribute__((always_inline)) static bool PutIntTo(const char* data, uint32_t size, uint8_t* valid_out,
                                                      int64_t* out) {
    if (size == 0) {
      *valid_out = 0, *out = 0;
      return true;
    }
    if (size > 19) return false;
    const bool neg = data[0] == '-';
    const uint32_t i = static_cast<uint32_t>(neg || data[0] == '+');
    uint64_t acc = 0;
    bool too_long = false;
    if (i < size && ParseDigitRun(data + i, size - i, &acc, &too_long) == size - i && !too_long &&
        size - i <= 18) {
      *valid_out = 1;
      *out = neg ? static_cast<int64_t>(0 - acc) : static_cast<int64_t>(acc);
      return true;
    }
    return false;
  }

  // The fast path of Put for an unescaped field; false means "use PutGeneral" (not "does not parse").
  // kPlain: the column has no hint that changes parsing (decimal comma, date format), so skip those checks.
  template <bool kPlain>
  __attribute__((always_inline)) bool PutFast(size_t r, const char* data, uint32_t size) {
    switch (type) {
      case ColumnType::kInt64: return PutIntTo(data, size, &valid[r], &i64[r]);
      case ColumnType::kFloat64:
        if (size == 0) {
          valid[r] = 0, f64[r] = 0, frac[r] = 0;
          return true;
        }
        if constexpr (!kPlain) {
          if (decimal_comma) return false;
        }
        return PutDecimal(r, data, size);
      case ColumnType::kString: {
        if (size == 0) {
          valid[r] = 0, codes[r] = 0;
          return true;
        }
        char first = data[0], last = data[size - 1];
        if (first == ' ' || first == '\t' || last == ' ' || last == '\t') return false;
        PutUnpaddedString(data, size, &valid[r], &codes[r]);
        return true;
      }
      case ColumnType::kDatetime:
        if constexpr (!kPlain) {
          if (date != nullptr) return false;
        }
        if (size == 10) return PutDate(r, data);
        if (size > 10 && data[0] >= '0' && data[0] <= '9' && data[size - 1] != ' ' && data[size - 1] != '\t' &&
            ParseDatetimeMicros(std::string_view(data, size), &i64[r])) {
          valid[r] = 1;
          return true;
        }
        return false;
      case ColumnType::kBool:
        return false;
    }
    return false;
  }

  // A 10-byte datetime field (YYYY-MM-DD) through the date cache; false: PutGeneral decides.
  __attribute__((always_inline)) bool PutDate(size_t r, const char* data) {
    uint64_t head;
    uint16_t tail;
    std::memcpy(&head, data, 8);
    std::memcpy(&tail, data + 8, 2);
    if (date_cache.empty()) date_cache.resize(kDateSlots);
    const uint64_t h = (head ^ (uint64_t{tail} << 48) ^ (uint64_t{tail} << 7)) * 0x9E3779B97F4A7C15ULL;
    DateSlot& slot = date_cache[h >> (64 - 12)];
    static_assert(kDateSlots == 4096);
    if (slot.head == head && slot.tail == tail) {
      valid[r] = 1;
      i64[r] = int64_t{slot.days} * 86400000000LL;
      return true;
    }
    if (data[0] < '0' || data[0] > '9' || data[9] == ' ' || data[9] == '\t' ||
        !ParseDatetimeMicros(std::string_view(data, 10), &i64[r])) {
      return false;
    }
    valid[r] = 1;
    slot.head = head;
    slot.tail = tail;
    slot.days = static_cast<int32_t>(i64[r] / 86400000000LL);  // a plain date is a whole day
    return true;
  }

  // [+-]?digits[.digits] with at most 19 digits and a mantissa <= 2^53: the same value ParseFloat64's exact
  // fast path computes, kept as the mantissa and scale for the decimal encoding (f64 only for -0.0).
  __attribute__((always_inline)) static bool PutDecimalTo(const char* s, uint32_t n, uint8_t* valid_out,
                                                          double* f64_out, int64_t* mant_out, uint8_t* frac_out) {
    // Signs are random in real data: take them without a branch.
    const bool neg = s[0] == '-';
    const uint32_t i0 = static_cast<uint32_t>(neg || s[0] == '+');
    const DecimalDigits dd = n - i0 - 1 < 8 ? ShortDecimal(s + i0, n - i0) : LongDecimal(s + i0, n - i0);
    if (!dd.ok) return false;
    const uint64_t m = dd.m;
    const uint32_t fr = dd.fr;
    *valid_out = 1;
    if (m == 0 && neg) {
      // -0.0 has no mantissa of its own: keep the double (the encoder lists such rows).
      *f64_out = -0.0;
      *mant_out = 0;
      *frac_out = kNegZero;
      return true;
    }
    *mant_out = neg ? -static_cast<int64_t>(m) : static_cast<int64_t>(m);
    *frac_out = static_cast<uint8_t>(fr);
    return true;
  }
  bool PutDecimal(size_t r, const char* s, uint32_t n) {
    return PutDecimalTo(s, n, &valid[r], &f64[r], &mant[r], &frac[r]);
  }

  // Unsigned decimal digits: the value of the digits, how many follow the point, and whether they parsed
  // (returned in two registers, so the hot path keeps them out of memory).
  struct DecimalDigits {
    uint64_t m;
    uint32_t fr;
    uint32_t ok;
  };
  // digits[.digits] in the len (1..8) bytes at p, at least one digit: the digits' value and how many follow the
  // point. One 8-byte load (the segment buffer is padded); the point is squeezed out of the word, and the
  // remaining bytes are checked and converted together.
  static __attribute__((always_inline)) DecimalDigits ShortDecimal(const char* p, uint32_t len) {
    uint64_t w;
    std::memcpy(&w, p, 8);
    const uint64_t inside = len == 8 ? ~uint64_t{0} : (uint64_t{1} << (8 * len)) - 1;
    // Bytes equal to '.': exact for the first one (a second point stays in the word and fails the digit check).
    const uint64_t x = w ^ 0x2E2E2E2E2E2E2E2EULL;
    const uint64_t dots = (x - 0x0101010101010101ULL) & ~x & 0x8080808080808080ULL & inside;
    uint32_t digits = len, fr = 0;
    if (dots != 0) {
      const uint32_t k = static_cast<uint32_t>(__builtin_ctzll(dots)) / 8;  // byte index of the point
      const uint64_t below = (uint64_t{1} << (8 * k)) - 1;                  // k < 8
      w = (w & below) | ((w >> 8) & ~below);
      digits = len - 1;
      fr = digits - k;
      if (digits == 0) return DecimalDigits{0, 0, 0};
    }
    if (LeadingDigitsWord(w) < digits) return DecimalDigits{0, 0, 0};
    return DecimalDigits{DigitsValueWord(w, digits), fr, 1};
  }

  // The general form of ShortDecimal: len bytes (0 possible), up to 19 digits, a mantissa <= 2^53.
  static DecimalDigits LongDecimal(const char* s, uint32_t n) {
    uint32_t i = 0;
    uint64_t m = 0, fm = 0;
    uint32_t digits = 0, fr = 0;
    bool too_long = false;
    if (n == 0) return DecimalDigits{0, 0, 0};
    digits = ParseDigitRun(s + i, n - i, &m, &too_long);
    i += digits;
    if (i < n && s[i] == '.') {
      ++i;
      fr = ParseDigitRun(s + i, n - i, &fm, &too_long);
      i += fr;
      digits += fr;
      if (too_long || digits > 19) return DecimalDigits{0, 0, 0};
      static constexpr uint64_t kPow10u[] = {1,
                                             10,
                                             100,
                                             1000,
                                             10000,
                                             100000,
                                             1000000,
                                             10000000,
                                             100000000,
                                             1000000000,
                                             10000000000ULL,
                                             100000000000ULL,
                                             1000000000000ULL,
                                             10000000000000ULL,
                                             100000000000000ULL,
                                             1000000000000000ULL,
                                             10000000000000000ULL,
                                             100000000000000000ULL,
                                             1000000000000000000ULL,
                                             10000000000000000000ULL};
      m = m * kPow10u[fr] + fm;
    }
    if (too_long) return DecimalDigits{0, 0, 0};
    if (i != n || digits == 0 || digits > 19 || m > (uint64_t{1} << 53) || fr > 22) return DecimalDigits{0, 0, 0};
    return DecimalDigits{m, fr, 1};
  }

  // Fills f64 for the valid rows the decimal fast path took (frac <= 22): m / 10^frac, correctly
  // rounded (|m| <= 2^53 and 10^frac <= 10^22 are exact doubles), the value ParseFloat64 yields.
  void MaterializeFloats(size_t n) {
    static constexpr double kPow10[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,  1e8,  1e9,  1e10, 1e11,
                                        1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};
    for (size_t i = 0; i < n; ++i) {
      if (!valid[i] || frac[i] >= kNegZero) continue;
      double v = static_cast<double>(mant[i]);
      f64[i] = frac[i] > 0 ? v / kPow10[frac[i]] : v;
    }
  }

  bool PutGeneral(size_t r, const char* data, uint32_t size, bool escaped) {
    std::string_view raw(data, size);
    if (escaped) raw = CsvTokenizer::Unescape(CsvField{data, size, true, true}, &unescaped);
    std::string_view v = TrimBlanks(raw);
    if (missing != nullptr ? missing->Contains(v) : DefaultMissing(v)) {
      valid[r] = 0;
      switch (type) {
        case ColumnType::kInt64:
        case ColumnType::kDatetime: i64[r] = 0; break;
        case ColumnType::kFloat64: f64[r] = 0; break;
        case ColumnType::kBool: b[r] = 0; break;
        case ColumnType::kString: codes[r] = 0; break;
      }
      return true;
    }
    valid[r] = 1;
    switch (type) {
      case ColumnType::kInt64: return ParseInt64(v, &i64[r]) == IntParse::kOk;
      case ColumnType::kFloat64:
        return decimal_comma ? ParseDecimalCommaFloat(v, &f64[r]) : ParseFloat64(v, &f64[r]);
      case ColumnType::kBool: {
        bool x;
        if (!ParseBool(v, &x)) return false;
        b[r] = x;
        return true;
      }
      case ColumnType::kDatetime: return date != nullptr ? date->Parse(v, &i64[r]) : ParseDatetimeMicros(v, &i64[r]);
      case ColumnType::kString: codes[r] = dict.Insert(raw, !escaped); return true;
    }
    return false;
  }

  EncodedChunk Encode(size_t n, int zstd_level) {
    ChunkInput in;
    in.type = type;
    in.rows = n;
    in.valid = valid.data();
    in.i64 = i64.data();
    in.f64 = f64.data();
    in.b = b.data();
    in.codes = codes.data();
    in.dict = dict.values().data();
    in.dict_size = dict.values().size();
    if (type == ColumnType::kFloat64) {
      bool neg_zeros = false;
      if (!DecimalHint(n, &in, &neg_zeros)) {
        MaterializeFloats(n);
        in.decimal_mantissa = nullptr;
        in.decimal_scale = -1;
      } else if (neg_zeros) {
        // The encoder finds the -0.0 rows in the doubles, and checks the decimal claim against them.
        MaterializeFloats(n);
        in.f64 = f64.data();
      }
    }
    return EncodeChunk(in, zstd_level);
  }

  // Rescales the parsed mantissas to the chunk's largest number of decimals, if every value came through
  // the fast path and the result stays exact; then the mantissas are the values (in->f64 = nullptr).
  // *neg_zeros: some rows hold -0.0 (mantissa 0), which only the doubles can say.
  // False: in->f64 must be materialized.
  bool DecimalHint(size_t n, ChunkInput* in, bool* neg_zeros) {
    // Most decimal columns are written with a fixed number of decimals: one branch-free pass over the scales
    // (bytes, vectorized) finds that case, and then the mantissas are the values as parsed. kNegZero and
    // kNoDecimal are above 9, so a chunk with -0.0 or a value off the fast path takes the general route below.
    uint8_t hi = 0, lo = 0xFF;
    const uint8_t* const fr = frac.data();
    const uint8_t* const ok = valid.data();
    for (size_t i = 0; i < n; ++i) {
      hi = std::max<uint8_t>(hi, ok[i] ? fr[i] : uint8_t{0});
      lo = std::min<uint8_t>(lo, ok[i] ? fr[i] : uint8_t{0xFF});
    }
    if (hi <= 9 && lo == hi) {
      in->decimal_mantissa = mant.data();  // invalid rows' mantissas are masked by the encoder
      in->decimal_scale = hi;
      in->f64 = nullptr;
      *neg_zeros = false;
      return true;
    }
    uint8_t k = 0;
    bool any_neg_zero = false;
    for (size_t i = 0; i < n; ++i) {
      if (!valid[i]) continue;
      const bool nz = frac[i] == kNegZero;
      any_neg_zero |= nz;
      k = std::max(k, nz ? uint8_t{0} : frac[i]);
    }
    if (k > 9) return false;  // also kNoDecimal
    static constexpr int64_t kPow10i[] = {1, 10, 100, 1000, 10000, 100000, 1000000, 10000000, 100000000, 1000000000};
    constexpr int64_t kTwo53 = int64_t{1} << 53;
    static constexpr int64_t kLimit[] = {kTwo53,           kTwo53 / 10,       kTwo53 / 100,       kTwo53 / 1000,
                                         kTwo53 / 10000,   kTwo53 / 100000,   kTwo53 / 1000000,   kTwo53 / 10000000,
                                         kTwo53 / 100000000, kTwo53 / 1000000000};
    scaled.resize(n, arena);
    for (size_t i = 0; i < n; ++i) {
      if (!valid[i] || frac[i] == kNegZero) {
        scaled[i] = 0;
        continue;
      }
      const int j = k - frac[i];
      const int64_t x = mant[i];
      if (x > kLimit[j] || x < -kLimit[j]) return false;
      scaled[i] = x * kPow10i[j];
    }
    in->decimal_mantissa = scaled.data();
    in->decimal_scale = k;
    in->f64 = nullptr;
    *neg_zeros = any_neg_zero;
    return true;
  }
};

// The next candidate type after `t` failed for some value (inference order: integer, float, boolean,
// datetime, string).
ColumnType NextCandidate(ColumnType t) {
  switch (t) {
    case ColumnType::kInt64: return ColumnType::kFloat64;
    case ColumnType::kFloat64: return ColumnType::kBool;
    case ColumnType::kBool: return ColumnType::kDatetime;
    default: return ColumnType::kString;
  }
}

// True if the trimmed value v is missing or parses as the rule's fixed type (the same parsers that convert it).
bool ValueFitsRule(const ColumnRule& rule, std::string_view v, bool decimal_comma, const MissingTokens& missing) {
  if (missing.Contains(v)) return true;
  int64_t i;
  double d;
  bool b;
  switch (rule.type) {
    case ColumnType::kInt64: return ParseInt64(v, &i) == IntParse::kOk;
    case ColumnType::kFloat64: return decimal_comma ? ParseDecimalCommaFloat(v, &d) : ParseFloat64(v, &d);
    case ColumnType::kBool: return ParseBool(v, &b);
    case ColumnType::kDatetime: return rule.date != nullptr ? rule.date->Parse(v, &i) : ParseDatetimeMicros(v, &i);
    case ColumnType::kString: return true;
  }
  return false;
}

// A value for a message: at most 60 bytes, not cut inside a UTF-8 sequence.
std::string ShownValue(std::string_view v) {
  if (v.size() <= 60) return std::string(v);
  size_t n = 60;
  while (n > 0 && (static_cast<unsigned char>(v[n]) & 0xC0) == 0x80) --n;
  return std::string(v.substr(0, n)) + "...";
}

std::string HintViolation(const ColumnRule& rule, std::string_view v) {
  if (rule.date != nullptr) {
    return "value '" + ShownValue(v) + "' does not match the date format '" + rule.date->pattern() + "' (schema hint)";
  }
  const char* what = "a valid value";
  switch (rule.type) {
    case ColumnType::kInt64: what = "a valid integer"; break;
    case ColumnType::kFloat64: what = "a valid number"; break;
    case ColumnType::kBool: what = "a valid boolean"; break;
    case ColumnType::kDatetime: what = "a valid ISO 8601 date/time"; break;
    case ColumnType::kString: break;
  }
  return "value '" + ShownValue(v) + "' is not " + what + " (schema hint: " + ColumnTypeName(rule.type) + ")";
}

// Per-thread working memory, reused across segments (pooled) so large buffers are faulted in only once.
struct Workspace {
  ScratchArena arena;  // before cols: their arrays live in it
  ByteBuffer buf;
  // The fields of the rows tokenized but not yet converted (at most kConvertBatchRows): refs[c * kRefStride +
  // row - first row of the batch]. Small enough to stay in the first-level cache while a batch is written and read.
  std::vector<FieldRef> refs;
  std::vector<FieldRef> rescan;     // the same shape: fields of earlier rows, read again to re-convert a column
  std::vector<uint32_t> row_start;  // per row of the current group: offset in buf, | kTokenizedRow
  std::vector<ColumnScratch> cols;
};

class WorkspacePool {
 public:
  std::unique_ptr<Workspace> Take() {
    std::lock_guard<std::mutex> lock(mu_);
    if (free_.empty()) return std::make_unique<Workspace>();
    auto w = std::move(free_.back());
    free_.pop_back();
    return w;
  }
  void Give(std::unique_ptr<Workspace> w) {
    std::lock_guard<std::mutex> lock(mu_);
    free_.push_back(std::move(w));
  }

 private:
  std::mutex mu_;
  std::vector<std::unique_ptr<Workspace>> free_;
};

// Readable bytes kept after the data in a segment buffer, so the row scanner may load whole 64-byte blocks.
constexpr size_t kScanPadding = 64;

// Rows are tokenized into a batch of field references and converted column by column a batch at a time.
constexpr size_t kConvertBatchRows = 256;
// Columns of a batch's field references are a cache line apart modulo 4 KiB (8 * 520 = 4096 + 64), so the
// per-row writes to every column do not compete for the same cache sets.
constexpr size_t kRefStride = 520;
static_assert(kRefStride >= kConvertBatchRows);
// Workspace::row_start: the row did not take the simple scanner's path (quotes, CR), so it is read again
// with the general tokenizer.
constexpr uint32_t kTokenizedRow = 1u << 31;

// The bytes of one 64-byte block that matter to the row scanner, bit i for p[i].
struct BlockMasks {
  uint64_t delim;  // the delimiter
  uint64_t stop;   // LF, a quote or CR: the row ends or needs the general tokenizer
  uint64_t lf;     // LF
  uint64_t high;   // top bit set (not ASCII)
};

// 64 bytes at p in the baseline instruction set (SSE2 on x86-64).
struct BaselineBlocks {
  static BlockMasks Scan(const char* p, char delim) {
    BlockMasks b{0, 0, 0, 0};
#if defined(__SSE2__)
    const __m128i d = _mm_set1_epi8(delim), q = _mm_set1_epi8('"'), lf = _mm_set1_epi8('\n'),
                  cr = _mm_set1_epi8('\r');
    for (int k = 0; k < 4; ++k) {
      __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 16 * k));
      __m128i is_lf = _mm_cmpeq_epi8(v, lf);
      __m128i stop = _mm_or_si128(is_lf, _mm_or_si128(_mm_cmpeq_epi8(v, q), _mm_cmpeq_epi8(v, cr)));
      const int shift = 16 * k;
      b.delim |= static_cast<uint64_t>(static_cast<uint32_t>(_mm_movemask_epi8(_mm_cmpeq_epi8(v, d)))) << shift;
      b.stop |= static_cast<uint64_t>(static_cast<uint32_t>(_mm_movemask_epi8(stop))) << shift;
      b.lf |= static_cast<uint64_t>(static_cast<uint32_t>(_mm_movemask_epi8(is_lf))) << shift;
      b.high |= static_cast<uint64_t>(static_cast<uint32_t>(_mm_movemask_epi8(v))) << shift;
    }
#else
    for (int i = 0; i < 64; ++i) {
      const char c = p[i];
      b.delim |= static_cast<uint64_t>(c == delim) << i;
      b.stop |= static_cast<uint64_t>(c == '"' || c == '\n' || c == '\r') << i;
      b.lf |= static_cast<uint64_t>(c == '\n') << i;
      b.high |= static_cast<uint64_t>(static_cast<unsigned char>(c) >> 7) << i;
    }
#endif
    return b;
  }
};

#if defined(__x86_64__)

struct Avx2Blocks {
  LATHE_AVX2 static BlockMasks Scan(const char* p, char delim) {
    BlockMasks b{0, 0, 0, 0};
    const __m256i d = _mm256_set1_epi8(delim), q = _mm256_set1_epi8('"'), lf = _mm256_set1_epi8('\n'),
                  cr = _mm256_set1_epi8('\r');
    for (int k = 0; k < 2; ++k) {
      __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + 32 * k));
      __m256i is_lf = _mm256_cmpeq_epi8(v, lf);
      __m256i stop = _mm256_or_si256(is_lf, _mm256_or_si256(_mm256_cmpeq_epi8(v, q), _mm256_cmpeq_epi8(v, cr)));
      const int shift = 32 * k;
      b.delim |= static_cast<uint64_t>(static_cast<uint32_t>(_mm256_movemask_epi8(_mm256_cmpeq_epi8(v, d)))) << shift;
      b.stop |= static_cast<uint64_t>(static_cast<uint32_t>(_mm256_movemask_epi8(stop))) << shift;
      b.lf |= static_cast<uint64_t>(static_cast<uint32_t>(_mm256_movemask_epi8(is_lf))) << shift;
      b.high |= static_cast<uint64_t>(static_cast<uint32_t>(_mm256_movemask_epi8(v))) << shift;
    }
    return b;
  }
};

struct Avx512Blocks {
  LATHE_AVX512 static BlockMasks Scan(const char* p, char delim) {
    const __m512i v = _mm512_loadu_si512(p);
    const uint64_t lf = _mm512_cmpeq_epi8_mask(v, _mm512_set1_epi8('\n'));
    return BlockMasks{_mm512_cmpeq_epi8_mask(v, _mm512_set1_epi8(delim)),
                      lf | _mm512_cmpeq_epi8_mask(v, _mm512_set1_epi8('"')) |
                          _mm512_cmpeq_epi8_mask(v, _mm512_set1_epi8('\r')),
                      lf, _mm512_movepi8_mask(v)};
  }
};
#endif

// The fast path for the common row: exactly `ncols` unquoted fields, no CR, ending in LF before `end`, within
// the field and line limits. Writes the fields to refs[c * stride + slot] and returns the first byte after the
// row, or nullptr if the row needs the general tokenizer (which also produces any error). *ascii says
// whether the row's bytes are all ASCII. Reads up to kScanPadding bytes past `end`.
// Per block, the delimiters before the first stop byte are walked without looking at the bytes again; field
// lengths are checked against max_field only for rows longer than it.
template <class Blocks>
__attribute__((always_inline)) inline const char* ScanSimpleRowWith(const char* p, const char* end,
                                                                   const char* base, char delim, size_t ncols,
                                                                   size_t max_field, size_t max_line,
                                                                   FieldRef* refs, size_t stride, size_t slot,
                                                                   bool* ascii) {
  const char* field = p;
  size_t c = 0;
  uint64_t high = 0;
  FieldRef* out = refs + slot;
  for (const char* blk = p; blk < end; blk += 64) {
    BlockMasks b = Blocks::Scan(blk, delim);
    if (end - blk < 64) {
      const uint64_t keep = (uint64_t{1} << (end - blk)) - 1;
      b.delim &= keep, b.stop &= keep, b.high &= keep;
    }
    const uint64_t before_stop = b.stop == 0 ? ~uint64_t{0} : (b.stop & (0 - b.stop)) - 1;
    uint64_t dm = b.delim & before_stop;
    while (dm != 0) {
      if (c + 1 >= ncols) return nullptr;  // too many fields
      const char* at = blk + __builtin_ctzll(dm);
      dm &= dm - 1;
      out[c * stride] = {static_cast<uint32_t>(field - base), static_cast<uint32_t>(at - field)};
      ++c;
      field = at + 1;
    }
    high |= b.high & before_stop;
    if (b.stop != 0) {
      const int bit = __builtin_ctzll(b.stop);
      if (((b.lf >> bit) & 1) == 0) return nullptr;  // a quote or CR
      const char* at = blk + bit;
      const size_t line = static_cast<size_t>(at + 1 - p);
      if (c + 1 != ncols || at == p || line > max_line) return nullptr;
      out[c * stride] = {static_cast<uint32_t>(field - base), static_cast<uint32_t>(at - field)};
      if (line > max_field) {
        for (size_t k = 0; k < ncols; ++k) {
          if (out[k * stride].len_flags > max_field) return nullptr;
        }
      }
      *ascii = high == 0;
      return at + 1;
    }
    if (static_cast<size_t>(blk + 64 - p) > max_line + 64) return nullptr;
  }
  return nullptr;
}

inline const char* ScanSimpleRow(const char* p, const char* end, const char* base, char delim, size_t ncols,
                                 size_t max_field, size_t max_line, FieldRef* refs, size_t stride, size_t slot,
                                 bool* ascii) {
  return ScanSimpleRowWith<BaselineBlocks>(p, end, base, delim, ncols, max_field, max_line, refs, stride, slot,
                                           ascii);
}

// What ScanRows reads: rows of one segment buffer into a batch of field references.
struct RowScan {
  const char* end;    // the end of the data in the buffer (readable kScanPadding bytes further)
  const char* limit;  // rows must start before this
  const char* base;   // the buffer
  char delim;
  size_t ncols, max_field, max_line;
  FieldRef* refs;       // the batch's field references, stride kRefStride
  uint32_t* row_start;  // the group's row offsets, indexed by the row's number in the group
  bool stopped_at_complex_row = false;  // out: the row that stopped the scan is not a simple row
};

// Reads consecutive rows from *p while each is a simple row (ScanSimpleRow) in valid UTF-8 that starts before
// s.limit, at most max_rows of them: row i goes to batch slot `slot + i` and row_start[row + i]. Returns how
// many rows were read and moves *p past them; the row that stopped it is left for the caller (with
// s.stopped_at_complex_row telling whether it needs the general tokenizer).
template <class Blocks>
__attribute__((always_inline)) inline size_t ScanRowsWith(RowScan& s, const char** p, size_t slot, size_t row,
                                                         size_t max_rows) {
  const char* at = *p;
  size_t n = 0;
  s.stopped_at_complex_row = false;
  for (; n < max_rows && at < s.limit; ++n) {
    bool ascii = false;
    const char* next = ScanSimpleRowWith<Blocks>(at, s.end, s.base, s.delim, s.ncols, s.max_field, s.max_line,
                                                 s.refs, kRefStride, slot + n, &ascii);
    if (next == nullptr) {
      s.stopped_at_complex_row = true;
      break;
    }
    if (!ascii && FindInvalidUtf8(at, static_cast<size_t>(next - at)) >= 0) break;
    s.row_start[row + n] = static_cast<uint32_t>(at - s.base);
    at = next;
  }
  *p = at;
  return n;
}

using ScanRowsFn = size_t (*)(RowScan&, const char**, size_t, size_t, size_t);

size_t ScanRowsBaseline(RowScan& s, const char** p, size_t slot, size_t row, size_t max_rows) {
  return ScanRowsWith<BaselineBlocks>(s, p, slot, row, max_rows);
}

#if defined(__x86_64__)
LATHE_AVX2 size_t ScanRowsAvx2(RowScan& s, const char** p, size_t slot, size_t row, size_t max_rows) {
  return ScanRowsWith<Avx2Blocks>(s, p, slot, row, max_rows);
}

LATHE_AVX512 size_t ScanRowsAvx512(RowScan& s, const char** p, size_t slot, size_t row, size_t max_rows) {
  return ScanRowsWith<Avx512Blocks>(s, p, slot, row, max_rows);
}
#endif

// The widest row scanner this CPU runs, at most `level`.
ScanRowsFn PickRowScanner(CsvOptions::Simd level) {
#if defined(__x86_64__)
  static const bool avx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                             __builtin_cpu_supports("bmi2") && __builtin_cpu_supports("popcnt");
  static const bool avx2 =
      __builtin_cpu_supports("avx2") && __builtin_cpu_supports("bmi2") && __builtin_cpu_supports("popcnt");
  const bool auto_level = level == CsvOptions::Simd::kAuto;
  if (avx512 && (auto_level || level == CsvOptions::Simd::kAvx512)) return ScanRowsAvx512;
  if (avx2 && (auto_level || level == CsvOptions::Simd::kAvx512 || level == CsvOptions::Simd::kAvx2)) {
    return ScanRowsAvx2;
  }
#else
  (void)level;
#endif
  return ScanRowsBaseline;
}

// Tokenizes the rows that start in [start, nominal_end), validating them, and converts and encodes them
// in row groups. With known_start < 0 the segment starts at the first line start at/after nominal_begin.
// With `forced_types`, only the columns marked in `only` are converted (in the forced types); used to
// re-encode a row group whose chunks do not fit the final column types.
SegmentResult ProcessSegment(const ImportPlan& plan, Workspace& ws, int64_t known_start, int64_t nominal_begin,
                             int64_t nominal_end, const std::vector<ColumnType>* forced_types = nullptr,
                             const std::vector<uint8_t>* only = nullptr) {
  SegmentResult r;
  const InputFile& f = *plan.file;
  if (known_start >= 0) {
    r.start = known_start;
  } else {
    auto s = NextLineStart(f, nominal_begin);
    if (!s.ok()) {
      r.io = s.TakeStatus();
      return r;
    }
    r.start = *s;
  }
  ByteBuffer& buf = ws.buf;
  size_t len = static_cast<size_t>(std::max<int64_t>(0, std::min(nominal_end, f.size()) - r.start));
  // Room for the segment plus its last row at the longest allowed length: the buffer never moves, so
  // dictionary views into it stay valid.
  size_t room = len + plan.opts->max_line_bytes + 2 + kScanPadding;
  if (buf.capacity() < room) {
    buf = ByteBuffer();
    buf.Reserve(room);
  }
  buf.Resize(len);
  if (len > 0) {
    r.io = f.ReadAt(r.start, buf.data(), len);
    if (!r.io.ok()) return r;
  }
  std::memset(buf.data() + len, 0, kScanPadding);
  bool eof = r.start + static_cast<int64_t>(len) == f.size();
  const char* end = buf.data() + len;
  const char* base = buf.data();
  CsvTokenizer tok(plan.delim, plan.opts->max_field_bytes, plan.opts->max_line_bytes);
  auto offset_of = [&](const char* p) { return r.start + (p - base); };
  const size_t ncols = plan.ncols, cap = plan.group_rows;
  const size_t max_field = plan.opts->max_field_bytes, max_line = plan.opts->max_line_bytes;
  constexpr size_t stride = kRefStride;
  std::vector<FieldRef>& refs = ws.refs;
  if (refs.size() < ncols * stride) refs.resize(ncols * stride);
  if (ws.row_start.size() < cap) ws.row_start.resize(cap);
  uint32_t* const row_start = ws.row_start.data();
  auto changed = [](SegmentResult& res) -> SegmentResult {
    res.io = Status::Internal("the input file changed during the import (a value no longer parses)");
    return std::move(res);
  };
  ws.cols.resize(ncols);
#if defined(__x86_64__)
  const CsvOptions::Simd simd = plan.opts->simd;
  const bool vector_numbers =
      HaveAvx512Dq() && (simd == CsvOptions::Simd::kAuto || simd == CsvOptions::Simd::kAvx512);
#else
  const bool vector_numbers = false;
#endif
  for (size_t c = 0; c < ncols; ++c) {
    ws.cols[c].Configure(&ws.arena, plan.decimal_comma, plan.rules[c].date, plan.missing, vector_numbers);
  }
  auto start_group = [&]() {
    for (size_t c = 0; c < ncols; ++c) {
      if (only != nullptr && !(*only)[c]) continue;
      ws.cols[c].Start(forced_types ? (*forced_types)[c] : plan.rules[c].type, cap);
    }
  };
  start_group();
  const char* p = base;   // the next row
  int64_t lines = 0;      // newlines consumed before p
  GroupSpan group{r.start, r.start, 0, 0};
  size_t converted = 0;  // rows of the current group already converted
  auto flush = [&]() {
    size_t n = static_cast<size_t>(group.rows);
    converted = 0;
    group.end = offset_of(p);
    std::vector<EncodedChunk> chunks(ncols);
    for (size_t c = 0; c < ncols; ++c) {
      if (only != nullptr && !(*only)[c]) continue;
      chunks[c] = ws.cols[c].Encode(n, plan.zstd_level);
    }
    r.groups.push_back(group);
    r.chunks.push_back(std::move(chunks));
    group = GroupSpan{group.end, group.end, 0, lines};
    start_group();
  };
  // Reads the fields of rows [k0, k1) of the current group (k1 - k0 <= kConvertBatchRows) again into
  // ws.rescan, the way they were read the first time. False if a row no longer reads the same (a bug).
  auto rescan_rows = [&](size_t k0, size_t k1) -> bool {
    if (ws.rescan.size() < ncols * stride) ws.rescan.resize(ncols * stride);
    FieldRef* out = ws.rescan.data();
    for (size_t k = k0; k < k1; ++k) {
      const char* at = base + (row_start[k] & ~kTokenizedRow);
      if ((row_start[k] & kTokenizedRow) == 0) {
        bool ascii = false;
        if (ScanSimpleRow(at, end, base, plan.delim, ncols, max_field, max_line, out, stride, k - k0, &ascii) ==
            nullptr) {
          return false;
        }
        continue;
      }
      tok.SetBuffer(at, end, eof);
      if (tok.NextRow() != CsvRowStatus::kRow || tok.row_start() != at || tok.fields().size() != ncols) return false;
      const auto& fields = tok.fields();
      for (size_t c = 0; c < ncols; ++c) {
        out[c * stride + (k - k0)] = {static_cast<uint32_t>(fields[c].data - base),
                                      fields[c].size | (fields[c].escaped ? kEscapedBit : 0)};
      }
    }
    return true;
  };
  // Converts field (row, c) of the current batch; when a value does not fit the column's current type, moves
  // the column to the next candidate type and converts its earlier rows of this group again (the rows of
  // earlier batches are read again from the buffer: their field references are gone).
  auto put = [&](size_t c, size_t row) -> bool {
    ColumnScratch& col = ws.cols[c];
    const FieldRef* cref = refs.data() + c * stride;
    const FieldRef& ref = cref[row - converted];
    if (col.Put(row, base + ref.offset, ref.len_flags & ~kEscapedBit, (ref.len_flags & kEscapedBit) != 0)) {
      return true;
    }
    if (forced_types != nullptr || plan.rules[c].fixed) return false;
    for (;;) {
      col.Start(NextCandidate(col.type), cap);
      bool fits = true;
      for (size_t k0 = 0; fits && k0 < converted; k0 += kConvertBatchRows) {
        const size_t k1 = std::min(converted, k0 + kConvertBatchRows);
        if (!rescan_rows(k0, k1)) return false;
        fits = col.PutRange(k0, k1, ws.rescan.data() + c * stride, k0, base) == k1;
      }
      if (fits && col.PutRange(converted, row + 1, cref, converted, base) == row + 1) return true;
    }
  };
  // Rows are tokenized first and converted in batches, column by column: each column's values and output
  // arrays are then walked sequentially, and the row bytes are still in cache.
  auto convert_pending = [&]() -> bool {
    size_t upto = static_cast<size_t>(group.rows);
    for (size_t c = 0; c < ncols; ++c) {
      if (only != nullptr && !(*only)[c]) continue;
      ColumnScratch& col = ws.cols[c];
      const FieldRef* cref = refs.data() + c * stride;
      for (size_t row = col.PutRange(converted, upto, cref, converted, base); row < upto;
           row = col.PutRange(row + 1, upto, cref, converted, base)) {
        if (!put(c, row)) return false;  // promotes the column's type, or fails for forced types
      }
    }
    converted = upto;
    return true;
  };
  // A bad row: fails the segment (kFail) or is recorded and dropped. Returns true to stop the segment.
  auto reject = [&](const char* row_begin, const char* row_end, int64_t line, std::string column,
                    std::string reason) -> bool {
    if (plan.policy == BadRowPolicy::kFail) {
      r.has_error = true;
      r.error = std::move(reason);
      r.error_column = std::move(column);
      r.error_line = line;
      return true;
    }
    BadRow b;
    b.line = line;
    b.reason = column.empty() ? std::move(reason) : "column '" + column + "': " + reason;
    if (plan.policy == BadRowPolicy::kQuarantine) {
      const char* e = row_end;
      if (e > row_begin && e[-1] == '\n') --e;
      if (e > row_begin && e[-1] == '\r') --e;
      b.raw.assign(row_begin, std::min<size_t>(static_cast<size_t>(e - row_begin), kQuarantineRawBytes));
    }
    r.bad.push_back(std::move(b));
    // Past the cap the import fails at the merge anyway; stop reading this segment.
    return static_cast<int64_t>(r.bad.size()) > plan.max_bad_rows;
  };
  std::string scratch;
  bool stop = false;
  // Runs of simple rows are read in bulk by the vectorized scanner, unless columns with forced types must be
  // checked row by row.
  const ScanRowsFn scan_rows = plan.checked.empty() ? PickRowScanner(plan.opts->simd) : nullptr;
  RowScan bulk{end, base + len, base, plan.delim, ncols, max_field, max_line, refs.data(), row_start};
  while (offset_of(p) < nominal_end) {
    if (scan_rows != nullptr) {
      bulk.end = end;
      const size_t in_batch = static_cast<size_t>(group.rows) - converted;
      const size_t room = std::min(kConvertBatchRows - in_batch, cap - static_cast<size_t>(group.rows));
      const size_t n = scan_rows(bulk, &p, in_batch, static_cast<size_t>(group.rows), room);
      if (n > 0) {
        lines += static_cast<int64_t>(n);
        r.rows += static_cast<int64_t>(n);
        group.rows += static_cast<int64_t>(n);
        if (n == room) {
          if (!convert_pending()) return changed(r);
          if (static_cast<size_t>(group.rows) == cap) flush();
        }
        continue;
      }
    }
    size_t row = static_cast<size_t>(group.rows);
    bool ascii = false;
    const char* row_begin = p;
    int64_t row_line = lines;
    size_t ragged_fields = ncols;  // != ncols: the row has that many fields
    // A row the bulk scanner already found not simple goes straight to the tokenizer.
    const char* next =
        scan_rows != nullptr && bulk.stopped_at_complex_row
            ? nullptr
            : ScanSimpleRow(p, end, base, plan.delim, ncols, max_field, max_line, refs.data(), stride,
                            row - converted, &ascii);
    const bool simple = next != nullptr;
    if (simple) {
      p = next;
      ++lines;
    } else {
      tok.SetBuffer(p, end, eof);
      int64_t before = tok.lines();
      CsvRowStatus st = tok.NextRow();
      if (st == CsvRowStatus::kRow) {
        const auto& fields = tok.fields();
        row_begin = tok.row_start();
        row_line = lines + (tok.row_line() - before);
        if (fields.size() != ncols) {
          ragged_fields = fields.size();
        } else {
          for (size_t c = 0; c < ncols; ++c) {
            refs[c * stride + row - converted] = {static_cast<uint32_t>(fields[c].data - base),
                                                  fields[c].size | (fields[c].escaped ? kEscapedBit : 0)};
          }
        }
        p = tok.pos();
        lines += tok.lines() - before;
      } else if (st == CsvRowStatus::kNeedMore) {
        // The last row continues past the segment: read more of the file behind the buffer.
        lines += tok.lines() - before;  // blank lines skipped before the unfinished row
        p = tok.row_start();
        int64_t have_end = r.start + static_cast<int64_t>(buf.size());
        size_t more = static_cast<size_t>(std::min<int64_t>(std::max<size_t>(size_t{1} << 20, buf.size() / 2),
                                                            f.size() - have_end));
        more = std::min(more, buf.capacity() - kScanPadding - buf.size());
        if (more == 0) {
          r.io = Status::Internal("CSV segment buffer exhausted");
          return r;
        }
        size_t old = buf.size();
        buf.Resize(old + more);
        r.io = f.ReadAt(have_end, buf.data() + old, more);
        if (!r.io.ok()) return r;
        std::memset(buf.data() + buf.size(), 0, kScanPadding);
        end = buf.data() + buf.size();
        eof = have_end + static_cast<int64_t>(more) == f.size();
        continue;
      } else if (st == CsvRowStatus::kEnd) {
        lines += tok.lines() - before;
        p = tok.pos();
        break;
      } else {
        r.has_error = true;
        r.error = tok.error_message();
        r.error_line = lines + (tok.error_line() - before);
        break;
      }
    }
    // The row is read; is it good? Structure, then text, then the hinted columns' values.
    if (ragged_fields != ncols) {
      stop = reject(row_begin, p, row_line, {}, RaggedMessage(ncols, ragged_fields));
      if (stop) break;
      continue;
    }
    if (!ascii) {
      int64_t bad = FindInvalidUtf8(row_begin, static_cast<size_t>(p - row_begin));
      if (bad >= 0) {
        const char* at = row_begin + bad;
        uint32_t at_off = static_cast<uint32_t>(at - base);
        std::string column;
        for (size_t c = 0; c < ncols; ++c) {
          const FieldRef& fr = refs[c * stride + row - converted];
          if (at_off >= fr.offset && at_off < fr.offset + (fr.len_flags & ~kEscapedBit)) {
            column = (*plan.names)[c];
            break;
          }
        }
        std::string msg;
        if (plan.encoding != TextEncoding::kUtf8) {
          msg = std::string("holds bytes that are not valid ") + TextEncodingName(plan.encoding) + " text";
        } else if (plan.exact_offsets) {
          const char* line_start = at;
          while (line_start > base && line_start[-1] != '\n') --line_start;
          msg = "invalid UTF-8 at byte " + std::to_string(at - line_start + 1) + " of the line (file offset " +
                std::to_string(offset_of(at)) + "); save the file as UTF-8";
        } else {
          msg = "invalid UTF-8 on this line; save the file as UTF-8";
        }
        stop = reject(row_begin, p, row_line + std::count(row_begin, at, '\n'), std::move(column), std::move(msg));
        if (stop) break;
        continue;
      }
    }
    bool hint_broken = false;
    for (size_t c : plan.checked) {
      const FieldRef& fr = refs[c * stride + row - converted];
      std::string_view raw(base + fr.offset, fr.len_flags & ~kEscapedBit);
      if ((fr.len_flags & kEscapedBit) != 0) {
        raw = CsvTokenizer::Unescape(CsvField{raw.data(), static_cast<uint32_t>(raw.size()), true, true}, &scratch);
      }
      std::string_view v = TrimBlanks(raw);
      if (ValueFitsRule(plan.rules[c], v, plan.decimal_comma, *plan.missing)) continue;
      hint_broken = true;
      stop = reject(row_begin, p, row_line + std::count(row_begin, base + fr.offset, '\n'), (*plan.names)[c],
                    HintViolation(plan.rules[c], v));
      break;
    }
    if (hint_broken) {
      if (stop) break;
      continue;
    }
    row_start[row] = static_cast<uint32_t>(row_begin - base) | (simple ? 0 : kTokenizedRow);
    ++r.rows;
    ++group.rows;
    if (static_cast<size_t>(group.rows) - converted == kConvertBatchRows || static_cast<size_t>(group.rows) == cap) {
      if (!convert_pending()) return changed(r);
      if (static_cast<size_t>(group.rows) == cap) flush();
    }
  }
  r.end_pos = offset_of(p);
  r.lines = lines;
  if (r.has_error || stop) return r;  // the import fails: skip converting the rest
  if (!convert_pending()) return changed(r);
  if (group.rows > 0) flush();
  return r;
}

// The type of a column that holds chunks of types a and b (nullopt: no values seen yet).
std::optional<ColumnType> JoinTypes(std::optional<ColumnType> a, std::optional<ColumnType> b) {
  if (!a) return b;
  if (!b || *a == *b) return a;
  auto numeric = [](ColumnType t) { return t == ColumnType::kInt64 || t == ColumnType::kFloat64; };
  if (numeric(*a) && numeric(*b)) return ColumnType::kFloat64;
  return ColumnType::kString;
}

// Wraps a worker so that allocation failures and other exceptions become a Status in the result.
template <class R, class Fn>
R Guarded(const Fn& fn, Status R::*status_member) {
  try {
    return fn();
  } catch (const std::bad_alloc&) {
    R r;
    r.*status_member = Status::ResourceExhausted("out of memory while importing");
    return r;
  } catch (const std::exception& e) {
    R r;
    r.*status_member = Status::Internal(std::string("import worker failed: ") + e.what());
    return r;
  }
}

Status LineError(int64_t line, const std::string& message) {
  return Status::InvalidArgument("line " + std::to_string(line) + ": " + message)
      .WithDetail(ErrorDetail::Line(line, message));
}

Status CellError(int64_t line, const std::string& column, const std::string& message) {
  if (column.empty()) return LineError(line, message);
  return Status::InvalidArgument("line " + std::to_string(line) + ", column '" + column + "': " + message)
      .WithDetail(ErrorDetail::Cell(line, column, message));
}

Status FieldError(const std::string& field, const std::string& problem) {
  return Status::InvalidArgument(field + " " + problem).WithDetail(ErrorDetail::Field(field, problem));
}

// A file created next to a final path (mkstemp), removed on destruction unless committed by a rename.
class TempFile {
 public:
  TempFile() = default;
  TempFile(const TempFile&) = delete;
  TempFile& operator=(const TempFile&) = delete;
  ~TempFile() {
    if (fd_ >= 0) ::close(fd_);
    if (!path_.empty()) ::unlink(path_.c_str());
  }
  Status Create(const std::string& prefix) {
    std::string t = prefix + "XXXXXX";
    fd_ = ::mkstemp(t.data());
    if (fd_ < 0) return Status::Internal("cannot create a temporary file " + t + ": " + std::strerror(errno));
    path_ = t;
    return Status::Ok();
  }
  bool open() const { return !path_.empty(); }
  const std::string& path() const { return path_; }
  Status Write(const char* p, size_t n) {
    while (n > 0) {
      ssize_t w = ::write(fd_, p, n);
      if (w < 0) {
        if (errno == EINTR) continue;
        return Status::Internal("writing " + path_ + ": " + std::strerror(errno));
      }
      p += w;
      n -= static_cast<size_t>(w);
    }
    return Status::Ok();
  }
  Status Close(bool sync) {
    if (fd_ < 0) return Status::Ok();
    int fd = fd_;
    fd_ = -1;
    if (sync && ::fsync(fd) != 0) {
      ::close(fd);
      return Status::Internal("fsync " + path_ + ": " + std::strerror(errno));
    }
    if (::close(fd) != 0) return Status::Internal("closing " + path_ + ": " + std::strerror(errno));
    return Status::Ok();
  }
  // Moves the (closed) file to `dest`; it is then no longer removed.
  Status Commit(const std::string& dest) {
    if (::rename(path_.c_str(), dest.c_str()) != 0) {
      return Status::Internal("renaming " + path_ + " to " + dest + ": " + std::strerror(errno));
    }
    path_.clear();
    return Status::Ok();
  }

 private:
  int fd_ = -1;
  std::string path_;
};

// Rewrites CSV quoted with `quote` (not '"') as RFC 4180 text quoted with '"', streamed. Every byte that is
// not a quote stays, so line breaks stay on their lines: 'a''b' -> "a'b", 'say "x"' -> "say ""x""", and an
// unquoted field that starts with '"' is wrapped in quotes so the '"' stays literal. Malformed input stays
// malformed in the same line (an unclosed quote stays unclosed; text after a closing quote stays there).
class Requoter {
 public:
  Requoter(char delim, char quote) : delim_(delim), quote_(quote) {}
  void Feed(std::string_view in, std::string* out) {
    for (char c : in) Put(c, out);
  }
  void Finish(std::string* out) {
    if (state_ == State::kWrapped) {
      out->push_back('"');
      if (pending_cr_) out->push_back('\r');
      pending_cr_ = false;
    } else if (state_ == State::kQuoteInQuoted) {
      out->push_back('"');
    }
    state_ = State::kFieldStart;
  }

 private:
  enum class State : uint8_t { kFieldStart, kUnquoted, kWrapped, kQuoted, kQuoteInQuoted };
  void Put(char c, std::string* out) {
    switch (state_) {
      case State::kFieldStart:
        if (c == quote_) {
          out->push_back('"');
          state_ = State::kQuoted;
        } else if (c == '"') {
          out->append("\"\"\"");
          state_ = State::kWrapped;
        } else {
          out->push_back(c);
          if (c != delim_ && c != '\n') state_ = State::kUnquoted;
        }
        return;
      case State::kUnquoted:
        out->push_back(c);
        if (c == delim_ || c == '\n') state_ = State::kFieldStart;
        return;
      case State::kWrapped:
        if (pending_cr_) {
          pending_cr_ = false;
          if (c == '\n') {
            out->append("\"\r\n");
            state_ = State::kFieldStart;
            return;
          }
          out->push_back('\r');
        }
        if (c == '\r') {
          pending_cr_ = true;
        } else if (c == '"') {
          out->append("\"\"");
        } else if (c == delim_ || c == '\n') {
          out->push_back('"');
          out->push_back(c);
          state_ = State::kFieldStart;
        } else {
          out->push_back(c);
        }
        return;
      case State::kQuoted:
        if (c == quote_) {
          state_ = State::kQuoteInQuoted;
        } else if (c == '"') {
          out->append("\"\"");
        } else {
          out->push_back(c);
        }
        return;
      case State::kQuoteInQuoted:
        if (c == quote_) {  // a doubled quote: one literal quote character
          out->push_back(c);
          state_ = State::kQuoted;
          return;
        }
        out->push_back('"');  // the closing quote
        out->push_back(c);
        state_ = (c == delim_ || c == '\n') ? State::kFieldStart : State::kUnquoted;
        return;
    }
  }

  char delim_, quote_;
  State state_ = State::kFieldStart;
  bool pending_cr_ = false;
};

bool IsFieldBoundary(char c) { return c == ',' || c == '\t' || c == ';' || c == '|' || c == '\n' || c == '\r'; }

// Picks the quote character: the one of '"' and '\'' that more often encloses a whole field in the sample.
char DetectQuote(std::string_view s) {
  constexpr size_t kWindow = 1024;  // longest quoted field considered
  const char quotes[2] = {'"', '\''};
  int64_t counts[2] = {0, 0};
  for (int k = 0; k < 2; ++k) {
    char q = quotes[k];
    for (size_t i = 0; i < s.size(); ++i) {
      if (s[i] != q || (i > 0 && !IsFieldBoundary(s[i - 1]))) continue;
      size_t j = i + 1;
      bool closed = false;
      for (; j < s.size() && j < i + kWindow; ++j) {
        if (s[j] != q) continue;
        if (j + 1 < s.size() && s[j + 1] == q) {
          ++j;
          continue;
        }
        closed = true;
        break;
      }
      if (closed && (j + 1 == s.size() || IsFieldBoundary(s[j + 1]))) {
        ++counts[k];
        i = j;
      }
    }
  }
  return counts[1] > counts[0] ? '\'' : '"';
}

// Writes the input as UTF-8 with '"' quoting into `out` (decoding from `encoding` and/or requoting),
// streamed in 1 MB blocks. A UTF-8 BOM is dropped; line breaks stay where they are.
Status NormalizeInput(const InputFile& in, int64_t skip, TextEncoding encoding, Utf8Decoder::OnInvalid on_invalid,
                      bool requote, char delim, char quote, TempFile* out, const std::function<void(double)>& report,
                      const std::function<bool()>& cancelled) {
  std::unique_ptr<Utf8Decoder> decoder;
  if (encoding != TextEncoding::kUtf8) {
    ASSIGN_OR_RETURN(decoder, Utf8Decoder::Create(encoding, on_invalid));
  }
  Requoter requoter(delim, quote);
  constexpr size_t kBlock = 1 << 20;
  std::unique_ptr<char[]> block(new char[kBlock]);
  std::string decoded, requoted;
  bool first = true;
  for (int64_t off = skip; off < in.size();) {
    if (cancelled()) return Status::Cancelled("import cancelled");
    size_t n = static_cast<size_t>(std::min<int64_t>(kBlock, in.size() - off));
    RETURN_IF_ERROR(in.ReadAt(off, block.get(), n));
    off += static_cast<int64_t>(n);
    bool last = off == in.size();
    std::string_view text(block.get(), n);
    if (decoder) {
      decoded.clear();
      RETURN_IF_ERROR(decoder->Decode(block.get(), n, last, &decoded));
      text = decoded;
    }
    if (first && !text.empty()) {
      if (text.size() >= 3 && std::memcmp(text.data(), "\xEF\xBB\xBF", 3) == 0) text.remove_prefix(3);
      first = false;
    }
    if (requote) {
      requoted.clear();
      requoter.Feed(text, &requoted);
      if (last) requoter.Finish(&requoted);
      text = requoted;
    }
    RETURN_IF_ERROR(out->Write(text.data(), text.size()));
    report(static_cast<double>(off) / static_cast<double>(in.size()));
  }
  return out->Close(false);
}

// Bad rows of a kQuarantine import, streamed as JSON lines to a temp file next to quarantine_path; created
// at the first bad row.
class QuarantineWriter {
 public:
  explicit QuarantineWriter(std::string path) : path_(std::move(path)) {}
  Status Add(const BadRow& b) {
    if (!file_.open()) RETURN_IF_ERROR(file_.Create(path_ + ".tmp-"));
    Json j = {{"line", b.line}, {"reason", b.reason}, {"raw", b.raw}};
    buf_ += j.dump(-1, ' ', false, Json::error_handler_t::replace);
    buf_.push_back('\n');
    if (buf_.size() >= (size_t{1} << 20)) return Flush();
    return Status::Ok();
  }
  bool empty() const { return !file_.open(); }
  // Flushes and syncs; then Commit renames it into place.
  Status Seal() {
    if (!file_.open()) return Status::Ok();
    RETURN_IF_ERROR(Flush());
    return file_.Close(true);
  }
  Status Commit() { return file_.open() ? file_.Commit(path_) : Status::Ok(); }

 private:
  Status Flush() {
    Status st = file_.Write(buf_.data(), buf_.size());
    buf_.clear();
    return st;
  }
  std::string path_;
  TempFile file_;
  std::string buf_;
};

struct Header {
  std::vector<std::string> names;
  int64_t data_start = 0;
  int64_t lines = 0;  // newlines before data_start
  bool present = true;
};

// Does a column named `name` look like a default name column_K (1 <= K <= ncols)?
bool IsDefaultColumnName(const std::string& name, size_t ncols) {
  if (name.rfind("column_", 0) != 0 || name.size() == 7 || name.size() > 17) return false;
  size_t k = 0;
  for (size_t i = 7; i < name.size(); ++i) {
    if (name[i] < '0' || name[i] > '9') return false;
    k = k * 10 + static_cast<size_t>(name[i] - '0');
  }
  return k >= 1 && k <= ncols && name[7] != '0';
}

// The header decision of HeaderMode::kAuto (see csv_import.h). `rows` are the sample rows after the first.
bool LooksLikeHeader(const std::vector<std::string>& first, const std::vector<std::vector<std::string>>& rows,
                     const SchemaHints& hints, bool decimal_comma, const MissingTokens& missing) {
  // Hints name columns: their names decide when they are the first row's fields, or column_K names.
  std::vector<std::string> hinted;
  for (const auto& [c, t] : hints.types) hinted.push_back(c);
  for (const auto& [c, f] : hints.date_formats) hinted.push_back(c);
  bool all_default = !hinted.empty();
  for (const auto& name : hinted) {
    if (std::find(first.begin(), first.end(), name) != first.end()) return true;
    all_default = all_default && IsDefaultColumnName(name, first.size());
  }
  if (all_default) return false;
  int64_t votes = 0;
  for (size_t c = 0; c < first.size(); ++c) {
    std::optional<ColumnType> below;
    size_t len = std::string::npos;
    bool same_len = true;
    int64_t values = 0;
    for (const auto& row : rows) {
      if (row.size() != first.size()) continue;
      std::string_view v = TrimBlanks(row[c]);
      auto t = InferValueType(v, decimal_comma, missing);
      if (!t) continue;
      below = JoinTypes(below, t);
      ++values;
      if (len == std::string::npos) len = v.size();
      else if (len != v.size()) same_len = false;
    }
    std::string_view v = TrimBlanks(first[c]);
    auto tv = InferValueType(v, decimal_comma, missing);
    if (!below || !tv) continue;
    if (*below != ColumnType::kString) {
      votes += JoinTypes(below, tv) == ColumnType::kString ? 1 : -1;
    } else if (same_len && values >= 2 && v.size() != len) {
      votes += 1;
    }
  }
  return votes >= 0;
}

Result<Header> ReadHeader(const InputFile& f, const CsvOptions& opts, char delim, const SchemaHints& hints,
                          bool decimal_comma, const MissingTokens& missing, TextEncoding encoding) {
  if (f.size() == 0) return LineError(1, "the file is empty; expected a header row and data rows");
  ByteBuffer buf;
  size_t len = static_cast<size_t>(std::min<int64_t>(f.size(), 1 << 20));
  buf.Resize(len);
  RETURN_IF_ERROR(f.ReadAt(0, buf.data(), len));
  size_t bom = (len >= 3 && std::memcmp(buf.data(), "\xEF\xBB\xBF", 3) == 0) ? 3 : 0;
  Header h;
  CsvTokenizer tok(delim, opts.max_field_bytes, opts.max_line_bytes);
  tok.SetBuffer(buf.data() + bom, buf.data() + len, static_cast<int64_t>(len) == f.size());
  for (;;) {
    CsvRowStatus st = tok.NextRow();
    if (st == CsvRowStatus::kRow) break;
    if (st == CsvRowStatus::kEnd) return LineError(1, "the file is empty; expected a header row and data rows");
    if (st == CsvRowStatus::kError) return LineError(tok.error_line() + 1, tok.error_message());
    size_t row_off = static_cast<size_t>(tok.row_start() - buf.data());
    size_t old = buf.size();
    size_t more = static_cast<size_t>(std::min<int64_t>(static_cast<int64_t>(old), f.size() - static_cast<int64_t>(old)));
    buf.Resize(old + more);
    RETURN_IF_ERROR(f.ReadAt(static_cast<int64_t>(old), buf.data() + old, more));
    tok.SetBuffer(buf.data() + row_off, buf.data() + buf.size(), static_cast<int64_t>(buf.size()) == f.size());
  }
  int64_t first_line = tok.row_line();
  int64_t first_start = tok.row_start() - buf.data();
  int64_t after_pos = tok.pos() - buf.data();
  int64_t after_lines = tok.lines();
  std::string scratch;
  std::vector<std::string> first;
  for (const CsvField& field : tok.fields()) first.emplace_back(CsvTokenizer::Unescape(field, &scratch));
  bool present = opts.header != HeaderMode::kNo;
  if (opts.header == HeaderMode::kAuto) {
    // Up to kHeaderSampleRows rows that are already in the buffer; a malformed one ends the sample (the import reports it).
    std::vector<std::vector<std::string>> sample;
    while (sample.size() < kHeaderSampleRows && tok.NextRow() == CsvRowStatus::kRow) {
      std::vector<std::string> row;
      for (const CsvField& field : tok.fields()) row.emplace_back(CsvTokenizer::Unescape(field, &scratch));
      sample.push_back(std::move(row));
    }
    present = LooksLikeHeader(first, sample, hints, decimal_comma, missing);
  }
  h.present = present;
  if (!present) {
    for (size_t i = 0; i < first.size(); ++i) h.names.push_back("column_" + std::to_string(i + 1));
    h.data_start = first_start;
    h.lines = first_line;
    return h;
  }
  int64_t header_line = first_line + 1;
  int64_t bad = FindInvalidUtf8(buf.data() + first_start, static_cast<size_t>(after_pos - first_start));
  if (bad >= 0) {
    if (encoding != TextEncoding::kUtf8) {
      return LineError(header_line, std::string("the header holds bytes that are not valid ") +
                                        TextEncodingName(encoding) + " text");
    }
    return LineError(header_line, "invalid UTF-8 in the header at byte " + std::to_string(bad + 1) +
                                      "; save the file as UTF-8");
  }
  std::unordered_map<std::string, size_t> seen;
  for (size_t i = 0; i < first.size(); ++i) {
    std::string& name = first[i];
    if (TrimBlanks(name).empty()) {
      return LineError(header_line, "column " + std::to_string(i + 1) + " of the header has an empty name");
    }
    auto [it, inserted] = seen.emplace(name, i);
    if (!inserted) {
      std::string msg = "duplicate column name '" + name + "' (columns " + std::to_string(it->second + 1) + " and " +
                        std::to_string(i + 1) + " of the header)";
      return Status::InvalidArgument(msg).WithDetail(ErrorDetail::Column(name, msg));
    }
    h.names.push_back(std::move(name));
  }
  h.data_start = after_pos;
  h.lines = after_lines;
  return h;
}

// Checks the hints against the options and the file's columns and turns them into per-column rules.
// `formats` keeps the compiled date formats the rules point into.
Status BuildRules(const SchemaHints& hints, const std::vector<std::string>& names,
                  const std::map<std::string, DateFormat>& formats, ImportPlan* plan) {
  auto known = [&](const std::string& col) { return std::find(names.begin(), names.end(), col) != names.end(); };
  auto list = [&]() {
    std::string s;
    for (size_t i = 0; i < names.size() && i < 20; ++i) s += (i ? ", " : "") + names[i];
    if (names.size() > 20) s += ", ...";
    return s;
  };
  for (const auto& [col, type] : hints.types) {
    if (!known(col)) return FieldError("hints.types." + col, "names no column of the file (columns: " + list() + ")");
  }
  for (const auto& [col, fmt] : hints.date_formats) {
    if (!known(col)) {
      return FieldError("hints.date_formats." + col, "names no column of the file (columns: " + list() + ")");
    }
  }
  plan->rules.assign(names.size(), ColumnRule{});
  for (size_t c = 0; c < names.size(); ++c) {
    ColumnRule& rule = plan->rules[c];
    auto t = hints.types.find(names[c]);
    if (t != hints.types.end()) rule.fixed = true, rule.type = t->second;
    auto d = formats.find(names[c]);
    if (d != formats.end()) rule.fixed = true, rule.type = ColumnType::kDatetime, rule.date = &d->second;
    if (rule.fixed && rule.type != ColumnType::kString) plan->checked.push_back(c);
  }
  return Status::Ok();
}

Result<ImportResult> Import(const std::string& input_path, const std::string& output_path, const CsvOptions& opts,
                            const ImportOptions& import, const ProgressFn& progress, const CancelFn& cancel) {
  // Options first: they are the caller's mistakes, reported before the file is read.
  if (import.bad_rows == BadRowPolicy::kQuarantine && import.quarantine_path.empty()) {
    return FieldError("quarantine_path", "is required when bad_rows is quarantine");
  }
  if (import.max_bad_rows < 0) return FieldError("max_bad_rows", "must not be negative");
  if (opts.quote != 0 && opts.quote != '"' && opts.quote != '\'') {
    return FieldError("quote", "must be '\"' or '\\'' (or empty to detect)");
  }
  std::optional<TextEncoding> forced_encoding;
  if (!opts.encoding.empty()) {
    ASSIGN_OR_RETURN(forced_encoding, ParseTextEncoding(opts.encoding));
  }
  const SchemaHints& hints = import.hints;
  std::map<std::string, DateFormat> formats;
  for (const auto& [col, pattern] : hints.date_formats) {
    auto f = DateFormat::Compile(pattern);
    if (!f.ok()) return FieldError("hints.date_formats." + col, f.status().message());
    auto t = hints.types.find(col);
    if (t != hints.types.end() && t->second != ColumnType::kDatetime) {
      return FieldError("hints.date_formats." + col, std::string("needs the column's type to be datetime, not ") +
                                                         ColumnTypeName(t->second) + " (hints.types." + col + ")");
    }
    formats.emplace(col, std::move(*f));
  }
  MissingTokens missing(hints.missing_tokens);
  const bool decimal_comma = hints.decimal_comma;

  InputFile original;
  RETURN_IF_ERROR(original.Open(input_path));
  const int64_t size = original.size();
  if (size == 0) return LineError(1, "the file is empty; expected a header row and data rows");
  auto cancelled = [&] { return cancel && cancel(); };
  auto report = [&](double f) {
    if (progress) progress(std::clamp(f, 0.0, 1.0));
  };

  // Encoding, quote and delimiter, from the first bytes.
  const size_t sample_bytes = static_cast<size_t>(std::min<int64_t>(size, kEncodingSampleBytes));
  std::unique_ptr<char[]> sample_buf(new char[sample_bytes]);
  RETURN_IF_ERROR(original.ReadAt(0, sample_buf.get(), sample_bytes));
  std::string_view sample(sample_buf.get(), sample_bytes);
  if (HasUtf16Or32Bom(sample)) {
    return LineError(1, "the file is UTF-16 or UTF-32 (it starts with a byte order mark); save it as UTF-8");
  }
  TextEncoding encoding = forced_encoding ? *forced_encoding
                                          : DetectTextEncoding(sample, static_cast<int64_t>(sample.size()) == size);
  size_t bom = (encoding == TextEncoding::kUtf8 && sample.substr(0, 3) == "\xEF\xBB\xBF") ? 3 : 0;
  constexpr size_t kSniffBytes = 64 << 10;
  std::string decoded_sample;
  std::string_view text = sample.substr(bom, kSniffBytes);
  if (encoding != TextEncoding::kUtf8) {
    ASSIGN_OR_RETURN(auto dec, Utf8Decoder::Create(encoding, Utf8Decoder::OnInvalid::kMark));
    RETURN_IF_ERROR(dec->Decode(sample.data(), std::min(sample.size(), kSniffBytes), false, &decoded_sample));
    text = decoded_sample;
    if (text.size() >= 3 && text.substr(0, 3) == "\xEF\xBB\xBF") text.remove_prefix(3);
  }
  char quote = opts.quote != 0 ? opts.quote : DetectQuote(text);
  char delim = opts.delimiter;
  if (delim == 0) {
    std::string probe;
    const bool swap = quote != '"';
    if (swap || decimal_comma) {
      // DetectDelimiter knows '"' as the quote: swap the two quote characters so it skips quoted text;
      // with decimal commas, ',' cannot be the delimiter.
      probe.assign(text);
      for (char& ch : probe) {
        if (swap && ch == '\'') ch = '"';
        else if (swap && ch == '"') ch = '\'';
        else if (decimal_comma && ch == ',') ch = ' ';
      }
      text = probe;
    }
    delim = DetectDelimiter(text);
    if (decimal_comma && delim == ',') delim = ';';
  }
  if (delim == '"' || delim == '\'' || delim == '\n' || delim == '\r') {
    return FieldError("delimiter", "cannot be a quote or a line break");
  }
  if (decimal_comma && delim == ',') {
    return FieldError("hints.decimal_comma", "needs a delimiter other than ',' (the comma is the decimal mark)");
  }
  text = {};
  decoded_sample = std::string();
  sample = {};
  sample_buf.reset();

  // Non-UTF-8 or single-quoted input: read a normalized copy instead.
  const bool requote = quote != '"';
  double prep_share = 0;
  TempFile normalized;
  InputFile normalized_file;
  const InputFile* file = &original;
  if (encoding != TextEncoding::kUtf8 || requote) {
    prep_share = 0.3;
    RETURN_IF_ERROR(normalized.Create(output_path + ".text-"));
    Utf8Decoder::OnInvalid on_invalid = import.bad_rows == BadRowPolicy::kFail ? Utf8Decoder::OnInvalid::kFail
                                                                              : Utf8Decoder::OnInvalid::kMark;
    RETURN_IF_ERROR(NormalizeInput(original, static_cast<int64_t>(bom), encoding, on_invalid, requote, delim, quote,
                                   &normalized, [&](double f) { report(prep_share * f); }, cancelled));
    RETURN_IF_ERROR(normalized_file.Open(normalized.path()));
    file = &normalized_file;
  }

  ASSIGN_OR_RETURN(Header header, ReadHeader(*file, opts, delim, hints, decimal_comma, missing, encoding));
  ImportPlan plan;
  plan.file = file;
  plan.opts = &opts;
  plan.delim = delim;
  plan.ncols = header.names.size();
  plan.data_start = header.data_start;
  plan.names = &header.names;
  plan.decimal_comma = decimal_comma;
  plan.missing = &missing;
  plan.policy = import.bad_rows;
  plan.max_bad_rows = import.max_bad_rows;
  plan.encoding = encoding;
  plan.exact_offsets = file == &original;
  plan.zstd_level = import.zstd_level != 1 ? import.zstd_level : opts.zstd_level;
  RETURN_IF_ERROR(BuildRules(hints, header.names, formats, &plan));
  // At most ~8M buffered fields per row group, so very wide files use shorter groups.
  plan.group_rows = static_cast<size_t>(
      std::clamp<int64_t>(static_cast<int64_t>((size_t{8} << 20) / plan.ncols), 1, kLcolRowsPerGroup));
  int threads = import.num_threads > 0 ? import.num_threads : opts.num_threads;
  if (threads <= 0) threads = static_cast<int>(std::clamp(std::thread::hardware_concurrency(), 1u, 16u));
  const int64_t file_size = file->size();
  const int64_t body = file_size - plan.data_start;
  ASSIGN_OR_RETURN(auto writer, DatasetWriter::Create(output_path, header.names));
  std::optional<QuarantineWriter> quarantine;
  if (import.bad_rows == BadRowPolicy::kQuarantine) quarantine.emplace(import.quarantine_path);

  // One pass: segments are tokenized, validated, converted and compressed in parallel, each from the first
  // line start after its nominal offset; results are joined in file order on this thread. A segment whose
  // start guess was wrong (a quoted field spans the boundary) is redone from the true row boundary.
  // Segments are at most segment_bytes; towards the end of the file they shrink (each takes 1/(2 * threads)
  // of what is left, down to a quarter of segment_bytes) so the threads run out of work at nearly the same
  // time instead of one finishing a whole segment alone.
  const int64_t seg_max = static_cast<int64_t>(std::max<size_t>(opts.segment_bytes, 1024));
  const int64_t seg_min = std::max<int64_t>(1024, seg_max / 4);
  std::vector<int64_t> bounds{plan.data_start};  // nominal segment starts, then the file size
  for (int64_t pos = plan.data_start; pos < file_size;) {
    const int64_t left = file_size - pos;
    int64_t step = threads > 1 ? std::clamp<int64_t>(left / (2 * threads), seg_min, seg_max) : seg_max;
    if (left - step < seg_min / 2) step = left;
    pos += step;
    bounds.push_back(pos);
  }
  const size_t nseg = bounds.size() - 1;
  auto nominal = [&](size_t k) { return k >= nseg ? file_size : bounds[k]; };
  std::vector<std::optional<ColumnType>> joined(plan.ncols);
  std::vector<GroupSpan> groups;
  int64_t rows = 0;
  int64_t bad_rows = 0;
  int64_t expected_start = plan.data_start;
  int64_t line_base = header.lines;  // newlines before expected_start
  WorkspacePool pool;
  auto run_segment = [&](int64_t known_start, int64_t begin, int64_t end, const std::vector<ColumnType>* forced,
                         const std::vector<uint8_t>* only) {
    return Guarded<SegmentResult>(
        [&] {
          std::unique_ptr<Workspace> ws = pool.Take();
          SegmentResult r = ProcessSegment(plan, *ws, known_start, begin, end, forced, only);
          pool.Give(std::move(ws));
          return r;
        },
        &SegmentResult::io);
  };
  auto process = [&](size_t k) {
    return run_segment(k == 0 ? plan.data_start : -1, nominal(k), nominal(k + 1), nullptr, nullptr);
  };
  Status st = RunOrdered<SegmentResult>(nseg, threads, static_cast<size_t>(threads) + 1, process,
                                        [&](size_t k, SegmentResult& r) -> Status {
    if (cancelled()) return Status::Cancelled("import cancelled");
    if (r.io.ok() && r.start != expected_start) {
      r = run_segment(expected_start, nominal(k), nominal(k + 1), nullptr, nullptr);
    }
    // Bad rows come before the segment's error in file order (a segment stops at its error).
    for (BadRow& b : r.bad) {
      b.line += line_base + 1;
      if (++bad_rows > plan.max_bad_rows) {
        return LineError(b.line, "more than max_bad_rows (" + std::to_string(plan.max_bad_rows) +
                                     ") bad rows; this one: " + b.reason);
      }
      if (quarantine) RETURN_IF_ERROR(quarantine->Add(b));
    }
    if (r.has_error) return CellError(line_base + r.error_line + 1, r.error_column, r.error);
    RETURN_IF_ERROR(r.io);
    for (size_t g = 0; g < r.groups.size(); ++g) {
      for (size_t c = 0; c < plan.ncols; ++c) {
        const EncodedChunk& ch = r.chunks[g][c];
        if (!ch.all_null) joined[c] = JoinTypes(joined[c], ch.physical);
      }
      RETURN_IF_ERROR(writer->AppendRowGroup(r.groups[g].rows, r.chunks[g]));
      GroupSpan span = r.groups[g];
      span.first_line += line_base + 1;
      groups.push_back(span);
    }
    rows += r.rows;
    line_base += r.lines;
    expected_start = r.end_pos;
    report(prep_share + (1 - prep_share) * 0.95 * static_cast<double>(expected_start - plan.data_start) /
                            static_cast<double>(std::max<int64_t>(body, 1)));
    return Status::Ok();
  });
  RETURN_IF_ERROR(st);
  if (rows == 0) {
    if (bad_rows > 0) {
      return LineError(line_base + 1, "no rows left: all " + Plural(bad_rows, "data row") + " are bad");
    }
    return LineError(line_base + 1, header.present ? "the file has a header row but no data rows"
                                                   : "the file has no data rows");
  }

  std::vector<ColumnType> types(plan.ncols);
  for (size_t c = 0; c < plan.ncols; ++c) {
    types[c] = plan.rules[c].fixed ? plan.rules[c].type : joined[c].value_or(ColumnType::kString);
  }

  // Row groups whose chunks were encoded in a narrower type than the column's final one (say integers in
  // a column that later turned out to hold text) are converted again from the input.
  for (size_t g = 0; g < groups.size(); ++g) {
    std::vector<uint8_t> redo(plan.ncols, 0);
    bool any = false;
    for (size_t c = 0; c < plan.ncols; ++c) {
      if (!writer->ChunkFits(g, c, types[c])) redo[c] = 1, any = true;
    }
    if (!any) continue;
    if (cancelled()) return Status::Cancelled("import cancelled");
    SegmentResult again = run_segment(groups[g].begin, groups[g].begin, groups[g].end, &types, &redo);
    RETURN_IF_ERROR(again.io);
    if (again.has_error || again.groups.size() != 1 || again.groups[0].rows != groups[g].rows) {
      return Status::Internal("the input file changed during the import (near line " +
                              std::to_string(groups[g].first_line) + ")");
    }
    for (size_t c = 0; c < plan.ncols; ++c) {
      if (redo[c]) RETURN_IF_ERROR(writer->ReplaceChunk(g, c, std::move(again.chunks[0][c])));
    }
  }
  if (cancelled()) return Status::Cancelled("import cancelled");
  if (quarantine) RETURN_IF_ERROR(quarantine->Seal());
  ASSIGN_OR_RETURN(int64_t out_bytes, writer->Finish(types));
  if (quarantine) {
    Status moved = quarantine->Commit();
    if (!moved.ok()) {
      ::unlink(output_path.c_str());  // all or nothing
      return moved;
    }
  }
  ImportResult result;
  result.rows = rows;
  result.input_bytes = size;
  result.output_bytes = out_bytes;
  result.bad_rows = bad_rows;
  result.encoding = TextEncodingName(encoding);
  for (size_t c = 0; c < plan.ncols; ++c) {
    result.columns.push_back(ColumnInfo{header.names[c], types[c], writer->stats()[c].missing});
  }
  report(1.0);
  return result;
}

}  // namespace

Result<ImportResult> ImportCsvFile(const std::string& input_path, const std::string& output_path,
                                   const CsvOptions& options, const ImportOptions& import, const ProgressFn& progress,
                                   const CancelFn& cancel) {
  if (options.max_field_bytes == 0 || options.max_line_bytes == 0) {
    return Status::InvalidArgument("max_field_bytes and max_line_bytes must be positive");
  }
  // Offsets into a segment buffer (segment plus its longest last row) are kept in 31 bits.
  if (options.segment_bytes > (size_t{1} << 30) || options.max_line_bytes > (size_t{1} << 30)) {
    return Status::InvalidArgument("segment_bytes and max_line_bytes must be at most 1 GiB");
  }
  try {
    return Import(input_path, output_path, options, import, progress, cancel);
  } catch (const std::bad_alloc&) {
    return Status::ResourceExhausted("out of memory while importing " + input_path);
  } catch (const std::exception& e) {
    return Status::Internal(std::string("import failed: ") + e.what());
  }
}

Result<ImportResult> ImportCsvFile(const std::string& input_path, const std::string& output_path,
                                   const CsvOptions& options, const ProgressFn& progress, const CancelFn& cancel) {
  return ImportCsvFile(input_path, output_path, options, ImportOptions{}, progress, cancel);
}

}  // namespace lathe
