/*
 * trim.c - giving free pages back (CATENA_TRIM); called by arena.c.
 *
 * Each arena counts its allocated blocks (objects in the per-thread caches
 * included: catena sees them allocated) and their high-water mark since
 * its last trim.  When a free leaves the count below the mark by more than
 * CATENA_TRIM and by more than a quarter of the count (a live set that
 * merely fluctuates must not pay for madvise and page faults over and
 * over), the arena is trimmed there and then, under its slot's lock:
 * catena_free_ranges lists the interiors of its free runs of at least a
 * page, and the whole pages inside each are madvise(MADV_DONTNEED)'d,
 * together with the pages of state bytes that describe only those blocks
 * (0 or TC_GONE while free: a released TC_GONE reads 0, which only loses
 * the history that names a double free).  Then mark = count.  So a trim
 * costs at most one pass per CATENA_TRIM bytes (and per fifth of the
 * arena's use) of net shrinking; steady churn, which keeps the count near
 * its mark, does not trim.  The released pages read
 * as zero when reused, which catena does not mind (it never reads a free
 * run's interior).  Calls only geometry.c and catena.
 */
#include "arena.h"

#include <sys/mman.h>

struct trim_ctx {
    const struct arena *a;
    uint64_t bytes;
};

static void trim_range(void *ctx, void *p, size_t n)
{
    struct trim_ctx *t = ctx;
    uintptr_t pg = (uintptr_t)shim_page - 1;
    uintptr_t lo = ((uintptr_t)p + pg) & ~pg;
    uintptr_t hi = ((uintptr_t)p + n) & ~pg;
    if (hi <= lo)
        return;
    if (madvise((void *)lo, hi - lo, MADV_DONTNEED) == 0)
        t->bytes += hi - lo;
    /* the state bytes of exactly these blocks, whole pages of them */
    uintptr_t a = (uintptr_t)t->a, st = (uintptr_t)t->a->states;
    uintptr_t slo = st + ((lo - a) >> bshift);
    uintptr_t shi = st + ((hi - a) >> bshift);
    slo = (slo + pg) & ~pg;
    shi &= ~pg;
    if (shi > slo)
        madvise((void *)slo, shi - slo, MADV_DONTNEED);
}

/* Trim arena a of slot s (its lock held) if it shrank enough. */
static inline void trim_check(struct slot *s, struct arena *a)
{
    size_t drop = a->mark - a->used;
    if (__builtin_expect(drop <= trim_blocks || drop <= a->used / 2, 1))
        return;
    struct trim_ctx t = {a, 0};
    catena_free_ranges(a->h, shim_page, trim_range, &t);
    a->mark = a->used;
    s->trims++;
    s->trimmed += t.bytes;
}

/* k blocks of arena a went back to catena (slot lock held). */
void trim_note_free(struct slot *s, struct arena *a, size_t k)
{
    if (!trim_blocks)
        return;
    a->used -= k <= a->used ? k : a->used;
    trim_check(s, a);
}

