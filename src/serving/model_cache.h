// ModelCache: the loaded model versions of this process under a memory budget.
//
// Each model version has one ModelSlot, shared by every deployment route that serves it. A request Acquire()s
// the slot's Predictor — a shared_ptr it holds for the length of the prediction — which loads the model on a
// miss (lazy load; concurrent misses of one slot wait for one load). After a load, while the estimated bytes
// of all loaded models exceed the budget, the least recently used slot that no request is using (its
// Predictor has no other owner) is unloaded: its Predictor is destroyed and glibc is asked to return free
// memory to the system (ReleaseFreeMemory), so the process's RSS goes down. A slot in use is never unloaded; a
// budget smaller than the models in use is exceeded rather than failing requests. A slot dies with the last
// deployment that refers to it, and its bytes leave the account.
//
// Memory per model is Predictor::MemoryBytes(), an estimate (tree arrays, XGBoost's booster, vocabularies).
// Thread safety: every method is thread-safe; the hot path (Acquire on a loaded slot) takes only the slot's
// mutex briefly.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "common/json.h"
#include "common/status.h"
#include "ml/predictor.h"

namespace lathe {

class ModelSlot;

class ModelCache {
 public:
  using Loader = std::function<Result<std::shared_ptr<ml::Predictor>>()>;

  explicit ModelCache(int64_t budget_bytes);  // 0 = no budget
  ~ModelCache();
  ModelCache(const ModelCache&) = delete;
  ModelCache& operator=(const ModelCache&) = delete;

  // The slot for `key` (e.g. "project/model/3"): the existing one while any holder keeps it, else a new,
  // unloaded one that loads with `loader`.
  std::shared_ptr<ModelSlot> Slot(const std::string& key, Loader loader);

  // {"budget_bytes","loaded_bytes","loaded","slots","loads","unloads","hits","misses"}
  Json ToJson() const;

  struct Shared;  // state shared with the slots (which may outlive the cache object)

 private:
  std::shared_ptr<Shared> shared_;
};

class ModelSlot {
 public:
  ~ModelSlot();
  ModelSlot(const ModelSlot&) = delete;
  ModelSlot& operator=(const ModelSlot&) = delete;

  // The loaded Predictor, loading it first if need be (errors: the loader's).
  Result<std::shared_ptr<ml::Predictor>> Acquire();
  bool loaded() const;
  const std::string& key() const { return key_; }

 private:
  friend class ModelCache;
  ModelSlot(std::shared_ptr<ModelCache::Shared> shared, std::string key, ModelCache::Loader loader)
      : shared_(std::move(shared)), key_(std::move(key)), loader_(std::move(loader)) {}
  // Unloads when no request holds the Predictor; returns the bytes freed (0 if in use or not loaded).
  int64_t TryUnload();

  std::shared_ptr<ModelCache::Shared> shared_;
  const std::string key_;
  const ModelCache::Loader loader_;
  mutable std::mutex mu_;                  // guards predictor_ and bytes_
  std::mutex load_mu_;                     // one load at a time per slot
  std::shared_ptr<ml::Predictor> predictor_;
  int64_t bytes_ = 0;
  std::atomic<int64_t> last_used_{0};      // steady-clock ns of the last Acquire
};

}  // namespace lathe
