#!/bin/sh
# size-report.sh SRCDIR OUTDIR [DOC] - `make size-report`: code size of
# libcatena on every core of boards.txt at -Os (no debug assertions), as a
# Markdown table on stdout; with DOC, also written into that file between
# the lines "<!-- size-report begin -->" and "<!-- size-report end -->".
#
# Two figures per core, each for the core heap alone and for core + GC:
#  - library: every function of lib/ (the whole API, including
#    catena_check, catena_dump, the access helpers, the stats);
#  - firmware: what a MicroPython-style port links (-ffunction-sections and
#    a relocatable link with --gc-sections keeping only the functions
#    reachable from catena_init, catena_alloc_flags, catena_free,
#    catena_realloc and, with the GC, the collect entry points).
# It also checks that v6-M code has no CLZ instruction (GCC must call
# libgcc).  Unaligned accesses are caught at run time, by t/cortex-m/
# test_unaligned.c with the core's unaligned trap on.
#
#   CC_PREFIX  tool prefix (default arm-none-eabi-)

srcdir=$1
out=$2
doc=$3
if [ -z "$srcdir" ] || [ -z "$out" ]; then
    echo "usage: $0 SRCDIR OUTDIR [DOC]" >&2
    exit 2
fi
pfx=${CC_PREFIX:-arm-none-eabi-}
cc=${pfx}gcc
if ! command -v "$cc" >/dev/null 2>&1; then
    echo "size-report: $cc not found" >&2
    exit 1
fi
mkdir -p "$out" || exit 1
lib=$srcdir/lib

core_src="table index spine heap check alloc access"
# the collector: lib/gc.c (gc_ffi.c is hosted-only) and the register hook
gc_src=
have_gc=no
[ -f "$lib/gc.c" ] && { gc_src=gc; have_gc=yes; }
gc_src="$gc_src regs_arm"

core_api="catena_init catena_alloc_flags catena_free catena_realloc"
# GC entry points a port calls; those the GC does not define are skipped
gc_api="catena_collect catena_collect_start catena_collect_root catena_collect_end catena_gc_init"

cflags="-std=c99 -Os -mno-unaligned-access -DCATENA_NO_CONFIG_H -I$srcdir/include \
 -ffunction-sections -fdata-sections"

# objs CORE FLAGS NAMES: compile lib/NAME.c, print the object paths
objs() {
    c=$1; fl=$2; shift 2
    for n in "$@"; do
        o=$out/$c-$n.o
        # shellcheck disable=SC2086
        $cc $fl $cflags -c -o "$o" "$lib/$n.c" || return 1
        echo "$o"
    done
}

# sum OBJ...: "text data bss" summed over objects (Berkeley format)
sum() {
    ${pfx}size -B "$@" | awk 'NR > 1 { t += $1; d += $2; b += $3 }
                              END { printf "%d %d %d", t, d, b }'
}

# linked OUT SYMS OBJ...: relocatable link keeping what SYMS reach
linked() {
    o=$1; syms=$2; shift 2
    u=
    for s in $syms; do
        if ${pfx}nm "$@" 2>/dev/null | grep -q " T $s\$"; then
            u="$u -Wl,-u,$s"
        fi
    done
    # shellcheck disable=SC2086
    $cc -nostdlib -r -Wl,--gc-sections $u -o "$o" "$@" || return 1
    sum "$o"
}

table=$out/table.md
notes=$out/notes.txt
: >"$notes"
{
    echo "| core | flags | core: library .text / .data / .bss | core: firmware .text | core + GC: library .text / .data / .bss | core + GC: firmware .text |"
    echo "|---|---|---|---|---|---|"
} >"$table"

status=0
while read -r core board script flags; do
    case $core in '' | '#'*) continue ;; esac
    # shellcheck disable=SC2086
    co=$(objs "$core" "$flags" $core_src) || { status=1; continue; }
    # shellcheck disable=SC2086
    go=$(objs "$core" "$flags" $gc_src) || { status=1; continue; }
    # shellcheck disable=SC2086
    set -- $(sum $co)
    c_lib="$1 / $2 / $3"
    # shellcheck disable=SC2086
    set -- $(linked "$out/$core-core-fw.o" "$core_api" $co)
    c_fw=$1
    # shellcheck disable=SC2086
    set -- $(sum $co $go)
    g_lib="$1 / $2 / $3"
    # shellcheck disable=SC2086
    set -- $(linked "$out/$core-gc-fw.o" "$core_api $gc_api" $co $go)
    g_fw=$1
    echo "| $core | \`$flags\` | $c_lib | $c_fw | $g_lib | $g_fw |" >>"$table"

    # portability: CLZ on v6-M, unaligned accesses on v7-M and up
    case $flags in
    *cortex-m0*)
        # shellcheck disable=SC2086
        if ${pfx}objdump -d $co $go | grep -qw clz; then
            echo "$core: FAIL: a CLZ instruction in v6-M code" >>"$notes"
            status=1
        else
            calls=$(${pfx}nm $co $go | awk '$1 == "U" && $2 ~ /^__(clz|ctz)/ { print $2 }' |
                    sort -u | tr '\n' ' ')
            echo "$core: no CLZ instruction (libgcc: ${calls:-none})" >>"$notes"
        fi ;;
    *)
        # unaligned accesses are checked at run time (test_unaligned)
        ;;
    esac
done <"$srcdir/port/cortex-m/boards.txt"

{
    cat "$table"
    echo
    echo "Bytes, arm-none-eabi-gcc $($cc -dumpversion), -Os -mno-unaligned-access,"
    echo "CATENA_BLOCK_SIZE 16,"
    echo "16-bit indexes (the 32-bit defaults).  GC: $( [ $have_gc = yes ] &&
        echo "lib/gc.c and lib/regs_arm.c" ||
        echo "not written yet: only lib/regs_arm.c is counted")."
    echo "Library: every function of lib/; firmware: only what catena_init,"
    echo "catena_alloc_flags, catena_free, catena_realloc (and the collect calls)"
    echo "reach, as a port linking with --gc-sections gets."
    echo
    sed 's/^/    /' "$notes"
} >"$out/report.md"
cat "$out/report.md"

if [ -n "$doc" ] && [ -f "$doc" ]; then
    if grep -q '^<!-- size-report begin -->' "$doc"; then
        awk -v f="$out/report.md" '
            /^<!-- size-report begin -->/ { print; while ((getline l < f) > 0) print l; skip = 1; next }
            /^<!-- size-report end -->/   { skip = 0 }
            !skip' "$doc" >"$doc.tmp" && mv "$doc.tmp" "$doc"
        echo "size-report: table written into $doc"
    else
        echo "size-report: no size-report markers in $doc; not updated" >&2
    fi
fi
exit $status
