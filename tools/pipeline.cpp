#include "tools/pipeline.h"

#include <pthread.h>

#include <cstdio>
#include <cstdlib>

#include "tools/common.h"
#include "transport/uring_transport.h"

namespace seqcast::tools {

Net pickNet(Rng& r) {
    return Net{0xEFFE0000u | static_cast<std::uint32_t>(1 + r.below(60000)), static_cast<std::uint16_t>(20000 + 2 * r.below(20000))};
}

std::unique_ptr<transport::Transport> openUdpOrExit(transport::Endpoint bind, std::vector<std::uint32_t> groups, bool gso,
                                                    transport::SocketApi api, const std::string& authKeyFile) {
    transport::UdpConfig c;
    c.gso = gso;
    c.gro = gso;
    c.bind = bind;
    c.groups = std::move(groups);
    c.rcvBuf = 16 << 20;
    c.sndBuf = 8 << 20;
    c.maxDatagram = 65536;
    c.api = api;
    c.authKeyFile = authKeyFile;
    std::vector<std::string> warnings;
    auto t = transport::openSocketTransport(c, warnings);
    if (!t) {
        std::fprintf(stderr, "seqcast: %s\n", t.error().message().c_str());
        std::exit(1);
    }
    if (api == transport::SocketApi::Uring && std::string((*t)->kind()) != "uring") {
        for (const auto& w : warnings) std::fprintf(stderr, "seqcast: warning: %s\n", w.c_str());
    }
    return std::move(*t);
}

Pipeline::Pipeline(Rng& rng, const PipelineOptions& o)
    : latency(o.histogramBits), repairedLatency(o.histogramBits), normalLatency(o.histogramBits),
      hopPubSeq(o.histogramBits), hopSeqSub(o.histogramBits), o_(o) {
    transport::Endpoint control = o.control, group = o.group;
    if (control.port == 0) {
        const Net n = pickNet(rng);
        control = transport::Endpoint{0x7F000001u, n.port};
        group = transport::Endpoint{n.group, static_cast<std::uint16_t>(n.port + 1)};
        seqT_ = openUdpOrExit(control, {}, o.gso, o.api, o.authKeyFile);
        seqData_ = openUdpOrExit(transport::Endpoint{0x7F000001u, 0}, {}, o.gso, o.api, o.authKeyFile);
        sequencer::SequencerConfig sc;
        sc.group = group;
        sc.ringBytes = 64u << 20;
        auto s = sequencer::Sequencer::create(sc, *seqT_, *seqData_, seqC_);
        if (!s) {
            std::fprintf(stderr, "seqcast: %s\n", s.error().message().c_str());
            std::exit(1);
        }
        seq_ = std::move(*s);
    }
    for (unsigned i = 0; i < std::max(1u, o.publishers); ++i) {
        auto pub = std::make_unique<Pub>();
        pub->t = openUdpOrExit(transport::Endpoint{0x7F000001u, 0}, {}, o.gso, o.api, o.authKeyFile);
        sequencer::PublisherConfig pc;
        pc.sequencer = control;
        auto p = sequencer::Publisher::create(pc, *pub->t, pub->counters, {});
        if (!p) {
            std::fprintf(stderr, "seqcast: %s\n", p.error().message().c_str());
            std::exit(1);
        }
        pub->p = std::move(*p);
        pubIds_.push_back(pub->p->id().get());
        pubs_.push_back(std::move(pub));
    }
    for (unsigned i = 0; i < std::max(1u, o.subscribers); ++i) {
        auto sub = std::make_unique<Sub>();
        sub->data = openUdpOrExit(group, {group.addr}, o.gso, o.api, o.authKeyFile);
        sub->ctl = openUdpOrExit(transport::Endpoint{0x7F000001u, 0}, {}, false, o.api, o.authKeyFile);
        if (o.subLoss > 0) {
            transport::FaultConfig f;
            f.loss = o.subLoss;
            f.seed = rng.next();
            sub->data = std::make_unique<transport::FaultTransport>(std::move(sub->data), f);
        }
        recovery::SubscriberConfig rc;
        rc.nak.initialRttNs = 100'000;
        rc.nak.seed = rng.next();
        recovery::SubscriberHandlers h;
        Sub* self = sub.get();
        if (i == 0) {
            h.onMessage = [this, self](const recovery::Delivery& d) {
                if (!ours(d.publisher.get())) return;  // other publishers on an external stream
                const std::uint64_t now = wallNs();
                if (now > d.publishTsNs) {
                    latency.record(now - d.publishTsNs);
                    (d.repaired ? repairedLatency : normalLatency).record(now - d.publishTsNs);
                }
                if (d.sequencedTsNs > d.publishTsNs && !d.repaired) hopPubSeq.record(d.sequencedTsNs - d.publishTsNs);
                if (now > d.sequencedTsNs && !d.repaired) hopSeqSub.record(now - d.sequencedTsNs);
                delivered.store(delivered.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
                self->delivered.store(self->delivered.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
            };
        } else {
            h.onMessage = [this, self](const recovery::Delivery& d) {
                if (!ours(d.publisher.get())) return;
                self->delivered.store(self->delivered.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
            };
        }
        sub->s = std::make_unique<recovery::Subscriber>(rc, *sub->data, *sub->ctl, sub->counters, h);
        subs_.push_back(std::move(sub));
    }
}

bool Pipeline::ours(std::uint32_t publisher) const noexcept {
    for (std::uint32_t id : pubIds_)
        if (id == publisher) return true;
    return false;
}

std::uint64_t Pipeline::deliveredByAll() const {
    std::uint64_t m = ~std::uint64_t{0};
    for (const auto& s : subs_) m = std::min(m, s->delivered.load(std::memory_order_relaxed));
    return m;
}

std::uint64_t Pipeline::subscriberCounter(Counter c) const {
    std::uint64_t sum = 0;
    for (const auto& s : subs_) sum += s->counters.get(c);
    return sum;
}

bool Pipeline::allConfirmed() const {
    for (const auto& p : pubs_)
        if (!p->p->allConfirmed()) return false;
    return true;
}

Pipeline::~Pipeline() { finish(); }

bool Pipeline::start() {
    if (seq_ && !o_.colocate) {
        seqThread_ = std::thread([this] {
            pthread_setname_np(pthread_self(), "seqcast-seq");
            Idler idle(o_.busyPoll, {seqT_->waitFd(), seqData_->waitFd()});
            while (!stop_.load(std::memory_order_relaxed)) {
                const std::uint64_t now = monoNs();
                idle.idle(seq_->doWork(now), seq_->nextTimerNs());
            }
        });
    }
    subThread_ = std::thread([this] {
        pthread_setname_np(pthread_self(), "seqcast-sub");
        std::vector<int> fds;
        for (const auto& s : subs_) {
            fds.push_back(s->data->waitFd());
            fds.push_back(s->ctl->waitFd());
        }
        Idler idle(o_.busyPoll, fds);
        while (!stop_.load(std::memory_order_relaxed)) {
            const std::uint64_t now = monoNs();
            int work = 0;
            std::uint64_t next = now + 1'000'000;
            for (auto& s : subs_) {
                work += s->s->doWork(now);
                next = std::min(next, s->s->nextTimerNs());
            }
            idle.idle(work, next);
        }
    });
    // The subscribers start at `latest`: wait until each has heard the stream.
    const std::uint64_t until = monoNs() + 3'000'000'000ull;
    auto started = [this] {
        for (const auto& s : subs_)
            if (!s->s->started()) return false;
        return true;
    };
    while (!started() && monoNs() < until) {
        if (seq_ && o_.colocate) seq_->doWork(monoNs());
        else std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    return started();
}

void Pipeline::finish() {
    stop_ = true;
    if (seqThread_.joinable()) seqThread_.join();
    if (subThread_.joinable()) subThread_.join();
}

std::uint64_t Pipeline::publish(std::size_t size, double rate, double seconds) {
    std::vector<std::byte> msg(size, std::byte{0x42});
    std::vector<int> fds;
    for (const auto& p : pubs_) fds.push_back(p->t->waitFd());
    Idler idle(o_.busyPoll, fds);
    const std::size_t np = pubs_.size();
    const std::uint64_t t0 = monoNs();
    const std::uint64_t w0 = wallNs();
    const std::uint64_t end = t0 + static_cast<std::uint64_t>(seconds * 1e9);
    std::uint64_t i = 0;
    for (;;) {
        const std::uint64_t now = monoNs();
        if (now >= end) break;
        int work = 0;
        for (auto& p : pubs_) work += p->p->doWork(now);
        if (seq_ && o_.colocate) work += seq_->doWork(now);
        for (int k = 0; k < 1024; ++k) {
            std::uint64_t ts;
            if (rate > 0) {
                const auto due = static_cast<std::uint64_t>(static_cast<double>(i) * 1e9 / rate);
                if (now - t0 < due) break;
                ts = w0 + due;
            } else {
                ts = wallNs();
            }
            if (pubs_[i % np]->p->offer(msg, ts) != sequencer::Publisher::Offer::Accepted) break;
            ++i;
            ++work;
        }
        std::uint64_t wake = now + 200'000;
        if (rate > 0) wake = std::min(wake, t0 + static_cast<std::uint64_t>(static_cast<double>(i) * 1e9 / rate));
        idle.idle(work, wake);
    }
    // Drain: let confirmations and deliveries catch up.
    const std::uint64_t drainEnd = monoNs() + 3'000'000'000ull;
    while (!allConfirmed() && monoNs() < drainEnd) {
        for (auto& p : pubs_) p->p->doWork(monoNs());
        if (seq_ && o_.colocate) seq_->doWork(monoNs());
        std::this_thread::sleep_for(std::chrono::microseconds(50));
    }
    while (deliveredByAll() < i && monoNs() < drainEnd) {
        if (seq_ && o_.colocate) seq_->doWork(monoNs());
        else std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    return i;
}

// Raw UDP ping-pong on loopback: the round trip of one 64-byte datagram, halved.
Histogram rawOneWay(Rng& rng, double seconds, bool busy, unsigned bits, double rate) {
    const Net n = pickNet(rng);
    auto a = openUdpOrExit(transport::Endpoint{0x7F000001u, n.port});
    auto b = openUdpOrExit(transport::Endpoint{0x7F000001u, static_cast<std::uint16_t>(n.port + 1)});
    std::atomic<bool> stop{false};
    std::thread echo([&] {
        transport::RxSlot s[16];
        Idler idle(busy, {b->waitFd()});
        while (!stop.load(std::memory_order_relaxed)) {
            const std::size_t k = b->recvBurst(s);
            for (std::size_t i = 0; i < k; ++i) {
                transport::TxItem t{s[i].data, s[i].len, a->local()};
                b->sendBurst(std::span<const transport::TxItem>(&t, 1));
            }
            idle.idle(static_cast<int>(k), monoNs() + 1'000'000);
        }
    });
    Histogram h(bits);
    std::byte msg[64] = {};
    transport::RxSlot s[16];
    Idler idle(busy, {a->waitFd()});
    const std::uint64_t end = monoNs() + static_cast<std::uint64_t>(seconds * 1e9);
    while (monoNs() < end) {
        const std::uint64_t t0 = monoNs();
        transport::TxItem t{msg, sizeof msg, b->local()};
        a->sendBurst(std::span<const transport::TxItem>(&t, 1));
        const std::uint64_t deadline = t0 + 100'000'000;
        for (;;) {
            const std::size_t k = a->recvBurst(s);
            if (k > 0) {
                h.record((monoNs() - t0) / 2);
                break;
            }
            if (monoNs() > deadline) break;
            idle.idle(0, deadline);
        }
        // Paced at `rate` round trips per second.
        const auto gap = static_cast<std::uint64_t>(1e9 / rate);
        while (monoNs() < t0 + gap) {
            if (!busy) std::this_thread::sleep_for(std::chrono::microseconds(20));
        }
    }
    stop = true;
    echo.join();
    return h;
}

}  // namespace seqcast::tools
