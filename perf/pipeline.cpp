#include "perf/pipeline.h"

#include <pthread.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "tools/common.h"
#include "transport/open_transport.h"

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
    auto t = transport::openTransport(c, warnings);
    if (!t) {
        std::fprintf(stderr, "seqcast: %s\n", t.error().message().c_str());
        std::exit(1);
    }
    if (api == transport::SocketApi::Uring && std::string((*t)->kind()) != "uring") {
        for (const auto& w : warnings) std::fprintf(stderr, "seqcast: warning: %s\n", w.c_str());
    }
    return std::move(*t);
}

namespace {

// Wraps `t` in random loss on receive when `loss` > 0, remembering the layer for its counts.
std::unique_ptr<transport::Transport> lossy(std::unique_ptr<transport::Transport> t, double loss, Rng& rng,
                                            std::vector<std::pair<LossySocket, const transport::FaultTransport*>>& faults,
                                            LossySocket which) {
    if (loss <= 0) return t;
    transport::FaultConfig f;
    f.loss = loss;
    f.seed = rng.next();
    auto w = std::make_unique<transport::FaultTransport>(std::move(t), f);
    faults.emplace_back(which, w.get());
    return w;
}

}  // namespace

Pipeline::Pipeline(Rng& rng, const PipelineOptions& o)
    : latency(o.histogramBits), repairedLatency(o.histogramBits), normalLatency(o.histogramBits),
      hopPubSeq(o.histogramBits), hopSeqSub(o.histogramBits), o_(o) {
    transport::Endpoint control = o.control, group = o.group;
    if (control.port == 0) {
        const Net n = pickNet(rng);
        control = transport::Endpoint{0x7F000001u, n.port};
        group = transport::Endpoint{n.group, static_cast<std::uint16_t>(n.port + 1)};
        seqT_ = lossy(openUdpOrExit(control, {}, o.gso, o.api, o.authKeyFile), o.loss, rng, faults_, LossySocket::SequencerControl);
        seqData_ = lossy(openUdpOrExit(transport::Endpoint{0x7F000001u, 0}, {}, o.gso, o.api, o.authKeyFile), o.loss, rng, faults_,
                         LossySocket::SequencerData);
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
    if (o.publicApi && (o.loss > 0 || o.subLoss > 0 || !o.archive.path.empty())) {
        std::fprintf(stderr, "seqcast: the public API pipeline has no loss injection and no archiver\n");
        std::exit(2);
    }
    // The public API's clients get the sockets the engine's get below (buffers, GSO/GRO, API, keys).
    seqcast::NetworkOptions net;
    net.rcvbuf = 16u << 20;
    net.sndbuf = 8u << 20;
    net.gso = o.gso;
    net.gro = o.gso;
    net.api = o.api == transport::SocketApi::Uring ? seqcast::SocketApi::Uring : seqcast::SocketApi::Syscalls;
    net.authKeyFile = o.authKeyFile;
    for (unsigned i = 0; i < std::max(1u, o.publishers); ++i) {
        auto pub = std::make_unique<Pub>();
        if (o.publicApi) {
            seqcast::PublisherOptions po;
            po.sequencer = control.str();
            po.network = net;
            try {
                pub->api = seqcast::Publisher::create(po);
            } catch (const seqcast::SetupError& e) {
                std::fprintf(stderr, "seqcast: %s\n", e.what());
                std::exit(1);
            }
            pubIds_.push_back(pub->api->id());
            pubs_.push_back(std::move(pub));
            continue;
        }
        pub->t = lossy(openUdpOrExit(transport::Endpoint{0x7F000001u, 0}, {}, o.gso, o.api, o.authKeyFile), o.loss, rng, faults_,
                       LossySocket::Publisher);
        client::PublisherConfig pc;
        pc.sequencer = control;
        auto p = client::Publisher::create(pc, *pub->t, pub->counters, {});
        if (!p) {
            std::fprintf(stderr, "seqcast: %s\n", p.error().message().c_str());
            std::exit(1);
        }
        pub->p = std::move(*p);
        pubIds_.push_back(pub->p->id().get());
        pubs_.push_back(std::move(pub));
    }
    // An injected join failure: the subscribers listen to a group nobody sends to.
    transport::Endpoint subGroup = group;
    if (o.inject == InjectedFailure::Join) subGroup.addr ^= 0x00010000u;
    for (unsigned i = 0; i < std::max(1u, o.subscribers); ++i) {
        auto sub = std::make_unique<Sub>();
        if (o.publicApi) {
            Sub* self = sub.get();
            const bool first = i == 0;
            // An injected loss (the API has no fault injection): every 20th message is dropped
            // here, uncounted, so the run must fail.
            const bool drop = o.inject == InjectedFailure::Loss;
            sub->onMessage = [this, self, first, drop, n = std::uint64_t{0}](const seqcast::Message& d) mutable {
                if (!ours(d.publisher)) return;
                if (drop && ++n % 20 == 0) return;
                if (first) {
                    const std::uint64_t now = wallNs();
                    if (now > d.publishTsNs) {
                        latency.record(now - d.publishTsNs);
                        (d.repaired ? repairedLatency : normalLatency).record(now - d.publishTsNs);
                    }
                    if (d.sequencedTsNs > d.publishTsNs && !d.repaired) hopPubSeq.record(d.sequencedTsNs - d.publishTsNs);
                    if (now > d.sequencedTsNs && !d.repaired) hopSeqSub.record(now - d.sequencedTsNs);
                    delivered.store(delivered.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
                }
                self->delivered.store(self->delivered.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
            };
            seqcast::SubscriberOptions so;
            so.group = subGroup.str();
            so.reorderBytes = client::SubscriberConfig{}.reorderBytes;  // as the engine's below
            so.network = net;
            try {
                sub->api = seqcast::Subscriber::create(so);
            } catch (const seqcast::SetupError& e) {
                std::fprintf(stderr, "seqcast: %s\n", e.what());
                std::exit(1);
            }
            subs_.push_back(std::move(sub));
            continue;
        }
        sub->data = openUdpOrExit(subGroup, {subGroup.addr}, o.gso, o.api, o.authKeyFile);
        sub->ctl = openUdpOrExit(transport::Endpoint{0x7F000001u, 0}, {}, false, o.api, o.authKeyFile);
        const double dataLoss = o.inject == InjectedFailure::Loss ? 0.05 : std::max(o.subLoss, o.loss);
        sub->data = lossy(std::move(sub->data), dataLoss, rng, faults_, LossySocket::SubscriberData);
        sub->ctl = lossy(std::move(sub->ctl), o.loss, rng, faults_, LossySocket::SubscriberControl);
        client::SubscriberConfig rc;
        if (o.inject == InjectedFailure::Loss) rc.mode = client::DeliveryMode::AtMostOnce;
        rc.nak.initialRttNs = 100'000;
        rc.nak.seed = rng.next();
        client::SubscriberHandlers h;
        Sub* self = sub.get();
        if (i == 0) {
            h.onMessage = [this, self](const client::Delivery& d) {
                if (!ours(d.publisher)) return;  // other publishers on an external stream
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
            h.onMessage = [this, self](const client::Delivery& d) {
                if (!ours(d.publisher)) return;
                self->delivered.store(self->delivered.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
            };
        }
        sub->s = std::make_unique<client::Subscriber>(rc, *sub->data, *sub->ctl, sub->counters, h);
        subs_.push_back(std::move(sub));
    }
    if (!o.archive.path.empty()) {
        archData_ = openUdpOrExit(group, {group.addr}, o.gso, o.api, o.authKeyFile);
        archSub_ = openUdpOrExit(transport::Endpoint{0x7F000001u, 0}, {}, false, o.api, o.authKeyFile);
        archSvc_ = openUdpOrExit(transport::Endpoint{0x7F000001u, 0}, {}, false, o.api, o.authKeyFile);
        archSeed_ = rng.next();  // the archiver itself is made on its thread by start()
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

std::uint64_t Pipeline::apiCounter(const char* role, Counter c) const {
    std::uint64_t sum = 0;
    const std::string name(kCounterNames[static_cast<std::size_t>(c)]);
    for (const auto& p : seqcast::readCounters()) {
        if (p.pid != static_cast<std::uint64_t>(::getpid()) || p.role != role) continue;
        if (auto it = p.values.find(name); it != p.values.end()) sum += it->second;
    }
    return sum;
}

std::uint64_t Pipeline::subscriberCounter(Counter c) const {
    if (o_.publicApi) return apiCounter("sub", c);
    std::uint64_t sum = 0;
    for (const auto& s : subs_) sum += s->counters.get(c);
    return sum;
}

std::uint64_t Pipeline::publisherCounter(Counter c) const {
    if (o_.publicApi) return apiCounter("pub", c);
    std::uint64_t sum = 0;
    for (const auto& p : pubs_) sum += p->counters.get(c);
    return sum;
}

std::uint64_t Pipeline::injectedDrops() const {
    std::uint64_t sum = 0;
    for (const auto& [which, f] : faults_) sum += f->faults().dropped + f->faults().burstDropped;
    return sum;
}

std::uint64_t Pipeline::injectedDrops(LossySocket at) const {
    std::uint64_t sum = 0;
    for (const auto& [which, f] : faults_)
        if (which == at) sum += f->faults().dropped + f->faults().burstDropped;
    return sum;
}

std::string Pipeline::check(std::uint64_t offered) const {
    std::string why;
    for (std::size_t i = 0; i < subs_.size(); ++i) {
        const std::uint64_t got = subs_[i]->delivered.load(std::memory_order_relaxed);
        if (got != offered && why.empty())
            why = "subscriber " + std::to_string(i + 1) + " delivered " + std::to_string(got) + " of " + std::to_string(offered) +
                  " messages offered";
    }
    if (const std::uint64_t lost = subscriberCounter(Counter::OffsetsLost); lost > 0) {
        if (!why.empty()) why += "; ";
        why += std::to_string(lost) + " offsets declared lost (" + std::to_string(subscriberCounter(Counter::LossNotices)) +
               " loss notices)";
    }
    return why;
}

bool Pipeline::allConfirmed() const {
    for (const auto& p : pubs_)
        if (p->api ? p->api->unconfirmed() != 0 : !p->p->allConfirmed()) return false;
    return true;
}

Pipeline::~Pipeline() { finish(); }

bool Pipeline::start() {
    if (seq_ && !o_.colocate) {
        seqThread_ = std::thread([this] {
            pthread_setname_np(pthread_self(), "seqcast-seq");
            Idler idle(idleMode(o_.busyPoll), {seqT_->waitFd(), seqData_->waitFd()});
            while (!stop_.load(std::memory_order_relaxed)) {
                const std::uint64_t now = monoNs();
                const int work = seq_->doWork(now);
                seqNext_.store(seq_->nextOffset().get(), std::memory_order_release);
                idle.idle(work, seq_->nextTimerNs());
            }
        });
    }
    subThread_ = std::thread([this] {
        pthread_setname_np(pthread_self(), "seqcast-sub");
        struct CpuTime {  // the thread's CPU time, stored however the loop below ends
            std::atomic<std::uint64_t>& out;
            ~CpuTime() { out.store(threadCpuNs(), std::memory_order_release); }
        } cpu{subCpuNs_};
        if (o_.publicApi) {
            // As the Idler below: one more look after an idle pass, then sleep on the (first)
            // subscriber's sockets and timers, 1 ms at most; or spin.
            ApiIdler idle(o_.busyPoll);
            while (!stop_.load(std::memory_order_relaxed)) {
                int work = 0;
                for (auto& s : subs_) work += s->api->poll(s->onMessage);
                idle.idle(work, *subs_[0]->api, subs_.size() == 1 ? 1000 : 100);
            }
            return;
        }
        std::vector<int> fds;
        for (const auto& s : subs_) {
            fds.push_back(s->data->waitFd());
            fds.push_back(s->ctl->waitFd());
        }
        Idler idle(idleMode(o_.busyPoll), fds);
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
    if (archData_) {
        // The archive log's io_uring is single-issuer: made on the thread that drives it.
        std::atomic<int> made{0};  // 1: made, -1: failed (setupError_ says why)
        archThread_ = std::thread([this, &made] {
            pthread_setname_np(pthread_self(), "seqcast-arch");
            archive::ArchiverConfig ac;
            ac.log = o_.archive;
            ac.sub.nak.initialRttNs = 100'000;
            ac.sub.nak.seed = archSeed_;
            auto a = archive::Archiver::create(ac, *archData_, *archSub_, *archSvc_, archC_);
            if (!a) {
                setupError_ = "archive log " + o_.archive.path + ": " + a.error().message();
                made.store(-1, std::memory_order_release);
                return;
            }
            arch_ = std::move(*a);
            made.store(1, std::memory_order_release);
            Idler idle(idleMode(o_.busyPoll), {archData_->waitFd(), archSub_->waitFd(), archSvc_->waitFd()});
            while (!stop_.load(std::memory_order_relaxed)) {
                const std::uint64_t now = monoNs();
                const int work = arch_->doWork(now);
                archWritten_.store(arch_->log().written().get(), std::memory_order_release);
                archEarliest_.store(arch_->log().earliest().get(), std::memory_order_release);
                if (archFlushRequest_.exchange(false)) {
                    auto st = arch_->flush();
                    if (!st) archFlushError_ = st.error().message();
                    else if (!arch_->failure().empty()) archFlushError_ = arch_->failure();
                    archFlushed_.store(true, std::memory_order_release);
                }
                idle.idle(work, std::min(arch_->nextTimerNs(), now + 1'000'000));
            }
            arch_.reset();  // its last writes and its ring, on its own thread
        });
        while (made.load(std::memory_order_acquire) == 0) std::this_thread::sleep_for(std::chrono::milliseconds(1));
        if (made.load() < 0) return false;
    }
    // The subscribers start at `latest`: wait until each has heard the stream.
    const std::uint64_t until = monoNs() + 3'000'000'000ull;
    auto started = [this] {
        for (const auto& s : subs_)
            if (s->api ? !s->api->started() : !s->s->started()) return false;
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
    if (archThread_.joinable()) archThread_.join();
}

std::string Pipeline::awaitArchive(double timeoutS) {
    if (!arch_) return "no archiver";
    const std::uint64_t deadline = monoNs() + static_cast<std::uint64_t>(timeoutS * 1e9);
    const std::uint64_t end = streamEnd();
    while (archived() < end && monoNs() < deadline) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    archiveCompleteNs_ = monoNs();
    if (archived() < end)
        return "the archiver wrote offsets up to " + std::to_string(archived()) + " of " + std::to_string(end) + " within " +
               std::to_string(static_cast<int>(timeoutS)) + " s (it received " + std::to_string(archC_.get(Counter::DatagramsIn)) +
               " datagrams, appended up to offset " + std::to_string(archC_.get(Counter::ArchiveNext)) + ")";
    archFlushRequest_ = true;
    while (!archFlushed_.load(std::memory_order_acquire) && monoNs() < deadline) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    if (!archFlushed_.load(std::memory_order_acquire)) return "the archiver's flush did not finish in time";
    if (!archFlushError_.empty()) return "archive flush: " + archFlushError_;
    if (const std::uint64_t lost = archC_.get(Counter::OffsetsLost); lost > 0)
        return "the archiver recorded " + std::to_string(lost) + " offsets as never received";
    return {};
}

ReplayResult Pipeline::replayAll(double timeoutS) {
    ReplayResult r;
    if (!arch_) {
        r.failure = "no archiver";
        return r;
    }
    const std::uint64_t from = archEarliest_.load(std::memory_order_acquire), to = archived();
    r.expected = to - from;
    auto t = openUdpOrExit(transport::Endpoint{0x7F000001u, 0}, {}, false, o_.api, o_.authKeyFile);
    client::SubscriberConfig cfg;
    cfg.archiver = archSvc_->local();
    cfg.start.kind = client::StartPosition::Kind::AtOffset;
    cfg.start.offset = Offset{from};
    cfg.replayTo = to;
    cfg.live = false;
    cfg.maxDatagram = 9216;
    client::SubscriberHandlers h;
    h.onMessage = [&](const client::Delivery&) { ++r.delivered; };
    h.onLoss = [&](Offset, std::uint64_t n) { r.lost += n; };
    bool ended = false;
    h.onReplayEnd = [&](wire::ReplayStatus st, Offset next, Offset) {
        if (st != wire::ReplayStatus::Complete && r.failure.empty())
            r.failure = "the archiver ended the replay at offset " + std::to_string(next.get()) + " (status " +
                        std::to_string(static_cast<int>(st)) + ")";
        if (st != wire::ReplayStatus::Complete) ended = true;
    };
    Counters c;
    client::Subscriber sub(cfg, *t, *t, c, h);
    Idler idle(idleMode(o_.busyPoll), {t->waitFd()});
    const std::uint64_t t0 = monoNs();
    const std::uint64_t deadline = t0 + static_cast<std::uint64_t>(timeoutS * 1e9);
    while (!sub.replayFinished() && !ended) {
        const std::uint64_t now = monoNs();
        if (now >= deadline) break;
        idle.idle(sub.doWork(now), now + 1'000'000);
    }
    r.seconds = static_cast<double>(monoNs() - t0) * 1e-9;
    if (r.failure.empty() && !sub.replayFinished()) r.failure = "the replay did not finish within " + std::to_string(static_cast<int>(timeoutS)) + " s";
    if (r.failure.empty() && (r.delivered != r.expected || r.lost != 0))
        r.failure = "the replay delivered " + std::to_string(r.delivered) + " of " + std::to_string(r.expected) + " messages (" +
                    std::to_string(r.lost) + " offsets lost)";
    return r;
}

std::uint64_t Pipeline::publish(std::size_t size, double rate, double seconds) {
    std::vector<std::byte> msg(size, std::byte{0x42});
    std::vector<int> fds;
    for (const auto& p : pubs_)
        if (p->t) fds.push_back(p->t->waitFd());
    Idler idle(idleMode(o_.busyPoll), fds);
    ApiIdler apiIdler(o_.busyPoll);  // publicApi: the Idler's policy, sleeping in the first publisher's wait()
    auto apiIdle = [&](int work, std::uint64_t untilNs) {
        if (work > 0 || o_.busyPoll) return apiIdler.idle(work, *pubs_[0]->api, 0);  // no clock read on the hot path
        const std::uint64_t now = monoNs();
        const std::uint64_t us = untilNs > now ? std::min<std::uint64_t>((untilNs - now) / 1000, 5000) : 0;
        apiIdler.idle(work, *pubs_[0]->api, static_cast<std::uint32_t>(us));
    };
    const std::size_t np = pubs_.size();
    // Back-pressure from the subscribers, in process: the publishers hold back while the slowest
    // subscriber is more than half the sequencer's ring (64 MiB) behind, so a subscriber starved of
    // CPU slows the run (its figure is what every subscriber could take) instead of falling past
    // the ring, where its gaps could no longer be repaired.
    const std::uint64_t lagLimit = std::max<std::uint64_t>(4096, (32u << 20) / (size + 64));
    const std::uint64_t cpu0 = threadCpuNs();
    const std::uint64_t t0 = monoNs();
    const std::uint64_t w0 = wallNs();
    const std::uint64_t end = t0 + static_cast<std::uint64_t>(seconds * 1e9);
    std::uint64_t i = 0;
    for (;;) {
        const std::uint64_t now = monoNs();
        if (now >= end) break;
        int work = 0;
        for (auto& p : pubs_) work += p->api ? p->api->doWork(now) : p->p->doWork(now);
        if (seq_ && o_.colocate) work += seq_->doWork(now);
        const std::uint64_t slowest = deliveredByAll();
        for (int k = 0; k < 1024 && i - std::min(i, slowest) < lagLimit; ++k) {
            std::uint64_t due = 0;
            if (rate > 0) {
                due = static_cast<std::uint64_t>(static_cast<double>(i) * 1e9 / rate);
                if (now - t0 < due) break;
            }
            Pub& p = *pubs_[i % np];
            if (p.api) {
                // The public API stamps the message itself (one clock read), when offered.
                if (p.api->offer(msg) != seqcast::OfferResult::Accepted) break;
            } else {
                const std::uint64_t ts = rate > 0 && !o_.stampAtOffer ? w0 + due : wallNs();
                if (p.p->offer(msg, ts) != client::Publisher::Offer::Accepted) break;
            }
            ++i;
            ++work;
        }
        std::uint64_t wake = now + 200'000;
        if (rate > 0) wake = std::min(wake, t0 + static_cast<std::uint64_t>(static_cast<double>(i) * 1e9 / rate));
        if (o_.publicApi) apiIdle(work, wake);
        else idle.idle(work, wake);
    }
    pubCpuNs_ = threadCpuNs() - cpu0;
    // Drain: let confirmations and deliveries catch up (10 s at most; 0.5 s without progress once a
    // subscriber has declared offsets lost, since those will never come).
    const std::uint64_t drainEnd = monoNs() + 10'000'000'000ull;
    std::uint64_t seen = deliveredByAll(), progressNs = monoNs();
    auto stalled = [&] {
        const std::uint64_t d = deliveredByAll(), now = monoNs();
        if (d != seen) {
            seen = d;
            progressNs = now;
        }
        return now >= drainEnd || (now - progressNs > 500'000'000ull && subscriberCounter(Counter::OffsetsLost) > 0);
    };
    while (!allConfirmed() && !stalled()) {
        for (auto& p : pubs_) {
            if (p->api) p->api->doWork();
            else p->p->doWork(monoNs());
        }
        if (seq_ && o_.colocate) seq_->doWork(monoNs());
        std::this_thread::sleep_for(std::chrono::microseconds(50));
    }
    while (deliveredByAll() < i && !stalled()) {
        if (seq_ && o_.colocate) seq_->doWork(monoNs());
        else std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    return i;
}

PingPong rawPingPong(Rng& rng, double seconds, bool busy, unsigned bits, double rate, transport::SocketApi api) {
    const Net n = pickNet(rng);
    auto a = openUdpOrExit(transport::Endpoint{0x7F000001u, n.port}, {}, false, api);
    auto b = openUdpOrExit(transport::Endpoint{0x7F000001u, static_cast<std::uint16_t>(n.port + 1)}, {}, false, api);
    std::atomic<bool> stop{false};
    std::thread echo([&] {
        transport::RxSlot s[16];
        Idler idle(idleMode(busy), {b->waitFd()});
        while (!stop.load(std::memory_order_relaxed)) {
            const std::size_t k = b->recvBurst(s);
            for (std::size_t i = 0; i < k; ++i) {
                transport::TxItem t{s[i].data, s[i].len, a->local()};
                b->sendBurst(std::span<const transport::TxItem>(&t, 1));
            }
            idle.idle(static_cast<int>(k), monoNs() + 1'000'000);
        }
    });
    PingPong r(bits);
    std::byte msg[64] = {};
    transport::RxSlot s[16];
    Idler idle(idleMode(busy), {a->waitFd()});
    const auto gap = static_cast<std::uint64_t>(1e9 / rate);
    const std::uint64_t end = monoNs() + static_cast<std::uint64_t>(seconds * 1e9);
    while (monoNs() < end) {
        const std::uint64_t t0 = monoNs();
        const std::uint64_t seq = ++r.sent;
        std::memcpy(msg, &seq, sizeof seq);
        transport::TxItem t{msg, sizeof msg, b->local()};
        a->sendBurst(std::span<const transport::TxItem>(&t, 1));
        const std::uint64_t deadline = t0 + 100'000'000;
        bool answered = false;
        while (!answered) {
            const std::size_t k = a->recvBurst(s);
            for (std::size_t i = 0; i < k; ++i) {
                std::uint64_t got = 0;
                if (s[i].len >= sizeof got) std::memcpy(&got, s[i].data, sizeof got);
                if (got != seq) continue;  // the late answer to an earlier ping, already counted lost
                const std::uint64_t rtt = monoNs() - t0;
                r.rtt.record(rtt);
                r.oneWay.record(rtt / 2);
                answered = true;
            }
            if (answered) break;
            if (monoNs() > deadline) {
                ++r.lost;
                break;
            }
            idle.idle(static_cast<int>(k), deadline);
        }
        // Paced at `rate` round trips per second.
        while (monoNs() < t0 + gap) {
            if (!busy) std::this_thread::sleep_for(std::chrono::microseconds(20));
        }
    }
    stop = true;
    echo.join();
    return r;
}

Histogram rawOneWay(Rng& rng, double seconds, bool busy, unsigned bits, double rate) {
    return rawPingPong(rng, seconds, busy, bits, rate).oneWay;
}

}  // namespace seqcast::tools
