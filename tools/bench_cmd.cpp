#include "tools/commands.h"
#include <cstdio>
namespace seqcast::tools {
int runBench(int, char**) { std::fprintf(stderr, "seqcast bench: not written yet\n"); return 1; }
}
