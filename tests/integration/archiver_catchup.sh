#!/usr/bin/env bash
# A restarted archiver catches up with a live stream at 20000 msg/s. On loopback with no injected
# loss: a sequencer (--ring 256M), an archiver, one subscriber and `pub --rate 20000 --size 200`.
# After a few seconds the archiver is killed (SIGKILL) and restarted on the same log ~1 s later,
# while the publisher goes on. The restarted archiver must repair what it missed from the
# sequencer's ring while the live stream keeps arriving: its recorded head (archive_next) must
# reach the sequencer's head as of the restart within CATCHUP_S, and the sequencer's end after the
# publisher is done; nothing may be recorded as never received (stop line, counters, `dump --verify`),
# and a replay of the whole log from the archiver must have the subscriber's digest.
#
# The sequencer's per-host repair budget is 8M/s (--retransmit-rate-per-host; the default 64M
# repairs this backlog in ~0.2 s on an idle host, before anything can go wrong) and the archiver's
# reorder buffer 4M (~0.25 s of this stream): the repair takes over a second while the live stream
# overflows the buffer, the situation of a restarted archiver on a busy host. A receiver that asks
# for everything at once, makes a gap of each dropped datagram and lets held gaps expire records
# ~150000 offsets as never received here; one that repairs in order what it can hold catches up
# in ~1.3 s with nothing lost.
#
# usage: archiver_catchup.sh /path/to/seqcast
# Environment (calibration only): SEQCAST_IT_MESSAGES (default 400000: 20 s of publishing),
# SEQCAST_IT_RATE (default 20000), SEQCAST_IT_SIZE (default 200), SEQCAST_IT_OUTAGE_S (default 1),
# SEQCAST_IT_CATCHUP_S (default 20), SEQCAST_IT_REORDER (default 4M), SEQCAST_IT_REPAIR_RATE (default 8M).
. "$(dirname "$0")/archiver_lib.sh" "$@"

N=${SEQCAST_IT_MESSAGES:-400000}
RATE=${SEQCAST_IT_RATE:-20000}
SIZE=${SEQCAST_IT_SIZE:-200}
OUTAGE=${SEQCAST_IT_OUTAGE_S:-1}
# The backlog (~35000 offsets: the outage plus the restart's own time) is repaired at 8M/s while
# ~5 MB/s of live traffic keeps coming: ~1.3 s measured, idle or with a CPU busy. archive_next also
# moves past offsets recorded as gaps: the checks on gap records below tell those apart.
CATCHUP_S=${SEQCAST_IT_CATCHUP_S:-20}
LIMIT=300
LOGFILE=$TMP/archive.seqlog
REORDER=${SEQCAST_IT_REORDER:-4M}
REPAIR_RATE=${SEQCAST_IT_REPAIR_RATE:-8M}
ARCH_FLAGS=(--size 512M --segment 16M --reorder-buffer "$REORDER")

ports_and_group
log "sequencer $CONTROL, group $GROUP, archiver $ARCHIVER; $N messages of $SIZE B at $RATE msg/s, archiver down ${OUTAGE}s; repairs at most $REPAIR_RATE/s per host, archiver reorder buffer $REORDER"
start_sequencer seq $LIMIT --ring 256M --retransmit-rate-per-host "$REPAIR_RATE"
start_archiver arch $LIMIT "$LOGFILE" "${ARCH_FLAGS[@]}"
start sub $LIMIT "$SEQCAST" sub --group "$GROUP" --verify --messages "$N" --json "$TMP/sub.json"
SEQ_PID=$(seqcast_pid seq) || die "sequencer did not start"
ARCH_PID=$(seqcast_pid arch) || die "archiver did not start"
seqcast_pid sub >/dev/null || die "subscriber did not start"
sleep 0.5
start pub $LIMIT "$SEQCAST" pub --sequencer "$CONTROL" --rate "$RATE" --count "$N" --size "$SIZE" --json "$TMP/pub.json" --linger 30

# Kill the archiver once it has recorded ~3 s of the stream, restart it OUTAGE seconds later.
wait_counter_ge "$ARCH_PID" archive_next $((RATE * 3)) 60 || die "the archiver did not record $((RATE * 3)) offsets within 60 s"
need_counter KILLED_AT "$ARCH_PID" archive_next
kill -KILL "$ARCH_PID"
stop arch KILL 10 >/dev/null 2>&1 || true
log "archiver killed at archive_next $KILLED_AT"
sleep "$OUTAGE"
exited pub && die "the publisher finished before the archiver restarted: raise SEQCAST_IT_MESSAGES"
start_archiver arch $LIMIT "$LOGFILE" "${ARCH_FLAGS[@]}"
ARCH_PID=$(seqcast_pid arch) || die "archiver did not restart"
T_RESTART=$(date +%s.%N)
need_counter HEAD_AT_RESTART "$SEQ_PID" head_offset
RESUMED=$(sed -n 's/.*offsets \[[0-9]*, \([0-9]*\)) retained.*/\1/p' "$TMP/arch.log" | head -n 1)
log "archiver restarted at offset ${RESUMED:-?}; sequencer head $HEAD_AT_RESTART ($((HEAD_AT_RESTART - ${RESUMED:-0})) offsets behind)"

# Catch-up: the archiver's recorded head passes the sequencer's head as of the restart while live
# traffic continues. Sample its progress (a frozen head is the failure this test is about).
CAUGHT_UP=
LAST_NEXT=-1
FROZEN_S=0
MAX_FROZEN_S=0
while :; do
    NOW=$(date +%s.%N)
    ELAPSED=$(echo "$NOW - $T_RESTART" | bc)
    NEXT=$(counter "$ARCH_PID" archive_next)
    [[ -n $NEXT ]] || die "the restarted archiver is gone ($(tail -n 3 "$TMP/arch.log"))"
    printf '%6.2f next %s naks %s gaps %s overflow %s repaired %s lost %s\n' "$ELAPSED" "$NEXT" \
        "$(counter "$ARCH_PID" naks_sent)" "$(counter "$ARCH_PID" gaps_detected)" "$(counter "$ARCH_PID" drop_overflow)" \
        "$(counter "$ARCH_PID" gap_offsets_repaired)" "$(counter "$ARCH_PID" offsets_lost)" >>"$TMP/progress.txt"
    if ((NEXT >= HEAD_AT_RESTART)); then
        CAUGHT_UP=$ELAPSED
        break
    fi
    if ((NEXT == LAST_NEXT)); then
        FROZEN_S=$(echo "$FROZEN_S + 0.25" | bc)
        (($(echo "$FROZEN_S > $MAX_FROZEN_S" | bc))) && MAX_FROZEN_S=$FROZEN_S
    else
        FROZEN_S=0
    fi
    LAST_NEXT=$NEXT
    (($(echo "$ELAPSED > $CATCHUP_S" | bc))) && break
    sleep 0.25
done
if [[ -n $CAUGHT_UP ]]; then
    log "caught up with head $HEAD_AT_RESTART ${CAUGHT_UP}s after the restart (recorded head frozen at most ${MAX_FROZEN_S}s)"
else
    log "not caught up ${CATCHUP_S}s after the restart: archive_next $NEXT < $HEAD_AT_RESTART (frozen at most ${MAX_FROZEN_S}s); progress:"
    sed 's/^/    /' "$TMP/progress.txt" | awk 'NR % 4 == 1'
fi
check "the restarted archiver caught up with head $HEAD_AT_RESTART within ${CATCHUP_S}s" "${CAUGHT_UP:+1}" == 1

wait_exit pub 120 || die "the publisher did not finish within 120 s"
check "publisher exit status" "${RC[pub]}" eq 0
wait_exit sub 60 || die "the subscriber did not deliver $N messages within 60 s of the publisher's end"
check "subscriber exit status" "${RC[sub]}" eq 0
need_counter HEAD "$SEQ_PID" head_offset
T_END=$(date +%s.%N)
if wait_counter_ge "$ARCH_PID" archive_next "$HEAD" 60; then
    log "archiver reached the sequencer's end $HEAD $(echo "$(date +%s.%N) - $T_END" | bc)s after the subscriber"
else
    check "the archiver reached the sequencer's end $HEAD (archive_next $(counter "$ARCH_PID" archive_next))" 0 eq 1
fi
wait_counter_ge "$ARCH_PID" archive_durable "$HEAD" 30 || log "the archiver's durable watermark did not reach $HEAD"
for c in naks_sent nak_offsets_requested gaps_detected drop_overflow gap_offsets_repaired offsets_lost archive_gaps archive_gap_offsets; do
    printf -v "A_$c" '%s' "$(counter "$ARCH_PID" "$c")"
done
log "restarted archiver: $A_naks_sent NAKs ($A_nak_offsets_requested offsets asked for), $A_gaps_detected gaps, $A_drop_overflow reorder overflows, $A_gap_offsets_repaired offsets repaired, $A_offsets_lost lost, $A_archive_gap_offsets never received ($A_archive_gaps gap records)"
log "sequencer: $(counter "$SEQ_PID" naks_received) NAKs received, $(counter "$SEQ_PID" retransmits) retransmits, $(counter "$SEQ_PID" retransmits_host_limited) host-limited"
check "archiver offsets lost" "${A_offsets_lost:-x}" eq 0
# Bounded NAK traffic: a receiver that repairs in order within its window sends a few hundred
# NAKs here; one that snowballs sent ~23500 (a gap per dropped datagram, NAKed again and again).
check "NAKs sent by the restarted archiver" "${A_naks_sent:-x}" lt 5000
check "archive_gap_offsets counter" "${A_archive_gap_offsets:-x}" eq 0

# The archive's content: a replay of [0, HEAD) has the subscriber's digest.
start replay 120 "$SEQCAST" replay --archiver "$ARCHIVER" --from 0 --to "$HEAD" --verify --timeout 100
wait_exit replay 130 || die "the replay did not finish"
check "replay exit status" "${RC[replay]}" eq 0
D_SUB=$(digest_of "$TMP/sub.out")
D_REPLAY=$(digest_of "$TMP/replay.out")
log "digests: subscriber ${D_SUB:-none}, replay ${D_REPLAY:-none} ($(messages_of "$TMP/replay.out") messages)"
check "subscriber messages" "$(json "$TMP/sub.json" messages)" eq "$N"
check "subscriber lost offsets" "$(json "$TMP/sub.json" lost_offsets)" eq 0
check "replay messages" "$(messages_of "$TMP/replay.out")" eq "$N"
check "replay digest equals the subscriber's" "${D_REPLAY:-none}" == "${D_SUB:-missing}"

stop arch TERM 30 >/dev/null || true
check "archiver exit status (SIGTERM)" "${RC[arch]}" eq 0
STOPLINE=$(grep 'stopped;' "$TMP/arch.log")
log "$STOPLINE"
check "archiver stop line says 0 offsets never received" "$(echo "$STOPLINE" | grep -c ' 0 offsets never received (0 gap records)')" eq 1
dump_range "$LOGFILE"
log "dump: offsets ${DUMP_FIRST:-?}..$((${DUMP_NEXT:-0} - 1)), $DUMP_RECORDS records, gap offsets ${DUMP_GAPS:-?}, exit $DUMP_RC"
check "dump --verify exit status" "$DUMP_RC" eq 0
check "dump gap offsets" "${DUMP_GAPS:-x}" eq 0
check "dump first offset" "${DUMP_FIRST:-x}" eq 0
check "dump next offset = head" "${DUMP_NEXT:-x}" eq "$HEAD"
stop seq TERM 10 >/dev/null || true
finish
