#!/usr/bin/env bash
# The archive never serves a record it cannot verify. Record a stream, replay all of it (the
# reference), then flip bytes inside a record in the middle of the log:
#   A. while the archiver runs (its reads see the damaged page cache): a replay across the spot
#      fails with a clear message (exit 1), and every line it delivered is identical to the
#      reference at the same offsets, none of them at or past the damaged record;
#   B. after SIGTERM: `dump --verify` exits 1 naming the damaged position; the archiver restarts
#      on that log, skips the damaged record (reporting its offsets as lost) and keeps the rest: a
#      replay across the spot delivers exactly the reference lines minus the damaged record's and
#      reports the loss.
# With SEQCAST_IT_DAMAGE=resigned the damage is one flipped payload byte of the record's first
# entry, and the datagram CRC is recomputed over it (as a writer that damaged the bytes before
# signing them would): only the publisher's entry CRC can tell, and every check above must hold.
#
# usage: archiver_corruption.sh /path/to/seqcast
. "$(dirname "$0")/archiver_lib.sh" "$@"

N=${SEQCAST_IT_MESSAGES:-40000}
LIMIT=200
LOGFILE=$TMP/archive.seqlog

ports_and_group
log "$N messages (64-1200 B) -> $CONTROL -> $GROUP; archiver $ARCHIVER (64 MiB log)"
start_sequencer seq $LIMIT
start_archiver arch $LIMIT "$LOGFILE" --size 64M --segment 4M
ARCH_PID=$(seqcast_pid arch)
wait_counter_ge "$ARCH_PID" heartbeats_received 1 20 || die "the archiver hears no heartbeat"
start pub $LIMIT "$SEQCAST" pub --sequencer "$CONTROL" --rate 40000 --count "$N" --size 64-1200 --json "$TMP/pub.json" --linger 30
wait_exit pub 120 || die "publisher still running after 120 s"
check "pub exit status" "${RC[pub]}" eq 0
HEAD=$(($(json "$TMP/pub.json" last_offset) + 1))
wait_counter_ge "$ARCH_PID" archive_durable "$HEAD" 30 || die "the archiver did not record up to $HEAD"
# No more live data: the sequencer goes away (nobody could repair the archive from its ring).
stop seq TERM 10 >/dev/null || true

# replay NAME FROM TO: sets RRC (exit status); output in $TMP/NAME.txt, messages in $TMP/NAME.log.
replay() {
    RRC=0
    timeout -k 5 60 "$SEQCAST" replay --archiver "$ARCHIVER" --from "$2" --to "$3" --out "$TMP/$1.txt" \
        --json "$TMP/$1.json" --timeout 15 "${@:4}" >"$TMP/$1.stdout" 2>"$TMP/$1.log" || RRC=$?
}
replay before 0 "$HEAD"
check "reference replay exit status" "$RRC" eq 0
check "reference replay lost" "$(json "$TMP/before.json" lost_offsets)" eq 0
REF_MSGS=$(json "$TMP/before.json" messages)
check "reference replay messages" "$REF_MSGS" eq "$N"
check "reference replay lines" "$(wc -l <"$TMP/before.txt")" eq "$N"
# Paced (--speed 0.5, half the published pace): the same lines, and never early: the replay takes at
# least twice the span of their publish timestamps (less 2 % for the timer's grain). The publisher
# took about N / 40000 s; the reference replay, as fast as the archiver sends, is shown beside it.
replay paced 0 "$HEAD" --speed 0.5
SPAN=$(json "$TMP/paced.json" published_span_s)
log "paced replay: exit $RRC, $(json "$TMP/paced.json" seconds) s for a published span of $SPAN s (as fast as possible: $(json "$TMP/before.json" seconds) s)"
check "paced replay exit status" "$RRC" eq 0
check "paced replay: the reference lines" "$(cmp -s "$TMP/before.txt" "$TMP/paced.txt" && echo 1 || echo 0)" eq 1
check "paced replay: a published span was measured" "$(awk -v s="$SPAN" 'BEGIN { print (s > 0.2) ? 1 : 0 }')" eq 1
check "paced replay: at half speed, at least twice the published span" \
    "$(awk -v t="$(json "$TMP/paced.json" seconds)" -v s="$SPAN" 'BEGIN { print (t >= 0.98 * s / 0.5) ? 1 : 0 }')" eq 1

# The damaged record: one in the middle of the recorded bytes.
timeout 60 "$SEQCAST" dump --log "$LOGFILE" --records >"$TMP/records.txt" 2>&1
NREC=$(grep -c '^pos ' "$TMP/records.txt")
read -r _ POS _ RANGE _ <<<"$(grep '^pos ' "$TMP/records.txt" | sed -n "$((NREC / 2))p")"
DAMAGED_FIRST=${RANGE%%..*}
DAMAGED_LAST=${RANGE##*..}
# Physical place: a 4096-byte file header, then the ring; 16-byte record header, then the datagram.
DG=$((4096 + POS + 16))
if [[ ${SEQCAST_IT_DAMAGE:-raw} == resigned ]]; then
    # The first entry's first payload byte: 48-byte datagram header, 40-byte message header.
    AT=$((DG + 48 + 40))
    log "$NREC records; damaging the record at log position $POS (offsets $DAMAGED_FIRST..$DAMAGED_LAST): 1 payload byte at file offset $AT, datagram CRC re-signed"
    ORIG=$(od -An -tx1 -j "$DG" -N 128 "$LOGFILE" | tr -d ' \n')
    python3 - "$LOGFILE" "$DG" <<'EOF' || die "cannot damage the record"
import struct, sys
def crc32c(data):
    crc = 0xFFFFFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF
path, at = sys.argv[1], int(sys.argv[2])
with open(path, "r+b") as f:
    f.seek(at)
    head = f.read(48)
    assert head[:4] == b"SQCT" and head[4] == 2, "not a v2 datagram where the record should be"
    hlen, body_len = struct.unpack_from("<H", head, 6)[0], struct.unpack_from("<I", head, 44)[0]
    f.seek(at)
    d = bytearray(f.read(hlen + body_len))
    assert struct.unpack_from("<I", d, hlen)[0] > 0, "the first entry has no payload"
    d[hlen + 40] ^= 0x01
    d[20:24] = bytes(4)
    d[20:24] = struct.pack("<I", crc32c(bytes(d)))
    f.seek(at)
    f.write(d)
EOF
else
    AT=$((DG + 40))
    log "$NREC records; damaging the record at log position $POS (offsets $DAMAGED_FIRST..$DAMAGED_LAST): 8 bytes at file offset $AT"
    ORIG=$(od -An -tx1 -j "$DG" -N 128 "$LOGFILE" | tr -d ' \n')
    printf '\xde\xad\xbe\xef\x5a\xa5\x00\xff' | dd of="$LOGFILE" bs=1 seek="$AT" conv=notrunc status=none
fi
NOW=$(od -An -tx1 -j "$DG" -N 128 "$LOGFILE" | tr -d ' \n')
check "bytes really changed" "$NOW" != "$ORIG"

# only_reference NAME: every line of NAME.txt is the reference line of the same offset, in order,
# and none is at or past the damaged record.
only_reference() {
    local n=$1 lines bad late
    lines=$(wc -l <"$TMP/$n.txt")
    bad=$(head -n "$lines" "$TMP/before.txt" | cmp -s - "$TMP/$n.txt" && echo 0 || echo 1)
    late=$(awk -v d="$DAMAGED_FIRST" '$1 >= d' "$TMP/$n.txt" | wc -l)
    log "$n: exit $RRC, $lines lines (last offset $(tail -n 1 "$TMP/$n.txt" | cut -d' ' -f1)): $(grep -v '^seqcast replay: [0-9]* messages' "$TMP/$n.log" | head -n 1)"
    check "$n: replay across the damage does not succeed" "$RRC" ne 0
    check "$n: delivered lines are a prefix of the reference" "$bad" eq 0
    check "$n: nothing delivered at or past the damaged record" "$late" eq 0
    check "$n: delivered the intact part before the damage" "$lines" gt 0
}

# A. The archiver still runs; a replay reads the damaged bytes.
replay during 0 "$HEAD"
only_reference during
# Everything before the damaged record is delivered, up to its last message.
INTACT_LINES=$(awk -v d="$DAMAGED_FIRST" '$1 < d' "$TMP/before.txt" | wc -l)
check "A: every message before the damaged record delivered" "$(wc -l <"$TMP/during.txt")" eq "$INTACT_LINES"
check "A: the failure is reported as a damaged log" "$(grep -c 'could not read offset' "$TMP/during.log")" ge 1
DROPS=$(counter "$ARCH_PID" drop_bad_crc)
log "A: archiver drop_bad_crc=$DROPS"
# A range entirely before the damage is still served completely.
replay intact 0 "$DAMAGED_FIRST"
check "A: replay of the intact range before the damage: exit status" "$RRC" eq 0
check "A: replay of the intact range: lines" "$(wc -l <"$TMP/intact.txt")" eq "$INTACT_LINES"

# B. Offline: dump --verify finds it; the restarted archiver still serves nothing damaged.
stop arch TERM 20 >/dev/null || true
check "archiver exit status (SIGTERM)" "${RC[arch]}" eq 0
dump_range "$LOGFILE"
log "B: dump --verify exit $DUMP_RC: $(echo "$DUMP_TEXT" | grep 'verify:')"
check "B: dump --verify exit status" "$DUMP_RC" eq 1
check "B: dump names the damaged position" "$(echo "$DUMP_TEXT" | grep -c "damaged record at position $POS ")" eq 1
start_archiver arch $LIMIT "$LOGFILE" --size 64M --segment 4M
log "B: restarted: $(grep 'retained' "$TMP/arch.log" | head -n 1)"
# Recovery skips the damaged record (its offsets become a recorded loss) and keeps what follows.
log "B: $(grep 'warning' "$TMP/arch.log" | head -n 1)"
check "B: the restarted archiver warns that it skipped a damaged record" "$(grep -c 'warning: recovery skipped 1 damaged record' "$TMP/arch.log")" eq 1
replay after 0 "$HEAD"
# Every delivered line is the reference line of its offset; only the damaged record's are missing.
awk -v a="$DAMAGED_FIRST" -v b="$DAMAGED_LAST" '$1 < a || $1 > b' "$TMP/before.txt" >"$TMP/expected_after.txt"
log "B: exit $RRC, $(wc -l <"$TMP/after.txt") lines: $(grep 'LOSS' "$TMP/after.log" | head -n 1)"
check "B: a replay across the damage reports the loss (exit status)" "$RRC" ne 0
check "B: delivered exactly the reference minus the damaged record (1 = identical)" "$(cmp -s "$TMP/expected_after.txt" "$TMP/after.txt" && echo 1 || echo 0)" eq 1
check "B: the loss names the damaged offsets" "$(grep -c "LOSS offsets \[$DAMAGED_FIRST, " "$TMP/after.log")" ge 1

stop arch TERM 20 >/dev/null || true
finish
