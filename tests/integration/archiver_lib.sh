# Helpers for the archiver integration tests, on top of lib.sh (which this sources).
#
#   . "$(dirname "$0")/archiver_lib.sh" "$@"
#
# Adds: pick_port (one free UDP port), start_sequencer, start_archiver (waits until it serves
# replays), archiver_ready, dump_range (offset range and verdict of `seqcast dump --verify`),
# wait_counter_ge.

. "$(dirname "${BASH_SOURCE[0]}")/lib.sh" "$@"

# pick_port: ONE_PORT, a free UDP port in 20000..59999 that is not PORT or PORT+1.
pick_port() {
    local i p
    for ((i = 0; i < 50; i++)); do
        p=$((20000 + $(rand32) % 40000))
        [[ -n ${PORT:-} ]] && ((p == PORT || p == PORT + 1)) && continue
        port_free "$p" && { ONE_PORT=$p; return 0; }
    done
    die "no free UDP port found"
}

# ports_and_group: CONTROL (sequencer), GROUP (stream) and ARCHIVER (archiver service) on random
# ports and a random 239.x.y.z group.
ports_and_group() {
    pick_ports
    pick_group
    pick_port
    CONTROL=127.0.0.1:$PORT
    GROUP=$GROUP_ADDR:$((PORT + 1))
    ARCHIVER=127.0.0.1:$ONE_PORT
}

# start_sequencer NAME LIMIT_S [extra sequencer flags...]
start_sequencer() {
    local name=$1 limit=$2
    shift 2
    start "$name" "$limit" "$SEQCAST" sequencer --control "$CONTROL" --group "$GROUP" --state "$TMP/$name.state" "$@"
}

# archiver_ready NAME: its startup line ("... replays on HOST:PORT") is in its log.
archiver_ready() {
    grep -q "replays on" "$TMP/$1.log" 2>/dev/null
}

# start_archiver NAME LIMIT_S LOGFILE [extra archiver flags...]: start it and wait (20 s at most)
# until it has recovered its log and serves replays. The startup line is appended to
# $TMP/NAME.starts (the log is overwritten on a restart).
start_archiver() {
    local name=$1 limit=$2 logfile=$3
    shift 3
    if [[ -f $TMP/$name.log ]]; then cat "$TMP/$name.log" >>"$TMP/$name.history"; fi
    start "$name" "$limit" "$SEQCAST" archiver --group "$GROUP" --control "$ARCHIVER" --log "$logfile" "$@"
    if ! wait_until 20 "archiver $name serves replays" archiver_ready "$name"; then
        exited "$name" && log "archiver $name exited with ${RC[$name]}"
        die "archiver $name did not start"
    fi
}

# dump_range LOGFILE: runs `seqcast dump --log LOGFILE --verify --json`; sets DUMP_RC, DUMP_FIRST,
# DUMP_NEXT (one past the last offset), DUMP_RECORDS, DUMP_PROBLEMS, DUMP_GAPS (offsets recorded as
# never received; --verify fails on any) and DUMP_TEXT (its stdout).
dump_range() {
    local j=$TMP/dump.json
    rm -f "$j"
    DUMP_RC=0
    DUMP_TEXT=$(timeout -k 5 60 "$SEQCAST" dump --log "$1" --verify --json "$j" 2>&1) || DUMP_RC=$?
    DUMP_FIRST=$(json "$j" first_offset)
    DUMP_NEXT=$(json "$j" next_offset)
    DUMP_RECORDS=$(json "$j" records)
    DUMP_PROBLEMS=$(json "$j" problems)
    DUMP_GAPS=$(json "$j" gap_offsets)
}

# wait_counter_ge PID COUNTER VALUE TIMEOUT_S: poll a shared-memory counter until >= VALUE.
counter_ge() {
    local v
    v=$(counter "$1" "$2")
    [[ -n $v ]] && ((v >= $3))
}
wait_counter_ge() {
    wait_until "$4" "$2 of pid $1 >= $3" counter_ge "$1" "$2" "$3"
}

# digest_of FILE: the digest from a `--verify` output line "digest XXXXXXXX messages N".
digest_of() { sed -n 's/^digest \([0-9a-f]*\) messages .*/\1/p' "$1" | head -n 1; }
messages_of() { sed -n 's/^digest [0-9a-f]* messages \([0-9]*\).*/\1/p' "$1" | head -n 1; }
