// seqcast bench: sequenced throughput, end-to-end latency, repair under loss, scaling, the cost of
// authenticated frames and the archiver's recording and replay, each printed beside a baseline
// measured in the same run (raw datagrams and a raw UDP ping-pong through the same socket API, a
// raw io_uring file write), as the median of several runs.
//
// Every run is checked, not only timed: each subscriber must deliver every message offered, and
// none may declare offsets lost. A run that fails the check makes its row FAILED (no figure), and
// the command exits 1; a pipeline whose subscribers never hear the stream stops the bench at once.
// SEQCAST_BENCH_INJECT_FAILURE=loss|join makes every run fail in that way (tests of this harness).
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdarg>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <map>
#include <thread>

#include "archive/file_io.h"
#include "client/publisher.h"
#include "client/subscriber.h"
#include "fabric/clock.h"
#include "fabric/histogram.h"
#include "perf/gateway_bench.h"
#include "perf/pipeline.h"
#include "sequencer/sequencer.h"
#include "tools/commands.h"
#include "tools/common.h"
#include "transport/uring_transport.h"

namespace seqcast::tools {

namespace {

double median(std::vector<double> v) {
    if (v.empty()) return 0;
    std::sort(v.begin(), v.end());
    return v.size() % 2 ? v[v.size() / 2] : 0.5 * (v[v.size() / 2 - 1] + v[v.size() / 2]);
}

double ratio(double a, double b) { return a / std::max(b, 1.0); }

// The q-quantile (0..1) of v, by linear interpolation between order statistics.
double quantile(std::vector<double> v, double q) {
    if (v.empty()) return 0;
    std::sort(v.begin(), v.end());
    const double at = q * static_cast<double>(v.size() - 1);
    const std::size_t lo = static_cast<std::size_t>(at);
    const std::size_t hi = std::min(lo + 1, v.size() - 1);
    return v[lo] + (v[hi] - v[lo]) * (at - static_cast<double>(lo));
}

const char* apiName(transport::SocketApi a) { return a == transport::SocketApi::Uring ? "uring" : "udp"; }

// Messages of `size` bytes packed into one MTU datagram by the sequencer.
std::size_t perDatagram(std::size_t size, std::size_t mtu) {
    return std::max<std::size_t>(1, (mtu - wire::kHeaderSize) / (wire::kMessageHeaderSize + size));
}

// The subscribers never heard the stream: nothing else in the bench can be measured either.
struct JoinFailure : std::runtime_error {
    using std::runtime_error::runtime_error;
};

// Raw baseline: datagrams of `dgSize` bytes from one thread to a multicast group, received by
// another, through the same socket API as the rows it is set beside. Counted as received.
double rawDatagramsPerSec(Rng& rng, std::size_t dgSize, double seconds, bool gso, transport::SocketApi api) {
    const Net n = pickNet(rng);
    const transport::Endpoint group{n.group, static_cast<std::uint16_t>(n.port + 1)};
    auto rx = openUdpOrExit(group, {n.group}, gso, api);
    auto tx = openUdpOrExit(transport::Endpoint{0x7F000001u, 0}, {}, gso, api);
    std::atomic<bool> stop{false};
    std::atomic<std::uint64_t> received{0};
    std::thread r([&] {
        transport::RxSlot slots[64];
        Idler idle(IdleMode::Block, {rx->waitFd()});
        std::uint64_t got = 0;
        while (!stop.load(std::memory_order_relaxed)) {
            const std::size_t k = rx->recvBurst(slots);
            got += k;
            received.store(got, std::memory_order_relaxed);
            idle.idle(static_cast<int>(k), monoNs() + 1'000'000);
        }
    });
    std::vector<std::byte> payload(dgSize, std::byte{0x5A});
    std::vector<transport::TxItem> items(64, transport::TxItem{payload.data(), static_cast<std::uint32_t>(dgSize), group});
    const std::uint64_t warm = monoNs() + 100'000'000;
    const std::uint64_t end = warm + static_cast<std::uint64_t>(seconds * 1e9);
    std::uint64_t base = 0;
    bool started = false;
    while (monoNs() < end) {
        if (!started && monoNs() >= warm) {
            base = received.load();
            started = true;
        }
        if (tx->sendBurst(items) == 0) std::this_thread::yield();
    }
    const std::uint64_t got = received.load() - base;
    stop = true;
    r.join();
    return static_cast<double>(got) / seconds;
}

// What one run did, beside what it measured; `failure` is empty for a run that delivered every
// message it offered to every subscriber, with no offsets declared lost.
struct Round {
    std::uint64_t offered = 0, delivered = 0;
    std::uint64_t dropsPublisher = 0, dropsSeqControl = 0, dropsSeqData = 0, dropsSubData = 0, dropsSubControl = 0;
    std::uint64_t injectedDrops = 0, gaps = 0, naks = 0, retransmits = 0, pubRetransmits = 0, duplicates = 0, overflow = 0,
                  lost = 0;
    double value = 0;  // the run's figure: msgs/s, or p99.9 latency in ns
    // CPU time per message of the publisher's thread (while it published) and of the subscribers'
    // thread (over the whole run, per message it delivered); 0 where nothing was offered or delivered.
    double pubCpuNsPerMsg = 0, subCpuNsPerMsg = 0;
    std::string failure;
};

Round roundOf(const Pipeline& p, std::uint64_t offered) {
    Round r;
    r.offered = offered;
    r.delivered = p.deliveredByAll();
    r.injectedDrops = p.injectedDrops();
    r.dropsPublisher = p.injectedDrops(LossySocket::Publisher);
    r.dropsSeqControl = p.injectedDrops(LossySocket::SequencerControl);
    r.dropsSeqData = p.injectedDrops(LossySocket::SequencerData);
    r.dropsSubData = p.injectedDrops(LossySocket::SubscriberData);
    r.dropsSubControl = p.injectedDrops(LossySocket::SubscriberControl);
    r.gaps = p.subscriberCounter(Counter::GapsDetected);
    r.naks = p.subscriberCounter(Counter::NaksSent);
    r.retransmits = p.sequencerCounter(Counter::Retransmits);
    r.pubRetransmits = p.publisherCounter(Counter::PubRetransmits);
    r.duplicates = p.subscriberCounter(Counter::DropDuplicate);
    r.overflow = p.subscriberCounter(Counter::DropOverflow);
    r.lost = p.subscriberCounter(Counter::OffsetsLost);
    r.failure = p.check(offered);
    if (offered > 0) r.pubCpuNsPerMsg = static_cast<double>(p.publisherCpuNs()) / static_cast<double>(offered);
    if (r.delivered > 0) r.subCpuNsPerMsg = static_cast<double>(p.subscriberCpuNs()) / static_cast<double>(r.delivered);
    return r;
}

// False (a failed row) when the pipeline's archive could not be made; throws when the subscribers
// never joined.
bool startOrThrow(Pipeline& p) {
    if (p.start()) return true;
    if (!p.setupError().empty()) return false;
    throw JoinFailure("the subscribers heard nothing from the in-process sequencer within 3 s on loopback multicast "
                          "(no multicast route on lo? try: ip route add 224.0.0.0/4 dev lo)");
}

// Messages per second that every subscriber delivered, over `seconds` after a warm-up.
Round sequencedThroughput(Rng& rng, std::size_t size, double seconds, const PipelineOptions& o) {
    Pipeline p(rng, o);
    startOrThrow(p);
    std::uint64_t rate = 0;
    std::thread sampler([&] {
        std::this_thread::sleep_for(std::chrono::milliseconds(200));  // warm-up
        const std::uint64_t base = p.deliveredByAll();
        const auto t0 = monoNs();
        std::this_thread::sleep_for(std::chrono::nanoseconds(static_cast<std::uint64_t>(seconds * 1e9)));
        const std::uint64_t end = p.deliveredByAll();
        const double dt = static_cast<double>(monoNs() - t0) * 1e-9;
        rate = static_cast<std::uint64_t>(static_cast<double>(end - base) / dt);
    });
    const std::uint64_t offered = p.publish(size, 0, seconds + 0.3);
    sampler.join();
    p.finish();
    Round r = roundOf(p, offered);
    r.value = static_cast<double>(rate);
    return r;
}

struct LatencyResult {
    double p50 = 0, p99 = 0, p999 = 0, max = 0;
    double repaired = 0;  // messages delivered after a repair, per run
    std::vector<Round> rounds;
};

// Publish->deliver latency of 64 B messages at a fixed rate; the median of each quantile over runs.
// With --busy-poll the publisher's thread also runs the sequencer: two spinning threads, one per
// core of a 2-core machine (the suites say so in their output).
LatencyResult fixedRateLatency(Rng& rng, double rate, double seconds, std::uint64_t runs, PipelineOptions o) {
    std::vector<double> p50, p99, p999, mx, rep;
    LatencyResult res;
    for (std::uint64_t r = 0; r < runs; ++r) {
        o.colocate = o.busyPoll;
        Pipeline p(rng, o);
        startOrThrow(p);
        const std::uint64_t offered = p.publish(64, rate, seconds);
        p.finish();
        p50.push_back(static_cast<double>(p.latency.quantile(0.5)));
        p99.push_back(static_cast<double>(p.latency.quantile(0.99)));
        p999.push_back(static_cast<double>(p.latency.quantile(0.999)));
        mx.push_back(static_cast<double>(p.latency.max()));
        rep.push_back(static_cast<double>(p.repairedLatency.count()));
        res.rounds.push_back(roundOf(p, offered));
        res.rounds.back().value = p999.back();
    }
    res.p50 = median(p50);
    res.p99 = median(p99);
    res.p999 = median(p999);
    res.max = median(mx);
    res.repaired = median(rep);
    return res;
}

std::vector<double> values(const std::vector<Round>& rounds) {
    std::vector<double> v;
    for (const Round& r : rounds) v.push_back(r.value);
    return v;
}

// Raw baseline for the archive: sequential writes of `chunk`-byte registered buffers, `depth` in
// flight, through io_uring (the archive's own FileIo, as the log writes), into a preallocated file
// in `dir` that wraps at `fileBytes`, for `seconds`, then one fdatasync; MB/s over the whole.
struct RawWrite {
    double mbPerSec = 0;
    bool uring = false;
    bool noDirect = false;  // the file system refuses O_DIRECT (tmpfs): nothing to measure there
    std::string failure;
};

RawWrite rawSequentialWrite(const std::string& dir, bool direct, double seconds, std::size_t chunk = 1u << 20, unsigned depth = 8,
                            std::uint64_t fileBytes = 512u << 20) {
    RawWrite w;
    const std::string path = dir + "/seqcast-bench-raw-" + std::to_string(::getpid()) + ".tmp";
    std::byte* mem = static_cast<std::byte*>(std::aligned_alloc(4096, chunk * depth));
    if (mem == nullptr) {
        w.failure = "out of memory";
        return w;
    }
    std::fill(mem, mem + chunk * depth, std::byte{0x5A});
    std::vector<std::span<std::byte>> bufs;
    for (unsigned i = 0; i < depth; ++i) bufs.emplace_back(mem + i * chunk, chunk);
    archive::FileIoConfig fc;
    fc.path = path;
    fc.size = fileBytes;
    fc.direct = direct;
    auto io = archive::FileIo::open(fc, bufs);
    if (!io) {
        w.noDirect = direct && io.error().code == EINVAL;
        w.failure = path + ": " + io.error().message();
        std::free(mem);
        return w;
    }
    w.uring = (*io)->usingUring();
    std::vector<archive::FileIo::Completion> done;
    std::vector<unsigned> freeTags;
    for (unsigned i = 0; i < depth; ++i) freeTags.push_back(i);
    std::uint64_t pos = 0, bytes = 0;
    auto collect = [&] {
        for (const auto& d : done) {
            if (d.result < 0 && w.failure.empty()) w.failure = std::string("write: ") + std::strerror(-d.result);
            if (d.result > 0) bytes += static_cast<std::uint64_t>(d.result);
            freeTags.push_back(d.tag);
        }
        done.clear();
    };
    const std::uint64_t t0 = monoNs();
    const std::uint64_t end = t0 + static_cast<std::uint64_t>(seconds * 1e9);
    while (monoNs() < end && w.failure.empty()) {
        while (!freeTags.empty()) {
            const unsigned tag = freeTags.back();
            if (!(*io)->write(tag, tag, bufs[tag], pos % fileBytes, false)) break;
            freeTags.pop_back();
            pos += chunk;
        }
        if ((*io)->reap(done) == 0 && done.empty()) std::this_thread::yield();
        collect();
    }
    (*io)->drain(done);
    collect();
    if ((*io)->sync(depth)) {
        (*io)->drain(done);
        for (const auto& d : done)
            if (d.result < 0 && w.failure.empty()) w.failure = std::string("fdatasync: ") + std::strerror(-d.result);
        done.clear();
    }
    const double dt = static_cast<double>(monoNs() - t0) * 1e-9;
    w.mbPerSec = static_cast<double>(bytes) / dt / 1e6;
    io->reset();
    ::unlink(path.c_str());
    std::free(mem);
    return w;
}

struct ArchiveRound {
    Round r;                 // value: offsets (messages) the archiver wrote per second
    double subMsgs = 0;      // what the subscriber beside it delivered per second, same window
    ReplayResult replay;
};

// The stream recorded by an archiver beside one subscriber, then replayed whole to one client.
ArchiveRound archiveRun(Rng& rng, PipelineOptions o, std::size_t size, double seconds) {
    static unsigned serial = 0;
    const std::string path = o.archive.path + "/seqcast-bench-" + std::to_string(::getpid()) + "-" + std::to_string(++serial) + ".log";
    o.archive.path = path;
    ArchiveRound a;
    {
        Pipeline p(rng, o);
        if (!startOrThrow(p)) {
            a.r.failure = p.setupError();
            ::unlink(path.c_str());
            return a;
        }
        // Rates over the whole run, from the first offer: the subscriber's until it has delivered
        // everything (publish() returns then), the archiver's until it has written everything (the
        // log is written in 1 MiB stages, too coarse for a short sampling window).
        const std::uint64_t first = p.streamEnd();
        const std::uint64_t t0 = monoNs();
        const std::uint64_t offered = p.publish(size, 0, seconds);
        const std::uint64_t tSub = monoNs();
        const std::string recorded = p.awaitArchive(30);
        const double rec = static_cast<double>(p.archived() - first) / (static_cast<double>(p.archiveCompleteNs() - t0) * 1e-9);
        const double sub = static_cast<double>(p.deliveredByAll()) / (static_cast<double>(tSub - t0) * 1e-9);
        if (recorded.empty()) a.replay = p.replayAll(60);
        p.finish();
        a.r = roundOf(p, offered);
        a.r.value = rec;
        a.subMsgs = sub;
        a.r.lost += p.archiverCounter(Counter::OffsetsLost);
        for (const std::string* f : {&recorded, static_cast<const std::string*>(&a.replay.failure)}) {
            if (f->empty()) continue;
            if (!a.r.failure.empty()) a.r.failure += "; ";
            a.r.failure += *f;
        }
    }
    ::unlink(path.c_str());
    return a;
}

// The output: text, JSON and Markdown together, and the failed rows.
class Report {
public:
    Report() { md_ = "| benchmark | result | baseline (same run) | ratio |\n|---|---|---|---|\n"; }
    Json j;

    void print(const std::string& text) {
        std::fputs(text.c_str(), stdout);
        std::fflush(stdout);
    }
    void printf(const char* fmt, ...) __attribute__((format(printf, 2, 3))) {
        char buf[1024];
        va_list ap;
        va_start(ap, fmt);
        std::vsnprintf(buf, sizeof buf, fmt, ap);
        va_end(ap);
        print(buf);
    }
    void mdRow(const std::string& bench, const std::string& result, const std::string& baseline, const std::string& ratio) {
        md_ += "| " + bench + " | " + result + " | " + baseline + " | " + ratio + " |\n";
    }
    // Checks a row's runs: a row with a failed run is printed and recorded as FAILED (true).
    bool failed(const std::string& row, const std::vector<Round>& rounds) {
        for (std::size_t i = 0; i < rounds.size(); ++i) {
            if (rounds[i].failure.empty()) continue;
            const std::string why = "run " + std::to_string(i + 1) + " of " + std::to_string(rounds.size()) + ": " + rounds[i].failure;
            print("  FAILED " + row + ": " + why + "\n");
            std::fprintf(stderr, "seqcast bench: FAILED %s: %s\n", row.c_str(), why.c_str());
            failures_.push_back(row + ": " + why);
            mdRow(row, "**FAILED**: " + why, "-", "-");
            j.field("failed", why);
            return true;
        }
        return false;
    }
    void fail(const std::string& row, const std::string& why) {
        print("  FAILED " + row + ": " + why + "\n");
        std::fprintf(stderr, "seqcast bench: FAILED %s: %s\n", row.c_str(), why.c_str());
        failures_.push_back(row + ": " + why);
        mdRow(row, "**FAILED**: " + why, "-", "-");
        j.field("failed", why);
    }
    // Every run's counters, in the JSON (`rounds`) and in the Markdown's table of runs.
    void rounds(const std::string& key, const std::string& row, const std::string& valueName, const std::vector<Round>& rounds) {
        j.key(key).beginArray();
        for (std::size_t i = 0; i < rounds.size(); ++i) {
            const Round& r = rounds[i];
            j.begin();
            j.field(valueName, r.value);
            j.field("offered", r.offered);
            j.field("delivered_by_every_subscriber", r.delivered);
            j.field("injected_drops", r.injectedDrops);
            j.key("injected_drops_at").begin();
            j.field("publisher", r.dropsPublisher);            // confirmations
            j.field("sequencer_control", r.dropsSeqControl);   // PUBs
            j.field("sequencer_data", r.dropsSeqData);         // NAKs
            j.field("subscriber_data", r.dropsSubData);        // DATA, retransmissions, heartbeats
            j.field("subscriber_control", r.dropsSubControl);  // unicast replies
            j.end();
            j.field("gaps", r.gaps);
            j.field("naks", r.naks);
            j.field("retransmits", r.retransmits);
            j.field("publisher_retransmits", r.pubRetransmits);
            j.field("duplicates", r.duplicates);
            j.field("reorder_overflows", r.overflow);
            j.field("offsets_lost", r.lost);
            if (!r.failure.empty()) j.field("failed", r.failure);
            j.end();
            char buf[512];
            std::snprintf(buf, sizeof buf, "| %s | %zu | %.0f | %llu / %llu | %llu | %llu | %llu | %llu | %llu | %llu | %llu | %llu | %s |\n",
                          row.c_str(), i + 1, r.value, static_cast<unsigned long long>(r.delivered),
                          static_cast<unsigned long long>(r.offered), static_cast<unsigned long long>(r.injectedDrops),
                          static_cast<unsigned long long>(r.gaps), static_cast<unsigned long long>(r.naks),
                          static_cast<unsigned long long>(r.retransmits), static_cast<unsigned long long>(r.pubRetransmits),
                          static_cast<unsigned long long>(r.duplicates), static_cast<unsigned long long>(r.overflow),
                          static_cast<unsigned long long>(r.lost), r.failure.empty() ? "ok" : ("FAILED: " + r.failure).c_str());
            runsMd_ += buf;
        }
        j.endArray();
    }
    std::string markdown() const {
        std::string s = md_;
        if (!runsMd_.empty())
            s += "\nEvery run (value: msgs/s for throughput rows, p99.9 ns for latency rows):\n\n"
                 "| row | run | value | delivered / offered | injected drops | gaps | NAKs | retransmits | publisher retransmits | "
                 "duplicates | reorder overflows | offsets lost | check |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|\n" +
                 runsMd_;
        if (!failures_.empty()) {
            s += "\n**" + std::to_string(failures_.size()) + " row(s) FAILED**:\n\n";
            for (const auto& f : failures_) s += "- " + f + "\n";
        }
        return s;
    }
    const std::vector<std::string>& failures() const { return failures_; }

private:
    std::string md_, runsMd_;
    std::vector<std::string> failures_;
};

// Per-round summary line for the text output.
std::string roundLine(std::size_t i, const Round& r, bool latency) {
    char value[64];
    if (latency) std::snprintf(value, sizeof value, "p99.9 %.1f us", r.value / 1e3);
    else std::snprintf(value, sizeof value, "%s msg/s", fmtRate(r.value).c_str());
    char buf[512];
    std::snprintf(buf, sizeof buf,
                  "    run %zu: %s; %llu/%llu delivered, %llu injected drops (confirmations %llu, PUBs %llu, NAKs %llu, DATA %llu, "
                  "unicast replies %llu),\n      %llu gaps, %llu NAKs, %llu retransmits, "
                  "%llu publisher retransmits, %llu duplicates, %llu reorder overflows, %llu lost%s\n",
                  i + 1, value, static_cast<unsigned long long>(r.delivered),
                  static_cast<unsigned long long>(r.offered), static_cast<unsigned long long>(r.injectedDrops),
                  static_cast<unsigned long long>(r.dropsPublisher), static_cast<unsigned long long>(r.dropsSeqControl),
                  static_cast<unsigned long long>(r.dropsSeqData), static_cast<unsigned long long>(r.dropsSubData),
                  static_cast<unsigned long long>(r.dropsSubControl), static_cast<unsigned long long>(r.gaps),
                  static_cast<unsigned long long>(r.naks), static_cast<unsigned long long>(r.retransmits),
                  static_cast<unsigned long long>(r.pubRetransmits), static_cast<unsigned long long>(r.duplicates),
                  static_cast<unsigned long long>(r.overflow), static_cast<unsigned long long>(r.lost), r.failure.empty() ? "" : " -> FAILED");
    return buf;
}

}  // namespace

namespace {

struct Ctx {
    Rng& rng;
    Report& out;
    std::uint64_t runs;
    double seconds;
    bool busy;
    std::vector<transport::SocketApi> apis;
    transport::SocketApi mainApi;
    InjectedFailure inject;

    PipelineOptions options(transport::SocketApi api) const {
        PipelineOptions o;
        o.busyPoll = busy;
        o.api = api;
        o.inject = inject;
        return o;
    }
    std::string medianOf() const {
        char buf[64];
        std::snprintf(buf, sizeof buf, "median of %llu x %.1fs", static_cast<unsigned long long>(runs), seconds);
        return buf;
    }
    void colocationNote() const {
        if (busy)
            out.print("  --busy-poll: the publisher's thread also runs the sequencer in these rows (two spinning threads in all, "
                      "for a 2-core machine)\n");
    }
};

void throughputSuite(Ctx& c) {
    Report& out = c.out;
    out.printf("sequenced throughput: 1 publisher -> sequencer -> 1 subscriber, loopback multicast, %s; every run must deliver\n"
               "  every message it offered (checked after the run); in every suite the publisher holds back while the slowest\n"
               "  subscriber is more than half the sequencer's ring behind (in-process back-pressure; the fabric has no flow control)\n",
               c.medianOf().c_str());
    out.print("  baselines (same run, same socket API, as msgs/s): raw datagrams of the sequenced datagram's size from one socket\n"
              "  to a group member (counted as received), plain and GSO/GRO; msgs/s = datagrams/s x messages per datagram\n");
    out.printf("  %-6s %-6s %-8s %12s %9s | %14s %6s | %14s %6s\n", "size", "api", "sockets", "msgs/s", "MB/s", "raw plain", "ratio",
               "raw GSO/GRO", "ratio");
    out.j.key("throughput").beginArray();
    for (std::size_t size : {std::size_t{32}, std::size_t{256}, std::size_t{1024}}) {
        const std::size_t k = perDatagram(size, wire::kDefaultMtu);
        const std::size_t dg = wire::kHeaderSize + k * (wire::kMessageHeaderSize + size);
        for (transport::SocketApi api : c.apis) {
            std::vector<double> rawPlain, rawGso;
            for (std::uint64_t r = 0; r < c.runs; ++r) {
                rawPlain.push_back(rawDatagramsPerSec(c.rng, dg, c.seconds, false, api));
                rawGso.push_back(rawDatagramsPerSec(c.rng, dg, c.seconds, true, api));
            }
            const double plainMsgs = median(rawPlain) * static_cast<double>(k);
            const double gsoMsgs = median(rawGso) * static_cast<double>(k);
            for (bool gso : {false, true}) {
                std::vector<Round> rounds;
                for (std::uint64_t r = 0; r < c.runs; ++r) {
                    PipelineOptions o = c.options(api);
                    o.gso = gso;
                    rounds.push_back(sequencedThroughput(c.rng, size, c.seconds, o));
                }
                const double m = median(values(rounds));
                const char* kind = gso ? "GSO/GRO" : "plain";
                const std::string row = "throughput " + std::to_string(size) + " B, " + apiName(api) + " " + kind;
                out.j.begin();
                out.j.field("size", static_cast<std::uint64_t>(size));
                out.j.field("api", std::string(apiName(api)));
                out.j.field("sockets", std::string(kind));
                out.j.field("raw_datagram_size", static_cast<std::uint64_t>(dg));
                out.j.field("messages_per_datagram", static_cast<std::uint64_t>(k));
                out.j.field("raw_plain_msgs_per_sec", plainMsgs);
                out.j.field("raw_gso_msgs_per_sec", gsoMsgs);
                if (!out.failed(row, rounds)) {
                    out.printf("  %-6zu %-6s %-8s %12s %9.1f | %14s %6.2f | %14s %6.2f\n", size, apiName(api), kind, fmtRate(m).c_str(),
                               m * static_cast<double>(size) / 1e6, fmtRate(plainMsgs).c_str(), ratio(m, plainMsgs),
                               fmtRate(gsoMsgs).c_str(), ratio(m, gsoMsgs));
                    out.j.field("msgs_per_sec", m);
                    out.j.field("mb_per_sec", m * static_cast<double>(size) / 1e6);
                    out.j.field("ratio_to_plain", ratio(m, plainMsgs));
                    out.j.field("ratio_to_gso", ratio(m, gsoMsgs));
                    char res[128], basel[160], rat[64];
                    std::snprintf(res, sizeof res, "%s msg/s (%.1f MB/s)", fmtRate(m).c_str(), m * static_cast<double>(size) / 1e6);
                    std::snprintf(basel, sizeof basel, "raw %s: plain %s msg/s; GSO/GRO %s msg/s", apiName(api), fmtRate(plainMsgs).c_str(),
                                  fmtRate(gsoMsgs).c_str());
                    std::snprintf(rat, sizeof rat, "%.2f; %.2f", ratio(m, plainMsgs), ratio(m, gsoMsgs));
                    out.mdRow(row, res, basel, rat);
                }
                out.rounds("rounds", row, "msgs_per_sec", rounds);
                out.j.end();
            }
        }
    }
    out.j.endArray();
}

void latencySuite(Ctx& c) {
    Report& out = c.out;
    out.printf("end-to-end latency publish -> deliver (two UDP hops: publisher -> sequencer -> subscriber), 64 B messages at a\n"
               "  fixed rate, coordinated-omission corrected, %s; every message must be delivered\n",
               c.medianOf().c_str());
    c.colocationNote();
    out.print("  baseline (same run, same socket API): raw UDP ping-pong of 64 B at 10k round trips/s, one-way = RTT / 2 (one hop);\n"
              "  ratios set one-way beside one-way, p50 beside p50 and p99 beside p99; a lost ping fails the rows\n");
    out.j.key("latency").beginArray();
    for (transport::SocketApi api : c.apis) {
        const PingPong raw = rawPingPong(c.rng, std::max(1.0, c.seconds), c.busy, 7, 10'000, api);
        const double r50 = static_cast<double>(raw.oneWay.quantile(0.5)), r99 = static_cast<double>(raw.oneWay.quantile(0.99));
        out.printf("  %-5s raw one-way (RTT/2): p50 %.1f us  p99 %.1f us  (%llu pings, %llu lost)\n", apiName(api), r50 / 1e3, r99 / 1e3,
                   static_cast<unsigned long long>(raw.sent), static_cast<unsigned long long>(raw.lost));
        for (double rate : {10'000.0, 100'000.0}) {
            const std::string row = std::string("latency ") + apiName(api) + " @ " + fmtRate(rate) + " msg/s";
            out.j.begin();
            out.j.field("api", std::string(apiName(api)));
            out.j.field("rate", rate);
            out.j.field("raw_pings", raw.sent);
            out.j.field("raw_pings_lost", raw.lost);
            if (raw.lost > 0 || raw.rtt.count() == 0) {
                out.fail(row, "raw ping-pong baseline: " + std::to_string(raw.lost) + " of " + std::to_string(raw.sent) + " pings lost");
                out.j.end();
                continue;
            }
            const LatencyResult l = fixedRateLatency(c.rng, rate, c.seconds, c.runs, c.options(api));
            if (!out.failed(row, l.rounds)) {
                out.printf("  %-5s %7s msg/s: p50 %.1f us  p99 %.1f us  p99.9 %.1f us  max %.1f us   (ratio to raw one-way: p50 %.2f, p99 %.2f)\n",
                           apiName(api), fmtRate(rate).c_str(), l.p50 / 1e3, l.p99 / 1e3, l.p999 / 1e3, l.max / 1e3, ratio(l.p50, r50),
                           ratio(l.p99, r99));
                out.j.field("p50_ns", l.p50);
                out.j.field("p99_ns", l.p99);
                out.j.field("p999_ns", l.p999);
                out.j.field("max_ns", l.max);
                out.j.field("raw_one_way_p50_ns", r50);
                out.j.field("raw_one_way_p99_ns", r99);
                out.j.field("raw_rtt_p50_ns", static_cast<double>(raw.rtt.quantile(0.5)));
                out.j.field("ratio_p50_to_raw_one_way_p50", ratio(l.p50, r50));
                out.j.field("ratio_p99_to_raw_one_way_p99", ratio(l.p99, r99));
                char res[160], basel[128], rat[64];
                std::snprintf(res, sizeof res, "p50 %.1f us, p99 %.1f us, p99.9 %.1f us, max %.1f us", l.p50 / 1e3, l.p99 / 1e3,
                              l.p999 / 1e3, l.max / 1e3);
                std::snprintf(basel, sizeof basel, "raw %s one-way (RTT/2): p50 %.1f us, p99 %.1f us", apiName(api), r50 / 1e3, r99 / 1e3);
                std::snprintf(rat, sizeof rat, "p50 %.2f; p99 %.2f", ratio(l.p50, r50), ratio(l.p99, r99));
                out.mdRow(row, res, basel, rat);
            }
            out.rounds("rounds", row, "p999_ns", l.rounds);
            out.j.end();
        }
    }
    out.j.endArray();
}

void repairSuite(Ctx& c) {
    Report& out = c.out;
    const char* api = apiName(c.mainApi);
    out.printf("repair under loss (%s, %s): random loss on receive at every socket (the publisher's, the sequencer's control and\n"
               "  data sockets, each subscriber's data and control sockets), so PUBs, confirmations, DATA, NAKs and retransmissions\n"
               "  are each lost with that probability at every hop; repaired by publisher retransmission and subscriber NAKs.\n"
               "  A run that declares offsets lost, or delivers fewer messages than it offered, fails.\n",
               api, c.medianOf().c_str());
    c.colocationNote();
    out.j.key("repair").begin();
    out.j.key("loss_on").str("every socket");
    // Latency: 10k msg/s of 64 B, p99.9 with 0.1 % loss beside p99.9 without, same run.
    const double latSeconds = 2 * c.seconds;  // p99.9 wants >= 10k samples per run at the default
    {
        const std::string row = std::string("repair tail @ 10k msg/s, 0.1% loss (") + api + ")";
        PipelineOptions o = c.options(c.mainApi);
        const LatencyResult clean = fixedRateLatency(c.rng, 10'000, latSeconds, c.runs, o);
        o.loss = 0.001;
        const LatencyResult lossy = fixedRateLatency(c.rng, 10'000, latSeconds, c.runs, o);
        out.j.key("latency").begin();
        out.j.field("rate", 10'000.0);
        out.j.field("loss", 0.001);
        std::vector<Round> both = clean.rounds;
        both.insert(both.end(), lossy.rounds.begin(), lossy.rounds.end());
        if (!out.failed(row, both)) {
            out.printf("  10k msg/s, 0.1%% loss: p50 %.1f us  p99 %.1f us  p99.9 %.1f us  max %.1f us (%.0f repaired per run)\n"
                       "  10k msg/s, no loss:   p50 %.1f us  p99 %.1f us  p99.9 %.1f us  max %.1f us\n"
                       "  p99.9 with loss / p99.9 without = %.2f; p99 with loss / p99 without = %.2f\n",
                       lossy.p50 / 1e3, lossy.p99 / 1e3, lossy.p999 / 1e3, lossy.max / 1e3, lossy.repaired, clean.p50 / 1e3,
                       clean.p99 / 1e3, clean.p999 / 1e3, clean.max / 1e3, ratio(lossy.p999, clean.p999), ratio(lossy.p99, clean.p99));
            out.j.field("loss_p50_ns", lossy.p50);
            out.j.field("loss_p99_ns", lossy.p99);
            out.j.field("loss_p999_ns", lossy.p999);
            out.j.field("loss_max_ns", lossy.max);
            out.j.field("loss_repaired_per_run", lossy.repaired);
            out.j.field("no_loss_p50_ns", clean.p50);
            out.j.field("no_loss_p99_ns", clean.p99);
            out.j.field("no_loss_p999_ns", clean.p999);
            out.j.field("ratio_p999_loss_to_p999_no_loss", ratio(lossy.p999, clean.p999));
            out.j.field("ratio_p99_loss_to_p99_no_loss", ratio(lossy.p99, clean.p99));
            char res[96], basel[96], rat[32];
            std::snprintf(res, sizeof res, "p99.9 %.1f us (p99 %.1f us)", lossy.p999 / 1e3, lossy.p99 / 1e3);
            std::snprintf(basel, sizeof basel, "no loss: p99.9 %.1f us (p99 %.1f us)", clean.p999 / 1e3, clean.p99 / 1e3);
            std::snprintf(rat, sizeof rat, "%.2f (p99 %.2f)", ratio(lossy.p999, clean.p999), ratio(lossy.p99, clean.p99));
            out.mdRow(row + ", every socket", res, basel, rat);
        }
        for (std::size_t i = 0; i < lossy.rounds.size(); ++i) out.print(roundLine(i, lossy.rounds[i], true));
        out.rounds("loss_rounds", row + ", loss", "p999_ns", lossy.rounds);
        out.rounds("no_loss_rounds", row + ", no loss", "p999_ns", clean.rounds);
        out.j.end();
    }
    // Throughput: as fast as the publisher goes, with 1 % loss against none.
    out.j.key("throughput").beginArray();
    for (std::size_t size : {std::size_t{32}, std::size_t{1024}}) {
        std::vector<Round> clean, lossy;
        for (std::uint64_t r = 0; r < c.runs; ++r) {
            PipelineOptions t = c.options(c.mainApi);
            t.gso = true;
            clean.push_back(sequencedThroughput(c.rng, size, c.seconds, t));
            t.loss = 0.01;
            lossy.push_back(sequencedThroughput(c.rng, size, c.seconds, t));
        }
        const double cm = median(values(clean)), lm = median(values(lossy));
        const std::string row = "throughput " + std::to_string(size) + " B, 1% loss (" + api + " GSO/GRO)";
        out.j.begin();
        out.j.field("size", static_cast<std::uint64_t>(size));
        out.j.field("loss", 0.01);
        std::vector<Round> both = clean;
        both.insert(both.end(), lossy.begin(), lossy.end());
        if (!out.failed(row, both)) {
            out.printf("  throughput %zu B, GSO/GRO: 1%% loss %s msg/s, no loss %s msg/s: ratio %.2f\n", size, fmtRate(lm).c_str(),
                       fmtRate(cm).c_str(), ratio(lm, cm));
            out.j.field("loss_msgs_per_sec", lm);
            out.j.field("no_loss_msgs_per_sec", cm);
            out.j.field("ratio", ratio(lm, cm));
            char res[64], basel[64], rat[32];
            std::snprintf(res, sizeof res, "%s msg/s", fmtRate(lm).c_str());
            std::snprintf(basel, sizeof basel, "no loss %s msg/s", fmtRate(cm).c_str());
            std::snprintf(rat, sizeof rat, "%.2f", ratio(lm, cm));
            out.mdRow(row + ", every socket", res, basel, rat);
        }
        for (std::size_t i = 0; i < lossy.size(); ++i) out.print(roundLine(i, lossy[i], false));
        out.rounds("loss_rounds", row + ", loss", "msgs_per_sec", lossy);
        out.rounds("no_loss_rounds", row + ", no loss", "msgs_per_sec", clean);
        out.j.end();
    }
    out.j.endArray();
    out.j.end();
}

void scalingSuite(Ctx& c) {
    Report& out = c.out;
    out.printf("scaling (%s, GSO/GRO, 256 B, %s): every publisher is driven by one thread and every subscriber by one other\n"
               "  thread (all N subscribers share that thread and its core, as N processes would not), each with its own sockets;\n"
               "  msgs/s that every subscriber delivered, and the ratio to 1 publisher x 1 subscriber in this run\n",
               apiName(c.mainApi), c.medianOf().c_str());
    out.j.key("scaling").beginArray();
    double base = 0;
    for (unsigned subs : {1u, 4u, 8u}) {
        for (unsigned pubs : {1u, 2u, 4u}) {
            std::vector<Round> rounds;
            for (std::uint64_t r = 0; r < c.runs; ++r) {
                PipelineOptions o = c.options(c.mainApi);
                o.gso = true;
                o.publishers = pubs;
                o.subscribers = subs;
                rounds.push_back(sequencedThroughput(c.rng, 256, c.seconds, o));
            }
            const double v = median(values(rounds));
            if (pubs == 1 && subs == 1) base = v;
            char rowc[96];
            std::snprintf(rowc, sizeof rowc, "scaling %u pub x %u sub (256 B, subscribers on 1 thread)", pubs, subs);
            out.j.begin();
            out.j.field("publishers", static_cast<std::uint64_t>(pubs));
            out.j.field("subscribers", static_cast<std::uint64_t>(subs));
            out.j.field("publisher_threads", std::uint64_t{1});
            out.j.field("subscriber_threads", std::uint64_t{1});
            if (!out.failed(rowc, rounds)) {
                out.printf("  %u pub x %u sub: %10s msg/s each sub, %10s deliveries/s in all   ratio %.2f\n", pubs, subs, fmtRate(v).c_str(),
                           fmtRate(v * subs).c_str(), ratio(v, base));
                out.j.field("msgs_per_sec_per_subscriber", v);
                out.j.field("deliveries_per_sec", v * subs);
                out.j.field("ratio_to_1x1", ratio(v, base));
                char res[64], basel[64], rat[32];
                std::snprintf(res, sizeof res, "%s msg/s per sub", fmtRate(v).c_str());
                std::snprintf(basel, sizeof basel, "1x1 %s msg/s", fmtRate(base).c_str());
                std::snprintf(rat, sizeof rat, "%.2f", ratio(v, base));
                out.mdRow(rowc, res, basel, rat);
            }
            out.rounds("rounds", rowc, "msgs_per_sec", rounds);
            out.j.end();
        }
    }
    out.j.endArray();
}

void authSuite(Ctx& c) {
    Report& out = c.out;
    // A throwaway key file (mode 600) with one random key.
    char path[] = "/tmp/seqcast-bench-keys-XXXXXX";
    const int fd = ::mkstemp(path);
    std::string keyHex;
    for (int i = 0; i < 32; ++i) {
        char b[3];
        std::snprintf(b, sizeof b, "%02x", static_cast<unsigned>(c.rng.below(256)));
        keyHex += b;
    }
    const std::string text = "1 " + keyHex + "\n";
    const bool ok = fd >= 0 && ::fchmod(fd, 0600) == 0 && ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
    if (fd >= 0) ::close(fd);
    out.j.key("auth").beginArray();
    if (!ok) {
        out.j.begin();
        out.fail("auth", "cannot write a key file in /tmp");
        out.j.end();
        out.j.endArray();
        if (fd >= 0) ::unlink(path);
        return;
    }
    const char* api = apiName(c.mainApi);
    out.printf("authenticated frames (%s, %s): a ChaCha20-Poly1305 tag on every datagram (--auth-key), against the same\n"
               "  pipeline without, runs alternating; every run must deliver every message\n",
               api, c.medianOf().c_str());
    for (std::size_t size : {std::size_t{32}, std::size_t{1024}}) {
        std::vector<Round> plain, signedR;
        for (std::uint64_t r = 0; r < c.runs; ++r) {
            PipelineOptions o = c.options(c.mainApi);
            o.gso = true;
            plain.push_back(sequencedThroughput(c.rng, size, c.seconds, o));
            o.authKeyFile = path;
            signedR.push_back(sequencedThroughput(c.rng, size, c.seconds, o));
        }
        const double pm = median(values(plain)), am = median(values(signedR));
        const std::string row = "throughput " + std::to_string(size) + " B with --auth-key (" + api + " GSO/GRO)";
        out.j.begin();
        out.j.field("size", static_cast<std::uint64_t>(size));
        std::vector<Round> both = plain;
        both.insert(both.end(), signedR.begin(), signedR.end());
        if (!out.failed(row, both)) {
            out.printf("  throughput %4zu B: %s msg/s signed, %s msg/s without: ratio %.2f\n", size, fmtRate(am).c_str(),
                       fmtRate(pm).c_str(), ratio(am, pm));
            out.j.field("auth_msgs_per_sec", am);
            out.j.field("plain_msgs_per_sec", pm);
            out.j.field("ratio", ratio(am, pm));
            char res[64], basel[64], rat[32];
            std::snprintf(res, sizeof res, "%s msg/s", fmtRate(am).c_str());
            std::snprintf(basel, sizeof basel, "without %s msg/s", fmtRate(pm).c_str());
            std::snprintf(rat, sizeof rat, "%.2f", ratio(am, pm));
            out.mdRow(row, res, basel, rat);
        }
        out.rounds("auth_rounds", row + ", signed", "msgs_per_sec", signedR);
        out.rounds("plain_rounds", row + ", without", "msgs_per_sec", plain);
        out.j.end();
    }
    c.colocationNote();
    PipelineOptions o = c.options(c.mainApi);
    const LatencyResult plainL = fixedRateLatency(c.rng, 10'000, c.seconds, c.runs, o);
    o.authKeyFile = path;
    const LatencyResult authL = fixedRateLatency(c.rng, 10'000, c.seconds, c.runs, o);
    const std::string row = std::string("latency @ 10k msg/s with --auth-key (") + api + ")";
    out.j.begin();
    out.j.field("rate", 10'000.0);
    std::vector<Round> both = plainL.rounds;
    both.insert(both.end(), authL.rounds.begin(), authL.rounds.end());
    if (!out.failed(row, both)) {
        out.printf("  latency at 10k msg/s: p50 %.1f us, p99 %.1f us signed; p50 %.1f us, p99 %.1f us without: p50 %+.1f us, ratio %.2f\n",
                   authL.p50 / 1e3, authL.p99 / 1e3, plainL.p50 / 1e3, plainL.p99 / 1e3, (authL.p50 - plainL.p50) / 1e3,
                   ratio(authL.p50, plainL.p50));
        out.j.field("auth_p50_ns", authL.p50);
        out.j.field("auth_p99_ns", authL.p99);
        out.j.field("plain_p50_ns", plainL.p50);
        out.j.field("plain_p99_ns", plainL.p99);
        out.j.field("p50_difference_ns", authL.p50 - plainL.p50);
        out.j.field("ratio_p50", ratio(authL.p50, plainL.p50));
        char res[96], basel[96], rat[48];
        std::snprintf(res, sizeof res, "p50 %.1f us, p99 %.1f us", authL.p50 / 1e3, authL.p99 / 1e3);
        std::snprintf(basel, sizeof basel, "without: p50 %.1f us, p99 %.1f us", plainL.p50 / 1e3, plainL.p99 / 1e3);
        std::snprintf(rat, sizeof rat, "p50 %.2f (%+.1f us)", ratio(authL.p50, plainL.p50), (authL.p50 - plainL.p50) / 1e3);
        out.mdRow(row, res, basel, rat);
    }
    out.rounds("auth_rounds", row + ", signed", "p999_ns", authL.rounds);
    out.rounds("plain_rounds", row + ", without", "p999_ns", plainL.rounds);
    out.j.end();
    out.j.endArray();
    ::unlink(path);
}

// The public API's cost: the same pipeline (sequencer thread, subscriber thread, publisher on the
// caller's thread, real loopback multicast sockets) with the publisher and subscriber built from
// libseqcast's seqcast::Publisher / Subscriber, against the engine's classes; runs alternate.
void apiSuite(Ctx& c) {
    Report& out = c.out;
    const char* api = apiName(c.mainApi);
    out.printf("public API (%s, GSO/GRO, %s): publisher and subscriber as libseqcast clients (seqcast::Publisher,\n"
               "  seqcast::Subscriber) against the engine's classes in the same pipeline, runs alternating (and which goes first); latency rows\n"
               "  stamp each message when offered on both sides (the API's offer() does); every run must deliver every message\n",
               api, c.medianOf().c_str());
    out.j.key("api").beginArray();
    for (std::size_t size : {std::size_t{32}, std::size_t{1024}}) {
        std::vector<Round> engine, client;
        for (std::uint64_t r = 0; r < c.runs; ++r) {
            // Which goes first alternates too, so neither always follows the other's teardown.
            PipelineOptions o = c.options(c.mainApi);
            o.gso = true;
            for (int k = 0; k < 2; ++k) {
                o.publicApi = (k == 0) == (r % 2 == 1);
                (o.publicApi ? client : engine).push_back(sequencedThroughput(c.rng, size, c.seconds, o));
            }
        }
        const double em = median(values(engine)), am = median(values(client));
        const std::string row = "throughput " + std::to_string(size) + " B through the public API (" + api + " GSO/GRO)";
        out.j.begin();
        out.j.field("size", static_cast<std::uint64_t>(size));
        std::vector<Round> both = engine;
        both.insert(both.end(), client.begin(), client.end());
        if (!out.failed(row, both)) {
            // Each API run against the engine run beside it: the machine drifts less within a
            // pair than across the whole series. Their median and middle half show the spread.
            std::vector<double> paired;
            for (std::size_t k = 0; k < client.size() && k < engine.size(); ++k) paired.push_back(ratio(client[k].value, engine[k].value));
            const double pm = median(paired), q1 = quantile(paired, 0.25), q3 = quantile(paired, 0.75);
            out.printf("  throughput %4zu B: %s msg/s through the API, %s msg/s engine: ratio %.3f (pairs: median %.3f, middle half %.3f..%.3f)\n",
                       size, fmtRate(am).c_str(), fmtRate(em).c_str(), ratio(am, em), pm, q1, q3);
            out.j.field("api_msgs_per_sec", am);
            out.j.field("engine_msgs_per_sec", em);
            out.j.field("ratio", ratio(am, em));
            out.j.field("paired_ratio_median", pm);
            out.j.field("paired_ratio_q1", q1);
            out.j.field("paired_ratio_q3", q3);
            // What the API adds where it runs, less exposed to how the two vCPUs were shared out.
            auto cpuOf = [](const std::vector<Round>& rs, double Round::*f) {
                std::vector<double> v;
                for (const Round& x : rs) v.push_back(x.*f);
                return median(v);
            };
            const double apc = cpuOf(client, &Round::pubCpuNsPerMsg), epc = cpuOf(engine, &Round::pubCpuNsPerMsg);
            const double asc = cpuOf(client, &Round::subCpuNsPerMsg), esc = cpuOf(engine, &Round::subCpuNsPerMsg);
            out.printf("  CPU per message %4zu B: publisher thread %.0f ns through the API, %.0f ns engine (ratio %.3f); "
                       "subscriber thread %.0f / %.0f ns (ratio %.3f)\n",
                       size, apc, epc, ratio(apc, epc), asc, esc, ratio(asc, esc));
            out.j.field("api_pub_cpu_ns_per_msg", apc);
            out.j.field("engine_pub_cpu_ns_per_msg", epc);
            out.j.field("api_sub_cpu_ns_per_msg", asc);
            out.j.field("engine_sub_cpu_ns_per_msg", esc);
            char res[64], basel[64], rat[32];
            std::snprintf(res, sizeof res, "%s msg/s", fmtRate(am).c_str());
            std::snprintf(basel, sizeof basel, "engine %s msg/s", fmtRate(em).c_str());
            std::snprintf(rat, sizeof rat, "%.3f", ratio(am, em));
            out.mdRow(row, res, basel, rat);
        }
        out.rounds("api_rounds", row + ", API", "msgs_per_sec", client);
        out.rounds("engine_rounds", row + ", engine", "msgs_per_sec", engine);
        out.j.end();
    }
    c.colocationNote();
    std::vector<double> ep50, ep99, ap50, ap99;
    std::vector<Round> engineR, clientR;
    for (std::uint64_t r = 0; r < c.runs; ++r) {
        PipelineOptions o = c.options(c.mainApi);
        o.stampAtOffer = true;
        LatencyResult e, a;
        for (int k = 0; k < 2; ++k) {
            o.publicApi = (k == 0) == (r % 2 == 1);
            (o.publicApi ? a : e) = fixedRateLatency(c.rng, 10'000, c.seconds, 1, o);
        }
        ep50.push_back(e.p50);
        ep99.push_back(e.p99);
        ap50.push_back(a.p50);
        ap99.push_back(a.p99);
        engineR.insert(engineR.end(), e.rounds.begin(), e.rounds.end());
        clientR.insert(clientR.end(), a.rounds.begin(), a.rounds.end());
    }
    const double e50 = median(ep50), e99 = median(ep99), a50 = median(ap50), a99 = median(ap99);
    const std::string row = std::string("latency @ 10k msg/s through the public API (") + api + ")";
    out.j.begin();
    out.j.field("rate", 10'000.0);
    std::vector<Round> both = engineR;
    both.insert(both.end(), clientR.begin(), clientR.end());
    if (!out.failed(row, both)) {
        out.printf("  latency at 10k msg/s: p50 %.1f us, p99 %.1f us through the API; p50 %.1f us, p99 %.1f us engine: "
                   "ratio p50 %.3f, p99 %.3f\n",
                   a50 / 1e3, a99 / 1e3, e50 / 1e3, e99 / 1e3, ratio(a50, e50), ratio(a99, e99));
        out.j.field("api_p50_ns", a50);
        out.j.field("api_p99_ns", a99);
        out.j.field("engine_p50_ns", e50);
        out.j.field("engine_p99_ns", e99);
        out.j.field("ratio_p50", ratio(a50, e50));
        out.j.field("ratio_p99", ratio(a99, e99));
        char res[96], basel[96], rat[48];
        std::snprintf(res, sizeof res, "p50 %.1f us, p99 %.1f us", a50 / 1e3, a99 / 1e3);
        std::snprintf(basel, sizeof basel, "engine: p50 %.1f us, p99 %.1f us", e50 / 1e3, e99 / 1e3);
        std::snprintf(rat, sizeof rat, "p50 %.3f, p99 %.3f", ratio(a50, e50), ratio(a99, e99));
        out.mdRow(row, res, basel, rat);
    }
    out.rounds("api_rounds", row + ", API", "p999_ns", clientR);
    out.rounds("engine_rounds", row + ", engine", "p999_ns", engineR);
    out.j.end();
    out.j.endArray();
}

// The gateways beside a plain subscriber of the same stream (perf/gateway_bench.h): the MoldUDP64
// egress's delivered messages per second, and a SoupBinTCP server's with 50 clients.
void gatewaySuite(Ctx& c) {
    Report& out = c.out;
    const std::uint64_t moldCount = static_cast<std::uint64_t>(std::max(20'000.0, c.seconds * 300'000));
    const std::uint64_t soupCount = static_cast<std::uint64_t>(std::max(20'000.0, c.seconds * 200'000));
    constexpr unsigned kClients = 50;
    out.printf("gateways (udp, %s runs): one process; an embedded sequencer, a publisher offering ITCH 5.0 messages (23..44 B) as fast as\n"
               "  its window allows, a seqcast subscriber (the baseline), each on a thread; rates are messages delivered per second from\n"
               "  the first offer to each consumer's last message; a run in which any consumer misses a message fails\n",
               std::to_string(c.runs).c_str());
    const bool injectLoss = c.inject == InjectedFailure::Loss;
    out.j.key("gateway").beginArray();
    auto runRow = [&](const std::string& row, const char* what, bool clients, auto&& run) {
        std::vector<Round> rounds;
        std::vector<double> gw, sub, agg;
        std::vector<GatewayResult> results;
        for (std::uint64_t r = 0; r < c.runs; ++r) {
            const GatewayResult g = run();
            results.push_back(g);
            Round x;
            x.offered = g.offered;
            x.delivered = g.gatewayDelivered;
            x.value = g.gatewayMsgsPerSec;
            x.failure = g.failure;
            rounds.push_back(x);
            gw.push_back(g.gatewayMsgsPerSec);
            sub.push_back(g.subMsgsPerSec);
            agg.push_back(g.aggregateMsgsPerSec);
            out.printf("    run %llu: %s %s msg/s%s%s%s, subscriber %s msg/s; %llu offered, %llu/%llu delivered, %llu lost%s%s\n",
                       static_cast<unsigned long long>(r + 1), what, fmtRate(g.gatewayMsgsPerSec).c_str(),
                       clients ? " (all clients together " : "", clients ? fmtRate(g.aggregateMsgsPerSec).c_str() : "",
                       clients ? " msg/s)" : "", fmtRate(g.subMsgsPerSec).c_str(), static_cast<unsigned long long>(g.offered),
                       static_cast<unsigned long long>(g.gatewayDelivered), static_cast<unsigned long long>(g.subDelivered),
                       static_cast<unsigned long long>(g.lost), g.failure.empty() ? "" : " -> FAILED: ", g.failure.c_str());
        }
        out.j.begin();
        out.j.field("row", row);
        if (!out.failed(row, rounds)) {
            const double gm = median(gw), sm = median(sub), am = median(agg);
            out.printf("  %s: %s msg/s%s%s%s, subscriber %s msg/s: ratio %.3f\n", row.c_str(), fmtRate(gm).c_str(),
                       clients ? " (all clients together " : "", clients ? fmtRate(am).c_str() : "", clients ? " msg/s)" : "",
                       fmtRate(sm).c_str(), ratio(gm, sm));
            out.j.field("gateway_msgs_per_sec", gm);
            if (clients) out.j.field("aggregate_msgs_per_sec", am);
            out.j.field("subscriber_msgs_per_sec", sm);
            out.j.field("ratio", ratio(gm, sm));
            char res[96], basel[64], rat[32];
            if (clients) std::snprintf(res, sizeof res, "%s msg/s per client (together %s msg/s)", fmtRate(gm).c_str(), fmtRate(am).c_str());
            else std::snprintf(res, sizeof res, "%s msg/s", fmtRate(gm).c_str());
            std::snprintf(basel, sizeof basel, "subscriber %s msg/s", fmtRate(sm).c_str());
            std::snprintf(rat, sizeof rat, "%.3f", ratio(gm, sm));
            out.mdRow(row, res, basel, rat);
        }
        out.j.key("rounds").beginArray();
        for (const GatewayResult& g : results) {
            out.j.begin();
            out.j.field("offered", g.offered);
            out.j.field("delivered_by_every_subscriber", std::min(g.subDelivered, g.gatewayDelivered));
            out.j.field("offsets_lost", g.lost);
            out.j.field("gateway_msgs_per_sec", g.gatewayMsgsPerSec);
            out.j.field("subscriber_msgs_per_sec", g.subMsgsPerSec);
            if (!g.failure.empty()) out.j.field("failure", g.failure);
            out.j.end();
        }
        out.j.endArray();
        out.j.end();
    };
    runRow("MoldUDP64 egress, " + std::to_string(moldCount) + " messages", "egress (received and decoded)", false,
           [&] { return moldEgressRun(c.rng, moldCount, 60, injectLoss); });
    runRow("SoupBinTCP server, " + std::to_string(kClients) + " clients, " + std::to_string(soupCount) + " messages",
           "median client", true, [&] { return soupServerRun(c.rng, soupCount, kClients, 120, injectLoss); });
    out.j.endArray();
}

void archiveSuite(Ctx& c, const std::string& dir) {
    Report& out = c.out;
    constexpr std::size_t kSize = 1024;
    out.printf("archive (%s, 1 KiB messages, log in %s, %s): an archiver records the stream beside one subscriber;\n"
               "  recorded = offsets written into the log per second from the first offer until the last is written, beside the\n"
               "  subscriber's msgs/s until it has delivered the last (recording goes no faster than the stream: where the two\n"
               "  are equal the stream, not the disk, is the limit);\n"
               "  baseline: raw sequential writes of 1 MiB registered buffers, 8 in flight, through the archive's own file I/O\n"
               "  (io_uring), same file system, same run, then one fdatasync; replay = the whole log replayed to one client.\n"
               "  A run whose subscriber or archiver misses an offset, or whose replay misses one, fails.\n",
               apiName(c.mainApi), dir.c_str(), c.medianOf().c_str());
    out.j.key("archive").begin();
    out.j.field("dir", dir);
    out.j.field("message_size", static_cast<std::uint64_t>(kSize));
    out.j.key("rows").beginArray();
    for (bool direct : {false, true}) {
        const char* io = direct ? "O_DIRECT" : "buffered";
        std::vector<double> raw;
        std::string rawFailure;
        bool uring = false, noDirect = false;
        for (std::uint64_t r = 0; r < c.runs && rawFailure.empty(); ++r) {
            const RawWrite w = rawSequentialWrite(dir, direct, c.seconds);
            rawFailure = w.failure;
            noDirect = w.noDirect;
            uring = w.uring;
            raw.push_back(w.mbPerSec);
        }
        if (noDirect) {
            out.printf("  O_DIRECT rows skipped: the file system of %s refuses O_DIRECT (%s); --dir on a disk measures them\n",
                       dir.c_str(), rawFailure.c_str());
            out.j.begin();
            out.j.field("io", std::string(io));
            out.j.field("skipped", "the file system refuses O_DIRECT: " + rawFailure);
            out.j.end();
            continue;
        }
        const double rawMb = median(raw);
        if (rawFailure.empty())
            out.printf("  raw sequential write, %s (%s): %.1f MB/s\n", io, uring ? "io_uring" : "pwrite: io_uring unavailable", rawMb);
        for (const char* durName : {"none", "interval", "batch"}) {
            const std::string row = std::string("archive recording 1 KiB, durability ") + durName + ", " + io;
            out.j.begin();
            out.j.field("durability", std::string(durName));
            out.j.field("io", std::string(io));
            if (!rawFailure.empty()) {
                out.fail(row, "raw write baseline: " + rawFailure);
                out.j.end();
                continue;
            }
            std::vector<Round> rounds;
            std::vector<double> subs, replays;
            for (std::uint64_t r = 0; r < c.runs; ++r) {
                PipelineOptions o = c.options(c.mainApi);
                o.gso = true;
                o.archive.path = dir;
                o.archive.capacity = 1ull << 30;
                o.archive.segmentBytes = 16u << 20;
                o.archive.durability = *archive::parseDurability(durName);
                o.archive.direct = direct;
                const ArchiveRound a = archiveRun(c.rng, o, kSize, c.seconds);
                rounds.push_back(a.r);
                subs.push_back(a.subMsgs);
                replays.push_back(a.replay.seconds > 0 ? static_cast<double>(a.replay.delivered) / a.replay.seconds : 0);
            }
            const double rec = median(values(rounds)), sub = median(subs), rep = median(replays);
            const double recMb = rec * kSize / 1e6, repMb = rep * kSize / 1e6;
            out.j.field("raw_write_mb_per_sec", rawMb);
            out.j.key("raw_write_io_uring").boolean(uring);
            if (!out.failed(row, rounds)) {
                out.printf("  %-8s %-9s recorded %9s msg/s %7.1f MB/s (raw ratio %.2f) | subscriber %9s msg/s | replay %9s msg/s %7.1f MB/s "
                           "(ratio to recorded %.2f)\n",
                           durName, io, fmtRate(rec).c_str(), recMb, recMb / std::max(rawMb, 1e-9), fmtRate(sub).c_str(),
                           fmtRate(rep).c_str(), repMb, ratio(rep, rec));
                out.j.field("recorded_msgs_per_sec", rec);
                out.j.field("recorded_mb_per_sec", recMb);
                out.j.field("ratio_recorded_to_raw_write", recMb / std::max(rawMb, 1e-9));
                out.j.field("subscriber_msgs_per_sec", sub);
                out.j.field("ratio_recorded_to_subscriber", ratio(rec, sub));
                out.j.field("replay_msgs_per_sec", rep);
                out.j.field("replay_mb_per_sec", repMb);
                out.j.field("ratio_replay_to_recorded", ratio(rep, rec));
                char res[160], basel[128], rat[96];
                std::snprintf(res, sizeof res, "recorded %s msg/s (%.1f MB/s); replay %s msg/s (%.1f MB/s)", fmtRate(rec).c_str(), recMb,
                              fmtRate(rep).c_str(), repMb);
                std::snprintf(basel, sizeof basel, "raw %s sequential write %.1f MB/s; subscriber %s msg/s", io, rawMb, fmtRate(sub).c_str());
                std::snprintf(rat, sizeof rat, "%.2f of raw; replay %.2f of recorded", recMb / std::max(rawMb, 1e-9), ratio(rep, rec));
                out.mdRow(row, res, basel, rat);
            }
            out.rounds("rounds", row, "recorded_msgs_per_sec", rounds);
            out.j.end();
        }
    }
    out.j.endArray();
    out.j.end();
}

}  // namespace

int runBench(int argc, char** argv) {
    const CommandInfo info{
        "bench",
        "Measure sequenced throughput, end-to-end latency, repair under loss, scaling, the cost of authentication and the "
        "archiver's recording and replay against same-run baselines; every run is checked for lost messages, and a failed run exits 1.",
        "  seqcast bench\n  seqcast bench --suite throughput --runs 7 --seconds 2\n"
        "  seqcast bench --suite latency --busy-poll --transport uring\n"
        "  seqcast bench --suite archive --dir /var/tmp --runs 3\n"
        "  seqcast bench --suite gateway --runs 5\n"
        "  seqcast bench --json build/bench/seqcast.json --markdown build/bench/seqcast.md\n"};
    po::options_description d("Bench");
    d.add_options()
        ("suite", po::value<std::string>()->default_value("all"), "throughput, latency, repair, scaling, auth, api, archive, gateway or all")
        ("runs", po::value<std::string>()->default_value("5"), "runs per figure; the median is reported (1..50)")
        ("seconds", po::value<std::string>()->default_value("1"), "seconds per run (0.2..60)")
        ("transport", po::value<std::string>()->default_value("both"), "udp, uring or both: the socket API of every agent and of the baselines")
        ("busy-poll", "spin instead of sleeping in poll(); the latency rows then run the publisher and the sequencer on one thread")
        ("dir", po::value<std::string>()->default_value("."), "archive suite: where the logs and the raw-write file go (a real file system)")
        ("json", po::value<std::string>(), "write the results as JSON")
        ("markdown", po::value<std::string>(), "write the results as a Markdown table");
    po::variables_map vm;
    if (auto rc = parseCommandLine(info, argc, argv, d, vm)) return *rc;
    std::uint64_t runs;
    double seconds;
    std::string suite, dir;
    std::vector<transport::SocketApi> apis;
    InjectedFailure inject = InjectedFailure::None;
    try {
        runs = getU64(vm, "runs", 1, 50);
        seconds = getDouble(vm, "seconds", 0.2, 60);
        checkPath(vm, "json", PathUse::Write);
        checkPath(vm, "markdown", PathUse::Write);
        suite = vm["suite"].as<std::string>();
        if (suite != "all" && suite != "throughput" && suite != "latency" && suite != "repair" && suite != "scaling" &&
            suite != "auth" && suite != "api" && suite != "archive" && suite != "gateway")
            throw UsageError("--suite: '" + suite + "' must be throughput, latency, repair, scaling, auth, api, archive, gateway or all");
        dir = vm["dir"].as<std::string>();
        checkPath("dir", dir, PathUse::Directory);
        if (::access(dir.c_str(), W_OK | X_OK) != 0)
            throw UsageError("--dir: cannot write in the directory '" + dir + "': " + std::strerror(errno));
        const std::string t = vm["transport"].as<std::string>();
        if (t == "udp" || t == "both") apis.push_back(transport::SocketApi::Syscalls);
        if (t == "uring" || t == "both") apis.push_back(transport::SocketApi::Uring);
        if (apis.empty()) throw UsageError("--transport: '" + t + "' must be udp, uring or both");
        if (const char* e = std::getenv("SEQCAST_BENCH_INJECT_FAILURE"); e && *e) {
            const std::string v = e;
            if (v == "loss") inject = InjectedFailure::Loss;
            else if (v == "join") inject = InjectedFailure::Join;
            else throw UsageError("SEQCAST_BENCH_INJECT_FAILURE: '" + v + "' must be loss or join");
        }
    } catch (const UsageError& e) {
        std::cerr << "seqcast bench: " << e.what() << "\n";
        return kExitUsage;
    }
    if (std::find(apis.begin(), apis.end(), transport::SocketApi::Uring) != apis.end()) {
        if (auto ok = transport::uringSocketsAvailable(); !ok) {
            std::fprintf(stderr, "seqcast bench: io_uring unavailable (%s): measuring udp only\n", ok.error().message().c_str());
            apis = {transport::SocketApi::Syscalls};
        }
    }
    if (inject != InjectedFailure::None)
        std::fprintf(stderr, "seqcast bench: SEQCAST_BENCH_INJECT_FAILURE=%s: every run is made to fail on purpose\n",
                     inject == InjectedFailure::Loss ? "loss" : "join");
    const bool busy = vm.count("busy-poll") != 0;
    Rng rng(monoNs());
    Report out;
    Ctx c{rng, out, runs, seconds, busy, apis, apis.back() /* uring where available: the faster path */, inject};
    out.j.begin();
    out.j.field("runs", runs);
    out.j.field("seconds_per_run", seconds);
    out.j.key("busy_poll").boolean(busy);
    out.j.key("publisher_thread_runs_sequencer_in_latency_rows").boolean(busy);
    try {
        if (suite == "all" || suite == "throughput") throughputSuite(c);
        if (suite == "all" || suite == "latency") latencySuite(c);
        if (suite == "all" || suite == "repair") repairSuite(c);
        if (suite == "all" || suite == "scaling") scalingSuite(c);
        if (suite == "all" || suite == "auth") authSuite(c);
        if (suite == "all" || suite == "api") apiSuite(c);
        if (suite == "all" || suite == "archive") archiveSuite(c, dir);
        if (suite == "all" || suite == "gateway") gatewaySuite(c);
    } catch (const JoinFailure& e) {
        std::fprintf(stderr, "seqcast bench: FAILED: %s; nothing measured after this\n", e.what());
        std::printf("FAILED: %s\n", e.what());
        Json f;
        f.begin();
        f.field("failed", std::string(e.what()));
        f.end();
        if (vm.count("json")) writeFile(vm["json"].as<std::string>(), f.text());
        if (vm.count("markdown")) writeFile(vm["markdown"].as<std::string>(), std::string("**FAILED**: ") + e.what() + "\n");
        return 1;
    }
    out.j.key("failed_rows").beginArray();
    for (const auto& f : out.failures()) out.j.str(f);
    out.j.endArray();
    out.j.end();
    int rc = 0;
    if (vm.count("json") && !writeFile(vm["json"].as<std::string>(), out.j.text())) {
        std::fprintf(stderr, "seqcast bench: cannot write %s\n", vm["json"].as<std::string>().c_str());
        rc = 1;
    }
    if (vm.count("markdown") && !writeFile(vm["markdown"].as<std::string>(), out.markdown())) {
        std::fprintf(stderr, "seqcast bench: cannot write %s\n", vm["markdown"].as<std::string>().c_str());
        rc = 1;
    }
    if (!out.failures().empty()) {
        std::printf("FAILED: %zu row(s) did not deliver every message they offered; no figure is given for them\n", out.failures().size());
        std::fprintf(stderr, "seqcast bench: %zu row(s) FAILED\n", out.failures().size());
        rc = 1;
    }
    return rc;
}

}  // namespace seqcast::tools
