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
