// One valid datagram of every frame type, with known field values. Shared by the wire unit tests
// and the fuzz seed-corpus generator (tests/fuzz/make_corpus.cpp).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "fabric/wire.h"

namespace seqcast::test {

using Bytes = std::vector<std::byte>;

inline constexpr StreamId kStream{0x01020304u};
inline constexpr Epoch kEpoch{7};
inline constexpr std::uint64_t kTs = 0x1122334455667788ull;

inline Bytes patternBytes(std::size_t n, std::uint32_t seed) {
    Bytes b(n);
    std::uint32_t x = seed * 2654435761u + 1;
    for (auto& v : b) {
        x = x * 1664525u + 1013904223u;
        v = static_cast<std::byte>(x >> 24);
    }
    return b;
}

struct Sample {
    std::string name;
    Bytes bytes;
};

// DATA: three whole messages (one empty) and the first fragment of a larger message.
inline Bytes sampleData(std::size_t mtu = wire::kDefaultMtu) {
    Bytes buf(mtu);
    wire::DatagramWriter w(buf);
    w.begin(wire::FrameType::Data, kStream, kEpoch, Offset{1000}, wire::kFlagRetransmit);
    const Bytes m0 = patternBytes(17, 0), m2 = patternBytes(100, 2), big = patternBytes(5000, 3);
    (void)w.appendPiece({PublisherId{11}, PubSeq{1}, 101}, m0, 0);
    (void)w.appendPiece({PublisherId{12}, PubSeq{2}, 102}, {}, 0);
    (void)w.appendPiece({PublisherId{11}, PubSeq{3}, 103}, m2, 0);
    (void)w.appendPiece({PublisherId{13}, PubSeq{4}, 104}, big, 0);
    buf.resize(w.finish(kTs));
    return buf;
}

// DATA: a middle fragment then the last fragment of two different messages, then a whole one.
inline Bytes sampleDataFragments() {
    Bytes buf(400);
    wire::DatagramWriter w(buf);
    w.begin(wire::FrameType::Data, kStream, kEpoch, Offset{2000});
    const Bytes a = patternBytes(1000, 5), b = patternBytes(60, 6), c = patternBytes(8, 7);
    wire::MessageView mid{PublisherId{21}, PubSeq{9}, 201, 0, 500, 0, std::span<const std::byte>(a).subspan(500, 100), 0};
    mid.crc = wire::entryCrcOf(mid);
    (void)w.appendEntry(mid);
    (void)w.appendPiece({PublisherId{22}, PubSeq{10}, 202}, b, 40);
    (void)w.appendPiece({PublisherId{23}, PubSeq{11}, 203}, c, 0);
    buf.resize(w.finish(kTs + 1));
    return buf;
}

inline Bytes samplePub() {
    Bytes buf(300);
    wire::DatagramWriter w(buf);
    w.begin(wire::FrameType::Pub, kStream, kEpoch, Offset{0});
    const Bytes m = patternBytes(40, 8);
    (void)w.appendPiece({PublisherId{31}, PubSeq{77}, 301}, m, 0);
    (void)w.appendPiece({PublisherId{31}, PubSeq{78}, 302}, m, 0);
    buf.resize(w.finish(kTs + 2));
    return buf;
}

inline Bytes sampleHeartbeat() {
    Bytes buf(wire::kHeaderSize + 8);
    buf.resize(wire::encodeHeartbeat(buf, kStream, kEpoch, Offset{5000}, Offset{4000}, kTs + 3));
    return buf;
}

inline Bytes sampleNak() {
    Bytes buf(200);
    wire::DatagramWriter w(buf);
    w.begin(wire::FrameType::Nak, kStream, kEpoch, Offset{0});
    (void)w.appendNakRange(Offset{10}, 5);
    (void)w.appendNakRange(Offset{100}, 1);
    (void)w.appendNakRange(Offset{0xFFFFFFFF00ull}, wire::kMaxNakRangeCount);
    buf.resize(w.finish(kTs + 4));
    return buf;
}

inline Bytes samplePubAck() {
    Bytes buf(200);
    wire::DatagramWriter w(buf);
    w.begin(wire::FrameType::PubAck, kStream, kEpoch, Offset{0});
    wire::PubAckBody b{};
    b.publisherId.set(41);
    b.reserved.set(0);
    (void)w.appendStruct(b);
    (void)w.appendPubAckRun(PubSeq{1}, Offset{100}, 10, 1);
    (void)w.appendPubAckRun(PubSeq{11}, Offset{200}, 3, 790);
    buf.resize(w.finish(kTs + 5));
    return buf;
}

inline Bytes samplePubNak() {
    Bytes buf(100);
    buf.resize(wire::encodePubNak(buf, kStream, kEpoch, PublisherId{51}, wire::PubNakReason::Gap, PubSeq{123},
                                  PubSeq{130}, kTs + 6));
    return buf;
}

inline Bytes sampleReplayRequest() {
    Bytes buf(100);
    buf.resize(wire::encodeReplayRequest(buf, kStream, 0xABCDu, Offset{300}, wire::kOffsetOpen,
                                         wire::kReplayLive | wire::kReplayWait, kTs + 7));
    return buf;
}

inline Bytes sampleReplayEnd() {
    Bytes buf(100);
    buf.resize(wire::encodeReplayEnd(buf, kStream, kEpoch, 0xABCDu, wire::ReplayStatus::Overwritten, Offset{900},
                                     Offset{400}, kTs + 8));
    return buf;
}

inline Bytes sampleEndOfStream() {
    Bytes buf(100);
    buf.resize(wire::encodeEndOfStream(buf, kStream, kEpoch, Offset{6000}, kTs + 9));
    return buf;
}

inline std::vector<Sample> allSamples() {
    return {
        {"data", sampleData()},
        {"data_fragments", sampleDataFragments()},
        {"heartbeat", sampleHeartbeat()},
        {"nak", sampleNak()},
        {"pub", samplePub()},
        {"pub_ack", samplePubAck()},
        {"pub_nak", samplePubNak()},
        {"replay_request", sampleReplayRequest()},
        {"replay_end", sampleReplayEnd()},
        {"end_of_stream", sampleEndOfStream()},
    };
}

}  // namespace seqcast::test
