#include <doctest/doctest.h>

#include <algorithm>
#include <cstring>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "fabric/crc32c.h"
#include "fabric/wire.h"
#include "tests/fabric/wire_samples.h"

using namespace seqcast;
using namespace seqcast::wire;
using seqcast::test::Bytes;

namespace {

template <class T>
void poke(Bytes& d, std::size_t at, T v) {
    static_assert(std::is_unsigned_v<T>);
    Le<T> le{};
    le.set(v);
    std::memcpy(d.data() + at, &le, sizeof le);
}

template <class T>
T peek(const Bytes& d, std::size_t at) {
    Le<T> le{};
    std::memcpy(&le, d.data() + at, sizeof le);
    return le.get();
}

void fixCrc(Bytes& d) { poke<std::uint32_t>(d, kCrcFieldOffset, datagramCrc(d)); }

// Builds a datagram by hand: v2 header (headerLen 48) + body, consistent lengths, valid CRC.
Bytes craft(std::uint8_t type, std::uint32_t count, const Bytes& body) {
    Bytes d(kHeaderSize + body.size());
    poke<std::uint32_t>(d, 0, kMagic);
    poke<std::uint8_t>(d, 4, kVersionMajor);
    poke<std::uint8_t>(d, 5, kVersionMinor);
    poke<std::uint16_t>(d, 6, static_cast<std::uint16_t>(kHeaderSize));
    poke<std::uint8_t>(d, 8, type);
    poke<std::uint32_t>(d, 12, 1);
    poke<std::uint32_t>(d, 40, count);
    poke<std::uint32_t>(d, 44, static_cast<std::uint32_t>(body.size()));
    if (!body.empty()) std::memcpy(d.data() + kHeaderSize, body.data(), body.size());
    fixCrc(d);
    return d;
}

template <class T>
void append(Bytes& b, const T& v) {
    const std::size_t at = b.size();
    b.resize(at + sizeof(T));
    std::memcpy(b.data() + at, &v, sizeof(T));
}

Bytes msgEntry(std::uint32_t len, std::uint16_t flags, std::uint32_t fragOffset) {
    MessageHeader h{};
    h.length.set(len);
    h.flags.set(flags);
    h.reserved.set(0);
    h.publisherId.set(1);
    h.fragOffset.set(fragOffset);
    h.pubSeq.set(1);
    h.publishTsNs.set(0);
    Bytes b(sizeof h + len, std::byte{0x5A});
    std::memcpy(b.data(), &h, sizeof h);
    poke<std::uint32_t>(b, kEntryCrcCovered, entryCrc(std::span<const std::byte>(b).first(kEntryCrcCovered),
                                                       std::span<const std::byte>(b).subspan(sizeof h)));
    return b;
}

Bytes nakBody(std::initializer_list<std::pair<std::uint64_t, std::uint32_t>> ranges) {
    Bytes b;
    for (auto [first, count] : ranges) {
        NakRange r{};
        r.first.set(first);
        r.count.set(count);
        r.reserved.set(0);
        append(b, r);
    }
    return b;
}

bool within(std::span<const std::byte> inner, std::span<const std::byte> outer) {
    return inner.data() >= outer.data() && inner.data() + inner.size() <= outer.data() + outer.size();
}

// Walks everything an accessor can reach in a decoded view; returns false if anything lies outside.
bool viewInBounds(const DatagramView& v) {
    if (!within(v.body, v.bytes)) return false;
    switch (v.type) {
        case FrameType::Data:
        case FrameType::Pub: {
            MessageIterator it(v);
            MessageView m;
            std::uint32_t n = 0;
            std::size_t used = 0;
            while (it.next(m)) {
                if (!within(m.payload, v.body)) return false;
                used += kMessageHeaderSize + m.payload.size();
                ++n;
            }
            return n == v.count && used == v.body.size();
        }
        case FrameType::Nak:
            if (v.body.size() != std::size_t{v.count} * sizeof(NakRange)) return false;
            for (std::uint32_t i = 0; i < v.count; ++i) {
                auto r = nakRange(v, i);
                if (r.count == 0 || r.count > kMaxNakRangeCount) return false;
            }
            return true;
        case FrameType::PubAck:
            if (v.body.size() != sizeof(PubAckBody) + std::size_t{v.count} * sizeof(PubAckRun)) return false;
            (void)pubAckPublisher(v);
            for (std::uint32_t i = 0; i < v.count; ++i)
                if (pubAckRun(v, i).stride == 0) return false;
            return true;
        case FrameType::Heartbeat: return v.body.size() == sizeof(HeartbeatBody);
        case FrameType::PubNak: return v.body.size() == sizeof(PubNakBody);
        case FrameType::ReplayRequest: return v.body.size() == sizeof(ReplayRequestBody);
        case FrameType::ReplayEnd: return v.body.size() == sizeof(ReplayEndBody);
        case FrameType::EndOfStream: return v.body.empty();
        case FrameType::ReplAck:
        case FrameType::ReplJoin: return v.body.size() == 8;
        case FrameType::ReplSnapshot:
            if (v.body.size() != sizeof(ReplSnapshotBody) + std::size_t{v.count} * sizeof(ReplPublisher)) return false;
            for (std::uint32_t i = 0; i < v.count; ++i) (void)replPublisher(v, i);
            return replSnapshot(v).chunk < replSnapshot(v).chunks;
    }
    return false;
}

std::vector<MessageView> messages(const DatagramView& v) {
    std::vector<MessageView> out;
    MessageIterator it(v);
    MessageView m;
    while (it.next(m)) out.push_back(m);
    return out;
}

bool sameBytes(std::span<const std::byte> a, std::span<const std::byte> b) {
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin());
}

}  // namespace

TEST_CASE("names") {
    CHECK(frameTypeName(FrameType::Data) == "DATA");
    CHECK(frameTypeName(FrameType::EndOfStream) == "END_OF_STREAM");
    CHECK(frameTypeName(static_cast<FrameType>(42)) == "UNKNOWN");
    CHECK(decodeErrorName(DecodeError::Ok) == "ok");
    CHECK(decodeErrorName(DecodeError::Truncated) == "truncated");
    CHECK(decodeErrorName(DecodeError::BadMagic) == "bad magic");
    CHECK(decodeErrorName(DecodeError::UnsupportedVersion) == "unsupported version");
    CHECK(decodeErrorName(DecodeError::BadCrc) == "bad crc");
    CHECK(decodeErrorName(DecodeError::BadBody) == "bad body");
    CHECK(decodeErrorName(DecodeError::Count_) == "unknown");
    for (std::size_t i = 0; i < kDecodeErrorCount; ++i)
        CHECK_FALSE(decodeErrorName(static_cast<DecodeError>(i)).empty());
}

TEST_CASE("header layout on the wire") {
    const Bytes d = test::sampleHeartbeat();
    REQUIRE(d.size() == kHeaderSize + 8);
    // 'S' 'Q' 'C' 'T'
    CHECK(d[0] == std::byte{'S'});
    CHECK(d[1] == std::byte{'Q'});
    CHECK(d[2] == std::byte{'C'});
    CHECK(d[3] == std::byte{'T'});
    CHECK(peek<std::uint8_t>(d, 4) == 2);
    CHECK(peek<std::uint8_t>(d, 5) == 0);
    CHECK(peek<std::uint16_t>(d, 6) == 48);
    CHECK(peek<std::uint8_t>(d, 8) == 2);
    CHECK(peek<std::uint8_t>(d, 9) == 0);
    CHECK(peek<std::uint32_t>(d, 12) == test::kStream.get());
    CHECK(d[12] == std::byte{0x04});  // little-endian
    CHECK(peek<std::uint32_t>(d, 16) == test::kEpoch.get());
    CHECK(peek<std::uint32_t>(d, 20) == datagramCrc(d));
    CHECK(peek<std::uint64_t>(d, 24) == 5000);
    CHECK(peek<std::uint64_t>(d, 32) == test::kTs + 3);
    CHECK(peek<std::uint32_t>(d, 40) == 0);
    CHECK(peek<std::uint32_t>(d, 44) == 8);
    CHECK(peek<std::uint64_t>(d, 48) == 4000);
    // The CRC is CRC32C of the datagram with the CRC field zeroed.
    Bytes z = d;
    poke<std::uint32_t>(z, kCrcFieldOffset, 0);
    CHECK(crc32c(z) == peek<std::uint32_t>(d, 20));
}

TEST_CASE("round trip: DATA with whole messages and a first fragment") {
    const Bytes d = test::sampleData();
    CHECK(d.size() == kDefaultMtu);
    DatagramView v;
    REQUIRE(decode(d, v) == DecodeError::Ok);
    CHECK(v.type == FrameType::Data);
    CHECK(v.versionMinor == kVersionMinor);
    CHECK(v.flags == kFlagRetransmit);
    CHECK(v.stream == test::kStream);
    CHECK(v.epoch == test::kEpoch);
    CHECK(v.firstOffset == Offset{1000});
    CHECK(v.senderTsNs == test::kTs);
    CHECK(v.count == 4);
    CHECK(v.bytes.data() == d.data());
    CHECK(v.bytes.size() == d.size());
    CHECK(v.body.data() == d.data() + kHeaderSize);
    CHECK(viewInBounds(v));

    const auto ms = messages(v);
    REQUIRE(ms.size() == 4);
    const Bytes m0 = test::patternBytes(17, 0), m2 = test::patternBytes(100, 2), big = test::patternBytes(5000, 3);
    CHECK(ms[0].publisher == PublisherId{11});
    CHECK(ms[0].pubSeq == PubSeq{1});
    CHECK(ms[0].publishTsNs == 101);
    CHECK(ms[0].whole());
    CHECK(ms[0].fragOffset == 0);
    CHECK(sameBytes(ms[0].payload, m0));
    CHECK(ms[1].publisher == PublisherId{12});
    CHECK(ms[1].pubSeq == PubSeq{2});
    CHECK(ms[1].publishTsNs == 102);
    CHECK(ms[1].whole());
    CHECK(ms[1].payload.empty());
    CHECK(ms[2].publisher == PublisherId{11});
    CHECK(ms[2].pubSeq == PubSeq{3});
    CHECK(ms[2].whole());
    CHECK(sameBytes(ms[2].payload, m2));
    CHECK(ms[3].publisher == PublisherId{13});
    CHECK(ms[3].pubSeq == PubSeq{4});
    CHECK(ms[3].publishTsNs == 104);
    CHECK(ms[3].first());
    CHECK_FALSE(ms[3].last());
    CHECK(ms[3].fragOffset == 0);
    const std::size_t expect = kDefaultMtu - kHeaderSize - 4 * kMessageHeaderSize - 17 - 100;
    CHECK(ms[3].payload.size() == expect);
    CHECK(sameBytes(ms[3].payload, std::span<const std::byte>(big).first(expect)));
}

TEST_CASE("round trip: DATA with middle and last fragments") {
    const Bytes d = test::sampleDataFragments();
    DatagramView v;
    REQUIRE(decode(d, v) == DecodeError::Ok);
    CHECK(v.type == FrameType::Data);
    CHECK(v.flags == 0);
    CHECK(v.firstOffset == Offset{2000});
    CHECK(v.senderTsNs == test::kTs + 1);
    REQUIRE(v.count == 3);
    const auto ms = messages(v);
    REQUIRE(ms.size() == 3);
    const Bytes a = test::patternBytes(1000, 5), b = test::patternBytes(60, 6), c = test::patternBytes(8, 7);
    CHECK(ms[0].flags == 0);
    CHECK(ms[0].fragOffset == 500);
    CHECK(ms[0].publisher == PublisherId{21});
    CHECK(ms[0].pubSeq == PubSeq{9});
    CHECK(ms[0].publishTsNs == 201);
    CHECK(sameBytes(ms[0].payload, std::span<const std::byte>(a).subspan(500, 100)));
    CHECK(ms[1].flags == kFragLast);
    CHECK(ms[1].fragOffset == 40);
    CHECK(sameBytes(ms[1].payload, std::span<const std::byte>(b).subspan(40)));
    CHECK(ms[2].flags == kUnfragmented);
    CHECK(sameBytes(ms[2].payload, c));
}

TEST_CASE("round trip: PUB, and DATA rebuilt from PUB entries with appendEntry") {
    const Bytes d = test::samplePub();
    DatagramView v;
    REQUIRE(decode(d, v) == DecodeError::Ok);
    CHECK(v.type == FrameType::Pub);
    CHECK(v.stream == test::kStream);
    CHECK(v.epoch == test::kEpoch);
    CHECK(v.senderTsNs == test::kTs + 2);
    REQUIRE(v.count == 2);
    const auto ms = messages(v);
    const Bytes m = test::patternBytes(40, 8);
    CHECK(ms[0].publisher == PublisherId{31});
    CHECK(ms[0].pubSeq == PubSeq{77});
    CHECK(ms[0].publishTsNs == 301);
    CHECK(ms[1].pubSeq == PubSeq{78});
    CHECK(ms[1].publishTsNs == 302);
    CHECK(sameBytes(ms[0].payload, m));
    CHECK(sameBytes(ms[1].payload, m));

    Bytes out(kDefaultMtu);
    DatagramWriter w(out);
    w.begin(FrameType::Data, StreamId{9}, Epoch{3}, Offset{55});
    for (const auto& x : ms) CHECK(w.appendEntry(x));
    out.resize(w.finish(99));
    DatagramView dv;
    REQUIRE(decode(out, dv) == DecodeError::Ok);
    CHECK(dv.type == FrameType::Data);
    CHECK(dv.firstOffset == Offset{55});
    CHECK(sameBytes(dv.body, v.body));  // entries copied verbatim
}

TEST_CASE("round trip: HEARTBEAT") {
    const Bytes d = test::sampleHeartbeat();
    DatagramView v;
    REQUIRE(decode(d, v) == DecodeError::Ok);
    CHECK(v.type == FrameType::Heartbeat);
    CHECK(v.stream == test::kStream);
    CHECK(v.epoch == test::kEpoch);
    CHECK(v.firstOffset == Offset{5000});
    CHECK(v.senderTsNs == test::kTs + 3);
    CHECK(v.count == 0);
    CHECK(heartbeatOldest(v) == Offset{4000});
    CHECK(v.flags == 0);
}

TEST_CASE("HEARTBEAT after the end carries the END flag (bit 2 of the header flags, byte 10)") {
    Bytes d(kHeaderSize + sizeof(HeartbeatBody));
    REQUIRE(encodeHeartbeat(d, test::kStream, test::kEpoch, Offset{6000}, Offset{10}, test::kTs, kFlagEnd) == d.size());
    CHECK(static_cast<unsigned>(d[10]) == 4u);
    CHECK(static_cast<unsigned>(d[11]) == 0u);
    DatagramView v;
    REQUIRE(decode(d, v) == DecodeError::Ok);
    CHECK(v.type == FrameType::Heartbeat);
    CHECK(v.flags == kFlagEnd);
    CHECK(v.firstOffset == Offset{6000});
    CHECK(heartbeatOldest(v) == Offset{10});
}

TEST_CASE("round trip: NAK with several ranges") {
    const Bytes d = test::sampleNak();
    DatagramView v;
    REQUIRE(decode(d, v) == DecodeError::Ok);
    CHECK(v.type == FrameType::Nak);
    CHECK(v.senderTsNs == test::kTs + 4);
    REQUIRE(v.count == 3);
    CHECK(nakRange(v, 0).first == Offset{10});
    CHECK(nakRange(v, 0).count == 5);
    CHECK(nakRange(v, 1).first == Offset{100});
    CHECK(nakRange(v, 1).count == 1);
    CHECK(nakRange(v, 2).first == Offset{0xFFFFFFFF00ull});
    CHECK(nakRange(v, 2).count == kMaxNakRangeCount);
}

TEST_CASE("round trip: PUB_ACK with runs") {
    const Bytes d = test::samplePubAck();
    DatagramView v;
    REQUIRE(decode(d, v) == DecodeError::Ok);
    CHECK(v.type == FrameType::PubAck);
    CHECK(v.senderTsNs == test::kTs + 5);
    REQUIRE(v.count == 2);
    CHECK(pubAckPublisher(v) == PublisherId{41});
    const auto r0 = pubAckRun(v, 0), r1 = pubAckRun(v, 1);
    CHECK(r0.firstPubSeq == PubSeq{1});
    CHECK(r0.firstOffset == Offset{100});
    CHECK(r0.count == 10);
    CHECK(r0.stride == 1);
    CHECK(r1.firstPubSeq == PubSeq{11});
    CHECK(r1.firstOffset == Offset{200});
    CHECK(r1.count == 3);
    CHECK(r1.stride == 790);
}

TEST_CASE("round trip: PUB_NAK") {
    const Bytes d = test::samplePubNak();
    DatagramView v;
    REQUIRE(decode(d, v) == DecodeError::Ok);
    CHECK(v.type == FrameType::PubNak);
    CHECK(v.stream == test::kStream);
    CHECK(v.epoch == test::kEpoch);
    CHECK(v.count == 0);
    CHECK(v.senderTsNs == test::kTs + 6);
    const auto p = pubNak(v);
    CHECK(p.publisher == PublisherId{51});
    CHECK(p.reason == PubNakReason::Gap);
    CHECK(p.expected == PubSeq{123});
    CHECK(p.heldFrom == PubSeq{130});
    CHECK(v.body.size() == 24);
    for (auto r : {PubNakReason::UnknownPublisher, PubNakReason::TooManyPublishers, PubNakReason::TooLarge}) {
        Bytes b(100);
        b.resize(encodePubNak(b, test::kStream, test::kEpoch, PublisherId{1}, r, PubSeq{2}, PubSeq{0}, 3));
        REQUIRE(decode(b, v) == DecodeError::Ok);
        CHECK(pubNak(v).reason == r);
        CHECK(pubNak(v).heldFrom == PubSeq{0});
    }
}

TEST_CASE("round trip: REPLAY_REQUEST") {
    const Bytes d = test::sampleReplayRequest();
    DatagramView v;
    REQUIRE(decode(d, v) == DecodeError::Ok);
    CHECK(v.type == FrameType::ReplayRequest);
    CHECK(v.stream == test::kStream);
    CHECK(v.epoch == Epoch{0});
    CHECK(v.firstOffset == Offset{300});
    CHECK(v.senderTsNs == test::kTs + 7);
    const auto r = replayRequest(v);
    CHECK(r.requestId == 0xABCDu);
    CHECK(r.from == Offset{300});
    CHECK(r.to == kOffsetOpen);
    CHECK(r.flags == (kReplayLive | kReplayWait));

    Bytes b(100);
    b.resize(encodeReplayRequest(b, test::kStream, 1, Offset{10}, 20, 0, 0));
    REQUIRE(decode(b, v) == DecodeError::Ok);
    CHECK(replayRequest(v).to == 20);
    CHECK(replayRequest(v).flags == 0);
}

TEST_CASE("round trip: REPLAY_END") {
    const Bytes d = test::sampleReplayEnd();
    DatagramView v;
    REQUIRE(decode(d, v) == DecodeError::Ok);
    CHECK(v.type == FrameType::ReplayEnd);
    CHECK(v.epoch == test::kEpoch);
    CHECK(v.firstOffset == Offset{900});
    CHECK(v.senderTsNs == test::kTs + 8);
    const auto r = replayEnd(v);
    CHECK(r.requestId == 0xABCDu);
    CHECK(r.status == ReplayStatus::Overwritten);
    CHECK(r.nextOffset == Offset{900});
    CHECK(r.earliestOffset == Offset{400});
}

TEST_CASE("round trip: END_OF_STREAM") {
    const Bytes d = test::sampleEndOfStream();
    CHECK(d.size() == kHeaderSize);
    DatagramView v;
    REQUIRE(decode(d, v) == DecodeError::Ok);
    CHECK(v.type == FrameType::EndOfStream);
    CHECK(v.firstOffset == Offset{6000});
    CHECK(v.senderTsNs == test::kTs + 9);
    CHECK(v.count == 0);
    CHECK(v.body.empty());
}

TEST_CASE("every prefix of every frame type is rejected as truncated") {
    for (const auto& s : test::allSamples()) {
        CAPTURE(s.name);
        DatagramView v;
        REQUIRE(decode(s.bytes, v) == DecodeError::Ok);
        std::size_t wrong = 0, firstWrong = 0;
        for (std::size_t n = 0; n < s.bytes.size(); ++n) {
            DatagramView t;
            const auto e = decode(std::span<const std::byte>(s.bytes).first(n), t);
            // Below 48 bytes: too short for the header; from 48 on, bodyLen promises more than is there.
            if (e != DecodeError::Truncated && wrong++ == 0) firstWrong = n;
        }
        CHECK_MESSAGE(wrong == 0, "first wrong prefix length ", firstWrong);
    }
}

TEST_CASE("short prefixes: magic and major version are reported when present") {
    Bytes d = test::sampleEndOfStream();
    DatagramView v;
    d[0] = std::byte{'X'};
    for (std::size_t n = 0; n < 4; ++n) CHECK(decode(std::span<const std::byte>(d).first(n), v) == DecodeError::Truncated);
    for (std::size_t n = 4; n <= d.size(); ++n) CHECK(decode(std::span<const std::byte>(d).first(n), v) == DecodeError::BadMagic);
    for (std::uint8_t major : {1, 3}) {  // v1 (no entry CRCs) is refused as a version, not misread
        d = test::sampleEndOfStream();
        d[4] = std::byte{major};
        for (std::size_t n = 5; n <= d.size(); ++n)
            CHECK(decode(std::span<const std::byte>(d).first(n), v) == DecodeError::UnsupportedVersion);
    }
}

TEST_CASE("datagram longer than headerLen + bodyLen is rejected") {
    Bytes d = test::sampleHeartbeat();
    d.push_back(std::byte{0});
    DatagramView v;
    CHECK(decode(d, v) == DecodeError::BadBodyLength);
}

TEST_CASE("every decode error is reachable, in check order") {
    DatagramView v;
    Bytes d = test::sampleHeartbeat();
    d[1] = std::byte{0};
    CHECK(decode(d, v) == DecodeError::BadMagic);

    d = test::sampleHeartbeat();
    for (int major : {0, 1, 3, 255}) {
        d[4] = static_cast<std::byte>(major);
        CHECK(decode(d, v) == DecodeError::UnsupportedVersion);
    }

    d = test::sampleHeartbeat();
    for (std::uint16_t hl : {0, 1, 47}) {
        poke<std::uint16_t>(d, 6, hl);
        CHECK(decode(d, v) == DecodeError::BadHeaderLength);
    }
    poke<std::uint16_t>(d, 6, 57);  // beyond the datagram
    CHECK(decode(d, v) == DecodeError::Truncated);

    d = test::sampleHeartbeat();
    poke<std::uint32_t>(d, 44, 7);
    CHECK(decode(d, v) == DecodeError::BadBodyLength);
    poke<std::uint32_t>(d, 44, 9);
    CHECK(decode(d, v) == DecodeError::Truncated);
    poke<std::uint32_t>(d, 44, 0xFFFFFFFFu);
    CHECK(decode(d, v) == DecodeError::Truncated);

    d = test::sampleHeartbeat();
    d[20] ^= std::byte{1};
    CHECK(decode(d, v) == DecodeError::BadCrc);
    CHECK(decode(d, v, false) == DecodeError::Ok);  // CRC check skipped

    for (std::uint8_t t : {0, 13, 255}) {
        CHECK(decode(craft(t, 0, {}), v) == DecodeError::UnknownType);
    }
}

TEST_CASE("body validation") {
    DatagramView v;
    const auto data = static_cast<std::uint8_t>(FrameType::Data);
    const auto pub = static_cast<std::uint8_t>(FrameType::Pub);
    auto cat = [](std::initializer_list<Bytes> parts) {
        Bytes b;
        for (const auto& p : parts) b.insert(b.end(), p.begin(), p.end());
        return b;
    };

    SUBCASE("DATA / PUB entries") {
        for (auto t : {data, pub}) {
            CHECK(decode(craft(t, 0, {}), v) == DecodeError::Ok);  // empty DATA is legal
            CHECK(decode(craft(t, 1, msgEntry(10, kUnfragmented, 0)), v) == DecodeError::Ok);
            CHECK(decode(craft(t, 1, msgEntry(0, kUnfragmented, 0)), v) == DecodeError::Ok);
            CHECK(decode(craft(t, 2, cat({msgEntry(3, kUnfragmented, 0), msgEntry(4, kFragFirst, 0)})), v) ==
                  DecodeError::Ok);
            // count and body disagree
            CHECK(decode(craft(t, 2, msgEntry(10, kUnfragmented, 0)), v) == DecodeError::BadBody);
            CHECK(decode(craft(t, 0, msgEntry(10, kUnfragmented, 0)), v) == DecodeError::BadBody);
            CHECK(decode(craft(t, 1, cat({msgEntry(3, kUnfragmented, 0), msgEntry(4, kUnfragmented, 0)})), v) ==
                  DecodeError::BadBody);
            CHECK(decode(craft(t, 0xFFFFFFFFu, msgEntry(3, kUnfragmented, 0)), v) == DecodeError::BadBody);
            // entry length overruns the body
            Bytes e = msgEntry(10, kUnfragmented, 0);
            e.pop_back();
            CHECK(decode(craft(t, 1, e), v) == DecodeError::BadBody);
            e = msgEntry(10, kUnfragmented, 0);
            poke<std::uint32_t>(e, 0, 0xFFFFFFFFu);
            CHECK(decode(craft(t, 1, e), v) == DecodeError::BadBody);
            // partial entry header
            CHECK(decode(craft(t, 1, Bytes(kMessageHeaderSize - 1)), v) == DecodeError::BadBody);
            // FIRST must have fragOffset 0; a non-first must not
            CHECK(decode(craft(t, 1, msgEntry(4, kFragFirst, 8)), v) == DecodeError::BadBody);
            CHECK(decode(craft(t, 1, msgEntry(4, kUnfragmented, 8)), v) == DecodeError::BadBody);
            CHECK(decode(craft(t, 1, msgEntry(4, 0, 0)), v) == DecodeError::BadBody);
            CHECK(decode(craft(t, 1, msgEntry(4, kFragLast, 0)), v) == DecodeError::BadBody);
            CHECK(decode(craft(t, 1, msgEntry(4, kFragLast, 8)), v) == DecodeError::Ok);
            CHECK(decode(craft(t, 1, msgEntry(4, 0, 8)), v) == DecodeError::Ok);
            // a fragment's end must not pass 2^32 - 1
            CHECK(decode(craft(t, 1, msgEntry(4, kFragLast, 0xFFFFFFFBu)), v) == DecodeError::Ok);
            CHECK(decode(craft(t, 1, msgEntry(4, kFragLast, 0xFFFFFFFCu)), v) == DecodeError::BadBody);
            // unknown entry flag bits are not checked
            CHECK(decode(craft(t, 1, msgEntry(4, kUnfragmented | 0x8000, 0)), v) == DecodeError::Ok);
        }
    }
    SUBCASE("HEARTBEAT") {
        const auto t = static_cast<std::uint8_t>(FrameType::Heartbeat);
        CHECK(decode(craft(t, 0, Bytes(8)), v) == DecodeError::Ok);
        CHECK(decode(craft(t, 1, Bytes(8)), v) == DecodeError::BadBody);
        CHECK(decode(craft(t, 0, Bytes(7)), v) == DecodeError::BadBody);
        CHECK(decode(craft(t, 0, Bytes(16)), v) == DecodeError::BadBody);
    }
    SUBCASE("NAK") {
        const auto t = static_cast<std::uint8_t>(FrameType::Nak);
        CHECK(decode(craft(t, 1, nakBody({{5, 1}})), v) == DecodeError::Ok);
        CHECK(decode(craft(t, 0, {}), v) == DecodeError::BadBody);  // at least one range
        CHECK(decode(craft(t, 2, nakBody({{5, 1}})), v) == DecodeError::BadBody);
        CHECK(decode(craft(t, 1, nakBody({{5, 0}})), v) == DecodeError::BadBody);
        CHECK(decode(craft(t, 1, nakBody({{5, kMaxNakRangeCount}})), v) == DecodeError::Ok);
        CHECK(decode(craft(t, 1, nakBody({{5, kMaxNakRangeCount + 1}})), v) == DecodeError::BadBody);
        CHECK(decode(craft(t, 2, nakBody({{5, 1}, {9, 0}})), v) == DecodeError::BadBody);
        // first + count must not pass 2^64 - 1
        CHECK(decode(craft(t, 1, nakBody({{kOffsetOpen - 2, 2}})), v) == DecodeError::Ok);
        CHECK(decode(craft(t, 1, nakBody({{kOffsetOpen - 2, 3}})), v) == DecodeError::BadBody);
        CHECK(decode(craft(t, 1, nakBody({{kOffsetOpen, 1}})), v) == DecodeError::BadBody);
    }
    SUBCASE("PUB_ACK") {
        const auto t = static_cast<std::uint8_t>(FrameType::PubAck);
        auto run = [](std::uint32_t count, std::uint32_t stride) {
            PubAckRun r{};
            r.firstPubSeq.set(1);
            r.firstOffset.set(2);
            r.count.set(count);
            r.stride.set(stride);
            Bytes b;
            append(b, r);
            return b;
        };
        CHECK(decode(craft(t, 0, Bytes(8)), v) == DecodeError::Ok);  // publisher only, no runs
        CHECK(decode(craft(t, 0, {}), v) == DecodeError::BadBody);
        CHECK(decode(craft(t, 1, cat({Bytes(8), run(1, 1)})), v) == DecodeError::Ok);
        CHECK(decode(craft(t, 2, cat({Bytes(8), run(1, 1)})), v) == DecodeError::BadBody);
        CHECK(decode(craft(t, 1, cat({Bytes(8), run(0, 1)})), v) == DecodeError::BadBody);
        CHECK(decode(craft(t, 1, cat({Bytes(8), run(1, 0)})), v) == DecodeError::BadBody);
        CHECK(decode(craft(t, 1, cat({Bytes(4), run(1, 1)})), v) == DecodeError::BadBody);
    }
    SUBCASE("PUB_NAK") {
        const auto t = static_cast<std::uint8_t>(FrameType::PubNak);
        auto body = [](std::uint32_t reason) {
            PubNakBody b{};
            b.publisherId.set(1);
            b.reason.set(reason);
            b.expectedPubSeq.set(2);
            b.heldFromPubSeq.set(5);
            Bytes x;
            append(x, b);
            return x;
        };
        for (std::uint32_t r = 1; r <= 5; ++r) CHECK(decode(craft(t, 0, body(r)), v) == DecodeError::Ok);
        CHECK(decode(craft(t, 0, body(0)), v) == DecodeError::BadBody);
        CHECK(decode(craft(t, 0, body(6)), v) == DecodeError::BadBody);
        CHECK(decode(craft(t, 1, body(1)), v) == DecodeError::BadBody);
        CHECK(decode(craft(t, 0, cat({body(1), Bytes(1)})), v) == DecodeError::BadBody);
        Bytes shortBody = body(1);
        shortBody.resize(16);  // the 16-byte body of early drafts
        CHECK(decode(craft(t, 0, shortBody), v) == DecodeError::BadBody);
    }
    SUBCASE("REPLAY_REQUEST") {
        const auto t = static_cast<std::uint8_t>(FrameType::ReplayRequest);
        auto body = [](std::uint64_t from, std::uint64_t to) {
            ReplayRequestBody b{};
            b.requestId.set(1);
            b.from.set(from);
            b.to.set(to);
            b.flags.set(0xFFFFFFFFu);  // unknown flag bits are not checked
            b.reserved.set(0);
            Bytes x;
            append(x, b);
            return x;
        };
        CHECK(decode(craft(t, 0, body(1, 2)), v) == DecodeError::Ok);
        CHECK(decode(craft(t, 0, body(0, kOffsetOpen)), v) == DecodeError::Ok);
        CHECK(decode(craft(t, 0, body(2, 2)), v) == DecodeError::BadBody);  // empty range
        CHECK(decode(craft(t, 0, body(3, 2)), v) == DecodeError::BadBody);
        CHECK(decode(craft(t, 1, body(1, 2)), v) == DecodeError::BadBody);
        CHECK(decode(craft(t, 0, Bytes(31)), v) == DecodeError::BadBody);
    }
    SUBCASE("REPLAY_END") {
        const auto t = static_cast<std::uint8_t>(FrameType::ReplayEnd);
        auto body = [](std::uint32_t status) {
            ReplayEndBody b{};
            b.requestId.set(1);
            b.status.set(status);
            b.reserved.set(0);
            b.nextOffset.set(1);
            b.earliestOffset.set(0);
            Bytes x;
            append(x, b);
            return x;
        };
        for (std::uint32_t s = 0; s <= 5; ++s) CHECK(decode(craft(t, 0, body(s)), v) == DecodeError::Ok);
        CHECK(decode(craft(t, 0, body(6)), v) == DecodeError::BadBody);
        CHECK(decode(craft(t, 3, body(0)), v) == DecodeError::BadBody);
        CHECK(decode(craft(t, 0, Bytes(33)), v) == DecodeError::BadBody);
    }
    SUBCASE("END_OF_STREAM") {
        const auto t = static_cast<std::uint8_t>(FrameType::EndOfStream);
        CHECK(decode(craft(t, 0, {}), v) == DecodeError::Ok);
        CHECK(decode(craft(t, 1, {}), v) == DecodeError::BadBody);
        CHECK(decode(craft(t, 0, Bytes(1)), v) == DecodeError::BadBody);
    }
}

TEST_CASE("every single-bit flip of a DATA datagram is detected") {
    const Bytes good = test::sampleData();
    DatagramView v;
    REQUIRE(decode(good, v) == DecodeError::Ok);
    Bytes d = good;
    std::size_t undetected = 0, firstBad = 0;
    for (std::size_t bit = 0; bit < d.size() * 8; ++bit) {
        const auto mask = static_cast<std::byte>(1u << (bit % 8));
        d[bit / 8] ^= mask;
        DatagramView t;
        if (decode(d, t) == DecodeError::Ok && undetected++ == 0) firstBad = bit;
        d[bit / 8] ^= mask;
    }
    CHECK_MESSAGE(undetected == 0, "first undetected bit ", firstBad);
    CHECK(d == good);
}

TEST_CASE("forward compatibility: larger minor, unknown flags, longer header") {
    for (const auto& s : test::allSamples()) {
        CAPTURE(s.name);
        DatagramView orig;
        REQUIRE(decode(s.bytes, orig) == DecodeError::Ok);

        // A v1.7 writer appends 16 bytes of header fields the v1.0 reader does not know.
        Bytes d(s.bytes.begin(), s.bytes.begin() + kHeaderSize);
        for (int i = 0; i < 16; ++i) d.push_back(static_cast<std::byte>(0xC0 + i));
        d.insert(d.end(), s.bytes.begin() + kHeaderSize, s.bytes.end());
        poke<std::uint8_t>(d, 5, 7);
        poke<std::uint16_t>(d, 6, static_cast<std::uint16_t>(kHeaderSize + 16));
        poke<std::uint16_t>(d, 10, static_cast<std::uint16_t>(orig.flags | 0xFFF0u));
        poke<std::uint8_t>(d, 9, 0xEE);  // reserved byte: ignored
        fixCrc(d);

        DatagramView v;
        REQUIRE(decode(d, v) == DecodeError::Ok);
        CHECK(v.type == orig.type);
        CHECK(v.versionMinor == 7);
        CHECK(v.flags == (orig.flags | 0xFFF0u));
        CHECK(v.stream == orig.stream);
        CHECK(v.epoch == orig.epoch);
        CHECK(v.firstOffset == orig.firstOffset);
        CHECK(v.senderTsNs == orig.senderTsNs);
        CHECK(v.count == orig.count);
        CHECK(v.body.data() == d.data() + kHeaderSize + 16);
        CHECK(sameBytes(v.body, orig.body));
        CHECK(viewInBounds(v));
        if (v.type == FrameType::Data || v.type == FrameType::Pub) {
            const auto a = messages(orig), b = messages(v);
            REQUIRE(a.size() == b.size());
            for (std::size_t i = 0; i < a.size(); ++i) {
                CHECK(a[i].pubSeq == b[i].pubSeq);
                CHECK(a[i].flags == b[i].flags);
                CHECK(sameBytes(a[i].payload, b[i].payload));
            }
        }

        // Prefixes of the longer datagram are still truncated.
        for (std::size_t n = 0; n < d.size(); n += 7) {
            DatagramView t;
            CHECK(decode(std::span<const std::byte>(d).first(n), t) == DecodeError::Truncated);
        }

        // An unknown major version is refused before anything else is looked at.
        Bytes m = d;
        poke<std::uint8_t>(m, 4, 3);
        fixCrc(m);
        DatagramView t;
        CHECK(decode(m, t) == DecodeError::UnsupportedVersion);
        CHECK(decodeErrorName(decode(m, t)) == "unsupported version");
    }
}

TEST_CASE("restamp sets flags and keeps the CRC valid") {
    Bytes d = test::sampleDataFragments();
    REQUIRE(restamp(d, kFlagReplay, 424242));
    DatagramView v;
    REQUIRE(decode(d, v) == DecodeError::Ok);
    CHECK(v.flags == kFlagReplay);
    CHECK(v.senderTsNs == 424242);
    CHECK(v.count == 3);
}

TEST_CASE("restamp refuses a datagram whose CRC does not match: damage is never re-signed") {
    const Bytes good = test::sampleDataFragments();
    // One flipped bit anywhere (header, CRC field, payload) and the datagram is left exactly as it was.
    for (std::size_t at = 0; at < good.size(); at += 5) {
        Bytes d = good;
        d[at] ^= std::byte{0x10};
        const Bytes damaged = d;
        CHECK_FALSE(restamp(d, kFlagRetransmit, 77));
        CHECK(sameBytes(d, damaged));
        DatagramView v;
        CHECK(decode(d, v) != DecodeError::Ok);
    }
    Bytes shortOne(kHeaderSize - 1);
    CHECK_FALSE(restamp(shortOne, kFlagRetransmit, 77));
}

TEST_CASE("writer limits") {
    Bytes small(kHeaderSize - 1);
    DatagramWriter w(small);
    w.begin(FrameType::Data, StreamId{1}, Epoch{1}, Offset{0});
    CHECK(w.size() == 0);
    CHECK(w.finish(0) == 0);
    const Bytes m = test::patternBytes(10, 1);
    CHECK_FALSE(w.appendPiece({}, m, 0).has_value());
    CHECK(encodeHeartbeat(small, StreamId{1}, Epoch{1}, Offset{1}, Offset{0}, 0) == 0);
    CHECK(encodeEndOfStream(small, StreamId{1}, Epoch{1}, Offset{1}, 0) == 0);

    Bytes hb(kHeaderSize + 7);
    CHECK(encodeHeartbeat(hb, StreamId{1}, Epoch{1}, Offset{1}, Offset{0}, 0) == 0);

    // Exactly one header fits: a zero-length piece can't be written for a non-empty rest.
    Bytes one(kHeaderSize + kMessageHeaderSize);
    DatagramWriter w1(one);
    w1.begin(FrameType::Data, StreamId{1}, Epoch{1}, Offset{0});
    CHECK(w1.room() == 0);
    CHECK_FALSE(w1.appendPiece({}, m, 0).has_value());
    const auto n = w1.appendPiece({}, {}, 0);  // an empty message fits
    REQUIRE(n.has_value());
    CHECK(*n == 0);
    CHECK_FALSE(w1.fitsMessageHeader());
    one.resize(w1.finish(0));
    DatagramView v;
    REQUIRE(decode(one, v) == DecodeError::Ok);
    CHECK(v.count == 1);

    // maxPiece caps a fragment below the room left.
    {
        const Bytes big = test::patternBytes(1000, 4);
        Bytes b(kDefaultMtu);
        DatagramWriter wm(b);
        wm.begin(FrameType::Data, StreamId{1}, Epoch{1}, Offset{0});
        CHECK(wm.appendPiece({}, big, 0, 100) == std::optional<std::size_t>(100));
        CHECK(wm.appendPiece({}, big, 100, 1000) == std::optional<std::size_t>(900));
        b.resize(wm.finish(0));
        DatagramView dv;
        REQUIRE(decode(b, dv) == DecodeError::Ok);
        const auto ms = messages(dv);
        REQUIRE(ms.size() == 2);
        CHECK(ms[0].flags == kFragFirst);
        CHECK(ms[0].payload.size() == 100);
        CHECK(ms[1].flags == kFragLast);
        CHECK(ms[1].fragOffset == 100);
    }

    // fragOffset past the end is refused.
    Bytes buf(kDefaultMtu);
    DatagramWriter w2(buf);
    w2.begin(FrameType::Data, StreamId{1}, Epoch{1}, Offset{0});
    CHECK_FALSE(w2.appendPiece({}, m, 11).has_value());
    CHECK(w2.empty());
}

TEST_CASE("random bytes never crash the decoder") {
    std::mt19937_64 rng(12345);
    Bytes buf;
    std::size_t ok = 0, outOfBounds = 0;
    std::size_t seen[kDecodeErrorCount] = {};
    for (int i = 0; i < 200000; ++i) {
        const std::size_t n = (i % 4 == 0) ? rng() % 64 : rng() % 1600;
        buf.resize(n);
        for (auto& b : buf) b = static_cast<std::byte>(rng());
        if (i % 2 == 1 && n >= 4) poke<std::uint32_t>(buf, 0, kMagic);  // get past the magic check
        if (i % 4 == 1 && n >= 5) poke<std::uint8_t>(buf, 4, kVersionMajor);
        if (i % 8 == 3 && n >= kHeaderSize) {
            // A well-formed header over a random body: exercises the body checks.
            poke<std::uint8_t>(buf, 4, kVersionMajor);
            poke<std::uint16_t>(buf, 6, static_cast<std::uint16_t>(kHeaderSize));
            poke<std::uint8_t>(buf, 8, static_cast<std::uint8_t>(1 + rng() % kMaxFrameType));
            poke<std::uint32_t>(buf, 40, static_cast<std::uint32_t>(rng() % 3));
            poke<std::uint32_t>(buf, 44, static_cast<std::uint32_t>(n - kHeaderSize));
            fixCrc(buf);
        }
        DatagramView v;
        for (bool crc : {true, false}) {
            const auto e = decode(buf, v, crc);
            REQUIRE(static_cast<std::size_t>(e) < kDecodeErrorCount);
            ++seen[static_cast<std::size_t>(e)];
            if (e == DecodeError::Ok) {
                ++ok;
                if (!viewInBounds(v)) ++outOfBounds;
            }
        }
    }
    CHECK(outOfBounds == 0);
    CHECK(seen[static_cast<std::size_t>(DecodeError::BadMagic)] > 0);
    CHECK(seen[static_cast<std::size_t>(DecodeError::Truncated)] > 0);
    MESSAGE("ok=", ok);
}

TEST_CASE("random mutations of valid datagrams, CRC recomputed") {
    std::mt19937_64 rng(777);
    const auto samples = test::allSamples();
    std::size_t ok = 0, outOfBounds = 0;
    std::size_t seen[kDecodeErrorCount] = {};
    for (int i = 0; i < 200000; ++i) {
        Bytes d = samples[rng() % samples.size()].bytes;
        const int kind = static_cast<int>(rng() % 4);
        const int flips = 1 + static_cast<int>(rng() % 6);
        for (int k = 0; k < flips; ++k) {
            // Mostly hit the body and the count; sometimes anywhere.
            std::size_t at;
            if (kind == 0) at = rng() % d.size();
            else if (kind == 1 && d.size() > kHeaderSize) at = kHeaderSize + rng() % (d.size() - kHeaderSize);
            else at = 40 + rng() % 4;  // count
            if (kind == 3) d[at] = static_cast<std::byte>(rng() % 4);  // small counts
            else d[at] ^= static_cast<std::byte>(1u << (rng() % 8));
        }
        if (rng() % 4 == 0) {  // change the length and keep bodyLen consistent
            const std::size_t n = kHeaderSize + rng() % 200;
            d.resize(n, static_cast<std::byte>(rng()));
            const std::size_t hl = peek<std::uint16_t>(d, 6);
            if (hl <= n) poke<std::uint32_t>(d, 44, static_cast<std::uint32_t>(n - hl));
        }
        if (rng() % 2 == 0 && d.size() >= kHeaderSize) fixCrc(d);
        DatagramView v;
        const auto e = decode(d, v);
        REQUIRE(static_cast<std::size_t>(e) < kDecodeErrorCount);
        ++seen[static_cast<std::size_t>(e)];
        if (e == DecodeError::Ok) {
            ++ok;
            if (!viewInBounds(v)) ++outOfBounds;
        }
    }
    CHECK(outOfBounds == 0);
    CHECK(ok > 0);
    CHECK(seen[static_cast<std::size_t>(DecodeError::BadBody)] > 0);
    CHECK(seen[static_cast<std::size_t>(DecodeError::BadCrc)] > 0);
    CHECK(seen[static_cast<std::size_t>(DecodeError::BadEntryCrc)] > 0);
    MESSAGE("ok=", ok, " bad body=", seen[static_cast<std::size_t>(DecodeError::BadBody)],
            " bad entry crc=", seen[static_cast<std::size_t>(DecodeError::BadEntryCrc)]);
}

// The reserved field of a message header means nothing to a reader, but the entry CRC covers it:
// the sequencer's copy of an entry must carry it unchanged, or every subscriber would refuse it.
TEST_CASE("message header reserved field: ignored on read, copied verbatim") {
    Bytes entry = msgEntry(20, kFragLast, 40);
    poke<std::uint16_t>(entry, 6, 0x0009);
    poke<std::uint32_t>(entry, kEntryCrcCovered, entryCrc(std::span<const std::byte>(entry).first(kEntryCrcCovered),
                                                           std::span<const std::byte>(entry).subspan(kMessageHeaderSize)));
    const Bytes d = craft(static_cast<std::uint8_t>(FrameType::Data), 1, entry);
    DatagramView v;
    REQUIRE(decode(d, v) == DecodeError::Ok);
    const auto ms = messages(v);
    REQUIRE(ms.size() == 1);
    Bytes out(256);
    DatagramWriter w(out);
    w.begin(FrameType::Data, StreamId{1}, Epoch{0}, Offset{0});
    REQUIRE(w.appendEntry(ms[0]));
    out.resize(w.finish(0));
    DatagramView again;
    REQUIRE(decode(out, again) == DecodeError::Ok);
    CHECK(peek<std::uint16_t>(out, kHeaderSize + 6) == 0x0009);
    CHECK(std::memcmp(out.data() + kHeaderSize, d.data() + kHeaderSize, entry.size()) == 0);  // byte for byte
    const auto ys = messages(again);
    REQUIRE(ys.size() == 1);
    CHECK(ys[0].flags == kFragLast);
    CHECK(ys[0].fragOffset == 40);
    CHECK(sameBytes(ys[0].payload, ms[0].payload));
}

// The example datagram in docs/PROTOCOL.md, byte for byte.
TEST_CASE("docs/PROTOCOL.md example END_OF_STREAM") {
    const unsigned char expect[] = {
        0x53, 0x51, 0x43, 0x54, 0x02, 0x00, 0x30, 0x00, 0x09, 0x00, 0x00, 0x00, 0x04, 0x03, 0x02, 0x01,
        0x07, 0x00, 0x00, 0x00, 0xb5, 0xd6, 0x05, 0x7d, 0x70, 0x17, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x91, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    };
    Bytes d(64);
    d.resize(encodeEndOfStream(d, StreamId{0x01020304u}, Epoch{7}, Offset{6000}, 0x1122334455667791ull));
    REQUIRE(d.size() == sizeof expect);
    CHECK(std::memcmp(d.data(), expect, sizeof expect) == 0);
    CHECK(datagramCrc(d) == 0x7D05D6B5u);
}

TEST_CASE("docs/PROTOCOL.md example DATA, entry CRC included") {
    const unsigned char expect[] = {
        0x53, 0x51, 0x43, 0x54, 0x02, 0x00, 0x30, 0x00, 0x01, 0x00, 0x00, 0x00, 0x04, 0x03, 0x02, 0x01,
        0x07, 0x00, 0x00, 0x00, 0xe3, 0x19, 0x90, 0x44, 0x70, 0x17, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x91, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11, 0x01, 0x00, 0x00, 0x00, 0x2d, 0x00, 0x00, 0x00,
        0x05, 0x00, 0x00, 0x00, 0x03, 0x00, 0x00, 0x00, 0x03, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11,
        0xa3, 0x03, 0xac, 0x28, 0x00, 0x00, 0x00, 0x00, 0x68, 0x65, 0x6c, 0x6c, 0x6f,
    };
    const std::string_view hello = "hello";
    Bytes d(256);
    DatagramWriter w(d);
    w.begin(FrameType::Data, StreamId{0x01020304u}, Epoch{7}, Offset{6000});
    REQUIRE(w.appendPiece({PublisherId{3}, PubSeq{1}, 0x1122334455667700ull}, std::as_bytes(std::span(hello)), 0));
    d.resize(w.finish(0x1122334455667791ull));
    REQUIRE(d.size() == sizeof expect);
    CHECK(std::memcmp(d.data(), expect, sizeof expect) == 0);
    CHECK(peek<std::uint32_t>(d, kHeaderSize + 32) == 0x28AC03A3u);
    // The entry CRC is CRC-32C(payload || header bytes 0..31), and the publisher's shortcut (from
    // the payload's CRC taken at offer()) gives the same value.
    Bytes covered(d.begin() + kHeaderSize + kMessageHeaderSize, d.end());
    covered.insert(covered.end(), d.begin() + kHeaderSize, d.begin() + kHeaderSize + 32);
    CHECK(crc32c(covered) == 0x28AC03A3u);
    Bytes d2(256);
    DatagramWriter w2(d2);
    w2.begin(FrameType::Data, StreamId{0x01020304u}, Epoch{7}, Offset{6000});
    REQUIRE(w2.appendPiece({PublisherId{3}, PubSeq{1}, 0x1122334455667700ull}, std::as_bytes(std::span(hello)), 0,
                           ~std::size_t{0}, crc32c(std::as_bytes(std::span(hello)))));
    d2.resize(w2.finish(0x1122334455667791ull));
    CHECK(d2 == d);
}

// End to end: damage made before a datagram is signed (the sequencer's memory between checking a
// PUB and signing its DATA) passes the datagram CRC but never the publisher's entry CRC.
TEST_CASE("entry CRC: damage under a valid datagram CRC is refused, by decode and by restamp") {
    const auto data = test::allSamples();
    std::size_t tried = 0;
    for (const auto& s : data) {
        DatagramView v;
        REQUIRE(decode(s.bytes, v) == DecodeError::Ok);
        if ((v.type != FrameType::Data && v.type != FrameType::Pub) || v.count == 0) continue;
        // Every byte an entry CRC covers: its payload and header bytes 0..31 (never 32..39: the
        // CRC itself is checked by comparison, and bytes 36..39 are not covered).
        std::size_t at = kHeaderSize;
        MessageIterator it(v);
        MessageView m;
        while (it.next(m)) {
            const std::size_t end = at + kMessageHeaderSize + m.payload.size();
            for (std::size_t i = at; i < end; ++i) {
                if (i >= at + kEntryCrcCovered && i < at + kMessageHeaderSize) continue;
                for (unsigned bit : {0u, 7u}) {
                    Bytes d = s.bytes;
                    d[i] ^= static_cast<std::byte>(1u << bit);
                    fixCrc(d);  // re-signed as the sequencer would sign its damaged copy
                    DatagramView t;
                    const auto e = decode(d, t);
                    // A flip in length or flags may break the structure first; otherwise the entry CRC catches it.
                    CHECK((e == DecodeError::BadEntryCrc || e == DecodeError::BadBody));
                    CHECK(decode(d, t, false) != DecodeError::BadEntryCrc);  // skipped with verifyCrc=false
                    CHECK_FALSE(restamp(d, kFlagRetransmit, 1));
                    ++tried;
                }
            }
            at = end;
        }
    }
    CHECK(tried > 1000);
    MESSAGE("damaged copies tried: ", tried);
}

TEST_CASE("HA frames: REPL_ACK, REPL_JOIN and REPL_SNAPSHOT round trip; malformed bodies are refused") {
    DatagramView v;
    Bytes d(64);
    d.resize(encodeReplAck(d, StreamId{1}, Epoch{42}, Offset{1000}, 0xABCDEFull, 5));
    REQUIRE(decode(d, v) == DecodeError::Ok);
    CHECK(v.type == FrameType::ReplAck);
    CHECK(v.epoch.get() == 42);
    CHECK(v.firstOffset.get() == 1000);
    CHECK(replSession(v) == 0xABCDEFull);
    CHECK(frameTypeName(FrameType::ReplAck) == "REPL_ACK");

    d.assign(64, std::byte{0});
    d.resize(encodeReplJoin(d, StreamId{1}, Epoch{42}, 77, 5));
    REQUIRE(decode(d, v) == DecodeError::Ok);
    CHECK(v.type == FrameType::ReplJoin);
    CHECK(replSession(v) == 77);

    auto snapshot = [](std::uint32_t chunk, std::uint32_t chunks, std::uint32_t records, std::uint32_t count) {
        ReplSnapshotBody b{};
        b.session.set(9);
        b.chunk.set(chunk);
        b.chunks.set(chunks);
        b.tableHead.set(500);
        Bytes body;
        append(body, b);
        for (std::uint32_t i = 0; i < records; ++i) {
            ReplPublisher r{};
            r.publisherId.set(100 + i);
            r.nextFrag.set(0);
            r.nextPubSeq.set(1000 + i);
            append(body, r);
        }
        return craft(static_cast<std::uint8_t>(FrameType::ReplSnapshot), count, body);
    };
    const Bytes good = snapshot(1, 2, 3, 3);  // the view points into it
    REQUIRE(decode(good, v) == DecodeError::Ok);
    const auto s = replSnapshot(v);
    CHECK(s.session == 9);
    CHECK(s.chunk == 1);
    CHECK(s.chunks == 2);
    CHECK(s.tableHead == 500);
    CHECK(replPublisher(v, 2).publisherId == 102);
    CHECK(replPublisher(v, 2).nextPubSeq == 1002);
    CHECK(viewInBounds(v));
    CHECK(decode(snapshot(0, 1, 3, 2), v) == DecodeError::BadBody);  // count and body disagree
    CHECK(decode(snapshot(2, 2, 1, 1), v) == DecodeError::BadBody);  // chunk past the last
    CHECK(decode(snapshot(0, 0, 1, 1), v) == DecodeError::BadBody);  // no chunks
    CHECK(decode(craft(static_cast<std::uint8_t>(FrameType::ReplAck), 0, Bytes(7)), v) == DecodeError::BadBody);
    CHECK(decode(craft(static_cast<std::uint8_t>(FrameType::ReplJoin), 1, Bytes(8)), v) == DecodeError::BadBody);
}
