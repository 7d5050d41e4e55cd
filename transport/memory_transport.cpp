#include "transport/memory_transport.h"

namespace seqcast::transport {

namespace {
std::pair<std::uint32_t, std::uint16_t> key(Endpoint e) { return {e.addr, e.port}; }
}  // namespace

std::uint64_t MemoryNetwork::dropped() const {
    std::lock_guard lk(mu_);
    return dropped_;
}

Endpoint MemoryNetwork::ephemeral(std::uint32_t addr) {
    std::lock_guard lk(mu_);
    for (;;) {
        Endpoint e{addr, nextPort_++};
        if (nextPort_ == 0) nextPort_ = 50000;
        if (queues_.find(key(e)) == queues_.end()) return e;
    }
}

void MemoryNetwork::attach(Endpoint e) {
    std::lock_guard lk(mu_);
    queues_[key(e)];
}

void MemoryNetwork::detach(Endpoint e) {
    std::lock_guard lk(mu_);
    queues_.erase(key(e));
    for (auto& [g, members] : groups_) members.erase(key(e));
}

void MemoryNetwork::join(Endpoint group, Endpoint member) {
    std::lock_guard lk(mu_);
    groups_[key(group)].insert(key(member));
}

void MemoryNetwork::deliver(Endpoint to, Endpoint from, const std::byte* data, std::size_t len) {
    std::lock_guard lk(mu_);
    auto push = [&](std::pair<std::uint32_t, std::uint16_t> k) {
        auto it = queues_.find(k);
        if (it == queues_.end()) return;
        if (it->second.size() >= capacity_) {
            ++dropped_;
            return;
        }
        it->second.push_back(Packet{std::vector<std::byte>(data, data + len), from});
    };
    if (to.multicast()) {
        auto g = groups_.find(key(to));
        if (g == groups_.end()) return;
        for (const auto& m : g->second) push(m);
    } else {
        push(key(to));
    }
}

std::size_t MemoryNetwork::take(Endpoint at, std::size_t max, std::vector<Packet>& out) {
    std::lock_guard lk(mu_);
    auto it = queues_.find(key(at));
    if (it == queues_.end()) return 0;
    std::size_t n = 0;
    while (n < max && !it->second.empty()) {
        out.push_back(std::move(it->second.front()));
        it->second.pop_front();
        ++n;
    }
    return n;
}

MemoryTransport::MemoryTransport(MemoryNetwork& net, Endpoint bind, std::vector<Endpoint> groups)
    : net_(net), groups_(std::move(groups)) {
    local_ = bind.port == 0 ? net_.ephemeral(bind.addr) : bind;
    net_.attach(local_);
    for (const auto& g : groups_) net_.join(g, local_);
}

MemoryTransport::~MemoryTransport() { net_.detach(local_); }

std::size_t MemoryTransport::recvBurst(std::span<RxSlot> out) noexcept {
    held_.clear();
    const std::size_t n = net_.take(local_, out.size(), held_);
    for (std::size_t i = 0; i < n; ++i) {
        out[i].data = held_[i].bytes.data();
        out[i].len = static_cast<std::uint32_t>(held_[i].bytes.size());
        out[i].from = held_[i].from;
        stats_.rxBytes += out[i].len;
    }
    stats_.rxDatagrams += n;
    return n;
}

std::size_t MemoryTransport::sendBurst(std::span<const TxItem> items) noexcept {
    for (const auto& it : items) {
        net_.deliver(it.to, local_, it.data, it.len);
        stats_.txBytes += it.len;
    }
    stats_.txDatagrams += items.size();
    return items.size();
}

}  // namespace seqcast::transport
