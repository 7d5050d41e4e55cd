#include <arpa/inet.h>
#include <netdb.h>

#include <charconv>
#include <cstring>

#include "transport/transport.h"

namespace seqcast::transport {

std::string Endpoint::str() const {
    char buf[INET_ADDRSTRLEN] = {};
    in_addr a{};
    a.s_addr = htonl(addr);
    inet_ntop(AF_INET, &a, buf, sizeof buf);
    return std::string(buf) + ":" + std::to_string(port);
}

Result<std::uint32_t> parseIpv4(const std::string& host) {
    in_addr a{};
    if (inet_pton(AF_INET, host.c_str(), &a) == 1) return ntohl(a.s_addr);
    if (host == "localhost") return 0x7F000001u;
    if (host == "*" || host.empty()) return 0u;
    addrinfo hints{};
    hints.ai_family = AF_INET;
    addrinfo* res = nullptr;
    if (getaddrinfo(host.c_str(), nullptr, &hints, &res) != 0 || res == nullptr)
        return failInvalid("'" + host + "' is not an IPv4 address or resolvable host name");
    const auto* sin = reinterpret_cast<const sockaddr_in*>(res->ai_addr);
    const std::uint32_t v = ntohl(sin->sin_addr.s_addr);
    freeaddrinfo(res);
    return v;
}

Result<Endpoint> parseEndpoint(const std::string& text, bool allowZeroPort) {
    const auto colon = text.rfind(':');
    if (colon == std::string::npos) return failInvalid("'" + text + "': expected HOST:PORT");
    const std::string portText = text.substr(colon + 1);
    unsigned port = 0;
    auto [p, ec] = std::from_chars(portText.data(), portText.data() + portText.size(), port);
    if (ec != std::errc{} || p != portText.data() + portText.size() || port > 65535 || (port == 0 && !allowZeroPort))
        return failInvalid("'" + text + "': port must be 1..65535");
    auto addr = parseIpv4(text.substr(0, colon));
    if (!addr) return fail(addr.error().wrap("'" + text + "'"));
    return Endpoint{*addr, static_cast<std::uint16_t>(port)};
}

}  // namespace seqcast::transport
