#include "data/table_ops.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstring>
#if defined(__x86_64__)
#include <immintrin.h>
#endif
#include <memory>
#include <unordered_map>
#include <unordered_set>

#include "common/parallel.h"
#include "data/value_parse.h"

namespace lathe {

Status ValidateTable(const Table& t) {
  if (t.num_rows < 0) return Status::InvalidArgument("table has a negative row count");
  const size_t n = static_cast<size_t>(t.num_rows);
  std::unordered_set<std::string_view> names;
  for (const Column& c : t.columns) {
    if (!names.insert(c.name).second) return Status::InvalidArgument("duplicate column name '" + c.name + "'");
    auto bad = [&](const std::string& what) {
      return Status::InvalidArgument("column '" + c.name + "': " + what).WithDetail(ErrorDetail::Column(c.name, what));
    };
    if (c.valid.size() != n) return bad("validity mask has " + std::to_string(c.valid.size()) + " rows, expected " +
                                        std::to_string(n));
    switch (c.type) {
      case ColumnType::kInt64:
      case ColumnType::kDatetime:
        if (c.i64.size() != n) return bad("value vector size does not match the row count");
        break;
      case ColumnType::kFloat64:
        if (c.f64.size() != n) return bad("value vector size does not match the row count");
        break;
      case ColumnType::kBool:
        if (c.b.size() != n) return bad("value vector size does not match the row count");
        break;
      case ColumnType::kString: {
        if (c.codes.size() != n) return bad("code vector size does not match the row count");
        const int64_t d = static_cast<int64_t>(c.dict.size());
        for (size_t i = 0; i < n; ++i) {
          if (c.valid[i] && (c.codes[i] < 0 || c.codes[i] >= d)) return bad("code outside the dictionary");
        }
        break;
      }
      default: return bad("unknown column type");
    }
  }
  return Status::Ok();
}

Column NullColumn(std::string name, ColumnType type, size_t n) {
  Column c;
  c.name = std::move(name);
  c.type = type;
  c.valid.assign(n, 0);
  switch (type) {
    case ColumnType::kInt64:
    case ColumnType::kDatetime: c.i64.assign(n, 0); break;
    case ColumnType::kFloat64: c.f64.assign(n, 0.0); break;
    case ColumnType::kBool: c.b.assign(n, 0); break;
    case ColumnType::kString: c.codes.assign(n, 0); break;
  }
  return c;
}

namespace {

template <class T, class Idx>
void Gather(const std::vector<T>& in, std::vector<T>& out, const Idx& idx) {
  out.resize(idx.size());
  for (size_t i = 0; i < idx.size(); ++i) out[i] = in[static_cast<size_t>(idx[i])];
}

template <class Idx>
Table GatherTable(const Table& t, const Idx& idx) {
  Table out;
  out.num_rows = static_cast<int64_t>(idx.size());
  out.columns.reserve(t.columns.size());
  for (const Column& c : t.columns) {
    Column o;
    o.name = c.name;
    o.type = c.type;
    Gather(c.valid, o.valid, idx);
    if (!c.i64.empty()) Gather(c.i64, o.i64, idx);
    if (!c.f64.empty()) Gather(c.f64, o.f64, idx);
    if (!c.b.empty()) Gather(c.b, o.b, idx);
    if (!c.codes.empty()) Gather(c.codes, o.codes, idx);
    o.dict = c.dict;
    out.columns.push_back(std::move(o));
  }
  return out;
}

}  // namespace

Table SelectRows(const Table& t, const std::vector<uint8_t>& keep) {
  std::vector<uint32_t> idx;
  idx.reserve(keep.size());
  for (size_t i = 0; i < keep.size(); ++i) {
    if (keep[i]) idx.push_back(static_cast<uint32_t>(i));
  }
  if (keep.size() > UINT32_MAX) {
    std::vector<int64_t> big;
    for (size_t i = 0; i < keep.size(); ++i) {
      if (keep[i]) big.push_back(static_cast<int64_t>(i));
    }
    return GatherTable(t, big);
  }
  return GatherTable(t, idx);
}

namespace {

template <class T>
void Compact(std::vector<T>& v, const uint32_t* ix, size_t m) {
  if (v.empty()) return;
  T* p = v.data();
  for (size_t j = 0; j < m; ++j) p[j] = p[ix[j]];  // ix[j] >= j: reads stay ahead of writes
  v.resize(m);
}

#if defined(__x86_64__)
// In-place compaction of `n` elements of `width` bytes (1, 4 or 8) by keep[i] != 0, 64 rows per step with
// AVX-512 compress. Each store lands at or before the block being read (the output never overtakes the
// input), so reading ahead of it is safe. Returns the number kept.
__attribute__((target("avx512f,avx512bw,avx512vbmi2"))) size_t CompactAvx512(void* data, size_t width,
                                                                              const uint8_t* keep, size_t n) {
  auto* p = static_cast<uint8_t*>(data);
  size_t i = 0, j = 0;
  for (; i + 64 <= n; i += 64) {
    const __m512i k = _mm512_loadu_si512(keep + i);
    const uint64_t mask = _mm512_test_epi8_mask(k, k);
    if (width == 1) {
      const __m512i v = _mm512_loadu_si512(p + i);
      _mm512_storeu_si512(p + j, _mm512_maskz_compress_epi8(mask, v));
      j += static_cast<size_t>(__builtin_popcountll(mask));
    } else if (width == 4) {
      for (size_t s = 0; s < 4; ++s) {
        const auto m16 = static_cast<__mmask16>(mask >> (16 * s));
        const __m512i v = _mm512_loadu_si512(p + (i + 16 * s) * 4);
        _mm512_storeu_si512(p + j * 4, _mm512_maskz_compress_epi32(m16, v));
        j += static_cast<size_t>(__builtin_popcount(m16));
      }
    } else {
      for (size_t s = 0; s < 8; ++s) {
        const auto m8 = static_cast<__mmask8>(mask >> (8 * s));
        const __m512i v = _mm512_loadu_si512(p + (i + 8 * s) * 8);
        _mm512_storeu_si512(p + j * 8, _mm512_maskz_compress_epi64(m8, v));
        j += static_cast<size_t>(__builtin_popcount(m8));
      }
    }
  }
  for (; i < n; ++i) {
    std::memmove(p + j * width, p + i * width, width);
    j += keep[i] != 0;
  }
  return j;
}

bool HasAvx512Compress() {
  static const bool has = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                          __builtin_cpu_supports("avx512vbmi2");
  return has;
}
#else
size_t CompactAvx512(void*, size_t, const uint8_t*, size_t) { return 0; }
bool HasAvx512Compress() { return false; }
#endif

template <class T>
void CompactByMask(std::vector<T>& v, const uint8_t* keep, size_t m) {
  if (v.empty()) return;
  static_assert(sizeof(T) == 1 || sizeof(T) == 4 || sizeof(T) == 8);
  CompactAvx512(v.data(), sizeof(T), keep, v.size());
  v.resize(m);
}

}  // namespace

void KeepRowsInPlace(Table& t, const std::vector<uint8_t>& keep) {
  if (keep.size() > UINT32_MAX) {
    t = SelectRows(t, keep);
    return;
  }
  const size_t n = keep.size();
  const bool simd = HasAvx512Compress();
  // The kept row numbers (for the portable gather), written without a branch per row (the slot after the
  // last kept row is scratch).
  std::unique_ptr<uint32_t[]> idx;
  size_t m = 0;
  if (simd) {
    for (size_t i = 0; i < n; ++i) m += keep[i] != 0;
  } else {
    idx.reset(new uint32_t[n + 1]);
    for (size_t i = 0; i < n; ++i) {
      idx[m] = static_cast<uint32_t>(i);
      m += keep[i] != 0;
    }
  }
  if (m == n) return;
  // One task per column; a validity mask without a missing row needs no gather (kept rows stay valid).
  ParallelFor(t.columns.size(), ThreadsFor(m * t.columns.size(), size_t{1} << 20), [&](size_t ci) {
    Column& c = t.columns[ci];
    auto compact = [&](auto& v) {
      if (simd) CompactByMask(v, keep.data(), m);
      else Compact(v, idx.get(), m);
    };
    if (std::memchr(c.valid.data(), 0, c.valid.size()) == nullptr) {
      c.valid.resize(m);
    } else {
      compact(c.valid);
    }
    compact(c.i64);
    compact(c.f64);
    compact(c.b);
    compact(c.codes);
  });
  t.num_rows = static_cast<int64_t>(m);
}

Table TakeRows(const Table& t, const std::vector<int64_t>& rows) { return GatherTable(t, rows); }

Table HeadRows(Table t, int64_t n) {
  if (n < 0 || n >= t.num_rows) return t;
  const size_t k = static_cast<size_t>(n);
  for (Column& c : t.columns) {
    c.valid.resize(k);
    if (!c.i64.empty()) c.i64.resize(k);
    if (!c.f64.empty()) c.f64.resize(k);
    if (!c.b.empty()) c.b.resize(k);
    if (!c.codes.empty()) c.codes.resize(k);
  }
  t.num_rows = n;
  return t;
}

void RewriteDictionary(Column& c, std::vector<std::string> new_values, const std::vector<uint8_t>& drop) {
  std::unordered_map<std::string_view, int32_t> seen;
  std::vector<int32_t> remap(new_values.size(), -1);
  std::vector<std::string> dict;
  dict.reserve(new_values.size());
  // First pass decides codes; views point into new_values, which outlives the map.
  for (size_t k = 0; k < new_values.size(); ++k) {
    if (!drop.empty() && drop[k]) continue;
    auto [it, inserted] = seen.emplace(new_values[k], static_cast<int32_t>(seen.size()));
    remap[k] = it->second;
    (void)inserted;
  }
  dict.resize(seen.size());
  for (auto& [s, code] : seen) dict[static_cast<size_t>(code)] = std::string(s);
  for (size_t i = 0; i < c.codes.size(); ++i) {
    if (!c.valid[i]) continue;
    const int32_t m = remap[static_cast<size_t>(c.codes[i])];
    if (m < 0) {
      c.valid[i] = 0;
      c.codes[i] = 0;
    } else {
      c.codes[i] = m;
    }
  }
  c.dict = std::move(dict);
}

void CompactDictionary(Column& c) {
  if (c.type != ColumnType::kString) return;
  std::vector<int32_t> remap(c.dict.size(), -1);
  std::unordered_map<std::string_view, int32_t> seen;
  std::vector<std::string> dict;
  std::vector<size_t> order;
  for (size_t i = 0; i < c.codes.size(); ++i) {
    if (!c.valid[i]) {
      c.codes[i] = 0;
      continue;
    }
    const size_t k = static_cast<size_t>(c.codes[i]);
    if (remap[k] < 0) {
      auto [it, inserted] = seen.emplace(c.dict[k], static_cast<int32_t>(order.size()));
      if (inserted) order.push_back(k);
      remap[k] = it->second;
    }
    c.codes[i] = remap[k];
  }
  dict.reserve(order.size());
  for (size_t k : order) dict.push_back(std::move(c.dict[k]));
  c.dict = std::move(dict);
}

std::string ValueText(const Column& c, size_t row) {
  switch (c.type) {
    case ColumnType::kInt64: return std::to_string(c.i64[row]);
    case ColumnType::kDatetime: return FormatDatetimeMicros(c.i64[row]);
    case ColumnType::kBool: return c.b[row] ? "true" : "false";
    case ColumnType::kString: return std::string(c.StringAt(row));
    case ColumnType::kFloat64: {
      const double v = c.f64[row];
      if (std::isnan(v)) return "NaN";
      if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
      char buf[64];
      auto r = std::to_chars(buf, buf + sizeof(buf), v);
      return std::string(buf, r.ptr);
    }
  }
  return {};
}

std::string ColumnList(const Table& t) {
  std::string out;
  for (const Column& c : t.columns) {
    if (!out.empty()) out += ", ";
    out += c.name;
  }
  return out;
}

std::string ClosestName(std::string_view name, const std::vector<std::string>& candidates) {
  auto lower = [](std::string_view s) {
    std::string o(s);
    for (char& ch : o) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    return o;
  };
  const std::string a = lower(name);
  if (a.size() > 256) return {};
  std::string best;
  size_t best_d = SIZE_MAX;
  std::vector<size_t> prev, cur;
  for (const std::string& cand : candidates) {
    if (cand.size() > 256) continue;
    const std::string b = lower(cand);
    prev.resize(b.size() + 1);
    cur.resize(b.size() + 1);
    for (size_t j = 0; j <= b.size(); ++j) prev[j] = j;
    for (size_t i = 1; i <= a.size(); ++i) {
      cur[0] = i;
      for (size_t j = 1; j <= b.size(); ++j) {
        cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1)});
      }
      std::swap(prev, cur);
    }
    if (prev[b.size()] < best_d) {
      best_d = prev[b.size()];
      best = cand;
    }
  }
  const size_t limit = std::max<size_t>(2, a.size() / 3);
  return best_d <= limit ? best : std::string();
}

}  // namespace lathe
