#include <doctest/doctest.h>

#include <string_view>

#include "fabric/crc32c.h"

using namespace seqcast;

TEST_CASE("crc32c check value") {
    std::string_view s = "123456789";
    auto b = std::as_bytes(std::span(s.data(), s.size()));
    CHECK(crc32c(b) == 0xE3069283u);
    CHECK(crc32cReference(b) == 0xE3069283u);
}
