// MoldUDP64 ingress (gateway/mold_ingress): the feed tracker (pure logic: order, duplicates, gaps
// and what is asked for when, back-pressure, the held-bytes limit, the deadline) and the feed
// state kept beside a journal.
#include <doctest/doctest.h>

#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "gateway/mold_ingress.h"

using namespace seqcast;
using namespace seqcast::gateway;

namespace {

const mold::Session kSession = *mold::Session::parse("UNITTEST");
constexpr std::uint64_t kMs = 1'000'000;

std::string msg(std::uint64_t seq) {
    std::string s = "m";
    s += std::to_string(seq);
    return s;
}

// A downstream packet holding messages first..first+n-1 (n 0: a heartbeat at first).
struct Built {
    std::vector<std::byte> bytes = std::vector<std::byte>(1400);
    mold::Packet packet;
};
Built packet(std::uint64_t first, std::uint64_t n, bool eos = false) {
    Built b;
    std::size_t len;
    if (eos) {
        len = mold::encodeEndOfSession(b.bytes, kSession, first);
    } else if (n == 0) {
        len = mold::encodeHeartbeat(b.bytes, kSession, first);
    } else {
        mold::PacketWriter w(kSession, b.bytes);
        w.begin(first);
        for (std::uint64_t s = first; s < first + n; ++s) {
            const std::string m = msg(s);
            REQUIRE(w.append(std::as_bytes(std::span(m.data(), m.size()))));
        }
        len = w.finish();
    }
    b.bytes.resize(len);
    auto p = mold::decodePacket(b.bytes);
    REQUIRE(p);
    b.packet = *p;
    return b;
}

struct Harness {
    std::vector<std::uint64_t> seqs;
    std::vector<std::string> bodies;
    bool accept = true;
    mold::FeedTracker t;
    std::vector<mold::FeedTracker::Range> out;
    explicit Harness(mold::TrackerOptions o = {})
        : t(o, [this](std::uint64_t seq, std::span<const std::byte> m) {
              if (!accept) return false;
              seqs.push_back(seq);
              bodies.emplace_back(reinterpret_cast<const char*>(m.data()), m.size());
              return true;
          }) {}
    void feed(std::uint64_t first, std::uint64_t n, std::uint64_t now, bool answer = false) {
        auto b = packet(first, n);
        t.onPacket(b.packet, answer, now);
    }
    std::vector<mold::FeedTracker::Range> ask(std::uint64_t now) {
        t.requests(now, out);
        return out;
    }
    // Every message delivered once, in order, from `from` up to (not including) `end`, bodies intact.
    void checkInOrder(std::uint64_t from, std::uint64_t end) {
        REQUIRE(seqs.size() == end - from);
        for (std::uint64_t i = 0; i < seqs.size(); ++i) {
            CHECK(seqs[i] == from + i);
            CHECK(bodies[i] == msg(from + i));
        }
    }
};

}  // namespace

TEST_CASE("in order, duplicates dropped, nothing asked for") {
    Harness h;
    h.feed(1, 5, 1 * kMs);
    h.feed(3, 5, 2 * kMs);  // 3..5 again, 6..7 new
    h.feed(1, 2, 3 * kMs);
    h.checkInOrder(1, 8);
    CHECK(h.t.counters().duplicates == 5);
    CHECK(h.t.next() == 8);
    CHECK(h.ask(4 * kMs).empty());
    CHECK(h.t.stalled(100'000 * kMs).empty());
}

TEST_CASE("a gap is asked for at once, held messages follow the answer in order") {
    Harness h;
    h.feed(1, 3, 1 * kMs);
    h.feed(6, 3, 2 * kMs);  // 4, 5 missing
    CHECK(h.seqs.size() == 3);
    CHECK(h.t.heldMessages() == 3);
    auto r = h.ask(2 * kMs);
    REQUIRE(r.size() == 1);
    CHECK(r[0].seq == 4);
    CHECK(r[0].count == 2);
    // Not again before the retry interval (50 ms) ...
    CHECK(h.ask(10 * kMs).empty());
    // ... then again.
    r = h.ask(60 * kMs);
    REQUIRE(r.size() == 1);
    CHECK(r[0].seq == 4);
    h.feed(4, 2, 61 * kMs, true);
    h.checkInOrder(1, 9);
    CHECK(h.t.counters().recovered == 2);
    CHECK(h.t.counters().gapMessages == 2);
    CHECK(h.t.heldMessages() == 0);
    CHECK(h.ask(200 * kMs).empty());
}

TEST_CASE("a heartbeat past the last message shows a gap at the tail") {
    Harness h;
    h.feed(1, 3, 1 * kMs);
    auto hb = packet(6, 0);
    h.t.onPacket(hb.packet, false, 2 * kMs);
    auto r = h.ask(2 * kMs);
    REQUIRE(r.size() == 1);
    CHECK(r[0].seq == 4);
    CHECK(r[0].count == 2);
}

TEST_CASE("several gaps in one round; a new gap goes out without waiting for the retry") {
    Harness h;
    h.feed(1, 1, 1 * kMs);
    h.feed(3, 1, 1 * kMs);
    h.feed(6, 1, 1 * kMs);  // missing 2, 4..5
    auto r = h.ask(1 * kMs);
    REQUIRE(r.size() == 2);
    CHECK((r[0].seq == 2 && r[0].count == 1));
    CHECK((r[1].seq == 4 && r[1].count == 2));
    h.feed(9, 1, 2 * kMs);  // a new gap 7..8
    r = h.ask(3 * kMs);
    REQUIRE(r.size() == 1);
    CHECK((r[0].seq == 7 && r[0].count == 2));
}

TEST_CASE("an answer shorter than the request: the rest is asked for at once") {
    mold::TrackerOptions o;
    o.maxRequestCount = 100;
    Harness h(o);
    h.feed(1, 1, 1 * kMs);
    h.feed(50, 1, 1 * kMs);  // 2..49 missing
    auto r = h.ask(1 * kMs);
    REQUIRE(r.size() == 1);
    CHECK((r[0].seq == 2 && r[0].count == 48));
    h.feed(2, 10, 2 * kMs, true);  // one packet: 2..11
    r = h.ask(3 * kMs);
    REQUIRE(r.size() == 1);
    CHECK((r[0].seq == 12 && r[0].count == 38));
}

TEST_CASE("requests are capped at maxRequestCount") {
    mold::TrackerOptions o;
    o.maxRequestCount = 10;
    Harness h(o);
    h.feed(1, 1, 1 * kMs);
    h.feed(26, 1, 1 * kMs);  // 2..25 missing
    auto r = h.ask(1 * kMs);
    REQUIRE(r.size() == 3);
    CHECK((r[0].seq == 2 && r[0].count == 10));
    CHECK((r[1].seq == 12 && r[1].count == 10));
    CHECK((r[2].seq == 22 && r[2].count == 4));
}

TEST_CASE("back-pressure holds messages; drain delivers them in order, never twice") {
    Harness h;
    h.feed(1, 2, 1 * kMs);
    h.accept = false;
    h.feed(3, 4, 2 * kMs);
    CHECK(h.seqs.size() == 2);
    CHECK(h.t.heldMessages() == 4);
    CHECK(h.ask(3 * kMs).empty());  // nothing is missing: held is not lost
    CHECK(h.t.stalled(100'000 * kMs).empty());
    h.feed(3, 4, 4 * kMs);  // the same again while held
    CHECK(h.t.counters().duplicates == 4);
    h.accept = true;
    CHECK(h.t.drain(5 * kMs) == 4);
    h.checkInOrder(1, 7);
}

TEST_CASE("past the held-bytes limit messages are dropped, counted, and asked for again at the retry") {
    mold::TrackerOptions o;
    o.maxHeldBytes = 200;  // each held message counts its bytes + 64
    Harness h(o);
    h.feed(1, 1, 1 * kMs);
    h.feed(10, 1, 1 * kMs);  // held: "m10", 3 + 64 bytes
    auto r = h.ask(1 * kMs);
    REQUIRE(r.size() == 1);
    CHECK((r[0].seq == 2 && r[0].count == 8));
    h.feed(3, 7, 2 * kMs, true);  // an answer of 3..9 (2 still missing): "m3", "m4" fit, 5..9 do not
    CHECK(h.t.heldMessages() == 3);
    CHECK(h.t.heldBytes() == 67 + 66 + 66);
    CHECK(h.t.counters().heldDropped == 5);
    // Not asked for again at once (an answer dropped for want of room would be dropped again) ...
    CHECK(h.ask(3 * kMs).empty());
    // ... but at the retry, from the next number on.
    r = h.ask(60 * kMs);
    REQUIRE(r.size() == 2);
    CHECK((r[0].seq == 2 && r[0].count == 1));
    CHECK((r[1].seq == 5 && r[1].count == 5));
    h.feed(2, 1, 61 * kMs, true);
    h.feed(5, 5, 62 * kMs, true);
    h.checkInOrder(1, 11);
    CHECK(h.t.heldBytes() == 0);
}

TEST_CASE("requests keep to the request rate") {
    mold::TrackerOptions o;
    o.maxRequestCount = 1;
    o.requestRate = 100;  // per second
    o.requestBurst = 5;
    Harness h(o);
    h.feed(1, 1, 1 * kMs);
    h.feed(100, 1, 1 * kMs);  // 2..99 missing: 98 requests of one
    CHECK(h.ask(1 * kMs).size() == 5);   // the burst
    CHECK(h.ask(2 * kMs).empty());       // no token yet
    CHECK(h.ask(31 * kMs).size() == 3);  // 30 ms at 100/s: 3 tokens
    // Over a second, the rate: 100 at most.
    std::size_t n = 0;
    for (std::uint64_t t = 32; t <= 1031; ++t) n += h.ask(t * kMs).size();
    CHECK(n >= 98);
    CHECK(n <= 101);
}

TEST_CASE("a gap with no progress past the deadline is named") {
    mold::TrackerOptions o;
    o.deadlineNs = 1000 * kMs;
    Harness h(o);
    h.feed(1, 2, 1 * kMs);
    h.feed(5, 1, 2 * kMs);
    CHECK(h.t.stalled(500 * kMs).empty());
    const std::string s = h.t.stalled(1003 * kMs);
    CHECK(s.find("sequence numbers 3..4") != std::string::npos);
    // Progress restarts the clock.
    h.feed(3, 1, 1004 * kMs, true);
    CHECK(h.t.stalled(1500 * kMs).empty());
    CHECK(!h.t.stalled(2005 * kMs).empty());
}

TEST_CASE("start at a chosen number, or at the first one seen") {
    mold::TrackerOptions o;
    o.startSeq = 10;
    Harness h(o);
    h.feed(5, 8, 1 * kMs);  // 5..12: 5..9 are before the start
    CHECK(h.t.counters().beforeStart == 5);
    h.checkInOrder(10, 13);

    mold::TrackerOptions latest;
    latest.startSeq = 0;
    Harness l(latest);
    CHECK(l.t.next() == 0);
    CHECK(l.ask(1 * kMs).empty());
    l.feed(1000, 3, 1 * kMs);
    l.checkInOrder(1000, 1003);
}

TEST_CASE("the start beyond the feed: asked for from the start") {
    Harness h;  // startSeq 1
    h.feed(100, 2, 1 * kMs);
    auto r = h.ask(1 * kMs);
    REQUIRE(r.size() == 1);
    CHECK((r[0].seq == 1 && r[0].count == 99));
}

TEST_CASE("end of session: complete once everything before it is delivered") {
    Harness h;
    h.feed(1, 3, 1 * kMs);
    auto e = packet(6, 0, true);
    h.t.onPacket(e.packet, false, 2 * kMs);
    CHECK(h.t.endOfSession());
    CHECK(!h.t.complete());
    auto r = h.ask(2 * kMs);
    REQUIRE(r.size() == 1);
    CHECK((r[0].seq == 4 && r[0].count == 2));
    h.feed(4, 2, 3 * kMs, true);
    CHECK(h.t.complete());
}

TEST_CASE("feed state: written atomically, read back, bad files refused") {
    char dir[] = "/tmp/seqcast_mold_ingress_XXXXXX";
    REQUIRE(::mkdtemp(dir) != nullptr);
    const std::string path = std::string(dir) + "/j.mold";
    auto none = mold::readFeedState(path);
    REQUIRE(none);
    CHECK(!none->has_value());
    REQUIRE(mold::writeFeedState(path, {kSession, 12345}));
    auto back = mold::readFeedState(path);
    REQUIRE(back);
    REQUIRE(back->has_value());
    CHECK((**back).session == kSession);
    CHECK((**back).base == 12345);
    for (const char* bad : {"", "seqcast-mold-ingress 2\nsession 55\nbase 1\n", "seqcast-mold-ingress 1\nsession zz\nbase 1\n",
                            "seqcast-mold-ingress 1\nsession 554e4954544553542020\nbase 0\n"}) {  // base 0 alone
        std::ofstream(path) << bad;
        auto r = mold::readFeedState(path);
        CHECK(!r);
    }
    ::unlink(path.c_str());
    ::rmdir(dir);
}
