#!/bin/sh
# sqlite3 in memory: inserts, deletes, an index, a query with a known answer.
. "${top_srcdir:-$(dirname "$0")/../..}/t/preload/common.sh"
need sqlite3
out=$($RUN sqlite3 :memory: <<'SQL'
create table t(a integer primary key, b integer, c text);
insert into t select value, value * 2, printf('row %d %s', value, hex(randomblob(value % 64)))
  from generate_series(1, 100000);
create index tb on t(b);
delete from t where a % 3 = 0;
update t set c = upper(c) where a % 5 = 0;
select count(*), sum(b), count(distinct substr(c, 1, 3)) from t where b > 10;
SQL
) || fail "sqlite3 exited $?"
echo "sqlite3: $out"
# a not divisible by 3 in 1..100000 is 66667 rows; sum of 2a over them is
# 6666733334; b > 10 drops a = 1, 2, 4, 5 (sum 24).
[ "$out" = "66663|6666733310|2" ] || fail "expected 66663|6666733310|2"
