#include "serving/admission.h"

namespace lathe {

AdmissionGate::Outcome AdmissionGate::Enter(int max_concurrency, int max_queue, Clock::time_point deadline) {
  std::unique_lock lock(mu_);
  if (max_concurrency <= 0 || running_ < max_concurrency) {
    ++running_;
    ++admitted_;
    return Outcome::kAdmitted;
  }
  if (waiting_ >= max_queue) {
    ++rejected_full_;
    return Outcome::kQueueFull;
  }
  ++waiting_;
  const bool got = freed_.wait_until(lock, deadline, [&] { return running_ < max_concurrency; });
  --waiting_;
  if (!got) {
    ++rejected_deadline_;
    return Outcome::kTimedOut;
  }
  ++running_;
  ++admitted_;
  return Outcome::kAdmitted;
}

void AdmissionGate::Leave() {
  {
    std::lock_guard lock(mu_);
    --running_;
  }
  freed_.notify_one();
}

Json AdmissionGate::ToJson() const {
  std::lock_guard lock(mu_);
  return {{"running", running_},
          {"waiting", waiting_},
          {"admitted", admitted_},
          {"rejected_queue_full", rejected_full_},
          {"rejected_deadline", rejected_deadline_}};
}

}  // namespace lathe
