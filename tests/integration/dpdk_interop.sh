#!/usr/bin/env bash
# DPDK and kernel sockets on one wire: two network namespaces joined by a veth pair. In namespace D
# the veth end has no IP address and belongs to a DPDK port (net_af_packet vdev, no hugepages, no
# PCI); in namespace K the other end is an ordinary kernel interface. Loss comes from nftables on
# the kernel side (numgen random), repaired by NAKs.
#   (a) a DPDK sequencer serves two kernel-socket subscribers; kernel publishers; 2 % of the stream
#       and 1 % of the PUB frames dropped in K. Every process signs and checks its frames
#       (--auth-key): the DPDK sequencer must sign what it sends and refuse what is not signed, so
#       an unsigned publisher gets nothing sequenced and its PUBs are counted as dropped there.
#   (b) a kernel sequencer serves a DPDK subscriber and a kernel subscriber; 2 % of the stream
#       leaving K's veth dropped (the kernel subscriber's looped-back copy passes the same hook, so
#       both lose, independently).
#   (c) a kernel sequencer, a DPDK publisher beside a kernel one, a DPDK archiver and a kernel
#       subscriber; 2 % of the stream leaving K's veth and 1 % of the PUB frames entering K dropped.
#       The two DPDK processes share d0 (each its own packet socket and address). When the stream
#       ends, `seqcast replay` in K fetches the whole range from the DPDK archiver: its digest must
#       equal the live subscriber's, and `seqcast dump --verify` must find the log whole.
#   (d) as (b) with the DPDK subscriber on net_af_xdp (generic XDP on the veth). A failure there
#       counts like any other; only where AF_XDP is missing (this DPDK has no net_af_xdp driver, or
#       the kernel refuses AF_XDP sockets) is (d) left out, and the log says which.
#       SEQCAST_IT_NO_XDP=1 leaves it out too.
# Every subscriber: all messages, no loss, digests equal across DPDK and kernel subscribers.
# Before (a), a probe brings net_af_packet up in D: where the EAL cannot start here the test
# SKIPs saying why; once it can, a DPDK process that dies is a failure, never a skip.
#
# usage: dpdk_interop.sh /path/to/seqcast   (needs root, iproute2, nftables, a DPDK build; else SKIP)
. "$(dirname "$0")/archiver_lib.sh" "$@"

N=${SEQCAST_IT_MESSAGES:-10000}
RATE=${SEQCAST_IT_RATE:-2500}
NPUB=2
TOTAL=$((N * NPUB))
LIMIT=120

[[ $(id -u) -eq 0 ]] || skip "needs root for network namespaces, nftables and AF_PACKET"
command -v ip >/dev/null || skip "iproute2 (ip) is not installed"
command -v nft >/dev/null || skip "nftables (nft) is not installed"
if "$SEQCAST" sub --transport dpdk --group 239.1.1.1:1 2>&1 | grep -q "built without DPDK"; then
    skip "this seqcast was built without DPDK"
fi

TAG="sd$$r$((RANDOM % 1000))"
D=$TAG-d
K=$TAG-k
DPDK_IP=10.88.0.1
KERN_IP=10.88.0.2
for ns in "$D" "$K"; do
    ip netns add "$ns" 2>"$TMP/netns.err" || skip "cannot create network namespaces: $(cat "$TMP/netns.err")"
    NETNS+=("$ns")
    ip -n "$ns" link set lo up
done
ip -n "$D" link add d0 type veth peer name k0 netns "$K" 2>"$TMP/veth.err" || skip "cannot create a veth pair: $(cat "$TMP/veth.err")"
ip -n "$D" link set d0 up
# No address on d0: the kernel in D must not answer ARP or send ICMP for the DPDK endpoints.
ip netns exec "$D" sysctl -qw net.ipv6.conf.d0.disable_ipv6=1 2>/dev/null || true
ip -n "$K" addr add $KERN_IP/24 dev k0
ip -n "$K" link set k0 up
ip -n "$K" route add 239.0.0.0/8 dev k0
ip netns exec "$K" sysctl -qw net.ipv6.conf.k0.disable_ipv6=1 2>/dev/null || true
{ ip netns exec "$K" nft add table inet t &&
    ip netns exec "$K" nft add chain inet t in '{ type filter hook input priority 0; }' &&
    ip netns exec "$K" nft add chain inet t out '{ type filter hook output priority 0; }' &&
    ip netns exec "$K" nft add chain inet t post '{ type filter hook postrouting priority 0; }'; } \
    2>"$TMP/nft.err" || skip "nftables does not work here: $(cat "$TMP/nft.err")"
nft_dropped() { ip netns exec "$K" nft list chain inet t "$1" 2>/dev/null | sed -n 's/.*counter packets \([0-9]*\).*/\1/p' | paste -sd+ | bc; }

# eal NAME VDEV: EAL arguments for one DPDK process (its own file prefix, no hugepages, no PCI).
eal() { echo "--no-huge -m 256 --no-pci --no-shconf --file-prefix=$TAG-$1 --vdev=$2 --log-level=lib.eal:error --no-telemetry"; }

# Kernel-side processes use --no-gso: a UDP GSO super-packet crosses a veth whole, and the DPDK end
# (a packet socket) would see one oversized frame instead of the datagrams.
KOPTS=(--interface $KERN_IP --no-gso)

# run_pubs LABEL SEQ_ADDR [OPTION...]: the publishers (in K), waited for.
run_pubs() {
    local i l=$1 a=$2
    shift 2
    for i in $(seq 1 $NPUB); do
        start_ns "$l-pub$i" "$K" $LIMIT "$SEQCAST" pub --sequencer "$a" --bind $KERN_IP:0 "${KOPTS[@]}" --rate "$RATE" \
            --count "$N" --size 8-4000 --window 512 --seed "$i" --json "$TMP/$l-pub$i.json" --linger 30 "$@"
    done
    for i in $(seq 1 $NPUB); do
        wait_exit "$l-pub$i" 90 || die "$l: publisher $i still running after 90 s"
        check "$l pub$i exit status" "${RC[$l-pub$i]}" eq 0
        check "$l pub$i confirmed" "$(json "$TMP/$l-pub$i.json" confirmed)" eq "$N"
    done
}
# heard NAME...: every named subscriber has received heartbeats.
heard() {
    local n p v
    for n in "$@"; do
        p=$(seqcast_pid "$n") || return 1
        v=$(counter "$p" heartbeats_received)
        [[ ${v:-0} -gt 0 ]] || return 1
    done
}
# end_run SEQ SUB...: stop the sequencer (END_OF_STREAM), wait for the subscribers.
end_run() {
    local seq=$1 s
    shift
    local pids=() p
    for s in "$@"; do p=$(seqcast_pid "$s") && pids+=("$p"); done
    delivered() {
        local q v
        for q in "${pids[@]}"; do
            v=$(counter "$q" messages_in)
            [[ -z $v ]] && continue
            ((v >= TOTAL)) || return 1
        done
    }
    wait_until 60 "every subscriber delivered $TOTAL messages" delivered || true
    stop "$seq" TERM 10 || true
    for s in "$@"; do
        # Every subscriber has delivered the stream by now, so END_OF_STREAM ends it within
        # milliseconds; the sequencer sends it once, and 2 % of the time nftables drops that datagram
        # (no repair: the sequencer is gone). Such a subscriber is stopped and checked the same way.
        wait_exit "$s" 3 || { log "$s did not see END_OF_STREAM within 3 s (dropped?): stopping it"; stop "$s" TERM 10 || true; }
    done
}
# check_subs LABEL SUB...: full, lossless, ordered, equal digests; loss happened on the first.
check_subs() {
    local label=$1 s f d0=""
    shift
    printf '%-12s %8s %6s %9s %6s %5s %s\n' who messages gaps repaired naks lost digest
    for s in "$@"; do
        f=$TMP/$s.json
        if [[ ! -s $f ]]; then
            echo "CHECK FAILED: $s wrote no summary (exit ${RC[$s]:-?})"
            FAILURES=$((FAILURES + 1))
            continue
        fi
        printf '%-12s %8s %6s %9s %6s %5s %s\n' "$s" "$(json "$f" messages)" "$(json "$f" gaps)" "$(json "$f" repaired_offsets)" \
            "$(json "$f" naks_sent)" "$(json "$f" lost_offsets)" "$(json "$f" digest)"
        show_losses "$s"
        check "$s messages" "$(json "$f" messages)" eq "$TOTAL"
        check "$s lost_offsets" "$(json "$f" lost_offsets)" eq 0
        check "$s order_violations" "$(json "$f" order_violations)" eq 0
        check "$s fifo_violations" "$(json "$f" fifo_violations)" eq 0
        [[ -z $d0 ]] && d0=$(json "$f" digest)
        check "$s digest equals $1's" "$(json "$f" digest)" == "$d0"
    done
    check "$label: $1 saw gaps (loss happened)" "$(json "$TMP/$1.json" gaps)" gt 0
    check "$label: $1 repaired offsets" "$(json "$TMP/$1.json" repaired_offsets)" gt 0
}
dpdk_summary() { grep -h 'dpdk port' "$TMP/$1.log" | sed "s/^/  $1: /"; }

# ---- can DPDK run here at all? ----
# A DPDK subscriber on net_af_packet in D for a second: an EAL or port that cannot come up here is
# a SKIP, with its words. From here on, a DPDK process that dies is a failure.
pick_ports
# shellcheck disable=SC2046
ip netns exec "$D" timeout -k 5 30 "$SEQCAST" sub --transport dpdk --group 239.9.9.9:$((PORT + 1)) --interface $DPDK_IP/24 \
    --duration 1 -- $(eal probe net_af_packet0,iface=d0) >"$TMP/probe.out" 2>"$TMP/probe.log"
PROBE_RC=$?
if ((PROBE_RC != 0)); then
    if grep -qiE "EAL|no port" "$TMP/probe.log"; then
        skip "DPDK cannot bring up net_af_packet here: $(tail -n 3 "$TMP/probe.log" | tr '\n' ' ')"
    fi
    die "a DPDK subscriber on net_af_packet exited $PROBE_RC: $(tail -n 3 "$TMP/probe.log" | tr '\n' ' ')"
fi

# ---- (a) DPDK sequencer, kernel subscribers and publishers, every frame signed ----
KEYS=$TMP/keys
printf '1 %s\n' "$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')" >"$KEYS"
chmod 600 "$KEYS"
AUTH=(--auth-key "$KEYS")
pick_ports
pick_group
P=$PORT
G=$GROUP_ADDR:$((P + 1))
ip netns exec "$K" nft add rule inet t in udp dport $((P + 1)) numgen random mod 100 '<' 2 counter drop
ip netns exec "$K" nft add rule inet t out udp dport $P numgen random mod 100 '<' 1 counter drop
log "(a) DPDK sequencer $DPDK_IP:$P (net_af_packet on d0) -> kernel subscribers on $G, all signed (--auth-key); nftables in K drops 2% of the stream, 1% of PUBs"
# shellcheck disable=SC2046
start_ns a-seq "$D" $LIMIT "$SEQCAST" sequencer --transport dpdk --control $DPDK_IP:$P --group "$G" --interface $DPDK_IP/24 \
    --state "$TMP/a.state" --ring 64M "${AUTH[@]}" -- $(eal a-seq net_af_packet0,iface=d0)
for i in 1 2; do
    start_ns "a-sub$i" "$K" $LIMIT "$SEQCAST" sub --group "$G" "${KOPTS[@]}" --verify --exit-on-eos --json "$TMP/a-sub$i.json" \
        --reorder-buffer 64M "${AUTH[@]}"
done
if ! wait_until 20 "kernel subscribers hear the DPDK sequencer" heard a-sub1 a-sub2; then
    exited a-seq && die "(a) the DPDK sequencer exited (${RC[a-seq]}): $(tail -n 3 "$TMP/a-seq.log" | tr '\n' ' ')"
    die "(a) the kernel subscribers did not hear the DPDK sequencer"
fi
# An unsigned publisher: the DPDK sequencer must drop its PUBs (nothing confirmed, nothing sequenced).
start_ns a-unsigned "$K" $LIMIT "$SEQCAST" pub --sequencer $DPDK_IP:$P --bind $KERN_IP:0 "${KOPTS[@]}" --rate 1000 --count 20 --linger 3 \
    --json "$TMP/a-unsigned.json"
wait_exit a-unsigned 30 || die "(a) the unsigned publisher still runs after 30 s"
check "(a) unsigned publisher: offered its messages" "$(json "$TMP/a-unsigned.json" offered)" eq 20
check "(a) unsigned publisher: nothing confirmed" "$(json "$TMP/a-unsigned.json" confirmed)" eq 0
A_SEQ_PID=$(seqcast_pid a-seq)
A_BAD=$(counter "$A_SEQ_PID" drop_bad_auth)
A_UNKNOWN=$(counter "$A_SEQ_PID" drop_unknown_key)
A_REFUSED=$((${A_BAD:-0} + ${A_UNKNOWN:-0}))  # unreadable counters count as 0: the check fails
log "(a) the DPDK sequencer dropped $A_REFUSED unsigned PUBs (drop_bad_auth + drop_unknown_key)"
check "(a) DPDK sequencer dropped the unsigned PUBs" "$A_REFUSED" gt 0
check "(a) DPDK sequencer sequenced nothing unsigned" "$(counter "$A_SEQ_PID" head_offset)" eq 0
run_pubs a $DPDK_IP:$P "${AUTH[@]}"
end_run a-seq a-sub1 a-sub2
check "(a) sequencer exit status" "${RC[a-seq]:-?}" eq 0
check_subs "(a)" a-sub1 a-sub2
A_DROPS=$(nft_dropped in)+$(nft_dropped out)
check "(a) nftables drops" "$(echo "$A_DROPS" | bc)" gt 0
dpdk_summary a-seq
ip netns exec "$K" nft flush chain inet t in
ip netns exec "$K" nft flush chain inet t out

# ---- (b) kernel sequencer, a DPDK subscriber beside a kernel one ----
# run_b LABEL VDEV: one run of (b) with the DPDK subscriber on VDEV.
run_b() {
    local l=$1 vdev=$2
    pick_ports
    pick_group
    local p=$PORT g=$GROUP_ADDR:$((PORT + 1))
    ip netns exec "$K" nft flush chain inet t post
    ip netns exec "$K" nft add rule inet t post oifname k0 udp dport $((p + 1)) numgen random mod 100 '<' 2 counter drop
    log "($l) kernel sequencer $KERN_IP:$p -> DPDK subscriber ($vdev) and a kernel subscriber on $g; nftables drops 2% leaving k0"
    start_ns "$l-seq" "$K" $LIMIT "$SEQCAST" sequencer --control $KERN_IP:$p --group "$g" "${KOPTS[@]}" --state "$TMP/$l.state" --ring 64M
    # shellcheck disable=SC2046
    start_ns "$l-dsub" "$D" $LIMIT "$SEQCAST" sub --transport dpdk --group "$g" --interface $DPDK_IP/24 --verify --exit-on-eos \
        --json "$TMP/$l-dsub.json" --reorder-buffer 64M -- $(eal "$l-dsub" "$vdev")
    start_ns "$l-ksub" "$K" $LIMIT "$SEQCAST" sub --group "$g" "${KOPTS[@]}" --verify --exit-on-eos --json "$TMP/$l-ksub.json" \
        --reorder-buffer 64M
    if ! wait_until 20 "both subscribers hear the kernel sequencer" heard "$l-dsub" "$l-ksub"; then
        exited "$l-dsub" && die "($l) the DPDK subscriber on $vdev exited (${RC[$l-dsub]}): $(tail -n 3 "$TMP/$l-dsub.log" | tr '\n' ' ')"
        die "($l) the subscribers did not hear the kernel sequencer"
    fi
    run_pubs "$l" $KERN_IP:$p
    end_run "$l-seq" "$l-dsub" "$l-ksub"
    check "($l) DPDK subscriber exit status" "${RC[$l-dsub]:-?}" eq 0
    check_subs "($l)" "$l-dsub" "$l-ksub"
    check "($l) nftables drops" "$(nft_dropped post)" gt 0
    dpdk_summary "$l-dsub"
}
run_b b net_af_packet0,iface=d0

# ---- (c) a DPDK publisher and a DPDK archiver, a kernel sequencer; replay from the kernel side ----
PUB_IP=10.88.0.3
ARCH_IP=10.88.0.4
pick_ports
pick_group
pick_port
P=$PORT
G=$GROUP_ADDR:$((P + 1))
ARCH=$ARCH_IP:$ONE_PORT
ip netns exec "$K" nft flush chain inet t post
ip netns exec "$K" nft add rule inet t post oifname k0 udp dport $((P + 1)) numgen random mod 100 '<' 2 counter drop
ip netns exec "$K" nft add rule inet t in iifname k0 udp dport $P numgen random mod 100 '<' 1 counter drop
log "(c) kernel sequencer $KERN_IP:$P on $G <- DPDK publisher $PUB_IP and a kernel one; DPDK archiver $ARCH; nftables drops 2% of the stream leaving k0, 1% of the DPDK publisher's PUBs"
start_ns c-seq "$K" $LIMIT "$SEQCAST" sequencer --control $KERN_IP:$P --group "$G" "${KOPTS[@]}" --state "$TMP/c.state" --ring 64M
# shellcheck disable=SC2046
start_ns c-arch "$D" $LIMIT "$SEQCAST" archiver --transport dpdk --group "$G" --control "$ARCH" --interface $ARCH_IP/24 \
    --log "$TMP/c.seqlog" --size 64M --segment 4M -- $(eal c-arch net_af_packet0,iface=d0)
start_ns c-ksub "$K" $LIMIT "$SEQCAST" sub --group "$G" "${KOPTS[@]}" --verify --exit-on-eos --json "$TMP/c-ksub.json" \
    --reorder-buffer 64M
wait_until 20 "the DPDK archiver serves replays" archiver_ready c-arch || die "(c) the DPDK archiver did not start: $(tail -n 3 "$TMP/c-arch.log")"
wait_until 20 "the archiver and the subscriber hear the kernel sequencer" heard c-arch c-ksub ||
    die "(c) the DPDK archiver or the kernel subscriber did not hear the kernel sequencer"
# shellcheck disable=SC2046
start_ns c-pub1 "$D" $LIMIT "$SEQCAST" pub --transport dpdk --sequencer $KERN_IP:$P --bind $PUB_IP:0 --interface $PUB_IP/24 \
    --rate "$RATE" --count "$N" --size 8-4000 --window 512 --seed 1 --json "$TMP/c-pub1.json" --linger 30 \
    -- $(eal c-pub1 net_af_packet0,iface=d0)
start_ns c-pub2 "$K" $LIMIT "$SEQCAST" pub --sequencer $KERN_IP:$P --bind $KERN_IP:0 "${KOPTS[@]}" --rate "$RATE" \
    --count "$N" --size 8-4000 --window 512 --seed 2 --json "$TMP/c-pub2.json" --linger 30
for i in 1 2; do
    wait_exit "c-pub$i" 90 || die "(c): publisher $i still running after 90 s"
    check "(c) pub$i exit status" "${RC[c-pub$i]}" eq 0
    check "(c) pub$i confirmed" "$(json "$TMP/c-pub$i.json" confirmed)" eq "$N"
done
check "(c) DPDK publisher's PUBs dropped by nftables" "$(nft_dropped in)" gt 0
dpdk_summary c-pub1
# Everything the sequencer sent is in the archive before the stream ends (the archiver repairs
# its gaps from the sequencer by NAK, over DPDK).
C_SEQ_PID=$(seqcast_pid c-seq)
C_HEAD=$(counter "$C_SEQ_PID" head_offset)
archived() { counter_ge "$(seqcast_pid c-arch)" archive_next "$C_HEAD"; }
wait_until 30 "the DPDK archiver holds offsets below $C_HEAD" archived || true
C_ARCH_PID=$(seqcast_pid c-arch)
log "(c) sequencer head $C_HEAD; archive_next $(counter "$C_ARCH_PID" archive_next); archiver gaps $(counter "$C_ARCH_PID" gaps_detected), naks $(counter "$C_ARCH_PID" naks_sent), repaired $(counter "$C_ARCH_PID" gap_offsets_repaired)"
check "(c) archiver's archive_next reaches the sequencer's head" "$(counter "$C_ARCH_PID" archive_next)" ge "${C_HEAD:-1}"
check "(c) the DPDK archiver repaired gaps by NAK" "$(counter "$C_ARCH_PID" gap_offsets_repaired)" gt 0
end_run c-seq c-ksub
check "(c) kernel subscriber exit status" "${RC[c-ksub]:-?}" eq 0
check_subs "(c)" c-ksub
# The whole range back from the DPDK archiver, to a kernel-socket client in K.
ip netns exec "$K" timeout -k 5 60 "$SEQCAST" replay --archiver "$ARCH" --bind $KERN_IP:0 --from 0 --to "$C_HEAD" --verify \
    --json "$TMP/c-replay.json" --timeout 30 >"$TMP/c-replay.out" 2>"$TMP/c-replay.log"
C_REPLAY_RC=$?
log "(c) replay of [0, $C_HEAD) from the DPDK archiver: exit $C_REPLAY_RC, $(cat "$TMP/c-replay.out"); the archiver sent $(counter "$C_ARCH_PID" replay_datagrams_out) replay datagrams"
check "(c) replay exit status" "$C_REPLAY_RC" eq 0
check "(c) replay messages" "$(messages_of "$TMP/c-replay.out")" eq "$TOTAL"
check "(c) replay digest equals the live subscriber's" "$(digest_of "$TMP/c-replay.out")" == "$(digest_of "$TMP/c-ksub.out")"
check "(c) live digest (stdout) equals its summary's" "$(digest_of "$TMP/c-ksub.out")" == "$(json "$TMP/c-ksub.json" digest)"
stop c-arch TERM 20 >/dev/null || true
check "(c) archiver exit status" "${RC[c-arch]:-?}" eq 0
dpdk_summary c-arch
dump_range "$TMP/c.seqlog"
log "(c) dump --verify: exit $DUMP_RC, offsets ${DUMP_FIRST:-?}..${DUMP_NEXT:-?}, ${DUMP_RECORDS:-?} records, ${DUMP_PROBLEMS:-?} problems"
check "(c) dump --verify exit status" "$DUMP_RC" eq 0
check "(c) dump problems" "${DUMP_PROBLEMS:-?}" eq 0
check "(c) archive reaches the sequencer's head" "${DUMP_NEXT:-0}" ge "$C_HEAD"
ip netns exec "$K" nft flush chain inet t in

# ---- (d) (b) again on AF_XDP, where the kernel and this DPDK have it ----
# xdp_missing: why AF_XDP cannot run here at all (empty when it can): no net_af_xdp driver in this
# DPDK, or a kernel that refuses AF_XDP sockets. Anything else that goes wrong in (d) is a failure.
xdp_missing() {
    local pmds
    pmds=$(ls -d "$(pkg-config --variable=libdir libdpdk 2>/dev/null)"/dpdk/pmds-* 2>/dev/null | head -n 1)
    if [[ -n $pmds && -d $pmds ]] && ! ls "$pmds" | grep -q af_xdp; then
        echo "this DPDK has no net_af_xdp driver (none in $pmds)"
        return
    fi
    python3 - <<'PY' 2>/dev/null || echo "cannot tell whether the kernel has AF_XDP (python3 missing)"
import errno, socket, sys
try:
    socket.socket(44, socket.SOCK_RAW, 0).close()  # AF_XDP
except OSError as e:
    if e.errno in (errno.EAFNOSUPPORT, errno.EPROTONOSUPPORT):
        print("the kernel refuses AF_XDP sockets: " + e.strerror)
PY
}
if [[ -n ${SEQCAST_IT_NO_XDP:-} ]]; then
    log "(d) left out: SEQCAST_IT_NO_XDP"
elif XDP_WHY=$(xdp_missing) && [[ -n $XDP_WHY ]]; then
    log "(d) left out: AF_XDP is not available here: $XDP_WHY"
else
    run_b d net_af_xdp0,iface=d0,start_queue=0,queue_count=1
    log "(d) net_af_xdp: ran the same checks"
fi
finish
