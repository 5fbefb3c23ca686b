#!/bin/sh
# gc-sizes.sh - the collector's sizes are fixed when the library is
# configured: a program that includes catena.h with its own
# CATENA_GC_STACK/ROOTS/HITS compiles when they agree with
# catena_config.h and fails to compile when they do not.
#
#   srcdir  the source tree (set by automake's test harness)
#   CC      the compiler (default: cc)
srcdir=${srcdir:-$(dirname "$0")/..}
cc=${CC:-cc}
conf=include/catena_config.h # in the build tree, the current directory
[ -f "$conf" ] || { echo "gc-sizes: run from the build tree ($conf)"; exit 1; }
tmp=${TMPDIR:-/tmp}/catena-gc-sizes.$$
trap 'rm -f "$tmp.c" "$tmp.o"' EXIT
echo '#include "catena.h"
int main(void) { return CATENA_GC_STACK + CATENA_GC_ROOTS + CATENA_GC_HITS > 0 ? 0 : 1; }' > "$tmp.c"
compile() {
    $cc -c -o "$tmp.o" -Iinclude -I"$srcdir/include" "$@" "$tmp.c" 2>/dev/null
}
compile || { echo "gc-sizes: catena.h does not compile"; exit 1; }
status=0
for v in STACK ROOTS HITS; do
    n=$(sed -n "s/^#define CATENA_CONF_GC_$v \([0-9]*\).*/\1/p" "$conf")
    [ -n "$n" ] || { echo "gc-sizes: no CATENA_CONF_GC_$v in $conf"; exit 1; }
    if ! compile "-DCATENA_GC_$v=$n"; then
        echo "gc-sizes: CATENA_GC_$v=$n (the configured value) fails"
        status=1
    fi
    if compile "-DCATENA_GC_$v=$((n + 1))"; then
        echo "gc-sizes: CATENA_GC_$v=$((n + 1)) compiles against $n"
        status=1
    fi
done
[ $status = 0 ] && echo "gc-sizes: configured sizes enforced"
exit $status
