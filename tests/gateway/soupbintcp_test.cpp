// SoupBinTCP 3.00 framing (gateway/soupbintcp): packets split and merged anywhere, broken lengths,
// the login request (padding either way, bad sequence numbers), login accepted and rejected as
// sent, and the users file (format, limits, mode 600, constant-time check).
#include <doctest/doctest.h>

#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include "gateway/soupbintcp.h"

using namespace seqcast::gateway::soup;

namespace {

std::vector<std::byte> bytes(std::string_view s) {
    std::vector<std::byte> b(s.size());
    for (std::size_t i = 0; i < s.size(); ++i) b[i] = static_cast<std::byte>(s[i]);
    return b;
}
std::string text(std::span<const std::byte> b) { return {reinterpret_cast<const char*>(b.data()), b.size()}; }

}  // namespace

TEST_CASE("packets come out whole however the stream is cut") {
    std::vector<std::byte> stream;
    appendPacket(stream, 'S', bytes("hello"));
    appendPacket(stream, 'H');
    appendPacket(stream, 'S', bytes(std::string(300, 'x')));
    appendPacket(stream, 'Z');
    for (std::size_t cut = 1; cut <= stream.size(); ++cut) {
        Framer f;
        std::vector<std::string> got;
        std::string types;
        for (std::size_t at = 0; at < stream.size(); at += cut) {
            f.feed(std::span<const std::byte>(stream).subspan(at, std::min(cut, stream.size() - at)));
            Framer::Packet p;
            while (f.next(p)) {
                types += p.type;
                got.push_back(text(p.payload));
            }
        }
        REQUIRE(f.error().empty());
        CHECK(types == "SHSZ");
        REQUIRE(got.size() == 4);
        CHECK(got[0] == "hello");
        CHECK(got[2] == std::string(300, 'x'));
        CHECK(f.buffered() == 0);
    }
}

TEST_CASE("a zero length or an oversized packet breaks the stream, named") {
    Framer f;
    f.feed(bytes(std::string("\0\0", 2)));
    Framer::Packet p;
    CHECK(!f.next(p));
    CHECK(f.error().find("length 0") != std::string::npos);

    Framer small(46);
    small.feed(bytes(std::string("\x01\x00", 2)));  // 256 bytes: type + 255
    CHECK(!small.next(p));
    CHECK(small.error().find("255 payload bytes") != std::string::npos);
}

TEST_CASE("login request: round trip, either padding, bad sequence numbers refused") {
    auto pkt = encodeLogin("alice", "secret1", "", 42);
    REQUIRE(pkt.size() == 3 + kLoginPayload);
    CHECK(text(std::span<const std::byte>(pkt).subspan(0, 3)) == std::string("\0/L", 3));
    auto r = parseLogin(std::span<const std::byte>(pkt).subspan(3));
    REQUIRE(r);
    CHECK(r->username == "alice");
    CHECK(r->password == "secret1");
    CHECK(r->session.empty());
    CHECK(r->sequence == 42);

    // Session right-justified, sequence left-justified: both read the same.
    const std::string other = "bob   " "pw2       " "     SESS1" "7                   ";
    r = parseLogin(bytes(other));
    REQUIRE(r);
    CHECK(r->session == "SESS1");
    CHECK(r->sequence == 7);

    auto login = [](std::string seq) {
        return "bob   " "pw2       " "          " + std::string(20 - seq.size(), ' ') + seq;
    };
    CHECK(parseLogin(bytes(login("0")))->sequence == 0);
    CHECK(parseLogin(bytes(login("18446744073709551615")))->sequence == ~std::uint64_t{0});
    CHECK(!parseLogin(bytes(login("18446744073709551616"))));  // 2^64
    CHECK(!parseLogin(bytes(login("99999999999999999999"))));
    CHECK(!parseLogin(bytes(login("-1"))));
    CHECK(!parseLogin(bytes(login("12a"))));
    CHECK(!parseLogin(bytes(login(""))));
    CHECK(!parseLogin(bytes(login("1 2"))));
    CHECK(!parseLogin(bytes(login("1").substr(1))));  // 45 bytes
    CHECK(!parseLogin(bytes(login("1") + " ")));       // 47 bytes
    std::string ctl = login("1");
    ctl[2] = '\x01';
    CHECK(!parseLogin(bytes(ctl)));
}

TEST_CASE("login accepted and rejected as the spec lays them out") {
    std::vector<std::byte> out;
    appendLoginAccepted(out, "SESS1", 1234);
    CHECK(text(out) == std::string("\0\x1f" "A" "     SESS1" "                1234", 33));
    out.clear();
    appendLoginRejected(out, 'A');
    CHECK(text(out) == std::string("\0\x02JA", 4));
}

TEST_CASE("users: format and limits") {
    auto u = parseUsers("# comment\nalice secret1\n\nbob pw2 # trailing\n", "t");
    REQUIRE(u);
    CHECK(u->byName.size() == 2);
    CHECK(u->check("alice", "secret1"));
    CHECK(!u->check("alice", "secret"));
    CHECK(!u->check("alice", "secret12"));
    CHECK(!u->check("bob", "secret1"));
    CHECK(!u->check("carol", "pw2"));
    CHECK(!u->check("", ""));
    CHECK(!parseUsers("alice\n", "t"));
    CHECK(!parseUsers("alice a b\n", "t"));
    CHECK(!parseUsers("toolong7 pw\n", "t"));
    CHECK(!parseUsers("alice 12345678901\n", "t"));
    CHECK(!parseUsers("alice a\nalice b\n", "t"));
    CHECK(!parseUsers("# nobody\n", "t"));
}

TEST_CASE("users file: refused unless group and others have no access") {
    char dir[] = "/tmp/seqcast_soup_users_XXXXXX";
    REQUIRE(::mkdtemp(dir) != nullptr);
    const std::string path = std::string(dir) + "/users";
    std::ofstream(path) << "alice secret1\n";
    REQUIRE(::chmod(path.c_str(), 0644) == 0);
    auto r = loadUsers(path);
    REQUIRE(!r);
    CHECK(r.error().message().find("mode 644") != std::string::npos);
    REQUIRE(::chmod(path.c_str(), 0600) == 0);
    r = loadUsers(path);
    REQUIRE(r);
    CHECK(r->check("alice", "secret1"));
    CHECK(!loadUsers(std::string(dir) + "/none"));
    CHECK(!loadUsers(dir));  // a directory
    ::unlink(path.c_str());
    ::rmdir(dir);
}
