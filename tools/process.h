// Child processes of the demo and the benchmarks: this same binary with other arguments.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

namespace seqcast::tools {

// Starts /proc/self/exe with `args` (args[0] is the subcommand); stdout/stderr go to the files
// given (empty: inherit). Returns the pid, or -1.
pid_t spawnSelf(const std::vector<std::string>& args, const std::string& outPath, const std::string& errPath);
// Waits up to timeoutMs for pid to exit; returns its exit status (128+signal if killed), or -1 on timeout.
int waitFor(pid_t pid, std::uint64_t timeoutMs);
// Sends sig to pid, then waits; SIGKILL after graceMs.
int stopChild(pid_t pid, int sig, std::uint64_t graceMs);
std::string readFileText(const std::string& path);
// First number after "key": in a flat JSON text (starting at `from`), or -1.
double jsonNumber(const std::string& text, const std::string& key, std::size_t from = 0);
std::string jsonString(const std::string& text, const std::string& key);

}  // namespace seqcast::tools
