#include "serving/version_stats.h"

#include <algorithm>
#include <cmath>

namespace lathe {

const std::array<double, VersionStats::kBuckets - 1>& VersionStats::BucketBoundsMs() {
  static const std::array<double, kBuckets - 1> kBounds = {0.05, 0.1, 0.25, 0.5, 1,   2.5,  5,   10,
                                                            25,   50,  100,  250, 500, 1000, 2500};
  return kBounds;
}

int VersionStats::Bucket(double ms) {
  const auto& b = BucketBoundsMs();
  return static_cast<int>(std::lower_bound(b.begin(), b.end(), ms) - b.begin());
}

double VersionStats::Quantile(const std::array<uint64_t, kBuckets>& counts, double q) {
  uint64_t total = 0;
  for (uint64_t c : counts) total += c;
  if (total == 0) return 0;
  const auto rank = static_cast<uint64_t>(std::ceil(q * static_cast<double>(total)));
  uint64_t seen = 0;
  for (int i = 0; i < kBuckets; ++i) {
    seen += counts[static_cast<size_t>(i)];
    if (seen >= rank) {
      // The +Inf bucket reports twice the largest bound: "more than 2.5 s" as a finite number.
      return i < kBuckets - 1 ? BucketBoundsMs()[static_cast<size_t>(i)] : 2 * BucketBoundsMs().back();
    }
  }
  return 2 * BucketBoundsMs().back();
}

void VersionStats::Record(int64_t now_us, double latency_ms, bool error, const float* outputs, size_t n) {
  const int bucket = Bucket(latency_ms);
  const int64_t second = now_us / 1000000;
  std::lock_guard lock(mu_);
  ++requests_;
  if (error) ++errors_;
  ++latency_[static_cast<size_t>(bucket)];
  Slot& slot = slots_[static_cast<size_t>(second % kWindowSlots)];
  if (slot.second != second) slot = Slot{.second = second};
  ++slot.requests;
  if (error) ++slot.errors;
  ++slot.latency[static_cast<size_t>(bucket)];
  if (outputs == nullptr) return;
  rows_ += static_cast<int64_t>(n);
  for (size_t i = 0; i < n; ++i) {
    if (kind_ == 0) {
      const float p = std::clamp(outputs[i], 0.0f, 1.0f);
      ++prob_bins_[std::min<size_t>(9, static_cast<size_t>(p * 10))];
    } else if (kind_ == 1) {
      const float* o = outputs + i * static_cast<size_t>(num_classes_);
      ++class_counts_[static_cast<size_t>(std::max_element(o, o + num_classes_) - o)];
    } else {
      const double v = outputs[i * width_];
      if (rows_ == static_cast<int64_t>(n) && i == 0) min_ = max_ = v;
      sum_ += v;
      sum_sq_ += v * v;
      min_ = std::min(min_, v);
      max_ = std::max(max_, v);
    }
  }
}

VersionStats::Window VersionStats::Recent(int64_t now_us, int seconds) const {
  seconds = std::clamp(seconds, 1, kWindowSlots);
  const int64_t now_s = now_us / 1000000;
  Window w;
  std::array<uint64_t, kBuckets> counts{};
  std::lock_guard lock(mu_);
  for (const Slot& s : slots_) {
    if (s.second < 0 || s.second > now_s || s.second <= now_s - seconds) continue;
    w.requests += s.requests;
    w.errors += s.errors;
    for (int i = 0; i < kBuckets; ++i) counts[static_cast<size_t>(i)] += s.latency[static_cast<size_t>(i)];
  }
  w.p99_ms = Quantile(counts, 0.99);
  return w;
}

Json VersionStats::ToJson() const {
  std::lock_guard lock(mu_);
  Json buckets = Json::array();
  for (int i = 0; i < kBuckets; ++i) {
    Json le = i < kBuckets - 1 ? Json(BucketBoundsMs()[static_cast<size_t>(i)]) : Json("+Inf");
    buckets.push_back({{"le", le}, {"count", latency_[static_cast<size_t>(i)]}});
  }
  Json predictions;
  if (kind_ == 0) {
    Json bins = Json::array();
    for (size_t i = 0; i < prob_bins_.size(); ++i) {
      bins.push_back({{"from", static_cast<double>(i) / 10}, {"to", static_cast<double>(i + 1) / 10},
                      {"count", prob_bins_[i]}});
    }
    predictions = {{"kind", "probability"}, {"histogram", std::move(bins)}};
  } else if (kind_ == 1) {
    Json counts = Json::object();
    for (size_t c = 0; c < class_counts_.size(); ++c) {
      counts[c < class_labels_.size() ? class_labels_[c] : std::to_string(c)] = class_counts_[c];
    }
    predictions = {{"kind", "class"}, {"counts", std::move(counts)}};
  } else {
    const double n = static_cast<double>(rows_);
    const double mean = rows_ > 0 ? sum_ / n : 0;
    const double var = rows_ > 0 ? std::max(0.0, sum_sq_ / n - mean * mean) : 0;
    predictions = {{"kind", "number"}, {"mean", mean}, {"std", std::sqrt(var)}, {"min", min_}, {"max", max_}};
  }
  return {{"requests", requests_},
          {"errors", errors_},
          {"rows", rows_},
          {"latency_ms",
           {{"p50", Quantile(latency_, 0.5)}, {"p90", Quantile(latency_, 0.9)}, {"p99", Quantile(latency_, 0.99)},
            {"buckets", std::move(buckets)}}},
          {"predictions", std::move(predictions)}};
}

}  // namespace lathe
