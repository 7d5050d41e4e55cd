#!/usr/bin/env bash
# MoldUDP64 downstream packets carrying ITCH 5.0 messages, as gateway/moldudp64 and gateway/itch
# make them (written to a pcap by mold_pcap), decoded by tshark's own moldudp64 and nasdaq_itch
# dissectors, which nobody here wrote: no malformed packet and no error, every packet's sequence
# number and message count as sent (heartbeat and end of session included), and every message
# decoded as the ITCH type it was sent as.
#
# usage: mold_tshark.sh /path/to/mold_pcap
set -u
GEN=$(readlink -f "${1:?usage: mold_tshark.sh /path/to/mold_pcap}")
command -v tshark >/dev/null || { echo "SKIP: tshark is not installed (Debian: tshark; ./run installs it)"; exit 77; }
TMP=$(mktemp -d /tmp/seqcast-mold-tshark-XXXXXX)
trap 'rm -rf "$TMP"' EXIT
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
PORT=30001
SEED=$(((RANDOM << 15) | RANDOM))
"$GEN" "$TMP/mold.pcap" "$PORT" 200 "$SEED" >"$TMP/sent.txt" || { echo "FAIL: mold_pcap failed"; exit 1; }
DECODE=(-r "$TMP/mold.pcap" -d "udp.port==$PORT,moldudp64" -d "moldudp64.payload,nasdaq_itch")
echo "200 packets, a heartbeat and an end of session (ITCH seed $SEED); $(awk '$2 != 0 && $2 != 65535 {n += $2} END {print n}' "$TMP/sent.txt") messages"

# Sequence number and count of every packet, as tshark reads them.
tshark "${DECODE[@]}" -T fields -E occurrence=f -e moldudp64.sequence -e moldudp64.count >"$TMP/got.txt" 2>"$TMP/tshark.err" ||
    fail "tshark could not read the capture: $(head -3 "$TMP/tshark.err")"
if ! diff <(awk '{print $1, $2}' "$TMP/sent.txt") <(tr '\t' ' ' <"$TMP/got.txt") >"$TMP/diff.txt"; then
    fail "sequence numbers or counts differ (sent < > decoded): $(head -6 "$TMP/diff.txt" | tr '\n' ' ')"
fi
# Nothing malformed, no error from any dissector.
tshark "${DECODE[@]}" -V >"$TMP/verbose.txt" 2>&1
bad=$(grep -c -i -E "malformed|Expert Info \(Error" "$TMP/verbose.txt")
[ "$bad" -eq 0 ] || fail "$bad malformed or error lines, first: $(grep -m 2 -i -E "malformed|Expert Info \(Error" "$TMP/verbose.txt" | tr '\n' ' ')"
# Every message decoded as ITCH, with the type it was sent as, in order.
tshark "${DECODE[@]}" -T fields -E occurrence=a -E aggregator=' ' -e nasdaq-itch.message_type >"$TMP/types.txt" 2>>"$TMP/tshark.err"
sent_types=$(awk '$2 != 0 && $2 != 65535 {print $3}' "$TMP/sent.txt" | fold -w1 | tr -d '\n')
got_types=$(tr -d " \n\t'," <"$TMP/types.txt")  # tshark shows each type as 'A'
[ ${#sent_types} -gt 0 ] || fail "mold_pcap sent no messages"
[ "$got_types" = "$sent_types" ] ||
    fail "ITCH types differ: sent ${#sent_types} (${sent_types:0:20}...), decoded ${#got_types} (${got_types:0:20}...)"
for t in A E X P; do
    n=$(tr -cd "$t" <<<"$got_types" | wc -c)
    [ "$n" -gt 0 ] || fail "no ITCH '$t' message decoded"
done
if [ "$fails" -gt 0 ]; then
    echo "FAIL: mold_tshark: $fails check(s) failed"
    exit 1
fi
echo "PASS: tshark decodes every packet and message as sent (${#got_types} ITCH messages)"
