#!/usr/bin/env bash
# Every subcommand: --help exits 0 with examples; an unknown option and an out-of-range value exit 2
# with a message naming the option. Then ping's CSV/JSON/SVG outputs parse, ping through a sequencer
# killed mid-run reports the missing messages and exits 1, `seqcast stat --json` shows growing
# counters of a running sequencer and subscriber, and the live view measures each subscriber's lag
# against its own stream's head (two streams).
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
expect_rc 0 "seqcast 0." -- "$SEQCAST" --version
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

# A counter (or lag_offsets) of one process from a `seqcast stat --json` snapshot, -1 when absent.
# sed and grep, not python: these run in polling loops, and python can take seconds to start on a
# loaded machine.
stat_counter() {  # stat_counter PID NAME
    local v
    v=$("$SEQCAST" stat --json 2>/dev/null | sed 's/{"pid":/\n&/g' | grep "^{\"pid\":$1," | grep -o "\"$2\":[0-9]*" | head -1)
    echo "${v#*:}" | grep -E '^[0-9]+$' || echo -1
}
random_net() {  # random_net PORTVAR GROUPVAR: a control port and a group:port (port + 1)
    local port=$((20000 + RANDOM % 20000 * 2))
    printf -v "$1" '%s' "$port"
    printf -v "$2" '%s' "239.$((RANDOM % 200 + 20)).$((RANDOM % 250 + 1)).$((RANDOM % 250 + 1)):$((port + 1))"
}

# ping through a sequencer that is killed once it has sequenced some of ping's messages: the rest
# never come back, so ping reports them as missing and exits 1 (it used to print percentiles of
# what came back and exit 0).
{
    random_net PPORT PGROUP
    "$SEQCAST" sequencer --control 127.0.0.1:$PPORT --group "$PGROUP" --state "$TMP/pseq.state" --duration 60 2>"$TMP/pseq.log" &
    PSEQ=$!; PIDS+=($PSEQ)
    # 10 s of pings: the kill below comes within a few seconds, even on a loaded machine.
    timeout 60 "$SEQCAST" ping --sequencer 127.0.0.1:$PPORT --group "$PGROUP" --rate 1000 --duration 10 --json "$TMP/pmiss.json" \
        >"$TMP/pmiss.out" 2>&1 &
    PING=$!; PIDS+=($PING)
    sequenced=0
    for _ in $(seq 200); do
        sequenced=$(stat_counter "$PSEQ" messages_in)
        [ "$sequenced" -gt 0 ] 2>/dev/null && break
        kill -0 "$PING" 2>/dev/null || break
        sleep 0.1
    done
    ping_alive=0
    kill -0 "$PING" 2>/dev/null && ping_alive=1
    kill -9 "$PSEQ" 2>/dev/null
    wait "$PING"; rc=$?
    echo "ping: sequencer killed after $sequenced messages; ping exited $rc: $(grep 'missing' "$TMP/pmiss.out")"
    if [ $ping_alive = 0 ]; then
        fail "ping: it ended before its sequencer was killed ($sequenced sequenced): $(tail -2 "$TMP/pmiss.out")"
    elif ! [ "$sequenced" -gt 0 ] 2>/dev/null; then
        fail "ping: the sequencer never sequenced a message of ping's ($(tail -2 "$TMP/pmiss.out"))"
    elif [ "$rc" != 1 ]; then
        fail "ping with its sequencer killed mid-run exited $rc, expected 1: $(tail -3 "$TMP/pmiss.out")"
    else
        grep -qE '^seqcast ping: [0-9]+ of [0-9]+ messages missing' "$TMP/pmiss.out" ||
            fail "ping did not report the missing messages: $(tail -3 "$TMP/pmiss.out")"
        missing=$(grep -o '"messages_missing":[0-9]*' "$TMP/pmiss.json" | cut -d: -f2)
        [ "${missing:-0}" -gt 0 ] || fail "ping JSON lacks messages_missing > 0: $(head -c 300 "$TMP/pmiss.json")"
    fi
}

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

# stat's live view with two streams: each subscriber's lag is against its own stream's head. Stream
# ids are random so that other seqcast processes on the host (their own streams) do not mix in.
{
    SA=$((100000 + RANDOM)) SB=$((200000 + RANDOM))
    random_net PA GA
    random_net PB GB
    declare -A SUBOF
    for s in "A $SA $PA $GA 200" "B $SB $PB $GB 3000"; do
        read -r name stream port group count <<<"$s"
        "$SEQCAST" sequencer --stream "$stream" --control 127.0.0.1:$port --group "$group" --state "$TMP/$name.state" --duration 60 \
            2>"$TMP/seq$name.log" &
        PIDS+=($!)
        "$SEQCAST" sub --stream "$stream" --group "$group" --duration 60 2>"$TMP/sub$name.log" &
        PIDS+=($!); SUBOF[$name]=$!
        "$SEQCAST" pub --stream "$stream" --sequencer 127.0.0.1:$port --rate 20000 --count "$count" --duration 30 --linger 1 \
            2>"$TMP/pub$name.log" &
        PIDS+=($!)
    done
    # Both subscribers caught up with their streams (lag 0 in the JSON, which matched streams already).
    caught_up() {
        [ "$(stat_counter "${SUBOF[A]}" messages_in)" -ge 200 ] && [ "$(stat_counter "${SUBOF[A]}" lag_offsets)" = 0 ] &&
            [ "$(stat_counter "${SUBOF[B]}" messages_in)" -ge 3000 ] && [ "$(stat_counter "${SUBOF[B]}" lag_offsets)" = 0 ]
    }
    for _ in $(seq 300); do caught_up && break; sleep 0.1; done
    if ! caught_up; then
        fail "stat: the two subscribers did not catch up with their streams: $("$SEQCAST" stat --json | head -c 600)"
    else
        "$SEQCAST" stat --count 1 >"$TMP/live.txt" 2>&1
        # Columns: pid role stream dgram_in/s dgram_out/s msg_in/s msg_out/s gaps naks retx lost head lag lag_ms
        for name in A B; do
            row=$(awk -v p="${SUBOF[$name]}" '$1 == p' "$TMP/live.txt")
            lag=$(awk '{ print $13 }' <<<"$row")
            echo "stat live: stream $name subscriber: $row"
            [ "$lag" = 0 ] || fail "stat live view: subscriber of stream $name (caught up) shows lag '$lag', expected 0: $row"
        done
    fi
}

if [ "$fails" -ne 0 ]; then echo "$fails check(s) failed"; exit 1; fi
echo "cli: all checks passed"
