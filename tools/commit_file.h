// The committed consumer position of an exactly-once subscriber: a memory-mapped file with two
// slots written alternately, so a process killed mid-update leaves the previous commit intact. The
// file is locked while open: a second subscriber on the same commit file is refused (EBUSY).
#pragma once

#include <cstdint>
#include <string>

#include "fabric/mapped_file.h"
#include "fabric/result.h"

namespace seqcast::tools {

struct CommitState {
    std::uint64_t next = 0;       // first offset not yet processed
    std::uint64_t delivered = 0;
    std::uint64_t firstOffset = 0;
    std::uint64_t lastOffset = 0;
    std::uint32_t digest = 0;     // running digest state of what was processed
    std::uint32_t stream = 0;
};

class CommitFile {
public:
    static Result<CommitFile> open(const std::string& path, std::uint32_t stream);
    CommitFile(CommitFile&& o) noexcept;
    CommitFile& operator=(CommitFile&&) = delete;
    ~CommitFile() = default;
    bool hasCommit() const noexcept;
    CommitState state() const noexcept;
    void commit(const CommitState& s) noexcept;  // a store to the page cache: survives a process crash
    Status sync() noexcept;                      // and a power loss

private:
    struct Layout;
    explicit CommitFile(MappedFile file) : file_(std::move(file)) {}
    MappedFile file_;
    Layout* map_ = nullptr;
};

}  // namespace seqcast::tools
