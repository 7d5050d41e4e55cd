// DPDK transport: see dpdk_transport.h. Compiled only when meson finds libdpdk.
#include "transport/dpdk_transport.h"

#include <sched.h>
#include <unistd.h>

#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_lcore.h>
#include <rte_log.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <bit>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <span>

#include "fabric/clock.h"
#include "transport/eth_frame.h"

namespace seqcast::transport {

bool dpdkAvailable() noexcept { return true; }

namespace {

constexpr std::size_t kMaxEndpoints = 16;
constexpr unsigned kRxBurst = 32;
constexpr unsigned kTxBurst = 32;
constexpr std::size_t kArpEntries = 64;
constexpr std::size_t kArpPending = 32;          // frames that wait for one unresolved address
constexpr std::uint64_t kArpRetryNs = 200'000'000;
constexpr unsigned kArpTries = 5;
constexpr std::uint64_t kArpRefreshNs = 60'000'000'000ull;
constexpr std::uint64_t kIgmpUnsolicitedNs = 60'000'000'000ull;  // re-announce joined groups
constexpr std::uint64_t kTimerTickNs = 1'000'000;
constexpr std::uint16_t kEphemeralFirst = 49152;

struct Queued {
    rte_mbuf* m;
    std::uint16_t off;
    std::uint16_t len;
    Endpoint from;
};

class Port;

// One open transport's place on the port: what it is bound to and its receive queue.
struct EndpointState {
    Endpoint bind;   // addr: 0 (ours), or a group
    Endpoint local;  // reported by local()
    std::vector<std::uint32_t> groups;
    std::size_t maxDatagram = 0;
    std::vector<Queued> queue;  // power-of-two ring
    std::uint64_t head = 0, tail = 0;
    TransportStats* stats = nullptr;

    bool joined(std::uint32_t g) const noexcept { return std::find(groups.begin(), groups.end(), g) != groups.end(); }
};

struct ArpEntry {
    std::uint32_t ip = 0;  // 0: free
    eth::Mac mac{};
    bool resolved = false;
    std::uint64_t lastNs = 0;  // last request sent (unresolved) or last confirmation (resolved)
    unsigned tries = 0;
    std::array<rte_mbuf*, kArpPending> pending{};
    std::size_t npending = 0;
};

// A tiny test-and-set lock, taken once per burst.
class SpinLock {
public:
    void lock() noexcept {
        while (flag_.test_and_set(std::memory_order_acquire)) __builtin_ia32_pause();
    }
    void unlock() noexcept { flag_.clear(std::memory_order_release); }

private:
    std::atomic_flag flag_ = ATOMIC_FLAG_INIT;
};
struct Guard {
    explicit Guard(SpinLock& l) : l_(l) { l_.lock(); }
    ~Guard() { l_.unlock(); }
    SpinLock& l_;
};

class Port {
public:
    static Result<Port*> get(const UdpConfig& cfg, std::vector<std::string>& warnings);
    static Port* instance() noexcept { return gPort; }

    Status attach(EndpointState& e, const UdpConfig& cfg);
    void detach(EndpointState& e);
    std::size_t recv(EndpointState& e, std::span<RxSlot> out, std::vector<rte_mbuf*>& held);
    std::size_t send(EndpointState& e, std::span<const TxItem> items, bool loop, std::uint8_t ttl);
    void freeHeld(std::vector<rte_mbuf*>& held) noexcept {
        if (!held.empty()) rte_pktmbuf_free_bulk(held.data(), static_cast<unsigned>(held.size()));
        held.clear();
    }
    std::uint32_t ip() const noexcept { return ip_; }
    SpinLock& lock() noexcept { return lock_; }
    const DpdkPortStats& stats() const noexcept { return stats_; }

private:
    static void shutdown();
    Status init(const UdpConfig& cfg, std::vector<std::string>& warnings);
    void poll(std::uint64_t now);
    void timers(std::uint64_t now);
    void dispatch(rte_mbuf* m, std::uint64_t now, bool fromWire);
    bool deliver(EndpointState& e, rte_mbuf* m, const eth::Frame& f);
    void handleArp(const eth::Frame& f, std::uint64_t now);
    void handleIgmp(const eth::Frame& f, std::uint64_t now);
    void learn(std::uint32_t ip, const eth::Mac& mac, std::uint64_t now);
    ArpEntry* findArp(std::uint32_t ip) noexcept;
    ArpEntry* newArp(std::uint32_t ip, std::uint64_t now);
    void sendArp(std::uint16_t op, const eth::Mac& mac, std::uint32_t ip);
    void sendIgmp(eth::IgmpType type, std::uint32_t group);
    void txOne(rte_mbuf* m);
    void txAll(rte_mbuf** ms, unsigned n);
    bool onSubnet(std::uint32_t a) const noexcept { return (a & mask_) == (ip_ & mask_); }

    static inline Port* gPort = nullptr;

    SpinLock lock_;
    std::uint16_t port_ = 0;
    rte_mempool* pool_ = nullptr;
    eth::Mac mac_{};
    std::uint32_t ip_ = 0;
    std::uint32_t mask_ = 0;
    std::size_t maxPayload_ = 1472;
    std::size_t queueDepth_ = 1024;
    std::array<EndpointState*, kMaxEndpoints> eps_{};
    std::size_t neps_ = 0;
    struct Group {
        std::uint32_t addr;
        unsigned refs;
    };
    std::vector<Group> groups_;
    std::array<ArpEntry, kArpEntries> arp_{};
    std::uint64_t nextTimerNs_ = 0;
    std::uint64_t nextIgmpNs_ = 0;     // unsolicited reports
    std::uint64_t igmpAnswerNs_ = 0;   // a query's answer is due (0: none)
    std::uint32_t igmpAnswerGroup_ = 0;  // 0: all groups
    std::uint16_t ipId_ = 0;
    std::uint16_t nextEphemeral_ = kEphemeralFirst;
    Rng rng_{0};
    DpdkPortStats stats_;
};

// Our IPv4 address: --interface, or the bind address when that is unset or loopback.
std::uint32_t ourIp(const UdpConfig& cfg) noexcept {
    std::uint32_t ip = cfg.interface;
    if (ip == 0 || (ip >> 24) == 127) ip = cfg.bind.multicast() ? 0 : cfg.bind.addr;
    return (ip >> 24) == 127 ? 0 : ip;
}

Result<Port*> Port::get(const UdpConfig& cfg, std::vector<std::string>& warnings) {
    if (gPort != nullptr) {
        const std::uint32_t ip = ourIp(cfg);
        if (ip != 0 && ip != gPort->ip_)
            return failInvalid("dpdk: this process's port has address " + Endpoint{gPort->ip_, 0}.str() + ", not " +
                               Endpoint{ip, 0}.str());
        return gPort;
    }
    auto p = std::make_unique<Port>();
    if (auto st = p->init(cfg, warnings); !st) return fail(st.error());
    gPort = p.release();
    std::atexit(&Port::shutdown);
    return gPort;
}

std::string rteError(const char* what, int err) {
    return std::string(what) + ": " + rte_strerror(err < 0 ? -err : err);
}

Status Port::init(const UdpConfig& cfg, std::vector<std::string>& warnings) {
    ip_ = ourIp(cfg);
    if (ip_ == 0)
        return fail(Error::invalid("dpdk: our IPv4 address is --interface (or the bind address); 0 and 127.x cannot be used").about("interface"));
    if (cfg.prefixLen == 0 || cfg.prefixLen > 32) return fail(Error::invalid("dpdk: prefix length must be 1..32").about("interface"));
    mask_ = cfg.prefixLen == 32 ? 0xFFFFFFFFu : ~(0xFFFFFFFFu >> cfg.prefixLen);
    rng_ = Rng(monoNs() ^ ip_);

    // EAL messages go to stderr: stdout may be the data (seqcast sub --print).
    rte_openlog_stream(stderr);
    std::vector<std::string> args{"seqcast"};
    args.insert(args.end(), cfg.ealArgs.begin(), cfg.ealArgs.end());
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    // The EAL pins this thread to its main lcore's CPU; keep the affinity the process chose (--cpu).
    cpu_set_t affinity;
    const bool haveAffinity = sched_getaffinity(0, sizeof affinity, &affinity) == 0;
    // The EAL prints its usage (after a bad argument) and some notices with printf: keep them off
    // stdout too, for the same reason.
    std::fflush(stdout);
    const int savedStdout = ::dup(STDOUT_FILENO);
    if (savedStdout >= 0) ::dup2(STDERR_FILENO, STDOUT_FILENO);
    const int ealRc = rte_eal_init(static_cast<int>(args.size()), argv.data());
    const int ealErr = rte_errno;
    if (savedStdout >= 0) {
        std::fflush(stdout);
        ::dup2(savedStdout, STDOUT_FILENO);
        ::close(savedStdout);
    }
    if (ealRc < 0) return fail(Error::invalid(rteError("dpdk: EAL initialisation (arguments after --) failed", ealErr)).about("ealArgs"));
    if (haveAffinity) sched_setaffinity(0, sizeof affinity, &affinity);

    std::uint16_t port = RTE_MAX_ETHPORTS;
    std::uint16_t p = 0;
    RTE_ETH_FOREACH_DEV(p) {
        port = p;
        break;
    }
    if (port == RTE_MAX_ETHPORTS)
        return fail(Error::invalid("dpdk: no port (add an EAL argument such as --vdev=net_af_packet0,iface=eth0, or bind a NIC)").about("ealArgs"));
    port_ = port;
    if (rte_eth_dev_count_avail() > 1)
        warnings.push_back("dpdk: several ports; using port " + std::to_string(port_));

    rte_eth_dev_info info{};
    if (int r = rte_eth_dev_info_get(port_, &info); r != 0) return failInvalid(rteError("dpdk: dev_info", r));
    rte_eth_conf conf{};
    if (int r = rte_eth_dev_configure(port_, 1, 1, &conf); r != 0) return failInvalid(rteError("dpdk: configure", r));
    std::uint16_t nrx = 1024, ntx = 1024;
    if (int r = rte_eth_dev_adjust_nb_rx_tx_desc(port_, &nrx, &ntx); r != 0)
        return failInvalid(rteError("dpdk: descriptor counts", r));
    std::uint16_t mtu = 1500;
    if (rte_eth_dev_get_mtu(port_, &mtu) != 0 || mtu < 576) mtu = 1500;
    maxPayload_ = mtu - eth::kIpv4Header - eth::kUdpHeader;

    // Each endpoint queues up to rcvBuf / 2 KiB frames; the pool covers the rings, the queues of a
    // few endpoints, frames waiting for ARP and bursts in flight.
    const std::size_t want = std::clamp<std::size_t>(static_cast<std::size_t>(std::max(cfg.rcvBuf, 0)) / 2048, 256, 8192);
    queueDepth_ = std::bit_ceil(want);
    std::size_t n = nrx + ntx + 4 * queueDepth_ + kArpEntries * kArpPending + 4 * kRxBurst + 1024;
    n = std::bit_ceil(n) - 1;  // the mempool's optimum is 2^q - 1
    const int socket = rte_eth_dev_socket_id(port_) >= 0 ? rte_eth_dev_socket_id(port_) : static_cast<int>(rte_socket_id());
    const std::uint16_t room = static_cast<std::uint16_t>(
        std::max<std::size_t>(RTE_MBUF_DEFAULT_BUF_SIZE, RTE_PKTMBUF_HEADROOM + eth::kEthHeader + mtu + 4));
    pool_ = rte_pktmbuf_pool_create("seqcast_pool", static_cast<unsigned>(n), 256, 0, room, socket);
    if (pool_ == nullptr)
        return failInvalid(rteError(("dpdk: mbuf pool of " + std::to_string(n) + " (raise -m)").c_str(), rte_errno));
    if (int r = rte_eth_rx_queue_setup(port_, 0, nrx, static_cast<unsigned>(socket), nullptr, pool_); r != 0)
        return failInvalid(rteError("dpdk: rx queue", r));
    if (int r = rte_eth_tx_queue_setup(port_, 0, ntx, static_cast<unsigned>(socket), nullptr); r != 0)
        return failInvalid(rteError("dpdk: tx queue", r));
    if (int r = rte_eth_dev_start(port_); r != 0) return failInvalid(rteError("dpdk: start", r));
    // Multicast frames must reach us: all-multicast where the port has it, else promiscuous.
    if (rte_eth_allmulticast_enable(port_) != 0 && rte_eth_promiscuous_enable(port_) != 0)
        warnings.push_back("dpdk: port has neither all-multicast nor promiscuous mode; multicast may not arrive");
    rte_ether_addr addr{};
    if (int r = rte_eth_macaddr_get(port_, &addr); r != 0) return failInvalid(rteError("dpdk: MAC address", r));
    std::copy(std::begin(addr.addr_bytes), std::end(addr.addr_bytes), mac_.begin());
    // Tell the segment who we are (gratuitous ARP) so peers need not ask.
    sendArp(1, eth::Mac{}, ip_);
    return {};
}

void Port::shutdown() {
    Port* p = gPort;
    if (p == nullptr) return;
    {
        Guard g(p->lock_);
        for (auto& gr : p->groups_) p->sendIgmp(eth::IgmpType::Leave, gr.addr);
        for (auto& a : p->arp_)
            for (std::size_t i = 0; i < a.npending; ++i) rte_pktmbuf_free(a.pending[i]);
        if (std::getenv("SEQCAST_DPDK_QUIET") == nullptr) {
            const auto& s = p->stats_;
            std::fprintf(stderr,
                         "seqcast: dpdk port %u: rx %llu (udp %llu arp %llu igmp %llu foreign %llu malformed %llu "
                         "no-endpoint %llu queue-full %llu too-big %llu) tx %llu (arp req %llu rep %llu igmp %llu; "
                         "no-route %llu too-big %llu arp-unresolved %llu no-mbufs %llu)\n",
                         p->port_, static_cast<unsigned long long>(s.rxFrames), static_cast<unsigned long long>(s.rxUdp),
                         static_cast<unsigned long long>(s.rxArp), static_cast<unsigned long long>(s.rxIgmp),
                         static_cast<unsigned long long>(s.rxForeign), static_cast<unsigned long long>(s.rxMalformed),
                         static_cast<unsigned long long>(s.rxNoEndpoint), static_cast<unsigned long long>(s.rxQueueFull),
                         static_cast<unsigned long long>(s.rxTooBig), static_cast<unsigned long long>(s.txFrames),
                         static_cast<unsigned long long>(s.txArpRequests), static_cast<unsigned long long>(s.txArpReplies),
                         static_cast<unsigned long long>(s.txIgmp), static_cast<unsigned long long>(s.txNoRoute),
                         static_cast<unsigned long long>(s.txTooBig), static_cast<unsigned long long>(s.arpUnresolved),
                         static_cast<unsigned long long>(s.txNoMbufs));
        }
        rte_eth_dev_stop(p->port_);
        rte_eth_dev_close(p->port_);
    }
    rte_eal_cleanup();
}

Status Port::attach(EndpointState& e, const UdpConfig& cfg) {
    Guard g(lock_);
    if (neps_ == kMaxEndpoints) return failInvalid("dpdk: too many endpoints on one port");
    const Endpoint b = cfg.bind;
    if (b.addr != 0 && b.addr != ip_ && !b.multicast())
        return failInvalid("dpdk: cannot bind " + b.str() + ": not our address (" + Endpoint{ip_, 0}.str() +
                           ", from --interface)");
    const bool group = b.multicast();
    auto clash = [&](std::uint16_t port) {
        for (std::size_t i = 0; i < neps_; ++i)
            if (eps_[i]->bind.port == port && !group && !eps_[i]->bind.multicast()) return true;
        return false;
    };
    std::uint16_t port = b.port;
    if (port == 0) {
        for (unsigned tries = 0; tries < 16384; ++tries) {
            const std::uint16_t p = nextEphemeral_;
            nextEphemeral_ = nextEphemeral_ == 65535 ? kEphemeralFirst : static_cast<std::uint16_t>(nextEphemeral_ + 1);
            bool used = false;
            for (std::size_t i = 0; i < neps_; ++i) used = used || eps_[i]->bind.port == p;
            if (!used) {
                port = p;
                break;
            }
        }
        if (port == 0) return failInvalid("dpdk: no free ephemeral port");
    } else if (clash(port)) {
        return failErrno("dpdk: bind " + b.str(), EADDRINUSE);
    }
    e.bind = Endpoint{group ? b.addr : 0, port};
    e.local = Endpoint{group ? b.addr : ip_, port};
    e.groups = cfg.groups;
    e.maxDatagram = cfg.maxDatagram;
    e.queue.assign(queueDepth_, Queued{});
    eps_[neps_++] = &e;
    for (std::uint32_t gr : e.groups) {
        auto it = std::find_if(groups_.begin(), groups_.end(), [&](const Group& x) { return x.addr == gr; });
        if (it != groups_.end()) {
            ++it->refs;
            continue;
        }
        groups_.push_back(Group{gr, 1});
        // RFC 2236: repeat the unsolicited report; the timer sends the second one soon.
        sendIgmp(eth::IgmpType::V2Report, gr);
        igmpAnswerNs_ = monoNs() + 1'000'000'000ull;
        igmpAnswerGroup_ = 0;
    }
    if (nextIgmpNs_ == 0) nextIgmpNs_ = monoNs() + kIgmpUnsolicitedNs;
    return {};
}

void Port::detach(EndpointState& e) {
    Guard g(lock_);
    for (std::size_t i = 0; i < neps_; ++i) {
        if (eps_[i] != &e) continue;
        eps_[i] = eps_[--neps_];
        eps_[neps_] = nullptr;
        break;
    }
    while (e.head != e.tail) rte_pktmbuf_free(e.queue[e.head++ & (e.queue.size() - 1)].m);
    for (std::uint32_t gr : e.groups) {
        auto it = std::find_if(groups_.begin(), groups_.end(), [&](const Group& x) { return x.addr == gr; });
        if (it == groups_.end() || --it->refs != 0) continue;
        sendIgmp(eth::IgmpType::Leave, gr);
        groups_.erase(it);
    }
}

void Port::txOne(rte_mbuf* m) {
    if (rte_eth_tx_burst(port_, 0, &m, 1) == 1) {
        ++stats_.txFrames;
        return;
    }
    rte_pktmbuf_free(m);
}

void Port::txAll(rte_mbuf** ms, unsigned n) {
    unsigned sent = 0;
    for (int spins = 0; sent < n && spins < 64; ++spins)
        sent += rte_eth_tx_burst(port_, 0, ms + sent, static_cast<std::uint16_t>(n - sent));
    stats_.txFrames += sent;
    if (sent < n) rte_pktmbuf_free_bulk(ms + sent, n - sent);
}

void Port::sendArp(std::uint16_t op, const eth::Mac& mac, std::uint32_t ip) {
    rte_mbuf* m = rte_pktmbuf_alloc(pool_);
    if (m == nullptr) return;
    char* p = rte_pktmbuf_append(m, eth::kMinFrame);
    if (p == nullptr) {
        rte_pktmbuf_free(m);
        return;
    }
    std::memset(p, 0, eth::kMinFrame);
    eth::writeArp(std::span(reinterpret_cast<std::byte*>(p), eth::kMinFrame), op, mac_, ip_, mac, ip);
    ++(op == 1 ? stats_.txArpRequests : stats_.txArpReplies);
    txOne(m);
}

void Port::sendIgmp(eth::IgmpType type, std::uint32_t group) {
    rte_mbuf* m = rte_pktmbuf_alloc(pool_);
    if (m == nullptr) return;
    char* p = rte_pktmbuf_append(m, eth::kMinFrame);
    if (p == nullptr) {
        rte_pktmbuf_free(m);
        return;
    }
    std::memset(p, 0, eth::kMinFrame);
    eth::writeIgmp(std::span(reinterpret_cast<std::byte*>(p), eth::kMinFrame), type, mac_, ip_, group);
    ++stats_.txIgmp;
    txOne(m);
}

ArpEntry* Port::findArp(std::uint32_t ip) noexcept {
    for (auto& a : arp_)
        if (a.ip == ip) return &a;
    return nullptr;
}

ArpEntry* Port::newArp(std::uint32_t ip, std::uint64_t now) {
    ArpEntry* victim = nullptr;
    for (auto& a : arp_) {
        if (a.ip == 0) {
            victim = &a;
            break;
        }
        if (a.npending == 0 && (victim == nullptr || a.lastNs < victim->lastNs)) victim = &a;
    }
    if (victim == nullptr) return nullptr;  // every entry has frames waiting
    *victim = ArpEntry{};
    victim->ip = ip;
    victim->lastNs = now;
    return victim;
}

void Port::learn(std::uint32_t ip, const eth::Mac& mac, std::uint64_t now) {
    if (ip == 0 || ip == ip_ || !onSubnet(ip) || (mac[0] & 1) != 0) return;
    ArpEntry* a = findArp(ip);
    if (a == nullptr && (a = newArp(ip, now)) == nullptr) return;
    a->mac = mac;
    a->resolved = true;
    a->lastNs = now;
    a->tries = 0;
    if (a->npending == 0) return;
    for (std::size_t i = 0; i < a->npending; ++i) {
        auto* p = rte_pktmbuf_mtod(a->pending[i], std::uint8_t*);
        std::copy(mac.begin(), mac.end(), p);
    }
    txAll(a->pending.data(), static_cast<unsigned>(a->npending));
    a->npending = 0;
}

void Port::handleArp(const eth::Frame& f, std::uint64_t now) {
    ++stats_.rxArp;
    // RFC 826: update a sender we know; add it when the request is for us.
    if (f.arpTargetIp == ip_ || findArp(f.arpSenderIp) != nullptr) learn(f.arpSenderIp, f.arpSenderMac, now);
    if (f.arpOp == 1 && f.arpTargetIp == ip_ && f.arpSenderIp != ip_) sendArp(2, f.arpSenderMac, f.arpSenderIp);
}

void Port::handleIgmp(const eth::Frame& f, std::uint64_t now) {
    ++stats_.rxIgmp;
    if (f.igmpType != static_cast<std::uint8_t>(eth::IgmpType::Query) || groups_.empty()) return;
    // Answer after a random delay (under 1 s, below any querier's maximum response time), so that
    // hosts do not all answer at once. A general query, or queries for two groups, answer all.
    const bool pending = igmpAnswerNs_ != 0;
    const std::uint64_t due = now + rng_.next() % 1'000'000'000ull;
    if (!pending || due < igmpAnswerNs_) igmpAnswerNs_ = due;
    igmpAnswerGroup_ = (f.igmpGroup == 0 || (pending && igmpAnswerGroup_ != f.igmpGroup)) ? 0 : f.igmpGroup;
}

bool Port::deliver(EndpointState& e, rte_mbuf* m, const eth::Frame& f) {
    if (f.payloadLen > e.maxDatagram) {
        ++stats_.rxTooBig;
        ++e.stats->rxTruncated;
        return false;
    }
    if (e.tail - e.head == e.queue.size()) {
        ++stats_.rxQueueFull;
        return false;
    }
    e.queue[e.tail++ & (e.queue.size() - 1)] = Queued{m, f.payloadOffset, f.payloadLen, Endpoint{f.srcIp, f.srcPort}};
    return true;
}

// Takes one reference of m: queues it for the endpoints it is for, or frees it.
void Port::dispatch(rte_mbuf* m, std::uint64_t now, bool fromWire) {
    if (fromWire) ++stats_.rxFrames;
    if (m->nb_segs != 1) {
        ++stats_.rxTooBig;
        rte_pktmbuf_free(m);
        return;
    }
    const auto f = eth::parse(std::span(rte_pktmbuf_mtod(m, const std::byte*), rte_pktmbuf_data_len(m)));
    switch (f.kind) {
    case eth::Kind::Udp: break;
    case eth::Kind::Arp: handleArp(f, now); rte_pktmbuf_free(m); return;
    case eth::Kind::Igmp: handleIgmp(f, now); rte_pktmbuf_free(m); return;
    case eth::Kind::Foreign: ++stats_.rxForeign; rte_pktmbuf_free(m); return;
    case eth::Kind::Malformed: ++stats_.rxMalformed; rte_pktmbuf_free(m); return;
    }
    const bool mcast = (f.dstIp >> 28) == 0xE;
    if (!mcast && f.dstIp != ip_ && f.dstIp != 0xFFFFFFFFu && f.dstIp != (ip_ | ~mask_)) {
        ++stats_.rxForeign;  // another host's unicast (promiscuous port)
        rte_pktmbuf_free(m);
        return;
    }
    if (fromWire) ++stats_.rxUdp;
    if (fromWire && !mcast && (f.srcMac[0] & 1) == 0) learn(f.srcIp, f.srcMac, now);
    unsigned refs = 0;
    for (std::size_t i = 0; i < neps_; ++i) {
        EndpointState& e = *eps_[i];
        if (e.bind.port != f.dstPort) continue;
        const bool match = mcast ? (e.bind.addr == f.dstIp || (e.bind.addr == 0 && e.joined(f.dstIp))) : e.bind.addr == 0;
        if (!match) continue;
        if (refs > 0) rte_mbuf_refcnt_update(m, 1);
        if (deliver(e, m, f)) ++refs;
        else if (refs > 0) rte_mbuf_refcnt_update(m, -1);
    }
    if (refs == 0) {
        bool anyPort = false;
        for (std::size_t i = 0; i < neps_; ++i) anyPort = anyPort || eps_[i]->bind.port == f.dstPort;
        if (!anyPort) ++stats_.rxNoEndpoint;
        rte_pktmbuf_free(m);
    }
}

void Port::poll(std::uint64_t now) {
    std::array<rte_mbuf*, kRxBurst> ms;
    const std::uint16_t n = rte_eth_rx_burst(port_, 0, ms.data(), kRxBurst);
    for (std::uint16_t i = 0; i < n; ++i) dispatch(ms[i], now, true);
}

void Port::timers(std::uint64_t now) {
    if (now < nextTimerNs_) return;
    nextTimerNs_ = now + kTimerTickNs;
    if (igmpAnswerNs_ != 0 && now >= igmpAnswerNs_) {
        for (const auto& g : groups_)
            if (igmpAnswerGroup_ == 0 || igmpAnswerGroup_ == g.addr) sendIgmp(eth::IgmpType::V2Report, g.addr);
        igmpAnswerNs_ = 0;
        igmpAnswerGroup_ = 0;
    }
    if (nextIgmpNs_ != 0 && now >= nextIgmpNs_) {
        for (const auto& g : groups_) sendIgmp(eth::IgmpType::V2Report, g.addr);
        nextIgmpNs_ = now + kIgmpUnsolicitedNs;
    }
    for (auto& a : arp_) {
        if (a.ip == 0) continue;
        if (a.resolved) {
            if (now - a.lastNs > kArpRefreshNs) {
                a.resolved = false;  // ask again; frames wait for the answer
                a.tries = 1;
                a.lastNs = now;
                sendArp(1, eth::Mac{}, a.ip);
            }
            continue;
        }
        if (now - a.lastNs < kArpRetryNs) continue;
        if (a.tries >= kArpTries) {
            stats_.arpUnresolved += a.npending;
            for (std::size_t i = 0; i < a.npending; ++i) rte_pktmbuf_free(a.pending[i]);
            a = ArpEntry{};
            continue;
        }
        ++a.tries;
        a.lastNs = now;
        sendArp(1, eth::Mac{}, a.ip);
    }
}

std::size_t Port::recv(EndpointState& e, std::span<RxSlot> out, std::vector<rte_mbuf*>& held) {
    const std::uint64_t now = monoNs();
    timers(now);
    poll(now);
    std::size_t n = 0;
    while (n < out.size() && e.head != e.tail) {
        const Queued& q = e.queue[e.head++ & (e.queue.size() - 1)];
        out[n].data = rte_pktmbuf_mtod_offset(q.m, std::byte*, q.off);
        out[n].len = q.len;
        out[n].from = q.from;
        held.push_back(q.m);
        e.stats->rxBytes += q.len;
        ++n;
    }
    e.stats->rxDatagrams += n;
    return n;
}

std::size_t Port::send(EndpointState& e, std::span<const TxItem> items, bool loop, std::uint8_t ttl) {
    const std::uint64_t now = monoNs();
    timers(now);
    std::size_t taken = 0;
    while (taken < items.size()) {
        const unsigned n = static_cast<unsigned>(std::min<std::size_t>(kTxBurst, items.size() - taken));
        std::array<rte_mbuf*, kTxBurst> ms;
        if (rte_pktmbuf_alloc_bulk(pool_, ms.data(), n) != 0) {
            ++stats_.txNoMbufs;
            ++e.stats->txWouldBlock;
            return taken;
        }
        std::array<rte_mbuf*, kTxBurst> tx;
        std::array<std::size_t, kTxBurst> txItem;
        std::array<rte_mbuf*, kTxBurst> park;  // waiting for ARP
        std::array<std::size_t, kTxBurst> parkItem;
        unsigned ntx = 0, npark = 0;
        for (unsigned i = 0; i < n; ++i) {
            const TxItem& it = items[taken + i];
            rte_mbuf* m = ms[i];
            const std::uint32_t dst = it.to.addr;
            eth::UdpHeaderArgs h;
            h.srcMac = mac_;
            h.srcIp = ip_;
            h.dstIp = dst;
            h.srcPort = e.local.port;
            h.dstPort = it.to.port;
            h.ipId = ipId_++;
            const bool mcast = it.to.multicast();
            bool local = false, wire = true, needArp = false;
            if (mcast) {
                h.dstMac = eth::multicastMac(dst);
                h.ttl = ttl;
                local = loop && std::any_of(groups_.begin(), groups_.end(), [&](const Group& g) { return g.addr == dst; });
            } else if (dst == ip_) {
                h.dstMac = mac_;
                local = true;
                wire = false;
            } else if (dst == 0xFFFFFFFFu || dst == (ip_ | ~mask_)) {
                h.dstMac = eth::kBroadcastMac;
            } else if (!onSubnet(dst)) {
                ++stats_.txNoRoute;
                ++e.stats->txErrors;
                rte_pktmbuf_free(m);
                continue;
            } else if (ArpEntry* a = findArp(dst); a != nullptr && a->resolved) {
                h.dstMac = a->mac;
            } else {
                needArp = true;
            }
            char* p = it.len <= maxPayload_ ? rte_pktmbuf_append(m, static_cast<std::uint16_t>(eth::kUdpFrameOverhead + it.len))
                                            : nullptr;
            if (p == nullptr) {
                ++stats_.txTooBig;
                ++e.stats->txErrors;
                rte_pktmbuf_free(m);
                continue;
            }
            auto frame = std::span(reinterpret_cast<std::byte*>(p), eth::kUdpFrameOverhead + it.len);
            if (it.len != 0) std::memcpy(p + eth::kUdpFrameOverhead, it.data, it.len);
            eth::writeUdpHeaders(frame, h, static_cast<std::uint16_t>(it.len), true);
            e.stats->txBytes += it.len;
            if (local) {
                if (wire) rte_mbuf_refcnt_update(m, 1);
                dispatch(m, now, false);
                if (!wire) continue;
            }
            if (needArp) {
                park[npark] = m;
                parkItem[npark++] = i;
            } else {
                tx[ntx] = m;
                txItem[ntx++] = i;
            }
        }
        unsigned sent = 0;
        for (int spins = 0; sent < ntx && spins < 64; ++spins)
            sent += rte_eth_tx_burst(port_, 0, tx.data() + sent, static_cast<std::uint16_t>(ntx - sent));
        stats_.txFrames += sent;
        // Items from the first one the port did not take are not taken: the caller offers them again.
        const std::size_t cut = sent < ntx ? txItem[sent] : n;
        if (sent < ntx) {
            rte_pktmbuf_free_bulk(tx.data() + sent, ntx - sent);
            ++e.stats->txWouldBlock;
        }
        for (unsigned k = 0; k < npark; ++k) {
            if (parkItem[k] >= cut) {
                rte_pktmbuf_free(park[k]);
                continue;
            }
            const std::uint32_t dst = items[taken + parkItem[k]].to.addr;
            ArpEntry* a = findArp(dst);
            if (a == nullptr) {
                a = newArp(dst, now);
                if (a != nullptr) {
                    a->tries = 1;
                    sendArp(1, eth::Mac{}, dst);
                }
            }
            if (a == nullptr || a->npending == kArpPending) {
                ++stats_.arpUnresolved;
                ++e.stats->txErrors;
                rte_pktmbuf_free(park[k]);
                continue;
            }
            a->pending[a->npending++] = park[k];
        }
        e.stats->txDatagrams += cut;
        taken += cut;
        if (cut < n) return taken;
    }
    return taken;
}

class DpdkTransport final : public Transport {
public:
    DpdkTransport(Port& port, const UdpConfig& cfg) : port_(port), loop_(cfg.loop), ttl_(static_cast<std::uint8_t>(cfg.ttl)) {
        held_.reserve(std::max<std::size_t>(cfg.burst, 64));
        ep_.stats = &stats_;
    }
    ~DpdkTransport() override {
        {
            Guard g(port_.lock());
            port_.freeHeld(held_);
        }
        if (attached_) port_.detach(ep_);
    }
    DpdkTransport(const DpdkTransport&) = delete;
    DpdkTransport& operator=(const DpdkTransport&) = delete;

    Status attach(const UdpConfig& cfg) {
        if (auto st = port_.attach(ep_, cfg); !st) return st;
        attached_ = true;
        return {};
    }

    std::size_t recvBurst(std::span<RxSlot> out) noexcept override {
        Guard g(port_.lock());
        port_.freeHeld(held_);
        if (out.size() > held_.capacity()) out = out.first(held_.capacity());
        return port_.recv(ep_, out, held_);
    }
    std::size_t sendBurst(std::span<const TxItem> items) noexcept override {
        Guard g(port_.lock());
        return port_.send(ep_, items, loop_, ttl_);
    }
    Endpoint local() const noexcept override { return ep_.local; }
    const TransportStats& stats() const noexcept override { return stats_; }
    const char* kind() const noexcept override { return "dpdk"; }

private:
    Port& port_;
    bool loop_;
    std::uint8_t ttl_;
    bool attached_ = false;
    EndpointState ep_;
    std::vector<rte_mbuf*> held_;  // handed out by the last recvBurst; freed by the next
    TransportStats stats_;
};

}  // namespace

Result<std::unique_ptr<Transport>> openDpdkTransport(const UdpConfig& cfg, std::vector<std::string>& warnings) {
    auto port = Port::get(cfg, warnings);
    if (!port) return fail(port.error());
    auto t = std::make_unique<DpdkTransport>(**port, cfg);
    if (auto st = t->attach(cfg); !st) return fail(st.error());
    return std::unique_ptr<Transport>(std::move(t));
}

DpdkPortStats dpdkPortStats() noexcept {
    Port* p = Port::instance();
    if (p == nullptr) return {};
    Guard g(p->lock());
    return p->stats();
}

}  // namespace seqcast::transport
