#include <doctest/doctest.h>

#include <random>
#include <string_view>
#include <vector>

#include "fabric/crc32c.h"

using namespace seqcast;

namespace {
std::span<const std::byte> bytesOf(std::string_view s) { return std::as_bytes(std::span(s.data(), s.size())); }
}  // namespace

TEST_CASE("crc32c check value") {
    auto b = bytesOf("123456789");
    CHECK(crc32c(b) == 0xE3069283u);
    CHECK(crc32cReference(b) == 0xE3069283u);
}

TEST_CASE("crc32c known vectors (RFC 3720 B.4)") {
    CHECK(crc32c({}) == 0u);
    CHECK(crc32cReference({}) == 0u);
    CHECK(crc32cFinal(kCrc32cInit) == 0u);

    std::vector<std::byte> zeros(32, std::byte{0}), ones(32, std::byte{0xFF}), inc(32), dec(32);
    for (std::size_t i = 0; i < 32; ++i) {
        inc[i] = static_cast<std::byte>(i);
        dec[i] = static_cast<std::byte>(31 - i);
    }
    CHECK(crc32c(zeros) == 0x8A9136AAu);
    CHECK(crc32c(ones) == 0x62A8AB43u);
    CHECK(crc32c(inc) == 0x46DD794Eu);
    CHECK(crc32c(dec) == 0x113FDB5Cu);
    CHECK(crc32cReference(zeros) == 0x8A9136AAu);
    CHECK(crc32cReference(ones) == 0x62A8AB43u);
    CHECK(crc32cReference(inc) == 0x46DD794Eu);
    CHECK(crc32cReference(dec) == 0x113FDB5Cu);
    CHECK(crc32c(bytesOf("a")) == 0xC1D04330u);
}

TEST_CASE("crc32c incremental equals one-shot") {
    std::mt19937_64 rng(42);
    std::vector<std::byte> buf(4096);
    for (auto& b : buf) b = static_cast<std::byte>(rng());
    const std::span<const std::byte> all(buf);
    const std::uint32_t whole = crc32c(all);
    // Every split point into two pieces.
    std::size_t bad = 0;
    for (std::size_t cut = 0; cut <= 300; ++cut) {
        const auto st = crc32cUpdate(crc32cUpdate(kCrc32cInit, all.first(cut)), all.subspan(cut));
        if (crc32cFinal(st) != whole) ++bad;
    }
    CHECK(bad == 0);
    // Random pieces, including empty ones.
    for (int round = 0; round < 200; ++round) {
        std::uint32_t st = kCrc32cInit;
        std::size_t at = 0;
        while (at < buf.size()) {
            const std::size_t n = std::min<std::size_t>(rng() % 97, buf.size() - at);
            st = crc32cUpdate(st, all.subspan(at, n));
            at += n;
        }
        CHECK(crc32cFinal(st) == whole);
    }
}

TEST_CASE("ISA-L matches the bitwise reference on random buffers of many sizes") {
    std::mt19937_64 rng(7);
    std::vector<std::byte> buf(70000);
    for (auto& b : buf) b = static_cast<std::byte>(rng());
    std::size_t bad = 0, tried = 0;
    // Every size up to 1100 (all alignment and tail cases), then larger ones, at various alignments.
    for (std::size_t n = 0; n <= 1100; ++n) {
        const std::size_t off = rng() % 64;
        const auto s = std::span<const std::byte>(buf).subspan(off, n);
        if (crc32c(s) != crc32cReference(s)) ++bad;
        ++tried;
    }
    for (std::size_t n : {2047u, 2048u, 4095u, 4096u, 8191u, 9000u, 65507u, 69000u}) {
        const std::size_t off = rng() % 64;
        const auto s = std::span<const std::byte>(buf).subspan(off, std::min(n, buf.size() - off));
        if (crc32c(s) != crc32cReference(s)) ++bad;
        ++tried;
    }
    CHECK(tried > 1100);
    CHECK(bad == 0);
}

TEST_CASE("the inline short-input path equals the library path, continuing any state") {
    std::mt19937_64 rng(11);
    std::vector<std::byte> buf(400);
    for (auto& b : buf) b = static_cast<std::byte>(rng());
    std::size_t bad = 0;
    for (std::size_t n = 0; n <= 2 * kCrc32cShortMax + 9; ++n) {
        const auto s = std::span<const std::byte>(buf).subspan(rng() % 64, n);
        const auto state = static_cast<std::uint32_t>(rng());
        if (crc32cUpdateShort(state, s) != crc32cUpdate(state, s)) ++bad;
        if (crc32cFinal(crc32cUpdateShort(kCrc32cInit, s)) != crc32cReference(s)) ++bad;
    }
    CHECK(bad == 0);
}
