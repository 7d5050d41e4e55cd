# Shared helpers for seqcast's multi-process integration tests (meson suite 'slow').
#
# Source it from a test script that was called with the seqcast binary as $1:
#   . "$(dirname "$0")/lib.sh" "$@"
# It sets SEQCAST (absolute path), TMP (a private temp dir) and a trap that, on any exit, kills
# only the processes this test started (and their children), deletes the network namespaces it
# created, prints the tail of every log on failure, and removes TMP. Exit 77 means SKIP.
#
# Every process is started under `timeout`, and every wait is bounded.
# SEQCAST_IT_KEEP=1 keeps TMP (logs, JSON summaries, state files) for a post-mortem.

set -u
set -o pipefail

if [[ $# -lt 1 || -z ${1:-} ]]; then
    echo "usage: $0 /path/to/seqcast" >&2
    exit 2
fi
SEQCAST=$(readlink -f "$1")
if [[ ! -x $SEQCAST ]]; then
    echo "FAIL: seqcast binary '$1' is not executable" >&2
    exit 1
fi
TEST_NAME=$(basename "$0" .sh)
TMP=$(mktemp -d "/tmp/seqcast-it-$TEST_NAME-XXXXXX")
T0=$(date +%s.%N)

declare -A PID=()     # name -> pid of the process we started (the `timeout` wrapper)
declare -A RC=()      # name -> exit status, once reaped
STARTED=()            # every pid we started, in order
NETNS=()              # network namespaces we created
FAILURES=0

log() { printf '[%6.1fs] %s\n' "$(echo "$(date +%s.%N) - $T0" | bc)" "$*"; }

# skip REASON: the environment cannot run this test.
skip() {
    echo "SKIP: $*"
    exit 77
}

# die REASON: fatal failure now.
die() {
    echo "FAIL: $*" >&2
    exit 1
}

# Children of a pid (the seqcast process under `timeout`, for example).
children_of() {
    cat /proc/"$1"/task/*/children 2>/dev/null | tr ' ' '\n' | grep -v '^$' || true
}

# Kills the whole tree below (and including) pid, leaves first, with SIGKILL.
kill_tree() {
    local p c
    for c in $(children_of "$1"); do kill_tree "$c"; done
    kill -KILL "$1" 2>/dev/null || true
}

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    local p
    for p in "${STARTED[@]}"; do kill_tree "$p"; done
    for p in "${STARTED[@]}"; do wait "$p" 2>/dev/null || true; done
    local ns
    for ns in "${NETNS[@]}"; do ip netns del "$ns" 2>/dev/null || true; done
    if [[ $rc -ne 0 && $rc -ne 77 ]]; then
        echo "---- $TEST_NAME failed (exit $rc); last lines of each log in $TMP ----" >&2
        local f
        for f in "$TMP"/*.log "$TMP"/*.json; do
            [[ -f $f ]] || continue
            echo "== $(basename "$f")" >&2
            tail -n 15 "$f" | cut -c1-400 >&2
        done
    fi
    if [[ -n ${SEQCAST_IT_KEEP:-} ]]; then
        echo "(SEQCAST_IT_KEEP: kept $TMP)" >&2
    else
        rm -rf "$TMP"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# SEQCAST_IT_TRANSPORT=uring (or udp) runs every seqcast sequencer, pub, sub, archiver and replay
# of the test with --transport uring; finish() then fails if any of them fell back.
with_transport() {
    local a prev=""
    CMD=()
    for a in "$@"; do
        CMD+=("$a")
        if [[ -n ${SEQCAST_IT_TRANSPORT:-} && $prev == "$SEQCAST" && $a =~ ^(sequencer|pub|sub|archiver|replay)$ ]]; then
            CMD+=(--transport "$SEQCAST_IT_TRANSPORT")
        fi
        prev=$a
    done
}

# start NAME LIMIT_S CMD...: run CMD in the background under `timeout LIMIT_S`, stdout to
# $TMP/NAME.out, stderr to $TMP/NAME.log. The pid of the wrapper is in PID[NAME].
start() {
    local name=$1 limit=$2
    shift 2
    with_transport "$@"
    timeout -k 5 "$limit" "${CMD[@]}" >"$TMP/$name.out" 2>"$TMP/$name.log" &
    PID[$name]=$!
    STARTED+=("$!")
    unset 'RC[$name]'
}

# start_ns NAME NETNS LIMIT_S CMD...: the same inside a network namespace.
start_ns() {
    local name=$1 ns=$2 limit=$3
    shift 3
    with_transport "$@"
    ip netns exec "$ns" timeout -k 5 "$limit" "${CMD[@]}" >"$TMP/$name.out" 2>"$TMP/$name.log" &
    PID[$name]=$!
    STARTED+=("$!")
    unset 'RC[$name]'
}

# true when the process started as NAME has exited (it is reaped and RC[NAME] set).
exited() {
    local name=$1 p=${PID[$1]}
    [[ -n ${RC[$name]+x} ]] && return 0
    local state
    state=$(sed -n 's/^[0-9]* (.*) \([A-Z]\) .*/\1/p' /proc/"$p"/stat 2>/dev/null)
    if [[ -z $state || $state == Z ]]; then
        local r=0
        wait "$p" 2>/dev/null || r=$?
        RC[$name]=$r
        return 0
    fi
    return 1
}

# wait_exit NAME TIMEOUT_S: wait for NAME to exit; 0 if it did (RC[NAME] holds its status).
wait_exit() {
    local name=$1 deadline
    deadline=$(($(date +%s%N) + ${2} * 1000000000))
    while ! exited "$name"; do
        (($(date +%s%N) >= deadline)) && return 1
        sleep 0.1
    done
    return 0
}

# stop NAME SIGNAL TIMEOUT_S: send SIGNAL to NAME's seqcast process (or its wrapper) and wait;
# SIGKILL to the whole tree if it has not exited by then. Returns the exit status.
stop() {
    local name=$1 sig=$2 t=$3 p
    exited "$name" && return "${RC[$name]}"
    p=$(seqcast_pid "$name")
    kill -"$sig" "${p:-${PID[$name]}}" 2>/dev/null || true
    if ! wait_exit "$name" "$t"; then
        log "$name did not exit within ${t}s of SIG$sig: killing it"
        kill_tree "${PID[$name]}"
        wait_exit "$name" 5 || true
    fi
    return "${RC[$name]:-255}"
}

# seqcast_pid NAME: the pid of the seqcast process itself (below `ip netns exec`/`timeout`).
seqcast_pid() {
    local p=${PID[$1]} i c
    for ((i = 0; i < 50; i++)); do
        for c in $(children_of "$p"); do
            if [[ $(readlink /proc/"$c"/exe 2>/dev/null) == "$SEQCAST" ]]; then
                echo "$c"
                return 0
            fi
        done
        exited "$1" && return 1
        sleep 0.05
    done
    return 1
}

# json FILE FIELD: the first value of "FIELD" in a single-line JSON file (strings unquoted).
json() {
    grep -o "\"$2\":[^,}]*" "$1" 2>/dev/null | head -n 1 | cut -d: -f2- | tr -d '"'
}

# show_losses NAME: the first loss notices a subscriber logged (when it reported any).
show_losses() {
    local n
    n=$(grep -c 'LOSS offsets' "$TMP/$1.log" 2>/dev/null)
    if [[ ${n:-0} -gt 0 ]]; then
        echo "  $1 logged $n loss notices, first ones:"
        grep -m 3 'LOSS offsets' "$TMP/$1.log" | sed 's/^/    /'
    fi
}

# counter PID NAME: one shared-memory counter of a live seqcast process (from `seqcast stat --json`).
counter() {
    "$SEQCAST" stat --json 2>/dev/null | sed 's/{"pid":/\n{"pid":/g' | grep "^{\"pid\":$1," |
        grep -o "\"$2\":[0-9]*" | head -n 1 | cut -d: -f2
}

# need_counter VAR PID NAME: VAR := one counter of a live seqcast process; the test fails now when
# it cannot be read (the process is gone, or has no such counter), rather than reading it as 0.
need_counter() {
    local v
    v=$(counter "$2" "$3")
    [[ $v =~ ^[0-9]+$ ]] || die "cannot read counter $3 of pid ${2:-?} (process gone?)"
    printf -v "$1" '%s' "$v"
}

# wait_until TIMEOUT_S DESCRIPTION CMD...: poll CMD every 0.1 s until it succeeds.
wait_until() {
    local t=$1 what=$2 deadline
    shift 2
    deadline=$(($(date +%s%N) + t * 1000000000))
    until "$@"; do
        if (($(date +%s%N) >= deadline)); then
            log "timed out after ${t}s waiting for: $what"
            return 1
        fi
        sleep 0.1
    done
}

# Random ports and groups, so concurrent tests and other users of the host never collide.
rand32() { echo $(((RANDOM << 15) | RANDOM)); }
port_free() { ! ss -Hlun 2>/dev/null | awk '{print $4}' | grep -q ":$1\$"; }
# pick_ports: PORT (even, control) and PORT+1 (group) both free.
pick_ports() {
    local i
    for ((i = 0; i < 50; i++)); do
        PORT=$((20000 + ($(rand32) % 20000) * 2))
        port_free "$PORT" && port_free $((PORT + 1)) && return 0
    done
    die "no free UDP port pair found"
}
pick_group() { GROUP_ADDR="239.$((RANDOM % 254 + 1)).$((RANDOM % 256)).$((RANDOM % 254 + 1))"; }

# check LABEL ACTUAL OP EXPECTED (OP: eq ne gt ge lt le, or == != for strings): record a failure.
check() {
    local label=$1 a=$2 op=$3 e=$4 ok=1
    case $op in
        ==) [[ $a == "$e" ]] || ok=0 ;;
        !=) [[ $a != "$e" ]] || ok=0 ;;
        *) [[ $a =~ ^-?[0-9]+$ ]] && [ "$a" "-$op" "$e" ] || ok=0 ;;
    esac
    if ((ok == 0)); then
        echo "CHECK FAILED: $label: got '$a', expected $op $e"
        FAILURES=$((FAILURES + 1))
    fi
}

# finish: exit 0 if no check failed, else 1.
finish() {
    local secs
    secs=$(echo "$(date +%s.%N) - $T0" | bc)
    if [[ -n ${SEQCAST_IT_TRANSPORT:-} ]] && grep -l "transport unavailable" "$TMP"/*.log 2>/dev/null; then
        echo "FAIL: some processes fell back from --transport $SEQCAST_IT_TRANSPORT (logs above)"
        FAILURES=$((FAILURES + 1))
    fi
    if ((FAILURES > 0)); then
        printf 'FAIL: %s: %d check(s) failed (%.1f s)\n' "$TEST_NAME" "$FAILURES" "$secs"
        exit 1
    fi
    printf 'PASS: %s (%.1f s)\n' "$TEST_NAME" "$secs"
    exit 0
}
