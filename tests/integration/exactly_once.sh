#!/usr/bin/env bash
# Exactly-once across crashes: a stream (sequencer, archiver, one publisher at R msg/s x N
# messages, some of them fragmented), a reference subscriber printing every message, and
# `seqcast sub --mode exactly-once --commit-file F --archiver A --print --output P` that is
# SIGKILLed KILLS times at random moments while the stream runs and restarted each time with the
# same commit file and output file. Each restart resumes from its commit (replaying from the
# archiver what it missed, from the first fragment of a message it had begun, then merging into
# the live stream), carries the running digest and message count in the commit file, and cuts the
# output file back to the length committed with the position. So:
# - the printed file, across all incarnations, must be exactly the reference's printed lines:
#   every message once, in order, no line cut short, none repeated;
# - the last run's totals cover the whole stream and equal the reference subscriber's, with nothing
#   lost and no order or FIFO violation.
#
# usage: exactly_once.sh /path/to/seqcast
# Environment (calibration only): SEQCAST_IT_MESSAGES (default 30000), SEQCAST_IT_RATE (4000),
# SEQCAST_IT_KILLS (3).
. "$(dirname "$0")/archiver_lib.sh" "$@"

N=${SEQCAST_IT_MESSAGES:-30000}
RATE=${SEQCAST_IT_RATE:-4000}
KILLS=${SEQCAST_IT_KILLS:-3}
LIMIT=180
COMMIT=$TMP/eo.commit
PRINTED=$TMP/eo.printed   # the exactly-once subscriber's --output, shared by every incarnation
SHM_DIR=/dev/shm/seqcast

ports_and_group
log "$N messages (sizes exp:400, some fragmented; $RATE msg/s) -> $CONTROL -> $GROUP; archiver $ARCHIVER; the exactly-once subscriber is killed $KILLS times"
start_sequencer seq $LIMIT
start_archiver arch $LIMIT "$TMP/archive.seqlog" --size 128M --segment 4M
# Long NAK deadlines: a busy host may drop datagrams, and that must be repaired, not reported lost.
start ref $LIMIT "$SEQCAST" sub --group "$GROUP" --print --verify --exit-on-eos --json "$TMP/ref.json" --nak-deadline-ms 10000

RUN=0
# start_eo: the next incarnation of the exactly-once subscriber (eo1, eo2, ...), same commit file.
start_eo() {
    RUN=$((RUN + 1))
    EO=eo$RUN
    start "$EO" $LIMIT "$SEQCAST" sub --group "$GROUP" --mode exactly-once --commit-file "$COMMIT" --archiver "$ARCHIVER" \
        --print --output "$PRINTED" --verify --exit-on-eos --json "$TMP/$EO.json" --nak-deadline-ms 10000
    EO_PID=$(seqcast_pid "$EO") || die "$EO did not start"
}
# commit_state: "next=X resume=Y delivered=Z printed=B" from the commit file (client/commit_file.h:
# magic, active, seq, then two 72-byte slots: next, resumeFrom, stream|reserved, then the
# application's six words: delivered, first, last, digest, output bytes, losses).
commit_state() {
    local active off
    [[ -s $COMMIT ]] || { echo "none"; return; }
    active=$(od -An -t u8 -j 8 -N 8 "$COMMIT" | tr -d ' ')
    ((active < 2)) || { echo "none"; return; }
    off=$((24 + active * 72))
    od -An -t u8 -j "$off" -N 72 "$COMMIT" | tr -s ' \n' ' ' | awk '{print "next=" $1 " resume=" $2 " delivered=" $4 " printed=" $8}'
}

start_eo
heard() {
    local n p v
    for n in arch ref "$EO"; do
        p=$(seqcast_pid "$n") || return 1
        v=$(counter "$p" heartbeats_received)
        [[ ${v:-0} -gt 0 ]] || return 1
    done
}
wait_until 20 "the subscribers and the archiver hear the sequencer" heard || die "no heartbeat reached the subscribers (multicast on loopback?)"

start pub $LIMIT "$SEQCAST" pub --sequencer "$CONTROL" --rate "$RATE" --count "$N" --size exp:400 --seed 5 \
    --json "$TMP/pub.json" --linger 30
STREAM_S=$((N / RATE))

# The kills: each at a random moment 0..2 s into the incarnation (a third of them within its first
# second, often during its catch-up replay; the first kill only once it has processed something, so
# that there is a commit to resume from), all while the publisher runs.
for ((k = 1; k <= KILLS; k++)); do
    if ((k == 1)); then
        wait_counter_ge "$EO_PID" messages_in 1 20 || die "$EO delivered nothing"
    fi
    sleep "$((RANDOM % 3 == 0 ? 0 : 1)).$(printf '%03d' $((RANDOM % 1000)))"
    exited pub && log "note: the publisher already finished before kill $k"
    exited "$EO" && die "$EO exited on its own (status ${RC[$EO]})"
    GOT=$(counter "$EO_PID" messages_in)
    kill -KILL "$EO_PID" 2>/dev/null
    # (stderr: bash would report the killed job)
    wait_exit "$EO" 10 2>/dev/null || die "$EO survived SIGKILL"
    rm -f "$SHM_DIR/$EO_PID-sub.ctr"  # a killed process leaves its counters file behind
    log "killed $EO (pid $EO_PID) after it delivered ${GOT:-?} messages; commit: $(commit_state); output file: $(stat -c %s "$PRINTED") bytes"
    start_eo
done

wait_exit pub $((STREAM_S + 60)) || die "publisher still running"
check "pub exit status" "${RC[pub]}" eq 0
check "pub confirmed" "$(json "$TMP/pub.json" confirmed)" eq "$N"
HEAD=$(($(json "$TMP/pub.json" last_offset) + 1))
log "publisher done: offsets 0..$((HEAD - 1))"
REF_PID=$(seqcast_pid ref)
caught_up() {
    local n p v
    for n in ref "$EO"; do
        exited "$n" && continue
        p=$(seqcast_pid "$n") || continue
        v=$(counter "$p" head_offset)
        ((${v:-0} >= HEAD)) || return 1
    done
}
wait_until 90 "ref and $EO got past offset $HEAD" caught_up || true
A_REPLAY=$(counter "$(seqcast_pid arch)" replay_datagrams_out)
log "caught up; $EO delivered $(counter "$EO_PID" messages_in) messages itself; the archiver sent ${A_REPLAY:-?} replay datagrams"
stop seq TERM 10 >/dev/null || true
for n in ref "$EO"; do
    wait_exit "$n" 20 || { log "$n missed END_OF_STREAM"; stop "$n" TERM 10 >/dev/null || true; }
    check "$n exit status" "${RC[$n]}" eq 0
    check "$n saw END_OF_STREAM" "$(json "$TMP/$n.json" end_of_stream)" == true
done
stop arch TERM 20 >/dev/null || true

D_REF=$(digest_of "$TMP/ref.out")
D_EO=$(digest_of "$TMP/$EO.out")
printf '%-5s %-9s %-9s %-6s %-6s %-6s %-12s %s\n' who messages digest lost order fifo first..last repaired
for n in ref "$EO"; do
    printf '%-5s %-9s %-9s %-6s %-6s %-6s %-12s %s\n' "$n" "$(json "$TMP/$n.json" messages)" "$(digest_of "$TMP/$n.out")" \
        "$(json "$TMP/$n.json" lost_offsets)" "$(json "$TMP/$n.json" order_violations)" "$(json "$TMP/$n.json" fifo_violations)" \
        "$(json "$TMP/$n.json" first_offset)..$(json "$TMP/$n.json" last_offset)" "$(json "$TMP/$n.json" repaired_messages)"
    check "$n messages" "$(json "$TMP/$n.json" messages)" eq "$N"
    check "$n lost offsets" "$(json "$TMP/$n.json" lost_offsets)" eq 0
    check "$n order violations" "$(json "$TMP/$n.json" order_violations)" eq 0
    check "$n fifo violations" "$(json "$TMP/$n.json" fifo_violations)" eq 0
    check "$n digest and count line" "$(messages_of "$TMP/$n.out")" eq "$N"
done
grep -h 'exactly-once: resuming' "$TMP"/eo*.log | sed 's/^/  /'
check "the archiver replayed to the restarted subscriber" "${A_REPLAY:-0}" gt 0
check "incarnations of the exactly-once subscriber" "$RUN" eq $((KILLS + 1))
check "$EO resumed from the commit file" "$(grep -c 'exactly-once: resuming' "$TMP/$EO.log")" eq 1
check "$EO first offset = ref first offset" "$(json "$TMP/$EO.json" first_offset)" eq "$(json "$TMP/ref.json" first_offset)"
check "$EO last offset = ref last offset" "$(json "$TMP/$EO.json" last_offset)" eq "$(json "$TMP/ref.json" last_offset)"
check "exactly-once digest equals the reference digest" "${D_EO:-none}" == "${D_REF:-missing}"

# What was printed, across every incarnation, against the stream (the reference's lines).
grep -v '^digest ' "$TMP/ref.out" >"$TMP/ref.printed"
REF_LINES=$(wc -l <"$TMP/ref.printed")
EO_LINES=$(wc -l <"$PRINTED")
# Each line starts with its message's offset: index the reference by it; a printed line that is not
# the reference's line for its offset was cut short or damaged.
read -r REPEATED MISSING FOREIGN < <(LC_ALL=C awk '
    NR == FNR { ref[$1] = $0; next }
    { if (seen[$1]++) repeated++; if (!($1 in ref) || ref[$1] != $0) foreign++ }
    END { for (o in ref) if (!(o in seen)) missing++; print repeated + 0, missing + 0, foreign + 0 }' "$TMP/ref.printed" "$PRINTED")
log "printed: reference $REF_LINES lines; exactly-once $EO_LINES lines across $RUN incarnations: $REPEATED repeated, $MISSING missing, $FOREIGN not in the stream (cut)"
check "reference printed every message" "$REF_LINES" eq "$N"
check "lines printed twice by the exactly-once subscriber" "$REPEATED" eq 0
check "messages never printed by the exactly-once subscriber" "$MISSING" eq 0
check "printed lines cut short or not in the stream" "$FOREIGN" eq 0
check "printed file ends with a whole line" "$(tail -c 1 "$PRINTED" | od -An -c | tr -d ' ')" == '\n'
check "printed file = the stream's lines, in order" "$(cmp -s "$PRINTED" "$TMP/ref.printed" && echo same || echo different)" == same
finish
