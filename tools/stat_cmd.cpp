// seqcast stat: live counters of every seqcast process on this host (shared memory, read-only).
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <iostream>
#include <map>
#include <thread>

#include <seqcast/seqcast.hpp>

#include "fabric/clock.h"
#include "tools/commands.h"
#include "tools/common.h"
#include "tools/ha_cli.h"
#include "tools/stat_serve.h"

namespace seqcast::tools {

namespace {

// A counter by name (every process publishes them all: a name not there is a defect here).
std::uint64_t val(const ProcessCounters& s, const char* name) { return s.values.at(name); }

bool consumer(const ProcessCounters& s) { return s.role == "sub" || s.role == "replay" || s.role == "archiver"; }

// Each stream's head: the highest HeadOffset among the sequencers of that stream, and how fast it
// grew since `prev` (entries per second; 0 without an earlier snapshot of the same sequencer).
// A consumer's lag is measured against its own stream's head only.
struct StreamHead {
    std::uint64_t head = 0;
    double rate = 0;
};
std::map<std::uint32_t, StreamHead> streamHeads(const std::vector<ProcessCounters>& snap,
                                                const std::map<std::uint64_t, ProcessCounters>& prev, double dt) {
    std::map<std::uint32_t, StreamHead> heads;
    for (const auto& s : snap) {
        if (s.role != "sequencer") continue;
        auto& h = heads[s.stream];
        h.head = std::max(h.head, val(s, "head_offset"));
        auto it = prev.find(s.pid);
        if (it != prev.end() && it->second.stream == s.stream && dt > 0)
            h.rate = std::max(h.rate, static_cast<double>(val(s, "head_offset") - val(it->second, "head_offset")) / dt);
    }
    return heads;
}

std::string snapshotJson(const std::vector<ProcessCounters>& all) {
    const auto heads = streamHeads(all, {}, 0);
    Json j;
    j.begin();
    j.field("time_ns", wallNs());
    j.key("processes").beginArray();
    for (const auto& s : all) {
        j.begin();
        j.field("pid", s.pid);
        j.field("role", s.role);
        j.field("stream", std::uint64_t{s.stream});
        j.key("alive").boolean(s.alive);
        const auto it = heads.find(s.stream);
        if (consumer(s) && it != heads.end() && it->second.head >= val(s, "head_offset"))
            j.field("lag_offsets", it->second.head - val(s, "head_offset"));
        j.key("counters").begin();
        for (const auto& [name, value] : s.values) j.field(name, value);
        j.end();
        j.end();
    }
    j.endArray();
    j.end();
    return j.text();
}

}  // namespace

int runStat(int argc, char** argv) {
    const CommandInfo info{"stat", "Show the counters of every seqcast process on this host, refreshed live.",
                           "  seqcast stat\n  seqcast stat --json > snapshot.json\n  seqcast stat --interval-ms 250 --count 20\n"
                           "  seqcast stat --serve 0.0.0.0:9464    # Prometheus: scrape http://HOST:9464/metrics\n"};
    po::options_description d("Stat");
    d.add_options()
        ("json", "print one JSON snapshot and exit")
        ("serve", po::value<std::string>(), "serve /metrics in the Prometheus text format on HOST:PORT until stopped "
                                            "(every process's counters, up, lag), read afresh on each scrape")
        ("all", "include processes that have exited but left their counters file")
        ("interval-ms", po::value<std::string>()->default_value("1000"), "refresh interval (50..60000)")
        ("count", po::value<std::string>()->default_value("0"), "refreshes before exiting (0: until interrupted)")
        ("dir", po::value<std::string>()->default_value(kCountersDirectory), "counters directory")
        ("ha", po::value<std::string>(),
         "etcd endpoints (http://HOST:2379[,...]): instead of this host's counters, every stream registered there by "
         "its hot-standby sequencers: leader, epoch, in-sync set, group and sequencers (table, or --json)");
    po::variables_map vm;
    if (auto rc = parseCommandLine(info, argc, argv, d, vm)) return *rc;
    std::uint64_t intervalMs = 1000, count = 0;
    try {
        intervalMs = getU64(vm, "interval-ms", 50, 60000);
        count = getU64(vm, "count", 0, ~std::uint64_t{0});
        checkPath(vm, "dir", PathUse::Directory);
    } catch (const UsageError& e) {
        std::cerr << "seqcast stat: " << e.what() << "\n";
        return kExitUsage;
    }
    if (vm.count("ha")) {
        std::string etcd;
        try {
            etcd = getEtcdEndpoints(vm, "ha");
            if (vm.count("serve")) throw UsageError("--ha and --serve: choose one");
        } catch (const UsageError& e) {
            std::cerr << "seqcast stat: " << e.what() << "\n";
            return kExitUsage;
        }
        return printStreamDirectories(etcd, vm.count("json") != 0);
    }
    const std::string dir = vm["dir"].as<std::string>();
    const bool all = vm.count("all") != 0;
    if (vm.count("serve")) {
        ServeOptions so;
        try {
            if (vm.count("json")) throw UsageError("--serve and --json: choose one");
            const auto e = getEndpoint(vm, "serve");
            const std::string text = e.str();  // "a.b.c.d:port"
            so.host = text.substr(0, text.rfind(':'));
            so.port = e.port;
        } catch (const UsageError& e) {
            std::cerr << "seqcast stat: " << e.what() << "\n";
            return kExitUsage;
        }
        so.directory = dir;
        so.all = all;
        return serveMetrics(so);
    }
    auto read = [&] {
        auto v = readCounters(dir);
        if (!all) v.erase(std::remove_if(v.begin(), v.end(), [](const auto& s) { return !s.alive; }), v.end());
        std::sort(v.begin(), v.end(), [](const auto& a, const auto& b) { return a.pid < b.pid; });
        return v;
    };
    if (vm.count("json")) {
        std::printf("%s\n", snapshotJson(read()).c_str());
        return 0;
    }
    installStopSignals();
    const bool tty = ::isatty(1) != 0;
    std::map<std::uint64_t, ProcessCounters> prev;
    std::uint64_t prevNs = monoNs();
    for (std::uint64_t round = 0; !stopRequested() && (count == 0 || round < count); ++round) {
        if (round > 0) std::this_thread::sleep_for(std::chrono::milliseconds(intervalMs));
        const auto snap = read();
        const std::uint64_t now = monoNs();
        const double dt = static_cast<double>(now - prevNs) * 1e-9;
        prevNs = now;
        // Each stream's head and how fast it grows (entries per second), for the lag columns.
        const auto heads = streamHeads(snap, prev, dt);
        if (tty) std::printf("\x1b[H\x1b[2J");
        std::printf("%-8s %-10s %6s %10s %10s %10s %10s %8s %8s %8s %8s %12s %10s %9s\n", "pid", "role", "stream", "dgram_in/s",
                    "dgram_out/s", "msg_in/s", "msg_out/s", "gaps", "naks", "retx", "lost", "head", "lag", "lag_ms");
        for (const auto& s : snap) {
            auto rate = [&](const char* c) {
                auto it = prev.find(s.pid);
                if (it == prev.end() || dt <= 0) return std::string("-");
                return fmtRate(static_cast<double>(val(s, c) - val(it->second, c)) / dt);
            };
            const std::uint64_t h = val(s, "head_offset");
            const auto sh = heads.find(s.stream);
            const bool known = consumer(s) && sh != heads.end() && sh->second.head >= h;
            const std::uint64_t head = known ? sh->second.head : 0;
            const double headRate = known ? sh->second.rate : 0;
            const std::string lag = known ? std::to_string(head - h) : "";
            std::string lagMs;
            if (known) {
                // Behind by (head - h) entries: at the stream's current rate, this long.
                char b[32];
                if (head == h) std::snprintf(b, sizeof b, "0");
                else if (headRate > 0) std::snprintf(b, sizeof b, "%.1f", static_cast<double>(head - h) / headRate * 1e3);
                else std::snprintf(b, sizeof b, "-");
                lagMs = b;
            }
            std::printf("%-8llu %-10s %6u %10s %10s %10s %10s %8llu %8llu %8llu %8llu %12llu %10s %9s%s\n",
                        static_cast<unsigned long long>(s.pid), s.role.c_str(), s.stream, rate("datagrams_in").c_str(),
                        rate("datagrams_out").c_str(), rate("messages_in").c_str(), rate("messages_out").c_str(),
                        static_cast<unsigned long long>(val(s, "gaps_detected")),
                        static_cast<unsigned long long>(val(s, "naks_sent") + val(s, "naks_received")),
                        static_cast<unsigned long long>(val(s, "retransmits")),
                        static_cast<unsigned long long>(val(s, "offsets_lost")), static_cast<unsigned long long>(h),
                        lag.c_str(), lagMs.c_str(), s.alive ? "" : " (exited)");
        }
        if (snap.empty()) std::printf("(no seqcast processes with counters in %s)\n", dir.c_str());
        std::fflush(stdout);
        prev.clear();
        for (const auto& s : snap) prev[s.pid] = s;
    }
    return 0;
}

}  // namespace seqcast::tools
