// Replays offsets [FROM, TO) from an archiver into CSV on stdout: one row per message.
//   replay_to_csv ARCHIVER FROM TO
#include <cstdio>
#include <cstdlib>
#include <thread>

#include <seqcast/seqcast.hpp>

#include "quote.h"

int main(int argc, char** argv) {
    if (argc < 4) {
        std::fprintf(stderr, "usage: %s ARCHIVER FROM TO\n", argv[0]);
        return 2;
    }
    seqcast::ReplayOptions o;
    o.archiver = argv[1];
    o.from = std::strtoull(argv[2], nullptr, 10);
    o.to = std::strtoull(argv[3], nullptr, 10);
    std::unique_ptr<seqcast::Replay> replay;
    try {
        replay = seqcast::Replay::create(o);
    } catch (const seqcast::SetupError& e) {
        std::fprintf(stderr, "replay_to_csv: %s\n", e.what());
        return 1;
    }
    std::uint64_t rows = 0, lost = 0;
    std::printf("offset,publisher,pub_seq,publish_ts_ns,symbol,bid,ask,bid_size,ask_size\n");
    auto onMessage = [&](const seqcast::Message& m) {
        Quote q;
        if (!decodeQuote(m.payload, q)) return;
        ++rows;
        std::printf("%llu,%u,%llu,%llu,%s,%lld,%lld,%u,%u\n", static_cast<unsigned long long>(m.offset), m.publisher,
                    static_cast<unsigned long long>(m.pubSeq), static_cast<unsigned long long>(m.publishTsNs),
                    symbolOf(q).c_str(), static_cast<long long>(q.bid), static_cast<long long>(q.ask), q.bidSize, q.askSize);
    };
    auto onLoss = [&](const seqcast::Loss& l) { lost += l.count; };
    while (!replay->finished()) {
        if (replay->poll(onMessage, onLoss) == 0) std::this_thread::sleep_for(std::chrono::microseconds(100));
    }
    std::fprintf(stderr, "replay_to_csv: %llu rows, %llu offsets lost%s%s\n", static_cast<unsigned long long>(rows),
                 static_cast<unsigned long long>(lost), replay->failure().empty() ? "" : "; ", replay->failure().c_str());
    return replay->failure().empty() && lost == 0 ? 0 : 1;
}
