#include "common/parallel.h"

#include <algorithm>
#include <atomic>
#include <thread>
#include <vector>

namespace lathe {

int ThreadsFor(size_t work_items, size_t min_per_thread, int cap) {
  const size_t cores = std::max(1u, std::thread::hardware_concurrency());
  const size_t by_work = std::max<size_t>(1, work_items / std::max<size_t>(1, min_per_thread));
  return static_cast<int>(std::min({cores, by_work, static_cast<size_t>(std::max(1, cap))}));
}

void ParallelFor(size_t tasks, int threads, const std::function<void(size_t)>& fn) {
  const size_t n = std::min(tasks, static_cast<size_t>(std::max(1, threads)));
  if (n <= 1) {
    for (size_t i = 0; i < tasks; ++i) fn(i);
    return;
  }
  std::atomic<size_t> next{0};
  auto work = [&] {
    for (size_t i = next.fetch_add(1, std::memory_order_relaxed); i < tasks; i = next.fetch_add(1, std::memory_order_relaxed)) fn(i);
  };
  std::vector<std::thread> helpers;
  helpers.reserve(n - 1);
  for (size_t t = 1; t < n; ++t) helpers.emplace_back(work);
  work();
  for (std::thread& h : helpers) h.join();
}

}  // namespace lathe
