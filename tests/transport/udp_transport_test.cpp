// Socket transports over real kernel sockets on loopback: endpoint parsing, unicast and multicast
// bursts, group isolation (IP_MULTICAST_ALL=0), truncation accounting, configuration errors, GSO/GRO.
// Built twice: test_transport_udp (recvmmsg/sendmmsg) and test_transport_uring (io_uring, with
// tests of its own at the end), SEQCAST_TEST_API naming the SocketApi.
#include <doctest/doctest.h>

#include <array>
#include <chrono>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "tests/test_skip.h"
#include "transport/open_transport.h"
#include "transport/udp_transport.h"
#include "transport/uring_transport.h"

#ifndef SEQCAST_TEST_API
#define SEQCAST_TEST_API Syscalls
#endif

using namespace seqcast;
using transport::Endpoint;
using transport::RxSlot;
using transport::TxItem;
using transport::Transport;
using transport::UdpConfig;

constexpr auto kApi = transport::SocketApi::SEQCAST_TEST_API;

namespace {

constexpr std::uint32_t kLoopback = 0x7F000001u;

// A random administratively-scoped group and port, so tests running at the same time on this host
// do not hear each other.
struct RandomGroup {
    std::uint32_t group;
    std::uint32_t otherGroup;
    std::uint16_t port;
};
RandomGroup randomGroup() {
    std::random_device rd;
    std::mt19937 g(rd());
    std::uniform_int_distribution<std::uint32_t> lo(1, 254);
    std::uniform_int_distribution<std::uint32_t> port(20000, 60000);
    const std::uint32_t a = 0xEF000000u | (lo(g) << 16) | (lo(g) << 8) | lo(g);
    std::uint32_t b = a ^ 0x0000FF00u;  // differs in the third byte
    if (((b >> 8) & 0xFF) == 0 || ((b >> 8) & 0xFF) == 255) b = (a & 0xFFFF00FFu) | (0x7Fu << 8);
    if (b == a) b = a ^ 0x00010000u;
    return {a, b, static_cast<std::uint16_t>(port(g))};
}

Result<std::unique_ptr<Transport>> open(UdpConfig cfg, std::vector<std::string>* warnings = nullptr) {
    cfg.api = kApi;
    std::vector<std::string> w;
    auto t = transport::openTransport(cfg, w);
    if (warnings != nullptr) *warnings = w;
    return t;
}

std::unique_ptr<Transport> openOrFail(const UdpConfig& cfg, std::vector<std::string>* warnings = nullptr) {
    auto t = open(cfg, warnings);
    INFO("open " << cfg.bind.str() << ": " << (t ? std::string("ok") : t.error().message()));
    REQUIRE(t);
    // The io_uring build of these tests must run on io_uring; where this kernel cannot, the case
    // still runs (on the fallback) but the binary reports SKIP instead of a pass.
    if (kApi == transport::SocketApi::Uring) {
        if (auto ok = transport::uringSocketsAvailable(); !ok)
            seqcast::test::skip("io_uring sockets unavailable, this case ran on the recvmmsg/sendmmsg fallback: " + ok.error().message());
        else
            CHECK(std::string((*t)->kind()) == "uring");
    }
    return std::move(*t);
}

UdpConfig unicastConfig() {
    UdpConfig c;
    c.bind = Endpoint{kLoopback, 0};
    c.rcvBuf = 1 << 20;
    c.sndBuf = 1 << 20;
    return c;
}

std::vector<std::byte> payload(std::uint32_t i, std::size_t len) {
    std::vector<std::byte> v(len);
    for (std::size_t k = 0; k < len; ++k) v[k] = static_cast<std::byte>((i * 31 + k * 7) & 0xFF);
    std::memcpy(v.data(), &i, sizeof i);
    return v;
}

std::uint32_t tag(const RxSlot& s) {
    std::uint32_t i = 0;
    std::memcpy(&i, s.data, sizeof i);
    return i;
}

// Receives until `want` datagrams arrived or `limit` passed; returns the tags seen, in order.
std::vector<std::uint32_t> receive(Transport& t, std::size_t want, std::chrono::milliseconds limit,
                                   std::vector<std::vector<std::byte>>* copies = nullptr,
                                   std::vector<Endpoint>* from = nullptr) {
    std::vector<std::uint32_t> got;
    std::array<RxSlot, 32> slots{};
    const auto until = std::chrono::steady_clock::now() + limit;
    while (got.size() < want && std::chrono::steady_clock::now() < until) {
        const std::size_t n = t.recvBurst(slots);
        for (std::size_t i = 0; i < n; ++i) {
            if (slots[i].len >= 4) got.push_back(tag(slots[i]));
            if (copies != nullptr) copies->emplace_back(slots[i].data, slots[i].data + slots[i].len);
            if (from != nullptr) from->push_back(slots[i].from);
        }
        if (n == 0) std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
    return got;
}

std::size_t sendAll(Transport& t, const std::vector<std::vector<std::byte>>& msgs, Endpoint to) {
    std::vector<TxItem> items;
    for (const auto& m : msgs) items.push_back(TxItem{m.data(), static_cast<std::uint32_t>(m.size()), to});
    std::size_t done = 0;
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(2);
    while (done < items.size() && std::chrono::steady_clock::now() < until) {
        done += t.sendBurst(std::span<const TxItem>(items).subspan(done));
        if (done < items.size()) std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
    return done;
}

}  // namespace

TEST_SUITE("quick") {

TEST_CASE("parseEndpoint accepts HOST:PORT") {
    auto e = transport::parseEndpoint("239.1.2.3:40001");
    REQUIRE(e);
    CHECK(e->addr == 0xEF010203u);
    CHECK(e->port == 40001);
    CHECK(e->multicast());
    CHECK(e->valid());
    CHECK(e->str() == "239.1.2.3:40001");

    auto l = transport::parseEndpoint("localhost:5000");
    REQUIRE(l);
    CHECK(l->addr == kLoopback);
    CHECK(l->port == 5000);
    CHECK_FALSE(l->multicast());

    auto top = transport::parseEndpoint("10.0.0.1:65535");
    REQUIRE(top);
    CHECK(top->port == 65535);

    auto zero = transport::parseEndpoint("127.0.0.1:0", true);
    REQUIRE(zero);
    CHECK(zero->port == 0);
    CHECK_FALSE(zero->valid());

    auto any = transport::parseEndpoint("*:7000");
    REQUIRE(any);
    CHECK(any->addr == 0u);
    CHECK(any->port == 7000);

    auto ip = transport::parseIpv4("192.168.1.20");
    REQUIRE(ip);
    CHECK(*ip == 0xC0A80114u);
}

TEST_CASE("parseEndpoint rejects bad input with a readable message") {
    for (const char* bad : {"127.0.0.1:0", "127.0.0.1:65536", "127.0.0.1:99999999999", "garbage", "1.2.3.4:",
                            "1.2.3.4:abc", "1.2.3.4:12ab", "1.2.3.4:-1", "1.2.3.4: 80", ""}) {
        auto e = transport::parseEndpoint(bad);
        INFO("input '" << bad << "'");
        CHECK_FALSE(e);
        if (!e) {
            CHECK(e.error().code == EINVAL);
            CHECK_FALSE(e.error().message().empty());
            CHECK(e.error().message().find(std::string("'") + bad + "'") != std::string::npos);
        }
    }
    auto p = transport::parseEndpoint("127.0.0.1:65536");
    REQUIRE_FALSE(p);
    CHECK(p.error().message().find("1..65535") != std::string::npos);
}

TEST_CASE("unicast burst of 100 datagrams between two loopback sockets") {
    auto a = openOrFail(unicastConfig());
    auto b = openOrFail(unicastConfig());
    CHECK(a->local().addr == kLoopback);
    CHECK(a->local().port != 0);
    CHECK(b->local().port != 0);
    CHECK(a->local().port != b->local().port);
    CHECK(a->waitFd() >= 0);

    std::vector<std::vector<std::byte>> msgs;
    for (std::uint32_t i = 0; i < 100; ++i) msgs.push_back(payload(i, 64 + i * 5));
    REQUIRE(sendAll(*a, msgs, b->local()) == 100);
    CHECK(a->stats().txDatagrams == 100);
    CHECK(a->stats().txErrors == 0);

    std::vector<std::vector<std::byte>> copies;
    std::vector<Endpoint> from;
    const auto got = receive(*b, 100, std::chrono::seconds(2), &copies, &from);
    REQUIRE(got.size() == 100);
    for (std::uint32_t i = 0; i < 100; ++i) {
        CHECK(got[i] == i);  // loopback unicast keeps order
        CHECK(copies[i] == msgs[i]);
        CHECK(from[i] == a->local());
    }
    std::uint64_t bytes = 0;
    for (const auto& m : msgs) bytes += m.size();
    CHECK(b->stats().rxDatagrams == 100);
    CHECK(b->stats().rxBytes == bytes);
    CHECK(a->stats().txBytes == bytes);
    CHECK(b->stats().rxTruncated == 0);

    // Nothing more arrives; an empty span receives nothing.
    std::array<RxSlot, 4> slots{};
    CHECK(b->recvBurst(slots) == 0);
    CHECK(b->recvBurst(std::span<RxSlot>()) == 0);
}

TEST_CASE("multicast on loopback reaches every member of the group and only them") {
    const RandomGroup rg = randomGroup();
    const Endpoint group{rg.group, rg.port};
    const Endpoint other{rg.otherGroup, rg.port};
    INFO("group " << group.str() << ", other " << other.str());

    UdpConfig rx = unicastConfig();
    rx.bind = group;
    rx.groups = {rg.group};
    rx.interface = kLoopback;
    auto r1 = openOrFail(rx);
    auto r2 = openOrFail(rx);
    CHECK(r1->local() == group);

    // Same port, different group: bound to its group address.
    UdpConfig ro = rx;
    ro.bind = other;
    ro.groups = {rg.otherGroup};
    auto rOther = openOrFail(ro);
    // Same port on the wildcard address, joined only to the other group: IP_MULTICAST_ALL=0 keeps
    // the first group's traffic (which this host joined through r1/r2) away from it.
    UdpConfig rw = ro;
    rw.bind = Endpoint{0, rg.port};
    auto rWild = openOrFail(rw);

    UdpConfig tx = unicastConfig();
    tx.interface = kLoopback;
    tx.loop = true;
    auto s = openOrFail(tx);

    std::vector<std::vector<std::byte>> msgs;
    for (std::uint32_t i = 0; i < 50; ++i) msgs.push_back(payload(i, 200));
    REQUIRE(sendAll(*s, msgs, group) == 50);
    CHECK(s->stats().txErrors == 0);

    const auto g1 = receive(*r1, 50, std::chrono::seconds(2));
    const auto g2 = receive(*r2, 50, std::chrono::seconds(2));
    REQUIRE(g1.size() == 50);
    REQUIRE(g2.size() == 50);
    for (std::uint32_t i = 0; i < 50; ++i) {
        CHECK(g1[i] == i);
        CHECK(g2[i] == i);
    }
    // Give stray deliveries time to show up, then check the outsiders saw nothing.
    CHECK(receive(*rOther, 1, std::chrono::milliseconds(200)).empty());
    CHECK(receive(*rWild, 1, std::chrono::milliseconds(100)).empty());

    // The other group's members do get their own group's traffic.
    std::vector<std::vector<std::byte>> one{payload(7777, 100)};
    REQUIRE(sendAll(*s, one, other) == 1);
    const auto o = receive(*rOther, 1, std::chrono::seconds(2));
    REQUIRE(o.size() == 1);
    CHECK(o[0] == 7777);
    const auto w = receive(*rWild, 1, std::chrono::seconds(2));
    REQUIRE(w.size() == 1);
    CHECK(w[0] == 7777);
    CHECK(receive(*r1, 1, std::chrono::milliseconds(100)).empty());
}

TEST_CASE("a datagram longer than maxDatagram is dropped and counted") {
    UdpConfig rc = unicastConfig();
    rc.maxDatagram = 128;
    auto r = openOrFail(rc);
    auto s = openOrFail(unicastConfig());

    std::vector<std::vector<std::byte>> msgs{payload(1, 100), payload(2, 500), payload(3, 128), payload(4, 129)};
    REQUIRE(sendAll(*s, msgs, r->local()) == 4);

    std::vector<std::uint32_t> got;
    std::array<RxSlot, 8> slots{};
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(2);
    while ((got.size() < 2 || r->stats().rxTruncated < 2) && std::chrono::steady_clock::now() < until) {
        const std::size_t n = r->recvBurst(slots);
        for (std::size_t i = 0; i < n; ++i) {
            got.push_back(tag(slots[i]));
            CHECK(slots[i].len <= 128);
        }
        if (n == 0) std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
    CHECK(got == std::vector<std::uint32_t>{1, 3});
    CHECK(r->stats().rxTruncated == 2);
    CHECK(r->stats().rxDatagrams == 2);
    CHECK(r->stats().rxBytes == 100 + 128);
}

TEST_CASE("configuration errors are reported, not thrown") {
    UdpConfig c = unicastConfig();
    c.burst = 0;
    auto t = open(c);
    REQUIRE_FALSE(t);
    CHECK(t.error().code == EINVAL);
    CHECK(t.error().message().find("burst") != std::string::npos);

    c = unicastConfig();
    c.burst = 4096;
    CHECK_FALSE(open(c));

    for (std::size_t bad : {std::size_t{0}, std::size_t{10}, std::size_t{63}, std::size_t{65537}}) {
        c = unicastConfig();
        c.maxDatagram = bad;
        auto u = open(c);
        INFO("maxDatagram " << bad);
        REQUIRE_FALSE(u);
        CHECK(u.error().message().find("max datagram") != std::string::npos);
    }

    c = unicastConfig();
    c.ttl = 300;
    auto v = open(c);
    REQUIRE_FALSE(v);
    CHECK(v.error().message().find("ttl") != std::string::npos);

    // Binding an address this host does not have fails with the address in the message.
    c = unicastConfig();
    c.bind = Endpoint{0xC0000201u, 4000};  // 192.0.2.1 (TEST-NET-1)
    auto w = open(c);
    REQUIRE_FALSE(w);
    CHECK(w.error().message().find("bind 192.0.2.1:4000") != std::string::npos);
}

TEST_CASE("large socket buffers: set or warned about, never fatal") {
    UdpConfig c = unicastConfig();
    c.rcvBuf = 256 << 20;
    c.sndBuf = 64 << 20;
    std::vector<std::string> w;
    auto t = openOrFail(c, &w);
    for (const auto& s : w) {
        // (Without io_uring sockets the io_uring build also warns of its fallback; openOrFail
        // reported that case skipped.)
        if (kApi == transport::SocketApi::Uring && s.find("io_uring transport unavailable") != std::string::npos) continue;
        CHECK(s.find("clamped") != std::string::npos);
    }
    // Still a working socket.
    auto s = openOrFail(unicastConfig());
    std::vector<std::vector<std::byte>> one{payload(42, 80)};
    REQUIRE(sendAll(*s, one, t->local()) == 1);
    const auto got = receive(*t, 1, std::chrono::seconds(2));
    REQUIRE(got.size() == 1);
    CHECK(got[0] == 42);
}


TEST_CASE("GSO sends and GRO receives: every datagram arrives intact, in order, with its own size") {
    for (const bool multicast : {false, true}) {
        CAPTURE(multicast);
        const RandomGroup g = randomGroup();
        UdpConfig rx = unicastConfig();
        rx.gro = true;
        rx.rcvBuf = 8 << 20;
        Endpoint to;
        if (multicast) {
            rx.bind = Endpoint{g.group, g.port};
            rx.groups = {g.group};
            rx.interface = kLoopback;
        }
        auto r = openOrFail(rx);
        to = multicast ? Endpoint{g.group, g.port} : r->local();
        UdpConfig tx = unicastConfig();
        tx.gso = true;
        tx.interface = kLoopback;
        auto s = openOrFail(tx);
        // Runs of equal sizes (GSO groups), a shorter last one, then other sizes.
        std::vector<std::vector<std::byte>> msgs;
        for (std::uint32_t i = 0; i < 300; ++i) {
            const std::size_t len = i < 200 ? 1200 : (i < 250 ? 300 + (i % 3) * 100 : 1400);
            msgs.push_back(payload(i, len));
        }
        REQUIRE(sendAll(*s, msgs, to) == msgs.size());
        std::vector<std::vector<std::byte>> copies;
        const auto got = receive(*r, msgs.size(), std::chrono::milliseconds(2000), &copies);
        REQUIRE(got.size() == msgs.size());
        for (std::uint32_t i = 0; i < msgs.size(); ++i) {
            CHECK(got[i] == i);
            CHECK(copies[i] == msgs[i]);
        }
    }
}

// io_uring only (compiled into the io_uring build only): the provided-buffer ring running dry, GRO
// leftovers, a ring used from another thread. Without io_uring sockets each reports a skip.
#if SEQCAST_TEST_URING
namespace {
bool uringOrSkip() {
    if (auto ok = transport::uringSocketsAvailable(); !ok) {
        seqcast::test::skip("io_uring sockets unavailable: " + ok.error().message());
        return false;
    }
    return true;
}
}  // namespace

TEST_CASE("io_uring: more datagrams than provided buffers all arrive, in order") {
    if (!uringOrSkip()) return;
    UdpConfig rc = unicastConfig();
    rc.rcvBuf = 8 << 20;
    rc.burst = 1;  // 4 provided buffers, fewer than one kernel pass of a multishot receive takes
    auto r = openOrFail(rc);
    auto s = openOrFail(unicastConfig());
    // Arm the receive, then let 1000 datagrams pile up: the ring runs dry, the rest wait in the
    // socket and come once buffers return.
    std::array<RxSlot, 1> slots{};
    CHECK(r->recvBurst(slots) == 0);
    std::vector<std::vector<std::byte>> msgs;
    for (std::uint32_t i = 0; i < 1000; ++i) msgs.push_back(payload(i, 200));
    REQUIRE(sendAll(*s, msgs, r->local()) == msgs.size());
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    std::vector<std::vector<std::byte>> copies;
    const auto got = receive(*r, msgs.size(), std::chrono::seconds(3), &copies);
    REQUIRE(got.size() == msgs.size());
    for (std::uint32_t i = 0; i < msgs.size(); ++i) {
        CHECK(got[i] == i);
        CHECK(copies[i] == msgs[i]);
    }
    CHECK(r->stats().rxNoBuffers > 0);
    CHECK(r->stats().rxDatagrams == msgs.size());
}

TEST_CASE("io_uring: a GRO receive split over bursts of 3 slots keeps every datagram valid") {
    if (!uringOrSkip()) return;
    UdpConfig rc = unicastConfig();
    rc.gro = true;
    auto r = openOrFail(rc);
    UdpConfig tc = unicastConfig();
    tc.gso = true;
    auto s = openOrFail(tc);
    std::vector<std::vector<std::byte>> msgs;
    for (std::uint32_t i = 0; i < 200; ++i) msgs.push_back(payload(i, 1000));
    REQUIRE(sendAll(*s, msgs, r->local()) == msgs.size());
    std::vector<std::uint32_t> got;
    std::array<RxSlot, 3> slots{};
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(3);
    while (got.size() < msgs.size() && std::chrono::steady_clock::now() < until) {
        const std::size_t n = r->recvBurst(slots);
        for (std::size_t i = 0; i < n; ++i) {
            const std::uint32_t t = tag(slots[i]);
            got.push_back(t);
            REQUIRE(t < msgs.size());
            CHECK(std::equal(slots[i].data, slots[i].data + slots[i].len, msgs[t].begin(), msgs[t].end()));
        }
        if (n == 0) std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
    REQUIRE(got.size() == msgs.size());
    for (std::uint32_t i = 0; i < msgs.size(); ++i) CHECK(got[i] == i);
}

TEST_CASE("io_uring: a transport opened on one thread works on another") {
    if (!uringOrSkip()) return;
    auto r = openOrFail(unicastConfig());
    auto s = openOrFail(unicastConfig());
    std::vector<std::uint32_t> got;
    std::size_t sent = 0;
    std::thread t([&] {
        std::vector<std::vector<std::byte>> msgs;
        for (std::uint32_t i = 0; i < 50; ++i) msgs.push_back(payload(i, 64));
        sent = sendAll(*s, msgs, r->local());
        got = receive(*r, msgs.size(), std::chrono::seconds(2));
    });
    t.join();
    CHECK(sent == 50);
    CHECK(got.size() == 50);
}
#endif  // SEQCAST_TEST_URING
}  // TEST_SUITE
