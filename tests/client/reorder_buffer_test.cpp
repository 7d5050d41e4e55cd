// ReorderBuffer: ordered release of datagrams that arrived ahead of the delivery point.
#include <doctest/doctest.h>

#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <map>
#include <random>
#include <vector>

#include "client/reorder_buffer.h"

using namespace seqcast;
using client::ReorderBuffer;
using Insert = ReorderBuffer::Insert;

namespace {

constexpr std::size_t kMaxDatagram = 128;

std::vector<std::byte> bytesFor(std::uint64_t first, std::size_t len = 40) {
    std::vector<std::byte> v(len);
    for (std::size_t k = 0; k < len; ++k) v[k] = static_cast<std::byte>((first + k) & 0xFF);
    std::memcpy(v.data(), &first, sizeof first);
    return v;
}

std::uint64_t firstOf(std::span<const std::byte> b) {
    std::uint64_t f = 0;
    std::memcpy(&f, b.data(), sizeof f);
    return f;
}

}  // namespace

TEST_SUITE("quick") {

TEST_CASE("out-of-order inserts come out lowest first") {
    ReorderBuffer r(16 * kMaxDatagram, kMaxDatagram);
    CHECK(r.capacity() == 16);
    CHECK(r.empty());
    // Datagrams of 2 offsets each at 10, 12, ..., 28, inserted in a scrambled order.
    const std::uint64_t order[] = {20, 14, 28, 10, 24, 12, 18, 26, 16, 22};
    for (std::uint64_t f : order) CHECK(r.insert(Offset{f}, 2, bytesFor(f)) == Insert::Stored);
    CHECK(r.size() == 10);
    CHECK(r.lowestFirst() == Offset{10});
    CHECK(r.lowestEnd() == 12);
    for (std::uint64_t f = 10; f < 30; f += 2) {
        REQUIRE_FALSE(r.empty());
        CHECK(r.lowestFirst() == Offset{f});
        const auto b = r.popLowest();
        CHECK(b.size() == 40);
        CHECK(firstOf(b) == f);
        CHECK(std::vector<std::byte>(b.begin(), b.end()) == bytesFor(f));
    }
    CHECK(r.empty());
}

TEST_CASE("duplicates: same first, or covered by a lower datagram") {
    ReorderBuffer r(16 * kMaxDatagram, kMaxDatagram);
    CHECK(r.insert(Offset{100}, 5, bytesFor(100)) == Insert::Stored);  // [100, 105)
    CHECK(r.insert(Offset{200}, 1, bytesFor(200)) == Insert::Stored);
    CHECK(r.insert(Offset{100}, 5, bytesFor(100)) == Insert::Duplicate);
    CHECK(r.insert(Offset{100}, 1, bytesFor(100)) == Insert::Duplicate);  // same first, other count
    CHECK(r.insert(Offset{102}, 1, bytesFor(102)) == Insert::Duplicate);  // inside [100, 105)
    CHECK(r.insert(Offset{104}, 3, bytesFor(104)) == Insert::Duplicate);  // starts inside
    CHECK(r.insert(Offset{200}, 1, bytesFor(200)) == Insert::Duplicate);
    CHECK(r.insert(Offset{105}, 1, bytesFor(105)) == Insert::Stored);  // just past the end
    CHECK(r.insert(Offset{99}, 1, bytesFor(99)) == Insert::Stored);    // just below
    CHECK(r.size() == 4);
    std::vector<std::uint64_t> out;
    while (!r.empty()) out.push_back(firstOf(r.popLowest()));
    CHECK(out == std::vector<std::uint64_t>{99, 100, 105, 200});
}

TEST_CASE("Full when every slot is taken; a pop frees one") {
    ReorderBuffer r(4 * kMaxDatagram, kMaxDatagram);
    REQUIRE(r.capacity() == 4);
    for (std::uint64_t f = 1; f <= 4; ++f) CHECK(r.insert(Offset{f * 10}, 1, bytesFor(f * 10)) == Insert::Stored);
    CHECK(r.insert(Offset{50}, 1, bytesFor(50)) == Insert::Full);
    CHECK(r.insert(Offset{5}, 1, bytesFor(5)) == Insert::Full);
    // A duplicate is still recognised as one when full.
    CHECK(r.insert(Offset{20}, 1, bytesFor(20)) == Insert::Duplicate);
    const auto b = r.popLowest();
    CHECK(firstOf(b) == 10);
    CHECK(r.insert(Offset{50}, 1, bytesFor(50)) == Insert::Stored);
    CHECK(r.insert(Offset{60}, 1, bytesFor(60)) == Insert::Full);
    std::vector<std::uint64_t> out;
    while (!r.empty()) out.push_back(firstOf(r.popLowest()));
    CHECK(out == std::vector<std::uint64_t>{20, 30, 40, 50});

    // Never fewer than four slots.
    ReorderBuffer tiny(1, kMaxDatagram);
    CHECK(tiny.capacity() == 4);
}

TEST_CASE("popped bytes stay valid until the next operation and are not overwritten by it") {
    ReorderBuffer r(4 * kMaxDatagram, kMaxDatagram);
    for (std::uint64_t f = 1; f <= 4; ++f) REQUIRE(r.insert(Offset{f}, 1, bytesFor(f)) == Insert::Stored);
    const auto b = r.popLowest();
    // The buffer is full again only after the popped slot is released by the next call.
    CHECK(std::vector<std::byte>(b.begin(), b.end()) == bytesFor(1));
    CHECK(r.insert(Offset{9}, 1, bytesFor(9)) == Insert::Stored);
    CHECK(r.size() == 4);
}

TEST_CASE("TooLarge") {
    ReorderBuffer r(8 * kMaxDatagram, kMaxDatagram);
    CHECK(r.insert(Offset{1}, 1, bytesFor(1, kMaxDatagram + 1)) == Insert::TooLarge);
    CHECK(r.empty());
    CHECK(r.insert(Offset{1}, 1, bytesFor(1, kMaxDatagram)) == Insert::Stored);
    CHECK(r.popLowest().size() == kMaxDatagram);
}

TEST_CASE("discardBelow drops what ends at or below the point") {
    ReorderBuffer r(16 * kMaxDatagram, kMaxDatagram);
    for (std::uint64_t f : {10, 13, 16, 19}) CHECK(r.insert(Offset{f}, 3, bytesFor(f)) == Insert::Stored);
    CHECK(r.discardBelow(Offset{10}) == 0);
    CHECK(r.discardBelow(Offset{12}) == 0);  // [10, 13) still holds 12
    CHECK(r.discardBelow(Offset{13}) == 1);
    CHECK(r.lowestFirst() == Offset{13});
    CHECK(r.discardBelow(Offset{20}) == 2);
    CHECK(r.size() == 1);
    CHECK(r.lowestFirst() == Offset{19});
    CHECK(r.discardBelow(Offset{1000}) == 1);
    CHECK(r.empty());
    CHECK(r.discardBelow(Offset{2000}) == 0);
    // Slots came back: the whole capacity is usable again.
    for (std::uint64_t f = 0; f < r.capacity(); ++f) CHECK(r.insert(Offset{100 + f}, 1, bytesFor(100 + f)) == Insert::Stored);
    CHECK(r.insert(Offset{999}, 1, bytesFor(999)) == Insert::Full);
}

TEST_CASE("clear empties and frees every slot") {
    ReorderBuffer r(4 * kMaxDatagram, kMaxDatagram);
    for (std::uint64_t f = 1; f <= 4; ++f) REQUIRE(r.insert(Offset{f}, 1, bytesFor(f)) == Insert::Stored);
    (void)r.popLowest();
    r.clear();
    CHECK(r.empty());
    CHECK(r.size() == 0);
    for (std::uint64_t f = 1; f <= 4; ++f) CHECK(r.insert(Offset{f}, 1, bytesFor(f)) == Insert::Stored);
    CHECK(r.insert(Offset{5}, 1, bytesFor(5)) == Insert::Full);
    // A previously held offset may be inserted again after clear.
    r.clear();
    CHECK(r.insert(Offset{2}, 1, bytesFor(2)) == Insert::Stored);
    CHECK(firstOf(r.popLowest()) == 2);
}

TEST_CASE("random inserts, pops and discards agree with an ordered-map model, across ring wrap-around") {
    // Datagrams of 1-3 offsets on a moving window: mostly in order, some repairs landing between
    // held ones, duplicates and overlaps; the ring wraps many times over 64 slots.
    ReorderBuffer r(64 * kMaxDatagram, kMaxDatagram);
    std::map<std::uint64_t, std::uint32_t> model;  // first -> count
    std::mt19937_64 rng(7);
    std::uint64_t next = 0, high = 0;
    for (int step = 0; step < 200'000; ++step) {
        const unsigned op = static_cast<unsigned>(rng() % 10);
        if (op < 6) {
            const std::uint64_t f = op < 4 ? high + rng() % 3 : next + rng() % (high - next + 3);
            const auto count = static_cast<std::uint32_t>(1 + rng() % 3);
            // The model's answer.
            Insert want = Insert::Stored;
            auto it = model.lower_bound(f);
            if (it != model.end() && it->first == f) want = Insert::Duplicate;
            else if (it != model.begin() && std::prev(it)->first + std::prev(it)->second > f) want = Insert::Duplicate;
            else if (model.size() == r.capacity()) want = Insert::Full;
            const Insert got = r.insert(Offset{f}, count, bytesFor(f));
            REQUIRE(got == want);
            if (got == Insert::Stored) {
                model[f] = count;
                high = std::max(high, f + count);
            }
        } else if (op < 9) {
            if (model.empty()) continue;
            REQUIRE(r.lowestFirst().get() == model.begin()->first);
            REQUIRE(r.lowestEnd() == model.begin()->first + model.begin()->second);
            const auto b = r.popLowest();
            REQUIRE(firstOf(b) == model.begin()->first);
            next = std::max(next, model.begin()->first + model.begin()->second);
            model.erase(model.begin());
        } else {
            next += rng() % 4;
            high = std::max(high, next);
            std::size_t dropped = 0;
            while (!model.empty() && model.begin()->first + model.begin()->second <= next) {
                model.erase(model.begin());
                ++dropped;
            }
            REQUIRE(r.discardBelow(Offset{next}) == dropped);
        }
        REQUIRE(r.size() == model.size());
    }
}

TEST_CASE("a large buffer commits memory only as it is used (no zero-fill at start-up)") {
    // Resident pages of this process, from /proc/self/statm.
    auto residentBytes = [] {
        long pages = 0, resident = 0;
        FILE* f = std::fopen("/proc/self/statm", "r");
        REQUIRE(f != nullptr);
        REQUIRE(std::fscanf(f, "%ld %ld", &pages, &resident) == 2);
        std::fclose(f);
        return static_cast<std::uint64_t>(resident) * static_cast<std::uint64_t>(::sysconf(_SC_PAGESIZE));
    };
    const std::uint64_t before = residentBytes();
    ReorderBuffer rb(512u << 20, 2048);  // 256k slots
    const std::uint64_t after = residentBytes();
    CHECK(rb.capacity() == 262144);
    // A zero-filled arena makes all 512 MiB resident here; the slot tables are ~6 MiB.
    CHECK(after - before < (64u << 20));
    // It still works: a datagram stored in a slot far from the first is read back intact.
    std::vector<std::byte> d(1000, std::byte{0x5a});
    REQUIRE(rb.insert(Offset{10}, 1, d) == Insert::Stored);
    const auto got = rb.popLowest();
    CHECK(got.size() == d.size());
    CHECK(std::memcmp(got.data(), d.data(), d.size()) == 0);
}

}  // TEST_SUITE
