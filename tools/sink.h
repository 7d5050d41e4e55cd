// What `seqcast sub` and `seqcast replay` do with delivered messages: print, digest, check order,
// measure latency.
#pragma once

#include <array>
#include <cstdio>
#include <string>
#include <unordered_map>

#include <seqcast/seqcast.hpp>

#include "fabric/crc32c.h"
#include "fabric/histogram.h"
#include "fabric/types.h"
#include "tools/common.h"

namespace seqcast::tools {

class DeliverySink {
public:
    explicit DeliverySink(std::FILE* printTo) : out_(printTo) {}
    // Print each line with one write(2) to fd, unbuffered, before onMessage returns (exactly-once:
    // what is committed has been written whole). Replaces the FILE*.
    void printUnbuffered(int fd) noexcept {
        out_ = nullptr;
        fd_ = fd;
    }

    void onMessage(const Message& m);
    void onLoss(Offset first, std::uint64_t n);

    std::uint64_t delivered = 0, bytes = 0, repaired = 0, lossNotices = 0, lostOffsets = 0;
    std::uint64_t outputBytes = 0;  // bytes printed (all incarnations, after an exactly-once restart)
    bool outputFailed = false;      // a write failed: the output is incomplete
    std::uint64_t firstOffset = 0, lastOffset = 0;
    std::uint64_t minPublishTsNs = ~std::uint64_t{0}, maxPublishTsNs = 0;  // the publishers' clocks
    std::uint64_t orderViolations = 0, fifoViolations = 0;
    std::uint32_t digestState = kCrc32cInit;
    Histogram e2e, hopPubSeq, hopSeqSub;
    std::unordered_map<std::uint32_t, std::uint64_t> lastPubSeq;

    std::string digest() const;
    // The digest state and counters, carried across restarts in an exactly-once commit's
    // application part: delivered, first offset, last offset, digest state, output bytes, and
    // loss notices (high 24 bits) with lost offsets (low 40 bits).
    void save(std::array<std::uint64_t, 6>& app) const noexcept;
    void restore(const std::array<std::uint64_t, 6>& app) noexcept;
    void summaryJson(Json& j) const;

private:
    std::FILE* out_;
    int fd_ = -1;
    std::string line_;
};

}  // namespace seqcast::tools
