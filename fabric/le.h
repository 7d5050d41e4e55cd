// Little-endian wire fields: alignment 1, trivially copyable, read with std::bit_cast.
#pragma once

#include <array>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <type_traits>

namespace seqcast {

static_assert(std::endian::native == std::endian::little || std::endian::native == std::endian::big,
              "mixed-endian targets are not supported");

template <class T>
constexpr T byteSwap(T v) noexcept {
    static_assert(std::is_unsigned_v<T>);
    if constexpr (sizeof(T) == 1) {
        return v;
    } else if constexpr (sizeof(T) == 2) {
        return static_cast<T>(__builtin_bswap16(v));
    } else if constexpr (sizeof(T) == 4) {
        return static_cast<T>(__builtin_bswap32(v));
    } else {
        static_assert(sizeof(T) == 8);
        return static_cast<T>(__builtin_bswap64(v));
    }
}

template <class T>
struct Le {
    static_assert(std::is_unsigned_v<T>);
    std::array<std::byte, sizeof(T)> raw;

    constexpr T get() const noexcept {
        T v = std::bit_cast<T>(raw);
        if constexpr (std::endian::native == std::endian::big) v = byteSwap(v);
        return v;
    }
    constexpr void set(T v) noexcept {
        if constexpr (std::endian::native == std::endian::big) v = byteSwap(v);
        raw = std::bit_cast<std::array<std::byte, sizeof(T)>>(v);
    }
};

using LeU8 = Le<std::uint8_t>;
using LeU16 = Le<std::uint16_t>;
using LeU32 = Le<std::uint32_t>;
using LeU64 = Le<std::uint64_t>;

static_assert(alignof(LeU64) == 1 && sizeof(LeU64) == 8);
static_assert(std::is_trivially_copyable_v<LeU64>);

}  // namespace seqcast
