#include "tools/commit_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>

namespace seqcast::tools {

namespace {
constexpr std::uint64_t kCommitMagic = 0x3154494D4D4F4353ull;  // "SCOMMIT1"
}

struct CommitFile::Layout {
    std::uint64_t magic;
    std::uint64_t active;  // slot holding the latest commit (0/1), 2: none yet
    std::uint64_t seq;
    CommitState slot[2];
};

Result<CommitFile> CommitFile::open(const std::string& path, std::uint32_t stream) {
    CommitFile f;
    f.path_ = path;
    f.fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (f.fd_ < 0) return failErrno("open commit file " + path);
    struct stat st {};
    if (::fstat(f.fd_, &st) != 0) return failErrno("stat " + path);
    const bool fresh = st.st_size == 0;
    if (!fresh && static_cast<std::size_t>(st.st_size) != sizeof(Layout))
        return failInvalid(path + " is not a seqcast commit file");
    if (fresh && ::ftruncate(f.fd_, sizeof(Layout)) != 0) return failErrno("size " + path);
    void* m = ::mmap(nullptr, sizeof(Layout), PROT_READ | PROT_WRITE, MAP_SHARED, f.fd_, 0);
    if (m == MAP_FAILED) return failErrno("mmap " + path);
    f.map_ = static_cast<Layout*>(m);
    if (fresh) {
        f.map_->active = 2;
        f.map_->seq = 0;
        f.map_->magic = kCommitMagic;
    } else {
        if (f.map_->magic != kCommitMagic || f.map_->active > 2) return failInvalid(path + " is not a seqcast commit file");
        if (f.map_->active < 2 && f.map_->slot[f.map_->active].stream != stream)
            return failInvalid(path + " belongs to stream " + std::to_string(f.map_->slot[f.map_->active].stream));
    }
    return f;
}

CommitFile::CommitFile(CommitFile&& o) noexcept : path_(std::move(o.path_)), fd_(o.fd_), map_(o.map_) {
    o.fd_ = -1;
    o.map_ = nullptr;
}

CommitFile::~CommitFile() {
    if (map_ != nullptr) ::munmap(map_, sizeof(Layout));
    if (fd_ >= 0) ::close(fd_);
}

bool CommitFile::hasCommit() const noexcept { return map_->active < 2; }
CommitState CommitFile::state() const noexcept { return hasCommit() ? map_->slot[map_->active] : CommitState{}; }

void CommitFile::commit(const CommitState& s) noexcept {
    const std::uint64_t next = map_->active == 0 ? 1 : 0;
    map_->slot[next] = s;
    std::atomic_signal_fence(std::memory_order_seq_cst);  // the slot is complete before it is published
    map_->active = next;
    ++map_->seq;
}

Status CommitFile::sync() noexcept {
    if (::msync(map_, sizeof(Layout), MS_SYNC) != 0) return failErrno("msync " + path_);
    return {};
}

}  // namespace seqcast::tools
