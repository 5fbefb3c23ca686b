#!/bin/sh
# The C tests of the malloc family, run under the shim.
. "${top_srcdir:-$(dirname "$0")/../..}/t/preload/common.sh"
prog=$top_builddir/t/preload/test_preload
[ -x "$prog" ] || fail "$prog not built"
# libtool may wrap the program in a script: run the real binary.
[ -x "$top_builddir/t/preload/.libs/test_preload" ] && prog=$top_builddir/t/preload/.libs/test_preload
$RUN "$prog" || exit 1
# again without the per-thread caches (every call on the shared heaps)
CATENA_TCACHE=0 $RUN "$prog"
