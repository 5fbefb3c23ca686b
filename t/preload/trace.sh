#!/bin/sh
# Record a real program's allocations (sqlite3, then python3 with threads)
# and validate the traces: header, ops, ids, no free of an unknown id.
. "${top_srcdir:-$(dirname "$0")/../..}/t/preload/common.sh"
check=$top_builddir/t/preload/trace_check
need sqlite3
echo "create table t(a, b); insert into t select value, randomblob(value % 300) from generate_series(1, 20000); delete from t where a % 2; select count(*) from t;" |
    CATENA_TRACE="$TMP/sqlite.trace" $RUN sqlite3 :memory: > "$TMP/out" || fail "sqlite3 failed"
[ "$(cat "$TMP/out")" = 10000 ] || fail "sqlite3 output"
"$check" "$TMP/sqlite.trace" || fail "sqlite3 trace invalid"
if [ -x /usr/bin/python3 ]; then
    CATENA_TRACE="$TMP/py.trace" PYTHONMALLOC=malloc $RUN /usr/bin/python3 -c '
import threading
def work(k):
    l = [str(i) * (i % 50) for i in range(20000)]
    d = {i: bytearray(i % 5000) for i in range(2000)}
    return len(l) + len(d)
ts = [threading.Thread(target=work, args=(k,)) for k in range(4)]
[t.start() for t in ts]; [t.join() for t in ts]
print("ok")' > "$TMP/out" || fail "python3 failed"
    [ "$(cat "$TMP/out")" = ok ] || fail "python3 output"
    "$check" "$TMP/py.trace" || fail "python3 trace invalid"
fi
# A trace survives every way a process ends (records go to the file as
# they are made; a zero tail ends a trace that was not cut at exit).
prog=$top_builddir/t/preload/test_diag
[ -x "$top_builddir/t/preload/.libs/test_diag" ] && prog=$top_builddir/t/preload/.libs/test_diag
ulimit -c 0 2>/dev/null
CATENA_TRACE="$TMP/exit.trace" $RUN "$prog" trace-exit || fail "trace-exit failed"
"$check" "$TMP/exit.trace" 12345 40 || fail "_exit: trace lost"
st=0
CATENA_TRACE="$TMP/abort.trace" $RUN "$prog" trace-abort 2> "$TMP/err" || st=$?
[ "$st" = 134 ] && grep -q 'double free' "$TMP/err" || fail "trace-abort: status $st: $(cat "$TMP/err")"
"$check" "$TMP/abort.trace" 12345 40 || fail "abort: trace lost"
CATENA_TRACE="$TMP/pre.trace" $RUN "$prog" trace-exec "$TMP/post.trace" || fail "trace-exec failed"
"$check" "$TMP/pre.trace" 12345 40 || fail "exec: the trace before exec lost"
"$check" "$TMP/post.trace" 12345 40 || fail "exec: the trace after exec lost"
# killed: as much as was recorded before the signal
CATENA_TRACE="$TMP/kill.trace" $RUN "$prog" trace-kill && fail "not killed"
"$check" "$TMP/kill.trace" 12345 40 || fail "SIGKILL: trace lost"
# no descriptor held between calls: files that reuse its number stay ours
CATENA_TRACE="$TMP/fds.trace" $RUN "$prog" trace-fds "$TMP/mine" || fail "trace-fds failed"
for i in 0 1 2 3 4; do
    [ "$(cat "$TMP/mine.$i")" = mine ] || fail "trace records written into the program's file $i"
done
"$check" "$TMP/fds.trace" 12345 3840 || fail "trace-fds: trace invalid"
# a child that runs a program traced to the same path (no %p) replaces
# the file: the parent, still mapping the old one, must run on unharmed
st=0
CATENA_TRACE="$TMP/same.trace" $RUN sh -c 'for i in 1 2 3; do ls / > /dev/null; done; echo ok' > "$TMP/out" 2> "$TMP/err" || st=$?
[ "$st" = 0 ] && [ "$(cat "$TMP/out")" = ok ] || fail "same path: status $st: $(cat "$TMP/err")"
"$check" "$TMP/same.trace" || fail "same path: the last trace invalid"
# dash ends with _exit: its trace was empty when records were buffered
if command -v dash > /dev/null 2>&1; then
    CATENA_TRACE="$TMP/dash.trace" $RUN dash -c 'x=$(echo a b c); for w in $x; do echo "$w"; done' > "$TMP/out" || fail "dash failed"
    [ "$(cat "$TMP/out" | tr '\n' ' ')" = "a b c " ] || fail "dash output"
    "$check" "$TMP/dash.trace" || fail "dash trace invalid"
fi
# the replayer reads a trace with a zero tail
bench=$top_builddir/bench/catena-bench
if [ -x "$bench" ]; then
    "$bench" replay "$TMP/exit.trace" --reps 1 --out "$TMP/bench" > "$TMP/out" 2>&1 || fail "catena-bench replay of a zero-tailed trace: $(cat "$TMP/out")"
    # ...but not data after the zero record that ends it
    printf 'x' >> "$TMP/exit.trace"
    ! "$bench" replay "$TMP/exit.trace" --reps 1 --out "$TMP/bench" > "$TMP/out" 2>&1 || fail "replay accepted data after the end"
    grep -q 'data after the end' "$TMP/out" || fail "replay: $(cat "$TMP/out")"
    ! "$check" "$TMP/exit.trace" 2> /dev/null || fail "trace_check accepted data after the end"
fi
