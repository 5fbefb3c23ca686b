/*
 * cost.c - instructions per call on an emulated Cortex-M, for catena and
 * for bench/'s MicroPython-style heap (bench/mpheap.c), on a 64 KiB heap.
 * `make cortex-m-cost` builds it for M0 and M4F and runs it (cost.sh).
 *
 * Method.  QEMU runs with -icount shift=10: virtual time advances exactly
 * 2^10 ns per executed instruction.  The MPS2 boards' CMSDK timer 0
 * (0x40000000) counts down at the 25 MHz system clock, so one instruction
 * is 25.6 ticks, and a tick count converts to instructions exactly (a
 * count is off by at most one tick, 1/25 of an instruction).  With shift=0
 * (1 ns per instruction) a tick would be 40 instructions: too coarse for
 * one call.  The SysTick counts the same clock but has 24 bits: it wraps
 * after 655 360 instructions, less than a collection; the CMSDK timer's
 * 32 bits last 167 million.
 *
 * calibrate() derives the ticks per instruction from a loop of known
 * length and checks the method before anything is measured: two timer
 * reads in a row, an empty call measured twice and loops of 10 and 100
 * iterations must give exactly the expected instruction counts, else the
 * run fails (exit 1).  A measured call's count is the instructions from
 * the first timer read to the second, less the second read itself: the
 * argument set-up, the call, the body and the return.
 *
 * Two streams, each run on both heaps with the same requests:
 *  - adversarial (no collector): a checkerboard of one-block objects over
 *    the whole heap with every other one freed, then large allocations
 *    (catena chains them over the one-block holes; a contiguous heap
 *    scans and fails; first the largest request the heap can serve),
 *    frees of those long chains, objects grown by
 *    realloc across the holes and shrunk back (chain, unchain), and a
 *    second checkerboard of 2-block objects with holes of 1-7 blocks;
 *  - interp: the device demo's interpreter loop (demo.c's request:
 *    a 1-8 KiB buffer, small objects, strings, a list grown by realloc,
 *    two long-lived cache entries replaced per request); nothing is freed
 *    explicitly: an allocation that fails runs a collection (start, the
 *    roots, end; measured as one collection) and is retried once.
 * Allocations zero their memory on both heaps (mpheap always does; catena
 * with CATENA_GC_ZERO), except catena's NOSCAN byte data in interp.
 *
 * Output: one line per heap, stream and operation,
 *     cost CORE HEAP STREAM OP CALLS MEAN MAX FAILED WHERE
 * (MEAN, MAX in instructions; FAILED the calls that returned NULL; WHERE
 * the phase of the maximum); "cost-big" and "cost-largest" lines give
 * single large allocations with their extents and their frees,
 * "cost-oom" the interp allocations that failed even after a collection;
 * then "cost: ok".
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "catena.h"
#include "mpheap.h"

#ifndef COST_CORE
#define COST_CORE "?"
#endif
#ifndef COST_ITERS
#define COST_ITERS 3000u /* interp requests */
#endif
#define ARENA_BYTES (64 * 1024)

/* ---- the timer ---------------------------------------------------------- */

#define TIMER0 ((volatile uint32_t *)0x40000000u) /* CTRL, VALUE, RELOAD */

static inline uint32_t now(void)
{
    __asm__ volatile("" ::: "memory");
    uint32_t t = TIMER0[1];
    __asm__ volatile("" ::: "memory");
    return t;
}

static uint32_t over_ticks;   /* two reads in a row */
static uint32_t ticks_per_ki; /* ticks per 1024 instructions */

/* Ticks to instructions, rounded to the nearest. */
static uint32_t to_insns(uint32_t ticks)
{
    return (uint32_t)(((uint64_t)ticks * 1024u + ticks_per_ki / 2) /
                      ticks_per_ki);
}

/* Instructions between two reads (the timer counts down), less the
 * second read. */
static uint32_t insns(uint32_t t0, uint32_t t1)
{
    return to_insns(t0 - t1 - over_ticks);
}

__attribute__((noinline)) void cost_empty(void) { __asm__ volatile(""); }

/* 2 instructions per iteration, n >= 1 */
__attribute__((noinline)) void cost_loop(uint32_t n)
{
    __asm__ volatile(".syntax unified\n1:\tsubs %0, %0, #1\n\tbne 1b"
                     : "+l"(n) : : "cc");
}

static uint32_t loop_ticks(uint32_t n)
{
    uint32_t t0 = now();
    cost_loop(n);
    return t0 - now();
}

static int calibrate(void)
{
    TIMER0[0] = 0;
    TIMER0[2] = 0xffffffffu;
    TIMER0[1] = 0xffffffffu;
    TIMER0[0] = 1;
    uint32_t lo = 0xffffffffu, hi = 0;
    for (int i = 0; i < 8; i++) {
        uint32_t t0 = now(), d = t0 - now();
        lo = d < lo ? d : lo;
        hi = d > hi ? d : hi;
    }
    over_ticks = lo;
    /* 2048 instructions between loop(1) and loop(1025) */
    uint32_t base = loop_ticks(1);
    ticks_per_ki = (loop_ticks(1025) - base) / 2;
    uint32_t t0 = now();
    cost_empty();
    uint32_t t1 = now();
    cost_empty();
    uint32_t t2 = now();
    uint32_t e1 = insns(t0, t1), e2 = insns(t1, t2);
    uint32_t d10 = to_insns(loop_ticks(11) - base);
    uint32_t d100 = to_insns(loop_ticks(101) - base);
    printf("cost: %s timer: %lu ticks per 1024 instructions, read-read %lu ticks "
           "(spread %lu), empty call %lu and %lu instructions, loop +10 "
           "iterations %lu, +100 %lu\n", COST_CORE,
           (unsigned long)ticks_per_ki, (unsigned long)over_ticks,
           (unsigned long)(hi - lo), (unsigned long)e1, (unsigned long)e2,
           (unsigned long)d10, (unsigned long)d100);
    if (ticks_per_ki < 1024 || hi - lo > 1 || e1 != e2 || e1 < 2 || e1 > 4 ||
        d10 != 20 || d100 != 200) {
        printf("cost: FAIL: the timer does not count instructions "
               "(run under qemu -icount shift=10)\n");
        return 1;
    }
    return 0;
}

/* ---- statistics ---------------------------------------------------------- */

enum { OP_ALLOC, OP_FREE, OP_REALLOC, OP_COLLECT, OPS };
static const char *const op_name[OPS] = {"alloc", "free", "realloc",
                                         "collect"};

struct stat {
    uint32_t calls, failed, max;
    uint64_t sum;
    const char *where;
};
static struct stat st[OPS];
static const char *phase = "";
static uint32_t last; /* the last measured call */

static void note(int op, uint32_t t0, uint32_t t1, bool ok)
{
    uint32_t n = last = insns(t0, t1);
    struct stat *s = &st[op];
    s->calls++;
    s->sum += n;
    if (!ok)
        s->failed++;
    if (n > s->max) {
        s->max = n;
        s->where = phase;
    }
}

static void report(const char *heap, const char *stream)
{
    for (int op = 0; op < OPS; op++) {
        struct stat *s = &st[op];
        if (!s->calls)
            continue;
        printf("cost %s %s %s %s %lu %lu %lu %lu %s\n", COST_CORE, heap,
               stream, op_name[op], (unsigned long)s->calls,
               (unsigned long)((s->sum + s->calls / 2) / s->calls),
               (unsigned long)s->max, (unsigned long)s->failed, s->where);
    }
    memset(st, 0, sizeof st);
}

/* ---- the two heaps behind one interface ---------------------------------- */

static uint64_t arena[ARENA_BYTES / 8];

struct heap {
    const char *name;
    void (*init)(bool gc);
    void *(*alloc)(size_t n, bool bytes);
    void (*free)(void *p);
    void *(*realloc)(void *p, size_t n);
    void (*collect)(void *const *roots, size_t n, void *const *r2, size_t n2);
    void (*put)(void *p, size_t off, const void *src, size_t n);
    size_t (*extents)(void *p);
    size_t (*largest)(void); /* bytes the heap can allocate now */
};

/* catena: zeroed allocations (CATENA_GC_ZERO), no automatic collection */
static catena_heap_t *ch;

static void c_init(bool gc)
{
    (void)gc;
    if (catena_init(arena, sizeof arena, &ch) ||
        catena_gc_set_options(ch, CATENA_GC_ZERO)) {
        printf("cost: FAIL: catena_init\n");
        ch = NULL;
    }
}

static void *c_alloc(size_t n, bool bytes)
{
    unsigned f = bytes ? CATENA_NOSCAN : 0;
    uint32_t t0 = now();
    void *p = catena_alloc_flags(ch, n, f);
    note(OP_ALLOC, t0, now(), p != NULL);
    return p;
}

static void c_free(void *p)
{
    uint32_t t0 = now();
    int e = catena_free(ch, p);
    note(OP_FREE, t0, now(), e == 0);
}

static void *c_realloc(void *p, size_t n)
{
    uint32_t t0 = now();
    void *q = catena_realloc(ch, p, n);
    note(OP_REALLOC, t0, now(), q != NULL);
    return q;
}

static void c_collect(void *const *r, size_t n, void *const *r2, size_t n2)
{
    uint32_t t0 = now();
    int e = catena_collect_start(ch);
    catena_collect_root(ch, r, n);
    catena_collect_root(ch, r2, n2);
    e |= catena_collect_end(ch);
    note(OP_COLLECT, t0, now(), e == 0);
}

static void c_put(void *p, size_t off, const void *src, size_t n)
{
    catena_write(ch, p, off, src, n);
}

static size_t c_extents(void *p) { return catena_extents(ch, p); }

/* the guarantee: n succeeds when free_blocks >= catena_blocks_for(n) */
static size_t c_largest(void)
{
    struct catena_stats cs;
    catena_stats(ch, &cs);
    size_t n = cs.free_blocks * 16;
    while (n && catena_blocks_for(n) > cs.free_blocks)
        n -= 16;
    return n;
}

/* the MicroPython-style heap: no collect callback (the stream collects) */
static mp_heap_t *mh;

static void m_init(bool gc)
{
    (void)gc;
    mh = mp_heap_init(arena, sizeof arena, 16);
    if (!mh)
        printf("cost: FAIL: mp_heap_init\n");
}

static void *m_alloc(size_t n, bool bytes)
{
    (void)bytes;
    uint32_t t0 = now();
    void *p = mp_alloc(mh, n, 0);
    note(OP_ALLOC, t0, now(), p != NULL);
    return p;
}

static void m_free(void *p)
{
    uint32_t t0 = now();
    mp_free(mh, p);
    note(OP_FREE, t0, now(), true);
}

static void *m_realloc(void *p, size_t n)
{
    uint32_t t0 = now();
    void *q = mp_realloc(mh, p, n, true);
    note(OP_REALLOC, t0, now(), q != NULL);
    return q;
}

static void m_collect(void *const *r, size_t n, void *const *r2, size_t n2)
{
    uint32_t t0 = now();
    mp_collect_start(mh);
    mp_collect_root(mh, (void **)(uintptr_t)r, n);
    mp_collect_root(mh, (void **)(uintptr_t)r2, n2);
    mp_collect_end(mh);
    note(OP_COLLECT, t0, now(), true);
}

static void m_put(void *p, size_t off, const void *src, size_t n)
{
    memcpy((char *)p + off, src, n);
}

static size_t m_extents(void *p) { return p != NULL; }

static size_t m_largest(void)
{
    struct mp_stats ms;
    mp_stats(mh, &ms);
    return ms.largest_free_run * 16;
}

static const struct heap heaps[] = {
    {"catena", c_init, c_alloc, c_free, c_realloc, c_collect, c_put,
     c_extents, c_largest},
    {"mpheap", m_init, m_alloc, m_free, m_realloc, m_collect, m_put,
     m_extents, m_largest},
};

/* ---- the adversarial stream ---------------------------------------------- */

#define SLOTS 4096
static void *slot[SLOTS];
static size_t nslots;

/* Fill the heap with survivors of `keep` blocks alternating with
 * objects of 1..max_hole blocks (16 B each), then free the latter: holes
 * of one block (max_hole 1, a checkerboard) or of every small size class,
 * so that a fit probes its class. */
static void holes(const struct heap *hp, size_t keep, size_t max_hole)
{
    phase = "checkerboard fill";
    for (nslots = 0; nslots < SLOTS; nslots++) {
        size_t b = nslots % 2 ? 1 + nslots / 2 % max_hole : keep;
        if (!(slot[nslots] = hp->alloc(b * 16, false)))
            break;
    }
    phase = "checkerboard free";
    for (size_t i = 1; i < nslots; i += 2) {
        hp->free(slot[i]);
        slot[i] = NULL;
    }
}

static void free_all(const struct heap *hp)
{
    phase = "free all";
    for (size_t i = 0; i < nslots; i++)
        if (slot[i]) {
            hp->free(slot[i]);
            slot[i] = NULL;
        }
}

#define BIG 24
static void *big[BIG];

/* The largest request the heap can serve now: over a checkerboard,
 * catena's longest possible chain. */
static void largest(const struct heap *hp)
{
    size_t n = hp->largest();
    phase = "largest allocation";
    void *p = hp->alloc(n, false);
    uint32_t a = last;
    if (p) {
        size_t k = hp->extents(p);
        phase = "free of the largest";
        hp->free(p);
        printf("cost-largest %s %s %lu B: %lu extents, alloc %lu, free %lu "
               "instructions\n", COST_CORE, hp->name, (unsigned long)n,
               (unsigned long)k, (unsigned long)a, (unsigned long)last);
    }
}

static void big_objects(const struct heap *hp)
{
    static const size_t sizes[] = {256, 1024, 4096, 8192, 640, 2000};
    uint32_t cost[BIG];
    phase = "large allocation over holes";
    for (int i = 0; i < BIG; i++) {
        big[i] = hp->alloc(sizes[i % 6], false);
        cost[i] = last;
    }
    /* each allocation's cost against its extents, then its free's */
    phase = "free of long chains";
    for (int i = 0; i < BIG; i++)
        if (big[i]) {
            size_t k = hp->extents(big[i]);
            hp->free(big[i]);
            printf("cost-big %s %s %lu B: %lu extents, alloc %lu, free %lu "
                   "instructions\n", COST_CORE, hp->name,
                   (unsigned long)sizes[i % 6], (unsigned long)k,
                   (unsigned long)cost[i], (unsigned long)last);
            big[i] = NULL;
        }
}

/* Grow objects step by step over the holes, then shrink them back. */
static void grow_shrink(const struct heap *hp)
{
    for (int k = 0; k < 4; k++) {
        phase = "realloc grow (chain)";
        void *p = hp->alloc(32, false);
        size_t n = 32;
        while (p && n < 6144) {
            void *q = hp->realloc(p, n + 208);
            if (!q)
                break;
            p = q;
            n += 208;
        }
        phase = "realloc shrink (unchain)";
        while (p && n > 32) {
            n = n > 512 ? n / 2 : 32;
            void *q = hp->realloc(p, n);
            if (!q)
                break;
            p = q;
        }
        phase = "free";
        if (p)
            hp->free(p);
    }
}

static void adversarial(const struct heap *hp)
{
    hp->init(false);
    holes(hp, 1, 1);
    largest(hp);
    big_objects(hp);
    grow_shrink(hp);
    free_all(hp);
    holes(hp, 2, 7);
    big_objects(hp);
    grow_shrink(hp);
    free_all(hp);
    report(hp->name, "adversarial");
}

/* ---- the interpreter loop (demo.c's request) ------------------------------ */

#define CACHE 128
#define FRAME 16
static void *cache[CACHE];
static void *frame[FRAME]; /* the request's locals: a root range */

static uint32_t rng;
static uint32_t rnd(uint32_t n)
{
    rng ^= rng << 13;
    rng ^= rng >> 17;
    rng ^= rng << 5;
    return rng % n;
}

/* MicroPython's rule: on failure collect, then retry once; a failure
 * after that is a MemoryError (counted in oom) */
static uint32_t oom;

/* p NULL: allocate n bytes; else resize p to n */
static void *gc_call(const struct heap *hp, void *p, size_t n, bool bytes)
{
    phase = "interp";
    void *q = p ? hp->realloc(p, n) : hp->alloc(n, bytes);
    if (!q) {
        hp->collect(cache, CACHE, frame, FRAME);
        phase = "interp, after a collection";
        if (!(q = p ? hp->realloc(p, n) : hp->alloc(n, bytes)))
            oom++;
    }
    return q;
}

static void *gc_alloc(const struct heap *hp, size_t n, bool bytes)
{
    return gc_call(hp, NULL, n, bytes);
}

static void request(const struct heap *hp, uint32_t iter)
{
    memset(frame, 0, sizeof frame);
    frame[0] = gc_alloc(hp, 1024 + rnd(7 * 1024 + 1), true); /* rx buffer */
    for (int i = 0; i < 8; i++) {
        void *o = gc_alloc(hp, 16 + rnd(33), false);
        if (o)
            hp->put(o, 0, &iter, sizeof iter);
        frame[1 + i] = o;
    }
    frame[9] = gc_alloc(hp, 35 + rnd(160), true); /* path string */
    size_t entries = 4 + rnd(60);
    frame[10] = gc_alloc(hp, 4 * sizeof(void *), false);
    for (size_t n = 4; frame[10] && n <= entries; n += 4) {
        if (n > 4) {
            void *l = gc_call(hp, frame[10], n * sizeof(void *), false);
            if (!l)
                break;
            frame[10] = l;
        }
        hp->put(frame[10], (n - 4) * sizeof(void *), &frame[1],
                4 * sizeof(void *));
    }
    frame[11] = gc_alloc(hp, 64 + rnd(449), true); /* response */
    for (int k = 0; k < 2; k++) {
        void *o = gc_alloc(hp, 16 + rnd(241), false);
        if (o)
            hp->put(o, 0, &iter, sizeof iter);
        cache[rnd(CACHE)] = o;
    }
}

static void interp(const struct heap *hp)
{
    hp->init(true);
    memset(cache, 0, sizeof cache);
    rng = 20261126u;
    oom = 0;
    for (uint32_t it = 0; it < COST_ITERS; it++)
        request(hp, it);
    printf("cost-oom %s %s interp %lu requests: %lu allocations failed "
           "after a collection\n", COST_CORE, hp->name,
           (unsigned long)COST_ITERS, (unsigned long)oom);
    report(hp->name, "interp");
}

int main(void)
{
    if (calibrate())
        return 1;
    for (size_t i = 0; i < sizeof heaps / sizeof heaps[0]; i++) {
        adversarial(&heaps[i]);
        interp(&heaps[i]);
    }
    if (!ch || !mh)
        return 1;
    printf("cost: ok\n");
    return 0;
}
