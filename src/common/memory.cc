#include "common/memory.h"

#include <malloc.h>

#include <climits>

namespace lathe {

void TuneAllocator(size_t retain_bytes) {
  // Fixed values turn off glibc's adaptive thresholds (which would lower the trim threshold again).
  ::mallopt(M_MMAP_THRESHOLD, 32 << 20);
  ::mallopt(M_TRIM_THRESHOLD, static_cast<int>(retain_bytes > INT_MAX ? INT_MAX : retain_bytes));
}

}  // namespace lathe
