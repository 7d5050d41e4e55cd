#!/usr/bin/env bash
# MoldUDP64 egress end to end, inside a network namespace of its own where nftables drops 2 % of
# the UDP datagrams reaching the MoldUDP64 port (multicast packets and the request server's unicast
# answers alike): sequencer -> archiver, and -> `seqcast mold-egress` (with its request server)
# -> two MoldUDP64 consumers written from the spec in Python (mold_consumer.py, no shared code):
#   A  from sequence number 1, started before the stream;
#   B  joins mid-stream asking for a chosen sequence number (K, far behind the head);
# and in the middle of the stream the egress is SIGKILLed and started again (--from latest): the
# numbers sent while it was down come back through the new instance's request server, so the
# numbering must be the same across the restart. The publisher sends ITCH 5.0 messages.
# Checks: both consumers get every message once, in order (their digests equal a digest of the
# archive's copy made through the Python binding), with requests answered; nftables dropped
# datagrams; the egress refuses malformed, wrong-session, zero-count and beyond-head requests
# (counted), drops a flood of 3000 requests from one requester (10 000/s) past its rate (counted), and keeps
# serving; end of session reaches the consumers when the stream ends; tshark's
# own moldudp64 and nasdaq_itch dissectors find nothing malformed in the captured traffic.
#
# usage: mold_egress.sh /path/to/seqcast /path/to/libseqcast.so SOURCE_ROOT
. "$(dirname "$0")/../integration/archiver_lib.sh" "$1"
. "$(dirname "$0")/gateway_lib.sh"
LIB=$(readlink -f "$2")
SRC=$(readlink -f "$3")
PY=/usr/bin/python3
N=${SEQCAST_IT_MESSAGES:-30000}
RATE=${SEQCAST_IT_RATE:-3000}
K=${SEQCAST_IT_JOIN_AT:-5000}
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
MOLD_PORT=$(((ONE_PORT + 7) % 40000 + 20000))
REQ_PORT=$((MOLD_PORT + 1))
MOLD_GROUP=239.$((RANDOM % 254 + 1)).$((RANDOM % 256)).$((RANDOM % 254 + 1)):$MOLD_PORT
REQUESTS=127.0.0.1:$REQ_PORT
lossy_netns scmold "udp dport $MOLD_PORT"


TSHARK=0
if command -v tshark >/dev/null && command -v dumpcap >/dev/null; then
    start_ns cap "$NS" $LIMIT dumpcap -q -i lo -f "udp port $MOLD_PORT or udp port $REQ_PORT" -w "$TMP/mold.pcapng"
    TSHARK=1
fi

log "namespace $NS: $N ITCH messages at $RATE msg/s -> $CONTROL -> $GROUP -> mold-egress -> $MOLD_GROUP (requests $REQUESTS); nftables drops 2% to port $MOLD_PORT"
start_ns seq "$NS" $LIMIT "$SEQCAST" sequencer --control "$CONTROL" --group "$GROUP" --state "$TMP/seq.state"
start_ns archiver "$NS" $LIMIT "$SEQCAST" archiver --group "$GROUP" --control "$ARCHIVER" --log "$TMP/archive.seqlog" --size 64M --segment 4M
wait_until 20 "the archiver serves replays" archiver_ready archiver || die "the archiver did not start"
EGRESS=(mold-egress --session SCTEST01 --downstream "$MOLD_GROUP" --requests "$REQUESTS" --group "$GROUP" --archiver "$ARCHIVER"
    --heartbeat-ms 200 --end-of-session-ms 3000)
start_ns egress1 "$NS" $LIMIT "$SEQCAST" "${EGRESS[@]}" --json "$TMP/egress1.json"
start_ns consA "$NS" $LIMIT "$PY" "$SRC/tests/gateway/mold_consumer.py" --group "$MOLD_GROUP" --requests "$REQUESTS" \
    --session SCTEST01 --first 1 --count "$N" --wait-eos --timeout $((LIMIT - 20)) --json "$TMP/consA.json" --ready "$TMP/consA.ready"
wait_until 20 "consumer A joined" test -f "$TMP/consA.ready" || die "consumer A did not start"
sleep 0.5
start_ns pub "$NS" $LIMIT "$SEQCAST" pub --sequencer "$CONTROL" --rate "$RATE" --count "$N" --itch --seed 7 --json "$TMP/pub.json" --linger 30

# Mid-stream: consumer B asks for sequence numbers from K on; the egress dies and comes back.
sleep $((N * 2 / 5 / RATE))
start_ns consB "$NS" $LIMIT "$PY" "$SRC/tests/gateway/mold_consumer.py" --group "$MOLD_GROUP" --requests "$REQUESTS" \
    --session SCTEST01 --first "$K" --count $((N - K + 1)) --timeout $((LIMIT - 20)) --json "$TMP/consB.json"
P=$(seqcast_pid egress1) || die "egress1 is not running"
kill -KILL "$P"
wait_exit egress1 10 || die "egress1 did not die"
log "egress1 SIGKILLed; starting egress2 in 1 s"
sleep 1
start_ns egress2 "$NS" $LIMIT "$SEQCAST" "${EGRESS[@]}" --json "$TMP/egress2.json"

# Bad requests at the live server: each refused and counted, the stream unaffected.
sleep 1
in_ns "$PY" - "$REQ_PORT" <<'EOF'
import socket, struct, sys
port = int(sys.argv[1])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
srv = ("127.0.0.1", port)
s.sendto(b"short", srv)                                        # malformed: not 20 bytes
s.sendto(b"SCTEST01  " + struct.pack(">QH", 1, 5) + b"x", srv) # malformed: 21 bytes
s.sendto(b"OTHERSESS " + struct.pack(">QH", 1, 5), srv)        # another session
s.sendto(b"SCTEST01  " + struct.pack(">QH", 1, 0), srv)        # zero count
s.sendto(b"SCTEST01  " + struct.pack(">QH", 1 << 62, 5), srv)  # beyond the head
import time
for i in range(3000):  # a flood from one requester, 10 000/s (paced so the socket buffer takes it)
    s.sendto(b"SCTEST01  " + struct.pack(">QH", 1, 1), srv)
    if i % 50 == 49:
        time.sleep(0.005)
EOF

# The refusals in `seqcast stat` (and so in its Prometheus exporter), role mold-egress.
sleep 0.5
P2=$(seqcast_pid egress2) || die "egress2 is not running"
check "stat: egress2's refused re-requests" "$(stat_counter mold-egress "$P2" gateway_requests_refused)" ge 1000
check "stat: egress2's messages out" "$(stat_counter mold-egress "$P2" messages_out)" gt 0
wait_exit pub $((N / RATE + 90)) || die "the publisher did not finish"
check "pub exit status" "${RC[pub]}" eq 0
check "pub confirmed" "$(json "$TMP/pub.json" confirmed)" eq "$N"
FIRST_OFFSET=$(json "$TMP/pub.json" first_offset)
check "the stream starts at offset 0 (sequence number 1)" "$FIRST_OFFSET" eq 0
wait_exit consB 120 || die "consumer B did not finish"
# The stream ends: the egress sends end of session for 3 s, then exits; A waits for it.
stop seq TERM 30 || true
wait_exit consA 60 || die "consumer A did not finish"
wait_exit egress2 60 || die "egress2 did not exit after the end of the stream"
check "egress2 exit status" "${RC[egress2]}" eq 0

# The reference: the archive's copy of the same sequence numbers, through the Python binding.
ref_digest() {
    SEQCAST_LIBRARY=$LIB PYTHONPATH=$SRC/python in_ns "$PY" - "$ARCHIVER" "$1" "$2" <<'EOF'
import hashlib, struct, sys
import seqcast
archiver, first, end = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
msgs = seqcast.replay(archiver, first, end)
assert not msgs.losses, msgs.losses
h = hashlib.sha256()
for m in msgs:
    h.update(struct.pack(">H", len(m.payload)) + bytes(m.payload))
print(len(msgs), h.hexdigest())
EOF
}
read -r REF_N REF_A < <(ref_digest 0 "$N")
read -r REF_NB REF_B < <(ref_digest $((K - 1)) "$N")
stop archiver TERM 20 || true
check "reference A messages" "${REF_N:-}" eq "$N"
check "reference B messages" "${REF_NB:-}" eq $((N - K + 1))

for c in consA consB; do
    check "$c exit status" "${RC[$c]}" eq 0
    check "$c complete" "$(json "$TMP/$c.json" complete)" == true
    check "$c malformed packets" "$(json "$TMP/$c.json" malformed)" eq 0
    check "$c sent requests" "$(json "$TMP/$c.json" requests)" gt 0
    check "$c got unicast answers" "$(json "$TMP/$c.json" unicast_packets)" gt 0
done
check "consumer A delivered" "$(json "$TMP/consA.json" delivered)" eq "$N"
check "consumer A digest = the archive's" "$(json "$TMP/consA.json" digest)" == "${REF_A:-none}"
check "consumer A saw end of session" "$(json "$TMP/consA.json" end_of_session)" gt 0
check "consumer B delivered" "$(json "$TMP/consB.json" delivered)" eq $((N - K + 1))
check "consumer B digest = the archive's" "$(json "$TMP/consB.json" digest)" == "${REF_B:-none}"
check "nftables dropped datagrams" "$(nft_dropped)" gt 0
E2=$TMP/egress2.json
check "egress2 answered requests" "$(json "$E2" responses)" gt 0
check "egress2 refused malformed requests" "$(json "$E2" refused_malformed)" ge 2
check "egress2 refused another session" "$(json "$E2" refused_session)" ge 1
check "egress2 refused a zero count" "$(json "$E2" refused_zero_count)" ge 1
check "egress2 refused beyond the head" "$(json "$E2" refused_beyond_head)" ge 1
check "egress2 rate-limited the flood" "$(json "$E2" refused_rate_limited)" ge 1000
check "egress2 lost nothing" "$(json "$E2" lost)" eq 0
check "egress2 sent end of session" "$(json "$E2" end_of_session_packets)" gt 0
check "egress2 ends at the stream's head" "$(json "$E2" next_sequence)" eq $((N + 1))
log "A: $(cat "$TMP/consA.json")"
log "B: $(cat "$TMP/consB.json")"
log "nftables dropped $(nft_dropped) datagrams; egress2: $(cat "$E2")"

if ((TSHARK)); then
    stop cap TERM 10 || true
    # Downstream packets: multicast and the request server's answers, both to the MoldUDP64 port.
    D=(-d "udp.port==$MOLD_PORT,moldudp64" -d "moldudp64.payload,nasdaq_itch")
    PKTS=$(tshark -r "$TMP/mold.pcapng" "${D[@]}" -Y "moldudp64 && udp.dstport==$MOLD_PORT" 2>/dev/null | wc -l)
    BAD=$(tshark -r "$TMP/mold.pcapng" "${D[@]}" -Y "udp.dstport==$MOLD_PORT && _ws.malformed" 2>/dev/null | wc -l)
    ITCH=$(tshark -r "$TMP/mold.pcapng" "${D[@]}" -Y nasdaq_itch 2>/dev/null | wc -l)
    check "tshark decoded MoldUDP64 packets" "$PKTS" gt 1000
    check "tshark: malformed downstream packets" "$BAD" eq 0
    check "tshark decoded ITCH inside" "$ITCH" gt 1000
    log "tshark: $PKTS MoldUDP64 packets, $ITCH with ITCH, $BAD malformed"
else
    log "tshark/dumpcap not installed: the capture check did not run"
fi
finish
