/*
 * test_guarantee.c - the guarantee, tested directly.
 *
 *   catena_alloc(h, n) succeeds whenever free blocks >= catena_blocks_for(n)
 *
 * after arbitrary random histories, and the bound is tight: on a heap whose
 * free space is all one-block holes an allocation needs exactly
 * blocks_for(n) blocks, so it succeeds with that many and fails with one
 * less.  Also the formula itself against an independent derivation, and
 * the worst-case work of alloc and free that doc/design.md states
 * (section 7), counted by the debug build's step counter.
 */
#include "catena.h"
#include "unit.h"
/* White box for the work counter (CATENA_STEP) and CATENA_FIT_PROBES. */
#include "../lib/catena_int.h"

#define BS CATENA_BLOCK_SIZE
/* Parked runs (lib/park.c): hosted, in the fast paths' build with the
 * index. */
#define PARKING CATENA_PARKING
#define ARENA (128 * 1024)
static uint64_t arena[ARENA / 8];
static void *slots[ARENA / 16];
static catena_heap_t *h;

/* The counter, not catena_stats: that walks every free run (a table scan
 * with lib/scan.c), which made this test spend its time in statistics. */
static size_t freeb(void)
{
    return catena_free_blocks(h);
}

/* Entries per spine node: a block index and a cumulative count; the root
 * has a 2-byte flag header when indexes are 16-bit. */
#define F (BS / (2 * (CATENA_INDEX_BITS / 8)))
#define R (CATENA_INDEX_BITS == 16 ? F - 1 : F)

/* blocks_for derived differently: the depth first, then each level. */
static size_t ref_blocks_for(size_t d)
{
    if (d <= 1)
        return d;
    size_t depth = 1, cap = R; /* a root of r entries over `depth` levels */
    while (cap < d) {
        cap *= F;
        depth++;
    }
    size_t nodes = 0, per = F;
    for (size_t lvl = 1; lvl < depth; lvl++, per *= F)
        nodes += (d + per - 1) / per;
    return d + 1 + nodes;
}

UNIT_TEST(t_formula)
{
    for (size_t d = 1; d < 200000 && d <= catena_max_blocks(); d++) {
        size_t n = d * BS;
        UNIT_EQ(catena_blocks_for(n), ref_blocks_for(d));
        UNIT_EQ(catena_blocks_for(n - BS + 1), ref_blocks_for(d));
    }
    UNIT_EQ(catena_blocks_for(1), 1);
    UNIT_EQ(catena_blocks_for(BS), 1);
    UNIT_EQ(catena_blocks_for(BS + 1), 3); /* 2 data + root */
}

/* Fill with 1-block objects, free every other one. */
static size_t checkerboard(void)
{
    size_t n = 0;
    void *p;
    while ((p = catena_alloc(h, 1)))
        slots[n++] = p;
    for (size_t i = 0; i < n; i += 2) {
        catena_free(h, slots[i]);
        slots[i] = NULL;
    }
    return n;
}

/* The classic failure of contiguous heaps: half the free space in one
 * object when every hole is one block.  catena must succeed. */
UNIT_TEST(t_adversary_half)
{
    UNIT_EQ(catena_init(arena, sizeof arena, &h), 0);
    checkerboard();
    size_t f = freeb();
    size_t n = f / 2 * BS;
    if (F == 2) /* 16-byte blocks with 32-bit indexes: a spine entry fills
                 * half a block, so the worst case needs ~2 blocks a block */
        while (catena_blocks_for(n) > f)
            n -= BS;
    UNIT_ASSERT(f >= catena_blocks_for(n));
    unsigned char *p = catena_alloc(h, n);
    UNIT_ASSERT(p != NULL);
    UNIT_EQ(catena_extents(h, p), n / BS);
    for (size_t i = 0; i < n; i += 7)
        catena_write_byte(h, p, i, (uint8_t)i);
    for (size_t i = 0; i < n; i += 7)
        UNIT_EQ(unit_byte(h, p, i), (uint8_t)i);
    UNIT_EQ(catena_check(h), 0);
    catena_free(h, p);

    /* The same with chaining disabled (a contiguous-only allocator over the
     * same index) fails: this is what chaining buys. */
    catena_set_chaining(h, false);
    UNIT_ASSERT(catena_alloc(h, n) == NULL);
    UNIT_ASSERT(catena_alloc(h, 2 * BS) == NULL);
    UNIT_EQ(catena_last_error(h), CATENA_ENOCHAIN);
}

/* Tightness: with all holes of one block, exactly blocks_for(n) blocks are
 * consumed; one block fewer free must fail, exactly enough must succeed. */
UNIT_TEST(t_bound_tight)
{
    for (size_t d = 2; d < 600; d += 1 + d / 8) {
        UNIT_EQ(catena_init(arena, sizeof arena, &h), 0);
        size_t total = checkerboard();
        size_t need = catena_blocks_for(d * BS);
        UNIT_ASSERT(freeb() > need + 2);
        /* pin holes until exactly need - 1 are free */
        size_t i = 0;
        while (freeb() > need - 1) {
            while (slots[i])
                i++;
            slots[i] = catena_alloc(h, 1);
            UNIT_ASSERT(slots[i] != NULL);
        }
        UNIT_ASSERT(catena_alloc(h, d * BS) == NULL);
        UNIT_EQ(catena_last_error(h), CATENA_ENOMEM);
        /* free one pinned hole: now exactly `need` blocks are free */
        for (i = 0; i < total; i += 2)
            if (slots[i])
                break;
        catena_free(h, slots[i]);
        UNIT_EQ(freeb(), need);
        void *p = catena_alloc(h, d * BS);
        UNIT_ASSERT(p != NULL);
        UNIT_EQ(freeb(), 0); /* consumed exactly blocks_for(n) */
        UNIT_EQ(catena_extents(h, p), d);
        UNIT_EQ(catena_check(h), 0);
    }
}

/* After random histories of mixed sizes the guarantee holds for every
 * probe; probes that fail must be below the bound. */
UNIT_TEST(t_random_histories)
{
    unsigned long rounds = UNIT_ITERS(300), succ_tight = 0;
    for (unsigned long r = 0; r < rounds; r++) {
        unit_seed(r * 7919 + 1);
        UNIT_EQ(catena_init(arena, sizeof arena, &h), 0);
        size_t nslots = 64 + unit_below(sizeof slots / sizeof slots[0] - 64);
        memset(slots, 0, sizeof slots);
        size_t steps = 200 + unit_below(4000);
        for (size_t s = 0; s < steps; s++) {
            size_t i = unit_below(nslots);
            if (slots[i]) {
                if (unit_below(4) == 0) {
                    void *q = catena_realloc(h, slots[i],
                                             1 + unit_below(40 * BS));
                    if (q)
                        slots[i] = q;
                } else {
                    catena_free(h, slots[i]);
                    slots[i] = NULL;
                }
            } else {
                size_t n = unit_below(3) ? 1 + unit_below(2 * BS)
                                         : 1 + unit_below(64 * BS);
                slots[i] = catena_alloc(h, n);
            }
        }
        UNIT_EQ(catena_check(h), 0);
        /* probes: sizes around what is free */
        for (int k = 0; k < 20; k++) {
            size_t f = freeb();
            size_t n = 1 + unit_below((f + 8) * BS);
            void *p = catena_alloc(h, n);
            if (f >= catena_blocks_for(n)) {
                UNIT_ASSERT(p != NULL);
                succ_tight += f - catena_blocks_for(n) < 8;
            }
            if (!p)
                UNIT_ASSERT(f < catena_blocks_for(n));
            if (p && unit_below(2))
                catena_free(h, p);
        }
        UNIT_EQ(catena_check(h), 0);
    }
    UNIT_ASSERT(succ_tight > 0); /* probes came close to the bound */
}

/* Free runs of every length 1..16, each between two objects, so that none
 * can merge (the runs a free-time cache would hold): then exactly
 * blocks_for(n) free blocks must satisfy n. */
UNIT_TEST(t_isolated_runs_tight)
{
    for (size_t d = 2; d < 300; d += 1 + d / 6) {
        UNIT_EQ(catena_init(arena, sizeof arena, &h), 0);
        size_t n = 0, len = 1;
        void *p;
        /* alternate: a run of `len` blocks (to free), a 1-block guard */
        while ((p = catena_alloc(h, len * BS))) {
            slots[n++] = p;
            if (!(p = catena_alloc(h, 1)))
                break;
            slots[n++] = p;
            len = len % 16 + 1;
        }
        while ((p = catena_alloc(h, 1))) /* the remainder: all used */
            slots[n++] = p;
        UNIT_EQ(freeb(), 0);
        size_t need = catena_blocks_for(d * BS);
        /* free the long runs, in an order that is not address order,
         * until at least need blocks are free and none is adjacent to
         * another free run */
        size_t i = 0;
        for (size_t pass = 0; pass < 2 && freeb() < need; pass++)
            for (i = 2 * pass; i + 1 < n && freeb() < need; i += 4) {
                catena_free(h, slots[i]);
                slots[i] = NULL;
            }
        UNIT_ASSERT(freeb() >= need);
        /* pin free blocks until exactly need are free */
        while (freeb() > need)
            UNIT_ASSERT(catena_alloc(h, 1) != NULL);
        UNIT_EQ(catena_check(h), 0);
        UNIT_EQ(freeb(), need);
        p = catena_alloc(h, d * BS);
        UNIT_ASSERT(p != NULL);
        UNIT_ASSERT(catena_size(h, p) >= d * BS);
        UNIT_EQ(catena_check(h), 0);
    }
}

/* The worst cases of section 7 of doc/design.md, counted in steps: a free
 * of a contiguous object of d blocks reads at most d / 16 + 2 table words
 * plus at most 15 blocks of the heap's last, partial word; a contiguous
 * fit examines at most CATENA_FIT_PROBES runs.  Debug builds only (the
 * counter is folded away otherwise). */
static size_t free_steps(void *p)
{
    h->steps = 0;
    UNIT_EQ(catena_free(h, p), 0);
    return h->steps;
}

UNIT_TEST(t_bounded_work)
{
    if (!catena_debug)
        return;
    for (size_t d = 1; d <= 300; d += 1 + d / 16) {
        for (size_t off = 0; off < 17; off++) {
            UNIT_EQ(catena_init(arena, sizeof arena, &h), 0);
            void *pad = off ? catena_alloc(h, off * BS) : NULL;
            void *p = catena_alloc(h, d * BS), *guard = catena_alloc(h, 1);
            UNIT_ASSERT(p && guard);
            size_t st = free_steps(p), words = d / 16 + 2;
            /* a heap that parks first reads the word after p's start to
             * see whether p is short enough (lib/park.c) */
            if (PARKING)
                words++;
            /* lib/scan.c also steps back over the left neighbour's run
             * (pad: off blocks): a block at a time to a word's end, then
             * eight blocks a word, then a block at a time */
            if (CATENA_SCAN)
                words += off / 8 + 16;
            UNIT_ASSERT(st >= 1 && st <= words); /* not at the heap's end */
            (void)pad;
        }
        /* the last object of the heap: the partial last word too */
        UNIT_EQ(catena_init(arena, sizeof arena, &h), 0);
        size_t total = freeb();
        if (d >= total)
            break;
        void *fill = catena_alloc(h, (total - d) * BS);
        void *p = catena_alloc(h, d * BS);
        UNIT_ASSERT(fill && p);
        UNIT_EQ(freeb(), 0);
        UNIT_ASSERT(free_steps(p) <= d / 16 + 2 + 15 +
                                      (CATENA_SCAN ? (total - d) / 8 + 16 : 0));
    }
    /* The fit's worst case: 16- and 17-block requests share a class; with
     * only 16-block runs free, a 17-block request probes exactly
     * CATENA_FIT_PROBES of them, then fails (chaining off). */
    UNIT_EQ(catena_init(arena, sizeof arena, &h), 0);
    catena_set_chaining(h, false);
    size_t n = 0;
    void *p;
    while ((p = catena_alloc(h, 16 * BS))) {
        slots[n++] = p;
        if ((p = catena_alloc(h, 1)))
            slots[n++] = p;
    }
    while ((p = catena_alloc(h, 1)))
        slots[n++] = p;
    UNIT_ASSERT(n > 2 * (CATENA_FIT_PROBES + 2));
    for (size_t i = 0; i < 2 * (CATENA_FIT_PROBES + 2); i += 2)
        catena_free(h, slots[i]);
    UNIT_EQ(catena_check(h), 0);
    h->steps = 0;
    UNIT_ASSERT(catena_alloc(h, 17 * BS) == NULL);
    UNIT_EQ(catena_last_error(h), CATENA_ENOCHAIN);
    /* new_object's retry after a collection does not run: no collector.
     * lib/scan.c has no classes: it reads the table instead, at most one
     * step per eight blocks and one per block of a word with a free run
     * start in it, plus the run lengths (words of 16 blocks each); twice
     * (catena_alloc's attempt, then new_object's). */
    size_t nb = catena_arena_blocks((uintptr_t)h, sizeof arena);
    size_t scan = nb / 8 + 8 * (CATENA_FIT_PROBES + 2) + nb / 16 + 32;
    if (CATENA_SCAN)
        UNIT_ASSERT(h->steps >= nb / 16 && h->steps <= 2 * scan);
    else
        UNIT_EQ(h->steps, CATENA_FIT_PROBES);
    h->steps = 0;
    UNIT_ASSERT(catena_alloc(h, 16 * BS) != NULL); /* an exact class */
    if (!CATENA_SCAN)
        UNIT_EQ(h->steps, 0);
}

/* ---- parked runs (lib/park.c) ------------------------------------------
 * Freed objects of up to CATENA_PARK_MAX blocks wait outside the index;
 * they are free blocks, so the guarantee must hold with memory parked. */

/* Fill with [k-block object, 1-block guard] for k = 2..CATENA_PARK_MAX,
 * then free the k-block objects in a scattered order: the first park_cap
 * blocks are parked, the rest go to the index as isolated runs. */
static size_t park_many(void)
{
    size_t n = 0, k = 2;
    void *p;
    while ((p = catena_alloc(h, k * BS))) {
        slots[n++] = p;
        if (!(p = catena_alloc(h, 1)))
            break;
        slots[n++] = p;
        k = k % CATENA_PARK_MAX + 2 > CATENA_PARK_MAX ? 2 : k + 1;
    }
    while ((p = catena_alloc(h, 1)))
        slots[n++] = p;
    for (size_t pass = 0; pass < 3; pass++)
        for (size_t i = 2 * pass; i < n; i += 6)
            if (slots[i] && catena_size(h, slots[i]) > BS) {
                UNIT_EQ(catena_free(h, slots[i]), 0);
                slots[i] = NULL;
            }
    return n;
}

/* Exactly blocks_for(n) free blocks, some of them parked: n succeeds. */
UNIT_TEST(t_parked_guarantee_tight)
{
    size_t deferred = 0;
    for (size_t d = 2; d < 4000; d += 1 + d / 6) {
        UNIT_EQ(catena_init(arena, sizeof arena, &h), 0);
        park_many();
        if (PARKING) /* full: the next run would not fit under the cap */
            UNIT_ASSERT(parked_blocks(h) + CATENA_PARK_MAX > h->park_cap);
        size_t need = catena_blocks_for(d * BS);
        if (freeb() < need)
            break;
        /* pin free blocks, from the index while it has any */
        while (freeb() > need)
            UNIT_ASSERT(catena_alloc(h, 1) != NULL);
        UNIT_EQ(catena_check(h), 0);
        deferred += PARKING && parked_blocks(h) > 0;
        void *p = catena_alloc(h, d * BS);
        UNIT_ASSERT(p != NULL);
        UNIT_ASSERT(catena_size(h, p) >= d * BS);
        if (PARKING)
            UNIT_EQ(parked_blocks(h), 0); /* it needed them all */
        UNIT_EQ(catena_check(h), 0);
    }
    if (PARKING)
        UNIT_ASSERT(deferred >= 5);
}

/* Random histories of mostly parkable objects, not flushed between
 * steps; then probes near the free count.  Every probe the guarantee
 * covers succeeds, whatever is parked when it comes. */
UNIT_TEST(t_parked_random_guarantee)
{
    unsigned long rounds = UNIT_ITERS(200), with_parked = 0;
    for (unsigned long r = 0; r < rounds; r++) {
        unit_seed(r * 104729 + 3);
        UNIT_EQ(catena_init(arena, sizeof arena, &h), 0);
        size_t nslots = 256 + unit_below(2048);
        memset(slots, 0, nslots * sizeof slots[0]);
        size_t steps = 1000 + unit_below(6000);
        for (size_t s = 0; s < steps; s++) {
            size_t i = unit_below(nslots);
            if (slots[i]) {
                catena_free(h, slots[i]);
                slots[i] = NULL;
            } else {
                size_t n = unit_below(8) ? 1 + unit_below(CATENA_PARK_MAX * BS)
                                         : 1 + unit_below(40 * BS);
                slots[i] = catena_alloc(h, n);
            }
        }
        UNIT_EQ(catena_check(h), 0);
        for (int k = 0; k < 10; k++) {
            size_t f = freeb();
            with_parked += PARKING && parked_blocks(h) > 0;
            size_t n = 1 + unit_below((f + 8) * BS);
            void *p = catena_alloc(h, n);
            if (f >= catena_blocks_for(n))
                UNIT_ASSERT(p != NULL);
            if (!p)
                UNIT_ASSERT(f < catena_blocks_for(n));
            if (p && unit_below(2))
                catena_free(h, p);
            UNIT_EQ(catena_check(h), 0);
        }
    }
    if (PARKING)
        UNIT_ASSERT(with_parked > rounds);
}

/* What flushes: turning chaining off, the GC lock, the collector's
 * zeroing, a collection; the statistics see no difference (they describe
 * the free space as a flush leaves it), nor the free count. */
UNIT_TEST(t_parked_flushes)
{
    if (!PARKING)
        return;
    for (int way = 0; way < 4; way++) {
        UNIT_EQ(catena_init(arena, sizeof arena, &h), 0);
        size_t n = park_many();
        UNIT_ASSERT(parked_blocks(h) > 0);
        struct catena_stats a, b;
        catena_stats(h, &a);
        if (way == 0) {
            catena_set_chaining(h, false);
        } else if (way == 1) {
            catena_gc_lock(h);
            UNIT_EQ(catena_check(h), 0);
            UNIT_EQ(catena_gc_unlock(h), 0);
        } else if (way == 2) {
            UNIT_EQ(catena_gc_set_options(h, CATENA_GC_ZERO), 0);
        } else {
            UNIT_EQ(catena_collect_start(h), 0);
            catena_collect_root(h, slots, n); /* keep everything */
            UNIT_EQ(catena_collect_end(h), 0);
        }
        UNIT_EQ(parked_blocks(h), 0);
        UNIT_EQ(catena_check(h), 0);
        catena_stats(h, &b);
        UNIT_EQ(b.free_blocks, a.free_blocks);
        UNIT_EQ(b.free_runs, a.free_runs);
        UNIT_EQ(b.largest_free_run, a.largest_free_run);
        UNIT_EQ(b.frag_permille, a.frag_permille);
        /* and no parking while the policy is off */
        void *p = catena_alloc(h, 2 * BS);
        UNIT_ASSERT(p != NULL);
        UNIT_EQ(catena_free(h, p), 0);
        UNIT_EQ(parked_blocks(h), way < 3 && way != 1 ? 0 : 2);
        UNIT_EQ(catena_check(h), 0);
    }
}

/* A collection after parking: parked runs are free memory, not garbage
 * (nothing is swept twice or leaked); after freeing everything the heap
 * has every block free again. */
UNIT_TEST(t_parked_collect)
{
    if (!PARKING)
        return;
    UNIT_EQ(catena_init(arena, sizeof arena, &h), 0);
    size_t total = freeb();
    UNIT_EQ(catena_gc_set_options(h, 0), 0);
    size_t n = park_many();
    size_t live = 0;
    for (size_t i = 0; i < n; i++)
        live += slots[i] != NULL;
    UNIT_ASSERT(parked_blocks(h) > 0);
    size_t f0 = freeb();
    /* every live object a root: the collection frees nothing */
    UNIT_EQ(catena_collect_start(h), 0);
    catena_collect_root(h, slots, n);
    UNIT_EQ(catena_collect_end(h), 0);
    UNIT_EQ(freeb(), f0);
    UNIT_EQ(catena_check(h), 0);
    struct catena_stats s;
    catena_stats(h, &s);
    UNIT_EQ(s.objects, live);
    /* park again (the guards), then a collection with no roots sweeps
     * every object */
    for (size_t i = 1; i < n; i += 2)
        if (slots[i]) {
            catena_free(h, slots[i]);
            slots[i] = NULL;
        }
    UNIT_ASSERT(parked_blocks(h) > 0);
    UNIT_EQ(catena_collect_start(h), 0);
    UNIT_EQ(catena_collect_end(h), 0);
    UNIT_EQ(catena_check(h), 0);
    UNIT_EQ(freeb(), total);
    catena_stats(h, &s);
    UNIT_EQ(s.objects, 0);
    UNIT_EQ(s.free_runs, 1);
}

/* A program writing into a parked run (a use after free) overwrites its
 * link: the allocation that would pop it, or the flush that would
 * release it, reports CATENA_ECORRUPT instead of following it. */
UNIT_TEST(t_parked_corrupt)
{
    if (!PARKING)
        return;
    for (int way = 0; way < 2; way++) {
        UNIT_EQ(catena_init(arena, sizeof arena, &h), 0);
        char *a = catena_alloc(h, 2 * BS), *b = catena_alloc(h, 2 * BS);
        char *c = catena_alloc(h, 2 * BS);
        UNIT_ASSERT(a && b && c);
        UNIT_EQ(catena_free(h, b), 0);
        memset(a + 2 * BS, 0x41, 8); /* 8 bytes past a: b's link */
        UNIT_EQ(catena_check(h), CATENA_ECORRUPT);
        if (way == 0) {
            UNIT_ASSERT(catena_alloc(h, 2 * BS) == NULL);
        } else {
            catena_set_chaining(h, false); /* flushes */
            UNIT_ASSERT(catena_alloc(h, BS) == NULL);
        }
        UNIT_EQ(catena_last_error(h), CATENA_ECORRUPT);
        UNIT_EQ(catena_free(h, c), CATENA_ECORRUPT);
        struct catena_stats s; /* the statistics do not follow the link */
        catena_stats(h, &s);
        UNIT_ASSERT(s.free_blocks > 0);
    }
}

/* The worst case of a flush (doc/design.md, "Worst cases"): one table
 * word per parked run (its length), so an allocation that flushes does
 * at most park_cap more steps than one that does not. */
UNIT_TEST(t_parked_flush_work)
{
    if (!PARKING || !catena_debug)
        return;
    UNIT_EQ(catena_init(arena, sizeof arena, &h), 0);
    size_t n = checkerboard(); /* 1-block holes; the first ones parked */
    (void)n;
    UNIT_EQ(parked_blocks(h), h->park_cap);
    size_t runs = parked_blocks(h);
    h->steps = 0;
    void *p = catena_alloc(h, 2 * BS); /* no run of 2: flush, then chain */
    UNIT_ASSERT(p != NULL);
    UNIT_EQ(parked_blocks(h), 0);
    size_t bound = runs * (CATENA_PARK_MAX / 16 + 2) + 4 * CATENA_FIT_PROBES;
    UNIT_ASSERT(h->steps >= runs && h->steps <= bound);
    /* a free that parks reads one table word */
    void *q = catena_alloc(h, 1);
    UNIT_ASSERT(q != NULL);
    h->steps = 0;
    UNIT_EQ(catena_free(h, q), 0);
    UNIT_ASSERT(h->steps <= 2);
}

static const unit_case cases[] = {
    UNIT_CASE(t_parked_guarantee_tight), UNIT_CASE(t_parked_random_guarantee),
    UNIT_CASE(t_parked_flushes), UNIT_CASE(t_parked_collect),
    UNIT_CASE(t_parked_corrupt), UNIT_CASE(t_parked_flush_work),
    UNIT_CASE(t_formula), UNIT_CASE(t_adversary_half),
    UNIT_CASE(t_bound_tight), UNIT_CASE(t_random_histories),
    UNIT_CASE(t_isolated_runs_tight), UNIT_CASE(t_bounded_work)};
UNIT_MAIN("guarantee", cases)
