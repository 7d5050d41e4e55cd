#include "transport/udp_transport.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace seqcast::transport {

namespace {
sockaddr_in toSockaddr(Endpoint e) {
    sockaddr_in s{};
    s.sin_family = AF_INET;
    s.sin_port = htons(e.port);
    s.sin_addr.s_addr = htonl(e.addr);
    return s;
}

std::string ipStr(std::uint32_t a) { return Endpoint{a, 0}.str().substr(0, Endpoint{a, 0}.str().rfind(':')); }

// Sets a socket buffer; root may exceed the sysctl limit with the FORCE variant.
void setBuffer(int fd, int opt, int forceOpt, int want, const char* what, const char* sysctl,
               std::vector<std::string>& warnings) {
    if (want <= 0) return;
    if (setsockopt(fd, SOL_SOCKET, forceOpt, &want, sizeof want) != 0) setsockopt(fd, SOL_SOCKET, opt, &want, sizeof want);
    int got = 0;
    socklen_t len = sizeof got;
    getsockopt(fd, SOL_SOCKET, opt, &got, &len);
    // The kernel reports twice the usable size it granted.
    if (got / 2 < want)
        warnings.push_back(std::string(what) + " clamped to " + std::to_string(got / 2) + " bytes (asked " +
                           std::to_string(want) + "); raise sysctl " + sysctl);
}
}  // namespace

Result<std::unique_ptr<UdpTransport>> UdpTransport::open(const UdpConfig& cfg) {
    std::unique_ptr<UdpTransport> t(new UdpTransport());
    if (auto st = t->setup(cfg); !st) return fail(st.error());
    return t;
}

Status UdpTransport::setup(const UdpConfig& cfg) {
    if (cfg.burst == 0 || cfg.burst > 1024) return failInvalid("udp burst must be 1..1024");
    if (cfg.maxDatagram < 64 || cfg.maxDatagram > 65536) return failInvalid("udp max datagram must be 64..65536");
    fd_ = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd_ < 0) return failErrno("socket");
    const int one = 1;
    const int zero = 0;
    if (setsockopt(fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0) return failErrno("SO_REUSEADDR");
    setBuffer(fd_, SO_RCVBUF, SO_RCVBUFFORCE, cfg.rcvBuf, "receive buffer", "net.core.rmem_max", warnings_);
    setBuffer(fd_, SO_SNDBUF, SO_SNDBUFFORCE, cfg.sndBuf, "send buffer", "net.core.wmem_max", warnings_);

    // Outgoing multicast: interface, TTL, loopback.
    in_addr ifAddr{};
    ifAddr.s_addr = htonl(cfg.interface);
    if (cfg.interface != 0 && setsockopt(fd_, IPPROTO_IP, IP_MULTICAST_IF, &ifAddr, sizeof ifAddr) != 0)
        return failErrno("IP_MULTICAST_IF " + ipStr(cfg.interface));
    const int ttl = cfg.ttl;
    if (ttl < 0 || ttl > 255) return failInvalid("multicast ttl must be 0..255");
    if (setsockopt(fd_, IPPROTO_IP, IP_MULTICAST_TTL, &ttl, sizeof ttl) != 0) return failErrno("IP_MULTICAST_TTL");
    const int loop = cfg.loop ? 1 : 0;
    if (setsockopt(fd_, IPPROTO_IP, IP_MULTICAST_LOOP, &loop, sizeof loop) != 0) return failErrno("IP_MULTICAST_LOOP");
    // Only the groups this socket joined, never every group the host joined.
    if (setsockopt(fd_, IPPROTO_IP, IP_MULTICAST_ALL, &zero, sizeof zero) != 0) return failErrno("IP_MULTICAST_ALL");

    const sockaddr_in b = toSockaddr(cfg.bind);
    if (::bind(fd_, reinterpret_cast<const sockaddr*>(&b), sizeof b) != 0) return failErrno("bind " + cfg.bind.str());
    for (std::uint32_t g : cfg.groups) {
        ip_mreq m{};
        m.imr_multiaddr.s_addr = htonl(g);
        m.imr_interface.s_addr = htonl(cfg.interface);
        if (setsockopt(fd_, IPPROTO_IP, IP_ADD_MEMBERSHIP, &m, sizeof m) != 0)
            return failErrno("join " + ipStr(g) + " on " + ipStr(cfg.interface));
    }
    sockaddr_in l{};
    socklen_t ll = sizeof l;
    getsockname(fd_, reinterpret_cast<sockaddr*>(&l), &ll);
    local_ = Endpoint{ntohl(l.sin_addr.s_addr), ntohs(l.sin_port)};

    maxDatagram_ = cfg.maxDatagram;
    burst_ = cfg.burst;
    rxArena_.resize(burst_ * maxDatagram_);
    rxMsgs_.resize(burst_);
    rxIov_.resize(burst_);
    rxAddr_.resize(burst_);
    txMsgs_.resize(burst_);
    txIov_.resize(burst_);
    txAddr_.resize(burst_);
    for (std::size_t i = 0; i < burst_; ++i) {
        rxIov_[i] = iovec{rxArena_.data() + i * maxDatagram_, maxDatagram_};
        rxMsgs_[i].msg_hdr = msghdr{};
        rxMsgs_[i].msg_hdr.msg_iov = &rxIov_[i];
        rxMsgs_[i].msg_hdr.msg_iovlen = 1;
        rxMsgs_[i].msg_hdr.msg_name = &rxAddr_[i];
        rxMsgs_[i].msg_hdr.msg_namelen = sizeof(sockaddr_in);
    }
    return {};
}

UdpTransport::~UdpTransport() {
    if (fd_ >= 0) ::close(fd_);
}

std::size_t UdpTransport::recvBurst(std::span<RxSlot> out) noexcept {
    const unsigned want = static_cast<unsigned>(out.size() < burst_ ? out.size() : burst_);
    if (want == 0) return 0;
    for (unsigned i = 0; i < want; ++i) {
        rxMsgs_[i].msg_hdr.msg_namelen = sizeof(sockaddr_in);
        rxMsgs_[i].msg_hdr.msg_flags = 0;
    }
    const int n = ::recvmmsg(fd_, rxMsgs_.data(), want, MSG_DONTWAIT, nullptr);
    if (n <= 0) return 0;
    std::size_t k = 0;
    for (int i = 0; i < n; ++i) {
        const auto& m = rxMsgs_[static_cast<std::size_t>(i)];
        if ((m.msg_hdr.msg_flags & MSG_TRUNC) != 0) {
            ++stats_.rxTruncated;
            continue;
        }
        const auto& a = rxAddr_[static_cast<std::size_t>(i)];
        out[k].data = static_cast<std::byte*>(rxIov_[static_cast<std::size_t>(i)].iov_base);
        out[k].len = m.msg_len;
        out[k].from = Endpoint{ntohl(a.sin_addr.s_addr), ntohs(a.sin_port)};
        stats_.rxBytes += m.msg_len;
        ++k;
    }
    stats_.rxDatagrams += k;
    return k;
}

std::size_t UdpTransport::sendBurst(std::span<const TxItem> items) noexcept {
    std::size_t done = 0;
    while (done < items.size()) {
        const std::size_t n = std::min(items.size() - done, burst_);
        for (std::size_t i = 0; i < n; ++i) {
            const auto& it = items[done + i];
            txAddr_[i] = toSockaddr(it.to);
            txIov_[i] = iovec{const_cast<std::byte*>(it.data), it.len};
            txMsgs_[i].msg_hdr = msghdr{};
            txMsgs_[i].msg_hdr.msg_name = &txAddr_[i];
            txMsgs_[i].msg_hdr.msg_namelen = sizeof(sockaddr_in);
            txMsgs_[i].msg_hdr.msg_iov = &txIov_[i];
            txMsgs_[i].msg_hdr.msg_iovlen = 1;
        }
        const int r = ::sendmmsg(fd_, txMsgs_.data(), static_cast<unsigned>(n), MSG_DONTWAIT);
        if (r < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOBUFS) {
                ++stats_.txWouldBlock;
                return done;
            }
            // The first datagram was refused (e.g. no route, EMSGSIZE): count it and go on.
            ++stats_.txErrors;
            ++done;
            continue;
        }
        for (int i = 0; i < r; ++i) stats_.txBytes += items[done + static_cast<std::size_t>(i)].len;
        stats_.txDatagrams += static_cast<std::uint64_t>(r);
        done += static_cast<std::size_t>(r);
        if (static_cast<std::size_t>(r) < n) {
            // Kernel stopped early; the next call reports why (or succeeds).
            continue;
        }
    }
    return done;
}

}  // namespace seqcast::transport
