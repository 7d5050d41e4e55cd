// FeedTracker (declared in gateway/mold_ingress.h): pure logic, kept apart from the ingress's I/O so
// that the fuzz target links it alone.
#include <algorithm>

#include "gateway/mold_ingress.h"

namespace seqcast::gateway::mold {

void FeedTracker::seen(std::uint64_t end, std::uint64_t nowNs) {
    if (end > head_) head_ = end;
    if (!stuck_ && next_ != 0 && next_ < head_ && (held_.empty() || held_.begin()->first != next_)) {
        stuck_ = true;
        stuckSinceNs_ = nowNs;
    }
}

void FeedTracker::advanced(std::uint64_t nowNs) {
    stuck_ = false;
    seen(head_, nowNs);  // still missing the (new) next one?
}

void FeedTracker::take(std::uint64_t seq, std::span<const std::byte> m, bool answer, std::uint64_t nowNs) {
    if (seq < next_) {
        ++c_.duplicates;
        return;
    }
    // Next in line (held messages all come later unless back-pressure holds this very number).
    if (seq == next_ && (held_.empty() || held_.begin()->first != seq)) {
        if (deliver_(seq, m)) {
            ++next_;
            ++c_.messages;
            if (answer) ++c_.recovered;
            advanced(nowNs);
            return;
        }
    }
    if (held_.count(seq)) {
        ++c_.duplicates;
        return;
    }
    if (heldBytes_ + m.size() + kHeldOverhead > o_.maxHeldBytes && seq != next_) {
        ++c_.heldDropped;  // missing again: the next retry from next_ asks for it
        return;
    }
    held_.emplace(seq, Held{std::vector<std::byte>(m.begin(), m.end()), answer});
    heldBytes_ += m.size() + kHeldOverhead;
}

void FeedTracker::onPacket(const Packet& p, bool answer, std::uint64_t nowNs) {
    if (next_ == 0) next_ = p.seq;  // startSeq 0: the feed's position now
    if (p.endOfSession()) {
        eosSeq_ = std::max(eosSeq_, p.seq);
        seen(p.seq, nowNs);
        return;
    }
    if (p.heartbeat()) {
        seen(p.seq, nowNs);
        return;
    }
    MessageIterator it(p);
    std::span<const std::byte> m;
    std::uint64_t seq = p.seq;
    while (it.next(m)) {
        if (seq < o_.startSeq) {
            ++c_.beforeStart;
        } else {
            take(seq, m, answer, nowNs);
        }
        ++seq;
    }
    seen(seq, nowNs);
    // One answer is one packet: what the request asked for beyond it is asked for again at once.
    if (answer && seq < head_) urgent_.push_back(seq);
    if (!held_.empty() && held_.begin()->first == next_) drain(nowNs);
}

std::size_t FeedTracker::drain(std::uint64_t nowNs) {
    std::size_t n = 0;
    while (!held_.empty() && held_.begin()->first == next_) {
        auto it = held_.begin();
        if (!deliver_(next_, it->second.bytes)) break;
        heldBytes_ -= it->second.bytes.size() + kHeldOverhead;
        if (it->second.answer) ++c_.recovered;
        held_.erase(it);
        ++next_;
        ++c_.messages;
        ++n;
    }
    if (n) advanced(nowNs);
    return n;
}

void FeedTracker::requests(std::uint64_t nowNs, std::vector<Range>& out) {
    out.clear();
    if (next_ == 0 || head_ <= next_) {
        urgent_.clear();
        return;
    }
    // The request rate: a token bucket, so that a late join or a long gap never floods the
    // request server (servers drop what comes faster than they allow, seqcast's own included).
    if (!bucketStarted_) {
        tokens_ = o_.requestBurst;
        bucketStarted_ = true;
    } else if (nowNs > lastRefillNs_) {
        tokens_ = std::min(o_.requestBurst, tokens_ + static_cast<double>(nowNs - lastRefillNs_) * 1e-9 * o_.requestRate);
    }
    lastRefillNs_ = std::max(lastRefillNs_, nowNs);
    const std::size_t budget = std::min<std::size_t>(o_.maxRequestsPerRound, static_cast<std::size_t>(tokens_));
    if (budget == 0) return;  // urgent_ is kept for the next call
    // Right after an answer: the numbers following it, when still missing.
    for (const std::uint64_t u : urgent_) {
        if (u < next_ || u >= head_ || held_.count(u) || out.size() >= budget) continue;
        auto h = held_.lower_bound(u);
        const std::uint64_t end = h == held_.end() ? head_ : std::min(head_, h->first);
        out.push_back(Range{u, static_cast<std::uint16_t>(std::min<std::uint64_t>(end - u, o_.maxRequestCount))});
    }
    urgent_.clear();
    const bool again = nowNs - lastRoundNs_ >= o_.retryNs;
    std::uint64_t s = again ? next_ : std::max(next_, requestedUpTo_);
    if (s >= head_) return;
    auto it = held_.lower_bound(s);
    while (s < head_ && out.size() < budget) {
        while (it != held_.end() && it->first == s) {  // a run of held numbers: nothing to ask for
            ++s;
            ++it;
        }
        if (s >= head_) break;
        if (auto u = std::find_if(out.begin(), out.end(), [s](const Range& r) { return r.seq == s; }); u != out.end()) {
            s += u->count;  // asked for above, after an answer
            it = held_.lower_bound(s);
            continue;
        }
        const std::uint64_t end = it == held_.end() ? head_ : std::min(head_, it->first);
        const std::uint64_t n = std::min<std::uint64_t>(end - s, o_.maxRequestCount);
        out.push_back(Range{s, static_cast<std::uint16_t>(n)});
        if (s + n > requestedUpTo_) c_.gapMessages += s + n - std::max(s, requestedUpTo_);
        s += n;
    }
    if (out.empty()) return;
    tokens_ -= static_cast<double>(out.size());
    c_.requests += out.size();
    requestedUpTo_ = std::max(requestedUpTo_, s);
    if (again) lastRoundNs_ = nowNs;  // new gaps and answers' follow-ups do not put off the retries
}

std::string FeedTracker::stalled(std::uint64_t nowNs) const {
    if (!stuck_ || nowNs - stuckSinceNs_ < o_.deadlineNs) return {};
    const std::uint64_t end = held_.empty() ? head_ : std::min(head_, held_.begin()->first);
    return "sequence numbers " + std::to_string(next_) + ".." + std::to_string(end - 1) + " were not received in " +
           std::to_string(o_.deadlineNs / 1'000'000) + " ms (the feed's head is " + std::to_string(head_) +
           "): the request server did not answer for them; nothing after them is published, so the stream never skips a message";
}

}  // namespace seqcast::gateway::mold
