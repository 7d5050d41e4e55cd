// What `seqcast sub` and `seqcast replay` do with delivered messages: print, digest, check order,
// measure latency.
#pragma once

#include <cstdio>
#include <string>
#include <unordered_map>

#include "fabric/crc32c.h"
#include "fabric/histogram.h"
#include "recovery/subscriber.h"
#include "tools/common.h"

namespace seqcast::tools {

class DeliverySink {
public:
    explicit DeliverySink(std::FILE* printTo) : out_(printTo) {}

    void onMessage(const recovery::Delivery& d);
    void onLoss(Offset first, std::uint64_t n);

    std::uint64_t delivered = 0, bytes = 0, repaired = 0, lossNotices = 0, lostOffsets = 0;
    std::uint64_t firstOffset = 0, lastOffset = 0;
    std::uint64_t orderViolations = 0, fifoViolations = 0;
    std::uint32_t digestState = kCrc32cInit;
    Histogram e2e, hopPubSeq, hopSeqSub;
    std::unordered_map<std::uint32_t, std::uint64_t> lastPubSeq;

    std::string digest() const;
    // The digest state and counters, to carry across a restart (exactly-once).
    void restore(std::uint32_t state, std::uint64_t count, std::uint64_t first, std::uint64_t last) {
        digestState = state;
        delivered = count;
        firstOffset = first;
        lastOffset = last;
    }
    void summaryJson(Json& j) const;

private:
    std::FILE* out_;
};

}  // namespace seqcast::tools
