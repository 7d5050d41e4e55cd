#!/usr/bin/env bash
# Every END_OF_STREAM lost: an --exit-on-eos subscriber still learns of the end and finishes.
#
# The sequencer sends END_OF_STREAM three times when it stops, then lingers (--linger-ms, 1 s by
# default) answering NAKs and heartbeating with the END flag. Here two subscribers drop 100 % of
# the END_OF_STREAM frames (fault injection by frame type, --drop-type END_OF_STREAM), one of them
# also 5 % of everything else; a third, fault-free one is the reference. The sequencer is stopped
# right after the publisher's last confirmation, so the lossy subscriber usually still has gaps at
# the end. Each subscriber must exit on its own within a bound (the linger plus a repair, far below
# the bound), with status 0, its summary line, end_of_stream true in its JSON, every message
# delivered (0 lost) and the reference's digest; the lossy ones must really have dropped the
# END_OF_STREAM copies.
#
# usage: eos_lost.sh /path/to/seqcast
# Environment (calibration only): SEQCAST_IT_MESSAGES (default 20000), SEQCAST_IT_RATE (20000).
. "$(dirname "$0")/archiver_lib.sh" "$@"

N=${SEQCAST_IT_MESSAGES:-20000}
RATE=${SEQCAST_IT_RATE:-20000}
LIMIT=120
BOUND=20   # seconds after the sequencer's stop; a subscriber needs about 1 s (the linger)

ports_and_group
SEED=$(rand32)
log "$N messages -> $CONTROL -> $GROUP; nolossy/lossy drop every END_OF_STREAM (lossy also 5 % of all, seed $SEED)"
start_sequencer seq $LIMIT
start ref $LIMIT "$SEQCAST" sub --group "$GROUP" --verify --exit-on-eos --json "$TMP/ref.json"
start nolossy $LIMIT "$SEQCAST" sub --group "$GROUP" --verify --exit-on-eos --json "$TMP/nolossy.json" \
    --drop-type END_OF_STREAM
start lossy $LIMIT "$SEQCAST" sub --group "$GROUP" --verify --exit-on-eos --json "$TMP/lossy.json" \
    --drop-type END_OF_STREAM --loss 0.05 --fault-seed "$SEED" --nak-deadline-ms 10000
SUBS=(ref nolossy lossy)
heard() {
    local n p v
    for n in "${SUBS[@]}"; do
        p=$(seqcast_pid "$n") || return 1
        v=$(counter "$p" heartbeats_received)
        [[ ${v:-0} -gt 0 ]] || return 1
    done
}
wait_until 20 "the subscribers hear the sequencer" heard || die "no heartbeat reached the subscribers (multicast on loopback?)"

start pub $LIMIT "$SEQCAST" pub --sequencer "$CONTROL" --rate "$RATE" --count "$N" --size 8-3000 --seed 3 \
    --json "$TMP/pub.json" --linger 30
wait_exit pub $((N / RATE + 60)) || die "publisher still running"
check "pub exit status" "${RC[pub]}" eq 0
check "pub confirmed" "$(json "$TMP/pub.json" confirmed)" eq "$N"
LOSSY_NEXT=$(counter "$(seqcast_pid lossy)" head_offset)
log "published; stopping the sequencer at once (lossy is at offset ${LOSSY_NEXT:-?})"

T_STOP=$(date +%s%N)
stop seq TERM 15 >/dev/null
check "sequencer exit status" "${RC[seq]:-none}" eq 0
for n in "${SUBS[@]}"; do
    left=$((BOUND - ($(date +%s%N) - T_STOP) / 1000000000))
    ((left < 1)) && left=1
    if wait_exit "$n" "$left"; then
        log "$n exited $(echo "scale=2; ($(date +%s%N) - $T_STOP) / 1000000000" | bc) s after the sequencer was stopped"
    else
        log "$n still running $BOUND s after the sequencer's stop: it never learned of the end"
        stop "$n" TERM 10 >/dev/null || true
        check "$n exited on its own within $BOUND s" no == yes
    fi
done

D_REF=$(digest_of "$TMP/ref.out")
for n in "${SUBS[@]}"; do
    check "$n exit status" "${RC[$n]:-none}" eq 0
    check "$n saw the end of the stream" "$(json "$TMP/$n.json" end_of_stream)" == true
    check "$n summary line" "$(grep -c 'messages (.*end of stream$' "$TMP/$n.log")" eq 1
    check "$n messages" "$(json "$TMP/$n.json" messages)" eq "$N"
    check "$n lost offsets" "$(json "$TMP/$n.json" lost_offsets)" eq 0
    check "$n digest = ref digest" "$(digest_of "$TMP/$n.out")" == "${D_REF:-missing}"
done
for n in nolossy lossy; do
    check "$n dropped every END_OF_STREAM copy (3)" "$(json "$TMP/$n.json" fault_type_drops)" ge 3
done
check "lossy lost datagrams to the 5 % loss" "$(json "$TMP/lossy.json" fault_drops)" gt 0
finish
