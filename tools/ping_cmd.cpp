// seqcast ping: latency at a fixed rate through the sequencer (or over the bare transport), with an
// HDR-style histogram, a per-hop breakdown, and table / CSV / JSON / SVG output.
#include <cmath>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>

#include "fabric/clock.h"
#include "perf/pipeline.h"
#include "tools/commands.h"
#include "tools/common.h"
#include "tools/plot.h"

namespace seqcast::tools {

namespace {

constexpr double kPercentiles[] = {50, 90, 99, 99.9, 99.99};

std::string percentileLabel(double p, const char* prefix = "", const char* suffix = "") {
    std::ostringstream os;
    os << prefix << p << suffix;
    return os.str();
}

}  // namespace

int runPing(int argc, char** argv) {
    const CommandInfo info{
        "ping",
        "Measure latency at a fixed rate through the sequencer (or the bare transport with --raw): HDR-style\n"
        "percentiles counted from each message's intended send time, per hop, as a table, CSV, JSON or SVG plot.\n"
        "Exits 1 when messages sent through the sequencer never came back (the count is reported).",
        "  seqcast ping                                   # in-process sequencer on loopback, 10k msg/s for 5 s\n"
        "  seqcast ping --sequencer 127.0.0.1:40000 --group 239.1.1.1:40001 --rate 50000\n"
        "  seqcast ping --raw --rate 20000 --svg raw.svg\n"
        "  seqcast ping --csv ping.csv --json ping.json --svg ping.svg --precision 10\n"};
    po::options_description d("Ping");
    d.add_options()
        ("sequencer", po::value<std::string>(), "an existing sequencer's control address (default: run one in-process)")
        ("group", po::value<std::string>(), "its stream's group:port (with --sequencer)")
        ("raw", "ping-pong over bare UDP sockets, no sequencer: the transport's own cost")
        ("rate", po::value<std::string>()->default_value("10000"), "messages per second (1..10000000)")
        ("duration", po::value<std::string>()->default_value("5"), "seconds (0.1..3600)")
        ("size", po::value<std::string>()->default_value("64"), "message size in bytes (with the sequencer)")
        ("precision", po::value<std::string>()->default_value("7"), "histogram sub-bucket bits: relative error 2^-N (1..12)")
        ("busy-poll", "spin instead of sleeping (needs a core per thread)")
        ("csv", po::value<std::string>(), "write percentiles as CSV")
        ("json", po::value<std::string>(), "write percentiles as JSON")
        ("svg", po::value<std::string>(), "write a latency-by-percentile plot (SVG)");
    po::variables_map vm;
    if (auto rc = parseCommandLine(info, argc, argv, d, vm)) return *rc;
    double rate, seconds;
    std::uint64_t size, bits;
    PipelineOptions po;
    try {
        rate = getDouble(vm, "rate", 1, 1e7);
        seconds = getDouble(vm, "duration", 0.1, 3600);
        size = getSize(vm, "size", 0, 1u << 20);
        bits = getU64(vm, "precision", 1, 12);
        checkPath(vm, "csv", PathUse::Write);
        checkPath(vm, "json", PathUse::Write);
        checkPath(vm, "svg", PathUse::Write);
        po.busyPoll = vm.count("busy-poll") != 0;
        po.histogramBits = static_cast<unsigned>(bits);
        if (vm.count("sequencer") != vm.count("group")) throw UsageError("--sequencer and --group go together");
        if (vm.count("sequencer")) {
            po.control = getEndpoint(vm, "sequencer");
            po.group = getEndpoint(vm, "group");
            if (!po.group.multicast()) throw UsageError("--group: " + po.group.str() + " is not a multicast address");
        }
        if (vm.count("raw") && vm.count("sequencer")) throw UsageError("--raw measures the bare transport: no --sequencer");
    } catch (const UsageError& e) {
        std::cerr << "seqcast ping: " << e.what() << "\n(see seqcast ping --help)\n";
        return kExitUsage;
    }
    installStopSignals();
    Rng rng(monoNs());
    std::vector<Series> series;
    std::unique_ptr<Pipeline> p;
    Histogram raw(static_cast<unsigned>(bits));
    std::string title;
    std::uint64_t sent = 0, missing = 0;
    if (vm.count("raw")) {
        raw = rawOneWay(rng, seconds, po.busyPoll, static_cast<unsigned>(bits), rate);
        series.push_back({"raw UDP one-way (RTT/2)", &raw});
        title = "seqcast ping --raw: ";
        title += fmtRate(rate);
        title += " round trips/s";
    } else {
        p = std::make_unique<Pipeline>(rng, po);
        if (!p->start()) {
            std::cerr << "seqcast ping: the subscriber heard nothing from the sequencer within 3 s (multicast route? --group?)\n";
            return 1;
        }
        sent = p->publish(static_cast<std::size_t>(size), rate, seconds);
        p->finish();
        const std::uint64_t back = p->delivered.load();
        missing = back < sent ? sent - back : 0;
        series.push_back({"publish -> deliver", &p->latency});
        series.push_back({"publish -> sequencer", &p->hopPubSeq});
        series.push_back({"sequencer -> deliver", &p->hopSeqSub});
        title = "seqcast ping: ";
        title += fmtRate(rate);
        title += " msg/s of ";
        title += std::to_string(size);
        title += " B through the sequencer";
    }
    std::printf("%s, %.1f s, histogram precision %.2f%%\n", title.c_str(), seconds, 100.0 / static_cast<double>(1u << bits));
    std::printf("%-24s %10s", "series", "count");
    for (double q : kPercentiles) std::printf(" %10s", percentileLabel(q, "p").c_str());
    std::printf(" %10s   (microseconds)\n", "max");
    for (const auto& s : series) {
        std::printf("%-24s %10llu", s.name.c_str(), static_cast<unsigned long long>(s.h->count()));
        for (double q : kPercentiles) std::printf(" %10.1f", static_cast<double>(s.h->quantile(q / 100)) / 1000.0);
        std::printf(" %10.1f\n", static_cast<double>(s.h->max()) / 1000.0);
    }
    if (vm.count("csv")) {
        std::ostringstream o;
        o << "series,count";
        for (double q : kPercentiles) o << ',' << percentileLabel(q, "p", "_ns");
        o << ",max_ns\n";
        for (const auto& s : series) {
            o << '"' << s.name << "\"," << s.h->count();
            for (double q : kPercentiles) o << ',' << s.h->quantile(q / 100);
            o << ',' << s.h->max() << '\n';
        }
        if (!writeFile(vm["csv"].as<std::string>(), o.str())) std::fprintf(stderr, "seqcast ping: cannot write CSV\n");
    }
    if (vm.count("json")) {
        Json j;
        j.begin();
        j.field("rate", rate);
        j.field("seconds", seconds);
        j.field("precision_bits", bits);
        if (!vm.count("raw")) {
            j.field("messages_sent", sent);
            j.field("messages_missing", missing);
        }
        j.key("series").beginArray();
        for (const auto& s : series) {
            j.begin();
            j.field("name", s.name);
            j.field("count", s.h->count());
            for (double q : kPercentiles) j.field(percentileLabel(q, "p", "_ns"), s.h->quantile(q / 100));
            j.field("max_ns", s.h->max());
            j.end();
        }
        j.endArray();
        j.end();
        if (!writeFile(vm["json"].as<std::string>(), j.text())) std::fprintf(stderr, "seqcast ping: cannot write JSON\n");
    }
    if (vm.count("svg")) {
        if (!writeFile(vm["svg"].as<std::string>(), svgPlot(series, title))) std::fprintf(stderr, "seqcast ping: cannot write SVG\n");
        else std::printf("plot written to %s\n", vm["svg"].as<std::string>().c_str());
    }
    if (missing > 0) {
        // The percentiles above cover only what came back: a run that lost messages is a failure.
        std::fflush(stdout);
        std::fprintf(stderr, "seqcast ping: %llu of %llu messages missing (never delivered); the latencies cover the rest\n",
                     static_cast<unsigned long long>(missing), static_cast<unsigned long long>(sent));
        return 1;
    }
    return 0;
}

}  // namespace seqcast::tools
