/*
 * test_model.c - the randomized model test: every public call that reads
 * or changes a heap, against the reference model of t/model.h, with
 * catena_check after every step.
 *
 * A run is a sequence of phases.  A fill phase aims at a target fraction
 * of the heap (rising from 20 % to 100 %, then at random), a drain phase at 5 .. 20 %: below its
 * target a phase mostly allocates, above it mostly frees, so the heap
 * lives at many fill levels and the peak counter is exercised (it must
 * stay at the highest use, also across moves).  Requests are bounded so
 * that a phase does not overshoot its target by much.  One phase in five
 * runs with chaining off.  Collections (explicit roots, or registered roots)
 * are part of the mix, and one step in 16 is a batch (catena_alloc_many,
 * catena_free_many in address order, in reverse or unordered).  A failure
 * prints "seed S step N (op)".
 *
 * Default: 4 seeds x 100k steps per build (the Makefile builds this file
 * for several block sizes and index widths).  UNIT_SCALE=N runs N times
 * longer (make check-long: >= 10^7 steps); UNIT_SCALE_PCT=P runs P per
 * cent (valgrind).
 */
#include "unit.h"
#include "model.h"

#ifndef MODEL_ARENA
#define MODEL_ARENA (64 * 1024)
#endif
#define SLOTS 256
#define STEPS 100000

static uint64_t arena[MODEL_ARENA / 8];

static uint64_t rnd(void *ctx)
{
    (void)ctx;
    return unit_rand();
}

static void die(const char *what) { UNIT_ASSERT(what == NULL); }

/* Operation weights (per cent) below the phase's target and above it. */
static const unsigned char w_fill[M_NOPS] = {42, 6, 14, 4, 2, 7, 14, 5, 1, 5};
static const unsigned char w_drain[M_NOPS] = {6, 42, 14, 4, 2, 7, 14, 5, 1, 5};

static int pick(const unsigned char *w)
{
    unsigned r = (unsigned)unit_below(100);
    int op = 0;
    while (r >= w[op])
        r -= w[op++];
    return op;
}

/* ---- batches: catena_alloc_many and catena_free_many against the model */

#define BATCH_MAX 8

/* Up to BATCH_MAX empty slots into o[]; how many. */
static size_t batch_slots(struct model *m, struct mobj **o, size_t want,
                          bool live)
{
    size_t n = 0, s = m_below(m, m->nslots);
    for (size_t i = 0; i < m->nslots && n < want; i++) {
        struct mobj *x = &m->o[(s + i) % m->nslots];
        if ((x->p != NULL) == live)
            o[n++] = x;
    }
    return n;
}

/* catena_alloc_many of up to BATCH_MAX objects of one size: each made
 * object is a plain object of the size (contiguous without chaining); a
 * refused batch changes nothing and fails as catena_alloc would for one
 * object (the guarantee included). */
static void batch_alloc(struct model *m)
{
    struct mobj *o[BATCH_MAX];
    void *out[BATCH_MAX];
    size_t c = batch_slots(m, o, 1 + m_below(m, BATCH_MAX), false);
    if (!c)
        return;
    /* the batch as a whole within the size picker's bound (the phase's
     * target) */
    size_t max = m->maxsize;
    m->maxsize = max / c > MODEL_BS ? max / c : MODEL_BS;
    size_t n = model_size(m), d = m_blocks(n);
    m->maxsize = max;
    struct catena_stats s0 = model_stats(m);
    size_t got = catena_alloc_many(m->h, n, out, c);
    M_CHECK(m, got <= c);
    if (!got) {
        model_failed(m, model_refused(m, &s0, n, d));
        return;
    }
    for (size_t j = 0; j < got; j++) {
        o[j]->p = out[j];
        o[j]->flags = 0;
        model_shadow(m, o[j], d * MODEL_BS);
        M_EQ(m, catena_size(m->h, out[j]), o[j]->size);
        M_EQ(m, catena_flags(m->h, out[j]), 0);
        if (!m->chaining)
            M_CHECK(m, catena_is_contiguous(m->h, out[j]));
        model_fill(m, o[j], 0, o[j]->size);
    }
    m->allocs += got;
}

static int by_addr(const void *a, const void *b)
{
    uintptr_t x = (uintptr_t)*(void *const *)a, y = (uintptr_t)*(void *const *)b;
    return (x > y) - (x < y);
}

/* catena_free_many of up to BATCH_MAX live objects, in address order, in
 * reverse or as found (so adjacent ones merge, or not), sometimes with a
 * NULL and a handle given twice (reported once, CATENA_EFREE, the rest
 * freed). */
static void batch_free(struct model *m)
{
    struct mobj *o[BATCH_MAX];
    void *b[BATCH_MAX + 2];
    size_t c = batch_slots(m, o, 1 + m_below(m, BATCH_MAX), true), n = 0;
    for (size_t j = 0; j < c; j++) {
        model_verify(m, o[j]);
        b[n++] = o[j]->p;
    }
    unsigned order = (unsigned)m_below(m, 4);
    if (order)
        qsort(b, n, sizeof b[0], by_addr);
    if (order == 1)
        for (size_t j = 0; j < n / 2; j++) {
            void *t = b[j];
            b[j] = b[n - 1 - j];
            b[n - 1 - j] = t;
        }
    bool twice = c && m_below(m, 8) == 0;
    if (twice) {
        b[n++] = NULL;
        b[n++] = b[0];
    }
    unsigned long h0 = m->n_hook;
    M_EQ(m, catena_free_many(m->h, b, n), twice ? CATENA_EFREE : 0);
    M_EQ(m, m->n_hook, h0 + twice);
    for (size_t j = 0; j < c; j++)
        model_forget(o[j]);
    m->frees += c;
}

/* Batches on a locked heap: refused whole, nothing changes. */
static void batch_locked(struct model *m)
{
    struct mobj *o[1];
    void *out[2];
    struct catena_stats s0 = model_stats(m);
    catena_gc_lock(m->h);
    M_EQ(m, catena_alloc_many(m->h, 1, out, 2), 0);
    M_EQ(m, catena_last_error(m->h), CATENA_ELOCKED);
    if (batch_slots(m, o, 1, true)) {
        out[0] = o[0]->p;
        M_EQ(m, catena_free_many(m->h, out, 1), CATENA_ELOCKED);
    }
    M_EQ(m, catena_gc_unlock(m->h), 0);
    model_same(m, &s0);
    m->failed = model_stats(m).failed_allocs;
}

/* One batch step instead of an operation of the table. */
static void batch_step(struct model *m, bool fill)
{
    m->op = -1; /* "-" in a failure's report */
    unsigned r = (unsigned)m_below(m, 64);
    if (r == 0)
        batch_locked(m);
    else if (fill ? r < 44 : r < 14)
        batch_alloc(m);
    else
        batch_free(m);
    model_check(m);
    m->step++;
}

static void run(uint64_t seed, unsigned long steps)
{
    /* fill targets rise first, so that the peak rises in steps */
    static const unsigned fills[] = {20, 35, 50, 65, 80, 90, 100};
    struct model m = {.rand = rnd, .die = die, .seed = seed};
    unit_seed(seed);
    model_init(&m, arena, sizeof arena, SLOTS);
    unsigned long phase_len = steps / 16 > 500 ? steps / 16 : 500;
    size_t target = 0;
    unsigned phases = 0, rises = 0; /* phases that raised a partial peak */
    size_t peak0 = 0;
    while (m.step < steps) {
        if (m.step % phase_len == 0) { /* a new phase */
            rises += m.peak > peak0 && m.peak < m.total * 9 / 10;
            peak0 = m.peak;
            bool drain = phases++ % 2;
            unsigned f = phases / 2 < 7 ? phases / 2 : (unsigned)unit_below(7);
            unsigned pct = drain ? 5 + (unsigned)unit_below(16) : fills[f];
            target = m.total * pct / 100;
            if (m.chaining == (phases % 5 == 4)) /* phases 4, 9, 14 */
                model_step(&m, M_CHAINING);
        }
        /* requests up to 1/5 of the heap, but not far past the target */
        size_t used = model_stats(&m).used_blocks;
        size_t room = used < target ? 2 * (target - used) : 0;
        room = room < m.total / 5 ? room : m.total / 5;
        m.maxsize = (room > 4 ? room : 4) * MODEL_BS;
        if (unit_below(16) == 0)
            batch_step(&m, used < target);
        else
            model_step(&m, pick(used < target ? w_fill : w_drain));
    }
    if (!m.chaining)
        model_step(&m, M_CHAINING);
    unsigned long *n = m.n_ops;
    UNIT_EQ(n[M_CHAINING] % 2, 0); /* every phase without chaining ended */
    printf("model B=%d seed %llu: %lu steps in %u phases: %lu alloc, %lu "
           "free, %lu realloc, %lu realloc_contig, %lu flatten, %lu "
           "collect (%lu died); %lu failed, %lu ENOCHAIN, %lu moves, %lu "
           "fit misses; %lu object-steps on chains; peak %zu/%zu blocks, "
           "%lu steps below it, %u phases raised it below 90 %%; %lu mark "
           "stack overflows\n",
           CATENA_BLOCK_SIZE, (unsigned long long)seed, m.step, phases,
           n[M_ALLOC], n[M_FREE], n[M_REALLOC], n[M_RCONTIG], n[M_FLATTEN],
           n[M_GC], m.n_died, m.n_failed, m.n_enochain, m.n_moves,
           m.n_fill_misses, m.n_chained, m.peak, m.total, m.n_below_peak, rises, m.n_overflows);
    fflush(stdout);
    /* the run must really have exercised what it claims */
    for (int op = 0; op < M_CHAINING; op++)
        UNIT_ASSERT(n[op] > 0);
    UNIT_ASSERT(m.n_chained > m.step / 4);
    UNIT_ASSERT(m.n_failed > 0 && m.n_moves > 0 && m.n_died > 0);
    UNIT_ASSERT(m.n_scribbled > 0);
    UNIT_ASSERT(m.n_below_peak > m.step / 4);
    if (m.step >= 10000)
        UNIT_ASSERT(m.n_enochain > 0 && rises >= 2);
    model_fini(&m);
}

UNIT_TEST(t_model_1) { run(1, UNIT_ITERS(STEPS)); }
UNIT_TEST(t_model_2) { run(2, UNIT_ITERS(STEPS)); }
UNIT_TEST(t_model_3) { run(0xC0FFEE, UNIT_ITERS(STEPS)); }
UNIT_TEST(t_model_4) { run(20261126, UNIT_ITERS(STEPS)); }

static const unit_case cases[] = {
    UNIT_CASE(t_model_1), UNIT_CASE(t_model_2), UNIT_CASE(t_model_3),
    UNIT_CASE(t_model_4)};
UNIT_MAIN("model", cases)
