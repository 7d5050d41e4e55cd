#include "tools/ha_cli.h"

#include <cstdio>
#include <iostream>
#include <optional>

#include "fabric/clock.h"
#include "sequencer/etcd.h"

namespace seqcast::tools {

std::string getEtcdEndpoints(const po::variables_map& vm, const std::string& name) {
    const std::string text = vm[name].as<std::string>();
    if (text.find_first_not_of(", ") == std::string::npos) throw UsageError("--" + name + ": give the etcd endpoints");
    if (auto c = sequencer::EtcdClient::create(text, 1); !c) throw UsageError("--" + name + ": " + c.error().message());
    return text;
}

std::optional<sequencer::StreamDirectory> lookupStream(const std::string& cmd, const std::string& etcd, std::uint32_t stream) {
    auto d = sequencer::readStreamDirectory(etcd, StreamId{stream});
    if (!d) {
        std::fprintf(stderr, "seqcast %s: stream %u in etcd: %s\n", cmd.c_str(), stream, d.error().message().c_str());
        return std::nullopt;
    }
    return *d;
}

int printStreamDirectories(const std::string& etcd, bool json) {
    auto dirs = sequencer::listStreamDirectories(etcd);
    if (!dirs) {
        std::fprintf(stderr, "seqcast stat: %s\n", dirs.error().message().c_str());
        return 1;
    }
    auto list = [](const std::vector<std::string>& v) {
        std::string s;
        for (const auto& x : v) {
            if (!s.empty()) s += ',';
            s += x;
        }
        return s;
    };
    if (json) {
        Json j;
        j.begin().key("streams").beginArray();
        for (const auto& d : *dirs) {
            j.begin()
                .field("stream", std::uint64_t{d.stream.get()})
                .field("leader", d.leader)
                .field("epoch", std::uint64_t{d.epoch})
                .field("group", d.group)
                .field("in_sync", list(d.isr))
                .field("members", list(d.members))
                .field("controls", list(d.controls));
            if (d.head) j.field("head", *d.head).field("head_age_ms", d.headWallNs ? (wallNs() - std::min(wallNs(), d.headWallNs)) / 1'000'000 : 0);
            j.end();
        }
        j.endArray().end();
        std::printf("%s\n", j.text().c_str());
        return 0;
    }
    std::printf("%-8s %-12s %-10s %-14s %-22s %-16s %s\n", "stream", "leader", "epoch", "head", "group", "in-sync",
                "sequencers (control)");
    for (const auto& d : *dirs)
        std::printf("%-8u %-12s %-10u %-14s %-22s %-16s %s\n", d.stream.get(), d.leader.empty() ? "(none)" : d.leader.c_str(), d.epoch,
                    d.head ? std::to_string(*d.head).c_str() : "-", d.group.c_str(), list(d.isr).c_str(), list(d.controls).c_str());
    if (dirs->empty()) std::printf("(no stream registered)\n");
    return 0;
}

}  // namespace seqcast::tools
