// Publishes quotes with a journal: killed at any point and restarted with the same --journal, it
// resends what the sequencer had not confirmed and goes on; nothing is lost or doubled.
//   journal_publisher SEQUENCER JOURNAL COUNT [RATE_PER_S]
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>

#include <seqcast/seqcast.hpp>

#include "quote.h"

int main(int argc, char** argv) {
    if (argc < 4) {
        std::fprintf(stderr, "usage: %s SEQUENCER JOURNAL COUNT [RATE_PER_S]\n", argv[0]);
        return 2;
    }
    seqcast::PublisherOptions o;
    o.sequencer = argv[1];
    o.journal = argv[2];
    const std::uint64_t count = std::strtoull(argv[3], nullptr, 10);
    const double rate = argc > 4 ? std::strtod(argv[4], nullptr) : 0;
    std::uint64_t confirmed = 0, lastOffset = 0;
    std::unique_ptr<seqcast::Publisher> pub;
    try {
        pub = seqcast::Publisher::create(o, [&](const seqcast::Confirmation& c) {
            ++confirmed;
            if (c.offsetKnown) lastOffset = c.offset;
        });
    } catch (const seqcast::SetupError& e) {
        std::fprintf(stderr, "journal_publisher: %s\n", e.what());
        return 1;
    }
    if (pub->recoveredMessages() > 0)
        std::fprintf(stderr, "journal_publisher: resending %llu unconfirmed messages from the journal\n",
                     static_cast<unsigned long long>(pub->recoveredMessages()));
    const char* symbols[] = {"AAPL    ", "MSFT    ", "NVDA    ", "AMZN    "};
    const auto start = std::chrono::steady_clock::now();
    // pub_seq numbers messages across restarts: continue where the journal left off.
    for (std::uint64_t n = pub->nextPubSeq() - 1; n < count;) {
        if (rate > 0 && n >= rate * std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count()) {
            pub->doWork();
            continue;
        }
        Quote q{};
        std::memcpy(q.symbol, symbols[n % 4], 8);
        q.bid = 1'000'000 + static_cast<std::int64_t>(n % 1000);
        q.ask = q.bid + 100;
        q.bidSize = 100 + static_cast<std::uint32_t>(n % 7);
        q.askSize = 200;
        const auto r = pub->offer(std::as_bytes(std::span(&q, 1)));
        if (r == seqcast::OfferResult::Accepted) ++n;
        else if (r == seqcast::OfferResult::NotConnected) {
            std::fprintf(stderr, "journal_publisher: %s\n", pub->fatalError().c_str());
            return 1;
        }
        pub->doWork();
    }
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (pub->unconfirmed() > 0 && std::chrono::steady_clock::now() < deadline) {
        if (pub->doWork() == 0) std::this_thread::sleep_for(std::chrono::microseconds(100));
    }
    std::printf("published %llu, confirmed %llu this run, unconfirmed %llu, last offset %llu\n",
                static_cast<unsigned long long>(count), static_cast<unsigned long long>(confirmed),
                static_cast<unsigned long long>(pub->unconfirmed()), static_cast<unsigned long long>(lastOffset));
    return pub->unconfirmed() == 0 ? 0 : 1;
}
