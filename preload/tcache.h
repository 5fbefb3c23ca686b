/*
 * tcache.h - private to tcache.c, small.c and malloc.c: the per-thread
 * caches' records and their hit path (the stack operations and the
 * seals; the depots' checked links), inline so that a cached malloc or
 * free makes no call.
 *
 * Two hit paths share the stacks and state bytes.  malloc.c's malloc,
 * calloc and free first try tc_alloc_hit/tc_free_hit: no call, no lock,
 * no errno save, no busy count.  malloc pops the top of the stack of its
 * size in blocks after checking the object's seal (its first word holds
 * the per-process secret: a write after free or an overflow into it
 * breaks it); free moves the object's state byte k -> k | TC_FREE with a
 * compare-and-swap, seals it and pushes it.  Anything else -- a miss, a
 * full stack, a state byte that is not a live cacheable object, a broken
 * seal, CATENA_CHECK on, no cache -- returns "not handled" and the entry
 * point takes the full path (small.c: tc_get/tc_put with the busy count
 * CATENA_CHECK's validator reads), which refills, flushes and diagnoses.
 */
#ifndef CATENA_TCACHE_H
#define CATENA_TCACHE_H

#include "arena.h"

#define TC_REFILL 8             /* objects fetched per lock on a miss */
#define TC_BIN_BYTES (32 * 1024) /* bound of one list, in bytes... */
#define TC_BIN_MIN 16           /* ...but at least this many objects */
#define TC_BIN_MAX 256          /* ...and at most this many */
#define DEPOT_BYTES (64 * 1024) /* bound of one slot's depots */

/* A thread's objects of one size: a stack of pointers in the cache's own
 * mapping (max + 1 entries: a push may overshoot the bound by one before
 * the cut).  The program cannot reach it, so a pop needs no checked link,
 * only the object's seal (tc_seal). */
struct tc_bin {
    void **stack;
    uint32_t n, max;
};
/* A depot's objects of one size: a list linked through the objects'
 * first words (masked, checked: tc_link, tc_next). */
struct tc_list {
    void *head;
    uint32_t n;
};
struct tcache {
    struct tc_bin bin[TC_CLASSES];
    atomic_uint busy;           /* odd: the owner is changing the lists;
                                 * +1 at each change and after it, so a
                                 * validator sees that it raced one (the
                                 * hit path, taken only without
                                 * CATENA_CHECK, does not count) */
    uint32_t slot;              /* where this thread allocates */
    struct tcache *next, *prev; /* the registry */
    /* the stacks follow, in the same mapping */
};
#define TC_DEAD ((struct tcache *)1) /* exited, registering, or no cache */
SHIM_HIDDEN extern __thread struct tcache *my_tc
    __attribute__((tls_model("initial-exec")));
/* my_tc when the hit path may use it (the thread has a cache and
 * CATENA_CHECK is off: a checked call must count, validate and keep the
 * busy counter), else NULL: one TLS load and one test decide. */
SHIM_HIDDEN extern __thread struct tcache *my_hot
    __attribute__((tls_model("initial-exec")));
SHIM_HIDDEN extern const char tc_overwritten[];
SHIM_HIDDEN extern const char tc_twice[];

/* ---- tcache.c: the slow paths ------------------------------------------ */
SHIM_HIDDEN struct tcache *tc_get_slow(void);
SHIM_HIDDEN void *tc_refill(struct tcache *tc, unsigned k, unsigned flags);
SHIM_HIDDEN void flush_list(void *list, bool keep, const char *fn);
/* Every depot's and orphaned cache's objects back to catena (out of
 * memory, exit report). */
SHIM_HIDDEN void tc_depots_flush(void);
/* Detach the newest objects of bin b (of k-block objects) until it
 * holds `keep`, as a list (tc_link); an object that is not whole
 * (tc_whole) is reported as a fault of fn and left out (leaked). */
SHIM_HIDDEN void *bin_cut(struct tc_bin *b, unsigned k, uint32_t keep,
                          const char *fn);
SHIM_HIDDEN void tc_flush_all(struct tcache *tc, const char *fn);
SHIM_HIDDEN void tc_check(const char *fn, const char *when);

/* ---- the hit path (inline: small.c's malloc and free take it) ------- */

/* Only the owner writes busy: a plain load and store count it up. */
static inline void tc_busy(struct tcache *tc)
{
    unsigned g = atomic_load_explicit(&tc->busy, memory_order_relaxed);
    atomic_store_explicit(&tc->busy, g + 1, memory_order_relaxed);
    atomic_thread_fence(memory_order_release); /* before the list stores */
}

static inline void tc_idle(struct tcache *tc)
{
    unsigned g = atomic_load_explicit(&tc->busy, memory_order_relaxed);
    atomic_store_explicit(&tc->busy, g + 1, memory_order_release);
}

/* ---- masked links and seals ------------------------------------------ */

static inline uintptr_t tc_mask(const void *at)
{
    return tc_secret ^ ((uintptr_t)at >> TC_BSHIFT);
}

/* Store in cached object p the link to next (NULL: the end). */
static inline void tc_link(void *p, const void *next)
{
    *(uintptr_t *)p = (uintptr_t)next ^ tc_mask(p);
}

/* An object in a thread's stack carries a seal in its first word: the
 * per-process secret (unmasked: a store and a compare on the hit paths;
 * a stacked object is never read as a link).  A write after free or an
 * overflow of the object before it breaks it; the pop that finds it
 * broken reports it. */
static inline void tc_seal(void *p) { *(uintptr_t *)p = tc_secret; }

static inline bool tc_sealed(const void *p)
{
    return *(const uintptr_t *)p == tc_secret;
}

/* Is the state byte v that of a cached object of k blocks (k 0: of any
 * size)? */
static inline bool tc_state_cached(unsigned v, unsigned k)
{
    return (v & (k ? 0xffu : TC_FREE)) == (k | TC_FREE);
}

/* Is q the start of a cached object (of k blocks; k 0: of any size)?
 * Block-aligned, in an arena (its bit: so its header and state bytes are
 * mapped), and its state byte says so.  Three loads: the bit, the arena's
 * states pointer, the byte. */
static inline bool tc_cached(uintptr_t q, unsigned k)
{
    if (q & (TC_B - 1) || !arena_bit(q))
        return false;
    return tc_state_cached(
        atomic_load_explicit(state_of(arena_at((void *)q), (void *)q),
                             memory_order_relaxed),
        k);
}

/* The decoded link out of cached object p: the next object's address,
 * or 0 at the end of the list. */
static inline uintptr_t tc_link_of(const void *p)
{
    return *(const uintptr_t *)p ^ tc_mask(p);
}

/* Does link q (not 0) out of cached object p lead to a cached object of
 * k blocks?  A link into p's own arena, the common case, skips the arena
 * bit: that arena is known to be mapped. */
static inline bool tc_link_ok(const void *p, uintptr_t q, unsigned k)
{
    struct arena *a = arena_at(p);
    if (q & (TC_B - 1) || arena_at((void *)q) != a)
        return tc_cached(q, k);
    return tc_state_cached(
        atomic_load_explicit(state_of(a, (void *)q), memory_order_relaxed),
        k);
}

/* The object after cached object p in a list of k-block objects (k 0:
 * mixed sizes), NULL at its end.  A link that does not lead to a cached
 * object was overwritten: reported as a fault of fn (the list then ends
 * at p; the objects after it are leaked). */
static inline void *tc_next(const void *p, unsigned k, const char *fn)
{
    uintptr_t q = tc_link_of(p);
    if (__builtin_expect(!q || tc_link_ok(p, q, k), 1))
        return (void *)q;
    shim_fault(fn, tc_overwritten, p);
    return NULL;
}

/* A depot list's push (its slot's lock held): the link is written before
 * the head names p. */
static inline void tc_list_push(struct tc_list *l, void *p)
{
    tc_link(p, l->head);
    __atomic_store_n(&l->head, p, __ATOMIC_RELEASE);
    l->n++;
}

/* The stack operations both hit paths share.  Stores need no lock: only
 * the owner changes its stacks.  They are ordered so that a fork that
 * snapshots this thread between any two of them leaves its stacks
 * walkable by the child's flush (tcache.c, tcache_child_fork): popping,
 * the count drops (a release store) before the object's state byte says
 * "live", so the child sees p either still stacked or leaked, never
 * stacked and live; pushing, the seal and the entry are written before
 * the count covers them. */
static inline void tc_pop_live(struct tc_bin *b, _Atomic unsigned char *st,
                               uint32_t n, unsigned k)
{
    __atomic_store_n(&b->n, n - 1, __ATOMIC_RELEASE);
    atomic_store_explicit(st, (unsigned char)k, memory_order_relaxed);
}

static inline void tc_push_at(struct tc_bin *b, void *p, uint32_t n)
{
    tc_seal(p);
    b->stack[n] = p;
    __atomic_store_n(&b->n, n + 1, __ATOMIC_RELEASE);
}

static inline void tc_push(struct tc_bin *b, void *p)
{
    tc_push_at(b, p, b->n);
}

/* Claim live cached-size object p (state byte *st == v, 1..TC_CLASSES)
 * for the cache: v -> v | TC_FREE by compare-and-swap, so that of two
 * threads freeing the same pointer at the same moment exactly one wins
 * and the other reports the double free.  The full path's free uses it;
 * the hit path stores (tc_free_hit says why). */
static inline bool tc_claim(_Atomic unsigned char *st, unsigned char v)
{
    return atomic_compare_exchange_strong_explicit(
        st, &v, (unsigned char)(v | TC_FREE), memory_order_relaxed,
        memory_order_relaxed);
}

/* A cache is a mapping of its own (shim_map): a heap for the shim's own
 * records would cost an arena of address space. */
static inline struct tcache *tc_get(void)
{
    struct tcache *tc = my_tc;
    if (__builtin_expect(tc != NULL, 1))
        return tc == TC_DEAD ? NULL : tc;
    return tc_get_slow();
}

static inline void tc_put(struct tcache *tc, void *p, unsigned k)
{
    struct tc_bin *b = &tc->bin[k - 1];
    void *cut = NULL;
    tc_busy(tc);
    tc_push(b, p);
    if (b->n > b->max)
        cut = bin_cut(b, k, b->max / 2, "free");
    tc_idle(tc);
    if (cut)
        flush_list(cut, true, "free");
}

/* ---- malloc.c's hit path ------------------------------------------------ */

/* Is stacked object p (state byte *st) whole: sealed, and still in a
 * cache?  A byte that says otherwise names an object that two threads
 * freed at the same moment (both hit paths' stores went through, so it
 * was stacked twice) and whose other copy has left its stack already.
 * The hit path tests the TC_FREE bit only (a stack holds objects of its
 * size alone); the full path, tc_whole, the size too. */
static inline bool tc_whole_at(const void *p, _Atomic unsigned char *st)
{
    return tc_sealed(p) &&
           (atomic_load_explicit(st, memory_order_relaxed) & TC_FREE);
}

static inline bool tc_whole(const void *p, unsigned k)
{
    return tc_sealed(p) &&
           atomic_load_explicit(state_of(arena_at(p), p),
                                memory_order_relaxed) == (k | TC_FREE);
}

/* A cached object for malloc(n), or NULL: not handled here (the caller
 * takes the full path, which also reports a broken seal or an object
 * stacked twice).  The stack holds only objects this thread cached, so
 * p needs no arena check. */
static inline __attribute__((always_inline)) void *tc_alloc_hit(size_t n)
{
    size_t i = (n - 1) >> TC_BSHIFT; /* n 0: huge, not handled */
    struct tcache *tc = my_hot;
    if (!tc || i >= TC_CLASSES)
        return NULL;
    struct tc_bin *b = &tc->bin[i];
    uint32_t c = b->n;
    if (!c)
        return NULL;
    void *p = b->stack[c - 1];
    _Atomic unsigned char *st = state_of(arena_at(p), p);
    if (__builtin_expect(!tc_whole_at(p, st), 0))
        return NULL;
    tc_pop_live(b, st, c, (unsigned)i + 1);
    return p;
}

/* Can p start an object of the cached path: block-aligned and in an
 * arena (so its header and state bytes are mapped)? */
static inline bool tc_in_arena(const void *p)
{
    return !((uintptr_t)p & (TC_B - 1)) && arena_bit((uintptr_t)p);
}

/* Put p, which free was given, in this thread's cache; false: not
 * handled (not a live cacheable object -- the full path diagnoses a
 * double free or a bad pointer --, a full stack, no cache).
 *
 * The state byte moves k -> k | TC_FREE by a plain store, not tc_claim's
 * compare-and-swap (a locked instruction, ~20 cycles on every free: 5 %
 * of st-churn's CPU time, 12 % of larson's).  A second free of p, from
 * any thread, however much later, still finds TC_FREE and is reported;
 * only two frees of p at the same instant on two threads can both store
 * and stack p twice.  That is caught when the second copy leaves its
 * stack (tc_whole: the byte then says "live"), unless the program
 * freed p once more in between. */
static inline __attribute__((always_inline)) bool tc_free_hit(void *p)
{
    struct tcache *tc = my_hot;
    if (!tc || !tc_in_arena(p))
        return false;
    _Atomic unsigned char *st = state_of(arena_at(p), p);
    unsigned v = atomic_load_explicit(st, memory_order_relaxed);
    if (v - 1u >= TC_CLASSES)
        return false;
    struct tc_bin *b = &tc->bin[v - 1];
    uint32_t c = b->n;
    if (c >= b->max)
        return false;
    atomic_store_explicit(st, (unsigned char)(v | TC_FREE),
                          memory_order_relaxed);
    tc_push_at(b, p, c);
    return true;
}

/* realloc's hit path: the size in blocks of p when p is a live object
 * of the cached path (state byte 1..TC_CLASSES) and the caches may be
 * used here (my_hot), else 0.  Only a hint: a realloc racing a free of
 * the same pointer is the program's double free, which the cached free
 * that follows still reports. */
static inline unsigned tc_live_blocks(const void *p)
{
    if (!my_hot || !tc_in_arena(p))
        return 0;
    unsigned v = atomic_load_explicit(state_of(arena_at(p), p),
                                      memory_order_relaxed);
    return v - 1u < TC_CLASSES ? v : 0;
}

#endif
