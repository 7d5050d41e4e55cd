#include "transport/allowlist_transport.h"

#include <arpa/inet.h>

#include <sstream>

namespace seqcast::transport {

Result<std::vector<Cidr>> parseAllowlist(const std::string& text) {
    std::vector<Cidr> out;
    std::stringstream ss(text);
    std::string item;
    while (std::getline(ss, item, ',')) {
        while (!item.empty() && item.front() == ' ') item.erase(item.begin());
        while (!item.empty() && item.back() == ' ') item.pop_back();
        if (item.empty()) continue;
        unsigned bits = 32;
        std::string host = item;
        if (const auto slash = item.find('/'); slash != std::string::npos) {
            host = item.substr(0, slash);
            const std::string b = item.substr(slash + 1);
            if (b.empty() || b.size() > 2 || b.find_first_not_of("0123456789") != std::string::npos || std::stoul(b) > 32)
                return failInvalid("'" + item + "': the prefix length must be 0..32");
            bits = static_cast<unsigned>(std::stoul(b));
        }
        in_addr a{};  // dotted quad only: no names, no short forms
        if (inet_pton(AF_INET, host.c_str(), &a) != 1) return failInvalid("'" + item + "': not an IPv4 address (a.b.c.d[/len])");
        const std::uint32_t mask = bits == 0 ? 0 : ~std::uint32_t{0} << (32 - bits);
        out.push_back(Cidr{ntohl(a.s_addr) & mask, mask});
    }
    return out;
}

AllowlistTransport::AllowlistTransport(std::unique_ptr<Transport> inner, std::vector<Cidr> allow, Counters* counters)
    : inner_(std::move(inner)), allow_(std::move(allow)), counters_(counters) {}

bool AllowlistTransport::allowed(std::uint32_t a) const noexcept {
    for (const Cidr& c : allow_)
        if (c.contains(a)) return true;
    return false;
}

std::size_t AllowlistTransport::recvBurst(std::span<RxSlot> out) noexcept {
    // A burst all from strangers says nothing about what waits behind it: look again, a few times.
    std::size_t k = 0;
    for (int round = 0; round < 4 && k == 0; ++round) {
        const std::size_t n = inner_->recvBurst(out);
        if (n == 0) break;
        for (std::size_t i = 0; i < n; ++i) {
            if (allowed(out[i].from.addr)) out[k++] = out[i];
            else ++notAllowed_;
        }
        if (k < n && counters_ != nullptr) counters_->add(Counter::DropNotAllowed, n - k);
    }
    return k;
}

const TransportStats& AllowlistTransport::stats() const noexcept {
    merged_ = inner_->stats();
    merged_.rxNotAllowed = notAllowed_;
    return merged_;
}

}  // namespace seqcast::transport
