/*
 * test_model.c - randomized model test (in the style of o1heap's): random
 * alloc / realloc / free / flatten / write / read sequences against a shadow
 * model.  Every object's bytes follow a pattern derived from its seed, so
 * any lost or crossed byte is caught; catena_check runs after every
 * operation; every failed allocation is checked against the guarantee.
 *
 * Default: 4 seeds x 100k operations per build (the Makefile builds this
 * file for several block sizes and index widths).  UNIT_SCALE=N runs N
 * times longer; UNIT_SCALE_PCT=P runs P per cent (valgrind uses it).
 */
#include "catena.h"
#include "unit.h"

#define BS CATENA_BLOCK_SIZE
#define SLOTS 256
#ifndef MODEL_ARENA
#define MODEL_ARENA (64 * 1024)
#endif

static uint64_t arena[MODEL_ARENA / 8];
static catena_heap_t *h;

struct obj {
    unsigned char *p;
    size_t size; /* capacity in bytes (blocks * BS) */
    uint32_t seed;
};
static struct obj objs[SLOTS];
static unsigned char buf[MODEL_ARENA], buf2[MODEL_ARENA];

static unsigned char pat(uint32_t seed, size_t off)
{
    uint32_t x = seed ^ (uint32_t)off * 2654435761u;
    x ^= x >> 15;
    return (unsigned char)(x * 2246822519u >> 24);
}

static void fill(struct obj *o, size_t from)
{
    for (size_t i = from; i < o->size; i++)
        buf[i] = pat(o->seed, i);
    if (o->size > from)
        UNIT_EQ(catena_write(h, o->p, from, buf + from, o->size - from), 0);
}

static void verify(const struct obj *o, size_t upto)
{
    UNIT_EQ(catena_read(h, o->p, 0, buf2, upto), 0);
    for (size_t i = 0; i < upto; i++)
        if (buf2[i] != pat(o->seed, i)) {
            printf("byte %zu of %zu differs\n", i, upto);
            UNIT_ASSERT(!"object contents intact");
        }
}

static size_t free_blocks(void)
{
    struct catena_stats s;
    catena_stats(h, &s);
    return s.free_blocks;
}

static size_t rand_size(void)
{
    switch (unit_below(8)) {
    case 0:
    case 1:
    case 2:
        return 1 + unit_below(BS);
    case 3:
    case 4:
        return 1 + unit_below(4 * BS);
    case 5:
    case 6:
        return 1 + unit_below(MODEL_ARENA / 32);
    default:
        return 1 + unit_below(MODEL_ARENA / 6);
    }
}

/* The guarantee: a failure is only allowed below the bound. */
static void expect_bound(size_t n, size_t free_before, bool ok)
{
    if (!ok) {
        UNIT_ASSERT(catena_last_error(h) == CATENA_ENOMEM);
        UNIT_ASSERT(free_before < catena_blocks_for(n));
    }
}

static void op_alloc(struct obj *o)
{
    size_t n = rand_size(), f = free_blocks();
    unsigned flags = (unsigned)unit_below(4) == 0 ? CATENA_NOSCAN : 0;
    o->p = catena_alloc_flags(h, n, flags);
    expect_bound(n, f, o->p != NULL);
    if (!o->p)
        return;
    UNIT_ASSERT(f - free_blocks() <= catena_blocks_for(n));
    o->size = catena_size(h, o->p);
    UNIT_EQ(o->size, (n + BS - 1) / BS * BS);
    UNIT_EQ(catena_flags(h, o->p), flags);
    o->seed = (uint32_t)unit_rand();
    fill(o, 0);
}

static void op_free(struct obj *o)
{
    verify(o, o->size);
    UNIT_EQ(catena_free(h, o->p), 0);
    o->p = NULL;
}

static void op_realloc(struct obj *o, bool contig)
{
    size_t n = rand_size(), f = free_blocks();
    void *q = contig ? catena_realloc_contig(h, o->p, n)
                     : catena_realloc(h, o->p, n);
    if (!q) {
        UNIT_ASSERT(catena_size(h, o->p) == o->size); /* untouched */
        UNIT_EQ(catena_last_error(h), CATENA_ENOMEM);
        /* shrinking never fails (unless a chain must become contiguous);
         * grows are guaranteed when free >= blocks_for(n) - blocks held */
        if (!contig) {
            UNIT_ASSERT(n > o->size);
            UNIT_ASSERT(f + o->size / BS < catena_blocks_for(n));
        }
        verify(o, o->size);
        return;
    }
    size_t old = o->size;
    o->p = q;
    o->size = catena_size(h, q);
    UNIT_EQ(o->size, (n + BS - 1) / BS * BS);
    if (contig)
        UNIT_ASSERT(catena_is_contiguous(h, q));
    verify(o, old < o->size ? old : o->size);
    fill(o, old < o->size ? old : o->size);
}

static void op_read(struct obj *o)
{
    size_t off = unit_below(o->size), len = 1 + unit_below(o->size - off);
    switch (unit_below(4)) {
    case 0: {
        const unsigned char *g = catena_get_contiguous(h, o->p, off, len, buf2);
        UNIT_ASSERT(g != NULL);
        for (size_t i = 0; i < len; i++)
            UNIT_EQ(g[i], pat(o->seed, off + i));
        break;
    }
    case 1: {
        struct catena_iovec iov[64];
        size_t k = catena_iov(h, o->p, off, len, iov, 64), at = off;
        UNIT_ASSERT(k >= 1 && k <= catena_extents(h, o->p));
        for (size_t i = 0; i < k && i < 64; i++)
            for (size_t j = 0; j < iov[i].iov_len; j++)
                UNIT_EQ(((unsigned char *)iov[i].iov_base)[j],
                        pat(o->seed, at++));
        break;
    }
    case 2: {
        uint8_t byte = 0;
        UNIT_EQ(catena_read_byte(h, o->p, off, &byte), CATENA_OK);
        UNIT_EQ(byte, pat(o->seed, off));
        break;
    }
    default: {
        size_t avail;
        unsigned char *p = catena_ptr(h, o->p, off, &avail);
        UNIT_ASSERT(p && avail >= 1 && avail <= o->size - off);
        UNIT_EQ(*p, pat(o->seed, off));
        if (catena_is_contiguous(h, o->p))
            UNIT_ASSERT(p == o->p + off && avail == o->size - off);
    }
    }
}

/* Free-run interiors are promised to be unread by the heap: scribble over
 * them now and then (as madvise would zero them) and let the model and
 * the validator find out if that promise is broken. */
static size_t scribbled;
static void scribble(void *ctx, void *p, size_t n)
{
    (void)ctx;
    memset(p, 0xA5, n);
    scribbled += n;
}

static void run(uint64_t seed, unsigned long ops)
{
    unit_seed(seed);
    UNIT_EQ(catena_init(arena, sizeof arena, &h), 0);
    memset(objs, 0, sizeof objs);
    unsigned long chained = 0, failed = 0;
    for (unsigned long i = 0; i < ops; i++) {
        struct obj *o = &objs[unit_below(SLOTS)];
        unsigned r = (unsigned)unit_below(100);
        if (!o->p) {
            op_alloc(o);
            failed += o->p == NULL;
        } else if (r < 30) {
            op_free(o);
        } else if (r < 50) {
            op_realloc(o, false);
        } else if (r < 55) {
            op_realloc(o, true);
        } else if (r < 60) {
            void *f = catena_flatten(h, o->p);
            if (f) {
                o->p = f;
                UNIT_ASSERT(catena_is_contiguous(h, f));
            }
            verify(o, o->size);
        } else if (r < 70) {
            o->seed = (uint32_t)unit_rand();
            fill(o, 0);
        } else {
            op_read(o);
        }
        if (o->p && !catena_is_contiguous(h, o->p))
            chained++;
        if (i % 97 == 0)
            catena_free_ranges(h, 0, scribble, NULL);
        int e = catena_check(h);
        if (e) {
            printf("seed %llu op %lu: %s\n", (unsigned long long)seed, i,
                   catena_strerror(e));
            UNIT_ASSERT(e == 0);
        }
    }
    for (size_t i = 0; i < SLOTS; i++)
        if (objs[i].p)
            op_free(&objs[i]);
    struct catena_stats s;
    catena_stats(h, &s);
    UNIT_EQ(s.used_blocks, 0);
    UNIT_EQ(s.free_runs, 1);
    /* the workload must really exercise chains and failures */
    UNIT_ASSERT(chained > ops / 50);
    UNIT_ASSERT(failed > 0);
    UNIT_ASSERT(scribbled > 0);
    printf("model B=%d seed %llu: %lu ops, %lu on chains, %lu failed allocs, "
           "peak %zu/%zu blocks\n",
           BS, (unsigned long long)seed, ops, chained, failed, s.peak_used,
           s.total_blocks);
}

UNIT_TEST(t_model_1) { run(1, UNIT_ITERS(100000)); }
UNIT_TEST(t_model_2) { run(2, UNIT_ITERS(100000)); }
UNIT_TEST(t_model_3) { run(0xC0FFEE, UNIT_ITERS(100000)); }
UNIT_TEST(t_model_4) { run(20261126, UNIT_ITERS(100000)); }

static const unit_case cases[] = {
    UNIT_CASE(t_model_1), UNIT_CASE(t_model_2), UNIT_CASE(t_model_3),
    UNIT_CASE(t_model_4)};
UNIT_MAIN("model", cases)
