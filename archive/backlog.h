// Backlog: received datagrams (and loss markers) waiting, in stream order, for the archive log to
// take them: while its write buffers are all in flight, because the disk is slower than the stream
// for a while or stalls outright. The archiver keeps receiving into it instead of leaving the
// datagrams in the socket queue, which overflows in a fraction of a second at full rate.
//
// Entries are packed into 1 MiB chunks mapped as the backlog grows and unmapped when it shrinks
// (kSpareChunks are kept for reuse), so a steady stream costs no allocation per datagram. A chunk
// is mapped with its pages populated in one call: touching fresh memory a page at a time costs a
// fault per page, which on a virtual machine measured 4 ms per MiB (~17 us a page) against
// 0.2 ms for a populated mapping, and would slow the receive loop exactly when it must keep up.
// Pure logic: no I/O.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <span>
#include <vector>

namespace seqcast::archive {

class Backlog {
public:
    static constexpr std::size_t kChunkBytes = 1u << 20;
    static constexpr std::size_t kMaxDatagram = kChunkBytes - 64;
    static constexpr std::size_t kSpareChunks = 8;

    struct Entry {
        std::span<const std::byte> bytes;  // a datagram, or empty for a loss marker
        std::uint64_t gapTo = 0;           // loss marker: offsets up to here were never received
    };

    Backlog() = default;
    ~Backlog();
    Backlog(const Backlog&) = delete;
    Backlog& operator=(const Backlog&) = delete;

    // Appends a copy of a datagram (at most kMaxDatagram bytes; longer ones are refused: false).
    // Never refuses for want of room: the caller bounds the backlog by not receiving more while
    // bytes() is at its limit (a datagram already received must not be dropped). Throws
    // std::bad_alloc when no memory can be mapped, as a container would.
    bool push(std::span<const std::byte> dg);
    // Appends a loss marker: offsets below gapTo, after the datagrams before it, were never received.
    void pushGap(std::uint64_t gapTo);

    bool empty() const noexcept { return entries_ == 0; }
    std::size_t entries() const noexcept { return entries_; }
    std::size_t bytes() const noexcept { return bytes_; }        // datagram bytes held
    std::size_t allocated() const noexcept { return (chunks_.size() + spare_.size()) * kChunkBytes; }
    std::size_t peakBytes() const noexcept { return peak_; }

    Entry front() const;  // requires !empty()
    void pop();           // requires !empty()

private:
    struct Unmap {
        void operator()(std::byte* p) const noexcept;
    };
    using Memory = std::unique_ptr<std::byte, Unmap>;
    static Memory map();
    struct Chunk {
        Memory data;
        std::size_t head = 0;  // first unread entry
        std::size_t tail = 0;  // end of the last entry written
    };
    static constexpr std::size_t kHeader = 16;  // u32 length, u32 reserved, u64 gapTo
    void append(std::span<const std::byte> dg, std::uint64_t gapTo);

    std::deque<Chunk> chunks_;
    std::vector<Memory> spare_;
    std::size_t entries_ = 0;
    std::size_t bytes_ = 0;
    std::size_t peak_ = 0;
};

}  // namespace seqcast::archive
