/*
 * arena.c - replay an operation stream on the in-arena heaps: catena
 * (chained), catena with chaining disabled (contiguous runs only, same
 * index) and the MicroPython-style heap (explicit frees, or GC-only).
 *
 * Every heap gets the same arena bytes and does the same work per
 * operation: allocate, then write every new byte (when the stream says
 * touch); catena writes a chained object segment by segment.
 */
#define _GNU_SOURCE
#include "bench.h"
#include "catena.h"
#include "mpheap.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

static const char *hnames[H_COUNT] = {"catena", "catena-contig", "mpheap",
                                      "mpheap-gc", "catena-gc"};

const char *heap_name(int k)
{
    return k >= 0 && k < H_COUNT ? hnames[k] : "?";
}

static void *amem;
static size_t ahave;

void arena_fresh(void)
{
    if (amem)
        madvise(amem, ahave, MADV_DONTNEED);
}

void *arena_mem(size_t bytes)
{
    if (bytes <= ahave)
        return amem;
    if (amem)
        munmap(amem, ahave);
    ahave = (bytes + (1u << 20)) & ~(size_t)((1u << 20) - 1);
    amem = mmap(NULL, ahave, PROT_READ | PROT_WRITE,
               MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (amem == MAP_FAILED) {
        amem = NULL;
        ahave = 0;
    }
    return amem;
}

struct run {
    int k;
    const struct bstream *s;
    catena_heap_t *ch;
    mp_heap_t *mh;
    void **ptr;    /* the object in each slot (also the GC's roots) */
    size_t *cur;   /* its size as this heap holds it */
    void **garbage; /* H_CATGC: dropped objects not freed yet */
    size_t ngarbage;
    size_t live;
    struct arena_result *r;
};

static void mp_collect_cb(mp_heap_t *h, void *ctx)
{
    struct run *u = ctx;
    mp_collect_start(h);
    mp_collect_root(h, u->ptr, u->s->nslots);
    mp_collect_end(h);
}

/* write bytes [from, to) of the object in slot */
static void touch(struct run *u, void *obj, size_t from, size_t to)
{
    if (!u->s->touch || from >= to)
        return;
    if (u->mh) {
        memset((char *)obj + from, 0x5A, to - from);
        return;
    }
    while (from < to) {
        size_t avail;
        char *p = catena_ptr(u->ch, obj, from, &avail);
        if (!p)
            return;
        size_t n = to - from < avail ? to - from : avail;
        memset(p, 0x5A, n);
        from += n;
    }
}

static void note_catena(struct run *u, void *p)
{
    if (u->k != H_CATENA && u->k != H_CATGC)
        return;
    u->r->allocs++;
    if (!catena_is_contiguous(u->ch, p)) {
        u->r->chained_allocs++;
        u->r->extents_sum += catena_extents(u->ch, p);
    } else
        u->r->extents_sum++;
}

static void sample(struct run *u, size_t op, struct frag_sample *fs)
{
    fs->op = op;
    fs->live_bytes = u->live;
    if (u->ch) {
        struct catena_stats st;
        catena_stats(u->ch, &st);
        fs->free_bytes = st.free_blocks * st.block_size;
        fs->largest_run = st.largest_free_run * st.block_size;
        if (st.spine_blocks > u->r->spine_peak)
            u->r->spine_peak = st.spine_blocks;
    } else {
        struct mp_stats st;
        mp_stats(u->mh, &st);
        fs->free_bytes = st.free_blocks * st.block_size;
        fs->largest_run = st.largest_free_run * st.block_size;
    }
}

#if BENCH_CATENA_GC
/* H_CATGC: catena's collector, called by catena_alloc on failure. */
static void catena_collect_cb(void *ctx, catena_heap_t *h)
{
    struct run *u = ctx;
    if (catena_collect_start(h) != 0)
        return;
    catena_collect_root(h, (void *const *)u->ptr, u->s->nslots);
    catena_collect_end(h);
}

static bool gcsim_collect(struct run *u)
{
    (void)u;
    return false;
}
#else
/* H_CATGC without a collector, on a failed allocation: free every dropped
 * object (what a precise collector would free); false when there was
 * nothing to free. */
static bool gcsim_collect(struct run *u)
{
    if (u->k != H_CATGC || u->ngarbage == 0)
        return false;
    for (size_t i = 0; i < u->ngarbage; i++)
        catena_free(u->ch, u->garbage[i]);
    u->ngarbage = 0;
    u->r->collections++;
    return true;
}
#endif

static void *c_alloc(struct run *u, size_t n)
{
    void *p = catena_alloc(u->ch, n);
    if (!p && gcsim_collect(u))
        p = catena_alloc(u->ch, n);
    return p;
}

static void *c_realloc(struct run *u, void *obj, size_t n)
{
    void *p = catena_realloc(u->ch, obj, n);
    if (!p && gcsim_collect(u))
        p = catena_realloc(u->ch, obj, n);
    return p;
}

/* One operation; false when an allocation failed. */
static bool step(struct run *u, const struct bop *o)
{
    void **pp = &u->ptr[o->slot];
    size_t *cp = &u->cur[o->slot];
    void *p;
    switch (o->kind) {
    case BOP_ALLOC:
        p = u->mh ? mp_alloc(u->mh, o->size, 0) : c_alloc(u, o->size);
        if (!p)
            return false;
        *pp = p;
        *cp = o->size;
        u->live += o->size;
        note_catena(u, p);
        touch(u, p, 0, o->size);
        return true;
    case BOP_FREE:
        if (!*pp)
            return true;
        if (u->k == H_CATENA || u->k == H_CONTIG)
            catena_free(u->ch, *pp);
        else if (u->k == H_MPHEAP)
            mp_free(u->mh, *pp);
        else if (u->k == H_CATGC && !BENCH_CATENA_GC)
            u->garbage[u->ngarbage++] = *pp;
        /* H_MPGC: dropping the reference is all; the collector frees */
        u->live -= *cp;
        *pp = NULL;
        *cp = 0;
        return true;
    case BOP_REALLOC:
        if (u->mh)
            p = mp_realloc(u->mh, *pp, o->size, true);
        else if (!*pp)
            p = c_alloc(u, o->size);
        else if (u->k == H_CONTIG)
            p = catena_realloc_contig(u->ch, *pp, o->size);
        else
            p = c_realloc(u, *pp, o->size);
        if (!p)
            return false;
        note_catena(u, p);
        touch(u, p, *cp < o->size ? *cp : o->size, o->size);
        u->live = u->live - *cp + o->size;
        *pp = p;
        *cp = o->size;
        return true;
    default:
        return true;
    }
}

void arena_run(int k, const struct bstream *s, void *mem, size_t bytes,
               size_t max_fail, struct arena_result *r,
               struct frag_sample *samples, size_t nsamples, size_t *nfilled)
{
    struct run u;
    memset(r, 0, sizeof *r);
    memset(&u, 0, sizeof u);
    u.k = k;
    u.s = s;
    u.r = r;
    if (nfilled)
        *nfilled = 0;
    if (k == H_MPHEAP || k == H_MPGC) {
        u.mh = mp_heap_init(mem, bytes, catena_block_size());
        if (!u.mh)
            return;
        if (k == H_MPGC)
            mp_set_collect(u.mh, mp_collect_cb, &u);
    } else {
        if (catena_init(mem, bytes, &u.ch) != 0)
            return;
        if (k == H_CONTIG)
            catena_set_chaining(u.ch, false);
#if BENCH_CATENA_GC
        if (k == H_CATGC) {
            catena_gc_set_options(u.ch, CATENA_GC_AUTO);
            catena_gc_set_collect_hook(u.ch, catena_collect_cb, &u);
        }
#endif
    }
    u.ptr = calloc(s->nslots ? s->nslots : 1, sizeof *u.ptr);
    u.cur = calloc(s->nslots ? s->nslots : 1, sizeof *u.cur);
    if (k == H_CATGC)
        u.garbage = malloc((s->allocs + 1) * sizeof *u.garbage);
    if (!u.ptr || !u.cur || (k == H_CATGC && !u.garbage)) {
        fprintf(stderr, "catena-bench: out of memory\n");
        exit(2);
    }
    size_t every = samples && nsamples ? s->nops / nsamples + 1 : 0, ns = 0;
    bool failed = false;
    double t0 = now_sec();
    size_t i;
    for (i = 0; i < s->nops; i++) {
        const struct bop *o = &s->ops[i];
        if (every && i % every == 0 && ns < nsamples)
            sample(&u, i, &samples[ns++]);
        if (o->kind == BOP_TICK) {
            if (!failed)
                r->ticks_done++;
            continue;
        }
        if (!step(&u, o)) {
            r->failed++;
            failed = true;
            if (max_fail && r->failed >= max_fail) {
                i++;
                break;
            }
        } else if (!failed)
            r->ops_done++;
    }
    r->seconds = now_sec() - t0;
    r->ok = !failed;
    if (every && ns < nsamples)
        sample(&u, i, &samples[ns++]);
    if (nfilled)
        *nfilled = ns;
    if (u.mh) {
        struct mp_stats st;
        mp_stats(u.mh, &st);
        r->collections = st.collections;
    }
#if BENCH_CATENA_GC
    if (k == H_CATGC) {
        struct catena_stats st;
        catena_stats(u.ch, &st);
        r->collections = st.gc_collections;
    }
#endif
    free(u.ptr);
    free(u.cur);
    free(u.garbage);
}
