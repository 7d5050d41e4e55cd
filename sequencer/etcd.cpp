#include "sequencer/etcd.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstring>

#include <nlohmann/json.hpp>

namespace seqcast::sequencer {

using json = nlohmann::json;

namespace {

constexpr char kB64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

std::uint64_t steadyMs() {
    return static_cast<std::uint64_t>(
        std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now().time_since_epoch()).count());
}

struct Fd {
    int fd = -1;
    ~Fd() {
        if (fd >= 0) ::close(fd);
    }
};

// Waits until fd is ready for `events` or the deadline passes.
bool waitFor(int fd, short events, std::uint64_t deadlineMs) {
    for (;;) {
        const std::uint64_t now = steadyMs();
        if (now >= deadlineMs) return false;
        pollfd p{fd, events, 0};
        const int r = ::poll(&p, 1, static_cast<int>(deadlineMs - now));
        if (r > 0) return true;
        if (r == 0) return false;
        if (errno != EINTR) return false;
    }
}

std::int64_t num(const json& j, const char* key) {
    if (!j.contains(key)) return 0;  // etcd omits zero values
    const json& v = j.at(key);
    if (v.is_string()) return std::stoll(v.get<std::string>());
    if (v.is_number_integer()) return v.get<std::int64_t>();
    throw std::runtime_error(std::string("field ") + key + " is not a number");
}

EtcdKv kvFrom(const json& j) {
    EtcdKv kv;
    auto key = base64Decode(j.value("key", std::string()));
    auto value = base64Decode(j.value("value", std::string()));
    if (!key || !value) throw std::runtime_error("bad base64 in a key-value");
    kv.key = std::move(*key);
    kv.value = std::move(*value);
    kv.createRevision = num(j, "create_revision");
    kv.modRevision = num(j, "mod_revision");
    kv.version = num(j, "version");
    kv.lease = num(j, "lease");
    return kv;
}

// The smallest key greater than every key with this prefix (etcd's range_end for a prefix).
std::string prefixEnd(std::string p) {
    while (!p.empty()) {
        auto& c = p.back();
        if (static_cast<unsigned char>(c) < 0xFF) {
            c = static_cast<char>(static_cast<unsigned char>(c) + 1);
            return p;
        }
        p.pop_back();
    }
    return std::string(1, '\0');
}

json opJson(const EtcdOp& op) {
    json j;
    switch (op.kind) {
        case EtcdOp::Kind::Put: {
            json put{{"key", base64Encode(op.key)}, {"value", base64Encode(op.value)}};
            if (op.lease != 0) put["lease"] = std::to_string(op.lease);
            j["request_put"] = put;
            break;
        }
        case EtcdOp::Kind::Delete: j["request_delete_range"] = json{{"key", base64Encode(op.key)}}; break;
        case EtcdOp::Kind::Range: j["request_range"] = json{{"key", base64Encode(op.key)}}; break;
    }
    return j;
}

json compareJson(const EtcdCompare& c) {
    static const char* const kOps[] = {"EQUAL", "NOT_EQUAL", "GREATER", "LESS"};
    json j{{"key", base64Encode(c.key)}, {"result", kOps[static_cast<int>(c.op)]}};
    switch (c.target) {
        case EtcdCompare::Target::Version:
            j["target"] = "VERSION";
            j["version"] = std::to_string(c.number);
            break;
        case EtcdCompare::Target::ModRevision:
            j["target"] = "MOD";
            j["mod_revision"] = std::to_string(c.number);
            break;
        case EtcdCompare::Target::CreateRevision:
            j["target"] = "CREATE";
            j["create_revision"] = std::to_string(c.number);
            break;
        case EtcdCompare::Target::Value:
            j["target"] = "VALUE";
            j["value"] = base64Encode(c.value);
            break;
    }
    return j;
}

}  // namespace

std::string base64Encode(const std::string& in) {
    std::string out;
    out.reserve((in.size() + 2) / 3 * 4);
    std::size_t i = 0;
    for (; i + 2 < in.size(); i += 3) {
        const std::uint32_t v = (static_cast<std::uint8_t>(in[i]) << 16) | (static_cast<std::uint8_t>(in[i + 1]) << 8) |
                                static_cast<std::uint8_t>(in[i + 2]);
        out += kB64[v >> 18];
        out += kB64[(v >> 12) & 63];
        out += kB64[(v >> 6) & 63];
        out += kB64[v & 63];
    }
    if (i + 1 == in.size()) {
        const std::uint32_t v = static_cast<std::uint8_t>(in[i]) << 16;
        out += kB64[v >> 18];
        out += kB64[(v >> 12) & 63];
        out += "==";
    } else if (i + 2 == in.size()) {
        const std::uint32_t v = (static_cast<std::uint8_t>(in[i]) << 16) | (static_cast<std::uint8_t>(in[i + 1]) << 8);
        out += kB64[v >> 18];
        out += kB64[(v >> 12) & 63];
        out += kB64[(v >> 6) & 63];
        out += '=';
    }
    return out;
}

std::optional<std::string> base64Decode(const std::string& in) {
    if (in.size() % 4 != 0) return std::nullopt;
    std::string out;
    out.reserve(in.size() / 4 * 3);
    for (std::size_t i = 0; i < in.size(); i += 4) {
        std::uint32_t v = 0;
        int pad = 0;
        for (std::size_t k = 0; k < 4; ++k) {
            const char c = in[i + k];
            std::uint32_t d = 0;
            if (c == '=') {
                if (i + 4 != in.size() || k < 2) return std::nullopt;
                ++pad;
            } else {
                if (pad != 0) return std::nullopt;
                const char* p = std::strchr(kB64, c);
                if (p == nullptr || c == '\0') return std::nullopt;
                d = static_cast<std::uint32_t>(p - kB64);
            }
            v = (v << 6) | d;
        }
        out += static_cast<char>(v >> 16);
        if (pad < 2) out += static_cast<char>((v >> 8) & 0xFF);
        if (pad < 1) out += static_cast<char>(v & 0xFF);
    }
    return out;
}

Result<EtcdClient> EtcdClient::create(const std::string& endpoints, std::uint32_t timeoutMs) {
    EtcdClient c;
    c.timeoutMs_ = timeoutMs;
    std::size_t pos = 0;
    while (pos <= endpoints.size()) {
        const std::size_t comma = std::min(endpoints.find(',', pos), endpoints.size());
        std::string t = endpoints.substr(pos, comma - pos);
        pos = comma + 1;
        if (t.empty()) continue;
        Endpoint e;
        e.text = t;
        if (t.rfind("http://", 0) == 0) t = t.substr(7);
        else if (t.find("://") != std::string::npos) return failInvalid("etcd endpoint " + e.text + ": only http:// is supported");
        if (!t.empty() && t.back() == '/') t.pop_back();
        const std::size_t colon = t.rfind(':');
        if (colon == std::string::npos || colon == 0) return failInvalid("etcd endpoint " + e.text + ": want HOST:PORT");
        e.host = t.substr(0, colon);
        const std::string port = t.substr(colon + 1);
        if (port.empty() || port.size() > 5 || port.find_first_not_of("0123456789") != std::string::npos ||
            std::stoul(port) == 0 || std::stoul(port) > 65535)
            return failInvalid("etcd endpoint " + e.text + ": bad port");
        e.port = static_cast<std::uint16_t>(std::stoul(port));
        c.endpoints_.push_back(std::move(e));
    }
    if (c.endpoints_.empty()) return failInvalid("no etcd endpoint given");
    return c;
}

Result<std::string> EtcdClient::call(const std::string& path, const std::string& body) {
    std::string lastError;
    // One deadline for the whole call, whatever the number of endpoints tried: a caller that must
    // act within a lease's lifetime can count on it.
    const std::uint64_t deadline = steadyMs() + timeoutMs_;
    for (std::size_t attempt = 0; attempt < endpoints_.size() && steadyMs() < deadline; ++attempt) {
        const std::size_t idx = (current_ + attempt) % endpoints_.size();
        const Endpoint& ep = endpoints_[idx];
        auto failHere = [&](const std::string& why) {
            lastError = ep.text + ": " + why;
            current_ = (idx + 1) % endpoints_.size();  // the next call starts elsewhere
        };
        sockaddr_in sa{};
        sa.sin_family = AF_INET;
        sa.sin_port = htons(ep.port);
        if (::inet_pton(AF_INET, ep.host.c_str(), &sa.sin_addr) != 1) {
            addrinfo hints{};
            hints.ai_family = AF_INET;
            hints.ai_socktype = SOCK_STREAM;
            addrinfo* res = nullptr;
            if (::getaddrinfo(ep.host.c_str(), nullptr, &hints, &res) != 0 || res == nullptr) {
                failHere("cannot resolve " + ep.host);
                continue;
            }
            sa.sin_addr = reinterpret_cast<sockaddr_in*>(res->ai_addr)->sin_addr;
            ::freeaddrinfo(res);
        }
        Fd s{::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)};
        if (s.fd < 0) return failErrno("etcd: socket");
        const int one = 1;
        ::setsockopt(s.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        if (::connect(s.fd, reinterpret_cast<const sockaddr*>(&sa), sizeof sa) != 0 && errno != EINPROGRESS) {
            failHere(std::strerror(errno));
            continue;
        }
        if (!waitFor(s.fd, POLLOUT, deadline)) {
            failHere("connect timed out");
            continue;
        }
        int err = 0;
        socklen_t errLen = sizeof err;
        ::getsockopt(s.fd, SOL_SOCKET, SO_ERROR, &err, &errLen);
        if (err != 0) {
            failHere(std::strerror(err));
            continue;
        }
        const std::string req = "POST " + path + " HTTP/1.1\r\nHost: " + ep.host + ":" + std::to_string(ep.port) +
                                "\r\nContent-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) +
                                "\r\nConnection: close\r\n\r\n" + body;
        std::size_t sent = 0;
        bool ok = true;
        while (sent < req.size()) {
            const ssize_t n = ::send(s.fd, req.data() + sent, req.size() - sent, MSG_NOSIGNAL);
            if (n > 0) {
                sent += static_cast<std::size_t>(n);
                continue;
            }
            if (n < 0 && (errno == EAGAIN || errno == EINTR) && waitFor(s.fd, POLLOUT, deadline)) continue;
            ok = false;
            break;
        }
        if (!ok) {
            failHere("send failed or timed out");
            continue;
        }
        // Read the response: headers, then a Content-Length body, or chunks (a streamed answer:
        // the first whole chunk is the answer), or up to the close.
        std::string in;
        std::size_t headerEnd = std::string::npos;
        std::optional<std::string> result;
        bool closed = false;
        while (!result) {
            if (!closed) {
                char buf[8192];
                const ssize_t n = ::recv(s.fd, buf, sizeof buf, 0);
                if (n > 0) {
                    in.append(buf, static_cast<std::size_t>(n));
                    if (in.size() > (16u << 20)) break;
                } else if (n == 0) {
                    closed = true;
                } else if (errno == EAGAIN || errno == EINTR) {
                    if (!waitFor(s.fd, POLLIN, deadline)) break;
                    continue;
                } else {
                    break;
                }
            }
            if (headerEnd == std::string::npos) headerEnd = in.find("\r\n\r\n");
            if (headerEnd == std::string::npos) {
                if (closed) break;
                continue;
            }
            std::string head = in.substr(0, headerEnd);
            for (auto& ch : head) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
            if (head.rfind("http/1.", 0) != 0 || head.size() < 12) break;
            const int status = std::atoi(head.c_str() + 9);
            const std::string rest = in.substr(headerEnd + 4);
            std::string payload;
            bool complete = false;
            if (head.find("transfer-encoding: chunked") != std::string::npos) {
                const std::size_t eol = rest.find("\r\n");
                if (eol != std::string::npos) {
                    const std::size_t len = std::strtoul(rest.substr(0, eol).c_str(), nullptr, 16);
                    if (rest.size() >= eol + 2 + len) {
                        payload = rest.substr(eol + 2, len);
                        complete = true;
                    }
                }
            } else if (const std::size_t cl = head.find("content-length:"); cl != std::string::npos) {
                const std::size_t len = std::strtoul(head.c_str() + cl + 15, nullptr, 10);
                if (rest.size() >= len) {
                    payload = rest.substr(0, len);
                    complete = true;
                }
            } else if (closed) {
                payload = rest;
                complete = true;
            }
            if (!complete) {
                if (closed) break;
                continue;
            }
            if (status != 200) {
                failHere("HTTP " + std::to_string(status) + ": " + payload.substr(0, 200));
                break;
            }
            result = std::move(payload);
        }
        if (!result) {
            if (lastError.empty() || lastError.rfind(ep.text, 0) != 0) failHere(closed ? "connection closed early" : "no answer in time");
            continue;
        }
        current_ = idx;
        return *result;
    }
    return fail(Error{EIO, "etcd " + path + ": " + lastError});
}

namespace {
template <class F>
auto parsed(Result<std::string> r, const char* what, F f) -> Result<decltype(f(json()))> {
    if (!r) return fail(r.error());
    try {
        json j = json::parse(*r);
        if (j.contains("error")) return fail(Error{EIO, std::string("etcd ") + what + ": " + j.dump().substr(0, 200)});
        if (j.contains("result")) j = j["result"];  // a streamed answer's envelope
        return f(j);
    } catch (const std::exception& e) {
        return fail(Error{EIO, std::string("etcd ") + what + ": unreadable answer (" + e.what() + ")"});
    }
}
}  // namespace

Result<std::int64_t> EtcdClient::grantLease(std::int64_t ttlSeconds) {
    return parsed(call("/v3/lease/grant", json{{"TTL", std::to_string(ttlSeconds)}}.dump()), "lease grant",
                  [](const json& j) {
                      const std::int64_t id = num(j, "ID");
                      if (id == 0) throw std::runtime_error("no lease id");
                      return id;
                  });
}

Result<std::int64_t> EtcdClient::keepAlive(std::int64_t lease) {
    return parsed(call("/v3/lease/keepalive", json{{"ID", std::to_string(lease)}}.dump()), "lease keepalive",
                  [](const json& j) { return num(j, "TTL"); });
}

Status EtcdClient::revoke(std::int64_t lease) {
    auto r = call("/v3/lease/revoke", json{{"ID", std::to_string(lease)}}.dump());
    if (!r) return fail(r.error());
    return {};
}

Result<std::optional<EtcdKv>> EtcdClient::get(const std::string& key) {
    return parsed(call("/v3/kv/range", json{{"key", base64Encode(key)}}.dump()), "range", [](const json& j) {
        std::optional<EtcdKv> kv;
        if (j.contains("kvs") && !j["kvs"].empty()) kv = kvFrom(j["kvs"][0]);
        return kv;
    });
}

Result<std::vector<EtcdKv>> EtcdClient::getPrefix(const std::string& prefix) {
    return parsed(call("/v3/kv/range", json{{"key", base64Encode(prefix)}, {"range_end", base64Encode(prefixEnd(prefix))}}.dump()),
                  "range", [](const json& j) {
                      std::vector<EtcdKv> out;
                      if (j.contains("kvs"))
                          for (const auto& e : j["kvs"]) out.push_back(kvFrom(e));
                      return out;
                  });
}

Result<std::int64_t> EtcdClient::put(const std::string& key, const std::string& value, std::int64_t lease) {
    json body{{"key", base64Encode(key)}, {"value", base64Encode(value)}};
    if (lease != 0) body["lease"] = std::to_string(lease);
    return parsed(call("/v3/kv/put", body.dump()), "put", [](const json& j) { return num(j.at("header"), "revision"); });
}

Result<EtcdTxnResult> EtcdClient::txn(const std::vector<EtcdCompare>& compare, const std::vector<EtcdOp>& success,
                                      const std::vector<EtcdOp>& failure) {
    json body;
    body["compare"] = json::array();
    for (const auto& c : compare) body["compare"].push_back(compareJson(c));
    body["success"] = json::array();
    for (const auto& o : success) body["success"].push_back(opJson(o));
    body["failure"] = json::array();
    for (const auto& o : failure) body["failure"].push_back(opJson(o));
    return parsed(call("/v3/kv/txn", body.dump()), "txn", [](const json& j) {
        EtcdTxnResult r;
        r.succeeded = j.value("succeeded", false);
        r.revision = num(j.at("header"), "revision");
        if (j.contains("responses"))
            for (const auto& resp : j["responses"]) {
                if (!resp.contains("response_range")) continue;
                std::vector<EtcdKv> kvs;
                const json& rr = resp["response_range"];
                if (rr.contains("kvs"))
                    for (const auto& e : rr["kvs"]) kvs.push_back(kvFrom(e));
                r.ranges.push_back(std::move(kvs));
            }
        return r;
    });
}

}  // namespace seqcast::sequencer
