#!/usr/bin/env bash
# Chaos soak: a whole stream on a Linux bridge, every process in its own network namespace
# (sequencer, archiver, 2 publishers, 3 subscribers of which sub3 runs in exactly-once mode),
# nftables dropping 1-5 % of the UDP datagrams arriving at each namespace (the rate redrawn per
# namespace every few seconds), and processes SIGKILLed at random and restarted on their own
# state: the sequencer on its --state file, the archiver on its log, publishers on their
# --journal, sub1/sub2 with --from (one past the last offset they printed) --archiver, sub3 on
# its --commit-file. When the chaos phase ends, the last incarnations finish, the stream ends,
# and the test checks, from the tools' own outputs:
#   - the archive: `seqcast dump --verify` finds a contiguous, CRC-valid log of offsets 0..head;
#   - the reference stream (`seqcast replay` of 0..head from the archiver): offsets increasing,
#     every publisher's pub_seqs exactly 1..M, each once (every confirmed publish once);
#   - sub1 and sub2 (their printed output across incarnations) are byte-identical to it;
#   - sub3's digest and message count (carried across restarts in its commit file) equal it;
#   - no loss notice anywhere, the final publisher runs confirmed everything.
# Then it prints a table: faults injected, messages, repairs, replays, delays, lost/duplicated/
# reordered (all 0).
#
# usage: chaos_soak.sh /path/to/seqcast [--duration SECONDS] [--seed N]
#   --duration: length of the chaos phase (default 165 s: about 3 minutes in all)
#   --seed: seeds the fault schedule (victims, intervals, down times, loss rates); default 1.
#     Timing still varies run to run, but the same seed replays the same schedule.
# Disk: the archive (256 MiB at least) and the sequencer's state (~64 MiB) plus ~3 MB per second
# of chaos for the printed streams (sub1, sub2 and the reference), all under $TMP.
# Environment: SEQCAST_CHAOS_DURATION, SEQCAST_CHAOS_SEED (same as the flags);
# SEQCAST_IT_KEEP=1 keeps the logs and streams (lib.sh).
# Needs root, iproute2 and nftables (else SKIP).
. "$(dirname "$0")/archiver_lib.sh" "$@"

DURATION=${SEQCAST_CHAOS_DURATION:-165}
SEED=${SEQCAST_CHAOS_SEED:-1}
shift
while [[ $# -gt 0 ]]; do
    case $1 in
        --duration) DURATION=${2:?--duration needs seconds}; shift 2 ;;
        --seed) SEED=${2:?--seed needs a number}; shift 2 ;;
        *) echo "usage: $0 /path/to/seqcast [--duration SECONDS] [--seed N]" >&2; exit 2 ;;
    esac
done
[[ $DURATION =~ ^[0-9]+$ && $DURATION -ge 20 ]] || die "--duration must be a number of seconds >= 20"
[[ $SEED =~ ^[0-9]+$ ]] || die "--seed must be a non-negative integer"

[[ $(id -u) -eq 0 ]] || skip "needs root for network namespaces and nftables"
command -v ip >/dev/null || skip "iproute2 (ip) is not installed"
command -v nft >/dev/null || skip "nftables (nft) is not installed"

# Traffic: pub1 small messages (many per datagram), pub2 large ones (fragmented across the MTU).
RATE1=800
SIZE1=8-200
RATE2=100
SIZE2=16-2400
WINDOW=512   # see kernel_loss_netns.sh: a 4096 window resent whole floods the sequencer
LIMIT=$((DURATION + 400))
SHM_DIR=/dev/shm/seqcast
# Archive: the whole run (~250 kB/s of datagrams) twice over, whole 4 MiB segments, 256 MiB at least.
ARCH_SIZE_MB=$(((DURATION * 500 / 1024 / 4 + 1) * 4))
((ARCH_SIZE_MB < 256)) && ARCH_SIZE_MB=256
# Long deadlines: a gap may have to wait out a sequencer or archiver restart; it must be
# repaired, never declared lost.
NAK_DEADLINE_MS=60000

# ---- topology -------------------------------------------------------------------------------
# One namespace holds the bridge; every process gets a namespace with eth0 on it.
TAG="cs$$r$((RANDOM % 1000))"
declare -A IP=([seq]=10.78.0.1 [arch]=10.78.0.2 [pub1]=10.78.0.11 [pub2]=10.78.0.12
    [sub1]=10.78.0.21 [sub2]=10.78.0.22 [sub3]=10.78.0.23)
NODES=(seq arch pub1 pub2 sub1 sub2 sub3)
mkns() {
    ip netns add "$1" 2>"$TMP/netns.err" || skip "cannot create network namespaces: $(cat "$TMP/netns.err")"
    NETNS+=("$1")
    ip -n "$1" link set lo up
}
mkns "$TAG-br"
ip -n "$TAG-br" link add br0 type bridge 2>"$TMP/br.err" || skip "cannot create a Linux bridge: $(cat "$TMP/br.err")"
ip -n "$TAG-br" link set br0 type bridge mcast_snooping 0
ip -n "$TAG-br" link set br0 up
k=0
for n in "${NODES[@]}"; do
    k=$((k + 1))
    mkns "$TAG-$n"
    ip -n "$TAG-br" link add "p$k" type veth peer name eth0 netns "$TAG-$n" || die "veth for $n"
    ip -n "$TAG-br" link set "p$k" master br0 up
    ip -n "$TAG-$n" addr add "${IP[$n]}/24" dev eth0
    ip -n "$TAG-$n" link set eth0 up
    ip -n "$TAG-$n" route add 239.0.0.0/8 dev eth0
    # Loss: a rule in the input hook drops a share of the UDP datagrams that arrive on eth0,
    # counted in a named counter that outlives the rule's replacements.
    ip netns exec "$TAG-$n" nft -f - 2>"$TMP/nft.err" <<EOF || skip "nftables does not work here: $(cat "$TMP/nft.err")"
add table inet chaos
add counter inet chaos dropped
add chain inet chaos in { type filter hook input priority 0; }
EOF
done

# set_loss NODE PERMILLE: replace NODE's drop rule (0: no loss).
set_loss() {
    local rule=""
    (($2 > 0)) && rule="add rule inet chaos in iifname \"eth0\" meta l4proto udp numgen random mod 1000 < $2 counter name dropped drop"
    printf 'flush chain inet chaos in\n%s\n' "$rule" | ip netns exec "$TAG-$1" nft -f - || die "nft: cannot set loss in $1"
}
nft_dropped() {
    ip netns exec "$TAG-$1" nft list counter inet chaos dropped 2>/dev/null | sed -n 's/.*packets \([0-9]*\).*/\1/p' | head -n 1
}

CONTROL=${IP[seq]}:40000
GROUP=239.78.0.1:40001
ARCHIVER=${IP[arch]}:40100
ARCHIVE_LOG=$TMP/archive.seqlog

# ---- processes and their incarnations -------------------------------------------------------
# Each role (seq, arch, pub1, ...) runs as incarnations ROLE.1, ROLE.2, ...; CUR[role] is the live one.
declare -A CUR=() NINC=()
CHAOS_END_NS=0
launch() {
    local role=$1 name extra=()
    NINC[$role]=$((${NINC[$role]:-0} + 1))
    name=$role.${NINC[$role]}
    CUR[$role]=$name
    case $role in
        seq)
            start_ns "$name" "$TAG-seq" $LIMIT "$SEQCAST" sequencer --control "$CONTROL" --group "$GROUP" \
                --interface "${IP[seq]}" --state "$TMP/seq.state"
            ;;
        arch)
            start_ns "$name" "$TAG-arch" $LIMIT "$SEQCAST" archiver --group "$GROUP" --control "$ARCHIVER" \
                --interface "${IP[arch]}" --log "$ARCHIVE_LOG" --size "${ARCH_SIZE_MB}M" --segment 4M \
                --nak-deadline-ms $NAK_DEADLINE_MS
            wait_until 20 "archiver $name serves replays" archiver_ready "$name" || die "archiver $name did not start"
            ;;
        pub1 | pub2)
            # Offer until the chaos phase ends (at least 1 s), then wait for the last confirmations.
            local i=${role#pub} rate=$RATE1 size=$SIZE1 left
            [[ $i == 2 ]] && { rate=$RATE2; size=$SIZE2; }
            left=$(((CHAOS_END_NS - $(date +%s%N)) / 1000000000))
            ((left < 1)) && left=1
            start_ns "$name" "$TAG-$role" $LIMIT "$SEQCAST" pub --sequencer "$CONTROL" --bind "${IP[$role]}:0" \
                --interface "${IP[$role]}" --id "$i" --journal "$TMP/$role.journal" --rate "$rate" --size "$size" \
                --seed "$((SEED * 10 + ${NINC[$role]}))" --window $WINDOW --duration "$left" --linger 90 --json "$TMP/$name.json"
            ;;
        sub1 | sub2)
            # Resume one past the last offset printed (complete lines) by earlier incarnations.
            if ((NINC[$role] > 1)); then
                local last
                last=$(last_offset "$role")
                extra=(--from "$((${last:--1} + 1))")
            fi
            start_ns "$name" "$TAG-$role" $LIMIT "$SEQCAST" sub --group "$GROUP" --interface "${IP[$role]}" \
                --archiver "$ARCHIVER" "${extra[@]}" --print --exit-on-eos --json "$TMP/$name.json" \
                --nak-deadline-ms $NAK_DEADLINE_MS --reorder-buffer 256M
            ;;
        sub3)
            start_ns "$name" "$TAG-$role" $LIMIT "$SEQCAST" sub --group "$GROUP" --interface "${IP[$role]}" \
                --archiver "$ARCHIVER" --mode exactly-once --commit-file "$TMP/sub3.commit" --verify --exit-on-eos \
                --json "$TMP/$name.json" --nak-deadline-ms $NAK_DEADLINE_MS --reorder-buffer 256M
            ;;
    esac
}
# trim_partial NAME: a SIGKILLed subscriber's output may end in a partial line (stdio buffer): cut it.
trim_partial() {
    local f=$TMP/$1.out size partial
    [[ -s $f ]] || return 0
    [[ -z $(tail -c 1 "$f") ]] && return 0
    size=$(stat -c %s "$f")
    partial=$(tail -n 1 "$f" | wc -c)
    truncate -s $((size - partial)) "$f"
}
# last_offset ROLE: the offset of the last complete line any incarnation of ROLE printed.
last_offset() {
    local i f
    for ((i = NINC[$1] - 1; i >= 1; i--)); do
        f=$TMP/$1.$i.out
        [[ -s $f ]] && { tail -n 1 "$f" | cut -d' ' -f1; return; }
    done
}

# Counters summed over every incarnation: sampled just before a kill and at the end.
declare -A SUM=()
SUB_FIELDS=(gaps_detected gap_offsets_repaired naks_sent naks_suppressed drop_duplicate epoch_changes)
SEQ_FIELDS=(naks_received retransmits retransmits_unavailable messages_out pub_acks_sent drop_duplicate)
ARCH_FIELDS=(replays_started replay_datagrams_out naks_received retransmits gaps_detected gap_offsets_repaired)
PUB_FIELDS=(pub_retransmits back_pressure messages_confirmed)
sample() {
    local role=$1 p line f fields
    p=$(seqcast_pid "${CUR[$role]}") || return 0
    line=$("$SEQCAST" stat --json 2>/dev/null | sed 's/{"pid":/\n{"pid":/g' | grep "^{\"pid\":$p,")
    case $role in
        seq) fields=("${SEQ_FIELDS[@]}") ;;
        arch) fields=("${ARCH_FIELDS[@]}") ;;
        pub*) fields=("${PUB_FIELDS[@]}") ;;
        *) fields=("${SUB_FIELDS[@]}") ;;
    esac
    for f in "${fields[@]}"; do
        v=$(grep -o "\"$f\":[0-9]*" <<<"$line" | head -n 1 | cut -d: -f2)
        SUM[$role.$f]=$((${SUM[$role.$f]:-0} + ${v:-0}))
    done
}
sum_subs() {   # sum_subs FIELD: over sub1..3
    echo $((${SUM[sub1.$1]:-0} + ${SUM[sub2.$1]:-0} + ${SUM[sub3.$1]:-0}))
}

# kill_role ROLE: SIGKILL the live incarnation (sampling its counters first).
declare -A KILLS=()
kill_role() {
    local role=$1 name=${CUR[$1]} p
    exited "$name" && die "$name exited on its own (status ${RC[$name]}) before the chaos killed it"
    p=$(seqcast_pid "$name") || die "no seqcast process for $name"
    sample "$role"
    kill -KILL "$p"
    wait_exit "$name" 10 2>/dev/null || die "$name survived SIGKILL"
    rm -f "$SHM_DIR/$p-"*.ctr   # a killed process leaves its counters file behind
    [[ $role == sub1 || $role == sub2 ]] && trim_partial "$name"
    KILLS[$role]=$((${KILLS[$role]:-0} + 1))
}

heard() {
    local r p v
    for r in arch sub1 sub2 sub3; do
        p=$(seqcast_pid "${CUR[$r]}") || return 1
        v=$(counter "$p" heartbeats_received)
        [[ ${v:-0} -gt 0 ]] || return 1
    done
}
delivered_some() {
    local r p v
    for r in sub1 sub2 sub3; do
        p=$(seqcast_pid "${CUR[$r]}") || return 1
        v=$(counter "$p" messages_in)
        [[ ${v:-0} -gt 0 ]] || return 1
    done
    [[ -s $TMP/sub1.1.out && -s $TMP/sub2.1.out ]]
}

# ---- run ------------------------------------------------------------------------------------
RANDOM=$SEED
echo "chaos_soak: seed $SEED (rerun with --seed $SEED), chaos phase ${DURATION}s; namespaces $TAG-*"
log "sequencer $CONTROL -> $GROUP via bridge; archiver $ARCHIVER (${ARCH_SIZE_MB} MiB); pub1 $RATE1 msg/s ($SIZE1 B), pub2 $RATE2 msg/s ($SIZE2 B); sub3 exactly-once"
LOSS_CHANGES=0
LOSS_MIN=1000
LOSS_MAX=0
redraw_loss() {
    local n pm desc=""
    for n in "${NODES[@]}"; do
        pm=$((10 + RANDOM % 41))
        set_loss "$n" "$pm"
        ((pm < LOSS_MIN)) && LOSS_MIN=$pm
        ((pm > LOSS_MAX)) && LOSS_MAX=$pm
        desc="$desc $n $((pm / 10)).$((pm % 10))%"
    done
    LOSS_CHANGES=$((LOSS_CHANGES + 1))
    echo "$(date +%s) $desc" >>"$TMP/loss-schedule.txt"
}
redraw_loss
CHAOS_END_NS=$(($(date +%s%N) + (DURATION + 5) * 1000000000))
launch seq
launch arch
launch sub1
launch sub2
launch sub3
wait_until 20 "the archiver and the subscribers hear the sequencer across the bridge" heard ||
    die "no heartbeat crossed the bridge"
# The first publishers offer until the chaos phase ends. It starts once the subscribers delivered
# something (20 s at most): their --duration covers that wait, so no kill finds one that simply
# finished (a busy host once spent 20 s starting the other roles, and pub1 ended before the chaos).
CHAOS_END_NS=$(($(date +%s%N) + (DURATION + 21) * 1000000000))
launch pub1
launch pub2
wait_until 20 "every subscriber delivered (and sub1/sub2 printed) something" delivered_some ||
    die "the subscribers delivered nothing within 20 s"
CHAOS_START_NS=$(date +%s%N)
CHAOS_END_NS=$((CHAOS_START_NS + DURATION * 1000000000))
log "chaos for ${DURATION}s: SIGKILL + restart at random, loss 1-5 % per namespace redrawn every 3-8 s"

# Victims: each subscriber and publisher, the archiver and the sequencer; sub3 (exactly-once) twice as often.
VICTIMS=(seq arch pub1 pub2 sub1 sub2 sub3 sub3)
FAULTS=0
next_loss=$((CHAOS_START_NS + (3 + RANDOM % 6) * 1000000000))
next_kill=$((CHAOS_START_NS + (2 + RANDOM % 3) * 1000000000))
while :; do
    now=$(date +%s%N)
    ((now >= CHAOS_END_NS)) && break
    if ((now >= next_loss)); then
        redraw_loss
        next_loss=$((now + (3 + RANDOM % 6) * 1000000000))
    fi
    # A kill only where the victim's restart fits in the chaos phase (down 0.2-2.0 s).
    if ((now >= next_kill)); then
        victim=${VICTIMS[RANDOM % ${#VICTIMS[@]}]}
        down_ms=$((200 + RANDOM % 1801))
        if ((now + (down_ms + 3000) * 1000000 < CHAOS_END_NS)); then
            kill_role "$victim"
            FAULTS=$((FAULTS + 1))
            echo "$(printf '%6.1f' "$(echo "($(date +%s%N) - $CHAOS_START_NS) / 1000000000" | bc -l)")s kill ${CUR[$victim]}, down ${down_ms} ms" >>"$TMP/kill-schedule.txt"
            sleep "$((down_ms / 1000)).$(printf '%03d' $((down_ms % 1000)))"
            launch "$victim"
        fi
        next_kill=$(($(date +%s%N) + (2000 + RANDOM % 3001) * 1000000))
    fi
    # Every process not killed by us must still run.
    for r in "${NODES[@]}"; do
        [[ $r == pub* ]] && continue
        exited "${CUR[$r]}" && die "${CUR[$r]} exited on its own (status ${RC[${CUR[$r]}]}) during the chaos phase"
    done
    sleep 0.2
done
log "chaos over: $FAULTS kills ($(for r in "${!KILLS[@]}"; do printf '%s %s, ' "$r" "${KILLS[$r]}"; done | sed 's/, $//'))"
sed 's/^/  /' "$TMP/kill-schedule.txt" 2>/dev/null | head -n 100

# ---- drain ----------------------------------------------------------------------------------
# The last publisher incarnations stop offering now and wait for their last confirmations (loss continues).
for r in pub1 pub2; do
    wait_exit "${CUR[$r]}" 120 || die "${CUR[$r]} still running 120 s after the chaos phase"
done
SEQ_PID=$(seqcast_pid "${CUR[seq]}") || die "no sequencer"
HEAD=$(counter "$SEQ_PID" head_offset)
log "publishers done (exit ${RC[${CUR[pub1]}]} ${RC[${CUR[pub2]}]}); stream head $HEAD"
caught_up() {
    local r p v
    for r in sub1 sub2 sub3; do
        p=$(seqcast_pid "${CUR[$r]}") || return 1
        v=$(counter "$p" head_offset)
        ((${v:-0} >= HEAD)) || return 1
    done
    p=$(seqcast_pid "${CUR[arch]}") || return 1
    v=$(counter "$p" archive_next)
    ((${v:-0} >= HEAD))
}
if ! wait_until 120 "the subscribers and the archiver reach offset $HEAD" caught_up; then
    for r in sub1 sub2 sub3; do log "  ${CUR[$r]} head_offset $(counter "$(seqcast_pid "${CUR[$r]}")" head_offset)"; done
    log "  ${CUR[arch]} archive_next $(counter "$(seqcast_pid "${CUR[arch]}")" archive_next)"
    echo "CHECK FAILED: not every subscriber and the archiver caught up with the stream head $HEAD within 120 s"
    FAILURES=$((FAILURES + 1))
fi
for r in seq arch sub1 sub2 sub3; do sample "$r"; done
TOTAL_DROPS=0
for n in "${NODES[@]}"; do
    d=$(nft_dropped "$n")
    TOTAL_DROPS=$((TOTAL_DROPS + ${d:-0}))
    set_loss "$n" 0   # a clean end: the tail repairs and END_OF_STREAM pass (eos_lost.sh tests them lost)
done
stop "${CUR[seq]}" TERM 10 >/dev/null || true
check "${CUR[seq]} exit status (SIGTERM)" "${RC[${CUR[seq]}]:-x}" eq 0
for r in sub1 sub2 sub3; do
    n=${CUR[$r]}
    wait_exit "$n" 20 || { log "$n missed END_OF_STREAM"; stop "$n" TERM 10 >/dev/null || true; }
    check "$n exit status" "${RC[$n]:-x}" eq 0
    check "$n saw END_OF_STREAM" "$(json "$TMP/$n.json" end_of_stream)" == true
done

# ---- the reference: the archive -------------------------------------------------------------
REPLAY=(ip netns exec "$TAG-arch" timeout -k 5 300 "$SEQCAST" replay --archiver "$ARCHIVER" --bind "${IP[arch]}:0"
    --from 0 --to "$HEAD" --timeout 240)
"${REPLAY[@]}" --out "$TMP/ref.txt" --json "$TMP/ref.json" 2>"$TMP/replay.log"
check "replay of 0..$HEAD exit status" $? eq 0
REF_DIGEST_LINE=$("${REPLAY[@]}" --verify 2>>"$TMP/replay.log")
REF_DIGEST=$(sed -n 's/^digest \([0-9a-f]*\) messages .*/\1/p' <<<"$REF_DIGEST_LINE")
REF_MESSAGES=$(sed -n 's/^digest [0-9a-f]* messages \([0-9]*\).*/\1/p' <<<"$REF_DIGEST_LINE")
stop "${CUR[arch]}" TERM 20 >/dev/null || true
check "${CUR[arch]} exit status (SIGTERM)" "${RC[${CUR[arch]}]:-x}" eq 0
dump_range "$ARCHIVE_LOG"
check "archive dump --verify exit status" "$DUMP_RC" eq 0
check "archive dump problems" "${DUMP_PROBLEMS:-x}" eq 0
check "archive first offset" "${DUMP_FIRST:-x}" eq 0
check "archive next offset = stream head" "${DUMP_NEXT:-x}" eq "$HEAD"

# The reference stream: offsets increasing; per publisher pub_seq 1..M, each exactly once.
read -r REF_LINES REF_ORDER REF_DUPS REF_MISSING REF_PUBS PUB_MAX < <(awk '
    { if (NR > 1 && $1 + 0 <= last) order++; last = $1 + 0
      k = $2 " " $3; if (k in seen) dups++; else { seen[k] = 1; n[$2]++ }
      if ($3 + 0 > max[$2]) max[$2] = $3 + 0 }
    END { pubs = 0; miss = 0; desc = ""
          for (p in n) { pubs++; miss += max[p] - n[p]; desc = desc (desc == "" ? "" : ",") p ":" max[p] }
          printf "%d %d %d %d %d %s\n", NR, order, dups, miss, pubs, (desc == "" ? "-" : desc) }' "$TMP/ref.txt")
check "reference stream: messages (replay --out vs --verify)" "$REF_LINES" eq "${REF_MESSAGES:-x}"
check "reference stream: offsets in order" "$REF_ORDER" eq 0
check "reference stream: (publisher, pub_seq) duplicates" "$REF_DUPS" eq 0
check "reference stream: pub_seqs missing below each publisher's last" "$REF_MISSING" eq 0
check "reference stream: publishers" "$REF_PUBS" eq 2

# The publishers: the last incarnation of each confirmed everything; the stream holds exactly
# pub_seqs 1..(where it resumed + what it offered).
declare -A PUBMAX=()
for kv in ${PUB_MAX//,/ }; do PUBMAX[${kv%%:*}]=${kv#*:}; done
for r in pub1 pub2; do
    n=${CUR[$r]} i=${r#pub}
    f=$TMP/$n.json
    check "$n exit status" "${RC[$n]:-x}" eq 0
    check "$n complete" "$(json "$f" complete)" == true
    check "$n unconfirmed" "$(json "$f" unconfirmed)" eq 0
    resume=$(sed -n 's/.*resumes at pub_seq \([0-9]*\),.*/\1/p' "$TMP/$n.log")
    if [[ ${NINC[$r]} -eq 1 ]]; then resume=1; fi
    if [[ -n $resume ]]; then
        check "$r: last pub_seq in the stream = last one offered" "${PUBMAX[$i]:-x}" eq $((resume - 1 + $(json "$f" offered)))
    fi
done

# ---- the subscribers ------------------------------------------------------------------------
# sub1/sub2: their incarnations' printed lines, in order, must be the reference stream.
declare -A LOST=() DUP=() REORD=() MSGS=() MATCH=()
for r in sub1 sub2; do
    : >"$TMP/$r.all"
    for ((i = 1; i <= NINC[$r]; i++)); do cat "$TMP/$r.$i.out" >>"$TMP/$r.all"; done
    # duplicated: an offset delivered before; reordered: a new offset below the previous one.
    read -r MSGS[$r] REORD[$r] DUP[$r] < <(awk '{ o = $1 + 0; if (o in seen) d++; else if (NR > 1 && o < last) r++; seen[o] = 1; last = o }
        END { printf "%d %d %d\n", NR, r, d }' "$TMP/$r.all")
    LOST[$r]=$(awk 'NR == FNR { s[$1] = 1; next } !($1 in s) { l++ } END { print l + 0 }' "$TMP/$r.all" "$TMP/ref.txt")
    if cmp -s "$TMP/$r.all" "$TMP/ref.txt"; then MATCH[$r]=identical; else MATCH[$r]=DIFFERENT; fi
    check "$r stream identical to the archive's" "${MATCH[$r]}" == identical
    check "$r lost" "${LOST[$r]}" eq 0
    check "$r duplicated" "${DUP[$r]}" eq 0
    check "$r reordered" "${REORD[$r]}" eq 0
done
# sub3 (exactly-once): digest and count carried across restarts must be the reference's.
f=$TMP/${CUR[sub3]}.json
MSGS[sub3]=$(json "$f" messages)
D3=$(digest_of "$TMP/${CUR[sub3]}.out")
if [[ ${D3:-none} == "${REF_DIGEST:-missing}" ]]; then MATCH[sub3]="identical (digest)"; else MATCH[sub3]="DIFFERENT (digest)"; fi
LOST[sub3]=$(json "$f" lost_offsets)
# Equal digests over (offset, publisher, pub_seq, length, payload) of the same count: nothing
# duplicated or reordered; the last incarnation's own checks as well.
DUP[sub3]=$(($(json "$f" messages) > REF_LINES ? $(json "$f" messages) - REF_LINES : 0))
REORD[sub3]=$(($(json "$f" order_violations) + $(json "$f" fifo_violations)))
check "sub3 digest equals the archive's" "${D3:-none}" == "${REF_DIGEST:-missing}"
check "sub3 messages" "${MSGS[sub3]:-x}" eq "$REF_LINES"
check "sub3 lost" "${LOST[sub3]:-x}" eq 0
check "sub3 order/fifo violations" "${REORD[sub3]:-x}" eq 0
check "sub3 first offset = the reference's" "$(json "$f" first_offset)" eq "$(head -n 1 "$TMP/ref.txt" | cut -d' ' -f1)"
check "sub3 last offset = the reference's" "$(json "$f" last_offset)" eq "$(tail -n 1 "$TMP/ref.txt" | cut -d' ' -f1)"
EO_RESUMES=$(cat "$TMP"/sub3.*.log | grep -c 'exactly-once: resuming')
check "sub3 restarts resumed from the commit file" "$EO_RESUMES" eq $((NINC[sub3] - 1))
LOSS_LINES=$(cat "$TMP"/sub*.log "$TMP"/arch.*.log | grep -c 'LOSS offsets')
check "loss notices (subscribers, archiver)" "$LOSS_LINES" eq 0
[[ $LOSS_LINES -gt 0 ]] && grep -h -m 3 'LOSS offsets' "$TMP"/sub*.log "$TMP"/arch.*.log | sed 's/^/    /'

# Delays, from the last incarnation of each subscriber (no tool measures a gap's repair time
# itself): the largest sequencer -> deliver time (repairs, including those that waited for a
# sequencer restart, and the catch-up replay after the incarnation's own start) and the largest
# publish -> deliver time (that plus publisher resends across sequencer outages).
max_ms() {   # max_ms KEY: the largest max_ns of histogram KEY over the last incarnations, in ms
    local r v m=0
    for r in sub1 sub2 sub3; do
        v=$(grep -o "\"$1\":{[^}]*}" "$TMP/${CUR[$r]}.json" | grep -o '"max_ns":[0-9]*' | cut -d: -f2)
        v=$((${v:-0} / 1000000))
        ((v > m)) && m=$v
    done
    echo "$m"
}
MAX_SEQ_SUB_MS=$(max_ms hop_seq_to_sub)
MAX_E2E_MS=$(max_ms latency)
REPLAYS=$(( ${SUM[arch.replays_started]:-0} ))

# ---- the table ------------------------------------------------------------------------------
echo
echo "chaos_soak summary (seed $SEED, chaos ${DURATION}s)"
printf '  %-34s %s\n' "faults injected" "$FAULTS SIGKILL+restart: seq ${KILLS[seq]:-0}, arch ${KILLS[arch]:-0}, pub1 ${KILLS[pub1]:-0}, pub2 ${KILLS[pub2]:-0}, sub1 ${KILLS[sub1]:-0}, sub2 ${KILLS[sub2]:-0}, sub3 ${KILLS[sub3]:-0}"
printf '  %-34s %s\n' "" "$LOSS_CHANGES loss redraws, $((LOSS_MIN / 10)).$((LOSS_MIN % 10))-$((LOSS_MAX / 10)).$((LOSS_MAX % 10)) % per namespace; nftables dropped $TOTAL_DROPS datagrams"
printf '  %-34s %s\n' "messages" "$REF_LINES (offsets 0..$((HEAD - 1)); pub_seq max per publisher $PUB_MAX), digest $REF_DIGEST"
printf '  %-34s %s\n' "repairs (subscribers)" "$(sum_subs gaps_detected) gaps, $(sum_subs gap_offsets_repaired) offsets repaired, $(sum_subs naks_sent) NAKs ($(sum_subs naks_suppressed) suppressed)"
printf '  %-34s %s\n' "repairs (sequencer, archiver)" "sequencer: ${SUM[seq.naks_received]:-0} NAKs, ${SUM[seq.retransmits]:-0} retransmits; archiver: ${SUM[arch.gaps_detected]:-0} gaps, ${SUM[arch.gap_offsets_repaired]:-0} offsets repaired"
printf '  %-34s %s\n' "replays (archiver)" "$REPLAYS replay sessions started, ${SUM[arch.replay_datagrams_out]:-0} replay datagrams; ${SUM[arch.retransmits]:-0} NAK repairs from the archive"
printf '  %-34s %s\n' "publisher resends" "pub1 $((${SUM[pub1.pub_retransmits]:-0} + $(json "$TMP/${CUR[pub1]}.json" resent))), pub2 $((${SUM[pub2.pub_retransmits]:-0} + $(json "$TMP/${CUR[pub2]}.json" resent))) (all incarnations)"
printf '  %-34s %s\n' "max repair time" "$MAX_SEQ_SUB_MS ms sequencer->deliver ($MAX_E2E_MS ms publish->deliver), last incarnations"
printf '  %-6s %-12s %10s %6s %6s %6s  %s\n' who incarnations messages lost dup reord stream
for r in sub1 sub2 sub3; do
    printf '  %-6s %-12s %10s %6s %6s %6s  %s\n' "$r" "${NINC[$r]}" "${MSGS[$r]}" "${LOST[$r]}" "${DUP[$r]}" "${REORD[$r]}" "${MATCH[$r]}"
done
printf '  %-34s %s\n' "archive" "dump --verify rc $DUMP_RC, offsets ${DUMP_FIRST:-?}..$((${DUMP_NEXT:-0} - 1)), $DUMP_RECORDS records, $DUMP_PROBLEMS problems"
finish
