/*
 * test_core.c - unit tests of every public function of the core heap,
 * including every bad-input case.
 */
#include "catena.h"
#include "unit.h"

/* catena_config.h names the free-run layer (lib/scan.c: no headers). */
#ifndef CATENA_SCAN
#define CATENA_SCAN 0
#endif
/* lib/index.c's check of free-run headers; a port may give it up
 * (-DCATENA_RUN_CHECKS=0), and then a write into a free run corrupts the
 * index unreported: the corruption tests have nothing to check. */
#ifndef CATENA_RUN_CHECKS
#define CATENA_RUN_CHECKS 1
#endif

#define BS CATENA_BLOCK_SIZE
/* Block-aligned, so that catena_overhead() applies exactly. */
static uint64_t arena[(64 * 1024) / 8] __attribute__((aligned(64)));

static catena_heap_t *mk(size_t size)
{
    catena_heap_t *h = NULL;
    /* A fresh arena for every heap, as each case gets under Check's fork:
     * the bare-metal runner runs every case in one process, and a free-run
     * header a previous case left at the same place can make a test that
     * corrupts one field see a different (stale but plausible) header. */
    memset(arena, 0, sizeof arena);
    UNIT_EQ(catena_init(arena, size, &h), CATENA_OK);
    UNIT_ASSERT(h != NULL);
    UNIT_EQ(catena_check(h), 0);
    return h;
}

static void st(catena_heap_t *h, struct catena_stats *s) { catena_stats(h, s); }

/* Recorded by the error hook. */
static int hook_err, hook_calls;
static const void *hook_ptr;
static void hook(void *ctx, catena_heap_t *h, int err, const void *p,
                 const char *where)
{
    (void)ctx;
    (void)h;
    (void)where;
    hook_err = err;
    hook_ptr = p;
    hook_calls++;
}

UNIT_TEST(t_init_geometry)
{
    catena_heap_t *h = mk(sizeof arena);
    struct catena_stats s;
    st(h, &s);
    UNIT_EQ(s.block_size, BS);
    UNIT_EQ(catena_block_size(), BS);
    UNIT_EQ(s.free_blocks, s.total_blocks);
    UNIT_EQ(s.free_runs, 1);
    UNIT_EQ(s.largest_free_run, s.total_blocks);
    UNIT_EQ(s.used_blocks, 0);
    /* The documented overhead formula, exactly. */
    UNIT_EQ(catena_arena_blocks((uintptr_t)arena, sizeof arena),
            s.total_blocks);
    UNIT_ASSERT(catena_overhead(s.total_blocks) + s.total_blocks * BS <=
                sizeof arena);
    UNIT_ASSERT(catena_overhead(s.total_blocks + 1) +
                    (s.total_blocks + 1) * BS > sizeof arena);
    /* table: 4 bits a block, so overhead per block -> 1/2 byte + fixed */
    UNIT_ASSERT(catena_overhead(100000) <= 100000 / 2 + 2048);
    UNIT_ASSERT(catena_overhead(100000) >= 100000 / 2);
}

UNIT_TEST(t_init_bad)
{
    catena_heap_t *h = NULL;
    UNIT_EQ(catena_init(NULL, 4096, &h), CATENA_EINVAL);
    UNIT_EQ(catena_init(arena, 4096, NULL), CATENA_EINVAL);
    UNIT_EQ(catena_init((char *)arena + 1, 4096, &h), CATENA_EALIGN);
    UNIT_EQ(catena_init(arena, 0, &h), CATENA_ESMALL);
    UNIT_EQ(catena_init(arena, 64, &h), CATENA_ESMALL);
    UNIT_EQ(catena_init(arena, sizeof(void *), &h), CATENA_ESMALL);
    UNIT_ASSERT(h == NULL);
    /* Too many blocks for the index: detected from the size alone, the
     * arena is not touched (the pointer is only checked for alignment). */
    size_t max = catena_max_blocks();
    UNIT_ASSERT(max == 65534 || max == ((size_t)1 << 28) - 1);
    if (SIZE_MAX / (BS + 1) > max + 1024)
        UNIT_EQ(catena_init(arena, (max + 64) * (BS + 1), &h), CATENA_EBIG);
    if (SIZE_MAX / (BS + 1) > max + 1024)
        UNIT_ASSERT(catena_arena_blocks((uintptr_t)arena,
                                        (max + 1) * BS +
                                            catena_overhead(max + 1)) ==
                    max + 1);
    /* The smallest arena that works */
    size_t sz = 64;
    while (catena_init(arena, sz, &h) != CATENA_OK)
        sz += 8;
    UNIT_EQ(catena_arena_blocks((uintptr_t)arena, sz), 2);
    UNIT_EQ(catena_check(h), 0);
}

UNIT_TEST(t_alloc_contiguous)
{
    catena_heap_t *h = mk(sizeof arena);
    void *a = catena_alloc(h, 1), *b = catena_alloc(h, 3 * BS + 1);
    UNIT_ASSERT(a && b && a != b);
    UNIT_ASSERT(catena_is_contiguous(h, a) && catena_is_contiguous(h, b));
    UNIT_EQ(catena_size(h, a), BS);
    UNIT_EQ(catena_size(h, b), 4 * BS);
    UNIT_EQ(catena_extents(h, b), 1);
    UNIT_EQ((uintptr_t)a % BS, 0);
    memset(b, 0xAB, 4 * BS); /* the handle addresses every byte */
    UNIT_EQ(unit_byte(h, b, 4 * BS - 1), 0xAB);
    struct catena_stats s;
    st(h, &s);
    UNIT_EQ(s.used_blocks, 5);
    UNIT_EQ(s.objects, 2);
    UNIT_EQ(s.chained_objects, 0);
    UNIT_EQ(catena_check(h), 0);
    UNIT_EQ(catena_free(h, a), 0);
    UNIT_EQ(catena_free(h, b), 0);
    st(h, &s);
    UNIT_EQ(s.used_blocks, 0);
    UNIT_EQ(s.free_runs, 1); /* coalesced back */
    UNIT_EQ(s.peak_used, 5);
    UNIT_EQ(catena_check(h), 0);
}

UNIT_TEST(t_alloc_zero_flag)
{
    catena_heap_t *h = mk(sizeof arena);
    void *a = catena_alloc(h, 10 * BS);
    memset(a, 0xFF, 10 * BS);
    catena_free(h, a);
    unsigned char *z = catena_alloc_flags(h, 10 * BS, CATENA_ZERO);
    for (size_t i = 0; i < 10 * BS; i++)
        UNIT_EQ(z[i], 0);
    UNIT_EQ(catena_flags(h, z), 0);
}

UNIT_TEST(t_alloc_bad)
{
    catena_heap_t *h = mk(sizeof arena);
    catena_set_hook(h, hook, NULL);
    hook_calls = 0;
    UNIT_ASSERT(catena_alloc(h, 0) == NULL);
    UNIT_EQ(catena_last_error(h), CATENA_ESIZE);
    UNIT_EQ(hook_err, CATENA_ESIZE);
    /* too many blocks for any heap: ESIZE; merely more than this one
     * has: ENOMEM (on 32-bit targets SIZE_MAX bytes can be either) */
    int big = SIZE_MAX / BS + 1 > catena_max_blocks() ? CATENA_ESIZE
                                                      : CATENA_ENOMEM;
    UNIT_ASSERT(catena_alloc(h, SIZE_MAX) == NULL);
    UNIT_EQ(catena_last_error(h), big);
    UNIT_ASSERT(catena_alloc(h, SIZE_MAX - BS) == NULL);
    UNIT_ASSERT(catena_alloc(h, SIZE_MAX / 2) == NULL);
    struct catena_stats s0;
    st(h, &s0);
    UNIT_ASSERT(catena_alloc(h, s0.total_blocks * BS + 1) == NULL);
    UNIT_EQ(catena_last_error(h), CATENA_ENOMEM);
    UNIT_ASSERT(catena_alloc_flags(h, 8, 1u << 7) == NULL);
    UNIT_EQ(catena_last_error(h), CATENA_EINVAL);
    UNIT_ASSERT(catena_alloc_flags(h, 8, CATENA_FINAL | CATENA_NOCOLLECT) ==
                NULL);
    UNIT_EQ(catena_last_error(h), CATENA_EINVAL);
    UNIT_EQ(hook_calls, 7);
    UNIT_EQ(catena_blocks_for(0), SIZE_MAX);
    if (big == CATENA_ESIZE)
        UNIT_EQ(catena_blocks_for(SIZE_MAX), SIZE_MAX);
    else /* computed without overflow */
        UNIT_ASSERT(catena_blocks_for(SIZE_MAX) > SIZE_MAX / BS);
    struct catena_stats s;
    st(h, &s);
    UNIT_EQ(s.used_blocks, 0); /* nothing lost */
    UNIT_EQ(s.failed_allocs, 5);
    UNIT_EQ(catena_check(h), 0);
}

UNIT_TEST(t_flags)
{
    catena_heap_t *h = mk(sizeof arena);
    unsigned fl[] = {0,
                     CATENA_NOSCAN,
                     CATENA_FINAL,
                     CATENA_NOSCAN | CATENA_FINAL,
                     CATENA_NOCOLLECT,
                     CATENA_NOCOLLECT | CATENA_NOSCAN};
    for (size_t i = 0; i < sizeof fl / sizeof fl[0]; i++) {
        void *p = catena_alloc_flags(h, 2 * BS, fl[i] | CATENA_ZERO);
        UNIT_EQ(catena_flags(h, p), fl[i]);
    }
    UNIT_EQ(catena_check(h), 0);
}

/* Fill with 1-block objects, free every other one: the free space is all
 * 1-block holes.  Returns the number of holes. */
static size_t checkerboard(catena_heap_t *h, void **keep, size_t max)
{
    size_t n = 0, holes = 0;
    void *p;
    while (n < max && (p = catena_alloc(h, 1)))
        keep[n++] = p;
    for (size_t i = 0; i < n; i += 2) {
        catena_free(h, keep[i]);
        keep[i] = NULL;
        holes++;
    }
    return holes;
}

static void *slots[8192];

UNIT_TEST(t_chain_basic)
{
    catena_heap_t *h = mk(16 * 1024);
    size_t holes = checkerboard(h, slots, 8192);
    struct catena_stats s;
    st(h, &s);
    UNIT_EQ(s.largest_free_run, 1);
    UNIT_ASSERT(holes >= 40);
    size_t n = 20 * BS;
    unsigned char *p = catena_alloc(h, n);
    UNIT_ASSERT(p != NULL);
    UNIT_ASSERT(!catena_is_contiguous(h, p));
    UNIT_EQ(catena_extents(h, p), 20);
    UNIT_EQ(catena_size(h, p), n);
    UNIT_EQ(catena_check(h), 0);
    st(h, &s);
    UNIT_EQ(s.chained_objects, 1);
    UNIT_EQ(s.spine_blocks, catena_blocks_for(n) - 20);
    for (size_t i = 0; i < n; i++)
        UNIT_EQ(catena_write_byte(h, p, i, (uint8_t)(i * 7)), 0);
    for (size_t i = 0; i < n; i++)
        UNIT_EQ(unit_byte(h, p, i), (uint8_t)(i * 7));
    uint8_t out = 0x5C;
    UNIT_EQ(catena_read_byte(h, p, n, &out), CATENA_ERANGE);
    UNIT_EQ(out, 0x5C); /* untouched */
    UNIT_EQ(catena_last_error(h), CATENA_ERANGE);
    UNIT_EQ(catena_read_byte(h, p, SIZE_MAX, &out), CATENA_ERANGE);
    UNIT_EQ(catena_write_byte(h, p, n, 1), CATENA_ERANGE);
    UNIT_EQ(catena_read_byte(h, p + 1, 0, &out), CATENA_EINTERIOR);
    UNIT_EQ(catena_write_byte(h, &out, 0, 1), CATENA_EFOREIGN);
    UNIT_EQ(out, 0x5C);
    UNIT_EQ(catena_free(h, p), 0);
    UNIT_EQ(catena_check(h), 0);
    st(h, &s);
    UNIT_EQ(s.free_blocks, holes);
}

UNIT_TEST(t_access)
{
    catena_heap_t *h = mk(16 * 1024);
    checkerboard(h, slots, 8192);
    size_t n = 9 * BS;
    void *p = catena_alloc(h, n);
    unsigned char buf[16 * 64], out[16 * 64], scratch[16 * 64];
    for (size_t i = 0; i < n; i++)
        buf[i] = (unsigned char)(i ^ 0x5A);
    UNIT_EQ(catena_write(h, p, 0, buf, n), 0);
    memset(out, 0, sizeof out);
    UNIT_EQ(catena_read(h, p, 0, out, n), 0);
    UNIT_ASSERT(memcmp(buf, out, n) == 0);
    UNIT_EQ(catena_read(h, p, 3, out, n - 3), 0);
    UNIT_ASSERT(memcmp(buf + 3, out, n - 3) == 0);
    UNIT_EQ(catena_read(h, p, 1, out, n), CATENA_ERANGE);
    UNIT_EQ(catena_write(h, p, n, buf, 1), CATENA_ERANGE);
    UNIT_EQ(catena_read(h, p, SIZE_MAX, out, 2), CATENA_ERANGE);
    UNIT_EQ(catena_read(h, p, n, out, 0), 0);
    /* ptr: a direct pointer to any byte, and what follows contiguously */
    size_t avail = 0;
    unsigned char *q = catena_ptr(h, p, BS + 5, &avail);
    UNIT_ASSERT(q && *q == buf[BS + 5] && avail == BS - 5);
    UNIT_ASSERT(catena_ptr(h, p, n, &avail) == NULL);
    /* get_contiguous: direct inside a block, a copy across blocks */
    const unsigned char *g = catena_get_contiguous(h, p, 2, 4, scratch);
    UNIT_ASSERT(g != scratch && memcmp(g, buf + 2, 4) == 0);
    g = catena_get_contiguous(h, p, BS - 2, 4, scratch);
    UNIT_ASSERT(g == scratch && memcmp(g, buf + BS - 2, 4) == 0);
    UNIT_ASSERT(catena_get_contiguous(h, p, n - 2, 4, scratch) == NULL);
    UNIT_ASSERT(catena_get_contiguous(h, p, 0, 0, scratch) == NULL);
    /* iov: one segment per extent touched */
    struct catena_iovec iov[16];
    size_t k = catena_iov(h, p, 0, n, iov, 16);
    UNIT_EQ(k, 9);
    size_t tot = 0;
    for (size_t i = 0; i < k; i++) {
        UNIT_ASSERT(memcmp(iov[i].iov_base, buf + tot, iov[i].iov_len) == 0);
        tot += iov[i].iov_len;
    }
    UNIT_EQ(tot, n);
    UNIT_EQ(catena_iov(h, p, 1, BS, iov, 1), 2); /* needs 2, fills 1 */
    UNIT_EQ(iov[0].iov_len, BS - 1);
    UNIT_EQ(catena_iov(h, p, 0, n + 1, iov, 16), 0);
    UNIT_EQ(catena_last_error(h), CATENA_ERANGE);
    /* iterator */
    catena_iter_t it;
    void *sp;
    size_t sl, segs = 0;
    tot = 0;
    for (catena_iter_init(&it, h, p); catena_iter_next(&it, &sp, &sl);) {
        UNIT_ASSERT(memcmp(sp, buf + tot, sl) == 0);
        tot += sl;
        segs++;
    }
    UNIT_EQ(segs, catena_extents(h, p));
    UNIT_EQ(tot, n);
    /* on a contiguous object the same calls give one segment */
    void *c = catena_realloc_contig(h, NULL, 2 * BS);
    UNIT_ASSERT(c == NULL || catena_iov(h, c, 0, 2 * BS, iov, 16) == 1);
}

UNIT_TEST(t_free_bad)
{
    catena_heap_t *h = mk(16 * 1024);
    catena_set_hook(h, hook, NULL);
    int local;
    char *p = catena_alloc(h, 3 * BS);
    char *q = catena_alloc(h, BS);
    UNIT_EQ(catena_free(h, NULL), 0);
    UNIT_EQ(catena_free(h, &local), CATENA_EFOREIGN);
    UNIT_ASSERT(hook_ptr == &local);
    UNIT_EQ(catena_free(h, (char *)arena), CATENA_EFOREIGN); /* control */
    UNIT_EQ(catena_free(h, p + 1), CATENA_EINTERIOR);
    UNIT_EQ(catena_free(h, p + BS), CATENA_EINTERIOR);
    UNIT_EQ(catena_free(h, p + 3 * BS - 1), CATENA_EINTERIOR);
    UNIT_EQ(catena_free(h, q + 2 * BS), CATENA_EFREE); /* never allocated */
    UNIT_EQ(catena_free(h, p), 0);
    UNIT_EQ(catena_free(h, p), CATENA_EFREE); /* double free */
    UNIT_EQ(catena_last_error(h), CATENA_EFREE);
    UNIT_EQ(catena_free(h, p + BS), CATENA_EFREE);
    UNIT_ASSERT(catena_realloc(h, p, 10) == NULL);
    UNIT_EQ(catena_last_error(h), CATENA_EFREE);
    UNIT_ASSERT(catena_realloc(h, &local, 10) == NULL);
    UNIT_EQ(catena_last_error(h), CATENA_EFOREIGN);
    UNIT_EQ(catena_size(h, p), 0);
    UNIT_EQ(catena_check(h), 0);
    struct catena_stats s;
    st(h, &s);
    UNIT_EQ(s.objects, 1); /* q alive, nothing else touched */
    UNIT_EQ(s.used_blocks, 1);
    /* Interior pointers into a chained object's extents and spine */
    checkerboard(h, slots, 8192);
    char *c = catena_alloc(h, 40 * BS);
    UNIT_ASSERT(c && !catena_is_contiguous(h, c));
    char *e = catena_ptr(h, c, 5 * BS, NULL);
    UNIT_EQ(catena_free(h, e), CATENA_EINTERIOR);
    UNIT_EQ(catena_free(h, c + 4), CATENA_EINTERIOR);
    UNIT_EQ(catena_check(h), 0);
    UNIT_EQ(catena_free(h, c), 0);
    UNIT_EQ(catena_check(h), 0);
}

UNIT_TEST(t_corrupt_handle)
{
    catena_heap_t *h = mk(16 * 1024);
    void *p = catena_alloc(h, 10);
    uint32_t saved;
    memcpy(&saved, h, sizeof saved); /* the magic is the first word */
    memset(h, 0, 4);
    UNIT_EQ(catena_check(h), CATENA_ECORRUPT);
    UNIT_ASSERT(catena_alloc(h, 10) == NULL);
    UNIT_EQ(catena_free(h, p), CATENA_ECORRUPT);
    memcpy(h, &saved, sizeof saved);
    UNIT_EQ(catena_check(h), 0);
    UNIT_EQ(catena_free(h, p), 0);
    UNIT_EQ(catena_check(h), 0);
}

UNIT_TEST(t_check_detects)
{
    /* The validator must notice damage: corrupt a free run's length. */
    catena_heap_t *h = mk(16 * 1024);
    void *a = catena_alloc(h, BS), *b = catena_alloc(h, BS);
    (void)b;
    catena_free(h, a);
    UNIT_EQ(catena_check(h), 0);
    unsigned char save[BS];
    memcpy(save, a, BS);
    memset(a, 0x7F, BS); /* the free run header lives in the block */
    /* lib/scan.c: free runs have no header; nothing to damage there */
    UNIT_EQ(catena_check(h), CATENA_SCAN ? 0 : CATENA_ECORRUPT);
    memcpy(a, save, BS);
    UNIT_EQ(catena_check(h), 0);
}

/* ... and damage to a chained object's spine (the root's entries). */
UNIT_TEST(t_check_detects_spine)
{
    catena_heap_t *h = mk(16 * 1024);
    checkerboard(h, slots, 8192);
    unsigned char *c = catena_alloc(h, 9 * BS);
    UNIT_ASSERT(c && !catena_is_contiguous(h, c));
    UNIT_EQ(catena_check(h), 0);
    unsigned char save[BS];
    memcpy(save, c, BS);
    memset(c, 0xFF, BS); /* no entries */
    UNIT_EQ(catena_check(h), CATENA_ECORRUPT);
    memset(c, 0, BS); /* entries naming block 0, not increasing */
    UNIT_EQ(catena_check(h), CATENA_ECORRUPT);
    memcpy(c, save, BS);
    UNIT_EQ(catena_check(h), 0);
    UNIT_EQ(catena_free(h, c), 0);
    UNIT_EQ(catena_check(h), 0);
}

UNIT_TEST(t_realloc_contiguous)
{
    catena_heap_t *h = mk(sizeof arena);
    unsigned char *p = catena_realloc(h, NULL, 2 * BS);
    UNIT_ASSERT(p);
    memset(p, 1, 2 * BS);
    unsigned char *q = catena_realloc(h, p, 8 * BS); /* next run free */
    UNIT_ASSERT(q == p && catena_size(h, q) == 8 * BS);
    UNIT_EQ(q[0], 1);
    q = catena_realloc(h, p, 3 * BS); /* shrink in place */
    UNIT_ASSERT(q == p && catena_size(h, q) == 3 * BS);
    UNIT_ASSERT(catena_realloc(h, p, 0) == NULL);
    UNIT_EQ(catena_last_error(h), CATENA_ESIZE);
    UNIT_ASSERT(catena_realloc(h, p, SIZE_MAX) == NULL);
    UNIT_EQ(catena_size(h, p), 3 * BS);
    UNIT_EQ(catena_check(h), 0);
}

UNIT_TEST(t_realloc_chains)
{
    catena_heap_t *h = mk(16 * 1024);
    void *blocker = NULL;
    unsigned char *p = catena_alloc(h, 2 * BS);
    blocker = catena_alloc(h, BS); /* stops in-place growth */
    (void)blocker;
    for (size_t i = 0; i < 2 * BS; i++)
        p[i] = (unsigned char)i;
    struct catena_stats s;
    st(h, &s);
    size_t free0 = s.free_blocks;
    /* growth makes it a chain: data not moved, new handle */
    void *c = catena_realloc(h, p, 10 * BS);
    UNIT_ASSERT(c && c != p && !catena_is_contiguous(h, c));
    UNIT_ASSERT(catena_ptr(h, c, 0, NULL) == p); /* same bytes, same place */
    UNIT_EQ(unit_byte(h, c, 2 * BS - 1), (2 * BS - 1) & 0xFF);
    UNIT_EQ(catena_size(h, c), 10 * BS);
    UNIT_EQ(catena_check(h), 0);
    st(h, &s);
    UNIT_EQ(free0 - s.free_blocks, 8 + 1); /* 8 data blocks and the root */
    /* further growth extends the last extent in place */
    void *c2 = catena_realloc(h, c, 30 * BS);
    UNIT_ASSERT(c2 == c);
    UNIT_EQ(catena_extents(h, c), 2);
    UNIT_EQ(catena_check(h), 0);
    /* shrink to one extent: contiguous again, same bytes */
    void *back = catena_realloc(h, c, BS);
    UNIT_ASSERT(back == p && catena_is_contiguous(h, back));
    UNIT_EQ(unit_byte(h, back, 5), 5);
    UNIT_EQ(catena_check(h), 0);
    st(h, &s);
    UNIT_EQ(s.chained_objects, 0);
    UNIT_EQ(s.spine_blocks, 0);
}

/* A chain grown a block at a time over one-block holes: each step adds an
 * extent at the spine's right edge, so the spine deepens (the root's
 * entries move down) and new branches start; then shrunk a block at a
 * time: the edge's nodes empty and go, and the root takes back a single
 * child.  The data and every invariant hold at each step. */
UNIT_TEST(t_chain_edge_grow_shrink)
{
    catena_heap_t *h = mk(16 * 1024);
    checkerboard(h, slots, 8192);
    unsigned char *p = catena_alloc(h, BS);
    UNIT_ASSERT(p);
    p[0] = 1;
    size_t d = 1, most = 0;
    for (; d < 96; d++) {
        unsigned char *q = catena_realloc(h, p, (d + 1) * BS);
        if (!q)
            break;
        p = q;
        catena_write_byte(h, p, d * BS, (uint8_t)(d + 1));
        if (catena_extents(h, p) > most)
            most = catena_extents(h, p);
        UNIT_EQ(catena_check(h), 0);
    }
    UNIT_ASSERT(most >= 64); /* a spine of several levels */
    for (; d > 1; d--) {
        p = catena_realloc(h, p, (d - 1) * BS);
        UNIT_ASSERT(p);
        UNIT_EQ(catena_size(h, p), (d - 1) * BS);
        for (size_t i = 0; i < d - 1; i++)
            UNIT_EQ(unit_byte(h, p, i * BS), (uint8_t)(i + 1));
        UNIT_EQ(catena_check(h), 0);
    }
    UNIT_ASSERT(catena_is_contiguous(h, p));
    UNIT_EQ(catena_free(h, p), CATENA_OK);
    UNIT_EQ(catena_check(h), 0);
}

UNIT_TEST(t_realloc_contig_and_flatten)
{
    catena_heap_t *h = mk(32 * 1024);
    size_t holes = checkerboard(h, slots, 8192);
    (void)holes;
    unsigned char *c = catena_alloc_flags(h, 12 * BS, CATENA_NOSCAN);
    UNIT_ASSERT(c && !catena_is_contiguous(h, c));
    for (size_t i = 0; i < 12 * BS; i++)
        catena_write_byte(h, c, i, (uint8_t)(i * 3));
    /* no run long enough: flatten fails and leaves the object alone */
    UNIT_ASSERT(catena_flatten(h, c) == NULL);
    UNIT_EQ(catena_last_error(h), CATENA_ENOMEM);
    UNIT_ASSERT(catena_realloc_contig(h, c, 12 * BS) == NULL);
    UNIT_EQ(unit_byte(h, c, 7), 21);
    /* free neighbours to make a run, then flatten */
    for (size_t i = 1; i < 200; i += 2)
        if (slots[i]) {
            catena_free(h, slots[i]);
            slots[i] = NULL;
        }
    UNIT_EQ(catena_check(h), 0);
    unsigned char *f = catena_flatten(h, c);
    UNIT_ASSERT(f && catena_is_contiguous(h, f));
    UNIT_EQ(catena_flags(h, f), CATENA_NOSCAN);
    for (size_t i = 0; i < 12 * BS; i++)
        UNIT_EQ(f[i], (uint8_t)(i * 3));
    UNIT_ASSERT(catena_flatten(h, f) == f);
    unsigned char *g = catena_realloc_contig(h, f, 20 * BS);
    UNIT_ASSERT(g && catena_is_contiguous(h, g));
    UNIT_EQ(g[12 * BS - 1], (uint8_t)((12 * BS - 1) * 3));
    UNIT_EQ(catena_check(h), 0);
}

UNIT_TEST(t_chaining_disabled)
{
    catena_heap_t *h = mk(16 * 1024);
    catena_set_chaining(h, false);
    checkerboard(h, slots, 8192);
    UNIT_ASSERT(catena_alloc(h, 4 * BS) == NULL);
    UNIT_EQ(catena_last_error(h), CATENA_ENOCHAIN);
    catena_set_chaining(h, true);
    UNIT_ASSERT(catena_alloc(h, 4 * BS) != NULL);
    UNIT_EQ(catena_check(h), 0);
}

static int lines;
static void count_line(void *ctx, const char *l)
{
    (void)ctx;
    UNIT_ASSERT(strlen(l) <= 64 + 10);
    lines++;
}

UNIT_TEST(t_dump_and_frag)
{
    catena_heap_t *h = mk(16 * 1024);
    UNIT_EQ(catena_frag(h), 0);
    lines = 0;
    catena_dump(h, count_line, NULL);
    struct catena_stats s;
    st(h, &s);
    UNIT_EQ((size_t)lines, (s.total_blocks + 63) / 64);
    checkerboard(h, slots, 8192);
    /* n equal runs: 1000 - 1000/sqrt(n) */
    st(h, &s);
    UNIT_ASSERT(catena_frag(h) > 900);
    UNIT_EQ(s.frag_permille, catena_frag(h));
}

/* catena_free_blocks is the stats' count, and its change across a call is
 * what the call took or gave back: the object's blocks when contiguous,
 * data + root + spine nodes when chained (the shim's accounting relies on
 * this instead of measuring objects). */
UNIT_TEST(t_free_blocks)
{
    catena_heap_t *h = mk(16 * 1024);
    struct catena_stats s;
    st(h, &s);
    size_t f0 = catena_free_blocks(h);
    UNIT_EQ(f0, s.free_blocks);
    void *p = catena_alloc(h, 5 * BS - 1);
    UNIT_EQ(f0 - catena_free_blocks(h), (size_t)5);
    p = catena_realloc(h, p, 9 * BS);
    UNIT_ASSERT(p != NULL);
    UNIT_EQ(f0 - catena_free_blocks(h), catena_size(h, p) / BS);
    UNIT_EQ(catena_free(h, p), 0);
    UNIT_EQ(catena_free_blocks(h), f0);
    /* a chained object: its data, its root and its spine */
    checkerboard(h, slots, 8192);
    size_t f1 = catena_free_blocks(h);
    void *c = catena_alloc(h, 40 * BS);
    UNIT_ASSERT(c != NULL && !catena_is_contiguous(h, c));
    st(h, &s);
    UNIT_EQ(catena_free_blocks(h), s.free_blocks);
    UNIT_EQ(f1 - catena_free_blocks(h), 40 + s.spine_blocks); /* root + nodes */
    UNIT_ASSERT(f1 - catena_free_blocks(h) <= catena_blocks_for(40 * BS));
    UNIT_EQ(catena_free(h, c), 0);
    UNIT_EQ(catena_free_blocks(h), f1);
    UNIT_EQ(catena_check(h), 0);
}

static size_t ranges, range_bytes;
static void count_range(void *ctx, void *p, size_t n)
{
    catena_heap_t *h = ctx;
    /* inside the heap's blocks, block-aligned, and really free memory:
     * freeing a pointer into it is a double free */
    UNIT_EQ(catena_free(h, p), CATENA_EFREE);
    UNIT_EQ((uintptr_t)p % BS, 0);
    memset(p, 0xEE, n); /* scribbling there must not hurt the heap */
    ranges++;
    range_bytes += n;
}

UNIT_TEST(t_free_ranges)
{
    catena_heap_t *h = mk(sizeof arena);
    struct catena_stats s;
    void *a = catena_alloc(h, 10 * BS), *b = catena_alloc(h, BS);
    void *c = catena_alloc(h, 40 * BS), *d = catena_alloc(h, BS);
    (void)b;
    (void)d;
    catena_free(h, a);
    catena_free(h, c);
    st(h, &s);
    ranges = range_bytes = 0;
    catena_free_ranges(h, 0, count_range, h);
    UNIT_EQ(ranges, 3); /* a's run, c's run, the tail of the heap */
    UNIT_EQ(range_bytes, (s.free_blocks - 2 * 3) * BS);
    UNIT_EQ(catena_check(h), 0);
    ranges = 0;
    catena_free_ranges(h, 20 * BS, count_range, h); /* not a's 8 blocks */
    UNIT_EQ(ranges, 2);
    UNIT_EQ(catena_check(h), 0);
    /* the heap still works over the scribbled memory */
    void *e = catena_alloc(h, 38 * BS);
    UNIT_ASSERT(e != NULL);
    memset(e, 1, 38 * BS);
    UNIT_EQ(catena_free(h, e), 0);
    UNIT_EQ(catena_check(h), 0);
}

UNIT_TEST(t_strerror)
{
    for (int e = 0; e < CATENA_NERR; e++)
        UNIT_ASSERT(strlen(catena_strerror(e)) > 3);
    UNIT_ASSERT(strcmp(catena_strerror(-1), "unknown error") == 0);
    UNIT_ASSERT(strcmp(catena_strerror(CATENA_NERR), "unknown error") == 0);
}

UNIT_TEST(t_two_heaps)
{
    /* independent heaps: a pointer of one is foreign to the other */
    static uint64_t a2[2048];
    catena_heap_t *h1 = mk(8192), *h2 = NULL;
    UNIT_EQ(catena_init(a2, sizeof a2, &h2), 0);
    void *p = catena_alloc(h1, 100), *q = catena_alloc(h2, 100);
    UNIT_EQ(catena_free(h2, p), CATENA_EFOREIGN);
    UNIT_EQ(catena_free(h1, q), CATENA_EFOREIGN);
    UNIT_EQ(catena_free(h1, p), 0);
    UNIT_EQ(catena_free(h2, q), 0);
    UNIT_EQ(catena_check(h1) | catena_check(h2), 0);
}

/* Issue 14: growing in place by catena_realloc_contig counts toward the
 * peak like any other growth, so the validator accepts the heap. */
UNIT_TEST(t_realloc_contig_peak)
{
    catena_heap_t *h = mk(sizeof arena);
    unsigned char *p = catena_alloc(h, 2 * BS);
    UNIT_ASSERT(p != NULL);
    unsigned char *q = catena_realloc_contig(h, p, 8 * BS); /* in place */
    UNIT_ASSERT(q == p);
    struct catena_stats s;
    st(h, &s);
    UNIT_EQ(s.used_blocks, 8);
    UNIT_EQ(s.peak_used, 8);
    UNIT_EQ(catena_check(h), 0);
    /* and a growth that moves */
    void *blocker = catena_alloc(h, BS);
    UNIT_ASSERT(blocker != NULL);
    q = catena_realloc_contig(h, q, 12 * BS);
    UNIT_ASSERT(q != NULL && q != p);
    st(h, &s);
    UNIT_EQ(s.used_blocks, 13);
    UNIT_EQ(s.peak_used, 8 + 1 + 12); /* the copy and the old object */
    UNIT_EQ(catena_check(h), 0);
}

/* Issue 14: a grow that fails for want of free blocks is CATENA_ENOMEM
 * whatever the chaining policy, as catena_alloc reports in that state;
 * CATENA_ENOCHAIN only when the blocks are there but not in one run. */
UNIT_TEST(t_realloc_enomem_unchained)
{
    catena_heap_t *h = mk(16 * 1024);
    catena_set_chaining(h, false);
    void *p = catena_alloc(h, BS);
    UNIT_ASSERT(p != NULL);
    void *blocker = catena_alloc(h, BS);
    UNIT_ASSERT(blocker != NULL);
    void *far = NULL, *q;
    while ((q = catena_alloc(h, BS)))
        far = q;
    UNIT_ASSERT(far != NULL);
    struct catena_stats s;
    st(h, &s);
    UNIT_EQ(s.free_blocks, 0);
    UNIT_ASSERT(catena_alloc(h, 2 * BS) == NULL);
    UNIT_EQ(catena_last_error(h), CATENA_ENOMEM);
    UNIT_ASSERT(catena_realloc(h, p, 2 * BS) == NULL);
    UNIT_EQ(catena_last_error(h), CATENA_ENOMEM);
    UNIT_ASSERT(catena_realloc_contig(h, p, 2 * BS) == NULL);
    UNIT_EQ(catena_last_error(h), CATENA_ENOMEM);
    /* one block free, away from p: too few for two more blocks (ENOMEM),
     * enough for one if chaining were on (ENOCHAIN) */
    UNIT_EQ(catena_free(h, far), 0);
    UNIT_ASSERT(catena_realloc(h, p, 3 * BS) == NULL);
    UNIT_EQ(catena_last_error(h), CATENA_ENOMEM);
    UNIT_ASSERT(catena_realloc(h, p, 2 * BS) == NULL);
    UNIT_EQ(catena_last_error(h), CATENA_ENOCHAIN);
    UNIT_EQ(catena_size(h, p), BS);
    UNIT_EQ(catena_check(h), 0);
}

/* Every query's answer for a pointer that is not a live handle, and the
 * error it records although it takes a const heap. */
UNIT_TEST(t_invalid_handles)
{
    catena_heap_t *h = mk(16 * 1024);
    void *p = catena_alloc(h, 3 * BS), *q = catena_alloc(h, 2 * BS);
    UNIT_ASSERT(p && q);
    UNIT_EQ(catena_free(h, p), 0);
    UNIT_EQ(catena_size(h, p), 0);
    UNIT_EQ(catena_last_error(h), CATENA_EFREE);
    UNIT_EQ(catena_extents(h, (char *)p + 1), 0);
    UNIT_EQ(catena_last_error(h), CATENA_EFREE);
    UNIT_ASSERT(!catena_is_contiguous(h, NULL));
    UNIT_EQ(catena_last_error(h), CATENA_EFOREIGN);
    UNIT_EQ(catena_flags(h, (char *)q + BS), 0);
    UNIT_EQ(catena_last_error(h), CATENA_EINTERIOR);
    catena_iter_t it;
    void *sp;
    size_t sl;
    catena_iter_init(&it, h, (char *)q + 1);
    UNIT_EQ(catena_last_error(h), CATENA_EINTERIOR);
    UNIT_ASSERT(!catena_iter_next(&it, &sp, &sl));
    UNIT_ASSERT(catena_flatten(h, NULL) == NULL);
    UNIT_EQ(catena_last_error(h), CATENA_EFOREIGN);
    UNIT_ASSERT(catena_ptr(h, p, 0, NULL) == NULL);
    UNIT_EQ(catena_last_error(h), CATENA_EFREE);
    UNIT_EQ(catena_check(h), 0);
}

/* A free run's header overwritten by the program (an overflow out of the
 * object before it, a write after free): the next call that would follow
 * its links reports CATENA_ECORRUPT instead of writing through them, and
 * the heap stays refused from then on. */
UNIT_TEST(t_corrupt_free_run)
{
    if (!CATENA_SCAN && !CATENA_RUN_CHECKS)
        return;
    if (CATENA_SCAN) {
        /* With lib/scan.c (--enable-scan) free runs have no header: the
         * same writes into a free run change nothing the heap reads. */
        catena_heap_t *h = mk(16 * 1024);
        char *a = catena_alloc(h, 2 * BS), *b = catena_alloc(h, 2 * BS);
        char *c = catena_alloc(h, 2 * BS);
        UNIT_ASSERT(a && b && c);
        UNIT_EQ(catena_free(h, b), 0);
        memset(a + 2 * BS, 0x41, 2 * BS);
        UNIT_EQ(catena_check(h), 0);
        UNIT_ASSERT(catena_realloc(h, a, 3 * BS) == a);
        UNIT_ASSERT(catena_alloc(h, BS) != NULL);
        UNIT_EQ(catena_free(h, c), 0);
        UNIT_EQ(catena_check(h), 0);
        return;
    }
    /* objects too long to be parked: b's run goes to the index */
    for (int way = 0; way < 3; way++) {
        catena_heap_t *h = mk(16 * 1024);
        catena_set_hook(h, hook, NULL);
        char *a = catena_alloc(h, 16 * BS), *b = catena_alloc(h, 16 * BS);
        char *c = catena_alloc(h, 16 * BS);
        UNIT_ASSERT(a && b && c);
        UNIT_EQ(catena_free(h, b), 0);
        memset(a + 16 * BS, 0x41, 8); /* 8 bytes past a: b's header */
        hook_err = 0;
        if (way == 0) { /* the allocation that would take b's run */
            UNIT_ASSERT(catena_alloc(h, 16 * BS) == NULL);
        } else if (way == 1) { /* a free that would merge with it */
            UNIT_EQ(catena_free(h, a), CATENA_ECORRUPT);
        } else { /* growing a into it */
            UNIT_ASSERT(catena_realloc(h, a, 17 * BS) == NULL);
        }
        UNIT_EQ(catena_last_error(h), CATENA_ECORRUPT);
        UNIT_EQ(hook_err, CATENA_ECORRUPT);
        /* refused from then on, and the validator agrees */
        UNIT_EQ(catena_free(h, c), CATENA_ECORRUPT);
        UNIT_ASSERT(catena_alloc(h, BS) == NULL);
        UNIT_EQ(catena_check(h), CATENA_ECORRUPT);
    }
}

/* One field of a free run's header overwritten with a value that stays
 * inside the heap (so only the header check can tell): the allocation
 * that takes the run as its class's first and the free that merges with
 * it from either side report CATENA_ECORRUPT before writing through it.  Fields in
 * order: next, prev, len (lib/catena_int.h, struct run_hdr). */
#if CATENA_INDEX_BITS == 32
typedef uint32_t hdr_word;
#else
typedef uint16_t hdr_word;
#endif
UNIT_TEST(t_corrupt_free_run_fields)
{
    if (CATENA_SCAN || !CATENA_RUN_CHECKS) /* no headers to overwrite
        (t_corrupt_free_run checks that writes into a free run are harmless
        there), or no check */
        return;
    for (int field = 0; field < 3; field++) {
        for (int way = 0; way < 3; way++) {
            catena_heap_t *h = mk(16 * 1024);
            catena_set_hook(h, hook, NULL);
            char *a = catena_alloc(h, 16 * BS), *b = catena_alloc(h, 16 * BS);
            char *c = catena_alloc(h, 16 * BS), *d = catena_alloc(h, 16 * BS);
            UNIT_ASSERT(a && b && c && d);
            UNIT_EQ(catena_free(h, b), 0); /* alone in its class */
            hdr_word *w = (hdr_word *)(void *)b;
            /* next: another block's start; prev: the run before;
             * len: one block longer, in the same class (16-17 blocks),
             * so only the footer shows it */
            w[field] = (hdr_word)(field == 2 ? w[2] + 1 : 1);
            hook_err = 0;
            if (way == 0)
                UNIT_ASSERT(catena_alloc(h, 16 * BS) == NULL);
            else if (way == 1) /* b is the right neighbour */
                UNIT_EQ(catena_free(h, a), CATENA_ECORRUPT);
            else /* the left one, found by its footer (which a wrong len
                    moves: then c is not merged, and only the validator
                    sees the two adjacent free runs) */
                UNIT_EQ(catena_free(h, c), field == 2 ? 0 : CATENA_ECORRUPT);
            if (way == 2 && field == 2) {
                UNIT_EQ(catena_check(h), CATENA_ECORRUPT);
                continue;
            }
            UNIT_EQ(catena_last_error(h), CATENA_ECORRUPT);
            UNIT_EQ(hook_err, CATENA_ECORRUPT);
            UNIT_EQ(catena_check(h), CATENA_ECORRUPT);
        }
    }
}

/* Parked runs (lib/park.c: freed objects of up to 8 blocks kept by
 * length on a heap that chains) are free memory to every entry point: a
 * second free is a double free, and the object calls fail as on any
 * freed object. */
UNIT_TEST(t_parked_is_free)
{
    catena_heap_t *h = mk(16 * 1024);
    catena_set_hook(h, hook, NULL);
    char *p = catena_alloc(h, 2 * BS), *g = catena_alloc(h, BS);
    char *q = catena_alloc(h, BS), *g2 = catena_alloc(h, BS);
    UNIT_ASSERT(p && g && q && g2);
    size_t f0 = catena_free_blocks(h);
    UNIT_EQ(catena_free(h, p), 0);
    UNIT_EQ(catena_free(h, q), 0);
    UNIT_EQ(catena_free_blocks(h), f0 + 3); /* parked blocks are free */
    UNIT_EQ(catena_check(h), 0);
    UNIT_EQ(catena_free(h, p), CATENA_EFREE); /* double free */
    UNIT_EQ(hook_err, CATENA_EFREE);
    UNIT_EQ(catena_free(h, q), CATENA_EFREE);
    UNIT_EQ(catena_free(h, p + BS), CATENA_EFREE); /* inside a parked run */
    UNIT_EQ(catena_free(h, p + 1), CATENA_EFREE);
    UNIT_EQ(catena_size(h, p), 0);
    UNIT_EQ(catena_last_error(h), CATENA_EFREE);
    UNIT_ASSERT(catena_realloc(h, p, 3 * BS) == NULL);
    UNIT_EQ(catena_last_error(h), CATENA_EFREE);
    UNIT_ASSERT(catena_realloc_contig(h, q, 3 * BS) == NULL);
    UNIT_EQ(catena_last_error(h), CATENA_EFREE);
    UNIT_EQ(catena_write(h, p, 0, "x", 1), CATENA_EFREE);
    UNIT_ASSERT(catena_ptr(h, q, 0, NULL) == NULL);
    UNIT_EQ(catena_last_error(h), CATENA_EFREE);
    struct catena_stats s;
    st(h, &s);
    UNIT_EQ(s.objects, 2);
    UNIT_EQ(s.frees, 2);
    UNIT_EQ(catena_check(h), 0);
    /* the same lengths come back as live objects, and free again */
    char *p2 = catena_alloc(h, 2 * BS), *q2 = catena_alloc(h, BS);
    UNIT_ASSERT(p2 && q2);
    UNIT_EQ(catena_size(h, p2), 2 * BS);
    UNIT_EQ(catena_write(h, p2, 0, "xy", 2), 0);
    UNIT_EQ(catena_free_blocks(h), f0);
    UNIT_EQ(catena_check(h), 0);
    UNIT_EQ(catena_free(h, p2), 0);
    UNIT_EQ(catena_free(h, p2), CATENA_EFREE);
    UNIT_EQ(catena_free(h, q2), 0);
    UNIT_EQ(catena_free(h, g), 0);
    UNIT_EQ(catena_free(h, g2), 0);
    UNIT_EQ(catena_check(h), 0);
    UNIT_EQ(catena_free_blocks(h), catena_arena_blocks((uintptr_t)arena,
                                                        16 * 1024));
}

/* A random history of mostly short objects (the ones parked), with some
 * long ones, resizes, flags and switches of the chaining policy (which
 * flushes): the validator passes after every step, an object keeps its
 * bytes, and freeing everything gives back every block. */
UNIT_TEST(t_parked_random_check)
{
    unsigned long rounds = UNIT_ITERS(20);
    for (unsigned long r = 0; r < rounds; r++) {
        unit_seed(r * 31 + 7);
        catena_heap_t *h = mk(16 * 1024);
        size_t total = catena_free_blocks(h), n = 128;
        unsigned char tag[128] = {0};
        memset(slots, 0, n * sizeof slots[0]);
        for (int step = 0; step < 3000; step++) {
            size_t i = unit_below(n);
            if (slots[i]) {
                uint8_t b = 0;
                UNIT_EQ(catena_read_byte(h, slots[i], 0, &b), 0);
                UNIT_EQ(b, tag[i]);
                if (unit_below(8) == 0) {
                    void *q = catena_realloc(h, slots[i],
                                             1 + unit_below(12 * BS));
                    if (q)
                        slots[i] = q;
                } else {
                    UNIT_EQ(catena_free(h, slots[i]), 0);
                    slots[i] = NULL;
                }
            } else {
                size_t sz = unit_below(10) ? 1 + unit_below(8 * BS)
                                           : 1 + unit_below(64 * BS);
                slots[i] = unit_below(6) ? catena_alloc(h, sz)
                                         : catena_alloc_flags(h, sz,
                                                              CATENA_NOSCAN);
                if (slots[i]) {
                    tag[i] = (unsigned char)unit_below(256);
                    UNIT_EQ(catena_write_byte(h, slots[i], 0, tag[i]), 0);
                }
            }
            if (unit_below(500) == 0) {
                catena_set_chaining(h, false);
                UNIT_EQ(catena_check(h), 0);
                catena_set_chaining(h, true);
            }
            UNIT_EQ(catena_check(h), 0);
        }
        for (size_t i = 0; i < n; i++)
            if (slots[i]) {
                UNIT_EQ(catena_free(h, slots[i]), 0);
                slots[i] = NULL;
            }
        UNIT_EQ(catena_check(h), 0);
        UNIT_EQ(catena_free_blocks(h), total);
        struct catena_stats s;
        st(h, &s);
        /* seen as a flush would leave it: one run again */
        UNIT_EQ(s.free_runs, 1);
        UNIT_EQ(s.largest_free_run, total);
        UNIT_EQ(s.frag_permille, 0);
    }
}

/* ---- park2: the hit paths' checks and derived counters --------------- */
/* White box for a parked run's header (struct park_hdr, park_chk). */
#include "../lib/catena_int.h"

/* The pop checks a parked run's check word before its link becomes the
 * list's head, and the head's range before its block is read: a write
 * after free into a run that is not the head is reported by the pop that
 * reaches it, and even a forged matching pair pointing out of the heap
 * is reported by the next pop instead of being followed. */
UNIT_TEST(t_parked_link_checks)
{
    if (!CATENA_PARKING)
        return;
    for (int way = 0; way < 2; way++) {
        catena_heap_t *h = mk(16 * 1024);
        catena_set_hook(h, hook, NULL);
        char *a = catena_alloc(h, 2 * BS), *b = catena_alloc(h, 2 * BS);
        char *c = catena_alloc(h, 2 * BS), *e = catena_alloc(h, 2 * BS);
        UNIT_ASSERT(a && b && c && e);
        UNIT_EQ(catena_free(h, b), 0);
        UNIT_EQ(catena_free(h, c), 0); /* the list of 2: c, b */
        struct park_hdr *pb = (struct park_hdr *)(void *)b;
        if (way == 0) { /* b's link spoiled, its check word not */
            pb->next = (cidx)(pb->next ^ 1u);
        } else { /* a matching pair that leads out of the heap */
            pb->next = (cidx)(h->nblocks + 3);
            pb->chk = park_chk(pb->next, 2);
        }
        UNIT_EQ(catena_check(h), CATENA_ECORRUPT);
        hook_err = 0;
        UNIT_ASSERT(catena_alloc(h, 2 * BS) == c); /* c's link is sound */
        if (way == 1) /* b's pair matches: the pop after it reports */
            UNIT_ASSERT(catena_alloc(h, 2 * BS) == b);
        UNIT_ASSERT(catena_alloc(h, 2 * BS) == NULL);
        UNIT_EQ(catena_last_error(h), CATENA_ECORRUPT);
        UNIT_EQ(hook_err, CATENA_ECORRUPT);
        /* refused from then on; the statistics follow no link */
        UNIT_EQ(catena_free(h, e), CATENA_ECORRUPT);
        UNIT_ASSERT(catena_alloc(h, BS) == NULL);
        struct catena_stats s;
        st(h, &s);
        UNIT_EQ(catena_check(h), CATENA_ECORRUPT);
    }
}

/* The peak of use and the live objects are derived (the fewest free
 * blocks so far; allocs - frees - released otherwise) and stay exact
 * through parks, pops, index allocations and moves. */
UNIT_TEST(t_parked_counters_exact)
{
    catena_heap_t *h = mk(16 * 1024);
    struct catena_stats s;
    st(h, &s);
    size_t used0 = s.used_blocks, peak = used0;
    char *p = catena_alloc(h, 3 * BS), *q = catena_alloc(h, 2 * BS);
    UNIT_ASSERT(p && q);
    peak += 5;
    st(h, &s);
    UNIT_EQ(s.peak_used, peak);
    UNIT_EQ(s.objects, 2);
    UNIT_EQ(catena_free(h, p), 0);
    UNIT_EQ(catena_free(h, q), 0);
    st(h, &s);
    UNIT_EQ(s.used_blocks, used0);
    UNIT_EQ(s.peak_used, peak);
    UNIT_EQ(s.objects, 0);
    char *q2 = catena_alloc(h, 2 * BS), *p2 = catena_alloc(h, 3 * BS);
    UNIT_ASSERT(q2 && p2);
    st(h, &s);
    UNIT_EQ(s.used_blocks, used0 + 5);
    UNIT_EQ(s.peak_used, peak); /* the pops reached the old peak only */
    char *r = catena_alloc(h, BS), *g = catena_alloc(h, BS);
    UNIT_ASSERT(r && g);
    st(h, &s);
    UNIT_EQ(s.peak_used, peak + 2);
    UNIT_EQ(s.objects, 4);
    /* a move keeps the count: one object, copied, the old one freed
     * (g keeps r from growing in place) */
    char *m = catena_realloc_contig(h, r, 20 * BS);
    UNIT_ASSERT(m && m != r);
    st(h, &s);
    UNIT_EQ(s.objects, 4);
    UNIT_EQ(s.allocs, 6);
    UNIT_EQ(s.frees, 2);
    UNIT_EQ(s.peak_used, peak + 2 + 20); /* the copy and the old */
    UNIT_EQ(catena_free(h, q2), 0);
    UNIT_EQ(catena_free(h, q2), CATENA_EFREE); /* not counted */
    st(h, &s);
    UNIT_EQ(s.objects, 3);
    UNIT_EQ(s.frees, 3);
    UNIT_EQ(catena_check(h), 0);
}
/* ---- end park2 ---------------------------------------------------------- */


/* Fill the heap with 1-block objects into keep[] (at most max), free
 * every other one (keep[] gets NULL there): the free space is all 1-block
 * holes.  Returns the number of entries of keep[] (with its NULLs). */
static size_t checker_all(catena_heap_t *h, void **keep, size_t max)
{
    size_t n = 0;
    void *p;
    while (n < max && (p = catena_alloc(h, 1)))
        keep[n++] = p;
    for (size_t i = 0; i < n; i += 2) {
        UNIT_EQ(catena_free(h, keep[i]), 0);
        keep[i] = NULL;
    }
    return n;
}

/* Free a batch and the rest of a checkerboard: nothing is left. */
static void free_both(catena_heap_t *h, void **out, size_t got, void **keep,
                      size_t n)
{
    UNIT_EQ(catena_check(h), 0);
    UNIT_EQ(catena_free_many(h, out, got), CATENA_OK);
    UNIT_EQ(catena_free_many(h, keep, n), CATENA_OK);
    UNIT_EQ(catena_check(h), 0);
    struct catena_stats s;
    st(h, &s);
    UNIT_EQ(s.objects, 0);
}

static void *bat[8192];

/* catena_alloc_many with chaining off (no parking): one run of count * d
 * blocks cut into adjacent objects; counted as allocs; partial success
 * when the heap runs out; the errors of a refused batch. */
UNIT_TEST(t_alloc_many)
{
    catena_heap_t *h = mk(16 * 1024);
    catena_set_chaining(h, false);
    catena_set_hook(h, hook, NULL);
    void **out = bat;
    struct catena_stats s0, s;
    st(h, &s0);
    size_t got = catena_alloc_many(h, 2 * BS - 1, out, 8);
    UNIT_EQ(got, 8);
    for (size_t j = 0; j < got; j++) {
        UNIT_ASSERT(catena_is_contiguous(h, out[j]));
        UNIT_EQ(catena_size(h, out[j]), 2 * BS);
        if (j) /* one run, cut in address order */
            UNIT_ASSERT((char *)out[j] == (char *)out[j - 1] + 2 * BS);
        memset(out[j], (int)j, 2 * BS);
    }
    st(h, &s);
    UNIT_EQ(s.objects, 8);
    UNIT_EQ(s.allocs, s0.allocs + 8);
    UNIT_EQ(s.used_blocks, 16);
    UNIT_EQ(s.peak_used, 16);
    UNIT_EQ(s.free_runs, 1);
    UNIT_EQ(catena_check(h), 0);
    /* errors: nothing changes */
    hook_calls = 0;
    UNIT_EQ(catena_alloc_many(h, 0, out, 4), 0);
    UNIT_EQ(hook_err, CATENA_ESIZE);
    UNIT_EQ(catena_alloc_many(h, 16, out, 0), 0);
    UNIT_EQ(hook_err, CATENA_ESIZE);
    UNIT_EQ(catena_alloc_many(h, 16, NULL, 4), 0);
    UNIT_EQ(hook_err, CATENA_EINVAL);
    UNIT_EQ(catena_alloc_many(NULL, 16, out, 4), 0);
    UNIT_EQ(hook_calls, 3); /* (no heap: no hook; ELOCKED: test_model) */
    st(h, &s);
    UNIT_EQ(s.objects, 8);
    UNIT_EQ(catena_check(h), 0);
    /* more than the heap holds: every free block, then a partial result
     * without an error */
    size_t left = catena_free_blocks(h);
    hook_calls = 0;
    got = catena_alloc_many(h, BS, out + 8, 8192 - 8);
    UNIT_EQ(got, left);
    UNIT_EQ(hook_calls, 0);
    UNIT_EQ(catena_free_blocks(h), 0);
    UNIT_EQ(catena_check(h), 0);
    /* a full heap: ENOMEM, as catena_alloc */
    UNIT_EQ(catena_alloc_many(h, BS, out, 1), 0);
    UNIT_EQ(hook_err, CATENA_ENOMEM);
    for (size_t j = 0; j < 8; j++) /* the bytes survived */
        UNIT_EQ(((unsigned char *)out[j])[BS], j);
    UNIT_EQ(catena_free_many(h, out, 8 + got), CATENA_OK);
    st(h, &s);
    UNIT_EQ(s.objects, 0);
    UNIT_EQ(s.frees, s0.frees + 8 + got);
    UNIT_EQ(s.free_runs, 1);
    UNIT_EQ(catena_check(h), 0);
}

/* A fragmented heap: runs too short for the batch, the batch takes the
 * runs it finds (halving), and chaining off refuses a size no run holds
 * with ENOCHAIN. */
UNIT_TEST(t_alloc_many_fragmented)
{
    catena_heap_t *h = mk(16 * 1024);
    catena_set_chaining(h, false);
    catena_set_hook(h, hook, NULL);
    void **keep = slots, **out = bat;
    size_t n = checker_all(h, keep, 8192); /* free runs of one block */
    UNIT_ASSERT(n > 8);
    size_t f = catena_free_blocks(h);
    UNIT_EQ(catena_alloc_many(h, 2 * BS, out, 4), 0);
    UNIT_EQ(hook_err, CATENA_ENOCHAIN);
    size_t got = catena_alloc_many(h, BS, out, 8192);
    UNIT_EQ(got, f);
    free_both(h, out, got, keep, n);
    struct catena_stats s;
    st(h, &s);
    UNIT_EQ(s.free_runs, 1);
}

/* catena_free_many: adjacent objects in either order merge; a bad handle
 * (foreign, interior, given twice) is reported under catena_free and
 * skipped, the others freed; NULL entries skipped. */
UNIT_TEST(t_free_many)
{
    catena_heap_t *h = mk(16 * 1024);
    catena_set_chaining(h, false);
    catena_set_hook(h, hook, NULL);
    void *o[8];
    UNIT_EQ(catena_alloc_many(h, 3 * BS, o, 8), 8);
    void *guard = catena_alloc(h, BS);
    struct catena_stats s0, s;
    st(h, &s0);
    /* descending, with a NULL, a duplicate and an interior pointer */
    int x;
    void *batch[] = {o[3], o[2], NULL, o[1], o[2], (char *)o[0] + BS, &x};
    hook_calls = 0;
    UNIT_EQ(catena_free_many(h, batch, 7), CATENA_EFREE);
    UNIT_EQ(hook_calls, 3);
    UNIT_EQ(hook_err, CATENA_EFOREIGN); /* the last one reported */
    st(h, &s);
    UNIT_EQ(s.objects, s0.objects - 3);
    UNIT_EQ(s.frees, s0.frees + 3);
    UNIT_EQ(s.free_runs, s0.free_runs + 1); /* o[1..3]: one run */
    UNIT_EQ(catena_check(h), 0);
    UNIT_EQ(catena_size(h, o[0]), 3 * BS); /* untouched */
    /* ascending, merging with the free run before them */
    UNIT_EQ(catena_free_many(h, o + 4, 4), CATENA_OK);
    UNIT_EQ(catena_check(h), 0);
    st(h, &s);
    UNIT_EQ(s.free_runs, s0.free_runs + 1);
    UNIT_EQ(catena_free_many(h, o, 1), CATENA_OK);
    UNIT_EQ(catena_free(h, guard), CATENA_OK);
    st(h, &s);
    UNIT_EQ(s.objects, 0);
    UNIT_EQ(s.free_runs, 1);
    UNIT_EQ(catena_free_many(h, NULL, 0), CATENA_OK);
    UNIT_EQ(catena_free_many(h, NULL, 1), CATENA_EINVAL);
    UNIT_EQ(catena_check(h), 0);
}

/* A heap that parks (chaining on): the batch takes parked runs of its
 * length first, chains where no run holds an object, and catena_free_many
 * parks as catena_free does. */
UNIT_TEST(t_alloc_many_parking)
{
    catena_heap_t *h = mk(16 * 1024);
    void *o[16], *out[64];
    UNIT_EQ(catena_alloc_many(h, 2 * BS, o, 16), 16);
    for (size_t j = 0; j < 16; j += 2) /* every other: parked */
        UNIT_EQ(catena_free(h, o[j]), 0);
    UNIT_EQ(catena_check(h), 0);
    size_t got = catena_alloc_many(h, 2 * BS, out, 8);
    UNIT_EQ(got, 8);
    for (size_t j = 0; j < got; j++) { /* the parked runs came back */
        bool found = false;
        for (size_t i = 0; i < 16; i += 2)
            found = found || out[j] == o[i];
        UNIT_ASSERT(found);
    }
    UNIT_EQ(catena_check(h), 0);
    UNIT_EQ(catena_free_many(h, out, got), CATENA_OK);
    UNIT_EQ(catena_check(h), 0);
    for (size_t j = 1; j < 16; j += 2)
        UNIT_EQ(catena_free(h, o[j]), 0);
    /* fragmented with chaining on: objects longer than any run chain */
    void **keep = slots;
    size_t n = checker_all(h, keep, 8192);
    got = catena_alloc_many(h, 3 * BS, out, 4);
    UNIT_EQ(got, 4);
    for (size_t j = 0; j < got; j++)
        UNIT_ASSERT(!catena_is_contiguous(h, out[j]));
    free_both(h, out, got, keep, n);
}

/* A random history of batches and single calls, both policies: the
 * validator passes after every step, bytes survive, and freeing
 * everything gives back every block. */
UNIT_TEST(t_batch_random_check)
{
    unsigned long rounds = UNIT_ITERS(10);
    for (unsigned long r = 0; r < rounds; r++) {
        unit_seed(r * 17 + 3);
        catena_heap_t *h = mk(16 * 1024);
        catena_set_chaining(h, r % 2 == 0);
        size_t total = catena_free_blocks(h), n = 128;
        unsigned char tag[128] = {0};
        memset(slots, 0, n * sizeof slots[0]);
        for (int step = 0; step < 1500; step++) {
            size_t i = unit_below(n), c = 1 + unit_below(12), empty = 0;
            if (c > n - i)
                c = n - i;
            for (size_t j = 0; j < n; j++)
                empty += slots[j] == NULL;
            void *b[12];
            size_t m = 0;
            if (unit_below(2)) { /* free the live ones of slots[i..i+c) */
                for (size_t j = i; j < i + c; j++) {
                    if (slots[j]) {
                        uint8_t v = 0;
                        UNIT_EQ(catena_read_byte(h, slots[j], 0, &v), 0);
                        UNIT_EQ(v, tag[j]);
                        b[m++] = slots[j];
                        slots[j] = NULL;
                    }
                }
                UNIT_EQ(catena_free_many(h, b, m), 0);
            } else {
                size_t sz = 1 + unit_below(unit_below(4) ? 4 * BS : 40 * BS);
                size_t got = catena_alloc_many(h, sz, b,
                                               c < empty ? c : empty);
                for (size_t j = i, k = 0; k < got; j = (j + 1) % n) {
                    if (slots[j])
                        continue;
                    slots[j] = b[k++];
                    tag[j] = (unsigned char)unit_below(256);
                    UNIT_EQ(catena_write_byte(h, slots[j], 0, tag[j]), 0);
                    UNIT_EQ(catena_size(h, slots[j]),
                            (sz + BS - 1) / BS * BS);
                }
            }
            UNIT_EQ(catena_check(h), 0);
        }
        size_t m = 0;
        for (size_t j = 0; j < n; j++)
            if (slots[j])
                slots[m++] = slots[j];
        UNIT_EQ(catena_free_many(h, slots, m), 0);
        UNIT_EQ(catena_check(h), 0);
        UNIT_EQ(catena_free_blocks(h), total);
    }
}

static const unit_case cases[] = {
    UNIT_CASE(t_parked_is_free), UNIT_CASE(t_parked_random_check),
    UNIT_CASE(t_alloc_many), UNIT_CASE(t_alloc_many_fragmented),
    UNIT_CASE(t_free_many), UNIT_CASE(t_alloc_many_parking),
    UNIT_CASE(t_batch_random_check),
    UNIT_CASE(t_corrupt_free_run_fields),
    UNIT_CASE(t_init_geometry),   UNIT_CASE(t_init_bad),
    UNIT_CASE(t_alloc_contiguous), UNIT_CASE(t_alloc_zero_flag),
    UNIT_CASE(t_alloc_bad),       UNIT_CASE(t_flags),
    UNIT_CASE(t_chain_basic),     UNIT_CASE(t_access),
    UNIT_CASE(t_free_bad),        UNIT_CASE(t_corrupt_handle),
    UNIT_CASE(t_check_detects),   UNIT_CASE(t_check_detects_spine),
    UNIT_CASE(t_realloc_contiguous),
    UNIT_CASE(t_realloc_chains),  UNIT_CASE(t_chain_edge_grow_shrink),
    UNIT_CASE(t_realloc_contig_and_flatten),
    UNIT_CASE(t_chaining_disabled), UNIT_CASE(t_dump_and_frag), UNIT_CASE(t_free_blocks),
    UNIT_CASE(t_strerror),        UNIT_CASE(t_two_heaps),
    UNIT_CASE(t_free_ranges),     UNIT_CASE(t_realloc_contig_peak),
    UNIT_CASE(t_realloc_enomem_unchained), UNIT_CASE(t_invalid_handles),
    UNIT_CASE(t_corrupt_free_run),
    UNIT_CASE(t_parked_link_checks), UNIT_CASE(t_parked_counters_exact),
};
UNIT_MAIN("core", cases)
