#!/bin/sh
# t/preload/layers.sh - the shim's files call only downwards.
# preload/shim.h's header comment lists the files lowest first; for each
# file's object, every symbol it uses (nm: undefined) must not be defined
# by a file listed after it.  Every object of the shim must be listed, so
# a new file cannot skip the check.
: "${top_builddir:=$(cd "$(dirname "$0")/../.." && pwd)}"
: "${top_srcdir:=$top_builddir}"
command -v nm >/dev/null 2>&1 || { echo "SKIP: nm not installed"; exit 77; }
obj() { # the object of preload/$1.c (the PIC one when both were built)
    for o in "$top_builddir/preload/.libs/libcatena_preload_la-$1.o" \
             "$top_builddir/preload/libcatena_preload_la-$1.o"; do
        [ -f "$o" ] && { echo "$o"; return; }
    done
}
layers=$(sed -n '/^ \* Layers/,/^ \* Lock order/s/^ \*   \([a-z_]*\)\.c .*/\1/p' \
    "$top_srcdir/preload/shim.h")
[ -n "$layers" ] || { echo "FAIL: no layer list in preload/shim.h"; exit 1; }
[ -n "$(obj malloc)" ] || { echo "SKIP: the shim's objects are not built"; exit 77; }
TMP=$(mktemp -d "${TMPDIR:-/tmp}/catena-layers.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
status=0
# every object of the shim is in the list
for o in "$(dirname "$(obj malloc)")"/libcatena_preload_la-*.o; do
    f=${o##*/libcatena_preload_la-}; f=${f%.o}
    echo "$layers" | grep -qx "$f" || {
        echo "FAIL: preload/$f.c is not in shim.h's layer list"; status=1; }
done
# the symbols each file defines, by position in the list
i=0
for f in $layers; do
    i=$((i + 1))
    o=$(obj "$f")
    [ -n "$o" ] || { echo "FAIL: no object for preload/$f.c"; status=1; continue; }
    nm "$o" | awk -v i="$i" -v f="$f" \
        '$1 != "U" && $2 ~ /^[A-Z]$/ { print $3, i, f }' >> "$TMP/defs"
done
i=0
for f in $layers; do
    i=$((i + 1))
    o=$(obj "$f")
    [ -n "$o" ] || continue
    bad=$(nm "$o" | awk '$1 == "U" { print $2 }' | awk -v i="$i" '
        NR == FNR { at[$1] = $2; by[$1] = $3; next }
        ($1 in at) && at[$1] > i { print $1 " (" by[$1] ".c)" }' \
        "$TMP/defs" -)
    if [ -n "$bad" ]; then
        echo "FAIL: preload/$f.c uses higher layers:" $bad
        status=1
    fi
done
[ $status = 0 ] && echo "ok: $(echo $layers | wc -w) files, each calls only lower ones"
exit $status
