#include "serving/admission.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

namespace lathe {
namespace {

using Clock = AdmissionGate::Clock;
using Outcome = AdmissionGate::Outcome;

TEST(AdmissionGate, NoLimitAdmitsEveryone) {
  AdmissionGate g;
  for (int i = 0; i < 100; ++i) EXPECT_EQ(g.Enter(0, 0, Clock::now()), Outcome::kAdmitted);
  EXPECT_EQ(g.ToJson()["running"], 100);
}

TEST(AdmissionGate, FullQueueIsRefusedAtOnceAndAWaiterGetsTheFreedSlot) {
  AdmissionGate g;
  const auto far = Clock::now() + std::chrono::seconds(30);
  ASSERT_EQ(g.Enter(1, 1, far), Outcome::kAdmitted);
  std::atomic<bool> waiter_in{false};
  std::thread waiter([&] {
    EXPECT_EQ(g.Enter(1, 1, far), Outcome::kAdmitted);
    waiter_in = true;
    g.Leave();
  });
  while (g.ToJson()["waiting"] != 1) std::this_thread::yield();
  const auto t0 = Clock::now();
  EXPECT_EQ(g.Enter(1, 1, far), Outcome::kQueueFull);  // one running, one waiting: no room
  EXPECT_LT(Clock::now() - t0, std::chrono::seconds(1));
  EXPECT_FALSE(waiter_in.load());
  g.Leave();
  waiter.join();
  EXPECT_TRUE(waiter_in.load());
  Json j = g.ToJson();
  EXPECT_EQ(j["running"], 0);
  EXPECT_EQ(j["admitted"], 2);
  EXPECT_EQ(j["rejected_queue_full"], 1);
}

TEST(AdmissionGate, AWaiterGivesUpAtItsDeadline) {
  AdmissionGate g;
  ASSERT_EQ(g.Enter(1, 4, Clock::now()), Outcome::kAdmitted);
  const auto t0 = Clock::now();
  EXPECT_EQ(g.Enter(1, 4, t0 + std::chrono::milliseconds(50)), Outcome::kTimedOut);
  EXPECT_GE(Clock::now() - t0, std::chrono::milliseconds(50));
  EXPECT_EQ(g.ToJson()["rejected_deadline"], 1);
  EXPECT_EQ(g.ToJson()["waiting"], 0);
}

TEST(AdmissionGate, NeverMoreThanTheLimitRunAtOnce) {
  AdmissionGate g;
  std::atomic<int> running{0}, peak{0}, done{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 200; ++i) {
        if (g.Enter(2, 100, Clock::now() + std::chrono::seconds(30)) != Outcome::kAdmitted) continue;
        const int now = ++running;
        int p = peak.load();
        while (now > p && !peak.compare_exchange_weak(p, now)) {
        }
        --running;
        g.Leave();
        ++done;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_LE(peak.load(), 2);
  EXPECT_EQ(done.load(), 1600);
}

}  // namespace
}  // namespace lathe
