#include "jobs/job_runner.h"

#include <chrono>

#include "common/clock.h"
#include "common/ids.h"
#include "common/log.h"
#include "common/memory.h"

namespace lathe {

namespace {
constexpr int64_t kProgressWriteIntervalUs = 200000;
constexpr int64_t kCancelCheckIntervalUs = 200000;
constexpr int kIdlePollMs = 500;  // picks up jobs queued by other nodes
}  // namespace

void JobContext::Progress(double fraction, const std::string& message) {
  int64_t now = MonotonicMicros();
  if (fraction < 1.0 && now - last_progress_write_us_ < kProgressWriteIntervalUs) return;
  last_progress_write_us_ = now;
  if (fraction < 0) fraction = 0;
  if (fraction > 1) fraction = 1;
  Status st = store_->UpdateJobProgress(job_.id, fraction, message);
  if (!st.ok()) LogWarn("job progress not recorded", {{"job", job_.id}, {"error", st.ToString()}});
}

void JobContext::Log(const std::string& line) {
  Status st = store_->AppendJobLog(job_.id, line, NowMicros());
  if (!st.ok()) LogWarn("job log line not recorded", {{"job", job_.id}, {"error", st.ToString()}});
}

bool JobContext::Cancelled() {
  if (cancelled_ || stopping_->load()) return true;
  int64_t now = MonotonicMicros();
  if (now - last_cancel_check_us_ < kCancelCheckIntervalUs) return false;
  last_cancel_check_us_ = now;
  auto job = store_->GetJob(job_.id);
  if (job.ok() && job->cancel_requested) cancelled_ = true;
  return cancelled_;
}

void JobRunner::Register(const std::string& kind, JobKind spec) { kinds_[kind] = std::move(spec); }

Status JobRunner::Start() {
  ASSIGN_OR_RETURN(int64_t orphans,
                   store_->FailRunningJobs("interrupted: lathe stopped while this job was running; submit it again",
                                           NowMicros()));
  if (orphans > 0) LogWarn("failed jobs left running by a previous process", {{"count", orphans}});
  RETURN_IF_ERROR(store_->SyncRunStatesFromJobs());
  for (int i = 0; i < workers_; ++i) threads_.emplace_back([this] { WorkerLoop(); });
  return Status::Ok();
}

void JobRunner::Stop() {
  if (stopping_.exchange(true)) {
    // Already stopping; still join if called again from the destructor.
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    wake_ = true;
  }
  cv_.notify_all();
  for (auto& t : threads_) {
    if (t.joinable()) t.join();
  }
  threads_.clear();
}

Result<JobRecord> JobRunner::Submit(const std::string& kind, const std::string& project, const Json& payload,
                                    const std::string& created_by, const std::string& id) {
  if (kinds_.find(kind) == kinds_.end()) return Status::InvalidArgument("unknown job kind '" + kind + "'");
  if (stopping_.load()) return Status::Unavailable("lathe is shutting down; not accepting new jobs");
  if (admission_) RETURN_IF_ERROR(admission_(kind, project));
  JobRecord job{.id = id.empty() ? NewId("job") : id, .kind = kind, .project = project, .state = JobState::kQueued,
                .payload = payload, .created_by = created_by, .created_at = NowMicros()};
  RETURN_IF_ERROR(store_->CreateJob(job));
  {
    std::lock_guard<std::mutex> lock(mu_);
    wake_ = true;
  }
  cv_.notify_one();
  return job;
}

Result<JobRecord> JobRunner::Cancel(const std::string& id) {
  ASSIGN_OR_RETURN(JobRecord job, store_->RequestJobCancel(id, NowMicros()));
  if (job.state == JobState::kCancelled) {
    auto it = kinds_.find(job.kind);
    if (it != kinds_.end() && it->second.on_finished) it->second.on_finished(job);
  }
  return job;
}

void JobRunner::WorkerLoop() {
  while (!stopping_.load()) {
    auto next = store_->ClaimNextJob(NowMicros());
    if (!next.ok()) {
      LogError("claiming a job failed", {{"error", next.status().ToString()}});
    } else if (next->has_value()) {
      RunOne(std::move(**next));
      continue;
    }
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait_for(lock, std::chrono::milliseconds(kIdlePollMs), [this] { return wake_ || stopping_.load(); });
    wake_ = false;
  }
}

void JobRunner::RunOne(JobRecord job) {
  running_++;
  auto it = kinds_.find(job.kind);
  JobState state = JobState::kFailed;
  Json result = Json::object();
  std::string error;
  int64_t started = MonotonicMicros();
  LogInfo("job started", {{"job", job.id}, {"kind", job.kind}, {"project", job.project}});
  if (it == kinds_.end()) {
    error = "no handler for job kind '" + job.kind + "'";
  } else {
    JobContext ctx(store_, job, &stopping_);
    Result<Json> r = Status::Internal("job handler did not run");
    try {
      r = it->second.handler(ctx);
    } catch (const std::exception& e) {
      r = Status::Internal(std::string("job handler threw: ") + e.what());
    }
    if (r.ok()) {
      state = JobState::kSucceeded;
      result = std::move(r).value();
    } else if (r.status().code() == StatusCode::kCancelled) {
      state = JobState::kCancelled;
      error = stopping_.load() ? "interrupted by shutdown" : "cancelled";
    } else {
      error = r.status().message();
      result = {{"error", StatusToJson(r.status())}};
    }
  }
  Status st = store_->FinishJob(job.id, state, result, error, NowMicros());
  if (!st.ok()) LogWarn("job finish not recorded", {{"job", job.id}, {"error", st.ToString()}});
  {
    std::lock_guard<std::mutex> lock(finished_mu_);
    ++finished_count_;
  }
  finished_cv_.notify_all();
  const int64_t elapsed_us = MonotonicMicros() - started;
  LogInfo("job finished", {{"job", job.id}, {"kind", job.kind}, {"state", JobStateName(state)},
                           {"duration_ms", elapsed_us / 1000}, {"error", error}});
  if (ran_observer_) ran_observer_(job, static_cast<double>(elapsed_us) / 1e6);
  if (it != kinds_.end() && it->second.on_finished) {
    auto fresh = store_->GetJob(job.id);
    if (fresh.ok()) it->second.on_finished(*fresh);
  }
  // The allocator keeps freed memory for reuse while work runs (TuneAllocator); an idle runner gives it back.
  if (--running_ == 0) ReleaseFreeMemory();
}

Result<JobRecord> JobRunner::Wait(const std::string& id, int64_t timeout_ms) {
  const int64_t deadline = MonotonicMicros() + timeout_ms * 1000;
  for (;;) {
    uint64_t seen;
    {
      std::lock_guard<std::mutex> lock(finished_mu_);
      seen = finished_count_;
    }
    ASSIGN_OR_RETURN(JobRecord job, store_->GetJob(id));
    if (IsTerminal(job.state)) return job;
    const int64_t left_us = deadline - MonotonicMicros();
    if (left_us <= 0) return job;
    std::unique_lock<std::mutex> lock(finished_mu_);
    // Another process (or node) may finish the job: poll at least every 250 ms.
    finished_cv_.wait_for(lock, std::chrono::microseconds(std::min<int64_t>(left_us, 250000)),
                          [&] { return finished_count_ != seen; });
  }
}

}  // namespace lathe
