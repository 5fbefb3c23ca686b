#!/bin/sh
# gcc compiling a small program (cc1 and as inherit LD_PRELOAD).
. "${top_srcdir:-$(dirname "$0")/../..}/t/preload/common.sh"
need gcc
cat > "$TMP/prog.c" <<'C'
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
static int cmp(const void *a, const void *b) { return *(const int *)a - *(const int *)b; }
int main(void)
{
    int n = 100000, *v = malloc(n * sizeof *v);
    unsigned s = 1;
    for (int i = 0; i < n; i++)
        v[i] = (int)((s = s * 1103515245u + 12345u) >> 8) % 1000;
    qsort(v, n, sizeof *v, cmp);
    char *buf = calloc(1, 64);
    strcpy(buf, "sorted");
    printf("%s %d %d %d\n", buf, v[0], v[n / 2], v[n - 1]);
    free(buf);
    free(v);
    return 0;
}
C
$RUN gcc -O2 -Wall -o "$TMP/prog" "$TMP/prog.c" || fail "gcc failed"
out=$($RUN "$TMP/prog") || fail "program failed"
want=$("$TMP/prog")
echo "gcc: $out"
[ "$out" = "$want" ] && [ "${out%% *}" = sorted ] || fail "expected '$want'"
