// The quote message the examples exchange: a fixed little-endian layout, 32 bytes.
#pragma once

#include <cstdint>
#include <cstring>
#include <span>
#include <string>

struct Quote {
    char symbol[8];         // space padded
    std::int64_t bid;       // price in 1e-4 units
    std::int64_t ask;
    std::uint32_t bidSize;
    std::uint32_t askSize;
};
static_assert(sizeof(Quote) == 32);

inline bool decodeQuote(std::span<const std::byte> payload, Quote& q) {
    if (payload.size() != sizeof(Quote)) return false;
    std::memcpy(&q, payload.data(), sizeof q);
    return true;
}

inline std::string symbolOf(const Quote& q) {
    std::string s(q.symbol, sizeof q.symbol);
    return s.substr(0, s.find(' '));
}
