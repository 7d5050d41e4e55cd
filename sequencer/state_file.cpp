#include "sequencer/state_file.h"

#include "sequencer/retransmit_ring.h"

namespace seqcast::sequencer {

namespace {
constexpr std::uint64_t kStateMagic = 0x3154535145534553ull;  // "SESQEST1"
constexpr std::uint32_t kStateVersion = 1;
std::size_t roundPage(std::size_t v) { return (v + 4095) & ~std::size_t{4095}; }
}  // namespace

std::size_t StateLayout::publishersOffset() const noexcept { return roundPage(sizeof(StateHeader)); }
std::size_t StateLayout::ringOffset() const noexcept {
    return roundPage(publishersOffset() + std::size_t{maxPublishers} * sizeof(PublisherRecord));
}
std::size_t StateLayout::ringRegion() const noexcept { return sequencer::RetransmitRing::regionSize(ringBytes, maxDatagram); }
std::size_t StateLayout::total() const noexcept { return roundPage(ringOffset() + ringRegion()); }

Result<StateFile> StateFile::open(const std::string& path, StreamId stream, const StateLayout& layout) {
    const std::size_t size = layout.total();
    auto file = path.empty() ? MappedFile::anonymous(size, "sequencer state") : MappedFile::open(path, "state file");
    if (!file) return fail(file.error());
    const bool fresh = !file->isFile() || file->fresh();
    if (!fresh && file->fileSize() != size)
        return failInvalid("state file " + path + " has " + std::to_string(file->fileSize()) + " bytes, this configuration needs " +
                           std::to_string(size) + " (ring size, MTU or max publishers changed? move the file away to start a new stream)");
    if (file->isFile()) {
        if (auto st = file->map(size); !st) return fail(st.error());
    }
    StateFile s(std::move(*file));
    s.path_ = path;
    std::byte* const map = s.file_.data();
    s.header_ = reinterpret_cast<StateHeader*>(map);
    s.pubs_ = reinterpret_cast<PublisherRecord*>(map + layout.publishersOffset());
    s.ring_ = std::span<std::byte>(map + layout.ringOffset(), layout.ringRegion());
    StateHeader& h = *s.header_;
    if (!fresh) {
        if (h.magic != kStateMagic || h.version != kStateVersion)
            return failInvalid("state file " + path + " is not a seqcast v1 sequencer state");
        if (h.streamId != stream.get())
            return failInvalid("state file " + path + " belongs to stream " + std::to_string(h.streamId) + ", not " +
                               std::to_string(stream.get()));
        if (h.maxPublishers != layout.maxPublishers || h.ringBytes != layout.ringBytes || h.maxDatagram != layout.maxDatagram)
            return failInvalid("state file " + path + " was made with another ring size, MTU or publisher limit");
        s.recovered_ = true;
    } else {
        h = StateHeader{kStateMagic, kStateVersion, stream.get(), 0, layout.maxPublishers, layout.ringBytes,
                        layout.maxDatagram, 0, 0, 0, 0};
    }
    return s;
}

StateFile::StateFile(StateFile&& o) noexcept
    : path_(std::move(o.path_)), file_(std::move(o.file_)), recovered_(o.recovered_), header_(o.header_), pubs_(o.pubs_),
      ring_(o.ring_) {}

Status StateFile::sync() noexcept { return file_.sync(); }

}  // namespace seqcast::sequencer
