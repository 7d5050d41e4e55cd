// Set-up path error handling: Result<T> = tl::expected<T, Error>.
#pragma once

#include <cerrno>
#include <cstring>
#include <string>
#include <utility>

#include <tl/expected.hpp>

namespace seqcast {

struct Error {
    int code = 0;          // errno-style code (EINVAL, EIO, ...)
    std::string context;   // grows as the error bubbles up: "outer: inner: strerror"
    // The setting the error is about, named where the error arises (a UdpConfig field: "interface",
    // "bind", "ttl", "ealArgs"); empty when no setting is to blame. Callers map it to their own option
    // names instead of searching the message.
    std::string field;

    Error() = default;
    Error(int c, std::string ctx) : code(c), context(std::move(ctx)) {}

    static Error fromErrno(std::string what, int err = errno) {
        return Error{err, std::move(what) + ": " + std::strerror(err)};
    }
    static Error invalid(std::string what) { return Error{EINVAL, std::move(what)}; }

    Error& wrap(const std::string& outer) {
        context = outer + ": " + context;
        return *this;
    }
    Error& about(std::string f) {
        if (field.empty()) field = std::move(f);  // the innermost knows best
        return *this;
    }
    const std::string& message() const noexcept { return context; }
};

template <class T>
using Result = tl::expected<T, Error>;
using Status = tl::expected<void, Error>;

inline tl::unexpected<Error> fail(Error e) { return tl::unexpected<Error>(std::move(e)); }
inline tl::unexpected<Error> failErrno(std::string what, int err = errno) {
    return tl::unexpected<Error>(Error::fromErrno(std::move(what), err));
}
inline tl::unexpected<Error> failInvalid(std::string what) {
    return tl::unexpected<Error>(Error::invalid(std::move(what)));
}

}  // namespace seqcast
