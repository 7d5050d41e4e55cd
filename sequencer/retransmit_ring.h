// Recently sent datagrams, kept in a byte ring of fixed capacity so NAKs can be answered.
// Datagrams are stored exactly as sent; the oldest are overwritten as new ones are written.
//
// The ring lives in one caller-provided memory region (control block, index, storage). The
// sequencer maps that region from its state file, so a restarted sequencer finds its ring again
// (recover()) and can still answer NAKs for offsets sent before a crash.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <new>
#include <optional>
#include <span>

#include "fabric/types.h"

namespace seqcast::sequencer {

class RetransmitRing {
public:
    struct Control {
        std::uint64_t magic;
        std::uint64_t capacity;     // storage bytes
        std::uint64_t maxDatagram;
        std::uint64_t metaCount;
        std::uint64_t head;         // index of the oldest entry
        std::uint64_t size;         // entries
        std::uint64_t writePos;
        std::uint64_t used;         // bytes held
        std::uint64_t next;         // one past the newest offset
    };
    struct Meta {
        std::uint64_t first;
        std::uint32_t count;
        std::uint32_t len;
        std::uint64_t pos;
        std::uint64_t lastRetransmitNs;
    };

    // Bytes of region needed for `capacityBytes` of storage.
    static std::size_t regionSize(std::size_t capacityBytes, std::size_t maxDatagram) noexcept;

    // A ring in its own heap memory.
    RetransmitRing(std::size_t capacityBytes, std::size_t maxDatagram);
    // A ring over an external region of regionSize() bytes. recover=false formats it; recover=true
    // keeps what a previous owner left if the control block matches, and drops every entry from
    // the first one whose bytes fail `verify` (CRC, offsets) or break offset continuity.
    using Verify = bool (*)(std::span<const std::byte> datagram, std::uint64_t first, std::uint32_t count);
    RetransmitRing(std::span<std::byte> region, std::size_t capacityBytes, std::size_t maxDatagram, bool recover,
                   Verify verify);

    // Writable space for the next datagram (maxDatagram bytes), evicting the oldest as needed.
    std::span<std::byte> reserve();
    // Stores the reserved datagram: `len` bytes holding offsets [first, first + count).
    void commit(Offset first, std::uint32_t count, std::size_t len);

    struct Entry {
        Offset first;
        std::uint32_t count;
        std::span<std::byte> bytes;
        std::uint64_t lastRetransmitNs;
        std::size_t index;  // position from the oldest; valid until the ring changes
    };
    std::optional<Entry> find(Offset o);
    std::optional<Entry> entry(std::size_t index);
    void markRetransmitted(std::size_t index, std::uint64_t nowNs);

    bool empty() const noexcept { return ctl_->size == 0; }
    Offset oldest() const noexcept;   // lowest retained offset (== next() when empty)
    Offset next() const noexcept { return Offset{ctl_->next}; }
    void resetTo(Offset o) noexcept;  // empty, next offset o
    std::size_t datagrams() const noexcept { return ctl_->size; }
    std::size_t bytesUsed() const noexcept { return ctl_->used; }
    std::size_t capacity() const noexcept { return ctl_->capacity; }
    std::size_t droppedOnRecover() const noexcept { return droppedOnRecover_; }

private:
    void layout(std::span<std::byte> region, std::size_t capacityBytes, std::size_t maxDatagram);
    void format();
    void evictOldest();
    Meta& at(std::size_t i) { return meta_[(ctl_->head + i) % ctl_->metaCount]; }
    const Meta& at(std::size_t i) const { return meta_[(ctl_->head + i) % ctl_->metaCount]; }

    // Allocated with new (std::align_val_t{64}): must be freed with the matching aligned delete.
    struct AlignedDelete {
        void operator()(std::byte* p) const noexcept { ::operator delete[](p, std::align_val_t{64}); }
    };
    std::unique_ptr<std::byte[], AlignedDelete> owned_;
    Control* ctl_ = nullptr;
    Meta* meta_ = nullptr;
    std::byte* storage_ = nullptr;
    std::size_t reservedPos_ = 0;
    std::size_t droppedOnRecover_ = 0;
};

}  // namespace seqcast::sequencer
