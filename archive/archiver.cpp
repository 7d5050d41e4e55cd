#include "archive/archiver.h"

#include <cstdlib>
#include <cstring>

#include "fabric/clock.h"
#include "fabric/intake.h"
#include "fabric/wire.h"

namespace seqcast::archive {

namespace {
constexpr std::size_t kAlign = 4096;
std::size_t roundUp(std::size_t v) { return (v + kAlign - 1) / kAlign * kAlign; }
}  // namespace

Status ArchiverConfig::validate() const {
    if (auto st = log.validate(); !st) return st;
    if (maxSessions == 0 || maxSessions > ArchiveLog::kReadSlots)
        return failInvalid("replay sessions must be 1.." + std::to_string(ArchiveLog::kReadSlots));
    if (maxSessionsPerClient == 0) return failInvalid("replay sessions per client must be positive");
    if (windowBytes < 64 * 1024) return failInvalid("replay window must be at least 64 KiB");
    if (readBytes < 2 * log.maxDatagram || readBytes % kAlign != 0) return failInvalid("replay read size must be a multiple of 4096 holding two datagrams");
    if (maxNakOffsets == 0) return failInvalid("max NAK offsets must be positive");
    if (backlogBytes < Backlog::kChunkBytes) return failInvalid("backlog must be at least 1 MiB");
    return {};
}

Result<std::unique_ptr<Archiver>> Archiver::create(const ArchiverConfig& cfg, transport::Transport& data,
                                                   transport::Transport& subControl, transport::Transport& service,
                                                   Counters& counters, const Progress& progress) {
    if (auto st = cfg.validate(); !st) return fail(st.error());
    auto log = ArchiveLog::open(cfg.log, progress);
    if (!log) return fail(log.error());
    std::unique_ptr<Archiver> a(new Archiver(cfg, data, subControl, service, counters));
    a->log_ = std::move(*log);
    client::SubscriberConfig sc = cfg.sub;
    sc.mode = client::DeliveryMode::AtLeastOnce;
    sc.archiver = transport::Endpoint{};
    sc.live = true;
    if (a->log_->empty() && a->log_->next() == Offset{0} && !a->log_->recovered()) {
        sc.start = client::StartPosition{client::StartPosition::Kind::Latest, {}};
    } else {
        // Go on from where the log ends: what the sequencer still holds is repaired, the rest is a gap.
        sc.start = client::StartPosition{client::StartPosition::Kind::AtOffset, a->log_->next()};
        sc.repairFromStart = true;
    }
    if (auto st = sc.validate(); !st) return fail(st.error());
    Archiver* self = a.get();
    client::SubscriberHandlers h;
    h.onDatagram = [self](std::span<const std::byte> dg, Offset first, std::uint32_t count) { self->record(dg, first, count); };
    h.onLoss = [self](Offset first, std::uint64_t count) {
        self->drainPending();
        // Datagrams received before the loss may still wait for a write buffer: the gap is
        // recorded after them, never over them.
        if (self->backlog_.empty()) self->skipTo(Offset{first.get() + count});
        else self->backlog_.pushGap(first.get() + count);
    };
    a->sub_ = std::make_unique<client::Subscriber>(sc, data, subControl, counters, h);
    for (int i = static_cast<int>(cfg.maxSessions) - 1; i >= 0; --i) {
        void* p = nullptr;
        if (::posix_memalign(&p, kAlign, cfg.readBytes + kAlign) != 0) return failErrno("allocate replay buffers", ENOMEM);
        a->slotBufs_.push_back(static_cast<std::byte*>(p));
        a->freeSlots_.push_back(i);
    }
    std::reverse(a->slotBufs_.begin(), a->slotBufs_.end());
    a->updateGauges();
    return a;
}

Archiver::Archiver(const ArchiverConfig& cfg, transport::Transport& data, transport::Transport& subControl,
                   transport::Transport& service, Counters& counters)
    : cfg_(cfg), data_(data), subControl_(subControl), service_(service), c_(counters), rx_(64) {
    tx_.reserve(256);
}

Archiver::~Archiver() {
    sessions_.clear();
    if (log_) (void)flush();
    for (auto* b : slotBufs_) std::free(b);
}

Status Archiver::flush() {
    // Each round frees every write buffer, so each takes at least one datagram off the backlog.
    for (std::size_t before = ~std::size_t{0}; log_->failure().empty();) {
        drainPending();
        if (backlog_.empty() || backlog_.entries() == before) break;
        before = backlog_.entries();
        log_->waitWrites();
    }
    updateGauges();
    auto st = log_->flush();
    if (st && !backlog_.empty())
        return fail(Error{EIO, std::to_string(backlog_.entries()) + " received datagrams could not be written to " + cfg_.log.path});
    return st;
}

void Archiver::hold(std::span<const std::byte> dg) {
    if (!backlog_.push(dg)) c_.add(Counter::DropTooLarge);  // larger than any log record: cannot happen
}

void Archiver::record(std::span<const std::byte> dg, Offset first, std::uint32_t count) {
    roundBytes_ += dg.size();
    if (!backlog_.empty()) {
        hold(dg);
        return;
    }
    for (int tries = 0; tries < 2; ++tries) {
        switch (log_->append(dg, first, count)) {
            case ArchiveLog::Append::Ok: return;
            case ArchiveLog::Append::Busy:
                hold(dg);
                return;
            case ArchiveLog::Append::Discontinuous:
                if (first.get() + count <= log_->next().get()) return;  // already recorded
                skipTo(first);  // offsets the stream never gave us (reported as lost)
                continue;
            case ArchiveLog::Append::TooLarge:
                c_.add(Counter::DropTooLarge);
                return;
            case ArchiveLog::Append::Failed:
                return;  // recording stopped; failure() says why
        }
    }
}

void Archiver::skipTo(Offset to) {
    const Offset from = log_->next();
    if (to <= from) return;
    log_->skipTo(to);
    c_.add(Counter::ArchiveGaps);
    c_.add(Counter::ArchiveGapOffsets, to.get() - from.get());
    if (cfg_.onGap) cfg_.onGap(from, to.get() - from.get());
}

void Archiver::drainPending(std::size_t maxBytes) {
    for (std::size_t moved = 0; !backlog_.empty() && moved < maxBytes;) {
        const Backlog::Entry e = backlog_.front();
        if (e.bytes.empty()) {
            skipTo(Offset{e.gapTo});
            backlog_.pop();
            continue;
        }
        wire::DatagramView v;
        if (wire::decode(e.bytes, v, false) != wire::DecodeError::Ok) {  // checked on arrival; cannot fail
            backlog_.pop();
            continue;
        }
        const auto r = log_->append(e.bytes, v.firstOffset, v.count);
        if (r == ArchiveLog::Append::Busy) return;
        moved += e.bytes.size();
        if (r == ArchiveLog::Append::Discontinuous && v.firstOffset.get() + v.count > log_->next().get()) {
            skipTo(v.firstOffset);
            continue;
        }
        backlog_.pop();
    }
}

Archiver::Session* Archiver::find(transport::Endpoint client, std::uint64_t id) {
    for (auto& s : sessions_)
        if (!s->oneShot && s->client == client && s->id == id) return s.get();
    return nullptr;
}

Archiver::Session* Archiver::open(transport::Endpoint client, std::uint64_t id, std::uint64_t from, std::uint64_t to,
                                  std::uint32_t flags, bool oneShot, std::uint64_t nowNs) {
    std::size_t perClient = 0;
    for (const auto& s : sessions_) perClient += s->client == client ? 1 : 0;
    if (freeSlots_.empty() || sessions_.size() >= cfg_.maxSessions || perClient >= cfg_.maxSessionsPerClient) return nullptr;
    auto s = std::make_unique<Session>();
    s->client = client;
    s->id = id;
    s->acked = from;
    s->to = to;
    s->flags = flags;
    s->oneShot = oneShot;
    s->sendOffset = from;
    s->slot = freeSlots_.back();
    freeSlots_.pop_back();
    s->buf = slotBufs_[static_cast<std::size_t>(s->slot)];
    s->lastRequestNs = nowNs;
    s->lastAckMoveNs = nowNs;
    sessions_.push_back(std::move(s));
    c_.add(Counter::ReplaysStarted);
    return sessions_.back().get();
}

void Archiver::release(Session& s) {
    if (s.readInFlight) {
        s.readStale = true;  // the slot comes back when its read completes
        s.ended = true;
        s.to = 0;
        s.flags = 0;
        s.oneShot = true;
        return;
    }
    freeSlots_.push_back(s.slot);
    for (auto it = sessions_.begin(); it != sessions_.end(); ++it)
        if (it->get() == &s) {
            sessions_.erase(it);
            return;
        }
}

void Archiver::end(Session& s, wire::ReplayStatus st, std::uint64_t next) {
    std::byte buf[wire::kHeaderSize + sizeof(wire::ReplayEndBody)];
    const std::size_t len = wire::encodeReplayEnd(buf, cfg_.sub.stream, Epoch{0}, s.oneShot ? 0 : s.id, st, Offset{next},
                                                  log_->earliest(), wallNs());
    transport::TxItem item{buf, static_cast<std::uint32_t>(len), s.client};
    service_.sendBurst(std::span<const transport::TxItem>(&item, 1));
    if (st != wire::ReplayStatus::Lost) s.ended = true;
    if (st == wire::ReplayStatus::Refused || st == wire::ReplayStatus::Failed) c_.add(Counter::ReplaysRefused);
}

void Archiver::onRequest(const wire::DatagramView& v, transport::Endpoint from, std::uint64_t nowNs) {
    const auto r = wire::replayRequest(v);
    Session* s = find(from, r.requestId);
    if ((r.flags & wire::kReplayCancel) != 0) {
        if (s != nullptr) release(*s);
        return;
    }
    if (s == nullptr) {
        s = open(from, r.requestId, r.from.get(), r.to, r.flags, false, nowNs);
        if (s == nullptr) {
            Session tmp;
            tmp.client = from;
            tmp.id = r.requestId;
            end(tmp, wire::ReplayStatus::Refused, r.from.get());
            return;
        }
        return;
    }
    s->lastRequestNs = nowNs;
    if (r.from.get() > s->acked) {
        s->acked = r.from.get();
        s->lastAckMoveNs = nowNs;
        while (!s->inflight.empty() && s->inflight.front().first <= s->acked) {
            s->inflightBytes -= s->inflight.front().second;
            s->inflight.pop_front();
        }
        if (s->ended && s->to != wire::kOffsetOpen && s->acked >= s->to) release(*s);
        return;
    }
    // The acknowledgement has not moved for a while although data is out: resend from it.
    if (r.from.get() < s->sendOffset && nowNs - s->lastAckMoveNs >= cfg_.rewindAfterNs) {
        s->sendOffset = r.from.get();
        s->located = false;
        s->ended = false;
        s->bufLen = s->bufUsed = 0;
        if (s->readInFlight) s->readStale = true;
        s->inflight.clear();
        s->inflightBytes = 0;
        s->lastAckMoveNs = nowNs;
    }
}

void Archiver::onNak(const wire::DatagramView& v, transport::Endpoint from, std::uint64_t nowNs) {
    c_.add(Counter::NaksReceived);
    for (std::uint32_t i = 0; i < v.count; ++i) {
        const auto r = wire::nakRange(v, i);
        const std::uint64_t first = r.first.get();
        const std::uint64_t end = first + std::min<std::uint64_t>(r.count, cfg_.maxNakOffsets);
        // A repair already under way for this client that covers the range's start: the NAK is a
        // retry that crossed our answer. (Without this every retry opened an overlapping session.)
        bool dup = false;
        for (const auto& s : sessions_)
            dup = dup || (s->oneShot && s->client == from && !s->ended && s->id <= first && s->to > first);
        if (dup) continue;
        Session* s = open(from, first, first, end, 0, true, nowNs);
        if (s == nullptr) {
            c_.add(Counter::ReplaysRefused);
            continue;
        }
    }
}

bool Archiver::locate(Session& s) {
    for (int guard = 0; guard < 64; ++guard) {
        if (s.sendOffset >= s.to) {
            end(s, wire::ReplayStatus::Complete, s.to);
            return false;
        }
        if (s.sendOffset >= log_->next().get()) {
            if ((s.flags & (wire::kReplayWait | wire::kReplayLive)) == 0) end(s, wire::ReplayStatus::BeyondHead, s.sendOffset);
            return false;  // wait for the stream to get there
        }
        const auto L = log_->locate(Offset{s.sendOffset});
        switch (L.kind) {
            case ArchiveLog::Locate::Kind::Found:
                s.readPos = L.pos;
                s.located = true;
                return true;
            case ArchiveLog::Locate::Kind::Overwritten:
                if ((s.flags & wire::kReplayEarliest) != 0 && log_->earliest().get() > s.sendOffset) {
                    s.sendOffset = log_->earliest().get();
                    s.acked = std::max(s.acked, s.sendOffset);
                    continue;
                }
                end(s, wire::ReplayStatus::Overwritten, s.sendOffset);
                return false;
            case ArchiveLog::Locate::Kind::Lost: {
                Offset gapEnd;
                log_->lostRange(Offset{s.sendOffset}, gapEnd);
                end(s, wire::ReplayStatus::Lost, gapEnd.get());  // a notice; the replay goes on after the gap
                s.sendOffset = gapEnd.get();
                continue;
            }
            case ArchiveLog::Locate::Kind::BeyondHead:
                if ((s.flags & (wire::kReplayWait | wire::kReplayLive)) == 0) end(s, wire::ReplayStatus::BeyondHead, s.sendOffset);
                return false;
        }
    }
    return false;
}

int Archiver::sendQueued() {
    if (tx_.empty()) return 0;
    const std::size_t sent = service_.sendBurst(tx_);
    c_.add(Counter::ReplayDatagramsOut, sent);
    c_.add(Counter::DatagramsOut, sent);
    const int n = static_cast<int>(tx_.size());
    tx_.clear();
    return n;
}

int Archiver::serve(Session& s, std::uint64_t nowNs) {
    if (s.readInFlight) return 0;
    if (!s.oneShot && nowNs - s.lastRequestNs > cfg_.sessionTimeoutNs) {
        release(s);
        return 1;
    }
    if (s.ended) {
        if (s.oneShot) release(s);
        return 0;
    }
    if (s.oneShot) {  // no acknowledgements: the window is what one call may send
        s.inflight.clear();
        s.inflightBytes = 0;
    }
    // What the client has acknowledged leaves the window, whenever it was sent.
    while (!s.inflight.empty() && s.inflight.front().first <= s.acked) {
        s.inflightBytes -= s.inflight.front().second;
        s.inflight.pop_front();
    }
    // The client got ahead of us (live data filled its gap): go on from where it is.
    if (!s.oneShot && s.sendOffset < s.acked) {
        s.sendOffset = s.acked;
        s.located = false;
        s.bufLen = s.bufUsed = 0;
        s.inflight.clear();
        s.inflightBytes = 0;
    }
    if (!s.located && !locate(s)) return 0;
    int work = 0;
    tx_.clear();
    bool windowFull = false;
    bool stopped = false;  // a bad record: the session ends once what precedes it is sent
    std::uint64_t holeEnd = 0;
    wire::ReplayStatus stopStatus = wire::ReplayStatus::Failed;
    while (s.bufUsed < s.bufLen && !windowFull) {
        std::byte* base = s.buf + s.bufStart;
        const std::uint64_t pos = s.bufPos + s.bufUsed;
        bool reachedEnd = false;
        bool damaged = false;  // a record that failed its CRC when re-stamped
        std::uint64_t lostTo = 0;
        const auto res = parseChunk(std::span<const std::byte>(base + s.bufUsed, s.bufLen - s.bufUsed), pos,
                                    log_->segmentBytes(), log_->maxDatagram(), [&](const LogRecordView& rec) {
                                        if (rec.gap) {
                                            if (rec.gapEnd <= s.sendOffset || rec.first.get() >= s.to) return true;
                                            lostTo = rec.gapEnd;  // told after the data before it
                                            return false;
                                        }
                                        const std::uint64_t end = rec.first.get() + rec.count;
                                        if (end <= s.sendOffset) return true;  // before what is wanted
                                        if (rec.first.get() >= s.to) {
                                            reachedEnd = true;
                                            return false;
                                        }
                                        if (s.inflightBytes >= cfg_.windowBytes) {
                                            windowFull = true;
                                            return false;
                                        }
                                        // Verified by parseChunk; re-stamped as a replay (new CRC) in our
                                        // buffer, which checks the CRC again right before re-signing.
                                        auto bytes = std::span<std::byte>(const_cast<std::byte*>(rec.datagram.data()), rec.datagram.size());
                                        if (!wire::restamp(bytes, wire::kFlagReplay, wallNs())) {
                                            damaged = true;
                                            return false;
                                        }
                                        tx_.push_back(transport::TxItem{bytes.data(), static_cast<std::uint32_t>(bytes.size()), s.client});
                                        s.inflight.emplace_back(end, static_cast<std::uint32_t>(bytes.size()));
                                        s.inflightBytes += bytes.size();
                                        s.sendOffset = end;
                                        return tx_.size() < 64;
                                    });
        s.bufUsed = static_cast<std::size_t>(res.nextPos - s.bufPos);
        s.readPos = res.nextPos;
        if (damaged) {
            // As a record parseChunk finds damaged (below): never served; the session fails after
            // what precedes it is sent.
            c_.add(Counter::DropBadCrc);
            stopped = true;
            stopStatus = wire::ReplayStatus::Failed;
            break;
        }
        if (lostTo != 0) {
            // Offsets the archiver never received: send what precedes, then the notice, then go on.
            work += sendQueued();
            end(s, wire::ReplayStatus::Lost, std::min(lostTo, s.to));
            s.sendOffset = std::min(lostTo, s.to);
            s.bufUsed += static_cast<std::size_t>(32);  // past the gap record
            s.readPos += 32;
            continue;
        }
        if (res.stop == ChunkStop::End || res.stop == ChunkStop::SegmentEnd) {
            s.bufLen = s.bufUsed = 0;  // read on from readPos
        } else if ((res.stop == ChunkStop::Stale || res.stop == ChunkStop::Corrupt) && log_->holeAt(res.nextPos, holeEnd)) {
            // Damage found at recovery: its offsets are a recorded loss; go on after it.
            s.bufLen = s.bufUsed = 0;
            s.readPos = holeEnd;
            Offset lostEnd;
            if (log_->lostRange(Offset{s.sendOffset}, lostEnd) && s.sendOffset < s.to) {
                work += sendQueued();
                end(s, wire::ReplayStatus::Lost, std::min(lostEnd.get(), s.to));
                s.sendOffset = std::min(lostEnd.get(), s.to);
            }
            break;
        } else if (res.stop == ChunkStop::Stale || res.stop == ChunkStop::Corrupt) {
            s.bufLen = s.bufUsed = 0;
            // parseChunk checks a record before the callback sees it: a bad record right after
            // the requested range stops the parse although everything asked for was sent.
            if (s.sendOffset >= s.to) break;  // complete (below)
            stopped = true;
            if (s.sendOffset < log_->earliest().get()) {
                stopStatus = wire::ReplayStatus::Overwritten;
            } else {
                c_.add(Counter::DropBadCrc);  // damaged log bytes are never served
                stopStatus = wire::ReplayStatus::Failed;
            }
            break;
        }
        if (reachedEnd || tx_.size() >= 64) break;
    }
    work += sendQueued();
    // After the data: the end notice must not overtake the records that precede the bad one.
    if (stopped) end(s, stopStatus, s.sendOffset);
    if (s.ended) return work;
    if (s.sendOffset >= s.to) {
        end(s, wire::ReplayStatus::Complete, s.to);
        return work + 1;
    }
    if (s.bufUsed >= s.bufLen && !windowFull && s.inflightBytes < cfg_.windowBytes) {
        const std::size_t n = log_->readableBytes(s.readPos, cfg_.readBytes - kAlign);
        if (n == 0) {
            if ((s.flags & (wire::kReplayWait | wire::kReplayLive)) == 0 && s.sendOffset >= log_->next().get())
                end(s, wire::ReplayStatus::BeyondHead, s.sendOffset);
            return work;
        }
        const std::uint64_t aligned = s.readPos - s.readPos % kAlign;
        const std::size_t lead = static_cast<std::size_t>(s.readPos - aligned);
        if (log_->submitRead(static_cast<unsigned>(s.slot), aligned, std::span<std::byte>(s.buf, roundUp(lead + n)))) {
            s.readInFlight = true;
            s.bufStart = lead;
            s.bufPos = s.readPos;
            s.bufLen = n;  // what this read is for; trimmed to the result on completion
            s.bufUsed = 0;
            ++work;
        }
    }
    return work;
}

std::uint64_t Archiver::nextTimerNs() const noexcept {
    std::uint64_t t = sub_->nextTimerNs();
    if (!sessions_.empty() || !backlog_.empty()) t = std::min(t, nowNs_ + 200'000);
    return std::min(t, nowNs_ + 10'000'000);  // interval syncs and checkpoints
}

void Archiver::updateGauges() {
    c_.set(Counter::ArchiveNext, log_->next().get());
    c_.set(Counter::ArchiveWritten, log_->written().get());
    c_.set(Counter::ArchiveDurable, log_->durable().get());
    c_.set(Counter::ArchiveEarliest, log_->earliest().get());
    c_.set(Counter::ReplaySessions, sessions_.size());
    c_.set(Counter::ArchiveBacklogBytes, backlog_.bytes());
}

int Archiver::doWork(std::uint64_t nowNs) {
    nowNs_ = nowNs;
    int work = 0;
    reads_.clear();
    work += log_->poll(nowNs, &reads_);
    for (const auto& r : reads_) {
        for (auto& sp : sessions_) {
            Session& s = *sp;
            if (s.slot != static_cast<int>(r.slot) || !s.readInFlight) continue;
            s.readInFlight = false;
            if (s.readStale || r.result < 0) {
                s.bufLen = s.bufUsed = 0;
                if (s.readStale && s.ended && s.oneShot && s.to == 0) {
                    release(s);
                } else if (r.result < 0 && !s.readStale) {
                    end(s, wire::ReplayStatus::Failed, s.sendOffset);
                }
                s.readStale = false;
            } else {
                const std::size_t got = static_cast<std::size_t>(r.result) > s.bufStart ? static_cast<std::size_t>(r.result) - s.bufStart : 0;
                s.bufLen = std::min(s.bufLen, got);
            }
            break;
        }
    }
    // Receive first, then write: while a backlog drains the socket must still be read as fast as
    // the stream comes, or its queue overflows behind a loop busy copying into write buffers. So
    // a round reads until the socket is empty (at most kReceiveRounds bursts) and then moves what
    // it read plus kDrainBytes from the backlog into the log. A full backlog stops receiving: the
    // socket queue holds what comes meanwhile.
    roundBytes_ = 0;
    for (int i = 0; i < kReceiveRounds && backlog_.bytes() < cfg_.backlogBytes; ++i) {
        const std::uint64_t before = c_.get(Counter::DatagramsIn);
        work += sub_->doWork(nowNs);
        if (c_.get(Counter::DatagramsIn) == before) break;
    }
    drainPending(roundBytes_ + kDrainBytes);
    const std::size_t n = service_.recvBurst(rx_);
    for (std::size_t i = 0; i < n; ++i) {
        wire::DatagramView v;
        if (!admitDatagram(std::span<const std::byte>(rx_[i].data, rx_[i].len), cfg_.sub.stream, c_, v)) continue;
        if (v.type == wire::FrameType::ReplayRequest) onRequest(v, rx_[i].from, nowNs);
        else if (v.type == wire::FrameType::Nak) onNak(v, rx_[i].from, nowNs);
        else c_.add(Counter::DropUnexpectedType);
    }
    work += static_cast<int>(n);
    for (std::size_t i = 0; i < sessions_.size();) {
        Session* s = sessions_[i].get();
        const std::size_t before = sessions_.size();
        work += serve(*s, nowNs);
        if (sessions_.size() == before) ++i;
    }
    updateGauges();
    return work;
}

}  // namespace seqcast::archive
