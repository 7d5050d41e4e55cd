// A market-data feed handler: subscribes to a stream of quotes, keeps the top of book per symbol,
// prints it once a second, and says so when offsets are lost (a repair nobody could make).
//   feed_handler GROUP [SECONDS]       ends at the end of the stream, or after SECONDS
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>
#include <thread>

#include <seqcast/seqcast.hpp>

#include "quote.h"

int main(int argc, char** argv) {
    if (argc < 2) {
        std::fprintf(stderr, "usage: %s GROUP [SECONDS]\n", argv[0]);
        return 2;
    }
    seqcast::SubscriberOptions o;
    o.group = argv[1];
    const double seconds = argc > 2 ? std::strtod(argv[2], nullptr) : 0;
    std::unique_ptr<seqcast::Subscriber> sub;
    try {
        sub = seqcast::Subscriber::create(o);
    } catch (const seqcast::SetupError& e) {
        std::fprintf(stderr, "feed_handler: %s (option %s)\n", e.what(), e.field().c_str());
        return 1;
    }
    std::map<std::string, Quote> book;
    std::uint64_t quotes = 0, malformed = 0, repaired = 0, lostOffsets = 0;
    auto onQuote = [&](const seqcast::Message& m) {
        Quote q;
        if (!decodeQuote(m.payload, q)) {
            ++malformed;
            return;
        }
        ++quotes;
        repaired += m.repaired;
        book[symbolOf(q)] = q;
    };
    auto onLoss = [&](const seqcast::Loss& l) {
        lostOffsets += l.count;
        std::fprintf(stderr, "feed_handler: LOSS of offsets [%llu, %llu): the book may be stale\n",
                     static_cast<unsigned long long>(l.first), static_cast<unsigned long long>(l.first + l.count));
    };
    const auto start = std::chrono::steady_clock::now();
    auto nextPrint = start + std::chrono::seconds(1);
    while (!sub->endOfStream()) {
        const auto now = std::chrono::steady_clock::now();
        if (seconds > 0 && now - start > std::chrono::duration<double>(seconds)) break;
        if (sub->poll(onQuote, onLoss) == 0) std::this_thread::sleep_for(std::chrono::microseconds(50));
        if (now >= nextPrint) {
            for (const auto& [sym, q] : book)
                std::printf("%-6s %lld.%04lld x %u / %lld.%04lld x %u\n", sym.c_str(), static_cast<long long>(q.bid / 10000),
                            static_cast<long long>(q.bid % 10000), q.bidSize, static_cast<long long>(q.ask / 10000),
                            static_cast<long long>(q.ask % 10000), q.askSize);
            nextPrint += std::chrono::seconds(1);
        }
    }
    std::printf("quotes %llu repaired %llu malformed %llu lost_offsets %llu symbols %zu end_of_stream %d\n",
                static_cast<unsigned long long>(quotes), static_cast<unsigned long long>(repaired),
                static_cast<unsigned long long>(malformed), static_cast<unsigned long long>(lostOffsets), book.size(),
                sub->endOfStream() ? 1 : 0);
    return lostOffsets == 0 && malformed == 0 ? 0 : 1;
}
