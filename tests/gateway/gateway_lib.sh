# Shared by the gateway tests; sourced after ../integration/archiver_lib.sh.

# lossy_netns PREFIX RULE...: a network namespace ($NS, removed at exit) whose loopback carries
# multicast, with an nftables input chain in which each RULE (nft match words, e.g. "udp dport
# 4000") drops 2 % of what it matches and counts it. Skips the test, with the reason, where
# namespaces or nftables do not work.
lossy_netns() {
    local prefix=$1 rule
    shift
    NS="$prefix$$r$((RANDOM % 1000))"
    ip netns add "$NS" 2>"$TMP/netns.err" || skip "cannot create network namespaces: $(cat "$TMP/netns.err")"
    NETNS+=("$NS")
    ip -n "$NS" link set lo up
    ip -n "$NS" link set lo multicast on
    ip -n "$NS" route add 239.0.0.0/8 dev lo
    { ip netns exec "$NS" nft add table inet t &&
        ip netns exec "$NS" nft add chain inet t in '{ type filter hook input priority 0; }'; } 2>"$TMP/nft.err" ||
        skip "nftables does not work here: $(cat "$TMP/nft.err")"
    for rule in "$@"; do
        # A rule is several words: split on purpose.
        # shellcheck disable=SC2086
        ip netns exec "$NS" nft add rule inet t in $rule numgen random mod 100 '<' 2 counter drop 2>"$TMP/nft.err" ||
            skip "nftables does not work here: $(cat "$TMP/nft.err")"
    done
}

# nft_dropped: what the namespace's rules dropped, all rules together ('' if it cannot be read).
nft_dropped() {
    ip netns exec "$NS" nft list chain inet t in 2>/dev/null | sed -n 's/.*counter packets \([0-9]*\).*/\1/p' |
        awk '{ s += $1; n++ } END { if (n) print s }'
}

in_ns() { ip netns exec "$NS" "$@"; }

# stat_counter ROLE PID NAME: a counter of one process as `seqcast stat --json` shows it ('' if absent).
stat_counter() {
    "$SEQCAST" stat --json 2>/dev/null | python3 -c '
import json, sys
role, pid, name = sys.argv[1], int(sys.argv[2]), sys.argv[3]
for p in json.load(sys.stdin).get("processes", []):
    if p.get("role") == role and p.get("pid") == pid:
        print(p["counters"][name])
' "$1" "$2" "$3"
}
