/*
 * indefinite.c - the headline: the interpreter loop for many iterations
 * in an arena only a little above its peak of live blocks; each in-arena
 * heap runs until its first failed allocation.
 */
#define _GNU_SOURCE
#include "ctx.h"

/* Documented in ctx.h. */
void run_indefinite(struct bench_ctx *ctx)
{
    struct wparams p = ctx->opt.wp;
    p.interp_iters = ctx->opt.indef_iters;
    struct bstream s;
    workload_gen(W_INTERP, &p, &s);
    ctx->ind.iters = s.ticks;
    ctx->ind.arena = fixed_arena(&s, ctx->opt.indef_headroom);
    ctx->ind.peak_live = s.peak_live;
    ctx->ind.max_size = s.max_size;
    ctx->ind.ran = true;
    progress(ctx,
             "indefinite run: interpreter loop, %zu iterations, arena %.2fx "
             "peak live (%zu B)",
             ctx->ind.iters, (double)ctx->ind.arena / (double)s.peak_live,
             ctx->ind.arena);
    for (int k = 0; k < H_COUNT; k++) {
        enum { NSAMP = 400 };
        static struct frag_sample fs[NSAMP + 1];
        size_t nf;
        struct arena_result r;
        arena_run(k, &s, arena_mem(ctx->ind.arena), ctx->ind.arena, 1, &r, fs,
                  NSAMP, &nf);
        ctx->ind.survived[k] = r.ticks_done;
        write_frag_csv(ctx, "indefinite", k, fs, nf, &s);
        progress(ctx, "  %-14s %s after %zu iterations", heap_name(k),
                 r.ok ? "survived, stopped" : "FAILED", r.ticks_done);
    }
    bstream_free(&s);
}
