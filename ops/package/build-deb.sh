#!/usr/bin/env bash
# Builds the Debian package seqcast_VERSION_ARCH.deb (./run package): meson with prefix /usr into
# build-pkg/, `meson install` into a staging root, man pages made from each command's --help, the
# dependencies from dpkg-shlibdeps, then dpkg-deb. Prints the package's path on its last line.
#
# usage: ops/package/build-deb.sh OUT_DIR
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
OUT=$(mkdir -p "${1:?usage: build-deb.sh OUT_DIR}" && cd "$1" && pwd)
BUILD=$ROOT/build-pkg
ARCH=$(dpkg --print-architecture)
MULTIARCH=$(dpkg-architecture -qDEB_HOST_MULTIARCH)
VERSION=$(sed -n "s/^  version : '\(.*\)',$/\1/p" "$ROOT/meson.build" | head -n 1)
[[ -n $VERSION ]] || { echo "build-deb: no version in meson.build" >&2; exit 1; }

if [[ ! -f $BUILD/build.ninja ]]; then
    meson setup "$BUILD" --prefix=/usr --libdir="lib/$MULTIARCH" --buildtype=release -Dtests=false \
        -Dpython=/usr/bin/python3 -Dpython.purelibdir=lib/python3/dist-packages >"$BUILD.setup.log" 2>&1 ||
        { cat "$BUILD.setup.log" >&2; exit 1; }
fi
ninja -C "$BUILD" >"$BUILD.log" 2>&1 || { tail -40 "$BUILD.log" >&2; exit 1; }

STAGE=$(mktemp -d /tmp/seqcast-deb-XXXXXX)
trap 'rm -rf "$STAGE"' EXIT
PKG=$STAGE/seqcast
DESTDIR=$PKG meson install -C "$BUILD" --no-rebuild >"$STAGE/install.log" 2>&1 || { cat "$STAGE/install.log" >&2; exit 1; }
BIN=$PKG/usr/bin/seqcast
[[ -x $BIN ]] || { echo "build-deb: meson install put no /usr/bin/seqcast" >&2; exit 1; }

# Man pages: seqcast(1) from the command list, seqcast-COMMAND(1) from each command's --help.
MAN=$PKG/usr/share/man/man1
mkdir -p "$MAN"
roff() {  # text on stdin -> roff lines (backslashes and leading dots escaped)
    sed -e 's/\\/\\e/g' -e 's/^\./\\\&./' -e "s/^'/\\\\\&'/"
}
DATE=$(date -u -d "@${SOURCE_DATE_EPOCH:-$(git -C "$ROOT" log -1 --format=%ct 2>/dev/null || date +%s)}" +%Y-%m-%d)
{
    echo ".TH SEQCAST 1 \"$DATE\" \"seqcast $VERSION\" \"User Commands\""
    echo ".SH NAME"
    echo "seqcast \\- a low-latency reliable multicast fabric: sequencer, publisher, subscriber, archiver"
    echo ".SH SYNOPSIS"
    echo ".B seqcast"
    echo ".I COMMAND"
    echo "[options]"
    echo ".SH COMMANDS"
    echo ".nf"
    "$BIN" --help | sed -n 's/^  \([a-z]*\) \+\(.*\)/\1\t\2/p' | while IFS=$'\t' read -r cmd what; do
        echo "$cmd  $what  (seqcast-$cmd(1))" | roff
    done
    echo ".fi"
    echo ".SH SEE ALSO"
    echo "/usr/share/doc/seqcast/README.md, /usr/share/doc/seqcast/OPERATIONS.md, /usr/share/doc/seqcast/API.md"
} >"$MAN/seqcast.1"
for cmd in $("$BIN" --help | sed -n 's/^  \([a-z]*\) .*/\1/p'); do
    help=$("$BIN" "$cmd" --help)
    {
        echo ".TH SEQCAST-${cmd^^} 1 \"$DATE\" \"seqcast $VERSION\" \"User Commands\""
        echo ".SH NAME"
        echo "seqcast-$cmd \\- $(printf '%s\n' "$help" | sed -n '2p' | roff)"
        echo ".SH SYNOPSIS"
        echo ".B seqcast $cmd"
        echo "[options]"
        echo ".SH OPTIONS"
        echo ".nf"
        printf '%s\n' "$help" | tail -n +3 | roff
        echo ".fi"
        echo ".SH SEE ALSO"
        echo "seqcast(1)"
    } >"$MAN/seqcast-$cmd.1"
done
gzip -9n "$MAN"/*.1

cat >"$PKG/usr/share/doc/seqcast/copyright" <<'EOF'
Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: seqcast

Files: *
Copyright: seqcast maintainers
License: Apache-2.0
 On Debian systems the full text of the Apache License 2.0 is in
 /usr/share/common-licenses/Apache-2.0.
EOF

# Control files: dependencies of the binary and the library, the user the units run as.
mkdir -p "$STAGE/deps/debian" "$PKG/DEBIAN"
printf 'Source: seqcast\n\nPackage: seqcast\nArchitecture: any\n' >"$STAGE/deps/debian/control"
LIB=$(find "$PKG/usr/lib/$MULTIARCH" -name 'libseqcast.so.*.*' | head -n 1)
DEPS=$(cd "$STAGE/deps" && dpkg-shlibdeps -O --ignore-missing-info -e"$BIN" -e"$LIB" 2>/dev/null | sed -n 's/^shlibs:Depends=//p')
[[ -n $DEPS ]] || { echo "build-deb: dpkg-shlibdeps found no dependencies" >&2; exit 1; }
SIZE=$(du -sk --exclude=DEBIAN "$PKG" | cut -f1)
cat >"$PKG/DEBIAN/control" <<EOF
Package: seqcast
Version: $VERSION
Architecture: $ARCH
Maintainer: seqcast maintainers <seqcast@localhost>
Installed-Size: $SIZE
Depends: $DEPS, adduser, python3
Recommends: prometheus
Section: net
Priority: optional
Description: low-latency reliable multicast fabric
 A sequencer stamps every message of a stream with a global offset; the
 sequenced stream goes out over UDP multicast; subscribers repair gaps with
 NAKs; an archiver records the stream for replay. This package holds the
 seqcast command, libseqcast (C++ API, C ABI, pkg-config seqcast), the Python
 package, systemd units, a Prometheus exporter (seqcast stat --serve), a
 Grafana dashboard and a Wireshark dissector.
EOF
cat >"$PKG/DEBIAN/postinst" <<'EOF'
#!/bin/sh
# The units run as user seqcast.
set -e
if [ "$1" = configure ]; then
    if ! getent passwd seqcast >/dev/null; then
        adduser --system --group --no-create-home --home /var/lib/seqcast --quiet seqcast
    fi
    if [ -d /run/systemd/system ]; then systemctl daemon-reload || true; fi
fi
exit 0
EOF
cat >"$PKG/DEBIAN/postrm" <<'EOF'
#!/bin/sh
set -e
if [ -d /run/systemd/system ]; then systemctl daemon-reload || true; fi
exit 0
EOF
chmod 755 "$PKG/DEBIAN/postinst" "$PKG/DEBIAN/postrm"
echo "activate-noawait ldconfig" >"$PKG/DEBIAN/triggers"  # libseqcast.so.0 into the loader's cache
(cd "$PKG" && find . -path ./DEBIAN -prune -o -type f -printf '%P\n' | LC_ALL=C sort | xargs md5sum) >"$PKG/DEBIAN/md5sums"
DEB=$OUT/seqcast_${VERSION}_${ARCH}.deb
dpkg-deb --root-owner-group -Zxz --build "$PKG" "$DEB" >/dev/null
echo "$DEB"
