// Authenticated frames: key files, signing and checking over the memory network, every single-bit
// alteration caught, unknown keys and unsigned senders dropped, key rotation by id with a reload.
#include <doctest/doctest.h>

#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "transport/auth_transport.h"
#include "transport/memory_transport.h"

using namespace seqcast;
using namespace seqcast::transport;

namespace {

const std::string kKey1 = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
const std::string kKey2 = "ff0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

struct KeyFile {
    std::string path;
    explicit KeyFile(const std::string& text, mode_t mode = 0600) {
        char tmpl[] = "/tmp/seqcast-keys-XXXXXX";
        const int fd = ::mkstemp(tmpl);
        REQUIRE(fd >= 0);
        ::close(fd);
        path = tmpl;
        write(text, mode);
    }
    void write(const std::string& text, mode_t mode = 0600) const {
        std::ofstream(path, std::ios::trunc) << text;
        ::chmod(path.c_str(), mode);
    }
    ~KeyFile() { ::unlink(path.c_str()); }
};

std::vector<std::byte> bytes(std::size_t n, unsigned seed) {
    std::vector<std::byte> v(n);
    for (std::size_t i = 0; i < n; ++i) v[i] = static_cast<std::byte>((i * 31 + seed) & 0xFF);
    return v;
}

// Receives everything waiting; returns the payloads.
std::vector<std::vector<std::byte>> drain(Transport& t) {
    std::vector<std::vector<std::byte>> got;
    std::array<RxSlot, 64> slots{};
    for (std::size_t n; (n = t.recvBurst(slots)) != 0;)
        for (std::size_t i = 0; i < n; ++i) got.emplace_back(slots[i].data, slots[i].data + slots[i].len);
    return got;
}

}  // namespace

TEST_SUITE("quick") {

TEST_CASE("key files: format, permissions, ids") {
    KeyFile good("# keys\n1 " + kKey1 + "\n\n7 " + kKey2 + "  # the new one\n");
    auto k = loadAuthKeys(AuthConfig{good.path});
    REQUIRE(k);
    CHECK(k->keys.size() == 2);
    CHECK(k->sendId == 7);
    CHECK(loadAuthKeys(AuthConfig{good.path, 1})->sendId == 1);
    auto missing = loadAuthKeys(AuthConfig{good.path, 3});
    REQUIRE_FALSE(missing);
    CHECK(missing.error().message().find("no key with id 3") != std::string::npos);

    struct Bad {
        std::string text;
        mode_t mode;
        const char* says;
    };
    for (const Bad& b : {Bad{"1 " + kKey1 + "\n", 0644, "chmod 600"}, Bad{"1 " + kKey1 + "\n", 0640, "chmod 600"},
                         Bad{"1 " + kKey1.substr(2) + "\n", 0600, "64 hex digits"}, Bad{"1 " + kKey1 + "zz\n", 0600, "64 hex digits"},
                         Bad{"0 " + kKey1 + "\n", 0600, "1..4294967295"}, Bad{"x " + kKey1 + "\n", 0600, "is not a number"},
                         Bad{"99999999999 " + kKey1 + "\n", 0600, "is not a number"}, Bad{"1\n", 0600, "expected 'ID HEXKEY'"},
                         Bad{"1 " + kKey1 + " extra\n", 0600, "expected 'ID HEXKEY'"},
                         Bad{"1 " + kKey1 + "\n1 " + kKey2 + "\n", 0600, "appears twice"}, Bad{"# nothing\n", 0600, "no keys"}}) {
        KeyFile f(b.text, b.mode);
        auto r = loadAuthKeys(AuthConfig{f.path});
        INFO(b.text << " mode " << b.mode);
        REQUIRE_FALSE(r);
        CHECK(r.error().message().find(b.says) != std::string::npos);
    }
    CHECK_FALSE(loadAuthKeys(AuthConfig{"/nonexistent/keys"}));
    CHECK_FALSE(loadAuthKeys(AuthConfig{"/tmp"}));
}

TEST_CASE("signed datagrams pass; altered, unsigned and unknown-key ones are dropped and counted") {
    KeyFile f("1 " + kKey1 + "\n");
    MemoryNetwork net;
    const Endpoint a{0x0A000001u, 1}, b{0x0A000002u, 2};
    Counters ca, cb;
    AuthTransport ta(std::make_unique<MemoryTransport>(net, a), AuthConfig{f.path}, *loadAuthKeys(AuthConfig{f.path}), &ca);
    AuthTransport tb(std::make_unique<MemoryTransport>(net, b), AuthConfig{f.path}, *loadAuthKeys(AuthConfig{f.path}), &cb);
    MemoryTransport sniffer(net, Endpoint{0x0A000003u, 3});
    MemoryTransport plain(net, Endpoint{0x0A000004u, 4});

    // Round trip: the receiver sees exactly what was sent, the trailer stripped.
    std::vector<std::vector<std::byte>> msgs;
    for (unsigned i = 0; i < 20; ++i) msgs.push_back(bytes(48 + i * 70, i));
    std::vector<TxItem> items;
    for (const auto& m : msgs) items.push_back(TxItem{m.data(), static_cast<std::uint32_t>(m.size()), b});
    REQUIRE(ta.sendBurst(items) == items.size());
    CHECK(drain(tb) == msgs);
    CHECK(tb.authStats().verified == msgs.size());

    // On the wire: the datagram, then the key id and the MAC.
    const TxItem toSniffer{msgs[0].data(), static_cast<std::uint32_t>(msgs[0].size()), Endpoint{0x0A000003u, 3}};
    REQUIRE(ta.sendBurst(std::span<const TxItem>(&toSniffer, 1)) == 1);
    auto wire = drain(sniffer);
    REQUIRE(wire.size() == 1);
    REQUIRE(wire[0].size() == msgs[0].size() + kAuthTrailer);
    CHECK(std::equal(msgs[0].begin(), msgs[0].end(), wire[0].begin()));
    CHECK(static_cast<int>(wire[0][msgs[0].size()]) == 1);

    // Every single-bit alteration of the signed datagram (payload, key id or MAC) is caught.
    std::size_t sent = 0;
    for (std::size_t bit = 0; bit < wire[0].size() * 8; ++bit) {
        auto forged = wire[0];
        forged[bit / 8] ^= static_cast<std::byte>(1u << (bit % 8));
        const TxItem t{forged.data(), static_cast<std::uint32_t>(forged.size()), b};
        REQUIRE(plain.sendBurst(std::span<const TxItem>(&t, 1)) == 1);
        ++sent;
        if (sent % 32 == 0) CHECK(drain(tb).empty());
    }
    CHECK(drain(tb).empty());
    CHECK(cb.get(Counter::DropBadAuth) + cb.get(Counter::DropUnknownKey) == sent);
    CHECK(cb.get(Counter::DropUnknownKey) > 0);  // flips in the key id name another key

    // Unsigned datagrams (too short, or any plain frame) are dropped.
    const auto shortOne = bytes(10, 1);
    const TxItem s1{shortOne.data(), static_cast<std::uint32_t>(shortOne.size()), b};
    const TxItem s2{msgs[3].data(), static_cast<std::uint32_t>(msgs[3].size()), b};
    REQUIRE(plain.sendBurst(std::span<const TxItem>(&s1, 1)) == 1);
    REQUIRE(plain.sendBurst(std::span<const TxItem>(&s2, 1)) == 1);
    CHECK(drain(tb).empty());
    CHECK(cb.get(Counter::DropBadAuth) + cb.get(Counter::DropUnknownKey) == sent + 2);
}

TEST_CASE("key rotation by id: receivers accept old and new while senders move over; a reload picks up the file") {
    KeyFile senderFile("1 " + kKey1 + "\n");
    KeyFile receiverFile("1 " + kKey1 + "\n");
    MemoryNetwork net;
    const Endpoint a{0x0A000001u, 1}, b{0x0A000002u, 2};
    AuthConfig sc{senderFile.path, 0, 1'000'000};  // look at the files every millisecond
    AuthConfig rc{receiverFile.path, 0, 1'000'000};
    AuthTransport ta(std::make_unique<MemoryTransport>(net, a), sc, *loadAuthKeys(sc));
    AuthTransport tb(std::make_unique<MemoryTransport>(net, b), rc, *loadAuthKeys(rc));
    const auto m = bytes(100, 9);
    const TxItem t{m.data(), static_cast<std::uint32_t>(m.size()), b};
    auto sendOne = [&] { REQUIRE(ta.sendBurst(std::span<const TxItem>(&t, 1)) == 1); };
    auto settle = [] { std::this_thread::sleep_for(std::chrono::milliseconds(20)); };

    sendOne();
    CHECK(drain(tb).size() == 1);
    // Step 1: the receiver learns key 2 (it still accepts 1).
    receiverFile.write("1 " + kKey1 + "\n2 " + kKey2 + "\n");
    settle();
    sendOne();
    CHECK(drain(tb).size() == 1);
    CHECK(tb.authStats().reloads == 1);
    // Step 2: the sender moves to key 2 (the highest id).
    senderFile.write("1 " + kKey1 + "\n2 " + kKey2 + "\n");
    settle();
    sendOne();
    CHECK(drain(tb).size() == 1);
    CHECK(ta.authStats().reloads == 1);
    // Step 3: the receiver drops key 1; a sender still on key 1 is refused.
    receiverFile.write("2 " + kKey2 + "\n");
    settle();
    sendOne();
    CHECK(drain(tb).size() == 1);
    AuthConfig old{senderFile.path, 1, 1'000'000};
    AuthTransport stale(std::make_unique<MemoryTransport>(net, Endpoint{0x0A000005u, 5}), old, *loadAuthKeys(old));
    REQUIRE(stale.sendBurst(std::span<const TxItem>(&t, 1)) == 1);
    CHECK(drain(tb).empty());
    CHECK(tb.authStats().unknownKey == 1);
    // A broken rewrite keeps the keys in force.
    receiverFile.write("2 " + kKey2 + "\n", 0644);
    settle();
    sendOne();
    CHECK(drain(tb).size() == 1);
    CHECK(tb.authStats().reloadErrors == 1);
}

}  // TEST_SUITE
