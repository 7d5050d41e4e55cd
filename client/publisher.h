// The publisher: numbers its messages (publisher id, pub_seq), sends them to the sequencer packed
// into PUB datagrams, keeps each until the sequencer confirms it with its offset, retransmits what
// is not confirmed, and says "back-pressured" when its window is full.
//
// Identity: with a journal file the publisher id, the pub_seq counter and every unconfirmed
// message live in that memory-mapped file, so a publisher killed at any point restarts, resends
// what was not confirmed and goes on: the sequencer's dedup drops what it already sequenced and
// nothing is lost or doubled. Without a journal the publisher takes a fresh random id each start.
// A journal is locked while open: a second publisher on the same journal is refused (EBUSY).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "fabric/counters.h"
#include "fabric/mapped_file.h"
#include "fabric/result.h"
#include "fabric/wire.h"
#include "transport/transport.h"

namespace seqcast::client {

struct PublisherConfig {
    StreamId stream{1};
    PublisherId id{0};                    // 0: from the journal, else random
    transport::Endpoint sequencer;
    // HA: the stream's other sequencers. The publisher sends to one at a time and moves to the next
    // (in turn, wrapping) when the one it uses says it is not the leader, or leaves
    // kFailoverTimeouts retransmission timeouts in a row unanswered; it then resends everything
    // unconfirmed, which the new leader's dedup table sequences once.
    std::vector<transport::Endpoint> alternates;
    std::size_t mtu = wire::kDefaultMtu;
    std::uint32_t window = 4096;          // unconfirmed messages (power of two, <= 4096)
    std::size_t windowBytes = 32u << 20;  // bytes of unconfirmed messages
    std::uint32_t maxMessage = wire::kDefaultMaxMessage;
    std::uint64_t initialRtoNs = 2'000'000;
    std::uint64_t minRtoNs = 1'000'000;
    std::uint64_t maxRtoNs = 200'000'000;
    std::string journalPath;              // empty: unconfirmed messages live in memory only
    std::size_t burst = 64;               // datagrams per send burst

    Status validate() const;
};

struct Confirmation {
    PubSeq pubSeq;
    Offset offset;        // wire::kOffsetOpen if the sequencer no longer remembered it
    // offer() to confirmation, on the clock doWork() is given. A message offered before the first
    // doWork(), or recovered from the journal at a restart, is timed from that first doWork().
    std::uint64_t latencyNs;
};

class Publisher {
public:
    using ConfirmHandler = std::function<void(const Confirmation&)>;
    static Result<std::unique_ptr<Publisher>> create(const PublisherConfig& cfg, transport::Transport& t,
                                                     Counters& counters, ConfirmHandler onConfirm);
    ~Publisher();

    enum class Offer : std::uint8_t { Accepted, BackPressured, TooLarge, ClaimOpen };
    // Copies the message into the window; it is sent by the next doWork(). ClaimOpen: a claim
    // (below) is open and must be committed or aborted first.
    Offer offer(std::span<const std::byte> message, std::uint64_t publishTsNs);
    // Zero copy: reserves room for a message of up to `maxBytes` inside the window (the journal,
    // when there is one) and returns where to write it. commitClaim(n) publishes its first n bytes
    // (n <= maxBytes) exactly as offer() would; abortClaim() gives the room back. One claim at a
    // time; doWork() may run while it is open (it sends only committed messages).
    Offer claim(std::size_t maxBytes, std::span<std::byte>& buffer);
    void commitClaim(std::size_t n, std::uint64_t publishTsNs);
    void abortClaim() noexcept { claimOpen_ = false; }
    bool claimOpen() const noexcept { return claimOpen_; }
    int doWork(std::uint64_t nowNs);

    PublisherId id() const noexcept;
    PubSeq nextPubSeq() const noexcept;
    std::uint64_t unconfirmed() const noexcept;
    bool allConfirmed() const noexcept { return unconfirmed() == 0; }
    std::uint64_t recoveredMessages() const noexcept { return recovered_; }
    // Set when the sequencer refused this publisher outright (e.g. its publisher table is full).
    const std::string& fatalError() const noexcept { return fatal_; }
    std::uint64_t srttNs() const noexcept { return srtt_; }
    // HA: the sequencer it sends to now, and how often it moved to another.
    transport::Endpoint target() const noexcept { return target_; }
    std::uint64_t failovers() const noexcept { return failovers_; }
    static constexpr std::uint32_t kFailoverTimeouts = 3;

private:
    struct Journal;
    struct Slot;
    Publisher(const PublisherConfig& cfg, transport::Transport& t, Counters& c, ConfirmHandler h);
    Status openJournal();
    Slot& slot(std::uint64_t s) noexcept;
    std::span<const std::byte> payload(const Slot& s) const noexcept;
    void onAck(const wire::DatagramView& v, std::uint64_t nowNs);
    void onNak(const wire::DatagramView& v, transport::Endpoint from, std::uint64_t nowNs);
    void releaseConfirmed(std::uint64_t nowNs);
    Offer reserve(std::size_t n, std::uint64_t& pos);
    void publish(std::uint64_t pos, std::size_t n, std::uint64_t publishTsNs);
    std::size_t fillSends(std::uint64_t nowNs);
    void requestResend(std::uint64_t lo, std::uint64_t hi, std::uint64_t guardNs);
    void failOver();

    PublisherConfig cfg_;
    transport::Transport& t_;
    Counters& c_;
    ConfirmHandler onConfirm_;
    std::optional<MappedFile> file_;  // the journal (locked while open), or anonymous memory
    std::byte* map_ = nullptr;
    std::size_t mapSize_ = 0;
    bool anonymous_ = true;
    Journal* j_ = nullptr;
    Slot* slots_ = nullptr;
    std::byte* ring_ = nullptr;

    std::uint64_t highestSent_ = 0;   // one past the highest message sent at least once
    std::uint32_t newFrag_ = 0;       // bytes of message highestSent_ already sent
    std::uint64_t resendLo_ = 0;      // messages [resendLo_, resendHi_) are candidates for resending
    std::uint64_t resendHi_ = 0;
    std::uint32_t resendFrag_ = 0;
    std::uint64_t resendGuardNs_ = 0; // ...if not sent within this long
    std::uint64_t lastGoBackNs_ = 0;
    std::uint64_t lastNowNs_ = 0;      // time of the last doWork(): offer() stamps messages with it
    bool unstamped_ = false;           // messages wait for a time: recovered, or offered before any doWork()
    bool claimOpen_ = false;           // claim() reserved [claimPos_, claimPos_ + claimMax_) of the ring
    std::uint64_t claimPos_ = 0;
    std::size_t claimMax_ = 0;
    std::uint64_t srtt_ = 0;
    transport::Endpoint target_;       // cfg_.sequencer or one of cfg_.alternates
    std::size_t targetIndex_ = 0;      // 0: cfg_.sequencer, i: cfg_.alternates[i-1]
    std::uint32_t silentTimeouts_ = 0; // retransmission timeouts in a row with no confirmation
    std::uint64_t failovers_ = 0;
    std::uint64_t rttvar_ = 0;
    std::uint64_t rto_ = 0;
    std::uint64_t recovered_ = 0;
    std::string fatal_;
    std::vector<std::byte> txArena_;
    std::vector<transport::TxItem> tx_;
    std::vector<transport::RxSlot> rx_;
};

}  // namespace seqcast::client
