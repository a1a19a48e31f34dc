// PredictionLog: the asynchronous, bounded buffer between serving and the prediction log in the store.
// A request hands over its entry with Offer() — a move into a queue under a mutex, never I/O — and one
// writer thread drains the queue in batches to the sink (the store), every flush interval or when a batch
// fills. When the queue is full — `capacity` entries or `max_bytes` of inputs (a few 1,000-row requests weigh
// more than thousands of single rows) — the entry is dropped and counted: a slow disk never slows predictions.
//
// Guarantees: entries reach the sink in the order they were offered; Flush() returns once everything offered
// before it has been handed to the sink; the destructor writes what is still queued. A failing sink is
// logged and its batch counted as dropped (the writer keeps going). Thread-safe.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "common/json.h"
#include "common/status.h"
#include "serving/request_body.h"

namespace lathe {

struct PredictionLogEntry {
  std::string project;
  std::string deployment;
  std::string request_id;
  std::string model;
  int64_t version = 0;
  bool shadow = false;
  int64_t created_at = 0;  // µs since the epoch
  double latency_ms = 0;
  RequestInstances inputs;  // the instances as received (parsed by the writer when they are still a raw body)
  std::string outputs;  // JSON text: the array of predictions as returned
};

class PredictionLog {
 public:
  using Sink = std::function<Status(std::vector<PredictionLogEntry>& batch)>;

  explicit PredictionLog(Sink sink, size_t capacity = 20000, int flush_interval_ms = 200, size_t max_batch = 2000,
                         size_t max_bytes = 64 << 20);
  ~PredictionLog();
  PredictionLog(const PredictionLog&) = delete;
  PredictionLog& operator=(const PredictionLog&) = delete;

  // False when the buffer is full (the entry is dropped and counted).
  bool Offer(PredictionLogEntry entry);
  // Blocks until every entry offered before the call has been passed to the sink.
  void Flush();

  uint64_t written() const { return written_.load(); }
  uint64_t dropped() const { return dropped_.load(); }
  size_t queued() const;

 private:
  void Run();

  const Sink sink_;
  const size_t capacity_;
  const int flush_interval_ms_;
  const size_t max_batch_;
  const size_t max_bytes_;
  mutable std::mutex mu_;
  std::condition_variable wake_, done_;
  std::deque<PredictionLogEntry> queue_;  // guarded by mu_
  size_t queued_bytes_ = 0;               // guarded by mu_: ApproxBytes of the queued inputs
  uint64_t offered_ = 0, handled_ = 0;    // guarded by mu_: sequence numbers for Flush
  uint64_t flush_target_ = 0;             // guarded by mu_: write at once until handled_ reaches it
  bool stop_ = false;                     // guarded by mu_
  std::atomic<uint64_t> written_{0}, dropped_{0};
  std::thread writer_;
};

}  // namespace lathe
