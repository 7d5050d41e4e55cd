// Process counters: an enum plus a label table. Each value owns a cache line; the memory is
// provided by the caller (heap for tests, a shared-memory file for `seqcast stat`).
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string_view>

namespace seqcast {

enum class Counter : std::uint16_t {
    DatagramsIn,
    DatagramsOut,
    BytesIn,
    BytesOut,
    MessagesIn,
    MessagesOut,
    SendErrors,
    RecvErrors,
    SendPartial,          // datagrams the kernel did not take in one burst (retried)
    DropTruncated,
    DropBadMagic,
    DropBadVersion,
    DropBadHeaderLength,
    DropBadBodyLength,
    DropBadCrc,
    DropUnknownType,
    DropBadBody,
    DropBadEntryCrc,      // DATA/PUB whose entry failed the publisher's CRC32C (dropped whole, repaired like a loss)
    DropWrongStream,
    DropWrongEpoch,
    DropUnexpectedType,
    DropDuplicate,        // entries already delivered / sequenced
    DropOutOfOrder,       // PUB entries ahead of the expected pub_seq
    DropTooLarge,
    DropOverflow,         // buffers full
    DropNotAllowed,       // source outside the --allow list
    DropBadAuth,          // authenticated stream: MAC missing, forged or altered
    DropUnknownKey,       // authenticated stream: a key id not in the key file
    GapsDetected,
    GapOffsetsRepaired,
    NaksSent,
    NaksReceived,
    NaksSuppressed,       // subscriber: gaps closed by a retransmission before our NAK; sequencer: NAKs coalesced
    GapsFilledBeforeNak,  // gaps closed by late originals (reordering) before their first NAK
    NakOffsetsRequested,
    Retransmits,          // datagrams re-sent
    RetransmitsRateLimited,
    RetransmitsHostLimited,  // one requesting host's share of the budget spent
    RetransmitsUnavailable,  // offsets no longer in the retransmit ring
    RetransmitsBadCrc,    // ring copies that failed their CRC check when asked for: never sent
    LossNotices,
    OffsetsLost,
    HeartbeatsSent,
    HeartbeatsReceived,
    PubAcksSent,
    PubAcksReceived,
    PubNaksSent,
    PubNaksReceived,
    PubRetransmits,
    BackPressure,
    MessagesConfirmed,
    FragmentsEvicted,
    PublishersExpired,       // idle publishers whose slot was given to a new one (sequencer)
    PublishersUnrecognised,  // a publisher with no record resumed mid-stream: its dedup state was gone
    EpochChanges,
    ReplaysStarted,
    ReplaysRefused,
    ReplayDatagramsOut,
    ReplaySessions,       // gauge
    ArchiveNext,          // gauge: offset after the last record appended
    ArchiveWritten,       // gauge: offset after the last record in the file
    ArchiveDurable,       // gauge: offset after the last record written and fdatasync'ed
    ArchiveEarliest,      // gauge: earliest retained offset
    ArchiveGaps,          // gap records written: ranges of offsets the archiver never received
    ArchiveGapOffsets,    // offsets in those ranges
    ArchiveBacklogBytes,  // gauge: received bytes held in memory, waiting for a write buffer
    HeadOffset,           // gauge: next offset (sequencer) / next expected offset (subscriber)
    Epoch,                // gauge
    RttNs,                // gauge: smoothed round-trip estimate
    // Publish -> deliver latency, where recorded (a subscriber with recordLatency):
    LatencyCount,         // messages measured
    LatencySumNs,         // their latencies added up
    LatencyWindowCount,   // gauge: messages measured in the last window (the quantiles below are of those)
    LatencyP50Ns,         // gauge
    LatencyP90Ns,         // gauge
    LatencyP99Ns,         // gauge
    LatencyP999Ns,        // gauge
    LatencyMaxNs,         // gauge
    // Market-data gateways (role mold-egress, mold-ingress, soup-server); beside them each uses
    // messages_out, datagrams_out, bytes_out, heartbeats_sent, send_errors, head_offset and others.
    GatewayRequestsIn,       // MoldUDP64 re-requests received (mold-egress)
    GatewayRequestsRefused,  // ... refused: malformed, another session, zero count, beyond the head, rate, busy
    GatewayRequestsUnserved, // ... the archive could not serve
    GatewayRequestsOut,      // MoldUDP64 re-requests sent (mold-ingress)
    GatewayRecovered,        // feed messages recovered through re-requests (mold-ingress)
    GatewayClients,          // gauge: SoupBinTCP clients connected
    GatewayLogins,           // SoupBinTCP logins accepted
    GatewayLoginsRejected,   // ... rejected or dropped as malformed
    GatewayDisconnects,      // SoupBinTCP clients the server disconnected: slow, silent, protocol errors, loss, failed replays
    // Hot standby (sequencer --ha).
    HaRole,                  // gauge: 0 single, 1 leader, 2 standby, 3 stepped down
    HaTakeovers,             // leaderships this process took
    HaNotLeader,             // PUBs a standby refused (PUB_NAK not-leader) and NAKs it ignored
    ReplDatagramsOut,        // DATA datagrams sent to standbys, resends included
    ReplResends,             // ... of them resent (a standby's acknowledgement did not come)
    ReplDatagramsIn,         // DATA datagrams a standby stored from its leader
    ReplReleaseWaitNs,       // sum over released datagrams of commit -> release (leader waits for its standbys)
    Count_
};
inline constexpr std::size_t kCounterCount = static_cast<std::size_t>(Counter::Count_);

inline constexpr std::array<std::string_view, kCounterCount> kCounterNames = {
    "datagrams_in", "datagrams_out", "bytes_in", "bytes_out", "messages_in", "messages_out",
    "send_errors", "recv_errors", "send_partial",
    "drop_truncated", "drop_bad_magic", "drop_bad_version", "drop_bad_header_length", "drop_bad_body_length",
    "drop_bad_crc", "drop_unknown_type", "drop_bad_body", "drop_bad_entry_crc", "drop_wrong_stream", "drop_wrong_epoch",
    "drop_unexpected_type", "drop_duplicate", "drop_out_of_order", "drop_too_large", "drop_overflow", "drop_not_allowed", "drop_bad_auth", "drop_unknown_key",
    "gaps_detected", "gap_offsets_repaired", "naks_sent", "naks_received", "naks_suppressed",
    "gaps_filled_before_nak", "nak_offsets_requested", "retransmits", "retransmits_rate_limited", "retransmits_host_limited",
    "retransmits_unavailable", "retransmits_bad_crc",
    "loss_notices", "offsets_lost", "heartbeats_sent", "heartbeats_received", "pub_acks_sent",
    "pub_acks_received", "pub_naks_sent", "pub_naks_received", "pub_retransmits", "back_pressure",
    "messages_confirmed", "fragments_evicted", "publishers_expired", "publishers_unrecognised", "epoch_changes", "replays_started", "replays_refused",
    "replay_datagrams_out", "replay_sessions", "archive_next", "archive_written", "archive_durable",
    "archive_earliest", "archive_gaps", "archive_gap_offsets", "archive_backlog_bytes", "head_offset", "epoch", "rtt_ns",
    "latency_count", "latency_sum_ns", "latency_window_count", "latency_p50_ns", "latency_p90_ns", "latency_p99_ns",
    "latency_p999_ns", "latency_max_ns",
    "gateway_requests_in", "gateway_requests_refused", "gateway_requests_unserved", "gateway_requests_out", "gateway_recovered",
    "gateway_clients", "gateway_logins", "gateway_logins_rejected", "gateway_disconnects",
    "ha_role", "ha_takeovers", "ha_not_leader", "repl_datagrams_out", "repl_resends", "repl_datagrams_in",
    "repl_release_wait_ns",
};
static_assert(kCounterNames.back() == "repl_release_wait_ns", "label table matches Counter");

// One line on each counter, and whether it is a gauge (a level that may go down) rather than a
// count that only grows: for `seqcast stat --serve` (Prometheus HELP and TYPE) and counterInfo().
struct CounterMeta {
    std::string_view help;
    bool gauge;
};
inline constexpr std::array<CounterMeta, kCounterCount> kCounterMeta = {{
    {"Datagrams received", false},
    {"Datagrams sent", false},
    {"Bytes received (UDP payload)", false},
    {"Bytes sent (UDP payload)", false},
    {"Messages received (subscriber: delivered to the application; sequencer: entries from publishers)", false},
    {"Messages sent (sequencer: entries sequenced; publisher: messages offered)", false},
    {"Send calls that failed", false},
    {"Receive calls that failed", false},
    {"Datagrams the kernel did not take in one burst (retried)", false},
    {"Datagrams dropped: truncated", false},
    {"Datagrams dropped: bad magic", false},
    {"Datagrams dropped: unknown wire version", false},
    {"Datagrams dropped: bad header length", false},
    {"Datagrams dropped: bad body length", false},
    {"Datagrams dropped: datagram CRC32C mismatch", false},
    {"Datagrams dropped: unknown frame type", false},
    {"Datagrams dropped: malformed body", false},
    {"Entries dropped: the publisher's CRC32C did not match (repaired like a loss)", false},
    {"Datagrams dropped: another stream", false},
    {"Datagrams dropped: an older epoch", false},
    {"Datagrams dropped: a frame type this role does not take", false},
    {"Entries dropped: already delivered or sequenced", false},
    {"Publisher entries dropped: ahead of the expected pub_seq", false},
    {"Messages refused or dropped: larger than the maximum", false},
    {"Datagrams dropped: buffers full", false},
    {"Datagrams dropped: source outside the allow list", false},
    {"Datagrams dropped: authentication missing, forged or altered", false},
    {"Datagrams dropped: a key id not in the key file", false},
    {"Gaps detected in the stream", false},
    {"Offsets of gaps that were repaired", false},
    {"NAKs sent", false},
    {"NAKs received", false},
    {"Subscriber: gaps closed by a retransmission before its NAK; sequencer: NAKs coalesced", false},
    {"Gaps closed by late originals before their first NAK", false},
    {"Offsets asked for in NAKs", false},
    {"Datagrams retransmitted", false},
    {"Retransmissions refused by the rate limit", false},
    {"Retransmissions refused: one requesting host's share spent", false},
    {"Retransmissions impossible: offsets no longer in the ring", false},
    {"Retransmissions withheld: the ring's copy failed its CRC check", false},
    {"Loss notices given to the application", false},
    {"Offsets declared lost (never delivered)", false},
    {"Heartbeats sent", false},
    {"Heartbeats received", false},
    {"Publisher acknowledgements sent", false},
    {"Publisher acknowledgements received", false},
    {"Publisher NAKs sent", false},
    {"Publisher NAKs received", false},
    {"Messages a publisher sent again", false},
    {"Offers refused: the window was full", false},
    {"Messages the sequencer confirmed to their publisher", false},
    {"Partial messages evicted from reassembly", false},
    {"Idle publishers whose slot was given to a new one", false},
    {"Publishers with no record that resumed mid-stream", false},
    {"Epoch changes seen", false},
    {"Replays started", false},
    {"Replays refused", false},
    {"Datagrams sent by replays", false},
    {"Replay sessions open", true},
    {"Offset after the last record appended to the archive", true},
    {"Offset after the last record in the archive file", true},
    {"Offset after the last record written and synced to disk", true},
    {"Earliest offset the archive retains", true},
    {"Gap records written: ranges of offsets the archiver never received", false},
    {"Offsets in gap records", false},
    {"Received bytes held in memory, waiting for a write buffer", true},
    {"Next offset (sequencer) or next expected offset (subscriber, archiver)", true},
    {"Current epoch", true},
    {"Smoothed round-trip estimate, nanoseconds", true},
    {"Messages whose publish-to-deliver latency was measured", false},
    {"Their publish-to-deliver latencies added up, nanoseconds", false},
    {"Messages measured in the last latency window", true},
    {"Publish-to-deliver latency, median of the last window, nanoseconds", true},
    {"Publish-to-deliver latency, 90th percentile of the last window, nanoseconds", true},
    {"Publish-to-deliver latency, 99th percentile of the last window, nanoseconds", true},
    {"Publish-to-deliver latency, 99.9th percentile of the last window, nanoseconds", true},
    {"Publish-to-deliver latency, maximum of the last window, nanoseconds", true},
    {"MoldUDP64 re-requests received (mold-egress)", false},
    {"MoldUDP64 re-requests refused: malformed, another session, zero count, beyond the head, over the rate, busy (mold-egress)", false},
    {"MoldUDP64 re-requests the archive could not serve (mold-egress)", false},
    {"MoldUDP64 re-requests sent to the feed's request server (mold-ingress)", false},
    {"Feed messages recovered through re-requests (mold-ingress)", false},
    {"SoupBinTCP clients connected (soup-server)", true},
    {"SoupBinTCP logins accepted (soup-server)", false},
    {"SoupBinTCP logins rejected or dropped as malformed (soup-server)", false},
    {"SoupBinTCP clients disconnected by the server: slow, silent, protocol errors, stream loss, failed replays (soup-server)", false},
    {"HA role of the sequencer: 0 single, 1 leader, 2 standby, 3 stepped down", true},
    {"leaderships this sequencer took (HA)", false},
    {"PUBs a standby sequencer refused as not the leader, and NAKs it ignored (HA)", false},
    {"DATA datagrams a leading sequencer sent to its standbys, resends included (HA)", false},
    {"DATA datagrams resent to a standby whose acknowledgement did not come (HA)", false},
    {"DATA datagrams a standby sequencer stored from its leader (HA)", false},
    {"sum over released datagrams of the wait from commit to release for the standbys' acknowledgements, ns (HA)", false},
}};
static_assert(!kCounterMeta.back().help.empty(), "a line for every Counter");

struct alignas(64) CounterSlot {
    std::atomic<std::uint64_t> value{0};
};
static_assert(sizeof(CounterSlot) == 64);

// Single writer per counter set: increments are plain load+store (no locked instruction).
class Counters {
public:
    Counters() : owned_(std::make_unique<CounterSlot[]>(kCounterCount)), slots_(owned_.get()) {}
    explicit Counters(CounterSlot* external) : slots_(external) {}
    Counters(const Counters&) = delete;
    Counters& operator=(const Counters&) = delete;

    void add(Counter c, std::uint64_t n = 1) noexcept {
        auto& v = slots_[static_cast<std::size_t>(c)].value;
        v.store(v.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
    }
    void set(Counter c, std::uint64_t n) noexcept { slots_[static_cast<std::size_t>(c)].value.store(n, std::memory_order_relaxed); }
    std::uint64_t get(Counter c) const noexcept {
        return slots_[static_cast<std::size_t>(c)].value.load(std::memory_order_relaxed);
    }
    static std::string_view name(Counter c) noexcept { return kCounterNames[static_cast<std::size_t>(c)]; }

private:
    std::unique_ptr<CounterSlot[]> owned_;
    CounterSlot* slots_;
};

// The drop counter for a datagram that failed wire::decode (passed as its DecodeError value, so
// this header needs no wire include): Count_ for Ok.
constexpr Counter dropCounterFor(std::uint8_t decodeError) noexcept {
    constexpr Counter kByError[] = {Counter::Count_,           Counter::DropTruncated,       Counter::DropBadMagic,
                                    Counter::DropBadVersion,   Counter::DropBadHeaderLength, Counter::DropBadBodyLength,
                                    Counter::DropBadCrc,       Counter::DropUnknownType,     Counter::DropBadBody,
                                    Counter::DropBadEntryCrc};
    return decodeError < std::size(kByError) ? kByError[decodeError] : Counter::DropBadBody;
}

}  // namespace seqcast
