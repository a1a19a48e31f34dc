// MicroBatcher: gathers the rows of concurrent requests to one model version into one evaluation.
//
// Requests Submit() their encoded rows and a callback and return at once (the HTTP layer defers their
// responses, so no I/O thread waits). One worker thread takes the oldest request, waits until `max_batch_rows`
// rows are queued or `max_delay_us` has passed since that request arrived, evaluates everything it took in
// one PredictRows call (a request larger than max_batch_rows alone), and calls each request's callback with
// its slice of the outputs, in arrival order. Batching trades up to max_delay_us of latency for fewer, larger
// evaluations: with lathe's compiled evaluator the per-row cost barely changes with batch size, so it pays
// off mainly for models whose per-call overhead dominates; it is off unless a deployment turns it on.
//
// Shutdown: the destructor finishes every queued request before the worker exits; it may run on the worker
// itself (a callback dropping the last reference), in which case the worker is detached and finishes alone.
// Thread-safe.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "common/json.h"
#include "ml/predictor.h"
#include "serving/deployment_config.h"

namespace lathe {

class MicroBatcher {
 public:
  // `outputs` holds n * predictor.OutputWidth() floats, valid during the call.
  using Done = std::function<void(const float* outputs)>;

  MicroBatcher(std::shared_ptr<const ml::Predictor> predictor, BatchingOptions options);
  ~MicroBatcher();
  MicroBatcher(const MicroBatcher&) = delete;
  MicroBatcher& operator=(const MicroBatcher&) = delete;

  void Submit(std::vector<float> rows, size_t n, Done done);
  const BatchingOptions& options() const { return state_->options; }
  // {"max_batch_rows","max_delay_us","batches","requests","rows","mean_batch_rows"}
  Json ToJson() const;

 private:
  struct Item {
    std::vector<float> rows;
    size_t n = 0;
    Done done;
    std::chrono::steady_clock::time_point arrived;
  };
  struct State {
    std::shared_ptr<const ml::Predictor> predictor;
    BatchingOptions options;
    std::mutex mu;
    std::condition_variable wake;
    std::deque<Item> queue;  // guarded by mu
    size_t queued_rows = 0;  // guarded by mu
    bool stop = false;       // guarded by mu
    uint64_t batches = 0, requests = 0, rows = 0;  // guarded by mu
  };
  static void Run(std::shared_ptr<State> state);

  std::shared_ptr<State> state_;
  std::thread worker_;
};

}  // namespace lathe
