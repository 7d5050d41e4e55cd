// libFuzzer target: `--config FILE`, the INI path of tools::parseCommandLine, with the options the
// subcommands share (socket and fault injection) plus numbers, sizes and endpoints read through
// getU64 / getDouble / getSize / getEndpoint / getIpv4 as the tools read them. The input is the
// file. Bad input must end as the documented errors: parseCommandLine's exit code 2 (it reports
// boost::program_options errors and UsageError itself) or a UsageError from a checked read. Any
// other exception, a crash or UB is a bug.
// Built and run by tests/fuzz/run_fuzz.sh.
#include <fcntl.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <iostream>
#include <streambuf>
#include <string>
#include <vector>

#include "tools/common.h"

using namespace seqcast;
using namespace seqcast::tools;

namespace {

struct NullBuf : std::streambuf {
    int overflow(int c) override { return c; }
    std::streamsize xsputn(const char*, std::streamsize n) override { return n; }
};

std::string configPath() {
    const char* dir = std::getenv("SEQCAST_FUZZ_TMP");
    if (dir == nullptr) dir = ::access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    return std::string(dir) + "/seqcast-fuzz-config-" + std::to_string(::getpid()) + ".ini";
}

void readAll(const po::variables_map& vm) {
    (void)socketConfig(vm);
    (void)faultConfig(vm);
    (void)getU64(vm, "mtu", 128, 65507);
    (void)getSize(vm, "ring", 1u << 20, 1ull << 40);
    (void)getEndpoint(vm, "group");
    (void)getEndpoint(vm, "bind", true);
    (void)getDouble(vm, "rate", 0, 1e12);
    (void)getU64(vm, "stream", 1, 0xFFFFFFFFu);
    if (vm.count("cpu") != 0) (void)getU64(vm, "cpu", 0, 1);  // not pinCpu: that would pin the fuzzer
    if (vm.count("archiver") != 0) (void)getEndpoint(vm, "archiver");
    for (const auto& s : vm["peer"].as<std::vector<std::string>>()) (void)transport::parseEndpoint(s);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    static const std::string path = configPath();
    {
        const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (fd < 0 || ::write(fd, data, size) != static_cast<ssize_t>(size) || ::close(fd) != 0) std::abort();
    }
    po::options_description opts("fuzz");
    addSocketOptions(opts);
    addFaultOptions(opts, "rx");
    opts.add_options()
        ("mtu", po::value<std::string>()->default_value("1408"), "")
        ("ring", po::value<std::string>()->default_value("64M"), "")
        ("group", po::value<std::string>()->default_value("239.1.1.1:40001"), "")
        ("bind", po::value<std::string>()->default_value("0.0.0.0:0"), "")
        ("archiver", po::value<std::string>(), "")
        ("rate", po::value<std::string>()->default_value("0"), "")
        ("stream", po::value<std::string>()->default_value("1"), "")
        ("peer", po::value<std::vector<std::string>>()->multitoken()->default_value({}, ""), "")
        ("verbose,v", po::bool_switch(), "");
    po::variables_map vm;
    std::string a0 = "seqcast", a1 = "--config", a2 = path;
    char* argv[] = {a0.data(), a1.data(), a2.data(), nullptr};
    static NullBuf null;
    std::streambuf* err = std::cerr.rdbuf(&null);
    std::streambuf* out = std::cout.rdbuf(&null);
    const CommandInfo info{"fuzz", "config file fuzzing", ""};
    try {
        const auto rc = parseCommandLine(info, 3, argv, opts, vm);
        if (rc && *rc != kExitUsage) std::abort();
        if (!rc) readAll(vm);
    } catch (const UsageError&) {
        // a checked read refused a value: documented
    } catch (const std::exception& e) {
        std::cerr.rdbuf(err);
        std::fprintf(stderr, "undocumented exception: %s\n", e.what());
        std::abort();
    }
    std::cerr.rdbuf(err);
    std::cout.rdbuf(out);
    return 0;
}
