// Unit tests that cannot run a case in this environment (no io_uring, no O_DIRECT) say so instead
// of passing: skip(reason) prints the reason, and the test binary then exits 77, which meson reports
// as SKIP, unless a check failed (then it fails as usual). The test case returns right after.
#pragma once

#include <string>

namespace seqcast::test {
void skip(const std::string& reason);
}  // namespace seqcast::test
