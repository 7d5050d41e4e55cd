// A small generator of Nasdaq TotalView-ITCH 5.0 messages for demos and tests: Add Order ('A',
// 36 bytes), Order Executed ('E', 31), Order Cancel ('X', 23) and Trade ('P', 44), big-endian as
// the specification lays them out, so Wireshark's nasdaq_itch dissector decodes what flows.
// Executions and cancels refer to orders added before and still open; an order leaves the book
// when its shares are gone.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include "fabric/clock.h"

namespace seqcast::gateway::itch {

inline constexpr std::size_t kAddOrderLength = 36;
inline constexpr std::size_t kOrderExecutedLength = 31;
inline constexpr std::size_t kOrderCancelLength = 23;
inline constexpr std::size_t kTradeLength = 44;

// The length of an ITCH 5.0 message of this type among the four above; 0 for any other type.
std::size_t lengthOf(char type) noexcept;

struct Header {
    char type = 0;
    std::uint16_t stockLocate = 0;
    std::uint16_t trackingNumber = 0;
    std::uint64_t timestampNs = 0;  // nanoseconds since midnight (48 bits on the wire)
};
// The 11-byte header every ITCH 5.0 message starts with; false when `m` is shorter.
bool decodeHeader(const std::vector<std::byte>& m, Header& h) noexcept;

class Generator {
public:
    explicit Generator(std::uint64_t seed, std::vector<std::string> stocks = {"AAPL", "MSFT", "SPY", "QQQ", "NVDA"});
    // The next message, stamped `timestampNs` (since midnight): about half adds, a fifth
    // executions, a fifth cancels, a tenth trades; while the book is empty, an add.
    std::vector<std::byte> next(std::uint64_t timestampNs);
    std::size_t openOrders() const noexcept { return orders_.size(); }

private:
    struct Order {
        std::uint16_t locate;
        char side;
        std::uint32_t shares;
        std::uint32_t price;  // 4 implied decimals
    };
    std::vector<std::byte> addOrder(std::uint64_t ts);
    std::vector<std::byte> executedOrCancel(std::uint64_t ts, bool executed);
    std::vector<std::byte> trade(std::uint64_t ts);

    Rng rng_;
    std::vector<std::string> stocks_;
    std::vector<std::uint32_t> mid_;  // each stock's mid price
    std::unordered_map<std::uint64_t, Order> orders_;
    std::vector<std::uint64_t> refs_;  // open order references, for picking one at random
    std::uint64_t nextRef_ = 1;
    std::uint64_t nextMatch_ = 1;
    std::uint16_t tracking_ = 0;
};

}  // namespace seqcast::gateway::itch
