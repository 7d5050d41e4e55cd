#!/usr/bin/env bash
# libseqcast as an application gets it: `meson install` into a temporary prefix, then every program
# in examples/ copied out of the tree and compiled against the installed package with nothing but
# `pkg-config --cflags --libs seqcast`, then run against a live sequencer that drops 2 % of what it
# sends (DATA and confirmations: the library repairs and resends):
#   journal_publisher -> sequencer -> feed_handler (every quote, 0 lost, some repaired)
#                                  -> archiver -> replay_to_csv (every quote, one CSV row each)
#   latency_probe (publisher and subscriber in one process) through a second lossy sequencer,
#   and c_roundtrip (the C ABI, compiled as C with `cc`) through it too.
#
# usage: install_examples.sh /path/to/seqcast BUILD_DIR SOURCE_DIR
. "$(dirname "$0")/archiver_lib.sh" "$1"

BUILD=$(readlink -f "$2")
SRC=$(readlink -f "$3")
N=${SEQCAST_IT_MESSAGES:-20000}
LIMIT=150
command -v pkg-config >/dev/null || die "pkg-config is missing (./run installs it)"

# 1. Install.
ROOT=$TMP/root
meson install -C "$BUILD" --destdir "$ROOT" --no-rebuild >"$TMP/install.log" 2>&1 || die "meson install failed: $(tail -n 5 "$TMP/install.log")"
PC=$(find "$ROOT" -name seqcast.pc | head -n 1)
[[ -n $PC ]] || die "meson install put no seqcast.pc under $ROOT"
LIBDIR=$(dirname "$(dirname "$PC")")
check "the shared library is installed with its soname link" "$(ls "$LIBDIR"/libseqcast.so.0 2>/dev/null | wc -l)" eq 1
check "the static library is installed" "$(ls "$LIBDIR"/libseqcast.a 2>/dev/null | wc -l)" eq 1
check "the public header is installed" "$(find "$ROOT" -path '*include/seqcast/seqcast.hpp' | wc -l)" eq 1
# The public headers include nothing of the engine's: standard headers, or each other.
INCDIR=$(dirname "$(find "$ROOT" -path '*include/seqcast/seqcast.hpp' | head -n 1)")
check "the public headers are installed beside it" "$(ls "$INCDIR"/message.hpp "$INCDIR"/seqcast.h 2>/dev/null | wc -l)" eq 2
FOREIGN=0
for h in "$INCDIR"/*; do
    while read -r inc; do
        [[ -f $INCDIR/../$inc && $inc == seqcast/* ]] || { log "$(basename "$h") includes \"$inc\", not an installed public header"; FOREIGN=$((FOREIGN + 1)); }
    done < <(sed -n 's/^#include "\(.*\)".*/\1/p' "$h")
done
check "the public headers include only standard headers and each other" "$FOREIGN" eq 0
check "the C header is installed" "$(find "$ROOT" -path '*include/seqcast/seqcast.h' | wc -l)" eq 1
# The package was configured for its real prefix; staged under $ROOT, pkg-config is told where.
PREFIX=$ROOT$(sed -n 's/^prefix=//p' "$PC")
export PKG_CONFIG_PATH=$(dirname "$PC")
FLAGS=$(pkg-config --define-variable=prefix="$PREFIX" --cflags --libs seqcast) || die "pkg-config --cflags --libs seqcast failed"
log "pkg-config --cflags --libs seqcast: $FLAGS"
check "pkg-config points into the install, not the source tree" "$(echo "$FLAGS" | grep -c "$SRC")" eq 0

# 2. Build the examples out of tree.
mkdir -p "$TMP/src"
cp "$SRC"/examples/*.cpp "$SRC"/examples/*.c "$SRC"/examples/*.h "$TMP/src/"
for ex in journal_publisher feed_handler replay_to_csv latency_probe; do
    # shellcheck disable=SC2086 # FLAGS is a list of words
    c++ -O2 -Wall -Wextra -Werror "$TMP/src/$ex.cpp" -o "$TMP/$ex" $FLAGS >"$TMP/cc-$ex.log" 2>&1 ||
        die "$ex does not compile against the installed package: $(head -n 20 "$TMP/cc-$ex.log")"
    check "$ex is under 150 lines" "$(wc -l <"$TMP/src/$ex.cpp")" lt 150
done
# The static library, with what pkg-config --static says it needs.
STATIC_LIBS=$(pkg-config --define-variable=prefix="$PREFIX" --static --libs-only-l seqcast | sed 's/-lseqcast//')
# shellcheck disable=SC2086
c++ -O2 "$TMP/src/latency_probe.cpp" -o "$TMP/latency_probe_static" $(pkg-config --define-variable=prefix="$PREFIX" --cflags seqcast) \
    "$LIBDIR/libseqcast.a" $STATIC_LIBS >"$TMP/cc-static.log" 2>&1 ||
    die "latency_probe does not link against libseqcast.a with pkg-config --static: $(head -n 20 "$TMP/cc-static.log")"
# The C ABI from C: the header compiles as C11 with warnings as errors (the .pc's -std=c++20 is for
# the C++ header, so C takes the include directory and the libraries from pkg-config).
INCDIR=$(pkg-config --define-variable=prefix="$PREFIX" --variable=includedir seqcast)
# shellcheck disable=SC2046
cc -std=c11 -O2 -Wall -Wextra -Werror -pedantic "$TMP/src/c_roundtrip.c" -o "$TMP/c_roundtrip" -I"$INCDIR" \
    $(pkg-config --define-variable=prefix="$PREFIX" --libs seqcast) >"$TMP/cc-c.log" 2>&1 ||
    die "c_roundtrip.c does not compile as C against the installed package: $(head -n 20 "$TMP/cc-c.log")"
check "c_roundtrip.c is under 150 lines" "$(wc -l <"$TMP/src/c_roundtrip.c")" lt 150
check "the static build does not load libseqcast.so" "$(ldd "$TMP/latency_probe_static" | grep -c libseqcast)" eq 0
export LD_LIBRARY_PATH=$LIBDIR
check "the examples load the installed libseqcast" "$(ldd "$TMP/feed_handler" | grep -c "$LIBDIR/libseqcast.so.0")" eq 1
log "4 examples built against $LIBDIR"

# 3. Run them against a sequencer that loses 2 % of what it sends.
ports_and_group
start_sequencer seq $LIMIT --loss 0.02 --fault-on tx --fault-seed "$(rand32)"
start_archiver arch $LIMIT "$TMP/archive.seqlog" --size 64M --segment 4M
start feed $LIMIT "$TMP/feed_handler" "$GROUP" 120
sleep 1  # the feed handler joins the group before the first quote
start pub $LIMIT "$TMP/journal_publisher" "$CONTROL" "$TMP/pub.journal" "$N" 20000
wait_exit pub 120 || die "journal_publisher still running after 120 s"
check "journal_publisher exit status" "${RC[pub]}" eq 0
log "journal_publisher: $(cat "$TMP/pub.out")"
LAST=$(sed -n 's/.*last offset \([0-9]*\).*/\1/p' "$TMP/pub.out")
[[ -n $LAST ]] || die "journal_publisher printed no last offset"
HEAD=$((LAST + 1))
ARCH_PID=$(seqcast_pid arch) || die "the archiver is gone"
wait_counter_ge "$ARCH_PID" archive_durable "$HEAD" 60 || die "the archiver did not record up to $HEAD"
stop seq TERM 20 >/dev/null || true
wait_exit feed 60 || die "feed_handler did not end after the end of the stream"
log "feed_handler: $(tail -n 1 "$TMP/feed.out")"
check "feed_handler exit status (0: nothing lost, nothing malformed)" "${RC[feed]}" eq 0
check "feed_handler: every quote" "$(sed -n 's/^quotes \([0-9]*\) .*/\1/p' "$TMP/feed.out")" eq "$N"
check "feed_handler: some quotes came by repair (the loss was real)" "$(sed -n 's/.* repaired \([0-9]*\) .*/\1/p' "$TMP/feed.out")" gt 0
check "feed_handler: saw the end of the stream" "$(sed -n 's/.*end_of_stream \([01]\).*/\1/p' "$TMP/feed.out")" eq 1
check "feed_handler printed a book" "$(grep -c '^AAPL ' "$TMP/feed.out")" gt 0

RC_CSV=0
timeout -k 5 60 "$TMP/replay_to_csv" "$ARCHIVER" 0 "$HEAD" >"$TMP/replay.csv" 2>"$TMP/replay.log" || RC_CSV=$?
log "replay_to_csv: exit $RC_CSV, $(cat "$TMP/replay.log")"
check "replay_to_csv exit status" "$RC_CSV" eq 0
check "replay_to_csv: one row per quote" "$(($(wc -l <"$TMP/replay.csv") - 1))" eq "$N"
check "replay_to_csv: pub_seq 1..N each once" "$(tail -n +2 "$TMP/replay.csv" | cut -d, -f3 | sort -n | uniq | wc -l)" eq "$N"
stop arch TERM 20 >/dev/null || true

ports_and_group
start_sequencer seq2 $LIMIT --loss 0.02 --fault-on tx --fault-seed "$(rand32)"
RC_LAT=0
timeout -k 5 60 "$TMP/latency_probe" "$CONTROL" "$GROUP" 2000 >"$TMP/latency.out" 2>"$TMP/latency.log" || RC_LAT=$?
log "latency_probe: exit $RC_LAT: $(cat "$TMP/latency.out" "$TMP/latency.log")"
check "latency_probe exit status" "$RC_LAT" eq 0
check "latency_probe measured 2000 messages" "$(grep -c '^2000 messages: p50 ' "$TMP/latency.out")" eq 1
RC_LAT=0
timeout -k 5 60 "$TMP/latency_probe_static" "$CONTROL" "$GROUP" 500 >"$TMP/latency_static.out" 2>&1 || RC_LAT=$?
log "latency_probe (static): exit $RC_LAT: $(cat "$TMP/latency_static.out")"
check "latency_probe (static) exit status" "$RC_LAT" eq 0
RC_C=0
timeout -k 5 150 "$TMP/c_roundtrip" "$CONTROL" "$GROUP" 10000 >"$TMP/c_roundtrip.out" 2>"$TMP/c_roundtrip.log" || RC_C=$?
log "c_roundtrip: exit $RC_C: $(cat "$TMP/c_roundtrip.out" "$TMP/c_roundtrip.log" | head -n 5)"
check "c_roundtrip exit status (all 10000 delivered in order, none lost)" "$RC_C" eq 0
check "c_roundtrip: some came by repair (the loss was real)" "$(sed -n 's/.*(\([0-9]*\) repaired).*/\1/p' "$TMP/c_roundtrip.out")" gt 0

# 4. The Python package as installed: imported from the install (not the source tree), loading the
# installed libseqcast.so.0 (SEQCAST_LIBRARY unset), 2000 messages through the lossy sequencer.
PYMOD=$(find "$ROOT" -path '*/seqcast/__init__.py' | head -n 1)
check "meson install put the Python package under the prefix" "$(find "$ROOT" -path '*/seqcast/_paths.py' | wc -l)" eq 1
if [[ -z $PYMOD ]]; then
    check "the Python package is installed" 0 eq 1
elif ! /usr/bin/python3 -c 'import sys' 2>/dev/null; then
    log "SKIP part 4: /usr/bin/python3 is missing"
else
    RC_PY=0
    env -u SEQCAST_LIBRARY PYTHONPATH="$(dirname "$(dirname "$PYMOD")")" timeout -k 5 120 /usr/bin/python3 - "$ROOT" "$CONTROL" "$GROUP" \
        >"$TMP/py.out" 2>&1 <<'PYEOF' || RC_PY=$?
import sys, time
root, control, group = sys.argv[1:4]
import seqcast
assert seqcast.__file__.startswith(root), f"imported {seqcast.__file__}, not the installed package"
libs = {l.split()[-1] for l in open("/proc/self/maps") if "libseqcast" in l}
print("loaded", " ".join(sorted(libs)))
sub = seqcast.Subscriber(group=group)
deadline = time.monotonic() + 60
while not sub.started and time.monotonic() < deadline:
    sub.poll(); time.sleep(0.001)
assert sub.started, "never heard the sequencer"
pub = seqcast.Publisher(sequencer=control)
n, got, repaired = 2000, [], 0
for i in range(n):
    pub.publish(b"py %d" % i)
    pub.do_work(); sub.poll()
    for m in sub.pending():
        got.append(m.payload); repaired += m.repaired
while len(got) < n and time.monotonic() < deadline:
    pub.do_work()
    if sub.poll() == 0: time.sleep(0.0002)
    for m in sub.pending():
        got.append(m.payload); repaired += m.repaired
print(f"python: {len(got)} delivered ({repaired} repaired), {sum(c for _, c in sub.losses())} lost")
sys.exit(0 if got == [b"py %d" % i for i in range(n)] else 1)
PYEOF
    log "installed Python package: exit $RC_PY: $(tr '\n' ' ' <"$TMP/py.out" | head -c 600)"
    check "python (installed) exit status: all 2000 delivered in order" "$RC_PY" eq 0
    check "python (installed) loaded the installed libseqcast.so.0" "$(grep -c "^loaded $LIBDIR/libseqcast.so.0" "$TMP/py.out")" eq 1
fi
stop seq2 TERM 20 >/dev/null || true
finish
