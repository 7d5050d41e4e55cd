#include "tools/process.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <thread>

#include "fabric/clock.h"

namespace seqcast::tools {

pid_t spawnSelf(const std::vector<std::string>& args, const std::string& outPath, const std::string& errPath) {
    std::vector<std::string> full;
    full.push_back("seqcast");
    full.insert(full.end(), args.begin(), args.end());
    std::vector<char*> argv;
    for (auto& a : full) argv.push_back(a.data());
    argv.push_back(nullptr);
    const pid_t pid = ::fork();
    if (pid < 0) return -1;
    if (pid == 0) {
        auto redirect = [](const std::string& path, int fd) {
            if (path.empty()) return;
            const int f = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
            if (f >= 0) {
                ::dup2(f, fd);
                ::close(f);
            }
        };
        redirect(outPath, 1);
        redirect(errPath, 2);
        ::execv("/proc/self/exe", argv.data());
        ::_exit(127);
    }
    return pid;
}

int waitFor(pid_t pid, std::uint64_t timeoutMs) {
    const std::uint64_t end = monoNs() + timeoutMs * 1'000'000ull;
    for (;;) {
        int st = 0;
        const pid_t r = ::waitpid(pid, &st, WNOHANG);
        if (r == pid) return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        if (r < 0) return -1;
        if (monoNs() >= end) return -1;
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
}

int stopChild(pid_t pid, int sig, std::uint64_t graceMs) {
    ::kill(pid, sig);
    int rc = waitFor(pid, graceMs);
    if (rc == -1) {
        ::kill(pid, SIGKILL);
        rc = waitFor(pid, 5000);
    }
    return rc;
}

std::string readFileText(const std::string& path) {
    std::ifstream in(path);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

double jsonNumber(const std::string& text, const std::string& key, std::size_t from) {
    const std::string k = "\"" + key + "\":";
    const auto at = text.find(k, from);
    if (at == std::string::npos) return -1;
    return std::strtod(text.c_str() + at + k.size(), nullptr);
}

std::string jsonString(const std::string& text, const std::string& key) {
    const std::string k = "\"" + key + "\":\"";
    const auto at = text.find(k);
    if (at == std::string::npos) return {};
    const auto end = text.find('"', at + k.size());
    return text.substr(at + k.size(), end - at - k.size());
}

}  // namespace seqcast::tools
