#include "fabric/idle.h"

#include <poll.h>
#include <sched.h>

#include <algorithm>
#include <chrono>
#include <thread>

#include "fabric/clock.h"

namespace seqcast {

void waitReadable(std::span<const int> fds, std::uint64_t untilNs) {
    const std::uint64_t now = monoNs();
    if (untilNs <= now) return;
    const std::uint64_t ns = untilNs - now;
    pollfd p[8];
    nfds_t n = 0;
    for (int fd : fds)
        if (fd >= 0 && n < std::size(p)) p[n++] = pollfd{fd, POLLIN, 0};
    const timespec ts{static_cast<time_t>(ns / 1'000'000'000ull), static_cast<long>(ns % 1'000'000'000ull)};
    ::ppoll(p, n, &ts, nullptr);
}

void Idler::idle(int work, std::uint64_t untilNs) {
    if (work > 0) {
        idleRounds_ = 0;
        return;
    }
    switch (mode_) {
        case IdleMode::BusySpin:
            __builtin_ia32_pause();
            return;
        case IdleMode::Yield:
            ::sched_yield();
            return;
        case IdleMode::Block:
            // One more look before sleeping: every look is a receive syscall, so keep it to one.
            if (++idleRounds_ < 2) return;
            waitReadable(fds_, std::min(untilNs, monoNs() + maxSleepNs_));
            return;
        case IdleMode::Backoff: {
            const unsigned r = idleRounds_;
            if (idleRounds_ < 130) ++idleRounds_;  // the longest sleep is reached at 130
            if (r < 100) {
                __builtin_ia32_pause();
            } else if (r < 110) {
                ::sched_yield();
            } else {
                const unsigned shift = std::min(r - 110, 20u);
                const std::uint64_t ns = std::min<std::uint64_t>((1ull << shift) * 1000ull, maxSleepNs_);
                std::this_thread::sleep_for(std::chrono::nanoseconds(ns));
            }
            return;
        }
    }
}

}  // namespace seqcast
