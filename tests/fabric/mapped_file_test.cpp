// MappedFile: one owner at a time (a second open of a held file is refused with EBUSY, naming it),
// freed when the owner closes; new files are sized on map(), existing ones keep their bytes.
#include <doctest/doctest.h>

#include <cerrno>
#include <cstdlib>
#include <string>
#include <unistd.h>

#include "fabric/mapped_file.h"

using namespace seqcast;

TEST_CASE("mapped file: one owner at a time, sized on first map, contents kept") {
    char dir[] = "/tmp/seqcast-mapped-XXXXXX";
    REQUIRE(::mkdtemp(dir) != nullptr);
    const std::string path = std::string(dir) + "/f.state";
    {
        auto a = MappedFile::open(path, "state file");
        REQUIRE(a);
        CHECK(a->fresh());
        REQUIRE(a->map(8192));
        CHECK(a->size() == 8192);
        a->data()[100] = std::byte{42};

        auto b = MappedFile::open(path, "state file");
        REQUIRE(!b);
        CHECK(b.error().code == EBUSY);
        CHECK(b.error().message().find(path) != std::string::npos);
        CHECK(b.error().message().find("state file") != std::string::npos);
    }
    // The owner closed it: the next one gets it, with what was stored.
    auto c = MappedFile::open(path, "state file");
    REQUIRE(c);
    CHECK(!c->fresh());
    CHECK(c->fileSize() == 8192);
    REQUIRE(c->map(8192));
    CHECK(c->data()[100] == std::byte{42});
    CHECK(c->sync());
    // Moving the owner moves the lock with it.
    MappedFile moved(std::move(*c));
    CHECK(!MappedFile::open(path, "state file"));

    auto anon = MappedFile::anonymous(4096, "window");
    REQUIRE(anon);
    CHECK(!anon->isFile());
    CHECK(anon->size() == 4096);
    CHECK(anon->sync());
    ::unlink(path.c_str());
    ::rmdir(dir);
}
