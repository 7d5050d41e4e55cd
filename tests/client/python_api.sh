#!/usr/bin/env bash
# The Python binding (python/seqcast) under pytest against real processes: see test_python_api.py.
# usage: python_api.sh /path/to/seqcast /path/to/libseqcast.so SOURCE_ROOT
# SKIPs (77) with the reason when Debian's python3 or its pytest is missing.
set -euo pipefail
SEQCAST_BIN=$(realpath "$1")
LIB=$(realpath "$2")
SRC=$(realpath "$3")
PY=/usr/bin/python3
[[ -x $PY ]] || { echo "SKIP: $PY (Debian's python3, which python3-pytest serves) is not installed"; exit 77; }
"$PY" -c 'import pytest' 2>/dev/null || { echo "SKIP: pytest is not installed for $PY (Debian: python3-pytest)"; exit 77; }
export SEQCAST_BIN SEQCAST_LIBRARY=$LIB PYTHONPATH=$SRC/python${PYTHONPATH:+:$PYTHONPATH}
exec "$PY" -m pytest -q -p no:cacheprovider -rs "$SRC/tests/client/test_python_api.py"
