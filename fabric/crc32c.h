// CRC32C (Castagnoli), from ISA-L's crc32_iscsi. No library fit better: ISA-L is the
// well-kept, hardware-accelerated implementation (PCLMUL/SSE4.2 with run-time dispatch).
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#if defined(__SSE4_2__)
#include <nmmintrin.h>
#endif

namespace seqcast {

// Incremental form: start with kCrc32cInit, feed pieces with crc32cUpdate, finish with crc32cFinal.
inline constexpr std::uint32_t kCrc32cInit = 0xFFFFFFFFu;
std::uint32_t crc32cUpdate(std::uint32_t state, std::span<const std::byte> bytes) noexcept;
constexpr std::uint32_t crc32cFinal(std::uint32_t state) noexcept { return ~state; }

// The same as crc32cUpdate, for short inputs (an entry's header, a small message): the SSE4.2
// crc32 instruction inline, 8 bytes at a time, without the call and length dispatch the library
// pays per input. Longer inputs go to the library, whose interleaved code is faster there.
inline constexpr std::size_t kCrc32cShortMax = 128;
inline std::uint32_t crc32cUpdateShort(std::uint32_t state, std::span<const std::byte> bytes) noexcept {
#if defined(__SSE4_2__)
    if (bytes.size() > kCrc32cShortMax) return crc32cUpdate(state, bytes);
    const std::byte* p = bytes.data();
    std::size_t n = bytes.size();
    std::uint64_t s = state;
    for (; n >= 8; n -= 8, p += 8) {
        std::uint64_t v;
        std::memcpy(&v, p, 8);
        s = _mm_crc32_u64(s, v);
    }
    auto s32 = static_cast<std::uint32_t>(s);
    for (; n > 0; --n, ++p) s32 = _mm_crc32_u8(s32, static_cast<std::uint8_t>(*p));
    return s32;
#else
    return crc32cUpdate(state, bytes);
#endif
}

// One-shot CRC32C: crc32c("123456789") == 0xE3069283.
inline std::uint32_t crc32c(std::span<const std::byte> bytes) noexcept {
    return crc32cFinal(crc32cUpdateShort(kCrc32cInit, bytes));
}

// Bit-at-a-time reference implementation (tests and benchmarks only).
std::uint32_t crc32cReference(std::span<const std::byte> bytes) noexcept;

}  // namespace seqcast
