#!/bin/sh
# t/stress/run.sh SHIM MIN_REPORTS PROG [ARGS...] - run a stress program
# under the shim (LD_PRELOAD=SHIM) with a time limit.  CATENA_STATS=1
# makes every process that loaded the shim and exited normally print
# "catena: summary:" at exit; at least MIN_REPORTS such lines prove that
# the shim was in use (and, for stress_fork, that every child exited
# through the shim's exit path).  STRESS_TIMEOUT (seconds, default 1800)
# bounds the whole run: a hang fails instead of blocking make.
set -u
shim=$1 min=$2
shift 2
if [ ! -f "$shim" ]; then
    echo "SKIP: $shim not built (static-only build): $*"
    exit 0
fi
err=$(mktemp "${TMPDIR:-/tmp}/catena-stress.XXXXXX")
trap 'rm -f "$err"' EXIT
CATENA_STATS=1 LD_PRELOAD=$shim timeout -s KILL "${STRESS_TIMEOUT:-1800}" \
    "$@" 2>"$err"
rc=$?
reports=$(grep -c '^catena: summary:' "$err")
grep -v '^catena: \(small\|large\|trim\|summary\):' "$err" | head -20 >&2
if [ $rc = 137 ]; then
    echo "FAIL: $1 did not finish within ${STRESS_TIMEOUT:-1800} s"
    exit 1
fi
if [ $rc != 0 ]; then
    echo "FAIL: $1 exited with status $rc"
    exit 1
fi
if [ "$reports" -lt "$min" ]; then
    echo "FAIL: $reports shim exit reports, expected at least $min"
    exit 1
fi
echo "     ($reports processes exited through the shim)"
