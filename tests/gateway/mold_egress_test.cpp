// MoldUDP64 egress (gateway/mold_egress): the request limiter and request plans (pure logic), and
// the egress itself fed messages by hand, its packets read back from a real multicast socket on
// loopback: numbering by offset, packing, a loss skipped, heartbeats, end of session, and a
// fragmented message refused.
#include <doctest/doctest.h>

#include <arpa/inet.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "gateway/mold_egress.h"

using namespace seqcast;
using namespace seqcast::gateway;

namespace {

const mold::Session kSession = *mold::Session::parse("UNITTEST");

mold::Request request(const mold::Session& s, std::uint64_t seq, std::uint16_t count) { return {s, seq, count}; }

// A socket joined to a random group on loopback; the group:port to give the egress.
struct Listener {
    int fd = -1;
    std::string group;
    Listener() {
        std::random_device rd;
        const unsigned a = rd() % 250 + 1, b = rd() % 250 + 1, port = 30000 + rd() % 20000;
        char g[32];
        std::snprintf(g, sizeof g, "239.77.%u.%u", a, b);
        group = g;
        fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        sockaddr_in sa{};
        sa.sin_family = AF_INET;
        sa.sin_port = htons(static_cast<std::uint16_t>(port));
        sa.sin_addr.s_addr = inet_addr(group.c_str());
        REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0);
        ip_mreq m{};
        m.imr_multiaddr.s_addr = inet_addr(group.c_str());
        m.imr_interface.s_addr = inet_addr("127.0.0.1");
        REQUIRE(::setsockopt(fd, IPPROTO_IP, IP_ADD_MEMBERSHIP, &m, sizeof m) == 0);
        std::snprintf(g, sizeof g, ":%u", port);
        group += g;
    }
    ~Listener() { ::close(fd); }
    // The next packet, decoded; fails the test after 5 s without one.
    std::vector<std::byte> buf = std::vector<std::byte>(65536);
    mold::Packet next() {
        pollfd p{fd, POLLIN, 0};
        REQUIRE(::poll(&p, 1, 5000) == 1);
        const ssize_t n = ::recv(fd, buf.data(), buf.size(), 0);
        REQUIRE(n > 0);
        auto pk = mold::decodePacket(std::span<const std::byte>(buf.data(), static_cast<std::size_t>(n)));
        REQUIRE(pk);
        return *pk;
    }
    bool quiet(int ms) {
        pollfd p{fd, POLLIN, 0};
        return ::poll(&p, 1, ms) == 0;
    }
};

Message message(std::uint64_t offset, const std::string& text) {
    Message m{};
    m.offset = offset;
    m.payload = std::as_bytes(std::span(text.data(), text.size()));
    return m;
}

std::vector<std::string> messagesOf(const mold::Packet& p) {
    std::vector<std::string> out;
    mold::MessageIterator it(p);
    std::span<const std::byte> m;
    while (it.next(m)) out.emplace_back(reinterpret_cast<const char*>(m.data()), m.size());
    return out;
}

}  // namespace

TEST_CASE("request limiter: a burst, then the rate; requesters apart; the idlest forgotten") {
    mold::RequestLimiter l(10, 3, 2);  // 10/s, bursts of 3, two requesters tracked
    const std::uint64_t t = 1'000'000'000;
    CHECK(l.admit(1, t));
    CHECK(l.admit(1, t));
    CHECK(l.admit(1, t));
    CHECK_FALSE(l.admit(1, t));               // the burst is spent
    CHECK(l.admit(2, t));                     // another requester has its own
    CHECK_FALSE(l.admit(1, t + 50'000'000));  // 50 ms: half a token
    CHECK(l.admit(1, t + 100'000'000));       // 100 ms: one token
    CHECK_FALSE(l.admit(1, t + 100'000'000));
    CHECK(l.admit(3, t + 200'000'000));       // a third: requester 2 (idle longest) is forgotten
    CHECK(l.tracked() == 2);
    CHECK(l.admit(1, t + 10'000'000'000));    // refilled, but never above the burst
    CHECK(l.admit(1, t + 10'000'000'000));
    CHECK(l.admit(1, t + 10'000'000'000));
    CHECK_FALSE(l.admit(1, t + 10'000'000'000));
}

TEST_CASE("request plans: served below the head, clamped; refused otherwise") {
    auto other = *mold::Session::parse("OTHER");
    auto p = mold::planRequest(request(kSession, 5, 10), kSession, 100, 1024);
    CHECK(p.verdict == mold::Verdict::Serve);
    CHECK(p.firstOffset == 4);
    CHECK(p.count == 10);
    p = mold::planRequest(request(kSession, 95, 10), kSession, 100, 1024);  // up to the head only
    CHECK(p.count == 5);
    p = mold::planRequest(request(kSession, 1, 5000), kSession, 10000, 1024);  // at most maxCount
    CHECK(p.count == 1024);
    CHECK(mold::planRequest(request(other, 5, 10), kSession, 100, 1024).verdict == mold::Verdict::WrongSession);
    CHECK(mold::planRequest(request(kSession, 5, 0), kSession, 100, 1024).verdict == mold::Verdict::ZeroCount);
    CHECK(mold::planRequest(request(kSession, 0, 3), kSession, 100, 1024).verdict == mold::Verdict::ZeroCount);
    CHECK(mold::planRequest(request(kSession, 100, 1), kSession, 100, 1024).verdict == mold::Verdict::BeyondHead);
    CHECK(mold::planRequest(request(kSession, 1, 1), kSession, 0, 1024).verdict == mold::Verdict::BeyondHead);  // nothing sent yet
}

TEST_CASE("egress: sequence number = offset + 1, packed to the packet size, losses skipped, heartbeats, end of session") {
    Listener l;
    mold::EgressCounters c;
    mold::EgressOptions o;
    o.session = kSession;
    o.downstream = l.group;
    o.packetBytes = 64;  // 20-byte header + room for 44 bytes of blocks
    o.heartbeatNs = 20'000'000;
    o.endOfSessionNs = 100'000'000;
    mold::Egress e(o, c);
    CHECK(e.head().load() == 0);
    e.started(41);  // the stream is at offset 41: sequence number 42 next
    CHECK(e.head().load() == 42);
    const std::string a(20, 'a'), b(20, 'b'), d(10, 'd');
    e.onMessage(message(41, a));
    e.onMessage(message(42, b));  // 2 x 22 bytes of blocks: full
    e.onMessage(message(43, d));  // does not fit: the first packet leaves
    auto p = l.next();
    CHECK(p.seq == 42);
    CHECK(messagesOf(p) == std::vector<std::string>{a, b});
    e.onLoss(Loss{44, 3});  // offsets 44..46 lost: the open packet leaves; numbers 45..47 never sent
    p = l.next();
    CHECK(p.seq == 44);
    CHECK(messagesOf(p) == std::vector<std::string>{d});
    CHECK(e.head().load() == 48);
    CHECK(c.lostMessages.load() == 3);
    e.onMessage(message(47, d));
    CHECK(e.doWork(1) > 0);  // the open packet leaves at the end of a pass
    p = l.next();
    CHECK(p.seq == 48);
    CHECK(e.head().load() == 49);
    // Idle: a heartbeat names the next number.
    const std::uint64_t t = 1'000'000'000'000;
    CHECK(e.doWork(t) > 0);
    p = l.next();
    CHECK(p.heartbeat());
    CHECK(p.seq == 49);
    CHECK(e.doWork(t + 1) == 0);  // not again before heartbeatNs
    CHECK(l.quiet(50));
    // The stream ends: end-of-session packets at once, then until endOfSessionNs has passed.
    CHECK_FALSE(e.endSession(t + 2));
    CHECK(e.doWork(t + 2) > 0);
    p = l.next();
    CHECK(p.endOfSession());
    CHECK(p.seq == 49);
    CHECK(e.endSession(t + 2 + 100'000'000));
    CHECK(e.failure().empty());
    CHECK(c.packets.load() == 3);
    CHECK(c.messages.load() == 4);
}

TEST_CASE("egress: a fragmented message (several offsets) stops it with the offsets named") {
    Listener l;
    mold::EgressCounters c;
    mold::EgressOptions o;
    o.session = kSession;
    o.downstream = l.group;
    mold::Egress e(o, c);
    e.started(0);
    e.onMessage(message(0, "one"));
    e.onMessage(message(3, "took offsets 1..3"));
    REQUIRE_FALSE(e.failure().empty());
    CHECK(e.failure().find("offsets 1..3") != std::string::npos);
    e.onMessage(message(4, "after"));  // nothing more is numbered
    CHECK(c.messages.load() == 0);
}

TEST_CASE("egress: bad settings name their field") {
    mold::EgressCounters c;
    mold::EgressOptions o;
    o.session = kSession;
    o.downstream = "127.0.0.1:5000";
    CHECK_THROWS_WITH_AS(mold::Egress(o, c), doctest::Contains("downstream"), SetupError);
    o.downstream = "239.1.1.1:5000";
    o.packetBytes = 10;
    CHECK_THROWS_WITH_AS(mold::Egress(o, c), doctest::Contains("packet-bytes"), SetupError);
    o.packetBytes = 1400;
    o.interface = "not-an-address";
    CHECK_THROWS_WITH_AS(mold::Egress(o, c), doctest::Contains("interface"), SetupError);
}
