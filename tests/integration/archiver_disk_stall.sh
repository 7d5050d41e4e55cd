#!/usr/bin/env bash
# The archiver rides out a disk that stops accepting writes for a while, without losing anything.
# Its log lives on a small ext4 file system (a loop device) that is frozen (`fsfreeze`) for
# SEQCAST_IT_STALL_MS (default 1500; with the counter reads around it the freeze lasts ~2.1 s) while a publisher sends 600000 messages of 1 KiB at 150k msg/s: every
# write and fdatasync blocks for the whole stall. The archiver must keep receiving into its
# in-memory backlog (--backlog, default 512M) meanwhile and write it out after the thaw: no gap
# record, its socket queue never overflowing, and a replay with the subscriber's digest. The
# socket queue (--rcvbuf 128M) holds ~140 MB of these datagrams; the stall brings ~350 MB, so the
# queue alone overflows (an archiver without the backlog lost or re-asked for a third of the stream). The stall, and a
# write blocked by it, are observed, not assumed: the test fails if the archiver's durable offset
# moved during the freeze or if the backlog counter never rose.
#
# usage: archiver_disk_stall.sh /path/to/seqcast
# Needs root (loop device, mount, fsfreeze); SKIPs with the reason otherwise.
# Environment (calibration only): SEQCAST_IT_STALL_MS (1500), SEQCAST_IT_MESSAGES (600000), SEQCAST_IT_RATE (150000).
. "$(dirname "$0")/archiver_lib.sh" "$@"

[[ $(id -u) -eq 0 ]] || skip "needs root to mount a loop device and freeze it"
for t in losetup mkfs.ext4 fsfreeze mountpoint; do
    command -v $t >/dev/null || skip "needs $t"
done
STALL_MS=${SEQCAST_IT_STALL_MS:-1500}
N=${SEQCAST_IT_MESSAGES:-600000}
RATE=${SEQCAST_IT_RATE:-150000}
LIMIT=300
MNT=$TMP/mnt
LOOP=
FROZEN=0
unmount_all() {
    [[ $FROZEN -eq 1 ]] && fsfreeze -u "$MNT" 2>/dev/null
    # The archiver holds the log open: it must be gone before the unmount.
    local p
    for p in "${STARTED[@]}"; do kill_tree "$p"; done
    for p in "${STARTED[@]}"; do wait "$p" 2>/dev/null || true; done
    mountpoint -q "$MNT" && umount "$MNT"
    [[ -n $LOOP ]] && losetup -d "$LOOP" 2>/dev/null
    true
}
trap 'rc=$?; unmount_all; (exit $rc); cleanup' EXIT

mkdir -p "$MNT"
truncate -s 1536M "$TMP/img"
LOOP=$(losetup --find --show "$TMP/img" 2>/dev/null) || skip "no loop device available"
mkfs.ext4 -q -F -E nodiscard "$LOOP" >/dev/null 2>&1 || die "mkfs.ext4 on $LOOP failed"
mount "$LOOP" "$MNT" 2>/dev/null || skip "cannot mount $LOOP here"
LOGFILE=$MNT/archive.seqlog

ports_and_group
log "sequencer $CONTROL, group $GROUP, archiver $ARCHIVER; $N messages of 1 KiB at $RATE msg/s; disk frozen for $STALL_MS ms"
start_sequencer seq $LIMIT --ring 256M
start_archiver arch $LIMIT "$LOGFILE" --size 1G
start sub $LIMIT "$SEQCAST" sub --group "$GROUP" --verify --messages "$N" --json "$TMP/sub.json"
SEQ_PID=$(seqcast_pid seq) || die "sequencer did not start"
ARCH_PID=$(seqcast_pid arch) || die "archiver did not start"
seqcast_pid sub >/dev/null || die "subscriber did not start"
sleep 0.5
start pub $LIMIT "$SEQCAST" pub --sequencer "$CONTROL" --rate $RATE --count "$N" --size 1024 --json "$TMP/pub.json"
# Freeze once the stream runs at full speed (a second in), thaw after the stall.
sleep 1
DURABLE_BEFORE=$(counter "$ARCH_PID" archive_durable)
fsfreeze -f "$MNT" || die "fsfreeze -f $MNT failed"
FROZEN=1
T_FREEZE=$(date +%s.%N)
sleep 0.2  # a write or sync that started before the freeze completes; then nothing moves
DURABLE_FROZEN=$(counter "$ARCH_PID" archive_durable)
sleep "$(echo "scale=3; $STALL_MS / 1000 - 0.2" | bc)"
DURABLE_LATE=$(counter "$ARCH_PID" archive_durable)
BACKLOG_PEAK=$(counter "$ARCH_PID" archive_backlog_bytes)
fsfreeze -u "$MNT" || die "fsfreeze -u $MNT failed"
FROZEN=0
log "thawed after $(echo "($(date +%s.%N) - $T_FREEZE) * 1000 / 1" | bc) ms: durable ${DURABLE_BEFORE:-?} before, ${DURABLE_FROZEN:-?} .. ${DURABLE_LATE:-?} while frozen; backlog ${BACKLOG_PEAK:-?} bytes at the end of it"
check "durable offset read while frozen" "${DURABLE_LATE:-x}" ge 0
check "the freeze stopped the archiver's writes (durable did not move in the last $((STALL_MS - 200)) ms)" "${DURABLE_LATE:-x}" eq "${DURABLE_FROZEN:-y}"
check "the archiver held a backlog in memory during the freeze (bytes)" "${BACKLOG_PEAK:-0}" gt $((RATE * 1024 * (STALL_MS - 200) / 1000 / 2))

wait_exit pub 200 || die "the publisher did not finish within 200 s"
check "publisher exit status" "${RC[pub]}" eq 0
wait_exit sub 120 || die "the subscriber did not deliver $N messages within 120 s of the publisher's end"
check "subscriber exit status" "${RC[sub]}" eq 0
HEAD=$(counter "$SEQ_PID" head_offset)
wait_counter_ge "$ARCH_PID" archive_durable "$HEAD" 120 || log "the archiver did not reach the head $HEAD within 120 s"
GAPS=$(counter "$ARCH_PID" archive_gap_offsets)
OVERFLOW=$(counter "$ARCH_PID" gaps_detected)
log "archiver: next $(counter "$ARCH_PID" archive_next), durable $(counter "$ARCH_PID" archive_durable), gap offsets ${GAPS:-?}, gaps seen ${OVERFLOW:-?}, repaired $(counter "$ARCH_PID" gap_offsets_repaired)"
check "archive_gap_offsets counter (read)" "${GAPS:-x}" eq 0
check "gaps the archiver saw in the stream (its socket queue overflowing)" "${OVERFLOW:-x}" eq 0

start replay 120 "$SEQCAST" replay --archiver "$ARCHIVER" --from 0 --to "$HEAD" --verify --timeout 100
wait_exit replay 130 || die "the replay did not finish"
check "replay exit status" "${RC[replay]}" eq 0
D_SUB=$(digest_of "$TMP/sub.out")
D_REPLAY=$(digest_of "$TMP/replay.out")
log "digests: subscriber ${D_SUB:-none}, replay ${D_REPLAY:-none} ($(messages_of "$TMP/replay.out") messages)"
check "replay messages" "$(messages_of "$TMP/replay.out")" eq "$N"
check "replay digest equals the subscriber's" "${D_REPLAY:-none}" == "${D_SUB:-missing}"
stop arch TERM 30 >/dev/null || true
check "archiver exit status (SIGTERM)" "${RC[arch]}" eq 0
check "archiver stop line says 0 offsets never received" "$(grep -c ' 0 offsets never received (0 gap records)' "$TMP/arch.log")" eq 1
stop seq TERM 10 >/dev/null || true
finish
