#!/bin/sh
# The shim's diagnoses: programs with one bug each (t/preload/test_diag),
# run under the shim; each must end with the one line that names its bug.
# Also the options' own messages (CATENA_LARGE, CATENA_STATS, catena-run).
. "${top_srcdir:-$(dirname "$0")/../..}/t/preload/common.sh"
prog=$top_builddir/t/preload/test_diag
[ -x "$prog" ] || fail "$prog not built"
[ -x "$top_builddir/t/preload/.libs/test_diag" ] && prog=$top_builddir/t/preload/.libs/test_diag
ulimit -c 0 2>/dev/null

# expect_abort CASE TEXT [VAR=VALUE...]: SIGABRT, and stderr is one line
# that holds TEXT and an address.
expect_abort() {
    c=$1 text=$2
    shift 2
    st=0
    env "$@" LD_PRELOAD="$SHIM" "$prog" "$c" 2> "$TMP/err" || st=$?
    [ "$st" = 134 ] || fail "$c ($*): exit status $st, not SIGABRT: $(cat "$TMP/err")"
    [ "$(wc -l < "$TMP/err")" = 1 ] || fail "$c ($*): not one line: $(cat "$TMP/err")"
    grep -q -F -- "$text" "$TMP/err" || fail "$c ($*): expected '$text', got: $(cat "$TMP/err")"
    grep -q ' 0x' "$TMP/err" || fail "$c ($*): no address: $(cat "$TMP/err")"
    echo "ok: $c $*: $(cat "$TMP/err")"
}

over="freed object overwritten (use after free, or an overflow of the object before it)"
before="heap corrupt (found by CATENA_CHECK before the call)"
# Corrupt links.  With the caches (the default) every read of a link is
# checked; without them, and past the caches' sizes, the links are
# catena's free-run headers, which lib/ checks before following them
# (CATENA_ECORRUPT); CATENA_CHECK finds them earlier, before the call.
lib="heap metadata corrupt"
expect_abort overflow "catena: malloc(): $over"
expect_abort uaf "catena: malloc(): $over"
expect_abort overflow "$lib" CATENA_TCACHE=0
expect_abort uaf "$lib" CATENA_TCACHE=0
expect_abort overflow-big "$lib"
expect_abort overflow "$before" CATENA_TCACHE=0 CATENA_CHECK=1
expect_abort uaf "$before" CATENA_TCACHE=0 CATENA_CHECK=1
# CATENA_CHECK validates the caches too, before the call
expect_abort uaf-other "$before: $over" CATENA_CHECK=1
env LD_PRELOAD="$SHIM" "$prog" uaf-other 2> "$TMP/err" || fail "uaf-other without CATENA_CHECK: $(cat "$TMP/err")"
# ...and the depots (objects a thread's full list gave back), which a
# refill reads with the same checks
expect_abort uaf-depot "catena: malloc(): $over"
expect_abort uaf-depot "$before: $over" CATENA_CHECK=1
expect_abort double-depot "catena: free(): double free"

# What a bad free is, with and without the caches.
for tc in 1 0; do
    expect_abort wild "catena: free(): free of a pointer that is not an allocated object (inside free heap space)" CATENA_TCACHE=$tc
    expect_abort double-merged "catena: free(): double free (pointer to free memory)" CATENA_TCACHE=$tc
    expect_abort double-aligned "catena: free(): double free (aligned object)" CATENA_TCACHE=$tc
    # nothing may be read below an arena's start (it may be unmapped)
    expect_abort arena-start "catena: free(): invalid pointer (not from this allocator)" CATENA_TCACHE=$tc
done

# CATENA_STATS counts every ENOMEM, above PTRDIFF_MAX too.
CATENA_STATS=1 LD_PRELOAD="$SHIM" "$prog" enomem 2> "$TMP/err" || fail "enomem: $(cat "$TMP/err")"
grep -q 'catena: ENOMEM 4 times' "$TMP/err" || fail "enomem count: $(cat "$TMP/err")"

# CATENA_LARGE above its cap says so, once, and the program runs.
CATENA_LARGE=64M LD_PRELOAD="$SHIM" "$prog" large 2> "$TMP/err" || fail "large: $(cat "$TMP/err")"
grep -q 'catena: CATENA_LARGE (65536 KiB) is above the largest threshold (a quarter of an arena): using ' "$TMP/err" || fail "CATENA_LARGE cap not reported: $(cat "$TMP/err")"
[ "$(wc -l < "$TMP/err")" = 1 ] || fail "CATENA_LARGE: $(cat "$TMP/err")"

# catena-run --help from the build tree: the option table, nothing else.
run=$top_builddir/preload/catena-run
"$run" --help > "$TMP/out" 2>&1 || fail "catena-run --help: exit status $?"
grep -q 'CATENA_ARENA=SIZE' "$TMP/out" || fail "catena-run --help: no option table: $(cat "$TMP/out")"
! grep -q 'ld\.so' "$TMP/out" || fail "catena-run --help: $(cat "$TMP/out")"
[ "$("$run" sh -c 'echo "$LD_PRELOAD"')" != "" ] || fail "catena-run did not preload"
st=0
CATENA_LIB=$TMP/none.so "$run" --help > "$TMP/out" 2>&1 || st=$?
[ "$st" = 127 ] || fail "catena-run --help without the library: exit status $st"
echo "ok: options"
