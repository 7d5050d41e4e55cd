// seqcast sequencer: run a stream's sequencer (seqcast::Sequencer of the public API).
#include <algorithm>
#include <cstdio>
#include <iostream>

#include <seqcast/seqcast.hpp>

#include "fabric/clock.h"
#include "fabric/wire.h"
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
    d.add_options()
        ("ha", po::value<std::string>(),
         "etcd endpoints (http://HOST:2379[,...]): run as one of the stream's hot-standby sequencers; etcd chooses "
         "the leader, the others follow it and take over when it fails (docs/HA.md)")
        ("name", po::value<std::string>(), "with --ha: this sequencer's name, unique within the stream")
        ("repl", po::value<std::string>(), "with --ha: HOST:PORT of the replication socket (default: the control host, any port)")
        ("lease-ttl", po::value<std::string>()->default_value("2"), "with --ha: seconds of the etcd lease on its keys (1..60)")
        ("takeover-ms", po::value<std::string>()->default_value("100"),
         "with --ha: an in-sync standby takes over after the leader was silent this long (10..60000)")
        ("isr-timeout-ms", po::value<std::string>()->default_value("100"),
         "with --ha: the leader stops waiting for a standby that acknowledged nothing this long (10..60000)");
    addSocketOptions(d);
    addFaultOptions(d, "rx");
    d.add_options()
        ("fault-damage-entry", po::value<std::string>()->default_value("0"),
         "fault injection (tests): probability an entry's payload byte is flipped inside the sequencer, after "
         "its PUB was checked and before its DATA is signed; subscribers must never deliver it (0..1)");
    po::variables_map vm;
    if (auto rc = parseCommandLine(info, argc, argv, d, vm)) return *rc;

    SequencerOptions o;
    std::uint64_t durationS = 0, lingerMs = 1000;
    bool busyPoll = false;
    try {
        o.stream = static_cast<std::uint32_t>(getU64(vm, "stream", 1, 0xFFFFFFFFu));
        const auto group = getEndpoint(vm, "group");
        if (!group.multicast()) throw UsageError("--group: " + group.str() + " is not a multicast address (224.0.0.0/4)");
        o.group = group.str();
        o.mtu = getU64(vm, "mtu", wire::kMinMtu, wire::kMaxDatagram);
        o.ringBytes = getSize(vm, "ring", 1024 * o.mtu, 1ull << 36);
        o.stateFile = vm.count("state") ? vm["state"].as<std::string>() : "seqcast-stream-" + std::to_string(o.stream) + ".state";
        checkPath("state", o.stateFile, PathUse::ReadWrite);
        o.syncState = vm.count("sync-state") != 0;
        o.maxPublishers = static_cast<std::uint32_t>(getU64(vm, "max-publishers", 1, 65536));
        o.publisherTimeoutS = getU64(vm, "publisher-timeout", 1, 604800);
        o.heartbeatMinUs = getU64(vm, "heartbeat-min-us", 1, 10'000'000);
        o.heartbeatMaxMs = getU64(vm, "heartbeat-max-ms", 1, 60'000);
        if (o.heartbeatMaxMs * 1000 < o.heartbeatMinUs) throw UsageError("--heartbeat-max-ms must not be below --heartbeat-min-us");
        o.retransmitHoldoffUs = getU64(vm, "retransmit-holdoff-us", 0, 10'000'000);
        o.retransmitBytesPerSec = getSize(vm, "retransmit-rate", 1024, 1ull << 40);
        o.retransmitBytesPerSecPerHost = getSize(vm, "retransmit-rate-per-host", 1024, 1ull << 40);
        durationS = getU64(vm, "duration", 0, 1ull << 32);
        lingerMs = getU64(vm, "linger-ms", 0, 3'600'000);
        pinCpu(vm);
        busyPoll = vm.count("busy-poll") != 0;
        o.control = getEndpoint(vm, "control").str();
        if (vm.count("data-bind"))
            o.dataBind = vm["data-bind"].as<std::string>() == "control" ? "control" : getEndpoint(vm, "data-bind", true).str();
        o.network = networkOptions(vm);
        o.network.faults = faultOptions(vm);
        o.faultDamageEntry = getDouble(vm, "fault-damage-entry", 0, 1);
        // The HA options are checked whether or not --ha is given; given without it, they are refused.
        o.haLeaseTtlS = static_cast<std::uint32_t>(getU64(vm, "lease-ttl", 1, 60));
        o.haTakeoverMs = getU64(vm, "takeover-ms", 10, 60'000);
        o.haIsrTimeoutMs = getU64(vm, "isr-timeout-ms", 10, 60'000);
        if (vm.count("ha")) {
            o.haEtcd = vm["ha"].as<std::string>();
            if (o.haEtcd.empty() || o.haEtcd.find_first_not_of(", ") == std::string::npos) throw UsageError("--ha: give the etcd endpoints");
            if (!vm.count("name")) throw UsageError("--ha needs --name");
            o.haName = vm["name"].as<std::string>();
            if (o.haName.empty() || o.haName.size() > 64 || o.haName.find_first_of(",;=/ \t\n") != std::string::npos)
                throw UsageError("--name: 1..64 characters without , ; = / or spaces");
            if (vm.count("repl")) o.haRepl = getEndpoint(vm, "repl", true).str();
        } else {
            for (const char* opt : {"name", "repl", "lease-ttl", "takeover-ms", "isr-timeout-ms"})
                if (vm.count(opt) && !vm[opt].defaulted()) throw UsageError(std::string("--") + opt + " needs --ha");
        }
    } catch (const UsageError& e) {
        std::cerr << "seqcast sequencer: " << e.what() << "\n(see seqcast sequencer --help)\n";
        return kExitUsage;
    }
    installStopSignals();
    std::unique_ptr<Sequencer> seq;
    try {
        seq = Sequencer::create(o);
    } catch (const SetupError& e) {
        return apiSetupFailure("sequencer", e);
    }
    Sequencer& s = *seq;
    const bool ha = !o.haEtcd.empty();
    if (ha)
        std::fprintf(stderr, "seqcast sequencer: stream %u, %s (HA via %s), next offset %llu%s, control %s, data %s -> %s, repl %s, state %s\n",
                     o.stream, o.haName.c_str(), o.haEtcd.c_str(), static_cast<unsigned long long>(s.nextOffset()),
                     s.recovered() ? " (recovered)" : "", s.controlAddress().c_str(), s.dataAddress().c_str(), o.group.c_str(),
                     s.replAddress().c_str(), o.stateFile.c_str());
    else
        std::fprintf(stderr, "seqcast sequencer: stream %u epoch %u next offset %llu%s, control %s, data %s -> %s over %s, state %s\n",
                     o.stream, s.epoch(), static_cast<unsigned long long>(s.nextOffset()), s.recovered() ? " (recovered)" : "",
                     s.controlAddress().c_str(), s.dataAddress().c_str(), o.group.c_str(), s.socketKind().c_str(), o.stateFile.c_str());
    // Idle: until a datagram, the next heartbeat, or maxUs.
    ApiIdler idler(busyPoll);
    auto idle = [&](int work, std::uint32_t maxUs) { idler.idle(work, s, maxUs); };
    const std::uint64_t start = monoNs();
    const std::uint64_t end = durationS ? start + durationS * 1'000'000'000ull : ~std::uint64_t{0};
    while (!stopRequested()) {
        if (monoNs() >= end) break;
        idle(s.doWork(), ha ? 1000 : 5000);
        if (ha && !s.haFailure().empty()) {
            // Leadership lost: it sequences nothing more; a supervisor restarts it as a standby.
            std::fprintf(stderr, "seqcast sequencer: stepped down: %s\n", s.haFailure().c_str());
            return 3;
        }
    }
    auto counter = [&](const char* name) { return s.counters().at(name); };
    // With --ha a stop hands the stream over (a standby takes over); it does not end it.
    if (vm.count("no-end-of-stream") == 0 && !ha) {
        s.endOfStream();
        // Linger: repairs of the tail and heartbeats flagged END (a lost END_OF_STREAM is not fatal).
        // A NAK says a receiver is still repairing the tail: linger on from it, so that once it is
        // done it still hears a flagged heartbeat; but never longer than 10 lingers in all.
        const std::uint64_t lingerNs = lingerMs * 1'000'000;
        const std::uint64_t cap = monoNs() + 10 * lingerNs;
        std::uint64_t until = monoNs() + lingerNs;
        const std::uint64_t lingerStart = monoNs();
        const std::uint64_t naksAtEnd = counter("naks_received");
        std::uint64_t naks = naksAtEnd, lastNakNs = 0;
        for (std::uint64_t now = monoNs(); now < until; now = monoNs()) {
            const int work = s.doWork();
            idle(work, static_cast<std::uint32_t>(std::min<std::uint64_t>((until - now) / 1000 + 1, 5000)));
            if (work == 0) continue;  // a NAK arriving is work
            if (const std::uint64_t n = counter("naks_received"); n != naks) {
                naks = n;
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
    const CounterValues c = s.counters();
    std::fprintf(stderr, "seqcast sequencer: stopped at offset %llu (epoch %u): %llu entries sequenced, %llu datagrams out, %llu retransmits, %llu NAKs\n",
                 static_cast<unsigned long long>(s.nextOffset()), s.epoch(),
                 static_cast<unsigned long long>(c.at("messages_out")),
                 static_cast<unsigned long long>(c.at("datagrams_out")),
                 static_cast<unsigned long long>(c.at("retransmits")),
                 static_cast<unsigned long long>(c.at("naks_received")));
    if (o.faultDamageEntry > 0)
        std::fprintf(stderr, "seqcast sequencer: fault injection damaged %llu entries; %llu ring copies refused on retransmission\n",
                     static_cast<unsigned long long>(s.faultsInjected()),
                     static_cast<unsigned long long>(c.at("retransmits_bad_crc")));
    return 0;
}

}  // namespace seqcast::tools
