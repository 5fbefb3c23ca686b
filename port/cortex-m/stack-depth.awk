# stack-depth.awk - the deepest call chain in GCC's -fcallgraph-info=su
# output (.ci files, VCG), and a check that nothing recurses.
#
#   awk -v roots="f g ..." -v indirect="caller:callee ..." -f stack-depth.awk *.ci
#
# Prints one line per root, "root BYTES chain: f (n) > g (m) > ...", then
# "deepest BYTES chain: ..." over all roots.  Prints "CYCLE: a > b > a" and
# exits 1 when the graph has a cycle (a recursive function or a mutual
# recursion: the collector must never recurse), and "DYNAMIC: f" (exit 1)
# for a frame whose size GCC could not bound.
#
# Nodes are matched by title: a static function's title is "file:name",
# an external one's its plain name, so a call to another file's function
# meets that file's node of the same title.  Calls through a pointer go to
# "__indirect_call"; `indirect` names the callee of each such call that
# the library makes itself (the allocator's hook into the collector), as
# pairs of function names.  Calls to functions without a node of their
# own (libgcc, memcpy, memset, a port's hooks) count 0 bytes.

# a node's function as GCC emitted it (with a clone's suffix: scan_obj.part.0)
function disp(t,    s) { s = t; sub(/.*:/, "", s); return s }
# the source function's name (the clone's suffix dropped)
function name_of(t,    s) { s = disp(t); sub(/\..*/, "", s); return s }

/^node:/ {
    if (!match($0, /title: "[^"]*"/)) next
    t = substr($0, RSTART + 8, RLENGTH - 9)
    if (match($0, /\\n[0-9]+ bytes \([a-z,]*\)/)) {
        s = substr($0, RSTART + 2, RLENGTH - 2)
        split(s, w, " ")
        frame[t] = w[1] + 0
        if (s ~ /dynamic/ && s !~ /bounded/)
            dyn[t] = 1
        defined[t] = 1
        byname[name_of(t)] = (name_of(t) in byname) ? byname[name_of(t)] " " t : t
    }
    next
}
/^edge:/ {
    match($0, /sourcename: "[^"]*"/); a = substr($0, RSTART + 13, RLENGTH - 14)
    match($0, /targetname: "[^"]*"/); b = substr($0, RSTART + 13, RLENGTH - 14)
    if (!((a, b) in seen)) { seen[a, b] = 1; kids[a] = kids[a] " " b }
    next
}

# depth(t): frame bytes of the deepest chain from t; best[t] its next hop
function depth(t, path,    k, n, i, d, m, c) {
    if (state[t] == 2) return memo[t]
    if (state[t] == 1) {  # on the current path: a cycle
        print "CYCLE: " path
        cycles++
        return 0
    }
    state[t] = 1
    m = 0; best[t] = ""
    n = split(kids[t], k, " ")
    for (i = 1; i <= n; i++) {
        c = k[i]
        d = depth(c, path " > " disp(c))
        if (d > m) { m = d; best[t] = c }
    }
    state[t] = 2
    memo[t] = frame[t] + m
    return memo[t]
}

function chain(t,    s) {
    s = disp(t) " (" frame[t] ")"
    for (t = best[t]; t != ""; t = best[t])
        s = s " > " disp(t) " (" frame[t] ")"
    return s
}

END {
    # resolve the library's own indirect calls
    ni = split(indirect, pairs, " ")
    for (i = 1; i <= ni; i++) {
        split(pairs[i], ab, ":")
        na = split(byname[ab[1]], as, " ")
        nb = split(byname[ab[2]], bs, " ")
        for (x = 1; x <= na; x++)
            for (y = 1; y <= nb; y++)
                kids[as[x]] = kids[as[x]] " " bs[y]
    }
    for (t in defined) {
        if (dyn[t]) { print "DYNAMIC: " name_of(t); bad++ }
        depth(t, disp(t))
    }
    nr = split(roots, r, " ")
    top = -1
    for (i = 1; i <= nr; i++) {
        t = r[i]
        if (!(t in defined)) { print "MISSING: " t; bad++; continue }
        print t " " memo[t] " chain: " chain(t)
        if (memo[t] > top) { top = memo[t]; deep = t }
    }
    if (top >= 0)
        print "deepest " top " chain: " chain(deep)
    exit (cycles || bad) ? 1 : 0
}
