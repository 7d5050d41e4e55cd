#!/usr/bin/env bash
# MoldUDP64 ingress end to end, inside a network namespace of its own: a MoldUDP64 test feed
# written from the spec in Python (mold_feed.py: ITCH-sized messages, some packets reordered or
# sent twice, a request server answering from its history) -> `seqcast mold-ingress` -> sequencer
# -> archiver. nftables drops 2 % of the feed's multicast packets and 2 % of the request server's
# answers. The ingress joins after the feed has started (so it asks for sequence numbers 1.. it
# never saw), is SIGKILLed mid-feed and started again on the same journal (it must resume at the
# next feed message: nothing twice, nothing skipped), and exits by itself at the feed's end of
# session once everything is confirmed.
# Checks: the stream holds exactly the feed's N messages, in feed order (the archive's copy, read
# through the Python binding, has the feed's digest, and nothing after offset N - 1); gaps were
# re-requested and answered; nftables dropped datagrams; the ingress's own counters agree.
#
# usage: mold_ingress.sh /path/to/seqcast /path/to/libseqcast.so SOURCE_ROOT
. "$(dirname "$0")/../integration/archiver_lib.sh" "$1"
. "$(dirname "$0")/gateway_lib.sh"
LIB=$(readlink -f "$2")
SRC=$(readlink -f "$3")
PY=/usr/bin/python3
N=${SEQCAST_IT_MESSAGES:-30000}
RATE=${SEQCAST_IT_RATE:-3000}
LIMIT=240

[[ $(id -u) -eq 0 ]] || skip "needs root for a network namespace and nftables"
command -v ip >/dev/null || skip "iproute2 (ip) is not installed"
command -v nft >/dev/null || skip "nftables (nft) is not installed"
[[ -x $PY ]] || skip "$PY is not installed"

pick_ports
pick_group
pick_port
CONTROL=127.0.0.1:$PORT
GROUP=$GROUP_ADDR:$((PORT + 1))
ARCHIVER=127.0.0.1:$ONE_PORT
FEED_PORT=$(((ONE_PORT + 7) % 40000 + 20000))
REQ_PORT=$((FEED_PORT + 1))
FEED_GROUP=239.$((RANDOM % 254 + 1)).$((RANDOM % 256)).$((RANDOM % 254 + 1)):$FEED_PORT
REQUESTS=127.0.0.1:$REQ_PORT
lossy_netns scmin "udp dport $FEED_PORT" "udp sport $REQ_PORT"

log "namespace $NS: test feed ($N messages at $RATE msg/s) -> $FEED_GROUP (requests $REQUESTS) -> mold-ingress -> $CONTROL -> $GROUP -> archiver; nftables drops 2% of the feed and 2% of the answers"
start_ns seq "$NS" $LIMIT "$SEQCAST" sequencer --control "$CONTROL" --group "$GROUP" --state "$TMP/seq.state"
start_ns archiver "$NS" $LIMIT "$SEQCAST" archiver --group "$GROUP" --control "$ARCHIVER" --log "$TMP/archive.seqlog" --size 64M --segment 4M
wait_until 20 "the archiver serves replays" archiver_ready archiver || die "the archiver did not start"
start_ns feed "$NS" $LIMIT "$PY" "$SRC/tests/gateway/mold_feed.py" --group "$FEED_GROUP" --requests "$REQUESTS" --session FEED01 \
    --count "$N" --rate "$RATE" --seed 11 --reorder-percent 2 --duplicate-percent 2 --heartbeat-ms 200 \
    --timeout $((LIMIT - 10)) --json "$TMP/feed.json" --ready "$TMP/feed.ready"
wait_until 20 "the feed started" test -f "$TMP/feed.ready" || die "the feed did not start"

# The ingress joins late (a tenth into the feed): sequence numbers 1.. come from the request server.
sleep "$(awk "BEGIN { print $N * 0.1 / $RATE }")"
INGRESS=(mold-ingress --feed "$FEED_GROUP" --request-server "$REQUESTS" --session FEED01 --sequencer "$CONTROL"
    --journal "$TMP/ingress.journal" --gap-deadline-ms 30000)
start_ns ingress1 "$NS" $LIMIT "$SEQCAST" "${INGRESS[@]}" --json "$TMP/ingress1.json"
sleep "$(awk "BEGIN { print $N * 0.3 / $RATE }")"
P=$(seqcast_pid ingress1) || die "ingress1 is not running"
kill -KILL "$P"
wait_exit ingress1 10 || die "ingress1 did not die"
test -f "$TMP/ingress.journal.mold" || die "ingress1 kept no feed position beside its journal"
log "ingress1 SIGKILLed; starting ingress2 on the same journal in 1 s"
sleep 1
start_ns ingress2 "$NS" $LIMIT "$SEQCAST" "${INGRESS[@]}" --json "$TMP/ingress2.json"

# The feed ends; the ingress exits at end of session once all is confirmed.
wait_exit ingress2 $((N / RATE + 120)) || die "ingress2 did not finish"
check "ingress2 exit status" "${RC[ingress2]}" eq 0
stop feed TERM 20 || true
check "feed exit status" "${RC[feed]}" eq 0
FEED=$TMP/feed.json
I2=$TMP/ingress2.json
check "feed sent" "$(json "$FEED" sent)" eq "$N"
check "ingress2 finished at end of session" "$(json "$I2" finished)" == true
check "ingress2 resumed (not a fresh start)" "$(json "$I2" resumed_at)" gt 1
check "ingress2 next sequence number" "$(json "$I2" next_sequence)" eq $((N + 1))
check "ingress2: nothing left unconfirmed" "$(json "$I2" unconfirmed)" eq 0
check "ingress2 re-requested" "$(json "$I2" requests)" gt 0
check "ingress2 recovered messages from answers" "$(json "$I2" recovered)" gt 0
check "ingress2: no malformed packets" "$(json "$I2" malformed)" eq 0
check "the feed answered requests" "$(json "$FEED" answered)" gt 0
check "nftables dropped datagrams" "$(nft_dropped)" gt 0

# The stream: exactly the feed's messages, once each, in feed order.
read -r REF_N REF_D EXTRA < <(SEQCAST_LIBRARY=$LIB PYTHONPATH=$SRC/python in_ns "$PY" - "$ARCHIVER" "$N" <<'PYEOF'
import hashlib, struct, sys
import seqcast
archiver, n = sys.argv[1], int(sys.argv[2])
msgs = seqcast.replay(archiver, 0, n)
assert not msgs.losses, msgs.losses
h = hashlib.sha256()
for m in msgs:
    h.update(struct.pack(">H", len(m.payload)) + bytes(m.payload))
# Nothing at offset n or after: a replay waiting for data there gets none in 3 s (the archiver has
# recorded everything the ingress had confirmed: offset n - 1 was read above).
import time
r = seqcast.Replay(archiver=archiver, **{"from": n, "to": n + 1000}, wait_for_data=True)
extra, end = 0, time.monotonic() + 3
while time.monotonic() < end and not r.failure:
    r.poll()
    extra += len(r.pending())
    time.sleep(0.001)
if r.failure:
    raise RuntimeError(r.failure)
r.close()
print(len(msgs), h.hexdigest(), extra)
PYEOF
) 2>"$TMP/reference.log"
[[ -s $TMP/reference.log ]] && log "reference: $(cat "$TMP/reference.log")"
stop archiver TERM 20 || true
stop seq TERM 20 || true
check "the archive holds the feed's messages" "${REF_N:-}" eq "$N"
check "the archive's digest = the feed's" "${REF_D:-none}" == "$(json "$FEED" digest)"
check "nothing after the feed's last message" "${EXTRA:-x}" eq 0
log "feed: $(cat "$FEED")"
log "ingress2: $(cat "$I2")"
log "nftables dropped $(nft_dropped) datagrams"
finish
