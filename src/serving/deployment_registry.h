// DeploymentRegistry: the live deployments of this process, each bound to a loaded model version.
// Lookups take a shared lock only long enough to copy a shared_ptr; prediction runs with no lock held.
// Replacing a deployment's model is an atomic pointer swap: requests already running keep the old
// model alive through their shared_ptr and finish on it (the old version drains). Thread-safe.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <shared_mutex>
#include <string>
#include <utility>

#include "ml/predictor.h"

namespace lathe {

struct LoadedDeployment {
  std::string project;
  std::string name;
  std::string model;
  int64_t version = 0;
  std::shared_ptr<ml::Predictor> predictor;
};

class DeploymentRegistry {
 public:
  std::shared_ptr<const LoadedDeployment> Get(const std::string& project, const std::string& name) const;
  void Put(std::shared_ptr<const LoadedDeployment> d);
  void Remove(const std::string& project, const std::string& name);
  size_t size() const;

 private:
  mutable std::shared_mutex mu_;
  std::map<std::pair<std::string, std::string>, std::shared_ptr<const LoadedDeployment>> live_;  // guarded by mu_
};

}  // namespace lathe
