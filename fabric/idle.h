// Idle strategies: what an agent's thread does after a duty cycle that found no work. One
// implementation for every loop in seqcast: the command line's roles, the benchmarks' pipeline and
// the public API's opt-in thread.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

namespace seqcast {

enum class IdleMode : std::uint8_t {
    BusySpin,  // a pause instruction and straight back: lowest latency, one whole CPU
    Yield,     // sched_yield(): gives the CPU to a runnable thread, else spins
    Block,     // one more look, then sleep on the descriptors until one is readable or the next timer
    Backoff,   // spin 100 times, yield 10 times, then sleep 1, 2, 4 ... us up to the cap
};

// Sleeps until one of `fds` (negative ones are skipped) is readable or the monotonic clock reaches
// `untilNs`; returns at once if that has passed.
void waitReadable(std::span<const int> fds, std::uint64_t untilNs);

class Idler {
public:
    // `fds`: what Block sleeps on; `maxSleepNs`: the longest single sleep (Block and Backoff), so a
    // loop re-checks its stop flag at least that often.
    Idler(IdleMode mode, std::vector<int> fds, std::uint64_t maxSleepNs = 5'000'000)
        : mode_(mode), fds_(std::move(fds)), maxSleepNs_(maxSleepNs) {}

    // After a duty cycle: `work` is what it did (0: nothing), `untilNs` its earliest timer on the
    // monotonic clock (Block sleeps no longer than that; a time already past means "look again").
    void idle(int work, std::uint64_t untilNs);

    IdleMode mode() const noexcept { return mode_; }

private:
    IdleMode mode_;
    std::vector<int> fds_;
    std::uint64_t maxSleepNs_;
    unsigned idleRounds_ = 0;
};

}  // namespace seqcast
