// admitDatagram: every arriving datagram is counted (datagrams_in, bytes_in); one that does not
// decode is dropped and counted by its reason; one of another stream is dropped and counted; the
// rest are handed on, decoded.
#include <doctest/doctest.h>

#include <array>
#include <cstddef>

#include "fabric/intake.h"

using namespace seqcast;

TEST_CASE("intake: counted, decoded, checked against the stream") {
    std::array<std::byte, 256> buf{};
    const std::size_t n = wire::encodeHeartbeat(buf, StreamId{7}, Epoch{1}, Offset{100}, Offset{0}, 0);
    REQUIRE(n > 0);
    const std::span<const std::byte> hb(buf.data(), n);
    Counters c;
    wire::DatagramView v;

    CHECK(admitDatagram(hb, StreamId{7}, c, v));
    CHECK(v.type == wire::FrameType::Heartbeat);
    CHECK(c.get(Counter::DatagramsIn) == 1);
    CHECK(c.get(Counter::BytesIn) == n);

    CHECK(!admitDatagram(hb, StreamId{8}, c, v));
    CHECK(c.get(Counter::DropWrongStream) == 1);

    CHECK(!admitDatagram(hb.first(10), StreamId{7}, c, v));
    CHECK(c.get(Counter::DropTruncated) == 1);

    std::array<std::byte, 256> bad = buf;
    bad[n - 1] ^= std::byte{0x01};  // the CRC no longer matches
    CHECK(!admitDatagram(std::span<const std::byte>(bad.data(), n), StreamId{7}, c, v));
    CHECK(c.get(Counter::DropBadCrc) == 1);

    CHECK(c.get(Counter::DatagramsIn) == 4);
    CHECK(c.get(Counter::BytesIn) == 3 * n + 10);
}
