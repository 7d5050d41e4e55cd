// Datagram blaster for perf/dpdk_bench.sh: sends or receives datagrams as fast as the transport
// allows for a fixed time and prints the rate, so the DPDK transport can be set beside dpdk-testpmd
// (txonly / rxonly on the same vdev) and beside the kernel-socket transport.
//
//   dpdk_blast tx dpdk|udp|udp-nogso OUR_IP DEST_IP:PORT SIZE SECONDS [-- EAL ARGS]
//   dpdk_blast rx dpdk|udp OUR_IP BIND_IP:PORT SECONDS [-- EAL ARGS]   (BIND a group: joined)
// Prints one line: "pps N" (datagrams per second taken by sendBurst, or received).
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "fabric/clock.h"
#include "transport/dpdk_transport.h"
#include "transport/open_transport.h"

using namespace seqcast;
using namespace seqcast::transport;

namespace {

[[noreturn]] void usage() {
    std::fprintf(stderr,
                 "usage: dpdk_blast tx dpdk|udp OUR_IP DEST:PORT SIZE SECONDS [-- EAL]\n"
                 "       dpdk_blast rx dpdk|udp OUR_IP BIND:PORT SECONDS [-- EAL]\n");
    std::exit(2);
}

}  // namespace

int main(int argc, char** argv) {
    std::vector<std::string> args, eal;
    bool afterDashes = false;
    for (int i = 1; i < argc; ++i) {
        if (!afterDashes && std::string(argv[i]) == "--") afterDashes = true;
        else (afterDashes ? eal : args).push_back(argv[i]);
    }
    if (args.size() < 5) usage();
    const bool tx = args[0] == "tx";
    if (!tx && args[0] != "rx") usage();
    UdpConfig c;
    c.api = args[1] == "dpdk" ? SocketApi::Dpdk : SocketApi::Syscalls;
    c.ealArgs = eal;
    auto ip = parseIpv4(args[2]);
    auto ep = parseEndpoint(args[3]);
    if (!ip || !ep) usage();
    c.interface = *ip;
    c.loop = false;
    c.maxDatagram = 2048;
    c.rcvBuf = 16 << 20;
    c.gso = args[1] != "udp-nogso";  // udp: GSO on, as seqcast runs by default
    c.gro = false;
    std::size_t size = 0;
    double seconds = 0;
    if (tx) {
        if (args.size() < 6) usage();
        size = std::strtoul(args[4].c_str(), nullptr, 10);
        seconds = std::strtod(args[5].c_str(), nullptr);
        c.bind = Endpoint{*ip, 0};
    } else {
        seconds = std::strtod(args[4].c_str(), nullptr);
        c.bind = *ep;
        if (ep->multicast()) c.groups = {ep->addr};
    }
    std::vector<std::string> warnings;
    auto t = openTransport(c, warnings);
    if (!t) {
        std::fprintf(stderr, "dpdk_blast: %s\n", t.error().message().c_str());
        return 1;
    }
    Transport& tr = **t;
    std::uint64_t count = 0;
    if (tx) {
        std::vector<std::byte> payload(size, std::byte{0x5A});
        std::vector<TxItem> items(32, TxItem{payload.data(), static_cast<std::uint32_t>(size), *ep});
        const std::uint64_t warm = monoNs() + 200'000'000ull;
        while (monoNs() < warm) tr.sendBurst(items);
        const std::uint64_t t0 = monoNs();
        const std::uint64_t end = t0 + static_cast<std::uint64_t>(seconds * 1e9);
        std::uint64_t now = t0;
        while (now < end) {
            for (int k = 0; k < 16; ++k) count += tr.sendBurst(items);
            now = monoNs();
        }
        std::printf("pps %.0f\n", static_cast<double>(count) / (static_cast<double>(now - t0) / 1e9));
    } else {
        RxSlot slots[64];
        const std::uint64_t giveUp = monoNs() + 10'000'000'000ull;
        while (count == 0 && monoNs() < giveUp) count = tr.recvBurst(slots);
        const std::uint64_t t0 = monoNs();
        const std::uint64_t end = t0 + static_cast<std::uint64_t>(seconds * 1e9);
        count = 0;
        std::uint64_t now = t0;
        while (now < end) {
            for (int k = 0; k < 16; ++k) count += tr.recvBurst(slots);
            now = monoNs();
        }
        std::printf("pps %.0f\n", static_cast<double>(count) / (static_cast<double>(now - t0) / 1e9));
    }
    std::fflush(stdout);
    return 0;
}
