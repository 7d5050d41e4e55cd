// The one transport factory. Every role opens its sockets here, whatever the backend, and gets
// the same layers stacked over it, innermost first:
//   backend (kernel sockets: recvmmsg/sendmmsg or io_uring; DPDK)
//   -> allowlist (cfg.allow: drops strangers before any MAC is computed)
//   -> authentication (cfg.authKeyFile: signs what is sent, verifies what is received)
//   -> fault injection (faults.any(): tests and demos)
// A backend opened any other way has none of these layers: a role that believes it is protected
// by --allow or --auth-key would accept foreign and forged frames. So nothing outside this file
// and the tests of the backends themselves opens a backend directly.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "transport/fault_transport.h"
#include "transport/udp_transport.h"

namespace seqcast::transport {

// Opens the backend cfg.api names and stacks the layers above. Set-up warnings (a clamped socket
// buffer, an io_uring fallback) are appended to `warnings`.
Result<std::unique_ptr<Transport>> openTransport(const UdpConfig& cfg, std::vector<std::string>& warnings,
                                                 const FaultConfig& faults = {});

}  // namespace seqcast::transport
