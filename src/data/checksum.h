// CRC-32 (IEEE 802.3, reflected polynomial 0xEDB88320; the zlib/PNG checksum) and a fast 64-bit
// non-cryptographic hash for dictionary building and distinct counting. Thread-safe, no allocation.
// On x86-64 CPUs with PCLMULQDQ (checked at run time) Crc32 folds 64 bytes per step with carry-less
// multiplication, and 256 bytes per step where the CPU has the 512-bit form (AVX-512 VPCLMULQDQ); elsewhere it
// uses slice-by-8 tables. All compute the same standard CRC-32.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace lathe {

// CRC-32 of `data`, continuing from `crc` (pass the previous result to checksum a stream; 0 to start).
uint32_t Crc32(const void* data, size_t size, uint32_t crc = 0);
inline uint32_t Crc32(std::string_view s) { return Crc32(s.data(), s.size()); }
// The table-driven implementation alone (tests compare it with the accelerated one).
uint32_t Crc32PortableForTest(const void* data, size_t size, uint32_t crc = 0);

// 64-bit hash of bytes (not stable across lathe versions; never persist it).
uint64_t Hash64(const char* data, size_t size);

}  // namespace lathe
