// Datagrams that arrived ahead of the delivery point, held (copied) until the gap before them is
// filled or declared lost. Bounded: a fixed pool of datagram-sized slots allocated up front.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <memory>
#include <vector>

#include "fabric/types.h"

namespace seqcast::client {

class ReorderBuffer {
public:
    ReorderBuffer(std::size_t maxBytes, std::size_t maxDatagram);

    enum class Insert : std::uint8_t { Stored, Duplicate, Full, TooLarge };
    Insert insert(Offset first, std::uint32_t count, std::span<const std::byte> bytes);

    bool empty() const noexcept { return count_ == 0; }
    std::size_t size() const noexcept { return count_; }
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
    // The i-th lowest held datagram's slot id.
    std::uint32_t& at(std::size_t i) noexcept {
        const std::size_t k = head_ + i;
        return order_[k >= order_.size() ? k - order_.size() : k];
    }
    const Slot& slotAt(std::size_t i) noexcept { return slots_[at(i)]; }

    std::size_t maxDatagram_;
    // Anonymous memory from mmap: pages are committed as slots are first used, so a large buffer
    // costs nothing up front (a zero-filled 128 MiB vector took seconds of start-up on a busy
    // host, during which the process read nothing; malloc may also fill it, MALLOC_PERTURB_).
    struct Unmap {
        std::size_t bytes;
        void operator()(std::byte* p) const noexcept;
    };
    std::size_t arenaBytes_;
    std::unique_ptr<std::byte, Unmap> arena_;
    std::vector<Slot> slots_;
    std::vector<std::uint32_t> free_;
    // Slot ids sorted by first, ascending, in a ring: datagrams mostly arrive in order and leave
    // from the low end, so both ends are O(1); a repair that lands between held datagrams is
    // placed by binary search and shifts the shorter side.
    std::vector<std::uint32_t> order_;
    std::size_t head_ = 0;
    std::size_t count_ = 0;
    std::int64_t pendingRelease_ = -1;
};

}  // namespace seqcast::client
