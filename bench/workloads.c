/*
 * workloads.c - the deterministic workloads of catena-bench, generated into
 * operation streams (see bench.h and doc/bench.md).
 *
 * Every random choice comes from one xorshift-style generator seeded from
 * the workload's seed: the same seed gives the same stream, byte for byte
 * (bstream.hash).  No choice depends on an allocator's result.
 */
#define _GNU_SOURCE
#include "bench.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* ---- helpers ---------------------------------------------------------- */

static void *xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (!q) {
        fprintf(stderr, "catena-bench: out of memory\n");
        exit(2);
    }
    return q;
}

/* splitmix64: seeds and steps the generator. */
struct rng {
    uint64_t s;
};

static uint64_t rnext(struct rng *r)
{
    uint64_t z = (r->s += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

/* uniform in [lo, hi] */
static size_t runi(struct rng *r, size_t lo, size_t hi)
{
    return lo + (size_t)(rnext(r) % (uint64_t)(hi - lo + 1));
}

/* log-uniform in [lo, hi]: as many objects per size octave */
static size_t rlog(struct rng *r, size_t lo, size_t hi)
{
    double u = (double)(rnext(r) >> 11) * (1.0 / 9007199254740992.0);
    double v = exp(log((double)lo) + u * (log((double)hi) - log((double)lo)));
    size_t x = (size_t)v;
    return x < lo ? lo : x > hi ? hi : x;
}

static bool rchance(struct rng *r, unsigned pct)
{
    return rnext(r) % 100u < pct;
}

/* ---- stream building -------------------------------------------------- */

void bs_init(struct bstream *s, const char *name, bool touch)
{
    memset(s, 0, sizeof *s);
    s->name = name;
    s->title = name;
    s->desc = "";
    s->touch = touch;
    s->min_size = SIZE_MAX;
}

static void push(struct bstream *s, int kind, uint32_t slot, size_t size,
                 size_t old)
{
    if (s->nops == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 4096;
        s->ops = xrealloc(s->ops, s->cap * sizeof *s->ops);
    }
    struct bop *o = &s->ops[s->nops++];
    memset(o, 0, sizeof *o);
    o->kind = (uint8_t)kind;
    o->slot = slot;
    o->size = (uint32_t)size;
    o->old = (uint32_t)old;
    if (kind != BOP_TICK)
        s->allocs++;
}

static void note_size(struct bstream *s, size_t size)
{
    if (size < s->min_size)
        s->min_size = size;
    if (size > s->max_size)
        s->max_size = size;
}

uint32_t bs_alloc(struct bstream *s, size_t size)
{
    uint32_t slot;
    if (size == 0)
        size = 1;
    if (size > UINT32_MAX)
        size = UINT32_MAX;
    if (s->nfree_slots)
        slot = s->free_slots[--s->nfree_slots];
    else {
        slot = (uint32_t)s->nslots++;
        if (s->nslots > s->cap_slots) {
            s->cap_slots = s->cap_slots ? s->cap_slots * 2 : 1024;
            s->sizes = xrealloc(s->sizes, s->cap_slots * sizeof *s->sizes);
        }
    }
    s->sizes[slot] = (uint32_t)size;
    s->live += size;
    s->peak_objs++;
    if (s->live > s->peak_live)
        s->peak_live = s->live;
    note_size(s, size);
    push(s, BOP_ALLOC, slot, size, 0);
    return slot;
}

void bs_free(struct bstream *s, uint32_t slot)
{
    size_t old = s->sizes[slot];
    if (!old)
        return;
    push(s, BOP_FREE, slot, 0, old);
    s->live -= old;
    s->sizes[slot] = 0;
    if (s->nfree_slots == s->cap_free_slots) {
        s->cap_free_slots = s->cap_free_slots ? s->cap_free_slots * 2 : 1024;
        s->free_slots =
            xrealloc(s->free_slots, s->cap_free_slots * sizeof *s->free_slots);
    }
    s->free_slots[s->nfree_slots++] = slot;
}

void bs_realloc(struct bstream *s, uint32_t slot, size_t size)
{
    size_t old = s->sizes[slot];
    if (size == 0)
        size = 1;
    push(s, BOP_REALLOC, slot, size, old);
    s->sizes[slot] = (uint32_t)size;
    s->live = s->live - old + size;
    if (s->live > s->peak_live)
        s->peak_live = s->live;
    note_size(s, size);
}

void bs_tick(struct bstream *s)
{
    push(s, BOP_TICK, 0, 0, 0);
    s->ticks++;
}

/* Free what is still live, compute the hash, drop the generator state.
 * peak_objs is recomputed here (bs_alloc counted allocations). */
void bs_finish(struct bstream *s)
{
    for (size_t i = 0; i < s->nslots; i++)
        if (s->sizes[i])
            bs_free(s, (uint32_t)i);
    size_t live = 0, peak = 0;
    for (size_t i = 0; i < s->nops; i++) {
        if (s->ops[i].kind == BOP_ALLOC && ++live > peak)
            peak = live;
        else if (s->ops[i].kind == BOP_FREE)
            live--;
    }
    s->peak_objs = peak;
    s->hash = fnv1a(1469598103934665603ULL, s->ops, s->nops * sizeof *s->ops);
    free(s->free_slots);
    free(s->sizes);
    s->free_slots = NULL;
    s->sizes = NULL;
    if (s->min_size == SIZE_MAX)
        s->min_size = 0;
}

void bstream_free(struct bstream *s)
{
    free(s->ops);
    free(s->free_slots);
    free(s->sizes);
    memset(s, 0, sizeof *s);
}

int bstream_save(const struct bstream *s, const char *path)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        return -1;
    struct bstream_hdr h;
    memset(&h, 0, sizeof h);
    h.magic = BSTREAM_MAGIC;
    h.nops = s->nops;
    h.nslots = s->nslots;
    h.hash = s->hash;
    h.touch = s->touch;
    int ok = fwrite(&h, sizeof h, 1, f) == 1 &&
             fwrite(s->ops, sizeof *s->ops, s->nops, f) == s->nops;
    if (fclose(f) != 0)
        ok = 0;
    return ok ? 0 : -1;
}

/* ---- a set of live slots with O(1) random removal ---------------------- */

struct slotset {
    uint32_t *v;
    size_t n, cap;
};

static void ss_add(struct slotset *ss, uint32_t slot)
{
    if (ss->n == ss->cap) {
        ss->cap = ss->cap ? ss->cap * 2 : 1024;
        ss->v = xrealloc(ss->v, ss->cap * sizeof *ss->v);
    }
    ss->v[ss->n++] = slot;
}

static uint32_t ss_take(struct slotset *ss, size_t i)
{
    uint32_t x = ss->v[i];
    ss->v[i] = ss->v[--ss->n];
    return x;
}

static uint32_t ss_take_random(struct slotset *ss, struct rng *r)
{
    return ss_take(ss, (size_t)(rnext(r) % ss->n));
}

/* ---- the workloads ----------------------------------------------------- */

#define KiB 1024u
#define MiB (1024u * 1024u)

static size_t scaled(const struct wparams *p, double base)
{
    double v = base * p->scale;
    return v < 1 ? 1 : (size_t)v;
}

/* 1. Sparse survivors. */
static void w_sparse(const struct wparams *p, struct bstream *s, struct rng *r)
{
    size_t target = scaled(p, 4.0 * MiB);
    struct slotset all = {0};
    while (s->live < target)
        ss_add(&all, bs_alloc(s, runi(r, 16, 255)));
    size_t n = all.n, nfree = n - n / 10;
    for (size_t i = 0; i < nfree; i++)
        bs_free(s, ss_take_random(&all, r));
    for (;;) {
        size_t sz = runi(r, 1 * KiB, 8 * KiB);
        if (s->live + sz > target)
            break;
        ss_add(&all, bs_alloc(s, sz));
    }
    free(all.v);
    s->title = "sparse survivors";
    s->desc = "Fill with 16-255 B objects (uniform) up to L = 4 MiB x scale, "
              "free 90 % of them at random, then refill with 1-8 KiB objects "
              "(uniform) to the same live volume.  The survivors are spread "
              "over the whole heap: a contiguous allocator cannot reuse the "
              "small holes for the large objects.";
}

/* 2. Robson-style adversary. */
static void w_robson(const struct wparams *p, struct bstream *s, struct rng *r)
{
    (void)r;
    size_t m = scaled(p, 2.0 * MiB);
    for (size_t sz = 32; sz <= 8 * KiB; sz *= 2) {
        struct slotset round = {0};
        while (s->live + sz <= m)
            ss_add(&round, bs_alloc(s, sz));
        for (size_t i = 0; i < round.n; i += 2)
            bs_free(s, round.v[i]);
        free(round.v);
    }
    s->title = "Robson-style adversary";
    s->desc = "Live budget M = 2 MiB x scale.  For sizes 32 B, 64 B, ... 8 KiB "
              "(n = 256): allocate objects of that size until M bytes are live, "
              "then free every other object of this round.  Each round's holes "
              "are too small for the next round's objects (survivors separate "
              "them), so a non-moving contiguous heap keeps taking new memory.";
}

/* 3. MicroPython-like interpreter loop. */
static void w_interp(const struct wparams *p, struct bstream *s, struct rng *r)
{
    size_t base = scaled(p, 1.0 * MiB), cache_cap = scaled(p, 512.0 * KiB);
    size_t iters = p->interp_iters;
    /* modules, functions, constants: allocated once, live forever */
    while (s->live < base)
        bs_alloc(s, rchance(r, 80) ? runi(r, 16, 128) : runi(r, 128, 2 * KiB));
    struct slotset cache = {0};
    size_t cache_bytes = 0;
    uint32_t tmp[64];
    for (size_t it = 0; it < iters; it++) {
        size_t nt = 0;
        /* receive a request */
        uint32_t rx = bs_alloc(s, runi(r, 1 * KiB, 8 * KiB));
        /* parse: small objects (ints, tuples, bound methods) and strings */
        size_t nsmall = runi(r, 5, 20), nstr = runi(r, 2, 6);
        for (size_t i = 0; i < nsmall && nt < 64; i++)
            tmp[nt++] = bs_alloc(s, runi(r, 16, 64));
        for (size_t i = 0; i < nstr && nt < 64; i++)
            tmp[nt++] = bs_alloc(s, runi(r, 20, 200));
        bs_free(s, rx); /* the receive buffer is dropped after parsing */
        /* a list growing by append (4 items per realloc, 8 B an item) */
        size_t items = runi(r, 4, 64), cap = 4;
        uint32_t list = bs_alloc(s, 16 + cap * 8);
        for (size_t i = 4; i < items; i += 4) {
            cap += 4;
            bs_realloc(s, list, 16 + cap * 8);
        }
        /* build the response by concatenation */
        uint32_t resp = bs_alloc(s, runi(r, 64, 256));
        size_t rlen = s->ops[s->nops - 1].size;
        size_t nparts = runi(r, 2, 6);
        for (size_t i = 0; i < nparts; i++) {
            rlen += runi(r, 32, 400);
            bs_realloc(s, resp, rlen);
        }
        /* some objects survive into a long-lived cache of bounded size */
        if (rchance(r, 10)) {
            size_t sz = rchance(r, 70) ? runi(r, 16, 256) : runi(r, 256, 2 * KiB);
            ss_add(&cache, bs_alloc(s, sz));
            cache_bytes += sz;
            while (cache_bytes > cache_cap) {
                uint32_t v = ss_take_random(&cache, r);
                cache_bytes -= s->sizes[v];
                bs_free(s, v);
            }
        }
        /* end of the request: every temporary becomes garbage */
        bs_free(s, resp);
        bs_free(s, list);
        for (size_t i = 0; i < nt; i++)
            bs_free(s, tmp[i]);
        bs_tick(s);
    }
    free(cache.v);
    s->title = "interpreter loop";
    s->desc = "A MicroPython-like web-server loop (10000 requests, 2000 "
              "with --quick).  At start, 1 MiB x scale of "
              "long-lived objects (80 % 16-128 B, 20 % 128 B-2 KiB).  Each "
              "iteration (one request): a 1-8 KiB receive buffer, 5-20 small "
              "objects of 16-64 B and 2-6 strings of 20-200 B, the buffer is "
              "dropped, a list grows by 4 items (32 B) per realloc up to 4-64 "
              "items, a response string grows by 2-6 concatenations (realloc "
              "by 32-400 B), 10 % of requests add a 16 B-2 KiB object to a "
              "cache of at most 512 KiB x scale (random eviction); then all "
              "temporaries are dropped.  The GC variants never free: dropping "
              "is clearing the reference, and the collector finds the garbage.";
    s->gc_ok = true;
}

/* 4. Daemon key-value churn. */
static size_t kv_size(struct rng *r, int mix)
{
    unsigned c = (unsigned)(rnext(r) % 100u);
    if (mix == 0) /* small-heavy */
        return c < 70 ? runi(r, 16, 128) : c < 95 ? runi(r, 128, 1 * KiB)
                                                  : runi(r, 1 * KiB, 8 * KiB);
    return c < 30 ? runi(r, 16, 128) : c < 70 ? runi(r, 128, 1 * KiB)
                                              : runi(r, 1 * KiB, 16 * KiB);
}

static void w_kv(const struct wparams *p, struct bstream *s, struct rng *r)
{
    size_t target = scaled(p, 4.0 * MiB);
    struct slotset keys = {0}, vals = {0};
    for (int round = 0; round < 6; round++) {
        int mix = round & 1;
        while (s->live < target) {
            ss_add(&keys, bs_alloc(s, runi(r, 16, 48)));
            ss_add(&vals, bs_alloc(s, kv_size(r, mix)));
        }
        size_t n = keys.n, del = n - n / 5;
        for (size_t i = 0; i < del; i++) {
            size_t j = (size_t)(rnext(r) % keys.n);
            bs_free(s, ss_take(&keys, j));
            bs_free(s, ss_take(&vals, j));
        }
        bs_tick(s);
    }
    free(keys.v);
    free(vals.v);
    s->title = "key-value churn";
    s->desc = "A redis-like daemon: insert key (16-48 B) + value pairs until "
              "4 MiB x scale is live, delete 80 % of the pairs at random, "
              "refill, 6 rounds.  Values alternate between a small-heavy mix "
              "(70 % 16-128 B, 25 % 128 B-1 KiB, 5 % 1-8 KiB) and a large-heavy "
              "mix (30 % / 40 % / 30 % 1-16 KiB) from round to round.";
}

/* 5. Growth by small appends. */
static void w_growth(const struct wparams *p, struct bstream *s, struct rng *r)
{
    size_t keep_cap = scaled(p, 2.0 * MiB);
    size_t nbuf = scaled(p, 4000.0);
    enum { ACTIVE = 64 };
    uint32_t act[ACTIVE];
    size_t len[ACTIVE], goal[ACTIVE];
    struct slotset kept = {0};
    size_t kept_bytes = 0, started = 0, na = 0;
    while (started < nbuf || na > 0) {
        while (na < ACTIVE && started < nbuf) {
            len[na] = runi(r, 8, 64);
            goal[na] = rlog(r, 256, 32 * KiB);
            act[na] = bs_alloc(s, len[na]);
            na++;
            started++;
        }
        size_t i = (size_t)(rnext(r) % na);
        len[i] += runi(r, 8, 64);
        bs_realloc(s, act[i], len[i]);
        if (len[i] >= goal[i]) {
            if (rchance(r, 30)) {
                ss_add(&kept, act[i]);
                kept_bytes += len[i];
                while (kept_bytes > keep_cap) {
                    uint32_t v = ss_take(&kept, 0);
                    kept_bytes -= s->sizes[v];
                    bs_free(s, v);
                }
            } else
                bs_free(s, act[i]);
            na--;
            act[i] = act[na];
            len[i] = len[na];
            goal[i] = goal[na];
        }
    }
    free(kept.v);
    s->title = "growth by appends";
    s->desc = "4000 x scale buffers, 64 growing at a time (interleaved at "
              "random), each from 8-64 B by appends of 8-64 B (one realloc "
              "each) to a final size of 256 B-32 KiB (log-uniform).  A "
              "finished buffer is freed (70 %) or kept (30 %) in a set of at "
              "most 2 MiB x scale (oldest dropped first).";
}

/* 6. Throughput micro-benchmarks: a ring of live objects, alloc the new,
 * free the oldest. */
static void w_micro(const struct wparams *p, struct bstream *s, struct rng *r,
                    int kind)
{
    size_t ring = kind == 2 ? 8 : 64;
    size_t n = kind == 2 ? scaled(p, 20000.0) : scaled(p, 400000.0);
    uint32_t q[64];
    for (size_t i = 0; i < n; i++) {
        size_t sz = kind == 0 ? 32 : kind == 1 ? rlog(r, 16, 4 * KiB)
                                               : runi(r, 64 * KiB, 256 * KiB);
        if (i >= ring)
            bs_free(s, q[i % ring]);
        q[i % ring] = bs_alloc(s, sz);
    }
    static const char *titles[] = {"micro: 1-block pairs", "micro: mixed pairs",
                                   "micro: large pairs"};
    static const char *descs[] = {
        "Throughput only: 400k x scale allocations of 32 B (one block), each "
        "freed 64 allocations later.  Memory is not touched.",
        "Throughput only: 400k x scale allocations of 16 B-4 KiB "
        "(log-uniform), each freed 64 allocations later.  Memory is not "
        "touched.",
        "Throughput only: 20k x scale allocations of 64-256 KiB, each freed 8 "
        "allocations later.  Memory is not touched."};
    s->title = titles[kind];
    s->desc = descs[kind];
}

static const char *names[W_COUNT] = {"sparse", "robson", "interp", "kv",
                                     "growth", "micro1", "micromix",
                                     "microbig", "replay", "python3"};

const char *workload_name(int w)
{
    return w >= 0 && w < W_COUNT ? names[w] : "?";
}

void workload_gen(int w, const struct wparams *p, struct bstream *s)
{
    struct rng r = {p->seed * 0x100000001B3ULL + (uint64_t)w * 7919u + 1u};
    bool touch = w < W_MICRO1;
    bs_init(s, names[w], touch);
    switch (w) {
    case W_SPARSE: w_sparse(p, s, &r); break;
    case W_ROBSON: w_robson(p, s, &r); break;
    case W_INTERP: w_interp(p, s, &r); break;
    case W_KV: w_kv(p, s, &r); break;
    case W_GROWTH: w_growth(p, s, &r); break;
    case W_MICRO1: w_micro(p, s, &r, 0); break;
    case W_MICROMIX: w_micro(p, s, &r, 1); break;
    case W_MICROBIG: w_micro(p, s, &r, 2); break;
    default: break;
    }
    bs_finish(s);
}
