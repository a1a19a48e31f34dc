#include "serving/deployment_registry.h"

#include <mutex>

namespace lathe {

std::shared_ptr<const LoadedDeployment> DeploymentRegistry::Get(const std::string& project,
                                                                const std::string& name) const {
  std::shared_lock lock(mu_);
  auto it = live_.find({project, name});
  return it == live_.end() ? nullptr : it->second;
}

void DeploymentRegistry::Put(std::shared_ptr<const LoadedDeployment> d) {
  auto key = std::make_pair(d->project, d->name);
  std::shared_ptr<const LoadedDeployment> old;
  {
    std::unique_lock lock(mu_);
    old = std::exchange(live_[key], std::move(d));
  }
  // `old` is released here, outside the lock; in-flight requests may still hold it.
}

void DeploymentRegistry::Remove(const std::string& project, const std::string& name) {
  std::shared_ptr<const LoadedDeployment> old;
  std::unique_lock lock(mu_);
  auto it = live_.find({project, name});
  if (it != live_.end()) {
    old = std::move(it->second);
    live_.erase(it);
  }
}

size_t DeploymentRegistry::size() const {
  std::shared_lock lock(mu_);
  return live_.size();
}

}  // namespace lathe
