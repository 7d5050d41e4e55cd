// DpdkTransport on a net_ring vdev (its tx ring is its rx ring: every frame sent comes back), no
// hugepages, no PCI: the wire path (frame built, sent, received, parsed, demultiplexed), local
// delivery, binding rules, ARP give-up, IGMP on join, and mbufs returned (thousands of round trips
// through a pool of a few thousand), and the allowlist and authentication layers that
// openTransport() stacks over DPDK as over every backend. Exits 77 (SKIP) where the EAL cannot
// start here.
#include <doctest/doctest.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <vector>

#include <sys/stat.h>
#include <unistd.h>

#include "fabric/clock.h"
#include "fabric/counters.h"
#include "transport/dpdk_transport.h"
#include "transport/open_transport.h"

using namespace seqcast;
using namespace seqcast::transport;

namespace {

constexpr std::uint32_t kIp = 0x0A090001u;       // 10.9.0.1
constexpr std::uint32_t kGroup = 0xEF090909u;    // 239.9.9.9

UdpConfig config(Endpoint bind) {
    UdpConfig c;
    c.api = SocketApi::Dpdk;
    c.ealArgs = {"--no-huge", "-m", "256", "--no-pci", "--no-shconf", "--vdev=net_ring0", "--log-level=lib.eal:error",
                 "--no-telemetry"};
    c.interface = kIp;
    c.bind = bind;
    c.loop = false;
    c.rcvBuf = 1 << 20;  // 512-frame queues
    c.maxDatagram = 2048;
    return c;
}

// A bare backend, or (layered) one opened the way every role opens it: openTransport().
std::unique_ptr<Transport> open(const UdpConfig& c, bool layered = false) {
    std::vector<std::string> w;
    auto t = layered ? openTransport(c, w) : openDpdkTransport(c, w);
    if (!t) {
        if (t.error().message().find("EAL") != std::string::npos) {
            std::printf("SKIP: %s\n", t.error().message().c_str());
            std::fflush(stdout);
            std::_Exit(77);
        }
        FAIL(t.error().message());
    }
    return std::move(*t);
}

std::vector<RxSlot> drain(Transport& t, std::size_t want, std::vector<std::vector<std::byte>>& got) {
    std::vector<RxSlot> slots(64);
    std::vector<RxSlot> all;
    const std::uint64_t until = monoNs() + 2'000'000'000ull;
    while (got.size() < want && monoNs() < until) {
        const std::size_t n = t.recvBurst(slots);
        for (std::size_t i = 0; i < n; ++i) {
            got.emplace_back(slots[i].data, slots[i].data + slots[i].len);
            all.push_back(slots[i]);
        }
    }
    return all;
}

}  // namespace

TEST_CASE("dpdk: multicast over the wire, unicast to ourselves, binding rules, ARP, mbufs returned") {
    REQUIRE(dpdkAvailable());
    auto a = open(config({kIp, 5000}));
    CHECK(std::string(a->kind()) == "dpdk");
    CHECK(a->local() == Endpoint{kIp, 5000});
    auto gcfg = config({kGroup, 6000});
    gcfg.groups = {kGroup};
    auto b = open(gcfg);
    CHECK(b->local() == Endpoint{kGroup, 6000});
    auto c = open(config({0, 0}));
    CHECK(c->local().addr == kIp);
    CHECK(c->local().port >= 49152);

    SUBCASE("group datagrams go out and come back to the member") {
        std::vector<std::vector<std::byte>> sent;
        std::vector<TxItem> items;
        for (int i = 0; i < 100; ++i) {
            sent.emplace_back(static_cast<std::size_t>(20 + i * 13));
            for (std::size_t k = 0; k < sent.back().size(); ++k) sent.back()[k] = static_cast<std::byte>(i + k);
        }
        for (auto& s : sent) items.push_back(TxItem{s.data(), static_cast<std::uint32_t>(s.size()), {kGroup, 6000}});
        CHECK(c->sendBurst(items) == items.size());
        std::vector<std::vector<std::byte>> got;
        auto slots = drain(*b, sent.size(), got);
        REQUIRE(got.size() == sent.size());
        CHECK(got == sent);
        CHECK(slots[0].from == c->local());
        CHECK(b->stats().rxDatagrams == 100);
        CHECK(c->stats().txDatagrams == 100);
        // Nothing for the unicast endpoint; the port counted our own IGMP report on its way back.
        std::vector<std::vector<std::byte>> none;
        drain(*a, 1, none);
        CHECK(none.empty());
        const auto ps = dpdkPortStats();
        CHECK(ps.txIgmp >= 1);
        CHECK(ps.rxIgmp >= 1);
        CHECK(ps.rxUdp >= 100);
    }
    SUBCASE("unicast to our own address is delivered here") {
        const std::byte msg[5] = {std::byte{1}, std::byte{2}, std::byte{3}, std::byte{4}, std::byte{5}};
        const TxItem it{msg, 5, a->local()};
        CHECK(c->sendBurst(std::span(&it, 1)) == 1);
        std::vector<std::vector<std::byte>> got;
        auto slots = drain(*a, 1, got);
        REQUIRE(got.size() == 1);
        CHECK(got[0] == std::vector<std::byte>(msg, msg + 5));
        CHECK(slots[0].from == c->local());
    }
    SUBCASE("mbufs are returned: 20000 round trips through the pool") {
        std::vector<std::byte> payload(1000, std::byte{0x5A});
        std::vector<TxItem> items(32, TxItem{payload.data(), 1000, {kGroup, 6000}});
        std::vector<RxSlot> slots(64);
        std::size_t received = 0;
        for (int round = 0; round < 625; ++round) {
            std::size_t sent = 0;
            while (sent < items.size()) sent += c->sendBurst(std::span(items).subspan(sent));
            const std::uint64_t until = monoNs() + 1'000'000'000ull;
            std::size_t here = 0;
            while (here < items.size() && monoNs() < until) here += b->recvBurst(slots);
            received += here;
        }
        CHECK(received == 20000);
        CHECK(dpdkPortStats().txNoMbufs == 0);
    }
    SUBCASE("binding: a port in use, an address not ours") {
        std::vector<std::string> w;
        auto dup = openDpdkTransport(config({kIp, 5000}), w);
        REQUIRE(!dup);
        CHECK(dup.error().code == EADDRINUSE);
        auto foreign = openDpdkTransport(config({0x0A090002u, 7000}), w);
        REQUIRE(!foreign);
        CHECK(foreign.error().message().find("not our address") != std::string::npos);
    }
    SUBCASE("off-subnet and oversized datagrams are refused; an unanswered ARP gives up") {
        std::vector<std::byte> big(1500);
        std::vector<std::byte> small(10);
        const TxItem items[] = {
            {small.data(), 10, {0x0B000001u, 9}},     // 11.0.0.1: no route
            {big.data(), 1500, {kGroup, 6000}},       // above MTU 1500 - 28
            {small.data(), 10, {0x0A090063u, 9}},     // 10.9.0.99: nobody answers ARP
        };
        const auto before = dpdkPortStats();
        CHECK(c->sendBurst(items) == 3);
        const std::uint64_t until = monoNs() + 3'000'000'000ull;
        std::vector<RxSlot> slots(64);
        while (dpdkPortStats().arpUnresolved == before.arpUnresolved && monoNs() < until) c->recvBurst(slots);
        const auto after = dpdkPortStats();
        CHECK(after.txNoRoute == before.txNoRoute + 1);
        CHECK(after.txTooBig == before.txTooBig + 1);
        CHECK(after.arpUnresolved == before.arpUnresolved + 1);
        CHECK(after.txArpRequests >= before.txArpRequests + 5);
        CHECK(c->stats().txErrors == 2);
    }
}

TEST_CASE("dpdk: --auth-key and --allow apply over DPDK as over sockets (openTransport stacks both)") {
    REQUIRE(dpdkAvailable());
    char keyPath[] = "/tmp/seqcast-dpdk-keys-XXXXXX";
    const int fd = ::mkstemp(keyPath);
    REQUIRE(fd >= 0);
    ::close(fd);
    std::ofstream(keyPath, std::ios::trunc) << "1 000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f\n";
    ::chmod(keyPath, 0600);

    Counters rxCounters, farCounters;
    // The receiver: signed frames only, from our own subnet.
    auto rcfg = config({kIp, 5100});
    rcfg.authKeyFile = keyPath;
    rcfg.allow = {Cidr{0x0A090000u, 0xFFFF0000u}};  // 10.9.0.0/16
    rcfg.counters = &rxCounters;
    auto rx = open(rcfg, true);
    // Another receiver that allows only 10.1.0.0/16: nothing here comes from there.
    auto fcfg = config({kIp, 5101});
    fcfg.authKeyFile = keyPath;
    fcfg.allow = {Cidr{0x0A010000u, 0xFFFF0000u}};
    fcfg.counters = &farCounters;
    auto far = open(fcfg, true);
    // A signing sender, and one that signs nothing (a bare DPDK endpoint: a forger's view).
    auto scfg = config({0, 0});
    scfg.authKeyFile = keyPath;
    auto signer = open(scfg, true);
    auto forger = open(config({0, 0}));

    std::vector<std::byte> msg(100);
    for (std::size_t k = 0; k < msg.size(); ++k) msg[k] = static_cast<std::byte>(k * 7);
    // Unsigned, the last 32 bytes read as a trailer name a key nobody has; a forged trailer names
    // key 1 but its tag (zeros) is wrong.
    std::vector<std::byte> forged = msg;
    forged.resize(msg.size() + 32);
    forged[msg.size()] = std::byte{1};  // key id 1, little-endian
    const TxItem toRx{msg.data(), 100, rx->local()};
    const TxItem forgedToRx{forged.data(), static_cast<std::uint32_t>(forged.size()), rx->local()};
    const TxItem toFar{msg.data(), 100, far->local()};
    CHECK(forger->sendBurst(std::span(&toRx, 1)) == 1);
    CHECK(forger->sendBurst(std::span(&forgedToRx, 1)) == 1);
    CHECK(signer->sendBurst(std::span(&toRx, 1)) == 1);
    CHECK(signer->sendBurst(std::span(&toFar, 1)) == 1);

    std::vector<std::vector<std::byte>> got;
    drain(*rx, 3, got);  // waits up to 2 s for a third that must never come
    REQUIRE(got.size() == 1);
    CHECK(got[0] == msg);  // the signed one, trailer removed
    CHECK(rxCounters.get(Counter::DropUnknownKey) == 1);
    CHECK(rxCounters.get(Counter::DropBadAuth) == 1);
    CHECK(rxCounters.get(Counter::DropNotAllowed) == 0);

    std::vector<std::vector<std::byte>> none;
    drain(*far, 1, none);
    CHECK(none.empty());
    CHECK(farCounters.get(Counter::DropNotAllowed) == 1);
    CHECK(farCounters.get(Counter::DropBadAuth) + farCounters.get(Counter::DropUnknownKey) == 0);  // refused before any MAC
    ::unlink(keyPath);
}
