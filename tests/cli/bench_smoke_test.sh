#!/usr/bin/env bash
# `seqcast bench`, every suite, a short run each (the archive suite's logs in a temporary directory) (1 run of 0.2 s, kernel sockets): it must exit 0,
# print a ratio, and write JSON with no failed row. Then the same suites with a failure injected
# (SEQCAST_BENCH_INJECT_FAILURE=loss: subscribers without repair and 5 % loss, so messages go missing;
# =join: subscribers on a group nobody sends to): each must exit 1, print FAILED, and give no figure
# for the failed rows. Figures are not checked (a busy machine makes them anything); the checks are.
set -u
SEQCAST=${1:?usage: bench_smoke_test.sh path/to/seqcast}
TMP=$(mktemp -d /tmp/seqcast-bench-smoke-XXXXXX)
trap 'rm -rf "$TMP"' EXIT
command -v python3 >/dev/null || { echo "SKIP: python3 is needed to read the JSON"; exit 77; }
ip route get 239.1.1.1 >/dev/null 2>&1 || { echo "SKIP: no route for multicast (loopback multicast is needed)"; exit 77; }
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
SUITES=(throughput latency repair scaling auth api archive gateway)
ARGS=(--runs 1 --seconds 0.2 --transport udp --dir "$TMP")
LIMIT=200  # seconds per run; each takes 5-20 s on a busy 2-core machine

for s in "${SUITES[@]}"; do
    t0=$SECONDS
    timeout "$LIMIT" "$SEQCAST" bench --suite "$s" "${ARGS[@]}" --json "$TMP/$s.json" --markdown "$TMP/$s.md" >"$TMP/$s.out" 2>&1
    rc=$?
    echo "bench --suite $s: exit $rc in $((SECONDS - t0)) s"
    if [ $rc -ne 0 ]; then fail "bench --suite $s exited $rc"; cat "$TMP/$s.out"; continue; fi
    ls "$TMP"/seqcast-bench-* >/dev/null 2>&1 && fail "bench --suite $s left files in --dir: $(ls "$TMP")"
    grep -q "ratio" "$TMP/$s.out" || { fail "bench --suite $s printed no ratio"; cat "$TMP/$s.out"; }
    grep -q "FAILED" "$TMP/$s.out" && fail "bench --suite $s printed FAILED but exited 0"
    python3 - "$TMP/$s.json" "$s" <<'PY' || fail "bench --suite $s: JSON check failed"
import json, sys
d = json.load(open(sys.argv[1]))
suite = sys.argv[2]
assert d["failed_rows"] == [], d["failed_rows"]
assert suite in d, list(d)
text = json.dumps(d[suite])
assert '"failed"' not in text, text[:400]
assert "ratio" in text, text[:400]
# Every run is recorded with what it offered and delivered, and nothing was lost.
def rounds(x):
    if isinstance(x, dict):
        for k, v in x.items():
            if k.endswith("rounds"):
                yield from v
            else:
                yield from rounds(v)
    elif isinstance(x, list):
        for v in x:
            yield from rounds(v)
rs = list(rounds(d[suite]))
assert rs, "no rounds recorded"
for r in rs:
    assert r["offered"] > 0 and r["delivered_by_every_subscriber"] == r["offered"] and r["offsets_lost"] == 0, r
if suite == "repair":
    # Loss on every hop, not only at the subscriber: PUBs (sequencer control socket), confirmations
    # (publisher socket) and DATA (subscriber data socket) were all dropped in the lossy runs.
    lossy = [r for k in ("latency",) for r in d["repair"][k]["loss_rounds"]] + \
            [r for row in d["repair"]["throughput"] for r in row["loss_rounds"]]
    for at in ("publisher", "sequencer_control", "subscriber_data"):
        assert sum(r["injected_drops_at"][at] for r in lossy) > 0, (at, lossy)
    assert all(r["injected_drops"] == 0 for row in d["repair"]["throughput"] for r in row["no_loss_rounds"])
if suite == "archive":
    rows = [r for r in d["archive"]["rows"] if "skipped" not in r]
    assert len(rows) >= 3, rows
    for r in rows:
        assert r["recorded_msgs_per_sec"] > 0 and r["replay_msgs_per_sec"] > 0 and r["raw_write_mb_per_sec"] > 0, r
PY
done 2>&1

# Injected loss: every suite must fail, loudly, with a non-zero exit and no figure for the failed rows.
for s in "${SUITES[@]}"; do
    t0=$SECONDS
    SEQCAST_BENCH_INJECT_FAILURE=loss timeout "$LIMIT" "$SEQCAST" bench --suite "$s" "${ARGS[@]}" --json "$TMP/f$s.json" \
        --markdown "$TMP/f$s.md" >"$TMP/f$s.out" 2>&1
    rc=$?
    echo "bench --suite $s with injected loss: exit $rc in $((SECONDS - t0)) s"
    [ $rc -eq 1 ] || { fail "bench --suite $s with injected loss exited $rc, expected 1"; cat "$TMP/f$s.out"; continue; }
    grep -q "FAILED" "$TMP/f$s.out" || fail "bench --suite $s with injected loss printed no FAILED"
    grep -q "FAILED" "$TMP/f$s.md" || fail "bench --suite $s with injected loss: the Markdown says nothing failed"
    python3 - "$TMP/f$s.json" "$s" <<'PY' || fail "bench --suite $s with injected loss: JSON check failed"
import json, sys
d = json.load(open(sys.argv[1]))
assert d["failed_rows"], "no failed rows"
assert '"failed"' in json.dumps(d[sys.argv[2]])
PY
done

# Subscribers that never join: the bench stops at once and says so.
SEQCAST_BENCH_INJECT_FAILURE=join timeout "$LIMIT" "$SEQCAST" bench --suite throughput "${ARGS[@]}" --json "$TMP/join.json" \
    >"$TMP/join.out" 2>&1
rc=$?
echo "bench with subscribers that never join: exit $rc"
[ $rc -eq 1 ] || fail "bench with subscribers that never join exited $rc, expected 1"
grep -q "FAILED: the subscribers heard nothing" "$TMP/join.out" || { fail "no join failure message"; cat "$TMP/join.out"; }
grep -q '"failed"' "$TMP/join.json" 2>/dev/null || fail "the JSON of a bench whose subscribers never joined does not say it failed"

# A bad injection name is a usage error.
SEQCAST_BENCH_INJECT_FAILURE=bogus "$SEQCAST" bench --suite throughput "${ARGS[@]}" >"$TMP/bad.out" 2>&1
rc=$?
[ $rc -eq 2 ] || fail "SEQCAST_BENCH_INJECT_FAILURE=bogus exited $rc, expected 2"

[ $fails -eq 0 ] || { echo "$fails failure(s)"; exit 1; }
echo "bench smoke: every suite ran, checked its runs, and failed when made to"
