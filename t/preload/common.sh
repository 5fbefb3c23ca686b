# t/preload/common.sh - sourced by the preload test scripts.
# Sets SHIM (the built library), RUN (catena-run with it) and TMP (a
# scratch directory removed at exit); skips (77) when the shim was not
# built as a shared library (--disable-shared, sanitizer builds).
: "${top_builddir:=$(cd "$(dirname "$0")/../.." && pwd)}"
: "${top_srcdir:=$top_builddir}"
SHIM=$top_builddir/.libs/libcatena-preload.so
if [ ! -f "$SHIM" ]; then
    echo "SKIP: $SHIM not built (static-only build)"
    exit 77
fi
RUN="env LD_PRELOAD=$SHIM"
TMP=$(mktemp -d "${TMPDIR:-/tmp}/catena-preload.XXXXXX")
trap 'rm -rf "$TMP"' EXIT

need() {
    for p in "$@"; do
        command -v "$p" >/dev/null 2>&1 || { echo "SKIP: $p not installed"; exit 77; }
    done
}
fail() { echo "FAIL: $*"; exit 1; }
