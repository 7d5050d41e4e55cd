// Hot standby (HA) in one process over the in-memory network, driven by a fake clock: a leader and
// a standby sequencer, publishers and a subscriber. The leadership decisions etcd makes in a real
// deployment (sequencer/ha.cpp) are made here by the test: lead(), standBy(), setReplicas().
#include <doctest/doctest.h>

#include <map>
#include <memory>
#include <set>
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

const Endpoint kGroup{0xEF010101, 5000};

struct Node {
    Endpoint control, data, repl;
    std::unique_ptr<transport::Transport> ctlT, dataT, replT;
    Counters c;
    std::unique_ptr<sequencer::Sequencer> seq;
    bool alive = true;

    Node(transport::MemoryNetwork& net, std::uint32_t host, const transport::FaultConfig& replFaults = {}) {
        control = Endpoint{host, 4000};
        data = Endpoint{host, 4002};
        repl = Endpoint{host, 4004};
        ctlT = std::make_unique<transport::MemoryTransport>(net, control);
        dataT = std::make_unique<transport::MemoryTransport>(net, data);
        auto r = std::make_unique<transport::MemoryTransport>(net, repl);
        replT = replFaults.any() ? std::unique_ptr<transport::Transport>(new transport::FaultTransport(std::move(r), replFaults))
                                 : std::unique_ptr<transport::Transport>(std::move(r));
        sequencer::SequencerConfig cfg;
        cfg.group = kGroup;
        cfg.ringBytes = 4u << 20;
        auto s = sequencer::Sequencer::create(cfg, *ctlT, *dataT, c);
        REQUIRE(s);
        seq = std::move(*s);
        seq->attachReplication(*replT);
    }
};

struct Sub {
    std::unique_ptr<transport::Transport> t;
    Counters c;
    std::unique_ptr<client::Subscriber> sub;
    std::vector<std::pair<std::uint32_t, std::uint64_t>> got;  // (publisher, pub_seq) in offset order
    std::vector<std::uint64_t> offsets;
    std::uint64_t lost = 0;
};

struct Pub {
    std::unique_ptr<transport::Transport> t;
    Counters c;
    std::unique_ptr<client::Publisher> pub;
    std::uint64_t offered = 0, confirmed = 0;
    std::uint64_t target = 0;  // step() offers up to this many messages, as the window allows
};

struct Cluster {
    transport::MemoryNetwork net;
    std::vector<std::unique_ptr<Node>> nodes;
    std::vector<std::unique_ptr<Pub>> pubs;
    std::unique_ptr<Sub> sub;
    std::uint64_t now = 1'000'000;

    Node& node(int i) { return *nodes[static_cast<std::size_t>(i)]; }

    void addSubscriber() {
        sub = std::make_unique<Sub>();
        sub->t = std::make_unique<transport::MemoryTransport>(net, Endpoint{0x0A000100u, 0}, std::vector<Endpoint>{kGroup});
        client::SubscriberConfig cfg;
        Sub* raw = sub.get();
        client::SubscriberHandlers h;
        h.onMessage = [raw](const client::Delivery& d) {
            raw->got.emplace_back(d.publisher, d.pubSeq);
            raw->offsets.push_back(d.offset);
        };
        h.onLoss = [raw](Offset, std::uint64_t n) { raw->lost += n; };
        cfg.start.kind = client::StartPosition::Kind::Latest;
        sub->sub = std::make_unique<client::Subscriber>(cfg, *sub->t, *sub->t, sub->c, h);
    }

    Pub& addPublisher(std::uint32_t id, std::vector<int> targets) {
        auto p = std::make_unique<Pub>();
        p->t = std::make_unique<transport::MemoryTransport>(net, Endpoint{0x0A000200u + id, 0});
        client::PublisherConfig cfg;
        cfg.sequencer = node(targets[0]).control;
        for (std::size_t i = 1; i < targets.size(); ++i) cfg.alternates.push_back(node(targets[i]).control);
        cfg.id = PublisherId{id};
        cfg.window = 256;
        Pub* raw = p.get();
        auto made = client::Publisher::create(cfg, *p->t, p->c, [raw](const client::Confirmation&) { ++raw->confirmed; });
        REQUIRE(made);
        p->pub = std::move(*made);
        pubs.push_back(std::move(p));
        return *pubs.back();
    }

    void offer(Pub& p, std::uint64_t upTo) { p.target = upTo; }
    void offerNow(Pub& p) {
        while (p.offered < p.target) {
            std::vector<std::byte> m(40, static_cast<std::byte>(p.offered & 0xFF));
            if (p.pub->offer(m, now) != client::Publisher::Offer::Accepted) break;
            ++p.offered;
        }
    }

    void step() {
        now += 20'000;
        for (auto& p : pubs) offerNow(*p);
        for (auto& n : nodes)
            if (n->alive) n->seq->doWork(now);
        for (auto& p : pubs) p->pub->doWork(now);
        if (sub) sub->sub->doWork(now);
    }
    void run(int steps) {
        for (int i = 0; i < steps; ++i) step();
    }
};

// Every message of every publisher delivered exactly once, per publisher in order, at consecutive offsets.
void checkOnceInOrder(const Sub& s, const std::map<std::uint32_t, std::uint64_t>& expected) {
    std::map<std::uint32_t, std::uint64_t> next;
    bool fifo = true;
    for (const auto& [pub, seq] : s.got) {
        auto& n = next[pub];
        if (seq != n + 1) fifo = false;
        n = seq;
    }
    CHECK(fifo);
    for (const auto& [pub, count] : expected) CHECK(next[pub] == count);
    std::uint64_t total = 0;
    for (const auto& [pub, count] : expected) total += count;
    CHECK(s.got.size() == total);
    bool consecutive = true;
    for (std::size_t i = 1; i < s.offsets.size(); ++i) consecutive = consecutive && s.offsets[i] == s.offsets[i - 1] + 1;
    CHECK(consecutive);
    CHECK(s.lost == 0);
}

}  // namespace

TEST_CASE("replicate, then publish: nothing reaches the group or is confirmed before the required standby holds it") {
    Cluster cl;
    cl.nodes.push_back(std::make_unique<Node>(cl.net, 0x0A000001));
    cl.nodes.push_back(std::make_unique<Node>(cl.net, 0x0A000002));
    auto& leader = *cl.node(0).seq;
    auto& standby = *cl.node(1).seq;
    leader.setReplicas({{cl.node(1).repl, true}});
    leader.lead(Epoch{100});
    standby.standBy(cl.node(0).repl, Epoch{100});
    cl.addSubscriber();
    auto& p = cl.addPublisher(1, {0, 1});
    cl.run(50);  // the standby joins (snapshot) and the subscriber hears the head
    REQUIRE(standby.stateComplete());

    cl.node(1).alive = false;  // the standby stops acknowledging
    cl.offer(p, 20);
    cl.run(100);
    CHECK(leader.nextOffset().get() == 20);   // sequenced...
    CHECK(leader.releasedOffset().get() == 0); // ...but not released
    CHECK(cl.sub->got.empty());
    CHECK(p.confirmed == 0);

    cl.node(1).alive = true;
    cl.run(200);
    CHECK(leader.releasedOffset().get() == 20);
    CHECK(p.confirmed == 20);
    checkOnceInOrder(*cl.sub, {{1, 20}});
    CHECK(standby.nextOffset().get() == 20);
    CHECK(cl.node(0).c.get(Counter::ReplDatagramsOut) > 0);
    CHECK(cl.node(1).c.get(Counter::ReplDatagramsIn) > 0);
}

TEST_CASE("a standby refuses PUBs as not the leader; the publisher moves to the next sequencer") {
    Cluster cl;
    cl.nodes.push_back(std::make_unique<Node>(cl.net, 0x0A000001));
    cl.nodes.push_back(std::make_unique<Node>(cl.net, 0x0A000002));
    cl.node(0).seq->lead(Epoch{7});
    cl.node(1).seq->standBy(cl.node(0).repl, Epoch{7});
    cl.addSubscriber();
    auto& p = cl.addPublisher(1, {1, 0});  // starts at the standby
    cl.run(20);
    cl.offer(p, 10);
    cl.run(200);
    CHECK(cl.node(1).c.get(Counter::HaNotLeader) > 0);
    CHECK(p.pub->failovers() >= 1);
    CHECK(p.pub->target() == cl.node(0).control);
    CHECK(p.confirmed == 10);
    checkOnceInOrder(*cl.sub, {{1, 10}});
}

TEST_CASE("failover: the standby takes over, nothing is lost, duplicated or given two offsets; the zombie is fenced") {
    transport::FaultConfig lossy;
    lossy.seed = 3;
    lossy.loss = 0.15;  // the replication leg loses datagrams both ways: the leader goes back
    Cluster cl;
    cl.nodes.push_back(std::make_unique<Node>(cl.net, 0x0A000001, lossy));
    lossy.seed = 4;
    cl.nodes.push_back(std::make_unique<Node>(cl.net, 0x0A000002, lossy));
    auto& old = *cl.node(0).seq;
    auto& next = *cl.node(1).seq;
    old.lead(Epoch{100});  // alone at first: the standby joins late, from a snapshot
    cl.addSubscriber();
    auto& p1 = cl.addPublisher(1, {0, 1});
    auto& p2 = cl.addPublisher(2, {0, 1});
    cl.run(20);
    cl.offer(p1, 300);
    cl.offer(p2, 300);
    cl.run(300);
    REQUIRE(old.nextOffset().get() == 600);
    old.setReplicas({{cl.node(1).repl, true}});
    next.standBy(cl.node(0).repl, Epoch{100});
    for (int i = 0; i < 4; ++i) {  // publisher 2 sends nothing more: only the snapshot knows it
        cl.offer(p1, 300 + 100 * (i + 1));
        cl.run(1500);  // > a join retry (20 ms): a lost snapshot or join is asked again
    }
    REQUIRE(next.stateComplete());
    CHECK(cl.node(0).c.get(Counter::ReplResends) > 0);

    // The leader pauses (a zombie to be) with messages in flight: sequenced and held by the
    // standby, but not yet released (the standby's acknowledgement comes after the pause).
    cl.offer(p1, 1000);
    cl.step();  // the publisher sends
    cl.step();  // the leader sequences and replicates, the standby stores
    cl.node(0).alive = false;
    CHECK(old.releasedOffset().get() < old.nextOffset().get());
    cl.run(5);
    const std::uint64_t zombieHead = old.nextOffset().get();
    // etcd's decision, made by the test: the standby fences itself, then leads with a new epoch
    // and without the old leader in its in-sync set.
    next.standBy({}, Epoch{0});
    next.lead(Epoch{200});
    next.setReplicas({});
    cl.run(1500);
    CHECK(cl.sub->c.get(Counter::EpochChanges) == 1);
    CHECK(cl.sub->sub->epoch().get() == 200);

    // The zombie resumes: its standby is the new leader now and acknowledges nothing, so nothing
    // it sequenced after the pause is ever released; its old-epoch heartbeats are dropped.
    cl.node(0).alive = true;
    auto& p3 = cl.addPublisher(3, {0});  // a publisher that only knows the old leader
    cl.offer(p3, 20);
    const std::uint64_t wrongEpochBefore = cl.sub->c.get(Counter::DropWrongEpoch);
    cl.run(2000);
    CHECK(old.nextOffset().get() > zombieHead);  // it sequenced p3's messages...
    CHECK(old.releasedOffset().get() <= zombieHead);
    CHECK(p3.confirmed == 0);                    // ...but confirmed none and released none
    CHECK(cl.sub->c.get(Counter::DropWrongEpoch) > wrongEpochBefore);
    {
        // A NAK for what the zombie sequenced but never released is not answered: those offsets
        // belong to the new leader's history.
        transport::MemoryTransport nakker(cl.net, Endpoint{0x0A000301u, 0});
        std::vector<std::byte> nak(256);
        wire::DatagramWriter w(nak);
        w.begin(wire::FrameType::Nak, StreamId{1}, Epoch{100}, old.releasedOffset());
        REQUIRE(w.appendNakRange(old.releasedOffset(), static_cast<std::uint32_t>(old.nextOffset().get() - old.releasedOffset().get())));
        const transport::TxItem item{nak.data(), static_cast<std::uint32_t>(w.finish(1)), cl.node(0).data};
        const std::uint64_t retransmitsBefore = cl.node(0).c.get(Counter::Retransmits);
        REQUIRE(nakker.sendBurst(std::span<const transport::TxItem>(&item, 1)) == 1);
        cl.run(10);
        CHECK(cl.node(0).c.get(Counter::NaksReceived) > 0);
        CHECK(cl.node(0).c.get(Counter::Retransmits) == retransmitsBefore);
    }
    CHECK(cl.node(1).c.get(Counter::DropNotAllowed) + cl.node(1).c.get(Counter::HaNotLeader) > 0);

    CHECK(p1.confirmed == 1000);
    CHECK(p2.confirmed == 300);
    checkOnceInOrder(*cl.sub, {{1, 1000}, {2, 300}});
    CHECK(next.nextOffset().get() == 1300);  // every message sequenced once in the whole history

    // The new leader knows publisher 2 only from the snapshot (it sent nothing after the standby
    // joined): a message of it sequenced before the join, sent again, is a duplicate, not a new offset.
    transport::MemoryTransport raw(cl.net, Endpoint{0x0A000300u, 0});
    std::vector<std::byte> buf(1408);
    wire::DatagramWriter w(buf);
    w.begin(wire::FrameType::Pub, StreamId{1}, Epoch{0}, Offset{5});
    const std::vector<std::byte> payload(40, std::byte{5});
    REQUIRE(w.appendPiece(wire::MessageFields{PublisherId{2}, PubSeq{5}, 1}, payload, 0));
    const transport::TxItem item{buf.data(), static_cast<std::uint32_t>(w.finish(1)), cl.node(1).control};
    REQUIRE(raw.sendBurst(std::span<const transport::TxItem>(&item, 1)) == 1);
    const std::uint64_t dupsBefore = cl.node(1).c.get(Counter::DropDuplicate);
    cl.run(10);
    CHECK(cl.node(1).c.get(Counter::DropDuplicate) == dupsBefore + 1);
    CHECK(next.nextOffset().get() == 1300);
}

TEST_CASE("replication sockets: forged, stale and absurd frames are dropped and counted; joins are paced") {
    Cluster cl;
    cl.nodes.push_back(std::make_unique<Node>(cl.net, 0x0A000001));
    cl.nodes.push_back(std::make_unique<Node>(cl.net, 0x0A000002));
    cl.nodes.push_back(std::make_unique<Node>(cl.net, 0x0A000003));
    auto& leader = *cl.node(0).seq;
    auto& standby = *cl.node(1).seq;
    const Endpoint member{0x0A000009, 4004};  // a member the test speaks for
    transport::MemoryTransport memberT(cl.net, member);
    leader.setReplicas({{cl.node(1).repl, true}, {member, false}});
    leader.lead(Epoch{100});
    standby.standBy(cl.node(0).repl, Epoch{100});
    cl.addSubscriber();
    auto& p = cl.addPublisher(1, {0});
    cl.run(50);
    cl.offer(p, 50);
    cl.run(200);
    REQUIRE(p.confirmed == 50);
    auto& sc = cl.node(1).c;
    auto& lc = cl.node(0).c;
    transport::RxSlot slots[64];

    auto sendFrom = [&](transport::Transport& t, Endpoint to, const std::vector<std::byte>& d) {
        const transport::TxItem item{d.data(), static_cast<std::uint32_t>(d.size()), to};
        REQUIRE(t.sendBurst(std::span<const transport::TxItem>(&item, 1)) == 1);
        cl.run(3);
    };
    auto snapshot = [](std::uint64_t session, std::uint32_t chunk, std::uint32_t chunks, std::uint64_t ringStart, std::uint64_t tableHead) {
        std::vector<std::byte> buf(256);
        wire::DatagramWriter w(buf);
        w.begin(wire::FrameType::ReplSnapshot, StreamId{1}, Epoch{100}, Offset{ringStart});
        wire::ReplSnapshotBody b{};
        b.session.set(session);
        b.chunk.set(chunk);
        b.chunks.set(chunks);
        b.tableHead.set(tableHead);
        w.appendStruct(b);
        buf.resize(w.finish(1));
        return buf;
    };

    // The standby: from anyone but its leader, not allowed; from its leader's address in another
    // epoch, wrong epoch; a released point beyond what it holds, or a snapshot of another session,
    // changes nothing.
    {
        transport::MemoryTransport stranger(cl.net, Endpoint{0x0A000099, 4004});
        const std::uint64_t notAllowed = sc.get(Counter::DropNotAllowed);
        sendFrom(stranger, cl.node(1).repl, snapshot(1, 0, 1, 0, 0));
        CHECK(sc.get(Counter::DropNotAllowed) == notAllowed + 1);
    }
    cl.node(0).alive = false;  // the leader's address is the test's for a moment (its socket is not read)
    {
        std::vector<std::byte> hb(64);
        hb.resize(wire::encodeHeartbeat(hb, StreamId{1}, Epoch{99}, Offset{1'000'000}, Offset{0}, 1));
        const std::uint64_t wrongEpoch = sc.get(Counter::DropWrongEpoch);
        sendFrom(*cl.node(0).replT, cl.node(1).repl, hb);
        CHECK(sc.get(Counter::DropWrongEpoch) == wrongEpoch + 1);
        hb.assign(64, std::byte{0});
        hb.resize(wire::encodeHeartbeat(hb, StreamId{1}, Epoch{100}, Offset{1'000'000}, Offset{0}, 1));
        sendFrom(*cl.node(0).replT, cl.node(1).repl, hb);
        sendFrom(*cl.node(0).replT, cl.node(1).repl, snapshot(12345, 0, 1, 0, 0));
        CHECK(standby.nextOffset().get() == 50);
        CHECK(standby.stateComplete());
    }
    cl.node(0).alive = true;
    cl.run(50);

    // A third sequencer follows a "leader" the test plays: a snapshot claiming 4 billion chunks, or a
    // publisher table older than the ring it describes, is refused (not allocated); a sane one is taken.
    {
        const Endpoint fake{0x0A000010, 4004};
        transport::MemoryTransport fakeT(cl.net, fake);
        auto& third = *cl.node(2).seq;
        third.standBy(fake, Epoch{100});
        cl.run(5);
        std::uint64_t session = 0;
        for (std::size_t n = fakeT.recvBurst(slots), i = 0; i < n; ++i) {
            wire::DatagramView v;
            if (wire::decode(std::span<const std::byte>(slots[i].data, slots[i].len), v) == wire::DecodeError::Ok &&
                v.type == wire::FrameType::ReplJoin)
                session = wire::replSession(v);
        }
        REQUIRE(session != 0);
        const std::uint64_t badBody = cl.node(2).c.get(Counter::DropBadBody);
        sendFrom(fakeT, cl.node(2).repl, snapshot(session, 0, 0xFFFFFFFFu, 0, 0));
        sendFrom(fakeT, cl.node(2).repl, snapshot(session, 0, 1, 100, 99));
        CHECK(cl.node(2).c.get(Counter::DropBadBody) == badBody + 2);
        CHECK_FALSE(third.stateComplete());
        sendFrom(fakeT, cl.node(2).repl, snapshot(session, 0, 1, 7, 7));
        CHECK(third.stateComplete());
        CHECK(third.nextOffset().get() == 7);
        third.stepDown();
    }

    // The leader: a flood of joins from a member gets one snapshot per 10 ms; joins and
    // acknowledgements from a non-member are not allowed; an acknowledgement of another session
    // moves nothing.
    {
        while (memberT.recvBurst(slots) > 0) {}
        const std::uint64_t overflow = lc.get(Counter::DropOverflow);
        std::vector<std::byte> j(64);
        j.resize(wire::encodeReplJoin(j, StreamId{1}, Epoch{100}, 777, 1));
        for (int i = 0; i < 50; ++i) sendFrom(memberT, cl.node(0).repl, j);  // 50 joins within 3 ms
        CHECK(lc.get(Counter::DropOverflow) == overflow + 49);
        std::size_t snapshots = 0;
        for (std::size_t n = 0; (n = memberT.recvBurst(slots)) > 0;)
            for (std::size_t i = 0; i < n; ++i)
                if (slots[i].len > 8 && static_cast<int>(slots[i].data[8]) == static_cast<int>(wire::FrameType::ReplSnapshot)) ++snapshots;
        CHECK(snapshots == 1);

        transport::MemoryTransport stranger(cl.net, Endpoint{0x0A000077, 4004});
        const std::uint64_t notAllowed = lc.get(Counter::DropNotAllowed);
        sendFrom(stranger, cl.node(0).repl, j);
        std::vector<std::byte> ack(64);
        ack.resize(wire::encodeReplAck(ack, StreamId{1}, Epoch{100}, Offset{1'000'000}, 777, 1));
        sendFrom(stranger, cl.node(0).repl, ack);
        CHECK(lc.get(Counter::DropNotAllowed) == notAllowed + 2);
        std::vector<std::byte> other(64);
        other.resize(wire::encodeReplAck(other, StreamId{1}, Epoch{100}, Offset{1'000'000}, 4242, 1));
        const std::uint64_t wrong = lc.get(Counter::DropWrongEpoch);
        sendFrom(memberT, cl.node(0).repl, other);
        CHECK(lc.get(Counter::DropWrongEpoch) == wrong + 1);
    }
    CHECK(leader.releasedOffset().get() == 50);
    cl.offer(p, 60);
    cl.run(200);
    CHECK(p.confirmed == 60);
    checkOnceInOrder(*cl.sub, {{1, 60}});
}

TEST_CASE("three sequencers: after a takeover the other standby follows the new leader through the re-sent tail") {
    Cluster cl;
    for (std::uint32_t h = 1; h <= 3; ++h) cl.nodes.push_back(std::make_unique<Node>(cl.net, 0x0A000000u + h));
    auto& a = *cl.node(0).seq;
    auto& b = *cl.node(1).seq;
    auto& c = *cl.node(2).seq;
    a.setReplicas({{cl.node(1).repl, true}, {cl.node(2).repl, true}});
    a.lead(Epoch{100});
    b.standBy(cl.node(0).repl, Epoch{100});
    c.standBy(cl.node(0).repl, Epoch{100});
    cl.addSubscriber();
    auto& p = cl.addPublisher(1, {0, 1, 2});
    cl.run(50);
    cl.offer(p, 300);
    cl.run(300);
    REQUIRE(p.confirmed == 300);
    // The leader stops with messages sequenced and held by both standbys, not yet released.
    cl.offer(p, 600);
    cl.step();
    cl.step();
    cl.node(0).alive = false;
    REQUIRE(a.releasedOffset().get() < a.nextOffset().get());
    // b takes over (epoch 200) and requires c; c follows b. b's re-sent tail carries epoch 100.
    b.standBy({}, Epoch{0});
    b.setReplicas({{cl.node(2).repl, true}});
    b.lead(Epoch{200});
    c.standBy(cl.node(1).repl, Epoch{200});
    cl.run(3000);
    CHECK(p.confirmed == 600);
    checkOnceInOrder(*cl.sub, {{1, 600}});
    CHECK(c.stateComplete());
    CHECK(c.nextOffset().get() == b.nextOffset().get());
    CHECK(b.releasedOffset().get() == b.nextOffset().get());
    // c can now take over from b in turn, holding everything b released.
    cl.node(1).alive = false;
    c.standBy({}, Epoch{0});
    c.setReplicas({});
    c.lead(Epoch{300});
    cl.offer(p, 700);
    cl.run(2000);
    CHECK(p.confirmed == 700);
    checkOnceInOrder(*cl.sub, {{1, 700}});
}
