// The public API (include/seqcast/seqcast.hpp): settings are checked with an error naming the
// field; a publisher and a subscriber built from it exchange messages through an in-process
// sequencer on loopback multicast, each message once and in order.
#include <cstring>
#include <doctest/doctest.h>

#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstddef>
#include <mutex>
#include <thread>
#include <string>
#include <vector>

#include <seqcast/seqcast.h>
#include <seqcast/seqcast.hpp>


namespace {

std::uint64_t monoNs() {
    return static_cast<std::uint64_t>(
        std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch()).count());
}

std::string fieldOf(const std::function<void()>& f) {
    try {
        f();
    } catch (const seqcast::SetupError& e) {
        return e.field();
    }
    return "(no error)";
}

// A sequencer embedded through the public API (seqcast::Sequencer) on a loopback port,
// multicasting to `group`, with its state file in /tmp (removed again); the test's thread drives it.
struct InProcessSequencer {
    std::string state;
    std::unique_ptr<seqcast::Sequencer> seq;

    InProcessSequencer(std::uint16_t port, const std::string& group)
        : state("/tmp/seqcast-api-test-" + std::to_string(::getpid()) + "-" + std::to_string(port) + ".state") {
        ::unlink(state.c_str());
        seqcast::SequencerOptions o;
        o.control = "127.0.0.1:" + std::to_string(port);
        o.group = group;
        o.stateFile = state;
        seq = seqcast::Sequencer::create(o);
    }
    ~InProcessSequencer() {
        seq.reset();
        ::unlink(state.c_str());
    }
};

}  // namespace

TEST_CASE("bad settings name their field") {
    using namespace seqcast;
    auto pub = [](auto edit) {
        return fieldOf([&] {
            PublisherOptions o;
            edit(o);
            (void)Publisher::create(o);
        });
    };
    CHECK(pub([](PublisherOptions& o) { o.sequencer = "nowhere"; }) == "sequencer");
    CHECK(pub([](PublisherOptions& o) { o.window = 3; }) == "window");
    CHECK(pub([](PublisherOptions& o) { o.mtu = 20; }) == "mtu");
    CHECK(pub([](PublisherOptions& o) { o.maxMessage = 0; }) == "maxMessage");
    CHECK(pub([](PublisherOptions& o) { o.windowBytes = 10; }) == "windowBytes");
    CHECK(pub([](PublisherOptions& o) { o.network.interface = "eth0"; }) == "network.interface");
    CHECK(pub([](PublisherOptions& o) { o.network.ttl = 300; }) == "network.ttl");
    CHECK(pub([](PublisherOptions& o) { o.journal = "/nonexistent-dir/x.journal"; }) == "journal");
    auto sub = [](auto edit) {
        return fieldOf([&] {
            SubscriberOptions o;
            edit(o);
            (void)Subscriber::create(o);
        });
    };
    CHECK(sub([](SubscriberOptions& o) { o.group = "127.0.0.1:5000"; }) == "group");
    CHECK(sub([](SubscriberOptions& o) { o.start = "yesterday"; }) == "start");
    CHECK(sub([](SubscriberOptions& o) { o.commitFile = "/tmp/x.commit"; }) == "commitFile");
    CHECK(sub([](SubscriberOptions& o) { o.delivery = Delivery::ExactlyOnce; }) == "commitFile");
    CHECK(sub([](SubscriberOptions& o) { o.reorderBytes = 1; }) == "reorderBytes");
    CHECK(sub([](SubscriberOptions& o) { o.maxDatagram = 70000; }) == "maxDatagram");
    CHECK(sub([](SubscriberOptions& o) { o.nakDeadlineMs = 0; }) == "nakDeadlineMs");
    CHECK(sub([](SubscriberOptions& o) { o.nakInitialRttUs = 0; }) == "nakInitialRttUs");
    CHECK(sub([](SubscriberOptions& o) { o.network.allow = "10.0.0.0/40"; }) == "network.allow");
    CHECK(fieldOf([] {
              ReplayOptions o;
              o.from = 10;
              o.to = 5;
              (void)Replay::create(o);
          }) == "to");
    CHECK(fieldOf([] {
              ReplayOptions o;
              o.bind = "127.0.0.1";
              (void)Replay::create(o);
          }) == "bind");
}

TEST_CASE("C ABI: options set up before later fields existed are still accepted, with their defaults") {
    seqcast_replay_options o;
    seqcast_replay_options_init(&o);
    CHECK(o.size == sizeof o);
    CHECK(o.wait_for_data == 0);
    CHECK(o.bind == nullptr);
    CHECK(o.network_extra.gso == 1);
    CHECK(o.network_extra.gro == 1);
    seqcast_replay* r = nullptr;
    o.bind = "127.0.0.1";  // no port: refused, but only read when the size says the field exists
    o.network_extra.allow = "10.0.0.0/40";  // so is this
    o.size = offsetof(seqcast_replay_options, wait_for_data);
    CHECK(seqcast_replay_create(&o, &r) == SEQCAST_OK);
    REQUIRE(r != nullptr);
    seqcast_replay_close(r);
    o.size = offsetof(seqcast_replay_options, network_extra);  // bind read, network_extra not
    CHECK(seqcast_replay_create(&o, &r) != SEQCAST_OK);
    CHECK(std::string(seqcast_last_error_field()) == "bind");
    o.bind = "";
    CHECK(seqcast_replay_create(&o, &r) == SEQCAST_OK);
    seqcast_replay_close(r);
    o.size = sizeof o;  // now network_extra is read, and its field named as C names it
    CHECK(seqcast_replay_create(&o, &r) != SEQCAST_OK);
    CHECK(std::string(seqcast_last_error_field()) == "network_extra.allow");
    o.size = sizeof o - 4;
    CHECK(seqcast_replay_create(&o, &r) == SEQCAST_ERR_ARGUMENT);
    CHECK(std::string(seqcast_last_error_field()) == "size");

    seqcast_subscriber_options so;
    seqcast_subscriber_options_init(&so);
    CHECK(so.nak_initial_rtt_us == seqcast::SubscriberOptions{}.nakInitialRttUs);
    so.network_extra.allow = "10.0.0.0/40";
    seqcast_subscriber* s = nullptr;
    so.size = offsetof(seqcast_subscriber_options, network_extra);
    CHECK(seqcast_subscriber_create(&so, &s) == SEQCAST_OK);
    seqcast_subscriber_close(s);
    so.size = sizeof so;
    CHECK(seqcast_subscriber_create(&so, &s) != SEQCAST_OK);
    CHECK(std::string(seqcast_last_error_field()) == "network_extra.allow");
    so.network_extra.allow = "";
    so.nak_initial_rtt_us = 0;
    CHECK(seqcast_subscriber_create(&so, &s) != SEQCAST_OK);
    CHECK(std::string(seqcast_last_error_field()) == "nak_initial_rtt_us");

    seqcast_publisher_options po;
    seqcast_publisher_options_init(&po);
    po.network_extra.allow = "10.0.0.0/40";
    seqcast_publisher* p = nullptr;
    po.size = offsetof(seqcast_publisher_options, network_extra);
    CHECK(seqcast_publisher_create(&po, nullptr, nullptr, &p) == SEQCAST_OK);
    seqcast_publisher_close(p);
    po.size = sizeof po;
    CHECK(seqcast_publisher_create(&po, nullptr, nullptr, &p) != SEQCAST_OK);
    CHECK(std::string(seqcast_last_error_field()) == "network_extra.allow");
}

TEST_CASE("a publisher and a subscriber from the public API exchange messages through a sequencer") {
    using namespace seqcast;
    const std::uint16_t port = static_cast<std::uint16_t>(30000 + (::getpid() % 10000) * 2);
    const std::string group = "239.77." + std::to_string(::getpid() % 250 + 1) + ".9:" + std::to_string(port + 1);
    InProcessSequencer sequencer(port, group);
    auto& seq = sequencer.seq;
    PublisherOptions po;
    po.sequencer = "127.0.0.1:" + std::to_string(port);
    std::vector<std::uint64_t> confirmed;
    auto pub = Publisher::create(po, [&](const Confirmation& c) { confirmed.push_back(c.offset); });
    SubscriberOptions so;
    so.group = group;
    auto sub = Subscriber::create(so);
    std::vector<std::string> got;
    auto onMessage = [&](const Message& m) { got.emplace_back(m.text()); };
    const std::uint64_t deadline = monoNs() + 30'000'000'000ull;
    while (!sub->started() && monoNs() < deadline) {
        seq->doWork();
        sub->poll(onMessage);
    }
    REQUIRE(sub->started());
    const int n = 1000;
    int claimOpenSeen = 0;
    for (int i = 0; i < n && monoNs() < deadline;) {
        const std::string text = "message " + std::to_string(i);
        if (i % 3 != 0) {
            if (pub->offer(text) == OfferResult::Accepted) ++i;
        } else {
            // Zero copy: every third message is written in place; before each, a claim that is
            // aborted (it must never be delivered), and while a claim is open nothing else goes in.
            std::span<std::byte> buf;
            if (pub->tryClaim(64, buf) == OfferResult::Accepted) {
                REQUIRE(buf.size() == 64);
                std::memcpy(buf.data(), "aborted", 7);
                claimOpenSeen += pub->offer("intruder") == OfferResult::ClaimOpen;
                std::span<std::byte> other;
                claimOpenSeen += pub->tryClaim(8, other) == OfferResult::ClaimOpen;
                pub->abort();
            }
            if (pub->tryClaim(64, buf) == OfferResult::Accepted) {
                std::memcpy(buf.data(), text.data(), text.size());
                pub->doWork();  // doWork() with a claim open sends only what was committed
                pub->commit(text.size());
                ++i;
            }
        }
        pub->doWork();
        seq->doWork();
        sub->poll(onMessage);
    }
    while ((got.size() < static_cast<std::size_t>(n) || confirmed.size() < static_cast<std::size_t>(n)) && monoNs() < deadline) {
        pub->doWork();
        seq->doWork();
        sub->poll(onMessage);
    }
    REQUIRE(got.size() == static_cast<std::size_t>(n));
    for (int i = 0; i < n; ++i) CHECK(got[static_cast<std::size_t>(i)] == "message " + std::to_string(i));
    CHECK(confirmed.size() == static_cast<std::size_t>(n));
    CHECK(pub->unconfirmed() == 0);
    CHECK(claimOpenSeen == 2 * ((n + 2) / 3));
    CHECK(pub->offer(std::string(po.maxMessage + 1, 'x')) == OfferResult::TooLarge);
    std::span<std::byte> big;
    CHECK(pub->tryClaim(po.maxMessage + 1, big) == OfferResult::TooLarge);
    pub->commit();  // no claim open: nothing is published
    CHECK(pub->nextPubSeq() == static_cast<std::uint64_t>(n) + 1);
    // The objects' own counters: the two refused offers above, what the subscriber took in.
    CHECK(pub->counters().at("drop_too_large") == 2);
    CHECK(pub->counters().at("datagrams_out") > 0);
    CHECK(sub->counters().at("messages_in") >= static_cast<std::uint64_t>(n));
    CHECK(sub->counters().count("fault_dropped") == 0);  // no faults injected: no fault layer
    CHECK(sub->epoch() == seq->epoch());
    // Its counters are visible to readCounters(), as to `seqcast stat`.
    bool seen = false;
    for (const auto& p : readCounters())
        if (p.pid == static_cast<std::uint64_t>(::getpid()) && p.role == "sub") seen = seen || p.values.count("messages_in") == 1;
    CHECK(seen);
}

TEST_CASE("an embedded sequencer: bad settings name their field; a restart on its state file continues the stream") {
    using namespace seqcast;
    auto seqField = [](auto edit) {
        return fieldOf([&] {
            SequencerOptions o;
            o.stateFile = "/tmp/seqcast-api-never-created.state";
            edit(o);
            (void)Sequencer::create(o);
        });
    };
    CHECK(seqField([](SequencerOptions& o) { o.group = "127.0.0.1:5000"; }) == "group");
    CHECK(seqField([](SequencerOptions& o) { o.control = "nowhere"; }) == "control");
    CHECK(seqField([](SequencerOptions& o) { o.mtu = 20; }) == "mtu");
    CHECK(seqField([](SequencerOptions& o) { o.ringBytes = 1000; }) == "ringBytes");
    CHECK(seqField([](SequencerOptions& o) { o.heartbeatMinUs = 200'000; o.heartbeatMaxMs = 100; }) == "heartbeatMaxMs");
    CHECK(seqField([](SequencerOptions& o) { o.dataBind = "127.0.0.1"; }) == "dataBind");
    CHECK(seqField([](SequencerOptions& o) { o.network.interface = "10.255.255.254"; }) == "network.interface");
    CHECK(::access("/tmp/seqcast-api-never-created.state", F_OK) != 0);

    const std::uint16_t port = static_cast<std::uint16_t>(30000 + (::getpid() % 10000) * 2 + 3000);
    const std::string group = "239.80." + std::to_string(::getpid() % 250 + 1) + ".9:" + std::to_string(port + 1);
    auto first = std::make_unique<InProcessSequencer>(port, group);
    Sequencer& seq = *first->seq;
    CHECK(!seq.recovered());
    CHECK(seq.controlAddress() == "127.0.0.1:" + std::to_string(port));
    CHECK(seq.socketKind() == "udp");
    // The state file is held: a second sequencer on it is refused, naming it, with the errno.
    int code = 0;
    CHECK(fieldOf([&] {
              SequencerOptions o;
              o.control = "127.0.0.1:" + std::to_string(port + 2);
              o.group = group;
              o.stateFile = first->state;
              try {
                  (void)Sequencer::create(o);
              } catch (const SetupError& e) {
                  code = e.code();
                  throw;
              }
          }) == "stateFile");
    CHECK(code == EBUSY);
    CHECK(fieldOf([] {
              SequencerOptions o;
              o.mtu = 20;
              try {
                  (void)Sequencer::create(o);
              } catch (const SetupError& e) {
                  CHECK(e.code() == 0);  // a value, not a resource
                  throw;
              }
          }) == "mtu");
    PublisherOptions po;
    po.sequencer = seq.controlAddress();
    auto pub = Publisher::create(po);
    const std::uint64_t deadline = monoNs() + 30'000'000'000ull;
    for (int i = 0; i < 100 && monoNs() < deadline;) {
        std::string msg = "x";  // (not "x" + to_string(i): GCC 12's -Wrestrict misfires on it here)
        msg += std::to_string(i);
        if (pub->offer(msg) == OfferResult::Accepted) ++i;
        pub->doWork();
        seq.doWork();
    }
    while (pub->unconfirmed() != 0 && monoNs() < deadline) {
        pub->doWork();
        seq.doWork();
        seq.wait(100);
    }
    CHECK(pub->unconfirmed() == 0);
    CHECK(seq.nextOffset() == 100);
    CHECK(seq.counters().at("messages_out") == 100);
    const std::uint32_t epoch = seq.epoch();
    seq.endOfStream();
    // A restart on the same state file: the next epoch, the stream continues at offset 100.
    const std::string state = first->state;
    first->seq.reset();
    SequencerOptions o;
    o.control = "127.0.0.1:" + std::to_string(port);
    o.group = group;
    o.stateFile = state;
    auto second = Sequencer::create(o);
    CHECK(second->recovered());
    CHECK(second->epoch() == epoch + 1);
    CHECK(second->nextOffset() == 100);
    second.reset();
    ::unlink(state.c_str());
}

TEST_CASE("an embedded archiver records the stream, a Replay reads it back, a restart recovers the log") {
    using namespace seqcast;
    const std::uint16_t port = static_cast<std::uint16_t>(30000 + (::getpid() % 10000) * 2 + 4000);
    const std::string group = "239.81." + std::to_string(::getpid() % 250 + 1) + ".9:" + std::to_string(port + 1);
    const std::string logPath = "/tmp/seqcast-api-archive-" + std::to_string(::getpid()) + ".log";
    ::unlink(logPath.c_str());
    InProcessSequencer sequencer(port, group);
    Sequencer& seq = *sequencer.seq;
    ArchiverOptions ao;
    ao.group = group;
    ao.control = "127.0.0.1:" + std::to_string(port + 2);
    ao.log = logPath;
    ao.sizeBytes = 4u << 20;
    ao.segmentBytes = 1u << 20;
    ao.network.rcvbuf = 8u << 20;
    CHECK(fieldOf([&] {
              ArchiverOptions bad = ao;
              bad.sizeBytes = 3u << 20;
              (void)Archiver::create(bad);
          }) == "sizeBytes");
    auto ar = Archiver::create(ao);
    CHECK(!ar->recovered());
    CHECK(ar->controlAddress() == ao.control);
    PublisherOptions po;
    po.sequencer = seq.controlAddress();
    auto pub = Publisher::create(po);
    const int n = 300;
    const std::uint64_t deadline = monoNs() + 30'000'000'000ull;
    auto drive = [&] {
        pub->doWork();
        seq.doWork();
        ar->doWork();
    };
    while (ar->counters().at("heartbeats_received") == 0 && monoNs() < deadline) drive();
    for (int i = 0; i < n && monoNs() < deadline;) {
        if (pub->offer("record " + std::to_string(i)) == OfferResult::Accepted) ++i;
        drive();
    }
    while (ar->durableOffset() < static_cast<std::uint64_t>(n) && monoNs() < deadline) {
        drive();
        ar->wait(200);
    }
    REQUIRE(ar->durableOffset() == static_cast<std::uint64_t>(n));
    CHECK(ar->earliestOffset() == 0);
    ReplayOptions ro;
    ro.archiver = ao.control;
    ro.from = 100;
    ro.to = 200;
    auto replay = Replay::create(ro);
    std::vector<std::string> got;
    while (!replay->finished() && monoNs() < deadline) {
        if (replay->poll([&](const Message& m) { got.emplace_back(m.text()); }) == 0) ar->doWork();
    }
    CHECK(replay->failure().empty());
    REQUIRE(got.size() == 100u);
    CHECK(got.front() == "record 100");
    CHECK(got.back() == "record 199");
    CHECK(ar->counters().at("replays_started") >= 1);
    // Beyond the head without waitForData: a failure naming the offset asked for.
    ro.from = n + 10;
    ro.to = n + 20;
    auto beyond = Replay::create(ro);
    while (!beyond->finished() && monoNs() < deadline) {
        if (beyond->poll([](const Message&) {}) == 0) ar->doWork();
    }
    INFO("failure: " << beyond->failure());
    CHECK(beyond->failure().find("offset " + std::to_string(n + 10) + " is beyond what the archive holds") != std::string::npos);
    CHECK(ar->flush());
    ar.reset();
    auto again = Archiver::create(ao);
    CHECK(again->recovered());
    CHECK(again->nextOffset() == static_cast<std::uint64_t>(n));
    again.reset();
    ::unlink(logPath.c_str());
}

TEST_CASE("exactly-once: the application's words are committed with the position; injected loss is repaired and counted") {
    using namespace seqcast;
    const std::uint16_t port = static_cast<std::uint16_t>(30000 + (::getpid() % 10000) * 2 + 2000);
    const std::string group = "239.79." + std::to_string(::getpid() % 250 + 1) + ".9:" + std::to_string(port + 1);
    const std::string commitPath = "/tmp/seqcast-api-commit-" + std::to_string(::getpid());
    ::unlink(commitPath.c_str());
    InProcessSequencer sequencer(port, group);
    auto& seq = sequencer.seq;
    PublisherOptions po;
    po.sequencer = "127.0.0.1:" + std::to_string(port);
    auto pub = Publisher::create(po);
    SubscriberOptions so;
    so.group = group;
    so.delivery = Delivery::ExactlyOnce;
    so.commitFile = commitPath;
    so.network.faults.loss = 0.1;  // on the subscriber's data socket: repaired by NAKs
    so.network.faults.seed = 7;
    std::uint64_t count = 0, sum = 0;
    so.onCommit = [&](std::array<std::uint64_t, 6>& app) {
        app[0] = count;
        app[1] = sum;
    };
    const int n = 500;
    std::uint64_t next = 0;
    {
        auto sub = Subscriber::create(so);
        CHECK(!sub->committed().present);
        auto onMessage = [&](const Message& m) {
            ++count;
            sum += std::stoull(std::string(m.text()));
        };
        const std::uint64_t deadline = monoNs() + 30'000'000'000ull;
        while (!sub->started() && monoNs() < deadline) {
            seq->doWork();
            sub->poll(onMessage);
        }
        REQUIRE(sub->started());
        for (int i = 0; i < n && monoNs() < deadline;) {
            if (pub->offer(std::to_string(i)) == OfferResult::Accepted) ++i;
            pub->doWork();
            seq->doWork();
            sub->poll(onMessage);
        }
        while (count < static_cast<std::uint64_t>(n) && monoNs() < deadline) {
            pub->doWork();
            seq->doWork();
            sub->poll(onMessage);
        }
        REQUIRE(count == static_cast<std::uint64_t>(n));
        CHECK(sum == static_cast<std::uint64_t>(n) * (n - 1) / 2);
        const CounterValues c = sub->counters();
        CHECK(c.at("fault_dropped") > 0);
        CHECK(c.at("gaps_detected") > 0);
        CHECK(c.at("nak_ranges_sent") > 0);
        CHECK(c.at("offsets_lost") == 0);
        CHECK(sub->syncCommit());
        next = sub->nextOffset();
        CHECK(sub->committed().present);
        CHECK(sub->committed().app[0] == static_cast<std::uint64_t>(n));
    }
    // A new subscriber on the commit file reads back the position and the words committed with it.
    so.onCommit = {};
    auto again = Subscriber::create(so);
    const Subscriber::Commit k = again->committed();
    CHECK(k.present);
    CHECK(k.next == next);
    CHECK(k.app[0] == static_cast<std::uint64_t>(n));
    CHECK(k.app[1] == sum);
    again.reset();
    ::unlink(commitPath.c_str());
    CHECK(fieldOf([] {
              SubscriberOptions bad;
              bad.network.faults.loss = 2;
              (void)Subscriber::create(bad);
          }) == "network.faults.loss");
}

TEST_CASE("an opt-in thread drives a publisher and a subscriber; calls from other threads are safe meanwhile") {
    using namespace seqcast;
    const std::uint16_t port = static_cast<std::uint16_t>(30000 + (::getpid() % 10000) * 2 + 1000);
    const std::string group = "239.78." + std::to_string(::getpid() % 250 + 1) + ".9:" + std::to_string(port + 1);
    InProcessSequencer sequencer(port, group);
    auto& seq = sequencer.seq;

    PublisherOptions po;
    po.sequencer = "127.0.0.1:" + std::to_string(port);
    std::atomic<int> confirmed{0};
    auto pub = Publisher::create(po, [&](const Confirmation&) { ++confirmed; });
    SubscriberOptions so;
    so.group = group;
    auto sub = Subscriber::create(so);
    std::mutex mu;
    std::vector<std::string> got;
    std::thread::id handlerThread;
    ThreadOptions bad;
    bad.cpu = 1 << 20;
    CHECK(fieldOf([&] { sub->startThread([](const Message&) {}, {}, bad); }) == "cpu");
    bad = ThreadOptions{};
    bad.maxSleepUs = 0;
    CHECK(fieldOf([&] { pub->startThread(bad); }) == "maxSleepUs");
    CHECK_FALSE(pub->threadRunning());

    // wait() sleeps when nothing arrives (nothing is sent yet: the sequencer is not driven).
    const std::uint64_t w0 = monoNs();
    sub->wait(50'000);
    CHECK(monoNs() - w0 >= 45'000'000ull);
    // The subscriber's thread blocks on its sockets between passes; the publisher's backs off.
    ThreadOptions blocking;
    blocking.idle = IdleStrategy::Block;
    sub->startThread([&](const Message& m) {
        std::lock_guard<std::mutex> g(mu);
        handlerThread = std::this_thread::get_id();
        got.emplace_back(m.text());
    }, {}, blocking);
    pub->startThread();
    CHECK(pub->threadRunning());
    CHECK(sub->threadRunning());
    CHECK(fieldOf([&] { pub->startThread(); }) == "thread");

    // The test's thread drives the sequencer; the two clients' threads do the rest, and two
    // application threads offer at the same time.
    const std::uint64_t deadline = monoNs() + 30'000'000'000ull;
    while (!sub->started() && monoNs() < deadline) seq->doWork();
    REQUIRE(sub->started());
    const int perThread = 500;
    auto offerer = [&](char who) {
        for (int i = 0; i < perThread && monoNs() < deadline;) {
            std::string text = std::to_string(i);
            text.insert(text.begin(), who);
            if (pub->offer(text) == OfferResult::Accepted) ++i;
            else std::this_thread::yield();
        }
    };
    std::thread a(offerer, 'a'), b(offerer, 'b');
    auto count = [&] {
        std::lock_guard<std::mutex> g(mu);
        return got.size();
    };
    while ((count() < 2u * perThread || confirmed.load() < 2 * perThread) && monoNs() < deadline) seq->doWork();
    a.join();
    b.join();
    pub->stopThread();
    sub->stopThread();
    CHECK_FALSE(pub->threadRunning());
    CHECK_FALSE(sub->threadRunning());
    REQUIRE(got.size() == 2u * perThread);
    CHECK(confirmed.load() == 2 * perThread);
    CHECK(pub->unconfirmed() == 0);
    CHECK(handlerThread != std::this_thread::get_id());
    // Each application thread's messages arrive whole, once and in the order it offered them.
    int nextA = 0, nextB = 0;
    for (const auto& t : got) {
        REQUIRE(!t.empty());
        int& next = t[0] == 'a' ? nextA : nextB;
        CHECK(t.substr(1) == std::to_string(next));
        ++next;
    }
    CHECK(nextA == perThread);
    CHECK(nextB == perThread);
    // After stopThread() the application's thread drives the objects again.
    CHECK(pub->offer("after") == OfferResult::Accepted);
    std::vector<std::string> after;
    while (after.empty() && monoNs() < deadline) {
        pub->doWork();
        seq->doWork();
        sub->poll([&](const Message& m) { after.emplace_back(m.text()); });
    }
    REQUIRE(after.size() == 1);
    CHECK(after[0] == "after");
}
