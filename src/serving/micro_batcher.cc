#include "serving/micro_batcher.h"

#include <algorithm>

namespace lathe {

MicroBatcher::MicroBatcher(std::shared_ptr<const ml::Predictor> predictor, BatchingOptions options)
    : state_(std::make_shared<State>()) {
  state_->predictor = std::move(predictor);
  state_->options = options;
  state_->options.max_batch_rows = std::max<size_t>(1, options.max_batch_rows);
  state_->options.max_delay_us = std::max<int64_t>(0, options.max_delay_us);
  worker_ = std::thread(Run, state_);
}

MicroBatcher::~MicroBatcher() {
  {
    std::lock_guard lock(state_->mu);
    state_->stop = true;
  }
  state_->wake.notify_all();
  if (worker_.get_id() == std::this_thread::get_id()) {
    worker_.detach();  // the worker holds its own reference to the state and drains the queue before exiting
  } else {
    worker_.join();
  }
}

void MicroBatcher::Submit(std::vector<float> rows, size_t n, Done done) {
  bool wake = false;
  {
    std::lock_guard lock(state_->mu);
    state_->queued_rows += n;
    state_->queue.push_back(Item{std::move(rows), n, std::move(done), std::chrono::steady_clock::now()});
    wake = state_->queue.size() == 1 || state_->queued_rows >= state_->options.max_batch_rows;
  }
  if (wake) state_->wake.notify_one();
}

Json MicroBatcher::ToJson() const {
  std::lock_guard lock(state_->mu);
  return {{"max_batch_rows", state_->options.max_batch_rows},
          {"max_delay_us", state_->options.max_delay_us},
          {"batches", state_->batches},
          {"requests", state_->requests},
          {"rows", state_->rows},
          {"mean_batch_rows",
           state_->batches == 0 ? 0.0 : static_cast<double>(state_->rows) / static_cast<double>(state_->batches)}};
}

void MicroBatcher::Run(std::shared_ptr<State> state) {
  const ml::Predictor& predictor = *state->predictor;
  const size_t width = predictor.NumFeatures(), out_width = predictor.OutputWidth();
  std::vector<Item> batch;
  std::vector<float> rows, outputs;
  std::unique_lock lock(state->mu);
  for (;;) {
    state->wake.wait(lock, [&] { return state->stop || !state->queue.empty(); });
    if (state->queue.empty()) return;  // stopping, nothing left
    // Wait for a full batch or for the oldest request's delay to run out (at once when stopping).
    const auto deadline = state->queue.front().arrived + std::chrono::microseconds(state->options.max_delay_us);
    state->wake.wait_until(lock, deadline, [&] {
      return state->stop || state->queued_rows >= state->options.max_batch_rows;
    });
    size_t taken = 0;
    batch.clear();
    while (!state->queue.empty() &&
           (batch.empty() || taken + state->queue.front().n <= state->options.max_batch_rows)) {
      taken += state->queue.front().n;
      batch.push_back(std::move(state->queue.front()));
      state->queue.pop_front();
    }
    state->queued_rows -= taken;
    ++state->batches;
    state->requests += batch.size();
    state->rows += taken;
    lock.unlock();

    const float* input = batch.front().rows.data();
    if (batch.size() > 1) {
      rows.clear();
      for (const Item& item : batch) rows.insert(rows.end(), item.rows.begin(), item.rows.begin() + item.n * width);
      input = rows.data();
    }
    outputs.resize(taken * out_width);
    predictor.PredictRows(input, taken, outputs.data());
    size_t offset = 0;
    for (Item& item : batch) {
      item.done(outputs.data() + offset * out_width);
      offset += item.n;
    }
    batch.clear();  // callbacks' captures go now, on this thread (possibly the last owner of this batcher)
    lock.lock();
  }
}

}  // namespace lathe
