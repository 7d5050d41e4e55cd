// Ethernet II / IPv4 / UDP, ARP and IGMPv2 framing for the kernel-bypass transport: parse a received
// frame into what the transport needs, and write the headers of frames it sends. No I/O and no DPDK
// here, so the parser is unit-tested (and fed random bytes) in every build.
//
// Network byte order on the wire (big-endian), read and written byte by byte; a frame is a
// std::span of bytes, never reinterpret_cast to a header struct. Parsing never reads outside the
// span and classifies every frame: what the transport cannot use is Foreign (someone else's traffic)
// or Malformed (broken), for the caller to count and drop.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>

namespace seqcast::transport::eth {

using Mac = std::array<std::uint8_t, 6>;

inline constexpr Mac kBroadcastMac{0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF};
inline constexpr std::size_t kEthHeader = 14;
inline constexpr std::size_t kIpv4Header = 20;
inline constexpr std::size_t kUdpHeader = 8;
// Bytes in front of a UDP payload in a frame this file writes (no VLAN tag, no IP options).
inline constexpr std::size_t kUdpFrameOverhead = kEthHeader + kIpv4Header + kUdpHeader;  // 42
inline constexpr std::size_t kArpFrame = kEthHeader + 28;                                  // 42
// IGMPv2 message behind an IPv4 header with the Router Alert option (RFC 2236 section 2).
inline constexpr std::size_t kIgmpFrame = kEthHeader + kIpv4Header + 4 + 8;                // 46
inline constexpr std::size_t kMinFrame = 60;  // Ethernet minimum without FCS: shorter frames are padded

inline constexpr std::uint32_t kAllHosts = 0xE0000001u;    // 224.0.0.1: general IGMP queries
inline constexpr std::uint32_t kAllRouters = 0xE0000002u;  // 224.0.0.2: IGMPv2 leaves

enum class IgmpType : std::uint8_t { Query = 0x11, V1Report = 0x12, V2Report = 0x16, Leave = 0x17, V3Report = 0x22 };

enum class Kind : std::uint8_t {
    Udp,        // IPv4 UDP datagram: payload, addresses, ports
    Arp,        // ARP request or reply for IPv4 over Ethernet
    Igmp,       // IGMP message (query, report, leave)
    Foreign,    // well-formed but not ours to handle: another ethertype (IPv6, VLAN), another IP protocol, IP fragment
    Malformed,  // truncated, bad lengths, bad IPv4 header checksum, bad version
};

struct Frame {
    Kind kind = Kind::Malformed;
    Mac dstMac{};
    Mac srcMac{};
    // IPv4 (Udp, Igmp), host byte order
    std::uint32_t srcIp = 0;
    std::uint32_t dstIp = 0;
    // Udp
    std::uint16_t srcPort = 0;
    std::uint16_t dstPort = 0;
    std::uint16_t payloadOffset = 0;  // from the start of the frame
    std::uint16_t payloadLen = 0;
    // Arp
    std::uint16_t arpOp = 0;  // 1 request, 2 reply
    Mac arpSenderMac{};
    std::uint32_t arpSenderIp = 0;
    std::uint32_t arpTargetIp = 0;
    // Igmp
    std::uint8_t igmpType = 0;
    std::uint32_t igmpGroup = 0;  // 0 in a general query
};

// Classifies a received frame. noexcept and bounds-checked: any input is safe.
Frame parse(std::span<const std::byte> frame) noexcept;

// 01:00:5e + the low 23 bits of the group (RFC 1112 section 6.4).
Mac multicastMac(std::uint32_t group) noexcept;

// RFC 1071 one's-complement sum of bytes, folded, not inverted; `sum` carries a partial sum.
std::uint32_t onesSum(std::span<const std::byte> bytes, std::uint32_t sum = 0) noexcept;
std::uint16_t foldChecksum(std::uint32_t sum) noexcept;  // fold to 16 bits and invert

struct UdpHeaderArgs {
    Mac srcMac{};
    Mac dstMac{};
    std::uint32_t srcIp = 0;
    std::uint32_t dstIp = 0;
    std::uint16_t srcPort = 0;
    std::uint16_t dstPort = 0;
    std::uint8_t ttl = 64;
    std::uint16_t ipId = 0;
};
// Writes Ethernet + IPv4 (DF, header checksum) + UDP headers for a payload of payloadLen bytes that
// the caller places at out[kUdpFrameOverhead..]. With udpChecksum the payload must already be
// there: the UDP checksum covers it (0 is sent as 0xFFFF, RFC 768). out.size() >= kUdpFrameOverhead.
void writeUdpHeaders(std::span<std::byte> out, const UdpHeaderArgs& a, std::uint16_t payloadLen, bool udpChecksum) noexcept;

// ARP request (who has targetIp, broadcast) or reply (to targetMac): 42 bytes into out.
void writeArp(std::span<std::byte> out, std::uint16_t op, const Mac& srcMac, std::uint32_t srcIp,
              const Mac& targetMac, std::uint32_t targetIp) noexcept;

// IGMPv2 membership report (to the group) or leave (to 224.0.0.2), TTL 1, Router Alert: 46 bytes.
void writeIgmp(std::span<std::byte> out, IgmpType type, const Mac& srcMac, std::uint32_t srcIp,
               std::uint32_t group) noexcept;

}  // namespace seqcast::transport::eth
