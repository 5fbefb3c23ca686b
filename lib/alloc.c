/*
 * alloc.c - allocation, free and resize: contiguous runs first, chains of
 * extents when no run is long enough.
 *
 * Why the guarantee holds: a chain of d blocks uses k <= d extents (each at
 * least one block), the root and S(k) <= S(d) nodes.  Before touching the
 * heap, the allocator counts the k it will use (a read-only pass over the
 * free runs, in the same order as the real extraction) and checks that the
 * free blocks cover d + 1 + S(k); data extents are taken first, then the
 * nodes, one block each, from whatever is left.  So with at least
 * blocks_for(n) = d + 1 + S(d) free blocks it cannot fail, and when it does
 * fail nothing has changed.
 *
 * Parked runs (park.c) are free blocks outside the index: every request
 * that would otherwise fail, chain, or grow by chaining first flushes them
 * back (park_flush), so the argument above sees all the free blocks.
 *
 * With the collector's CATENA_GC_AUTO option, a failed allocation or grow
 * runs one collection and retries once (the object being resized is kept
 * alive through it); while the heap is locked (GC lock, or a collection
 * with its finalisers running) every call that would change it fails with
 * CATENA_ELOCKED.
 */
#include "catena_int.h"

/* The rare paths beside the parking hits, out of line where parking is
 * built, so that the hits save and restore no registers for them. */
#if defined(__GNUC__) && CATENA_PARKING
#define CATENA_NOINLINE __attribute__((noinline))
#else
#define CATENA_NOINLINE
#endif

static size_t blocks(size_t n) { return n / CATENA_B + (n % CATENA_B != 0); }

/* Mutators refuse a locked heap; the error changes nothing. */
static bool locked(catena_heap_t *h, const void *p, const char *fn)
{
    if (!h->gc.lock)
        return false;
    _catena_err(h, CATENA_ELOCKED, p, fn);
    return true;
}

/* New memory of a scannable object must not hold stale pointers when the
 * collector asks for zeroing: they would retain garbage. */
static bool must_zero(const catena_heap_t *h, unsigned flags)
{
    return (h->gc.opts & CATENA_GC_ZERO) && !(flags & CATENA_NOSCAN);
}

static void note_peak(catena_heap_t *h)
{
    if (h->free_blocks < h->min_free)
        h->min_free = h->free_blocks;
}

/* (the live objects follow: heap_objects) */
static void note_alloc(catena_heap_t *h)
{
    h->allocs++;
    note_peak(h);
}

/* The error of a request that found too few blocks: CATENA_ENOCHAIN when
 * the heap's policy (chaining off) refused blocks that a chain could have
 * used, else CATENA_ENOMEM, as catena_alloc reports in the same state. */
static int miss(const catena_heap_t *h, size_t need, bool policy)
{
    if (bad_heap(h)) /* the index found a corrupt free run (index.c) */
        return CATENA_ECORRUPT;
    return policy && !h->chaining && h->free_blocks >= need ? CATENA_ENOCHAIN
                                                            : CATENA_ENOMEM;
}

/* ---- building chains --------------------------------------------------- */

/* Take `want` blocks as extents (the free-run layer chooses the runs:
 * _catena_run_take_extent); each extent's first block links the next
 * in-band ({next, len} in its first entry).  Returns the list head.  The
 * caller has checked that the free runs hold `want` blocks; `room`: a
 * growing object's new tail. */
static size_t take_extents(catena_heap_t *h, size_t want, bool room)
{
    size_t head = CATENA_NIL, prev = CATENA_NIL, cur = 0;
    while (want) {
        size_t len, s = _catena_run_take_extent(h, &cur, want, room, &len);
        struct ent *e = node_at(h, s);
        e->idx = CATENA_NIL;
        e->cum = (cidx)len;
        if (prev == CATENA_NIL)
            head = s;
        else
            node_at(h, prev)->idx = (cidx)s;
        prev = s;
        want -= len;
    }
    return head;
}

/* Take n single blocks for spine nodes (the free-run layer chooses),
 * linked in-band; the head becomes `first_state`. */
static size_t take_nodes(catena_heap_t *h, size_t n, unsigned first_state)
{
    h->spine_blocks += n;
    return _catena_run_take_nodes(h, n, first_state);
}

static bool is_chain(const catena_heap_t *h, size_t i)
{
    return ST_IS_CHAIN(block_state(h, i));
}

/* Blocks [from, to) of object r: zeroed (dst NULL) or copied to dst.
 * alloc.c works below the access API, so it walks the extents itself. */
static void zero_or_copy(catena_heap_t *h, size_t r, size_t from, size_t to,
                         unsigned char *dst)
{
    struct spine_walk w;
    struct spine_visit v = {r, 0, to, 0, 0}; /* a contiguous object */
    bool chain = is_chain(h, r), more = true;
    if (chain) {
        _catena_spine_walk(&w, r);
        more = _catena_spine_next(h, &w, &v);
    }
    for (; more && v.lo < to; more = chain && _catena_spine_next(h, &w, &v)) {
        size_t a = v.lo > from ? v.lo : from, b = v.hi < to ? v.hi : to;
        if (a >= b)
            continue;
        unsigned char *p = block_ptr(h, v.blk + (a - v.lo));
        if (dst)
            memcpy(dst + (a - from) * CATENA_B, p, (b - a) * CATENA_B);
        else
            memset(p, 0, (b - a) * CATENA_B);
    }
}

/* Bookkeeping after object r grew from d0 to d1 blocks: the peak, the
 * collector's threshold count, and zeroing of the new blocks when it asks
 * for it. */
static void grown(catena_heap_t *h, size_t r, size_t d0, size_t d1)
{
    note_peak(h);
    h->gc.since += d1 - d0;
    if (must_zero(h, _catena_obj_flags(h, r)))
        zero_or_copy(h, r, d0, d1, NULL);
}

/* ---- allocation ---------------------------------------------------------- */

static inline void *alloc_contig(catena_heap_t *h, size_t d, unsigned flags,
                                 bool probe)
{
    size_t s = _catena_run_claim(h, d, probe);
    if (s == CATENA_NIL)
        return NULL;
    FREE_TO_HEAD(h, s, flags ? _catena_head_state(flags) : ST_HEAD);
    note_alloc(h);
    return block_ptr(h, s);
}

/* The first of the spare nodes becomes the root of a new chained object
 * with these flags (its entries empty). */
static size_t new_root(catena_heap_t *h, size_t *spare, unsigned flags)
{
    size_t root = *spare;
    *spare = *(cidx *)block_ptr(h, root);
    _catena_spine_init(h, root, flags);
    h->chained++;
    return root;
}

static void *alloc_chain(catena_heap_t *h, size_t d, unsigned flags)
{
    size_t k = _catena_greedy_extents(h, d);
    if (k == SIZE_MAX || h->free_blocks < d + 1 + _catena_spine_nodes(k))
        return NULL;
    size_t ext = take_extents(h, d, false);
    size_t spare = take_nodes(h, 1 + _catena_spine_nodes(k), ST_CHAIN);
    size_t root = new_root(h, &spare, flags & CATENA_FLAG_MASK);
    _catena_spine_append(h, root, 0, ext, spare);
    note_alloc(h);
    return block_ptr(h, root);
}

/* A parked run of d blocks as an object of the given flags, or NULL
 * (none, or its link was overwritten: the heap is then poisoned). */
CATENA_ALWAYS_INLINE void *alloc_parked(catena_heap_t *h, size_t d,
                                        unsigned flags)
{
    if (!CATENA_PARKING || d - 1 >= CATENA_PARK_MAX ||
        h->park[d - 1] == CATENA_NIL)
        return NULL;
    size_t s = h->park[d - 1];
    if (s >= h->nblocks) { /* a link spoiled (park_pop) */
        h->magic = 0;
        return NULL;
    }
    if (!park_pop(h, d, s))
        return NULL;
    PARKED_TO_HEAD(h, s, flags ? _catena_head_state(flags) : ST_HEAD);
    note_alloc(h);
    return block_ptr(h, s);
}

/* alloc_contig after a flush of the parked runs (out of line: rare). */
static CATENA_NOINLINE void *alloc_flushed(catena_heap_t *h, size_t d,
                                          unsigned flags)
{
    return park_flush(h) ? alloc_contig(h, d, flags, true) : NULL;
}

/* A run from the index, after flushing the parked runs if none fits;
 * then (chain) a chain, which must see every free block. */
#if CATENA_PARKING /* new_object's pop would otherwise keep it out of line */
CATENA_ALWAYS_INLINE
#else
static
#endif
void *alloc_any(catena_heap_t *h, size_t d, unsigned flags, bool chain)
{
    void *p = alloc_contig(h, d, flags, true);
    if (!p && CATENA_PARKING && parked_blocks(h) && h->free_blocks >= d)
        p = alloc_flushed(h, d, flags);
    if (!p && chain && d > 1)
        p = alloc_chain(h, d, flags);
    return p;
}

/* A new object of n bytes: the size and lock checks, the collector's
 * threshold and retry, zeroing.  Flags are valid.  `contig`: the caller
 * wants one run whatever the heap's chaining policy (else the policy
 * decides, and a miss it causes is reported as CATENA_ENOCHAIN). */
static void *new_object(catena_heap_t *h, size_t n, unsigned flags,
                        bool contig, const char *fn)
{
    if (bad_heap(h)) {
        _catena_err(h, CATENA_ECORRUPT, NULL, fn);
        return NULL;
    }
    size_t d = blocks(n);
    if (n == 0 || d > CATENA_MAX_BLOCKS) {
        h->failed++;
        _catena_err(h, CATENA_ESIZE, NULL, fn);
        return NULL;
    }
    if (locked(h, NULL, fn)) {
        h->failed++;
        return NULL;
    }
    bool chain = !contig && h->chaining;
    _catena_gc_threshold(h, CATENA_NIL);
    void *p = alloc_parked(h, d, flags);
    if (!p) /* (a poisoned heap is reported below) */
        p = alloc_any(h, d, flags, chain);
    if (!p && !bad_heap(h) && _catena_gc_auto(h, CATENA_NIL))
        p = alloc_any(h, d, flags, chain);
    if (!p || bad_heap(h)) {
        h->failed++;
        _catena_err(h, miss(h, d, !contig), NULL, fn);
        return NULL;
    }
    h->gc.since += d;
    if ((flags & CATENA_ZERO) || must_zero(h, flags))
        zero_or_copy(h, block_index(h, p), 0, d, NULL);
    return p;
}

void *catena_alloc_flags(catena_heap_t *h, size_t n, unsigned flags)
{
    static const char fn[] = "catena_alloc";
    bool bad = (flags & ~(CATENA_FLAG_MASK | (unsigned)CATENA_ZERO)) ||
               ((flags & CATENA_FINAL) && (flags & CATENA_NOCOLLECT));
    if (bad && !bad_heap(h)) {
        _catena_err(h, CATENA_EINVAL, NULL, fn);
        return NULL;
    }
    return new_object(h, n, flags, false, fn);
}

/* The fast paths: a valid, unlocked heap, a size of at most a short run,
 * no zeroing and no collection due, and a parked run of the size or a
 * free run that fits.  The same run and the same bookkeeping as
 * new_object's path; anything else (and every failure) goes there, which
 * decides and reports it. */
#define FAST_MAX_BLOCKS ((size_t)1 << 16)

/* No collection is due (threshold 0: never): one compare, as
 * threshold - 1 wraps to SIZE_MAX when there is no threshold. */
CATENA_ALWAYS_INLINE bool none_due(const catena_heap_t *h)
{
    return h->gc.since <= h->gc.threshold - 1;
}

/* catena_alloc from the index: its head of a class that fits, else the
 * general path. */
static CATENA_NOINLINE void *alloc_index(catena_heap_t *h, size_t n)
{
    size_t d = blocks(n);
    if (bad_heap(h) || n == 0 || d > FAST_MAX_BLOCKS || h->gc.lock ||
        (h->gc.opts & CATENA_GC_ZERO) ||
        (h->gc.threshold && h->gc.since >= h->gc.threshold))
        return new_object(h, n, 0, false, "catena_alloc");
    void *p = alloc_contig(h, d, 0, false);
    if (!p)
        return new_object(h, n, 0, false, "catena_alloc");
    h->gc.since += d;
    return p;
}

void *catena_alloc(catena_heap_t *h, size_t n)
{
    /* d - 1, where n == 0 wraps past every list (alloc_index reports) */
    size_t k = (n - 1) / CATENA_B;
    /* A parked run: a non-empty list means an unlocked heap that does
     * not zero (P2), so only the heap and the threshold are asked. */
    if (CATENA_PARKING && k < CATENA_PARK_MAX && !bad_heap(h)) {
        size_t s = h->park[k];
        if (s >= h->nblocks) { /* empty, or a spoiled link (park_pop) */
            if (s != CATENA_NIL)
                h->magic = 0; /* reported below */
        } else if (none_due(h) && park_pop(h, k + 1, s)) {
            PARKED_TO_HEAD(h, s, ST_HEAD);
            note_alloc(h);
            h->gc.since += k + 1;
            return block_ptr(h, s);
        } /* (else due, or poisoned by the pop: reported below) */
    }
    return alloc_index(h, n);
}

/* ---- free ---------------------------------------------------------------- */

/* Return object i's blocks to the index (an explicit free or the sweep). */
CATENA_ALWAYS_INLINE void release_obj(catena_heap_t *h, size_t i)
{
    if (ST_IS_CHAIN(block_state(h, i))) {
        _catena_spine_release(h, i);
        h->chained--;
    } else {
        _catena_run_release(h, i, _catena_run_length(h, i));
    }
}

/* The sweep's release: no catena_free counts it (heap_objects).  The
 * count first, so that the release is a tail call (no stack for it). */
void _catena_release_obj(catena_heap_t *h, size_t i)
{
    h->dropped++;
    release_obj(h, i);
}

/* catena_free without parking: the small build's, a heap's that does
 * not park (the shim's), and what a parking heap does not park (chains,
 * and anything to report). */
static CATENA_NOINLINE int free_general(catena_heap_t *h, void *obj)
{
    size_t i;
    if (!obj)
        return CATENA_OK;
    /* The common case, an object's handle in a valid, unlocked heap, in
     * one test; anything else is classified and reported below. */
    if (bad_heap(h) || h->gc.lock || !is_handle(h, obj, &i)) {
        int e = _catena_handle(h, obj, "catena_free", &i);
        if (e)
            return e;
        if (locked(h, obj, "catena_free"))
            return CATENA_ELOCKED;
    }
    release_obj(h, i); /* inline: the hot half of every free */
    if (bad_heap(h)) { /* the index found a corrupt free run (index.c) */
        h->dropped++;
        return _catena_err(h, CATENA_ECORRUPT, obj, "catena_free");
    }
    h->frees++;
    return CATENA_OK;
}

/* The free of contiguous object i of len blocks, 0: more than
 * CATENA_PARK_MAX (park_word found blocks i + 1 .. i + CATENA_PARK_MAX
 * all TAIL, so the length is measured from the next one on). */
static CATENA_NOINLINE int free_run(catena_heap_t *h, void *obj, size_t i,
                                    size_t len)
{
    if (!len)
        len = _catena_run_length_from(h, i, i + CATENA_PARK_MAX + 1);
    _catena_run_release(h, i, len);
    if (bad_heap(h)) { /* the index found a corrupt free run (index.c) */
        h->dropped++;
        return _catena_err(h, CATENA_ECORRUPT, obj, "catena_free");
    }
    h->frees++;
    return CATENA_OK;
}

/* catena_free on a valid heap that parks (park_cap is not 0, P2), of an
 * object whose first 14 blocks may not all exist (near the heap's end). */
static CATENA_NOINLINE int free_near_end(catena_heap_t *h, void *obj)
{
    size_t i;
    if (!is_handle(h, obj, &i)) /* NULL is no handle */
        return free_general(h, obj);
    unsigned s = block_state(h, i);
    if (ST_IS_CHAIN(s))
        return free_general(h, obj);
    size_t len = _catena_run_length(h, i);
    if (len > CATENA_PARK_MAX || len > h->park_room)
        return free_run(h, obj, i, len);
    park_push(h, i, obj, s, len);
    h->frees++;
    return CATENA_OK;
}

/* catena_free on a valid heap that parks (park_cap is not 0, P2). */
static CATENA_NOINLINE int free_parking(catena_heap_t *h, void *obj)
{
    if (h->gc.lock)
        return free_general(h, obj);
    size_t off = (size_t)((uintptr_t)obj - (uintptr_t)h->base);
    size_t i = off / CATENA_B;
    /* i + 14 < N: the block is in the heap and park_word may read its
     * length (off / CATENA_B cannot wrap the sum) */
    if (off % CATENA_B != 0 || !park_len_ok(h, i))
        return free_near_end(h, obj);
    /* One table read gives the state and the length.  A contiguous
     * object's handle is parked while it is short and the cap allows
     * (P2: the cap is 0 where parking is off), else released with the
     * length measured here; anything else is classified there. */
    uint64_t x = park_word(h, i);
    unsigned s = (unsigned)(x & 0xFu);
    if (!parkable(s))
        return free_general(h, obj);
    size_t len = park_word_len(x);
    if (!len || len > h->park_room)
        return free_run(h, obj, i, len);
    park_push(h, i, obj, s, len);
    h->frees++;
    return CATENA_OK;
}

/* Two tail calls: so neither path saves registers for the other (the
 * small build inlines free_general). */
int catena_free(catena_heap_t *h, void *obj)
{
    if (CATENA_PARKING && !bad_heap(h) && h->park_cap)
        return free_parking(h, obj);
    return free_general(h, obj);
}

/* ---- resize -------------------------------------------------------------- */

/* A chain left with one extent becomes contiguous again. */
static size_t unchain_if_single(catena_heap_t *h, size_t root)
{
    struct ent *e = ents(h, root, root);
    if (_catena_spine_entries(h, root, root) != 1 || block_state(h, e[0].idx) != ST_EXT)
        return root;
    size_t ext = e[0].idx;
    EXT_TO_HEAD(h, ext, _catena_head_state(_catena_root_flags(h, root)));
    _catena_run_release(h, root, 1);
    h->spine_blocks--;
    h->chained--;
    return ext;
}

/* Grow object i (contiguous of d0 blocks, or a chain) to d1 blocks without
 * moving data; `extend_only`: only by extending a contiguous object into
 * the free run after it.  Returns the handle, or NIL when the blocks are
 * not there (nothing changed). */
static size_t grow(catena_heap_t *h, size_t i, size_t d0, size_t d1,
                   bool extend_only)
{
    bool conv = !is_chain(h, i);
    size_t need = d1 - d0;
    size_t end = conv ? i + d0 : _catena_spine_last_end(h, i);
    size_t absorb = 0, rlen = 0;
    if (end < h->nblocks && block_state(h, end) == ST_FREE) {
        rlen = _catena_run_len(h, end);
        if (!rlen)
            return CATENA_NIL; /* corrupt: the heap is poisoned */
        absorb = rlen < need ? rlen : need;
    }
    if (conv && absorb == need) { /* the easy case: extend in place */
        _catena_run_take(h, end, need);
        FREE_TO_TAIL(h, end);
        return i;
    }
    if (conv && (extend_only || !h->chaining))
        return CATENA_NIL;
    size_t k = 0, k0 = conv ? 1 : _catena_spine_count(h, i);
    if (absorb < need) {
        if (absorb) /* count extents as if the neighbour were taken */
            _catena_run_unlink(h, end);
        k = _catena_greedy_extents(h, need - absorb);
        if (absorb)
            _catena_run_insert(h, end, rlen);
        if (k == SIZE_MAX)
            return CATENA_NIL;
    }
    size_t nodes = _catena_spine_nodes(k0 + k) - _catena_spine_nodes(k0) +
                   (conv ? 1 : 0);
    if (h->free_blocks < need + nodes)
        return CATENA_NIL;
    if (absorb) {
        _catena_run_take(h, end, absorb);
        FREE_TO_TAIL(h, end);
    }
    size_t ext = k ? take_extents(h, need - absorb, true) : CATENA_NIL;
    size_t spare = nodes ? take_nodes(h, nodes, conv ? ST_CHAIN : ST_NODE)
                         : CATENA_NIL;
    size_t root = i;
    if (conv) { /* object i becomes the first extent of a new root */
        root = new_root(h, &spare, _catena_state_flags(block_state(h, i)));
        HEAD_TO_EXT(h, i);
        struct ent *e = ents(h, root, root);
        e->idx = (cidx)i;
        e->cum = (cidx)(e->cum | (d0 + absorb)); /* beside the flag bits */
        absorb = 0; /* in the first extent already */
    }
    _catena_spine_append(h, root, absorb, ext, spare);
    return root;
}

static size_t shrink(catena_heap_t *h, size_t i, size_t d0, size_t d1)
{
    if (!is_chain(h, i)) {
        _catena_run_release(h, i + d1, d0 - d1);
        return i;
    }
    _catena_spine_truncate(h, i, d1);
    return unchain_if_single(h, i);
}

/* The one grow path of both realloc flavours: the collector's threshold,
 * the attempt, one automatic collection and a retry (not for extend_only:
 * its caller moves the object next, which has its own retry), and the
 * bookkeeping of a success.  Returns the handle or NIL. */
static size_t grow_object(catena_heap_t *h, size_t i, size_t d0, size_t d1,
                          bool extend_only)
{
    _catena_gc_threshold(h, i);
    /* In place needs no flush; anything else (a chain, a failure) must
     * see the parked blocks. */
    size_t r = CATENA_NIL;
    if (CATENA_PARKING && parked_blocks(h)) {
        if (!is_chain(h, i))
            r = grow(h, i, d0, d1, true);
        if (r == CATENA_NIL && h->free_blocks >= d1 - d0 && !park_flush(h))
            return CATENA_NIL; /* poisoned: the caller reports it */
    }
    if (r == CATENA_NIL)
        r = grow(h, i, d0, d1, extend_only);
    if (r == CATENA_NIL && !extend_only && _catena_gc_auto(h, i))
        r = grow(h, i, d0, d1, false);
    if (r != CATENA_NIL)
        grown(h, r, d0, d1);
    return r;
}

void *catena_realloc(catena_heap_t *h, void *obj, size_t n)
{
    static const char fn[] = "catena_realloc";
    size_t i;
    if (!obj) /* the general path: realloc does not pull in the fast one */
        return catena_alloc_flags(h, n, 0);
    int e = _catena_handle(h, obj, fn, &i);
    if (e)
        return NULL;
    size_t d1 = blocks(n);
    if (n == 0 || d1 > CATENA_MAX_BLOCKS) {
        _catena_err(h, CATENA_ESIZE, obj, fn);
        return NULL;
    }
    if (locked(h, obj, fn))
        return NULL;
    size_t d0 = _catena_obj_blocks(h, i), r = i;
    if (d1 < d0)
        r = shrink(h, i, d0, d1);
    else if (d1 > d0)
        r = grow_object(h, i, d0, d1, false);
    if (bad_heap(h)) /* a corrupt free run was found: reported below */
        r = CATENA_NIL;
    if (r == CATENA_NIL) {
        h->failed++;
        _catena_err(h, miss(h, d1 - d0, !is_chain(h, i)), obj, fn);
        return NULL;
    }
    return block_ptr(h, r);
}

/* Copy object i into a new contiguous run of d blocks; free i.  The
 * caller has asked the collector's threshold. */
static void *move_contig(catena_heap_t *h, size_t i, size_t d, const char *fn)
{
    unsigned fl = _catena_obj_flags(h, i);
    if (bad_heap(h)) {
        _catena_err(h, CATENA_ECORRUPT, block_ptr(h, i), fn);
        return NULL;
    }
    void *q = alloc_contig(h, d, fl, true);
    if (!q && h->free_blocks >= d && park_flush(h))
        q = alloc_contig(h, d, fl, true);
    if (!q && _catena_gc_auto(h, i))
        q = alloc_contig(h, d, fl, true);
    if (!q) {
        h->failed++;
        _catena_err(h, miss(h, 0, false), block_ptr(h, i), fn);
        return NULL;
    }
    size_t n = _catena_obj_blocks(h, i);
    zero_or_copy(h, i, 0, n < d ? n : d, q);
    if (d > n) {
        h->gc.since += d - n;
        if (must_zero(h, fl))
            memset((unsigned char *)q + n * CATENA_B, 0, (d - n) * CATENA_B);
    }
    release_obj(h, i);
    h->allocs--; /* a move is not a new allocation */
    return q;
}

void *catena_realloc_contig(catena_heap_t *h, void *obj, size_t n)
{
    static const char fn[] = "catena_realloc_contig";
    size_t i;
    if (!obj)
        return new_object(h, n, 0, true, fn);
    if (_catena_handle(h, obj, fn, &i) || locked(h, obj, fn))
        return NULL;
    size_t d1 = blocks(n);
    if (n == 0 || d1 > CATENA_MAX_BLOCKS) {
        _catena_err(h, CATENA_ESIZE, obj, fn);
        return NULL;
    }
    if (!is_chain(h, i)) {
        size_t d0 = _catena_run_length(h, i);
        if (d1 == d0)
            return obj;
        if (d1 < d0) {
            size_t r = shrink(h, i, d0, d1);
            if (!bad_heap(h))
                return block_ptr(h, r);
            _catena_err(h, CATENA_ECORRUPT, obj, fn);
            return NULL;
        }
        if (grow_object(h, i, d0, d1, true) != CATENA_NIL)
            return obj;
    } else {
        _catena_gc_threshold(h, i);
    }
    return move_contig(h, i, d1, fn);
}

void *catena_flatten(catena_heap_t *h, void *obj)
{
    size_t i;
    if (_catena_handle(h, obj, "catena_flatten", &i) ||
        locked(h, obj, "catena_flatten"))
        return NULL;
    if (!is_chain(h, i))
        return obj;
    _catena_gc_threshold(h, i);
    return move_contig(h, i, _catena_spine_total(h, i), "catena_flatten");
}

/* ---- batches ------------------------------------------------------------- */

/* Taken run s of k * d blocks (its first block still FREE, the rest
 * TAIL, as _catena_run_take leaves it) becomes k plain objects of d
 * blocks: one HEAD state each, no index work. */
static void split_run(catena_heap_t *h, size_t s, size_t d, size_t k,
                      void **out)
{
    FREE_TO_HEAD(h, s, ST_HEAD);
    out[0] = block_ptr(h, s);
    for (size_t j = 1; j < k; j++) {
        TAIL_TO_HEAD(h, s + j * d, ST_HEAD);
        out[j] = block_ptr(h, s + j * d);
    }
    h->allocs += k;
    note_peak(h);
}

/* Up to count plain objects of d blocks into out; how many.  Parked runs
 * of the length first (one pop each); then, run by run, the free run a
 * single catena_alloc of d blocks would take (the index's fit: the
 * smallest class that holds d), cut into as many objects as it holds and
 * the batch still wants, with one index operation.  Asking the index for
 * a run of count * d blocks instead would take a long run and leave the
 * short ones the singles fill: the shim's peak RSS on larson rose 40 %
 * that way.  When no run fits, the general path for one object (a flush
 * of the parked runs, a chain where the policy allows), then the fit
 * again.  Stops at the first object it cannot make, or when the heap is
 * found poisoned. */
static size_t make_many(catena_heap_t *h, size_t d, void **out, size_t count)
{
    size_t got = 0;
    void *p;
    while (CATENA_PARKING && got < count && (p = alloc_parked(h, d, 0)))
        out[got++] = p;
    while (got < count && !bad_heap(h)) {
        size_t s = _catena_run_fit(h, d), len;
        if (s != CATENA_NIL && (len = _catena_run_len(h, s)) >= d) {
            size_t k = len / d < count - got ? len / d : count - got;
            _catena_run_take(h, s, k * d);
            if (bad_heap(h))
                break;
            split_run(h, s, d, k, out + got);
            got += k;
        } else if (bad_heap(h) ||
                   (p = alloc_any(h, d, 0, h->chaining)) == NULL) {
            break;
        } else {
            out[got++] = p;
        }
    }
    return got;
}

size_t catena_alloc_many(catena_heap_t *h, size_t n, void **out, size_t count)
{
    static const char fn[] = "catena_alloc_many";
    if (bad_heap(h)) {
        _catena_err(h, CATENA_ECORRUPT, NULL, fn);
        return 0;
    }
    size_t d = blocks(n);
    if (n == 0 || d > CATENA_MAX_BLOCKS || count == 0) {
        h->failed++;
        _catena_err(h, CATENA_ESIZE, NULL, fn);
        return 0;
    }
    if (!out) {
        _catena_err(h, CATENA_EINVAL, NULL, fn);
        return 0;
    }
    if (locked(h, NULL, fn)) {
        h->failed++;
        return 0;
    }
    /* A collection only before the first object: the objects made are
     * not yet reachable from any root the collector knows. */
    _catena_gc_threshold(h, CATENA_NIL);
    size_t got = make_many(h, d, out, count);
    if (!got && !bad_heap(h) && _catena_gc_auto(h, CATENA_NIL))
        got = make_many(h, d, out, count);
    if (bad_heap(h) || !got) {
        h->failed++;
        _catena_err(h, miss(h, d, true), NULL, fn);
        return bad_heap(h) ? got : 0;
    }
    h->gc.since += got * d;
    if (must_zero(h, 0))
        for (size_t j = 0; j < got; j++)
            zero_or_copy(h, block_index(h, out[j]), 0, d, NULL);
    return got;
}

/* The handle at objs[j] in *i when it is a contiguous object's (not
 * validated further: the caller's loop validates it in its turn). */
static bool contig_at(const catena_heap_t *h, void *const *objs, size_t j,
                      size_t *i)
{
    return is_handle(h, objs[j], i) && ST_IS_CONTIG(block_state(h, *i));
}

/* A group of the batch being merged: blocks [i, i + len).  `next`, `nlen`:
 * the object after the group in the batch, measured (so that it is
 * measured once, also when it starts the next group), or NIL. */
struct group {
    size_t i, len, next, nlen;
};

/* Contiguous object g->i of g->len blocks absorbs the objects that follow
 * it in objs from *j on while each is adjacent in memory, after it or
 * before it (the batch in address order, or in reverse): each one's start
 * becomes TAIL, so one release frees the whole group.  An object that
 * lies before the group is measured to know; one that is not adjacent is
 * left in g->next for the next group. */
static void absorb_adjacent(catena_heap_t *h, void *const *objs, size_t count,
                            size_t *j, struct group *g)
{
    size_t o;
    g->next = CATENA_NIL;
    while (*j < count && contig_at(h, objs, *j, &o)) {
        size_t ol;
        if (o == g->i + g->len) {
            ol = _catena_run_length(h, o);
            HEAD_TO_TAIL(h, o);
        } else if (o < g->i && o + (ol = _catena_run_length(h, o)) == g->i) {
            HEAD_TO_TAIL(h, g->i);
            g->i = o;
        } else {
            if (o < g->i) {
                g->next = o;
                g->nlen = ol;
            }
            return;
        }
        g->len += ol;
        h->frees++;
        (*j)++;
    }
}

/* catena_free_many on a heap that does not park: a run of the batch whose
 * objects are adjacent in memory is released as one run (one index
 * operation for the group); each object's length is measured once. */
static int free_merging(catena_heap_t *h, void *const *objs, size_t count)
{
    int first = CATENA_OK;
    size_t j = 0;
    struct group g = {0, 0, CATENA_NIL, 0};
    while (j < count) {
        void *p = objs[j++];
        size_t i, known = g.next;
        if (!p)
            continue;
        if (!is_handle(h, p, &i)) {
            int e = _catena_handle(h, p, "catena_free", &i);
            first = first ? first : e;
            continue;
        }
        if (ST_IS_CHAIN(block_state(h, i))) {
            release_obj(h, i);
            g.next = CATENA_NIL;
        } else {
            g.len = i == known ? g.nlen : _catena_run_length(h, i);
            g.i = i;
            absorb_adjacent(h, objs, count, &j, &g);
            _catena_run_release(h, g.i, g.len);
        }
        if (bad_heap(h)) { /* released, but not by a successful free */
            h->dropped++;
            return _catena_err(h, CATENA_ECORRUPT, p, "catena_free");
        }
        h->frees++;
    }
    return first;
}

int catena_free_many(catena_heap_t *h, void *const *objs, size_t count)
{
    static const char fn[] = "catena_free_many";
    if (bad_heap(h))
        return _catena_err(h, CATENA_ECORRUPT, NULL, fn);
    if (!objs && count)
        return _catena_err(h, CATENA_EINVAL, NULL, fn);
    if (h->gc.lock)
        return _catena_err(h, CATENA_ELOCKED, NULL, fn);
    if (!(CATENA_PARKING && h->park_cap))
        return free_merging(h, objs, count);
    /* A parking heap parks what catena_free would: one at a time. */
    int first = CATENA_OK;
    for (size_t j = 0; j < count; j++) {
        int e = catena_free(h, objs[j]);
        if (e == CATENA_ECORRUPT && bad_heap(h))
            return e;
        first = first ? first : e;
    }
    return first;
}
