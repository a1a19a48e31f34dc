// JobRunner: durable background jobs. Jobs are rows in the Store (so they survive restarts and are visible
// to every node); a pool of worker threads claims queued jobs, runs the handler registered for the job's
// kind, and records progress, log lines and the terminal state.
//
// Cancellation is cooperative: a handler calls ctx.Cancelled() between steps (e.g. per boosting round).
// Shutdown (Stop) also makes Cancelled() true: running handlers finish their current step and their jobs
// end `cancelled` with "interrupted by shutdown". At start, jobs left `running` by a process that died
// are failed with a clear error.
// Thread-safe.
#pragma once

#include <atomic>
#include <condition_variable>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "common/json.h"
#include "common/status.h"
#include "store/store.h"

namespace lathe {

class JobContext {
 public:
  JobContext(Store* store, const JobRecord& job, const std::atomic<bool>* stopping)
      : store_(store), job_(job), stopping_(stopping) {}
  const JobRecord& job() const { return job_; }
  const Json& payload() const { return job_.payload; }
  // Records progress (0..1) and a short message; writes are rate-limited to keep the store quiet.
  void Progress(double fraction, const std::string& message);
  void Log(const std::string& line);
  // True once the job was cancelled by a user or the process is shutting down.
  bool Cancelled();
  bool ShuttingDown() const { return stopping_->load(); }

 private:
  Store* store_;
  JobRecord job_;
  const std::atomic<bool>* stopping_;
  int64_t last_progress_write_us_ = 0;
  int64_t last_cancel_check_us_ = 0;
  bool cancelled_ = false;
};

// Returns the job's result on success. A kCancelled status marks the job cancelled; any other error fails it.
using JobHandler = std::function<Result<Json>(JobContext&)>;
// Called after a job reaches its terminal state (e.g. to mirror it into a run record).
using JobFinishedFn = std::function<void(const JobRecord& job)>;

struct JobKind {
  JobHandler handler;
  JobFinishedFn on_finished;
};

class JobRunner {
 public:
  JobRunner(Store* store, int workers) : store_(store), workers_(workers < 1 ? 1 : workers) {}
  ~JobRunner() { Stop(); }

  void Register(const std::string& kind, JobKind spec);
  // Fails jobs orphaned by a previous process, then starts the workers.
  Status Start();
  // Stops claiming, signals running handlers, waits for them to return.
  void Stop();

  // Checked by Submit before a job is queued (quotas); its error is Submit's. Set before Start.
  void SetAdmission(std::function<Status(const std::string& kind, const std::string& project)> check) {
    admission_ = std::move(check);
  }
  // Told about every job that ran, with its wall-clock seconds (metering). Set before Start.
  void SetRanObserver(std::function<void(const JobRecord& job, double seconds)> observer) {
    ran_observer_ = std::move(observer);
  }
  Result<JobRecord> Submit(const std::string& kind, const std::string& project, const Json& payload,
                           const std::string& created_by, const std::string& id = "");
  Result<JobRecord> Cancel(const std::string& id);
  // Blocks until job `id` is terminal or `timeout_ms` passes; returns its latest record either way.
  // A failed job's result holds {"error": StatusToJson(status)} so callers can rebuild the structured error.
  Result<JobRecord> Wait(const std::string& id, int64_t timeout_ms);
  int running() const { return running_.load(); }

 private:
  std::function<Status(const std::string&, const std::string&)> admission_;
  std::function<void(const JobRecord&, double)> ran_observer_;
  void WorkerLoop();
  void RunOne(JobRecord job);

  Store* store_;
  int workers_;
  std::map<std::string, JobKind> kinds_;  // written before Start only
  std::vector<std::thread> threads_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool wake_ = false;  // guarded by mu_
  std::atomic<bool> stopping_{false};
  std::atomic<int> running_{0};
  std::mutex finished_mu_;
  std::condition_variable finished_cv_;
  uint64_t finished_count_ = 0;  // guarded by finished_mu_; bumps on every finished job
};

}  // namespace lathe
