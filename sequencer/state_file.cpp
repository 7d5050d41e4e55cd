#include "sequencer/state_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "recovery/retransmit_ring.h"

namespace seqcast::sequencer {

namespace {
constexpr std::uint64_t kStateMagic = 0x3154535145534553ull;  // "SESQEST1"
constexpr std::uint32_t kStateVersion = 1;
std::size_t roundPage(std::size_t v) { return (v + 4095) & ~std::size_t{4095}; }
}  // namespace

std::size_t StateLayout::publishersOffset() const noexcept { return roundPage(sizeof(StateHeader)); }
std::size_t StateLayout::ringOffset() const noexcept {
    return roundPage(publishersOffset() + std::size_t{maxPublishers} * sizeof(PublisherRecord));
}
std::size_t StateLayout::ringRegion() const noexcept { return recovery::RetransmitRing::regionSize(ringBytes, maxDatagram); }
std::size_t StateLayout::total() const noexcept { return roundPage(ringOffset() + ringRegion()); }

Result<StateFile> StateFile::open(const std::string& path, StreamId stream, const StateLayout& layout) {
    StateFile s;
    s.path_ = path;
    s.size_ = layout.total();
    bool fresh = true;
    if (path.empty()) {
        void* m = ::mmap(nullptr, s.size_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (m == MAP_FAILED) return failErrno("mmap anonymous state");
        s.map_ = static_cast<std::byte*>(m);
    } else {
        s.fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
        if (s.fd_ < 0) return failErrno("open state file " + path);
        struct stat st {};
        if (::fstat(s.fd_, &st) != 0) return failErrno("stat " + path);
        fresh = st.st_size == 0;
        if (!fresh && static_cast<std::size_t>(st.st_size) != s.size_)
            return failInvalid("state file " + path + " has " + std::to_string(st.st_size) + " bytes, this configuration needs " +
                               std::to_string(s.size_) + " (ring size, MTU or max publishers changed? move the file away to start a new stream)");
        if (fresh && ::ftruncate(s.fd_, static_cast<off_t>(s.size_)) != 0) return failErrno("size state file " + path);
        void* m = ::mmap(nullptr, s.size_, PROT_READ | PROT_WRITE, MAP_SHARED, s.fd_, 0);
        if (m == MAP_FAILED) return failErrno("mmap state file " + path);
        s.map_ = static_cast<std::byte*>(m);
    }
    s.header_ = reinterpret_cast<StateHeader*>(s.map_);
    s.pubs_ = reinterpret_cast<PublisherRecord*>(s.map_ + layout.publishersOffset());
    s.ring_ = std::span<std::byte>(s.map_ + layout.ringOffset(), layout.ringRegion());
    StateHeader& h = *s.header_;
    if (!fresh) {
        if (h.magic != kStateMagic || h.version != kStateVersion)
            return failInvalid("state file " + path + " is not a seqcast v1 sequencer state");
        if (h.streamId != stream.get())
            return failInvalid("state file " + path + " belongs to stream " + std::to_string(h.streamId) + ", not " +
                               std::to_string(stream.get()));
        if (h.maxPublishers != layout.maxPublishers || h.ringBytes != layout.ringBytes || h.maxDatagram != layout.maxDatagram)
            return failInvalid("state file " + path + " was made with another ring size, MTU or publisher limit");
        s.recovered_ = true;
    } else {
        h = StateHeader{kStateMagic, kStateVersion, stream.get(), 0, layout.maxPublishers, layout.ringBytes,
                        layout.maxDatagram, 0, 0};
    }
    return s;
}

StateFile::StateFile(StateFile&& o) noexcept
    : path_(std::move(o.path_)), fd_(o.fd_), map_(o.map_), size_(o.size_), recovered_(o.recovered_),
      header_(o.header_), pubs_(o.pubs_), ring_(o.ring_) {
    o.fd_ = -1;
    o.map_ = nullptr;
}

StateFile::~StateFile() {
    if (map_ != nullptr) ::munmap(map_, size_);
    if (fd_ >= 0) ::close(fd_);
}

Status StateFile::sync() noexcept {
    if (fd_ < 0) return {};
    if (::msync(map_, size_, MS_SYNC) != 0) return failErrno("msync " + path_);
    return {};
}

}  // namespace seqcast::sequencer
