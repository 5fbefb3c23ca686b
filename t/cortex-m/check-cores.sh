#!/bin/sh
# check-cores.sh SRCDIR OUTDIR - `make check-cortex-m`: for every core in
# port/cortex-m/boards.txt, configure a cross build (--host=arm-none-eabi with that core's
# flags and QEMU board) in OUTDIR/<core>, build it and run its `make check`
# under QEMU; then print one summary line per core.  Exit 0 only if every
# core passed.  An existing build directory is reused (make reconfigures it
# when configure changed).
#
#   CM_CORES     cores to run (default: all of boards.txt), e.g. "m0 m33"
#   CM_JOBS      make -j for each build (default 2)
#   CM_CFLAGS    optimisation flags (default -O2 -g)
#   CM_HOST      the cross host (default arm-none-eabi)
#   CM_CONFIGURE more configure options (e.g. --enable-small: the small
#                build, which `make check-cortex-m` in a build configured
#                with it passes on)
# (CHECK_* would clash with Check's CHECK_CFLAGS, which make exports.)

srcdir=$1
out=$2
if [ -z "$srcdir" ] || [ -z "$out" ]; then
    echo "usage: $0 SRCDIR OUTDIR" >&2
    exit 2
fi
host=${CM_HOST:-arm-none-eabi}
jobs=${CM_JOBS:-2}
opt=${CM_CFLAGS:--O2 -g}
# the hosted build's compiler settings must not leak into the cross builds
unset CC CPP CFLAGS CPPFLAGS LDFLAGS LIBS

if ! command -v "$host-gcc" >/dev/null 2>&1; then
    echo "check-cortex-m: $host-gcc not found (install gcc-arm-none-eabi" \
         "libnewlib-arm-none-eabi qemu-system-arm, see build.sh deps)" >&2
    exit 1
fi
mkdir -p "$out" || exit 1

now() { date +%s; }
summary=
status=0
while read -r core board script flags; do
    case $core in '' | '#'*) continue ;; esac
    if [ -n "$CM_CORES" ]; then
        case " $CM_CORES " in *" $core "*) ;; *) continue ;; esac
    fi
    dir=$out/$core
    log=$out/$core.log
    t0=$(now)
    echo "check-cortex-m: $core ($flags${CM_CONFIGURE:+ $CM_CONFIGURE}) on $board, in $dir"
    mkdir -p "$dir"
    result=
    if [ ! -f "$dir/Makefile" ]; then
        # shellcheck disable=SC2086
        # shellcheck disable=SC2086  # CM_CONFIGURE: words
        (cd "$dir" && "$srcdir/configure" --host="$host" $CM_CONFIGURE \
            CFLAGS="$flags $opt" CATENA_QEMU_BOARD="$board") >"$log" 2>&1 ||
            result="configure FAILED"
    else
        : >"$log"
    fi
    t1=$(now)
    if [ -z "$result" ]; then
        # everything `make check` needs, so that the test phase is timed alone
        make -C "$dir" -j"$jobs" all >>"$log" 2>&1 &&
            make -C "$dir" -j"$jobs" check TESTS= >>"$log" 2>&1 ||
            result="build FAILED"
    fi
    t2=$(now)
    if [ -z "$result" ]; then
        make -C "$dir" -j"$jobs" check >>"$log" 2>&1
        rc=$?
        # automake's summary: "# TOTAL: 11" ... in test-suite.log
        counts=$(awk '/^# (TOTAL|PASS|SKIP|XFAIL|FAIL|XPASS|ERROR):/ {
                        sub(":", "", $2)
                        if ($3 != 0 || $2 == "PASS")
                            printf "%s %s, ", $3, tolower($2) }' \
                   "$dir/test-suite.log" 2>/dev/null)
        counts=${counts%, }
        if [ $rc = 0 ]; then result="PASS ($counts)"
        else
            result="FAIL (${counts:-no test-suite.log})"
            bad=$(sed -n 's/^\(FAIL\|ERROR\): \(.*\)/\2/p' "$log" | tr '\n' ' ')
            [ -n "$bad" ] && result="$result: $bad"
        fi
    fi
    case $result in PASS*) ;; *) status=1 ;; esac
    t3=$(now)
    times="$((t1 - t0))+$((t2 - t1))+$((t3 - t2))s"
    line=$(printf '%-4s %-11s %-11s %s' "$core" "$board" "$times" "$result")
    echo "$line"
    summary="$summary$line
"
done <"$srcdir/port/cortex-m/boards.txt"

echo
echo "==== check-cortex-m summary (logs: $out/<core>.log, <core>/test-suite.log)"
echo "core board       configure+build+tests"
printf '%s' "$summary"
[ $status = 0 ] && echo "all cores passed" || echo "some cores FAILED"
exit $status
