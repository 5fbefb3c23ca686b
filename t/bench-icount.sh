#!/bin/sh
# t/bench-icount.sh - `catena-bench --instructions` counts, under callgrind,
# exactly the replay's calls into each allocator (alloc + free + realloc =
# the stream's allocator calls), each with a plausible instruction count,
# and reports them in icount.csv and report.md.  Skips without valgrind.
set -u
command -v valgrind > /dev/null 2>&1 || { echo "valgrind not installed: skip"; exit 77; }
# a cross build's programs run under an emulator, which valgrind cannot
# run (and the bench cannot spawn them): the native build runs this test
if [ -n "${CATENA_TEST_EXEC:-}" ]; then
    echo "SKIP: programs run under $CATENA_TEST_EXEC, which valgrind cannot run"
    exit 77
fi
# valgrind cannot run a program built with AddressSanitizer
if nm ./bench/catena-bench 2> /dev/null | grep -q __asan_init; then
    echo "catena-bench is built with AddressSanitizer, which valgrind cannot run: skip"
    exit 77
fi
out=${TMPDIR:-/tmp}/catena-bench-icount.$$
log=t/bench-icount.out
trap 'rm -rf "$out"' EXIT
./bench/catena-bench --quick --instructions --only micro1,growth \
    --out "$out" > "$log" 2>&1 || { cat "$log"; echo "FAIL: catena-bench --instructions"; exit 1; }
csv=$out/icount.csv
[ -s "$csv" ] || { cat "$log"; echo "FAIL: icount.csv missing"; exit 1; }
# every row: calls add up to the stream's; each kind with calls has at
# least 10 instructions per call (a call and a return are 2); catena and
# glibc on both workloads
awk -F, 'NR == 1 { next }
    {
        rows[$1 "," $2] = 1
        if ($4 + $6 + $8 != $3) { print "FAIL: " $1 " " $2 ": " $4 "+" $6 "+" $8 " calls, stream has " $3; bad = 1 }
        for (k = 4; k <= 8; k += 2)
            if ($k > 0 && $(k + 1) < 10 * $k) { print "FAIL: " $1 " " $2 ": " $(k + 1) " instructions in " $k " calls"; bad = 1 }
    }
    END {
        split("micro1,catena micro1,glibc growth,catena growth,catena-contig growth,mpheap growth,glibc", need, " ")
        for (i in need) if (!(need[i] in rows)) { print "FAIL: no row " need[i]; bad = 1 }
        if (!bad) print "ok: " NR - 1 " rows, calls match the streams"
        exit bad
    }' "$csv" || exit 1
grep -q '^## Instructions per allocator call' "$out/report.md" || { echo "FAIL: report has no instructions table"; exit 1; }
grep -q '^| micro1 | [0-9]* / [0-9]* |' "$out/report.md" || { echo "FAIL: report's instructions table has no micro1 row"; exit 1; }
echo "ok: catena-bench --instructions"
