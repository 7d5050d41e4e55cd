// seqcast bench: sequenced throughput, end-to-end latency and repair latency, each printed beside
// a baseline measured in the same run (raw sendmmsg/recvmmsg datagrams, raw UDP ping-pong), as the
// median of several runs.
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
};

ThroughputResult sequencedThroughput(Rng& rng, std::size_t size, double seconds, bool busy, bool gso) {
    Pipeline p(rng, PipelineOptions{0, busy, 7, {}, {}, gso});
    p.start();
    std::atomic<bool> done{false};
    std::uint64_t base = 0, end = 0;
    std::thread sampler([&] {
        std::this_thread::sleep_for(std::chrono::milliseconds(200));  // warm-up
        base = p.delivered.load();
        const auto t0 = monoNs();
        std::this_thread::sleep_for(std::chrono::nanoseconds(static_cast<std::uint64_t>(seconds * 1e9)));
        end = p.delivered.load();
        const double dt = static_cast<double>(monoNs() - t0) * 1e-9;
        base = static_cast<std::uint64_t>(static_cast<double>(end - base) / dt);
        done = true;
    });
    p.publish(size, 0, seconds + 0.3);
    sampler.join();
    p.finish();
    return ThroughputResult{static_cast<double>(base), static_cast<double>(base) * static_cast<double>(size) / 1e6};
}

}  // namespace

int runBench(int argc, char** argv) {
    const CommandInfo info{
        "bench",
        "Measure sequenced throughput, end-to-end latency and repair latency against same-run baselines.",
        "  seqcast bench\n  seqcast bench --suite throughput --runs 7 --seconds 2\n"
        "  seqcast bench --json build/bench/seqcast.json --markdown build/bench/seqcast.md\n"};
    po::options_description d("Bench");
    d.add_options()
        ("suite", po::value<std::string>()->default_value("all"), "throughput, latency, repair or all")
        ("runs", po::value<std::string>()->default_value("5"), "runs per figure; the median is reported (1..50)")
        ("seconds", po::value<std::string>()->default_value("1"), "seconds per run (0.2..60)")
        ("busy-poll", "spin instead of sleeping in poll() (needs a core per thread)")
        ("json", po::value<std::string>(), "write the results as JSON")
        ("markdown", po::value<std::string>(), "write the results as a Markdown table");
    po::variables_map vm;
    if (auto rc = parseCommandLine(info, argc, argv, d, vm)) return *rc;
    std::uint64_t runs;
    double seconds;
    std::string suite;
    try {
        runs = getU64(vm, "runs", 1, 50);
        seconds = getDouble(vm, "seconds", 0.2, 60);
        suite = vm["suite"].as<std::string>();
        if (suite != "all" && suite != "throughput" && suite != "latency" && suite != "repair")
            throw UsageError("--suite: '" + suite + "' must be throughput, latency, repair or all");
    } catch (const UsageError& e) {
        std::cerr << "seqcast bench: " << e.what() << "\n";
        return kExitUsage;
    }
    const bool busy = vm.count("busy-poll") != 0;
    Rng rng(monoNs());
    Json j;
    j.begin();
    j.field("runs", runs);
    j.field("seconds_per_run", seconds);
    j.key("busy_poll").boolean(busy);
    std::string md = "| benchmark | result | baseline (same run) | ratio |\n|---|---|---|---|\n";
    char line[512];

    if (suite == "all" || suite == "throughput") {
        std::printf("sequenced throughput: 1 publisher -> sequencer -> 1 subscriber, loopback multicast, median of %llu x %.1fs\n",
                    static_cast<unsigned long long>(runs), seconds);
        std::printf("  %-6s %-8s %12s %9s | %-40s %12s | %s\n", "size", "sockets", "msgs/s", "MB/s",
                    "raw baseline, same datagrams, same sockets", "as msgs/s", "ratio");
        j.key("throughput").beginArray();
        for (std::size_t size : {std::size_t{32}, std::size_t{256}, std::size_t{1024}}) {
            const std::size_t k = perDatagram(size, wire::kDefaultMtu);
            const std::size_t dg = wire::kHeaderSize + k * (wire::kMessageHeaderSize + size);
            for (bool gso : {false, true}) {
                std::vector<double> seqM, rawD;
                for (std::uint64_t r = 0; r < runs; ++r) {
                    seqM.push_back(sequencedThroughput(rng, size, seconds, busy, gso).msgs);
                    rawD.push_back(rawDatagramsPerSec(rng, dg, seconds, gso));
                }
                const double m = median(seqM), raw = median(rawD);
                const double rawMsgs = raw * static_cast<double>(k);
                const char* kind = gso ? "GSO/GRO" : "plain";
                std::snprintf(line, sizeof line, "  %-6zu %-8s %12s %9.1f | %9s dgrams/s of %4zu B = %7.1f MB/s %12s | %.2f\n", size,
                              kind, fmtRate(m).c_str(), m * static_cast<double>(size) / 1e6, fmtRate(raw).c_str(), dg,
                              raw * static_cast<double>(dg) / 1e6, fmtRate(rawMsgs).c_str(), m / rawMsgs);
                std::fputs(line, stdout);
                std::fflush(stdout);
                j.begin();
                j.field("size", static_cast<std::uint64_t>(size));
                j.field("sockets", std::string(kind));
                j.field("msgs_per_sec", m);
                j.field("mb_per_sec", m * static_cast<double>(size) / 1e6);
                j.field("raw_datagram_size", static_cast<std::uint64_t>(dg));
                j.field("raw_datagrams_per_sec", raw);
                j.field("raw_msgs_per_sec_equivalent", rawMsgs);
                j.field("ratio", m / rawMsgs);
                j.end();
                std::snprintf(line, sizeof line, "| throughput %zu B, %s | %s msg/s (%.1f MB/s) | raw %s dgram/s x %zu msgs = %s msg/s | %.2f |\n",
                              size, kind, fmtRate(m).c_str(), m * static_cast<double>(size) / 1e6, fmtRate(raw).c_str(), k,
                              fmtRate(rawMsgs).c_str(), m / rawMsgs);
                md += line;
            }
        }
        j.endArray();
    }
    if (suite == "all" || suite == "latency") {
        std::printf("end-to-end latency publish->deliver, 64 B messages at a fixed rate (coordinated-omission corrected)\n");
        const Histogram raw = rawOneWay(rng, std::max(1.0, seconds), busy, 7, 10'000);
        std::printf("  raw UDP one-way (ping-pong / 2): %s\n", latencySummary(raw).c_str());
        j.key("latency").beginArray();
        for (double rate : {10'000.0, 100'000.0}) {
            std::vector<double> p50, p99, p999, mx;
            for (std::uint64_t r = 0; r < runs; ++r) {
                // With --busy-poll the publisher's thread also runs the sequencer: two spinning
                // threads, one per core of a 2-core machine.
                PipelineOptions po{0, busy, 7, {}, {}, false};
                po.colocate = busy;
                Pipeline p(rng, po);
                p.start();
                p.publish(64, rate, seconds);
                p.finish();
                p50.push_back(static_cast<double>(p.latency.quantile(0.5)));
                p99.push_back(static_cast<double>(p.latency.quantile(0.99)));
                p999.push_back(static_cast<double>(p.latency.quantile(0.999)));
                mx.push_back(static_cast<double>(p.latency.max()));
            }
            const double rp50 = static_cast<double>(raw.quantile(0.5));
            std::printf("  %7s msg/s: p50 %.1f us  p99 %.1f us  p99.9 %.1f us  max %.1f us   (p50 / raw one-way p50 = %.1f)\n",
                        fmtRate(rate).c_str(), median(p50) / 1e3, median(p99) / 1e3, median(p999) / 1e3, median(mx) / 1e3,
                        median(p50) / std::max(rp50, 1.0));
            std::fflush(stdout);
            j.begin();
            j.field("rate", rate);
            j.field("p50_ns", median(p50));
            j.field("p99_ns", median(p99));
            j.field("p999_ns", median(p999));
            j.field("max_ns", median(mx));
            j.field("raw_one_way_p50_ns", rp50);
            j.field("raw_one_way_p99_ns", static_cast<double>(raw.quantile(0.99)));
            j.end();
            std::snprintf(line, sizeof line, "| latency @ %s msg/s | p50 %.1f us, p99 %.1f us, p99.9 %.1f us, max %.1f us | raw one-way p50 %.1f us, p99 %.1f us | %.1f |\n",
                          fmtRate(rate).c_str(), median(p50) / 1e3, median(p99) / 1e3, median(p999) / 1e3, median(mx) / 1e3,
                          rp50 / 1e3, static_cast<double>(raw.quantile(0.99)) / 1e3, median(p50) / std::max(rp50, 1.0));
            md += line;
        }
        j.endArray();
    }
    if (suite == "all" || suite == "repair") {
        std::printf("repair latency: 10k msg/s of 64 B, 0.5%% datagram loss at the subscriber, publish->deliver latency\n");
        std::vector<double> r50, r99, n50, repaired;
        for (std::uint64_t r = 0; r < runs; ++r) {
            Pipeline p(rng, PipelineOptions{0.005, busy, 7, {}, {}, false});
            p.start();
            p.publish(64, 10'000, std::max(2.0, seconds));
            p.finish();
            r50.push_back(static_cast<double>(p.repairedLatency.quantile(0.5)));
            r99.push_back(static_cast<double>(p.repairedLatency.quantile(0.99)));
            n50.push_back(static_cast<double>(p.normalLatency.quantile(0.5)));
            repaired.push_back(static_cast<double>(p.repairedLatency.count()));
        }
        std::printf("  repaired messages (median %.0f per run): p50 %.1f us  p99 %.1f us;  not repaired p50 %.1f us  (repair adds %.1f us at p50)\n",
                    median(repaired), median(r50) / 1e3, median(r99) / 1e3, median(n50) / 1e3, (median(r50) - median(n50)) / 1e3);
        j.key("repair").begin();
        j.field("repaired_per_run", median(repaired));
        j.field("repaired_p50_ns", median(r50));
        j.field("repaired_p99_ns", median(r99));
        j.field("unrepaired_p50_ns", median(n50));
        j.end();
        std::snprintf(line, sizeof line, "| repair of a lost datagram | p50 %.1f us, p99 %.1f us | unrepaired p50 %.1f us | %.1f |\n",
                      median(r50) / 1e3, median(r99) / 1e3, median(n50) / 1e3, median(r50) / std::max(median(n50), 1.0));
        md += line;
    }
    j.end();
    if (vm.count("json") && !writeFile(vm["json"].as<std::string>(), j.text())) std::fprintf(stderr, "seqcast bench: cannot write json\n");
    if (vm.count("markdown") && !writeFile(vm["markdown"].as<std::string>(), md)) std::fprintf(stderr, "seqcast bench: cannot write markdown\n");
    return 0;
}

}  // namespace seqcast::tools
