#include "tools/common.h"

#include "transport/allowlist_transport.h"
#include "transport/auth_transport.h"
#include "transport/dpdk_transport.h"
#include "transport/open_transport.h"

#include <poll.h>
#include <sched.h>
#include <sys/stat.h>
#include <unistd.h>
#include <signal.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <iostream>

#include "fabric/clock.h"
#include "fabric/wire.h"

namespace seqcast::tools {

namespace {
// What followed `--` on the command line of a subcommand that takes no EXTRA arguments: the DPDK
// EAL arguments of --transport dpdk (socketConfig() hands them on).
std::vector<std::string> gEalArgs;
bool gEalArgsGiven = false;
}  // namespace

namespace {
// Boost.Program_options builds what() by replacing %tokens% in a template with the option's name
// and value, again and again until none is left: a name that itself holds such a token (a config
// file key like "%canonical_option%") never finishes. Such names get a message of our own.
std::string poMessage(const po::error& e) {
    if (const auto* n = dynamic_cast<const po::error_with_option_name*>(&e)) {
        const std::string name = n->get_option_name();
        if (name.find('%') != std::string::npos) {
            std::string shown;
            for (char c : name) shown += (c >= 0x20 && c < 0x7F) ? c : '?';
            return "option '" + shown + "' is not valid here";
        }
    }
    return e.what();
}
}  // namespace

std::optional<int> parseCommandLine(const CommandInfo& info, int argc, char** argv, po::options_description& opts,
                                    po::variables_map& vm, std::vector<std::string>* extra) {
    po::options_description common("General");
    common.add_options()
        ("help,h", "show this help with examples")
        ("config", po::value<std::string>(), "read options from an INI file (same keys as the flags; flags win)");
    po::options_description all;
    all.add(opts).add(common);
    auto usage = [&](std::ostream& os) {
        // Only commands with sockets (--transport) take EAL arguments after --.
        const char* tail = extra != nullptr ? " [-- EXTRA...]"
                           : opts.find_nothrow("transport", false) != nullptr ? " [-- DPDK EAL ARGS (--transport dpdk)]"
                                                                             : "";
        os << "usage: seqcast " << info.name << " [options]" << tail << "\n"
           << info.synopsis << "\n\n" << all << "\nExamples:\n" << info.examples;
    };
    try {
        std::vector<std::string> args(argv + 1, argv + argc);
        std::vector<std::string> after;
        for (std::size_t i = 0; i < args.size(); ++i) {
            if (args[i] == "--") {
                after.assign(args.begin() + static_cast<std::ptrdiff_t>(i) + 1, args.end());
                args.resize(i);
                if (extra == nullptr) gEalArgsGiven = true;
                break;
            }
        }
        if (extra != nullptr) *extra = after;
        else gEalArgs = after;
        po::parsed_options parsed = po::command_line_parser(args).options(all).run();
        for (const po::option& o : parsed.options)
            if (o.position_key >= 0)
                throw UsageError("unexpected argument '" + (o.value.empty() ? std::string() : o.value.front()) +
                                 "' (options are --name VALUE or --name=VALUE)");
        po::store(parsed, vm);
        if (vm.count("help") != 0) {
            usage(std::cout);
            return 0;
        }
        if (extra == nullptr && gEalArgsGiven && opts.find_nothrow("interface", false) == nullptr)
            throw UsageError("arguments after --: seqcast " + info.name + " takes none");
        if (vm.count("config") != 0) {
            const std::string path = vm["config"].as<std::string>();
            checkPath("config", path, PathUse::Read);
            std::ifstream file(path);
            if (!file) throw UsageError("--config: cannot read '" + path + "': " + std::strerror(errno));
            // '%' is refused: Boost's error messages substitute %tokens% until none is left, and a
            // line holding one would never finish.
            std::stringstream in;
            std::string line;
            for (int n = 1; std::getline(file, line); ++n) {
                if (line.find('%') != std::string::npos)
                    throw UsageError("--config " + path + " line " + std::to_string(n) + ": '%' is not allowed in a configuration file");
                in << line << '\n';
            }
            try {
                po::parsed_options parsed = po::parse_config_file(in, opts, false);
                // A flag in a file is true or false (yes/no, on/off, 1/0); false leaves it off.
                std::vector<po::option> kept;
                for (po::option& o : parsed.options) {
                    const po::option_description* d = opts.find_nothrow(o.string_key, false);
                    if (d == nullptr || d->semantic()->max_tokens() != 0) {
                        kept.push_back(std::move(o));
                        continue;
                    }
                    const std::string v = o.value.empty() ? "" : o.value.front();
                    if (v.empty() || v == "true" || v == "yes" || v == "on" || v == "1") {
                        o.value.clear();
                        kept.push_back(std::move(o));
                    } else if (v != "false" && v != "no" && v != "off" && v != "0") {
                        throw UsageError("--config " + path + ": " + o.string_key + " = '" + v + "': a flag is true or false");
                    }
                }
                parsed.options = std::move(kept);
                po::store(parsed, vm);
            } catch (const po::error& e) {
                throw UsageError("--config " + path + ": " + poMessage(e));
            }
        }
        po::notify(vm);
    } catch (const po::error& e) {
        std::cerr << "seqcast " << info.name << ": " << poMessage(e) << "\n\n";
        usage(std::cerr);
        return kExitUsage;
    } catch (const UsageError& e) {
        std::cerr << "seqcast " << info.name << ": " << e.what() << "\n\n";
        usage(std::cerr);
        return kExitUsage;
    }
    return std::nullopt;
}

std::size_t SizeSpec::draw(Rng& r, std::size_t maxSize) const {
    std::uint64_t v = a;
    if (kind == Kind::Uniform) v = a + r.below(b - a + 1);
    if (kind == Kind::Exp) {
        const double u = r.unit();
        v = static_cast<std::uint64_t>(-mean * std::log(1.0 - u)) + 1;
    }
    return static_cast<std::size_t>(std::min<std::uint64_t>(v, maxSize));
}

SizeSpec parseSizeSpec(const std::string& option, const std::string& text, std::uint64_t maxMessage) {
    const std::string opt = "--" + option + ": ";
    SizeSpec s;
    auto num = [&](const std::string& t) {
        auto v = parseSize(t);
        if (!v || *v > maxMessage)
            throw UsageError(opt + "'" + text + "' must be N, A-B or exp:MEAN with sizes up to --max-message (" +
                             std::to_string(maxMessage) + ")");
        return *v;
    };
    if (text.rfind("exp:", 0) == 0) {
        s.kind = SizeSpec::Kind::Exp;
        s.mean = static_cast<double>(num(text.substr(4)));
        if (s.mean < 1) throw UsageError(opt + "exponential mean must be at least 1");
    } else if (auto dash = text.find('-'); dash != std::string::npos) {
        s.kind = SizeSpec::Kind::Uniform;
        s.a = num(text.substr(0, dash));
        s.b = num(text.substr(dash + 1));
        if (s.a > s.b) throw UsageError(opt + "in 'A-B' A must not exceed B");
    } else {
        s.a = s.b = num(text);
    }
    return s;
}

void checkPath(const std::string& option, const std::string& path, PathUse use) {
    const std::string opt = "--" + option + ": ";
    if (path.empty()) throw UsageError(opt + "an empty path");
    struct stat st {};
    if (::stat(path.c_str(), &st) == 0) {
        if (use == PathUse::Directory) {
            if (!S_ISDIR(st.st_mode)) throw UsageError(opt + "'" + path + "' is not a directory");
            if (::access(path.c_str(), R_OK | X_OK) != 0)
                throw UsageError(opt + "cannot read the directory '" + path + "': " + std::strerror(errno));
            return;
        }
        if (S_ISDIR(st.st_mode)) throw UsageError(opt + "'" + path + "' is a directory, not a file");
        const int mode = use == PathUse::Read ? R_OK : use == PathUse::Write ? W_OK : R_OK | W_OK;
        if (::access(path.c_str(), mode) != 0)
            throw UsageError(opt + (use == PathUse::Read ? "cannot read '" : "cannot write '") + path + "': " + std::strerror(errno));
        return;
    }
    const int err = errno;
    if (err != ENOENT || use == PathUse::Read || use == PathUse::Directory)
        throw UsageError(opt + "cannot read " + (use == PathUse::Directory ? "the directory '" : "'") + path + "': " + std::strerror(err));
    // Created at start-up: its directory must exist and take a new file.
    const auto slash = path.find_last_of('/');
    const std::string dir = slash == std::string::npos ? "." : slash == 0 ? "/" : path.substr(0, slash);
    if (::stat(dir.c_str(), &st) != 0)
        throw UsageError(opt + "cannot create '" + path + "': directory '" + dir + "': " + std::strerror(errno));
    if (!S_ISDIR(st.st_mode)) throw UsageError(opt + "cannot create '" + path + "': '" + dir + "' is not a directory");
    if (::access(dir.c_str(), W_OK | X_OK) != 0)
        throw UsageError(opt + "cannot create '" + path + "' in '" + dir + "': " + std::strerror(errno));
}

void checkPath(const po::variables_map& vm, const std::string& name, PathUse use) {
    if (vm.count(name) != 0) checkPath(name, vm[name].as<std::string>(), use);
}

int setupFailure(const std::string& command, const std::string& option, const Error& e) {
    switch (e.code) {
        case EADDRINUSE: case EADDRNOTAVAIL: case EACCES: case ENODEV: case ENOENT: case ENOTDIR:
        case EISDIR: case EROFS: case ENAMETOOLONG: case ELOOP: case EINVAL: case EBUSY: {
            const std::string& m = e.message();
            // The DPDK port could not come up: the EAL arguments (after --) are to blame, not the option.
            if (e.field == "ealArgs") {
                std::fprintf(stderr, "seqcast %s: --transport dpdk (EAL arguments after --): %s\n", command.c_str(), m.c_str());
                return kExitUsage;
            }
            // The error names its setting where it arises (an interface, a TTL, a key file); else the
            // option the caller passed is to blame.
            const std::string blame = e.field == "interface" ? "interface" : e.field == "ttl" ? "ttl"
                                    : e.field == "authKeyFile" ? "auth-key" : option;
            std::fprintf(stderr, "seqcast %s: --%s: %s\n", command.c_str(), blame.c_str(), m.c_str());
            return kExitUsage;
        }
        default:
            std::fprintf(stderr, "seqcast %s: %s\n", command.c_str(), e.message().c_str());
            return 1;
    }
}

namespace {
std::string range(std::uint64_t lo, std::uint64_t hi) { return std::to_string(lo) + ".." + std::to_string(hi); }
}  // namespace

std::uint64_t getU64(const po::variables_map& vm, const std::string& name, std::uint64_t lo, std::uint64_t hi) {
    const std::string text = vm[name].as<std::string>();
    std::uint64_t v = 0;
    std::size_t used = 0;
    try {
        if (!text.empty() && text[0] == '-') throw std::invalid_argument("negative");
        v = std::stoull(text, &used, 10);
    } catch (const std::exception&) {
        throw UsageError("--" + name + ": '" + text + "' is not a whole number (allowed " + range(lo, hi) + ")");
    }
    if (used != text.size()) throw UsageError("--" + name + ": '" + text + "' is not a whole number (allowed " + range(lo, hi) + ")");
    if (v < lo || v > hi) throw UsageError("--" + name + ": " + text + " is out of range " + range(lo, hi));
    return v;
}

double getDouble(const po::variables_map& vm, const std::string& name, double lo, double hi) {
    const std::string text = vm[name].as<std::string>();
    double v = 0;
    std::size_t used = 0;
    try {
        v = std::stod(text, &used);
    } catch (const std::exception&) {
        used = 0;
    }
    if (used != text.size() || text.empty() || !std::isfinite(v))
        throw UsageError("--" + name + ": '" + text + "' is not a number");
    if (v < lo || v > hi) {
        std::ostringstream os;
        os << "--" << name << ": " << text << " is out of range " << lo << ".." << hi;
        throw UsageError(os.str());
    }
    return v;
}

Result<std::uint64_t> parseSize(const std::string& text) {
    if (text.empty()) return failInvalid("empty size");
    std::size_t used = 0;
    std::uint64_t v = 0;
    try {
        if (text[0] == '-') throw std::invalid_argument("negative");
        v = std::stoull(text, &used, 10);
    } catch (const std::exception&) {
        return failInvalid("'" + text + "' is not a size (e.g. 4096, 64K, 16M, 1G)");
    }
    std::string unit = text.substr(used);
    if (!unit.empty() && (unit.back() == 'B' || unit.back() == 'b')) unit.pop_back();
    if (unit.size() > 1 && (unit.back() == 'i')) unit.pop_back();
    unsigned shift = 0;
    if (unit.empty()) shift = 0;
    else if (unit == "K" || unit == "k") shift = 10;
    else if (unit == "M" || unit == "m") shift = 20;
    else if (unit == "G" || unit == "g") shift = 30;
    else return failInvalid("'" + text + "' is not a size (e.g. 4096, 64K, 16M, 1G)");
    if (shift != 0 && v > (~std::uint64_t{0} >> shift)) return failInvalid("'" + text + "' is too large");
    return v << shift;
}

std::uint64_t getSize(const po::variables_map& vm, const std::string& name, std::uint64_t lo, std::uint64_t hi) {
    const std::string text = vm[name].as<std::string>();
    auto v = parseSize(text);
    if (!v) throw UsageError("--" + name + ": " + v.error().message());
    if (*v < lo || *v > hi) throw UsageError("--" + name + ": " + text + " is out of range " + range(lo, hi) + " bytes");
    return *v;
}

transport::Endpoint getEndpoint(const po::variables_map& vm, const std::string& name, bool allowZeroPort) {
    auto e = transport::parseEndpoint(vm[name].as<std::string>(), allowZeroPort);
    if (!e) throw UsageError("--" + name + ": " + e.error().message());
    return *e;
}

std::string getEndpointList(const po::variables_map& vm, const std::string& name) {
    const std::string text = vm[name].as<std::string>();
    std::string out;
    std::size_t pos = 0, n = 0;
    while (pos <= text.size()) {
        const std::size_t comma = std::min(text.find(',', pos), text.size());
        auto e = transport::parseEndpoint(text.substr(pos, comma - pos));
        if (!e) throw UsageError("--" + name + ": " + e.error().message());
        if (!out.empty()) out += ',';
        out += e->str();
        if (++n > 16) throw UsageError("--" + name + ": at most 16 addresses");
        pos = comma + 1;
    }
    return out;
}

std::uint32_t getIpv4(const po::variables_map& vm, const std::string& name) {
    auto a = transport::parseIpv4(vm[name].as<std::string>());
    if (!a) throw UsageError("--" + name + ": " + a.error().message());
    return *a;
}

void addAuthOptions(po::options_description& d) {
    d.add_options()
        ("auth-key", po::value<std::string>(),
         "authenticated frames: sign every datagram and accept only signed ones, with the keys in this file "
         "(lines 'ID HEX64', mode 600; see README)")
        ("auth-key-id", po::value<std::string>(), "the key id to sign with (default: the highest in the file)");
}

void authConfig(const po::variables_map& vm, transport::UdpConfig& c) {
    if (vm.count("auth-key-id") && !vm.count("auth-key")) throw UsageError("--auth-key-id needs --auth-key");
    if (!vm.count("auth-key")) return;
    c.authKeyFile = vm["auth-key"].as<std::string>();
    if (vm.count("auth-key-id")) c.authKeyId = static_cast<std::uint32_t>(getU64(vm, "auth-key-id", 1, 0xFFFFFFFFu));
    auto k = transport::loadAuthKeys(transport::AuthConfig{c.authKeyFile, c.authKeyId});
    if (!k) throw UsageError("--auth-key: " + k.error().message());
}

std::string authKeyFile(const po::variables_map& vm) {
    transport::UdpConfig c;
    authConfig(vm, c);  // the same checks as every other command's
    return c.authKeyFile;
}
std::uint32_t authKeyId(const po::variables_map& vm) { return vm.count("auth-key-id") ? static_cast<std::uint32_t>(getU64(vm, "auth-key-id", 1, 0xFFFFFFFFu)) : 0; }

NetworkOptions networkOptions(const po::variables_map& vm) {
    const transport::UdpConfig c = socketConfig(vm);
    NetworkOptions n;
    n.interface = vm["interface"].as<std::string>();
    n.ttl = c.ttl;
    n.loopback = c.loop;
    n.rcvbuf = static_cast<std::size_t>(c.rcvBuf);
    n.sndbuf = static_cast<std::size_t>(c.sndBuf);
    n.gso = c.gso;
    n.gro = c.gro;
    n.api = c.api == transport::SocketApi::Uring ? SocketApi::Uring
          : c.api == transport::SocketApi::Dpdk  ? SocketApi::Dpdk
                                                 : SocketApi::Syscalls;
    n.dpdkArgs = c.ealArgs;
    if (vm.count("allow")) n.allow = vm["allow"].as<std::string>();
    n.authKeyFile = c.authKeyFile;
    n.authKeyId = c.authKeyId;
    return n;
}

FaultOptions faultOptions(const po::variables_map& vm) {
    const transport::FaultConfig c = faultConfig(vm);
    FaultOptions f;
    f.loss = c.loss;
    f.burstLoss = c.burstStart;
    f.burstLength = c.burstLength;
    f.reorder = c.reorder;
    f.duplicate = c.duplicate;
    f.corrupt = c.corrupt;
    f.dropTypes = c.dropTypes;
    f.seed = c.seed;
    f.onReceive = c.onReceive;
    f.onSend = c.onSend;
    return f;
}

std::string optionOf(const std::string& command, const std::string& field) {
    // Where one command names a field its own way.
    static const std::map<std::string, std::string> perCommand = {
        {"archiver:windowBytes", "window"}, {"archiver:sizeBytes", "size"}, {"archiver:segmentBytes", "segment"},
        {"archiver:syncIntervalMs", "sync-ms"}, {"archiver:useUring", "no-uring"}, {"archiver:backlogBytes", "backlog"}};
    if (auto it = perCommand.find(command + ":" + field); it != perCommand.end()) return it->second;
    static const std::map<std::string, std::string> special = {
        {"network.authKeyFile", "auth-key"}, {"network.authKeyId", "auth-key-id"}, {"network.loopback", "no-loopback"},
        {"network.api", "transport"}, {"network.gso", "no-gso"}, {"network.gro", "no-gro"},
        {"network.faults", "loss"}, {"network.faults.burstLoss", "burst-loss"}, {"start", "from"}, {"delivery", "mode"},
        {"stateFile", "state"}, {"ringBytes", "ring"}, {"publisherTimeoutS", "publisher-timeout"},
        {"retransmitBytesPerSec", "retransmit-rate"}, {"retransmitBytesPerSecPerHost", "retransmit-rate-per-host"},
        {"nakInitialRttUs", "nak-rtt-us"}, {"reorderBytes", "reorder-buffer"}, {"haEtcd", "ha"}, {"haName", "name"},
        {"haRepl", "repl"}};
    if (auto it = special.find(field); it != special.end()) return it->second;
    std::string f = field;
    for (const char* prefix : {"network.faults.", "network."})
        if (f.rfind(prefix, 0) == 0) {
            f.erase(0, std::string(prefix).size());
            break;
        }
    std::string out;
    for (char ch : f) {
        if (ch >= 'A' && ch <= 'Z') {
            out.push_back('-');
            out.push_back(static_cast<char>(ch - 'A' + 'a'));
        } else {
            out.push_back(ch);
        }
    }
    return out;
}

int apiSetupFailure(const std::string& command, const SetupError& e) {
    std::string message = e.what();
    const std::string prefix = e.field() + ": ";
    if (!e.field().empty() && message.rfind(prefix, 0) == 0) message.erase(0, prefix.size());
    if (e.field() == "network.dpdkArgs") {  // as setupFailure: the EAL arguments after --
        std::fprintf(stderr, "seqcast %s: --transport dpdk (EAL arguments after --): %s\n", command.c_str(), message.c_str());
        return kExitUsage;
    }
    if (e.field().empty()) std::fprintf(stderr, "seqcast %s: %s\n", command.c_str(), message.c_str());
    else std::fprintf(stderr, "seqcast %s: --%s: %s\n", command.c_str(), optionOf(command, e.field()).c_str(), message.c_str());
    // As setupFailure: a value that is not valid, or a resource the option names that cannot be had
    // (in use, missing, not allowed) is a usage error; anything else (a full disk, no memory) is not.
    switch (e.code()) {
        case 0: case EADDRINUSE: case EADDRNOTAVAIL: case EACCES: case ENODEV: case ENOENT: case ENOTDIR:
        case EISDIR: case EROFS: case ENAMETOOLONG: case ELOOP: case EINVAL: case EBUSY:
            return kExitUsage;
        default:
            return 1;
    }
}

void addSocketOptions(po::options_description& d, const char* rcvbufDefault) {
    d.add_options()
        ("interface", po::value<std::string>()->default_value("127.0.0.1"), "interface address for multicast send and joins")
        ("ttl", po::value<std::string>()->default_value("1"), "multicast TTL (0..255)")
        ("no-loopback", "do not loop multicast back to receivers on this host")
        ("rcvbuf", po::value<std::string>()->default_value(rcvbufDefault), "socket receive buffer (raise net.core.rmem_max if clamped)")
        ("sndbuf", po::value<std::string>()->default_value("4M"), "socket send buffer (raise net.core.wmem_max if clamped)")
        ("busy-poll", "spin on non-blocking receive instead of sleeping in poll() (lowest latency, one core busy)")
        ("cpu", po::value<std::string>(), "pin this process to this CPU (sched_setaffinity); pair with --busy-poll")
        ("no-gso", "do not use UDP GSO (by default runs of equal-size datagrams to one destination leave in one system call)")
        ("no-gro", "do not use UDP GRO (by default the kernel may coalesce arriving datagrams; they are split again here)")
        ("transport", po::value<std::string>()->default_value("udp"),
         "udp (recvmmsg/sendmmsg), uring (io_uring: multishot receive into a provided-buffer ring, batched sends; "
         "falls back to udp with a warning where the kernel lacks it) or dpdk (kernel bypass: EAL arguments after --, "
         "our address is --interface ADDR[/PREFIX])")
        ("allow", po::value<std::string>(),
         "receive only from these IPv4 networks, e.g. 10.1.0.0/16,127.0.0.1 (others are dropped and counted as drop_not_allowed)");
    addAuthOptions(d);
}

void pinCpu(const po::variables_map& vm) {
    if (vm.count("cpu") == 0) return;
    const long ncpu = ::sysconf(_SC_NPROCESSORS_ONLN);
    const auto cpu = getU64(vm, "cpu", 0, static_cast<std::uint64_t>(ncpu > 0 ? ncpu - 1 : 0));
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(static_cast<int>(cpu), &set);
    if (::sched_setaffinity(0, sizeof set, &set) != 0)
        throw UsageError("--cpu: cannot pin to CPU " + std::to_string(cpu) + ": " + std::strerror(errno));
}

transport::UdpConfig socketConfig(const po::variables_map& vm) {
    transport::UdpConfig c;
    // --interface ADDR[/PREFIX]: the prefix is the DPDK port's subnet (ARP resolves next hops in it).
    std::string iface = vm["interface"].as<std::string>();
    if (const auto slash = iface.find('/'); slash != std::string::npos) {
        const std::string len = iface.substr(slash + 1);
        iface.resize(slash);
        if (len.empty() || len.size() > 2 || len.find_first_not_of("0123456789") != std::string::npos ||
            std::stoul(len) < 1 || std::stoul(len) > 32)
            throw UsageError("--interface: '" + len + "' is not a prefix length (1..32)");
        c.prefixLen = static_cast<unsigned>(std::stoul(len));
    }
    auto ifaceAddr = transport::parseIpv4(iface);
    if (!ifaceAddr) throw UsageError("--interface: " + ifaceAddr.error().message());
    c.interface = *ifaceAddr;
    c.ttl = static_cast<int>(getU64(vm, "ttl", 0, 255));
    c.loop = vm.count("no-loopback") == 0;
    c.rcvBuf = static_cast<int>(getSize(vm, "rcvbuf", 0, 1u << 30));
    c.sndBuf = static_cast<int>(getSize(vm, "sndbuf", 0, 1u << 30));
    c.gso = vm.count("no-gso") == 0;
    c.gro = vm.count("no-gro") == 0;
    const std::string api = vm["transport"].as<std::string>();
    if (api == "udp") c.api = transport::SocketApi::Syscalls;
    else if (api == "uring") c.api = transport::SocketApi::Uring;
    else if (api == "dpdk") c.api = transport::SocketApi::Dpdk;
    else throw UsageError("--transport: '" + api + "' must be udp, uring or dpdk");
    if (c.api == transport::SocketApi::Dpdk) {
        if (!transport::dpdkAvailable())
            throw UsageError("--transport dpdk: this seqcast was built without DPDK (apt-get install libdpdk-dev, then rebuild)");
        c.ealArgs = gEalArgs;
    } else if (gEalArgsGiven) {
        throw UsageError("arguments after -- are DPDK EAL arguments: they need --transport dpdk");
    }
    authConfig(vm, c);
    if (vm.count("allow")) {
        auto allow = transport::parseAllowlist(vm["allow"].as<std::string>());
        if (!allow) throw UsageError("--allow: " + allow.error().message());
        if (allow->empty()) throw UsageError("--allow: no network given");
        c.allow = std::move(*allow);
    }
    return c;
}

void addFaultOptions(po::options_description& d, const char* defaultDirection) {
    d.add_options()
        ("loss", po::value<std::string>()->default_value("0"), "fault injection: probability a datagram is dropped (0..1)")
        ("burst-loss", po::value<std::string>()->default_value("0"), "probability a burst of --burst-length drops starts (0..1)")
        ("burst-length", po::value<std::string>()->default_value("50"), "datagrams lost per burst (1..1000000)")
        ("reorder", po::value<std::string>()->default_value("0"), "probability a datagram is delayed behind later ones (0..1)")
        ("duplicate", po::value<std::string>()->default_value("0"), "probability a datagram is delivered twice (0..1)")
        ("corrupt", po::value<std::string>()->default_value("0"), "probability one bit of a datagram is flipped (0..1)")
        ("drop-type", po::value<std::string>(),
         "fault injection: drop every datagram of these frame types (comma-separated names or numbers, e.g. END_OF_STREAM)")
        ("fault-seed", po::value<std::string>()->default_value("1"), "seed of the fault injection")
        ("fault-on", po::value<std::string>()->default_value(defaultDirection), "where faults apply: rx, tx or both");
}

transport::FaultConfig faultConfig(const po::variables_map& vm) {
    transport::FaultConfig f;
    f.loss = getDouble(vm, "loss", 0, 1);
    f.burstStart = getDouble(vm, "burst-loss", 0, 1);
    f.burstLength = static_cast<unsigned>(getU64(vm, "burst-length", 1, 1'000'000));
    f.reorder = getDouble(vm, "reorder", 0, 1);
    f.duplicate = getDouble(vm, "duplicate", 0, 1);
    f.corrupt = getDouble(vm, "corrupt", 0, 1);
    f.seed = getU64(vm, "fault-seed", 0, ~std::uint64_t{0});
    if (vm.count("drop-type")) {
        std::string list = vm["drop-type"].as<std::string>();
        std::size_t at = 0;
        for (;;) {
            const std::size_t comma = list.find(',', at);
            const std::string name = list.substr(at, comma == std::string::npos ? std::string::npos : comma - at);
            unsigned t = 0;
            for (unsigned k = 1; k <= wire::kMaxFrameType && t == 0; ++k)
                if (name == wire::frameTypeName(static_cast<wire::FrameType>(k)) || name == std::to_string(k)) t = k;
            if (t == 0) throw UsageError("--drop-type: '" + name + "' is not a frame type (DATA, HEARTBEAT, ..., REPL_SNAPSHOT, or 1.." +
                                         std::to_string(wire::kMaxFrameType) + ")");
            f.dropTypes |= 1u << t;
            if (comma == std::string::npos) break;
            at = comma + 1;
        }
    }
    const std::string on = vm["fault-on"].as<std::string>();
    if (on == "rx") { f.onReceive = true; f.onSend = false; }
    else if (on == "tx") { f.onReceive = false; f.onSend = true; }
    else if (on == "both") { f.onReceive = true; f.onSend = true; }
    else throw UsageError("--fault-on: '" + on + "' must be rx, tx or both");
    return f;
}

Result<std::unique_ptr<transport::Transport>> openTransport(const transport::UdpConfig& udp,
                                                            const transport::FaultConfig& faults,
                                                            const std::string& what) {
    std::vector<std::string> warnings;
    auto t = transport::openTransport(udp, warnings, faults);
    for (const auto& w : warnings) std::fprintf(stderr, "seqcast: warning: %s: %s\n", what.c_str(), w.c_str());
    if (!t) return fail(t.error().wrap(what));
    return std::move(*t);
}

namespace {
std::atomic<bool> gStop{false};
void onSignal(int) { gStop.store(true, std::memory_order_relaxed); }
}  // namespace

void installStopSignals() {
    struct sigaction sa {};
    sa.sa_handler = onSignal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, nullptr);
    sigaction(SIGTERM, &sa, nullptr);
    signal(SIGPIPE, SIG_IGN);
}
bool stopRequested() noexcept { return gStop.load(std::memory_order_relaxed); }
void requestStop() noexcept { gStop.store(true, std::memory_order_relaxed); }

void Json::sep() {
    if (afterKey_) {
        afterKey_ = false;
        return;
    }
    if (!first_.back()) out_ << ',';
    first_.back() = false;
}
Json& Json::begin() {
    sep();
    out_ << '{';
    first_.push_back(true);
    return *this;
}
Json& Json::end() {
    out_ << '}';
    first_.pop_back();
    return *this;
}
Json& Json::beginArray() {
    sep();
    out_ << '[';
    first_.push_back(true);
    return *this;
}
Json& Json::endArray() {
    out_ << ']';
    first_.pop_back();
    return *this;
}
void Json::quote(const std::string& v) {
    out_ << '"';
    for (char ch : v) {
        const auto c = static_cast<unsigned char>(ch);
        if (c == '"' || c == '\\') out_ << '\\' << ch;
        else if (c < 0x20) {
            char buf[8];
            std::snprintf(buf, sizeof buf, "\\u%04x", c);
            out_ << buf;
        } else out_ << ch;
    }
    out_ << '"';
}
Json& Json::key(const std::string& k) {
    sep();
    quote(k);
    out_ << ':';
    afterKey_ = true;
    return *this;
}
Json& Json::str(const std::string& v) {
    sep();
    quote(v);
    return *this;
}
Json& Json::num(double v) {
    sep();
    if (!std::isfinite(v)) out_ << "null";
    else {
        char buf[64];
        std::snprintf(buf, sizeof buf, "%.6g", v);
        out_ << buf;
    }
    return *this;
}
Json& Json::num(std::uint64_t v) {
    sep();
    out_ << v;
    return *this;
}
Json& Json::boolean(bool v) {
    sep();
    out_ << (v ? "true" : "false");
    return *this;
}

namespace {
std::string us(std::uint64_t ns) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.1fus", static_cast<double>(ns) / 1000.0);
    return buf;
}
}  // namespace

std::string latencySummary(const Histogram& h) {
    if (h.count() == 0) return "no samples";
    return "p50=" + us(h.quantile(0.5)) + " p90=" + us(h.quantile(0.9)) + " p99=" + us(h.quantile(0.99)) +
           " p99.9=" + us(h.quantile(0.999)) + " p99.99=" + us(h.quantile(0.9999)) + " max=" + us(h.max());
}

void latencyJson(Json& j, const std::string& key, const Histogram& h) {
    j.key(key).begin();
    j.field("count", h.count());
    j.field("p50_ns", h.quantile(0.5));
    j.field("p90_ns", h.quantile(0.9));
    j.field("p99_ns", h.quantile(0.99));
    j.field("p999_ns", h.quantile(0.999));
    j.field("p9999_ns", h.quantile(0.9999));
    j.field("max_ns", h.max());
    j.end();
}

std::string fmtRate(double v) {
    char buf[32];
    if (v >= 1e6) std::snprintf(buf, sizeof buf, "%.2fM", v / 1e6);
    else if (v >= 1e3) std::snprintf(buf, sizeof buf, "%.1fk", v / 1e3);
    else std::snprintf(buf, sizeof buf, "%.0f", v);
    return buf;
}

bool writeFile(const std::string& path, const std::string& text) {
    std::ofstream out(path, std::ios::trunc);
    if (!out) return false;
    out << text << "\n";
    return static_cast<bool>(out);
}

}  // namespace seqcast::tools
