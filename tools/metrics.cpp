#include "tools/metrics.h"

#include <algorithm>
#include <cstdio>
#include <map>

namespace seqcast::tools {

namespace {

bool endsWith(const std::string& s, const std::string& tail) {
    return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
}

// A label value: backslash, double quote and newline escaped, as the format requires.
std::string escapeLabel(const std::string& v) {
    std::string out;
    for (char c : v) {
        if (c == '\\') out += "\\\\";
        else if (c == '"') out += "\\\"";
        else if (c == '\n') out += "\\n";
        else out += c;
    }
    return out;
}

// HELP text: backslash and newline escaped.
std::string escapeHelp(const std::string& v) {
    std::string out;
    for (char c : v) {
        if (c == '\\') out += "\\\\";
        else if (c == '\n') out += "\\n";
        else out += c;
    }
    return out;
}

std::string labels(const ProcessCounters& p, const std::string& extra = "") {
    return "{role=\"" + escapeLabel(p.role) + "\",stream=\"" + std::to_string(p.stream) + "\",pid=\"" + std::to_string(p.pid) +
           "\"" + extra + "}";
}

bool isLatency(const std::string& name) { return name.rfind("latency_", 0) == 0; }

std::string seconds(std::uint64_t ns) {
    char v[40];
    std::snprintf(v, sizeof v, "%.9g", static_cast<double>(ns) * 1e-9);
    return v;
}

void family(std::string& out, const std::string& name, const std::string& type, const std::string& help) {
    out += "# HELP " + name + " " + escapeHelp(help) + "\n";
    out += "# TYPE " + name + " " + type + "\n";
}

bool consumer(const ProcessCounters& p) { return p.role == "sub" || p.role == "replay" || p.role == "archiver"; }

std::uint64_t valueOf(const ProcessCounters& p, const char* name) {
    const auto it = p.values.find(name);
    return it == p.values.end() ? 0 : it->second;
}

}  // namespace

std::string metricName(const CounterInfo& c) {
    // Nanoseconds go out in the base unit, seconds (gauges and counters alike).
    const std::string base = endsWith(c.name, "_ns") ? c.name.substr(0, c.name.size() - 3) + "_seconds" : c.name;
    return "seqcast_" + base + (c.gauge ? "" : "_total");
}

std::string prometheusText(const std::vector<ProcessCounters>& processes, const std::vector<CounterInfo>& info) {
    std::string out;
    family(out, "seqcast_up", "gauge", "1 while the process runs, 0 once it exited and left its counters file");
    for (const auto& p : processes) out += "seqcast_up" + labels(p) + (p.alive ? " 1\n" : " 0\n");
    for (const auto& c : info) {
        if (isLatency(c.name)) continue;  // the latency_* counters make one summary, below
        const std::string name = metricName(c);
        const bool inSeconds = endsWith(c.name, "_ns");
        family(out, name, c.gauge ? "gauge" : "counter", inSeconds ? c.help + " (in seconds)" : c.help);
        for (const auto& p : processes) {
            const auto it = p.values.find(c.name);
            if (it == p.values.end()) continue;  // a process of another version without it
            out += name + labels(p) + " " + (inSeconds ? seconds(it->second) : std::to_string(it->second)) + "\n";
        }
    }
    // Latency, from the processes that record it (latency_count > 0): the quantiles of their last
    // window (NaN for a window with no message), and the sum and count since they started.
    family(out, "seqcast_latency_seconds", "summary",
           "Publish-to-deliver latency: quantiles of the last window (5 s), sum and count since the process started");
    static constexpr std::pair<const char*, const char*> kQuantiles[] = {
        {"0.5", "latency_p50_ns"}, {"0.9", "latency_p90_ns"}, {"0.99", "latency_p99_ns"}, {"0.999", "latency_p999_ns"}, {"1", "latency_max_ns"}};
    for (const auto& p : processes) {
        if (valueOf(p, "latency_count") == 0) continue;
        const bool empty = valueOf(p, "latency_window_count") == 0;
        for (const auto& [q, name] : kQuantiles)
            out += "seqcast_latency_seconds" + labels(p, std::string(",quantile=\"") + q + "\"") + " " +
                   (empty ? std::string("NaN") : seconds(valueOf(p, name))) + "\n";
        out += "seqcast_latency_seconds_sum" + labels(p) + " " + seconds(valueOf(p, "latency_sum_ns")) + "\n";
        out += "seqcast_latency_seconds_count" + labels(p) + " " + std::to_string(valueOf(p, "latency_count")) + "\n";
    }
    // Lag: against the highest head among the running sequencers of the consumer's stream.
    std::map<std::uint32_t, std::uint64_t> heads;
    for (const auto& p : processes)
        if (p.role == "sequencer" && p.alive) heads[p.stream] = std::max(heads[p.stream], valueOf(p, "head_offset"));
    family(out, "seqcast_lag_offsets", "gauge",
           "Offsets a consumer (subscriber, replay, archiver) is behind the head of its stream's sequencer on this host");
    for (const auto& p : processes) {
        const auto h = heads.find(p.stream);
        if (!consumer(p) || !p.alive || h == heads.end()) continue;
        const std::uint64_t mine = valueOf(p, "head_offset");
        out += "seqcast_lag_offsets" + labels(p) + " " + std::to_string(h->second > mine ? h->second - mine : 0) + "\n";
    }
    return out;
}

}  // namespace seqcast::tools
