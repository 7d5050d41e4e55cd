#!/usr/bin/env bash
# DPDK transport throughput beside its baselines, measured in the same run on the same vdev:
#   tx: datagrams/s that DpdkTransport::sendBurst takes (perf/dpdk_blast) vs dpdk-testpmd txonly
#       (same frame size, same net_af_packet vdev) vs the kernel-socket transport (sendmmsg with
#       UDP GSO, seqcast's default, and without).
#   rx: datagrams/s received from one dpdk-testpmd txonly generator by DpdkTransport::recvBurst vs
#       dpdk-testpmd rxonly vs a kernel UDP socket (recvmmsg).
# Two namespaces joined by a veth pair; frames of 64 B (22 B payload) and 1450 B (1408 B payload,
# seqcast's default MTU). Every figure is a raw datagram rate through the transport alone: no
# sequencer, no subscriber, no repair. The last line restates the 1408 B rates as the 64 B
# messages such datagrams would carry (14 each), an upper bound for sequenced messages on this
# path, not a measurement of them. Median of RUNS runs of SECONDS each. A figure that came out as
# 0 (a blaster or testpmd that did not run) fails the script (exit 1).
# `./run bench` runs it (output in build/bench/dpdk_bench.txt); the README's DPDK table comes from it.
#
# usage: perf/dpdk_bench.sh [BUILD_DIR] [SECONDS] [RUNS]    (root; dpdk-testpmd from Debian's dpdk-dev)
set -u
BUILD=${1:-build}
SECS=${2:-2}
RUNS=${3:-3}
BLAST=$(readlink -f "$BUILD/perf/dpdk_blast" 2>/dev/null)
[[ $(id -u) -eq 0 ]] || { echo "SKIP: needs root (namespaces, AF_PACKET)"; exit 77; }
[[ -x $BLAST ]] || { echo "SKIP: $BUILD/perf/dpdk_blast not built (a build with DPDK)"; exit 77; }
TESTPMD=$(command -v dpdk-testpmd) || { echo "SKIP: dpdk-testpmd not installed (apt-get install dpdk-dev)"; exit 77; }

TAG="sb$$"
A=$TAG-a
B=$TAG-b
TMP=$(mktemp -d /tmp/seqcast-dpdk-bench-XXXXXX)
cleanup() {
    ip netns pids "$A" 2>/dev/null | xargs -r kill -KILL 2>/dev/null
    ip netns pids "$B" 2>/dev/null | xargs -r kill -KILL 2>/dev/null
    ip netns del "$A" 2>/dev/null
    ip netns del "$B" 2>/dev/null
    rm -rf "$TMP"
}
trap cleanup EXIT
ip netns add "$A" && ip netns add "$B" || { echo "SKIP: cannot create namespaces"; exit 77; }
ip -n "$A" link add x0 type veth peer name y0 netns "$B"
for n in "$A:x0" "$B:y0"; do
    ip -n "${n%%:*}" link set "${n##*:}" up
    ip netns exec "${n%%:*}" sysctl -qw "net.ipv6.conf.${n##*:}.disable_ipv6=1"
done
IP_A=10.99.0.1
IP_B=10.99.0.2
MAC_B=$(ip -n "$B" -br link show y0 | awk '{print $3}')
GROUP=239.9.9.9:5000
eal() { echo "--no-huge -m 512 --no-pci --no-shconf --file-prefix=$TAG-$1 --vdev=net_af_packet0,iface=$2 --log-level=lib.eal:error --no-telemetry"; }

median() { sort -g | awk '{v[NR]=$1} END {if (NR == 0) print 0; else if (NR % 2) print v[(NR+1)/2]; else print (v[NR/2]+v[NR/2+1])/2}'; }
# testpmd NS NAME MAIN_LCORE SECONDS ARGS...: run testpmd; prints its per-second pps lines.
testpmd() {
    local ns=$1 name=$2 main=$3 secs=$4
    shift 4
    # shellcheck disable=SC2046
    ip netns exec "$ns" timeout -s INT "$secs" "$TESTPMD" $(eal "$name" "${IFACE}") -l 0,1 --main-lcore "$main" -- \
        --nb-cores=1 --rxq=1 --txq=1 --total-num-mbufs=16384 --stats-period=1 "$@" </dev/null 2>&1
}
# steady PATTERN: median of the per-second values after the first two (start-up).
steady() { grep -o "$1: *[0-9]*" | awk '{print $2}' | tail -n +2 | median; }

declare -A R
run_tx() {  # SIZE (UDP payload)
    local s=$1 i
    for ((i = 0; i < RUNS; i++)); do
        IFACE=x0 testpmd "$A" tpm-tx 0 $((SECS + 3)) --forward-mode=txonly --txpkts=$((s + 42)) --tx-ip=$IP_A,239.9.9.9 \
            >"$TMP/tpm.txt"
        steady Tx-pps <"$TMP/tpm.txt" >>"$TMP/tx-testpmd-$s"
        # shellcheck disable=SC2046
        ip netns exec "$A" taskset -c 1 "$BLAST" tx dpdk $IP_A $GROUP "$s" "$SECS" -- $(eal blast-tx x0) 2>/dev/null |
            awk '/^pps/ {print $2}' >>"$TMP/tx-dpdk-$s"
    done
    ip -n "$A" addr add $IP_A/24 dev x0
    ip -n "$A" route add 239.0.0.0/8 dev x0
    for ((i = 0; i < RUNS; i++)); do
        ip netns exec "$A" taskset -c 1 "$BLAST" tx udp $IP_A $GROUP "$s" "$SECS" | awk '/^pps/ {print $2}' >>"$TMP/tx-kernel-$s"
        ip netns exec "$A" taskset -c 1 "$BLAST" tx udp-nogso $IP_A $GROUP "$s" "$SECS" | awk '/^pps/ {print $2}' >>"$TMP/tx-kernelnogso-$s"
    done
    ip -n "$A" addr flush dev x0
    for k in testpmd dpdk kernel kernelnogso; do R[tx-$k-$s]=$(median <"$TMP/tx-$k-$s"); done
}
run_rx() {  # SIZE: a testpmd txonly generator in A sends unicast UDP to IP_B:5001 (y0's MAC)
    local s=$1 i gen
    startgen() {
        IFACE=x0 testpmd "$A" tpm-gen 0 $((SECS + 6)) --forward-mode=txonly --txpkts=$((s + 42)) \
            --tx-ip=$IP_A,$IP_B --tx-udp=5000,5001 --eth-peer=0,"$MAC_B" >"$TMP/gen.txt" &
        gen=$!
        sleep 1
    }
    for ((i = 0; i < RUNS; i++)); do
        startgen
        IFACE=y0 testpmd "$B" tpm-rx 1 $((SECS + 3)) --forward-mode=rxonly >"$TMP/tpm.txt"
        wait $gen
        steady Rx-pps <"$TMP/tpm.txt" >>"$TMP/rx-testpmd-$s"
        steady Tx-pps <"$TMP/gen.txt" >>"$TMP/rx-offered-$s"
        startgen
        # shellcheck disable=SC2046
        ip netns exec "$B" taskset -c 0 "$BLAST" rx dpdk $IP_B $IP_B:5001 "$SECS" -- $(eal blast-rx y0) 2>/dev/null |
            awk '/^pps/ {print $2}' >>"$TMP/rx-dpdk-$s"
        wait $gen
    done
    ip -n "$B" addr add $IP_B/24 dev y0
    for ((i = 0; i < RUNS; i++)); do
        startgen
        ip netns exec "$B" taskset -c 0 "$BLAST" rx udp $IP_B $IP_B:5001 "$SECS" | awk '/^pps/ {print $2}' >>"$TMP/rx-kernel-$s"
        wait $gen
    done
    ip -n "$B" addr flush dev y0
    for k in offered testpmd dpdk kernel; do R[rx-$k-$s]=$(median <"$TMP/rx-$k-$s"); done
}

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'; }
fmt() { awk -v v="$1" 'BEGIN { printf "%.0f", v }'; }
echo "DPDK transport vs dpdk-testpmd vs kernel sockets: raw datagrams/s (no sequencer), net_af_packet on a veth pair, median of $RUNS x ${SECS}s"
for s in 22 1408; do
    run_tx "$s"
    run_rx "$s"
done
printf '\n%-26s %12s %12s %8s %12s %8s\n' "figure (datagrams/s)" "seqcast dpdk" testpmd ratio kernel "dpdk/kernel"
for s in 22 1408; do
    printf '%-26s %12s %12s %8s %12s %8s\n' "tx, $((s + 42)) B frames" "$(fmt "${R[tx-dpdk-$s]}")" "$(fmt "${R[tx-testpmd-$s]}")" \
        "$(ratio "${R[tx-dpdk-$s]}" "${R[tx-testpmd-$s]}")" "$(fmt "${R[tx-kernel-$s]}")" "$(ratio "${R[tx-dpdk-$s]}" "${R[tx-kernel-$s]}")"
    printf '%-26s %12s %12s %8s %12s %8s\n' "  kernel without GSO" "" "" "" "$(fmt "${R[tx-kernelnogso-$s]}")" \
        "$(ratio "${R[tx-dpdk-$s]}" "${R[tx-kernelnogso-$s]}")"
    printf '%-26s %12s %12s %8s %12s %8s   (offered %s)\n' "rx, $((s + 42)) B frames" "$(fmt "${R[rx-dpdk-$s]}")" "$(fmt "${R[rx-testpmd-$s]}")" \
        "$(ratio "${R[rx-dpdk-$s]}" "${R[rx-testpmd-$s]}")" "$(fmt "${R[rx-kernel-$s]}")" "$(ratio "${R[rx-dpdk-$s]}" "${R[rx-kernel-$s]}")" \
        "$(fmt "${R[rx-offered-$s]}")"
done
PER=$(((1408 - 48) / (32 + 64)))
printf '\nthe 1408 B datagram rates as 64 B-message equivalents (x%d per datagram; raw datagrams, no sequencer: an upper bound,\n' "$PER"
printf 'not sequenced messages): tx %s (testpmd %s, kernel %s), rx %s\n' \
    "$(fmt "$(echo "${R[tx-dpdk-1408]} * $PER" | bc)")" "$(fmt "$(echo "${R[tx-testpmd-1408]} * $PER" | bc)")" \
    "$(fmt "$(echo "${R[tx-kernel-1408]} * $PER" | bc)")" "$(fmt "$(echo "${R[rx-dpdk-1408]} * $PER" | bc)")"
bad=0
for k in "${!R[@]}"; do
    if ! awk -v v="${R[$k]}" 'BEGIN { exit !(v > 0) }'; then
        echo "FAILED: $k measured nothing (rate ${R[$k]:-empty})"
        bad=1
    fi
done
exit $bad
