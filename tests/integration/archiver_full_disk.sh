#!/usr/bin/env bash
# A disk too small for the log, and a disk that fills up while the archiver records.
#  1. A log larger than the file system: the archiver preallocates its whole ring at start, so it
#     says so at once (exit 1, naming the file and the space) and leaves no partial file.
#  2. A log that fits is created; the file system then fills up; the archiver restarts on its log
#     (already allocated, so it needs no space) and the log still verifies.
#  3. Recording into a disk that runs out of space mid-stream: a thin-provisioned file system (ext4
#     on a loop device whose backing file lives on a small tmpfs), so the preallocation succeeds
#     but the blocks run out while a sequencer, a publisher and the archiver record a real stream.
#     The archiver must stop recording with a clear error and exit 1, and a restarted archiver
#     recovers what reached the disk (no gap records) and replays all of it. The disk must hold
#     every offset the archiver vouched for (through its last successful fdatasync) and the log
#     must pass dump --verify. The archiver writes with --direct, so the failing write itself
#     reports the full disk; the offset it last wrote may run past what the disk holds, which is
#     why it vouches only through its last fdatasync.
# Needs root (mounts); SKIPs with the reason otherwise.
# usage: archiver_full_disk.sh /path/to/seqcast
. "$(dirname "$0")/archiver_lib.sh" "$@"

[[ $(id -u) -eq 0 ]] || skip "needs root to mount a small tmpfs and a loop device"
MNT=$TMP/small
BACK=$TMP/back
THIN=$TMP/thin
mkdir -p "$MNT" "$BACK" "$THIN"
LOOP=
unmount_all() {
    local p
    for p in "${STARTED[@]}"; do kill_tree "$p"; done
    for p in "${STARTED[@]}"; do wait "$p" 2>/dev/null || true; done
    mountpoint -q "$THIN" && umount "$THIN"
    [[ -n $LOOP ]] && losetup -d "$LOOP" 2>/dev/null
    # The loop device lets go of its backing file asynchronously: retry, then detach lazily.
    local i
    for ((i = 0; i < 50; i++)); do
        mountpoint -q "$BACK" || break
        umount "$BACK" 2>/dev/null || sleep 0.1
    done
    mountpoint -q "$BACK" && umount -l "$BACK"
    mountpoint -q "$MNT" && umount "$MNT"
}
trap 'rc=$?; unmount_all; (exit $rc); cleanup' EXIT
mount -t tmpfs -o size=24m tmpfs "$MNT" 2>/dev/null || skip "cannot mount a tmpfs here"
pick_ports
pick_group
GROUP=$GROUP_ADDR:$((PORT + 1))

# 1. A 64 MiB log on a 24 MiB file system: refused at start, clearly.
out=$(timeout 30 "$SEQCAST" archiver --group "$GROUP" --control 127.0.0.1:$PORT --log "$MNT/big.log" --size 64M --segment 4M \
      --duration 5 2>&1); rc=$?
echo "big log: exit $rc: $out" | head -3
check "archiver with a log larger than the disk: exit" "$rc" eq 1
grep -q "No space left" <<<"$out" || check "the message says the disk is full" no == yes
grep -q "$MNT/big.log" <<<"$out" || check "the message names the log file" no == yes
[[ ! -e $MNT/big.log ]] || check "no partial log file left behind" no == yes

# 2. A log that fits is created and closed cleanly (no stream: nothing recorded); the file system
#    then fills up; the archiver restarts on its log (already allocated) and the log still verifies.
timeout 30 "$SEQCAST" archiver --group "$GROUP" --control 127.0.0.1:$PORT --log "$MNT/ok.log" --size 16M --segment 4M \
    --duration 2 >/dev/null 2>"$TMP/a1.log"; rc=$?
check "archiver with a fitting log: exit" "$rc" eq 0
dd if=/dev/zero of="$MNT/filler" bs=1M count=64 status=none 2>/dev/null  # fills the rest (dd stops at ENOSPC)
timeout 30 "$SEQCAST" archiver --group "$GROUP" --control 127.0.0.1:$PORT --log "$MNT/ok.log" --size 16M --segment 4M \
    --duration 2 >/dev/null 2>"$TMP/a2.log"; rc=$?
check "archiver restarted on its preallocated log on a full disk: exit" "$rc" eq 0
timeout 30 "$SEQCAST" dump --log "$MNT/ok.log" --verify >"$TMP/dump-ok.txt" 2>&1
check "dump --verify of the restarted log: exit" "$?" eq 0

# 3. The disk fills while recording. 16 MiB of real space (the tmpfs) behind a 64 MiB ext4.
mount -t tmpfs -o size=16m tmpfs "$BACK" || die "cannot mount the backing tmpfs"
truncate -s 64M "$BACK/img"
command -v mkfs.ext4 >/dev/null && command -v losetup >/dev/null || skip "needs mkfs.ext4 and losetup for a thin file system"
LOOP=$(losetup --find --show "$BACK/img" 2>/dev/null) || skip "no loop device available"
# One page per request: a loop device completes a write its backing file took only in part as if it
# were whole (the kernel retries short reads only), so when the tmpfs fills in the middle of a
# multi-page request, fdatasync vouches for bytes that were never stored (seen: the disk held
# [0, 7252), the archiver's last fdatasync covered 7257). A one-page write into tmpfs is stored
# whole or fails, so every byte this disk says it stored, it stored.
echo 4 >"/sys/block/$(basename "$LOOP")/queue/max_sectors_kb" ||
    skip "cannot limit $LOOP to one-page requests: a fuller tmpfs would silently drop part of a write"
mkfs.ext4 -q -F -E nodiscard,lazy_itable_init=0 "$LOOP" >/dev/null 2>&1 || die "mkfs.ext4 on $LOOP failed"
mount -o errors=remount-ro "$LOOP" "$THIN" || die "cannot mount $LOOP"
log "thin file system: $(df -h --output=size "$THIN" | tail -1) of ext4 on $(df -h --output=avail "$BACK" | tail -1) of real space"
ports_and_group
LIMIT=90
start_sequencer seq $LIMIT
start_archiver arch $LIMIT "$THIN/stream.log" --size 48M --segment 4M --direct
start sub $LIMIT "$SEQCAST" sub --group "$GROUP" --verify --json "$TMP/sub.json"
# 60000 messages of 1000 B (~60 MB): far more than the 16 MiB of real space.
start pub $LIMIT "$SEQCAST" pub --sequencer "$CONTROL" --rate 20000 --count 60000 --size 1000 --json "$TMP/pub.json"
wait_exit arch 60 || die "the archiver kept running on a full disk"
ARCH_RC=${RC[arch]}
log "archiver exited $ARCH_RC: $(grep -m1 'recording stopped' "$TMP/arch.log")"
check "archiver exit status on a full disk" "$ARCH_RC" eq 1
grep -q "recording stopped: .*\(No space left\|Input/output error\|Read-only\)" "$TMP/arch.log" ||
    check "the archiver says why it stopped recording" "$(tail -1 "$TMP/arch.log")" == "recording stopped: <the write error>"
STORED=$(sed -n 's/.*what is stored stays valid below offset \([0-9]*\).*/\1/p' "$TMP/arch.log" | head -1)
wait_exit pub 60 || stop pub TERM 10 || true
stop sub TERM 10 || true
stop seq TERM 10 || true

# What was stored stays valid: give the backing store room again, and look at the log through a
# fresh mount (what reached the disk, not the page cache).
mount -o remount,size=128m "$BACK"
umount "$THIN" || die "cannot unmount $THIN"
mount "$LOOP" "$THIN" || die "cannot mount $LOOP again"
dump_range "$THIN/stream.log"
log "stored: offsets [$DUMP_FIRST, $DUMP_NEXT), $DUMP_RECORDS records; archiver said valid through ${STORED:-?}"
echo "$DUMP_TEXT" | tail -5
# Everything the archiver vouched for (through its last successful fdatasync) is on the disk, and
# the log verifies: a write the file system took only part of is an error, not success (the
# unwritten rest once let a later fdatasync vouch for records that never reached the disk, and left a
# torn record inside the checkpointed range that dump --verify reported as damage).
log "dump --verify exit $DUMP_RC, ${DUMP_PROBLEMS:-?} problem(s); archiver vouched below ${STORED:-?}, the disk holds [$DUMP_FIRST, $DUMP_NEXT)"
check "dump --verify of the log left by a full disk: exit" "$DUMP_RC" eq 0
check "dump --verify problems" "${DUMP_PROBLEMS:-missing}" eq 0
check "the disk holds every offset the archiver vouched for (next offset on disk >= vouched next offset)" "${DUMP_NEXT:-0}" ge "${STORED:-missing}"
check "the archiver states the offset through which the log is valid" "${STORED:-missing}" ge 0
check "gap records in the log" "${DUMP_GAPS:-missing}" eq 0
check "something was recorded before the disk filled" "${DUMP_NEXT:-0}" gt 0
# And a restarted archiver (no stream now) replays what it stored.
start_archiver arch2 $LIMIT "$THIN/stream.log" --size 48M --segment 4M
"$SEQCAST" replay --archiver "$ARCHIVER" --from "${DUMP_FIRST:-0}" --to "${DUMP_NEXT:-1}" --verify --timeout 30 \
    --json "$TMP/replay.json" >"$TMP/replay.out" 2>"$TMP/replay.log"
check "replay of the stored offsets: exit" "$?" eq 0
check "replay messages: every stored record" "$(json "$TMP/replay.json" messages)" eq "${DUMP_RECORDS:-missing}"
check "replay lost_offsets" "$(json "$TMP/replay.json" lost_offsets)" eq 0
stop arch2 TERM 10 || true
finish
