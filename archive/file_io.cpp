#include "archive/file_io.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "seqcast_config.h"
#if SEQCAST_HAVE_URING
#include <liburing.h>
#endif

namespace seqcast::archive {

namespace {
constexpr std::uint64_t kSyncBit = std::uint64_t{1} << 32;

int fullPwrite(int fd, const std::byte* p, std::size_t n, std::uint64_t off) {
    std::size_t done = 0;
    while (done < n) {
        const ssize_t r = ::pwrite(fd, p + done, n - done, static_cast<off_t>(off + done));
        if (r < 0) {
            if (errno == EINTR) continue;
            return -errno;
        }
        if (r == 0) return -EIO;  // no progress on a regular file: never spin
        done += static_cast<std::size_t>(r);
    }
    return static_cast<int>(done);
}

int fullPread(int fd, std::byte* p, std::size_t n, std::uint64_t off) {
    std::size_t done = 0;
    while (done < n) {
        const ssize_t r = ::pread(fd, p + done, n - done, static_cast<off_t>(off + done));
        if (r < 0) {
            if (errno == EINTR) continue;
            return -errno;
        }
        if (r == 0) break;
        done += static_cast<std::size_t>(r);
    }
    return static_cast<int>(done);
}
}  // namespace

#if SEQCAST_HAVE_URING
struct FileIo::Uring {
    io_uring ring{};
    bool fixedBuffers = false;
    unsigned queued = 0;
    ~Uring() { io_uring_queue_exit(&ring); }
};
#else
struct FileIo::Uring {};
#endif

Result<std::unique_ptr<FileIo>> FileIo::open(const FileIoConfig& cfg, std::span<const std::span<std::byte>> buffers) {
    std::unique_ptr<FileIo> f(new FileIo());
    f->path_ = cfg.path;
    f->buffers_.assign(buffers.begin(), buffers.end());
    struct stat st {};
    const bool exists = ::stat(cfg.path.c_str(), &st) == 0;
    if (!exists && !cfg.create) return failErrno("open " + cfg.path, ENOENT);
    int flags = O_RDWR | O_CLOEXEC | (exists ? 0 : O_CREAT);
    if (cfg.direct) flags |= O_DIRECT;
    f->fd_ = ::open(cfg.path.c_str(), flags, 0644);
    if (f->fd_ < 0) return failErrno("open " + cfg.path);
    // One writer per log: a second archiver on the same file would interleave two recordings.
    // The lock is taken on a descriptor of its own: the data descriptor is registered with
    // io_uring, which keeps the file open until its asynchronous teardown, so a lock on it would
    // outlive close(). A killed owner frees the file at once.
    f->lockFd_ = ::open(cfg.path.c_str(), O_RDONLY | O_CLOEXEC);
    if (f->lockFd_ < 0) return failErrno("open " + cfg.path);
    if (::flock(f->lockFd_, LOCK_EX | LOCK_NB) != 0) {
        if (errno == EWOULDBLOCK)
            return fail(Error{EBUSY, cfg.path + " is in use by another process (only one may record into a log)"});
        return failErrno("lock " + cfg.path);
    }
    if (::fstat(f->fd_, &st) != 0) return failErrno("stat " + cfg.path);
    f->created_ = st.st_size == 0;
    if (static_cast<std::uint64_t>(st.st_size) != cfg.size) {
        if (!f->created_)
            return failInvalid(cfg.path + " is " + std::to_string(st.st_size) + " bytes, the configuration needs " +
                               std::to_string(cfg.size) + " (log size changed? move the file away to start a new log)");
        // Preallocate, so a full disk shows up now and not in the middle of recording.
        if (const int e = ::posix_fallocate(f->fd_, 0, static_cast<off_t>(cfg.size)); e != 0) {
            ::unlink(cfg.path.c_str());
            return failErrno("preallocate " + std::to_string(cfg.size) + " bytes for " + cfg.path, e);
        }
    }
#if SEQCAST_HAVE_URING
    if (cfg.preferUring) {
        auto u = std::make_unique<Uring>();
        io_uring_params p{};
        // COOP_TASKRUN defers completion work to our next kernel entry; TASKRUN_FLAG makes the
        // kernel say so in the SQ flags, so a peek with nothing to submit still enters the kernel
        // and reaps (without it a read could complete while we, idle, never look). No
        // SINGLE_ISSUER: a log opened (and recovered) on one thread may be written from another,
        // e.g. an archiver created by the application's thread and run on a thread of its own;
        // with SINGLE_ISSUER every submission from that thread fails with EEXIST.
        p.flags = IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG;
        int r = io_uring_queue_init_params(cfg.queueDepth, &u->ring, &p);
        if (r == -EINVAL) {  // older kernel: no COOP_TASKRUN / TASKRUN_FLAG
            p = io_uring_params{};
            r = io_uring_queue_init_params(cfg.queueDepth, &u->ring, &p);
        }
        if (r == 0) {
            if (io_uring_register_files(&u->ring, &f->fd_, 1) == 0) {
                std::vector<iovec> iov;
                for (const auto& b : buffers) iov.push_back(iovec{b.data(), b.size()});
                u->fixedBuffers = !iov.empty() && io_uring_register_buffers(&u->ring, iov.data(), static_cast<unsigned>(iov.size())) == 0;
                f->uring_ = std::move(u);
            }
        }
        // Otherwise (seccomp, old kernel, memlock limits): fall back to pread/pwrite below.
    }
#else
    (void)cfg.queueDepth;
#endif
    return f;
}

FileIo::~FileIo() {
    uring_.reset();
    if (fd_ >= 0) ::close(fd_);
    if (lockFd_ >= 0) ::close(lockFd_);
}

bool FileIo::usingUring() const noexcept { return uring_ != nullptr; }

bool FileIo::write(unsigned tag, unsigned buf, std::span<const std::byte> data, std::uint64_t offset, bool sync) {
    if (tag >= kMaxTags || pending_[tag] != 0) return false;
#if SEQCAST_HAVE_URING
    if (uring_) {
        if (io_uring_sq_space_left(&uring_->ring) < 2) return false;
        io_uring_sqe* sqe = io_uring_get_sqe(&uring_->ring);
        if (uring_->fixedBuffers && buf < buffers_.size())
            io_uring_prep_write_fixed(sqe, 0, data.data(), static_cast<unsigned>(data.size()), offset, static_cast<int>(buf));
        else
            io_uring_prep_write(sqe, 0, data.data(), static_cast<unsigned>(data.size()), offset);
        sqe->flags |= IOSQE_FIXED_FILE;
        io_uring_sqe_set_data64(sqe, tag);
        pending_[tag] = 1;
        result_[tag] = 0;
        syncResult_[tag] = 0;
        writes_[tag] = WriteOp{data.data(), data.size(), offset, sync};
        if (sync) {
            sqe->flags |= IOSQE_IO_LINK;
            io_uring_sqe* s2 = io_uring_get_sqe(&uring_->ring);
            io_uring_prep_fsync(s2, 0, IORING_FSYNC_DATASYNC);
            s2->flags |= IOSQE_FIXED_FILE;
            io_uring_sqe_set_data64(s2, tag | kSyncBit);
            pending_[tag] = 2;
        }
        return true;
    }
#endif
    (void)buf;
    int r = fullPwrite(fd_, data.data(), data.size(), offset);
    if (r >= 0 && sync && ::fdatasync(fd_) != 0) r = -errno;
    ready_.push_back(Completion{tag, r});
    return true;
}

bool FileIo::read(unsigned tag, std::span<std::byte> into, std::uint64_t offset) {
    if (tag >= kMaxTags || pending_[tag] != 0) return false;
#if SEQCAST_HAVE_URING
    if (uring_) {
        if (io_uring_sq_space_left(&uring_->ring) < 1) return false;
        io_uring_sqe* sqe = io_uring_get_sqe(&uring_->ring);
        io_uring_prep_read(sqe, 0, into.data(), static_cast<unsigned>(into.size()), offset);
        sqe->flags |= IOSQE_FIXED_FILE;
        io_uring_sqe_set_data64(sqe, tag);
        pending_[tag] = 1;
        result_[tag] = 0;
        syncResult_[tag] = 0;
        writes_[tag] = WriteOp{};
        return true;
    }
#endif
    ready_.push_back(Completion{tag, fullPread(fd_, into.data(), into.size(), offset)});
    return true;
}

bool FileIo::sync(unsigned tag) {
    if (tag >= kMaxTags || pending_[tag] != 0) return false;
#if SEQCAST_HAVE_URING
    if (uring_) {
        if (io_uring_sq_space_left(&uring_->ring) < 1) return false;
        io_uring_sqe* sqe = io_uring_get_sqe(&uring_->ring);
        io_uring_prep_fsync(sqe, 0, IORING_FSYNC_DATASYNC);
        sqe->flags |= IOSQE_FIXED_FILE;
        io_uring_sqe_set_data64(sqe, tag | kSyncBit);
        pending_[tag] = 1;
        result_[tag] = 0;
        syncResult_[tag] = 0;
        writes_[tag] = WriteOp{};
        return true;
    }
#endif
    ready_.push_back(Completion{tag, ::fdatasync(fd_) == 0 ? 0 : -errno});
    return true;
}

std::size_t FileIo::reap(std::vector<Completion>& out) {
    std::size_t n = ready_.size();
    out.insert(out.end(), ready_.begin(), ready_.end());
    ready_.clear();
#if SEQCAST_HAVE_URING
    if (uring_) {
        if (const int r = io_uring_submit(&uring_->ring); r < 0 && r != -EAGAIN && r != -EBUSY && r != -EINTR) {
            // The ring refuses submissions (it cannot recover from that): every queued operation
            // fails with that error rather than waiting forever for a completion.
            for (unsigned t = 0; t < kMaxTags; ++t) {
                if (pending_[t] == 0) continue;
                pending_[t] = 0;
                out.push_back(Completion{t, r});
                ++n;
            }
            return n;
        }
        bool pending = false;
        for (int p : pending_) pending = pending || p != 0;
        io_uring_cqe* cqes[64];
        bool entered = false;
        for (;;) {
            unsigned k = io_uring_peek_batch_cqe(&uring_->ring, cqes, 64);
            if (k == 0 && pending && !entered) {
                // Operations are outstanding but nothing is visible: enter the kernel once so
                // deferred completion work runs (an idle process makes no other system call on
                // this ring, and a finished read must not wait for one).
                entered = true;
                io_uring_get_events(&uring_->ring);
                k = io_uring_peek_batch_cqe(&uring_->ring, cqes, 64);
            }
            if (k == 0) break;
            for (unsigned i = 0; i < k; ++i) {
                const std::uint64_t ud = io_uring_cqe_get_data64(cqes[i]);
                const auto tag = static_cast<unsigned>(ud & 0xFFFFFFFFu);
                const int res = cqes[i]->res;
                if (tag >= kMaxTags || pending_[tag] == 0) continue;
                if ((ud & kSyncBit) != 0) syncResult_[tag] = res;
                else if (res < 0 && result_[tag] >= 0) result_[tag] = res;  // a read's first error wins
                else if (res > 0 && result_[tag] >= 0) result_[tag] += res;
                if (--pending_[tag] == 0) {
                    const WriteOp& w = writes_[tag];
                    int r = result_[tag];
                    if (w.len == 0) {
                        if (r >= 0 && syncResult_[tag] < 0) r = syncResult_[tag];  // a sync of its own
                    } else if (r >= 0 && static_cast<std::size_t>(r) < w.len) {
                        r = finishShortWrite(tag, r);
                    } else if (r >= 0 && w.sync && syncResult_[tag] < 0) {
                        r = syncResult_[tag];
                    }
                    // (A sync cancelled because its write failed is reported as the write's error.)
                    out.push_back(Completion{tag, r});
                    ++n;
                }
            }
            io_uring_cq_advance(&uring_->ring, k);
        }
    }
#endif
    return n;
}

int FileIo::finishShortWrite(unsigned tag, int done) {
    const WriteOp& w = writes_[tag];
    const auto d = static_cast<std::size_t>(done);
    const int r = fullPwrite(fd_, w.data + d, w.len - d, w.offset + d);
    if (r < 0) return r;
    if (w.sync && ::fdatasync(fd_) != 0) return -errno;
    return static_cast<int>(w.len);
}

void FileIo::drain(std::vector<Completion>& out) {
    reap(out);
#if SEQCAST_HAVE_URING
    if (uring_) {
        for (;;) {
            bool any = false;
            for (int p : pending_) any = any || p != 0;
            if (!any) break;
            io_uring_cqe* cqe = nullptr;
            if (io_uring_wait_cqe(&uring_->ring, &cqe) != 0) break;
            reap(out);
        }
    }
#endif
}

}  // namespace seqcast::archive
