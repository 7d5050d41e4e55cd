#!/usr/bin/env bash
# One owner per address and per file. A sequencer, a journaled publisher and an exactly-once
# subscriber run on loopback; then, while they run, processes started by mistake on what they own
# must each be refused at once with exit 2 and an error naming the option and the address or file:
#   a second sequencer on the same --control, on the same --state, on the same --data-bind;
#   an archiver on the sequencer's control address; a second archiver on a recording archiver's --log;
#   a replay client and a publisher binding the sequencer's control address;
#   a second publisher on the same --journal; a second exactly-once subscriber on the same
#   --commit-file.
# Before these were refused, a second sequencer (or an archiver) on a running sequencer's control
# address took a share of the PUBs: publishers had messages confirmed that no subscriber ever got.
# Afterwards the first sequencer still works: every message the publishers had confirmed is
# delivered, by both subscribers, with nothing lost.
#
# usage: single_owner.sh /path/to/seqcast
. "$(dirname "$0")/lib.sh" "$@"

N=2000
LIMIT=120

pick_ports
pick_group
P=$PORT
G=$GROUP_ADDR:$((P + 1))
pick_ports
DATA=127.0.0.1:$PORT
OTHER=$((PORT + 1))   # a free port for the attempts that must fail on something else
pick_ports
DATA_PORT2=$PORT      # the archiver's service port

heard() {
    local p v
    p=$(seqcast_pid "$1") || return 1
    v=$(counter "$p" heartbeats_received)
    [[ ${v:-0} -gt 0 ]]
}

log "sequencer on 127.0.0.1:$P (data $DATA, state $TMP/seq.state) -> $G"
start seq $LIMIT "$SEQCAST" sequencer --control 127.0.0.1:$P --data-bind $DATA --group "$G" --state "$TMP/seq.state" --ring 16M
start sub $LIMIT "$SEQCAST" sub --group "$G" --verify --exit-on-eos --json "$TMP/sub.json"
start eo $LIMIT "$SEQCAST" sub --group "$G" --mode exactly-once --commit-file "$TMP/eo.commit" --verify --exit-on-eos \
    --json "$TMP/eo.json"
wait_until 20 "the subscribers hear the sequencer" heard sub || die "the subscriber did not hear the sequencer"
wait_until 20 "the exactly-once subscriber hears the sequencer" heard eo || die "the exactly-once subscriber did not hear the sequencer"
# A journaled publisher that stays up through the attempts (slow rate), then finishes its count.
start pub1 $LIMIT "$SEQCAST" pub --sequencer 127.0.0.1:$P --journal "$TMP/pub1.journal" --rate 200 --count $N \
    --json "$TMP/pub1.json"
wait_until 20 "the publisher holds its journal" seqcast_pid pub1 >/dev/null || die "the publisher did not start"
sleep 0.5

# refused LABEL OPTION WHAT CMD...: CMD exits 2 within 20 s, its error names --OPTION and WHAT.
refused() {
    local label=$1 opt=$2 what=$3 rc
    shift 3
    timeout -k 5 20 "$@" >"$TMP/attempt.out" 2>"$TMP/attempt.err"
    rc=$?
    log "$label: exit $rc: $(head -c 300 "$TMP/attempt.err" | head -n 2 | tr '\n' ' ')"
    check "$label: exit status" "$rc" eq 2
    grep -q -- "--$opt" "$TMP/attempt.err" || { echo "CHECK FAILED: $label: the error does not name --$opt"; FAILURES=$((FAILURES + 1)); }
    grep -qF -- "$what" "$TMP/attempt.err" || { echo "CHECK FAILED: $label: the error does not name $what"; FAILURES=$((FAILURES + 1)); }
}
refused "second sequencer, same --control" control "127.0.0.1:$P" \
    "$SEQCAST" sequencer --control 127.0.0.1:$P --group "$G" --state "$TMP/other.state" --duration 5
refused "second sequencer, same --state" state "$TMP/seq.state" \
    "$SEQCAST" sequencer --control 127.0.0.1:$OTHER --group "$G" --state "$TMP/seq.state" --duration 5
refused "second sequencer, same --data-bind" data-bind "$DATA" \
    "$SEQCAST" sequencer --control 127.0.0.1:$OTHER --data-bind $DATA --group "$G" --state "$TMP/other2.state" --duration 5
refused "archiver on the sequencer's control address" control "127.0.0.1:$P" \
    "$SEQCAST" archiver --control 127.0.0.1:$P --group "$G" --log "$TMP/a.seqlog" --size 64M --duration 5
refused "replay client bound to the sequencer's control address" bind "127.0.0.1:$P" \
    "$SEQCAST" replay --archiver 127.0.0.1:$OTHER --bind 127.0.0.1:$P --from 0 --to 10 --timeout 5
refused "publisher bound to the sequencer's control address" bind "127.0.0.1:$P" \
    "$SEQCAST" pub --sequencer 127.0.0.1:$P --bind 127.0.0.1:$P --count 1 --linger 1
refused "second publisher on the same --journal" journal "$TMP/pub1.journal" \
    "$SEQCAST" pub --sequencer 127.0.0.1:$P --journal "$TMP/pub1.journal" --count 10 --linger 1
refused "second exactly-once subscriber on the same --commit-file" commit-file "$TMP/eo.commit" \
    "$SEQCAST" sub --group "$G" --mode exactly-once --commit-file "$TMP/eo.commit" --duration 5
# An archiver recording into a log: a second archiver on the same --log (another service port).
start arch $LIMIT "$SEQCAST" archiver --control 127.0.0.1:$DATA_PORT2 --group "$G" --log "$TMP/arch.seqlog" --size 64M --segment 4M
wait_until 20 "the archiver serves replays" grep -q "replays on" "$TMP/arch.log" || die "the archiver did not start"
refused "second archiver on the same --log" log "$TMP/arch.seqlog" \
    "$SEQCAST" archiver --control 127.0.0.1:$OTHER --group "$G" --log "$TMP/arch.seqlog" --size 64M --segment 4M --duration 5

# The first sequencer kept the stream: a second publisher, then every confirmed message delivered.
start pub2 $LIMIT "$SEQCAST" pub --sequencer 127.0.0.1:$P --rate 0 --count $N --json "$TMP/pub2.json"
for p in pub1 pub2; do
    wait_exit $p 90 || die "$p still running after 90 s"
    check "$p exit status" "${RC[$p]}" eq 0
    check "$p confirmed" "$(json "$TMP/$p.json" confirmed)" eq $N
done
delivered() {
    local p v
    p=$(seqcast_pid "$1") || return 0
    v=$(counter "$p" messages_in)
    [[ -z $v ]] || ((v >= 2 * N))
}
wait_until 60 "the subscribers deliver $((2 * N)) messages" delivered sub || true
wait_until 60 "the exactly-once subscriber delivers $((2 * N)) messages" delivered eo || true
stop arch TERM 20
check "archiver exit status" "$?" eq 0
stop seq TERM 10
check "sequencer exit status" "$?" eq 0
for s in sub eo; do
    wait_exit $s 20 || { log "$s did not see END_OF_STREAM: stopping it"; stop $s TERM 10 || true; }
    check "$s messages (= confirmed)" "$(json "$TMP/$s.json" messages)" eq $((2 * N))
    check "$s lost_offsets" "$(json "$TMP/$s.json" lost_offsets)" eq 0
done
check "exactly-once digest equals the subscriber's" "$(json "$TMP/eo.json" digest)" == "$(json "$TMP/sub.json" digest)"
finish
