#!/bin/sh
# python3 (Debian's, not a pyenv build) with PYTHONMALLOC=malloc so every
# object goes through the shim: dict / list / string churn, known output.
. "${top_srcdir:-$(dirname "$0")/../..}/t/preload/common.sh"
PY=/usr/bin/python3
[ -x $PY ] || { echo "SKIP: $PY not installed"; exit 77; }
cat > "$TMP/churn.py" <<'PYEOF'
import hashlib
d = {}
for i in range(200000):
    d[str(i)] = [i] * (i % 7) + [str(i) * (i % 5)]
for i in range(0, 200000, 2):
    del d[str(i)]
s = "".join(d[k][-1] for k in list(d)[:2000])
big = bytearray(3 << 20)          # large objects too, grown by realloc
for i in range(0, len(big), 4096):
    big[i] = i % 251
big += b"x" * (5 << 20)
t = []
for r in range(20):
    t.append(("%d" % r) * 50000)
    if len(t) > 5:
        t.pop(0)
print(len(d), sum(len(v) for v in d.values()), len(s),
      hashlib.sha1(bytes(big)).hexdigest()[:12], len("".join(t)))
PYEOF
out=$(PYTHONMALLOC=malloc $RUN $PY "$TMP/churn.py") || fail "python3 exited $?"
echo "python3: $out"
# the same script under glibc's malloc gives the answer
expect=$($PY "$TMP/churn.py")
[ "$out" = "$expect" ] || fail "expected '$expect'"
