// Mergeable streaming summaries used by dataset profiling (profile.h): a HyperLogLog distinct counter, a
// quantile sketch and a frequent-items (top-k) sketch. Each one has bounded memory whatever the stream length,
// and Merge() of two sketches built over disjoint streams gives the sketch of the concatenated stream (so
// workers can summarise row groups independently). Not thread-safe for mutation; safe to share const.
//
// Error guarantees:
//  - HyperLogLog (p = 14, 16384 one-byte registers): relative standard error 1.04 / sqrt(16384) = 0.81 %,
//    estimated with Ertl's improved raw estimator (no bias tables; exact-ish for small counts via its
//    linear-counting limit).
//  - QuantileSketch(k): a multi-level compactor (KLL/MRL family with equal level capacity k). Exact while
//    fewer than k items have been added at level 0 between compactions (exact() tells); afterwards the rank
//    error of Quantile(q) is at most about n / k in the worst case and typically well under 0.1 % of n for
//    k = 2048 (each compaction adds an unbiased +-2^level rank error). Memory: at most k * (levels + 1)
//    doubles, levels = ceil(log2(n / k)).
//  - FrequentItems<K>(capacity): Misra-Gries with batch purges (Agarwal et al., mergeable summaries). For
//    every key, estimate <= true count <= estimate + max_error(), and max_error() <= n / (capacity + 1).
//    Any key with a true count above n / (capacity + 1) is retained.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string_view>
#include <utility>
#include <vector>

namespace lathe {

// Finalizer of SplitMix64: a bijective, well-mixed 64-bit hash of an integer key.
inline uint64_t MixHash64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

class HyperLogLog {
 public:
  static constexpr int kPrecision = 14;
  HyperLogLog() : registers_(size_t{1} << kPrecision, 0) {}
  // `hash` must be a well-mixed 64-bit hash (MixHash64, Hash64).
  void Add(uint64_t hash) {
    size_t idx = static_cast<size_t>(hash >> (64 - kPrecision));
    uint64_t w = hash << kPrecision;
    uint8_t rank = w == 0 ? static_cast<uint8_t>(64 - kPrecision + 1) : static_cast<uint8_t>(__builtin_clzll(w) + 1);
    if (rank > registers_[idx]) registers_[idx] = rank;
  }
  void Merge(const HyperLogLog& other);
  double Estimate() const;

 private:
  std::vector<uint8_t> registers_;
};

class QuantileSketch {
 public:
  explicit QuantileSketch(size_t k = 2048, uint64_t seed = 0x5eed);
  // Adds values[i] with weight counts[i] (> 0); `values` must be ascending. NaN is not allowed.
  void AddSortedWeighted(const double* values, const int64_t* counts, size_t n);
  void AddSorted(const double* values, size_t n);  // weight 1 each, ascending
  void Merge(const QuantileSketch& other);
  // The value whose (weighted) rank is closest to q * (count - 1), q in [0, 1]; with exact() this is the
  // "lower" order statistic. NaN when empty.
  double Quantile(double q) const;
  int64_t count() const { return count_; }
  bool exact() const { return exact_; }
  // Ascending (value, weight) pairs of the summary; weights sum to count().
  std::vector<std::pair<double, int64_t>> Items() const;

 private:
  void MergeIntoLevel(size_t level, const double* values, size_t n);
  void Compress();
  size_t k_;
  uint64_t rng_;
  int64_t count_ = 0;
  bool exact_ = true;
  std::vector<std::vector<double>> levels_;  // levels_[h] ascending, each item weighs 2^h
  std::vector<double> scratch_, run_;        // buffers kept between calls
};

// Misra-Gries frequent items over keys K (ordered by operator<). Items are kept sorted by key.
template <class K>
class FrequentItems {
 public:
  explicit FrequentItems(size_t capacity = 1024) : capacity_(std::max<size_t>(capacity, 1)) {}

  // Adds (key, count) pairs; keys may repeat and need not be sorted.
  void AddBatch(std::vector<std::pair<K, int64_t>> batch) {
    auto by_key = [](const std::pair<K, int64_t>& a, const std::pair<K, int64_t>& b) { return a.first < b.first; };
    if (!std::is_sorted(batch.begin(), batch.end(), by_key)) std::sort(batch.begin(), batch.end(), by_key);
    AddSorted(batch.data(), batch.size());
  }
  // The same for n pairs already sorted by key (no copy of them is made).
  void AddSorted(const std::pair<K, int64_t>* batch, size_t n) {
    if (n == 0) return;
    for (size_t j = 0; j < n; ++j) total_ += batch[j].second;
    std::vector<std::pair<K, int64_t>>& merged = scratch_;  // kept between calls: no allocation per batch
    merged.clear();
    merged.reserve(items_.size() + n);
    size_t i = 0, j = 0;
    auto push = [&](auto&& p) {
      if (!merged.empty() && !(merged.back().first < p.first)) {
        merged.back().second += p.second;
      } else {
        merged.push_back(std::forward<decltype(p)>(p));
      }
    };
    while (i < items_.size() || j < n) {
      if (j >= n || (i < items_.size() && !(batch[j].first < items_[i].first))) {
        push(std::move(items_[i++]));
      } else {
        push(batch[j++]);
      }
    }
    items_.swap(merged);
    Purge();
  }
  void Merge(const FrequentItems& other) {
    int64_t before = total_;
    AddSorted(other.items_.data(), other.items_.size());
    total_ = before + other.total_;
    error_ += other.error_;
  }
  // The `k` keys with the highest estimated counts (ties by key), with their estimates.
  std::vector<std::pair<K, int64_t>> Top(size_t k) const {
    std::vector<std::pair<K, int64_t>> out = items_;
    auto order = [](const std::pair<K, int64_t>& a, const std::pair<K, int64_t>& b) {
      return a.second != b.second ? a.second > b.second : a.first < b.first;
    };
    if (out.size() > k) {
      std::partial_sort(out.begin(), out.begin() + static_cast<std::ptrdiff_t>(k), out.end(), order);
      out.resize(k);
    } else {
      std::sort(out.begin(), out.end(), order);
    }
    return out;
  }
  int64_t max_error() const { return error_; }
  int64_t total() const { return total_; }
  size_t size() const { return items_.size(); }

 private:
  void Purge() {
    if (items_.size() <= capacity_) return;
    std::vector<int64_t>& counts = counts_scratch_;
    counts.clear();
    for (const auto& p : items_) counts.push_back(p.second);
    // Subtract the (capacity+1)-th largest count from every counter and drop the ones that reach zero.
    auto nth = counts.begin() + static_cast<std::ptrdiff_t>(capacity_);
    std::nth_element(counts.begin(), nth, counts.end(), std::greater<int64_t>());
    int64_t cut = *nth;
    size_t w = 0;
    for (size_t r = 0; r < items_.size(); ++r) {
      if (items_[r].second > cut) {
        items_[r].second -= cut;
        if (w != r) items_[w] = std::move(items_[r]);
        ++w;
      }
    }
    items_.resize(w);
    error_ += cut;
  }

  size_t capacity_;
  int64_t total_ = 0;
  int64_t error_ = 0;
  std::vector<std::pair<K, int64_t>> items_;
  std::vector<std::pair<K, int64_t>> scratch_;  // buffers kept between calls
  std::vector<int64_t> counts_scratch_;
};

}  // namespace lathe
