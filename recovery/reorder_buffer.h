// Datagrams that arrived ahead of the delivery point, held (copied) until the gap before them is
// filled or declared lost. Bounded: a fixed pool of datagram-sized slots allocated up front.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "fabric/types.h"

namespace seqcast::recovery {

class ReorderBuffer {
public:
    ReorderBuffer(std::size_t maxBytes, std::size_t maxDatagram);

    enum class Insert : std::uint8_t { Stored, Duplicate, Full, TooLarge };
    Insert insert(Offset first, std::uint32_t count, std::span<const std::byte> bytes);

    bool empty() const noexcept { return order_.empty(); }
    std::size_t size() const noexcept { return order_.size(); }
    std::size_t capacity() const noexcept { return slots_.size(); }
    // Lowest held datagram.
    Offset lowestFirst() const noexcept;
    std::uint64_t lowestEnd() const noexcept;
    // Removes the lowest datagram; its bytes stay valid until the next insert/pop/discard.
    std::span<const std::byte> popLowest();
    // Drops every held datagram ending at or below `next`.
    std::size_t discardBelow(Offset next);
    void clear();

private:
    struct Slot {
        std::uint64_t first = 0;
        std::uint32_t count = 0;
        std::uint32_t len = 0;
    };
    void releasePending();

    std::size_t maxDatagram_;
    std::vector<std::byte> arena_;
    std::vector<Slot> slots_;
    std::vector<std::uint32_t> free_;
    std::vector<std::uint32_t> order_;  // slot ids sorted by first, descending (lowest at back)
    std::int64_t pendingRelease_ = -1;
};

}  // namespace seqcast::recovery
