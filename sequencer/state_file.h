// The sequencer's state file: a memory-mapped file holding the epoch, the next offset, every
// publisher's dedup position and the retransmit ring. Stores go straight to the page cache, so a
// sequencer killed at any instruction (SIGKILL, abort) restarts from exactly where it was; with
// `sync` the file is also msync'ed so a power loss keeps it too (at a cost per batch). The file is
// locked while open (fabric/mapped_file.h): a second sequencer on the same state is refused (EBUSY).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

#include "fabric/mapped_file.h"
#include "fabric/result.h"
#include "fabric/types.h"

namespace seqcast::sequencer {

inline constexpr std::uint32_t kAckMemory = 4096;  // pub_seq -> offset answers kept per publisher

struct StateHeader {
    std::uint64_t magic;
    std::uint32_t version;
    std::uint32_t streamId;
    std::uint32_t epoch;
    std::uint32_t maxPublishers;
    std::uint64_t ringBytes;
    std::uint64_t maxDatagram;
    std::uint64_t nextOffset;
    std::uint64_t starts;
    // HA: 1 while a standby rebuilds this state from its leader's snapshot (the ring and the
    // publisher positions do not yet agree); a sequencer restarted on such a file may not lead
    // from it. 0 in files written before HA (their state is whole).
    std::uint64_t haIncomplete;
    // HA: offsets below this are known released to the group (a leader's own releases, or what a
    // standby's leader last said it released); a sequencer that takes the stream over re-sends
    // what it holds from here on.
    std::uint64_t haReleased;
};

struct PublisherRecord {
    std::uint32_t id;
    std::uint32_t used;
    std::uint64_t nextPubSeq;     // next message expected
    std::uint32_t nextFrag;       // bytes of message nextPubSeq already sequenced
    std::uint32_t reserved;
    std::uint64_t lastActiveNs;   // monotonic ns of its last sequenced batch (for a post-mortem; expiry
                                  // uses the running sequencer's clock: recovered publishers count as
                                  // active when it restarts)
    std::uint64_t ackOffsets[kAckMemory];  // offset of message s at [s % kAckMemory]
};

struct StateLayout {
    std::uint32_t maxPublishers;
    std::size_t ringBytes;
    std::size_t maxDatagram;
    std::size_t publishersOffset() const noexcept;
    std::size_t ringOffset() const noexcept;
    std::size_t ringRegion() const noexcept;
    std::size_t total() const noexcept;
};

class StateFile {
public:
    // Opens (or creates) `path`; an empty path keeps the state in anonymous memory. A state file
    // another process holds is refused with EBUSY.
    static Result<StateFile> open(const std::string& path, StreamId stream, const StateLayout& layout);
    StateFile(StateFile&& o) noexcept;
    StateFile& operator=(StateFile&&) = delete;
    ~StateFile() = default;

    bool recovered() const noexcept { return recovered_; }  // an existing state was found
    StateHeader& header() noexcept { return *header_; }
    PublisherRecord* publishers() noexcept { return pubs_; }
    std::span<std::byte> ringRegion() noexcept { return ring_; }
    Status sync() noexcept;
    const std::string& path() const noexcept { return path_; }

private:
    explicit StateFile(MappedFile file) : file_(std::move(file)) {}
    std::string path_;
    MappedFile file_;
    bool recovered_ = false;
    StateHeader* header_ = nullptr;
    PublisherRecord* pubs_ = nullptr;
    std::span<std::byte> ring_;
};

}  // namespace seqcast::sequencer
