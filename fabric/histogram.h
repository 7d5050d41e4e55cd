// Log-linear latency histogram (HDR style): values up to 2^subBits are exact, above that each
// power-of-two range is split into 2^subBits buckets, so relative error <= 2^-subBits.
#pragma once

#include <algorithm>
#include <bit>
#include <cstdint>
#include <vector>

namespace seqcast {

class Histogram {
public:
    explicit Histogram(unsigned subBits = 7) : sub_(subBits), counts_((64 - subBits + 1) << subBits, 0) {}

    void record(std::uint64_t v, std::uint64_t n = 1) noexcept {
        counts_[index(v)] += n;
        total_ += n;
        if (v > max_) max_ = v;
        if (v < min_) min_ = v;
    }
    std::uint64_t count() const noexcept { return total_; }
    std::uint64_t max() const noexcept { return total_ ? max_ : 0; }
    std::uint64_t min() const noexcept { return total_ ? min_ : 0; }
    // Upper bound of the bucket holding quantile q in [0, 1] (never below the true value).
    std::uint64_t quantile(double q) const noexcept {
        if (total_ == 0) return 0;
        if (!(q >= 0.0)) q = 0.0;  // also NaN
        if (q >= 1.0) return max_;
        auto rank = static_cast<std::uint64_t>(q * static_cast<double>(total_));
        if (rank >= total_) rank = total_ - 1;
        std::uint64_t seen = 0;
        for (std::size_t i = 0; i < counts_.size(); ++i) {
            seen += counts_[i];
            if (seen > rank) {
                const std::uint64_t hi = upper(i);
                return hi > max_ ? max_ : hi;
            }
        }
        return max_;
    }
    // Both histograms must have the same precision; a mismatch merges nothing and returns false.
    bool merge(const Histogram& o) {
        if (o.sub_ != sub_) return false;
        for (std::size_t i = 0; i < counts_.size() && i < o.counts_.size(); ++i) counts_[i] += o.counts_[i];
        total_ += o.total_;
        if (o.total_) {
            if (o.max_ > max_) max_ = o.max_;
            if (o.min_ < min_) min_ = o.min_;
        }
        return true;
    }
    void reset() {
        std::fill(counts_.begin(), counts_.end(), 0);
        total_ = 0;
        max_ = 0;
        min_ = ~std::uint64_t{0};
    }
    unsigned subBits() const noexcept { return sub_; }

private:
    std::size_t index(std::uint64_t v) const noexcept {
        const std::uint64_t subCount = std::uint64_t{1} << sub_;
        if (v < subCount) return static_cast<std::size_t>(v);
        const unsigned msb = 63 - static_cast<unsigned>(std::countl_zero(v));
        const unsigned shift = msb - sub_;
        const std::uint64_t bucket = (v >> shift) - subCount;  // in [0, subCount)
        return static_cast<std::size_t>((std::uint64_t{shift + 1} << sub_) + bucket);
    }
    std::uint64_t upper(std::size_t i) const noexcept {
        const std::uint64_t subCount = std::uint64_t{1} << sub_;
        if (i < subCount) return i;
        const std::uint64_t shift = (i >> sub_) - 1;
        const std::uint64_t bucket = i & (subCount - 1);
        return (((subCount + bucket + 1) << shift)) - 1;
    }

    unsigned sub_;
    std::vector<std::uint64_t> counts_;
    std::uint64_t total_ = 0;
    std::uint64_t max_ = 0;
    std::uint64_t min_ = ~std::uint64_t{0};
};

}  // namespace seqcast
