// MoldUDP64 framing (gateway/moldudp64) and the ITCH 5.0 generator (gateway/itch): exact bytes,
// round trips, limits, and every malformed packet refused with a reason.
#include <doctest/doctest.h>

#include <initializer_list>
#include <map>
#include <string>
#include <vector>

#include "gateway/itch.h"
#include "gateway/moldudp64.h"

using namespace seqcast::gateway;

namespace {

std::vector<std::byte> bytes(const std::string& s) {
    std::vector<std::byte> b;
    for (char c : s) b.push_back(static_cast<std::byte>(c));
    return b;
}
std::vector<std::byte> msg(std::size_t n, unsigned seed) {
    std::vector<std::byte> b(n);
    for (std::size_t i = 0; i < n; ++i) b[i] = static_cast<std::byte>((seed * 31 + i) & 0xFF);
    return b;
}
const mold::Session kSession = *mold::Session::parse("SESSION1");

}  // namespace

TEST_CASE("session names: 1..10 printable characters, space-padded on the wire") {
    auto s = mold::Session::parse("NASDAQ");
    REQUIRE(s);
    CHECK(std::string(s->bytes.data(), 10) == "NASDAQ    ");
    CHECK(s->str() == "NASDAQ");
    CHECK(mold::Session::parse("0123456789"));
    CHECK_FALSE(mold::Session::parse(""));
    CHECK_FALSE(mold::Session::parse("01234567890"));
    CHECK_FALSE(mold::Session::parse("A B"));
    CHECK_FALSE(mold::Session::parse(std::string("A\0B", 3)));
}

TEST_CASE("a downstream packet, byte for byte") {
    std::vector<std::byte> buf(100);
    mold::PacketWriter w(kSession, buf);
    w.begin(0x0102030405060708ull);
    REQUIRE(w.append(bytes("ab")));
    REQUIRE(w.append(bytes("")));
    REQUIRE(w.append(bytes("xyz")));
    const std::size_t n = w.finish();
    const std::vector<std::byte> want = [] {
        std::vector<std::byte> v = bytes("SESSION1  ");
        for (int b : std::initializer_list<int>{1, 2, 3, 4, 5, 6, 7, 8, 0, 3, 0, 2, 'a', 'b', 0, 0, 0, 3, 'x', 'y', 'z'}) v.push_back(static_cast<std::byte>(b));
        return v;
    }();
    REQUIRE(n == want.size());
    CHECK(std::vector<std::byte>(buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(n)) == want);
    auto p = mold::decodePacket(want);
    REQUIRE(p);
    CHECK(p->session == kSession);
    CHECK(p->seq == 0x0102030405060708ull);
    CHECK(p->count == 3);
    mold::MessageIterator it(*p);
    std::span<const std::byte> m;
    std::vector<std::string> got;
    while (it.next(m)) got.emplace_back(reinterpret_cast<const char*>(m.data()), m.size());
    CHECK(got == std::vector<std::string>{"ab", "", "xyz"});
}

TEST_CASE("packing to the packet size: what does not fit is refused and the packet stays as it was") {
    std::vector<std::byte> buf(1400);
    mold::PacketWriter w(kSession, buf);
    w.begin(7);
    std::vector<std::vector<std::byte>> sent;
    for (unsigned i = 0;; ++i) {
        auto m = msg(30 + (i * 37) % 200, i);
        const std::size_t before = w.length();
        if (!w.append(m)) {
            CHECK(w.length() == before);
            CHECK(before + 2 + m.size() > 1400);
            break;
        }
        sent.push_back(m);
    }
    const std::size_t n = w.finish();
    CHECK(n <= 1400);
    auto p = mold::decodePacket(std::span<const std::byte>(buf.data(), n));
    REQUIRE(p);
    CHECK(p->count == sent.size());
    mold::MessageIterator it(*p);
    std::span<const std::byte> m;
    std::size_t k = 0;
    while (it.next(m)) {
        REQUIRE(k < sent.size());
        CHECK(std::vector<std::byte>(m.begin(), m.end()) == sent[k++]);
    }
    CHECK(k == sent.size());
    CHECK(w.maxMessage() == 1400 - 22);
}

TEST_CASE("limits: a 65535-byte message fits a big packet, 65536 never; at most 65534 messages") {
    std::vector<std::byte> buf(200000);
    mold::PacketWriter w(kSession, buf);
    w.begin(1);
    CHECK(w.append(msg(65535, 1)));
    CHECK_FALSE(w.append(msg(65536, 2)));
    w.begin(1);
    std::size_t n = 0;
    while (w.append({})) ++n;
    CHECK(n == 65534);  // 65535 would read as an end of session
    auto p = mold::decodePacket(std::span<const std::byte>(buf.data(), w.finish()));
    REQUIRE(p);
    CHECK(p->count == 65534);
    std::vector<std::byte> small(10);
    mold::PacketWriter tiny(kSession, small);
    tiny.begin(1);
    CHECK_FALSE(tiny.append(msg(1, 1)));
    CHECK(tiny.finish() == 0);
}

TEST_CASE("heartbeat, end of session and request packets") {
    std::vector<std::byte> b(20);
    REQUIRE(mold::encodeHeartbeat(b, kSession, 42) == 20);
    auto hb = mold::decodePacket(b);
    REQUIRE(hb);
    CHECK(hb->heartbeat());
    CHECK(hb->seq == 42);
    REQUIRE(mold::encodeEndOfSession(b, kSession, 43) == 20);
    auto eos = mold::decodePacket(b);
    REQUIRE(eos);
    CHECK(eos->endOfSession());
    CHECK(eos->seq == 43);
    mold::MessageIterator none(*eos);
    std::span<const std::byte> m;
    CHECK_FALSE(none.next(m));
    REQUIRE(mold::encodeRequest(b, kSession, 1000, 25) == 20);
    auto r = mold::decodeRequest(b);
    REQUIRE(r);
    CHECK(r->session == kSession);
    CHECK(r->seq == 1000);
    CHECK(r->count == 25);
    std::vector<std::byte> shortBuf(19);
    CHECK(mold::encodeHeartbeat(shortBuf, kSession, 1) == 0);
}

TEST_CASE("malformed packets are refused, each with its reason") {
    std::vector<std::byte> good(100);
    mold::PacketWriter w(kSession, good);
    w.begin(5);
    REQUIRE(w.append(bytes("hello")));
    REQUIRE(w.append(bytes("world!")));
    good.resize(w.finish());
    REQUIRE(mold::decodePacket(good));
    auto reason = [](std::vector<std::byte> b) {
        auto p = mold::decodePacket(b);
        return p ? std::string("(accepted)") : p.error().message();
    };
    CHECK(reason(std::vector<std::byte>(good.begin(), good.begin() + 19)).find("shorter than its 20-byte header") != std::string::npos);
    CHECK(reason(std::vector<std::byte>(good.begin(), good.end() - 1)).find("claims 6 bytes") != std::string::npos);
    CHECK(reason(std::vector<std::byte>(good.begin(), good.begin() + 28)).find("ends inside message 2") != std::string::npos);
    auto extra = good;
    extra.push_back(std::byte{0});
    CHECK(reason(extra).find("1 bytes after its 2 messages") != std::string::npos);
    auto more = good;
    more[19] = std::byte{3};  // says 3 messages, holds 2
    CHECK(reason(more).find("ends inside message 3") != std::string::npos);
    std::vector<std::byte> hb(20);
    mold::encodeHeartbeat(hb, kSession, 1);
    hb.push_back(std::byte{1});
    CHECK(reason(hb).find("heartbeat with 1 bytes") != std::string::npos);
    CHECK_FALSE(mold::decodeRequest(std::vector<std::byte>(19)));
    CHECK_FALSE(mold::decodeRequest(std::vector<std::byte>(21)));
}

TEST_CASE("ITCH 5.0 generator: lengths by type, a consistent book, a realistic mix, deterministic") {
    itch::Generator g(7), again(7);
    std::map<char, int> types;
    std::map<std::uint64_t, std::uint32_t> book;  // order reference -> open shares, as the messages tell it
    std::uint64_t lastTs = 0;
    auto be = [](const std::vector<std::byte>& m, std::size_t at, std::size_t n) {
        std::uint64_t v = 0;
        for (std::size_t i = 0; i < n; ++i) v = (v << 8) | static_cast<std::uint64_t>(m[at + i]);
        return v;
    };
    for (int i = 0; i < 20000; ++i) {
        const std::uint64_t ts = 34'200'000'000'000ull + static_cast<std::uint64_t>(i) * 1000;
        const auto m = g.next(ts);
        CHECK(again.next(ts) == m);
        itch::Header h;
        REQUIRE(itch::decodeHeader(m, h));
        REQUIRE(itch::lengthOf(h.type) != 0);
        REQUIRE(m.size() == itch::lengthOf(h.type));
        CHECK(h.timestampNs == ts);
        CHECK(h.timestampNs >= lastTs);
        lastTs = h.timestampNs;
        ++types[h.type];
        const std::uint64_t ref = be(m, 11, 8);
        if (h.type == 'A') {
            CHECK(book.count(ref) == 0);
            book[ref] = static_cast<std::uint32_t>(be(m, 20, 4));
            CHECK((m[19] == std::byte{'B'} || m[19] == std::byte{'S'}));
            CHECK(be(m, 32, 4) > 0);  // a price
        } else if (h.type == 'E' || h.type == 'X') {
            REQUIRE(book.count(ref) == 1);  // refers to an open order
            const auto n = static_cast<std::uint32_t>(be(m, 19, 4));
            CHECK(n > 0);
            REQUIRE(n <= book[ref]);
            if ((book[ref] -= n) == 0) book.erase(ref);
        } else {
            CHECK(h.type == 'P');
            CHECK(book.count(ref) == 0);
        }
    }
    CHECK(book.size() == g.openOrders());
    CHECK(types['A'] > 7000);
    CHECK(types['E'] > 2000);
    CHECK(types['X'] > 2000);
    CHECK(types['P'] > 1000);
    CHECK(itch::lengthOf('Z') == 0);
}
