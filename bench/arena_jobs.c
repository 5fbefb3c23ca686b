/*
 * arena_jobs.c - the in-arena measurements of one workload on each
 * in-arena heap: the smallest arena that runs the stream (bisection), the
 * failures at a fixed arena a little above peak live (with fragmentation
 * samples), and throughput.  The replay itself is arena.c's.
 */
#define _GNU_SOURCE
#include "ctx.h"
#include "catena.h"

#include <stdlib.h>

static size_t blocks_of(size_t n)
{
    size_t b = catena_block_size();
    return (n + b - 1) / b;
}

/* Peak of live memory in whole blocks (a lower bound for any of the
 * in-arena heaps), from the stream. */
static size_t peak_live_blocks(const struct bstream *s)
{
    size_t *cur = calloc(s->nslots ? s->nslots : 1, sizeof *cur);
    size_t live = 0, peak = 0;
    if (!cur)
        die("out of memory");
    for (size_t i = 0; i < s->nops; i++) {
        const struct bop *o = &s->ops[i];
        if (o->kind == BOP_ALLOC || o->kind == BOP_REALLOC) {
            live = live - cur[o->slot] + blocks_of(o->size);
            cur[o->slot] = blocks_of(o->size);
        } else if (o->kind == BOP_FREE) {
            live -= cur[o->slot];
            cur[o->slot] = 0;
        }
        if (live > peak)
            peak = live;
    }
    free(cur);
    return peak;
}

/* The arena "a little above peak live": (1 + headroom) x the peak of live
 * blocks, plus catena's control data and table for that many blocks.  The
 * same bytes for every in-arena heap. */
/* Documented in ctx.h. */
size_t fixed_arena(const struct bstream *s, unsigned headroom)
{
    size_t pb = peak_live_blocks(s);
    size_t nb = pb + (pb * headroom + 99) / 100 + 2;
    return nb * catena_block_size() + catena_overhead(nb);
}

static bool arena_ok(int k, const struct bstream *s, size_t bytes)
{
    void *mem = arena_mem(bytes);
    if (!mem)
        die("cannot map an arena of %zu bytes", bytes);
    struct arena_result r;
    arena_run(k, s, mem, bytes, 1, &r, NULL, 0, NULL);
    return r.ok;
}

/* Smallest arena (to 0.5 %) in which the stream completes with no failed
 * allocation; 0 when even 256 x peak live is not enough. */
static size_t min_arena(int k, const struct bstream *s)
{
    size_t lo = s->peak_live / 2, hi = s->peak_live + 4096;
    if (lo < 256)
        lo = 256;
    while (!arena_ok(k, s, hi)) {
        lo = hi;
        if (hi > 256 * (s->peak_live + 4096))
            return 0;
        hi *= 2;
    }
    while (hi - lo > hi / 200 && hi - lo > 64) {
        size_t mid = lo + (hi - lo) / 2;
        mid &= ~(size_t)7;
        if (arena_ok(k, s, mid))
            hi = mid;
        else
            lo = mid;
    }
    return hi;
}

void write_frag_csv(const struct bench_ctx *ctx, const char *w, int k,
                    const struct frag_sample *fs, size_t n,
                    const struct bstream *s)
{
    FILE *f = outf(ctx, "frag-%s-%s.csv", w, heap_name(k));
    fprintf(f, "op,iteration,free_bytes,largest_free_run,live_bytes,"
               "unusable_pct\n");
    size_t tick = 0, j = 0;
    for (size_t i = 0; i < n; i++) {
        while (j < fs[i].op && j < s->nops)
            if (s->ops[j++].kind == BOP_TICK)
                tick++;
        double un = fs[i].free_bytes
                        ? 100.0 * (1.0 - (double)fs[i].largest_run /
                                             (double)fs[i].free_bytes)
                        : 0.0;
        fprintf(f, "%zu,%zu,%zu,%zu,%zu,%.2f\n", fs[i].op, tick,
                fs[i].free_bytes, fs[i].largest_run, fs[i].live_bytes, un);
    }
    fclose(f);
}

/* Documented in ctx.h. */
void run_arena(struct bench_ctx *ctx, struct wres *wr)
{
    const struct bstream *s = &wr->s;
    int heaps[H_COUNT], nh = 0;
    heaps[nh++] = H_CATENA;
    heaps[nh++] = H_CONTIG;
    heaps[nh++] = H_MPHEAP;
    if (s->gc_ok) {
        heaps[nh++] = H_MPGC;
        heaps[nh++] = H_CATGC;
    }
    size_t maxmin = 0;
    wr->fixed_arena = fixed_arena(s, ctx->opt.headroom);
    for (int i = 0; i < nh; i++) {
        int k = heaps[i];
        struct cell *c = &wr->c[k]; /* H_* == A_* for the in-arena heaps */
        double t0 = now_sec();
        c->ran = true;
        c->min_arena = min_arena(k, s);
        c->mult =
            c->min_arena ? (double)c->min_arena / (double)s->peak_live : 0;
        if (c->min_arena > maxmin)
            maxmin = c->min_arena;
        /* fixed arena: count failures, sample fragmentation */
        enum { NSAMP = 300 };
        static struct frag_sample fs[NSAMP + 1];
        size_t nf;
        struct arena_result r;
        arena_run(k, s, arena_mem(wr->fixed_arena), wr->fixed_arena, MAX_FAIL,
                  &r, fs, NSAMP, &nf);
        c->fix_failed = r.failed;
        c->fix_ops = r.ops_done;
        c->fix_ticks = r.ticks_done;
        c->fix_ok = r.ok;
        c->chained = r.chained_allocs;
        c->allocs = r.allocs;
        c->extents = r.extents_sum;
        c->spine_peak = r.spine_peak;
        c->collections = r.collections;
        write_frag_csv(ctx, s->name, k, fs, nf, s);
        progress(ctx,
                 "  %-9s %-14s min arena %.3fx peak live; at %.2fx: %zu "
                 "failed allocs (%.1fs)",
                 s->name, heap_name(k), c->mult,
                 (double)wr->fixed_arena / (double)s->peak_live, r.failed,
                 now_sec() - t0);
    }
    /* throughput: the same arena for all, twice the largest minimum */
    size_t tb = maxmin ? 2 * maxmin : 4 * wr->fixed_arena;
    double t[16];
    for (int i = 0; i < nh; i++) {
        int k = heaps[i];
        int reps = ctx->opt.reps;
        for (int j = 0; j < reps; j++) {
            struct arena_result r;
            arena_fresh();
            arena_run(k, s, arena_mem(tb), tb, 0, &r, NULL, 0, NULL);
            t[j] = r.seconds;
        }
        wr->c[k].sec = median(t, reps);
        wr->c[k].timed = true;
    }
    progress(ctx,
             "  %-9s throughput (arena %.2fx peak live): catena %.0f ns/op, "
             "contig %.0f, mpheap %.0f",
             s->name, (double)tb / (double)s->peak_live,
             1e9 * wr->c[A_CATENA].sec / (double)s->allocs,
             1e9 * wr->c[A_CONTIG].sec / (double)s->allocs,
             1e9 * wr->c[A_MPHEAP].sec / (double)s->allocs);
}
