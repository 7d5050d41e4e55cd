#include "client/reassembler.h"

#include <algorithm>
#include <cstring>

namespace seqcast::client {

Reassembler::Reassembler(std::uint32_t maxMessage, std::size_t maxPending)
    : maxMessage_(maxMessage), slots_(maxPending == 0 ? 1 : maxPending) {}

Reassembler::Slot* Reassembler::find(PublisherId p, PubSeq s) {
    for (auto& slot : slots_)
        if (slot.used && slot.publisher == p && slot.pubSeq == s) return &slot;
    return nullptr;
}

void Reassembler::ensureBuffer(Slot& s) {
    if (s.data) return;
    // Once per slot for the reassembler's life: the pool is maxPending buffers of maxMessage bytes.
    s.data.reset(new std::byte[maxMessage_]);  // not zero-filled
    s.have.reserve(kMaxRanges + 1);
    ++stats_.buffers;
}

void Reassembler::release(Slot& s) {
    // The buffer and the range list's capacity stay with the slot for its next message.
    s.used = false;
    s.haveLast = false;
    s.total = 0;
    s.have.clear();
}

Reassembler::Slot& Reassembler::claim(PublisherId p, PubSeq s) {
    Slot* victim = nullptr;
    for (auto& slot : slots_) {
        if (!slot.used) { victim = &slot; break; }
        if (victim == nullptr || slot.age < victim->age) victim = &slot;
    }
    if (victim->used) {
        ++stats_.evicted;
        release(*victim);
    }
    victim->used = true;
    victim->publisher = p;
    victim->pubSeq = s;
    victim->age = ++clock_;
    return *victim;
}

bool Reassembler::insertRange(std::vector<std::pair<std::uint32_t, std::uint32_t>>& v, std::uint32_t b,
                              std::uint32_t e) {
    // Returns false when [b, e) was already fully present.
    for (const auto& r : v)
        if (r.first <= b && e <= r.second && b != e) return false;
    v.emplace_back(b, e);
    std::sort(v.begin(), v.end());
    std::size_t w = 0;
    for (std::size_t i = 1; i < v.size(); ++i) {
        if (v[i].first <= v[w].second) v[w].second = std::max(v[w].second, v[i].second);
        else v[++w] = v[i];
    }
    v.resize(w + 1);
    return true;
}

Reassembler::Outcome Reassembler::offer(const wire::MessageView& f, std::span<const std::byte>& out) {
    if (lastCompleted_ != nullptr) {
        release(*lastCompleted_);
        lastCompleted_ = nullptr;
    }
    const std::uint64_t end = std::uint64_t{f.fragOffset} + f.payload.size();
    if (end > maxMessage_) {
        ++stats_.tooLarge;
        if (Slot* s = find(f.publisher, f.pubSeq)) release(*s);
        return Outcome::TooLarge;
    }
    if (f.whole()) {
        out = f.payload;
        ++stats_.completed;
        return Outcome::Complete;
    }
    Slot* s = find(f.publisher, f.pubSeq);
    if (s == nullptr) s = &claim(f.publisher, f.pubSeq);
    const auto e32 = static_cast<std::uint32_t>(end);
    if ((s->haveLast && e32 > s->total) || (f.last() && s->haveLast && e32 != s->total) ||
        (f.last() && !s->have.empty() && s->have.back().second > e32)) {
        ++stats_.inconsistent;
        release(*s);
        return Outcome::Inconsistent;
    }
    if (f.last()) {
        s->haveLast = true;
        s->total = e32;
    }
    ensureBuffer(*s);
    if (!f.payload.empty()) std::memcpy(s->data.get() + f.fragOffset, f.payload.data(), f.payload.size());
    if (!insertRange(s->have, f.fragOffset, e32) && !(f.last() && f.payload.empty())) {
        ++stats_.duplicates;
        return Outcome::Duplicate;
    }
    if (s->have.size() > kMaxRanges) {
        // Scattered slivers, as no sender fragments: bound the bookkeeping (and its sort).
        ++stats_.inconsistent;
        release(*s);
        return Outcome::Inconsistent;
    }
    s->age = ++clock_;
    const bool complete = s->haveLast && (s->total == 0 || (s->have.size() == 1 && s->have[0].first == 0 &&
                                                            s->have[0].second == s->total));
    if (!complete) return Outcome::Pending;
    out = std::span<const std::byte>(s->data.get(), s->total);
    lastCompleted_ = s;
    ++stats_.completed;
    return Outcome::Complete;
}

void Reassembler::drop(PublisherId p, PubSeq s) {
    if (Slot* slot = find(p, s)) {
        if (slot == lastCompleted_) lastCompleted_ = nullptr;
        release(*slot);
    }
}

void Reassembler::clear() {
    for (auto& s : slots_) release(s);
    lastCompleted_ = nullptr;
}

std::size_t Reassembler::pending() const noexcept {
    return static_cast<std::size_t>(std::count_if(slots_.begin(), slots_.end(), [](const Slot& s) { return s.used; }));
}

std::size_t Reassembler::bytesHeld() const noexcept {
    std::size_t n = 0;
    for (const auto& s : slots_)
        if (s.data) n += maxMessage_;
    return n;
}

}  // namespace seqcast::client
