#include "tools/pipeline.h"

#include <cstdio>
#include <cstdlib>

#include "tools/common.h"

namespace seqcast::tools {

Net pickNet(Rng& r) {
    return Net{0xEFFE0000u | static_cast<std::uint32_t>(1 + r.below(60000)), static_cast<std::uint16_t>(20000 + 2 * r.below(20000))};
}

std::unique_ptr<transport::UdpTransport> openUdpOrExit(transport::Endpoint bind, std::vector<std::uint32_t> groups, bool gso) {
    transport::UdpConfig c;
    c.gso = gso;
    c.gro = gso;
    c.bind = bind;
    c.groups = std::move(groups);
    c.rcvBuf = 16 << 20;
    c.sndBuf = 8 << 20;
    c.maxDatagram = 65536;
    auto t = transport::UdpTransport::open(c);
    if (!t) {
        std::fprintf(stderr, "seqcast: %s\n", t.error().message().c_str());
        std::exit(1);
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
        seqT_ = openUdpOrExit(control, {}, o.gso);
        sequencer::SequencerConfig sc;
        sc.group = group;
        sc.ringBytes = 64u << 20;
        auto s = sequencer::Sequencer::create(sc, *seqT_, *seqT_, seqC_);
        if (!s) {
            std::fprintf(stderr, "seqcast: %s\n", s.error().message().c_str());
            std::exit(1);
        }
        seq_ = std::move(*s);
    }
    pubT_ = openUdpOrExit(transport::Endpoint{0x7F000001u, 0}, {}, o.gso);
    subData_ = openUdpOrExit(group, {group.addr}, o.gso);
    subCtl_ = openUdpOrExit(transport::Endpoint{0x7F000001u, 0});
    sequencer::PublisherConfig pc;
    pc.sequencer = control;
    auto p = sequencer::Publisher::create(pc, *pubT_, pubC_, {});
    if (!p) {
        std::fprintf(stderr, "seqcast: %s\n", p.error().message().c_str());
        std::exit(1);
    }
    pub_ = std::move(*p);
    recovery::SubscriberConfig rc;
    rc.nak.initialRttNs = 100'000;
    rc.nak.seed = rng.next();
    transport::Transport* data = subData_.get();
    if (o.subLoss > 0) {
        transport::FaultConfig f;
        f.loss = o.subLoss;
        f.seed = rng.next();
        subDataFaulty_ = std::make_unique<transport::FaultTransport>(std::move(subData_), f);
        data = subDataFaulty_.get();
    }
    const std::uint32_t me = pub_->id().get();
    recovery::SubscriberHandlers h;
    h.onMessage = [this, me](const recovery::Delivery& d) {
        if (d.publisher.get() != me) return;  // other publishers on an external stream
        const std::uint64_t now = wallNs();
        if (now > d.publishTsNs) {
            latency.record(now - d.publishTsNs);
            (d.repaired ? repairedLatency : normalLatency).record(now - d.publishTsNs);
        }
        if (d.sequencedTsNs > d.publishTsNs && !d.repaired) hopPubSeq.record(d.sequencedTsNs - d.publishTsNs);
        if (now > d.sequencedTsNs && !d.repaired) hopSeqSub.record(now - d.sequencedTsNs);
        delivered.store(delivered.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
    };
    sub_ = std::make_unique<recovery::Subscriber>(rc, *data, *subCtl_, subC_, h);
    dataFd_ = data->waitFd();
}

Pipeline::~Pipeline() { finish(); }

bool Pipeline::start() {
    if (seq_ && !o_.colocate) {
        seqThread_ = std::thread([this] {
            Idler idle(o_.busyPoll, {seqT_->waitFd()});
            while (!stop_.load(std::memory_order_relaxed)) {
                const std::uint64_t now = monoNs();
                idle.idle(seq_->doWork(now), seq_->nextTimerNs());
            }
        });
    }
    subThread_ = std::thread([this] {
        Idler idle(o_.busyPoll, {dataFd_, subCtl_->waitFd()});
        while (!stop_.load(std::memory_order_relaxed)) {
            const std::uint64_t now = monoNs();
            idle.idle(sub_->doWork(now), std::min(sub_->nextTimerNs(), now + 1'000'000));
        }
    });
    // The subscriber starts at `latest`: wait until it has heard the stream.
    const std::uint64_t until = monoNs() + 3'000'000'000ull;
    while (!sub_->started() && monoNs() < until) {
        if (seq_ && o_.colocate) seq_->doWork(monoNs());
        else std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    return sub_->started();
}

void Pipeline::finish() {
    stop_ = true;
    if (seqThread_.joinable()) seqThread_.join();
    if (subThread_.joinable()) subThread_.join();
}

std::uint64_t Pipeline::publish(std::size_t size, double rate, double seconds) {
    std::vector<std::byte> msg(size, std::byte{0x42});
    Idler idle(o_.busyPoll, {pubT_->waitFd()});
    const std::uint64_t t0 = monoNs();
    const std::uint64_t w0 = wallNs();
    const std::uint64_t end = t0 + static_cast<std::uint64_t>(seconds * 1e9);
    std::uint64_t i = 0;
    for (;;) {
        const std::uint64_t now = monoNs();
        if (now >= end) break;
        int work = pub_->doWork(now);
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
            if (pub_->offer(msg, ts) != sequencer::Publisher::Offer::Accepted) break;
            ++i;
            ++work;
        }
        std::uint64_t wake = now + 200'000;
        if (rate > 0) wake = std::min(wake, t0 + static_cast<std::uint64_t>(static_cast<double>(i) * 1e9 / rate));
        idle.idle(work, wake);
    }
    // Drain: let confirmations and deliveries catch up.
    const std::uint64_t drainEnd = monoNs() + 3'000'000'000ull;
    while (!pub_->allConfirmed() && monoNs() < drainEnd) {
        pub_->doWork(monoNs());
        if (seq_ && o_.colocate) seq_->doWork(monoNs());
        std::this_thread::sleep_for(std::chrono::microseconds(50));
    }
    while (delivered.load() < i && monoNs() < drainEnd) {
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
