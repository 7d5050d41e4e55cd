#include "client/api/api_support.h"

#include <pthread.h>
#include <sched.h>

#include <cstring>
#include <span>

#include "fabric/clock.h"
#include "transport/allowlist_transport.h"
#include "transport/auth_transport.h"
#include "transport/dpdk_transport.h"
#include "transport/open_transport.h"

namespace seqcast::api_support {

transport::Endpoint endpointOf(const std::string& field, const std::string& text, bool allowZeroPort) {
    auto e = transport::parseEndpoint(text, allowZeroPort);
    if (!e) throw SetupError(field, e.error().message(), e.error().code);
    return *e;
}

// The socket settings every client shares, from NetworkOptions (the CLI's --interface, --ttl, ...).
transport::UdpConfig socketsFrom(const NetworkOptions& n) {
    transport::UdpConfig c;
    std::string ifaceText = n.interface;
    if (const auto slash = ifaceText.find('/'); slash != std::string::npos) {
        const std::string len = ifaceText.substr(slash + 1);
        ifaceText.resize(slash);
        if (len.empty() || len.size() > 2 || len.find_first_not_of("0123456789") != std::string::npos || std::stoul(len) < 1 ||
            std::stoul(len) > 32)
            throw SetupError("network.interface", "'" + len + "' is not a prefix length (1..32)");
        c.prefixLen = static_cast<unsigned>(std::stoul(len));
    }
    auto iface = transport::parseIpv4(ifaceText);
    if (!iface) throw SetupError("network.interface", iface.error().message(), iface.error().code);
    c.interface = *iface;
    if (n.ttl < 0 || n.ttl > 255) throw SetupError("network.ttl", "must be 0..255");
    c.ttl = n.ttl;
    c.loop = n.loopback;
    if (n.rcvbuf > (1u << 30)) throw SetupError("network.rcvbuf", "must be at most 1 GiB");
    if (n.sndbuf > (1u << 30)) throw SetupError("network.sndbuf", "must be at most 1 GiB");
    c.rcvBuf = static_cast<int>(n.rcvbuf);
    c.sndBuf = static_cast<int>(n.sndbuf);
    c.gso = n.gso;
    c.gro = n.gro;
    switch (n.api) {
        case SocketApi::Syscalls: c.api = transport::SocketApi::Syscalls; break;
        case SocketApi::Uring: c.api = transport::SocketApi::Uring; break;
        case SocketApi::Dpdk:
            if (!transport::dpdkAvailable()) throw SetupError("network.api", "this libseqcast was built without DPDK");
            c.api = transport::SocketApi::Dpdk;
            c.ealArgs = n.dpdkArgs;
            break;
        default: throw SetupError("network.api", "not a SocketApi");
    }
    if (n.api != SocketApi::Dpdk && !n.dpdkArgs.empty()) throw SetupError("network.dpdkArgs", "are for SocketApi::Dpdk");
    if (!n.allow.empty()) {
        auto allow = transport::parseAllowlist(n.allow);
        if (!allow) throw SetupError("network.allow", allow.error().message(), allow.error().code);
        if (allow->empty()) throw SetupError("network.allow", "no network given");
        c.allow = std::move(*allow);
    }
    c.authKeyFile = n.authKeyFile;
    c.authKeyId = n.authKeyId;
    if (!c.authKeyFile.empty()) {
        // Checked here, so a bad file or id is blamed on its own field, not on the socket it is for.
        auto k = transport::loadAuthKeys(transport::AuthConfig{c.authKeyFile, 0});
        if (!k) throw SetupError("network.authKeyFile", k.error().message(), k.error().code);
        if (c.authKeyId != 0 && k->keys.count(c.authKeyId) == 0)
            throw SetupError("network.authKeyId", "no key with id " + std::to_string(c.authKeyId) + " in " + c.authKeyFile);
    } else if (n.authKeyId != 0) {
        throw SetupError("network.authKeyId", "needs network.authKeyFile");
    }
    return c;
}

transport::UdpConfig groupSocket(const NetworkOptions& n, transport::Endpoint group) {
    auto c = socketsFrom(n);
    c.bind = group;
    c.groups = {group.addr};
    c.maxDatagram = 65536;
    return c;
}

transport::FaultConfig faultsFrom(const FaultOptions& f) {
    transport::FaultConfig c;
    auto prob = [](double p, const char* field) {
        if (!(p >= 0 && p <= 1)) throw SetupError(std::string("network.faults.") + field, "must be 0..1");
        return p;
    };
    c.loss = prob(f.loss, "loss");
    c.burstStart = prob(f.burstLoss, "burstLoss");
    if (f.burstLength == 0 || f.burstLength > 1'000'000) throw SetupError("network.faults.burstLength", "must be 1..1000000");
    c.burstLength = f.burstLength;
    c.reorder = prob(f.reorder, "reorder");
    c.duplicate = prob(f.duplicate, "duplicate");
    c.corrupt = prob(f.corrupt, "corrupt");
    c.dropTypes = f.dropTypes;
    c.seed = f.seed;
    c.onReceive = f.onReceive;
    c.onSend = f.onSend;
    if (auto st = c.validate(); !st) throw SetupError("network.faults", st.error().message(), st.error().code);
    return c;
}

CounterValues valuesOf(const Counters& c) {
    CounterValues v;
    for (std::size_t i = 0; i < kCounterCount; ++i) v.emplace(std::string(kCounterNames[i]), c.get(static_cast<Counter>(i)));
    return v;
}

std::unique_ptr<transport::Transport> open(const transport::UdpConfig& cfg, const std::string& field,
                                           const transport::FaultConfig& faults) {
    std::vector<std::string> warnings;  // clamped buffers, an io_uring fallback: not errors
    auto t = transport::openTransport(cfg, warnings, faults);
    if (!t) {
        // The error names the setting it is about where it knows (its UdpConfig field); else `field`.
        static const std::pair<const char*, const char*> kFields[] = {
            {"interface", "network.interface"}, {"ttl", "network.ttl"}, {"ealArgs", "network.dpdkArgs"},
            {"authKeyFile", "network.authKeyFile"}};
        std::string blame = field;
        for (const auto& [from, to] : kFields)
            if (t.error().field == from) blame = to;
        throw SetupError(blame, t.error().message(), t.error().code);
    }
    return std::move(*t);
}

// Sleeps until one of `fds` is readable or `untilNs` (monotonic) has come.
void waitOn(std::initializer_list<int> fds, std::uint64_t untilNs) { waitReadable(std::span<const int>(fds.begin(), fds.size()), untilNs); }

IdleMode idleMode(IdleStrategy s) noexcept {
    switch (s) {
        case IdleStrategy::BusySpin: return IdleMode::BusySpin;
        case IdleStrategy::Yield: return IdleMode::Yield;
        case IdleStrategy::Block: return IdleMode::Block;
        case IdleStrategy::Backoff: break;
    }
    return IdleMode::Backoff;
}

}  // namespace seqcast::api_support
