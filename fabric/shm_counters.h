// A process's counters in a shared-memory file (/dev/shm/seqcast/<pid>-<role>.ctr) that
// `seqcast stat` maps read-only. One cache line per counter; the writer never locks.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "fabric/counters.h"
#include "fabric/result.h"

namespace seqcast {

inline constexpr std::uint64_t kShmCountersMagic = 0x31525443514553ull;  // "SEQCTR1"
inline const char* const kShmCountersDir = "/dev/shm/seqcast";

struct ShmCountersHeader {
    std::uint64_t magic;
    std::uint32_t version;
    std::uint32_t counterCount;
    std::uint64_t pid;
    std::uint64_t startWallNs;
    std::uint32_t stream;
    char role[28];
};
static_assert(sizeof(ShmCountersHeader) <= 64);

class ShmCounters {
public:
    // Creates the file; on failure (no /dev/shm) the counters fall back to private memory.
    static std::unique_ptr<ShmCounters> create(const std::string& role, std::uint32_t stream);
    ~ShmCounters();
    Counters& counters() noexcept { return *counters_; }
    const std::string& path() const noexcept { return path_; }

private:
    ShmCounters() = default;
    std::string path_;
    void* map_ = nullptr;
    std::size_t size_ = 0;
    std::unique_ptr<Counters> counters_;
};

struct CounterSnapshot {
    std::string path;
    std::uint64_t pid = 0;
    std::string role;
    std::uint32_t stream = 0;
    std::uint64_t startWallNs = 0;
    bool alive = false;
    std::vector<std::uint64_t> values;  // kCounterCount entries
};
// Reads every counters file in the directory (read-only); skips files that vanish or are malformed.
std::vector<CounterSnapshot> readAllCounters(const std::string& dir = kShmCountersDir);

}  // namespace seqcast
