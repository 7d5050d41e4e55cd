// Backlog: the archiver's in-memory FIFO of datagrams and loss markers waiting for a write buffer.
#include <algorithm>
#include <doctest/doctest.h>

#include <cstring>
#include <deque>
#include <random>
#include <vector>

#include "archive/backlog.h"

using seqcast::archive::Backlog;

namespace {

std::vector<std::byte> datagram(std::uint32_t id, std::size_t len) {
    std::vector<std::byte> v(len);
    for (std::size_t k = 0; k < len; ++k) v[k] = static_cast<std::byte>((id * 131 + k) & 0xFF);
    return v;
}

struct Model {
    std::vector<std::byte> bytes;
    std::uint64_t gapTo = 0;
};

void checkFront(const Backlog& b, const Model& m) {
    const auto e = b.front();
    CHECK(e.gapTo == m.gapTo);
    REQUIRE(e.bytes.size() == m.bytes.size());
    CHECK(std::equal(e.bytes.begin(), e.bytes.end(), m.bytes.begin()));  // memcmp must not see the null of an empty span
}

}  // namespace

TEST_CASE("datagrams and loss markers come out in the order they went in, across chunks") {
    Backlog b;
    std::deque<Model> model;
    std::size_t bytes = 0;
    // ~12.5 chunks (more than the spares kept) of datagrams of every size class, with loss markers
    // between some of them.
    for (std::uint32_t i = 0; bytes < 12 * Backlog::kChunkBytes + Backlog::kChunkBytes / 2; ++i) {
        const std::size_t len = (i % 7 == 0) ? 65000 : 1 + (i * 37) % 1500;
        auto d = datagram(i, len);
        REQUIRE(b.push(d));
        bytes += len;
        model.push_back(Model{d, 0});
        if (i % 50 == 0) {
            b.pushGap(1000 + i);
            model.push_back(Model{{}, 1000 + i});
        }
    }
    CHECK(b.entries() == model.size());
    CHECK(b.bytes() == bytes);
    CHECK(b.peakBytes() == bytes);
    CHECK(b.allocated() >= 13 * Backlog::kChunkBytes);
    while (!model.empty()) {
        REQUIRE_FALSE(b.empty());
        checkFront(b, model.front());
        bytes -= model.front().bytes.size();
        model.pop_front();
        b.pop();
        CHECK(b.bytes() == bytes);
    }
    CHECK(b.empty());
    CHECK(b.bytes() == 0);
    CHECK(b.peakBytes() > 12 * Backlog::kChunkBytes);
    // Drained: all but the spare chunks are returned.
    CHECK(b.allocated() <= Backlog::kSpareChunks * Backlog::kChunkBytes);
}

TEST_CASE("a datagram larger than a chunk's room, or empty, is refused and nothing is stored") {
    Backlog b;
    CHECK_FALSE(b.push(datagram(1, Backlog::kMaxDatagram + 1)));
    CHECK_FALSE(b.push({}));
    CHECK(b.empty());
    CHECK(b.bytes() == 0);
    CHECK(b.push(datagram(2, Backlog::kMaxDatagram)));
    CHECK(b.push(datagram(3, Backlog::kMaxDatagram)));  // needs a second chunk
    CHECK(b.entries() == 2);
    CHECK(b.front().bytes.size() == Backlog::kMaxDatagram);
}

TEST_CASE("interleaved pushes and pops keep FIFO order and reuse chunks (random model check)") {
    std::mt19937 rng(12345);
    Backlog b;
    std::deque<Model> model;
    std::size_t bytes = 0;
    std::uint32_t id = 0;
    for (int step = 0; step < 200000; ++step) {
        const unsigned r = rng() % 100;
        if (r < 55 || model.empty()) {
            const std::size_t len = 1 + rng() % ((rng() % 10 == 0) ? 65536 : 1200);
            auto d = datagram(id++, len);
            REQUIRE(b.push(d));
            bytes += len;
            model.push_back(Model{std::move(d), 0});
        } else if (r < 58) {
            b.pushGap(id);
            model.push_back(Model{{}, id});
        } else {
            checkFront(b, model.front());
            bytes -= model.front().bytes.size();
            model.pop_front();
            b.pop();
        }
        REQUIRE(b.entries() == model.size());
        REQUIRE(b.bytes() == bytes);
    }
    // Whatever the history, memory held is what the entries need plus the spare chunks.
    CHECK(b.allocated() <= (bytes + b.entries() * 24) + (Backlog::kSpareChunks + 2) * Backlog::kChunkBytes);
}
