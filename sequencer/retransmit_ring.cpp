#include "sequencer/retransmit_ring.h"

#include <atomic>
#include <cstring>
#include <new>
#include <stdexcept>

namespace seqcast::sequencer {

namespace {
constexpr std::uint64_t kRingMagic = 0x31474E4952514553ull;  // "SEQRING1"
constexpr std::size_t kMinEntryBytes = 80;                   // header + one message header

std::size_t metaCountFor(std::size_t capacity) { return capacity / kMinEntryBytes + 2; }
std::size_t roundUp(std::size_t v) { return (v + 63) & ~std::size_t{63}; }
std::size_t effectiveCapacity(std::size_t capacity, std::size_t maxDatagram) {
    return capacity < 4 * maxDatagram ? 4 * maxDatagram : capacity;
}
}  // namespace

std::size_t RetransmitRing::regionSize(std::size_t capacityBytes, std::size_t maxDatagram) noexcept {
    const std::size_t cap = effectiveCapacity(capacityBytes, maxDatagram);
    return roundUp(sizeof(Control)) + roundUp(metaCountFor(cap) * sizeof(Meta)) + cap;
}

void RetransmitRing::layout(std::span<std::byte> region, std::size_t capacityBytes, std::size_t maxDatagram) {
    const std::size_t cap = effectiveCapacity(capacityBytes, maxDatagram);
    if (region.size() < regionSize(capacityBytes, maxDatagram)) throw std::invalid_argument("ring region too small");
    ctl_ = reinterpret_cast<Control*>(region.data());
    meta_ = reinterpret_cast<Meta*>(region.data() + roundUp(sizeof(Control)));
    storage_ = region.data() + roundUp(sizeof(Control)) + roundUp(metaCountFor(cap) * sizeof(Meta));
    (void)maxDatagram;
}

void RetransmitRing::format() {
    // Called with ctl_ pointing at raw memory: start the control block's lifetime.
    ctl_ = new (ctl_) Control{};
    ctl_->magic = kRingMagic;
}

RetransmitRing::RetransmitRing(std::size_t capacityBytes, std::size_t maxDatagram) {
    const std::size_t n = regionSize(capacityBytes, maxDatagram);
    owned_.reset(new (std::align_val_t{64}) std::byte[n]);
    layout(std::span<std::byte>(owned_.get(), n), capacityBytes, maxDatagram);
    format();
    ctl_->capacity = effectiveCapacity(capacityBytes, maxDatagram);
    ctl_->maxDatagram = maxDatagram;
    ctl_->metaCount = metaCountFor(ctl_->capacity);
}

RetransmitRing::RetransmitRing(std::span<std::byte> region, std::size_t capacityBytes, std::size_t maxDatagram,
                               bool recover, Verify verify) {
    layout(region, capacityBytes, maxDatagram);
    const std::size_t cap = effectiveCapacity(capacityBytes, maxDatagram);
    const bool matches = recover && ctl_->magic == kRingMagic && ctl_->capacity == cap &&
                         ctl_->maxDatagram == maxDatagram && ctl_->metaCount == metaCountFor(cap) &&
                         ctl_->head < ctl_->metaCount && ctl_->size < ctl_->metaCount;
    if (!matches) {
        format();
        ctl_->capacity = cap;
        ctl_->maxDatagram = maxDatagram;
        ctl_->metaCount = metaCountFor(cap);
        return;
    }
    // Keep the longest valid, contiguous prefix of what was committed.
    std::size_t valid = 0;
    std::uint64_t expect = 0;
    std::uint64_t used = 0;
    for (; valid < ctl_->size; ++valid) {
        const Meta& m = at(valid);
        if (m.len == 0 || m.len > maxDatagram || m.pos > cap - m.len || m.count == 0) break;
        if (valid > 0 && m.first != expect) break;
        if (verify != nullptr && !verify(std::span<const std::byte>(storage_ + m.pos, m.len), m.first, m.count)) break;
        expect = m.first + m.count;
        used += m.len;
    }
    droppedOnRecover_ = ctl_->size - valid;
    ctl_->size = valid;
    ctl_->used = used;
    if (valid > 0) {
        const Meta& last = at(valid - 1);
        ctl_->writePos = last.pos + last.len;
        if (expect > ctl_->next) ctl_->next = expect;
        if (ctl_->next > expect) ctl_->next = expect;  // the control block ran ahead of what was stored
    }
}

Offset RetransmitRing::oldest() const noexcept {
    return ctl_->size == 0 ? Offset{ctl_->next} : Offset{at(0).first};
}

void RetransmitRing::resetTo(Offset o) noexcept {
    ctl_->size = 0;
    ctl_->head = 0;
    ctl_->writePos = 0;
    ctl_->used = 0;
    ctl_->next = o.get();
}

void RetransmitRing::evictOldest() {
    const Meta& m = at(0);
    ctl_->used -= m.len;
    ctl_->head = (ctl_->head + 1) % ctl_->metaCount;
    --ctl_->size;
}

std::span<std::byte> RetransmitRing::reserve() {
    const std::size_t maxD = ctl_->maxDatagram;
    std::size_t pos = ctl_->writePos;
    if (pos + maxD > ctl_->capacity) pos = 0;  // wrap: the tail end of the buffer goes unused
    // Evict the oldest entries until [pos, pos + maxD) is free. Entries lie in write order, so the
    // oldest is always the next one ahead of the write position.
    while (ctl_->size > 0) {
        const Meta& o = at(0);
        const bool overlaps = o.pos < pos + maxD && pos < o.pos + o.len;
        const bool skipped = pos < ctl_->writePos && o.pos >= ctl_->writePos;  // tail region left on wrap
        if (!overlaps && !skipped) break;
        evictOldest();
    }
    if (ctl_->size + 1 >= ctl_->metaCount) evictOldest();
    reservedPos_ = pos;
    return std::span<std::byte>(storage_ + pos, maxD);
}

void RetransmitRing::commit(Offset first, std::uint32_t count, std::size_t len) {
    if (len > ctl_->maxDatagram) throw std::logic_error("RetransmitRing::commit: datagram larger than reserved");
    if (count == 0) return;
    meta_[(ctl_->head + ctl_->size) % ctl_->metaCount] = Meta{first.get(), count, static_cast<std::uint32_t>(len), reservedPos_, 0};
    // The entry is complete before it is counted: a crash in between leaves it outside the ring.
    std::atomic_signal_fence(std::memory_order_seq_cst);
    ++ctl_->size;
    ctl_->used += len;
    ctl_->writePos = reservedPos_ + len;
    ctl_->next = first.get() + count;
}

std::optional<RetransmitRing::Entry> RetransmitRing::entry(std::size_t index) {
    if (index >= ctl_->size) return std::nullopt;
    Meta& m = at(index);
    return Entry{Offset{m.first}, m.count, std::span<std::byte>(storage_ + m.pos, m.len), m.lastRetransmitNs, index};
}

std::optional<RetransmitRing::Entry> RetransmitRing::find(Offset o) {
    if (ctl_->size == 0 || o.get() < at(0).first || o.get() >= ctl_->next) return std::nullopt;
    std::size_t lo = 0;
    std::size_t hi = ctl_->size;
    while (hi - lo > 1) {  // last entry with first <= o
        const std::size_t mid = (lo + hi) / 2;
        if (at(mid).first <= o.get()) lo = mid;
        else hi = mid;
    }
    const Meta& m = at(lo);
    if (o.get() >= m.first + m.count) return std::nullopt;
    return entry(lo);
}

void RetransmitRing::markRetransmitted(std::size_t index, std::uint64_t nowNs) {
    if (index < ctl_->size) at(index).lastRetransmitNs = nowNs;
}

}  // namespace seqcast::sequencer
