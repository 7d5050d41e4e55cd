#!/usr/bin/env bash
# The systemd units (ops/systemd) pass `systemd-analyze verify` with no finding at all, and each
# role starts from its example configuration (ops/config) as its unit would run it: the sequencer
# and the archiver from their files (the paths moved into a temporary directory), the exporter
# from the listen address in its environment file; a subscriber hears the sequencer, the exporter
# serves all three.
#
# usage: ops_units.sh /path/to/seqcast SOURCE_ROOT
. "$(dirname "$0")/lib.sh" "$@"
SRC=$(readlink -f "${2:-}")
[[ -d $SRC/ops/systemd ]] || die "usage: $0 SEQCAST SOURCE_ROOT (no ops/systemd under '${2:-}')"
command -v systemd-analyze >/dev/null || skip "systemd-analyze is not installed (Debian: systemd)"
command -v python3 >/dev/null || skip "python3 is not installed"

# verify: the units as installed, with ExecStart pointing at this build's binary (verify checks
# that the command exists and is executable).
mkdir "$TMP/units"
for u in "$SRC"/ops/systemd/*.service.in; do
    sed -e "s#@bindir@/seqcast#$SEQCAST#g" -e "s#@docdir@#/usr/share/doc/seqcast#g" "$u" >"$TMP/units/$(basename "$u" .in)"
done
check "units with @bindir@/seqcast replaced" "$(grep -l "^ExecStart=$SEQCAST " "$TMP"/units/*.service | wc -l)" eq 3
check "no placeholder left in the units" "$(grep -c '@[a-z]*@' "$TMP"/units/*.service | awk -F: '{s += $2} END {print s}')" eq 0
(cd "$TMP/units" && systemd-analyze verify ./seqcast-sequencer@test.service ./seqcast-archiver@test.service \
    ./seqcast-stat.service) >"$TMP/verify.log" 2>&1
check "systemd-analyze verify exit status" "$?" eq 0
check "systemd-analyze verify findings" "$(grep -c . "$TMP/verify.log")" eq 0
[[ -s $TMP/verify.log ]] && sed 's/^/  verify: /' "$TMP/verify.log"
# The check catches what it should: a misspelt setting is a finding.
sed 's/^NoNewPrivileges=yes/NoNewPrivileges=perhaps/' "$TMP/units/seqcast-stat.service" >"$TMP/units/broken.service"
(cd "$TMP/units" && systemd-analyze verify ./broken.service) >"$TMP/verify-broken.log" 2>&1
check "systemd-analyze verify reports a bad value" "$(grep -c . "$TMP/verify-broken.log")" gt 0

# Each ExecStart names the configuration the unit documents.
check "sequencer unit runs --config /etc/seqcast/sequencer-%i.conf" \
    "$(grep -c '^ExecStart=@bindir@/seqcast sequencer --config /etc/seqcast/sequencer-%i.conf$' "$SRC/ops/systemd/seqcast-sequencer@.service.in")" eq 1
check "archiver unit runs --config /etc/seqcast/archiver-%i.conf" \
    "$(grep -c '^ExecStart=@bindir@/seqcast archiver --config /etc/seqcast/archiver-%i.conf$' "$SRC/ops/systemd/seqcast-archiver@.service.in")" eq 1

# The example configurations, as the units would run them (paths and ports moved).
pick_ports
pick_group
tcp_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
ARCH_PORT=$(tcp_port)
sed -e "s#^control = .*#control = 127.0.0.1:$PORT#" -e "s#^group = .*#group = $GROUP_ADDR:$((PORT + 1))#" \
    -e "s#^state = .*#state = $TMP/sequencer.state#" "$SRC/ops/config/sequencer.conf" >"$TMP/sequencer.conf"
sed -e "s#^control = .*#control = 127.0.0.1:$ARCH_PORT#" -e "s#^group = .*#group = $GROUP_ADDR:$((PORT + 1))#" \
    -e "s#^log = .*#log = $TMP/archive.seqlog#" -e "s#^size = .*#size = 64M#" "$SRC/ops/config/archiver.conf" >"$TMP/archiver.conf"
check "keys moved in the sequencer's configuration" "$(diff "$SRC/ops/config/sequencer.conf" "$TMP/sequencer.conf" | grep -c '^>')" eq 3
check "keys moved in the archiver's configuration" "$(diff "$SRC/ops/config/archiver.conf" "$TMP/archiver.conf" | grep -c '^>')" eq 4
EXPORTER=127.0.0.1:$(tcp_port)
sed "s#^SEQCAST_STAT_LISTEN=.*#SEQCAST_STAT_LISTEN=$EXPORTER#" "$SRC/ops/config/seqcast-stat" >"$TMP/seqcast-stat"
# shellcheck disable=SC1091
. "$TMP/seqcast-stat"
start seq 120 "$SEQCAST" sequencer --config "$TMP/sequencer.conf"
start arch 120 "$SEQCAST" archiver --config "$TMP/archiver.conf"
start stat 120 "$SEQCAST" stat --serve "$SEQCAST_STAT_LISTEN"
start sub 120 "$SEQCAST" sub --group "$GROUP_ADDR:$((PORT + 1))"
SUB_PID=$(seqcast_pid sub) || die "the subscriber exited: $(cat "$TMP/sub.log")"
heard() { v=$(counter "$SUB_PID" heartbeats_received) && [[ ${v:-0} -gt 0 ]]; }
wait_until 20 "the subscriber hears the sequencer started from its example configuration" heard ||
    die "no heartbeat from the sequencer (log: $(tail -n 3 "$TMP/seq.log"))"
metrics() { python3 -c "import urllib.request; print(urllib.request.urlopen('http://$EXPORTER/metrics', timeout=5).read().decode(), end='')"; }
served() { metrics >"$TMP/metrics.txt" 2>/dev/null && grep -q "^seqcast_up{role=\"archiver\",stream=\"1\",pid=\"$(seqcast_pid arch)\"} 1$" "$TMP/metrics.txt"; }
wait_until 20 "the exporter serves the archiver" served || die "the exporter did not serve the archiver"
for r in seq arch; do
    p=$(seqcast_pid "$r") || die "$r exited: $(tail -n 3 "$TMP/$r.log")"
    check "the exporter serves $r (pid $p)" "$(grep -c "^seqcast_up{role=\"[a-z]*\",stream=\"1\",pid=\"$p\"} 1$" "$TMP/metrics.txt")" eq 1
done
for r in stat sub arch seq; do
    stop "$r" TERM 20
    check "$r exits 0 on SIGTERM, as systemd stops it" "$?" eq 0
done
finish
