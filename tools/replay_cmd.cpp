// seqcast replay: fetch a range of a stream from an archiver, through the public API (seqcast::Replay).
#include <cstdio>
#include <iostream>

#include <seqcast/seqcast.hpp>

#include "fabric/clock.h"
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
        "  seqcast replay --archiver 127.0.0.1:40100 --from 0 --to 100 --out range.txt --wait\n"
        "  seqcast replay --archiver 127.0.0.1:40100 --from 0 --to 100000 --speed 1   # at the pace it was published\n"};
    po::options_description d("Replay");
    d.add_options()
        ("stream", po::value<std::string>()->default_value("1"), "stream id")
        ("archiver", po::value<std::string>()->default_value("127.0.0.1:40100"), "archiver address HOST:PORT")
        ("from", po::value<std::string>()->default_value("earliest"), "first offset, or earliest")
        ("to", po::value<std::string>(), "end offset (exclusive), required")
        ("wait", "wait for offsets the archiver does not have yet instead of failing")
        ("speed", po::value<std::string>()->default_value("0"),
         "0: as fast as the archiver sends; > 0: paced as the messages were published (their publishers' "
         "timestamps), this many times faster (1: the original pace)")
        ("out", po::value<std::string>(), "write the messages to this file instead of stdout")
        ("verify", "print only a digest of the range (comparable with seqcast sub --verify)")
        ("timeout", po::value<std::string>()->default_value("30"), "give up after this many seconds")
        ("bind", po::value<std::string>()->default_value("127.0.0.1:0"), "local address")
        ("json", po::value<std::string>(), "write a JSON summary to this file");
    addAuthOptions(d);
    po::variables_map vm;
    if (auto rc = parseCommandLine(info, argc, argv, d, vm)) return *rc;
    ReplayOptions o;
    std::uint64_t timeoutS = 30;
    try {
        o.stream = static_cast<std::uint32_t>(getU64(vm, "stream", 1, 0xFFFFFFFFu));
        o.archiver = getEndpoint(vm, "archiver").str();
        const std::string from = vm["from"].as<std::string>();
        if (from == "earliest") {
            o.earliest = true;
            o.from = 0;
        } else {
            o.from = getU64(vm, "from", 0, ~std::uint64_t{0} - 2);
        }
        if (!vm.count("to")) throw UsageError("--to: required (the end of the range, exclusive)");
        o.to = getU64(vm, "to", 1, ~std::uint64_t{0} - 1);
        if (!o.earliest && o.to <= o.from) throw UsageError("--to: must be above --from");
        o.waitForData = vm.count("wait") != 0;
        o.speed = getDouble(vm, "speed", 0, 1e6);
        timeoutS = getU64(vm, "timeout", 1, 86400);
        checkPath(vm, "out", PathUse::Write);
        checkPath(vm, "json", PathUse::Write);
        o.bind = getEndpoint(vm, "bind", true).str();
        o.network.authKeyFile = authKeyFile(vm);
        o.network.authKeyId = authKeyId(vm);
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
    std::unique_ptr<Replay> replay;
    try {
        replay = Replay::create(o);
    } catch (const SetupError& e) {
        return apiSetupFailure("replay", e);
    }
    DeliverySink sink(vm.count("verify") ? nullptr : out);
    const MessageHandler onMessage = [&](const Message& m) { sink.onMessage(m); };
    const LossHandler onLoss = [&](const Loss& l) { sink.onLoss(Offset{l.first}, l.count); };
    int rc = 0;
    const std::uint64_t startNs = monoNs();
    const std::uint64_t deadline = startNs + timeoutS * 1'000'000'000ull;
    while (!stopRequested() && !replay->finished()) {
        if (monoNs() >= deadline) {
            std::fprintf(stderr, "seqcast replay: timed out at offset %llu\n", static_cast<unsigned long long>(replay->nextOffset()));
            rc = 1;
            break;
        }
        if (replay->poll(onMessage, onLoss) == 0) replay->wait(1000);
    }
    if (!replay->failure().empty()) {
        std::fprintf(stderr, "seqcast replay: %s\n", replay->failure().c_str());
        rc = 1;
    }
    const double seconds = static_cast<double>(monoNs() - startNs) / 1e9;
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
        j.field("seconds", seconds);
        j.field("speed", o.speed);
        j.end();
        writeFile(vm["json"].as<std::string>(), j.text());
    }
    return rc;
}

}  // namespace seqcast::tools
