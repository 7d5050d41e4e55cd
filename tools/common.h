// Shared pieces of the seqcast subcommands: option parsing (flags and INI config files with the
// same keys), range checks that name the option, transports from options, signals, idling.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include <boost/program_options.hpp>
#include <seqcast/seqcast.hpp>

#include "fabric/histogram.h"
#include "fabric/idle.h"
#include "fabric/result.h"
#include "transport/fault_transport.h"
#include "transport/udp_transport.h"

namespace seqcast {
class Rng;
}

namespace seqcast::tools {

namespace po = boost::program_options;

// Bad command-line or config input: printed with usage, exit code 2.
struct UsageError : std::runtime_error {
    using std::runtime_error::runtime_error;
};

inline constexpr int kExitUsage = 2;

struct CommandInfo {
    std::string name;      // "sub"
    std::string synopsis;  // one line
    std::string examples;  // shown by --help
};

// Parses flags, then --config FILE (flags win). Returns the exit code to use now (0 after --help,
// 2 after a usage error), or nullopt to go on.
std::optional<int> parseCommandLine(const CommandInfo& info, int argc, char** argv, po::options_description& opts,
                                    po::variables_map& vm, std::vector<std::string>* extra = nullptr);

// Checked reads: throw UsageError naming the option and the allowed range.
std::uint64_t getU64(const po::variables_map& vm, const std::string& name, std::uint64_t lo, std::uint64_t hi);
double getDouble(const po::variables_map& vm, const std::string& name, double lo, double hi);
// Sizes with optional K/M/G suffix (powers of 1024).
std::uint64_t getSize(const po::variables_map& vm, const std::string& name, std::uint64_t lo, std::uint64_t hi);
Result<std::uint64_t> parseSize(const std::string& text);
transport::Endpoint getEndpoint(const po::variables_map& vm, const std::string& name, bool allowZeroPort = false);
// HOST:PORT[,HOST:PORT...] (at most 16), each checked; returned normalised.
std::string getEndpointList(const po::variables_map& vm, const std::string& name);
std::uint32_t getIpv4(const po::variables_map& vm, const std::string& name);

// Message sizes of synthetic traffic: "N", "A-B" (uniform) or "exp:MEAN" (exponential, clamped to
// [1, max]). parseSizeSpec throws UsageError naming --option for a bad one or a size above maxMessage.
struct SizeSpec {
    enum class Kind { Fixed, Uniform, Exp } kind = Kind::Fixed;
    std::uint64_t a = 64, b = 64;
    double mean = 64;
    std::size_t draw(Rng& r, std::size_t maxSize) const;
};
SizeSpec parseSizeSpec(const std::string& option, const std::string& text, std::uint64_t maxMessage);

// Path options, checked before a role starts so that a typo is not found after set-up: throws
// UsageError naming the option where the path cannot be used as asked (a directory where a file is
// wanted, a missing directory, no permission). Write and ReadWrite paths may not exist yet: then
// their directory must take a new file.
enum class PathUse { Read, Write, ReadWrite, Directory };
void checkPath(const std::string& option, const std::string& path, PathUse use);
void checkPath(const po::variables_map& vm, const std::string& name, PathUse use);  // when given

// A set-up step that failed after the options were read (opening a socket, a state file, a log):
// prints the error and returns the exit code. The user's input (an address in use or not of this
// host, a file that cannot be opened, that another process holds or that is not what the option
// wants) exits 2 and names `option` (--interface where the interface was refused); anything else
// is a failure of the system, exit 1.
int setupFailure(const std::string& command, const std::string& option, const Error& e);
// A SetupError from the public API: "seqcast COMMAND: --OPTION: message" with the command-line
// option of the field it names (optionOf), exit status 2.
int apiSetupFailure(const std::string& command, const SetupError& e);
// The command-line option of `command` for a field of the API's options structs:
// "network.authKeyFile" -> "auth-key", "maxMessage" -> "max-message", archiver "sizeBytes" -> "size".
std::string optionOf(const std::string& command, const std::string& field);
// --auth-key / --auth-key-id for the API's NetworkOptions ("" and 0 when not given).
std::string authKeyFile(const po::variables_map& vm);
// addSocketOptions' options as the API's NetworkOptions (socketConfig's checks, options named), and
// addFaultOptions' as its FaultOptions.
NetworkOptions networkOptions(const po::variables_map& vm);
FaultOptions faultOptions(const po::variables_map& vm);
std::uint32_t authKeyId(const po::variables_map& vm);

// --auth-key, --auth-key-id (part of the socket options; on their own for roles without those)
void addAuthOptions(po::options_description& d);
void authConfig(const po::variables_map& vm, transport::UdpConfig& c);
// --interface, --ttl, --loopback, --rcvbuf, --sndbuf, --busy-poll
// rcvbufDefault: the --rcvbuf default (a recorder wants a deeper queue than a latency-bound reader).
void addSocketOptions(po::options_description& d, const char* rcvbufDefault = "8M");
transport::UdpConfig socketConfig(const po::variables_map& vm);
// --cpu N: pins the calling process (throws UsageError for a CPU that does not exist).
void pinCpu(const po::variables_map& vm);
// --loss, --burst-loss, --burst-length, --reorder, --duplicate, --corrupt, --fault-seed, --fault-on
void addFaultOptions(po::options_description& d, const char* defaultDirection);
transport::FaultConfig faultConfig(const po::variables_map& vm);

// Opens a UDP transport (wrapped in fault injection when asked); prints set-up warnings.
Result<std::unique_ptr<transport::Transport>> openTransport(const transport::UdpConfig& udp,
                                                            const transport::FaultConfig& faults,
                                                            const std::string& what);

// SIGINT / SIGTERM set the stop flag.
void installStopSignals();
bool stopRequested() noexcept;
void requestStop() noexcept;

// After an idle doWork(): spin with --busy-poll, else sleep on the descriptors (fabric/idle.h).
inline IdleMode idleMode(bool busyPoll) noexcept { return busyPoll ? IdleMode::BusySpin : IdleMode::Block; }

// The same policy for a loop around a public-API object (Publisher, Subscriber, Sequencer, ...):
// after a pass that did work, straight on; with --busy-poll a pause; else one more look, then the
// object's wait(maxUs) (a datagram, one of its timers, or maxUs).
class ApiIdler {
public:
    explicit ApiIdler(bool busyPoll) noexcept : busy_(busyPoll) {}
    template <class Object>
    void idle(int work, Object& object, std::uint32_t maxUs) {
        if (work > 0) {
            rounds_ = 0;
        } else if (busy_) {
            __builtin_ia32_pause();
        } else if (++rounds_ >= 2) {
            object.wait(maxUs);
        }
    }

private:
    bool busy_;
    unsigned rounds_ = 0;
};

// Minimal JSON output.
class Json {
public:
    Json& begin();
    Json& end();
    Json& key(const std::string& k);
    Json& str(const std::string& v);
    Json& num(double v);
    Json& num(std::uint64_t v);
    Json& boolean(bool v);
    Json& field(const std::string& k, const std::string& v) { return key(k).str(v); }
    Json& field(const std::string& k, std::uint64_t v) { return key(k).num(v); }
    Json& field(const std::string& k, double v) { return key(k).num(v); }
    Json& beginArray();
    Json& endArray();
    std::string text() const { return out_.str(); }

private:
    void sep();
    void quote(const std::string& v);
    std::ostringstream out_;
    std::vector<bool> first_{true};
    bool afterKey_ = false;
};

// "p50=12.3us p99=..." and JSON fields for a latency histogram in nanoseconds.
std::string latencySummary(const Histogram& h);
void latencyJson(Json& j, const std::string& key, const Histogram& h);
std::string fmtRate(double perSec);
bool writeFile(const std::string& path, const std::string& text);

}  // namespace seqcast::tools
