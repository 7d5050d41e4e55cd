// Kernel UDP sockets driven through io_uring: one multishot recvmsg fills a provided-buffer ring
// (no system call per receive while datagrams keep arriving), bursts of sends go in one
// submission, the socket is a registered file. Same socket options, GSO and GRO as UdpTransport,
// and the same bytes on the wire.
//
// openSocketBackend() picks the API a UdpConfig asks for; when io_uring or one of the features
// used here is missing (old kernel, seccomp, a build without liburing) it falls back to
// recvmmsg/sendmmsg and says so in the warnings. It opens the bare backend: roles open
// transports through openTransport() (transport/open_transport.h), which stacks the allowlist,
// authentication and fault layers over it.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "transport/udp_transport.h"

namespace seqcast::transport {

// Opens the socket backend cfg.api asks for (with the fallback above), without the layers
// cfg.allow and cfg.authKeyFile ask for. Set-up warnings are appended.
Result<std::unique_ptr<Transport>> openSocketBackend(const UdpConfig& cfg, std::vector<std::string>& warnings);

// Whether this process can use the io_uring socket transport; when not, why.
Status uringSocketsAvailable();

}  // namespace seqcast::transport
