// client::Subscriber driven directly with hand-encoded DATA/HEARTBEAT datagrams over the in-memory
// network and a fake clock; its NAKs are read back at the sequencer's endpoint.
#include <doctest/doctest.h>

#include <array>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "client/subscriber.h"
#include "fabric/clock.h"
#include "fabric/counters.h"
#include "fabric/wire.h"
#include "transport/memory_transport.h"

using namespace seqcast;
using client::Delivery;
using client::DeliveryMode;
using client::StartPosition;
using client::Subscriber;
using client::SubscriberConfig;
using transport::Endpoint;
using transport::MemoryNetwork;
using transport::MemoryTransport;
using transport::RxSlot;
using transport::TxItem;

namespace {

const Endpoint kSeq{0x0A000001u, 4000};
const Endpoint kGroup{0xEF010101u, 5000};
constexpr StreamId kStream{1};
constexpr Epoch kEpoch{3};
constexpr PublisherId kPub{7};
constexpr std::uint64_t kT0 = 5'000'000'000;

std::vector<std::byte> payloadFor(std::uint64_t offset, std::size_t len = 24) {
    std::vector<std::byte> p(len);
    for (std::size_t k = 0; k < len; ++k) p[k] = static_cast<std::byte>((offset * 11 + k) & 0xFF);
    return p;
}

// A DATA datagram with `count` whole messages at offsets first .. first + count - 1 (pub_seq = offset).
std::vector<std::byte> data(std::uint64_t first, std::uint32_t count, std::uint16_t flags = 0,
                            StreamId stream = kStream, Epoch epoch = kEpoch) {
    std::vector<std::byte> buf(wire::kDefaultMtu);
    wire::DatagramWriter w(buf);
    w.begin(wire::FrameType::Data, stream, epoch, Offset{first}, flags);
    for (std::uint64_t o = first; o < first + count; ++o) {
        const auto p = payloadFor(o);
        const auto n = w.appendPiece(wire::MessageFields{kPub, PubSeq{o}, 1000 + o}, p, 0);
        REQUIRE(n);
        REQUIRE(*n == p.size());
    }
    buf.resize(w.finish(kT0));
    return buf;
}

std::vector<std::byte> heartbeat(std::uint64_t next, std::uint64_t oldest) {
    std::vector<std::byte> buf(wire::kDefaultMtu);
    buf.resize(wire::encodeHeartbeat(buf, kStream, kEpoch, Offset{next}, Offset{oldest}, kT0));
    REQUIRE(!buf.empty());
    return buf;
}

struct Got {
    std::uint64_t offset;
    std::uint64_t pubSeq;
    bool repaired;
    std::vector<std::byte> payload;
};

struct Nak {
    Endpoint from;
    StreamId stream;
    Epoch epoch;
    std::vector<std::pair<std::uint64_t, std::uint32_t>> ranges;
};

SubscriberConfig testConfig() {
    SubscriberConfig c;
    c.stream = kStream;
    c.reorderBytes = 1u << 20;
    c.nak.seed = 17;
    return c;
}

struct Rig {
    MemoryNetwork net;
    MemoryTransport seq{net, kSeq};
    MemoryTransport dataT{net, Endpoint{0x0A000100u, 0}, {kGroup}};
    MemoryTransport ctl{net, Endpoint{0x0A000100u, 0}};
    Counters c;
    std::vector<Got> got;
    std::vector<std::pair<std::uint64_t, std::uint64_t>> lost;
    std::unique_ptr<Subscriber> sub;

    explicit Rig(const SubscriberConfig& cfg = testConfig()) {
        client::SubscriberHandlers h;
        h.onMessage = [this](const Delivery& d) {
            CHECK(d.epoch == kEpoch.get());
            CHECK(d.publisher == kPub.get());
            got.push_back(Got{d.offset, d.pubSeq, d.repaired,
                              std::vector<std::byte>(d.payload.begin(), d.payload.end())});
        };
        h.onLoss = [this](Offset f, std::uint64_t n) { lost.emplace_back(f.get(), n); };
        sub = std::make_unique<Subscriber>(cfg, dataT, ctl, c, h);
    }

    void send(const std::vector<std::byte>& d, Endpoint to = kGroup) {
        const TxItem it{d.data(), static_cast<std::uint32_t>(d.size()), to};
        REQUIRE(seq.sendBurst(std::span<const TxItem>(&it, 1)) == 1);
    }
    void work(std::uint64_t now) {
        for (int i = 0; i < 4; ++i) sub->doWork(now);
    }
    // NAK datagrams that reached the sequencer's endpoint.
    std::vector<Nak> naks() {
        std::vector<Nak> out;
        std::array<RxSlot, 16> slots{};
        for (;;) {
            const std::size_t n = seq.recvBurst(slots);
            if (n == 0) break;
            for (std::size_t i = 0; i < n; ++i) {
                wire::DatagramView v;
                REQUIRE(wire::decode(std::span<const std::byte>(slots[i].data, slots[i].len), v) == wire::DecodeError::Ok);
                REQUIRE(v.type == wire::FrameType::Nak);
                Nak k{slots[i].from, v.stream, v.epoch, {}};
                for (std::uint32_t r = 0; r < v.count; ++r) {
                    const auto nr = wire::nakRange(v, r);
                    k.ranges.emplace_back(nr.first.get(), nr.count);
                }
                out.push_back(std::move(k));
            }
        }
        return out;
    }
    std::vector<std::uint64_t> offsets() const {
        std::vector<std::uint64_t> o;
        for (const auto& g : got) o.push_back(g.offset);
        return o;
    }
};

std::vector<std::uint64_t> range(std::uint64_t from, std::uint64_t to) {
    std::vector<std::uint64_t> v;
    for (std::uint64_t o = from; o < to; ++o) v.push_back(o);
    return v;
}

}  // namespace

TEST_SUITE("quick") {

TEST_CASE("in-order datagrams are delivered in order, starting at the first one seen") {
    Rig r;
    CHECK_FALSE(r.sub->started());
    for (std::uint64_t f = 100; f < 130; f += 3) r.send(data(f, 3));
    r.work(kT0);
    CHECK(r.sub->started());
    CHECK(r.sub->epoch() == kEpoch);
    REQUIRE(r.got.size() == 30);
    CHECK(r.offsets() == range(100, 130));
    for (const auto& g : r.got) {
        CHECK(g.pubSeq == g.offset);
        CHECK_FALSE(g.repaired);
        CHECK(g.payload == payloadFor(g.offset));
    }
    CHECK(r.sub->nextOffset() == Offset{130});
    CHECK(r.c.get(Counter::MessagesIn) == 30);
    CHECK(r.c.get(Counter::DatagramsIn) == 10);
    CHECK(r.c.get(Counter::HeadOffset) == 130);
    CHECK_FALSE(r.sub->gaps().hasGaps());
    r.work(kT0 + 1'000'000'000);
    CHECK(r.naks().empty());
    CHECK(r.lost.empty());
}

TEST_CASE("out-of-order datagrams are held and delivered in order") {
    Rig r;
    r.send(data(100, 2));
    r.send(data(106, 2));
    r.send(data(104, 2));
    r.work(kT0);
    CHECK(r.offsets() == range(100, 102));
    CHECK(r.sub->gaps().hasGaps());
    CHECK(r.sub->headOffset() == Offset{108});
    r.send(data(102, 2));
    r.work(kT0 + 1);  // before any NAK is due
    CHECK(r.offsets() == range(100, 108));
    CHECK(r.sub->nextOffset() == Offset{108});
    CHECK_FALSE(r.sub->gaps().hasGaps());
    // Late originals, not a repair: counted apart from suppressed NAKs, in the process counters too.
    CHECK(r.sub->gaps().stats().suppressed == 0);
    CHECK(r.sub->gaps().stats().filledBeforeNak == 1);
    // The process counters follow at once, though no timer ran (no NAK was ever due).
    CHECK(r.c.get(Counter::GapsDetected) == 1);
    CHECK(r.c.get(Counter::NaksSuppressed) == 0);
    CHECK(r.c.get(Counter::GapsFilledBeforeNak) == 1);
    r.work(kT0 + 1'000'000'000);
    CHECK(r.naks().empty());
    CHECK(r.lost.empty());
}

TEST_CASE("a gap is NAKed to the sequencer after the delay, and repaired") {
    Rig r;
    r.send(data(100, 2));
    r.send(data(104, 2));
    r.work(kT0);
    CHECK(r.offsets() == range(100, 102));
    const std::uint64_t due = r.sub->nextTimerNs();
    CHECK(due >= kT0);
    CHECK(due <= kT0 + r.sub->gaps().srttNs());
    if (due > kT0) {
        r.work(due - 1);
        CHECK(r.naks().empty());
    }
    r.work(due);
    const auto naks = r.naks();
    REQUIRE(naks.size() == 1);
    CHECK(naks[0].from == r.ctl.local());  // sent on the control transport
    CHECK(naks[0].stream == kStream);
    CHECK(naks[0].epoch == kEpoch);
    CHECK(naks[0].ranges == std::vector<std::pair<std::uint64_t, std::uint32_t>>{{102, 2}});
    CHECK(r.c.get(Counter::NaksSent) == 1);
    CHECK(r.c.get(Counter::NakOffsetsRequested) == 2);

    // The retransmission fills the gap; what was held follows.
    r.send(data(102, 2, wire::kFlagRetransmit));
    r.work(due + 300'000);
    REQUIRE(r.offsets() == range(100, 106));
    CHECK(r.got[2].repaired);
    CHECK(r.got[3].repaired);
    CHECK_FALSE(r.got[4].repaired);
    CHECK(r.got[2].payload == payloadFor(102));
    CHECK(r.sub->gaps().stats().repairedOffsets == 2);
    r.work(due + 10'000'000'000ull);
    CHECK(r.naks().empty());
    CHECK(r.lost.empty());
}

TEST_CASE("NAKs go to the configured sequencer endpoint when one is set") {
    SubscriberConfig cfg = testConfig();
    const Endpoint elsewhere{0x0A000009u, 4100};
    cfg.sequencer = elsewhere;
    Rig r(cfg);
    MemoryTransport other(r.net, elsewhere);
    r.send(data(100, 1));
    r.send(data(102, 1));
    r.work(kT0);
    r.work(r.sub->nextTimerNs());
    CHECK(r.naks().empty());
    std::array<RxSlot, 4> slots{};
    CHECK(other.recvBurst(slots) == 1);
}

TEST_CASE("a corrupt datagram is counted, treated as loss and repaired") {
    Rig r;
    r.send(data(100, 2));
    auto bad = data(102, 2);
    bad[bad.size() - 3] ^= std::byte{0x10};  // inside a payload
    r.send(bad);
    r.send(data(104, 2));
    r.work(kT0);
    CHECK(r.c.get(Counter::DropBadCrc) == 1);
    CHECK(r.offsets() == range(100, 102));
    r.work(r.sub->nextTimerNs());
    const auto naks = r.naks();
    REQUIRE(naks.size() == 1);
    CHECK(naks[0].ranges == std::vector<std::pair<std::uint64_t, std::uint32_t>>{{102, 2}});
    r.send(data(102, 2, wire::kFlagRetransmit));
    r.work(kT0 + 2'000'000);
    CHECK(r.offsets() == range(100, 106));
    CHECK(r.got[2].repaired);
    CHECK(r.got[2].payload == payloadFor(102));
    CHECK(r.lost.empty());
}

TEST_CASE("duplicates are dropped and counted, each message delivered once") {
    Rig r;
    r.send(data(100, 2));
    r.send(data(100, 2));  // already delivered
    r.send(data(104, 2));
    r.send(data(104, 2));  // already held
    r.send(data(105, 1));  // covered by the held [104, 106)
    r.work(kT0);
    CHECK(r.c.get(Counter::DropDuplicate) == 3);
    r.send(data(102, 2));
    r.send(data(102, 2));
    r.send(data(101, 3));  // [101, 104): all delivered by now
    r.work(kT0 + 1);
    CHECK(r.offsets() == range(100, 106));
    CHECK(r.c.get(Counter::DropDuplicate) == 5);
    CHECK(r.c.get(Counter::MessagesIn) == 6);
}

TEST_CASE("a datagram that overlaps the delivery point delivers only the new part") {
    Rig r;
    r.send(data(100, 3));
    r.send(data(101, 4));  // 101, 102 delivered already; 103, 104 new
    r.work(kT0);
    CHECK(r.offsets() == range(100, 105));
    CHECK(r.c.get(Counter::MessagesIn) == 5);
}

TEST_CASE("at-most-once: the gap is reported via onLoss and never NAKed") {
    SubscriberConfig cfg = testConfig();
    cfg.mode = DeliveryMode::AtMostOnce;
    cfg.nak.reorderGraceNs = 50'000;
    Rig r(cfg);
    r.send(data(100, 2));
    r.send(data(104, 2));
    r.work(kT0);
    CHECK(r.offsets() == range(100, 102));
    CHECK(r.sub->nextTimerNs() == kT0 + 50'000);
    r.work(kT0 + 49'999);
    CHECK(r.lost.empty());
    r.work(kT0 + 50'000);
    CHECK(r.lost == std::vector<std::pair<std::uint64_t, std::uint64_t>>{{102, 2}});
    CHECK(r.offsets() == std::vector<std::uint64_t>{100, 101, 104, 105});
    CHECK(r.c.get(Counter::LossNotices) == 1);
    CHECK(r.c.get(Counter::OffsetsLost) == 2);
    // A late arrival of what was declared lost is not delivered.
    r.send(data(102, 2));
    r.work(kT0 + 60'000);
    CHECK(r.got.size() == 4);
    r.work(kT0 + 10'000'000'000ull);
    CHECK(r.naks().empty());
    CHECK(r.c.get(Counter::NaksSent) == 0);
}

TEST_CASE("a heartbeat whose oldest retained offset is above a gap makes it lost at once") {
    Rig r;
    r.send(data(100, 2));
    r.send(data(104, 2));
    r.work(kT0);
    CHECK(r.offsets() == range(100, 102));
    r.send(heartbeat(106, 104));
    r.sub->doWork(kT0 + 1);
    CHECK(r.c.get(Counter::HeartbeatsReceived) == 1);
    CHECK(r.lost == std::vector<std::pair<std::uint64_t, std::uint64_t>>{{102, 2}});
    CHECK(r.offsets() == std::vector<std::uint64_t>{100, 101, 104, 105});
    CHECK(r.sub->nextOffset() == Offset{106});
    CHECK(r.c.get(Counter::LossNotices) == 1);
    CHECK_FALSE(r.sub->gaps().hasGaps());
}

TEST_CASE("a heartbeat beyond the data received reveals tail loss, which is NAKed") {
    Rig r;
    r.send(data(100, 2));
    r.work(kT0);
    r.send(heartbeat(105, 0));
    r.work(kT0 + 1);
    CHECK(r.sub->headOffset() == Offset{105});
    r.work(r.sub->nextTimerNs());
    const auto naks = r.naks();
    REQUIRE(naks.size() == 1);
    CHECK(naks[0].ranges == std::vector<std::pair<std::uint64_t, std::uint32_t>>{{102, 3}});
}

TEST_CASE("a fragmented message is delivered once, whole") {
    std::vector<std::byte> whole(2500);
    for (std::size_t k = 0; k < whole.size(); ++k) whole[k] = static_cast<std::byte>((k * 13 + 5) & 0xFF);
    std::vector<std::vector<std::byte>> frags;
    std::uint32_t at = 0;
    for (std::uint64_t off = 200; at < whole.size(); ++off) {
        std::vector<std::byte> buf(wire::kDefaultMtu);
        wire::DatagramWriter w(buf);
        w.begin(wire::FrameType::Data, kStream, kEpoch, Offset{off});
        const auto n = w.appendPiece(wire::MessageFields{kPub, PubSeq{42}, 9}, whole, at, 1000);
        REQUIRE(n);
        at += static_cast<std::uint32_t>(*n);
        buf.resize(w.finish(kT0));
        frags.push_back(std::move(buf));
    }
    REQUIRE(frags.size() == 3);

    for (int variant = 0; variant < 2; ++variant) {
        Rig r;
        r.send(data(199, 1));
        r.send(frags[0]);
        if (variant == 0) {
            r.send(frags[1]);
            r.work(kT0);
            CHECK(r.got.size() == 1);  // only the message at 199
            r.send(frags[2]);
        } else {
            r.send(frags[2]);  // the last fragment overtakes the middle one
            r.work(kT0);
            CHECK(r.got.size() == 1);
            r.send(frags[1]);
        }
        r.work(kT0 + 1);
        INFO("variant " << variant);
        REQUIRE(r.got.size() == 2);
        CHECK(r.got[1].offset == 202);  // the offset of the last fragment
        CHECK(r.got[1].pubSeq == 42);
        CHECK(r.got[1].payload == whole);
        CHECK(r.c.get(Counter::MessagesIn) == 2);
        CHECK(r.sub->nextOffset() == Offset{203});
    }
}

TEST_CASE("datagrams of another stream or an older epoch are dropped") {
    Rig r;
    r.send(data(100, 1));
    r.send(data(101, 1, 0, StreamId{2}));
    r.send(data(101, 1, 0, kStream, Epoch{kEpoch.get() - 1}));
    r.work(kT0);
    CHECK(r.c.get(Counter::DropWrongStream) == 1);
    CHECK(r.c.get(Counter::DropWrongEpoch) == 1);
    CHECK(r.offsets() == std::vector<std::uint64_t>{100});
    CHECK(r.c.get(Counter::Epoch) == kEpoch.get());
}

TEST_CASE("parseStartPosition") {
    auto l = client::parseStartPosition("latest");
    REQUIRE(l);
    CHECK(l->kind == StartPosition::Kind::Latest);
    auto e = client::parseStartPosition("earliest");
    REQUIRE(e);
    CHECK(e->kind == StartPosition::Kind::Earliest);
    auto o = client::parseStartPosition("123456789012");
    REQUIRE(o);
    CHECK(o->kind == StartPosition::Kind::AtOffset);
    CHECK(o->offset == Offset{123456789012ull});
    auto z = client::parseStartPosition("0");
    REQUIRE(z);
    CHECK(z->offset == Offset{0});
    for (const char* bad : {"", "Latest", "12x", "-1", " 5", "99999999999999999999999", "earliest "}) {
        auto b = client::parseStartPosition(bad);
        INFO("input '" << bad << "'");
        REQUIRE_FALSE(b);
        CHECK(b.error().code == EINVAL);
        CHECK(b.error().message().find("expected earliest, latest or an offset") != std::string::npos);
    }
}

TEST_CASE("SubscriberConfig::validate") {
    CHECK(SubscriberConfig{}.validate());
    CHECK(testConfig().validate());

    SubscriberConfig c = testConfig();
    c.start = StartPosition{StartPosition::Kind::Earliest, {}};
    auto st = c.validate();
    REQUIRE_FALSE(st);
    CHECK(st.error().message().find("earliest") != std::string::npos);
    CHECK(st.error().message().find("--archiver") != std::string::npos);
    c.archiver = seqcast::transport::Endpoint{0x7F000001u, 40100};
    CHECK(c.validate());
    c.archiver = {};

    c.start = StartPosition{StartPosition::Kind::AtOffset, Offset{5}};
    st = c.validate();
    REQUIRE_FALSE(st);
    CHECK(st.error().message().find("offset") != std::string::npos);

    c = testConfig();
    c.reorderBytes = 3 * c.maxDatagram;
    st = c.validate();
    REQUIRE_FALSE(st);
    CHECK(st.error().message().find("reorder buffer") != std::string::npos);

    c = testConfig();
    c.maxDatagram = 100;
    st = c.validate();
    REQUIRE_FALSE(st);
    CHECK(st.error().message().find("max datagram") != std::string::npos);

    c = testConfig();
    c.burst = 0;
    CHECK_FALSE(c.validate());
    c = testConfig();
    c.maxMessage = 0;
    CHECK_FALSE(c.validate());
    c = testConfig();
    c.nak.deadlineNs = 0;
    CHECK_FALSE(c.validate());
}

}  // TEST_SUITE

// ---- Partial messages at the start, and exactly-once across restarts -------------------------

namespace {

// One entry per datagram: message `seq` of publisher `pub`, bytes [frag, frag + piece) of `whole`.
std::vector<std::byte> entryDatagram(std::uint64_t off, PublisherId pub, std::uint64_t seq, const std::vector<std::byte>& whole,
                                     std::uint32_t frag, std::size_t piece) {
    std::vector<std::byte> buf(wire::kDefaultMtu);
    wire::DatagramWriter w(buf);
    w.begin(wire::FrameType::Data, kStream, kEpoch, Offset{off});
    const auto n = w.appendPiece(wire::MessageFields{pub, PubSeq{seq}, 1000 + seq}, whole, frag, piece);
    REQUIRE(n);
    buf.resize(w.finish(kT0));
    return buf;
}

std::vector<std::byte> bodyOf(std::uint32_t pub, std::uint64_t seq, std::size_t len) {
    std::vector<std::byte> b(len);
    for (std::size_t k = 0; k < len; ++k) b[k] = static_cast<std::byte>((pub * 31 + seq * 7 + k) & 0xFF);
    return b;
}

// A stream in which two publishers' fragmented messages interleave, one entry per datagram:
//   offset: 0 A1 whole | 1 A2 first | 2 B1 whole | 3 A2 middle | 4 B2 first | 5 A2 last |
//           6 B2 middle | 7 A3 whole | 8 B2 last | 9 B3 whole
// Each message is delivered at the offset of its last entry: A1@0 B1@2 A2@5 A3@7 B2@8 B3@9.
struct Msg {
    std::uint32_t pub;
    std::uint64_t seq;
    std::vector<std::byte> body;
};
struct Stream {
    std::vector<std::vector<std::byte>> datagrams;  // index = offset
    std::vector<std::pair<std::uint64_t, Msg>> messages;  // (delivery offset, message)
};
Stream interleaved() {
    constexpr std::size_t kPiece = 100;
    const PublisherId a{1}, b{2};
    Stream s;
    const auto a1 = bodyOf(1, 1, 40), a2 = bodyOf(1, 2, 250), a3 = bodyOf(1, 3, 10);
    const auto b1 = bodyOf(2, 1, 20), b2 = bodyOf(2, 2, 230), b3 = bodyOf(2, 3, 60);
    s.datagrams.push_back(entryDatagram(0, a, 1, a1, 0, kPiece));
    s.datagrams.push_back(entryDatagram(1, a, 2, a2, 0, kPiece));
    s.datagrams.push_back(entryDatagram(2, b, 1, b1, 0, kPiece));
    s.datagrams.push_back(entryDatagram(3, a, 2, a2, 100, kPiece));
    s.datagrams.push_back(entryDatagram(4, b, 2, b2, 0, kPiece));
    s.datagrams.push_back(entryDatagram(5, a, 2, a2, 200, kPiece));
    s.datagrams.push_back(entryDatagram(6, b, 2, b2, 100, kPiece));
    s.datagrams.push_back(entryDatagram(7, a, 3, a3, 0, kPiece));
    s.datagrams.push_back(entryDatagram(8, b, 2, b2, 200, kPiece));
    s.datagrams.push_back(entryDatagram(9, b, 3, b3, 0, kPiece));
    s.messages = {{0, {1, 1, a1}}, {2, {2, 1, b1}}, {5, {1, 2, a2}}, {7, {1, 3, a3}}, {8, {2, 2, b2}}, {9, {2, 3, b3}}};
    return s;
}

struct Taken {
    std::uint64_t offset;
    std::uint32_t pub;
    std::uint64_t seq;
    std::vector<std::byte> body;
};

// A subscriber with its own handlers (any publisher), fed datagrams directly.
struct Plain {
    MemoryNetwork net;
    MemoryTransport dataT{net, Endpoint{0x0A000100u, 0}, {kGroup}};
    MemoryTransport ctl{net, Endpoint{0x0A000100u, 0}};
    Counters c;
    std::vector<Taken> got;
    std::vector<std::pair<std::uint64_t, std::uint64_t>> lost;
    std::unique_ptr<Subscriber> sub;
    std::uint64_t now = kT0;

    explicit Plain(SubscriberConfig cfg, std::function<void(client::CommitState&)> onCommit = {}) {
        cfg.sequencer = kSeq;
        client::SubscriberHandlers h;
        h.onMessage = [this](const Delivery& d) {
            got.push_back(Taken{d.offset, d.publisher, d.pubSeq,
                                std::vector<std::byte>(d.payload.begin(), d.payload.end())});
        };
        h.onLoss = [this](Offset f, std::uint64_t n) { lost.emplace_back(f.get(), n); };
        h.onCommit = std::move(onCommit);
        sub = std::make_unique<Subscriber>(cfg, dataT, ctl, c, h);
    }
    void feed(const std::vector<std::byte>& d) { sub->onDatagram(d, kSeq, ++now); }
};

SubscriberConfig startAt(std::uint64_t off) {
    SubscriberConfig c = testConfig();
    c.start = StartPosition{StartPosition::Kind::AtOffset, Offset{off}};
    c.repairFromStart = true;
    return c;
}

}  // namespace

TEST_CASE("starting inside a fragmented message reports its fragments as one loss notice, never silence") {
    const Stream s = interleaved();
    // start -> (messages delivered by offset, loss notices)
    struct Case {
        std::uint64_t start;
        std::vector<std::uint64_t> delivered;
        std::vector<std::pair<std::uint64_t, std::uint64_t>> lost;
    };
    const Case cases[] = {
        {0, {0, 2, 5, 7, 8, 9}, {}},
        {1, {2, 5, 7, 8, 9}, {}},           // at A2's first fragment: A2 whole
        {2, {2, 7, 8, 9}, {{3, 1}, {5, 1}}},  // A2 began before: its fragments at 3 and 5 are lost
        {3, {7, 8, 9}, {{3, 1}, {5, 1}}},     // ... and B2's first fragment (4) comes: B2 whole
        {5, {7, 9}, {{5, 1}, {6, 1}, {8, 1}}},  // inside A2 and B2: A2's last fragment ends its notice
        {6, {7, 9}, {{6, 1}, {8, 1}}},
        {8, {9}, {{8, 1}}},
        {9, {9}, {}},
    };
    for (const auto& k : cases) {
        INFO("start at " << k.start);
        Plain p(startAt(k.start));
        for (const auto& d : s.datagrams) p.feed(d);
        p.sub->doWork(++p.now);
        std::vector<std::uint64_t> offs;
        for (const auto& g : p.got) offs.push_back(g.offset);
        CHECK(offs == k.delivered);
        CHECK(p.lost == k.lost);
        // Every delivered message is whole and right.
        for (const auto& g : p.got)
            for (const auto& [o, m] : s.messages)
                if (o == g.offset) CHECK(g.body == m.body);
        // Every offset from the start is accounted for: in a delivered message or a loss notice
        // (offsets of messages that were delivered count as delivered).
        CHECK(p.sub->nextOffset() == Offset{10});
        CHECK(p.c.get(Counter::OffsetsLost) == [&] {
            std::uint64_t n = 0;
            for (const auto& l : k.lost) n += l.second;
            return n;
        }());
    }
}

TEST_CASE("redirected messages go to the given handler only, and back to onMessage after") {
    const Stream s = interleaved();  // messages at offsets 0, 2, 5, 7, 8, 9
    Plain p(startAt(0));
    std::vector<std::uint64_t> redirected;
    const std::function<void(const Delivery&)> other = [&](const Delivery& d) { redirected.push_back(d.offset); };
    const std::function<void(const Delivery&)> none;  // an empty handler: the messages are dropped
    p.sub->redirectMessages(&other);
    for (std::size_t i = 0; i < 3; ++i) p.feed(s.datagrams[i]);  // offsets 0..2: messages 0 and 2
    p.sub->redirectMessages(&none);
    for (std::size_t i = 3; i < 6; ++i) p.feed(s.datagrams[i]);  // 3..5: message 5
    p.sub->redirectMessages(nullptr);
    for (std::size_t i = 6; i < s.datagrams.size(); ++i) p.feed(s.datagrams[i]);
    p.sub->doWork(++p.now);
    CHECK(redirected == std::vector<std::uint64_t>{0, 2});
    std::vector<std::uint64_t> own;
    for (const auto& g : p.got) own.push_back(g.offset);
    CHECK(own == std::vector<std::uint64_t>{7, 8, 9});
    CHECK(p.lost.empty());  // message 5, dropped by the empty handler, was delivered: no loss notice
    CHECK(p.c.get(Counter::MessagesIn) == 6);
}

TEST_CASE("recordLatency: every delivered message measured; each window's quantiles published when it ends") {
    SubscriberConfig cfg = startAt(0);
    cfg.recordLatency = true;
    cfg.latencyWindowNs = 1'000'000'000;
    Plain p(cfg);
    // 20 datagrams of 5 messages, published 2 ms before they arrive, and 5 of one message
    // published 30 ms before.
    std::uint64_t off = 0;
    auto send = [&](std::uint32_t count, std::uint64_t agoNs) {
        std::vector<std::byte> buf(wire::kDefaultMtu);
        wire::DatagramWriter w(buf);
        w.begin(wire::FrameType::Data, kStream, kEpoch, Offset{off});
        const std::uint64_t ts = wallNs() - agoNs;
        for (std::uint32_t k = 0; k < count; ++k, ++off) {
            const auto body = payloadFor(off);
            REQUIRE(w.appendPiece(wire::MessageFields{kPub, PubSeq{off + 1}, ts}, body, 0));
        }
        buf.resize(w.finish(kT0));
        p.feed(buf);
    };
    p.sub->doWork(p.now);  // the first window begins
    for (int i = 0; i < 20; ++i) send(5, 2'000'000);
    for (int i = 0; i < 5; ++i) send(1, 30'000'000);
    REQUIRE(p.got.size() == 105);
    CHECK(p.c.get(Counter::LatencyCount) == 105);
    const std::uint64_t sum = p.c.get(Counter::LatencySumNs);
    CHECK(sum >= 100 * 2'000'000ull + 5 * 30'000'000ull);
    CHECK(sum < 100 * 2'000'000ull + 5 * 30'000'000ull + 105 * 1'000'000'000ull);  // each within a second of it
    CHECK(p.c.get(Counter::LatencyWindowCount) == 0);  // the window has not ended
    CHECK(p.c.get(Counter::LatencyP50Ns) == 0);
    p.sub->doWork(p.now + cfg.latencyWindowNs);
    CHECK(p.c.get(Counter::LatencyWindowCount) == 105);
    const std::uint64_t p50 = p.c.get(Counter::LatencyP50Ns), p99 = p.c.get(Counter::LatencyP99Ns);
    CHECK(p50 >= 2'000'000);
    CHECK(p50 < 30'000'000);  // the median is one of the 2 ms ones (plus the time this test took)
    CHECK(p99 >= 30'000'000);  // the slowest 5 % are the 30 ms ones
    CHECK(p.c.get(Counter::LatencyP90Ns) <= p99);
    CHECK(p.c.get(Counter::LatencyMaxNs) >= p.c.get(Counter::LatencyP999Ns));
    CHECK(p.c.get(Counter::LatencyMaxNs) >= 30'000'000);
    // The next window has nothing in it: its count is 0 (the exporter shows NaN quantiles then).
    p.sub->doWork(p.now + 2 * cfg.latencyWindowNs);
    CHECK(p.c.get(Counter::LatencyWindowCount) == 0);
    CHECK(p.c.get(Counter::LatencyCount) == 105);
}

TEST_CASE("without recordLatency nothing is measured") {
    Plain p(startAt(0));
    p.feed(data(0, 5));
    p.sub->doWork(p.now + 10'000'000'000ull);
    CHECK(p.got.size() == 5);
    CHECK(p.c.get(Counter::LatencyCount) == 0);
    CHECK(p.c.get(Counter::LatencySumNs) == 0);
}

TEST_CASE("a stream that ends inside an undeliverable message still reports it") {
    const Stream s = interleaved();
    Plain p(startAt(3));
    for (std::uint64_t o = 3; o < 7; ++o) p.feed(s.datagrams[o]);  // ends after B2's middle fragment
    std::vector<std::byte> eos(wire::kHeaderSize);
    eos.resize(wire::encodeEndOfStream(eos, kStream, kEpoch, Offset{7}, kT0));
    p.feed(eos);
    p.sub->doWork(++p.now);
    CHECK(p.sub->endOfStream());
    CHECK(p.lost == std::vector<std::pair<std::uint64_t, std::uint64_t>>{{3, 1}, {5, 1}});
    // B2 (first fragment at 4) is incomplete, not undeliverable: it is no loss yet.
    CHECK(p.sub->position().resumeFrom == Offset{4});
}

TEST_CASE("exactly-once: a subscriber killed after any entry and restarted on its commit file hands over every message once") {
    const Stream s = interleaved();
    const std::string path = std::string("/tmp/seqcast-subscriber-test-") + std::to_string(::getpid()) + ".commit";
    // Every pair of crash points (entries received before each "kill"), then a run to the end.
    for (std::size_t kill1 = 0; kill1 <= s.datagrams.size(); ++kill1) {
        for (std::size_t kill2 = kill1; kill2 <= s.datagrams.size(); ++kill2) {
            INFO("killed after " << kill1 << " and then " << kill2 << " entries");
            std::remove(path.c_str());
            std::vector<Taken> all;
            std::vector<std::pair<std::uint64_t, std::uint64_t>> lost;
            for (int run = 0; run < 3; ++run) {
                auto cf = client::CommitFile::open(path, kStream.get());
                REQUIRE(cf);
                SubscriberConfig cfg = startAt(0);
                cfg.commit = &*cf;
                REQUIRE(cfg.validate());
                // The application's state (here: how many messages it processed) comes back with the position.
                const std::uint64_t before = cf->hasCommit() ? cf->state().app[0] : 0;
                CHECK(before == all.size());
                Plain* self = nullptr;
                Plain p(cfg, [&self, before](client::CommitState& st) { st.app[0] = before + self->got.size(); });
                self = &p;
                const std::size_t from = cf->hasCommit() ? cf->state().resumeFrom : 0;
                if (cf->hasCommit()) CHECK(cf->state().resumeFrom <= cf->state().next);
                const std::size_t until = run == 0 ? kill1 : run == 1 ? kill2 : s.datagrams.size();
                // The data comes again from where the commit says (the archiver's replay, or repairs).
                for (std::size_t o = from; o < std::max(until, from); ++o) p.feed(s.datagrams[o]);
                all.insert(all.end(), p.got.begin(), p.got.end());
                lost.insert(lost.end(), p.lost.begin(), p.lost.end());
            }
            std::vector<std::uint64_t> offs;
            for (const auto& g : all) offs.push_back(g.offset);
            CHECK(offs == std::vector<std::uint64_t>{0, 2, 5, 7, 8, 9});
            for (const auto& g : all)
                for (const auto& [o, m] : s.messages)
                    if (o == g.offset) CHECK(g.body == m.body);
            CHECK(lost.empty());
        }
    }
    std::remove(path.c_str());
}
