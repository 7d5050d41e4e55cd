// An in-process publisher -> sequencer -> subscriber pipeline on real loopback multicast sockets,
// for `seqcast bench` and `seqcast ping`. The sequencer runs on its own thread (or is an external
// one), the subscriber on another, the publisher on the caller's thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <thread>

#include "fabric/clock.h"
#include "fabric/histogram.h"
#include "recovery/subscriber.h"
#include "sequencer/publisher.h"
#include "sequencer/sequencer.h"
#include "transport/fault_transport.h"
#include "transport/udp_transport.h"

namespace seqcast::tools {

struct Net {
    std::uint32_t group;
    std::uint16_t port;  // control = port, data = port + 1
};
Net pickNet(Rng& r);
// Opens a UDP socket or exits with a message (benchmark set-up).
std::unique_ptr<transport::UdpTransport> openUdpOrExit(transport::Endpoint bind, std::vector<std::uint32_t> groups = {},
                                                       bool gso = false);

struct PipelineOptions {
    double subLoss = 0;            // fault injection at the subscriber
    bool busyPoll = false;
    unsigned histogramBits = 7;    // histogram precision: relative error 2^-bits
    transport::Endpoint control;   // an external sequencer (port 0: run one in-process)
    transport::Endpoint group;
    bool gso = false;              // UDP GSO on sends and GRO on receives, on every socket
    bool colocate = false;         // the publisher's thread also runs the sequencer (two threads in all)
};

class Pipeline {
public:
    Pipeline(Rng& rng, const PipelineOptions& o);
    ~Pipeline();
    // Starts the sequencer and subscriber threads; waits until the subscriber has joined.
    bool start();
    void finish();
    // Publishes `size`-byte messages for `seconds`: as fast as the window allows (rate 0) or at a
    // fixed rate, each stamped with its intended send time (coordinated-omission correct).
    // Returns the number offered.
    std::uint64_t publish(std::size_t size, double rate, double seconds);

    std::atomic<std::uint64_t> delivered{0};
    Histogram latency, repairedLatency, normalLatency, hopPubSeq, hopSeqSub;

private:
    PipelineOptions o_;
    Counters seqC_, pubC_, subC_;
    std::unique_ptr<transport::UdpTransport> seqT_, pubT_, subData_, subCtl_;
    std::unique_ptr<transport::Transport> subDataFaulty_;
    std::unique_ptr<sequencer::Sequencer> seq_;
    std::unique_ptr<sequencer::Publisher> pub_;
    std::unique_ptr<recovery::Subscriber> sub_;
    std::atomic<bool> stop_{false};
    int dataFd_ = -1;
    std::thread seqThread_, subThread_;
};

// Raw UDP ping-pong on loopback (no sequencer): the round trip of one 64-byte datagram, halved,
// paced at `rate` round trips per second.
Histogram rawOneWay(Rng& rng, double seconds, bool busy, unsigned bits, double rate);

}  // namespace seqcast::tools
