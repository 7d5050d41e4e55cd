#!/usr/bin/env bash
# Publishers coming and going, more of them than the sequencer has slots: a sequencer with
# --max-publishers 2 and --publisher-timeout 1 serves 5 waves of 2 publishers (10 in all) that
# restart without journals (a fresh random id each time). Each wave starts 1.5 s after the
# previous one ended, so the publishers before it have been idle longer than the timeout and
# their slots go to the new ones. Before slots were freed, the third publisher was refused
# (TooManyPublishers) and a sequencer whose publishers restart without journals refused every
# new one after --max-publishers starts.
# Every publisher has all its messages confirmed; the subscriber delivers all of them, nothing
# lost; the sequencer counts the expired slots and no publisher it could not recognise.
#
# usage: publisher_churn.sh /path/to/seqcast
. "$(dirname "$0")/lib.sh" "$@"

WAVES=5
PER_WAVE=2
N=500
LIMIT=120
TOTAL=$((WAVES * PER_WAVE * N))

pick_ports
pick_group
P=$PORT
G=$GROUP_ADDR:$((P + 1))
heard() {
    local p v
    p=$(seqcast_pid "$1") || return 1
    v=$(counter "$p" heartbeats_received)
    [[ ${v:-0} -gt 0 ]]
}
log "sequencer 127.0.0.1:$P -> $G with --max-publishers 2 --publisher-timeout 1; $WAVES waves of $PER_WAVE publishers, $N messages each"
start seq $LIMIT "$SEQCAST" sequencer --control 127.0.0.1:$P --group "$G" --state "$TMP/seq.state" --ring 16M \
    --max-publishers 2 --publisher-timeout 1
start sub $LIMIT "$SEQCAST" sub --group "$G" --verify --exit-on-eos --json "$TMP/sub.json"
wait_until 20 "the subscriber hears the sequencer" heard sub || die "the subscriber did not hear the sequencer"

for w in $(seq 1 $WAVES); do
    for i in $(seq 1 $PER_WAVE); do
        start "pub$w-$i" 60 "$SEQCAST" pub --sequencer 127.0.0.1:$P --rate 0 --count $N --size 64-512 --seed "$w$i" \
            --json "$TMP/pub$w-$i.json"
    done
    for i in $(seq 1 $PER_WAVE); do
        wait_exit "pub$w-$i" 60 || die "publisher $w-$i still running after 60 s"
        check "publisher $w-$i exit status" "${RC[pub$w-$i]}" eq 0
        check "publisher $w-$i confirmed" "$(json "$TMP/pub$w-$i.json" confirmed)" eq $N
    done
    # Longer than --publisher-timeout since the last PUB of every publisher so far.
    ((w < WAVES)) && sleep 1.5
done

SEQ_PID=$(seqcast_pid seq)
EXPIRED=$(counter "$SEQ_PID" publishers_expired)
UNRECOGNISED=$(counter "$SEQ_PID" publishers_unrecognised)
log "sequencer: publishers_expired ${EXPIRED:-?}, publishers_unrecognised ${UNRECOGNISED:-?}"
check "expired publisher slots" "${EXPIRED:-?}" eq $(((WAVES - 1) * PER_WAVE))
check "publishers not recognised" "${UNRECOGNISED:-?}" eq 0
delivered() {
    local p v
    p=$(seqcast_pid sub) || return 0
    v=$(counter "$p" messages_in)
    [[ -z $v ]] || ((v >= TOTAL))
}
wait_until 60 "the subscriber delivers $TOTAL messages" delivered || true
stop seq TERM 10
check "sequencer exit status" "$?" eq 0
wait_exit sub 20 || { log "the subscriber did not see END_OF_STREAM: stopping it"; stop sub TERM 10 || true; }
check "subscriber messages" "$(json "$TMP/sub.json" messages)" eq $TOTAL
check "subscriber lost_offsets" "$(json "$TMP/sub.json" lost_offsets)" eq 0
check "subscriber publishers" "$(json "$TMP/sub.json" publishers)" eq $((WAVES * PER_WAVE))
finish
