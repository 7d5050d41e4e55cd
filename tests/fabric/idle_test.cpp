// Idler: what every loop does after a duty cycle without work. Block takes one more look, then sleeps
// on its descriptors until one is readable or the timer is due, never past maxSleepNs; work resets
// it; Backoff's sleeps grow to the cap. Times are checked only as lower bounds or with wide margins
// (a busy machine makes sleeps longer, never shorter).
#include <doctest/doctest.h>

#include <unistd.h>

#include <thread>

#include "fabric/clock.h"
#include "fabric/idle.h"

using namespace seqcast;

namespace {
struct Pipe {
    int fd[2] = {-1, -1};
    Pipe() { REQUIRE(::pipe(fd) == 0); }
    ~Pipe() {
        ::close(fd[0]);
        ::close(fd[1]);
    }
};
}  // namespace

TEST_CASE("idle: Block looks once more, then sleeps until the timer") {
    Pipe p;
    Idler idler(IdleMode::Block, {p.fd[0]}, 1'000'000'000);
    std::uint64_t t0 = monoNs();
    idler.idle(0, t0 + 50'000'000);  // the first idle pass returns at once: one more look
    CHECK(monoNs() - t0 < 40'000'000);
    t0 = monoNs();
    idler.idle(0, t0 + 50'000'000);  // the second sleeps until the timer
    CHECK(monoNs() - t0 >= 50'000'000);
    // Work resets it: the next idle pass is again a look, not a sleep.
    idler.idle(1, 0);
    t0 = monoNs();
    idler.idle(0, t0 + 50'000'000);
    CHECK(monoNs() - t0 < 40'000'000);
}

TEST_CASE("idle: Block wakes when a descriptor becomes readable, and never sleeps past maxSleepNs") {
    Pipe p;
    Idler idler(IdleMode::Block, {-1, p.fd[0]}, 10'000'000'000ull);
    idler.idle(0, 0);
    std::thread writer([&] {
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
        CHECK(::write(p.fd[1], "x", 1) == 1);
    });
    const std::uint64_t t0 = monoNs();
    idler.idle(0, t0 + 20'000'000'000ull);  // a 20 s timer: only the write can end this in time
    const std::uint64_t slept = monoNs() - t0;
    writer.join();
    CHECK(slept >= 40'000'000);
    CHECK(slept < 5'000'000'000ull);

    Idler capped(IdleMode::Block, {}, 30'000'000);
    capped.idle(0, 0);
    const std::uint64_t t1 = monoNs();
    capped.idle(0, t1 + 20'000'000'000ull);
    const std::uint64_t cappedSlept = monoNs() - t1;
    CHECK(cappedSlept >= 30'000'000);
    CHECK(cappedSlept < 5'000'000'000ull);
}

TEST_CASE("idle: a timer already due means look again, not sleep") {
    Idler idler(IdleMode::Block, {}, 1'000'000'000);
    idler.idle(0, 0);
    const std::uint64_t t0 = monoNs();
    for (int i = 0; i < 100; ++i) idler.idle(0, monoNs() - 1);
    CHECK(monoNs() - t0 < 500'000'000);
}

TEST_CASE("idle: Backoff spins, yields, then sleeps longer and longer up to the cap") {
    Idler idler(IdleMode::Backoff, {}, 2'000'000);
    const std::uint64_t t0 = monoNs();
    for (int i = 0; i < 110; ++i) idler.idle(0, 0);  // 100 pauses and 10 yields: no sleep
    const std::uint64_t spun = monoNs() - t0;
    // Then sleeps of 1, 2, 4 ... us, capped at 2 ms: 30 more rounds sleep at least
    // 1+2+...+1024 us (2047 us) plus 19 capped rounds of 2 ms.
    const std::uint64_t t1 = monoNs();
    for (int i = 0; i < 30; ++i) idler.idle(0, 0);
    const std::uint64_t slept = monoNs() - t1;
    CHECK(slept >= 2'047'000 + 19 * 2'000'000);
    CHECK(slept < 10'000'000'000ull);
    CHECK(spun < 1'000'000'000);
    // Work starts it over: the next rounds spin again.
    idler.idle(1, 0);
    const std::uint64_t t2 = monoNs();
    for (int i = 0; i < 100; ++i) idler.idle(0, 0);
    CHECK(monoNs() - t2 < 1'000'000'000);
}
