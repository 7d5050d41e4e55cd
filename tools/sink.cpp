#include "tools/sink.h"

#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "fabric/clock.h"

namespace seqcast::tools {

void DeliverySink::onMessage(const Message& dl) {
    const std::uint64_t now = wallNs();
    if (delivered == 0) firstOffset = dl.offset;
    else if (dl.offset <= lastOffset) ++orderViolations;
    auto [it, fresh] = lastPubSeq.try_emplace(dl.publisher, dl.pubSeq);
    if (!fresh) {
        if (dl.pubSeq <= it->second) ++fifoViolations;
        it->second = dl.pubSeq;
    }
    lastOffset = dl.offset;
    ++delivered;
    bytes += dl.payload.size();
    if (dl.repaired) ++repaired;
    minPublishTsNs = std::min(minPublishTsNs, dl.publishTsNs);
    maxPublishTsNs = std::max(maxPublishTsNs, dl.publishTsNs);
    if (now > dl.publishTsNs) e2e.record(now - dl.publishTsNs);
    if (dl.sequencedTsNs > dl.publishTsNs) hopPubSeq.record(dl.sequencedTsNs - dl.publishTsNs);
    if (now > dl.sequencedTsNs) hopSeqSub.record(now - dl.sequencedTsNs);
    // Digest over (offset, publisher, pub_seq, length, payload): equal streams, equal digests.
    std::byte meta[24];
    const std::uint64_t o = dl.offset, s = dl.pubSeq;
    const std::uint32_t p = dl.publisher, n = static_cast<std::uint32_t>(dl.payload.size());
    std::memcpy(meta, &o, 8);
    std::memcpy(meta + 8, &p, 4);
    std::memcpy(meta + 12, &s, 8);
    std::memcpy(meta + 20, &n, 4);
    digestState = crc32cUpdate(crc32cUpdate(digestState, meta), dl.payload);
    if (out_ == nullptr && fd_ < 0) return;
    char head[96];
    const int headLen = std::snprintf(head, sizeof head, "%llu %u %llu %zu ", static_cast<unsigned long long>(dl.offset),
                                dl.publisher, static_cast<unsigned long long>(dl.pubSeq), dl.payload.size());
    line_.assign(head, static_cast<std::size_t>(headLen));
    for (std::byte b : dl.payload) {
        const auto c = static_cast<unsigned char>(b);
        if (c >= 0x20 && c < 0x7F && c != '\\') {
            line_.push_back(static_cast<char>(c));
        } else {
            char buf[5];
            std::snprintf(buf, sizeof buf, "\\x%02x", c);
            line_ += buf;
        }
    }
    line_.push_back('\n');
    if (out_ != nullptr) {
        if (std::fwrite(line_.data(), 1, line_.size(), out_) != line_.size()) outputFailed = true;
    } else {
        // The whole line in one write (a partial write is continued): once onMessage returns, the
        // line is in the file, so the commit that follows never covers a line not written.
        for (std::size_t done = 0; done < line_.size();) {
            const ssize_t w = ::write(fd_, line_.data() + done, line_.size() - done);
            if (w < 0 && errno == EINTR) continue;
            if (w <= 0) {
                outputFailed = true;
                break;
            }
            done += static_cast<std::size_t>(w);
        }
    }
    outputBytes += line_.size();
}

void DeliverySink::save(std::array<std::uint64_t, 6>& app) const noexcept {
    app = {delivered, firstOffset, lastOffset, digestState, outputBytes, lossNotices << 40 | (lostOffsets & ((1ull << 40) - 1))};
}

void DeliverySink::restore(const std::array<std::uint64_t, 6>& app) noexcept {
    delivered = app[0];
    firstOffset = app[1];
    lastOffset = app[2];
    digestState = static_cast<std::uint32_t>(app[3]);
    outputBytes = app[4];
    lossNotices = app[5] >> 40;
    lostOffsets = app[5] & ((1ull << 40) - 1);
}

void DeliverySink::onLoss(Offset first, std::uint64_t n) {
    ++lossNotices;
    lostOffsets += n;
    std::fprintf(stderr, "seqcast: LOSS offsets [%llu, %llu) cannot be repaired\n", static_cast<unsigned long long>(first.get()),
                 static_cast<unsigned long long>(first.get() + n));
}

std::string DeliverySink::digest() const {
    char dig[16];
    std::snprintf(dig, sizeof dig, "%08x", crc32cFinal(digestState));
    return dig;
}

void DeliverySink::summaryJson(Json& j) const {
    j.field("messages", delivered);
    j.field("bytes", bytes);
    j.field("first_offset", firstOffset);
    j.field("last_offset", lastOffset);
    j.field("digest", digest());
    j.field("repaired_messages", repaired);
    j.field("loss_notices", lossNotices);
    j.field("lost_offsets", lostOffsets);
    j.field("order_violations", orderViolations);
    j.field("fifo_violations", fifoViolations);
    // From the first to the last publish timestamp delivered (what a paced replay spreads out).
    j.field("published_span_s", delivered == 0 ? 0.0 : static_cast<double>(maxPublishTsNs - minPublishTsNs) / 1e9);
    j.field("publishers", static_cast<std::uint64_t>(lastPubSeq.size()));
    latencyJson(j, "latency", e2e);
    latencyJson(j, "hop_pub_to_seq", hopPubSeq);
    latencyJson(j, "hop_seq_to_sub", hopSeqSub);
}

}  // namespace seqcast::tools
