#!/usr/bin/env bash
# Options that nothing else runs end to end, each on real processes (~1 minute in all):
#  1. one stream, 2 publishers one after the other, and around it:
#     - the sequencer with --sync-state (a restart on its state file continues at the head);
#     - a publisher restarting without a journal: a new publisher id, and everything each
#       process confirmed is delivered once (count, order, per-publisher FIFO, 2 publishers);
#     - archivers with --durability none, --durability batch, --direct and --no-uring: each
#       records the stream, a replay of it has the reference subscriber's digest, and dump
#       --verify accepts its log (no gaps);
#     - sub --mode exactly-once --commit-sync-ms 5: the whole stream, the reference digest;
#     - sub --corrupt 0.01 on its receive side: CRC drops counted, the stream still complete
#       with the reference digest;
#     - sub --mode at-most-once --loss 0.02: loss notices, lost offsets, and not one NAK.
#  2. `seqcast demo` itself (the README's first command), short: exit 0, every subscriber 0 lost,
#     identical digests, the result line PASS.
# usage: options_e2e.sh /path/to/seqcast
. "$(dirname "$0")/archiver_lib.sh" "$@"

N=3000
LIMIT=150
ports_and_group
log "sequencer $CONTROL (--sync-state) -> $GROUP; archivers, subscribers of every mode; publishers of $N messages"
start_sequencer seq $LIMIT --sync-state
declare -A AOPT=([none]="--durability none" [batch]="--durability batch" [direct]="--direct" [nouring]="--no-uring")
declare -A AADDR=()
for a in none batch direct nouring; do
    pick_port
    AADDR[$a]=127.0.0.1:$ONE_PORT
    # shellcheck disable=SC2086
    start "arch_$a" $LIMIT "$SEQCAST" archiver --group "$GROUP" --control "${AADDR[$a]}" --log "$TMP/$a.seqlog" \
        --size 32M --segment 4M ${AOPT[$a]}
done
start ref $LIMIT "$SEQCAST" sub --group "$GROUP" --verify --exit-on-eos --json "$TMP/ref.json"
start eo $LIMIT "$SEQCAST" sub --group "$GROUP" --mode exactly-once --commit-file "$TMP/eo.commit" --commit-sync-ms 5 \
    --verify --exit-on-eos --json "$TMP/eo.json"
start corrupt $LIMIT "$SEQCAST" sub --group "$GROUP" --corrupt 0.01 --fault-on rx --fault-seed 11 --verify --exit-on-eos \
    --json "$TMP/corrupt.json"
start amo $LIMIT "$SEQCAST" sub --group "$GROUP" --mode at-most-once --loss 0.02 --fault-on rx --fault-seed 12 --verify \
    --exit-on-eos --json "$TMP/amo.json"
for a in none batch direct nouring; do
    ready() { grep -q "replays on" "$TMP/arch_$1.log" 2>/dev/null; }
    wait_until 20 "archiver $a ready" ready "$a" || die "archiver $a ($(tail -1 "$TMP/arch_$a.log")) did not start"
done
heard() {
    local s p v
    for s in ref eo corrupt amo; do
        p=$(seqcast_pid "$s") || return 1
        v=$(counter "$p" heartbeats_received)
        [[ ${v:-0} -gt 0 ]] || return 1
    done
}
wait_until 20 "subscribers hear the sequencer" heard || die "the subscribers did not hear the sequencer"
AMO_PID=$(seqcast_pid amo)

# The same program twice without --journal: the second process is a new publisher.
for p in pubA pubB; do
    start $p 60 "$SEQCAST" pub --sequencer "$CONTROL" --rate 3000 --count "$N" --size 16-3000 --seed 5 --json "$TMP/$p.json"
    wait_exit $p 50 || die "$p still running"
    check "$p exit status" "${RC[$p]}" eq 0
done
CONF_A=$(json "$TMP/pubA.json" confirmed)
CONF_B=$(json "$TMP/pubB.json" confirmed)
HEAD=$(($(json "$TMP/pubB.json" last_offset) + 1))
check "pubA confirmed" "$CONF_A" eq "$N"
check "pubB confirmed" "$CONF_B" eq "$N"
check "the restarted publisher has a new id" "$(json "$TMP/pubB.json" publisher)" != "$(json "$TMP/pubA.json" publisher)"
log "published: offsets 0..$((HEAD - 1)); publishers $(json "$TMP/pubA.json" publisher) then $(json "$TMP/pubB.json" publisher)"

# Every archiver records the whole stream; a replay of it is the reference subscriber's stream.
need_counter AMO_NAKS "$AMO_PID" naks_sent
for a in none batch direct nouring; do
    wait_counter_ge "$(seqcast_pid "arch_$a")" archive_next "$HEAD" 30 || log "archiver $a did not record up to $HEAD"
    timeout -k 5 60 "$SEQCAST" replay --archiver "${AADDR[$a]}" --from 0 --to "$HEAD" --verify --timeout 30 \
        --json "$TMP/replay_$a.json" >"$TMP/replay_$a.out" 2>"$TMP/replay_$a.log"
    check "replay from the archiver with ${AOPT[$a]}: exit" "$?" eq 0
done
stop seq TERM 10
check "sequencer (--sync-state) exit status" "$?" eq 0
for s in ref eo corrupt amo; do
    wait_exit $s 20 || { log "$s did not see the end of the stream"; stop $s TERM 10 || true; }
done
for a in none batch direct nouring; do
    stop "arch_$a" TERM 10
    check "archiver ${AOPT[$a]} exit status" "$?" eq 0
done

# The sequencer restarts on its --sync-state file at the head of the stream.
start seq2 30 "$SEQCAST" sequencer --control "$CONTROL" --group "$GROUP" --state "$TMP/seq.state" --sync-state
wait_until 10 "the restarted sequencer's startup line" grep -q "next offset" "$TMP/seq2.log" || true
check "restarted sequencer's next offset" "$(sed -n 's/.*next offset \([0-9]*\).*/\1/p' "$TMP/seq2.log" | head -1)" eq "$HEAD"
stop seq2 TERM 10 || true

D_REF=$(json "$TMP/ref.json" digest)
printf '\n%-9s %8s %6s %9s %6s %5s %5s %s\n' who messages gaps repaired naks lost crc digest
for s in ref eo corrupt amo; do
    f=$TMP/$s.json
    printf '%-9s %8s %6s %9s %6s %5s %5s %s\n' $s "$(json "$f" messages)" "$(json "$f" gaps)" "$(json "$f" repaired_offsets)" \
        "$(json "$f" naks_sent)" "$(json "$f" lost_offsets)" "$(json "$f" crc_drops)" "$(json "$f" digest)"
done
for s in ref eo corrupt; do
    f=$TMP/$s.json
    check "$s messages: everything confirmed, once" "$(json "$f" messages)" eq $((CONF_A + CONF_B))
    check "$s lost_offsets" "$(json "$f" lost_offsets)" eq 0
    check "$s order_violations" "$(json "$f" order_violations)" eq 0
    check "$s fifo_violations" "$(json "$f" fifo_violations)" eq 0
    check "$s publishers" "$(json "$f" publishers)" eq 2
    check "$s digest equals ref's" "$(json "$f" digest)" == "${D_REF:-missing}"
done
check "ref digest present" "${D_REF:-}" != ""
check "corrupt: CRC drops counted" "$(json "$TMP/corrupt.json" crc_drops)" gt 0
check "corrupt: the damaged datagrams were repaired" "$(json "$TMP/corrupt.json" repaired_offsets)" gt 0
f=$TMP/amo.json
check "at-most-once: loss notices" "$(json "$f" loss_notices)" gt 0
check "at-most-once: lost offsets" "$(json "$f" lost_offsets)" gt 0
check "at-most-once: NAKs sent (summary)" "$(json "$f" naks_sent)" eq 0
check "at-most-once: NAKs sent (counter, while running)" "$AMO_NAKS" eq 0
check "at-most-once: nothing repaired" "$(json "$f" repaired_offsets)" eq 0
check "at-most-once: order_violations" "$(json "$f" order_violations)" eq 0
for a in none batch direct nouring; do
    check "replay (${AOPT[$a]}) messages" "$(json "$TMP/replay_$a.json" messages)" eq $((CONF_A + CONF_B))
    check "replay (${AOPT[$a]}) digest equals ref's" "$(json "$TMP/replay_$a.json" digest)" == "${D_REF:-missing}"
    dump_range "$TMP/$a.seqlog"
    check "dump --verify of the ${AOPT[$a]} log: exit" "$DUMP_RC" eq 0
    check "dump --verify of the ${AOPT[$a]} log: next offset" "${DUMP_NEXT:-missing}" eq "$HEAD"
    check "dump --verify of the ${AOPT[$a]} log: gap offsets" "${DUMP_GAPS:-missing}" eq 0
done

# 2. The demo, short.
log "seqcast demo --duration 2"
(cd "$TMP" && timeout -k 5 120 "$SEQCAST" demo --duration 2 --rate 2000 --svg "$TMP/demo.svg" >"$TMP/demo.out" 2>"$TMP/demo.log")
DEMO_RC=$?
sed -n '/seqcast demo report/,$p' "$TMP/demo.out"
check "demo exit status" "$DEMO_RC" eq 0
NSUBLINES=$(grep -c '^  subscriber [0-9]' "$TMP/demo.out")
check "demo subscribers reported" "$NSUBLINES" eq 3
check "demo subscribers with 0 lost" "$(grep -c '^  subscriber [0-9].*, 0 lost$' "$TMP/demo.out")" eq 3
check "demo distinct digests (subscribers and late joiner)" \
    "$(grep -o 'digest [0-9a-f]*' "$TMP/demo.out" | sort -u | wc -l)" eq 1
check "demo result" "$(grep -c '^  result *PASS' "$TMP/demo.out")" eq 1
finish
