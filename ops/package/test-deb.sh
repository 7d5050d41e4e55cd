#!/usr/bin/env bash
# Installs the package into a fresh root and runs it there (./run package): an overlay of this
# system (the lower layer, never written) in a private mount namespace, with empty /tmp and
# /dev/shm, chroot. dpkg installs the package with its dependencies checked against what the
# system has and its maintainer script run (the seqcast user); then, inside the root:
# `seqcast --version`, the units verified, the man pages, pkg-config and the Python package found,
# and a short stream (sequencer, subscriber, publisher) from the installed binary; outside, the
# system has no /usr/bin/seqcast from it and no seqcast user added.
#
# usage: ops/package/test-deb.sh PACKAGE.deb
set -uo pipefail
DEB=$(readlink -f "${1:?usage: test-deb.sh PACKAGE.deb}")
[[ -f $DEB ]] || { echo "FAIL: no package at $1"; exit 1; }
[[ $(id -u) -eq 0 ]] || { echo "SKIP: installing into a fresh root needs root (mount namespaces, chroot)"; exit 77; }
command -v unshare >/dev/null || { echo "SKIP: unshare is not installed (util-linux)"; exit 77; }

T=$(mktemp -d /tmp/seqcast-deb-root-XXXXXX)
trap 'rm -rf "$T"' EXIT
cp "$DEB" "$T/seqcast.deb"
USER_BEFORE=$(getent passwd seqcast || true)
VERSION=$(dpkg-deb -f "$DEB" Version)
PORT=$((20000 + (RANDOM % 20000) * 2))
GROUP="239.$((RANDOM % 254 + 1)).$((RANDOM % 256)).$((RANDOM % 254 + 1)):$((PORT + 1))"

# Inside the root. Every process is bounded by `timeout`; exit status: the number of failed checks.
cat >"$T/inside.sh" <<EOF
#!/bin/bash
set -u
fails=0
check() { if eval "\$2"; then echo "ok: \$1"; else echo "FAILED: \$1"; fails=\$((fails + 1)); fi; }
[ -e /usr/bin/seqcast ] && { echo "FAILED: /usr/bin/seqcast exists before the package is installed"; exit 1; }
DEBIAN_FRONTEND=noninteractive dpkg -i /tmp/seqcast.deb >/tmp/dpkg.log 2>&1
check "dpkg -i installs the package" '[ \$? -eq 0 ] || { cat /tmp/dpkg.log; false; }'
check "dpkg lists it installed" 'dpkg-query -W -f="\\\${Status}" seqcast | grep -q "install ok installed"'
check "seqcast --version says $VERSION" 'timeout 10 seqcast --version | grep -q "^seqcast $VERSION "'
check "the postinst made the seqcast user" 'getent passwd seqcast >/dev/null'
check "the units are installed" '[ -f /lib/systemd/system/seqcast-sequencer@.service ] && [ -f /lib/systemd/system/seqcast-archiver@.service ] && [ -f /lib/systemd/system/seqcast-stat.service ]'
check "the units name /usr/bin/seqcast" '[ \$(grep -l "^ExecStart=/usr/bin/seqcast " /lib/systemd/system/seqcast-*.service | wc -l) -eq 3 ]'
if command -v systemd-analyze >/dev/null; then
    check "systemd-analyze verify finds nothing in the installed units" \
        'out=\$(cd /lib/systemd/system && systemd-analyze verify seqcast-sequencer@x.service seqcast-archiver@x.service seqcast-stat.service 2>&1); [ -z "\$out" ] || { echo "\$out"; false; }'
fi
check "man pages for seqcast and each command" '[ -f /usr/share/man/man1/seqcast.1.gz ] && [ -f /usr/share/man/man1/seqcast-sub.1.gz ] && zcat /usr/share/man/man1/seqcast-sub.1.gz | grep -q -- "--group"'
check "pkg-config finds the library" '[ "\$(pkg-config --modversion seqcast)" = "$VERSION" ]'
check "the shared library is where the loader finds it" 'ldconfig -p | grep -q "libseqcast.so.0 "'
check "the Python package imports the installed library" \
    '/usr/bin/python3 -c "import seqcast, seqcast._paths as p; assert p.LIBRARY.startswith(\"/usr/lib/\"), p.LIBRARY"'
check "the dashboard and the dissector are installed" '[ -f /usr/share/seqcast/grafana/seqcast.json ] && [ -f /usr/share/seqcast/wireshark/seqcast.lua ]'
# A short stream from the installed binary.
timeout 60 seqcast sequencer --control 127.0.0.1:$PORT --group $GROUP --state /tmp/seq.state >/tmp/seq.log 2>&1 &
SEQ=\$!
timeout 60 seqcast sub --group $GROUP --verify --messages 2000 --json /tmp/sub.json >/tmp/sub.log 2>&1 &
SUB=\$!
sleep 1
timeout 60 seqcast pub --sequencer 127.0.0.1:$PORT --rate 4000 --count 2000 --json /tmp/pub.json >/tmp/pub.log 2>&1
check "the publisher sent 2000 messages, all confirmed" '[ \$? -eq 0 ] && grep -q "\\"confirmed\\":2000" /tmp/pub.json'
wait \$SUB
check "the subscriber received the 2000 messages" '[ \$? -eq 0 ] && grep -q "\\"messages\\":2000" /tmp/sub.json'
kill \$SEQ 2>/dev/null; wait \$SEQ 2>/dev/null
DEBIAN_FRONTEND=noninteractive dpkg -r seqcast >/tmp/dpkg-r.log 2>&1
check "dpkg -r removes it" '[ \$? -eq 0 ] && [ ! -e /usr/bin/seqcast ]'
exit \$fails
EOF
chmod 755 "$T/inside.sh"

# The overlay's upper layer is a tmpfs made inside the namespace: it goes with the namespace.
unshare -m bash -c "
    set -e
    mount --make-rprivate /
    mkdir -p '$T/ns'
    mount -t tmpfs none '$T/ns' -o size=2g
    mkdir '$T/ns/upper' '$T/ns/work' '$T/ns/root'
    mount -t overlay overlay -o lowerdir=/,upperdir='$T/ns/upper',workdir='$T/ns/work' '$T/ns/root'
    mount --bind /proc '$T/ns/root/proc'
    mount --rbind /dev '$T/ns/root/dev'
    mount --bind /sys '$T/ns/root/sys'
    mount -t tmpfs none '$T/ns/root/dev/shm'
    mount -t tmpfs none '$T/ns/root/tmp'
    mount -t tmpfs none '$T/ns/root/run'
    cp '$T/seqcast.deb' '$T/inside.sh' '$T/ns/root/tmp/'
    chroot '$T/ns/root' /tmp/inside.sh
"
rc=$?
fails=0
[[ $rc -eq 0 ]] || { echo "FAILED: inside the fresh root (exit $rc)"; fails=1; }
if [[ -z $USER_BEFORE ]] && getent passwd seqcast >/dev/null; then
    echo "FAILED: the seqcast user appeared on this system (the install was not confined)"; fails=1
fi
if ((fails)); then echo "FAIL: package test"; exit 1; fi
echo "PASS: the package installs, runs a stream and is removed again in a fresh root"
