// seqcast sub: subscribe to a stream; print, count or verify what is delivered.
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <iostream>
#include <string>
#include <unordered_map>

#include "fabric/clock.h"
#include "fabric/crc32c.h"
#include "fabric/histogram.h"
#include "recovery/subscriber.h"
#include "tools/commands.h"
#include "tools/common.h"
#include "transport/shm_counters.h"

namespace seqcast::tools {

namespace {

void printMessage(const recovery::Delivery& d) {
    std::string text;
    text.reserve(d.payload.size());
    for (std::byte b : d.payload) {
        const auto c = static_cast<unsigned char>(b);
        if (c >= 0x20 && c < 0x7F && c != '\\') text.push_back(static_cast<char>(c));
        else {
            char buf[5];
            std::snprintf(buf, sizeof buf, "\\x%02x", c);
            text += buf;
        }
    }
    std::printf("%llu %u %llu %zu %s\n", static_cast<unsigned long long>(d.offset.get()), d.publisher.get(),
                static_cast<unsigned long long>(d.pubSeq.get()), d.payload.size(), text.c_str());
}

}  // namespace

int runSub(int argc, char** argv) {
    const CommandInfo info{
        "sub",
        "Subscribe to a stream: deliver every message in offset order, exactly once, repairing gaps with NAKs.",
        "  seqcast sub --group 239.1.1.1:40001 --print\n"
        "  seqcast sub --group 239.1.1.1:40001 --verify --messages 400000 --json sub1.json\n"
        "  seqcast sub --mode at-most-once --loss 0.01   # see gaps reported instead of repaired\n"};
    po::options_description d("Subscriber");
    d.add_options()
        ("stream", po::value<std::string>()->default_value("1"), "stream id")
        ("group", po::value<std::string>()->default_value("239.1.1.1:40001"), "multicast group:port of the stream")
        ("sequencer", po::value<std::string>(), "where NAKs go (default: the source of the stream's datagrams)")
        ("from", po::value<std::string>()->default_value("latest"), "start at latest (earliest / an offset need an archiver)")
        ("mode", po::value<std::string>()->default_value("at-least-once"), "at-least-once (repair gaps) or at-most-once (report gaps)")
        ("print", "print each message: offset publisher pub_seq length payload")
        ("verify", "print a digest of the delivered stream at the end")
        ("messages", po::value<std::string>()->default_value("0"), "stop after this many messages (0: no limit)")
        ("exit-on-eos", "stop when the sequencer ends the stream (END_OF_STREAM)")
        ("duration", po::value<std::string>()->default_value("0"), "stop after this many seconds (0: no limit)")
        ("idle-timeout", po::value<std::string>()->default_value("0"), "stop after this many seconds without a delivery, once started (0: never)")
        ("nak-rtt-us", po::value<std::string>()->default_value("200"), "round-trip time assumed until measured (microseconds)")
        ("nak-deadline-ms", po::value<std::string>()->default_value("2000"), "give up on a gap after this long: loss notice")
        ("reorder-buffer", po::value<std::string>()->default_value("32M"), "bytes of datagrams held ahead of a gap")
        ("max-message", po::value<std::string>()->default_value("1M"), "largest message reassembled")
        ("json", po::value<std::string>(), "write a JSON summary to this file");
    addSocketOptions(d);
    addFaultOptions(d, "rx");
    po::variables_map vm;
    if (auto rc = parseCommandLine(info, argc, argv, d, vm)) return *rc;

    recovery::SubscriberConfig cfg;
    transport::UdpConfig dataUdp, ctlUdp;
    transport::FaultConfig faults;
    std::uint64_t maxMessages = 0, durationS = 0, idleS = 0;
    try {
        cfg.stream = StreamId{static_cast<std::uint32_t>(getU64(vm, "stream", 1, 0xFFFFFFFFu))};
        const auto group = getEndpoint(vm, "group");
        if (!group.multicast()) throw UsageError("--group: " + group.str() + " is not a multicast address (224.0.0.0/4)");
        if (vm.count("sequencer")) cfg.sequencer = getEndpoint(vm, "sequencer");
        auto from = recovery::parseStartPosition(vm["from"].as<std::string>());
        if (!from) throw UsageError("--from: " + from.error().message());
        cfg.start = *from;
        const std::string mode = vm["mode"].as<std::string>();
        if (mode == "at-least-once") cfg.mode = recovery::DeliveryMode::AtLeastOnce;
        else if (mode == "at-most-once") cfg.mode = recovery::DeliveryMode::AtMostOnce;
        else throw UsageError("--mode: '" + mode + "' must be at-least-once or at-most-once");
        maxMessages = getU64(vm, "messages", 0, ~std::uint64_t{0});
        durationS = getU64(vm, "duration", 0, 1ull << 32);
        idleS = getU64(vm, "idle-timeout", 0, 1ull << 32);
        cfg.nak.initialRttNs = getU64(vm, "nak-rtt-us", 1, 10'000'000) * 1000;
        cfg.nak.deadlineNs = getU64(vm, "nak-deadline-ms", 1, 3'600'000) * 1'000'000;
        cfg.reorderBytes = getSize(vm, "reorder-buffer", 64u << 10, 1ull << 34);
        cfg.maxMessage = static_cast<std::uint32_t>(getSize(vm, "max-message", 1, 1u << 30));
        cfg.maxDatagram = 9216;  // reorder-buffer slot: any sequencer MTU up to jumbo frames
        cfg.nak.seed = monoNs() ^ static_cast<std::uint64_t>(::getpid());
        if (auto st = cfg.validate(); !st) throw UsageError("--from: " + st.error().message());
        dataUdp = socketConfig(vm);
        dataUdp.bind = group;
        dataUdp.groups = {group.addr};
        dataUdp.maxDatagram = 65536;
        ctlUdp = socketConfig(vm);
        ctlUdp.bind = transport::Endpoint{dataUdp.interface, 0};
        ctlUdp.rcvBuf = 1 << 20;
        faults = faultConfig(vm);
    } catch (const UsageError& e) {
        std::cerr << "seqcast sub: " << e.what() << "\n(see seqcast sub --help)\n";
        return kExitUsage;
    }
    installStopSignals();
    auto shm = transport::ShmCounters::create("sub", cfg.stream.get());
    Counters& c = shm->counters();
    auto data = openTransport(dataUdp, faults, "subscriber " + dataUdp.bind.str());
    if (!data) {
        std::cerr << "seqcast sub: " << data.error().message() << "\n";
        return 1;
    }
    auto ctl = openTransport(ctlUdp, transport::FaultConfig{}, "subscriber control socket");
    if (!ctl) {
        std::cerr << "seqcast sub: " << ctl.error().message() << "\n";
        return 1;
    }
    const bool print = vm.count("print") != 0;
    std::uint64_t delivered = 0, bytes = 0, lostOffsets = 0, lossNotices = 0, repaired = 0;
    std::uint64_t firstOffset = 0, lastOffset = 0, lastDeliveryNs = 0;
    std::uint32_t digest = kCrc32cInit;
    Histogram e2e, hopPubSeq, hopSeqSub;
    // Independent checks of the guarantees: offsets strictly increase, and each publisher's
    // messages arrive in its own pub_seq order (FIFO) without repeats.
    std::uint64_t orderViolations = 0, fifoViolations = 0;
    std::unordered_map<std::uint32_t, std::uint64_t> lastPubSeq;
    recovery::SubscriberHandlers h;
    h.onMessage = [&](const recovery::Delivery& dl) {
        const std::uint64_t now = wallNs();
        if (delivered == 0) firstOffset = dl.offset.get();
        else if (dl.offset.get() <= lastOffset) ++orderViolations;
        auto [it, fresh] = lastPubSeq.try_emplace(dl.publisher.get(), dl.pubSeq.get());
        if (!fresh) {
            if (dl.pubSeq.get() <= it->second) ++fifoViolations;
            it->second = dl.pubSeq.get();
        }
        lastOffset = dl.offset.get();
        ++delivered;
        bytes += dl.payload.size();
        if (dl.repaired) ++repaired;
        if (now > dl.publishTsNs) e2e.record(now - dl.publishTsNs);
        if (dl.sequencedTsNs > dl.publishTsNs) hopPubSeq.record(dl.sequencedTsNs - dl.publishTsNs);
        if (now > dl.sequencedTsNs) hopSeqSub.record(now - dl.sequencedTsNs);
        std::byte meta[24];
        const std::uint64_t o = dl.offset.get(), s = dl.pubSeq.get();
        const std::uint32_t p = dl.publisher.get(), n = static_cast<std::uint32_t>(dl.payload.size());
        std::memcpy(meta, &o, 8);
        std::memcpy(meta + 8, &p, 4);
        std::memcpy(meta + 12, &s, 8);
        std::memcpy(meta + 20, &n, 4);
        digest = crc32cUpdate(crc32cUpdate(digest, meta), dl.payload);
        if (print) printMessage(dl);
    };
    h.onLoss = [&](Offset first, std::uint64_t n) {
        ++lossNotices;
        lostOffsets += n;
        std::fprintf(stderr, "seqcast sub: LOSS offsets [%llu, %llu) cannot be repaired\n",
                     static_cast<unsigned long long>(first.get()), static_cast<unsigned long long>(first.get() + n));
    };
    recovery::Subscriber sub(cfg, **data, **ctl, c, h);
    Idler idler(vm.count("busy-poll") != 0, {(*data)->waitFd(), (*ctl)->waitFd()});
    const std::uint64_t start = monoNs();
    const std::uint64_t end = durationS ? start + durationS * 1'000'000'000ull : ~std::uint64_t{0};
    bool sawEos = false;
    while (!stopRequested()) {
        const std::uint64_t now = monoNs();
        if (now >= end) break;
        const std::uint64_t before = delivered;
        const int work = sub.doWork(now);
        if (delivered != before) lastDeliveryNs = now;
        if (maxMessages != 0 && delivered >= maxMessages) break;
        if (vm.count("exit-on-eos") && sub.endOfStream()) { sawEos = true; break; }
        if (idleS != 0 && delivered > 0 && now - lastDeliveryNs > idleS * 1'000'000'000ull) break;
        idler.idle(work, std::min(sub.nextTimerNs(), now + 2'000'000));
    }
    if (print) std::fflush(stdout);
    const double secs = static_cast<double>(monoNs() - start) * 1e-9;
    const auto& g = sub.gaps().stats();
    std::fprintf(stderr,
                 "seqcast sub: %llu messages (%llu bytes), offsets %llu..%llu, %llu gaps, %llu offsets repaired, %llu NAKs, "
                 "%llu suppressed, %llu lost, %llu crc drops%s\n",
                 static_cast<unsigned long long>(delivered), static_cast<unsigned long long>(bytes),
                 static_cast<unsigned long long>(firstOffset), static_cast<unsigned long long>(lastOffset),
                 static_cast<unsigned long long>(g.gapsDetected), static_cast<unsigned long long>(g.repairedOffsets),
                 static_cast<unsigned long long>(g.naksSent), static_cast<unsigned long long>(g.suppressed),
                 static_cast<unsigned long long>(lostOffsets), static_cast<unsigned long long>(c.get(Counter::DropBadCrc)),
                 sawEos ? ", end of stream" : "");
    std::fprintf(stderr, "seqcast sub: latency publish->deliver %s\n", latencySummary(e2e).c_str());
    char dig[16];
    std::snprintf(dig, sizeof dig, "%08x", crc32cFinal(digest));
    if (vm.count("verify")) std::printf("digest %s messages %llu\n", dig, static_cast<unsigned long long>(delivered));
    if (vm.count("json")) {
        Json j;
        j.begin();
        j.field("messages", delivered);
        j.field("bytes", bytes);
        j.field("first_offset", firstOffset);
        j.field("last_offset", lastOffset);
        j.field("next_offset", sub.nextOffset().get());
        j.field("epoch", std::uint64_t{sub.epoch().get()});
        j.field("digest", std::string(dig));
        j.field("gaps", g.gapsDetected);
        j.field("repaired_offsets", g.repairedOffsets);
        j.field("repaired_messages", repaired);
        j.field("naks_sent", g.naksSent);
        j.field("naks_suppressed", g.suppressed);
        j.field("loss_notices", lossNotices);
        j.field("lost_offsets", lostOffsets);
        j.field("crc_drops", c.get(Counter::DropBadCrc));
        j.field("order_violations", orderViolations);
        j.field("fifo_violations", fifoViolations);
        j.field("publishers", static_cast<std::uint64_t>(lastPubSeq.size()));
        j.field("duplicates_dropped", c.get(Counter::DropDuplicate));
        j.field("epoch_changes", c.get(Counter::EpochChanges));
        j.field("seconds", secs);
        j.key("end_of_stream").boolean(sawEos);
        latencyJson(j, "latency", e2e);
        latencyJson(j, "hop_pub_to_seq", hopPubSeq);
        latencyJson(j, "hop_seq_to_sub", hopSeqSub);
        j.end();
        if (!writeFile(vm["json"].as<std::string>(), j.text())) std::fprintf(stderr, "seqcast sub: cannot write %s\n", vm["json"].as<std::string>().c_str());
    }
    return 0;
}

}  // namespace seqcast::tools
