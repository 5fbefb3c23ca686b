/*
 * small.c - objects below the large threshold: the front malloc.c calls.
 * A malloc or free of at most TC_CLASSES blocks goes to the calling
 * thread's cache (tcache.c), anything else to the arenas (arena.c).
 */
#include "tcache.h"

#include <string.h>

static struct slot *my_slot(void)
{
    struct tcache *tc = my_tc;
    if (tc && tc != TC_DEAD)
        return &slots[tc->slot];
    return &slots[shim_tid() % NSLOTS];
}

static void *small_alloc_raw(size_t n, unsigned flags)
{
    struct slot *s = my_slot();
    shim_lock(&s->lock);
    void *p = alloc_in(s, n ? n : 1, flags);
    shim_unlock(&s->lock);
    return p;
}

void *small_alloc(size_t n, unsigned flags)
{
    if (n == 0)
        n = 1;
    unsigned k = (unsigned)((n + bsize - 1) >> bshift);
    struct tcache *tc;
    if (k > TC_CLASSES || !tc_on || !(tc = tc_get()))
        return small_alloc_raw(n, flags);
    struct tc_bin *b = &tc->bin[k - 1];
    void *p;
    while (b->n) {
        uint32_t c = b->n;
        p = b->stack[c - 1];
        bool ok = tc_whole(p, k);
        tc_busy(tc);
        if (ok)
            tc_pop_live(b, state_of(arena_at(p), p), c, k);
        else /* left out (leaked) */
            __atomic_store_n(&b->n, c - 1, __ATOMIC_RELEASE);
        tc_idle(tc);
        if (ok) {
            if (flags & CATENA_ZERO)
                memset(p, 0, n);
            return p;
        }
        shim_fault("malloc",
                   tc_sealed(p) ? tc_twice : tc_overwritten, p);
    }
    p = tc_refill(tc, k, flags);
    if (!p) { /* out of memory: give back what this thread holds, retry */
        tc_flush_all(tc, "malloc");
        tc_depots_flush();
        p = small_alloc_raw(n, flags);
    }
    return p;
}

void *small_memalign(size_t align, size_t n)
{
    /* Size 0 is 1: the aligned address may be p + align, which must lie
     * inside the object, not at the start of the next one. */
    if (n == 0)
        n = 1;
    if (align <= bsize)
        return small_alloc_raw(n, 0);
    unsigned char *p = small_alloc_raw(n + align, 0);
    if (!p)
        return NULL;
    /* The first aligned address above p: p < q <= p + align. */
    uintptr_t q = ((uintptr_t)p + align) & ~(uintptr_t)(align - 1);
    uintptr_t *tag = (uintptr_t *)q;
    tag[-2] = ALIAS_TAG ^ q;
    tag[-1] = (uintptr_t)p;
    return (void *)q;
}

void small_free(void *p, const char *fn)
{
    struct arena *a = arena_owned(p);
    if (!a) {
        shim_fault(fn, fault_name(CATENA_EFOREIGN), p);
        return;
    }
    if (tc_on && block_aligned(p)) {
        _Atomic unsigned char *st = state_of(a, p);
        unsigned char v = atomic_load_explicit(st, memory_order_relaxed);
        if (v & TC_FREE) {
            shim_fault(fn, fault_name(CATENA_EFREE), p);
            return;
        }
        struct tcache *tc;
        if ((unsigned)v - 1u < TC_CLASSES && (tc = tc_get())) {
            if (!tc_claim(st, v)) {
                shim_fault(fn, fault_name(CATENA_EFREE), p); /* a race */
                return;
            }
            tc_put(tc, p, v);
            return;
        }
    }
    free_in(a, p, fn);
}

/* ---- validation ------------------------------------------------------- */


/* catena_check's hook: keep its description of what is wrong. */
static void check_hook(void *ctx, catena_heap_t *h, int err, const void *p,
                       const char *where)
{
    (void)h, (void)err, (void)p;
    *(const char **)ctx = where;
}

/* Is bin b of k-block objects well linked?  Reads another thread's lists
 * while it may change them: *raced tells the caller to ignore the answer
 * (only "busy" moved).  *at: the object whose link is wrong. */
void small_check(const char *fn, const char *when)
{
    if (tc_on)
        tc_check(fn, when);
    for (size_t i = 0; i < NSLOTS; i++) {
        shim_lock(&slots[i].lock);
        for (struct arena *a = slots[i].first; a; a = a->next) {
            const char *what = "heap metadata inconsistent";
            catena_set_hook(a->h, check_hook, &what);
            int e = catena_check(a->h);
            catena_set_hook(a->h, NULL, NULL);
            if (e) {
                shim_unlock(&slots[i].lock);
                shim_corrupt(fn, when, what, a);
            }
        }
        shim_unlock(&slots[i].lock);
    }
}

