// Process-wide allocator settings. glibc's malloc returns freed memory above its trim threshold to the kernel
// and serves allocations above its (adaptive) mmap threshold with fresh mappings; both mean every column
// buffer of a recipe step, profile pass or import chunk is faulted in page by page again. On virtual machines
// a page fault costs microseconds (measured: two thirds of a 1M-row recipe's time), so lathe keeps freed
// memory in the process up to a bound and reuses it. Jobs that free a lot call malloc_trim(0) at their end,
// so the retained memory does not outlive the work that needed it.
#pragma once

#include <cstddef>

namespace lathe {

// Column-sized blocks (up to 32 MiB, glibc's largest mmap threshold) come from the heap, and up to
// `retain_bytes` of freed heap stays mapped for reuse. Call once, early in main(). A no-op under sanitizers
// (their allocators do not use glibc's).
void TuneAllocator(size_t retain_bytes = size_t{256} << 20);

// Gives memory that lathe keeps for reuse back to the system: glibc's free heap (malloc_trim) and the
// LargeBuffer mappings cached for reuse. Called when work that allocated a lot ends (an idle job runner, a
// finished import, an unloaded model), so retained memory does not outlive the work that needed it.
void ReleaseFreeMemory();

// A large, uninitialized byte buffer mapped straight from the kernel and, where transparent huge pages are
// enabled (always or madvise), backed by 2 MiB pages: touching 16 MiB costs 8 page faults instead of 4096.
// For buffers of megabytes that are filled once and read (file segments); smaller ones use new[].
// Freed mappings of up to kLargeBufferCacheEach bytes are kept (up to kLargeBufferCacheTotal in all) and
// handed to the next LargeBuffer that fits, with their pages already faulted in; a kept mapping unused for
// kLargeBufferCacheSeconds is unmapped at the next allocation or release, and ReleaseFreeMemory() unmaps all.
// Move-only; the destructor returns the memory.
constexpr size_t kLargeBufferMapBytes = size_t{2} << 20;
constexpr size_t kLargeBufferCacheEach = size_t{64} << 20;
constexpr size_t kLargeBufferCacheTotal = size_t{256} << 20;
constexpr int kLargeBufferCacheSeconds = 10;

class LargeBuffer {
 public:
  LargeBuffer() = default;
  explicit LargeBuffer(size_t bytes) : LargeBuffer(bytes, false) {}
  // A buffer whose bytes are all zero (fresh pages are; a reused mapping is cleared).
  static LargeBuffer Zeroed(size_t bytes) { return LargeBuffer(bytes, true); }
  ~LargeBuffer();
  LargeBuffer(LargeBuffer&& o) noexcept;
  LargeBuffer& operator=(LargeBuffer&& o) noexcept;
  LargeBuffer(const LargeBuffer&) = delete;
  LargeBuffer& operator=(const LargeBuffer&) = delete;

  char* data() const { return data_; }
  size_t size() const { return size_; }

 private:
  LargeBuffer(size_t bytes, bool zeroed);
  void Release();
  char* data_ = nullptr;
  size_t size_ = 0;
  void* map_ = nullptr;  // the mapping (data_ is inside it, 2 MiB-aligned), or nullptr when data_ is new[]
  size_t map_bytes_ = 0;
};

// Mappings the LargeBuffer cache holds now (for tests and metrics).
size_t LargeBufferCachedBytes();

}  // namespace lathe
