// VersionStats: live counters of one model version serving in one deployment — requests, rows, errors, a
// latency histogram, the distribution of its predictions — in total and per second over the last 10 minutes
// (what automatic rollback judges a canary on). Shared by successive configurations of a deployment, so
// changing weights does not reset them. Thread-safe: one small mutex per version, held for a few counter
// updates (never across model execution).
#pragma once

#include <array>
#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

#include "common/json.h"

namespace lathe {

class VersionStats {
 public:
  static constexpr int kWindowSlots = 600;  // seconds of per-second history (the longest rollback window)
  static constexpr int kBuckets = 16;       // latency histogram buckets, the last one +Inf
  static const std::array<double, kBuckets - 1>& BucketBoundsMs();

  // kind: 0 = binary probabilities, 1 = multiclass (outputs are one probability per class label per row),
  // 2 = a number per row: the first of each row's `width` outputs (a regression value; an unsupervised
  // model's cluster id, first component or anomaly score).
  VersionStats(int kind, std::vector<std::string> class_labels, size_t width = 1)
      : kind_(kind),
        width_(width == 0 ? 1 : width),
        num_classes_(class_labels.empty() ? 1 : static_cast<int>(class_labels.size())),
        class_labels_(std::move(class_labels)) {
    class_counts_.assign(static_cast<size_t>(num_classes_), 0);
  }

  // One request: its latency, whether it failed (any non-2xx outcome) and, on success, its rows' outputs
  // (n * width floats as Predictor::PredictRows wrote them; nullptr for none).
  void Record(int64_t now_us, double latency_ms, bool error, const float* outputs, size_t n);

  struct Window {
    int64_t requests = 0, errors = 0;
    double p99_ms = 0;  // upper bound of the bucket holding the 99th percentile (0 without requests)
  };
  // The last `seconds` seconds up to now_us (seconds is clamped to kWindowSlots).
  Window Recent(int64_t now_us, int seconds) const;

  // {"requests","errors","rows","latency_ms":{"p50","p90","p99","buckets":[{"le","count"}]},"predictions":{...}}
  Json ToJson() const;

 private:
  struct Slot {
    int64_t second = -1;
    int64_t requests = 0, errors = 0;
    std::array<uint32_t, kBuckets> latency{};
  };
  static int Bucket(double ms);
  static double Quantile(const std::array<uint64_t, kBuckets>& counts, double q);

  const int kind_;
  const size_t width_;
  const int num_classes_;
  const std::vector<std::string> class_labels_;
  mutable std::mutex mu_;
  int64_t requests_ = 0, errors_ = 0, rows_ = 0;  // guarded by mu_ (all below too)
  std::array<uint64_t, kBuckets> latency_{};
  std::array<Slot, kWindowSlots> slots_{};
  std::array<uint64_t, 10> prob_bins_{};  // binary: P(positive) in tenths
  std::vector<uint64_t> class_counts_;    // multiclass: rows predicted as each class
  double sum_ = 0, sum_sq_ = 0, min_ = 0, max_ = 0;  // regression
};

}  // namespace lathe
