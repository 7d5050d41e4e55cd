#include "fabric/crc32c.h"

#include <climits>

#include <isa-l/crc.h>

namespace seqcast {

std::uint32_t crc32cUpdate(std::uint32_t state, std::span<const std::byte> bytes) noexcept {
    // crc32_iscsi takes an int length; feed very large spans in pieces.
    const auto* p = reinterpret_cast<unsigned char*>(const_cast<std::byte*>(bytes.data()));
    std::size_t left = bytes.size();
    while (left > 0) {
        const std::size_t n = left > static_cast<std::size_t>(INT_MAX) ? static_cast<std::size_t>(INT_MAX) : left;
        state = crc32_iscsi(const_cast<unsigned char*>(p), static_cast<int>(n), state);
        p += n;
        left -= n;
    }
    return state;
}

std::uint32_t crc32cReference(std::span<const std::byte> bytes) noexcept {
    std::uint32_t crc = 0xFFFFFFFFu;
    for (std::byte b : bytes) {
        crc ^= static_cast<std::uint32_t>(b);
        for (int k = 0; k < 8; ++k) crc = (crc >> 1) ^ (0x82F63B78u & (0u - (crc & 1u)));
    }
    return ~crc;
}

}  // namespace seqcast
