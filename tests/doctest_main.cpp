// doctest's main, plus seqcast::test::skip(): a binary in which any case was skipped exits 77
// (meson: SKIP) when nothing failed, so a case that cannot run never reads as a pass.
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include <cstdio>
#include <string>
#include <vector>

#include "test_skip.h"

namespace {
std::vector<std::string>& skipped() {
    static std::vector<std::string> s;
    return s;
}
}  // namespace

void seqcast::test::skip(const std::string& reason) {
    skipped().push_back(reason);
    std::fprintf(stderr, "SKIP (one case): %s\n", reason.c_str());
}

int main(int argc, char** argv) {
    doctest::Context ctx(argc, argv);
    const int rc = ctx.run();
    if (ctx.shouldExit() || rc != 0) return rc;
    if (!skipped().empty()) {
        std::fprintf(stderr, "SKIP: %zu case(s) could not run here:\n", skipped().size());
        for (const auto& r : skipped()) std::fprintf(stderr, "  %s\n", r.c_str());
        return 77;
    }
    return 0;
}
