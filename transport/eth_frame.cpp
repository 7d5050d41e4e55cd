#include "transport/eth_frame.h"

#include <algorithm>

namespace seqcast::transport::eth {

namespace {

constexpr std::uint16_t kEtherIpv4 = 0x0800;
constexpr std::uint16_t kEtherArp = 0x0806;
constexpr std::uint8_t kProtoIgmp = 2;
constexpr std::uint8_t kProtoUdp = 17;

std::uint16_t rd16(std::span<const std::byte> b, std::size_t at) noexcept {
    return static_cast<std::uint16_t>((std::to_integer<unsigned>(b[at]) << 8) | std::to_integer<unsigned>(b[at + 1]));
}
std::uint32_t rd32(std::span<const std::byte> b, std::size_t at) noexcept {
    return (std::uint32_t{rd16(b, at)} << 16) | rd16(b, at + 2);
}
Mac rdMac(std::span<const std::byte> b, std::size_t at) noexcept {
    Mac m;
    for (std::size_t i = 0; i < 6; ++i) m[i] = std::to_integer<std::uint8_t>(b[at + i]);
    return m;
}
void wr8(std::span<std::byte> b, std::size_t at, unsigned v) noexcept { b[at] = static_cast<std::byte>(v & 0xFF); }
void wr16(std::span<std::byte> b, std::size_t at, unsigned v) noexcept {
    wr8(b, at, v >> 8);
    wr8(b, at + 1, v);
}
void wr32(std::span<std::byte> b, std::size_t at, std::uint32_t v) noexcept {
    wr16(b, at, v >> 16);
    wr16(b, at + 2, v & 0xFFFF);
}
void wrMac(std::span<std::byte> b, std::size_t at, const Mac& m) noexcept {
    for (std::size_t i = 0; i < 6; ++i) wr8(b, at + i, m[i]);
}

void writeEth(std::span<std::byte> out, const Mac& dst, const Mac& src, std::uint16_t type) noexcept {
    wrMac(out, 0, dst);
    wrMac(out, 6, src);
    wr16(out, 12, type);
}

// IPv4 header at out[kEthHeader..], ihl in bytes (20, or 24 with Router Alert), checksum filled.
void writeIpv4(std::span<std::byte> out, std::size_t ihl, std::uint16_t totalLen, std::uint16_t id, bool df,
               std::uint8_t ttl, std::uint8_t proto, std::uint32_t src, std::uint32_t dst) noexcept {
    auto ip = out.subspan(kEthHeader, ihl);
    wr8(ip, 0, 0x40 | (ihl / 4));
    wr8(ip, 1, 0);
    wr16(ip, 2, totalLen);
    wr16(ip, 4, id);
    wr16(ip, 6, df ? 0x4000 : 0);
    wr8(ip, 8, ttl);
    wr8(ip, 9, proto);
    wr16(ip, 10, 0);
    wr32(ip, 12, src);
    wr32(ip, 16, dst);
    if (ihl == 24) wr32(ip, 20, 0x94040000u);  // Router Alert (RFC 2113)
    wr16(ip, 10, foldChecksum(onesSum(ip)));
}

}  // namespace

std::uint32_t onesSum(std::span<const std::byte> bytes, std::uint32_t sum) noexcept {
    std::uint64_t s = sum;
    std::size_t i = 0;
    const std::size_t n = bytes.size();
    for (; i + 1 < n; i += 2) s += rd16(bytes, i);
    if (i < n) s += std::to_integer<std::uint64_t>(bytes[i]) << 8;
    while (s >> 16) s = (s & 0xFFFF) + (s >> 16);
    return static_cast<std::uint32_t>(s);
}

std::uint16_t foldChecksum(std::uint32_t sum) noexcept {
    while (sum >> 16) sum = (sum & 0xFFFF) + (sum >> 16);
    return static_cast<std::uint16_t>(~sum & 0xFFFF);
}

Mac multicastMac(std::uint32_t group) noexcept {
    return Mac{0x01, 0x00, 0x5E, static_cast<std::uint8_t>((group >> 16) & 0x7F),
               static_cast<std::uint8_t>((group >> 8) & 0xFF), static_cast<std::uint8_t>(group & 0xFF)};
}

Frame parse(std::span<const std::byte> b) noexcept {
    Frame f;
    if (b.size() < kEthHeader) return f;
    f.dstMac = rdMac(b, 0);
    f.srcMac = rdMac(b, 6);
    const std::uint16_t type = rd16(b, 12);
    if (type == kEtherArp) {
        if (b.size() < kArpFrame) return f;
        if (rd16(b, 14) != 1 || rd16(b, 16) != kEtherIpv4 || std::to_integer<unsigned>(b[18]) != 6 ||
            std::to_integer<unsigned>(b[19]) != 4) {
            f.kind = Kind::Foreign;  // ARP for another hardware or protocol type
            return f;
        }
        f.arpOp = rd16(b, 20);
        f.arpSenderMac = rdMac(b, 22);
        f.arpSenderIp = rd32(b, 28);
        f.arpTargetIp = rd32(b, 38);
        f.kind = (f.arpOp == 1 || f.arpOp == 2) ? Kind::Arp : Kind::Foreign;
        return f;
    }
    if (type != kEtherIpv4) {
        f.kind = Kind::Foreign;  // IPv6, VLAN-tagged, LLDP, ...
        return f;
    }
    if (b.size() < kEthHeader + kIpv4Header) return f;
    const auto ipAll = b.subspan(kEthHeader);
    const unsigned vihl = std::to_integer<unsigned>(ipAll[0]);
    const std::size_t ihl = (vihl & 0x0F) * 4u;
    const std::size_t total = rd16(ipAll, 2);
    if ((vihl >> 4) != 4 || ihl < kIpv4Header || total < ihl || total > ipAll.size()) return f;
    const auto ip = ipAll.first(total);  // Ethernet padding after the IP datagram is not ours
    if (foldChecksum(onesSum(ip.first(ihl))) != 0) return f;
    f.srcIp = rd32(ip, 12);
    f.dstIp = rd32(ip, 16);
    if ((rd16(ip, 6) & 0x3FFF) != 0) {
        f.kind = Kind::Foreign;  // a fragment (MF set or an offset): not reassembled here
        return f;
    }
    const std::uint8_t proto = std::to_integer<std::uint8_t>(ip[9]);
    const auto l4 = ip.subspan(ihl);
    if (proto == kProtoUdp) {
        if (l4.size() < kUdpHeader) return f;
        const std::size_t udpLen = rd16(l4, 4);
        if (udpLen < kUdpHeader || udpLen > l4.size()) return f;
        // The UDP checksum is not verified: frames from a kernel on the same host (veth) may carry a
        // partial one (checksum offload), and every seqcast datagram carries CRC32C end to end.
        f.srcPort = rd16(l4, 0);
        f.dstPort = rd16(l4, 2);
        f.payloadOffset = static_cast<std::uint16_t>(kEthHeader + ihl + kUdpHeader);
        f.payloadLen = static_cast<std::uint16_t>(udpLen - kUdpHeader);
        f.kind = Kind::Udp;
        return f;
    }
    if (proto == kProtoIgmp) {
        if (l4.size() < 8 || foldChecksum(onesSum(l4)) != 0) return f;
        f.igmpType = std::to_integer<std::uint8_t>(l4[0]);
        f.igmpGroup = rd32(l4, 4);
        f.kind = Kind::Igmp;
        return f;
    }
    f.kind = Kind::Foreign;  // ICMP, TCP, ...
    return f;
}

void writeUdpHeaders(std::span<std::byte> out, const UdpHeaderArgs& a, std::uint16_t payloadLen, bool udpChecksum) noexcept {
    const std::uint16_t udpLen = static_cast<std::uint16_t>(kUdpHeader + payloadLen);
    writeEth(out, a.dstMac, a.srcMac, kEtherIpv4);
    writeIpv4(out, kIpv4Header, static_cast<std::uint16_t>(kIpv4Header + udpLen), a.ipId, true, a.ttl, kProtoUdp, a.srcIp,
              a.dstIp);
    auto udp = out.subspan(kEthHeader + kIpv4Header, kUdpHeader);
    wr16(udp, 0, a.srcPort);
    wr16(udp, 2, a.dstPort);
    wr16(udp, 4, udpLen);
    wr16(udp, 6, 0);
    if (!udpChecksum) return;
    // Pseudo-header: source, destination, protocol, UDP length; then the header and the payload.
    std::uint32_t sum = (a.srcIp >> 16) + (a.srcIp & 0xFFFF) + (a.dstIp >> 16) + (a.dstIp & 0xFFFF) + kProtoUdp + udpLen;
    sum = onesSum(out.subspan(kEthHeader + kIpv4Header, udpLen), sum);
    const std::uint16_t c = foldChecksum(sum);
    wr16(udp, 6, c == 0 ? 0xFFFF : c);
}

void writeArp(std::span<std::byte> out, std::uint16_t op, const Mac& srcMac, std::uint32_t srcIp, const Mac& targetMac,
              std::uint32_t targetIp) noexcept {
    writeEth(out, op == 1 ? kBroadcastMac : targetMac, srcMac, kEtherArp);
    auto a = out.subspan(kEthHeader, 28);
    wr16(a, 0, 1);
    wr16(a, 2, kEtherIpv4);
    wr8(a, 4, 6);
    wr8(a, 5, 4);
    wr16(a, 6, op);
    wrMac(a, 8, srcMac);
    wr32(a, 14, srcIp);
    wrMac(a, 18, op == 1 ? Mac{} : targetMac);
    wr32(a, 24, targetIp);
}

void writeIgmp(std::span<std::byte> out, IgmpType type, const Mac& srcMac, std::uint32_t srcIp, std::uint32_t group) noexcept {
    const std::uint32_t dst = type == IgmpType::Leave ? kAllRouters : group;
    writeEth(out, multicastMac(dst), srcMac, kEtherIpv4);
    writeIpv4(out, 24, 24 + 8, 0, true, 1, kProtoIgmp, srcIp, dst);
    auto g = out.subspan(kEthHeader + 24, 8);
    wr8(g, 0, static_cast<unsigned>(type));
    wr8(g, 1, 0);
    wr16(g, 2, 0);
    wr32(g, 4, group);
    wr16(g, 2, foldChecksum(onesSum(g)));
}

}  // namespace seqcast::transport::eth
