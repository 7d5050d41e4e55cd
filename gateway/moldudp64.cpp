#include "gateway/moldudp64.h"

#include <cstring>

namespace seqcast::gateway::mold {

namespace {

void putBe(std::byte* p, std::uint64_t v, std::size_t n) noexcept {
    for (std::size_t i = 0; i < n; ++i) p[i] = static_cast<std::byte>(v >> (8 * (n - 1 - i)));
}
std::uint64_t getBe(const std::byte* p, std::size_t n) noexcept {
    std::uint64_t v = 0;
    for (std::size_t i = 0; i < n; ++i) v = (v << 8) | static_cast<std::uint64_t>(p[i]);
    return v;
}

std::size_t header(std::span<std::byte> out, const Session& s, std::uint64_t seq, std::uint16_t count) noexcept {
    if (out.size() < kHeaderLength) return 0;
    std::memcpy(out.data(), s.bytes.data(), kSessionLength);
    putBe(out.data() + 10, seq, 8);
    putBe(out.data() + 18, count, 2);
    return kHeaderLength;
}

Session sessionAt(const std::byte* p) noexcept {
    Session s;
    std::memcpy(s.bytes.data(), p, kSessionLength);
    return s;
}

}  // namespace

Result<Session> Session::parse(std::string_view name) {
    if (name.empty() || name.size() > kSessionLength)
        return failInvalid("a MoldUDP64 session is 1.." + std::to_string(kSessionLength) + " characters, not " +
                           std::to_string(name.size()));
    Session s;
    s.bytes.fill(' ');
    for (std::size_t i = 0; i < name.size(); ++i) {
        const unsigned char c = static_cast<unsigned char>(name[i]);
        if (c < 0x21 || c > 0x7E) return failInvalid("a MoldUDP64 session is printable ASCII without spaces");
        s.bytes[i] = name[i];
    }
    return s;
}

std::string Session::str() const {
    std::string s(bytes.data(), bytes.size());
    while (!s.empty() && s.back() == ' ') s.pop_back();
    return s;
}

void PacketWriter::begin(std::uint64_t seq) noexcept {
    seq_ = seq;
    count_ = 0;
    used_ = out_.size() >= kHeaderLength ? kHeaderLength : 0;
}

std::size_t PacketWriter::maxMessage() const noexcept {
    if (out_.size() < kHeaderLength + 2) return 0;
    const std::size_t room = out_.size() - kHeaderLength - 2;
    return room < kMaxMessage ? room : kMaxMessage;
}

bool PacketWriter::append(std::span<const std::byte> message) noexcept {
    if (used_ == 0 || message.size() > kMaxMessage || count_ >= kEndOfSessionCount - 1) return false;
    if (out_.size() - used_ < 2 + message.size()) return false;
    putBe(out_.data() + used_, message.size(), 2);
    if (!message.empty()) std::memcpy(out_.data() + used_ + 2, message.data(), message.size());
    used_ += 2 + message.size();
    ++count_;
    return true;
}

std::size_t PacketWriter::finish() noexcept {
    if (used_ == 0) return 0;
    header(out_, session_, seq_, count_);
    return used_;
}

std::size_t encodeHeartbeat(std::span<std::byte> out, const Session& s, std::uint64_t nextSeq) noexcept {
    return header(out, s, nextSeq, kHeartbeatCount);
}
std::size_t encodeEndOfSession(std::span<std::byte> out, const Session& s, std::uint64_t nextSeq) noexcept {
    return header(out, s, nextSeq, kEndOfSessionCount);
}
std::size_t encodeRequest(std::span<std::byte> out, const Session& s, std::uint64_t seq, std::uint16_t count) noexcept {
    return header(out, s, seq, count);
}

Result<Packet> decodePacket(std::span<const std::byte> bytes) {
    if (bytes.size() < kHeaderLength)
        return failInvalid("MoldUDP64 packet of " + std::to_string(bytes.size()) + " bytes: shorter than its 20-byte header");
    Packet p;
    p.session = sessionAt(bytes.data());
    p.seq = getBe(bytes.data() + 10, 8);
    p.count = static_cast<std::uint16_t>(getBe(bytes.data() + 18, 2));
    p.blocks = bytes.subspan(kHeaderLength);
    if (p.heartbeat() || p.endOfSession()) {
        if (!p.blocks.empty())
            return failInvalid("MoldUDP64 " + std::string(p.heartbeat() ? "heartbeat" : "end of session") + " with " +
                               std::to_string(p.blocks.size()) + " bytes after its header");
        return p;
    }
    std::span<const std::byte> rest = p.blocks;
    for (std::uint32_t i = 0; i < p.count; ++i) {
        if (rest.size() < 2)
            return failInvalid("MoldUDP64 packet ends inside message " + std::to_string(i + 1) + " of " + std::to_string(p.count));
        const std::size_t len = getBe(rest.data(), 2);
        if (rest.size() - 2 < len)
            return failInvalid("MoldUDP64 message " + std::to_string(i + 1) + " of " + std::to_string(p.count) + " claims " +
                               std::to_string(len) + " bytes; " + std::to_string(rest.size() - 2) + " remain");
        rest = rest.subspan(2 + len);
    }
    if (!rest.empty())
        return failInvalid("MoldUDP64 packet has " + std::to_string(rest.size()) + " bytes after its " + std::to_string(p.count) +
                           " messages");
    return p;
}

bool MessageIterator::next(std::span<const std::byte>& message) noexcept {
    if (rest_.size() < 2) return false;
    const std::size_t len = getBe(rest_.data(), 2);
    if (rest_.size() - 2 < len) return false;  // (decodePacket has refused such a packet)
    message = rest_.subspan(2, len);
    rest_ = rest_.subspan(2 + len);
    return true;
}

Result<Request> decodeRequest(std::span<const std::byte> bytes) {
    if (bytes.size() != kRequestLength)
        return failInvalid("MoldUDP64 request of " + std::to_string(bytes.size()) + " bytes: a request is exactly 20");
    Request r;
    r.session = sessionAt(bytes.data());
    r.seq = getBe(bytes.data() + 10, 8);
    r.count = static_cast<std::uint16_t>(getBe(bytes.data() + 18, 2));
    return r;
}

}  // namespace seqcast::gateway::mold
