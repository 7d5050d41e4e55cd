#!/usr/bin/env bash
# The latency cost of hot standby ("replicate, then publish"), measured against a same-run baseline.
#
# Each run starts, on loopback, either one plain sequencer (the baseline) or a leader and a standby
# (`sequencer --ha`, one local etcd member), each sequencer its own process, and measures it with
# `seqcast ping` (a publisher thread and a subscriber thread in one more process, a fixed rate,
# coordinated-omission-correct percentiles of publish -> deliver). With HA every datagram goes
# leader -> standby -> acknowledgement -> leader before it is multicast: one more round trip between
# two processes, two more wake-ups of sleeping threads on this host. Baseline and HA runs alternate;
# the figures are medians over the runs; a ping run that lost or never delivered a message fails
# the benchmark (exit 1).
#
# usage: perf/ha_latency.sh path/to/seqcast [RUNS] [SECONDS] [RATE]     (needs etcd; else exit 77)
set -u
SEQCAST=$(readlink -f "${1:?usage: ha_latency.sh path/to/seqcast [runs] [seconds] [rate]}")
RUNS=${2:-5}
SECONDS_PER_RUN=${3:-3}
RATE=${4:-10000}
command -v etcd >/dev/null || { echo "SKIP: etcd is not installed (Debian: etcd-server)"; exit 77; }
command -v etcdctl >/dev/null || { echo "SKIP: etcdctl is not installed (Debian: etcd-client)"; exit 77; }

TMP=$(mktemp -d /tmp/seqcast-ha-latency-XXXXXX)
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill -KILL "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
    [[ -n ${KEEP:-} ]] || rm -rf "$TMP"
}
trap cleanup EXIT
port_free() { ! ss -Hlntu 2>/dev/null | awk '{print $5}' | grep -q ":$1\$"; }
pick() {
    local p
    for _ in $(seq 50); do
        p=$((20000 + RANDOM % 20000))
        port_free "$p" && port_free $((p + 1)) && port_free $((p + 2)) && { echo "$p"; return; }
    done
    echo "no free ports" >&2
    exit 1
}
EP=$(pick)
etcd --name b1 --data-dir "$TMP/etcd" --listen-client-urls "http://127.0.0.1:$EP" --advertise-client-urls "http://127.0.0.1:$EP" \
    --listen-peer-urls "http://127.0.0.1:$((EP + 1))" --initial-advertise-peer-urls "http://127.0.0.1:$((EP + 1))" \
    --initial-cluster "b1=http://127.0.0.1:$((EP + 1))" >"$TMP/etcd.log" 2>&1 &
PIDS+=($!)
ETCD=http://127.0.0.1:$EP
ctl() { ETCDCTL_API=3 etcdctl --endpoints "$ETCD" --command-timeout=2s "$@"; }
for _ in $(seq 100); do ctl endpoint health >/dev/null 2>&1 && break; sleep 0.1; done
ctl endpoint health >/dev/null 2>&1 || { echo "FAIL: etcd did not start"; cat "$TMP/etcd.log"; exit 1; }

# field FILE NAME: a number from the first (publish -> deliver) series of a ping JSON file.
field() { grep -o "\"$2\":[0-9]*" "$1" | head -n 1 | cut -d: -f2; }
failed=0
run() {  # run MODE R
    local mode=$1 r=$2 port group pids=()
    port=$(pick)
    group="239.77.$((RANDOM % 250)).$((RANDOM % 250 + 1)):$((port + 1))"
    local stream=1  # what ping speaks; each HA run starts from an empty etcd prefix
    ctl del --prefix /seqcast/ >/dev/null
    if [[ $mode == single ]]; then
        "$SEQCAST" sequencer --stream "$stream" --control "127.0.0.1:$port" --group "$group" --state "$TMP/s$r.state" \
            --no-end-of-stream >"$TMP/$mode$r.seq.log" 2>&1 &
        pids+=($!)
        sleep 0.3
    else
        "$SEQCAST" sequencer --stream "$stream" --ha "$ETCD" --name a --control "127.0.0.1:$port" --group "$group" \
            --state "$TMP/a$r.state" >"$TMP/$mode$r.a.log" 2>&1 &
        pids+=($!)
        for _ in $(seq 100); do grep -q ' leads ' "$TMP/$mode$r.a.log" && break; sleep 0.05; done
        "$SEQCAST" sequencer --stream "$stream" --ha "$ETCD" --name b --control "127.0.0.1:$((port + 2))" --group "$group" \
            --state "$TMP/b$r.state" >"$TMP/$mode$r.b.log" 2>&1 &
        pids+=($!)
        # The standby must be in the in-sync set: then every release waits for it.
        for _ in $(seq 100); do [[ $(ctl get --print-value-only "/seqcast/streams/$stream/isr") == a,b ]] && break; sleep 0.05; done
        [[ $(ctl get --print-value-only "/seqcast/streams/$stream/isr") == a,b ]] || { echo "FAIL: run $r: the standby never joined the in-sync set"; failed=1; }
    fi
    PIDS+=("${pids[@]}")
    "$SEQCAST" ping --sequencer "127.0.0.1:$port" --group "$group" --rate "$RATE" --duration "$SECONDS_PER_RUN" \
        --json "$TMP/$mode$r.json" >"$TMP/$mode$r.ping.log" 2>&1
    local rc=$?
    for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null; done
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null; done
    local missing
    missing=$(field "$TMP/$mode$r.json" messages_missing)
    if [[ $rc -ne 0 || ${missing:-x} != 0 ]]; then
        echo "FAIL: $mode run $r: ping exit $rc, ${missing:-?} messages missing: $(tail -n 2 "$TMP/$mode$r.ping.log")"
        failed=1
    fi
}
for r in $(seq 1 "$RUNS"); do
    run single "$r"
    run ha "$r"
done
median() { sort -n | awk '{v[NR]=$1} END {if (NR) print v[int((NR+1)/2)]; else print "nan"}'; }
printf 'publish -> deliver latency, %s msg/s for %s s per run, medians of %s runs (us)\n' "$RATE" "$SECONDS_PER_RUN" "$RUNS"
printf '%-8s %12s %12s %12s\n' "" single "ha (1 standby)" ratio
for q in p50_ns p90_ns p99_ns p99.9_ns; do
    s=$(for r in $(seq 1 "$RUNS"); do field "$TMP/single$r.json" "$q"; done | median)
    h=$(for r in $(seq 1 "$RUNS"); do field "$TMP/ha$r.json" "$q"; done | median)
    awk -v q="${q%_ns}" -v s="$s" -v h="$h" 'BEGIN { printf "%-8s %12.1f %12.1f %12.2f\n", q, s / 1000, h / 1000, (s > 0 ? h / s : 0) }'
done
if [[ $failed -ne 0 ]]; then echo "FAILED: a run lost messages or did not start (above)"; exit 1; fi
