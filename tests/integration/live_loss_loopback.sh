#!/usr/bin/env bash
# 2 publishers -> sequencer -> 3 subscribers on loopback multicast, with injected random and burst
# loss on both legs: the sequencer's receive side (PUB frames and NAKs) and every subscriber's.
# Every subscriber must deliver every message exactly once, in order, with identical digests, and
# the loss must really have happened (gaps and repairs counted).
#
# usage: live_loss_loopback.sh /path/to/seqcast
# Environment (for calibration only): SEQCAST_IT_MESSAGES (per publisher), SEQCAST_IT_RATE (per publisher).
. "$(dirname "$0")/lib.sh" "$@"

N=${SEQCAST_IT_MESSAGES:-200000}
RATE=${SEQCAST_IT_RATE:-5000}
NSUB=3
NPUB=2
TOTAL=$((N * NPUB))
LOSS=(--loss 0.02 --burst-loss 0.0005 --burst-length 50)
# The subscriber's reorder buffer is a pool of fixed slots of --max-datagram bytes each (default
# 2048, enough for the sequencer's default 1408-byte MTU), so the default 64M holds 32768
# datagrams. Messages of 8-8192 B at 2 x 5000 msg/s are ~30000 datagrams/s: about 1 s of this
# stream. On a loaded 2-core machine one repair that takes longer overflows it, every datagram after
# that is dropped and must be repaired too, and the NAK/retransmit load snowballs (observed: 7.6M
# retransmits, 10% of offsets declared lost). 256M (131072 slots, ~4 s) rides out such stalls;
# the checks below are unchanged.
# Publisher window 512, not the default 4096: when the oldest unconfirmed message outlives the
# retransmission timeout (floor 200 us, far below scheduling delays on a loaded 2-core host) the
# publisher resends its whole window. With 4096 that multiplied the PUB traffic ~8x (855k resends
# for 100k messages) and overflowed the sequencer's receive buffer (1.07M kernel drops in 40 s),
# which also dropped subscribers' NAKs until gaps hit their 2 s deadline: lost offsets.
WINDOW=${SEQCAST_IT_WINDOW:-512}
REORDER=(--reorder-buffer ${SEQCAST_IT_REORDER:-256M})
LIMIT=540   # no process outlives this

pick_ports
pick_group
SEED=$(rand32)
CONTROL=127.0.0.1:$PORT
GROUP=$GROUP_ADDR:$((PORT + 1))
log "$NPUB publishers x $N messages (8-8192 B, $RATE msg/s each, window $WINDOW) -> sequencer $CONTROL -> $NSUB subscribers on $GROUP; loss 2% + bursts of 50 on both legs, fault seed $SEED"

start seq $LIMIT "$SEQCAST" sequencer --control "$CONTROL" --group "$GROUP" --state "$TMP/seq.state" --ring 256M \
    "${LOSS[@]}" --fault-on rx --fault-seed "$SEED"
for i in $(seq 1 $NSUB); do
    start "sub$i" $LIMIT "$SEQCAST" sub --group "$GROUP" --verify --exit-on-eos --json "$TMP/sub$i.json" \
        "${REORDER[@]}" "${LOSS[@]}" --fault-on rx --fault-seed $((SEED + 1000 * i))
done

# Subscribers start at `latest`: wait until each has heard the sequencer's heartbeat.
heard() {
    local i p v
    for i in $(seq 1 $NSUB); do
        p=$(seqcast_pid "sub$i") || return 1
        v=$(counter "$p" heartbeats_received)
        [[ ${v:-0} -gt 0 ]] || return 1
    done
}
wait_until 20 "subscribers hear the sequencer" heard || die "the subscribers did not hear the sequencer (multicast on loopback?)"

for i in $(seq 1 $NPUB); do
    start "pub$i" $LIMIT "$SEQCAST" pub --sequencer "$CONTROL" --rate "$RATE" --count "$N" --size 8-8192 \
        --seed "$i" --json "$TMP/pub$i.json" --linger 60 --window "$WINDOW"
done
SUBPIDS=()
for i in $(seq 1 $NSUB); do SUBPIDS+=("$(seqcast_pid "sub$i")"); done

for i in $(seq 1 $NPUB); do
    wait_exit "pub$i" 400 || die "publisher $i still running after 400 s"
done
TPUB=$(echo "$(date +%s.%N) - $T0" | bc)
log "publishers done (exit ${RC[pub1]} ${RC[pub2]})"

# Give the subscribers time to repair the tail while the sequencer still answers NAKs.
delivered_all() {
    local p v
    for p in "${SUBPIDS[@]}"; do
        v=$(counter "$p" messages_in)
        [[ -z $v ]] && continue   # exited already
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

# Results.
for i in $(seq 1 $NPUB); do
    f=$TMP/pub$i.json
    [[ -s $f ]] || { echo "CHECK FAILED: publisher $i wrote no summary"; FAILURES=$((FAILURES + 1)); continue; }
    check "pub$i exit status" "${RC[pub$i]}" eq 0
    check "pub$i confirmed" "$(json "$f" confirmed)" eq "$N"
    check "pub$i complete" "$(json "$f" complete)" == true
    check "pub$i unconfirmed" "$(json "$f" unconfirmed)" eq 0
done
printf '\n%-6s %9s %9s %8s %7s %9s %7s %6s %6s %6s %4s %s\n' who messages confirmed resent gaps repaired naks lost order fifo pubs digest
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
    printf '%-6s %9s %9s %8s %7s %9s %7s %6s %6s %6s %4s %s\n' "sub$i" "$(json "$f" messages)" "" "" "$(json "$f" gaps)" \
        "$(json "$f" repaired_offsets)" "$(json "$f" naks_sent)" "$(json "$f" lost_offsets)" "$(json "$f" order_violations)" \
        "$(json "$f" fifo_violations)" "$(json "$f" publishers)" "$(json "$f" digest)"
    show_losses "sub$i"
    check "sub$i messages" "$(json "$f" messages)" eq "$TOTAL"
    check "sub$i lost_offsets" "$(json "$f" lost_offsets)" eq 0
    check "sub$i order_violations" "$(json "$f" order_violations)" eq 0
    check "sub$i fifo_violations" "$(json "$f" fifo_violations)" eq 0
    check "sub$i publishers" "$(json "$f" publishers)" eq "$NPUB"
    check "sub$i gaps (loss happened)" "$(json "$f" gaps)" gt 0
    check "sub$i repaired_offsets" "$(json "$f" repaired_offsets)" gt 0
    [[ -z $DIGEST0 ]] && DIGEST0=$(json "$f" digest)
    check "sub$i digest equals sub1's" "$(json "$f" digest)" == "$DIGEST0"
done
RESENT=0
for i in $(seq 1 $NPUB); do
    r=$(json "$TMP/pub$i.json" resent)
    RESENT=$((RESENT + ${r:-0}))
done
check "publisher resends (PUB-leg loss happened)" "$RESENT" gt 0
echo "sequencer: ${SEQ_NAKS:-?} NAKs received, ${SEQ_RETRANSMITS:-?} retransmits (before END_OF_STREAM); $(grep -o 'stopped at offset [0-9]*' "$TMP/seq.log")"
echo "publishing took ${TPUB}s from test start; subscribers that missed END_OF_STREAM: $EOS_MISSED"
finish
