#include "common/memory.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <utility>
#include <vector>

namespace lathe {
namespace {

TEST(LargeBuffer, SmallAndHugeBuffersHoldWhatIsWrittenAndMove) {
  for (size_t bytes :
       {size_t{0}, size_t{1}, size_t{4096}, (size_t{2} << 20) - 1, size_t{2} << 20, (size_t{5} << 20) + 3}) {
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

TEST(LargeBuffer, ReusesFreedMappingsAndZeroesThemWhenAsked) {
  ReleaseFreeMemory();
  EXPECT_EQ(LargeBufferCachedBytes(), 0u);
  const size_t bytes = size_t{6} << 20;
  char* first = nullptr;
  {
    LargeBuffer b(bytes);
    first = b.data();
    std::memset(b.data(), 0x5A, bytes);
  }
  EXPECT_GE(LargeBufferCachedBytes(), bytes) << "a freed mapping is kept";
  {
    LargeBuffer again(bytes - 12345);  // fits the kept mapping
    EXPECT_EQ(again.data(), first);
    EXPECT_EQ(LargeBufferCachedBytes(), 0u);
  }
  {
    LargeBuffer z = LargeBuffer::Zeroed(bytes);
    ASSERT_EQ(z.data(), first) << "the kept mapping (dirty) is reused";
    for (size_t i = 0; i < bytes; i += 4093) ASSERT_EQ(z.data()[i], 0) << i;
    ASSERT_EQ(z.data()[bytes - 1], 0);
  }
  {
    LargeBuffer bigger(bytes * 2);  // does not fit: a new mapping
    EXPECT_NE(bigger.data(), first);
    EXPECT_GE(LargeBufferCachedBytes(), bytes);
  }
  ReleaseFreeMemory();
  EXPECT_EQ(LargeBufferCachedBytes(), 0u);
  {
    LargeBuffer huge(kLargeBufferCacheEach + 1);  // too large to keep
  }
  EXPECT_EQ(LargeBufferCachedBytes(), 0u);
  std::vector<LargeBuffer> many;
  for (size_t i = 0; i < kLargeBufferCacheTotal / (size_t{32} << 20) + 3; ++i)
    many.emplace_back(size_t{32} << 20);
  many.clear();
  EXPECT_LE(LargeBufferCachedBytes(), kLargeBufferCacheTotal) << "the cache stays bounded";
  ReleaseFreeMemory();
}

TEST(LargeBuffer, SmallZeroedBuffersAreZero) {
  for (size_t bytes : {size_t{1}, size_t{100}, size_t{1} << 20}) {
    LargeBuffer z = LargeBuffer::Zeroed(bytes);
    for (size_t i = 0; i < bytes; ++i) ASSERT_EQ(z.data()[i], 0);
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
