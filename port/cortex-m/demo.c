/*
 * demo.c - the long-running device demo: a MicroPython-like interpreter
 * loop on a 64 KiB catena heap, run on an emulated Cortex-M4F.
 *
 * Each iteration serves one "request" the way an interpreter does it:
 * small objects (ints, tuples), strings, a list grown by realloc, a
 * 1-8 KiB receive buffer, a response string; and it replaces two entries
 * of a long-lived cache (module globals), so that survivors end up strewn
 * over the whole heap, as they do under a collector.  Nothing is freed
 * explicitly by the "program": when an allocation fails the heap is
 * collected and the allocation retried once (MicroPython's rule); only a
 * failure after that counts.
 *
 *   default                 chaining on: must run DEMO_ITERS iterations
 *                           with zero failed allocations (exit 1 if not)
 *   -DDEMO_CONTIGUOUS_ONLY  catena_set_chaining(h, false): the same loop
 *                           on a contiguous-only heap (what MicroPython's
 *                           heap can do); reports the first failing
 *                           iteration and the number of failures
 *
 * The collector is catena's own (lib/gc.c) in its one-call form: the
 * cache is a registered root range, the stack is scanned from main()'s
 * frame, the registers by lib/regs_arm.c, and CATENA_GC_AUTO collects and
 * retries when an allocation fails.  Byte data (the receive buffer,
 * strings) is allocated CATENA_NOSCAN, as a port would do for bytes/str.
 */
#include <stdio.h>
#include <stdint.h>
#include <string.h>
#include "catena.h"

#ifndef DEMO_ITERS
#define DEMO_ITERS 1000000UL
#endif
#define ARENA_BYTES (64 * 1024)
#define CACHE 128      /* long-lived objects */
#define MAX_GARBAGE 2048

static uint64_t arena[ARENA_BYTES / 8];
static catena_heap_t *heap;
static void *cache[CACHE];

static unsigned long iter, failures, first_failure;

static void failed(void)
{
    if (failures++ == 0)
        first_failure = iter;
}

/* Allocation as an interpreter does it: with CATENA_GC_AUTO the heap
 * collects and retries once by itself; NULL after that is a failure
 * (MicroPython's MemoryError). */
static void *gc_alloc(size_t n, unsigned flags)
{
    void *p = catena_alloc_flags(heap, n, flags);
    if (!p)
        failed();
    return p;
}

/* Growing a list: in place or by appending extents; on the contiguous-only
 * heap by moving the list to a long enough run (MicroPython's realloc). */
static void *gc_realloc(void *p, size_t n)
{
#ifdef DEMO_CONTIGUOUS_ONLY
    void *q = catena_realloc_contig(heap, p, n);
#else
    void *q = catena_realloc(heap, p, n);
#endif
    if (!q)
        failed();
    return q;
}

/* xorshift32: deterministic, no 64-bit arithmetic */
static uint32_t rng = 20261126u;
static uint32_t rnd(uint32_t n)
{
    rng ^= rng << 13;
    rng ^= rng >> 17;
    rng ^= rng << 5;
    return rng % n;
}

static const char request_line[] = "GET /sensor/42?fmt=json HTTP/1.1\r\n";
static unsigned char rxdata[8192];

/* Write a string's bytes into an object (which may be chained). */
static unsigned long write_errors;
static void put(void *obj, size_t off, const void *src, size_t n)
{
    if (obj && catena_write(heap, obj, off, src, n) != 0)
        write_errors++;
}

static void request(void)
{
    /* receive buffer: 1-8 KiB, filled from the "network" */
    size_t rx = 1024 + rnd(7 * 1024 + 1);
    void *buf = gc_alloc(rx, CATENA_NOSCAN);
    put(buf, 0, rxdata, rx);

    /* parse: small objects and strings */
    void *tmp[8];
    for (int i = 0; i < 8; i++) {
        tmp[i] = gc_alloc(16 + rnd(33), 0);
        put(tmp[i], 0, &iter, sizeof iter);
    }
    void *path = gc_alloc(sizeof request_line + rnd(160), CATENA_NOSCAN);
    put(path, 0, request_line, sizeof request_line);

    /* a list of headers grown by realloc, 4 words at a time */
    void *list = NULL;
    size_t entries = 4 + rnd(60);
    for (size_t n = 4; n <= entries; n += 4) {
        void *l = gc_realloc(list, n * sizeof(void *));
        if (!l)
            break;
        list = l;
        put(list, (n - 4) * sizeof(void *), tmp, 4 * sizeof(void *));
    }

    /* response */
    void *resp = gc_alloc(64 + rnd(449), CATENA_NOSCAN);
    put(resp, 0, request_line, 16);

    /* module state: replace two cache entries (the old ones die) */
    for (int k = 0; k < 2; k++) {
        void *o = gc_alloc(16 + rnd(241), 0);
        put(o, 0, &iter, sizeof iter);
        cache[rnd(CACHE)] = o;
    }
    /* end of request: everything else is garbage; nothing is freed */
    (void)buf;
    (void)path;
    (void)resp;
}

static void print_stats(void)
{
    struct catena_stats s;
    catena_stats(heap, &s);
    printf("heap: %u blocks of %u B (%u B arena), %u free, %u used, "
           "peak %u\n",
           (unsigned)s.total_blocks, (unsigned)s.block_size,
           (unsigned)sizeof arena, (unsigned)s.free_blocks,
           (unsigned)s.used_blocks, (unsigned)s.peak_used);
    printf("      largest free run %u blocks, %u free runs, frag %u/1000\n",
           (unsigned)s.largest_free_run, (unsigned)s.free_runs,
           s.frag_permille);
    printf("      %u objects (%u chained, %u spine blocks); %u allocs, "
           "%u frees, %u failed\n",
           (unsigned)s.objects, (unsigned)s.chained_objects,
           (unsigned)s.spine_blocks, (unsigned)s.allocs, (unsigned)s.frees,
           (unsigned)s.failed_allocs);
    printf("      %u collections, last one freed %u blocks and kept %u; "
           "%u mark-stack overflows\n",
           (unsigned)s.gc_collections, (unsigned)s.gc_last_freed,
           (unsigned)s.gc_last_marked, (unsigned)s.gc_overflows);
}

int main(void)
{
    void *volatile stack_top = NULL; /* the stack is scanned up to here */
    if (catena_init(arena, sizeof arena, &heap) != 0 ||
        catena_gc_set_options(heap, CATENA_GC_AUTO | CATENA_GC_ZERO) != 0 ||
        catena_gc_add_roots(heap, cache, CACHE) != 0) {
        printf("heap set-up failed\n");
        return 2;
    }
    catena_gc_set_stack_top(heap, (void *)&stack_top);
#ifdef DEMO_CONTIGUOUS_ONLY
    catena_set_chaining(heap, false);
    const char *mode = "contiguous-only (chaining disabled)";
#else
    const char *mode = "chained";
#endif
    for (size_t i = 0; i < sizeof rxdata; i++)
        rxdata[i] = (unsigned char)(i * 131u + 7u);
    printf("demo: MicroPython-like loop, 64 KiB arena, %s, %lu iterations\n",
           mode, (unsigned long)DEMO_ITERS);
    for (iter = 0; iter < DEMO_ITERS; iter++) {
        request();
        if (iter % 10000 == 0 && catena_check(heap) != 0) {
            printf("catena_check failed at iteration %lu\n", iter);
            return 3;
        }
    }
    if (catena_check(heap) != 0 || write_errors) {
        printf("catena_check failed at the end, or %lu writes failed\n",
               write_errors);
        return 3;
    }
    print_stats();
    if (failures)
        printf("demo: %s: FIRST FAILED ALLOCATION at iteration %lu; "
               "%lu failed allocations in %lu iterations\n",
               mode, first_failure, failures, iter);
    else
        printf("demo: %s: %lu iterations, zero failed allocations\n", mode,
               iter);
#ifdef DEMO_CONTIGUOUS_ONLY
    return 0; /* failing is the expected outcome here */
#else
    return failures ? 1 : 0;
#endif
}
