#include "transport/uring_transport.h"

#include "seqcast_config.h"

#include <arpa/inet.h>
#include <netinet/udp.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <mutex>

#if SEQCAST_HAVE_URING
#include <liburing.h>
#endif

namespace seqcast::transport {

namespace {
Result<std::unique_ptr<Transport>> openSyscalls(const UdpConfig& cfg, std::vector<std::string>& warnings) {
    auto t = UdpTransport::open(cfg);
    if (!t) return fail(t.error());
    for (const auto& w : (*t)->warnings()) warnings.push_back(w);
    return std::unique_ptr<Transport>(std::move(*t));
}

Result<std::unique_ptr<Transport>> openUnfiltered(const UdpConfig& cfg, std::vector<std::string>& warnings);
}  // namespace

Result<std::unique_ptr<Transport>> openSocketBackend(const UdpConfig& cfg, std::vector<std::string>& warnings) {
    return openUnfiltered(cfg, warnings);
}

#if !SEQCAST_HAVE_URING

Status uringSocketsAvailable() {
    return failInvalid("this seqcast was built without liburing (apt-get install liburing-dev, then rebuild)");
}

namespace {
Result<std::unique_ptr<Transport>> openUnfiltered(const UdpConfig& cfg, std::vector<std::string>& warnings) {
    if (cfg.api == SocketApi::Uring)
        warnings.push_back("io_uring transport unavailable (" + uringSocketsAvailable().error().message() +
                           "); using recvmmsg/sendmmsg");
    return openSyscalls(cfg, warnings);
}
}  // namespace

#else

namespace {

constexpr std::uint64_t kRecvTag = 1;
constexpr std::uint16_t kBufGroup = 0;

// Ring set-up flags, newest first: the receive ring defers its task work to our own calls
// (DEFER_TASKRUN) and is enabled by the thread that first receives (R_DISABLED + SINGLE_ISSUER).
int initRing(io_uring& ring, unsigned entries, unsigned cqEntries, bool& deferred) {
    const unsigned tries[] = {
        IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_TASKRUN_FLAG | IORING_SETUP_R_DISABLED,
        IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG,
        0,
    };
    int r = -EINVAL;
    for (unsigned flags : tries) {
        io_uring_params p{};
        p.flags = flags | IORING_SETUP_CQSIZE;
        p.cq_entries = cqEntries;
        r = io_uring_queue_init_params(entries, &ring, &p);
        if (r == 0) {
            deferred = (flags & IORING_SETUP_R_DISABLED) != 0;
            return 0;
        }
        if (r != -EINVAL) return r;
    }
    return r;
}

// A provided-buffer ring: `count` buffers of `size` bytes the kernel picks from for each receive.
struct BufRing {
    io_uring_buf_ring* ring = nullptr;
    std::size_t ringBytes = 0;
    std::byte* arena = nullptr;
    std::size_t arenaBytes = 0;
    unsigned count = 0;
    std::size_t size = 0;

    int setup(io_uring& u, unsigned n, std::size_t bufSize) {
        count = n;
        size = bufSize;
        ringBytes = n * sizeof(io_uring_buf);
        void* r = ::mmap(nullptr, ringBytes, PROT_READ | PROT_WRITE, MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
        if (r == MAP_FAILED) return -errno;
        ring = static_cast<io_uring_buf_ring*>(r);
        arenaBytes = static_cast<std::size_t>(n) * bufSize;
        void* a = ::mmap(nullptr, arenaBytes, PROT_READ | PROT_WRITE, MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
        if (a == MAP_FAILED) return -errno;
        arena = static_cast<std::byte*>(a);
        io_uring_buf_reg reg{};
        reg.ring_addr = reinterpret_cast<std::uint64_t>(ring);
        reg.ring_entries = n;
        reg.bgid = kBufGroup;
        if (int e = io_uring_register_buf_ring(&u, &reg, 0); e != 0) return e;
        io_uring_buf_ring_init(ring);
        for (unsigned i = 0; i < n; ++i) add(static_cast<std::uint16_t>(i), i);
        io_uring_buf_ring_advance(ring, static_cast<int>(n));
        return 0;
    }
    std::byte* buf(std::uint16_t id) const { return arena + static_cast<std::size_t>(id) * size; }
    void add(std::uint16_t id, unsigned offset) {
        io_uring_buf_ring_add(ring, buf(id), static_cast<unsigned>(size), id, io_uring_buf_ring_mask(count),
                              static_cast<int>(offset));
    }
    void release() {
        if (arena != nullptr) ::munmap(arena, arenaBytes);
        if (ring != nullptr) ::munmap(ring, ringBytes);
        arena = nullptr;
        ring = nullptr;
    }
};

// One-time probe on a throwaway socket and ring: the opcodes, a buffer ring and a multishot
// recvmsg (Linux 6.0) must all work, or the caller falls back to recvmmsg/sendmmsg.
Status probeUring() {
    io_uring_probe* p = io_uring_get_probe();
    if (p == nullptr) return failInvalid("io_uring is not available (io_uring_setup refused: kernel, seccomp or sysctl kernel.io_uring_disabled)");
    const bool ops = io_uring_opcode_supported(p, IORING_OP_RECVMSG) && io_uring_opcode_supported(p, IORING_OP_SENDMSG) &&
                     io_uring_opcode_supported(p, IORING_OP_ASYNC_CANCEL);
    io_uring_free_probe(p);
    if (!ops) return failInvalid("io_uring lacks RECVMSG/SENDMSG");
    io_uring ring;
    if (int r = io_uring_queue_init(8, &ring, 0); r != 0) return failErrno("io_uring_queue_init", -r);
    const int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    Status st;
    BufRing br;
    if (fd < 0) st = failErrno("socket");
    else {
        sockaddr_in a = toSockaddr(Endpoint{0x7F000001u, 0});
        if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) st = failErrno("bind 127.0.0.1:0");
        else if (int e = br.setup(ring, 2, 256); e != 0) st = failErrno("provided-buffer ring (Linux 5.19)", -e);
        else {
            msghdr tmpl{};
            tmpl.msg_namelen = sizeof(sockaddr_in);
            io_uring_sqe* sqe = io_uring_get_sqe(&ring);
            io_uring_prep_recvmsg_multishot(sqe, fd, &tmpl, 0);
            sqe->flags |= IOSQE_BUFFER_SELECT;
            sqe->buf_group = kBufGroup;
            sqe->user_data = kRecvTag;
            sqe = io_uring_get_sqe(&ring);
            io_uring_prep_cancel64(sqe, kRecvTag, 0);
            sqe->user_data = 2;
            io_uring_submit(&ring);
            // Two completions: the receive (cancelled, or refused as unsupported) and the cancel.
            for (int i = 0; i < 2; ++i) {
                io_uring_cqe* c = nullptr;
                __kernel_timespec ts{1, 0};
                if (io_uring_wait_cqe_timeout(&ring, &c, &ts) != 0) break;
                if (c->user_data == kRecvTag && (c->res == -EINVAL || c->res == -EOPNOTSUPP))
                    st = failInvalid("io_uring multishot recvmsg not supported (Linux 6.0)");
                io_uring_cqe_seen(&ring, c);
            }
        }
    }
    io_uring_queue_exit(&ring);
    br.release();
    if (fd >= 0) ::close(fd);
    return st;
}

class UringTransport final : public Transport {
public:
    static Result<std::unique_ptr<UringTransport>> open(const UdpConfig& cfg, std::vector<std::string>& warnings);
    ~UringTransport() override;
    UringTransport(const UringTransport&) = delete;
    UringTransport& operator=(const UringTransport&) = delete;

    std::size_t recvBurst(std::span<RxSlot> out) noexcept override;
    std::size_t sendBurst(std::span<const TxItem> items) noexcept override;
    // Readable when datagrams wait in the socket: the multishot receive takes them on our next call.
    int waitFd() const noexcept override { return fd_; }
    Endpoint local() const noexcept override { return local_; }
    const TransportStats& stats() const noexcept override { return stats_; }
    const char* kind() const noexcept override { return "uring"; }

private:
    UringTransport() = default;
    Status setup(const UdpConfig& cfg, std::vector<std::string>& warnings);
    bool arm() noexcept;
    void recycle(std::uint16_t id) noexcept;
    bool enable(io_uring& ring, bool& enabled, bool deferred) noexcept;

    int fd_ = -1;
    Endpoint local_;
    bool gso_ = false;
    bool gro_ = false;
    std::size_t burst_ = 0;
    std::size_t maxPayload_ = 0;  // longer datagrams are counted as truncated and dropped
    TransportStats stats_;

    // Receive side: its own ring, so that send completions never mix with receive completions.
    io_uring rx_{};
    bool rxInit_ = false;
    bool rxDeferred_ = false;
    bool rxEnabled_ = false;
    bool armed_ = false;
    BufRing bufs_;
    msghdr tmpl_{};                      // name and control sizes the kernel lays out in each buffer
    std::vector<std::uint16_t> handedOut_;  // buffers whose datagrams the caller holds until the next call
    struct Segment {
        std::byte* data;
        std::uint32_t len;
        Endpoint from;
        std::uint16_t buffer;
        bool last;  // the buffer's last segment: recycle it once this one is handed out
    };
    std::vector<Segment> leftover_;  // segments of a GRO receive that did not fit the caller's burst
    std::size_t leftoverPos_ = 0;
    unsigned recycled_ = 0;          // buffers added to the ring since the last advance

    // Send side.
    io_uring tx_{};
    bool txInit_ = false;
    bool txDeferred_ = false;
    bool txEnabled_ = false;
    TxBatch batch_;
    std::vector<int> results_;
};

Result<std::unique_ptr<UringTransport>> UringTransport::open(const UdpConfig& cfg, std::vector<std::string>& warnings) {
    std::unique_ptr<UringTransport> t(new UringTransport());
    if (auto st = t->setup(cfg, warnings); !st) return fail(st.error());
    return t;
}

Status UringTransport::setup(const UdpConfig& cfg, std::vector<std::string>& warnings) {
    auto sock = openUdpSocket(cfg, warnings);
    if (!sock) return fail(sock.error());
    fd_ = sock->fd;
    local_ = sock->local;
    gro_ = sock->gro;
    gso_ = cfg.gso;
    burst_ = cfg.burst;
    maxPayload_ = gro_ ? 65536 : cfg.maxDatagram;

    // Each provided buffer holds the kernel's io_uring_recvmsg_out header, the source address,
    // the control message (GRO segment size) and the payload (up to 64 KiB of coalesced datagrams
    // with GRO). Enough buffers for four bursts, fewer of the big GRO ones.
    tmpl_.msg_namelen = sizeof(sockaddr_in);
    tmpl_.msg_controllen = gro_ ? CMSG_SPACE(sizeof(int)) : 0;
    const std::size_t bufSize =
        (sizeof(io_uring_recvmsg_out) + tmpl_.msg_namelen + tmpl_.msg_controllen + maxPayload_ + 63) & ~std::size_t{63};
    unsigned n = 1;
    while (n < (gro_ ? std::max<std::size_t>(burst_, 64) : 4 * burst_)) n <<= 1;
    n = std::min(n, 32768u);

    // A completion for every buffer fits the completion queue: a burst that arrives while we are
    // away is never cut short by it.
    if (int r = initRing(rx_, 8, 2 * n, rxDeferred_); r != 0) return failErrno("io_uring_queue_init (receive)", -r);
    rxInit_ = true;
    if (int r = io_uring_register_files(&rx_, &fd_, 1); r != 0) return failErrno("io_uring_register_files", -r);
    if (int r = bufs_.setup(rx_, n, bufSize); r != 0) return failErrno("io_uring provided-buffer ring", -r);
    handedOut_.reserve(n);
    leftover_.reserve(64 * burst_);

    const unsigned txEntries = static_cast<unsigned>(std::max<std::size_t>(burst_, 8));
    if (int r = initRing(tx_, txEntries, 2 * txEntries, txDeferred_); r != 0) return failErrno("io_uring_queue_init (send)", -r);
    txInit_ = true;
    if (int r = io_uring_register_files(&tx_, &fd_, 1); r != 0) return failErrno("io_uring_register_files", -r);
    batch_.reserve(burst_);
    results_.resize(burst_);
    return {};
}

UringTransport::~UringTransport() {
    // Closing the rings cancels the multishot receive; then the buffers and the socket can go.
    if (rxInit_) io_uring_queue_exit(&rx_);
    if (txInit_) io_uring_queue_exit(&tx_);
    bufs_.release();
    if (fd_ >= 0) ::close(fd_);
}

// A ring made with R_DISABLED belongs to the thread that enables it: the one that first uses it.
bool UringTransport::enable(io_uring& ring, bool& enabled, bool deferred) noexcept {
    if (enabled) return true;
    // (io_uring_enable_rings is declared but not exported by liburing 2.3: the raw call.)
    if (deferred && ::syscall(__NR_io_uring_register, ring.ring_fd, IORING_REGISTER_ENABLE_RINGS, nullptr, 0) != 0) return false;
    enabled = true;
    return true;
}

bool UringTransport::arm() noexcept {
    io_uring_sqe* sqe = io_uring_get_sqe(&rx_);
    if (sqe == nullptr) return false;
    io_uring_prep_recvmsg_multishot(sqe, 0, &tmpl_, 0);
    sqe->flags |= IOSQE_FIXED_FILE | IOSQE_BUFFER_SELECT;
    sqe->buf_group = kBufGroup;
    sqe->user_data = kRecvTag;
    if (io_uring_submit(&rx_) < 1) return false;
    armed_ = true;
    return true;
}

void UringTransport::recycle(std::uint16_t id) noexcept { bufs_.add(id, recycled_++); }

std::size_t UringTransport::recvBurst(std::span<RxSlot> out) noexcept {
    if (out.empty()) return 0;
    if (!enable(rx_, rxEnabled_, rxDeferred_)) return 0;
    // The caller is done with what the previous call handed out.
    for (std::uint16_t id : handedOut_) recycle(id);
    handedOut_.clear();
    std::size_t k = 0;
    while (leftoverPos_ < leftover_.size() && k < out.size()) {
        const Segment& s = leftover_[leftoverPos_++];
        out[k++] = RxSlot{s.data, s.len, s.from};
        if (s.last) handedOut_.push_back(s.buffer);
    }
    if (leftoverPos_ == leftover_.size()) {
        leftover_.clear();
        leftoverPos_ = 0;
    }
    if (recycled_ > 0) {
        io_uring_buf_ring_advance(bufs_.ring, static_cast<int>(recycled_));
        recycled_ = 0;
    }
    if (k > 0) return k;
    if (!armed_ && !arm()) return 0;

    io_uring_cqe* cqe = nullptr;
    unsigned avail = 0;
    __io_uring_peek_cqe(&rx_, &cqe, &avail);
    if (cqe == nullptr) {
        // Completions wait as task work until we enter the kernel; the flag says when there is any.
        const unsigned sqFlags = IO_URING_READ_ONCE(*rx_.sq.kflags);
        if ((sqFlags & (IORING_SQ_TASKRUN | IORING_SQ_CQ_OVERFLOW)) == 0) return 0;
        io_uring_get_events(&rx_);
    }
    std::size_t datagrams = 0;
    while (k < out.size()) {
        __io_uring_peek_cqe(&rx_, &cqe, &avail);
        if (cqe == nullptr) break;
        const int res = cqe->res;
        const unsigned flags = cqe->flags;
        io_uring_cq_advance(&rx_, 1);
        if ((flags & IORING_CQE_F_MORE) == 0) armed_ = false;
        if (res < 0) {
            if (res == -ENOBUFS) ++stats_.rxNoBuffers;  // re-armed once buffers come back
            continue;
        }
        if ((flags & IORING_CQE_F_BUFFER) == 0) continue;
        const auto id = static_cast<std::uint16_t>(flags >> IORING_CQE_BUFFER_SHIFT);
        std::byte* buf = bufs_.buf(id);
        io_uring_recvmsg_out* o = io_uring_recvmsg_validate(buf, res, &tmpl_);
        if (o == nullptr || (o->flags & MSG_TRUNC) != 0 || o->payloadlen > maxPayload_) {
            ++stats_.rxTruncated;
            recycle(id);
            continue;
        }
        sockaddr_in a{};
        std::memcpy(&a, io_uring_recvmsg_name(o), std::min<std::size_t>(sizeof a, o->namelen));
        const Endpoint from{ntohl(a.sin_addr.s_addr), ntohs(a.sin_port)};
        auto* data = static_cast<std::byte*>(io_uring_recvmsg_payload(o, &tmpl_));
        const auto len = static_cast<std::uint32_t>(io_uring_recvmsg_payload_length(o, res, &tmpl_));
        std::uint32_t seg = len;
        if (gro_) {
            for (cmsghdr* c = io_uring_recvmsg_cmsg_firsthdr(o, &tmpl_); c != nullptr; c = io_uring_recvmsg_cmsg_nexthdr(o, &tmpl_, c)) {
                if (c->cmsg_level == SOL_UDP && c->cmsg_type == UDP_GRO) {
                    int gs = 0;
                    std::memcpy(&gs, CMSG_DATA(c), sizeof gs);
                    if (gs > 0) seg = static_cast<std::uint32_t>(gs);
                }
            }
        }
        stats_.rxBytes += len;
        if (len == 0) {
            out[k++] = RxSlot{data, 0, from};
            handedOut_.push_back(id);
            ++datagrams;
            continue;
        }
        // One datagram, or a GRO run of equal-size datagrams (the last may be shorter).
        for (std::uint32_t at = 0; at < len; at += seg) {
            const std::uint32_t n = std::min(seg, len - at);
            const bool last = at + n >= len;
            if (k < out.size()) {
                out[k++] = RxSlot{data + at, n, from};
                if (last) handedOut_.push_back(id);
            } else {
                leftover_.push_back(Segment{data + at, n, from, id, last});
            }
            ++datagrams;
        }
    }
    stats_.rxDatagrams += datagrams;
    if (recycled_ > 0) {
        io_uring_buf_ring_advance(bufs_.ring, static_cast<int>(recycled_));
        recycled_ = 0;
    }
    return k;
}

std::size_t UringTransport::sendBurst(std::span<const TxItem> items) noexcept {
    if (!enable(tx_, txEnabled_, txDeferred_)) {
        ++stats_.txWouldBlock;
        return 0;
    }
    std::size_t done = 0;
    while (done < items.size()) {
        const std::size_t groups = batch_.pack(items.subspan(done), gso_);
        // Linked sends: a refused one cancels the rest, so what left is always a prefix. MSG_DONTWAIT
        // makes a full socket buffer fail the send (-EAGAIN) instead of parking it in the kernel
        // with pointers into the caller's buffers.
        for (std::size_t g = 0; g < groups; ++g) {
            io_uring_sqe* sqe = io_uring_get_sqe(&tx_);
            io_uring_prep_sendmsg(sqe, 0, &batch_.msgs[g].msg_hdr, MSG_DONTWAIT);
            sqe->flags |= IOSQE_FIXED_FILE;
            if (g + 1 < groups) sqe->flags |= IOSQE_IO_LINK;
            sqe->user_data = g;
        }
        const int submitted = io_uring_submit_and_wait(&tx_, static_cast<unsigned>(groups));
        if (submitted < 0) {
            ++stats_.txWouldBlock;
            return done;
        }
        std::fill(results_.begin(), results_.begin() + static_cast<std::ptrdiff_t>(groups), -ECANCELED);
        unsigned head = 0, seen = 0;
        io_uring_cqe* cqe = nullptr;
        io_uring_for_each_cqe(&tx_, head, cqe) {
            if (cqe->user_data < groups) results_[cqe->user_data] = cqe->res;
            ++seen;
        }
        io_uring_cq_advance(&tx_, seen);
        bool stop = false;
        for (std::size_t g = 0; g < groups && !stop; ++g) {
            const int r = results_[g];
            const std::size_t n = batch_.groupItems[g];
            if (r >= 0) {
                for (std::size_t i = 0; i < n; ++i) stats_.txBytes += items[done + i].len;
                stats_.txDatagrams += n;
                done += n;
                continue;
            }
            stop = true;
            if (r == -ECANCELED) break;  // behind a refused send: packed again below
            if (r == -EAGAIN || r == -ENOBUFS) {
                ++stats_.txWouldBlock;
                return done;
            }
            if (gso_ && n > 1 && (r == -EIO || r == -EINVAL || r == -EOPNOTSUPP)) {
                gso_ = false;  // the route or device cannot segment: datagram by datagram from now on
                break;
            }
            stats_.txErrors += n;  // refused outright (no route, too big): counted, reported as taken
            done += n;
        }
    }
    return done;
}

}  // namespace

Status uringSocketsAvailable() {
    static std::once_flag once;
    static Status result;
    std::call_once(once, [] { result = probeUring(); });
    return result;
}

namespace {
Result<std::unique_ptr<Transport>> openUnfiltered(const UdpConfig& cfg, std::vector<std::string>& warnings) {
    if (cfg.api != SocketApi::Uring) return openSyscalls(cfg, warnings);
    if (auto ok = uringSocketsAvailable(); !ok) {
        warnings.push_back("io_uring transport unavailable (" + ok.error().message() + "); using recvmmsg/sendmmsg");
        return openSyscalls(cfg, warnings);
    }
    std::vector<std::string> own;
    auto t = UringTransport::open(cfg, own);
    if (!t) {
        // The socket itself (bind, join) failing is the caller's error; io_uring set-up failing
        // (e.g. locked-memory limits) falls back.
        if (t.error().message().find("io_uring") == std::string::npos) return fail(t.error());
        warnings.push_back("io_uring transport unavailable (" + t.error().message() + "); using recvmmsg/sendmmsg");
        return openSyscalls(cfg, warnings);
    }
    for (auto& w : own) warnings.push_back(std::move(w));
    return std::unique_ptr<Transport>(std::move(*t));
}
}  // namespace

#endif

}  // namespace seqcast::transport
