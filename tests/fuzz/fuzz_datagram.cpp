// libFuzzer target: the datagram decoder, every accessor over an accepted datagram, the writer
// (entries re-encoded verbatim must decode to the same body) and the reassembler.
// Built and run by tests/fuzz/run_fuzz.sh.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <vector>

#include "client/reassembler.h"
#include "fabric/wire.h"

using namespace seqcast;
using namespace seqcast::wire;
using namespace seqcast::client;

namespace {

#define FUZZ_CHECK(cond)          \
    do {                          \
        if (!(cond)) __builtin_trap(); \
    } while (0)

bool within(std::span<const std::byte> inner, std::span<const std::byte> outer) {
    return inner.data() >= outer.data() && inner.data() + inner.size() <= outer.data() + outer.size();
}

Reassembler& reassembler() {
    static Reassembler r(1u << 16, 8);
    return r;
}

void walk(const DatagramView& v) {
    FUZZ_CHECK(within(v.body, v.bytes));
    switch (v.type) {
        case FrameType::Data:
        case FrameType::Pub: {
            MessageIterator it(v);
            MessageView m;
            std::uint32_t n = 0;
            std::size_t used = 0;
            static std::vector<std::byte> out;
            if (out.size() < kHeaderSize + v.body.size()) out.resize(kHeaderSize + v.body.size());
            DatagramWriter w(std::span<std::byte>(out).first(kHeaderSize + v.body.size()));
            w.begin(v.type, v.stream, v.epoch, v.firstOffset, v.flags);
            while (it.next(m)) {
                FUZZ_CHECK(within(m.payload, v.body));
                FUZZ_CHECK(m.first() == (m.fragOffset == 0));
                used += kMessageHeaderSize + m.payload.size();
                ++n;
                std::span<const std::byte> whole;
                const auto o = reassembler().offer(m, whole);
                if (o == Reassembler::Outcome::Complete) {
                    volatile std::byte sink{};
                    for (std::byte b : whole) sink = b;  // the view must be readable
                    (void)sink;
                }
                FUZZ_CHECK(w.appendEntry(m));
            }
            FUZZ_CHECK(n == v.count);
            FUZZ_CHECK(used == v.body.size());
            const std::size_t size = w.finish(v.senderTsNs);
            FUZZ_CHECK(size == kHeaderSize + v.body.size());
            // The copy is signed anew as a datagram, never as entries: it decodes with the entry CRCs
            // checked exactly when the original's entries were intact (walk() also gets views
            // decoded without CRC checks).
            DatagramView again;
            const auto copied = decode(std::span<const std::byte>(out).first(size), again);
            FUZZ_CHECK(copied == DecodeError::Ok || copied == DecodeError::BadEntryCrc);
            DatagramView orig;
            const auto origErr = decode(v.bytes, orig);
            if (origErr == DecodeError::Ok) FUZZ_CHECK(copied == DecodeError::Ok);
            if (copied == DecodeError::BadEntryCrc) FUZZ_CHECK(origErr != DecodeError::Ok);
            FUZZ_CHECK(decode(std::span<const std::byte>(out).first(size), again, false) == DecodeError::Ok);
            FUZZ_CHECK(again.count == v.count);
            FUZZ_CHECK(again.body.size() == v.body.size());
            // Entries survive verbatim (the entry CRC and the reserved field it covers included).
            MessageIterator a(v), b(again);
            MessageView x, y;
            while (a.next(x)) {
                FUZZ_CHECK(b.next(y));
                FUZZ_CHECK(x.publisher == y.publisher && x.pubSeq == y.pubSeq && x.publishTsNs == y.publishTsNs);
                FUZZ_CHECK(x.crc == y.crc && x.reserved == y.reserved);
                FUZZ_CHECK(x.flags == y.flags && x.fragOffset == y.fragOffset && x.payload.size() == y.payload.size());
                FUZZ_CHECK(x.payload.empty() || std::memcmp(x.payload.data(), y.payload.data(), x.payload.size()) == 0);
            }
            FUZZ_CHECK(!b.next(y));
            break;
        }
        case FrameType::Nak:
            for (std::uint32_t i = 0; i < v.count; ++i) {
                const auto r = nakRange(v, i);
                FUZZ_CHECK(r.count >= 1 && r.count <= kMaxNakRangeCount);
                FUZZ_CHECK(r.first.get() + r.count >= r.first.get());  // no wrap
            }
            break;
        case FrameType::PubAck:
            (void)pubAckPublisher(v);
            for (std::uint32_t i = 0; i < v.count; ++i) {
                const auto r = pubAckRun(v, i);
                FUZZ_CHECK(r.count != 0 && r.stride != 0);
            }
            break;
        case FrameType::Heartbeat: (void)heartbeatOldest(v); break;
        case FrameType::PubNak: {
            const auto r = static_cast<std::uint32_t>(pubNak(v).reason);
            FUZZ_CHECK(r >= 1 && r <= 5);  // 5: NotLeader
            break;
        }
        case FrameType::ReplayRequest: FUZZ_CHECK(replayRequest(v).to > replayRequest(v).from.get()); break;
        case FrameType::ReplayEnd: FUZZ_CHECK(static_cast<std::uint32_t>(replayEnd(v).status) <= 5); break;
        case FrameType::EndOfStream: FUZZ_CHECK(v.body.empty()); break;
        case FrameType::ReplAck:
        case FrameType::ReplJoin: FUZZ_CHECK(v.body.size() == sizeof(ReplAckBody)); (void)replSession(v); break;
        case FrameType::ReplSnapshot:
            FUZZ_CHECK(replSnapshot(v).chunk < replSnapshot(v).chunks);
            for (std::uint32_t i = 0; i < v.count; ++i) (void)replPublisher(v, i);
            break;
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::span<const std::byte> d(reinterpret_cast<const std::byte*>(data), size);
    DatagramView v;
    const auto withCrc = decode(d, v, true);
    FUZZ_CHECK(static_cast<std::size_t>(withCrc) < kDecodeErrorCount);
    if (withCrc == DecodeError::Ok) walk(v);

    // Most mutations break the CRC; skipping the check lets the fuzzer reach the body validation.
    DatagramView u;
    const auto noCrc = decode(d, u, false);
    FUZZ_CHECK(static_cast<std::size_t>(noCrc) < kDecodeErrorCount);
    if (withCrc == DecodeError::Ok) FUZZ_CHECK(noCrc == DecodeError::Ok);
    if (noCrc == DecodeError::Ok) {
        FUZZ_CHECK(withCrc == DecodeError::Ok || withCrc == DecodeError::BadCrc || withCrc == DecodeError::BadEntryCrc);
        walk(u);
    }
    return 0;
}
