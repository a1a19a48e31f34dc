// Metrics registry rendered as Prometheus text exposition format 0.0.4.
//
// Families (counter, gauge, histogram) are registered once with a name, help text and label names; a series
// is one combination of label values. `family.WithLabels({...})` returns a pointer that stays valid for the
// registry's lifetime: cache it and update it on the hot path with a single atomic operation, no lock.
// Collectors are callbacks evaluated at scrape time (e.g. "jobs by state" read from the database); they run
// without any registry lock held, so they may block or take their own locks.
// Every scrape also renders process metrics read from /proc/self: process_cpu_seconds_total,
// process_resident_memory_bytes, process_open_fds, process_start_time_seconds, lathe_uptime_seconds.
//
// Thread safety: every member function of every class here may be called concurrently from any thread.
// Families and series are never removed; a registry owns them and must outlive every pointer handed out.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/status.h"

namespace lathe {

enum class MetricType { kCounter, kGauge, kHistogram, kUntyped };
const char* MetricTypeName(MetricType type);

// A monotonically increasing value. Inc() with a negative or NaN amount is ignored.
class Counter {
 public:
  void Inc(double amount = 1.0);
  double Value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0.0};
};

// A value that goes up and down.
class Gauge {
 public:
  void Set(double value) { value_.store(value, std::memory_order_relaxed); }
  void Inc(double amount = 1.0) { value_.fetch_add(amount, std::memory_order_relaxed); }
  void Dec(double amount = 1.0) { value_.fetch_sub(amount, std::memory_order_relaxed); }
  double Value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0.0};
};

// Fixed upper bounds (inclusive, "le"); an implicit +Inf bucket follows the last bound. NaN observations
// are ignored. Rendered counts are cumulative; _count equals the +Inf bucket.
class Histogram {
 public:
  explicit Histogram(const std::vector<double>* bounds);
  void Observe(double value);

  struct Snapshot {
    std::vector<uint64_t> cumulative;  // one per bound, then +Inf
    double sum = 0;
  };
  Snapshot Read() const;

 private:
  const std::vector<double>* bounds_;  // owned by the family
  std::unique_ptr<std::atomic<uint64_t>[]> counts_;  // per bucket, not cumulative; size bounds+1
  std::atomic<double> sum_{0.0};
};

// Default latency buckets in seconds: 0.0001 ... 10.
const std::vector<double>& DefaultLatencyBuckets();

using LabelValues = std::vector<std::string>;
using LabelPairs = std::vector<std::pair<std::string, std::string>>;

// A named family of series of type T (Counter, Gauge or Histogram).
template <class T>
class MetricFamily {
 public:
  MetricFamily(std::string name, std::string help, std::vector<std::string> label_names,
               std::vector<double> bounds = {});

  // The series for these label values, created on first use; values are in the order of label_names().
  // Returns nullptr when the number of values differs from the number of label names.
  T* WithLabels(const LabelValues& values);
  // The series without labels; nullptr if the family has label names.
  T* Get() { return WithLabels({}); }

  const std::string& name() const { return name_; }
  const std::string& help() const { return help_; }
  const std::vector<std::string>& label_names() const { return label_names_; }
  const std::vector<double>& bounds() const { return bounds_; }

  // Calls fn(values, series) for every series in label order, under the family's read lock.
  void ForEach(const std::function<void(const LabelValues&, const T&)>& fn) const;

 private:
  const std::string name_;
  const std::string help_;
  const std::vector<std::string> label_names_;
  const std::vector<double> bounds_;  // histograms only
  mutable std::shared_mutex mu_;
  std::map<LabelValues, std::unique_ptr<T>> series_;  // guarded by mu_
};

using CounterFamily = MetricFamily<Counter>;
using GaugeFamily = MetricFamily<Gauge>;
using HistogramFamily = MetricFamily<Histogram>;

// What a collector produces at scrape time: one family with its samples.
struct CollectedSample {
  LabelPairs labels;
  double value = 0;
};
struct CollectedFamily {
  std::string name;
  std::string help;
  MetricType type = MetricType::kGauge;  // kCounter, kGauge or kUntyped
  std::vector<CollectedSample> samples;
};
using Collector = std::function<std::vector<CollectedFamily>()>;

class MetricsRegistry {
 public:
  MetricsRegistry();
  MetricsRegistry(const MetricsRegistry&) = delete;
  MetricsRegistry& operator=(const MetricsRegistry&) = delete;

  // Registers a family, or returns the existing one when name, type and label names match.
  // Errors (kInvalidArgument): invalid metric or label name, a name already used with another type or
  // other label names, histogram bounds not strictly increasing / not finite.
  Result<CounterFamily*> AddCounter(const std::string& name, const std::string& help,
                                    const std::vector<std::string>& label_names = {});
  Result<GaugeFamily*> AddGauge(const std::string& name, const std::string& help,
                                const std::vector<std::string>& label_names = {});
  Result<HistogramFamily*> AddHistogram(const std::string& name, const std::string& help,
                                        const std::vector<std::string>& label_names = {},
                                        const std::vector<double>& bounds = DefaultLatencyBuckets());

  // Adds a scrape-time collector; returns an id for RemoveCollector. A collector that throws is skipped
  // (and named in a comment line of the output). Invalid names in collected families are skipped.
  int AddCollector(Collector collector);
  void RemoveCollector(int id);

  // The whole exposition (text/plain; version=0.0.4), families in registration order, then collectors,
  // then process metrics.
  std::string RenderPrometheus() const;

 private:
  struct Entry {
    MetricType type;
    std::unique_ptr<CounterFamily> counter;
    std::unique_ptr<GaugeFamily> gauge;
    std::unique_ptr<HistogramFamily> histogram;
  };
  Status CheckNew(const std::string& name, const std::vector<std::string>& label_names, MetricType type,
                  Entry** existing);

  const double start_time_s_;
  mutable std::mutex mu_;
  std::vector<std::unique_ptr<Entry>> entries_;   // guarded by mu_; append-only
  std::map<std::string, Entry*> by_name_;         // guarded by mu_
  std::map<int, std::shared_ptr<Collector>> collectors_;  // guarded by mu_
  int next_collector_id_ = 1;                     // guarded by mu_
};

// Exposition helpers, exposed for tests and for other text renderers.
bool IsValidMetricName(std::string_view name);
bool IsValidLabelName(std::string_view name);
std::string EscapeLabelValue(std::string_view value);  // \ -> \\, " -> \", newline -> \n
std::string EscapeHelp(std::string_view help);         // \ -> \\, newline -> \n
std::string FormatMetricValue(double value);           // shortest round-trip; +Inf, -Inf, NaN

// Process metrics as read from /proc/self; fields are -1 when unavailable.
struct ProcessStats {
  double cpu_seconds = -1;
  double resident_bytes = -1;
  double open_fds = -1;
  double start_time_seconds = -1;  // Unix time
};
ProcessStats ReadProcessStats();

}  // namespace lathe
