// The archiver: a reliable subscriber that records the stream into the archive log and serves
// replays (a range, or from an offset and then live) and repairs older than the sequencer's ring.
//
// Replay protocol: a client sends REPLAY_REQUEST {id, from, to, flags} to the archiver's service
// address and keeps re-sending it while the replay runs, with `from` = the next offset it still
// needs: that is its acknowledgement. The archiver sends the stored DATA datagrams (flagged
// REPLAY) at most `window` bytes beyond the acknowledged offset (a slow client never loses data and
// never slows recording), goes back when the acknowledgement stalls, and ends a range with
// REPLAY_END. NAKs sent to the service address are answered the same way, once.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "archive/archive_log.h"
#include "archive/backlog.h"
#include "client/subscriber.h"
#include "fabric/counters.h"
#include "fabric/result.h"
#include "transport/transport.h"

namespace seqcast::archive {

struct ArchiverConfig {
    ArchiveConfig log;
    client::SubscriberConfig sub;                 // how the stream is received (stream id, NAK policy)
    std::size_t maxSessions = 64;
    std::size_t maxSessionsPerClient = 8;
    std::size_t windowBytes = 1u << 20;   // replay bytes in flight beyond a client's acknowledgement
    std::size_t readBytes = 256u << 10;   // one replay read
    std::uint64_t sessionTimeoutNs = 5'000'000'000;  // a client silent this long is dropped
    std::uint64_t rewindAfterNs = 5'000'000;         // acknowledgement stalled this long: resend
    std::uint32_t maxNakOffsets = 65536;
    // Received datagrams held in memory while every write buffer is in flight (the disk slower
    // than the stream, or stalled); at this size the archiver stops receiving and the socket
    // queue takes what comes meanwhile. Allocated as it fills, returned as it drains.
    std::size_t backlogBytes = 512u << 20;
    // Called for each range of offsets recorded as never received (a gap record), besides the
    // archive_gaps / archive_gap_offsets counters: nobody could repair them in time.
    std::function<void(Offset first, std::uint64_t count)> onGap;

    Status validate() const;
};

class Archiver {
public:
    using Progress = ArchiveLog::Progress;
    // `data`: the multicast stream; `subControl`: the archiver's own NAKs to the sequencer;
    // `service`: where replay requests and NAKs arrive.
    static Result<std::unique_ptr<Archiver>> create(const ArchiverConfig& cfg, transport::Transport& data,
                                                    transport::Transport& subControl, transport::Transport& service,
                                                    Counters& counters, const Progress& progress = {});
    ~Archiver();

    int doWork(std::uint64_t nowNs);
    // Writes what the backlog holds, then everything staged, and syncs (a stop).
    Status flush();
    const ArchiveLog& log() const noexcept { return *log_; }
    const client::Subscriber& subscriber() const noexcept { return *sub_; }
    std::size_t sessions() const noexcept { return sessions_.size(); }
    const Backlog& backlog() const noexcept { return backlog_; }
    std::uint64_t nextTimerNs() const noexcept;
    // Set when recording had to stop (write failure, e.g. disk full); replays of what is stored go on.
    const std::string& failure() const noexcept { return log_->failure(); }

private:
    struct Session {
        transport::Endpoint client;
        std::uint64_t id = 0;
        std::uint64_t acked = 0;       // client's next needed offset
        std::uint64_t to = 0;          // exclusive end (kOffsetOpen: none)
        std::uint32_t flags = 0;
        bool oneShot = false;          // a NAK answer: no acknowledgements, ends after the range
        bool located = false;
        bool ended = false;
        std::uint64_t sendOffset = 0;  // next offset to send
        std::uint64_t readPos = 0;     // log position of the next read
        int slot = -1;                 // read slot; reading while readInFlight
        bool readInFlight = false;
        bool readStale = false;        // a rewind happened while reading: drop the result
        std::byte* buf = nullptr;
        std::size_t bufLen = 0;        // valid bytes in buf from bufStart
        std::size_t bufStart = 0;      // skip (alignment) before the data
        std::size_t bufUsed = 0;
        std::uint64_t bufPos = 0;      // log position of buf[bufStart]
        std::uint64_t lastRequestNs = 0;
        std::uint64_t lastAckMoveNs = 0;
        std::deque<std::pair<std::uint64_t, std::uint32_t>> inflight;  // (end offset, bytes) sent, unacknowledged
        std::size_t inflightBytes = 0;
    };
    Archiver(const ArchiverConfig& cfg, transport::Transport& data, transport::Transport& subControl,
             transport::Transport& service, Counters& counters);
    void onRequest(const wire::DatagramView& v, transport::Endpoint from, std::uint64_t nowNs);
    void onNak(const wire::DatagramView& v, transport::Endpoint from, std::uint64_t nowNs);
    Session* find(transport::Endpoint client, std::uint64_t id);
    Session* open(transport::Endpoint client, std::uint64_t id, std::uint64_t from, std::uint64_t to,
                  std::uint32_t flags, bool oneShot, std::uint64_t nowNs);
    bool locate(Session& s);
    int serve(Session& s, std::uint64_t nowNs);
    int sendQueued();  // the replay datagrams queued in tx_; returns how many
    void end(Session& s, wire::ReplayStatus st, std::uint64_t next);
    void release(Session& s);
    void record(std::span<const std::byte> dg, Offset first, std::uint32_t count);
    void hold(std::span<const std::byte> dg);
    // Moves datagrams from the backlog into the log while it takes them, about maxBytes at most.
    void drainPending(std::size_t maxBytes = ~std::size_t{0});
    static constexpr int kReceiveRounds = 16;                 // bursts read per doWork, at most
    static constexpr std::size_t kDrainBytes = 1u << 20;      // backlog moved per doWork beyond what it read
    void skipTo(Offset to);  // offsets [log next, to) are recorded as never received
    void updateGauges();

    ArchiverConfig cfg_;
    transport::Transport& data_;
    transport::Transport& subControl_;
    transport::Transport& service_;
    Counters& c_;
    std::unique_ptr<ArchiveLog> log_;
    std::unique_ptr<client::Subscriber> sub_;
    // Received datagrams waiting for a write buffer, in stream order, with the losses between them.
    Backlog backlog_;
    std::size_t roundBytes_ = 0;  // received in this doWork
    std::vector<std::unique_ptr<Session>> sessions_;
    std::vector<int> freeSlots_;
    std::vector<std::byte*> slotBufs_;
    std::vector<transport::RxSlot> rx_;
    std::vector<transport::TxItem> tx_;
    std::vector<ArchiveLog::ReadDone> reads_;
    std::uint64_t nowNs_ = 0;
};

}  // namespace seqcast::archive
