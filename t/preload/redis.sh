#!/bin/sh
# redis-server under the shim on 127.0.0.1 at a free port: fill it, read it
# back, delete, refill; started and stopped by its pid.
. "${top_srcdir:-$(dirname "$0")/../..}/t/preload/common.sh"
need redis-server redis-cli
port=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])' 2>/dev/null) ||
    port=$((20000 + $$ % 20000))
CATENA_STATS=1 $RUN redis-server --port "$port" --bind 127.0.0.1 --save '' \
    --appendonly no --daemonize no --dir "$TMP" > "$TMP/redis.log" 2>&1 &
pid=$!
stop() { kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; }
trap 'stop; rm -rf "$TMP"' EXIT
cli() { redis-cli -h 127.0.0.1 -p "$port" "$@"; }
i=0
while [ "$(cli ping 2>/dev/null)" != PONG ]; do
    i=$((i + 1))
    [ $i -lt 100 ] || { cat "$TMP/redis.log"; fail "redis-server did not start"; }
    kill -0 "$pid" 2>/dev/null || { cat "$TMP/redis.log"; fail "redis-server died"; }
    sleep 0.1
done
# 20000 keys of 100..1100 bytes, through the pipe protocol
/usr/bin/python3 - "$TMP/fill" <<'PY' || fail "cannot write commands"
import sys
with open(sys.argv[1], "w") as f:
    for i in range(20000):
        v = ("v%d-" % i) * (25 + i % 250)
        f.write("SET key:%d %s\r\n" % (i, v))
    for i in range(0, 20000, 5):
        f.write("DEL key:%d\r\n" % i)
    for i in range(20000, 24000):
        f.write("RPUSH list:%d %s\r\n" % (i % 100, "x" * (1 + i % 3000)))
PY
cli --pipe < "$TMP/fill" > "$TMP/pipe.out" 2>&1 || { cat "$TMP/pipe.out"; fail "redis-cli --pipe"; }
n=$(cli dbsize)
v=$(cli get key:12347)
want=$(/usr/bin/python3 -c 'print(("v12347-") * (25 + 12347 % 250))')
len=$(cli llen list:7)
frag=$(cli info memory | sed -n 's/^mem_fragmentation_ratio:\([0-9.]*\).*/\1/p')
echo "redis: dbsize $n, list:7 length $len, mem_fragmentation_ratio $frag"
[ "$n" = 16100 ] || fail "dbsize $n, expected 16100"
[ "$v" = "$want" ] || fail "wrong value for key:12347"
[ "$len" = 40 ] || fail "llen $len, expected 40"
cli get key:10 | grep -q . && fail "key:10 should be deleted"
stop
grep -q "catena: summary" "$TMP/redis.log" || { cat "$TMP/redis.log"; fail "no exit report"; }
grep "catena: summary" "$TMP/redis.log"
exit 0
