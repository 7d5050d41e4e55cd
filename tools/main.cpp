// seqcast: one binary, one subcommand per role.
#include <cstdio>
#include <cstring>
#include <string>

#include <seqcast/seqcast.h>
#include <seqcast/seqcast.hpp>

#include "seqcast_config.h"
#include "tools/commands.h"

namespace {

struct Sub {
    const char* name;
    const char* summary;
    int (*run)(int, char**);
};

const Sub kSubs[] = {
    {"demo", "every role on loopback multicast with injected loss, then a report", seqcast::tools::runDemo},
    {"sequencer", "run a stream's sequencer", seqcast::tools::runSequencer},
    {"pub", "publish messages (stdin lines, a file, or a synthetic rate)", seqcast::tools::runPub},
    {"sub", "subscribe and print / count / verify", seqcast::tools::runSub},
    {"archiver", "record a stream to a ring log and serve replays", seqcast::tools::runArchiver},
    {"replay", "fetch a range from an archiver", seqcast::tools::runReplay},
    {"dump", "decode and verify an archive log", seqcast::tools::runDump},
    {"ping", "latency at a fixed rate: percentiles, per hop, CSV/JSON/SVG", seqcast::tools::runPing},
    {"bench", "throughput, latency and repair benchmarks", seqcast::tools::runBench},
    {"stat", "counters of every seqcast process on this host", seqcast::tools::runStat},
    {"mold-egress", "multicast a stream as MoldUDP64, with a re-request server", seqcast::tools::runMoldEgress},
    {"mold-ingress", "publish a MoldUDP64 feed into a stream, re-requesting its gaps", seqcast::tools::runMoldIngress},
    {"soup-server", "serve a stream to SoupBinTCP clients (login, replay, then live)", seqcast::tools::runSoupServer},
};

int usage(FILE* f) {
    std::fprintf(f, "usage: seqcast COMMAND [options]   (seqcast COMMAND --help for each; seqcast --version)\n\ncommands:\n");
    for (const auto& s : kSubs) std::fprintf(f, "  %-11s %s\n", s.name, s.summary);
    return f == stdout ? 0 : 2;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 2) return usage(stderr);
    const std::string cmd = argv[1];
    if (cmd == "--help" || cmd == "-h" || cmd == "help") return usage(stdout);
    if (cmd == "--version") {
        std::printf("seqcast %s (C++ API %d, C ABI %d; io_uring %s, DPDK %s)\n", SEQCAST_VERSION, seqcast::kApiVersion,
                    SEQCAST_ABI_VERSION, SEQCAST_HAVE_URING ? "yes" : "no", SEQCAST_HAVE_DPDK ? "yes" : "no");
        return 0;
    }
    for (const auto& s : kSubs)
        if (cmd == s.name) return s.run(argc - 1, argv + 1);
    std::fprintf(stderr, "seqcast: unknown command '%s'\n\n", cmd.c_str());
    return usage(stderr);
}
