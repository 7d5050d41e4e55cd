// What the public API's classes share (client/api.cpp, client/embedded.cpp): option checks that
// name the field at fault, the one way they open sockets, their counters by name, and the opt-in
// thread that drives an object. Internal: not installed.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "fabric/counters.h"
#include "fabric/idle.h"
#include "seqcast/seqcast.hpp"
#include "transport/fault_transport.h"
#include "transport/udp_transport.h"

namespace seqcast::api_support {

// HOST:PORT, or a SetupError naming `field`.
transport::Endpoint endpointOf(const std::string& field, const std::string& text, bool allowZeroPort = false);
// The socket settings every client shares, from NetworkOptions; SetupErrors name "network.*".
transport::UdpConfig socketsFrom(const NetworkOptions& n);
// A socket that receives the stream: bound to the group's port, the group joined.
transport::UdpConfig groupSocket(const NetworkOptions& n, transport::Endpoint group);
transport::FaultConfig faultsFrom(const FaultOptions& f);
CounterValues valuesOf(const Counters& c);
// Opens a transport through the one factory; a failure throws a SetupError naming the setting the
// error is about (Error::field), else `field`.
std::unique_ptr<transport::Transport> open(const transport::UdpConfig& cfg, const std::string& field,
                                           const transport::FaultConfig& faults = {});
// Sleeps until one of `fds` is readable or `untilNs` (monotonic) has come.
void waitOn(std::initializer_list<int> fds, std::uint64_t untilNs);
IdleMode idleMode(IdleStrategy s) noexcept;

// An object's own thread (startThread): it runs `pass` until stopped, idling as the options say
// after a pass that found no work. A pass holds `mu`, and while the thread runs every public call
// on the object takes it too (lock()); recursive, so a handler may call its own object.
class Driver {
public:
    ~Driver() { stop(); }

    // IdleStrategy::Block: `until()` (with the lock held) says until when to sleep at most (the
    // object's next timer); the thread sleeps on `fds`, the object's sockets, without the lock.
    using Until = std::function<std::uint64_t()>;
    void start(const ThreadOptions& o, const char* name, std::function<int()> pass, Until until, std::vector<int> fds) {
        if (t_.joinable()) throw SetupError("thread", "already running");
        if (o.maxSleepUs == 0 || o.maxSleepUs > 1'000'000) throw SetupError("maxSleepUs", "must be 1..1000000");
        const unsigned cpus = std::thread::hardware_concurrency();
        if (o.cpu < -1 || (o.cpu >= 0 && cpus != 0 && static_cast<unsigned>(o.cpu) >= cpus))
            throw SetupError("cpu", "must be -1 or a CPU of this machine (0.." + std::to_string(cpus == 0 ? 0 : cpus - 1) + ")");
        stop_.store(false, std::memory_order_relaxed);
        t_ = std::thread([this, o, pass = std::move(pass), until = std::move(until), fds = std::move(fds)]() mutable {
            run(o, pass, until, Idler(idleMode(o.idle), std::move(fds), o.maxSleepUs * 1000ull));
        });
        ::pthread_setname_np(t_.native_handle(), name);
        if (o.cpu >= 0) {
            cpu_set_t set;
            CPU_ZERO(&set);
            CPU_SET(o.cpu, &set);
            if (const int rc = ::pthread_setaffinity_np(t_.native_handle(), sizeof set, &set); rc != 0) {
                stop();
                throw SetupError("cpu", "cannot pin to CPU " + std::to_string(o.cpu) + ": " + std::strerror(rc));
            }
        }
    }

    void stop() {
        if (!t_.joinable()) return;
        stop_.store(true, std::memory_order_relaxed);
        t_.join();
    }

    bool running() const noexcept { return t_.joinable(); }
    // The object's lock while the thread runs; nothing (no cost) otherwise.
    std::unique_lock<std::recursive_mutex> lock() {
        return running() ? std::unique_lock<std::recursive_mutex>(mu_) : std::unique_lock<std::recursive_mutex>();
    }

private:
    void run(const ThreadOptions& o, const std::function<int()>& pass, const Until& until, Idler idler) {
        while (!stop_.load(std::memory_order_relaxed)) {
            int work;
            std::uint64_t wakeNs = 0;
            {
                std::lock_guard<std::recursive_mutex> g(mu_);
                work = pass();
                if (work == 0 && o.idle == IdleStrategy::Block) wakeNs = until();
            }
            idler.idle(work, wakeNs);
        }
    }

    std::recursive_mutex mu_;
    std::atomic<bool> stop_{false};
    std::thread t_;
};


}  // namespace seqcast::api_support
