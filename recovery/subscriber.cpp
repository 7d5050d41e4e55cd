#include "recovery/subscriber.h"

#include <algorithm>
#include <charconv>

#include "fabric/clock.h"

namespace seqcast::recovery {

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
    if (start.kind != StartPosition::Kind::Latest)
        return failInvalid("starting at 'earliest' or an offset needs a replay from an archiver, which this "
                           "build's subscriber cannot do yet; use --from latest");
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
          return p;
      }()),
      reorder_(cfg.reorderBytes, cfg.maxDatagram),
      reasm_(cfg.maxMessage, cfg.maxPartialMessages),
      sequencer_(cfg.sequencer),
      rx_(cfg.burst),
      nakBuf_(wire::kDefaultMtu),
      nakWriter_(nakBuf_) {}

void Subscriber::countDecodeError(wire::DecodeError e) {
    using wire::DecodeError;
    switch (e) {
        case DecodeError::Truncated: c_.add(Counter::DropTruncated); break;
        case DecodeError::BadMagic: c_.add(Counter::DropBadMagic); break;
        case DecodeError::UnsupportedVersion: c_.add(Counter::DropBadVersion); break;
        case DecodeError::BadHeaderLength: c_.add(Counter::DropBadHeaderLength); break;
        case DecodeError::BadBodyLength: c_.add(Counter::DropBadBodyLength); break;
        case DecodeError::BadCrc: c_.add(Counter::DropBadCrc); break;
        case DecodeError::UnknownType: c_.add(Counter::DropUnknownType); break;
        case DecodeError::BadBody: c_.add(Counter::DropBadBody); break;
        default: break;
    }
}

int Subscriber::doWork(std::uint64_t nowNs) {
    nowNs_ = nowNs;
    const std::size_t n = data_.recvBurst(rx_);
    for (std::size_t i = 0; i < n; ++i)
        onDatagram(std::span<const std::byte>(rx_[i].data, rx_[i].len), rx_[i].from, nowNs);
    int work = static_cast<int>(n);
    // The control socket carries rare unicast answers: look at it when the stream is quiet, and
    // every 16th round under load, rather than paying a receive syscall per round.
    if (&control_ != &data_ && (n == 0 || (++rounds_ & 15) == 0)) {
        // Unicast answers (e.g. a heartbeat saying the offsets asked for are gone) come back here.
        const std::size_t m = control_.recvBurst(rx_);
        for (std::size_t i = 0; i < m; ++i)
            onDatagram(std::span<const std::byte>(rx_[i].data, rx_[i].len), rx_[i].from, nowNs);
        work += static_cast<int>(m);
    }
    work += pollTimers(nowNs);
    return work;
}

void Subscriber::onDatagram(std::span<const std::byte> bytes, transport::Endpoint from, std::uint64_t nowNs) {
    nowNs_ = nowNs;
    c_.add(Counter::DatagramsIn);
    c_.add(Counter::BytesIn, bytes.size());
    wire::DatagramView v;
    if (const auto e = wire::decode(bytes, v); e != wire::DecodeError::Ok) {
        countDecodeError(e);
        return;
    }
    if (v.stream != cfg_.stream) {
        c_.add(Counter::DropWrongStream);
        return;
    }
    const bool fromSequencer = v.type == wire::FrameType::Data || v.type == wire::FrameType::Heartbeat ||
                               v.type == wire::FrameType::EndOfStream;
    if (!fromSequencer) {
        c_.add(Counter::DropUnexpectedType);
        return;
    }
    if (haveEpoch_ && v.epoch < epoch_) {
        c_.add(Counter::DropWrongEpoch);  // an older sequencer incarnation
        return;
    }
    if (!haveEpoch_ || v.epoch > epoch_) {
        if (haveEpoch_) c_.add(Counter::EpochChanges);
        haveEpoch_ = true;
        epoch_ = v.epoch;
        c_.set(Counter::Epoch, epoch_.get());
    }
    if (cfg_.sequencer.port == 0) sequencer_ = from;

    if (!gaps_.started()) {
        // Start at `latest`: the first datagram seen sets the delivery point.
        next_ = v.firstOffset;
        gaps_.reset(next_);
    }
    switch (v.type) {
        case wire::FrameType::Heartbeat:
            c_.add(Counter::HeartbeatsReceived);
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
            if (first.get() <= next_.get()) {
                gaps_.onData(first, v.count, nowNs, repaired);
                deliverDatagram(v, repaired);
                drain();
            } else {
                switch (reorder_.insert(first, v.count, bytes)) {
                    case ReorderBuffer::Insert::Stored: gaps_.onData(first, v.count, nowNs, repaired); break;
                    case ReorderBuffer::Insert::Duplicate: c_.add(Counter::DropDuplicate); break;
                    // Not kept: the range stays a gap and is NAKed again later.
                    case ReorderBuffer::Insert::Full:
                    case ReorderBuffer::Insert::TooLarge: c_.add(Counter::DropOverflow); gaps_.onHead(Offset{end}, nowNs); break;
                }
            }
            break;
        }
        default: break;
    }
    c_.set(Counter::HeadOffset, next_.get());
}

void Subscriber::deliverDatagram(const wire::DatagramView& v, bool repaired) {
    wire::MessageIterator it(v);
    wire::MessageView m;
    std::uint64_t off = v.firstOffset.get();
    for (; it.next(m); ++off) {
        if (off < next_.get()) continue;  // already delivered (overlapping repair)
        std::span<const std::byte> payload;
        bool complete = false;
        if (m.whole()) {
            payload = m.payload;
            complete = true;
        } else {
            switch (reasm_.offer(m, payload)) {
                case Reassembler::Outcome::Complete: complete = true; break;
                case Reassembler::Outcome::TooLarge: c_.add(Counter::DropTooLarge); break;
                case Reassembler::Outcome::Inconsistent: c_.add(Counter::DropBadBody); break;
                default: break;
            }
        }
        next_ = Offset{off + 1};
        if (complete) {
            c_.add(Counter::MessagesIn);
            if (h_.onMessage)
                h_.onMessage(Delivery{Offset{off}, m.publisher, m.pubSeq, m.publishTsNs, v.senderTsNs, v.epoch,
                                      repaired, payload});
        }
    }
    gaps_.advance(next_);
}

void Subscriber::drain() {
    for (;;) {
        reorder_.discardBelow(next_);
        if (!lost_.empty() && lost_.front().first <= next_.get()) {
            const auto [b, e] = lost_.front();
            lost_.erase(lost_.begin());
            if (e > next_.get()) {
                const std::uint64_t from = std::max(b, next_.get());
                c_.add(Counter::LossNotices);
                c_.add(Counter::OffsetsLost, e - from);
                if (h_.onLoss) h_.onLoss(Offset{from}, e - from);
                next_ = Offset{e};
                gaps_.advance(next_);
            }
            continue;
        }
        if (reorder_.empty() || reorder_.lowestFirst() > next_) break;
        const auto bytes = reorder_.popLowest();
        wire::DatagramView v;
        if (wire::decode(bytes, v, false) != wire::DecodeError::Ok) continue;  // verified on arrival
        deliverDatagram(v, (v.flags & (wire::kFlagRetransmit | wire::kFlagReplay)) != 0);
    }
    c_.set(Counter::HeadOffset, next_.get());
}

int Subscriber::pollTimers(std::uint64_t nowNs) {
    if (!gaps_.hasGaps()) return 0;
    if (gaps_.nextDeadline() > nowNs) return 0;
    const GapStats before = gaps_.stats();
    nakOpen_ = false;
    GapTracker::Actions act;
    act.nak = [&](Offset first, std::uint32_t count) {
        if (!nakOpen_) {
            nakWriter_.begin(wire::FrameType::Nak, cfg_.stream, epoch_, first);
            nakOpen_ = true;
        }
        if (!nakWriter_.appendNakRange(first, count)) {
            flushNaks();
            nakWriter_.begin(wire::FrameType::Nak, cfg_.stream, epoch_, first);
            nakOpen_ = true;
            nakWriter_.appendNakRange(first, count);
        }
    };
    act.lost = [&](Offset first, std::uint64_t count) {
        lost_.emplace_back(first.get(), first.get() + count);
        std::sort(lost_.begin(), lost_.end());
    };
    const std::size_t n = gaps_.poll(nowNs, act);
    if (nakOpen_) flushNaks();
    const GapStats& after = gaps_.stats();
    c_.add(Counter::GapsDetected, 0);
    c_.set(Counter::GapsDetected, after.gapsDetected);
    c_.set(Counter::NaksSuppressed, after.suppressed);
    c_.set(Counter::GapOffsetsRepaired, after.repairedOffsets);
    c_.set(Counter::NakOffsetsRequested, after.nakOffsets);
    c_.set(Counter::RttNs, gaps_.srttNs());
    (void)before;
    if (!lost_.empty()) drain();
    return static_cast<int>(n);
}

void Subscriber::flushNaks() {
    nakOpen_ = false;
    if (nakWriter_.empty() || sequencer_.port == 0) return;
    const std::size_t len = nakWriter_.finish(wallNs());
    transport::TxItem item{nakBuf_.data(), static_cast<std::uint32_t>(len), sequencer_};
    if (control_.sendBurst(std::span<const transport::TxItem>(&item, 1)) == 1) c_.add(Counter::NaksSent);
    else c_.add(Counter::SendErrors);
}

}  // namespace seqcast::recovery
