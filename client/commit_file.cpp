#include "client/commit_file.h"

#include <atomic>

namespace seqcast::client {

namespace {
// "SCOMMIT2" (version 2: resumeFrom and the application state; a version 1 file is refused)
constexpr std::uint64_t kCommitMagic = 0x3254494D4D4F4353ull;
}

struct CommitFile::Layout {
    std::uint64_t magic;
    std::uint64_t active;  // slot holding the latest commit (0/1), 2: none yet
    std::uint64_t seq;
    CommitState slot[2];   // 72 bytes each, from byte 24
};

Result<CommitFile> CommitFile::open(const std::string& path, std::uint32_t stream) {
    static_assert(sizeof(Layout) == 24 + 2 * sizeof(CommitState), "the layout the tests read");
    auto file = MappedFile::open(path, "commit file");
    if (!file) return fail(file.error());
    const bool fresh = file->fresh();
    if (!fresh && file->fileSize() != sizeof(Layout)) return failInvalid(path + " is not a seqcast commit file");
    if (auto st = file->map(sizeof(Layout)); !st) return fail(st.error());
    CommitFile f(std::move(*file));
    f.map_ = reinterpret_cast<Layout*>(f.file_.data());
    if (fresh) {
        f.map_->active = 2;
        f.map_->seq = 0;
        f.map_->magic = kCommitMagic;
    } else {
        if (f.map_->magic != kCommitMagic || f.map_->active > 2) return failInvalid(path + " is not a seqcast commit file");
        if (f.map_->active < 2 && f.map_->slot[f.map_->active].stream != stream)
            return failInvalid(path + " belongs to stream " + std::to_string(f.map_->slot[f.map_->active].stream));
        if (f.map_->active < 2 && f.map_->slot[f.map_->active].resumeFrom > f.map_->slot[f.map_->active].next)
            return failInvalid(path + " is damaged: its resume offset lies beyond its committed position");
    }
    return f;
}

CommitFile::CommitFile(CommitFile&& o) noexcept : file_(std::move(o.file_)), map_(o.map_) { o.map_ = nullptr; }

bool CommitFile::hasCommit() const noexcept { return map_->active < 2; }
CommitState CommitFile::state() const noexcept { return hasCommit() ? map_->slot[map_->active] : CommitState{}; }

void CommitFile::commit(const CommitState& s) noexcept {
    const std::uint64_t next = map_->active == 0 ? 1 : 0;
    map_->slot[next] = s;
    std::atomic_signal_fence(std::memory_order_seq_cst);  // the slot is complete before it is published
    map_->active = next;
    ++map_->seq;
}

Status CommitFile::sync() noexcept { return file_.sync(); }

}  // namespace seqcast::client
