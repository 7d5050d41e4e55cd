// Reassembles fragmented messages. Fragments may arrive in any order and more than once; a message
// completes when its last fragment and every byte before it have arrived. Memory is bounded by
// maxPending messages of at most maxMessage bytes; the oldest incomplete message is evicted (counted).
// Each of the maxPending slots gets one maxMessage buffer (and its range list) the first time it holds
// a fragmented message and keeps it for good: a flood of fragments that never complete reuses this
// fixed pool and allocates nothing. Pages of a buffer that no fragment touches are never written.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <utility>
#include <memory>
#include <vector>

#include "fabric/types.h"
#include "fabric/wire.h"

namespace seqcast::client {

class Reassembler {
public:
    enum class Outcome : std::uint8_t { Complete, Pending, Duplicate, TooLarge, Inconsistent };

    struct Stats {
        std::uint64_t completed = 0;
        std::uint64_t evicted = 0;    // incomplete messages pushed out by newer ones
        std::uint64_t tooLarge = 0;   // fragments beyond maxMessage
        std::uint64_t inconsistent = 0;
        std::uint64_t duplicates = 0;
        std::uint64_t buffers = 0;    // pool buffers allocated, ever: at most maxPending
    };

    explicit Reassembler(std::uint32_t maxMessage = wire::kDefaultMaxMessage, std::size_t maxPending = 64);
    // Disjoint received ranges one incomplete message may have; beyond, it is dropped as
    // inconsistent. A sender's in-order fragments make one range; loss makes one per hole.
    static constexpr std::size_t kMaxRanges = 1024;
    // Memory is bounded by maxPending x maxMessage bytes (plus kMaxRanges ranges per message),
    // whatever arrives; once every slot has its buffer, nothing more is allocated.

    // Offers one fragment. On Complete, `out` views the whole message; it stays valid until the
    // next call to offer() or drop().
    Outcome offer(const wire::MessageView& frag, std::span<const std::byte>& out);
    // Forgets an incomplete message (e.g. its offsets were reported lost).
    void drop(PublisherId p, PubSeq s);
    void clear();
    std::size_t pending() const noexcept;
    std::size_t bytesHeld() const noexcept;
    const Stats& stats() const noexcept { return stats_; }

private:
    struct Slot {
        bool used = false;
        bool haveLast = false;
        PublisherId publisher{};
        PubSeq pubSeq{};
        std::uint32_t total = 0;   // valid once haveLast
        std::uint64_t age = 0;
        // The slot's pool buffer: maxMessage bytes, allocated on the slot's first fragmented
        // message, kept across messages, never zero-filled (a lone fragment far into a message
        // costs the pages it touches, not a memset of everything before it).
        std::unique_ptr<std::byte[]> data;
        // Merged [begin, end) ranges; capacity for kMaxRanges + 1 reserved with the buffer.
        std::vector<std::pair<std::uint32_t, std::uint32_t>> have;
    };
    Slot* find(PublisherId p, PubSeq s);
    Slot& claim(PublisherId p, PubSeq s);
    static bool insertRange(std::vector<std::pair<std::uint32_t, std::uint32_t>>& v, std::uint32_t b, std::uint32_t e);
    void release(Slot& s);
    void ensureBuffer(Slot& s);

    std::uint32_t maxMessage_;
    std::vector<Slot> slots_;
    std::uint64_t clock_ = 0;
    Slot* lastCompleted_ = nullptr;
    Stats stats_;
};

}  // namespace seqcast::client
