// seqcast sub: subscribe to a stream; print, count or verify what is delivered. A client of the
// public API (seqcast::Subscriber).
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <iostream>
#include <optional>
#include <string>

#include <seqcast/seqcast.hpp>

#include "fabric/clock.h"
#include "fabric/wire.h"
#include "tools/commands.h"
#include "tools/common.h"
#include "tools/ha_cli.h"
#include "tools/plot.h"
#include "tools/sink.h"

namespace seqcast::tools {

int runSub(int argc, char** argv) {
    const CommandInfo info{
        "sub",
        "Subscribe to a stream: deliver every message in offset order, exactly once, repairing gaps with NAKs.",
        "  seqcast sub --group 239.1.1.1:40001 --print\n"
        "  seqcast sub --group 239.1.1.1:40001 --verify --messages 400000 --json sub1.json\n"
        "  seqcast sub --from earliest --archiver 127.0.0.1:40100 --verify   # late joiner: replay, then live\n"
        "  seqcast sub --mode exactly-once --commit-file app.commit --archiver 127.0.0.1:40100 --print --output app.out\n"
        "  seqcast sub --mode at-most-once --loss 0.01   # see gaps reported instead of repaired\n"};
    po::options_description d("Subscriber");
    d.add_options()
        ("stream", po::value<std::string>()->default_value("1"), "stream id")
        ("group", po::value<std::string>()->default_value("239.1.1.1:40001"), "multicast group:port of the stream")
        ("ha", po::value<std::string>(),
         "etcd endpoints (http://HOST:2379[,...]): find the stream's group in the directory its hot-standby "
         "sequencers keep there (sequencer --ha), instead of --group")
        ("sequencer", po::value<std::string>(), "where NAKs go (default: the source of the stream's datagrams)")
        ("archiver", po::value<std::string>(), "archiver address: replays (--from) and repairs older than the sequencer's ring")
        ("from", po::value<std::string>()->default_value("latest"), "start at latest, earliest or an offset (the last two replay from --archiver)")
        ("mode", po::value<std::string>()->default_value("at-least-once"), "at-least-once, at-most-once, or exactly-once (needs --commit-file)")
        ("commit-file", po::value<std::string>(), "exactly-once: the committed position and totals (and --output length); a restart resumes from it, processing nothing twice")
        ("commit-sync-ms", po::value<std::string>()->default_value("0"), "exactly-once: also msync the commit this often (0: never; survives process crashes either way)")
        ("print", "print each message: offset publisher pub_seq length payload")
        ("output", po::value<std::string>(),
         "--print into this file instead of stdout; with exactly-once, a restart first cuts it back to the length "
         "committed with the position, so every message is in it exactly once, whole")
        ("verify", "print a digest of the delivered stream at the end")
        ("messages", po::value<std::string>()->default_value("0"), "stop after this many messages (0: no limit)")
        ("until-offset", po::value<std::string>()->default_value("0"), "stop once every offset below this is delivered (0: no limit)")
        ("exit-on-eos", "stop when the sequencer ends the stream (END_OF_STREAM)")
        ("duration", po::value<std::string>()->default_value("0"), "stop after this many seconds (0: no limit)")
        ("idle-timeout", po::value<std::string>()->default_value("0"), "stop after this many seconds without a delivery, once started (0: never)")
        ("nak-rtt-us", po::value<std::string>()->default_value("200"), "round-trip time assumed until measured (microseconds)")
        ("nak-deadline-ms", po::value<std::string>()->default_value("2000"), "give up on a gap after this long: loss notice")
        ("reorder-buffer", po::value<std::string>()->default_value("64M"), "bytes of datagrams held ahead of a gap")
        ("max-datagram", po::value<std::string>()->default_value("2048"), "largest datagram held ahead of a gap (the sequencer's MTU or more)")
        ("max-message", po::value<std::string>()->default_value("1M"), "largest message reassembled")
        ("json", po::value<std::string>(), "write a JSON summary to this file")
        ("svg", po::value<std::string>(), "write a latency-by-percentile plot (publish -> deliver and per hop) to this file");
    addSocketOptions(d);
    addFaultOptions(d, "rx");
    po::variables_map vm;
    if (auto rc = parseCommandLine(info, argc, argv, d, vm)) return *rc;

    SubscriberOptions o;
    std::string etcd;  // --ha
    std::uint64_t maxMessages = 0, untilOffset = 0, durationS = 0, idleS = 0, commitSyncMs = 0;
    bool busyPoll = false;
    try {
        o.stream = static_cast<std::uint32_t>(getU64(vm, "stream", 1, 0xFFFFFFFFu));
        const auto group = getEndpoint(vm, "group");
        if (!group.multicast()) throw UsageError("--group: " + group.str() + " is not a multicast address (224.0.0.0/4)");
        o.group = group.str();
        if (vm.count("ha")) {
            etcd = getEtcdEndpoints(vm, "ha");
            if (!vm["group"].defaulted()) throw UsageError("--ha and --group: choose one");
        }
        if (vm.count("sequencer")) o.sequencer = getEndpoint(vm, "sequencer").str();
        if (vm.count("archiver")) o.archiver = getEndpoint(vm, "archiver").str();
        o.start = vm["from"].as<std::string>();
        const std::string mode = vm["mode"].as<std::string>();
        if (mode == "at-least-once") o.delivery = Delivery::AtLeastOnce;
        else if (mode == "at-most-once") o.delivery = Delivery::AtMostOnce;
        else if (mode == "exactly-once") o.delivery = Delivery::ExactlyOnce;
        else throw UsageError("--mode: '" + mode + "' must be at-least-once, at-most-once or exactly-once");
        const bool exactlyOnce = o.delivery == Delivery::ExactlyOnce;
        if (exactlyOnce && !vm.count("commit-file")) throw UsageError("--mode exactly-once needs --commit-file");
        if (!exactlyOnce && vm.count("commit-file")) throw UsageError("--commit-file is for --mode exactly-once");
        commitSyncMs = getU64(vm, "commit-sync-ms", 0, 60000);
        maxMessages = getU64(vm, "messages", 0, ~std::uint64_t{0});
        untilOffset = getU64(vm, "until-offset", 0, ~std::uint64_t{0});
        durationS = getU64(vm, "duration", 0, 1ull << 32);
        idleS = getU64(vm, "idle-timeout", 0, 1ull << 32);
        o.nakInitialRttUs = getU64(vm, "nak-rtt-us", 1, 10'000'000);
        o.nakDeadlineMs = getU64(vm, "nak-deadline-ms", 1, 3'600'000);
        o.recordLatency = true;  // it measures every message anyway; `seqcast stat --serve` shows it
        o.reorderBytes = getSize(vm, "reorder-buffer", 64u << 10, 1ull << 34);
        o.maxMessage = static_cast<std::uint32_t>(getSize(vm, "max-message", 1, 1u << 30));
        o.maxDatagram = getU64(vm, "max-datagram", wire::kMinMtu, wire::kMaxDatagram);
        checkPath(vm, "json", PathUse::Write);
        checkPath(vm, "svg", PathUse::Write);
        if (exactlyOnce) {
            checkPath(vm, "commit-file", PathUse::ReadWrite);
            o.commitFile = vm["commit-file"].as<std::string>();
        }
        if (vm.count("output")) checkPath(vm, "output", PathUse::Write);
        if (vm.count("output") && !vm.count("print")) throw UsageError("--output is where --print writes: give --print too");
        pinCpu(vm);
        busyPoll = vm.count("busy-poll") != 0;
        o.network = networkOptions(vm);
        o.network.faults = faultOptions(vm);
    } catch (const UsageError& e) {
        std::cerr << "seqcast sub: " << e.what() << "\n(see seqcast sub --help)\n";
        return kExitUsage;
    }
    if (!etcd.empty()) {
        const auto dir = lookupStream("sub", etcd, o.stream);
        if (!dir) return 1;
        if (dir->group.empty()) {
            std::fprintf(stderr, "seqcast sub: stream %u in etcd names no group\n", o.stream);
            return 1;
        }
        o.group = dir->group;
        std::fprintf(stderr, "seqcast sub: stream %u from etcd: group %s, leader %s (epoch %u)\n", o.stream, o.group.c_str(),
                     dir->leader.empty() ? "(none now)" : dir->leader.c_str(), dir->epoch);
    }
    installStopSignals();
    // Exactly-once: the sink's totals and output length go into each commit with the position.
    DeliverySink* sinkForCommit = nullptr;
    o.onCommit = [&sinkForCommit](std::array<std::uint64_t, 6>& app) {
        if (sinkForCommit != nullptr) sinkForCommit->save(app);
    };
    std::unique_ptr<Subscriber> subscriber;
    try {
        subscriber = Subscriber::create(o);
    } catch (const SetupError& e) {
        return apiSetupFailure("sub", e);
    }
    Subscriber& sub = *subscriber;
    const bool exactlyOnce = o.delivery == Delivery::ExactlyOnce;
    const Subscriber::Commit committed = sub.committed();
    // Where --print writes. Exactly-once: one write(2) per line before the commit that covers it;
    // into an --output file, cut back on restart to the length committed with the position.
    std::FILE* printFile = vm.count("print") ? stdout : nullptr;
    int printFd = STDOUT_FILENO;
    if (vm.count("output")) {
        const std::string path = vm["output"].as<std::string>();
        printFd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC | (exactlyOnce ? 0 : O_TRUNC), 0644);
        if (printFd < 0) return setupFailure("sub", "output", failErrno("open " + path).value());
        if (exactlyOnce) {
            const std::uint64_t printed = committed.present ? committed.app[4] : 0;
            struct stat st {};
            if (::fstat(printFd, &st) != 0) return setupFailure("sub", "output", failErrno("stat " + path).value());
            if (static_cast<std::uint64_t>(st.st_size) < printed) {
                std::fprintf(stderr, "seqcast sub: --output: %s holds %lld bytes, fewer than the %llu its commit file %s says were printed: "
                             "not the output that goes with this commit file\n", path.c_str(), static_cast<long long>(st.st_size),
                             static_cast<unsigned long long>(printed), o.commitFile.c_str());
                return kExitUsage;
            }
            // Anything after the committed length was written by an incarnation killed before its commit.
            if (::ftruncate(printFd, static_cast<off_t>(printed)) != 0 || ::lseek(printFd, 0, SEEK_END) < 0)
                return setupFailure("sub", "output", failErrno("truncate " + path).value());
        } else {
            printFile = ::fdopen(printFd, "w");
            if (printFile == nullptr) return setupFailure("sub", "output", failErrno("open " + path).value());
        }
    }
    DeliverySink sink(printFile);
    if (exactlyOnce && printFile != nullptr) sink.printUnbuffered(printFd);
    if (exactlyOnce) sinkForCommit = &sink;
    if (committed.present) {
        sink.restore(committed.app);
        std::fprintf(stderr, "seqcast sub: exactly-once: resuming at offset %llu after %llu processed messages\n",
                     static_cast<unsigned long long>(committed.next), static_cast<unsigned long long>(committed.app[0]));
    }
    std::uint64_t lastDeliveryNs = 0, lastCommitSyncNs = 0;
    const MessageHandler onMessage = [&](const Message& m) { sink.onMessage(m); };
    const LossHandler onLoss = [&](const Loss& l) { sink.onLoss(Offset{l.first}, l.count); };
    bool replayFailureShown = false;
    ApiIdler idler(busyPoll);
    const std::uint64_t start = monoNs();
    const std::uint64_t end = durationS ? start + durationS * 1'000'000'000ull : ~std::uint64_t{0};
    bool sawEos = false;
    while (!stopRequested()) {
        const std::uint64_t now = monoNs();
        if (now >= end) break;
        const std::uint64_t before = sink.delivered;
        const int work = sub.poll(onMessage, onLoss);
        if (sink.delivered != before) lastDeliveryNs = now;
        if (!replayFailureShown && !sub.replayFailure().empty()) {
            std::fprintf(stderr, "seqcast sub: %s\n", sub.replayFailure().c_str());
            replayFailureShown = true;
        }
        if (exactlyOnce && commitSyncMs != 0 && now - lastCommitSyncNs >= commitSyncMs * 1'000'000) {
            (void)sub.syncCommit();
            lastCommitSyncNs = now;
        }
        if (maxMessages != 0 && sink.delivered >= maxMessages) break;
        if (untilOffset != 0 && sub.started() && sub.nextOffset() >= untilOffset) break;
        if (vm.count("exit-on-eos") && sub.endOfStream()) { sawEos = true; break; }
        if (idleS != 0 && sink.delivered > 0 && now - lastDeliveryNs > idleS * 1'000'000'000ull) break;
        // Idle until a datagram, a timer, or 2 ms (the stop conditions above are looked at again at
        // least that often).
        idler.idle(work, sub, 2000);
    }
    if (exactlyOnce) (void)sub.syncCommit();
    if (printFile != nullptr && printFile != stdout) std::fclose(printFile);
    std::fflush(stdout);
    if (sink.outputFailed) std::fprintf(stderr, "seqcast sub: writing the printed messages failed: the output is incomplete\n");
    const double secs = static_cast<double>(monoNs() - start) * 1e-9;
    const CounterValues c = sub.counters();
    std::fprintf(stderr,
                 "seqcast sub: %llu messages (%llu bytes), offsets %llu..%llu, %llu gaps, %llu offsets repaired, %llu NAKs, "
                 "%llu suppressed, %llu lost, %llu crc drops, %llu entry crc drops%s\n",
                 static_cast<unsigned long long>(sink.delivered), static_cast<unsigned long long>(sink.bytes),
                 static_cast<unsigned long long>(sink.firstOffset), static_cast<unsigned long long>(sink.lastOffset),
                 static_cast<unsigned long long>(c.at("gaps_detected")), static_cast<unsigned long long>(c.at("gap_offsets_repaired")),
                 static_cast<unsigned long long>(c.at("nak_ranges_sent")), static_cast<unsigned long long>(c.at("naks_suppressed")),
                 static_cast<unsigned long long>(sink.lostOffsets), static_cast<unsigned long long>(c.at("drop_bad_crc")),
                 static_cast<unsigned long long>(c.at("drop_bad_entry_crc")), sawEos ? ", end of stream" : "");
    std::fprintf(stderr, "seqcast sub: latency publish->deliver %s\n", latencySummary(sink.e2e).c_str());
    if (vm.count("verify")) std::printf("digest %s messages %llu\n", sink.digest().c_str(), static_cast<unsigned long long>(sink.delivered));
    if (vm.count("svg")) {
        const std::vector<Series> series = {{"publish -> deliver", &sink.e2e},
                                            {"publish -> sequencer", &sink.hopPubSeq},
                                            {"sequencer -> deliver", &sink.hopSeqSub}};
        if (!writeFile(vm["svg"].as<std::string>(), svgPlot(series, "seqcast sub: latency by percentile")))
            std::fprintf(stderr, "seqcast sub: cannot write %s\n", vm["svg"].as<std::string>().c_str());
    }
    if (vm.count("json")) {
        Json j;
        j.begin();
        sink.summaryJson(j);
        j.field("next_offset", sub.nextOffset());
        j.field("epoch", std::uint64_t{sub.epoch()});
        j.field("gaps", c.at("gaps_detected"));
        j.field("repaired_offsets", c.at("gap_offsets_repaired"));
        j.field("naks_sent", c.at("nak_ranges_sent"));
        j.field("naks_suppressed", c.at("naks_suppressed"));
        j.field("gaps_filled_before_nak", c.at("gaps_filled_before_nak"));
        j.field("crc_drops", c.at("drop_bad_crc"));
        j.field("entry_crc_drops", c.at("drop_bad_entry_crc"));  // datagrams whose entry failed the publisher's CRC
        j.field("duplicates_dropped", c.at("drop_duplicate"));
        j.field("epoch_changes", c.at("epoch_changes"));
        j.field("seconds", secs);
        j.key("end_of_stream").boolean(sawEos);
        if (c.count("fault_dropped") != 0) {
            // Injected faults (tests): what the subscriber's fault layer took away.
            j.field("fault_drops", c.at("fault_dropped"));
            j.field("fault_type_drops", c.at("fault_type_dropped"));
        }
        j.end();
        if (!writeFile(vm["json"].as<std::string>(), j.text())) std::fprintf(stderr, "seqcast sub: cannot write %s\n", vm["json"].as<std::string>().c_str());
    }
    return 0;
}

}  // namespace seqcast::tools
