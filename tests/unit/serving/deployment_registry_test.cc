#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

#include "serving/deployment_registry.h"

namespace lathe {
namespace {

std::shared_ptr<const LoadedDeployment> Make(const std::string& name, int64_t version) {
  auto d = std::make_shared<LoadedDeployment>();
  d->project = "default";
  d->name = name;
  d->model = "m";
  d->version = version;
  return d;
}

TEST(DeploymentRegistry, SwapKeepsInFlightVersionAlive) {
  DeploymentRegistry reg;
  EXPECT_EQ(reg.Get("default", "a"), nullptr);
  reg.Put(Make("a", 1));
  auto in_flight = reg.Get("default", "a");
  reg.Put(Make("a", 2));
  // The request that started on v1 still holds v1; new lookups see v2.
  EXPECT_EQ(in_flight->version, 1);
  EXPECT_EQ(reg.Get("default", "a")->version, 2);
  EXPECT_EQ(reg.Get("other", "a"), nullptr);
  reg.Remove("default", "a");
  EXPECT_EQ(reg.Get("default", "a"), nullptr);
  EXPECT_EQ(in_flight->version, 1);
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
        if (!d || d->version < 1 || d->name != "a") bad++;
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
  EXPECT_EQ(reg.Get("default", "a")->version, 1999);
}

}  // namespace
}  // namespace lathe
