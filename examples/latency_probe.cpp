// Publish -> sequencer -> subscriber latency, in one process: N timestamped messages, then the
// median and the 99th percentile of publish-to-delivery time.   latency_probe SEQUENCER GROUP [N]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include <seqcast/seqcast.hpp>

int main(int argc, char** argv) {
    if (argc < 3) return std::fprintf(stderr, "usage: %s SEQUENCER GROUP [N]\n", argv[0]), 2;
    const std::size_t n = argc > 3 ? std::strtoull(argv[3], nullptr, 10) : 1000;
    seqcast::PublisherOptions po;
    po.sequencer = argv[1];
    seqcast::SubscriberOptions so;
    so.group = argv[2];
    std::unique_ptr<seqcast::Publisher> pub;
    std::unique_ptr<seqcast::Subscriber> sub;
    try {
        pub = seqcast::Publisher::create(po);
        sub = seqcast::Subscriber::create(so);
    } catch (const seqcast::SetupError& e) {
        return std::fprintf(stderr, "latency_probe: %s\n", e.what()), 1;
    }
    auto now = [] { return std::chrono::steady_clock::now().time_since_epoch().count(); };
    std::vector<long long> lat;
    auto onMessage = [&](const seqcast::Message& m) {
        long long t = 0;
        std::memcpy(&t, m.payload.data(), std::min(m.payload.size(), sizeof t));
        lat.push_back(now() - t);
    };
    const long long deadline = now() + 30'000'000'000LL;  // the stream must answer within 30 s
    while (!sub->started() && now() < deadline) sub->poll(onMessage), pub->doWork();  // hear the stream first
    for (std::size_t sent = 0; lat.size() < n;) {
        if (now() > deadline) return std::fprintf(stderr, "latency_probe: %zu of %zu delivered in 30 s\n", lat.size(), n), 1;
        if (sent == lat.size() && sent < n) {
            const long long t = now();
            if (pub->offer(std::as_bytes(std::span(&t, 1))) == seqcast::OfferResult::Accepted) ++sent;
        }
        pub->doWork();
        sub->poll(onMessage);
    }
    std::sort(lat.begin(), lat.end());
    std::printf("%zu messages: p50 %.1f us, p99 %.1f us\n", n, lat[n / 2] / 1e3, lat[n * 99 / 100] / 1e3);
    return 0;
}
