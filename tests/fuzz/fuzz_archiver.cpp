// libFuzzer target: a real archiver (archive log in a small file, subscriber, replay service)
// over the in-memory network. A fake sequencer multicasts DATA (mostly in order, sometimes with
// gaps) and heartbeats; several clients send REPLAY_REQUESTs with every flag (cancel included),
// arbitrary offsets, ranges and request ids, NAKs with arbitrary ranges, damaged and raw frames,
// all under a fake clock. Checked:
//   - every datagram the archiver sends decodes (CRC included), and is one it may send: replayed
//     DATA that is byte-for-byte a datagram the stream carried, REPLAY_END, its own NAKs;
//   - replay sessions never exceed maxSessions;
//   - no crash, UB or leak (sanitizers).
// Built and run by tests/fuzz/run_fuzz.sh.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "archive/archiver.h"
#include "fabric/counters.h"
#include "fabric/wire.h"
#include "tests/fuzz/fuzz_input.h"
#include "transport/memory_transport.h"

using namespace seqcast;
using seqcast::fuzz::Input;
using transport::Endpoint;

namespace {

const Endpoint kSeq{0x0A000001, 4000};
const Endpoint kGroup{0xEF010101, 5000};
const Endpoint kService{0x0A000002, 6000};
constexpr int kMaxOps = 128;
constexpr std::size_t kClients = 4;

std::string logPath() {
    const char* dir = std::getenv("SEQCAST_FUZZ_TMP");
    if (dir == nullptr) dir = ::access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    return std::string(dir) + "/seqcast-fuzz-archiver-" + std::to_string(::getpid()) + ".log";
}

struct Harness {
    transport::MemoryNetwork net;
    Counters counters;
    archive::ArchiverConfig cfg;
    transport::MemoryTransport seqT{net, kSeq};
    transport::MemoryTransport dataT{net, Endpoint{0x0A000003, 0}, {kGroup}};
    transport::MemoryTransport subCtl{net, Endpoint{0x0A000003, 0}};
    transport::MemoryTransport service{net, kService};
    std::vector<std::unique_ptr<transport::MemoryTransport>> clients;
    std::unique_ptr<archive::Archiver> arch;
    std::uint64_t now = 1'000'000;
    std::uint64_t dataNext = 0;  // next offset the fake sequencer sends
    std::map<std::uint64_t, std::vector<std::byte>> sent;   // first offset -> DATA body
    std::map<std::uint64_t, std::vector<std::byte>> whole;  // first offset -> the datagram
    std::vector<transport::RxSlot> rx = std::vector<transport::RxSlot>(64);

    void sendTo(transport::MemoryTransport& t, Endpoint to, std::span<const std::byte> d) {
        if (d.empty()) return;
        transport::TxItem item{d.data(), static_cast<std::uint32_t>(d.size()), to};
        FUZZ_CHECK(t.sendBurst(std::span<const transport::TxItem>(&item, 1)) == 1);
    }

    void checkClient(std::span<const std::byte> d) {
        wire::DatagramView v;
        FUZZ_CHECK(wire::decode(d, v) == wire::DecodeError::Ok);
        FUZZ_CHECK(v.stream == cfg.sub.stream);
        switch (v.type) {
            case wire::FrameType::Data: {
                FUZZ_CHECK((v.flags & wire::kFlagReplay) != 0);
                const auto it = sent.find(v.firstOffset.get());
                FUZZ_CHECK(it != sent.end());
                FUZZ_CHECK(it->second.size() == v.body.size());
                FUZZ_CHECK(std::memcmp(it->second.data(), v.body.data(), v.body.size()) == 0);
                break;
            }
            case wire::FrameType::ReplayEnd: break;
            default: FUZZ_CHECK(false && "unexpected frame to a replay client");
        }
    }

    void drain() {
        for (auto& c : clients)
            for (std::size_t n; (n = c->recvBurst(rx)) != 0;)
                for (std::size_t i = 0; i < n; ++i) checkClient(std::span<const std::byte>(rx[i].data, rx[i].len));
        // What the archiver's subscriber asks the sequencer for: NAKs only (no archiver behind it).
        for (std::size_t n; (n = seqT.recvBurst(rx)) != 0;) {
            for (std::size_t i = 0; i < n; ++i) {
                wire::DatagramView v;
                FUZZ_CHECK(wire::decode(std::span<const std::byte>(rx[i].data, rx[i].len), v) == wire::DecodeError::Ok);
                FUZZ_CHECK(v.type == wire::FrameType::Nak);
            }
        }
    }

    void work(std::uint64_t stepNs, int rounds) {
        for (int i = 0; i < rounds; ++i) {
            now += stepNs;
            const int w = arch->doWork(now);
            FUZZ_CHECK(arch->sessions() <= cfg.maxSessions);
            drain();
            if (w == 0) break;
        }
    }

    transport::MemoryTransport& client(Input& in) { return *clients[in.u8() % clients.size()]; }

    // DATA from the fake sequencer: mostly the next offsets, sometimes after a gap, or a datagram
    // sent before sent again (a retransmission).
    void data(Input& in) {
        const std::uint8_t sel = in.u8();
        if ((sel & 0x30) == 0x20 && !whole.empty()) {
            auto it = whole.upper_bound(in.u16() % dataNext);
            if (it != whole.begin()) --it;
            sendTo(seqT, kGroup, it->second);
            return;
        }
        std::uint64_t first = dataNext;
        if ((sel & 0x30) == 0x10) first += 1 + in.u8();  // a gap
        const unsigned n = 1 + sel % 4;
        std::vector<std::byte> b(1400);
        wire::DatagramWriter w(b);
        w.begin(wire::FrameType::Data, cfg.sub.stream, Epoch{1}, Offset{first}, (sel & 0x40) ? wire::kFlagRetransmit : 0);
        for (unsigned k = 0; k < n; ++k) {
            std::vector<std::byte> p(in.u8(), std::byte{static_cast<unsigned char>(first + k)});
            if (!w.appendPiece(wire::MessageFields{PublisherId{1}, PubSeq{first + k}, now}, p, 0)) break;
        }
        b.resize(w.finish(now));
        wire::DatagramView v;
        FUZZ_CHECK(wire::decode(b, v) == wire::DecodeError::Ok);
        sent.emplace(first, std::vector<std::byte>(v.body.begin(), v.body.end()));
        dataNext = first + v.count;
        sendTo(seqT, kGroup, b);
        whole.emplace(first, std::move(b));
    }

    void heartbeat(Input& in) {
        std::byte b[wire::kHeaderSize + sizeof(wire::HeartbeatBody)];
        const std::uint64_t next = (in.u8() & 1) ? dataNext : dataNext + in.u8();
        sendTo(seqT, kGroup, std::span<const std::byte>(b, wire::encodeHeartbeat(b, cfg.sub.stream, Epoch{1}, Offset{next}, Offset{0}, now)));
    }

    void replay(Input& in) {
        auto& c = client(in);
        const std::uint8_t sel = in.u8();
        const std::uint64_t id = (sel & 0x80) ? in.u64() : sel % 4;
        std::uint64_t from;
        switch ((sel >> 2) % 4) {
            case 0: from = 0; break;
            case 1: from = dataNext > 0 ? in.u16() % dataNext : 0; break;
            case 2: from = dataNext + in.u8() % 4; break;
            default: from = in.u64(); break;
        }
        std::uint64_t to;
        switch ((sel >> 4) % 4) {
            case 0: to = wire::kOffsetOpen; break;
            case 1: to = from + 1 + in.u8(); break;
            case 2: to = from + 1 + in.u16(); break;
            default: to = in.u64(); break;
        }
        const std::uint32_t flags = in.u8() % 4 == 0 ? in.u32() : in.u8() & 0xF;
        std::byte b[wire::kHeaderSize + sizeof(wire::ReplayRequestBody)];
        const StreamId s = (sel & 0x40) && (in.u8() & 1) ? StreamId{in.u32()} : cfg.sub.stream;
        sendTo(c, kService, std::span<const std::byte>(b, wire::encodeReplayRequest(b, s, id, Offset{from}, to, flags, now)));
    }

    void nak(Input& in) {
        auto& c = client(in);
        std::byte b[wire::kHeaderSize + 6 * sizeof(wire::NakRange)];
        sendTo(c, kService, std::span<const std::byte>(b, fuzz::buildNak(b, cfg.sub.stream, Epoch{1}, in, dataNext)));
    }

    void damaged(Input& in) {
        auto& c = client(in);
        std::byte b[wire::kHeaderSize + 6 * sizeof(wire::NakRange)];
        std::size_t len;
        const std::uint8_t sel = in.u8();
        if (sel & 1) {
            len = wire::encodeReplayRequest(b, cfg.sub.stream, in.u8(), Offset{in.u16()}, in.u32(), in.u8(), now);
        } else {
            len = fuzz::buildNak(b, cfg.sub.stream, Epoch{1}, in, dataNext);
        }
        for (unsigned k = 0; k < 1 + (sel >> 1) % 4; ++k) b[in.u16() % len] = static_cast<std::byte>(in.u8());
        if ((sel & 0x80) == 0) {
            const std::uint32_t crc = wire::datagramCrc(std::span<const std::byte>(b, len));
            std::memcpy(b + wire::kCrcFieldOffset, &crc, 4);
        }
        sendTo(c, kService, std::span<const std::byte>(b, len));
    }

    void raw(Input& in) {
        auto& c = client(in);
        sendTo(c, kService, in.bytes(in.u16() % 600));
    }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    static const std::string path = logPath();
    ::unlink(path.c_str());
    Input in(data, size);
    const std::uint8_t c0 = in.u8();
    {
        Harness h;
        h.cfg.log.path = path;
        h.cfg.log.capacity = 4u << 20;
        h.cfg.log.segmentBytes = 1u << 20;
        h.cfg.log.durability = archive::Durability::None;
        h.cfg.log.preferUring = false;
        h.cfg.log.stageBytes = 64u << 10;
        h.cfg.log.stages = 2;
        h.cfg.log.maxDatagram = 2048;
        h.cfg.sub.maxDatagram = 2048;
        h.cfg.sub.reorderBytes = 256u << 10;
        h.cfg.maxSessions = 1 + c0 % 8;
        h.cfg.maxSessionsPerClient = 1 + (c0 >> 3) % 4;
        h.cfg.windowBytes = 64u << 10;
        h.cfg.readBytes = 8192;
        h.cfg.sessionTimeoutNs = 50'000'000;
        h.cfg.rewindAfterNs = 1'000'000;
        h.cfg.maxNakOffsets = (c0 & 0x20) ? 65536 : 16;
        h.cfg.backlogBytes = 1u << 20;
        auto a = archive::Archiver::create(h.cfg, h.dataT, h.subCtl, h.service, h.counters);
        FUZZ_CHECK(a.has_value());
        h.arch = std::move(*a);
        for (std::size_t i = 0; i < kClients; ++i)
            h.clients.push_back(std::make_unique<transport::MemoryTransport>(h.net, Endpoint{0x0A000100u + static_cast<std::uint32_t>(i), 0}));
        for (int op = 0; op < kMaxOps && !in.done(); ++op) {
            switch (in.u8() % 8) {
                case 0:
                case 1: h.data(in); break;
                case 2: h.replay(in); break;
                case 3: h.nak(in); break;
                case 4: h.damaged(in); break;
                case 5: h.raw(in); break;
                case 6: h.heartbeat(in); break;
                default: h.work(in.u8() % 2 ? std::uint64_t{in.u16()} * 100 : static_cast<std::uint64_t>(in.u32()) % 100'000'000, 1 + in.u8() % 8); break;
            }
        }
        h.work(200'000, 32);
        h.work(100'000'000, 4);  // every session times out or ends
        FUZZ_CHECK(h.arch->flush().has_value());
    }
    ::unlink(path.c_str());
    return 0;
}
