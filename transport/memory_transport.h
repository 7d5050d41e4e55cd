// In-memory datagram network for deterministic tests: endpoints, multicast groups, bounded queues.
// Thread-safe (a mutex per network: fine for tests, not a production path).
#pragma once

#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <vector>

#include "transport/transport.h"

namespace seqcast::transport {

class MemoryNetwork {
public:
    explicit MemoryNetwork(std::size_t queueCapacity = 65536) : capacity_(queueCapacity) {}
    struct Packet {
        std::vector<std::byte> bytes;
        Endpoint from;
    };
    std::uint64_t dropped() const;

private:
    friend class MemoryTransport;
    void attach(Endpoint e);
    void detach(Endpoint e);
    void join(Endpoint group, Endpoint member);
    void deliver(Endpoint to, Endpoint from, const std::byte* data, std::size_t len);
    std::size_t take(Endpoint at, std::size_t max, std::vector<Packet>& out);
    Endpoint ephemeral(std::uint32_t addr);

    mutable std::mutex mu_;
    std::size_t capacity_;
    std::map<std::pair<std::uint32_t, std::uint16_t>, std::deque<Packet>> queues_;
    std::map<std::pair<std::uint32_t, std::uint16_t>, std::set<std::pair<std::uint32_t, std::uint16_t>>> groups_;
    std::uint16_t nextPort_ = 50000;
    std::uint64_t dropped_ = 0;
};

class MemoryTransport final : public Transport {
public:
    // bind.port == 0 picks a free port. Joins `groups` (multicast endpoints: group address + port).
    MemoryTransport(MemoryNetwork& net, Endpoint bind, std::vector<Endpoint> groups = {});
    ~MemoryTransport() override;

    std::size_t recvBurst(std::span<RxSlot> out) noexcept override;
    std::size_t sendBurst(std::span<const TxItem> items) noexcept override;
    Endpoint local() const noexcept override { return local_; }
    const TransportStats& stats() const noexcept override { return stats_; }
    const char* kind() const noexcept override { return "memory"; }

private:
    MemoryNetwork& net_;
    Endpoint local_;
    std::vector<Endpoint> groups_;
    std::vector<MemoryNetwork::Packet> held_;
    TransportStats stats_;
};

}  // namespace seqcast::transport
