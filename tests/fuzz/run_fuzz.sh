#!/usr/bin/env bash
# Builds and runs the fuzz targets (libFuzzer + ASan + UBSan, clang-14): datagrams, archive log
# records, the sequencer (PUBs, NAK ranges), the archiver (replay requests), the gateways' parsers
# and the MoldUDP64 ingress's feed tracker, and --config files.
#   tests/fuzz/run_fuzz.sh BUILD_DIR [SECONDS]      fuzz for SECONDS (default 30)
#   tests/fuzz/run_fuzz.sh BUILD_DIR --regen        rewrite the committed seed corpus
# Exits 0 when no crash was found, 1 on a crash (the input is left in BUILD_DIR/fuzz/), 77 (skip)
# when clang++-14 or its libFuzzer runtime is missing.
set -euo pipefail

if [[ $# -lt 1 ]]; then
    echo "usage: $0 BUILD_DIR [SECONDS|--regen]" >&2
    exit 2
fi
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
build=$(mkdir -p "$1" && cd "$1" && pwd)
arg=${2:-30}
cxx=${CXX_FUZZ:-clang++-14}
out="$build/fuzz"
mkdir -p "$out"

if ! command -v "$cxx" >/dev/null 2>&1; then
    echo "SKIP: $cxx not found (apt-get install clang-14)"
    exit 77
fi
probe="$out/probe.cpp"
printf '%s\n' '#include <cstdint>' '#include <cstddef>' \
    'extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t*, std::size_t) { return 0; }' >"$probe"
if ! "$cxx" -fsanitize=fuzzer,address,undefined "$probe" -o "$out/probe" >"$out/probe.log" 2>&1; then
    echo "SKIP: $cxx cannot link -fsanitize=fuzzer,address,undefined (libFuzzer runtime missing?):"
    head -5 "$out/probe.log"
    exit 77
fi

fabric_srcs=("$root/fabric/crc32c.cpp" "$root/fabric/wire.cpp" "$root/client/reassembler.cpp" "$root/fabric/mapped_file.cpp" "$root/fabric/shm_counters.cpp")
flags=(-std=c++20 -O1 -g -fno-omit-frame-pointer -D_GNU_SOURCE -I"$root" -I"$root/include" -I"$build")

# Seed corpus generator (plain build: it only writes files).
"$cxx" "${flags[@]}" "$root/tests/fuzz/make_corpus.cpp" "${fabric_srcs[@]}" -lisal -o "$out/make_corpus"
if [[ "$arg" == "--regen" ]]; then
    mkdir -p "$root/tests/fuzz/corpus/datagram"
    rm -f "$root/tests/fuzz/corpus/datagram/"*.bin
    "$out/make_corpus" "$root/tests/fuzz/corpus/datagram"
    exit 0
fi
secs=$arg
if ! [[ "$secs" =~ ^[0-9]+$ ]] || [[ "$secs" -lt 1 ]]; then
    echo "SECONDS must be a positive integer, got '$secs'" >&2
    exit 2
fi

echo "== building fuzz_datagram with $cxx (fuzzer, address, undefined)"
"$cxx" "${flags[@]}" -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
    "$root/tests/fuzz/fuzz_datagram.cpp" "${fabric_srcs[@]}" -lisal -o "$out/fuzz_datagram"

# Work on a copy so that new inputs never pollute the repository's corpus.
work=$(mktemp -d "${TMPDIR:-/tmp}/seqcast-fuzz.XXXXXX")
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/corpus"
cp "$root/tests/fuzz/corpus/datagram/"* "$work/corpus/" 2>/dev/null || true
"$out/make_corpus" "$work/corpus" >/dev/null
seeds=$(ls "$work/corpus" | wc -l)
rm -f "$out"/crash-* "$out"/leak-* "$out"/timeout-* "$out"/oom-*

echo "== fuzzing for ${secs}s over $seeds seeds"
log="$out/fuzz.log"
set +e
"$out/fuzz_datagram" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -max_len=4096 \
    -print_final_stats=1 -artifact_prefix="$out/" "$work/corpus" >"$log" 2>&1
rc=$?
set -e

execs=$(grep -E '^stat::number_of_executed_units' "$log" | awk '{print $2}')
speed=$(grep -E '^stat::average_exec_per_sec' "$log" | awk '{print $2}')
cov=$(grep -E '^#[0-9]+' "$log" | tail -1 | grep -oE 'cov: [0-9]+' || true)
echo "== summary: rc=$rc executions=${execs:-?} exec/s=${speed:-?} ${cov:-} corpus=$(ls "$work/corpus" | wc -l) files"
artifacts=$(ls "$out"/crash-* "$out"/leak-* "$out"/timeout-* "$out"/oom-* 2>/dev/null || true)
if [[ $rc -ne 0 || -n "$artifacts" ]]; then
    echo "FAIL: fuzzer found a problem; log: $log"
    grep -E 'ERROR|SUMMARY|runtime error|Test unit written' "$log" | head -20 || true
    [[ -n "$artifacts" ]] && echo "artifacts:" && echo "$artifacts"
    exit 1
fi
echo "OK: no crash in ${secs}s"

# Archive log records (archive::parseChunk): a damaged or foreign log must never crash a reader.
lsecs=${SEQCAST_FUZZ_LOG_SECONDS:-$(( secs / 3 > 0 ? secs / 3 : 1 ))}
# Our own seqcast_config.h (no io_uring, no DPDK), first on the include path: BUILD_DIR may be a
# meson build directory with its own.
printf '#pragma once\n#define SEQCAST_HAVE_URING 0\n#define SEQCAST_HAVE_DPDK 0\n' >"$out/seqcast_config.h"
echo "== building fuzz_log_records with $cxx (fuzzer, address, undefined)"
"$cxx" -I"$out" "${flags[@]}" -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
    "$root/tests/fuzz/fuzz_log_records.cpp" "$root/archive/archive_log.cpp" "$root/archive/file_io.cpp" \
    "${fabric_srcs[@]}" -lisal -o "$out/fuzz_log_records"
mkdir -p "$work/logcorpus"
# Seeds: each datagram seed wrapped as one log record at position 0 in a 64 KiB segment.
for f in "$work/corpus"/*; do
    python3 - "$f" "$work/logcorpus/$(basename "$f")" <<'PY' 2>/dev/null || true
import struct, sys
d = open(sys.argv[1], 'rb').read()
rec = struct.pack('<IIQ', 0x524C5153, len(d), 0) + d
rec += b'\0' * ((8 - len(rec) % 8) % 8)
open(sys.argv[2], 'wb').write(struct.pack('<Q', 0) + bytes([4]) + rec)
PY
done
log2="$out/fuzz_log.log"
set +e
"$out/fuzz_log_records" -max_total_time="$lsecs" -timeout=10 -rss_limit_mb=2048 -max_len=8192 \
    -print_final_stats=1 -artifact_prefix="$out/" "$work/logcorpus" >"$log2" 2>&1
rc=$?
set -e
execs=$(grep -E '^stat::number_of_executed_units' "$log2" | awk '{print $2}')
echo "== summary (log records): rc=$rc executions=${execs:-?}"
artifacts=$(ls "$out"/crash-* "$out"/leak-* "$out"/timeout-* "$out"/oom-* 2>/dev/null || true)
if [[ $rc -ne 0 || -n "$artifacts" ]]; then
    echo "FAIL: the log-record fuzzer found a problem; log: $log2"
    grep -E 'ERROR|SUMMARY|runtime error|Test unit written' "$log2" | head -20 || true
    exit 1
fi
echo "OK: no crash in ${lsecs}s of log records"

# Stateful targets: the sequencer (PUB, NAK ranges), the archiver (replay requests, NAKs) and the
# --config INI path of the tools. Each runs secs/3 (default 10 s at 30) over its committed seeds.
tsecs=$(( secs / 3 > 0 ? secs / 3 : 1 ))
# Our own seqcast_config.h (no io_uring, no DPDK) must win over a meson build directory's.
tflags=(-std=c++20 -O1 -g -fno-omit-frame-pointer -D_GNU_SOURCE -I"$out" -I"$root" -I"$root/include"
        -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all)
fuzz_target() {  # NAME SECONDS MAX_LEN SOURCES... -- LIBS...
    local name=$1 tsec=$2 maxlen=$3
    shift 3
    local srcs=() libs=()
    while [[ $# -gt 0 && "$1" != "--" ]]; do srcs+=("$1"); shift; done
    [[ $# -gt 0 ]] && shift
    libs=("$@")
    echo "== building $name with $cxx (fuzzer, address, undefined)"
    "$cxx" "${tflags[@]}" "$root/tests/fuzz/$name.cpp" "${srcs[@]}" "${fabric_srcs[@]}" "${libs[@]}" -o "$out/$name"
    local corpus="$work/${name#fuzz_}"
    mkdir -p "$corpus"
    cp "$root/tests/fuzz/corpus/${name#fuzz_}/"* "$corpus/" 2>/dev/null || true
    local tlog="$out/$name.log" trc
    set +e
    "$out/$name" -max_total_time="$tsec" -timeout=10 -rss_limit_mb=2048 -max_len="$maxlen" \
        -print_final_stats=1 -artifact_prefix="$out/" "$corpus" >"$tlog" 2>&1
    trc=$?
    set -e
    local texecs tspeed
    texecs=$(grep -E '^stat::number_of_executed_units' "$tlog" | awk '{print $2}')
    tspeed=$(grep -E '^stat::average_exec_per_sec' "$tlog" | awk '{print $2}')
    echo "== summary ($name): rc=$trc executions=${texecs:-?} exec/s=${tspeed:-?} corpus=$(ls "$corpus" | wc -l) files"
    artifacts=$(ls "$out"/crash-* "$out"/leak-* "$out"/timeout-* "$out"/oom-* 2>/dev/null || true)
    if [[ $trc -ne 0 || -n "$artifacts" ]]; then
        echo "FAIL: $name found a problem; log: $tlog"
        grep -E 'ERROR|SUMMARY|runtime error|FUZZ_CHECK|undocumented|Test unit written' "$tlog" | head -20 || true
        [[ -n "$artifacts" ]] && echo "artifacts:" && echo "$artifacts"
        exit 1
    fi
    echo "OK: no crash in ${tsec}s of $name"
}

fuzz_target fuzz_sequencer "${SEQCAST_FUZZ_SEQUENCER_SECONDS:-$tsecs}" 4096 \
    "$root/sequencer/sequencer.cpp" "$root/sequencer/replication.cpp" "$root/sequencer/state_file.cpp" "$root/sequencer/retransmit_ring.cpp" \
    "$root/transport/memory_transport.cpp" "$root/transport/address.cpp" -- -lisal
fuzz_target fuzz_archiver "${SEQCAST_FUZZ_ARCHIVER_SECONDS:-$tsecs}" 4096 \
    "$root/archive/archiver.cpp" "$root/archive/backlog.cpp" "$root/archive/archive_log.cpp" "$root/client/subscriber.cpp" \
    "$root/client/gap_tracker.cpp" "$root/client/reorder_buffer.cpp" "$root/client/commit_file.cpp" "$root/archive/file_io.cpp" \
    "$root/transport/memory_transport.cpp" "$root/transport/address.cpp" -- -lisal
fuzz_target fuzz_gateway "${SEQCAST_FUZZ_GATEWAY_SECONDS:-$tsecs}" 4096 \
    "$root/gateway/moldudp64.cpp" "$root/gateway/soupbintcp.cpp" "$root/gateway/feed_tracker.cpp" -- -lisal
if [[ -e /usr/include/boost/program_options.hpp ]]; then
    # tools/common.cpp opens transports: link every transport source, built without io_uring and
    # with the DPDK stub (the DPDK transport needs DPDK's own build flags).
    transport_srcs=()
    for f in "$root"/transport/*.cpp; do
        [[ $(basename "$f") == dpdk_transport.cpp ]] || transport_srcs+=("$f")
    done
    fuzz_target fuzz_config "${SEQCAST_FUZZ_CONFIG_SECONDS:-$tsecs}" 2048 \
        "$root/tools/common.cpp" "${transport_srcs[@]}" -- -lisal -lboost_program_options -lsodium
else
    echo "SKIP: fuzz_config needs Boost.Program_options (apt-get install libboost-program-options-dev)"
fi
