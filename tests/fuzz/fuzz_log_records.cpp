// libFuzzer target: archive log records (what a damaged or foreign log file can contain).
// parseChunk must never read outside the chunk, never loop, and only hand over records whose
// datagram decodes with a valid CRC.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>

#include "archive/archive_log.h"
#include "fabric/wire.h"

using namespace seqcast;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size < 9) return 0;
    // The first bytes choose the chunk's logical position and the segment size.
    std::uint64_t pos = 0;
    std::memcpy(&pos, data, 8);
    pos &= ~std::uint64_t{7} & 0xFFFFFFFFull;
    const std::uint64_t segment = std::uint64_t{1} << (12 + (data[8] % 9));  // 4 KiB .. 1 MiB
    const auto chunk = std::span<const std::byte>(reinterpret_cast<const std::byte*>(data + 9), size - 9);
    std::uint64_t calls = 0;
    const auto r = archive::parseChunk(chunk, pos, segment, 65536, [&](const archive::LogRecordView& rec) {
        ++calls;
        if (rec.gap) {
            if (rec.gapEnd <= rec.first.get()) std::abort();
            return true;
        }
        wire::DatagramView v;
        if (wire::decode(rec.datagram, v) != wire::DecodeError::Ok || v.type != wire::FrameType::Data) std::abort();
        if (rec.datagram.data() < chunk.data() || rec.datagram.data() + rec.datagram.size() > chunk.data() + chunk.size())
            std::abort();
        return true;
    });
    if (r.nextPos < pos || calls > chunk.size()) std::abort();
    return 0;
}
