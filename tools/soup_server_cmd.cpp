// seqcast soup-server: serves a seqcast stream to SoupBinTCP 3.00 clients (gateway/soup_server.h).
#include <cstdio>
#include <iostream>
#include <string>

#include <seqcast/seqcast.hpp>

#include "fabric/clock.h"
#include "fabric/shm_counters.h"
#include "gateway/soup_server.h"
#include "tools/commands.h"
#include "tools/common.h"

namespace seqcast::tools {

namespace soup = gateway::soup;

int runSoupServer(int argc, char** argv) {
    const CommandInfo info{
        "soup-server",
        "Serve a seqcast stream to SoupBinTCP 3.00 clients: login with a username and password from --users (mode 600), at "
        "a sequence number (offset + 1, as mold-egress numbers it); what is behind the live stream is replayed from the "
        "archive, then the live stream follows; heartbeats both ways, logout, End of Session when the stream ends. One "
        "epoll loop serves every client; a client that does not read is disconnected past --client-buffer.",
        "  seqcast soup-server --listen 0.0.0.0:26500 --users /etc/seqcast/soup.users --session FEED1 \\\n"
        "      --group 239.1.1.1:40001 --archiver 127.0.0.1:40100\n"};
    po::options_description d("SoupBinTCP server");
    d.add_options()
        ("listen", po::value<std::string>()->default_value("127.0.0.1:26500"), "HOST:PORT clients connect to")
        ("users", po::value<std::string>(), "users file: 'USERNAME PASSWORD' per line (6 and 10 characters at most); mode 600")
        ("session", po::value<std::string>(), "the SoupBinTCP session name (1..10 characters, no spaces)")
        ("stream", po::value<std::string>()->default_value("1"), "seqcast stream id")
        ("group", po::value<std::string>()->default_value("239.1.1.1:40001"), "multicast group:port of the seqcast stream")
        ("sequencer", po::value<std::string>(), "where NAKs go (default: the source of the stream's datagrams)")
        ("archiver", po::value<std::string>(), "archiver address: logins behind the live stream are replayed from it (none: live logins only)")
        ("heartbeat-ms", po::value<std::string>()->default_value("1000"), "a server heartbeat when nothing was sent to a client for this long")
        ("client-timeout-ms", po::value<std::string>()->default_value("15000"), "disconnect a client silent for this long")
        ("login-timeout-ms", po::value<std::string>()->default_value("10000"), "disconnect a connection with no login within this long")
        ("client-buffer", po::value<std::string>()->default_value("16M"),
         "unsent bytes a live client may have; more: it is disconnected (counted) and the others go on")
        ("socket-send-buffer", po::value<std::string>()->default_value("0"), "SO_SNDBUF of client sockets (0: the kernel's)")
        ("max-clients", po::value<std::string>()->default_value("1000"), "clients connected at once (more: refused, counted)")
        ("max-replays", po::value<std::string>()->default_value("32"), "clients catching up from the archive at once (more wait their turn)")
        ("end-of-session-ms", po::value<std::string>()->default_value("5000"),
         "after the stream ends, keep serving (logins, replays, End of Session) this long, then exit")
        ("nak-deadline-ms", po::value<std::string>()->default_value("2000"), "give up on a gap of the seqcast stream after this long")
        ("duration", po::value<std::string>()->default_value("0"), "stop after this many seconds (0: no limit)")
        ("json", po::value<std::string>(), "write a JSON summary to this file");
    addSocketOptions(d);
    addFaultOptions(d, "rx");
    po::variables_map vm;
    if (auto rc = parseCommandLine(info, argc, argv, d, vm)) return *rc;

    soup::ServerOptions o;
    std::uint64_t durationS = 0, endOfSessionNs = 0;
    bool busyPoll = false;
    try {
        if (!vm.count("users")) throw UsageError("--users is required");
        if (!vm.count("session")) throw UsageError("--session is required");
        o.session = vm["session"].as<std::string>();
        if (o.session.empty() || o.session.size() > soup::kSessionLength || o.session.find(' ') != std::string::npos)
            throw UsageError("--session: 1..10 characters without spaces");
        auto users = soup::loadUsers(vm["users"].as<std::string>());
        if (!users) throw UsageError("--users: " + users.error().message());
        o.users = std::move(*users);
        o.listen = getEndpoint(vm, "listen").str();
        SubscriberOptions& so = o.live;
        so.stream = static_cast<std::uint32_t>(getU64(vm, "stream", 1, 0xFFFFFFFFu));
        const auto group = getEndpoint(vm, "group");
        if (!group.multicast()) throw UsageError("--group: " + group.str() + " is not a multicast address (224.0.0.0/4)");
        so.group = group.str();
        if (vm.count("sequencer")) so.sequencer = getEndpoint(vm, "sequencer").str();
        if (vm.count("archiver")) so.archiver = getEndpoint(vm, "archiver").str();
        so.start = "latest";
        so.nakDeadlineMs = getU64(vm, "nak-deadline-ms", 1, 3'600'000);
        so.network = networkOptions(vm);
        so.network.faults = faultOptions(vm);
        o.replay.stream = so.stream;
        o.replay.archiver = so.archiver;
        o.replay.network = so.network;
        o.replay.network.faults = {};
        o.heartbeatNs = getU64(vm, "heartbeat-ms", 1, 3'600'000) * 1'000'000;
        o.clientTimeoutNs = getU64(vm, "client-timeout-ms", 1, 3'600'000) * 1'000'000;
        o.loginTimeoutNs = getU64(vm, "login-timeout-ms", 1, 3'600'000) * 1'000'000;
        o.clientBufferBytes = getSize(vm, "client-buffer", 64u << 10, 1ull << 34);
        o.sendBufferBytes = getSize(vm, "socket-send-buffer", 0, 1u << 30);
        o.maxClients = static_cast<std::uint32_t>(getU64(vm, "max-clients", 1, 1'000'000));
        o.maxReplays = static_cast<std::uint32_t>(getU64(vm, "max-replays", 1, 4096));
        endOfSessionNs = getU64(vm, "end-of-session-ms", 0, 3'600'000) * 1'000'000;
        durationS = getU64(vm, "duration", 0, 1ull << 32);
        checkPath(vm, "json", PathUse::Write);
        pinCpu(vm);
        busyPoll = vm.count("busy-poll") != 0;
    } catch (const UsageError& e) {
        std::cerr << "seqcast soup-server: " << e.what() << "\n(see seqcast soup-server --help)\n";
        return kExitUsage;
    }
    installStopSignals();
    soup::ServerCounters c;
    std::unique_ptr<soup::Server> server;
    try {
        server = std::make_unique<soup::Server>(o, c);
    } catch (const SetupError& e) {
        return apiSetupFailure("soup-server", e);
    }
    soup::Server& s = *server;
    std::fprintf(stderr, "seqcast soup-server: session %s: stream %u (%s) -> SoupBinTCP at %s, %zu users%s%s\n", o.session.c_str(),
                 o.live.stream, o.live.group.c_str(), s.address().c_str(), o.users.byName.size(),
                 o.replay.archiver.empty() ? "" : ", replays from ", o.replay.archiver.c_str());
    // For `seqcast stat` and its Prometheus exporter: role soup-server (the subscriber inside shows
    // as its own process entry, role sub).
    auto shm = ShmCounters::create("soup-server", o.live.stream);
    std::uint64_t lastShmNs = 0;
    const auto publishCounters = [&] {
        Counters& k = shm->counters();
        k.set(Counter::MessagesOut, c.messagesSent);
        k.set(Counter::BytesOut, c.bytesSent);
        k.set(Counter::HeartbeatsSent, c.heartbeatsSent);
        k.set(Counter::OffsetsLost, c.streamLost);
        k.set(Counter::ReplaysStarted, c.replaysStarted);
        k.set(Counter::HeadOffset, s.nextSequence());
        k.set(Counter::GatewayClients, s.clients());
        k.set(Counter::GatewayLogins, c.loginsAccepted);
        k.set(Counter::GatewayLoginsRejected, c.rejectedAuth + c.rejectedSession + c.rejectedNotReady + c.loginMalformed);
        k.set(Counter::GatewayDisconnects, c.slowDisconnects + c.clientTimeouts + c.protocolErrors + c.lossDisconnects +
                                               c.replayFailures + c.loginTimeouts);
    };
    ApiIdler idler(busyPoll);
    const std::uint64_t start = monoNs();
    const std::uint64_t end = durationS ? start + durationS * 1'000'000'000ull : ~std::uint64_t{0};
    std::uint64_t endedAt = 0;
    int rc = 0;
    while (!stopRequested()) {
        const std::uint64_t now = monoNs();
        if (now >= end) break;
        const int work = s.doWork(now);
        if (now - lastShmNs >= 10'000'000) {
            publishCounters();
            lastShmNs = now;
        }
        if (!s.failure().empty()) {
            std::fprintf(stderr, "seqcast soup-server: %s\n", s.failure().c_str());
            rc = 1;
            break;
        }
        if (s.streamEnded()) {
            if (!endedAt) {
                endedAt = now;
                std::fprintf(stderr, "seqcast soup-server: the stream ended at sequence number %llu: End of Session to every client\n",
                             static_cast<unsigned long long>(s.nextSequence()));
            }
            if (now - endedAt >= endOfSessionNs) break;
        }
        idler.idle(work, s, 50'000);
    }
    publishCounters();
    const double secs = static_cast<double>(monoNs() - start) * 1e-9;
    const CounterValues sc = s.subscriber().counters();
    std::fprintf(stderr,
                 "seqcast soup-server: %llu connections, %llu logins accepted; rejected: %llu credentials, %llu session, %llu "
                 "malformed; %llu messages and %llu heartbeats sent (%llu bytes); disconnected: %llu slow, %llu timed out, %llu "
                 "protocol errors, %llu logouts; %llu replays (%llu failed)\n",
                 (unsigned long long)c.connections, (unsigned long long)c.loginsAccepted, (unsigned long long)c.rejectedAuth,
                 (unsigned long long)c.rejectedSession, (unsigned long long)c.loginMalformed, (unsigned long long)c.messagesSent,
                 (unsigned long long)c.heartbeatsSent, (unsigned long long)c.bytesSent, (unsigned long long)c.slowDisconnects,
                 (unsigned long long)c.clientTimeouts, (unsigned long long)c.protocolErrors, (unsigned long long)c.logouts,
                 (unsigned long long)c.replaysStarted, (unsigned long long)c.replayFailures);
    if (vm.count("json")) {
        Json j;
        j.begin();
        j.field("session", o.session);
        j.field("next_sequence", s.nextSequence());
        j.field("connections", c.connections);
        j.field("refused_full", c.refusedFull);
        j.field("logins_accepted", c.loginsAccepted);
        j.field("rejected_auth", c.rejectedAuth);
        j.field("rejected_session", c.rejectedSession);
        j.field("rejected_not_ready", c.rejectedNotReady);
        j.field("login_malformed", c.loginMalformed);
        j.field("login_timeouts", c.loginTimeouts);
        j.field("sequence_clamped", c.sequenceClamped);
        j.field("logouts", c.logouts);
        j.field("client_closed", c.clientClosed);
        j.field("client_timeouts", c.clientTimeouts);
        j.field("protocol_errors", c.protocolErrors);
        j.field("slow_disconnects", c.slowDisconnects);
        j.field("loss_disconnects", c.lossDisconnects);
        j.field("replays", c.replaysStarted);
        j.field("replay_failures", c.replayFailures);
        j.field("messages_sent", c.messagesSent);
        j.field("bytes_sent", c.bytesSent);
        j.field("heartbeats_sent", c.heartbeatsSent);
        j.field("end_of_session_sent", c.endOfSessionSent);
        j.field("unsequenced_ignored", c.unsequencedIgnored);
        j.field("stream_lost", c.streamLost);
        j.field("stream_gaps", sc.at("gaps_detected"));
        j.field("stream_repaired_offsets", sc.at("gap_offsets_repaired"));
        j.field("seconds", secs);
        j.key("stream_ended").boolean(s.streamEnded());
        j.key("failed").boolean(rc != 0);
        j.end();
        if (!writeFile(vm["json"].as<std::string>(), j.text())) std::fprintf(stderr, "seqcast soup-server: cannot write %s\n", vm["json"].as<std::string>().c_str());
    }
    return rc;
}

}  // namespace seqcast::tools
