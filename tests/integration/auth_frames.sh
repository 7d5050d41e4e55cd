#!/usr/bin/env bash
# Authenticated frames end to end, with real processes on loopback multicast: a sequencer, an
# archiver, a subscriber with 2 % injected loss (so NAKs and retransmissions flow) and two
# publishers, every one with --auth-key; the publishers sign with different key ids (rotation in
# progress). A forger with a key of its own and an unsigned publisher send PUBs too, and a
# subscriber without the key listens. Then a replay from the archiver, with the key and without.
# Expected: every genuine message delivered once, in order, nothing lost; nothing from the forger or
# the unsigned publisher sequenced, their frames counted as drop_bad_auth / drop_unknown_key; the
# keyless subscriber delivers nothing; the keyed replay matches the subscriber's digest and the
# keyless one gets no answer.
#
# usage: auth_frames.sh /path/to/seqcast
. "$(dirname "$0")/lib.sh" "$@"

N=20000
LIMIT=120
pick_ports
pick_group
CONTROL=127.0.0.1:$PORT
GROUP=$GROUP_ADDR:$((PORT + 1))
ARCH=127.0.0.1:$((PORT + 3))
KEYS=$TMP/keys
FORGED=$TMP/forged-keys
key() { head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n'; }
printf '# stream keys\n1 %s\n2 %s\n' "$(key)" "$(key)" >"$KEYS"
printf '1 %s\n' "$(key)" >"$FORGED"
chmod 600 "$KEYS" "$FORGED"
AUTH=(--auth-key "$KEYS")
log "sequencer $CONTROL -> $GROUP, archiver $ARCH, all with --auth-key; publishers on key ids 1 and 2; a forger and an unsigned publisher"

start seq $LIMIT "$SEQCAST" sequencer --control "$CONTROL" --group "$GROUP" --state "$TMP/seq.state" "${AUTH[@]}"
start arch $LIMIT "$SEQCAST" archiver --group "$GROUP" --control "$ARCH" --log "$TMP/archive.log" --size 64M --segment 4M "${AUTH[@]}"
start sub1 $LIMIT "$SEQCAST" sub --group "$GROUP" --verify --exit-on-eos --json "$TMP/sub1.json" --loss 0.02 --fault-seed 7 "${AUTH[@]}"
start keyless $LIMIT "$SEQCAST" sub --group "$GROUP" --verify --exit-on-eos --json "$TMP/keyless.json"
heard() {
    local p v
    p=$(seqcast_pid sub1) || return 1
    v=$(counter "$p" heartbeats_received)
    [[ ${v:-0} -gt 0 ]]
}
wait_until 20 "sub1 hears the sequencer" heard || die "sub1 did not hear the sequencer"
SEQ_PID=$(seqcast_pid seq)
KEYLESS_PID=$(seqcast_pid keyless)

start pub1 $LIMIT "$SEQCAST" pub --sequencer "$CONTROL" --rate 5000 --count "$N" --size 16-400 --seed 1 --json "$TMP/pub1.json" \
    "${AUTH[@]}" --auth-key-id 1
start pub2 $LIMIT "$SEQCAST" pub --sequencer "$CONTROL" --rate 5000 --count "$N" --size 16-400 --seed 2 --json "$TMP/pub2.json" \
    "${AUTH[@]}" --auth-key-id 2
# The forger first, then the unsigned publisher, so that each drop class is attributed to its own
# sender: the forger signs under key id 1 (in the key file) with a key of its own, so every frame
# of it is a MAC that does not verify (drop_bad_auth) and none names an unknown key.
start forger 10 "$SEQCAST" pub --sequencer "$CONTROL" --rate 2000 --count 4000 --size 16-400 --seed 3 --json "$TMP/forger.json" \
    --auth-key "$FORGED"
wait_exit forger 20 || true
need_counter FORGER_BAD_AUTH "$SEQ_PID" drop_bad_auth
need_counter FORGER_UNKNOWN_KEY "$SEQ_PID" drop_unknown_key
# An unsigned frame's last 24 bytes are read as a trailer whose key id is not in the key file.
start unsigned 10 "$SEQCAST" pub --sequencer "$CONTROL" --rate 2000 --count 4000 --size 16-400 --seed 4 --json "$TMP/unsigned.json"
wait_exit unsigned 20 || true
wait_exit pub1 60 || die "pub1 still running"
wait_exit pub2 60 || die "pub2 still running"
# Every counter checked below must be read from the live process: one that cannot be read fails
# the test rather than passing a "nothing dropped/delivered" check as 0.
need_counter BAD_AUTH "$SEQ_PID" drop_bad_auth
need_counter UNKNOWN_KEY "$SEQ_PID" drop_unknown_key
need_counter SEQ_MSGS "$SEQ_PID" messages_out
need_counter KEYLESS_IN "$KEYLESS_PID" messages_in
delivered_all() {
    local p v
    p=$(seqcast_pid sub1) || return 0
    v=$(counter "$p" messages_in)
    ((${v:-0} >= 2 * N))
}
wait_until 30 "sub1 delivered $((2 * N)) messages" delivered_all || true

# Replays of the whole stream from the archiver: with the key, and without it.
"$SEQCAST" replay --archiver "$ARCH" --from 0 --to $((2 * N)) --verify --wait --timeout 30 --json "$TMP/replay.json" \
    "${AUTH[@]}" >"$TMP/replay.out" 2>"$TMP/replay.log"
REPLAY_RC=$?
timeout 20 "$SEQCAST" replay --archiver "$ARCH" --from 0 --to $((2 * N)) --verify --timeout 3 --json "$TMP/replay-keyless.json" \
    >"$TMP/replay-keyless.out" 2>"$TMP/replay-keyless.log"
KEYLESS_REPLAY_RC=$?
ARCH_PID=$(seqcast_pid arch)
need_counter ARCH_BAD_AUTH "$ARCH_PID" drop_bad_auth
need_counter ARCH_UNKNOWN_KEY "$ARCH_PID" drop_unknown_key

stop seq TERM 10 || true
wait_exit sub1 20 || stop sub1 TERM 10 || true
stop keyless TERM 10 || true
stop arch TERM 10 || true

f=$TMP/sub1.json
printf '\n%-8s %9s %7s %9s %6s %s\n' who messages gaps repaired lost digest
printf '%-8s %9s %7s %9s %6s %s\n' sub1 "$(json "$f" messages)" "$(json "$f" gaps)" "$(json "$f" repaired_offsets)" \
    "$(json "$f" lost_offsets)" "$(json "$f" digest)"
printf '%-8s %9s %7s %9s %6s %s\n' replay "$(json "$TMP/replay.json" messages)" "" "" "" "$(json "$TMP/replay.json" digest)"
echo "sequencer: $SEQ_MSGS messages sequenced; dropped $BAD_AUTH with a bad MAC ($FORGER_BAD_AUTH while the forger ran alone), $UNKNOWN_KEY under an unknown key ($FORGER_UNKNOWN_KEY then)"
echo "keyless subscriber: $KEYLESS_IN messages; keyless replay exit $KEYLESS_REPLAY_RC; archiver dropped $ARCH_BAD_AUTH + $ARCH_UNKNOWN_KEY unsigned requests (bad MAC + unknown key)"
check "pub1 confirmed" "$(json "$TMP/pub1.json" confirmed)" eq "$N"
check "pub2 confirmed" "$(json "$TMP/pub2.json" confirmed)" eq "$N"
check "the forger got nothing confirmed" "$(json "$TMP/forger.json" confirmed)" eq 0
check "the unsigned publisher got nothing confirmed" "$(json "$TMP/unsigned.json" confirmed)" eq 0
check "sequencer sequenced only the genuine messages" "$SEQ_MSGS" eq $((2 * N))
# Each class on its own, from its own sender (the forger ran alone first).
check "forged PUBs counted as drop_bad_auth" "$FORGER_BAD_AUTH" gt 0
check "no forged PUB counted as an unknown key" "$FORGER_UNKNOWN_KEY" eq 0
check "unsigned PUBs counted as drop_unknown_key" "$((UNKNOWN_KEY - FORGER_UNKNOWN_KEY))" gt 0
check "sub1 messages" "$(json "$f" messages)" eq $((2 * N))
check "sub1 lost_offsets" "$(json "$f" lost_offsets)" eq 0
check "sub1 order_violations" "$(json "$f" order_violations)" eq 0
check "sub1 repaired (authenticated NAKs answered)" "$(json "$f" repaired_offsets)" gt 0
check "keyless subscriber delivered nothing" "$KEYLESS_IN" eq 0
check "keyed replay exit" "$REPLAY_RC" eq 0
check "keyed replay digest equals sub1's" "$(json "$TMP/replay.json" digest)" == "$(json "$f" digest)"
check "keyless replay failed" "$KEYLESS_REPLAY_RC" ne 0
# The keyless replay client is the only unsigned party that talks to the archiver: its requests'
# last bytes name no key in the key file.
check "the archiver dropped the unsigned replay requests (drop_unknown_key)" "$ARCH_UNKNOWN_KEY" gt 0
finish
