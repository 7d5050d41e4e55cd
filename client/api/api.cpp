// The public C++ API (include/seqcast/seqcast.hpp) over the engine: each client owns its sockets
// (opened by the one transport factory, so --auth-key style settings apply on every backend), its
// counters (a shared-memory file that `seqcast stat` reads) and the agent it drives.
#include "seqcast/seqcast.hpp"

#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <chrono>
#include <deque>
#include <mutex>
#include <optional>
#include <thread>

#include "client/api/api_support.h"
#include "client/commit_file.h"
#include "client/publisher.h"
#include "client/subscriber.h"
#include "fabric/clock.h"
#include "fabric/counters.h"
#include "fabric/idle.h"
#include "fabric/shm_counters.h"
#include "transport/allowlist_transport.h"
#include "transport/auth_transport.h"
#include "transport/dpdk_transport.h"
#include "transport/open_transport.h"

namespace seqcast {

using namespace api_support;


// ---------------------------------------------------------------------------------------------
// Publisher

struct Publisher::Impl {
    std::unique_ptr<ShmCounters> shm;
    std::unique_ptr<transport::Transport> socket;
    std::unique_ptr<client::Publisher> pub;
    ConfirmHandler onConfirm;
    Driver driver;  // last: its thread stops before the rest is destroyed
};

Publisher::Publisher(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Publisher::~Publisher() = default;

std::unique_ptr<Publisher> Publisher::create(const PublisherOptions& o, ConfirmHandler onConfirm) {
    client::PublisherConfig cfg;
    cfg.stream = StreamId{o.stream};
    cfg.id = PublisherId{o.id};
    {
        // "HOST:PORT[,HOST:PORT...]": the first, then the stream's other (HA) sequencers in turn.
        std::size_t pos = 0;
        bool first = true;
        while (pos <= o.sequencer.size()) {
            const std::size_t comma = std::min(o.sequencer.find(',', pos), o.sequencer.size());
            const auto ep = endpointOf("sequencer", o.sequencer.substr(pos, comma - pos));
            if (first) cfg.sequencer = ep;
            else cfg.alternates.push_back(ep);
            first = false;
            pos = comma + 1;
        }
        if (cfg.alternates.size() > 15) throw SetupError("sequencer", "at most 16 sequencer addresses");
    }
    cfg.journalPath = o.journal;
    if (o.mtu < wire::kMinMtu || o.mtu > wire::kMaxDatagram)
        throw SetupError("mtu", "must be " + std::to_string(wire::kMinMtu) + ".." + std::to_string(wire::kMaxDatagram));
    cfg.mtu = o.mtu;
    if (o.window == 0 || o.window > 4096 || (o.window & (o.window - 1)) != 0)
        throw SetupError("window", "must be a power of two in 1..4096");
    cfg.window = o.window;
    if (o.maxMessage == 0 || o.maxMessage > (1u << 30)) throw SetupError("maxMessage", "must be 1..1073741824 bytes");
    cfg.maxMessage = o.maxMessage;
    if (o.windowBytes < o.maxMessage) throw SetupError("windowBytes", "must be at least maxMessage");
    cfg.windowBytes = o.windowBytes;
    if (auto st = cfg.validate(); !st) throw SetupError("", st.error().message(), st.error().code);

    auto impl = std::make_unique<Impl>();
    impl->onConfirm = std::move(onConfirm);
    impl->shm = ShmCounters::create("pub", o.stream);
    auto udp = socketsFrom(o.network);
    udp.bind = endpointOf("bind", o.bind, true);
    udp.maxDatagram = 2048;
    udp.counters = &impl->shm->counters();
    impl->socket = open(udp, "bind", faultsFrom(o.network.faults));
    Impl* raw = impl.get();
    client::Publisher::ConfirmHandler onEngineConfirm;  // none without a handler: no call per confirmation
    if (impl->onConfirm)
        onEngineConfirm = [raw](const client::Confirmation& c) {
            const bool known = c.offset.get() != wire::kOffsetOpen;
            raw->onConfirm(Confirmation{c.pubSeq.get(), known ? c.offset.get() : 0, known, c.latencyNs});
        };
    auto p = client::Publisher::create(cfg, *impl->socket, impl->shm->counters(), std::move(onEngineConfirm));
    if (!p) throw SetupError("journal", p.error().message(), p.error().code);
    impl->pub = std::move(*p);
    return std::unique_ptr<Publisher>(new Publisher(std::move(impl)));
}

namespace {
OfferResult resultOf(client::Publisher::Offer r) {
    switch (r) {
        case client::Publisher::Offer::Accepted: return OfferResult::Accepted;
        case client::Publisher::Offer::BackPressured: return OfferResult::BackPressured;
        case client::Publisher::Offer::TooLarge: return OfferResult::TooLarge;
        case client::Publisher::Offer::ClaimOpen: return OfferResult::ClaimOpen;
    }
    return OfferResult::TooLarge;
}
}  // namespace

OfferResult Publisher::offer(std::span<const std::byte> message) {
    const auto g = impl_->driver.lock();
    if (!impl_->pub->fatalError().empty()) return OfferResult::NotConnected;
    const auto r = impl_->pub->offer(message, wallNs());
    if (r == client::Publisher::Offer::TooLarge) impl_->shm->counters().add(Counter::DropTooLarge);
    return resultOf(r);
}

OfferResult Publisher::tryClaim(std::size_t maxBytes, std::span<std::byte>& buffer) {
    const auto g = impl_->driver.lock();
    if (!impl_->pub->fatalError().empty()) return OfferResult::NotConnected;
    const auto r = impl_->pub->claim(maxBytes, buffer);
    if (r == client::Publisher::Offer::TooLarge) impl_->shm->counters().add(Counter::DropTooLarge);
    return resultOf(r);
}

void Publisher::commit() { commit(~std::size_t{0}); }
void Publisher::commit(std::size_t length) {
    const auto g = impl_->driver.lock();
    impl_->pub->commitClaim(length, wallNs());
}
void Publisher::abort() noexcept {
    const auto g = impl_->driver.lock();
    impl_->pub->abortClaim();
}

int Publisher::doWork() { return doWork(monoNs()); }
int Publisher::doWork(std::uint64_t nowNs) {
    const auto g = impl_->driver.lock();
    return impl_->pub->doWork(nowNs);
}
void Publisher::wait(std::uint32_t maxUs) { waitOn({impl_->socket->waitFd()}, monoNs() + maxUs * 1000ull); }
std::uint32_t Publisher::id() const noexcept { return impl_->pub->id().get(); }
std::uint64_t Publisher::nextPubSeq() const noexcept {
    const auto g = impl_->driver.lock();
    return impl_->pub->nextPubSeq().get();
}
std::uint64_t Publisher::unconfirmed() const noexcept {
    const auto g = impl_->driver.lock();
    return impl_->pub->unconfirmed();
}
std::uint64_t Publisher::recoveredMessages() const noexcept { return impl_->pub->recoveredMessages(); }
const std::string& Publisher::fatalError() const noexcept {
    const auto g = impl_->driver.lock();
    return impl_->pub->fatalError();
}

void Publisher::startThread(const ThreadOptions& options) {
    client::Publisher* p = impl_->pub.get();
    Impl* i = impl_.get();
    impl_->driver.start(
        options, "seqcast-pub", [p] { return p->doWork(monoNs()); }, [] { return ~std::uint64_t{0}; },
        std::vector<int>{i->socket->waitFd()});
}
void Publisher::stopThread() { impl_->driver.stop(); }
CounterValues Publisher::counters() const { return valuesOf(impl_->shm->counters()); }
bool Publisher::threadRunning() const noexcept { return impl_->driver.running(); }

// ---------------------------------------------------------------------------------------------
// Subscriber and Replay share the engine's subscriber; they differ in configuration.

namespace {

struct Receiver {
    std::unique_ptr<ShmCounters> shm;
    std::unique_ptr<transport::Transport> data;
    std::unique_ptr<transport::Transport> control;
    std::optional<client::CommitFile> commit;
    std::optional<client::Subscriber> sub;
    const LossHandler* onLoss = nullptr;  // the loss handler of the poll() in progress
    std::string failure;
    bool replayEnded = false;
    std::function<void(std::array<std::uint64_t, 6>&)> onCommit;  // ExactlyOnce: the application's words

    // `ctlField`: the option to blame when the control socket cannot be opened. `faults` apply to the
    // data socket (a Subscriber's multicast one; a Replay's only one).
    void build(const client::SubscriberConfig& cfg, transport::UdpConfig dataUdp, transport::UdpConfig ctlUdp,
               const char* role, bool ownData, const FaultOptions& faults, const char* ctlField = "network.interface") {
        const transport::FaultConfig f = faultsFrom(faults);
        shm = ShmCounters::create(role, cfg.stream.get());
        dataUdp.counters = ctlUdp.counters = &shm->counters();
        if (ownData) data = open(dataUdp, "group", f);
        control = open(ctlUdp, ctlField, ownData ? transport::FaultConfig{} : f);
        client::SubscriberHandlers h;
        // Messages go straight to the handler of the poll() in progress (redirectMessages); this
        // one is never called, but says that messages are wanted (reassembled, orphans reported).
        h.onMessage = [](const client::Delivery&) {};
        h.onLoss = [this](Offset first, std::uint64_t count) {
            if (onLoss != nullptr && *onLoss) (*onLoss)(Loss{first.get(), count});
        };
        h.onReplayEnd = [this](wire::ReplayStatus st, Offset next, Offset earliest) {
            replayEnded = true;
            if (st == wire::ReplayStatus::Overwritten)
                failure = "offset " + std::to_string(next.get()) + " is no longer retained; the earliest retained offset is " +
                          std::to_string(earliest.get());
            else if (st == wire::ReplayStatus::Refused)
                failure = "the archiver refused the replay at offset " + std::to_string(next.get()) + " (too many replays?)";
            else if (st == wire::ReplayStatus::Failed)
                failure = "the archiver could not read offset " + std::to_string(next.get()) + " (damaged log?)";
            else if (st == wire::ReplayStatus::BeyondHead)
                failure = "offset " + std::to_string(next.get()) + " is beyond what the archive holds (a replay can wait for more)";
        };
        if (onCommit) h.onCommit = [this](client::CommitState& s) { onCommit(s.app); };
        sub.emplace(cfg, data ? *data : *control, *control, shm->counters(), std::move(h));
    }

    // wait(): the deadline is read with the object's lock held (the timer heap is the engine's),
    // the sleep is without it.
    std::uint64_t waitUntil(std::uint32_t maxUs) const { return std::min<std::uint64_t>(monoNs() + maxUs * 1000ull, sub->nextTimerNs()); }
    void sleepUntil(std::uint64_t untilNs) const { waitOn({data ? data->waitFd() : -1, control->waitFd()}, untilNs); }
    std::vector<int> fds() const { return {data ? data->waitFd() : -1, control->waitFd()}; }

    int poll(const MessageHandler& m, const LossHandler& l) {
        sub->redirectMessages(&m);
        onLoss = &l;
        const int work = sub->doWork(monoNs());
        sub->redirectMessages(nullptr);
        onLoss = nullptr;
        return work;
    }
};

}  // namespace

struct Subscriber::Impl {
    Receiver r;
    MessageHandler threadOnMessage;  // the handlers startThread() was given
    LossHandler threadOnLoss;
    Driver driver;  // last: its thread stops before the rest is destroyed
};

Subscriber::Subscriber(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Subscriber::~Subscriber() = default;

std::unique_ptr<Subscriber> Subscriber::create(const SubscriberOptions& o) {
    client::SubscriberConfig cfg;
    cfg.stream = StreamId{o.stream};
    const auto group = endpointOf("group", o.group);
    if (!group.multicast()) throw SetupError("group", group.str() + " is not a multicast address (224.0.0.0/4)");
    if (!o.sequencer.empty()) cfg.sequencer = endpointOf("sequencer", o.sequencer);
    if (!o.archiver.empty()) cfg.archiver = endpointOf("archiver", o.archiver);
    auto start = client::parseStartPosition(o.start);
    if (!start) throw SetupError("start", start.error().message(), start.error().code);
    cfg.start = *start;
    cfg.mode = o.delivery == Delivery::AtMostOnce ? client::DeliveryMode::AtMostOnce : client::DeliveryMode::AtLeastOnce;
    if (o.reorderBytes < (64u << 10)) throw SetupError("reorderBytes", "must be at least 64 KiB");
    cfg.reorderBytes = o.reorderBytes;
    if (o.maxMessage == 0 || o.maxMessage > (1u << 30)) throw SetupError("maxMessage", "must be 1..1073741824 bytes");
    cfg.maxMessage = o.maxMessage;
    if (o.nakDeadlineMs == 0 || o.nakDeadlineMs > 3'600'000) throw SetupError("nakDeadlineMs", "must be 1..3600000");
    cfg.nak.deadlineNs = o.nakDeadlineMs * 1'000'000;
    if (o.nakInitialRttUs == 0 || o.nakInitialRttUs > 10'000'000) throw SetupError("nakInitialRttUs", "must be 1..10000000");
    cfg.nak.initialRttNs = o.nakInitialRttUs * 1000;
    cfg.recordLatency = o.recordLatency;
    cfg.nak.seed = monoNs() ^ static_cast<std::uint64_t>(::getpid());
    if (o.maxDatagram < wire::kMinMtu || o.maxDatagram > wire::kMaxDatagram)
        throw SetupError("maxDatagram", "must be " + std::to_string(wire::kMinMtu) + ".." + std::to_string(wire::kMaxDatagram));
    cfg.maxDatagram = o.maxDatagram;
    auto impl = std::make_unique<Impl>();
    if (o.delivery == Delivery::ExactlyOnce) {
        if (o.commitFile.empty()) throw SetupError("commitFile", "Delivery::ExactlyOnce needs a commit file");
        auto cf = client::CommitFile::open(o.commitFile, o.stream);
        if (!cf) throw SetupError("commitFile", cf.error().message(), cf.error().code);
        impl->r.commit.emplace(std::move(*cf));
        cfg.commit = &*impl->r.commit;
        impl->r.onCommit = o.onCommit;
    } else if (!o.commitFile.empty()) {
        throw SetupError("commitFile", "is for Delivery::ExactlyOnce");
    }
    if (auto st = cfg.validate(); !st) throw SetupError("start", st.error().message(), st.error().code);
    const auto dataUdp = groupSocket(o.network, group);
    auto ctlUdp = socketsFrom(o.network);
    ctlUdp.bind = transport::Endpoint{dataUdp.interface, 0};
    ctlUdp.maxDatagram = 65536;
    impl->r.build(cfg, dataUdp, ctlUdp, "sub", true, o.network.faults);
    return std::unique_ptr<Subscriber>(new Subscriber(std::move(impl)));
}

int Subscriber::poll(const MessageHandler& onMessage, const LossHandler& onLoss) {
    const auto g = impl_->driver.lock();
    return impl_->r.poll(onMessage, onLoss);
}
void Subscriber::wait(std::uint32_t maxUs) {
    auto g = impl_->driver.lock();
    const std::uint64_t until = impl_->r.waitUntil(maxUs);
    if (g.owns_lock()) g.unlock();
    impl_->r.sleepUntil(until);
}
WaitSet Subscriber::waitSet(std::uint32_t maxUs) const {
    const auto g = impl_->driver.lock();
    WaitSet w{{}, impl_->r.waitUntil(maxUs)};
    for (int fd : impl_->r.fds())
        if (fd >= 0) w.fds.push_back(fd);
    return w;
}
bool Subscriber::started() const noexcept {
    const auto g = impl_->driver.lock();
    return impl_->r.sub->started();
}
std::uint64_t Subscriber::nextOffset() const noexcept {
    const auto g = impl_->driver.lock();
    return impl_->r.sub->nextOffset().get();
}
std::uint64_t Subscriber::headOffset() const noexcept {
    const auto g = impl_->driver.lock();
    return impl_->r.sub->headOffset().get();
}
bool Subscriber::endOfStream() const noexcept {
    const auto g = impl_->driver.lock();
    return impl_->r.sub->endOfStream();
}

void Subscriber::startThread(MessageHandler onMessage, LossHandler onLoss, const ThreadOptions& options) {
    if (impl_->driver.running()) throw SetupError("thread", "already running");
    impl_->threadOnMessage = std::move(onMessage);
    impl_->threadOnLoss = std::move(onLoss);
    Impl* i = impl_.get();
    impl_->driver.start(
        options, "seqcast-sub", [i] { return i->r.poll(i->threadOnMessage, i->threadOnLoss); },
        [i] { return i->r.sub->nextTimerNs(); }, i->r.fds());
}
void Subscriber::stopThread() { impl_->driver.stop(); }
CounterValues Subscriber::counters() const {
    const auto g = impl_->driver.lock();
    CounterValues v = valuesOf(impl_->r.shm->counters());
    v.emplace("nak_ranges_sent", impl_->r.sub->gaps().stats().naksSent);
    if (const auto* f = dynamic_cast<const transport::FaultTransport*>(impl_->r.data.get())) {
        v.emplace("fault_dropped", f->faults().dropped + f->faults().burstDropped);
        v.emplace("fault_type_dropped", f->faults().typeDropped);
    }
    return v;
}
std::uint32_t Subscriber::epoch() const noexcept {
    const auto g = impl_->driver.lock();
    return impl_->r.sub->epoch().get();
}
const std::string& Subscriber::replayFailure() const noexcept {
    const auto g = impl_->driver.lock();
    return impl_->r.failure;
}
Subscriber::Commit Subscriber::committed() const {
    const auto g = impl_->driver.lock();
    if (!impl_->r.commit || !impl_->r.commit->hasCommit()) return Commit{false, 0, {}};
    const auto s = impl_->r.commit->state();
    return Commit{true, s.next, s.app};
}
bool Subscriber::syncCommit() {
    const auto g = impl_->driver.lock();
    return impl_->r.commit && impl_->r.commit->sync().has_value();
}
bool Subscriber::threadRunning() const noexcept { return impl_->driver.running(); }

struct Replay::Impl {
    Receiver r;
    // Paced (speed > 0): what the engine delivered, held until due. At most kHeldBytes of payload
    // are held; past that the engine is not polled, and the archiver's window holds the rest back.
    static constexpr std::size_t kHeldBytes = 8u << 20;
    struct Held {
        Message m;
        std::vector<std::byte> payload;
        bool loss = false;
        Loss l{};
    };
    double speed = 0;
    std::deque<Held> held;
    std::size_t heldBytes = 0;
    bool paceStarted = false;
    std::uint64_t paceTs0 = 0, paceWall0 = 0, paceTsMax = 0;
    MessageHandler hold;
    LossHandler holdLoss;

    // When the front message is due (monotonic ns); 0 for a loss notice (at once).
    std::uint64_t dueNs(const Held& h, std::uint64_t now) {
        if (h.loss) return 0;
        if (!paceStarted) {
            paceStarted = true;
            paceTs0 = paceTsMax = h.m.publishTsNs;
            paceWall0 = now;
        }
        const std::uint64_t ts = std::max(paceTsMax, h.m.publishTsNs);  // never backwards (publishers' clocks)
        return paceWall0 + static_cast<std::uint64_t>(static_cast<double>(ts - paceTs0) / speed);
    }

    int deliverDue(const MessageHandler& onMessage, const LossHandler& onLoss) {
        int work = 0;
        const std::uint64_t now = monoNs();
        while (!held.empty()) {
            Held& h = held.front();
            if (dueNs(h, now) > now) break;
            if (h.loss) {
                if (onLoss) onLoss(h.l);
            } else {
                paceTsMax = std::max(paceTsMax, h.m.publishTsNs);
                Message m = h.m;
                m.payload = h.payload;
                if (onMessage) onMessage(m);
                heldBytes -= h.payload.size();
            }
            held.pop_front();
            ++work;
        }
        return work;
    }
};

Replay::Replay(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Replay::~Replay() {
    // Destroyed before the end of its range: the archiver's session ends now, so a client that
    // replays short ranges one after another never runs into the archiver's limit on sessions.
    if (impl_ && impl_->r.sub) impl_->r.sub->cancelReplay();
}

std::unique_ptr<Replay> Replay::create(const ReplayOptions& o) {
    if (o.to <= o.from) throw SetupError("to", "must be above from");
    client::SubscriberConfig cfg;
    cfg.stream = StreamId{o.stream};
    cfg.archiver = endpointOf("archiver", o.archiver);
    cfg.start.kind = o.earliest ? client::StartPosition::Kind::Earliest : client::StartPosition::Kind::AtOffset;
    cfg.start.offset = Offset{o.from};
    cfg.live = false;
    cfg.replayTo = o.to;
    cfg.replayWait = o.waitForData;
    cfg.maxDatagram = 9216;  // archives of streams with MTUs up to jumbo frames
    cfg.nak.seed = monoNs() ^ static_cast<std::uint64_t>(::getpid());
    if (auto st = cfg.validate(); !st) throw SetupError("from", st.error().message(), st.error().code);
    auto ctlUdp = socketsFrom(o.network);
    ctlUdp.bind = o.bind.empty() ? transport::Endpoint{ctlUdp.interface, 0} : endpointOf("bind", o.bind, true);
    ctlUdp.maxDatagram = 65536;
    if (!(o.speed >= 0) || o.speed > 1e6) throw SetupError("speed", "must be 0 (as fast as possible) or a factor up to 1000000");
    auto impl = std::make_unique<Impl>();
    impl->speed = o.speed;
    Impl* i = impl.get();
    impl->hold = [i](const Message& m) {
        Impl::Held h{m, std::vector<std::byte>(m.payload.begin(), m.payload.end())};
        i->heldBytes += h.payload.size();
        i->held.push_back(std::move(h));
    };
    impl->holdLoss = [i](const Loss& l) {
        Impl::Held h{};
        h.loss = true;
        h.l = l;
        i->held.push_back(std::move(h));
    };
    impl->r.build(cfg, ctlUdp, ctlUdp, "replay", false, o.network.faults, o.bind.empty() ? "network.interface" : "bind");
    return std::unique_ptr<Replay>(new Replay(std::move(impl)));
}

int Replay::poll(const MessageHandler& onMessage, const LossHandler& onLoss) {
    Impl& i = *impl_;
    if (i.speed <= 0) return i.r.poll(onMessage, onLoss);
    int work = i.deliverDue(onMessage, onLoss);
    if (i.heldBytes < Impl::kHeldBytes) work += i.r.poll(i.hold, i.holdLoss);
    return work + i.deliverDue(onMessage, onLoss);
}
WaitSet Replay::waitSet(std::uint32_t maxUs) const {
    Impl& i = *impl_;
    WaitSet w{{}, i.r.waitUntil(maxUs)};
    if (i.speed > 0 && !i.held.empty()) {
        w.untilNs = std::min(w.untilNs, i.dueNs(i.held.front(), monoNs()));
        if (i.heldBytes >= Impl::kHeldBytes) return w;  // poll() reads nothing until the front is due
    }
    for (int fd : i.r.fds())
        if (fd >= 0) w.fds.push_back(fd);
    return w;
}
void Replay::wait(std::uint32_t maxUs) {
    Impl& i = *impl_;
    std::uint64_t until = i.r.waitUntil(maxUs);
    if (i.speed > 0 && !i.held.empty()) {
        const std::uint64_t now = monoNs();
        until = std::min(until, i.dueNs(i.held.front(), now));
        if (i.heldBytes >= Impl::kHeldBytes) {  // nothing will be read: sleep until the front is due
            if (until > now) std::this_thread::sleep_for(std::chrono::nanoseconds(until - now));
            return;
        }
    }
    i.r.sleepUntil(until);
}
bool Replay::finished() const noexcept {
    return impl_->held.empty() && (impl_->r.sub->replayFinished() || !impl_->r.failure.empty());
}
const std::string& Replay::failure() const noexcept { return impl_->r.failure; }
std::uint64_t Replay::nextOffset() const noexcept { return impl_->r.sub->nextOffset().get(); }
CounterValues Replay::counters() const { return valuesOf(impl_->r.shm->counters()); }

// ---------------------------------------------------------------------------------------------

const char* const kCountersDirectory = kShmCountersDir;

std::vector<ProcessCounters> readCounters() { return readCounters(kShmCountersDir); }

std::vector<ProcessCounters> readCounters(const std::string& directory) {
    std::vector<ProcessCounters> out;
    for (const auto& s : readAllCounters(directory)) {
        ProcessCounters p{s.pid, s.role, s.stream, s.alive, {}};
        for (std::size_t i = 0; i < kCounterCount && i < s.values.size(); ++i)
            p.values.emplace(std::string(kCounterNames[i]), s.values[i]);
        out.push_back(std::move(p));
    }
    return out;
}

std::vector<CounterInfo> counterInfo() {
    std::vector<CounterInfo> out;
    for (std::size_t i = 0; i < kCounterCount; ++i)
        out.push_back(CounterInfo{std::string(kCounterNames[i]), std::string(kCounterMeta[i].help), kCounterMeta[i].gauge});
    return out;
}

}  // namespace seqcast
