#include "transport/fault_transport.h"

namespace seqcast::transport {

Status FaultConfig::validate() const {
    for (double p : {loss, burstStart, reorder, duplicate, corrupt})
        if (!(p >= 0.0 && p <= 1.0)) return failInvalid("fault probabilities must be in [0, 1]");
    if (burstLength == 0 || burstLength > 1'000'000) return failInvalid("fault burst length must be 1..1000000");
    return {};
}

FaultTransport::FaultTransport(std::unique_ptr<Transport> inner, const FaultConfig& cfg)
    : inner_(std::move(inner)), cfg_(cfg), rng_(cfg.seed) {}

FaultTransport::Fate FaultTransport::roll(const std::byte* data, std::uint32_t len) noexcept {
    if (cfg_.dropTypes != 0 && len > 8) {
        const auto t = static_cast<unsigned>(data[8]);
        if (t < 32 && (cfg_.dropTypes >> t & 1u) != 0) {
            ++faults_.typeDropped;
            return Fate::Drop;
        }
    }
    if (burstLeft_ > 0) {
        --burstLeft_;
        ++faults_.burstDropped;
        return Fate::Drop;
    }
    if (cfg_.burstStart > 0 && rng_.unit() < cfg_.burstStart) {
        burstLeft_ = cfg_.burstLength - 1;
        ++faults_.burstDropped;
        return Fate::Drop;
    }
    if (cfg_.loss > 0 && rng_.unit() < cfg_.loss) {
        ++faults_.dropped;
        return Fate::Drop;
    }
    if (cfg_.corrupt > 0 && rng_.unit() < cfg_.corrupt) {
        ++faults_.corrupted;
        return Fate::Corrupt;
    }
    if (cfg_.duplicate > 0 && rng_.unit() < cfg_.duplicate) {
        ++faults_.duplicated;
        return Fate::Duplicate;
    }
    if (cfg_.reorder > 0 && rng_.unit() < cfg_.reorder) {
        ++faults_.reordered;
        return Fate::Hold;
    }
    return Fate::Pass;
}

void FaultTransport::corruptBytes(std::vector<std::byte>& b) noexcept {
    if (b.empty()) return;
    const auto at = rng_.below(b.size());
    const auto bit = static_cast<unsigned>(rng_.below(8));
    b[at] ^= static_cast<std::byte>(1u << bit);
}

std::size_t FaultTransport::recvBurst(std::span<RxSlot> out) noexcept {
    if (!cfg_.onReceive) return inner_->recvBurst(out);
    rxOwned_.clear();
    if (rxTmp_.size() < out.size()) rxTmp_.resize(out.size());
    std::size_t k = 0;
    // Reserve so pointers into rxOwned_ stay valid while we fill it.
    rxOwned_.reserve(out.size() * 2 + rxHeld_.size());
    // A copy that does not fit in `out` (a duplicate made the burst overflow) waits in rxSpill_ and
    // goes first next time: received datagrams are never dropped without a fault being counted.
    auto emitCopy = [&](Copy&& c) {
        if (k >= out.size()) {
            rxSpill_.push_back(std::move(c));
            return;
        }
        rxOwned_.push_back(std::move(c));
        auto& b = rxOwned_.back();
        out[k++] = RxSlot{b.bytes.data(), static_cast<std::uint32_t>(b.bytes.size()), b.peer};
    };
    while (!rxSpill_.empty() && k < out.size()) {
        emitCopy(std::move(rxSpill_.front()));
        rxSpill_.pop_front();
    }
    const std::size_t n = k < out.size() ? inner_->recvBurst(std::span<RxSlot>(rxTmp_.data(), out.size() - k)) : 0;
    for (std::size_t i = 0; i < n; ++i) {
        const RxSlot& s = rxTmp_[i];
        switch (roll(s.data, s.len)) {
            case Fate::Pass:
                if (k < out.size()) out[k++] = s;
                else emitCopy(Copy{std::vector<std::byte>(s.data, s.data + s.len), s.from});
                break;
            case Fate::Drop: break;
            case Fate::Corrupt: {
                Copy c{std::vector<std::byte>(s.data, s.data + s.len), s.from};
                corruptBytes(c.bytes);
                emitCopy(std::move(c));
                break;
            }
            case Fate::Duplicate:
                if (k < out.size()) out[k++] = s;
                else emitCopy(Copy{std::vector<std::byte>(s.data, s.data + s.len), s.from});
                emitCopy(Copy{std::vector<std::byte>(s.data, s.data + s.len), s.from});
                break;
            case Fate::Hold: rxHeld_.push_back(Copy{std::vector<std::byte>(s.data, s.data + s.len), s.from}); break;
        }
    }
    // Held datagrams come out after the ones that overtook them (or when the line is idle).
    // One per burst while traffic flows, all of them once the line is idle.
    while (!rxHeld_.empty() && k < out.size()) {
        emitCopy(std::move(rxHeld_.front()));
        rxHeld_.pop_front();
        if (n > 0) break;
    }
    return k;
}

std::size_t FaultTransport::sendBurst(std::span<const TxItem> items) noexcept {
    if (!cfg_.onSend) return inner_->sendBurst(items);
    txOut_.clear();
    txOwned_.clear();
    txOwned_.reserve(items.size() * 2 + txHeld_.size());
    for (const auto& it : items) {
        switch (roll(it.data, it.len)) {
            case Fate::Pass: txOut_.push_back(it); break;
            case Fate::Drop: break;
            case Fate::Corrupt: {
                txOwned_.push_back(Copy{std::vector<std::byte>(it.data, it.data + it.len), it.to});
                corruptBytes(txOwned_.back().bytes);
                txOut_.push_back(TxItem{txOwned_.back().bytes.data(), it.len, it.to});
                break;
            }
            case Fate::Duplicate:
                txOut_.push_back(it);
                txOut_.push_back(it);
                break;
            case Fate::Hold: txHeld_.push_back(Copy{std::vector<std::byte>(it.data, it.data + it.len), it.to}); break;
        }
    }
    // Send previously held datagrams after this burst's: they were overtaken.
    while (!txHeld_.empty() && txOwned_.size() < txOwned_.capacity()) {
        txOwned_.push_back(std::move(txHeld_.front()));
        txHeld_.pop_front();
        auto& c = txOwned_.back();
        txOut_.push_back(TxItem{c.bytes.data(), static_cast<std::uint32_t>(c.bytes.size()), c.peer});
        if (!items.empty()) break;
    }
    // Faults on send are best-effort: what the inner transport refuses is dropped like a loss.
    inner_->sendBurst(txOut_);
    return items.size();
}

}  // namespace seqcast::transport
