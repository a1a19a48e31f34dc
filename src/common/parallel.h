// Data-parallel loops for CPU-bound work inside one job or request: a handful of tasks spread over up to
// `threads` threads (the caller's plus threads - 1 short-lived ones). Tasks are claimed in index order from
// an atomic counter, so uneven tasks balance. Not nested.
#pragma once

#include <algorithm>
#include <condition_variable>
#include <cstddef>
#include <exception>
#include <functional>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "common/status.h"

namespace lathe {

// The number of threads worth using for `work_items` units of cheap per-item work (e.g. rows): 1 below
// `min_per_thread` items per thread, else up to the machine's cores (at most `cap`).
int ThreadsFor(size_t work_items, size_t min_per_thread = 1 << 16, int cap = 8);

// Runs fn(i) for every i in [0, tasks) on up to `threads` threads and returns when all are done. fn must not
// throw (an exception terminates, as in any thread).
void ParallelFor(size_t tasks, int threads, const std::function<void(size_t)>& fn);

// A pipeline with an ordered end: produce(i) for i in [0, n) runs on up to `threads` worker threads, which
// claim the next index as soon as they are free (uneven items balance), and consume(i, r) gets each result
// on the calling thread in index order. At most `window` items (claimed or finished, not yet consumed) are
// ahead of the consumer, which bounds the memory their results hold; window >= threads + 1 keeps the workers
// busy while the consumer works. After the first consume that fails no new item is claimed; the call
// returns that status once the items in flight are done; an exception from consume is rethrown after that.
// produce must not throw (wrap it and put the error into R); if no worker thread can be started, the items
// are produced on the calling thread.
template <class R, class Produce, class Consume>
Status RunOrdered(size_t n, int threads, size_t window, const Produce& produce, const Consume& consume) {
  std::mutex mu;
  std::condition_variable worker_cv, consumer_cv;
  std::vector<std::optional<R>> done(n);
  size_t claimed = 0, consumed = 0;
  bool stop = false;
  window = std::max<size_t>(window, 1);
  auto work = [&] {
    std::unique_lock<std::mutex> lock(mu);
    for (;;) {
      worker_cv.wait(lock, [&] { return stop || claimed >= n || claimed < consumed + window; });
      if (stop || claimed >= n) return;
      const size_t i = claimed++;
      lock.unlock();
      R r = produce(i);
      lock.lock();
      done[i].emplace(std::move(r));
      consumer_cv.notify_one();
    }
  };
  std::vector<std::thread> workers;
  const size_t want = std::min(n, static_cast<size_t>(std::max(1, threads)));
  for (size_t t = 0; t < want; ++t) {
    try {
      workers.emplace_back(work);
    } catch (const std::exception&) {
      break;  // fewer workers (at least the calling thread below)
    }
  }
  auto finish = [&] {
    {
      std::lock_guard<std::mutex> lock(mu);
      stop = true;
    }
    worker_cv.notify_all();
    for (std::thread& w : workers) w.join();
  };
  Status st;
  try {
    for (size_t i = 0; i < n; ++i) {
      std::unique_lock<std::mutex> lock(mu);
      if (workers.empty() && !done[i]) {
        // No worker thread: produce here, in order.
        ++claimed;
        lock.unlock();
        R r = produce(i);
        lock.lock();
        done[i].emplace(std::move(r));
      }
      consumer_cv.wait(lock, [&] { return done[i].has_value(); });
      R r = std::move(*done[i]);
      done[i].reset();
      ++consumed;
      worker_cv.notify_all();
      lock.unlock();
      st = consume(i, r);
      if (!st.ok()) break;
    }
  } catch (...) {
    finish();  // a consume that throws (say std::bad_alloc) still stops and joins the workers first
    throw;
  }
  finish();
  return st;
}

}  // namespace lathe
