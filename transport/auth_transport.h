// Authenticated frames: every datagram a process sends carries a 32-byte trailer: the key id
// (u32 LE), a 96-bit nonce (a random per-process prefix and a counter: never reused under a key)
// and the 16-byte Poly1305 tag of ChaCha20-Poly1305 (IETF, libsodium) with an empty message and
// the datagram, key id and nonce as associated data. Every datagram a process receives is checked
// before anything parses it; one that is forged, altered, too short or under an unknown key is
// dropped and counted. Keys come from a
// file only its owner may read:
//     # id  key (64 hex digits = 32 bytes)
//     1 9f0c...e1
//     2 77a1...0b
// Senders use --auth-key-id (default: the highest id); receivers accept every id in the file, so
// a key is rotated by adding the new id everywhere, moving senders to it, then removing the old
// one. The file is re-read when it changes (checked once a second).
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "fabric/counters.h"
#include "fabric/result.h"
#include "transport/transport.h"

namespace seqcast::transport {

inline constexpr std::size_t kAuthTrailer = 32;  // key id (4) + nonce (12) + tag (16)
inline constexpr std::size_t kAuthKeyBytes = 32;

struct AuthKeys {
    std::map<std::uint32_t, std::array<unsigned char, kAuthKeyBytes>> keys;
    std::uint32_t sendId = 0;
};

struct AuthConfig {
    std::string path;
    std::uint32_t sendId = 0;  // 0: the highest id in the file
    std::uint64_t reloadCheckNs = 1'000'000'000;  // how often the file's mtime is looked at
};

// Reads and checks a key file: a regular file, no access for group or others, one "ID HEX" per
// line (# comments, blank lines), ids 1..2^32-1 unique, keys exactly 32 bytes; sendId present.
Result<AuthKeys> loadAuthKeys(const AuthConfig& cfg);
// Whether libsodium initialised (it is needed for any of this).
Status authAvailable();

class AuthTransport final : public Transport {
public:
    AuthTransport(std::unique_ptr<Transport> inner, AuthConfig cfg, AuthKeys keys, Counters* counters = nullptr);
    std::size_t recvBurst(std::span<RxSlot> out) noexcept override;
    std::size_t sendBurst(std::span<const TxItem> items) noexcept override;
    int waitFd() const noexcept override { return inner_->waitFd(); }
    Endpoint local() const noexcept override { return inner_->local(); }
    const TransportStats& stats() const noexcept override { return inner_->stats(); }
    const char* kind() const noexcept override { return inner_->kind(); }

    struct AuthStats {
        std::uint64_t verified = 0;
        std::uint64_t badMac = 0;      // forged or altered, or too short to carry a trailer
        std::uint64_t unknownKey = 0;
        std::uint64_t signed_ = 0;
        std::uint64_t reloads = 0;
        std::uint64_t reloadErrors = 0;
    };
    const AuthStats& authStats() const noexcept { return auth_; }

private:
    void maybeReload() noexcept;
    std::size_t verify(std::span<RxSlot> out) noexcept;  // keeps the genuine ones at the front
    std::unique_ptr<Transport> inner_;
    AuthConfig cfg_;
    AuthKeys keys_;
    Counters* counters_;
    AuthStats auth_;
    std::vector<std::byte> arena_;
    std::vector<TxItem> signed_;
    std::int64_t mtimeNs_ = 0;
    std::uint64_t noncePrefix_ = 0;  // random per transport
    std::uint32_t nonceCount_ = 0;
    std::uint64_t nextCheckNs_ = 0;
};

}  // namespace seqcast::transport
