// seqcast pub: publish messages from stdin lines, a file's lines, or synthetically at a rate, through
// the public API (seqcast::Publisher).
#include <poll.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <optional>
#include <string>

#include <seqcast/seqcast.hpp>

#include "fabric/clock.h"
#include "fabric/histogram.h"
#include "fabric/wire.h"
#include "gateway/itch.h"
#include "tools/commands.h"
#include "tools/common.h"
#include "tools/ha_cli.h"

namespace seqcast::tools {

namespace {

void fillSynthetic(std::vector<std::byte>& m, std::uint32_t pub, std::uint64_t i) {
    for (std::size_t k = 0; k < m.size(); ++k) m[k] = static_cast<std::byte>((pub * 131u + i * 7u + k) & 0xFF);
    const std::uint64_t tag[2] = {pub, i};
    std::memcpy(m.data(), tag, std::min(m.size(), sizeof tag));
}

}  // namespace

int runPub(int argc, char** argv) {
    const CommandInfo info{
        "pub",
        "Publish messages to a stream's sequencer: stdin lines (default), a file's lines, or synthetic messages at a rate.",
        "  echo hello | seqcast pub --sequencer 127.0.0.1:40000\n"
        "  seqcast pub --sequencer 127.0.0.1:40000 --rate 100000 --count 1000000 --size 8-8192\n"
        "  seqcast pub --file orders.txt --journal pub7.journal --id 7\n"};
    po::options_description d("Publisher");
    d.add_options()
        ("stream", po::value<std::string>()->default_value("1"), "stream id")
        ("sequencer", po::value<std::string>()->default_value("127.0.0.1:40000"),
         "sequencer control address HOST:PORT; with hot-standby sequencers (sequencer --ha) all of theirs, comma "
         "separated: the publisher moves to the next when one is not the leader or stays silent")
        ("ha", po::value<std::string>(),
         "etcd endpoints (http://HOST:2379[,...]): find the stream's sequencers in the directory its hot-standby "
         "sequencers keep there (sequencer --ha), the leader first, instead of --sequencer")
        ("bind", po::value<std::string>()->default_value("127.0.0.1:0"), "local address (port 0: any)")
        ("id", po::value<std::string>()->default_value("0"), "publisher id (0: from --journal, else random)")
        ("journal", po::value<std::string>(), "journal file: keeps id, pub_seq and unconfirmed messages across restarts")
        ("file", po::value<std::string>(), "publish each line of this file")
        ("rate", po::value<std::string>(), "synthetic messages per second (0: as fast as the window allows)")
        ("count", po::value<std::string>()->default_value("0"), "synthetic messages to send (0: until stopped)")
        ("size", po::value<std::string>()->default_value("64"), "synthetic sizes: N, A-B (uniform) or exp:MEAN")
        ("seed", po::value<std::string>()->default_value("1"), "seed for synthetic sizes")
        ("itch", "synthetic messages are ITCH 5.0 (add order, executed, cancel, trade over a consistent book) instead of --size")
        ("mtu", po::value<std::string>()->default_value("1408"), "largest datagram payload (128..65507)")
        ("window", po::value<std::string>()->default_value("4096"), "unconfirmed messages in flight (power of two, 1..4096)")
        ("window-bytes", po::value<std::string>()->default_value("32M"), "bytes of unconfirmed messages")
        ("max-message", po::value<std::string>()->default_value("1M"), "largest message")
        ("linger", po::value<std::string>()->default_value("10"), "seconds to wait for the last confirmations")
        ("duration", po::value<std::string>()->default_value("0"), "stop offering after this many seconds (0: no limit)")
        ("json", po::value<std::string>(), "write a JSON summary to this file");
    addSocketOptions(d);
    addFaultOptions(d, "tx");
    po::variables_map vm;
    if (auto rc = parseCommandLine(info, argc, argv, d, vm)) return *rc;

    PublisherOptions o;
    std::string etcd;  // --ha
    SizeSpec sizes;
    bool synthetic = false, busyPoll = false;
    double rate = 0;
    std::uint64_t count = 0, lingerS = 10, durationS = 0, seed = 1;
    try {
        o.stream = static_cast<std::uint32_t>(getU64(vm, "stream", 1, 0xFFFFFFFFu));
        o.sequencer = getEndpointList(vm, "sequencer");
        if (vm.count("ha")) {
            etcd = getEtcdEndpoints(vm, "ha");
            if (!vm["sequencer"].defaulted()) throw UsageError("--ha and --sequencer: choose one");
        }
        o.id = static_cast<std::uint32_t>(getU64(vm, "id", 0, 0xFFFFFFFFu));
        if (vm.count("journal")) o.journal = vm["journal"].as<std::string>();
        checkPath(vm, "journal", PathUse::ReadWrite);
        checkPath(vm, "file", PathUse::Read);
        checkPath(vm, "json", PathUse::Write);
        o.mtu = getU64(vm, "mtu", wire::kMinMtu, wire::kMaxDatagram);
        o.window = static_cast<std::uint32_t>(getU64(vm, "window", 1, 4096));
        if ((o.window & (o.window - 1)) != 0) throw UsageError("--window: " + std::to_string(o.window) + " is not a power of two");
        o.maxMessage = static_cast<std::uint32_t>(getSize(vm, "max-message", 1, 1u << 30));
        o.windowBytes = getSize(vm, "window-bytes", o.maxMessage, 1ull << 34);
        synthetic = vm.count("rate") != 0;
        if (synthetic) rate = getDouble(vm, "rate", 0, 1e9);
        if (synthetic && vm.count("file")) throw UsageError("--rate and --file: choose one source");
        if (vm.count("itch") && !synthetic) throw UsageError("--itch makes the synthetic messages: give --rate too");
        count = getU64(vm, "count", 0, ~std::uint64_t{0});
        sizes = parseSizeSpec("size", vm["size"].as<std::string>(), o.maxMessage);
        seed = getU64(vm, "seed", 0, ~std::uint64_t{0});
        lingerS = getU64(vm, "linger", 0, 86400);
        durationS = getU64(vm, "duration", 0, 1ull << 32);
        pinCpu(vm);
        busyPoll = vm.count("busy-poll") != 0;
        o.bind = getEndpoint(vm, "bind", true).str();
        o.network = networkOptions(vm);
        o.network.faults = faultOptions(vm);
    } catch (const UsageError& e) {
        std::cerr << "seqcast pub: " << e.what() << "\n(see seqcast pub --help)\n";
        return kExitUsage;
    }
    if (!etcd.empty()) {
        const auto dir = lookupStream("pub", etcd, o.stream);
        if (!dir) return 1;
        std::string list;
        for (const auto& c : dir->controls) {
            if (!list.empty()) list += ',';
            list += c;
        }
        o.sequencer = list;
        std::fprintf(stderr, "seqcast pub: stream %u from etcd: sequencers %s (leader %s)\n", o.stream, list.c_str(),
                     dir->leader.empty() ? "none now" : dir->leader.c_str());
    }
    std::ifstream file;
    std::istream* lines = &std::cin;
    if (vm.count("file")) {
        file.open(vm["file"].as<std::string>());
        if (!file) {
            std::cerr << "seqcast pub: --file: cannot read '" << vm["file"].as<std::string>() << "'\n";
            return kExitUsage;
        }
        lines = &file;
    }
    installStopSignals();
    Histogram confirmLat;
    std::uint64_t confirmed = 0, firstOffset = ~std::uint64_t{0}, lastOffset = 0;
    std::unique_ptr<Publisher> p;
    try {
        p = Publisher::create(o, [&](const Confirmation& k) {
            ++confirmed;
            confirmLat.record(k.latencyNs);
            if (k.offsetKnown) {
                firstOffset = std::min(firstOffset, k.offset);
                lastOffset = std::max(lastOffset, k.offset);
            }
        });
    } catch (const SetupError& e) {
        return apiSetupFailure("pub", e);
    }
    Publisher& pub = *p;
    if (pub.recoveredMessages() > 0)
        std::fprintf(stderr, "seqcast pub: journal: publisher %u resumes at pub_seq %llu, resending %llu unconfirmed\n",
                     pub.id(), static_cast<unsigned long long>(pub.nextPubSeq()),
                     static_cast<unsigned long long>(pub.recoveredMessages()));
    Rng rng(seed ^ pub.id());
    std::optional<gateway::itch::Generator> itchGen;
    if (vm.count("itch")) itchGen.emplace(seed);
    std::vector<std::byte> msg;
    std::string line;
    bool haveLine = false;
    bool sourceDone = false;
    std::uint64_t offered = 0;
    ApiIdler idler(busyPoll);
    const std::uint64_t start = monoNs();
    const std::uint64_t stopOfferAt = durationS ? start + durationS * 1'000'000'000ull : ~std::uint64_t{0};
    std::uint64_t lingerUntil = 0;
    const bool interactive = !synthetic && !vm.count("file");
    while (!stopRequested()) {
        std::uint64_t now = monoNs();
        int work = pub.doWork();
        // Offer what is due.
        if (!sourceDone) {
            if (now >= stopOfferAt) sourceDone = true;
            for (int k = 0; k < 256 && !sourceDone; ++k) {
                if (synthetic) {
                    if (count != 0 && offered >= count) { sourceDone = true; break; }
                    if (rate > 0 && now < start + static_cast<std::uint64_t>(static_cast<double>(offered) * 1e9 / rate)) break;
                    if (itchGen) {
                        msg = itchGen->next(wallNs() % (86400ull * 1'000'000'000));  // since midnight (UTC)
                    } else {
                        msg.resize(sizes.draw(rng, o.maxMessage));
                        fillSynthetic(msg, pub.id(), offered);
                    }
                } else {
                    if (!haveLine) {
                        // Interactive stdin: read a line only when one is waiting (poll), so confirmations keep flowing.
                        if (interactive) {
                            pollfd pf{0, POLLIN, 0};
                            if (::poll(&pf, 1, 0) <= 0) break;
                        }
                        if (!std::getline(*lines, line)) { sourceDone = true; break; }
                        haveLine = true;
                    }
                    msg.assign(reinterpret_cast<const std::byte*>(line.data()), reinterpret_cast<const std::byte*>(line.data()) + line.size());
                }
                const auto r = pub.offer(std::span<const std::byte>(msg));
                if (r == OfferResult::BackPressured || r == OfferResult::NotConnected) break;
                if (r == OfferResult::TooLarge)  // counted as drop_too_large
                    std::fprintf(stderr, "seqcast pub: message of %zu bytes is larger than --max-message; skipped\n", msg.size());
                haveLine = false;
                ++offered;
                ++work;
            }
            if (sourceDone) lingerUntil = monoNs() + lingerS * 1'000'000'000ull;
        }
        if (!pub.fatalError().empty()) {
            std::fprintf(stderr, "seqcast pub: %s\n", pub.fatalError().c_str());
            break;
        }
        if (sourceDone && (pub.unconfirmed() == 0 || monoNs() >= lingerUntil)) break;
        // Idle until a datagram arrives, the next synthetic message is due, or a millisecond passed
        // (resends are timed by doWork()).
        std::uint64_t wake = now + 1'000'000;
        if (synthetic && rate > 0 && !sourceDone) wake = std::min(wake, start + static_cast<std::uint64_t>(static_cast<double>(offered) * 1e9 / rate));
        now = monoNs();
        idler.idle(work, pub, wake > now ? static_cast<std::uint32_t>((wake - now + 999) / 1000) : 0);
    }
    const double secs = static_cast<double>(monoNs() - start) * 1e-9;
    const bool complete = pub.unconfirmed() == 0 && pub.fatalError().empty();
    const CounterValues c = pub.counters();
    std::fprintf(stderr, "seqcast pub: publisher %u: %llu offered, %llu confirmed%s in %.2fs (%s msg/s), %llu back-pressure events, %llu resent; confirm latency %s\n",
                 pub.id(), static_cast<unsigned long long>(offered), static_cast<unsigned long long>(confirmed),
                 complete ? "" : " (INCOMPLETE)", secs, fmtRate(static_cast<double>(confirmed) / std::max(secs, 1e-9)).c_str(),
                 static_cast<unsigned long long>(c.at("back_pressure")),
                 static_cast<unsigned long long>(c.at("pub_retransmits")), latencySummary(confirmLat).c_str());
    if (vm.count("json")) {
        Json j;
        j.begin();
        j.field("publisher", std::uint64_t{pub.id()});
        j.field("offered", offered);
        j.field("confirmed", confirmed);
        j.field("unconfirmed", pub.unconfirmed());
        j.key("complete").boolean(complete);
        j.field("seconds", secs);
        j.field("first_offset", firstOffset == ~std::uint64_t{0} ? 0 : firstOffset);
        j.field("last_offset", lastOffset);
        j.field("back_pressure", c.at("back_pressure"));
        j.field("resent", c.at("pub_retransmits"));
        latencyJson(j, "confirm_latency", confirmLat);
        j.end();
        if (!writeFile(vm["json"].as<std::string>(), j.text())) std::fprintf(stderr, "seqcast pub: cannot write %s\n", vm["json"].as<std::string>().c_str());
    }
    return complete ? 0 : 1;
}

}  // namespace seqcast::tools
