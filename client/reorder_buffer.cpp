#include "client/reorder_buffer.h"

#include <sys/mman.h>

#include <cstring>
#include <new>

namespace seqcast::client {

namespace {
std::byte* mapArena(std::size_t bytes) {
    void* p = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) throw std::bad_alloc();  // as the vector it replaces would
    return static_cast<std::byte*>(p);
}
}  // namespace

void ReorderBuffer::Unmap::operator()(std::byte* p) const noexcept { ::munmap(p, bytes); }

ReorderBuffer::ReorderBuffer(std::size_t maxBytes, std::size_t maxDatagram)
    : maxDatagram_(maxDatagram),
      arenaBytes_((maxBytes / maxDatagram < 4 ? 4 : maxBytes / maxDatagram) * maxDatagram),
      arena_(mapArena(arenaBytes_), Unmap{arenaBytes_}),
      slots_(arenaBytes_ / maxDatagram) {
    free_.reserve(slots_.size());
    order_.resize(slots_.size());
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
    const std::uint64_t f = first.get();
    // Position: the first held datagram starting at or above `first` (the common case, above
    // everything held, without a search).
    std::size_t pos = count_;
    if (count_ > 0 && slotAt(count_ - 1).first >= f) {
        std::size_t lo = 0, hi = count_;
        while (lo < hi) {
            const std::size_t mid = lo + (hi - lo) / 2;
            if (slotAt(mid).first < f) lo = mid + 1;
            else hi = mid;
        }
        pos = lo;
        if (slotAt(pos).first == f) return Insert::Duplicate;  // starts at an offset held
    }
    if (pos > 0) {
        // The next-lower datagram already covers `first`.
        const Slot& lower = slotAt(pos - 1);
        if (lower.first + lower.count > f) return Insert::Duplicate;
    }
    if (free_.empty()) return Insert::Full;
    const std::uint32_t id = free_.back();
    free_.pop_back();
    slots_[id] = Slot{f, count, static_cast<std::uint32_t>(bytes.size())};
    std::memcpy(arena_.get() + std::size_t{id} * maxDatagram_, bytes.data(), bytes.size());
    // Room at `pos`: shift the shorter side by one.
    if (pos < count_ - pos) {
        head_ = head_ == 0 ? order_.size() - 1 : head_ - 1;
        for (std::size_t i = 0; i < pos; ++i) at(i) = at(i + 1);
    } else {
        for (std::size_t i = count_; i > pos; --i) at(i) = at(i - 1);
    }
    at(pos) = id;
    ++count_;
    return Insert::Stored;
}

Offset ReorderBuffer::lowestFirst() const noexcept { return Offset{slots_[order_[head_]].first}; }

std::uint64_t ReorderBuffer::lowestEnd() const noexcept {
    const Slot& s = slots_[order_[head_]];
    return s.first + s.count;
}

std::span<const std::byte> ReorderBuffer::popLowest() {
    releasePending();
    const std::uint32_t id = order_[head_];
    head_ = head_ + 1 == order_.size() ? 0 : head_ + 1;
    --count_;
    pendingRelease_ = id;
    return std::span<const std::byte>(arena_.get() + std::size_t{id} * maxDatagram_, slots_[id].len);
}

std::size_t ReorderBuffer::discardBelow(Offset next) {
    releasePending();
    std::size_t n = 0;
    while (count_ > 0) {
        const std::uint32_t id = order_[head_];
        const Slot& s = slots_[id];
        if (s.first + s.count > next.get()) break;
        free_.push_back(id);
        head_ = head_ + 1 == order_.size() ? 0 : head_ + 1;
        --count_;
        ++n;
    }
    return n;
}

void ReorderBuffer::clear() {
    releasePending();
    for (std::size_t i = 0; i < count_; ++i) free_.push_back(at(i));
    head_ = 0;
    count_ = 0;
}

}  // namespace seqcast::client
