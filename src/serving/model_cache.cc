#include "serving/model_cache.h"

#include <algorithm>
#include <chrono>
#include <vector>

#include "common/memory.h"

namespace lathe {

struct ModelCache::Shared {
  explicit Shared(int64_t budget) : budget_bytes(budget) {}

  // Unloads least recently used idle slots (never `keep`) until the loaded bytes fit the budget.
  void Enforce(const ModelSlot* keep);

  const int64_t budget_bytes;
  mutable std::mutex mu;
  int64_t loaded_bytes = 0;                            // guarded by mu
  std::map<std::string, std::weak_ptr<ModelSlot>> slots;  // guarded by mu
  std::atomic<uint64_t> loads{0}, unloads{0}, hits{0}, misses{0};
};

namespace {
int64_t NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}
}  // namespace

ModelCache::ModelCache(int64_t budget_bytes) : shared_(std::make_shared<Shared>(std::max<int64_t>(0, budget_bytes))) {}

ModelCache::~ModelCache() = default;

std::shared_ptr<ModelSlot> ModelCache::Slot(const std::string& key, Loader loader) {
  std::lock_guard lock(shared_->mu);
  std::weak_ptr<ModelSlot>& entry = shared_->slots[key];
  if (auto existing = entry.lock()) return existing;
  std::shared_ptr<ModelSlot> slot(new ModelSlot(shared_, key, std::move(loader)));
  entry = slot;
  return slot;
}

Json ModelCache::ToJson() const {
  std::lock_guard lock(shared_->mu);
  size_t loaded = 0, live = 0;
  for (const auto& [key, weak] : shared_->slots) {
    if (auto s = weak.lock()) {
      ++live;
      loaded += s->loaded() ? 1 : 0;
    }
  }
  return {{"budget_bytes", shared_->budget_bytes}, {"loaded_bytes", shared_->loaded_bytes},
          {"loaded", loaded},                      {"slots", live},
          {"loads", shared_->loads.load()},        {"unloads", shared_->unloads.load()},
          {"hits", shared_->hits.load()},          {"misses", shared_->misses.load()}};
}

void ModelCache::Shared::Enforce(const ModelSlot* keep) {
  bool unloaded = false;
  for (;;) {
    std::vector<std::shared_ptr<ModelSlot>> candidates;
    {
      std::lock_guard lock(mu);
      if (budget_bytes == 0 || loaded_bytes <= budget_bytes) break;
      for (const auto& [key, weak] : slots) {
        auto s = weak.lock();
        if (s && s.get() != keep && s->loaded()) candidates.push_back(std::move(s));
      }
    }
    std::sort(candidates.begin(), candidates.end(), [](const auto& a, const auto& b) {
      return a->last_used_.load(std::memory_order_relaxed) < b->last_used_.load(std::memory_order_relaxed);
    });
    int64_t freed = 0;
    for (const auto& s : candidates) {
      if ((freed = s->TryUnload()) > 0) break;
    }
    if (freed == 0) break;  // everything else is in use: the budget is exceeded rather than failing requests
    unloaded = true;
    unloads.fetch_add(1, std::memory_order_relaxed);
    std::lock_guard lock(mu);
    loaded_bytes -= freed;
  }  // `candidates` die here, outside mu (a slot's destructor takes it)
  if (unloaded) ReleaseFreeMemory();  // hand the freed memory back to the system
}

ModelSlot::~ModelSlot() {
  std::lock_guard lock(shared_->mu);
  if (predictor_ != nullptr) shared_->loaded_bytes -= bytes_;
  auto it = shared_->slots.find(key_);
  if (it != shared_->slots.end() && it->second.expired()) shared_->slots.erase(it);
}

bool ModelSlot::loaded() const {
  std::lock_guard lock(mu_);
  return predictor_ != nullptr;
}

Result<std::shared_ptr<ml::Predictor>> ModelSlot::Acquire() {
  {
    std::lock_guard lock(mu_);
    if (predictor_ != nullptr) {
      last_used_.store(NowNs(), std::memory_order_relaxed);
      shared_->hits.fetch_add(1, std::memory_order_relaxed);
      return predictor_;
    }
  }
  std::lock_guard load_lock(load_mu_);
  {
    std::lock_guard lock(mu_);
    if (predictor_ != nullptr) {  // another request loaded it while this one waited
      last_used_.store(NowNs(), std::memory_order_relaxed);
      shared_->hits.fetch_add(1, std::memory_order_relaxed);
      return predictor_;
    }
  }
  shared_->misses.fetch_add(1, std::memory_order_relaxed);
  ASSIGN_OR_RETURN(std::shared_ptr<ml::Predictor> p, loader_());
  const auto bytes = static_cast<int64_t>(p->MemoryBytes());
  {
    std::lock_guard lock(mu_);
    predictor_ = p;
    bytes_ = bytes;
    last_used_.store(NowNs(), std::memory_order_relaxed);
  }
  shared_->loads.fetch_add(1, std::memory_order_relaxed);
  {
    std::lock_guard lock(shared_->mu);
    shared_->loaded_bytes += bytes;
  }
  shared_->Enforce(this);
  return p;
}

int64_t ModelSlot::TryUnload() {
  std::shared_ptr<ml::Predictor> victim;
  int64_t bytes = 0;
  {
    std::lock_guard lock(mu_);
    if (predictor_ == nullptr || predictor_.use_count() != 1) return 0;  // not loaded, or in use
    victim = std::move(predictor_);
    bytes = bytes_;
    bytes_ = 0;
  }
  victim.reset();  // the model's memory goes here, outside the lock
  return bytes;
}

}  // namespace lathe
