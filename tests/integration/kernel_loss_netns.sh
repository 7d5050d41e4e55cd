#!/usr/bin/env bash
# Real multi-host shape on one machine: every process in its own network namespace, each joined by
# a veth pair to a Linux bridge (multicast snooping off) in a namespace of its own, and the packet
# loss made by the kernel: nftables `numgen random` rules drop 2% of the datagrams reaching the
# sequencer's control port (PUB frames, NAKs) and 2% of the stream reaching each subscriber.
# No fault injection in seqcast itself. Same checks as live_loss_loopback.
#
# usage: kernel_loss_netns.sh /path/to/seqcast   (needs root, iproute2 and nftables; else SKIP)
. "$(dirname "$0")/lib.sh" "$@"

N=${SEQCAST_IT_MESSAGES:-50000}
RATE=${SEQCAST_IT_RATE:-5000}
NSUB=3
NPUB=2
TOTAL=$((N * NPUB))
LIMIT=300
# See live_loss_loopback.sh: the default reorder buffer holds only ~0.1 s of this stream.
# Publisher window 512, not the default 4096: when the oldest unconfirmed message outlives the
# retransmission timeout (floor 200 us, far below scheduling delays on a loaded 2-core host) the
# publisher resends its whole window. With 4096 that multiplied the PUB traffic ~8x (855k resends
# for 100k messages) and overflowed the sequencer's receive buffer (1.07M kernel drops in 40 s),
# which also dropped subscribers' NAKs until gaps hit their 2 s deadline: lost offsets.
WINDOW=${SEQCAST_IT_WINDOW:-512}
REORDER=(--reorder-buffer ${SEQCAST_IT_REORDER:-256M})

[[ $(id -u) -eq 0 ]] || skip "needs root for network namespaces and nftables"
command -v ip >/dev/null || skip "iproute2 (ip) is not installed"
command -v nft >/dev/null || skip "nftables (nft) is not installed"

pick_ports
pick_group
TAG="sc$$r$((RANDOM % 1000))"
BR=$TAG-br
# mkns NAME: create a namespace (remembered for cleanup), loopback up.
mkns() {
    ip netns add "$1" 2>"$TMP/netns.err" || skip "cannot create network namespaces: $(cat "$TMP/netns.err")"
    NETNS+=("$1")
    ip -n "$1" link set lo up
}
mkns "$BR"
ip -n "$BR" link add br0 type bridge 2>"$TMP/br.err" || skip "cannot create a Linux bridge: $(cat "$TMP/br.err")"
ip -n "$BR" link set br0 type bridge mcast_snooping 0
ip -n "$BR" link set br0 up
# node NAME HOSTNUM: a namespace with eth0 = 10.77.0.HOSTNUM/24 on the bridge, multicast routed via eth0.
node() {
    local ns=$TAG-$1
    mkns "$ns"
    ip -n "$BR" link add "p$2" type veth peer name eth0 netns "$ns" || die "veth for $1"
    ip -n "$BR" link set "p$2" master br0 up
    ip -n "$ns" addr add "10.77.0.$2/24" dev eth0
    ip -n "$ns" link set eth0 up
    ip -n "$ns" route add 239.0.0.0/8 dev eth0
}
# drop_pct NAME PORT PCT: nftables in NAME's namespace drops PCT% of UDP datagrams to PORT, counted.
drop_pct() {
    local ns=$TAG-$1
    { ip netns exec "$ns" nft add table inet t &&
        ip netns exec "$ns" nft add chain inet t in '{ type filter hook input priority 0; }' &&
        ip netns exec "$ns" nft add rule inet t in udp dport "$2" numgen random mod 100 '<' "$3" counter drop; } \
        2>"$TMP/nft.err" || skip "nftables does not work here: $(cat "$TMP/nft.err")"
}
# rcvbuf_drops NAME: datagrams the kernel dropped in NAME's namespace because a socket buffer was full.
rcvbuf_drops() {
    ip netns exec "$TAG-$1" nstat -az UdpRcvbufErrors 2>/dev/null | awk '$1 == "UdpRcvbufErrors" {print $2}'
}
nft_dropped() {
    ip netns exec "$TAG-$1" nft list chain inet t in 2>/dev/null | sed -n 's/.*counter packets \([0-9]*\).*/\1/p' | head -n 1
}

SEQ_IP=10.77.0.1
node seq 1
for i in $(seq 1 $NPUB); do node "pub$i" $((10 + i)); done
for i in $(seq 1 $NSUB); do node "sub$i" $((20 + i)); done
drop_pct seq "$PORT" 2
for i in $(seq 1 $NSUB); do drop_pct "sub$i" $((PORT + 1)) 2; done

CONTROL=$SEQ_IP:$PORT
GROUP=$GROUP_ADDR:$((PORT + 1))
log "namespaces $TAG-*: $NPUB publishers x $N messages (8-8192 B, $RATE msg/s each) -> sequencer $CONTROL -> $NSUB subscribers on $GROUP via bridge; nftables drops 2% on both legs"

start_ns seq "$TAG-seq" $LIMIT "$SEQCAST" sequencer --control "$CONTROL" --group "$GROUP" --interface $SEQ_IP \
    --state "$TMP/seq.state" --ring 256M
for i in $(seq 1 $NSUB); do
    start_ns "sub$i" "$TAG-sub$i" $LIMIT "$SEQCAST" sub --group "$GROUP" --interface "10.77.0.$((20 + i))" \
        --verify --exit-on-eos --json "$TMP/sub$i.json" "${REORDER[@]}"
done
heard() {
    local i p v
    for i in $(seq 1 $NSUB); do
        p=$(seqcast_pid "sub$i") || return 1
        v=$(counter "$p" heartbeats_received)
        [[ ${v:-0} -gt 0 ]] || return 1
    done
}
wait_until 20 "subscribers hear the sequencer across the bridge" heard ||
    die "the subscribers did not hear the sequencer's multicast across the bridge"

for i in $(seq 1 $NPUB); do
    start_ns "pub$i" "$TAG-pub$i" $LIMIT "$SEQCAST" pub --sequencer "$CONTROL" --bind "10.77.0.$((10 + i)):0" \
        --interface "10.77.0.$((10 + i))" --rate "$RATE" --count "$N" --size 8-8192 --window "$WINDOW" --seed "$i" \
        --json "$TMP/pub$i.json" --linger 60
done
SUBPIDS=()
for i in $(seq 1 $NSUB); do SUBPIDS+=("$(seqcast_pid "sub$i")"); done
for i in $(seq 1 $NPUB); do
    wait_exit "pub$i" 200 || die "publisher $i still running after 200 s"
done
log "publishers done (exit ${RC[pub1]} ${RC[pub2]})"
delivered_all() {
    local p v
    for p in "${SUBPIDS[@]}"; do
        v=$(counter "$p" messages_in)
        [[ -z $v ]] && continue
        ((v >= TOTAL)) || return 1
    done
}
wait_until 60 "every subscriber delivered $TOTAL messages" delivered_all || true
SEQ_PID=$(seqcast_pid seq)
SEQ_RETRANSMITS=$(counter "$SEQ_PID" retransmits)
SEQ_NAKS=$(counter "$SEQ_PID" naks_received)
stop seq TERM 10 || true
EOS_MISSED=0
for i in $(seq 1 $NSUB); do
    if ! wait_exit "sub$i" 20; then
        log "sub$i did not learn of the end within 20 s (END_OF_STREAM and the END-flagged heartbeats after it): stopping it"
        EOS_MISSED=$((EOS_MISSED + 1))
        stop "sub$i" TERM 10 || true
    fi
done
# The lingering sequencer's END-flagged heartbeats end the stream even when loss takes every
# END_OF_STREAM copy: a subscriber that does not exit is a bug (eos_lost.sh isolates it).
check "subscribers that did not learn of the end of the stream" "$EOS_MISSED" eq 0

for i in $(seq 1 $NPUB); do
    f=$TMP/pub$i.json
    [[ -s $f ]] || { echo "CHECK FAILED: publisher $i wrote no summary"; FAILURES=$((FAILURES + 1)); continue; }
    check "pub$i exit status" "${RC[pub$i]}" eq 0
    check "pub$i confirmed" "$(json "$f" confirmed)" eq "$N"
    check "pub$i complete" "$(json "$f" complete)" == true
done
printf '\n%-6s %9s %9s %8s %7s %9s %7s %6s %6s %6s %4s %-8s %s\n' who messages confirmed resent gaps repaired naks lost order fifo pubs digest nft_drops
DROPS_SEQ=$(nft_dropped seq)
for i in $(seq 1 $NPUB); do
    f=$TMP/pub$i.json
    printf '%-6s %9s %9s %8s\n' "pub$i" "$(json "$f" offered)" "$(json "$f" confirmed)" "$(json "$f" resent)"
done
DIGEST0=
for i in $(seq 1 $NSUB); do
    f=$TMP/sub$i.json
    if [[ ! -s $f ]]; then
        echo "CHECK FAILED: subscriber $i wrote no summary (exit ${RC[sub$i]:-?})"
        FAILURES=$((FAILURES + 1))
        continue
    fi
    d=$(nft_dropped "sub$i")
    printf '%-6s %9s %9s %8s %7s %9s %7s %6s %6s %6s %4s %-8s %s\n' "sub$i" "$(json "$f" messages)" "" "" "$(json "$f" gaps)" \
        "$(json "$f" repaired_offsets)" "$(json "$f" naks_sent)" "$(json "$f" lost_offsets)" "$(json "$f" order_violations)" \
        "$(json "$f" fifo_violations)" "$(json "$f" publishers)" "$(json "$f" digest)" "$d"
    show_losses "sub$i"
    check "sub$i messages" "$(json "$f" messages)" eq "$TOTAL"
    check "sub$i lost_offsets" "$(json "$f" lost_offsets)" eq 0
    check "sub$i order_violations" "$(json "$f" order_violations)" eq 0
    check "sub$i fifo_violations" "$(json "$f" fifo_violations)" eq 0
    check "sub$i publishers" "$(json "$f" publishers)" eq "$NPUB"
    check "sub$i gaps (loss happened)" "$(json "$f" gaps)" gt 0
    check "sub$i repaired_offsets" "$(json "$f" repaired_offsets)" gt 0
    check "sub$i nftables drops" "${d:-0}" gt 0
    [[ -z $DIGEST0 ]] && DIGEST0=$(json "$f" digest)
    check "sub$i digest equals sub1's" "$(json "$f" digest)" == "$DIGEST0"
done
check "nftables drops at the sequencer (PUB leg)" "${DROPS_SEQ:-0}" gt 0
echo "sequencer: nftables dropped ${DROPS_SEQ:-?} datagrams to it; ${SEQ_NAKS:-?} NAKs received, ${SEQ_RETRANSMITS:-?} retransmits; $(grep -o 'stopped at offset [0-9]*' "$TMP/seq.log")"
echo "subscribers that missed END_OF_STREAM: $EOS_MISSED"
RB="receive-buffer overflow drops (not injected): seq $(rcvbuf_drops seq)"
for i in $(seq 1 $NSUB); do RB="$RB, sub$i $(rcvbuf_drops "sub$i")"; done
for i in $(seq 1 $NPUB); do RB="$RB, pub$i $(rcvbuf_drops "pub$i")"; done
echo "$RB"
finish
