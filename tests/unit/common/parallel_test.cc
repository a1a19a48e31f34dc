#include "common/parallel.h"

#include <gtest/gtest.h>

#include <atomic>
#include <vector>

namespace lathe {
namespace {

TEST(ParallelFor, RunsEveryTaskOnceOnAnyThreadCount) {
  for (int threads : {0, 1, 2, 3, 8}) {
    for (size_t tasks : {size_t{0}, size_t{1}, size_t{2}, size_t{7}, size_t{100}}) {
      std::vector<std::atomic<int>> runs(tasks);
      ParallelFor(tasks, threads, [&](size_t i) { runs[i].fetch_add(1); });
      for (size_t i = 0; i < tasks; ++i) EXPECT_EQ(runs[i].load(), 1) << "task " << i << " of " << tasks << ", " << threads << " threads";
    }
  }
}

TEST(ParallelFor, ThreadsForStaysSingleForSmallWork) {
  EXPECT_EQ(ThreadsFor(10), 1);
  EXPECT_EQ(ThreadsFor(0), 1);
  EXPECT_GE(ThreadsFor(size_t{1} << 30), 1);
  EXPECT_LE(ThreadsFor(size_t{1} << 30, 1, 2), 2);
}

}  // namespace
}  // namespace lathe
