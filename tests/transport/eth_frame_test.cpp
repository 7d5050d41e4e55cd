// Ethernet / IPv4 / UDP, ARP and IGMP framing: round trips, checksums, and a parser that survives
// any input (random frames, truncations, bit flips of valid frames).
#include <doctest/doctest.h>

#include <cstring>
#include <random>
#include <vector>

#include "transport/eth_frame.h"

using namespace seqcast::transport;
using eth::Kind;

namespace {

const eth::Mac kMacA{0x02, 0x00, 0x00, 0x00, 0x00, 0x0A};
const eth::Mac kMacB{0x02, 0x00, 0x00, 0x00, 0x00, 0x0B};

std::vector<std::byte> udpFrame(std::size_t payload, std::uint32_t dst = 0x0A000002u, std::uint8_t seed = 1) {
    std::vector<std::byte> f(eth::kUdpFrameOverhead + payload);
    for (std::size_t i = 0; i < payload; ++i) f[eth::kUdpFrameOverhead + i] = static_cast<std::byte>((i * 31 + seed) & 0xFF);
    eth::UdpHeaderArgs a;
    a.srcMac = kMacA;
    a.dstMac = (dst >> 28) == 0xE ? eth::multicastMac(dst) : kMacB;
    a.srcIp = 0x0A000001u;
    a.dstIp = dst;
    a.srcPort = 40001;
    a.dstPort = 5000;
    a.ttl = 7;
    a.ipId = 0x1234;
    eth::writeUdpHeaders(f, a, static_cast<std::uint16_t>(payload), true);
    return f;
}

}  // namespace

TEST_CASE("multicast MAC: 01:00:5e and the low 23 bits of the group") {
    CHECK(eth::multicastMac(0xEF810101u) == eth::Mac{0x01, 0x00, 0x5E, 0x01, 0x01, 0x01});  // 239.129.1.1
    CHECK(eth::multicastMac(0xE0000001u) == eth::Mac{0x01, 0x00, 0x5E, 0x00, 0x00, 0x01});  // 224.0.0.1
    CHECK(eth::multicastMac(0xEFFFFFFFu) == eth::Mac{0x01, 0x00, 0x5E, 0x7F, 0xFF, 0xFF});
}

TEST_CASE("checksum: RFC 1071 example") {
    // RFC 1071 section 3: 00 01 f2 03 f4 f5 f6 f7 sums to 0xddf2.
    const std::byte b[] = {std::byte{0x00}, std::byte{0x01}, std::byte{0xf2}, std::byte{0x03},
                           std::byte{0xf4}, std::byte{0xf5}, std::byte{0xf6}, std::byte{0xf7}};
    CHECK(eth::onesSum(b) == 0xDDF2u);
    CHECK(eth::foldChecksum(0xDDF2u) == 0x220D);
}

TEST_CASE("UDP frame: written, then parsed back with valid IPv4 and UDP checksums") {
    for (std::size_t payload : {0u, 1u, 17u, 48u, 1408u, 1472u}) {
        const auto f = udpFrame(payload);
        const auto p = eth::parse(f);
        REQUIRE(p.kind == Kind::Udp);
        CHECK(p.srcMac == kMacA);
        CHECK(p.dstMac == kMacB);
        CHECK(p.srcIp == 0x0A000001u);
        CHECK(p.dstIp == 0x0A000002u);
        CHECK(p.srcPort == 40001);
        CHECK(p.dstPort == 5000);
        CHECK(p.payloadOffset == eth::kUdpFrameOverhead);
        CHECK(p.payloadLen == payload);
        CHECK(std::memcmp(f.data() + p.payloadOffset, udpFrame(payload).data() + eth::kUdpFrameOverhead, payload) == 0);
        // IPv4 header checksum: the header sums to 0xFFFF.
        CHECK(eth::foldChecksum(eth::onesSum(std::span(f).subspan(eth::kEthHeader, eth::kIpv4Header))) == 0);
        // UDP checksum: pseudo-header + UDP header + payload sums to 0xFFFF.
        const std::uint32_t udpLen = static_cast<std::uint32_t>(eth::kUdpHeader + payload);
        std::uint32_t pseudo = 0x0A00 + 0x0001 + 0x0A00 + 0x0002 + 17 + udpLen;
        CHECK(eth::foldChecksum(eth::onesSum(std::span(f).subspan(eth::kEthHeader + eth::kIpv4Header), pseudo)) == 0);
        // TTL, DF, id as asked.
        CHECK(std::to_integer<int>(f[eth::kEthHeader + 8]) == 7);
        CHECK(std::to_integer<int>(f[eth::kEthHeader + 6]) == 0x40);
        CHECK(std::to_integer<int>(f[eth::kEthHeader + 4]) == 0x12);
    }
}

TEST_CASE("UDP frame: Ethernet padding after the IP datagram is ignored") {
    auto f = udpFrame(4);
    f.resize(eth::kMinFrame, std::byte{0xEE});
    const auto p = eth::parse(f);
    REQUIRE(p.kind == Kind::Udp);
    CHECK(p.payloadLen == 4);
}

TEST_CASE("ARP: request and reply round trip") {
    std::vector<std::byte> f(eth::kArpFrame);
    eth::writeArp(f, 1, kMacA, 0x0A000001u, eth::Mac{}, 0x0A000002u);
    auto p = eth::parse(f);
    REQUIRE(p.kind == Kind::Arp);
    CHECK(p.dstMac == eth::kBroadcastMac);
    CHECK(p.arpOp == 1);
    CHECK(p.arpSenderMac == kMacA);
    CHECK(p.arpSenderIp == 0x0A000001u);
    CHECK(p.arpTargetIp == 0x0A000002u);
    eth::writeArp(f, 2, kMacB, 0x0A000002u, kMacA, 0x0A000001u);
    p = eth::parse(f);
    REQUIRE(p.kind == Kind::Arp);
    CHECK(p.dstMac == kMacA);
    CHECK(p.arpOp == 2);
    CHECK(p.arpSenderMac == kMacB);
}

TEST_CASE("IGMPv2: report to the group, leave to 224.0.0.2, Router Alert, valid checksums") {
    std::vector<std::byte> f(eth::kIgmpFrame);
    eth::writeIgmp(f, eth::IgmpType::V2Report, kMacA, 0x0A000001u, 0xEF010101u);
    auto p = eth::parse(f);
    REQUIRE(p.kind == Kind::Igmp);
    CHECK(p.dstIp == 0xEF010101u);
    CHECK(p.dstMac == eth::multicastMac(0xEF010101u));
    CHECK(p.igmpType == 0x16);
    CHECK(p.igmpGroup == 0xEF010101u);
    CHECK(std::to_integer<int>(f[eth::kEthHeader]) == 0x46);      // IHL 6: the option
    CHECK(std::to_integer<int>(f[eth::kEthHeader + 8]) == 1);     // TTL 1
    CHECK(std::to_integer<int>(f[eth::kEthHeader + 20]) == 0x94); // Router Alert
    eth::writeIgmp(f, eth::IgmpType::Leave, kMacA, 0x0A000001u, 0xEF010101u);
    p = eth::parse(f);
    REQUIRE(p.kind == Kind::Igmp);
    CHECK(p.dstIp == eth::kAllRouters);
    CHECK(p.igmpType == 0x17);
}

TEST_CASE("malformed and foreign frames are classified, not accepted") {
    const auto good = udpFrame(100);
    SUBCASE("every truncation") {
        for (std::size_t n = 0; n < good.size(); ++n) {
            const auto p = eth::parse(std::span(good).first(n));
            CHECK(p.kind == Kind::Malformed);
        }
    }
    SUBCASE("bad IPv4 header checksum") {
        auto f = good;
        f[eth::kEthHeader + 10] ^= std::byte{1};
        CHECK(eth::parse(f).kind == Kind::Malformed);
    }
    SUBCASE("IP version 6 in an IPv4 ethertype") {
        auto f = good;
        f[eth::kEthHeader] = std::byte{0x65};
        CHECK(eth::parse(f).kind == Kind::Malformed);
    }
    SUBCASE("UDP length beyond the IP datagram") {
        auto f = good;
        f[eth::kEthHeader + eth::kIpv4Header + 4] = std::byte{0x7F};
        CHECK(eth::parse(f).kind == Kind::Malformed);
    }
    SUBCASE("UDP length below the header") {
        auto f = good;
        f[eth::kEthHeader + eth::kIpv4Header + 4] = std::byte{0};
        f[eth::kEthHeader + eth::kIpv4Header + 5] = std::byte{4};
        CHECK(eth::parse(f).kind == Kind::Malformed);
    }
    SUBCASE("IPv6, VLAN, and a fragment are foreign") {
        auto f = good;
        f[12] = std::byte{0x86};
        f[13] = std::byte{0xDD};
        CHECK(eth::parse(f).kind == Kind::Foreign);
        f[12] = std::byte{0x81};
        f[13] = std::byte{0x00};
        CHECK(eth::parse(f).kind == Kind::Foreign);
        // More-fragments bit: the header checksum must be fixed up for the frame to be well formed.
        auto g = udpFrame(100);
        g[eth::kEthHeader + 6] = std::byte{0x20};
        g[eth::kEthHeader + 10] = std::byte{0};
        g[eth::kEthHeader + 11] = std::byte{0};
        const auto c = eth::foldChecksum(eth::onesSum(std::span(g).subspan(eth::kEthHeader, eth::kIpv4Header)));
        g[eth::kEthHeader + 10] = static_cast<std::byte>(c >> 8);
        g[eth::kEthHeader + 11] = static_cast<std::byte>(c & 0xFF);
        CHECK(eth::parse(g).kind == Kind::Foreign);
    }
}

TEST_CASE("fuzz: random frames and bit flips of valid frames never crash or overrun") {
    std::mt19937_64 rng(7);
    std::vector<std::vector<std::byte>> seeds = {udpFrame(0), udpFrame(64), udpFrame(1400, 0xEF010101u), {}, {}};
    seeds[3].resize(eth::kArpFrame);
    eth::writeArp(seeds[3], 1, kMacA, 1, eth::Mac{}, 2);
    seeds[4].resize(eth::kIgmpFrame);
    eth::writeIgmp(seeds[4], eth::IgmpType::V2Report, kMacA, 1, 0xEF000001u);
    std::size_t kinds[5] = {};
    for (int iter = 0; iter < 200000; ++iter) {
        std::vector<std::byte> f;
        if (iter % 2 == 0) {
            f.resize(rng() % 1600);
            for (auto& b : f) b = static_cast<std::byte>(rng());
            if (f.size() >= 14 && rng() % 2 == 0) {  // give random bytes a plausible ethertype and IP start
                f[12] = std::byte{0x08};
                f[13] = std::byte{static_cast<unsigned char>(rng() % 2 == 0 ? 0x00 : 0x06)};
                if (f.size() > 14) f[14] = std::byte{0x45};
            }
        } else {
            f = seeds[rng() % seeds.size()];
            const int flips = 1 + static_cast<int>(rng() % 4);
            for (int k = 0; k < flips && !f.empty(); ++k) f[rng() % f.size()] ^= static_cast<std::byte>(1u << (rng() % 8));
            if (rng() % 4 == 0) f.resize(rng() % (f.size() + 1));
        }
        const auto p = eth::parse(f);
        kinds[static_cast<int>(p.kind)]++;
        if (p.kind == Kind::Udp) {
            REQUIRE(std::size_t{p.payloadOffset} + p.payloadLen <= f.size());
            REQUIRE(p.payloadOffset >= eth::kUdpFrameOverhead);
        }
    }
    // Every class was seen (flipped UDP payload bytes keep a frame valid: no UDP checksum check).
    for (auto k : kinds) CHECK(k > 0);
}
