#!/bin/sh
# t/bench-quick.sh - `catena-bench --quick` runs and writes every output
# file (CI checks the pipeline, never the timings).  Instruction counts:
# t/bench-icount.sh.
set -u
# Under a user-mode emulator (a cross build's CATENA_TEST_EXEC) the bench
# cannot spawn its process drivers: the emulator does not follow execve.
# The native 64-bit build runs this test.
if [ -n "${CATENA_TEST_EXEC:-}" ]; then
    echo "SKIP: catena-bench spawns its drivers, which $CATENA_TEST_EXEC cannot follow"
    exit 77
fi
out=${TMPDIR:-/tmp}/catena-bench-quick.$$
trap 'rm -rf "$out"' EXIT
./bench/catena-bench --quick --no-instructions --out "$out" \
    --gnuplot "${GNUPLOT:-gnuplot}" \
    > t/bench-quick.out 2>&1 || { cat t/bench-quick.out; echo "FAIL: catena-bench --quick"; exit 1; }
fail=0
for f in report.md summary.csv workloads.csv catena.csv indefinite.csv \
         frag-interp-catena.csv frag-indefinite-mpheap-gc.csv; do
    if [ ! -s "$out/$f" ]; then
        echo "FAIL: $f missing or empty"
        fail=1
    fi
done
if command -v "${GNUPLOT:-gnuplot}" > /dev/null 2>&1; then
    n=0
    for p in "$out"/*.png; do
        [ -s "$p" ] && n=$((n + 1))
    done
    if [ "$n" -lt 1 ]; then
        echo "FAIL: no PNG plot written"
        fail=1
    else
        echo "ok: $n plots"
    fi
else
    echo "gnuplot not installed: plots not checked"
fi
grep -q '^| interp' "$out/report.md" || { echo "FAIL: report has no table"; fail=1; }
[ $fail = 0 ] && echo "ok: catena-bench --quick wrote report.md and its files"
exit $fail
