#include "recovery/gap_tracker.h"

#include <algorithm>

namespace seqcast::recovery {

GapTracker::GapTracker(const NakPolicy& p) : p_(p), rng_(p.seed), srtt_(p.initialRttNs) {}

void GapTracker::reset(Offset next) {
    started_ = true;
    next_ = next;
    head_ = next;
    gaps_.clear();
    holdFrom_ = ~std::uint64_t{0};
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
    ++stats_.gapsDetected;
    gaps_.push_back(Gap{first, end, nowNs, nowNs + firstDelay(), 0, 0, false, false, false});
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
        if (g.lastNakNs == 0 && !g.unrepairable) stats_.suppressed += (g.first >= b && g.end <= e) ? 1 : 0;
        if (isRepair || g.lastNakNs != 0) stats_.repairedOffsets += covered;
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
        }
        if (g.first < b && g.end > e) {  // split in two
            Gap right = g;
            right.first = e;
            g.end = b;
            gaps_.insert(gaps_.begin() + static_cast<std::ptrdiff_t>(i) + 1, right);
            i += 2;
            continue;
        }
        if (g.first < b) g.end = b;
        else g.first = e;
        ++i;
    }
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
            g.end = oldest.get();
            gaps_.insert(gaps_.begin() + static_cast<std::ptrdiff_t>(i) + 1, upper);
        }
        if (p_.archive && p_.repair) {
            gaps_[i].toArchive = true;
            gaps_[i].nakAtNs = nowNs;  // ask the archiver now
            gaps_[i].attempts = 0;
        } else {
            gaps_[i].unrepairable = true;
        }
    }
}

void GapTracker::onArchiveEarliest(Offset earliest) {
    for (std::size_t i = 0; i < gaps_.size(); ++i) {
        Gap& g = gaps_[i];
        if (g.first >= earliest.get()) break;
        if (g.end > earliest.get()) {
            Gap upper = g;
            upper.first = earliest.get();
            g.end = earliest.get();
            gaps_.insert(gaps_.begin() + static_cast<std::ptrdiff_t>(i) + 1, upper);
        }
        gaps_[i].unrepairable = true;
    }
}

void GapTracker::suspend(bool on, std::uint64_t nowNs) {
    if (suspended_ && !on) {
        for (auto& g : gaps_) {
            g.detectedNs = nowNs;
            g.nakAtNs = nowNs + firstDelay();
        }
    }
    suspended_ = on;
}

std::size_t GapTracker::poll(std::uint64_t nowNs, const Actions& act) {
    std::size_t actions = 0;
    for (std::size_t i = 0; i < gaps_.size();) {
        Gap& g = gaps_[i];
        if (suspended_ && !g.unrepairable) {
            ++i;
            continue;
        }
        const bool expired = nowNs >= g.detectedNs + p_.deadlineNs;
        const bool atMostOnceDue = !p_.repair && nowNs >= g.nakAtNs;
        if (g.unrepairable || expired || atMostOnceDue) {
            ++stats_.lossNotices;
            stats_.lostOffsets += g.end - g.first;
            if (act.lost) act.lost(Offset{g.first}, g.end - g.first);
            gaps_.erase(gaps_.begin() + static_cast<std::ptrdiff_t>(i));
            ++actions;
            continue;
        }
        if (p_.repair && nowNs >= g.nakAtNs && !held(g)) {
            for (std::uint64_t f = g.first; f < g.end; f += p_.maxNakRange) {
                const auto n = static_cast<std::uint32_t>(std::min<std::uint64_t>(g.end - f, p_.maxNakRange));
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
        ++i;
    }
    return actions;
}

std::uint64_t GapTracker::nextDeadline() const noexcept {
    std::uint64_t t = ~std::uint64_t{0};
    if (suspended_) {
        for (const auto& g : gaps_)
            if (g.unrepairable) return 0;
        return t;
    }
    for (const auto& g : gaps_) {
        if (g.unrepairable) return 0;
        t = std::min({t, held(g) ? ~std::uint64_t{0} : g.nakAtNs, g.detectedNs + p_.deadlineNs});
    }
    return t;
}

}  // namespace seqcast::recovery
