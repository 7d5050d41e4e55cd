#!/usr/bin/env bash
# SoupBinTCP server end to end, inside a network namespace of its own where nftables drops 2 % of
# the seqcast stream's multicast datagrams (the server's subscriber repairs them): sequencer ->
# archiver, and -> `seqcast soup-server` -> SoupBinTCP clients written from the spec in Python
# (soup_client.py, no shared code). The publisher sends ITCH 5.0 messages.
#   A  logs in at sequence number 1 before the stream starts, follows it to End of Session;
#   B  logs in mid-stream at K, takes M messages, logs out, and logs in again at K + M;
#   and mid-stream the server is SIGKILLed and started again: every client reconnects at the
#   sequence number it stopped at (the new server replays from the archive, then goes live).
# Every piece a client received (login .. disconnect) must equal the archive's copy of the same
# sequence numbers (digests through the Python binding), and together they cover 1..N (A) and
# K..N (B) with no hole. Bad input at the live server: wrong password ('J' 'A'), another session
# ('J' 'S'), a sequence number past 2^64 and a short login (dropped as malformed), one past the
# head (accepted at the next one), a client that never reads (disconnected past --client-buffer),
# a client that never sends a heartbeat (disconnected after --client-timeout-ms): each counted,
# while A and B lose nothing. A users file readable by others is refused at start. tshark's own
# soupbintcp and nasdaq_itch dissectors find nothing malformed in the captured TCP traffic.
#
# usage: soup_server.sh /path/to/seqcast /path/to/libseqcast.so SOURCE_ROOT
. "$(dirname "$0")/../integration/archiver_lib.sh" "$1"
. "$(dirname "$0")/gateway_lib.sh"
LIB=$(readlink -f "$2")
SRC=$(readlink -f "$3")
PY=/usr/bin/python3
N=${SEQCAST_IT_MESSAGES:-30000}
RATE=${SEQCAST_IT_RATE:-2000}
K=${SEQCAST_IT_JOIN_AT:-5000}
M=2000
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
SOUP_PORT=$(((ONE_PORT + 11) % 40000 + 20000))
SOUP=127.0.0.1:$SOUP_PORT
lossy_netns scsoup "ip daddr $GROUP_ADDR udp dport $((PORT + 1))"


printf '# SoupBinTCP users\nalice secret1\nbob pw2\n' >"$TMP/users"
chmod 644 "$TMP/users"
SERVER=(soup-server --listen "$SOUP" --users "$TMP/users" --session SESS01 --group "$GROUP" --archiver "$ARCHIVER"
    --heartbeat-ms 200 --client-timeout-ms 3000 --client-buffer 64K --socket-send-buffer 16K --end-of-session-ms 4000)
# A password file others can read: refused, naming its mode.
in_ns "$SEQCAST" "${SERVER[@]}" >"$TMP/refused.out" 2>"$TMP/refused.log"
check "a users file of mode 644 is refused (exit status)" "$?" eq 2
check "the refusal names the mode" "$(grep -c 'mode 644' "$TMP/refused.log")" ge 1
chmod 600 "$TMP/users"

TSHARK=0
if command -v tshark >/dev/null && command -v dumpcap >/dev/null; then
    start_ns cap "$NS" $LIMIT dumpcap -q -i lo -f "tcp port $SOUP_PORT" -w "$TMP/soup.pcapng"
    TSHARK=1
fi

log "namespace $NS: $N ITCH messages at $RATE msg/s -> $CONTROL -> $GROUP (2% dropped by nftables) -> soup-server at $SOUP"
start_ns seq "$NS" $LIMIT "$SEQCAST" sequencer --control "$CONTROL" --group "$GROUP" --state "$TMP/seq.state"
start_ns archiver "$NS" $LIMIT "$SEQCAST" archiver --group "$GROUP" --control "$ARCHIVER" --log "$TMP/archive.seqlog" --size 64M --segment 4M
wait_until 20 "the archiver serves replays" archiver_ready archiver || die "the archiver did not start"
start_ns server1 "$NS" $LIMIT "$SEQCAST" "${SERVER[@]}" --json "$TMP/server1.json"
wait_until 20 "the server listens" grep -q "SoupBinTCP at" "$TMP/server1.log" || die "the server did not start"
sleep 1  # the server hears the stream's heartbeats: logins are accepted from then on

# follow NAME USER PASSWORD FIRST [COUNT]: a client that logs in at FIRST and, whenever the
# connection ends before End of Session, logs in again at the next sequence number it did not
# get. Each piece (first next digest) goes to $TMP/NAME.pieces. With COUNT the first piece logs out
# after COUNT messages (the client's own choice), and the next login asks for where it stopped.
follow() {
    local name=$1 user=$2 pw=$3 next=$4 count=${5:-0} i rc
    : >"$TMP/$name.pieces"
    for ((i = 0; i < 20; i++)); do
        rc=0
        timeout -k 5 $((LIMIT - 20)) "$PY" "$SRC/tests/gateway/soup_client.py" --connect "$SOUP" --username "$user" --password "$pw" \
            --sequence "$next" --count "$count" --timeout $((LIMIT - 30)) --json "$TMP/$name.$i.json" >/dev/null 2>>"$TMP/$name.log" || rc=$?
        count=0
        if [[ $(json "$TMP/$name.$i.json" accepted) == true ]]; then
            echo "$(json "$TMP/$name.$i.json" first_sequence) $(json "$TMP/$name.$i.json" next_sequence) $(json "$TMP/$name.$i.json" digest) $(json "$TMP/$name.$i.json" malformed)" >>"$TMP/$name.pieces"
            next=$(json "$TMP/$name.$i.json" next_sequence)
        fi
        [[ $(json "$TMP/$name.$i.json" end_of_session) == true ]] && { echo done >>"$TMP/$name.pieces"; return 0; }
        sleep 0.5
    done
    return 1
}
export -f follow json
export TMP SOUP PY SRC LIMIT
start_ns A "$NS" $LIMIT bash -c "follow A alice secret1 1"
sleep 0.5
start_ns pub "$NS" $LIMIT "$SEQCAST" pub --sequencer "$CONTROL" --rate "$RATE" --count "$N" --itch --seed 5 --json "$TMP/pub.json" --linger 30
sleep "$(awk "BEGIN { print $N * 0.2 / $RATE }")"
start_ns B "$NS" $LIMIT bash -c "follow B bob pw2 $K $M"

# Mid-stream the server dies (once B has logged out at K + M); a new one takes its place and the
# clients come back to it.
wait_until $((LIMIT / 4)) "B logged out at K + M" test -s "$TMP/B.pieces" || die "B did not log out at K + M"
P=$(seqcast_pid server1) || die "server1 is not running"
kill -KILL "$P"
wait_exit server1 10 || die "server1 did not die"
log "server1 SIGKILLed; starting server2 in 1 s"
sleep 1
start_ns server2 "$NS" $LIMIT "$SEQCAST" "${SERVER[@]}" --json "$TMP/server2.json"
wait_until 20 "server2 listens" grep -q "SoupBinTCP at" "$TMP/server2.log" || die "server2 did not start"

# Bad input at the live server.
CLIENT=("$PY" "$SRC/tests/gateway/soup_client.py" --connect "$SOUP" --timeout 20)
start_ns lazy "$NS" $LIMIT "${CLIENT[@]}" --username bob --password pw2 --sequence 0 --never-read --hold 15 --json "$TMP/lazy.json"
start_ns mute "$NS" $LIMIT "${CLIENT[@]}" --username bob --password pw2 --sequence 0 --no-heartbeat --json "$TMP/mute.json"
in_ns "${CLIENT[@]}" --username alice --password wrong --expect-reject --json "$TMP/bad_pw.json" >/dev/null 2>&1
check "wrong password: rejected 'A'" "$(json "$TMP/bad_pw.json" rejected)" == A
in_ns "${CLIENT[@]}" --username bob --password pw2 --session OTHER --expect-reject --json "$TMP/bad_sess.json" >/dev/null 2>&1
check "another session: rejected 'S'" "$(json "$TMP/bad_sess.json" rejected)" == S
in_ns "${CLIENT[@]}" --username bob --password pw2 --sequence 99999999999999999999 --count 1 --json "$TMP/bad_seq.json" >/dev/null 2>&1
check "a sequence number past 2^64: not accepted" "$(json "$TMP/bad_seq.json" accepted)" == false
check "... and the connection closed" "$(json "$TMP/bad_seq.json" closed_by_server)" == true
in_ns "${CLIENT[@]}" --username bob --password pw2 --raw-login 00054c626f6221 --json "$TMP/bad_raw.json" >/dev/null 2>&1
check "a short login: not accepted" "$(json "$TMP/bad_raw.json" accepted)" == false
check "... and the connection closed" "$(json "$TMP/bad_raw.json" closed_by_server)" == true
in_ns "${CLIENT[@]}" --username bob --password pw2 --sequence 18446744073709551615 --count 5 --json "$TMP/past_head.json" >/dev/null 2>&1
check "a login past the head: accepted" "$(json "$TMP/past_head.json" accepted)" == true
check "... at the next sequence number, at most N + 1" "$(json "$TMP/past_head.json" first_sequence)" le $((N + 1))
check "... and it gets the next messages" "$(json "$TMP/past_head.json" received)" eq 5
# The same refusals in `seqcast stat` (and so in its Prometheus exporter), role soup-server.
P2=$(seqcast_pid server2) || die "server2 is not running"
check "stat: server2's rejected logins (wrong password, other session, 2 malformed)" "$(stat_counter soup-server "$P2" gateway_logins_rejected)" ge 4
check "stat: server2's accepted logins" "$(stat_counter soup-server "$P2" gateway_logins)" ge 1
wait_exit lazy 60 || die "the never-reading client did not finish"
check "the never-reading client was disconnected" "$(json "$TMP/lazy.json" closed_by_server)" == true
wait_exit mute 60 || die "the silent client did not finish"
check "a client that never sends a heartbeat is disconnected" "$(json "$TMP/mute.json" closed_by_server)" == true

wait_exit pub $((N / RATE + 90)) || die "the publisher did not finish"
check "pub exit status" "${RC[pub]}" eq 0
check "pub confirmed" "$(json "$TMP/pub.json" confirmed)" eq "$N"
check "the stream starts at offset 0 (sequence number 1)" "$(json "$TMP/pub.json" first_offset)" eq 0
sleep 2
stop seq TERM 30 || true  # the stream ends: End of Session to every client
wait_exit A 120 || die "client A did not finish"
wait_exit B 120 || die "client B did not finish"
wait_exit server2 60 || die "server2 did not exit after the end of the stream"
check "server2 exit status" "${RC[server2]}" eq 0
check "client A reached End of Session" "${RC[A]}" eq 0
check "client B reached End of Session" "${RC[B]}" eq 0

# Each piece against the archive's copy of the same sequence numbers.
pieces_check() {
    local name=$1 from=$2 first next digest bad expect=$2 n=0
    while read -r first next digest bad; do
        [[ $first == done ]] && continue
        n=$((n + 1))
        check "$name piece $n starts where the last ended" "$first" eq "$expect"
        check "$name piece $n: no malformed packets" "$bad" eq 0
        if ((next > first)); then
            check "$name piece $n ($first..$((next - 1))) = the archive's" "$digest" == "$(ref_digest $((first - 1)) $((next - 1)))"
        fi
        expect=$next
    done <"$TMP/$name.pieces"
    check "$name ends after the last message" "$expect" eq $((N + 1))
    check "$name saw End of Session" "$(grep -c '^done' "$TMP/$name.pieces")" eq 1
    log "$name pieces: $(tr '\n' ';' <"$TMP/$name.pieces")"
}
ref_digest() {
    SEQCAST_LIBRARY=$LIB PYTHONPATH=$SRC/python in_ns "$PY" - "$ARCHIVER" "$1" "$2" <<'PYEOF'
import hashlib, struct, sys
import seqcast
archiver, first, end = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
msgs = seqcast.replay(archiver, first, end)
assert not msgs.losses and len(msgs) == end - first, (len(msgs), msgs.losses)
h = hashlib.sha256()
for m in msgs:
    h.update(struct.pack(">H", len(m.payload)) + bytes(m.payload))
print(h.hexdigest())
PYEOF
}
pieces_check A 1
pieces_check B "$K"
# A: cut by the server's death only; B: its logout, then the server's death. Any other cut (a client
# dropped by the server on its own) shows as a further piece.
check "A's pieces: before and after the server's death" "$(grep -vc '^done' "$TMP/A.pieces")" eq 2
# (B logs in again 0.5 s after its logout: at the server that died, or already at the new one.)
check "B's pieces: to its logout, to the server's death if it was back by then, to the end" "$(grep -vc '^done' "$TMP/B.pieces")" le 3
check "B logged out at K + M and in again there" "$(sed -n 2p "$TMP/B.pieces" | cut -d' ' -f1)" eq $((K + M))
stop archiver TERM 20 || true

S1=$TMP/server1.json S2=$TMP/server2.json
[[ -s $S1 ]] && die "server1 was SIGKILLed but wrote a summary"
check "server2 replayed to reconnecting clients" "$(json "$S2" replays)" ge 2
check "server2: every replay reached the live stream" "$(json "$S2" replay_failures)" eq 0
check "server2 sent End of Session" "$(json "$S2" end_of_session_sent)" ge 2
check "server2 rejected a wrong password" "$(json "$S2" rejected_auth)" eq 1
check "server2 rejected another session" "$(json "$S2" rejected_session)" eq 1
check "server2 dropped malformed logins" "$(json "$S2" login_malformed)" eq 2
check "server2 accepted a login past the head at the next number" "$(json "$S2" sequence_clamped)" eq 1
check "server2 disconnected the slow client" "$(json "$S2" slow_disconnects)" eq 1
check "server2 timed out the silent client" "$(json "$S2" client_timeouts)" eq 1
check "server2 lost nothing of the stream" "$(json "$S2" stream_lost)" eq 0
check "server2: no protocol errors" "$(json "$S2" protocol_errors)" eq 0
check "nftables dropped datagrams" "$(nft_dropped)" gt 0
log "server2: $(cat "$S2")"
log "nftables dropped $(nft_dropped) datagrams"

if ((TSHARK)); then
    stop cap TERM 10 || true
    # Wireshark's soupbintcp dissector hands Sequenced Data to its heuristic list (OUCH only), not
    # to nasdaq_itch: the ITCH check reads the message type byte of each message it extracted.
    D=(-o tcp.desegment_tcp_streams:TRUE -d "tcp.port==$SOUP_PORT,soupbintcp")
    PKTS=$(tshark -r "$TMP/soup.pcapng" "${D[@]}" -Y "soupbintcp.packet_type == 83" -T fields -e soupbintcp.message 2>/dev/null |
        tr ',' '\n' | grep -c .)
    BADF="(_ws.malformed || _ws.expert.severity >= 8388608) && tcp.srcport == $SOUP_PORT"
    BAD=$(tshark -r "$TMP/soup.pcapng" "${D[@]}" -Y "$BADF" 2>/dev/null | wc -l)
    ((BAD == 0)) || log "malformed: $(tshark -r "$TMP/soup.pcapng" "${D[@]}" -Y "$BADF" -V 2>/dev/null | grep -i -B2 -A2 'malformed\|expert' | head -40)"
    CBAD=$(tshark -r "$TMP/soup.pcapng" "${D[@]}" -Y "(_ws.malformed || _ws.expert.severity >= 8388608) && tcp.dstport == $SOUP_PORT" 2>/dev/null | wc -l)
    ITCH=$(tshark -r "$TMP/soup.pcapng" "${D[@]}" -Y "soupbintcp.packet_type == 83" -T fields -e soupbintcp.message 2>/dev/null |
        tr ',' '\n' | grep -c '^\(41\|45\|58\|50\)')
    LOGINS=$(tshark -r "$TMP/soup.pcapng" "${D[@]}" -Y "soupbintcp.packet_type == 65" 2>/dev/null | wc -l)
    check "tshark decoded SoupBinTCP sequenced data" "$PKTS" gt 20000
    check "tshark: malformed server packets or errors" "$BAD" eq 0
    check "tshark: the bad logins the test sent are malformed (at least the short one)" "$CBAD" ge 1
    check "tshark: every message is an ITCH add, executed, cancel or trade" "$ITCH" eq "$PKTS"
    check "tshark decoded login accepted packets" "$LOGINS" ge 5
    log "tshark: $PKTS Sequenced Data messages ($ITCH of ITCH types), $LOGINS logins accepted, $BAD malformed"
else
    log "tshark/dumpcap not installed: the capture check did not run"
fi
finish
