// seqcast wire protocol v2. docs/PROTOCOL.md describes every byte; keep the two in step.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>
#include <type_traits>

#include "fabric/le.h"
#include "fabric/types.h"

namespace seqcast::wire {

inline constexpr std::uint32_t kMagic = 0x54435153u;  // bytes 'S' 'Q' 'C' 'T'
inline constexpr std::uint8_t kVersionMajor = 2;  // 2: entries carry the publisher's CRC32C
inline constexpr std::uint8_t kVersionMinor = 0;
inline constexpr std::size_t kDefaultMtu = 1408;      // bytes of UDP payload
inline constexpr std::size_t kMaxDatagram = 65507;    // largest IPv4 UDP payload
inline constexpr std::size_t kMinMtu = 128;
inline constexpr std::uint32_t kDefaultMaxMessage = 1u << 20;
inline constexpr std::uint32_t kMaxNakRangeCount = 1u << 20;  // offsets one NAK range may name

enum class FrameType : std::uint8_t {
    Data = 1,
    Heartbeat = 2,
    Nak = 3,
    Pub = 4,
    PubAck = 5,
    PubNak = 6,
    ReplayRequest = 7,
    ReplayEnd = 8,
    EndOfStream = 9,
    // Hot standby (HA): between a leading sequencer and its standbys, unicast on their replication
    // sockets. The leader sends each DATA datagram to its standbys before it multicasts it, and a
    // HEARTBEAT (first_offset = what it has released to the group) when that moves or it is idle.
    ReplAck = 10,       // standby -> leader: first_offset = the standby's next offset (it holds all below)
    ReplJoin = 11,      // standby -> leader: send me a snapshot (publisher positions and the head)
    ReplSnapshot = 12,  // leader -> standby: one chunk of a snapshot at head first_offset
};
inline constexpr std::uint8_t kMaxFrameType = 12;
std::string_view frameTypeName(FrameType t) noexcept;

// Datagram header flags. Unknown bits are ignored by readers (newer minor versions may set them).
inline constexpr std::uint16_t kFlagRetransmit = 1u << 0;  // DATA re-sent in answer to a NAK
inline constexpr std::uint16_t kFlagReplay = 1u << 1;      // DATA served from an archive replay
// HEARTBEAT: the stream has ended; first_offset is its final length (the sender stopped after
// END_OF_STREAM and heartbeats for a while with this bit, so a receiver that lost every
// END_OF_STREAM still learns of the end).
inline constexpr std::uint16_t kFlagEnd = 1u << 2;

// Message (entry) flags.
inline constexpr std::uint16_t kFragFirst = 1u << 0;
inline constexpr std::uint16_t kFragLast = 1u << 1;
inline constexpr std::uint16_t kUnfragmented = kFragFirst | kFragLast;

struct DatagramHeader {
    LeU32 magic;
    LeU8 versionMajor;
    LeU8 versionMinor;
    LeU16 headerLen;  // bytes from the start of the datagram to the body; >= sizeof(DatagramHeader)
    LeU8 type;
    LeU8 reserved;
    LeU16 flags;
    LeU32 streamId;
    LeU32 epoch;
    LeU32 crc32c;       // CRC32C of the whole datagram with this field zeroed
    LeU64 firstOffset;  // DATA: offset of the first entry; HEARTBEAT/END_OF_STREAM: next offset
    LeU64 senderTsNs;   // sender's CLOCK_REALTIME when the datagram was sent
    LeU32 count;        // entries in the body (messages, NAK ranges, ACK runs)
    LeU32 bodyLen;      // bytes after the header; the datagram is exactly headerLen + bodyLen
};

struct MessageHeader {
    LeU32 length;  // payload bytes of this entry (one fragment for a fragmented message)
    LeU16 flags;   // kFragFirst / kFragLast
    LeU16 reserved;
    LeU32 publisherId;
    LeU32 fragOffset;  // byte position of this fragment within its message
    LeU64 pubSeq;      // publisher's message number; shared by all fragments of a message
    LeU64 publishTsNs; // publisher's CLOCK_REALTIME at offer()
    // The publisher's CRC32C of this entry (entryCrc below: its payload, then bytes 0..31 of this
    // header). Set where the entry is made and never rewritten on the way: the sequencer copies
    // entries verbatim, so every reader checks what the publisher sent, end to end.
    LeU32 crc32c;
    LeU32 reserved2;
};

struct NakRange {
    LeU64 first;
    LeU32 count;
    LeU32 reserved;
};

struct HeartbeatBody {
    LeU64 oldestRetained;  // lowest offset the sender can still retransmit
};

struct PubAckBody {
    LeU32 publisherId;
    LeU32 reserved;
};

struct PubAckRun {
    LeU64 firstPubSeq;  // messages firstPubSeq .. firstPubSeq+count-1 were sequenced
    LeU64 firstOffset;  // at offsets firstOffset, firstOffset+stride, ...
    LeU32 count;
    LeU32 stride;       // entries per message (1 unless fragmented)
};

// NotLeader: a standby sequencer (HA) got the PUB; the publisher tries its next sequencer address.
enum class PubNakReason : std::uint32_t { Gap = 1, UnknownPublisher = 2, TooManyPublishers = 3, TooLarge = 4, NotLeader = 5 };

struct PubNakBody {
    LeU32 publisherId;
    LeU32 reason;
    LeU64 expectedPubSeq;  // the next pub_seq the sequencer will accept from this publisher
    LeU64 heldFromPubSeq;  // lowest pub_seq it holds beyond the gap (resend [expected, heldFrom)); 0: none held
};

inline constexpr std::uint32_t kReplayLive = 1u << 0;      // after `to`, continue with the live stream
inline constexpr std::uint32_t kReplayWait = 1u << 1;      // wait for offsets beyond the head instead of failing
inline constexpr std::uint32_t kReplayCancel = 1u << 2;    // end this request
inline constexpr std::uint32_t kReplayEarliest = 1u << 3;  // start at the earliest retained offset if `from` is older
inline constexpr std::uint64_t kOffsetOpen = ~std::uint64_t{0};

struct ReplayRequestBody {
    LeU64 requestId;
    LeU64 from;
    LeU64 to;  // exclusive; kOffsetOpen = no end
    LeU32 flags;
    LeU32 reserved;
};

enum class ReplayStatus : std::uint32_t { Complete = 0, Overwritten = 1, BeyondHead = 2, Refused = 3, Failed = 4, Lost = 5 };

struct ReplayEndBody {
    LeU64 requestId;
    LeU32 status;
    LeU32 reserved;
    LeU64 nextOffset;      // first offset not served
    LeU64 earliestOffset;  // earliest offset the server retains
};

struct ReplAckBody {
    LeU64 session;  // the snapshot session the standby follows (ReplJoinBody::session)
};

struct ReplJoinBody {
    LeU64 session;  // chosen by the standby, fresh for each join
};

struct ReplSnapshotBody {
    LeU64 session;
    LeU32 chunk;   // 0 .. chunks-1
    LeU32 chunks;
    LeU64 tableHead;  // the publisher positions are those after offset tableHead-1 was sequenced
    // then `count` ReplPublisher records; the header's first_offset is where the standby's ring
    // starts (what the leader has released), at or below tableHead
};

struct ReplPublisher {
    LeU32 publisherId;
    LeU32 nextFrag;
    LeU64 nextPubSeq;
};

#define SEQCAST_WIRE_STRUCT(T, size)                                   \
    static_assert(sizeof(T) == (size), #T " size");                    \
    static_assert(alignof(T) == 1, #T " alignment");                   \
    static_assert(std::is_trivially_copyable_v<T>, #T " trivially copyable")
SEQCAST_WIRE_STRUCT(DatagramHeader, 48);
SEQCAST_WIRE_STRUCT(MessageHeader, 40);
SEQCAST_WIRE_STRUCT(NakRange, 16);
SEQCAST_WIRE_STRUCT(HeartbeatBody, 8);
SEQCAST_WIRE_STRUCT(PubAckBody, 8);
SEQCAST_WIRE_STRUCT(PubAckRun, 24);
SEQCAST_WIRE_STRUCT(PubNakBody, 24);
SEQCAST_WIRE_STRUCT(ReplayRequestBody, 32);
SEQCAST_WIRE_STRUCT(ReplayEndBody, 32);
SEQCAST_WIRE_STRUCT(ReplAckBody, 8);
SEQCAST_WIRE_STRUCT(ReplJoinBody, 8);
SEQCAST_WIRE_STRUCT(ReplSnapshotBody, 24);
SEQCAST_WIRE_STRUCT(ReplPublisher, 16);
#undef SEQCAST_WIRE_STRUCT

static_assert(offsetof(DatagramHeader, magic) == 0);
static_assert(offsetof(DatagramHeader, versionMajor) == 4);
static_assert(offsetof(DatagramHeader, versionMinor) == 5);
static_assert(offsetof(DatagramHeader, headerLen) == 6);
static_assert(offsetof(DatagramHeader, type) == 8);
static_assert(offsetof(DatagramHeader, reserved) == 9);
static_assert(offsetof(DatagramHeader, flags) == 10);
static_assert(offsetof(DatagramHeader, streamId) == 12);
static_assert(offsetof(DatagramHeader, epoch) == 16);
static_assert(offsetof(DatagramHeader, crc32c) == 20);
static_assert(offsetof(DatagramHeader, firstOffset) == 24);
static_assert(offsetof(DatagramHeader, senderTsNs) == 32);
static_assert(offsetof(DatagramHeader, count) == 40);
static_assert(offsetof(DatagramHeader, bodyLen) == 44);
static_assert(offsetof(MessageHeader, length) == 0);
static_assert(offsetof(MessageHeader, flags) == 4);
static_assert(offsetof(MessageHeader, reserved) == 6);
static_assert(offsetof(MessageHeader, publisherId) == 8);
static_assert(offsetof(MessageHeader, fragOffset) == 12);
static_assert(offsetof(MessageHeader, pubSeq) == 16);
static_assert(offsetof(MessageHeader, publishTsNs) == 24);
static_assert(offsetof(MessageHeader, crc32c) == 32);
static_assert(offsetof(MessageHeader, reserved2) == 36);
static_assert(offsetof(NakRange, first) == 0 && offsetof(NakRange, count) == 8 && offsetof(NakRange, reserved) == 12);
static_assert(offsetof(PubAckRun, firstPubSeq) == 0 && offsetof(PubAckRun, firstOffset) == 8 &&
              offsetof(PubAckRun, count) == 16 && offsetof(PubAckRun, stride) == 20);
static_assert(offsetof(PubNakBody, publisherId) == 0 && offsetof(PubNakBody, reason) == 4 &&
              offsetof(PubNakBody, expectedPubSeq) == 8 && offsetof(PubNakBody, heldFromPubSeq) == 16);
static_assert(offsetof(ReplayRequestBody, requestId) == 0 && offsetof(ReplayRequestBody, from) == 8 &&
              offsetof(ReplayRequestBody, to) == 16 && offsetof(ReplayRequestBody, flags) == 24);
static_assert(offsetof(ReplSnapshotBody, session) == 0 && offsetof(ReplSnapshotBody, chunk) == 8 &&
              offsetof(ReplSnapshotBody, chunks) == 12 && offsetof(ReplSnapshotBody, tableHead) == 16);
static_assert(offsetof(ReplPublisher, publisherId) == 0 && offsetof(ReplPublisher, nextFrag) == 4 &&
              offsetof(ReplPublisher, nextPubSeq) == 8);
static_assert(offsetof(ReplayEndBody, requestId) == 0 && offsetof(ReplayEndBody, status) == 8 &&
              offsetof(ReplayEndBody, nextOffset) == 16 && offsetof(ReplayEndBody, earliestOffset) == 24);

inline constexpr std::size_t kHeaderSize = sizeof(DatagramHeader);
inline constexpr std::size_t kMessageHeaderSize = sizeof(MessageHeader);
inline constexpr std::size_t kCrcFieldOffset = offsetof(DatagramHeader, crc32c);
inline constexpr std::size_t kEntryCrcCovered = offsetof(MessageHeader, crc32c);  // header bytes an entry CRC covers

// An entry's CRC32C: over its payload first, then bytes [0, kEntryCrcCovered) of its header
// (length, flags, publisher, fragment offset, pub_seq, publish time). Payload first, so that a
// publisher can take the payload's CRC once, when the message is offered, and finish it cheaply
// for each send: entryCrcFrom(crc32c(payload), header).
std::uint32_t entryCrc(std::span<const std::byte> header, std::span<const std::byte> payload) noexcept;
std::uint32_t entryCrcFrom(std::uint32_t payloadCrc, std::span<const std::byte> header) noexcept;
struct MessageView;
// The CRC an entry with these fields and payload carries (tests and tools that build entries by hand).
std::uint32_t entryCrcOf(const MessageView& m) noexcept;

// Why a datagram was rejected. Ok is 0; the order is the order of the checks.
enum class DecodeError : std::uint8_t {
    Ok = 0,
    Truncated,           // shorter than the fixed header, or than headerLen
    BadMagic,
    UnsupportedVersion,  // major version this reader does not speak
    BadHeaderLength,     // headerLen below the v1 header size
    BadBodyLength,       // headerLen + bodyLen != datagram length
    BadCrc,
    UnknownType,
    BadBody,             // body does not match type and count (entry overruns, bad ranges, bad flags)
    BadEntryCrc,         // DATA/PUB: an entry's CRC32C does not match (damaged before the datagram was signed)
    Count_
};
inline constexpr std::size_t kDecodeErrorCount = static_cast<std::size_t>(DecodeError::Count_);
std::string_view decodeErrorName(DecodeError e) noexcept;

// A validated datagram. Spans point into the caller's buffer (zero copy).
struct DatagramView {
    FrameType type{};
    std::uint8_t versionMinor = 0;
    std::uint16_t flags = 0;
    StreamId stream{};
    Epoch epoch{};
    Offset firstOffset{};
    std::uint64_t senderTsNs = 0;
    std::uint32_t count = 0;
    std::span<const std::byte> bytes;  // the whole datagram
    std::span<const std::byte> body;   // after headerLen
};

// Checks length, magic, version, header length, body length, CRC, type, the body's structure and
// (DATA, PUB) every entry's CRC. Never reads outside `datagram`. With verifyCrc=false both CRC
// checks are skipped (callers that verified them already, e.g. re-reading a record it checked).
DecodeError decode(std::span<const std::byte> datagram, DatagramView& out, bool verifyCrc = true) noexcept;

// CRC32C of a datagram with its CRC field taken as zero.
std::uint32_t datagramCrc(std::span<const std::byte> datagram) noexcept;

struct MessageView {
    PublisherId publisher{};
    PubSeq pubSeq{};
    std::uint64_t publishTsNs = 0;
    std::uint16_t flags = 0;
    std::uint32_t fragOffset = 0;
    std::uint32_t crc = 0;  // the entry's CRC32C as carried (checked by decode())
    std::span<const std::byte> payload;
    std::uint16_t reserved = 0;  // as carried: readers ignore it, but the entry CRC covers it

    bool first() const noexcept { return (flags & kFragFirst) != 0; }
    bool last() const noexcept { return (flags & kFragLast) != 0; }
    bool whole() const noexcept { return first() && last(); }
};

// Walks the entries of a validated DATA or PUB body.
class MessageIterator {
public:
    explicit MessageIterator(const DatagramView& v) noexcept : rest_(v.body), left_(v.count) {}
    bool next(MessageView& m) noexcept;

private:
    std::span<const std::byte> rest_;
    std::uint32_t left_;
};

template <class T>
inline T readAt(std::span<const std::byte> s, std::size_t at) noexcept {
    static_assert(std::is_trivially_copyable_v<T> && alignof(T) == 1);
    T v;
    __builtin_memcpy(&v, s.data() + at, sizeof(T));
    return v;
}

struct NakRangeView {
    Offset first;
    std::uint32_t count;
};
// Entry i of a validated NAK datagram.
inline NakRangeView nakRange(const DatagramView& v, std::uint32_t i) noexcept {
    auto r = readAt<NakRange>(v.body, i * sizeof(NakRange));
    return {Offset{r.first.get()}, r.count.get()};
}

struct PubAckRunView {
    PubSeq firstPubSeq;
    Offset firstOffset;
    std::uint32_t count;
    std::uint32_t stride;
};
PublisherId pubAckPublisher(const DatagramView& v) noexcept;
PubAckRunView pubAckRun(const DatagramView& v, std::uint32_t i) noexcept;

struct PubNakView {
    PublisherId publisher;
    PubNakReason reason;
    PubSeq expected;
    PubSeq heldFrom;
};
PubNakView pubNak(const DatagramView& v) noexcept;
Offset heartbeatOldest(const DatagramView& v) noexcept;

struct ReplayRequestView {
    std::uint64_t requestId;
    Offset from;
    std::uint64_t to;
    std::uint32_t flags;
};
ReplayRequestView replayRequest(const DatagramView& v) noexcept;

struct ReplayEndView {
    std::uint64_t requestId;
    ReplayStatus status;
    Offset nextOffset;
    Offset earliestOffset;
};
ReplayEndView replayEnd(const DatagramView& v) noexcept;

std::uint64_t replSession(const DatagramView& v) noexcept;  // REPL_ACK, REPL_JOIN, REPL_SNAPSHOT
struct ReplSnapshotView {
    std::uint64_t session;
    std::uint32_t chunk;
    std::uint32_t chunks;
    std::uint64_t tableHead;
};
ReplSnapshotView replSnapshot(const DatagramView& v) noexcept;
struct ReplPublisherView {
    std::uint32_t publisherId;
    std::uint32_t nextFrag;
    std::uint64_t nextPubSeq;
};
ReplPublisherView replPublisher(const DatagramView& v, std::uint32_t i) noexcept;

struct MessageFields {
    PublisherId publisher{};
    PubSeq pubSeq{};
    std::uint64_t publishTsNs = 0;
};

// Builds one datagram in a caller-owned buffer; limit = min(buffer size, MTU).
class DatagramWriter {
public:
    explicit DatagramWriter(std::span<std::byte> buf) noexcept : buf_(buf) {}

    void begin(FrameType type, StreamId stream, Epoch epoch, Offset firstOffset, std::uint16_t flags = 0) noexcept;
    bool empty() const noexcept { return count_ == 0; }
    std::uint32_t count() const noexcept { return count_; }
    std::size_t size() const noexcept { return used_; }
    // Payload bytes the next message entry could carry (0 when not even a header fits).
    std::size_t room() const noexcept {
        return used_ + kMessageHeaderSize <= buf_.size() ? buf_.size() - used_ - kMessageHeaderSize : 0;
    }
    bool fitsMessageHeader() const noexcept { return used_ + kMessageHeaderSize <= buf_.size(); }

    // Appends bytes [fragOffset, fragOffset + n) of message `whole`, n = min(rest, room(), maxPiece).
    // Sets kFragFirst when fragOffset == 0 and kFragLast when the piece reaches the end.
    // Signs the entry (entryCrc). wholeCrc: crc32c() of `whole`, when the caller took it already (the
    // publisher, at offer()): an entry carrying all of it is then signed from that, not read again.
    // Returns n, or nullopt when no header fits.
    std::optional<std::size_t> appendPiece(const MessageFields& f, std::span<const std::byte> whole,
                                           std::uint32_t fragOffset, std::size_t maxPiece = ~std::size_t{0},
                                           std::optional<std::uint32_t> wholeCrc = std::nullopt) noexcept;
    // Appends an entry as it was received, its CRC included (DATA from PUB: the sequencer copies
    // entries verbatim and never signs them anew).
    bool appendEntry(const MessageView& m) noexcept;
    bool appendNakRange(Offset first, std::uint32_t count) noexcept;
    bool appendPubAckRun(PubSeq firstPubSeq, Offset firstOffset, std::uint32_t count, std::uint32_t stride) noexcept;
    // Raw body bytes (fixed-size bodies).
    bool appendRaw(std::span<const std::byte> bytes) noexcept;
    template <class T>
    bool appendStruct(const T& v) noexcept {
        return appendRaw(std::as_bytes(std::span<const T, 1>(&v, 1)));
    }
    // Writes count, body length and CRC; returns the datagram's size.
    std::size_t finish(std::uint64_t senderTsNs) noexcept;

private:
    std::span<std::byte> buf_;
    std::size_t used_ = 0;
    std::uint32_t count_ = 0;
};

// One-call encoders for the fixed-body frames. Return the datagram size, 0 if buf is too small.
// flags: 0, or kFlagEnd once the stream has ended.
std::size_t encodeHeartbeat(std::span<std::byte> buf, StreamId s, Epoch e, Offset next, Offset oldest,
                            std::uint64_t tsNs, std::uint16_t flags = 0) noexcept;
std::size_t encodeEndOfStream(std::span<std::byte> buf, StreamId s, Epoch e, Offset next, std::uint64_t tsNs) noexcept;
std::size_t encodePubNak(std::span<std::byte> buf, StreamId s, Epoch e, PublisherId p, PubNakReason r,
                         PubSeq expected, PubSeq heldFrom, std::uint64_t tsNs) noexcept;
std::size_t encodeReplayRequest(std::span<std::byte> buf, StreamId s, std::uint64_t requestId, Offset from,
                                std::uint64_t to, std::uint32_t flags, std::uint64_t tsNs) noexcept;
std::size_t encodeReplAck(std::span<std::byte> buf, StreamId s, Epoch e, Offset next, std::uint64_t session,
                          std::uint64_t tsNs) noexcept;
std::size_t encodeReplJoin(std::span<std::byte> buf, StreamId s, Epoch e, std::uint64_t session, std::uint64_t tsNs) noexcept;
std::size_t encodeReplayEnd(std::span<std::byte> buf, StreamId s, Epoch e, std::uint64_t requestId, ReplayStatus st,
                            Offset next, Offset earliest, std::uint64_t tsNs) noexcept;

// Rewrites the flags and sender timestamp of an encoded datagram (e.g. mark a stored DATA as
// retransmitted) and re-signs it with a new CRC, but only after checking it whole (decode(): the
// datagram CRC it carries and every entry's CRC): a datagram damaged where it was kept (a
// retransmit ring, an archive), or before it was first signed, is left as it is and false is
// returned, so that the caller drops it (counted) instead of re-signing the damage and sending it.
[[nodiscard]] bool restamp(std::span<std::byte> datagram, std::uint16_t setFlags, std::uint64_t senderTsNs) noexcept;

}  // namespace seqcast::wire
