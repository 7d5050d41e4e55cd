// The roles a process may embed through the public API (include/seqcast/seqcast.hpp): the
// sequencer and the archiver, over their engines (sequencer/, archive/), with the same sockets,
// counters and opt-in thread as the clients (client/api_support.h).
#include <array>
#include <memory>
#include <string>

#include "archive/archiver.h"
#include "client/api/api_support.h"
#include "fabric/clock.h"
#include "fabric/shm_counters.h"
#include "fabric/wire.h"
#include "seqcast/seqcast.hpp"
#include "sequencer/ha.h"
#include "sequencer/sequencer.h"

namespace seqcast {

using namespace api_support;

struct Sequencer::Impl {
    std::unique_ptr<ShmCounters> shm;
    std::unique_ptr<transport::Transport> control;
    std::unique_ptr<transport::Transport> data;  // null: the control socket sends the stream too
    std::unique_ptr<transport::Transport> repl;  // HA only
    std::unique_ptr<sequencer::Sequencer> seq;
    std::unique_ptr<sequencer::HaNode> ha;       // HA only
    Driver driver;  // last: its thread stops before the rest is destroyed

    transport::Transport& dataSocket() const { return data ? *data : *control; }
    int work() {
        const std::uint64_t now = monoNs();
        if (ha) ha->doWork(now);
        return seq->doWork(now);
    }
    // HA: the standby's timers (acknowledgements, joins) and the coordinator's decisions need a
    // turn at least every millisecond.
    std::uint64_t nextTimer() const {
        const std::uint64_t t = seq->nextTimerNs();
        return ha ? std::min(t, monoNs() + 1'000'000) : t;
    }
    std::array<int, 3> waitFds() const {  // no allocation per idle wait
        return {control->waitFd(), data ? data->waitFd() : -1, repl ? repl->waitFd() : -1};
    }
};

Sequencer::Sequencer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Sequencer::~Sequencer() = default;

std::unique_ptr<Sequencer> Sequencer::create(const SequencerOptions& o) {
    sequencer::SequencerConfig cfg;
    if (o.stream == 0) throw SetupError("stream", "must be 1..4294967295");
    cfg.stream = StreamId{o.stream};
    cfg.group = endpointOf("group", o.group);
    if (!cfg.group.multicast()) throw SetupError("group", cfg.group.str() + " is not a multicast address (224.0.0.0/4)");
    if (o.mtu < wire::kMinMtu || o.mtu > wire::kMaxDatagram)
        throw SetupError("mtu", "must be " + std::to_string(wire::kMinMtu) + ".." + std::to_string(wire::kMaxDatagram));
    cfg.mtu = o.mtu;
    if (o.ringBytes < 1024 * o.mtu || o.ringBytes > (1ull << 36))
        throw SetupError("ringBytes", "must be 1024 x mtu (" + std::to_string(1024 * o.mtu) + ") .. 64 GiB");
    cfg.ringBytes = o.ringBytes;
    cfg.statePath = o.stateFile.empty() ? "seqcast-stream-" + std::to_string(o.stream) + ".state" : o.stateFile;
    cfg.syncState = o.syncState;
    if (o.maxPublishers == 0 || o.maxPublishers > 65536) throw SetupError("maxPublishers", "must be 1..65536");
    cfg.maxPublishers = o.maxPublishers;
    if (o.publisherTimeoutS == 0 || o.publisherTimeoutS > 604800) throw SetupError("publisherTimeoutS", "must be 1..604800");
    cfg.publisherTimeoutNs = o.publisherTimeoutS * 1'000'000'000;
    if (o.heartbeatMinUs == 0 || o.heartbeatMinUs > 10'000'000) throw SetupError("heartbeatMinUs", "must be 1..10000000");
    if (o.heartbeatMaxMs == 0 || o.heartbeatMaxMs > 60'000) throw SetupError("heartbeatMaxMs", "must be 1..60000");
    cfg.heartbeatMinNs = o.heartbeatMinUs * 1000;
    cfg.heartbeatMaxNs = o.heartbeatMaxMs * 1'000'000;
    if (cfg.heartbeatMaxNs < cfg.heartbeatMinNs) throw SetupError("heartbeatMaxMs", "must not be below heartbeatMinUs");
    if (o.retransmitHoldoffUs > 10'000'000) throw SetupError("retransmitHoldoffUs", "must be 0..10000000");
    cfg.retransmitHoldoffNs = o.retransmitHoldoffUs * 1000;
    if (o.retransmitBytesPerSec < 1024 || o.retransmitBytesPerSec > (1ull << 40))
        throw SetupError("retransmitBytesPerSec", "must be 1024..1099511627776");
    cfg.retransmitBytesPerSec = o.retransmitBytesPerSec;
    if (o.retransmitBytesPerSecPerHost < 1024 || o.retransmitBytesPerSecPerHost > (1ull << 40))
        throw SetupError("retransmitBytesPerSecPerHost", "must be 1024..1099511627776");
    cfg.retransmitBytesPerSecPerHost = o.retransmitBytesPerSecPerHost;
    if (!(o.faultDamageEntry >= 0 && o.faultDamageEntry <= 1)) throw SetupError("faultDamageEntry", "must be 0..1");
    cfg.faultDamageEntry = o.faultDamageEntry;
    cfg.faultSeed = o.network.faults.seed;
    if (auto st = cfg.validate(); !st) throw SetupError("", st.error().message(), st.error().code);

    const transport::FaultConfig faults = faultsFrom(o.network.faults);
    auto udp = socketsFrom(o.network);
    udp.bind = endpointOf("control", o.control);
    udp.maxDatagram = cfg.mtu;
    auto dataUdp = udp;
    dataUdp.bind.port = 0;
    const bool shared = o.dataBind == "control";
    if (!shared && !o.dataBind.empty()) dataUdp.bind = endpointOf("dataBind", o.dataBind, true);

    auto impl = std::make_unique<Impl>();
    impl->shm = ShmCounters::create("sequencer", o.stream);
    udp.counters = dataUdp.counters = &impl->shm->counters();
    impl->control = open(udp, "control", faults);
    if (!shared) {
        transport::FaultConfig dataFaults = faults;
        dataFaults.seed = faults.seed + 1;
        impl->data = open(dataUdp, "dataBind", dataFaults);
    }
    // HA: its options and its replication socket before the state file is touched.
    sequencer::HaConfig haConfig;
    if (!o.haEtcd.empty()) {
        if (o.haName.empty()) throw SetupError("haName", "HA needs this sequencer's name");
        haConfig.etcd = o.haEtcd;
        haConfig.name = o.haName;
        haConfig.stream = cfg.stream;
        haConfig.leaseTtlS = o.haLeaseTtlS;
        haConfig.takeoverNs = o.haTakeoverMs * 1'000'000;
        haConfig.isrTimeoutNs = o.haIsrTimeoutMs * 1'000'000;
        // The three addresses are set once bound (assign(): GCC 12 misreads a literal here, -Wrestrict).
        haConfig.replAddress.assign(1, '-');
        haConfig.controlAddress.assign(1, '-');
        haConfig.dataAddress.assign(1, '-');
        if (auto st = haConfig.validate(); !st) throw SetupError("haEtcd", st.error().message());
        if (auto e = sequencer::EtcdClient::create(o.haEtcd, 1); !e) throw SetupError("haEtcd", e.error().message());
        auto replUdp = socketsFrom(o.network);
        replUdp.bind = endpointOf("control", o.control);
        replUdp.bind.port = 0;
        if (!o.haRepl.empty()) replUdp.bind = endpointOf("haRepl", o.haRepl, true);
        replUdp.maxDatagram = cfg.mtu;
        replUdp.counters = &impl->shm->counters();
        impl->repl = open(replUdp, "haRepl", transport::FaultConfig{});
    }
    // Its errors are the state file's (the options were checked above).
    auto s = sequencer::Sequencer::create(cfg, *impl->control, impl->dataSocket(), impl->shm->counters());
    if (!s) throw SetupError("stateFile", s.error().message(), s.error().code);
    impl->seq = std::move(*s);
    if (impl->repl) {
        impl->seq->attachReplication(*impl->repl);
        sequencer::HaConfig hc = haConfig;
        hc.replAddress = impl->repl->local().str();
        hc.controlAddress = impl->control->local().str();
        hc.dataAddress = impl->dataSocket().local().str();
        hc.group = cfg.group.str();
        auto node = sequencer::HaNode::create(hc, *impl->seq);
        if (!node) throw SetupError("haEtcd", node.error().message(), node.error().code);
        impl->ha = std::move(*node);
    }
    return std::unique_ptr<Sequencer>(new Sequencer(std::move(impl)));
}

int Sequencer::doWork() {
    const auto g = impl_->driver.lock();
    return impl_->work();
}
void Sequencer::wait(std::uint32_t maxUs) {
    auto g = impl_->driver.lock();
    const std::uint64_t until = std::min<std::uint64_t>(monoNs() + maxUs * 1000ull, impl_->nextTimer());
    if (g.owns_lock()) g.unlock();
    const std::array<int, 3> fds = impl_->waitFds();
    waitReadable(std::span<const int>(fds), until);
}
void Sequencer::endOfStream() {
    const auto g = impl_->driver.lock();
    impl_->seq->endOfStream();
}
std::uint64_t Sequencer::nextOffset() const noexcept {
    const auto g = impl_->driver.lock();
    return impl_->seq->nextOffset().get();
}
std::uint32_t Sequencer::epoch() const noexcept { return impl_->seq->epoch().get(); }
bool Sequencer::recovered() const noexcept { return impl_->seq->recovered(); }
std::string Sequencer::controlAddress() const { return impl_->control->local().str(); }
std::string Sequencer::dataAddress() const { return impl_->dataSocket().local().str(); }
std::string Sequencer::socketKind() const { return impl_->control->kind(); }
std::uint64_t Sequencer::faultsInjected() const noexcept {
    const auto g = impl_->driver.lock();
    return impl_->seq->faultsInjected();
}
CounterValues Sequencer::counters() const { return valuesOf(impl_->shm->counters()); }
std::string Sequencer::haRole() const {
    switch (impl_->seq->role()) {
        case sequencer::Sequencer::Role::Single: return "single";
        case sequencer::Sequencer::Role::Leader: return "leader";
        case sequencer::Sequencer::Role::Standby: return "standby";
        case sequencer::Sequencer::Role::SteppedDown: return "stepped-down";
    }
    return "single";
}
std::string Sequencer::replAddress() const { return impl_->repl ? impl_->repl->local().str() : std::string(); }
std::string Sequencer::haFailure() const { return impl_->ha ? impl_->ha->failure() : std::string(); }

void Sequencer::startThread(const ThreadOptions& options) {
    Impl* i = impl_.get();
    impl_->driver.start(
        options, "seqcast-seq", [i] { return i->work(); }, [i] { return i->nextTimer(); },
        [fds = i->waitFds()] { return std::vector<int>(fds.begin(), fds.end()); }());
}
void Sequencer::stopThread() { impl_->driver.stop(); }
bool Sequencer::threadRunning() const noexcept { return impl_->driver.running(); }

// ---------------------------------------------------------------------------------------------
// Archiver

struct Archiver::Impl {
    std::unique_ptr<ShmCounters> shm;
    std::unique_ptr<transport::Transport> data, subControl, service;
    std::unique_ptr<archive::Archiver> ar;
    std::function<void(std::uint64_t, std::uint64_t)> onGap;
    std::string failure;
    Driver driver;  // last: its thread stops before the rest is destroyed
};

Archiver::Archiver(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Archiver::~Archiver() = default;

std::unique_ptr<Archiver> Archiver::create(const ArchiverOptions& o) {
    archive::ArchiverConfig cfg;
    if (o.stream == 0) throw SetupError("stream", "must be 1..4294967295");
    cfg.sub.stream = StreamId{o.stream};
    cfg.log.stream = cfg.sub.stream;
    const auto group = endpointOf("group", o.group);
    if (!group.multicast()) throw SetupError("group", group.str() + " is not a multicast address (224.0.0.0/4)");
    if (o.log.empty()) throw SetupError("log", "no path given");
    cfg.log.path = o.log;
    if (o.segmentBytes < (1u << 20) || o.segmentBytes > (1ull << 32) || o.segmentBytes % 4096 != 0)
        throw SetupError("segmentBytes", "must be a multiple of 4096 in 1 MiB..4 GiB");
    cfg.log.segmentBytes = o.segmentBytes;
    if (o.sizeBytes < 4 * o.segmentBytes || o.sizeBytes > (1ull << 44) || o.sizeBytes % o.segmentBytes != 0)
        throw SetupError("sizeBytes", "must be a multiple of segmentBytes, 4 segments to 16 TiB");
    cfg.log.capacity = o.sizeBytes;
    switch (o.durability) {
        case Durability::None: cfg.log.durability = archive::Durability::None; break;
        case Durability::Interval: cfg.log.durability = archive::Durability::Interval; break;
        case Durability::Batch: cfg.log.durability = archive::Durability::Batch; break;
        default: throw SetupError("durability", "not a Durability");
    }
    if (o.syncIntervalMs == 0 || o.syncIntervalMs > 60000) throw SetupError("syncIntervalMs", "must be 1..60000");
    cfg.log.syncIntervalNs = o.syncIntervalMs * 1'000'000;
    cfg.log.direct = o.direct;
    cfg.log.preferUring = o.useUring;
    cfg.log.stageBytes = std::min<std::uint64_t>(1u << 20, o.segmentBytes);
    if (o.maxSessions == 0 || o.maxSessions > 64) throw SetupError("maxSessions", "must be 1..64");
    cfg.maxSessions = o.maxSessions;
    if (o.maxSessionsPerClient == 0 || o.maxSessionsPerClient > 64) throw SetupError("maxSessionsPerClient", "must be 1..64");
    cfg.maxSessionsPerClient = o.maxSessionsPerClient;
    if (o.windowBytes < (64u << 10) || o.windowBytes > (1u << 30)) throw SetupError("windowBytes", "must be 64 KiB..1 GiB");
    cfg.windowBytes = o.windowBytes;
    if (o.nakDeadlineMs == 0 || o.nakDeadlineMs > 3'600'000) throw SetupError("nakDeadlineMs", "must be 1..3600000");
    cfg.sub.nak.deadlineNs = o.nakDeadlineMs * 1'000'000;
    if (o.reorderBytes < (64u << 10) || o.reorderBytes > (1ull << 34)) throw SetupError("reorderBytes", "must be 64 KiB..16 GiB");
    cfg.sub.reorderBytes = o.reorderBytes;
    if (o.backlogBytes < (1u << 20) || o.backlogBytes > (1ull << 40)) throw SetupError("backlogBytes", "must be 1 MiB..1 TiB");
    cfg.backlogBytes = o.backlogBytes;
    if (auto st = cfg.validate(); !st) throw SetupError("", st.error().message(), st.error().code);

    auto dataUdp = groupSocket(o.network, group);
    auto subUdp = socketsFrom(o.network);
    subUdp.bind = transport::Endpoint{subUdp.interface, 0};
    auto svcUdp = socketsFrom(o.network);
    svcUdp.bind = endpointOf("control", o.control);
    const transport::FaultConfig faults = faultsFrom(o.network.faults);

    auto impl = std::make_unique<Impl>();
    impl->onGap = o.onGap;
    Impl* i = impl.get();
    cfg.onGap = [i](Offset first, std::uint64_t count) {
        if (i->onGap) i->onGap(first.get(), count);
    };
    impl->shm = ShmCounters::create("archiver", o.stream);
    dataUdp.counters = subUdp.counters = svcUdp.counters = &impl->shm->counters();
    impl->data = open(dataUdp, "group", faults);
    impl->subControl = open(subUdp, "network.interface");
    impl->service = open(svcUdp, "control");
    // Its errors are the log's (the options were checked above).
    auto a = archive::Archiver::create(cfg, *impl->data, *impl->subControl, *impl->service, impl->shm->counters(),
                                       o.onRecoveryProgress);
    if (!a) throw SetupError("log", a.error().message(), a.error().code);
    impl->ar = std::move(*a);
    return std::unique_ptr<Archiver>(new Archiver(std::move(impl)));
}

int Archiver::doWork() {
    const auto g = impl_->driver.lock();
    return impl_->ar->doWork(monoNs());
}
void Archiver::wait(std::uint32_t maxUs) {
    auto g = impl_->driver.lock();
    const std::uint64_t until = std::min<std::uint64_t>(monoNs() + maxUs * 1000ull, impl_->ar->nextTimerNs());
    if (g.owns_lock()) g.unlock();
    waitOn({impl_->data->waitFd(), impl_->subControl->waitFd(), impl_->service->waitFd()}, until);
}
bool Archiver::flush() {
    const auto g = impl_->driver.lock();
    auto st = impl_->ar->flush();
    if (!st) impl_->failure = st.error().message();
    return st.has_value();
}
const std::string& Archiver::failure() const noexcept {
    const auto g = impl_->driver.lock();
    return impl_->ar->failure().empty() ? impl_->failure : impl_->ar->failure();
}
std::uint64_t Archiver::earliestOffset() const noexcept {
    const auto g = impl_->driver.lock();
    return impl_->ar->log().earliest().get();
}
std::uint64_t Archiver::nextOffset() const noexcept {
    const auto g = impl_->driver.lock();
    return impl_->ar->log().next().get();
}
std::uint64_t Archiver::durableOffset() const noexcept {
    const auto g = impl_->driver.lock();
    return impl_->ar->log().durable().get();
}
bool Archiver::recovered() const noexcept { return impl_->ar->log().recovered(); }
std::uint64_t Archiver::recoveredRecords() const noexcept { return impl_->ar->log().recoveredRecords(); }
std::uint64_t Archiver::damagedRecords() const noexcept { return impl_->ar->log().damagedRecords(); }
std::uint64_t Archiver::truncatedBytes() const noexcept { return impl_->ar->log().truncatedBytes(); }
bool Archiver::usingUring() const noexcept { return impl_->ar->log().usingUring(); }
std::string Archiver::controlAddress() const { return impl_->service->local().str(); }
CounterValues Archiver::counters() const { return valuesOf(impl_->shm->counters()); }

void Archiver::startThread(const ThreadOptions& options) {
    Impl* i = impl_.get();
    impl_->driver.start(
        options, "seqcast-arch", [i] { return i->ar->doWork(monoNs()); }, [i] { return i->ar->nextTimerNs(); },
        std::vector<int>{i->data->waitFd(), i->subControl->waitFd(), i->service->waitFd()});
}
void Archiver::stopThread() { impl_->driver.stop(); }
bool Archiver::threadRunning() const noexcept { return impl_->driver.running(); }

}  // namespace seqcast
