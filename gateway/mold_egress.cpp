#include "gateway/mold_egress.h"

#include <arpa/inet.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>

#include "fabric/clock.h"
#include "gateway/net.h"
#include "transport/transport.h"

namespace seqcast::gateway::mold {

namespace {

std::uint64_t requesterKey(const sockaddr_in& a) noexcept {
    return (std::uint64_t{ntohl(a.sin_addr.s_addr)} << 16) | ntohs(a.sin_port);
}

}  // namespace

bool RequestLimiter::admit(std::uint64_t key, std::uint64_t nowNs) {
    auto it = buckets_.find(key);
    if (it == buckets_.end()) {
        if (buckets_.size() >= max_) {
            // Forget the requester idle longest (a full bucket again when it comes back).
            auto oldest = std::min_element(buckets_.begin(), buckets_.end(),
                                           [](const auto& a, const auto& b) { return a.second.lastNs < b.second.lastNs; });
            buckets_.erase(oldest);
        }
        it = buckets_.emplace(key, Bucket{burst_, nowNs}).first;
    }
    Bucket& b = it->second;
    if (nowNs > b.lastNs) b.tokens = std::min(burst_, b.tokens + static_cast<double>(nowNs - b.lastNs) * 1e-9 * rate_);
    b.lastNs = std::max(b.lastNs, nowNs);
    if (b.tokens < 1.0) return false;
    b.tokens -= 1.0;
    return true;
}

RequestPlan planRequest(const Request& r, const Session& session, std::uint64_t headSeq, std::uint32_t maxCount) noexcept {
    RequestPlan p;
    if (!(r.session == session)) {
        p.verdict = Verdict::WrongSession;
    } else if (r.count == 0 || r.seq == 0) {
        p.verdict = Verdict::ZeroCount;  // sequence numbers start at 1: 0 names no message
    } else if (headSeq == 0 || r.seq >= headSeq) {
        p.verdict = Verdict::BeyondHead;
    } else {
        p.firstOffset = r.seq - 1;
        p.count = std::min<std::uint64_t>({r.count, maxCount, headSeq - r.seq});
    }
    return p;
}

// ---------------------------------------------------------------------------------------------

Egress::Egress(const EgressOptions& o, EgressCounters& counters)
    : o_(o), c_(counters), buf_(o.packetBytes), writer_(o.session, std::span<std::byte>(buf_)) {
    if (o.packetBytes < kHeaderLength + 2 || o.packetBytes > 65507)
        throw SetupError("packet-bytes", std::to_string(o.packetBytes) + " is not in 22..65507");
    const transport::Endpoint group = endpointOf("downstream", o.downstream, false);
    if (!group.multicast()) throw SetupError("downstream", group.str() + " is not a multicast address (224.0.0.0/4)");
    const std::uint32_t ifAddr = ipv4Of("interface", o.interface);
    dest_ = toSockaddr(group);
    fd_ = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd_ < 0) throw SetupError("downstream", sysError("socket"));
    in_addr ifa{};
    ifa.s_addr = htonl(ifAddr);
    const unsigned char ttl = static_cast<unsigned char>(o.ttl), loop = o.loopback ? 1 : 0;
    if (::setsockopt(fd_, IPPROTO_IP, IP_MULTICAST_IF, &ifa, sizeof ifa) != 0) {
        const std::string e = sysError("IP_MULTICAST_IF " + o.interface);
        ::close(fd_);
        throw SetupError("interface", e);
    }
    (void)::setsockopt(fd_, IPPROTO_IP, IP_MULTICAST_TTL, &ttl, sizeof ttl);
    (void)::setsockopt(fd_, IPPROTO_IP, IP_MULTICAST_LOOP, &loop, sizeof loop);
}

Egress::~Egress() {
    if (fd_ >= 0) ::close(fd_);
}

void Egress::started(std::uint64_t nextOffset) {
    if (nextSeq_ != 0) return;
    nextSeq_ = nextOffset + 1;
    head_.store(nextSeq_, std::memory_order_release);
}

void Egress::onMessage(const Message& m) {
    if (!failure_.empty()) return;
    const std::uint64_t seq = m.offset + 1;
    if (nextSeq_ == 0) nextSeq_ = seq;  // the first message tells where the stream starts
    if (seq != nextSeq_) {
        // Losses are reported before the messages after them, so a message whose offset runs past
        // the next one took several offsets: it came in fragments.
        failure_ = "the message at offset " + std::to_string(m.offset) + " (" + std::to_string(m.payload.size()) +
                   " bytes) took offsets " + std::to_string(nextSeq_ - 1) + ".." + std::to_string(m.offset) +
                   ": it was fragmented, and MoldUDP64 numbers one message per offset; publish messages that fit one "
                   "datagram (the publishers' --mtu)";
        return;
    }
    if (m.payload.size() > writer_.maxMessage()) {
        failure_ = "the message at offset " + std::to_string(m.offset) + " holds " + std::to_string(m.payload.size()) +
                   " bytes, more than a MoldUDP64 packet of " + std::to_string(o_.packetBytes) + " bytes carries";
        return;
    }
    if (packetOpen_ && !writer_.append(m.payload)) flush(monoNs());
    if (!packetOpen_) {
        writer_.begin(seq);
        packetOpen_ = true;
        (void)writer_.append(m.payload);  // fits: an empty packet takes maxMessage()
    }
    ++nextSeq_;
}

void Egress::onLoss(const Loss& l) {
    if (!failure_.empty()) return;
    if (nextSeq_ == 0) nextSeq_ = l.first + 1;
    // The lost numbers are never sent: the packet being filled ends before them.
    if (packetOpen_) flush(monoNs());
    const std::uint64_t end = l.first + l.count + 1;
    if (end > nextSeq_) {
        c_.lostMessages.fetch_add(end - std::max(nextSeq_, l.first + 1), std::memory_order_relaxed);
        nextSeq_ = end;
    }
    head_.store(nextSeq_, std::memory_order_release);
}

void Egress::flush(std::uint64_t nowNs) {
    if (!packetOpen_) return;
    const std::uint16_t n = writer_.count();
    const std::size_t len = writer_.finish();
    packetOpen_ = false;
    c_.messages.fetch_add(n, std::memory_order_relaxed);
    sendPacket(len, nowNs);
    c_.packets.fetch_add(1, std::memory_order_relaxed);
    head_.store(writer_.firstSequence() + n, std::memory_order_release);
}

void Egress::sendPacket(std::size_t length, std::uint64_t nowNs) {
    lastSendNs_ = nowNs;
    for (int attempt = 0; attempt < 100; ++attempt) {
        if (::sendto(fd_, buf_.data(), length, 0, reinterpret_cast<const sockaddr*>(&dest_), sizeof dest_) ==
            static_cast<ssize_t>(length)) {
            c_.bytes.fetch_add(length, std::memory_order_relaxed);
            return;
        }
        if (errno != EAGAIN && errno != ENOBUFS && errno != EINTR) break;
    }
    // Consumers repair what did not leave through the request server; counted, not fatal.
    c_.sendErrors.fetch_add(1, std::memory_order_relaxed);
}

int Egress::doWork(std::uint64_t nowNs) {
    int work = 0;
    if (packetOpen_) {
        flush(nowNs);
        ++work;
    }
    if (nextSeq_ == 0) return work;
    const bool eos = eosStartNs_ != 0;
    // End of session: more often than heartbeats, so consumers learn it soon.
    const std::uint64_t interval = eos ? std::min<std::uint64_t>(o_.heartbeatNs, 250'000'000) : o_.heartbeatNs;
    if (nowNs - lastSendNs_ >= interval) {
        const std::size_t len = eos ? encodeEndOfSession(buf_, o_.session, nextSeq_) : encodeHeartbeat(buf_, o_.session, nextSeq_);
        sendPacket(len, nowNs);
        (eos ? c_.endOfSession : c_.heartbeats).fetch_add(1, std::memory_order_relaxed);
        ++work;
    }
    return work;
}

bool Egress::endSession(std::uint64_t nowNs) {
    if (eosStartNs_ == 0) {
        flush(nowNs);
        eosStartNs_ = nowNs;
        lastSendNs_ = 0;  // the first end-of-session packet goes at once
    }
    return nowNs - eosStartNs_ >= o_.endOfSessionNs;
}

// ---------------------------------------------------------------------------------------------

struct RequestServer::Pending {
    sockaddr_in to{};
    std::uint64_t next = 0;  // the next offset expected
    std::uint64_t end = 0;
    std::uint64_t deadlineNs = 0;
    std::unique_ptr<Replay> replay;
    std::vector<std::byte> buf;
    PacketWriter writer;
    bool done = false;
    bool timedOut = false;
    Pending(const Session& s, std::size_t bytes) : buf(bytes), writer(s, std::span<std::byte>(buf)) {}
};

RequestServer::RequestServer(const RequestServerOptions& o, const std::atomic<std::uint64_t>& head, EgressCounters& counters)
    : o_(o), head_(head), c_(counters), limiter_(o.ratePerRequester, o.burstPerRequester), rx_(2048) {
    if (o.maxPending < 1 || o.maxPending > 64) throw SetupError("max-pending-requests", std::to_string(o.maxPending) + " is not in 1..64");
    if (o.maxCount < 1) throw SetupError("max-request-count", "must be at least 1");
    if (!(o.ratePerRequester > 0) || !(o.burstPerRequester >= 1))
        throw SetupError("request-rate", "the rate must be above 0 and the burst at least 1");
    const transport::Endpoint at = endpointOf("requests", o.listen, true);
    if (at.multicast()) throw SetupError("requests", at.str() + " is a multicast address: requests arrive at a unicast one");
    fd_ = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd_ < 0) throw SetupError("requests", sysError("socket"));
    // Room for a burst of requests while this thread waits for a CPU (a flood must reach the rate
    // limiter to be refused and counted, not vanish in the kernel): 4 MiB, past net.core.rmem_max
    // where the process may (CAP_NET_ADMIN), else as much as the system allows.
    const int want = 4 << 20;
    if (::setsockopt(fd_, SOL_SOCKET, SO_RCVBUFFORCE, &want, sizeof want) != 0)
        (void)::setsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &want, sizeof want);
    const sockaddr_in a = toSockaddr(at);
    if (::bind(fd_, reinterpret_cast<const sockaddr*>(&a), sizeof a) != 0) {
        const std::string e = sysError("bind " + at.str());
        ::close(fd_);
        throw SetupError("requests", e);
    }
}

RequestServer::~RequestServer() {
    if (fd_ >= 0) ::close(fd_);
}

std::string RequestServer::address() const {
    sockaddr_in a{};
    socklen_t len = sizeof a;
    if (::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len) != 0) return "?";
    return transport::Endpoint{ntohl(a.sin_addr.s_addr), ntohs(a.sin_port)}.str();
}

void RequestServer::onRequest(std::span<const std::byte> bytes, const sockaddr_in& from, std::uint64_t nowNs) {
    c_.requests.fetch_add(1, std::memory_order_relaxed);
    auto r = decodeRequest(bytes);
    if (!r) {
        c_.refusedMalformed.fetch_add(1, std::memory_order_relaxed);
        return;
    }
    const RequestPlan plan = planRequest(*r, o_.session, head_.load(std::memory_order_acquire), o_.maxCount);
    switch (plan.verdict) {
        case Verdict::WrongSession: c_.refusedSession.fetch_add(1, std::memory_order_relaxed); return;
        case Verdict::ZeroCount: c_.refusedZeroCount.fetch_add(1, std::memory_order_relaxed); return;
        case Verdict::BeyondHead: c_.refusedBeyondHead.fetch_add(1, std::memory_order_relaxed); return;
        case Verdict::Serve: break;
    }
    if (!limiter_.admit(requesterKey(from), nowNs)) {
        c_.refusedRateLimited.fetch_add(1, std::memory_order_relaxed);
        return;
    }
    if (pending_.size() >= o_.maxPending) {
        c_.refusedBusy.fetch_add(1, std::memory_order_relaxed);  // the requester asks again
        return;
    }
    auto p = std::make_unique<Pending>(o_.session, o_.packetBytes);
    p->to = from;
    p->next = plan.firstOffset;
    // No more than one packet can carry (a message block is 2 bytes at least); the replay is
    // cancelled (~Replay) once the packet is full anyway.
    p->end = plan.firstOffset + std::min<std::uint64_t>(plan.count, (o_.packetBytes - kHeaderLength) / 2);
    p->deadlineNs = nowNs + o_.replayTimeoutNs;
    p->writer.begin(plan.firstOffset + 1);
    ReplayOptions ro = o_.replay;
    ro.from = plan.firstOffset;
    ro.to = p->end;
    ro.earliest = false;
    ro.speed = 0;
    ro.waitForData = true;  // below the head, so on its way to the archive if not there yet
    try {
        p->replay = Replay::create(ro);
    } catch (const SetupError&) {
        c_.unserved.fetch_add(1, std::memory_order_relaxed);
        return;
    }
    pending_.push_back(std::move(p));
}

void RequestServer::finish(Pending& p) {
    if (p.writer.count() == 0) {
        const std::uint64_t n = c_.unserved.fetch_add(1, std::memory_order_relaxed);
        // The first few, then one in a thousand: why the archive had nothing for it.
        if (n < 5 || n % 1000 == 0)
            std::fprintf(stderr, "seqcast mold-egress: re-request for sequence numbers %llu..%llu unserved: %s\n",
                         static_cast<unsigned long long>(p.next + 1), static_cast<unsigned long long>(p.end),
                         p.replay->failure().empty() ? (p.timedOut ? "the archiver did not answer in time" : "the archive holds none of them")
                                                     : p.replay->failure().c_str());
        return;
    }
    const std::uint16_t n = p.writer.count();
    const std::size_t len = p.writer.finish();
    if (::sendto(fd_, p.buf.data(), len, 0, reinterpret_cast<const sockaddr*>(&p.to), sizeof p.to) == static_cast<ssize_t>(len)) {
        c_.responses.fetch_add(1, std::memory_order_relaxed);
        c_.resentMessages.fetch_add(n, std::memory_order_relaxed);
    } else {
        c_.sendErrors.fetch_add(1, std::memory_order_relaxed);
    }
}

int RequestServer::doWork(std::uint64_t nowNs) {
    int work = 0;
    for (int i = 0; i < 64; ++i) {
        sockaddr_in from{};
        socklen_t flen = sizeof from;
        const ssize_t n = ::recvfrom(fd_, rx_.data(), rx_.size(), MSG_TRUNC, reinterpret_cast<sockaddr*>(&from), &flen);
        if (n < 0) break;
        ++work;
        const std::size_t len = std::min(static_cast<std::size_t>(n), rx_.size());
        if (static_cast<std::size_t>(n) > rx_.size()) {
            c_.requests.fetch_add(1, std::memory_order_relaxed);
            c_.refusedMalformed.fetch_add(1, std::memory_order_relaxed);
            continue;
        }
        onRequest(std::span<const std::byte>(rx_.data(), len), from, nowNs);
    }
    for (auto& pp : pending_) {
        Pending& p = *pp;
        work += p.replay->poll(
            [&p](const Message& m) {
                if (p.done) return;
                if (m.offset != p.next || !p.writer.append(m.payload)) {
                    p.done = true;  // a fragmented message (never numbered) or a full packet: send what is here
                    return;
                }
                if (++p.next == p.end) p.done = true;
            },
            [&p](const Loss&) { p.done = true; });
        if (nowNs >= p.deadlineNs) p.timedOut = true;
        if (p.replay->finished() || !p.replay->failure().empty() || p.timedOut) p.done = true;
    }
    for (auto it = pending_.begin(); it != pending_.end();) {
        if ((*it)->done) {
            finish(**it);
            it = pending_.erase(it);
            ++work;
        } else {
            ++it;
        }
    }
    return work;
}

void RequestServer::wait(std::uint32_t maxUs) {
    if (!pending_.empty()) {
        // A replay is in flight: its datagrams wake us; a request waits at most 200 us meanwhile.
        pending_.front()->replay->wait(std::min<std::uint32_t>(maxUs, 200));
        return;
    }
    pollfd pf{fd_, POLLIN, 0};
    (void)::poll(&pf, 1, static_cast<int>((maxUs + 999) / 1000));
}

}  // namespace seqcast::gateway::mold
