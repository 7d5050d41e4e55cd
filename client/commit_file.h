// The committed consumer position of an exactly-once subscriber: a memory-mapped file with two
// slots written alternately, so a process killed mid-update leaves the previous commit intact. The
// file is locked while open: a second subscriber on the same commit file is refused (EBUSY).
// The subscriber commits after every message and loss notice it hands to the application (see
// SubscriberConfig::commit); the application's own state rides in the same slot, so the position
// and what the application made of the messages below it are always committed together.
#pragma once

#include <array>
#include <cstdint>
#include <string>

#include "fabric/mapped_file.h"
#include "fabric/result.h"

namespace seqcast::client {

struct CommitState {
    std::uint64_t next = 0;        // every message and loss notice below this offset was processed
    std::uint64_t resumeFrom = 0;  // a restart receives from here: the first fragment of the lowest
                                   // message begun below `next` and not yet complete (else `next`)
    std::uint32_t stream = 0;
    std::uint32_t reserved = 0;
    std::array<std::uint64_t, 6> app{};  // the application's state, committed with the position
};
static_assert(sizeof(CommitState) == 72);

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
    const std::string& path() const noexcept { return file_.path(); }

private:
    struct Layout;
    explicit CommitFile(MappedFile file) : file_(std::move(file)) {}
    MappedFile file_;
    Layout* map_ = nullptr;
};

}  // namespace seqcast::client
