// AdmissionGate: per-deployment backpressure. At most `max_concurrency` predictions of a deployment run at
// once; up to `max_queue` more wait for a slot (in arrival order as far as the condition variable allows),
// each until its deadline. A request that finds the queue full is refused at once (the API answers 429 with
// Retry-After), one whose deadline passes while it waits is refused too (503 with Retry-After): the backlog
// is bounded, never unbounded. max_concurrency 0 means no limit (the gate only counts).
//
// One gate lives as long as its deployment, shared by its successive configurations (limits are passed per
// call, so a PATCH changes them at once). Thread-safe.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>

#include "common/json.h"

namespace lathe {

class AdmissionGate {
 public:
  enum class Outcome { kAdmitted, kQueueFull, kTimedOut };
  using Clock = std::chrono::steady_clock;

  // With kAdmitted the caller must call Leave() when its prediction is done (use AdmissionGate::Ticket).
  Outcome Enter(int max_concurrency, int max_queue, Clock::time_point deadline);
  void Leave();

  // {"running","waiting","admitted","rejected_queue_full","rejected_deadline"}
  Json ToJson() const;

  // Leaves the gate on destruction when admitted.
  class Ticket {
   public:
    explicit Ticket(AdmissionGate* gate) : gate_(gate) {}
    ~Ticket() {
      if (gate_ != nullptr) gate_->Leave();
    }
    Ticket(const Ticket&) = delete;
    Ticket& operator=(const Ticket&) = delete;

   private:
    AdmissionGate* gate_;
  };

 private:
  mutable std::mutex mu_;
  std::condition_variable freed_;
  int running_ = 0, waiting_ = 0;                                    // guarded by mu_
  uint64_t admitted_ = 0, rejected_full_ = 0, rejected_deadline_ = 0;  // guarded by mu_
};

}  // namespace lathe
