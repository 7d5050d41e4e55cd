#!/usr/bin/env bash
# A late joiner replays from the archiver and merges into the live stream: 2 publishers x N
# messages at R msg/s each; one subscriber from the start, an archiver, and a subscriber started
# ~2 s into the stream with --from 0 --archiver. Both must end with the same message count and
# digest, nothing lost, no order or per-publisher FIFO violation.
#
# usage: late_joiner.sh /path/to/seqcast
# Environment (calibration only): SEQCAST_IT_MESSAGES (per publisher, default 100000),
# SEQCAST_IT_RATE (per publisher, default 20000).
. "$(dirname "$0")/archiver_lib.sh" "$@"

N=${SEQCAST_IT_MESSAGES:-100000}
RATE=${SEQCAST_IT_RATE:-20000}
NPUB=2
TOTAL=$((N * NPUB))
LIMIT=240

ports_and_group
log "$NPUB publishers x $N messages (8-2000 B, $RATE msg/s each) -> $CONTROL -> $GROUP; archiver $ARCHIVER"
# The sequencer's ring holds the whole stream and gaps get 10 s before a loss notice: on a busy
# host the live subscriber may drop datagrams, and that must be repaired, not reported as loss
# (this test is about the late joiner's replay-merge).
start_sequencer seq $LIMIT --ring 512M
start_archiver arch $LIMIT "$TMP/archive.seqlog" --size 256M --segment 4M
start live $LIMIT "$SEQCAST" sub --group "$GROUP" --verify --exit-on-eos --json "$TMP/live.json" --nak-deadline-ms 10000

heard() {
    local p v
    for p in "$(seqcast_pid live)" "$(seqcast_pid arch)"; do
        [[ -n $p ]] || return 1
        v=$(counter "$p" heartbeats_received)
        [[ ${v:-0} -gt 0 ]] || return 1
    done
}
wait_until 20 "the subscriber and the archiver hear the sequencer" heard || die "no heartbeat reached the subscriber/archiver (multicast on loopback?)"

for i in $(seq 1 $NPUB); do
    start "pub$i" $LIMIT "$SEQCAST" pub --sequencer "$CONTROL" --rate "$RATE" --count "$N" --size 8-2000 --seed "$i" \
        --json "$TMP/pub$i.json" --linger 30
done
sleep 2
ARCH_PID=$(seqcast_pid arch)
AT_JOIN=$(counter "$ARCH_PID" archive_next)
log "late joiner starts at offset 0; the archive holds ${AT_JOIN:-?} offsets by now"
start late $LIMIT "$SEQCAST" sub --group "$GROUP" --from 0 --archiver "$ARCHIVER" --verify --exit-on-eos --json "$TMP/late.json" \
    --nak-deadline-ms 10000

for i in $(seq 1 $NPUB); do
    wait_exit "pub$i" 120 || die "publisher $i still running after 120 s"
    check "pub$i exit status" "${RC[pub$i]}" eq 0
    check "pub$i confirmed" "$(json "$TMP/pub$i.json" confirmed)" eq "$N"
done
# Both subscribers caught up (or exited), then END_OF_STREAM.
caught_up() {
    local n p v
    for n in live late; do
        exited "$n" && continue
        p=$(seqcast_pid "$n") || continue
        v=$(counter "$p" messages_in)
        ((${v:-0} >= TOTAL)) || return 1
    done
}
log "publishers done"
wait_until 90 "both subscribers delivered $TOTAL messages" caught_up || true
LATE_PID=$(seqcast_pid late)
log "subscribers caught up; archiver sent $(counter "$ARCH_PID" replay_datagrams_out) replay datagrams (sequencer: $(counter "$(seqcast_pid seq)" datagrams_out) datagrams); late joiner dropped $(counter "$LATE_PID" drop_duplicate) duplicates, $(counter "$LATE_PID" drop_overflow) overflows"
stop seq TERM 10 >/dev/null || true
for n in live late; do
    wait_exit "$n" 20 || { log "$n missed END_OF_STREAM"; stop "$n" TERM 10 >/dev/null || true; }
    check "$n exit status" "${RC[$n]}" eq 0
    check "$n saw END_OF_STREAM" "$(json "$TMP/$n.json" end_of_stream)" == true
done
stop arch TERM 20 >/dev/null || true

D_LIVE=$(digest_of "$TMP/live.out")
D_LATE=$(digest_of "$TMP/late.out")
printf '%-6s %-10s %-9s %-6s %-6s %-6s %-10s %s\n' who messages digest lost order fifo first..last repaired
for n in live late; do
    printf '%-6s %-10s %-9s %-6s %-6s %-6s %-10s %s\n' "$n" "$(json "$TMP/$n.json" messages)" "$(digest_of "$TMP/$n.out")" \
        "$(json "$TMP/$n.json" lost_offsets)" "$(json "$TMP/$n.json" order_violations)" "$(json "$TMP/$n.json" fifo_violations)" \
        "$(json "$TMP/$n.json" first_offset)..$(json "$TMP/$n.json" last_offset)" "$(json "$TMP/$n.json" repaired_messages)"
    check "$n messages" "$(json "$TMP/$n.json" messages)" eq "$TOTAL"
    # Offset 0 is the first message's (a message cut in fragments is delivered at its last one).
    check "$n first offset" "$(json "$TMP/$n.json" first_offset)" le 1
    check "$n lost offsets" "$(json "$TMP/$n.json" lost_offsets)" eq 0
    check "$n order violations" "$(json "$TMP/$n.json" order_violations)" eq 0
    check "$n fifo violations" "$(json "$TMP/$n.json" fifo_violations)" eq 0
    check "$n publishers" "$(json "$TMP/$n.json" publishers)" eq "$NPUB"
done
check "late first offset = live first offset" "$(json "$TMP/late.json" first_offset)" eq "$(json "$TMP/live.json" first_offset)"
check "late digest equals live digest" "${D_LATE:-none}" == "${D_LIVE:-missing}"
check "late joiner really joined late (archive held offsets at join)" "${AT_JOIN:-0}" gt 10000
finish
