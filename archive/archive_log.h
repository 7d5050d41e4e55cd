// The archive log: a preallocated ring-buffer file holding the stream's DATA datagrams exactly as
// received (CRC intact), written through io_uring in batches from registered buffers with several
// writes in flight, with an offset index, a durability watermark and crash recovery.
//
// File: a 4 KiB header (configuration and checkpoint), then `capacity` bytes of data ring split
// into segments. Each record is {magic, length, logical position} + the datagram, padded to 8 bytes;
// records never cross a segment. Positions are logical (they grow forever); the physical place is
// position % capacity, and the position stored in each record tells a current record from one
// left by an earlier lap. Writing into a segment drops the records of its previous lap: retention
// is the ring's capacity minus at most one segment.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "archive/file_io.h"
#include "fabric/result.h"
#include "fabric/types.h"

namespace seqcast::archive {

enum class Durability : std::uint8_t { None, Interval, Batch };
Result<Durability> parseDurability(const std::string& s);

struct ArchiveConfig {
    std::string path;
    StreamId stream{1};
    std::uint64_t capacity = 1ull << 30;      // data ring bytes (a multiple of segmentBytes)
    std::uint64_t segmentBytes = 16u << 20;
    Durability durability = Durability::Interval;
    std::uint64_t syncIntervalNs = 10'000'000;
    bool direct = false;                      // O_DIRECT
    bool preferUring = true;
    std::size_t stageBytes = 1u << 20;        // one write buffer
    unsigned stages = 8;                      // write buffers (writes in flight)
    std::size_t maxDatagram = 65536;

    Status validate() const;
};

inline constexpr std::uint32_t kRecordMagic = 0x524C5153u;  // "SQLR"
inline constexpr std::uint32_t kRecordSkip = 0xFFFFFFFFu;   // length of a segment-end filler
inline constexpr std::uint32_t kRecordGap = 0xFFFFFFFEu;    // a gap record: {from u64, to u64} never received
inline constexpr std::size_t kRecordHeader = 16;
inline constexpr std::size_t kLogHeaderBytes = 4096;

struct LogHeader {
    std::uint64_t magic;
    std::uint32_t version;
    std::uint32_t stream;
    std::uint64_t capacity;
    std::uint64_t segmentBytes;
    std::uint64_t oldestSegment;  // checkpoint: logical start of the oldest live segment
    std::uint64_t writePos;       // checkpoint: logical write position that was durable
    std::uint64_t nextOffset;     // checkpoint: offset after the last durable record
};

struct LogRecordView {
    std::uint64_t pos;  // logical position of the record
    std::span<const std::byte> datagram;
    Offset first;
    std::uint32_t count;
    bool gap = false;          // a gap record: offsets [first, gapEnd) were never received
    std::uint64_t gapEnd = 0;
};

// Walks the records in `chunk` read from logical position `chunkPos`; stops at the first record
// that is incomplete in the chunk, damaged, from another lap, or at a segment end. Returns the
// position where reading should go on, and says why it stopped.
enum class ChunkStop : std::uint8_t { End, SegmentEnd, Stale, Corrupt, Stopped };
struct ChunkResult {
    std::uint64_t nextPos;
    ChunkStop stop;
};
ChunkResult parseChunk(std::span<const std::byte> chunk, std::uint64_t chunkPos, std::uint64_t segmentBytes,
                       std::size_t maxDatagram, const std::function<bool(const LogRecordView&)>& fn);

class ArchiveLog {
public:
    using Progress = std::function<void(double fraction)>;
    static Result<std::unique_ptr<ArchiveLog>> open(const ArchiveConfig& cfg, const Progress& progress = {});
    ~ArchiveLog();

    enum class Append : std::uint8_t { Ok, Busy, Discontinuous, TooLarge, Failed };
    // Appends one verified DATA datagram holding offsets [first, first + count). It must continue
    // the log (first <= next < first + count) unless the log is empty; Busy: every write buffer
    // is in flight (try again after poll()).
    Append append(std::span<const std::byte> datagram, Offset first, std::uint32_t count);
    // Records that offsets [next, to) are gone for good (never received): the log continues at `to`.
    // Kept as a gap marker in the index so replays report them as lost rather than serving a hole.
    void skipTo(Offset to);

    struct ReadDone {
        unsigned slot;
        int result;  // bytes read or -errno
    };
    // Submits staged data, syncs per the durability mode, reaps writes and reads. Returns work.
    int poll(std::uint64_t nowNs, std::vector<ReadDone>* reads = nullptr);
    // Submits what is staged and waits for every operation in flight (no sync): the write buffers
    // are all free afterwards. For a stop with received data still waiting for a buffer.
    void waitWrites();
    // Writes out everything staged and waits for it (and a sync unless durability is None).
    Status flush();

    // Replay reads: slot in [0, kReadSlots). Reads stop at what has been written.
    static constexpr unsigned kReadSlots = 64;
    bool submitRead(unsigned slot, std::uint64_t pos, std::span<std::byte> into);
    std::size_t readableBytes(std::uint64_t pos, std::size_t want) const;

    struct Locate {
        enum class Kind : std::uint8_t { Found, Overwritten, BeyondHead, Lost } kind;
        std::uint64_t pos;  // Found: where to start reading (records before `o` may come first)
    };
    Locate locate(Offset o) const;

    bool empty() const noexcept { return index_.empty(); }
    Offset earliest() const noexcept;
    Offset next() const noexcept { return Offset{next_}; }
    Offset written() const noexcept { return Offset{writtenOffset_}; }  // in the file (page cache)
    Offset durable() const noexcept { return Offset{durableOffset_}; }  // written and fdatasync'ed
    std::uint64_t writePos() const noexcept { return writePos_; }
    std::uint64_t writtenPos() const noexcept { return writtenPos_; }
    std::uint64_t segmentBytes() const noexcept { return cfg_.segmentBytes; }
    std::size_t maxDatagram() const noexcept { return cfg_.maxDatagram; }
    bool usingUring() const noexcept { return io_->usingUring(); }
    bool recovered() const noexcept { return recovered_; }
    std::uint64_t recoveredRecords() const noexcept { return recoveredRecords_; }
    std::uint64_t truncatedBytes() const noexcept { return truncatedBytes_; }
    // Damaged records found inside the written log at recovery (skipped; their offsets are lost).
    std::uint64_t damagedRecords() const noexcept { return damagedRecords_; }
    // A failed write or sync (e.g. disk full, I/O error): recording must stop.
    const std::string& failure() const noexcept { return failure_; }
    bool lostRange(Offset o, Offset& end) const;  // o inside a recorded gap: end of that gap
    // A damaged span recovery skipped starts at log position `pos`: where the next intact record is.
    bool holeAt(std::uint64_t pos, std::uint64_t& next) const;

private:
    struct IndexEntry {
        std::uint64_t first;  // first offset of the first record starting in this block
        std::uint64_t pos;
    };
    struct InFlight {
        unsigned buf;
        std::uint64_t endPos;
        std::uint64_t endOffset;
        bool synced;
        bool done;
    };
    ArchiveLog(const ArchiveConfig& cfg);
    Status recover(const Progress& progress);
    void enterSegment(std::uint64_t segStart);
    bool makeRoom(std::uint64_t recLen);
    bool writePendingGap();
    bool ensureStage();
    int complete(std::vector<ReadDone>* reads);  // handles the completions in done_
    void submitStage();
    void writeCheckpoint();
    void putBytes(std::uint64_t pos, std::span<const std::byte> b);
    std::uint64_t phys(std::uint64_t pos) const noexcept { return kLogHeaderBytes + pos % cfg_.capacity; }

    ArchiveConfig cfg_;
    std::unique_ptr<archive::FileIo> io_;
    std::vector<std::byte*> bufs_;
    std::byte* headerBuf_ = nullptr;
    std::vector<bool> bufBusy_;
    std::deque<InFlight> inflight_;
    int stage_ = -1;              // buffer being filled
    std::uint64_t stagePos_ = 0;  // logical position of the stage buffer's first byte
    std::uint64_t stageFill_ = 0; // bytes staged in it
    std::uint64_t stageSubmitted_ = 0;
    std::vector<std::byte> tail_;  // direct mode: the partial last block, carried into the next write

    std::deque<IndexEntry> index_;
    std::deque<std::pair<std::uint64_t, std::uint64_t>> gaps_;  // [from, to) never recorded
    std::uint64_t pendingGapFrom_ = 0, pendingGapTo_ = 0;       // a gap record not yet staged
    std::deque<std::pair<std::uint64_t, std::uint64_t>> holes_; // damaged log spans [from, to) skipped at recovery
    std::uint64_t writePos_ = 0;
    std::uint64_t writtenPos_ = 0;
    std::uint64_t oldestSegment_ = 0;
    std::uint64_t enteredSegment_ = 0;  // logical start of the segment being written
    std::uint64_t next_ = 0;
    std::uint64_t writtenOffset_ = 0;
    std::uint64_t durableOffset_ = 0;
    std::uint64_t syncPendingOffset_ = 0;
    std::uint64_t syncPendingPos_ = 0;
    bool syncInFlight_ = false;
    bool checkpointInFlight_ = false;
    std::uint64_t lastSyncNs_ = 0;
    bool recovered_ = false;
    std::uint64_t recoveredRecords_ = 0;
    std::uint64_t truncatedBytes_ = 0;
    std::uint64_t damagedRecords_ = 0;
    std::string failure_;
    std::vector<archive::FileIo::Completion> done_;
};

}  // namespace seqcast::archive
