// SoupBinTCP server: serves a seqcast stream to SoupBinTCP clients. A client logs in with a
// username and password (from the users file) at a sequence number; what it asks for behind the
// live stream is replayed from the archive (seqcast::Replay), then it follows the live stream
// (one seqcast::Subscriber for every client) as Sequenced Data, with server heartbeats, its own
// heartbeats checked against a timeout, logout, and End of Session when the stream ends.
//
// Sequence numbers are the mold-egress's: offset + 1, the same on every server and after a restart
// (so a message never takes two offsets: a fragmented message stops the server, named).
//
// One thread, one epoll set over the listening socket, every client, the subscriber's and the
// replays' sockets: no thread per client. A client's unsent bytes are bounded (clientBufferBytes):
// a live client that falls that far behind is disconnected (counted) and never slows the stream or
// the other clients; a replaying client is simply fed as fast as it reads.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include <seqcast/seqcast.hpp>

#include "gateway/soupbintcp.h"

namespace seqcast::gateway::soup {

struct ServerCounters {
    std::uint64_t connections = 0, refusedFull = 0;
    std::uint64_t loginsAccepted = 0, rejectedAuth = 0, rejectedSession = 0, loginMalformed = 0, loginTimeouts = 0;
    std::uint64_t rejectedNotReady = 0;  // logins before the stream was heard ('S': try again)
    std::uint64_t sequenceClamped = 0;  // logins asking past the next message: accepted at the next
    std::uint64_t logouts = 0, clientClosed = 0, clientTimeouts = 0, protocolErrors = 0;
    std::uint64_t slowDisconnects = 0, lossDisconnects = 0, replaysStarted = 0, replayFailures = 0;
    std::uint64_t messagesSent = 0, bytesSent = 0, heartbeatsSent = 0, endOfSessionSent = 0, unsequencedIgnored = 0;
    std::uint64_t streamLost = 0;  // offsets the live subscriber reported lost
};

struct ServerOptions {
    std::string listen = "127.0.0.1:0";  // HOST:PORT
    std::string session;                 // the SoupBinTCP session name (1..10 printable characters)
    Users users;
    SubscriberOptions live;              // the stream (start: latest)
    ReplayOptions replay;                // the archive; archiver empty: only live logins are served
    std::uint64_t heartbeatNs = 1'000'000'000;
    std::uint64_t clientTimeoutNs = 15'000'000'000;
    std::uint64_t loginTimeoutNs = 10'000'000'000;
    std::size_t clientBufferBytes = 16u << 20;  // unsent bytes a live client may have (more: disconnected)
    std::size_t sendBufferBytes = 0;             // SO_SNDBUF of client sockets (0: the kernel's)
    std::uint32_t maxClients = 1000;
    std::uint32_t maxReplays = 32;       // clients catching up from the archive at once (more wait)
};

class Server {
public:
    // Throws SetupError naming the option at fault.
    Server(const ServerOptions& o, ServerCounters& counters);
    ~Server();
    Server(const Server&) = delete;
    Server& operator=(const Server&) = delete;

    int doWork(std::uint64_t nowNs);
    void wait(std::uint32_t maxUs);
    std::string address() const;  // HOST:PORT as bound
    // The stream ended: every client gets End of Session after its last message, then is closed.
    bool streamEnded() const noexcept;
    std::size_t clients() const noexcept { return clients_.size(); }
    std::uint64_t nextSequence() const noexcept { return liveNext_; }  // 0: not known yet
    // Non-empty: the server cannot go on (a fragmented message, one too large for SoupBinTCP).
    const std::string& failure() const noexcept { return failure_; }
    const Subscriber& subscriber() const noexcept { return *sub_; }

private:
    struct Client;
    void accept(std::uint64_t nowNs);
    void onReadable(Client& c, std::uint64_t nowNs);
    void onPacket(Client& c, char type, std::span<const std::byte> payload, std::uint64_t nowNs);
    void login(Client& c, std::span<const std::byte> payload, std::uint64_t nowNs);
    void startReplay(Client& c, std::uint64_t nowNs);
    void watchReplay(Client& c, bool on);
    int pollReplay(Client& c, std::uint64_t nowNs);
    void queueSequenced(Client& c, std::span<const std::byte> message);
    void queue(Client& c, char type, std::uint64_t nowNs);
    bool flush(Client& c);
    void close(Client& c, std::uint64_t& counter, const char* why);
    void watch(Client& c, bool wantWrite);
    void onLive(const Message& m);
    void onLiveLoss(const Loss& l);

    ServerOptions o_;
    ServerCounters& c_;
    std::unique_ptr<Subscriber> sub_;
    int listenFd_ = -1, epfd_ = -1;
    std::unordered_map<int, std::unique_ptr<Client>> clients_;
    std::vector<int> subFds_;
    std::uint64_t liveNext_ = 0;
    std::uint32_t replaying_ = 0;
    std::uint64_t lastSweepNs_ = 0;
    bool ended_ = false;
    std::vector<std::byte> rx_;
    std::string failure_;
    std::uint64_t now_ = 0;
};

}  // namespace seqcast::gateway::soup
