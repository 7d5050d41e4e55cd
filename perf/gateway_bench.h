// The gateways' throughput beside a plain seqcast subscriber of the same stream, in one process:
// an embedded sequencer (its own thread), a publisher offering `count` ITCH 5.0 messages as fast
// as its window allows (its own thread), a seqcast::Subscriber counting them (its own thread), and
//   mold: a MoldUDP64 egress (a subscriber feeding gateway::mold::Egress, its own thread) whose
//         packets a receiver thread decodes and counts on a multicast socket;
//   soup: a SoupBinTCP server (its own thread) with `clients` TCP clients logged in at sequence
//         number 1, all read by one epoll thread.
// Rates are messages delivered per second from the moment publishing starts to each consumer's
// last message. A run in which any consumer misses a message is a failed run (no figure).
#pragma once

#include <cstdint>
#include <string>

#include "fabric/clock.h"

namespace seqcast::tools {

struct GatewayResult {
    std::uint64_t offered = 0;
    std::uint64_t subDelivered = 0;
    std::uint64_t gatewayDelivered = 0;  // mold: messages the receiver decoded; soup: the fewest any client got
    double subMsgsPerSec = 0;            // the plain subscriber
    double gatewayMsgsPerSec = 0;        // mold: the receiver; soup: the median client
    double aggregateMsgsPerSec = 0;      // soup: all clients together (the server's fan-out)
    std::uint64_t lost = 0;              // offsets the subscribers (the plain one, the gateway's) reported lost
    std::string failure;                 // empty: every consumer got every message
};

// injectLoss: the subscribers run at most once with 5 % loss at their data sockets (a test of the
// harness: every run must then fail).
GatewayResult moldEgressRun(Rng& rng, std::uint64_t count, double timeoutS, bool injectLoss = false);
GatewayResult soupServerRun(Rng& rng, std::uint64_t count, unsigned clients, double timeoutS, bool injectLoss = false);

}  // namespace seqcast::tools
