/*
 * test_gc.c - the collector: root rules, flags, lock, automatic collection,
 * interior pointers (into chained extents too), mark-stack overflow on deep
 * structures, and >= 10^4 random object graphs checked against a
 * reachability model.
 *
 * Collections here use explicit roots (collect_start / root / end), so the
 * model is exact: nothing on the C stack can retain an object by accident.
 * Only t_stack scans the stack, and only checks that a referenced object
 * survives.
 */
#include "catena.h"
#include "unit.h"

/* catena_config.h says whether the build has interior pointers. */
#ifndef CATENA_GC_INTERIOR_PTRS
#define CATENA_GC_INTERIOR_PTRS 1
#endif

/* Check logs every passing assertion (a write(2)); hot loops assert only
 * on failure. */
#define CHK(c) do { if (!(c)) UNIT_ASSERT(c); } while (0)
#define CHK_EQ(a, b) do { if ((a) != (b)) UNIT_EQ(a, b); } while (0)

#if defined(__has_include)
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#endif
#endif
#ifndef RUNNING_ON_VALGRIND
#define RUNNING_ON_VALGRIND 0
#endif

#define BS CATENA_BLOCK_SIZE
#define W sizeof(void *)

#ifdef UNIT_BARE /* a board's RAM; the loops are scaled down there */
static uint64_t arena[(1u << 20) / 8];
#else
static uint64_t arena[(8u << 20) / 8]; /* most tests use a prefix */
#endif
static catena_heap_t *h;

static catena_heap_t *mk(size_t bytes)
{
    UNIT_EQ(catena_init(arena, bytes, &h), 0);
    return h;
}

static struct catena_stats stats(void)
{
    struct catena_stats s;
    catena_stats(h, &s);
    return s;
}

static void gc(void *const *roots, size_t n)
{
    UNIT_EQ(catena_collect_start(h), 0);
    catena_collect_root(h, roots, n);
    UNIT_EQ(catena_collect_end(h), 0);
    UNIT_EQ(catena_check(h), 0);
}

static bool alive(void *p) { return catena_size(h, p) != 0; }

static void put_ptr(void *obj, size_t word, const void *v)
{
    CHK_EQ(catena_write(h, obj, word * W, &v, W), 0);
}

static void *get_ptr(void *obj, size_t word)
{
    void *v;
    CHK_EQ(catena_read(h, obj, word * W, &v, W), 0);
    return v;
}

/* Fill the heap with one-block NOCOLLECT|NOSCAN pins and free every other
 * one: later multi-block objects are chained. */
static void fragment(void **pins, size_t max)
{
    size_t n = 0;
    void *p;
    while (n < max && (p = catena_alloc_flags(h, 1, CATENA_NOCOLLECT |
                                                        CATENA_NOSCAN)))
        pins[n++] = p;
    for (size_t i = 0; i < n; i += 2)
        CHK_EQ(catena_free(h, pins[i]), 0);
}

/* ---- basics ---------------------------------------------------------- */

UNIT_TEST(t_basic)
{
    mk(64 * 1024);
    void *a = catena_alloc(h, 2 * W), *b = catena_alloc(h, 2 * W);
    void *c = catena_alloc(h, 5 * BS), *d = catena_alloc(h, 3 * W);
    put_ptr(a, 0, b);
    put_ptr(a, 1, NULL);
    put_ptr(b, 0, a); /* a cycle */
    put_ptr(c, 0, d); /* garbage referencing garbage */
    struct catena_stats s0 = stats();
    size_t dead = 5 + catena_size(h, d) / BS;
    void *roots[1] = {a};
    gc(roots, 1);
    struct catena_stats s = stats();
    UNIT_ASSERT(alive(a) && alive(b));
    UNIT_EQ(s.objects, 2);
    UNIT_EQ(s.gc_collections, 1);
    UNIT_EQ(s.gc_last_freed, dead);
    UNIT_EQ(s.gc_last_marked, s0.used_blocks - dead);
    UNIT_EQ(s.used_blocks, s.gc_last_marked);
    UNIT_ASSERT(get_ptr(a, 0) == b);
    gc(NULL, 0);
    s = stats();
    UNIT_EQ(s.objects, 0);
    UNIT_EQ(s.free_blocks, s.total_blocks);
    UNIT_EQ(s.free_runs, 1);
    UNIT_EQ(s.gc_collections, 2);
    UNIT_EQ(s.gc_total_freed, s0.used_blocks);
    /* outside a collection a root range is an error that changes nothing */
    catena_collect_root(h, roots, 1);
    UNIT_EQ(catena_last_error(h), CATENA_EINVAL);
    UNIT_EQ(catena_collect_end(h), CATENA_EINVAL);
}

/* A pointer counts only when it names a handle (interior option off). */
UNIT_TEST(t_root_rule)
{
    mk(64 * 1024);
    unsigned char *a = catena_alloc(h, 4 * BS);
    void *roots[3] = {a + 1, a + BS, (void *)((uintptr_t)a | 1)};
    gc(roots, 3);
    UNIT_EQ(stats().objects, 0);
    a = catena_alloc(h, 4 * BS);
    roots[0] = a;
    gc(roots, 1);
    UNIT_EQ(stats().objects, 1);
}

/* ---- flags ------------------------------------------------------------- */

static int nfinal;
static void *final_seen[16];
static int final_alloc_err, final_free_err;

static void finaliser(void *ctx, catena_heap_t *hh, void *obj)
{
    UNIT_ASSERT(ctx == &nfinal && hh == h);
    final_seen[nfinal++ % 16] = obj;
    /* the object is intact and readable */
    UNIT_EQ((uintptr_t)get_ptr(obj, 1), 0x1234567u);
    /* no allocation or free inside a collection */
    UNIT_ASSERT(catena_alloc(h, 8) == NULL);
    final_alloc_err = catena_last_error(h);
    final_free_err = catena_free(h, obj);
}

UNIT_TEST(t_flags)
{
    static void *pins[8192];
    mk(64 * 1024);
    catena_gc_set_finaliser(h, finaliser, &nfinal);
    nfinal = 0;
    void *x = catena_alloc(h, 2 * W);
    void *ns = catena_alloc_flags(h, 4 * W, CATENA_NOSCAN);
    put_ptr(ns, 0, x); /* never scanned: x dies */
    void *y = catena_alloc(h, 2 * W);
    void *pin = catena_alloc_flags(h, 4 * W, CATENA_NOCOLLECT);
    put_ptr(pin, 0, y); /* a never-collected object is a root */
    void *pinns = catena_alloc_flags(h, 4 * W, CATENA_NOCOLLECT |
                                                   CATENA_NOSCAN);
    void *f = catena_alloc_flags(h, 2 * W, CATENA_FINAL);
    put_ptr(f, 1, (void *)(uintptr_t)0x1234567u);
    void *roots[1] = {ns};
    gc(roots, 1);
    UNIT_ASSERT(alive(ns) && alive(y) && alive(pin) && alive(pinns));
    UNIT_EQ(stats().objects, 4);
    UNIT_EQ(nfinal, 1);
    UNIT_ASSERT(final_seen[0] == f);
    UNIT_EQ(final_alloc_err, CATENA_ELOCKED);
    UNIT_EQ(final_free_err, CATENA_ELOCKED);
    UNIT_EQ(stats().gc_finalised, 1);
    UNIT_EQ(stats().failed_allocs, 1);

    /* The same with chained objects: a never-collected chain is a root, a
     * finalisable chain is finalised, a no-scan chain is not scanned. */
    mk(64 * 1024);
    catena_gc_set_finaliser(h, finaliser, &nfinal);
    nfinal = 0;
    fragment(pins, 8192);
    size_t pinned = stats().objects;
    void *cn = catena_alloc_flags(h, 6 * BS, CATENA_NOCOLLECT);
    void *cf = catena_alloc_flags(h, 6 * BS, CATENA_FINAL);
    void *cs = catena_alloc_flags(h, 6 * BS, CATENA_NOSCAN);
    UNIT_ASSERT(!catena_is_contiguous(h, cn) && !catena_is_contiguous(h, cf) &&
                !catena_is_contiguous(h, cs));
    UNIT_EQ(catena_free(h, pins[1]), 0); /* room for small ones */
    UNIT_EQ(catena_free(h, pins[3]), 0);
    UNIT_EQ(catena_free(h, pins[5]), 0);
    pinned -= 3;
    void *y1 = catena_alloc(h, W), *y2 = catena_alloc(h, W);
    void *y3 = catena_alloc(h, W);
    put_ptr(cn, 5 * BS / W, y1); /* in its last extent */
    put_ptr(cs, 0, y2);
    put_ptr(cf, 1, (void *)(uintptr_t)0x1234567u);
    put_ptr(cf, 2, y3);
    roots[0] = cs;
    gc(roots, 1);
    UNIT_ASSERT(alive(cn) && alive(y1) && alive(cs));
    UNIT_EQ(nfinal, 1);
    UNIT_ASSERT(final_seen[0] == cf);
    UNIT_EQ(stats().objects, pinned + 3);
    UNIT_EQ(catena_free(h, cn), 0); /* never-collected: freed explicitly */
    gc(NULL, 0);
    UNIT_EQ(stats().objects, pinned);
}

/* ---- lock, automatic collection, threshold ------------------------------ */

static int nhook;
static void *hook_roots[4];
static void collect_hook(void *ctx, catena_heap_t *hh)
{
    (void)ctx;
    nhook++;
    UNIT_EQ(catena_collect_start(hh), 0);
    catena_collect_root(hh, hook_roots, 4);
    UNIT_EQ(catena_collect_end(hh), 0);
}

UNIT_TEST(t_lock)
{
    mk(16 * 1024);
    void *a = catena_alloc(h, 8);
    catena_gc_lock(h);
    catena_gc_lock(h);
    UNIT_ASSERT(catena_gc_locked(h));
    UNIT_ASSERT(catena_alloc(h, 8) == NULL);
    UNIT_EQ(catena_last_error(h), CATENA_ELOCKED);
    UNIT_ASSERT(catena_realloc(h, a, 100) == NULL);
    UNIT_EQ(catena_free(h, a), CATENA_ELOCKED);
    UNIT_EQ(catena_collect_start(h), CATENA_ELOCKED);
    UNIT_EQ(catena_collect(h), CATENA_ELOCKED);
    UNIT_EQ(catena_gc_unlock(h), 0);
    UNIT_ASSERT(catena_alloc(h, 8) == NULL); /* still held once */
    UNIT_EQ(catena_gc_unlock(h), 0);
    UNIT_ASSERT(!catena_gc_locked(h));
    UNIT_EQ(catena_gc_unlock(h), CATENA_EINVAL);
    UNIT_ASSERT(catena_alloc(h, 8) != NULL);
    UNIT_EQ(catena_check(h), 0);
    /* a collection holds the lock; its own level cannot be released */
    UNIT_EQ(catena_collect_start(h), 0);
    UNIT_ASSERT(catena_alloc(h, 8) == NULL);
    UNIT_EQ(catena_gc_unlock(h), CATENA_EINVAL);
    UNIT_EQ(catena_collect_start(h), CATENA_ELOCKED);
    UNIT_EQ(catena_collect_end(h), 0);
    UNIT_ASSERT(catena_alloc(h, 8) != NULL);
}

UNIT_TEST(t_auto)
{
    mk(16 * 1024);
    size_t total = stats().total_blocks;
    /* without CATENA_GC_AUTO the heap never collects by itself */
    while (catena_alloc(h, BS))
        ;
    UNIT_EQ(stats().gc_collections, 0);
    UNIT_EQ(catena_gc_set_options(h, 99), CATENA_EINVAL);
    UNIT_EQ(catena_gc_set_options(h, CATENA_GC_AUTO), 0);
    UNIT_EQ(catena_gc_options(h), CATENA_GC_AUTO);
    nhook = 0;
    memset(hook_roots, 0, sizeof hook_roots);
    catena_gc_set_collect_hook(h, collect_hook, NULL);
    void *p = catena_alloc(h, 100);
    UNIT_ASSERT(p != NULL);
    UNIT_EQ(nhook, 1);
    UNIT_EQ(stats().failed_allocs, 1); /* the one before AUTO */
    hook_roots[0] = p;
    /* garbage until full, then a grow of an object nobody references: the
     * collection it triggers must keep it (and what it references). */
    void *q = catena_alloc(h, 2 * W), *r = catena_alloc(h, W);
    put_ptr(q, 0, r);
    while (stats().free_blocks > 2)
        UNIT_ASSERT(catena_alloc(h, BS) != NULL);
    UNIT_EQ(nhook, 1);
    size_t before = stats().gc_collections;
    void *q2 = catena_realloc(h, q, 40 * BS);
    UNIT_ASSERT(q2 != NULL);
    UNIT_EQ(stats().gc_collections, before + 1);
    UNIT_ASSERT(get_ptr(q2, 0) == r);
    UNIT_ASSERT(alive(r));
    UNIT_EQ(catena_check(h), 0);
    /* realloc_contig keeps its object too */
    while (stats().free_blocks > 2)
        UNIT_ASSERT(catena_alloc(h, BS) != NULL);
    void *q3 = catena_realloc_contig(h, q2, 60 * BS);
    UNIT_ASSERT(q3 != NULL && catena_is_contiguous(h, q3));
    UNIT_ASSERT(get_ptr(q3, 0) == r);
    UNIT_ASSERT(alive(r));
    /* zeroing: scannable memory comes zeroed, grown parts too */
    UNIT_EQ(catena_gc_set_options(h, CATENA_GC_AUTO | CATENA_GC_ZERO), 0);
    hook_roots[1] = q3;
    static unsigned char a5[9 * BS];
    memset(a5, 0xA5, sizeof a5);
    for (int k = 0; k < 50; k++) {
        unsigned char *z = catena_alloc(h, 3 * BS);
        UNIT_ASSERT(z != NULL);
        for (size_t i = 0; i < 3 * BS; i++)
            UNIT_EQ(unit_byte(h, z, i), 0);
        UNIT_EQ(catena_write(h, z, 0, a5, 3 * BS), 0);
        z = catena_realloc(h, z, 9 * BS);
        UNIT_ASSERT(z != NULL);
        for (size_t i = 3 * BS; i < 9 * BS; i++)
            UNIT_EQ(unit_byte(h, z, i), 0);
        UNIT_EQ(catena_write(h, z, 0, a5, 9 * BS), 0); /* stale for later */
    }
    /* threshold: a collection every 64 allocated blocks */
    catena_gc_set_collect_hook(h, NULL, NULL); /* registered roots only */
    UNIT_EQ(catena_gc_add_roots(h, hook_roots, 4), 0);
    catena_gc_set_threshold(h, 64);
    before = stats().gc_collections;
    for (int k = 0; k < 64 * 10; k++)
        UNIT_ASSERT(catena_alloc(h, 1) != NULL);
    UNIT_ASSERT(stats().gc_collections >= before + 9);
    UNIT_ASSERT(stats().gc_collections <= before + 11);
    UNIT_ASSERT(alive(p) && alive(q3) && alive(r));
    UNIT_EQ(catena_gc_remove_roots(h, hook_roots), 0);
    UNIT_EQ(catena_gc_remove_roots(h, hook_roots), CATENA_EINVAL);
    (void)total;
}

UNIT_TEST(t_roots_table)
{
    mk(16 * 1024);
    static void *slots[CATENA_GC_ROOTS + 1][1];
    for (int i = 0; i < CATENA_GC_ROOTS; i++)
        UNIT_EQ(catena_gc_add_roots(h, slots[i], 1), 0);
    UNIT_EQ(catena_gc_add_roots(h, slots[CATENA_GC_ROOTS], 1), CATENA_ENOMEM);
    UNIT_EQ(catena_gc_add_roots(h, NULL, 1), CATENA_EINVAL);
    for (int i = 0; i < CATENA_GC_ROOTS; i++)
        slots[i][0] = catena_alloc(h, 24);
    void *loose = catena_alloc(h, 24);
    UNIT_EQ(catena_collect(h), 0); /* no stack top: registered roots only */
    for (int i = 0; i < CATENA_GC_ROOTS; i++)
        UNIT_ASSERT(alive(slots[i][0]));
    UNIT_EQ(stats().objects, CATENA_GC_ROOTS);
    (void)loose;
    UNIT_EQ(catena_gc_remove_roots(h, slots[2]), 0);
    UNIT_EQ(catena_collect(h), 0);
    UNIT_EQ(stats().objects, CATENA_GC_ROOTS - 1);
    UNIT_EQ(catena_gc_add_roots(h, slots[CATENA_GC_ROOTS], 1), 0);
}

/* ---- the calling thread's stack -------------------------------------- */

#if defined(__GNUC__)
#define NOINLINE __attribute__((noinline))
#else
#define NOINLINE
#endif

static NOINLINE void stack_body(void)
{
    void *volatile keep = catena_alloc(h, 8 * W);
    put_ptr(keep, 0, catena_alloc(h, 2 * W));
    for (int i = 0; i < 100; i++)
        catena_alloc(h, 3 * W); /* garbage, though stale copies may linger */
    UNIT_EQ(catena_collect(h), 0);
    UNIT_ASSERT(alive(keep));
    UNIT_ASSERT(alive(get_ptr(keep, 0)));
    UNIT_ASSERT(stats().objects < 102);
    UNIT_EQ(catena_check(h), 0);
}

UNIT_TEST(t_stack)
{
    volatile int top = 0;
    if (RUNNING_ON_VALGRIND) /* the scan reads uninitialised stack slots */
        return;
    mk(64 * 1024);
    catena_gc_set_stack_top(h, (void *)&top);
    stack_body();
    catena_gc_set_stack_top(h, NULL);
    UNIT_EQ(catena_collect(h), 0);
    UNIT_EQ(stats().objects, 0);
    (void)top;
}

/* ---- interior pointers ----------------------------------------------- */

/* A build without interior pointers (the small one) refuses the option
 * and runs only the handle-only round. */
UNIT_TEST(t_interior)
{
    static void *pins[8192];
    if (!CATENA_GC_INTERIOR_PTRS) {
        mk(64 * 1024);
        UNIT_EQ(catena_gc_set_options(h, CATENA_GC_INTERIOR), CATENA_EINVAL);
        UNIT_EQ(catena_gc_options(h), 0u);
    }
    for (int on = 0; on < 1 + CATENA_GC_INTERIOR_PTRS; on++) {
        mk(64 * 1024);
        /* zeroed objects: stale words from earlier rounds in this arena
         * would otherwise retain garbage (a conservative GC's right) and
         * make the exact counts below depend on layout */
        UNIT_EQ(catena_gc_set_options(h, (on ? CATENA_GC_INTERIOR : 0) |
                                             CATENA_GC_ZERO),
                0);
        unsigned char *a = catena_alloc(h, 8 * BS);
        unsigned char *e = catena_alloc(h, 4 * BS); /* becomes free */
        fragment(pins, 8192);
        size_t base = stats().objects - 2;
        unsigned char *c = catena_alloc(h, 10 * BS);
        unsigned char *c2 = catena_alloc(h, 3 * BS);
        UNIT_ASSERT(catena_extents(h, c) == 10 && catena_extents(h, c2) == 3);
        UNIT_EQ(catena_free(h, e), 0);
        void *roots[] = {a + 3 * BS + 5, catena_ptr(h, c, 7 * BS + 3, NULL),
                         c2 + 4, e, e + BS + 1, e + 3 * BS};
        gc(roots, sizeof roots / sizeof *roots);
        UNIT_EQ(alive(a), on);
        UNIT_EQ(alive(c), on);
        UNIT_EQ(alive(c2), on);
        UNIT_EQ(stats().objects, base + (on ? 3 : 0));
        if (!on)
            continue;
        /* more chains hit only through their extents than the pending
         * list holds: all found */
        enum { NC = 3 * CATENA_GC_HITS + 1 };
        void *ch[NC], *rr[NC];
        int nchained = 0;
        for (int i = 0; i < NC; i++) {
            ch[i] = catena_alloc(h, 3 * BS);
            UNIT_ASSERT(ch[i] != NULL);
            nchained += catena_extents(h, ch[i]) == 3;
            rr[i] = catena_ptr(h, ch[i], BS + (size_t)i % BS, NULL);
            UNIT_ASSERT(catena_alloc(h, 3 * BS) != NULL); /* garbage */
        }
        UNIT_ASSERT(nchained > CATENA_GC_HITS * 2);
        void *keep[3] = {a, c, c2};
        UNIT_EQ(catena_collect_start(h), 0);
        catena_collect_root(h, keep, 3);
        catena_collect_root(h, rr, NC);
        UNIT_EQ(catena_collect_end(h), 0);
        UNIT_EQ(catena_check(h), 0);
        for (int i = 0; i < NC; i++)
            UNIT_ASSERT(alive(ch[i]));
        UNIT_EQ(stats().objects, base + 3 + NC);
        /* an object referenced from an extent of a chain, found through
         * an interior pointer into a later extent */
        void *leaf = catena_alloc(h, W);
        put_ptr(ch[0], 2 * BS / W, leaf);
        rr[0] = catena_ptr(h, ch[0], 2 * BS + 1, NULL);
        gc(rr, 1);
        UNIT_ASSERT(alive(ch[0]) && alive(leaf));
        UNIT_EQ(stats().objects, base + 2);
    }
}

/* ---- mark-stack overflow --------------------------------------------- */

/* A list of n nodes {leaf, next, prev}: scanning a node pushes its leaf
 * and, with a 1-entry stack, drops next.  `down`: each node lies below the
 * previous one in the heap. */
static void *build_list(size_t n, bool down, void **nodes)
{
    for (size_t i = 0; i < n; i++) {
        nodes[i] = catena_alloc(h, 3 * W);
        CHK(nodes[i] != NULL);
    }
    for (size_t k = 0; k < n; k++) {
        size_t i = down ? n - 1 - k : k;
        void *leaf = catena_alloc(h, W);
        CHK(leaf != NULL);
        put_ptr(nodes[i], 0, leaf);
        put_ptr(nodes[i], 1, k + 1 < n ? nodes[down ? i - 1 : i + 1] : NULL);
        put_ptr(nodes[i], 2, k ? nodes[down ? i + 1 : i - 1] : NULL);
    }
    return nodes[down ? n - 1 : 0];
}

UNIT_TEST(t_deep_list)
{
    static void *nodes[100000];
    size_t per = catena_blocks_for(3 * W) + 1;
    size_t n = UNIT_ITERS(100000);
    if (n * per + 64 > catena_max_blocks())
        n = (catena_max_blocks() - 64) / per;
    size_t bytes = catena_overhead(n * per + 64) + (n * per + 64) * BS;
    UNIT_ASSERT(bytes <= sizeof arena);
    for (int down = 0; down < 2; down++) {
        for (int small = 0; small < 2; small++) {
            mk(bytes);
            if (small)
                UNIT_EQ(catena_gc_set_mark_stack(h, NULL, 1), 0);
            void *head = build_list(n, down, nodes);
            void *roots[1] = {head};
            gc(roots, 1);
            struct catena_stats s = stats();
            UNIT_EQ(s.objects, 2 * n);
            if (small) /* every next pointer is dropped once */
                UNIT_ASSERT(s.gc_overflows >= n - 1);
            UNIT_ASSERT(get_ptr(nodes[n / 2], 1) ==
                        nodes[down ? n / 2 - 1 : n / 2 + 1]);
            gc(NULL, 0);
            UNIT_EQ(stats().objects, 0);
            UNIT_EQ(stats().free_runs, 1);
        }
    }
}

/* A wide node with a 1-entry stack, and a caller-supplied stack. */
UNIT_TEST(t_wide)
{
    static uint32_t buf[8];
    mk(256 * 1024);
    UNIT_EQ(catena_gc_set_mark_stack(h, NULL, 0), CATENA_EINVAL);
    UNIT_EQ(catena_gc_set_mark_stack(h, NULL, CATENA_GC_STACK + 1),
            CATENA_EINVAL);
    UNIT_EQ(catena_gc_set_mark_stack(h, NULL, 1), 0);
    enum { N = 1000 };
    void *arr = catena_alloc(h, N * W);
    for (size_t i = 0; i < N; i++) {
        void *kid = catena_alloc(h, 2 * W);
        put_ptr(kid, 0, catena_alloc(h, W));
        put_ptr(arr, i, kid);
    }
    for (int round = 0; round < 2; round++) {
        void *roots[1] = {arr};
        gc(roots, 1);
        UNIT_EQ(stats().objects, 1 + 2 * N);
        UNIT_ASSERT(stats().gc_overflows > 0);
        UNIT_EQ(catena_gc_set_mark_stack(h, buf, 8 * 4 / CATENA_GC_ENTRY_SIZE),
                0);
    }
}

/* ---- random graphs against a reachability model ---------------------- */

#define GMAX 40
#define WMAX (24 * BS / W)
#define GARENA (24 * 1024)

enum { E_NULL, E_EXACT, E_INTERIOR, E_FREE };

struct gobj {
    void *p;
    size_t words, blocks;
    unsigned flags;
    int tgt[4], kind[4];
    uintptr_t w[WMAX];
    int fin;
    bool reach;
};
static struct gobj G[GMAX];
static int gn;
static size_t g_fill_used; /* blocks the fillers hold */
static bool g_interior;

static uintptr_t junk(void)
{
    uintptr_t v = (uintptr_t)unit_rand() | 1u; /* odd: never a handle */
    uintptr_t lo = (uintptr_t)arena;
    if (v - lo < GARENA + 4096) /* interior on: keep it outside the heap */
        v ^= (uintptr_t)1 << (sizeof v * 8 - 1);
    return v;
}

static void g_final(void *ctx, catena_heap_t *hh, void *obj)
{
    (void)ctx;
    (void)hh;
    for (int i = 0; i < gn; i++)
        if (G[i].p == obj) {
            CHK(!G[i].reach);
            G[i].fin++;
            static uintptr_t tmp[WMAX];
            CHK_EQ(catena_read(h, obj, 0, tmp, G[i].words * W), 0);
            CHK(memcmp(tmp, G[i].w, G[i].words * W) == 0);
            return;
        }
    CHK(!"finaliser called for an unknown object");
}

/* A pointer to object t of the given kind. */
static uintptr_t ptr_to(int t, int kind)
{
    struct gobj *o = &G[t];
    if (kind == E_EXACT)
        return (uintptr_t)o->p;
    /* never the handle itself: that would be an exact pointer */
    size_t off = 1 + unit_below(o->words * W - 1);
    if (!catena_is_contiguous(h, o->p) && unit_below(4) == 0)
        return (uintptr_t)o->p + 1 + unit_below(BS - 1); /* root block */
    return (uintptr_t)catena_ptr(h, o->p, off, NULL);
}

static void g_build(void **fillers, size_t *nfill)
{
    mk(GARENA);
    g_interior = unit_below(2) == 0 && CATENA_GC_INTERIOR_PTRS;
    catena_gc_set_options(h, g_interior ? CATENA_GC_INTERIOR : 0);
    catena_gc_set_finaliser(h, g_final, NULL);
    static const size_t stacks[] = {1, 2, 4, 64};
    static uint32_t sbuf[4];
    if (unit_below(8) == 0)
        catena_gc_set_mark_stack(h, sbuf, 3);
    else
        catena_gc_set_mark_stack(h, NULL, stacks[unit_below(4)]);
    /* fragment: never-collected fillers, half of them freed */
    size_t nf = 0, used = 0, limit = stats().total_blocks * 6 / 10;
    while (used < limit) {
        size_t nb = 1 + unit_below(3);
        void *f = catena_alloc_flags(h, nb * BS,
                                     CATENA_NOCOLLECT | CATENA_NOSCAN);
        CHK(f != NULL);
        used += nb;
        if (unit_below(2))
            catena_free(h, f);
        else
            fillers[nf++] = f;
    }
    *nfill = nf;
    g_fill_used = stats().used_blocks;
    gn = 4 + (int)unit_below(GMAX - 4);
    for (int i = 0; i < gn; i++) {
        struct gobj *o = &G[i];
        size_t nb = unit_below(6) ? 1 + unit_below(3) : 4 + unit_below(20);
        unsigned r = (unsigned)unit_below(20);
        o->flags = r < 4 ? CATENA_NOSCAN : r < 9 ? CATENA_FINAL
                 : r < 10 ? CATENA_NOSCAN | CATENA_FINAL
                 : r < 12 ? CATENA_NOCOLLECT : 0;
        size_t u0 = stats().used_blocks;
        o->p = catena_alloc_flags(h, nb * BS, o->flags);
        CHK(o->p != NULL);
        o->blocks = stats().used_blocks - u0;
        o->words = nb * BS / W;
        o->fin = 0;
        o->reach = false;
    }
    for (int i = 0; i < gn; i++) {
        struct gobj *o = &G[i];
        for (size_t k = 0; k < o->words; k++)
            o->w[k] = junk();
        for (int k = 0; k < 4; k++) {
            o->kind[k] = E_NULL;
            if ((size_t)k >= o->words || unit_below(3) == 0)
                continue;
            o->tgt[k] = (int)unit_below((size_t)gn);
            o->kind[k] = unit_below(3) ? E_EXACT : E_INTERIOR;
            o->w[k] = ptr_to(o->tgt[k], o->kind[k]);
        }
    }
    /* words pointing at blocks that are free at collection time */
    for (int k = 0; k < 4; k++) {
        unsigned char *t = catena_alloc(h, BS);
        if (!t)
            break;
        catena_free(h, t);
        struct gobj *o = &G[unit_below((size_t)gn)];
        size_t at = o->words - 1 - (size_t)k % o->words;
        if (at >= 4) {
            o->w[at] = (uintptr_t)(t + (unit_below(2) ? 0 : unit_below(BS)));
        }
    }
    for (int i = 0; i < gn; i++)
        CHK_EQ(catena_write(h, G[i].p, 0, G[i].w, G[i].words * W), 0);
}

static bool edge_live(int kind)
{
    return kind == E_EXACT || (kind == E_INTERIOR && g_interior);
}

/* The model: reach from the roots and the never-collected objects. */
static void g_reach(const int *roots, int nr)
{
    int stack[GMAX * 5], sp = 0;
    for (int i = 0; i < gn; i++) {
        G[i].reach = false;
        if (G[i].flags & CATENA_NOCOLLECT)
            stack[sp++] = i;
    }
    for (int r = 0; r < nr; r++)
        stack[sp++] = roots[r];
    while (sp) {
        struct gobj *o = &G[stack[--sp]];
        if (o->reach)
            continue;
        o->reach = true;
        if (o->flags & CATENA_NOSCAN)
            continue;
        for (int k = 0; k < 4; k++)
            if (edge_live(o->kind[k]) && !G[o->tgt[k]].reach)
                stack[sp++] = o->tgt[k];
    }
}

static void g_collect(const int *roots, int nr, void **fillers, size_t nf)
{
    void *rw[GMAX + 4];
    int n = 0;
    for (int r = 0; r < nr; r++)
        rw[n++] = (void *)ptr_to(roots[r], g_interior && unit_below(2)
                                                ? E_INTERIOR : E_EXACT);
    rw[n++] = (void *)junk();
    g_reach(roots, nr);
    gc(rw, (size_t)n);
    size_t objs = nf, used = g_fill_used;
    (void)fillers;
    for (int i = 0; i < gn; i++) {
        struct gobj *o = &G[i];
        bool dead_final = !o->reach && (o->flags & CATENA_FINAL);
        CHK_EQ(o->fin, dead_final ? 1 : 0);
        if (!o->reach)
            continue;
        objs++;
        used += o->blocks;
        static uintptr_t tmp[WMAX];
        CHK_EQ(catena_read(h, o->p, 0, tmp, o->words * W), 0);
        CHK(memcmp(tmp, o->w, o->words * W) == 0);
        CHK_EQ(catena_flags(h, o->p), o->flags);
    }
    struct catena_stats s = stats();
    if (s.objects != objs)
        for (int i = 0; i < gn; i++)
            if (!G[i].reach && alive(G[i].p))
                printf("retained %d flags %u interior %d contig %d\n", i,
                       G[i].flags, g_interior,
                       catena_is_contiguous(h, G[i].p));
    CHK_EQ(s.objects, objs);
    CHK_EQ(s.used_blocks, used);
}

UNIT_TEST(t_graphs)
{
    static void *fillers[GARENA / BS];
    unsigned long n = UNIT_ITERS(10000);
    unit_seed(0x6763u);
    for (unsigned long g = 0; g < n; g++) {
        size_t nf;
        g_build(fillers, &nf);
        int roots[GMAX], nr = 0;
        for (int i = 0; i < gn; i++)
            if (unit_below(4) == 0)
                roots[nr++] = i;
        g_collect(roots, nr, fillers, nf);
        /* round two: a subset of what survived, nothing allocated since */
        int r2[GMAX], n2 = 0;
        for (int i = 0; i < gn; i++)
            if (G[i].reach && !(G[i].flags & CATENA_NOCOLLECT) &&
                unit_below(3) == 0)
                r2[n2++] = i;
        for (int i = 0; i < gn; i++) /* the dead stay dead in the model */
            if (!G[i].reach)
                G[i].kind[0] = G[i].kind[1] = G[i].kind[2] = G[i].kind[3] =
                    E_NULL;
        g_collect(r2, n2, fillers, nf);
    }
    printf("gc graphs: %lu graphs, 2 collections each\n", n);
}

/* ---- the heap map ----------------------------------------------------- */

static int gc_lines;
static void see_line(void *ctx, const char *l)
{
    (void)ctx;
    if (strncmp(l, "gc: collections 1,", 18) == 0)
        gc_lines++;
}

UNIT_TEST(t_dump)
{
    mk(16 * 1024);
    gc_lines = 0;
    catena_dump(h, see_line, NULL);
    UNIT_EQ(gc_lines, 0);
    gc(NULL, 0);
    catena_dump(h, see_line, NULL);
    UNIT_EQ(gc_lines, 1);
}

/* Issue 14: every growth asks the threshold, catena_realloc_contig's
 * in-place one too (it used to skip the check). */
UNIT_TEST(t_threshold_grow)
{
    static void *roots[1];
    for (int contig = 0; contig < 2; contig++) {
        mk(64 * 1024);
        UNIT_EQ(catena_gc_set_options(h, CATENA_GC_AUTO), 0);
        UNIT_EQ(catena_gc_add_roots(h, roots, 1), 0);
        void *g = catena_alloc(h, 4 * BS); /* garbage */
        void *p = catena_alloc(h, BS);     /* free blocks follow it */
        UNIT_ASSERT(g && p);
        roots[0] = p;
        catena_gc_set_threshold(h, 4); /* 5 blocks allocated already */
        UNIT_EQ(stats().gc_collections, 0);
        void *q = contig ? catena_realloc_contig(h, p, 2 * BS)
                         : catena_realloc(h, p, 2 * BS);
        UNIT_ASSERT(q == p); /* grown in place */
        UNIT_EQ(stats().gc_collections, 1);
        UNIT_ASSERT(!alive(g) && alive(p));
        UNIT_EQ(catena_check(h), 0);
        UNIT_EQ(catena_gc_remove_roots(h, roots), 0);
    }
}

static const unit_case cases[] = {
    UNIT_CASE(t_basic),     UNIT_CASE(t_root_rule),  UNIT_CASE(t_flags),
    UNIT_CASE(t_lock),      UNIT_CASE(t_auto),       UNIT_CASE(t_roots_table),
    UNIT_CASE(t_stack),     UNIT_CASE(t_interior),   UNIT_CASE(t_deep_list),
    UNIT_CASE(t_wide),      UNIT_CASE(t_graphs),     UNIT_CASE(t_dump),
    UNIT_CASE(t_threshold_grow),
};
UNIT_MAIN("gc", cases)
