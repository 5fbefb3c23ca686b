#!/bin/sh
# cost.sh SRCDIR OUTDIR [DOC] - `make cortex-m-cost`: build port/cortex-m/
# cost.c with lib/ and bench/mpheap.c for the M0 and the M4F of
# boards.txt (-Os, as a firmware), run each under QEMU with -icount
# shift=10 (see cost.c for the method), and print the instructions per
# call as a Markdown table; with DOC also write it into that file between
# "<!-- cortex-m-cost begin -->" and "<!-- cortex-m-cost end -->".
# Exit 1 when a build fails or a run does not end with "cost: ok" (the
# timer calibration failed, or a heap could not be set up).
#
#   CM_COST_CORES  cores to run (default "m0 m4f")
#   CM_COST_SMALL  1: measure the small build (-DCATENA_SMALL=1, as
#                  ./configure --enable-small); scan: the small build with
#                  lib/scan.c (--enable-small --enable-scan)
#   CC_PREFIX      tool prefix (default arm-none-eabi-)

srcdir=$1
out=$2
doc=$3
if [ -z "$srcdir" ] || [ -z "$out" ]; then
    echo "usage: $0 SRCDIR OUTDIR [DOC]" >&2
    exit 2
fi
pfx=${CC_PREFIX:-arm-none-eabi-}
cc=${pfx}gcc
port=$srcdir/port/cortex-m
lib=$srcdir/lib
cores=${CM_COST_CORES:-m0 m4f}
if ! command -v "$cc" >/dev/null 2>&1; then
    echo "cortex-m-cost: $cc not found" >&2
    exit 1
fi
mkdir -p "$out" || exit 1

src="$port/cost.c $port/startup.c $srcdir/bench/mpheap.c"
run=index small=
case ${CM_COST_SMALL:-0} in
1) small=-DCATENA_SMALL=1 ;;
scan) run=scan small="-DCATENA_SMALL=1 -DCATENA_SCAN=1" ;;
esac
for n in table $run spine heap check alloc access gc regs_arm; do
    src="$src $lib/$n.c"
done
cflags="-std=c99 -Os -g -Wall -Wextra -Werror -mno-unaligned-access -DCATENA_NO_CONFIG_H $small \
 -I$srcdir/include -I$srcdir/bench -ffunction-sections -fdata-sections"
ldflags="--specs=nano.specs --specs=rdimon.specs -L$port -Wl,--gc-sections -Wl,-u,cm_reset"

status=0
: >"$out/cost.txt"
while read -r core board script flags; do
    case $core in '' | '#'*) continue ;; esac
    case " $cores " in *" $core "*) ;; *) continue ;; esac
    elf=$out/cost-$core.elf
    # shellcheck disable=SC2086
    if ! $cc $flags $cflags -DCOST_CORE="\"$core\"" $ldflags -T "$script" \
            -o "$elf" $src; then
        echo "cortex-m-cost: $core: build FAILED" >&2
        status=1
        continue
    fi
    CATENA_QEMU_BOARD=$board "$port/qemu-run" -icount shift=10 "$elf" \
        </dev/null >"$out/cost-$core.log" 2>&1
    cat "$out/cost-$core.log" >>"$out/cost.txt"
    if ! grep -q '^cost: ok$' "$out/cost-$core.log"; then
        echo "cortex-m-cost: $core on $board FAILED:" >&2
        cat "$out/cost-$core.log" >&2
        status=1
    fi
done <"$port/boards.txt"

# the table: per stream and operation, catena's and mpheap's mean / max
# on each core
awk -v cores="$cores" '
    $1 == "cost" && NF >= 10 {
        k = $4 SUBSEP $5; c = $2 SUBSEP $3
        if (!(k in seen)) { seen[k] = 1; order[++n] = k }
        mean[k, c] = $7; max[k, c] = $8; calls[k, c] = $6; fail[k, c] = $9
        w = $10; for (i = 11; i <= NF; i++) w = w " " $i; where[k, c] = w
    }
    END {
        nc = split(cores, cs, " ")
        printf "| stream | call |"
        for (i = 1; i <= nc; i++) printf " %s catena mean / max | %s mpheap mean / max |", cs[i], cs[i]
        printf "\n|---|---|"
        for (i = 1; i <= nc; i++) printf "---|---|"
        printf "\n"
        for (j = 1; j <= n; j++) {
            split(order[j], sk, SUBSEP)
            printf "| %s | %s |", sk[1], sk[2]
            for (i = 1; i <= nc; i++)
                for (h = 1; h <= 2; h++) {
                    c = cs[i] SUBSEP (h == 1 ? "catena" : "mpheap")
                    if ((order[j], c) in mean)
                        printf " %s / **%s** |", mean[order[j], c], max[order[j], c]
                    else printf " – |"
                }
            printf "\n"
        }
        printf "\nCalls, failed calls and where the maximum was (%s):\n\n", cs[1]
        printf "| stream | call | catena calls / failed | catena max in | mpheap calls / failed | mpheap max in |\n|---|---|---|---|---|---|\n"
        for (j = 1; j <= n; j++) {
            split(order[j], sk, SUBSEP)
            a = cs[1] SUBSEP "catena"; b = cs[1] SUBSEP "mpheap"
            printf "| %s | %s | %s / %s | %s | %s / %s | %s |\n", sk[1], sk[2],
                calls[order[j], a], fail[order[j], a], where[order[j], a],
                calls[order[j], b], fail[order[j], b], where[order[j], b]
        }
    }' "$out/cost.txt" >"$out/table.md"

{
    cat "$out/table.md"
    echo
    echo "Instructions per call (mean / **maximum**), arm-none-eabi-gcc $($cc -dumpversion) -Os,"
    echo "QEMU $(${CATENA_QEMU:-qemu-system-arm} --version | sed -n '1s/.*version \([^ ]*\).*/\1/p') -icount shift=10, 64 KiB arena, block 16 B."
    grep '^cost: .* timer' "$out/cost.txt" | sed 's/^cost: /    /'
    grep '^cost-oom' "$out/cost.txt" | sed 's/^cost-oom /    /'
    echo
    first=$(echo "$cores" | cut -d' ' -f1)
    echo "catena's first large allocations over the checkerboard's one-block holes"
    echo "and their frees ($first), instructions in all and per extent:"
    echo
    grep "^cost-big $first catena" "$out/cost.txt" | head -6 |
        awk '{ k = $6; printf "    %5s B: %3d extents, alloc %6d (%d per extent), free %6d (%d per extent)\n",
               $4, k, $9, ($9 + k / 2) / k, $11, ($11 + k / 2) / k }'
    echo
    echo "The largest request each heap can serve over that checkerboard:"
    echo
    grep '^cost-largest' "$out/cost.txt" | sed 's/^cost-largest /    /'
} >"$out/report.md"
cat "$out/report.md"

if [ -n "$doc" ] && [ -f "$doc" ]; then
    if grep -q '^<!-- cortex-m-cost begin -->' "$doc"; then
        awk -v f="$out/report.md" '
            /^<!-- cortex-m-cost begin -->/ { print; while ((getline l < f) > 0) print l; skip = 1; next }
            /^<!-- cortex-m-cost end -->/   { skip = 0 }
            !skip' "$doc" >"$doc.tmp" && mv "$doc.tmp" "$doc"
        echo "cortex-m-cost: table written into $doc"
    else
        echo "cortex-m-cost: no cortex-m-cost markers in $doc; not updated" >&2
    fi
fi
exit $status
