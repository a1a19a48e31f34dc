#include "api/usage.h"

#include <chrono>
#include <cmath>
#include <cstdio>
#include <set>
#include <thread>

#include "common/clock.h"
#include "common/log.h"

namespace lathe {

namespace {

constexpr int64_t kDayUs = int64_t{86400} * 1000000;
constexpr int64_t kStorageSampleUs = int64_t{60} * 1000000;
constexpr const char* kQuotaKind = "quota";
const std::set<std::string> kTrainingKinds = {"train", "tune", "automl", "compress"};
const std::set<std::string> kDataKinds = {"import", "recipe", "label_finish", "batch_predict"};
const std::set<std::string> kMetrics = {kMetricPredictions, kMetricRowsScored, kMetricTrainingCpu, kMetricStorage};

int64_t Today(int64_t now_us) { return now_us / kDayUs; }

Status QuotaExceeded(StatusCode code, const std::string& project, const std::string& quota, const std::string& what) {
  return Status(code, "quota " + quota + " of project '" + project + "' reached: " + what);
}

}  // namespace

std::string DayString(int64_t day) {
  int64_t y;
  unsigned m, d;
  CivilFromDays(day, &y, &m, &d);
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%04lld-%02u-%02u", static_cast<long long>(y), m, d);
  return buf;
}

int64_t MonthOfDay(int64_t day) {
  int64_t y;
  unsigned m, d;
  CivilFromDays(day, &y, &m, &d);
  return (y - 1970) * 12 + (m - 1);
}

std::string MonthString(int64_t month) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%04lld-%02lld", static_cast<long long>(1970 + month / 12),
                static_cast<long long>(month % 12 + 1));
  return buf;
}

Json Quota::ToJson() const {
  return {{"storage_bytes", storage_bytes},
          {"concurrent_jobs", concurrent_jobs},
          {"training_cpu_seconds_per_month", training_cpu_seconds_per_month},
          {"predictions_per_month", predictions_per_month}};
}

Result<Quota> Quota::FromJson(const Json& j, const Quota& base) {
  if (!j.is_object()) return Status::InvalidArgument("the quota must be a JSON object");
  Quota q = base;
  std::map<std::string, int64_t*> fields = {{"storage_bytes", &q.storage_bytes},
                                            {"concurrent_jobs", &q.concurrent_jobs},
                                            {"training_cpu_seconds_per_month", &q.training_cpu_seconds_per_month},
                                            {"predictions_per_month", &q.predictions_per_month}};
  for (const auto& [name, value] : j.items()) {
    auto it = fields.find(name);
    if (it == fields.end()) {
      return Status::InvalidArgument("unknown quota '" + name.substr(0, 80) +
                                     "' (storage_bytes, concurrent_jobs, training_cpu_seconds_per_month, "
                                     "predictions_per_month)")
          .WithDetail(ErrorDetail::Field(name.substr(0, 80), "unknown quota"));
    }
    if (!value.is_number_integer() || value.get<int64_t>() < 0) {
      return Status::InvalidArgument(name + " must be an integer >= 0 (0 = unlimited)")
          .WithDetail(ErrorDetail::Field(name, "must be an integer >= 0"));
    }
    *it->second = value.get<int64_t>();
  }
  return q;
}

Result<std::map<std::string, double>> ParsePrices(const std::string& text) {
  std::map<std::string, double> out;
  size_t start = 0;
  while (start < text.size()) {
    size_t comma = text.find(',', start);
    std::string entry = text.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    start = comma == std::string::npos ? text.size() : comma + 1;
    while (!entry.empty() && entry.front() == ' ') entry.erase(entry.begin());
    while (!entry.empty() && entry.back() == ' ') entry.pop_back();
    if (entry.empty()) continue;
    const size_t eq = entry.find('=');
    const std::string metric = entry.substr(0, eq);
    if (eq == std::string::npos || !kMetrics.count(metric)) {
      return Status::InvalidArgument("price entry '" + entry +
                                     "' must be METRIC=PRICE with METRIC one of predictions, rows_scored, "
                                     "training_cpu_seconds, storage_gb_hours");
    }
    char* end = nullptr;
    const std::string num = entry.substr(eq + 1);
    const double price = std::strtod(num.c_str(), &end);
    if (num.empty() || end != num.c_str() + num.size() || !std::isfinite(price) || price < 0) {
      return Status::InvalidArgument("price of " + metric + " must be a number >= 0, not '" + num + "'");
    }
    out[metric] = price;
  }
  return out;
}

UsageMeter::UsageMeter(Store* store, PriceTable prices, int64_t flush_interval_ms)
    : store_(store), prices_(std::move(prices)), flush_interval_ms_(flush_interval_ms) {}

UsageMeter::~UsageMeter() { Stop(); }

Status UsageMeter::Start() {
  const int64_t today = Today(NowMicros());
  const int64_t month = MonthOfDay(today);
  int64_t y;
  unsigned m, d;
  CivilFromDays(today, &y, &m, &d);
  const std::string first = DayString(DaysFromCivil(y, m, 1));
  ASSIGN_OR_RETURN(std::vector<UsageRecord> rows, store_->ListUsage("", first, ""));
  ASSIGN_OR_RETURN(std::vector<std::string> projects, store_->ListProjects());
  std::unordered_map<std::string, Quota> quotas;
  for (const auto& p : projects) {
    auto doc = store_->GetDocument(p, kQuotaKind, kQuotaKind, 0);
    if (doc.ok()) {
      auto q = Quota::FromJson(doc->body, Quota{});
      if (q.ok()) quotas[p] = *q;
    } else if (doc.status().code() != StatusCode::kNotFound) {
      return doc.status();
    }
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    month_ = month;
    for (const auto& r : rows) month_to_date_[{r.project, r.metric}] += r.quantity;
    quotas_ = std::move(quotas);
    last_storage_sample_us_ = NowMicros();
    stop_ = false;
  }
  thread_ = std::thread([this] { Run(); });
  return Status::Ok();
}

void UsageMeter::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stop_ && !thread_.joinable()) return;
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  Status st = Flush();
  if (!st.ok()) LogError("usage not recorded at shutdown", {{"error", st.ToString()}});
}

void UsageMeter::Run() {
  std::unique_lock<std::mutex> lock(mu_);
  while (!stop_) {
    cv_.wait_for(lock, std::chrono::milliseconds(flush_interval_ms_), [&] { return stop_; });
    if (stop_) break;
    lock.unlock();
    const int64_t now = NowMicros();
    bool sample = false;
    {
      std::lock_guard<std::mutex> l(mu_);
      sample = now - last_storage_sample_us_ >= kStorageSampleUs;
    }
    if (sample) SampleStorage(now);
    Status st = Flush();
    if (!st.ok()) LogError("usage flush failed; will retry", {{"error", st.ToString()}});
    lock.lock();
  }
}

void UsageMeter::SampleStorage(int64_t now_us) {
  double hours;
  {
    std::lock_guard<std::mutex> lock(mu_);
    hours = static_cast<double>(now_us - last_storage_sample_us_) / 3.6e9;
    last_storage_sample_us_ = now_us;
  }
  auto projects = store_->ListProjects();
  if (!projects.ok()) return;
  for (const auto& p : *projects) {
    auto bytes = store_->ProjectStorageBytes(p);
    if (bytes.ok() && *bytes > 0) Add(p, "", kMetricStorage, static_cast<double>(*bytes) / 1e9 * hours);
  }
}

void UsageMeter::Add(const std::string& project, const std::string& key_id, const char* metric, double quantity) {
  if (quantity <= 0) return;
  const int64_t today = Today(NowMicros());
  std::lock_guard<std::mutex> lock(mu_);
  pending_[Key{project, key_id, today, metric}] += quantity;
  const int64_t month = MonthOfDay(today);
  if (month != month_) {  // a new month: the quotas start again
    month_to_date_.clear();
    month_ = month;
  }
  month_to_date_[{project, metric}] += quantity;
}

Status UsageMeter::Flush() {
  std::lock_guard<std::mutex> one(flush_mu_);
  std::map<Key, double> batch;
  {
    std::lock_guard<std::mutex> lock(mu_);
    batch.swap(pending_);
  }
  if (batch.empty()) return Status::Ok();
  std::vector<UsageRecord> rows;
  rows.reserve(batch.size());
  for (const auto& [k, q] : batch) rows.push_back(UsageRecord{k.project, k.key_id, DayString(k.day), k.metric, q});
  Status st = store_->AddUsage(rows);
  if (!st.ok()) {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& [k, q] : batch) pending_[k] += q;  // kept for the next flush
  }
  return st;
}

double UsageMeter::MonthToDate(const std::string& project, const std::string& metric) {
  std::lock_guard<std::mutex> lock(mu_);
  if (MonthOfDay(Today(NowMicros())) != month_) return 0;
  auto it = month_to_date_.find({project, metric});
  return it == month_to_date_.end() ? 0 : it->second;
}

Quota UsageMeter::GetQuota(const std::string& project) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = quotas_.find(project);
  return it == quotas_.end() ? Quota{} : it->second;
}

Status UsageMeter::SetQuota(const std::string& project, const Quota& q, const std::string& by) {
  DocumentRecord doc;
  doc.project = project;
  doc.kind = kQuotaKind;
  doc.name = kQuotaKind;
  doc.body = q.ToJson();
  doc.created_by = by;
  doc.created_at = NowMicros();
  RETURN_IF_ERROR(store_->PutDocument(doc).status());
  std::lock_guard<std::mutex> lock(mu_);
  quotas_[project] = q;
  return Status::Ok();
}

Status UsageMeter::CheckPredict(const std::string& project) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = quotas_.find(project);
  if (it == quotas_.end() || it->second.predictions_per_month == 0) return Status::Ok();
  auto used = month_to_date_.find({project, kMetricPredictions});
  const double n = used == month_to_date_.end() || month_ != MonthOfDay(Today(NowMicros())) ? 0 : used->second;
  if (n < static_cast<double>(it->second.predictions_per_month)) return Status::Ok();
  return QuotaExceeded(StatusCode::kResourceExhausted, project, "predictions_per_month",
                       std::to_string(static_cast<int64_t>(n)) + " of " +
                           std::to_string(it->second.predictions_per_month) + " predictions used this month");
}

Status UsageMeter::CheckJob(const std::string& kind, const std::string& project) {
  const Quota q = GetQuota(project);
  if (q.concurrent_jobs > 0) {
    ASSIGN_OR_RETURN(std::vector<JobRecord> jobs, store_->ListJobs(project, 10000));
    int64_t active = 0;
    for (const auto& j : jobs) active += j.state == JobState::kQueued || j.state == JobState::kRunning;
    if (active >= q.concurrent_jobs) {
      return QuotaExceeded(StatusCode::kResourceExhausted, project, "concurrent_jobs",
                           std::to_string(active) + " of " + std::to_string(q.concurrent_jobs) +
                               " jobs are queued or running; retry when one finishes");
    }
  }
  if (q.training_cpu_seconds_per_month > 0 && kTrainingKinds.count(kind)) {
    const double used = MonthToDate(project, kMetricTrainingCpu);
    if (used >= static_cast<double>(q.training_cpu_seconds_per_month)) {
      return QuotaExceeded(StatusCode::kPermissionDenied, project, "training_cpu_seconds_per_month",
                           std::to_string(static_cast<int64_t>(used)) + " of " +
                               std::to_string(q.training_cpu_seconds_per_month) + " CPU-seconds used this month");
    }
  }
  if (q.storage_bytes > 0 && kDataKinds.count(kind)) {
    ASSIGN_OR_RETURN(int64_t bytes, store_->ProjectStorageBytes(project));
    if (bytes >= q.storage_bytes) {
      return QuotaExceeded(StatusCode::kPermissionDenied, project, "storage_bytes",
                           std::to_string(bytes) + " of " + std::to_string(q.storage_bytes) +
                               " bytes used; delete dataset versions to make room");
    }
  }
  return Status::Ok();
}

Result<Json> UsageMeter::Statement(const std::string& project, const std::string& month) {
  unsigned mm = 0;
  int yy = 0;
  char extra = 0;
  if (month.size() != 7 || std::sscanf(month.c_str(), "%4d-%2u%c", &yy, &mm, &extra) != 2 || mm < 1 || mm > 12 ||
      yy < 1970) {
    return Status::InvalidArgument("month must be YYYY-MM, not '" + month.substr(0, 40) + "'")
        .WithDetail(ErrorDetail::Field("month", "must be YYYY-MM"));
  }
  RETURN_IF_ERROR(Flush());
  const int64_t first = DaysFromCivil(yy, mm, 1);
  const int64_t next = mm == 12 ? DaysFromCivil(yy + 1, 1, 1) : DaysFromCivil(yy, mm + 1, 1);
  ASSIGN_OR_RETURN(std::vector<UsageRecord> rows, store_->ListUsage(project, DayString(first), DayString(next - 1)));
  std::map<std::string, double> totals;
  Json by_key = Json::object();
  for (const auto& r : rows) {
    totals[r.metric] += r.quantity;
    Json& k = by_key[r.key_id.empty() ? "(no key)" : r.key_id];
    if (!k.is_object()) k = Json::object();
    k[r.metric] = k.value(r.metric, 0.0) + r.quantity;
  }
  Json lines = Json::array();
  double total = 0;
  for (const char* metric : {kMetricPredictions, kMetricRowsScored, kMetricTrainingCpu, kMetricStorage}) {
    auto p = prices_.price.find(metric);
    const double unit = p == prices_.price.end() ? 0 : p->second;
    const double qty = totals[metric];
    const double amount = std::round(qty * unit * 1e6) / 1e6;
    total += amount;
    lines.push_back({{"metric", metric}, {"quantity", qty}, {"unit_price", unit}, {"amount", amount}});
  }
  return Json{{"project", project},     {"month", month},    {"currency", prices_.currency},
              {"lines", std::move(lines)}, {"by_key", std::move(by_key)}, {"total", std::round(total * 1e6) / 1e6}};
}

}  // namespace lathe
