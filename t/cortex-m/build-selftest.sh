#!/bin/sh
# build-selftest.sh [OUTDIR] - build t/cortex-m/selftest.c for every core in
# port/cortex-m/boards.txt, run it under QEMU through the port's qemu-run
# (with the port's start-up code and linker scripts) and check that PASS, FAIL
# and a CPU fault each come back as the exit status automake expects.
# Exit 0 only if every core behaves.  CC defaults to arm-none-eabi-gcc.

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
port=$top/port/cortex-m
out=${1:-${TMPDIR:-/tmp}/catena-cortex-m-selftest}
cc=${CC:-arm-none-eabi-gcc}
size=${SIZE:-arm-none-eabi-size}
mkdir -p "$out" || exit 99

# -ffunction-sections + --gc-sections: tests then carry only what they use.
cflags="-std=c99 -Os -g -Wall -Wextra -DUNIT_BARE -I$top/t \
 -ffunction-sections -fdata-sections"
ldflags="--specs=nano.specs --specs=rdimon.specs -L$port -Wl,--gc-sections"

now() { date +%s.%N 2>/dev/null || date +%s; }

status=0
# variant  -D flag           expected exit status
variants="pass - 0
fail SELFTEST_FAIL 1
fault SELFTEST_FAULT 99"

while read -r core board script flags; do
    case $core in '' | '#'*) continue ;; esac
    line="$core on $board:"
    ok=1
    while read -r v def want; do
        elf=$out/selftest-$core-$v.elf
        d=; [ "$def" = - ] || d=-D$def
        # shellcheck disable=SC2086  # flags are word lists on purpose
        if ! $cc $flags $cflags $d $ldflags -T "$port/$script" \
                -o "$elf" "$here/selftest.c" "$port/startup.c"; then
            line="$line $v: BUILD ERROR;"; ok=0; continue
        fi
        t0=$(now)
        CATENA_QEMU_BOARD=$board "$port/qemu-run" "$elf" </dev/null \
            >"$out/selftest-$core-$v.log" 2>&1
        got=$?
        t1=$(now)
        secs=$(echo "$t0 $t1" | awk '{ printf "%.2f", $2 - $1 }')
        if [ "$got" = "$want" ]; then r=ok; else r="WRONG (want $want)"; ok=0; fi
        line="$line $v exit $got $r ${secs}s;"
    done <<VARIANTS
$variants
VARIANTS
    text=$($size -A "$out/selftest-$core-pass.elf" 2>/dev/null |
           awk '$1 == ".text" { print $2 }')
    text=${text:--}
    if [ $ok = 1 ]; then verdict=PASS; else verdict=FAIL; fi
    echo "$verdict: $line .text $text B"
    [ $ok = 1 ] || status=1
done <"$port/boards.txt"

if [ $status != 0 ]; then
    echo "selftest: some cores FAILED; logs in $out" >&2
    exit 1
fi
echo "selftest: all cores OK (logs in $out)"
