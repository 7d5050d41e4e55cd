// libFuzzer target: a real sequencer over the in-memory network, fed a program of datagrams from
// arbitrary source endpoints (PUBs built with the wire encoder, NAKs with arbitrary ranges, other
// frame types, damaged frames with and without a repaired CRC, raw bytes) and driven by a fake
// clock. Checked on everything it sends:
//   - every datagram decodes (CRC included);
//   - the stream is contiguous from offset 0 and each (publisher, pub_seq, fragment) is sequenced
//     once, in per-publisher order;
//   - a retransmission is a byte-identical copy of a datagram sent before, overlaps a range some
//     accepted NAK asked for (clamped to maxNakOffsets), and retransmissions never outnumber the
//     offsets asked for;
//   - multicast heartbeats carry the stream's next offset; confirmations name the offset the
//     message was sequenced at.
// Built and run by tests/fuzz/run_fuzz.sh.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <map>
#include <memory>
#include <span>
#include <vector>

#include "fabric/counters.h"
#include "fabric/wire.h"
#include "sequencer/sequencer.h"
#include "tests/fuzz/fuzz_input.h"
#include "transport/memory_transport.h"

using namespace seqcast;
using seqcast::fuzz::Input;
using transport::Endpoint;

namespace {

const Endpoint kSeq{0x0A000001, 4000};
const Endpoint kGroup{0xEF010101, 5000};
const Endpoint kListener{0x0A0000FE, 5001};
constexpr std::size_t kMaxSources = 12;
constexpr int kMaxOps = 96;
constexpr std::size_t kMaxBulk = 2;

struct Entry {
    std::uint32_t pub;
    std::uint64_t pubSeq;
    std::uint32_t frag;
    bool last;
};

struct Harness {
    transport::MemoryNetwork net;
    Counters counters;
    sequencer::SequencerConfig cfg;
    std::unique_ptr<transport::MemoryTransport> seqT;
    std::unique_ptr<transport::MemoryTransport> listener;
    std::vector<std::unique_ptr<transport::MemoryTransport>> sources;
    std::unique_ptr<sequencer::Sequencer> seq;
    std::uint64_t now = 1'000'000;

    // What the stream carried so far.
    std::uint64_t next = 0;
    std::vector<Entry> entries;  // by offset
    std::map<std::uint64_t, std::vector<std::byte>> bodies;  // first offset -> DATA body
    std::map<std::uint32_t, std::pair<std::uint64_t, std::uint32_t>> lastPerPub;  // (pub_seq, frag) sequenced last
    std::map<std::pair<std::uint32_t, std::uint64_t>, std::uint64_t> msgOffset;  // (pub, pub_seq) -> offset of last piece
    // What was asked.
    std::vector<std::pair<std::uint64_t, std::uint64_t>> asked;
    std::uint64_t askedTotal = 0;
    std::uint64_t retransmitted = 0;
    // The harness's own publishers: next pub_seq per id.
    std::map<std::uint32_t, std::uint64_t> pubNext;
    std::size_t bulkOps = 0;

    std::vector<transport::RxSlot> rx = std::vector<transport::RxSlot>(64);

    transport::MemoryTransport& source(Input& in) {
        const std::uint8_t k = in.u8();
        if (k < 0xF0 && !sources.empty()) return *sources[k % sources.size()];
        if (sources.size() >= kMaxSources) return *sources[k % sources.size()];
        Endpoint e;
        if (k % 2 == 0 || sources.empty()) {
            e = Endpoint{0x0A000100u + static_cast<std::uint32_t>(sources.size()), 0};  // ephemeral port
        } else {
            e = Endpoint{in.u32(), in.u16()};
            if (e.multicast()) e.addr &= 0xDFFFFFFFu;  // no datagram comes from a group address
            if (e.port == 0) e.port = 1;
            if (e == kSeq || e == kListener) e.port = static_cast<std::uint16_t>(e.port + 1);
            for (const auto& s : sources)
                if (s->local() == e) return *s;
        }
        sources.push_back(std::make_unique<transport::MemoryTransport>(net, e));
        return *sources.back();
    }

    // Mirrors what the sequencer will accept as a NAK, to know what may be retransmitted.
    void noteSent(std::span<const std::byte> d) {
        wire::DatagramView v;
        if (wire::decode(d, v) != wire::DecodeError::Ok || v.type != wire::FrameType::Nak) return;
        if (v.stream != cfg.stream || v.epoch > seq->epoch()) return;
        for (std::uint32_t i = 0; i < v.count; ++i) {
            const auto r = wire::nakRange(v, i);
            const std::uint64_t n = std::min<std::uint64_t>(r.count, cfg.maxNakOffsets);
            asked.emplace_back(r.first.get(), r.first.get() + n);
            askedTotal += n;
        }
    }

    void send(transport::MemoryTransport& from, std::span<const std::byte> d) {
        if (d.empty()) return;
        noteSent(d);
        transport::TxItem item{d.data(), static_cast<std::uint32_t>(d.size()), kSeq};
        FUZZ_CHECK(from.sendBurst(std::span<const transport::TxItem>(&item, 1)) == 1);
    }

    void checkStream(std::span<const std::byte> d) {
        wire::DatagramView v;
        FUZZ_CHECK(wire::decode(d, v) == wire::DecodeError::Ok);
        FUZZ_CHECK(v.stream == cfg.stream && v.epoch == seq->epoch());
        FUZZ_CHECK(d.size() <= cfg.mtu);
        switch (v.type) {
            case wire::FrameType::Data: {
                const std::uint64_t first = v.firstOffset.get();
                if ((v.flags & wire::kFlagRetransmit) != 0) {
                    const auto it = bodies.find(first);
                    FUZZ_CHECK(it != bodies.end());
                    FUZZ_CHECK(it->second.size() == v.body.size());
                    FUZZ_CHECK(std::memcmp(it->second.data(), v.body.data(), v.body.size()) == 0);
                    bool wanted = false;
                    for (const auto& [a, b] : asked) wanted = wanted || (a < first + v.count && first < b);
                    FUZZ_CHECK(wanted);
                    FUZZ_CHECK(++retransmitted <= askedTotal);
                    break;
                }
                FUZZ_CHECK(first == next);
                FUZZ_CHECK(v.count > 0);
                bodies.emplace(first, std::vector<std::byte>(v.body.begin(), v.body.end()));
                wire::MessageIterator it(v);
                wire::MessageView m;
                while (it.next(m)) {
                    const std::uint32_t p = m.publisher.get();
                    const auto key = std::make_pair(m.pubSeq.get(), m.fragOffset);
                    if (const auto last = lastPerPub.find(p); last != lastPerPub.end()) FUZZ_CHECK(last->second < key);
                    lastPerPub[p] = key;
                    entries.push_back(Entry{p, m.pubSeq.get(), m.fragOffset, m.last()});
                    if (m.last()) FUZZ_CHECK(msgOffset.emplace(std::make_pair(p, m.pubSeq.get()), next).second);
                    ++next;
                }
                break;
            }
            case wire::FrameType::Heartbeat:
                FUZZ_CHECK(v.firstOffset.get() == next);
                FUZZ_CHECK(wire::heartbeatOldest(v).get() <= next);
                break;
            case wire::FrameType::EndOfStream: FUZZ_CHECK(v.firstOffset.get() == next); break;
            default: FUZZ_CHECK(false && "unexpected frame on the stream");
        }
    }

    void checkControl(std::span<const std::byte> d) {
        wire::DatagramView v;
        FUZZ_CHECK(wire::decode(d, v) == wire::DecodeError::Ok);
        FUZZ_CHECK(v.stream == cfg.stream && v.epoch == seq->epoch());
        switch (v.type) {
            case wire::FrameType::PubAck: {
                const std::uint32_t p = wire::pubAckPublisher(v).get();
                for (std::uint32_t i = 0; i < v.count; ++i) {
                    const auto r = wire::pubAckRun(v, i);
                    FUZZ_CHECK(r.stride == 1);
                    for (std::uint32_t k = 0; k < r.count && k < 4096; ++k) {
                        const auto it = msgOffset.find(std::make_pair(p, r.firstPubSeq.get() + k));
                        if (it == msgOffset.end()) continue;  // below the publisher's base: not ours to judge
                        if (r.firstOffset.get() == wire::kOffsetOpen) continue;  // sequenced, offset forgotten
                        FUZZ_CHECK(r.firstOffset.get() + k == it->second);
                    }
                }
                break;
            }
            case wire::FrameType::PubNak: break;
            case wire::FrameType::Heartbeat: FUZZ_CHECK(wire::heartbeatOldest(v).get() <= v.firstOffset.get()); break;
            default: FUZZ_CHECK(false && "unexpected frame to a publisher");
        }
    }

    void drain() {
        for (;;) {
            const std::size_t n = listener->recvBurst(rx);
            for (std::size_t i = 0; i < n; ++i) checkStream(std::span<const std::byte>(rx[i].data, rx[i].len));
            if (n == 0) break;
        }
        for (auto& s : sources) {
            for (;;) {
                const std::size_t n = s->recvBurst(rx);
                for (std::size_t i = 0; i < n; ++i) checkControl(std::span<const std::byte>(rx[i].data, rx[i].len));
                if (n == 0) break;
            }
        }
    }

    void work(std::uint64_t stepNs, int rounds) {
        for (int i = 0; i < rounds; ++i) {
            now += stepNs;
            const int w = seq->doWork(now);
            drain();
            if (w == 0) break;
        }
    }

    // PUB frames: whole messages cut into pieces by the encoder (mostly in order), or raw entries
    // with arbitrary fields.
    void pub(Input& in) {
        auto& from = source(in);
        const std::uint8_t sel = in.u8();
        static const std::uint32_t kIds[] = {1, 2, 3, 4, 5, 0, 0xFFFFFFFFu};
        const std::uint32_t id = (sel & 7) < 7 ? kIds[sel & 7] : in.u32();
        const StreamId stream = (sel & 0x38) == 0x38 ? StreamId{in.u32()} : cfg.stream;
        auto [pos, fresh] = pubNext.emplace(id, 0);
        if (fresh) pos->second = (sel & 0x40) != 0 ? in.u64() >> 2 : in.u8();  // far from wrapping
        std::uint64_t& nextSeq = pos->second;
        const std::uint64_t base = nextSeq;
        const std::size_t limit = (sel & 0x80) != 0 ? 2048 : cfg.mtu;
        std::vector<std::byte> buf(limit);
        wire::DatagramWriter w(buf);
        const std::uint8_t how = in.u8();
        if (how % 2 == 0) {
            // Messages of the given sizes, pieces at most maxPiece, across as many datagrams as needed.
            const unsigned msgs = 1 + (how >> 1) % 4;
            const std::size_t maxPiece = 1 + in.u16() % 2048;
            const auto skew = static_cast<std::int8_t>((how & 0xE0) == 0xE0 ? in.u8() : 0);
            std::uint64_t s = nextSeq + static_cast<std::uint64_t>(static_cast<std::int64_t>(skew));
            w.begin(wire::FrameType::Pub, stream, Epoch{0}, Offset{base});
            for (unsigned k = 0; k < msgs; ++k, ++s) {
                const std::size_t len = in.u16() % 3000;
                std::vector<std::byte> msg(len, std::byte{static_cast<unsigned char>(s)});
                std::uint32_t frag = 0;
                do {
                    auto n = w.appendPiece(wire::MessageFields{PublisherId{id}, PubSeq{s}, now}, msg, frag, maxPiece);
                    if (!n || (*n == 0 && len != 0)) {
                        if (w.empty()) return;  // nothing fits at all
                        send(from, std::span<const std::byte>(buf).first(w.finish(now)));
                        w.begin(wire::FrameType::Pub, stream, Epoch{0}, Offset{base});
                        continue;
                    }
                    frag += static_cast<std::uint32_t>(*n);
                } while (frag < len);
                nextSeq = std::max(nextSeq, s + 1);
            }
            if (!w.empty()) send(from, std::span<const std::byte>(buf).first(w.finish(now)));
            return;
        }
        // Raw entries.
        w.begin(wire::FrameType::Pub, stream, Epoch{in.u8() % 4 == 0 ? in.u32() : 0}, Offset{(how & 2) ? in.u64() >> 2 : base});
        const unsigned n = 1 + (how >> 2) % 6;
        for (unsigned k = 0; k < n; ++k) {
            wire::MessageView m;
            const std::uint8_t f = in.u8();
            m.publisher = PublisherId{(f & 0x80) ? in.u32() : id};
            m.pubSeq = PubSeq{nextSeq + static_cast<std::uint64_t>(static_cast<std::int64_t>(static_cast<std::int8_t>(in.u8())))};
            m.flags = (f & 0x40) ? in.u16() : static_cast<std::uint16_t>(f & 3);
            m.fragOffset = (f & 0x20) ? in.u32() : ((f & 1) ? 0 : in.u16() % 512);
            m.publishTsNs = now;
            std::vector<std::byte> p(in.u16() % 600, std::byte{0x5A});
            m.payload = p;
            if (!w.appendEntry(m)) break;
            if (m.last() && m.publisher.get() == id) nextSeq = std::max(nextSeq, m.pubSeq.get() + 1);
        }
        send(from, std::span<const std::byte>(buf).first(w.finish(now)));
    }

    // Many in-order one-entry PUBs from one publisher: enough to wrap the retransmit ring.
    void bulk(Input& in) {
        if (bulkOps++ >= kMaxBulk) return;
        auto& from = source(in);
        const std::uint32_t id = 1 + in.u8() % 3;
        auto [pos, fresh] = pubNext.emplace(id, 0);
        std::uint64_t& s = pos->second;
        const std::uint64_t base = s;
        const std::size_t count = 4u * in.u8();
        const std::size_t len = std::min<std::size_t>(cfg.mtu - wire::kHeaderSize - wire::kMessageHeaderSize, 40 + in.u8());
        std::vector<std::byte> buf(cfg.mtu), msg(len, std::byte{0x11});
        for (std::size_t i = 0; i < count; ++i, ++s) {
            wire::DatagramWriter w(buf);
            w.begin(wire::FrameType::Pub, cfg.stream, Epoch{0}, Offset{base});
            (void)w.appendPiece(wire::MessageFields{PublisherId{id}, PubSeq{s}, now}, msg, 0);
            send(from, std::span<const std::byte>(buf).first(w.finish(now)));
            if (i % 64 == 63) work(1000, 4);
        }
    }

    void nak(Input& in) {
        auto& from = source(in);
        const std::uint8_t sel = in.u8();
        const StreamId stream = (sel & 7) == 7 ? StreamId{in.u32()} : cfg.stream;
        const Epoch epoch = (sel & 0x18) == 0x18 ? Epoch{in.u32()} : ((sel & 0x18) == 0x10 ? Epoch{0} : seq->epoch());
        std::byte buf[wire::kHeaderSize + 6 * sizeof(wire::NakRange)];
        send(from, std::span<const std::byte>(buf, fuzz::buildNak(buf, stream, epoch, in, next)));
    }

    void other(Input& in) {
        auto& from = source(in);
        const std::uint8_t sel = in.u8();
        std::byte buf[128];
        std::size_t len = 0;
        switch (sel % 5) {
            case 0: len = wire::encodeHeartbeat(buf, cfg.stream, seq->epoch(), Offset{in.u64()}, Offset{in.u64()}, now); break;
            case 1: len = wire::encodeEndOfStream(buf, cfg.stream, seq->epoch(), Offset{in.u64()}, now); break;
            case 2:
                len = wire::encodePubNak(buf, cfg.stream, seq->epoch(), PublisherId{1}, wire::PubNakReason::Gap, PubSeq{in.u64()},
                                         PubSeq{0}, now);
                break;
            case 3: len = wire::encodeReplayRequest(buf, cfg.stream, in.u64(), Offset{in.u64()}, in.u64(), in.u32(), now); break;
            default: {
                wire::DatagramWriter w(buf);
                w.begin(wire::FrameType::PubAck, cfg.stream, seq->epoch(), Offset{0});
                wire::PubAckBody b{};
                b.publisherId.set(in.u32());
                w.appendStruct(b);
                w.appendPubAckRun(PubSeq{in.u64()}, Offset{in.u64()}, 1 + in.u8(), 1);
                len = w.finish(now);
            }
        }
        send(from, std::span<const std::byte>(buf, len));
    }

    // A valid PUB or NAK with bytes overwritten, the CRC then repaired or not.
    void damaged(Input& in) {
        auto& from = source(in);
        std::vector<std::byte> buf(512);
        std::size_t len;
        const std::uint8_t sel = in.u8();
        if (sel % 2 == 0) {
            len = fuzz::buildNak(buf, cfg.stream, seq->epoch(), in, next);
        } else {
            wire::DatagramWriter w(buf);
            w.begin(wire::FrameType::Pub, cfg.stream, Epoch{0}, Offset{0});
            const std::uint32_t id = 1 + in.u8() % 3;
            const std::uint64_t s = pubNext.count(id) ? pubNext[id] : 0;
            std::vector<std::byte> msg(in.u8(), std::byte{0x22});
            (void)w.appendPiece(wire::MessageFields{PublisherId{id}, PubSeq{s}, now}, msg, 0);
            len = w.finish(now);
        }
        const unsigned edits = 1 + (sel >> 1) % 4;
        for (unsigned k = 0; k < edits; ++k) {
            const std::size_t at = in.u16() % len;
            buf[at] = static_cast<std::byte>(in.u8());
        }
        if ((sel & 0x80) == 0) {
            const std::uint32_t crc = wire::datagramCrc(std::span<const std::byte>(buf).first(len));
            std::memcpy(buf.data() + wire::kCrcFieldOffset, &crc, 4);
        }
        if ((sel & 0x40) != 0) len = in.u16() % (len + 1);  // truncated too
        send(from, std::span<const std::byte>(buf).first(len));
    }

    void raw(Input& in) {
        auto& from = source(in);
        const auto b = in.bytes(in.u16() % 700);
        send(from, b);
    }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    Input in(data, size);
    Harness h;
    // The configuration: small and tight, so that limits are reached within one input.
    const std::uint8_t c0 = in.u8(), c1 = in.u8(), c2 = in.u8(), c3 = in.u8();
    h.cfg.group = kGroup;
    h.cfg.mtu = (c0 & 3) == 3 ? wire::kDefaultMtu : wire::kMinMtu * (1 + (c0 & 3));
    h.cfg.ringBytes = 1024 * h.cfg.mtu;
    h.cfg.maxPublishers = 1 + (c0 >> 2) % 4;
    h.cfg.maxNakOffsets = (c0 & 0x80) != 0 ? 65536 : 1 + c1 % 64;
    h.cfg.retransmitHoldoffNs = static_cast<std::uint64_t>(c2) * 20'000;
    h.cfg.retransmitBytesPerSec = (c3 & 1) != 0 ? 400'000'000 : 1 + std::uint64_t{in.u32()};
    h.cfg.heartbeatMinNs = 1'000 + static_cast<std::uint64_t>(c3 >> 1) * 10'000;
    h.cfg.heartbeatMaxNs = h.cfg.heartbeatMinNs * (1 + (c1 >> 6));
    h.cfg.burst = 1 + (c2 % 64);
    h.cfg.pubReorderBytes = 16 * h.cfg.mtu * (1 + (c1 >> 4) % 4);
    h.seqT = std::make_unique<transport::MemoryTransport>(h.net, kSeq);
    h.listener = std::make_unique<transport::MemoryTransport>(h.net, kListener, std::vector<Endpoint>{kGroup});
    auto s = sequencer::Sequencer::create(h.cfg, *h.seqT, *h.seqT, h.counters);
    FUZZ_CHECK(s.has_value());
    h.seq = std::move(*s);
    for (int i = 0; i < 3; ++i) h.sources.push_back(std::make_unique<transport::MemoryTransport>(h.net, Endpoint{0x0A000100u + static_cast<std::uint32_t>(i), 0}));
    h.work(1000, 2);

    for (int op = 0; op < kMaxOps && !in.done(); ++op) {
        switch (in.u8() % 8) {
            case 0:
            case 1: h.pub(in); break;
            case 2: h.nak(in); break;
            case 3: h.other(in); break;
            case 4: h.damaged(in); break;
            case 5: h.raw(in); break;
            case 6: h.bulk(in); break;
            default: h.work(in.u8() % 2 == 0 ? in.u16() : std::uint64_t{in.u32()} % 200'000'000, 1 + in.u8() % 8); break;
        }
    }
    h.work(1'000, 64);
    h.work(300'000'000, 2);  // past every holdoff and heartbeat timer
    if (in.u8() % 2 == 0) {
        h.seq->endOfStream();
        h.drain();
    }
    // Nothing left behind: every datagram the sequencer took was accounted for.
    FUZZ_CHECK(h.counters.get(Counter::Retransmits) == h.retransmitted);
    return 0;
}
