#!/usr/bin/env bash
# libseqcast.so exports the public API and nothing else: the C ABI (seqcast_*) and the C++ classes
# of include/seqcast/seqcast.hpp, all at version node SEQCAST_0, under soname libseqcast.so.0. An
# engine symbol in the export table would let an application bind to internals that change between
# releases (client/api/libseqcast.map decides what is exported).
# usage: exports.sh /path/to/libseqcast.so
set -euo pipefail
LIB=$1
for t in nm readelf; do command -v "$t" >/dev/null || { echo "SKIP: $t (binutils) is not installed"; exit 77; }; done
fail=0
syms=$(nm -D --defined-only -C "$LIB" | sed 's/^[0-9a-f]* [A-Za-z] //')
[[ -n $syms ]] || { echo "FAIL: nm listed no symbols of $LIB"; exit 1; }
public='^(SEQCAST_0$|seqcast_[a-z0-9_]*@@SEQCAST_0$|seqcast::(Publisher|Subscriber|Replay|Sequencer|Archiver|SetupError)::.*@@SEQCAST_0$|seqcast::readCounters\((std::(__cxx11::)?basic_string<char, std::char_traits<char>, std::allocator<char> > const&)?\)@@SEQCAST_0$|seqcast::counterInfo\(\)@@SEQCAST_0$|seqcast::kCountersDirectory@@SEQCAST_0$|(typeinfo|typeinfo name|vtable) for seqcast::SetupError@@SEQCAST_0$)'
leaked=$(grep -Ev "$public" <<<"$syms" || true)
if [[ -n $leaked ]]; then
    echo "FAIL: $(wc -l <<<"$leaked") symbols exported beyond the public API, e.g.:"
    head -n 10 <<<"$leaked"
    fail=1
fi
for want in 'seqcast_publisher_offer@@SEQCAST_0' 'seqcast_subscriber_poll@@SEQCAST_0' 'seqcast_abi_version@@SEQCAST_0' \
            'seqcast::Publisher::offer(' 'seqcast::Subscriber::poll(' 'seqcast::Replay::create(' 'seqcast::readCounters()' 'seqcast::readCounters(std::' 'seqcast::counterInfo()' 'seqcast::kCountersDirectory'; do
    grep -qF -- "$want" <<<"$syms" || { echo "FAIL: $want is not exported"; fail=1; }
done
soname=$(readelf -d "$LIB" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')
[[ $soname == libseqcast.so.0 ]] || { echo "FAIL: soname '$soname', expected libseqcast.so.0"; fail=1; }
echo "$(wc -l <<<"$syms") symbols exported, soname ${soname:-none}"
exit $fail
