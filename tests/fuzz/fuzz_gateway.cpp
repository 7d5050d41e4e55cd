// libFuzzer target: the gateways' parsers and the MoldUDP64 ingress's feed tracker. The first byte
// picks what the rest feeds:
//   0  MoldUDP64 decodePacket / decodeRequest (and the message iterator over a decoded packet);
//   1  SoupBinTCP parseLogin, the Framer fed in chunks, and a users file;
//   2  the FeedTracker driven by a program of packets (sequence numbers, counts, answers,
//      back-pressure, time): what it delivers must be every number from the start, once, in order,
//      and every range it asks for must lie between what it has delivered and the feed's head.
// Bad input must end as a refusal: a crash, UB or a broken invariant is a bug.
// Built and run by tests/fuzz/run_fuzz.sh.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "gateway/mold_ingress.h"
#include "gateway/moldudp64.h"
#include "gateway/soupbintcp.h"
#include "tests/fuzz/fuzz_input.h"

using namespace seqcast;
using namespace seqcast::gateway;

namespace {

void moldParsers(std::span<const std::byte> b) {
    if (auto p = mold::decodePacket(b)) {
        mold::MessageIterator it(*p);
        std::span<const std::byte> m;
        std::size_t n = 0;
        while (it.next(m)) {
            FUZZ_CHECK(m.data() >= b.data() && m.data() + m.size() <= b.data() + b.size());
            ++n;
        }
        FUZZ_CHECK(p->endOfSession() || n == p->count);
    }
    if (auto r = mold::decodeRequest(b)) FUZZ_CHECK(b.size() == mold::kRequestLength);
}

void soupParsers(fuzz::Input& in, std::span<const std::byte> all) {
    if (auto l = soup::parseLogin(all)) {
        FUZZ_CHECK(all.size() == soup::kLoginPayload);
        FUZZ_CHECK(l->username.size() <= soup::kUsernameLength && l->password.size() <= soup::kPasswordLength);
    }
    soup::Framer f(1 + in.u16() % 200);
    while (!in.done()) {
        f.feed(in.bytes(1 + in.u8() % 64));
        soup::Framer::Packet p;
        while (f.next(p)) FUZZ_CHECK(p.payload.size() <= 200);
        if (!f.error().empty()) break;
    }
    const std::string text(reinterpret_cast<const char*>(all.data()), all.size());
    if (auto u = soup::parseUsers(text, "fuzz")) {
        for (const auto& [name, pw] : u->byName) FUZZ_CHECK(u->check(name, pw));
    }
}

void tracker(fuzz::Input& in) {
    static const mold::Session session = *mold::Session::parse("FUZZ");
    mold::TrackerOptions o;
    o.startSeq = in.u8() % 4;  // 0: the first seen
    o.maxHeldBytes = 1 + in.u16() % 512;
    o.maxRequestCount = static_cast<std::uint16_t>(1 + in.u8() % 20);
    o.maxRequestsPerRound = 1 + in.u8() % 8;
    o.retryNs = 1 + in.u8() % 50;
    o.deadlineNs = 1 + in.u16();
    bool accept = true;
    std::uint64_t first = 0, expect = 0, now = 1;
    mold::FeedTracker t(o, [&](std::uint64_t seq, std::span<const std::byte> m) {
        if (!accept) return false;
        if (first == 0) {
            first = expect = seq;
            FUZZ_CHECK(o.startSeq == 0 || seq == o.startSeq);  // nothing before the start, nothing skipped
        }
        FUZZ_CHECK(seq == expect);
        // Each message holds its own sequence number (below): what is delivered is what was sent.
        std::uint64_t got = 0;
        for (std::size_t i = 0; i < m.size() && i < 8; ++i) got |= std::to_integer<std::uint64_t>(m[i]) << (8 * i);
        FUZZ_CHECK(got == seq);
        ++expect;
        return true;
    });
    std::vector<std::byte> buf(1400);
    std::vector<mold::FeedTracker::Range> ranges;
    for (int ops = 0; ops < 400 && !in.done(); ++ops) {
        now += in.u8();
        const std::uint8_t op = in.u8() % 8;
        if (op <= 4) {  // a data packet
            const std::uint64_t seq = 1 + in.u8();
            const unsigned count = 1 + in.u8() % 12;
            mold::PacketWriter w(session, buf);
            w.begin(seq);
            for (unsigned k = 0; k < count; ++k) {
                std::byte m[8];
                for (int i = 0; i < 8; ++i) m[i] = static_cast<std::byte>((seq + k) >> (8 * i));
                FUZZ_CHECK(w.append(m));
            }
            const std::size_t len = w.finish();
            auto p = mold::decodePacket(std::span<const std::byte>(buf.data(), len));
            FUZZ_CHECK(p.has_value());
            t.onPacket(*p, op == 4, now);
        } else if (op == 5) {  // a heartbeat or end of session
            const std::uint64_t seq = 1 + in.u8();
            const std::size_t len = in.u8() % 2 ? mold::encodeHeartbeat(buf, session, seq) : mold::encodeEndOfSession(buf, session, seq);
            auto p = mold::decodePacket(std::span<const std::byte>(buf.data(), len));
            FUZZ_CHECK(p.has_value());
            t.onPacket(*p, false, now);
        } else if (op == 6) {
            accept = !accept;
            (void)t.drain(now);
        } else {
            t.requests(now, ranges);
            FUZZ_CHECK(ranges.size() <= o.maxRequestsPerRound);
            for (const auto& r : ranges) {
                FUZZ_CHECK(r.count >= 1 && r.count <= o.maxRequestCount);
                FUZZ_CHECK(r.seq >= t.next() && r.seq + r.count <= t.head());
            }
            (void)t.stalled(now);
        }
        FUZZ_CHECK(t.next() == 0 || first == 0 || t.next() == expect);
        // The next in line may exceed it by one message.
        FUZZ_CHECK(t.heldBytes() <= o.maxHeldBytes + 8 + mold::FeedTracker::kHeldOverhead);
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size == 0) return 0;
    const std::span<const std::byte> rest(reinterpret_cast<const std::byte*>(data + 1), size - 1);
    fuzz::Input in(data + 1, size - 1);
    switch (data[0] % 3) {
        case 0: moldParsers(rest); break;
        case 1: soupParsers(in, rest); break;
        default: tracker(in); break;
    }
    return 0;
}
