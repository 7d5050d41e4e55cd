#include "client/publisher.h"

#include <sys/random.h>

#include <algorithm>
#include <atomic>
#include <cstring>

#include "fabric/clock.h"
#include "fabric/crc32c.h"
#include "fabric/intake.h"

namespace seqcast::client {

namespace {
constexpr std::uint64_t kJournalMagic = 0x314C4E524A425550ull;  // "PUBJRNL1"
constexpr std::uint32_t kJournalVersion = 2;  // 2: each slot keeps its message's CRC32C
std::size_t roundPage(std::size_t v) { return (v + 4095) & ~std::size_t{4095}; }
}  // namespace

struct Publisher::Journal {
    std::uint64_t magic;
    std::uint32_t version;
    std::uint32_t id;
    std::uint32_t stream;
    std::uint32_t window;
    std::uint64_t ringBytes;
    std::uint64_t nextPubSeq;  // next pub_seq offer() assigns
    std::uint64_t base;        // oldest unconfirmed pub_seq
    std::uint64_t headPos;     // ring write position (monotonic byte count)
    std::uint64_t tailPos;     // ring position of `base`
};

struct Publisher::Slot {
    std::uint64_t pubSeq;
    std::uint64_t pos;
    std::uint32_t len;
    std::uint32_t confirmed;
    std::uint64_t publishTsNs;
    std::uint64_t offset;
    std::uint64_t lastSentNs;
    std::uint64_t offerNs;
    std::uint32_t sends;
    std::uint32_t crc;  // crc32c() of the message as offer() was given it: entries are signed from it
};

Status PublisherConfig::validate() const {
    if (!sequencer.valid()) return failInvalid("the publisher needs the sequencer's address");
    for (const auto& a : alternates)
        if (!a.valid()) return failInvalid("an alternate sequencer address is not valid");
    if (mtu < wire::kMinMtu || mtu > wire::kMaxDatagram)
        return failInvalid("mtu must be " + std::to_string(wire::kMinMtu) + ".." + std::to_string(wire::kMaxDatagram));
    if (window == 0 || window > 4096 || (window & (window - 1)) != 0)
        return failInvalid("window must be a power of two in 1..4096 messages");
    if (maxMessage == 0 || maxMessage > (1u << 30)) return failInvalid("max message must be 1..1073741824 bytes");
    if (windowBytes < maxMessage) return failInvalid("window bytes must be at least the max message size");
    if (minRtoNs == 0 || maxRtoNs < minRtoNs) return failInvalid("retransmit timeout: 0 < min <= max");
    if (burst == 0 || burst > 1024) return failInvalid("burst must be 1..1024");
    return {};
}

Result<std::unique_ptr<Publisher>> Publisher::create(const PublisherConfig& cfg, transport::Transport& t,
                                                     Counters& counters, ConfirmHandler onConfirm) {
    if (auto st = cfg.validate(); !st) return fail(st.error());
    std::unique_ptr<Publisher> p(new Publisher(cfg, t, counters, std::move(onConfirm)));
    if (auto st = p->openJournal(); !st) return fail(st.error());
    return p;
}

Publisher::Publisher(const PublisherConfig& cfg, transport::Transport& t, Counters& c, ConfirmHandler h)
    : cfg_(cfg), t_(t), c_(c), onConfirm_(std::move(h)), txArena_(cfg.burst * cfg.mtu), rx_(cfg.burst) {
    tx_.reserve(cfg.burst);
    rto_ = cfg.initialRtoNs;
    target_ = cfg.sequencer;
}

Publisher::~Publisher() = default;

Status Publisher::openJournal() {
    const std::size_t slotsOff = roundPage(sizeof(Journal));
    const std::size_t ringOff = roundPage(slotsOff + std::size_t{cfg_.window} * sizeof(Slot));
    mapSize_ = ringOff + roundPage(cfg_.windowBytes);
    auto file = cfg_.journalPath.empty() ? MappedFile::anonymous(mapSize_, "publisher window")
                                         : MappedFile::open(cfg_.journalPath, "journal");
    if (!file) return fail(file.error());
    const bool fresh = !file->isFile() || file->fresh();
    if (file->isFile()) {
        anonymous_ = false;
        if (!fresh && file->fileSize() != mapSize_)
            return failInvalid("journal " + cfg_.journalPath + " was made with another window size");
        if (auto st = file->map(mapSize_); !st) return fail(st.error());
    }
    file_.emplace(std::move(*file));
    map_ = file_->data();
    j_ = reinterpret_cast<Journal*>(map_);
    slots_ = reinterpret_cast<Slot*>(map_ + slotsOff);
    ring_ = map_ + ringOff;
    if (!fresh) {
        if (j_->magic != kJournalMagic || j_->version != kJournalVersion)
            return failInvalid("journal " + cfg_.journalPath + " is not a seqcast publisher journal of version " +
                               std::to_string(kJournalVersion) + (j_->magic == kJournalMagic && j_->version < kJournalVersion
                                                                      ? " (an older seqcast made it: confirm or discard its messages with that version)"
                                                                      : ""));
        if (j_->stream != cfg_.stream.get())
            return failInvalid("journal " + cfg_.journalPath + " belongs to stream " + std::to_string(j_->stream));
        if (j_->window != cfg_.window || j_->ringBytes != roundPage(cfg_.windowBytes))
            return failInvalid("journal " + cfg_.journalPath + " was made with another window size");
        if (cfg_.id.get() != 0 && cfg_.id.get() != j_->id)
            return failInvalid("journal " + cfg_.journalPath + " belongs to publisher " + std::to_string(j_->id) +
                               ", not " + std::to_string(cfg_.id.get()));
        if (j_->base > j_->nextPubSeq || j_->nextPubSeq - j_->base > cfg_.window || j_->headPos < j_->tailPos)
            return failInvalid("journal " + cfg_.journalPath + " is damaged (window positions inconsistent)");
        // Everything not confirmed before the restart is sent again; the sequencer drops what it has.
        for (std::uint64_t s = j_->base; s < j_->nextPubSeq; ++s) {
            Slot& sl = slot(s);
            if (sl.pubSeq != s || sl.len > cfg_.maxMessage || sl.pos < j_->tailPos ||
                sl.pos + sl.len > j_->headPos || (sl.pos % j_->ringBytes) + sl.len > j_->ringBytes)
                return failInvalid("journal " + cfg_.journalPath + " is damaged at pub_seq " + std::to_string(s));
            // A message whose bytes changed in the journal is never sent signed as if intact.
            if (crc32c(payload(sl)) != sl.crc)
                return failInvalid("journal " + cfg_.journalPath + " is damaged at pub_seq " + std::to_string(s) +
                                   " (its message fails its CRC32C)");
            sl.confirmed = 0;
            sl.sends = 0;
            sl.lastSentNs = 0;
            sl.offerNs = 0;
        }
        recovered_ = j_->nextPubSeq - j_->base;
        unstamped_ = recovered_ > 0;  // their offer time was on another boot's clock, perhaps
    } else {
        std::uint32_t id = cfg_.id.get();
        while (id == 0) {
            if (::getrandom(&id, sizeof id, 0) != static_cast<ssize_t>(sizeof id)) id = static_cast<std::uint32_t>(monoNs());
        }
        *j_ = Journal{kJournalMagic, kJournalVersion, id, cfg_.stream.get(), cfg_.window,
                      roundPage(cfg_.windowBytes), 1, 1, 0, 0};
    }
    // Recovered messages count as sent long ago: the first doWork() resends them.
    highestSent_ = j_->nextPubSeq;
    if (recovered_ > 0) requestResend(j_->base, j_->nextPubSeq, 0);
    return {};
}

PublisherId Publisher::id() const noexcept { return PublisherId{j_->id}; }
PubSeq Publisher::nextPubSeq() const noexcept { return PubSeq{j_->nextPubSeq}; }
std::uint64_t Publisher::unconfirmed() const noexcept { return j_->nextPubSeq - j_->base; }
Publisher::Slot& Publisher::slot(std::uint64_t s) noexcept { return slots_[s & (cfg_.window - 1)]; }

std::span<const std::byte> Publisher::payload(const Slot& s) const noexcept {
    return std::span<const std::byte>(ring_ + (s.pos % j_->ringBytes), s.len);
}

Publisher::Offer Publisher::reserve(std::size_t n, std::uint64_t& pos) {
    if (n > cfg_.maxMessage) return Offer::TooLarge;
    if (j_->nextPubSeq - j_->base >= cfg_.window) {
        c_.add(Counter::BackPressure);
        return Offer::BackPressured;
    }
    const std::uint64_t cap = j_->ringBytes;
    pos = j_->headPos;
    if ((pos % cap) + n > cap) pos += cap - (pos % cap);  // messages are contiguous: skip to the start
    if (pos + n - j_->tailPos > cap) {
        c_.add(Counter::BackPressure);
        return Offer::BackPressured;
    }
    return Offer::Accepted;
}

// The message's bytes are at `pos` in the ring: give it the next pub_seq and make it visible to
// doWork() (and to a restart, through the journal).
void Publisher::publish(std::uint64_t pos, std::size_t n, std::uint64_t publishTsNs) {
    const std::uint64_t cap = j_->ringBytes;
    // The CRC is taken over the caller's bytes: from here to every subscriber they are checked.
    const std::uint32_t crc = crc32c(std::span<const std::byte>(ring_ + (pos % cap), n));
    const std::uint64_t s = j_->nextPubSeq;
    slot(s) = Slot{s, pos, static_cast<std::uint32_t>(n), 0, publishTsNs, wire::kOffsetOpen, 0, lastNowNs_, 0, crc};
    if (j_->base == s) j_->tailPos = pos;
    if (lastNowNs_ == 0) unstamped_ = true;  // no time yet: the first doWork() stamps it
    // The message and its slot are in place before the counters that publish them move.
    std::atomic_signal_fence(std::memory_order_seq_cst);
    j_->headPos = pos + n;
    j_->nextPubSeq = s + 1;
}

Publisher::Offer Publisher::offer(std::span<const std::byte> msg, std::uint64_t publishTsNs) {
    if (claimOpen_) return Offer::ClaimOpen;
    std::uint64_t pos = 0;
    if (const Offer r = reserve(msg.size(), pos); r != Offer::Accepted) return r;
    if (!msg.empty()) std::memcpy(ring_ + (pos % j_->ringBytes), msg.data(), msg.size());
    publish(pos, msg.size(), publishTsNs);
    return Offer::Accepted;
}

Publisher::Offer Publisher::claim(std::size_t maxBytes, std::span<std::byte>& buffer) {
    if (claimOpen_) return Offer::ClaimOpen;
    std::uint64_t pos = 0;
    if (const Offer r = reserve(maxBytes, pos); r != Offer::Accepted) return r;
    // The room stays free while the claim is open: nothing else reserves (offer and claim are
    // refused), and confirmations only move the tail forward, never past the head.
    claimOpen_ = true;
    claimPos_ = pos;
    claimMax_ = maxBytes;
    buffer = std::span<std::byte>(ring_ + (pos % j_->ringBytes), maxBytes);
    return Offer::Accepted;
}

void Publisher::commitClaim(std::size_t n, std::uint64_t publishTsNs) {
    if (!claimOpen_) return;
    claimOpen_ = false;
    publish(claimPos_, std::min(n, claimMax_), publishTsNs);
}

void Publisher::onAck(const wire::DatagramView& v, std::uint64_t nowNs) {
    if (wire::pubAckPublisher(v).get() != j_->id) {
        c_.add(Counter::DropBadBody);
        return;
    }
    c_.add(Counter::PubAcksReceived);
    std::uint64_t fresh = 0;
    for (std::uint32_t i = 0; i < v.count; ++i) {
        const auto r = wire::pubAckRun(v, i);
        for (std::uint32_t k = 0; k < r.count; ++k) {
            const std::uint64_t s = r.firstPubSeq.get() + k;
            if (s < j_->base || s >= j_->nextPubSeq) continue;
            Slot& sl = slot(s);
            if (sl.pubSeq != s || sl.confirmed != 0) continue;
            sl.confirmed = 1;
            ++fresh;
            sl.offset = r.firstOffset.get() == wire::kOffsetOpen ? wire::kOffsetOpen
                                                                 : r.firstOffset.get() + std::uint64_t{k} * r.stride;
            // Karn: only messages sent once; and only the oldest outstanding one, whose confirmation
            // was not held back behind a gap at the sequencer.
            if (s == j_->base && sl.sends == 1 && sl.lastSentNs != 0 && nowNs > sl.lastSentNs) {
                // RFC 6298: srtt and rttvar; the timeout is srtt + 4 rttvar.
                const std::uint64_t sample = nowNs - sl.lastSentNs;
                if (srtt_ == 0) {
                    srtt_ = sample;
                    rttvar_ = sample / 2;
                } else {
                    const std::uint64_t dev = sample > srtt_ ? sample - srtt_ : srtt_ - sample;
                    rttvar_ = (3 * rttvar_ + dev) / 4;
                    srtt_ = (7 * srtt_ + sample) / 8;
                }
                rto_ = std::clamp<std::uint64_t>(srtt_ + 4 * rttvar_, cfg_.minRtoNs, cfg_.maxRtoNs);
                c_.set(Counter::RttNs, srtt_);
            }
        }
    }
    // Progress: the timeout's backoff ends.
    if (fresh > 0) silentTimeouts_ = 0;
    if (fresh > 0)
        rto_ = std::clamp<std::uint64_t>(srtt_ == 0 ? cfg_.initialRtoNs : srtt_ + 4 * rttvar_, cfg_.minRtoNs, cfg_.maxRtoNs);
}

void Publisher::onNak(const wire::DatagramView& v, transport::Endpoint from, std::uint64_t nowNs) {
    const auto n = wire::pubNak(v);
    if (n.publisher.get() != j_->id) {
        c_.add(Counter::DropBadBody);
        return;
    }
    c_.add(Counter::PubNaksReceived);
    switch (n.reason) {
        case wire::PubNakReason::Gap: {
            // The sequencer lacks [expected, heldFrom): resend what was not sent within a round trip.
            const std::uint64_t lo = std::max(n.expected.get(), j_->base);
            // heldFrom == expected: the sequencer holds later fragments of message `expected` itself.
            std::uint64_t hi = highestSent_;
            if (n.heldFrom.get() > lo) hi = std::min(n.heldFrom.get(), highestSent_);
            else if (n.heldFrom.get() == lo && lo != 0) hi = lo + 1;
            requestResend(lo, hi, std::max<std::uint64_t>(srtt_, cfg_.minRtoNs / 4));
            (void)nowNs;
            break;
        }
        case wire::PubNakReason::TooManyPublishers:
            fatal_ = "the sequencer's publisher table is full (raise its --max-publishers)";
            break;
        case wire::PubNakReason::TooLarge:
            fatal_ = "the sequencer refused a message entry as too large (publisher MTU above the sequencer's?)";
            break;
        case wire::PubNakReason::UnknownPublisher:
            break;
        case wire::PubNakReason::NotLeader:
            // Once per refusal of the sequencer in use (it refuses every PUB datagram of a burst).
            if (!cfg_.alternates.empty() && from == target_) failOver();
            break;
    }
}

void Publisher::failOver() {
    targetIndex_ = (targetIndex_ + 1) % (cfg_.alternates.size() + 1);
    target_ = targetIndex_ == 0 ? cfg_.sequencer : cfg_.alternates[targetIndex_ - 1];
    ++failovers_;
    silentTimeouts_ = 0;
    // A new sequencer: the round trip is unknown again, and everything unconfirmed goes to it.
    srtt_ = 0;
    rttvar_ = 0;
    rto_ = cfg_.initialRtoNs;
    resendLo_ = resendHi_ = 0;
    requestResend(j_->base, highestSent_, 0);
}

void Publisher::releaseConfirmed(std::uint64_t nowNs) {
    while (j_->base < j_->nextPubSeq) {
        Slot& sl = slot(j_->base);
        if (sl.confirmed == 0) break;
        const Confirmation conf{PubSeq{sl.pubSeq}, Offset{sl.offset}, nowNs > sl.offerNs ? nowNs - sl.offerNs : 0};
        const std::uint64_t nb = j_->base + 1;
        j_->tailPos = nb < j_->nextPubSeq ? slot(nb).pos : j_->headPos;
        std::atomic_signal_fence(std::memory_order_seq_cst);
        j_->base = nb;
        c_.add(Counter::MessagesConfirmed);
        if (onConfirm_) onConfirm_(conf);
    }
    if (resendLo_ < j_->base) {
        resendLo_ = j_->base;
        resendFrag_ = 0;
    }
}

void Publisher::requestResend(std::uint64_t lo, std::uint64_t hi, std::uint64_t guardNs) {
    hi = std::min(hi, highestSent_);
    if (lo >= hi) return;
    if (resendLo_ >= resendHi_) {
        resendLo_ = lo;
        resendHi_ = hi;
        resendFrag_ = 0;
        resendGuardNs_ = guardNs;
        return;
    }
    if (lo < resendLo_) {
        resendLo_ = lo;
        resendFrag_ = 0;
    }
    resendHi_ = std::max(resendHi_, hi);
    resendGuardNs_ = std::min(resendGuardNs_, guardNs);
}

std::size_t Publisher::fillSends(std::uint64_t nowNs) {
    tx_.clear();
    const std::size_t freshRoom = cfg_.mtu - wire::kHeaderSize - wire::kMessageHeaderSize;
    std::size_t d = 0;
    wire::DatagramWriter w(std::span<std::byte>(txArena_.data(), cfg_.mtu));
    bool open = false;
    auto close = [&] {
        if (open && !w.empty()) {
            const std::size_t len = w.finish(wallNs());
            tx_.push_back(transport::TxItem{txArena_.data() + d * cfg_.mtu, static_cast<std::uint32_t>(len), target_});
            ++d;
        }
        open = false;
    };
    auto openNew = [&] {
        w = wire::DatagramWriter(std::span<std::byte>(txArena_.data() + d * cfg_.mtu, cfg_.mtu));
        w.begin(wire::FrameType::Pub, cfg_.stream, Epoch{0}, Offset{j_->base});
        open = true;
    };
    // Appends the rest of message s from `frag`; returns true once its last piece is in.
    auto sendMessage = [&](Slot& sl, std::uint32_t& frag) -> bool {
        const auto pl = payload(sl);
        for (;;) {
            // Fragments always split at multiples of freshRoom, so a resent message yields the very
            // same entries and the sequencer's (pub_seq, fragment offset) dedup lines up.
            const std::size_t piece = std::min(pl.size() - frag, freshRoom);
            if (!open) {
                if (d >= cfg_.burst) return false;
                openNew();
            }
            if (!w.empty() && piece > w.room()) {
                close();
                continue;
            }
            const auto n = w.appendPiece(wire::MessageFields{PublisherId{j_->id}, PubSeq{sl.pubSeq}, sl.publishTsNs},
                                         pl, frag, freshRoom, sl.crc);
            if (!n) {
                close();
                continue;
            }
            frag += static_cast<std::uint32_t>(*n);
            if (frag == pl.size()) {
                frag = 0;
                sl.lastSentNs = nowNs;
                ++sl.sends;
                return true;
            }
        }
    };
    // Resends first: they unblock the sequencer.
    while (resendLo_ < resendHi_) {
        Slot& sl = slot(resendLo_);
        const bool due = resendLo_ >= j_->base && sl.confirmed == 0 &&
                         (resendFrag_ > 0 || sl.lastSentNs == 0 || nowNs - sl.lastSentNs >= resendGuardNs_);
        if (!due) {
            ++resendLo_;
            resendFrag_ = 0;
            continue;
        }
        if (!sendMessage(sl, resendFrag_)) break;
        c_.add(Counter::PubRetransmits);
        ++resendLo_;
    }
    while (highestSent_ < j_->nextPubSeq) {
        if (!sendMessage(slot(highestSent_), newFrag_)) break;
        ++highestSent_;
    }
    close();
    return d;
}

int Publisher::doWork(std::uint64_t nowNs) {
    if (unstamped_) {
        // Once: messages recovered from the journal or offered before the first doWork() have no
        // offer time on this clock; their confirmation latency counts from now.
        for (std::uint64_t s = j_->base; s < j_->nextPubSeq; ++s)
            if (slot(s).offerNs == 0) slot(s).offerNs = nowNs;
        unstamped_ = false;
    }
    lastNowNs_ = nowNs;
    int work = 0;
    const std::size_t n = t_.recvBurst(rx_);
    for (std::size_t i = 0; i < n; ++i) {
        wire::DatagramView v;
        if (!admitDatagram(std::span<const std::byte>(rx_[i].data, rx_[i].len), cfg_.stream, c_, v)) continue;
        if (v.type == wire::FrameType::PubAck) onAck(v, nowNs);
        else if (v.type == wire::FrameType::PubNak) onNak(v, rx_[i].from, nowNs);
        else c_.add(Counter::DropUnexpectedType);
    }
    work += static_cast<int>(n);
    if (n > 0) releaseConfirmed(nowNs);

    // The oldest message unconfirmed for a retransmission timeout: resend what is overdue, but at
    // most kTimeoutResend messages from the oldest (a tail lost in a burst is recovered in a few
    // rounds; resending a whole window would flood a sequencer that is merely slow). The timeout
    // backs off until a confirmation arrives.
    if (j_->base < highestSent_ && resendLo_ >= resendHi_) {
        const Slot& oldest = slot(j_->base);
        if (oldest.confirmed == 0 && nowNs - oldest.lastSentNs >= rto_ && nowNs - lastGoBackNs_ >= rto_) {
            constexpr std::uint64_t kTimeoutResend = 256;
            requestResend(j_->base, std::min(highestSent_, j_->base + kTimeoutResend), rto_);
            lastGoBackNs_ = nowNs;
            rto_ = std::min(rto_ * 2, cfg_.maxRtoNs);
            if (!cfg_.alternates.empty() && ++silentTimeouts_ >= kFailoverTimeouts) failOver();
        }
    }
    const std::size_t d = fillSends(nowNs);
    if (d > 0) {
        const std::size_t sent = t_.sendBurst(tx_);
        std::uint64_t bytes = 0;
        for (std::size_t i = 0; i < sent; ++i) bytes += tx_[i].len;
        c_.add(Counter::DatagramsOut, sent);
        c_.add(Counter::BytesOut, bytes);
        // What the kernel did not take is sent again by the retransmission timer.
        if (sent < d) c_.add(Counter::SendPartial, d - sent);
        work += static_cast<int>(d);
    }
    return work;
}

}  // namespace seqcast::client
