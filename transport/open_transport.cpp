#include "transport/open_transport.h"

#include <algorithm>

#include "transport/allowlist_transport.h"
#include "transport/auth_transport.h"
#include "transport/dpdk_transport.h"
#include "transport/uring_transport.h"

namespace seqcast::transport {

Result<std::unique_ptr<Transport>> openTransport(const UdpConfig& cfg, std::vector<std::string>& warnings,
                                                 const FaultConfig& faults) {
    // The keys first: a bad key file is refused before any socket or DPDK port is opened. The
    // backend's buffers must have room for the trailer authentication adds to every datagram.
    AuthKeys keys;
    UdpConfig backendCfg = cfg;
    if (!cfg.authKeyFile.empty()) {
        auto k = loadAuthKeys(AuthConfig{cfg.authKeyFile, cfg.authKeyId});
        if (!k) return fail(std::move(k.error().about("authKeyFile")));
        keys = std::move(*k);
        backendCfg.maxDatagram = std::min<std::size_t>(cfg.maxDatagram + kAuthTrailer, 65536);
    }
    auto t = cfg.api == SocketApi::Dpdk ? openDpdkTransport(backendCfg, warnings) : openSocketBackend(backendCfg, warnings);
    if (!t) return t;
    std::unique_ptr<Transport> out = std::move(*t);
    if (!cfg.allow.empty()) out.reset(new AllowlistTransport(std::move(out), cfg.allow, cfg.counters));
    if (!cfg.authKeyFile.empty())
        out.reset(new AuthTransport(std::move(out), AuthConfig{cfg.authKeyFile, cfg.authKeyId}, std::move(keys), cfg.counters));
    if (faults.any()) out.reset(new FaultTransport(std::move(out), faults));
    return out;
}

}  // namespace seqcast::transport
