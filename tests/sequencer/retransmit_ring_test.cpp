// RetransmitRing: store/find, wrap-around eviction, retransmit marks, recovery of a region left by a
// previous owner.
#include <doctest/doctest.h>

#include <algorithm>
#include <cstring>
#include <stdexcept>
#include <vector>

#include "sequencer/retransmit_ring.h"

using namespace seqcast;
using sequencer::RetransmitRing;

namespace {

constexpr std::size_t kMaxDatagram = 256;

// Datagram i holds `count` offsets starting at `first`; its bytes encode first and count so a
// verifier can check them.
std::size_t lenFor(std::uint64_t first) { return 64 + (first * 37) % 150; }

void fill(std::span<std::byte> b, std::uint64_t first, std::uint32_t count, std::size_t len) {
    for (std::size_t k = 0; k < len; ++k) b[k] = static_cast<std::byte>((first * 13 + k) & 0xFF);
    std::memcpy(b.data(), &first, sizeof first);
    std::memcpy(b.data() + 8, &count, sizeof count);
}

bool matches(std::span<const std::byte> b, std::uint64_t first, std::uint32_t count) {
    if (b.size() != lenFor(first)) return false;
    std::uint64_t f = 0;
    std::uint32_t c = 0;
    std::memcpy(&f, b.data(), sizeof f);
    std::memcpy(&c, b.data() + 8, sizeof c);
    if (f != first || c != count) return false;
    for (std::size_t k = 12; k < b.size(); ++k)
        if (b[k] != static_cast<std::byte>((first * 13 + k) & 0xFF)) return false;
    return true;
}

// Appends one datagram carrying offsets [first, first + count).
void put(RetransmitRing& r, std::uint64_t first, std::uint32_t count) {
    auto w = r.reserve();
    REQUIRE(w.size() == kMaxDatagram);
    const std::size_t len = lenFor(first);
    fill(w, first, count, len);
    r.commit(Offset{first}, count, len);
}

// Writes datagrams of 1..3 offsets until `next` reaches `until`; returns the firsts written.
std::vector<std::uint64_t> putUntil(RetransmitRing& r, std::uint64_t until) {
    std::vector<std::uint64_t> firsts;
    std::uint64_t next = r.next().get();
    while (next < until) {
        const auto count = static_cast<std::uint32_t>(1 + next % 3);
        put(r, next, count);
        firsts.push_back(next);
        next += count;
    }
    return firsts;
}

std::uint64_t gRejectFrom = 0;
bool verifyBelow(std::span<const std::byte> b, std::uint64_t first, std::uint32_t count) {
    return first < gRejectFrom && matches(b, first, count);
}
bool verifyAll(std::span<const std::byte> b, std::uint64_t first, std::uint32_t count) {
    return matches(b, first, count);
}

}  // namespace

TEST_SUITE("quick") {

TEST_CASE("an empty ring") {
    RetransmitRing r(64 << 10, kMaxDatagram);
    CHECK(r.empty());
    CHECK(r.datagrams() == 0);
    CHECK(r.bytesUsed() == 0);
    CHECK(r.oldest() == Offset{0});
    CHECK(r.next() == Offset{0});
    CHECK_FALSE(r.find(Offset{0}));
    CHECK_FALSE(r.entry(0));
    CHECK(r.capacity() >= 64u << 10);
    // Capacity is at least four datagrams.
    RetransmitRing tiny(10, kMaxDatagram);
    CHECK(tiny.capacity() == 4 * kMaxDatagram);
}

TEST_CASE("reserve, commit and find across many datagrams") {
    RetransmitRing r(1 << 20, kMaxDatagram);
    r.resetTo(Offset{1000});
    CHECK(r.next() == Offset{1000});
    CHECK(r.oldest() == Offset{1000});
    const auto firsts = putUntil(r, 3000);
    CHECK(r.datagrams() == firsts.size());
    CHECK(r.oldest() == Offset{1000});
    CHECK(r.next() == Offset{3000});
    std::size_t bytes = 0;
    for (auto f : firsts) bytes += lenFor(f);
    CHECK(r.bytesUsed() == bytes);

    for (std::size_t i = 0; i < firsts.size(); ++i) {
        const std::uint64_t f = firsts[i];
        const auto count = static_cast<std::uint32_t>(1 + f % 3);
        for (std::uint32_t k = 0; k < count; ++k) {
            auto e = r.find(Offset{f + k});
            REQUIRE(e);
            CHECK(e->first == Offset{f});
            CHECK(e->count == count);
            CHECK(e->index == i);
            CHECK(e->lastRetransmitNs == 0);
            CHECK(matches(e->bytes, f, count));
        }
        auto byIndex = r.entry(i);
        REQUIRE(byIndex);
        CHECK(byIndex->first == Offset{f});
    }
    CHECK_FALSE(r.find(Offset{999}));
    CHECK_FALSE(r.find(Offset{3000}));
    CHECK_FALSE(r.find(Offset{~std::uint64_t{0}}));
    CHECK_FALSE(r.entry(firsts.size()));

    // A commit of zero offsets stores nothing.
    (void)r.reserve();
    r.commit(Offset{3000}, 0, 10);
    CHECK(r.datagrams() == firsts.size());
    CHECK(r.next() == Offset{3000});
}

TEST_CASE("wrap-around evicts the oldest and keeps oldest() exact") {
    RetransmitRing r(16 << 10, kMaxDatagram);
    std::vector<std::uint64_t> all;
    std::uint64_t next = 0;
    for (int round = 0; round < 40; ++round) {
        for (int k = 0; k < 37; ++k) {
            const auto count = static_cast<std::uint32_t>(1 + next % 3);
            put(r, next, count);
            all.push_back(next);
            next += count;
        }
        CHECK(r.bytesUsed() <= r.capacity());
        CHECK(r.next() == Offset{next});
        // The retained entries are the newest ones, contiguous, ending at next.
        const std::size_t n = r.datagrams();
        REQUIRE(n > 0);
        REQUIRE(n <= all.size());
        const std::uint64_t oldest = all[all.size() - n];
        CHECK(r.oldest() == Offset{oldest});
        std::uint64_t expect = oldest;
        std::size_t bytes = 0;
        for (std::size_t i = 0; i < n; ++i) {
            auto e = r.entry(i);
            REQUIRE(e);
            CHECK(e->first == Offset{expect});
            CHECK(matches(e->bytes, expect, e->count));
            bytes += e->bytes.size();
            expect += e->count;
        }
        CHECK(expect == next);
        CHECK(bytes == r.bytesUsed());
        // Evicted offsets are gone; retained ones are found.
        if (oldest > 0) {
            CHECK_FALSE(r.find(Offset{oldest - 1}));
            CHECK_FALSE(r.find(Offset{0}));
        }
        CHECK(r.find(Offset{oldest}));
        CHECK(r.find(Offset{next - 1}));
    }
    CHECK(r.oldest() > Offset{0});
    // Roughly a capacity's worth of data is retained (at least half of it).
    CHECK(r.bytesUsed() * 2 >= r.capacity());
}

TEST_CASE("markRetransmitted") {
    RetransmitRing r(64 << 10, kMaxDatagram);
    putUntil(r, 100);
    auto e = r.find(Offset{50});
    REQUIRE(e);
    r.markRetransmitted(e->index, 123'456);
    auto again = r.find(Offset{50});
    REQUIRE(again);
    CHECK(again->lastRetransmitNs == 123'456);
    CHECK(r.entry(e->index)->lastRetransmitNs == 123'456);
    // Other entries untouched; an out-of-range index is ignored.
    CHECK(r.find(Offset{0})->lastRetransmitNs == 0);
    r.markRetransmitted(r.datagrams() + 5, 99);
    CHECK(r.find(Offset{99})->lastRetransmitNs == 0);
}

TEST_CASE("resetTo empties the ring at a new offset") {
    RetransmitRing r(64 << 10, kMaxDatagram);
    putUntil(r, 500);
    r.resetTo(Offset{10'000});
    CHECK(r.empty());
    CHECK(r.bytesUsed() == 0);
    CHECK(r.oldest() == Offset{10'000});
    CHECK(r.next() == Offset{10'000});
    CHECK_FALSE(r.find(Offset{100}));
    putUntil(r, 10'100);
    CHECK(r.oldest() == Offset{10'000});
    CHECK(r.find(Offset{10'050}));
    CHECK_FALSE(r.find(Offset{9'999}));
}

TEST_CASE("an external region survives a restart (recover=true)") {
    const std::size_t cap = 32 << 10;
    std::vector<std::byte> region(RetransmitRing::regionSize(cap, kMaxDatagram));
    std::vector<std::uint64_t> firsts;
    std::uint64_t next = 0;
    std::size_t retained = 0;
    Offset oldest{};
    {
        RetransmitRing r(region, cap, kMaxDatagram, false, nullptr);
        CHECK(r.empty());
        firsts = putUntil(r, 900);  // wraps more than once
        r.markRetransmitted(2, 77);
        next = r.next().get();
        retained = r.datagrams();
        oldest = r.oldest();
    }
    CHECK(oldest > Offset{0});
    {
        RetransmitRing r(region, cap, kMaxDatagram, true, verifyAll);
        CHECK(r.droppedOnRecover() == 0);
        CHECK(r.datagrams() == retained);
        CHECK(r.next() == Offset{next});
        CHECK(r.oldest() == oldest);
        CHECK(r.entry(2)->lastRetransmitNs == 77);
        for (std::uint64_t o = oldest.get(); o < next; ++o) {
            auto e = r.find(Offset{o});
            REQUIRE(e);
            CHECK(matches(e->bytes, e->first.get(), e->count));
        }
        // It goes on where it stopped.
        putUntil(r, next + 200);
        CHECK(r.find(Offset{next + 100}));
        next = r.next().get();
    }
    // No verifier: the structural checks alone keep everything.
    RetransmitRing r2(region, cap, kMaxDatagram, true, nullptr);
    CHECK(r2.droppedOnRecover() == 0);
    CHECK(r2.next() == Offset{next});
    CHECK(r2.find(Offset{next - 100}));
}

TEST_CASE("recover drops everything from the first entry that fails verification") {
    const std::size_t cap = 64 << 10;
    std::vector<std::byte> region(RetransmitRing::regionSize(cap, kMaxDatagram));
    std::vector<std::uint64_t> firsts;
    {
        RetransmitRing r(region, cap, kMaxDatagram, false, nullptr);
        firsts = putUntil(r, 200);
        REQUIRE(r.oldest() == Offset{0});  // no wrap: every datagram retained
    }
    const std::size_t k = firsts.size() / 2;
    gRejectFrom = firsts[k];
    RetransmitRing r(region, cap, kMaxDatagram, true, verifyBelow);
    CHECK(r.datagrams() == k);
    CHECK(r.droppedOnRecover() == firsts.size() - k);
    CHECK(r.oldest() == Offset{0});
    CHECK(r.next() == Offset{firsts[k]});
    CHECK(r.find(Offset{firsts[k] - 1}));
    CHECK_FALSE(r.find(Offset{firsts[k]}));
    std::size_t bytes = 0;
    for (std::size_t i = 0; i < k; ++i) bytes += lenFor(firsts[i]);
    CHECK(r.bytesUsed() == bytes);
    // New datagrams continue from the last good one without clobbering the kept ones.
    put(r, firsts[k], 2);
    CHECK(r.find(Offset{firsts[k] + 1}));
    CHECK(r.find(Offset{0}));
    CHECK(matches(r.find(Offset{0})->bytes, 0, r.find(Offset{0})->count));
    CHECK(matches(r.find(Offset{firsts[k - 1]})->bytes, firsts[k - 1], r.find(Offset{firsts[k - 1]})->count));

    // Rejecting the first entry leaves an empty ring.
    {
        RetransmitRing w(region, cap, kMaxDatagram, false, nullptr);
        putUntil(w, 50);
    }
    gRejectFrom = 0;
    RetransmitRing e(region, cap, kMaxDatagram, true, verifyBelow);
    CHECK(e.empty());
    CHECK(e.droppedOnRecover() > 0);
}

TEST_CASE("recover=false formats; a mismatching control block is formatted") {
    const std::size_t cap = 32 << 10;
    const std::size_t bigger = 48 << 10;
    std::vector<std::byte> region(RetransmitRing::regionSize(bigger, kMaxDatagram));
    {
        RetransmitRing r(region, cap, kMaxDatagram, false, nullptr);
        putUntil(r, 100);
    }
    {
        RetransmitRing r(region, cap, kMaxDatagram, false, verifyAll);
        CHECK(r.empty());
        CHECK(r.next() == Offset{0});
        putUntil(r, 100);
    }
    {
        // A different capacity: the old contents cannot be trusted.
        RetransmitRing r(region, bigger, kMaxDatagram, true, verifyAll);
        CHECK(r.empty());
        CHECK(r.next() == Offset{0});
        CHECK(r.capacity() == bigger);
        putUntil(r, 100);
    }
    {
        // A different maximum datagram size, likewise.
        RetransmitRing r(region, bigger, kMaxDatagram / 2, true, nullptr);
        CHECK(r.empty());
    }
    {
        // Garbage (no magic) is formatted.
        std::fill(region.begin(), region.end(), std::byte{0xA5});
        RetransmitRing r(region, cap, kMaxDatagram, true, verifyAll);
        CHECK(r.empty());
        CHECK(r.next() == Offset{0});
        putUntil(r, 10);
        CHECK(r.find(Offset{5}));
    }
    // A region too small is refused.
    std::vector<std::byte> small(RetransmitRing::regionSize(cap, kMaxDatagram) - 1);
    CHECK_THROWS_AS(RetransmitRing(small, cap, kMaxDatagram, false, nullptr), std::invalid_argument);
}

}  // TEST_SUITE
