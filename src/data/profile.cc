#include "data/profile.h"

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <limits>
#include <memory>
#include <mutex>
#include <new>
#include <thread>
#include <unordered_map>
#include <utility>

#include "common/memory.h"
#include "data/checksum.h"
#include "data/lcol_format.h"
#include "data/sketches.h"
#include "data/table_ops.h"
#include "data/value_parse.h"

namespace lathe {

namespace {

constexpr int64_t kGroupRows = kLcolRowsPerGroup;
constexpr size_t kRowSetMaxEntries = size_t{1} << 20;
constexpr size_t kMaxCramerColumns = 30;
constexpr int kMaxCategories = 50;
// Contingency tables have one more row and column, for rows where that side is missing or not a category:
// every row is counted without a branch, and the extra row and column are ignored.
constexpr int kCellStride = kMaxCategories + 1;
constexpr int64_t kPatternCheckLimit = 200000;  // string values examined for semantic kinds, per worker
constexpr uint64_t kSignBit = uint64_t{1} << 63;
constexpr uint64_t kMissingHash = 0x6d697373696e6721ULL;
// Columns past the exact-distinct limit feed their top values and quantiles from 1 row in kSampleEvery of
// each group of at least kSampleBelow values (see ProcessNumeric).
constexpr size_t kSampleEvery = 4;
constexpr size_t kSampleBelow = 4096;
constexpr int64_t kMaxDenseSlots = int64_t{1} << 20;  // counters of a direct-address exact-count table
constexpr size_t kSketchBatch = 4096;                 // (value, count) runs per numeric sketch update

// ---------------------------------------------------------------- keys: order-preserving uint64 encodings

uint64_t IntKey(int64_t v) { return static_cast<uint64_t>(v) ^ kSignBit; }
int64_t KeyInt(uint64_t k) { return static_cast<int64_t>(k ^ kSignBit); }
uint64_t FloatKey(double v) {
  if (v == 0) v = 0.0;  // -0.0 and 0.0 are one value
  uint64_t b;
  std::memcpy(&b, &v, 8);
  return (b & kSignBit) ? ~b : (b | kSignBit);
}
double KeyFloat(uint64_t k) {
  uint64_t b = (k & kSignBit) ? (k & ~kSignBit) : ~k;
  double v;
  std::memcpy(&v, &b, 8);
  return v;
}

// LSD radix sort of v[0, n), 11 bits per pass, ping-ponging between v and tmp (n slots); returns whichever
// holds the sorted keys. Digits that are the same in every key are skipped (small integer ranges sort in one
// or two passes).
const uint64_t* RadixSort(uint64_t* v, size_t n, uint64_t* tmp) {
  constexpr int kBits = 11, kPasses = 6;
  constexpr size_t kBuckets = size_t{1} << kBits;
  if (n < 2) return v;
  if (n < 256) {
    std::sort(v, v + n);
    return v;
  }
  uint64_t all_and = ~uint64_t{0}, all_or = 0;
  for (size_t i = 0; i < n; ++i) all_and &= v[i], all_or |= v[i];
  uint64_t varying = all_and ^ all_or;
  int passes[kPasses];
  int np = 0;
  for (int p = 0; p < kPasses; ++p) {
    if ((varying >> (p * kBits)) & (kBuckets - 1)) passes[np++] = p;
  }
  if (np == 0) return v;
  thread_local std::vector<uint32_t> hist;
  hist.assign(static_cast<size_t>(np) * kBuckets, 0);
  for (size_t i = 0; i < n; ++i) {
    const uint64_t x = v[i];
    for (int q = 0; q < np; ++q) ++hist[static_cast<size_t>(q) * kBuckets + ((x >> (passes[q] * kBits)) & (kBuckets - 1))];
  }
  for (int q = 0; q < np; ++q) {
    uint32_t* h = hist.data() + static_cast<size_t>(q) * kBuckets;
    uint32_t sum = 0;
    for (size_t i = 0; i < kBuckets; ++i) {
      uint32_t c = h[i];
      h[i] = sum;
      sum += c;
    }
    int shift = passes[q] * kBits;
    for (size_t i = 0; i < n; ++i) tmp[h[(v[i] >> shift) & (kBuckets - 1)]++] = v[i];
    std::swap(v, tmp);
  }
  return v;
}

using Runs = std::vector<std::pair<uint64_t, int64_t>>;

void MakeRuns(const uint64_t* sorted, size_t n, Runs* runs) {
  runs->clear();
  for (size_t i = 0; i < n;) {
    size_t j = i + 1;
    while (j < n && sorted[j] == sorted[i]) ++j;
    runs->emplace_back(sorted[i], static_cast<int64_t>(j - i));
    i = j;
  }
}

// Merges `add` into `into`; `scratch` is a buffer kept between calls (allocating a fresh one per merge costs
// page faults for columns with many distinct values).
void MergeRuns(Runs* into, const Runs& add, Runs* scratch) {
  Runs& out = *scratch;
  out.clear();
  out.reserve(into->size() + add.size());
  size_t i = 0, j = 0;
  while (i < into->size() || j < add.size()) {
    if (j >= add.size() || (i < into->size() && (*into)[i].first < add[j].first)) {
      out.push_back((*into)[i++]);
    } else if (i >= into->size() || add[j].first < (*into)[i].first) {
      out.push_back(add[j++]);
    } else {
      out.emplace_back((*into)[i].first, (*into)[i].second + add[j].second);
      ++i, ++j;
    }
  }
  into->swap(out);
}

// Σ x[i] (centre unused) or Σ (x[i] - centre)² over n values: four lanes in two SSE2 accumulators, so the
// loop runs at vector speed (a single serial sum cannot be vectorized without reassociating it).
double SumOf(const double* x, size_t n, double centre, bool squares) {
  typedef double V __attribute__((vector_size(16)));
  V acc0 = {0, 0}, acc1 = {0, 0};
  const V c = {centre, centre};
  size_t i = 0;
  for (; i + 4 <= n; i += 4) {
    V a0, a1;
    std::memcpy(&a0, x + i, sizeof(V)), std::memcpy(&a1, x + i + 2, sizeof(V));
    if (squares) {
      a0 -= c, a1 -= c;
      acc0 += a0 * a0, acc1 += a1 * a1;
    } else {
      acc0 += a0, acc1 += a1;
    }
  }
  double r = (acc0[0] + acc0[1]) + (acc1[0] + acc1[1]);
  for (; i < n; ++i) r += squares ? (x[i] - centre) * (x[i] - centre) : x[i];
  return r;
}

// ---------------------------------------------------------------- semantic patterns of strings

enum Pattern { kEmail = 0, kPhone, kIdCard, kUrl, kCodeLike, kNumPatterns };

bool IsDigit(char c) { return c >= '0' && c <= '9'; }
bool IsAlpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
bool IsAlnum(char c) { return IsDigit(c) || IsAlpha(c); }

bool LooksLikeEmail(std::string_view s) {
  size_t at = s.find('@');
  if (at == std::string_view::npos || at == 0 || at + 1 >= s.size() || s.size() > 254) return false;
  if (s.find('@', at + 1) != std::string_view::npos) return false;
  for (size_t i = 0; i < at; ++i) {
    char c = s[i];
    if (!IsAlnum(c) && c != '.' && c != '_' && c != '-' && c != '+' && c != '%') return false;
  }
  std::string_view domain = s.substr(at + 1);
  size_t dot = domain.rfind('.');
  if (dot == std::string_view::npos || dot == 0 || domain.size() - dot - 1 < 2) return false;
  for (char c : domain) {
    if (!IsAlnum(c) && c != '.' && c != '-') return false;
  }
  for (size_t i = dot + 1; i < domain.size(); ++i) {
    if (!IsAlpha(domain[i])) return false;
  }
  return domain.find("..") == std::string_view::npos;
}

bool LooksLikePhone(std::string_view s) {
  size_t digits = 0, seps = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (IsDigit(c)) {
      ++digits;
    } else if (c == ' ' || c == '-' || c == '(' || c == ')' || c == '.') {
      ++seps;
    } else if (c == '+' && i == 0) {
      ++seps;
    } else {
      return false;
    }
  }
  if (digits < 7 || digits > 15) return false;
  if (seps > 0) return true;
  // Bare digit strings are phones only in the unmistakable shape of a Chinese mobile number: 1[3-9] + 9 digits.
  return s.size() == 11 && s[0] == '1' && s[1] >= '3' && s[1] <= '9';
}

bool LooksLikeIdCard(std::string_view s) {
  if (s.size() == 18) {
    // China resident identity card: 6-digit region, YYYYMMDD, 3-digit sequence, ISO 7064 MOD 11-2 check.
    static const int kWeights[17] = {7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2};
    static const char kCheck[11] = {'1', '0', 'X', '9', '8', '7', '6', '5', '4', '3', '2'};
    int sum = 0;
    for (int i = 0; i < 17; ++i) {
      if (!IsDigit(s[static_cast<size_t>(i)])) return false;
      sum += (s[static_cast<size_t>(i)] - '0') * kWeights[i];
    }
    char last = s[17] == 'x' ? 'X' : s[17];
    if (last != kCheck[sum % 11]) return false;
    int year = std::stoi(std::string(s.substr(6, 4)));
    int month = (s[10] - '0') * 10 + (s[11] - '0');
    int day = (s[12] - '0') * 10 + (s[13] - '0');
    return year >= 1900 && year <= 2100 && month >= 1 && month <= 12 && day >= 1 && day <= 31;
  }
  if (s.size() == 11 && s[3] == '-' && s[6] == '-') {
    // US social security number shape: AAA-GG-SSSS, area not 000/666/9xx, group not 00, serial not 0000.
    for (size_t i : {0, 1, 2, 4, 5, 7, 8, 9, 10}) {
      if (!IsDigit(s[i])) return false;
    }
    std::string_view area = s.substr(0, 3);
    return area != "000" && area != "666" && s[0] != '9' && s.substr(4, 2) != "00" && s.substr(7, 4) != "0000";
  }
  return false;
}

bool LooksLikeUrl(std::string_view s) {
  std::string_view rest;
  for (std::string_view p : {"http://", "https://", "ftp://", "www."}) {
    if (s.size() > p.size()) {
      bool match = true;
      for (size_t i = 0; i < p.size() && match; ++i) match = (s[i] | 0x20) == p[i] || s[i] == p[i];
      if (match) {
        rest = s.substr(p.size());
        break;
      }
    }
  }
  if (rest.empty()) return false;
  size_t host_end = rest.find_first_of("/?#:");
  std::string_view host = rest.substr(0, host_end);
  if (host.empty() || host.find('.') == std::string_view::npos) return false;
  for (char c : s) {
    if (static_cast<unsigned char>(c) <= ' ') return false;
  }
  return true;
}

// Code-like: one token of letters/digits (and - _ . : /), containing at least one digit, at most 64 bytes.
bool LooksLikeCode(std::string_view s) {
  if (s.empty() || s.size() > 64) return false;
  bool digit = false;
  for (char c : s) {
    if (IsDigit(c)) {
      digit = true;
    } else if (!IsAlpha(c) && c != '-' && c != '_' && c != '.' && c != ':' && c != '/') {
      return false;
    }
  }
  return digit;
}

int64_t CountTokens(std::string_view s) {
  int64_t tokens = 0;
  bool in = false;
  for (char c : s) {
    bool space = c == ' ' || c == '\t' || c == '\n' || c == '\r';
    if (!space && !in) ++tokens;
    in = !space;
  }
  return tokens;
}

// A zero-filled array of trivially copyable T. From 512 KiB up it is rounded up to whole 2 MiB huge pages
// from a LargeBuffer (a page fault per 2 MiB instead of per 4 KiB, and faults are expensive on virtual
// machines; fresh pages need no memset, a reused mapping is cleared). Move-only.
template <class T>
class ZeroedArray {
 public:
  ZeroedArray() = default;
  explicit ZeroedArray(size_t n) : size_(n) {
    if (n == 0) return;
    size_t bytes = n * sizeof(T);
    const bool huge = bytes >= kLargeBufferMapBytes / 4;
    if (huge) bytes = (bytes + kLargeBufferMapBytes - 1) / kLargeBufferMapBytes * kLargeBufferMapBytes;
    mem_ = LargeBuffer::Zeroed(bytes);
  }
  ZeroedArray(ZeroedArray&& o) noexcept : mem_(std::move(o.mem_)), size_(std::exchange(o.size_, 0)) {}
  ZeroedArray& operator=(ZeroedArray&& o) noexcept {
    mem_ = std::move(o.mem_);
    size_ = std::exchange(o.size_, 0);
    return *this;
  }
  T& operator[](size_t i) { return reinterpret_cast<T*>(mem_.data())[i]; }
  const T& operator[](size_t i) const { return reinterpret_cast<const T*>(mem_.data())[i]; }
  size_t size() const { return size_; }

 private:
  LargeBuffer mem_;
  size_t size_ = 0;
};

// ---------------------------------------------------------------- per-column accumulator

struct ColumnAcc {
  int64_t count = 0, missing = 0;
  int64_t nan = 0, inf = 0, zeros = 0, negatives = 0;
  bool has_range = false;
  uint64_t min_key = 0, max_key = 0;
  int64_t n_finite = 0;
  double mean = 0, m2 = 0;
  // Exact value counts while `exact`; afterwards the sketches.
  bool exact = true;
  Runs num_counts;  // numeric keys, ascending
  // While exact, integer and decimal-float columns whose range is known and small count into a direct-address
  // table instead (no per-group sort or merge): dense[g] counts the value of global ordinal g (Profiler::
  // DenseKey). num_counts is empty while it is in use; DenseFlush folds it into num_counts.
  enum class Dense : uint8_t { kUntried, kActive, kOff };
  Dense dense_state = Dense::kUntried;
  int dense_scale = -1;  // decimal floats: value(g) = DecimalValue(dense_lo + g, dense_scale); -1: integers
  int64_t dense_lo = 0;  // integers: value(g) = dense_lo + g
  int64_t dense_distinct = 0;
  ZeroedArray<uint32_t> dense;
  std::unordered_map<std::string, int64_t> str_counts;
  int64_t distinct_bytes = 0;  // summed lengths of distinct strings (exact mode)
  std::unique_ptr<HyperLogLog> hll;
  std::unique_ptr<FrequentItems<uint64_t>> num_freq;
  std::unique_ptr<FrequentItems<std::string>> str_freq;
  std::unique_ptr<QuantileSketch> qs;
  // Strings.
  int64_t len_min = std::numeric_limits<int64_t>::max(), len_max = 0;
  double len_sum = 0;
  int64_t pattern_checked = 0;
  double token_sum = 0, checked_len_sum = 0;
  int64_t pattern_hits[kNumPatterns] = {};
  // Target leakage: every row equal to the target (missing == missing).
  bool equals_target = true;
};

bool IsNumericType(ColumnType t) { return t != ColumnType::kString; }

double KeyToDouble(ColumnType t, uint64_t k) {
  switch (t) {
    case ColumnType::kFloat64: return KeyFloat(k);
    case ColumnType::kDatetime:
    case ColumnType::kInt64:
    case ColumnType::kBool: return static_cast<double>(KeyInt(k));
    case ColumnType::kString: return 0;
  }
  return 0;
}

class Profiler;

// Duplicate-row detection: 64-bit row hashes in an open-addressing set with per-hash counts. Above
// kRowSetMaxEntries distinct hashes it keeps only hashes whose top `sample_bits_` bits are zero (a consistent
// sample: all copies of a row share its hash) and scales the duplicate count up.
class RowHashSet {
 public:
  RowHashSet() { Rehash(size_t{1} << 16); }
  // Sizes the table for `rows` distinct rows up front (no rehash on the way).
  void Reserve(int64_t rows) {
    size_t want = size_t{1} << 16;
    const size_t entries =
        static_cast<size_t>(std::min<int64_t>(std::max<int64_t>(rows, 0), kRowSetMaxEntries));
    while (want < 2 * entries && want < 2 * kRowSetMaxEntries) want *= 2;
    if (want > slots_.size()) Rehash(want);
  }
  void Insert(const uint64_t* hashes, size_t n) {
    std::lock_guard<std::mutex> lock(mu_);
    constexpr size_t kAhead =
        16;  // the table is far larger than the caches: fetch slots before they are probed
    for (size_t i = 0; i < n; ++i) {
      if (i + kAhead < n)
        __builtin_prefetch(&slots_[MixHash64(hashes[i + kAhead] | 1) & (slots_.size() - 1)], 1);
      uint64_t h = hashes[i] | 1;  // 0 marks an empty slot
      if (sample_bits_ > 0 && (h >> (64 - sample_bits_)) != 0) continue;
      InsertOne(h, 1);
      if (used_ * 2 > slots_.size()) {
        if (used_ >= kRowSetMaxEntries) {
          Downsample();
        } else {
          Rehash(slots_.size() * 2);
        }
      }
    }
  }
  int64_t Duplicates() const {
    int64_t dup = 0;
    for (size_t i = 0; i < slots_.size(); ++i) {
      if (slots_[i].key != 0) dup += static_cast<int64_t>(slots_[i].count) - 1;
    }
    return dup << sample_bits_;
  }
  bool approximate() const { return sample_bits_ > 0; }

 private:
  struct Slot {
    uint64_t key;  // 0: empty
    uint64_t count;
  };
  void InsertOne(uint64_t h, uint64_t c) {
    size_t mask = slots_.size() - 1;
    for (size_t i = MixHash64(h) & mask;; i = (i + 1) & mask) {
      Slot& s = slots_[i];
      if (s.key == h) {
        s.count += c;
        return;
      }
      if (s.key == 0) {
        s.key = h;
        s.count = c;
        ++used_;
        return;
      }
    }
  }
  void Rehash(size_t slots) {
    ZeroedArray<Slot> old(slots);
    std::swap(old, slots_);
    used_ = 0;
    for (size_t i = 0; i < old.size(); ++i) {
      const Slot& s = old[i];
      if (s.key != 0 && (sample_bits_ == 0 || (s.key >> (64 - sample_bits_)) == 0)) InsertOne(s.key, s.count);
    }
  }
  void Downsample() {
    ++sample_bits_;
    Rehash(slots_.size());
  }
  std::mutex mu_;
  ZeroedArray<Slot> slots_;  // a key and its count share a cache line
  size_t used_ = 0;
  int sample_bits_ = 0;
};

struct PairAcc {
  double n = 0, sx = 0, sy = 0, sxx = 0, syy = 0, sxy = 0;
};

// Categories of one Cramér column, shared by all workers so that ids agree.
struct CategoryMap {
  std::mutex mu;
  std::unordered_map<std::string, int> ids;
  std::vector<std::string> names;
  bool overflow = false;
};

// One column of one row group, rows [0, rows): views into a decoded chunk or into an in-memory table.
struct ColView {
  ColumnType type = ColumnType::kString;
  const uint8_t* valid = nullptr;
  const int64_t* i64 = nullptr;  // kInt64, kDatetime
  const double* f64 = nullptr;   // kFloat64
  const uint8_t* b = nullptr;    // kBool
  const int32_t* codes = nullptr;
  const std::string_view* dict = nullptr;  // kString: codes index into dict[0, dict_size)
  size_t dict_size = 0;
  // Hints from the storage that let ProcessNumeric sort small integers instead of 64-bit keys:
  // kFloat64 with decimal_scale >= 0: mantissa[i] is row i's value times 10^scale (f64[i] ==
  // DecimalValue(mantissa[i], decimal_scale)); kInt64/kDatetime: the values are likely all congruent modulo
  // int_step (checked before it is used).
  const int64_t* mantissa = nullptr;
  int decimal_scale = -1;
  int64_t int_step = 1;

  std::string_view StringAt(size_t i) const { return dict[static_cast<size_t>(codes[i])]; }
};

struct GroupView {
  size_t rows = 0;
  std::vector<ColView> cols;
};

// How a column's values map to small non-negative integers u in the same order: value(u) = lo + u * step for
// integers (whose sources are IntKeys), DecimalValue(lo + u, scale) for decimal floats (sources: mantissas).
// `max_u` is the largest u.
struct Ordinals {
  bool decimal = false;
  int scale = 0;
  int64_t lo = 0;
  uint64_t max_u = 0;
  uint64_t step = 1;
  // Exact division by step = odd * 2^shift: shift right, then multiply by the inverse of odd modulo 2^64.
  int shift = 0;
  uint64_t inverse = 1;

  void SetStep(uint64_t s) {
    step = s;
    shift = __builtin_ctzll(s);
    const uint64_t odd = s >> shift;
    uint64_t x = odd;                              // correct to 3 bits (odd * odd == 1 mod 8)
    for (int i = 0; i < 5; ++i) x *= 2 - odd * x;  // Newton: each step doubles the correct bits
    inverse = x;
    max_u /= s;
  }
  uint64_t Delta(uint64_t src) const {
    return decimal ? static_cast<uint64_t>(src) - static_cast<uint64_t>(lo)
                   : static_cast<uint64_t>(KeyInt(src)) - static_cast<uint64_t>(lo);
  }
  uint64_t U(uint64_t src) const { return (Delta(src) >> shift) * inverse; }
  // Whether src's value is lo + u * step for some u <= max_u (then U(src) is that u).
  bool Fits(uint64_t src) const {
    const uint64_t u = U(src);
    return u <= max_u && u * step == Delta(src);
  }
  uint64_t Key(uint64_t u) const {
    return decimal ? FloatKey(DecimalValue(lo + static_cast<int64_t>(u), scale))
                   : IntKey(static_cast<int64_t>(static_cast<uint64_t>(lo) + u * step));
  }
};

struct WorkerState {
  std::vector<ColumnAcc> cols;
  std::vector<PairAcc> pearson;               // pairs (i < j) of pearson_cols_, row-major upper triangle
  std::vector<std::vector<int64_t>> cramer;   // pairs of cramer_cols_, kMaxCategories^2 cells each
  // Buffers reused from group to group (allocating them per group costs page faults).
  std::vector<DecodedChunk> chunks;
  GroupView view;
  std::vector<uint64_t> keys, ords, sort_a, sort_b, row_hash;
  std::vector<uint32_t> counts;  // counting sort; all zero between uses
  std::vector<double> finite, pearson_buf;
  std::vector<uint16_t> pearson_miss;
  std::vector<uint32_t> sample_rows;
  std::vector<std::vector<int16_t>> cramer_ids;
  std::vector<int16_t> code_id;
  std::vector<std::vector<uint32_t>> used_codes;  // per string column: the codes the current group uses
  std::vector<uint64_t> code_hash;
  Runs runs, merge_scratch;
};

struct Source {
  int64_t rows = 0;
  int64_t num_groups = 0;
  std::vector<ColumnInfo> columns;
  // Makes `view` show row group g (at most kGroupRows rows), decoding into `chunks` if it needs to.
  std::function<Status(int64_t g, std::vector<DecodedChunk>* chunks, GroupView* view)> read;
};

class Profiler {
 public:
  Profiler(const Source& src, const ProfileOptions& opt, const std::function<bool()>& cancel)
      : src_(src), opt_(opt), cancel_(cancel) {}

  Result<Json> Run(const Json& footer_stats, int64_t file_bytes);

 private:
  Status RunPass(bool correlations_only);
  Status ProcessGroup(WorkerState& w, const GroupView& t, bool correlations_only);
  void ProcessNumeric(WorkerState& w, size_t col, const ColView& c, size_t n, uint64_t* rh);
  void ProcessString(WorkerState& w, size_t col, const ColView& c, size_t n, uint64_t* rh);
  void ProcessPearson(WorkerState& w, const GroupView& t);
  void ProcessCramer(WorkerState& w, const GroupView& t);
  void CheckTargetEquality(WorkerState& w, const GroupView& t);
  // Sorted (key, count) runs of `count` values into w.runs, through their ordinals: src[i] is IntKey(value)
  // for integers, the mantissa for decimals.
  void OrdinalRuns(WorkerState& w, const Ordinals& ord, const uint64_t* src, size_t count);
  void AddNumericRuns(ColumnAcc& a, ColumnType type, const Runs& runs, Runs* scratch);
  // The dense exact-count table of a column (ColumnAcc::dense): set up on first use, fed per group (false:
  // the group does not fit the table, which is then folded into num_counts and given up), folded at the end.
  bool DenseAdd(ColumnAcc& a, const ColView& c, size_t col, const uint64_t* keys, const uint64_t* ords,
                size_t nk, int64_t lo_ord, int64_t hi_ord);
  void DenseFlush(ColumnAcc& a);
  // Sorted (value, count) runs into the sketches of a column past the exact limit; hll: also count the
  // values as distinct (false when the caller already added every value to the HyperLogLog).
  void AddSketchRuns(ColumnAcc& a, ColumnType type, const Runs& runs, bool hll);
  void Overflow(ColumnAcc& a, ColumnType type);
  void MergeInto(ColumnAcc& a, ColumnAcc& b, ColumnType type);
  void MergeWorker(WorkerState& into, WorkerState& from);
  Json ColumnJson(size_t c, const ColumnAcc& a, double* variance);
  Json ValueJson(ColumnType t, uint64_t key) const;

  const Source& src_;
  const ProfileOptions& opt_;
  const std::function<bool()>& cancel_;
  int target_ = -1;
  std::vector<int> pearson_cols_;
  std::vector<double> shift_;  // per column, subtracted before Pearson sums (numerical stability)
  std::vector<int> cramer_cols_;
  std::vector<int64_t> cramer_int_min_;  // integer Cramér column (the target): id = value - min
  std::vector<std::unique_ptr<CategoryMap>> categories_;
  // Positions in a group (ascending) of the deterministic 1-in-kSampleEvery samples: of a column's present
  // values for its sketches, and of rows for Pearson sums.
  std::vector<uint32_t> sketch_sample_, pearson_sample_;
  // Per column, the value range from the footer statistics (integer and float columns), for dense tables.
  struct KnownRange {
    bool known = false;
    int64_t lo_i = 0, hi_i = 0;
    double lo_f = 0, hi_f = 0;
  };
  std::vector<KnownRange> ranges_;
  std::atomic<int64_t> dense_bytes_{0};  // all live dense tables (ProfileOptions::max_dense_table_bytes)
  RowHashSet row_set_;
  std::vector<WorkerState> workers_;
};

// ---------------------------------------------------------------- group processing

void Profiler::AddNumericRuns(ColumnAcc& a, ColumnType type, const Runs& runs, Runs* scratch) {
  if (a.exact) {
    MergeRuns(&a.num_counts, runs, scratch);
    if (static_cast<int64_t>(a.num_counts.size()) > opt_.exact_distinct_limit) Overflow(a, type);
    return;
  }
  AddSketchRuns(a, type, runs, /*hll=*/true);
}

void Profiler::AddSketchRuns(ColumnAcc& a, ColumnType type, const Runs& runs, bool hll) {
  // In batches: the temporaries stay small (a column going over the exact limit hands over up to
  // exact_distinct_limit runs at once, and fresh multi-megabyte buffers cost page faults).
  double values[kSketchBatch];
  int64_t counts[kSketchBatch];
  for (size_t b = 0; b < runs.size(); b += kSketchBatch) {
    const size_t m = std::min(kSketchBatch, runs.size() - b);
    const std::pair<uint64_t, int64_t>* r = runs.data() + b;
    if (hll) {
      for (size_t i = 0; i < m; ++i) a.hll->Add(MixHash64(r[i].first));
    }
    a.num_freq->AddSorted(r, m);
    for (size_t i = 0; i < m; ++i) values[i] = KeyToDouble(type, r[i].first), counts[i] = r[i].second;
    a.qs->AddSortedWeighted(values, counts, m);
  }
}

void Profiler::Overflow(ColumnAcc& a, ColumnType type) {
  if (!a.exact) return;
  a.exact = false;
  size_t freq_capacity = std::max<size_t>(1024, static_cast<size_t>(opt_.top_k) * 8);
  a.hll = std::make_unique<HyperLogLog>();
  if (type == ColumnType::kString) {
    a.str_freq = std::make_unique<FrequentItems<std::string>>(freq_capacity);
    std::vector<std::pair<std::string, int64_t>> batch;
    batch.reserve(a.str_counts.size());
    for (auto& [s, n] : a.str_counts) {
      a.hll->Add(Hash64(s.data(), s.size()));
      batch.emplace_back(s, n);
    }
    a.str_freq->AddBatch(std::move(batch));
    std::unordered_map<std::string, int64_t>().swap(a.str_counts);
    return;
  }
  a.num_freq = std::make_unique<FrequentItems<uint64_t>>(freq_capacity);
  a.qs = std::make_unique<QuantileSketch>(2048);
  Runs runs;
  runs.swap(a.num_counts);
  AddSketchRuns(a, type, runs, /*hll=*/true);
  if (a.dense_state == ColumnAcc::Dense::kActive) {
    // Straight from the direct-address table, a batch of runs at a time.
    a.dense_state = ColumnAcc::Dense::kOff;
    Runs batch;
    batch.reserve(kSketchBatch);
    for (size_t g = 0; g < a.dense.size(); ++g) {
      if (a.dense[g] == 0) continue;
      const int64_t x = a.dense_lo + static_cast<int64_t>(g);
      const uint64_t key = a.dense_scale < 0 ? IntKey(x) : FloatKey(DecimalValue(x, a.dense_scale));
      if (!batch.empty() && batch.back().first == key) {
        batch.back().second += a.dense[g];
        continue;
      }
      if (batch.size() == kSketchBatch) {
        AddSketchRuns(a, type, batch, /*hll=*/true);
        batch.clear();
      }
      batch.emplace_back(key, a.dense[g]);
    }
    AddSketchRuns(a, type, batch, /*hll=*/true);
    dense_bytes_.fetch_sub(static_cast<int64_t>(a.dense.size() * sizeof(uint32_t)));
    a.dense = ZeroedArray<uint32_t>();
    a.dense_distinct = 0;
  }
}

bool Profiler::DenseAdd(ColumnAcc& a, const ColView& c, size_t col, const uint64_t* keys,
                        const uint64_t* ords, size_t nk, int64_t lo_ord, int64_t hi_ord) {
  constexpr int64_t kMaxMantissa = int64_t{1} << 53;
  // Floats reach here only from decimal chunks (the ordinals are their mantissas).
  const bool decimal = c.type == ColumnType::kFloat64;
  if (a.dense_state == ColumnAcc::Dense::kUntried) {
    a.dense_state = ColumnAcc::Dense::kOff;
    const KnownRange& r = ranges_[col];
    // At most 2^20 counters (4 MiB), and not many more than the distinct values the exact mode may hold.
    const uint64_t max_slots =
        static_cast<uint64_t>(std::min<int64_t>(kMaxDenseSlots, 8 * opt_.exact_distinct_limit + 1024));
    if (!r.known || c.type == ColumnType::kDatetime || src_.rows >= (int64_t{1} << 32)) return false;
    int64_t lo = r.lo_i, hi = r.hi_i;
    if (decimal) {
      // The footer's range at this chunk's scale, widened by one step each way against rounding.
      const double p = kLcolPow10[c.decimal_scale];
      const double dlo = std::floor(r.lo_f * p) - 1, dhi = std::ceil(r.hi_f * p) + 1;
      if (!(dlo >= -static_cast<double>(kMaxMantissa) && dhi <= static_cast<double>(kMaxMantissa)))
        return false;
      lo = static_cast<int64_t>(dlo), hi = static_cast<int64_t>(dhi);
    }
    if (static_cast<uint64_t>(hi) - static_cast<uint64_t>(lo) >= max_slots) return false;
    const int64_t bytes = (hi - lo + 1) * static_cast<int64_t>(sizeof(uint32_t));
    // All dense tables of one profile together (every column, every thread) stay under the option: wide
    // tables of many mid-range integer columns fall back to sorted runs, not 4 MiB per column per thread.
    if (dense_bytes_.fetch_add(bytes) + bytes > opt_.max_dense_table_bytes) {
      dense_bytes_.fetch_sub(bytes);
      return false;
    }
    a.dense_scale = decimal ? c.decimal_scale : -1;
    a.dense_lo = lo;
    a.dense = ZeroedArray<uint32_t>(static_cast<size_t>(hi - lo) + 1);
    a.dense_distinct = 0;
    a.dense_state = ColumnAcc::Dense::kActive;
  }
  if (a.dense_state != ColumnAcc::Dense::kActive) return false;
  // This group's ordinals in the table's terms: decimals of a smaller scale are scaled up (exactly: the
  // mantissas stay below 2^53); a larger scale, or values outside the table, give it up.
  const int64_t table_hi = a.dense_lo + static_cast<int64_t>(a.dense.size()) - 1;
  int64_t mult = 1;
  if (decimal) {
    if (a.dense_scale < 0 || c.decimal_scale > a.dense_scale) return false;
    mult = static_cast<int64_t>(kLcolPow10[a.dense_scale - c.decimal_scale]);
    if (lo_ord < -kMaxMantissa / mult || hi_ord > kMaxMantissa / mult) return false;
  } else if (a.dense_scale >= 0) {
    return false;
  }
  if (lo_ord * mult < a.dense_lo || hi_ord * mult > table_hi) return false;
  uint32_t* table = &a.dense[0];
  int64_t distinct = 0;
  if (decimal) {
    const int64_t base = a.dense_lo;
    for (size_t i = 0; i < nk; ++i) distinct += table[static_cast<int64_t>(ords[i]) * mult - base]++ == 0;
  } else {
    const uint64_t base = static_cast<uint64_t>(a.dense_lo);
    for (size_t i = 0; i < nk; ++i) distinct += table[static_cast<uint64_t>(KeyInt(keys[i])) - base]++ == 0;
  }
  a.dense_distinct += distinct;
  const uint64_t kmin = decimal ? FloatKey(DecimalValue(lo_ord, c.decimal_scale)) : IntKey(lo_ord);
  const uint64_t kmax = decimal ? FloatKey(DecimalValue(hi_ord, c.decimal_scale)) : IntKey(hi_ord);
  if (!a.has_range || kmin < a.min_key) a.min_key = kmin;
  if (!a.has_range || kmax > a.max_key) a.max_key = kmax;
  a.has_range = true;
  if (a.dense_distinct > opt_.exact_distinct_limit) Overflow(a, c.type);
  return true;
}

void Profiler::DenseFlush(ColumnAcc& a) {
  if (a.dense_state == ColumnAcc::Dense::kUntried) a.dense_state = ColumnAcc::Dense::kOff;
  if (a.dense_state != ColumnAcc::Dense::kActive) return;
  a.dense_state = ColumnAcc::Dense::kOff;
  Runs runs;
  runs.reserve(static_cast<size_t>(a.dense_distinct));
  for (size_t g = 0; g < a.dense.size(); ++g) {
    if (a.dense[g] == 0) continue;
    const int64_t x = a.dense_lo + static_cast<int64_t>(g);
    const uint64_t key = a.dense_scale < 0 ? IntKey(x) : FloatKey(DecimalValue(x, a.dense_scale));
    // Equal neighbours only from a crafted file (distinct mantissas give distinct doubles otherwise).
    if (!runs.empty() && runs.back().first == key) {
      runs.back().second += a.dense[g];
    } else {
      runs.emplace_back(key, a.dense[g]);
    }
  }
  a.dense = ZeroedArray<uint32_t>();
  a.dense_distinct = 0;
  if (a.num_counts.empty()) {  // always, while the table was in use
    a.num_counts.swap(runs);
  } else {
    Runs scratch;
    MergeRuns(&a.num_counts, runs, &scratch);
  }
}

void Profiler::OrdinalRuns(WorkerState& w, const Ordinals& ord, const uint64_t* src, size_t count) {
  Runs& runs = w.runs;
  runs.clear();
  if (count == 0) return;
  const uint64_t range = ord.max_u + 1;
  if (range <= 4 * static_cast<uint64_t>(count) + 1024 && range <= (uint64_t{1} << 22)) {
    // Few possible values: count them in a direct-address table and read the runs off it in order.
    if (w.counts.size() < range) w.counts.resize(static_cast<size_t>(range), 0);
    uint32_t* cn = w.counts.data();
    for (size_t i = 0; i < count; ++i) ++cn[ord.U(src[i])];
    runs.resize(static_cast<size_t>(std::min<uint64_t>(range, count)) + 1);
    size_t r = 0;
    for (uint64_t u = 0; u < range; ++u) {
      const uint32_t k = cn[u];
      runs[r] = {u, k};  // written always, kept only if k > 0: no unpredictable branch
      r += k != 0;
      cn[u] = 0;
    }
    runs.resize(r);
  } else {
    // Otherwise a radix sort of the ordinals: they span fewer bits than the keys, so it takes fewer passes.
    if (w.sort_a.size() < count) w.sort_a.resize(count);
    if (w.sort_b.size() < count) w.sort_b.resize(count);
    uint64_t* us = w.sort_a.data();
    for (size_t i = 0; i < count; ++i) us[i] = ord.U(src[i]);
    MakeRuns(RadixSort(us, count, w.sort_b.data()), count, &runs);
  }
  // Back to keys. Distinct decimal mantissas give distinct doubles in any file the encoder wrote; merge equal
  // neighbours anyway so a crafted file cannot produce a duplicate key.
  size_t out = 0;
  for (size_t i = 0; i < runs.size(); ++i) {
    const uint64_t key = ord.Key(runs[i].first);
    if (out > 0 && runs[out - 1].first == key) {
      runs[out - 1].second += runs[i].second;
    } else {
      runs[out++] = {key, runs[i].second};
    }
  }
  runs.resize(out);
}

void Profiler::ProcessNumeric(WorkerState& w, size_t col, const ColView& c, size_t n, uint64_t* rh) {
  ColumnAcc& a = w.cols[col];
  const ColumnType type = c.type;
  // Outputs through raw pointers and counters in locals: one tight loop per column type.
  if (w.keys.size() < n) w.keys.resize(n);
  if (w.ords.size() < n) w.ords.resize(n);
  if (w.finite.size() < n) w.finite.resize(n);
  uint64_t* keys = w.keys.data();
  double* fin = w.finite.data();
  size_t nk = 0, nf = 0;
  int64_t missing = 0, nan = 0, inf = 0, zeros = 0, negatives = 0;
  const uint8_t* valid = c.valid;
  auto mix_row = [rh](size_t i, uint64_t vh) {
    uint64_t& h = rh[i];
    h = (((h << 23) | (h >> 41)) ^ (vh * 0xff51afd7ed558ccdULL)) * 0x9e3779b97f4a7c15ULL;
  };
  // The values' ordinals (Ordinals), when the storage or the type gives them: decimal floats and integers.
  bool have_ordinals = false;
  int64_t lo_ord = std::numeric_limits<int64_t>::max(), hi_ord = std::numeric_limits<int64_t>::min();
  if (type == ColumnType::kFloat64 && c.mantissa != nullptr && c.decimal_scale >= 0 && c.decimal_scale <= 9) {
    // Decimal chunk: every value is finite; its mantissa is its ordinal source.
    have_ordinals = true;
    const double* f = c.f64;
    const int64_t* mant = c.mantissa;
    uint64_t* ords = w.ords.data();
    // Without a branch per row (missing values are scattered): every row writes its slot, and only a valid
    // row advances the counts past it.
    for (size_t i = 0; i < n; ++i) {
      const bool ok = valid[i] != 0;
      const double v = f[i];
      const int64_t m = mant[i];
      const uint64_t k = FloatKey(v);
      keys[nk] = k;
      ords[nk] = static_cast<uint64_t>(m);
      fin[nf] = v;
      nk += ok;
      nf += ok;
      lo_ord = ok && m < lo_ord ? m : lo_ord;
      hi_ord = ok && m > hi_ord ? m : hi_ord;
      missing += !ok;
      zeros += ok & (v == 0);
      negatives += ok & (v < 0);
      mix_row(i, ok ? k : kMissingHash);
    }
  } else if (type == ColumnType::kFloat64) {
    const double* f = c.f64;
    for (size_t i = 0; i < n; ++i) {
      uint64_t vh;
      if (!valid[i]) {
        ++missing;
        vh = kMissingHash;
      } else {
        const double v = f[i];
        if (std::isnan(v)) {
          ++nan;
          vh = 0x4e614e4e614e4e61ULL;
        } else {
          const uint64_t k = FloatKey(v);
          keys[nk++] = k;
          vh = k;
          if (std::isinf(v)) {
            ++inf;
          } else {
            fin[nf++] = v;
          }
          zeros += v == 0;
          negatives += v < 0;
        }
      }
      mix_row(i, vh);
    }
  } else {
    have_ordinals = true;
    // Branch-free as above; datetime moments are in seconds.
    const bool is_bool = type == ColumnType::kBool;
    for (size_t i = 0; i < n; ++i) {
      const bool ok = valid[i] != 0;
      const int64_t v = is_bool ? int64_t{c.b[i] != 0} : c.i64[i];
      const uint64_t k = IntKey(v);
      keys[nk] = k;
      fin[nf] = type == ColumnType::kDatetime ? static_cast<double>(v) / 1e6 : static_cast<double>(v);
      nk += ok;
      nf += ok;
      lo_ord = ok && v < lo_ord ? v : lo_ord;
      hi_ord = ok && v > hi_ord ? v : hi_ord;
      missing += !ok;
      zeros += ok & (v == 0);
      negatives += ok & (v < 0);
      mix_row(i, ok ? k : kMissingHash);
    }
  }
  a.missing += missing;
  a.nan += nan;
  a.inf += inf;
  a.zeros += zeros;
  a.negatives += negatives;
  a.count += static_cast<int64_t>(nk);  // NaN values are added by the caller
  // Moments over finite values: group mean and M2, merged with Chan et al.'s formula.
  if (nf > 0) {
    double dn = static_cast<double>(nf);
    double mean = SumOf(fin, nf, 0.0, /*squares=*/false) / dn;
    double m2 = SumOf(fin, nf, mean, /*squares=*/true);
    double na = static_cast<double>(a.n_finite);
    double delta = mean - a.mean;
    double tot = na + dn;
    a.mean += delta * dn / tot;
    a.m2 += m2 + delta * delta * na * dn / tot;
    a.n_finite += static_cast<int64_t>(nf);
  }
  if (nk == 0) return;
  Ordinals ord;
  uint64_t* ord_src = keys;  // what OrdinalRuns reads: IntKeys, or mantissas for decimals
  if (have_ordinals) {
    ord.lo = lo_ord;
    ord.max_u = static_cast<uint64_t>(hi_ord) - static_cast<uint64_t>(lo_ord);
    if (type == ColumnType::kFloat64) {
      ord.decimal = true;
      ord.scale = c.decimal_scale;
      ord_src = w.ords.data();
    } else if (c.int_step > 1 && ord.max_u % static_cast<uint64_t>(c.int_step) == 0) {
      // Values stored as base + u * step (datetimes in whole days, say): use the step if every value fits it.
      Ordinals stepped = ord;
      stepped.SetStep(static_cast<uint64_t>(c.int_step));
      bool fits = true;
      for (size_t i = 0; i < nk; ++i) fits &= stepped.Fits(keys[i]);
      if (fits) ord = stepped;
    }
    // A span wider than 2^40 sorts no faster than the keys themselves.
    if (ord.max_u >= (uint64_t{1} << 40)) have_ordinals = false;
  }
  if (!a.exact && nk >= kSampleBelow) {
    // Past the exact-distinct limit every statistic from here on is a sketch. The range and the distinct
    // estimate still see every value; the top values and quantiles see a deterministic 1-in-kSampleEvery
    // sample of the values (chosen by a hash of the value's position, so periodic data cannot alias),
    // weighted up: sorting every value of a high-cardinality column was the profile's largest cost.
    uint64_t lo_key = ~uint64_t{0}, hi_key = 0;
    for (size_t i = 0; i < nk; ++i) {
      const uint64_t k = keys[i];
      lo_key = std::min(lo_key, k);
      hi_key = std::max(hi_key, k);
      a.hll->Add(MixHash64(k));
    }
    if (!a.has_range || lo_key < a.min_key) a.min_key = lo_key;
    if (!a.has_range || hi_key > a.max_key) a.max_key = hi_key;
    a.has_range = true;
    // Gather the sample in place: sample positions ascend, so slot j is written only after it was read.
    uint64_t* src = have_ordinals ? ord_src : keys;
    size_t kept = 0;
    for (uint32_t pos : sketch_sample_) {
      if (pos >= nk) break;
      src[kept++] = src[pos];
    }
    if (have_ordinals) {
      OrdinalRuns(w, ord, src, kept);
    } else {
      if (w.sort_b.size() < kept) w.sort_b.resize(kept);
      MakeRuns(RadixSort(src, kept, w.sort_b.data()), kept, &w.runs);
    }
    for (auto& r : w.runs) r.second *= static_cast<int64_t>(kSampleEvery);
    AddSketchRuns(a, type, w.runs, /*hll=*/false);
    return;
  }
  if (a.exact && a.dense_state != ColumnAcc::Dense::kOff) {
    if (have_ordinals && DenseAdd(a, c, col, keys, w.ords.data(), nk, lo_ord, hi_ord)) return;
    DenseFlush(a);  // the group does not fit the table: counts go on as sorted runs
  }
  if (have_ordinals) {
    OrdinalRuns(w, ord, ord_src, nk);
  } else {
    if (w.sort_b.size() < nk) w.sort_b.resize(nk);
    MakeRuns(RadixSort(keys, nk, w.sort_b.data()), nk, &w.runs);
  }
  if (!w.runs.empty()) {
    if (!a.has_range || w.runs.front().first < a.min_key) a.min_key = w.runs.front().first;
    if (!a.has_range || w.runs.back().first > a.max_key) a.max_key = w.runs.back().first;
    a.has_range = true;
  }
  AddNumericRuns(a, type, w.runs, &w.merge_scratch);
}

void Profiler::ProcessString(WorkerState& w, size_t col, const ColView& c, size_t n, uint64_t* rh) {
  ColumnAcc& a = w.cols[col];
  const uint8_t* valid = c.valid;
  const int32_t* codes = c.codes;
  const size_t dict_size = c.dict_size;
  size_t present = 0;
  int64_t missing = 0;
  Runs& runs = w.runs;
  runs.clear();
  // Codes used in this range with their counts: counted in a direct-address table when the dictionary is not
  // much larger than the range (always for decoded chunks), else sorted.
  const bool dense = dict_size <= 4 * n + 64;
  if (dense) {
    if (w.counts.size() < dict_size) w.counts.resize(dict_size, 0);
    uint32_t* cn = w.counts.data();
    for (size_t i = 0; i < n; ++i) {
      if (!valid[i]) {
        ++missing;
        continue;
      }
      ++present;
      const uint32_t code = static_cast<uint32_t>(codes[i]);
      if (code < dict_size) ++cn[code];  // Table invariant; never false for decoded files
    }
    for (size_t k = 0; k < dict_size; ++k) {
      if (cn[k] != 0) {
        runs.emplace_back(k, cn[k]);
        cn[k] = 0;
      }
    }
  } else {
    if (w.keys.size() < n) w.keys.resize(n);
    if (w.sort_b.size() < n) w.sort_b.resize(n);
    uint64_t* keys = w.keys.data();
    for (size_t i = 0; i < n; ++i) {
      if (!valid[i]) {
        ++missing;
      } else {
        keys[present++] = static_cast<uint64_t>(static_cast<uint32_t>(codes[i]));
      }
    }
    MakeRuns(RadixSort(keys, present, w.sort_b.data()), present, &runs);
  }
  a.missing += missing;
  a.count += static_cast<int64_t>(present);
  std::vector<uint32_t>& used = w.used_codes[col];  // for ProcessCramer
  used.clear();
  for (const auto& r : runs) used.push_back(static_cast<uint32_t>(r.first));
  // Hash of each code used in this range (a dense table when the dictionary is not much larger than the range).
  std::vector<uint64_t>& code_hash = w.code_hash;
  std::unordered_map<uint32_t, uint64_t> sparse_hash;
  if (dense && code_hash.size() < dict_size)
    code_hash.resize(dict_size);  // only entries of used codes are read
  std::vector<std::pair<std::string, int64_t>> batch;
  for (const auto& [key, cnt] : runs) {
    uint32_t code = static_cast<uint32_t>(key);
    if (code >= dict_size) continue;  // Table invariant; never true for decoded files
    std::string_view s = c.dict[code];
    uint64_t h = Hash64(s.data(), s.size());
    if (dense) {
      code_hash[code] = h;
    } else {
      sparse_hash.emplace(code, h);
    }
    int64_t len = static_cast<int64_t>(s.size());
    a.len_min = std::min(a.len_min, len);
    a.len_max = std::max(a.len_max, len);
    a.len_sum += static_cast<double>(len) * static_cast<double>(cnt);
    if (a.pattern_checked < kPatternCheckLimit) {
      a.pattern_checked += cnt;
      double dn = static_cast<double>(cnt);
      a.checked_len_sum += static_cast<double>(len) * dn;
      a.token_sum += static_cast<double>(CountTokens(s)) * dn;
      if (LooksLikeEmail(s)) a.pattern_hits[kEmail] += cnt;
      if (LooksLikePhone(s)) a.pattern_hits[kPhone] += cnt;
      if (LooksLikeIdCard(s)) a.pattern_hits[kIdCard] += cnt;
      if (LooksLikeUrl(s)) a.pattern_hits[kUrl] += cnt;
      if (LooksLikeCode(s)) a.pattern_hits[kCodeLike] += cnt;
    }
    if (a.exact) {
      auto [it, inserted] = a.str_counts.try_emplace(std::string(s), 0);
      it->second += cnt;
      if (inserted) a.distinct_bytes += len;
    } else {
      a.hll->Add(h);
      batch.emplace_back(std::string(s), cnt);
    }
  }
  if (!a.exact) a.str_freq->AddBatch(std::move(batch));
  if (a.exact && static_cast<int64_t>(a.str_counts.size()) > opt_.exact_distinct_limit) Overflow(a, ColumnType::kString);
  for (size_t i = 0; i < n; ++i) {
    uint64_t vh = kMissingHash;
    if (valid[i]) {
      uint32_t code = static_cast<uint32_t>(codes[i]);
      if (dense) {
        vh = code < dict_size ? code_hash[code] : 0;
      } else {
        auto it = sparse_hash.find(code);
        vh = it == sparse_hash.end() ? 0 : it->second;
      }
    }
    rh[i] = (((rh[i] << 23) | (rh[i] >> 41)) ^ (vh * 0xff51afd7ed558ccdULL)) * 0x9e3779b97f4a7c15ULL;
  }
}

// Σ x[i]·y[i] over n values, two accumulators of two SSE2 lanes.
double Dot(const double* x, const double* y, size_t n) {
  typedef double V __attribute__((vector_size(16)));
  V acc0 = {0, 0}, acc1 = {0, 0};
  size_t i = 0;
  for (; i + 4 <= n; i += 4) {
    V a0, a1, b0, b1;
    std::memcpy(&a0, x + i, sizeof(V)), std::memcpy(&a1, x + i + 2, sizeof(V));
    std::memcpy(&b0, y + i, sizeof(V)), std::memcpy(&b1, y + i + 2, sizeof(V));
    acc0 += a0 * b0, acc1 += a1 * b1;
  }
  double r = (acc0[0] + acc0[1]) + (acc1[0] + acc1[1]);
  for (; i < n; ++i) r += x[i] * y[i];
  return r;
}

void Profiler::ProcessPearson(WorkerState& w, const GroupView& t) {
  size_t m = pearson_cols_.size();
  if (m < 2) return;
  const size_t n_rows = t.rows;
  // Rows go in blocks small enough for every column's centred values, squares and masks to stay in cache.
  // Per pair only the sums that depend on both columns are computed: Σxy always (values are 0 where missing,
  // so it needs no mask); with column b partly missing, a's Σx, Σx² and count over the rows where b is
  // present are a's own block sums minus a's values on b's few missing rows (or, when b misses many rows, dot
  // products with b's mask).
  constexpr size_t kBlock = 512;
  std::vector<double>& buf = w.pearson_buf;
  buf.resize(3 * m * kBlock);
  std::vector<uint16_t>& miss = w.pearson_miss;  // per column, the block rows where it is missing
  miss.resize(m * kBlock);
  std::vector<double> cnt(m), sum(m), sq(m);
  std::vector<size_t> nmiss(m);
  // The rows that take part: all of them, or a deterministic sample for large datasets.
  const uint32_t* rows = nullptr;
  size_t num_rows = 0;
  if (src_.rows > opt_.correlation_exact_rows) {
    rows = pearson_sample_.data();
    num_rows = static_cast<size_t>(std::lower_bound(pearson_sample_.begin(), pearson_sample_.end(), n_rows) -
                                   pearson_sample_.begin());
  } else {
    if (w.sample_rows.size() < n_rows) {
      w.sample_rows.resize(n_rows);
      for (size_t i = 0; i < n_rows; ++i) w.sample_rows[i] = static_cast<uint32_t>(i);
    }
    rows = w.sample_rows.data();
    num_rows = n_rows;
  }
  // Σ over b's missing rows of a's value, square and presence: (Σx, Σx², count).
  struct Missed {
    double x = 0, x2 = 0, present = 0;
  };
  for (size_t b0 = 0; b0 < num_rows; b0 += kBlock) {
    size_t n = std::min(kBlock, num_rows - b0);
    const uint32_t* at = rows + b0;
    for (size_t k = 0; k < m; ++k) {
      const ColView& c = t.cols[static_cast<size_t>(pearson_cols_[k])];
      double shift = shift_[static_cast<size_t>(pearson_cols_[k])];
      double* xc = buf.data() + 3 * k * kBlock;
      double* xc2 = xc + kBlock;
      double* md = xc2 + kBlock;
      uint16_t* mk = miss.data() + k * kBlock;
      size_t nm = 0;
      double nn = 0, s1 = 0, s2 = 0;
      for (size_t i = 0; i < n; ++i) {
        const size_t row = at[i];
        double v = c.type == ColumnType::kFloat64 ? c.f64[row] : static_cast<double>(c.i64[row]);
        bool ok = c.valid[row] != 0 && std::isfinite(v);
        double x = ok ? v - shift : 0.0;
        xc[i] = x;
        xc2[i] = x * x;
        md[i] = ok ? 1.0 : 0.0;
        mk[nm] = static_cast<uint16_t>(i);
        nm += !ok;
        nn += md[i], s1 += x, s2 += x * x;
      }
      cnt[k] = nn, sum[k] = s1, sq[k] = s2, nmiss[k] = nm;
    }
    // a's sums over the rows where b is present.
    auto over_present = [&](size_t a, size_t b, Missed* out) {
      const double* xa = buf.data() + 3 * a * kBlock;
      const double* xa2 = xa + kBlock;
      const double* ma = xa2 + kBlock;
      if (nmiss[b] * 4 <= n) {
        Missed d;
        const uint16_t* mk = miss.data() + b * kBlock;
        for (size_t j = 0; j < nmiss[b]; ++j) d.x += xa[mk[j]], d.x2 += xa2[mk[j]], d.present += ma[mk[j]];
        out->x = sum[a] - d.x, out->x2 = sq[a] - d.x2, out->present = cnt[a] - d.present;
      } else {
        const double* mb = buf.data() + 3 * b * kBlock + 2 * kBlock;
        out->x = Dot(xa, mb, n), out->x2 = Dot(xa2, mb, n), out->present = Dot(ma, mb, n);
      }
    };
    size_t p = 0;
    for (size_t a = 0; a < m; ++a) {
      const double* xa = buf.data() + 3 * a * kBlock;
      for (size_t b = a + 1; b < m; ++b, ++p) {
        const double* xb = buf.data() + 3 * b * kBlock;
        PairAcc& acc = w.pearson[p];
        acc.sxy += Dot(xa, xb, n);
        Missed sa, sb;
        if (nmiss[b] == 0) {
          sa.x = sum[a], sa.x2 = sq[a], sa.present = cnt[a];
        } else {
          over_present(a, b, &sa);
        }
        if (nmiss[a] == 0) {
          sb.x = sum[b], sb.x2 = sq[b];
        } else {
          over_present(b, a, &sb);
        }
        acc.sx += sa.x, acc.sxx += sa.x2, acc.sy += sb.x, acc.syy += sb.x2;
        acc.n += sa.present;  // rows where both are present
      }
    }
  }
}

void Profiler::ProcessCramer(WorkerState& w, const GroupView& t) {
  size_t m = cramer_cols_.size();
  if (m < 2) return;
  size_t n = t.rows;
  std::vector<std::vector<int16_t>>& ids = w.cramer_ids;
  ids.resize(m);
  constexpr int16_t kNone = kMaxCategories;  // missing, or not one of the column's categories
  for (size_t k = 0; k < m; ++k) {
    ids[k].assign(n, kNone);
    const ColView& c = t.cols[static_cast<size_t>(cramer_cols_[k])];
    CategoryMap& cat = *categories_[k];
    if (c.type == ColumnType::kBool) {
      for (size_t i = 0; i < n; ++i) {
        if (c.valid[i]) ids[k][i] = c.b[i] ? 1 : 0;
      }
      continue;
    }
    if (c.type == ColumnType::kInt64) {
      for (size_t i = 0; i < n; ++i) {
        if (!c.valid[i]) continue;
        int64_t id = c.i64[i] - cramer_int_min_[k];
        if (id >= 0 && id < kMaxCategories) ids[k][i] = static_cast<int16_t>(id);
      }
      continue;
    }
    // Strings: find the codes used in this range, give them shared category ids (under the column's lock,
    // once per code), then translate the rows without the lock.
    std::vector<int16_t>& code_id = w.code_id;
    code_id.assign(c.dict_size <= 4 * n + 64 ? c.dict_size : 0, -2);
    std::unordered_map<int32_t, int16_t> sparse;
    auto slot = [&](int32_t code) -> int16_t& {
      if (!code_id.empty()) return code_id[static_cast<size_t>(code)];
      return sparse.try_emplace(code, int16_t{-2}).first->second;
    };
    // The codes this range uses, found by ProcessString just before.
    const std::vector<uint32_t>& used = w.used_codes[static_cast<size_t>(cramer_cols_[k])];
    {
      std::lock_guard<std::mutex> lock(cat.mu);
      for (uint32_t u : used) {
        if (cat.overflow) break;
        if (u >= c.dict_size) continue;
        const int32_t code = static_cast<int32_t>(u);
        std::string s(c.dict[static_cast<size_t>(code)]);
        auto git = cat.ids.find(s);
        int id;
        if (git != cat.ids.end()) {
          id = git->second;
        } else if (static_cast<int>(cat.names.size()) < kMaxCategories) {
          id = static_cast<int>(cat.names.size());
          cat.ids.emplace(s, id);
          cat.names.push_back(s);
        } else {
          cat.overflow = true;  // more categories than the footer promised: the column drops out
          break;
        }
        slot(code) = static_cast<int16_t>(id);
      }
      if (cat.overflow) continue;
    }
    for (size_t i = 0; i < n; ++i) {
      if (!c.valid[i]) continue;
      int32_t code = c.codes[i];
      if (code < 0 || static_cast<size_t>(code) >= c.dict_size) continue;
      int16_t id = slot(code);
      if (id >= 0) ids[k][i] = id;
    }
  }
  size_t p = 0;
  for (size_t a = 0; a < m; ++a) {
    for (size_t b = a + 1; b < m; ++b, ++p) {
      int64_t* cells = w.cramer[p].data();
      const int16_t* ia = ids[a].data();
      const int16_t* ib = ids[b].data();
      for (size_t i = 0; i < n; ++i) ++cells[ia[i] * kCellStride + ib[i]];
    }
  }
}

void Profiler::CheckTargetEquality(WorkerState& w, const GroupView& t) {
  const ColView& tc = t.cols[static_cast<size_t>(target_)];
  const size_t n = t.rows;
  for (size_t c = 0; c < t.cols.size(); ++c) {
    ColumnAcc& a = w.cols[c];
    const ColView& col = t.cols[c];
    if (static_cast<int>(c) == target_ || !a.equals_target) continue;
    if (col.type != tc.type) {
      a.equals_target = false;
      continue;
    }
    for (size_t i = 0; i < n && a.equals_target; ++i) {
      if (col.valid[i] != tc.valid[i]) {
        a.equals_target = false;
      } else if (col.valid[i]) {
        switch (col.type) {
          case ColumnType::kInt64:
          case ColumnType::kDatetime: a.equals_target = col.i64[i] == tc.i64[i]; break;
          case ColumnType::kFloat64:
            a.equals_target = col.f64[i] == tc.f64[i] || (std::isnan(col.f64[i]) && std::isnan(tc.f64[i]));
            break;
          case ColumnType::kBool: a.equals_target = (col.b[i] != 0) == (tc.b[i] != 0); break;
          case ColumnType::kString: a.equals_target = col.StringAt(i) == tc.StringAt(i); break;
        }
      }
    }
  }
}

Status Profiler::ProcessGroup(WorkerState& w, const GroupView& t, bool correlations_only) {
  if (t.cols.size() != src_.columns.size()) return Status::Internal("row group has the wrong column count");
  if (t.rows > static_cast<size_t>(kGroupRows)) return Status::Internal("row group is too large");
  if (!correlations_only) {
    w.row_hash.assign(t.rows, 0x243f6a8885a308d3ULL);
    w.used_codes.resize(t.cols.size());
    for (size_t c = 0; c < t.cols.size(); ++c) {
      const ColView& col = t.cols[c];
      if (col.type == ColumnType::kString) {
        ProcessString(w, c, col, t.rows, w.row_hash.data());
      } else {
        int64_t nan_before = w.cols[c].nan;
        ProcessNumeric(w, c, col, t.rows, w.row_hash.data());
        w.cols[c].count += w.cols[c].nan - nan_before;  // NaN is a present value, just not a number
      }
    }
    for (uint64_t& h : w.row_hash) h = MixHash64(h);
    row_set_.Insert(w.row_hash.data(), w.row_hash.size());
    ProcessCramer(w, t);
    if (target_ >= 0) CheckTargetEquality(w, t);
  }
  ProcessPearson(w, t);
  return Status::Ok();
}

// ---------------------------------------------------------------- merging

void Profiler::MergeInto(ColumnAcc& a, ColumnAcc& b, ColumnType type) {
  a.count += b.count, a.missing += b.missing, a.nan += b.nan, a.inf += b.inf;
  a.zeros += b.zeros, a.negatives += b.negatives;
  if (b.has_range) {
    if (!a.has_range || b.min_key < a.min_key) a.min_key = b.min_key;
    if (!a.has_range || b.max_key > a.max_key) a.max_key = b.max_key;
    a.has_range = true;
  }
  if (b.n_finite > 0) {
    double na = static_cast<double>(a.n_finite), nb = static_cast<double>(b.n_finite);
    double delta = b.mean - a.mean, tot = na + nb;
    a.mean += delta * nb / tot;
    a.m2 += b.m2 + delta * delta * na * nb / tot;
    a.n_finite += b.n_finite;
  }
  a.len_min = std::min(a.len_min, b.len_min);
  a.len_max = std::max(a.len_max, b.len_max);
  a.len_sum += b.len_sum;
  a.pattern_checked += b.pattern_checked;
  a.token_sum += b.token_sum;
  a.checked_len_sum += b.checked_len_sum;
  for (int k = 0; k < kNumPatterns; ++k) a.pattern_hits[k] += b.pattern_hits[k];
  a.equals_target = a.equals_target && b.equals_target;
  if (a.exact && b.exact) {
    if (type == ColumnType::kString) {
      for (auto& [s, n] : b.str_counts) {
        auto [it, inserted] = a.str_counts.try_emplace(s, 0);
        it->second += n;
        if (inserted) a.distinct_bytes += static_cast<int64_t>(s.size());
      }
      if (static_cast<int64_t>(a.str_counts.size()) > opt_.exact_distinct_limit) Overflow(a, type);
    } else {
      Runs scratch;
      MergeRuns(&a.num_counts, b.num_counts, &scratch);
      if (static_cast<int64_t>(a.num_counts.size()) > opt_.exact_distinct_limit) Overflow(a, type);
    }
    return;
  }
  Overflow(a, type);
  Overflow(b, type);
  a.hll->Merge(*b.hll);
  if (type == ColumnType::kString) {
    a.str_freq->Merge(*b.str_freq);
  } else {
    a.num_freq->Merge(*b.num_freq);
    a.qs->Merge(*b.qs);
  }
}

void Profiler::MergeWorker(WorkerState& into, WorkerState& from) {
  for (size_t c = 0; c < into.cols.size(); ++c) MergeInto(into.cols[c], from.cols[c], src_.columns[c].type);
  for (size_t p = 0; p < into.pearson.size(); ++p) {
    PairAcc& a = into.pearson[p];
    const PairAcc& b = from.pearson[p];
    a.n += b.n, a.sx += b.sx, a.sy += b.sy, a.sxx += b.sxx, a.syy += b.syy, a.sxy += b.sxy;
  }
  for (size_t p = 0; p < into.cramer.size(); ++p) {
    for (size_t i = 0; i < into.cramer[p].size(); ++i) into.cramer[p][i] += from.cramer[p][i];
  }
}

Status Profiler::RunPass(bool correlations_only) {
  int threads = opt_.num_threads > 0 ? opt_.num_threads : static_cast<int>(std::thread::hardware_concurrency());
  threads = std::max(1, std::min<int>(threads, static_cast<int>(std::max<int64_t>(1, src_.num_groups))));
  size_t m = pearson_cols_.size();
  size_t cm = cramer_cols_.size();
  workers_.clear();
  workers_.resize(static_cast<size_t>(threads));
  for (WorkerState& w : workers_) {
    w.cols.resize(src_.columns.size());
    w.pearson.assign(m * (m > 0 ? m - 1 : 0) / 2, PairAcc());
    if (!correlations_only) {
      w.cramer.assign(cm * (cm > 0 ? cm - 1 : 0) / 2, std::vector<int64_t>(kCellStride * kCellStride, 0));
    }
  }
  std::atomic<int64_t> next{0};
  std::atomic<bool> stop{false};
  std::mutex err_mu;
  Status first_error;
  auto work = [&](WorkerState& w, bool calling_thread) {
    for (;;) {
      if (stop.load()) return;
      int64_t g = next.fetch_add(1);
      if (g >= src_.num_groups) return;
      Status s;
      if (calling_thread && cancel_ && cancel_()) {
        s = Status::Cancelled("profiling was cancelled");
      } else {
        s = src_.read(g, &w.chunks, &w.view);
        if (s.ok()) s = ProcessGroup(w, w.view, correlations_only);
      }
      if (!s.ok()) {
        std::lock_guard<std::mutex> lock(err_mu);
        if (first_error.ok()) first_error = s;
        stop = true;
        return;
      }
    }
  };
  std::vector<std::thread> pool;
  for (int i = 1; i < threads; ++i) pool.emplace_back(work, std::ref(workers_[static_cast<size_t>(i)]), false);
  work(workers_[0], true);
  for (std::thread& t : pool) t.join();
  RETURN_IF_ERROR(first_error);
  for (WorkerState& w : workers_) {
    for (ColumnAcc& a : w.cols) DenseFlush(a);
  }
  for (size_t i = 1; i < workers_.size(); ++i) {
    MergeWorker(workers_[0], workers_[i]);
    workers_[i] = WorkerState();
  }
  return Status::Ok();
}

// ---------------------------------------------------------------- results

Json Profiler::ValueJson(ColumnType t, uint64_t key) const {
  switch (t) {
    case ColumnType::kInt64: return KeyInt(key);
    case ColumnType::kFloat64: return KeyFloat(key);
    case ColumnType::kBool: return KeyInt(key) != 0;
    case ColumnType::kDatetime: return FormatDatetimeMicros(KeyInt(key));
    case ColumnType::kString: return nullptr;
  }
  return nullptr;
}

Json NumberOut(ColumnType t, double v) {
  if (t == ColumnType::kDatetime) {
    if (!std::isfinite(v)) return nullptr;
    return FormatDatetimeMicros(static_cast<int64_t>(std::llround(v)));
  }
  return v;
}

bool IsBooleanPair(std::string a, std::string b) {
  for (std::string* s : {&a, &b}) {
    for (char& ch : *s) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  }
  if (b < a) std::swap(a, b);
  static const std::pair<const char*, const char*> kPairs[] = {
      {"0", "1"}, {"n", "y"}, {"no", "yes"}, {"false", "true"}, {"f", "t"}, {"off", "on"}, {"-1", "1"}};
  for (const auto& [x, y] : kPairs) {
    if (a == x && b == y) return true;
  }
  return false;
}

Json Profiler::ColumnJson(size_t ci, const ColumnAcc& a, double* variance) {
  const ColumnInfo& info = src_.columns[ci];
  const ColumnType t = info.type;
  Json j;
  j["name"] = info.name;
  j["type"] = ColumnTypeName(t);
  j["count"] = a.count;
  j["missing"] = a.missing;
  int64_t rows = a.count + a.missing;
  j["missing_fraction"] = rows > 0 ? static_cast<double>(a.missing) / static_cast<double>(rows) : 0.0;
  int64_t distinct = 0;
  if (a.exact) {
    distinct = static_cast<int64_t>(t == ColumnType::kString ? a.str_counts.size() : a.num_counts.size());
    if (t == ColumnType::kFloat64 && a.nan > 0) ++distinct;
  } else {
    distinct = std::min<int64_t>(a.count, std::llround(a.hll->Estimate()));
  }
  j["distinct"] = distinct;
  j["distinct_approximate"] = !a.exact;

  // Top values (exact counts, or Misra-Gries lower bounds).
  size_t top_k = static_cast<size_t>(std::max(opt_.top_k, 0));
  size_t hist_k = static_cast<size_t>(std::max(opt_.histogram_bins, 1));
  Json top = Json::array();
  int64_t top_count = 0;
  std::vector<std::pair<std::string, int64_t>> str_top;
  if (t == ColumnType::kString) {
    if (a.exact) {
      std::vector<std::pair<std::string, int64_t>> all(a.str_counts.begin(), a.str_counts.end());
      size_t k = std::min(all.size(), std::max(top_k, hist_k));
      std::partial_sort(all.begin(), all.begin() + static_cast<std::ptrdiff_t>(k), all.end(), [](const auto& x, const auto& y) {
        return x.second != y.second ? x.second > y.second : x.first < y.first;
      });
      all.resize(k);
      str_top = std::move(all);
    } else {
      str_top = a.str_freq->Top(std::max(top_k, hist_k));
    }
    for (size_t i = 0; i < str_top.size() && i < top_k; ++i) top.push_back({{"value", str_top[i].first}, {"count", str_top[i].second}});
    if (!str_top.empty()) top_count = str_top[0].second;
  } else {
    Runs best;
    if (a.exact) {
      best = a.num_counts;
      size_t k = std::min(best.size(), top_k);
      std::partial_sort(best.begin(), best.begin() + static_cast<std::ptrdiff_t>(k), best.end(), [](const auto& x, const auto& y) {
        return x.second != y.second ? x.second > y.second : x.first < y.first;
      });
      best.resize(k);
    } else {
      best = a.num_freq->Top(top_k);
    }
    for (const auto& [key, n] : best) top.push_back({{"value", ValueJson(t, key)}, {"count", n}});
    if (!best.empty()) top_count = best[0].second;
    if (t == ColumnType::kFloat64 && a.nan > top_count && top.size() < top_k + 1) top_count = a.nan;
  }
  j["top_values"] = std::move(top);
  j["top_values_approximate"] = !a.exact;
  j["top_values_max_error"] = a.exact ? 0 : (t == ColumnType::kString ? a.str_freq->max_error() : a.num_freq->max_error());

  std::vector<std::string> kinds;
  bool constant = a.count > 0 && a.exact && distinct == 1;
  if (constant) kinds.push_back("constant");
  if (!constant && a.count > 0 && static_cast<double>(top_count) >= 0.99 * static_cast<double>(a.count)) {
    kinds.push_back("near_constant");
  }
  bool unique = a.count >= 10 && (a.exact ? distinct == a.count : static_cast<double>(distinct) >= 0.97 * static_cast<double>(a.count));
  double checked = static_cast<double>(std::max<int64_t>(a.pattern_checked, 1));
  auto share = [&](Pattern p) { return static_cast<double>(a.pattern_hits[p]) / checked; };
  if (unique && (t == ColumnType::kInt64 || (t == ColumnType::kString && share(kCodeLike) >= 0.9))) {
    kinds.push_back("identifier");
  }
  bool boolean_like = t == ColumnType::kBool;
  if (t == ColumnType::kString) {
    if (a.pattern_checked > 0) {
      if (share(kEmail) >= 0.9) kinds.push_back("email");
      if (share(kPhone) >= 0.9) kinds.push_back("phone");
      if (share(kIdCard) >= 0.9) kinds.push_back("id_card");
      if (share(kUrl) >= 0.9) kinds.push_back("url");
      if (a.checked_len_sum / checked >= 20 && a.token_sum / checked >= 4) kinds.push_back("free_text");
    }
    if (static_cast<double>(distinct) > 0.5 * static_cast<double>(a.count) && distinct > 1000) {
      kinds.push_back("high_cardinality");
    }
    if (a.exact && a.str_counts.size() == 2) {
      auto it = a.str_counts.begin();
      std::string x = it->first;
      ++it;
      boolean_like = IsBooleanPair(x, it->first);
    }
  } else if (t == ColumnType::kInt64 && a.exact && a.num_counts.size() == 2) {
    boolean_like = IsBooleanPair(std::to_string(KeyInt(a.num_counts[0].first)), std::to_string(KeyInt(a.num_counts[1].first)));
  }
  if (boolean_like) kinds.push_back("boolean_like");
  j["semantic_kinds"] = kinds;

  if (t == ColumnType::kString) {
    if (a.count > 0) {
      j["length"] = {{"min", a.len_min}, {"mean", a.len_sum / static_cast<double>(a.count)}, {"max", a.len_max}};
    } else {
      j["length"] = {{"min", nullptr}, {"mean", nullptr}, {"max", nullptr}};
    }
    Json bins = Json::array();
    int64_t shown = 0;
    for (size_t i = 0; i < str_top.size() && i < hist_k; ++i) {
      bins.push_back({{"value", str_top[i].first}, {"count", str_top[i].second}});
      shown += str_top[i].second;
    }
    j["histogram"] = {{"kind", "top_values"}, {"bins", std::move(bins)}, {"other", a.count - shown}};
    *variance = 0;
    return j;
  }

  // Numeric: min/max/mean/std.
  double scale = t == ColumnType::kDatetime ? 1e6 : 1.0;  // datetime moments are in seconds
  double sd = a.n_finite > 1 ? std::sqrt(std::max(0.0, a.m2 / static_cast<double>(a.n_finite - 1))) : std::numeric_limits<double>::quiet_NaN();
  *variance = a.n_finite > 1 ? a.m2 / static_cast<double>(a.n_finite - 1) : 0.0;
  j["min"] = a.has_range ? ValueJson(t, a.min_key) : Json(nullptr);
  j["max"] = a.has_range ? ValueJson(t, a.max_key) : Json(nullptr);
  if (t == ColumnType::kBool) {
    j["min"] = a.has_range ? Json(KeyInt(a.min_key)) : Json(nullptr);
    j["max"] = a.has_range ? Json(KeyInt(a.max_key)) : Json(nullptr);
  }
  j["mean"] = a.n_finite > 0 ? NumberOut(t, a.mean * scale) : Json(nullptr);
  j["std"] = a.n_finite > 1 ? Json(sd) : Json(nullptr);
  j["zeros"] = a.zeros;
  j["negatives"] = a.negatives;
  if (t == ColumnType::kFloat64) {
    j["nan"] = a.nan;
    j["infinite"] = a.inf;
  }

  // Value distribution: exact (key, count) list, or the sketch's weighted items.
  std::vector<std::pair<double, int64_t>> dist;
  if (a.exact) {
    dist.reserve(a.num_counts.size());
    for (const auto& [k, n] : a.num_counts) dist.emplace_back(KeyToDouble(t, k), n);
  } else {
    dist = a.qs->Items();
  }
  int64_t total = 0;
  for (const auto& d : dist) total += d.second;
  static const std::pair<const char*, double> kQuantiles[] = {{"p1", 0.01},  {"p5", 0.05},  {"p25", 0.25}, {"p50", 0.5},
                                                              {"p75", 0.75}, {"p95", 0.95}, {"p99", 0.99}};
  Json q = Json::object();
  for (const auto& [name, p] : kQuantiles) {
    if (total == 0) {
      q[name] = nullptr;
      continue;
    }
    double h = p * static_cast<double>(total - 1);
    int64_t lo = static_cast<int64_t>(std::floor(h));
    double frac = h - static_cast<double>(lo);
    double x_lo = dist.back().first, x_hi = dist.back().first;
    int64_t cum = 0;
    bool have_lo = false;
    for (const auto& [v, n] : dist) {
      if (!have_lo && cum + n > lo) {
        x_lo = v;
        have_lo = true;
      }
      if (cum + n > lo + 1) {
        x_hi = v;
        break;
      }
      cum += n;
    }
    double v = (frac == 0 || x_lo == x_hi) ? x_lo : x_lo + frac * (x_hi - x_lo);
    if (std::isnan(v)) v = x_lo;
    q[name] = t == ColumnType::kDatetime ? NumberOut(t, v) : Json(v);
  }
  j["quantiles"] = q;
  j["quantiles_approximate"] = !a.exact;

  if (t != ColumnType::kBool) {
    // Equal-width histogram over the finite range.
    double lo = std::numeric_limits<double>::infinity(), hi = -lo;
    for (const auto& [v, n] : dist) {
      if (std::isfinite(v)) lo = std::min(lo, v), hi = std::max(hi, v);
    }
    if (!a.exact && a.has_range) {
      // A sketch may have dropped the extremes; the exact range saw every value.
      const double mn = KeyToDouble(t, a.min_key), mx = KeyToDouble(t, a.max_key);
      if (std::isfinite(mn)) lo = std::min(lo, mn);
      if (std::isfinite(mx)) hi = std::max(hi, mx);
    }
    Json bins = Json::array();
    if (lo <= hi) {
      size_t nb = hist_k;
      if (t != ColumnType::kFloat64 && hi - lo + 1 <= static_cast<double>(nb)) nb = static_cast<size_t>(hi - lo + 1);
      if (hi == lo) nb = 1;
      std::vector<int64_t> counts(nb, 0);
      double width = (hi - lo) / static_cast<double>(nb);
      bool per_value = t != ColumnType::kFloat64 && static_cast<double>(nb) == hi - lo + 1;
      for (const auto& [v, n] : dist) {
        if (!std::isfinite(v)) continue;
        size_t b = per_value ? static_cast<size_t>(v - lo)
                             : (width > 0 ? static_cast<size_t>(std::min((v - lo) / width, static_cast<double>(nb - 1))) : 0);
        counts[std::min(b, nb - 1)] += n;
      }
      if (!a.exact) {
        // Sketch weights only approximate the number of values (sampled rows are weighted up): scale the bins
        // to the exact count of finite values, largest remainders first, so they still add up.
        int64_t total = 0;
        for (int64_t c : counts) total += c;
        if (total > 0 && total != a.n_finite) {
          std::vector<std::pair<double, size_t>> rem(nb);
          int64_t assigned = 0;
          for (size_t b = 0; b < nb; ++b) {
            const double exact = static_cast<double>(counts[b]) * static_cast<double>(a.n_finite) / static_cast<double>(total);
            counts[b] = static_cast<int64_t>(exact);
            assigned += counts[b];
            rem[b] = {exact - static_cast<double>(counts[b]), b};
          }
          std::sort(rem.begin(), rem.end(), [](const auto& x, const auto& y) { return x.first > y.first; });
          for (size_t k = 0; assigned < a.n_finite && k < nb; ++k, ++assigned) ++counts[rem[k].second];
        }
      }
      for (size_t b = 0; b < nb; ++b) {
        double blo = per_value ? lo + static_cast<double>(b) : lo + width * static_cast<double>(b);
        double bhi = per_value ? blo : (b + 1 == nb ? hi : lo + width * static_cast<double>(b + 1));
        bins.push_back({{"lo", NumberOut(t, blo)}, {"hi", NumberOut(t, bhi)}, {"count", counts[b]}});
      }
    }
    j["histogram"] = {{"kind", "equal_width"}, {"bins", std::move(bins)}, {"approximate", !a.exact}};
  }
  return j;
}

Json Warning(const std::string& kind, std::vector<std::string> columns, const std::string& message) {
  return {{"kind", kind}, {"columns", std::move(columns)}, {"message", message}};
}

std::string Percent(double f) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.1f%%", f * 100);
  return buf;
}

std::string Fixed(double v, int digits) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.*f", digits, v);
  return buf;
}

Result<Json> Profiler::Run(const Json& footer_stats, int64_t file_bytes) {
  if (opt_.exact_distinct_limit < 1) return Status::InvalidArgument("exact_distinct_limit must be at least 1");
  if (opt_.top_k < 0 || opt_.top_k > 10000) return Status::InvalidArgument("top_k must be in [0, 10000]");
  if (opt_.histogram_bins < 1 || opt_.histogram_bins > 10000) {
    return Status::InvalidArgument("histogram_bins must be in [1, 10000]");
  }
  if (opt_.max_correlation_columns < 0) return Status::InvalidArgument("max_correlation_columns must be >= 0");
  const auto& cols = src_.columns;
  if (!opt_.target.empty()) {
    for (size_t c = 0; c < cols.size(); ++c) {
      if (cols[c].name == opt_.target) target_ = static_cast<int>(c);
    }
    if (target_ < 0) {
      return Status(StatusCode::kInvalidArgument, "target column '" + opt_.target + "' does not exist")
          .WithDetail(ErrorDetail::Field("target", "no such column"));
    }
  }
  // Column statistics known up front (the file footer, or a scan of an in-memory table) choose the Pearson
  // shift and the Cramér candidates, so every worker uses the same ones.
  const Json* stats = footer_stats.contains("columns") ? &footer_stats["columns"] : nullptr;
  shift_.assign(cols.size(), 0.0);
  ranges_.assign(cols.size(), KnownRange());
  for (size_t c = 0; c < cols.size(); ++c) {
    if (cols[c].type == ColumnType::kBool) ranges_[c].known = true, ranges_[c].lo_i = 0, ranges_[c].hi_i = 1;
  }
  std::vector<int> numeric;
  std::vector<int> categorical;
  for (size_t c = 0; c < cols.size(); ++c) {
    Json s = stats && c < stats->size() ? (*stats)[c] : Json::object();
    ColumnType t = cols[c].type;
    if (t == ColumnType::kInt64 || t == ColumnType::kFloat64) {
      numeric.push_back(static_cast<int>(c));
      if (s.contains("min") && s.contains("max") && s["min"].is_number() && s["max"].is_number()) {
        double mid = 0.5 * s["min"].get<double>() + 0.5 * s["max"].get<double>();
        if (std::isfinite(mid)) shift_[c] = mid;
        KnownRange& r = ranges_[c];
        if (t == ColumnType::kInt64 && s["min"].is_number_integer() && s["max"].is_number_integer()) {
          r.lo_i = s["min"].get<int64_t>(), r.hi_i = s["max"].get<int64_t>();
          r.known = r.lo_i <= r.hi_i;
        } else if (t == ColumnType::kFloat64) {
          r.lo_f = s["min"].get<double>(), r.hi_f = s["max"].get<double>();
          r.known = std::isfinite(r.lo_f) && std::isfinite(r.hi_f) && r.lo_f <= r.hi_f;
        }
      }
    }
    bool candidate = false;
    int64_t int_min = 0;
    if (t == ColumnType::kBool) candidate = true;
    if (t == ColumnType::kString && s.contains("distinct") && s["distinct"].is_number_integer() &&
        s["distinct"].get<int64_t>() <= kMaxCategories && !s.value("distinct_approximate", false)) {
      candidate = true;
    }
    if (t == ColumnType::kInt64 && static_cast<int>(c) == target_ && s.contains("min") && s.contains("max") &&
        s["min"].is_number_integer() && s["max"].is_number_integer()) {
      int_min = s["min"].get<int64_t>();
      int64_t max = s["max"].get<int64_t>();
      candidate = max >= int_min && max - int_min < kMaxCategories;
    }
    if (candidate) categorical.push_back(static_cast<int>(c));
    if (candidate) cramer_int_min_.push_back(int_min);
  }
  // Keep the target among the Cramér columns when trimming to the cap.
  if (categorical.size() > kMaxCramerColumns) {
    std::vector<int> keep;
    std::vector<int64_t> keep_min;
    for (size_t i = 0; i < categorical.size(); ++i) {
      if (categorical[i] == target_ || keep.size() + (target_ >= 0 ? 1 : 0) < kMaxCramerColumns) {
        keep.push_back(categorical[i]);
        keep_min.push_back(cramer_int_min_[i]);
      }
    }
    categorical = keep;
    cramer_int_min_ = keep_min;
  }
  cramer_cols_ = categorical;
  for (size_t i = 0; i < cramer_cols_.size(); ++i) categories_.push_back(std::make_unique<CategoryMap>());

  row_set_.Reserve(src_.rows);
  for (uint32_t i = 0; i < static_cast<uint32_t>(kGroupRows); ++i) {
    if ((MixHash64(i + 0x5bd1e995) & (kSampleEvery - 1)) == 0) sketch_sample_.push_back(i);
    if ((MixHash64(i + 0x6a09e667) & 3) == 0) pearson_sample_.push_back(i);
  }
  bool two_pass = numeric.size() > static_cast<size_t>(opt_.max_correlation_columns);
  pearson_cols_ = two_pass ? std::vector<int>() : numeric;
  RETURN_IF_ERROR(RunPass(false));
  WorkerState state = std::move(workers_[0]);

  std::vector<double> variance(cols.size(), 0.0);
  Json columns = Json::array();
  for (size_t c = 0; c < cols.size(); ++c) columns.push_back(ColumnJson(c, state.cols[c], &variance[c]));

  if (two_pass) {
    // Too many numeric columns: keep the largest-variance ones (and the target) and read the data again.
    std::vector<int> order = numeric;
    std::stable_sort(order.begin(), order.end(), [&](int x, int y) { return variance[static_cast<size_t>(x)] > variance[static_cast<size_t>(y)]; });
    std::vector<int> chosen;
    if (target_ >= 0 && IsNumericType(cols[static_cast<size_t>(target_)].type) &&
        std::find(numeric.begin(), numeric.end(), target_) != numeric.end()) {
      chosen.push_back(target_);
    }
    for (int c : order) {
      if (chosen.size() >= static_cast<size_t>(opt_.max_correlation_columns)) break;
      if (c != target_) chosen.push_back(c);
    }
    std::sort(chosen.begin(), chosen.end());
    pearson_cols_ = chosen;
    for (int c : chosen) shift_[static_cast<size_t>(c)] = state.cols[static_cast<size_t>(c)].mean;
    if (pearson_cols_.size() >= 2) {
      RETURN_IF_ERROR(RunPass(true));
      state.pearson = std::move(workers_[0].pearson);
    }
  }
  workers_.clear();

  Json warnings = Json::array();
  int64_t rows = src_.rows;
  // Column warnings.
  for (size_t c = 0; c < cols.size(); ++c) {
    const Json& cj = columns[c];
    const std::string& name = cols[c].name;
    std::vector<std::string> kinds = cj["semantic_kinds"].get<std::vector<std::string>>();
    auto has = [&](const char* k) { return std::find(kinds.begin(), kinds.end(), k) != kinds.end(); };
    if (has("constant")) warnings.push_back(Warning("constant", {name}, "column '" + name + "' has a single value"));
    if (has("near_constant")) {
      warnings.push_back(Warning("near_constant", {name}, "column '" + name + "' has one value in at least 99% of rows"));
    }
    if (has("identifier") && static_cast<int>(c) != target_) {
      warnings.push_back(Warning("identifier", {name}, "column '" + name +
                                                           "' looks like an identifier (every value unique); exclude it from features"));
    }
    double mf = cj["missing_fraction"].get<double>();
    if (mf > 0.5) {
      warnings.push_back(Warning("high_missing", {name}, "column '" + name + "' is " + Percent(mf) + " missing"));
    }
    if (target_ >= 0 && static_cast<int>(c) != target_ && state.cols[c].equals_target && rows > 0) {
      warnings.push_back(Warning("target_leakage", {name, opt_.target},
                                 "column '" + name + "' is identical to the target '" + opt_.target + "'"));
    }
  }
  int64_t dup = row_set_.Duplicates();
  if (dup > 0) {
    warnings.push_back(Warning("duplicate_rows", {}, std::to_string(dup) + " rows (" +
                                                         Percent(static_cast<double>(dup) / static_cast<double>(std::max<int64_t>(rows, 1))) +
                                                         ") duplicate an earlier row"));
  }
  // Class imbalance.
  if (target_ >= 0) {
    const ColumnAcc& ta = state.cols[static_cast<size_t>(target_)];
    std::vector<std::pair<std::string, int64_t>> classes;
    ColumnType tt = cols[static_cast<size_t>(target_)].type;
    if (ta.exact && tt == ColumnType::kString) {
      for (const auto& [s, n] : ta.str_counts) classes.emplace_back(s, n);
    } else if (ta.exact && (tt == ColumnType::kInt64 || tt == ColumnType::kBool)) {
      for (const auto& [k, n] : ta.num_counts) classes.emplace_back(ValueJson(tt, k).dump(), n);
    }
    if (classes.size() >= 2 && classes.size() <= static_cast<size_t>(kMaxCategories)) {
      auto smallest = std::min_element(classes.begin(), classes.end(), [](const auto& x, const auto& y) {
        return x.second != y.second ? x.second < y.second : x.first < y.first;
      });
      double frac = static_cast<double>(smallest->second) / static_cast<double>(std::max<int64_t>(ta.count, 1));
      if (frac < 0.1) {
        warnings.push_back(Warning("class_imbalance", {opt_.target},
                                   "target '" + opt_.target + "': the smallest class " + smallest->first + " has " +
                                       std::to_string(smallest->second) + " rows (" + Percent(frac) + ")"));
      }
    }
  }

  // Correlations.
  auto assoc_json = [&](const std::vector<int>& members, const std::vector<double>& values,
                        const std::vector<double>& ns, const char* label, double warn_at) {
    Json names = Json::array();
    for (int c : members) names.push_back(cols[static_cast<size_t>(c)].name);
    size_t m = members.size();
    struct PairOut {
      size_t a, b;
      double v, n;
    };
    std::vector<PairOut> pairs;
    std::vector<std::vector<double>> mat(m, std::vector<double>(m, std::numeric_limits<double>::quiet_NaN()));
    size_t p = 0;
    for (size_t a = 0; a < m; ++a) {
      mat[a][a] = 1.0;
      for (size_t b = a + 1; b < m; ++b, ++p) {
        double v = values[p];
        mat[a][b] = mat[b][a] = v;
        if (std::isfinite(v) && std::fabs(v) >= 0.1) pairs.push_back({a, b, v, ns[p]});
      }
    }
    std::stable_sort(pairs.begin(), pairs.end(), [](const PairOut& x, const PairOut& y) { return std::fabs(x.v) > std::fabs(y.v); });
    Json plist = Json::array();
    for (const PairOut& po : pairs) {
      const std::string& na = cols[static_cast<size_t>(members[po.a])].name;
      const std::string& nb = cols[static_cast<size_t>(members[po.b])].name;
      plist.push_back({{"columns", {na, nb}}, {"value", po.v}, {"n", static_cast<int64_t>(po.n)}});
      bool with_target = members[po.a] == target_ || members[po.b] == target_;
      if (with_target && std::fabs(po.v) >= 0.98) {
        const std::string& feature = members[po.a] == target_ ? nb : na;
        warnings.push_back(Warning("target_leakage", {feature, opt_.target},
                                   "column '" + feature + "' is almost a copy of the target '" + opt_.target + "' (" +
                                       label + " " + Fixed(po.v, 3) + ")"));
      } else if (!with_target && std::fabs(po.v) >= warn_at) {
        warnings.push_back(Warning("high_correlation", {na, nb},
                                   "columns '" + na + "' and '" + nb + "' are highly associated (" + label + " " +
                                       Fixed(po.v, 3) + "); one of them is probably redundant"));
      }
    }
    Json out = {{"columns", std::move(names)}, {"pairs", std::move(plist)}};
    if (m <= 20) {
      Json jm = Json::array();
      for (size_t a = 0; a < m; ++a) {
        Json row = Json::array();
        for (size_t b = 0; b < m; ++b) row.push_back(std::isfinite(mat[a][b]) ? Json(mat[a][b]) : Json(nullptr));
        jm.push_back(std::move(row));
      }
      out["matrix"] = std::move(jm);
    }
    return out;
  };
  std::vector<double> r, rn;
  for (const PairAcc& acc : state.pearson) {
    double num = acc.n * acc.sxy - acc.sx * acc.sy;
    double dx = acc.n * acc.sxx - acc.sx * acc.sx, dy = acc.n * acc.syy - acc.sy * acc.sy;
    double v = (acc.n >= 2 && dx > 0 && dy > 0) ? num / std::sqrt(dx * dy) : std::numeric_limits<double>::quiet_NaN();
    if (std::isfinite(v)) v = std::clamp(v, -1.0, 1.0);
    r.push_back(v);
    rn.push_back(acc.n);
  }
  // Cramér's V from each contingency table over the categories that occur in it.
  std::vector<int> cramer_members;
  std::vector<size_t> member_index;
  for (size_t k = 0; k < cramer_cols_.size(); ++k) {
    if (!categories_[k]->overflow) cramer_members.push_back(cramer_cols_[k]), member_index.push_back(k);
  }
  std::vector<double> cv, cvn;
  {
    size_t cm = cramer_cols_.size();
    auto pair_index = [&](size_t a, size_t b) { return a * cm - a * (a + 1) / 2 + (b - a - 1); };
    for (size_t x = 0; x < member_index.size(); ++x) {
      for (size_t y = x + 1; y < member_index.size(); ++y) {
        const std::vector<int64_t>& cells = state.cramer[pair_index(member_index[x], member_index[y])];
        std::vector<double> rs(kMaxCategories, 0), cs(kMaxCategories, 0);
        double n = 0;
        for (int i = 0; i < kMaxCategories; ++i) {
          for (int k = 0; k < kMaxCategories; ++k) {
            double v = static_cast<double>(cells[static_cast<size_t>(i * kCellStride + k)]);
            rs[static_cast<size_t>(i)] += v, cs[static_cast<size_t>(k)] += v, n += v;
          }
        }
        int nr = 0, nc = 0;
        for (int i = 0; i < kMaxCategories; ++i) nr += rs[static_cast<size_t>(i)] > 0, nc += cs[static_cast<size_t>(i)] > 0;
        double v = std::numeric_limits<double>::quiet_NaN();
        if (n > 0 && std::min(nr, nc) >= 2) {
          double chi2 = 0;
          for (int i = 0; i < kMaxCategories; ++i) {
            if (rs[static_cast<size_t>(i)] == 0) continue;
            for (int k = 0; k < kMaxCategories; ++k) {
              if (cs[static_cast<size_t>(k)] == 0) continue;
              double e = rs[static_cast<size_t>(i)] * cs[static_cast<size_t>(k)] / n;
              double d = static_cast<double>(cells[static_cast<size_t>(i * kCellStride + k)]) - e;
              chi2 += d * d / e;
            }
          }
          v = std::sqrt(chi2 / n / static_cast<double>(std::min(nr, nc) - 1));
          v = std::clamp(v, 0.0, 1.0);
        }
        cv.push_back(v);
        cvn.push_back(n);
      }
    }
  }
  Json pearson = assoc_json(pearson_cols_, r, rn, "r", 0.95);
  pearson["sampled"] = src_.rows > opt_.correlation_exact_rows && pearson_cols_.size() >= 2;
  Json correlations = {{"pearson", std::move(pearson)},
                       {"cramers_v", assoc_json(cramer_members, cv, cvn, "Cramér's V", 0.95)}};

  int64_t memory = 0;
  for (size_t c = 0; c < cols.size(); ++c) {
    const ColumnAcc& a = state.cols[c];
    switch (cols[c].type) {
      case ColumnType::kInt64:
      case ColumnType::kDatetime:
      case ColumnType::kFloat64: memory += rows * 9; break;
      case ColumnType::kBool: memory += rows * 2; break;
      case ColumnType::kString: {
        int64_t dict_bytes = a.exact ? a.distinct_bytes
                                     : static_cast<int64_t>(static_cast<double>(columns[c]["distinct"].get<int64_t>()) *
                                                            (a.count > 0 ? a.len_sum / static_cast<double>(a.count) : 0));
        memory += rows * 5 + dict_bytes + columns[c]["distinct"].get<int64_t>() * 32;
        break;
      }
    }
  }
  Json out;
  out["rows"] = rows;
  out["num_columns"] = cols.size();
  out["file_bytes"] = file_bytes;
  out["memory_bytes_estimate"] = memory;
  out["duplicate_rows"] = dup;
  out["duplicate_rows_approximate"] = row_set_.approximate();
  out["target"] = target_ >= 0 ? Json(opt_.target) : Json(nullptr);
  out["columns"] = std::move(columns);
  out["correlations"] = std::move(correlations);
  out["warnings"] = std::move(warnings);
  return out;
}

}  // namespace

Result<Json> ProfileDataset(const DatasetFile& file, const ProfileOptions& options, const std::function<bool()>& cancel) {
  Source src;
  src.rows = file.num_rows();
  src.num_groups = file.num_groups();
  src.columns = file.columns();
  src.read = [&file](int64_t g, std::vector<DecodedChunk>* chunks, GroupView* view) -> Status {
    RETURN_IF_ERROR(file.DecodeGroup(g, chunks));
    const size_t num_cols = file.columns().size();
    view->rows = static_cast<size_t>(file.group_rows(g));
    view->cols.resize(num_cols);
    for (size_t c = 0; c < num_cols; ++c) {
      const DecodedChunk& d = (*chunks)[c];
      const ChunkMeta& m = file.chunk_meta(g, c);
      ColView& v = view->cols[c];
      v = ColView();
      v.type = file.columns()[c].type;
      v.valid = d.valid.data();
      switch (v.type) {
        case ColumnType::kInt64:
        case ColumnType::kDatetime:
          v.i64 = d.i64.data();
          if (m.encoding == ChunkEncoding::kScaled) v.int_step = m.step;
          break;
        case ColumnType::kFloat64:
          v.f64 = d.f64.data();
          // Decimal chunks keep their mantissas in i64 (DecodeChunk).
          if ((m.encoding == ChunkEncoding::kDecimal || m.encoding == ChunkEncoding::kDecimalNegZero) &&
              d.i64.size() >= view->rows) {
            v.mantissa = d.i64.data();
            v.decimal_scale = m.scale;
          }
          break;
        case ColumnType::kBool:
          v.b = d.b.data();
          break;
        case ColumnType::kString:
          v.codes = d.codes.data();
          v.dict = d.dict.data();
          v.dict_size = d.dict.size();
          break;
      }
    }
    return Status::Ok();
  };
  Profiler p(src, options, cancel);
  return p.Run(file.StatsJson(), file.file_bytes());
}

Result<Json> ProfileTable(const Table& table, const ProfileOptions& options, const std::function<bool()>& cancel) {
  Source src;
  src.rows = table.num_rows;
  src.num_groups = (src.rows + kGroupRows - 1) / kGroupRows;
  Json stats_cols = Json::array();
  RETURN_IF_ERROR(ValidateTable(table));
  const size_t need = static_cast<size_t>(table.num_rows);
  for (const Column& c : table.columns) {
    src.columns.push_back({c.name, c.type, 0});
    // The statistics the file footer would hold: range of numbers, distinct count of strings.
    Json s = Json::object();
    if (c.type == ColumnType::kInt64 || c.type == ColumnType::kFloat64) {
      bool any = false;
      double lo = 0, hi = 0;
      int64_t ilo = 0, ihi = 0;
      for (size_t i = 0; i < need; ++i) {
        if (!c.valid[i]) continue;
        if (c.type == ColumnType::kInt64) {
          int64_t v = c.i64[i];
          if (!any || v < ilo) ilo = v;
          if (!any || v > ihi) ihi = v;
          any = true;
        } else if (std::isfinite(c.f64[i])) {
          double v = c.f64[i];
          if (!any || v < lo) lo = v;
          if (!any || v > hi) hi = v;
          any = true;
        }
      }
      if (any && c.type == ColumnType::kInt64) s["min"] = ilo, s["max"] = ihi;
      if (any && c.type == ColumnType::kFloat64) s["min"] = lo, s["max"] = hi;
    } else if (c.type == ColumnType::kString) {
      std::vector<uint8_t> used(c.dict.size(), 0);
      std::unordered_map<std::string_view, int> seen;
      for (size_t i = 0; i < need; ++i) {
        if (!c.valid[i] || used[static_cast<size_t>(c.codes[i])]) continue;
        used[static_cast<size_t>(c.codes[i])] = 1;
        seen.emplace(c.dict[static_cast<size_t>(c.codes[i])], 0);
        if (seen.size() > static_cast<size_t>(kMaxCategories)) break;
      }
      s["distinct"] = seen.size();
      s["distinct_approximate"] = false;
    }
    stats_cols.push_back(std::move(s));
  }
  std::vector<std::vector<std::string_view>> dicts(table.columns.size());
  for (size_t c = 0; c < table.columns.size(); ++c)
    dicts[c].assign(table.columns[c].dict.begin(), table.columns[c].dict.end());
  src.read = [&table, &dicts](int64_t g, std::vector<DecodedChunk>*, GroupView* view) -> Status {
    const size_t lo = static_cast<size_t>(g * kGroupRows);
    const size_t hi = static_cast<size_t>(std::min<int64_t>(table.num_rows, (g + 1) * kGroupRows));
    view->rows = hi - lo;
    view->cols.resize(table.columns.size());
    for (size_t c = 0; c < table.columns.size(); ++c) {
      const Column& col = table.columns[c];
      ColView& v = view->cols[c];
      v = ColView();
      v.type = col.type;
      v.valid = col.valid.data() + lo;
      switch (col.type) {
        case ColumnType::kInt64:
        case ColumnType::kDatetime:
          v.i64 = col.i64.data() + lo;
          break;
        case ColumnType::kFloat64:
          v.f64 = col.f64.data() + lo;
          break;
        case ColumnType::kBool:
          v.b = col.b.data() + lo;
          break;
        case ColumnType::kString:
          v.codes = col.codes.data() + lo;
          v.dict = dicts[c].data();
          v.dict_size = dicts[c].size();
          break;
      }
    }
    return Status::Ok();
  };
  Profiler p(src, options, cancel);
  return p.Run(Json{{"rows", table.num_rows}, {"columns", std::move(stats_cols)}}, 0);
}

}  // namespace lathe
