#include "common/memory.h"

#include <malloc.h>
#include <sys/mman.h>

#include <climits>
#include <cstdint>
#include <new>
#include <utility>

namespace lathe {

void TuneAllocator(size_t retain_bytes) {
  // Fixed values turn off glibc's adaptive thresholds (which would lower the trim threshold again).
  ::mallopt(M_MMAP_THRESHOLD, 32 << 20);
  ::mallopt(M_TRIM_THRESHOLD, static_cast<int>(retain_bytes > INT_MAX ? INT_MAX : retain_bytes));
}

namespace {
constexpr size_t kHugePage = kLargeBufferMapBytes;
}  // namespace

LargeBuffer::LargeBuffer(size_t bytes) : size_(bytes) {
  if (bytes < kHugePage) {
    data_ = new char[bytes == 0 ? 1 : bytes];
    return;
  }
  // Over-map by one huge page so the buffer can start on a 2 MiB boundary (huge pages need aligned ranges).
  const size_t rounded = (bytes + kHugePage - 1) / kHugePage * kHugePage;
  map_bytes_ = rounded + kHugePage;
  void* p = ::mmap(nullptr, map_bytes_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) throw std::bad_alloc();
  map_ = p;
  const auto addr = reinterpret_cast<uintptr_t>(p);
  data_ = reinterpret_cast<char*>((addr + kHugePage - 1) / kHugePage * kHugePage);
  ::madvise(data_, rounded, MADV_HUGEPAGE);  // advice only: without THP the pages are ordinary
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
    ::munmap(map_, map_bytes_);
  } else {
    delete[] data_;
  }
  data_ = nullptr;
  map_ = nullptr;
  size_ = map_bytes_ = 0;
}

}  // namespace lathe
