// Wire protocol v1 throughput: encode (DatagramWriter filling MTU-1408 DATA datagrams, CRC included),
// decode (decode + iterate every message) and CRC32C, for 32 B, 256 B and 1 KiB messages.
// Each result is printed beside a memcpy of the same datagram bytes measured in the same run, and
// the ratio to it; every figure is the median of --runs runs (default 7).
//
//   wire_bench [--runs N] [--json FILE]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "fabric/crc32c.h"
#include "fabric/wire.h"

using namespace seqcast;
using namespace seqcast::wire;
using Clock = std::chrono::steady_clock;

namespace {

// Keeps the optimiser from dropping work whose result is otherwise unused.
template <class T>
inline void keep(const T& v) {
    asm volatile("" : : "g"(&v) : "memory");
}

constexpr std::size_t kDatasetBytes = 4u << 20;  // datagram bytes per pass (fits in a large L2/L3)
constexpr double kRunSeconds = 0.04;              // target length of one timed run

struct Dataset {
    std::size_t msgSize = 0;
    std::size_t messages = 0;
    std::vector<std::byte> payloads;  // messages * msgSize
    std::vector<std::byte> slots;     // datagrams, one per kDefaultMtu slot
    std::vector<std::byte> copyDst;   // memcpy baseline target
    std::vector<std::size_t> sizes;   // encoded size of each slot
    std::size_t wireBytes = 0;

    std::span<std::byte> slot(std::size_t i) { return std::span<std::byte>(slots).subspan(i * kDefaultMtu, kDefaultMtu); }
    std::span<const std::byte> datagram(std::size_t i) const {
        return std::span<const std::byte>(slots).subspan(i * kDefaultMtu, sizes[i]);
    }
};

// Packs every message into DATA datagrams; returns the number of datagrams.
std::size_t encodePass(Dataset& d) {
    std::size_t n = 0;
    DatagramWriter w(d.slot(0));
    w.begin(FrameType::Data, StreamId{1}, Epoch{1}, Offset{0});
    std::uint64_t offset = 0;
    for (std::size_t i = 0; i < d.messages; ++i) {
        if (w.room() < d.msgSize) {
            d.sizes[n] = w.finish(offset);
            w = DatagramWriter(d.slot(++n));
            w.begin(FrameType::Data, StreamId{1}, Epoch{1}, Offset{offset});
        }
        const auto payload = std::span<const std::byte>(d.payloads).subspan(i * d.msgSize, d.msgSize);
        (void)w.appendPiece({PublisherId{7}, PubSeq{i}, i}, payload, 0);
        ++offset;
    }
    d.sizes[n] = w.finish(offset);
    keep(d.slots[0]);
    return n + 1;
}

std::size_t decodePass(const Dataset& d) {
    std::size_t msgs = 0, bytes = 0;
    for (std::size_t i = 0; i < d.sizes.size(); ++i) {
        DatagramView v;
        if (decode(d.datagram(i), v) != DecodeError::Ok) std::abort();
        MessageIterator it(v);
        MessageView m;
        while (it.next(m)) {
            ++msgs;
            bytes += m.payload.size() + static_cast<std::size_t>(m.payload[0]);
        }
    }
    keep(bytes);
    return msgs;
}

std::uint32_t crcPass(const Dataset& d) {
    std::uint32_t x = 0;
    for (std::size_t i = 0; i < d.sizes.size(); ++i) x ^= crc32c(d.datagram(i));
    keep(x);
    return x;
}

std::uint32_t crcRefPass(const Dataset& d) {
    std::uint32_t x = 0;
    for (std::size_t i = 0; i < d.sizes.size(); ++i) x ^= crc32cReference(d.datagram(i));
    keep(x);
    return x;
}

void memcpyPass(Dataset& d) {
    for (std::size_t i = 0; i < d.sizes.size(); ++i)
        std::memcpy(d.copyDst.data() + i * kDefaultMtu, d.slots.data() + i * kDefaultMtu, d.sizes[i]);
    keep(d.copyDst[0]);
}

Dataset makeDataset(std::size_t msgSize) {
    Dataset d;
    d.msgSize = msgSize;
    const std::size_t perDatagram = (kDefaultMtu - kHeaderSize) / (kMessageHeaderSize + msgSize);
    const std::size_t datagrams = kDatasetBytes / kDefaultMtu;
    d.messages = perDatagram * datagrams;
    d.payloads.resize(d.messages * msgSize);
    std::uint32_t x = 12345;
    for (auto& b : d.payloads) {
        x = x * 1664525u + 1013904223u;
        b = static_cast<std::byte>(x >> 24);
    }
    d.slots.resize((datagrams + 1) * kDefaultMtu);
    d.copyDst.resize(d.slots.size());
    d.sizes.assign(datagrams + 1, 0);
    d.sizes.resize(encodePass(d));
    for (auto s : d.sizes) d.wireBytes += s;
    if (decodePass(d) != d.messages) {
        std::fprintf(stderr, "wire_bench: decode lost messages\n");
        std::exit(1);
    }
    return d;
}

double secondsOf(const std::function<void()>& pass, std::size_t reps) {
    const auto t0 = Clock::now();
    for (std::size_t r = 0; r < reps; ++r) pass();
    return std::chrono::duration<double>(Clock::now() - t0).count();
}

// Median seconds per pass over `runs` runs of about kRunSeconds each.
double medianPassSeconds(const std::function<void()>& pass, int runs) {
    pass();  // warm up
    std::size_t reps = 1;
    while (true) {
        const double s = secondsOf(pass, reps);
        if (s >= kRunSeconds / 4) {
            reps = std::max<std::size_t>(1, static_cast<std::size_t>(static_cast<double>(reps) * kRunSeconds / s));
            break;
        }
        reps *= 2;
    }
    std::vector<double> perPass;
    for (int r = 0; r < runs; ++r) perPass.push_back(secondsOf(pass, reps) / static_cast<double>(reps));
    std::sort(perPass.begin(), perPass.end());
    return perPass[perPass.size() / 2];
}

struct Result {
    std::string op;
    std::size_t msgSize;
    double msgsPerSec;
    double gbPerSec;
    double memcpyGbPerSec;
};

std::string cpuModel() {
    std::ifstream in("/proc/cpuinfo");
    std::string line;
    while (std::getline(in, line))
        if (line.rfind("model name", 0) == 0) {
            const auto p = line.find(':');
            return p == std::string::npos ? line : line.substr(p + 2);
        }
    return "unknown";
}

}  // namespace

int main(int argc, char** argv) {
    int runs = 7;
    std::string jsonPath;
    for (int i = 1; i < argc; ++i) {
        const std::string_view a = argv[i];
        if (a == "--runs" && i + 1 < argc) {
            runs = std::max(1, std::atoi(argv[++i]));
        } else if (a == "--json" && i + 1 < argc) {
            jsonPath = argv[++i];
        } else {
            std::fprintf(stderr, "usage: %s [--runs N] [--json FILE]\n", argv[0]);
            return 2;
        }
    }

    std::printf("wire_bench: MTU %zu, %zu MiB of datagrams per pass, median of %d runs, cpu: %s\n", kDefaultMtu,
                kDatasetBytes >> 20, runs, cpuModel().c_str());
    std::printf("GB/s = datagram bytes (headers + payload) per second; baseline = memcpy of the same datagrams\n\n");
    std::printf("%-10s %6s %12s %9s %12s %8s\n", "op", "msg", "msgs/s", "GB/s", "memcpy GB/s", "ratio");

    std::vector<Result> results;
    for (std::size_t size : {std::size_t{32}, std::size_t{256}, std::size_t{1024}}) {
        Dataset d = makeDataset(size);
        const double bytes = static_cast<double>(d.wireBytes);
        const double msgs = static_cast<double>(d.messages);
        struct Op {
            const char* name;
            std::function<void()> pass;
        };
        const Op ops[] = {
            {"encode", [&] { encodePass(d); }},
            {"decode", [&] { decodePass(d); }},
            {"crc32c", [&] { crcPass(d); }},
            {"crc32c-ref", [&] { crcRefPass(d); }},
        };
        for (const auto& op : ops) {
            // The baseline is measured right next to the operation it is compared with.
            const double base = medianPassSeconds([&] { memcpyPass(d); }, runs);
            const double t = medianPassSeconds(op.pass, op.name == std::string_view("crc32c-ref") ? std::min(runs, 5) : runs);
            Result r{op.name, size, msgs / t, bytes / t / 1e9, bytes / base / 1e9};
            std::printf("%-10s %5zuB %11.2fM %9.2f %12.2f %7.3fx\n", r.op.c_str(), size, r.msgsPerSec / 1e6, r.gbPerSec,
                        r.memcpyGbPerSec, r.gbPerSec / r.memcpyGbPerSec);
            std::fflush(stdout);
            results.push_back(r);
        }
        std::printf("\n");
    }
    std::printf("crc32c = ISA-L crc32_iscsi; crc32c-ref = bitwise software reference (for scale only)\n");

    if (!jsonPath.empty()) {
        std::FILE* f = std::fopen(jsonPath.c_str(), "w");
        if (f == nullptr) {
            std::perror(jsonPath.c_str());
            return 1;
        }
        std::fprintf(f, "{\n  \"benchmark\": \"wire\",\n  \"mtu\": %zu,\n  \"runs\": %d,\n  \"results\": [\n", kDefaultMtu, runs);
        for (std::size_t i = 0; i < results.size(); ++i) {
            const auto& r = results[i];
            std::fprintf(f,
                         "    {\"op\": \"%s\", \"msg_bytes\": %zu, \"msgs_per_sec\": %.0f, \"gb_per_sec\": %.4f, "
                         "\"memcpy_gb_per_sec\": %.4f, \"ratio_to_memcpy\": %.4f}%s\n",
                         r.op.c_str(), r.msgSize, r.msgsPerSec, r.gbPerSec, r.memcpyGbPerSec,
                         r.gbPerSec / r.memcpyGbPerSec, i + 1 < results.size() ? "," : "");
        }
        std::fprintf(f, "  ]\n}\n");
        if (std::fclose(f) != 0) {
            std::perror(jsonPath.c_str());
            return 1;
        }
    }
    return 0;
}
