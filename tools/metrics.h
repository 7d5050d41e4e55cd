// The Prometheus text exposition (format 0.0.4) of the counters of every seqcast process on a
// host, as `seqcast stat --serve` serves it on /metrics. Pure formatting over the public API's
// readCounters() and counterInfo(), so it is tested without a network.
#pragma once

#include <string>
#include <vector>

#include <seqcast/seqcast.hpp>

namespace seqcast::tools {

// Every process gets the labels role, stream and pid. Per process:
//   seqcast_up                      1 while the process runs, 0 once it exited (its file is left)
//   seqcast_<counter>_total         each count (counter)
//   seqcast_<gauge>                 each gauge; those in nanoseconds as seconds (rtt_ns -> rtt_seconds)
//   seqcast_lag_offsets             consumers (sub, replay, archiver) whose stream's sequencer runs
//                                   here: the stream's head offset minus the consumer's
// Each family once, with # HELP and # TYPE, its samples in the order of `processes`.
std::string prometheusText(const std::vector<ProcessCounters>& processes, const std::vector<CounterInfo>& info);

// The metric name a counter is served under ("datagrams_in" -> "seqcast_datagrams_in_total").
std::string metricName(const CounterInfo& c);

}  // namespace seqcast::tools
