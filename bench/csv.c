/*
 * csv.c - the CSV and gnuplot data files of a run, and the numbers the
 * report derives from the results (bounds, ratios, chain statistics).
 */
#define _GNU_SOURCE
#include "ctx.h"
#include "catena.h"

#include <math.h>

double robson(const struct bstream *s)
{
    double n = s->min_size ? (double)s->max_size / (double)s->min_size : 1;
    return 1 + log2(n < 1 ? 1 : n) / 2;
}

double o1heap(const struct bstream *s)
{
    double n = s->min_size ? (double)s->max_size / (double)s->min_size : 1;
    return 2 * (1 + ceil(log2(n < 1 ? 1 : n)));
}

bool have_col(const struct bench_ctx *ctx, int a)
{
    for (int w = 0; w < W_COUNT; w++)
        if (ctx->res[w].ran && ctx->res[w].c[a].ran)
            return true;
    return false;
}

double ops_per_s(const struct wres *wr, int a)
{
    const struct cell *c = &wr->c[a];
    return c->timed && c->sec > 0 ? (double)wr->s.allocs / c->sec : 0;
}

bool chain_row(const struct wres *wr, struct chainrow *r)
{
    const struct cell *c = &wr->c[A_CATENA];
    if (!wr->ran || !c->ran)
        return false;
    r->c = c;
    r->share = c->allocs ? (double)c->chained / (double)c->allocs : 0.0;
    r->mean_ext = c->allocs ? (double)c->extents / (double)c->allocs : 0.0;
    r->overhead = catena_overhead(catena_arena_blocks(0, wr->fixed_arena));
    return true;
}

/* Documented in ctx.h. */
void write_csvs(const struct bench_ctx *ctx)
{
    FILE *f = outf(ctx, "workloads.csv");
    fprintf(f, "workload,title,ops,allocator_calls,iterations,slots,peak_live_"
               "bytes,peak_objects,min_size,max_size,robson_mult,o1heap_mult,"
               "fixed_arena_bytes,stream_hash\n");
    for (int w = 0; w < W_COUNT; w++) {
        const struct wres *wr = &ctx->res[w];
        if (!wr->ran)
            continue;
        const struct bstream *s = &wr->s;
        fprintf(f,
                "%s,\"%s\",%zu,%zu,%zu,%zu,%zu,%zu,%zu,%zu,%.3f,%.3f,%zu,"
                "%016llx\n",
                s->name, s->title, s->nops, s->allocs, s->ticks, s->nslots,
                s->peak_live, s->peak_objs, s->min_size, s->max_size,
                robson(s), o1heap(s), wr->fixed_arena,
                (unsigned long long)s->hash);
    }
    fclose(f);
    f = outf(ctx, "summary.csv");
    fprintf(f, "workload,allocator,kind,peak_live_bytes,min_arena_bytes,"
               "arena_multiplier,fixed_arena_bytes,fixed_failed_allocs,"
               "fixed_ops_before_failure,peak_rss_bytes,rss_ratio,seconds,"
               "ops_per_s,ns_per_op,speed_vs_jemalloc\n");
    for (int w = 0; w < W_COUNT; w++) {
        const struct wres *wr = &ctx->res[w];
        if (!wr->ran)
            continue;
        double je = ops_per_s(wr, A_JEMALLOC);
        for (int a = 0; a < A_COUNT; a++) {
            const struct cell *c = &wr->c[a];
            if (!c->ran)
                continue;
            double ops = ops_per_s(wr, a);
            fprintf(f, "%s,%s,%s,%zu,", wr->s.name, bench_anames[a],
                    bench_is_arena(a) ? "arena" : "process", wr->s.peak_live);
            if (bench_is_arena(a))
                fprintf(f, "%zu,%.4f,%zu,%zu,%zu,,,", c->min_arena, c->mult,
                        wr->fixed_arena, c->fix_failed, c->fix_ops);
            else
                fprintf(f, ",,,,,%zu,%.4f,", c->rss_peak, c->rss_ratio);
            fprintf(f, "%.6f,%.0f,%.1f,", c->sec, ops, ops ? 1e9 / ops : 0.0);
            if (je > 0)
                fprintf(f, "%.3f\n", ops / je);
            else
                fprintf(f, "\n");
        }
    }
    fclose(f);
    f = outf(ctx, "catena.csv");
    fprintf(f, "workload,allocations,chained_allocations,chained_share,"
               "mean_extents,spine_blocks_peak,table_overhead_bytes,"
               "fixed_arena_bytes\n");
    for (int w = 0; w < W_COUNT; w++) {
        struct chainrow r;
        if (chain_row(&ctx->res[w], &r))
            fprintf(f, "%s,%zu,%zu,%.5f,%.4f,%zu,%zu,%zu\n",
                    ctx->res[w].s.name, r.c->allocs, r.c->chained, r.share,
                    r.mean_ext, r.c->spine_peak, r.overhead,
                    ctx->res[w].fixed_arena);
    }
    fclose(f);
    if (ctx->ind.ran) {
        f = outf(ctx, "indefinite.csv");
        fprintf(f, "heap,arena_bytes,peak_live_bytes,iterations,survived\n");
        for (int k = 0; k < H_COUNT; k++)
            fprintf(f, "%s,%zu,%zu,%zu,%zu\n", heap_name(k), ctx->ind.arena,
                    ctx->ind.peak_live, ctx->ind.iters, ctx->ind.survived[k]);
        fclose(f);
    }
    /* bar-chart data for gnuplot (whitespace separated, quoted heads) */
    f = outf(ctx, "multiplier.dat");
    fprintf(f, "workload");
    for (int a = 0; a < A_COUNT; a++)
        if (a != A_MPGC && a != A_CATGC && have_col(ctx, a))
            fprintf(f, " \"%s\"", bench_anames[a]);
    fprintf(f, " \"Robson bound\"\n");
    for (int w = 0; w < W_COUNT; w++) {
        const struct wres *wr = &ctx->res[w];
        if (!wr->ran || bench_is_micro(w))
            continue;
        fprintf(f, "%s", wr->s.name);
        for (int a = 0; a < A_COUNT; a++) {
            if (a == A_MPGC || a == A_CATGC || !have_col(ctx, a))
                continue;
            const struct cell *c = &wr->c[a];
            double v = !c->ran             ? NAN
                       : bench_is_arena(a) ? c->mult
                                           : c->rss_ratio;
            if (bench_is_arena(a) && c->ran && !c->min_arena)
                v = NAN;
            if (isnan(v))
                fprintf(f, " -");
            else
                fprintf(f, " %.4f", v);
        }
        fprintf(f, " %.4f\n", robson(&wr->s));
    }
    fclose(f);
    f = outf(ctx, "throughput.dat");
    fprintf(f, "workload");
    for (int a = 0; a < A_COUNT; a++)
        if (have_col(ctx, a))
            fprintf(f, " \"%s\"", bench_anames[a]);
    fprintf(f, "\n");
    for (int w = 0; w < W_COUNT; w++) {
        const struct wres *wr = &ctx->res[w];
        if (!wr->ran)
            continue;
        fprintf(f, "%s", wr->s.name);
        for (int a = 0; a < A_COUNT; a++) {
            if (!have_col(ctx, a))
                continue;
            double o = ops_per_s(wr, a);
            if (o > 0)
                fprintf(f, " %.4f", o / 1e6);
            else
                fprintf(f, " -");
        }
        fprintf(f, "\n");
    }
    fclose(f);
}

/* Documented in ctx.h. */
void real_csv(const struct bench_ctx *ctx)
{
    bool any = false;
    for (int w = 0; w < RW_COUNT; w++)
        any |= ctx->real.w[w].ran;
    if (!any)
        return;
    FILE *f = outf(ctx, "real.csv");
    fprintf(f, "workload,allocator,seconds,calls,peak_rss_kib,"
               "speed_vs_jemalloc,rss_vs_jemalloc,frag_fill,frag_delete,"
               "frag_refill\n");
    for (int w = 0; w < RW_COUNT; w++)
        for (int a = 0; a < R_NA; a++) {
            const struct rcell *c = &ctx->real.w[w].c[a],
                               *je = &ctx->real.w[w].c[R_JEMALLOC];
            if (!c->ok)
                continue;
            fprintf(f, "%s,%s,%.4f,%zu,%zu,", bench_rw[w].name,
                    bench_rnames[a], c->sec, c->ops, c->rss_kib);
            if (je->ok && c->sec > 0 && je->rss_kib)
                fprintf(f, "%.3f,%.3f,", je->sec / c->sec,
                        (double)c->rss_kib / (double)je->rss_kib);
            else
                fprintf(f, ",,");
            fprintf(f, "%s,%s,%s\n", c->frag[0], c->frag[1], c->frag[2]);
        }
    fclose(f);
}

/* Documented in ctx.h. */
double icount_per_call(const struct icell *ic, int kind)
{
    size_t calls = 0;
    unsigned long long ir = 0;
    for (int k = 0; k < IC_KINDS; k++)
        if (kind < 0 || k == kind) {
            calls += ic->calls[k];
            ir += ic->ir[k];
        }
    return ic->ran && calls ? (double)ir / (double)calls : 0.0;
}

/* Documented in ctx.h. */
void icount_csv(const struct bench_ctx *ctx)
{
    bool any = false;
    for (int w = 0; w < W_COUNT; w++)
        for (int a = 0; a < A_COUNT; a++)
            any |= ctx->res[w].ic[a].ran;
    if (!any)
        return;
    FILE *f = outf(ctx, "icount.csv");
    fprintf(f, "workload,allocator,stream_allocator_calls,alloc_calls,"
               "alloc_instructions,free_calls,free_instructions,"
               "realloc_calls,realloc_instructions,instructions_per_call\n");
    for (int w = 0; w < W_COUNT; w++)
        for (int a = 0; a < A_COUNT; a++) {
            const struct icell *ic = &ctx->res[w].ic[a];
            if (!ic->ran)
                continue;
            fprintf(f, "%s,%s,%zu", ctx->res[w].s.name, bench_anames[a],
                    ctx->res[w].ic_allocs);
            for (int k = 0; k < IC_KINDS; k++)
                fprintf(f, ",%zu,%llu", ic->calls[k], ic->ir[k]);
            fprintf(f, ",%.1f\n", icount_per_call(ic, -1));
        }
    fclose(f);
}
