// Writes the fuzz seed corpus: one valid datagram of each frame type (tests/fabric/wire_samples.h),
// plus a forward-compatible v2.7 datagram with a 64-byte header. Usage: make_corpus DIR
#include <cstdio>
#include <cstring>
#include <string>

#include "fabric/wire.h"
#include "tests/fabric/wire_samples.h"

using namespace seqcast;

int main(int argc, char** argv) {
    if (argc != 2) {
        std::fprintf(stderr, "usage: %s DIR\n", argv[0]);
        return 2;
    }
    auto samples = test::allSamples();
    for (auto& s : samples)
        if (s.name == "data") s.bytes = test::sampleData(400);  // keep seeds small

    // v2.7 writer: 16 more header bytes, unknown flag bits.
    test::Bytes fc = test::sampleDataFragments();
    fc.insert(fc.begin() + wire::kHeaderSize, 16, std::byte{0xC5});
    fc[5] = std::byte{7};
    const std::uint16_t hl = wire::kHeaderSize + 16;
    std::memcpy(fc.data() + 6, &hl, 2);  // little-endian host (x86-64)
    fc[11] = std::byte{0xF0};
    const std::uint32_t crc = wire::datagramCrc(fc);
    std::memcpy(fc.data() + wire::kCrcFieldOffset, &crc, 4);
    samples.push_back({"data_v2_7_long_header", fc});

    for (const auto& s : samples) {
        wire::DatagramView v;
        if (wire::decode(s.bytes, v) != wire::DecodeError::Ok) {
            std::fprintf(stderr, "make_corpus: sample %s does not decode\n", s.name.c_str());
            return 1;
        }
        const std::string path = std::string(argv[1]) + "/" + s.name + ".bin";
        std::FILE* f = std::fopen(path.c_str(), "wb");
        if (f == nullptr || std::fwrite(s.bytes.data(), 1, s.bytes.size(), f) != s.bytes.size() || std::fclose(f) != 0) {
            std::perror(path.c_str());
            return 1;
        }
    }
    std::printf("make_corpus: wrote %zu seeds to %s\n", samples.size(), argv[1]);
    return 0;
}
