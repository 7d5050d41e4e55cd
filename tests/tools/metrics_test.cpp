// The Prometheus exposition of `seqcast stat --serve` (tools/metrics.cpp): names, types, labels,
// units and lag, from hand-made counters (no processes).
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "tools/metrics.h"

using seqcast::CounterInfo;
using seqcast::ProcessCounters;
using seqcast::tools::metricName;
using seqcast::tools::prometheusText;

namespace {

const std::vector<CounterInfo> kInfo = {
    {"messages_in", "Messages received", false},
    {"head_offset", "Next offset", true},
    {"rtt_ns", "Smoothed round-trip estimate, nanoseconds", true},
    {"repl_release_wait_ns", "Wait from commit to release, summed, nanoseconds", false},
};

bool has(const std::string& text, const std::string& line) { return text.find(line + "\n") != std::string::npos; }

}  // namespace

TEST_CASE("metric names: counts end in _total, gauges keep their name, nanoseconds become seconds") {
    CHECK(metricName(kInfo[0]) == "seqcast_messages_in_total");
    CHECK(metricName(kInfo[1]) == "seqcast_head_offset");
    CHECK(metricName(kInfo[2]) == "seqcast_rtt_seconds");
    CHECK(metricName(kInfo[3]) == "seqcast_repl_release_wait_seconds_total");  // a count of nanoseconds, in seconds
}

TEST_CASE("every process's counters, one family each, with HELP, TYPE and the labels role, stream, pid") {
    const std::vector<ProcessCounters> procs = {
        {10, "sequencer", 1, true, {{"messages_in", 5}, {"head_offset", 1000}, {"rtt_ns", 0}}},
        {11, "sub", 1, true, {{"messages_in", 990}, {"head_offset", 990}, {"rtt_ns", 250000}}},
        {12, "archiver", 1, true, {{"messages_in", 1000}, {"head_offset", 1003}, {"rtt_ns", 1}}},
        {13, "sub", 2, true, {{"messages_in", 7}, {"head_offset", 7}, {"rtt_ns", 0}}},   // no sequencer of stream 2 here
        {14, "sub", 1, false, {{"messages_in", 3}, {"head_offset", 3}, {"rtt_ns", 0}}},  // exited
        {15, "we\"ird\\role\n", 1, true, {{"messages_in", 1}}},                            // escaped; lacks two
    };
    const std::string t = prometheusText(procs, kInfo);
    CHECK(has(t, "# TYPE seqcast_up gauge"));
    CHECK(has(t, "seqcast_up{role=\"sequencer\",stream=\"1\",pid=\"10\"} 1"));
    CHECK(has(t, "seqcast_up{role=\"sub\",stream=\"1\",pid=\"14\"} 0"));
    CHECK(has(t, "# HELP seqcast_messages_in_total Messages received"));
    CHECK(has(t, "# TYPE seqcast_messages_in_total counter"));
    CHECK(has(t, "seqcast_messages_in_total{role=\"sub\",stream=\"1\",pid=\"11\"} 990"));
    CHECK(has(t, "# TYPE seqcast_head_offset gauge"));
    CHECK(has(t, "seqcast_head_offset{role=\"sequencer\",stream=\"1\",pid=\"10\"} 1000"));
    CHECK(has(t, "# HELP seqcast_rtt_seconds Smoothed round-trip estimate, nanoseconds (in seconds)"));
    CHECK(has(t, "seqcast_rtt_seconds{role=\"sub\",stream=\"1\",pid=\"11\"} 0.00025"));
    CHECK(has(t, "seqcast_rtt_seconds{role=\"archiver\",stream=\"1\",pid=\"12\"} 1e-09"));
    CHECK(has(t, "seqcast_messages_in_total{role=\"we\\\"ird\\\\role\\n\",stream=\"1\",pid=\"15\"} 1"));
    CHECK(t.find("seqcast_head_offset{role=\"we") == std::string::npos);  // a counter it lacks: no sample
    // Each family is announced once.
    std::size_t n = 0;
    for (std::size_t at = 0; (at = t.find("# TYPE seqcast_messages_in_total ", at)) != std::string::npos; ++at) ++n;
    CHECK(n == 1);
    // Lag: consumers of a stream whose sequencer runs here; never negative; none for stream 2 or
    // for a consumer that exited; none for the sequencer itself.
    CHECK(has(t, "# TYPE seqcast_lag_offsets gauge"));
    CHECK(has(t, "seqcast_lag_offsets{role=\"sub\",stream=\"1\",pid=\"11\"} 10"));
    CHECK(has(t, "seqcast_lag_offsets{role=\"archiver\",stream=\"1\",pid=\"12\"} 0"));
    CHECK(t.find("seqcast_lag_offsets{role=\"sub\",stream=\"2\"") == std::string::npos);
    CHECK(t.find("seqcast_lag_offsets{role=\"sub\",stream=\"1\",pid=\"14\"}") == std::string::npos);
    CHECK(t.find("seqcast_lag_offsets{role=\"sequencer\"") == std::string::npos);
}

TEST_CASE("an exited sequencer is no head for lag") {
    const std::vector<ProcessCounters> procs = {
        {10, "sequencer", 1, false, {{"head_offset", 1000}}},
        {11, "sub", 1, true, {{"head_offset", 990}}},
    };
    CHECK(prometheusText(procs, kInfo).find("seqcast_lag_offsets{") == std::string::npos);
}

TEST_CASE("latency: one summary from the processes that record it, NaN quantiles for an empty window") {
    const std::vector<CounterInfo> info = {
        {"messages_in", "Messages received", false},
        {"latency_count", "measured", false},
        {"latency_sum_ns", "sum", false},
        {"latency_window_count", "in the window", true},
        {"latency_p50_ns", "p50", true},
        {"latency_p90_ns", "p90", true},
        {"latency_p99_ns", "p99", true},
        {"latency_p999_ns", "p99.9", true},
        {"latency_max_ns", "max", true},
    };
    auto proc = [](std::uint64_t pid, std::uint64_t count, std::uint64_t window) {
        return ProcessCounters{pid, "sub", 1, true,
                               {{"messages_in", count}, {"latency_count", count}, {"latency_sum_ns", count * 2'000'000},
                                {"latency_window_count", window}, {"latency_p50_ns", 2'000'000}, {"latency_p90_ns", 3'000'000},
                                {"latency_p99_ns", 40'000'000}, {"latency_p999_ns", 41'000'000}, {"latency_max_ns", 42'000'000}}};
    };
    const std::string t = prometheusText({proc(20, 100, 100), proc(21, 50, 0), proc(22, 0, 0)}, info);
    CHECK(has(t, "# TYPE seqcast_latency_seconds summary"));
    CHECK(has(t, "seqcast_latency_seconds{role=\"sub\",stream=\"1\",pid=\"20\",quantile=\"0.5\"} 0.002"));
    CHECK(has(t, "seqcast_latency_seconds{role=\"sub\",stream=\"1\",pid=\"20\",quantile=\"0.99\"} 0.04"));
    CHECK(has(t, "seqcast_latency_seconds{role=\"sub\",stream=\"1\",pid=\"20\",quantile=\"1\"} 0.042"));
    CHECK(has(t, "seqcast_latency_seconds_sum{role=\"sub\",stream=\"1\",pid=\"20\"} 0.2"));
    CHECK(has(t, "seqcast_latency_seconds_count{role=\"sub\",stream=\"1\",pid=\"20\"} 100"));
    CHECK(has(t, "seqcast_latency_seconds{role=\"sub\",stream=\"1\",pid=\"21\",quantile=\"0.9\"} NaN"));
    CHECK(has(t, "seqcast_latency_seconds_count{role=\"sub\",stream=\"1\",pid=\"21\"} 50"));
    CHECK(t.find("pid=\"22\",quantile") == std::string::npos);  // records none: no summary
    CHECK(t.find("seqcast_latency_count") == std::string::npos);  // the raw counters are not served as well
    CHECK(t.find("seqcast_latency_p50") == std::string::npos);
    CHECK(has(t, "seqcast_messages_in_total{role=\"sub\",stream=\"1\",pid=\"22\"} 0"));
}
