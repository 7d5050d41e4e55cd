#!/usr/bin/env bash
# `seqcast sub --from OFFSET` inside a fragmented message: the message cannot be delivered, and
# the subscriber says so with a loss notice for its fragments' offsets instead of consuming them
# silently. 3 messages of 3000 bytes at the default MTU take 3 fragments each (offsets 0..8; the
# messages are delivered at offsets 2, 5 and 8). Late joiners replaying from the archiver:
#   --from 3 (the second message's first fragment): messages at 5 and 8, no loss;
#   --from 4 (its middle fragment): LOSS offsets [4, 6), then the message at 8.
#
# usage: from_mid_message.sh /path/to/seqcast
. "$(dirname "$0")/archiver_lib.sh" "$@"

LIMIT=60
ports_and_group
log "3 messages of 3000 B (3 fragments each) -> $CONTROL -> $GROUP; archiver $ARCHIVER"
start_sequencer seq $LIMIT
start_archiver arch $LIMIT "$TMP/archive.seqlog" --size 64M --segment 4M
arch_heard() { v=$(counter "$(seqcast_pid arch)" heartbeats_received); [[ ${v:-0} -gt 0 ]]; }
wait_until 20 "the archiver hears the sequencer" arch_heard || die "no heartbeat reached the archiver (multicast on loopback?)"
start pub $LIMIT "$SEQCAST" pub --sequencer "$CONTROL" --rate 100 --count 3 --size 3000 --json "$TMP/pub.json" --linger 20
wait_exit pub 30 || die "publisher still running"
check "pub confirmed" "$(json "$TMP/pub.json" confirmed)" eq 3
check "the third message is at offset 8 (3 fragments each)" "$(json "$TMP/pub.json" last_offset)" eq 8
archived() { v=$(counter "$(seqcast_pid arch)" archive_next); ((${v:-0} >= 9)); }
wait_until 20 "the archiver records offsets 0..8" archived || die "the archiver did not record the stream"

for from in 3 4; do
    start "from$from" $LIMIT "$SEQCAST" sub --group "$GROUP" --from "$from" --archiver "$ARCHIVER" --print \
        --until-offset 9 --json "$TMP/from$from.json"
done
for from in 3 4; do
    wait_exit "from$from" 30 || { log "from$from did not reach offset 9"; stop "from$from" TERM 10 >/dev/null || true; }
    check "from$from exit status" "${RC[from$from]:-none}" eq 0
    log "from$from printed offsets: $(cut -d' ' -f1 "$TMP/from$from.out" | tr '\n' ' ')/ loss notices: $(grep -o 'LOSS offsets \[[0-9]*, [0-9]*)' "$TMP/from$from.log" | tr '\n' ' ')"
done
check "--from 3: messages printed" "$(cut -d' ' -f1 "$TMP/from3.out" | tr '\n' ' ')" == "5 8 "
check "--from 3: every message printed whole (3000 bytes)" "$(cut -d' ' -f4 "$TMP/from3.out" | sort -u)" == 3000
check "--from 3: loss notices" "$(grep -c 'LOSS offsets' "$TMP/from3.log")" eq 0
check "--from 4: messages printed" "$(cut -d' ' -f1 "$TMP/from4.out" | tr '\n' ' ')" == "8 "
check "--from 4: the partial message is reported lost" "$(grep -o 'LOSS offsets \[[0-9]*, [0-9]*)' "$TMP/from4.log")" == "LOSS offsets [4, 6)"
check "--from 4: lost offsets in its summary" "$(json "$TMP/from4.json" lost_offsets)" eq 2
stop seq TERM 10 >/dev/null || true
stop arch TERM 10 >/dev/null || true
finish
