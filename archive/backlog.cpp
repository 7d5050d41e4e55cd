#include "archive/backlog.h"

#include <sys/mman.h>

#include <algorithm>
#include <cstring>
#include <new>

namespace seqcast::archive {

namespace {
constexpr std::size_t pad8(std::size_t n) { return (n + 7) & ~std::size_t{7}; }
}  // namespace

void Backlog::Unmap::operator()(std::byte* p) const noexcept { ::munmap(p, kChunkBytes); }

Backlog::Memory Backlog::map() {
    void* p = ::mmap(nullptr, kChunkBytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
    if (p == MAP_FAILED) throw std::bad_alloc();
    return Memory(static_cast<std::byte*>(p));
}

Backlog::~Backlog() = default;

bool Backlog::push(std::span<const std::byte> dg) {
    if (dg.empty() || dg.size() > kMaxDatagram) return false;
    append(dg, 0);
    bytes_ += dg.size();
    peak_ = std::max(peak_, bytes_);
    return true;
}

void Backlog::pushGap(std::uint64_t gapTo) { append({}, gapTo); }

void Backlog::append(std::span<const std::byte> dg, std::uint64_t gapTo) {
    const std::size_t need = kHeader + pad8(dg.size());
    if (chunks_.empty() || kChunkBytes - chunks_.back().tail < need) {
        Chunk c;
        if (!spare_.empty()) {
            c.data = std::move(spare_.back());
            spare_.pop_back();
        } else {
            c.data = map();
        }
        chunks_.push_back(std::move(c));
    }
    Chunk& c = chunks_.back();
    const auto len = static_cast<std::uint32_t>(dg.size());
    const std::uint32_t reserved = 0;
    std::memcpy(c.data.get() + c.tail, &len, 4);
    std::memcpy(c.data.get() + c.tail + 4, &reserved, 4);
    std::memcpy(c.data.get() + c.tail + 8, &gapTo, 8);
    if (!dg.empty()) std::memcpy(c.data.get() + c.tail + kHeader, dg.data(), dg.size());
    c.tail += need;
    ++entries_;
}

Backlog::Entry Backlog::front() const {
    const Chunk& c = chunks_.front();
    std::uint32_t len = 0;
    std::uint64_t gapTo = 0;
    std::memcpy(&len, c.data.get() + c.head, 4);
    std::memcpy(&gapTo, c.data.get() + c.head + 8, 8);
    return Entry{std::span<const std::byte>(c.data.get() + c.head + kHeader, len), gapTo};
}

void Backlog::pop() {
    Chunk& c = chunks_.front();
    std::uint32_t len = 0;
    std::memcpy(&len, c.data.get() + c.head, 4);
    c.head += kHeader + pad8(len);
    bytes_ -= len;
    --entries_;
    if (c.head == c.tail) {
        if (spare_.size() < kSpareChunks) spare_.push_back(std::move(c.data));
        chunks_.pop_front();
    }
}

}  // namespace seqcast::archive
