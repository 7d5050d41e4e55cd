// The C ABI (include/seqcast/seqcast.h) over the C++ API: handles own the C++ objects, errors
// become status codes with a thread-local message and field, callbacks get the user pointer.
#include "seqcast/seqcast.h"

#include <cstddef>
#include <cstring>
#include <exception>
#include <new>
#include <string>

#include "fabric/crc32c.h"
#include "seqcast/seqcast.hpp"

struct seqcast_publisher {
    std::unique_ptr<seqcast::Publisher> p;
    seqcast_confirm_fn onConfirm = nullptr;
    void* user = nullptr;
};

struct seqcast_subscriber {
    std::unique_ptr<seqcast::Subscriber> s;
};

struct seqcast_replay {
    std::unique_ptr<seqcast::Replay> r;
};

namespace {

thread_local std::string tlsError;
thread_local std::string tlsField;

// The C++ API names fields as its structs do (maxMessage, network.authKeyFile); C names them as
// seqcast.h does (max_message, network.auth_key_file).
std::string snakeCase(const std::string& f) {
    std::string out;
    for (char c : f) {
        if (c >= 'A' && c <= 'Z') {
            out += '_';
            out += static_cast<char>(c - 'A' + 'a');
        } else {
            out += c;
        }
    }
    return out;
}

// The C name of a C++ field: network.gso, .gro, .allow and .authKeyId are in network_extra here.
std::string cField(const std::string& f) {
    for (const char* x : {"network.gso", "network.gro", "network.allow", "network.authKeyId"})
        if (f == x) return "network_extra." + snakeCase(f.substr(8));
    return snakeCase(f);
}

seqcast_status setError(seqcast_status st, std::string field, std::string message) {
    tlsField = std::move(field);
    tlsError = std::move(message);
    return st;
}

void clearError() {
    tlsError.clear();
    tlsField.clear();
}

// Runs a create(); maps what it throws to a status.
template <typename F>
seqcast_status guarded(F&& f) {
    try {
        clearError();
        f();
        return SEQCAST_OK;
    } catch (const seqcast::SetupError& e) {
        return setError(SEQCAST_ERR_SETUP, cField(e.field()), e.what());
    } catch (const std::bad_alloc&) {
        return setError(SEQCAST_ERR_INTERNAL, "", "out of memory");
    } catch (const std::exception& e) {
        return setError(SEQCAST_ERR_INTERNAL, "", e.what());
    }
}

std::string str(const char* s) { return s == nullptr ? std::string() : std::string(s); }

void initNetwork(seqcast_network_options& n) {
    const seqcast::NetworkOptions d;
    n.interface = "127.0.0.1";
    n.ttl = d.ttl;
    n.loopback = d.loopback ? 1 : 0;
    n.rcvbuf = d.rcvbuf;
    n.sndbuf = d.sndbuf;
    n.use_uring = d.api == seqcast::SocketApi::Uring ? 1 : 0;
    n.auth_key_file = "";
}

seqcast::NetworkOptions network(const seqcast_network_options& n) {
    seqcast::NetworkOptions o;
    o.interface = str(n.interface);
    o.ttl = n.ttl;
    o.loopback = n.loopback != 0;
    o.rcvbuf = n.rcvbuf;
    o.sndbuf = n.sndbuf;
    o.api = n.use_uring != 0 ? seqcast::SocketApi::Uring : seqcast::SocketApi::Syscalls;
    o.authKeyFile = str(n.auth_key_file);
    return o;
}

void initExtra(seqcast_network_extra& e) {
    const seqcast::NetworkOptions d;
    e.gso = d.gso ? 1 : 0;
    e.gro = d.gro ? 1 : 0;
    e.allow = "";
    e.auth_key_id = d.authKeyId;
}

// `e`: null for a struct from a program built before seqcast_network_extra (the defaults).
seqcast::NetworkOptions network(const seqcast_network_options& n, const seqcast_network_extra* e) {
    seqcast::NetworkOptions o = network(n);
    if (e != nullptr) {
        o.gso = e->gso != 0;
        o.gro = e->gro != 0;
        o.allow = str(e->allow);
        o.authKeyId = e->auth_key_id;
    }
    return o;
}

// Whether an options struct of `size` bytes includes the member that starts at `offset`.
constexpr bool has(std::uint32_t size, std::size_t offset) { return size > offset; }

seqcast_message toC(const seqcast::Message& m) {
    seqcast_message c{};
    c.offset = m.offset;
    c.publisher = m.publisher;
    c.epoch = m.epoch;
    c.pub_seq = m.pubSeq;
    c.publish_ts_ns = m.publishTsNs;
    c.sequenced_ts_ns = m.sequencedTsNs;
    c.repaired = m.repaired ? 1 : 0;
    c.payload = m.payload.data();
    c.length = m.payload.size();
    return c;
}

template <typename Poller>
int pollWith(Poller& p, seqcast_message_fn onMessage, seqcast_loss_fn onLoss, void* user) {
    seqcast::MessageHandler mh;
    if (onMessage != nullptr)
        mh = [&](const seqcast::Message& m) {
            const seqcast_message c = toC(m);
            onMessage(&c, user);
        };
    else
        mh = [](const seqcast::Message&) {};
    seqcast::LossHandler lh;
    if (onLoss != nullptr) lh = [&](const seqcast::Loss& l) { onLoss(l.first, l.count, user); };
    return p.poll(mh, lh);
}

// NULL: the defaults. Checks the size field as the options structs do.
seqcast::ThreadOptions threadOptions(const seqcast_thread_options* o) {
    seqcast::ThreadOptions t;
    if (o == nullptr) return t;
    if (o->size != sizeof *o) throw seqcast::SetupError("size", "not sizeof(seqcast_thread_options): call seqcast_thread_options_init");
    if (o->idle < 0 || o->idle > 2) throw seqcast::SetupError("idle", "must be 0 (back off), 1 (busy spin) or 2 (yield)");
    t.idle = o->idle == 1 ? seqcast::IdleStrategy::BusySpin : o->idle == 2 ? seqcast::IdleStrategy::Yield : seqcast::IdleStrategy::Backoff;
    t.maxSleepUs = o->max_sleep_us;
    t.cpu = o->cpu;
    return t;
}

}  // namespace

extern "C" {

void seqcast_thread_options_init(seqcast_thread_options* o) {
    if (o == nullptr) return;
    const seqcast::ThreadOptions d;
    std::memset(o, 0, sizeof *o);
    o->size = sizeof *o;
    o->idle = 0;
    o->max_sleep_us = d.maxSleepUs;
    o->cpu = d.cpu;
}

seqcast_status seqcast_publisher_start_thread(seqcast_publisher* p, const seqcast_thread_options* o) {
    if (p == nullptr) return setError(SEQCAST_ERR_ARGUMENT, "", "NULL publisher");
    return guarded([&] { p->p->startThread(threadOptions(o)); });
}

void seqcast_publisher_stop_thread(seqcast_publisher* p) {
    if (p != nullptr) p->p->stopThread();
}

seqcast_status seqcast_subscriber_start_thread(seqcast_subscriber* s, seqcast_message_fn onMessage, seqcast_loss_fn onLoss,
                                               void* user, const seqcast_thread_options* o) {
    if (s == nullptr || onMessage == nullptr) return setError(SEQCAST_ERR_ARGUMENT, "", "NULL subscriber or on_message");
    return guarded([&] {
        seqcast::LossHandler lh;
        if (onLoss != nullptr) lh = [onLoss, user](const seqcast::Loss& l) { onLoss(l.first, l.count, user); };
        s->s->startThread([onMessage, user](const seqcast::Message& m) {
            const seqcast_message c = toC(m);
            onMessage(&c, user);
        }, std::move(lh), threadOptions(o));
    });
}

void seqcast_subscriber_stop_thread(seqcast_subscriber* s) {
    if (s != nullptr) s->s->stopThread();
}

int seqcast_abi_version(void) { return SEQCAST_ABI_VERSION; }
const char* seqcast_last_error(void) { return tlsError.c_str(); }
const char* seqcast_last_error_field(void) { return tlsField.c_str(); }

uint32_t seqcast_crc32c_update(uint32_t state, const void* data, size_t length) {
    if (data == nullptr || length == 0) return state;
    return seqcast::crc32cUpdate(state, std::span<const std::byte>(static_cast<const std::byte*>(data), length));
}

void seqcast_publisher_options_init(seqcast_publisher_options* o) {
    if (o == nullptr) return;
    const seqcast::PublisherOptions d;
    std::memset(o, 0, sizeof *o);
    o->size = sizeof *o;
    o->stream = d.stream;
    o->sequencer = "127.0.0.1:40000";
    o->bind = "127.0.0.1:0";
    o->id = d.id;
    o->journal = "";
    o->mtu = d.mtu;
    o->window = d.window;
    o->window_bytes = d.windowBytes;
    o->max_message = d.maxMessage;
    initNetwork(o->network);
    initExtra(o->network_extra);
}

seqcast_status seqcast_publisher_create(const seqcast_publisher_options* o, seqcast_confirm_fn onConfirm, void* user,
                                        seqcast_publisher** out) {
    if (o == nullptr || out == nullptr) return setError(SEQCAST_ERR_ARGUMENT, "", "NULL options or result pointer");
    // The struct grew (network_extra): a program built before passes the older size.
    if (o->size != sizeof *o && o->size != offsetof(seqcast_publisher_options, network_extra))
        return setError(SEQCAST_ERR_ARGUMENT, "size", "options not set up by seqcast_publisher_options_init");
    *out = nullptr;
    return guarded([&] {
        seqcast::PublisherOptions p;
        p.stream = o->stream;
        p.sequencer = str(o->sequencer);
        p.bind = str(o->bind);
        p.id = o->id;
        p.journal = str(o->journal);
        p.mtu = o->mtu;
        p.window = o->window;
        p.windowBytes = o->window_bytes;
        p.maxMessage = o->max_message;
        p.network = network(o->network, has(o->size, offsetof(seqcast_publisher_options, network_extra)) ? &o->network_extra : nullptr);
        auto h = std::make_unique<seqcast_publisher>();
        h->onConfirm = onConfirm;
        h->user = user;
        seqcast::Publisher::ConfirmHandler ch;
        if (onConfirm != nullptr) {
            seqcast_publisher* raw = h.get();
            ch = [raw](const seqcast::Confirmation& c) {
                const seqcast_confirmation cc{c.pubSeq, c.offset, c.offsetKnown ? 1 : 0, c.latencyNs};
                raw->onConfirm(&cc, raw->user);
            };
        }
        h->p = seqcast::Publisher::create(p, std::move(ch));
        *out = h.release();
    });
}

void seqcast_publisher_close(seqcast_publisher* p) { delete p; }

namespace {
int offerCode(seqcast::OfferResult r) {
    switch (r) {
        case seqcast::OfferResult::Accepted: return SEQCAST_OFFER_ACCEPTED;
        case seqcast::OfferResult::BackPressured: return SEQCAST_OFFER_BACK_PRESSURED;
        case seqcast::OfferResult::TooLarge: return SEQCAST_OFFER_TOO_LARGE;
        case seqcast::OfferResult::NotConnected: return SEQCAST_OFFER_NOT_CONNECTED;
        case seqcast::OfferResult::ClaimOpen: return SEQCAST_OFFER_CLAIM_OPEN;
    }
    return SEQCAST_ERR_INTERNAL;
}
}  // namespace

int seqcast_publisher_offer(seqcast_publisher* p, const void* data, size_t length) {
    if (p == nullptr || (data == nullptr && length != 0)) return setError(SEQCAST_ERR_ARGUMENT, "", "NULL publisher or data");
    return offerCode(p->p->offer(std::span<const std::byte>(static_cast<const std::byte*>(data), length)));
}

int seqcast_publisher_try_claim(seqcast_publisher* p, size_t maxLength, void** buffer) {
    if (p == nullptr || buffer == nullptr) return setError(SEQCAST_ERR_ARGUMENT, "", "NULL publisher or buffer");
    std::span<std::byte> b;
    const int r = offerCode(p->p->tryClaim(maxLength, b));
    *buffer = r == SEQCAST_OFFER_ACCEPTED ? static_cast<void*>(b.data()) : nullptr;
    return r;
}

void seqcast_publisher_commit(seqcast_publisher* p, size_t length) {
    if (p != nullptr) p->p->commit(length);
}

void seqcast_publisher_abort(seqcast_publisher* p) {
    if (p != nullptr) p->p->abort();
}

void seqcast_publisher_wait(seqcast_publisher* p, uint32_t maxUs) {
    if (p != nullptr) p->p->wait(maxUs);
}

void seqcast_subscriber_wait(seqcast_subscriber* s, uint32_t maxUs) {
    if (s != nullptr) s->s->wait(maxUs);
}

void seqcast_replay_wait(seqcast_replay* r, uint32_t maxUs) {
    if (r != nullptr) r->r->wait(maxUs);
}

int seqcast_publisher_do_work(seqcast_publisher* p) {
    if (p == nullptr) return setError(SEQCAST_ERR_ARGUMENT, "", "NULL publisher");
    return p->p->doWork();
}

uint32_t seqcast_publisher_id(const seqcast_publisher* p) { return p == nullptr ? 0 : p->p->id(); }
uint64_t seqcast_publisher_unconfirmed(const seqcast_publisher* p) { return p == nullptr ? 0 : p->p->unconfirmed(); }
const char* seqcast_publisher_fatal_error(const seqcast_publisher* p) { return p == nullptr ? "" : p->p->fatalError().c_str(); }

void seqcast_subscriber_options_init(seqcast_subscriber_options* o) {
    if (o == nullptr) return;
    const seqcast::SubscriberOptions d;
    std::memset(o, 0, sizeof *o);
    o->size = sizeof *o;
    o->stream = d.stream;
    o->group = "239.1.1.1:40001";
    o->start = "latest";
    o->archiver = "";
    o->sequencer = "";
    o->delivery = SEQCAST_AT_LEAST_ONCE;
    o->commit_file = "";
    o->reorder_bytes = d.reorderBytes;
    o->max_datagram = d.maxDatagram;
    o->max_message = d.maxMessage;
    o->nak_deadline_ms = d.nakDeadlineMs;
    initNetwork(o->network);
    initExtra(o->network_extra);
    o->nak_initial_rtt_us = d.nakInitialRttUs;
}

seqcast_status seqcast_subscriber_create(const seqcast_subscriber_options* o, seqcast_subscriber** out) {
    if (o == nullptr || out == nullptr) return setError(SEQCAST_ERR_ARGUMENT, "", "NULL options or result pointer");
    // The struct grew (network_extra, nak_initial_rtt_us): a program built before passes the older size.
    if (o->size != sizeof *o && o->size != offsetof(seqcast_subscriber_options, network_extra))
        return setError(SEQCAST_ERR_ARGUMENT, "size", "options not set up by seqcast_subscriber_options_init");
    *out = nullptr;
    return guarded([&] {
        seqcast::SubscriberOptions s;
        s.stream = o->stream;
        s.group = str(o->group);
        s.start = str(o->start);
        s.archiver = str(o->archiver);
        s.sequencer = str(o->sequencer);
        switch (o->delivery) {
            case SEQCAST_AT_LEAST_ONCE: s.delivery = seqcast::Delivery::AtLeastOnce; break;
            case SEQCAST_AT_MOST_ONCE: s.delivery = seqcast::Delivery::AtMostOnce; break;
            case SEQCAST_EXACTLY_ONCE: s.delivery = seqcast::Delivery::ExactlyOnce; break;
            default: throw seqcast::SetupError("delivery", "must be SEQCAST_AT_LEAST_ONCE, SEQCAST_AT_MOST_ONCE or SEQCAST_EXACTLY_ONCE");
        }
        s.commitFile = str(o->commit_file);
        s.reorderBytes = o->reorder_bytes;
        s.maxDatagram = o->max_datagram;
        s.maxMessage = o->max_message;
        s.nakDeadlineMs = o->nak_deadline_ms;
        const bool extra = has(o->size, offsetof(seqcast_subscriber_options, network_extra));
        s.network = network(o->network, extra ? &o->network_extra : nullptr);
        if (extra) s.nakInitialRttUs = o->nak_initial_rtt_us;
        auto h = std::make_unique<seqcast_subscriber>();
        h->s = seqcast::Subscriber::create(s);
        *out = h.release();
    });
}

void seqcast_subscriber_close(seqcast_subscriber* s) { delete s; }

int seqcast_subscriber_poll(seqcast_subscriber* s, seqcast_message_fn onMessage, seqcast_loss_fn onLoss, void* user) {
    if (s == nullptr) return setError(SEQCAST_ERR_ARGUMENT, "", "NULL subscriber");
    return pollWith(*s->s, onMessage, onLoss, user);
}

int seqcast_subscriber_started(const seqcast_subscriber* s) { return s != nullptr && s->s->started() ? 1 : 0; }
int seqcast_subscriber_end_of_stream(const seqcast_subscriber* s) { return s != nullptr && s->s->endOfStream() ? 1 : 0; }
uint64_t seqcast_subscriber_next_offset(const seqcast_subscriber* s) { return s == nullptr ? 0 : s->s->nextOffset(); }
uint64_t seqcast_subscriber_head_offset(const seqcast_subscriber* s) { return s == nullptr ? 0 : s->s->headOffset(); }

void seqcast_replay_options_init(seqcast_replay_options* o) {
    if (o == nullptr) return;
    const seqcast::ReplayOptions d;
    std::memset(o, 0, sizeof *o);
    o->size = sizeof *o;
    o->stream = d.stream;
    o->archiver = "127.0.0.1:40100";
    o->from = d.from;
    o->to = d.to;
    o->earliest = d.earliest ? 1 : 0;
    initNetwork(o->network);
    initExtra(o->network_extra);
}

seqcast_status seqcast_replay_create(const seqcast_replay_options* o, seqcast_replay** out) {
    if (o == nullptr || out == nullptr) return setError(SEQCAST_ERR_ARGUMENT, "", "NULL options or result pointer");
    // The struct grew (wait_for_data, bind): a program built before that passes the older size and
    // gets their defaults.
    // So did it again (network_extra).
    constexpr std::size_t kSizeV1 = offsetof(seqcast_replay_options, wait_for_data);
    constexpr std::size_t kSizeV2 = offsetof(seqcast_replay_options, network_extra);
    const bool v1 = o->size == kSizeV1;
    if (o->size != sizeof *o && !v1 && o->size != kSizeV2)
        return setError(SEQCAST_ERR_ARGUMENT, "size", "options not set up by seqcast_replay_options_init");
    *out = nullptr;
    return guarded([&] {
        seqcast::ReplayOptions r;
        r.stream = o->stream;
        r.archiver = str(o->archiver);
        r.from = o->from;
        r.to = o->to;
        r.earliest = o->earliest != 0;
        r.network = network(o->network, has(o->size, kSizeV2) ? &o->network_extra : nullptr);
        r.speed = o->speed;
        if (!v1) {
            r.waitForData = o->wait_for_data != 0;
            r.bind = str(o->bind);
        }
        auto h = std::make_unique<seqcast_replay>();
        h->r = seqcast::Replay::create(r);
        *out = h.release();
    });
}

void seqcast_replay_close(seqcast_replay* r) { delete r; }

int seqcast_replay_poll(seqcast_replay* r, seqcast_message_fn onMessage, seqcast_loss_fn onLoss, void* user) {
    if (r == nullptr) return setError(SEQCAST_ERR_ARGUMENT, "", "NULL replay");
    return pollWith(*r->r, onMessage, onLoss, user);
}

int seqcast_replay_finished(const seqcast_replay* r) { return r != nullptr && r->r->finished() ? 1 : 0; }
const char* seqcast_replay_failure(const seqcast_replay* r) { return r == nullptr ? "" : r->r->failure().c_str(); }
uint64_t seqcast_replay_next_offset(const seqcast_replay* r) { return r == nullptr ? 0 : r->r->nextOffset(); }

namespace {
int countersTo(const seqcast::CounterValues& v, seqcast_counter_fn fn, void* user) {
    for (const auto& [name, value] : v) fn(name.c_str(), value, user);
    return static_cast<int>(v.size());
}
}  // namespace

int seqcast_publisher_counters(const seqcast_publisher* p, seqcast_counter_fn fn, void* user) {
    if (p == nullptr || fn == nullptr) return setError(SEQCAST_ERR_ARGUMENT, "", "NULL publisher or callback");
    return countersTo(p->p->counters(), fn, user);
}
int seqcast_subscriber_counters(const seqcast_subscriber* s, seqcast_counter_fn fn, void* user) {
    if (s == nullptr || fn == nullptr) return setError(SEQCAST_ERR_ARGUMENT, "", "NULL subscriber or callback");
    return countersTo(s->s->counters(), fn, user);
}
int seqcast_replay_counters(const seqcast_replay* r, seqcast_counter_fn fn, void* user) {
    if (r == nullptr || fn == nullptr) return setError(SEQCAST_ERR_ARGUMENT, "", "NULL replay or callback");
    return countersTo(r->r->counters(), fn, user);
}

}  // extern "C"
