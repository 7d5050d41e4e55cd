#!/usr/bin/env bash
# The archiver keeps everything a plain subscriber keeps, at full rate. On loopback with no
# injected loss: a sequencer (--ring 256M), an archiver (--size 2G, default durability and socket
# buffer), one subscriber, and `pub --rate 0 --count N --size 1024` (flat out). The subscriber must
# deliver all N; the archiver must record the same offsets with no gap record (nothing "never
# received"), say so in its stop line, `dump --verify` must pass (it fails on gap records), and a
# replay of the whole range from the archiver must have the subscriber's digest.
#
# usage: archiver_full_rate.sh /path/to/seqcast
# Environment (calibration only): SEQCAST_IT_MESSAGES (default 1000000).
. "$(dirname "$0")/archiver_lib.sh" "$@"

N=${SEQCAST_IT_MESSAGES:-1000000}
LIMIT=400
LOGFILE=$TMP/archive.seqlog

ports_and_group
log "sequencer $CONTROL, group $GROUP, archiver $ARCHIVER; $N messages of 1 KiB, flat out"
start_sequencer seq $LIMIT --ring 256M
start_archiver arch $LIMIT "$LOGFILE" --size 2G
start sub $LIMIT "$SEQCAST" sub --group "$GROUP" --verify --messages "$N" --json "$TMP/sub.json"
SEQ_PID=$(seqcast_pid seq) || die "sequencer did not start"
ARCH_PID=$(seqcast_pid arch) || die "archiver did not start"
seqcast_pid sub >/dev/null || die "subscriber did not start"
sleep 0.5
T0=$(date +%s.%N)
start pub $LIMIT "$SEQCAST" pub --sequencer "$CONTROL" --rate 0 --count "$N" --size 1024 --json "$TMP/pub.json"
wait_exit pub 300 || die "the publisher did not finish within 300 s"
check "publisher exit status" "${RC[pub]}" eq 0
log "publisher done in $(echo "$(date +%s.%N) - $T0" | bc) s: $(json "$TMP/pub.json" confirmed) confirmed"
wait_exit sub 120 || die "the subscriber did not deliver $N messages within 120 s of the publisher's end"
check "subscriber exit status" "${RC[sub]}" eq 0
HEAD=$(counter "$SEQ_PID" head_offset)
log "subscriber delivered $(json "$TMP/sub.json" messages); sequencer head $HEAD"
# The archiver may still be working through its socket queue and repairs: wait for the head.
wait_counter_ge "$ARCH_PID" archive_durable "$HEAD" 120 || log "the archiver did not reach the head $HEAD within 120 s"
GAPS=$(counter "$ARCH_PID" archive_gap_offsets)
log "archiver: next $(counter "$ARCH_PID" archive_next), durable $(counter "$ARCH_PID" archive_durable), gap offsets ${GAPS:-?}, repaired $(counter "$ARCH_PID" gap_offsets_repaired), socket overflow seen as gaps $(counter "$ARCH_PID" gaps_detected)"
check "archive_gap_offsets counter (read)" "${GAPS:-x}" eq 0

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
check "archiver printed no gap line" "$(grep -c 'never received: recorded as a gap' "$TMP/arch.log")" eq 0
dump_range "$LOGFILE"
log "dump: offsets ${DUMP_FIRST:-?}..$((${DUMP_NEXT:-0} - 1)), $DUMP_RECORDS records, gap offsets ${DUMP_GAPS:-?}, exit $DUMP_RC"
check "dump --verify exit status" "$DUMP_RC" eq 0
check "dump gap offsets" "${DUMP_GAPS:-x}" eq 0
check "dump first offset" "${DUMP_FIRST:-x}" eq 0
check "dump next offset = head" "${DUMP_NEXT:-x}" eq "$HEAD"
stop seq TERM 10 >/dev/null || true
finish
