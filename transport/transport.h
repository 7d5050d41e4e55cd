// Burst-level datagram transport: one call moves up to a burst of datagrams, so the hot path pays
// one (virtual) call per burst, never per datagram.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

#include "fabric/result.h"

namespace seqcast::transport {

// IPv4 endpoint. addr in host byte order.
struct Endpoint {
    std::uint32_t addr = 0;
    std::uint16_t port = 0;

    bool multicast() const noexcept { return (addr >> 28) == 0xE; }
    bool valid() const noexcept { return port != 0; }
    friend bool operator==(const Endpoint&, const Endpoint&) = default;
    std::string str() const;
};

// An IPv4 network: addr/len.
struct Cidr {
    std::uint32_t addr = 0;  // host byte order, masked
    std::uint32_t mask = 0;
    bool contains(std::uint32_t a) const noexcept { return (a & mask) == addr; }
};

// "239.1.1.1:40001", "127.0.0.1:0", "localhost:5000". Port 0 only when allowZeroPort.
Result<Endpoint> parseEndpoint(const std::string& text, bool allowZeroPort = false);
Result<std::uint32_t> parseIpv4(const std::string& text);

struct RxSlot {
    std::byte* data = nullptr;  // owned by the transport; valid until the next recvBurst on it
    std::uint32_t len = 0;
    Endpoint from;
};

struct TxItem {
    const std::byte* data = nullptr;
    std::uint32_t len = 0;
    Endpoint to;
};

struct TransportStats {
    std::uint64_t rxDatagrams = 0;
    std::uint64_t txDatagrams = 0;
    std::uint64_t rxBytes = 0;
    std::uint64_t txBytes = 0;
    std::uint64_t rxTruncated = 0;  // larger than the receive buffer: dropped
    std::uint64_t txErrors = 0;     // datagrams the kernel refused (not EAGAIN)
    std::uint64_t txWouldBlock = 0; // send bursts cut short by a full socket buffer
    std::uint64_t rxNotAllowed = 0; // from a source outside the allowlist: dropped
    std::uint64_t rxNoBuffers = 0;  // io_uring: the provided-buffer ring ran dry (datagrams wait in the socket)
};

class Transport {
public:
    virtual ~Transport() = default;
    // Receives up to out.size() datagrams without blocking; returns how many.
    virtual std::size_t recvBurst(std::span<RxSlot> out) noexcept = 0;
    // Sends without blocking; returns how many of items (a prefix) were taken. Items that the
    // network refused outright are counted in txErrors and reported as taken.
    virtual std::size_t sendBurst(std::span<const TxItem> items) noexcept = 0;
    // File descriptor to wait on for readability, or -1 if the transport cannot be waited on.
    virtual int waitFd() const noexcept { return -1; }
    virtual Endpoint local() const noexcept = 0;
    virtual const TransportStats& stats() const noexcept = 0;
    // "udp", "uring", "memory", ...: what actually moves the datagrams.
    virtual const char* kind() const noexcept = 0;
};

}  // namespace seqcast::transport
