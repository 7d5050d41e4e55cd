#include "fabric/shm_counters.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "fabric/clock.h"

namespace seqcast {

namespace {
constexpr std::size_t kHeaderBytes = 64;
std::size_t fileSize() { return kHeaderBytes + kCounterCount * sizeof(CounterSlot); }
}  // namespace

namespace {
// Counters files left by processes that died without cleaning up (SIGKILL): remove them.
void removeStale(const std::string& dir) {
    DIR* d = ::opendir(dir.c_str());
    if (d == nullptr) return;
    while (dirent* e = ::readdir(d)) {
        const std::string name = e->d_name;
        if (name.size() < 5 || name.substr(name.size() - 4) != ".ctr") continue;
        const long pid = std::strtol(name.c_str(), nullptr, 10);
        if (pid > 0 && ::kill(static_cast<pid_t>(pid), 0) != 0 && errno == ESRCH) ::unlink((dir + "/" + name).c_str());
    }
    ::closedir(d);
}
}  // namespace

std::unique_ptr<ShmCounters> ShmCounters::create(const std::string& role, std::uint32_t stream) {
    std::unique_ptr<ShmCounters> s(new ShmCounters());
    ::mkdir(kShmCountersDir, 0755);
    removeStale(kShmCountersDir);
    s->path_ = std::string(kShmCountersDir) + "/" + std::to_string(::getpid()) + "-" + role + ".ctr";
    const int fd = ::open(s->path_.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd >= 0 && ::ftruncate(fd, static_cast<off_t>(fileSize())) == 0) {
        void* m = ::mmap(nullptr, fileSize(), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        if (m != MAP_FAILED) {
            s->map_ = m;
            s->size_ = fileSize();
            auto* h = static_cast<ShmCountersHeader*>(m);
            h->version = 1;
            h->counterCount = static_cast<std::uint32_t>(kCounterCount);
            h->pid = static_cast<std::uint64_t>(::getpid());
            h->startWallNs = wallNs();
            h->stream = stream;
            std::strncpy(h->role, role.c_str(), sizeof(h->role) - 1);
            auto* slots = reinterpret_cast<CounterSlot*>(static_cast<std::byte*>(m) + kHeaderBytes);
            s->counters_ = std::make_unique<Counters>(slots);
            __atomic_store_n(&h->magic, kShmCountersMagic, __ATOMIC_RELEASE);
        }
    }
    if (fd >= 0) ::close(fd);
    if (!s->counters_) {
        s->path_.clear();
        s->counters_ = std::make_unique<Counters>();
    }
    return s;
}

ShmCounters::~ShmCounters() {
    counters_.reset();
    if (map_ != nullptr) ::munmap(map_, size_);
    if (!path_.empty()) ::unlink(path_.c_str());
}

std::vector<CounterSnapshot> readAllCounters(const std::string& dir) {
    std::vector<CounterSnapshot> out;
    DIR* d = ::opendir(dir.c_str());
    if (d == nullptr) return out;
    while (dirent* e = ::readdir(d)) {
        const std::string name = e->d_name;
        if (name.size() < 5 || name.substr(name.size() - 4) != ".ctr") continue;
        const std::string path = dir + "/" + name;
        const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
        if (fd < 0) continue;
        struct stat st {};
        if (::fstat(fd, &st) != 0 || static_cast<std::size_t>(st.st_size) < fileSize()) {
            ::close(fd);
            continue;
        }
        void* m = ::mmap(nullptr, fileSize(), PROT_READ, MAP_SHARED, fd, 0);
        ::close(fd);
        if (m == MAP_FAILED) continue;
        const auto* h = static_cast<const ShmCountersHeader*>(m);
        if (__atomic_load_n(&h->magic, __ATOMIC_ACQUIRE) == kShmCountersMagic && h->counterCount == kCounterCount) {
            CounterSnapshot s;
            s.path = path;
            s.pid = h->pid;
            s.role = std::string(h->role, strnlen(h->role, sizeof(h->role)));
            s.stream = h->stream;
            s.startWallNs = h->startWallNs;
            s.alive = ::kill(static_cast<pid_t>(h->pid), 0) == 0 || errno == EPERM;
            const auto* slots = reinterpret_cast<const CounterSlot*>(static_cast<const std::byte*>(m) + kHeaderBytes);
            for (std::size_t i = 0; i < kCounterCount; ++i) s.values.push_back(slots[i].value.load(std::memory_order_relaxed));
            out.push_back(std::move(s));
        }
        ::munmap(m, fileSize());
    }
    ::closedir(d);
    return out;
}

}  // namespace seqcast
