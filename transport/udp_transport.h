// Kernel UDP sockets, unicast and multicast, moved in bursts with recvmmsg/sendmmsg.
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>

#include <array>
#include <memory>
#include <string>
#include <vector>

#include "transport/transport.h"

namespace seqcast::transport {

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
    std::vector<mmsghdr> txMsgs_;
    std::vector<iovec> txIov_;
    std::vector<sockaddr_in> txAddr_;
    std::vector<std::size_t> txGroupItems_;       // items in each send (GSO groups)
    std::vector<std::array<char, 64>> txCtl_;     // per send: UDP_SEGMENT control message
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
