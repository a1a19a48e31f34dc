#include "common/memory.h"

#include <malloc.h>
#include <sys/mman.h>

#include <climits>
#include <cstdint>
#include <cstring>
#include <mutex>
#include <new>
#include <utility>
#include <vector>

#include "common/clock.h"

namespace lathe {

void TuneAllocator(size_t retain_bytes) {
  // Fixed values turn off glibc's adaptive thresholds (which would lower the trim threshold again).
  ::mallopt(M_MMAP_THRESHOLD, 32 << 20);
  ::mallopt(M_TRIM_THRESHOLD, static_cast<int>(retain_bytes > INT_MAX ? INT_MAX : retain_bytes));
}

namespace {

constexpr size_t kHugePage = kLargeBufferMapBytes;

// Freed LargeBuffer mappings kept for reuse. On virtual machines a fault on a fresh page costs microseconds
// (and zeroing a huge page more), so a mapping whose pages are already in is worth keeping between the
// segments of one import and across back-to-back jobs; the bounds and the age limit keep it from becoming
// a leak.
class MapCache {
 public:
  static MapCache& Get() {
    static MapCache* cache = new MapCache();  // never destroyed: buffers may be freed during static teardown
    return *cache;
  }
  // A kept mapping of at least `bytes`, or nullptr (the smallest that fits).
  void* Take(size_t bytes, size_t* got) {
    std::vector<Kept> expired;
    void* found = nullptr;
    {
      std::lock_guard<std::mutex> lock(mu_);
      Expire(&expired);
      size_t best = kept_.size();
      for (size_t i = 0; i < kept_.size(); ++i) {
        if (kept_[i].bytes >= bytes && (best == kept_.size() || kept_[i].bytes < kept_[best].bytes)) best = i;
      }
      if (best < kept_.size()) {
        found = kept_[best].map;
        *got = kept_[best].bytes;
        total_ -= kept_[best].bytes;
        kept_.erase(kept_.begin() + static_cast<std::ptrdiff_t>(best));
      }
    }
    Unmap(expired);
    return found;
  }
  // Keeps the mapping if it fits the bounds; otherwise unmaps it.
  void Give(void* map, size_t bytes) {
    std::vector<Kept> expired;
    {
      std::lock_guard<std::mutex> lock(mu_);
      Expire(&expired);
      if (bytes <= kLargeBufferCacheEach && total_ + bytes <= kLargeBufferCacheTotal) {
        kept_.push_back(Kept{map, bytes, MonotonicMicros()});
        total_ += bytes;
        map = nullptr;
      }
    }
    Unmap(expired);
    if (map != nullptr) ::munmap(map, bytes);
  }
  void Clear() {
    std::vector<Kept> all;
    {
      std::lock_guard<std::mutex> lock(mu_);
      all.swap(kept_);
      total_ = 0;
    }
    Unmap(all);
  }
  size_t total() {
    std::lock_guard<std::mutex> lock(mu_);
    return total_;
  }

 private:
  struct Kept {
    void* map;
    size_t bytes;
    int64_t since_us;
  };
  void Expire(std::vector<Kept>* out) {
    const int64_t cutoff = MonotonicMicros() - int64_t{kLargeBufferCacheSeconds} * 1000000;
    for (size_t i = 0; i < kept_.size();) {
      if (kept_[i].since_us < cutoff) {
        total_ -= kept_[i].bytes;
        out->push_back(kept_[i]);
        kept_[i] = kept_.back();
        kept_.pop_back();
      } else {
        ++i;
      }
    }
  }
  static void Unmap(const std::vector<Kept>& maps) {
    for (const Kept& k : maps) ::munmap(k.map, k.bytes);
  }
  std::mutex mu_;
  std::vector<Kept> kept_;
  size_t total_ = 0;
};

}  // namespace

void ReleaseFreeMemory() {
  MapCache::Get().Clear();
  ::malloc_trim(0);
}

size_t LargeBufferCachedBytes() { return MapCache::Get().total(); }

LargeBuffer::LargeBuffer(size_t bytes, bool zeroed) : size_(bytes) {
  if (bytes < kHugePage) {
    data_ = zeroed ? new char[bytes == 0 ? 1 : bytes]() : new char[bytes == 0 ? 1 : bytes];
    return;
  }
  // Over-map by one huge page so the buffer can start on a 2 MiB boundary (huge pages need aligned ranges).
  const size_t rounded = (bytes + kHugePage - 1) / kHugePage * kHugePage;
  map_bytes_ = rounded + kHugePage;
  void* p = MapCache::Get().Take(map_bytes_, &map_bytes_);
  const bool reused = p != nullptr;
  if (!reused) {
    p = ::mmap(nullptr, map_bytes_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) throw std::bad_alloc();
  }
  map_ = p;
  const auto addr = reinterpret_cast<uintptr_t>(p);
  data_ = reinterpret_cast<char*>((addr + kHugePage - 1) / kHugePage * kHugePage);
  if (!reused)
    ::madvise(data_, map_bytes_ - kHugePage, MADV_HUGEPAGE);  // advice only: without THP, small pages
  if (reused && zeroed) std::memset(data_, 0, bytes);
}

LargeBuffer::~LargeBuffer() { Release(); }

LargeBuffer::LargeBuffer(LargeBuffer&& o) noexcept
    : data_(std::exchange(o.data_, nullptr)),
      size_(std::exchange(o.size_, 0)),
      map_(std::exchange(o.map_, nullptr)),
      map_bytes_(std::exchange(o.map_bytes_, 0)) {}

LargeBuffer& LargeBuffer::operator=(LargeBuffer&& o) noexcept {
  if (this != &o) {
    Release();
    data_ = std::exchange(o.data_, nullptr);
    size_ = std::exchange(o.size_, 0);
    map_ = std::exchange(o.map_, nullptr);
    map_bytes_ = std::exchange(o.map_bytes_, 0);
  }
  return *this;
}

void LargeBuffer::Release() {
  if (map_ != nullptr) {
    MapCache::Get().Give(map_, map_bytes_);
  } else {
    delete[] data_;
  }
  data_ = nullptr;
  map_ = nullptr;
  size_ = map_bytes_ = 0;
}

}  // namespace lathe
