// MoldUDP64 1.00 (the multicast framing of many exchange feeds): downstream packets, heartbeats,
// end of session, and re-request packets. All integers are big-endian.
//
//   downstream packet   session (10 bytes, ASCII, space-padded) | sequence number (8) | message
//                       count (2) | count x [message length (2) | message]
//   heartbeat           count 0, sequence number = the next message's
//   end of session      count 0xFFFF, sequence number = the next message's
//   request packet      session (10) | sequence number (8) | requested message count (2)
//
// Pure encoding and decoding, no I/O: every decode checks lengths and reports what is wrong.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "fabric/result.h"

namespace seqcast::gateway::mold {

inline constexpr std::size_t kSessionLength = 10;
inline constexpr std::size_t kHeaderLength = 20;  // session, sequence number, count
inline constexpr std::size_t kRequestLength = 20;
inline constexpr std::uint16_t kHeartbeatCount = 0;
inline constexpr std::uint16_t kEndOfSessionCount = 0xFFFF;
inline constexpr std::size_t kMaxMessage = 0xFFFF;  // the length field's limit

// A session name: up to 10 printable ASCII characters, sent space-padded.
struct Session {
    std::array<char, kSessionLength> bytes{};
    // Refuses empty names, longer ones and non-printable characters.
    static Result<Session> parse(std::string_view name);
    std::string str() const;  // without the padding
    friend bool operator==(const Session&, const Session&) = default;
};

// Packs messages into one downstream packet of at most out.size() bytes.
class PacketWriter {
public:
    PacketWriter(const Session& session, std::span<std::byte> out) noexcept : session_(session), out_(out) {}
    // Starts a packet whose first message has sequence number `seq`.
    void begin(std::uint64_t seq) noexcept;
    // False when the message does not fit in what is left (or is longer than kMaxMessage, or the
    // packet holds 0xFFFE messages already); the packet is unchanged then.
    bool append(std::span<const std::byte> message) noexcept;
    // Writes the count; returns the packet's length.
    std::size_t finish() noexcept;
    std::uint16_t count() const noexcept { return count_; }
    std::uint64_t firstSequence() const noexcept { return seq_; }
    std::size_t length() const noexcept { return used_; }
    // The largest message that fits in an empty packet of this size.
    std::size_t maxMessage() const noexcept;

private:
    Session session_;
    std::span<std::byte> out_;
    std::uint64_t seq_ = 0;
    std::uint16_t count_ = 0;
    std::size_t used_ = 0;
};

// A heartbeat or end-of-session packet (20 bytes); 0 when `out` is shorter.
std::size_t encodeHeartbeat(std::span<std::byte> out, const Session& s, std::uint64_t nextSeq) noexcept;
std::size_t encodeEndOfSession(std::span<std::byte> out, const Session& s, std::uint64_t nextSeq) noexcept;
std::size_t encodeRequest(std::span<std::byte> out, const Session& s, std::uint64_t seq, std::uint16_t count) noexcept;

struct Packet {
    Session session;
    std::uint64_t seq = 0;  // of the first message; of the next one for a heartbeat or end of session
    std::uint16_t count = 0;
    std::span<const std::byte> blocks;  // the message blocks, checked to hold exactly `count` messages
    bool heartbeat() const noexcept { return count == kHeartbeatCount; }
    bool endOfSession() const noexcept { return count == kEndOfSessionCount; }
};
// A downstream packet: the header, then exactly `count` well-formed message blocks, nothing after.
Result<Packet> decodePacket(std::span<const std::byte> bytes);

// The messages of a decoded packet, in order.
class MessageIterator {
public:
    explicit MessageIterator(const Packet& p) noexcept : rest_(p.endOfSession() ? std::span<const std::byte>{} : p.blocks) {}
    bool next(std::span<const std::byte>& message) noexcept;

private:
    std::span<const std::byte> rest_;
};

struct Request {
    Session session;
    std::uint64_t seq = 0;
    std::uint16_t count = 0;
};
// A request packet: exactly 20 bytes.
Result<Request> decodeRequest(std::span<const std::byte> bytes);

}  // namespace seqcast::gateway::mold
