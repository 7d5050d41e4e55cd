#!/usr/bin/env bash
# The archive rung of the subscriber's repair ladder. A sequencer with the smallest retransmit
# ring (--ring 1500K: 1024 x MTU), an archiver, one publisher at a steady R msg/s, and three
# subscribers that all start at offset 0:
#   ref:  never stopped                      -> the reference stream
#   arch: --archiver, SIGSTOPped for STOP_S s -> lost 0 and the reference digest: what it missed is
#                                               older than the sequencer's ring by the time it
#                                               resumes, so the archiver repaired it
#   bare: no --archiver, stopped alike        -> explicit loss notices (lost_offsets > 0), and it
#                                               still ends (END_OF_STREAM), never hangs
# The loss is deterministic and bounded in time: while a subscriber is stopped, its small socket
# receive buffer (--rcvbuf 256K) overflows and the kernel drops the rest of the stream; STOP_S
# seconds of stream are several times what the sequencer's ring holds.
#
# usage: archive_repair.sh /path/to/seqcast
# Environment (calibration only): SEQCAST_IT_MESSAGES (default 48000), SEQCAST_IT_RATE (8000),
# SEQCAST_IT_STOP_S (2).
. "$(dirname "$0")/archiver_lib.sh" "$@"

N=${SEQCAST_IT_MESSAGES:-48000}
RATE=${SEQCAST_IT_RATE:-8000}
STOP_S=${SEQCAST_IT_STOP_S:-2}
LIMIT=180
SUBS=(ref arch bare)

ports_and_group
log "$N messages (200-1000 B, $RATE msg/s) -> $CONTROL (ring 1500K) -> $GROUP; archiver $ARCHIVER; arch and bare stopped for ${STOP_S}s"
start_sequencer seq $LIMIT --ring 1500K
# The archiver must not lose anything itself: a long deadline lets it repair a kernel drop.
start_archiver archiver $LIMIT "$TMP/archive.seqlog" --size 128M --segment 4M --nak-deadline-ms 10000
# The reference keeps up; --archiver covers a kernel drop on a busy host that the tiny ring no
# longer holds by the time it is NAKed.
start ref $LIMIT "$SEQCAST" sub --group "$GROUP" --archiver "$ARCHIVER" --verify --exit-on-eos --json "$TMP/ref.json" \
    --nak-deadline-ms 10000
start arch $LIMIT "$SEQCAST" sub --group "$GROUP" --archiver "$ARCHIVER" --verify --exit-on-eos --json "$TMP/arch.json" \
    --rcvbuf 256K --nak-deadline-ms 10000
start bare $LIMIT "$SEQCAST" sub --group "$GROUP" --verify --exit-on-eos --json "$TMP/bare.json" --rcvbuf 256K

heard() {
    local n p v
    for n in archiver "${SUBS[@]}"; do
        p=$(seqcast_pid "$n") || return 1
        v=$(counter "$p" heartbeats_received)
        [[ ${v:-0} -gt 0 ]] || return 1
    done
}
wait_until 20 "the subscribers and the archiver hear the sequencer" heard || die "no heartbeat reached the subscribers (multicast on loopback?)"
declare -A SPID=()
for n in archiver seq "${SUBS[@]}"; do SPID[$n]=$(seqcast_pid "$n"); done

start pub $LIMIT "$SEQCAST" pub --sequencer "$CONTROL" --rate "$RATE" --count "$N" --size 200-1000 --seed 3 \
    --json "$TMP/pub.json" --linger 30
# Stop arch and bare well inside the stream, for STOP_S seconds.
wait_counter_ge "${SPID[ref]}" messages_in $((RATE * 3 / 2)) 30 || die "the stream did not start"
BEFORE_ARCH=$(counter "${SPID[arch]}" head_offset)
kill -STOP "${SPID[arch]}" "${SPID[bare]}"
STOPPED_AT=$(counter "${SPID[ref]}" head_offset)
log "stopped arch and bare at about offset ${STOPPED_AT:-?} (arch at ${BEFORE_ARCH:-?})"
sleep "$STOP_S"
RESUMED_AT=$(counter "${SPID[ref]}" head_offset)
kill -CONT "${SPID[arch]}" "${SPID[bare]}"
STOPPED_SPAN=$((${RESUMED_AT:-0} - ${STOPPED_AT:-0}))
log "resumed them at about offset ${RESUMED_AT:-?}: ${STOPPED_SPAN} offsets went by while they were stopped"

wait_exit pub $((N / RATE + 60)) || die "publisher still running"
check "pub exit status" "${RC[pub]}" eq 0
check "pub confirmed" "$(json "$TMP/pub.json" confirmed)" eq "$N"
HEAD=$(($(json "$TMP/pub.json" last_offset) + 1))
log "publisher done: offsets 0..$((HEAD - 1))"
# Every subscriber gets past the head: ref and arch by delivery or repair, bare also by loss notices.
past_head() {
    local n v
    for n in "${SUBS[@]}"; do
        v=$(counter "${SPID[$n]}" head_offset)
        ((${v:-0} >= HEAD)) || return 1
    done
}
wait_until 60 "every subscriber got past offset $HEAD" past_head || true
A_NAKS=$(counter "${SPID[archiver]}" naks_received)
A_REPLAY=$(counter "${SPID[archiver]}" replay_datagrams_out)
log "archiver: ${A_NAKS:-?} NAKs received, ${A_REPLAY:-?} repair/replay datagrams out, archive_next $(counter "${SPID[archiver]}" archive_next), offsets it lost itself: $(counter "${SPID[archiver]}" offsets_lost)"
log "sequencer: $(counter "${SPID[seq]}" naks_received) NAKs, $(counter "${SPID[seq]}" retransmits) retransmits"
stop seq TERM 10 >/dev/null || true
for n in "${SUBS[@]}"; do
    wait_exit "$n" 20 || { log "$n missed END_OF_STREAM"; stop "$n" TERM 10 >/dev/null || true; }
    check "$n exit status" "${RC[$n]}" eq 0
    check "$n saw END_OF_STREAM" "$(json "$TMP/$n.json" end_of_stream)" == true
done
stop archiver TERM 20 >/dev/null || true

printf '%-5s %-9s %-9s %-7s %-8s %-9s %-6s %-6s %s\n' who messages digest lost notices repaired order fifo first..last
for n in "${SUBS[@]}"; do
    j=$TMP/$n.json
    printf '%-5s %-9s %-9s %-7s %-8s %-9s %-6s %-6s %s\n' "$n" "$(json "$j" messages)" "$(digest_of "$TMP/$n.out")" \
        "$(json "$j" lost_offsets)" "$(json "$j" loss_notices)" "$(json "$j" repaired_offsets)" \
        "$(json "$j" order_violations)" "$(json "$j" fifo_violations)" "$(json "$j" first_offset)..$(json "$j" last_offset)"
    check "$n order violations" "$(json "$j" order_violations)" eq 0
    check "$n fifo violations" "$(json "$j" fifo_violations)" eq 0
    check "$n first offset" "$(json "$j" first_offset)" le 1
done
show_losses bare
check "ref messages" "$(json "$TMP/ref.json" messages)" eq "$N"
check "ref lost" "$(json "$TMP/ref.json" lost_offsets)" eq 0
check "arch messages" "$(json "$TMP/arch.json" messages)" eq "$N"
check "arch lost" "$(json "$TMP/arch.json" lost_offsets)" eq 0
check "arch digest equals ref digest" "$(digest_of "$TMP/arch.out")" == "$(digest_of "$TMP/ref.out")"
# The stop really outlasted the sequencer's ring: the gap needed the archiver ...
check "offsets that went by during the stop (ring holds ~1024 datagrams)" "$STOPPED_SPAN" gt 4000
check "arch repaired offsets" "$(json "$TMP/arch.json" repaired_offsets)" gt 2000
check "archiver NAKs received" "${A_NAKS:-0}" gt 0
check "archiver repair datagrams out" "${A_REPLAY:-0}" gt 0
# ... and without it the same gap became explicit loss.
check "bare lost offsets" "$(json "$TMP/bare.json" lost_offsets)" gt 0
check "bare loss notices" "$(json "$TMP/bare.json" loss_notices)" gt 0
B_MSGS=$(json "$TMP/bare.json" messages)
B_LOST=$(json "$TMP/bare.json" lost_offsets)
check "bare messages + lost = N" $((${B_MSGS:-0} + ${B_LOST:-0})) eq "$N"
finish
