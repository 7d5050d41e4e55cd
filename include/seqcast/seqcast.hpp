// seqcast: the C++ API applications link against (libseqcast, `pkg-config --cflags --libs seqcast`).
//
// The only header an application includes. A Publisher offers messages to a stream's sequencer;
// a Subscriber receives the sequenced stream (every message once, in offset order, repaired with
// NAKs, or an explicit loss notice); a Replay reads a range of offsets back from an archiver;
// readCounters() reads the counters every seqcast process publishes.
//
// Threading: by default nothing runs behind the application's back. Each object is driven by the
// thread that calls its doWork()/poll(), and an object is used from one thread at a time (different
// objects on different threads are independent). Handlers run inside poll()/doWork(), on that
// thread; the payload a handler sees is valid until it returns. Opt in: Publisher::startThread() and
// Subscriber::startThread() give the object a thread of its own that drives it; while it runs, every
// call on the object is thread-safe (each takes the object's lock, which the thread holds while
// it works) and the handlers run on that thread.
//
// Errors: create() throws seqcast::SetupError, which names the option at fault (field()); the hot calls
// (offer, doWork, poll) never throw and report through their return values.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "seqcast/message.hpp"

namespace seqcast {

inline constexpr int kApiVersion = 2;  // bumped when a declaration here changes incompatibly

// A setting that is not valid, or a resource create() could not open. field() is the option's name
// as it appears in the options struct ("sequencer", "journal", ...); code() the errno of a resource
// that could not be had (EADDRINUSE, ENOSPC, EBUSY, ...), 0 for a value that is not valid.
class SetupError : public std::runtime_error {
public:
    SetupError(std::string field, const std::string& message, int code = 0)
        : std::runtime_error(field.empty() ? message : field + ": " + message), field_(std::move(field)), code_(code) {}
    const std::string& field() const noexcept { return field_; }
    int code() const noexcept { return code_; }

private:
    std::string field_;
    int code_;
};

// Syscalls: recvmmsg/sendmmsg. Uring: io_uring (falls back to Syscalls where the kernel lacks it).
// Dpdk: kernel bypass on a DPDK port (NetworkOptions::dpdkArgs), where libseqcast was built with DPDK.
enum class SocketApi : std::uint8_t { Syscalls, Uring, Dpdk };

// What an object's own thread (startThread) does after a pass that found no work.
enum class IdleStrategy : std::uint8_t {
    Backoff,   // spin a little, yield a little, then sleep 1 us, 2 us, ... up to maxSleepUs
    BusySpin,  // never sleeps: the lowest latency, a whole CPU
    Yield,     // sched_yield() between passes
    Block,     // wait() for a datagram or a timer, at most maxSleepUs
};

// For an application's own event loop (epoll, poll, io_uring): the descriptors that become readable
// when poll() has work, and the CLOCK_MONOTONIC time (monoNs) by which poll() must run even if
// none did (a NAK or loss timer). wait(maxUs) is a poll(2) over these.
struct WaitSet {
    std::vector<int> fds;
    std::uint64_t untilNs;
};

struct ThreadOptions {
    IdleStrategy idle = IdleStrategy::Backoff;
    std::uint32_t maxSleepUs = 1000;  // Backoff's longest sleep, Block's longest wait (1..1000000)
    int cpu = -1;                     // pin the thread to this CPU (-1: not pinned)
};

// Fault injection on a client's socket, for tests and demos (what seqcast's own tests use to prove
// repair): datagrams dropped, held back, duplicated or damaged at random, from a seed. Off by default.
struct FaultOptions {
    double loss = 0;                // probability a datagram is dropped (0..1)
    double burstLoss = 0;           // probability a burst of burstLength drops starts (0..1)
    std::uint32_t burstLength = 50; // 1..1000000
    double reorder = 0;             // probability a datagram is delivered after later ones
    double duplicate = 0;           // probability a datagram is delivered twice
    double corrupt = 0;             // probability one byte of a datagram is flipped (its CRC then fails)
    std::uint32_t dropTypes = 0;    // bit t set: drop every datagram of frame type t (docs/PROTOCOL.md)
    std::uint64_t seed = 1;
    bool onReceive = true;          // where the faults apply
    bool onSend = false;
};

// What every client's sockets share. Defaults are the CLI's.
struct NetworkOptions {
    std::string interface = "127.0.0.1";  // interface address for multicast send and joins; with Dpdk,
                                          // ADDR/PREFIX: the port's address and subnet (default /24)
    int ttl = 1;                          // multicast TTL
    bool loopback = true;                 // deliver multicast to receivers on this host
    std::size_t rcvbuf = 8u << 20;        // socket receive buffer (bytes)
    std::size_t sndbuf = 4u << 20;
    SocketApi api = SocketApi::Syscalls;
    std::vector<std::string> dpdkArgs;    // Dpdk: the EAL arguments, e.g. {"--no-huge", "--vdev=net_af_packet0,iface=veth0"}
    bool gso = true;                      // UDP GSO: runs of equal-size datagrams leave in one send
    bool gro = true;                      // UDP GRO: the kernel may coalesce arriving datagrams
    std::string allow;                    // receive only from these IPv4 networks ("10.1.0.0/16,127.0.0.1"); empty: all
    std::string authKeyFile;              // non-empty: authenticated frames (the stream's key file)
    std::uint32_t authKeyId = 0;          // the key to sign with; 0: the highest id in the file
    FaultOptions faults;                  // the Subscriber's: on its data (multicast) socket
};

// An object's own counters, by name (the names `seqcast stat` shows; every client publishes its
// counters for `seqcast stat` and readCounters() as well).
using CounterValues = std::map<std::string, std::uint64_t>;

// ---------------------------------------------------------------------------------------------
// Publisher

struct PublisherOptions {
    std::uint32_t stream = 1;
    // The sequencer's control address HOST:PORT; with hot-standby sequencers (HA) all of theirs,
    // comma separated: the publisher moves to the next when one is not the leader or falls silent.
    std::string sequencer = "127.0.0.1:40000";
    std::string bind = "127.0.0.1:0";           // local address (port 0: any)
    std::uint32_t id = 0;                       // 0: from the journal, else random
    // A journal file keeps the id, the message counter and every unconfirmed message: a publisher
    // restarted on it resends what was not confirmed, and the sequencer drops what it already has.
    std::string journal;
    std::size_t mtu = 1408;                     // largest datagram
    std::uint32_t window = 4096;                // unconfirmed messages (a power of two, <= 4096)
    std::size_t windowBytes = 32u << 20;        // bytes of unconfirmed messages
    std::uint32_t maxMessage = 1u << 20;
    NetworkOptions network;
};

struct Confirmation {
    std::uint64_t pubSeq;     // the message's number (1, 2, ... per publisher)
    std::uint64_t offset;     // its offset in the stream (the last fragment's)
    bool offsetKnown;         // false: the sequencer had it already but no longer remembered where
    std::uint64_t latencyNs;  // offer() to confirmation
};

enum class OfferResult : std::uint8_t {
    Accepted,       // copied; sent by the next doWork()
    BackPressured,  // the window is full: call doWork() and offer again
    TooLarge,       // larger than maxMessage
    NotConnected,   // the sequencer refused this publisher (fatalError() says why)
    ClaimOpen,      // a tryClaim() is open: commit() or abort() it first
};

class Publisher {
public:
    using ConfirmHandler = std::function<void(const Confirmation&)>;
    static std::unique_ptr<Publisher> create(const PublisherOptions& options, ConfirmHandler onConfirm = {});
    ~Publisher();
    Publisher(const Publisher&) = delete;
    Publisher& operator=(const Publisher&) = delete;

    OfferResult offer(std::span<const std::byte> message);
    OfferResult offer(std::string_view message) { return offer(std::as_bytes(std::span(message.data(), message.size()))); }
    // Zero copy: reserves room for a message of up to maxBytes inside the window and points
    // `buffer` at it; the application writes the message there, then commit() publishes it (or its
    // first `length` bytes) exactly as offer() would, or abort() gives the room back. One claim at a
    // time: offer() and tryClaim() return ClaimOpen until it is committed or aborted. doWork() may
    // run while a claim is open (it sends committed messages only). Results as offer()'s.
    OfferResult tryClaim(std::size_t maxBytes, std::span<std::byte>& buffer);
    void commit();                    // the whole claim
    void commit(std::size_t length);  // its first `length` bytes (at most maxBytes)
    void abort() noexcept;            // nothing is published; no effect without an open claim
    // Sends what was offered, resends what is not confirmed in time, takes confirmations (the
    // handler runs here). Returns the work done (0: idle).
    int doWork();
    // The same, for a duty cycle that has read CLOCK_MONOTONIC already (nowNs, e.g. to check its own
    // deadlines): saves doWork()'s own clock read, which at 32-byte messages is about 2 % of the
    // publisher's time (`seqcast bench --suite api`).
    int doWork(std::uint64_t nowNs);
    // For an application that sleeps rather than spins when doWork() returned 0: blocks until a
    // datagram arrives for this publisher or maxUs passed (keep it at or below a millisecond or
    // so: resends are due on time only if doWork() runs). Does no work itself.
    void wait(std::uint32_t maxUs);

    std::uint32_t id() const noexcept;
    std::uint64_t nextPubSeq() const noexcept;
    std::uint64_t unconfirmed() const noexcept;        // offered and not confirmed yet
    std::uint64_t recoveredMessages() const noexcept;  // unconfirmed messages found in the journal
    const std::string& fatalError() const noexcept;
    // back_pressure, pub_retransmits, drop_too_large (offers refused as TooLarge), datagrams_out, ...
    CounterValues counters() const;

    // Opt in: a thread of the publisher's own calls doWork() (the confirmation handler runs there)
    // until stopThread() or the destructor. Throws SetupError ("thread": already running; "cpu",
    // "maxSleepUs": bad options). startThread/stopThread are not called concurrently with other calls.
    void startThread(const ThreadOptions& options = {});
    void stopThread();  // joins the thread; no effect without one
    bool threadRunning() const noexcept;

private:
    struct Impl;
    explicit Publisher(std::unique_ptr<Impl> impl);
    std::unique_ptr<Impl> impl_;
};

// ---------------------------------------------------------------------------------------------
// Subscriber and Replay

enum class Delivery : std::uint8_t {
    AtLeastOnce,  // every message, in order; a restart starts where `start` says
    AtMostOnce,   // no repair: gaps are reported at once, never NAKed
    ExactlyOnce,  // AtLeastOnce plus a commit after every handler call (commitFile): a restart
                  // resumes after the last message the application finished, nothing twice
};

struct SubscriberOptions {
    std::uint32_t stream = 1;
    std::string group = "239.1.1.1:40001";  // the stream's multicast group:port
    std::string start = "latest";           // "latest", "earliest" or an offset (replayed from the archiver, then live)
    std::string archiver;                   // HOST:PORT: replays, and repairs older than the sequencer's ring
    std::string sequencer;                  // where NAKs go; empty: the stream's source address
    Delivery delivery = Delivery::AtLeastOnce;
    std::string commitFile;                 // ExactlyOnce: where the position is committed
    // ExactlyOnce: the application's own state, committed atomically with the position after every
    // message and loss notice (e.g. how many bytes it has written out): the handler gets the words
    // as last committed and updates them; after a restart Subscriber::committed() reads them back.
    // Without a handler they stay as they are (zeros in a new commit file).
    std::function<void(std::array<std::uint64_t, 6>& app)> onCommit;
    std::size_t reorderBytes = 64u << 20;   // datagrams held ahead of a gap
    std::size_t maxDatagram = 2048;         // largest datagram held ahead of a gap (the sequencer's MTU or more)
    std::uint32_t maxMessage = 1u << 20;
    std::uint64_t nakDeadlineMs = 2000;     // a gap nobody repairs within this is reported lost
    std::uint64_t nakInitialRttUs = 200;    // the round-trip time assumed until one is measured
    // Publish -> deliver latency of every message into counters() and the counters file (the
    // Prometheus exporter serves it as seqcast_latency_seconds): count, sum, and the quantiles of the
    // last 5 seconds. Costs a clock read per datagram; off by default.
    bool recordLatency = false;
    NetworkOptions network;
};

// Message, Loss, MessageHandler and LossHandler: seqcast/message.hpp (included above).

class Subscriber {
public:
    static std::unique_ptr<Subscriber> create(const SubscriberOptions& options);
    ~Subscriber();
    Subscriber(const Subscriber&) = delete;
    Subscriber& operator=(const Subscriber&) = delete;

    // Receives what arrived, delivers what is in order to onMessage, reports losses to onLoss,
    // runs repairs. Never blocks. Returns the work done (0: idle).
    int poll(const MessageHandler& onMessage, const LossHandler& onLoss = {});
    // Blocks until a datagram arrives for this subscriber, one of its timers (a NAK, a loss
    // deadline) is due, or maxUs passed: what to do when poll() returned 0 and spinning is not
    // wanted. Does no work itself.
    void wait(std::uint32_t maxUs);
    // What wait(maxUs) would wait on, for an event loop of the application's (see WaitSet).
    WaitSet waitSet(std::uint32_t maxUs) const;

    bool started() const noexcept;      // the stream's position is known
    std::uint64_t nextOffset() const noexcept;
    std::uint64_t headOffset() const noexcept;  // the stream's head as last heard
    // The sequencer ended the stream and everything before the end was delivered or reported lost.
    bool endOfStream() const noexcept;
    // gaps_detected, naks_sent (NAK datagrams), naks_suppressed, drop_bad_crc, offsets_lost, ...;
    // also nak_ranges_sent (ranges asked for), and with FaultOptions fault_dropped and
    // fault_type_dropped (what the injected faults took away).
    CounterValues counters() const;
    std::uint32_t epoch() const noexcept;  // the sequencer's epoch as last heard
    // Set when the archiver refused or could not complete the replay a start at an offset or at
    // earliest needs (the live stream still flows; what could not be replayed is reported lost).
    const std::string& replayFailure() const noexcept;

    // ExactlyOnce: the last commit in the commit file (present: false before the first one).
    struct Commit {
        bool present;
        std::uint64_t next;  // every message and loss notice below this offset was processed
        std::array<std::uint64_t, 6> app;
    };
    Commit committed() const;
    // ExactlyOnce: every commit reaches the page cache at once (it survives the process being
    // killed); this also writes it to the disk (it survives a power loss). Returns false on error.
    bool syncCommit();

    // Opt in: a thread of the subscriber's own polls it, delivering to these handlers, until
    // stopThread() or the destructor (as Publisher::startThread).
    void startThread(MessageHandler onMessage, LossHandler onLoss = {}, const ThreadOptions& options = {});
    void stopThread();
    bool threadRunning() const noexcept;

private:
    struct Impl;
    explicit Subscriber(std::unique_ptr<Impl> impl);
    std::unique_ptr<Impl> impl_;
};

struct ReplayOptions {
    std::uint32_t stream = 1;
    std::string archiver = "127.0.0.1:40100";
    std::uint64_t from = 0;
    std::uint64_t to = ~std::uint64_t{0};  // exclusive; the default: up to the archiver's head
    bool earliest = false;                 // start at the earliest retained offset if `from` is older
    // 0: as fast as the client takes them. > 0: paced as they were published (their publishers'
    // timestamps; never backwards) at `speed` times that pace: 1 the original, 10 ten times faster.
    double speed = 0;
    // Offsets the archiver does not hold yet: wait for them to be recorded (true) or end the replay
    // with a failure naming the offset asked for (false).
    bool waitForData = false;
    std::string bind;  // local address HOST:PORT; empty: network.interface, any port
    NetworkOptions network;
};

// Offsets [from, to) from an archiver to a handler, as fast as the client takes them (flow
// controlled by the archiver's window) or paced (ReplayOptions::speed).
class Replay {
public:
    static std::unique_ptr<Replay> create(const ReplayOptions& options);
    ~Replay();  // before the end of the range: tells the archiver, which frees the session at once
    Replay(const Replay&) = delete;
    Replay& operator=(const Replay&) = delete;

    int poll(const MessageHandler& onMessage, const LossHandler& onLoss = {});
    void wait(std::uint32_t maxUs);  // as Subscriber::wait
    WaitSet waitSet(std::uint32_t maxUs) const;  // as Subscriber::waitSet
    // Everything asked for was delivered, or reported lost, or the archiver ended the replay.
    bool finished() const noexcept;
    // Set when the archiver refused or could not complete the replay.
    const std::string& failure() const noexcept;
    std::uint64_t nextOffset() const noexcept;
    CounterValues counters() const;

private:
    struct Impl;
    explicit Replay(std::unique_ptr<Impl> impl);
    std::unique_ptr<Impl> impl_;
};

// ---------------------------------------------------------------------------------------------
// The sequencer, embedded: what `seqcast sequencer` runs, in the application's process. Most
// applications talk to a sequencer run by others; tests, demos, single-host deployments and tools
// embed one. Driven like the clients: doWork() (or startThread()). Defaults are the CLI's.

struct SequencerOptions {
    std::uint32_t stream = 1;
    std::string control = "127.0.0.1:40000";  // where publishers (and NAKs) reach it, HOST:PORT
    std::string group = "239.1.1.1:40001";    // the stream's multicast group:port
    // Where the stream leaves from and subscribers' NAKs reach: empty, the control address's host
    // and any port (so repair requests never queue behind publishers' PUBs); "control": the control
    // socket itself; else HOST:PORT.
    std::string dataBind;
    std::size_t mtu = 1408;                   // largest datagram
    std::size_t ringBytes = 64u << 20;        // the retransmit ring
    // Epoch, next offset, publisher positions and the ring, across restarts. Empty:
    // "seqcast-stream-<stream>.state" in the working directory.
    std::string stateFile;
    bool syncState = false;                   // msync the state file after every batch
    std::uint32_t maxPublishers = 256;
    std::uint64_t publisherTimeoutS = 60;     // idle this long, a publisher's slot may go to a new one
    std::uint64_t heartbeatMinUs = 50;        // the first idle heartbeat; the interval doubles ...
    std::uint64_t heartbeatMaxMs = 100;       // ... up to this
    std::uint64_t retransmitHoldoffUs = 250;  // NAKs for a datagram re-sent this recently are coalesced
    std::uint64_t retransmitBytesPerSec = 400ull << 20;
    std::uint64_t retransmitBytesPerSecPerHost = 64ull << 20;  // one requesting host's share of that
    // Test only: the probability that an entry's payload byte is flipped after its PUB was checked and
    // before its DATA is signed (memory damage inside the sequencer); no subscriber may deliver it.
    double faultDamageEntry = 0;
    NetworkOptions network;  // faults apply to the control socket and (seed + 1) the data socket

    // High availability (docs/HA.md): hot-standby sequencers of one stream, the leader chosen in
    // etcd. Empty haEtcd: a single sequencer, exactly as without these fields.
    std::string haEtcd;               // etcd endpoints: "http://HOST:2379,http://HOST:2379"
    std::string haName;               // this sequencer's name, unique within the stream
    std::string haRepl;               // HOST:PORT of its replication socket; empty: the control host, any port
    std::uint32_t haLeaseTtlS = 2;    // etcd lease of its keys (1..60)
    std::uint64_t haTakeoverMs = 100; // an in-sync standby takes over after this much leader silence
    std::uint64_t haIsrTimeoutMs = 100;  // a leader stops waiting for a standby silent this long
};

class Sequencer {
public:
    // Throws SetupError: a bad option, an address in use, a state file another sequencer holds
    // ("stateFile") or that is damaged.
    static std::unique_ptr<Sequencer> create(const SequencerOptions& options);
    ~Sequencer();
    Sequencer(const Sequencer&) = delete;
    Sequencer& operator=(const Sequencer&) = delete;

    // Sequences what publishers sent, multicasts it, answers NAKs, heartbeats. Returns the work done.
    int doWork();
    // Blocks until a datagram arrives, a heartbeat is due, or maxUs passed. Does no work itself.
    void wait(std::uint32_t maxUs);
    // Ends the stream: END_OF_STREAM goes out; from then on nothing more is sequenced, NAKs are still
    // answered and heartbeats carry the END flag. Keep calling doWork() a while so that a subscriber
    // that lost the END_OF_STREAM repairs the tail (`seqcast sequencer --linger-ms`).
    void endOfStream();

    std::uint64_t nextOffset() const noexcept;  // the offset the next message gets
    std::uint32_t epoch() const noexcept;       // this run's epoch (one more than the last run's)
    bool recovered() const noexcept;            // resumed from an existing state file
    std::string controlAddress() const;         // HOST:PORT as bound
    std::string dataAddress() const;
    std::string socketKind() const;             // "udp", "uring", "dpdk"
    std::uint64_t faultsInjected() const noexcept;  // entries damaged by faultDamageEntry
    // HA: "single" (no haEtcd), "leader", "standby" or "stepped-down"; the replication address; and,
    // once it stepped down (leadership lost), why: the process should then exit and be restarted.
    std::string haRole() const;
    std::string replAddress() const;
    std::string haFailure() const;
    // datagrams_out, messages_out, retransmits, naks_received, retransmits_bad_crc, ...
    CounterValues counters() const;

    void startThread(const ThreadOptions& options = {});  // as Publisher::startThread
    void stopThread();
    bool threadRunning() const noexcept;

private:
    struct Impl;
    explicit Sequencer(std::unique_ptr<Impl> impl);
    std::unique_ptr<Impl> impl_;
};

// ---------------------------------------------------------------------------------------------
// The archiver, embedded: what `seqcast archiver` runs. A reliable subscriber that records the
// stream into a preallocated ring-buffer log (io_uring), serves replays (seqcast::Replay, a
// Subscriber starting at an offset) and answers NAKs older than the sequencer's ring.

enum class Durability : std::uint8_t {
    None,      // the page cache decides
    Interval,  // fdatasync every syncIntervalMs
    Batch,     // fdatasync after every write
};

struct ArchiverOptions {
    std::uint32_t stream = 1;
    std::string group = "239.1.1.1:40001";    // the stream's multicast group:port
    std::string control = "127.0.0.1:40100";  // where replay requests and NAKs reach it
    std::string log = "seqcast-archive.log";  // created and preallocated if missing, else recovered
    std::uint64_t sizeBytes = 1ull << 30;     // capacity (retention): a multiple of segmentBytes, 4 at least
    std::uint64_t segmentBytes = 16u << 20;   // the unit overwritten when the ring wraps (a multiple of 4096)
    Durability durability = Durability::Interval;
    std::uint64_t syncIntervalMs = 10;
    bool direct = false;                      // O_DIRECT writes and reads
    bool useUring = true;                     // io_uring file I/O (false: pread/pwrite)
    std::uint32_t maxSessions = 64;           // concurrent replays (1..64)
    std::uint32_t maxSessionsPerClient = 8;
    std::size_t windowBytes = 1u << 20;       // replay bytes in flight beyond a client's acknowledgement
    std::size_t reorderBytes = 128u << 20;    // datagrams held ahead of a gap while it is repaired
    std::size_t backlogBytes = 512u << 20;    // received bytes held while the disk is slower than the stream
    std::uint64_t nakDeadlineMs = 2000;       // a gap nobody repairs within this is recorded as lost
    // A deep receive queue (128 MiB) rides out a stall of the disk or the scheduler.
    NetworkOptions network = [] {
        NetworkOptions n;
        n.rcvbuf = 128u << 20;
        return n;
    }();
    // Recovery of an existing log: called with the fraction done (0..1).
    std::function<void(double fraction)> onRecoveryProgress;
    // Each range of offsets recorded as never received (nobody could repair it in time).
    std::function<void(std::uint64_t first, std::uint64_t count)> onGap;
};

class Archiver {
public:
    // Throws SetupError: a bad option, an address in use, a log another archiver holds or that is
    // not a log of this stream ("log").
    static std::unique_ptr<Archiver> create(const ArchiverOptions& options);
    ~Archiver();
    Archiver(const Archiver&) = delete;
    Archiver& operator=(const Archiver&) = delete;

    int doWork();
    void wait(std::uint32_t maxUs);
    // Writes what is held and syncs (before a stop). False on an error (failure() says which).
    bool flush();
    // Set when recording had to stop (a write failed, e.g. the disk is full); what is stored is still
    // served, and stays valid below durableOffset().
    const std::string& failure() const noexcept;

    std::uint64_t earliestOffset() const noexcept;  // the oldest offset retained
    std::uint64_t nextOffset() const noexcept;      // the offset the next record starts at
    std::uint64_t durableOffset() const noexcept;   // everything below is written and synced
    bool recovered() const noexcept;                // opened an existing log
    std::uint64_t recoveredRecords() const noexcept;
    std::uint64_t damagedRecords() const noexcept;  // skipped at recovery (their offsets are lost)
    std::uint64_t truncatedBytes() const noexcept;  // dropped after a torn or damaged tail at recovery
    bool usingUring() const noexcept;
    std::string controlAddress() const;
    // archive_gaps, archive_gap_offsets, replays_started, messages_in, ...
    CounterValues counters() const;

    void startThread(const ThreadOptions& options = {});  // as Publisher::startThread
    void stopThread();
    bool threadRunning() const noexcept;

private:
    struct Impl;
    explicit Archiver(std::unique_ptr<Impl> impl);
    std::unique_ptr<Impl> impl_;
};

// ---------------------------------------------------------------------------------------------
// Counters of the seqcast processes on this host (what `seqcast stat` shows).

struct ProcessCounters {
    std::uint64_t pid;
    std::string role;  // "sequencer", "sub", "archiver", "pub", ...
    std::uint32_t stream;
    bool alive;
    std::map<std::string, std::uint64_t> values;  // counter name -> value
};
std::vector<ProcessCounters> readCounters();
// The same from another counters directory (the default is where every seqcast process writes).
std::vector<ProcessCounters> readCounters(const std::string& directory);
extern const char* const kCountersDirectory;  // that default: "/dev/shm/seqcast" 

// What each counter name means: a line of help, and whether it is a gauge (a level that may go
// down, e.g. head_offset) rather than a count that only grows (in a process's lifetime).
struct CounterInfo {
    std::string name;
    std::string help;
    bool gauge;
};
std::vector<CounterInfo> counterInfo();

}  // namespace seqcast
