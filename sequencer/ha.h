// High availability: which sequencer leads a stream, decided in etcd. One HaNode per sequencer
// process and stream. Its coordinator thread talks to etcd (blocking calls, each bounded); the
// sequencer's own thread calls doWork(), which applies the coordinator's decisions to the engine
// (standBy / lead / setReplicas / stepDown) and reports the engine's progress back.
//
// Keys, under /seqcast/streams/<id>/:
//   members/<name>  "repl=H:P;control=H:P;data=H:P"  each live sequencer, on its own lease
//   leader          "name=N;repl=..;control=..;data=.."  on the leader's lease; its mod_revision
//                   is the leader's epoch (a fencing token: unique and increasing across hosts)
//   isr             "a,b"  the in-sync set: the leader and the standbys every release waits for;
//                   written only by a transaction that checks the leader key's mod_revision, so
//                   only the current leader changes it; only its members may become leader.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "fabric/result.h"
#include "sequencer/etcd.h"
#include "sequencer/sequencer.h"

namespace seqcast::sequencer {

struct HaConfig {
    std::string etcd;           // endpoints, comma separated
    std::string name;           // this sequencer's name, unique per stream
    StreamId stream{1};
    std::string replAddress;    // HOST:PORT of its replication socket, as the others reach it
    std::string controlAddress; // HOST:PORT publishers reach
    std::string dataAddress;    // HOST:PORT the stream leaves from
    std::string group;          // the stream's multicast group:port (published for subscribers)
    std::uint32_t leaseTtlS = 2;          // etcd lease of the member and leader keys
    std::uint64_t takeoverNs = 100'000'000;  // a standby in the in-sync set takes over after this much leader silence
    std::uint64_t isrTimeoutNs = 100'000'000; // a leader drops a standby that acknowledged nothing for this long
    std::uint32_t etcdTimeoutMs = 300;
    std::uint64_t pollNs = 10'000'000;    // the coordinator's period (a standby checks its leader's silence)
    std::uint64_t readNs = 50'000'000;    // how often it reads etcd when nothing is amiss

    Status validate() const;
};

// What etcd says of a stream: the directory subscribers, publishers and `seqcast stat` read.
struct StreamDirectory {
    StreamId stream{0};
    std::string leader;                 // its name; empty: no leader now
    std::uint32_t epoch = 0;            // the leader key's mod_revision
    std::string group;                  // multicast group:port
    std::vector<std::string> controls;  // every sequencer's control address, the leader's first
    std::vector<std::string> members;   // names
    std::vector<std::string> isr;       // the in-sync set
    // The leader's released head, as it wrote it about once a second (absent: none written yet).
    std::optional<std::uint64_t> head;
    std::uint64_t headWallNs = 0;       // when it was written (CLOCK_REALTIME)
};
// One stream's directory (ENOENT: no sequencer of that stream is registered).
Result<StreamDirectory> readStreamDirectory(const std::string& etcd, StreamId stream, std::uint32_t timeoutMs = 2000);
// Every stream registered in etcd, by stream id.
Result<std::vector<StreamDirectory>> listStreamDirectories(const std::string& etcd, std::uint32_t timeoutMs = 2000);

class HaNode {
public:
    static Result<std::unique_ptr<HaNode>> create(const HaConfig& cfg, Sequencer& seq);
    ~HaNode();

    // On the sequencer's thread, before each Sequencer::doWork().
    void doWork(std::uint64_t nowNs);
    // Leadership was lost (or etcd stayed out of reach while leading): the sequencer stepped down;
    // the process should exit (a supervisor restarts it as a standby). The reason, else empty.
    std::string failure() const;
    Sequencer::Role role() const noexcept { return seq_.role(); }
    // Leaves etcd: revokes the lease (the member key and, if leading, the leader key go at once).
    void stop();

private:
    HaNode(const HaConfig& cfg, Sequencer& seq, EtcdClient etcd);
    void run();
    bool tick();  // one coordinator round; false: stop
    std::string key(const std::string& rest) const;
    std::string myValue() const;
    // Posts commands for the sequencer's thread and waits until it applied them (or times out).
    struct Command {
        enum class Kind : std::uint8_t { StandBy, Fence, Lead, SetReplicas, StepDown } kind;
        transport::Endpoint leader;
        Epoch epoch{0};
        std::vector<Sequencer::Replica> replicas;
    };
    bool post(std::vector<Command> cmds);
    struct Status {
        Sequencer::Role role = Sequencer::Role::Standby;
        bool complete = false;
        std::uint64_t leaderHeardNs = 0;
        std::uint64_t nextOffset = 0;
        std::uint64_t released = 0;
        std::uint64_t pendingEnd = 0;  // the oldest datagram waiting for the standbys: its end offset,
        std::uint64_t pendingNs = 0;   // and when it was committed (0: none waits)
        std::vector<Sequencer::ReplicaStatus> replicas;
        std::uint64_t atNs = 0;
    };
    Status status();
    std::vector<Sequencer::Replica> replicasFor(const std::vector<std::string>& isr);

    HaConfig cfg_;
    Sequencer& seq_;
    EtcdClient etcd_;
    std::int64_t lease_ = 0;
    std::uint64_t lastKeepAliveNs_ = 0;
    std::uint64_t lastKeepAliveOkNs_ = 0;
    Epoch following_{0};
    Epoch leading_{0};
    std::uint64_t followSinceNs_ = 0;  // when it began to follow the current leader
    std::uint64_t ledSinceNs_ = 0;     // when it began to lead
    std::uint64_t lastReadNs_ = 0;     // the last read of the stream's keys
    std::uint64_t lastHeadNs_ = 0;     // the last head written to the directory (leader)
    struct Member {
        std::string name;
        transport::Endpoint repl;
    };
    std::vector<Member> members_;
    std::vector<std::string> isr_;
    std::string isrValue_;
    bool isrExists_ = false;

    mutable std::mutex mu_;
    std::vector<Command> cmds_;
    std::atomic<std::uint64_t> posted_{0};
    std::atomic<std::uint64_t> applied_{0};
    Status status_;
    std::uint64_t lastStatusNs_ = 0;
    std::string failure_;
    std::atomic<bool> stop_{false};
    std::thread thread_;
};

}  // namespace seqcast::sequencer
