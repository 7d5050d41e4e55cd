#include "transport/udp_transport.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <netinet/udp.h>

namespace seqcast::transport {

sockaddr_in toSockaddr(Endpoint e) {
    sockaddr_in s{};
    s.sin_family = AF_INET;
    s.sin_port = htons(e.port);
    s.sin_addr.s_addr = htonl(e.addr);
    return s;
}

namespace {
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

Result<UdpSocket> openUdpSocket(const UdpConfig& cfg, std::vector<std::string>& warnings) {
    if (cfg.burst == 0 || cfg.burst > 1024) return failInvalid("udp burst must be 1..1024");
    if (cfg.maxDatagram < 64 || cfg.maxDatagram > 65536) return failInvalid("udp max datagram must be 64..65536");
    const int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) return failErrno("socket");
    UdpSocket s;
    s.fd = fd;
    auto bad = [&](Error e) -> Result<UdpSocket> {
        ::close(fd);
        return fail(std::move(e));
    };
    const int one = 1;
    const int zero = 0;
    // Receivers of one multicast group on this host share its port, so a group receiver (bound to
    // its group, or to the wildcard address with groups joined) may share the address with other
    // group receivers. A unicast address is never shared: a second process binding a sequencer's
    // control address, an archiver's or a replay client's is refused (EADDRINUSE), so it cannot
    // take a share of datagrams meant for the owner.
    const bool groupReceiver = cfg.bind.multicast() || !cfg.groups.empty();
    if (groupReceiver && setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0)
        return bad(Error::fromErrno("SO_REUSEADDR"));
    setBuffer(fd, SO_RCVBUF, SO_RCVBUFFORCE, cfg.rcvBuf, "receive buffer", "net.core.rmem_max", warnings);
    setBuffer(fd, SO_SNDBUF, SO_SNDBUFFORCE, cfg.sndBuf, "send buffer", "net.core.wmem_max", warnings);

    // Outgoing multicast: interface, TTL, loopback.
    in_addr ifAddr{};
    ifAddr.s_addr = htonl(cfg.interface);
    if (cfg.interface != 0 && setsockopt(fd, IPPROTO_IP, IP_MULTICAST_IF, &ifAddr, sizeof ifAddr) != 0)
        return bad(Error::fromErrno("IP_MULTICAST_IF " + ipStr(cfg.interface)).about("interface"));
    const int ttl = cfg.ttl;
    if (ttl < 0 || ttl > 255) return bad(Error::invalid("multicast ttl must be 0..255").about("ttl"));
    if (setsockopt(fd, IPPROTO_IP, IP_MULTICAST_TTL, &ttl, sizeof ttl) != 0) return bad(Error::fromErrno("IP_MULTICAST_TTL"));
    const int loop = cfg.loop ? 1 : 0;
    if (setsockopt(fd, IPPROTO_IP, IP_MULTICAST_LOOP, &loop, sizeof loop) != 0) return bad(Error::fromErrno("IP_MULTICAST_LOOP"));
    // Only the groups this socket joined, never every group the host joined.
    if (setsockopt(fd, IPPROTO_IP, IP_MULTICAST_ALL, &zero, sizeof zero) != 0) return bad(Error::fromErrno("IP_MULTICAST_ALL"));

    const sockaddr_in b = toSockaddr(cfg.bind);
    if (::bind(fd, reinterpret_cast<const sockaddr*>(&b), sizeof b) != 0) {
        const int err = errno;
        return bad(Error::fromErrno("bind " + cfg.bind.str() + (err == EADDRINUSE ? " (another process holds it)" : ""), err).about("bind"));
    }
    for (std::uint32_t g : cfg.groups) {
        ip_mreq m{};
        m.imr_multiaddr.s_addr = htonl(g);
        m.imr_interface.s_addr = htonl(cfg.interface);
        if (setsockopt(fd, IPPROTO_IP, IP_ADD_MEMBERSHIP, &m, sizeof m) != 0)
            return bad(Error::fromErrno("join " + ipStr(g) + " on " + ipStr(cfg.interface)).about("interface"));
    }
    sockaddr_in l{};
    socklen_t ll = sizeof l;
    getsockname(fd, reinterpret_cast<sockaddr*>(&l), &ll);
    s.local = Endpoint{ntohl(l.sin_addr.s_addr), ntohs(l.sin_port)};
    if (cfg.gro) {
        if (setsockopt(fd, SOL_UDP, UDP_GRO, &one, sizeof one) == 0) s.gro = true;
        else warnings.push_back("UDP_GRO not supported by this kernel; receiving datagrams one by one");
    }
    return s;
}

Status UdpTransport::setup(const UdpConfig& cfg) {
    auto sock = openUdpSocket(cfg, warnings_);
    if (!sock) return fail(sock.error());
    fd_ = sock->fd;
    local_ = sock->local;
    gro_ = sock->gro;
    gso_ = cfg.gso;
    // A GRO receive can hold up to 64 KiB of coalesced datagrams.
    maxDatagram_ = gro_ ? 65536 : cfg.maxDatagram;
    burst_ = cfg.burst;
    rxArena_.resize(burst_ * maxDatagram_);
    rxMsgs_.resize(burst_);
    rxIov_.resize(burst_);
    rxAddr_.resize(burst_);
    tx_.reserve(burst_);
    rxCtl_.resize(burst_);
    for (std::size_t i = 0; i < burst_; ++i) {
        rxIov_[i] = iovec{rxArena_.data() + i * maxDatagram_, maxDatagram_};
        rxMsgs_[i].msg_hdr = msghdr{};
        rxMsgs_[i].msg_hdr.msg_iov = &rxIov_[i];
        rxMsgs_[i].msg_hdr.msg_iovlen = 1;
        rxMsgs_[i].msg_hdr.msg_name = &rxAddr_[i];
        rxMsgs_[i].msg_hdr.msg_namelen = sizeof(sockaddr_in);
    }
    leftover_.reserve(64 * burst_);
    return {};
}

UdpTransport::~UdpTransport() {
    if (fd_ >= 0) ::close(fd_);
}

std::size_t UdpTransport::recvBurst(std::span<RxSlot> out) noexcept {
    std::size_t k = 0;
    // Segments of the last GRO receive that did not fit: they still sit in the arena.
    while (leftoverPos_ < leftover_.size() && k < out.size()) {
        const Segment& g = leftover_[leftoverPos_++];
        out[k++] = RxSlot{g.data, g.len, g.from};
    }
    if (k > 0) return k;
    leftover_.clear();
    leftoverPos_ = 0;
    const unsigned want = static_cast<unsigned>(out.size() < burst_ ? out.size() : burst_);
    if (want == 0) return 0;
    for (unsigned i = 0; i < want; ++i) {
        rxMsgs_[i].msg_hdr.msg_namelen = sizeof(sockaddr_in);
        rxMsgs_[i].msg_hdr.msg_flags = 0;
        if (gro_) {
            rxMsgs_[i].msg_hdr.msg_control = rxCtl_[i].data();
            rxMsgs_[i].msg_hdr.msg_controllen = rxCtl_[i].size();
        }
    }
    const int n = ::recvmmsg(fd_, rxMsgs_.data(), want, MSG_DONTWAIT, nullptr);
    if (n <= 0) return 0;
    std::size_t datagrams = 0;
    for (int i = 0; i < n; ++i) {
        const auto& m = rxMsgs_[static_cast<std::size_t>(i)];
        if ((m.msg_hdr.msg_flags & MSG_TRUNC) != 0) {
            ++stats_.rxTruncated;
            continue;
        }
        const auto& a = rxAddr_[static_cast<std::size_t>(i)];
        const Endpoint from{ntohl(a.sin_addr.s_addr), ntohs(a.sin_port)};
        auto* base = static_cast<std::byte*>(rxIov_[static_cast<std::size_t>(i)].iov_base);
        std::uint32_t seg = m.msg_len;
        if (gro_) {
            for (cmsghdr* c = CMSG_FIRSTHDR(&m.msg_hdr); c != nullptr; c = CMSG_NXTHDR(const_cast<msghdr*>(&m.msg_hdr), c)) {
                if (c->cmsg_level == SOL_UDP && c->cmsg_type == UDP_GRO) {
                    int gs = 0;
                    std::memcpy(&gs, CMSG_DATA(c), sizeof gs);
                    if (gs > 0) seg = static_cast<std::uint32_t>(gs);
                }
            }
        }
        stats_.rxBytes += m.msg_len;
        // One datagram, or a GRO run of equal-size datagrams (the last may be shorter).
        for (std::uint32_t at = 0; at < m.msg_len; at += seg) {
            const std::uint32_t len = std::min(seg, m.msg_len - at);
            if (k < out.size()) out[k++] = RxSlot{base + at, len, from};
            else leftover_.push_back(Segment{base + at, len, from});
            ++datagrams;
        }
        if (m.msg_len == 0) {
            if (k < out.size()) out[k++] = RxSlot{base, 0, from};
            ++datagrams;
        }
    }
    stats_.rxDatagrams += datagrams;
    return k;
}

void TxBatch::reserve(std::size_t burst) {
    burst_ = burst;
    msgs.resize(burst);
    iov_.resize(burst);
    addr_.resize(burst);
    ctl_.resize(burst);
    groupItems.resize(burst);
}

std::size_t TxBatch::pack(std::span<const TxItem> items, bool gso) {
    // With GSO, consecutive datagrams to one destination, all of the first one's size (the last
    // may be shorter), up to 64 segments and 64 KiB, share one header.
    std::size_t groups = 0, used = 0;
    while (used < items.size() && groups < burst_ && used < burst_) {
        const std::size_t first = used;
        std::size_t count = 1;
        std::size_t total = items[first].len;
        if (gso) {
            const std::uint32_t seg = items[first].len;
            while (first + count < items.size() && used + count < burst_ && count < 64) {
                const auto& nx = items[first + count];
                if (!(nx.to == items[first].to) || nx.len > seg || nx.len == 0 || total + nx.len > 65000) break;
                if (items[first + count - 1].len != seg) break;  // only the last may be shorter
                total += nx.len;
                ++count;
            }
        }
        for (std::size_t i = 0; i < count; ++i)
            iov_[used + i] = iovec{const_cast<std::byte*>(items[first + i].data), items[first + i].len};
        addr_[groups] = toSockaddr(items[first].to);
        msghdr& h = msgs[groups].msg_hdr;
        h = msghdr{};
        h.msg_name = &addr_[groups];
        h.msg_namelen = sizeof(sockaddr_in);
        h.msg_iov = &iov_[used];
        h.msg_iovlen = count;
        if (count > 1) {
            h.msg_control = ctl_[groups].data();
            h.msg_controllen = CMSG_SPACE(sizeof(std::uint16_t));
            cmsghdr* c = CMSG_FIRSTHDR(&h);
            c->cmsg_level = SOL_UDP;
            c->cmsg_type = UDP_SEGMENT;
            c->cmsg_len = CMSG_LEN(sizeof(std::uint16_t));
            const auto seg = static_cast<std::uint16_t>(items[first].len);
            std::memcpy(CMSG_DATA(c), &seg, sizeof seg);
        }
        groupItems[groups] = count;
        ++groups;
        used += count;
    }
    return groups;
}

std::size_t UdpTransport::sendBurst(std::span<const TxItem> items) noexcept {
    std::size_t done = 0;
    while (done < items.size()) {
        const std::size_t groups = tx_.pack(items.subspan(done), gso_);
        const int r = ::sendmmsg(fd_, tx_.msgs.data(), static_cast<unsigned>(groups), MSG_DONTWAIT);
        if (r < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOBUFS) {
                ++stats_.txWouldBlock;
                return done;
            }
            if (gso_ && tx_.groupItems[0] > 1 && (errno == EIO || errno == EINVAL || errno == EOPNOTSUPP)) {
                gso_ = false;  // the route or device cannot segment: send datagram by datagram from now on
                continue;
            }
            // The first send was refused (e.g. no route, EMSGSIZE): count its datagrams and go on.
            stats_.txErrors += tx_.groupItems[0];
            done += tx_.groupItems[0];
            continue;
        }
        for (int g = 0; g < r; ++g) {
            const std::size_t n = tx_.groupItems[static_cast<std::size_t>(g)];
            for (std::size_t i = 0; i < n; ++i) stats_.txBytes += items[done + i].len;
            stats_.txDatagrams += n;
            done += n;
        }
    }
    return done;
}

}  // namespace seqcast::transport
