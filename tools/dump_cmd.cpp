// seqcast dump: decode and verify an archive log.
#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <map>

#include "archive/archive_log.h"
#include "fabric/wire.h"
#include "tools/commands.h"
#include "tools/common.h"

namespace seqcast::tools {

int runDump(int argc, char** argv) {
    const CommandInfo info{
        "dump",
        "Decode an archive log: offsets, epochs, publishers, sizes; --verify checks every CRC and offset continuity.",
        "  seqcast dump --log stream1.log\n  seqcast dump --log stream1.log --verify\n  seqcast dump --log stream1.log --records\n"};
    po::options_description d("Dump");
    d.add_options()
        ("log", po::value<std::string>(), "archive log file (required)")
        ("verify", "check every record's CRC and the offsets' continuity; exit 1 on any problem, including offsets "
                   "recorded as never received (gap records) unless --allow-gaps")
        ("allow-gaps", "with --verify: gap records (offsets the archiver never received) are listed but not a failure")
        ("records", "print one line per record")
        ("json", po::value<std::string>(), "write a JSON summary to this file");
    po::variables_map vm;
    if (auto rc = parseCommandLine(info, argc, argv, d, vm)) return *rc;
    if (!vm.count("log")) {
        std::cerr << "seqcast dump: --log: required\n";
        return kExitUsage;
    }
    const std::string path = vm["log"].as<std::string>();
    try {
        checkPath("log", path, PathUse::Read);
        checkPath(vm, "json", PathUse::Write);
    } catch (const UsageError& e) {
        std::cerr << "seqcast dump: " << e.what() << "\n";
        return kExitUsage;
    }
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        std::cerr << "seqcast dump: --log: cannot open " << path << ": " << std::strerror(errno) << "\n";
        return kExitUsage;
    }
    archive::LogHeader h{};
    if (::pread(fd, &h, sizeof h, 0) != static_cast<ssize_t>(sizeof h) || h.magic != 0x31474F4C51455153ull ||
        h.segmentBytes == 0 || h.capacity % h.segmentBytes != 0) {
        std::cerr << "seqcast dump: --log: " << path << " is not a seqcast v1 archive log\n";
        ::close(fd);
        return kExitUsage;
    }
    const bool verify = vm.count("verify") != 0, records = vm.count("records") != 0;
    const std::uint64_t S = h.segmentBytes, C = h.capacity;
    std::vector<std::byte> chunk(S);
    std::uint64_t pos = h.oldestSegment - h.oldestSegment % S;
    bool started = false;
    std::uint64_t expect = 0, nrec = 0, bytes = 0, firstOffset = 0, problems = 0, skippedSegments = 0, lostOffsets = 0;
    std::vector<std::pair<std::uint64_t, std::uint64_t>> gaps;  // [from, to) recorded as never received
    std::map<std::uint32_t, std::uint64_t> epochs;
    std::map<std::uint32_t, std::uint64_t> publishers;
    std::string firstProblem;
    const std::uint64_t scanStart = pos;
    bool stop = false;
    while (!stop && pos - scanStart < C + S) {
        const std::uint64_t segEnd = (pos / S + 1) * S;
        const std::uint64_t want = segEnd - pos;
        const ssize_t r = ::pread(fd, chunk.data(), want, static_cast<off_t>(archive::kLogHeaderBytes + pos % C));
        if (r <= 0) break;
        const auto res = archive::parseChunk(
            std::span<const std::byte>(chunk.data(), static_cast<std::size_t>(r)), pos, S, 65536, [&](const archive::LogRecordView& rec) {
                if (rec.gap) {
                    if (started && rec.first.get() != expect) {
                        if (firstProblem.empty())
                            firstProblem = "gap record at position " + std::to_string(rec.pos) + " does not follow offset " + std::to_string(expect);
                        ++problems;
                        return false;
                    }
                    if (!started) {
                        started = true;
                        firstOffset = rec.gapEnd;
                    }
                    if (records)
                        std::printf("pos %llu gap: offsets %llu..%llu were never received\n", static_cast<unsigned long long>(rec.pos),
                                    static_cast<unsigned long long>(rec.first.get()), static_cast<unsigned long long>(rec.gapEnd - 1));
                    lostOffsets += rec.gapEnd - rec.first.get();
                    gaps.emplace_back(rec.first.get(), rec.gapEnd);
                    expect = rec.gapEnd;
                    return true;
                }
                const std::uint64_t end = rec.first.get() + rec.count;
                if (started && !(rec.first.get() <= expect && end > expect)) {
                    if (firstProblem.empty())
                        firstProblem = "offset discontinuity at position " + std::to_string(rec.pos) + ": expected " +
                                       std::to_string(expect) + ", record holds " + std::to_string(rec.first.get()) + ".." +
                                       std::to_string(end - 1);
                    ++problems;
                    return false;
                }
                if (!started) {
                    started = true;
                    firstOffset = rec.first.get();
                }
                wire::DatagramView v;
                wire::decode(rec.datagram, v, false);
                ++epochs[v.epoch.get()];
                wire::MessageIterator it(v);
                wire::MessageView m;
                while (it.next(m)) ++publishers[m.publisher.get()];
                if (records)
                    std::printf("pos %llu offsets %llu..%llu epoch %u entries %u bytes %zu%s\n", static_cast<unsigned long long>(rec.pos),
                                static_cast<unsigned long long>(rec.first.get()), static_cast<unsigned long long>(end - 1),
                                v.epoch.get(), rec.count, rec.datagram.size(),
                                (v.flags & wire::kFlagRetransmit) ? " retransmitted" : "");
                expect = end;
                ++nrec;
                bytes += rec.datagram.size();
                return true;
            });
        switch (res.stop) {
            case archive::ChunkStop::End:
                // A record that ends exactly at the segment's end also ends the chunk: go on
                // there. Only a chunk with nothing more to parse is the end of the log.
                if (res.nextPos == pos || static_cast<std::uint64_t>(r) < want) stop = true;
                pos = res.nextPos;
                break;
            case archive::ChunkStop::SegmentEnd:
                pos = res.nextPos;
                break;
            default:
                if (!started && skippedSegments < C / S) {
                    pos = segEnd;
                    ++skippedSegments;
                    break;
                }
                // Where the writer stopped, stale bytes of an earlier lap follow: that is the tail.
                // Before the checkpointed write position, a bad record is damage.
                if (res.stop == archive::ChunkStop::Corrupt || (res.nextPos < h.writePos && res.stop == archive::ChunkStop::Stale)) {
                    if (res.nextPos < h.writePos) {
                        ++problems;
                        if (firstProblem.empty())
                            firstProblem = "damaged record at position " + std::to_string(res.nextPos) + " (after offset " +
                                           std::to_string(expect) + "): a CRC (the datagram's or an entry's) or header check failed";
                    }
                }
                pos = res.nextPos;
                stop = true;
                break;
        }
    }
    ::close(fd);
    std::printf("%s: stream %u, capacity %llu bytes in %llu segments\n", path.c_str(), h.stream,
                static_cast<unsigned long long>(C), static_cast<unsigned long long>(C / S));
    if (started)
        std::printf("  %llu records, %llu bytes, offsets %llu..%llu\n", static_cast<unsigned long long>(nrec),
                    static_cast<unsigned long long>(bytes), static_cast<unsigned long long>(firstOffset),
                    static_cast<unsigned long long>(expect - 1));
    else
        std::printf("  empty\n");
    if (lostOffsets != 0) {
        std::printf("  %llu offsets in %zu gap record(s) were never received:", static_cast<unsigned long long>(lostOffsets), gaps.size());
        for (std::size_t i = 0; i < gaps.size() && i < 8; ++i)
            std::printf(" %llu..%llu", static_cast<unsigned long long>(gaps[i].first), static_cast<unsigned long long>(gaps[i].second - 1));
        std::printf("%s\n", gaps.size() > 8 ? " ..." : "");
    }
    const bool allowGaps = vm.count("allow-gaps") != 0;
    std::printf("  epochs:");
    for (const auto& [e, n] : epochs) std::printf(" %u (%llu records)", e, static_cast<unsigned long long>(n));
    std::printf("\n  publishers: %zu (", publishers.size());
    std::size_t shown = 0;
    for (const auto& [p, n] : publishers) {
        if (shown++ == 8) { std::printf(" ..."); break; }
        std::printf("%s%u: %llu entries", shown > 1 ? ", " : "", p, static_cast<unsigned long long>(n));
    }
    std::printf(")\n");
    const bool gapsFail = verify && !allowGaps && !gaps.empty();
    if (verify) {
        if (problems != 0) std::printf("  verify: FAILED: %s\n", firstProblem.c_str());
        else if (gapsFail)
            std::printf("  verify: FAILED: %llu offsets were never received (%zu gap records, first %llu..%llu); every record's "
                        "CRC is valid (--allow-gaps accepts gaps)\n",
                        static_cast<unsigned long long>(lostOffsets), gaps.size(), static_cast<unsigned long long>(gaps[0].first),
                        static_cast<unsigned long long>(gaps[0].second - 1));
        else if (!gaps.empty())
            std::printf("  verify: OK with gaps: every record's CRC is valid and the offsets are contiguous except %llu offsets "
                        "recorded as never received\n", static_cast<unsigned long long>(lostOffsets));
        else std::printf("  verify: OK, every record's CRC is valid and the offsets are contiguous, no gaps\n");
    }
    if (vm.count("json")) {
        Json j;
        j.begin();
        j.field("records", nrec);
        j.field("bytes", bytes);
        j.field("first_offset", firstOffset);
        j.field("next_offset", expect);
        j.field("problems", problems);
        j.field("gap_offsets", lostOffsets);
        j.key("gaps").beginArray();
        for (const auto& [from, to] : gaps) j.beginArray().num(from).num(to).endArray();
        j.endArray();
        j.end();
        writeFile(vm["json"].as<std::string>(), j.text());
    }
    return verify && (problems != 0 || gapsFail) ? 1 : 0;
}

}  // namespace seqcast::tools
