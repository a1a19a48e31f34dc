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

const ServingVersion& LoadedDeployment::Pick(std::string_view key, double uniform) const {
  double total = 0;
  for (const auto& r : routes) total += r.weight;
  if (routes.size() == 1 || total <= 0) return routes.front();
  double u = uniform;
  if (!key.empty()) {
    // FNV-1a, then the top 53 bits as a fraction: stable across processes and restarts.
    uint64_t h = 1469598103934665603ull;
    for (unsigned char c : key) h = (h ^ c) * 1099511628211ull;
    h ^= h >> 29;
    h *= 0xbf58476d1ce4e5b9ull;
    h ^= h >> 32;
    u = static_cast<double>(h >> 11) * 0x1.0p-53;
  }
  double point = u * total, seen = 0;
  for (const auto& r : routes) {
    seen += r.weight;
    if (r.weight > 0 && point < seen) return r;
  }
  for (auto it = routes.rbegin(); it != routes.rend(); ++it) {
    if (it->weight > 0) return *it;
  }
  return routes.front();
}

std::vector<std::shared_ptr<const LoadedDeployment>> DeploymentRegistry::All() const {
  std::shared_lock lock(mu_);
  std::vector<std::shared_ptr<const LoadedDeployment>> out;
  out.reserve(live_.size());
  for (const auto& [key, d] : live_) out.push_back(d);
  return out;
}

size_t DeploymentRegistry::size() const {
  std::shared_lock lock(mu_);
  return live_.size();
}

bool RateBudget::TryTake(int64_t now_us, int64_t per_second) {
  if (per_second <= 0) return true;
  const int64_t second = now_us / 1000000;
  int64_t seen = second_.load(std::memory_order_relaxed);
  if (seen != second && second_.compare_exchange_strong(seen, second, std::memory_order_relaxed)) {
    used_.store(0, std::memory_order_relaxed);
  }
  if (used_.fetch_add(1, std::memory_order_relaxed) < per_second) return true;
  refused_.fetch_add(1, std::memory_order_relaxed);
  return false;
}

}  // namespace lathe
