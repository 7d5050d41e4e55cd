#include "gateway/mold_ingress.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>

#include "gateway/net.h"
#include "transport/transport.h"

namespace seqcast::gateway::mold {

// ---------------------------------------------------------------------------------------------
// Feed state beside the journal

namespace {

std::string hexOf(const Session& s) {
    static const char* d = "0123456789abcdef";
    std::string h;
    for (char c : s.bytes) {
        const auto u = static_cast<unsigned char>(c);
        h += d[u >> 4];
        h += d[u & 15];
    }
    return h;
}

std::optional<Session> sessionOfHex(const std::string& h) {
    if (h.size() != 2 * kSessionLength) return std::nullopt;
    Session s;
    for (std::size_t i = 0; i < kSessionLength; ++i) {
        unsigned v = 0;
        for (int k = 0; k < 2; ++k) {
            const char c = h[2 * i + k];
            unsigned x;
            if (c >= '0' && c <= '9') x = c - '0';
            else if (c >= 'a' && c <= 'f') x = c - 'a' + 10;
            else return std::nullopt;
            v = v * 16 + x;
        }
        s.bytes[i] = static_cast<char>(v);
    }
    return s;
}

}  // namespace

Result<std::optional<FeedState>> readFeedState(const std::string& path) {
    std::ifstream f(path);
    if (!f) {
        if (errno == ENOENT) return std::optional<FeedState>{};
        return failErrno("open " + path);
    }
    std::string magic, version, k1, hex, k2;
    std::uint64_t base = 0;
    f >> magic >> version >> k1 >> hex >> k2 >> base;
    if (!f || magic != "seqcast-mold-ingress" || version != "1" || k1 != "session" || k2 != "base" || base == 0)
        return failInvalid(path + " is not a mold-ingress feed state (seqcast-mold-ingress 1 / session HEX / base N)");
    auto s = sessionOfHex(hex);
    if (!s) return failInvalid(path + ": the session is not 20 hex digits");
    return std::optional<FeedState>{FeedState{*s, base}};
}

Status writeFeedState(const std::string& path, const FeedState& s) {
    const std::string tmp = path + ".tmp";
    const std::string text = "seqcast-mold-ingress 1\nsession " + hexOf(s.session) + "\nbase " + std::to_string(s.base) + "\n";
    const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) return failErrno("create " + tmp);
    const bool ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()) && ::fsync(fd) == 0;
    const int err = errno;
    ::close(fd);
    if (!ok) return failErrno("write " + tmp, err);
    if (::rename(tmp.c_str(), path.c_str()) != 0) return failErrno("rename " + tmp);
    const std::size_t slash = path.rfind('/');
    const std::string dir = slash == std::string::npos ? std::string(".") : slash == 0 ? std::string("/") : path.substr(0, slash);
    const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        (void)::fsync(dfd);
        ::close(dfd);
    }
    return {};
}

// ---------------------------------------------------------------------------------------------
// Ingress

Ingress::Ingress(const IngressOptions& o) : o_(o), session_(o.session), rx_(65536), reqBuf_(kRequestLength) {
    const transport::Endpoint feed = endpointOf("feed", o.feed, false);
    if (!feed.multicast()) throw SetupError("feed", feed.str() + " is not a multicast address (224.0.0.0/4)");
    auto ifAddr = transport::parseIpv4(o.interface);
    if (!ifAddr) throw SetupError("interface", ifAddr.error().message());
    if (o.tracker.maxRequestCount < 1 || o.tracker.maxRequestCount > 0xFFFE)
        throw SetupError("max-request-count", std::to_string(o.tracker.maxRequestCount) + " is not in 1..65534");

    // Where the feed resumes: the journal's next message, numbered from the state beside it.
    TrackerOptions to = o.tracker;
    if (!o.publisher.journal.empty()) {
        statePath_ = o.publisher.journal + ".mold";
        auto st = readFeedState(statePath_);
        if (!st) throw SetupError("journal", st.error().message());
        if (*st) {
            if (session_ && !((**st).session == *session_))
                throw SetupError("session", "the journal " + o.publisher.journal + " follows session '" + (**st).session.str() +
                                                "', not '" + session_->str() + "' (a new session takes a new journal)");
            session_ = (**st).session;
            stateWritten_ = true;
        }
    }
    pub_ = Publisher::create(o.publisher, [this](const Confirmation&) { ++c_.confirmed; });
    if (statePath_.size()) {
        auto st = readFeedState(statePath_);
        if (st && *st) {
            resumedAt_ = (**st).base + pub_->nextPubSeq() - 1;
            to.startSeq = resumedAt_;
        } else if (pub_->nextPubSeq() != 1) {
            throw SetupError("journal", "the journal " + o.publisher.journal + " holds " + std::to_string(pub_->nextPubSeq() - 1) +
                                            " messages but " + statePath_ + " (which feed numbers they are) is missing");
        }
    }
    tracker_ = std::make_unique<FeedTracker>(to, [this](std::uint64_t seq, std::span<const std::byte> m) {
        if (!stateWritten_ && !positionKnown(seq)) return false;  // failure_ says why; nothing is offered
        const OfferResult r = pub_->offer(m);
        if (r == OfferResult::Accepted) return true;
        if (r == OfferResult::BackPressured) {
            ++c_.backPressured;
            return false;
        }
        if (failure_.empty())
            failure_ = r == OfferResult::TooLarge ? "sequence number " + std::to_string(seq) + " holds " + std::to_string(m.size()) +
                                                        " bytes, more than the publisher's --max-message"
                                                  : "the publisher cannot publish: " + pub_->fatalError();
        return false;
    });

    if (!o.requestServer.empty()) {
        const transport::Endpoint rs = endpointOf("request-server", o.requestServer, false);
        if (rs.multicast()) throw SetupError("request-server", rs.str() + " is a multicast address: the request server is unicast");
        server_ = toSockaddr(rs);
    }
    feedFd_ = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (feedFd_ < 0) throw SetupError("feed", sysError("socket"));
    const int one = 1, zero = 0;
    (void)::setsockopt(feedFd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    const int rcv = static_cast<int>(std::min<std::size_t>(o.receiveBuffer, 1u << 30));
    if (::setsockopt(feedFd_, SOL_SOCKET, SO_RCVBUFFORCE, &rcv, sizeof rcv) != 0)
        (void)::setsockopt(feedFd_, SOL_SOCKET, SO_RCVBUF, &rcv, sizeof rcv);  // as much as rmem_max allows
    (void)::setsockopt(feedFd_, IPPROTO_IP, IP_MULTICAST_ALL, &zero, sizeof zero);
    const sockaddr_in fa = toSockaddr(feed);  // bound to the group: only its datagrams arrive here
    if (::bind(feedFd_, reinterpret_cast<const sockaddr*>(&fa), sizeof fa) != 0) {
        const std::string e = sysError("bind " + feed.str());
        ::close(feedFd_);
        throw SetupError("feed", e);
    }
    ip_mreq mr{};
    mr.imr_multiaddr.s_addr = htonl(feed.addr);
    mr.imr_interface.s_addr = htonl(*ifAddr);
    if (::setsockopt(feedFd_, IPPROTO_IP, IP_ADD_MEMBERSHIP, &mr, sizeof mr) != 0) {
        const std::string e = sysError("join " + feed.str() + " on " + o.interface);
        ::close(feedFd_);
        throw SetupError("interface", e);
    }
    if (!o.requestServer.empty()) {
        reqFd_ = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (reqFd_ < 0) {
            const std::string e = sysError("socket");
            ::close(feedFd_);
            throw SetupError("request-server", e);
        }
        if (::setsockopt(reqFd_, SOL_SOCKET, SO_RCVBUFFORCE, &rcv, sizeof rcv) != 0)
            (void)::setsockopt(reqFd_, SOL_SOCKET, SO_RCVBUF, &rcv, sizeof rcv);
        // Not connected: the spec does not say which port answers come from, only that they come
        // to the requester; answers are taken from the request server's address, any port.
    }
}

Ingress::~Ingress() {
    if (feedFd_ >= 0) ::close(feedFd_);
    if (reqFd_ >= 0) ::close(reqFd_);
}

bool Ingress::positionKnown(std::uint64_t seq) {
    // The first message this publisher offers: its number is nextPubSeq(), and it is feed `seq`.
    if (statePath_.empty() || !session_) {
        stateWritten_ = true;
        return true;
    }
    const FeedState s{*session_, seq - (pub_->nextPubSeq() - 1)};
    if (auto r = writeFeedState(statePath_, s); !r) {
        if (failure_.empty()) failure_ = "cannot keep the feed position beside the journal: " + r.error().message();
        return false;
    }
    stateWritten_ = true;
    return true;
}

void Ingress::onDatagram(std::span<const std::byte> bytes, bool answer, std::uint64_t nowNs) {
    ++c_.packets;
    if (answer) ++c_.answers;
    auto p = decodePacket(bytes);
    if (!p) {
        ++c_.malformed;
        return;
    }
    if (!session_) {
        session_ = p->session;
        std::fprintf(stderr, "seqcast mold-ingress: following session '%s'\n", session_->str().c_str());
    }
    if (!(p->session == *session_)) {
        ++c_.foreignSession;
        if (!sessionWarned_) {
            std::fprintf(stderr, "seqcast mold-ingress: packets of session '%s' ignored: this ingress follows '%s'\n",
                         p->session.str().c_str(), session_->str().c_str());
            sessionWarned_ = true;
        }
        return;
    }
    if (p->endOfSession()) ++c_.endOfSession;
    else if (p->heartbeat()) ++c_.heartbeats;
    else ++c_.dataPackets;
    tracker_->onPacket(*p, answer, nowNs);
}

int Ingress::receive(int fd, bool answer, std::uint64_t nowNs) {
    int work = 0;
    for (; work < 64 && failure_.empty(); ++work) {
        sockaddr_in from{};
        socklen_t flen = sizeof from;
        const ssize_t n = ::recvfrom(fd, rx_.data(), rx_.size(), MSG_TRUNC, reinterpret_cast<sockaddr*>(&from), &flen);
        if (n < 0) break;  // EAGAIN
        if (answer && from.sin_addr.s_addr != server_.sin_addr.s_addr) {
            ++c_.strangers;  // not from the request server
            continue;
        }
        if (static_cast<std::size_t>(n) > rx_.size()) {
            ++c_.packets;
            ++c_.malformed;
            continue;
        }
        onDatagram(std::span<const std::byte>(rx_.data(), static_cast<std::size_t>(n)), answer, nowNs);
    }
    return work;
}

int Ingress::doWork(std::uint64_t nowNs) {
    int work = pub_->doWork(nowNs);
    if (!pub_->fatalError().empty() && failure_.empty()) failure_ = "the publisher cannot publish: " + pub_->fatalError();
    if (!failure_.empty()) return work;
    work += static_cast<int>(tracker_->drain(nowNs));
    work += receive(feedFd_, false, nowNs);
    if (reqFd_ >= 0) {
        work += receive(reqFd_, true, nowNs);
        tracker_->requests(nowNs, ranges_);
        for (const auto& r : ranges_) {
            (void)encodeRequest(reqBuf_, *session_, r.seq, r.count);
            if (::sendto(reqFd_, reqBuf_.data(), kRequestLength, 0, reinterpret_cast<const sockaddr*>(&server_), sizeof server_) ==
                static_cast<ssize_t>(kRequestLength))
                ++c_.requestPackets;
            else ++c_.sendErrors;  // asked again at the next retry
            ++work;
        }
    }
    if (failure_.empty()) failure_ = tracker_->stalled(nowNs);
    return work;
}

void Ingress::wait(std::uint32_t maxUs) {
    pollfd pf[2] = {{feedFd_, POLLIN, 0}, {reqFd_, POLLIN, 0}};
    (void)::poll(pf, reqFd_ >= 0 ? 2 : 1, static_cast<int>(std::min<std::uint32_t>((maxUs + 999) / 1000, 1)));
}

bool Ingress::finished() const noexcept { return tracker_->complete() && pub_->unconfirmed() == 0; }

}  // namespace seqcast::gateway::mold
