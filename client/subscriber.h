// The subscriber: delivers a stream's messages in offset order, each exactly once, repairing gaps
// with NAKs to the sequencer and reporting what cannot be repaired as an explicit loss notice.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "seqcast/message.hpp"

#include "client/commit_file.h"
#include "fabric/histogram.h"
#include "client/gap_tracker.h"
#include "client/reassembler.h"
#include "client/reorder_buffer.h"
#include "fabric/counters.h"
#include "fabric/result.h"
#include "fabric/wire.h"
#include "transport/transport.h"

namespace seqcast::client {

enum class DeliveryMode : std::uint8_t { AtMostOnce, AtLeastOnce };

struct StartPosition {
    enum class Kind : std::uint8_t { Latest, Earliest, AtOffset } kind = Kind::Latest;
    Offset offset{};
};
Result<StartPosition> parseStartPosition(const std::string& text);

struct SubscriberConfig {
    StreamId stream{1};
    DeliveryMode mode = DeliveryMode::AtLeastOnce;
    StartPosition start;
    NakPolicy nak;
    std::size_t reorderBytes = 32u << 20;
    std::size_t maxDatagram = 2048;
    std::uint32_t maxMessage = wire::kDefaultMaxMessage;
    std::size_t maxPartialMessages = 256;
    transport::Endpoint sequencer;  // where NAKs go; unset: the source of the stream's datagrams
    transport::Endpoint archiver;   // replays (start at earliest / an offset) and repairs older than the sequencer's ring
    bool repairFromStart = false;   // start at an offset and repair from the sequencer, no replay (the archiver itself)
    bool live = true;               // false: replay [start, replayTo) only, no live stream (seqcast replay)
    // Publish -> deliver latency of every delivered message (CLOCK_REALTIME, read once per
    // datagram) into the counters: count and sum, and every latencyWindowNs the quantiles of the
    // window just ended (latency_p50_ns ... latency_max_ns, latency_window_count).
    bool recordLatency = false;
    std::uint64_t latencyWindowNs = 5'000'000'000;
    std::uint64_t replayTo = wire::kOffsetOpen;
    bool replayWait = true;         // ask the archiver to wait for offsets it does not have yet
    std::uint64_t replayAckNs = 1'000'000;  // replay request / acknowledgement interval
    std::size_t burst = 64;
    // Exactly-once processing (with mode AtLeastOnce): the subscriber commits its position here
    // after every message and loss notice the application's handler returns from, with the
    // application's state (SubscriberHandlers::onCommit) in the same atomic commit. A subscriber
    // created on a file that holds a commit resumes from it (`start` is then ignored): it receives
    // again from CommitState::resumeFrom (so that a fragmented message begun before the commit is
    // reassembled whole) and hands the application nothing below CommitState::next (dedup by
    // offset). Without an archiver the resumed range is repaired from the sequencer.
    CommitFile* commit = nullptr;

    Status validate() const;
};

// What is delivered: the public API's own struct (offset, publisher, pub_seq, the two timestamps,
// epoch, repaired, payload view), so an application's handler is called by the engine directly.
using Delivery = seqcast::Message;

struct SubscriberHandlers {
    std::function<void(const Delivery&)> onMessage;
    // Offsets [first, first + count) will never be delivered: a gap nobody could repair, or the
    // fragments of a message that cannot be reassembled because its first fragment lies before the
    // point where this subscriber started (--from inside a message) or was lost, or because it
    // failed reassembly (too large, inconsistent, evicted); the latter only when onMessage is set.
    std::function<void(Offset first, std::uint64_t count)> onLoss;
    // Exactly-once (SubscriberConfig::commit): fills in the application's part (CommitState::app)
    // of the commit about to be written, after onMessage or onLoss returned.
    std::function<void(CommitState& s)> onCommit;
    // A DATA datagram, exactly as received, whose offsets are being delivered in order (the archiver
    // records these). first may be below the delivery point when a repair overlaps.
    std::function<void(std::span<const std::byte> datagram, Offset first, std::uint32_t count)> onDatagram;
    // The archiver ended or refused the replay (for messages to the user).
    std::function<void(wire::ReplayStatus status, Offset next, Offset earliest)> onReplayEnd;
};

class Subscriber {
public:
    // `data` receives the multicast stream; `control` sends NAKs (may be the same transport).
    Subscriber(const SubscriberConfig& cfg, transport::Transport& data, transport::Transport& control,
               Counters& counters, SubscriberHandlers handlers);

    // Receives a burst, delivers what is in order, runs repair timers. Returns work done.
    int doWork(std::uint64_t nowNs);
    // Messages go to `*handler` instead of SubscriberHandlers::onMessage until this is called with
    // nullptr (the public API passes the handler of each poll() this way; an empty one drops the
    // messages, as no onMessage would). Whether messages are reassembled at all still follows
    // SubscriberHandlers::onMessage.
    void redirectMessages(const std::function<void(const Delivery&)>* handler) noexcept { redirect_ = handler; }
    // Processes one received datagram (exposed for tests and other transports).
    void onDatagram(std::span<const std::byte> bytes, transport::Endpoint from, std::uint64_t nowNs);
    // Runs timers and sends NAKs; returns actions taken.
    int pollTimers(std::uint64_t nowNs);

    bool started() const noexcept { return gaps_.started(); }
    bool replaying() const noexcept { return replayActive_; }
    // Ends a replay in progress early: the archiver is told (CANCEL) and frees its session at once
    // rather than after its 5-second silence timeout. No effect without one.
    void cancelReplay() { endReplay(true); }
    // A replay-only subscriber has everything it asked for (or was told it never will).
    bool replayFinished() const noexcept { return replayFinished_; }
    Offset nextOffset() const noexcept { return next_; }
    // What an exactly-once commit records now: every message and loss notice below `next` has been
    // handed to the application; a restart must receive again from `resumeFrom` (<= next), the
    // first fragment of the lowest message begun below `next` and not complete yet.
    struct Position {
        Offset resumeFrom;
        Offset next;
    };
    Position position() const noexcept;
    // Messages not handed to the application again after an exactly-once restart (below the
    // committed position).
    std::uint64_t redeliveriesSuppressed() const noexcept { return suppressed_; }
    Offset headOffset() const noexcept { return gaps_.head(); }
    Epoch epoch() const noexcept { return epoch_; }
    // The sequencer ended the stream (END_OF_STREAM, or a heartbeat with the END flag) and every
    // offset before the end has been delivered or reported lost.
    bool endOfStream() const noexcept { return ended_ && next_ >= gaps_.head() && !gaps_.hasGaps(); }
    std::uint64_t nextTimerNs() const noexcept { return gaps_.nextDeadline(); }
    const GapTracker& gaps() const noexcept { return gaps_; }
    const Reassembler& reassembler() const noexcept { return reasm_; }

private:
    void syncGapCounters() noexcept;  // the gap tracker's stats into the process counters
    void deliverDatagram(const wire::DatagramView& v, bool repaired);
    void drain();
    void updateNakWindow();
    void flushNaks(wire::DatagramWriter& w, std::vector<std::byte>& buf, bool& open, transport::Endpoint to);
    void pollReplay(std::uint64_t nowNs, bool force);
    void sendReplayRequest(std::uint32_t flags);
    void onReplayEndFrame(const wire::DatagramView& v);
    void endReplay(bool cancel);
    void declareLost(std::uint64_t from, std::uint64_t to);
    // Fragmented messages in progress (first fragment delivered in order, last not yet).
    bool isOpen(const wire::MessageView& m) const noexcept;
    void openMessage(const wire::MessageView& m, std::uint64_t off);
    void closeMessage(const wire::MessageView& m) noexcept;
    void reportOrphans();
    void commitPosition();

    SubscriberConfig cfg_;
    transport::Transport& data_;
    transport::Transport& control_;
    Counters& c_;
    SubscriberHandlers h_;
    const std::function<void(const Delivery&)>* redirect_ = nullptr;
    GapTracker gaps_;
    ReorderBuffer reorder_;
    Reassembler reasm_;
    Offset next_{0};
    Epoch epoch_{0};
    bool haveEpoch_ = false;
    bool ended_ = false;
    transport::Endpoint sequencer_;
    // Ranges declared lost, sorted; they mostly arrive in order (the gap tracker emits them lowest
    // first) and leave from the front.
    std::deque<std::pair<std::uint64_t, std::uint64_t>> lost_;
    void addLost(std::uint64_t from, std::uint64_t to);
    std::vector<transport::RxSlot> rx_;
    std::vector<std::byte> nakBuf_;
    wire::DatagramWriter nakWriter_;
    bool nakOpen_ = false;
    std::vector<std::byte> archNakBuf_;
    wire::DatagramWriter archNakWriter_;
    bool archNakOpen_ = false;
    // Replay-merge.
    bool replayActive_ = false;
    bool replayFinished_ = false;
    std::uint64_t replayId_ = 0;
    std::uint64_t lastReplayReqNs_ = 0;
    bool liveSeen_ = false;
    std::uint64_t liveJoin_ = 0;  // the replay must reach this offset before live takes over
    std::uint64_t nowNs_ = 0;
    std::uint32_t rounds_ = 0;
    std::optional<Histogram> latency_;  // recordLatency: the current window
    std::uint64_t latencyWindowEnd_ = 0;
    void publishLatency(std::uint64_t nowNs);
    std::uint64_t avgCount16_ = 16;  // offsets per DATA datagram, x16, a moving average
    // Where each fragmented message in progress began: no fragment of a message that is not here
    // can be delivered (its first fragment was before the start, or lost), and an exactly-once
    // restart resumes at the lowest of them. At most cfg.maxPartialMessages; the oldest is
    // forgotten to make room (its message is then reported lost at its next fragment).
    struct OpenMessage {
        PublisherId publisher;
        PubSeq pubSeq;
        std::uint64_t firstOffset;
    };
    std::vector<OpenMessage> open_;
    // Offsets [orphanFrom_, orphanEnd_) hold fragments of messages that cannot be delivered, not
    // reported yet (a run of them becomes one loss notice). Always ends at next_ when not empty.
    std::uint64_t orphanFrom_ = 0;
    std::uint64_t orphanEnd_ = 0;
    // Exactly-once after a restart: messages and losses below this were processed before.
    std::uint64_t processedBelow_ = 0;
    std::uint64_t suppressed_ = 0;
};

}  // namespace seqcast::client
