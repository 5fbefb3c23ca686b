/*
 * trim.c - giving free pages back (CATENA_TRIM); called by arena.c.
 *
 * Each arena counts its allocated blocks (objects in the per-thread caches
 * included: catena sees them allocated) and their high-water mark since
 * its last trim.  When a free leaves the count below the mark by more than
 * the arena's slack and by more than half the count, the arena is trimmed
 * there and then, under its slot's lock: catena_free_ranges lists the
 * interiors of its free runs of at least a page, and the whole pages
 * inside each are madvise(MADV_DONTNEED)'d, together with the pages of
 * state bytes that describe only those blocks (0 or TC_GONE while free: a
 * released TC_GONE reads 0, which only loses the history that names a
 * double free).  Then mark = count.  The released pages read as zero when
 * reused, which catena does not mind (it never reads a free run's
 * interior).
 *
 * Hysteresis that learns (a live set that rises and falls by more than
 * CATENA_TRIM over and over -- a producer/consumer queue -- must not pay
 * for madvise and page faults on every cycle): the slack starts at
 * CATENA_TRIM.  A trim that the arena's use then grows back over (by half
 * of what it released) before the arena has allocated TRIM_DECAY arenas'
 * worth of blocks was premature: the slack doubles, up to a quarter of
 * the arena, so after a few cycles the swing fits in it and trims stop.
 * The slack decays (halves, down to CATENA_TRIM) each time the arena has
 * allocated that much since its last trim or change, so a program whose
 * swings have ended gets its prompt trims back.  The
 * clock is allocation volume, not time: no clock reads, and an idle
 * program keeps its state.  A one-way shrink (free everything) trims as
 * before: geometrically, one pass per third of the use.
 * Calls only geometry.c and catena.
 */
#include "arena.h"

#include <sys/mman.h>

#define TRIM_DECAY 8 /* arenas' worth of blocks allocated per halving */

/* Start arena a's trim window: TRIM_DECAY arenas' worth of allocation. */
static inline void trim_window(struct arena *a)
{
    a->decay_at = a->churn + TRIM_DECAY * (uint64_t)mapsz;
}

/* New arena a starts with the configured slack and no trim to judge. */
void trim_start(struct arena *a)
{
    a->slack = (uint32_t)trim_blocks;
    a->regrow = UINT32_MAX;
    trim_window(a);
}

struct trim_ctx {
    const struct arena *a;
    uint64_t bytes, calls;
};

static void trim_range(void *ctx, void *p, size_t n)
{
    struct trim_ctx *t = ctx;
    uintptr_t pg = (uintptr_t)shim_page - 1;
    uintptr_t lo = ((uintptr_t)p + pg) & ~pg;
    uintptr_t hi = ((uintptr_t)p + n) & ~pg;
    if (hi <= lo)
        return;
    t->calls++;
    if (madvise((void *)lo, hi - lo, MADV_DONTNEED) == 0)
        t->bytes += hi - lo;
    /* the state bytes of exactly these blocks, whole pages of them */
    uintptr_t a = (uintptr_t)t->a, st = (uintptr_t)arena_states(t->a);
    uintptr_t slo = st + ((lo - a) >> bshift);
    uintptr_t shi = st + ((hi - a) >> bshift);
    slo = (slo + pg) & ~pg;
    shi &= ~pg;
    if (shi > slo) {
        t->calls++;
        madvise((void *)slo, shi - slo, MADV_DONTNEED);
    }
}

/* Trim arena a of slot s (its lock held) if it shrank enough. */
static inline void trim_check(struct slot *s, struct arena *a)
{
    uint32_t drop = a->mark - a->used;
    if (__builtin_expect(drop <= a->slack || drop <= a->used / 2, 1))
        return;
    struct trim_ctx t = {a, 0, 0};
    catena_free_ranges(a->h, shim_page, trim_range, &t);
    /* premature if the use climbs back over half of the drop before the
     * arena allocates TRIM_DECAY arenas' worth */
    a->regrow = a->used + drop / 2;
    trim_window(a);
    a->mark = a->used;
    s->trims++;
    s->trimmed += t.bytes;
    s->madvises += t.calls;
}

/* k blocks of arena a were allocated (slot lock held). */
void trim_note_alloc(struct arena *a, size_t k)
{
    if (!trim_blocks)
        return;
    a->used += (uint32_t)k;
    if (a->used > a->mark)
        a->mark = a->used;
    a->churn += k;
    if (__builtin_expect(a->used > a->regrow, 0)) {
        /* the last trim released what is in use again: back off */
        uint32_t cap = (uint32_t)(mapsz / 4 > trim_blocks ? mapsz / 4
                                                          : trim_blocks);
        a->slack = a->slack < cap / 2 ? a->slack * 2 : cap;
        a->regrow = UINT32_MAX;
        trim_window(a);
    } else if (__builtin_expect(a->churn >= a->decay_at, 0)) {
        /* quiet for a while: the last trim (if any) was right */
        a->slack = a->slack / 2 > trim_blocks ? a->slack / 2
                                              : (uint32_t)trim_blocks;
        a->regrow = UINT32_MAX;
        trim_window(a);
    }
}

/* k blocks of arena a went back to catena (slot lock held). */
void trim_note_free(struct slot *s, struct arena *a, size_t k)
{
    if (!trim_blocks)
        return;
    a->used -= k <= a->used ? (uint32_t)k : a->used;
    trim_check(s, a);
}
