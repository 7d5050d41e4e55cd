#include "client/gap_tracker.h"

#include <algorithm>
#include <functional>

namespace seqcast::client {

namespace {
constexpr std::uint64_t kNever = ~std::uint64_t{0};
}  // namespace

GapTracker::GapTracker(const NakPolicy& p) : p_(p), rng_(p.seed), srtt_(p.initialRttNs) {}

void GapTracker::reset(Offset next) {
    started_ = true;
    next_ = next;
    head_ = next;
    gaps_.clear();
    timers_.clear();
    holdFrom_ = kNever;
    nakLimit_ = kNever;
    lastProgressNs_ = 0;
}

std::uint64_t GapTracker::expiryOf(const Gap& g) const noexcept {
    // The deadline runs from the gap's detection (or its last partial repair, or the end of its
    // hold) and from the receiver's last repair progress, whichever is later: a receiver whose
    // NAKs are being answered is behind, its gaps are not lost. When the sender stops answering
    // (gone, or the offsets no longer held and nobody says so) the deadline comes.
    // Capped at maxDeadlines deadlines after the gap was found: progress elsewhere does not keep a
    // gap nobody serves open for ever.
    const auto after = [](std::uint64_t t, std::uint64_t d) { return t > kNever - d ? kNever : t + d; };
    const std::uint64_t from = std::max(g.detectedNs, lastProgressNs_);
    const std::uint64_t cap = p_.deadlineNs > kNever / std::max<std::uint32_t>(p_.maxDeadlines, 1)
                                  ? kNever
                                  : after(g.detectedNs, p_.deadlineNs * std::max<std::uint32_t>(p_.maxDeadlines, 1));
    return std::min(after(from, p_.deadlineNs), cap);
}

std::uint64_t GapTracker::dueOf(const Gap& g) const noexcept {
    if (g.unrepairable) return 0;
    if (suspended_) return kNever;
    // Held for lack of room: not NAKed, and not lost either (the sender still holds it, or its
    // heartbeat says otherwise and the gap becomes unrepairable). activate() starts its clocks.
    if (p_.repair && held(g)) return kNever;
    return std::min(g.nakAtNs, expiryOf(g));
}

void GapTracker::schedule(const Gap& g) {
    const std::uint64_t due = dueOf(g);
    if (due == kNever) return;
    timers_.push_back(Timer{due, g.first, g.gen});
    std::push_heap(timers_.begin(), timers_.end(), std::greater<>{});
}

void GapTracker::rebuildTimers() {
    timers_.clear();
    for (const auto& g : gaps_) {
        const std::uint64_t due = dueOf(g);
        if (due != kNever) timers_.push_back(Timer{due, g.first, g.gen});
    }
    std::make_heap(timers_.begin(), timers_.end(), std::greater<>{});
}

const GapTracker::Gap* GapTracker::lookup(const Timer& t) const noexcept {
    // A gap only shrinks or splits (the upper part of a split gets a new gen): the gap a timer was
    // set for, if it still exists, is the first one ending above the offset it had then.
    const auto it = std::partition_point(gaps_.begin(), gaps_.end(), [&](const Gap& g) { return g.end <= t.first; });
    return it != gaps_.end() && it->gen == t.gen ? &*it : nullptr;
}

void GapTracker::activate(std::uint64_t from, std::uint64_t to, std::uint64_t nowNs) {
    if (!p_.repair) return;  // at-most-once holds nothing back (dueOf())
    auto it = std::partition_point(gaps_.begin(), gaps_.end(), [&](const Gap& g) { return g.first < from; });
    for (; it != gaps_.end() && it->first < to; ++it) {
        if (it->unrepairable || held(*it)) continue;
        it->detectedNs = nowNs;
        it->nakAtNs = nowNs + firstDelay();
        schedule(*it);
    }
}

void GapTracker::releaseNaks(std::uint64_t nowNs) {
    if (holdFrom_ == kNever) return;
    const std::uint64_t from = holdFrom_;
    const bool wasHolding = !gaps_.empty() && gaps_.front().first < from;
    holdFrom_ = kNever;
    if (wasHolding) activate(from, kNever, nowNs);
}

void GapTracker::setNakLimit(Offset limit, std::uint64_t nowNs) {
    const std::uint64_t old = nakLimit_;
    nakLimit_ = limit.get();
    // Lowered: the gaps above are held now; their timers go stale (dueOf() says never).
    if (nakLimit_ > old) activate(old, nakLimit_, nowNs);
}

void GapTracker::endHoldIfFilled(std::uint64_t nowNs) {
    // Everything below the hold has been filled: the gaps above it were held until now.
    if (holdFrom_ == kNever || !(gaps_.empty() || gaps_.front().first >= holdFrom_)) return;
    const std::uint64_t from = holdFrom_;
    holdFrom_ = kNever;
    activate(from, kNever, nowNs);
}

std::uint64_t GapTracker::firstDelay() noexcept {
    if (!p_.repair) return p_.reorderGraceNs;
    const double span = p_.suppressionFactor * static_cast<double>(srtt_);
    return static_cast<std::uint64_t>(rng_.unit() * span);
}

std::uint64_t GapTracker::retryDelay(std::uint32_t attempts) const noexcept {
    double d = p_.retryFactor * static_cast<double>(srtt_);
    // Doubles per attempt of this gap, or per carried-over doubling, whichever is more.
    const std::uint32_t doublings = std::max(attempts > 0 ? attempts - 1 : 0, backoff_);
    for (std::uint32_t i = 0; i < doublings && d < static_cast<double>(p_.maxRetryNs); ++i) d *= 2;
    const auto v = static_cast<std::uint64_t>(d);
    return std::clamp<std::uint64_t>(v, p_.minRttNs, p_.maxRetryNs);
}

void GapTracker::addGap(std::uint64_t first, std::uint64_t end, std::uint64_t nowNs) {
    if (first >= end) return;
    if (p_.repair && !gaps_.empty()) {
        // Right after a gap not asked for yet (datagrams dropped one after another for lack of
        // room, or heartbeats): one longer gap, one NAK range, not a gap per datagram.
        Gap& last = gaps_.back();
        if (last.end == first && last.lastNakNs == 0 && !last.toArchive && !last.unrepairable) {
            last.end = end;
            return;
        }
    }
    ++stats_.gapsDetected;
    gaps_.push_back(Gap{first, end, nowNs, nowNs + firstDelay(), 0, 0, false, false, false, nextGen_++});
    schedule(gaps_.back());
}

void GapTracker::onHead(Offset head, std::uint64_t nowNs) {
    if (!started_) reset(head);
    if (head > head_) {
        addGap(head_.get(), head.get(), nowNs);
        head_ = head;
    }
}

void GapTracker::onData(Offset first, std::uint64_t count, std::uint64_t nowNs, bool isRepair) {
    if (!started_) reset(first);
    const std::uint64_t b = std::max(first.get(), next_.get());
    const std::uint64_t e = first.get() + count;
    if (b >= e) return;
    const std::uint64_t oldHead = head_.get();
    if (e > oldHead) {
        if (b > oldHead) addGap(oldHead, b, nowNs);
        head_ = Offset{e};
    }
    // Data at or above the old head fills no gap: every gap lies below it.
    if (b >= oldHead) return;
    // Remove [b, e) from the gaps (sorted, disjoint), splitting where needed: from the first gap
    // that ends above b, while gaps start below e.
    std::size_t i = static_cast<std::size_t>(
        std::partition_point(gaps_.begin(), gaps_.end(), [b](const Gap& g) { return g.end <= b; }) - gaps_.begin());
    while (i < gaps_.size()) {
        Gap& g = gaps_[i];
        if (g.first >= e) break;
        const std::uint64_t covered = std::min(g.end, e) - std::max(g.first, b);
        // A gap closed before its first NAK: by another receiver's repair, our NAK was
        // suppressed; by late originals, it was only reordering and no NAK was in question.
        if (g.lastNakNs == 0 && !g.unrepairable && g.first >= b && g.end <= e)
            ++(isRepair ? stats_.suppressed : stats_.filledBeforeNak);
        if (isRepair || g.lastNakNs != 0) stats_.repairedOffsets += covered;
        if (isRepair && g.lastNakNs != 0) lastProgressNs_ = std::max(lastProgressNs_, nowNs);
        // Karn: a gap NAKed more than once cannot tell which NAK its repair answers.
        if (isRepair && g.lastNakNs != 0 && g.attempts == 1 && !g.partial && nowNs > g.lastNakNs) {
            const std::uint64_t sample = std::max(nowNs - g.lastNakNs, p_.minRttNs);
            srtt_ = (7 * srtt_ + sample) / 8;
            backoff_ = 0;  // a clean sample: the estimate is trusted again
        }
        if (g.first >= b && g.end <= e) {
            gaps_.erase(gaps_.begin() + static_cast<std::ptrdiff_t>(i));
            continue;
        }
        if (isRepair && g.lastNakNs != 0) {
            // Part of a NAKed gap repaired: the sender is answering, perhaps in rate-limited
            // parts. The deadline runs from this progress, and the rest is asked for one retry
            // delay from now, without the doubling of unanswered NAKs.
            g.detectedNs = nowNs;
            g.attempts = 1;
            g.partial = true;
            g.nakAtNs = nowNs + retryDelay(1);
            schedule(g);
        }
        if (g.first < b && g.end > e) {  // split in two
            Gap right = g;
            right.first = e;
            right.gen = nextGen_++;
            g.end = b;
            gaps_.insert(gaps_.begin() + static_cast<std::ptrdiff_t>(i) + 1, right);
            schedule(gaps_[i + 1]);
            i += 2;
            continue;
        }
        if (g.first < b) g.end = b;
        else g.first = e;
        ++i;
    }
    endHoldIfFilled(nowNs);
    // gaps_ stays sorted without a sort: a new gap starts at head_, above every existing one, and
    // splits insert the upper part right after the lower.
}

void GapTracker::onSenderOldest(Offset oldest, std::uint64_t nowNs) {
    for (std::size_t i = 0; i < gaps_.size(); ++i) {
        Gap& g = gaps_[i];
        if (g.first >= oldest.get()) break;
        if (g.toArchive || g.unrepairable) continue;
        if (g.end > oldest.get()) {  // split at oldest: the upper part the sender still holds
            Gap upper = g;
            upper.first = oldest.get();
            upper.gen = nextGen_++;
            g.end = oldest.get();
            gaps_.insert(gaps_.begin() + static_cast<std::ptrdiff_t>(i) + 1, upper);
            schedule(gaps_[i + 1]);
        }
        if (p_.archive && p_.repair) {
            gaps_[i].toArchive = true;
            gaps_[i].nakAtNs = nowNs;  // ask the archiver now
            gaps_[i].attempts = 0;
        } else {
            gaps_[i].unrepairable = true;
        }
        schedule(gaps_[i]);
    }
}

void GapTracker::onArchiveEarliest(Offset earliest) {
    for (std::size_t i = 0; i < gaps_.size(); ++i) {
        Gap& g = gaps_[i];
        if (g.first >= earliest.get()) break;
        if (g.end > earliest.get()) {
            Gap upper = g;
            upper.first = earliest.get();
            upper.gen = nextGen_++;
            g.end = earliest.get();
            gaps_.insert(gaps_.begin() + static_cast<std::ptrdiff_t>(i) + 1, upper);
            schedule(gaps_[i + 1]);
        }
        if (!gaps_[i].unrepairable) {
            gaps_[i].unrepairable = true;
            schedule(gaps_[i]);
        }
    }
}

void GapTracker::suspend(bool on, std::uint64_t nowNs) {
    if (suspended_ && !on) {
        for (auto& g : gaps_) {
            g.detectedNs = nowNs;
            g.nakAtNs = nowNs + firstDelay();
        }
    }
    const bool changed = suspended_ != on;
    suspended_ = on;
    if (changed) rebuildTimers();
}

std::size_t GapTracker::poll(std::uint64_t nowNs, const Actions& act) {
    // Collect the gaps due now from the timer queue, then act on them lowest offset first.
    due_.clear();
    while (!timers_.empty() && timers_.front().dueNs <= nowNs) {
        const Timer t = timers_.front();
        std::pop_heap(timers_.begin(), timers_.end(), std::greater<>{});
        timers_.pop_back();
        const Gap* g = lookup(t);
        if (g == nullptr) continue;  // filled since
        const std::uint64_t due = dueOf(*g);
        if (due <= nowNs) due_.push_back(g->first);
        else if (due != kNever) schedule(*g);  // rescheduled (held, retried): keep it in the queue
    }
    if (due_.empty()) return 0;
    std::sort(due_.begin(), due_.end());
    due_.erase(std::unique(due_.begin(), due_.end()), due_.end());
    std::size_t actions = 0;
    for (const std::uint64_t first : due_) {
        const auto it = std::partition_point(gaps_.begin(), gaps_.end(), [&](const Gap& x) { return x.first < first; });
        if (it == gaps_.end() || it->first != first) continue;
        Gap& g = *it;
        const bool expired = nowNs >= expiryOf(g);
        const bool atMostOnceDue = !p_.repair && nowNs >= g.nakAtNs;
        if (g.unrepairable || expired || atMostOnceDue) {
            ++stats_.lossNotices;
            stats_.lostOffsets += g.end - g.first;
            if (act.lost) act.lost(Offset{g.first}, g.end - g.first);
            gaps_.erase(it);
            ++actions;
            continue;
        }
        if (p_.repair && nowNs >= g.nakAtNs && !held(g)) {
            // Up to the hold or the window only: the rest could not be kept.
            const std::uint64_t nakEnd = std::min(g.end, holdPoint());
            for (std::uint64_t f = g.first; f < nakEnd; f += p_.maxNakRange) {
                const auto n = static_cast<std::uint32_t>(std::min<std::uint64_t>(nakEnd - f, p_.maxNakRange));
                if (act.nak) act.nak(Offset{f}, n, g.toArchive);
                ++stats_.naksSent;
                stats_.nakOffsets += n;
            }
            ++g.attempts;
            // A retry means the last wait was too short. As TCP keeps its backed-off timeout until
            // a clean sample, later gaps wait longer too: otherwise a receiver that lags behind
            // its own socket queue, whose repairs queue behind the data, would NAK every gap
            // several times and its retransmissions would feed the lag.
            if (g.attempts >= 2) backoff_ = std::min(std::max(backoff_, g.attempts - 1), 6u);
            g.lastNakNs = nowNs;
            g.nakAtNs = nowNs + retryDelay(g.attempts);
            ++actions;
        }
        schedule(g);
    }
    endHoldIfFilled(nowNs);
    return actions;
}

std::uint64_t GapTracker::nextDeadline() const {
    // Settle the top of the queue so the answer is exact (poll() has work at that time): drop
    // entries of filled gaps, move entries whose gap was rescheduled.
    while (!timers_.empty()) {
        const Timer t = timers_.front();
        const Gap* g = lookup(t);
        const std::uint64_t due = g != nullptr ? dueOf(*g) : kNever;
        if (due == t.dueNs) return due;
        std::pop_heap(timers_.begin(), timers_.end(), std::greater<>{});
        timers_.pop_back();
        if (due != kNever) {
            timers_.push_back(Timer{due, t.first, t.gen});
            std::push_heap(timers_.begin(), timers_.end(), std::greater<>{});
        }
    }
    return kNever;
}

}  // namespace seqcast::client
