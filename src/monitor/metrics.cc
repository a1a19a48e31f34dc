#include "monitor/metrics.h"

#include <dirent.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <exception>
#include <fstream>
#include <sstream>

namespace lathe {

const char* MetricTypeName(MetricType type) {
  switch (type) {
    case MetricType::kCounter: return "counter";
    case MetricType::kGauge: return "gauge";
    case MetricType::kHistogram: return "histogram";
    case MetricType::kUntyped: return "untyped";
  }
  return "untyped";
}

void Counter::Inc(double amount) {
  if (!(amount >= 0)) return;  // negative or NaN
  value_.fetch_add(amount, std::memory_order_relaxed);
}

Histogram::Histogram(const std::vector<double>* bounds)
    : bounds_(bounds), counts_(new std::atomic<uint64_t>[bounds->size() + 1]) {
  for (size_t i = 0; i <= bounds_->size(); ++i) counts_[i].store(0, std::memory_order_relaxed);
}

void Histogram::Observe(double value) {
  if (std::isnan(value)) return;
  // First bound >= value: "le" buckets are inclusive.
  size_t idx = std::lower_bound(bounds_->begin(), bounds_->end(), value) - bounds_->begin();
  counts_[idx].fetch_add(1, std::memory_order_relaxed);
  sum_.fetch_add(value, std::memory_order_relaxed);
}

Histogram::Snapshot Histogram::Read() const {
  Snapshot s;
  s.cumulative.resize(bounds_->size() + 1);
  uint64_t acc = 0;
  for (size_t i = 0; i <= bounds_->size(); ++i) {
    acc += counts_[i].load(std::memory_order_relaxed);
    s.cumulative[i] = acc;
  }
  s.sum = sum_.load(std::memory_order_relaxed);
  return s;
}

const std::vector<double>& DefaultLatencyBuckets() {
  static const std::vector<double> kBuckets = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                               0.05,   0.1,     0.25,   0.5,   1,      2.5,   5,     10};
  return kBuckets;
}

template <class T>
MetricFamily<T>::MetricFamily(std::string name, std::string help, std::vector<std::string> label_names,
                              std::vector<double> bounds)
    : name_(std::move(name)),
      help_(std::move(help)),
      label_names_(std::move(label_names)),
      bounds_(std::move(bounds)) {}

template <class T>
T* MetricFamily<T>::WithLabels(const LabelValues& values) {
  if (values.size() != label_names_.size()) return nullptr;
  {
    std::shared_lock<std::shared_mutex> lock(mu_);
    auto it = series_.find(values);
    if (it != series_.end()) return it->second.get();
  }
  std::unique_lock<std::shared_mutex> lock(mu_);
  auto& slot = series_[values];
  if (!slot) {
    if constexpr (std::is_same_v<T, Histogram>) {
      slot = std::make_unique<Histogram>(&bounds_);
    } else {
      slot = std::make_unique<T>();
    }
  }
  return slot.get();
}

template <class T>
void MetricFamily<T>::ForEach(const std::function<void(const LabelValues&, const T&)>& fn) const {
  std::shared_lock<std::shared_mutex> lock(mu_);
  for (const auto& [values, series] : series_) fn(values, *series);
}

template class MetricFamily<Counter>;
template class MetricFamily<Gauge>;
template class MetricFamily<Histogram>;

bool IsValidMetricName(std::string_view name) {
  if (name.empty()) return false;
  for (size_t i = 0; i < name.size(); ++i) {
    char c = name[i];
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':' ||
              (i > 0 && c >= '0' && c <= '9');
    if (!ok) return false;
  }
  return true;
}

bool IsValidLabelName(std::string_view name) {
  if (name.empty() || name.substr(0, 2) == "__") return false;
  for (size_t i = 0; i < name.size(); ++i) {
    char c = name[i];
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || (i > 0 && c >= '0' && c <= '9');
    if (!ok) return false;
  }
  return true;
}

std::string EscapeLabelValue(std::string_view value) {
  std::string out;
  out.reserve(value.size());
  for (char c : value) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out.push_back(c);
    }
  }
  return out;
}

std::string EscapeHelp(std::string_view help) {
  std::string out;
  out.reserve(help.size());
  for (char c : help) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out.push_back(c);
    }
  }
  return out;
}

std::string FormatMetricValue(double value) {
  if (std::isnan(value)) return "NaN";
  if (std::isinf(value)) return value > 0 ? "+Inf" : "-Inf";
  char buf[64];
  // Shortest round-trip text; plain decimals for the usual range so bucket bounds read "0.0001", not "1e-04".
  double mag = std::fabs(value);
  auto fmt = (mag == 0 || (mag >= 1e-6 && mag < 1e15)) ? std::chars_format::fixed : std::chars_format::general;
  auto res = std::to_chars(buf, buf + sizeof(buf), value, fmt);
  return std::string(buf, res.ptr);
}

namespace {

double ClockTicksPerSecond() {
  long t = sysconf(_SC_CLK_TCK);
  return t > 0 ? static_cast<double>(t) : 100.0;
}

double BootTimeSeconds() {
  std::ifstream in("/proc/stat");
  std::string key;
  while (in >> key) {
    if (key == "btime") {
      double v = -1;
      in >> v;
      return v;
    }
    in.ignore(1 << 20, '\n');
  }
  return -1;
}

void AppendSeries(std::string* out, const std::string& name, const LabelPairs& labels, double value) {
  out->append(name);
  if (!labels.empty()) {
    out->push_back('{');
    for (size_t i = 0; i < labels.size(); ++i) {
      if (i) out->push_back(',');
      out->append(labels[i].first);
      out->append("=\"");
      out->append(EscapeLabelValue(labels[i].second));
      out->push_back('"');
    }
    out->push_back('}');
  }
  out->push_back(' ');
  out->append(FormatMetricValue(value));
  out->push_back('\n');
}

void AppendHeader(std::string* out, const std::string& name, const std::string& help, MetricType type) {
  out->append("# HELP ").append(name).append(" ").append(EscapeHelp(help)).append("\n");
  out->append("# TYPE ").append(name).append(" ").append(MetricTypeName(type)).append("\n");
}

LabelPairs Zip(const std::vector<std::string>& names, const LabelValues& values) {
  LabelPairs pairs;
  pairs.reserve(names.size() + 1);
  for (size_t i = 0; i < names.size(); ++i) pairs.emplace_back(names[i], values[i]);
  return pairs;
}

}  // namespace

ProcessStats ReadProcessStats() {
  ProcessStats s;
  static const double kTicks = ClockTicksPerSecond();
  {
    std::ifstream in("/proc/self/stat");
    std::string line;
    if (std::getline(in, line)) {
      // The command name (field 2) may contain spaces and parentheses: fields resume after the last ')'.
      size_t close = line.rfind(')');
      if (close != std::string::npos) {
        std::istringstream rest(line.substr(close + 1));
        std::vector<std::string> f;
        std::string tok;
        while (rest >> tok) f.push_back(tok);
        // f[0] is field 3 (state); utime=14, stime=15, starttime=22 -> f[11], f[12], f[19].
        if (f.size() > 19) {
          char* end = nullptr;
          double utime = std::strtod(f[11].c_str(), &end);
          double stime = std::strtod(f[12].c_str(), &end);
          double start = std::strtod(f[19].c_str(), &end);
          s.cpu_seconds = (utime + stime) / kTicks;
          static const double kBoot = BootTimeSeconds();
          if (kBoot > 0) s.start_time_seconds = kBoot + start / kTicks;
        }
      }
    }
  }
  {
    std::ifstream in("/proc/self/statm");
    double size_pages = 0, resident_pages = 0;
    if (in >> size_pages >> resident_pages) {
      s.resident_bytes = resident_pages * static_cast<double>(sysconf(_SC_PAGESIZE));
    }
  }
  if (DIR* dir = opendir("/proc/self/fd")) {
    int n = 0;
    while (struct dirent* e = readdir(dir)) {
      if (e->d_name[0] != '.') ++n;
    }
    closedir(dir);
    s.open_fds = n - 1;  // the descriptor opendir itself holds
  }
  return s;
}

MetricsRegistry::MetricsRegistry() : start_time_s_(static_cast<double>(std::time(nullptr))) {}

Status MetricsRegistry::CheckNew(const std::string& name, const std::vector<std::string>& label_names,
                                 MetricType type, Entry** existing) {
  *existing = nullptr;
  if (!IsValidMetricName(name)) return Status::InvalidArgument("invalid metric name '" + name + "'");
  for (size_t i = 0; i < label_names.size(); ++i) {
    if (!IsValidLabelName(label_names[i]) || (type == MetricType::kHistogram && label_names[i] == "le")) {
      return Status::InvalidArgument("metric '" + name + "': invalid label name '" + label_names[i] + "'");
    }
    for (size_t j = 0; j < i; ++j) {
      if (label_names[j] == label_names[i]) {
        return Status::InvalidArgument("metric '" + name + "': duplicate label name '" + label_names[i] + "'");
      }
    }
  }
  auto it = by_name_.find(name);
  if (it == by_name_.end()) return Status::Ok();
  Entry* e = it->second;
  const std::vector<std::string>* names = nullptr;
  if (e->type == MetricType::kCounter) names = &e->counter->label_names();
  if (e->type == MetricType::kGauge) names = &e->gauge->label_names();
  if (e->type == MetricType::kHistogram) names = &e->histogram->label_names();
  if (e->type != type || *names != label_names) {
    return Status::InvalidArgument("metric '" + name + "' already registered with another type or labels");
  }
  *existing = e;
  return Status::Ok();
}

Result<CounterFamily*> MetricsRegistry::AddCounter(const std::string& name, const std::string& help,
                                                   const std::vector<std::string>& label_names) {
  std::lock_guard<std::mutex> lock(mu_);
  Entry* existing = nullptr;
  RETURN_IF_ERROR(CheckNew(name, label_names, MetricType::kCounter, &existing));
  if (existing) return existing->counter.get();
  auto e = std::make_unique<Entry>();
  e->type = MetricType::kCounter;
  e->counter = std::make_unique<CounterFamily>(name, help, label_names);
  CounterFamily* f = e->counter.get();
  by_name_[name] = e.get();
  entries_.push_back(std::move(e));
  return f;
}

Result<GaugeFamily*> MetricsRegistry::AddGauge(const std::string& name, const std::string& help,
                                               const std::vector<std::string>& label_names) {
  std::lock_guard<std::mutex> lock(mu_);
  Entry* existing = nullptr;
  RETURN_IF_ERROR(CheckNew(name, label_names, MetricType::kGauge, &existing));
  if (existing) return existing->gauge.get();
  auto e = std::make_unique<Entry>();
  e->type = MetricType::kGauge;
  e->gauge = std::make_unique<GaugeFamily>(name, help, label_names);
  GaugeFamily* f = e->gauge.get();
  by_name_[name] = e.get();
  entries_.push_back(std::move(e));
  return f;
}

Result<HistogramFamily*> MetricsRegistry::AddHistogram(const std::string& name, const std::string& help,
                                                       const std::vector<std::string>& label_names,
                                                       const std::vector<double>& bounds) {
  for (size_t i = 0; i < bounds.size(); ++i) {
    if (!std::isfinite(bounds[i]) || (i > 0 && !(bounds[i] > bounds[i - 1]))) {
      return Status::InvalidArgument("histogram '" + name + "': bounds must be finite and strictly increasing");
    }
  }
  std::lock_guard<std::mutex> lock(mu_);
  Entry* existing = nullptr;
  RETURN_IF_ERROR(CheckNew(name, label_names, MetricType::kHistogram, &existing));
  if (existing) {
    if (existing->histogram->bounds() != bounds) {
      return Status::InvalidArgument("histogram '" + name + "' already registered with other bounds");
    }
    return existing->histogram.get();
  }
  auto e = std::make_unique<Entry>();
  e->type = MetricType::kHistogram;
  e->histogram = std::make_unique<HistogramFamily>(name, help, label_names, bounds);
  HistogramFamily* f = e->histogram.get();
  by_name_[name] = e.get();
  entries_.push_back(std::move(e));
  return f;
}

int MetricsRegistry::AddCollector(Collector collector) {
  std::lock_guard<std::mutex> lock(mu_);
  int id = next_collector_id_++;
  collectors_[id] = std::make_shared<Collector>(std::move(collector));
  return id;
}

void MetricsRegistry::RemoveCollector(int id) {
  std::lock_guard<std::mutex> lock(mu_);
  collectors_.erase(id);
}

std::string MetricsRegistry::RenderPrometheus() const {
  std::vector<Entry*> entries;
  std::vector<std::shared_ptr<Collector>> collectors;
  std::vector<std::string> registered;  // sorted: by_name_ is a map
  {
    std::lock_guard<std::mutex> lock(mu_);
    entries.reserve(entries_.size());
    for (const auto& e : entries_) entries.push_back(e.get());
    for (const auto& [id, c] : collectors_) collectors.push_back(c);
    for (const auto& [name, e] : by_name_) registered.push_back(name);
  }
  std::string out;
  out.reserve(4096);
  for (Entry* e : entries) {
    switch (e->type) {
      case MetricType::kCounter:
        AppendHeader(&out, e->counter->name(), e->counter->help(), MetricType::kCounter);
        e->counter->ForEach([&](const LabelValues& v, const Counter& c) {
          AppendSeries(&out, e->counter->name(), Zip(e->counter->label_names(), v), c.Value());
        });
        break;
      case MetricType::kGauge:
        AppendHeader(&out, e->gauge->name(), e->gauge->help(), MetricType::kGauge);
        e->gauge->ForEach([&](const LabelValues& v, const Gauge& g) {
          AppendSeries(&out, e->gauge->name(), Zip(e->gauge->label_names(), v), g.Value());
        });
        break;
      case MetricType::kHistogram: {
        const HistogramFamily& f = *e->histogram;
        AppendHeader(&out, f.name(), f.help(), MetricType::kHistogram);
        const std::string bucket = f.name() + "_bucket";
        const std::string sum = f.name() + "_sum";
        const std::string count = f.name() + "_count";
        f.ForEach([&](const LabelValues& v, const Histogram& h) {
          Histogram::Snapshot s = h.Read();
          LabelPairs labels = Zip(f.label_names(), v);
          labels.emplace_back("le", "");
          for (size_t i = 0; i < s.cumulative.size(); ++i) {
            labels.back().second = i < f.bounds().size() ? FormatMetricValue(f.bounds()[i]) : "+Inf";
            AppendSeries(&out, bucket, labels, static_cast<double>(s.cumulative[i]));
          }
          labels.pop_back();
          AppendSeries(&out, sum, labels, s.sum);
          AppendSeries(&out, count, labels, static_cast<double>(s.cumulative.back()));
        });
        break;
      }
      case MetricType::kUntyped:
        break;
    }
  }
  for (size_t ci = 0; ci < collectors.size(); ++ci) {
    std::vector<CollectedFamily> families;
    try {
      families = (*collectors[ci])();
    } catch (const std::exception& ex) {
      out.append("# collector failed: ").append(EscapeHelp(ex.what())).append("\n");
      continue;
    } catch (...) {
      out.append("# collector failed\n");
      continue;
    }
    for (const CollectedFamily& f : families) {
      // A collected family may not shadow a registered one: the exposition must not repeat a name.
      if (!IsValidMetricName(f.name) || f.type == MetricType::kHistogram ||
          std::binary_search(registered.begin(), registered.end(), f.name)) {
        continue;
      }
      bool labels_ok = true;
      for (const auto& s : f.samples) {
        for (const auto& l : s.labels) labels_ok = labels_ok && IsValidLabelName(l.first);
      }
      if (!labels_ok) continue;
      AppendHeader(&out, f.name, f.help, f.type);
      for (const auto& s : f.samples) AppendSeries(&out, f.name, s.labels, s.value);
    }
  }
  ProcessStats p = ReadProcessStats();
  auto process_metric = [&](const char* name, const char* help, MetricType type, double v) {
    if (v < 0) return;
    AppendHeader(&out, name, help, type);
    AppendSeries(&out, name, {}, v);
  };
  process_metric("process_cpu_seconds_total", "Total user and system CPU time spent in seconds.",
                 MetricType::kCounter, p.cpu_seconds);
  process_metric("process_resident_memory_bytes", "Resident memory size in bytes.", MetricType::kGauge,
                 p.resident_bytes);
  process_metric("process_open_fds", "Number of open file descriptors.", MetricType::kGauge, p.open_fds);
  process_metric("process_start_time_seconds", "Start time of the process since unix epoch in seconds.",
                 MetricType::kGauge, p.start_time_seconds);
  double now = static_cast<double>(std::time(nullptr));
  double start = p.start_time_seconds > 0 ? p.start_time_seconds : start_time_s_;
  process_metric("lathe_uptime_seconds", "Seconds since the lathe process started.", MetricType::kGauge,
                 std::max(0.0, now - start));
  return out;
}

}  // namespace lathe
