// Usage metering (pay-per-use) and quotas per project.
//
// Metered, per project, API key ("" = calls made without one) and UTC day:
//   predictions            successful predict calls (each protocol: native, MLflow, KServe)
//   rows_scored            instances scored by those calls and by batch scoring jobs
//   training_cpu_seconds   CPU-seconds reserved by training jobs (train, tune, automl, compress): their wall-clock
//                          seconds x the cores the server gives a job (all of them: training uses every core)
//   storage_gb_hours       the project's dataset bytes (GB = 1e9), integrated over time, sampled every minute
// Add() only touches memory (a mutex and a hash map, on the predict path); a background thread adds the pending
// amounts to the store every flush interval, and at Stop(). A crash loses at most one interval.
//
// Quotas (0 = unlimited), set by admins per project and kept as the project's "quota" document:
//   storage_bytes                  new data (imports, recipes, label rounds, batch scoring) is refused (403) while
//                                  the project's datasets take this much or more
//   concurrent_jobs                a job is refused (429) while this many of the project's jobs are queued or running
//   training_cpu_seconds_per_month training jobs are refused (403) once this month's usage reached it
//   predictions_per_month          predict calls are refused (429) once this month's usage reached it
// Month-to-date totals are kept in memory (loaded from the store at start), so checks cost no store query.
//
// Statements: a price table (config: metric=price per unit, and a currency) times a month's usage.
#pragma once

#include <atomic>
#include <condition_variable>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <tuple>
#include <unordered_map>

#include "common/json.h"
#include "common/status.h"
#include "store/store.h"

namespace lathe {

inline constexpr const char* kMetricPredictions = "predictions";
inline constexpr const char* kMetricRowsScored = "rows_scored";
inline constexpr const char* kMetricTrainingCpu = "training_cpu_seconds";
inline constexpr const char* kMetricStorage = "storage_gb_hours";

struct Quota {
  int64_t storage_bytes = 0;
  int64_t concurrent_jobs = 0;
  int64_t training_cpu_seconds_per_month = 0;
  int64_t predictions_per_month = 0;
  Json ToJson() const;
  // Every field optional, a non-negative integer; unknown fields are refused (kInvalidArgument naming them).
  static Result<Quota> FromJson(const Json& j, const Quota& base);
};

struct PriceTable {
  std::string currency = "USD";
  std::map<std::string, double> price;  // metric -> price per unit
};
// "predictions=0.0001,rows_scored=0.00001,..." -> prices; kInvalidArgument naming a bad entry or unknown metric.
Result<std::map<std::string, double>> ParsePrices(const std::string& text);

class UsageMeter {
 public:
  UsageMeter(Store* store, PriceTable prices, int64_t flush_interval_ms = 5000);
  ~UsageMeter();
  UsageMeter(const UsageMeter&) = delete;
  UsageMeter& operator=(const UsageMeter&) = delete;

  // Loads this month's totals and every project's quota, then starts the flush thread.
  Status Start();
  void Stop();

  void Add(const std::string& project, const std::string& key_id, const char* metric, double quantity);
  // Writes everything pending to the store now.
  Status Flush();
  double MonthToDate(const std::string& project, const std::string& metric);

  Quota GetQuota(const std::string& project);
  Status SetQuota(const std::string& project, const Quota& q, const std::string& by);

  // The quota checks (see the top of this file).
  Status CheckPredict(const std::string& project);
  Status CheckJob(const std::string& kind, const std::string& project);

  const PriceTable& prices() const { return prices_; }
  // A month's ("YYYY-MM") usage of a project priced: {"project","month","currency","lines":[{"metric",
  // "quantity","unit_price","amount"}],"by_key":{key:{metric:quantity}},"total"}.
  Result<Json> Statement(const std::string& project, const std::string& month);

 private:
  void Run();
  void SampleStorage(int64_t now_us);
  struct Key {
    std::string project, key_id;
    int64_t day;
    std::string metric;
    bool operator<(const Key& o) const {
      return std::tie(project, key_id, day, metric) < std::tie(o.project, o.key_id, o.day, o.metric);
    }
  };

  Store* store_;
  const PriceTable prices_;
  const int64_t flush_interval_ms_;

  std::mutex mu_;
  std::map<Key, double> pending_;
  int64_t month_ = 0;  // months since 1970-01 of the month_to_date_ totals
  std::map<std::pair<std::string, std::string>, double> month_to_date_;  // (project, metric) -> quantity
  std::unordered_map<std::string, Quota> quotas_;
  int64_t last_storage_sample_us_ = 0;

  std::mutex flush_mu_;  // one flush at a time
  std::condition_variable cv_;
  bool stop_ = false;
  std::thread thread_;
};

// "YYYY-MM-DD" of a day number (days since 1970-01-01) and back; month numbers are months since 1970-01.
std::string DayString(int64_t day);
int64_t MonthOfDay(int64_t day);
std::string MonthString(int64_t month);

}  // namespace lathe
