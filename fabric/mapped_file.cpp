#include "fabric/mapped_file.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

namespace seqcast {

Result<MappedFile> MappedFile::open(const std::string& path, const std::string& what) {
    MappedFile f;
    f.path_ = path;
    f.what_ = what;
    f.fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (f.fd_ < 0) return failErrno("open " + what + " " + path);
    if (::flock(f.fd_, LOCK_EX | LOCK_NB) != 0) {
        if (errno == EWOULDBLOCK)
            return fail(Error{EBUSY, what + " " + path + " is in use by another process (only one may own it at a time)"});
        return failErrno("lock " + what + " " + path);
    }
    struct stat st {};
    if (::fstat(f.fd_, &st) != 0) return failErrno("stat " + what + " " + path);
    if (!S_ISREG(st.st_mode)) return failInvalid(what + " " + path + " is not a regular file");
    f.fileSize_ = static_cast<std::size_t>(st.st_size);
    return f;
}

Result<MappedFile> MappedFile::anonymous(std::size_t size, const std::string& what) {
    MappedFile f;
    f.what_ = what;
    void* m = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED) return failErrno("mmap anonymous " + what);
    f.map_ = static_cast<std::byte*>(m);
    f.size_ = size;
    return f;
}

Status MappedFile::map(std::size_t size) {
    if (fd_ < 0 || map_ != nullptr) return failInvalid(what_ + " " + path_ + ": already mapped");
    if (fileSize_ == 0 && ::ftruncate(fd_, static_cast<off_t>(size)) != 0) return failErrno("size " + what_ + " " + path_);
    void* m = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd_, 0);
    if (m == MAP_FAILED) return failErrno("mmap " + what_ + " " + path_);
    map_ = static_cast<std::byte*>(m);
    size_ = size;
    return {};
}

MappedFile::MappedFile(MappedFile&& o) noexcept
    : path_(std::move(o.path_)), what_(std::move(o.what_)), fd_(o.fd_), fileSize_(o.fileSize_), map_(o.map_), size_(o.size_) {
    o.fd_ = -1;
    o.map_ = nullptr;
}

MappedFile::~MappedFile() {
    if (map_ != nullptr) ::munmap(map_, size_);
    if (fd_ >= 0) ::close(fd_);  // releases the lock
}

Status MappedFile::sync() noexcept {
    if (fd_ < 0 || map_ == nullptr) return {};
    if (::msync(map_, size_, MS_SYNC) != 0) return failErrno("msync " + what_ + " " + path_);
    return {};
}

}  // namespace seqcast
