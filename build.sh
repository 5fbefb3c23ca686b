#!/bin/sh
# build.sh - the project's one entry point on a fresh Debian 12 machine.
#
#   ./build.sh bench   install what is missing, build a release build in
#                      _build/bench, run the benchmark
#   ./build.sh test    install what is missing, build and run every test:
#                      make check (Check unit, model and guarantee tests at
#                      each block size, the shim under real programs),
#                      valgrind, ASan+UBSan, a 32-bit build (natively or
#                      under qemu-i386, as the kernel allows), the libFuzzer
#                      harnesses (60 s each), the Cortex-M cores under QEMU
#                      and make distcheck
#   ./build.sh deps    only install the Debian packages
#
# Missing packages are installed with apt-get when run as root; otherwise
# the exact apt-get line is printed and the script stops.
set -eu
cd "$(dirname "$0")"
TOP=$(pwd)
JOBS=$(nproc 2>/dev/null || echo 2)

PKGS="build-essential autoconf automake libtool pkg-config check
      libjemalloc-dev libmimalloc-dev libffi-dev gcc-multilib valgrind gnuplot-nox
      gcc-arm-none-eabi libnewlib-arm-none-eabi qemu-system-arm
      python3 sqlite3 git redis-server redis-tools libpython3.11-testsuite
      qemu-user clang libclang-rt-14-dev"

deps() {
    missing=
    for p in $PKGS; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" ||
            missing="$missing $p"
    done
    [ -z "$missing" ] && return 0
    line="apt-get install -y --no-install-recommends$missing"
    if [ "$(id -u)" != 0 ]; then
        echo "build.sh: missing packages; run as root:" >&2
        echo "  apt-get update && $line" >&2
        exit 1
    fi
    echo "build.sh: installing$missing"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $line -qq
}

bootstrap() {
    [ -x configure ] && [ configure -nt configure.ac ] &&
        [ Makefile.in -nt Makefile.am ] && return 0
    autoreconf -fi
}

# configure DIR [configure args...]: an out-of-tree build in DIR
build() {
    dir=$1
    shift
    mkdir -p "$dir"
    (cd "$dir" && { [ -f Makefile ] || "$TOP/configure" -q "$@"; } &&
        make -s -j"$JOBS")
}

step() { printf '\n==== %s\n' "$*"; }

# How this machine runs 32-bit x86 programs: "native" when the kernel
# executes them, "qemu-i386" when only Debian's qemu-user does (kernels built
# or booted without IA-32 emulation), found by running a probe, not guessed.
m32_runner() {
    probe=$(mktemp -d)
    printf 'int main(void) { return sizeof(void *) == 4 ? 0 : 1; }\n' > "$probe/p.c"
    how=none
    if gcc -m32 -o "$probe/p" "$probe/p.c" 2> "$probe/err"; then
        if "$probe/p" 2> /dev/null; then
            how=native
        elif command -v qemu-i386 > /dev/null && qemu-i386 "$probe/p"; then
            how=qemu-i386
        fi
    else
        cat "$probe/err" >&2
    fi
    rm -rf "$probe"
    echo "$how"
}

case "${1:-}" in
deps)
    deps
    ;;
bench)
    # Always a release build of its own (no --enable-debug, -O2), whatever
    # ./build.sh test configured in _build/default; the report's machine
    # table shows these flags.
    deps
    bootstrap
    [ -f _build/bench/config.status ] &&
        [ "$(_build/bench/config.status --config)" != "'CFLAGS=-g -O2'" ] &&
        rm -f _build/bench/Makefile # configured otherwise: reconfigure
    build _build/bench CFLAGS="-g -O2"
    make -s -C _build/bench bench
    ;;
test)
    deps
    bootstrap
    step "default build: make check"
    build _build/default --enable-debug
    make -s -C _build/default -j"$JOBS" check
    step "valgrind"
    make -s -C _build/default check-valgrind
    # the small builds' choices (--enable-small, and with it the
    # table-scanning free-run layer --enable-scan), with debug checks: four
    # test programs at a tenth of their iterations, so that each costs about
    # a minute (mostly configure and the build)
    for cfg in small scan; do
        opts="--enable-small --enable-debug"
        [ $cfg = scan ] && opts="$opts --enable-scan"
        step "$cfg build ($opts): core, model, guarantee, collector tests"
        mkdir -p _build/$cfg
        progs="t/test_core_b16 t/test_model_b16 t/test_guarantee_b16 t/test_gc_b16"
        (cd _build/$cfg && { [ -f Makefile ] || "$TOP/configure" -q $opts \
            --disable-preload --disable-shared; } &&
            make -s -j"$JOBS" $progs &&
            for t in $progs; do UNIT_SCALE_PCT=10 ./$t || exit 1; done)
    done
    step "ASan + UBSan: make check"
    build _build/asan --enable-sanitizers --enable-debug --disable-shared
    make -s -C _build/asan -j"$JOBS" check
    # no 32-bit Check: the same tests run on the portable runner
    case $(m32_runner) in
    native)
        step "32-bit (-m32): make check, run natively"
        PKG_CONFIG_LIBDIR=/usr/lib/i386-linux-gnu/pkgconfig \
            build _build/m32 CC="gcc -m32" --enable-debug
        make -s -C _build/m32 -j"$JOBS" check
        ;;
    qemu-i386)
        # a cross build (configure must not run its probes) whose tests
        # run under qemu-i386; static, so no libtool wrapper script sits
        # between the emulator and a test program
        step "32-bit (-m32): make check, run under qemu-i386 (this kernel cannot execute 32-bit programs)"
        PKG_CONFIG_LIBDIR=/usr/lib/i386-linux-gnu/pkgconfig \
            build _build/m32-qemu CC="gcc -m32" --host=i686-pc-linux-gnu \
            --build="$(gcc -dumpmachine)" --disable-shared --enable-debug \
            CATENA_TEST_EXEC=qemu-i386
        # emulation is ~10x slower: the randomized tests run a quarter of
        # their iterations (the native 64-bit runs above ran them all)
        UNIT_SCALE_PCT=25 make -s -C _build/m32-qemu -j"$JOBS" check
        ;;
    *)
        echo "build.sh: cannot build or run 32-bit x86 programs (gcc -m32 or qemu-i386 failed)" >&2
        exit 1
        ;;
    esac
    step "libFuzzer: each harness for 60 s from its corpus (make fuzz)"
    make -s -C _build/default fuzz FUZZ_TIME=60
    step "Cortex-M0/M3/M4F/M33 under QEMU: make check-cortex-m"
    make -s -C _build/default check-cortex-m
    step "make distcheck"
    # the tarball builds and its tests pass; the shim's tests (real programs,
    # CPython's suites: minutes) already ran above, so the check build of
    # the tarball leaves the shim out
    make -s -C _build/default distcheck DISTCHECK_CONFIGURE_FLAGS=--disable-preload
    step "all tests passed"
    ;;
*)
    sed -n '2,17s/^# \{0,1\}//p' "$0"
    exit 2
    ;;
esac
