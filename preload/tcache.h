/*
 * tcache.h - private to tcache.c and small.c: the per-thread caches'
 * records and their hit path (the list operations and the checked links),
 * inline so that a cached malloc or free makes no call.
 */
#ifndef CATENA_TCACHE_H
#define CATENA_TCACHE_H

#include "arena.h"

#define TC_REFILL 8             /* objects fetched per lock on a miss */
#define TC_BIN_BYTES (32 * 1024) /* bound of one list, in bytes... */
#define TC_BIN_MIN 16           /* ...but at least this many objects */
#define TC_BIN_MAX 256          /* ...and at most this many */

struct tc_bin {
    void *head;
    uint32_t n, max;
};
struct tcache {
    struct tc_bin bin[TC_CLASSES];
    atomic_uint busy;           /* odd: the owner is changing the lists;
                                 * +1 at each change and after it, so a
                                 * validator sees that it raced one */
    uint32_t slot;              /* where this thread allocates */
    struct tcache *next, *prev; /* the registry */
};
#define TC_DEAD ((struct tcache *)1) /* exited, registering, or no cache */
SHIM_HIDDEN extern __thread struct tcache *my_tc
    __attribute__((tls_model("initial-exec")));
SHIM_HIDDEN extern const char tc_overwritten[];

/* ---- tcache.c: the slow paths ------------------------------------------ */
SHIM_HIDDEN struct tcache *tc_get_slow(void);
SHIM_HIDDEN void *tc_refill(struct tcache *tc, unsigned k, unsigned flags);
SHIM_HIDDEN void flush_list(void *list, const char *fn);
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

/* ---- masked links ---------------------------------------------------- */

static inline uintptr_t tc_mask(const void *at)
{
    return tc_secret ^ ((uintptr_t)at >> TC_BSHIFT);
}

/* Store in cached object p the link to next (NULL: the end). */
static inline void tc_link(void *p, const void *next)
{
    *(uintptr_t *)p = (uintptr_t)next ^ tc_mask(p);
}

/* Is q the start of a cached object (of k blocks; k 0: of any size)?
 * Block-aligned, in an arena (its bit: so its header and state bytes are
 * mapped), and its state byte says so.  Three loads: the bit, the arena's
 * states pointer, the byte. */
static inline bool tc_cached(uintptr_t q, unsigned k)
{
    if (q & (TC_B - 1) || !arena_bit(q))
        return false;
    const struct arena *a = arena_at((const void *)q);
    unsigned v = atomic_load_explicit(
        (_Atomic unsigned char *)a->states + ((q - (uintptr_t)a) >> TC_BSHIFT),
        memory_order_relaxed);
    /* k 0: only the TC_FREE bit must match */
    return (v & (k ? 0xffu : TC_FREE)) == (k | TC_FREE);
}


/* The object after cached object p in a list of k-block objects (k 0:
 * mixed sizes), NULL at its end.  A link that does not lead to a cached
 * object was overwritten: reported as a fault of fn (the list then ends
 * at p; the objects after it are leaked). */
static inline void *tc_next(const void *p, unsigned k, const char *fn)
{
    uintptr_t q = *(const uintptr_t *)p ^ tc_mask(p);
    if (__builtin_expect(!q || tc_cached(q, k), 1))
        return (void *)q;
    shim_fault(fn, tc_overwritten, p);
    return NULL;
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
    tc_link(p, b->head);
    b->head = p;
    if (++b->n > b->max)
        cut = bin_cut(b, k, b->max / 2, "free");
    tc_idle(tc);
    if (cut)
        flush_list(cut, "free");
}

#endif
