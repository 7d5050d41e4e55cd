#!/usr/bin/env bash
# High availability with real parts: a 3-member etcd cluster, two hot-standby sequencers (--ha),
# two publishers (one journaled) that know both sequencers, three subscribers and an archiver,
# every process in its own network namespace on a Linux bridge, nftables dropping 1% of the UDP
# datagrams reaching the sequencers and the subscribers. While the publishers run, the leader is
# failed over and over:
#   kill       SIGKILL; restarted on its state file, it rejoins as a standby
#   stop       SIGSTOP for 1 s (a zombie), then SIGCONT: it must find its leadership gone and
#              step down by itself (exit 3); its late datagrams are dropped by the subscribers
#   partition  nftables cuts its namespace off (etcd included); it must step down (exit 3)
#   etcd       one etcd member is SIGKILLed mid-run and later restarted
# Checks: every subscriber and the archive hold exactly the published messages, in order, each
# once (same digest, 0 lost); each failover took place with a new epoch; the zombies and the
# partitioned leaders stepped down; takeover times (from the old leader's last datagram to the new
# leader leading) over all failovers: p50 and max printed (reported, not asserted).
#
# usage: ha_failover.sh /path/to/seqcast   (needs root, iproute2, nftables and etcd; else SKIP)
. "$(dirname "$0")/lib.sh" "$@"
. "$(dirname "$0")/archiver_lib.sh"

FAILOVERS=${SEQCAST_IT_FAILOVERS:-22}
RATE=${SEQCAST_IT_RATE:-2000}
TAKEOVER_MS=${SEQCAST_IT_TAKEOVER_MS:-50}
LIMIT=400

[[ $(id -u) -eq 0 ]] || skip "needs root for network namespaces and nftables"
command -v ip >/dev/null || skip "iproute2 (ip) is not installed"
command -v nft >/dev/null || skip "nftables (nft) is not installed"
command -v etcd >/dev/null || skip "etcd is not installed (Debian: etcd-server)"
command -v etcdctl >/dev/null || skip "etcdctl is not installed (Debian: etcd-client)"

pick_ports
pick_group
TAG="ha$$r$((RANDOM % 1000))"
BR=$TAG-br
mkns() {
    ip netns add "$1" 2>"$TMP/netns.err" || skip "cannot create network namespaces: $(cat "$TMP/netns.err")"
    NETNS+=("$1")
    ip -n "$1" link set lo up
}
mkns "$BR"
ip -n "$BR" link add br0 type bridge 2>"$TMP/br.err" || skip "cannot create a Linux bridge: $(cat "$TMP/br.err")"
ip -n "$BR" link set br0 type bridge mcast_snooping 0
ip -n "$BR" link set br0 up
node() {
    local ns=$TAG-$1
    mkns "$ns"
    ip -n "$BR" link add "p$2" type veth peer name eth0 netns "$ns" || die "veth for $1"
    ip -n "$BR" link set "p$2" master br0 up
    ip -n "$ns" addr add "10.77.0.$2/24" dev eth0
    ip -n "$ns" link set eth0 up
    ip -n "$ns" route add 239.0.0.0/8 dev eth0
}
in_ns() { local ns=$TAG-$1; shift; ip netns exec "$ns" "$@"; }
# lossy NAME PCT: nftables in NAME's namespace drops PCT% of the UDP datagrams it receives.
lossy() {
    { in_ns "$1" nft add table inet t &&
        in_ns "$1" nft add chain inet t in '{ type filter hook input priority 0; }' &&
        in_ns "$1" nft add rule inet t in meta l4proto udp numgen random mod 100 '<' "$2" counter drop; } \
        2>"$TMP/nft.err" || skip "nftables does not work here: $(cat "$TMP/nft.err")"
}
nft_dropped() { in_ns "$1" nft list chain inet t in 2>/dev/null | sed -n 's/.*counter packets \([0-9]*\).*/\1/p' | head -n 1; }
# partition NAME / heal NAME: every packet into and out of NAME's namespace dropped (loopback aside).
partition() {
    in_ns "$1" nft add table inet part
    in_ns "$1" nft add chain inet part in '{ type filter hook input priority -10; policy accept; }'
    in_ns "$1" nft add chain inet part out '{ type filter hook output priority -10; policy accept; }'
    in_ns "$1" nft add rule inet part in iifname != lo drop
    in_ns "$1" nft add rule inet part out oifname != lo drop
}
heal() { in_ns "$1" nft delete table inet part 2>/dev/null || true; }

# ---- etcd: three members, one per namespace
ETCD_IPS=(10.77.0.31 10.77.0.32 10.77.0.33)
CLUSTER=""
for i in 1 2 3; do CLUSTER+="${CLUSTER:+,}e$i=http://${ETCD_IPS[$((i - 1))]}:2380"; done
ENDPOINTS=""
for ip in "${ETCD_IPS[@]}"; do ENDPOINTS+="${ENDPOINTS:+,}http://$ip:2379"; done
start_etcd() {
    local i=$1 ip=${ETCD_IPS[$(($1 - 1))]}
    start_ns "etcd$i" "$TAG-etcd$i" $LIMIT etcd --name "e$i" --data-dir "$TMP/etcd$i" \
        --listen-client-urls "http://$ip:2379" --advertise-client-urls "http://$ip:2379" \
        --listen-peer-urls "http://$ip:2380" --initial-advertise-peer-urls "http://$ip:2380" \
        --initial-cluster "$CLUSTER" --initial-cluster-state "${2:-new}" --initial-cluster-token "$TAG" \
        --heartbeat-interval 50 --election-timeout 500
}
for i in 1 2 3; do node "etcd$i" $((30 + i)); done
for i in 1 2 3; do start_etcd "$i"; done
etcdctl_() { in_ns pub1 env ETCDCTL_API=3 etcdctl --endpoints "$ENDPOINTS" --command-timeout=2s "$@"; }
etcd_ready() { etcdctl_ endpoint health >/dev/null 2>&1; }

# ---- the stream
node seqa 1
node seqb 2
node arch 5
node pub1 11
node pub2 12
for i in 1 2 3; do node "sub$i" $((20 + i)); done
wait_until 30 "the etcd cluster is healthy" etcd_ready || die "etcd did not become healthy"
lossy seqa 1
lossy seqb 1
lossy arch 1
for i in 1 2 3; do lossy "sub$i" 1; done

GROUP=$GROUP_ADDR:$((PORT + 1))
declare -A SEQ_IP=([a]=10.77.0.1 [b]=10.77.0.2)
SEQUENCERS=10.77.0.1:$PORT,10.77.0.2:$PORT
RESTARTS=0
start_seq() {
    local n=$1
    RESTARTS=$((RESTARTS + 1))
    # Each incarnation its own log (the name carries a count): every takeover line is kept.
    SEQ_NAME[$n]="seq$n-$RESTARTS"
    start_ns "${SEQ_NAME[$n]}" "$TAG-seq$n" $LIMIT "$SEQCAST" sequencer --ha "$ENDPOINTS" --name "$n" \
        --control "${SEQ_IP[$n]}:$PORT" --group "$GROUP" --interface "${SEQ_IP[$n]}" --repl "${SEQ_IP[$n]}:$((PORT + 2))" \
        --state "$TMP/seq$n.state" --ring 64M --takeover-ms "$TAKEOVER_MS" --isr-timeout-ms 200
}
leader_name() { etcdctl_ get --print-value-only /seqcast/streams/1/leader 2>/dev/null | sed -n 's/^name=\([^;]*\);.*/\1/p'; }
leader_epoch() { etcdctl_ get -w fields /seqcast/streams/1/leader 2>/dev/null | sed -n 's/^"ModRevision" : //p'; }
leader_is() { [[ $(leader_name) == "$1" ]]; }
isr_has_both() { [[ $(etcdctl_ get --print-value-only /seqcast/streams/1/isr 2>/dev/null) == "a,b" ]]; }
declare -A SEQ_NAME=()
start_seq a
wait_until 20 "a leads the new stream" leader_is a || die "a did not take the lead of the new stream"
start_seq b
wait_until 30 "both sequencers are in the in-sync set" isr_has_both || die "the in-sync set never held both sequencers"
log "etcd $ENDPOINTS; sequencers a and b (leader $(leader_name), epoch $(leader_epoch)); stream $GROUP; 1% loss into every sequencer, subscriber and the archiver"
# The stream directory, as `seqcast stat --ha` shows it.
in_ns pub1 "$SEQCAST" stat --ha "$ENDPOINTS" --json >"$TMP/directory.json" 2>"$TMP/directory.log" || die "seqcast stat --ha failed"
check "directory: leader" "$(json "$TMP/directory.json" leader)" == "$(leader_name)"
check "directory: group" "$(json "$TMP/directory.json" group)" == "$GROUP"
check "directory: in-sync set" "$(grep -o '"in_sync":"[^"]*"' "$TMP/directory.json" | cut -d'"' -f4)" == "a,b"
check "directory: epoch" "$(json "$TMP/directory.json" epoch)" eq "$(leader_epoch)"
check "directory: a head" "$(json "$TMP/directory.json" head)" ge 0

start_ns arch "$TAG-arch" $LIMIT "$SEQCAST" archiver --group "$GROUP" --interface 10.77.0.5 --control "10.77.0.5:$((PORT + 4))" \
    --log "$TMP/arch.log.bin" --size 256M --reorder-buffer 256M
# sub1 and sub2 are given the group; sub3 finds it in etcd's stream directory (--ha).
for i in 1 2 3; do
    where=(--group "$GROUP")
    ((i == 3)) && where=(--ha "$ENDPOINTS")
    start_ns "sub$i" "$TAG-sub$i" $LIMIT "$SEQCAST" sub "${where[@]}" --interface "10.77.0.$((20 + i))" \
        --verify --json "$TMP/sub$i.json" --reorder-buffer 256M --nak-deadline-ms 10000 --idle-timeout 60
done
heard() {
    local i p v
    for i in 1 2 3; do
        p=$(seqcast_pid "sub$i") || return 1
        v=$(counter "$p" heartbeats_received)
        [[ ${v:-0} -gt 0 ]] || return 1
    done
}
wait_until 20 "subscribers hear the leader" heard || die "the subscribers did not hear the leader"

# Publishers run for the whole test: enough messages for every failover and a margin.
N=$((RATE * (FAILOVERS * 3 + 20)))
start_ns pub1 "$TAG-pub1" $LIMIT "$SEQCAST" pub --sequencer "$SEQUENCERS" --bind "10.77.0.11:0" --interface 10.77.0.11 \
    --rate "$RATE" --count "$N" --size 16-512 --window 512 --seed 1 --journal "$TMP/pub1.journal" --json "$TMP/pub1.json" --linger 120
# pub1 is given both sequencers' addresses; pub2 finds them in etcd's stream directory (--ha).
start_ns pub2 "$TAG-pub2" $LIMIT "$SEQCAST" pub --ha "$ENDPOINTS" --bind "10.77.0.12:0" --interface 10.77.0.12 \
    --rate "$RATE" --count "$N" --size 16-512 --window 512 --seed 2 --json "$TMP/pub2.json" --linger 120
TOTAL=$((2 * N))
log "publishers: 2 x $N messages at $RATE msg/s each, knowing both sequencers (pub2 from etcd); $FAILOVERS failovers follow"
sleep 2

# ---- failovers
KINDS=()
for ((k = 0; k < FAILOVERS; k++)); do
    case $((k % 11)) in
        2 | 7) KINDS+=(stop) ;;
        4 | 9) KINDS+=(partition) ;;
        *) KINDS+=(kill) ;;
    esac
done
STEPPED_DOWN=0
ZOMBIES=0
EPOCHS=("$(leader_epoch)")
# A supervisor's job: a sequencer that stepped down by itself (exit 3: a standby took over from it
# after it was slow for --takeover-ms on this loaded host, a spurious but safe failover) is started
# again. Any other exit fails the test.
SPURIOUS=0
revive() {
    local n
    for n in a b; do
        if exited "${SEQ_NAME[$n]}"; then
            check "${SEQ_NAME[$n]} exits only by stepping down (exit 3)" "${RC[${SEQ_NAME[$n]}]}" eq 3
            log "${SEQ_NAME[$n]} stepped down by itself (a spurious failover): restarted"
            SPURIOUS=$((SPURIOUS + 1))
            start_seq "$n"
        fi
    done
}
in_sync() {
    revive
    isr_has_both
}
for ((k = 0; k < FAILOVERS; k++)); do
    wait_until 30 "both sequencers in sync before failover $((k + 1))" in_sync || die "no standby in sync before failover $((k + 1))"
    old=$(leader_name)
    [[ $old == a || $old == b ]] || die "no leader before failover $((k + 1))"
    new=$([[ $old == a ]] && echo b || echo a)
    name=${SEQ_NAME[$old]}
    pid=$(seqcast_pid "$name") || die "the leader's process ($name) is gone"
    kind=${KINDS[$k]}
    if ((k == 5)); then
        log "SIGKILL etcd member e2 (the cluster keeps its quorum)"
        kill_tree "${PID[etcd2]}"
        wait_exit etcd2 5 || die "etcd member e2 survived SIGKILL"
    fi
    if ((k == 12)); then
        log "etcd member e2 restarts"
        start_etcd 2 existing
    fi
    case $kind in
        kill)
            kill -KILL "$pid"
            wait_exit "$name" 10 || die "$name survived SIGKILL"
            ;;
        stop)
            kill -STOP "$pid"
            sleep 1
            kill -CONT "$pid"
            ZOMBIES=$((ZOMBIES + 1))
            # The zombie finds its leadership gone and steps down by itself.
            if wait_exit "$name" 10; then
                check "zombie $name steps down (exit 3)" "${RC[$name]}" eq 3
                STEPPED_DOWN=$((STEPPED_DOWN + 1))
            else
                check "zombie $name steps down within 10 s" running == exited
                stop "$name" KILL 5 >/dev/null
            fi
            ;;
        partition)
            partition "seq$old"
            if wait_exit "$name" 10; then
                check "partitioned leader $name steps down (exit 3)" "${RC[$name]}" eq 3
                STEPPED_DOWN=$((STEPPED_DOWN + 1))
            else
                check "partitioned leader $name steps down within 10 s" running == exited
                stop "$name" KILL 5 >/dev/null
            fi
            heal "seq$old"
            ;;
    esac
    wait_until 20 "$new leads after failover $((k + 1)) ($kind of $old)" leader_is "$new" || die "$new did not take over"
    EPOCHS+=("$(leader_epoch)")
    took=$(grep 'took over from' "$TMP/${SEQ_NAME[$new]}.log" 2>/dev/null | tail -n 1 | sed -n 's/.*takeover \([0-9.]*\) ms.*/\1/p')
    log "failover $((k + 1)): $kind of $old -> $new leads, epoch ${EPOCHS[-1]}, takeover ${took:-?} ms"
    start_seq "$old"
done

for i in 1 2; do wait_exit "pub$i" 300 || die "publisher $i still running"; done
log "publishers done (exit ${RC[pub1]} ${RC[pub2]})"
for i in 1 2; do
    check "pub$i exit" "${RC[pub$i]}" eq 0
    check "pub$i confirmed all" "$(json "$TMP/pub$i.json" confirmed)" eq "$N"
done
SUBPIDS=()
for i in 1 2 3; do SUBPIDS+=("$(seqcast_pid "sub$i")"); done
delivered_all() {
    local p v
    for p in "${SUBPIDS[@]}"; do
        v=$(counter "$p" messages_in)
        [[ -z $v ]] && continue
        ((v >= TOTAL)) || return 1
    done
}
wait_until 60 "every subscriber delivered $TOTAL messages" delivered_all || true
ARCH_PID=$(seqcast_pid arch) || die "the archiver is gone"
archived_all() {
    local v
    v=$(counter "$ARCH_PID" archive_next)
    [[ -n $v ]] && ((v >= TOTAL))
}
wait_until 60 "the archiver recorded $TOTAL offsets" archived_all || true
WRONG_EPOCH=0
for p in "${SUBPIDS[@]}"; do
    v=$(counter "$p" drop_wrong_epoch)
    WRONG_EPOCH=$((WRONG_EPOCH + ${v:-0}))
done
for i in 1 2 3; do stop "sub$i" INT 20 >/dev/null; done

# ---- checks
REF=""
for i in 1 2 3; do
    j=$TMP/sub$i.json
    log "sub$i: $(json "$j" messages) messages, digest $(digest_of "$TMP/sub$i.out"), lost $(json "$j" lost_offsets), epochs changed $(json "$j" epoch_changes) times, order violations $(json "$j" order_violations), fifo violations $(json "$j" fifo_violations)"
    check "sub$i messages" "$(json "$j" messages)" eq "$TOTAL"
    check "sub$i lost offsets" "$(json "$j" lost_offsets)" eq 0
    check "sub$i order violations" "$(json "$j" order_violations)" eq 0
    check "sub$i fifo violations" "$(json "$j" fifo_violations)" eq 0
    check "sub$i gets the group its way" "$(grep -c 'from etcd: group' "$TMP/sub$i.log")" eq $((i == 3 ? 1 : 0))
    check "sub$i offsets 0..TOTAL-1" "$(json "$j" last_offset)" eq $((TOTAL - 1))
    check "sub$i saw every epoch change" "$(json "$j" epoch_changes)" ge "$FAILOVERS"
    d=$(digest_of "$TMP/sub$i.out")
    check "sub$i digest present" "${d:-none}" != none
    [[ -z $REF ]] && REF=$d
    check "sub$i digest equals sub1's" "$d" == "$REF"
done
start_ns replay "$TAG-sub1" 60 "$SEQCAST" replay --archiver "10.77.0.5:$((PORT + 4))" --bind 10.77.0.21:0 --from 0 --to "$TOTAL" --verify
wait_exit replay 70 || die "replay from the archiver did not finish"
check "archive replay exit" "${RC[replay]}" eq 0
check "archive digest equals the subscribers'" "$(digest_of "$TMP/replay.out")" == "$REF"
check "archive messages" "$(messages_of "$TMP/replay.out")" eq "$TOTAL"

# Every failover moved to a higher epoch.
increasing=1
for ((k = 1; k < ${#EPOCHS[@]}; k++)); do ((EPOCHS[k] > EPOCHS[k - 1])) || increasing=0; done
check "epochs increase with every failover (${EPOCHS[*]})" "$increasing" eq 1
check "zombies and partitioned leaders stepped down" "$STEPPED_DOWN" eq $((ZOMBIES + $(printf '%s\n' "${KINDS[@]}" | grep -c partition)))
check "the zombies' late datagrams were dropped by the subscribers (drop_wrong_epoch)" "$WRONG_EPOCH" gt 0
DROPPED=0
for n in seqa seqb arch sub1 sub2 sub3; do DROPPED=$((DROPPED + $(nft_dropped "$n"))); done
check "nftables dropped datagrams" "$DROPPED" gt 0

# Takeover times, from every new leader's log.
grep -h 'took over from' "$TMP"/seq?-*.log | sed -n 's/.*takeover \([0-9.]*\) ms.*/\1/p' | sort -n >"$TMP/takeover.txt"
TAKEOVERS=$(wc -l <"$TMP/takeover.txt")
P50=$(awk '{v[NR]=$1} END {if (NR) print v[int((NR+1)/2)]}' "$TMP/takeover.txt")
MAX=$(tail -n 1 "$TMP/takeover.txt")
log "takeovers: $TAKEOVERS ($SPURIOUS spurious, --takeover-ms $TAKEOVER_MS), from the old leader's last datagram to the new leader leading: p50 ${P50:-?} ms, max ${MAX:-?} ms; nftables dropped $DROPPED datagrams; subscribers dropped $WRONG_EPOCH datagrams of older epochs"
check "takeovers logged" "$TAKEOVERS" ge "$FAILOVERS"
# The times are reported, not asserted (a loaded host stretches them; the issue's goals, p50 under
# 100 ms and max under 1 s, are judged from this line).
finish
