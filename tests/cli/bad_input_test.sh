#!/usr/bin/env bash
# Bad input sweep. Every option of every subcommand, as `seqcast CMD --help` lists it (so a new
# option cannot escape: one without a row in KIND below fails the test), gets wrong types,
# out-of-range values, unusable paths (a directory, a missing directory, no permission, foreign
# content) and, for the addresses a role binds, a port already in use; then --config files with bad
# values, unknown keys, malformed lines and unreadable files. Each case must exit 2 before the role
# starts (bounded by `timeout`), with a first stderr line that names the option or the config file,
# and without a crash or sanitizer report.
set -u
SEQCAST=$(realpath "${1:?usage: bad_input_test.sh path/to/seqcast}")
COMMANDS=(${SEQCAST_BAD_INPUT_COMMANDS:-sequencer pub sub archiver replay dump ping bench stat demo mold-egress mold-ingress soup-server})  # SEQCAST_BAD_INPUT_COMMANDS="archiver dump": a subset, while developing
LIMIT=${SEQCAST_CASE_TIMEOUT:-10}  # seconds; a bad value is refused in milliseconds

TMP=$(mktemp -d /tmp/seqcast-badinput-XXXXXX)
chmod 755 "$TMP"
HELD=()
cleanup() {
    for p in "${HELD[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
    chmod -R u+rwx "$TMP" 2>/dev/null
    rm -rf "$TMP"
}
trap cleanup EXIT

# How each option is checked: its kind, then the kind's arguments. A `CMD:option` row wins over an
# `option` row. Kinds:
#   num LO HI       whole number (HI may be `max`: 2^64-1)      real LO HI   decimal number
#   size LO HI      bytes with K/M/G suffixes                    enum A B ..  one of these words
#   ipv4            interface address                            flag         takes no value
#   peer            HOST:PORT another process listens on         group        multicast HOST:PORT sent to
#   bind            HOST:PORT this role binds (port 0: any)      bindgroup    multicast HOST:PORT joined and bound
#   control         HOST:PORT this role binds, port required     start        earliest, latest or an offset
#   listen          HOST:PORT a TCP server listens on (port required; a port held by a TCP listener)
#   sizespec        N, A-B or exp:MEAN message sizes             cpu          a CPU of this machine
#   in              file read                                    out          file written (created)
#   rw              file kept across restarts (created if missing, read and written)
#   dir             directory read                               netlist      NET[/LEN][,NET...]
#   frametypes      frame type names or numbers, comma-separated
#   session         a MoldUDP64 / SoupBinTCP session name (1..10 printable characters, no spaces)
#   etcd            etcd endpoints http://HOST:PORT[,...]        haname       an HA sequencer name
declare -A KIND=(
  [stream]="num 1 4294967295"
  [interface]="ipv4"
  [ttl]="num 0 255"
  [no-loopback]="flag" [busy-poll]="flag" [no-gso]="flag" [no-gro]="flag"
  [rcvbuf]="size 0 1073741824" [sndbuf]="size 0 1073741824"
  [cpu]="cpu"
  [transport]="enum udp uring"
  [loss]="real 0 1" [burst-loss]="real 0 1" [reorder]="real 0 1" [duplicate]="real 0 1" [corrupt]="real 0 1"
  [fault-damage-entry]="real 0 1"
  [burst-length]="num 1 1000000"
  [fault-seed]="num 0 max"
  [fault-on]="enum rx tx both"
  [drop-type]="frametypes"
  [allow]="netlist"
  [auth-key]="in" [auth-key-id]="num 1 4294967295"
  [json]="out" [svg]="out"

  [sequencer:control]="control" [sequencer:group]="group" [sequencer:data-bind]="bind"
  [sequencer:mtu]="num 128 65507" [sequencer:ring]="size 1441792 68719476736" [sequencer:state]="rw"
  [sequencer:sync-state]="flag" [sequencer:max-publishers]="num 1 65536" [sequencer:publisher-timeout]="num 1 604800"
  [sequencer:heartbeat-min-us]="num 1 10000000" [sequencer:heartbeat-max-ms]="num 1 60000"
  [sequencer:retransmit-holdoff-us]="num 0 10000000" [sequencer:retransmit-rate]="size 1024 1099511627776"
  [sequencer:retransmit-rate-per-host]="size 1024 1099511627776"
  [sequencer:duration]="num 0 4294967296" [sequencer:no-end-of-stream]="flag" [sequencer:linger-ms]="num 0 3600000"
  [sequencer:ha]="etcd" [pub:ha]="etcd" [sub:ha]="etcd" [stat:ha]="etcd" [sequencer:name]="haname" [sequencer:repl]="bind" [sequencer:lease-ttl]="num 1 60"
  [sequencer:takeover-ms]="num 10 60000" [sequencer:isr-timeout-ms]="num 10 60000"

  [pub:sequencer]="peer" [pub:bind]="bind" [pub:id]="num 0 4294967295" [pub:journal]="rw" [pub:file]="in"
  [pub:rate]="real 0 1000000000" [pub:count]="num 0 max" [pub:size]="sizespec" [pub:seed]="num 0 max" [pub:itch]="flag"
  [pub:mtu]="num 128 65507" [pub:window]="num 1 4096" [pub:window-bytes]="size 1048576 17179869184"
  [pub:max-message]="size 1 1073741824" [pub:linger]="num 0 86400" [pub:duration]="num 0 4294967296"

  [sub:group]="bindgroup" [sub:sequencer]="peer" [sub:archiver]="peer" [sub:from]="start"
  [sub:mode]="enum at-least-once at-most-once exactly-once" [sub:commit-file]="rw"
  [sub:commit-sync-ms]="num 0 60000" [sub:print]="flag" [sub:verify]="flag" [sub:messages]="num 0 max"
  [sub:until-offset]="num 0 max" [sub:exit-on-eos]="flag" [sub:duration]="num 0 4294967296"
  [sub:idle-timeout]="num 0 4294967296" [sub:nak-rtt-us]="num 1 10000000" [sub:nak-deadline-ms]="num 1 3600000"
  [sub:reorder-buffer]="size 65536 17179869184" [sub:max-datagram]="num 128 65507"
  [sub:max-message]="size 1 1073741824" [sub:output]="out"

  [archiver:group]="bindgroup" [archiver:control]="control" [archiver:log]="rw"
  [archiver:size]="size 4194304 17592186044416" [archiver:segment]="size 1048576 4294967296"
  [archiver:durability]="enum none interval batch" [archiver:sync-ms]="num 1 60000" [archiver:direct]="flag"
  [archiver:no-uring]="flag" [archiver:max-sessions]="num 1 64" [archiver:max-sessions-per-client]="num 1 64"
  [archiver:window]="size 65536 1073741824" [archiver:nak-deadline-ms]="num 1 3600000"
  [archiver:duration]="num 0 4294967296" [archiver:reorder-buffer]="size 65536 17179869184"
  [archiver:backlog]="size 1048576 1099511627776"

  [replay:archiver]="peer" [replay:from]="start earliest" [replay:to]="num 1 18446744073709551614"
  [replay:wait]="flag" [replay:speed]="real 0 1000000" [replay:out]="out" [replay:verify]="flag" [replay:timeout]="num 1 86400" [replay:bind]="bind"

  [dump:log]="in" [dump:verify]="flag" [dump:records]="flag" [dump:allow-gaps]="flag"

  [ping:sequencer]="peer" [ping:group]="group" [ping:raw]="flag" [ping:rate]="real 1 10000000"
  [ping:duration]="real 0.1 3600" [ping:size]="size 0 1048576" [ping:precision]="num 1 12" [ping:csv]="out"

  [bench:suite]="enum throughput latency repair scaling auth archive all" [bench:runs]="num 1 50" [bench:seconds]="real 0.2 60"
  [bench:transport]="enum udp uring both" [bench:markdown]="out" [bench:dir]="dir"

  [stat:serve]="listen" [stat:json]="flag" [stat:all]="flag" [stat:interval-ms]="num 50 60000" [stat:count]="num 0 max" [stat:dir]="dir"

  [demo:duration]="num 1 3600" [demo:publishers]="num 1 16" [demo:subscribers]="num 1 32"
  [demo:rate]="num 1 10000000" [demo:size]="sizespec" [demo:loss]="real 0 0.5" [demo:burst-loss]="real 0 0.1"
  [demo:seed]="num 0 max" [demo:keep]="flag"

  [mold-egress:session]="session" [mold-egress:downstream]="group" [mold-egress:requests]="bind"
  [mold-egress:group]="bindgroup" [mold-egress:sequencer]="peer" [mold-egress:archiver]="peer" [mold-egress:from]="start"
  [mold-egress:packet-bytes]="num 22 65507" [mold-egress:heartbeat-ms]="num 1 3600000" [mold-egress:end-of-session-ms]="num 0 3600000"
  [mold-egress:max-request-count]="num 1 65534" [mold-egress:request-rate]="real 0.001 1000000000"
  [mold-egress:request-burst]="real 1 1000000000" [mold-egress:max-pending-requests]="num 1 64"
  [mold-egress:nak-deadline-ms]="num 1 3600000" [mold-egress:reorder-buffer]="size 65536 17179869184"
  [mold-egress:duration]="num 0 4294967296"

  [mold-ingress:feed]="bindgroup" [mold-ingress:request-server]="peer" [mold-ingress:session]="session"
  [mold-ingress:from]="num 1 9223372036854775807" [mold-ingress:sequencer]="peer" [mold-ingress:bind]="bind"
  [mold-ingress:journal]="rw" [mold-ingress:mtu]="num 128 65507" [mold-ingress:window]="num 1 4096"
  [mold-ingress:max-request-count]="num 1 65534" [mold-ingress:retry-ms]="num 1 60000"
  [mold-ingress:request-rate]="real 0.001 1000000000" [mold-ingress:request-burst]="real 1 1000000000"
  [mold-ingress:gap-deadline-ms]="num 1 86400000" [mold-ingress:hold-bytes]="size 65536 68719476736"
  [mold-ingress:receive-buffer]="size 65536 1073741824" [mold-ingress:duration]="num 0 4294967296"

  [soup-server:listen]="listen" [soup-server:users]="in" [soup-server:session]="session"
  [soup-server:group]="bindgroup" [soup-server:sequencer]="peer" [soup-server:archiver]="peer"
  [soup-server:heartbeat-ms]="num 1 3600000" [soup-server:client-timeout-ms]="num 1 3600000"
  [soup-server:login-timeout-ms]="num 1 3600000" [soup-server:client-buffer]="size 65536 17179869184"
  [soup-server:socket-send-buffer]="size 0 1073741824" [soup-server:max-clients]="num 1 1000000"
  [soup-server:max-replays]="num 1 4096" [soup-server:end-of-session-ms]="num 0 3600000"
  [soup-server:nak-deadline-ms]="num 1 3600000" [soup-server:duration]="num 0 4294967296"
)
# Options that take any value, so no value is wrong (none at present; list one here, with the reason,
# rather than leaving it out of KIND).
ANY_VALUE=()
# Options outside the sweep: --help prints the usage and exits 0; --config has its own section below.
NOT_SWEPT=(help config)

# --- fixtures -----------------------------------------------------------------------------------
R() { echo $((RANDOM % 250 + 1)); }
PORT=$((20000 + RANDOM % 20000 * 2))
GROUP="239.$((RANDOM % 200 + 20)).$(R).$(R)"
mkdir -p "$TMP/work" "$TMP/adir" "$TMP/shm" "$TMP/rodir" "$TMP/nopermdir"
chmod 755 "$TMP/adir" "$TMP/shm"
chmod 1777 "$TMP/work"  # nobody runs cases there too
chmod 555 "$TMP/rodir"
chmod 700 "$TMP/nopermdir"
printf 'this is not a seqcast file\n%.0s' {1..200} >"$TMP/foreign.file"
printf 'hello\n' >"$TMP/noperm.file"
chmod 000 "$TMP/noperm.file"
: >"$TMP/empty.file"
printf '1 %s\n' "$(printf '%064x' 7)" >"$TMP/auth.key"
chmod 600 "$TMP/auth.key"
printf 'alice secret1\n' >"$TMP/users.soup"
chmod 600 "$TMP/users.soup"
chown 65534 "$TMP/users.soup" 2>/dev/null  # cases run as nobody read it too; root reads it anyway
NCPU=$(nproc)

# Ports held by another socket for the whole test (no SO_REUSEADDR: a second bind must fail).
hold_port() {  # hold_port ADDR VAR: sets VAR to the port held on ADDR
    local f="$TMP/held.$2"
    python3 -c 'import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((sys.argv[1], 0))
open(sys.argv[2] + ".tmp", "w").write(str(s.getsockname()[1]))
import os; os.rename(sys.argv[2] + ".tmp", sys.argv[2])
time.sleep(3600)' "$1" "$f" </dev/null >/dev/null 2>&1 &
    HELD+=($!)
    for _ in $(seq 50); do [ -s "$f" ] && break; sleep 0.1; done
    printf -v "$2" '%s' "$(cat "$f" 2>/dev/null)"
}
hold_tcp_port() {  # hold_tcp_port ADDR VAR: sets VAR to a TCP port listened on at ADDR
    local f="$TMP/held.$2"
    python3 -c 'import socket, sys, time, os
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.bind((sys.argv[1], 0))
s.listen(1)
open(sys.argv[2] + ".tmp", "w").write(str(s.getsockname()[1]))
os.rename(sys.argv[2] + ".tmp", sys.argv[2])
time.sleep(3600)' "$1" "$f" </dev/null >/dev/null 2>&1 &
    HELD+=($!)
    for _ in $(seq 50); do [ -s "$f" ] && break; sleep 0.1; done
    printf -v "$2" '%s' "$(cat "$f" 2>/dev/null)"
}
HAVE_PYTHON=0
command -v python3 >/dev/null && HAVE_PYTHON=1
HELD_PORT="" HELD_GROUP_PORT="" HELD_TCP_PORT=""
if [ $HAVE_PYTHON = 1 ]; then
    hold_port 127.0.0.1 HELD_PORT
    hold_port "$GROUP" HELD_GROUP_PORT
    hold_tcp_port 127.0.0.1 HELD_TCP_PORT
fi

# Permission bits do not stop root: permission cases run as nobody where we are root. nobody runs
# a copy of the binary in $TMP (mode 755 under /tmp), since the checkout may lie in a folder nobody
# cannot traverse (a mktemp -d folder, /root); the copy goes with $TMP at exit. The probe runs the
# copy the way the cases do, through `timeout`: setpriv alone can start a binary that `timeout`,
# running as nobody, cannot reach.
AS_OTHER=() NOBODY_SEQCAST=$SEQCAST NOBODY_WHY=""
if [ "$(id -u)" = 0 ]; then
    mkdir -p "$TMP/bin" && cp "$SEQCAST" "$TMP/bin/seqcast" && chmod 755 "$TMP/bin" "$TMP/bin/seqcast" &&
        NOBODY_SEQCAST=$TMP/bin/seqcast
    if setpriv --reuid=65534 --regid=65534 --clear-groups -- timeout "$LIMIT" "$NOBODY_SEQCAST" --help >/dev/null 2>"$TMP/nobody.err"; then
        AS_OTHER=(setpriv --reuid=65534 --regid=65534 --clear-groups --)
    elif runuser -u nobody -- timeout "$LIMIT" "$NOBODY_SEQCAST" --help >/dev/null 2>>"$TMP/nobody.err"; then
        AS_OTHER=(runuser -u nobody --)
    else
        AS_OTHER=(none)
        NOBODY_WHY=$(grep -v '^[[:space:]]*$' "$TMP/nobody.err" | tail -1)
    fi
fi

# A valid archive log for dump (the archiver creates and preallocates it at start-up).
"$SEQCAST" archiver --group "$GROUP:$((PORT + 5))" --control "127.0.0.1:$((PORT + 6))" --log "$TMP/valid.log" \
    --size 4M --segment 1M --duration 1 >/dev/null 2>&1
chmod 644 "$TMP/valid.log" 2>/dev/null

# Valid arguments that let each command run (briefly) once the option under test is fine; the one
# under test is taken out of them. A case that starts the role and runs is a failure.
base_args() {  # base_args CMD
    case $1 in
        sequencer) echo "--control 127.0.0.1:$PORT --group $GROUP:$((PORT + 1)) --state $TMP/work/seq.state --duration 1" ;;
        pub) echo "--sequencer 127.0.0.1:$PORT --linger 0 --duration 1" ;;
        sub) echo "--group $GROUP:$((PORT + 1)) --duration 1" ;;
        archiver) echo "--group $GROUP:$((PORT + 1)) --control 127.0.0.1:$((PORT + 2)) --log $TMP/work/arch.log --size 4M --segment 1M --duration 1" ;;
        replay) echo "--archiver 127.0.0.1:$((PORT + 2)) --to 10 --timeout 1" ;;
        dump) echo "--log $TMP/valid.log" ;;
        ping) echo "--duration 0.1 --rate 10" ;;
        bench) echo "--suite latency --runs 1 --seconds 0.2" ;;
        stat) echo "--count 1 --interval-ms 50 --dir $TMP/shm" ;;
        demo) echo "--duration 1 --publishers 1 --subscribers 1 --svg $TMP/work/demo.svg" ;;
        mold-egress) echo "--session S1 --downstream $GROUP:$((PORT + 8)) --group $GROUP:$((PORT + 1)) --archiver 127.0.0.1:$((PORT + 2)) --duration 1" ;;
        mold-ingress) echo "--feed $GROUP:$((PORT + 9)) --sequencer 127.0.0.1:$PORT --duration 1" ;;
        soup-server) echo "--listen 127.0.0.1:$((PORT + 10)) --users $TMP/users.soup --session S1 --group $GROUP:$((PORT + 1)) --duration 1" ;;
    esac
}
# Options an option needs beside it to be read at all.
declare -A COMPANION=(
  [ping:sequencer]="--group $GROUP:$((PORT + 1))"
  [ping:group]="--sequencer 127.0.0.1:$PORT"
  [sub:commit-file]="--mode exactly-once"
  [sequencer:auth-key-id]="--auth-key $TMP/auth.key" [pub:auth-key-id]="--auth-key $TMP/auth.key"
  [sub:auth-key-id]="--auth-key $TMP/auth.key" [archiver:auth-key-id]="--auth-key $TMP/auth.key"
  [replay:auth-key-id]="--auth-key $TMP/auth.key"
  [sequencer:ha]="--name s1" [sequencer:name]="--ha http://127.0.0.1:9"
  [sequencer:repl]="--ha http://127.0.0.1:9 --name s1"
)

# --- bad values per kind -------------------------------------------------------------------------
# Each value on its own line; `@nobody ` in front: run the case as an unprivileged user.
bad_values() {  # bad_values CMD OPT KIND ARGS...
    local cmd=$1 opt=$2 kind=$3; shift 3
    case $kind in
        num)
            printf '%s\n' abc 12abc 1.5 -1 0x10 99999999999999999999 ""
            [ "$1" != 0 ] && echo $(($1 - 1))
            [ "$2" != max ] && python3 -c "print($2 + 1)" 2>/dev/null
            ;;
        real)
            printf '%s\n' abc 0,5 nan inf -inf 1e999 ""
            awk -v lo="$1" -v hi="$2" 'BEGIN { if (lo > 0) print lo / 2; else print -0.5; printf "%.17g\n", hi * 2 + 1 }'
            ;;
        size)
            printf '%s\n' abc 12Q 1.5M -1 99999999999999999999 99999999999999G ""
            [ "$1" != 0 ] && echo $(($1 - 1))
            python3 -c "print($2 + 1)" 2>/dev/null
            ;;
        enum) printf '%s\n' 1 garbage "" "$1,$1" ;;
        frametypes) printf '%s\n' garbage "" 0 13 data "DATA," ",DATA" "DATA,garbage" ;;
        ipv4) printf '%s\n' garbage 300.1.1.1 127.0.0.1:4000 12 ;;
        listen)
            printf '%s\n' garbage 127.0.0.1 127.0.0.1:99999 127.0.0.1:-1 127.0.0.1:abc 300.1.1.1:4000 12 "" 127.0.0.1:0
            [ -n "$HELD_TCP_PORT" ] && echo "127.0.0.1:$HELD_TCP_PORT"
            echo "192.0.2.1:$((PORT + 7))"  # not an address of this host
            ;;
        peer|group|bind|bindgroup|control)
            printf '%s\n' garbage 127.0.0.1 127.0.0.1:99999 127.0.0.1:-1 127.0.0.1:abc 300.1.1.1:4000 12 ""
            case $kind in
                peer|control) echo "127.0.0.1:0" ;;
                group) printf '%s\n' "127.0.0.1:4000" "$GROUP:0" ;;
                bindgroup) printf '%s\n' "127.0.0.1:4000" "$GROUP:0" ;;
            esac
            case $kind in
                bind|control)
                    [ -n "$HELD_PORT" ] && echo "127.0.0.1:$HELD_PORT"
                    echo "192.0.2.1:$((PORT + 7))"  # not an address of this host
                    ;;
                bindgroup) [ -n "$HELD_GROUP_PORT" ] && echo "$GROUP:$HELD_GROUP_PORT" ;;
            esac
            ;;
        start)
            printf '%s\n' garbage -1 1.5 99999999999999999999 ""
            [ $# -gt 0 ] && echo latest
            ;;
        sizespec) printf '%s\n' abc -1 5- 9-3 exp:0 exp:abc 99999999999999999999 2G 1-2G ;;
        cpu) printf '%s\n' abc -1 99999999999999999999 "$NCPU" ;;
        in)
            printf '%s\n' "$TMP/adir" "$TMP/nodir/file" "$TMP/missing.file"
            [ "$cmd" = dump ] || [ "$opt" = auth-key ] && printf '%s\n' "$TMP/foreign.file" "$TMP/empty.file"
            echo "@nobody $TMP/noperm.file"
            ;;
        out) printf '%s\n' "$TMP/adir" "$TMP/nodir/file" "@nobody $TMP/noperm.file" "@nobody $TMP/rodir/file" ;;
        rw) printf '%s\n' "$TMP/adir" "$TMP/nodir/file" "$TMP/foreign.file" "@nobody $TMP/noperm.file" "@nobody $TMP/rodir/file" ;;
        dir) printf '%s\n' "$TMP/nodir" "$TMP/foreign.file" "@nobody $TMP/nopermdir" ;;
        netlist) printf '%s\n' garbage 10.0.0.0/33 10.0.0.0/abc 300.1.1.1 "" , ;;
        session) printf '%s\n' "" ABCDEFGHIJK "A B" ;;
        etcd) printf '%s\n' "" garbage https://127.0.0.1:2379 http://127.0.0.1 http://127.0.0.1:0 http://127.0.0.1:99999 , ;;
        haname) printf '%s\n' "" "a,b" "a b" "a/b" "a=b" "$(printf 'x%.0s' {1..65})" ;;
        flag) echo "=yes" ;;
    esac
}

# --- running cases --------------------------------------------------------------------------------
declare -A CASES PASSED SKIPPED
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }

# run_case CMD NEEDLE AS -- ARGS...: exit 2, a first stderr line matching NEEDLE (an ERE), no crash.
run_case() {
    local cmd=$1 needle=$2 as=$3; shift 4
    CASES[$cmd]=$((${CASES[$cmd]:-0} + 1))
    local prefix=() exe=$SEQCAST
    if [ "$as" = nobody ]; then
        if [ "${AS_OTHER[0]:-}" = none ]; then
            SKIPPED[$cmd]=$((${SKIPPED[$cmd]:-0} + 1))
            return
        fi
        prefix=("${AS_OTHER[@]}") exe=$NOBODY_SEQCAST
    fi
    local rc
    (cd "$TMP/work" && exec "${prefix[@]}" timeout -k 2 "$LIMIT" "$exe" "$cmd" "$@") </dev/null >"$TMP/out" 2>"$TMP/err"
    rc=$?
    local first
    first=$(grep -v -e '^[[:space:]]*$' -e ': warning: ' "$TMP/err" | head -1)
    local what="seqcast $cmd $(printf '%q ' "$@")${as:+(as $as)}"
    if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then fail "$what: still running after ${LIMIT}s (the role started)"; return; fi
    if [ "$rc" -ge 128 ]; then fail "$what: killed by signal $((rc - 128)): $(tail -3 "$TMP/err")"; return; fi
    if grep -qE 'Sanitizer|runtime error:|terminate called|what\(\):|Segmentation fault|Aborted|core dumped|^ *#[0-9]+ 0x' "$TMP/err"; then
        fail "$what: crash or sanitizer report: $(head -3 "$TMP/err")"; return
    fi
    if [ "$rc" != 2 ]; then fail "$what: exit $rc, expected 2: ${first:-<no message>}"; return; fi
    if ! grep -qE -- "$needle" <<<"$first"; then fail "$what: the message does not name it: ${first:-<no message>}"; return; fi
    PASSED[$cmd]=$((${PASSED[$cmd]:-0} + 1))
}

# The options of a command and whether each takes a value: "name arg" or "name flag".
list_options() {
    "$SEQCAST" "$1" --help | sed -nE 's/^  (-[a-zA-Z] \[ )?--([a-z0-9-]+)( \])?( arg)?.*/\2\4/p' |
        awk '{ print $1, ($2 == "arg" ? "arg" : "flag") }'
}

kind_of() {  # kind_of CMD OPT
    if [ -n "${KIND[$1:$2]:-}" ]; then echo "${KIND[$1:$2]}"; else echo "${KIND[$2]:-}"; fi
}

for cmd in "${COMMANDS[@]}"; do
    CASES[$cmd]=0 PASSED[$cmd]=0 SKIPPED[$cmd]=0
    opts=$(list_options "$cmd")
    [ -n "$opts" ] || { fail "seqcast $cmd --help lists no options"; continue; }
    read -ra base <<<"$(base_args "$cmd")"
    while read -r opt takes; do
        [[ " ${NOT_SWEPT[*]} ${ANY_VALUE[*]} " == *" $opt "* ]] && continue
        spec=$(kind_of "$cmd" "$opt")
        if [ -z "$spec" ]; then fail "seqcast $cmd --$opt has no bad-input case: add it to KIND in $0"; continue; fi
        read -ra k <<<"$spec"
        if { [ "${k[0]}" = flag ] && [ "$takes" = arg ]; } || { [ "${k[0]}" != flag ] && [ "$takes" = flag ]; }; then
            fail "seqcast $cmd --$opt: KIND says ${k[0]} but --help says it is a $takes"; continue
        fi
        # The base arguments without the option under test, plus what it needs beside it.
        args=()
        for ((i = 0; i < ${#base[@]}; i += 2)); do
            [ "${base[i]}" = "--$opt" ] || args+=("${base[i]}" "${base[i + 1]}")
        done
        read -ra comp <<<"${COMPANION[$cmd:$opt]:-}"
        args+=("${comp[@]}")
        needle="--$opt([^a-z0-9-]|$)"
        while IFS= read -r v; do
            as=""
            if [[ $v == "@nobody "* ]]; then as=nobody; v=${v#@nobody }; fi
            if [ "${k[0]}" = flag ]; then
                run_case "$cmd" "$needle" "$as" -- "${args[@]}" "--$opt$v"
            else
                run_case "$cmd" "$needle" "$as" -- "${args[@]}" "--$opt=$v"
            fi
        done < <(bad_values "$cmd" "$opt" "${k[@]}")
    done <<<"$opts"
    # Arguments that are no option: a stray word, and words after -- (DPDK EAL arguments, which only
    # --transport dpdk takes).
    run_case "$cmd" "positional|stray" "" -- "${base[@]}" stray
    run_case "$cmd" "--( |:)|--transport" "" -- "${base[@]}" -- --stray
done

# --- config files -----------------------------------------------------------------------------------
# Per command: a wrong type and an out-of-range value for its first option of each kind, a flag with a
# value that is not true/false, an unknown key, keys that are not options, malformed lines, and config
# files that do not exist, are directories or cannot be read.
cfg_case() {  # cfg_case CMD NEEDLE AS CONTENT
    local cmd=$1 needle=$2 as=$3 f="$TMP/c$RANDOM.ini"
    printf '%b' "$4" >"$f"
    chmod 644 "$f"
    read -ra cb <<<"$(base_args "$cmd")"
    run_case "$cmd" "$needle" "$as" -- "${cb[@]}" --config "$f"
}
for cmd in "${COMMANDS[@]}"; do
    declare -A seen=()
    firstflag=""
    while read -r opt takes; do
        [[ " ${NOT_SWEPT[*]} ${ANY_VALUE[*]} " == *" $opt "* ]] && continue
        read -ra k <<<"$(kind_of "$cmd" "$opt")"
        [ ${#k[@]} -gt 0 ] || continue
        # Base arguments on the command line win over the file: keep the option under test out of them.
        grep -qE -- "--$opt( |$)" <<<"$(base_args "$cmd")" && continue
        case ${k[0]} in
            num|real|size)
                [ -n "${seen[${k[0]}]:-}" ] && continue
                seen[${k[0]}]=1
                cfg_case "$cmd" "$opt([^a-z0-9-]|$)" "" "$opt = abc\n"
                cfg_case "$cmd" "$opt([^a-z0-9-]|$)" "" "$opt = 99999999999999999999\n"
                cfg_case "$cmd" "$opt([^a-z0-9-]|$)" "" "$opt = -1\n"
                ;;
            enum|ipv4|peer|group|bind|control|bindgroup)
                [ -n "${seen[${k[0]}]:-}" ] && continue
                seen[${k[0]}]=1
                cfg_case "$cmd" "$opt([^a-z0-9-]|$)" "" "$opt = garbage\n"
                ;;
            flag)
                [ -n "$firstflag" ] && continue
                firstflag=$opt
                cfg_case "$cmd" "$opt([^a-z0-9-]|$)" "" "$opt = maybe\n"
                ;;
        esac
    done <<<"$(list_options "$cmd")"
    unset seen
    cfg_case "$cmd" "no-such-key" "" "no-such-key = 1\n"
    cfg_case "$cmd" "config" "" "config = $TMP/other.ini\n"
    cfg_case "$cmd" "help" "" "help = 1\n"
    cfg_case "$cmd" "\.ini" "" "this line is not a key and a value\n"
    cfg_case "$cmd" "\.ini" "" "[unclosed section\n"
    cfg_case "$cmd" "\.ini" "" "= 5\n"
    read -ra cb <<<"$(base_args "$cmd")"
    run_case "$cmd" "missing\.ini" "" -- "${cb[@]}" --config "$TMP/missing.ini"
    run_case "$cmd" "nodir/c\.ini" "" -- "${cb[@]}" --config "$TMP/nodir/c.ini"
    run_case "$cmd" "adir" "" -- "${cb[@]}" --config "$TMP/adir"
    run_case "$cmd" "noperm\.file" nobody -- "${cb[@]}" --config "$TMP/noperm.file"
done

# A flag in a config file is true or false: `json = false` must not turn --json on.
printf 'json = false\n' >"$TMP/flag.ini"
if ! (cd "$TMP/work" && timeout "$LIMIT" "$SEQCAST" stat --config "$TMP/flag.ini" --count 1 --dir "$TMP/shm" 2>&1) | grep -q '^pid '; then
    fail "stat with 'json = false' in its config file did not print the table"
fi
printf 'json = true\n' >"$TMP/flag.ini"
if ! (cd "$TMP/work" && timeout "$LIMIT" "$SEQCAST" stat --config "$TMP/flag.ini" --dir "$TMP/shm" 2>&1) | grep -q '^{'; then
    fail "stat with 'json = true' in its config file did not print JSON"
fi

# --- summary ------------------------------------------------------------------------------------------
[ $HAVE_PYTHON = 1 ] || echo "note: no python3: the port-in-use cases were left out"
[ "${AS_OTHER[0]:-}" = none ] &&
    echo "note: running as root and nobody cannot run a copy of seqcast in $TMP (${NOBODY_WHY:-no reason given}): permission cases skipped"
printf '\n%-10s %6s %7s %8s\n' subcommand cases passed skipped
total=0 passed=0
for cmd in "${COMMANDS[@]}"; do
    printf '%-10s %6d %7d %8d\n' "$cmd" "${CASES[$cmd]}" "${PASSED[$cmd]}" "${SKIPPED[$cmd]}"
    total=$((total + CASES[$cmd])) passed=$((passed + PASSED[$cmd]))
done
printf '%-10s %6d %7d\n' all "$total" "$passed"
if [ "$fails" -ne 0 ]; then echo "$fails check(s) failed"; exit 1; fi
echo "bad input: all checks passed"
