// A build without DPDK: --transport dpdk says so, and how to get it.
#include "transport/dpdk_transport.h"

namespace seqcast::transport {

bool dpdkAvailable() noexcept { return false; }

Result<std::unique_ptr<Transport>> openDpdkTransport(const UdpConfig&, std::vector<std::string>&) {
    return failInvalid("this seqcast was built without DPDK (apt-get install libdpdk-dev, then rebuild)");
}

DpdkPortStats dpdkPortStats() noexcept { return {}; }

}  // namespace seqcast::transport
