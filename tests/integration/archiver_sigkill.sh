#!/usr/bin/env bash
# kill -9 the archiver 20 times while a publisher runs. Before each kill, sample the
# archiver's durable watermark (archive_durable: offset after the last record written and
# fdatasync'ed); after it, `seqcast dump --verify` must find a CRC-valid, contiguous log with no
# gap record (no offset "never received": the restarted archiver repairs what it missed from the
# sequencer's ring) that still holds everything up to that watermark; then the archiver restarts
# on the same log.
#
# usage: archiver_sigkill.sh /path/to/seqcast
# After each restart the archiver must catch up with the sequencer's head (repairing from its
# retransmit ring) before the next kill. The publisher runs at 5000 msg/s (~7000 offsets/s, ~5 MB/s).
# Flat out (SEQCAST_IT_RATE=0) no repair can catch up at all. archiver_full_rate covers full rate
# without kills, archiver_catchup a restart at 20000 msg/s.
#
# Environment (calibration only): SEQCAST_IT_KILLS (default 20), SEQCAST_IT_DURABILITY
# (interval or batch, default interval), SEQCAST_IT_RATE (publisher msg/s, default 5000),
# SEQCAST_IT_NAK_DEADLINE_MS (archiver, default 30000).
. "$(dirname "$0")/archiver_lib.sh" "$@"

KILLS=${SEQCAST_IT_KILLS:-20}
DURABILITY=${SEQCAST_IT_DURABILITY:-interval}
RATE=${SEQCAST_IT_RATE:-5000}
LIMIT=500
LOGFILE=$TMP/archive.seqlog
# After a restart the archiver repairs what it missed from the sequencer's ring; a long NAK
# deadline keeps it from giving up (and writing a gap) while it catches up on a busy host.
NAK_DEADLINE=${SEQCAST_IT_NAK_DEADLINE_MS:-30000}
ARCH_FLAGS=(--size 64M --segment 4M --durability "$DURABILITY" --sync-ms 5 --nak-deadline-ms "$NAK_DEADLINE")

ports_and_group
log "sequencer $CONTROL, group $GROUP, archiver $ARCHIVER ($DURABILITY, sync 5 ms), $KILLS kills"
# A large retransmit ring: the archiver repairs what it missed while it was down from the
# sequencer, so the log it writes stays contiguous across restarts.
start_sequencer seq $LIMIT --ring 512M
start_archiver arch $LIMIT "$LOGFILE" "${ARCH_FLAGS[@]}"
start pub $LIMIT "$SEQCAST" pub --sequencer "$CONTROL" --rate "$RATE" --count 0 --size 8-2000 --seed 7 --linger 2

SEQ_PID=$(seqcast_pid seq) || die "sequencer did not start"
ARCH_PID=$(seqcast_pid arch) || die "archiver did not start"
wait_counter_ge "$ARCH_PID" archive_durable 1000 20 || die "the archiver recorded nothing durable within 20 s"

printf '%-6s %-14s %-14s %-26s %-8s %s\n' kill durable_before next_before "log_after(first..last)" dump recovered >"$TMP/table.txt"
BAD=0
for k in $(seq 1 "$KILLS"); do
    sleep "0.$((2 + RANDOM % 9))"   # 0.2 .. 1.0 s
    [[ $k -eq $KILLS ]] && sleep 0.2
    exited pub && die "the publisher exited early (${RC[pub]})"
    # Sample, then kill at once: the watermark only grows, so what was durable then must survive.
    DURABLE=$(counter "$ARCH_PID" archive_durable)
    NEXT=$(counter "$ARCH_PID" archive_next)
    kill -KILL "$ARCH_PID"
    stop arch KILL 10 >/dev/null 2>&1 || true
    dump_range "$LOGFILE"
    LAST=$((${DUMP_NEXT:-0} - 1))
    RECOVERED_OK=ok
    [[ $DUMP_RC -eq 0 ]] || RECOVERED_OK=DAMAGED
    printf '%-6s %-14s %-14s %-26s %-8s %s\n' "$k" "$DURABLE" "$NEXT" "${DUMP_FIRST}..${LAST}" "$DUMP_RC" "${DUMP_RECORDS} records" >>"$TMP/table.txt"
    check "kill $k: archive_durable was sampled" "${DURABLE:-x}" ge 1
    check "kill $k: dump --verify exit status" "$DUMP_RC" eq 0
    check "kill $k: dump problems" "${DUMP_PROBLEMS:-x}" eq 0
    check "kill $k: offsets recorded as never received" "${DUMP_GAPS:-x}" eq 0
    # Everything below the durable watermark is in the log: next - 1 >= durable - 1.
    check "kill $k: log end (next offset) vs durable watermark $DURABLE" "${DUMP_NEXT:-x}" ge "${DURABLE:-0}"
    check "kill $k: the log still starts at or below the watermark" "${DUMP_FIRST:-x}" le "${DURABLE:-0}"
    if [[ $DUMP_RC -ne 0 ]]; then
        echo "$DUMP_TEXT" | sed 's/^/    dump: /'
        BAD=$((BAD + 1))
        cp "$LOGFILE" "$TMP/damaged-after-kill-$k.seqlog" 2>/dev/null || true
        break
    fi
    start_archiver arch $LIMIT "$LOGFILE" "${ARCH_FLAGS[@]}"
    ARCH_PID=$(seqcast_pid arch) || die "archiver did not restart"
    # The restarted archiver reports what it recovered: it must not start below the dump's end.
    # (The process exists before it has printed that line: wait for the line, not the process.)
    wait_until 10 "the restarted archiver reports its recovery" grep -q 'retained' "$TMP/arch.log" || true
    RESTART_NEXT=$(sed -n 's/.*offsets \[[0-9]*, \([0-9]*\)) retained.*/\1/p' "$TMP/arch.log" | head -n 1)
    check "kill $k: restart resumes at the recovered end" "${RESTART_NEXT:-x}" eq "${DUMP_NEXT:-0}"
    # Let it catch up with the live stream (repairs from the sequencer's ring) before the next kill:
    # everything the sequencer had sent when the archiver restarted is recorded and durable.
    SEQ_HEAD=$(counter "$SEQ_PID" head_offset)
    if ! wait_counter_ge "$ARCH_PID" archive_durable "${SEQ_HEAD:-0}" 60; then
        check "kill $k: the restarted archiver caught up with head ${SEQ_HEAD:-?} within 60 s (durable $(counter "$ARCH_PID" archive_durable))" 0 eq 1
    fi
done

cat "$TMP/table.txt"
stop pub TERM 10 >/dev/null || true
SEQ_NEXT=$(counter "$SEQ_PID" head_offset)
if exited arch; then :; else
    ARCH_LOSS=$(grep -c LOSS "$TMP/arch.log" || true)
    stop arch TERM 20 >/dev/null || true
    check "final archiver exit status (SIGTERM)" "${RC[arch]}" eq 0
    dump_range "$LOGFILE"
    log "final log: offsets $DUMP_FIRST..$((DUMP_NEXT - 1)) ($DUMP_RECORDS records), sequencer head $SEQ_NEXT"
    check "final dump --verify" "$DUMP_RC" eq 0
    check "final: offsets recorded as never received" "${DUMP_GAPS:-x}" eq 0
fi
stop seq TERM 10 >/dev/null || true
finish
