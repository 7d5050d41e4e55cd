#pragma once

namespace seqcast::tools {
int runSequencer(int argc, char** argv);
int runPub(int argc, char** argv);
int runSub(int argc, char** argv);
int runDemo(int argc, char** argv);
int runBench(int argc, char** argv);
int runStat(int argc, char** argv);
int runArchiver(int argc, char** argv);
int runReplay(int argc, char** argv);
int runDump(int argc, char** argv);
int runPing(int argc, char** argv);
int runMoldEgress(int argc, char** argv);
int runMoldIngress(int argc, char** argv);
int runSoupServer(int argc, char** argv);
}  // namespace seqcast::tools
