// seqcast: what a Subscriber or Replay delivers (part of the C++ API; included by seqcast/seqcast.hpp,
// which is the header an application includes). The engine delivers these very structs, so a
// handler given to poll() is called directly, with nothing built or forwarded in between.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <span>
#include <string_view>

namespace seqcast {

struct Message {
    std::uint64_t offset;         // the offset of its last fragment
    std::uint32_t publisher;
    std::uint64_t pubSeq;
    std::uint64_t publishTsNs;    // the publisher's CLOCK_REALTIME at offer()
    std::uint64_t sequencedTsNs;  // the sequencer's CLOCK_REALTIME when it sent the datagram
    std::uint32_t epoch;
    bool repaired;                // arrived through a retransmission or a replay
    std::span<const std::byte> payload;  // valid until the handler returns
    std::string_view text() const noexcept { return {reinterpret_cast<const char*>(payload.data()), payload.size()}; }
};

// Offsets [first, first + count) will never be delivered (nobody could repair them).
struct Loss {
    std::uint64_t first;
    std::uint64_t count;
};

using MessageHandler = std::function<void(const Message&)>;
using LossHandler = std::function<void(const Loss&)>;

}  // namespace seqcast
