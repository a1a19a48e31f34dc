#include "serving/prediction_log.h"

#include <algorithm>
#include <chrono>

#include "common/log.h"

namespace lathe {

PredictionLog::PredictionLog(Sink sink, size_t capacity, int flush_interval_ms, size_t max_batch, size_t max_bytes)
    : sink_(std::move(sink)),
      capacity_(capacity),
      flush_interval_ms_(flush_interval_ms),
      max_batch_(max_batch),
      max_bytes_(max_bytes) {
  writer_ = std::thread([this] { Run(); });
}

PredictionLog::~PredictionLog() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  wake_.notify_all();
  writer_.join();
}

bool PredictionLog::Offer(PredictionLogEntry entry) {
  bool notify = false;
  const size_t bytes = entry.inputs.ApproxBytes();
  {
    std::lock_guard lock(mu_);
    if (queue_.size() >= capacity_ || (queued_bytes_ + bytes > max_bytes_ && !queue_.empty()) || stop_) {
      dropped_.fetch_add(1, std::memory_order_relaxed);
      return false;
    }
    queued_bytes_ += bytes;
    queue_.push_back(std::move(entry));
    ++offered_;
    notify = queue_.size() >= max_batch_;
  }
  if (notify) wake_.notify_one();
  return true;
}

void PredictionLog::Flush() {
  std::unique_lock lock(mu_);
  const uint64_t target = offered_;
  if (handled_ >= target) return;
  flush_target_ = std::max(flush_target_, target);
  wake_.notify_one();
  done_.wait(lock, [&] { return handled_ >= target; });
}

size_t PredictionLog::queued() const {
  std::lock_guard lock(mu_);
  return queue_.size();
}

void PredictionLog::Run() {
  std::vector<PredictionLogEntry> batch;
  std::unique_lock lock(mu_);
  for (;;) {
    wake_.wait_for(lock, std::chrono::milliseconds(flush_interval_ms_),
                   [&] { return stop_ || queue_.size() >= max_batch_ || handled_ < flush_target_; });
    // Without a Flush() waiter or a full batch, wait out the interval so writes go in batches.
    if (queue_.empty()) {
      if (stop_) return;
      continue;
    }
    batch.clear();
    while (!queue_.empty() && batch.size() < max_batch_) {
      queued_bytes_ -= queue_.front().inputs.ApproxBytes();
      batch.push_back(std::move(queue_.front()));
      queue_.pop_front();
    }
    lock.unlock();
    const size_t n = batch.size();
    Status st = sink_(batch);
    if (st.ok()) {
      written_.fetch_add(n, std::memory_order_relaxed);
    } else {
      dropped_.fetch_add(n, std::memory_order_relaxed);
      LogError("prediction log write failed; entries dropped", {{"entries", n}, {"error", st.ToString()}});
    }
    lock.lock();
    handled_ += n;
    done_.notify_all();
  }
}

}  // namespace lathe
