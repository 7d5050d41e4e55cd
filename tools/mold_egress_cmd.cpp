// seqcast mold-egress: a reliable subscriber of a seqcast stream that multicasts it as MoldUDP64,
// with a request server answering re-requests from the archive (gateway/mold_egress.h).
#include <atomic>
#include <cstdio>
#include <iostream>
#include <string>
#include <thread>

#include <seqcast/seqcast.hpp>

#include "fabric/clock.h"
#include "fabric/shm_counters.h"
#include "gateway/mold_egress.h"
#include "tools/commands.h"
#include "tools/common.h"

namespace seqcast::tools {

namespace mold = gateway::mold;

int runMoldEgress(int argc, char** argv) {
    const CommandInfo info{
        "mold-egress",
        "Multicast a seqcast stream as MoldUDP64 (sequence number = offset + 1, the same on every instance and "
        "after a restart), with heartbeats, end of session when the stream ends, and a request server that "
        "answers re-requests from the archive.",
        "  seqcast mold-egress --session FEED1 --downstream 239.2.2.2:26400 --requests 127.0.0.1:26401 \\\n"
        "      --group 239.1.1.1:40001 --archiver 127.0.0.1:40100\n"};
    po::options_description d("MoldUDP64 egress");
    d.add_options()
        ("session", po::value<std::string>(), "the MoldUDP64 session name (1..10 printable ASCII characters)")
        ("downstream", po::value<std::string>(), "multicast group:port the MoldUDP64 packets go to")
        ("requests", po::value<std::string>(), "HOST:PORT the request server listens at (none: no request server)")
        ("stream", po::value<std::string>()->default_value("1"), "seqcast stream id")
        ("group", po::value<std::string>()->default_value("239.1.1.1:40001"), "multicast group:port of the seqcast stream")
        ("sequencer", po::value<std::string>(), "where NAKs go (default: the source of the stream's datagrams)")
        ("archiver", po::value<std::string>(), "archiver address: repairs, --from earliest/OFFSET, and the request server's source")
        ("from", po::value<std::string>()->default_value("latest"), "start at latest, earliest or an offset (sequence number - 1)")
        ("packet-bytes", po::value<std::string>()->default_value("1400"), "largest MoldUDP64 packet (UDP payload, 22..65507)")
        ("heartbeat-ms", po::value<std::string>()->default_value("1000"), "a heartbeat when nothing was sent for this long")
        ("end-of-session-ms", po::value<std::string>()->default_value("5000"),
         "after the stream ends, send end-of-session packets this long (re-requests are still served), then exit")
        ("max-request-count", po::value<std::string>()->default_value("1024"), "most messages one re-request is answered with")
        ("request-rate", po::value<std::string>()->default_value("1000"), "re-requests per second one requester may send (more: dropped, counted)")
        ("request-burst", po::value<std::string>()->default_value("100"), "re-requests one requester may send at once")
        ("max-pending-requests", po::value<std::string>()->default_value("8"),
         "re-requests served at once, each a replay from the archiver (more: dropped, counted; 1..64)")
        ("nak-deadline-ms", po::value<std::string>()->default_value("2000"), "give up on a gap of the seqcast stream after this long")
        ("reorder-buffer", po::value<std::string>()->default_value("64M"), "bytes of datagrams held ahead of a gap")
        ("duration", po::value<std::string>()->default_value("0"), "stop after this many seconds (0: no limit)")
        ("json", po::value<std::string>(), "write a JSON summary to this file");
    addSocketOptions(d);
    addFaultOptions(d, "rx");
    po::variables_map vm;
    if (auto rc = parseCommandLine(info, argc, argv, d, vm)) return *rc;

    SubscriberOptions so;
    mold::EgressOptions eo;
    mold::RequestServerOptions ro;
    std::uint64_t durationS = 0;
    bool busyPoll = false;
    try {
        if (!vm.count("session")) throw UsageError("--session is required");
        if (!vm.count("downstream")) throw UsageError("--downstream is required");
        auto session = mold::Session::parse(vm["session"].as<std::string>());
        if (!session) throw UsageError("--session: " + session.error().message());
        so.stream = static_cast<std::uint32_t>(getU64(vm, "stream", 1, 0xFFFFFFFFu));
        const auto group = getEndpoint(vm, "group");
        if (!group.multicast()) throw UsageError("--group: " + group.str() + " is not a multicast address (224.0.0.0/4)");
        so.group = group.str();
        if (vm.count("sequencer")) so.sequencer = getEndpoint(vm, "sequencer").str();
        if (vm.count("archiver")) so.archiver = getEndpoint(vm, "archiver").str();
        if (vm.count("requests") && !vm.count("archiver")) throw UsageError("--requests serves from the archive: give --archiver too");
        so.start = vm["from"].as<std::string>();
        so.nakDeadlineMs = getU64(vm, "nak-deadline-ms", 1, 3'600'000);
        so.reorderBytes = getSize(vm, "reorder-buffer", 64u << 10, 1ull << 34);
        so.network = networkOptions(vm);
        so.network.faults = faultOptions(vm);
        eo.session = *session;
        const auto down = getEndpoint(vm, "downstream");
        if (!down.multicast()) throw UsageError("--downstream: " + down.str() + " is not a multicast address (224.0.0.0/4)");
        eo.downstream = down.str();
        eo.interface = so.network.interface;
        eo.ttl = so.network.ttl;
        eo.loopback = so.network.loopback;
        eo.packetBytes = getU64(vm, "packet-bytes", mold::kHeaderLength + 2, 65507);
        eo.heartbeatNs = getU64(vm, "heartbeat-ms", 1, 3'600'000) * 1'000'000;
        eo.endOfSessionNs = getU64(vm, "end-of-session-ms", 0, 3'600'000) * 1'000'000;
        // Checked with or without --requests: a bad value is never silently ignored.
        ro.maxCount = static_cast<std::uint32_t>(getU64(vm, "max-request-count", 1, 0xFFFE));
        ro.ratePerRequester = getDouble(vm, "request-rate", 0.001, 1e9);
        ro.burstPerRequester = getDouble(vm, "request-burst", 1, 1e9);
        ro.maxPending = static_cast<std::uint32_t>(getU64(vm, "max-pending-requests", 1, 64));
        if (vm.count("requests")) {
            ro.session = *session;
            ro.listen = getEndpoint(vm, "requests", true).str();
            ro.packetBytes = eo.packetBytes;
            ro.replay.stream = so.stream;
            ro.replay.archiver = so.archiver;
            ro.replay.network = so.network;
            ro.replay.network.faults = {};
        }
        durationS = getU64(vm, "duration", 0, 1ull << 32);
        checkPath(vm, "json", PathUse::Write);
        pinCpu(vm);
        busyPoll = vm.count("busy-poll") != 0;
    } catch (const UsageError& e) {
        std::cerr << "seqcast mold-egress: " << e.what() << "\n(see seqcast mold-egress --help)\n";
        return kExitUsage;
    }
    installStopSignals();
    mold::EgressCounters counters;
    std::unique_ptr<Subscriber> subscriber;
    std::unique_ptr<mold::Egress> egress;
    std::unique_ptr<mold::RequestServer> server;
    try {
        egress = std::make_unique<mold::Egress>(eo, counters);
        if (vm.count("requests")) server = std::make_unique<mold::RequestServer>(ro, egress->head(), counters);
        subscriber = Subscriber::create(so);
    } catch (const SetupError& e) {
        return apiSetupFailure("mold-egress", e);
    }
    std::fprintf(stderr, "seqcast mold-egress: session %s: stream %u (%s) -> %s%s%s\n", eo.session.str().c_str(), so.stream,
                 so.group.c_str(), eo.downstream.c_str(), server ? ", requests at " : "", server ? server->address().c_str() : "");
    // The request server on a thread of its own: a replay's round trip never delays the live packets.
    std::atomic<bool> serverStop{false};
    std::thread serverThread;
    if (server) {
        serverThread = std::thread([&] {
            ApiIdler idle(busyPoll);
            while (!serverStop.load(std::memory_order_relaxed)) idle.idle(server->doWork(monoNs()), *server, 2000);
        });
    }
    Subscriber& sub = *subscriber;
    mold::Egress& eg = *egress;
    // For `seqcast stat` and its Prometheus exporter: role mold-egress (the subscriber inside
    // shows as its own process entry, role sub).
    auto shm = ShmCounters::create("mold-egress", so.stream);
    std::uint64_t lastShmNs = 0;
    const auto publishCounters = [&] {
        auto v = [](const std::atomic<std::uint64_t>& a) { return a.load(std::memory_order_relaxed); };
        Counters& k = shm->counters();
        k.set(Counter::MessagesOut, v(counters.messages));
        k.set(Counter::DatagramsOut, v(counters.packets) + v(counters.heartbeats) + v(counters.endOfSession));
        k.set(Counter::BytesOut, v(counters.bytes));
        k.set(Counter::HeartbeatsSent, v(counters.heartbeats));
        k.set(Counter::SendErrors, v(counters.sendErrors));
        k.set(Counter::OffsetsLost, v(counters.lostMessages));
        k.set(Counter::HeadOffset, eg.head().load());
        k.set(Counter::GatewayRequestsIn, v(counters.requests));
        k.set(Counter::GatewayRequestsRefused, v(counters.refusedMalformed) + v(counters.refusedSession) + v(counters.refusedZeroCount) +
                                                   v(counters.refusedBeyondHead) + v(counters.refusedRateLimited) + v(counters.refusedBusy));
        k.set(Counter::GatewayRequestsUnserved, v(counters.unserved));
        k.set(Counter::Retransmits, v(counters.responses));
    };
    const MessageHandler onMessage = [&eg](const Message& m) { eg.onMessage(m); };
    const LossHandler onLoss = [&eg](const Loss& l) {
        std::fprintf(stderr, "seqcast mold-egress: LOSS offsets %llu..%llu: sequence numbers %llu..%llu are never sent\n",
                     static_cast<unsigned long long>(l.first), static_cast<unsigned long long>(l.first + l.count - 1),
                     static_cast<unsigned long long>(l.first + 1), static_cast<unsigned long long>(l.first + l.count));
        eg.onLoss(l);
    };
    ApiIdler idler(busyPoll);
    const std::uint64_t start = monoNs();
    const std::uint64_t end = durationS ? start + durationS * 1'000'000'000ull : ~std::uint64_t{0};
    bool replayFailureShown = false, sessionEnded = false;
    int rc = 0;
    while (!stopRequested()) {
        const std::uint64_t now = monoNs();
        if (now >= end) break;
        int work = sub.poll(onMessage, onLoss);
        if (sub.started()) eg.started(sub.nextOffset());
        work += eg.doWork(now);
        if (now - lastShmNs >= 10'000'000) {
            publishCounters();
            lastShmNs = now;
        }
        if (!eg.failure().empty()) {
            std::fprintf(stderr, "seqcast mold-egress: %s\n", eg.failure().c_str());
            rc = 1;
            break;
        }
        if (!replayFailureShown && !sub.replayFailure().empty()) {
            std::fprintf(stderr, "seqcast mold-egress: %s\n", sub.replayFailure().c_str());
            replayFailureShown = true;
        }
        if (sub.endOfStream()) {
            if (!sessionEnded) std::fprintf(stderr, "seqcast mold-egress: the stream ended: end of session\n");
            sessionEnded = true;
            if (eg.endSession(now)) break;
        }
        idler.idle(work, sub, static_cast<std::uint32_t>(std::min<std::uint64_t>(eo.heartbeatNs / 1000, 50'000)));
    }
    serverStop.store(true);
    if (serverThread.joinable()) serverThread.join();
    publishCounters();
    const double secs = static_cast<double>(monoNs() - start) * 1e-9;
    const CounterValues sc = sub.counters();
    auto v = [](const std::atomic<std::uint64_t>& a) { return a.load(); };
    std::fprintf(stderr,
                 "seqcast mold-egress: %llu messages in %llu packets, %llu heartbeats, %llu end of session, %llu lost; "
                 "%llu re-requests, %llu answered (%llu messages), refused: %llu malformed, %llu session, %llu zero, "
                 "%llu beyond head, %llu rate, %llu busy; %llu unserved; %llu send errors\n",
                 (unsigned long long)v(counters.messages), (unsigned long long)v(counters.packets), (unsigned long long)v(counters.heartbeats),
                 (unsigned long long)v(counters.endOfSession), (unsigned long long)v(counters.lostMessages),
                 (unsigned long long)v(counters.requests), (unsigned long long)v(counters.responses),
                 (unsigned long long)v(counters.resentMessages), (unsigned long long)v(counters.refusedMalformed),
                 (unsigned long long)v(counters.refusedSession), (unsigned long long)v(counters.refusedZeroCount),
                 (unsigned long long)v(counters.refusedBeyondHead), (unsigned long long)v(counters.refusedRateLimited),
                 (unsigned long long)v(counters.refusedBusy), (unsigned long long)v(counters.unserved),
                 (unsigned long long)v(counters.sendErrors));
    if (vm.count("json")) {
        Json j;
        j.begin();
        j.field("session", eo.session.str());
        j.field("messages", v(counters.messages));
        j.field("packets", v(counters.packets));
        j.field("bytes", v(counters.bytes));
        j.field("heartbeats", v(counters.heartbeats));
        j.field("end_of_session_packets", v(counters.endOfSession));
        j.field("lost", v(counters.lostMessages));
        j.field("next_sequence", eg.head().load());
        j.field("requests", v(counters.requests));
        j.field("responses", v(counters.responses));
        j.field("resent_messages", v(counters.resentMessages));
        j.field("refused_malformed", v(counters.refusedMalformed));
        j.field("refused_session", v(counters.refusedSession));
        j.field("refused_zero_count", v(counters.refusedZeroCount));
        j.field("refused_beyond_head", v(counters.refusedBeyondHead));
        j.field("refused_rate_limited", v(counters.refusedRateLimited));
        j.field("refused_busy", v(counters.refusedBusy));
        j.field("unserved", v(counters.unserved));
        j.field("send_errors", v(counters.sendErrors));
        j.field("stream_gaps", sc.at("gaps_detected"));
        j.field("stream_repaired_offsets", sc.at("gap_offsets_repaired"));
        j.field("seconds", secs);
        j.key("end_of_session").boolean(sessionEnded);
        j.key("failed").boolean(rc != 0);
        j.end();
        if (!writeFile(vm["json"].as<std::string>(), j.text())) std::fprintf(stderr, "seqcast mold-egress: cannot write %s\n", vm["json"].as<std::string>().c_str());
    }
    return rc;
}

}  // namespace seqcast::tools
