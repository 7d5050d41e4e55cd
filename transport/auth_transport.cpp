#include "transport/auth_transport.h"

#include <sodium.h>
#include <sys/stat.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <mutex>
#include <sstream>

#include "fabric/clock.h"

namespace seqcast::transport {

namespace {

std::int64_t mtimeOf(const std::string& path) {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) return -1;
    return static_cast<std::int64_t>(st.st_mtim.tv_sec) * 1'000'000'000 + st.st_mtim.tv_nsec;
}

// The tag over ad[0, len): ChaCha20-Poly1305 with an empty message.
void tag(unsigned char out[16], const unsigned char* key, const std::byte* ad, std::size_t len, const std::byte* nonce) {
    unsigned long long macLen = 0;
    unsigned char none[1] = {0};  // the (empty) message and ciphertext
    crypto_aead_chacha20poly1305_ietf_encrypt_detached(none, out, &macLen, none, 0, reinterpret_cast<const unsigned char*>(ad),
                                                       len, nullptr, reinterpret_cast<const unsigned char*>(nonce), key);
}

bool tagOk(const unsigned char* want, const unsigned char* key, const std::byte* ad, std::size_t len, const std::byte* nonce) {
    unsigned char none[1] = {0};
    return crypto_aead_chacha20poly1305_ietf_decrypt_detached(none, nullptr, none, 0, want,
                                                              reinterpret_cast<const unsigned char*>(ad), len,
                                                              reinterpret_cast<const unsigned char*>(nonce), key) == 0;
}

}  // namespace

Status authAvailable() {
    static std::once_flag once;
    static int rc = -1;
    std::call_once(once, [] { rc = sodium_init(); });
    if (rc < 0) return failInvalid("libsodium failed to initialise");
    return {};
}

Result<AuthKeys> loadAuthKeys(const AuthConfig& cfg) {
    if (auto ok = authAvailable(); !ok) return fail(ok.error());
    struct stat st {};
    if (::stat(cfg.path.c_str(), &st) != 0) return failErrno("key file " + cfg.path);
    if (!S_ISREG(st.st_mode)) return failInvalid("key file " + cfg.path + ": not a regular file");
    if ((st.st_mode & 077) != 0) {
        char mode[8];
        std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
        return failInvalid("key file " + cfg.path + ": mode " + mode + " lets group or others read it; chmod 600 it");
    }
    std::ifstream in(cfg.path);
    if (!in) return failErrno("key file " + cfg.path);
    AuthKeys k;
    std::string line;
    for (int n = 1; std::getline(in, line); ++n) {
        const auto hash = line.find('#');
        if (hash != std::string::npos) line.resize(hash);
        std::istringstream ls(line);
        std::string idText, hex, extra;
        if (!(ls >> idText)) continue;  // blank
        const std::string where = "key file " + cfg.path + " line " + std::to_string(n);
        if (!(ls >> hex) || (ls >> extra)) return failInvalid(where + ": expected 'ID HEXKEY'");
        if (idText.find_first_not_of("0123456789") != std::string::npos || idText.size() > 10)
            return failInvalid(where + ": key id '" + idText + "' is not a number 1..4294967295");
        const unsigned long long id = std::stoull(idText);
        if (id == 0 || id > 0xFFFFFFFFull) return failInvalid(where + ": key id must be 1..4294967295");
        std::array<unsigned char, kAuthKeyBytes> key{};
        std::size_t got = 0;
        if (hex.size() != 2 * kAuthKeyBytes ||
            sodium_hex2bin(key.data(), key.size(), hex.c_str(), hex.size(), nullptr, &got, nullptr) != 0 || got != kAuthKeyBytes)
            return failInvalid(where + ": the key must be 64 hex digits (32 bytes)");
        if (!k.keys.emplace(static_cast<std::uint32_t>(id), key).second)
            return failInvalid(where + ": key id " + idText + " appears twice");
        sodium_memzero(key.data(), key.size());
    }
    if (k.keys.empty()) return failInvalid("key file " + cfg.path + ": no keys");
    k.sendId = cfg.sendId != 0 ? cfg.sendId : k.keys.rbegin()->first;
    if (k.keys.count(k.sendId) == 0)
        return failInvalid("key file " + cfg.path + ": no key with id " + std::to_string(k.sendId));
    return k;
}

AuthTransport::AuthTransport(std::unique_ptr<Transport> inner, AuthConfig cfg, AuthKeys keys, Counters* counters)
    : inner_(std::move(inner)), cfg_(std::move(cfg)), keys_(std::move(keys)), counters_(counters) {
    mtimeNs_ = mtimeOf(cfg_.path);
    nextCheckNs_ = monoNs() + cfg_.reloadCheckNs;
    randombytes_buf(&noncePrefix_, sizeof noncePrefix_);
}

void AuthTransport::maybeReload() noexcept {
    const std::uint64_t now = monoNs();
    if (now < nextCheckNs_) return;
    nextCheckNs_ = now + cfg_.reloadCheckNs;
    const std::int64_t m = mtimeOf(cfg_.path);
    if (m == mtimeNs_) return;
    mtimeNs_ = m;
    try {
        auto k = loadAuthKeys(cfg_);
        if (!k) {
            ++auth_.reloadErrors;
            std::fprintf(stderr, "seqcast: warning: keeping the previous keys: %s\n", k.error().message().c_str());
            return;
        }
        keys_ = std::move(*k);
        ++auth_.reloads;
    } catch (const std::exception&) {
        ++auth_.reloadErrors;
    }
}

std::size_t AuthTransport::recvBurst(std::span<RxSlot> out) noexcept {
    maybeReload();
    // A burst that was all forgeries says nothing about what waits behind it: look again (a
    // few times, so that a flood cannot keep us here).
    std::size_t k = 0;
    for (int round = 0; round < 4 && k == 0; ++round) {
        const std::size_t n = inner_->recvBurst(out);
        if (n == 0) break;
        k = verify(out.first(n));
    }
    return k;
}

std::size_t AuthTransport::verify(std::span<RxSlot> out) noexcept {
    const std::size_t n = out.size();
    std::size_t k = 0;
    for (std::size_t i = 0; i < n; ++i) {
        const RxSlot& s = out[i];
        if (s.len < kAuthTrailer) {
            ++auth_.badMac;
            if (counters_ != nullptr) counters_->add(Counter::DropBadAuth);
            continue;
        }
        const std::size_t body = s.len - kAuthTrailer;
        std::uint32_t id = 0;
        for (int b = 3; b >= 0; --b) id = (id << 8) | static_cast<std::uint8_t>(s.data[body + static_cast<std::size_t>(b)]);
        const auto key = keys_.keys.find(id);
        if (key == keys_.keys.end()) {
            ++auth_.unknownKey;
            if (counters_ != nullptr) counters_->add(Counter::DropUnknownKey);
            continue;
        }
        // Associated data: the datagram, the key id and the nonce; then the tag.
        if (!tagOk(reinterpret_cast<const unsigned char*>(s.data + body + 16), key->second.data(), s.data, body + 16, s.data + body + 4)) {
            ++auth_.badMac;
            if (counters_ != nullptr) counters_->add(Counter::DropBadAuth);
            continue;
        }
        ++auth_.verified;
        out[k] = s;
        out[k].len = static_cast<std::uint32_t>(body);
        ++k;
    }
    return k;
}

std::size_t AuthTransport::sendBurst(std::span<const TxItem> items) noexcept {
    maybeReload();
    const auto key = keys_.keys.find(keys_.sendId);
    if (key == keys_.keys.end()) return 0;  // cannot happen: loadAuthKeys checks it
    std::size_t need = 0;
    for (const TxItem& t : items) need += t.len + kAuthTrailer;
    try {
        if (arena_.size() < need) arena_.resize(need);  // grows to the largest burst once
        if (signed_.size() < items.size()) signed_.resize(items.size());
    } catch (...) {
        return 0;
    }
    std::size_t at = 0;
    const std::uint32_t id = keys_.sendId;
    for (std::size_t i = 0; i < items.size(); ++i) {
        std::byte* p = arena_.data() + at;
        const std::uint32_t len = items[i].len;
        std::memcpy(p, items[i].data, len);
        for (int b = 0; b < 4; ++b) p[len + static_cast<std::size_t>(b)] = static_cast<std::byte>(id >> (8 * b));
        const std::uint32_t count = nonceCount_++;
        if (nonceCount_ == 0) randombytes_buf(&noncePrefix_, sizeof noncePrefix_);  // 2^32 datagrams: a fresh prefix
        std::memcpy(p + len + 4, &noncePrefix_, 8);
        std::memcpy(p + len + 12, &count, 4);
        tag(reinterpret_cast<unsigned char*>(p + len + 16), key->second.data(), p, len + 16, p + len + 4);
        signed_[i] = TxItem{p, static_cast<std::uint32_t>(items[i].len + kAuthTrailer), items[i].to};
        at += items[i].len + kAuthTrailer;
    }
    const std::size_t taken = inner_->sendBurst(std::span<const TxItem>(signed_.data(), items.size()));
    auth_.signed_ += taken;
    return taken;
}


}  // namespace seqcast::transport
