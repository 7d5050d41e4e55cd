#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

#include "fabric/histogram.h"

using namespace seqcast;

namespace {

constexpr double kQuantiles[] = {0.0, 0.001, 0.1, 0.25, 0.5, 0.75, 0.9, 0.99, 0.999, 0.9999, 1.0};

// The histogram reports the upper bound of the bucket holding the exact rank-th value, so it is never
// below the true value and above it by at most a factor 2^-subBits.
void checkQuantiles(const Histogram& h, std::vector<std::uint64_t> values) {
    std::sort(values.begin(), values.end());
    REQUIRE(h.count() == values.size());
    CHECK(h.min() == values.front());
    CHECK(h.max() == values.back());
    const double eps = std::ldexp(1.0, -static_cast<int>(h.subBits()));
    for (double q : kQuantiles) {
        CAPTURE(q);
        auto rank = static_cast<std::size_t>(q * static_cast<double>(values.size()));
        if (rank >= values.size()) rank = values.size() - 1;
        const std::uint64_t truth = values[rank];
        const std::uint64_t got = h.quantile(q);
        CAPTURE(truth);
        CAPTURE(got);
        CHECK(got >= truth);
        CHECK(static_cast<double>(got - truth) <= eps * static_cast<double>(truth));
        CHECK(got <= h.max());
    }
}

}  // namespace

TEST_CASE("empty histogram") {
    Histogram h;
    CHECK(h.count() == 0);
    CHECK(h.min() == 0);
    CHECK(h.max() == 0);
    CHECK(h.quantile(0.5) == 0);
    CHECK(h.quantile(1.0) == 0);
    CHECK(h.subBits() == 7);
}

TEST_CASE("small values are exact") {
    Histogram h(7);
    for (std::uint64_t v = 0; v < 128; ++v) h.record(v);
    CHECK(h.count() == 128);
    CHECK(h.min() == 0);
    CHECK(h.max() == 127);
    for (std::uint64_t v = 0; v < 128; ++v) CHECK(h.quantile(static_cast<double>(v) / 128.0) == v);
}

TEST_CASE("uniform 1..1e6 within 2^-subBits") {
    for (unsigned sub : {3u, 7u, 10u}) {
        CAPTURE(sub);
        Histogram h(sub);
        std::vector<std::uint64_t> values;
        values.reserve(1000000);
        for (std::uint64_t v = 1; v <= 1000000; ++v) {
            h.record(v);
            values.push_back(v);
        }
        CHECK(h.count() == 1000000);
        CHECK(h.min() == 1);
        CHECK(h.max() == 1000000);
        CHECK(h.quantile(1.0) == 1000000);
        checkQuantiles(h, values);
    }
}

TEST_CASE("exponential and log-normal distributions") {
    std::mt19937_64 rng(2024);
    std::exponential_distribution<double> expo(1.0 / 50000.0);
    std::lognormal_distribution<double> logn(9.0, 2.0);
    Histogram he(7), hl(7);
    std::vector<std::uint64_t> ve, vl;
    for (int i = 0; i < 300000; ++i) {
        const auto a = static_cast<std::uint64_t>(expo(rng));
        const auto b = static_cast<std::uint64_t>(std::min(logn(rng), 1e15));
        he.record(a);
        hl.record(b);
        ve.push_back(a);
        vl.push_back(b);
    }
    checkQuantiles(he, ve);
    checkQuantiles(hl, vl);
}

TEST_CASE("weighted record, extremes and reset") {
    Histogram h(7);
    h.record(1000, 99);
    h.record(5000000, 1);
    CHECK(h.count() == 100);
    CHECK(h.quantile(0.5) >= 1000);
    CHECK(h.quantile(0.5) <= 1000 + 1000 / 128);
    CHECK(h.quantile(0.99) >= 5000000);
    CHECK(h.quantile(1.0) == 5000000);

    h.record(~std::uint64_t{0});
    CHECK(h.max() == ~std::uint64_t{0});
    CHECK(h.quantile(1.0) == ~std::uint64_t{0});
    CHECK(h.quantile(0.9999) == ~std::uint64_t{0});

    h.reset();
    CHECK(h.count() == 0);
    CHECK(h.max() == 0);
    CHECK(h.min() == 0);
    h.record(7);
    CHECK(h.min() == 7);
    CHECK(h.max() == 7);
    CHECK(h.quantile(0.0) == 7);
}

TEST_CASE("merge equals recording everything in one") {
    std::mt19937_64 rng(1);
    std::exponential_distribution<double> expo(1.0 / 2000.0);
    Histogram a, b, all;
    std::vector<std::uint64_t> values;
    for (int i = 0; i < 100000; ++i) {
        const auto v = static_cast<std::uint64_t>(expo(rng)) + 10;
        (i % 3 == 0 ? a : b).record(v);
        all.record(v);
        values.push_back(v);
    }
    Histogram m;
    m.merge(a);
    m.merge(b);
    m.merge(Histogram{});  // merging an empty one changes nothing
    CHECK(m.count() == all.count());
    CHECK(m.min() == all.min());
    CHECK(m.max() == all.max());
    for (double q : kQuantiles) CHECK(m.quantile(q) == all.quantile(q));
    checkQuantiles(m, values);
}
