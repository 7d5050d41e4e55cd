// seqcast demo: every role on loopback multicast, with injected loss on both legs, a live progress
// line and a final report built from what the processes themselves measured.
#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <thread>

#include "fabric/clock.h"
#include "tools/commands.h"
#include "tools/common.h"
#include "tools/process.h"

namespace seqcast::tools {

namespace {

// A process's counter by name; 0 while the process has not published its counters yet.
std::uint64_t counterOf(const std::vector<ProcessCounters>& all, pid_t pid, const char* name) {
    for (const auto& s : all)
        if (s.pid == static_cast<std::uint64_t>(pid)) return s.values.at(name);
    return 0;
}

std::string us(double ns) {
    char b[32];
    std::snprintf(b, sizeof b, "%.1f us", ns / 1000.0);
    return b;
}

}  // namespace

int runDemo(int argc, char** argv) {
    const CommandInfo info{
        "demo",
        "Run a sequencer, publishers and subscribers on loopback multicast with injected loss, and report.",
        "  seqcast demo\n  seqcast demo --duration 30 --rate 50000 --loss 0.02\n  seqcast demo --subscribers 5 --keep\n"};
    po::options_description d("Demo");
    d.add_options()
        ("duration", po::value<std::string>()->default_value("10"), "seconds of publishing (1..3600)")
        ("publishers", po::value<std::string>()->default_value("2"), "publisher processes (1..16)")
        ("subscribers", po::value<std::string>()->default_value("3"), "subscriber processes (1..32)")
        ("rate", po::value<std::string>()->default_value("10000"), "messages per second per publisher (1..10000000)")
        ("size", po::value<std::string>()->default_value("16-2048"), "message sizes: N, A-B or exp:MEAN")
        ("loss", po::value<std::string>()->default_value("0.01"), "random datagram loss on each leg (0..0.5)")
        ("burst-loss", po::value<std::string>()->default_value("0.0002"), "probability a burst of 20 losses starts (0..0.1)")
        ("seed", po::value<std::string>()->default_value("0"), "fault seed (0: from the clock)")
        ("keep", "keep the working directory (logs, JSON summaries, state)")
        ("svg", po::value<std::string>()->default_value("seqcast-demo-latency.svg"), "where subscriber 1 writes its latency-by-percentile plot");
    po::variables_map vm;
    if (auto rc = parseCommandLine(info, argc, argv, d, vm)) return *rc;
    std::uint64_t durationS, nPub, nSub, rate, seed;
    double loss, burst;
    std::string size, svgPath;
    try {
        durationS = getU64(vm, "duration", 1, 3600);
        nPub = getU64(vm, "publishers", 1, 16);
        nSub = getU64(vm, "subscribers", 1, 32);
        rate = getU64(vm, "rate", 1, 10'000'000);
        loss = getDouble(vm, "loss", 0, 0.5);
        burst = getDouble(vm, "burst-loss", 0, 0.1);
        seed = getU64(vm, "seed", 0, ~std::uint64_t{0});
        size = vm["size"].as<std::string>();
        svgPath = vm["svg"].as<std::string>();
        (void)parseSizeSpec("size", size, 1u << 20);  // the publishers' default --max-message
        checkPath("svg", svgPath, PathUse::Write);
    } catch (const UsageError& e) {
        std::cerr << "seqcast demo: " << e.what() << "\n";
        return kExitUsage;
    }
    if (seed == 0) seed = monoNs() | 1;
    installStopSignals();
    char tmpl[] = "/tmp/seqcast-demo-XXXXXX";
    if (::mkdtemp(tmpl) == nullptr) {
        std::perror("seqcast demo: mkdtemp");
        return 1;
    }
    const std::string dir = tmpl;
    Rng rng(seed);
    const unsigned port = 20000 + static_cast<unsigned>(rng.below(20000)) * 2;
    const std::string control = "127.0.0.1:" + std::to_string(port);
    const std::string group = "239.255." + std::to_string(1 + rng.below(250)) + "." + std::to_string(1 + rng.below(250)) +
                              ":" + std::to_string(port + 1);
    const std::uint64_t perPub = rate * durationS;
    const std::string archive = "127.0.0.1:" + std::to_string(port + 100);
    const std::string lossS = std::to_string(loss), burstS = std::to_string(burst);

    std::printf("seqcast demo: %llu publishers x %llu messages (%s B, %llu msg/s each) -> sequencer -> %llu subscribers\n"
                "  loopback multicast %s, control %s; injected loss %.2f%% + bursts of 20 (p=%s) on both legs\n"
                "  working directory %s\n",
                static_cast<unsigned long long>(nPub), static_cast<unsigned long long>(perPub), size.c_str(),
                static_cast<unsigned long long>(rate), static_cast<unsigned long long>(nSub), group.c_str(), control.c_str(),
                loss * 100, burstS.c_str(), dir.c_str());
    std::fflush(stdout);

    std::vector<pid_t> all;
    auto cleanup = [&] {
        for (pid_t p : all) stopChild(p, SIGKILL, 1000);
    };
    const pid_t seqPid = spawnSelf({"sequencer", "--control", control, "--group", group, "--state", dir + "/sequencer.state",
                                    "--ring", "128M", "--loss", lossS, "--burst-loss", burstS, "--burst-length", "20",
                                    "--fault-seed", std::to_string(seed)},
                                   dir + "/sequencer.out", dir + "/sequencer.log");
    all.push_back(seqPid);
    const pid_t archPid = spawnSelf({"archiver", "--group", group, "--control", archive, "--log", dir + "/archive.log",
                                     "--size", "256M", "--segment", "16M", "--loss", lossS, "--burst-loss", burstS,
                                     "--burst-length", "20", "--fault-seed", std::to_string(seed + 77)},
                                    dir + "/archiver.out", dir + "/archiver.log");
    all.push_back(archPid);
    std::vector<pid_t> subs, pubs;
    pid_t latePid = -1;
    for (std::uint64_t i = 0; i < nSub; ++i) {
        const std::string n = std::to_string(i + 1);
        std::vector<std::string> args = {"sub", "--group", group, "--verify", "--exit-on-eos", "--json", dir + "/sub" + n + ".json",
                                         "--duration", std::to_string(durationS + 120), "--loss", lossS, "--burst-loss", burstS,
                                         "--burst-length", "20", "--fault-seed", std::to_string(seed + 1000 * (i + 1))};
        if (i == 0) {
            args.push_back("--svg");
            args.push_back(svgPath);
        }
        subs.push_back(spawnSelf(args, dir + "/sub" + n + ".out", dir + "/sub" + n + ".log"));
        all.push_back(subs.back());
    }
    // Subscribers start at `latest`: wait until each has seen the sequencer's heartbeat.
    const std::uint64_t joinBy = monoNs() + 10'000'000'000ull;
    for (;;) {
        const auto snap = readCounters();
        bool ready = counterOf(snap, seqPid, "heartbeats_sent") > 0 && counterOf(snap, archPid, "heartbeats_received") > 0;
        for (pid_t s : subs) ready = ready && counterOf(snap, s, "heartbeats_received") > 0;
        if (ready) break;
        if (monoNs() > joinBy || stopRequested()) {
            std::fprintf(stderr, "seqcast demo: the subscribers did not hear the sequencer within 10 s (multicast on loopback? see %s)\n", dir.c_str());
            cleanup();
            return 1;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    const std::uint64_t t0 = monoNs();
    for (std::uint64_t i = 0; i < nPub; ++i) {
        const std::string n = std::to_string(i + 1);
        pubs.push_back(spawnSelf({"pub", "--sequencer", control, "--rate", std::to_string(rate), "--count", std::to_string(perPub),
                                  "--size", size, "--seed", std::to_string(seed + i), "--json", dir + "/pub" + n + ".json",
                                  "--linger", "60"},
                                 dir + "/pub" + n + ".out", dir + "/pub" + n + ".log"));
        all.push_back(pubs.back());
    }
    // Live progress until every publisher is done.
    std::vector<int> pubRc(pubs.size(), -1);
    std::vector<std::uint64_t> pubSeen(pubs.size(), 0);
    const bool tty = ::isatty(1) != 0;
    std::uint64_t lastPrint = 0;
    for (;;) {
        bool done = true;
        for (std::size_t i = 0; i < pubs.size(); ++i) {
            if (pubRc[i] == -1) pubRc[i] = waitFor(pubs[i], 0);
            done = done && pubRc[i] != -1;
        }
        const std::uint64_t now = monoNs();
        if (now - lastPrint > 250'000'000 || done) {
            lastPrint = now;
            const auto snap = readCounters();
            std::uint64_t confirmed = 0, minSub = ~std::uint64_t{0}, gaps = 0;
            for (std::size_t i = 0; i < pubs.size(); ++i) {
                // A publisher that has exited took its counters file along: keep its last figure.
                pubSeen[i] = std::max(pubSeen[i], counterOf(snap, pubs[i], "messages_confirmed"));
                confirmed += pubSeen[i];
            }
            for (pid_t s : subs) {
                minSub = std::min(minSub, counterOf(snap, s, "messages_in"));
                gaps += counterOf(snap, s, "gaps_detected");
            }
            const double secs = static_cast<double>(now - t0) * 1e-9;
            char line[256];
            std::snprintf(line, sizeof line, "  %5.1fs  confirmed %llu/%llu  delivered(min) %llu  %s msg/s  gaps %llu  NAKs %llu  retransmits %llu",
                          secs, static_cast<unsigned long long>(confirmed), static_cast<unsigned long long>(perPub * nPub),
                          static_cast<unsigned long long>(minSub), fmtRate(static_cast<double>(minSub) / std::max(secs, 1e-3)).c_str(),
                          static_cast<unsigned long long>(gaps),
                          static_cast<unsigned long long>(counterOf(snap, seqPid, "naks_received")),
                          static_cast<unsigned long long>(counterOf(snap, seqPid, "retransmits")));
            if (tty) std::printf("\r%-120s", line);
            else if (done || static_cast<std::uint64_t>(secs) % 2 == 0) std::printf("%s\n", line);
            std::fflush(stdout);
        }
        if (done) break;
        // A late joiner, 40 % into the run: it replays from offset 0 out of the archive while the
        // stream runs, and merges into live.
        if (latePid < 0 && now - t0 >= durationS * 400'000'000ull) {
            latePid = spawnSelf({"sub", "--group", group, "--from", "0", "--archiver", archive, "--verify", "--exit-on-eos",
                                 "--json", dir + "/late.json", "--duration", std::to_string(durationS + 120)},
                                dir + "/late.out", dir + "/late.log");
            all.push_back(latePid);
        }
        if (stopRequested()) {
            cleanup();
            std::printf("\nseqcast demo: interrupted\n");
            return 1;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    if (tty) std::printf("\n");
    const double pubSecs = static_cast<double>(monoNs() - t0) * 1e-9;
    // Let the subscribers finish repairs, then end the stream: they exit on END_OF_STREAM.
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    stopChild(seqPid, SIGTERM, 5000);
    std::vector<int> subRc;
    if (latePid >= 0) subs.push_back(latePid);
    for (pid_t s : subs) subRc.push_back(waitFor(s, 30'000));
    for (std::size_t i = 0; i < subs.size(); ++i)
        if (subRc[i] == -1) subRc[i] = stopChild(subs[i], SIGTERM, 2000);

    // Report from what each process wrote.
    bool ok = true;
    std::uint64_t confirmedTotal = 0;
    for (std::size_t i = 0; i < pubs.size(); ++i) {
        const std::string j = readFileText(dir + "/pub" + std::to_string(i + 1) + ".json");
        confirmedTotal += static_cast<std::uint64_t>(std::max(0.0, jsonNumber(j, "confirmed")));
        if (pubRc[i] != 0) ok = false;
    }
    std::printf("\nseqcast demo report\n");
    std::printf("  published      %llu messages, %llu confirmed by the sequencer, in %.2f s (%s msg/s)\n",
                static_cast<unsigned long long>(perPub * nPub), static_cast<unsigned long long>(confirmedTotal), pubSecs,
                fmtRate(static_cast<double>(confirmedTotal) / pubSecs).c_str());
    std::string digest0;
    bool digestsEqual = true;
    const std::size_t liveSubs = latePid >= 0 ? subs.size() - 1 : subs.size();
    for (std::size_t i = 0; i < liveSubs; ++i) {
        const std::string j = readFileText(dir + "/sub" + std::to_string(i + 1) + ".json");
        if (j.empty()) {
            std::printf("  subscriber %zu: no summary (exit %d; log %s/sub%zu.log)\n", i + 1, subRc[i], dir.c_str(), i + 1);
            ok = false;
            continue;
        }
        const auto msgs = static_cast<std::uint64_t>(jsonNumber(j, "messages"));
        const std::string dg = jsonString(j, "digest");
        if (i == 0) digest0 = dg;
        digestsEqual = digestsEqual && dg == digest0;
        const auto lost = static_cast<std::uint64_t>(jsonNumber(j, "lost_offsets"));
        const std::size_t lat = j.find("\"latency\":");
        std::printf("  subscriber %zu   %llu messages, digest %s, %llu gaps, %llu offsets repaired (%llu NAKs, %llu suppressed), "
                    "%llu CRC drops, %llu lost\n"
                    "                 latency publish->deliver p50 %s  p90 %s  p99 %s  p99.9 %s  max %s\n",
                    i + 1, static_cast<unsigned long long>(msgs), dg.c_str(),
                    static_cast<unsigned long long>(jsonNumber(j, "gaps")),
                    static_cast<unsigned long long>(jsonNumber(j, "repaired_offsets")),
                    static_cast<unsigned long long>(jsonNumber(j, "naks_sent")),
                    static_cast<unsigned long long>(jsonNumber(j, "naks_suppressed")),
                    static_cast<unsigned long long>(jsonNumber(j, "crc_drops")), static_cast<unsigned long long>(lost),
                    us(jsonNumber(j, "p50_ns", lat)).c_str(), us(jsonNumber(j, "p90_ns", lat)).c_str(),
                    us(jsonNumber(j, "p99_ns", lat)).c_str(), us(jsonNumber(j, "p999_ns", lat)).c_str(),
                    us(jsonNumber(j, "max_ns", lat)).c_str());
        if (msgs != confirmedTotal || lost != 0) ok = false;
    }
    if (latePid >= 0) {
        const std::string j = readFileText(dir + "/late.json");
        const auto msgs = static_cast<std::uint64_t>(std::max(0.0, jsonNumber(j, "messages")));
        const std::string dg = jsonString(j, "digest");
        const bool good = !j.empty() && msgs == confirmedTotal && dg == digest0 && jsonNumber(j, "lost_offsets") == 0;
        std::printf("  late joiner    started %.1f s in with --from 0: %llu messages (replayed from the archiver, then live), digest %s: "
                    "replay-merge %s\n",
                    static_cast<double>(durationS) * 0.4, static_cast<unsigned long long>(msgs), dg.empty() ? "-" : dg.c_str(),
                    good ? "PASS (no gap, no duplicate)" : "FAIL");
        ok = ok && good;
    }
    stopChild(archPid, SIGTERM, 5000);
    const std::string archLog = readFileText(dir + "/archiver.log");
    if (const auto at = archLog.rfind("seqcast archiver: stopped"); at != std::string::npos)
        std::printf("  archiver       %s", archLog.substr(at + 18).c_str());
    const std::string seqLog = readFileText(dir + "/sequencer.log");
    std::printf("  sequencer      %s", seqLog.substr(seqLog.rfind("seqcast sequencer: stopped") == std::string::npos ? seqLog.size() : seqLog.rfind("seqcast sequencer: stopped") + 19).c_str());
    if (::access(svgPath.c_str(), R_OK) == 0) std::printf("  latency plot   %s (subscriber 1, latency by percentile)\n", svgPath.c_str());
    std::printf("  result         %s: every subscriber %s every confirmed message, digests %s\n", ok && digestsEqual ? "PASS" : "FAIL",
                ok ? "delivered" : "did NOT deliver", digestsEqual ? "identical" : "DIFFER");
    if (vm.count("keep") == 0 && ok && digestsEqual) {
        const std::string rm = "rm -rf '" + dir + "'";
        if (std::system(rm.c_str()) != 0) std::fprintf(stderr, "seqcast demo: could not remove %s\n", dir.c_str());
    } else {
        std::printf("  logs and summaries kept in %s\n", dir.c_str());
    }
    return ok && digestsEqual ? 0 : 1;
}

}  // namespace seqcast::tools
