#include "archive/archive_log.h"

#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>

#include "fabric/wire.h"

namespace seqcast::archive {

namespace {
constexpr std::uint64_t kLogMagic = 0x31474F4C51455153ull;  // "SQELOG1"
constexpr std::uint32_t kLogVersion = 2;  // 2: records are wire v2 datagrams (entries carry the publisher's CRC)
constexpr std::uint64_t kBlock = 4096;
constexpr std::uint64_t kIndexBlock = 64 * 1024;  // one index entry per 64 KiB of log
constexpr unsigned kHeaderTag = 16;
constexpr unsigned kSyncTag = 17;
constexpr unsigned kReadTag0 = 32;

std::uint64_t pad8(std::uint64_t v) { return (v + 7) & ~std::uint64_t{7}; }
std::uint64_t roundUp(std::uint64_t v, std::uint64_t a) { return (v + a - 1) / a * a; }

struct RecordHeader {
    std::uint32_t magic;
    std::uint32_t len;
    std::uint64_t pos;
};
static_assert(sizeof(RecordHeader) == kRecordHeader);

std::byte* alignedAlloc(std::size_t n) {
    void* p = nullptr;
    if (::posix_memalign(&p, kBlock, roundUp(n, kBlock)) != 0) return nullptr;
    std::memset(p, 0, roundUp(n, kBlock));
    return static_cast<std::byte*>(p);
}
}  // namespace

Result<Durability> parseDurability(const std::string& s) {
    if (s == "none") return Durability::None;
    if (s == "interval") return Durability::Interval;
    if (s == "batch") return Durability::Batch;
    return failInvalid("durability '" + s + "': expected none, interval or batch");
}

Status ArchiveConfig::validate() const {
    if (path.empty()) return failInvalid("archive log path is empty");
    if (segmentBytes < (1u << 20) || segmentBytes % kBlock != 0) return failInvalid("segment size must be a multiple of 4096, at least 1 MiB");
    if (capacity < 4 * segmentBytes || capacity % segmentBytes != 0)
        return failInvalid("log capacity must be a multiple of the segment size and at least 4 segments (" +
                           std::to_string(4 * segmentBytes) + " bytes)");
    if (stageBytes < 64 * 1024 || stageBytes % kBlock != 0 || stageBytes > segmentBytes)
        return failInvalid("write buffer must be a multiple of 4096 between 64 KiB and the segment size");
    if (stages < 2 || stages > 16) return failInvalid("write buffers must be 2..16");
    if (maxDatagram < 128 || maxDatagram + kRecordHeader > stageBytes) return failInvalid("max datagram must fit a write buffer");
    if (durability == Durability::Interval && syncIntervalNs == 0) return failInvalid("sync interval must be positive");
    return {};
}

ChunkResult parseChunk(std::span<const std::byte> chunk, std::uint64_t chunkPos, std::uint64_t segmentBytes,
                       std::size_t maxDatagram, const std::function<bool(const LogRecordView&)>& fn) {
    std::uint64_t at = 0;
    for (;;) {
        const std::uint64_t pos = chunkPos + at;
        const std::uint64_t segEnd = (pos / segmentBytes + 1) * segmentBytes;
        if (segEnd - pos < kRecordHeader) return {segEnd, ChunkStop::SegmentEnd};
        if (chunk.size() - at < kRecordHeader) return {pos, ChunkStop::End};
        RecordHeader h;
        std::memcpy(&h, chunk.data() + at, sizeof h);
        if (h.magic != kRecordMagic || h.pos != pos) return {pos, h.magic == kRecordMagic ? ChunkStop::Stale : ChunkStop::Corrupt};
        if (h.len == kRecordSkip) return {segEnd, ChunkStop::SegmentEnd};
        if (h.len == kRecordGap) {
            const std::uint64_t len = pad8(kRecordHeader + 16);
            if (pos + len > segEnd) return {pos, ChunkStop::Corrupt};
            if (chunk.size() - at < kRecordHeader + 16) return {pos, ChunkStop::End};
            std::uint64_t range[2];
            std::memcpy(range, chunk.data() + at + kRecordHeader, sizeof range);
            if (range[1] <= range[0]) return {pos, ChunkStop::Corrupt};
            if (!fn(LogRecordView{pos, {}, Offset{range[0]}, 0, true, range[1]})) return {pos, ChunkStop::Stopped};
            at += len;
            if (at >= chunk.size()) return {chunkPos + at, ChunkStop::End};
            continue;
        }
        if (h.len > maxDatagram || pos + pad8(kRecordHeader + h.len) > segEnd) return {pos, ChunkStop::Corrupt};
        if (chunk.size() - at < kRecordHeader + h.len) return {pos, ChunkStop::End};
        const auto dg = chunk.subspan(at + kRecordHeader, h.len);
        wire::DatagramView v;
        if (wire::decode(dg, v) != wire::DecodeError::Ok || v.type != wire::FrameType::Data || v.count == 0)
            return {pos, ChunkStop::Corrupt};
        if (!fn(LogRecordView{pos, dg, v.firstOffset, v.count})) return {pos, ChunkStop::Stopped};
        at += pad8(kRecordHeader + h.len);
        if (at >= chunk.size()) return {chunkPos + at, ChunkStop::End};
    }
}

ArchiveLog::ArchiveLog(const ArchiveConfig& cfg) : cfg_(cfg) {}

ArchiveLog::~ArchiveLog() {
    if (io_) {
        std::vector<archive::FileIo::Completion> c;
        io_->drain(c);
    }
    io_.reset();
    for (auto* b : bufs_) std::free(b);
    std::free(headerBuf_);
}

Result<std::unique_ptr<ArchiveLog>> ArchiveLog::open(const ArchiveConfig& cfg, const Progress& progress) {
    if (auto st = cfg.validate(); !st) return fail(st.error());
    std::unique_ptr<ArchiveLog> log(new ArchiveLog(cfg));
    std::vector<std::span<std::byte>> regs;
    for (unsigned i = 0; i < cfg.stages; ++i) {
        log->bufs_.push_back(alignedAlloc(cfg.stageBytes));
        if (log->bufs_.back() == nullptr) return failErrno("allocate write buffers", ENOMEM);
        regs.emplace_back(log->bufs_.back(), cfg.stageBytes);
    }
    log->headerBuf_ = alignedAlloc(kLogHeaderBytes);
    regs.emplace_back(log->headerBuf_, kLogHeaderBytes);
    log->bufBusy_.assign(cfg.stages, false);
    archive::FileIoConfig fc;
    fc.path = cfg.path;
    fc.size = kLogHeaderBytes + cfg.capacity;
    fc.direct = cfg.direct;
    fc.preferUring = cfg.preferUring;
    auto io = archive::FileIo::open(fc, regs);
    if (!io) return fail(io.error().wrap("archive log"));
    log->io_ = std::move(*io);
    if (log->io_->isNew()) {
        log->writeCheckpoint();
        if (auto st = log->flush(); !st) return fail(st.error());
    } else if (auto st = log->recover(progress); !st) {
        return fail(st.error());
    }
    return log;
}

Status ArchiveLog::recover(const Progress& progress) {
    LogHeader h{};
    if (::pread(io_->fd(), headerBuf_, kLogHeaderBytes, 0) != static_cast<ssize_t>(kLogHeaderBytes))
        return failErrno("read the header of " + cfg_.path);
    std::memcpy(&h, headerBuf_, sizeof h);
    if (h.magic != kLogMagic) return failInvalid(cfg_.path + " is not a seqcast archive log");
    if (h.version != kLogVersion)
        return failInvalid(cfg_.path + " is a seqcast archive log of version " + std::to_string(h.version) + "; this seqcast reads version " +
                           std::to_string(kLogVersion) + (h.version < kLogVersion ? " (an older seqcast wrote it: replay it with that version, or record anew)" : ""));
    if (h.stream != cfg_.stream.get())
        return failInvalid(cfg_.path + " records stream " + std::to_string(h.stream) + ", not " + std::to_string(cfg_.stream.get()));
    if (h.capacity != cfg_.capacity || h.segmentBytes != cfg_.segmentBytes)
        return failInvalid(cfg_.path + " was made with another capacity or segment size");
    recovered_ = true;
    const std::uint64_t S = cfg_.segmentBytes;
    const std::uint64_t C = cfg_.capacity;
    const std::size_t chunkBytes = 4u << 20;
    std::byte* chunk = alignedAlloc(chunkBytes + kBlock);
    if (chunk == nullptr) return failErrno("allocate recovery buffer", ENOMEM);
    // Scan forward from the checkpoint's oldest segment. Segments overwritten since then hold
    // records of a later lap: skip them until a record of the expected lap starts one.
    std::uint64_t pos = h.oldestSegment - h.oldestSegment % S;
    bool started = false;
    std::uint64_t expect = 0;
    std::uint64_t lastIndexed = ~std::uint64_t{0};
    std::uint64_t segmentsTried = 0;
    const std::uint64_t scanStart = pos;
    bool stop = false;
    bool resync = false;  // after damage: the next intact record may start past a hole
    while (!stop) {
        const std::uint64_t segEnd = (pos / S + 1) * S;
        const std::uint64_t want = std::min<std::uint64_t>(chunkBytes, segEnd - pos);
        const std::uint64_t aligned = pos - pos % kBlock;
        const std::uint64_t lead = pos - aligned;
        const ssize_t r = ::pread(io_->fd(), chunk, roundUp(want + lead, kBlock), static_cast<off_t>(phys(aligned)));
        if (r < 0) {
            std::free(chunk);
            return failErrno("read " + cfg_.path);
        }
        const std::size_t got = static_cast<std::size_t>(r) > lead ? std::min<std::size_t>(static_cast<std::size_t>(r) - lead, want) : 0;
        const auto res = parseChunk(std::span<const std::byte>(chunk + lead, got), pos, S, cfg_.maxDatagram,
                                    [&](const LogRecordView& rec) {
                                        if (resync && started) {
                                            const std::uint64_t end = rec.gap ? rec.gapEnd : rec.first.get() + rec.count;
                                            if (end <= expect) return true;  // older than what we have
                                            if (rec.first.get() > expect) gaps_.emplace_back(expect, rec.first.get());
                                            if (rec.first.get() > expect) expect = rec.first.get();
                                            resync = false;
                                        }
                                        if (rec.gap) {
                                            if (started && rec.first.get() != expect) return false;
                                            if (!started) {
                                                started = true;
                                                oldestSegment_ = rec.pos - rec.pos % S;
                                            }
                                            gaps_.emplace_back(rec.first.get(), rec.gapEnd);
                                            expect = rec.gapEnd;
                                            return true;
                                        }
                                        const std::uint64_t end = rec.first.get() + rec.count;
                                        if (started && !(rec.first.get() <= expect && end > expect)) return false;
                                        if (!started) {
                                            started = true;
                                            oldestSegment_ = rec.pos - rec.pos % S;
                                        }
                                        if (rec.pos / kIndexBlock != lastIndexed) {
                                            index_.push_back(IndexEntry{rec.first.get(), rec.pos});
                                            lastIndexed = rec.pos / kIndexBlock;
                                        }
                                        expect = end;
                                        ++recoveredRecords_;
                                        return true;
                                    });
        switch (res.stop) {
            case ChunkStop::End:
                if (res.nextPos == pos) stop = true;  // nothing more in this chunk (e.g. zeroes)
                pos = res.nextPos;
                break;
            case ChunkStop::SegmentEnd:
                pos = res.nextPos;
                break;
            case ChunkStop::Stale:
            case ChunkStop::Corrupt:
            case ChunkStop::Stopped:
                if (!started && segmentsTried < C / S) {
                    // Not the start of the live data yet: try the next segment.
                    pos = segEnd;
                    ++segmentsTried;
                } else if (started && res.nextPos < h.writePos) {
                    // Damage inside what the checkpoint says was written: not a torn tail. Skip to
                    // the next intact record (in this chunk, else the next segment's first) and
                    // record the offsets in between as lost; everything after it is kept.
                    ++damagedRecords_;
                    std::uint64_t q = res.nextPos + 8;
                    bool found = false;
                    const std::uint64_t chunkEnd = pos + got;
                    for (; q + kRecordHeader <= chunkEnd && q < segEnd; q += 8) {
                        RecordHeader rh;
                        std::memcpy(&rh, chunk + lead + (q - pos), sizeof rh);
                        if (rh.magic != kRecordMagic || rh.pos != q) continue;
                        bool ok = false;
                        parseChunk(std::span<const std::byte>(chunk + lead + (q - pos), chunkEnd - q), q, S, cfg_.maxDatagram,
                                   [&](const LogRecordView&) {
                                       ok = true;
                                       return false;
                                   });
                        if (ok) {
                            found = true;
                            break;
                        }
                    }
                    if (!found) q = segEnd;
                    if (q >= h.writePos) {
                        pos = res.nextPos;
                        stop = true;
                    } else {
                        holes_.emplace_back(res.nextPos, q);
                        pos = q;
                        resync = true;
                    }
                } else {
                    pos = res.nextPos;
                    stop = true;
                }
                break;
        }
        if (pos - scanStart >= C + S) stop = true;  // a full lap: done
        if (progress) progress(std::min(1.0, static_cast<double>(pos - scanStart) / static_cast<double>(C)));
    }
    std::free(chunk);
    if (!started) {
        // Nothing valid: an empty log that continues after the checkpoint's offset.
        writePos_ = h.writePos;
        oldestSegment_ = writePos_ - writePos_ % S;
        next_ = h.nextOffset;
    } else {
        writePos_ = pos;
        next_ = expect;
    }
    // What lies between the tail and the end of its block is a torn or stale remainder.
    truncatedBytes_ = h.writePos > writePos_ ? h.writePos - writePos_ : 0;
    writtenPos_ = writePos_;
    writtenOffset_ = next_;
    durableOffset_ = next_;
    enteredSegment_ = writePos_ - writePos_ % S;
    // Start writing on a fresh, aligned position: the torn remainder is never read as a record
    // because its position field cannot match.
    writeCheckpoint();
    return flush();
}

Offset ArchiveLog::earliest() const noexcept { return Offset{index_.empty() ? next_ : index_.front().first}; }

bool ArchiveLog::lostRange(Offset o, Offset& end) const {
    for (const auto& [a, b] : gaps_)
        if (o.get() >= a && o.get() < b) {
            end = Offset{b};
            return true;
        }
    return false;
}

bool ArchiveLog::holeAt(std::uint64_t pos, std::uint64_t& next) const {
    for (const auto& [a, b] : holes_)
        if (pos >= a && pos < b) {
            next = b;
            return true;
        }
    return false;
}

ArchiveLog::Locate ArchiveLog::locate(Offset o) const {
    if (o.get() >= next_) return {Locate::Kind::BeyondHead, 0};
    if (index_.empty() || o.get() < index_.front().first) return {Locate::Kind::Overwritten, 0};
    Offset gapEnd;
    if (lostRange(o, gapEnd)) return {Locate::Kind::Lost, 0};
    auto it = std::upper_bound(index_.begin(), index_.end(), o.get(),
                               [](std::uint64_t v, const IndexEntry& e) { return v < e.first; });
    --it;
    return {Locate::Kind::Found, it->pos};
}

void ArchiveLog::enterSegment(std::uint64_t segStart) {
    const std::uint64_t S = cfg_.segmentBytes;
    const std::uint64_t C = cfg_.capacity;
    if (segStart + S > C) {
        const std::uint64_t boundary = segStart + S - C;  // everything below is the previous lap
        while (!index_.empty() && index_.front().pos < boundary) index_.pop_front();
        oldestSegment_ = std::max(oldestSegment_, boundary);
        const std::uint64_t low = index_.empty() ? next_ : index_.front().first;
        while (!gaps_.empty() && gaps_.front().second <= low) gaps_.pop_front();
    }
    writeCheckpoint();
}

bool ArchiveLog::ensureStage() {
    if (stage_ >= 0) return true;
    if (cfg_.direct && !inflight_.empty()) return false;  // O_DIRECT: one write at a time (the tail block is rewritten)
    for (unsigned b = 0; b < cfg_.stages; ++b) {
        if (bufBusy_[b]) continue;
        stage_ = static_cast<int>(b);
        if (cfg_.direct) {
            // Start on the block holding the write position, carrying its bytes forward.
            const std::uint64_t aligned = writePos_ - writePos_ % kBlock;
            const std::uint64_t lead = writePos_ - aligned;
            if (lead != 0 && !tail_.empty()) std::memcpy(bufs_[b], tail_.data(), lead);
            stagePos_ = aligned;
            stageFill_ = lead;
            stageSubmitted_ = 0;
        } else {
            stagePos_ = writePos_;
            stageFill_ = 0;
            stageSubmitted_ = 0;
        }
        return true;
    }
    return false;
}

void ArchiveLog::putBytes(std::uint64_t pos, std::span<const std::byte> b) {
    std::memcpy(bufs_[static_cast<unsigned>(stage_)] + (pos - stagePos_), b.data(), b.size());
    stageFill_ = std::max(stageFill_, pos - stagePos_ + b.size());
}

void ArchiveLog::submitStage() {
    if (stage_ < 0) return;
    const auto b = static_cast<unsigned>(stage_);
    if (stageFill_ == 0) {
        stage_ = -1;
        return;
    }
    std::uint64_t len = stageFill_;
    if (cfg_.direct) len = roundUp(stageFill_, kBlock);
    const bool sync = cfg_.durability == Durability::Batch;
    if (!io_->write(b, b, std::span<const std::byte>(bufs_[b], len), phys(stagePos_), sync)) return;  // queue full: retry later
    inflight_.push_back(InFlight{b, stagePos_ + stageFill_, next_, sync, false});
    bufBusy_[b] = true;
    if (cfg_.direct) {
        const std::uint64_t end = stagePos_ + stageFill_;
        const std::uint64_t lead = end % kBlock;
        tail_.assign(bufs_[b] + (end - lead - stagePos_), bufs_[b] + (end - stagePos_));
    }
    stage_ = -1;
}

bool ArchiveLog::makeRoom(std::uint64_t recLen) {
    const std::uint64_t S = cfg_.segmentBytes;
    const std::uint64_t segEnd = (writePos_ / S + 1) * S;
    if (writePos_ + recLen > segEnd) {
        // Close the segment with a filler (when one fits) and move to the next one.
        if (segEnd - writePos_ >= kRecordHeader) {
            if (stage_ >= 0 && writePos_ != stagePos_ + stageFill_) submitStage();
            if (!ensureStage()) return false;
            const RecordHeader skip{kRecordMagic, kRecordSkip, writePos_};
            putBytes(writePos_, std::as_bytes(std::span<const RecordHeader, 1>(&skip, 1)));
        }
        submitStage();
        writePos_ = segEnd;
    }
    // A stage never crosses a segment end or its own size.
    if (stage_ >= 0) {
        const std::uint64_t limit = std::min(stagePos_ + cfg_.stageBytes, (stagePos_ / S + 1) * S);
        if (writePos_ + recLen > limit || writePos_ != stagePos_ + stageFill_) submitStage();
    }
    if (!ensureStage()) return false;
    // Entering a segment drops what its previous lap held.
    const std::uint64_t seg = writePos_ - writePos_ % S;
    if (seg != enteredSegment_) {
        enteredSegment_ = seg;
        enterSegment(seg);
    }
    return true;
}

bool ArchiveLog::writePendingGap() {
    if (pendingGapTo_ == 0) return true;
    const std::uint64_t recLen = pad8(kRecordHeader + 16);
    if (!makeRoom(recLen)) return false;
    const RecordHeader h{kRecordMagic, kRecordGap, writePos_};
    putBytes(writePos_, std::as_bytes(std::span<const RecordHeader, 1>(&h, 1)));
    const std::uint64_t range[2] = {pendingGapFrom_, pendingGapTo_};
    putBytes(writePos_ + kRecordHeader, std::as_bytes(std::span<const std::uint64_t, 2>(range)));
    writePos_ += recLen;
    pendingGapFrom_ = pendingGapTo_ = 0;
    return true;
}

ArchiveLog::Append ArchiveLog::append(std::span<const std::byte> dg, Offset first, std::uint32_t count) {
    if (!failure_.empty()) return Append::Failed;
    if (dg.size() > cfg_.maxDatagram || count == 0) return Append::TooLarge;
    const bool haveAny = !index_.empty() || next_ != 0 || recovered_;
    if (haveAny && !(first.get() <= next_ && first.get() + count > next_)) return Append::Discontinuous;
    if (!writePendingGap()) return Append::Busy;
    const std::uint64_t recLen = pad8(kRecordHeader + dg.size());
    if (!makeRoom(recLen)) return Append::Busy;
    const RecordHeader h{kRecordMagic, static_cast<std::uint32_t>(dg.size()), writePos_};
    putBytes(writePos_, std::as_bytes(std::span<const RecordHeader, 1>(&h, 1)));
    putBytes(writePos_ + kRecordHeader, dg);
    static constexpr std::byte kZero[8] = {};
    const std::uint64_t padLen = recLen - kRecordHeader - dg.size();
    if (padLen != 0) putBytes(writePos_ + kRecordHeader + dg.size(), std::span<const std::byte>(kZero, padLen));
    if (index_.empty() || writePos_ / kIndexBlock != index_.back().pos / kIndexBlock)
        index_.push_back(IndexEntry{first.get(), writePos_});
    writePos_ += recLen;
    next_ = first.get() + count;
    return Append::Ok;
}

void ArchiveLog::skipTo(Offset to) {
    if (to.get() <= next_) return;
    // Kept in the log as a gap record, so recovery and replays know these offsets were never received.
    if (!gaps_.empty() && gaps_.back().second == next_) gaps_.back().second = to.get();
    else gaps_.emplace_back(next_, to.get());
    if (pendingGapTo_ == 0) pendingGapFrom_ = next_;
    pendingGapTo_ = to.get();
    next_ = to.get();
    (void)writePendingGap();  // or with the next append / poll
}

void ArchiveLog::writeCheckpoint() {
    if (checkpointInFlight_) return;
    LogHeader h{kLogMagic, kLogVersion, cfg_.stream.get(), cfg_.capacity, cfg_.segmentBytes, oldestSegment_,
                cfg_.durability == Durability::None ? writtenPos_ : std::min(writtenPos_, syncPendingPos_ > 0 ? syncPendingPos_ : writtenPos_),
                durableOffset_ > 0 ? durableOffset_ : writtenOffset_};
    std::memset(headerBuf_, 0, kLogHeaderBytes);
    std::memcpy(headerBuf_, &h, sizeof h);
    if (io_->write(kHeaderTag, cfg_.stages, std::span<const std::byte>(headerBuf_, kLogHeaderBytes), 0, false))
        checkpointInFlight_ = true;
}

int ArchiveLog::poll(std::uint64_t nowNs, std::vector<ReadDone>* reads) {
    int work = 0;
    if (pendingGapTo_ != 0 && failure_.empty()) (void)writePendingGap();
    if (stage_ >= 0 && stageFill_ > 0 && failure_.empty()) {
        submitStage();
        ++work;
    }
    if (cfg_.durability == Durability::Interval && !syncInFlight_ && writtenOffset_ > durableOffset_ &&
        nowNs - lastSyncNs_ >= cfg_.syncIntervalNs) {
        if (io_->sync(kSyncTag)) {
            syncInFlight_ = true;
            syncPendingOffset_ = writtenOffset_;
            syncPendingPos_ = writtenPos_;
            lastSyncNs_ = nowNs;
        }
    }
    done_.clear();
    io_->reap(done_);
    return work + complete(reads);
}

int ArchiveLog::complete(std::vector<ReadDone>* reads) {
    int work = 0;
    bool synced = false;
    for (const auto& c : done_) {
        ++work;
        if (c.tag < cfg_.stages) {
            bufBusy_[c.tag] = false;
            for (auto& f : inflight_)
                if (f.buf == c.tag && !f.done) {
                    f.done = true;
                    break;
                }
            if (c.result < 0 && failure_.empty())
                failure_ = "write to " + cfg_.path + " failed: " + std::strerror(-c.result);
        } else if (c.tag == kSyncTag) {
            syncInFlight_ = false;
            if (c.result < 0) {
                if (failure_.empty()) failure_ = "fdatasync of " + cfg_.path + " failed: " + std::strerror(-c.result);
            } else {
                durableOffset_ = std::max(durableOffset_, syncPendingOffset_);
                synced = true;
            }
        } else if (c.tag == kHeaderTag) {
            checkpointInFlight_ = false;
            if (c.result < 0 && failure_.empty()) failure_ = "checkpoint write to " + cfg_.path + " failed: " + std::strerror(-c.result);
        } else if (c.tag >= kReadTag0 && reads != nullptr) {
            reads->push_back(ReadDone{c.tag - kReadTag0, c.result});
        }
    }
    while (!inflight_.empty() && inflight_.front().done) {
        const InFlight& f = inflight_.front();
        if (failure_.empty()) {
            writtenPos_ = f.endPos;
            writtenOffset_ = f.endOffset;
            if (f.synced) {
                durableOffset_ = f.endOffset;
                synced = true;
            }
        }
        inflight_.pop_front();
    }
    if (synced) writeCheckpoint();
    return work;
}

void ArchiveLog::waitWrites() {
    if (pendingGapTo_ != 0 && failure_.empty()) (void)writePendingGap();
    if (failure_.empty()) submitStage();
    done_.clear();
    io_->drain(done_);
    (void)complete(nullptr);
}

Status ArchiveLog::flush() {
    if (!writePendingGap()) {
        io_->drain(done_);
        poll(0, nullptr);
        (void)writePendingGap();
    }
    submitStage();
    if (stage_ >= 0) {  // the queue was full: make room, then submit
        io_->drain(done_);
        poll(0, nullptr);
        submitStage();
    }
    std::vector<archive::FileIo::Completion> c;
    io_->drain(c);
    for (const auto& x : c) {
        if (x.tag < cfg_.stages) {
            bufBusy_[x.tag] = false;
            for (auto& f : inflight_)
                if (f.buf == x.tag) f.done = true;
            if (x.result < 0 && failure_.empty()) failure_ = "write to " + cfg_.path + " failed: " + std::strerror(-x.result);
        }
        if (x.tag == kHeaderTag) checkpointInFlight_ = false;
        if (x.tag == kSyncTag) syncInFlight_ = false;
    }
    while (!inflight_.empty() && inflight_.front().done) {
        writtenPos_ = inflight_.front().endPos;
        writtenOffset_ = inflight_.front().endOffset;
        inflight_.pop_front();
    }
    if (cfg_.durability != Durability::None && failure_.empty()) {
        if (::fdatasync(io_->fd()) != 0) failure_ = "fdatasync of " + cfg_.path + " failed: " + std::strerror(errno);
        else durableOffset_ = writtenOffset_;
    }
    writeCheckpoint();
    io_->drain(c);
    checkpointInFlight_ = false;
    if (!failure_.empty()) return fail(Error{EIO, failure_});
    return {};
}

std::size_t ArchiveLog::readableBytes(std::uint64_t pos, std::size_t want) const {
    if (pos >= writtenPos_) return 0;
    const std::uint64_t segEnd = (pos / cfg_.segmentBytes + 1) * cfg_.segmentBytes;
    return static_cast<std::size_t>(std::min<std::uint64_t>({want, writtenPos_ - pos, segEnd - pos}));
}

bool ArchiveLog::submitRead(unsigned slot, std::uint64_t pos, std::span<std::byte> into) {
    if (slot >= kReadSlots) return false;
    return io_->read(kReadTag0 + slot, into, phys(pos));
}

}  // namespace seqcast::archive
