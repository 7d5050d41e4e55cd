// Test tool: floods a sequencer with valid NAK datagrams asking for a whole range, from one socket,
// at a fixed rate, for a bounded time. Used by abuse_limits.sh (never installed).
//   nak_flood HOST:PORT STREAM RATE_PER_S SECONDS FIRST COUNT [SOURCE_IP]
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "fabric/clock.h"
#include "fabric/wire.h"
#include "transport/udp_transport.h"

using namespace seqcast;

int main(int argc, char** argv) {
    if (argc != 7 && argc != 8) {
        std::fprintf(stderr, "usage: %s HOST:PORT STREAM RATE_PER_S SECONDS FIRST COUNT [SOURCE_IP]\n", argv[0]);
        return 2;
    }
    auto to = transport::parseEndpoint(argv[1]);
    if (!to) {
        std::fprintf(stderr, "nak_flood: %s\n", to.error().message().c_str());
        return 2;
    }
    const auto stream = static_cast<std::uint32_t>(std::strtoul(argv[2], nullptr, 10));
    const double rate = std::strtod(argv[3], nullptr);
    const double seconds = std::strtod(argv[4], nullptr);
    const std::uint64_t first = std::strtoull(argv[5], nullptr, 10);
    const auto count = static_cast<std::uint32_t>(std::strtoul(argv[6], nullptr, 10));
    if (rate <= 0 || rate > 1e6 || seconds <= 0 || seconds > 600 || count == 0) {
        std::fprintf(stderr, "nak_flood: bad rate, seconds or count\n");
        return 2;
    }
    transport::UdpConfig c;
    c.bind = transport::Endpoint{0x7F000001u, 0};
    if (argc == 8) {
        auto src = transport::parseIpv4(argv[7]);
        if (!src) {
            std::fprintf(stderr, "nak_flood: %s\n", src.error().message().c_str());
            return 2;
        }
        c.bind.addr = *src;
    }
    auto t = transport::UdpTransport::open(c);
    if (!t) {
        std::fprintf(stderr, "nak_flood: %s\n", t.error().message().c_str());
        return 1;
    }
    std::vector<std::byte> buf(wire::kHeaderSize + sizeof(wire::NakRange));
    wire::DatagramWriter w(buf);
    w.begin(wire::FrameType::Nak, StreamId{stream}, Epoch{0}, Offset{first});
    if (!w.appendNakRange(Offset{first}, count)) return 1;
    buf.resize(w.finish(wallNs()));
    const transport::TxItem item{buf.data(), static_cast<std::uint32_t>(buf.size()), *to};
    std::vector<transport::TxItem> burst(16, item);
    const std::uint64_t t0 = monoNs();
    const std::uint64_t end = t0 + static_cast<std::uint64_t>(seconds * 1e9);
    std::uint64_t sent = 0;
    while (monoNs() < end) {
        const auto due = static_cast<std::uint64_t>(static_cast<double>(monoNs() - t0) * 1e-9 * rate);
        if (sent < due) {
            const std::size_t n = std::min<std::uint64_t>(burst.size(), due - sent);
            sent += (*t)->sendBurst(std::span<const transport::TxItem>(burst.data(), n));
        } else {
            std::this_thread::sleep_for(std::chrono::microseconds(200));
        }
    }
    std::printf("nak_flood: %llu NAKs for [%llu, +%u) to %s in %.1f s\n", static_cast<unsigned long long>(sent),
                static_cast<unsigned long long>(first), count, to->str().c_str(), seconds);
    return 0;
}
