#!/bin/sh
# stack-depth-selftest.sh SRCDIR OUTDIR - port/cortex-m/stack-depth.awk
# must find recursion: a chain a > b > c passes and is reported as the
# deepest with its frames summed; direct recursion (f > f) and mutual
# recursion (g > h > g) each fail with a CYCLE line.  Exit 0 when it does.
#   CC_PREFIX  tool prefix (default arm-none-eabi-)

srcdir=$1
out=$2
awkf=$srcdir/port/cortex-m/stack-depth.awk
cc=${CC_PREFIX:-arm-none-eabi-}gcc
mkdir -p "$out" || exit 1
fail() { echo "stack-depth-selftest: FAIL: $*"; exit 1; }

cat >"$out/chain.c" <<'C'
int c(volatile int *p);
int b(volatile int *p);
int c(volatile int *p) { volatile int x[8]; x[0] = *p; return x[0]; }
int b(volatile int *p) { volatile int x[4]; x[0] = c(p); return x[0]; }
int a(volatile int *p) { return b(p) + 1; }
C
cat >"$out/rec.c" <<'C'
int f(int n) { return n ? f(n - 1) + 1 : 0; }
int h(int n);
int g(int n) { return n ? h(n - 1) : 0; }
int h(int n) { return n ? g(n - 1) + 1 : 1; }
C
for n in chain rec; do
    (cd "$out" && $cc -mcpu=cortex-m0 -mthumb -O0 -fcallgraph-info=su -c "$n.c") ||
        fail "cannot compile $n.c"
done
r=$(awk -v roots=a -f "$awkf" "$out/chain.ci") || fail "a chain was refused: $r"
echo "$r" | grep -q '^deepest [0-9]* chain: a ([0-9]*) > b ([0-9]*) > c ([0-9]*)$' ||
    fail "chain a > b > c not reported: $r"
# the total is the sum of the frames listed
echo "$r" | awk '$1 == "deepest" { s = 0; for (i = 4; i <= NF; i++)
                   if ($i ~ /^\([0-9]+\)$/) { gsub(/[()]/, "", $i); s += $i }
                   exit s == $2 ? 0 : 1 }' || fail "the chain's frames do not add up: $r"
r=$(awk -v roots=f -f "$awkf" "$out/rec.ci") && fail "recursion accepted: $r"
echo "$r" | grep -q '^CYCLE: f > f$' || fail "direct recursion not named: $r"
echo "$r" | grep -Eq '^CYCLE: (g > h > g|h > g > h)$' || fail "mutual recursion not named: $r"
echo "stack-depth-selftest: ok (a chain summed, direct and mutual recursion refused)"
