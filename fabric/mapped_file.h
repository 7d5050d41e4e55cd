// The one helper behind every memory-mapped file seqcast keeps (the sequencer's state, a
// publisher's journal, an exactly-once subscriber's commit file): opened or created, locked so
// that one process at a time owns it, sized, mapped shared. Stores go straight to the page cache,
// so a process killed at any instruction leaves them in the file; sync() also survives a power loss.
//
// Ownership: open() takes an exclusive, non-blocking flock(2) on the file. A second process (or a
// second open in the same process) that wants the same file is refused with EBUSY and an error
// naming it; the lock goes with the last descriptor, so a process that dies any way at all
// (SIGKILL included) frees the file for its successor at once.
#pragma once

#include <cstddef>
#include <string>

#include "fabric/result.h"

namespace seqcast {

class MappedFile {
public:
    // Opens `path` (created empty when missing) and locks it. `what` names the file in errors
    // ("state file", "journal"). Nothing is mapped yet: look at fileSize(), then map().
    static Result<MappedFile> open(const std::string& path, const std::string& what);
    // `size` bytes of private anonymous memory instead of a file (a role that keeps no state).
    static Result<MappedFile> anonymous(std::size_t size, const std::string& what);

    MappedFile(MappedFile&& o) noexcept;
    MappedFile& operator=(MappedFile&&) = delete;
    MappedFile(const MappedFile&) = delete;
    ~MappedFile();

    // Bytes the file held when it was opened: 0 for a new (or empty) file.
    std::size_t fileSize() const noexcept { return fileSize_; }
    bool fresh() const noexcept { return fileSize_ == 0; }
    // Maps `size` bytes shared: an empty file is first grown to `size` (zero-filled); an existing
    // one is mapped as it is (callers compare fileSize() with what they expect first).
    Status map(std::size_t size);

    std::byte* data() const noexcept { return map_; }
    std::size_t size() const noexcept { return size_; }
    const std::string& path() const noexcept { return path_; }
    bool isFile() const noexcept { return fd_ >= 0; }
    // msync of the whole mapping (no-op for anonymous memory).
    Status sync() noexcept;

private:
    MappedFile() = default;
    std::string path_;
    std::string what_;
    int fd_ = -1;
    std::size_t fileSize_ = 0;
    std::byte* map_ = nullptr;
    std::size_t size_ = 0;
};

}  // namespace seqcast
