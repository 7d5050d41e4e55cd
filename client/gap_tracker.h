// Gap detection and NAK scheduling for one stream, as pure logic: the caller passes in what it
// received and the time; the tracker says which NAKs to send and which offsets are lost.
//
// A gap is a range of offsets below the highest known offset that has neither been delivered nor
// buffered. Each gap waits a randomized delay derived from the smoothed round-trip time before its
// first NAK (NAK suppression: a repair triggered by another receiver usually arrives first), then
// retries with exponential backoff, and is declared lost at its deadline or as soon as the sender
// says it no longer holds those offsets.
#pragma once

#include <algorithm>
#include <cstdint>
#include <deque>
#include <functional>
#include <vector>

#include "fabric/clock.h"
#include "fabric/types.h"

namespace seqcast::client {

struct NakPolicy {
    bool repair = true;                    // false: at-most-once, gaps are reported, never NAKed
    std::uint64_t initialRttNs = 200'000;  // until the first measurement
    std::uint64_t minRttNs = 10'000;
    double suppressionFactor = 1.0;        // first NAK after uniform(0, factor * srtt)
    double retryFactor = 2.0;              // first retry after retryFactor * srtt, then doubling
    std::uint64_t maxRetryNs = 50'000'000;
    std::uint64_t deadlineNs = 2'000'000'000;  // give up on a gap this long after it was found
    // While other repairs keep arriving a gap's deadline waits (the receiver is behind, not losing),
    // but never beyond this many deadlines after the gap was found: a gap the sender holds and
    // cannot serve (its copy failed the CRC check) must not stall delivery behind it for long.
    std::uint32_t maxDeadlines = 4;
    std::uint64_t reorderGraceNs = 50'000;     // at-most-once: wait this long for reordered data
    std::uint32_t maxNakRange = 65536;         // offsets per NAK range
    std::uint64_t seed = 1;
    bool archive = false;  // an archiver can repair what the sender no longer holds
};

struct GapStats {
    std::uint64_t gapsDetected = 0;
    std::uint64_t naksSent = 0;          // NAK ranges emitted
    std::uint64_t nakOffsets = 0;
    std::uint64_t suppressed = 0;        // gaps closed by a retransmission before their first NAK
    std::uint64_t filledBeforeNak = 0;   // gaps closed by late originals (reordering) before their first NAK
    std::uint64_t repairedOffsets = 0;
    std::uint64_t lossNotices = 0;
    std::uint64_t lostOffsets = 0;
};

class GapTracker {
public:
    explicit GapTracker(const NakPolicy& p);

    // Delivery point and known head: offsets in [next, head) are either buffered or in a gap.
    void reset(Offset next);
    bool started() const noexcept { return started_; }
    Offset next() const noexcept { return next_; }
    Offset head() const noexcept { return head_; }

    // Offsets [first, first + count) arrived (data, original or repair). Returns false when none of
    // them was new (all delivered or already inside no gap beyond head).
    void onData(Offset first, std::uint64_t count, std::uint64_t nowNs, bool isRepair);
    // The sender's next offset (heartbeat): everything below it exists.
    void onHead(Offset head, std::uint64_t nowNs);
    // The sender holds nothing below `oldest`: gaps below it go to the archiver (if any) or are lost.
    void onSenderOldest(Offset oldest, std::uint64_t nowNs);
    // The archiver holds nothing below `earliest`: gaps below it are lost.
    void onArchiveEarliest(Offset earliest);
    // While a replay fills the gaps: no NAKs, no deadlines. Resuming restarts the gaps' clocks.
    void suspend(bool on, std::uint64_t nowNs);
    bool suspended() const noexcept { return suspended_; }
    // Gaps at or above `from` are not NAKed while the receiver has no room to keep what their
    // repair would bring (its reorder buffer overflowed) and a gap below `from` is still open:
    // once everything below has been filled the hold ends by itself. A held gap is not lost (the
    // sender still holds it: onSenderOldest says when it does not), so no deadline runs while it
    // is held; it gets its first NAK delay and a fresh deadline when the hold ends.
    void holdNaksFrom(Offset from) noexcept { holdFrom_ = std::min(holdFrom_, from.get()); }
    void releaseNaks(std::uint64_t nowNs);
    bool holdingNaks() const noexcept { return holdFrom_ != ~std::uint64_t{0}; }
    // The receiver's repair window: offsets at or above `limit` are not NAKed, because what their
    // repair would bring could not be kept (a receiver far behind repairs in order, lowest first,
    // what its reorder buffer can hold). Gaps wholly above it are held as above (no NAK, no
    // deadline); a gap across it is NAKed up to it. Raising the limit lets the gaps below it go.
    // UINT64_MAX (after reset()): no window.
    void setNakLimit(Offset limit, std::uint64_t nowNs);
    Offset nakLimit() const noexcept { return Offset{nakLimit_}; }
    // The application consumed up to (not including) `next`.
    void advance(Offset next) noexcept { if (next > next_) next_ = next; }

    struct Actions {
        // toArchive: the range is older than the sender's retransmit ring.
        std::function<void(Offset first, std::uint32_t count, bool toArchive)> nak;
        std::function<void(Offset first, std::uint64_t count)> lost;
    };
    // Runs the timers: emits due NAKs and losses (lowest offsets first). Returns actions taken.
    std::size_t poll(std::uint64_t nowNs, const Actions& act);
    // Next time poll() has something to do (UINT64_MAX: nothing pending).
    std::uint64_t nextDeadline() const;

    bool hasGaps() const noexcept { return !gaps_.empty(); }
    // The lowest gap's first offset (for the caller's ordered delivery), or head when none.
    Offset firstMissing() const noexcept { return gaps_.empty() ? head_ : Offset{gaps_.front().first}; }
    std::uint64_t srttNs() const noexcept { return srtt_; }
    const GapStats& stats() const noexcept { return stats_; }
    std::size_t gapCount() const noexcept { return gaps_.size(); }

private:
    struct Gap {
        std::uint64_t first;
        std::uint64_t end;
        std::uint64_t detectedNs;
        std::uint64_t nakAtNs;
        std::uint64_t lastNakNs;  // 0: never NAKed
        std::uint32_t attempts;
        bool unrepairable;        // nobody holds it: declare lost at once
        bool toArchive;           // below the sender's oldest: ask the archiver
        bool partial;             // partly repaired: no RTT sample from it (the parts may be paced)
        std::uint64_t gen;        // identity for the timer queue (a split's upper part gets a new one)
    };
    // The timer queue: a min-heap of (due time, gap) entries. An entry goes stale when its gap is
    // filled, trimmed to nothing or rescheduled; stale entries are dropped when they reach the top.
    // So each poll costs O(due gaps * log n), not O(gaps): a receiver with a backlog of thousands
    // of gaps (a lagging archiver) does not spend its time scanning them.
    struct Timer {
        std::uint64_t dueNs;
        std::uint64_t first;  // a gap offset at scheduling time: the gap is the first ending above it
        std::uint64_t gen;
        bool operator>(const Timer& o) const noexcept { return dueNs > o.dueNs; }
    };
    std::uint64_t dueOf(const Gap& g) const noexcept;  // when poll() must look at g (UINT64_MAX: never)
    std::uint64_t expiryOf(const Gap& g) const noexcept;  // when g is declared lost, unless repaired
    void schedule(const Gap& g);
    void rebuildTimers();
    const Gap* lookup(const Timer& t) const noexcept;
    void endHoldIfFilled(std::uint64_t nowNs);
    // Gaps starting in [from, to) that are no longer held: first NAK delay and deadline from now.
    void activate(std::uint64_t from, std::uint64_t to, std::uint64_t nowNs);
    void addGap(std::uint64_t first, std::uint64_t end, std::uint64_t nowNs);
    // The lowest offset not NAKed now (the hold, when a gap below it is open, or the window).
    std::uint64_t holdPoint() const noexcept {
        const std::uint64_t h = !gaps_.empty() && gaps_.front().first < holdFrom_ ? holdFrom_ : ~std::uint64_t{0};
        return std::min(h, nakLimit_);
    }
    bool held(const Gap& g) const noexcept { return g.first >= holdPoint(); }
    std::uint64_t firstDelay() noexcept;
    std::uint64_t retryDelay(std::uint32_t attempts) const noexcept;

    NakPolicy p_;
    Rng rng_;
    bool started_ = false;
    bool suspended_ = false;
    Offset next_{0};
    Offset head_{0};
    std::uint64_t srtt_;
    std::uint32_t backoff_ = 0;  // retry-delay doublings carried over to new gaps since the last clean RTT sample
    std::uint64_t holdFrom_ = ~std::uint64_t{0};  // gaps at or above it are not NAKed (see holdNaksFrom)
    std::uint64_t nakLimit_ = ~std::uint64_t{0};  // offsets at or above it are not NAKed (see setNakLimit)
    // When a NAKed gap last got part of its repair: while the sender answers, the receiver is
    // behind, not the data lost, and deadlines wait (see poll()).
    std::uint64_t lastProgressNs_ = 0;
    std::deque<Gap> gaps_;   // sorted, disjoint, all inside [next_, head_)
    mutable std::vector<Timer> timers_;  // heap (std::greater): stale tops are dropped in nextDeadline()
    std::vector<std::uint64_t> due_;     // poll(): firsts of the gaps due this round
    std::uint64_t nextGen_ = 1;
    GapStats stats_;
};

}  // namespace seqcast::client
