// SoupBinTCP 3.00 (a TCP session that logs in at a sequence number, replays, then streams live):
// packet framing, the login request, and the users file. Pure code, no I/O but reading the file.
//
//   packet           length (2, big-endian: type + payload) | type (1 ASCII) | payload
//   client->server   'L' login request: username (6) | password (10) | requested session (10) |
//                        requested sequence number (20, ASCII decimal); 'R' client heartbeat;
//                    'O' logout request; 'U' unsequenced data
//   server->client   'A' login accepted: session (10) | sequence number (20, the next 'S');
//                    'J' login rejected: reason ('A' not authorized, 'S' session not available);
//                    'S' sequenced data; 'H' server heartbeat; 'Z' end of session; '+' debug
//
// Alpha fields are left-justified and space padded on the right, numeric ones right-justified and
// space padded on the left; the login accepted's session is padded on the left, as the spec's
// field description says. Parsing trims spaces on both sides, so either padding is accepted.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "fabric/result.h"

namespace seqcast::gateway::soup {

inline constexpr std::size_t kUsernameLength = 6;
inline constexpr std::size_t kPasswordLength = 10;
inline constexpr std::size_t kSessionLength = 10;
inline constexpr std::size_t kSequenceLength = 20;
inline constexpr std::size_t kLoginPayload = kUsernameLength + kPasswordLength + kSessionLength + kSequenceLength;  // 46
inline constexpr std::size_t kMaxPayload = 0xFFFF - 1;  // the length field counts the type byte

struct LoginRequest {
    std::string username;  // trimmed
    std::string password;
    std::string session;   // empty: the current session
    std::uint64_t sequence = 0;  // 0: from the next message on; 1: the session's first
};
// The payload of an 'L' packet (exactly 46 bytes). Refuses a sequence number that is not 1..20
// decimal digits (spaces around allowed) or does not fit 64 bits.
Result<LoginRequest> parseLogin(std::span<const std::byte> payload);
// An 'L' packet (with its length and type), for tests and clients.
std::vector<std::byte> encodeLogin(std::string_view user, std::string_view password, std::string_view session, std::uint64_t seq);

// Appends a packet: length, type, payload.
void appendPacket(std::vector<std::byte>& out, char type, std::span<const std::byte> payload = {});
void appendLoginAccepted(std::vector<std::byte>& out, std::string_view session, std::uint64_t nextSeq);
void appendLoginRejected(std::vector<std::byte>& out, char reason);

// Splits a byte stream into packets. feed() what arrived, then next() until it returns false.
class Framer {
public:
    explicit Framer(std::size_t maxPayload = kMaxPayload) : max_(maxPayload) {}
    void feed(std::span<const std::byte> bytes) { buf_.insert(buf_.end(), bytes.begin(), bytes.end()); }
    struct Packet {
        char type;
        std::span<const std::byte> payload;  // valid until the next feed()/next()
    };
    // False when no whole packet is buffered; error() is set when the stream is broken (a length of
    // 0, or a payload longer than the limit): the connection must be dropped.
    bool next(Packet& p);
    const std::string& error() const noexcept { return error_; }
    std::size_t buffered() const noexcept { return buf_.size() - pos_; }

private:
    std::size_t max_;
    std::vector<std::byte> buf_;
    std::size_t pos_ = 0;
    std::string error_;
};

// Users: one "USERNAME PASSWORD" per line ('#' comments, blank lines allowed); usernames are 1..6
// and passwords 1..10 printable ASCII characters without spaces. The file must be a regular file
// with no permissions for group or others (mode 600 or stricter): a readable password file is
// refused, naming its mode.
struct Users {
    std::unordered_map<std::string, std::string> byName;
    // Compares in time independent of where the password differs.
    bool check(const std::string& user, const std::string& password) const;
};
Result<Users> loadUsers(const std::string& path);
Result<Users> parseUsers(std::string_view text, const std::string& what);

}  // namespace seqcast::gateway::soup
