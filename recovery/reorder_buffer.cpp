#include "recovery/reorder_buffer.h"

#include <cstring>

namespace seqcast::recovery {

ReorderBuffer::ReorderBuffer(std::size_t maxBytes, std::size_t maxDatagram)
    : maxDatagram_(maxDatagram), arena_((maxBytes / maxDatagram < 4 ? 4 : maxBytes / maxDatagram) * maxDatagram),
      slots_(arena_.size() / maxDatagram) {
    free_.reserve(slots_.size());
    order_.reserve(slots_.size());
    for (std::size_t i = slots_.size(); i-- > 0;) free_.push_back(static_cast<std::uint32_t>(i));
}

void ReorderBuffer::releasePending() {
    if (pendingRelease_ >= 0) {
        free_.push_back(static_cast<std::uint32_t>(pendingRelease_));
        pendingRelease_ = -1;
    }
}

ReorderBuffer::Insert ReorderBuffer::insert(Offset first, std::uint32_t count, std::span<const std::byte> bytes) {
    releasePending();
    if (bytes.size() > maxDatagram_) return Insert::TooLarge;
    // Find the position (order_ is descending by first); reject one that starts at an offset held.
    std::size_t pos = order_.size();
    while (pos > 0 && slots_[order_[pos - 1]].first < first.get()) --pos;
    if (pos > 0 && slots_[order_[pos - 1]].first == first.get()) return Insert::Duplicate;
    if (pos < order_.size()) {
        // The next-lower datagram already covers `first`.
        const Slot& lower = slots_[order_[pos]];
        if (lower.first + lower.count > first.get()) return Insert::Duplicate;
    }
    if (free_.empty()) return Insert::Full;
    const std::uint32_t id = free_.back();
    free_.pop_back();
    slots_[id] = Slot{first.get(), count, static_cast<std::uint32_t>(bytes.size())};
    std::memcpy(arena_.data() + std::size_t{id} * maxDatagram_, bytes.data(), bytes.size());
    order_.insert(order_.begin() + static_cast<std::ptrdiff_t>(pos), id);
    return Insert::Stored;
}

Offset ReorderBuffer::lowestFirst() const noexcept { return Offset{slots_[order_.back()].first}; }

std::uint64_t ReorderBuffer::lowestEnd() const noexcept {
    const Slot& s = slots_[order_.back()];
    return s.first + s.count;
}

std::span<const std::byte> ReorderBuffer::popLowest() {
    releasePending();
    const std::uint32_t id = order_.back();
    order_.pop_back();
    pendingRelease_ = id;
    return std::span<const std::byte>(arena_.data() + std::size_t{id} * maxDatagram_, slots_[id].len);
}

std::size_t ReorderBuffer::discardBelow(Offset next) {
    releasePending();
    std::size_t n = 0;
    while (!order_.empty()) {
        const Slot& s = slots_[order_.back()];
        if (s.first + s.count > next.get()) break;
        free_.push_back(order_.back());
        order_.pop_back();
        ++n;
    }
    return n;
}

void ReorderBuffer::clear() {
    releasePending();
    for (auto id : order_) free_.push_back(id);
    order_.clear();
}

}  // namespace seqcast::recovery
