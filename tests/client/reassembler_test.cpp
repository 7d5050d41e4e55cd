#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <new>
#include <random>
#include <set>
#include <vector>

#include "client/reassembler.h"
#include "fabric/wire.h"
#include "tests/fabric/wire_samples.h"

using namespace seqcast;
using namespace seqcast::wire;
using namespace seqcast::client;
using Outcome = Reassembler::Outcome;
using seqcast::test::Bytes;

// Every operator new in this test binary is counted, so a test can show that a stretch of work
// allocated nothing (the array and sized forms of new and delete forward to these).
namespace {
std::atomic<std::uint64_t> gAllocations{0};
std::uint64_t allocations() { return gAllocations.load(std::memory_order_relaxed); }
}  // namespace

void* operator new(std::size_t n) {
    gAllocations.fetch_add(1, std::memory_order_relaxed);
    if (void* p = std::malloc(n == 0 ? 1 : n)) return p;
    throw std::bad_alloc();
}
void* operator new[](std::size_t n) { return ::operator new(n); }
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }

namespace {

// A message split into MTU-sized DATA datagrams, one fragment each, at consecutive offsets.
struct Split {
    Bytes message;
    std::vector<Bytes> datagrams;
};

Split splitMessage(std::size_t size, PublisherId pub, PubSeq seq, Offset first, std::size_t mtu = kDefaultMtu) {
    Split s;
    s.message = test::patternBytes(size, static_cast<std::uint32_t>(seq.get()));
    std::uint32_t at = 0;
    Offset off = first;
    do {
        Bytes buf(mtu);
        DatagramWriter w(buf);
        w.begin(FrameType::Data, test::kStream, test::kEpoch, off);
        const auto n = w.appendPiece({pub, seq, 1234}, s.message, at);
        REQUIRE(n.has_value());
        at += static_cast<std::uint32_t>(*n);
        buf.resize(w.finish(0));
        s.datagrams.push_back(std::move(buf));
        off = off.next();
    } while (at < size);
    return s;
}

// Decodes a datagram holding exactly one entry and returns it (views into `d`).
MessageView onlyEntry(const Bytes& d) {
    DatagramView v;
    REQUIRE(decode(d, v) == DecodeError::Ok);
    REQUIRE(v.count == 1);
    MessageIterator it(v);
    MessageView m;
    REQUIRE(it.next(m));
    return m;
}

MessageView frag(PublisherId p, PubSeq s, std::uint32_t off, std::span<const std::byte> payload, bool last) {
    MessageView m;
    m.publisher = p;
    m.pubSeq = s;
    m.fragOffset = off;
    m.payload = payload;
    m.flags = static_cast<std::uint16_t>((off == 0 ? kFragFirst : 0) | (last ? kFragLast : 0));
    return m;
}

bool equal(std::span<const std::byte> a, std::span<const std::byte> b) {
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin());
}

// Feeds fragments in the given order; returns how many times each outcome occurred and the message.
struct Run {
    std::size_t complete = 0, pending = 0, duplicate = 0, other = 0;
    Bytes result;
    std::size_t completeAt = 0;
};
Run feed(Reassembler& r, const std::vector<MessageView>& order) {
    Run run;
    for (std::size_t i = 0; i < order.size(); ++i) {
        std::span<const std::byte> out;
        switch (r.offer(order[i], out)) {
            case Outcome::Complete:
                ++run.complete;
                run.result.assign(out.begin(), out.end());
                run.completeAt = i;
                break;
            case Outcome::Pending: ++run.pending; break;
            case Outcome::Duplicate: ++run.duplicate; break;
            default: ++run.other; break;
        }
    }
    return run;
}

}  // namespace

TEST_CASE("1 MiB message split over MTU-1408 DATA datagrams") {
    const auto s = splitMessage(kDefaultMaxMessage, PublisherId{3}, PubSeq{42}, Offset{1000});
    const std::size_t perFrag = kDefaultMtu - kHeaderSize - kMessageHeaderSize;
    CHECK(s.datagrams.size() == (kDefaultMaxMessage + perFrag - 1) / perFrag);

    // Each datagram is one entry; entries take consecutive offsets; fragments tile the message.
    std::vector<MessageView> frags;
    std::uint32_t expectOff = 0;
    for (std::size_t i = 0; i < s.datagrams.size(); ++i) {
        const auto& d = s.datagrams[i];
        CHECK(d.size() <= kDefaultMtu);
        DatagramView v;
        REQUIRE(decode(d, v) == DecodeError::Ok);
        CHECK(v.firstOffset == Offset{1000 + i});
        const auto m = onlyEntry(d);
        CHECK(m.publisher == PublisherId{3});
        CHECK(m.pubSeq == PubSeq{42});
        CHECK(m.fragOffset == expectOff);
        CHECK(m.first() == (i == 0));
        CHECK(m.last() == (i + 1 == s.datagrams.size()));
        expectOff += static_cast<std::uint32_t>(m.payload.size());
        frags.push_back(m);
    }
    CHECK(expectOff == kDefaultMaxMessage);
    const std::size_t n = frags.size();

    SUBCASE("in order") {
        Reassembler r;
        const auto run = feed(r, frags);
        CHECK(run.complete == 1);
        CHECK(run.pending == n - 1);
        CHECK(run.completeAt == n - 1);
        CHECK(run.result == s.message);
        CHECK(r.stats().completed == 1);
        CHECK(r.pending() == 1);  // slot is released on the next call
        std::span<const std::byte> out;
        const Bytes small = test::patternBytes(5, 1);
        CHECK(r.offer(frag(PublisherId{9}, PubSeq{1}, 0, small, true), out) == Outcome::Complete);
        CHECK(r.pending() == 0);
    }
    SUBCASE("reversed") {
        Reassembler r;
        auto order = frags;
        std::reverse(order.begin(), order.end());
        const auto run = feed(r, order);
        CHECK(run.complete == 1);
        CHECK(run.completeAt == n - 1);
        CHECK(run.result == s.message);
        CHECK(run.other == 0);
    }
    SUBCASE("shuffled, several seeds") {
        for (unsigned seed = 1; seed <= 5; ++seed) {
            Reassembler r;
            auto order = frags;
            std::mt19937 rng(seed);
            std::shuffle(order.begin(), order.end(), rng);
            const auto run = feed(r, order);
            CHECK(run.complete == 1);
            CHECK(run.completeAt == n - 1);
            CHECK(run.result == s.message);
            CHECK(r.stats().duplicates == 0);
            CHECK(r.stats().inconsistent == 0);
        }
    }
    SUBCASE("shuffled with duplicates") {
        Reassembler r;
        std::mt19937 rng(99);
        auto order = frags;
        std::shuffle(order.begin(), order.end(), rng);
        const auto lastOne = order.back();
        order.pop_back();
        const std::size_t distinct = order.size();
        for (int k = 0; k < 50; ++k) order.push_back(order[rng() % distinct]);
        std::shuffle(order.begin(), order.end(), rng);
        order.push_back(lastOne);
        const auto run = feed(r, order);
        CHECK(run.complete == 1);
        CHECK(run.completeAt == order.size() - 1);
        CHECK(run.duplicate == 50);
        CHECK(r.stats().duplicates == 50);
        CHECK(run.result == s.message);
    }
    SUBCASE("one fragment missing: never completes, evicted later and counted") {
        Reassembler r(kDefaultMaxMessage, 4);
        for (std::size_t skip : {std::size_t{0}, n / 2, n - 1}) {
            r.clear();
            const auto evictedBefore = r.stats().evicted;
            auto order = frags;
            order.erase(order.begin() + static_cast<std::ptrdiff_t>(skip));
            const auto run = feed(r, order);
            CHECK(run.complete == 0);
            CHECK(run.pending == n - 1);
            CHECK(r.pending() == 1);
            CHECK(r.bytesHeld() >= kDefaultMaxMessage - 2 * kDefaultMtu);
            // Four newer incomplete messages push it out (maxPending 4).
            const Bytes piece = test::patternBytes(100, 3);
            for (std::uint64_t k = 0; k < 4; ++k) {
                std::span<const std::byte> out;
                CHECK(r.offer(frag(PublisherId{5}, PubSeq{100 + k}, 0, piece, false), out) == Outcome::Pending);
            }
            CHECK(r.stats().evicted == evictedBefore + 1);
            CHECK(r.pending() == 4);
            // The missing fragment arriving now starts over instead of completing.
            std::span<const std::byte> out;
            CHECK(r.offer(frags[skip], out) != Outcome::Complete);
        }
        CHECK(r.stats().completed == 0);
    }
    SUBCASE("drop forgets a partial message") {
        Reassembler r;
        std::vector<MessageView> part(frags.begin(), frags.begin() + 10);
        feed(r, part);
        CHECK(r.pending() == 1);
        r.drop(PublisherId{3}, PubSeq{42});
        CHECK(r.pending() == 0);
        r.drop(PublisherId{3}, PubSeq{42});  // no-op
        std::vector<MessageView> rest(frags.begin() + 10, frags.end());
        CHECK(feed(r, rest).complete == 0);
    }
}

TEST_CASE("interleaved messages from several publishers") {
    Reassembler r(kDefaultMaxMessage, 8);
    std::vector<Split> splits;
    for (std::uint32_t p = 0; p < 4; ++p)
        splits.push_back(splitMessage(10000 + p * 3333, PublisherId{p}, PubSeq{7}, Offset{0}, 512));
    std::vector<MessageView> order;
    for (const auto& s : splits)
        for (const auto& d : s.datagrams) order.push_back(onlyEntry(d));
    std::mt19937 rng(5);
    std::shuffle(order.begin(), order.end(), rng);
    std::vector<Bytes> done(4);
    for (const auto& f : order) {
        std::span<const std::byte> out;
        if (r.offer(f, out) == Outcome::Complete) done[f.publisher.get()].assign(out.begin(), out.end());
    }
    for (std::uint32_t p = 0; p < 4; ++p) CHECK(done[p] == splits[p].message);
    CHECK(r.stats().completed == 4);
    CHECK(r.stats().evicted == 0);
}

TEST_CASE("whole messages pass through without copying") {
    Reassembler r;
    const Bytes m = test::patternBytes(300, 1);
    std::span<const std::byte> out;
    CHECK(r.offer(frag(PublisherId{1}, PubSeq{1}, 0, m, true), out) == Outcome::Complete);
    CHECK(out.data() == m.data());
    CHECK(out.size() == m.size());
    CHECK(r.offer(frag(PublisherId{1}, PubSeq{2}, 0, {}, true), out) == Outcome::Complete);
    CHECK(out.empty());
    CHECK(r.pending() == 0);
}

TEST_CASE("too-large messages are rejected") {
    const Bytes m = test::patternBytes(2000, 1);
    const std::span<const std::byte> all(m);
    std::span<const std::byte> out;
    Reassembler r(1000, 4);
    CHECK(r.offer(frag(PublisherId{1}, PubSeq{1}, 0, all.first(1001), true), out) == Outcome::TooLarge);
    CHECK(r.offer(frag(PublisherId{1}, PubSeq{2}, 0, all.first(1000), true), out) == Outcome::Complete);
    // A fragmented one: the fragment that crosses the limit drops what was gathered.
    CHECK(r.offer(frag(PublisherId{1}, PubSeq{3}, 0, all.first(600), false), out) == Outcome::Pending);
    CHECK(r.pending() == 1);
    CHECK(r.offer(frag(PublisherId{1}, PubSeq{3}, 600, all.subspan(600, 500), true), out) == Outcome::TooLarge);
    CHECK(r.pending() == 0);
    CHECK(r.offer(frag(PublisherId{1}, PubSeq{4}, 0xFFFFFF00u, all.first(0xFF), false), out) == Outcome::TooLarge);
    CHECK(r.stats().tooLarge == 3);

    // Default limit: 1 MiB is fine, 1 MiB + 1 is not.
    Reassembler d;
    const auto ok = splitMessage(kDefaultMaxMessage, PublisherId{1}, PubSeq{1}, Offset{0});
    const auto big = splitMessage(kDefaultMaxMessage + 1, PublisherId{1}, PubSeq{2}, Offset{0});
    std::vector<MessageView> a, b;
    for (const auto& x : ok.datagrams) a.push_back(onlyEntry(x));
    for (const auto& x : big.datagrams) b.push_back(onlyEntry(x));
    CHECK(feed(d, a).complete == 1);
    const auto run = feed(d, b);
    CHECK(run.complete == 0);
    CHECK(run.other == 1);  // only the final fragment crosses the limit
    CHECK(d.stats().tooLarge == 1);
}

TEST_CASE("inconsistent fragments") {
    const Bytes m = test::patternBytes(1000, 1);
    const std::span<const std::byte> all(m);
    std::span<const std::byte> out;
    const PublisherId p{1};

    SUBCASE("data beyond the announced end") {
        Reassembler r;
        CHECK(r.offer(frag(p, PubSeq{1}, 100, all.subspan(100, 100), true), out) == Outcome::Pending);  // ends at 200
        CHECK(r.offer(frag(p, PubSeq{1}, 150, all.subspan(150, 100), false), out) == Outcome::Inconsistent);
        CHECK(r.pending() == 0);
    }
    SUBCASE("two different last fragments") {
        Reassembler r;
        CHECK(r.offer(frag(p, PubSeq{1}, 100, all.subspan(100, 100), true), out) == Outcome::Pending);
        CHECK(r.offer(frag(p, PubSeq{1}, 100, all.subspan(100, 50), true), out) == Outcome::Inconsistent);
    }
    SUBCASE("last fragment ends before data already held") {
        Reassembler r;
        CHECK(r.offer(frag(p, PubSeq{1}, 300, all.subspan(300, 100), false), out) == Outcome::Pending);
        CHECK(r.offer(frag(p, PubSeq{1}, 100, all.subspan(100, 100), true), out) == Outcome::Inconsistent);
    }
    SUBCASE("the message can be sent again after an inconsistency") {
        Reassembler r;
        CHECK(r.offer(frag(p, PubSeq{1}, 100, all.subspan(100, 100), true), out) == Outcome::Pending);
        CHECK(r.offer(frag(p, PubSeq{1}, 100, all.subspan(100, 150), true), out) == Outcome::Inconsistent);
        CHECK(r.offer(frag(p, PubSeq{1}, 0, all.first(100), false), out) == Outcome::Pending);
        CHECK(r.offer(frag(p, PubSeq{1}, 100, all.subspan(100, 100), true), out) == Outcome::Complete);
        CHECK(equal(out, all.first(200)));
    }
    Reassembler r;
    CHECK(r.stats().inconsistent == 0);
}

TEST_CASE("overlapping fragments and an empty last fragment") {
    const Bytes m = test::patternBytes(1000, 2);
    const std::span<const std::byte> all(m);
    std::span<const std::byte> out;
    const PublisherId p{2};
    Reassembler r;
    CHECK(r.offer(frag(p, PubSeq{1}, 0, all.first(400), false), out) == Outcome::Pending);
    CHECK(r.offer(frag(p, PubSeq{1}, 300, all.subspan(300, 400), false), out) == Outcome::Pending);
    CHECK(r.offer(frag(p, PubSeq{1}, 100, all.subspan(100, 100), false), out) == Outcome::Duplicate);
    CHECK(r.offer(frag(p, PubSeq{1}, 1000, {}, true), out) == Outcome::Pending);  // end marker only
    CHECK(r.offer(frag(p, PubSeq{1}, 650, all.subspan(650, 350), false), out) == Outcome::Complete);
    CHECK(equal(out, all));
}

TEST_CASE("eviction picks the least recently touched message") {
    Reassembler r(kDefaultMaxMessage, 2);
    const Bytes m = test::patternBytes(100, 3);
    const std::span<const std::byte> all(m);
    std::span<const std::byte> out;
    const PublisherId p{1};
    CHECK(r.offer(frag(p, PubSeq{1}, 0, all.first(10), false), out) == Outcome::Pending);
    CHECK(r.offer(frag(p, PubSeq{2}, 0, all.first(10), false), out) == Outcome::Pending);
    CHECK(r.offer(frag(p, PubSeq{1}, 10, all.subspan(10, 10), false), out) == Outcome::Pending);  // touch 1
    CHECK(r.offer(frag(p, PubSeq{3}, 0, all.first(10), false), out) == Outcome::Pending);        // evicts 2
    CHECK(r.stats().evicted == 1);
    CHECK(r.offer(frag(p, PubSeq{1}, 20, all.subspan(20, 80), true), out) == Outcome::Complete);
    CHECK(equal(out, all));
}

TEST_CASE("memory stays bounded under a flood of fragments that never complete") {
    // 100k messages, each announced by one fragment near the largest offset allowed (each would
    // need ~1 MiB), then one message cut into slivers: bounded slots, bounded bytes, bounded ranges,
    // and no allocation once the pool is full (each slot took one buffer on its first message).
    constexpr std::size_t kPending = 64;
    constexpr std::uint64_t kFlood = 100'000;
    Reassembler r(kDefaultMaxMessage, kPending);
    const Bytes tail = test::patternBytes(64, 9);
    std::span<const std::byte> out;
    std::size_t peak = 0, peakPending = 0, notPending = 0;
    std::uint64_t allocationsBefore = 0;
    // Plain counting in the loop and checks after it: 100k doctest assertions cost seconds under ASan.
    for (std::uint64_t seq = 0; seq < kFlood; ++seq) {
        if (seq == kPending) allocationsBefore = allocations();
        if (r.offer(frag(PublisherId{static_cast<std::uint32_t>(1 + seq % 7)}, PubSeq{seq}, kDefaultMaxMessage - 64, tail, false), out) !=
            Outcome::Pending)
            ++notPending;
        peak = std::max(peak, r.bytesHeld());
        peakPending = std::max(peakPending, r.pending());
    }
    CHECK(allocations() == allocationsBefore);
    CHECK(notPending == 0);
    CHECK(peakPending == kPending);  // the flood past the first kPending allocated nothing
    CHECK(r.stats().buffers == kPending);
    CHECK(r.stats().evicted == kFlood - kPending);
    CHECK(peak <= kPending * kDefaultMaxMessage);
    // Slivers: one byte at every other offset. The message is dropped once it has more than
    // kMaxRanges holes, and again each time slivers rebuild it.
    const Bytes one = test::patternBytes(1, 1);
    std::size_t inconsistent = 0;
    const auto beforeSlivers = allocations();
    for (std::uint32_t off = 2; off < 2 * 10 * Reassembler::kMaxRanges; off += 2) {
        const Outcome o = r.offer(frag(PublisherId{99}, PubSeq{1}, off, one, false), out);
        if (o == Outcome::Inconsistent) ++inconsistent;
        else REQUIRE(o == Outcome::Pending);
    }
    CHECK(inconsistent >= 9);
    CHECK(allocations() == beforeSlivers);  // kMaxRanges ranges fit the capacity reserved up front
    CHECK(r.pending() <= kPending);
    CHECK(r.bytesHeld() <= kPending * kDefaultMaxMessage);
    CHECK(r.stats().buffers == kPending);
}

TEST_CASE("completed messages reuse the pool's buffers") {
    // 200 messages of 512 KiB, eight 64 KiB fragments each, four in flight at a time, shuffled:
    // every completed message lies in one of the four pool buffers, and after the first four
    // messages nothing is allocated.
    constexpr std::size_t kPending = 4;
    constexpr std::uint32_t kSize = 512 << 10, kFrag = 64 << 10;
    Reassembler r(kDefaultMaxMessage, kPending);
    std::vector<Bytes> messages;
    for (std::uint32_t p = 0; p < kPending; ++p) messages.push_back(test::patternBytes(kSize, p));
    std::set<const std::byte*> seen;
    std::mt19937 rng(17);
    std::uint64_t allocatedByOffer = 0;  // after the first round
    std::size_t completed = 0;
    for (std::uint64_t round = 0; round < 50; ++round) {
        std::vector<MessageView> order;
        for (std::uint32_t p = 0; p < kPending; ++p)
            for (std::uint32_t at = 0; at < kSize; at += kFrag)
                order.push_back(frag(PublisherId{p}, PubSeq{round}, at, std::span<const std::byte>(messages[p]).subspan(at, kFrag),
                                     at + kFrag == kSize));
        std::shuffle(order.begin(), order.end(), rng);
        for (const auto& f : order) {
            std::span<const std::byte> out;
            const auto before = allocations();
            const Outcome o = r.offer(f, out);
            if (round > 0) allocatedByOffer += allocations() - before;
            if (o != Outcome::Complete) continue;
            ++completed;
            REQUIRE(equal(out, messages[f.publisher.get()]));
            seen.insert(out.data());
        }
    }
    CHECK(completed == 50 * kPending);
    CHECK(r.stats().evicted == 0);
    CHECK(r.stats().buffers == kPending);
    CHECK(seen.size() <= kPending);
    CHECK(allocatedByOffer == 0);
}
