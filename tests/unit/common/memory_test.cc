#include "common/memory.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <utility>

namespace lathe {
namespace {

TEST(LargeBuffer, SmallAndHugeBuffersHoldWhatIsWrittenAndMove) {
  for (size_t bytes : {size_t{0}, size_t{1}, size_t{4096}, (size_t{2} << 20) - 1, size_t{2} << 20, (size_t{5} << 20) + 3}) {
    LargeBuffer b(bytes);
    ASSERT_EQ(b.size(), bytes);
    ASSERT_NE(b.data(), nullptr);
    if (bytes >= (size_t{2} << 20)) {
      EXPECT_EQ(reinterpret_cast<uintptr_t>(b.data()) % (size_t{2} << 20), 0u) << "huge-page aligned";
    }
    for (size_t i = 0; i < bytes; ++i) b.data()[i] = static_cast<char>(i * 31);
    LargeBuffer moved(std::move(b));
    EXPECT_EQ(b.data(), nullptr);
    EXPECT_EQ(b.size(), 0u);
    LargeBuffer assigned;
    assigned = std::move(moved);
    ASSERT_EQ(assigned.size(), bytes);
    for (size_t i = 0; i < bytes; ++i) ASSERT_EQ(assigned.data()[i], static_cast<char>(i * 31)) << i;
  }
}

TEST(TuneAllocator, CanBeCalledRepeatedly) {
  TuneAllocator();
  TuneAllocator(size_t{64} << 20);
  void* p = std::malloc(size_t{8} << 20);
  ASSERT_NE(p, nullptr);
  std::memset(p, 1, size_t{8} << 20);
  std::free(p);
}

}  // namespace
}  // namespace lathe
