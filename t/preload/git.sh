#!/bin/sh
# git init / add / commit / log in a scratch repository, all under the shim.
. "${top_srcdir:-$(dirname "$0")/../..}/t/preload/common.sh"
need git
cd "$TMP" || exit 1
export GIT_CONFIG_NOSYSTEM=1 HOME="$TMP" GIT_AUTHOR_DATE='2026-01-01T00:00:00Z' \
    GIT_COMMITTER_DATE='2026-01-01T00:00:00Z'
g() { $RUN git -c user.name=catena -c user.email=catena@example.org "$@"; }
g init -q repo || fail "git init"
cd repo || exit 1
i=0
while [ $i -lt 200 ]; do
    echo "file $i" > "f$i.txt"
    i=$((i + 1))
done
seq 1 20000 > big.txt
g add . || fail "git add"
g commit -qm "first" || fail "git commit"
echo change >> f1.txt
g commit -qam "second" || fail "git commit 2"
out=$(g log --format=%s | tr '\n' ' ')
files=$(g ls-files | wc -l)
echo "git: log '$out', $files files"
[ "$out" = "second first " ] && [ "$files" -eq 201 ] || fail "unexpected git output"
g gc -q || fail "git gc"
g fsck --no-progress 2>&1 | grep -q . && fail "git fsck reported problems"
exit 0
