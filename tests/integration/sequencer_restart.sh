#!/usr/bin/env bash
# Crash recovery, two phases on loopback multicast (no injected loss):
#  A. SIGKILL the sequencer mid-stream and restart it on the same --state file: it comes back with
#     epoch 2, offsets continue, the publisher's unconfirmed messages are resent and deduplicated,
#     and the subscriber delivers every message exactly once, following the epoch change.
#  B. SIGKILL the publisher mid-stream (while the sequencer is paused, so messages are surely in
#     flight) and restart it on the same --journal: it resends what was unconfirmed and continues;
#     the subscriber delivers every message offered across both runs exactly once.
#
# usage: sequencer_restart.sh /path/to/seqcast
. "$(dirname "$0")/lib.sh" "$@"

COUNT=60000
RATE=5000
LIMIT=240

heard() {
    local p v
    p=$(seqcast_pid "$1") || return 1
    v=$(counter "$p" heartbeats_received)
    [[ ${v:-0} -gt 0 ]]
}
delivered() {   # delivered SUBNAME N: the subscriber delivered at least N messages (or has exited)
    local p v
    p=$(seqcast_pid "$1") || return 0
    v=$(counter "$p" messages_in)
    [[ -z $v ]] || ((v >= $2))
}
# sub_checks SUBNAME EXPECTED_MESSAGES EXPECTED_EPOCH EXPECTED_EPOCH_CHANGES
sub_checks() {
    local f=$TMP/$1.json
    if [[ ! -s $f ]]; then
        echo "CHECK FAILED: $1 wrote no summary (exit ${RC[$1]:-?})"
        FAILURES=$((FAILURES + 1))
        return
    fi
    printf '  %-5s messages %s, lost %s, order/fifo violations %s/%s, duplicates dropped %s, gaps %s, repaired %s, epoch %s (changes %s), end of stream %s\n' \
        "$1" "$(json "$f" messages)" "$(json "$f" lost_offsets)" "$(json "$f" order_violations)" "$(json "$f" fifo_violations)" \
        "$(json "$f" duplicates_dropped)" "$(json "$f" gaps)" "$(json "$f" repaired_offsets)" "$(json "$f" epoch)" \
        "$(json "$f" epoch_changes)" "$(json "$f" end_of_stream)"
    check "$1 messages" "$(json "$f" messages)" eq "$2"
    check "$1 lost_offsets" "$(json "$f" lost_offsets)" eq 0
    check "$1 order_violations" "$(json "$f" order_violations)" eq 0
    check "$1 fifo_violations" "$(json "$f" fifo_violations)" eq 0
    check "$1 publishers" "$(json "$f" publishers)" eq 1
    check "$1 epoch" "$(json "$f" epoch)" eq "$3"
    check "$1 epoch_changes" "$(json "$f" epoch_changes)" eq "$4"
}
# end_stream SEQNAME SUBNAME EXPECTED: let the subscriber catch up, end the stream, wait for it.
end_stream() {
    wait_until 60 "$2 delivers $3 messages" delivered "$2" "$3" || true
    stop "$1" TERM 10 || true
    if ! wait_exit "$2" 20; then
        echo "CHECK FAILED: $2 did not exit on END_OF_STREAM within 20 s"
        FAILURES=$((FAILURES + 1))
        stop "$2" TERM 10 || true
    fi
}

# ---- A: sequencer crash ----------------------------------------------------------------------
pick_ports
pick_group
CONTROL=127.0.0.1:$PORT
GROUP=$GROUP_ADDR:$((PORT + 1))
SEQ_ARGS=(sequencer --control "$CONTROL" --group "$GROUP" --state "$TMP/a-seq.state")
log "A: sequencer crash: 1 publisher x $COUNT at $RATE msg/s -> $CONTROL -> $GROUP"
start a-seq1 $LIMIT "$SEQCAST" "${SEQ_ARGS[@]}"
start a-sub $LIMIT "$SEQCAST" sub --group "$GROUP" --verify --exit-on-eos --json "$TMP/a-sub.json"
wait_until 20 "a-sub hears the sequencer" heard a-sub || die "the subscriber did not hear the sequencer"
start a-pub $LIMIT "$SEQCAST" pub --sequencer "$CONTROL" --rate $RATE --count $COUNT --size 16-1024 \
    --journal "$TMP/a-pub.journal" --id 7 --json "$TMP/a-pub.json" --linger 60
sleep 3
kill -KILL "$(seqcast_pid a-seq1)" || die "no sequencer to kill"
wait_exit a-seq1 10 || die "the killed sequencer did not go away"
log "A: sequencer SIGKILLed (status ${RC[a-seq1]}); restarting it in 0.5 s"
sleep 0.5
start a-seq2 $LIMIT "$SEQCAST" "${SEQ_ARGS[@]}"
wait_exit a-pub 120 || die "the publisher did not finish within 120 s"
end_stream a-seq2 a-sub $COUNT

STARTLINE=$(grep -m1 'seqcast sequencer: stream' "$TMP/a-seq2.log")
echo "  restart: ${STARTLINE#seqcast sequencer: }"
echo "  stop:    $(grep -o 'stopped at.*' "$TMP/a-seq2.log")"
echo "  a-pub:   $(grep -o 'publisher [0-9]*:.*resent' "$TMP/a-pub.log")"
RESTART_EPOCH=$(sed -n 's/.* epoch \([0-9]*\) next offset.*/\1/p' <<<"$STARTLINE")
RESTART_NEXT=$(sed -n 's/.* next offset \([0-9]*\).*/\1/p' <<<"$STARTLINE")
check "restarted sequencer epoch" "$RESTART_EPOCH" eq 2
check "restarted sequencer next offset (offsets continue)" "$RESTART_NEXT" gt 0
check "restarted sequencer says recovered" "$(grep -c '(recovered)' <<<"$STARTLINE")" eq 1
check "a-pub exit status" "${RC[a-pub]}" eq 0
check "a-pub confirmed" "$(json "$TMP/a-pub.json" confirmed)" eq $COUNT
check "a-pub complete" "$(json "$TMP/a-pub.json" complete)" == true
check "a-pub resent (the crash cost resends)" "$(json "$TMP/a-pub.json" resent)" gt 0
check "a-pub offsets span the restart" "$(json "$TMP/a-pub.json" last_offset)" gt "$RESTART_NEXT"
sub_checks a-sub $COUNT 2 1

# ---- B: publisher crash ----------------------------------------------------------------------
pick_ports
pick_group
CONTROL=127.0.0.1:$PORT
GROUP=$GROUP_ADDR:$((PORT + 1))
log "B: publisher crash: 1 publisher x $COUNT at $RATE msg/s -> $CONTROL -> $GROUP"
start b-seq $LIMIT "$SEQCAST" sequencer --control "$CONTROL" --group "$GROUP" --state "$TMP/b-seq.state"
start b-sub $LIMIT "$SEQCAST" sub --group "$GROUP" --verify --exit-on-eos --json "$TMP/b-sub.json"
wait_until 20 "b-sub hears the sequencer" heard b-sub || die "the subscriber did not hear the sequencer"
PUB_ARGS=(pub --sequencer "$CONTROL" --rate $RATE --size 16-1024 --journal "$TMP/b-pub.journal" --id 9 --linger 60)
start b-pub1 $LIMIT "$SEQCAST" "${PUB_ARGS[@]}" --count $COUNT --json "$TMP/b-pub1.json"
sleep 3
# Pause the sequencer so that the publisher surely has unconfirmed messages (some of them already
# in the sequencer's socket buffer: their resends must be deduplicated), then kill the publisher.
BSEQ=$(seqcast_pid b-seq)
kill -STOP "$BSEQ"
sleep 0.3
kill -KILL "$(seqcast_pid b-pub1)" || die "no publisher to kill"
kill -CONT "$BSEQ"
wait_exit b-pub1 10 || die "the killed publisher did not go away"
log "B: publisher SIGKILLed (status ${RC[b-pub1]}); restarting it on its journal"
sleep 0.5
# The restarted publisher says where its journal resumes; what it offered before is pub_seq - 1.
start b-pub2 $LIMIT "$SEQCAST" "${PUB_ARGS[@]}" --count 1 --json "$TMP/b-pub2-probe.json"
wait_exit b-pub2 60 || die "the restarted publisher did not finish"
RESUME=$(sed -n 's/.*resumes at pub_seq \([0-9]*\), resending \([0-9]*\).*/\1 \2/p' "$TMP/b-pub2.log")
read -r RESUME_SEQ RESENDING <<<"$RESUME"
[[ -n ${RESUME_SEQ:-} ]] || die "the restarted publisher did not report resuming from its journal: $(cat "$TMP/b-pub2.log")"
FIRST_RUN=$((RESUME_SEQ - 1))
REMAINDER=$((COUNT - FIRST_RUN - 1))
log "B: the first run offered $FIRST_RUN ($RESENDING unconfirmed, resent on restart); a 1-message probe run, then $REMAINDER more"
check "b-pub2 (probe) exit status" "${RC[b-pub2]}" eq 0
check "b-pub2 complete" "$(json "$TMP/b-pub2-probe.json" complete)" == true
check "unconfirmed messages at the crash" "$RESENDING" gt 0
start b-pub3 $LIMIT "$SEQCAST" "${PUB_ARGS[@]}" --count "$REMAINDER" --json "$TMP/b-pub3.json"
wait_exit b-pub3 120 || die "the publisher's last run did not finish within 120 s"
check "b-pub3 exit status" "${RC[b-pub3]}" eq 0
check "b-pub3 offered" "$(json "$TMP/b-pub3.json" offered)" eq "$REMAINDER"
check "b-pub3 complete" "$(json "$TMP/b-pub3.json" complete)" == true
check "b-pub3 unconfirmed" "$(json "$TMP/b-pub3.json" unconfirmed)" eq 0
end_stream b-seq b-sub $COUNT
echo "  b-pub2:  $(grep -o 'journal:.*' "$TMP/b-pub2.log"); $(grep -o 'publisher [0-9]*:.*resent' "$TMP/b-pub2.log")"
echo "  b-pub3:  $(grep -o 'publisher [0-9]*:.*resent' "$TMP/b-pub3.log")"
echo "  b-seq:   $(grep -o 'stopped at.*' "$TMP/b-seq.log")"
sub_checks b-sub $COUNT 1 0
finish
