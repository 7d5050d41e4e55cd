// GapTracker with a fake clock: gap detection, randomized NAK delay and suppression, backoff,
// deadlines, sender-oldest losses, at-most-once mode, RTT estimation, NAK range splitting.
#include <doctest/doctest.h>

#include <algorithm>
#include <cstdint>
#include <random>
#include <set>
#include <utility>
#include <vector>

#include "client/gap_tracker.h"

using namespace seqcast;
using client::GapTracker;
using client::NakPolicy;

namespace {

constexpr std::uint64_t kNever = ~std::uint64_t{0};
constexpr std::uint64_t kT0 = 1'000'000'000;  // fake clock start

struct Log {
    std::vector<std::pair<std::uint64_t, std::uint32_t>> naks;
    std::vector<std::pair<std::uint64_t, std::uint64_t>> lost;
    GapTracker::Actions actions() {
        GapTracker::Actions a;
        a.nak = [this](Offset f, std::uint32_t n, bool) { naks.emplace_back(f.get(), n); };
        a.lost = [this](Offset f, std::uint64_t n) { lost.emplace_back(f.get(), n); };
        return a;
    }
};

using Ranges = std::vector<std::pair<std::uint64_t, std::uint32_t>>;
using LostRanges = std::vector<std::pair<std::uint64_t, std::uint64_t>>;

// Offsets [0, 5) and [10, 15) arrive at kT0: a gap [5, 10).
GapTracker withHole(const NakPolicy& p = {}) {
    GapTracker g(p);
    g.reset(Offset{0});
    g.onData(Offset{0}, 5, kT0, false);
    g.onData(Offset{10}, 5, kT0, false);
    return g;
}

}  // namespace

TEST_SUITE("quick") {

TEST_CASE("data in order leaves no gaps") {
    GapTracker g(NakPolicy{});
    CHECK_FALSE(g.started());
    g.onData(Offset{100}, 3, kT0, false);  // the first data starts the tracker
    CHECK(g.started());
    CHECK(g.head() == Offset{103});
    for (std::uint64_t o = 103; o < 1000; o += 7) {
        g.onData(Offset{o}, 7, kT0 + o, false);
        g.advance(Offset{o + 7});
    }
    CHECK_FALSE(g.hasGaps());
    CHECK(g.gapCount() == 0);
    CHECK(g.firstMissing() == g.head());
    CHECK(g.nextDeadline() == kNever);
    Log log;
    CHECK(g.poll(kT0 + 10'000'000'000ull, log.actions()) == 0);
    CHECK(log.naks.empty());
    CHECK(log.lost.empty());
    CHECK(g.stats().gapsDetected == 0);
    // Old data (below next) changes nothing.
    g.onData(Offset{100}, 10, kT0, false);
    CHECK_FALSE(g.hasGaps());
}

TEST_CASE("a hole is NAKed after a randomized delay within suppressionFactor * srtt") {
    for (double factor : {1.0, 3.0}) {
        std::set<std::uint64_t> delays;
        for (std::uint64_t seed = 1; seed <= 40; ++seed) {
            NakPolicy p;
            p.seed = seed;
            p.suppressionFactor = factor;
            GapTracker g = withHole(p);
            REQUIRE(g.hasGaps());
            CHECK(g.gapCount() == 1);
            CHECK(g.firstMissing() == Offset{5});
            CHECK(g.stats().gapsDetected == 1);
            const std::uint64_t due = g.nextDeadline();
            INFO("seed " << seed << " factor " << factor);
            CHECK(due >= kT0);
            CHECK(due <= kT0 + static_cast<std::uint64_t>(factor * static_cast<double>(p.initialRttNs)));
            delays.insert(due - kT0);
            Log log;
            if (due > kT0) {
                CHECK(g.poll(due - 1, log.actions()) == 0);
                CHECK(log.naks.empty());
            }
            CHECK(g.poll(due, log.actions()) == 1);
            CHECK(log.naks == Ranges{{5, 5}});
            CHECK(log.lost.empty());
            CHECK(g.stats().naksSent == 1);
            CHECK(g.stats().nakOffsets == 5);
        }
        CHECK(delays.size() > 30);  // randomized, not a fixed delay
    }
}

TEST_CASE("a repair before the first NAK suppresses it") {
    GapTracker g = withHole();
    const std::uint64_t due = g.nextDeadline();
    // Another receiver's NAK brought the repair (a retransmission) before ours was due.
    g.onData(Offset{5}, 5, kT0 + (due - kT0) / 2, true);
    CHECK_FALSE(g.hasGaps());
    CHECK(g.stats().suppressed == 1);
    CHECK(g.stats().filledBeforeNak == 0);
    CHECK(g.stats().repairedOffsets == 5);
    Log log;
    CHECK(g.poll(kT0 + 1'000'000'000, log.actions()) == 0);
    CHECK(log.naks.empty());
    CHECK(g.stats().naksSent == 0);
    CHECK(g.srttNs() == NakPolicy{}.initialRttNs);  // no NAK, no RTT sample

    // Repaired in pieces: suppressed once the last piece closes it.
    GapTracker h = withHole();
    h.onData(Offset{5}, 2, kT0 + 1, true);
    CHECK(h.stats().suppressed == 0);
    h.onData(Offset{7}, 3, kT0 + 2, true);
    CHECK(h.stats().suppressed == 1);
    CHECK(h.stats().filledBeforeNak == 0);
    CHECK_FALSE(h.hasGaps());
}

TEST_CASE("a gap filled by late originals before its NAK is counted apart from suppressed NAKs") {
    // Reordering, not repair: no NAK was suppressed, since no other receiver's repair came.
    GapTracker g = withHole();
    g.onData(Offset{5}, 2, kT0 + 1, false);
    CHECK(g.stats().filledBeforeNak == 0);  // partly filled
    g.onData(Offset{7}, 3, kT0 + 2, false);
    CHECK_FALSE(g.hasGaps());
    CHECK(g.stats().filledBeforeNak == 1);
    CHECK(g.stats().suppressed == 0);
    CHECK(g.stats().repairedOffsets == 0);
    Log log;
    CHECK(g.poll(kT0 + 1'000'000'000, log.actions()) == 0);
    CHECK(g.stats().naksSent == 0);

    // Once NAKed, neither: the NAK was sent.
    GapTracker h = withHole();
    h.poll(h.nextDeadline(), log.actions());
    CHECK(h.stats().naksSent == 1);
    h.onData(Offset{5}, 5, h.nextDeadline() - 1, false);
    CHECK_FALSE(h.hasGaps());
    CHECK(h.stats().filledBeforeNak == 0);
    CHECK(h.stats().suppressed == 0);
}

TEST_CASE("retries back off until the deadline, then the exact range is lost") {
    NakPolicy p;
    p.deadlineNs = 100'000'000;  // 100 ms
    p.maxRetryNs = 20'000'000;
    GapTracker g = withHole(p);
    Log log;
    std::vector<std::uint64_t> nakTimes;
    std::uint64_t lostAt = 0;
    for (int i = 0; i < 1000 && log.lost.empty(); ++i) {
        const std::uint64_t t = g.nextDeadline();
        REQUIRE(t != kNever);
        const std::size_t before = log.naks.size();
        CHECK(g.poll(t, log.actions()) >= 1);
        if (log.naks.size() > before) nakTimes.push_back(t);
        if (!log.lost.empty()) lostAt = t;
    }
    REQUIRE(nakTimes.size() >= 4);
    for (const auto& n : log.naks) CHECK(n == std::pair<std::uint64_t, std::uint32_t>{5, 5});
    // First retry after retryFactor * srtt, then doubling, capped at maxRetryNs.
    CHECK(nakTimes[1] - nakTimes[0] == 2 * p.initialRttNs);
    for (std::size_t i = 2; i < nakTimes.size(); ++i) {
        const std::uint64_t prev = nakTimes[i - 1] - nakTimes[i - 2];
        const std::uint64_t cur = nakTimes[i] - nakTimes[i - 1];
        if (prev < p.maxRetryNs) CHECK(cur == std::min(2 * prev, p.maxRetryNs));
        else CHECK(cur == p.maxRetryNs);
    }
    CHECK(nakTimes.back() - nakTimes[nakTimes.size() - 2] == p.maxRetryNs);
    // Lost exactly at the deadline, reported once with the exact range.
    CHECK(lostAt == kT0 + p.deadlineNs);
    CHECK(log.lost == LostRanges{{5, 5}});
    CHECK(g.stats().lossNotices == 1);
    CHECK(g.stats().lostOffsets == 5);
    CHECK(g.stats().naksSent == nakTimes.size());
    CHECK_FALSE(g.hasGaps());
    CHECK(g.nextDeadline() == kNever);
}

TEST_CASE("the sender no longer holding a gap makes it lost at once") {
    GapTracker g = withHole();
    g.onSenderOldest(Offset{3}, kT0);  // below the gap: nothing changes
    CHECK(g.nextDeadline() > kT0);
    g.onSenderOldest(Offset{12}, kT0 + 1);
    CHECK(g.nextDeadline() == 0);
    Log log;
    CHECK(g.poll(kT0 + 1, log.actions()) == 1);
    CHECK(log.lost == LostRanges{{5, 5}});
    CHECK(log.naks.empty());
    CHECK_FALSE(g.hasGaps());

    // Oldest inside the gap: the part below is lost, the rest is still repaired.
    GapTracker h = withHole();
    h.onSenderOldest(Offset{8}, kT0);
    CHECK(h.gapCount() == 2);
    Log l2;
    h.poll(kT0, l2.actions());
    CHECK(l2.lost == LostRanges{{5, 3}});
    CHECK(h.gapCount() == 1);
    CHECK(h.firstMissing() == Offset{8});
    h.poll(h.nextDeadline(), l2.actions());
    CHECK(l2.naks == Ranges{{8, 2}});
}

TEST_CASE("data in the middle of a gap splits it") {
    GapTracker g(NakPolicy{});
    g.reset(Offset{0});
    g.onData(Offset{0}, 5, kT0, false);
    g.onData(Offset{20}, 1, kT0, false);  // gap [5, 20)
    g.onData(Offset{10}, 3, kT0 + 10, false);
    CHECK(g.gapCount() == 2);
    CHECK(g.firstMissing() == Offset{5});
    CHECK(g.stats().suppressed == 0);  // partly filled is not suppressed
    CHECK(g.stats().filledBeforeNak == 0);
    g.onData(Offset{5}, 1, kT0 + 20, false);  // trims the left gap: [6, 10)
    g.onData(Offset{19}, 1, kT0 + 20, false);  // trims the right gap: [13, 19)
    Log log;
    g.poll(g.nextDeadline(), log.actions());
    while (g.nextDeadline() <= kT0 + NakPolicy{}.initialRttNs) g.poll(g.nextDeadline(), log.actions());
    std::sort(log.naks.begin(), log.naks.end());
    CHECK(log.naks == Ranges{{6, 4}, {13, 6}});
    CHECK(g.stats().gapsDetected == 1);
}

TEST_CASE("at-most-once: loss after reorderGraceNs, never a NAK") {
    NakPolicy p;
    p.repair = false;
    p.reorderGraceNs = 50'000;
    GapTracker g = withHole(p);
    CHECK(g.nextDeadline() == kT0 + p.reorderGraceNs);
    Log log;
    CHECK(g.poll(kT0 + p.reorderGraceNs - 1, log.actions()) == 0);
    CHECK(g.poll(kT0 + p.reorderGraceNs, log.actions()) == 1);
    CHECK(log.lost == LostRanges{{5, 5}});
    CHECK(log.naks.empty());
    CHECK(g.stats().naksSent == 0);

    // Reordered data within the grace period: nothing lost.
    GapTracker h = withHole(p);
    h.onData(Offset{5}, 5, kT0 + p.reorderGraceNs / 2, false);
    Log l2;
    CHECK(h.poll(kT0 + 10 * p.reorderGraceNs, l2.actions()) == 0);
    CHECK(l2.lost.empty());
    CHECK(l2.naks.empty());
}

TEST_CASE("the RTT estimate moves toward measured repair times") {
    NakPolicy p;
    p.initialRttNs = 200'000;
    GapTracker g(p);
    g.reset(Offset{0});
    std::uint64_t now = kT0;
    std::uint64_t next = 0;
    const std::uint64_t rtt = 1'000'000;
    std::uint64_t prev = g.srttNs();
    for (int i = 0; i < 40; ++i) {
        g.onData(Offset{next}, 1, now, false);
        g.onData(Offset{next + 2}, 1, now, false);  // hole at next + 1
        Log log;
        const std::uint64_t due = g.nextDeadline();
        REQUIRE(g.poll(due, log.actions()) == 1);
        REQUIRE(log.naks.size() == 1);
        now = due + rtt;
        g.onData(Offset{next + 1}, 1, now, true);
        CHECK_FALSE(g.hasGaps());
        CHECK(g.srttNs() > prev);
        CHECK(g.srttNs() <= rtt);
        prev = g.srttNs();
        next += 3;
        g.advance(Offset{next});
    }
    CHECK(g.srttNs() > rtt * 98 / 100);
    CHECK(g.stats().repairedOffsets == 40);
    CHECK(g.stats().suppressed == 0);

    // A sample shorter than minRttNs counts as minRttNs.
    NakPolicy q;
    q.initialRttNs = q.minRttNs;
    GapTracker h = withHole(q);
    Log log;
    const std::uint64_t due = h.nextDeadline();
    h.poll(due, log.actions());
    h.onData(Offset{5}, 5, due + 1, true);
    CHECK(h.srttNs() == q.minRttNs);
    // Original (non-repair) data after a NAK does not count as an RTT sample.
    GapTracker k = withHole();
    const std::uint64_t d2 = k.nextDeadline();
    k.poll(d2, log.actions());
    k.onData(Offset{5}, 5, d2 + 5'000'000, false);
    CHECK(k.srttNs() == NakPolicy{}.initialRttNs);
}

TEST_CASE("a head beyond the data received is a gap (tail loss)") {
    GapTracker g(NakPolicy{});
    g.onHead(Offset{50}, kT0);  // starts at the head: nothing missing yet
    CHECK(g.started());
    CHECK_FALSE(g.hasGaps());
    g.onData(Offset{50}, 5, kT0, false);
    g.onHead(Offset{55}, kT0);
    CHECK_FALSE(g.hasGaps());
    g.onHead(Offset{60}, kT0 + 1);
    CHECK(g.head() == Offset{60});
    CHECK(g.gapCount() == 1);
    CHECK(g.firstMissing() == Offset{55});
    g.onHead(Offset{58}, kT0 + 2);  // an older heartbeat changes nothing
    CHECK(g.head() == Offset{60});
    CHECK(g.gapCount() == 1);
    Log log;
    g.poll(g.nextDeadline(), log.actions());
    CHECK(log.naks == Ranges{{55, 5}});
    // Later data beyond the head adds the gap up to it.
    g.onData(Offset{70}, 1, kT0 + 3, false);
    CHECK(g.gapCount() == 2);
    CHECK(g.head() == Offset{71});
}

TEST_CASE("maxNakRange splits a large gap into several NAK ranges") {
    NakPolicy p;
    p.maxNakRange = 100;
    GapTracker g(p);
    g.reset(Offset{0});
    g.onData(Offset{0}, 1, kT0, false);
    g.onData(Offset{251}, 1, kT0, false);  // gap [1, 251)
    Log log;
    CHECK(g.poll(g.nextDeadline(), log.actions()) == 1);
    CHECK(log.naks == Ranges{{1, 100}, {101, 100}, {201, 50}});
    CHECK(g.stats().naksSent == 3);
    CHECK(g.stats().nakOffsets == 250);
    CHECK(g.gapCount() == 1);  // still one gap
}

TEST_CASE("nextDeadline is when poll next has work") {
    NakPolicy p;
    p.seed = 99;
    GapTracker g(p);
    g.reset(Offset{0});
    std::uint64_t now = kT0;
    // Several gaps found at different times.
    for (std::uint64_t k = 0; k < 5; ++k) {
        g.onData(Offset{k * 10}, 5, now, false);
        now += 30'000;
    }
    g.onData(Offset{50}, 1, now, false);
    CHECK(g.gapCount() == 5);
    Log log;
    std::uint64_t last = 0;
    for (int i = 0; i < 200 && g.hasGaps(); ++i) {
        const std::uint64_t t = g.nextDeadline();
        REQUIRE(t != kNever);
        CHECK(t >= last);
        if (t > 0) CHECK(g.poll(t - 1, log.actions()) == 0);
        CHECK(g.poll(t, log.actions()) >= 1);
        last = t;
        if (log.naks.size() >= 15) {
            // Repair everything; no more deadlines.
            for (std::uint64_t k = 0; k < 5; ++k) g.onData(Offset{k * 10 + 5}, 5, t + 1, true);
        }
    }
    CHECK_FALSE(g.hasGaps());
    CHECK(g.nextDeadline() == kNever);
    CHECK(log.lost.empty());
}

TEST_CASE("a gap repaired in rate-limited parts: the rest is asked for promptly and the deadline runs from the progress") {
    // A 10000-offset gap; the sender answers each NAK with 100 offsets (its budget), 5 ms apart.
    NakPolicy p;
    p.deadlineNs = 100'000'000;  // 100 ms: far less than the 500 ms the whole repair takes
    p.initialRttNs = 1'000'000;
    GapTracker g(p);
    g.reset(Offset{0});
    g.onData(Offset{0}, 1, kT0, false);
    g.onData(Offset{10'001}, 1, kT0, false);
    Log log;
    std::uint64_t now = kT0, next = 1;
    std::uint64_t maxNakGap = 0, lastNak = 0;
    while (g.hasGaps() && now < kT0 + 2'000'000'000ull) {
        now += 5'000'000;
        const std::size_t before = log.naks.size();
        g.poll(now, log.actions());
        if (log.naks.size() > before) {
            if (lastNak != 0) maxNakGap = std::max(maxNakGap, now - lastNak);
            lastNak = now;
        }
        if (!log.naks.empty() && next < 10'001) {  // the sender's answer: the next 100 offsets
            const std::uint64_t n = std::min<std::uint64_t>(100, 10'001 - next);
            g.onData(Offset{next}, n, now + 1'000'000, true);
            next += n;
        }
    }
    CHECK_FALSE(g.hasGaps());
    CHECK(log.lost.empty());
    CHECK(g.stats().repairedOffsets == 10'000);
    // Never the doubling of unanswered retries: the rest is asked for within a few round trips.
    CHECK(maxNakGap <= 4 * p.initialRttNs + 5'000'000);
}

TEST_CASE("random arrivals: the gaps are exactly the offsets missing below head") {
    // Datagrams of 1-8 offsets arrive mostly in order, some skipped (gaps), some late (repairs
    // filling or splitting gaps), some duplicated; the tracker's gaps, as NAKed when all are due,
    // must be exactly the model's missing offsets.
    NakPolicy p;
    p.initialRttNs = 1000;
    p.deadlineNs = ~std::uint64_t{0} / 4;
    GapTracker g(p);
    std::mt19937_64 rng(11);
    std::set<std::uint64_t> missing;
    std::uint64_t head = 0, known = 0, now = 1;  // the sender's next offset; the highest seen
    std::vector<std::pair<std::uint64_t, std::uint64_t>> late;  // skipped ranges, sent later
    for (int step = 0; step < 20'000; ++step) {
        ++now;
        const auto count = 1 + rng() % 8;
        std::uint64_t first;
        bool repair = false;
        if (!late.empty() && rng() % 4 == 0) {
            const std::size_t k = rng() % late.size();
            first = late[k].first;
            late.erase(late.begin() + static_cast<std::ptrdiff_t>(k));
            repair = true;
        } else if (rng() % 10 == 0) {
            late.emplace_back(head, count);  // skipped now, arrives later
            head += count;
            continue;
        } else {
            first = head;
        }
        g.onData(Offset{first}, count, now, repair);
        for (std::uint64_t o = known; o < first; ++o) missing.insert(o);
        for (std::uint64_t o = first; o < first + count; ++o) missing.erase(o);
        known = std::max(known, first + count);
        head = std::max(head, first + count);
        if (step % 97 == 0) {
            // Every gap is due: the NAKed ranges are the missing offsets.
            std::set<std::uint64_t> naked;
            GapTracker::Actions act;
            act.nak = [&](Offset f, std::uint32_t n, bool) {
                for (std::uint64_t o = f.get(); o < f.get() + n; ++o) naked.insert(o);
            };
            now += 1'000'000'000;
            g.poll(now, act);
            REQUIRE(naked == missing);
            REQUIRE(g.firstMissing().get() == (missing.empty() ? known : *missing.begin()));
        }
    }
}

}  // TEST_SUITE

TEST_SUITE("quick") {

TEST_CASE("a backlog of 100000 gaps: each poll acts on what is due, lowest first, and nothing is forgotten") {
    // A receiver far behind (a restarted archiver) holds a gap for every other datagram. The
    // timer queue must act on the gaps that are due and poll() must not walk all of them each
    // time: 100000 polls over 100000 gaps are 10^10 gap visits with a scan per poll.
    NakPolicy p;
    p.initialRttNs = 1'000'000;
    p.deadlineNs = 60'000'000'000ull;
    GapTracker g(p);
    g.reset(Offset{0});
    constexpr std::uint64_t kGaps = 100'000;
    std::uint64_t now = kT0;
    for (std::uint64_t k = 0; k < kGaps; ++k) g.onData(Offset{2 * k + 1}, 1, now, false);  // gaps at even offsets
    REQUIRE(g.gapCount() == kGaps);
    std::vector<std::uint8_t> naked(kGaps, 0);
    std::uint64_t totalNaks = 0;
    GapTracker::Actions act;
    act.nak = [&](Offset f, std::uint32_t n, bool) {
        REQUIRE(n == 1);
        REQUIRE(f.get() % 2 == 0);
        ++naked[f.get() / 2];
        ++totalNaks;
    };
    act.lost = [](Offset, std::uint64_t) { FAIL("nothing is lost before the deadline"); };
    // Polls every 10 us for 2 ms (the first NAK of every gap is due within srtt = 1 ms), repairing
    // the lowest 50 gaps per poll; every gap still open has been NAKed.
    std::uint64_t repaired = 0;
    std::uint64_t polls = 0;
    for (; now <= kT0 + 2'000'000; now += 10'000, ++polls) {
        g.poll(now, act);
        for (int i = 0; i < 50 && repaired < kGaps; ++i, ++repaired) g.onData(Offset{2 * repaired}, 1, now, true);
        const std::uint64_t t = g.nextDeadline();
        if (g.hasGaps()) REQUIRE(t != kNever);
    }
    for (; polls < 100'000; ++polls, now += 10) g.poll(now, act);  // many polls with little due each
    CHECK(g.gapCount() == kGaps - repaired);
    for (std::uint64_t k = repaired; k < kGaps; ++k) REQUIRE(naked[k] >= 1);  // every open gap was asked for
    CHECK(totalNaks >= kGaps - repaired);
    // Repair everything: no timer left.
    for (std::uint64_t k = repaired; k < kGaps; ++k) g.onData(Offset{2 * k}, 1, now, true);
    CHECK_FALSE(g.hasGaps());
    CHECK(g.nextDeadline() == kNever);
}

TEST_CASE("held gaps are neither NAKed nor lost; once the hold ends they are NAKed, their deadline from then") {
    // A gap held back only for lack of room is not lost: the sender still holds it (its heartbeat
    // would say otherwise). Its deadline starts when the hold ends, not when it was found.
    NakPolicy p;
    p.initialRttNs = 100'000;
    p.deadlineNs = 1'000'000'000;
    GapTracker g(p);
    g.reset(Offset{0});
    g.onData(Offset{1}, 1, kT0, false);   // gap [0,1)
    g.onData(Offset{3}, 1, kT0, false);   // gap [2,3)
    g.onData(Offset{5}, 1, kT0, false);   // gap [4,5)
    g.holdNaksFrom(Offset{2});
    Log log;
    g.poll(kT0 + 1'000'000, log.actions());
    REQUIRE(log.naks == Ranges{{0, 1}});  // only the gap below the hold
    // Far past the deadline the NAKed gap is lost, the held ones are not.
    g.poll(kT0 + 5 * p.deadlineNs, log.actions());
    CHECK(log.lost == LostRanges{{0, 1}});
    CHECK(g.gapCount() == 2);
    // The lowest gap gone: the hold ends by itself; the held gaps are NAKed after the first delay.
    CHECK_FALSE(g.holdingNaks());
    const std::uint64_t released = kT0 + 5 * p.deadlineNs;
    CHECK(g.nextDeadline() <= released + p.initialRttNs);
    log.naks.clear();
    g.poll(released + p.initialRttNs, log.actions());
    CHECK(log.naks == Ranges{{2, 1}, {4, 1}});
    // Their deadline runs from the release.
    while (g.hasGaps() && g.nextDeadline() < released + p.deadlineNs) g.poll(g.nextDeadline(), log.actions());
    CHECK(g.gapCount() == 2);
    g.poll(released + p.deadlineNs, log.actions());
    CHECK(log.lost == LostRanges{{0, 1}, {2, 1}, {4, 1}});
}

TEST_CASE("a held gap the sender no longer holds is lost at once") {
    NakPolicy p;
    GapTracker g(p);
    g.reset(Offset{0});
    g.onData(Offset{1}, 1, kT0, false);   // gap [0,1)
    g.onData(Offset{3}, 1, kT0, false);   // gap [2,3)
    g.holdNaksFrom(Offset{2});
    g.onSenderOldest(Offset{3}, kT0 + 10);
    Log log;
    g.poll(kT0 + 10, log.actions());
    CHECK(log.lost == LostRanges{{0, 1}, {2, 1}});
    CHECK(log.naks.empty());
}

TEST_CASE("datagrams dropped one after another make one gap and one NAK range, not a gap each") {
    NakPolicy p;
    GapTracker g(p);
    g.reset(Offset{0});
    g.onData(Offset{0}, 10, kT0, false);
    g.onData(Offset{12}, 3, kT0, false);  // gap [10, 12)
    g.holdNaksFrom(Offset{15});
    // A receiver with no room drops 1000 datagrams of 3 offsets: each moves the head only.
    for (std::uint64_t k = 0; k < 1000; ++k) g.onHead(Offset{15 + 3 * (k + 1)}, kT0 + k);
    CHECK(g.gapCount() == 2);  // [10, 12) and [15, 3015)
    CHECK(g.stats().gapsDetected == 2);
    Log log;
    g.onData(Offset{10}, 2, kT0 + 2000, true);  // the lowest gap repaired: the hold ends
    CHECK_FALSE(g.holdingNaks());
    g.poll(kT0 + 2000 + p.initialRttNs, log.actions());
    CHECK(log.naks == Ranges{{15, 3000}});
    // A gap already NAKed is not extended: what follows it is a gap of its own, which grows
    // while it has not been asked for.
    g.onHead(Offset{3100}, kT0 + 3000);
    CHECK(g.gapCount() == 2);  // [15, 3015), [3015, 3100)
    g.onHead(Offset{3200}, kT0 + 3000);
    CHECK(g.gapCount() == 2);  // [15, 3015), [3015, 3200)
    log.naks.clear();
    g.onData(Offset{15}, 3000, kT0 + 4000, true);
    while (g.hasGaps() && log.naks.empty()) g.poll(g.nextDeadline(), log.actions());
    CHECK(log.naks == Ranges{{3015, 185}});
}

TEST_CASE("the NAK window: only offsets below the limit are asked for, lowest first, and nothing beyond it expires") {
    NakPolicy p;
    p.initialRttNs = 100'000;
    p.deadlineNs = 1'000'000'000;
    GapTracker g(p);
    g.reset(Offset{0});
    g.setNakLimit(Offset{100}, kT0);
    g.onData(Offset{50}, 1, kT0, false);     // gap [0, 50)
    g.onData(Offset{300}, 1, kT0, false);    // gap [51, 300): across the limit
    g.onData(Offset{500}, 1, kT0, false);    // gap [301, 500): beyond it
    Log log;
    g.poll(kT0 + p.initialRttNs, log.actions());
    std::sort(log.naks.begin(), log.naks.end());
    CHECK(log.naks == Ranges{{0, 50}, {51, 49}});  // up to the limit only
    // Repairs keep coming for the lowest gap (the sender answers): nothing expires meanwhile,
    // though the gaps were found long ago.
    std::uint64_t now = kT0 + p.initialRttNs;
    for (std::uint64_t o = 0; o < 50; ++o) {
        now += p.deadlineNs / 20;
        g.onData(Offset{o}, 1, now, true);
        g.poll(now, log.actions());
    }
    CHECK(log.lost.empty());
    CHECK(g.firstMissing() == Offset{51});
    // The window moves up: the gap beyond it is asked for now, and its deadline runs from now.
    log.naks.clear();
    g.setNakLimit(Offset{400}, now);
    const std::uint64_t until = now + g.srttNs();  // the first NAK delay is at most srtt
    while (g.nextDeadline() <= until) g.poll(g.nextDeadline(), log.actions());
    std::sort(log.naks.begin(), log.naks.end());
    REQUIRE_FALSE(log.naks.empty());
    CHECK(log.naks.back() == std::pair<std::uint64_t, std::uint32_t>{301, 99});
    for (const auto& n : log.naks) CHECK(n.first + n.second <= 400);
    CHECK(log.lost.empty());
    // No more answers: the deadline comes, one deadline after the last progress.
    while (g.hasGaps()) g.poll(g.nextDeadline(), log.actions());
    CHECK(log.lost == LostRanges{{51, 249}, {301, 199}});
    CHECK(g.stats().lostOffsets == 448);
}

TEST_CASE("a receiver far behind repairs in order within its window and converges with a bounded NAK load") {
    // A pure simulation of a receiver restarted 20000 offsets behind a live stream of 1 offset
    // per tick, with room for W offsets beyond its delivery point: what lies beyond is dropped
    // (head moves, one coalesced gap). The sender has a budget of 4 repaired offsets per tick: it
    // answers the NAKs received in the last tick in order, from each range's start, and drops
    // what its budget does not cover (as a rate-limited sequencer does). The backlog takes far
    // longer than the deadline to repair: the receiver must catch up with no loss, with few NAK
    // ranges, none longer than its window.
    NakPolicy p;
    p.initialRttNs = 20'000;
    p.deadlineNs = 50'000'000;  // 50 ticks of 1 ms: far less than the catch-up takes
    GapTracker g(p);
    constexpr std::uint64_t kW = 2000;
    constexpr std::uint64_t kTick = 1'000'000;
    g.reset(Offset{0});
    std::uint64_t next = 0, live = 20'000;
    std::set<std::uint64_t> buffered;
    std::vector<std::pair<std::uint64_t, std::uint64_t>> asked;  // ranges NAKed in the last tick
    std::uint64_t longestNak = 0;
    GapTracker::Actions act;
    act.nak = [&](Offset f, std::uint32_t n, bool) {
        asked.emplace_back(f.get(), f.get() + n);
        longestNak = std::max<std::uint64_t>(longestNak, n);
    };
    act.lost = [](Offset f, std::uint64_t n) { FAIL("lost " << f.get() << " +" << n); };
    std::uint64_t now = kT0;
    std::uint64_t tick = 0;
    auto deliver = [&] {
        while (!buffered.empty() && *buffered.begin() <= next) {
            if (*buffered.begin() == next) ++next;
            buffered.erase(buffered.begin());
        }
        g.advance(Offset{next});
        g.setNakLimit(Offset{next + kW}, now);
    };
    for (; tick < 100'000 && next < live; ++tick, now += kTick) {
        // One live offset: kept if within the window, else dropped (the head moves).
        if (live < next + kW) {
            buffered.insert(live);
            g.onData(Offset{live}, 1, now, false);
        } else {
            g.onHead(Offset{live + 1}, now);
        }
        ++live;
        // The sender repairs up to 4 offsets of what was asked for, in order; the rest is dropped.
        int budget = 4;
        for (auto& r : asked) {
            for (std::uint64_t o = r.first; o < r.second && budget > 0; ++o, --budget) {
                if (o < next || buffered.count(o) != 0) continue;
                if (o != next && o >= next + kW) continue;  // no room: dropped
                if (o == next) ++next;
                else buffered.insert(o);
                g.onData(Offset{o}, 1, now, true);
            }
        }
        asked.clear();
        deliver();
        g.poll(now, act);
    }
    CHECK(next == live);
    CHECK_FALSE(g.hasGaps());
    CHECK(g.stats().lostOffsets == 0);
    INFO("caught up after " << tick << " ticks, " << g.stats().naksSent << " NAK ranges, the longest " << longestNak);
    // 20000 behind at 3 offsets a tick net would be ~6700 ticks; the receiver's retries back off
    // while it lags (the sender answers a NAK every 2-3 ticks): ~14700.
    CHECK(tick < 40'000);
    CHECK(longestNak <= kW);
    CHECK(g.stats().naksSent <= 2 * tick);
}

}  // TEST_SUITE

TEST_CASE("a gap nobody serves is lost within maxDeadlines deadlines even while other gaps keep being repaired") {
    // Offset 5 is never repaired (the sender's copy failed its CRC); new one-offset gaps above it
    // appear and are repaired every 10 ms, so repair progress never stops.
    NakPolicy p;
    p.deadlineNs = 100'000'000;
    p.initialRttNs = 1'000'000;
    p.maxDeadlines = 4;
    GapTracker g(p);
    g.reset(Offset{0});
    g.onData(Offset{0}, 5, kT0, false);
    g.onData(Offset{6}, 4, kT0, false);
    Log log;
    std::uint64_t now = kT0, head = 10;
    std::uint64_t lostAt = 0;
    std::uint64_t pending = 0;  // the previous round's gap, NAKed by now: repaired this round
    while (now < kT0 + 3'000'000'000ull && lostAt == 0) {
        now += 10'000'000;
        g.onData(Offset{head + 1}, 1, now, false);  // offset `head` missing: a new gap
        g.poll(now, log.actions());
        if (pending != 0) g.onData(Offset{pending}, 1, now + 1'000'000, true);  // a repair that was asked for
        pending = head;
        head += 2;
        for (const auto& [first, n] : log.lost)
            if (first <= 5 && 5 < first + n) lostAt = now;
    }
    REQUIRE(lostAt != 0);
    CHECK(lostAt - kT0 <= p.maxDeadlines * p.deadlineNs + 20'000'000);
    CHECK(lostAt - kT0 >= p.deadlineNs);
    // Only offset 5 was lost: every other gap was repaired, the progress was real.
    std::uint64_t lostOffsets = 0;
    for (const auto& [first, n] : log.lost) lostOffsets += n;
    CHECK(lostOffsets == 1);
    CHECK(g.stats().repairedOffsets > 20);
}
