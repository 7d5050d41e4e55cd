#include "sequencer/ha.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <map>
#include <tuple>

#include "fabric/clock.h"

namespace seqcast::sequencer {

namespace {

std::vector<std::string> splitList(const std::string& s, char sep) {
    std::vector<std::string> out;
    std::size_t pos = 0;
    while (pos <= s.size()) {
        const std::size_t e = std::min(s.find(sep, pos), s.size());
        if (e > pos) out.push_back(s.substr(pos, e - pos));
        pos = e + 1;
    }
    return out;
}

std::string joinList(std::vector<std::string> v) {
    std::sort(v.begin(), v.end());
    v.erase(std::unique(v.begin(), v.end()), v.end());
    std::string out;
    for (const auto& s : v) {
        if (!out.empty()) out += ',';
        out += s;
    }
    return out;
}

// "k=v;k=v" -> the value of `k`, or empty.
std::string field(const std::string& value, const std::string& k) {
    for (const auto& part : splitList(value, ';'))
        if (part.rfind(k + "=", 0) == 0) return part.substr(k.size() + 1);
    return {};
}

bool contains(const std::vector<std::string>& v, const std::string& s) { return std::find(v.begin(), v.end(), s) != v.end(); }

}  // namespace

namespace {
// Fills directories from the keys under /seqcast/streams/.
std::vector<StreamDirectory> directoriesFrom(const std::vector<EtcdKv>& kvs) {
    std::map<std::uint32_t, StreamDirectory> out;
    const std::string root = "/seqcast/streams/";
    for (const auto& kv : kvs) {
        if (kv.key.rfind(root, 0) != 0) continue;
        const std::string rest = kv.key.substr(root.size());
        const std::size_t slash = rest.find('/');
        if (slash == std::string::npos || slash == 0 || slash > 10 || rest.find_first_not_of("0123456789") < slash) continue;
        const unsigned long long id = std::stoull(rest.substr(0, slash));
        if (id == 0 || id > 0xFFFFFFFFull) continue;
        StreamDirectory& d = out[static_cast<std::uint32_t>(id)];
        d.stream = StreamId{static_cast<std::uint32_t>(id)};
        const std::string what = rest.substr(slash + 1);
        if (what == "leader") {
            d.leader = field(kv.value, "name");
            d.epoch = static_cast<std::uint32_t>(kv.modRevision);
            if (const std::string c = field(kv.value, "control"); !c.empty()) d.controls.insert(d.controls.begin(), c);
            if (const std::string g = field(kv.value, "group"); !g.empty()) d.group = g;
        } else if (what == "isr") {
            d.isr = splitList(kv.value, ',');
        } else if (what == "head") {
            const std::string o = field(kv.value, "released");
            const std::string t = field(kv.value, "at");
            if (!o.empty() && o.find_first_not_of("0123456789") == std::string::npos && o.size() < 20) d.head = std::stoull(o);
            if (!t.empty() && t.find_first_not_of("0123456789") == std::string::npos && t.size() < 20) d.headWallNs = std::stoull(t);
        } else if (what.rfind("members/", 0) == 0) {
            d.members.push_back(what.substr(8));
            const std::string c = field(kv.value, "control");
            if (!c.empty() && std::find(d.controls.begin(), d.controls.end(), c) == d.controls.end()) d.controls.push_back(c);
            if (d.group.empty()) d.group = field(kv.value, "group");
        }
    }
    std::vector<StreamDirectory> v;
    for (auto& [id, d] : out) {
        // The leader's control address first, each once.
        std::vector<std::string> uniq;
        for (const auto& c : d.controls)
            if (std::find(uniq.begin(), uniq.end(), c) == uniq.end()) uniq.push_back(c);
        d.controls = std::move(uniq);
        v.push_back(std::move(d));
    }
    return v;
}
}  // namespace

Result<std::vector<StreamDirectory>> listStreamDirectories(const std::string& etcd, std::uint32_t timeoutMs) {
    auto c = EtcdClient::create(etcd, timeoutMs);
    if (!c) return fail(c.error());
    auto kvs = c->getPrefix("/seqcast/streams/");
    if (!kvs) return fail(kvs.error());
    return directoriesFrom(*kvs);
}

Result<StreamDirectory> readStreamDirectory(const std::string& etcd, StreamId stream, std::uint32_t timeoutMs) {
    auto c = EtcdClient::create(etcd, timeoutMs);
    if (!c) return fail(c.error());
    auto kvs = c->getPrefix("/seqcast/streams/" + std::to_string(stream.get()) + "/");
    if (!kvs) return fail(kvs.error());
    auto dirs = directoriesFrom(*kvs);
    if (dirs.empty() || dirs[0].controls.empty())
        return fail(Error{ENOENT, "no sequencer of stream " + std::to_string(stream.get()) + " is registered in etcd"});
    return dirs[0];
}

Status HaConfig::validate() const {
    if (etcd.empty()) return failInvalid("HA needs etcd endpoints");
    if (name.empty() || name.size() > 64 || name.find_first_of(",;=/ \t\n") != std::string::npos)
        return failInvalid("HA name must be 1..64 characters without , ; = / or spaces");
    if (leaseTtlS < 1 || leaseTtlS > 60) return failInvalid("HA lease TTL must be 1..60 s");
    if (takeoverNs < 10'000'000 || takeoverNs > 60'000'000'000ull) return failInvalid("HA takeover time must be 10 ms .. 60 s");
    if (isrTimeoutNs < 10'000'000 || isrTimeoutNs > 60'000'000'000ull) return failInvalid("HA in-sync timeout must be 10 ms .. 60 s");
    if (replAddress.empty() || controlAddress.empty() || dataAddress.empty()) return failInvalid("HA needs the sequencer's addresses");
    return {};
}

Result<std::unique_ptr<HaNode>> HaNode::create(const HaConfig& cfg, Sequencer& seq) {
    if (auto st = cfg.validate(); !st) return fail(st.error());
    auto etcd = EtcdClient::create(cfg.etcd, cfg.etcdTimeoutMs);
    if (!etcd) return fail(etcd.error());
    std::unique_ptr<HaNode> n(new HaNode(cfg, seq, std::move(*etcd)));
    auto lease = n->etcd_.grantLease(cfg.leaseTtlS);
    if (!lease) return fail(lease.error().wrap("cannot reach etcd"));
    n->lease_ = *lease;
    if (auto r = n->etcd_.put(n->key("members/" + cfg.name), n->myValue(), n->lease_); !r) return fail(r.error().wrap("registering in etcd"));
    n->lastKeepAliveNs_ = n->lastKeepAliveOkNs_ = monoNs();
    n->thread_ = std::thread([p = n.get()] { p->run(); });
    return n;
}

HaNode::HaNode(const HaConfig& cfg, Sequencer& seq, EtcdClient etcd) : cfg_(cfg), seq_(seq), etcd_(std::move(etcd)) {}

HaNode::~HaNode() { stop(); }

void HaNode::stop() {
    if (stop_.exchange(true)) return;
    if (thread_.joinable()) thread_.join();
    if (lease_ != 0) (void)etcd_.revoke(lease_);
}

std::string HaNode::key(const std::string& rest) const { return "/seqcast/streams/" + std::to_string(cfg_.stream.get()) + "/" + rest; }

std::string HaNode::myValue() const {
    return "name=" + cfg_.name + ";repl=" + cfg_.replAddress + ";control=" + cfg_.controlAddress + ";data=" + cfg_.dataAddress +
           ";group=" + cfg_.group;
}

std::string HaNode::failure() const {
    std::lock_guard lk(mu_);
    return failure_;
}

void HaNode::doWork(std::uint64_t nowNs) {
    if (posted_.load(std::memory_order_acquire) != applied_.load(std::memory_order_relaxed)) {
        std::lock_guard lk(mu_);
        for (const auto& c : cmds_) {
            switch (c.kind) {
                case Command::Kind::StandBy: seq_.standBy(c.leader, c.epoch); break;
                case Command::Kind::Fence: seq_.standBy({}, Epoch{0}); break;
                case Command::Kind::Lead: seq_.lead(c.epoch); break;
                case Command::Kind::SetReplicas: seq_.setReplicas(c.replicas); break;
                case Command::Kind::StepDown: seq_.stepDown(); break;
            }
        }
        cmds_.clear();
        lastStatusNs_ = 0;  // report at once
        applied_.store(posted_.load(std::memory_order_relaxed), std::memory_order_release);
    }
    if (nowNs - lastStatusNs_ >= 1'000'000) {
        std::lock_guard lk(mu_);
        status_.role = seq_.role();
        status_.complete = seq_.stateComplete();
        status_.leaderHeardNs = seq_.leaderHeardNs();
        status_.nextOffset = seq_.nextOffset().get();
        status_.released = seq_.releasedOffset().get();
        std::tie(status_.pendingEnd, status_.pendingNs) = seq_.oldestPending();
        status_.replicas = seq_.replicaStatus();
        status_.atNs = nowNs;
        lastStatusNs_ = nowNs;
    }
}

bool HaNode::post(std::vector<Command> cmds) {
    std::uint64_t gen = 0;
    {
        std::lock_guard lk(mu_);
        for (auto& c : cmds) cmds_.push_back(std::move(c));
        gen = posted_.fetch_add(1, std::memory_order_acq_rel) + 1;
    }
    // The sequencer's thread applies it with its next doWork(): microseconds, or its idle wait.
    const std::uint64_t deadline = monoNs() + 2'000'000'000ull;
    while (applied_.load(std::memory_order_acquire) < gen) {
        if (monoNs() > deadline || stop_.load()) return false;
        std::this_thread::sleep_for(std::chrono::microseconds(100));
    }
    return true;
}

HaNode::Status HaNode::status() {
    std::lock_guard lk(mu_);
    return status_;
}

std::vector<Sequencer::Replica> HaNode::replicasFor(const std::vector<std::string>& isr) {
    std::vector<Sequencer::Replica> out;
    for (const auto& m : members_)
        if (m.name != cfg_.name) out.push_back(Sequencer::Replica{m.repl, contains(isr, m.name)});
    // An in-sync standby with no member key (its process is gone) still holds releases back until
    // it leaves the in-sync set.
    for (const auto& name : isr) {
        if (name == cfg_.name) continue;
        const bool known = std::any_of(members_.begin(), members_.end(), [&](const Member& m) { return m.name == name; });
        if (!known) out.push_back(Sequencer::Replica{transport::Endpoint{}, true});
    }
    return out;
}

void HaNode::run() {
    while (!stop_.load()) {
        const std::uint64_t t0 = monoNs();
        if (!tick()) return;
        const std::uint64_t spent = monoNs() - t0;
        if (spent < cfg_.pollNs) std::this_thread::sleep_for(std::chrono::nanoseconds(cfg_.pollNs - spent));
    }
}

bool HaNode::tick() {
    const std::uint64_t now = monoNs();
    const std::uint64_t ttlNs = std::uint64_t{cfg_.leaseTtlS} * 1'000'000'000ull;
    auto giveUp = [&](const std::string& why) {
        post({Command{Command::Kind::StepDown, {}, Epoch{0}, {}}});
        std::lock_guard lk(mu_);
        failure_ = why;
        return false;
    };
    if (now - lastKeepAliveNs_ >= ttlNs / 4) {
        lastKeepAliveNs_ = now;
        auto ttl = etcd_.keepAlive(lease_);
        if (ttl && *ttl > 0) {
            lastKeepAliveOkNs_ = now;
        } else if (ttl) {
            // The lease is gone (this process was paused or cut off longer than its TTL).
            if (leading_.get() != 0) return giveUp("the etcd lease expired while leading (epoch " + std::to_string(leading_.get()) + ")");
            if (auto l = etcd_.grantLease(cfg_.leaseTtlS); l) {
                lease_ = *l;
                lastKeepAliveOkNs_ = now;
                (void)etcd_.put(key("members/" + cfg_.name), myValue(), lease_);
            }
        }
    }
    // A leader that cannot renew its lease steps down before the lease can have expired: checked
    // after every etcd call, whose timeouts (each endpoint in turn) can add up to a second.
    auto overdue = [&] { return leading_.get() != 0 && monoNs() - lastKeepAliveOkNs_ > ttlNs * 3 / 4; };
    auto lateGiveUp = [&] {
        return giveUp("no answer from etcd for " + std::to_string((monoNs() - lastKeepAliveOkNs_) / 1'000'000) + " ms while leading");
    };
    if (overdue()) return lateGiveUp();

    // etcd is read every readNs; a standby whose leader fell silent reads (and acts) at once.
    {
        const Status pre = status();
        const bool suspect = leading_.get() == 0 && following_.get() != 0 &&
                             now > std::max(pre.leaderHeardNs, followSinceNs_) + cfg_.takeoverNs;
        if (!suspect && lastReadNs_ != 0 && now - lastReadNs_ < cfg_.readNs) return true;
    }
    auto kvs = etcd_.getPrefix(key(""));
    if (overdue()) return lateGiveUp();
    lastReadNs_ = now;
    if (!kvs) return true;  // etcd out of reach: try again next round
    std::optional<EtcdKv> leader, isr;
    members_.clear();
    for (const auto& kv : *kvs) {
        if (kv.key == key("leader")) leader = kv;
        else if (kv.key == key("isr")) isr = kv;
        else if (kv.key.rfind(key("members/"), 0) == 0) {
            auto ep = transport::parseEndpoint(field(kv.value, "repl"));
            if (ep) members_.push_back(Member{kv.key.substr(key("members/").size()), *ep});
        }
    }
    isrExists_ = isr.has_value();
    isrValue_ = isr ? isr->value : std::string();
    isr_ = isr ? splitList(isr->value, ',') : std::vector<std::string>{};
    const Status st = status();
    const bool inIsr = contains(isr_, cfg_.name);

    auto becomeLeader = [&](std::int64_t revision) {
        if (revision <= 0 || revision > 0xFFFFFFFFll) return giveUp("etcd revision " + std::to_string(revision) + " does not fit an epoch");
        leading_ = Epoch{static_cast<std::uint32_t>(revision)};
        following_ = Epoch{0};
        std::vector<std::string> set = isr_;
        post({Command{Command::Kind::SetReplicas, {}, Epoch{0}, replicasFor(set)}, Command{Command::Kind::Lead, {}, leading_, {}}});
        std::fprintf(stderr, "seqcast sequencer: %s leads stream %u with epoch %u (in-sync: %s)\n", cfg_.name.c_str(),
                     cfg_.stream.get(), leading_.get(), joinList(set).c_str());
        return true;
    };

    if (leading_.get() != 0) {
        if (!leader || leader->modRevision != static_cast<std::int64_t>(leading_.get()))
            return giveUp("leadership lost: the leader key " +
                          (leader ? "is now " + field(leader->value, "name") + "'s (epoch " + std::to_string(leader->modRevision) + ")"
                                  : std::string("is gone")));
        const EtcdCompare mine{key("leader"), EtcdCompare::Target::ModRevision, EtcdCompare::Op::Equal, leading_.get(), {}};
        const EtcdCompare sameIsr{key("isr"), EtcdCompare::Target::Value, EtcdCompare::Op::Equal, 0, isrValue_};
        post({Command{Command::Kind::SetReplicas, {}, Epoch{0}, replicasFor(isr_)}});
        // Drop an in-sync standby that is gone or silent: etcd first, then stop waiting for it.
        for (const auto& name : isr_) {
            if (name == cfg_.name) continue;
            const auto m = std::find_if(members_.begin(), members_.end(), [&](const Member& x) { return x.name == name; });
            bool drop = m == members_.end();
            if (!drop) {
                const auto r = std::find_if(st.replicas.begin(), st.replicas.end(), [&](const auto& x) { return x.to == m->repl; });
                // Silent, or acknowledging without holding what waits for it (stuck: a wrong MTU, a
                // ring it fell out of): either way releases wait for it, so it goes.
                const std::uint64_t last = r == st.replicas.end() ? 0 : std::max(r->lastAckNs, ledSinceNs_);
                const bool blocking = r != st.replicas.end() && st.pendingEnd != 0 && r->acked < st.pendingEnd;
                const std::uint64_t moved = r == st.replicas.end() ? 0 : std::max({r->progressNs, st.pendingNs, ledSinceNs_});
                drop = now > last + cfg_.isrTimeoutNs || (blocking && now > moved + cfg_.isrTimeoutNs);
            }
            if (!drop) continue;
            std::vector<std::string> next;
            for (const auto& n : isr_)
                if (n != name) next.push_back(n);
            auto t = etcd_.txn({mine, sameIsr}, {EtcdOp{EtcdOp::Kind::Put, key("isr"), joinList(next), 0}});
            if (t && t->succeeded) {
                isr_ = next;
                post({Command{Command::Kind::SetReplicas, {}, Epoch{0}, replicasFor(isr_)}});
                std::fprintf(stderr, "seqcast sequencer: %s dropped %s from the in-sync set (%s)\n", cfg_.name.c_str(), name.c_str(),
                             m == members_.end() ? "gone" : "silent");
            }
            return true;  // one change per round, on a fresh read
        }
        // The directory's head, about once a second (only while this is the leader: the same check).
        if (now - lastHeadNs_ >= 1'000'000'000ull) {
            lastHeadNs_ = now;
            (void)etcd_.txn({mine}, {EtcdOp{EtcdOp::Kind::Put, key("head"),
                                            "released=" + std::to_string(st.released) + ";at=" + std::to_string(wallNs()), lease_}});
        }
        // Add a standby that holds everything committed: wait for it first, then etcd.
        for (const auto& m : members_) {
            if (m.name == cfg_.name || contains(isr_, m.name)) continue;
            const auto r = std::find_if(st.replicas.begin(), st.replicas.end(), [&](const auto& x) { return x.to == m.repl; });
            if (r == st.replicas.end() || !r->joined || r->acked < st.released || now > r->lastAckNs + cfg_.isrTimeoutNs / 2) continue;
            std::vector<std::string> next = isr_;
            next.push_back(m.name);
            // Required first: from then on nothing is released without it. Then, before etcd lists it,
            // it must have acknowledged the released point of that moment (a status taken after):
            // it then holds everything anyone may have delivered.
            const std::uint64_t postedNs = monoNs();
            if (!post({Command{Command::Kind::SetReplicas, {}, Epoch{0}, replicasFor(next)}})) return true;
            bool holds = false;
            for (int i = 0; i < 50 && !holds && !stop_.load(); ++i) {
                const Status now2 = status();
                if (now2.atNs > postedNs) {
                    const auto r2 = std::find_if(now2.replicas.begin(), now2.replicas.end(), [&](const auto& x) { return x.to == m.repl; });
                    holds = r2 != now2.replicas.end() && r2->required && r2->joined && r2->acked >= r2->requiredFrom;
                }
                if (!holds) std::this_thread::sleep_for(std::chrono::milliseconds(2));
            }
            if (!holds) return true;  // the next round requires it no more (the in-sync set in etcd)
            auto t = etcd_.txn({mine, sameIsr}, {EtcdOp{EtcdOp::Kind::Put, key("isr"), joinList(next), 0}});
            if (t && t->succeeded) {
                isr_ = next;
                std::fprintf(stderr, "seqcast sequencer: %s added %s to the in-sync set\n", cfg_.name.c_str(), m.name.c_str());
            }
            return true;
        }
        return true;
    }

    // Not leading.
    if (leader) {
        const auto leaderRepl = transport::parseEndpoint(field(leader->value, "repl"));
        const std::string leaderName = field(leader->value, "name");
        const Epoch e{static_cast<std::uint32_t>(leader->modRevision)};
        if (following_ != e && leaderRepl && leaderName != cfg_.name) {
            post({Command{Command::Kind::StandBy, *leaderRepl, e, {}}});
            following_ = e;
            followSinceNs_ = now;
            return true;
        }
        // The leader is silent (killed, paused, cut off): an in-sync standby with a whole state
        // takes over; the same transaction drops the old leader from the in-sync set.
        // Silence as this sequencer's own engine saw it at its last report, and only from a fresh
        // report: a standby whose own thread was starved has heard nothing, but not from a silent
        // leader (on a loaded host that made needless takeovers).
        const std::uint64_t heard = std::max(st.leaderHeardNs, followSinceNs_);
        const bool fresh = monoNs() - st.atNs < std::max<std::uint64_t>(cfg_.takeoverNs / 4, 2'000'000);
        const bool silent = leaderName == cfg_.name || (following_ == e && fresh && st.atNs > heard + cfg_.takeoverNs);
        if (!silent || !inIsr || !st.complete) return true;
        if (!post({Command{Command::Kind::Fence, {}, Epoch{0}, {}}})) return true;
        if (!seq_.stateComplete()) return true;
        std::vector<std::string> next;
        for (const auto& n : isr_)
            if (n != leaderName) next.push_back(n);
        if (!contains(next, cfg_.name)) next.push_back(cfg_.name);
        auto t = etcd_.txn({EtcdCompare{key("leader"), EtcdCompare::Target::ModRevision, EtcdCompare::Op::Equal, leader->modRevision, {}},
                            EtcdCompare{key("isr"), EtcdCompare::Target::Value, EtcdCompare::Op::Equal, 0, isrValue_}},
                           {EtcdOp{EtcdOp::Kind::Put, key("leader"), myValue(), lease_}, EtcdOp{EtcdOp::Kind::Put, key("isr"), joinList(next), 0}});
        // No answer (etcd electing, a member down): try again next round, still fenced, still the
        // same leader to take over from. Following it again would restart the standby from a
        // snapshot (its state incomplete meanwhile) that a dead leader never sends: no one could
        // lead. A refusal means the leader or the in-sync set changed: read again and follow.
        if (!t) return true;
        if (!t->succeeded) {
            following_ = Epoch{0};
            return true;
        }
        isr_ = next;
        ledSinceNs_ = now;
        const std::uint64_t silentNs = now - heard;
        if (!becomeLeader(t->revision)) return false;
        // The takeover time: from the last datagram it heard from the old leader (every datagram the
        // old leader could release came through here first) to leading, its first heartbeat due.
        std::fprintf(stderr, "seqcast sequencer: %s took over from %s: takeover %.1f ms after the old leader's last datagram "
                     "(silence detected after %.1f ms)\n", cfg_.name.c_str(), leaderName.c_str(),
                     static_cast<double>(monoNs() - heard) / 1e6, static_cast<double>(silentNs) / 1e6);
        return true;
    }
    // No leader: a member of the in-sync set with a whole state campaigns; on a new stream (no
    // in-sync set yet) anyone may.
    if (isrExists_ && !(inIsr && st.complete)) return true;
    if (!post({Command{Command::Kind::Fence, {}, Epoch{0}, {}}})) return true;
    if (isrExists_ && !seq_.stateComplete()) return true;
    std::vector<std::string> next = isrExists_ ? isr_ : std::vector<std::string>{cfg_.name};
    const EtcdCompare noLeader{key("leader"), EtcdCompare::Target::Version, EtcdCompare::Op::Equal, 0, {}};
    const EtcdCompare isrSame = isrExists_ ? EtcdCompare{key("isr"), EtcdCompare::Target::Value, EtcdCompare::Op::Equal, 0, isrValue_}
                                           : EtcdCompare{key("isr"), EtcdCompare::Target::Version, EtcdCompare::Op::Equal, 0, {}};
    auto t = etcd_.txn({noLeader, isrSame},
                       {EtcdOp{EtcdOp::Kind::Put, key("leader"), myValue(), lease_}, EtcdOp{EtcdOp::Kind::Put, key("isr"), joinList(next), 0}});
    following_ = Epoch{0};
    if (!t || !t->succeeded) return true;
    isr_ = next;
    ledSinceNs_ = now;
    return becomeLeader(t->revision);
}

}  // namespace seqcast::sequencer
