// seqcast archiver: record a stream into a ring-buffer log and serve replays (seqcast::Archiver of
// the public API).
#include <unistd.h>

#include <cstdio>
#include <iostream>

#include <seqcast/seqcast.hpp>

#include "fabric/clock.h"
#include "tools/commands.h"
#include "tools/common.h"

namespace seqcast::tools {

int runArchiver(int argc, char** argv) {
    const CommandInfo info{
        "archiver",
        "Record a stream into a preallocated ring-buffer log (io_uring) and serve replays and old repairs.",
        "  seqcast archiver --group 239.1.1.1:40001 --control 127.0.0.1:40100 --log stream1.log --size 4G\n"
        "  seqcast archiver --config archiver.ini --durability batch\n"};
    po::options_description d("Archiver");
    d.add_options()
        ("stream", po::value<std::string>()->default_value("1"), "stream id")
        ("group", po::value<std::string>()->default_value("239.1.1.1:40001"), "multicast group:port of the stream")
        ("control", po::value<std::string>()->default_value("127.0.0.1:40100"), "address replay clients and NAKs reach")
        ("log", po::value<std::string>()->default_value("seqcast-archive.log"), "log file (created and preallocated if missing)")
        ("size", po::value<std::string>()->default_value("1G"), "log capacity (retention), a multiple of --segment")
        ("segment", po::value<std::string>()->default_value("16M"), "segment size: the unit overwritten when the ring wraps")
        ("durability", po::value<std::string>()->default_value("interval"), "none, interval (fdatasync every --sync-ms) or batch (per write)")
        ("sync-ms", po::value<std::string>()->default_value("10"), "interval between fdatasyncs (1..60000)")
        ("direct", "O_DIRECT writes and reads")
        ("no-uring", "use pread/pwrite instead of io_uring")
        ("max-sessions", po::value<std::string>()->default_value("64"), "concurrent replays (1..64)")
        ("max-sessions-per-client", po::value<std::string>()->default_value("8"), "concurrent replays per client address")
        ("window", po::value<std::string>()->default_value("1M"), "replay bytes in flight per client beyond its acknowledgement")
        ("reorder-buffer", po::value<std::string>()->default_value("128M"),
         "bytes of datagrams held ahead of a gap while it is repaired (a restarted archiver catches up through it)")
        ("backlog", po::value<std::string>()->default_value("512M"),
         "received bytes held in memory while the disk is slower than the stream or stalls (allocated as used)")
        ("nak-deadline-ms", po::value<std::string>()->default_value("2000"), "give up on a gap after this long (recorded as lost)")
        ("duration", po::value<std::string>()->default_value("0"), "stop after this many seconds (0: until SIGINT/SIGTERM)");
    // 128M: the archiver also writes what it receives; a deep socket queue rides out a stall of
    // the disk or the scheduler (~110k datagrams of 1 KiB) instead of losing and re-asking.
    addSocketOptions(d, "128M");
    addFaultOptions(d, "rx");
    po::variables_map vm;
    if (auto rc = parseCommandLine(info, argc, argv, d, vm)) return *rc;
    ArchiverOptions o;
    std::uint64_t durationS = 0;
    bool busyPoll = false;
    try {
        o.stream = static_cast<std::uint32_t>(getU64(vm, "stream", 1, 0xFFFFFFFFu));
        const auto group = getEndpoint(vm, "group");
        if (!group.multicast()) throw UsageError("--group: " + group.str() + " is not a multicast address (224.0.0.0/4)");
        o.group = group.str();
        o.log = vm["log"].as<std::string>();
        checkPath("log", o.log, PathUse::ReadWrite);
        o.segmentBytes = getSize(vm, "segment", 1u << 20, 1ull << 32);
        if (o.segmentBytes % 4096 != 0) throw UsageError("--segment: must be a multiple of 4096");
        o.sizeBytes = getSize(vm, "size", 4 * o.segmentBytes, 1ull << 44);
        if (o.sizeBytes % o.segmentBytes != 0) throw UsageError("--size: must be a multiple of --segment");
        const std::string durability = vm["durability"].as<std::string>();
        if (durability == "none") o.durability = Durability::None;
        else if (durability == "interval") o.durability = Durability::Interval;
        else if (durability == "batch") o.durability = Durability::Batch;
        else throw UsageError("--durability: '" + durability + "' must be none, interval or batch");
        o.syncIntervalMs = getU64(vm, "sync-ms", 1, 60000);
        o.direct = vm.count("direct") != 0;
        o.useUring = vm.count("no-uring") == 0;
        o.maxSessions = static_cast<std::uint32_t>(getU64(vm, "max-sessions", 1, 64));
        o.maxSessionsPerClient = static_cast<std::uint32_t>(getU64(vm, "max-sessions-per-client", 1, 64));
        o.windowBytes = getSize(vm, "window", 64 << 10, 1u << 30);
        o.nakDeadlineMs = getU64(vm, "nak-deadline-ms", 1, 3'600'000);
        o.reorderBytes = getSize(vm, "reorder-buffer", 64u << 10, 1ull << 34);
        o.backlogBytes = getSize(vm, "backlog", 1u << 20, 1ull << 40);
        durationS = getU64(vm, "duration", 0, 1ull << 32);
        pinCpu(vm);
        busyPoll = vm.count("busy-poll") != 0;
        o.control = getEndpoint(vm, "control").str();
        o.network = networkOptions(vm);
        // The 128M default is for a kernel socket queue. On DPDK --rcvbuf sizes the endpoints'
        // queues in the mbuf pool, which lives in the EAL's memory (-m): keep the other roles' 8M.
        if (o.network.api == SocketApi::Dpdk && vm["rcvbuf"].defaulted()) o.network.rcvbuf = 8u << 20;
        o.network.faults = faultOptions(vm);
    } catch (const UsageError& e) {
        std::cerr << "seqcast archiver: " << e.what() << "\n(see seqcast archiver --help)\n";
        return kExitUsage;
    }
    installStopSignals();
    const bool tty = ::isatty(2) != 0;
    int lastPct = -1;
    o.onRecoveryProgress = [&](double f) {
        const int pct = static_cast<int>(f * 100);
        if (!tty || pct == lastPct) return;
        lastPct = pct;
        std::fprintf(stderr, "\rseqcast archiver: recovering %s [%-50s] %3d%%", o.log.c_str(),
                     std::string(static_cast<std::size_t>(pct / 2), '#').c_str(), pct);
    };
    // Every range recorded as never received is said on stderr (at most 10 lines a second, the
    // rest summed up) and counted (archive_gaps, archive_gap_offsets; the stop line sums them).
    std::uint64_t gapWindowNs = 0, gapLines = 0, gapsHeld = 0, gapOffsetsHeld = 0;
    auto sayHeldGaps = [&] {
        if (gapsHeld == 0) return;
        std::fprintf(stderr, "seqcast archiver: %llu more gap range(s), %llu offsets, recorded as never received\n",
                     static_cast<unsigned long long>(gapsHeld), static_cast<unsigned long long>(gapOffsetsHeld));
        gapsHeld = gapOffsetsHeld = 0;
    };
    o.onGap = [&](std::uint64_t first, std::uint64_t count) {
        const std::uint64_t now = monoNs();
        if (now - gapWindowNs >= 1'000'000'000) {
            sayHeldGaps();
            gapWindowNs = now;
            gapLines = 0;
        }
        if (gapLines++ < 10) {
            std::fprintf(stderr, "seqcast archiver: offsets %llu..%llu (%llu) never received: recorded as a gap\n",
                         static_cast<unsigned long long>(first), static_cast<unsigned long long>(first + count - 1),
                         static_cast<unsigned long long>(count));
        } else {
            ++gapsHeld;
            gapOffsetsHeld += count;
        }
    };
    std::unique_ptr<Archiver> archiver;
    try {
        archiver = Archiver::create(o);
    } catch (const SetupError& e) {
        if (tty && lastPct >= 0) std::fprintf(stderr, "\n");
        return apiSetupFailure("archiver", e);
    }
    if (tty && lastPct >= 0) std::fprintf(stderr, "\n");
    Archiver& ar = *archiver;
    std::fprintf(stderr, "seqcast archiver: stream %u -> %s (%s, %s), offsets [%llu, %llu) retained%s; replays on %s\n",
                 o.stream, o.log.c_str(), ar.usingUring() ? "io_uring" : "pread/pwrite",
                 vm["durability"].as<std::string>().c_str(), static_cast<unsigned long long>(ar.earliestOffset()),
                 static_cast<unsigned long long>(ar.nextOffset()),
                 ar.recovered() ? (" (recovered " + std::to_string(ar.recoveredRecords()) + " records)").c_str() : "",
                 ar.controlAddress().c_str());
    if (ar.damagedRecords() != 0)
        std::fprintf(stderr,
                     "seqcast archiver: warning: recovery skipped %llu damaged record(s) inside the log; their offsets are "
                     "reported as lost, everything after them is kept (seqcast dump --verify shows where)\n",
                     static_cast<unsigned long long>(ar.damagedRecords()));
    if (ar.truncatedBytes() != 0)
        std::fprintf(stderr,
                     "seqcast archiver: warning: recovery stopped at a damaged or torn record; %llu bytes the checkpoint "
                     "counted as written follow it and are dropped (seqcast dump --verify shows where)\n",
                     static_cast<unsigned long long>(ar.truncatedBytes()));
    const std::uint64_t start = monoNs();
    const std::uint64_t end = durationS ? start + durationS * 1'000'000'000ull : ~std::uint64_t{0};
    int rc = 0;
    ApiIdler idler(busyPoll);
    while (!stopRequested()) {
        if (monoNs() >= end) break;
        const int work = ar.doWork();
        if (!ar.failure().empty()) {
            // Only what the last successful fdatasync covered is known to be on disk; writes since
            // then may never reach it (a thin-provisioned or failing device).
            std::fprintf(stderr, "seqcast archiver: recording stopped: %s (what is stored stays valid below offset %llu, "
                         "the last fdatasync; offsets written after it may be lost)\n",
                         ar.failure().c_str(), static_cast<unsigned long long>(ar.durableOffset()));
            rc = 1;
            break;
        }
        idler.idle(work, ar, 5000);
    }
    if (!ar.flush() && rc == 0) {
        std::fprintf(stderr, "seqcast archiver: %s\n", ar.failure().c_str());
        rc = 1;
    }
    sayHeldGaps();
    const CounterValues c = ar.counters();
    std::fprintf(stderr, "seqcast archiver: stopped; offsets [%llu, %llu) retained, durable below %llu, %llu replays served, "
                 "%llu offsets never received (%llu gap records)\n",
                 static_cast<unsigned long long>(ar.earliestOffset()), static_cast<unsigned long long>(ar.nextOffset()),
                 static_cast<unsigned long long>(ar.durableOffset()),
                 static_cast<unsigned long long>(c.at("replays_started")),
                 static_cast<unsigned long long>(c.at("archive_gap_offsets")),
                 static_cast<unsigned long long>(c.at("archive_gaps")));
    return rc;
}

}  // namespace seqcast::tools
