// seqcast sequencer: run a stream's sequencer.
#include <algorithm>
#include <cstdio>
#include <iostream>

#include "fabric/clock.h"
#include "fabric/shm_counters.h"
#include "sequencer/sequencer.h"
#include "tools/commands.h"
#include "tools/common.h"

namespace seqcast::tools {

int runSequencer(int argc, char** argv) {
    const CommandInfo info{
        "sequencer",
        "Stamp every message of a stream with a global offset and multicast it; answer NAKs; heartbeat when idle.",
        "  seqcast sequencer --stream 1 --control 127.0.0.1:40000 --group 239.1.1.1:40001\n"
        "  seqcast sequencer --config seq.ini --state /var/lib/seqcast/stream1.state\n"};
    po::options_description d("Sequencer");
    d.add_options()
        ("stream", po::value<std::string>()->default_value("1"), "stream id (1..4294967295)")
        ("control", po::value<std::string>()->default_value("127.0.0.1:40000"), "address publishers and NAKs reach (HOST:PORT)")
        ("group", po::value<std::string>()->default_value("239.1.1.1:40001"), "multicast group:port of the stream")
        ("data-bind", po::value<std::string>(),
         "HOST:PORT the stream leaves from and subscribers' NAKs reach (default: the control address's host, any "
         "port), so repair requests never queue behind publishers' PUBs; 'control' sends from the control socket")
        ("mtu", po::value<std::string>()->default_value("1408"), "largest datagram payload in bytes (128..65507)")
        ("ring", po::value<std::string>()->default_value("64M"), "retransmit ring size (e.g. 64M)")
        ("state", po::value<std::string>(), "state file (epoch, next offset, publisher positions, ring); default seqcast-stream-<id>.state")
        ("sync-state", "msync the state file after every batch (survives power loss, costs latency)")
        ("max-publishers", po::value<std::string>()->default_value("256"), "publishers tracked (1..65536)")
        ("publisher-timeout", po::value<std::string>()->default_value("60"),
         "seconds after its last PUB when a publisher's slot may go to a new publisher, if all are taken (1..604800); "
         "its position is still remembered, so its late retransmissions stay duplicates")
        ("heartbeat-min-us", po::value<std::string>()->default_value("50"), "first idle heartbeat after this many microseconds")
        ("heartbeat-max-ms", po::value<std::string>()->default_value("100"), "idle heartbeat interval grows up to this")
        ("retransmit-holdoff-us", po::value<std::string>()->default_value("250"), "NAKs for a datagram re-sent this recently are coalesced")
        ("retransmit-rate", po::value<std::string>()->default_value("400M"), "retransmission budget in bytes per second")
        ("retransmit-rate-per-host", po::value<std::string>()->default_value("64M"),
         "the most one requesting host (IP address) may draw from that budget, bytes per second")
        ("duration", po::value<std::string>()->default_value("0"), "stop after this many seconds (0: until SIGINT/SIGTERM)")
        ("no-end-of-stream", "do not send END_OF_STREAM when stopping")
        ("linger-ms", po::value<std::string>()->default_value("1000"),
         "after END_OF_STREAM, keep answering NAKs and heartbeating with the END flag until this long has passed "
         "with no NAK (at most 10 times this long), so that subscribers that lost END_OF_STREAM learn of the end and "
         "can repair the tail, however long the repair takes (0: exit at once)");
    addSocketOptions(d);
    addFaultOptions(d, "rx");
    d.add_options()
        ("fault-damage-entry", po::value<std::string>()->default_value("0"),
         "fault injection (tests): probability an entry's payload byte is flipped inside the sequencer, after "
         "its PUB was checked and before its DATA is signed; subscribers must never deliver it (0..1)");
    po::variables_map vm;
    if (auto rc = parseCommandLine(info, argc, argv, d, vm)) return *rc;

    sequencer::SequencerConfig cfg;
    transport::UdpConfig udp, dataUdp;
    bool sharedSocket = false;
    transport::FaultConfig faults;
    std::uint64_t durationS = 0, lingerMs = 1000;
    try {
        cfg.stream = StreamId{static_cast<std::uint32_t>(getU64(vm, "stream", 1, 0xFFFFFFFFu))};
        cfg.group = getEndpoint(vm, "group");
        if (!cfg.group.multicast()) throw UsageError("--group: " + cfg.group.str() + " is not a multicast address (224.0.0.0/4)");
        cfg.mtu = getU64(vm, "mtu", wire::kMinMtu, wire::kMaxDatagram);
        cfg.ringBytes = getSize(vm, "ring", 1024 * cfg.mtu, 1ull << 36);
        cfg.statePath = vm.count("state") ? vm["state"].as<std::string>()
                                          : "seqcast-stream-" + std::to_string(cfg.stream.get()) + ".state";
        checkPath("state", cfg.statePath, PathUse::ReadWrite);
        cfg.syncState = vm.count("sync-state") != 0;
        cfg.maxPublishers = static_cast<std::uint32_t>(getU64(vm, "max-publishers", 1, 65536));
        cfg.publisherTimeoutNs = getU64(vm, "publisher-timeout", 1, 604800) * 1'000'000'000;
        cfg.heartbeatMinNs = getU64(vm, "heartbeat-min-us", 1, 10'000'000) * 1000;
        cfg.heartbeatMaxNs = getU64(vm, "heartbeat-max-ms", 1, 60'000) * 1'000'000;
        if (cfg.heartbeatMaxNs < cfg.heartbeatMinNs) throw UsageError("--heartbeat-max-ms must not be below --heartbeat-min-us");
        cfg.retransmitHoldoffNs = getU64(vm, "retransmit-holdoff-us", 0, 10'000'000) * 1000;
        cfg.retransmitBytesPerSec = getSize(vm, "retransmit-rate", 1024, 1ull << 40);
        cfg.retransmitBytesPerSecPerHost = getSize(vm, "retransmit-rate-per-host", 1024, 1ull << 40);
        durationS = getU64(vm, "duration", 0, 1ull << 32);
        lingerMs = getU64(vm, "linger-ms", 0, 3'600'000);
        pinCpu(vm);
        udp = socketConfig(vm);
        udp.bind = getEndpoint(vm, "control");
        udp.maxDatagram = cfg.mtu;
        dataUdp = udp;
        dataUdp.bind.port = 0;
        if (vm.count("data-bind")) {
            if (vm["data-bind"].as<std::string>() == "control") sharedSocket = true;
            else dataUdp.bind = getEndpoint(vm, "data-bind", true);
        }
        faults = faultConfig(vm);
        cfg.faultDamageEntry = getDouble(vm, "fault-damage-entry", 0, 1);
        cfg.faultSeed = faults.seed;
    } catch (const UsageError& e) {
        std::cerr << "seqcast sequencer: " << e.what() << "\n(see seqcast sequencer --help)\n";
        return kExitUsage;
    }
    installStopSignals();
    auto shm = ShmCounters::create("sequencer", cfg.stream.get());
    Counters& c = shm->counters();
    udp.counters = &c;
    dataUdp.counters = &c;
    auto t = openTransport(udp, faults, "sequencer control " + udp.bind.str());
    if (!t) return setupFailure("sequencer", "control", t.error());
    std::unique_ptr<transport::Transport> dataT;
    if (!sharedSocket) {
        transport::FaultConfig dataFaults = faults;
        dataFaults.seed = faults.seed + 1;
        auto dt = openTransport(dataUdp, dataFaults, "sequencer data " + dataUdp.bind.str());
        if (!dt) return setupFailure("sequencer", "data-bind", dt.error());
        dataT = std::move(*dt);
    }
    transport::Transport& data = sharedSocket ? **t : *dataT;
    auto seq = sequencer::Sequencer::create(cfg, **t, data, c);
    // Its errors are the state file's (the options were checked above).
    if (!seq) return setupFailure("sequencer", "state", seq.error());
    auto& s = **seq;
    std::fprintf(stderr, "seqcast sequencer: stream %u epoch %u next offset %llu%s, control %s, data %s -> %s over %s, state %s\n",
                 cfg.stream.get(), s.epoch().get(), static_cast<unsigned long long>(s.nextOffset().get()),
                 s.recovered() ? " (recovered)" : "", (*t)->local().str().c_str(), data.local().str().c_str(),
                 cfg.group.str().c_str(), (*t)->kind(), cfg.statePath.c_str());
    Idler idler(idleMode(vm.count("busy-poll") != 0), {(*t)->waitFd(), sharedSocket ? -1 : data.waitFd()});
    const std::uint64_t start = monoNs();
    const std::uint64_t end = durationS ? start + durationS * 1'000'000'000ull : ~std::uint64_t{0};
    while (!stopRequested()) {
        const std::uint64_t now = monoNs();
        if (now >= end) break;
        const int work = s.doWork(now);
        idler.idle(work, s.nextTimerNs());
    }
    if (vm.count("no-end-of-stream") == 0) {
        s.endOfStream();
        // Linger: repairs of the tail and heartbeats flagged END (a lost END_OF_STREAM is not fatal).
        // A NAK says a receiver is still repairing the tail: linger on from it, so that once it is
        // done it still hears a flagged heartbeat; but never longer than 10 lingers in all.
        const std::uint64_t lingerNs = lingerMs * 1'000'000;
        const std::uint64_t cap = monoNs() + 10 * lingerNs;
        std::uint64_t until = monoNs() + lingerNs;
        const std::uint64_t lingerStart = monoNs();
        const std::uint64_t naksAtEnd = c.get(Counter::NaksReceived);
        std::uint64_t naks = naksAtEnd, lastNakNs = 0;
        for (std::uint64_t now = monoNs(); now < until; now = monoNs()) {
            idler.idle(s.doWork(now), std::min(s.nextTimerNs(), until));
            if (c.get(Counter::NaksReceived) != naks) {
                naks = c.get(Counter::NaksReceived);
                lastNakNs = monoNs();
                until = std::min(cap, lastNakNs + lingerNs);
            }
        }
        const std::uint64_t left = monoNs();
        std::fprintf(stderr, "seqcast sequencer: lingered %llu ms after END_OF_STREAM; %llu NAKs meanwhile%s\n",
                     static_cast<unsigned long long>((left - lingerStart) / 1'000'000),
                     static_cast<unsigned long long>(naks - naksAtEnd),
                     lastNakNs == 0 ? ""
                                    : (", the last " + std::to_string((left - lastNakNs) / 1'000'000) + " ms before leaving").c_str());
    }
    std::fprintf(stderr, "seqcast sequencer: stopped at offset %llu (epoch %u): %llu entries sequenced, %llu datagrams out, %llu retransmits, %llu NAKs\n",
                 static_cast<unsigned long long>(s.nextOffset().get()), s.epoch().get(),
                 static_cast<unsigned long long>(c.get(Counter::MessagesOut)),
                 static_cast<unsigned long long>(c.get(Counter::DatagramsOut)),
                 static_cast<unsigned long long>(c.get(Counter::Retransmits)),
                 static_cast<unsigned long long>(c.get(Counter::NaksReceived)));
    if (cfg.faultDamageEntry > 0)
        std::fprintf(stderr, "seqcast sequencer: fault injection damaged %llu entries; %llu ring copies refused on retransmission\n",
                     static_cast<unsigned long long>(s.faultsInjected()),
                     static_cast<unsigned long long>(c.get(Counter::RetransmitsBadCrc)));
    return 0;
}

}  // namespace seqcast::tools
