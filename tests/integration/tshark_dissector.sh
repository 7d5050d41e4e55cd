#!/usr/bin/env bash
# The Wireshark dissector (tools/wireshark/seqcast.lua) against real traffic and hand-made frames.
#
#   tshark_dissector.sh /path/to/seqcast [/path/to/seqcast.lua]
#
# 1. Captures a short stream on loopback with dumpcap (a sequencer, a subscriber, a publisher of
#    stdin lines 'a' 'bb' 'ccc', then one of 50 synthetic messages of 8..3000 bytes, so some are
#    fragmented), then decodes the capture with tshark and the dissector and checks that every
#    datagram is recognised by the heuristic with a good CRC, that PUB, DATA, PUB_ACK, HEARTBEAT and
#    END_OF_STREAM appear, that DATA is stream 1 epoch 1 with contiguous offsets from 0 up to
#    END_OF_STREAM's next offset, that the messages in DATA are exactly those published (lengths
#    1, 2, 3, then 50 messages whose fragments tile them), that PUB entries reach DATA unchanged and
#    that PUB_ACK confirms every message at the offset of its LAST fragment. Decode As
#    (`-d udp.port==P,seqcast`) and the port preference (`-o seqcast.port:P`) are checked with the
#    heuristic disabled.
# 2. Decodes hand-made frames of the types the stream does not produce (NAK, PUB_NAK,
#    REPLAY_REQUEST, REPLAY_END), the example datagram of docs/PROTOCOL.md, a header extension, a bad
#    CRC and a truncated body.
#
# Exit 77 (skip) when tshark, dumpcap or python3 is missing, tshark has no Lua, or capturing on lo
# is not permitted. Needs (Debian): tshark (pulls in wireshark-common, which has dumpcap).

set -u
set -o pipefail

if [[ $# -lt 1 || -z ${1:-} ]]; then
    echo "usage: $0 /path/to/seqcast [/path/to/seqcast.lua]" >&2
    exit 2
fi
SEQCAST=$(readlink -f "$1")
[[ -x $SEQCAST ]] || { echo "FAIL: seqcast binary '$1' is not executable" >&2; exit 1; }
LUA=${2:-$(dirname "$(readlink -f "$0")")/../../tools/wireshark/seqcast.lua}
LUA=$(readlink -f "$LUA")
[[ -r $LUA ]] || { echo "FAIL: dissector '$LUA' not found" >&2; exit 1; }

skip() { echo "SKIP: $*"; exit 77; }
die() { echo "FAIL: $*" >&2; exit 1; }
log() { echo "[tshark_dissector] $*"; }

command -v tshark >/dev/null 2>&1 || skip "tshark is not installed (Debian: apt-get install tshark)"
command -v dumpcap >/dev/null 2>&1 || skip "dumpcap is not installed (Debian: apt-get install wireshark-common)"
command -v python3 >/dev/null 2>&1 || skip "python3 is not installed"

TMP=$(mktemp -d /tmp/seqcast-it-tshark-XXXXXX)
STARTED=()
cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    local p
    for p in "${STARTED[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
    for p in "${STARTED[@]}"; do wait "$p" 2>/dev/null || true; done
    if [[ $rc -ne 0 && $rc -ne 77 ]]; then
        echo "---- tshark_dissector failed (exit $rc); last lines of each log ----" >&2
        local f
        for f in "$TMP"/*.log; do
            [[ -f $f ]] || continue
            echo "== $(basename "$f")" >&2
            tail -n 20 "$f" | cut -c1-300 >&2
        done
    fi
    rm -rf "$TMP"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Quiet tshark's "running as root" banner and keep it off the user's profile.
export WIRESHARK_CONFIG_DIR=$TMP/wsconfig
mkdir -p "$WIRESHARK_CONFIG_DIR"
TSHARK=(timeout 60 tshark -n -X "lua_script:$LUA")

# tshark must have Lua and load the dissector.
if ! timeout 60 tshark -G protocols -X "lua_script:$LUA" >"$TMP/protocols.log" 2>&1; then
    die "tshark -G protocols with the dissector failed"
fi
if ! grep -q $'\tseqcast$' "$TMP/protocols.log"; then
    if ! timeout 30 tshark -v 2>/dev/null | grep -q 'with Lua'; then
        skip "this tshark is built without Lua"
    fi
    grep -i 'lua\|error' "$TMP/protocols.log" | head -n 5 >&2
    die "tshark did not register the seqcast protocol from $LUA"
fi
rm -f "$TMP/protocols.log"

# ------------------------------------------------------------------------------------------------
# 1. Live capture

PORT=$((20000 + RANDOM % 39999))
DPORT=$((PORT + 1))
GROUP=239.$((RANDOM % 256)).$((RANDOM % 256)).$((1 + RANDOM % 254))
CAP=$TMP/cap.pcap
log "control 127.0.0.1:$PORT, group $GROUP:$DPORT, capture $CAP"

timeout 60 dumpcap -q -P -i lo -B 16 -f "udp port $PORT or udp port $DPORT" -a duration:50 -w "$CAP" \
    >"$TMP/dumpcap.log" 2>&1 &
DUMPCAP=$!
STARTED+=("$DUMPCAP")
# dumpcap prints 'Capturing on' before it opens the device: wait for that, then make sure it did
# not fail (no permission: skip) and has written the capture file's header.
dumpcap_failed() {
    wait "$DUMPCAP"
    head -n 3 "$TMP/dumpcap.log" >&2
    if grep -qi 'permission\|not permitted\|privilege' "$TMP/dumpcap.log"; then
        skip "capturing on lo is not permitted here (needs root or CAP_NET_RAW+CAP_NET_ADMIN on dumpcap)"
    fi
    skip "dumpcap cannot capture on lo: $(grep -m 1 'dumpcap:' "$TMP/dumpcap.log")"
}
for _ in $(seq 1 100); do
    grep -q 'Capturing on' "$TMP/dumpcap.log" && [[ -s $CAP ]] && break
    kill -0 "$DUMPCAP" 2>/dev/null || dumpcap_failed
    sleep 0.1
done
sleep 0.5  # margin for the filter to be attached on slow machines
kill -0 "$DUMPCAP" 2>/dev/null || dumpcap_failed
grep -q 'Capturing on' "$TMP/dumpcap.log" && [[ -s $CAP ]] || die "dumpcap did not start capturing within 10 s"

# --no-gso: one datagram per captured frame, which the frame-by-frame checks below rely on (the
# dissector also walks the GSO runs a sending host captures; not checked here).
timeout 40 "$SEQCAST" sequencer --control "127.0.0.1:$PORT" --group "$GROUP:$DPORT" --no-gso \
    --state "$TMP/seq.state" >"$TMP/sequencer.log" 2>&1 &
SEQ=$!
STARTED+=("$SEQ")
for _ in $(seq 1 100); do
    grep -q 'control' "$TMP/sequencer.log" && break
    kill -0 "$SEQ" 2>/dev/null || die "the sequencer exited at start"
    sleep 0.05
done

timeout 40 "$SEQCAST" sub --group "$GROUP:$DPORT" --verify --exit-on-eos >"$TMP/sub.log" 2>&1 &
SUB=$!
STARTED+=("$SUB")
sleep 0.5

printf 'a\nbb\nccc\n' | timeout 20 "$SEQCAST" pub --sequencer "127.0.0.1:$PORT" --no-gso >"$TMP/pub1.log" 2>&1 ||
    die "pub (stdin lines) failed"
timeout 30 "$SEQCAST" pub --sequencer "127.0.0.1:$PORT" --no-gso --rate 1000 --count 50 --size 8-3000 --seed 7 \
    >"$TMP/pub2.log" 2>&1 || die "pub (synthetic) failed"
sleep 0.3

kill -TERM "$SEQ" 2>/dev/null
wait "$SEQ"
rc=$?
[[ $rc -eq 0 ]] || die "sequencer exited with $rc after SIGTERM"
wait "$SUB"
rc=$?
[[ $rc -eq 0 ]] || die "sub exited with $rc"
grep -q 'messages 53$' "$TMP/sub.log" || die "sub did not deliver the 53 messages: $(tail -n 1 "$TMP/sub.log")"
NEXT=$(sed -n 's/.*stopped at offset \([0-9]*\).*/\1/p' "$TMP/sequencer.log")
[[ -n $NEXT ]] || die "no 'stopped at offset' line from the sequencer"
sleep 0.3

kill -INT "$DUMPCAP" 2>/dev/null  # timeout passes the signal on; dumpcap closes the file
wait "$DUMPCAP"
[[ -s $CAP ]] || die "empty capture"
log "$(grep -i 'packets' "$TMP/dumpcap.log" | head -n 2 | tr '\n' ' ')"

FIELDS=(frame.number udp.srcport udp.dstport seqcast.type seqcast.stream seqcast.epoch seqcast.first_offset
    seqcast.count seqcast.flags seqcast.crc32c.status seqcast.msg.length seqcast.msg.flags
    seqcast.msg.publisher seqcast.msg.frag_offset seqcast.msg.pub_seq seqcast.ack.publisher
    seqcast.ack.first_pub_seq seqcast.ack.first_offset seqcast.ack.count seqcast.ack.stride
    seqcast.heartbeat.oldest_retained seqcast.msg.crc32c.status _ws.col.Info)
fields() {
    local args=() fld
    for fld in "${FIELDS[@]}"; do args+=(-e "$fld"); done
    "${TSHARK[@]}" -r "$CAP" "$@" -T fields -E separator=/t -E occurrence=a -E aggregator=, "${args[@]}"
}
fields >"$TMP/heuristic.tsv" 2>"$TMP/tshark-heuristic.log" || die "tshark failed on the capture"
fields --disable-heuristic seqcast_udp -d "udp.port==$DPORT,seqcast" >"$TMP/decode_as.tsv" 2>"$TMP/tshark-decode-as.log" ||
    die "tshark -d failed"
fields --disable-heuristic seqcast_udp -o "seqcast.port:$PORT" >"$TMP/pref.tsv" 2>"$TMP/tshark-pref.log" ||
    die "tshark -o seqcast.port failed"

log "capture decoded (first lines):"
"${TSHARK[@]}" -r "$CAP" 2>/dev/null | head -n 24 | cut -c1-160

python3 - "$TMP" "$PORT" "$DPORT" "$NEXT" <<'EOF' || die "capture checks failed"
import sys
tmp, port, dport, next_offset = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
names = ["frame", "sport", "dport", "type", "stream", "epoch", "first_offset", "count", "flags", "crc",
         "len", "mflags", "pub", "frag", "seq", "ack_pub", "ack_seq", "ack_off", "ack_count", "ack_stride",
         "hb_oldest", "mcrc", "info"]
def load(name):
    rows = []
    for line in open(f"{tmp}/{name}"):
        parts = line.rstrip("\n").split("\t")
        parts += [""] * (len(names) - len(parts))
        rows.append(dict(zip(names, parts)))
    return rows
def ints(s):
    return [int(x, 0) for x in s.split(",")] if s else []
errors = []
def check(cond, msg):
    if not cond:
        errors.append(msg)

rows = load("heuristic.tsv")
check(len(rows) > 0, "no packets in the capture")
undecoded = [r["frame"] for r in rows if not r["type"]]
check(not undecoded, f"frames not recognised as seqcast by the heuristic: {undecoded[:10]}")
badcrc = [r["frame"] for r in rows if r["type"] and r["crc"] != "1"]
check(not badcrc, f"frames whose CRC32C is not Good: {badcrc[:10]}")
# Every entry of every DATA and PUB carries the publisher's CRC, checked by the dissector too.
badentry = [r["frame"] for r in rows if r["type"] in ("1", "4") and r["count"] not in ("", "0")
            and (r["mcrc"] == "" or set(r["mcrc"].split(",")) != {"1"} or len(r["mcrc"].split(",")) != int(r["count"]))]
check(not badentry, f"frames with an entry CRC32C that is not Good: {badentry[:10]}")
types = {int(r["type"]) for r in rows if r["type"]}
for t, n in [(1, "DATA"), (2, "HEARTBEAT"), (4, "PUB"), (5, "PUB_ACK"), (9, "END_OF_STREAM")]:
    check(t in types, f"no {n} frame decoded (types seen: {sorted(types)})")

# DATA: stream 1, epoch 1, contiguous offsets from 0; retransmits must repeat the original entries.
entries = {}   # offset -> (length, flags, publisher, frag, pub_seq)
data_frames = [r for r in rows if r["type"] == "1"]
for r in data_frames:
    check(r["stream"] == "1" and r["epoch"] == "1", f"DATA frame {r['frame']}: stream {r['stream']} epoch {r['epoch']}")
    first, count = int(r["first_offset"]), int(r["count"])
    cols = [ints(r[k]) for k in ("len", "mflags", "pub", "frag", "seq")]
    check(all(len(c) == count for c in cols), f"DATA frame {r['frame']}: {count} entries but fields {cols}")
    for i, e in enumerate(zip(*cols)):
        if first + i in entries:
            check(entries[first + i] == e, f"offset {first + i} decoded differently twice")
        entries[first + i] = e
offsets = sorted(entries)
check(offsets == list(range(next_offset)),
      f"DATA offsets are not 0..{next_offset - 1} contiguous: {offsets[:5]}..{offsets[-5:] if offsets else []} ({len(offsets)})")
eos = [r for r in rows if r["type"] == "9"]
check(all(int(r["first_offset"]) == next_offset for r in eos), f"END_OF_STREAM next offset != {next_offset}")
hbs = [r for r in rows if r["type"] == "2"]
check(all(int(r["first_offset"]) <= next_offset and r["hb_oldest"] != "" for r in hbs), "HEARTBEAT next/oldest fields")
# After END_OF_STREAM the lingering sequencer heartbeats with the END flag (bit 2) at the final offset.
if eos:
    after = [r for r in hbs if int(r["frame"]) > int(eos[0]["frame"])]
    check(len(after) > 0, "no HEARTBEAT after END_OF_STREAM (the sequencer lingers and sends some)")
    check(all(int(r["flags"], 0) & 4 and int(r["first_offset"]) == next_offset for r in after),
          f"HEARTBEATs after END_OF_STREAM without the END flag or the final offset: {[(r['frame'], r['flags']) for r in after][:5]}")
    check(all("END" in r["info"] for r in after), "the Info column of a flagged HEARTBEAT does not say END")
check(not any(int(r["flags"] or "0", 0) & 4 for r in hbs if not eos or int(r["frame"]) < int(eos[0]["frame"])),
      "a HEARTBEAT before END_OF_STREAM has the END flag")

# Reassemble messages from DATA in offset order.
msgs = {}      # (pub, seq) -> dict
order = []
for off in offsets:
    length, fl, pub, frag, seq = entries[off]
    key = (pub, seq)
    if key not in msgs:
        msgs[key] = {"pieces": [], "last_off": None}
        order.append(key)
    m = msgs[key]
    m["pieces"].append((frag, length, fl))
    if fl & 2:
        m["last_off"] = off
pubs = []
for key in order:
    if key[0] not in pubs:
        pubs.append(key[0])
check(len(pubs) == 2, f"expected 2 publishers in DATA, saw {pubs}")
total = {}
fragmented = 0
for key in order:
    pieces = sorted(msgs[key]["pieces"])
    pos = 0
    for frag, length, fl in pieces:
        check(frag == pos, f"message {key}: fragment at {frag}, expected {pos}")
        check(bool(fl & 1) == (frag == 0), f"message {key}: FIRST flag wrong at frag {frag}")
        pos += length
    check(pieces[-1][2] & 2, f"message {key}: last piece lacks LAST")
    if len(pieces) > 1:
        fragmented += 1
    total[key] = pos
if len(pubs) == 2:
    lines = [k for k in order if k[0] == pubs[0]]
    synth = [k for k in order if k[0] == pubs[1]]
    check([total[k] for k in lines] == [1, 2, 3], f"stdin message lengths {[total[k] for k in lines]} != [1, 2, 3]")
    check([k[1] for k in lines] == [1, 2, 3], f"stdin pub_seqs {[k[1] for k in lines]} != [1, 2, 3]")
    check(sorted(k[1] for k in synth) == list(range(1, 51)), f"synthetic pub_seqs are not 1..50 ({len(synth)})")
    check(all(8 <= total[k] <= 3000 for k in synth), "synthetic message sizes outside 8..3000")
    check(fragmented > 0, "no fragmented message seen (sizes up to 3000 should fragment at MTU 1408)")

# PUB entries reach DATA unchanged.
pub_set, data_set = set(), {(e[2], e[4], e[3], e[0], e[1]) for e in entries.values()}
for r in rows:
    if r["type"] == "4":
        cols = [ints(r[k]) for k in ("pub", "seq", "frag", "len", "mflags")]
        pub_set.update(zip(*cols))
check(pub_set == data_set, f"PUB entries != DATA entries ({len(pub_set)} vs {len(data_set)})")

# PUB_ACK confirms each message at the offset of its LAST fragment.
acked = {}
for r in rows:
    if r["type"] == "5":
        pub = int(r["ack_pub"])
        for s, o, c, st in zip(*[ints(r[k]) for k in ("ack_seq", "ack_off", "ack_count", "ack_stride")]):
            for j in range(c):
                if o != 0xFFFFFFFFFFFFFFFF:
                    acked[(pub, s + j)] = o + j * st
for key in order:
    check(acked.get(key) == msgs[key]["last_off"],
          f"message {key}: PUB_ACK offset {acked.get(key)} != LAST fragment offset {msgs[key]['last_off']}")

# Decode As on the group port only, and the port preference on the control port only.
for name, want_port in (("decode_as.tsv", dport), ("pref.tsv", port)):
    rs = load(name)
    bad = [r["frame"] for r in rs if bool(r["type"]) != (want_port in (int(r["sport"]), int(r["dport"])))]
    check(not bad, f"{name}: frames decoded (or not) against the port rule: {bad[:10]}")
    check(any(r["type"] for r in rs), f"{name}: nothing decoded")

data_infos = [r["info"] for r in data_frames]
print(f"{len(rows)} frames, {len(data_frames)} DATA, {len(offsets)} offsets, {len(order)} messages "
      f"({fragmented} fragmented), types {sorted(types)}")
print("first DATA info:", data_infos[0] if data_infos else None)
if errors:
    for e in errors[:30]:
        print("  -", e)
    sys.exit(1)
EOF
log "live capture checks passed"

# ------------------------------------------------------------------------------------------------
# 2. Hand-made frames

SYN=$TMP/synthetic.pcap
python3 - "$SYN" <<'EOF' || die "cannot write the synthetic capture"
import struct, sys
def crc32c(data):
    crc = 0xFFFFFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF
assert crc32c(b"123456789") == 0xE3069283
def frame(ftype, body=b"", count=0, stream=1, epoch=1, first=0, flags=0, ts=1700000000123456789,
          minor=0, ext=b"", body_len=None, bad_crc=False):
    hlen = 48 + len(ext)
    h = struct.pack("<4sBBHBBHIIIQQII", b"SQCT", 2, minor, hlen, ftype, 0, flags, stream, epoch, 0, first, ts,
                    count, len(body) if body_len is None else body_len)
    d = bytearray(h + ext + body)
    c = crc32c(bytes(d)) ^ (1 if bad_crc else 0)
    d[20:24] = struct.pack("<I", c)
    return bytes(d)
def entry(payload, pub=7, seq=1, frag=0, fl=3, ts=1700000000000000000, damage=False):
    # 40-byte message header; the entry CRC covers the payload, then header bytes 0..31
    h = struct.pack("<IHHIIQQ", len(payload), fl, 0, pub, frag, seq, ts)
    c = crc32c(payload + h) ^ (1 if damage else 0)
    return h + struct.pack("<II", c, 0) + payload
frames = [
    frame(3, struct.pack("<QII", 5, 5, 0) + struct.pack("<QII", 12, 1, 0), count=2),                # 1 NAK
    frame(6, struct.pack("<IIQQ", 7, 1, 5, 7), epoch=1),                                             # 2 PUB_NAK
    frame(7, struct.pack("<QQQII", 42, 10, 2**64 - 1, 3, 0), epoch=0, first=10),                    # 3 REPLAY_REQUEST
    frame(8, struct.pack("<QIIQQ", 42, 5, 0, 20, 3), first=20),                                      # 4 REPLAY_END
    frame(1, entry(b"hello"), count=1, first=100, flags=3, minor=1, ext=b"\xAA" * 8),                 # 5 DATA ext
    frame(1, entry(b"x") + entry(b"yz", seq=2), count=2, first=200, bad_crc=True),                  # 6 bad CRC
    frame(1, entry(b"abcdef"), count=1, first=300, body_len=40 + 60),                               # 7 truncated
    bytes.fromhex("53514354020030000900000004030201070000" "00b5d6057d701700000000000091776655443322110000000000000000"),  # 8 spec example
    frame(4, entry(b"A" * 10, frag=0, fl=1) + entry(b"B" * 5, frag=10, fl=2), count=2, epoch=0, first=1),  # 9 PUB fragments
    frame(1, entry(b"ok") + entry(b"bad", seq=2, damage=True), count=2, first=400),                # 10 entry CRC, datagram CRC good
    bytes.fromhex("5351435402003000010000000403020107000000e31990447017000000000000"
                  "9177665544332211010000002d00000005000000030000000300000000000000" "01000000000000000077665544332211a303ac280000000068656c6c6f"),  # 11 spec DATA example
    frame(10, struct.pack("<Q", 0xABC), epoch=42, first=1000),                                       # 12 REPL_ACK
    frame(11, struct.pack("<Q", 0xABC), epoch=42),                                                   # 13 REPL_JOIN
    frame(12, struct.pack("<QIIQ", 0xABC, 0, 1, 500) + struct.pack("<IIQ", 7, 0, 31) + struct.pack("<IIQ", 9, 3, 12),
          count=2, epoch=42, first=480),                                                             # 14 REPL_SNAPSHOT
    frame(12, struct.pack("<QIIQ", 0xABC, 3, 2, 500), count=0, epoch=42, first=480),                # 15 chunk past the last
    frame(6, struct.pack("<IIQQ", 7, 5, 0, 0), epoch=1),                                             # 16 PUB_NAK NotLeader
]
out = open(sys.argv[1], "wb")
out.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 101))  # LINKTYPE_RAW (IPv4)
for i, payload in enumerate(frames):
    udp = struct.pack(">HHHH", 45678, 45679, 8 + len(payload), 0) + payload
    ip = struct.pack(">BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), i, 0, 64, 17, 0, bytes([127, 0, 0, 1]), bytes([127, 0, 0, 1]))
    s = sum(struct.unpack(">10H", ip))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    ip = ip[:10] + struct.pack(">H", ~s & 0xFFFF) + ip[12:]
    pkt = ip + udp
    out.write(struct.pack("<IIII", 1700000000 + i, 0, len(pkt), len(pkt)) + pkt)
EOF

"${TSHARK[@]}" -r "$SYN" -d udp.port==45679,seqcast -T fields -E separator=/t -E occurrence=a -E aggregator=, \
    -e frame.number -e seqcast.type -e seqcast.crc32c.status -e _ws.col.Info -e _ws.expert.message \
    -e seqcast.nak.first -e seqcast.nak.count -e seqcast.pubnak.reason -e seqcast.pubnak.expected_pub_seq \
    -e seqcast.replay.to -e seqcast.replay.flags.live -e seqcast.replay.flags.wait -e seqcast.replay.flags.cancel \
    -e seqcast.replay_end.status -e seqcast.replay_end.earliest_offset -e seqcast.header_ext \
    -e seqcast.flags.retransmit -e seqcast.flags.replay -e seqcast.msg.offset -e seqcast.msg.length \
    -e seqcast.stream -e seqcast.epoch -e seqcast.first_offset -e seqcast.msg.frag_offset \
    -e seqcast.msg.crc32c.status -e seqcast.msg.crc32c -e seqcast.repl.session -e seqcast.repl.table_head \
    -e seqcast.repl.next_pub_seq \
    >"$TMP/synthetic.tsv" 2>"$TMP/tshark-synthetic.log" || die "tshark failed on the synthetic frames"
log "hand-made frames:"
cut -f 1,4 "$TMP/synthetic.tsv"

python3 - "$TMP/synthetic.tsv" <<'EOF' || die "synthetic frame checks failed"
import sys
names = ["frame", "type", "crc", "info", "expert", "nak_first", "nak_count", "reason", "expected", "to", "live",
         "wait", "cancel", "status", "earliest", "ext", "retx", "replay", "moff", "mlen", "stream", "epoch",
         "first", "frag", "mcrc", "mcrcval", "session", "table_head", "next_pub_seq"]
rows = {}
for line in open(sys.argv[1]):
    p = line.rstrip("\n").split("\t")
    p += [""] * (len(names) - len(p))
    r = dict(zip(names, p))
    rows[int(r["frame"])] = r
T = lambda v: v.lower() in ("1", "true")
expect = [
    (1, lambda r: r["type"] == "3" and r["nak_first"] == "5,12" and r["nak_count"] == "5,1" and r["crc"] == "1"
        and "5..9, 12" in r["info"]),
    (2, lambda r: r["type"] == "6" and r["reason"] == "1" and r["expected"] == "5" and "Gap" in r["info"]),
    (3, lambda r: r["type"] == "7" and r["to"] == "18446744073709551615" and T(r["live"]) and T(r["wait"])
        and not T(r["cancel"]) and "LIVE|WAIT" in r["info"]),
    (4, lambda r: r["type"] == "8" and r["status"] == "5" and r["earliest"] == "3" and "Lost" in r["info"]),
    (5, lambda r: r["type"] == "1" and r["ext"] != "" and T(r["retx"]) and T(r["replay"]) and r["moff"] == "100"
        and r["mlen"] == "5" and r["crc"] == "1" and "RETRANSMIT|REPLAY" in r["info"]),
    (6, lambda r: r["type"] == "1" and r["crc"] == "0" and "Bad CRC32C" in r["expert"] and r["moff"] == "200,201"),
    (7, lambda r: r["type"] == "1" and "runcated" in r["expert"] and "truncated" in r["info"]),
    (8, lambda r: r["type"] == "9" and r["crc"] == "1" and r["stream"] == "16909060" and r["epoch"] == "7"
        and r["first"] == "6000"),
    (9, lambda r: r["type"] == "4" and r["frag"] == "0,10" and r["mlen"] == "10,5" and r["crc"] == "1"
        and r["mcrc"] == "1,1"),
    (10, lambda r: r["type"] == "1" and r["crc"] == "1" and r["mcrc"] == "1,0"
        and "entry 1 fails the publisher's CRC32C" in r["expert"] and "1 failing the entry CRC" in r["info"]),
    (11, lambda r: r["type"] == "1" and r["crc"] == "1" and r["mcrc"] == "1" and r["mcrcval"] == "0x28ac03a3"
        and r["moff"] == "6000" and r["mlen"] == "5"),
    (12, lambda r: r["type"] == "10" and r["session"] == "0x0000000000000abc" and "REPL_ACK" in r["info"]
        and "next=1000" in r["info"] and r["expert"] == ""),
    (13, lambda r: r["type"] == "11" and r["session"] == "0x0000000000000abc" and "REPL_JOIN" in r["info"] and r["expert"] == ""),
    (14, lambda r: r["type"] == "12" and r["table_head"] == "500" and r["next_pub_seq"] == "31,12"
        and "publishers=2" in r["info"] and r["expert"] == ""),
    (15, lambda r: r["type"] == "12" and "chunk 3 of 2" in r["expert"]),
    (16, lambda r: r["type"] == "6" and r["reason"] == "5" and "NotLeader" in r["info"]),
]
bad = 0
for n, ok in expect:
    r = rows.get(n)
    if r is None or not ok(r):
        print(f"  - frame {n} not decoded as expected: {r}")
        bad += 1
sys.exit(1 if bad else 0)
EOF
log "hand-made frame checks passed"
echo "PASS"
