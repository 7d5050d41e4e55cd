// Kernel-bypass UDP over DPDK: the same datagrams, the same bytes on the wire as the socket
// transports, moved by a poll-mode driver (rte_eth_rx_burst / rte_eth_tx_burst) instead of the
// kernel's UDP stack.
//
// One process-wide port: the EAL is initialised once (from the arguments after `--` on the command
// line), the first DPDK port is brought up with one rx and one tx queue, and every DpdkTransport the
// process opens (a sequencer's control and data sockets, a subscriber's data and control sockets) is
// an IP:port endpoint on it. Received frames are demultiplexed in software by destination address,
// port and group membership, so the NIC's filters do not need to know the groups. The port answers
// ARP for our address and resolves same-subnet next hops with ARP (a small table; frames to an
// unresolved address wait there, a few per address), sends IGMPv2 membership reports for the groups
// its endpoints join (at join, periodically, and in answer to queries) and a leave when the last
// endpoint of a group closes. Frames it cannot use are counted and dropped (dpdkPortStats()).
//
// Threading: all transports of a process share rx/tx queue 0; a spin lock taken once per burst
// keeps calls from several threads safe, but one polling thread is the intended use.
// Limits: IPv4 only, no IP fragments (datagrams above the port MTU minus 28 bytes are refused),
// one port, no VLANs, no gateway (unicast destinations must be on our subnet).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "transport/udp_transport.h"

namespace seqcast::transport {

// Whether this build has DPDK support.
bool dpdkAvailable() noexcept;

// Opens an endpoint on the process's DPDK port, bringing the EAL and the port up on first use from
// cfg.ealArgs. Our IPv4 address is cfg.interface (or, when that is 0 or loopback, cfg.bind.addr);
// the subnet is cfg.prefixLen bits. cfg.bind, cfg.groups, cfg.ttl, cfg.loop (deliver multicast sent
// here to this process's endpoints that joined), cfg.maxDatagram, and cfg.rcvBuf (the endpoint's
// receive queue: rcvBuf / 2 KiB frames, 256..8192) are honoured; socket options (GSO, GRO, sndBuf)
// have no meaning here. A build without DPDK returns an error that says how to get it. This is the
// bare backend: roles open it through openTransport() (transport/open_transport.h), which stacks
// the allowlist, authentication and fault layers over it as over every backend.
Result<std::unique_ptr<Transport>> openDpdkTransport(const UdpConfig& cfg, std::vector<std::string>& warnings);

// Port-level counters (all endpoints together).
struct DpdkPortStats {
    std::uint64_t rxFrames = 0;
    std::uint64_t rxUdp = 0;
    std::uint64_t rxArp = 0;
    std::uint64_t rxIgmp = 0;
    std::uint64_t rxForeign = 0;     // other ethertypes, protocols, fragments, other hosts' frames
    std::uint64_t rxMalformed = 0;   // truncated, bad lengths, bad IPv4 / IGMP checksum
    std::uint64_t rxNoEndpoint = 0;  // UDP to our address or a group on a port nobody here has open
    std::uint64_t rxQueueFull = 0;   // an endpoint's receive queue was full
    std::uint64_t rxTooBig = 0;      // larger than the endpoint's maxDatagram, or a multi-segment mbuf
    std::uint64_t txFrames = 0;
    std::uint64_t txArpRequests = 0;
    std::uint64_t txArpReplies = 0;
    std::uint64_t txIgmp = 0;
    std::uint64_t txNoRoute = 0;     // unicast destination outside our subnet
    std::uint64_t txTooBig = 0;      // datagram above the port MTU minus 28 bytes
    std::uint64_t arpUnresolved = 0; // frames dropped after ARP got no answer
    std::uint64_t txNoMbufs = 0;     // sends cut short by an empty mbuf pool
};
DpdkPortStats dpdkPortStats() noexcept;

}  // namespace seqcast::transport
