#include "perf/gateway_bench.h"

#include <arpa/inet.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <thread>
#include <vector>

#include <seqcast/seqcast.hpp>

#include "gateway/itch.h"
#include "gateway/mold_egress.h"
#include "gateway/moldudp64.h"
#include "gateway/soup_server.h"
#include "gateway/soupbintcp.h"
#include "perf/pipeline.h"

namespace seqcast::tools {

namespace {

std::string groupOf(const Net& n, int plus) {
    char b[48];
    std::snprintf(b, sizeof b, "%u.%u.%u.%u:%u", n.group >> 24, (n.group >> 16) & 255, (n.group >> 8) & 255, n.group & 255,
                  static_cast<unsigned>(n.port + plus));
    return b;
}

// The embedded sequencer and the publisher every gateway row shares; the state file is removed.
class Stream {
public:
    explicit Stream(Rng& rng) : net_(pickNet(rng)) {
        state_ = "/tmp/seqcast-bench-gw-" + std::to_string(::getpid()) + "-" + std::to_string(rng.next() % 1000000) + ".state";
        SequencerOptions so;
        so.control = "127.0.0.1:" + std::to_string(net_.port);
        so.group = groupOf(net_, 1);
        so.stateFile = state_;
        seq_ = Sequencer::create(so);
        seqThread_ = std::thread([this] {
            while (!stop_.load(std::memory_order_relaxed))
                if (seq_->doWork() == 0) seq_->wait(1000);
        });
    }
    ~Stream() {
        stop_ = true;
        pubStop_ = true;
        if (pubThread_.joinable()) pubThread_.join();
        seqThread_.join();
        seq_.reset();
        ::unlink(state_.c_str());
    }
    std::string group() const { return groupOf(net_, 1); }
    std::string control() const { return "127.0.0.1:" + std::to_string(net_.port); }

    // Offers `count` ITCH messages as fast as the window allows, from a thread of its own.
    void publish(std::uint64_t count) {
        startNs_ = monoNs();
        pubThread_ = std::thread([this, count] {
            PublisherOptions po;
            po.sequencer = control();
            auto pub = Publisher::create(po);
            gateway::itch::Generator gen(7);
            std::uint64_t offered = 0;
            while (!pubStop_.load(std::memory_order_relaxed) && (offered < count || pub->unconfirmed() > 0)) {
                int work = pub->doWork();
                while (offered < count) {
                    const auto m = gen.next(offered * 1000);
                    if (pub->offer(m) != OfferResult::Accepted) break;
                    ++offered;
                    ++work;
                }
                if (work == 0) pub->wait(200);
            }
            offered_.store(offered);
            pubDone_ = true;
        });
    }
    std::uint64_t startNs() const noexcept { return startNs_; }
    std::uint64_t offered() const noexcept { return offered_.load(); }
    // Up to 5 s more for the publisher to have everything confirmed, then it stops.
    void waitPublisher() {
        if (!pubThread_.joinable()) return;
        const std::uint64_t end = monoNs() + 5'000'000'000ull;
        while (!pubDone_.load() && monoNs() < end) std::this_thread::sleep_for(std::chrono::milliseconds(1));
        pubStop_ = true;
        pubThread_.join();
    }

private:
    Net net_;
    std::string state_;
    std::unique_ptr<Sequencer> seq_;
    std::atomic<bool> stop_{false}, pubStop_{false}, pubDone_{false};
    std::thread seqThread_, pubThread_;
    std::uint64_t startNs_ = 0;
    std::atomic<std::uint64_t> offered_{0};
};

// A consumer's progress, written by its thread.
struct Progress {
    std::atomic<std::uint64_t> delivered{0}, lastNs{0};
    std::atomic<bool> ready{false};
    void got(std::uint64_t n = 1) {
        delivered.fetch_add(n, std::memory_order_relaxed);
        lastNs.store(monoNs(), std::memory_order_relaxed);
    }
};

SubscriberOptions subscriberOf(const std::string& group, bool injectLoss) {
    SubscriberOptions so;
    so.group = group;
    if (injectLoss) {
        so.delivery = Delivery::AtMostOnce;
        so.network.faults.loss = 0.05;
    }
    return so;
}

// The plain subscriber: the baseline.
std::thread plainSubscriber(const std::string& group, Progress& p, std::atomic<bool>& stop, std::string& failure,
                            std::atomic<std::uint64_t>& lostTotal, bool injectLoss) {
    return std::thread([&, group, injectLoss] {
        auto sub = Subscriber::create(subscriberOf(group, injectLoss));
        std::uint64_t lost = 0;
        const MessageHandler onMsg = [&](const Message&) { p.got(); };
        const LossHandler onLoss = [&](const Loss& l) { lost += l.count; };
        while (!stop.load(std::memory_order_relaxed)) {
            const int w = sub->poll(onMsg, onLoss);
            if (sub->started()) p.ready = true;
            if (w == 0) sub->wait(1000);
        }
        lostTotal += lost;
        if (lost) failure = "the subscriber lost " + std::to_string(lost) + " messages";
    });
}

double rateOf(const Progress& p, std::uint64_t startNs) {
    const std::uint64_t last = p.lastNs.load();
    return last > startNs ? static_cast<double>(p.delivered.load()) / (static_cast<double>(last - startNs) * 1e-9) : 0;
}

bool waitFor(const std::function<bool()>& f, double seconds) {
    const std::uint64_t end = monoNs() + static_cast<std::uint64_t>(seconds * 1e9);
    while (!f()) {
        if (monoNs() > end) return false;
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    return true;
}

}  // namespace

GatewayResult moldEgressRun(Rng& rng, std::uint64_t count, double timeoutS, bool injectLoss) {
    GatewayResult r;
    Stream s(rng);
    const Net moldNet = pickNet(rng);
    const std::string moldGroup = groupOf(moldNet, 1);
    std::atomic<bool> stop{false};
    Progress sub, egress, rx;
    std::string subFailure, egFailure, rxFailure;
    std::atomic<std::uint64_t> lostTotal{0};
    std::thread subT = plainSubscriber(s.group(), sub, stop, subFailure, lostTotal, injectLoss);

    // The receiver: decodes every packet, checks the numbering has no hole.
    const int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    const int one = 1, big = 64 << 20;
    (void)::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (::setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &big, sizeof big) != 0) (void)::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &big, sizeof big);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(moldNet.group);
    a.sin_port = htons(static_cast<std::uint16_t>(moldNet.port + 1));
    ip_mreq mr{};
    mr.imr_multiaddr.s_addr = htonl(moldNet.group);
    mr.imr_interface.s_addr = htonl(0x7F000001u);
    if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
        ::setsockopt(fd, IPPROTO_IP, IP_ADD_MEMBERSHIP, &mr, sizeof mr) != 0) {
        r.failure = std::string("the MoldUDP64 receiver cannot join ") + moldGroup + ": " + std::strerror(errno);
        stop = true;
        subT.join();
        if (fd >= 0) ::close(fd);
        return r;
    }
    timeval tv{0, 20000};
    (void)::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    std::thread rxT([&] {
        std::vector<std::byte> buf(65536);
        std::uint64_t expect = 0;
        while (!stop.load(std::memory_order_relaxed)) {
            const ssize_t n = ::recv(fd, buf.data(), buf.size(), 0);
            if (n <= 0) continue;
            auto p = gateway::mold::decodePacket(std::span<const std::byte>(buf.data(), static_cast<std::size_t>(n)));
            if (!p) {
                rxFailure = "a malformed MoldUDP64 packet: " + p.error().message();
                continue;
            }
            if (p->heartbeat() || p->endOfSession()) continue;
            if (expect == 0) expect = p->seq;
            if (p->seq != expect && rxFailure.empty())
                rxFailure = "the MoldUDP64 receiver missed sequence numbers " + std::to_string(expect) + ".." + std::to_string(p->seq - 1);
            expect = p->seq + p->count;
            rx.got(p->count);
        }
    });
    std::thread egT([&] {
        gateway::mold::EgressCounters ec;
        gateway::mold::EgressOptions eo;
        eo.session = *gateway::mold::Session::parse("BENCH");
        eo.downstream = moldGroup;
        gateway::mold::Egress eg(eo, ec);
        auto esub = Subscriber::create(subscriberOf(s.group(), injectLoss));
        std::uint64_t lost = 0;
        const MessageHandler onMsg = [&](const Message& m) {
            eg.onMessage(m);
            egress.got();
        };
        const LossHandler onLoss = [&](const Loss& l) {
            lost += l.count;
            eg.onLoss(l);
        };
        while (!stop.load(std::memory_order_relaxed)) {
            int w = esub->poll(onMsg, onLoss);
            if (esub->started()) {
                eg.started(esub->nextOffset());
                egress.ready = true;
            }
            w += eg.doWork(monoNs());
            if (w == 0) esub->wait(1000);
        }
        lostTotal += lost;
        if (lost) egFailure = "the egress's subscriber lost " + std::to_string(lost) + " messages";
        else if (!eg.failure().empty()) egFailure = eg.failure();
        else if (ec.sendErrors.load()) egFailure = std::to_string(ec.sendErrors.load()) + " MoldUDP64 packets could not be sent";
    });
    auto finish = [&] {
        stop = true;
        subT.join();
        egT.join();
        rxT.join();
        ::close(fd);
        s.waitPublisher();
    };
    if (!waitFor([&] { return sub.ready.load() && egress.ready.load(); }, 10)) {
        finish();
        r.failure = "the subscribers did not hear the stream in 10 s";
        return r;
    }
    s.publish(count);
    waitFor([&] { return sub.delivered.load() >= count && rx.delivered.load() >= count; }, timeoutS);
    std::this_thread::sleep_for(std::chrono::milliseconds(50));  // a duplicate or a stray packet would show now
    finish();
    r.offered = s.offered();
    r.lost = lostTotal.load();
    r.subDelivered = sub.delivered.load();
    r.gatewayDelivered = rx.delivered.load();
    r.subMsgsPerSec = rateOf(sub, s.startNs());
    r.gatewayMsgsPerSec = rateOf(rx, s.startNs());
    r.aggregateMsgsPerSec = r.gatewayMsgsPerSec;
    if (!subFailure.empty()) r.failure = subFailure;
    else if (!egFailure.empty()) r.failure = egFailure;
    else if (!rxFailure.empty()) r.failure = rxFailure;
    else if (r.offered != count) r.failure = "the publisher offered " + std::to_string(r.offered) + " of " + std::to_string(count);
    else if (r.subDelivered != count || r.gatewayDelivered != count)
        r.failure = "delivered " + std::to_string(r.subDelivered) + " (subscriber) and " + std::to_string(r.gatewayDelivered) +
                    " (MoldUDP64) of " + std::to_string(count) + " in " + std::to_string(timeoutS) + " s";
    return r;
}

GatewayResult soupServerRun(Rng& rng, std::uint64_t count, unsigned clients, double timeoutS, bool injectLoss) {
    GatewayResult r;
    Stream s(rng);
    std::atomic<bool> stop{false};
    Progress sub;
    std::string subFailure, srvFailure, cliFailure;
    std::atomic<std::uint64_t> lostTotal{0};
    std::thread subT = plainSubscriber(s.group(), sub, stop, subFailure, lostTotal, injectLoss);
    std::atomic<bool> serverReady{false};
    std::atomic<int> serverPort{0};
    std::thread srvT([&] {
        gateway::soup::ServerOptions o;
        o.session = "BENCH";
        o.users = *gateway::soup::parseUsers("bench secret\n", "bench users");
        o.live = subscriberOf(s.group(), injectLoss);
        o.clientBufferBytes = 256u << 20;  // the bench measures the fan-out, not the slow-client rule
        o.clientTimeoutNs = 3600'000'000'000ull;  // its clients send no heartbeats
        gateway::soup::ServerCounters c;
        gateway::soup::Server srv(o, c);
        serverPort = std::stoi(srv.address().substr(srv.address().rfind(':') + 1));
        while (!stop.load(std::memory_order_relaxed)) {
            const int w = srv.doWork(monoNs());
            if (srv.nextSequence() != 0) serverReady = true;
            if (!srv.failure().empty()) {
                srvFailure = srv.failure();
                break;
            }
            if (w == 0) srv.wait(1000);
        }
        lostTotal += c.streamLost;
        if (c.slowDisconnects || c.lossDisconnects || c.protocolErrors)
            srvFailure = "the server disconnected clients (" + std::to_string(c.slowDisconnects) + " slow, " +
                         std::to_string(c.lossDisconnects) + " after a loss, " + std::to_string(c.protocolErrors) + " protocol errors)";
    });
    struct Client {
        int fd = -1;
        gateway::soup::Framer in;
        bool accepted = false;
        std::uint64_t received = 0, lastNs = 0;
    };
    std::vector<Client> cs(clients);
    std::atomic<unsigned> accepted{0};
    std::atomic<std::uint64_t> fewest{0};
    std::thread cliT;
    std::atomic<bool> cliStop{false};
    auto finish = [&] {
        cliStop = true;  // the clients first: the server's sockets close when it stops
        if (cliT.joinable()) cliT.join();
        stop = true;
        srvT.join();
        subT.join();
        s.waitPublisher();
        for (auto& c : cs)
            if (c.fd >= 0) ::close(c.fd);
    };
    if (!waitFor([&] { return sub.ready.load() && serverReady.load(); }, 10)) {
        finish();
        r.failure = srvFailure.empty() ? "the subscribers did not hear the stream in 10 s" : srvFailure;
        return r;
    }
    // The clients log in at sequence number 1 before the first message; one epoll thread reads all.
    const int ep = ::epoll_create1(EPOLL_CLOEXEC);
    const auto login = gateway::soup::encodeLogin("bench", "secret", "", 1);
    for (unsigned i = 0; i < clients; ++i) {
        Client& c = cs[i];
        c.fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(0x7F000001u);
        a.sin_port = htons(static_cast<std::uint16_t>(serverPort.load()));
        const int one = 1;
        (void)::setsockopt(c.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        if (::connect(c.fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
            ::send(c.fd, login.data(), login.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(login.size())) {
            ::close(ep);
            finish();
            r.failure = std::string("client ") + std::to_string(i) + " cannot connect and log in: " + std::strerror(errno);
            return r;
        }
        epoll_event ev{};
        ev.events = EPOLLIN;
        ev.data.u32 = i;
        (void)::epoll_ctl(ep, EPOLL_CTL_ADD, c.fd, &ev);
    }
    cliT = std::thread([&] {
        std::vector<std::byte> buf(256 * 1024);
        epoll_event evs[64];
        while (!cliStop.load(std::memory_order_relaxed)) {
            const int n = ::epoll_wait(ep, evs, 64, 20);
            for (int k = 0; k < n; ++k) {
                Client& c = cs[evs[k].data.u32];
                const ssize_t got = ::recv(c.fd, buf.data(), buf.size(), MSG_DONTWAIT);
                if (got <= 0) {
                    if (got == 0 && cliFailure.empty()) cliFailure = "the server closed a client's connection";
                    if (got == 0) (void)::epoll_ctl(ep, EPOLL_CTL_DEL, c.fd, nullptr);
                    continue;
                }
                c.in.feed(std::span<const std::byte>(buf.data(), static_cast<std::size_t>(got)));
                gateway::soup::Framer::Packet p;
                std::uint64_t msgs = 0;
                while (c.in.next(p)) {
                    if (p.type == 'S') ++msgs;
                    else if (p.type == 'A' && !c.accepted) {
                        c.accepted = true;
                        accepted.fetch_add(1);
                    } else if (p.type == 'J' && cliFailure.empty()) cliFailure = "a client's login was rejected";
                }
                if (msgs) {
                    c.received += msgs;
                    c.lastNs = monoNs();
                }
            }
            std::uint64_t least = ~std::uint64_t{0};
            for (const auto& c : cs) least = std::min(least, c.received);
            fewest.store(least, std::memory_order_relaxed);
        }
    });
    if (!waitFor([&] { return accepted.load() == clients; }, 10)) {
        finish();
        ::close(ep);
        r.failure = "only " + std::to_string(accepted.load()) + " of " + std::to_string(clients) + " clients logged in within 10 s";
        return r;
    }
    s.publish(count);
    waitFor([&] { return sub.delivered.load() >= count && fewest.load() >= count; }, timeoutS);
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    finish();
    ::close(ep);
    r.offered = s.offered();
    r.lost = lostTotal.load();
    r.subDelivered = sub.delivered.load();
    r.subMsgsPerSec = rateOf(sub, s.startNs());
    std::vector<double> rates;
    std::uint64_t total = 0, least = ~std::uint64_t{0}, lastNs = 0;
    for (const auto& c : cs) {
        least = std::min(least, c.received);
        total += c.received;
        lastNs = std::max(lastNs, c.lastNs);
        if (c.lastNs > s.startNs()) rates.push_back(static_cast<double>(c.received) / (static_cast<double>(c.lastNs - s.startNs()) * 1e-9));
    }
    std::sort(rates.begin(), rates.end());
    r.gatewayDelivered = least;
    r.gatewayMsgsPerSec = rates.empty() ? 0 : rates[rates.size() / 2];
    r.aggregateMsgsPerSec = lastNs > s.startNs() ? static_cast<double>(total) / (static_cast<double>(lastNs - s.startNs()) * 1e-9) : 0;
    if (!subFailure.empty()) r.failure = subFailure;
    else if (!srvFailure.empty()) r.failure = srvFailure;
    else if (!cliFailure.empty()) r.failure = cliFailure;
    else if (r.offered != count) r.failure = "the publisher offered " + std::to_string(r.offered) + " of " + std::to_string(count);
    else if (r.subDelivered != count || least != count)
        r.failure = "delivered " + std::to_string(r.subDelivered) + " (subscriber), at least " + std::to_string(least) + " (each of " +
                    std::to_string(clients) + " SoupBinTCP clients) of " + std::to_string(count) + " in " + std::to_string(timeoutS) + " s";
    return r;
}

}  // namespace seqcast::tools
