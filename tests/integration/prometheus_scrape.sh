#!/usr/bin/env bash
# `seqcast stat --serve` scraped by a real Prometheus (Debian's `prometheus`): a sequencer that
# drops 2 % of what it sends, a subscriber, an archiver and a publisher run while Prometheus scrapes
# the exporter every second. Checks: `promtool check metrics` finds nothing wrong in the exposition;
# the series exist in Prometheus and grow while the stream runs; once the stream is done, the values
# Prometheus holds equal `seqcast stat --json`'s; the loss really happened (gaps, NAKs,
# retransmissions); and every query of the Grafana dashboard (ops/grafana/seqcast.json) returns
# data from what Prometheus scraped.
#
# usage: prometheus_scrape.sh /path/to/seqcast /path/to/ops/grafana/seqcast.json
. "$(dirname "$0")/lib.sh" "$@"
DASHBOARD=$(readlink -f "${2:-}")
[[ -f $DASHBOARD ]] || die "usage: $0 SEQCAST DASHBOARD_JSON (no dashboard at '${2:-}')"
command -v prometheus >/dev/null || skip "prometheus is not installed (Debian: prometheus; ./run installs it)"
command -v promtool >/dev/null || skip "promtool is not installed (Debian: prometheus)"
command -v python3 >/dev/null || skip "python3 is not installed"

N=${SEQCAST_IT_MESSAGES:-40000}
RATE=${SEQCAST_IT_RATE:-4000}
LIMIT=240

tcp_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
pick_ports
pick_group
CONTROL=127.0.0.1:$PORT
GROUP=$GROUP_ADDR:$((PORT + 1))
ARCHIVER=127.0.0.1:$(tcp_port)   # a UDP port; a free TCP one is free enough here, and checked by the archiver
EXPORTER=127.0.0.1:$(tcp_port)
PROM=127.0.0.1:$(tcp_port)
SEED=$(rand32)

# Prometheus API: the value of an instant query as "labels value" lines, sorted ("" when empty).
query() {
    python3 - "$PROM" "$1" <<'EOF'
import json, sys, urllib.parse, urllib.request
url = f"http://{sys.argv[1]}/api/v1/query?" + urllib.parse.urlencode({"query": sys.argv[2]})
r = json.load(urllib.request.urlopen(url, timeout=10))
if r["status"] != "success":
    print("ERROR", r.get("error"))
    sys.exit(1)
for s in sorted(r["data"]["result"], key=lambda s: json.dumps(s["metric"], sort_keys=True)):
    m = {k: v for k, v in s["metric"].items() if k not in ("instance", "job")}
    print(",".join(f"{k}={m[k]}" for k in sorted(m)), s["value"][1])
EOF
}
# One value of an instant query that must return exactly one series ("" otherwise).
one() {
    local out
    out=$(query "$1") || return 1
    [[ $(printf '%s\n' "$out" | grep -c .) -eq 1 ]] || return 1
    printf '%s\n' "$out" | awk '{print $NF}'
}

log "sequencer $CONTROL -> $GROUP (drops 2 % of what it sends, seed $SEED), a subscriber, an archiver on $ARCHIVER;"
log "exporter on $EXPORTER, Prometheus on $PROM scraping it every second; $N messages at $RATE msg/s"
start seq $LIMIT "$SEQCAST" sequencer --control "$CONTROL" --group "$GROUP" --state "$TMP/seq.state" \
    --loss 0.02 --fault-on tx --fault-seed "$SEED"
start sub $LIMIT "$SEQCAST" sub --group "$GROUP" --verify --json "$TMP/sub.json"
start arch $LIMIT "$SEQCAST" archiver --group "$GROUP" --control "$ARCHIVER" --log "$TMP/a.seqlog" --size 64M
start stat $LIMIT "$SEQCAST" stat --serve "$EXPORTER"
cat >"$TMP/prometheus.yml" <<EOF
global:
  scrape_interval: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: seqcast
    static_configs:
      - targets: ['$EXPORTER']
EOF
promtool check config "$TMP/prometheus.yml" >"$TMP/promtool-config.log" 2>&1 || die "promtool rejects the scrape config: $(cat "$TMP/promtool-config.log")"
start prom $LIMIT prometheus --config.file "$TMP/prometheus.yml" --storage.tsdb.path "$TMP/tsdb" \
    --web.listen-address "$PROM" --log.level warn
ready() { python3 -c "import urllib.request,sys; urllib.request.urlopen('http://$PROM/-/ready', timeout=2)" 2>/dev/null; }
wait_until 60 "Prometheus is ready" ready || die "Prometheus did not become ready (log: prom.log)"
heard() { v=$(one 'seqcast_heartbeats_received_total{role="sub"}') && [[ ${v%.*} -gt 0 ]]; }
wait_until 30 "Prometheus has scraped the subscriber's heartbeats" heard || die "no seqcast series in Prometheus"

# The exposition itself, as promtool reads it.
python3 -c "import urllib.request; print(urllib.request.urlopen('http://$EXPORTER/metrics', timeout=5).read().decode(), end='')" \
    >"$TMP/metrics.txt" || die "GET /metrics failed"
promtool check metrics <"$TMP/metrics.txt" >"$TMP/promtool.log" 2>&1
check "promtool check metrics exit status" "$?" eq 0
check "promtool check metrics findings" "$(grep -c . "$TMP/promtool.log")" eq 0
check "families in the exposition" "$(grep -c '^# TYPE ' "$TMP/metrics.txt")" ge 60
SUB_PID=$(seqcast_pid sub) || die "the subscriber is gone"
SEQ_PID=$(seqcast_pid seq) || die "the sequencer is gone"
ARCH_PID=$(seqcast_pid arch) || die "the archiver is gone"
for r in sequencer:$SEQ_PID sub:$SUB_PID archiver:$ARCH_PID; do
    check "seqcast_up of the ${r%%:*} (pid ${r#*:}) in the exposition" \
        "$(grep -c "^seqcast_up{role=\"${r%%:*}\",stream=\"1\",pid=\"${r#*:}\"} 1\$" "$TMP/metrics.txt")" eq 1
done

start pub $LIMIT "$SEQCAST" pub --sequencer "$CONTROL" --rate "$RATE" --count "$N" --size 16-512 --json "$TMP/pub.json"
sleep 3
V1=$(one "seqcast_messages_in_total{role=\"sub\",pid=\"$SUB_PID\"}")
sleep 3
V2=$(one "seqcast_messages_in_total{role=\"sub\",pid=\"$SUB_PID\"}")
log "subscriber's messages_in in Prometheus, 3 s apart: $V1 -> $V2"
check "the subscriber's messages_in grows in Prometheus" "${V2:-0}" gt "${V1:-0}"
RATE_NOW=$(one "rate(seqcast_messages_in_total{role=\"sub\",pid=\"$SUB_PID\"}[5s])")
log "rate(seqcast_messages_in_total[5s]) while publishing: $RATE_NOW msg/s"
check "a positive delivery rate while publishing" "${RATE_NOW%.*}" gt 0

wait_exit pub 120 || die "the publisher did not finish within 120 s"
check "publisher exit status" "${RC[pub]}" eq 0
done_sub() { v=$(counter "$SUB_PID" messages_in) && [[ ${v:-0} -ge $N ]]; }
wait_until 60 "the subscriber has every message" done_sub || die "the subscriber did not get all $N messages"
done_arch() { v=$(counter "$ARCH_PID" archive_next) && [[ ${v:-0} -ge $N ]]; }
wait_until 60 "the archiver has every message" done_arch || die "the archiver did not record all $N messages"
sleep 1

# The stream is done: these counters no longer move. Prometheus, 3 scrapes later, must hold what
# `seqcast stat --json` reads now.
COUNTERS=(messages_in gaps_detected naks_sent gap_offsets_repaired offsets_lost)
SEQ_COUNTERS=(messages_out retransmits naks_received)
declare -A STAT=()
for c in "${COUNTERS[@]}"; do need_counter "STAT[sub_$c]" "$SUB_PID" "$c"; done
for c in "${SEQ_COUNTERS[@]}" head_offset; do need_counter "STAT[seq_$c]" "$SEQ_PID" "$c"; done
need_counter "STAT[arch_archive_next]" "$ARCH_PID" archive_next
sleep 3
for c in "${COUNTERS[@]}"; do
    check "Prometheus seqcast_${c}_total of the subscriber = stat --json" \
        "$(one "seqcast_${c}_total{role=\"sub\",pid=\"$SUB_PID\"}")" == "${STAT[sub_$c]}"
done
for c in "${SEQ_COUNTERS[@]}"; do
    check "Prometheus seqcast_${c}_total of the sequencer = stat --json" \
        "$(one "seqcast_${c}_total{role=\"sequencer\",pid=\"$SEQ_PID\"}")" == "${STAT[seq_$c]}"
done
check "Prometheus seqcast_head_offset of the sequencer = stat --json" \
    "$(one "seqcast_head_offset{role=\"sequencer\",pid=\"$SEQ_PID\"}")" == "${STAT[seq_head_offset]}"
check "Prometheus seqcast_archive_next of the archiver = stat --json" \
    "$(one "seqcast_archive_next{role=\"archiver\",pid=\"$ARCH_PID\"}")" == "${STAT[arch_archive_next]}"
log "stat --json: subscriber ${STAT[sub_messages_in]} messages, ${STAT[sub_gaps_detected]} gaps, ${STAT[sub_naks_sent]} NAKs, ${STAT[sub_offsets_lost]} lost; sequencer ${STAT[seq_retransmits]} retransmits"
check "the subscriber delivered every message" "${STAT[sub_messages_in]}" eq "$N"
check "the loss happened: gaps" "${STAT[sub_gaps_detected]}" gt 0
check "the loss happened: retransmissions" "${STAT[seq_retransmits]}" gt 0
check "nothing lost" "${STAT[sub_offsets_lost]}" eq 0
# Latency: `seqcast sub` records it; the summary's count is every message it measured.
need_counter "STAT[sub_latency_count]" "$SUB_PID" latency_count
check "Prometheus seqcast_latency_seconds_count of the subscriber = stat --json latency_count" \
    "$(one "seqcast_latency_seconds_count{role=\"sub\",pid=\"$SUB_PID\"}")" == "${STAT[sub_latency_count]}"
check "the subscriber measured every message" "${STAT[sub_latency_count]}" eq "$N"
P99=$(one "max_over_time(seqcast_latency_seconds{role=\"sub\",pid=\"$SUB_PID\",quantile=\"0.99\"}[60s])")
log "the subscriber's p99 latency, highest over the last minute's windows: $P99 s"
check "a p99 latency above 0 was served" "$(python3 -c "print(int(float('${P99:-nan}') > 0))" 2>/dev/null)" eq 1
# The exposition again, now with the latency summary in it.
python3 -c "import urllib.request; print(urllib.request.urlopen('http://$EXPORTER/metrics', timeout=5).read().decode(), end='')" \
    >"$TMP/metrics-end.txt" || die "GET /metrics failed"
check "latency summary samples in the exposition" "$(grep -c "^seqcast_latency_seconds{.*pid=\"$SUB_PID\",quantile=" "$TMP/metrics-end.txt")" eq 5
promtool check metrics <"$TMP/metrics-end.txt" >"$TMP/promtool-end.log" 2>&1
check "promtool check metrics exit status, at the end" "$?" eq 0
check "promtool check metrics findings, at the end" "$(grep -c . "$TMP/promtool-end.log")" eq 0
check "the subscriber's lag at the end" "$(one "seqcast_lag_offsets{role=\"sub\",pid=\"$SUB_PID\"}")" == 0
check "the sequencer is up" "$(one "seqcast_up{role=\"sequencer\",pid=\"$SEQ_PID\"}")" == 1

# Every query of the dashboard, with its variables filled in, returns series.
python3 - "$DASHBOARD" >"$TMP/dashboard_exprs.txt" <<'EOF' || die "the dashboard is not valid JSON with panels and targets"
import json, sys
d = json.load(open(sys.argv[1]))
assert d["title"] and d["panels"], "no title or panels"
for p in d["panels"]:
    assert p["targets"], f"panel {p['title']!r} has no query"
    for t in p["targets"]:
        print(t["expr"].replace("$stream", ".+").replace("$__rate_interval", "10s"))
EOF
NQ=0
while IFS= read -r expr; do
    NQ=$((NQ + 1))
    out=$(query "$expr") || { check "dashboard query is valid PromQL: $expr" "$out" == ""; continue; }
    check "dashboard query returns series: $expr" "$(printf '%s\n' "$out" | grep -c .)" gt 0
done <"$TMP/dashboard_exprs.txt"
log "$NQ dashboard queries checked against Prometheus"
check "dashboard queries" "$NQ" ge 19

stop stat TERM 10
check "exporter exit status on SIGTERM" "$?" eq 0
finish
