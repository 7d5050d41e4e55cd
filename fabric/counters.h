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
};
static_assert(kCounterNames.back() == "rtt_ns", "label table matches Counter");

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
