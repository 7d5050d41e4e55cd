// Strong types for the identifiers that travel on the wire.
#pragma once

#include <compare>
#include <cstdint>
#include <functional>

namespace seqcast {

template <class Tag, class Rep>
struct Strong {
    using rep = Rep;
    Rep value{};

    constexpr Strong() = default;
    constexpr explicit Strong(Rep v) noexcept : value(v) {}
    constexpr Rep get() const noexcept { return value; }
    friend constexpr auto operator<=>(const Strong&, const Strong&) = default;
};

struct OffsetTag {};
struct StreamIdTag {};
struct EpochTag {};
struct PublisherIdTag {};
struct PubSeqTag {};

// Position of an entry (one message or one fragment of a large message) in a stream.
struct Offset : Strong<OffsetTag, std::uint64_t> {
    using Strong::Strong;
    constexpr Offset next(std::uint64_t n = 1) const noexcept { return Offset{value + n}; }
};
using StreamId = Strong<StreamIdTag, std::uint32_t>;
using Epoch = Strong<EpochTag, std::uint32_t>;
using PublisherId = Strong<PublisherIdTag, std::uint32_t>;
// Per-publisher message number; all fragments of one message share it.
using PubSeq = Strong<PubSeqTag, std::uint64_t>;

}  // namespace seqcast

template <class Tag, class Rep>
struct std::hash<seqcast::Strong<Tag, Rep>> {
    std::size_t operator()(const seqcast::Strong<Tag, Rep>& s) const noexcept { return std::hash<Rep>{}(s.value); }
};
