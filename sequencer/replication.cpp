// The sequencer's hot-standby side (HA): replicate, then publish. See sequencer.h (Role) for the
// rule and docs/HA.md for the whole design.
#include <algorithm>
#include <cstring>

#include "fabric/clock.h"
#include "fabric/intake.h"
#include "sequencer/sequencer.h"

namespace seqcast::sequencer {

namespace {
constexpr std::size_t kReplArena = 256u << 10;
constexpr std::uint64_t kJoinRetryNs = 20'000'000;     // a standby asks again for a snapshot
constexpr std::uint64_t kReplResendNs = 3'000'000;     // no acknowledgement progress: go back
constexpr std::uint64_t kReplIdleHbNs = 5'000'000;     // leader -> standby heartbeat (the released point), every 5 ms
constexpr std::size_t kReplBurst = 64;                 // datagrams per standby per doWork()
constexpr std::uint64_t kReplWindowOffsets = 1u << 16; // unacknowledged offsets in flight per standby
constexpr std::uint64_t kSnapshotGapNs = 10'000'000;    // at most one snapshot per standby per 10 ms

std::size_t recordsPerChunk(std::size_t mtu) {
    return (mtu - wire::kHeaderSize - sizeof(wire::ReplSnapshotBody)) / sizeof(wire::ReplPublisher);
}
}  // namespace

void Sequencer::attachReplication(transport::Transport& repl) {
    repl_ = &repl;
    role_ = Role::Standby;
    leader_ = {};
    replArena_.resize(kReplArena);
    txRepl_.reserve(4 * kReplBurst);
    c_.set(Counter::HaRole, static_cast<std::uint64_t>(role_.load()));
}

void Sequencer::standBy(transport::Endpoint leader, Epoch leaderEpoch) {
    role_ = Role::Standby;
    leader_ = leader;
    leaderEpoch_ = leaderEpoch;
    session_ = (wallNs() * 0x9E3779B97F4A7C15ull) ^ reinterpret_cast<std::uintptr_t>(this);
    if (session_ == 0) session_ = 1;
    snapshotApplied_ = false;
    snapChunks_ = 0;
    snapHave_.clear();
    snapRecords_.clear();
    nextJoinNs_ = 0;
    leaderHeardNs_ = nowNs_ != 0 ? nowNs_ : monoNs();
    pending_.clear();
    replicas_.clear();
    // Until the snapshot is applied and caught up to its table, this state may not lead. (Without
    // a leader this only fences: it stops acknowledging, and its state stays as whole as it was.)
    if (leader.valid()) state_.header().haIncomplete = 1;
    c_.set(Counter::HaRole, static_cast<std::uint64_t>(role_.load()));
}

void Sequencer::lead(Epoch epoch) {
    StateHeader& h = state_.header();
    // What this sequencer holds beyond what is known released may never have reached the group:
    // it leaves again (as retransmissions: it carries the old epoch), through the same rule.
    std::uint64_t from = std::min(std::max<std::uint64_t>(h.haReleased, ring_->oldest().get()), nextOffset_);
    pending_.clear();
    std::uint64_t o = from;
    while (o < nextOffset_) {
        const auto e = ring_->find(Offset{o});
        if (!e) break;
        pending_.push_back(Pending{e->first.get(), e->count, nowNs_, true});
        o = e->first.get() + e->count;
    }
    if (o < nextOffset_) from = nextOffset_;  // not held (cannot happen with a whole ring): nothing to re-send
    if (o < nextOffset_) pending_.clear();
    releasedEnd_ = from;
    h.haReleased = from;
    epoch_ = epoch;
    h.epoch = epoch.get();
    h.haIncomplete = 0;
    role_ = Role::Leader;
    leader_ = {};
    for (auto& r : replicas_) {
        r.session = 0;  // every standby joins the new leader afresh
        r.acked = 0;
    }
    c_.add(Counter::HaTakeovers);
    c_.set(Counter::HaRole, static_cast<std::uint64_t>(role_.load()));
    c_.set(Counter::Epoch, epoch_.get());
    hbInterval_ = cfg_.heartbeatMinNs;
    nextHeartbeatNs_ = 0;  // the new epoch is announced at once
    nextReplHbNs_ = 0;
}

void Sequencer::setReplicas(const std::vector<Replica>& replicas) {
    std::vector<ReplicaState> next;
    next.reserve(replicas.size());
    for (const auto& want : replicas) {
        auto it = std::find_if(replicas_.begin(), replicas_.end(), [&](const ReplicaState& r) { return r.to == want.to; });
        ReplicaState r = it != replicas_.end() ? *it : ReplicaState{want.to};
        // From when it is required, releases wait for it: once it acknowledged this point it holds
        // everything released (the coordinator checks that before it writes the in-sync set).
        if (want.required && !r.required) r.requiredFrom = releasedEnd_;
        if (!want.required) r.requiredFrom = 0;
        r.required = want.required;
        if (it == replicas_.end()) r.acked = 0;
        next.push_back(r);
    }
    replicas_ = std::move(next);
}

void Sequencer::stepDown() {
    role_ = Role::SteppedDown;
    pending_.clear();
    replicas_.clear();
    c_.set(Counter::HaRole, static_cast<std::uint64_t>(role_.load()));
}

std::vector<Sequencer::ReplicaStatus> Sequencer::replicaStatus() const {
    std::vector<ReplicaStatus> out;
    out.reserve(replicas_.size());
    for (const auto& r : replicas_)
        out.push_back(ReplicaStatus{r.to, r.required, r.session != 0, r.acked, r.lastAckNs, r.progressNs, r.requiredFrom});
    return out;
}

void Sequencer::refuseNotLeader(const wire::DatagramView& v, transport::Endpoint from) {
    c_.add(Counter::HaNotLeader);
    if (v.count == 0) return;
    wire::MessageIterator it(v);
    wire::MessageView m;
    it.next(m);
    const std::size_t need = wire::kHeaderSize + sizeof(wire::PubNakBody);
    if (ctlUsed_ + need > ctlArena_.size()) return;
    const std::size_t len = wire::encodePubNak(std::span(ctlArena_).subspan(ctlUsed_, need), cfg_.stream, epoch_, m.publisher,
                                               wire::PubNakReason::NotLeader, PubSeq{0}, PubSeq{0}, wallNs());
    txCtl_.push_back(transport::TxItem{ctlArena_.data() + ctlUsed_, static_cast<std::uint32_t>(len), from});
    ctlUsed_ += len;
    c_.add(Counter::PubNaksSent);
}

int Sequencer::doReplication(std::uint64_t nowNs) {
    if (repl_ == nullptr) return 0;
    int work = 0;
    const std::size_t n = repl_->recvBurst(rx_);
    for (std::size_t i = 0; i < n; ++i) onReplDatagram(rx_[i], nowNs);
    work += static_cast<int>(n);
    if (role_ == Role::Standby && leader_.valid()) {
        if (!snapshotApplied_ && nowNs >= nextJoinNs_ && replUsed_ + 64 <= replArena_.size()) {
            const std::size_t len = wire::encodeReplJoin(std::span(replArena_).subspan(replUsed_, 64), cfg_.stream, leaderEpoch_,
                                                         session_, wallNs());
            txRepl_.push_back(transport::TxItem{replArena_.data() + replUsed_, static_cast<std::uint32_t>(len), leader_});
            replUsed_ += len;
            nextJoinNs_ = nowNs + kJoinRetryNs;
        }
        if (ackDue_ && snapshotApplied_ && replUsed_ + 64 <= replArena_.size()) {
            const std::size_t len = wire::encodeReplAck(std::span(replArena_).subspan(replUsed_, 64), cfg_.stream, leaderEpoch_,
                                                        Offset{nextOffset_}, session_, wallNs());
            txRepl_.push_back(transport::TxItem{replArena_.data() + replUsed_, static_cast<std::uint32_t>(len), leader_});
            replUsed_ += len;
            ackDue_ = false;
        }
    } else if (role_ == Role::Leader) {
        for (std::size_t i = 0; i < replicas_.size(); ++i) pumpReplica(i, nowNs);
        // Every 5 ms, not on every release: a standby needs the released point only at a takeover
        // (to re-send what it holds beyond it; a little more is harmless), and a heartbeat per
        // release would cost two more wake-ups per datagram.
        if (nowNs >= nextReplHbNs_) {
            for (const auto& r : replicas_) {
                if (r.session == 0 || replUsed_ + 64 > replArena_.size()) continue;
                const std::size_t len = wire::encodeHeartbeat(std::span(replArena_).subspan(replUsed_, 64), cfg_.stream, epoch_,
                                                              Offset{releasedEnd_}, ring_->oldest(), wallNs());
                txRepl_.push_back(transport::TxItem{replArena_.data() + replUsed_, static_cast<std::uint32_t>(len), r.to});
                replUsed_ += len;
            }
            nextReplHbNs_ = nowNs + kReplIdleHbNs;
        }
        release(nowNs);
    }
    flushRepl();
    return work;
}

void Sequencer::onReplDatagram(const transport::RxSlot& slot, std::uint64_t nowNs) {
    const std::span<const std::byte> bytes(slot.data, slot.len);
    wire::DatagramView v;
    if (!admitDatagram(bytes, cfg_.stream, c_, v)) return;
    if (role_ == Role::Standby) {
        if (!leader_.valid() || !(slot.from == leader_)) {
            c_.add(Counter::DropNotAllowed);  // only the leader we follow writes our state
            return;
        }
        // DATA of an older epoch is the leader's too: what it took over and re-sends (it carries the
        // epoch it was sequenced in). Everything else must carry the leader's own epoch.
        if (v.type == wire::FrameType::Data ? v.epoch > leaderEpoch_ : v.epoch != leaderEpoch_) {
            c_.add(Counter::DropWrongEpoch);
            return;
        }
        leaderHeardNs_ = nowNs;
        switch (v.type) {
            case wire::FrameType::ReplSnapshot: {
                const auto s = wire::replSnapshot(v);
                // Once applied, a snapshot is taken again only if this standby fell behind what the
                // leader's ring holds (the leader then sends a new one): it cannot catch up otherwise.
                if (s.session != session_ || (snapshotApplied_ && v.firstOffset.get() <= nextOffset_)) return;
                if (snapshotApplied_) {
                    snapshotApplied_ = false;
                    snapChunks_ = 0;
                    state_.header().haIncomplete = 1;
                }
                // At most every publisher slot and every remembered position (leader and standby run
                // the same configuration): a larger claim is refused, not allocated.
                const std::size_t maxChunks = (cfg_.maxPublishers + cfg_.retiredPublishers) / recordsPerChunk(cfg_.mtu) + 1;
                if (s.chunks > maxChunks || s.tableHead < v.firstOffset.get()) {
                    c_.add(Counter::DropBadBody);
                    return;
                }
                if (snapChunks_ != s.chunks || snapRingStart_ != v.firstOffset.get() || tableHead_ != s.tableHead) {
                    snapChunks_ = s.chunks;  // a new snapshot for this session (the join was answered again)
                    snapHave_.assign(s.chunks, false);
                    snapRecords_.clear();
                    snapRingStart_ = v.firstOffset.get();
                    tableHead_ = s.tableHead;
                }
                if (snapHave_[s.chunk]) return;
                snapHave_[s.chunk] = true;
                for (std::uint32_t i = 0; i < v.count; ++i) snapRecords_.push_back(wire::replPublisher(v, i));
                if (std::find(snapHave_.begin(), snapHave_.end(), false) != snapHave_.end()) return;
                // Whole: the publisher positions become the leader's, the ring starts where it released.
                PublisherRecord* recs = state_.publishers();
                for (std::uint32_t i = 0; i < cfg_.maxPublishers; ++i) recs[i].used = 0;
                pubs_.clear();
                pubIndex_.clear();
                retired_.clear();
                retiredOrder_.clear();
                touched_.clear();
                ackWait_.clear();
                heldFree_.clear();
                for (std::size_t i = heldSlots_.size(); i-- > 0;) heldFree_.push_back(static_cast<std::uint32_t>(i));
                for (const auto& r : snapRecords_) {
                    if (pubs_.size() < cfg_.maxPublishers) {
                        const auto slotIdx = static_cast<std::uint32_t>(pubs_.size());
                        PublisherRecord& rec = recs[slotIdx];
                        rec.id = r.publisherId;
                        rec.nextPubSeq = r.nextPubSeq;
                        rec.nextFrag = r.nextFrag;
                        rec.lastActiveNs = nowNs;
                        std::fill(std::begin(rec.ackOffsets), std::end(rec.ackOffsets), wire::kOffsetOpen);
                        rec.used = 1;
                        pubIndex_[r.publisherId] = slotIdx;
                        pubs_.push_back(Pub{r.publisherId, slotIdx, r.nextPubSeq, r.nextFrag, {}, 0, false, false, false, {}, {}});
                    } else if (cfg_.retiredPublishers > 0) {
                        if (retired_.size() >= cfg_.retiredPublishers) {
                            retired_.erase(retiredOrder_.front());
                            retiredOrder_.pop_front();
                        }
                        retired_[r.publisherId] = Retired{r.nextPubSeq, r.nextFrag};
                        retiredOrder_.push_back(r.publisherId);
                    }
                }
                snapRecords_.clear();
                ring_->resetTo(Offset{snapRingStart_});
                nextOffset_ = snapRingStart_;
                StateHeader& h = state_.header();
                h.nextOffset = nextOffset_;
                h.haReleased = snapRingStart_;
                leaderReleased_ = snapRingStart_;
                snapshotApplied_ = true;
                if (nextOffset_ >= tableHead_) h.haIncomplete = 0;
                c_.set(Counter::HeadOffset, nextOffset_);
                ackDue_ = true;
                return;
            }
            case wire::FrameType::Data: {
                if (!snapshotApplied_) return;
                ackDue_ = true;
                if (v.firstOffset.get() != nextOffset_) return;  // a duplicate, or past a gap: the leader goes back
                auto buf = ring_->reserve();
                if (v.bytes.size() > buf.size() || v.bytes.size() > cfg_.mtu) {
                    c_.add(Counter::DropTooLarge);  // the leader runs a larger MTU: configuration error
                    return;
                }
                std::memcpy(buf.data(), v.bytes.data(), v.bytes.size());
                ring_->commit(v.firstOffset, v.count, v.bytes.size());
                applyEntries(v);
                nextOffset_ += v.count;
                StateHeader& h = state_.header();
                h.nextOffset = nextOffset_;
                if (h.haIncomplete != 0 && nextOffset_ >= tableHead_) h.haIncomplete = 0;
                c_.add(Counter::ReplDatagramsIn);
                c_.set(Counter::HeadOffset, nextOffset_);
                return;
            }
            case wire::FrameType::Heartbeat:
                if (v.firstOffset.get() > leaderReleased_ && v.firstOffset.get() <= nextOffset_) {
                    leaderReleased_ = v.firstOffset.get();
                    state_.header().haReleased = leaderReleased_;
                }
                if (snapshotApplied_) ackDue_ = true;
                return;
            default: c_.add(Counter::DropUnexpectedType); return;
        }
    }
    if (role_ != Role::Leader) {
        c_.add(Counter::HaNotLeader);
        return;
    }
    auto it = std::find_if(replicas_.begin(), replicas_.end(), [&](const ReplicaState& r) { return r.to == slot.from; });
    if (it == replicas_.end()) {
        c_.add(Counter::DropNotAllowed);  // not a member of this stream
        return;
    }
    ReplicaState& r = *it;
    switch (v.type) {
        case wire::FrameType::ReplJoin: {
            const std::uint64_t session = wire::replSession(v);
            if (session == 0) return;
            if (session != r.session) {
                r.session = session;
                // It holds nothing yet; it will hold everything from the released end on.
                r.acked = releasedEnd_;
                r.sentEnd = releasedEnd_;
                r.progressNs = nowNs;
            }
            // Paced: a flood of joins (or forged ones) costs one snapshot per 10 ms.
            if (r.lastSnapshotNs != 0 && nowNs - r.lastSnapshotNs < kSnapshotGapNs) {
                c_.add(Counter::DropOverflow);
                return;
            }
            r.lastSnapshotNs = nowNs;
            sendSnapshot(static_cast<std::size_t>(it - replicas_.begin()), session);
            return;
        }
        case wire::FrameType::ReplAck: {
            const std::uint64_t session = wire::replSession(v);
            if (v.epoch == epoch_ && r.session == 0 && session != 0) {
                // A standby this leader forgot (its member key lapsed and came back): it holds a prefix
                // of this leader's history (it stores only what this leader sent, in order, after this
                // leader's snapshot), so it goes on from what it acknowledges.
                r.session = session;
                r.acked = std::min(v.firstOffset.get(), nextOffset_);
                r.sentEnd = r.acked;
                r.progressNs = nowNs;
            }
            if (v.epoch != epoch_ || session != r.session) {
                c_.add(Counter::DropWrongEpoch);
                return;
            }
            const std::uint64_t a = std::min(v.firstOffset.get(), nextOffset_);
            r.lastAckNs = nowNs;
            if (a > r.acked) {
                r.acked = a;
                r.progressNs = nowNs;
                if (r.sentEnd < a) r.sentEnd = a;
            }
            return;
        }
        default: c_.add(Counter::DropUnexpectedType); return;
    }
}

void Sequencer::sendSnapshot(std::size_t replica, std::uint64_t session) {
    // Publisher positions as of the committed head: those with a slot, then those remembered.
    std::vector<wire::ReplPublisher> recs;
    recs.reserve(pubs_.size() + retired_.size());
    auto add = [&](std::uint32_t id, std::uint64_t seq, std::uint32_t frag) {
        wire::ReplPublisher r{};
        r.publisherId.set(id);
        r.nextFrag.set(frag);
        r.nextPubSeq.set(seq);
        recs.push_back(r);
    };
    for (const auto& p : pubs_)
        if (pubIndex_.count(p.id) != 0) add(p.id, p.nextPubSeq, p.nextFrag);
    for (std::uint32_t id : retiredOrder_) {
        const auto it = retired_.find(id);
        if (it != retired_.end() && pubIndex_.count(id) == 0) add(id, it->second.nextPubSeq, it->second.nextFrag);
    }
    const std::size_t perChunk = recordsPerChunk(cfg_.mtu);
    const auto chunks = static_cast<std::uint32_t>(std::max<std::size_t>(1, (recs.size() + perChunk - 1) / perChunk));
    const ReplicaState& r = replicas_[replica];
    std::vector<std::byte> buf(cfg_.mtu);
    for (std::uint32_t c = 0; c < chunks; ++c) {
        wire::DatagramWriter w(buf);
        w.begin(wire::FrameType::ReplSnapshot, cfg_.stream, epoch_, Offset{releasedEnd_});
        wire::ReplSnapshotBody b{};
        b.session.set(session);
        b.chunk.set(c);
        b.chunks.set(chunks);
        b.tableHead.set(nextOffset_);
        w.appendStruct(b);
        const std::size_t from = c * perChunk;
        const std::size_t to = std::min(recs.size(), from + perChunk);
        for (std::size_t i = from; i < to; ++i) w.appendStruct(recs[i]);
        // The count is the number of records: written by hand, as appendStruct counts nothing.
        const std::size_t len = w.finish(wallNs());
        auto h = wire::readAt<wire::DatagramHeader>(std::span<const std::byte>(buf), 0);
        h.count.set(static_cast<std::uint32_t>(to - from));
        h.crc32c.set(0);
        std::memcpy(buf.data(), &h, sizeof h);
        h.crc32c.set(wire::datagramCrc(std::span<const std::byte>(buf.data(), len)));
        std::memcpy(buf.data(), &h, sizeof h);
        transport::TxItem item{buf.data(), static_cast<std::uint32_t>(len), r.to};
        for (int tries = 0; tries < 4; ++tries)
            if (repl_->sendBurst(std::span<const transport::TxItem>(&item, 1)) == 1) break;
    }
}

void Sequencer::pumpReplica(std::size_t i, std::uint64_t nowNs) {
    ReplicaState& r = replicas_[i];
    if (r.session == 0) return;
    std::uint64_t resendBelow = 0;
    if (r.sentEnd > r.acked && nowNs - r.progressNs > kReplResendNs) {
        resendBelow = r.sentEnd;  // nothing acknowledged for a while: go back to what it holds
        r.sentEnd = r.acked;
        r.progressNs = nowNs;
    }
    std::size_t sent = 0;
    while (r.sentEnd < nextOffset_ && sent < kReplBurst && r.sentEnd - r.acked < kReplWindowOffsets &&
           txRepl_.size() < txRepl_.capacity()) {
        const auto e = ring_->find(Offset{r.sentEnd});
        if (!e) {
            // Overwritten before it got it: it starts again from a new snapshot (paced).
            if (r.lastSnapshotNs == 0 || nowNs - r.lastSnapshotNs >= kSnapshotGapNs) {
                r.lastSnapshotNs = nowNs;
                r.acked = std::min(r.acked, releasedEnd_);
                r.sentEnd = releasedEnd_;
                r.progressNs = nowNs;
                sendSnapshot(i, r.session);
            }
            return;
        }
        txRepl_.push_back(transport::TxItem{e->bytes.data(), static_cast<std::uint32_t>(e->bytes.size()), r.to});
        c_.add(Counter::ReplDatagramsOut);
        if (e->first.get() < resendBelow) c_.add(Counter::ReplResends);
        r.sentEnd = e->first.get() + e->count;
        ++sent;
    }
}

void Sequencer::release(std::uint64_t nowNs) {
    // After END_OF_STREAM (which announced the released head as the final length) nothing more goes.
    if (role_ != Role::Leader || ended_) return;
    std::uint64_t minAck = ~std::uint64_t{0};
    for (const auto& r : replicas_)
        if (r.required) minAck = std::min(minAck, r.acked);
    bool moved = false;
    while (!pending_.empty()) {
        const Pending p = pending_.front();
        if (p.first + p.count > minAck) break;
        pending_.pop_front();
        const auto e = ring_->find(Offset{p.first});
        if (e && (!p.retransmit || wire::restamp(e->bytes, wire::kFlagRetransmit, wallNs())))
            txData_.push_back(transport::TxItem{e->bytes.data(), static_cast<std::uint32_t>(e->bytes.size()), cfg_.group});
        else
            c_.add(Counter::RetransmitsBadCrc);
        releasedEnd_ = p.first + p.count;
        c_.add(Counter::ReplReleaseWaitNs, nowNs - std::min(nowNs, p.committedNs));
        moved = true;
    }
    if (moved) state_.header().haReleased = releasedEnd_;
    // Confirmations that waited go out with the next flush, what is released of them: also when
    // nothing new was released (a publisher resending only duplicates must still be answered).
    for (std::uint32_t idx : ackWait_)
        if (std::find(touched_.begin(), touched_.end(), idx) == touched_.end()) touched_.push_back(idx);
    ackWait_.clear();
}

void Sequencer::flushRepl() {
    if (txRepl_.empty()) return;
    std::size_t done = 0;
    for (int tries = 0; tries < 4 && done < txRepl_.size(); ++tries)
        done += repl_->sendBurst(std::span<const transport::TxItem>(txRepl_.data() + done, txRepl_.size() - done));
    if (done < txRepl_.size()) c_.add(Counter::SendErrors, txRepl_.size() - done);  // a standby's resend covers it
    txRepl_.clear();
    replUsed_ = 0;
}

}  // namespace seqcast::sequencer
