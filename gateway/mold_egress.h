// MoldUDP64 egress: a reliable subscriber of a seqcast stream that multicasts the stream as
// MoldUDP64 downstream packets, and a request server that answers re-requests from the archive.
//
// Sequence numbers: a message's Mold sequence number is its stream offset + 1 (Mold counts from
// 1). The offset is the stream's own, so every egress instance, before and after a restart, gives a
// message the same number, and the request server maps a requested number to the archive with no
// table. This needs every message to take one offset, i.e. to travel unfragmented (a seqcast
// fragment takes an offset of its own): an egress that meets a fragmented message stops with an
// error naming it rather than number the stream differently (docs/GATEWAYS.md).
//
// Both classes are driven by their caller's thread (doWork()/wait()); the request server reads the
// egress's head through an atomic, so it can run on a thread of its own.
#pragma once

#include <netinet/in.h>

#include <atomic>
#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include <seqcast/seqcast.hpp>

#include "gateway/moldudp64.h"

namespace seqcast::gateway::mold {

// Per-requester token bucket over requests: `rate` per second, bursts of `burst`. Tracks at most
// `maxRequesters` addresses (the longest idle one is forgotten first). Pure logic.
class RequestLimiter {
public:
    RequestLimiter(double rate, double burst, std::size_t maxRequesters = 4096) noexcept
        : rate_(rate), burst_(burst), max_(maxRequesters) {}
    // True when the requester `key` may send one more request at `nowNs`.
    bool admit(std::uint64_t key, std::uint64_t nowNs);
    std::size_t tracked() const noexcept { return buckets_.size(); }

private:
    struct Bucket {
        double tokens;
        std::uint64_t lastNs;
    };
    double rate_, burst_;
    std::size_t max_;
    std::unordered_map<std::uint64_t, Bucket> buckets_;
};

// What a request asks for, judged against the session and the head (the next sequence number the
// egress will send: everything below it has been sent). Pure logic.
enum class Verdict : std::uint8_t { Serve, WrongSession, ZeroCount, BeyondHead };
struct RequestPlan {
    Verdict verdict = Verdict::Serve;
    std::uint64_t firstOffset = 0;  // Serve: the stream offsets [firstOffset, firstOffset + count)
    std::uint64_t count = 0;        // clamped to the head and to maxCount
};
RequestPlan planRequest(const Request& r, const Session& session, std::uint64_t headSeq, std::uint32_t maxCount) noexcept;

struct EgressCounters {
    std::atomic<std::uint64_t> packets{0}, messages{0}, bytes{0}, heartbeats{0}, endOfSession{0}, sendErrors{0};
    std::atomic<std::uint64_t> lostMessages{0};  // sequence numbers the stream reported lost (never sent)
    std::atomic<std::uint64_t> requests{0}, responses{0}, resentMessages{0};
    std::atomic<std::uint64_t> refusedMalformed{0}, refusedSession{0}, refusedZeroCount{0}, refusedBeyondHead{0};
    std::atomic<std::uint64_t> refusedRateLimited{0}, refusedBusy{0}, unserved{0};
};

struct EgressOptions {
    Session session;
    std::string downstream;          // multicast group:port the packets go to
    std::string interface = "127.0.0.1";
    int ttl = 1;
    bool loopback = true;
    std::size_t packetBytes = 1400;  // largest downstream packet (UDP payload)
    std::uint64_t heartbeatNs = 1'000'000'000;
    std::uint64_t endOfSessionNs = 5'000'000'000;  // how long end-of-session packets keep going
};

// The multicast half: feed it what a seqcast::Subscriber delivers.
class Egress {
public:
    // Throws SetupError naming the option at fault.
    Egress(const EgressOptions& o, EgressCounters& counters);
    ~Egress();
    Egress(const Egress&) = delete;
    Egress& operator=(const Egress&) = delete;

    void onMessage(const Message& m);
    void onLoss(const Loss& l);
    // The stream's position is known (before the first message): start numbering at nextOffset + 1.
    void started(std::uint64_t nextOffset);
    // Sends the packet being filled, then a heartbeat when nothing went out for heartbeatNs.
    int doWork(std::uint64_t nowNs);
    // The stream ended: from now on end-of-session packets replace heartbeats; true once they have
    // gone out for endOfSessionNs.
    bool endSession(std::uint64_t nowNs);
    // Non-empty: the egress cannot go on (a fragmented message, a send that cannot succeed).
    const std::string& failure() const noexcept { return failure_; }
    // The next sequence number to be sent (every one below was sent or reported lost); 0 until known.
    const std::atomic<std::uint64_t>& head() const noexcept { return head_; }

private:
    void flush(std::uint64_t nowNs);
    void sendPacket(std::size_t length, std::uint64_t nowNs);

    EgressOptions o_;
    EgressCounters& c_;
    int fd_ = -1;
    sockaddr_in dest_{};
    std::vector<std::byte> buf_;
    PacketWriter writer_;
    std::atomic<std::uint64_t> head_{0};
    std::uint64_t nextSeq_ = 0;  // 0: not known yet
    std::uint64_t lastSendNs_ = 0;
    std::uint64_t eosStartNs_ = 0;
    bool packetOpen_ = false;
    std::string failure_;
};

struct RequestServerOptions {
    Session session;
    std::string listen;                  // HOST:PORT requests arrive at
    ReplayOptions replay;                // the archive: stream, archiver address, network
    std::size_t packetBytes = 1400;      // largest response packet
    std::uint32_t maxCount = 1024;       // most messages one request may ask for (more: clamped)
    double ratePerRequester = 1000;      // requests per second one requester may send
    double burstPerRequester = 100;
    std::uint32_t maxPending = 8;        // requests being served at once (each a replay session)
    std::uint64_t replayTimeoutNs = 2'000'000'000;
};

// Answers re-requests: one downstream packet from the archive, unicast to the requester. Requests
// beyond the head are refused (the spec's server never sends what the feed has not sent); a
// request before the archive's retention, or one the archive cannot serve, is answered with
// nothing and counted as unserved. Every refusal is counted.
class RequestServer {
public:
    RequestServer(const RequestServerOptions& o, const std::atomic<std::uint64_t>& head, EgressCounters& counters);
    ~RequestServer();
    RequestServer(const RequestServer&) = delete;
    RequestServer& operator=(const RequestServer&) = delete;
    int doWork(std::uint64_t nowNs);
    void wait(std::uint32_t maxUs);  // a request, a replay's datagram, or maxUs
    std::string address() const;     // HOST:PORT as bound

private:
    struct Pending;
    void onRequest(std::span<const std::byte> bytes, const sockaddr_in& from, std::uint64_t nowNs);
    void finish(Pending& p);

    RequestServerOptions o_;
    const std::atomic<std::uint64_t>& head_;
    EgressCounters& c_;
    int fd_ = -1;
    RequestLimiter limiter_;
    std::deque<std::unique_ptr<Pending>> pending_;
    std::vector<std::byte> rx_;
};

}  // namespace seqcast::gateway::mold
