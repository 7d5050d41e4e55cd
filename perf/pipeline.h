// An in-process publisher -> sequencer -> subscriber pipeline on real loopback multicast sockets,
// for `seqcast bench` and `seqcast ping`. The sequencer runs on its own thread (or is an external
// one), the subscriber on another, the publisher on the caller's thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <seqcast/seqcast.hpp>

#include "archive/archiver.h"
#include "client/publisher.h"
#include "client/subscriber.h"
#include "fabric/clock.h"
#include "fabric/histogram.h"
#include "sequencer/sequencer.h"
#include "transport/fault_transport.h"
#include "transport/udp_transport.h"

namespace seqcast::tools {

struct Net {
    std::uint32_t group;
    std::uint16_t port;  // control = port, data = port + 1
};
Net pickNet(Rng& r);
// Opens a UDP socket (through recvmmsg/sendmmsg or io_uring) or exits with a message (benchmark set-up).
std::unique_ptr<transport::Transport> openUdpOrExit(transport::Endpoint bind, std::vector<std::uint32_t> groups = {},
                                                    bool gso = false,
                                                    transport::SocketApi api = transport::SocketApi::Syscalls,
                                                    const std::string& authKeyFile = {});

// Ways to make every run of a benchmark fail on purpose, so that a test can check the harness
// reports the failure instead of a figure.
enum class InjectedFailure : std::uint8_t {
    None,
    Loss,   // subscribers in at-most-once mode (no repair) with 5 % loss at their data socket
    Join,   // subscribers join a group nobody sends to: start() fails
};

// The sockets fault injection can sit on.
enum class LossySocket : std::uint8_t {
    Publisher,          // receives confirmations
    SequencerControl,   // receives PUBs
    SequencerData,      // receives NAKs
    SubscriberData,     // receives DATA, retransmissions (multicast to the group) and heartbeats
    SubscriberControl,  // receives unicast replies (replays, archiver repairs)
};

struct PipelineOptions {
    double subLoss = 0;            // random loss on receive at the subscriber's data socket only
    double loss = 0;               // random loss on receive at every socket: PUBs, confirmations, DATA, NAKs, retransmissions
    InjectedFailure inject = InjectedFailure::None;
    bool busyPoll = false;
    unsigned histogramBits = 7;    // histogram precision: relative error 2^-bits
    transport::Endpoint control;   // an external sequencer (port 0: run one in-process)
    transport::Endpoint group;
    bool gso = false;              // UDP GSO on sends and GRO on receives, on every socket
    bool colocate = false;         // the publisher's thread also runs the sequencer (two threads in all)
    transport::SocketApi api = transport::SocketApi::Syscalls;
    unsigned publishers = 1;       // publisher instances (own socket, own id), driven by the caller's thread
    unsigned subscribers = 1;      // subscriber instances (own sockets, own join), all driven by one thread
    std::string authKeyFile;       // non-empty: authenticated frames on every socket
    // Publishers and subscribers are libseqcast clients (seqcast::Publisher / Subscriber, the public
    // API) instead of the engine's classes; the sequencer is the same. No fault injection then.
    bool publicApi = false;
    // Paced runs stamp each message with its intended send time (coordinated-omission correct);
    // this stamps it when offered instead, as the public API's offer() does (its baseline).
    bool stampAtOffer = false;
    // Non-empty path: an archiver records the stream into this log on a thread of its own.
    archive::ArchiveConfig archive;
};

// A replay of everything the archiver holds, by a client like `seqcast replay`.
struct ReplayResult {
    std::uint64_t expected = 0, delivered = 0, lost = 0;
    double seconds = 0;
    std::string failure;  // empty: every retained offset came back
};

class Pipeline {
public:
    Pipeline(Rng& rng, const PipelineOptions& o);
    ~Pipeline();
    // Set-up that failed without exiting (the archive log, made by start()); empty when all is well.
    const std::string& setupError() const { return setupError_; }
    // Starts the sequencer, subscriber (and archiver) threads; waits until the subscribers have
    // joined. False when they did not, or when the archiver could not be made (setupError()).
    bool start();
    void finish();
    // Publishes `size`-byte messages for `seconds`: as fast as the window allows (rate 0) or at a
    // fixed rate, each stamped with its intended send time (coordinated-omission correct), holding
    // back while the slowest subscriber is more than half the sequencer's ring behind.
    // Messages go to the publishers in turn. Returns the number offered.
    std::uint64_t publish(std::size_t size, double rate, double seconds);

    // Empty when every subscriber delivered exactly `offered` messages of ours and none declared
    // offsets lost; otherwise what went wrong, in words.
    std::string check(std::uint64_t offered) const;
    // Messages of ours the first subscriber delivered; the histograms are its too.
    std::atomic<std::uint64_t> delivered{0};
    // The fewest any subscriber delivered (all subscribers receive every message).
    std::uint64_t deliveredByAll() const;
    // A counter summed over the subscribers, or the in-process sequencer's (0 with an external one).
    std::uint64_t subscriberCounter(Counter c) const;
    std::uint64_t sequencerCounter(Counter c) const { return seqC_.get(c); }
    std::uint64_t publisherCounter(Counter c) const;
    // Datagrams the fault injection dropped, over every socket, or at one kind of socket.
    std::uint64_t injectedDrops() const;
    std::uint64_t injectedDrops(LossySocket at) const;

    // With an archiver: offsets written into the log so far (what its thread last saw), the
    // sequencer's next offset, and its counters (read after finish(), or racy but harmless).
    std::uint64_t archived() const { return archWritten_.load(std::memory_order_acquire); }
    std::uint64_t streamEnd() const {
        if (!seq_) return 0;
        return o_.colocate ? seq_->nextOffset().get() : seqNext_.load(std::memory_order_acquire);
    }
    std::uint64_t archiverCounter(Counter c) const { return archC_.get(c); }
    // Waits (at most `timeoutS`) until the archiver has written every offset the sequencer sent,
    // then flushes; empty on success, else what is missing. archiveCompleteNs(): when the last
    // offset was seen written (within a millisecond), monotonic clock.
    std::string awaitArchive(double timeoutS);
    std::uint64_t archiveCompleteNs() const { return archiveCompleteNs_; }
    // Replays every offset the archive holds to a fresh client and times it (the archiver's
    // thread keeps serving). Call after awaitArchive().
    ReplayResult replayAll(double timeoutS);
    Histogram latency, repairedLatency, normalLatency, hopPubSeq, hopSeqSub;

    // CPU time (CLOCK_THREAD_CPUTIME_ID) of the publisher's thread (the caller's, in publish(), the
    // drain left out) and of the subscribers' thread (from its start until finish() stopped it).
    std::uint64_t publisherCpuNs() const { return pubCpuNs_; }
    std::uint64_t subscriberCpuNs() const { return subCpuNs_.load(std::memory_order_acquire); }

private:
    struct Pub {
        Counters counters;
        std::unique_ptr<transport::Transport> t;
        std::unique_ptr<client::Publisher> p;
        std::unique_ptr<seqcast::Publisher> api;  // publicApi: this instead of t and p
    };
    struct Sub {
        Counters counters;
        std::unique_ptr<transport::Transport> data, ctl;
        std::unique_ptr<client::Subscriber> s;
        std::unique_ptr<seqcast::Subscriber> api;  // publicApi: this instead of data, ctl and s
        seqcast::MessageHandler onMessage;         // publicApi: what poll() delivers to
        std::atomic<std::uint64_t> delivered{0};
    };
    // publicApi: a counter summed over this process's libseqcast clients of one role.
    std::uint64_t apiCounter(const char* role, Counter c) const;
    bool ours(std::uint32_t publisher) const noexcept;
    bool allConfirmed() const;

    PipelineOptions o_;
    Counters seqC_;
    std::unique_ptr<transport::Transport> seqT_, seqData_;  // control; data (stream out, NAKs in)
    std::unique_ptr<sequencer::Sequencer> seq_;
    std::vector<std::unique_ptr<Pub>> pubs_;
    std::vector<std::unique_ptr<Sub>> subs_;
    std::vector<std::uint32_t> pubIds_;
    std::vector<std::pair<LossySocket, const transport::FaultTransport*>> faults_;
    Counters archC_;
    std::unique_ptr<transport::Transport> archData_, archSub_, archSvc_;
    std::unique_ptr<archive::Archiver> arch_;
    std::uint64_t archSeed_ = 0;
    std::uint64_t archiveCompleteNs_ = 0;
    std::atomic<std::uint64_t> archWritten_{0}, archEarliest_{0};
    std::atomic<std::uint64_t> seqNext_{0};
    std::uint64_t pubCpuNs_ = 0;
    std::atomic<std::uint64_t> subCpuNs_{0};  // the sequencer's next offset, as its thread last saw it
    std::atomic<bool> archFlushRequest_{false}, archFlushed_{false};
    std::string archFlushError_;  // written by the archiver's thread before archFlushed_
    std::string setupError_;
    std::atomic<bool> stop_{false};
    std::thread seqThread_, subThread_, archThread_;
};

// Raw UDP ping-pong on loopback (no sequencer) through the given socket API, paced at `rate` round
// trips per second: the round trip of one 64-byte datagram. A ping whose answer has not come back
// within 100 ms is counted lost (a late answer is recognised by its number and not counted).
struct PingPong {
    explicit PingPong(unsigned bits) : rtt(bits), oneWay(bits) {}
    Histogram rtt, oneWay;  // oneWay: RTT / 2
    std::uint64_t sent = 0, lost = 0;
};
PingPong rawPingPong(Rng& rng, double seconds, bool busy, unsigned bits, double rate,
                     transport::SocketApi api = transport::SocketApi::Syscalls);
// The same, as one-way figures (RTT / 2), lost pings left out (for `seqcast ping --raw`).
Histogram rawOneWay(Rng& rng, double seconds, bool busy, unsigned bits, double rate);

}  // namespace seqcast::tools
