#include "data/checksum.h"

#include <array>
#include <cstring>

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define LATHE_CRC_CLMUL 1
#endif

namespace lathe {

namespace {

// Slice-by-8 tables, built once at compile time.
struct CrcTables {
  std::array<std::array<uint32_t, 256>, 8> t{};
  constexpr CrcTables() {
    for (uint32_t i = 0; i < 256; ++i) {
      uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
      t[0][i] = c;
    }
    for (uint32_t i = 0; i < 256; ++i) {
      for (int s = 1; s < 8; ++s) t[s][i] = (t[s - 1][i] >> 8) ^ t[0][t[s - 1][i] & 0xFF];
    }
  }
};

constexpr CrcTables kCrc{};

uint64_t Load64(const char* p) {
  uint64_t v;
  std::memcpy(&v, p, 8);
  return v;
}

uint64_t Mix(uint64_t h) {
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdULL;
  h ^= h >> 33;
  h *= 0xc4ceb9fe1a85ec53ULL;
  h ^= h >> 33;
  return h;
}

// Table-driven CRC of [p, p + size) on the inverted register value.
uint32_t Crc32Tables(const unsigned char* p, size_t size, uint32_t crc) {
  while (size >= 8) {
    uint32_t lo = crc ^ (static_cast<uint32_t>(p[0]) | static_cast<uint32_t>(p[1]) << 8 |
                         static_cast<uint32_t>(p[2]) << 16 | static_cast<uint32_t>(p[3]) << 24);
    crc = kCrc.t[7][lo & 0xFF] ^ kCrc.t[6][(lo >> 8) & 0xFF] ^ kCrc.t[5][(lo >> 16) & 0xFF] ^ kCrc.t[4][lo >> 24] ^
          kCrc.t[3][p[4]] ^ kCrc.t[2][p[5]] ^ kCrc.t[1][p[6]] ^ kCrc.t[0][p[7]];
    p += 8;
    size -= 8;
  }
  while (size--) crc = kCrc.t[0][(crc ^ *p++) & 0xFF] ^ (crc >> 8);
  return crc;
}

#if LATHE_CRC_CLMUL
// The same CRC-32 by carry-less multiplication (Gopal et al., "Fast CRC Computation for Generic Polynomials
// Using PCLMULQDQ", Intel 2009; the folding constants are those of the reflected polynomial 0xEDB88320, as
// in zlib). On the inverted register value; size is a multiple of 16 and at least 64.
// Folding constants (x^(d+32) and x^(d-32) mod P, reflected, shifted), each named by the distance d it folds
// across: 64 bytes (four 128-bit lanes), 16 bytes (one lane), and the last 128 -> 64 and Barrett steps.
alignas(16) constexpr uint64_t kFold64[] = {0x0154442bd4, 0x01c6e41596};
alignas(16) constexpr uint64_t kFold16[] = {0x01751997d0, 0x00ccaa009e};
alignas(16) constexpr uint64_t kFold8[] = {0x0163cd6124, 0x0000000000};
alignas(16) constexpr uint64_t kBarrett[] = {0x01db710641, 0x01f7011641};

// x * k (both 64-bit halves, carry-less) folded onto `next`.
__attribute__((target("pclmul,sse4.1"))) inline __m128i Fold(__m128i x, __m128i k, __m128i next) {
  __m128i lo = _mm_clmulepi64_si128(x, k, 0x00);
  __m128i hi = _mm_clmulepi64_si128(x, k, 0x11);
  return _mm_xor_si128(_mm_xor_si128(hi, lo), next);
}

// The last 16-byte blocks (len of them, a multiple of 16) folded onto x1, then 128 -> 32 bits.
__attribute__((target("pclmul,sse4.1"))) inline uint32_t FinishClmul(__m128i x1, const unsigned char* buf,
                                                                      size_t len) {
  __m128i k = _mm_load_si128(reinterpret_cast<const __m128i*>(kFold16));
  while (len >= 16) {
    x1 = Fold(x1, k, _mm_loadu_si128(reinterpret_cast<const __m128i*>(buf)));
    buf += 16;
    len -= 16;
  }
  // 128 -> 64 bits.
  __m128i x5 = _mm_clmulepi64_si128(x1, k, 0x10);
  const __m128i mask32 = _mm_setr_epi32(~0, 0, ~0, 0);
  x1 = _mm_xor_si128(_mm_srli_si128(x1, 8), x5);
  k = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(kFold8));
  x5 = _mm_srli_si128(x1, 4);
  x1 = _mm_xor_si128(_mm_clmulepi64_si128(_mm_and_si128(x1, mask32), k, 0x00), x5);
  // Barrett reduction to 32 bits.
  k = _mm_load_si128(reinterpret_cast<const __m128i*>(kBarrett));
  x5 = _mm_clmulepi64_si128(_mm_and_si128(x1, mask32), k, 0x10);
  x5 = _mm_clmulepi64_si128(_mm_and_si128(x5, mask32), k, 0x00);
  x1 = _mm_xor_si128(x1, x5);
  return static_cast<uint32_t>(_mm_extract_epi32(x1, 1));
}

__attribute__((target("pclmul,sse4.1"))) uint32_t Crc32Clmul(const unsigned char* buf, size_t len, uint32_t crc) {
  auto load = [](const unsigned char* p) { return _mm_loadu_si128(reinterpret_cast<const __m128i*>(p)); };
  __m128i x1 = _mm_xor_si128(load(buf), _mm_cvtsi32_si128(static_cast<int>(crc)));
  __m128i x2 = load(buf + 16), x3 = load(buf + 32), x4 = load(buf + 48);
  buf += 64;
  len -= 64;
  __m128i k = _mm_load_si128(reinterpret_cast<const __m128i*>(kFold64));
  // Four independent 128-bit lanes folded 64 bytes forward at a time.
  while (len >= 64) {
    x1 = Fold(x1, k, load(buf));
    x2 = Fold(x2, k, load(buf + 16));
    x3 = Fold(x3, k, load(buf + 32));
    x4 = Fold(x4, k, load(buf + 48));
    buf += 64;
    len -= 64;
  }
  // Fold the four lanes into one, then the rest.
  k = _mm_load_si128(reinterpret_cast<const __m128i*>(kFold16));
  x1 = Fold(x1, k, x2);
  x1 = Fold(x1, k, x3);
  x1 = Fold(x1, k, x4);
  return FinishClmul(x1, buf, len);
}

// The 512-bit form (VPCLMULQDQ): four registers of four 128-bit lanes fold 256 bytes forward per step, then
// 64 bytes at a time, then the lanes fold into one and FinishClmul takes the rest. size is a multiple of 16
// and at least 256. Constants: x^(2048+32) and x^(2048-32) mod P for the 256-byte step, reflected and shifted
// like the others (checked against zlib's values for the 64- and 16-byte steps).
#define LATHE_VPCLMUL_TARGET __attribute__((target("avx512f,avx512vl,vpclmulqdq,pclmul,sse4.1")))
LATHE_VPCLMUL_TARGET inline __m512i Fold512(__m512i x, __m512i k, __m512i next) {
  return _mm512_ternarylogic_epi64(_mm512_clmulepi64_epi128(x, k, 0x00), _mm512_clmulepi64_epi128(x, k, 0x11),
                                   next, 0x96);  // three-way xor
}

LATHE_VPCLMUL_TARGET uint32_t Crc32Vpclmul(const unsigned char* buf, size_t len, uint32_t crc) {
  __m512i x0 = _mm512_xor_si512(_mm512_loadu_si512(buf), _mm512_zextsi128_si512(_mm_cvtsi32_si128(static_cast<int>(crc))));
  __m512i x1 = _mm512_loadu_si512(buf + 64), x2 = _mm512_loadu_si512(buf + 128), x3 = _mm512_loadu_si512(buf + 192);
  buf += 256;
  len -= 256;
  // (_mm512_set_epi64, not a broadcast: GCC 12's broadcast and extract intrinsics warn about their
  // undefined pass-through operand.)
  const __m512i k256 = _mm512_set_epi64(0x01322d1430, 0x011542778a, 0x01322d1430, 0x011542778a, 0x01322d1430,
                                        0x011542778a, 0x01322d1430, 0x011542778a);
  while (len >= 256) {
    x0 = Fold512(x0, k256, _mm512_loadu_si512(buf));
    x1 = Fold512(x1, k256, _mm512_loadu_si512(buf + 64));
    x2 = Fold512(x2, k256, _mm512_loadu_si512(buf + 128));
    x3 = Fold512(x3, k256, _mm512_loadu_si512(buf + 192));
    buf += 256;
    len -= 256;
  }
  const __m512i k64 = _mm512_set_epi64(kFold64[1], kFold64[0], kFold64[1], kFold64[0], kFold64[1], kFold64[0],
                                       kFold64[1], kFold64[0]);
  x0 = Fold512(x0, k64, x1);
  x0 = Fold512(x0, k64, x2);
  x0 = Fold512(x0, k64, x3);
  while (len >= 64) {
    x0 = Fold512(x0, k64, _mm512_loadu_si512(buf));
    buf += 64;
    len -= 64;
  }
  // The four 128-bit lanes are consecutive 16-byte blocks: fold each onto the next.
  const __m128i k16 = _mm_load_si128(reinterpret_cast<const __m128i*>(kFold16));
  __m128i x = _mm512_maskz_extracti32x4_epi32(0xF, x0, 0);
  x = Fold(x, k16, _mm512_maskz_extracti32x4_epi32(0xF, x0, 1));
  x = Fold(x, k16, _mm512_maskz_extracti32x4_epi32(0xF, x0, 2));
  x = Fold(x, k16, _mm512_maskz_extracti32x4_epi32(0xF, x0, 3));
  return FinishClmul(x, buf, len);
}

bool HaveVpclmul() {
  static const bool have = [] {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
           __builtin_cpu_supports("vpclmulqdq") && __builtin_cpu_supports("pclmul") && __builtin_cpu_supports("sse4.1");
  }();
  return have;
}

bool HaveClmul() {
  static const bool have = [] {
    __builtin_cpu_init();
    return __builtin_cpu_supports("pclmul") && __builtin_cpu_supports("sse4.1");
  }();
  return have;
}
#endif

}  // namespace

uint32_t Crc32(const void* data, size_t size, uint32_t crc) {
  const auto* p = static_cast<const unsigned char*>(data);
  crc = ~crc;
#if LATHE_CRC_CLMUL
  if (size >= 256 && HaveVpclmul()) {
    size_t bulk = size & ~size_t{15};
    crc = Crc32Vpclmul(p, bulk, crc);
    p += bulk;
    size -= bulk;
  } else if (size >= 64 && HaveClmul()) {
    size_t bulk = size & ~size_t{15};
    crc = Crc32Clmul(p, bulk, crc);
    p += bulk;
    size -= bulk;
  }
#endif
  return ~Crc32Tables(p, size, crc);
}

uint32_t Crc32PortableForTest(const void* data, size_t size, uint32_t crc) {
  return ~Crc32Tables(static_cast<const unsigned char*>(data), size, ~crc);
}

uint64_t Hash64(const char* data, size_t size) {
  uint64_t h = 0x9E3779B97F4A7C15ULL ^ (size * 0xC2B2AE3D27D4EB4FULL);
  size_t i = 0;
  for (; i + 8 <= size; i += 8) h = (h ^ Mix(Load64(data + i))) * 0x9E3779B97F4A7C15ULL;
  if (i < size) {
    uint64_t tail = 0;
    std::memcpy(&tail, data + i, size - i);
    h = (h ^ Mix(tail ^ 0xA5A5A5A5ULL)) * 0x9E3779B97F4A7C15ULL;
  }
  return Mix(h);
}

}  // namespace lathe
