/*
 * stress_threads.c - T threads x N random malloc / calloc / realloc /
 * free / memalign calls with content checks, for running under the shim
 * (make check-long: 4 x 10^6).
 *
 * Every block describes itself: a header {size, seed} then bytes derived
 * from the seed, so any thread can verify a block it did not allocate.
 * Blocks move between threads through a shared mailbox (an atomic swap):
 * the thread that takes one verifies it and later frees or resizes it, so
 * cross-thread frees are exercised.  Sizes are mostly small, some up to
 * 16 KiB, a few above the shim's large-object threshold.
 *
 * Usage: stress_threads [threads [ops-per-thread [seed]]]
 * Exit 0 when every check passed; a failed check prints what and aborts.
 */
#define _GNU_SOURCE
#include <malloc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stress.h"

#define SLOTS 512
#define MAILBOX 64

struct hdr {
    size_t size;
    uint64_t seed;
};

static _Atomic(unsigned char *) mailbox[MAILBOX];
static unsigned long ops = 1000000;
static uint64_t seed0 = 1;

static void die(const char *what, uint64_t seed, size_t at)
{
    fprintf(stderr, "stress_threads: %s (block seed %llu, byte %zu)\n", what,
            (unsigned long long)seed, at);
    abort();
}

static unsigned char pat(uint64_t seed, size_t i)
{
    return (unsigned char)((seed >> (i % 7 * 8)) + i * 131);
}

static size_t pick_size(uint64_t *r)
{
    uint64_t x = next(r);
    switch (x % 16) {
    case 0: case 1: case 2: case 3: case 4: case 5: case 6: case 7:
        return sizeof(struct hdr) + (x >> 8) % 128;
    case 8: case 9: case 10: case 11: case 12:
        return sizeof(struct hdr) + (x >> 8) % 2048;
    case 13: case 14:
        return sizeof(struct hdr) + (x >> 8) % 16384;
    default:
        return (x >> 8) % 64 == 0 ? 128 * 1024 + (x >> 16) % (1 << 20)
                                  : sizeof(struct hdr) + (x >> 8) % 8192;
    }
}

/* Write bytes [from, size) of a block of `size` bytes. */
static void fill(unsigned char *p, size_t size, uint64_t seed, size_t from)
{
    struct hdr h = {size, seed};
    memcpy(p, &h, sizeof h);
    for (size_t i = from > sizeof h ? from : sizeof h; i < size; i++)
        p[i] = pat(seed, i);
}

/* Check the first `upto` bytes (all when upto is 0); returns the size. */
static size_t verify(const unsigned char *p, size_t upto)
{
    struct hdr h;
    memcpy(&h, p, sizeof h);
    size_t n = upto ? upto : h.size;
    if (h.size < sizeof h || n > h.size)
        die("header overwritten", h.seed, 0);
    for (size_t i = sizeof h; i < n; i++)
        if (p[i] != pat(h.seed, i))
            die("content changed", h.seed, i);
    if (malloc_usable_size((void *)p) < h.size)
        die("usable size below the request", h.seed, h.size);
    return h.size;
}

static unsigned char *new_block(uint64_t *r)
{
    size_t n = pick_size(r);
    uint64_t seed = next(r);
    unsigned char *p;
    void *q = NULL;
    switch (next(r) % 8) {
    case 0:
        p = calloc(1, n);
        if (p)
            for (size_t i = sizeof(struct hdr); i < n; i++)
                if (p[i])
                    die("calloc memory not zero", seed, i);
        break;
    case 1: {
        size_t align = (size_t)64 << next(r) % 6;
        p = posix_memalign(&q, align, n) ? NULL : q;
        if (p && (uintptr_t)p % align)
            die("posix_memalign misaligned", seed, align);
        break;
    }
    default:
        p = malloc(n);
    }
    if (!p)
        die("out of memory", seed, n);
    fill(p, n, seed, 0);
    return p;
}

static void *worker(void *arg)
{
    uint64_t r = seed0 * 1000003u + (uint64_t)(uintptr_t)arg;
    unsigned char *slot[SLOTS] = {0};
    for (unsigned long i = 0; i < ops; i++) {
        unsigned char **s = &slot[next(&r) % SLOTS];
        unsigned op = (unsigned)(next(&r) % 16);
        if (!*s) {
            *s = new_block(&r);
        } else if (op < 6) {
            verify(*s, 0);
            free(*s);
            *s = NULL;
        } else if (op < 11) {
            size_t old = verify(*s, 0), n = pick_size(&r);
            struct hdr h;
            memcpy(&h, *s, sizeof h);
            unsigned char *q = realloc(*s, n);
            if (!q)
                die("realloc failed", h.seed, n);
            size_t keep = old < n ? old : n;
            for (size_t k = sizeof h; k < keep; k++)
                if (q[k] != pat(h.seed, k))
                    die("realloc lost content", h.seed, k);
            fill(q, n, h.seed, keep);
            *s = q;
        } else if (op < 13) { /* hand the block to whichever thread */
            verify(*s, 0);
            *s = atomic_exchange(&mailbox[next(&r) % MAILBOX], *s);
            if (*s)
                verify(*s, 0);
        } else {
            verify(*s, 0);
        }
    }
    for (size_t i = 0; i < SLOTS; i++)
        if (slot[i]) {
            verify(slot[i], 0);
            free(slot[i]);
        }
    return NULL;
}

int main(int argc, char **argv)
{
    int threads = argc > 1 ? atoi(argv[1]) : 4;
    if (argc > 2)
        ops = strtoul(argv[2], NULL, 10);
    if (argc > 3)
        seed0 = strtoull(argv[3], NULL, 10);
    if (threads < 1 || threads > 64 || !ops) {
        fprintf(stderr, "usage: stress_threads [threads [ops [seed]]]\n");
        return 2;
    }
    pthread_t t[64];
    for (int i = 0; i < threads; i++)
        if (pthread_create(&t[i], NULL, worker, (void *)(uintptr_t)i)) {
            fprintf(stderr, "stress_threads: pthread_create failed\n");
            return 1;
        }
    for (int i = 0; i < threads; i++)
        pthread_join(t[i], NULL);
    for (size_t i = 0; i < MAILBOX; i++) {
        unsigned char *p = atomic_load(&mailbox[i]);
        if (p) {
            verify(p, 0);
            free(p);
        }
    }
    printf("stress_threads: %d threads x %lu operations, seed %llu: all "
           "checks passed\n",
           threads, ops, (unsigned long long)seed0);
    return 0;
}
