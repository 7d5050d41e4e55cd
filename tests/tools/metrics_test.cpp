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
};

bool has(const std::string& text, const std::string& line) { return text.find(line + "\n") != std::string::npos; }

}  // namespace

TEST_CASE("metric names: counts end in _total, gauges keep their name, nanoseconds become seconds") {
    CHECK(metricName(kInfo[0]) == "seqcast_messages_in_total");
    CHECK(metricName(kInfo[1]) == "seqcast_head_offset");
    CHECK(metricName(kInfo[2]) == "seqcast_rtt_seconds");
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
