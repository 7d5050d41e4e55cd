#!/usr/bin/env bash
# The archive log is a ring: with --size 16M --segment 1M and ~100 MB published it wraps several
# times. Then the earliest retained offset is above 0, `replay --from 0` fails (exit 1) naming it,
# a replay of [earliest, earliest+1000) is complete, and dump --verify still finds a valid log.
#
# usage: archiver_wrap.sh /path/to/seqcast
# Environment (calibration only): SEQCAST_IT_MESSAGES (default 100000, 1000 B each).
. "$(dirname "$0")/archiver_lib.sh" "$@"

N=${SEQCAST_IT_MESSAGES:-100000}
SIZE=1000
LIMIT=240
LOGFILE=$TMP/archive.seqlog

ports_and_group
log "$N x $SIZE B into a 16 MiB archive (16 segments of 1 MiB); sequencer $CONTROL, group $GROUP, archiver $ARCHIVER"
start_sequencer seq $LIMIT
start_archiver arch $LIMIT "$LOGFILE" --size 16M --segment 1M
ARCH_PID=$(seqcast_pid arch)
wait_counter_ge "$ARCH_PID" heartbeats_received 1 20 || die "the archiver hears no heartbeat"
start pub $LIMIT "$SEQCAST" pub --sequencer "$CONTROL" --rate 50000 --count "$N" --size $SIZE --json "$TMP/pub.json" --linger 30
wait_exit pub 120 || die "publisher still running after 120 s"
check "pub exit status" "${RC[pub]}" eq 0
HEAD=$(json "$TMP/pub.json" last_offset)
HEAD=$((HEAD + 1))
wait_counter_ge "$ARCH_PID" archive_durable "$HEAD" 30 || log "the archiver did not record up to $HEAD"

EARLIEST=$(counter "$ARCH_PID" archive_earliest)
NEXT=$(counter "$ARCH_PID" archive_next)
log "archive: earliest $EARLIEST, next $NEXT (published offsets 0..$((HEAD - 1)), $((N * SIZE / 1000000)) MB of payload)"
check "archive_next" "$NEXT" eq "$HEAD"
check "archive_earliest > 0 (the ring wrapped)" "$EARLIEST" gt 0
# 16 MiB hold about 16 Ki records of ~1 KB: far fewer than N.
check "archive_earliest: the ring wrapped several times" "$EARLIEST" gt $((N / 2))
check "retained offsets fit in 16 MiB" $((NEXT - EARLIEST)) lt 17000

# A range that is gone: exit 1 with a message naming the earliest retained offset.
R0=0
timeout -k 5 60 "$SEQCAST" replay --archiver "$ARCHIVER" --from 0 --to 10 --out "$TMP/r0.txt" --timeout 20 \
    >"$TMP/r0.stdout" 2>"$TMP/r0.log" || R0=$?
log "replay --from 0 --to 10: exit $R0: $(grep -v '^seqcast replay: [0-9]* messages' "$TMP/r0.log" | head -n 1)"
check "replay of an overwritten range: exit status" "$R0" eq 1
EARLIEST_NOW=$(counter "$ARCH_PID" archive_earliest)
check "replay of an overwritten range names the earliest retained offset" \
    "$(grep -c "no longer retained.*earliest retained offset is $EARLIEST_NOW\b" "$TMP/r0.log")" ge 1
check "replay of an overwritten range delivers nothing" "$(wc -l <"$TMP/r0.txt")" eq 0

# A retained range: complete, nothing lost, and a second replay of it has the same digest (the ring
# serves one content for a range, however often it is read).
R1=0
timeout -k 5 60 "$SEQCAST" replay --archiver "$ARCHIVER" --from "$EARLIEST_NOW" --to $((EARLIEST_NOW + 1000)) \
    --out "$TMP/r1.txt" --json "$TMP/r1.json" --timeout 20 >"$TMP/r1.stdout" 2>"$TMP/r1.log" || R1=$?
log "replay [$EARLIEST_NOW, $((EARLIEST_NOW + 1000))): exit $R1, $(json "$TMP/r1.json" messages) messages, lost $(json "$TMP/r1.json" lost_offsets)"
check "retained replay exit status" "$R1" eq 0
check "retained replay messages" "$(json "$TMP/r1.json" messages)" eq 1000
check "retained replay lost offsets" "$(json "$TMP/r1.json" lost_offsets)" eq 0
check "retained replay first offset" "$(json "$TMP/r1.json" first_offset)" eq "$EARLIEST_NOW"
check "retained replay last offset" "$(json "$TMP/r1.json" last_offset)" eq $((EARLIEST_NOW + 999))
check "retained replay order violations" "$(json "$TMP/r1.json" order_violations)" eq 0
check "retained replay lines" "$(wc -l <"$TMP/r1.txt")" eq 1000
check "retained replay payload sizes" "$(awk -v s=$SIZE '$4 != s' "$TMP/r1.txt" | wc -l)" eq 0
R1B=0
timeout -k 5 60 "$SEQCAST" replay --archiver "$ARCHIVER" --from "$EARLIEST_NOW" --to $((EARLIEST_NOW + 1000)) \
    --verify --json "$TMP/r1b.json" --timeout 20 >"$TMP/r1b.stdout" 2>"$TMP/r1b.log" || R1B=$?
check "second replay of the retained range: exit status" "$R1B" eq 0
check "second replay's digest equals the first's" "$(json "$TMP/r1b.json" digest)" == "$(json "$TMP/r1.json" digest)"
check "the digests are there to compare" "$(json "$TMP/r1.json" digest)" != ""

# `--from earliest` follows the ring: it starts at the current earliest offset.
R2=0
timeout -k 5 60 "$SEQCAST" replay --archiver "$ARCHIVER" --from earliest --to "$HEAD" --verify --json "$TMP/r2.json" \
    --timeout 30 >"$TMP/r2.out" 2>"$TMP/r2.log" || R2=$?
log "replay --from earliest --to $HEAD: exit $R2, $(json "$TMP/r2.json" messages) messages from $(json "$TMP/r2.json" first_offset)"
check "replay --from earliest exit status" "$R2" eq 0
check "replay --from earliest first offset" "$(json "$TMP/r2.json" first_offset)" eq "$EARLIEST_NOW"
check "replay --from earliest messages" "$(json "$TMP/r2.json" messages)" eq $((HEAD - EARLIEST_NOW))
check "replay --from earliest lost" "$(json "$TMP/r2.json" lost_offsets)" eq 0

stop arch TERM 20 >/dev/null || true
check "archiver exit status (SIGTERM)" "${RC[arch]}" eq 0
dump_range "$LOGFILE"
log "dump: offsets $DUMP_FIRST..$((DUMP_NEXT - 1)), $DUMP_RECORDS records, exit $DUMP_RC"
check "dump --verify after wrapping" "$DUMP_RC" eq 0
check "dump first offset = archive_earliest" "$DUMP_FIRST" eq "$EARLIEST_NOW"
check "dump next offset = head" "$DUMP_NEXT" eq "$HEAD"
stop seq TERM 10 >/dev/null || true
finish
