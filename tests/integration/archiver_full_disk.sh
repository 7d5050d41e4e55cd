#!/usr/bin/env bash
# A disk too small for the log: the archiver preallocates its whole ring at start, so it says so
# at once (exit 1, a message naming the file and the space) instead of failing in the middle of
# recording; and a log that exists is never damaged by a failed start.
# usage: archiver_full_disk.sh /path/to/seqcast
set -u
SEQCAST=${1:?usage: archiver_full_disk.sh path/to/seqcast}
[ "$(id -u)" -eq 0 ] || { echo "SKIP: needs root to mount a small tmpfs"; exit 77; }
MNT=$(mktemp -d /tmp/seqcast-fulldisk-XXXXXX)
if ! mount -t tmpfs -o size=24m tmpfs "$MNT" 2>/dev/null; then
    rmdir "$MNT"
    echo "SKIP: cannot mount a tmpfs here"
    exit 77
fi
cleanup() { umount "$MNT" 2>/dev/null; rmdir "$MNT" 2>/dev/null; }
trap cleanup EXIT
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
PORT=$((20000 + RANDOM % 20000 * 2))
GROUP="239.$((RANDOM % 200 + 20)).$((RANDOM % 250 + 1)).$((RANDOM % 250 + 1)):$((PORT + 1))"

# 1. A 64 MiB log on a 24 MiB filesystem: refused at start, clearly.
out=$(timeout 30 "$SEQCAST" archiver --group "$GROUP" --control 127.0.0.1:$PORT --log "$MNT/big.log" --size 64M --segment 4M \
      --duration 5 2>&1); rc=$?
echo "big log: exit $rc: $out" | head -3
[ "$rc" -eq 1 ] || fail "archiver with a log larger than the disk exited $rc, expected 1"
grep -q "No space left" <<<"$out" || fail "the message does not say the disk is full"
grep -q "$MNT/big.log" <<<"$out" || fail "the message does not name the log file"
[ ! -e "$MNT/big.log" ] || fail "a partial log file was left behind"

# 2. A log that fits is created, recorded into and closed cleanly; the disk then fills up; the
#    archiver restarts on its log (already allocated) and the log still verifies.
timeout 30 "$SEQCAST" archiver --group "$GROUP" --control 127.0.0.1:$PORT --log "$MNT/ok.log" --size 16M --segment 4M \
    --duration 2 >/dev/null 2>"$MNT/a1.log"; rc=$?
[ "$rc" -eq 0 ] || fail "archiver with a fitting log exited $rc: $(tail -2 "$MNT/a1.log")"
dd if=/dev/zero of="$MNT/filler" bs=1M count=64 status=none 2>/dev/null  # fills the rest (dd stops at ENOSPC)
timeout 30 "$SEQCAST" archiver --group "$GROUP" --control 127.0.0.1:$PORT --log "$MNT/ok.log" --size 16M --segment 4M \
    --duration 2 >/dev/null 2>"$MNT/a2.log"; rc=$?
[ "$rc" -eq 0 ] || fail "archiver restarted on its preallocated log on a full disk exited $rc: $(tail -2 "$MNT/a2.log")"
timeout 30 "$SEQCAST" dump --log "$MNT/ok.log" --verify >"$MNT/dump.txt" 2>&1 || fail "dump --verify of the log failed: $(cat "$MNT/dump.txt")"

if [ "$fails" -ne 0 ]; then echo "$fails check(s) failed"; exit 1; fi
echo "PASS: archiver_full_disk"
