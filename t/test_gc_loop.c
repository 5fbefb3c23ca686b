/*
 * test_gc_loop.c - the guarantee under GC.
 *
 * A MicroPython-like loop that never frees anything explicitly: each
 * iteration builds a list that grows by realloc, fills it with small
 * objects and strings, makes a 1-8 KiB buffer and a string, and sometimes
 * keeps one of them in a global slot (dropping the slot's previous
 * occupant).  Everything else is dropped at the end of the iteration.
 * Memory comes back only through collections triggered by failed
 * allocations (CATENA_GC_AUTO), with the globals and the frame registered
 * as permanent roots.
 *
 * The workload's random choices do not depend on the heap, so a dry run
 * (no heap) gives its exact peak of live data in blocks.  The arena is
 * then only SLACK_PCT per cent above that peak.  Chained, 10^6 iterations
 * run with zero failed allocations; the same loop on the contiguous-only
 * policy (chaining disabled, lists grown by moving) fails, and the
 * iteration where it does is printed.  Every object that leaves a global
 * slot is verified first, so a collector that freed live data would fail.
 */
#include "catena.h"
#include "unit.h"

/* Check logs every passing assertion (a write(2)); hot loops assert only
 * on failure. */
#define CHK(c) do { if (!(c)) UNIT_ASSERT(c); } while (0)
#define CHK_EQ(a, b) do { if ((a) != (b)) UNIT_EQ(a, b); } while (0)

#define BS CATENA_BLOCK_SIZE
#define W sizeof(void *)
#define NG 48          /* global slots */
#define NF 4           /* frame slots: list, item, buffer, string */
#define MAX_ITEMS 24
#ifndef SLACK_PCT
#define SLACK_PCT 10
#endif
#define ITERS 1000000ul

enum { K_SMALL, K_STR, K_LIST, K_BUF };
enum { DRY, CHAINED, CONTIG };

static uint64_t arena[(1u << 20) / 8];
static catena_heap_t *h;
static void *g[NG], *f[NF];
static size_t gblocks[NG]; /* data blocks each slot keeps alive */
static int gkind[NG];

struct run {
    int mode;
    size_t live, peak;    /* data blocks reachable from the roots */
    unsigned long iter;   /* current iteration */
    bool failed;
    uint32_t serial;
};

static size_t nbl(size_t bytes) { return (bytes + BS - 1) / BS; }

static void account(struct run *r, long delta)
{
    r->live = (size_t)((long)r->live + delta);
    if (r->live > r->peak)
        r->peak = r->live;
}

/* ---- objects and their verification ---------------------------------- */

/* Small objects: {tag, tag ^ K, 0...}; tags are odd, never handles. */
#define TAGK ((uintptr_t)0x5a5a5a5a5a5a5a5aull)

static uint8_t pat(uint32_t seed, size_t i)
{
    return (uint8_t)((seed * 2654435761u + i * 40503u) >> 13);
}

static void *obj(struct run *r, size_t n, unsigned flags)
{
    account(r, (long)nbl(n));
    if (r->mode == DRY || r->failed)
        return NULL;
    void *p = catena_alloc_flags(h, n, flags);
    if (!p)
        r->failed = true;
    return p;
}

static void *make_small(struct run *r, size_t words)
{
    void *p = obj(r, words * W, 0);
    if (p) {
        uintptr_t t = ((uintptr_t)++r->serial << 1) | 1u, w2[2] = {t, t ^ TAGK};
        catena_write(h, p, 0, w2, sizeof w2);
    }
    return p;
}

/* Strings and buffers: {seed, length} then the pattern; NOSCAN. */
static void *make_bytes(struct run *r, size_t n)
{
    void *p = obj(r, n, CATENA_NOSCAN);
    if (p) {
        static uint8_t buf[8192];
        uint32_t hd[2] = {++r->serial, (uint32_t)n};
        memcpy(buf, hd, sizeof hd);
        for (size_t i = sizeof hd; i < n; i++)
            buf[i] = pat(hd[0], i);
        catena_write(h, p, 0, buf, n);
    }
    return p;
}

static void verify_small(void *p)
{
    uintptr_t w2[2];
    CHK_EQ(catena_read(h, p, 0, w2, sizeof w2), 0);
    CHK((w2[0] & 1u) && w2[1] == (w2[0] ^ TAGK));
}

static void verify_bytes(void *p)
{
    static uint8_t buf[8192];
    uint32_t hd[2];
    CHK_EQ(catena_read(h, p, 0, hd, sizeof hd), 0);
    CHK(hd[1] >= 8 && hd[1] <= sizeof buf);
    CHK_EQ(catena_read(h, p, 0, buf, hd[1]), 0);
    for (size_t i = sizeof hd; i < hd[1]; i++)
        if (buf[i] != pat(hd[0], i))
            CHK(!"bytes intact");
}

static void verify_item(void *p)
{
    if (catena_flags(h, p) & CATENA_NOSCAN)
        verify_bytes(p);
    else
        verify_small(p);
}

/* Lists: word 0 = 2 * length + 1, then the items. */
static void verify_list(void *p)
{
    uintptr_t n;
    CHK_EQ(catena_read(h, p, 0, &n, W), 0);
    CHK((n & 1u) && (n >> 1) <= MAX_ITEMS);
    for (size_t i = 1; i <= n >> 1; i++) {
        void *it;
        CHK_EQ(catena_read(h, p, i * W, &it, W), 0);
        verify_item(it);
    }
}

static void verify(int kind, void *p)
{
    if (kind == K_LIST)
        verify_list(p);
    else if (kind == K_SMALL)
        verify_small(p);
    else
        verify_bytes(p);
}

/* ---- one iteration ---------------------------------------------------- */

static void put_word(void *p, size_t i, uintptr_t v)
{
    catena_write(h, p, i * W, &v, W);
}

/* Grow the list f[0] from cap to 2 * cap words. */
static void grow_list(struct run *r, size_t cap)
{
    account(r, (long)(nbl(2 * cap * W) - nbl(cap * W)));
    if (r->mode == DRY || r->failed)
        return;
    void *q = r->mode == CHAINED ? catena_realloc(h, f[0], 2 * cap * W)
                                 : catena_realloc_contig(h, f[0], 2 * cap * W);
    if (!q) {
        r->failed = true;
        return;
    }
    f[0] = q;
}

/* Put a frame object (or a new small object) into global slot k, after
 * verifying the slot's previous occupant, which becomes garbage. */
static void promote(struct run *r, int kind, size_t blocks, size_t k)
{
    if (r->mode != DRY && g[k])
        verify(gkind[k], g[k]);
    account(r, -(long)gblocks[k]);
    g[k] = NULL;
    gblocks[k] = 0;
    if (kind == K_SMALL) {
        g[k] = make_small(r, 2);
        blocks = nbl(2 * W);
    } else {
        g[k] = f[kind == K_LIST ? 0 : kind == K_BUF ? 2 : 3];
    }
    gkind[k] = kind;
    gblocks[k] = blocks;
}

static void iterate(struct run *r)
{
    size_t cap = 4, n = 1 + unit_below(MAX_ITEMS), list_bl = 0;
    f[0] = obj(r, cap * W, 0);
    list_bl = nbl(cap * W);
    if (f[0])
        put_word(f[0], 0, 1);
    for (size_t j = 0; j < n && !r->failed; j++) {
        bool small = unit_below(3) != 0;
        size_t sz = small ? 2 + unit_below(3) : 8 + unit_below(193);
        f[1] = small ? make_small(r, sz) : make_bytes(r, sz);
        list_bl += small ? nbl(sz * W) : nbl(sz);
        if (j + 2 > cap) {
            grow_list(r, cap);
            list_bl += nbl(2 * cap * W) - nbl(cap * W);
            cap *= 2;
        }
        if (f[0] && f[1]) {
            put_word(f[0], j + 1, (uintptr_t)f[1]);
            put_word(f[0], 0, (uintptr_t)(2 * (j + 1) + 1));
        }
        f[1] = NULL;
    }
    size_t bsz = 1024 + unit_below(7 * 1024 + 1), ssz = 8 + unit_below(193);
    f[2] = make_bytes(r, bsz);
    f[3] = make_bytes(r, ssz);
    unsigned act = (unsigned)unit_below(8);
    size_t k = unit_below(NG);
    if (!r->failed) {
        if (act == 0)
            promote(r, K_LIST, list_bl, k);
        else if (act == 1)
            promote(r, K_BUF, nbl(bsz), k);
        else if (act == 2)
            promote(r, K_STR, nbl(ssz), k);
        else if (act == 3)
            promote(r, K_SMALL, 0, k);
    }
    /* drop the frame; a promoted frame object stays alive */
    account(r, -(long)(list_bl + nbl(bsz) + nbl(ssz)));
    if (act < 3 && !r->failed)
        account(r, (long)gblocks[k]);
    memset(f, 0, sizeof f);
}

static struct run run(int mode, size_t arena_bytes, unsigned long iters)
{
    struct run r = {mode, 0, 0, 0, false, 0};
    memset(g, 0, sizeof g);
    memset(gblocks, 0, sizeof gblocks);
    memset(f, 0, sizeof f);
    unit_seed(0x6c6f6f70u);
    if (mode != DRY) {
        UNIT_EQ(catena_init(arena, arena_bytes, &h), 0);
        catena_set_chaining(h, mode == CHAINED);
        UNIT_EQ(catena_gc_add_roots(h, g, NG), 0);
        UNIT_EQ(catena_gc_add_roots(h, f, NF), 0);
        UNIT_EQ(catena_gc_set_options(h, CATENA_GC_AUTO | CATENA_GC_ZERO), 0);
    }
    for (r.iter = 0; r.iter < iters && !r.failed; r.iter++)
        iterate(&r);
    if (mode != DRY) {
        UNIT_EQ(catena_check(h), 0);
        if (!r.failed)
            for (size_t k = 0; k < NG; k++)
                if (g[k])
                    verify(gkind[k], g[k]);
    }
    return r;
}

UNIT_TEST(t_loop)
{
    unsigned long iters = UNIT_ITERS(ITERS);
    struct run dry = run(DRY, 0, iters);
    size_t nblocks = dry.peak + dry.peak * SLACK_PCT / 100;
    size_t bytes = catena_overhead(nblocks) + (nblocks + 1) * BS;
    UNIT_ASSERT(bytes <= sizeof arena);

    struct run ch = run(CHAINED, bytes, iters);
    struct catena_stats s;
    catena_stats(h, &s);
    /* newlib-nano's printf has no %zu: unsigned long throughout */
    printf("gc loop: block %u B, peak live %lu blocks (%lu KiB), arena %lu "
           "blocks (%lu KiB, +%d%%)\n",
           (unsigned)BS, (unsigned long)dry.peak,
           (unsigned long)(dry.peak * BS / 1024),
           (unsigned long)s.total_blocks, (unsigned long)(bytes / 1024),
           SLACK_PCT);
    printf("gc loop: chained: %lu of %lu iterations, %lu failed "
           "allocations, %lu collections, %lu allocations\n",
           ch.iter, iters, (unsigned long)s.failed_allocs,
           (unsigned long)s.gc_collections, (unsigned long)s.allocs);
    UNIT_ASSERT(!ch.failed);
    UNIT_EQ(s.failed_allocs, 0);
    UNIT_ASSERT(s.gc_collections > 0);

    struct run co = run(CONTIG, bytes, iters);
    catena_stats(h, &s);
    printf("gc loop: contiguous-only: first failed allocation in iteration "
           "%lu of %lu (%lu collections; free %lu blocks, largest run %lu)\n",
           co.iter, iters, (unsigned long)s.gc_collections,
           (unsigned long)s.free_blocks, (unsigned long)s.largest_free_run);
    if (iters >= ITERS)
        UNIT_ASSERT(co.failed);
}

static const unit_case cases[] = {UNIT_CASE(t_loop)};
UNIT_MAIN("gc_loop", cases)
