/*
 * check.c - the full validator: every invariant of catena_int.h, checked
 * from scratch against the table, the index and the counters.  O(N).
 * Used after every operation by the randomized tests and available to
 * applications (catena_check) as a debugging aid.
 */
#include "catena_int.h"

static int bad(const catena_heap_t *h, const char *what)
{
    return _catena_err(h, CATENA_ECORRUPT, NULL, what);
}


/* I3: every class list is well linked and holds runs of its class. */
static int check_index(const catena_heap_t *h, size_t *runs,
                       size_t *blocks)
{
    size_t n = h->nblocks;
    *runs = *blocks = 0;
    for (unsigned b = 0; b < MAX_BINS; b++) {
        bool bit = (h->binmap[b / 32] >> (b % 32)) & 1u;
        if (b >= h->nbins) {
            if (bit)
                return bad(h, "class bit set beyond the last class");
            continue;
        }
        if (bit != (h->bins[b] != CATENA_NIL))
            return bad(h, "class bitmap disagrees with its list");
        size_t prev = CATENA_NIL;
        for (size_t s = h->bins[b]; s != CATENA_NIL; s = run_at(h, s)->next) {
            const struct run_hdr *r = run_at(h, s);
            if (s >= n || block_state(h, s) != ST_FREE)
                return bad(h, "class list names a block that is not free");
            if (r->prev != prev)
                return bad(h, "free list back link broken");
            if (!r->len || r->len > n - s || _catena_bin_of(r->len) != b)
                return bad(h, "free run in the wrong class");
            if (*footer_at(h, s + r->len - 1) != s)
                return bad(h, "free run footer wrong");
            if (++*runs > n)
                return bad(h, "free list cycle");
            *blocks += r->len;
            prev = s;
        }
    }
    for (unsigned w = 0; w < MAX_BINS / 32; w++)
        if (((h->summary >> w) & 1u) != (h->binmap[w] != 0))
            return bad(h, "class summary word wrong");
    return CATENA_OK;
}

struct spine_count {
    size_t exts, ext_blocks, nodes;
};

/* The node-level part of I5 for one node: entries packed at the front,
 * and full unless on the right edge of the tree (left-packed). */
static int check_node(const catena_heap_t *h, size_t root, size_t node,
                      bool edge)
{
    const struct ent *e = ents(h, root, node);
    unsigned n = _catena_spine_entries(h, root, node), cap = cap_of(root, node);
    if (n == 0)
        return bad(h, "empty spine node");
    for (unsigned j = n; j < cap; j++)
        if (e[j].idx != CATENA_NIL)
            return bad(h, "spine entry after the end");
    if (n < cap && !edge)
        return bad(h, "spine not left-packed");
    return CATENA_OK;
}

/* I5 for one chained object, on the shared walker: every entry it reports
 * is checked before the walker reads the child. */
static int check_spine(const catena_heap_t *h, size_t root,
                       struct spine_count *sc)
{
    bool edge[MAX_DEPTH]; /* node at this depth is on the right edge */
    int leaf_depth = -1, s, e;
    size_t k = 0, nodes = 0;
    unsigned fl = _catena_root_flags(h, root);
    if ((fl & ~CATENA_FLAG_MASK) ||
        ((fl & CATENA_FINAL) && (fl & CATENA_NOCOLLECT)))
        return bad(h, "chained object has bad flags");
    edge[0] = true;
    if ((e = check_node(h, root, root, true)))
        return e;
    struct spine_walk w;
    struct spine_visit v;
    for (_catena_spine_walk(&w, root);
         (s = _catena_spine_step(h, &w, &v)) != SPINE_END;) {
        if (s == SPINE_DONE)
            continue;
        size_t parent = w.node[v.depth], c = v.blk;
        const struct ent *pe = ents(h, root, parent);
        if (c >= h->nblocks || v.hi <= v.lo)
            return bad(h, "spine entry out of range or not increasing");
        unsigned cs = block_state(h, c), s0 = block_state(h, pe[0].idx);
        if (cs != s0 || (cs != ST_EXT && cs != ST_NODE))
            return bad(h, "spine child is neither all extents nor all nodes");
        if (s == SPINE_EXT) {
            if (leaf_depth < 0)
                leaf_depth = v.depth;
            if (leaf_depth != v.depth)
                return bad(h, "spine leaves at different depths");
            if (_catena_run_length(h, c) != v.hi - v.lo)
                return bad(h, "extent length disagrees with the spine");
            k++;
            sc->exts++;
            sc->ext_blocks += v.hi - v.lo;
            continue;
        }
        if (v.depth + 1 >= MAX_DEPTH || _catena_run_length(h, c) != 1)
            return bad(h, "spine too deep or node not one block");
        nodes++;
        sc->nodes++;
        unsigned pn = _catena_spine_entries(h, root, parent);
        edge[v.depth + 1] = edge[v.depth] && v.slot + 1 == pn;
        if ((e = check_node(h, root, c, edge[v.depth + 1])))
            return e;
        /* the child's last cumulative count must equal this entry's */
        unsigned cn = _catena_spine_entries(h, root, c);
        if (ent_cum(&ents(h, root, c)[cn - 1]) != v.hi)
            return bad(h, "spine node total disagrees with its parent");
    }
    if (k < 2)
        return bad(h, "chained object with fewer than two extents");
    if (nodes != _catena_spine_nodes(k))
        return bad(h, "spine is not minimal (node count != S(k))");
    if (_catena_spine_count(h, root) != k)
        return bad(h, "spine is not left-packed (extent count differs)");
    return CATENA_OK;
}

/* The collector's own state. */
static int check_gc(const catena_heap_t *h)
{
    const struct gc_state *g = &h->gc;
    if (!g->stack || g->cap == 0 || g->sp > g->cap)
        return bad(h, "mark stack");
    if (g->collecting && !g->lock)
        return bad(h, "collection running without the lock");
    if (!g->collecting && (g->sp || g->nhits || g->ovf_lo != SIZE_MAX))
        return bad(h, "grey objects outside a collection");
    if (g->opts & ~CATENA_GC_ALL_OPTS)
        return bad(h, "unknown collector options");
    return CATENA_OK;
}

int catena_check(const catena_heap_t *h)
{
    if (bad_heap(h))
        return _catena_err(h, CATENA_ECORRUPT, NULL, "bad heap magic");
    size_t n = h->nblocks;
    if (n < 2 || n > CATENA_MAX_BLOCKS || h->nbins != _catena_bin_of(n) + 1)
        return bad(h, "heap geometry");
    size_t iruns, iblocks;
    int e = check_index(h, &iruns, &iblocks);
    if (e)
        return e;
    size_t runs = 0, fr = 0, objs = 0, chains = 0, exts = 0, eblocks = 0;
    size_t nodes = 0, pruns = 0, pblocks = 0;
    struct spine_count sc = {0, 0, 0};
    bool prev_free = false;
    for (size_t i = 0; i < n;) {
        unsigned s = block_state(h, i);
        if (s == ST_TAIL)
            return bad(h, "a run starts with a TAIL block");
        size_t len = _catena_run_length(h, i);
        if (s == ST_FREE) {
            if (prev_free)
                return bad(h, "two free runs adjacent");
            if (!CATENA_SCAN && run_at(h, i)->len != len)
                return bad(h, "free run header length wrong");
            runs++;
            fr += len;
        } else if (s == ST_EXT) {
            exts++;
            eblocks += len;
        } else if (CATENA_PARKING && s == ST_PARKED &&
                   !h->gc.collecting) { /* P1, G1 */
            pruns++;
            pblocks += len;
        } else if (s == ST_NODE) {
            if (len != 1)
                return bad(h, "spine node longer than a block");
            nodes++;
        } else {
            objs++;
            if (s == ST_CHAIN || s == ST_CHAIN + 1) {
                chains++;
                if (len != 1)
                    return bad(h, "spine root longer than a block");
                if ((e = check_spine(h, i, &sc)))
                    return e;
            }
        }
        if (ST_MARKED(s) && !h->gc.collecting &&
            !(CATENA_PARKING && s == ST_PARKED))
            return bad(h, "marked object outside a collection (G1)");
        prev_free = s == ST_FREE;
        i += len;
    }
    if (!CATENA_SCAN && (runs != iruns || fr != iblocks)) /* scan.c: none */
        return bad(h, "a free run is missing from the index");
    if (fr + pblocks != h->free_blocks || runs != h->free_runs)
        return bad(h, "free counters wrong");
    if (CATENA_PARKING && (e = _catena_park_check(h, pruns, pblocks)))
        return e;
    if (objs != heap_objects(h) || chains != h->chained)
        return bad(h, "object counters wrong");
    if (sc.exts != exts || sc.ext_blocks != eblocks || sc.nodes != nodes)
        return bad(h, "extents or nodes not owned by exactly one spine");
    if (h->spine_blocks != nodes + chains)
        return bad(h, "spine block counter wrong");
    if (h->min_free > h->free_blocks)
        return bad(h, "peak below current use");
    return check_gc(h);
}
