// The whole live path in one process over the in-memory network: publishers -> sequencer ->
// subscribers, with seeded faults on both legs, driven by a fake clock.
#include <doctest/doctest.h>

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "client/publisher.h"
#include "client/subscriber.h"
#include "fabric/crc32c.h"
#include "sequencer/sequencer.h"
#include "transport/fault_transport.h"
#include "transport/memory_transport.h"

using namespace seqcast;
using transport::Endpoint;

namespace {

const Endpoint kSeq{0x0A000001, 4000};
const Endpoint kSeqData{0x0A000001, 4002};
const Endpoint kGroup{0xEF010101, 5000};

struct SubState {
    std::unique_ptr<transport::Transport> t;
    Counters c;
    std::unique_ptr<client::Subscriber> sub;
    std::uint64_t delivered = 0;
    std::uint64_t lastOffset = 0;
    bool any = false;
    bool ordered = true;
    std::uint64_t lost = 0;
    std::uint32_t digest = kCrc32cInit;
    std::map<std::uint32_t, std::uint64_t> lastPubSeq;  // per publisher FIFO check
    bool fifo = true;
};

struct PubState {
    std::unique_ptr<transport::Transport> t;
    Counters c;
    std::unique_ptr<client::Publisher> pub;
    std::uint64_t offered = 0;
    std::uint64_t confirmed = 0;
    std::uint64_t lastConfirmedSeq = 0;
    bool confirmOrder = true;
};

std::vector<std::byte> makeMessage(std::uint32_t pub, std::uint64_t i, std::size_t size) {
    std::vector<std::byte> m(size);
    for (std::size_t k = 0; k < size; ++k) m[k] = static_cast<std::byte>((pub * 131 + i * 7 + k) & 0xFF);
    return m;
}

struct Harness {
    transport::MemoryNetwork net;
    Counters seqCounters;
    std::unique_ptr<transport::Transport> seqT;
    std::unique_ptr<transport::Transport> seqData;  // set: the stream leaves from (and NAKs reach) a socket of its own
    std::unique_ptr<sequencer::Sequencer> seq;
    std::vector<std::unique_ptr<PubState>> pubs;
    std::vector<std::unique_ptr<SubState>> subs;
    std::uint64_t now = 1'000'000;

    Harness(int nPubs, int nSubs, const transport::FaultConfig& pubLeg, const transport::FaultConfig& dataLeg,
            sequencer::SequencerConfig scfg = {}, bool separateData = false) {
        auto st = std::make_unique<transport::MemoryTransport>(net, kSeq);
        seqT = pubLeg.any() ? std::unique_ptr<transport::Transport>(new transport::FaultTransport(std::move(st), pubLeg))
                            : std::unique_ptr<transport::Transport>(std::move(st));
        if (separateData) seqData = std::make_unique<transport::MemoryTransport>(net, kSeqData);
        scfg.group = kGroup;
        auto s = sequencer::Sequencer::create(scfg, *seqT, separateData ? *seqData : *seqT, seqCounters);
        REQUIRE(s);
        seq = std::move(*s);
        for (int i = 0; i < nSubs; ++i) {
            auto ss = std::make_unique<SubState>();
            auto mt = std::make_unique<transport::MemoryTransport>(net, Endpoint{0x0A000100u + static_cast<std::uint32_t>(i), 0},
                                                                   std::vector<Endpoint>{kGroup});
            transport::FaultConfig f = dataLeg;
            f.seed = dataLeg.seed + static_cast<std::uint64_t>(i) * 7919;
            ss->t = dataLeg.any() ? std::unique_ptr<transport::Transport>(new transport::FaultTransport(std::move(mt), f))
                                  : std::unique_ptr<transport::Transport>(std::move(mt));
            client::SubscriberConfig cfg;
            cfg.nak.seed = 100 + static_cast<std::uint64_t>(i);
            SubState* raw = ss.get();
            client::SubscriberHandlers h;
            h.onMessage = [raw](const client::Delivery& d) {
                if (raw->any && d.offset <= raw->lastOffset) raw->ordered = false;
                raw->any = true;
                raw->lastOffset = d.offset;
                ++raw->delivered;
                auto& last = raw->lastPubSeq[d.publisher];
                if (d.pubSeq <= last) raw->fifo = false;
                last = d.pubSeq;
                raw->digest = crc32cUpdate(raw->digest, d.payload);
            };
            h.onLoss = [raw](Offset, std::uint64_t n) { raw->lost += n; };
            ss->sub = std::make_unique<client::Subscriber>(cfg, *ss->t, *ss->t, ss->c, h);
            subs.push_back(std::move(ss));
        }
        for (int i = 0; i < nPubs; ++i) {
            auto ps = std::make_unique<PubState>();
            ps->t = std::make_unique<transport::MemoryTransport>(net, Endpoint{0x0A000200u + static_cast<std::uint32_t>(i), 0});
            client::PublisherConfig cfg;
            cfg.sequencer = kSeq;
            cfg.id = PublisherId{static_cast<std::uint32_t>(i + 1)};
            cfg.window = 1024;
            PubState* raw = ps.get();
            auto p = client::Publisher::create(cfg, *ps->t, ps->c, [raw](const client::Confirmation& c) {
                if (c.pubSeq.get() != raw->lastConfirmedSeq + 1) raw->confirmOrder = false;
                raw->lastConfirmedSeq = c.pubSeq.get();
                ++raw->confirmed;
            });
            REQUIRE(p);
            ps->pub = std::move(*p);
            pubs.push_back(std::move(ps));
        }
        // Subscribers start at `latest`: let them see the stream's head before anything is published.
        for (int k = 0; k < 20; ++k) step();
    }

    void step() {
        now += 5'000;
        seq->doWork(now);
        for (auto& p : pubs) p->pub->doWork(now);
        for (auto& s : subs) s->sub->doWork(now);
    }
};

}  // namespace

namespace {
void livePath(bool separateData) {
    transport::FaultConfig pubLeg;
    pubLeg.seed = 11;
    pubLeg.loss = 0.02;
    pubLeg.burstStart = 0.001;
    pubLeg.burstLength = 50;
    pubLeg.reorder = 0.01;
    pubLeg.duplicate = 0.01;
    pubLeg.corrupt = 0.005;
    transport::FaultConfig dataLeg = pubLeg;
    dataLeg.seed = 23;

    Harness h(2, 3, pubLeg, dataLeg, {}, separateData);
    const std::uint64_t perPub = 20'000;
    Rng sizes(5);
    for (int iter = 0; iter < 2'000'000; ++iter) {
        for (std::size_t i = 0; i < h.pubs.size(); ++i) {
            auto& p = *h.pubs[i];
            for (int k = 0; k < 16 && p.offered < perPub; ++k) {
                // 8 B .. 8 KiB, mostly small: some messages fragment.
                const std::size_t size = sizes.below(10) == 0 ? 8 + sizes.below(8192 - 8) : 8 + sizes.below(200);
                const auto m = makeMessage(static_cast<std::uint32_t>(i), p.offered, size);
                if (p.pub->offer(m, h.now) != client::Publisher::Offer::Accepted) break;
                ++p.offered;
            }
        }
        h.step();
        bool done = true;
        for (auto& p : h.pubs) done = done && p->offered == perPub && p->pub->allConfirmed();
        for (auto& s : h.subs) done = done && s->sub->nextOffset() == h.seq->nextOffset();
        if (done) break;
    }
    for (auto& p : h.pubs) {
        CHECK(p->offered == perPub);
        CHECK(p->confirmed == perPub);
        CHECK(p->confirmOrder);
    }
    // Nothing sequenced twice: the stream holds exactly the published messages' entries.
    CHECK(h.seqCounters.get(Counter::DropDuplicate) > 0);  // retransmitted PUBs were deduplicated
    const auto& s0 = *h.subs[0];
    for (auto& s : h.subs) {
        CHECK(s->delivered == 2 * perPub);
        CHECK(s->lost == 0);
        CHECK(s->ordered);
        CHECK(s->fifo);
        CHECK(s->digest == s0.digest);
        CHECK(s->sub->nextOffset() == h.seq->nextOffset());
        CHECK(s->c.get(Counter::DropBadCrc) > 0);
        CHECK(s->sub->gaps().stats().naksSent > 0);
    }
    CHECK(h.seqCounters.get(Counter::Retransmits) > 0);
    if (separateData) {
        // Subscribers NAK the stream's source: the data socket, not the control socket.
        CHECK(h.seqData->stats().rxDatagrams > 0);
        CHECK(h.seqData->stats().rxDatagrams <= h.seqCounters.get(Counter::NaksReceived));
    }
}
}  // namespace

TEST_CASE("live path: every offset delivered once, in order, identical everywhere, despite faults on both legs") {
    SUBCASE("one socket") { livePath(false); }
    SUBCASE("the stream and its repairs on a socket of their own") { livePath(true); }
}

TEST_CASE("tail loss is repaired through heartbeats") {
    transport::FaultConfig none;
    Harness h(1, 1, none, none);
    auto& p = *h.pubs[0];
    auto& s = *h.subs[0];
    // Publish one message; drop the DATA datagram it produces on the way to the subscriber by
    // letting the sequencer run alone and discarding what reached the subscriber.
    const auto m = makeMessage(0, 0, 100);
    REQUIRE(p.pub->offer(m, h.now) == client::Publisher::Offer::Accepted);
    h.now += 5'000;
    p.pub->doWork(h.now);
    h.seq->doWork(h.now);
    transport::RxSlot slots[64];
    while (s.t->recvBurst(slots) > 0) {}  // the last datagram is lost
    for (int k = 0; k < 2000 && s.delivered == 0; ++k) h.step();
    CHECK(s.delivered == 1);
    CHECK(s.sub->gaps().stats().gapsDetected == 1);
    CHECK(h.seqCounters.get(Counter::Retransmits) >= 1);
}

TEST_CASE("every END_OF_STREAM lost: heartbeats flagged END still end the stream, and the tail is repaired") {
    transport::FaultConfig none;
    transport::FaultConfig dropEos;
    dropEos.dropTypes = 1u << static_cast<unsigned>(wire::FrameType::EndOfStream);
    Harness h(1, 2, none, dropEos);
    auto& p = *h.pubs[0];
    for (std::uint64_t i = 0; i < 50; ++i) REQUIRE(p.pub->offer(makeMessage(0, i, 100), h.now) == client::Publisher::Offer::Accepted);
    for (int k = 0; k < 20000 && !p.pub->allConfirmed(); ++k) h.step();
    REQUIRE(p.pub->allConfirmed());
    // One more message, whose datagram subscriber 0 loses, and then the end: subscriber 0 learns
    // of its tail loss only from the end.
    REQUIRE(p.pub->offer(makeMessage(0, 50, 100), h.now) == client::Publisher::Offer::Accepted);
    h.now += 5'000;
    p.pub->doWork(h.now);
    h.seq->doWork(h.now);
    transport::RxSlot slots[64];
    while (h.subs[0]->t->recvBurst(slots) > 0) {}
    h.seq->endOfStream();
    CHECK(h.seq->ended());
    auto allEnded = [&] {
        for (auto& s : h.subs)
            if (!s->sub->endOfStream()) return false;
        return true;
    };
    // Two seconds of the sequencer lingering after the end.
    for (int k = 0; k < 400'000 && !allEnded(); ++k) h.step();
    for (auto& s : h.subs) {
        CHECK(s->sub->endOfStream());
        CHECK(s->delivered == 51);
        CHECK(s->lost == 0);
        CHECK(s->sub->nextOffset() == h.seq->nextOffset());
        auto* f = dynamic_cast<transport::FaultTransport*>(s->t.get());
        REQUIRE(f != nullptr);
        CHECK(f->faults().typeDropped >= 3);  // every END_OF_STREAM copy
    }
    CHECK(h.subs[0]->sub->gaps().stats().gapsDetected == 1);
    // Nothing is sequenced after the end: a PUB is dropped and counted, never confirmed.
    const Offset end = h.seq->nextOffset();
    const std::uint64_t unexpected = h.seqCounters.get(Counter::DropUnexpectedType);
    REQUIRE(p.pub->offer(makeMessage(0, 51, 100), h.now) == client::Publisher::Offer::Accepted);
    for (int k = 0; k < 2000; ++k) h.step();
    CHECK(h.seq->nextOffset() == end);
    CHECK(h.seqCounters.get(Counter::DropUnexpectedType) > unexpected);
    CHECK_FALSE(p.pub->allConfirmed());
    for (auto& s : h.subs) CHECK(s->delivered == 51);
}

TEST_CASE("NAK suppression: 8 subscribers miss the same datagram, it is retransmitted at most twice") {
    transport::FaultConfig none;
    Harness h(1, 8, none, none);
    auto& p = *h.pubs[0];
    // Send a first message to everyone, then a second that all 8 lose, then a third.
    for (int msg = 0; msg < 3; ++msg) {
        const auto m = makeMessage(0, static_cast<std::uint64_t>(msg), 64);
        REQUIRE(p.pub->offer(m, h.now) == client::Publisher::Offer::Accepted);
        h.now += 5'000;
        p.pub->doWork(h.now);
        h.seq->doWork(h.now);
        if (msg == 1) {
            transport::RxSlot slots[64];
            for (auto& s : h.subs) while (s->t->recvBurst(slots) > 0) {}
        }
        for (auto& s : h.subs) s->sub->doWork(h.now);
    }
    for (int k = 0; k < 4000; ++k) {
        h.step();
        bool all = true;
        for (auto& s : h.subs) all = all && s->delivered == 3;
        if (all) break;
    }
    for (auto& s : h.subs) CHECK(s->delivered == 3);
    CHECK(h.seqCounters.get(Counter::Retransmits) >= 1);
    CHECK(h.seqCounters.get(Counter::Retransmits) <= 2);
}

TEST_CASE("frames of another stream, epoch or version are ignored and counted") {
    transport::FaultConfig none;
    Harness h(1, 1, none, none);
    auto& s = *h.subs[0];
    std::vector<std::byte> buf(wire::kDefaultMtu);
    // Another stream.
    std::size_t len = wire::encodeHeartbeat(buf, StreamId{99}, s.sub->epoch(), Offset{1'000'000}, Offset{0}, 0);
    s.sub->onDatagram(std::span(buf.data(), len), kSeq, h.now);
    CHECK(s.c.get(Counter::DropWrongStream) == 1);
    // An older epoch.
    len = wire::encodeHeartbeat(buf, StreamId{1}, Epoch{0}, Offset{1'000'000}, Offset{0}, 0);
    s.sub->onDatagram(std::span(buf.data(), len), kSeq, h.now);
    CHECK(s.c.get(Counter::DropWrongEpoch) == 1);
    // Another major version.
    len = wire::encodeHeartbeat(buf, StreamId{1}, s.sub->epoch(), Offset{1'000'000}, Offset{0}, 0);
    buf[4] = std::byte{1};  // v1: entries without the publisher's CRC
    s.sub->onDatagram(std::span(buf.data(), len), kSeq, h.now);
    CHECK(s.c.get(Counter::DropBadVersion) == 1);
    CHECK(s.sub->headOffset() < Offset{1'000'000});
}

TEST_CASE("sequencer restart from its state file: offsets continue, the epoch grows, no duplicates") {
    const std::string path = "/tmp/seqcast-test-state-" + std::to_string(::getpid());
    std::remove(path.c_str());
    transport::MemoryNetwork net;
    Counters c1;
    auto t1 = std::make_unique<transport::MemoryTransport>(net, kSeq);
    sequencer::SequencerConfig cfg;
    cfg.group = kGroup;
    cfg.statePath = path;
    cfg.ringBytes = 4u << 20;
    auto s1 = sequencer::Sequencer::create(cfg, *t1, *t1, c1);
    REQUIRE(s1);
    CHECK((*s1)->epoch() == Epoch{1});

    Counters pc;
    transport::MemoryTransport pt(net, Endpoint{0x0A000200u, 0});
    client::PublisherConfig pcfg;
    pcfg.sequencer = kSeq;
    pcfg.id = PublisherId{7};
    std::vector<std::uint64_t> offsets;
    auto pub = client::Publisher::create(pcfg, pt, pc, [&](const client::Confirmation& c) { offsets.push_back(c.offset.get()); });
    REQUIRE(pub);
    std::uint64_t now = 1'000'000;
    const auto m = makeMessage(0, 0, 50);
    for (int i = 0; i < 100; ++i) REQUIRE((*pub)->offer(m, now) == client::Publisher::Offer::Accepted);
    for (int k = 0; k < 100; ++k) {
        now += 5'000;
        (*pub)->doWork(now);
        (*s1)->doWork(now);
    }
    REQUIRE(offsets.size() == 100);
    const Offset before = (*s1)->nextOffset();
    // "Crash": drop the sequencer without a clean stop; the state file stays as the process left it.
    s1->reset();
    t1.reset();
    auto t2 = std::make_unique<transport::MemoryTransport>(net, kSeq);
    Counters c2;
    auto s2 = sequencer::Sequencer::create(cfg, *t2, *t2, c2);
    REQUIRE(s2);
    CHECK((*s2)->epoch() == Epoch{2});
    CHECK((*s2)->nextOffset() == before);
    CHECK((*s2)->recovered());
    // The old ring survives: the last offsets can still be repaired.
    CHECK((*s2)->oldestRetained() < before);
    // The publisher's earlier messages arriving again are recognised as duplicates.
    for (int i = 0; i < 10; ++i) REQUIRE((*pub)->offer(m, now) == client::Publisher::Offer::Accepted);
    for (int k = 0; k < 100; ++k) {
        now += 5'000;
        (*pub)->doWork(now);
        (*s2)->doWork(now);
    }
    REQUIRE(offsets.size() == 110);
    CHECK(offsets[100] == before.get());
    CHECK((*s2)->nextOffset() == Offset{before.get() + 10});
    std::remove(path.c_str());
}

TEST_CASE("confirmation latency of journal-recovered messages counts from the restart, not from clock zero") {
    // On a host up for ~3 hours (monotonic clock ~1e13 ns), a journaled publisher restarts with 20
    // unconfirmed messages. Their confirmation latency is the time since the restart, not the uptime.
    const std::string journal = "/tmp/seqcast-test-journal-" + std::to_string(::getpid());
    std::remove(journal.c_str());
    transport::MemoryNetwork net;
    Counters sc;
    transport::MemoryTransport st(net, kSeq);
    sequencer::SequencerConfig cfg;
    cfg.group = kGroup;
    cfg.ringBytes = 4u << 20;
    auto seq = sequencer::Sequencer::create(cfg, st, st, sc);
    REQUIRE(seq);
    client::PublisherConfig pcfg;
    pcfg.sequencer = kSeq;
    pcfg.id = PublisherId{9};
    pcfg.journalPath = journal;
    std::uint64_t now = 10'000'000'000'000ull;
    const auto m = makeMessage(9, 0, 50);
    {
        Counters pc;
        transport::MemoryTransport pt(net, Endpoint{0x0A000300u, 0});
        auto pub = client::Publisher::create(pcfg, pt, pc, {});
        REQUIRE(pub);
        (*pub)->doWork(now);
        for (int i = 0; i < 20; ++i) REQUIRE((*pub)->offer(m, now) == client::Publisher::Offer::Accepted);
        (*pub)->doWork(now);  // sent, but the sequencer never runs: unconfirmed at the "crash"
    }
    now += 1'000'000'000;
    Counters pc;
    transport::MemoryTransport pt(net, Endpoint{0x0A000301u, 0});
    std::vector<std::uint64_t> latencies;
    auto pub = client::Publisher::create(pcfg, pt, pc, [&](const client::Confirmation& c) { latencies.push_back(c.latencyNs); });
    REQUIRE(pub);
    CHECK((*pub)->recoveredMessages() == 20);
    const std::uint64_t restart = now;
    for (int k = 0; k < 100 && latencies.size() < 20; ++k) {
        (*pub)->doWork(now);
        (*seq)->doWork(now);
        now += 5'000;
    }
    REQUIRE(latencies.size() == 20);
    for (const auto l : latencies) CHECK(l <= now - restart);

    // A message offered before the publisher's first doWork() is timed from that doWork().
    latencies.clear();
    transport::MemoryTransport qt(net, Endpoint{0x0A000302u, 0});
    Counters qc;
    client::PublisherConfig qcfg;
    qcfg.sequencer = kSeq;
    qcfg.id = PublisherId{10};
    auto fresh = client::Publisher::create(qcfg, qt, qc, [&](const client::Confirmation& c) { latencies.push_back(c.latencyNs); });
    REQUIRE(fresh);
    REQUIRE((*fresh)->offer(m, now) == client::Publisher::Offer::Accepted);
    const std::uint64_t first = now;
    for (int k = 0; k < 100 && latencies.empty(); ++k) {
        (*fresh)->doWork(now);
        (*seq)->doWork(now);
        now += 5'000;
    }
    REQUIRE(latencies.size() == 1);
    CHECK(latencies[0] <= now - first);
    std::remove(journal.c_str());
}

// Found by tests/fuzz/fuzz_sequencer.cpp: a NAK arriving in the same receive burst as the PUB that
// filled a datagram found that datagram in the ring before it was sent, restamped it in place, so
// its first multicast went out flagged as a retransmission (and then a second copy followed).
TEST_CASE("a NAK for a datagram not sent yet leaves its first send alone; a later NAK repairs it") {
    transport::MemoryNetwork net;
    Counters c;
    transport::MemoryTransport seqT(net, kSeq);
    transport::MemoryTransport listener(net, Endpoint{0x0A000300u, 0}, {kGroup});
    transport::MemoryTransport src(net, Endpoint{0x0A000200u, 0});
    sequencer::SequencerConfig cfg;
    cfg.group = kGroup;
    cfg.mtu = 256;
    cfg.ringBytes = 1024 * cfg.mtu;
    cfg.retransmitHoldoffNs = 0;
    auto s = sequencer::Sequencer::create(cfg, seqT, seqT, c);
    REQUIRE(s);
    std::uint64_t now = 1'000'000;
    std::vector<transport::RxSlot> rx(16);
    auto dataOnGroup = [&](int& flagged) {
        int n = 0;
        flagged = 0;
        const std::size_t k = listener.recvBurst(rx);
        for (std::size_t i = 0; i < k; ++i) {
            wire::DatagramView v;
            REQUIRE(wire::decode(std::span<const std::byte>(rx[i].data, rx[i].len), v) == wire::DecodeError::Ok);
            if (v.type != wire::FrameType::Data) continue;
            ++n;
            if ((v.flags & wire::kFlagRetransmit) != 0) ++flagged;
        }
        return n;
    };
    int flagged = 0;
    (*s)->doWork(now);
    (void)dataOnGroup(flagged);

    // Two PUBs that do not fit one datagram (the second closes offset 0), then a NAK for offset 0.
    std::vector<std::vector<std::byte>> out;
    const auto payload = makeMessage(7, 0, 150);
    for (std::uint64_t seq = 0; seq < 2; ++seq) {
        std::vector<std::byte> b(cfg.mtu);
        wire::DatagramWriter w(b);
        w.begin(wire::FrameType::Pub, cfg.stream, Epoch{0}, Offset{0});
        REQUIRE(w.appendPiece(wire::MessageFields{PublisherId{7}, PubSeq{seq}, now}, payload, 0) == payload.size());
        b.resize(w.finish(now));
        out.push_back(std::move(b));
    }
    auto nak = [&] {
        std::vector<std::byte> b(wire::kHeaderSize + sizeof(wire::NakRange));
        wire::DatagramWriter w(b);
        w.begin(wire::FrameType::Nak, cfg.stream, (*s)->epoch(), Offset{0});
        REQUIRE(w.appendNakRange(Offset{0}, 1));
        b.resize(w.finish(now));
        return b;
    };
    out.push_back(nak());
    std::vector<transport::TxItem> items;
    for (const auto& b : out) items.push_back(transport::TxItem{b.data(), static_cast<std::uint32_t>(b.size()), kSeq});
    REQUIRE(src.sendBurst(items) == items.size());
    (*s)->doWork(now += 1'000);
    CHECK(dataOnGroup(flagged) == 2);
    CHECK(flagged == 0);
    CHECK(c.get(Counter::Retransmits) == 0);

    // Now that offset 0 was sent, the same NAK is answered.
    const auto again = nak();
    transport::TxItem item{again.data(), static_cast<std::uint32_t>(again.size()), kSeq};
    REQUIRE(src.sendBurst(std::span<const transport::TxItem>(&item, 1)) == 1);
    (*s)->doWork(now += 1'000);
    CHECK(dataOnGroup(flagged) == 1);
    CHECK(flagged == 1);
    CHECK(c.get(Counter::Retransmits) == 1);
}

namespace {
// One PUB datagram (buffer `size` bytes) of `n` whole messages of `len` bytes from publisher 7.
std::vector<std::byte> pubDatagram(std::size_t size, std::uint64_t firstSeq, std::size_t n, std::size_t len) {
    std::vector<std::byte> b(size);
    wire::DatagramWriter w(b);
    w.begin(wire::FrameType::Pub, StreamId{1}, Epoch{0}, Offset{0});
    const auto payload = makeMessage(7, firstSeq, len);
    for (std::size_t i = 0; i < n; ++i) REQUIRE(w.appendPiece(wire::MessageFields{PublisherId{7}, PubSeq{firstSeq + i}, 0}, payload, 0) == len);
    b.resize(w.finish(0));
    return b;
}

struct GroupReader {
    transport::MemoryTransport t;
    std::vector<transport::RxSlot> rx = std::vector<transport::RxSlot>(64);
    std::uint64_t next = 0;  // next fresh offset expected
    std::vector<std::uint64_t> retransmitted;  // first offsets of retransmissions
    bool contiguous = true;
    GroupReader(transport::MemoryNetwork& net) : t(net, Endpoint{0x0A000300u, 0}, {kGroup}) {}
    void drain() {
        for (std::size_t k; (k = t.recvBurst(rx)) != 0;) {
            for (std::size_t i = 0; i < k; ++i) {
                wire::DatagramView v;
                REQUIRE(wire::decode(std::span<const std::byte>(rx[i].data, rx[i].len), v) == wire::DecodeError::Ok);
                if (v.type != wire::FrameType::Data) continue;
                if ((v.flags & wire::kFlagRetransmit) != 0) {
                    retransmitted.push_back(v.firstOffset.get());
                    continue;
                }
                contiguous = contiguous && v.firstOffset.get() == next;
                next = v.firstOffset.get() + v.count;
            }
        }
    }
};
}  // namespace

// Found by tests/fuzz/fuzz_sequencer.cpp: PUBs larger than the sequencer's MTU are repacked into
// many DATA datagrams; one burst committed more than the retransmit ring holds, and the ring reused
// the bytes of datagrams that were queued but not sent yet (the stream lost and repeated data).
TEST_CASE("one burst that commits more datagrams than the ring holds still sends each offset once, in order") {
    transport::MemoryNetwork net;
    Counters c;
    transport::MemoryTransport seqT(net, kSeq);
    transport::MemoryTransport src(net, Endpoint{0x0A000200u, 0});
    GroupReader g(net);
    sequencer::SequencerConfig cfg;
    cfg.group = kGroup;
    cfg.mtu = 128;
    cfg.ringBytes = 1024 * cfg.mtu;
    auto s = sequencer::Sequencer::create(cfg, seqT, seqT, c);
    REQUIRE(s);
    // 8 PUBs of 16 KiB, each entry alone in a 128-byte DATA datagram: ~1600 datagrams in one burst.
    std::vector<std::vector<std::byte>> pubs;
    std::uint64_t seq = 0;
    for (int i = 0; i < 8; ++i, seq += 200) pubs.push_back(pubDatagram(16384, seq, 200, 40));
    std::vector<transport::TxItem> items;
    for (const auto& b : pubs) items.push_back(transport::TxItem{b.data(), static_cast<std::uint32_t>(b.size()), kSeq});
    REQUIRE(src.sendBurst(items) == items.size());
    (*s)->doWork(1'000'000);
    g.drain();
    CHECK((*s)->nextOffset() == Offset{1600});
    CHECK(g.contiguous);
    CHECK(g.next == 1600);
    CHECK(g.retransmitted.empty());
}

// A NAK for the ring's oldest datagram and, in the same burst, a PUB whose datagram evicts it: the
// retransmission must leave before the ring reuses its bytes.
TEST_CASE("a retransmission of the oldest datagram is sent before the same burst overwrites it") {
    transport::MemoryNetwork net;
    Counters c;
    transport::MemoryTransport seqT(net, kSeq);
    transport::MemoryTransport src(net, Endpoint{0x0A000200u, 0});
    GroupReader g(net);
    sequencer::SequencerConfig cfg;
    cfg.group = kGroup;
    cfg.mtu = 128;
    cfg.ringBytes = 1024 * cfg.mtu;
    auto s = sequencer::Sequencer::create(cfg, seqT, seqT, c);
    REQUIRE(s);
    std::uint64_t now = 1'000'000;
    std::uint64_t seq = 0;
    // Fill the ring past its capacity: 1200 one-entry datagrams, 40 per burst.
    for (int round = 0; round < 30; ++round) {
        std::vector<std::vector<std::byte>> pubs;
        for (int i = 0; i < 40; ++i, ++seq) pubs.push_back(pubDatagram(cfg.mtu, seq, 1, 40));
        std::vector<transport::TxItem> items;
        for (const auto& b : pubs) items.push_back(transport::TxItem{b.data(), static_cast<std::uint32_t>(b.size()), kSeq});
        REQUIRE(src.sendBurst(items) == items.size());
        (*s)->doWork(now += 1'000);
        g.drain();
    }
    REQUIRE(g.next == 1200);
    const Offset oldest = (*s)->oldestRetained();
    REQUIRE(oldest > Offset{0});
    // NAK the oldest, then one more PUB in the same burst.
    std::vector<std::byte> nak(wire::kHeaderSize + sizeof(wire::NakRange));
    wire::DatagramWriter w(nak);
    w.begin(wire::FrameType::Nak, cfg.stream, (*s)->epoch(), Offset{0});
    REQUIRE(w.appendNakRange(oldest, 1));
    nak.resize(w.finish(now));
    const auto pub = pubDatagram(cfg.mtu, seq, 1, 40);
    const transport::TxItem items[] = {{nak.data(), static_cast<std::uint32_t>(nak.size()), kSeq},
                                       {pub.data(), static_cast<std::uint32_t>(pub.size()), kSeq}};
    REQUIRE(src.sendBurst(items) == 2);
    (*s)->doWork(now += 1'000);
    g.drain();
    CHECK(g.contiguous);
    CHECK(g.next == 1201);
    REQUIRE(g.retransmitted.size() == 1);
    CHECK(g.retransmitted[0] == oldest.get());
}

// Found by tests/fuzz/fuzz_sequencer.cpp: an empty fragment that is not a message's last moved the
// publisher's position by nothing, so the same (pub_seq, fragment) was sequenced again each time it
// arrived (a resent PUB put it on the stream twice).
TEST_CASE("an empty non-final fragment is refused, never sequenced twice") {
    transport::MemoryNetwork net;
    Counters c;
    transport::MemoryTransport seqT(net, kSeq);
    transport::MemoryTransport src(net, Endpoint{0x0A000200u, 0});
    GroupReader g(net);
    sequencer::SequencerConfig cfg;
    cfg.group = kGroup;
    auto s = sequencer::Sequencer::create(cfg, seqT, seqT, c);
    REQUIRE(s);
    std::vector<std::byte> b(256);
    wire::DatagramWriter w(b);
    w.begin(wire::FrameType::Pub, cfg.stream, Epoch{0}, Offset{0});
    wire::MessageView m;
    m.publisher = PublisherId{7};
    m.pubSeq = PubSeq{0};
    m.flags = wire::kFragFirst;
    m.crc = wire::entryCrcOf(m);
    REQUIRE(w.appendEntry(m));
    b.resize(w.finish(0));
    const auto whole = pubDatagram(256, 0, 1, 10);
    const transport::TxItem items[] = {{b.data(), static_cast<std::uint32_t>(b.size()), kSeq},
                                       {b.data(), static_cast<std::uint32_t>(b.size()), kSeq},
                                       {whole.data(), static_cast<std::uint32_t>(whole.size()), kSeq}};
    REQUIRE(src.sendBurst(items) == 3);
    (*s)->doWork(1'000'000);
    g.drain();
    CHECK(c.get(Counter::DropBadBody) == 2);
    CHECK((*s)->nextOffset() == Offset{1});
    CHECK(g.next == 1);
}

TEST_CASE("a host flooding NAKs gets its share of the retransmission budget; another host's repair still goes out") {
    transport::MemoryNetwork net;
    Counters c;
    transport::MemoryTransport seqT(net, kSeq);
    GroupReader reader(net);
    transport::MemoryTransport pubT(net, Endpoint{0x0A000200u, 0});
    transport::MemoryTransport flooder(net, Endpoint{0x0A000500u, 0});
    transport::MemoryTransport honest(net, Endpoint{0x0A000600u, 0});
    sequencer::SequencerConfig cfg;
    cfg.group = kGroup;
    cfg.mtu = 1024;
    cfg.ringBytes = 4096 * cfg.mtu;
    cfg.retransmitHoldoffNs = 0;
    cfg.retransmitBytesPerSec = 20'000'000;
    cfg.retransmitBytesPerSecPerHost = 10'000'000;
    auto s = sequencer::Sequencer::create(cfg, seqT, seqT, c);
    REQUIRE(s);
    std::uint64_t now = 1'000'000;
    // 2000 datagrams of one message each on the stream.
    for (std::uint64_t i = 0; i < 2000; i += 8) {
        std::vector<std::vector<std::byte>> dgs;
        for (std::uint64_t k = 0; k < 8; ++k) dgs.push_back(pubDatagram(1024, i + k, 1, 900));
        std::vector<transport::TxItem> items;
        for (const auto& d : dgs) items.push_back(transport::TxItem{d.data(), static_cast<std::uint32_t>(d.size()), kSeq});
        REQUIRE(pubT.sendBurst(items) == items.size());
        (*s)->doWork(now += 10'000);
        reader.drain();
    }
    REQUIRE((*s)->nextOffset().get() == 2000);
    auto nakFor = [&](std::uint64_t first, std::uint32_t count) {
        std::vector<std::byte> b(wire::kHeaderSize + sizeof(wire::NakRange));
        wire::DatagramWriter w(b);
        w.begin(wire::FrameType::Nak, cfg.stream, (*s)->epoch(), Offset{first});
        REQUIRE(w.appendNakRange(Offset{first}, count));
        b.resize(w.finish(now));
        return b;
    };
    // One simulated second: every 100 us the flooder asks for the whole ring.
    const auto flood = nakFor(0, 2000);
    const std::uint64_t start = now;
    std::uint64_t honestAsked = 0, honestServed = 0;
    while (now < start + 1'000'000'000ull) {
        transport::TxItem t{flood.data(), static_cast<std::uint32_t>(flood.size()), kSeq};
        REQUIRE(flooder.sendBurst(std::span<const transport::TxItem>(&t, 1)) == 1);
        const bool ask = (now - start) % 100'000'000 == 0;  // ten times: the honest host asks for one datagram
        const std::uint64_t want = 1000 + honestAsked;
        if (ask) {
            const auto one = nakFor(want, 1);
            transport::TxItem h{one.data(), static_cast<std::uint32_t>(one.size()), kSeq};
            REQUIRE(honest.sendBurst(std::span<const transport::TxItem>(&h, 1)) == 1);
            ++honestAsked;
        }
        const std::size_t before = reader.retransmitted.size();
        (*s)->doWork(now += 100'000);
        reader.drain();
        // Answered in the same round, behind the flooder's request for everything.
        if (ask && std::find(reader.retransmitted.begin() + static_cast<std::ptrdiff_t>(before), reader.retransmitted.end(), want) !=
                       reader.retransmitted.end())
            ++honestServed;
    }
    // The flooder's share: 10 MB/s plus the initial burst allowance, of a 20 MB/s budget.
    const double bytes = static_cast<double>(c.get(Counter::Retransmits)) * 1024;
    CHECK(bytes < 1.2 * 10'000'000 + 2 * 64 * 1024);
    CHECK(c.get(Counter::RetransmitsHostLimited) > 0);
    CHECK(c.get(Counter::RetransmitsRateLimited) == 0);
    // Every honest request was answered at once.
    CHECK(honestAsked == 10);
    CHECK(honestServed == honestAsked);
}

// Integrity across the retransmit ring: a NAK answer re-signs the stored datagram (new flags, new
// CRC), so the stored copy is checked first. Bytes flipped inside the ring, here through the state
// file the ring is mapped from (as damaged memory or disk would), are never sent: the subscriber
// that asked reports the message lost and never delivers it damaged.
TEST_CASE("a message damaged inside the sequencer's ring is never retransmitted or delivered; it is counted and reported lost") {
    const std::string path = "/tmp/seqcast-test-ring-crc-" + std::to_string(::getpid());
    std::remove(path.c_str());
    transport::FaultConfig none;
    sequencer::SequencerConfig cfg;
    cfg.statePath = path;
    cfg.ringBytes = 4u << 20;
    cfg.retransmitHoldoffNs = 0;
    Harness h(1, 2, none, none, cfg);
    auto& p = *h.pubs[0];
    for (std::uint64_t i = 0; i < 50; ++i) REQUIRE(p.pub->offer(makeMessage(0, i, 100), h.now) == client::Publisher::Offer::Accepted);
    for (int k = 0; k < 20000 && !p.pub->allConfirmed(); ++k) h.step();
    REQUIRE(p.pub->allConfirmed());
    // One more message, one no other message resembles; subscriber 0 loses its datagram.
    const std::vector<std::byte> marked(100, std::byte{0x5A});
    REQUIRE(p.pub->offer(marked, h.now) == client::Publisher::Offer::Accepted);
    h.now += 5'000;
    p.pub->doWork(h.now);
    h.seq->doWork(h.now);
    transport::RxSlot slots[64];
    while (h.subs[0]->t->recvBurst(slots) > 0) {}

    // Flip one byte of that message's payload in the ring, through a second mapping of the state file.
    const int fd = ::open(path.c_str(), O_RDWR);
    REQUIRE(fd >= 0);
    struct stat st {};
    REQUIRE(::fstat(fd, &st) == 0);
    void* m = ::mmap(nullptr, static_cast<std::size_t>(st.st_size), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    ::close(fd);
    REQUIRE(m != MAP_FAILED);
    const std::span<std::byte> file(static_cast<std::byte*>(m), static_cast<std::size_t>(st.st_size));
    const auto at = std::search(file.begin(), file.end(), marked.begin(), marked.end());
    REQUIRE(at != file.end());
    REQUIRE(std::search(at + 1, file.end(), marked.begin(), marked.end()) == file.end());  // one copy only
    at[50] ^= std::byte{0x01};
    ::munmap(m, file.size());

    // Subscriber 0 NAKs it until its gap deadline (2 s), then reports it lost.
    for (int k = 0; k < 1'000'000 && h.subs[0]->lost == 0 && h.subs[0]->delivered < 51; ++k) h.step();
    const auto& s0 = *h.subs[0];
    const auto& s1 = *h.subs[1];
    CHECK(s1.delivered == 51);  // it did not lose the original
    CHECK(s0.delivered == 50);
    CHECK(s0.lost == 1);
    CHECK(s0.sub->gaps().stats().naksSent > 0);
    CHECK(h.seqCounters.get(Counter::RetransmitsBadCrc) > 0);
    CHECK(h.seqCounters.get(Counter::Retransmits) == 0);
    // What subscriber 0 delivered is exactly the first 50 messages.
    std::uint32_t first50 = kCrc32cInit;
    for (std::uint64_t i = 0; i < 50; ++i) first50 = crc32cUpdate(first50, makeMessage(0, i, 100));
    CHECK(s0.digest == first50);
    std::remove(path.c_str());
}

namespace {
// One PUB datagram from publisher `id`: window base `base`, one message `seq` of 16 bytes.
std::vector<std::byte> pubOne(std::uint32_t id, std::uint64_t base, std::uint64_t seq) {
    std::vector<std::byte> b(256);
    wire::DatagramWriter w(b);
    w.begin(wire::FrameType::Pub, StreamId{1}, Epoch{0}, Offset{base});
    const auto payload = makeMessage(id, seq, 16);
    REQUIRE(w.appendPiece(wire::MessageFields{PublisherId{id}, PubSeq{seq}, 0}, payload, 0) == 16);
    b.resize(w.finish(0));
    return b;
}

// A publisher's socket as the sequencer sees it: sends PUBs, collects the answers.
struct FakePub {
    std::uint32_t id;
    transport::MemoryTransport t;
    std::vector<std::pair<std::uint64_t, std::uint64_t>> acks;  // (pub_seq, offset)
    std::vector<wire::PubNakReason> naks;
    FakePub(transport::MemoryNetwork& net, std::uint32_t i) : id(i), t(net, Endpoint{0x0A000400u + i, 0}) {}
    void send(std::uint64_t base, std::uint64_t seq) {
        const auto b = pubOne(id, base, seq);
        const transport::TxItem it{b.data(), static_cast<std::uint32_t>(b.size()), kSeq};
        REQUIRE(t.sendBurst(std::span(&it, 1)) == 1);
    }
    void drain() {
        std::vector<transport::RxSlot> rx(64);
        for (std::size_t k; (k = t.recvBurst(rx)) != 0;) {
            for (std::size_t i = 0; i < k; ++i) {
                wire::DatagramView v;
                REQUIRE(wire::decode(std::span<const std::byte>(rx[i].data, rx[i].len), v) == wire::DecodeError::Ok);
                if (v.type == wire::FrameType::PubNak) naks.push_back(wire::pubNak(v).reason);
                if (v.type != wire::FrameType::PubAck) continue;
                for (std::uint32_t r = 0; r < v.count; ++r) {
                    const auto run = wire::pubAckRun(v, r);
                    for (std::uint32_t m = 0; m < run.count; ++m)
                        acks.emplace_back(run.firstPubSeq.get() + m, run.firstOffset.get() == wire::kOffsetOpen
                                                                         ? wire::kOffsetOpen
                                                                         : run.firstOffset.get() + m * run.stride);
                }
            }
        }
    }
};
}  // namespace

TEST_CASE("idle publishers give their slots to new ones; a late retransmission is still a duplicate, a forgotten one counted") {
    transport::MemoryNetwork net;
    Counters c;
    transport::MemoryTransport seqT(net, kSeq);
    GroupReader g(net);
    sequencer::SequencerConfig cfg;
    cfg.group = kGroup;
    cfg.maxPublishers = 2;
    cfg.publisherTimeoutNs = 1'000'000'000;  // 1 s
    cfg.retiredPublishers = 1;                // remember one retired publisher's position
    auto s = sequencer::Sequencer::create(cfg, seqT, seqT, c);
    REQUIRE(s);
    auto& seq = **s;
    std::vector<std::unique_ptr<FakePub>> p;
    for (std::uint32_t i = 0; i <= 4; ++i) p.push_back(std::make_unique<FakePub>(net, i));
    const std::uint64_t ms = 1'000'000;
    auto at = [&](std::uint64_t t) {
        seq.doWork(t * ms);
        g.drain();
        for (auto& f : p) f->drain();
    };
    const auto open = wire::kOffsetOpen;
    using Acks = std::vector<std::pair<std::uint64_t, std::uint64_t>>;

    p[1]->send(1, 1);
    p[2]->send(1, 1);
    at(1);
    CHECK(seq.nextOffset() == Offset{2});
    CHECK(p[1]->acks == Acks{{1, 0}});
    CHECK(p[2]->acks == Acks{{1, 1}});

    // Both slots taken by publishers active within the timeout: a third is refused.
    p[3]->send(1, 1);
    at(500);
    CHECK(seq.nextOffset() == Offset{2});
    CHECK(p[3]->naks == std::vector<wire::PubNakReason>{wire::PubNakReason::TooManyPublishers});
    CHECK(c.get(Counter::PublishersExpired) == 0);

    // Publisher 1 idle for 1.6 s, publisher 2 for 0.4 s: publisher 3 takes publisher 1's slot.
    p[2]->send(2, 2);
    at(1200);
    p[3]->send(1, 1);
    at(1600);
    CHECK(c.get(Counter::PublishersExpired) == 1);
    CHECK(seq.nextOffset() == Offset{4});
    CHECK(p[3]->acks == Acks{{1, 3}});

    // A late retransmission of publisher 1's message 1: it takes publisher 2's slot (idle 1.8 s)
    // and is recognised: confirmed again (offset no longer known), not sequenced twice.
    p[1]->send(1, 1);
    at(3000);
    CHECK(c.get(Counter::PublishersExpired) == 2);
    CHECK(seq.nextOffset() == Offset{4});
    CHECK(c.get(Counter::DropDuplicate) == 1);
    CHECK(p[1]->acks == Acks{{1, 0}, {1, open}});
    p[1]->send(1, 2);  // and it goes on where it was
    at(3001);
    CHECK(seq.nextOffset() == Offset{5});
    CHECK(p[1]->acks.back() == std::pair<std::uint64_t, std::uint64_t>{2, 4});
    CHECK(c.get(Counter::PublishersUnrecognised) == 0);

    // Publisher 4 takes publisher 3's slot (idle since 1.6 s); only one retired position is
    // remembered, so publisher 2's is forgotten. Its retransmission of message 2 can no longer be
    // told from a new message: it is sequenced again, and that is counted.
    p[4]->send(1, 1);
    at(5000);
    CHECK(c.get(Counter::PublishersExpired) == 3);
    CHECK(seq.nextOffset() == Offset{6});
    p[2]->send(2, 2);
    at(7000);
    CHECK(c.get(Counter::PublishersExpired) == 4);  // publisher 1 (idle since 3.0 s) made room
    CHECK(c.get(Counter::PublishersUnrecognised) == 1);
    CHECK(seq.nextOffset() == Offset{7});
    CHECK(g.contiguous);
    CHECK(g.next == 7);
}

// The publisher's CRC of each message is taken at offer() and kept in the journal beside it: a
// message whose bytes changed in the journal while the publisher was down is refused at the
// restart, never sent signed as if intact; a journal of the previous version is refused by name.
TEST_CASE("a journal whose unconfirmed message was damaged is refused at restart, naming the pub_seq") {
    const std::string journal = "/tmp/seqcast-test-journal-crc-" + std::to_string(::getpid());
    std::remove(journal.c_str());
    transport::MemoryNetwork net;
    client::PublisherConfig pcfg;
    pcfg.sequencer = kSeq;
    pcfg.id = PublisherId{11};
    pcfg.journalPath = journal;
    const auto m = makeMessage(11, 3, 64);
    {
        Counters pc;
        transport::MemoryTransport pt(net, Endpoint{0x0A000400u, 0});
        auto pub = client::Publisher::create(pcfg, pt, pc, {});
        REQUIRE(pub);
        for (int i = 0; i < 3; ++i) REQUIRE((*pub)->offer(m, 1) == client::Publisher::Offer::Accepted);
    }
    auto readAll = [&] {
        std::FILE* f = std::fopen(journal.c_str(), "rb");
        REQUIRE(f != nullptr);
        std::vector<std::byte> b;
        std::byte chunk[65536];
        for (std::size_t n; (n = std::fread(chunk, 1, sizeof chunk, f)) > 0;) b.insert(b.end(), chunk, chunk + n);
        std::fclose(f);
        return b;
    };
    auto writeAt = [&](std::size_t at, std::byte v) {
        std::FILE* f = std::fopen(journal.c_str(), "r+b");
        REQUIRE(f != nullptr);
        REQUIRE(std::fseek(f, static_cast<long>(at), SEEK_SET) == 0);
        REQUIRE(std::fwrite(&v, 1, 1, f) == 1);
        std::fclose(f);
    };
    {  // intact: recovered
        Counters pc;
        transport::MemoryTransport pt(net, Endpoint{0x0A000401u, 0});
        auto pub = client::Publisher::create(pcfg, pt, pc, {});
        REQUIRE(pub);
        CHECK((*pub)->recoveredMessages() == 3);
    }
    // The second message's bytes: the first copy of the payload after the first one.
    const auto file = readAll();
    const auto first = std::search(file.begin(), file.end(), m.begin(), m.end());
    REQUIRE(first != file.end());
    const auto second = std::search(first + 1, file.end(), m.begin(), m.end());
    REQUIRE(second != file.end());
    const auto at = static_cast<std::size_t>(second - file.begin()) + 10;
    writeAt(at, file[at] ^ std::byte{0x20});
    {
        Counters pc;
        transport::MemoryTransport pt(net, Endpoint{0x0A000402u, 0});
        auto pub = client::Publisher::create(pcfg, pt, pc, {});
        REQUIRE_FALSE(pub);
        CHECK(pub.error().message().find("damaged at pub_seq 2") != std::string::npos);
        CHECK(pub.error().message().find("CRC32C") != std::string::npos);
    }
    writeAt(at, file[at]);
    writeAt(8, std::byte{1});  // the version field (after the 8-byte magic): 1, before messages had CRCs
    {
        Counters pc;
        transport::MemoryTransport pt(net, Endpoint{0x0A000403u, 0});
        auto pub = client::Publisher::create(pcfg, pt, pc, {});
        REQUIRE_FALSE(pub);
        CHECK(pub.error().message().find("version 2") != std::string::npos);
        CHECK(pub.error().message().find("older seqcast") != std::string::npos);
    }
    std::remove(journal.c_str());
}

// A subscriber that lost every END_OF_STREAM copy learns of the end from a flagged heartbeat. With
// the interval doubling up to 100 ms, a second of lingering sent ~20 of them, all inside the first
// ~1 s: a burst of 50 lost datagrams (live_loss_loopback's fault model) swallowed the lot.
TEST_CASE("after the end, flagged heartbeats keep coming at least every 10 ms") {
    transport::MemoryNetwork net;
    Counters c;
    transport::MemoryTransport seqT(net, kSeq);
    transport::MemoryTransport reader(net, Endpoint{0x0A000301u, 0}, {kGroup});
    sequencer::SequencerConfig cfg;
    cfg.group = kGroup;
    auto s = sequencer::Sequencer::create(cfg, seqT, seqT, c);
    REQUIRE(s);
    std::uint64_t now = 1'000'000'000;
    (*s)->doWork(now);
    (*s)->endOfStream();
    std::vector<transport::RxSlot> rx(64);
    std::size_t flagged = 0;
    std::uint64_t lastFlagged = 0, maxGap = 0;
    const std::uint64_t start = now;
    for (; now < start + 1'000'000'000ull; now += 100'000) {
        (*s)->doWork(now);
        for (std::size_t k; (k = reader.recvBurst(rx)) != 0;)
            for (std::size_t i = 0; i < k; ++i) {
                wire::DatagramView v;
                REQUIRE(wire::decode(std::span<const std::byte>(rx[i].data, rx[i].len), v) == wire::DecodeError::Ok);
                if (v.type != wire::FrameType::Heartbeat || (v.flags & wire::kFlagEnd) == 0) continue;
                ++flagged;
                if (lastFlagged != 0) maxGap = std::max(maxGap, now - lastFlagged);
                lastFlagged = now;
            }
    }
    CHECK(flagged >= 90);  // doubling to 100 ms: 19
    CHECK(maxGap <= sequencer::Sequencer::kEndHeartbeatMaxNs + 100'000);
    MESSAGE("flagged heartbeats in the first second after the end: ", flagged);
}
