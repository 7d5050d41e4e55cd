// Source allowlist: datagrams from addresses outside the configured IPv4 networks are dropped
// before anything parses them, and counted (TransportStats::rxNotAllowed, and the role's
// drop_not_allowed counter when one is given).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "fabric/counters.h"
#include "transport/transport.h"

namespace seqcast::transport {

// "10.1.0.0/16,127.0.0.1" (a bare address is /32). Empty text: an empty list.
Result<std::vector<Cidr>> parseAllowlist(const std::string& text);

class AllowlistTransport final : public Transport {
public:
    AllowlistTransport(std::unique_ptr<Transport> inner, std::vector<Cidr> allow, Counters* counters = nullptr);
    std::size_t recvBurst(std::span<RxSlot> out) noexcept override;
    std::size_t sendBurst(std::span<const TxItem> items) noexcept override { return inner_->sendBurst(items); }
    int waitFd() const noexcept override { return inner_->waitFd(); }
    Endpoint local() const noexcept override { return inner_->local(); }
    const TransportStats& stats() const noexcept override;
    const char* kind() const noexcept override { return inner_->kind(); }

private:
    bool allowed(std::uint32_t a) const noexcept;
    std::unique_ptr<Transport> inner_;
    std::vector<Cidr> allow_;
    Counters* counters_;
    std::uint64_t notAllowed_ = 0;
    mutable TransportStats merged_;
};

}  // namespace seqcast::transport
