#!/bin/sh
# size-report.sh [--budget FILE] SRCDIR OUTDIR [DOC] - `make size-report`:
# what a firmware links of libcatena, per core of boards.txt, at -Os
# without debug assertions, as a Markdown table on stdout; with DOC also
# written into that file between "<!-- size-report begin -->" and
# "<!-- size-report end -->".
#
# Four configurations, each a tiny main() that takes the address of
# exactly these functions and nothing else, linked with --gc-sections
# (lib/ compiled with -ffunction-sections -fdata-sections), so the image
# holds what those functions reach:
#   a  init/alloc/free   catena_init catena_alloc_flags catena_free
#   b  + realloc         catena_realloc
#   c  + the collector   catena_gc_set_options catena_gc_set_collect_hook
#                        catena_collect_start catena_collect_root
#                        catena_collect_end (a MicroPython port's calls)
#   d  + the access API  catena_ptr catena_read catena_write
#                        catena_read_byte catena_write_byte catena_iov
#                        catena_iter_init catena_iter_next
# The bytes counted are the .text and .rodata the linker kept from lib/'s
# objects plus the libgcc helpers they pull in (the linker map says which
# input section came from where); main, memcpy and memset are not counted.
#
# Stack: lib/ is compiled with -fcallgraph-info=su; stack-depth.awk lists
# the deepest call chain from each configuration's functions (frame bytes
# summed; libgcc, memcpy/memset and a port's hooks count 0) and fails when
# the call graph has a cycle (recursion) or an unbounded frame.
#
# It also checks that v6-M code has no CLZ instruction (GCC must call
# libgcc).  Unaligned accesses are caught at run time, by t/cortex-m/
# test_unaligned.c with the core's unaligned trap on.
#
# Two builds of lib/: the default one, and the small one (./configure
# --enable-small, here -DCATENA_SMALL=1: no speed paths or forced
# inlining, no interior pointers), named a-small .. d-small, and the small
# build with lib/scan.c for lib/index.c (--enable-small --enable-scan),
# named a-scan .. d-scan.
#
# --budget FILE: fail when a configuration's bytes or stack exceed the
# FILE's line "core config bytes stack" (port/cortex-m/size-budget.txt;
# `make check-cortex-m` runs this).
#
#   CC_PREFIX  tool prefix (default arm-none-eabi-)

budget=
if [ "$1" = --budget ]; then
    budget=$2
    shift 2
fi
srcdir=$1
out=$2
doc=$3
if [ -z "$srcdir" ] || [ -z "$out" ]; then
    echo "usage: $0 [--budget FILE] SRCDIR OUTDIR [DOC]" >&2
    exit 2
fi
pfx=${CC_PREFIX:-arm-none-eabi-}
cc=${pfx}gcc
if ! command -v "$cc" >/dev/null 2>&1; then
    echo "size-report: $cc not found" >&2
    exit 1
fi
if [ -n "$budget" ] && [ ! -f "$budget" ]; then
    echo "size-report: no budget file $budget" >&2
    exit 1
fi
mkdir -p "$out" || exit 1
lib=$srcdir/lib
port=$srcdir/port/cortex-m

# the core, then the collector (lib/gc_ffi.c is hosted-only)
lib_src="table index spine heap check alloc access gc regs_arm"
# the builds: name, the suffix of its configurations, its extra flags
# (-DCATENA_SCAN=1: lib/scan.c instead of lib/index.c)
builds="default:-:
small:-small:-DCATENA_SMALL=1
small+scan:-scan:-DCATENA_SMALL=1 -DCATENA_SCAN=1"

cfg_a="catena_init catena_alloc_flags catena_free"
cfg_b="$cfg_a catena_realloc"
cfg_c="$cfg_b catena_gc_set_options catena_gc_set_collect_hook
 catena_collect_start catena_collect_root catena_collect_end"
# shellcheck disable=SC2034  # cfg_a..cfg_d are read through eval
cfg_d="$cfg_c catena_ptr catena_read catena_write catena_read_byte
 catena_write_byte catena_iov catena_iter_init catena_iter_next"
configs="a b c d"
# the library's own calls through a pointer (caller:callee), for the
# stack depth: the allocator reaches the collector only through the hook
# catena_gc_set_options installs
indirect="_catena_gc_auto:auto_collect"

# CM_SIZE_CFLAGS: more flags for lib/ (to measure a knob, e.g.
# -DCATENA_RUN_CHECKS=0; the budgets hold for the builds without them)
cflags="-std=c99 -Os -mno-unaligned-access -DCATENA_NO_CONFIG_H -I$srcdir/include \
 -ffunction-sections -fdata-sections ${CM_SIZE_CFLAGS:-}"

# main_c CONFIG: the tiny main of a configuration
main_c() {
    fns=
    eval "fns=\$cfg_$1"
    echo '#include "catena.h"'
    echo 'typedef void (*fn)(void);'
    echo 'int main(void)'
    echo '{'
    echo '    static const volatile fn keep[] = {'
    for f in $fns; do echo "        (fn)$f,"; done
    echo '    };'
    echo '    return keep[0] != 0;'
    echo '}'
}

# map_bytes MAP OBJDIR: "catena libgcc" bytes of .text/.rodata kept from
# OBJDIR's lib objects and from libgcc (GNU ld map; a long section name
# puts its address and size on the next line)
map_bytes() {
    awk -v dir="$2/" '
        /^Linker script and memory map/ { on = 1; next }
        !on { next }
        /^ \.(text|rodata)/ {
            if (NF >= 4) { sz = $3; f = $4 } else { pend = 1; next }
            add(sz, f); next
        }
        pend && /^ +0x/ { add($2, $3); pend = 0; next }
        { pend = 0 }
        function hex(s,    i, v) {
            v = 0; s = tolower(s); sub(/^0x/, "", s)
            for (i = 1; i <= length(s); i++)
                v = v * 16 + index("0123456789abcdef", substr(s, i, 1)) - 1
            return v
        }
        function add(sz, f) {
            n = hex(sz)
            if (index(f, dir) == 1 && f !~ /main-[a-d]\.o$/) c += n
            else if (f ~ /libgcc\.a\(/) g += n
        }
        END { printf "%d %d", c, g }' "$1"
}

table=$out/table.md
notes=$out/notes.txt
measured=$out/measured.txt
: >"$notes"
: >"$measured"
: >"$table"
status=0
IFS_save=$IFS
IFS='
'
for build in $builds; do
IFS=$IFS_save
bname=${build%%:*}
rest=${build#*:}
sfx=${rest%%:*}
[ "$sfx" = - ] && sfx=
bflags=${rest#*:}
{
    [ -s "$table" ] && echo
    echo "$bname build:"
    echo
    echo "| core | (a) init/alloc/free | (b) + realloc | (c) + collector | (d) + access API | whole lib/ |"
    echo "|---|---|---|---|---|---|"
} >>"$table"
while read -r core _board _script flags; do
    case $core in '' | '#'*) continue ;; esac
    d=$out/$core$sfx
    mkdir -p "$d"
    objs=
    srcs=$lib_src
    case $bflags in *CATENA_SCAN=1*) srcs=$(echo "$lib_src" | sed 's/index/scan/') ;; esac
    for n in $srcs; do
        # shellcheck disable=SC2086
        (cd "$d" && $cc $flags $cflags $bflags -fcallgraph-info=su -c -o "$n.o" "$lib/$n.c") ||
            { status=1; continue 2; }
        objs="$objs $d/$n.o"
    done
    # shellcheck disable=SC2086
    whole=$(${pfx}size -B $objs | awk 'NR > 1 { t += $1 } END { print t }')
    row="| $core"
    for c in $configs; do
        main_c $c >"$d/main-$c.c"
        # shellcheck disable=SC2086
        if ! $cc $flags $cflags $bflags -c -o "$d/main-$c.o" "$d/main-$c.c" ||
           ! $cc $flags -nostartfiles --specs=nano.specs -Wl,--gc-sections \
                -Wl,-e,main -Wl,-Map="$d/main-$c.map" -o "$d/main-$c.elf" \
                "$d/main-$c.o" $objs; then
            status=1; row="$row | build FAILED"; continue
        fi
        # shellcheck disable=SC2046  # two numbers
        set -- $(map_bytes "$d/main-$c.map" "$d")
        bytes=$(($1 + $2))
        eval "fns=\$cfg_$c"
        # the hook exists only once catena_gc_set_options is linked
        case " $(echo $fns) " in
        *" catena_gc_set_options "*) ind=$indirect ;;
        *) ind= ;;
        esac
        # shellcheck disable=SC2086
        awk -v roots="$(echo $fns)" -v indirect="$ind" \
            -f "$port/stack-depth.awk" "$d"/*.ci >"$d/stack-$c.txt" || {
            status=1
            sed "s/^/$core ($c$sfx): /" "$d/stack-$c.txt" | grep -E 'CYCLE|DYNAMIC|MISSING' >>"$notes"
        }
        stack=$(awk '$1 == "deepest" { print $2 }' "$d/stack-$c.txt")
        [ "$c" = d ] && sed -n "s/^deepest \([0-9]*\) chain: /$core$sfx: deepest stack \1 B: /p" \
            "$d/stack-$c.txt" >>"$notes"
        row="$row | $bytes ($2 libgcc), stack ${stack:-?}"
        echo "$core $c$sfx $bytes ${stack:-0}" >>"$measured"
    done
    echo "$row | $whole |" >>"$table"

    # portability: CLZ on v6-M, unaligned accesses on v7-M and up
    case $flags in
    *cortex-m0*)
        # shellcheck disable=SC2086
        if ${pfx}objdump -d $objs | grep -qw clz; then
            echo "$core$sfx: FAIL: a CLZ instruction in v6-M code" >>"$notes"
            status=1
        else
            # shellcheck disable=SC2086
            calls=$(${pfx}nm $objs | awk '$1 == "U" && $2 ~ /^__(clz|ctz)/ { print $2 }' |
                    sort -u | tr '\n' ' ')
            echo "$core$sfx: no CLZ instruction (libgcc: ${calls:-none})" >>"$notes"
        fi ;;
    esac
done <"$port/boards.txt"
done

# the budget: every measured configuration must have a line and fit it
if [ -n "$budget" ]; then
    awk -v bf="$budget" '
        BEGIN { while ((getline l < bf) > 0) {
                    if (l ~ /^[ \t]*(#|$)/) continue
                    split(l, w); bb[w[1], w[2]] = w[3]; bs[w[1], w[2]] = w[4] } }
        { k = $1 SUBSEP $2
          if (!(k in bb)) { printf "%s (%s): no budget in %s\n", $1, $2, bf; bad = 1; next }
          if ($3 > bb[k]) { printf "%s (%s): %d B of code, over the budget of %d B\n", $1, $2, $3, bb[k]; bad = 1 }
          if ($4 > bs[k]) { printf "%s (%s): %d B of stack, over the budget of %d B\n", $1, $2, $4, bs[k]; bad = 1 } }
        END { exit bad }' "$measured" >>"$notes" || status=1
    [ $status = 0 ] && echo "every configuration within $(basename "$budget")" >>"$notes"
fi

{
    cat "$table"
    echo
    echo "Bytes of .text + .rodata, arm-none-eabi-gcc $($cc -dumpversion), -Os"
    echo "-mno-unaligned-access, CATENA_BLOCK_SIZE 16, 16-bit indexes, a tiny main"
    echo "per configuration linked with --gc-sections; in brackets the part that is"
    echo "libgcc helpers.  Stack: bytes of the deepest call chain (-fcallgraph-info=su),"
    echo "from (c) on with the automatic collection an allocation may run (the hook"
    echo "catena_gc_set_options installs).  Whole lib/: every function, for reference."
    echo "small: ./configure --enable-small; small+scan: --enable-small --enable-scan"
    echo "(doc/embedded.md, \"Code size\")."
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
