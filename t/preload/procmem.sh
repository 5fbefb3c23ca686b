#!/bin/sh
# Large objects behave like process memory, and the shim holds no
# descriptor a program can close or reuse (issue 9): t/preload/procmem.c
# under the shim, and under glibc where the two are compared.
. "${top_srcdir:-$(dirname "$0")/../..}/t/preload/common.sh"
prog=$top_builddir/t/preload/procmem
[ -x "$prog" ] || fail "$prog not built"
[ -x "$top_builddir/t/preload/.libs/procmem" ] && prog=$top_builddir/t/preload/.libs/procmem

# A daemon's close-everything-then-open: the file keeps every byte.
$RUN "$prog" closeall "$TMP/data.bin" || fail "closeall"
$RUN "$prog" closefrom "$TMP/data.bin" || fail "closefrom / close_range / dup2"
# The same while recording a trace (CATENA_TRACE keeps no descriptor either):
# the program's file intact, the trace complete and valid.
CATENA_TRACE="$TMP/closeall.trace" $RUN "$prog" closeall "$TMP/data.bin" ||
    fail "closeall while tracing"
"$top_builddir/t/preload/trace_check" "$TMP/closeall.trace" ||
    fail "trace of closeall invalid"

# No descriptor beyond the program's own (same list as under glibc).
glibc=$("$prog" fds) || fail "fds (glibc)"
shim=$($RUN "$prog" fds) || fail "fds (shim)"
[ "$shim" = "$glibc" ] || fail "descriptors under the shim: '$shim', under glibc: '$glibc'"

# RLIMIT_FSIZE does not apply to memory (glibc: no SIGXFSZ either).
(ulimit -f 1024 && $RUN "$prog" fsize) || fail "fsize under ulimit -f 1024"

# RLIMIT_AS: at least 90 % of what glibc reaches, for 1 MiB objects (large)
# and for 4000-byte ones (small: the arenas are opened one by one).
for size in 1048576 4000; do
    g=$(ulimit -v 1000000 && "$prog" asfill $size) || fail "asfill $size (glibc)"
    s=$(ulimit -v 1000000 && $RUN "$prog" asfill $size) || fail "asfill $size (shim)"
    echo "ulimit -v 1000000, $size-byte objects: glibc $g MiB, shim $s MiB"
    [ $((s * 10)) -ge $((g * 9)) ] || fail "shim reaches $s MiB, glibc $g"
done

$RUN "$prog" madvise || fail "madvise"

# fork with 256 MiB of large objects: copy-on-write (counted in the child),
# and no stall that grows with live bytes: fork takes at most 10 times
# glibc's time for the same program plus 100 ms (generous: the machine is
# shared; the copy of the memfd design took 2.9 s, ~200x glibc's; a copy
# of any kind is caught by the child's count anyway).
g=$("$prog" fork 256) || fail "fork (glibc)"
s=$($RUN "$prog" fork 256) || fail "fork (shim)"
echo "fork with 256 MiB live: glibc $g us, shim $s us"
[ "$s" -le $((g * 10 + 100000)) ] || fail "fork under the shim: $s us, glibc $g us"
echo "procmem: all cases pass"
