#!/usr/bin/env bash
# --transport dpdk on the command line, in every build (suite quick, well under a second):
#   a build without DPDK: every command with sockets exits 2 saying so and how to get it;
#   a DPDK build: bad EAL arguments, or no usable address, fail cleanly (exit 2, a message naming
#   the EAL arguments or --interface, no crash) without needing root, hugepages or a NIC.
set -u
SEQCAST=${1:?usage: transport_dpdk_test.sh path/to/seqcast}
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }

# run CMD...: OUT (stdout and stderr), RC; bounded by a timeout.
run() {
    OUT=$(timeout -k 2 20 "$@" 2>&1 </dev/null)
    RC=$?
}
# expect LABEL RCS NEEDLE...: RC is one of RCS (space separated), OUT contains every NEEDLE.
expect() {
    local label=$1 rcs=$2 n
    shift 2
    if [[ " $rcs " != *" $RC "* ]]; then fail "$label: exit $RC, expected one of: $rcs ($(head -3 <<<"$OUT"))"; return; fi
    for n in "$@"; do
        grep -qiF -- "$n" <<<"$OUT" || fail "$label: output lacks '$n': $(head -3 <<<"$OUT")"
    done
}

run "$SEQCAST" sub --transport dpdk --group 239.1.1.1:40001 -- --no-huge
if grep -q "built without DPDK" <<<"$OUT"; then
    echo "this seqcast has no DPDK support: checking the message"
    expect "sub --transport dpdk" 2 "--transport dpdk" "built without DPDK" "apt-get install libdpdk-dev" "rebuild"
    for c in "sequencer|--control 127.0.0.1:40000 --group 239.1.1.1:40001" "pub|--sequencer 127.0.0.1:40000" \
        "archiver|--group 239.1.1.1:40001 --control 127.0.0.1:40100"; do
        IFS='|' read -r cmd args <<<"$c"
        # shellcheck disable=SC2086
        run "$SEQCAST" "$cmd" --transport dpdk $args
        expect "$cmd --transport dpdk" 2 "built without DPDK" "apt-get install libdpdk-dev"
    done
else
    echo "this seqcast has DPDK support: checking that bad EAL arguments fail cleanly"
    # An option the EAL does not know: it refuses before touching memory, devices or files.
    run "$SEQCAST" sub --transport dpdk --group 239.1.1.1:40001 --interface 10.254.0.1/24 -- \
        --no-such-eal-option --no-huge -m 64 --no-pci --no-shconf --file-prefix=seqcast-cli-$$
    expect "sub with a bad EAL argument" 2 "--transport dpdk (EAL arguments after --)" "EAL initialisation"
    # No address of ours (--interface left at 127.0.0.1 and a group bind): refused before the EAL.
    run "$SEQCAST" sub --transport dpdk --group 239.1.1.1:40001 -- --no-huge --no-pci --no-shconf
    expect "sub without an address" 2 "sub: --interface:" "dpdk"
fi
# Whatever the build: EAL arguments without --transport dpdk are a usage error.
run "$SEQCAST" sub --group 239.1.1.1:40001 -- --no-huge
expect "EAL arguments without --transport dpdk" 2 "need --transport dpdk"

if ((fails > 0)); then
    echo "$fails check(s) failed"
    exit 1
fi
echo "all checks passed"
