#include "common/parallel.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <thread>
#include <vector>

namespace lathe {
namespace {

TEST(ParallelFor, RunsEveryTaskOnceOnAnyThreadCount) {
  for (int threads : {0, 1, 2, 3, 8}) {
    for (size_t tasks : {size_t{0}, size_t{1}, size_t{2}, size_t{7}, size_t{100}}) {
      std::vector<std::atomic<int>> runs(tasks);
      ParallelFor(tasks, threads, [&](size_t i) { runs[i].fetch_add(1); });
      for (size_t i = 0; i < tasks; ++i)
        EXPECT_EQ(runs[i].load(), 1) << "task " << i << " of " << tasks << ", " << threads << " threads";
    }
  }
}

TEST(ParallelFor, ThreadsForStaysSingleForSmallWork) {
  EXPECT_EQ(ThreadsFor(10), 1);
  EXPECT_EQ(ThreadsFor(0), 1);
  EXPECT_GE(ThreadsFor(size_t{1} << 30), 1);
  EXPECT_LE(ThreadsFor(size_t{1} << 30, 1, 2), 2);
}

TEST(RunOrdered, ConsumesEveryResultOnceInOrderWithBoundedLookahead) {
  for (int threads : {0, 1, 2, 4}) {
    for (size_t window : {size_t{1}, size_t{2}, size_t{5}}) {
      for (size_t n : {size_t{0}, size_t{1}, size_t{3}, size_t{40}}) {
        std::atomic<size_t> consumed{0};
        std::atomic<size_t> max_ahead{0};
        std::vector<std::atomic<int>> produced(n);
        std::vector<size_t> order;
        Status st = RunOrdered<std::unique_ptr<size_t>>(
            n, threads, window,
            [&](size_t i) {
              produced[i].fetch_add(1);
              size_t ahead = i + 1 - consumed.load();
              size_t seen = max_ahead.load();
              while (ahead > seen && !max_ahead.compare_exchange_weak(seen, ahead)) {
              }
              // Uneven work: later items are often faster, so results arrive out of order.
              std::this_thread::sleep_for(std::chrono::microseconds((i * 7919) % 5 * 200));
              return std::make_unique<size_t>(i * i);
            },
            [&](size_t i, std::unique_ptr<size_t>& r) {
              consumed.store(i + 1);
              EXPECT_EQ(*r, i * i);
              order.push_back(i);
              return Status::Ok();
            });
        ASSERT_TRUE(st.ok()) << st.ToString();
        ASSERT_EQ(order.size(), n);
        for (size_t i = 0; i < n; ++i) {
          EXPECT_EQ(order[i], i);
          EXPECT_EQ(produced[i].load(), 1) << i;
        }
        // The pipeline counts an item as consumed just before consume() runs, so a worker may claim one item
        // before this test's counter moves.
        EXPECT_LE(max_ahead.load(), window + 1) << threads << " threads, window " << window;
      }
    }
  }
}

TEST(RunOrdered, StopsClaimingAfterAFailedConsume) {
  std::atomic<size_t> produced{0};
  Status st = RunOrdered<size_t>(
      1000, 2, 3,
      [&](size_t i) {
        produced.fetch_add(1);
        return i;
      },
      [&](size_t i, size_t&) { return i == 4 ? Status::InvalidArgument("item 4 is bad") : Status::Ok(); });
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(st.message(), "item 4 is bad");
  // Items 0..4 were consumed; at most `window` more were claimed while item 4 was being consumed.
  EXPECT_GE(produced.load(), 5u);
  EXPECT_LE(produced.load(), 5u + 3u);
}

TEST(RunOrdered, AConsumeThatThrowsStopsTheWorkersAndRethrows) {
  std::atomic<size_t> produced{0};
  EXPECT_THROW(RunOrdered<size_t>(
                   100, 2, 3,
                   [&](size_t i) {
                     produced.fetch_add(1);
                     return i;
                   },
                   [&](size_t i, size_t&) -> Status {
                     if (i == 2) throw std::runtime_error("consume failed");
                     return Status::Ok();
                   }),
               std::runtime_error);
  EXPECT_LE(produced.load(), 2u + 1u + 3u);
}

}  // namespace
}  // namespace lathe
