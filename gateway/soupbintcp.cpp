#include "gateway/soupbintcp.h"

#include <sys/stat.h>

#include <cstring>
#include <fstream>
#include <sstream>

namespace seqcast::gateway::soup {

namespace {

std::string_view fieldOf(std::span<const std::byte> p, std::size_t at, std::size_t len) {
    return {reinterpret_cast<const char*>(p.data()) + at, len};
}

std::string trimmed(std::string_view s) {
    while (!s.empty() && s.front() == ' ') s.remove_prefix(1);
    while (!s.empty() && s.back() == ' ') s.remove_suffix(1);
    return std::string(s);
}

bool printable(std::string_view s) {
    for (char c : s)
        if (static_cast<unsigned char>(c) < 0x21 || static_cast<unsigned char>(c) > 0x7E) return false;
    return true;
}

void appendPadded(std::vector<std::byte>& out, std::string_view s, std::size_t width, bool left) {
    const std::size_t n = std::min(s.size(), width);
    if (left) out.insert(out.end(), width - n, std::byte{' '});
    for (std::size_t i = 0; i < n; ++i) out.push_back(static_cast<std::byte>(s[i]));
    if (!left) out.insert(out.end(), width - n, std::byte{' '});
}

}  // namespace

Result<LoginRequest> parseLogin(std::span<const std::byte> p) {
    if (p.size() != kLoginPayload)
        return failInvalid("a login request holds " + std::to_string(kLoginPayload) + " bytes, not " + std::to_string(p.size()));
    LoginRequest r;
    r.username = trimmed(fieldOf(p, 0, kUsernameLength));
    r.password = trimmed(fieldOf(p, kUsernameLength, kPasswordLength));
    r.session = trimmed(fieldOf(p, kUsernameLength + kPasswordLength, kSessionLength));
    const std::string seq = trimmed(fieldOf(p, kUsernameLength + kPasswordLength + kSessionLength, kSequenceLength));
    if (!printable(r.username) || !printable(r.password) || !printable(r.session))
        return failInvalid("the login's username, password or session holds a space or a non-printable character");
    if (seq.empty()) return failInvalid("the login's sequence number is blank");
    std::uint64_t v = 0;
    for (char c : seq) {
        if (c < '0' || c > '9') return failInvalid("the login's sequence number '" + seq + "' is not decimal digits");
        const std::uint64_t d = static_cast<std::uint64_t>(c - '0');
        if (v > (~std::uint64_t{0} - d) / 10) return failInvalid("the login's sequence number " + seq + " does not fit 64 bits");
        v = v * 10 + d;
    }
    r.sequence = v;
    return r;
}

void appendPacket(std::vector<std::byte>& out, char type, std::span<const std::byte> payload) {
    const std::size_t len = payload.size() + 1;
    out.push_back(static_cast<std::byte>(len >> 8));
    out.push_back(static_cast<std::byte>(len & 0xFF));
    out.push_back(static_cast<std::byte>(type));
    out.insert(out.end(), payload.begin(), payload.end());
}

std::vector<std::byte> encodeLogin(std::string_view user, std::string_view password, std::string_view session, std::uint64_t seq) {
    std::vector<std::byte> payload;
    appendPadded(payload, user, kUsernameLength, false);
    appendPadded(payload, password, kPasswordLength, false);
    appendPadded(payload, session, kSessionLength, false);
    appendPadded(payload, std::to_string(seq), kSequenceLength, true);
    std::vector<std::byte> out;
    appendPacket(out, 'L', payload);
    return out;
}

void appendLoginAccepted(std::vector<std::byte>& out, std::string_view session, std::uint64_t nextSeq) {
    std::vector<std::byte> payload;
    payload.reserve(kSessionLength + kSequenceLength);
    appendPadded(payload, session, kSessionLength, true);
    appendPadded(payload, std::to_string(nextSeq), kSequenceLength, true);
    appendPacket(out, 'A', payload);
}

void appendLoginRejected(std::vector<std::byte>& out, char reason) {
    const std::byte r{static_cast<unsigned char>(reason)};
    appendPacket(out, 'J', std::span<const std::byte>(&r, 1));
}

bool Framer::next(Packet& p) {
    if (!error_.empty()) return false;
    if (pos_ > 0 && pos_ >= buf_.size() / 2) {  // keep the buffer from growing: drop what was read
        buf_.erase(buf_.begin(), buf_.begin() + static_cast<std::ptrdiff_t>(pos_));
        pos_ = 0;
    }
    const std::size_t have = buf_.size() - pos_;
    if (have < 2) return false;
    const std::size_t len = (std::to_integer<std::size_t>(buf_[pos_]) << 8) | std::to_integer<std::size_t>(buf_[pos_ + 1]);
    if (len == 0) {
        error_ = "a packet of length 0 (it must hold its type)";
        return false;
    }
    if (len - 1 > max_) {
        error_ = "a packet of " + std::to_string(len - 1) + " payload bytes, more than the " + std::to_string(max_) + " accepted";
        return false;
    }
    if (have < 2 + len) return false;
    p.type = static_cast<char>(buf_[pos_ + 2]);
    p.payload = std::span<const std::byte>(buf_.data() + pos_ + 3, len - 1);
    pos_ += 2 + len;
    return true;
}

bool Users::check(const std::string& user, const std::string& password) const {
    auto it = byName.find(user);
    const std::string& want = it == byName.end() ? std::string(kPasswordLength, '\0') : it->second;
    // Every byte of a padded copy is compared, whatever matched.
    unsigned diff = it == byName.end() ? 1u : 0u;
    diff |= static_cast<unsigned>(want.size() ^ password.size());
    for (std::size_t i = 0; i < kPasswordLength; ++i) {
        const char a = i < want.size() ? want[i] : ' ', b = i < password.size() ? password[i] : ' ';
        diff |= static_cast<unsigned>(static_cast<unsigned char>(a) ^ static_cast<unsigned char>(b));
    }
    return diff == 0;
}

Result<Users> parseUsers(std::string_view text, const std::string& what) {
    Users u;
    std::istringstream in{std::string(text)};
    std::string line;
    for (int n = 1; std::getline(in, line); ++n) {
        const auto hash = line.find('#');
        if (hash != std::string::npos) line.resize(hash);
        std::istringstream ls(line);
        std::string name, password, extra;
        if (!(ls >> name)) continue;
        const std::string at = what + " line " + std::to_string(n) + ": ";
        if (!(ls >> password)) return failInvalid(at + "'" + name + "' has no password");
        if (ls >> extra) return failInvalid(at + "more than a username and a password");
        if (name.size() > kUsernameLength || !printable(name))
            return failInvalid(at + "a username is 1.." + std::to_string(kUsernameLength) + " printable characters");
        if (password.size() > kPasswordLength || !printable(password))
            return failInvalid(at + "a password is 1.." + std::to_string(kPasswordLength) + " printable characters");
        if (!u.byName.emplace(name, password).second) return failInvalid(at + "user '" + name + "' again");
    }
    if (u.byName.empty()) return failInvalid(what + " names no user");
    return u;
}

Result<Users> loadUsers(const std::string& path) {
    struct stat st{};
    if (::stat(path.c_str(), &st) != 0) return failErrno(path);
    if (!S_ISREG(st.st_mode)) return failInvalid(path + " is not a regular file");
    if ((st.st_mode & 077) != 0) {
        char mode[8];
        std::snprintf(mode, sizeof mode, "%03o", static_cast<unsigned>(st.st_mode & 0777));
        return failInvalid(path + " has mode " + mode + ": a password file must not be readable by group or others (chmod 600)");
    }
    std::ifstream f(path);
    if (!f) return failErrno("open " + path);
    std::stringstream ss;
    ss << f.rdbuf();
    return parseUsers(ss.str(), path);
}

}  // namespace seqcast::gateway::soup
