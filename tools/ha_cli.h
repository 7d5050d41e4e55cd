// The command line's side of HA (docs/HA.md): the --ha option of pub, sub and stat, which find a
// stream's group and sequencers in the directory the --ha sequencers keep in etcd.
#pragma once

#include <optional>
#include <string>

#include "sequencer/ha.h"
#include "tools/common.h"

namespace seqcast::tools {

// The etcd endpoints given to --NAME, checked (a usage error names the option).
std::string getEtcdEndpoints(const po::variables_map& vm, const std::string& name);
// The stream's directory; on failure prints "seqcast CMD: ..." and returns nullopt (exit 1: etcd or
// the stream is not there, which is no usage error).
std::optional<sequencer::StreamDirectory> lookupStream(const std::string& cmd, const std::string& etcd, std::uint32_t stream);
// `seqcast stat --ha`: every stream's leader, epoch, in-sync set, group and sequencers.
int printStreamDirectories(const std::string& etcd, bool json);

}  // namespace seqcast::tools
