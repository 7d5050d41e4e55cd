#include <doctest/doctest.h>

#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include "archive/archive_log.h"
#include "fabric/wire.h"
#include "tests/test_skip.h"

using namespace seqcast;
using namespace seqcast::archive;

namespace {

std::vector<std::byte> dataDatagram(std::uint64_t first, std::uint32_t count, std::size_t payload) {
    std::vector<std::byte> buf(wire::kHeaderSize + count * (wire::kMessageHeaderSize + payload));
    wire::DatagramWriter w(buf);
    w.begin(wire::FrameType::Data, StreamId{1}, Epoch{1}, Offset{first});
    std::vector<std::byte> msg(payload);
    for (std::uint32_t i = 0; i < count; ++i) {
        for (std::size_t k = 0; k < payload; ++k) msg[k] = static_cast<std::byte>((first + i + k) & 0xFF);
        w.appendPiece(wire::MessageFields{PublisherId{1}, PubSeq{first + i}, 0}, msg, 0);
    }
    buf.resize(w.finish(0));
    return buf;
}

struct TempPath {
    std::string path = "/tmp/seqcast-archive-test-" + std::to_string(::getpid()) + "-" + std::to_string(counter++);
    static inline int counter = 0;
    ~TempPath() { std::remove(path.c_str()); }
};

ArchiveConfig smallConfig(const std::string& path) {
    ArchiveConfig c;
    c.path = path;
    c.segmentBytes = 1u << 20;
    c.capacity = 4u << 20;
    c.stageBytes = 256u << 10;
    c.stages = 4;
    c.maxDatagram = 2048;
    c.durability = Durability::Interval;
    c.syncIntervalNs = 50'000'000;
    return c;
}

// Appends, polling until accepted.
void appendAll(ArchiveLog& log, std::uint64_t from, std::uint64_t to, std::uint32_t per, std::size_t payload) {
    for (std::uint64_t o = from; o < to; o += per) {
        const auto d = dataDatagram(o, per, payload);
        for (;;) {
            const auto r = log.append(d, Offset{o}, per);
            if (r == ArchiveLog::Append::Ok) break;
            if (r != ArchiveLog::Append::Busy) FAIL("append refused: " << static_cast<int>(r));
            log.poll(0);
        }
        log.poll(0);
    }
    REQUIRE(log.flush());
}

// Reads the whole log from `from` with pread and returns the offsets seen, in order.
std::vector<std::uint64_t> readFrom(ArchiveLog& log, const std::string& path, Offset from) {
    std::vector<std::uint64_t> seen;
    auto loc = log.locate(from);
    if (loc.kind != ArchiveLog::Locate::Kind::Found) return seen;
    FILE* f = std::fopen(path.c_str(), "rb");
    REQUIRE(f != nullptr);
    std::uint64_t pos = loc.pos;
    std::vector<std::byte> buf(1u << 20);
    const std::uint64_t cap = 4u << 20;
    while (pos < log.writtenPos()) {
        const std::size_t n = log.readableBytes(pos, buf.size());
        if (n == 0) break;
        REQUIRE(std::fseek(f, static_cast<long>(kLogHeaderBytes + pos % cap), SEEK_SET) == 0);
        REQUIRE(std::fread(buf.data(), 1, n, f) == n);
        const auto r = parseChunk(std::span<const std::byte>(buf.data(), n), pos, log.segmentBytes(), log.maxDatagram(),
                                  [&](const LogRecordView& rec) {
                                      for (std::uint32_t i = 0; i < rec.count; ++i)
                                          if (rec.first.get() + i >= from.get()) seen.push_back(rec.first.get() + i);
                                      return true;
                                  });
        REQUIRE((r.stop == ChunkStop::End || r.stop == ChunkStop::SegmentEnd));
        if (r.nextPos == pos) break;
        pos = r.nextPos;
    }
    std::fclose(f);
    return seen;
}

}  // namespace

TEST_CASE("archive log: append, locate, read back in order") {
    TempPath t;
    ArchiveConfig cfg = smallConfig(t.path);
    cfg.durability = Durability::Batch;  // every write is fdatasync'ed: durable follows next
    auto log = ArchiveLog::open(cfg);
    REQUIRE(log);
    appendAll(**log, 0, 2000, 4, 100);
    CHECK((*log)->next() == Offset{2000});
    CHECK((*log)->earliest() == Offset{0});
    CHECK((*log)->durable() == Offset{2000});
    const auto seen = readFrom(**log, t.path, Offset{1234});
    REQUIRE(seen.size() == 2000 - 1234);
    bool inOrder = true;
    for (std::size_t i = 0; i < seen.size(); ++i) inOrder = inOrder && seen[i] == 1234 + i;
    CHECK(inOrder);
    CHECK((*log)->locate(Offset{2000}).kind == ArchiveLog::Locate::Kind::BeyondHead);
    // A datagram that does not continue the log is refused.
    const auto d = dataDatagram(5000, 1, 10);
    CHECK((*log)->append(d, Offset{5000}, 1) == ArchiveLog::Append::Discontinuous);
}

TEST_CASE("archive log: opened on one thread, written from another (an archiver run on its own thread)") {
    TempPath t;
    ArchiveConfig cfg = smallConfig(t.path);
    cfg.durability = Durability::Batch;
    auto log = ArchiveLog::open(cfg);  // this thread creates the log (and its io_uring)
    REQUIRE(log);
    CHECK((*log)->usingUring());
    bool flushed = false;
    std::uint64_t durable = 0;
    std::string failure;
    std::thread writer([&] {
        for (std::uint64_t o = 0; o < 400; o += 4) {
            const auto d = dataDatagram(o, 4, 100);
            for (int tries = 0; tries < 100000; ++tries) {
                const auto r = (*log)->append(d, Offset{o}, 4);
                if (r == ArchiveLog::Append::Ok) break;
                if (r != ArchiveLog::Append::Busy) return;
                (*log)->poll(0);
            }
            (*log)->poll(0);
        }
        flushed = static_cast<bool>((*log)->flush());
        durable = (*log)->durable().get();
        failure = (*log)->failure();
    });
    writer.join();
    CHECK(failure == "");
    CHECK(flushed);
    CHECK(durable == 400);
    CHECK(readFrom(**log, t.path, Offset{0}).size() == 400);
}

TEST_CASE("archive log: the ring wraps; overwritten offsets are reported as such") {
    TempPath t;
    auto log = ArchiveLog::open(smallConfig(t.path));
    REQUIRE(log);
    // ~1.2 KB records: 4 MiB holds ~3500 of them; write 10000.
    appendAll(**log, 0, 40000, 4, 280);
    const Offset e = (*log)->earliest();
    CHECK(e > Offset{20000});
    CHECK((*log)->locate(Offset{0}).kind == ArchiveLog::Locate::Kind::Overwritten);
    CHECK((*log)->locate(Offset{e.get() - 1}).kind == ArchiveLog::Locate::Kind::Overwritten);
    const auto seen = readFrom(**log, t.path, e);
    REQUIRE(seen.size() == 40000 - e.get());
    CHECK(seen.front() == e.get());
    CHECK(seen.back() == 39999);
}

TEST_CASE("archive log: recovery finds the tail, rebuilds the index, truncates a torn tail") {
    TempPath t;
    Offset earliest;
    {
        auto log = ArchiveLog::open(smallConfig(t.path));
        REQUIRE(log);
        appendAll(**log, 0, 30000, 4, 280);
        earliest = (*log)->earliest();
    }
    {
        auto log = ArchiveLog::open(smallConfig(t.path));
        REQUIRE(log);
        CHECK((*log)->recovered());
        CHECK((*log)->next() == Offset{30000});
        CHECK((*log)->earliest() == earliest);
        const auto seen = readFrom(**log, t.path, earliest);
        CHECK(seen.size() == 30000 - earliest.get());
        // Continue writing after recovery.
        appendAll(**log, 30000, 31000, 4, 280);
        CHECK((*log)->next() == Offset{31000});
    }
    // Tear the last record: flip a byte near the tail.
    std::uint64_t tailPos = 0;
    {
        auto log = ArchiveLog::open(smallConfig(t.path));
        REQUIRE(log);
        tailPos = (*log)->writePos();
    }
    {
        FILE* f = std::fopen(t.path.c_str(), "r+b");
        REQUIRE(f != nullptr);
        std::fseek(f, static_cast<long>(kLogHeaderBytes + (tailPos - 100) % (4u << 20)), SEEK_SET);
        const int c = std::fgetc(f);
        std::fseek(f, -1, SEEK_CUR);
        std::fputc(c ^ 0x40, f);
        std::fclose(f);
    }
    auto log = ArchiveLog::open(smallConfig(t.path));
    REQUIRE(log);
    CHECK((*log)->next() == Offset{30996});  // the damaged last record (4 offsets) is gone
    const auto seen = readFrom(**log, t.path, Offset{30000});
    CHECK(seen.size() == 996);
}

TEST_CASE("archive log: one writer per log file") {
    TempPath t;
    const ArchiveConfig cfg = smallConfig(t.path);
    auto first = ArchiveLog::open(cfg);
    REQUIRE(first);
    auto second = ArchiveLog::open(cfg);
    REQUIRE_FALSE(second);
    CHECK(second.error().code == EBUSY);
    CHECK(second.error().message().find("in use by another process") != std::string::npos);
    first->reset();  // the owner closes: the file is free again
    auto third = ArchiveLog::open(cfg);
    CHECK(third);
}

TEST_CASE("archive log: bad configuration and foreign files are refused") {
    TempPath t;
    ArchiveConfig c = smallConfig(t.path);
    c.capacity = 3u << 20;
    CHECK_FALSE(ArchiveLog::open(c));
    c = smallConfig(t.path);
    REQUIRE(ArchiveLog::open(c));
    c.stream = StreamId{2};
    auto other = ArchiveLog::open(c);
    REQUIRE_FALSE(other);
    CHECK(other.error().message().find("stream") != std::string::npos);
}

TEST_CASE("archive log: O_DIRECT writes and recovery") {
    // The log lives next to the test binary's working directory: tmpfs refuses O_DIRECT.
    const std::string path = "seqcast-archive-direct-" + std::to_string(::getpid()) + ".log";
    struct Cleanup {
        std::string p;
        ~Cleanup() { std::remove(p.c_str()); }
    } cleanup{path};
    ArchiveConfig cfg = smallConfig(path);
    cfg.direct = true;
    auto log = ArchiveLog::open(cfg);
    if (!log && log.error().code == EINVAL) {
        seqcast::test::skip("archive log O_DIRECT case: this file system does not support O_DIRECT");
        return;
    }
    REQUIRE(log);
    appendAll(**log, 0, 3000, 3, 150);
    CHECK((*log)->next() == Offset{3000});
    log->reset();
    auto again = ArchiveLog::open(cfg);
    REQUIRE(again);
    CHECK((*again)->next() == Offset{3000});
    const auto seen = readFrom(**again, path, Offset{2500});
    CHECK(seen.size() == 500);
    appendAll(**again, 3000, 3300, 3, 150);
    CHECK((*again)->next() == Offset{3300});
}

TEST_CASE("archive log: a gap is recorded, survives recovery, and what follows it is kept") {
    TempPath t;
    {
        auto log = ArchiveLog::open(smallConfig(t.path));
        REQUIRE(log);
        appendAll(**log, 0, 400, 4, 100);
        (*log)->skipTo(Offset{1000});  // offsets 400..999 never arrived
        appendAll(**log, 1000, 1400, 4, 100);
        Offset end;
        CHECK((*log)->lostRange(Offset{500}, end));
        CHECK(end == Offset{1000});
        CHECK((*log)->locate(Offset{500}).kind == ArchiveLog::Locate::Kind::Lost);
    }
    auto log = ArchiveLog::open(smallConfig(t.path));
    REQUIRE(log);
    CHECK((*log)->next() == Offset{1400});  // recovery continues past the gap record
    Offset end;
    CHECK((*log)->lostRange(Offset{999}, end));
    CHECK((*log)->locate(Offset{1200}).kind == ArchiveLog::Locate::Kind::Found);
    const auto seen = readFrom(**log, t.path, Offset{1200});
    CHECK(seen.size() == 200);
}
