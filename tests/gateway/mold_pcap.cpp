// Writes a pcap file of MoldUDP64 downstream packets made by gateway/moldudp64 with ITCH 5.0
// messages from gateway/itch (Ethernet, IPv4, UDP to 239.1.1.1:PORT), for tshark's own dissectors
// to judge. On stdout, one line per packet: "SEQUENCE COUNT" and the ITCH types in it.
//
// usage: mold_pcap OUT.pcap PORT PACKETS SEED
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "gateway/itch.h"
#include "gateway/moldudp64.h"

using namespace seqcast::gateway;

namespace {

void le(std::vector<unsigned char>& o, std::uint64_t v, int n) {
    for (int i = 0; i < n; ++i) o.push_back(static_cast<unsigned char>(v >> (8 * i)));
}
void be(std::vector<unsigned char>& o, std::uint64_t v, int n) {
    for (int i = n - 1; i >= 0; --i) o.push_back(static_cast<unsigned char>(v >> (8 * i)));
}

std::uint16_t ipChecksum(const unsigned char* p, std::size_t n) {
    std::uint32_t sum = 0;
    for (std::size_t i = 0; i + 1 < n; i += 2) sum += static_cast<std::uint32_t>(p[i] << 8 | p[i + 1]);
    while (sum >> 16) sum = (sum & 0xFFFF) + (sum >> 16);
    return static_cast<std::uint16_t>(~sum);
}

void writeFrame(FILE* f, const std::vector<std::byte>& payload, std::uint16_t port, std::uint32_t n) {
    std::vector<unsigned char> fr;
    const unsigned char dst[6] = {0x01, 0x00, 0x5e, 0x01, 0x01, 0x01}, src[6] = {0x02, 0, 0, 0, 0, 1};
    fr.insert(fr.end(), dst, dst + 6);
    fr.insert(fr.end(), src, src + 6);
    be(fr, 0x0800, 2);
    const std::size_t ip = fr.size();
    be(fr, 0x4500, 2);
    be(fr, 20 + 8 + payload.size(), 2);
    be(fr, n & 0xFFFF, 2);
    be(fr, 0x4000, 2);
    be(fr, 0x0111, 2);  // TTL 1, UDP
    be(fr, 0, 2);
    be(fr, 0x0A000001, 4);
    be(fr, 0xEF010101, 4);
    const std::uint16_t c = ipChecksum(fr.data() + ip, 20);
    fr[ip + 10] = static_cast<unsigned char>(c >> 8);
    fr[ip + 11] = static_cast<unsigned char>(c);
    be(fr, 40000, 2);
    be(fr, port, 2);
    be(fr, 8 + payload.size(), 2);
    be(fr, 0, 2);  // no UDP checksum
    for (std::byte b : payload) fr.push_back(static_cast<unsigned char>(b));
    std::vector<unsigned char> rec;
    le(rec, 1700000000 + n / 1000, 4);
    le(rec, (n % 1000) * 1000, 4);
    le(rec, fr.size(), 4);
    le(rec, fr.size(), 4);
    std::fwrite(rec.data(), 1, rec.size(), f);
    std::fwrite(fr.data(), 1, fr.size(), f);
}

}  // namespace

int main(int argc, char** argv) {
    if (argc != 5) {
        std::fprintf(stderr, "usage: mold_pcap OUT.pcap PORT PACKETS SEED\n");
        return 2;
    }
    FILE* f = std::fopen(argv[1], "wb");
    if (f == nullptr) {
        std::perror(argv[1]);
        return 1;
    }
    const auto port = static_cast<std::uint16_t>(std::atoi(argv[2]));
    const int packets = std::atoi(argv[3]);
    std::vector<unsigned char> gh;
    le(gh, 0xa1b2c3d4, 4);
    le(gh, 2, 2);
    le(gh, 4, 2);
    le(gh, 0, 4);
    le(gh, 0, 4);
    le(gh, 65535, 4);
    le(gh, 1, 4);  // Ethernet
    std::fwrite(gh.data(), 1, gh.size(), f);

    const auto session = *mold::Session::parse("SEQCAST01");
    itch::Generator gen(std::strtoull(argv[4], nullptr, 10));
    std::vector<std::byte> buf(1400);
    mold::PacketWriter w(session, buf);
    std::uint64_t seq = 1, ts = 34'200'000'000'000ull;  // 09:30
    std::uint32_t frame = 0;
    std::vector<std::byte> pending;
    for (int p = 0; p < packets; ++p) {
        if (p == packets / 2) {  // a heartbeat in the middle
            std::vector<std::byte> hb(mold::kHeaderLength);
            mold::encodeHeartbeat(hb, session, seq);
            writeFrame(f, hb, port, frame++);
            std::printf("%llu 0\n", static_cast<unsigned long long>(seq));
        }
        w.begin(seq);
        std::string types;
        const std::uint64_t want = 1 + (static_cast<std::uint64_t>(p) * 7) % 40;  // 1..40 messages
        while (w.count() < want) {
            if (pending.empty()) pending = gen.next(ts += 1000);
            if (!w.append(pending)) break;
            types += static_cast<char>(pending[0]);
            pending.clear();
        }
        const std::size_t n = w.finish();
        writeFrame(f, std::vector<std::byte>(buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(n)), port, frame++);
        std::printf("%llu %u %s\n", static_cast<unsigned long long>(seq), static_cast<unsigned>(w.count()), types.c_str());
        seq += w.count();
    }
    std::vector<std::byte> eos(mold::kHeaderLength);
    mold::encodeEndOfSession(eos, session, seq);
    writeFrame(f, eos, port, frame++);
    std::printf("%llu 65535\n", static_cast<unsigned long long>(seq));
    std::fclose(f);
    return 0;
}
