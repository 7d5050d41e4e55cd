#include "sequencer/sequencer.h"

#include <algorithm>
#include <cstring>

#include "fabric/clock.h"
#include "fabric/intake.h"

namespace seqcast::sequencer {

namespace {
// Checks a recovered ring entry: a CRC-valid DATA datagram holding exactly the offsets recorded.
bool verifyRingEntry(std::span<const std::byte> d, std::uint64_t first, std::uint32_t count) {
    wire::DatagramView v;
    return wire::decode(d, v) == wire::DecodeError::Ok && v.type == wire::FrameType::Data &&
           v.firstOffset.get() == first && v.count == count;
}
constexpr std::size_t kCtlArena = 256u << 10;
// Datagrams one doWork may leave unsent while it commits more: well below the 1024 the ring holds
// at least (SequencerConfig::validate), so the ring never reuses the bytes of one not yet sent.
constexpr std::size_t kMaxUnsent = 256;
// Datagrams a leader (HA) may hold unreleased before it stops reading PUBs: with one burst's worth
// more, still far below the 1024 the ring holds.
constexpr std::size_t kMaxPending = 256;
}  // namespace

Status SequencerConfig::validate() const {
    if (mtu < wire::kMinMtu || mtu > wire::kMaxDatagram)
        return failInvalid("mtu must be " + std::to_string(wire::kMinMtu) + ".." + std::to_string(wire::kMaxDatagram));
    if (ringBytes < 1024 * mtu) return failInvalid("retransmit ring must hold at least 1024 datagrams (" + std::to_string(1024 * mtu) + " bytes at this MTU)");
    if (maxPublishers == 0 || maxPublishers > 65536) return failInvalid("max publishers must be 1..65536");
    if (publisherTimeoutNs == 0 || publisherTimeoutNs > 1'000'000'000ull * 86400 * 365)
        return failInvalid("publisher timeout must be 1 ns .. 1 year");
    if (!group.valid()) return failInvalid("the stream needs a destination group:port");
    if (heartbeatMinNs == 0 || heartbeatMaxNs < heartbeatMinNs) return failInvalid("heartbeat interval: 0 < min <= max");
    if (retransmitBytesPerSec == 0) return failInvalid("retransmit rate must be positive");
    if (retransmitBytesPerSecPerHost == 0) return failInvalid("retransmit rate per host must be positive");
    if (maxNakOffsets == 0) return failInvalid("max NAK offsets must be positive");
    if (burst == 0 || burst > 1024) return failInvalid("burst must be 1..1024");
    if (pubReorderBytes < 16 * mtu) return failInvalid("PUB reorder buffer must hold at least 16 datagrams");
    if (!(faultDamageEntry >= 0 && faultDamageEntry <= 1)) return failInvalid("entry damage probability must be 0..1");
    return {};
}

Result<std::unique_ptr<Sequencer>> Sequencer::create(const SequencerConfig& cfg, transport::Transport& control,
                                                     transport::Transport& data, Counters& counters) {
    if (auto st = cfg.validate(); !st) return fail(st.error());
    StateLayout layout{cfg.maxPublishers, cfg.ringBytes, cfg.mtu};
    auto state = StateFile::open(cfg.statePath, cfg.stream, layout);
    if (!state) return fail(state.error());
    std::unique_ptr<Sequencer> s(new Sequencer(cfg, control, data, counters, std::move(*state)));
    s->recover();
    if (cfg.syncState) {
        if (auto st = s->state_.sync(); !st) return fail(st.error());
    }
    return s;
}

Sequencer::Sequencer(const SequencerConfig& cfg, transport::Transport& control, transport::Transport& data,
                     Counters& counters, StateFile state)
    : cfg_(cfg), control_(control), data_(data), c_(counters), state_(std::move(state)),
      ctlArena_(kCtlArena), rx_(cfg.burst) {
    txData_.reserve(4 * cfg.burst);
    txCtl_.reserve(4 * cfg.burst);
    faultRng_ = (cfg.faultSeed ^ 0x9E3779B97F4A7C15ull) | 1;  // xorshift state must not be 0
    hosts_.resize(kHostSlots);
    const std::size_t slots = cfg.pubReorderBytes / cfg.mtu;
    heldArena_.resize(slots * cfg.mtu);
    heldSlots_.resize(slots);
    for (std::size_t i = slots; i-- > 0;) heldFree_.push_back(static_cast<std::uint32_t>(i));
}

void Sequencer::recover() {
    StateHeader& h = state_.header();
    ring_ = std::make_unique<sequencer::RetransmitRing>(state_.ringRegion(), cfg_.ringBytes, cfg_.mtu,
                                                       state_.recovered(), &verifyRingEntry);
    h.epoch += 1;
    h.starts += 1;
    epoch_ = Epoch{h.epoch};
    // Publishers as last persisted...
    PublisherRecord* recs = state_.publishers();
    for (std::uint32_t i = 0; i < cfg_.maxPublishers; ++i) {
        if (recs[i].used == 0) continue;
        pubIndex_[recs[i].id] = static_cast<std::uint32_t>(pubs_.size());
        pubs_.push_back(Pub{recs[i].id, i, recs[i].nextPubSeq, recs[i].nextFrag, {}, 0, false, false, false, {}, {}});
    }
    // ...then raised by whatever the ring holds beyond that (stored before it was persisted).
    for (std::size_t i = 0; i < ring_->datagrams(); ++i) {
        const auto e = ring_->entry(i);
        wire::DatagramView v;
        if (!e || wire::decode(e->bytes, v, false) != wire::DecodeError::Ok) continue;
        applyEntries(v);
    }
    nextOffset_ = std::max(h.nextOffset, ring_->next().get());
    if (ring_->next().get() != nextOffset_) ring_->resetTo(Offset{nextOffset_});
    h.nextOffset = nextOffset_;
    c_.set(Counter::Epoch, epoch_.get());
    c_.set(Counter::HeadOffset, nextOffset_);
    hbInterval_ = cfg_.heartbeatMinNs;
    nextHeartbeatNs_ = 0;  // announce the new epoch at once
}

void Sequencer::applyEntries(const wire::DatagramView& v) {
    PublisherRecord* recs = state_.publishers();
    wire::MessageIterator it(v);
    wire::MessageView m;
    std::uint64_t off = v.firstOffset.get();
    for (; it.next(m); ++off) {
        Pub* p = lookup(m.publisher.get(), m.pubSeq.get(), true);
        if (p == nullptr) continue;
        const std::uint64_t s = m.pubSeq.get();
        const std::uint32_t end = m.fragOffset + static_cast<std::uint32_t>(m.payload.size());
        if (s < p->nextPubSeq || (s == p->nextPubSeq && m.fragOffset < p->nextFrag)) continue;
        if (m.last()) {
            p->nextPubSeq = s + 1;
            p->nextFrag = 0;
            recs[p->slot].ackOffsets[s % kAckMemory] = off;
        } else {
            p->nextPubSeq = s;
            p->nextFrag = end;
        }
        recs[p->slot].nextPubSeq = p->nextPubSeq;
        recs[p->slot].nextFrag = p->nextFrag;
    }
}

Sequencer::Pub* Sequencer::lookup(std::uint32_t id, std::uint64_t base, bool create) {
    if (auto it = pubIndex_.find(id); it != pubIndex_.end()) return &pubs_[it->second];
    if (!create) return nullptr;
    // Where it starts: a publisher whose slot was given away resumes where it was (what it resends
    // below that is a duplicate); an unknown one at its window base. An unknown publisher whose
    // base is past its first message was here before and has been forgotten (or this state file
    // is new): nothing tells its retransmissions from new messages any more, which is counted.
    std::uint64_t start = base;
    std::uint32_t startFrag = 0;
    const auto retired = retired_.find(id);
    const bool known = retired != retired_.end();
    if (known && retired->second.nextPubSeq >= base) {
        start = retired->second.nextPubSeq;
        startFrag = retired->second.nextFrag;
    }
    PublisherRecord* recs = state_.publishers();
    std::uint32_t idx = 0;
    std::uint32_t slot = 0;
    if (pubs_.size() < cfg_.maxPublishers) {
        while (slot < cfg_.maxPublishers && recs[slot].used != 0) ++slot;
        if (slot == cfg_.maxPublishers) return nullptr;
        idx = static_cast<std::uint32_t>(pubs_.size());
        pubs_.push_back(Pub{});
        pubs_.back().runs.reserve(64);
    } else {
        Pub* victim = expirable();
        if (victim == nullptr) return nullptr;
        retire(*victim);
        idx = static_cast<std::uint32_t>(victim - pubs_.data());
        slot = victim->slot;
    }
    if (known) {
        // By id, not by the iterator found above: retire() may have rehashed the table or
        // forgotten this very entry (the oldest) to make room for the victim's.
        if (retired_.erase(id) != 0) {
            const auto it = std::find(retiredOrder_.begin(), retiredOrder_.end(), id);
            if (it != retiredOrder_.end()) retiredOrder_.erase(it);
        }
    } else if (base > 1) {
        c_.add(Counter::PublishersUnrecognised);
    }
    PublisherRecord& rec = recs[slot];
    rec.used = 0;
    std::atomic_signal_fence(std::memory_order_seq_cst);
    rec.id = id;
    rec.nextPubSeq = start;
    rec.nextFrag = startFrag;
    rec.lastActiveNs = nowNs_;
    // Offsets of messages below `start` are not known here: confirmed again as "offset unknown".
    std::fill(std::begin(rec.ackOffsets), std::end(rec.ackOffsets), wire::kOffsetOpen);
    std::atomic_signal_fence(std::memory_order_seq_cst);
    rec.used = 1;
    Pub& p = pubs_[idx];
    std::vector<wire::PubAckRunView> runs = std::move(p.runs);
    runs.clear();
    p = Pub{id, slot, start, startFrag, {}, nowNs_, false, false, false, std::move(runs), {}};
    pubIndex_[id] = idx;
    return &p;
}

Sequencer::Pub* Sequencer::expirable() {
    if (nowNs_ < noExpiryBeforeNs_) return nullptr;  // nobody can be idle long enough yet
    Pub* best = nullptr;
    std::uint64_t bestActive = 0;
    std::uint64_t earliest = ~std::uint64_t{0};
    for (Pub& p : pubs_) {
        const std::uint64_t active = std::max(p.lastActiveNs, startNs_);
        // Work queued for it in this burst (a confirmation, a PUB_NAK, positions to persist) keeps it.
        if (p.dirty || p.ackPending || p.nakPending) continue;
        if (std::find(touched_.begin(), touched_.end(), static_cast<std::uint32_t>(&p - pubs_.data())) != touched_.end()) continue;
        if (nowNs_ - std::min(active, nowNs_) < cfg_.publisherTimeoutNs) {
            earliest = std::min(earliest, active + cfg_.publisherTimeoutNs);
            continue;
        }
        if (best == nullptr || active < bestActive) {
            best = &p;
            bestActive = active;
        }
    }
    // Every publisher active: none can expire before the least recently active one's timeout.
    if (best == nullptr) noExpiryBeforeNs_ = earliest == ~std::uint64_t{0} ? nowNs_ : earliest;
    return best;
}

void Sequencer::retire(Pub& p) {
    // Its position is remembered, the oldest remembered one forgotten when the memory is full.
    if (cfg_.retiredPublishers > 0) {
        while (retired_.size() >= cfg_.retiredPublishers) {
            retired_.erase(retiredOrder_.front());
            retiredOrder_.pop_front();
        }
        retired_[p.id] = Retired{p.nextPubSeq, p.nextFrag};
        retiredOrder_.push_back(p.id);
    }
    // Datagrams it sent ahead of a gap that it never filled go back to the pool.
    for (std::uint32_t h : p.held) heldFree_.push_back(h);
    p.held.clear();
    pubIndex_.erase(p.id);
    c_.add(Counter::PublishersExpired);
}

void Sequencer::onDatagram(const transport::RxSlot& slot, bool control, std::uint64_t nowNs) {
    const std::span<const std::byte> bytes(slot.data, slot.len);
    wire::DatagramView v;
    if (!admitDatagram(bytes, cfg_.stream, c_, v)) return;
    if (role_ == Role::Standby || role_ == Role::SteppedDown) {
        // Not the leader: a PUB is refused (the publisher tries its next sequencer), a NAK ignored.
        if (v.type == wire::FrameType::Pub && control && role_ == Role::Standby) refuseNotLeader(v, slot.from);
        else c_.add(Counter::HaNotLeader);
        return;
    }
    switch (v.type) {
        case wire::FrameType::Pub:
            // After END_OF_STREAM nothing more is sequenced: the end announced the final offset.
            if (control && !ended_) onPub(v, slot.from);
            else c_.add(Counter::DropUnexpectedType);  // publishers talk to the control socket only
            break;
        case wire::FrameType::Nak:
            if (v.epoch > epoch_) c_.add(Counter::DropWrongEpoch);
            else onNak(v, slot.from, nowNs);
            break;
        default: c_.add(Counter::DropUnexpectedType); break;
    }
}

int Sequencer::doWork(std::uint64_t nowNs) {
    nowNs_ = nowNs;
    if (startNs_ == 0) startNs_ = nowNs;
    int work = 0;
    // Finish what the kernel did not take last time before reading more (back-pressure).
    if (txDataDone_ < txData_.size() || !txCtl_.empty()) {
        if (!flushData()) return 0;
        flushControl();
        work = 1;
    }
    // Everything committed so far has been handed to the transport (or we returned above). What
    // this burst commits is not sent yet: a NAK for it must not restamp it into a retransmission.
    // A leader (HA) has sent what it released; the rest waits for its standbys.
    sentEnd_ = role_ == Role::Single ? nextOffset_ : releasedEnd_;
    if (role_ != Role::Single) {
        work += doReplication(nowNs);
        if (role_ != Role::Leader) {
            // A standby (or a stepped-down leader) reads its sockets only to refuse and count.
            const std::size_t n = control_.recvBurst(rx_);
            for (std::size_t i = 0; i < n; ++i) onDatagram(rx_[i], true, nowNs);
            if (&data_ != &control_) {
                const std::size_t m = data_.recvBurst(rx_);
                for (std::size_t i = 0; i < m; ++i) onDatagram(rx_[i], false, nowNs);
                work += static_cast<int>(m);
            }
            flushControl();
            return work + static_cast<int>(n);
        }
    }
    // Repair requests first, from the data socket where subscribers send them (the source of the
    // stream): they do not wait behind a backlog of PUBs on the control socket.
    if (&data_ != &control_) {
        const std::size_t m = data_.recvBurst(rx_);
        for (std::size_t i = 0; i < m; ++i) onDatagram(rx_[i], false, nowNs);
        work += static_cast<int>(m);
    }
    // A leader (HA) whose standbys lag takes no more PUBs until they catch up: what waits for
    // them stays well inside the ring (back-pressure reaches the publishers).
    const std::size_t n = role_ == Role::Leader && pending_.size() >= kMaxPending ? 0 : control_.recvBurst(rx_);
    for (std::size_t i = 0; i < n; ++i) onDatagram(rx_[i], true, nowNs);
    work += static_cast<int>(n);
    if (open_) closeDatagram();
    if (role_ == Role::Leader) {
        flushRepl();  // the new datagrams to the standbys first
        release(nowNs);
    }
    // Also when only confirmations or PUB_NAKs are due (a held or duplicate PUB produces no data).
    if (txDataDone_ < txData_.size() || !txCtl_.empty() || !touched_.empty()) {
        if (flushData()) flushControl();
    }
    if (nowNs >= nextHeartbeatNs_) {
        sendHeartbeat(cfg_.group);
        // After the end the interval stays short: a receiver that lost END_OF_STREAM must still get
        // one flagged heartbeat through a burst of losses (~100 a second, not ~20).
        hbInterval_ = std::min(hbInterval_ * 2, ended_ ? std::min(cfg_.heartbeatMaxNs, kEndHeartbeatMaxNs) : cfg_.heartbeatMaxNs);
        nextHeartbeatNs_ = nowNs + hbInterval_;
        ++work;
    }
    return work;
}

void Sequencer::openDatagram() {
    // The reservation may evict the ring's oldest entries. Send first what still points into the
    // ring: retransmissions queued by this burst's NAKs (of the oldest entries, typically), and
    // new datagrams when one burst commits many (large PUBs repacked at a smaller MTU, a long run
    // of held PUBs released at once).
    if (!txCtl_.empty()) flushControl();
    // HA: copies to the standbys point into the ring too (the newest datagrams: only a burst that
    // commits a large share of the ring could reach them; sent in batches otherwise).
    if (txRepl_.size() >= kMaxUnsent) flushRepl();
    if (txData_.size() - txDataDone_ >= kMaxUnsent) sendData(true);
    cur_ = ring_->reserve().first(cfg_.mtu);
    writer_ = wire::DatagramWriter(cur_);
    curFirst_ = nextOffset_;
    writer_.begin(wire::FrameType::Data, cfg_.stream, epoch_, Offset{curFirst_});
    open_ = true;
}

void Sequencer::closeDatagram() {
    open_ = false;
    if (writer_.empty()) return;
    const std::size_t len = writer_.finish(wallNs());
    const std::uint32_t count = writer_.count();
    ring_->commit(Offset{curFirst_}, count, len);
    // The ring holds the datagram; now the publishers' positions and the next offset may move.
    PublisherRecord* recs = state_.publishers();
    for (std::uint32_t idx : touched_) {
        Pub& p = pubs_[idx];
        if (!p.dirty) continue;
        recs[p.slot].nextPubSeq = p.nextPubSeq;
        recs[p.slot].nextFrag = p.nextFrag;
        recs[p.slot].lastActiveNs = nowNs_;
        p.dirty = false;
    }
    state_.header().nextOffset = nextOffset_;
    if (role_ == Role::Leader) {
        // Replicate, then publish: to the standbys now, to the group once they hold it.
        pending_.push_back(Pending{curFirst_, count, nowNs_, false});
        for (auto& r : replicas_) {
            if (r.session == 0 || r.sentEnd != curFirst_) continue;  // behind: pumpReplica() catches it up
            txRepl_.push_back(transport::TxItem{cur_.data(), static_cast<std::uint32_t>(len), r.to});
            r.sentEnd = curFirst_ + count;
            c_.add(Counter::ReplDatagramsOut);
        }
        c_.add(Counter::MessagesOut, count);
        c_.set(Counter::HeadOffset, nextOffset_);
        return;
    }
    txData_.push_back(transport::TxItem{cur_.data(), static_cast<std::uint32_t>(len), cfg_.group});
    c_.add(Counter::MessagesOut, count);
    c_.set(Counter::HeadOffset, nextOffset_);
}

void Sequencer::queueAck(Pub& p, std::uint64_t pubSeq, std::uint64_t offset) {
    if (!p.runs.empty()) {
        auto& r = p.runs.back();
        if (r.firstPubSeq.get() + r.count == pubSeq && r.firstOffset.get() + r.count == offset &&
            r.firstOffset.get() != wire::kOffsetOpen) {
            ++r.count;
            return;
        }
    }
    p.runs.push_back(wire::PubAckRunView{PubSeq{pubSeq}, Offset{offset}, 1, 1});
    p.ackPending = true;
}

void Sequencer::onPub(const wire::DatagramView& v, transport::Endpoint from) {
    if (v.count == 0) return;
    wire::MessageIterator it(v);
    wire::MessageView m;
    it.next(m);
    const std::uint32_t id = m.publisher.get();
    Pub* p = lookup(id, v.firstOffset.get(), true);
    if (p == nullptr) {
        c_.add(Counter::DropOverflow, v.count);
        const std::size_t need = wire::kHeaderSize + sizeof(wire::PubNakBody);
        if (ctlUsed_ + need <= ctlArena_.size()) {
            const std::size_t len = wire::encodePubNak(std::span(ctlArena_).subspan(ctlUsed_, need), cfg_.stream, epoch_,
                                                       PublisherId{id}, wire::PubNakReason::TooManyPublishers, PubSeq{0},
                                                       PubSeq{0}, wallNs());
            txCtl_.push_back(transport::TxItem{ctlArena_.data() + ctlUsed_, static_cast<std::uint32_t>(len), from});
            ctlUsed_ += len;
            c_.add(Counter::PubNaksSent);
        }
        return;
    }
    const auto idx = static_cast<std::uint32_t>(p - pubs_.data());
    p->from = from;
    p->lastActiveNs = nowNs_;
    if (!p->dirty && !p->ackPending && !p->nakPending) touched_.push_back(idx);
    // A datagram ahead of what this publisher must send next waits in the pool for the gap to fill.
    const std::uint64_t s0 = m.pubSeq.get();
    if (m.publisher.get() == id && (s0 > p->nextPubSeq || (s0 == p->nextPubSeq && m.fragOffset > p->nextFrag))) {
        if (!hold(*p, v.bytes, s0, m.fragOffset)) c_.add(Counter::DropOverflow, v.count);
        p->nakPending = true;
        return;
    }
    sequenceEntries(*p, v);
    drainHeld(*p);
}

bool Sequencer::hold(Pub& p, std::span<const std::byte> bytes, std::uint64_t pubSeq, std::uint32_t frag) {
    // Keep one copy per starting position; descending order, lowest at the back.
    std::size_t pos = p.held.size();
    while (pos > 0) {
        const HeldSlot& h = heldSlots_[p.held[pos - 1]];
        if (h.pubSeq > pubSeq || (h.pubSeq == pubSeq && h.frag > frag)) break;
        if (h.pubSeq == pubSeq && h.frag == frag) return true;  // already held
        --pos;
    }
    if (heldFree_.empty() || bytes.size() > cfg_.mtu) return false;
    const std::uint32_t id = heldFree_.back();
    heldFree_.pop_back();
    heldSlots_[id] = HeldSlot{pubSeq, frag, static_cast<std::uint32_t>(bytes.size())};
    std::memcpy(heldArena_.data() + std::size_t{id} * cfg_.mtu, bytes.data(), bytes.size());
    p.held.insert(p.held.begin() + static_cast<std::ptrdiff_t>(pos), id);
    return true;
}

void Sequencer::drainHeld(Pub& p) {
    while (!p.held.empty()) {
        const std::uint32_t id = p.held.back();
        const HeldSlot h = heldSlots_[id];
        if (h.pubSeq > p.nextPubSeq || (h.pubSeq == p.nextPubSeq && h.frag > p.nextFrag)) break;  // still a gap
        p.held.pop_back();
        wire::DatagramView v;
        if (wire::decode(std::span<const std::byte>(heldArena_.data() + std::size_t{id} * cfg_.mtu, h.len), v, false) ==
            wire::DecodeError::Ok)
            sequenceEntries(p, v);
        heldFree_.push_back(id);
    }
    if (!p.held.empty()) p.nakPending = true;
}

void Sequencer::sequenceEntries(Pub& pr, const wire::DatagramView& v) {
    Pub* p = &pr;
    const std::uint32_t id = p->id;
    PublisherRecord& rec = state_.publishers()[p->slot];
    wire::MessageIterator all(v);
    wire::MessageView m;
    while (all.next(m)) {
        c_.add(Counter::MessagesIn);
        if (m.publisher.get() != id) {  // one publisher per PUB datagram
            c_.add(Counter::DropBadBody);
            continue;
        }
        const std::uint64_t s = m.pubSeq.get();
        const auto len = static_cast<std::uint32_t>(m.payload.size());
        if (len == 0 && !m.last()) {  // moves no byte forward: accepted, it could be accepted again
            c_.add(Counter::DropBadBody);
            continue;
        }
        if (s < p->nextPubSeq || (s == p->nextPubSeq && m.fragOffset < p->nextFrag)) {
            // Already sequenced: the publisher missed our confirmation. Confirm again.
            c_.add(Counter::DropDuplicate);
            if (m.last()) {
                const bool known = s < p->nextPubSeq && p->nextPubSeq - s <= kAckMemory;
                queueAck(*p, s, known ? rec.ackOffsets[s % kAckMemory] : wire::kOffsetOpen);
            }
            continue;
        }
        if (s != p->nextPubSeq || m.fragOffset != p->nextFrag) {
            c_.add(Counter::DropOutOfOrder);
            p->nakPending = true;
            continue;
        }
        if (wire::kHeaderSize + wire::kMessageHeaderSize + len > cfg_.mtu) {
            c_.add(Counter::DropTooLarge);
            continue;
        }
        if (!open_) openDatagram();
        if (!writer_.appendEntry(m)) {
            closeDatagram();
            openDatagram();
            writer_.appendEntry(m);
        }
        if (cfg_.faultDamageEntry > 0 && len > 0 && faultDraw() < cfg_.faultDamageEntry) {
            cur_[writer_.size() - 1] ^= std::byte{0x01};  // the entry's last payload byte, before signing
            ++faultsInjected_;
        }
        const std::uint64_t off = nextOffset_++;
        if (m.last()) {
            rec.ackOffsets[s % kAckMemory] = off;
            p->nextPubSeq = s + 1;
            p->nextFrag = 0;
            queueAck(*p, s, off);
        } else {
            p->nextFrag = m.fragOffset + len;
        }
        p->dirty = true;
    }
}

Sequencer::HostBudget& Sequencer::hostBudget(std::uint32_t addr, std::uint64_t nowNs) {
    const double rate = static_cast<double>(cfg_.retransmitBytesPerSecPerHost);
    const double cap = std::max(rate / 100.0, 64.0 * static_cast<double>(cfg_.mtu));
    std::size_t h = (addr * 0x9E3779B1u) % kHostSlots;
    HostBudget* pick = nullptr;
    for (std::size_t i = 0; i < kHostProbe; ++i, h = (h + 1) % kHostSlots) {
        HostBudget& b = hosts_[h];
        if (b.used && b.addr == addr) {
            b.tokens = std::min(cap, b.tokens + rate * static_cast<double>(nowNs - b.atNs) * 1e-9);
            b.atNs = nowNs;
            return b;
        }
        if (!b.used) {
            if (pick == nullptr || pick->used) pick = &b;
        } else if (pick == nullptr || (pick->used && b.atNs < pick->atNs)) {
            pick = &b;
        }
    }
    *pick = HostBudget{addr, true, cap, nowNs};
    return *pick;
}

void Sequencer::onNak(const wire::DatagramView& v, transport::Endpoint from, std::uint64_t nowNs) {
    c_.add(Counter::NaksReceived);
    // Refill the retransmission budget.
    const double rate = static_cast<double>(cfg_.retransmitBytesPerSec);
    const double cap = std::max(rate / 100.0, 64.0 * static_cast<double>(cfg_.mtu));
    if (tokensAtNs_ == 0) tokens_ = cap;
    else tokens_ = std::min(cap, tokens_ + rate * static_cast<double>(nowNs - tokensAtNs_) * 1e-9);
    tokensAtNs_ = nowNs;
    HostBudget& host = hostBudget(from.addr, nowNs);
    bool toldOldest = false;
    for (std::uint32_t i = 0; i < v.count; ++i) {
        const auto r = wire::nakRange(v, i);
        std::uint64_t o = r.first.get();
        std::uint64_t end = o + std::min<std::uint64_t>(r.count, cfg_.maxNakOffsets);
        c_.add(Counter::NakOffsetsRequested, r.count);
        if (end > sentEnd_) end = sentEnd_;  // never sent: nothing to repair
        if (o < ring_->oldest().get()) {
            c_.add(Counter::RetransmitsUnavailable, std::min(end, ring_->oldest().get()) - std::min(o, end));
            if (!toldOldest) {
                sendHeartbeat(from);  // tells the requester what we no longer hold
                toldOldest = true;
            }
            o = ring_->oldest().get();
        }
        while (o < end) {
            const auto e = ring_->find(Offset{o});
            if (!e) break;
            o = e->first.get() + e->count;
            if (e->lastRetransmitNs != 0 && nowNs - e->lastRetransmitNs < cfg_.retransmitHoldoffNs) {
                c_.add(Counter::NaksSuppressed);  // coalesced with a recent retransmission
                continue;
            }
            if (tokens_ < static_cast<double>(e->bytes.size())) {
                c_.add(Counter::RetransmitsRateLimited);
                return;
            }
            if (host.tokens < static_cast<double>(e->bytes.size())) {
                c_.add(Counter::RetransmitsHostLimited);
                return;
            }
            // The ring copy is checked whole (its datagram CRC and every entry's publisher CRC) before
            // it is re-signed: damage in the ring (memory, or the state file it is mapped from), or
            // made before the datagram was first signed, is never sent. Nothing else holds those
            // offsets here: the requester's gap goes to an archiver, or is declared lost at its deadline.
            if (!wire::restamp(e->bytes, wire::kFlagRetransmit, wallNs())) {
                c_.add(Counter::RetransmitsBadCrc);
                continue;
            }
            tokens_ -= static_cast<double>(e->bytes.size());
            host.tokens -= static_cast<double>(e->bytes.size());
            ring_->markRetransmitted(e->index, nowNs);
            txCtl_.push_back(transport::TxItem{e->bytes.data(), static_cast<std::uint32_t>(e->bytes.size()), cfg_.group});
            c_.add(Counter::Retransmits);
        }
    }
}

bool Sequencer::sendData(bool untilDone) {
    while (txDataDone_ < txData_.size()) {
        const std::span<const transport::TxItem> rest(txData_.data() + txDataDone_, txData_.size() - txDataDone_);
        const std::size_t sent = data_.sendBurst(rest);
        std::uint64_t bytes = 0;
        for (std::size_t i = 0; i < sent; ++i) bytes += rest[i].len;
        c_.add(Counter::DatagramsOut, sent);
        c_.add(Counter::BytesOut, bytes);
        txDataDone_ += sent;
        if (txDataDone_ < txData_.size()) {
            c_.add(Counter::SendPartial);
            if (!untilDone) return false;
        }
    }
    return true;
}

bool Sequencer::flushData() {
    if (!txData_.empty()) {
        if (!sendData(false)) return false;
        txData_.clear();
        txDataDone_ = 0;
        hbInterval_ = cfg_.heartbeatMinNs;
        nextHeartbeatNs_ = nowNs_ + hbInterval_;
        if (cfg_.syncState) (void)state_.sync();
    }
    // Confirmations go out only once the data they confirm is on its way.
    for (std::uint32_t idx : touched_) {
        Pub& p = pubs_[idx];
        if (p.ackPending && !p.runs.empty() && !sendAcks(p)) {
            if (std::find(ackWait_.begin(), ackWait_.end(), idx) == ackWait_.end()) ackWait_.push_back(idx);
        }
        if (p.nakPending) {
            const std::size_t need = wire::kHeaderSize + sizeof(wire::PubNakBody);
            if (ctlUsed_ + need <= ctlArena_.size()) {
                const PubSeq heldFrom{p.held.empty() ? 0 : heldSlots_[p.held.back()].pubSeq};
                const std::size_t len = wire::encodePubNak(std::span(ctlArena_).subspan(ctlUsed_, need), cfg_.stream, epoch_,
                                                           PublisherId{p.id}, wire::PubNakReason::Gap,
                                                           PubSeq{p.nextPubSeq}, heldFrom, wallNs());
                txCtl_.push_back(transport::TxItem{ctlArena_.data() + ctlUsed_, static_cast<std::uint32_t>(len), p.from});
                ctlUsed_ += len;
                c_.add(Counter::PubNaksSent);
            }
            p.nakPending = false;
        }
    }
    touched_.clear();
    return true;
}

bool Sequencer::sendAcks(Pub& p) {
    // A leader (HA) confirms a message only once it is released: until its standbys hold it, it
    // is not yet part of the stream's history. What is released goes now; the rest waits.
    std::vector<wire::PubAckRunView>& later = ackLater_;  // what a leader must hold back (reused: no allocation)
    later.clear();
    if (role_ == Role::Leader) {
        std::size_t keep = 0;
        for (std::size_t i = 0; i < p.runs.size(); ++i) {
            auto run = p.runs[i];
            const std::uint64_t o = run.firstOffset.get();
            // "Offset unknown" (a duplicate this sequencer has no offset for) goes only once
            // nothing waits for the standbys: it may be one of those.
            if ((o == wire::kOffsetOpen && pending_.empty()) || (o != wire::kOffsetOpen && o + run.count <= releasedEnd_)) {
                p.runs[keep++] = run;
                continue;
            }
            const std::uint64_t now = o == wire::kOffsetOpen || o >= releasedEnd_ ? 0 : releasedEnd_ - o;  // its released head
            if (now > 0) p.runs[keep++] = wire::PubAckRunView{run.firstPubSeq, run.firstOffset, static_cast<std::uint32_t>(now), run.stride};
            later.push_back(wire::PubAckRunView{PubSeq{run.firstPubSeq.get() + now}, Offset{o == wire::kOffsetOpen ? o : o + now},
                                                static_cast<std::uint32_t>(run.count - now), run.stride});
        }
        p.runs.resize(keep);
    }
    std::size_t r = 0;
    while (r < p.runs.size()) {
        const std::size_t room = ctlArena_.size() - ctlUsed_;
        if (room < wire::kHeaderSize + sizeof(wire::PubAckBody) + sizeof(wire::PubAckRun)) break;
        auto buf = std::span(ctlArena_).subspan(ctlUsed_, std::min(room, cfg_.mtu));
        wire::DatagramWriter w(buf);
        w.begin(wire::FrameType::PubAck, cfg_.stream, epoch_, Offset{0});
        wire::PubAckBody b{};
        b.publisherId.set(p.id);
        b.reserved.set(0);
        w.appendStruct(b);
        while (r < p.runs.size() && w.appendPubAckRun(p.runs[r].firstPubSeq, p.runs[r].firstOffset, p.runs[r].count, 1)) ++r;
        const std::size_t len = w.finish(wallNs());
        txCtl_.push_back(transport::TxItem{buf.data(), static_cast<std::uint32_t>(len), p.from});
        ctlUsed_ += len;
        c_.add(Counter::PubAcksSent);
    }
    if (later.empty()) {
        p.runs.clear();  // keeps its capacity: no allocation per flush
    } else {
        p.runs.clear();
        p.runs.insert(p.runs.end(), later.begin(), later.end());
    }
    p.ackPending = !p.runs.empty();
    return !p.ackPending;
}

void Sequencer::flushControl() {
    if (txCtl_.empty()) return;
    // Confirmations are small and few; retry briefly rather than drop them (a lost one costs a
    // publisher retransmission, not correctness). Retransmissions leave from the data socket,
    // confirmations from the control socket: runs of each go in one burst.
    for (std::size_t i = 0; i < txCtl_.size();) {
        const bool repair = txCtl_[i].to == cfg_.group;
        std::size_t j = i + 1;
        while (j < txCtl_.size() && (txCtl_[j].to == cfg_.group) == repair) ++j;
        transport::Transport& t = repair ? data_ : control_;
        std::size_t done = 0;
        for (int tries = 0; tries < 4 && i + done < j; ++tries)
            done += t.sendBurst(std::span<const transport::TxItem>(txCtl_.data() + i + done, j - i - done));
        if (i + done < j) c_.add(Counter::SendErrors, j - i - done);
        c_.add(Counter::DatagramsOut, done);
        i = j;
    }
    txCtl_.clear();
    ctlUsed_ = 0;
}

void Sequencer::sendHeartbeat(transport::Endpoint to) {
    std::byte buf[wire::kHeaderSize + sizeof(wire::HeartbeatBody)];
    const std::size_t len = wire::encodeHeartbeat(buf, cfg_.stream, epoch_, releasedOffset(), ring_->oldest(), wallNs(),
                                                  ended_ ? wire::kFlagEnd : std::uint16_t{0});
    transport::TxItem item{buf, static_cast<std::uint32_t>(len), to};
    // From the data socket, to the group or to a subscriber that NAKed: the stream's source.
    if (data_.sendBurst(std::span<const transport::TxItem>(&item, 1)) == 1) {
        c_.add(Counter::HeartbeatsSent);
        c_.add(Counter::DatagramsOut);
    }
}

void Sequencer::endOfStream() {
    // HA: only a leader ends the stream, at what it released (a standby's stop hands nothing over).
    if (role_ == Role::Standby || role_ == Role::SteppedDown) return;
    if (open_) closeDatagram();
    flushData();
    flushControl();
    std::byte buf[wire::kHeaderSize];
    const std::size_t len = wire::encodeEndOfStream(buf, cfg_.stream, epoch_, releasedOffset(), wallNs());
    // Three copies (receivers take it more than once without harm); should all three be lost, the
    // heartbeats that follow carry the END flag (doWork() while lingering).
    const transport::TxItem item{buf, static_cast<std::uint32_t>(len), cfg_.group};
    const transport::TxItem copies[3] = {item, item, item};
    c_.add(Counter::DatagramsOut, data_.sendBurst(copies));
    ended_ = true;
    hbInterval_ = cfg_.heartbeatMinNs;
    nextHeartbeatNs_ = nowNs_;  // the first flagged heartbeat with the next doWork()
    (void)state_.sync();
}

}  // namespace seqcast::sequencer
