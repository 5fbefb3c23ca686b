/*
 * gc.c - a conservative mark-sweep collector over the block table.
 *
 * The mark bit is bit 0 of a collectable handle's state (catena_int.h:
 * MARK / UNMARK), so marking needs no memory of its own beyond a fixed
 * stack of grey handles.  The invariant (G1, G2) is stated in catena_int.h.
 *
 * One collection, in phases:
 *   start     lock the heap; mark the objects that are roots by themselves
 *             (never-collected ones, the object a resize is growing).
 *   roots     every word of every root range that names an object marks it
 *             grey; grey objects are scanned (their words are roots too)
 *             until the stack is empty.
 *   finish    recover what a full stack dropped (rescan marked objects from
 *             the lowest dropped one), find the owners of extents that
 *             interior pointers hit; repeat until nothing is grey.
 *   finalise  call the finaliser for each dead CATENA_FINAL object while
 *             every object is still intact.
 *   sweep     free each unmarked collectable object, unmark the others.
 *
 * Nothing here allocates or recurses: the only memory is the mark stack,
 * the extent-hit list and a spine walker of MAX_DEPTH entries on the C
 * stack.
 */
#include "catena_int.h"

/* Words of scanned memory are read through a type that may alias
 * anything: objects hold pointers of every type. */
#if defined(__GNUC__)
typedef uintptr_t __attribute__((may_alias)) gc_word;
#define GC_NOINLINE __attribute__((noinline))
#else
typedef uintptr_t gc_word;
#define GC_NOINLINE
#endif

/* The stack scan reads slots the compiler never wrote: exempt it from
 * AddressSanitizer's redzone checks. */
#if defined(__SANITIZE_ADDRESS__)
#define GC_NO_ASAN __attribute__((no_sanitize_address))
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define GC_NO_ASAN __attribute__((no_sanitize_address))
#endif
#endif
#ifndef GC_NO_ASAN
#define GC_NO_ASAN
#endif

/* Hosted builds spill registers with setjmp; bare metal leaves the hook
 * to the port (see _catena_gc_scan_regs below). */
#ifndef CATENA_GC_HOSTED
#if defined(__unix__) || defined(__APPLE__) || defined(_WIN32)
#define CATENA_GC_HOSTED 1
#else
#define CATENA_GC_HOSTED 0
#endif
#endif

/* Interior pointers (CATENA_GC_INTERIOR): the small build leaves them
 * out, keeping MicroPython's rule (only a pointer to an object's first
 * byte counts); catena_gc_set_options then refuses the option.  Without
 * them there is no extent-hit list to resolve: about 360 bytes less on M0
 * and no resolve_hits frame on the deepest stack (doc/embedded.md). */
#ifndef CATENA_GC_INTERIOR_PTRS
#define CATENA_GC_INTERIOR_PTRS (!CATENA_SMALL)
#endif
#define GC_OPTS                                                         \
    (CATENA_GC_INTERIOR_PTRS ? CATENA_GC_ALL_OPTS                       \
                             : CATENA_GC_ALL_OPTS & ~(unsigned)CATENA_GC_INTERIOR)

/* Unmarked and collectable: what the sweep frees. */
static bool is_white(unsigned s)
{
    return ST_MARKABLE(s) && !(s & 1u);
}

/* ---- mark ---------------------------------------------------------------- */

static void resolve_hits(catena_heap_t *h);

/* Make object i grey.  A full stack drops it: it stays marked, and the
 * lowest dropped index tells the rescan where to start (G2).  During a
 * rescan, drops at or beyond the cursor will be reached anyway. */
static void push(catena_heap_t *h, size_t i)
{
    struct gc_state *g = &h->gc;
    if (g->sp < g->cap) {
        g->stack[g->sp++] = (cidx)i;
        return;
    }
    g->overflows++;
    if (i < g->horizon && i < g->ovf_lo)
        g->ovf_lo = i;
}

static void mark(catena_heap_t *h, size_t i)
{
    unsigned s = block_state(h, i);
    MARK(h, i);
    if (ST_IS_CHAIN(s))
        h->gc.unmarked_chains--;
    if (!(_catena_obj_flags(h, i) & CATENA_NOSCAN))
        push(h, i);
}

/* Start of the run holding block i (block 0 always starts one, I1);
 * steps a table byte (two TAILs) at a time where it can. */
static size_t run_start(const catena_heap_t *h, size_t i)
{
    while (block_state(h, i) == ST_TAIL) {
        if ((i & 1) && i >= 3 && h->table[i >> 1] == ST_TAIL * 0x11)
            i -= 2;
        else
            i--;
    }
    return i;
}

/* An interior pointer hit extent e, whose owner is not recorded anywhere:
 * remember e; when the list is full, find the owners now. */
static void ext_hit(catena_heap_t *h, size_t e)
{
    struct gc_state *g = &h->gc;
    if (!g->unmarked_chains)
        return; /* every owner is marked already */
    for (unsigned k = 0; k < g->nhits; k++)
        if (g->hits[k] == e)
            return;
    if (g->nhits == CATENA_GC_HITS)
        resolve_hits(h);
    g->hits[g->nhits++] = (cidx)e;
}

/* Word w points into block i at byte offset `in` of it.  MicroPython's
 * rule: only a handle counts; with CATENA_GC_INTERIOR any byte of an
 * object counts, extents included.  Spine nodes and free blocks never. */
static void mark_candidate(catena_heap_t *h, size_t i, size_t in)
{
    unsigned s = block_state(h, i);
    bool interior = CATENA_GC_INTERIOR_PTRS &&
                    (h->gc.opts & CATENA_GC_INTERIOR) != 0;
    if (ST_MARKABLE(s)) {
        if (!(s & 1u) && (in == 0 || interior))
            mark(h, i);
        return;
    }
    if (!interior || (s != ST_TAIL && s != ST_EXT))
        return;
    if (s == ST_TAIL) {
        i = run_start(h, i);
        s = block_state(h, i);
        if (is_white(s))
            mark(h, i);
        if (s != ST_EXT)
            return;
    }
    ext_hit(h, i);
}

/* The hot test: most words are not in the heap at all. */
static inline void mark_word(catena_heap_t *h, uintptr_t w)
{
    uintptr_t off = w - (uintptr_t)h->base;
    if (off < (uintptr_t)h->nblocks * CATENA_B)
        mark_candidate(h, (size_t)(off / CATENA_B), (size_t)(off % CATENA_B));
}

static void scan_words(catena_heap_t *h, const void *p, size_t bytes)
{
    const gc_word *w = p, *end = w + bytes / sizeof *w;
    for (; w < end; w++)
        mark_word(h, *w);
}

/* Scan a grey object's data: its run, or every extent of its chain (the
 * spine is structure, never data). */
static void scan_obj(catena_heap_t *h, size_t i)
{
    if (ST_IS_CHAIN(block_state(h, i))) {
        struct spine_walk w;
        struct spine_visit v;
        for (_catena_spine_walk(&w, i); _catena_spine_next(h, &w, &v);)
            scan_words(h, block_ptr(h, v.blk), (v.hi - v.lo) * CATENA_B);
    } else {
        scan_words(h, block_ptr(h, i), _catena_run_length(h, i) * CATENA_B);
    }
}

static void drain(catena_heap_t *h)
{
    struct gc_state *g = &h->gc;
    while (g->sp)
        scan_obj(h, g->stack[--g->sp]);
}

/* ---- finish: overflow recovery and extent owners ------------------------ */

/* Scan every marked scannable object from the lowest dropped one up.  A
 * drop below the cursor moves the cursor back to it, so a deep structure
 * laid out downwards costs one pass, not one pass per level. */
static void rescan(catena_heap_t *h)
{
    struct gc_state *g = &h->gc;
    size_t i = g->ovf_lo;
    g->ovf_lo = SIZE_MAX;
    while (i < h->nblocks) {
        unsigned s = block_state(h, i);
        size_t next = i + _catena_run_length(h, i);
        g->horizon = i + 1;
        if (ST_MARKED(s) && !(_catena_obj_flags(h, i) & CATENA_NOSCAN)) {
            scan_obj(h, i);
            drain(h);
        }
        if (g->ovf_lo <= i) {
            next = g->ovf_lo;
            g->ovf_lo = SIZE_MAX;
        }
        i = next;
    }
    g->horizon = SIZE_MAX;
}

static bool take_hit(struct gc_state *g, size_t e)
{
    for (unsigned k = 0; k < g->nhits; k++)
        if (g->hits[k] == e) {
            g->hits[k] = g->hits[--g->nhits];
            return true;
        }
    return false;
}

/* Mark the unmarked chains owning a listed extent.  One pass over the
 * table and the spines of the unmarked chains; it stops early once every
 * hit is resolved or every unmarked chain was seen. */
static void resolve_hits(catena_heap_t *h)
{
    struct gc_state *g = &h->gc;
    size_t chains_left = g->unmarked_chains;
    for (size_t i = 0; i < h->nblocks && chains_left && g->nhits; i++) {
        if (block_state(h, i) != ST_CHAIN)
            continue;
        chains_left--;
        struct spine_walk w;
        struct spine_visit v;
        bool owner = false;
        for (_catena_spine_walk(&w, i); _catena_spine_next(h, &w, &v);)
            owner |= take_hit(g, v.blk);
        if (owner)
            mark(h, i);
    }
    g->nhits = 0; /* the rest point into marked chains */
}

static void finish_marking(catena_heap_t *h)
{
    struct gc_state *g = &h->gc;
    for (;;) {
        drain(h);
        if (g->ovf_lo != SIZE_MAX)
            rescan(h);
        else if (CATENA_GC_INTERIOR_PTRS && g->nhits)
            resolve_hits(h);
        else
            break;
    }
}

/* ---- start and roots ----------------------------------------------------- */

/* Never-collected objects are roots: a PIN is scanned now (it has no mark
 * bit, so it can never be grey later), a NOCOLLECT chain is marked. */
static void mark_heap_roots(catena_heap_t *h)
{
    for (size_t i = 0; i < h->nblocks; i += _catena_run_length(h, i)) {
        unsigned s = block_state(h, i);
        if (s == ST_PIN) {
            scan_obj(h, i);
            drain(h);
        } else if (s == ST_CHAIN &&
                   (_catena_root_flags(h, i) & CATENA_NOCOLLECT)) {
            mark(h, i);
            drain(h);
        }
    }
    size_t k = h->gc.keep;
    if (k != CATENA_NIL && is_white(block_state(h, k))) {
        mark(h, k);
        drain(h);
    }
}

/* G1 before marking: an O(N) walk, debug builds only. */
static bool none_marked(const catena_heap_t *h)
{
    for (size_t i = 0; i < h->nblocks; i++)
        if (ST_MARKED(block_state(h, i)))
            return false;
    return true;
}

int catena_collect_start(catena_heap_t *h)
{
    static const char fn[] = "catena_collect_start";
    if (bad_heap(h))
        return _catena_err(h, CATENA_ECORRUPT, NULL, fn);
    struct gc_state *g = &h->gc;
    if (g->lock || g->collecting)
        return _catena_err(h, CATENA_ELOCKED, NULL, fn);
    /* Parked runs are free blocks in a marked state (G1, P2): back to the
     * index, so that none is mistaken for a marked object or swept. */
    park_flush(h);
    if (bad_heap(h))
        return _catena_err(h, CATENA_ECORRUPT, NULL, fn);
    CATENA_ASSERT(h, none_marked(h)); /* G1 */
    g->lock++;
    g->collecting = true;
    g->sp = 0;
    g->nhits = 0;
    g->ovf_lo = SIZE_MAX;
    g->horizon = SIZE_MAX;
    g->unmarked_chains = h->chained;
    mark_heap_roots(h);
    return CATENA_OK;
}

void catena_collect_root(catena_heap_t *h, void *const *ptrs, size_t n)
{
    if (bad_heap(h) || !h->gc.collecting) {
        _catena_err(h, CATENA_EINVAL, ptrs, "catena_collect_root");
        return;
    }
    for (size_t k = 0; k < n; k++) {
        mark_word(h, (uintptr_t)ptrs[k]);
        drain(h);
    }
}

/* ---- finalise and sweep -------------------------------------------------- */

/* Before anything is freed, so a finaliser may read any object. */
static void finalise(catena_heap_t *h)
{
    struct gc_state *g = &h->gc;
    if (!g->final_fn)
        return;
    for (size_t i = 0; i < h->nblocks; i += _catena_run_length(h, i)) {
        unsigned s = block_state(h, i);
        if (is_white(s) && (_catena_obj_flags(h, i) & CATENA_FINAL)) {
            g->final_fn(g->final_ctx, h, block_ptr(h, i));
            g->finalised++;
        }
    }
}

/* The end of the free run holding block i, which was just released: it
 * starts at i, or (merged with a free left neighbour) where the footer
 * that neighbour had at i - 1 says. */
static size_t free_run_end(const catena_heap_t *h, size_t i)
{
    size_t s = i;
    if (CATENA_SCAN) { /* no footers: back to the run's start */
        s = run_start(h, i);
        return s + _catena_run_length(h, s);
    }
    if (block_state(h, i) != ST_FREE)
        s = block_state(h, i - 1) == ST_FREE ? i - 1 : *footer_at(h, i - 1);
    CATENA_ASSERT(h, s <= i && block_state(h, s) == ST_FREE &&
                         s + run_at(h, s)->len > i);
    return s + run_at(h, s)->len;
}

/* Free white objects, unmark black ones.  Releasing a chain frees blocks
 * anywhere, so the walk always re-reads the table ahead of it: a freed
 * extent ahead is simply a free run when the walk gets there. */
static void sweep(catena_heap_t *h)
{
    size_t i = 0;
    while (i < h->nblocks) {
        unsigned s = block_state(h, i);
        if (s == ST_FREE) {
            i += _catena_free_len(h, i);
        } else if (ST_MARKED(s)) {
            UNMARK(h, i);
            i += _catena_run_length(h, i);
        } else if (is_white(s)) {
            _catena_release_obj(h, i);
            i = free_run_end(h, i);
        } else {
            i += _catena_run_length(h, i);
        }
    }
}

int catena_collect_end(catena_heap_t *h)
{
    if (bad_heap(h) || !h->gc.collecting)
        return _catena_err(h, CATENA_EINVAL, NULL, "catena_collect_end");
    struct gc_state *g = &h->gc;
    finish_marking(h);
    size_t free0 = h->free_blocks;
    finalise(h);
    sweep(h);
    g->collections++;
    g->last_freed = h->free_blocks - free0;
    g->last_marked = h->nblocks - h->free_blocks;
    g->total_freed += g->last_freed;
    g->total_marked += g->last_marked;
    g->since = 0;
    g->collecting = false;
    g->lock--;
    return CATENA_OK;
}

/* ---- one-call collection: registered roots, registers, stack ------------- */

#if CATENA_GC_HOSTED
#include <setjmp.h>
/* setjmp stores the callee-saved registers in jb.  Some C libraries
 * mangle a few of them (glibc: frame and stack pointer); catena_collect
 * also asks GCC to spill them into its frame, which the stack scan
 * covers. */
void _catena_gc_scan_regs(catena_heap_t *h)
{
    jmp_buf jb;
    size_t words = sizeof(jmp_buf) / (sizeof(void *)); /* whole words */
    if (setjmp(jb) == 0)
        catena_collect_root(h, (void *const *)(void *)&jb, words);
}
#elif defined(__arm__) && defined(__thumb__) && \
    defined(__ARM_ARCH_PROFILE) && __ARM_ARCH_PROFILE == 'M'
/* Cortex-M: lib/regs_arm.c defines the hook.  No weak default here: a
 * program linked against libcatena.a would keep it, since an archive
 * member is only extracted for an undefined symbol. */
#elif defined(__GNUC__)
/* Other bare-metal targets: a port overrides this weak no-op with a
 * helper that stores the callee-saved registers and scans them. */
__attribute__((weak)) void _catena_gc_scan_regs(catena_heap_t *h)
{
    (void)h;
}
#else
void _catena_gc_scan_regs(catena_heap_t *h)
{
    (void)h;
}
#endif

/* Scan from this frame (deeper than the caller's spills) to the top. */
static GC_NOINLINE GC_NO_ASAN void scan_stack(catena_heap_t *h)
{
    volatile gc_word here = 0;
    uintptr_t lo = (uintptr_t)&here, hi = (uintptr_t)h->gc.stack_top;
    if (lo > hi) { /* an ascending stack */
        uintptr_t t = lo;
        lo = hi;
        hi = t;
    }
    lo &= ~(uintptr_t)(sizeof(gc_word) - 1);
    for (const volatile gc_word *w = (const volatile gc_word *)lo;
         (uintptr_t)(w + 1) <= hi; w++) {
        mark_word(h, *w);
        drain(h);
    }
}

int catena_collect(catena_heap_t *h)
{
    int e = catena_collect_start(h);
    if (e)
        return e;
    struct gc_state *g = &h->gc;
    for (unsigned r = 0; r < CATENA_GC_ROOTS; r++)
        if (g->roots[r].ptrs)
            catena_collect_root(h, g->roots[r].ptrs, g->roots[r].n);
    if (g->stack_top) {
#if defined(__GNUC__)
        __builtin_unwind_init(); /* callee-saved registers to this frame */
#endif
        _catena_gc_scan_regs(h);
        scan_stack(h);
    }
    return catena_collect_end(h);
}

/* ---- automatic collection ------------------------------------------------ */

/* The allocator's hook (struct gc_state), installed by
 * catena_gc_set_options. */
static bool auto_collect(catena_heap_t *h, size_t keep)
{
    struct gc_state *g = &h->gc;
    if (!(g->opts & CATENA_GC_AUTO) || g->lock)
        return false;
    size_t old = g->keep;
    g->keep = keep;
    if (g->collect_fn)
        g->collect_fn(g->collect_ctx, h);
    else
        catena_collect(h);
    g->keep = old;
    return true;
}

/* ---- configuration ------------------------------------------------------- */

int catena_gc_add_roots(catena_heap_t *h, void *const *ptrs, size_t n)
{
    static const char fn[] = "catena_gc_add_roots";
    if (bad_heap(h) || (!ptrs && n))
        return _catena_err(h, CATENA_EINVAL, ptrs, fn);
    for (unsigned r = 0; r < CATENA_GC_ROOTS; r++)
        if (!h->gc.roots[r].ptrs) {
            h->gc.roots[r].ptrs = ptrs;
            h->gc.roots[r].n = n;
            return CATENA_OK;
        }
    return _catena_err(h, CATENA_ENOMEM, ptrs, fn);
}

int catena_gc_remove_roots(catena_heap_t *h, void *const *ptrs)
{
    if (bad_heap(h) || !ptrs)
        return _catena_err(h, CATENA_EINVAL, ptrs, "catena_gc_remove_roots");
    for (unsigned r = 0; r < CATENA_GC_ROOTS; r++)
        if (h->gc.roots[r].ptrs == ptrs) {
            h->gc.roots[r].ptrs = NULL;
            h->gc.roots[r].n = 0;
            return CATENA_OK;
        }
    return _catena_err(h, CATENA_EINVAL, ptrs, "catena_gc_remove_roots");
}

void catena_gc_set_stack_top(catena_heap_t *h, void *top)
{
    h->gc.stack_top = top;
}

int catena_gc_set_options(catena_heap_t *h, unsigned opts)
{
    static const char fn[] = "catena_gc_set_options";
    if (bad_heap(h) || (opts & ~GC_OPTS))
        return _catena_err(h, CATENA_EINVAL, NULL, fn);
    if (h->gc.collecting)
        return _catena_err(h, CATENA_ELOCKED, NULL, fn);
    h->gc.opts = opts;
    h->gc.auto_collect = auto_collect;
    if (CATENA_PARKING) /* parked runs are not zeroed (P2) */
        _catena_park_policy(h);
    return CATENA_OK;
}

unsigned catena_gc_options(const catena_heap_t *h) { return h->gc.opts; }

int catena_gc_set_mark_stack(catena_heap_t *h, void *buf, size_t entries)
{
    static const char fn[] = "catena_gc_set_mark_stack";
    if (bad_heap(h) || entries == 0 || (!buf && entries > CATENA_GC_STACK) ||
        ((uintptr_t)buf % sizeof(cidx)))
        return _catena_err(h, CATENA_EINVAL, buf, fn);
    if (h->gc.collecting)
        return _catena_err(h, CATENA_ELOCKED, buf, fn);
    h->gc.stack = buf ? (cidx *)buf : h->gc.stack0;
    h->gc.cap = entries;
    return CATENA_OK;
}

void catena_gc_set_finaliser(catena_heap_t *h, catena_final_fn fn, void *ctx)
{
    h->gc.final_fn = fn;
    h->gc.final_ctx = ctx;
}

void catena_gc_set_collect_hook(catena_heap_t *h, catena_collect_fn fn,
                                void *ctx)
{
    h->gc.collect_fn = fn;
    h->gc.collect_ctx = ctx;
}

void catena_gc_set_threshold(catena_heap_t *h, size_t blocks)
{
    h->gc.threshold = blocks;
}

/* A locked heap has no parked runs (P2), so popping one needs no lock
 * test. */
void catena_gc_lock(catena_heap_t *h)
{
    park_flush(h);
    h->gc.lock++;
}

int catena_gc_unlock(catena_heap_t *h)
{
    /* The collection's own level cannot be released from outside. */
    if (h->gc.lock <= (h->gc.collecting ? 1u : 0u))
        return _catena_err(h, CATENA_EINVAL, NULL, "catena_gc_unlock");
    h->gc.lock--;
    return CATENA_OK;
}

bool catena_gc_locked(const catena_heap_t *h) { return h->gc.lock > 0; }
