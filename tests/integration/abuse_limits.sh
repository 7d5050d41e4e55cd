#!/usr/bin/env bash
# Abuse limits on loopback multicast, with real processes:
#  - a NAK flood from one host, 127.0.0.3 (every 100 us a NAK for the whole stream, at the sequencer's data
#    socket where subscribers send theirs) must leave the live stream its throughput: the publisher
#    keeps >= 80 % of its fixed rate and every honest subscriber gets every message; the flood is
#    held to the per-host retransmission budget (retransmits_host_limited grows);
#  - a subscriber that stops reading (SIGSTOP for 2 s) stalls neither the sequencer nor the other
#    subscriber, and after SIGCONT it catches up from the retransmit ring: same digest, nothing lost;
#  - NAKs from a source outside the sequencer's --allow list (127.0.0.2) are dropped and counted
#    (drop_not_allowed).
#
# usage: abuse_limits.sh /path/to/seqcast /path/to/nak_flood
. "$(dirname "$0")/lib.sh" "$@"
FLOOD=$(readlink -f "${2:-}")
[[ -x $FLOOD ]] || die "nak_flood tool '${2:-}' is not executable"

RATE=20000
N=100000           # 5 s at RATE
LIMIT=120
pick_ports
pick_group
CONTROL=127.0.0.1:$PORT
DATA=127.0.0.1:$((PORT + 2))
GROUP=$GROUP_ADDR:$((PORT + 1))
log "publisher $RATE msg/s x $N -> sequencer $CONTROL (data $DATA) -> 2 subscribers on $GROUP; NAK flood at the data socket; sub2 stopped for 2 s"

# The per-host budget is set low (8M/s) so that the flood certainly reaches it on this machine.
start seq $LIMIT "$SEQCAST" sequencer --control "$CONTROL" --data-bind "$DATA" --group "$GROUP" \
    --state "$TMP/seq.state" --ring 256M --retransmit-rate-per-host 8M --allow 127.0.0.1,127.0.0.3
for i in 1 2; do
    start "sub$i" $LIMIT "$SEQCAST" sub --group "$GROUP" --verify --exit-on-eos --json "$TMP/sub$i.json"
done
heard() {
    local i p v
    for i in 1 2; do
        p=$(seqcast_pid "sub$i") || return 1
        v=$(counter "$p" heartbeats_received)
        [[ ${v:-0} -gt 0 ]] || return 1
    done
}
wait_until 20 "subscribers hear the sequencer" heard || die "the subscribers did not hear the sequencer"
SEQ_PID=$(seqcast_pid seq)
SUB2_PID=$(seqcast_pid sub2)


T_START=$(date +%s.%N)
start pub $LIMIT "$SEQCAST" pub --sequencer "$CONTROL" --rate "$RATE" --count "$N" --size 16-256 --json "$TMP/pub.json"
start flood $LIMIT "$FLOOD" "$DATA" 1 10000 6 0 1000000 127.0.0.3
# The same flood from 127.0.0.2, outside the sequencer's --allow list.
start stranger $LIMIT "$FLOOD" "$DATA" 1 2000 6 0 1000000 127.0.0.2
sleep 1.5
log "stopping sub2 (SIGSTOP) for 2 s"
kill -STOP "$SUB2_PID"
sleep 2
kill -CONT "$SUB2_PID"
log "sub2 resumed"
wait_exit pub 60 || die "publisher still running after 60 s"
T_PUB=$(echo "$(date +%s.%N) - $T_START" | bc)
wait_exit flood 20 || true
wait_exit stranger 20 || true
HOST_LIMITED=$(counter "$SEQ_PID" retransmits_host_limited)
NOT_ALLOWED=$(counter "$SEQ_PID" drop_not_allowed)
RETRANSMITS=$(counter "$SEQ_PID" retransmits)
NAKS=$(counter "$SEQ_PID" naks_received)
delivered_all() {
    local i p v
    for i in 1 2; do
        p=$(seqcast_pid "sub$i") || continue
        v=$(counter "$p" messages_in)
        [[ -z $v ]] && continue
        ((v >= N)) || return 1
    done
}
wait_until 30 "both subscribers delivered $N messages" delivered_all || true
stop seq TERM 10 || true
for i in 1 2; do wait_exit "sub$i" 20 || stop "sub$i" TERM 10 || true; done

RATE_KEPT=$(echo "scale=3; $N / $T_PUB / $RATE" | bc)
printf '\n%-6s %9s %7s %9s %6s %s\n' who messages gaps repaired lost digest
for i in 1 2; do
    f=$TMP/sub$i.json
    printf '%-6s %9s %7s %9s %6s %s\n' "sub$i" "$(json "$f" messages)" "$(json "$f" gaps)" "$(json "$f" repaired_offsets)" \
        "$(json "$f" lost_offsets)" "$(json "$f" digest)"
done
echo "flood: $(cat "$TMP/flood.out" 2>/dev/null)"
echo "stranger: $(cat "$TMP/stranger.out" 2>/dev/null)"
echo "sequencer: ${NAKS:-?} NAKs received, ${RETRANSMITS:-?} retransmits, ${HOST_LIMITED:-?} held back by the per-host budget, ${NOT_ALLOWED:-?} datagrams from outside --allow dropped"
echo "publisher: $N messages at $RATE msg/s in ${T_PUB}s (wall, including start-up): $RATE_KEPT of the rate"
check "pub exit status" "${RC[pub]}" eq 0
check "pub confirmed" "$(json "$TMP/pub.json" confirmed)" eq "$N"
check "publisher kept >= 80% of its rate under the flood (x1000)" "$(echo "$RATE_KEPT * 1000 / 1" | bc)" ge 800
check "the flood hit the per-host budget" "${HOST_LIMITED:-0}" gt 0
check "the stranger's NAKs were dropped by the allowlist" "${NOT_ALLOWED:-0}" gt 1000
for i in 1 2; do
    f=$TMP/sub$i.json
    check "sub$i messages" "$(json "$f" messages)" eq "$N"
    check "sub$i lost_offsets" "$(json "$f" lost_offsets)" eq 0
    check "sub$i order_violations" "$(json "$f" order_violations)" eq 0
done
check "sub2 digest equals sub1's" "$(json "$TMP/sub2.json" digest)" == "$(json "$TMP/sub1.json" digest)"
finish
