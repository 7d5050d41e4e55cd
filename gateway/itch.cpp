#include "gateway/itch.h"

#include <algorithm>

namespace seqcast::gateway::itch {

namespace {

class Writer {
public:
    explicit Writer(std::size_t n) { out_.reserve(n); }
    Writer& be(std::uint64_t v, std::size_t n) {
        for (std::size_t i = 0; i < n; ++i) out_.push_back(static_cast<std::byte>(v >> (8 * (n - 1 - i))));
        return *this;
    }
    Writer& ch(char c) {
        out_.push_back(static_cast<std::byte>(c));
        return *this;
    }
    Writer& alpha(const std::string& s, std::size_t n) {  // left-justified, space-padded
        for (std::size_t i = 0; i < n; ++i) out_.push_back(static_cast<std::byte>(i < s.size() ? s[i] : ' '));
        return *this;
    }
    Writer& header(char type, std::uint16_t locate, std::uint16_t tracking, std::uint64_t ts) {
        return ch(type).be(locate, 2).be(tracking, 2).be(ts & 0xFFFFFFFFFFFFull, 6);
    }
    std::vector<std::byte> take() { return std::move(out_); }

private:
    std::vector<std::byte> out_;
};

std::uint64_t getBe(const std::vector<std::byte>& m, std::size_t at, std::size_t n) {
    std::uint64_t v = 0;
    for (std::size_t i = 0; i < n; ++i) v = (v << 8) | static_cast<std::uint64_t>(m[at + i]);
    return v;
}

}  // namespace

std::size_t lengthOf(char type) noexcept {
    switch (type) {
        case 'A': return kAddOrderLength;
        case 'E': return kOrderExecutedLength;
        case 'X': return kOrderCancelLength;
        case 'P': return kTradeLength;
        default: return 0;
    }
}

bool decodeHeader(const std::vector<std::byte>& m, Header& h) noexcept {
    if (m.size() < 11) return false;
    h.type = static_cast<char>(m[0]);
    h.stockLocate = static_cast<std::uint16_t>(getBe(m, 1, 2));
    h.trackingNumber = static_cast<std::uint16_t>(getBe(m, 3, 2));
    h.timestampNs = getBe(m, 5, 6);
    return true;
}

Generator::Generator(std::uint64_t seed, std::vector<std::string> stocks) : rng_(seed), stocks_(std::move(stocks)) {
    if (stocks_.empty()) stocks_.push_back("TEST");
    for (std::size_t i = 0; i < stocks_.size(); ++i) mid_.push_back(static_cast<std::uint32_t>(50'0000 + rng_.below(400'0000)));
}

std::vector<std::byte> Generator::next(std::uint64_t ts) {
    ++tracking_;
    const std::uint64_t r = rng_.below(100);
    if (refs_.empty() || r < 50) return addOrder(ts);
    if (r < 70) return executedOrCancel(ts, true);
    if (r < 90) return executedOrCancel(ts, false);
    return trade(ts);
}

std::vector<std::byte> Generator::addOrder(std::uint64_t ts) {
    const std::size_t s = rng_.below(stocks_.size());
    // The mid wanders by a cent or so; orders rest within 20 cents of it, in round lots mostly.
    mid_[s] = static_cast<std::uint32_t>(std::max<std::int64_t>(1'0000, static_cast<std::int64_t>(mid_[s]) + static_cast<std::int64_t>(rng_.below(201)) - 100));
    const char side = rng_.below(2) ? 'B' : 'S';
    const std::uint32_t offset = static_cast<std::uint32_t>(rng_.below(2001));
    const std::uint32_t price = side == 'B' ? mid_[s] - std::min(offset, mid_[s] - 100) : mid_[s] + offset;
    const std::uint32_t shares = rng_.below(10) < 8 ? static_cast<std::uint32_t>(100 * (1 + rng_.below(10)))
                                                     : static_cast<std::uint32_t>(1 + rng_.below(999));
    const std::uint64_t ref = nextRef_++;
    const auto locate = static_cast<std::uint16_t>(s + 1);
    orders_.emplace(ref, Order{locate, side, shares, price});
    refs_.push_back(ref);
    return Writer(kAddOrderLength)
        .header('A', locate, tracking_, ts)
        .be(ref, 8)
        .ch(side)
        .be(shares, 4)
        .alpha(stocks_[s], 8)
        .be(price, 4)
        .take();
}

std::vector<std::byte> Generator::executedOrCancel(std::uint64_t ts, bool executed) {
    const std::size_t k = rng_.below(refs_.size());
    const std::uint64_t ref = refs_[k];
    Order& o = orders_.at(ref);
    const std::uint32_t n = rng_.below(3) == 0 ? o.shares : static_cast<std::uint32_t>(1 + rng_.below(o.shares));
    const std::uint16_t locate = o.locate;
    o.shares -= n;
    if (o.shares == 0) {
        orders_.erase(ref);
        refs_[k] = refs_.back();
        refs_.pop_back();
    }
    Writer w(executed ? kOrderExecutedLength : kOrderCancelLength);
    w.header(executed ? 'E' : 'X', locate, tracking_, ts).be(ref, 8).be(n, 4);
    if (executed) w.be(nextMatch_++, 8);
    return w.take();
}

std::vector<std::byte> Generator::trade(std::uint64_t ts) {
    // A non-displayed order that traded: it never was in the book, so it refers to no open order.
    const std::size_t s = rng_.below(stocks_.size());
    const std::uint64_t ref = nextRef_++;
    return Writer(kTradeLength)
        .header('P', static_cast<std::uint16_t>(s + 1), tracking_, ts)
        .be(ref, 8)
        .ch(rng_.below(2) ? 'B' : 'S')
        .be(static_cast<std::uint32_t>(100 * (1 + rng_.below(5))), 4)
        .alpha(stocks_[s], 8)
        .be(mid_[s], 4)
        .be(nextMatch_++, 8)
        .take();
}

}  // namespace seqcast::gateway::itch
