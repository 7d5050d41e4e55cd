// seqcast replay: fetch a range of a stream from an archiver.
#include <cstdio>
#include <iostream>

#include "client/subscriber.h"
#include "fabric/clock.h"
#include "fabric/shm_counters.h"
#include "tools/commands.h"
#include "tools/common.h"
#include "tools/sink.h"

namespace seqcast::tools {

int runReplay(int argc, char** argv) {
    const CommandInfo info{
        "replay",
        "Fetch offsets [from, to) of a stream from an archiver, in order, to stdout or a file.",
        "  seqcast replay --archiver 127.0.0.1:40100 --from 1000 --to 2000\n"
        "  seqcast replay --archiver 127.0.0.1:40100 --from earliest --to 500000 --verify\n"
        "  seqcast replay --archiver 127.0.0.1:40100 --from 0 --to 100 --out range.txt --wait\n"};
    po::options_description d("Replay");
    d.add_options()
        ("stream", po::value<std::string>()->default_value("1"), "stream id")
        ("archiver", po::value<std::string>()->default_value("127.0.0.1:40100"), "archiver address HOST:PORT")
        ("from", po::value<std::string>()->default_value("earliest"), "first offset, or earliest")
        ("to", po::value<std::string>(), "end offset (exclusive), required")
        ("wait", "wait for offsets the archiver does not have yet instead of failing")
        ("out", po::value<std::string>(), "write the messages to this file instead of stdout")
        ("verify", "print only a digest of the range (comparable with seqcast sub --verify)")
        ("timeout", po::value<std::string>()->default_value("30"), "give up after this many seconds")
        ("bind", po::value<std::string>()->default_value("127.0.0.1:0"), "local address")
        ("json", po::value<std::string>(), "write a JSON summary to this file");
    addAuthOptions(d);
    po::variables_map vm;
    if (auto rc = parseCommandLine(info, argc, argv, d, vm)) return *rc;
    client::SubscriberConfig cfg;
    transport::UdpConfig udp;
    std::uint64_t timeoutS = 30;
    bool wait = false;
    try {
        cfg.stream = StreamId{static_cast<std::uint32_t>(getU64(vm, "stream", 1, 0xFFFFFFFFu))};
        cfg.archiver = getEndpoint(vm, "archiver");
        auto from = client::parseStartPosition(vm["from"].as<std::string>());
        if (!from || from->kind == client::StartPosition::Kind::Latest) throw UsageError("--from: an offset or earliest");
        cfg.start = *from;
        if (!vm.count("to")) throw UsageError("--to: required (the end of the range, exclusive)");
        cfg.replayTo = getU64(vm, "to", 1, ~std::uint64_t{0} - 1);
        if (cfg.start.kind == client::StartPosition::Kind::AtOffset && cfg.replayTo <= cfg.start.offset.get())
            throw UsageError("--to: must be above --from");
        cfg.live = false;
        cfg.maxDatagram = 9216;
        wait = vm.count("wait") != 0;
        timeoutS = getU64(vm, "timeout", 1, 86400);
        checkPath(vm, "out", PathUse::Write);
        checkPath(vm, "json", PathUse::Write);
        udp.bind = getEndpoint(vm, "bind", true);
        udp.maxDatagram = 65536;
        authConfig(vm, udp);
        if (auto st = cfg.validate(); !st) throw UsageError(st.error().message());
    } catch (const UsageError& e) {
        std::cerr << "seqcast replay: " << e.what() << "\n(see seqcast replay --help)\n";
        return kExitUsage;
    }
    std::FILE* out = stdout;
    if (vm.count("out")) {
        out = std::fopen(vm["out"].as<std::string>().c_str(), "w");
        if (out == nullptr) {
            std::cerr << "seqcast replay: --out: cannot write '" << vm["out"].as<std::string>() << "'\n";
            return kExitUsage;
        }
    }
    installStopSignals();
    auto shm = ShmCounters::create("replay", cfg.stream.get());
    udp.counters = &shm->counters();
    auto t = openTransport(udp, transport::FaultConfig{}, "replay socket");
    if (!t) return setupFailure("replay", "bind", t.error());
    DeliverySink sink(vm.count("verify") ? nullptr : out);
    int rc = 0;
    client::SubscriberHandlers h;
    h.onMessage = [&](const client::Delivery& dl) { sink.onMessage(dl); };
    h.onLoss = [&](Offset first, std::uint64_t n) { sink.onLoss(first, n); };
    bool failed = false;
    h.onReplayEnd = [&](wire::ReplayStatus st, Offset next, Offset earliest) {
        switch (st) {
            case wire::ReplayStatus::Overwritten:
                std::fprintf(stderr, "seqcast replay: offset %llu is no longer retained; the earliest retained offset is %llu\n",
                             static_cast<unsigned long long>(next.get()), static_cast<unsigned long long>(earliest.get()));
                rc = 1;
                break;
            case wire::ReplayStatus::BeyondHead:
                std::fprintf(stderr, "seqcast replay: the archive ends at offset %llu (use --wait to wait for more)\n",
                             static_cast<unsigned long long>(next.get()));
                rc = 1;
                failed = true;
                break;
            case wire::ReplayStatus::Refused:
                std::fprintf(stderr, "seqcast replay: the archiver refused the replay (too many replays?)\n");
                rc = 1;
                failed = true;
                break;
            case wire::ReplayStatus::Failed:
                std::fprintf(stderr, "seqcast replay: the archiver could not read offset %llu (damaged log?)\n",
                             static_cast<unsigned long long>(next.get()));
                rc = 1;
                failed = true;
                break;
            default:
                break;
        }
    };
    // Without --wait the archiver answers "beyond head" for what it does not have yet.
    cfg.replayWait = wait;
    client::Subscriber sub(cfg, **t, **t, shm->counters(), h);
    Idler idler(IdleMode::Block, {(*t)->waitFd()});
    const std::uint64_t deadline = monoNs() + timeoutS * 1'000'000'000ull;
    while (!stopRequested() && !sub.replayFinished() && !failed) {
        const std::uint64_t now = monoNs();
        if (now >= deadline) {
            std::fprintf(stderr, "seqcast replay: timed out at offset %llu\n", static_cast<unsigned long long>(sub.nextOffset().get()));
            rc = 1;
            break;
        }
        idler.idle(sub.doWork(now), now + 1'000'000);
    }
    if (sink.lostOffsets > 0) rc = 1;
    std::fflush(out);
    if (out != stdout) std::fclose(out);
    std::fprintf(stderr, "seqcast replay: %llu messages, offsets %llu..%llu, %llu lost\n",
                 static_cast<unsigned long long>(sink.delivered), static_cast<unsigned long long>(sink.firstOffset),
                 static_cast<unsigned long long>(sink.lastOffset), static_cast<unsigned long long>(sink.lostOffsets));
    if (vm.count("verify")) std::printf("digest %s messages %llu\n", sink.digest().c_str(), static_cast<unsigned long long>(sink.delivered));
    if (vm.count("json")) {
        Json j;
        j.begin();
        sink.summaryJson(j);
        j.key("complete").boolean(rc == 0);
        j.end();
        writeFile(vm["json"].as<std::string>(), j.text());
    }
    return rc;
}

}  // namespace seqcast::tools
