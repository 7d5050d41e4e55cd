// Kernel UDP sockets, unicast and multicast, moved in bursts with recvmmsg/sendmmsg.
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>

#include <array>
#include <memory>
#include <string>
#include <vector>

#include "fabric/counters.h"
#include "transport/transport.h"

namespace seqcast::transport {

// How a socket transport talks to the kernel: recvmmsg/sendmmsg system calls, or io_uring
// (multishot receive into a provided-buffer ring, batched sends, a registered socket), or no kernel
// at all: DPDK (transport/dpdk_transport.h; same bytes on the wire).
enum class SocketApi { Syscalls, Uring, Dpdk };

struct UdpConfig {
    Endpoint bind;                       // local address; a multicast receiver binds its group:port
    std::vector<std::uint32_t> groups;   // multicast groups to join
    std::uint32_t interface = 0x7F000001u;  // interface address for IP_MULTICAST_IF and joins
    int ttl = 1;
    bool loop = true;                    // IP_MULTICAST_LOOP: deliver to receivers on this host
    int rcvBuf = 8 << 20;
    int sndBuf = 4 << 20;
    std::size_t maxDatagram = 2048;      // receive buffer per datagram; longer ones are counted and dropped
    std::size_t burst = 64;
    bool gso = false;  // UDP_SEGMENT: consecutive equal-size datagrams to one destination leave in one send
    bool gro = false;  // UDP_GRO: the kernel may coalesce arriving datagrams; they are split here
    SocketApi api = SocketApi::Syscalls;
    // Dpdk only: EAL arguments (what follows `--` on the command line) and our subnet's prefix length.
    std::vector<std::string> ealArgs;
    unsigned prefixLen = 24;
    std::vector<Cidr> allow;             // non-empty: only datagrams from these networks are received
    Counters* counters = nullptr;        // where the drops above and below are counted (the role's counters)
    std::string authKeyFile;             // non-empty: authenticated frames with the keys in this file
    std::uint32_t authKeyId = 0;         // the key id this process signs with (0: the highest in the file)
};

// A configured non-blocking UDP socket: options set, bound, groups joined.
struct UdpSocket {
    int fd = -1;
    Endpoint local;
    bool gro = false;  // UDP_GRO is on
};
// Checks cfg's burst and datagram size, then opens a socket as cfg says; set-up warnings (clamped buffers, no GRO) are appended to warnings.
Result<UdpSocket> openUdpSocket(const UdpConfig& cfg, std::vector<std::string>& warnings);
sockaddr_in toSockaddr(Endpoint e);

// Packs a burst of TxItems into sendmsg headers. With GSO, a run of equal-size datagrams to one
// destination (the last may be shorter) shares one header with a UDP_SEGMENT control message.
class TxBatch {
public:
    void reserve(std::size_t burst);
    // Packs from the start of items, at most `burst` headers and datagrams; returns the headers used.
    std::size_t pack(std::span<const TxItem> items, bool gso);
    std::vector<mmsghdr> msgs;
    std::vector<std::size_t> groupItems;  // datagrams in each header

private:
    std::size_t burst_ = 0;
    std::vector<iovec> iov_;
    std::vector<sockaddr_in> addr_;
    std::vector<std::array<char, 64>> ctl_;
};

class UdpTransport final : public Transport {
public:
    static Result<std::unique_ptr<UdpTransport>> open(const UdpConfig& cfg);
    ~UdpTransport() override;
    UdpTransport(const UdpTransport&) = delete;
    UdpTransport& operator=(const UdpTransport&) = delete;

    std::size_t recvBurst(std::span<RxSlot> out) noexcept override;
    std::size_t sendBurst(std::span<const TxItem> items) noexcept override;
    int waitFd() const noexcept override { return fd_; }
    Endpoint local() const noexcept override { return local_; }
    const TransportStats& stats() const noexcept override { return stats_; }
    const char* kind() const noexcept override { return "udp"; }
    // Set-up warnings (e.g. a socket buffer clamped by a sysctl), for the caller to print.
    const std::vector<std::string>& warnings() const noexcept { return warnings_; }

private:
    UdpTransport() = default;
    Status setup(const UdpConfig& cfg);

    int fd_ = -1;
    Endpoint local_;
    std::size_t maxDatagram_ = 0;
    std::size_t burst_ = 0;
    std::vector<std::byte> rxArena_;
    std::vector<mmsghdr> rxMsgs_;
    std::vector<iovec> rxIov_;
    std::vector<sockaddr_in> rxAddr_;
    TxBatch tx_;
    std::vector<std::array<char, 64>> rxCtl_;     // per receive: UDP_GRO segment size
    struct Segment {
        std::byte* data;
        std::uint32_t len;
        Endpoint from;
    };
    std::vector<Segment> leftover_;  // GRO segments that did not fit the caller's burst
    std::size_t leftoverPos_ = 0;
    bool gso_ = false;
    bool gro_ = false;
    TransportStats stats_;
    std::vector<std::string> warnings_;
};

}  // namespace seqcast::transport
