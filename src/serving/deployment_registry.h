// DeploymentRegistry: the live deployments of this process, each bound to a loaded model version.
// Lookups take a shared lock only long enough to copy a shared_ptr; prediction runs with no lock held.
// Replacing a deployment's model is an atomic pointer swap: requests already running keep the old
// model alive through their shared_ptr and finish on it (the old version drains). Thread-safe.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "ml/predictor.h"
#include "serving/admission.h"
#include "serving/deployment_config.h"
#include "serving/micro_batcher.h"
#include "serving/model_cache.h"
#include "serving/version_stats.h"

namespace lathe {

// One model version loaded for a deployment: a route (with its traffic weight) or the shadow.
struct ServingVersion {
  std::string model;
  int64_t version = 0;
  double weight = 0;  // routes: relative share of traffic; shadow: 0
  // The model, loaded on demand under the process's memory budget (serving/model_cache.h): Acquire() it for
  // the length of a prediction.
  std::shared_ptr<ModelSlot> model_slot;
  std::string task;                     // "binary" | "multiclass" | "regression" (known without loading)
  std::vector<std::string> label_keys;  // classification labels in class order
  std::shared_ptr<VersionStats> stats;
  std::shared_ptr<MicroBatcher> batcher;  // routes of a deployment with batching on; else null
};

// A per-second cap shared by a deployment's successive configurations (the prediction log's
// max_per_second). Lock-free; a second's count restarts when the first request of the next second arrives.
class RateBudget {
 public:
  // True when this event fits in `per_second` (0 = unlimited) for the second of now_us; counts refusals.
  bool TryTake(int64_t now_us, int64_t per_second);
  uint64_t refused() const { return refused_.load(std::memory_order_relaxed); }

 private:
  std::atomic<int64_t> second_{-1};
  std::atomic<int64_t> used_{0};
  std::atomic<uint64_t> refused_{0};
};

struct LoadedDeployment {
  std::string project;
  std::string name;
  DeploymentConfig config;             // routes' versions resolved
  std::vector<ServingVersion> routes;  // as config.routes; routes[0] is the stable version
  std::optional<ServingVersion> shadow;
  std::shared_ptr<AdmissionGate> gate;  // shared by the deployment's successive configurations
  std::shared_ptr<RateBudget> log_budget;  // likewise

  // The route that serves a request. With a non-empty `key` the choice depends only on the key and the
  // weights (sticky); otherwise `uniform` (in [0, 1)) picks in proportion to the weights. Routes of weight
  // 0 are never picked.
  const ServingVersion& Pick(std::string_view key, double uniform) const;
  const ServingVersion& stable() const { return routes.front(); }
};

class DeploymentRegistry {
 public:
  std::shared_ptr<const LoadedDeployment> Get(const std::string& project, const std::string& name) const;
  void Put(std::shared_ptr<const LoadedDeployment> d);
  void Remove(const std::string& project, const std::string& name);
  size_t size() const;
  std::vector<std::shared_ptr<const LoadedDeployment>> All() const;

 private:
  mutable std::shared_mutex mu_;
  std::map<std::pair<std::string, std::string>, std::shared_ptr<const LoadedDeployment>> live_;  // guarded by mu_
};

}  // namespace lathe
