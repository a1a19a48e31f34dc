#include "data/sketches.h"

#include <cmath>
#include <iterator>
#include <limits>

namespace lathe {

// ---------------------------------------------------------------- HyperLogLog

void HyperLogLog::Merge(const HyperLogLog& other) {
  for (size_t i = 0; i < registers_.size(); ++i) registers_[i] = std::max(registers_[i], other.registers_[i]);
}

namespace {

// Ertl, "New cardinality estimation algorithms for HyperLogLog sketches" (2017), section 4.
double Sigma(double x) {
  if (x == 1.0) return std::numeric_limits<double>::infinity();
  double y = 1.0, z = x;
  for (;;) {
    x *= x;
    double prev = z;
    z += x * y;
    y += y;
    if (z == prev) return z;
  }
}

double Tau(double x) {
  if (x == 0.0 || x == 1.0) return 0.0;
  double y = 1.0, z = 1.0 - x;
  for (;;) {
    x = std::sqrt(x);
    double prev = z;
    y *= 0.5;
    z -= (1.0 - x) * (1.0 - x) * y;
    if (z == prev) return z / 3.0;
  }
}

}  // namespace

double HyperLogLog::Estimate() const {
  constexpr int q = 64 - kPrecision;
  const double m = static_cast<double>(registers_.size());
  std::vector<double> c(q + 2, 0.0);
  for (uint8_t r : registers_) c[std::min<int>(r, q + 1)] += 1.0;
  if (c[0] == m) return 0.0;
  double z = m * Tau(1.0 - c[q + 1] / m);
  for (int k = q; k >= 1; --k) z = 0.5 * (z + c[k]);
  z += m * Sigma(c[0] / m);
  const double alpha_inf = 0.5 / std::log(2.0);
  return alpha_inf * m * m / z;
}

// ---------------------------------------------------------------- QuantileSketch

QuantileSketch::QuantileSketch(size_t k, uint64_t seed) : k_(std::max<size_t>(k, 8)), rng_(seed | 1) {}

void QuantileSketch::MergeIntoLevel(size_t level, const double* values, size_t n) {
  if (n == 0) return;
  if (levels_.size() <= level) levels_.resize(level + 1);
  std::vector<double>& dst = levels_[level];
  scratch_.clear();  // keeps its capacity: no allocation or zero-fill per merge
  scratch_.reserve(dst.size() + n);
  std::merge(dst.begin(), dst.end(), values, values + n, std::back_inserter(scratch_));
  dst.swap(scratch_);
}

void QuantileSketch::AddSorted(const double* values, size_t n) {
  if (n == 0) return;
  count_ += static_cast<int64_t>(n);
  MergeIntoLevel(0, values, n);
  Compress();
}

void QuantileSketch::AddSortedWeighted(const double* values, const int64_t* counts, size_t n) {
  if (n == 0) return;
  uint64_t any_bits = 0;
  for (size_t i = 0; i < n; ++i) {
    count_ += counts[i];
    any_bits |= static_cast<uint64_t>(counts[i]);
  }
  // A weight w is the sum of its binary digits: one item at each level h whose bit is set. Only the levels
  // some weight has a bit for are visited (sampled runs all weigh 4: one level, not three).
  std::vector<double>& run = run_;
  for (int h = 0; h < 63 && (any_bits >> h) != 0; ++h) {
    if (((any_bits >> h) & 1) == 0) continue;
    run.clear();
    for (size_t i = 0; i < n; ++i) {
      if ((counts[i] >> h) & 1) run.push_back(values[i]);
    }
    if (h > 0 && !run.empty()) exact_ = false;
    MergeIntoLevel(static_cast<size_t>(h), run.data(), run.size());
  }
  Compress();
}

void QuantileSketch::Compress() {
  for (size_t h = 0; h < levels_.size(); ++h) {
    std::vector<double>& lv = levels_[h];
    if (lv.size() <= k_) continue;
    exact_ = false;
    // Keep one item back when the level is odd so that every promoted pair is complete; promote one of each
    // adjacent pair, chosen by a coin flip, with double weight.
    size_t pairs = lv.size() / 2;
    rng_ ^= rng_ << 13;
    rng_ ^= rng_ >> 7;
    rng_ ^= rng_ << 17;
    size_t offset = rng_ & 1;
    std::vector<double> up;
    up.reserve(pairs);
    for (size_t i = 0; i < pairs; ++i) up.push_back(lv[2 * i + offset]);
    if (lv.size() % 2 == 1) {
      double keep = lv.back();
      lv.assign(1, keep);
    } else {
      lv.clear();
    }
    MergeIntoLevel(h + 1, up.data(), up.size());
  }
}

void QuantileSketch::Merge(const QuantileSketch& other) {
  if (!other.exact_) exact_ = false;
  count_ += other.count_;
  for (size_t h = 0; h < other.levels_.size(); ++h) {
    MergeIntoLevel(h, other.levels_[h].data(), other.levels_[h].size());
  }
  Compress();
}

std::vector<std::pair<double, int64_t>> QuantileSketch::Items() const {
  std::vector<std::pair<double, int64_t>> items;
  for (size_t h = 0; h < levels_.size(); ++h) {
    for (double v : levels_[h]) items.emplace_back(v, int64_t{1} << h);
  }
  std::sort(items.begin(), items.end());
  return items;
}

double QuantileSketch::Quantile(double q) const {
  if (count_ == 0) return std::numeric_limits<double>::quiet_NaN();
  q = std::clamp(q, 0.0, 1.0);
  auto items = Items();
  int64_t total = 0;
  for (const auto& it : items) total += it.second;
  // Rank (0-based) of the wanted order statistic; an item of weight w covers ranks [cum, cum + w).
  double target = q * static_cast<double>(total - 1);
  int64_t cum = 0;
  for (const auto& it : items) {
    if (static_cast<double>(cum + it.second) > target) return it.first;
    cum += it.second;
  }
  return items.back().first;
}

}  // namespace lathe
