// Shared by the stateful fuzz targets: a byte cursor over the fuzzer's input (reads past the end
// give zeros, so every input is a valid program) and helpers that build wire frames from it.
// The seed writer (make_corpus.cpp) emits programs in the same format through OpWriter.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <vector>

#include "fabric/wire.h"

namespace seqcast::fuzz {

#define FUZZ_CHECK(cond)                                                                    \
    do {                                                                                    \
        if (!(cond)) {                                                                      \
            __builtin_fprintf(stderr, "FUZZ_CHECK failed: %s (%s:%d)\n", #cond, __FILE__, __LINE__); \
            __builtin_trap();                                                               \
        }                                                                                   \
    } while (0)

class Input {
public:
    Input(const std::uint8_t* data, std::size_t size) : d_(data), n_(size) {}
    bool done() const noexcept { return at_ >= n_; }
    std::uint8_t u8() noexcept { return at_ < n_ ? d_[at_++] : 0; }
    std::uint16_t u16() noexcept { return static_cast<std::uint16_t>(u8() | (u8() << 8)); }
    std::uint32_t u32() noexcept { return static_cast<std::uint32_t>(u16()) | (static_cast<std::uint32_t>(u16()) << 16); }
    std::uint64_t u64() noexcept { return static_cast<std::uint64_t>(u32()) | (static_cast<std::uint64_t>(u32()) << 32); }
    // Up to n bytes (fewer at the end of the input).
    std::span<const std::byte> bytes(std::size_t n) noexcept {
        const std::size_t k = n < n_ - std::min(at_, n_) ? n : n_ - std::min(at_, n_);
        const auto s = std::span<const std::byte>(reinterpret_cast<const std::byte*>(d_ + std::min(at_, n_)), k);
        at_ += k;
        return s;
    }

private:
    const std::uint8_t* d_;
    std::size_t n_;
    std::size_t at_ = 0;
};

// The writing side, for seeds.
class OpWriter {
public:
    OpWriter& u8(std::uint8_t v) { out.push_back(v); return *this; }
    OpWriter& u16(std::uint16_t v) { return u8(static_cast<std::uint8_t>(v)).u8(static_cast<std::uint8_t>(v >> 8)); }
    OpWriter& u32(std::uint32_t v) { return u16(static_cast<std::uint16_t>(v)).u16(static_cast<std::uint16_t>(v >> 16)); }
    OpWriter& u64(std::uint64_t v) { return u32(static_cast<std::uint32_t>(v)).u32(static_cast<std::uint32_t>(v >> 32)); }
    OpWriter& fill(std::size_t n, std::uint8_t v) { out.insert(out.end(), n, v); return *this; }
    std::vector<std::uint8_t> out;
};

// A NAK datagram with `ranges` (first, count) from the input; counts of 0 and ranges that wrap
// are what decode() must refuse, so they are produced too.
inline std::size_t buildNak(std::span<std::byte> buf, StreamId s, Epoch e, Input& in, std::uint64_t near) {
    wire::DatagramWriter w(buf);
    w.begin(wire::FrameType::Nak, s, e, Offset{0});
    const unsigned n = 1 + in.u8() % 6;
    for (unsigned i = 0; i < n; ++i) {
        const std::uint8_t mode = in.u8();
        std::uint64_t first;
        switch (mode % 4) {
            case 0: first = in.u64(); break;                                      // anywhere
            case 1: first = near > 0 ? (in.u16() % near) : 0; break;              // inside what exists
            case 2: first = near + in.u8(); break;                                 // at / beyond the head
            default: {
                const std::uint64_t back = in.u16();
                first = near > back ? near - back : 0;
                break;
            }  // just behind the head
        }
        std::uint32_t count;
        switch ((mode >> 2) % 4) {
            case 0: count = in.u32(); break;
            case 1: count = in.u8(); break;
            case 2: count = 1 + in.u16(); break;
            default: count = wire::kMaxNakRangeCount; break;
        }
        if (!w.appendNakRange(Offset{first}, count)) break;
    }
    return w.finish(in.u64());
}

}  // namespace seqcast::fuzz
