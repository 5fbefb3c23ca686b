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

/* ---- the right edge: appending and trimming --------------------------
 *
 * Entries change only at the right end, so both append and truncate work
 * on the rightmost path, loaded once: path[0] = root .. path[d] the lowest
 * node, n[l] the entries in use of path[l].  While they run, the last
 * entries of path[0 .. d-1] (the cumulative counts of the subtrees on the
 * path) are left stale; they are set when a node is left for good and once
 * at the end (edge_fix).  So an append or a pop is O(1) amortised: a
 * node of height j is created or emptied once per f^j extents. */
struct edge {
    int d;
    size_t total; /* data blocks up to the end of the last extent */
    cidx path[MAX_DEPTH];
    cidx n[MAX_DEPTH]; /* a node's entries fit an index (catena_int.h) */
};

/* Path and counts from level l down, path[l] already set. */
static void edge_down(const catena_heap_t *h, size_t root, struct edge *g,
                      int l)
{
    for (;;) {
        size_t node = g->path[l];
        g->n[l] = (cidx)entries(h, root, node);
        if (leaf(h, root, node) || l + 2 >= MAX_DEPTH)
            break;
        g->path[l + 1] = ents(h, root, node)[g->n[l] - 1].idx;
        l++;
    }
    g->d = l;
}

static void edge_open(const catena_heap_t *h, size_t root, struct edge *g)
{
    g->path[0] = (cidx)root;
    edge_down(h, root, g, 0);
    g->total = g->n[0] ? ent_cum(&ents(h, root, root)[g->n[0] - 1]) : 0;
}

/* Set the last counts of levels from .. d to the total (the leaf's is
 * exact but after the last extent's end moved). */
static void edge_fix(catena_heap_t *h, size_t root, const struct edge *g,
                     int from)
{
    for (int l = from; l <= g->d; l++)
        set_cum(&ents(h, root, g->path[l])[g->n[l] - 1], g->total);
}

/* The entry of the last extent. */
static struct ent *edge_last(const catena_heap_t *h, size_t root,
                             const struct edge *g)
{
    return &ents(h, root, g->path[g->d])[g->n[g->d] - 1];
}

/* Where the last extent starts in the object: the count of the entry
 * before it at the lowest level that has one (those are not stale). */
static size_t edge_lo(const catena_heap_t *h, size_t root,
                      const struct edge *g)
{
    for (int l = g->d; l >= 0; l--)
        if (g->n[l] > 1)
            return ent_cum(&ents(h, root, g->path[l])[g->n[l] - 2]);
    return 0;
}

/* Extents of the object in O(depth): the tree is left-packed, so every
 * entry left of the rightmost path heads a full subtree, f^height extents. */
size_t _catena_spine_count(const catena_heap_t *h, size_t root)
{
    struct edge g;
    edge_open(h, root, &g);
    size_t k = g.n[g.d], full = 1;
    for (int l = g.d - 1; l >= 0; l--) {
        full *= FANOUT;
        k += (g.n[l] - 1) * full;
    }
    return k;
}

/* Append entry {child, total} to node path[l]. */
static void edge_put(catena_heap_t *h, size_t root, struct edge *g, int l,
                     size_t child)
{
    struct ent *e = &ents(h, root, g->path[l])[g->n[l]++];
    e->idx = (cidx)child;
    set_cum(e, g->total);
}

/* The block after the object's last data block. */
size_t _catena_spine_last_end(const catena_heap_t *h, size_t root)
{
    struct edge g;
    edge_open(h, root, &g);
    return edge_last(h, root, &g)->idx + (g.total - edge_lo(h, root, &g));
}

static size_t pop_spare(catena_heap_t *h, size_t *spare)
{
    size_t n = *spare;
    CATENA_ASSERT(h, n != CATENA_NIL);
    *spare = *(cidx *)block_ptr(h, n);
    return n;
}

/* The root's entries become the n entries at src (a node's: no flag
 * bits); its flags stay. */
static void root_fill(catena_heap_t *h, size_t root, const struct ent *src,
                      unsigned n)
{
    unsigned fl = _catena_root_flags(h, root);
    _catena_spine_init(h, root, 0);
    memcpy(ents(h, root, root), src, n * sizeof(struct ent));
    _catena_root_set_flags(h, root, fl);
}

/* The whole right edge is full: the root's entries move down into a new
 * node, which becomes the root's one child (one level deeper).  The
 * counts on the edge are exact (edge_fix) and the edge is reloaded: this
 * happens once per level the spine gains. */
static void edge_deepen(catena_heap_t *h, size_t root, struct edge *g,
                        size_t *spare)
{
    size_t nn = pop_spare(h, spare);
    struct ent *c = ents(h, root, nn), one = {(cidx)nn, (cidx)g->total};
    edge_fix(h, root, g, 0);
    clear(h, root, nn);
    memcpy(c, ents(h, root, root), ROOT_CAP * sizeof(struct ent));
    c[0].cum = (cidx)ent_cum(&c[0]); /* not the root's flags */
    root_fill(h, root, &one, 1);
    edge_down(h, root, g, 0);
}

/* Append extent `ext` of `len` blocks at the right end: into the lowest
 * node of the edge with room, through a new branch of single-entry nodes
 * when that node is not the leaf. */
static void edge_push(catena_heap_t *h, size_t root, struct edge *g,
                      size_t ext, size_t len, size_t *spare)
{
    int j;
    for (;;) {
        j = g->d;
        while (j >= 0 && g->n[j] == cap_of(root, g->path[j]))
            j--;
        if (j >= 0)
            break;
        edge_deepen(h, root, g, spare);
    }
    if (j < g->d) /* path[j+1 .. d] are full: left for good */
        edge_fix(h, root, g, j);
    g->total += len;
    size_t child = ext;
    for (int l = g->d; l > j; l--) { /* a new branch down to the leaves */
        size_t nn = pop_spare(h, spare);
        clear(h, root, nn);
        g->path[l] = (cidx)nn;
        g->n[l] = 0;
        edge_put(h, root, g, l, child);
        child = nn;
    }
    edge_put(h, root, g, j, child);
}

/* Grow the last extent by `add` blocks, then append the extents of the
 * in-band list `ext` ({next, len} in each one's first entry), taking new
 * nodes from the in-band list `spare`, which it uses up. */
void _catena_spine_append(catena_heap_t *h, size_t root, size_t add,
                          size_t ext, size_t spare)
{
    struct edge g;
    edge_open(h, root, &g);
    if (add) {
        g.total += add;
        edge_fix(h, root, &g, g.d);
    }
    while (ext != CATENA_NIL) {
        struct ent *e = node_at(h, ext);
        size_t next = e->idx;
        edge_push(h, root, &g, ext, e->cum, &spare);
        ext = next;
    }
    edge_fix(h, root, &g, 0);
    CATENA_ASSERT(h, spare == CATENA_NIL);
}

static void drop_last(catena_heap_t *h, size_t root, struct edge *g, int l)
{
    struct ent *e = &ents(h, root, g->path[l])[--g->n[l]];
    e->idx = CATENA_NIL;
    e->cum &= (cidx)~CATENA_CUM_MASK; /* keeps the root's flag bits */
}

/* Remove the last extent (releasing its blocks) and the nodes it empties;
 * the path then goes down the new right edge. */
static void edge_pop(catena_heap_t *h, size_t root, struct edge *g, size_t lo)
{
    int l = g->d;
    _catena_run_release(h, edge_last(h, root, g)->idx, g->total - lo);
    drop_last(h, root, g, l);
    while (l > 0 && g->n[l] == 0) {
        _catena_run_release(h, g->path[l], 1);
        h->spine_blocks--;
        drop_last(h, root, g, --l);
    }
    g->total = lo;
    if (l < g->d) { /* down the new right edge (n[l] > 0: keep > 0) */
        g->path[l + 1] = ents(h, root, g->path[l])[g->n[l] - 1].idx;
        edge_down(h, root, g, l + 1);
    }
}

/* Keep the first `keep` data blocks (0 < keep < total): pop the extents
 * after them, trim the one holding the last kept block. */
void _catena_spine_truncate(catena_heap_t *h, size_t root, size_t keep)
{
    struct edge g;
    edge_open(h, root, &g);
    size_t lo;
    while ((lo = edge_lo(h, root, &g)) >= keep)
        edge_pop(h, root, &g, lo);
    if (g.total > keep) {
        _catena_run_release(h, edge_last(h, root, &g)->idx + (keep - lo),
                            g.total - keep);
        g.total = keep;
    }
    edge_fix(h, root, &g, 0);
    /* Minimal depth: a root whose single child fits in it absorbs it. */
    while (entries(h, root, root) == 1 && !leaf(h, root, root)) {
        size_t c = ents(h, root, root)[0].idx;
        unsigned n = entries(h, root, c);
        if (n > ROOT_CAP)
            break;
        root_fill(h, root, ents(h, root, c), n);
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
