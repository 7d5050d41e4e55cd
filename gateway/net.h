// Small socket helpers the gateways share (set-up path only).
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>

#include <cerrno>
#include <cstring>
#include <string>

#include <seqcast/seqcast.hpp>

#include "transport/transport.h"

namespace seqcast::gateway {

// "what: reason (errno text)" for a failed call.
inline std::string sysError(const std::string& what) { return what + ": " + std::strerror(errno); }

inline sockaddr_in toSockaddr(const transport::Endpoint& e) {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(e.addr);
    a.sin_port = htons(e.port);
    return a;
}

// HOST:PORT of option `field`, or SetupError naming it.
inline transport::Endpoint endpointOf(const std::string& field, const std::string& text, bool allowZeroPort) {
    auto e = transport::parseEndpoint(text, allowZeroPort);
    if (!e) throw SetupError(field, e.error().message());
    return *e;
}

inline std::uint32_t ipv4Of(const std::string& field, const std::string& text) {
    auto a = transport::parseIpv4(text);
    if (!a) throw SetupError(field, a.error().message());
    return *a;
}

}  // namespace seqcast::gateway
