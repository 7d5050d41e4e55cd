// seqcast stat --serve: /metrics in the Prometheus text format over HTTP (cpp-httplib), read
// afresh from the counters directory on every scrape.
#include "tools/stat_serve.h"

#include <httplib.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <thread>

#include "tools/common.h"
#include "tools/metrics.h"

namespace seqcast::tools {

int serveMetrics(const ServeOptions& o) {
    httplib::Server server;
    const std::vector<CounterInfo> info = counterInfo();
    std::atomic<std::uint64_t> scrapes{0};
    server.Get("/metrics", [&](const httplib::Request&, httplib::Response& res) {
        auto procs = readCounters(o.directory);
        if (!o.all) procs.erase(std::remove_if(procs.begin(), procs.end(), [](const auto& p) { return !p.alive; }), procs.end());
        std::sort(procs.begin(), procs.end(), [](const auto& a, const auto& b) { return a.pid < b.pid; });
        res.set_content(prometheusText(procs, info), "text/plain; version=0.0.4; charset=utf-8");
        scrapes.fetch_add(1, std::memory_order_relaxed);
    });
    server.Get("/", [](const httplib::Request&, httplib::Response& res) {
        res.set_content("<html><body><a href=\"/metrics\">seqcast metrics</a></body></html>\n", "text/html");
    });
    if (!server.bind_to_port(o.host, o.port)) {
        std::fprintf(stderr, "seqcast stat: --serve %s:%u: cannot listen there (in use, or not an address of this host)\n",
                     o.host.c_str(), static_cast<unsigned>(o.port));
        return kExitUsage;
    }
    std::fprintf(stderr, "seqcast stat: serving http://%s:%u/metrics (counters from %s)\n", o.host.c_str(),
                 static_cast<unsigned>(o.port), o.directory.c_str());
    installStopSignals();
    std::atomic<bool> ended{false};
    std::thread stopper([&] {
        while (!stopRequested() && !ended.load()) std::this_thread::sleep_for(std::chrono::milliseconds(50));
        server.stop();
    });
    const bool ok = server.listen_after_bind();
    ended.store(true);
    stopper.join();
    std::fprintf(stderr, "seqcast stat: served %llu scrapes\n", static_cast<unsigned long long>(scrapes.load()));
    return ok || stopRequested() ? 0 : 1;
}

}  // namespace seqcast::tools
