#!/usr/bin/env bash
# Every subcommand: --help exits 0 with examples; an unknown option and an out-of-range value exit 2
# with a message naming the option. Then ping's CSV/JSON/SVG outputs parse, and `seqcast stat --json`
# shows growing counters of a running sequencer and subscriber.
set -u
SEQCAST=${1:?usage: cli_test.sh path/to/seqcast}
TMP=$(mktemp -d /tmp/seqcast-cli-XXXXXX)
PIDS=()
cleanup() {
    # TERM: `timeout` passes it on to the seqcast process it runs.
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
    rm -rf "$TMP"
}
trap cleanup EXIT
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }

expect_rc() {  # expect_rc RC NEEDLE -- command...
    local want=$1 needle=$2; shift 3
    local out rc
    out=$("$@" 2>&1); rc=$?
    if [ "$rc" -ne "$want" ]; then fail "'$*' exited $rc, expected $want"; return; fi
    if [ -n "$needle" ] && ! grep -qF -- "$needle" <<<"$out"; then fail "'$*' output lacks '$needle': $(head -3 <<<"$out")"; fi
}

# command, an out-of-range option, the text its message must contain
CASES=(
  "sequencer|--mtu 50|--mtu"
  "pub|--rate -5|--rate"
  "sub|--nak-rtt-us 0|--nak-rtt-us"
  "archiver|--sync-ms 0|--sync-ms"
  "replay|--to 5 --timeout 0|--timeout"
  "dump|--log|--log"
  "stat|--interval-ms 1|--interval-ms"
  "demo|--duration 0|--duration"
  "bench|--runs 0|--runs"
  "ping|--precision 13|--precision"
)
for c in "${CASES[@]}"; do
    IFS='|' read -r cmd bad needle <<<"$c"
    expect_rc 0 "Examples" -- "$SEQCAST" "$cmd" --help
    expect_rc 2 "--no-such-option" -- "$SEQCAST" "$cmd" --no-such-option
    # shellcheck disable=SC2086
    expect_rc 2 "$needle" -- timeout 20 "$SEQCAST" "$cmd" $bad
done
expect_rc 2 "unknown command" -- "$SEQCAST" no-such-command
expect_rc 0 "" -- "$SEQCAST" --help
# A config file with the same keys as the flags; a bad value in it is reported like a flag.
printf 'mtu = 50\n' >"$TMP/bad.ini"
expect_rc 2 "--mtu" -- "$SEQCAST" sequencer --config "$TMP/bad.ini"
expect_rc 2 "--config" -- "$SEQCAST" sequencer --config "$TMP/missing.ini"

# ping: machine-readable outputs.
if timeout 60 "$SEQCAST" ping --duration 1 --rate 2000 --csv "$TMP/p.csv" --json "$TMP/p.json" --svg "$TMP/p.svg" >"$TMP/ping.out" 2>&1; then
    if command -v python3 >/dev/null; then
        python3 - "$TMP" <<'PY' || fail "ping outputs do not parse"
import csv, json, sys, xml.etree.ElementTree as ET
d = sys.argv[1]
rows = list(csv.DictReader(open(d + "/p.csv")))
assert [r["series"] for r in rows] == ["publish -> deliver", "publish -> sequencer", "sequencer -> deliver"], rows
assert int(rows[0]["count"]) > 0 and int(rows[0]["p50_ns"]) > 0, rows[0]
j = json.load(open(d + "/p.json"))
assert len(j["series"]) == 3 and j["series"][0]["count"] > 0
root = ET.parse(d + "/p.svg").getroot()
names = [p.get("data-series") for p in root.iter("{http://www.w3.org/2000/svg}polyline")]
assert names == ["publish -> deliver", "publish -> sequencer", "sequencer -> deliver"], names
PY
    else
        grep -q '^"publish -> deliver",' "$TMP/p.csv" || fail "ping CSV lacks the publish -> deliver row"
        grep -q '<polyline class="series" data-series="publish -> deliver"' "$TMP/p.svg" || fail "ping SVG lacks its series"
    fi
else
    fail "seqcast ping failed: $(tail -3 "$TMP/ping.out")"
fi

# stat --json: non-zero, growing counters of a running sequencer and subscriber.
PORT=$((20000 + RANDOM % 20000 * 2))
GROUP="239.$((RANDOM % 200 + 20)).$((RANDOM % 250 + 1)).$((RANDOM % 250 + 1)):$((PORT + 1))"
# --duration bounds each process (and $! is then the seqcast process itself, as stat reports it).
"$SEQCAST" sequencer --control 127.0.0.1:$PORT --group "$GROUP" --state "$TMP/seq.state" --duration 30 2>"$TMP/seq.log" &
PIDS+=($!); SEQ=$!
"$SEQCAST" sub --group "$GROUP" --duration 30 2>"$TMP/sub.log" &
PIDS+=($!); SUB=$!
"$SEQCAST" pub --sequencer 127.0.0.1:$PORT --rate 2000 --count 60000 --duration 30 --linger 1 2>"$TMP/pub.log" &
PIDS+=($!)
counter() {  # counter FILE PID NAME
    python3 -c "import json,sys; d=json.load(open(sys.argv[1])); p=[x for x in d['processes'] if x['pid']==int(sys.argv[2])]; print(p[0]['counters'][sys.argv[3]] if p else -1)" "$@" 2>/dev/null ||
        echo -1
}
if command -v python3 >/dev/null; then
    # The first snapshot once both processes have counted something (20 s at most: a busy host
    # may start them slowly), then one a second later: both must have grown in between.
    for ((i = 0; i < 100; i++)); do
        "$SEQCAST" stat --json >"$TMP/s1.json"
        [ "$(counter "$TMP/s1.json" "$SEQ" messages_out)" -gt 0 ] 2>/dev/null &&
            [ "$(counter "$TMP/s1.json" "$SUB" messages_in)" -gt 0 ] 2>/dev/null && break
        sleep 0.2
    done
    sleep 1
    "$SEQCAST" stat --json >"$TMP/s2.json"
    for pair in "$SEQ messages_out" "$SUB messages_in"; do
        read -r pid name <<<"$pair"
        a=$(counter "$TMP/s1.json" "$pid" "$name"); b=$(counter "$TMP/s2.json" "$pid" "$name")
        if ! [ "$a" -gt 0 ] 2>/dev/null || ! [ "$b" -gt "$a" ] 2>/dev/null; then fail "stat: $name of pid $pid did not grow ($a -> $b)"; fi
        echo "stat: pid $pid $name $a -> $b"
    done
else
    sleep 2
    "$SEQCAST" stat --json >"$TMP/s1.json"
    grep -q "\"pid\":$SEQ" "$TMP/s1.json" || fail "stat --json lacks the sequencer"
fi

if [ "$fails" -ne 0 ]; then echo "$fails check(s) failed"; exit 1; fi
echo "cli: all checks passed"
