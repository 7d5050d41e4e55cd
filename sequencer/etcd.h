// A small etcd v3 client over etcd's JSON gateway (HTTP/1.1, one connection per call, every call
// bounded by a deadline): leases, ranges, puts and transactions, which is all leadership needs.
// Blocking: it runs on the HA coordinator's own thread, never on a sequencer's hot path.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "fabric/result.h"

namespace seqcast::sequencer {

struct EtcdKv {
    std::string key;
    std::string value;
    std::int64_t createRevision = 0;
    std::int64_t modRevision = 0;
    std::int64_t version = 0;
    std::int64_t lease = 0;
};

// One comparison of a transaction. Target: what of the key is compared.
struct EtcdCompare {
    enum class Target : std::uint8_t { Version, ModRevision, CreateRevision, Value };
    enum class Op : std::uint8_t { Equal, NotEqual, Greater, Less };
    std::string key;
    Target target = Target::Version;
    Op op = Op::Equal;
    std::int64_t number = 0;  // Version, ModRevision, CreateRevision
    std::string value;        // Value
};

struct EtcdOp {
    enum class Kind : std::uint8_t { Put, Delete, Range };
    Kind kind = Kind::Put;
    std::string key;
    std::string value;
    std::int64_t lease = 0;
};

struct EtcdTxnResult {
    bool succeeded = false;
    std::int64_t revision = 0;           // the store's revision after the transaction
    std::vector<std::vector<EtcdKv>> ranges;  // one per Range op of the branch taken, in order
};

class EtcdClient {
public:
    // endpoints: "http://HOST:PORT" or "HOST:PORT", comma separated; a call tries them in turn,
    // starting with the one that answered last, all within timeoutMs.
    static Result<EtcdClient> create(const std::string& endpoints, std::uint32_t timeoutMs);

    Result<std::int64_t> grantLease(std::int64_t ttlSeconds);
    // Renews a lease; returns its TTL in seconds (0 or less: the lease is gone).
    Result<std::int64_t> keepAlive(std::int64_t lease);
    Status revoke(std::int64_t lease);
    Result<std::optional<EtcdKv>> get(const std::string& key);
    Result<std::vector<EtcdKv>> getPrefix(const std::string& prefix);
    Result<std::int64_t> put(const std::string& key, const std::string& value, std::int64_t lease = 0);
    Result<EtcdTxnResult> txn(const std::vector<EtcdCompare>& compare, const std::vector<EtcdOp>& success,
                              const std::vector<EtcdOp>& failure = {});
    // The endpoint that answered the last call.
    const std::string& current() const noexcept { return endpoints_[current_].text; }

private:
    struct Endpoint {
        std::string text;
        std::string host;
        std::uint16_t port = 0;
    };
    Result<std::string> call(const std::string& path, const std::string& body);
    std::vector<Endpoint> endpoints_;
    std::size_t current_ = 0;
    std::uint32_t timeoutMs_ = 500;
};

std::string base64Encode(const std::string& in);
std::optional<std::string> base64Decode(const std::string& in);

}  // namespace seqcast::sequencer
