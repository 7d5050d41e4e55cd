// CRC32C (Castagnoli), from ISA-L's crc32_iscsi. No library fit better: ISA-L is the
// well-kept, hardware-accelerated implementation (PCLMUL/SSE4.2 with run-time dispatch).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

namespace seqcast {

// Incremental form: start with kCrc32cInit, feed pieces with crc32cUpdate, finish with crc32cFinal.
inline constexpr std::uint32_t kCrc32cInit = 0xFFFFFFFFu;
std::uint32_t crc32cUpdate(std::uint32_t state, std::span<const std::byte> bytes) noexcept;
constexpr std::uint32_t crc32cFinal(std::uint32_t state) noexcept { return ~state; }

// One-shot CRC32C: crc32c("123456789") == 0xE3069283.
inline std::uint32_t crc32c(std::span<const std::byte> bytes) noexcept {
    return crc32cFinal(crc32cUpdate(kCrc32cInit, bytes));
}

// Bit-at-a-time reference implementation (tests and benchmarks only).
std::uint32_t crc32cReference(std::span<const std::byte> bytes) noexcept;

}  // namespace seqcast
