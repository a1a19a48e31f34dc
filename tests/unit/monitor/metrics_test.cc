#include "monitor/metrics.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <ctime>
#include <limits>
#include <sstream>
#include <stdexcept>
#include <thread>

namespace lathe {
namespace {

// Returns the value of the first line starting with `series + " "`, or NaN if absent.
double SampleValue(const std::string& text, const std::string& series) {
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(series + " ", 0) == 0) return std::stod(line.substr(series.size() + 1));
  }
  return std::nan("");
}

bool Contains(const std::string& text, const std::string& needle) { return text.find(needle) != std::string::npos; }

TEST(Metrics, CounterRendersHelpTypeAndLabels) {
  MetricsRegistry reg;
  auto fam = reg.AddCounter("lathe_http_requests_total", "HTTP requests.", {"method", "status"});
  ASSERT_TRUE(fam.ok());
  Counter* c = (*fam)->WithLabels({"GET", "200"});
  ASSERT_NE(c, nullptr);
  c->Inc();
  c->Inc(2);
  c->Inc(-5);  // ignored: counters only go up
  c->Inc(std::nan(""));
  EXPECT_EQ(c, (*fam)->WithLabels({"GET", "200"}));
  std::string text = reg.RenderPrometheus();
  EXPECT_TRUE(Contains(text, "# HELP lathe_http_requests_total HTTP requests.\n"));
  EXPECT_TRUE(Contains(text, "# TYPE lathe_http_requests_total counter\n"));
  EXPECT_TRUE(Contains(text, "lathe_http_requests_total{method=\"GET\",status=\"200\"} 3\n")) << text;
}

TEST(Metrics, WrongLabelCountReturnsNull) {
  MetricsRegistry reg;
  auto fam = reg.AddGauge("g", "help", {"a"});
  ASSERT_TRUE(fam.ok());
  EXPECT_EQ((*fam)->WithLabels({}), nullptr);
  EXPECT_EQ((*fam)->WithLabels({"x", "y"}), nullptr);
  EXPECT_NE((*fam)->WithLabels({"x"}), nullptr);
}

TEST(Metrics, LabelAndHelpEscaping) {
  MetricsRegistry reg;
  auto fam = reg.AddGauge("lathe_test_gauge", "line1\nline2 back\\slash \"quotes\" stay", {"path"});
  ASSERT_TRUE(fam.ok());
  (*fam)->WithLabels({"a\"b\\c\nd"})->Set(-1.5);
  std::string text = reg.RenderPrometheus();
  EXPECT_TRUE(Contains(text, "# HELP lathe_test_gauge line1\\nline2 back\\\\slash \"quotes\" stay\n")) << text;
  EXPECT_TRUE(Contains(text, "lathe_test_gauge{path=\"a\\\"b\\\\c\\nd\"} -1.5\n")) << text;
  EXPECT_EQ(EscapeLabelValue("plain"), "plain");
}

TEST(Metrics, ValueFormatting) {
  EXPECT_EQ(FormatMetricValue(0), "0");
  EXPECT_EQ(FormatMetricValue(42), "42");
  EXPECT_EQ(FormatMetricValue(0.1), "0.1");
  EXPECT_EQ(FormatMetricValue(1e21), "1e+21");
  EXPECT_EQ(FormatMetricValue(std::numeric_limits<double>::infinity()), "+Inf");
  EXPECT_EQ(FormatMetricValue(-std::numeric_limits<double>::infinity()), "-Inf");
  EXPECT_EQ(FormatMetricValue(std::nan("")), "NaN");
}

TEST(Metrics, HistogramBucketsAreCumulativeWithInf) {
  MetricsRegistry reg;
  auto fam = reg.AddHistogram("lathe_latency_seconds", "Latency.", {"route"}, {0.1, 0.5, 1});
  ASSERT_TRUE(fam.ok());
  Histogram* h = (*fam)->WithLabels({"/x"});
  h->Observe(0.05);
  h->Observe(0.1);  // inclusive upper bound
  h->Observe(0.3);
  h->Observe(7);
  h->Observe(std::nan(""));  // ignored
  std::string text = reg.RenderPrometheus();
  EXPECT_TRUE(Contains(text, "# TYPE lathe_latency_seconds histogram\n"));
  EXPECT_EQ(SampleValue(text, "lathe_latency_seconds_bucket{route=\"/x\",le=\"0.1\"}"), 2);
  EXPECT_EQ(SampleValue(text, "lathe_latency_seconds_bucket{route=\"/x\",le=\"0.5\"}"), 3);
  EXPECT_EQ(SampleValue(text, "lathe_latency_seconds_bucket{route=\"/x\",le=\"1\"}"), 3);
  EXPECT_EQ(SampleValue(text, "lathe_latency_seconds_bucket{route=\"/x\",le=\"+Inf\"}"), 4);
  EXPECT_DOUBLE_EQ(SampleValue(text, "lathe_latency_seconds_sum{route=\"/x\"}"), 7.45);
  EXPECT_EQ(SampleValue(text, "lathe_latency_seconds_count{route=\"/x\"}"), 4);
}

TEST(Metrics, DefaultLatencyBuckets) {
  const auto& b = DefaultLatencyBuckets();
  ASSERT_FALSE(b.empty());
  EXPECT_DOUBLE_EQ(b.front(), 0.0001);
  EXPECT_DOUBLE_EQ(b.back(), 10);
  for (size_t i = 1; i < b.size(); ++i) EXPECT_LT(b[i - 1], b[i]);
  MetricsRegistry reg;
  auto fam = reg.AddHistogram("h_default", "d");
  ASSERT_TRUE(fam.ok());
  (*fam)->Get()->Observe(0.003);
  std::string text = reg.RenderPrometheus();
  EXPECT_EQ(SampleValue(text, "h_default_bucket{le=\"0.0025\"}"), 0);
  EXPECT_EQ(SampleValue(text, "h_default_bucket{le=\"0.005\"}"), 1);
  EXPECT_EQ(SampleValue(text, "h_default_bucket{le=\"0.0001\"}"), 0);
  EXPECT_EQ(SampleValue(text, "h_default_bucket{le=\"10\"}"), 1);
}

TEST(Metrics, RegistrationErrors) {
  MetricsRegistry reg;
  EXPECT_FALSE(reg.AddCounter("", "h").ok());
  EXPECT_FALSE(reg.AddCounter("9abc", "h").ok());
  EXPECT_FALSE(reg.AddCounter("a-b", "h").ok());
  EXPECT_FALSE(reg.AddCounter("ok_name", "h", {"bad-label"}).ok());
  EXPECT_FALSE(reg.AddCounter("ok_name", "h", {"__reserved"}).ok());
  EXPECT_FALSE(reg.AddCounter("ok_name", "h", {"a", "a"}).ok());
  EXPECT_FALSE(reg.AddHistogram("hh", "h", {"le"}).ok());
  EXPECT_FALSE(reg.AddHistogram("hh", "h", {}, {1, 1}).ok());
  EXPECT_FALSE(reg.AddHistogram("hh", "h", {}, {2, 1}).ok());
  EXPECT_FALSE(reg.AddHistogram("hh", "h", {}, {1, std::numeric_limits<double>::infinity()}).ok());
  auto a = reg.AddCounter("same", "h", {"x"});
  auto b = reg.AddCounter("same", "h", {"x"});
  ASSERT_TRUE(a.ok());
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(*a, *b);
  EXPECT_FALSE(reg.AddGauge("same", "h", {"x"}).ok());
  EXPECT_FALSE(reg.AddCounter("same", "h", {"y"}).ok());
}

TEST(Metrics, ConcurrentIncrementsSumExactly) {
  MetricsRegistry reg;
  auto cf = reg.AddCounter("c_total", "c", {"t"});
  auto hf = reg.AddHistogram("h_seconds", "h");
  auto gf = reg.AddGauge("g", "g");
  ASSERT_TRUE(cf.ok() && hf.ok() && gf.ok());
  constexpr int kThreads = 4;
  constexpr int kPerThread = 100000;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      // Half the threads look the series up themselves, to race creation too.
      Counter* c = (*cf)->WithLabels({t % 2 ? "odd" : "even"});
      Histogram* h = (*hf)->Get();
      Gauge* g = (*gf)->Get();
      for (int i = 0; i < kPerThread; ++i) {
        c->Inc();
        h->Observe(0.001);
        g->Inc();
      }
    });
  }
  // Scrapes during the writes must not crash or block writers.
  for (int i = 0; i < 5; ++i) EXPECT_FALSE(reg.RenderPrometheus().empty());
  for (auto& th : threads) th.join();
  std::string text = reg.RenderPrometheus();
  EXPECT_EQ(SampleValue(text, "c_total{t=\"even\"}"), kThreads / 2 * kPerThread);
  EXPECT_EQ(SampleValue(text, "c_total{t=\"odd\"}"), kThreads / 2 * kPerThread);
  EXPECT_EQ(SampleValue(text, "h_seconds_count"), kThreads * kPerThread);
  EXPECT_EQ(SampleValue(text, "g"), kThreads * kPerThread);
}

TEST(Metrics, CollectorsRunAtScrapeTime) {
  MetricsRegistry reg;
  ASSERT_TRUE(reg.AddGauge("registered", "r").ok());
  int calls = 0;
  int id = reg.AddCollector([&] {
    ++calls;
    CollectedFamily f;
    f.name = "lathe_jobs";
    f.help = "Jobs by state.";
    f.type = MetricType::kGauge;
    f.samples.push_back({{{"state", "queued"}}, static_cast<double>(calls)});
    CollectedFamily bad;
    bad.name = "bad name";
    CollectedFamily shadow;
    shadow.name = "registered";
    shadow.samples.push_back({{}, 99});
    return std::vector<CollectedFamily>{f, bad, shadow};
  });
  reg.AddCollector([]() -> std::vector<CollectedFamily> { throw std::runtime_error("db down"); });
  std::string text = reg.RenderPrometheus();
  EXPECT_EQ(SampleValue(text, "lathe_jobs{state=\"queued\"}"), 1);
  EXPECT_TRUE(Contains(text, "# TYPE lathe_jobs gauge\n"));
  EXPECT_FALSE(Contains(text, "bad name"));
  EXPECT_FALSE(Contains(text, "registered 99"));
  EXPECT_TRUE(Contains(text, "# collector failed: db down"));
  EXPECT_EQ(SampleValue(reg.RenderPrometheus(), "lathe_jobs{state=\"queued\"}"), 2);
  reg.RemoveCollector(id);
  EXPECT_FALSE(Contains(reg.RenderPrometheus(), "lathe_jobs"));
}

TEST(Metrics, ProcessMetricsPresentAndPlausible) {
  MetricsRegistry reg;
  // Burn a little CPU so cpu time is observably positive.
  volatile double x = 0;
  for (int i = 0; i < 5000000; ++i) x = x + std::sqrt(static_cast<double>(i));
  std::string text = reg.RenderPrometheus();
  EXPECT_TRUE(Contains(text, "# TYPE process_cpu_seconds_total counter\n"));
  double cpu = SampleValue(text, "process_cpu_seconds_total");
  EXPECT_GT(cpu, 0);
  EXPECT_LT(cpu, 3600);
  double rss = SampleValue(text, "process_resident_memory_bytes");
  EXPECT_GT(rss, 1 << 20);
  EXPECT_LT(rss, 64.0 * (1ull << 30));
  double fds = SampleValue(text, "process_open_fds");
  EXPECT_GE(fds, 3);
  int fd = dup(0);
  ASSERT_GE(fd, 0);
  EXPECT_EQ(SampleValue(reg.RenderPrometheus(), "process_open_fds"), fds + 1);
  close(fd);
  double start = SampleValue(text, "process_start_time_seconds");
  double now = static_cast<double>(std::time(nullptr));
  EXPECT_LE(start, now + 1);
  EXPECT_GT(start, now - 3600);
  double uptime = SampleValue(text, "lathe_uptime_seconds");
  EXPECT_GE(uptime, 0);
  EXPECT_LT(uptime, 3600);
}

}  // namespace
}  // namespace lathe
