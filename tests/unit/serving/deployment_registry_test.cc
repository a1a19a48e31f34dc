#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "serving/deployment_registry.h"
#include "serving/prediction_log.h"

namespace lathe {
namespace {

std::shared_ptr<const LoadedDeployment> Make(const std::string& name, int64_t version) {
  auto d = std::make_shared<LoadedDeployment>();
  d->project = "default";
  d->name = name;
  d->routes.push_back(ServingVersion{.model = "m", .version = version, .weight = 1});
  return d;
}

TEST(DeploymentRegistry, SwapKeepsInFlightVersionAlive) {
  DeploymentRegistry reg;
  EXPECT_EQ(reg.Get("default", "a"), nullptr);
  reg.Put(Make("a", 1));
  auto in_flight = reg.Get("default", "a");
  reg.Put(Make("a", 2));
  // The request that started on v1 still holds v1; new lookups see v2.
  EXPECT_EQ(in_flight->stable().version, 1);
  EXPECT_EQ(reg.Get("default", "a")->stable().version, 2);
  EXPECT_EQ(reg.Get("other", "a"), nullptr);
  reg.Remove("default", "a");
  EXPECT_EQ(reg.Get("default", "a"), nullptr);
  EXPECT_EQ(in_flight->stable().version, 1);
  EXPECT_EQ(reg.size(), 0u);
}

TEST(DeploymentRegistry, ConcurrentReadersDuringSwapsAlwaysSeeAWholeVersion) {
  DeploymentRegistry reg;
  reg.Put(Make("a", 1));
  std::atomic<bool> stop{false};
  std::atomic<int64_t> bad{0}, reads{0};
  std::vector<std::thread> readers;
  for (int t = 0; t < 3; ++t) {
    readers.emplace_back([&] {
      while (!stop.load()) {
        auto d = reg.Get("default", "a");
        if (!d || d->stable().version < 1 || d->name != "a") bad++;
        reads++;
      }
    });
  }
  while (reads.load() == 0) std::this_thread::yield();
  for (int v = 2; v < 2000; ++v) reg.Put(Make("a", v));
  stop = true;
  for (auto& t : readers) t.join();
  EXPECT_EQ(bad.load(), 0);
  EXPECT_GT(reads.load(), 0);
  EXPECT_EQ(reg.Get("default", "a")->stable().version, 1999);
}

LoadedDeployment Canary(double w1, double w2) {
  LoadedDeployment d;
  d.routes.push_back(ServingVersion{.model = "m", .version = 1, .weight = w1});
  d.routes.push_back(ServingVersion{.model = "m", .version = 2, .weight = w2});
  return d;
}

TEST(LoadedDeployment, PickSplitsTrafficInProportionToWeights) {
  const LoadedDeployment d = Canary(90, 10);
  int v2 = 0;
  const int n = 10000;
  for (int i = 0; i < n; ++i) v2 += d.Pick("", (i + 0.5) / n).version == 2;
  EXPECT_EQ(v2, 1000);
  EXPECT_EQ(d.Pick("", 0.0).version, 1);
  EXPECT_EQ(d.Pick("", 0.999999).version, 2);
}

TEST(LoadedDeployment, ZeroWeightRouteIsNeverPicked) {
  const LoadedDeployment d = Canary(1, 0);
  for (double u : {0.0, 0.5, 0.9999999}) EXPECT_EQ(d.Pick("", u).version, 1);
  const LoadedDeployment e = Canary(0, 1);
  for (double u : {0.0, 0.5, 0.9999999}) EXPECT_EQ(e.Pick("", u).version, 2);
  EXPECT_EQ(e.Pick("user-7", 0.0).version, 2);
}

TEST(LoadedDeployment, StickyKeyIgnoresTheDrawAndSpreadsKeysByWeight) {
  const LoadedDeployment d = Canary(50, 50);
  int v2 = 0;
  for (int k = 0; k < 4000; ++k) {
    const std::string key = "customer-" + std::to_string(k);
    const int64_t first = d.Pick(key, 0.01).version;
    EXPECT_EQ(d.Pick(key, 0.99).version, first) << key;
    v2 += first == 2;
  }
  // Binomial(4000, 0.5): sd ~ 32; 6 sd either side.
  EXPECT_NEAR(v2, 2000, 190);
}

TEST(DeploymentConfig, ParsesRoutesShadowPolicyAndRollback) {
  auto c = ParseDeploymentConfig(Json::parse(R"({
      "routes": [{"model": "churn", "version": 3, "weight": 90}, {"model": "churn", "weight": 10}],
      "shadow": {"model": "churn2", "version": "latest", "fraction": 0.5},
      "input": {"unknown_fields": "ignore", "missing_fields": "null"},
      "rollback": {"max_error_rate": 0.1, "window_s": 30},
      "log": {"sample_rate": 0.25}})"),
                                 DeploymentConfig{});
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  ASSERT_EQ(c->routes.size(), 2u);
  EXPECT_EQ(c->routes[0].version, 3);
  EXPECT_EQ(c->routes[1].version, 0);  // latest, resolved by the API
  EXPECT_DOUBLE_EQ(c->routes[1].weight, 10);
  ASSERT_TRUE(c->shadow.has_value());
  EXPECT_EQ(c->shadow->model, "churn2");
  EXPECT_DOUBLE_EQ(c->shadow->fraction, 0.5);
  EXPECT_TRUE(c->input.ignore_unknown_fields);
  EXPECT_TRUE(c->input.missing_fields_as_null);
  EXPECT_FALSE(c->input.reject_unseen_categories);
  ASSERT_TRUE(c->rollback.has_value());
  EXPECT_EQ(c->rollback->window_s, 30);
  EXPECT_EQ(c->rollback->min_requests, 50);  // default kept
  EXPECT_DOUBLE_EQ(c->log_sample_rate, 0.25);

  // A patch keeps what it does not name; null removes shadow and rollback.
  auto patched = ParseDeploymentConfig(Json::parse(R"({"shadow": null, "rollback": null})"), *c);
  ASSERT_TRUE(patched.ok());
  EXPECT_EQ(patched->routes.size(), 2u);
  EXPECT_FALSE(patched->shadow.has_value());
  EXPECT_FALSE(patched->rollback.has_value());
  EXPECT_TRUE(patched->input.ignore_unknown_fields);

  auto round = ParseDeploymentConfig(DeploymentConfigJson(*c), DeploymentConfig{});
  ASSERT_TRUE(round.ok());
  EXPECT_EQ(DeploymentConfigJson(*round), DeploymentConfigJson(*c));
}

TEST(DeploymentConfig, ErrorsNameTheField) {
  const std::pair<const char*, const char*> cases[] = {
      {R"({"routes": []})", "routes"},
      {R"({"routes": [{"model": "m", "weight": 0}]})", "routes"},
      {R"({"routes": [{"model": "m"}, {"model": "m", "weight": -1}]})", "routes[1].weight"},
      {R"({"routes": [{"model": "m", "version": 0}]})", "routes[0].version"},
      {R"({"routes": [{"model": "../x"}]})", "routes[0].model"},
      {R"({"routes": [{"model": "m", "colour": 1}]})", "routes[0].colour"},
      {R"({"shadow": {"model": "m", "fraction": 0}})", "shadow.fraction"},
      {R"({"shadow": {"model": "m", "fraction": 2}})", "shadow.fraction"},
      {R"({"input": {"unknown_fields": "maybe"}})", "input.unknown_fields"},
      {R"({"rollback": {"window_s": 601}})", "rollback.window_s"},
      {R"({"rollback": {"max_error_rate": "high"}})", "rollback.max_error_rate"},
      {R"({"log": {"sample_rate": 1.5}})", "log.sample_rate"},
      {R"([1, 2])", "body"},
  };
  for (const auto& [body, field] : cases) {
    auto c = ParseDeploymentConfig(Json::parse(body), DeploymentConfig{});
    ASSERT_FALSE(c.ok()) << body;
    EXPECT_EQ(c.status().code(), StatusCode::kInvalidArgument) << body;
    ASSERT_FALSE(c.status().details().empty()) << body;
    EXPECT_EQ(c.status().details()[0].field, field) << body;
  }
}

TEST(VersionStats, WindowCountsOnlyRecentSecondsAndReportsP99) {
  VersionStats s(0, {});
  const int64_t t0 = 1'000'000'000'000;  // µs
  for (int i = 0; i < 100; ++i) s.Record(t0, 0.3, false, nullptr, 0);   // second 0: fast
  for (int i = 0; i < 5; ++i) s.Record(t0 + 5'000'000, 300, true, nullptr, 0);  // second 5: slow errors
  auto all = s.Recent(t0 + 5'000'000, 10);
  EXPECT_EQ(all.requests, 105);
  EXPECT_EQ(all.errors, 5);
  EXPECT_DOUBLE_EQ(all.p99_ms, 500);  // 300 ms falls in the (250, 500] bucket
  auto last = s.Recent(t0 + 5'000'000, 3);
  EXPECT_EQ(last.requests, 5);
  EXPECT_EQ(last.errors, 5);
  // Ten minutes later the window is empty but the totals remain.
  auto later = s.Recent(t0 + 700'000'000, 600);
  EXPECT_EQ(later.requests, 0);
  EXPECT_DOUBLE_EQ(later.p99_ms, 0);
  EXPECT_EQ(s.ToJson()["requests"], 105);
  EXPECT_EQ(s.ToJson()["errors"], 5);
}

TEST(VersionStats, PredictionDistribution) {
  VersionStats bin(0, {});
  const float probs[] = {0.05f, 0.95f, 0.97f, 1.0f};
  bin.Record(1, 1, false, probs, 4);
  Json h = bin.ToJson()["predictions"]["histogram"];
  EXPECT_EQ(h[0]["count"], 1);
  EXPECT_EQ(h[9]["count"], 3);
  EXPECT_EQ(bin.ToJson()["rows"], 4);

  VersionStats multi(1, {"a", "b", "c"});
  const float rows[] = {0.1f, 0.8f, 0.1f, 0.7f, 0.2f, 0.1f, 0.2f, 0.3f, 0.5f, 0.1f, 0.6f, 0.3f};
  multi.Record(1, 1, false, rows, 4);
  Json counts = multi.ToJson()["predictions"]["counts"];
  EXPECT_EQ(counts["a"], 1);
  EXPECT_EQ(counts["b"], 2);
  EXPECT_EQ(counts["c"], 1);

  VersionStats reg(2, {});
  const float ys[] = {1, 2, 3};
  reg.Record(1, 1, false, ys, 3);
  Json p = reg.ToJson()["predictions"];
  EXPECT_DOUBLE_EQ(p["mean"].get<double>(), 2);
  EXPECT_DOUBLE_EQ(p["min"].get<double>(), 1);
  EXPECT_DOUBLE_EQ(p["max"].get<double>(), 3);
}

TEST(PredictionLog, FlushDeliversInOrderAndAFullBufferDropsAndCounts) {
  std::mutex mu;
  std::vector<std::string> seen;
  std::atomic<bool> block{false};
  int accepted = 0;
  {
    PredictionLog log(
        [&](std::vector<PredictionLogEntry>& batch) {
          while (block.load()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
          std::lock_guard lock(mu);
          for (auto& e : batch) seen.push_back(e.request_id);
          return Status::Ok();
        },
        /*capacity=*/8, /*flush_interval_ms=*/10000, /*max_batch=*/4);
    for (int i = 0; i < 6; ++i) EXPECT_TRUE(log.Offer(PredictionLogEntry{.request_id = std::to_string(i)}));
    log.Flush();
    {
      std::lock_guard lock(mu);
      ASSERT_EQ(seen.size(), 6u);
      for (int i = 0; i < 6; ++i) EXPECT_EQ(seen[static_cast<size_t>(i)], std::to_string(i));
    }
    EXPECT_EQ(log.written(), 6u);

    // With the writer stuck in a slow sink, the buffer fills and Offer drops instead of blocking.
    block = true;
    for (int i = 0; i < 40; ++i) accepted += log.Offer(PredictionLogEntry{.request_id = "x"});
    EXPECT_LE(accepted, 8 + 4);  // the buffer plus at most one batch already taken by the writer
    EXPECT_EQ(log.dropped(), static_cast<uint64_t>(40 - accepted));
    block = false;
  }  // the destructor writes what was still queued
  std::lock_guard lock(mu);
  EXPECT_EQ(seen.size(), 6u + static_cast<size_t>(accepted));
}

}  // namespace
}  // namespace lathe

namespace lathe {
namespace {

TEST(RateBudget, CapsEachSecondAndStartsAfreshTheNext) {
  RateBudget b;
  int taken = 0;
  for (int i = 0; i < 50; ++i) taken += b.TryTake(5'000'000 + i, 10) ? 1 : 0;
  EXPECT_EQ(taken, 10);
  EXPECT_EQ(b.refused(), 40u);
  EXPECT_TRUE(b.TryTake(6'000'000, 10));  // the next second
  for (int i = 0; i < 100; ++i) EXPECT_TRUE(b.TryTake(7'000'000, 0));  // 0 = no cap
}

}  // namespace
}  // namespace lathe
