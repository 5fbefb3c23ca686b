/*
 * test_mpheap.c - tests of the MicroPython-style baseline heap (bench/).
 */
#include "mpheap.h"
#include "unit.h"

#include <stdbool.h>

static const size_t sizes[2] = {16u, 32u};

static void *arena_new(size_t size)
{
    void *a = malloc(size);
    UNIT_ASSERT(a != NULL);
    return a;
}

static mp_heap_t *heap_new(void *arena, size_t size, size_t bs)
{
    mp_heap_t *h = mp_heap_init(arena, size, bs);
    UNIT_ASSERT(h != NULL);
    return h;
}

static struct mp_stats stats(mp_heap_t *h)
{
    struct mp_stats st;
    mp_stats(h, &st);
    return st;
}

static void gc(mp_heap_t *h, void **roots, size_t n)
{
    mp_collect_start(h);
    mp_collect_root(h, roots, n);
    mp_collect_end(h);
}

/* Bytes that never form a block-aligned word: the conservative collector
 * must not mistake test data for pointers. */
static uint8_t pat(unsigned seed, size_t i)
{
    return (uint8_t)((seed * 31u + i * 13u) | 1u);
}

static void fill(void *p, size_t n, unsigned seed)
{
    for (size_t i = 0; i < n; i++)
        ((uint8_t *)p)[i] = pat(seed, i);
}

static bool check(const void *p, size_t n, unsigned seed)
{
    for (size_t i = 0; i < n; i++)
        if (((const uint8_t *)p)[i] != pat(seed, i))
            return false;
    return true;
}

static bool is_zero(const void *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (((const uint8_t *)p)[i] != 0)
            return false;
    return true;
}

/* ---- init, basics ---------------------------------------------------- */

UNIT_TEST(t_init)
{
    size_t size = 4096;
    uint8_t *a = arena_new(size + 64);
    UNIT_ASSERT(mp_heap_init(NULL, size, 16) == NULL);
    UNIT_ASSERT(mp_heap_init(a + 1, size, 16) == NULL);
    UNIT_ASSERT(mp_heap_init(a, size, 8) == NULL);
    UNIT_ASSERT(mp_heap_init(a, size, 64) == NULL);
    UNIT_ASSERT(mp_heap_init(a, 16, 16) == NULL);
    UNIT_ASSERT(mp_heap_init(a, sizeof(void *) * 40, 32) == NULL);
    for (int k = 0; k < 2; k++) {
        size_t bs = sizes[k];
        mp_heap_t *h = heap_new(a, size, bs);
        UNIT_ASSERT((void *)h == (void *)a);
        struct mp_stats st = stats(h);
        UNIT_EQ(st.block_size, bs);
        UNIT_EQ(st.free_blocks, st.total_blocks);
        UNIT_EQ(st.largest_free_run, st.total_blocks);
        UNIT_EQ(st.free_runs, 1);
        UNIT_EQ(st.objects, 0);
        /* Tables cost 3/8 byte per block: most of the arena is blocks. */
        UNIT_ASSERT(st.total_blocks * bs <= size);
        UNIT_ASSERT(size - st.total_blocks * bs <= 1024u);
        /* Every block is usable, and the last one ends inside the arena. */
        uint8_t *p = mp_alloc(h, st.total_blocks * bs, 0);
        UNIT_ASSERT(p != NULL);
        UNIT_ASSERT(p > a && p + st.total_blocks * bs <= a + size);
        UNIT_EQ((uintptr_t)p % bs, 0);
        UNIT_ASSERT(mp_alloc(h, 1, 0) == NULL);
    }
    /* The smallest arena that works holds exactly one block. */
    size_t lo = 16;
    while (mp_heap_init(a, lo, 16) == NULL)
        lo++;
    UNIT_EQ(stats(mp_heap_init(a, lo, 16)).total_blocks, 1);
    free(a);
}

UNIT_TEST(t_basic)
{
    for (int k = 0; k < 2; k++) {
        size_t bs = sizes[k], size = 8192;
        void *a = arena_new(size);
        mp_heap_t *h = heap_new(a, size, bs);
        size_t total = stats(h).total_blocks;
        UNIT_ASSERT(mp_alloc(h, 0, 0) == NULL);
        uint8_t *p = mp_alloc(h, 1, 0);
        uint8_t *q = mp_alloc(h, bs + 1, 0);
        uint8_t *r = mp_alloc(h, 3 * bs, 0);
        UNIT_ASSERT(p && q && r);
        UNIT_EQ(mp_nbytes(h, p), bs);
        UNIT_EQ(mp_nbytes(h, q), 2 * bs);
        UNIT_EQ(mp_nbytes(h, r), 3 * bs);
        UNIT_EQ(mp_nbytes(h, q + 1), 0);  /* interior */
        UNIT_EQ(mp_nbytes(h, q + bs), 0); /* a tail block */
        UNIT_EQ(mp_nbytes(h, NULL), 0);
        UNIT_EQ(mp_nbytes(h, &k), 0);     /* foreign */
        fill(q, 2 * bs, 7);
        struct mp_stats st = stats(h);
        UNIT_EQ(st.objects, 3);
        UNIT_EQ(st.used_blocks, 6);
        UNIT_EQ(st.free_blocks, total - 6);
        /* Ignored frees: NULL, interior, tail, foreign. */
        mp_free(h, NULL);
        mp_free(h, q + 1);
        mp_free(h, q + bs);
        mp_free(h, &k);
        UNIT_EQ(mp_nbytes(h, q), 2 * bs);
        UNIT_ASSERT(check(q, 2 * bs, 7));
        mp_free(h, q);
        UNIT_EQ(mp_nbytes(h, q), 0);
        mp_free(h, q); /* double free: ignored */
        st = stats(h);
        UNIT_EQ(st.objects, 2);
        UNIT_EQ(st.used_blocks, 4);
        UNIT_EQ(st.free_runs, 2);
        UNIT_EQ(st.largest_free_run, total - 6);
        mp_free(h, p);
        mp_free(h, r);
        st = stats(h);
        UNIT_EQ(st.free_blocks, total);
        UNIT_EQ(st.free_runs, 1);
        UNIT_EQ(st.failed_allocs, 0);
        free(a);
    }
}

UNIT_TEST(t_zeroing)
{
    size_t size = 4096;
    void *a = arena_new(size);
    memset(a, 0xA5, size);
    mp_heap_t *h = heap_new(a, size, 16);
    size_t total = stats(h).total_blocks;
    uint8_t *p = mp_alloc(h, total * 16, 0); /* the whole, dirty, pool */
    UNIT_ASSERT(p != NULL);
    UNIT_ASSERT(is_zero(p, total * 16));
    memset(p, 0xFF, total * 16);
    mp_free(h, p);
    for (int i = 0; i < 50; i++) {
        uint8_t *q = mp_alloc(h, 1 + (size_t)i * 5, 0);
        UNIT_ASSERT(q != NULL);
        UNIT_ASSERT(is_zero(q, mp_nbytes(h, q)));
        memset(q, 0xEE, mp_nbytes(h, q));
        if (i % 3)
            mp_free(h, q);
    }
    free(a);
}

UNIT_TEST(t_first_fit)
{
    for (int k = 0; k < 2; k++) {
        size_t B = sizes[k], size = 4096;
        void *ar = arena_new(size);
        mp_heap_t *h = heap_new(ar, size, B);
        uint8_t *A = mp_alloc(h, B, 0);    /* block 0 */
        uint8_t *Bo = mp_alloc(h, 3 * B, 0); /* 1..3 */
        uint8_t *C = mp_alloc(h, B, 0);    /* 4 */
        uint8_t *D = mp_alloc(h, 2 * B, 0); /* 5..6 */
        UNIT_ASSERT(A != NULL);
        UNIT_ASSERT(Bo == A + B);
        UNIT_ASSERT(C == A + 4 * B);
        UNIT_ASSERT(D == A + 5 * B);
        mp_free(h, Bo);                    /* hole 1..3 */
        UNIT_ASSERT(mp_alloc(h, 2 * B, 0) == A + B);     /* lowest fit */
        UNIT_ASSERT(mp_alloc(h, 4 * B, 0) == A + 7 * B); /* hole too small */
        UNIT_ASSERT(mp_alloc(h, 1, 0) == A + 3 * B);     /* fills the hole */
        UNIT_ASSERT(mp_alloc(h, 1, 0) == A + 11 * B);
        mp_free(h, A);
        UNIT_ASSERT(mp_alloc(h, 2 * B, 0) == A + 12 * B);
        UNIT_ASSERT(mp_alloc(h, 1, 0) == A);
        mp_free(h, C);
        mp_free(h, D);                     /* hole 4..6 */
        UNIT_ASSERT(mp_alloc(h, 3 * B, 0) == A + 4 * B);
        free(ar);
    }
}

/* ---- realloc ------------------------------------------------------------ */

UNIT_TEST(t_realloc)
{
    for (int k = 0; k < 2; k++) {
        size_t B = sizes[k], size = 8192;
        void *ar = arena_new(size);
        mp_heap_t *h = heap_new(ar, size, B);
        size_t total = stats(h).total_blocks;
        uint8_t *p = mp_alloc(h, 4 * B, 0);
        fill(p, 4 * B, 1);
        /* Shrink in place; the surplus blocks are free again. */
        UNIT_ASSERT(mp_realloc(h, p, 2 * B - 3, false) == p);
        UNIT_EQ(mp_nbytes(h, p), 2 * B);
        UNIT_ASSERT(check(p, 2 * B, 1));
        UNIT_EQ(stats(h).free_blocks, total - 2);
        uint8_t *q = mp_alloc(h, 2 * B, 0);
        UNIT_ASSERT(q == p + 2 * B);
        /* Same block count: same pointer, nothing changes. */
        UNIT_ASSERT(mp_realloc(h, p, 2 * B - 1, false) == p);
        UNIT_ASSERT(check(p, 2 * B, 1));
        /* Blocked: no room after p, no move allowed. */
        UNIT_ASSERT(mp_realloc(h, p, 3 * B, false) == NULL);
        UNIT_EQ(mp_nbytes(h, p), 2 * B);
        UNIT_ASSERT(check(p, 2 * B, 1));
        /* Grow in place: q is followed by free blocks; new blocks zero. */
        fill(q, 2 * B, 2);
        memset(q + 2 * B, 0x77, 3 * B); /* dirty the free blocks */
        UNIT_ASSERT(mp_realloc(h, q, 5 * B, false) == q);
        UNIT_EQ(mp_nbytes(h, q), 5 * B);
        UNIT_ASSERT(check(q, 2 * B, 2));
        UNIT_ASSERT(is_zero(q + 2 * B, 3 * B));
        /* Move: p is blocked by q. */
        uint8_t *m = mp_realloc(h, p, 3 * B, true);
        UNIT_ASSERT(m != NULL && m != p);
        UNIT_ASSERT(m == q + 5 * B); /* first fit */
        UNIT_ASSERT(check(m, 2 * B, 1));
        UNIT_ASSERT(is_zero(m + 2 * B, B));
        UNIT_EQ(mp_nbytes(h, p), 0); /* old object freed */
        UNIT_EQ(stats(h).objects, 2);
        UNIT_EQ(stats(h).used_blocks, 8);
        /* Move fails when no run is large enough: object unchanged. */
        UNIT_ASSERT(mp_realloc(h, m, total * B, true) == NULL);
        UNIT_ASSERT(check(m, 2 * B, 1));
        UNIT_EQ(mp_nbytes(h, m), 3 * B);
        /* NULL pointer: allocates; size 0: frees. */
        uint8_t *z = mp_realloc(h, NULL, 10, false);
        UNIT_ASSERT(z == p); /* the lowest free block */
        UNIT_ASSERT(mp_realloc(h, z, 0, true) == NULL);
        UNIT_EQ(mp_nbytes(h, z), 0);
        /* Not a handle: NULL. */
        UNIT_ASSERT(mp_realloc(h, q + 1, 10, true) == NULL);
        UNIT_ASSERT(mp_realloc(h, q + B, 10, true) == NULL);
        UNIT_EQ(mp_nbytes(h, q), 5 * B);
        free(ar);
    }
}

/* ---- the fragmentation failure ---------------------------------------- */

UNIT_TEST(t_fragmentation_fails)
{
    for (int k = 0; k < 2; k++) {
        size_t B = sizes[k], size = 16384;
        void *ar = arena_new(size);
        mp_heap_t *h = heap_new(ar, size, B);
        size_t total = stats(h).total_blocks, n = 0;
        void **objs = malloc((total + 1) * sizeof *objs);
        UNIT_ASSERT(objs != NULL);
        while ((objs[n] = mp_alloc(h, B, 0)) != NULL)
            n++;
        UNIT_EQ(n, total);
        for (size_t i = 0; i < n; i += 2)
            mp_free(h, objs[i]);
        struct mp_stats st = stats(h);
        UNIT_EQ(st.free_blocks, (n + 1) / 2);
        UNIT_EQ(st.largest_free_run, 1);
        size_t want = st.free_blocks / 2;
        UNIT_ASSERT(want >= 2);
        /* Half the free memory is requested; it is free, yet it fails. */
        UNIT_ASSERT(mp_alloc(h, want * B, 0) == NULL);
        UNIT_ASSERT(mp_alloc(h, 2 * B, 0) == NULL);
        UNIT_EQ(stats(h).failed_allocs, 3); /* the fill's end + 2 */
        UNIT_ASSERT(mp_alloc(h, B, 0) != NULL);
        free(objs);
        free(ar);
    }
}

/* ---- garbage collection ------------------------------------------------ */

UNIT_TEST(t_gc_reachability)
{
    for (int k = 0; k < 2; k++) {
        size_t B = sizes[k], size = 8192;
        void *ar = arena_new(size);
        mp_heap_t *h = heap_new(ar, size, B);
        void **a = mp_alloc(h, 4 * sizeof(void *), 0);
        void **b = mp_alloc(h, B, 0);
        void **c = mp_alloc(h, 2 * B, 0);
        uint8_t *d = mp_alloc(h, B, 0);
        uint8_t *e = mp_alloc(h, 3 * B, 0);
        uint8_t *f = mp_alloc(h, B, 0);
        uint8_t *g = mp_alloc(h, B, 0);
        void *t = mp_alloc(h, B, 0); /* reachable only from c's tail */
        a[0] = b;           /* a -> b -> c -> a: a cycle */
        a[1] = d + 8;       /* interior pointer: does not keep d */
        a[2] = (uint8_t *)f + 1; /* unaligned: does not keep f */
        b[0] = c;
        c[B / sizeof(void *)] = a; /* in c's tail block */
        c[2 * B / sizeof(void *) - 1] = t; /* last word of c */
        c[1] = (uint8_t *)t + B; /* the free block after t */
        void *roots[4] = {a, e + B, NULL, &k};
        size_t before = stats(h).used_blocks;
        gc(h, roots, 4);
        struct mp_stats st = stats(h);
        UNIT_EQ(st.collections, 1);
        UNIT_EQ(st.objects, 4);
        UNIT_EQ(st.blocks_freed_by_gc, 1 + 3 + 1 + 1);
        UNIT_EQ(mp_nbytes(h, t), B);
        UNIT_EQ(st.used_blocks, before - 6);
        UNIT_ASSERT(mp_nbytes(h, a) && mp_nbytes(h, b) && mp_nbytes(h, c));
        UNIT_EQ(mp_nbytes(h, d), 0);
        UNIT_EQ(mp_nbytes(h, e), 0);
        UNIT_EQ(mp_nbytes(h, f), 0);
        UNIT_EQ(mp_nbytes(h, g), 0);
        UNIT_ASSERT(a[0] == (void *)b && b[0] == (void *)c);
        /* The hint was reset: the lowest free block is reused. */
        UNIT_ASSERT(mp_alloc(h, B, 0) == d);
        /* Nothing rooted: everything goes. */
        gc(h, NULL, 0);
        st = stats(h);
        UNIT_EQ(st.objects, 0);
        UNIT_EQ(st.free_blocks, st.total_blocks);
        UNIT_EQ(st.collections, 2);
        /* Roots and end outside a collection are ignored. */
        void *x = mp_alloc(h, B, 0);
        mp_collect_root(h, &x, 1);
        mp_collect_end(h);
        UNIT_EQ(stats(h).collections, 2);
        UNIT_ASSERT(mp_alloc(h, B, 0) != NULL); /* not left locked */
        free(ar);
    }
}

struct node {
    size_t *payload; /* scanned first, so payloads pile up on the stack */
    struct node *next;
};

/* Build a list of n nodes, each with a 1-block payload and a 1-block
 * garbage object in between.  backward: each node points to the one
 * allocated before it (so next pointers run down the address space). */
static struct node *build(mp_heap_t *h, size_t n, bool backward)
{
    struct node *head = NULL, *tail = NULL;
    for (size_t i = 0; i < n; i++) {
        struct node *x = mp_alloc(h, sizeof *x, 0);
        size_t *pl = mp_alloc(h, sizeof(size_t), 0);
        void *junk = mp_alloc(h, sizeof(void *), 0);
        UNIT_ASSERT(x && pl && junk);
        *(void **)junk = x; /* garbage pointing into the list: harmless */
        *pl = 2 * i + 1;
        x->payload = pl;
        if (backward) {
            x->next = head;
            head = x;
        } else {
            if (tail)
                tail->next = x;
            else
                head = x;
            tail = x;
        }
    }
    return head;
}

/* The first `count` nodes of a list built by build(h, n, backward). */
static void check_list(mp_heap_t *h, struct node *x, size_t count, size_t n,
                       bool backward)
{
    size_t i = 0;
    for (; x != NULL; x = x->next, i++) {
        UNIT_ASSERT(mp_nbytes(h, x) != 0);
        UNIT_ASSERT(mp_nbytes(h, x->payload) != 0);
        UNIT_EQ(*x->payload, 2 * (backward ? n - 1 - i : i) + 1);
    }
    UNIT_EQ(i, count);
}

UNIT_TEST(t_gc_long_list_overflow)
{
    size_t n = 10000;
    for (int k = 0; k < 2; k++) {
        for (int dir = 0; dir < 2; dir++) {
            size_t B = sizes[k], size = 3 * n * B + 16384;
            void *ar = arena_new(size);
            mp_heap_t *h = heap_new(ar, size, B);
            struct node *list = build(h, n, dir != 0);
            void *root = list;
            gc(h, &root, 1);
            struct mp_stats st = stats(h);
            UNIT_ASSERT(st.mark_overflows > 0);
            UNIT_EQ(st.objects, 2 * n);
            UNIT_EQ(st.blocks_freed_by_gc, n);
            check_list(h, list, n, n, dir != 0);
            /* Again, with the garbage gone: still all alive. */
            gc(h, &root, 1);
            UNIT_EQ(stats(h).objects, 2 * n);
            check_list(h, list, n, n, dir != 0);
            /* Cut the list in the middle: the rest dies. */
            struct node *x = list;
            for (size_t i = 1; i < n / 2; i++)
                x = x->next;
            x->next = NULL;
            gc(h, &root, 1);
            UNIT_EQ(stats(h).objects, n);
            check_list(h, list, n / 2, n, dir != 0);
            free(ar);
        }
    }
}

struct fin_log {
    mp_heap_t *h;
    void *seen[64];
    size_t n;
    size_t alloc_ok;   /* allocations that succeeded inside a finaliser */
    size_t bad_size;   /* finalised objects whose size was not visible */
};

static void fin(void *ctx, void *obj)
{
    struct fin_log *l = ctx;
    if (l->n < 64)
        l->seen[l->n] = obj;
    l->n++;
    if (mp_alloc(l->h, 8, 0) != NULL)
        l->alloc_ok++;
    if (mp_nbytes(l->h, obj) == 0)
        l->bad_size++;
}

static size_t times_seen(const struct fin_log *l, const void *p)
{
    size_t c = 0;
    for (size_t i = 0; i < l->n && i < 64; i++)
        c += l->seen[i] == p;
    return c;
}

UNIT_TEST(t_gc_finaliser)
{
    size_t B = 16, size = 8192;
    void *ar = arena_new(size);
    mp_heap_t *h = heap_new(ar, size, B);
    struct fin_log log;
    memset(&log, 0, sizeof log);
    log.h = h;
    mp_set_finaliser(h, fin, &log);
    void *o[20], *roots[20];
    for (size_t i = 0; i < 20; i++)
        o[i] = mp_alloc(h, B, i % 2 == 0 ? MP_HAS_FINALISER : 0u);
    for (size_t i = 0; i < 20; i++)
        roots[i] = i % 4 < 2 ? o[i] : NULL;
    gc(h, roots, 20);
    UNIT_EQ(log.n, 5); /* 2, 6, 10, 14, 18 */
    for (size_t i = 0; i < 20; i++)
        UNIT_EQ(times_seen(&log, o[i]), i % 4 == 2 ? 1 : 0);
    UNIT_EQ(log.alloc_ok, 0); /* the heap is locked during the sweep */
    UNIT_EQ(log.bad_size, 0);
    UNIT_EQ(stats(h).objects, 10);
    gc(h, roots, 20);
    UNIT_EQ(log.n, 5); /* survivors are not finalised */
    log.n = 0;
    /* mp_free does not run the finaliser. */
    mp_free(h, o[0]);
    roots[0] = NULL;
    /* A moved object keeps its finaliser bit: o[5] blocks o[4]. */
    void *m = mp_realloc(h, o[4], 3 * B, true);
    UNIT_ASSERT(m != NULL && m != o[4]);
    roots[4] = m;
    UNIT_ASSERT((uint8_t *)m == (uint8_t *)o[18]); /* first fit: 18..20 */
    gc(h, roots, 20);
    UNIT_EQ(log.n, 0);
    memset(roots, 0, sizeof roots);
    gc(h, roots, 20);
    UNIT_EQ(log.n, 4); /* 8, 12, 16 and m */
    UNIT_EQ(times_seen(&log, m), 1);
    UNIT_EQ(times_seen(&log, o[0]), 0);
    UNIT_EQ(times_seen(&log, o[8]), 1);
    UNIT_EQ(times_seen(&log, o[16]), 1);
    UNIT_EQ(stats(h).objects, 0);
    gc(h, roots, 20);
    UNIT_EQ(log.n, 4);
    /* Plain objects reusing finalisable objects' blocks are not finalised. */
    for (size_t i = 0; i < 20; i++)
        UNIT_ASSERT(mp_alloc(h, B, 0) == o[i]);
    gc(h, NULL, 0);
    UNIT_EQ(log.n, 4);
    UNIT_EQ(log.alloc_ok, 0);
    UNIT_EQ(log.bad_size, 0);
    UNIT_ASSERT(mp_alloc(h, 8, 0) != NULL); /* unlocked afterwards */
    free(ar);
}

/* ---- collect on failure ------------------------------------------------ */

struct gcctx {
    void **roots;
    size_t nroots;
    unsigned calls;
    bool run;
};

static void collect_cb(mp_heap_t *h, void *ctx)
{
    struct gcctx *c = ctx;
    c->calls++;
    if (c->run)
        gc(h, c->roots, c->nroots);
}

UNIT_TEST(t_collect_retry)
{
    size_t B = 16, size = 4096;
    void *ar = arena_new(size);
    mp_heap_t *h = heap_new(ar, size, B);
    size_t total = stats(h).total_blocks;
    void *keep = mp_alloc(h, 2 * B, 0);
    fill(keep, 2 * B, 9);
    while (mp_alloc(h, B, 0) != NULL) /* garbage, no callback yet */
        ;
    UNIT_EQ(stats(h).failed_allocs, 1);
    struct gcctx c = {&keep, 1, 0, true};
    mp_set_collect(h, collect_cb, &c);
    void *big = mp_alloc(h, (total / 2) * B, 0);
    UNIT_ASSERT(big != NULL);
    UNIT_EQ(c.calls, 1);
    UNIT_EQ(stats(h).collections, 1);
    UNIT_EQ(stats(h).failed_allocs, 1);
    UNIT_ASSERT(check(keep, 2 * B, 9));
    /* A callback that frees nothing: called once, then NULL. */
    c.run = false;
    UNIT_ASSERT(mp_alloc(h, total * B, 0) == NULL);
    UNIT_EQ(c.calls, 2);
    UNIT_EQ(stats(h).failed_allocs, 2);
    /* A real collection that cannot help: one collection, one retry. */
    void *both[2] = {keep, big};
    c.run = true;
    c.roots = both;
    c.nroots = 2;
    UNIT_ASSERT(mp_alloc(h, total * B, 0) == NULL);
    UNIT_EQ(c.calls, 3);
    UNIT_EQ(stats(h).collections, 2);
    UNIT_EQ(stats(h).failed_allocs, 3);
    /* No call when the first try succeeds. */
    UNIT_ASSERT(mp_alloc(h, B, 0) != NULL);
    UNIT_EQ(c.calls, 3);
    free(ar);
}

UNIT_TEST(t_realloc_move_survives_gc)
{
    /* The object being moved is not in the callback's roots (in
     * MicroPython it is found on the C stack); it and its children must
     * survive the collection that the move's allocation triggers. */
    size_t B = 16, size = 4096;
    void *ar = arena_new(size);
    mp_heap_t *h = heap_new(ar, size, B);
    size_t total = stats(h).total_blocks;
    void **a = mp_alloc(h, 2 * B, 0);
    void *blocker = mp_alloc(h, B, 0);
    void *child = mp_alloc(h, B, 0);
    fill(child, B, 5);
    a[0] = child;
    fill(a + 1, 2 * B - sizeof(void *), 4);
    while (mp_alloc(h, B, 0) != NULL)
        ;
    struct gcctx c = {&blocker, 1, 0, true};
    mp_set_collect(h, collect_cb, &c);
    void **m = mp_realloc(h, a, (total / 2) * B, true);
    UNIT_ASSERT(m != NULL);
    UNIT_EQ(c.calls, 1);
    UNIT_ASSERT(m[0] == child);
    UNIT_ASSERT(check(m + 1, 2 * B - sizeof(void *), 4));
    UNIT_EQ(mp_nbytes(h, child), B);
    UNIT_ASSERT(check(child, B, 5));
    UNIT_EQ(mp_nbytes(h, a), 0);
    UNIT_EQ(stats(h).objects, 3); /* blocker, child, m */
    free(ar);
}

UNIT_TEST(t_lock)
{
    size_t B = 32, size = 4096;
    void *ar = arena_new(size);
    mp_heap_t *h = heap_new(ar, size, B);
    uint8_t *p = mp_alloc(h, B, 0);
    UNIT_ASSERT(p != NULL);
    struct gcctx c = {NULL, 0, 0, true};
    mp_set_collect(h, collect_cb, &c);
    mp_lock(h);
    mp_lock(h);
    UNIT_ASSERT(mp_alloc(h, 1, 0) == NULL);
    UNIT_ASSERT(mp_realloc(h, p, 4 * B, true) == NULL);
    mp_free(h, p); /* ignored while locked */
    UNIT_EQ(mp_nbytes(h, p), B);
    mp_unlock(h);
    UNIT_ASSERT(mp_alloc(h, 1, 0) == NULL); /* still locked once */
    mp_unlock(h);
    UNIT_EQ(c.calls, 0);                    /* no collection when locked */
    UNIT_EQ(stats(h).failed_allocs, 0);     /* not counted as failures */
    uint8_t *q = mp_alloc(h, 1, 0);
    UNIT_ASSERT(q == p + B);
    mp_unlock(h); /* extra unlock: harmless */
    UNIT_ASSERT(mp_alloc(h, 1, 0) != NULL);
    mp_lock(h);
    UNIT_ASSERT(mp_alloc(h, 1, 0) == NULL);
    free(ar);
}

/* ---- randomized, against a shadow model --------------------------------- */

#define NSLOT 256

struct slot {
    uint8_t *p;
    size_t n;    /* bytes written */
    size_t blk;  /* blocks */
    unsigned seed;
    bool fin;
};

struct model {
    mp_heap_t *h;
    uint8_t *base; /* block 0 */
    size_t B, total;
    uint8_t *used; /* shadow allocation map */
    struct fin_log log;
};

static size_t bidx(const struct model *m, const void *p)
{
    return (size_t)((const uint8_t *)p - m->base) / m->B;
}

/* Lowest run of `need` free blocks in the shadow map, or SIZE_MAX. */
static size_t model_fit(const struct model *m, size_t need)
{
    size_t run = 0;
    for (size_t i = 0; i < m->total; i++) {
        run = m->used[i] ? 0 : run + 1;
        if (run == need)
            return i + 1 - need;
    }
    return SIZE_MAX;
}

static void model_mark(struct model *m, size_t from, size_t n, uint8_t v)
{
    for (size_t i = from; i < from + n; i++) {
        UNIT_ASSERT(m->used[i] != v);
        m->used[i] = v;
    }
}

static size_t rand_size(void)
{
    size_t r = unit_below(100);
    if (r < 70)
        return 1 + unit_below(48);
    if (r < 95)
        return 49 + unit_below(464);
    return 513 + unit_below(3584);
}

static void check_all(struct model *m, struct slot *s, size_t ndrop)
{
    size_t live = 0, blocks = 0, freeb = 0;
    for (size_t i = 0; i < NSLOT; i++) {
        if (!s[i].p)
            continue;
        live++;
        blocks += s[i].blk;
        UNIT_EQ(mp_nbytes(m->h, s[i].p), s[i].blk * m->B);
        UNIT_ASSERT(check(s[i].p, s[i].n, s[i].seed));
    }
    for (size_t i = 0; i < m->total; i++)
        freeb += !m->used[i];
    struct mp_stats st = stats(m->h);
    UNIT_EQ(st.objects, live + ndrop);
    UNIT_EQ(st.free_blocks, freeb);
    UNIT_ASSERT(st.used_blocks >= blocks);
}

static void random_run(size_t B, uint64_t seed, unsigned long ops)
{
    size_t size = 65536;
    struct model m;
    struct slot s[NSLOT];
    struct slot drop[NSLOT * 4];
    size_t ndrop = 0, dropped_blocks = 0, dropped_fin = 0;
    memset(&m, 0, sizeof m);
    memset(s, 0, sizeof s);
    void *ar = arena_new(size);
    m.h = heap_new(ar, size, B);
    m.B = B;
    m.total = stats(m.h).total_blocks;
    m.used = calloc(m.total, 1);
    UNIT_ASSERT(m.used != NULL);
    m.base = mp_alloc(m.h, 1, 0);
    mp_free(m.h, m.base);
    m.log.h = m.h;
    mp_set_finaliser(m.h, fin, &m.log);
    printf("mpheap random: B=%zu seed=%llu ops=%lu\n", B,
           (unsigned long long)seed, ops);
    unit_seed(seed);
    size_t fails = 0, moves = 0, gcs = 0;

    for (unsigned long op = 0; op < ops; op++) {
        struct slot *x = &s[unit_below(NSLOT)];
        size_t r = unit_below(100);
        if (!x->p) {
            size_t n = rand_size(), need = (n + B - 1) / B;
            bool f = unit_below(8) == 0;
            size_t want = model_fit(&m, need);
            uint8_t *p = mp_alloc(m.h, n, f ? MP_HAS_FINALISER : 0u);
            if (want == SIZE_MAX) {
                UNIT_ASSERT(p == NULL);
                UNIT_ASSERT(stats(m.h).largest_free_run < need);
                fails++;
                continue;
            }
            UNIT_ASSERT(p == m.base + want * B); /* first fit */
            UNIT_ASSERT(is_zero(p, need * B));
            model_mark(&m, want, need, 1);
            x->p = p, x->n = n, x->blk = need, x->fin = f;
            x->seed = (unsigned)unit_below(1u << 20);
            fill(p, n, x->seed);
        } else if (r < 45) {
            UNIT_ASSERT(check(x->p, x->n, x->seed));
            model_mark(&m, bidx(&m, x->p), x->blk, 0);
            mp_free(m.h, x->p);
            x->p = NULL;
        } else if (r < 80) {
            UNIT_ASSERT(check(x->p, x->n, x->seed));
            size_t n = rand_size(), need = (n + B - 1) / B;
            size_t b = bidx(&m, x->p), have = x->blk;
            bool mv = unit_below(2) == 0, inplace = need <= have;
            if (!inplace && b + need <= m.total) {
                inplace = true;
                for (size_t i = b + have; i < b + need; i++)
                    inplace = inplace && !m.used[i];
            }
            size_t want = inplace || !mv ? SIZE_MAX : model_fit(&m, need);
            uint8_t *q = mp_realloc(m.h, x->p, n, mv);
            size_t keep = x->n < n ? x->n : n;
            if (inplace) {
                UNIT_ASSERT(q == x->p);
                if (need < have)
                    model_mark(&m, b + need, have - need, 0);
                else if (need > have)
                    model_mark(&m, b + have, need - have, 1);
            } else if (!mv || want == SIZE_MAX) {
                UNIT_ASSERT(q == NULL);
                UNIT_ASSERT(check(x->p, x->n, x->seed));
                continue;
            } else {
                UNIT_ASSERT(q == m.base + want * B);
                model_mark(&m, want, need, 1);
                model_mark(&m, b, have, 0);
                moves++;
            }
            UNIT_ASSERT(check(q, keep, x->seed));
            if (need > have)
                UNIT_ASSERT(is_zero(q + have * B, (need - have) * B));
            UNIT_EQ(mp_nbytes(m.h, q), need * B);
            x->p = q, x->n = n, x->blk = need;
            x->seed = (unsigned)unit_below(1u << 20);
            fill(q, n, x->seed);
        } else if (r < 85 && ndrop < NSLOT * 4) {
            /* Forget it: only the collector can reclaim it now. */
            drop[ndrop++] = *x;
            dropped_blocks += x->blk;
            dropped_fin += x->fin;
            x->p = NULL;
        } else {
            UNIT_ASSERT(check(x->p, x->n, x->seed));
        }
        if (op % 1000 == 999)
            check_all(&m, s, ndrop);
        if (op % 4000 == 3999 || ndrop == NSLOT * 4) {
            void *roots[NSLOT];
            for (size_t i = 0; i < NSLOT; i++)
                roots[i] = s[i].p;
            size_t freed = stats(m.h).blocks_freed_by_gc;
            m.log.n = 0;
            gc(m.h, roots, NSLOT);
            gcs++;
            UNIT_EQ(stats(m.h).blocks_freed_by_gc - freed, dropped_blocks);
            UNIT_EQ(m.log.n, dropped_fin);
            UNIT_EQ(m.log.alloc_ok, 0);
            for (size_t i = 0; i < ndrop; i++) {
                model_mark(&m, bidx(&m, drop[i].p), drop[i].blk, 0);
                if (drop[i].fin && m.log.n <= 64)
                    UNIT_EQ(times_seen(&m.log, drop[i].p), 1);
            }
            ndrop = dropped_blocks = dropped_fin = 0;
            check_all(&m, s, 0);
        }
    }
    check_all(&m, s, ndrop);
    printf("mpheap random: B=%zu fails=%zu moves=%zu gcs=%zu\n", B, fails,
           moves, gcs);
    UNIT_ASSERT(fails > 0 && moves > 0 && gcs > 0);
    free(m.used);
    free(ar);
}

UNIT_TEST(t_random)
{
    unsigned long ops = UNIT_ITERS(100000);
    random_run(16, 0x6d70686561703136u, ops);
    random_run(32, 0x6d70686561703332u, ops);
}

static const unit_case cases[] = {
    UNIT_CASE(t_init),
    UNIT_CASE(t_basic),
    UNIT_CASE(t_zeroing),
    UNIT_CASE(t_first_fit),
    UNIT_CASE(t_realloc),
    UNIT_CASE(t_fragmentation_fails),
    UNIT_CASE(t_gc_reachability),
    UNIT_CASE(t_gc_long_list_overflow),
    UNIT_CASE(t_gc_finaliser),
    UNIT_CASE(t_collect_retry),
    UNIT_CASE(t_realloc_move_survives_gc),
    UNIT_CASE(t_lock),
    UNIT_CASE(t_random),
};

UNIT_MAIN("mpheap", cases)
