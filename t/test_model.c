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
 * are part of the mix.  A failure prints "seed S step N (op)".
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
