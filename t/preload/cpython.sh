#!/bin/sh
# CPython's own test_subprocess and test_os (Debian's libpython3.11-testsuite)
# under the shim, every Python object through it (PYTHONMALLOC=malloc):
# they close, inherit and pass descriptors, fork, exec and set rlimits.
. "${top_srcdir:-$(dirname "$0")/../..}/t/preload/common.sh"
PY=/usr/bin/python3
[ -x $PY ] || { echo "SKIP: $PY not installed"; exit 77; }
$PY -c 'import test.test_subprocess, test.test_os' 2>/dev/null ||
    { echo "SKIP: CPython's test suite not installed (libpython3.11-testsuite)"; exit 77; }
# regrtest writes scratch files in the current directory
cd "$TMP" || fail "cd $TMP"
PYTHONMALLOC=malloc $RUN $PY -m test -j2 test_subprocess test_os ||
    fail "CPython's test_subprocess / test_os under the shim"
