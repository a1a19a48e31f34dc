// Data-parallel loops for CPU-bound work inside one job or request: a handful of tasks spread over up to
// `threads` threads (the caller's plus threads - 1 short-lived ones). Tasks are claimed in index order from
// an atomic counter, so uneven tasks balance. Not for I/O; not nested.
#pragma once

#include <cstddef>
#include <functional>

namespace lathe {

// The number of threads worth using for `work_items` units of cheap per-item work (e.g. rows): 1 below
// `min_per_thread` items per thread, else up to the machine's cores (at most `cap`).
int ThreadsFor(size_t work_items, size_t min_per_thread = 1 << 16, int cap = 8);

// Runs fn(i) for every i in [0, tasks) on up to `threads` threads and returns when all are done. fn must not
// throw (an exception terminates, as in any thread).
void ParallelFor(size_t tasks, int threads, const std::function<void(size_t)>& fn);

}  // namespace lathe
