// What every role does first with an arriving datagram (subscriber, sequencer, publisher, the
// archiver's service socket): count it, decode and verify it (a drop counted by its reason), and
// check that it belongs to this stream. One place, so every role counts the same way.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include "fabric/counters.h"
#include "fabric/types.h"
#include "fabric/wire.h"

namespace seqcast {

// True: `v` is a verified datagram of `stream`. False: counted as a drop (drop_truncated ...
// drop_bad_crc ... drop_wrong_stream). datagrams_in and bytes_in count every datagram either way.
inline bool admitDatagram(std::span<const std::byte> bytes, StreamId stream, Counters& c, wire::DatagramView& v) noexcept {
    c.add(Counter::DatagramsIn);
    c.add(Counter::BytesIn, bytes.size());
    if (const auto e = wire::decode(bytes, v); e != wire::DecodeError::Ok) {
        if (const Counter drop = dropCounterFor(static_cast<std::uint8_t>(e)); drop != Counter::Count_) c.add(drop);
        return false;
    }
    if (v.stream != stream) {
        c.add(Counter::DropWrongStream);
        return false;
    }
    return true;
}

}  // namespace seqcast
