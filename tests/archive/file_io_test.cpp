// FileIo (the archive log's file I/O): a write the kernel takes only part of completes with the
// kernel's error for the rest, never with a byte count that reads as success. A short write is
// made real here with RLIMIT_FSIZE: the kernel writes up to the limit and refuses the rest (EFBIG),
// as it does when a file system fills up part-way through a write (ENOSPC).
#include <doctest/doctest.h>

#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <string>
#include <sys/resource.h>
#include <unistd.h>
#include <vector>

#include "archive/file_io.h"

using seqcast::archive::FileIo;
using seqcast::archive::FileIoConfig;

namespace {

struct TempFile {
    std::string path;
    TempFile() {
        char tmpl[] = "/tmp/seqcast-file-io-XXXXXX";
        const int fd = ::mkstemp(tmpl);
        REQUIRE(fd >= 0);
        ::close(fd);
        ::unlink(tmpl);  // FileIo creates it
        path = tmpl;
    }
    ~TempFile() { ::unlink(path.c_str()); }
};

// Caps the size any write may give a file, for the scope; SIGXFSZ ignored so the write returns
// short (then EFBIG) instead of killing the test.
struct FileSizeLimit {
    rlimit old{};
    void (*oldHandler)(int) = nullptr;
    explicit FileSizeLimit(rlim_t bytes) {
        REQUIRE(::getrlimit(RLIMIT_FSIZE, &old) == 0);
        oldHandler = std::signal(SIGXFSZ, SIG_IGN);
        rlimit l = old;
        l.rlim_cur = bytes;
        REQUIRE(::setrlimit(RLIMIT_FSIZE, &l) == 0);
    }
    ~FileSizeLimit() {
        ::setrlimit(RLIMIT_FSIZE, &old);
        std::signal(SIGXFSZ, oldHandler);
    }
};

FileIo::Completion runOne(FileIo& io, unsigned tag) {
    std::vector<FileIo::Completion> done;
    io.drain(done);
    REQUIRE(done.size() == 1);
    CHECK(done[0].tag == tag);
    return done[0];
}

}  // namespace

TEST_CASE("a write the kernel takes only part of fails with the kernel's error, with and without io_uring") {
    for (const bool uring : {true, false}) {
        for (const bool sync : {false, true}) {
            CAPTURE(uring);
            CAPTURE(sync);
            TempFile f;
            std::vector<std::byte> buf(12288, std::byte{0x5A});
            FileIoConfig cfg;
            cfg.path = f.path;
            cfg.size = 8192;  // preallocated: writes inside it succeed, beyond it they extend the file
            cfg.preferUring = uring;
            auto io = FileIo::open(cfg, {});
            REQUIRE(io);
            // A whole write inside the limit completes with all its bytes.
            REQUIRE((*io)->write(1, 0, std::span<const std::byte>(buf.data(), 4096), 0, sync));
            CHECK(runOne(**io, 1).result == 4096);
            FileSizeLimit limit(8192);
            // 12 KiB at offset 0: the kernel takes 8 KiB (up to the limit) and refuses the rest.
            REQUIRE((*io)->write(2, 0, std::span<const std::byte>(buf.data(), buf.size()), 0, sync));
            const auto c = runOne(**io, 2);
            CHECK(c.result == -EFBIG);
        }
    }
}

TEST_CASE("a read, a sync and a synced write complete as before") {
    TempFile f;
    std::vector<std::byte> out(4096, std::byte{0x11}), in(4096);
    FileIoConfig cfg;
    cfg.path = f.path;
    cfg.size = 8192;
    auto io = FileIo::open(cfg, {});
    REQUIRE(io);
    REQUIRE((*io)->write(3, 0, out, 4096, true));
    CHECK(runOne(**io, 3).result == 4096);
    REQUIRE((*io)->sync(4));
    CHECK(runOne(**io, 4).result == 0);
    REQUIRE((*io)->read(5, in, 4096));
    CHECK(runOne(**io, 5).result == 4096);
    CHECK(in == out);
    REQUIRE((*io)->read(6, in, 8192 - 1024));  // across the end of the file: the bytes that exist
    CHECK(runOne(**io, 6).result == 1024);
}
