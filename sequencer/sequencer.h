// The sequencer agent: accepts each (publisher id, pub_seq) exactly once and in per-publisher
// order, stamps entries with consecutive offsets, multicasts them packed up to the MTU, keeps them
// in a retransmit ring, answers NAKs, confirms to publishers, and heartbeats while idle.
#pragma once

#include <cstdint>
#include <atomic>
#include <deque>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "fabric/counters.h"
#include "fabric/result.h"
#include "fabric/wire.h"
#include "sequencer/retransmit_ring.h"
#include "sequencer/state_file.h"
#include "transport/transport.h"

namespace seqcast::sequencer {

struct SequencerConfig {
    StreamId stream{1};
    transport::Endpoint group;               // where the stream is multicast
    std::size_t mtu = wire::kDefaultMtu;
    std::size_t ringBytes = 64u << 20;       // retransmit ring
    std::uint32_t maxPublishers = 256;
    // A publisher that has sent nothing for this long may lose its slot to a new publisher when
    // every slot is taken (the least recently active goes first). Its position (next pub_seq) is
    // still remembered (below), so what it sends later is deduplicated as before.
    std::uint64_t publisherTimeoutNs = 60'000'000'000;
    // Positions of publishers whose slot was given away, remembered while the sequencer runs (the
    // oldest forgotten first): a late retransmission from one is still recognised as a duplicate.
    std::size_t retiredPublishers = 65536;
    std::string statePath;                   // empty: no persistence (tests)
    bool syncState = false;                  // msync the state file after every batch
    std::uint64_t heartbeatMinNs = 50'000;   // first heartbeat after the last data; doubles while idle
    std::uint64_t heartbeatMaxNs = 100'000'000;
    std::uint64_t retransmitHoldoffNs = 250'000;  // NAKs for a datagram re-sent this recently are coalesced
    std::uint64_t retransmitBytesPerSec = 400'000'000;
    // Each requesting host (by IP address) gets at most this share: one host flooding NAKs cannot
    // spend the whole budget that every subscriber's repairs draw on.
    std::uint64_t retransmitBytesPerSecPerHost = 64'000'000;
    std::uint32_t maxNakOffsets = 65536;     // offsets served per NAK range
    std::size_t pubReorderBytes = 8u << 20;  // PUB datagrams held while an earlier one is missing
    std::size_t burst = 64;
    // Test only (--fault-damage-entry): the probability that an entry's last payload byte is flipped
    // after its PUB was checked and before its DATA datagram is signed, as memory damage inside the
    // sequencer would. The entry keeps the publisher's CRC, so no subscriber may deliver it.
    double faultDamageEntry = 0;
    std::uint64_t faultSeed = 1;

    Status validate() const;
};

class Sequencer {
public:
    // The longest heartbeat interval after endOfStream(): ~100 flagged heartbeats a second.
    static constexpr std::uint64_t kEndHeartbeatMaxNs = 10'000'000;
    // `control` receives PUB (and NAK) frames and sends confirmations; `data` sends the stream,
    // retransmissions and heartbeats, and receives the NAKs subscribers send to the stream's
    // source, ahead of PUBs. They may be the same transport.
    static Result<std::unique_ptr<Sequencer>> create(const SequencerConfig& cfg, transport::Transport& control,
                                                     transport::Transport& data, Counters& counters);

    int doWork(std::uint64_t nowNs);
    // Ends the stream (a clean stop): sends END_OF_STREAM three times; from then on doWork()
    // sequences nothing (PUBs are dropped, counted as drop_unexpected_type), still answers NAKs, and
    // its heartbeats carry the END flag. Call doWork() for a while after (the command's --linger-ms)
    // so that a subscriber that lost every END_OF_STREAM learns of the end from a heartbeat and can
    // still repair the tail.
    void endOfStream();
    bool ended() const noexcept { return ended_; }

    Epoch epoch() const noexcept { return epoch_; }
    // When doWork() next has timed work (a heartbeat), monotonic ns.
    // A standby (HA) sends no heartbeats: its timers (joins, acknowledgements) are its driver's
    // (HaNode: at least every millisecond).
    std::uint64_t nextTimerNs() const noexcept {
        return role_ == Role::Single || role_ == Role::Leader ? nextHeartbeatNs_ : ~std::uint64_t{0};
    }
    Offset nextOffset() const noexcept { return Offset{nextOffset_}; }
    Offset oldestRetained() const noexcept { return ring_->oldest(); }
    bool recovered() const noexcept { return state_.recovered(); }
    std::size_t publishers() const noexcept { return pubs_.size(); }
    std::size_t ringDroppedOnRecover() const noexcept { return ring_->droppedOnRecover(); }
    std::uint64_t faultsInjected() const noexcept { return faultsInjected_; }  // --fault-damage-entry

    // ---- Hot standby (HA). sequencer/ha.h decides the role from etcd and calls these on the
    // sequencer's thread. Without attachReplication() the sequencer is Single: nothing changes.
    //
    // The rule: replicate, then publish. A leader sends each DATA datagram to its standbys before
    // it multicasts it, and releases it to the group (and confirms its messages to publishers)
    // only once every *required* standby (those in the stream's in-sync set in etcd) acknowledged
    // holding it. So every offset anyone may have delivered is held by every in-sync standby, and a
    // standby that takes over never gives an offset to another message. A leader cut off from a
    // required standby publishes nothing until that standby is removed from the in-sync set (an
    // etcd transaction that only the current leader can make), which also fences a zombie leader.
    enum class Role : std::uint8_t { Single = 0, Leader = 1, Standby = 2, SteppedDown = 3 };
    struct Replica {
        transport::Endpoint to;  // the standby's replication address
        bool required = false;   // in the in-sync set: releases wait for its acknowledgement
    };
    struct ReplicaStatus {
        transport::Endpoint to;
        bool required = false;
        bool joined = false;       // it asked for and got a snapshot from this leader
        std::uint64_t acked = 0;   // it holds every offset below this
        std::uint64_t lastAckNs = 0;
        std::uint64_t progressNs = 0;    // when `acked` last moved
        std::uint64_t requiredFrom = 0;  // the released point when it became required
    };
    // Becomes a standby that follows nobody yet (refuses PUBs, sends nothing to the group).
    void attachReplication(transport::Transport& repl);
    // Follows the leader whose replication address is `leader`, in its epoch: asks it for a
    // snapshot (publisher positions) and stores every datagram it sends, acknowledging each.
    void standBy(transport::Endpoint leader, Epoch leaderEpoch);
    // Leads with `epoch` (from etcd: unique across hosts). A standby first re-sends, as
    // retransmissions, what it holds beyond what it knows the old leader released; they are
    // released through the same rule as new data.
    void lead(Epoch epoch);
    void setReplicas(const std::vector<Replica>& replicas);
    // Stops sequencing, releasing, acknowledging and sending: leadership is lost.
    void stepDown();
    Role role() const noexcept { return role_; }
    std::uint64_t leaderHeardNs() const noexcept { return leaderHeardNs_; }  // standby: monotonic ns
    // Standby: its ring and publisher positions agree and hold what the leader released
    // (a leader may be made from it). A Single or Leader state is whole.
    bool stateComplete() noexcept { return state_.header().haIncomplete == 0; }
    std::vector<ReplicaStatus> replicaStatus() const;
    Offset releasedOffset() const noexcept { return Offset{role_ == Role::Single ? nextOffset_ : releasedEnd_}; }
    // Leader: the oldest datagram waiting for its standbys: its end offset and when it was committed
    // (0, 0: none waits).
    std::pair<std::uint64_t, std::uint64_t> oldestPending() const noexcept {
        return pending_.empty() ? std::pair<std::uint64_t, std::uint64_t>{0, 0}
                                : std::pair<std::uint64_t, std::uint64_t>{pending_.front().first + pending_.front().count,
                                                                          pending_.front().committedNs};
    }

private:
    struct Pub {
        std::uint32_t id;
        std::uint32_t slot;          // record index in the state file
        std::uint64_t nextPubSeq;
        std::uint32_t nextFrag;
        transport::Endpoint from;
        std::uint64_t lastActiveNs;  // when its last PUB arrived (0: not since this sequencer started)
        bool dirty;                  // working state not yet persisted
        bool ackPending;
        bool nakPending;
        std::vector<wire::PubAckRunView> runs;
        std::vector<std::uint32_t> held;  // pool slots, sorted by (pub_seq, fragment) descending
    };
    struct HeldSlot {
        std::uint64_t pubSeq;
        std::uint32_t frag;
        std::uint32_t len;
    };
    Sequencer(const SequencerConfig& cfg, transport::Transport& control, transport::Transport& data,
              Counters& counters, StateFile state);
    void recover();
    Pub* lookup(std::uint32_t id, std::uint64_t base, bool create);
    // The least recently active idle publisher whose slot may be given away, or nullptr.
    Pub* expirable();
    void retire(Pub& p);
    void onPub(const wire::DatagramView& v, transport::Endpoint from);
    void sequenceEntries(Pub& p, const wire::DatagramView& v);
    bool hold(Pub& p, std::span<const std::byte> bytes, std::uint64_t pubSeq, std::uint32_t frag);
    void drainHeld(Pub& p);
    void onNak(const wire::DatagramView& v, transport::Endpoint from, std::uint64_t nowNs);
    void openDatagram();
    void onDatagram(const transport::RxSlot& slot, bool control, std::uint64_t nowNs);
    void closeDatagram();
    void queueAck(Pub& p, std::uint64_t pubSeq, std::uint64_t offset);
    // Sends the queued stream datagrams; untilDone: retries a full socket buffer until all left.
    bool sendData(bool untilDone);
    bool flushData();
    void flushControl();
    void sendHeartbeat(transport::Endpoint to);
    // Standby: applies a datagram's entries to the publisher positions (as recover() does).
    void applyEntries(const wire::DatagramView& v);
    bool sendAcks(Pub& p);
    // HA work inside doWork(): replication I/O, release, resends.
    int doReplication(std::uint64_t nowNs);
    void onReplDatagram(const transport::RxSlot& slot, std::uint64_t nowNs);
    void release(std::uint64_t nowNs);
    void sendSnapshot(std::size_t replica, std::uint64_t session);
    void pumpReplica(std::size_t replica, std::uint64_t nowNs);
    void flushRepl();
    void refuseNotLeader(const wire::DatagramView& v, transport::Endpoint from);

    SequencerConfig cfg_;
    transport::Transport& control_;
    transport::Transport& data_;
    Counters& c_;
    StateFile state_;
    std::unique_ptr<sequencer::RetransmitRing> ring_;
    Epoch epoch_{0};
    std::uint64_t nextOffset_ = 0;
    std::uint64_t faultRng_ = 0;         // --fault-damage-entry draws (xorshift64*)
    std::uint64_t faultsInjected_ = 0;
    double faultDraw() noexcept {
        faultRng_ ^= faultRng_ >> 12;
        faultRng_ ^= faultRng_ << 25;
        faultRng_ ^= faultRng_ >> 27;
        return static_cast<double>((faultRng_ * 0x2545F4914F6CDD1Dull) >> 11) * 0x1.0p-53;
    }
    bool ended_ = false;
    std::uint64_t sentEnd_ = 0;  // offsets below this were sent before the current receive burst

    std::vector<Pub> pubs_;
    std::unordered_map<std::uint32_t, std::uint32_t> pubIndex_;
    struct Retired {
        std::uint64_t nextPubSeq;
        std::uint32_t nextFrag;
    };
    std::unordered_map<std::uint32_t, Retired> retired_;  // expired publishers' positions
    std::deque<std::uint32_t> retiredOrder_;              // their ids, oldest first
    std::uint64_t startNs_ = 0;                           // the first doWork(): recovered publishers are active from then
    std::uint64_t noExpiryBeforeNs_ = 0;                  // no publisher can be idle long enough before this
    std::vector<std::uint32_t> touched_;
    std::vector<std::byte> heldArena_;
    std::vector<HeldSlot> heldSlots_;
    std::vector<std::uint32_t> heldFree_;

    // The DATA datagram being filled, inside the ring's reserved space.
    std::span<std::byte> cur_;
    wire::DatagramWriter writer_{std::span<std::byte>()};
    bool open_ = false;
    std::uint64_t curFirst_ = 0;

    std::vector<transport::TxItem> txData_;   // stream datagrams not yet sent (in order)
    std::size_t txDataDone_ = 0;
    std::vector<transport::TxItem> txCtl_;    // confirmations, retransmissions, unicast heartbeats
    std::vector<std::byte> ctlArena_;
    std::size_t ctlUsed_ = 0;
    std::vector<transport::RxSlot> rx_;

    std::uint64_t nowNs_ = 0;
    std::uint64_t hbInterval_ = 0;
    std::uint64_t nextHeartbeatNs_ = 0;
    double tokens_ = 0;
    std::uint64_t tokensAtNs_ = 0;
    // Per-host retransmission budgets: a fixed open-addressed table (no allocation per NAK); when
    // the probed entries are all taken, the one heard from least recently is reused.
    struct HostBudget {
        std::uint32_t addr = 0;
        bool used = false;
        double tokens = 0;
        std::uint64_t atNs = 0;
    };
    static constexpr std::size_t kHostSlots = 4096;
    static constexpr std::size_t kHostProbe = 8;
    std::vector<HostBudget> hosts_;
    HostBudget& hostBudget(std::uint32_t addr, std::uint64_t nowNs);

    // HA state (role_ Single: none of it is used).
    std::atomic<Role> role_{Role::Single};  // read by other threads (the API's haRole())
    transport::Transport* repl_ = nullptr;
    std::uint64_t releasedEnd_ = 0;  // leader: offsets below this went (or go) to the group
    struct Pending {
        std::uint64_t first;
        std::uint32_t count;
        std::uint64_t committedNs;
        bool retransmit;  // carried over from the old leader's epoch: leaves as a retransmission
    };
    std::deque<Pending> pending_;     // committed, not yet released (in offset order)
    std::vector<std::uint32_t> ackWait_;  // publishers whose confirmations wait for a release
    std::vector<wire::PubAckRunView> ackLater_;
    struct ReplicaState {
        transport::Endpoint to;
        bool required = false;
        std::uint64_t session = 0;     // 0: has not joined
        std::uint64_t acked = 0;
        std::uint64_t sentEnd = 0;     // sent up to here (in order)
        std::uint64_t lastAckNs = 0;
        std::uint64_t progressNs = 0;  // when acked last moved (or the last go-back)
        std::uint64_t lastSnapshotNs = 0;
        std::uint64_t requiredFrom = 0;
    };
    std::vector<ReplicaState> replicas_;
    std::vector<transport::TxItem> txRepl_;
    std::vector<std::byte> replArena_;
    std::size_t replUsed_ = 0;
    std::uint64_t nextReplHbNs_ = 0;
    // Standby.
    transport::Endpoint leader_;
    Epoch leaderEpoch_{0};
    std::uint64_t session_ = 0;
    std::uint64_t leaderHeardNs_ = 0;
    std::uint64_t leaderReleased_ = 0;  // what the leader said it released
    std::uint64_t tableHead_ = 0;       // the snapshot's publisher positions are as of this offset
    bool snapshotApplied_ = false;
    std::uint64_t nextJoinNs_ = 0;
    std::uint32_t snapChunks_ = 0;
    std::vector<bool> snapHave_;
    std::vector<wire::ReplPublisherView> snapRecords_;
    std::uint64_t snapRingStart_ = 0;
    bool ackDue_ = false;
};

}  // namespace seqcast::sequencer
