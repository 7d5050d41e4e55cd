// seqcast mold-ingress: joins a MoldUDP64 feed, re-requests its gaps from the feed's request server,
// and publishes every message once, in feed order, into a seqcast stream (gateway/mold_ingress.h).
#include <cstdio>
#include <iostream>
#include <string>

#include <seqcast/seqcast.hpp>

#include "fabric/clock.h"
#include "fabric/shm_counters.h"
#include "gateway/mold_ingress.h"
#include "tools/commands.h"
#include "tools/common.h"
#include "fabric/wire.h"

namespace seqcast::tools {

namespace mold = gateway::mold;

int runMoldIngress(int argc, char** argv) {
    const CommandInfo info{
        "mold-ingress",
        "Join a MoldUDP64 feed, re-request its gaps from the feed's request server, and publish every message once, "
        "in feed order, into a seqcast stream (record it with the archiver; replay and repair it with seqcast). "
        "With --journal a restart resumes where the last run stopped: nothing twice, nothing skipped.",
        "  seqcast mold-ingress --feed 233.54.12.1:26400 --request-server 10.0.0.5:26401 --session 20261206AA \\\n"
        "      --sequencer 127.0.0.1:40000 --journal /var/lib/seqcast/feed1.journal\n"};
    po::options_description d("MoldUDP64 ingress");
    d.add_options()
        ("feed", po::value<std::string>(), "the feed's multicast group:port")
        ("request-server", po::value<std::string>(), "the feed's re-request server HOST:PORT (none: a gap stops the ingress at --gap-deadline-ms)")
        ("session", po::value<std::string>(), "the MoldUDP64 session to follow (default: the first one seen, or the journal's)")
        ("from", po::value<std::string>()->default_value("1"),
         "the first sequence number to publish, or 'latest' for the feed's position when joining (ignored when the journal resumes)")
        ("stream", po::value<std::string>()->default_value("1"), "seqcast stream id")
        ("sequencer", po::value<std::string>()->default_value("127.0.0.1:40000"), "sequencer control address HOST:PORT")
        ("bind", po::value<std::string>()->default_value("127.0.0.1:0"), "the publisher's local address (port 0: any)")
        ("journal", po::value<std::string>(),
         "publisher journal; the feed position is kept beside it (JOURNAL.mold): a restart resumes at the next feed message")
        ("mtu", po::value<std::string>()->default_value("1408"), "largest datagram the publisher sends")
        ("window", po::value<std::string>()->default_value("4096"), "unconfirmed messages in flight (power of two, 1..4096)")
        ("max-request-count", po::value<std::string>()->default_value("1000"), "most messages one re-request asks for (1..65534)")
        ("retry-ms", po::value<std::string>()->default_value("50"), "ask again for a gap still open after this long")
        ("request-rate", po::value<std::string>()->default_value("500"), "re-requests per second at most (request servers drop a faster flood)")
        ("request-burst", po::value<std::string>()->default_value("50"), "re-requests sent at once at most")
        ("gap-deadline-ms", po::value<std::string>()->default_value("10000"),
         "a gap with no progress for this long stops the ingress (exit 1, the numbers named): nothing is skipped")
        ("hold-bytes", po::value<std::string>()->default_value("64M"), "feed messages held ahead of a gap (more: dropped, asked for again)")
        ("receive-buffer", po::value<std::string>()->default_value("8M"), "the feed socket's receive buffer")
        ("duration", po::value<std::string>()->default_value("0"), "stop after this many seconds (0: at the feed's end of session)")
        ("json", po::value<std::string>(), "write a JSON summary to this file");
    addSocketOptions(d);
    po::variables_map vm;
    if (auto rc = parseCommandLine(info, argc, argv, d, vm)) return *rc;

    mold::IngressOptions o;
    std::uint64_t durationS = 0;
    bool busyPoll = false;
    try {
        if (!vm.count("feed")) throw UsageError("--feed is required");
        const auto feed = getEndpoint(vm, "feed");
        if (!feed.multicast()) throw UsageError("--feed: " + feed.str() + " is not a multicast address (224.0.0.0/4)");
        o.feed = feed.str();
        if (vm.count("request-server")) {
            const auto rs = getEndpoint(vm, "request-server");
            if (rs.multicast()) throw UsageError("--request-server: " + rs.str() + " is a multicast address: the request server is unicast");
            o.requestServer = rs.str();
        }
        if (vm.count("session")) {
            auto s = mold::Session::parse(vm["session"].as<std::string>());
            if (!s) throw UsageError("--session: " + s.error().message());
            o.session = *s;
        }
        const std::string from = vm["from"].as<std::string>();
        o.tracker.startSeq = from == "latest" ? 0 : getU64(vm, "from", 1, ~std::uint64_t{0} >> 1);
        o.tracker.maxRequestCount = static_cast<std::uint16_t>(getU64(vm, "max-request-count", 1, 0xFFFE));
        o.tracker.retryNs = getU64(vm, "retry-ms", 1, 60'000) * 1'000'000;
        o.tracker.requestRate = getDouble(vm, "request-rate", 0.001, 1e9);
        o.tracker.requestBurst = getDouble(vm, "request-burst", 1, 1e9);
        o.tracker.deadlineNs = getU64(vm, "gap-deadline-ms", 1, 86'400'000) * 1'000'000;
        o.tracker.maxHeldBytes = getSize(vm, "hold-bytes", 64u << 10, 1ull << 36);
        o.receiveBuffer = getSize(vm, "receive-buffer", 64u << 10, 1u << 30);
        PublisherOptions& p = o.publisher;
        p.stream = static_cast<std::uint32_t>(getU64(vm, "stream", 1, 0xFFFFFFFFu));
        p.sequencer = getEndpoint(vm, "sequencer").str();
        p.bind = getEndpoint(vm, "bind", true).str();
        if (vm.count("journal")) p.journal = vm["journal"].as<std::string>();
        checkPath(vm, "journal", PathUse::ReadWrite);
        p.mtu = getU64(vm, "mtu", wire::kMinMtu, wire::kMaxDatagram);
        p.window = static_cast<std::uint32_t>(getU64(vm, "window", 1, 4096));
        if ((p.window & (p.window - 1)) != 0) throw UsageError("--window: " + std::to_string(p.window) + " is not a power of two");
        p.maxMessage = mold::kMaxMessage;
        p.network = networkOptions(vm);
        o.interface = p.network.interface;
        durationS = getU64(vm, "duration", 0, 1ull << 32);
        checkPath(vm, "json", PathUse::Write);
        pinCpu(vm);
        busyPoll = vm.count("busy-poll") != 0;
    } catch (const UsageError& e) {
        std::cerr << "seqcast mold-ingress: " << e.what() << "\n(see seqcast mold-ingress --help)\n";
        return kExitUsage;
    }
    installStopSignals();
    std::unique_ptr<mold::Ingress> ingress;
    try {
        ingress = std::make_unique<mold::Ingress>(o);
    } catch (const SetupError& e) {
        return apiSetupFailure("mold-ingress", e);
    }
    mold::Ingress& in = *ingress;
    std::fprintf(stderr, "seqcast mold-ingress: feed %s%s%s -> stream %u at %s", o.feed.c_str(),
                 o.requestServer.empty() ? "" : " (requests to ", o.requestServer.empty() ? "" : (o.requestServer + ")").c_str(),
                 o.publisher.stream, o.publisher.sequencer.c_str());
    if (in.resumedAt()) std::fprintf(stderr, "; resuming session '%s' at sequence number %llu", in.session().c_str(),
                                     static_cast<unsigned long long>(in.resumedAt()));
    std::fprintf(stderr, "\n");

    // For `seqcast stat` and its Prometheus exporter: role mold-ingress (the publisher inside shows
    // as its own process entry, role pub).
    auto shm = ShmCounters::create("mold-ingress", o.publisher.stream);
    std::uint64_t lastShmNs = 0;
    const auto publishCounters = [&] {
        const mold::IngressCounters& c = in.counters();
        const mold::TrackerCounters& t = in.tracker().counters();
        Counters& k = shm->counters();
        k.set(Counter::DatagramsIn, c.packets);
        k.set(Counter::MessagesOut, t.messages);
        k.set(Counter::MessagesConfirmed, c.confirmed);
        k.set(Counter::HeartbeatsReceived, c.heartbeats);
        k.set(Counter::DropDuplicate, t.duplicates);
        k.set(Counter::DropBadBody, c.malformed);
        k.set(Counter::DropWrongStream, c.foreignSession);
        k.set(Counter::DropOverflow, t.heldDropped);
        k.set(Counter::SendErrors, c.sendErrors);
        k.set(Counter::BackPressure, c.backPressured);
        k.set(Counter::HeadOffset, in.tracker().next());
        k.set(Counter::GatewayRequestsOut, c.requestPackets);
        k.set(Counter::GatewayRecovered, t.recovered);
    };
    ApiIdler idler(busyPoll);
    const std::uint64_t start = monoNs();
    const std::uint64_t end = durationS ? start + durationS * 1'000'000'000ull : ~std::uint64_t{0};
    int rc = 0;
    bool finished = false;
    while (!stopRequested()) {
        const std::uint64_t now = monoNs();
        if (now >= end) break;
        const int work = in.doWork(now);
        if (now - lastShmNs >= 10'000'000) {
            publishCounters();
            lastShmNs = now;
        }
        if (!in.failure().empty()) {
            std::fprintf(stderr, "seqcast mold-ingress: %s\n", in.failure().c_str());
            rc = 1;
            break;
        }
        if (in.finished()) {
            finished = true;
            break;
        }
        idler.idle(work, in, 1000);
    }
    publishCounters();
    const double secs = static_cast<double>(monoNs() - start) * 1e-9;
    const mold::IngressCounters& c = in.counters();
    const mold::TrackerCounters& t = in.tracker().counters();
    const CounterValues pc = in.publisher().counters();
    std::fprintf(stderr,
                 "seqcast mold-ingress: %s; next sequence number %llu; %llu messages published (%llu confirmed), %llu recovered by "
                 "%llu re-requests; %llu duplicates, %llu malformed, %llu of another session; %llu held messages dropped\n",
                 finished ? "end of session, everything confirmed" : rc ? "failed" : "stopped",
                 static_cast<unsigned long long>(in.tracker().next()), static_cast<unsigned long long>(t.messages),
                 static_cast<unsigned long long>(c.confirmed), static_cast<unsigned long long>(t.recovered),
                 static_cast<unsigned long long>(c.requestPackets), static_cast<unsigned long long>(t.duplicates),
                 static_cast<unsigned long long>(c.malformed), static_cast<unsigned long long>(c.foreignSession),
                 static_cast<unsigned long long>(t.heldDropped));
    if (vm.count("json")) {
        Json j;
        j.begin();
        j.field("session", in.session());
        j.field("resumed_at", in.resumedAt());
        j.field("next_sequence", in.tracker().next());
        j.field("feed_head", in.tracker().head());
        j.field("end_of_session_sequence", in.tracker().endOfSessionSeq());
        j.field("published", t.messages);
        j.field("confirmed", c.confirmed);
        j.field("unconfirmed", in.publisher().unconfirmed());
        j.field("recovered", t.recovered);
        j.field("gap_messages", t.gapMessages);
        j.field("requests", c.requestPackets);
        j.field("answers", c.answers);
        j.field("packets", c.packets);
        j.field("data_packets", c.dataPackets);
        j.field("heartbeats", c.heartbeats);
        j.field("end_of_session_packets", c.endOfSession);
        j.field("duplicates", t.duplicates);
        j.field("before_start", t.beforeStart);
        j.field("held_dropped", t.heldDropped);
        j.field("malformed", c.malformed);
        j.field("foreign_session", c.foreignSession);
        j.field("strangers", c.strangers);
        j.field("send_errors", c.sendErrors);
        j.field("back_pressured", c.backPressured);
        j.field("pub_retransmits", pc.at("pub_retransmits"));
        j.field("seconds", secs);
        j.key("finished").boolean(finished);
        j.key("failed").boolean(rc != 0);
        if (rc) j.field("failure", in.failure());
        j.end();
        if (!writeFile(vm["json"].as<std::string>(), j.text())) std::fprintf(stderr, "seqcast mold-ingress: cannot write %s\n", vm["json"].as<std::string>().c_str());
    }
    return rc;
}

}  // namespace seqcast::tools
