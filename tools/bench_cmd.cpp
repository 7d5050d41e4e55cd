// seqcast bench: sequenced throughput, end-to-end latency and repair latency, each printed beside
// a baseline measured in the same run (raw sendmmsg/recvmmsg datagrams, raw UDP ping-pong), as the
// median of several runs.
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <iostream>
#include <thread>

#include "fabric/clock.h"
#include "fabric/histogram.h"
#include "recovery/subscriber.h"
#include "sequencer/publisher.h"
#include "sequencer/sequencer.h"
#include "tools/commands.h"
#include "tools/common.h"
#include "tools/pipeline.h"
#include "transport/uring_transport.h"

namespace seqcast::tools {

namespace {

double median(std::vector<double> v) {
    if (v.empty()) return 0;
    std::sort(v.begin(), v.end());
    return v.size() % 2 ? v[v.size() / 2] : 0.5 * (v[v.size() / 2 - 1] + v[v.size() / 2]);
}

// Messages of `size` bytes packed into one MTU datagram by the sequencer.
std::size_t perDatagram(std::size_t size, std::size_t mtu) {
    return std::max<std::size_t>(1, (mtu - wire::kHeaderSize) / (wire::kMessageHeaderSize + size));
}

// Raw baseline: datagrams of `dgSize` bytes from one thread to a multicast group, received by another.
double rawDatagramsPerSec(Rng& rng, std::size_t dgSize, double seconds, bool gso) {
    const Net n = pickNet(rng);
    const transport::Endpoint group{n.group, static_cast<std::uint16_t>(n.port + 1)};
    auto rx = openUdpOrExit(group, {n.group}, gso);
    auto tx = openUdpOrExit(transport::Endpoint{0x7F000001u, 0}, {}, gso);
    std::atomic<bool> stop{false};
    std::atomic<std::uint64_t> received{0};
    std::thread r([&] {
        transport::RxSlot slots[64];
        Idler idle(false, {rx->waitFd()});
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

struct ThroughputResult {
    double msgs = 0;
    double mbytes = 0;
    // Repair work over the whole run (subscribers' and sequencer's counters).
    std::uint64_t gaps = 0, naks = 0, retransmits = 0, lost = 0, overflow = 0, duplicates = 0;
};

// Messages per second that every subscriber delivered, over `seconds` after a warm-up.
ThroughputResult sequencedThroughput(Rng& rng, std::size_t size, double seconds, const PipelineOptions& o) {
    Pipeline p(rng, o);
    p.start();
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
    p.publish(size, 0, seconds + 0.3);
    sampler.join();
    p.finish();
    ThroughputResult r{static_cast<double>(rate), static_cast<double>(rate) * static_cast<double>(size) / 1e6};
    r.gaps = p.subscriberCounter(Counter::GapsDetected);
    r.naks = p.subscriberCounter(Counter::NaksSent);
    r.retransmits = p.sequencerCounter(Counter::Retransmits);
    r.lost = p.subscriberCounter(Counter::OffsetsLost);
    r.overflow = p.subscriberCounter(Counter::DropOverflow);
    r.duplicates = p.subscriberCounter(Counter::DropDuplicate);
    return r;
}

struct LatencyResult {
    double p50 = 0, p99 = 0, p999 = 0, max = 0;
    double repaired = 0;  // messages delivered after a repair, per run
};

// Publish->deliver latency of 64 B messages at a fixed rate; the median of each quantile over runs.
LatencyResult fixedRateLatency(Rng& rng, double rate, double seconds, std::uint64_t runs, PipelineOptions o) {
    std::vector<double> p50, p99, p999, mx, rep;
    for (std::uint64_t r = 0; r < runs; ++r) {
        // With --busy-poll the publisher's thread also runs the sequencer: two spinning threads,
        // one per core of a 2-core machine.
        o.colocate = o.busyPoll;
        Pipeline p(rng, o);
        p.start();
        p.publish(64, rate, seconds);
        p.finish();
        p50.push_back(static_cast<double>(p.latency.quantile(0.5)));
        p99.push_back(static_cast<double>(p.latency.quantile(0.99)));
        p999.push_back(static_cast<double>(p.latency.quantile(0.999)));
        mx.push_back(static_cast<double>(p.latency.max()));
        rep.push_back(static_cast<double>(p.repairedLatency.count()));
    }
    return LatencyResult{median(p50), median(p99), median(p999), median(mx), median(rep)};
}

const char* apiName(transport::SocketApi a) { return a == transport::SocketApi::Uring ? "uring" : "udp"; }

}  // namespace

int runBench(int argc, char** argv) {
    const CommandInfo info{
        "bench",
        "Measure sequenced throughput, end-to-end latency, the repair tail and scaling against same-run baselines.",
        "  seqcast bench\n  seqcast bench --suite throughput --runs 7 --seconds 2\n"
        "  seqcast bench --suite latency --busy-poll --transport uring\n"
        "  seqcast bench --json build/bench/seqcast.json --markdown build/bench/seqcast.md\n"};
    po::options_description d("Bench");
    d.add_options()
        ("suite", po::value<std::string>()->default_value("all"), "throughput, latency, repair, scaling, auth or all")
        ("runs", po::value<std::string>()->default_value("5"), "runs per figure; the median is reported (1..50)")
        ("seconds", po::value<std::string>()->default_value("1"), "seconds per run (0.2..60)")
        ("transport", po::value<std::string>()->default_value("both"), "udp, uring or both: the socket API of every agent")
        ("busy-poll", "spin instead of sleeping in poll() (needs a core per thread)")
        ("json", po::value<std::string>(), "write the results as JSON")
        ("markdown", po::value<std::string>(), "write the results as a Markdown table");
    po::variables_map vm;
    if (auto rc = parseCommandLine(info, argc, argv, d, vm)) return *rc;
    std::uint64_t runs;
    double seconds;
    std::string suite;
    std::vector<transport::SocketApi> apis;
    try {
        runs = getU64(vm, "runs", 1, 50);
        seconds = getDouble(vm, "seconds", 0.2, 60);
        checkPath(vm, "json", PathUse::Write);
        checkPath(vm, "markdown", PathUse::Write);
        suite = vm["suite"].as<std::string>();
        if (suite != "all" && suite != "throughput" && suite != "latency" && suite != "repair" && suite != "scaling" &&
            suite != "auth")
            throw UsageError("--suite: '" + suite + "' must be throughput, latency, repair, scaling, auth or all");
        const std::string t = vm["transport"].as<std::string>();
        if (t == "udp" || t == "both") apis.push_back(transport::SocketApi::Syscalls);
        if (t == "uring" || t == "both") apis.push_back(transport::SocketApi::Uring);
        if (apis.empty()) throw UsageError("--transport: '" + t + "' must be udp, uring or both");
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
    const bool busy = vm.count("busy-poll") != 0;
    const transport::SocketApi mainApi = apis.back();  // uring where available: the faster path
    Rng rng(monoNs());
    Json j;
    j.begin();
    j.field("runs", runs);
    j.field("seconds_per_run", seconds);
    j.key("busy_poll").boolean(busy);
    std::string md = "| benchmark | result | baseline (same run) | ratio |\n|---|---|---|---|\n";
    char line[640];
    auto emit = [&](const char* text) {
        std::fputs(text, stdout);
        std::fflush(stdout);
    };

    if (suite == "all" || suite == "throughput") {
        std::printf("sequenced throughput: 1 publisher -> sequencer -> 1 subscriber, loopback multicast, median of %llu x %.1fs\n",
                    static_cast<unsigned long long>(runs), seconds);
        std::printf("  baselines (same run, as msgs/s): raw datagrams of the same size from one socket to a group member, plain and GSO/GRO\n");
        std::printf("  %-6s %-6s %-8s %12s %9s | %14s %6s | %14s %6s\n", "size", "api", "sockets", "msgs/s", "MB/s",
                    "raw plain", "ratio", "raw GSO/GRO", "ratio");
        j.key("throughput").beginArray();
        for (std::size_t size : {std::size_t{32}, std::size_t{256}, std::size_t{1024}}) {
            const std::size_t k = perDatagram(size, wire::kDefaultMtu);
            const std::size_t dg = wire::kHeaderSize + k * (wire::kMessageHeaderSize + size);
            std::vector<double> rawPlain, rawGso;
            for (std::uint64_t r = 0; r < runs; ++r) {
                rawPlain.push_back(rawDatagramsPerSec(rng, dg, seconds, false));
                rawGso.push_back(rawDatagramsPerSec(rng, dg, seconds, true));
            }
            const double plainMsgs = median(rawPlain) * static_cast<double>(k);
            const double gsoMsgs = median(rawGso) * static_cast<double>(k);
            for (transport::SocketApi api : apis) {
                for (bool gso : {false, true}) {
                    std::vector<double> seqM;
                    for (std::uint64_t r = 0; r < runs; ++r) {
                        PipelineOptions o;
                        o.busyPoll = busy;
                        o.gso = gso;
                        o.api = api;
                        seqM.push_back(sequencedThroughput(rng, size, seconds, o).msgs);
                    }
                    const double m = median(seqM);
                    const char* kind = gso ? "GSO/GRO" : "plain";
                    std::snprintf(line, sizeof line, "  %-6zu %-6s %-8s %12s %9.1f | %14s %6.2f | %14s %6.2f\n", size, apiName(api), kind,
                                  fmtRate(m).c_str(), m * static_cast<double>(size) / 1e6, fmtRate(plainMsgs).c_str(), m / plainMsgs,
                                  fmtRate(gsoMsgs).c_str(), m / gsoMsgs);
                    emit(line);
                    j.begin();
                    j.field("size", static_cast<std::uint64_t>(size));
                    j.field("api", std::string(apiName(api)));
                    j.field("sockets", std::string(kind));
                    j.field("msgs_per_sec", m);
                    j.field("mb_per_sec", m * static_cast<double>(size) / 1e6);
                    j.field("raw_datagram_size", static_cast<std::uint64_t>(dg));
                    j.field("raw_plain_msgs_per_sec", plainMsgs);
                    j.field("raw_gso_msgs_per_sec", gsoMsgs);
                    j.field("ratio_to_plain", m / plainMsgs);
                    j.field("ratio_to_gso", m / gsoMsgs);
                    j.end();
                    std::snprintf(line, sizeof line,
                                  "| throughput %zu B, %s %s | %s msg/s (%.1f MB/s) | raw plain %s msg/s; raw GSO/GRO %s msg/s | %.2f; %.2f |\n",
                                  size, apiName(api), kind, fmtRate(m).c_str(), m * static_cast<double>(size) / 1e6,
                                  fmtRate(plainMsgs).c_str(), fmtRate(gsoMsgs).c_str(), m / plainMsgs, m / gsoMsgs);
                    md += line;
                }
            }
        }
        j.endArray();
    }
    Histogram raw(7);
    bool haveRaw = false;
    auto rawPingPong = [&] {
        if (!haveRaw) raw = rawOneWay(rng, std::max(1.0, seconds), busy, 7, 10'000);
        haveRaw = true;
        return static_cast<double>(raw.quantile(0.5));
    };
    if (suite == "all" || suite == "latency") {
        std::printf("end-to-end latency publish->deliver (two UDP hops), 64 B messages at a fixed rate, coordinated-omission corrected%s\n",
                    busy ? ", busy polling" : "");
        const double rp50 = rawPingPong();
        std::printf("  baseline: raw UDP ping-pong, same run: one-way (RTT/2) %s\n", latencySummary(raw).c_str());
        j.key("latency").beginArray();
        for (transport::SocketApi api : apis) {
            for (double rate : {10'000.0, 100'000.0}) {
                PipelineOptions o;
                o.busyPoll = busy;
                o.api = api;
                const LatencyResult l = fixedRateLatency(rng, rate, seconds, runs, o);
                std::snprintf(line, sizeof line,
                              "  %-5s %7s msg/s: p50 %.1f us  p99 %.1f us  p99.9 %.1f us  max %.1f us   (p50 / raw RTT p50 = %.2f)\n",
                              apiName(api), fmtRate(rate).c_str(), l.p50 / 1e3, l.p99 / 1e3, l.p999 / 1e3, l.max / 1e3,
                              l.p50 / std::max(2 * rp50, 1.0));
                emit(line);
                j.begin();
                j.field("api", std::string(apiName(api)));
                j.field("rate", rate);
                j.field("p50_ns", l.p50);
                j.field("p99_ns", l.p99);
                j.field("p999_ns", l.p999);
                j.field("max_ns", l.max);
                j.field("raw_rtt_p50_ns", 2 * rp50);
                j.field("raw_one_way_p50_ns", rp50);
                j.field("raw_one_way_p99_ns", static_cast<double>(raw.quantile(0.99)));
                j.field("ratio_p50_to_raw_rtt", l.p50 / std::max(2 * rp50, 1.0));
                j.end();
                std::snprintf(line, sizeof line,
                              "| latency %s @ %s msg/s | p50 %.1f us, p99 %.1f us, p99.9 %.1f us, max %.1f us | raw RTT p50 %.1f us | %.2f |\n",
                              apiName(api), fmtRate(rate).c_str(), l.p50 / 1e3, l.p99 / 1e3, l.p999 / 1e3, l.max / 1e3, 2 * rp50 / 1e3,
                              l.p50 / std::max(2 * rp50, 1.0));
                md += line;
            }
        }
        j.endArray();
    }
    if (suite == "all" || suite == "repair") {
        std::printf("repair tail (%s): random datagram loss injected at the subscriber's socket, repaired by NAK from the sequencer\n",
                    apiName(mainApi));
        j.key("repair").begin();
        // Latency: 10k msg/s of 64 B, p99.9 with 0.1 % loss against p99 without loss, same run.
        PipelineOptions o;
        o.busyPoll = busy;
        o.api = mainApi;
        const LatencyResult clean = fixedRateLatency(rng, 10'000, std::max(2.0, seconds), runs, o);
        o.subLoss = 0.001;
        const LatencyResult lossy = fixedRateLatency(rng, 10'000, std::max(2.0, seconds), runs, o);
        std::snprintf(line, sizeof line,
                      "  10k msg/s, 0.1%% loss: p50 %.1f us  p99 %.1f us  p99.9 %.1f us  max %.1f us (%.0f repaired per run)\n"
                      "  10k msg/s, no loss:   p50 %.1f us  p99 %.1f us  p99.9 %.1f us  max %.1f us\n"
                      "  p99.9 with loss / p99 without = %.2f\n",
                      lossy.p50 / 1e3, lossy.p99 / 1e3, lossy.p999 / 1e3, lossy.max / 1e3, lossy.repaired, clean.p50 / 1e3,
                      clean.p99 / 1e3, clean.p999 / 1e3, clean.max / 1e3, lossy.p999 / std::max(clean.p99, 1.0));
        emit(line);
        j.field("loss_0_1pct_p999_ns", lossy.p999);
        j.field("loss_0_1pct_p99_ns", lossy.p99);
        j.field("loss_0_1pct_max_ns", lossy.max);
        j.field("loss_0_1pct_repaired_per_run", lossy.repaired);
        j.field("no_loss_p99_ns", clean.p99);
        j.field("no_loss_p999_ns", clean.p999);
        j.field("ratio_p999_lossy_to_p99_clean", lossy.p999 / std::max(clean.p99, 1.0));
        std::snprintf(line, sizeof line, "| repair tail: p99.9 @ 10k msg/s, 0.1%% loss (%s) | %.1f us | no-loss p99 %.1f us | %.2f |\n",
                      apiName(mainApi), lossy.p999 / 1e3, clean.p99 / 1e3, lossy.p999 / std::max(clean.p99, 1.0));
        md += line;
        // Throughput: as fast as the publisher goes, with 1 % loss against none.
        j.key("throughput").beginArray();
        for (std::size_t size : {std::size_t{32}, std::size_t{1024}}) {
            std::vector<double> cleanM, lossyM;
            ThroughputResult last;
            for (std::uint64_t r = 0; r < runs; ++r) {
                PipelineOptions t;
                t.busyPoll = busy;
                t.gso = true;
                t.api = mainApi;
                cleanM.push_back(sequencedThroughput(rng, size, seconds, t).msgs);
                t.subLoss = 0.01;
                last = sequencedThroughput(rng, size, seconds, t);
                lossyM.push_back(last.msgs);
            }
            const double c = median(cleanM), l = median(lossyM);
            std::snprintf(line, sizeof line,
                          "  throughput %zu B, GSO/GRO: 1%% loss %s msg/s, no loss %s msg/s: ratio %.2f\n"
                          "    (last lossy run: %llu gaps, %llu NAKs, %llu retransmits, %llu duplicates, %llu reorder overflows, %llu lost)\n",
                          size, fmtRate(l).c_str(), fmtRate(c).c_str(), l / std::max(c, 1.0),
                          static_cast<unsigned long long>(last.gaps), static_cast<unsigned long long>(last.naks),
                          static_cast<unsigned long long>(last.retransmits), static_cast<unsigned long long>(last.duplicates),
                          static_cast<unsigned long long>(last.overflow), static_cast<unsigned long long>(last.lost));
            emit(line);
            j.begin();
            j.field("size", static_cast<std::uint64_t>(size));
            j.field("loss_1pct_msgs_per_sec", l);
            j.field("no_loss_msgs_per_sec", c);
            j.field("ratio", l / std::max(c, 1.0));
            j.end();
            std::snprintf(line, sizeof line, "| throughput %zu B with 1%% loss (%s GSO/GRO) | %s msg/s | no loss %s msg/s | %.2f |\n", size,
                          apiName(mainApi), fmtRate(l).c_str(), fmtRate(c).c_str(), l / std::max(c, 1.0));
            md += line;
        }
        j.endArray();
        j.end();
    }
    if (suite == "all" || suite == "scaling") {
        std::printf("scaling (%s, GSO/GRO, 256 B): publishers on one thread, subscribers on another, each with its own sockets;\n"
                    "  msgs/s that every subscriber delivered, and the ratio to 1 publisher x 1 subscriber in this run\n",
                    apiName(mainApi));
        j.key("scaling").beginArray();
        double base = 0;
        for (unsigned subs : {1u, 4u, 8u}) {
            for (unsigned pubs : {1u, 2u, 4u}) {
                std::vector<double> m;
                for (std::uint64_t r = 0; r < runs; ++r) {
                    PipelineOptions o;
                    o.busyPoll = busy;
                    o.gso = true;
                    o.api = mainApi;
                    o.publishers = pubs;
                    o.subscribers = subs;
                    m.push_back(sequencedThroughput(rng, 256, seconds, o).msgs);
                }
                const double v = median(m);
                if (pubs == 1 && subs == 1) base = v;
                std::snprintf(line, sizeof line, "  %u pub x %u sub: %10s msg/s each sub, %10s deliveries/s in all   ratio %.2f\n", pubs, subs,
                              fmtRate(v).c_str(), fmtRate(v * subs).c_str(), v / std::max(base, 1.0));
                emit(line);
                j.begin();
                j.field("publishers", static_cast<std::uint64_t>(pubs));
                j.field("subscribers", static_cast<std::uint64_t>(subs));
                j.field("msgs_per_sec_per_subscriber", v);
                j.field("deliveries_per_sec", v * subs);
                j.field("ratio_to_1x1", v / std::max(base, 1.0));
                j.end();
                std::snprintf(line, sizeof line, "| scaling %u pub x %u sub (256 B) | %s msg/s per sub | 1x1 %s msg/s | %.2f |\n", pubs, subs,
                              fmtRate(v).c_str(), fmtRate(base).c_str(), v / std::max(base, 1.0));
                md += line;
            }
        }
        j.endArray();
    }
    if (suite == "all" || suite == "auth") {
        // A throwaway key file (mode 600) with one random key.
        char path[] = "/tmp/seqcast-bench-keys-XXXXXX";
        const int fd = ::mkstemp(path);
        std::string keyHex;
        for (int i = 0; i < 32; ++i) {
            char b[3];
            std::snprintf(b, sizeof b, "%02x", static_cast<unsigned>(rng.below(256)));
            keyHex += b;
        }
        const std::string text = "1 " + keyHex + "\n";
        const bool ok = fd >= 0 && ::fchmod(fd, 0600) == 0 && ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
        if (fd >= 0) ::close(fd);
        if (!ok) {
            std::fprintf(stderr, "seqcast bench: cannot write a key file in /tmp: skipping the auth suite\n");
        } else {
            std::printf("authenticated frames (%s, GSO/GRO): ChaCha20-Poly1305 tag on every datagram, against the same pipeline without\n",
                        apiName(mainApi));
            j.key("auth").beginArray();
            for (std::size_t size : {std::size_t{32}, std::size_t{1024}}) {
                std::vector<double> plainM, authM;
                for (std::uint64_t r = 0; r < runs; ++r) {
                    PipelineOptions o;
                    o.busyPoll = busy;
                    o.gso = true;
                    o.api = mainApi;
                    plainM.push_back(sequencedThroughput(rng, size, seconds, o).msgs);
                    o.authKeyFile = path;
                    authM.push_back(sequencedThroughput(rng, size, seconds, o).msgs);
                }
                const double pm = median(plainM), am = median(authM);
                std::snprintf(line, sizeof line, "  throughput %4zu B: %s msg/s signed, %s msg/s without: ratio %.2f\n", size,
                              fmtRate(am).c_str(), fmtRate(pm).c_str(), am / std::max(pm, 1.0));
                emit(line);
                j.begin();
                j.field("size", static_cast<std::uint64_t>(size));
                j.field("auth_msgs_per_sec", am);
                j.field("plain_msgs_per_sec", pm);
                j.field("ratio", am / std::max(pm, 1.0));
                j.end();
                std::snprintf(line, sizeof line, "| throughput %zu B with --auth-key (%s GSO/GRO) | %s msg/s | without %s msg/s | %.2f |\n", size,
                              apiName(mainApi), fmtRate(am).c_str(), fmtRate(pm).c_str(), am / std::max(pm, 1.0));
                md += line;
            }
            PipelineOptions o;
            o.busyPoll = busy;
            o.api = mainApi;
            const LatencyResult plainL = fixedRateLatency(rng, 10'000, seconds, runs, o);
            o.authKeyFile = path;
            const LatencyResult authL = fixedRateLatency(rng, 10'000, seconds, runs, o);
            std::snprintf(line, sizeof line, "  latency at 10k msg/s: p50 %.1f us, p99 %.1f us signed; p50 %.1f us, p99 %.1f us without\n",
                          authL.p50 / 1e3, authL.p99 / 1e3, plainL.p50 / 1e3, plainL.p99 / 1e3);
            emit(line);
            j.begin();
            j.field("rate", 10'000.0);
            j.field("auth_p50_ns", authL.p50);
            j.field("auth_p99_ns", authL.p99);
            j.field("plain_p50_ns", plainL.p50);
            j.field("plain_p99_ns", plainL.p99);
            j.end();
            j.endArray();
            std::snprintf(line, sizeof line, "| latency @ 10k msg/s with --auth-key | p50 %.1f us, p99 %.1f us | without: p50 %.1f us, p99 %.1f us | %.2f |\n",
                          authL.p50 / 1e3, authL.p99 / 1e3, plainL.p50 / 1e3, plainL.p99 / 1e3, authL.p50 / std::max(plainL.p50, 1.0));
            md += line;
            ::unlink(path);
        }
    }
    j.end();
    if (vm.count("json") && !writeFile(vm["json"].as<std::string>(), j.text())) std::fprintf(stderr, "seqcast bench: cannot write json\n");
    if (vm.count("markdown") && !writeFile(vm["markdown"].as<std::string>(), md)) std::fprintf(stderr, "seqcast bench: cannot write markdown\n");
    return 0;
}

}  // namespace seqcast::tools
