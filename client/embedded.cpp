// The roles a process may embed through the public API (include/seqcast/seqcast.hpp): the
// sequencer, over the sequencer's engine (sequencer/), with the same sockets, counters and
// opt-in thread as the clients (client/api_support.h).
#include <memory>
#include <string>

#include "client/api_support.h"
#include "fabric/clock.h"
#include "fabric/shm_counters.h"
#include "fabric/wire.h"
#include "seqcast/seqcast.hpp"
#include "sequencer/sequencer.h"

namespace seqcast {

using namespace api_support;

struct Sequencer::Impl {
    std::unique_ptr<ShmCounters> shm;
    std::unique_ptr<transport::Transport> control;
    std::unique_ptr<transport::Transport> data;  // null: the control socket sends the stream too
    std::unique_ptr<sequencer::Sequencer> seq;
    Driver driver;  // last: its thread stops before the rest is destroyed

    transport::Transport& dataSocket() const { return data ? *data : *control; }
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
    if (auto st = cfg.validate(); !st) throw SetupError("", st.error().message());

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
    // Its errors are the state file's (the options were checked above).
    auto s = sequencer::Sequencer::create(cfg, *impl->control, impl->dataSocket(), impl->shm->counters());
    if (!s) throw SetupError("stateFile", s.error().message());
    impl->seq = std::move(*s);
    return std::unique_ptr<Sequencer>(new Sequencer(std::move(impl)));
}

int Sequencer::doWork() {
    const auto g = impl_->driver.lock();
    return impl_->seq->doWork(monoNs());
}
void Sequencer::wait(std::uint32_t maxUs) {
    auto g = impl_->driver.lock();
    const std::uint64_t until = std::min<std::uint64_t>(monoNs() + maxUs * 1000ull, impl_->seq->nextTimerNs());
    if (g.owns_lock()) g.unlock();
    waitOn({impl_->control->waitFd(), impl_->data ? impl_->data->waitFd() : -1}, until);
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

void Sequencer::startThread(const ThreadOptions& options) {
    Impl* i = impl_.get();
    impl_->driver.start(
        options, "seqcast-seq", [i] { return i->seq->doWork(monoNs()); }, [i] { return i->seq->nextTimerNs(); },
        std::vector<int>{i->control->waitFd(), i->data ? i->data->waitFd() : -1});
}
void Sequencer::stopThread() { impl_->driver.stop(); }
bool Sequencer::threadRunning() const noexcept { return impl_->driver.running(); }

}  // namespace seqcast
