// Seeded fault injection around any transport: random loss, burst loss, reordering, duplication and
// corrupted bytes, on receive, on send, or both. Same seed, same faults.
#pragma once

#include <deque>
#include <memory>
#include <vector>

#include "fabric/clock.h"
#include "transport/transport.h"

namespace seqcast::transport {

struct FaultConfig {
    std::uint64_t seed = 1;
    double loss = 0;          // probability a datagram is dropped
    double burstStart = 0;    // probability a burst of `burstLength` consecutive drops starts here
    unsigned burstLength = 50;
    double reorder = 0;       // probability a datagram is held back and delivered after the next ones
    double duplicate = 0;     // probability a datagram is delivered twice
    double corrupt = 0;       // probability one byte of a datagram is flipped
    // Bit t set: every datagram whose seqcast frame type byte (offset 8) is t is dropped, whatever
    // the probabilities (e.g. 1 << 9: every END_OF_STREAM). Counted in FaultStats::typeDropped.
    std::uint32_t dropTypes = 0;
    bool onReceive = true;
    bool onSend = false;

    bool any() const noexcept {
        return loss > 0 || burstStart > 0 || reorder > 0 || duplicate > 0 || corrupt > 0 || dropTypes != 0;
    }
    Status validate() const;
};

struct FaultStats {
    std::uint64_t dropped = 0;
    std::uint64_t burstDropped = 0;
    std::uint64_t reordered = 0;
    std::uint64_t duplicated = 0;
    std::uint64_t corrupted = 0;
    std::uint64_t typeDropped = 0;  // dropped for their frame type (dropTypes)
};

class FaultTransport final : public Transport {
public:
    FaultTransport(std::unique_ptr<Transport> inner, const FaultConfig& cfg);

    std::size_t recvBurst(std::span<RxSlot> out) noexcept override;
    std::size_t sendBurst(std::span<const TxItem> items) noexcept override;
    int waitFd() const noexcept override { return inner_->waitFd(); }
    Endpoint local() const noexcept override { return inner_->local(); }
    const TransportStats& stats() const noexcept override { return inner_->stats(); }
    const char* kind() const noexcept override { return inner_->kind(); }
    const FaultStats& faults() const noexcept { return faults_; }
    Transport& inner() noexcept { return *inner_; }

private:
    struct Copy {
        std::vector<std::byte> bytes;
        Endpoint peer;
    };
    enum class Fate : std::uint8_t { Pass, Drop, Duplicate, Corrupt, Hold };
    Fate roll(const std::byte* data, std::uint32_t len) noexcept;
    void corruptBytes(std::vector<std::byte>& b) noexcept;

    std::unique_ptr<Transport> inner_;
    FaultConfig cfg_;
    Rng rng_;
    unsigned burstLeft_ = 0;
    FaultStats faults_;
    std::vector<RxSlot> rxTmp_;
    std::deque<Copy> rxHeld_;       // reordered datagrams waiting to be delivered
    std::deque<Copy> rxSpill_;      // copies that overflowed the caller's last burst
    std::vector<Copy> rxOwned_;     // copies handed out by the last recvBurst
    std::deque<Copy> txHeld_;
    std::vector<Copy> txOwned_;
    std::vector<TxItem> txOut_;
};

}  // namespace seqcast::transport
