#!/usr/bin/env bash
# End-to-end integrity: the sequencer damages entries in its own memory (--fault-damage-entry: one
# payload byte flipped after the PUB was checked and before the DATA datagram is signed, so the
# datagram CRC is valid over the damage). Only the publisher's entry CRC can tell. Required:
#   - the subscriber never delivers a damaged message: every printed message is byte for byte the
#     line the publisher sent with that pub_seq; the damaged datagrams are dropped (counted as
#     entry CRC drops) and, since the sequencer's ring holds only the damaged copy (it refuses to
#     re-sign it: retransmits_bad_crc), reported as lost, never silently skipped;
#   - the archiver records none of them: its log holds gap records for them (dump --verify fails
#     without --allow-gaps) and a replay of the whole archive delivers only intact lines;
#   - the archiver says so wherever a user looks, and every place gives the same number of offsets:
#     its archive_gap_offsets counter (what `seqcast stat` shows), a stderr line per gap range (or
#     a summed line past 10 a second), its stop line, and `dump --verify`.
#
# usage: entry_damage.sh /path/to/seqcast
. "$(dirname "$0")/archiver_lib.sh" "$@"

N=${SEQCAST_IT_MESSAGES:-20000}
PROB=${SEQCAST_IT_DAMAGE_PROB:-0.003}
LIMIT=200
LOGFILE=$TMP/archive.seqlog

# Lines of 20-3000 bytes (some span several datagrams), each unique, ending in ":end".
python3 - "$TMP/lines.txt" "$N" <<'EOF' || die "cannot write the input lines"
import random, sys
rng = random.Random(7)
with open(sys.argv[1], "w") as f:
    for i in range(1, int(sys.argv[2]) + 1):
        n = rng.choice([rng.randint(20, 200), rng.randint(200, 1300), rng.randint(1300, 3000)])
        body = "".join(rng.choice("abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(n))
        f.write(f"m{i:06d}:{body}:end\n")
EOF

ports_and_group
SEED=$(rand32)
log "$N lines -> sequencer $CONTROL (entry damage probability $PROB, seed $SEED) -> subscriber + archiver on $GROUP"
start_sequencer seq $LIMIT --fault-damage-entry "$PROB" --fault-seed "$SEED"
start_archiver arch $LIMIT "$LOGFILE" --size 64M --segment 4M
start sub $LIMIT "$SEQCAST" sub --group "$GROUP" --print --output "$TMP/sub.txt" --exit-on-eos --json "$TMP/sub.json"
SUB_PID=$(seqcast_pid sub) || die "the subscriber did not start"
ARCH_PID=$(seqcast_pid arch) || die "the archiver did not start"
heard() { [[ $(counter "$SUB_PID" heartbeats_received) -gt 0 && $(counter "$ARCH_PID" heartbeats_received) -gt 0 ]]; }
wait_until 20 "subscriber and archiver hear the sequencer" heard || die "no heartbeat reached the subscriber or the archiver"

start pub $LIMIT "$SEQCAST" pub --sequencer "$CONTROL" --file "$TMP/lines.txt" --json "$TMP/pub.json" --linger 30
wait_exit pub 120 || die "publisher still running after 120 s"
check "pub exit status" "${RC[pub]}" eq 0
check "pub confirmed every line" "$(json "$TMP/pub.json" confirmed)" eq "$N"
HEAD=$(($(json "$TMP/pub.json" last_offset) + 1))
# The damaged offsets are NAKed until their deadline (2 s) and then declared lost: wait until the
# subscriber's and the archiver's positions reach the head, then end the stream.
reached() { [[ $(counter "$SUB_PID" head_offset) -ge $HEAD && $(counter "$ARCH_PID" archive_next) -ge $HEAD ]]; }
wait_until 60 "subscriber and archiver reach offset $HEAD" reached || log "(not reached: the checks below say what is missing)"
need_counter ARCH_ENTRY_DROPS "$ARCH_PID" drop_bad_entry_crc
need_counter SEQ_BAD "$(seqcast_pid seq)" retransmits_bad_crc
need_counter ARCH_GAP_OFFSETS "$ARCH_PID" archive_gap_offsets
stop seq TERM 20 >/dev/null || true
wait_exit sub 30 || die "subscriber did not end after END_OF_STREAM"
check "sub exit status" "${RC[sub]}" eq 0
stop arch TERM 20 >/dev/null || true
check "archiver exit status" "${RC[arch]}" eq 0

DAMAGED=$(sed -n 's/.*fault injection damaged \([0-9]*\) entries.*/\1/p' "$TMP/seq.log")
log "sequencer: $(grep 'fault injection' "$TMP/seq.log")"
log "subscriber: $(grep 'crc drops' "$TMP/sub.log")"
log "archiver: $(grep -E 'stopped|never received' "$TMP/arch.log" | tail -n 1)"
check "the sequencer damaged entries (else nothing was tested)" "${DAMAGED:-0}" gt 0
check "the sequencer refused to re-sign damaged ring copies" "$SEQ_BAD" gt 0
check "subscriber: datagrams dropped for a failing entry CRC" "$(json "$TMP/sub.json" entry_crc_drops)" gt 0
check "subscriber: the damaged datagrams are reported lost" "$(json "$TMP/sub.json" lost_offsets)" gt 0
check "archiver: datagrams dropped for a failing entry CRC" "$ARCH_ENTRY_DROPS" gt 0

# intact FILE LABEL: every delivered message (offset publisher pub_seq length payload) is exactly
# the line with that pub_seq; prints "delivered missing".
intact() {
    python3 - "$TMP/lines.txt" "$1" "$2" <<'EOF'
import sys
lines = open(sys.argv[1], "rb").read().split(b"\n")[:-1]
bad = 0
seen = set()
for row in open(sys.argv[2], "rb"):
    row = row.rstrip(b"\n")
    parts = row.split(b" ", 4)
    if len(parts) != 5:
        continue  # not a message line
    seq, length, payload = int(parts[2]), int(parts[3]), parts[4]
    if not (1 <= seq <= len(lines)) or payload != lines[seq - 1] or length != len(payload):
        bad += 1
        if bad <= 3:
            print(f"{sys.argv[3]}: DAMAGED delivery: pub_seq {seq}: {payload[:60]!r}", file=sys.stderr)
    seen.add(seq)
print(len(seen) if bad == 0 else -bad, len(lines) - len(seen))
EOF
}
read -r SUB_OK SUB_MISSING <<<"$(intact "$TMP/sub.txt" subscriber)"
log "subscriber: $SUB_OK lines delivered intact, $SUB_MISSING missing"
check "subscriber: nothing damaged delivered (negative: damaged count)" "$SUB_OK" gt 0
check "subscriber: the damaged messages were not delivered" "$SUB_MISSING" gt 0
check "subscriber: delivered + missing = sent" "$((SUB_OK + SUB_MISSING))" eq "$N"

# The archive: gap records where the damaged datagrams were, nothing damaged replayed.
dump_range "$LOGFILE"
log "dump --verify exit $DUMP_RC: $(echo "$DUMP_TEXT" | grep 'verify:')"
check "dump --verify fails on the gaps" "$DUMP_RC" ne 0
check "the archive records the never-received offsets as gaps" "${DUMP_GAPS:-0}" gt 0
ARC=0
"$SEQCAST" dump --log "$LOGFILE" --verify --allow-gaps >"$TMP/dump-allow.txt" 2>&1 || ARC=$?
check "dump --verify --allow-gaps passes (gaps listed, nothing else wrong)" "$ARC" eq 0
# The same count everywhere: the counter, the stderr lines, the stop line, the log.
STOP_GAPS=$(sed -n 's/.*stopped;.* \([0-9]*\) offsets never received (\([0-9]*\) gap records).*/\1/p' "$TMP/arch.log" | tail -n 1)
LINE_GAPS=$(awk '/never received: recorded as a gap/ { sub(/.*\(/, ""); sub(/\).*/, ""); n += $0 }
                 /more gap range\(s\),/ { for (i = 1; i <= NF; i++) if ($(i + 1) == "offsets,") n += $i }
                 END { print n + 0 }' "$TMP/arch.log")
log "archiver gaps: counter $ARCH_GAP_OFFSETS, stderr lines $LINE_GAPS, stop line ${STOP_GAPS:-?}, dump ${DUMP_GAPS:-?}"
check "archiver counter archive_gap_offsets > 0" "$ARCH_GAP_OFFSETS" gt 0
check "archiver stop line: offsets never received = the counter" "${STOP_GAPS:-x}" eq "$ARCH_GAP_OFFSETS"
check "archiver stderr gap lines: offsets = the counter" "$LINE_GAPS" eq "$ARCH_GAP_OFFSETS"
check "dump: gap offsets = the counter" "${DUMP_GAPS:-x}" eq "$ARCH_GAP_OFFSETS"
start_archiver arch2 $LIMIT "$LOGFILE" --size 64M --segment 4M
RRC=0
timeout -k 5 60 "$SEQCAST" replay --archiver "$ARCHIVER" --from 0 --to "$HEAD" --out "$TMP/replay.txt" \
    --json "$TMP/replay.json" --timeout 15 >"$TMP/replay.stdout" 2>"$TMP/replay.log" || RRC=$?
read -r REP_OK REP_MISSING <<<"$(intact "$TMP/replay.txt" replay)"
log "replay: exit $RRC, $REP_OK lines intact, $REP_MISSING missing; $(grep -c LOSS "$TMP/replay.log") loss notices"
check "replay: nothing damaged delivered (negative: damaged count)" "$REP_OK" gt 0
check "replay: the gaps are reported as a loss (exit status)" "$RRC" ne 0
check "replay: loss notices" "$(grep -c 'LOSS offsets' "$TMP/replay.log")" gt 0
stop arch2 TERM 20 >/dev/null || true
finish
