#include "gateway/soup_server.h"

#include <arpa/inet.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>

#include "fabric/clock.h"
#include "gateway/net.h"
#include "transport/transport.h"

namespace seqcast::gateway::soup {

namespace {

constexpr std::uint64_t kListenTag = 0, kClientTag = 1, kOtherTag = 2;
constexpr std::uint64_t kSweepNs = 10'000'000;
constexpr std::uint64_t kClosingNs = 2'000'000'000;  // after its last byte went out, a rejected or ended client has this long to close

std::uint64_t tag(std::uint64_t kind, int fd) { return (kind << 32) | static_cast<std::uint32_t>(fd); }

}  // namespace

struct Server::Client {
    enum class State { Login, Waiting, Replaying, Live, Closing };
    int fd = -1;
    State state = State::Login;
    std::string peer, user;
    Framer in;  // a packet of up to 65 534 bytes (unsequenced data is read and ignored)
    std::vector<std::byte> out;
    std::size_t outPos = 0;
    std::uint64_t next = 0;  // the sequence number of the next Sequenced Data packet
    std::unique_ptr<Replay> replay;
    std::uint64_t connectedNs = 0, lastRxNs = 0, lastTxNs = 0, closingSinceNs = 0;
    std::uint64_t lastDrainNs = 0;  // the last time its bytes moved (or there were none to move)
    bool wantWrite = false, dead = false, replayWatched = false, shutDown = false;
    std::size_t pending() const noexcept { return out.size() - outPos; }
};

Server::Server(const ServerOptions& o, ServerCounters& counters) : o_(o), c_(counters), rx_(64 * 1024) {
    if (o.session.empty() || o.session.size() > kSessionLength || o.session.find(' ') != std::string::npos)
        throw SetupError("session", "a SoupBinTCP session is 1..10 characters without spaces");
    if (o.users.byName.empty()) throw SetupError("users", "no user can log in");
    if (o.clientBufferBytes < 64 * 1024) throw SetupError("client-buffer", "at least 64 KiB");
    if (o.maxClients < 1 || o.maxReplays < 1) throw SetupError("max-clients", "at least 1 client and 1 replay");
    auto at = transport::parseEndpoint(o.listen, true);
    if (!at) throw SetupError("listen", at.error().message());
    if (at->multicast()) throw SetupError("listen", at->str() + " is a multicast address");
    epfd_ = ::epoll_create1(EPOLL_CLOEXEC);
    if (epfd_ < 0) throw SetupError("listen", sysError("epoll_create1"));
    listenFd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (listenFd_ < 0) {
        const std::string e = sysError("socket");
        ::close(epfd_);
        throw SetupError("listen", e);
    }
    const int one = 1;
    (void)::setsockopt(listenFd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(at->addr);
    a.sin_port = htons(at->port);
    if (::bind(listenFd_, reinterpret_cast<const sockaddr*>(&a), sizeof a) != 0 || ::listen(listenFd_, 1024) != 0) {
        const std::string e = sysError("listen on " + at->str());
        ::close(listenFd_);
        ::close(epfd_);
        throw SetupError("listen", e);
    }
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = tag(kListenTag, listenFd_);
    (void)::epoll_ctl(epfd_, EPOLL_CTL_ADD, listenFd_, &ev);
    try {
        sub_ = Subscriber::create(o.live);
    } catch (...) {
        ::close(listenFd_);
        ::close(epfd_);
        throw;
    }
    subFds_ = sub_->waitSet(0).fds;
    for (int fd : subFds_) {
        ev.events = EPOLLIN;
        ev.data.u64 = tag(kOtherTag, fd);
        (void)::epoll_ctl(epfd_, EPOLL_CTL_ADD, fd, &ev);
    }
}

Server::~Server() {
    for (auto& [fd, c] : clients_)
        if (!c->dead) ::close(fd);
    clients_.clear();  // replays cancelled
    if (listenFd_ >= 0) ::close(listenFd_);
    if (epfd_ >= 0) ::close(epfd_);
}

std::string Server::address() const {
    sockaddr_in a{};
    socklen_t len = sizeof a;
    if (::getsockname(listenFd_, reinterpret_cast<sockaddr*>(&a), &len) != 0) return "?";
    return transport::Endpoint{ntohl(a.sin_addr.s_addr), ntohs(a.sin_port)}.str();
}

bool Server::streamEnded() const noexcept { return ended_; }

void Server::accept(std::uint64_t nowNs) {
    for (int i = 0; i < 64; ++i) {
        sockaddr_in a{};
        socklen_t len = sizeof a;
        const int fd = ::accept4(listenFd_, reinterpret_cast<sockaddr*>(&a), &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) return;
        ++c_.connections;
        if (clients_.size() >= o_.maxClients) {
            ++c_.refusedFull;
            ::close(fd);
            continue;
        }
        const int one = 1;
        (void)::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        auto c = std::make_unique<Client>();
        c->fd = fd;
        c->peer = transport::Endpoint{ntohl(a.sin_addr.s_addr), ntohs(a.sin_port)}.str();
        c->connectedNs = c->lastRxNs = c->lastTxNs = c->lastDrainNs = nowNs;
        epoll_event ev{};
        ev.events = EPOLLIN;
        ev.data.u64 = tag(kClientTag, fd);
        if (::epoll_ctl(epfd_, EPOLL_CTL_ADD, fd, &ev) != 0) {
            ::close(fd);
            continue;
        }
        if (o_.sendBufferBytes) {
            const int sb = static_cast<int>(std::min<std::size_t>(o_.sendBufferBytes, 1u << 30));
            (void)::setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sb, sizeof sb);
        }
        clients_.erase(fd);  // a closed client's entry that still waits for the sweep
        clients_.emplace(fd, std::move(c));
    }
}

void Server::watch(Client& c, bool wantWrite) {
    if (c.wantWrite == wantWrite || c.dead) return;
    c.wantWrite = wantWrite;
    epoll_event ev{};
    ev.events = EPOLLIN | (wantWrite ? EPOLLOUT : 0u);
    ev.data.u64 = tag(kClientTag, c.fd);
    (void)::epoll_ctl(epfd_, EPOLL_CTL_MOD, c.fd, &ev);
}

void Server::close(Client& c, std::uint64_t& counter, const char* why) {
    if (c.dead) return;
    ++counter;
    if (why) {
        // The first few of each run, then one in a thousand: what happened to whom.
        static std::uint64_t shown = 0;
        if (shown < 20 || shown % 1000 == 0)
            std::fprintf(stderr, "seqcast soup-server: %s%s%s: %s\n", c.peer.c_str(), c.user.empty() ? "" : " user ", c.user.c_str(), why);
        ++shown;
    }
    if (c.replay) {
        c.replay.reset();
        --replaying_;
    }
    c.dead = true;
    if (&counter == &c_.slowDisconnects || &counter == &c_.clientTimeouts) {
        // Abortive: a reset reaches the client at once (a FIN would queue behind the bytes it does
        // not read), and the kernel drops what is queued instead of keeping it for a dead reader.
        const linger l{1, 0};
        (void)::setsockopt(c.fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
    }
    ::close(c.fd);  // leaves the epoll set
}

void Server::queue(Client& c, char type, std::uint64_t nowNs) {
    if (c.pending() == 0) c.lastDrainNs = nowNs;
    appendPacket(c.out, type);
    c.lastTxNs = nowNs;
}

void Server::queueSequenced(Client& c, std::span<const std::byte> message) {
    if (c.pending() == 0) c.lastDrainNs = now_;
    appendPacket(c.out, 'S', message);
    ++c.next;
    ++c_.messagesSent;
    c.lastTxNs = now_;
    if (c.state == Client::State::Live && c.pending() > o_.clientBufferBytes)
        close(c, c_.slowDisconnects, "a slow client: more unread bytes than --client-buffer; disconnected");
}

bool Server::flush(Client& c) {
    while (c.pending() > 0 && !c.dead) {
        const ssize_t n = ::send(c.fd, c.out.data() + c.outPos, c.pending(), MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n > 0) {
            c.lastDrainNs = now_;
            c.outPos += static_cast<std::size_t>(n);
            c_.bytesSent += static_cast<std::uint64_t>(n);
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            // What was sent leaves the buffer: it holds the unsent bytes only, never all ever queued.
            if (c.outPos >= 64 * 1024 && c.outPos >= c.out.size() / 2) {
                c.out.erase(c.out.begin(), c.out.begin() + static_cast<std::ptrdiff_t>(c.outPos));
                c.outPos = 0;
            }
            watch(c, true);
            return false;
        }
        if (n < 0 && errno == EINTR) continue;
        close(c, c_.clientClosed, nullptr);  // the peer went away
        return false;
    }
    if (c.dead) return false;
    c.lastDrainNs = now_;
    c.out.clear();
    c.outPos = 0;
    watch(c, false);
    if (c.state == Client::State::Closing && !c.shutDown) {
        // Its last packet (Login Rejected, End of Session) is out: a FIN follows it. The socket is
        // closed when the client closes its side (or after kClosingNs): closing now, with a client
        // heartbeat unread, would send a reset that can destroy that last packet in flight.
        (void)::shutdown(c.fd, SHUT_WR);
        c.shutDown = true;
        c.closingSinceNs = now_;
    }
    return true;
}

void Server::onReadable(Client& c, std::uint64_t nowNs) {
    for (int i = 0; i < 16 && !c.dead; ++i) {
        const ssize_t n = ::recv(c.fd, rx_.data(), rx_.size(), MSG_DONTWAIT);
        if (n == 0) {
            close(c, c_.clientClosed, nullptr);
            return;
        }
        if (n < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) return;
            close(c, c_.clientClosed, nullptr);
            return;
        }
        c.lastRxNs = nowNs;
        if (c.state == Client::State::Closing) continue;  // read and dropped until the client closes
        c.in.feed(std::span<const std::byte>(rx_.data(), static_cast<std::size_t>(n)));
        Framer::Packet p;
        while (!c.dead && c.in.next(p)) onPacket(c, p.type, p.payload, nowNs);
        if (!c.in.error().empty()) {
            const std::string why = "protocol error: " + c.in.error();
            close(c, c_.protocolErrors, why.c_str());
            return;
        }
    }
}

void Server::onPacket(Client& c, char type, std::span<const std::byte> payload, std::uint64_t nowNs) {
    if (type == '+') return;  // Debug: either side may send it at any time; ignored
    if (c.state == Client::State::Closing) return;
    if (c.state == Client::State::Login) {
        if (type != 'L') {
            const std::string why = std::string("protocol error: a '") + type + "' packet before the login";
            close(c, c_.protocolErrors, why.c_str());
            return;
        }
        login(c, payload, nowNs);
        return;
    }
    switch (type) {
        case 'R': return;  // a client heartbeat: lastRxNs is all it does
        case 'O':
            close(c, c_.logouts, nullptr);
            return;
        case 'U': ++c_.unsequencedIgnored; return;  // this server takes no data from clients
        default: {
            const std::string why = std::string("protocol error: a '") + type + "' packet after the login";
            close(c, c_.protocolErrors, why.c_str());
        }
    }
}

void Server::login(Client& c, std::span<const std::byte> payload, std::uint64_t nowNs) {
    auto r = parseLogin(payload);
    if (!r) {
        const std::string why = "malformed login: " + r.error().message();
        close(c, c_.loginMalformed, why.c_str());
        return;
    }
    c.user = r->username;
    auto reject = [&](char reason, std::uint64_t& counter, const std::string& why) {
        ++counter;
        std::fprintf(stderr, "seqcast soup-server: %s user %s: login rejected (%c): %s\n", c.peer.c_str(), c.user.c_str(), reason, why.c_str());
        appendLoginRejected(c.out, reason);
        c.state = Client::State::Closing;
        c.closingSinceNs = nowNs;
    };
    if (!o_.users.check(r->username, r->password)) return reject('A', c_.rejectedAuth, "wrong username or password");
    if (!r->session.empty() && r->session != o_.session)
        return reject('S', c_.rejectedSession, "session '" + r->session + "' asked for; this server serves '" + o_.session + "'");
    if (liveNext_ == 0) return reject('S', c_.rejectedNotReady, "the stream has not been heard yet; try again");
    std::uint64_t seq = r->sequence == 0 ? liveNext_ : r->sequence;
    if (seq > liveNext_) {
        ++c_.sequenceClamped;  // the spec's answer: the login accepted names the next one
        seq = liveNext_;
    }
    if (seq < liveNext_ && o_.replay.archiver.empty())
        return reject('S', c_.rejectedSession, "sequence number " + std::to_string(seq) + " is behind the live stream and no --archiver is set");
    ++c_.loginsAccepted;
    appendLoginAccepted(c.out, o_.session, seq);
    c.lastTxNs = nowNs;
    c.next = seq;
    c.state = seq == liveNext_ ? Client::State::Live : Client::State::Waiting;
    if (ended_ && c.state == Client::State::Live) {
        queue(c, 'Z', nowNs);
        ++c_.endOfSessionSent;
        c.state = Client::State::Closing;
        c.closingSinceNs = nowNs;
    }
}

void Server::startReplay(Client& c, std::uint64_t nowNs) {
    ReplayOptions ro = o_.replay;
    ro.from = c.next - 1;
    ro.to = ~std::uint64_t{0};
    ro.earliest = false;
    ro.speed = 0;
    ro.waitForData = true;  // behind the live stream, so recorded or about to be
    try {
        c.replay = Replay::create(ro);
    } catch (const SetupError& e) {
        const std::string why = std::string("cannot replay from the archive: ") + e.what();
        close(c, c_.replayFailures, why.c_str());
        return;
    }
    ++replaying_;
    ++c_.replaysStarted;
    c.state = Client::State::Replaying;
    watchReplay(c, true);
    (void)nowNs;
}

void Server::watchReplay(Client& c, bool on) {
    // Off while the client's bytes wait to be read: the replay's socket is not drained then, and a
    // readable socket in a level-triggered set would wake the loop for nothing.
    if (!c.replay || c.replayWatched == on) return;
    c.replayWatched = on;
    for (int fd : c.replay->waitSet(0).fds) {
        epoll_event ev{};
        ev.events = EPOLLIN;
        ev.data.u64 = tag(kOtherTag, fd);
        (void)::epoll_ctl(epfd_, on ? EPOLL_CTL_ADD : EPOLL_CTL_DEL, fd, &ev);
    }
}

int Server::pollReplay(Client& c, std::uint64_t nowNs) {
    if (c.pending() > o_.clientBufferBytes / 2) {  // fed as fast as it reads
        watchReplay(c, false);
        return 0;
    }
    watchReplay(c, true);
    std::string bad;
    const int work = c.replay->poll(
        [&](const Message& m) {
            if (!bad.empty() || c.state != Client::State::Replaying) return;
            // Caught up: the live stream delivers this one and the rest (the switch is below). The
            // archive may be ahead of the live subscriber (which may be waiting for a repair).
            if (c.next >= liveNext_) return;
            const std::uint64_t seq = m.offset + 1;
            if (seq != c.next) {
                bad = "the archive's offset " + std::to_string(m.offset) + " came where sequence number " + std::to_string(c.next) +
                      " was due (a fragmented message, or a hole in the archive)";
                return;
            }
            if (m.payload.size() > kMaxPayload) {
                bad = "the message at offset " + std::to_string(m.offset) + " is larger than a SoupBinTCP packet carries";
                return;
            }
            queueSequenced(c, m.payload);
        },
        [&](const Loss& l) {
            if (bad.empty())
                bad = "the archive lost offsets " + std::to_string(l.first) + ".." + std::to_string(l.first + l.count - 1) +
                      ": sequence numbers cannot be skipped";
        });
    if (c.dead) return work;
    if (!bad.empty()) {
        close(c, c_.replayFailures, bad.c_str());
        return work;
    }
    if (!c.replay->failure().empty()) {
        const std::string why = "replay: " + c.replay->failure();
        close(c, c_.replayFailures, why.c_str());
        return work;
    }
    if (c.next >= liveNext_) {  // caught up: from now on the live stream
        c.replay.reset();
        --replaying_;
        c.state = Client::State::Live;
        if (ended_) {
            queue(c, 'Z', nowNs);
            ++c_.endOfSessionSent;
            c.state = Client::State::Closing;
            c.closingSinceNs = nowNs;
        }
    }
    return work;
}

void Server::onLive(const Message& m) {
    const std::uint64_t seq = m.offset + 1;
    if (liveNext_ != 0 && seq != liveNext_) {
        if (failure_.empty())
            failure_ = "the message at offset " + std::to_string(m.offset) + " took offsets " + std::to_string(liveNext_ - 1) + ".." +
                       std::to_string(m.offset) + ": it was fragmented, and SoupBinTCP numbers one message per offset";
        return;
    }
    if (m.payload.size() > kMaxPayload) {
        if (failure_.empty())
            failure_ = "the message at offset " + std::to_string(m.offset) + " holds " + std::to_string(m.payload.size()) +
                       " bytes, more than a SoupBinTCP packet carries (" + std::to_string(kMaxPayload) + ")";
        return;
    }
    liveNext_ = seq + 1;
    for (auto& [fd, cp] : clients_) {
        Client& c = *cp;
        if (c.dead || c.state != Client::State::Live) continue;
        if (c.next != seq) {
            close(c, c_.protocolErrors, "internal: a live client out of step with the stream");
            continue;
        }
        queueSequenced(c, m.payload);
    }
}

void Server::onLiveLoss(const Loss& l) {
    c_.streamLost += l.count;
    std::fprintf(stderr, "seqcast soup-server: LOSS offsets %llu..%llu: live clients are disconnected (sequence numbers cannot be skipped)\n",
                 static_cast<unsigned long long>(l.first), static_cast<unsigned long long>(l.first + l.count - 1));
    for (auto& [fd, cp] : clients_)
        if (!cp->dead && cp->state == Client::State::Live) close(*cp, c_.lossDisconnects, "the stream lost messages");
    liveNext_ = std::max(liveNext_, l.first + l.count + 1);
}

int Server::doWork(std::uint64_t nowNs) {
    now_ = nowNs;
    int work = 0;
    epoll_event ev[128];
    const int n = ::epoll_wait(epfd_, ev, 128, 0);
    for (int i = 0; i < n; ++i) {
        const std::uint64_t kind = ev[i].data.u64 >> 32;
        const int fd = static_cast<int>(ev[i].data.u64 & 0xFFFFFFFFu);
        if (kind == kListenTag) {
            accept(nowNs);
        } else if (kind == kClientTag) {
            auto it = clients_.find(fd);
            if (it == clients_.end() || it->second->dead) continue;
            if (ev[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) onReadable(*it->second, nowNs);
            if (!it->second->dead && (ev[i].events & EPOLLOUT)) (void)flush(*it->second);
        }
        ++work;
    }
    // Replays first: a client that catches up joins the live stream before its next message.
    for (auto& [fd, cp] : clients_) {
        Client& c = *cp;
        if (c.dead) continue;
        if (c.state == Client::State::Waiting && replaying_ < o_.maxReplays) startReplay(c, nowNs);
        if (!c.dead && c.state == Client::State::Replaying) work += pollReplay(c, nowNs);
    }
    work += sub_->poll([this](const Message& m) { onLive(m); }, [this](const Loss& l) { onLiveLoss(l); });
    if (liveNext_ == 0 && sub_->started()) liveNext_ = sub_->nextOffset() + 1;
    if (!ended_ && sub_->endOfStream()) ended_ = true;
    const bool sweep = nowNs - lastSweepNs_ >= kSweepNs;
    if (sweep) lastSweepNs_ = nowNs;
    for (auto& [fd, cp] : clients_) {
        Client& c = *cp;
        if (c.dead) continue;
        if (sweep) {
            if (c.state == Client::State::Login && nowNs - c.connectedNs > o_.loginTimeoutNs) {
                close(c, c_.loginTimeouts, "no login in time");
                continue;
            }
            // A closing client first reads what is queued for it (End of Session comes last),
            // as slowly as it likes while its bytes keep moving; then it has kClosingNs to close.
            if (c.state == Client::State::Closing && c.shutDown && nowNs - c.closingSinceNs > kClosingNs) {
                close(c, c_.clientClosed, nullptr);
                continue;
            }
            if (c.state == Client::State::Closing && !c.shutDown && c.pending() > 0 && nowNs - c.lastDrainNs > o_.clientTimeoutNs) {
                close(c, c_.slowDisconnects, "a slow client: read nothing within --client-timeout-ms; disconnected");
                continue;
            }
            if (c.state != Client::State::Login && c.state != Client::State::Closing) {
                if (nowNs - c.lastRxNs > o_.clientTimeoutNs) {
                    close(c, c_.clientTimeouts, "nothing from the client (not even a heartbeat) within --client-timeout-ms");
                    continue;
                }
                // A client catching up is fed only as fast as it reads, so its buffer never
                // overflows; one that reads nothing at all for the client timeout is as slow.
                if (c.pending() > 0 && nowNs - c.lastDrainNs > o_.clientTimeoutNs) {
                    close(c, c_.slowDisconnects, "a slow client: read nothing within --client-timeout-ms; disconnected");
                    continue;
                }
                if (ended_ && c.state == Client::State::Live) {
                    queue(c, 'Z', nowNs);
                    ++c_.endOfSessionSent;
                    c.state = Client::State::Closing;
                    c.closingSinceNs = nowNs;
                } else if (nowNs - c.lastTxNs >= o_.heartbeatNs) {
                    queue(c, 'H', nowNs);
                    ++c_.heartbeatsSent;
                }
            }
        }
        if (c.pending() > 0 && !c.wantWrite) {
            (void)flush(c);
            ++work;
        }
    }
    for (auto it = clients_.begin(); it != clients_.end();) {
        if (it->second->dead) it = clients_.erase(it);
        else ++it;
    }
    return work;
}

void Server::wait(std::uint32_t maxUs) {
    const WaitSet w = sub_->waitSet(maxUs);
    const std::uint64_t now = monoNs();
    std::uint64_t untilNs = w.untilNs;
    // The sweep (heartbeats, timeouts) runs every kSweepNs at least while there are clients.
    if (!clients_.empty()) untilNs = std::min(untilNs, lastSweepNs_ + kSweepNs);
    for (auto& [fd, cp] : clients_)
        if (cp->replay) untilNs = std::min(untilNs, cp->replay->waitSet(maxUs).untilNs);
    const int ms = untilNs <= now ? 0 : static_cast<int>(std::min<std::uint64_t>((untilNs - now + 999'999) / 1'000'000, maxUs / 1000 + 1));
    epoll_event ev[16];
    (void)::epoll_wait(epfd_, ev, 16, ms);  // level-triggered: doWork() takes what is ready
}

}  // namespace seqcast::gateway::soup
