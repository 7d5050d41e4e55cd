#include "client/subscriber.h"

#include <algorithm>
#include <charconv>

#include "fabric/clock.h"
#include "fabric/intake.h"

namespace seqcast::client {

Result<StartPosition> parseStartPosition(const std::string& text) {
    if (text == "latest") return StartPosition{StartPosition::Kind::Latest, {}};
    if (text == "earliest") return StartPosition{StartPosition::Kind::Earliest, {}};
    std::uint64_t v = 0;
    auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
    if (ec != std::errc{} || p != text.data() + text.size() || text.empty())
        return failInvalid("start position '" + text + "': expected earliest, latest or an offset");
    return StartPosition{StartPosition::Kind::AtOffset, Offset{v}};
}

Status SubscriberConfig::validate() const {
    if (recordLatency && latencyWindowNs == 0) return failInvalid("latency window must be above 0");
    if (commit != nullptr && mode != DeliveryMode::AtLeastOnce)
        return failInvalid("exactly-once processing repairs gaps: it cannot be combined with at-most-once");
    const bool resuming = commit != nullptr && commit->hasCommit();
    if (start.kind != StartPosition::Kind::Latest && !archiver.valid() && !repairFromStart && !resuming)
        return failInvalid("starting at 'earliest' or an offset replays from an archiver: give its address (--archiver)");
    if (!live && !archiver.valid()) return failInvalid("a replay without the live stream needs an archiver");
    if (reorderBytes < 4 * maxDatagram) return failInvalid("reorder buffer must hold at least 4 datagrams");
    if (maxDatagram < wire::kMinMtu || maxDatagram > wire::kMaxDatagram)
        return failInvalid("max datagram must be " + std::to_string(wire::kMinMtu) + ".." + std::to_string(wire::kMaxDatagram));
    if (maxMessage == 0) return failInvalid("max message size must be positive");
    if (nak.deadlineNs == 0) return failInvalid("NAK deadline must be positive");
    if (burst == 0 || burst > 1024) return failInvalid("burst must be 1..1024");
    return {};
}

Subscriber::Subscriber(const SubscriberConfig& cfg, transport::Transport& data, transport::Transport& control,
                       Counters& counters, SubscriberHandlers handlers)
    : cfg_(cfg),
      data_(data),
      control_(control),
      c_(counters),
      h_(std::move(handlers)),
      gaps_([&] {
          NakPolicy p = cfg.nak;
          p.repair = cfg.mode == DeliveryMode::AtLeastOnce;
          p.archive = cfg.archiver.valid();
          return p;
      }()),
      reorder_(cfg.reorderBytes, cfg.maxDatagram),
      reasm_(cfg.maxMessage, cfg.maxPartialMessages),
      sequencer_(cfg.sequencer),
      rx_(cfg.burst),
      nakBuf_(wire::kDefaultMtu),
      nakWriter_(nakBuf_),
      archNakBuf_(wire::kDefaultMtu),
      archNakWriter_(archNakBuf_) {
    open_.reserve(cfg_.maxPartialMessages);
    if (cfg_.recordLatency) latency_.emplace();
    if (cfg_.commit != nullptr && cfg_.commit->hasCommit()) {
        // Exactly-once restart: receive again from where the lowest unfinished message began, hand
        // over nothing below the committed position.
        const CommitState st = cfg_.commit->state();
        cfg_.start = StartPosition{StartPosition::Kind::AtOffset, Offset{st.resumeFrom}};
        if (!cfg_.archiver.valid()) cfg_.repairFromStart = true;
        processedBelow_ = st.next;
    }
    if (cfg_.start.kind == StartPosition::Kind::AtOffset) {
        next_ = cfg_.start.offset;
        gaps_.reset(next_);
    }
    if (cfg_.start.kind != StartPosition::Kind::Latest && !cfg_.repairFromStart) {
        replayActive_ = true;
        replayId_ = (monoNs() << 8) ^ reinterpret_cast<std::uintptr_t>(this);
        gaps_.suspend(true, 0);
    }
}

int Subscriber::doWork(std::uint64_t nowNs) {
    nowNs_ = nowNs;
    const std::size_t n = data_.recvBurst(rx_);
    for (std::size_t i = 0; i < n; ++i)
        onDatagram(std::span<const std::byte>(rx_[i].data, rx_[i].len), rx_[i].from, nowNs);
    int work = static_cast<int>(n);
    // The control socket carries rare unicast answers: look at it when the stream is quiet, and
    // every 16th round under load, rather than paying a receive syscall per round. A replay's
    // data arrives here too: while one runs, read it every round or it falls behind the live stream.
    if (&control_ != &data_ && (n == 0 || replayActive_ || (++rounds_ & 15) == 0)) {
        // Unicast answers (e.g. a heartbeat saying the offsets asked for are gone) come back here.
        const std::size_t m = control_.recvBurst(rx_);
        for (std::size_t i = 0; i < m; ++i)
            onDatagram(std::span<const std::byte>(rx_[i].data, rx_[i].len), rx_[i].from, nowNs);
        work += static_cast<int>(m);
    }
    // Data can open and close gaps with no timer due: the gap counters follow every round with input.
    if (work > 0) syncGapCounters();
    work += pollTimers(nowNs);
    if (latency_ && nowNs >= latencyWindowEnd_) publishLatency(nowNs);
    if (replayActive_) pollReplay(nowNs, false);
    // The stream ended inside a message that cannot be delivered: nothing follows to end the run.
    if (ended_ && next_ >= gaps_.head()) reportOrphans();
    return work;
}

void Subscriber::sendReplayRequest(std::uint32_t flags) {
    std::byte buf[wire::kHeaderSize + sizeof(wire::ReplayRequestBody)];
    const std::uint64_t to = cfg_.live ? wire::kOffsetOpen : cfg_.replayTo;
    const std::uint64_t from = next_.get() < to ? next_.get() : to - 1;
    const std::size_t len = wire::encodeReplayRequest(buf, cfg_.stream, replayId_, Offset{from}, to, flags, wallNs());
    transport::TxItem item{buf, static_cast<std::uint32_t>(len), cfg_.archiver};
    if (control_.sendBurst(std::span<const transport::TxItem>(&item, 1)) != 1) c_.add(Counter::SendErrors);
}

void Subscriber::pollReplay(std::uint64_t nowNs, bool force) {
    // The replay has caught up with what arrived live: live takes over.
    if (cfg_.live && liveSeen_ && gaps_.started() && next_.get() >= liveJoin_) {
        endReplay(true);
        return;
    }
    if (!cfg_.live && gaps_.started() && next_.get() >= cfg_.replayTo) {
        endReplay(true);
        replayFinished_ = true;
        return;
    }
    // The request doubles as the acknowledgement: `from` is the next offset still needed.
    if (force || nowNs - lastReplayReqNs_ >= cfg_.replayAckNs) {
        lastReplayReqNs_ = nowNs;
        std::uint32_t flags = (cfg_.replayWait ? wire::kReplayWait : 0) | (cfg_.live ? wire::kReplayLive : 0);
        if (cfg_.start.kind == StartPosition::Kind::Earliest && !gaps_.started()) flags |= wire::kReplayEarliest;
        sendReplayRequest(flags);
    }
}

void Subscriber::endReplay(bool cancel) {
    if (!replayActive_) return;
    if (cancel) sendReplayRequest(wire::kReplayCancel);
    replayActive_ = false;
    gaps_.suspend(false, nowNs_);
}

void Subscriber::addLost(std::uint64_t from, std::uint64_t to) {
    const std::pair<std::uint64_t, std::uint64_t> r{from, to};
    if (lost_.empty() || lost_.back() <= r) lost_.push_back(r);
    else lost_.insert(std::upper_bound(lost_.begin(), lost_.end(), r), r);
}

void Subscriber::declareLost(std::uint64_t from, std::uint64_t to) {
    if (to <= from) return;
    addLost(from, to);
    drain();
}

void Subscriber::onReplayEndFrame(const wire::DatagramView& v) {
    const auto e = wire::replayEnd(v);
    if (e.requestId != replayId_ && e.requestId != 0) return;  // an old request's answer
    if (h_.onReplayEnd) h_.onReplayEnd(e.status, e.nextOffset, e.earliestOffset);
    const bool answer = e.requestId == 0;  // answer to a NAK
    switch (e.status) {
        case wire::ReplayStatus::Overwritten:
            if (answer) {
                gaps_.onArchiveEarliest(e.earliestOffset);
            } else if (gaps_.started() && next_ < e.earliestOffset) {
                declareLost(next_.get(), e.earliestOffset.get());
            } else if (!gaps_.started()) {
                next_ = e.earliestOffset;
                gaps_.reset(next_);
            }
            break;
        case wire::ReplayStatus::Lost:
            if (!answer && gaps_.started() && next_ < e.nextOffset) declareLost(next_.get(), e.nextOffset.get());
            if (answer) gaps_.onArchiveEarliest(e.nextOffset);
            break;
        case wire::ReplayStatus::Complete:
        case wire::ReplayStatus::BeyondHead:
            if (!answer && !cfg_.live && next_.get() >= std::min(cfg_.replayTo, e.nextOffset.get())) {
                endReplay(false);
                replayFinished_ = true;
            }
            break;
        case wire::ReplayStatus::Refused:
        case wire::ReplayStatus::Failed:
            if (!answer) {
                endReplay(false);
                if (!cfg_.live) replayFinished_ = true;
            }
            break;
    }
}

void Subscriber::onDatagram(std::span<const std::byte> bytes, transport::Endpoint from, std::uint64_t nowNs) {
    nowNs_ = nowNs;
    wire::DatagramView v;
    if (!admitDatagram(bytes, cfg_.stream, c_, v)) return;
    if (v.type == wire::FrameType::ReplayEnd) {
        onReplayEndFrame(v);
        return;
    }
    const bool fromSequencer = v.type == wire::FrameType::Data || v.type == wire::FrameType::Heartbeat ||
                               v.type == wire::FrameType::EndOfStream;
    if (!fromSequencer) {
        c_.add(Counter::DropUnexpectedType);
        return;
    }
    // Repairs and replays may carry an older epoch: offsets are global, their bytes never change.
    const bool repair = v.type == wire::FrameType::Data && (v.flags & (wire::kFlagRetransmit | wire::kFlagReplay)) != 0;
    const bool replayed = v.type == wire::FrameType::Data && (v.flags & wire::kFlagReplay) != 0;
    if (!cfg_.live && !replayed) {
        c_.add(Counter::DropUnexpectedType);  // a replay-only subscriber reads no live stream
        return;
    }
    if (haveEpoch_ && v.epoch < epoch_ && !repair) {
        c_.add(Counter::DropWrongEpoch);  // an older sequencer incarnation
        return;
    }
    if (!replayed && (!haveEpoch_ || v.epoch > epoch_)) {
        if (haveEpoch_) c_.add(Counter::EpochChanges);
        haveEpoch_ = true;
        epoch_ = v.epoch;
        c_.set(Counter::Epoch, epoch_.get());
    }
    // NAKs go to the source of the current epoch (after a failover, the new leader), never to an
    // older one whose repairs still arrive.
    if (cfg_.sequencer.port == 0 && !replayed && v.epoch == epoch_) sequencer_ = from;

    if (!gaps_.started()) {
        if (cfg_.start.kind == StartPosition::Kind::Latest) {
            // Start at `latest`: the first datagram seen sets the delivery point.
            next_ = v.firstOffset;
            gaps_.reset(next_);
        } else if (replayed) {
            // `earliest`: the replay's first datagram sets the delivery point.
            next_ = v.firstOffset;
            gaps_.reset(next_);
        } else {
            c_.add(Counter::DropOverflow);  // live data before the replay has begun: the replay covers it
            return;
        }
    }
    if (replayActive_ && cfg_.live && !replayed && v.type == wire::FrameType::Data && v.count > 0) {
        // Live data seen during the replay: the replay must reach it before live takes over.
        if (!liveSeen_) {
            liveSeen_ = true;
            liveJoin_ = std::max(liveJoin_, v.firstOffset.get());
        }
    }
    switch (v.type) {
        case wire::FrameType::Heartbeat:
            c_.add(Counter::HeartbeatsReceived);
            if ((v.flags & wire::kFlagEnd) != 0) ended_ = true;  // the end, should END_OF_STREAM be lost
            gaps_.onHead(v.firstOffset, nowNs);
            gaps_.onSenderOldest(wire::heartbeatOldest(v), nowNs);
            break;
        case wire::FrameType::EndOfStream:
            ended_ = true;
            gaps_.onHead(v.firstOffset, nowNs);
            break;
        case wire::FrameType::Data: {
            if (v.count == 0) break;
            const Offset first = v.firstOffset;
            const std::uint64_t end = first.get() + v.count;
            const bool repaired = (v.flags & (wire::kFlagRetransmit | wire::kFlagReplay)) != 0;
            if (end <= next_.get()) {
                c_.add(Counter::DropDuplicate);
                break;
            }
            // Offsets per datagram, averaged (x16): how many offsets the reorder buffer's slots hold.
            avgCount16_ = (7 * avgCount16_ + 16 * std::min<std::uint64_t>(v.count, 1u << 20)) / 8;
            if (first.get() <= next_.get()) {
                gaps_.onData(first, v.count, nowNs, repaired);
                deliverDatagram(v, repaired);
                drain();
            } else if (!replayActive_ && first >= gaps_.nakLimit() && reorder_.size() >= reorder_.capacity() / 2) {
                // Beyond the repair window, and half the buffer is taken: the other half stays
                // for the repairs the window asks for. Repaired in its turn, when the window
                // reaches it (coalesced with the datagrams dropped before it into one gap).
                c_.add(Counter::DropOverflow);
                gaps_.onHead(Offset{end}, nowNs);
            } else {
                switch (reorder_.insert(first, v.count, bytes)) {
                    case ReorderBuffer::Insert::Stored: gaps_.onData(first, v.count, nowNs, repaired); break;
                    case ReorderBuffer::Insert::Duplicate: c_.add(Counter::DropDuplicate); break;
                    // Not kept: the range stays a gap and is repaired later (replay or NAK).
                    case ReorderBuffer::Insert::Full:
                        // No room: NAKing what we drop would only bring it back to be dropped
                        // again. Hold NAKs from here until the buffer has drained (drain()).
                        gaps_.holdNaksFrom(first);
                        [[fallthrough]];
                    case ReorderBuffer::Insert::TooLarge:
                        c_.add(Counter::DropOverflow);
                        gaps_.onHead(Offset{end}, nowNs);
                        if (replayActive_ && !replayed) liveJoin_ = std::max(liveJoin_, end);
                        break;
                }
            }
            break;
        }
        default: break;
    }
    c_.set(Counter::HeadOffset, next_.get());
}

bool Subscriber::isOpen(const wire::MessageView& m) const noexcept {
    for (const auto& o : open_)
        if (o.publisher == m.publisher && o.pubSeq == m.pubSeq) return true;
    return false;
}

void Subscriber::openMessage(const wire::MessageView& m, std::uint64_t off) {
    if (isOpen(m)) return;  // a publisher's duplicate FIRST: the message began at the first one
    if (open_.size() >= std::max<std::size_t>(cfg_.maxPartialMessages, 1)) {
        // Forget the message begun longest ago (the reassembler holds as many partial messages).
        auto oldest = std::min_element(open_.begin(), open_.end(),
                                       [](const OpenMessage& a, const OpenMessage& b) { return a.firstOffset < b.firstOffset; });
        reasm_.drop(oldest->publisher, oldest->pubSeq);
        *oldest = open_.back();
        open_.pop_back();
    }
    open_.push_back(OpenMessage{m.publisher, m.pubSeq, off});
}

void Subscriber::closeMessage(const wire::MessageView& m) noexcept {
    for (auto& o : open_) {
        if (o.publisher == m.publisher && o.pubSeq == m.pubSeq) {
            o = open_.back();
            open_.pop_back();
            return;
        }
    }
}

void Subscriber::reportOrphans() {
    if (orphanEnd_ <= orphanFrom_) return;
    const std::uint64_t from = std::max(orphanFrom_, processedBelow_), end = orphanEnd_;
    orphanFrom_ = orphanEnd_ = 0;
    if (end <= from) return;  // reported before an exactly-once restart
    c_.add(Counter::LossNotices);
    c_.add(Counter::OffsetsLost, end - from);
    if (h_.onLoss) h_.onLoss(Offset{from}, end - from);
    commitPosition();
}

Subscriber::Position Subscriber::position() const noexcept {
    // Unreported orphan fragments end at next_: the committed position stops before them.
    std::uint64_t next = orphanEnd_ > orphanFrom_ ? orphanFrom_ : next_.get();
    next = std::max(next, std::min(processedBelow_, next_.get()));
    std::uint64_t resume = next;
    for (const auto& o : open_) resume = std::min(resume, o.firstOffset);
    return Position{Offset{resume}, Offset{next}};
}

void Subscriber::commitPosition() {
    if (cfg_.commit == nullptr) return;
    const Position p = position();
    CommitState s = cfg_.commit->state();  // the application's part stays unless onCommit changes it
    s.next = p.next.get();
    s.resumeFrom = p.resumeFrom.get();
    s.stream = cfg_.stream.get();
    if (h_.onCommit) h_.onCommit(s);
    cfg_.commit->commit(s);
}

// The quantiles of the window that ends now into the counters; the next window begins.
void Subscriber::publishLatency(std::uint64_t nowNs) {
    if (latencyWindowEnd_ != 0) {  // (the first call only starts the first window)
        const Histogram& h = *latency_;
        c_.set(Counter::LatencyWindowCount, h.count());
        c_.set(Counter::LatencyP50Ns, h.quantile(0.5));
        c_.set(Counter::LatencyP90Ns, h.quantile(0.9));
        c_.set(Counter::LatencyP99Ns, h.quantile(0.99));
        c_.set(Counter::LatencyP999Ns, h.quantile(0.999));
        c_.set(Counter::LatencyMaxNs, h.max());
        latency_->reset();
    }
    latencyWindowEnd_ = nowNs + cfg_.latencyWindowNs;
}

void Subscriber::deliverDatagram(const wire::DatagramView& v, bool repaired) {
    if (h_.onDatagram) h_.onDatagram(v.bytes, v.firstOffset, v.count);
    std::uint64_t arrivedNs = 0;  // recordLatency: the wall clock, read at the first message delivered
    wire::MessageIterator it(v);
    wire::MessageView m;
    std::uint64_t off = v.firstOffset.get();
    for (; it.next(m); ++off) {
        if (off < next_.get()) continue;  // already delivered (overlapping repair)
        // A replay of [from, to) ends at `to`, even inside a datagram that carries more.
        if (!cfg_.live && off >= cfg_.replayTo) break;
        std::span<const std::byte> payload;
        bool complete = false;
        // A fragment of a message that cannot be delivered: it began before this subscriber's
        // start (or in a lost range), or its reassembly failed. Its offset is reported lost.
        bool orphan = false;
        if (m.whole()) {
            payload = m.payload;
            complete = true;
        } else {
            // A publisher's fragments reach the stream in order, and they are delivered here in
            // offset order: a later fragment whose first one was never seen has no first fragment
            // to come. It is not offered to the reassembler, which would hold it until evicted.
            if (m.first()) openMessage(m, off);
            if (!isOpen(m)) {
                orphan = true;
            } else {
                switch (reasm_.offer(m, payload)) {
                    case Reassembler::Outcome::Complete: complete = true; break;
                    case Reassembler::Outcome::TooLarge: c_.add(Counter::DropTooLarge); break;
                    case Reassembler::Outcome::Inconsistent: c_.add(Counter::DropBadBody); break;
                    default: break;
                }
                if (complete || m.last()) closeMessage(m);
                if (m.last() && !complete) {
                    reasm_.drop(m.publisher, m.pubSeq);
                    orphan = true;
                }
            }
        }
        // A subscriber that takes datagrams, not messages (no onMessage: the archiver), has
        // nothing to report: every offset it was given was delivered to it.
        if (!h_.onMessage) orphan = false;
        if (!orphan) reportOrphans();  // a run of undeliverable fragments ends: one loss notice
        next_ = Offset{off + 1};
        if (orphan) {
            if (orphanEnd_ <= orphanFrom_) orphanFrom_ = off;
            orphanEnd_ = off + 1;
            if (m.last()) reportOrphans();  // that message is over
        }
        if (complete) {
            if (off < processedBelow_) {
                ++suppressed_;  // processed before an exactly-once restart
                c_.add(Counter::DropDuplicate);
            } else {
                c_.add(Counter::MessagesIn);
                if (latency_) {
                    if (arrivedNs == 0) arrivedNs = wallNs();
                    // A publisher's clock ahead of ours counts as 0, so every message is counted.
                    const std::uint64_t ns = arrivedNs > m.publishTsNs ? arrivedNs - m.publishTsNs : 0;
                    latency_->record(ns);
                    c_.add(Counter::LatencyCount);
                    c_.add(Counter::LatencySumNs, ns);
                }
                const auto& handler = redirect_ != nullptr ? *redirect_ : h_.onMessage;
                if (handler)
                    handler(Delivery{off, m.publisher.get(), m.pubSeq.get(), m.publishTsNs, v.senderTsNs, v.epoch.get(), repaired,
                                     payload});
                commitPosition();
            }
        }
    }
    gaps_.advance(next_);
}

void Subscriber::drain() {
    for (;;) {
        reorder_.discardBelow(next_);
        if (!lost_.empty() && lost_.front().first <= next_.get()) {
            const auto [b, e] = lost_.front();
            lost_.pop_front();
            if (e > next_.get()) {
                reportOrphans();
                // Below processedBelow_: reported before an exactly-once restart.
                const std::uint64_t from = std::max({b, next_.get(), processedBelow_});
                next_ = Offset{e};
                gaps_.advance(next_);
                if (e > from) {
                    c_.add(Counter::LossNotices);
                    c_.add(Counter::OffsetsLost, e - from);
                    if (h_.onLoss) h_.onLoss(Offset{from}, e - from);
                    commitPosition();
                }
            }
            continue;
        }
        if (reorder_.empty() || reorder_.lowestFirst() > next_) break;
        const auto bytes = reorder_.popLowest();
        wire::DatagramView v;
        if (wire::decode(bytes, v, false) != wire::DecodeError::Ok) continue;  // verified on arrival
        deliverDatagram(v, (v.flags & (wire::kFlagRetransmit | wire::kFlagReplay)) != 0);
    }
    if (gaps_.holdingNaks() && reorder_.size() <= reorder_.capacity() / 2) gaps_.releaseNaks(nowNs_);
    updateNakWindow();
    c_.set(Counter::HeadOffset, next_.get());
}

void Subscriber::updateNakWindow() {
    // Repairs are asked for in order, lowest first, as far as half the reorder buffer can keep
    // (the other half takes the live stream meanwhile): a receiver far behind (restarted, stalled,
    // overflowed) asks for what it can hold and converges, instead of asking for everything and
    // dropping most of what comes back. The window only moves up.
    if (cfg_.mode != DeliveryMode::AtLeastOnce || !gaps_.started()) return;
    const std::uint64_t slots = std::max<std::uint64_t>(reorder_.capacity() / 2, 1);
    const std::uint64_t window = std::max<std::uint64_t>(slots * avgCount16_ / 16, slots);
    std::uint64_t limit = next_.get() > ~std::uint64_t{0} - window ? ~std::uint64_t{0} - 1 : next_.get() + window;
    const std::uint64_t cur = gaps_.nakLimit().get();
    if (cur != ~std::uint64_t{0}) limit = std::max(limit, cur);
    if (limit != cur) gaps_.setNakLimit(Offset{limit}, nowNs_);
}

int Subscriber::pollTimers(std::uint64_t nowNs) {
    if (!gaps_.hasGaps()) return 0;
    if (gaps_.nextDeadline() > nowNs) return 0;
    nakOpen_ = false;
    archNakOpen_ = false;
    GapTracker::Actions act;
    act.nak = [&](Offset first, std::uint32_t count, bool toArchive) {
        auto& w = toArchive ? archNakWriter_ : nakWriter_;
        auto& buf = toArchive ? archNakBuf_ : nakBuf_;
        bool& open = toArchive ? archNakOpen_ : nakOpen_;
        const transport::Endpoint to = toArchive ? cfg_.archiver : sequencer_;
        if (!open) {
            w.begin(wire::FrameType::Nak, cfg_.stream, epoch_, first);
            open = true;
        }
        if (!w.appendNakRange(first, count)) {
            flushNaks(w, buf, open, to);
            w.begin(wire::FrameType::Nak, cfg_.stream, epoch_, first);
            open = true;
            w.appendNakRange(first, count);
        }
    };
    act.lost = [&](Offset first, std::uint64_t count) {
        addLost(first.get(), first.get() + count);
    };
    updateNakWindow();
    const std::size_t n = gaps_.poll(nowNs, act);
    if (nakOpen_) flushNaks(nakWriter_, nakBuf_, nakOpen_, sequencer_);
    if (archNakOpen_) flushNaks(archNakWriter_, archNakBuf_, archNakOpen_, cfg_.archiver);
    syncGapCounters();
    if (!lost_.empty()) drain();
    return static_cast<int>(n);
}

void Subscriber::syncGapCounters() noexcept {
    const GapStats& g = gaps_.stats();
    c_.set(Counter::GapsDetected, g.gapsDetected);
    c_.set(Counter::NaksSuppressed, g.suppressed);
    c_.set(Counter::GapsFilledBeforeNak, g.filledBeforeNak);
    c_.set(Counter::GapOffsetsRepaired, g.repairedOffsets);
    c_.set(Counter::NakOffsetsRequested, g.nakOffsets);
    c_.set(Counter::RttNs, gaps_.srttNs());
}

void Subscriber::flushNaks(wire::DatagramWriter& w, std::vector<std::byte>& buf, bool& open, transport::Endpoint to) {
    open = false;
    if (w.empty() || to.port == 0) return;
    const std::size_t len = w.finish(wallNs());
    transport::TxItem item{buf.data(), static_cast<std::uint32_t>(len), to};
    if (control_.sendBurst(std::span<const transport::TxItem>(&item, 1)) == 1) c_.add(Counter::NaksSent);
    else c_.add(Counter::SendErrors);
}

}  // namespace seqcast::client
