/*
 * spine.c - the extent tree of a chained object.
 *
 * A chained object's handle is its root block (state CHAIN).  The root and
 * every NODE block hold entries {idx, cum}: idx names a child (a NODE, or
 * an EXT run holding data) and cum is the number of the object's data
 * blocks up to the end of that child.  A node holds f = B / sizeof(entry)
 * entries, the root r = f (32-bit indexes; the flags ride in the top bits
 * of its first cum) or f - 1 (16-bit indexes; a one-entry flag header).
 * Unused entries have idx == NIL.  Whether a node's children are extents
 * or nodes is read from the table (the state of its first child), so nodes
 * need no header.
 *
 * The tree is kept left-packed (every node but the rightmost of a level is
 * full) and of minimal depth (the root holds the first level that fits in
 * it), so a tree over k extents has exactly S(k) non-root nodes, where
 * S(k) sums ceil(k / f^j) over the levels j >= 1 while the level below
 * does not fit in the root.  Entries are only appended or removed at the
 * right end, which keeps both properties.
 *
 * Lookup of a block offset: O(depth * f) = O(log k).  Append and pop:
 * O(depth).  Release: O(k + nodes).
 */
#include "catena_int.h"

static void set_cum(struct ent *e, size_t v)
{
    e->cum = (cidx)((e->cum & (cidx)~CATENA_CUM_MASK) | v);
}

/* Non-root spine nodes of a left-packed, minimal-depth tree over k
 * extents: each level has ceil(below / f) nodes, up to the first level
 * that fits in the root (r entries). */
size_t _catena_spine_nodes(size_t k)
{
    size_t s = 0;
    while (k > ROOT_CAP) {
        k = (k + FANOUT - 1) / FANOUT;
        s += k;
    }
    return s;
}

unsigned _catena_spine_entries(const catena_heap_t *h, size_t root,
                               size_t node)
{
    const struct ent *e = ents(h, root, node);
    unsigned n = 0, cap = cap_of(root, node);
    while (n < cap && e[n].idx != CATENA_NIL)
        n++;
    return n;
}
/* Short for the entries in use of a node. */
static unsigned entries(const catena_heap_t *h, size_t root, size_t node)
{
    return _catena_spine_entries(h, root, node);
}

/* An empty node (a root being built) counts as a leaf. */
static bool leaf(const catena_heap_t *h, size_t root, size_t node)
{
    cidx c = ents(h, root, node)[0].idx;
    return c == CATENA_NIL || block_state(h, c) == ST_EXT;
}

static void clear(catena_heap_t *h, size_t root, size_t node)
{
    struct ent *e = ents(h, root, node);
    for (unsigned i = 0; i < cap_of(root, node); i++) {
        e[i].idx = CATENA_NIL;
        e[i].cum = 0;
    }
}

static struct ent *last(const catena_heap_t *h, size_t root, size_t node)
{
    return &ents(h, root, node)[entries(h, root, node) - 1];
}

void _catena_spine_init(catena_heap_t *h, size_t root, unsigned flags)
{
    clear(h, root, root);
    _catena_root_set_flags(h, root, flags);
}

size_t _catena_spine_total(const catena_heap_t *h, size_t root)
{
    return ent_cum(last(h, root, root));
}

bool _catena_spine_find(const catena_heap_t *h, size_t root, size_t b,
                        struct seg *out)
{
    size_t node = root, lo = 0;
    for (int depth = 0; depth < MAX_DEPTH; depth++) {
        const struct ent *e = ents(h, root, node);
        unsigned n = entries(h, root, node), i = 0;
        while (i < n && ent_cum(&e[i]) <= b)
            i++;
        if (i == n)
            return false;
        size_t clo = i ? ent_cum(&e[i - 1]) : lo;
        if (block_state(h, e[i].idx) == ST_EXT) {
            out->start = e[i].idx;
            out->lo = clo;
            out->hi = ent_cum(&e[i]);
            return true;
        }
        node = e[i].idx;
        lo = clo;
    }
    return false;
}

void _catena_spine_walk(struct spine_walk *w, size_t root)
{
    w->root = root;
    w->sp = 0;
    w->node[0] = root;
    w->pos[0] = 0;
    w->prev = 0;
}

/* Depth first, so every entry starts where the last extent reported
 * ended and covers the object's blocks up to its cumulative count.  Reads
 * only what it reports: a child out of range is reported, never looked
 * at. */
int _catena_spine_step(const catena_heap_t *h, struct spine_walk *w,
                       struct spine_visit *v)
{
    while (w->sp >= 0) {
        int sp = w->sp;
        size_t node = w->node[sp];
        unsigned i = w->pos[sp];
        const struct ent *e = ents(h, w->root, node);
        if (i == cap_of(w->root, node) || e[i].idx == CATENA_NIL) {
            w->sp--;
            v->blk = node;
            v->depth = sp;
            return SPINE_DONE;
        }
        w->pos[sp]++;
        v->blk = e[i].idx;
        v->lo = w->prev;
        v->hi = ent_cum(&e[i]);
        v->depth = sp;
        v->slot = i;
        if (v->blk >= h->nblocks)
            return SPINE_NODE;
        if (block_state(h, v->blk) == ST_EXT) {
            w->prev = v->hi;
            return SPINE_EXT;
        }
        if (sp + 1 < MAX_DEPTH) {
            w->sp = sp + 1;
            w->node[sp + 1] = v->blk;
            w->pos[sp + 1] = 0;
        }
        return SPINE_NODE;
    }
    return SPINE_END;
}

bool _catena_spine_next(const catena_heap_t *h, struct spine_walk *w,
                        struct spine_visit *v)
{
    int s;
    while ((s = _catena_spine_step(h, w, v)) != SPINE_END)
        if (s == SPINE_EXT)
            return true;
    return false;
}

/* The rightmost path: path[0] = root .. path[d] = the lowest node. */
static int right_path(const catena_heap_t *h, size_t root, size_t *path)
{
    int d = 0;
    path[0] = root;
    while (!leaf(h, root, path[d]) && d + 2 < MAX_DEPTH) {
        path[d + 1] = last(h, root, path[d])->idx;
        d++;
    }
    return d;
}

size_t _catena_spine_last_end(const catena_heap_t *h, size_t root)
{
    struct seg sg;
    _catena_spine_find(h, root, _catena_spine_total(h, root) - 1, &sg);
    return sg.start + (sg.hi - sg.lo);
}

/* Extents of the object in O(depth): the tree is left-packed, so every
 * entry left of the rightmost path heads a full subtree, f^height extents. */
size_t _catena_spine_count(const catena_heap_t *h, size_t root)
{
    size_t path[MAX_DEPTH], k = 0, full = 1;
    int d = right_path(h, root, path);
    k = entries(h, root, path[d]);
    for (int i = d - 1; i >= 0; i--) {
        full *= FANOUT;
        k += (entries(h, root, path[i]) - 1) * full;
    }
    return k;
}

static size_t pop_spare(catena_heap_t *h, size_t *spare)
{
    size_t n = *spare;
    CATENA_ASSERT(h, n != CATENA_NIL);
    *spare = *(cidx *)block_ptr(h, n);
    return n;
}

/* Lowest level on the path with room for one more entry, or -1. */
static int room(const catena_heap_t *h, size_t root, const size_t *path,
                int d)
{
    int j = d;
    while (j >= 0 && entries(h, root, path[j]) == cap_of(root, path[j]))
        j--;
    return j;
}

void _catena_spine_push(catena_heap_t *h, size_t root, size_t ext,
                        size_t len, size_t *spare)
{
    size_t path[MAX_DEPTH + 1];
    int d = right_path(h, root, path);
    size_t total = entries(h, root, root) ? _catena_spine_total(h, root) : 0;
    size_t ncum = total + len;
    int j = room(h, root, path, d);
    if (j < 0) { /* the right edge is full: the root's entries move down */
        size_t nn = pop_spare(h, spare);
        struct ent *r = ents(h, root, root), *c = ents(h, root, nn);
        clear(h, root, nn);
        for (unsigned i = 0; i < ROOT_CAP; i++) {
            c[i].idx = r[i].idx;
            c[i].cum = (cidx)ent_cum(&r[i]);
        }
        unsigned fl = _catena_root_flags(h, root);
        _catena_spine_init(h, root, 0);
        r[0].idx = (cidx)nn;
        set_cum(&r[0], total);
        _catena_root_set_flags(h, root, fl);
        for (int i = d; i >= 1; i--)
            path[i + 1] = path[i];
        path[1] = nn;
        d++;
        j = room(h, root, path, d); /* nn has room when the root is small */
    }
    size_t child = ext;
    for (int lvl = d; lvl > j; lvl--) { /* a new branch down to the leaves */
        size_t nn = pop_spare(h, spare);
        clear(h, root, nn);
        ents(h, root, nn)[0].idx = (cidx)child;
        ents(h, root, nn)[0].cum = (cidx)ncum;
        child = nn;
    }
    struct ent *e = &ents(h, root, path[j])[entries(h, root, path[j])];
    e->idx = (cidx)child;
    set_cum(e, ncum);
    for (int lvl = 0; lvl < j; lvl++)
        set_cum(last(h, root, path[lvl]), ncum);
}

/* Set the cumulative count of the last extent and its ancestors. */
static void set_total(catena_heap_t *h, size_t root, size_t total)
{
    size_t path[MAX_DEPTH];
    int d = right_path(h, root, path);
    for (int lvl = 0; lvl <= d; lvl++)
        set_cum(last(h, root, path[lvl]), total);
}

void _catena_spine_grow_last(catena_heap_t *h, size_t root, size_t add)
{
    set_total(h, root, _catena_spine_total(h, root) + add);
}

static void drop_last(catena_heap_t *h, size_t root, size_t node)
{
    struct ent *e = last(h, root, node);
    e->idx = CATENA_NIL;
    e->cum &= (cidx)~CATENA_CUM_MASK; /* keeps the root's flag bits */
}

/* Remove the last extent (releasing its blocks) and any node it empties. */
static void pop_last(catena_heap_t *h, size_t root, const struct seg *sg)
{
    size_t path[MAX_DEPTH];
    int d = right_path(h, root, path);
    _catena_run_release(h, sg->start, sg->hi - sg->lo);
    drop_last(h, root, path[d]);
    int lvl = d;
    while (lvl > 0 && entries(h, root, path[lvl]) == 0) {
        _catena_run_release(h, path[lvl], 1);
        h->spine_blocks--;
        drop_last(h, root, path[lvl - 1]);
        lvl--;
    }
    set_total(h, root, sg->lo);
}

void _catena_spine_truncate(catena_heap_t *h, size_t root, size_t keep)
{
    struct seg sg;
    for (;;) {
        _catena_spine_find(h, root, _catena_spine_total(h, root) - 1, &sg);
        if (sg.lo < keep)
            break;
        pop_last(h, root, &sg);
    }
    if (sg.hi > keep) {
        _catena_run_release(h, sg.start + (keep - sg.lo), sg.hi - keep);
        set_total(h, root, keep);
    }
    /* Minimal depth: a root whose single child fits in it absorbs it. */
    while (entries(h, root, root) == 1 && !leaf(h, root, root)) {
        size_t c = ents(h, root, root)[0].idx;
        unsigned n = entries(h, root, c);
        if (n > ROOT_CAP)
            break;
        unsigned fl = _catena_root_flags(h, root);
        _catena_spine_init(h, root, 0);
        memcpy(ents(h, root, root), ents(h, root, c), n * sizeof(struct ent));
        _catena_root_set_flags(h, root, fl);
        _catena_run_release(h, c, 1);
        h->spine_blocks--;
    }
}

/* Free every extent and node, and the root, in post-order: a node is
 * read until its last child is released. */
void _catena_spine_release(catena_heap_t *h, size_t root)
{
    struct spine_walk w;
    struct spine_visit v;
    int s;
    for (_catena_spine_walk(&w, root);
         (s = _catena_spine_step(h, &w, &v)) != SPINE_END;) {
        if (s == SPINE_EXT) {
            _catena_run_release(h, v.blk, v.hi - v.lo);
        } else if (s == SPINE_DONE) {
            _catena_run_release(h, v.blk, 1);
            h->spine_blocks--;
        }
    }
}

/* ---- objects of either kind ---------------------------------------------- */

size_t _catena_obj_blocks(const catena_heap_t *h, size_t i)
{
    return ST_IS_CHAIN(block_state(h, i)) ? _catena_spine_total(h, i)
                                          : _catena_run_length(h, i);
}
