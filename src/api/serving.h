// ServingRuntime: the machinery behind deployments that is not a single request — loading a deployment's
// configuration into live predictors (reusing the ones already loaded), the shadow worker, the prediction log
// writer, and the rollback monitor that takes traffic away from a failing canary.
//
//   - Build(): every route and the shadow of a DeploymentRecord's config are resolved and loaded; a version
//     already serving in `previous` is reused (same predictor, same live stats), so a weight change costs
//     nothing and its stats continue. Any version that cannot load fails the whole Build with
//     kFailedPrecondition naming it: the caller keeps the old deployment serving.
//   - Shadow: OfferShadow() queues a copy of a request for the shadow version; one worker thread predicts it,
//     records its stats and logs it. The queue is bounded (kShadowQueue); when full the copy is dropped and
//     counted. Nothing of the shadow reaches the caller's response or its latency.
//   - Rollback monitor: once a second, every deployment with a rollback policy has each canary route (index
//     > 0, weight > 0) judged over the policy's window; one over its error-rate or p99 limit (with at least
//     min_requests requests) is set to weight 0, persisted, swapped in atomically, and recorded as a
//     "rollback" event.
//   - Mutations of a deployment (API changes and rollbacks) are serialized by mutation_mutex().
//
// Thread safety: every method may be called from any thread. Stop() joins the threads and writes out the
// prediction log; it is idempotent.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "common/json.h"
#include "common/status.h"
#include "serving/deployment_registry.h"
#include "serving/prediction_log.h"
#include "serving/request_body.h"
#include "store/store.h"

namespace lathe {

class App;

class ServingRuntime {
 public:
  static constexpr size_t kShadowQueue = 1024;

  explicit ServingRuntime(App& app);
  ~ServingRuntime();
  ServingRuntime(const ServingRuntime&) = delete;
  ServingRuntime& operator=(const ServingRuntime&) = delete;

  void Start();
  void Stop();

  Result<std::shared_ptr<const LoadedDeployment>> Build(const DeploymentRecord& record,
                                                        const LoadedDeployment* previous);

  PredictionLog& log() { return *log_; }
  void OfferShadow(std::shared_ptr<const LoadedDeployment> d, RequestInstances instances, std::string request_id);
  uint64_t shadow_dropped() const { return shadow_dropped_.load(); }

  // One pass of the rollback monitor at time now_us (the monitor thread calls it every second).
  void CheckRollbacks(int64_t now_us);

  std::mutex& mutation_mutex() { return mutate_mu_; }

 private:
  struct ShadowTask {
    std::shared_ptr<const LoadedDeployment> deployment;
    RequestInstances instances;
    std::string request_id;
  };
  void ShadowLoop();
  void MonitorLoop();
  void RunShadow(ShadowTask& task);

  App& app_;
  std::unique_ptr<PredictionLog> log_;
  std::mutex mutate_mu_;

  std::mutex mu_;
  std::condition_variable wake_;
  std::deque<ShadowTask> shadow_queue_;  // guarded by mu_
  bool stop_ = false;                    // guarded by mu_
  bool started_ = false;                 // guarded by mu_
  std::atomic<uint64_t> shadow_dropped_{0};
  std::thread shadow_thread_, monitor_thread_;
};

// The label text of a class label, as the model's pipeline keys it (strings as-is, anything else as JSON).
std::string LabelText(const Json& label);

}  // namespace lathe
