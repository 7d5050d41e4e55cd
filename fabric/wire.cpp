#include "fabric/wire.h"

#include <cstring>

#include "fabric/counters.h"
#include "fabric/crc32c.h"

namespace seqcast::wire {

std::string_view frameTypeName(FrameType t) noexcept {
    switch (t) {
        case FrameType::Data: return "DATA";
        case FrameType::Heartbeat: return "HEARTBEAT";
        case FrameType::Nak: return "NAK";
        case FrameType::Pub: return "PUB";
        case FrameType::PubAck: return "PUB_ACK";
        case FrameType::PubNak: return "PUB_NAK";
        case FrameType::ReplayRequest: return "REPLAY_REQUEST";
        case FrameType::ReplayEnd: return "REPLAY_END";
        case FrameType::EndOfStream: return "END_OF_STREAM";
        case FrameType::ReplAck: return "REPL_ACK";
        case FrameType::ReplJoin: return "REPL_JOIN";
        case FrameType::ReplSnapshot: return "REPL_SNAPSHOT";
    }
    return "UNKNOWN";
}

namespace {
constexpr std::string_view kDecodeErrorNames[] = {
    "ok", "truncated", "bad magic", "unsupported version", "bad header length",
    "bad body length", "bad crc", "unknown type", "bad body", "bad entry crc",
};
static_assert(std::size(kDecodeErrorNames) == kDecodeErrorCount, "label table matches DecodeError");
// fabric/counters.h maps each DecodeError to its drop counter by value.
static_assert(dropCounterFor(static_cast<std::uint8_t>(DecodeError::Truncated)) == Counter::DropTruncated);
static_assert(dropCounterFor(static_cast<std::uint8_t>(DecodeError::BadCrc)) == Counter::DropBadCrc);
static_assert(dropCounterFor(static_cast<std::uint8_t>(DecodeError::BadBody)) == Counter::DropBadBody);
static_assert(dropCounterFor(static_cast<std::uint8_t>(DecodeError::BadEntryCrc)) == Counter::DropBadEntryCrc);
static_assert(kDecodeErrorCount == 10, "a new DecodeError needs a drop counter in dropCounterFor");

// Validates the entries of a DATA or PUB body: exactly `count` entries that fill the body.
bool validMessages(std::span<const std::byte> body, std::uint32_t count) noexcept {
    std::size_t at = 0;
    for (std::uint32_t i = 0; i < count; ++i) {
        if (body.size() - at < kMessageHeaderSize) return false;
        const auto h = readAt<MessageHeader>(body, at);
        at += kMessageHeaderSize;
        const std::uint32_t len = h.length.get();
        if (body.size() - at < len) return false;
        const std::uint16_t fl = h.flags.get();
        // A first fragment starts at 0; a fragment's end must not wrap 32 bits.
        if ((fl & kFragFirst) != 0 && h.fragOffset.get() != 0) return false;
        if ((fl & kFragFirst) == 0 && h.fragOffset.get() == 0) return false;
        if (static_cast<std::uint64_t>(h.fragOffset.get()) + len > 0xFFFFFFFFull) return false;
        at += len;
    }
    return at == body.size();
}

bool validBody(FrameType t, std::span<const std::byte> body, std::uint32_t count) noexcept {
    switch (t) {
        case FrameType::Data:
        case FrameType::Pub:
            return validMessages(body, count);
        case FrameType::Heartbeat:
            return count == 0 && body.size() == sizeof(HeartbeatBody);
        case FrameType::Nak: {
            if (count == 0 || body.size() != std::size_t{count} * sizeof(NakRange)) return false;
            for (std::uint32_t i = 0; i < count; ++i) {
                const auto r = readAt<NakRange>(body, i * sizeof(NakRange));
                if (r.count.get() == 0 || r.count.get() > kMaxNakRangeCount) return false;
                if (r.first.get() > kOffsetOpen - r.count.get()) return false;
            }
            return true;
        }
        case FrameType::PubAck: {
            if (body.size() != sizeof(PubAckBody) + std::size_t{count} * sizeof(PubAckRun)) return false;
            for (std::uint32_t i = 0; i < count; ++i) {
                const auto r = readAt<PubAckRun>(body, sizeof(PubAckBody) + i * sizeof(PubAckRun));
                if (r.count.get() == 0 || r.stride.get() == 0) return false;
            }
            return true;
        }
        case FrameType::PubNak: {
            if (count != 0 || body.size() != sizeof(PubNakBody)) return false;
            const auto r = readAt<PubNakBody>(body, 0).reason.get();
            return r >= 1 && r <= 5;
        }
        case FrameType::ReplayRequest: {
            if (count != 0 || body.size() != sizeof(ReplayRequestBody)) return false;
            const auto r = readAt<ReplayRequestBody>(body, 0);
            return r.to.get() > r.from.get();
        }
        case FrameType::ReplayEnd: {
            if (count != 0 || body.size() != sizeof(ReplayEndBody)) return false;
            return readAt<ReplayEndBody>(body, 0).status.get() <= 5;
        }
        case FrameType::EndOfStream:
            return count == 0 && body.empty();
        case FrameType::ReplAck:
            return count == 0 && body.size() == sizeof(ReplAckBody);
        case FrameType::ReplJoin:
            return count == 0 && body.size() == sizeof(ReplJoinBody);
        case FrameType::ReplSnapshot: {
            if (body.size() != sizeof(ReplSnapshotBody) + std::size_t{count} * sizeof(ReplPublisher)) return false;
            const auto b = readAt<ReplSnapshotBody>(body, 0);
            return b.chunks.get() > 0 && b.chunk.get() < b.chunks.get();
        }
    }
    return false;
}

// Every entry of a structurally valid DATA or PUB body carries the CRC its bytes give.
bool entriesIntact(std::span<const std::byte> body, std::uint32_t count) noexcept {
    std::size_t at = 0;
    for (std::uint32_t i = 0; i < count; ++i) {
        const auto h = readAt<MessageHeader>(body, at);
        const std::uint32_t len = h.length.get();
        if (entryCrc(body.subspan(at, kEntryCrcCovered), body.subspan(at + kMessageHeaderSize, len)) != h.crc32c.get())
            return false;
        at += kMessageHeaderSize + len;
    }
    return true;
}

void writeHeader(std::span<std::byte> buf, FrameType type, StreamId s, Epoch e, Offset first, std::uint16_t flags) noexcept {
    DatagramHeader h{};
    h.magic.set(kMagic);
    h.versionMajor.set(kVersionMajor);
    h.versionMinor.set(kVersionMinor);
    h.headerLen.set(static_cast<std::uint16_t>(kHeaderSize));
    h.type.set(static_cast<std::uint8_t>(type));
    h.reserved.set(0);
    h.flags.set(flags);
    h.streamId.set(s.get());
    h.epoch.set(e.get());
    h.crc32c.set(0);
    h.firstOffset.set(first.get());
    h.senderTsNs.set(0);
    h.count.set(0);
    h.bodyLen.set(0);
    std::memcpy(buf.data(), &h, sizeof h);
}

template <class T>
void putAt(std::span<std::byte> buf, std::size_t at, const T& v) noexcept {
    std::memcpy(buf.data() + at, &v, sizeof(T));
}

}  // namespace

std::string_view decodeErrorName(DecodeError e) noexcept {
    const auto i = static_cast<std::size_t>(e);
    return i < kDecodeErrorCount ? kDecodeErrorNames[i] : "unknown";
}

std::uint32_t entryCrcFrom(std::uint32_t payloadCrc, std::span<const std::byte> header) noexcept {
    return crc32cFinal(crc32cUpdateShort(~payloadCrc, header.first(kEntryCrcCovered)));
}

std::uint32_t entryCrc(std::span<const std::byte> header, std::span<const std::byte> payload) noexcept {
    return entryCrcFrom(crc32c(payload), header);
}

std::uint32_t entryCrcOf(const MessageView& m) noexcept {
    MessageHeader mh{};
    mh.length.set(static_cast<std::uint32_t>(m.payload.size()));
    mh.flags.set(m.flags);
    mh.reserved.set(m.reserved);
    mh.publisherId.set(m.publisher.get());
    mh.fragOffset.set(m.fragOffset);
    mh.pubSeq.set(m.pubSeq.get());
    mh.publishTsNs.set(m.publishTsNs);
    return entryCrc(std::as_bytes(std::span<const MessageHeader, 1>(&mh, 1)), m.payload);
}

std::uint32_t datagramCrc(std::span<const std::byte> d) noexcept {
    static constexpr std::byte kZero[4] = {};
    if (d.size() < kCrcFieldOffset + 4) return crc32c(d);  // too short to hold the field
    std::uint32_t st = crc32cUpdateShort(kCrc32cInit, d.first(kCrcFieldOffset));
    st = crc32cUpdateShort(st, kZero);
    st = crc32cUpdate(st, d.subspan(kCrcFieldOffset + 4));
    return crc32cFinal(st);
}

DecodeError decode(std::span<const std::byte> d, DatagramView& out, bool verifyCrc) noexcept {
    if (d.size() < kHeaderSize) {
        // A short datagram with another major version is reported as such if its prefix says so.
        if (d.size() >= 5 && readAt<LeU32>(d, 0).get() == kMagic && static_cast<std::uint8_t>(d[4]) != kVersionMajor)
            return DecodeError::UnsupportedVersion;
        if (d.size() >= 4 && readAt<LeU32>(d, 0).get() != kMagic) return DecodeError::BadMagic;
        return DecodeError::Truncated;
    }
    const auto h = readAt<DatagramHeader>(d, 0);
    if (h.magic.get() != kMagic) return DecodeError::BadMagic;
    if (h.versionMajor.get() != kVersionMajor) return DecodeError::UnsupportedVersion;
    const std::size_t hlen = h.headerLen.get();
    if (hlen < kHeaderSize) return DecodeError::BadHeaderLength;
    if (hlen > d.size()) return DecodeError::Truncated;
    if (std::size_t{h.bodyLen.get()} != d.size() - hlen) {
        return std::size_t{h.bodyLen.get()} > d.size() - hlen ? DecodeError::Truncated : DecodeError::BadBodyLength;
    }
    if (verifyCrc && datagramCrc(d) != h.crc32c.get()) return DecodeError::BadCrc;
    const std::uint8_t t = h.type.get();
    if (t == 0 || t > kMaxFrameType) return DecodeError::UnknownType;
    const auto type = static_cast<FrameType>(t);
    const auto body = d.subspan(hlen);
    if (!validBody(type, body, h.count.get())) return DecodeError::BadBody;
    if (verifyCrc && (type == FrameType::Data || type == FrameType::Pub) && !entriesIntact(body, h.count.get()))
        return DecodeError::BadEntryCrc;
    out.type = type;
    out.versionMinor = h.versionMinor.get();
    out.flags = h.flags.get();
    out.stream = StreamId{h.streamId.get()};
    out.epoch = Epoch{h.epoch.get()};
    out.firstOffset = Offset{h.firstOffset.get()};
    out.senderTsNs = h.senderTsNs.get();
    out.count = h.count.get();
    out.bytes = d;
    out.body = body;
    return DecodeError::Ok;
}

bool MessageIterator::next(MessageView& m) noexcept {
    if (left_ == 0) return false;
    const auto h = readAt<MessageHeader>(rest_, 0);
    const std::uint32_t len = h.length.get();
    m.publisher = PublisherId{h.publisherId.get()};
    m.pubSeq = PubSeq{h.pubSeq.get()};
    m.publishTsNs = h.publishTsNs.get();
    m.flags = h.flags.get();
    m.fragOffset = h.fragOffset.get();
    m.crc = h.crc32c.get();
    m.reserved = h.reserved.get();
    m.payload = rest_.subspan(kMessageHeaderSize, len);
    rest_ = rest_.subspan(kMessageHeaderSize + len);
    --left_;
    return true;
}

PublisherId pubAckPublisher(const DatagramView& v) noexcept {
    return PublisherId{readAt<PubAckBody>(v.body, 0).publisherId.get()};
}

PubAckRunView pubAckRun(const DatagramView& v, std::uint32_t i) noexcept {
    const auto r = readAt<PubAckRun>(v.body, sizeof(PubAckBody) + i * sizeof(PubAckRun));
    return {PubSeq{r.firstPubSeq.get()}, Offset{r.firstOffset.get()}, r.count.get(), r.stride.get()};
}

PubNakView pubNak(const DatagramView& v) noexcept {
    const auto b = readAt<PubNakBody>(v.body, 0);
    return {PublisherId{b.publisherId.get()}, static_cast<PubNakReason>(b.reason.get()), PubSeq{b.expectedPubSeq.get()},
            PubSeq{b.heldFromPubSeq.get()}};
}

Offset heartbeatOldest(const DatagramView& v) noexcept {
    return Offset{readAt<HeartbeatBody>(v.body, 0).oldestRetained.get()};
}

std::uint64_t replSession(const DatagramView& v) noexcept { return readAt<LeU64>(v.body, 0).get(); }

ReplSnapshotView replSnapshot(const DatagramView& v) noexcept {
    const auto b = readAt<ReplSnapshotBody>(v.body, 0);
    return {b.session.get(), b.chunk.get(), b.chunks.get(), b.tableHead.get()};
}

ReplPublisherView replPublisher(const DatagramView& v, std::uint32_t i) noexcept {
    const auto r = readAt<ReplPublisher>(v.body, sizeof(ReplSnapshotBody) + i * sizeof(ReplPublisher));
    return {r.publisherId.get(), r.nextFrag.get(), r.nextPubSeq.get()};
}

ReplayRequestView replayRequest(const DatagramView& v) noexcept {
    const auto b = readAt<ReplayRequestBody>(v.body, 0);
    return {b.requestId.get(), Offset{b.from.get()}, b.to.get(), b.flags.get()};
}

ReplayEndView replayEnd(const DatagramView& v) noexcept {
    const auto b = readAt<ReplayEndBody>(v.body, 0);
    return {b.requestId.get(), static_cast<ReplayStatus>(b.status.get()), Offset{b.nextOffset.get()},
            Offset{b.earliestOffset.get()}};
}

void DatagramWriter::begin(FrameType type, StreamId s, Epoch e, Offset first, std::uint16_t flags) noexcept {
    used_ = 0;
    count_ = 0;
    if (buf_.size() < kHeaderSize) return;
    writeHeader(buf_, type, s, e, first, flags);
    used_ = kHeaderSize;
}

std::optional<std::size_t> DatagramWriter::appendPiece(const MessageFields& f, std::span<const std::byte> whole,
                                                       std::uint32_t fragOffset, std::size_t maxPiece,
                                                       std::optional<std::uint32_t> wholeCrc) noexcept {
    if (used_ < kHeaderSize || !fitsMessageHeader() || fragOffset > whole.size()) return std::nullopt;
    const std::size_t rest = whole.size() - fragOffset;
    std::size_t n = rest < room() ? rest : room();
    if (n > maxPiece) n = maxPiece;
    if (n == 0 && rest != 0) return std::nullopt;
    std::uint16_t fl = 0;
    if (fragOffset == 0) fl |= kFragFirst;
    if (n == rest) fl |= kFragLast;
    MessageHeader mh{};
    mh.length.set(static_cast<std::uint32_t>(n));
    mh.flags.set(fl);
    mh.reserved.set(0);
    mh.publisherId.set(f.publisher.get());
    mh.fragOffset.set(fragOffset);
    mh.pubSeq.set(f.pubSeq.get());
    mh.publishTsNs.set(f.publishTsNs);
    mh.reserved2.set(0);
    const auto piece = whole.subspan(fragOffset, n);
    const auto covered = std::as_bytes(std::span<const MessageHeader, 1>(&mh, 1)).first(kEntryCrcCovered);
    mh.crc32c.set(wholeCrc && n == whole.size() ? entryCrcFrom(*wholeCrc, covered) : entryCrc(covered, piece));
    putAt(buf_, used_, mh);
    used_ += kMessageHeaderSize;
    if (n != 0) std::memcpy(buf_.data() + used_, piece.data(), n);
    used_ += n;
    ++count_;
    return n;
}

bool DatagramWriter::appendEntry(const MessageView& m) noexcept {
    if (used_ < kHeaderSize || buf_.size() - used_ < kMessageHeaderSize + m.payload.size()) return false;
    MessageHeader mh{};
    mh.length.set(static_cast<std::uint32_t>(m.payload.size()));
    mh.flags.set(m.flags);
    mh.reserved.set(m.reserved);  // covered by the entry CRC: copied, never zeroed
    mh.publisherId.set(m.publisher.get());
    mh.fragOffset.set(m.fragOffset);
    mh.pubSeq.set(m.pubSeq.get());
    mh.publishTsNs.set(m.publishTsNs);
    mh.crc32c.set(m.crc);  // the publisher's, unchanged: never signed anew here
    mh.reserved2.set(0);
    putAt(buf_, used_, mh);
    used_ += kMessageHeaderSize;
    if (!m.payload.empty()) std::memcpy(buf_.data() + used_, m.payload.data(), m.payload.size());
    used_ += m.payload.size();
    ++count_;
    return true;
}

bool DatagramWriter::appendNakRange(Offset first, std::uint32_t count) noexcept {
    if (used_ < kHeaderSize || buf_.size() - used_ < sizeof(NakRange)) return false;
    NakRange r{};
    r.first.set(first.get());
    r.count.set(count);
    r.reserved.set(0);
    putAt(buf_, used_, r);
    used_ += sizeof r;
    ++count_;
    return true;
}

bool DatagramWriter::appendPubAckRun(PubSeq firstPubSeq, Offset firstOffset, std::uint32_t count,
                                     std::uint32_t stride) noexcept {
    if (used_ < kHeaderSize || buf_.size() - used_ < sizeof(PubAckRun)) return false;
    PubAckRun r{};
    r.firstPubSeq.set(firstPubSeq.get());
    r.firstOffset.set(firstOffset.get());
    r.count.set(count);
    r.stride.set(stride);
    putAt(buf_, used_, r);
    used_ += sizeof r;
    ++count_;
    return true;
}

bool DatagramWriter::appendRaw(std::span<const std::byte> bytes) noexcept {
    if (used_ < kHeaderSize || buf_.size() - used_ < bytes.size()) return false;
    if (!bytes.empty()) std::memcpy(buf_.data() + used_, bytes.data(), bytes.size());
    used_ += bytes.size();
    return true;
}

std::size_t DatagramWriter::finish(std::uint64_t senderTsNs) noexcept {
    if (used_ < kHeaderSize) return 0;
    auto h = readAt<DatagramHeader>(buf_, 0);
    h.senderTsNs.set(senderTsNs);
    h.count.set(count_);
    h.bodyLen.set(static_cast<std::uint32_t>(used_ - kHeaderSize));
    h.crc32c.set(0);
    putAt(buf_, 0, h);
    auto d = buf_.first(used_);
    h.crc32c.set(datagramCrc(d));
    putAt(buf_, 0, h);
    return used_;
}

namespace {
template <class Body>
std::size_t encodeFixed(std::span<std::byte> buf, FrameType t, StreamId s, Epoch e, Offset first, const Body* body,
                        std::uint64_t ts, std::uint16_t flags = 0) noexcept {
    DatagramWriter w(buf);
    w.begin(t, s, e, first, flags);
    if (w.size() == 0) return 0;
    if (body != nullptr && !w.appendStruct(*body)) return 0;
    return w.finish(ts);
}
}  // namespace

std::size_t encodeHeartbeat(std::span<std::byte> buf, StreamId s, Epoch e, Offset next, Offset oldest,
                            std::uint64_t tsNs, std::uint16_t flags) noexcept {
    HeartbeatBody b{};
    b.oldestRetained.set(oldest.get());
    return encodeFixed(buf, FrameType::Heartbeat, s, e, next, &b, tsNs, flags);
}

std::size_t encodeEndOfStream(std::span<std::byte> buf, StreamId s, Epoch e, Offset next, std::uint64_t tsNs) noexcept {
    return encodeFixed<HeartbeatBody>(buf, FrameType::EndOfStream, s, e, next, nullptr, tsNs);
}

std::size_t encodePubNak(std::span<std::byte> buf, StreamId s, Epoch e, PublisherId p, PubNakReason r,
                         PubSeq expected, PubSeq heldFrom, std::uint64_t tsNs) noexcept {
    PubNakBody b{};
    b.publisherId.set(p.get());
    b.reason.set(static_cast<std::uint32_t>(r));
    b.expectedPubSeq.set(expected.get());
    b.heldFromPubSeq.set(heldFrom.get());
    return encodeFixed(buf, FrameType::PubNak, s, e, Offset{0}, &b, tsNs);
}

std::size_t encodeReplayRequest(std::span<std::byte> buf, StreamId s, std::uint64_t requestId, Offset from,
                                std::uint64_t to, std::uint32_t flags, std::uint64_t tsNs) noexcept {
    ReplayRequestBody b{};
    b.requestId.set(requestId);
    b.from.set(from.get());
    b.to.set(to);
    b.flags.set(flags);
    b.reserved.set(0);
    return encodeFixed(buf, FrameType::ReplayRequest, s, Epoch{0}, from, &b, tsNs);
}

std::size_t encodeReplAck(std::span<std::byte> buf, StreamId s, Epoch e, Offset next, std::uint64_t session,
                          std::uint64_t tsNs) noexcept {
    ReplAckBody b{};
    b.session.set(session);
    return encodeFixed(buf, FrameType::ReplAck, s, e, next, &b, tsNs);
}

std::size_t encodeReplJoin(std::span<std::byte> buf, StreamId s, Epoch e, std::uint64_t session, std::uint64_t tsNs) noexcept {
    ReplJoinBody b{};
    b.session.set(session);
    return encodeFixed(buf, FrameType::ReplJoin, s, e, Offset{0}, &b, tsNs);
}

std::size_t encodeReplayEnd(std::span<std::byte> buf, StreamId s, Epoch e, std::uint64_t requestId, ReplayStatus st,
                            Offset next, Offset earliest, std::uint64_t tsNs) noexcept {
    ReplayEndBody b{};
    b.requestId.set(requestId);
    b.status.set(static_cast<std::uint32_t>(st));
    b.reserved.set(0);
    b.nextOffset.set(next.get());
    b.earliestOffset.set(earliest.get());
    return encodeFixed(buf, FrameType::ReplayEnd, s, e, next, &b, tsNs);
}

bool restamp(std::span<std::byte> d, std::uint16_t setFlags, std::uint64_t senderTsNs) noexcept {
    DatagramView v;
    if (decode(d, v) != DecodeError::Ok) return false;  // damaged where it was kept, or before: never re-signed
    auto h = readAt<DatagramHeader>(d, 0);
    h.flags.set(static_cast<std::uint16_t>(h.flags.get() | setFlags));
    h.senderTsNs.set(senderTsNs);
    h.crc32c.set(0);
    putAt(d, 0, h);
    h.crc32c.set(datagramCrc(d));
    putAt(d, 0, h);
    return true;
}

}  // namespace seqcast::wire
