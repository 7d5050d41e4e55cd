#pragma once

#include <cstdint>
#include <string>

namespace seqcast::tools {

struct ServeOptions {
    std::string host;          // address to listen on
    std::uint16_t port = 0;
    std::string directory;     // counters directory
    bool all = false;          // also processes that exited and left their counters file
};

// Serves /metrics until SIGINT or SIGTERM. Exit status: 0, or 2 when it cannot listen.
int serveMetrics(const ServeOptions& o);

}  // namespace seqcast::tools
