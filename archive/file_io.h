// Asynchronous file I/O for the archive log: io_uring (registered file and buffers, several
// operations in flight, reaped in batches) with a clean fallback to pread/pwrite where io_uring is
// missing from the build or refused at run time.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "fabric/result.h"

namespace seqcast::archive {

struct FileIoConfig {
    std::string path;
    std::uint64_t size = 0;      // the file is preallocated to this size
    bool direct = false;         // O_DIRECT: buffers and offsets must be 4096-aligned
    bool preferUring = true;
    bool create = true;
    unsigned queueDepth = 64;
};

class FileIo {
public:
    // `buffers` are registered with the kernel (io_uring) for fixed writes; they must outlive FileIo.
    static Result<std::unique_ptr<FileIo>> open(const FileIoConfig& cfg, std::span<const std::span<std::byte>> buffers);
    ~FileIo();
    FileIo(const FileIo&) = delete;
    FileIo& operator=(const FileIo&) = delete;

    static constexpr unsigned kMaxTags = 256;
    struct Completion {
        unsigned tag;
        int result;  // bytes for a read (sum), all the bytes for a write, 0 for a sync, -errno on failure
    };
    // Each call queues one operation under `tag` (< kMaxTags, not already pending). A write of
    // registered buffer `buf` may be followed by an fdatasync of the file (sync = true): the tag
    // completes when both have. A write completes whole or with an error, never short: the kernel
    // may take only part of a write (a file system filling up does this), and then the rest is
    // written here, synchronously, so the completion carries the kernel's error for the part it
    // refused (ENOSPC, EFBIG, EIO...) instead of a byte count that looks like success. Returns false
    // when the queue is full.
    bool write(unsigned tag, unsigned buf, std::span<const std::byte> data, std::uint64_t offset, bool sync);
    bool read(unsigned tag, std::span<std::byte> into, std::uint64_t offset);
    bool sync(unsigned tag);
    // Submits what was queued and collects finished tags without blocking.
    std::size_t reap(std::vector<Completion>& out);
    // Blocks until every queued operation has finished (shutdown, tests).
    void drain(std::vector<Completion>& out);

    bool usingUring() const noexcept;
    bool isNew() const noexcept { return created_; }
    int fd() const noexcept { return fd_; }
    const std::string& path() const noexcept { return path_; }

private:
    FileIo() = default;
    struct Uring;
    std::unique_ptr<Uring> uring_;
    int fd_ = -1;
    int lockFd_ = -1;  // holds the flock (one owner per file)
    bool created_ = false;
    std::string path_;
    std::vector<std::span<std::byte>> buffers_;
    std::vector<Completion> ready_;  // psync fallback: finished at submit time
    // Finishes a write the kernel took only `done` bytes of (and its fdatasync, which io_uring
    // cancels when the linked write falls short). Cold path: a file system that is filling up.
    int finishShortWrite(unsigned tag, int done);

    struct WriteOp {
        const std::byte* data = nullptr;
        std::size_t len = 0;  // 0: the tag is a read or a sync
        std::uint64_t offset = 0;
        bool sync = false;
    };
    int pending_[kMaxTags] = {};
    int result_[kMaxTags] = {};      // reads: bytes (sum) or the first error; writes: the write's bytes or error
    int syncResult_[kMaxTags] = {};  // the fdatasync linked to a write, or a sync of its own
    WriteOp writes_[kMaxTags] = {};
};

}  // namespace seqcast::archive
