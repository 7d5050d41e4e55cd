// MoldUDP64 ingress: joins an existing MoldUDP64 feed, puts its messages in sequence-number order,
// re-requests what is missing from the feed's request server, and publishes every message once,
// in feed order, into a seqcast stream (seqcast::Publisher), so the archiver records the feed and
// seqcast's replay, repair and tools serve it.
//
// Restart: with a publisher journal, the ingress keeps beside it (JOURNAL.mold) the feed session
// and the sequence number its publisher's message 1 had. Message k of the publisher is then feed
// sequence number base + k - 1, and a restarted ingress resumes at base + nextPubSeq - 1: whatever
// it offered before it died is resent from the journal (the sequencer drops what it already has),
// and whatever it had not offered is taken from the feed again (re-requested when the live feed
// has moved on). No message is published twice or skipped.
#pragma once

#include <netinet/in.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include <seqcast/seqcast.hpp>

#include "gateway/moldudp64.h"

namespace seqcast::gateway::mold {

struct TrackerOptions {
    std::uint64_t startSeq = 1;                 // the first sequence number wanted; 0: the first one seen
    // Messages held ahead of a gap (more: dropped, asked for again), each counted as its bytes plus
    // kHeldOverhead for its bookkeeping.
    std::size_t maxHeldBytes = 64u << 20;
    std::uint16_t maxRequestCount = 1000;       // most messages one request asks for
    std::uint32_t maxRequestsPerRound = 16;     // requests sent by one call of requests()
    double requestRate = 500;                   // requests per second at most ...
    double requestBurst = 50;                   // ... in bursts of at most this many
    std::uint64_t retryNs = 50'000'000;         // ask again for a gap still open after this long
    std::uint64_t deadlineNs = 10'000'000'000;  // a gap open this long with no progress: the ingress fails
};

struct TrackerCounters {
    std::uint64_t messages = 0;       // delivered, in order
    std::uint64_t duplicates = 0;     // already delivered or already held
    std::uint64_t heldDropped = 0;    // did not fit the held bytes (asked for again later)
    std::uint64_t beforeStart = 0;    // below startSeq (not wanted)
    std::uint64_t recovered = 0;      // delivered messages that came in a request's answer
    std::uint64_t gapMessages = 0;    // sequence numbers asked for the first time
    std::uint64_t requests = 0;       // request ranges produced (first time and again)
};

// Orders a feed by sequence number and says what to ask for. Pure logic: no I/O, no clock reads.
class FeedTracker {
public:
    static constexpr std::size_t kHeldOverhead = 64;
    // Takes the next message in order; false: it cannot be taken now (held, offered again by drain()).
    using Deliver = std::function<bool(std::uint64_t seq, std::span<const std::byte> message)>;
    struct Range {
        std::uint64_t seq;
        std::uint16_t count;
    };

    FeedTracker(const TrackerOptions& o, Deliver deliver) : o_(o), next_(o.startSeq), deliver_(std::move(deliver)) {}

    // A decoded packet of the feed's session; `answer`: it came from the request server.
    void onPacket(const Packet& p, bool answer, std::uint64_t nowNs);
    // Delivers held messages that are next in order. Returns how many.
    std::size_t drain(std::uint64_t nowNs);
    // The ranges to ask for now: new gaps at once, every open gap again after retryNs.
    void requests(std::uint64_t nowNs, std::vector<Range>& out);
    // Non-empty once the oldest gap has been open for deadlineNs with no progress: names it.
    std::string stalled(std::uint64_t nowNs) const;

    std::uint64_t next() const noexcept { return next_; }  // 0: not known yet (startSeq 0, nothing seen)
    std::uint64_t head() const noexcept { return head_; }  // one past the highest sequence number seen
    bool endOfSession() const noexcept { return eosSeq_ != 0; }
    std::uint64_t endOfSessionSeq() const noexcept { return eosSeq_; }
    // End of session seen and every message before it delivered.
    bool complete() const noexcept { return eosSeq_ != 0 && next_ != 0 && next_ >= eosSeq_; }
    std::size_t heldBytes() const noexcept { return heldBytes_; }
    std::size_t heldMessages() const noexcept { return held_.size(); }
    const TrackerCounters& counters() const noexcept { return c_; }

private:
    struct Held {
        std::vector<std::byte> bytes;
        bool answer;
    };
    void seen(std::uint64_t end, std::uint64_t nowNs);
    void advanced(std::uint64_t nowNs);
    void take(std::uint64_t seq, std::span<const std::byte> m, bool answer, std::uint64_t nowNs);

    TrackerOptions o_;
    std::uint64_t next_;
    std::uint64_t head_ = 0;
    std::uint64_t eosSeq_ = 0;
    Deliver deliver_;
    std::map<std::uint64_t, Held> held_;
    std::size_t heldBytes_ = 0;
    std::uint64_t requestedUpTo_ = 0;  // every number below was asked for at lastRoundNs_ or since
    std::uint64_t lastRoundNs_ = 0;
    bool stuck_ = false;               // `next_` is missing, since stuckSinceNs_
    std::uint64_t stuckSinceNs_ = 0;
    std::vector<std::uint64_t> urgent_;  // numbers right after an answer's
    double tokens_ = 0;                  // the request rate's bucket
    std::uint64_t lastRefillNs_ = 0;
    bool bucketStarted_ = false;
    TrackerCounters c_;
};

struct IngressCounters {
    std::uint64_t packets = 0, dataPackets = 0, heartbeats = 0, endOfSession = 0, answers = 0;
    std::uint64_t malformed = 0, foreignSession = 0, requestPackets = 0, sendErrors = 0;
    std::uint64_t strangers = 0;  // datagrams on the request socket not from the request server
    std::uint64_t confirmed = 0, backPressured = 0;
};

struct IngressOptions {
    std::optional<Session> session;  // none: the first session seen (or the journal's)
    std::string feed;                // the feed's multicast group:port
    std::string interface = "127.0.0.1";
    std::string requestServer;       // HOST:PORT of the feed's re-request server; empty: none
    std::size_t receiveBuffer = 8u << 20;
    TrackerOptions tracker;
    PublisherOptions publisher;      // the seqcast stream; journal: restart-safe (see above)
};

class Ingress {
public:
    // Throws SetupError naming the option at fault.
    explicit Ingress(const IngressOptions& o);
    ~Ingress();
    Ingress(const Ingress&) = delete;
    Ingress& operator=(const Ingress&) = delete;

    int doWork(std::uint64_t nowNs);
    void wait(std::uint32_t maxUs);  // a feed packet, an answer, or maxUs (at most 1 ms)
    // End of session, every message before it published and confirmed.
    bool finished() const noexcept;
    // Non-empty: the ingress cannot go on (a gap nobody fills, the publisher refused).
    const std::string& failure() const noexcept { return failure_; }
    const FeedTracker& tracker() const noexcept { return *tracker_; }
    const IngressCounters& counters() const noexcept { return c_; }
    const Publisher& publisher() const noexcept { return *pub_; }
    std::string session() const { return session_ ? session_->str() : std::string{}; }
    std::uint64_t resumedAt() const noexcept { return resumedAt_; }  // 0: a fresh start

private:
    void onDatagram(std::span<const std::byte> bytes, bool answer, std::uint64_t nowNs);
    bool positionKnown(std::uint64_t seq);
    int receive(int fd, bool answer, std::uint64_t nowNs);

    IngressOptions o_;
    IngressCounters c_;
    std::optional<Session> session_;
    std::unique_ptr<Publisher> pub_;
    std::unique_ptr<FeedTracker> tracker_;
    std::string statePath_;
    bool stateWritten_ = false;
    std::uint64_t resumedAt_ = 0;
    int feedFd_ = -1, reqFd_ = -1;
    sockaddr_in server_{};  // the request server
    std::vector<std::byte> rx_;
    std::vector<FeedTracker::Range> ranges_;
    std::vector<std::byte> reqBuf_;
    std::string failure_;
    bool sessionWarned_ = false;
};

// The ingress's feed state beside a journal: "seqcast-mold-ingress 1\nsession NAME\nbase N\n".
struct FeedState {
    Session session;
    std::uint64_t base = 0;  // the sequence number of the publisher's message 1
};
Result<std::optional<FeedState>> readFeedState(const std::string& path);  // nullopt: no file
Status writeFeedState(const std::string& path, const FeedState& s);   // atomic (rename), synced

}  // namespace seqcast::gateway::mold
