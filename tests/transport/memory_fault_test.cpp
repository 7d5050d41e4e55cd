// MemoryTransport (in-memory network) and FaultTransport (seeded fault injection) semantics.
#include <doctest/doctest.h>

#include <algorithm>
#include <array>
#include <bit>
#include <cmath>
#include <cstring>
#include <limits>
#include <memory>
#include <vector>

#include "transport/allowlist_transport.h"
#include "transport/fault_transport.h"
#include "transport/memory_transport.h"

using namespace seqcast;
using transport::Endpoint;
using transport::FaultConfig;
using transport::FaultTransport;
using transport::MemoryNetwork;
using transport::MemoryTransport;
using transport::RxSlot;
using transport::TxItem;

namespace {

const Endpoint kA{0x0A000001u, 1000};
const Endpoint kB{0x0A000002u, 2000};
const Endpoint kGroup{0xEF010101u, 5000};

std::vector<std::byte> datagram(std::uint32_t i, std::size_t len = 64) {
    std::vector<std::byte> v(len);
    for (std::size_t k = 0; k < len; ++k) v[k] = static_cast<std::byte>((i * 131 + k * 7 + 3) & 0xFF);
    // The tag at both ends: one flipped bit can never turn a datagram into another valid one.
    std::memcpy(v.data(), &i, sizeof i);
    std::memcpy(v.data() + len - sizeof i, &i, sizeof i);
    return v;
}

std::uint32_t tagOf(std::span<const std::byte> b) {
    std::uint32_t i = 0;
    std::memcpy(&i, b.data(), sizeof i);
    return i;
}

std::size_t send(transport::Transport& t, const std::vector<std::vector<std::byte>>& msgs, Endpoint to) {
    std::vector<TxItem> items;
    for (const auto& m : msgs) items.push_back(TxItem{m.data(), static_cast<std::uint32_t>(m.size()), to});
    return t.sendBurst(items);
}

std::vector<std::vector<std::byte>> drain(transport::Transport& t, std::size_t burst = 32) {
    std::vector<std::vector<std::byte>> got;
    std::vector<RxSlot> slots(burst);
    for (;;) {
        const std::size_t n = t.recvBurst(slots);
        if (n == 0) break;
        for (std::size_t i = 0; i < n; ++i) got.emplace_back(slots[i].data, slots[i].data + slots[i].len);
    }
    return got;
}

struct Run {
    std::vector<std::vector<std::byte>> got;
    transport::FaultStats faults;
};

// Sends `total` tagged datagrams from a plain sender to a receiver wrapped in faults (or through a
// faulty sender when cfg.onSend), `chunk` at a time, receiving in bursts of `burst` until idle.
Run runFaults(const FaultConfig& cfg, std::uint32_t total, std::size_t chunk = 64, std::size_t burst = 32) {
    MemoryNetwork net;
    std::unique_ptr<transport::Transport> sender = std::make_unique<MemoryTransport>(net, kA);
    std::unique_ptr<transport::Transport> receiver = std::make_unique<MemoryTransport>(net, kB);
    FaultTransport* f = nullptr;
    if (cfg.onSend) {
        f = new FaultTransport(std::move(sender), cfg);
        sender.reset(f);
    } else {
        f = new FaultTransport(std::move(receiver), cfg);
        receiver.reset(f);
    }
    Run r;
    for (std::uint32_t i = 0; i < total; i += static_cast<std::uint32_t>(chunk)) {
        std::vector<std::vector<std::byte>> msgs;
        for (std::uint32_t k = i; k < std::min<std::uint32_t>(total, i + static_cast<std::uint32_t>(chunk)); ++k)
            msgs.push_back(datagram(k));
        CHECK(send(*sender, msgs, kB) == msgs.size());
        for (auto& g : drain(*receiver, burst)) r.got.push_back(std::move(g));
    }
    // Flush what the faulty sender still holds back.
    for (int k = 0; k < 1000 && cfg.onSend; ++k) {
        sender->sendBurst(std::span<const TxItem>());
        auto more = drain(*receiver, burst);
        if (more.empty()) break;
        for (auto& g : more) r.got.push_back(std::move(g));
    }
    r.faults = f->faults();
    return r;
}

std::vector<std::uint32_t> tags(const Run& r) {
    std::vector<std::uint32_t> t;
    for (const auto& g : r.got) t.push_back(tagOf(g));
    return t;
}

}  // namespace

TEST_SUITE("quick") {

TEST_CASE("MemoryTransport: unicast delivery with the sender's address") {
    MemoryNetwork net;
    MemoryTransport a(net, kA);
    MemoryTransport b(net, Endpoint{0x0A000002u, 0});
    CHECK(a.local() == kA);
    CHECK(b.local().addr == 0x0A000002u);
    CHECK(b.local().port != 0);
    CHECK(a.waitFd() == -1);

    std::vector<std::vector<std::byte>> msgs;
    for (std::uint32_t i = 0; i < 10; ++i) msgs.push_back(datagram(i, 20 + i));
    CHECK(send(a, msgs, b.local()) == 10);
    CHECK(a.stats().txDatagrams == 10);

    std::array<RxSlot, 4> slots{};
    CHECK(b.recvBurst(slots) == 4);  // at most the span's size
    CHECK(slots[0].from == kA);
    CHECK(tagOf({slots[0].data, slots[0].len}) == 0);
    CHECK(slots[3].len == 23);
    const auto rest = drain(b);
    REQUIRE(rest.size() == 6);
    for (std::uint32_t i = 0; i < 6; ++i) CHECK(rest[i] == msgs[i + 4]);
    CHECK(b.stats().rxDatagrams == 10);
    CHECK(a.recvBurst(slots) == 0);  // nothing addressed to a
}

TEST_CASE("MemoryTransport: multicast reaches every member and only members") {
    MemoryNetwork net;
    MemoryTransport s(net, kA);
    MemoryTransport m1(net, Endpoint{0x0A000010u, 0}, {kGroup});
    MemoryTransport m2(net, Endpoint{0x0A000011u, 0}, {kGroup});
    MemoryTransport otherPort(net, Endpoint{0x0A000012u, 0}, {Endpoint{kGroup.addr, 5001}});
    MemoryTransport outsider(net, Endpoint{0x0A000013u, 0});

    std::vector<std::vector<std::byte>> msgs;
    for (std::uint32_t i = 0; i < 5; ++i) msgs.push_back(datagram(i));
    CHECK(send(s, msgs, kGroup) == 5);
    const auto g1 = drain(m1);
    const auto g2 = drain(m2);
    CHECK(g1 == msgs);
    CHECK(g2 == msgs);
    CHECK(drain(otherPort).empty());
    CHECK(drain(outsider).empty());

    // A member that goes away stops receiving; the others are unaffected.
    {
        MemoryTransport m3(net, Endpoint{0x0A000014u, 0}, {kGroup});
        CHECK(send(s, msgs, kGroup) == 5);
        CHECK(drain(m3).size() == 5);
    }
    CHECK(drain(m1).size() == 5);
    CHECK(send(s, msgs, kGroup) == 5);
    CHECK(drain(m2).size() == 10);
    CHECK(net.dropped() == 0);
}

TEST_CASE("MemoryTransport: a full queue drops and counts") {
    MemoryNetwork net(4);
    MemoryTransport a(net, kA);
    MemoryTransport b(net, kB);
    std::vector<std::vector<std::byte>> msgs;
    for (std::uint32_t i = 0; i < 10; ++i) msgs.push_back(datagram(i));
    CHECK(send(a, msgs, kB) == 10);  // the network takes everything; the queue drops
    CHECK(net.dropped() == 6);
    const auto got = drain(b);
    REQUIRE(got.size() == 4);
    for (std::uint32_t i = 0; i < 4; ++i) CHECK(tagOf(got[i]) == i);  // the oldest were kept
    CHECK(send(a, msgs, kB) == 10);
    CHECK(net.dropped() == 12);
    // Sending to an endpoint nobody bound is a silent no-op, not a queue drop.
    CHECK(send(a, msgs, Endpoint{0x0A0000FFu, 9}) == 10);
    CHECK(net.dropped() == 12);
}

TEST_CASE("FaultConfig::validate") {
    FaultConfig ok;
    CHECK(ok.validate());
    CHECK_FALSE(ok.any());
    ok.loss = 1.0;
    ok.corrupt = 0.0;
    CHECK(ok.validate());
    CHECK(ok.any());

    const double nan = std::numeric_limits<double>::quiet_NaN();
    for (double bad : {-0.01, 1.01, 2.0, nan}) {
        INFO("p = " << bad);
        for (int field = 0; field < 5; ++field) {
            FaultConfig c;
            double* p[] = {&c.loss, &c.burstStart, &c.reorder, &c.duplicate, &c.corrupt};
            *p[field] = bad;
            auto st = c.validate();
            REQUIRE_FALSE(st);
            CHECK(st.error().code == EINVAL);
            CHECK(st.error().message().find("[0, 1]") != std::string::npos);
        }
    }
    FaultConfig b;
    b.burstLength = 0;
    auto st = b.validate();
    REQUIRE_FALSE(st);
    CHECK(st.error().message().find("burst length") != std::string::npos);
}

TEST_CASE("FaultTransport: no faults configured passes everything through") {
    const Run r = runFaults(FaultConfig{}, 1000);
    REQUIRE(r.got.size() == 1000);
    for (std::uint32_t i = 0; i < 1000; ++i) CHECK(r.got[i] == datagram(i));
}

TEST_CASE("FaultTransport: same seed, same faults; another seed, other faults") {
    FaultConfig c;
    c.seed = 42;
    c.loss = 0.05;
    c.burstStart = 0.002;
    c.burstLength = 7;
    c.reorder = 0.05;
    c.duplicate = 0.05;
    c.corrupt = 0.05;
    const Run a = runFaults(c, 5000);
    const Run b = runFaults(c, 5000);
    CHECK(a.got == b.got);
    CHECK(a.faults.dropped == b.faults.dropped);
    CHECK(a.faults.burstDropped == b.faults.burstDropped);
    CHECK(a.faults.reordered == b.faults.reordered);
    CHECK(a.faults.duplicated == b.faults.duplicated);
    CHECK(a.faults.corrupted == b.faults.corrupted);
    CHECK(a.faults.dropped > 0);
    CHECK(a.faults.burstDropped > 0);
    CHECK(a.faults.reordered > 0);
    CHECK(a.faults.duplicated > 0);
    CHECK(a.faults.corrupted > 0);

    c.seed = 43;
    const Run d = runFaults(c, 5000);
    CHECK(d.got != a.got);
}

TEST_CASE("FaultTransport: random loss rate within tolerance over 100k datagrams") {
    FaultConfig c;
    c.seed = 7;
    c.loss = 0.1;
    constexpr std::uint32_t kN = 100'000;
    const Run r = runFaults(c, kN, 256, 64);
    // Binomial: sd = sqrt(n p (1-p)) ~ 95; allow 5 sd.
    CHECK(r.faults.dropped > 9'500);
    CHECK(r.faults.dropped < 10'500);
    CHECK(r.got.size() == kN - r.faults.dropped);
    CHECK(r.faults.burstDropped == 0);
    // What got through is intact and in order.
    const auto t = tags(r);
    CHECK(std::is_sorted(t.begin(), t.end()));
    CHECK(std::adjacent_find(t.begin(), t.end()) == t.end());
}

TEST_CASE("FaultTransport: burst loss drops exactly burstLength in a row") {
    FaultConfig c;
    c.seed = 11;
    c.burstStart = 0.001;
    c.burstLength = 25;
    constexpr std::uint32_t kN = 50'000;
    const Run r = runFaults(c, kN);
    const auto t = tags(r);
    REQUIRE(std::is_sorted(t.begin(), t.end()));
    CHECK(r.faults.dropped == 0);
    CHECK(r.faults.burstDropped > 0);
    CHECK(r.got.size() == kN - r.faults.burstDropped);
    // Every run of missing tags is a whole number of bursts (two bursts can abut).
    std::uint64_t prev = 0;
    std::size_t exact = 0;
    std::uint64_t missing = 0;
    auto gapRun = [&](std::uint64_t len) {
        if (len == 0) return;
        CHECK(len % c.burstLength == 0);
        if (len == c.burstLength) ++exact;
        missing += len;
    };
    for (std::uint32_t v : t) {
        gapRun(v - prev);
        prev = v + 1;
    }
    // A burst may still be under way at the end.
    const std::uint64_t tail = kN - prev;
    if (tail % c.burstLength != 0) CHECK(tail < c.burstLength);
    missing += tail;
    CHECK(missing == r.faults.burstDropped);
    CHECK(exact > 10);

    // A burst that starts on the very first datagram.
    FaultConfig all;
    all.burstStart = 1.0;
    all.burstLength = 3;
    const Run a = runFaults(all, 30);
    CHECK(a.got.empty());
    CHECK(a.faults.burstDropped == 30);
}

TEST_CASE("FaultTransport: duplicates are delivered twice and counted") {
    FaultConfig c;
    c.seed = 5;
    c.duplicate = 0.1;
    constexpr std::uint32_t kN = 20'000;
    // Receive in bursts the same size as the sender's: a duplicate can overflow the caller's burst.
    const Run r = runFaults(c, kN, 32, 32);
    CHECK(r.faults.duplicated > 1'500);
    CHECK(r.faults.duplicated < 2'500);
    CHECK(r.got.size() == kN + r.faults.duplicated);
    const auto t = tags(r);
    CHECK(std::is_sorted(t.begin(), t.end()));
    std::uint64_t twice = 0;
    for (std::size_t i = 1; i < t.size(); ++i) twice += t[i] == t[i - 1] ? 1 : 0;
    CHECK(twice == r.faults.duplicated);
    std::vector<std::uint32_t> u = t;
    u.erase(std::unique(u.begin(), u.end()), u.end());
    CHECK(u.size() == kN);  // none lost
    for (const auto& g : r.got) CHECK(g == datagram(tagOf(g)));
}

TEST_CASE("FaultTransport: corruption flips exactly one bit") {
    FaultConfig c;
    c.seed = 9;
    c.corrupt = 0.2;
    constexpr std::uint32_t kN = 10'000;
    const Run r = runFaults(c, kN);
    REQUIRE(r.got.size() == kN);
    CHECK(r.faults.corrupted > 1'700);
    CHECK(r.faults.corrupted < 2'300);
    std::uint64_t changed = 0;
    for (std::uint32_t i = 0; i < kN; ++i) {
        const auto want = datagram(i);
        const auto& got = r.got[i];
        REQUIRE(got.size() == want.size());
        int bits = 0;
        for (std::size_t k = 0; k < got.size(); ++k)
            bits += std::popcount(static_cast<unsigned>(std::to_integer<unsigned>(got[k] ^ want[k])));
        CHECK(bits <= 1);
        changed += bits == 1 ? 1 : 0;
    }
    CHECK(changed == r.faults.corrupted);
}

TEST_CASE("FaultTransport: reordered datagrams all arrive, late") {
    FaultConfig c;
    c.seed = 3;
    c.reorder = 0.1;
    constexpr std::uint32_t kN = 20'000;
    const Run r = runFaults(c, kN);
    CHECK(r.faults.reordered > 1'500);
    CHECK(r.faults.reordered < 2'500);
    const auto t = tags(r);
    REQUIRE(t.size() == kN);
    CHECK_FALSE(std::is_sorted(t.begin(), t.end()));
    std::vector<std::uint32_t> s = t;
    std::sort(s.begin(), s.end());
    for (std::uint32_t i = 0; i < kN; ++i) REQUIRE(s[i] == i);
    // Every held datagram came after at least one that overtook it.
    std::uint32_t maxSeen = 0;
    std::uint64_t late = 0;
    for (std::size_t i = 0; i < t.size(); ++i) {
        if (i > 0 && t[i] < maxSeen) ++late;
        maxSeen = std::max(maxSeen, t[i]);
    }
    CHECK(late > 0);
    CHECK(late <= r.faults.reordered);
}

TEST_CASE("FaultTransport: faults on send") {
    FaultConfig c;
    c.seed = 21;
    c.onReceive = false;
    c.onSend = true;
    c.loss = 0.1;
    c.duplicate = 0.05;
    c.reorder = 0.05;
    c.corrupt = 0.05;
    constexpr std::uint32_t kN = 20'000;
    const Run r = runFaults(c, kN);
    CHECK(r.faults.dropped > 1'500);
    CHECK(r.faults.duplicated > 500);
    CHECK(r.faults.reordered > 500);
    CHECK(r.faults.corrupted > 500);
    CHECK(r.got.size() == kN - r.faults.dropped + r.faults.duplicated);
    std::uint64_t corrupted = 0;
    std::vector<std::uint32_t> seen;
    for (const auto& g : r.got) {
        const std::uint32_t t = tagOf(g);
        if (t < kN && g == datagram(t)) seen.push_back(t);
        else ++corrupted;
    }
    CHECK(corrupted == r.faults.corrupted);
    std::sort(seen.begin(), seen.end());
    seen.erase(std::unique(seen.begin(), seen.end()), seen.end());
    CHECK(seen.size() == kN - r.faults.dropped - r.faults.corrupted);

    // Same seed on send, same result.
    const Run again = runFaults(c, kN);
    CHECK(again.got == r.got);

    // Faults only on send leave receiving alone.
    MemoryNetwork net;
    MemoryTransport a(net, kA);
    FaultTransport b(std::make_unique<MemoryTransport>(net, kB), c);
    std::vector<std::vector<std::byte>> msgs;
    for (std::uint32_t i = 0; i < 200; ++i) msgs.push_back(datagram(i));
    CHECK(send(a, msgs, kB) == 200);
    CHECK(drain(b) == msgs);
    CHECK(b.faults().dropped == 0);
    CHECK(b.local() == kB);
    CHECK(b.stats().rxDatagrams == 200);
}

TEST_CASE("allowlist: parsing networks, and only their datagrams get through, the rest counted") {
    auto ok = transport::parseAllowlist("10.1.0.0/16, 127.0.0.1,192.168.7.9/24,0.0.0.0/0");
    REQUIRE(ok);
    REQUIRE(ok->size() == 4);
    CHECK((*ok)[0].contains(0x0A01FFFFu));
    CHECK_FALSE((*ok)[0].contains(0x0A020000u));
    CHECK((*ok)[1].contains(0x7F000001u));
    CHECK_FALSE((*ok)[1].contains(0x7F000002u));
    CHECK((*ok)[2].addr == 0xC0A80700u);  // host bits masked off
    CHECK((*ok)[3].contains(0xDEADBEEFu));
    for (const char* bad : {"10.1.0.0/33", "10.1.0.0/", "10.1.0/8", "host/8", "10.0.0.1/-1", "10.0.0.1/8x", "300.1.1.1"}) {
        INFO(std::string(bad));
        auto r = transport::parseAllowlist(bad);
        REQUIRE_FALSE(r);
        CHECK(r.error().message().find(bad) != std::string::npos);
    }
    CHECK(transport::parseAllowlist("")->empty());

    MemoryNetwork net;
    const Endpoint me{0x0A000001u, 5000};
    Counters c;
    transport::AllowlistTransport t(std::make_unique<MemoryTransport>(net, me), *transport::parseAllowlist("10.9.0.0/16"), &c);
    MemoryTransport friendly(net, Endpoint{0x0A090001u, 0});
    MemoryTransport stranger(net, Endpoint{0x0B000001u, 0});
    std::byte b[16] = {};
    const TxItem item{b, sizeof b, me};
    for (int i = 0; i < 5; ++i) {
        REQUIRE(stranger.sendBurst(std::span<const TxItem>(&item, 1)) == 1);
        REQUIRE(friendly.sendBurst(std::span<const TxItem>(&item, 1)) == 1);
    }
    std::array<RxSlot, 32> slots{};
    std::size_t got = 0;
    for (std::size_t n; (n = t.recvBurst(slots)) != 0;) {
        for (std::size_t i = 0; i < n; ++i) CHECK(slots[i].from.addr == 0x0A090001u);
        got += n;
    }
    CHECK(got == 5);
    CHECK(t.stats().rxNotAllowed == 5);
    CHECK(c.get(Counter::DropNotAllowed) == 5);
}

}  // TEST_SUITE
