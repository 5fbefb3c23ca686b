/*
 * main.c - catena-bench: run every workload on every allocator, print a
 * summary, write a Markdown report, CSV files and gnuplot plots.  The
 * order of the jobs; each job is a file of its own (ctx.h lists them), and
 * all of them share the run's context, passed explicitly.
 *
 * Usage: options.c.  See doc/bench.md for the workloads and the metrics.
 */
#define _GNU_SOURCE
#include "ctx.h"
#include "catena.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* `catena-bench record WORKLOAD FILE` */
static int record_main(struct bench_ctx *ctx, char **rest, int nrest)
{
    if (nrest != 2)
        bench_usage();
    int w = 0;
    while (w < W_REPLAY && strcmp(workload_name(w), rest[0]))
        w++;
    if (w == W_REPLAY)
        bench_usage();
    struct bstream s;
    workload_gen(w, &ctx->opt.wp, &s);
    if (trace_save(&s, rest[1]) != 0)
        die("cannot write %s: %s", rest[1], strerror(errno));
    printf("%s: %zu records\n", rest[1], s.allocs);
    bstream_free(&s);
    return 0;
}

static void find_exe_dir(struct bench_ctx *ctx)
{
    ssize_t n =
        readlink("/proc/self/exe", ctx->exe_dir, sizeof ctx->exe_dir - 1);
    if (n > 0) {
        ctx->exe_dir[n] = 0;
        snprintf(ctx->exe_path, sizeof ctx->exe_path, "%s", ctx->exe_dir);
        char *sl = strrchr(ctx->exe_dir, '/');
        if (sl)
            *sl = 0;
    } else {
        snprintf(ctx->exe_dir, sizeof ctx->exe_dir, ".");
        snprintf(ctx->exe_path, sizeof ctx->exe_path, "catena-bench");
    }
}

/* Is workload w in the comma-separated list `only`? */
static bool in_only(const char *only, int w)
{
    const char *name = workload_name(w);
    size_t len = strlen(name);
    for (const char *p = only; *p; p += strcspn(p, ","), p += *p == ',')
        if (!strncmp(p, name, len) && (p[len] == ',' || !p[len]))
            return true;
    return false;
}

/* Workload w into ctx->res[w]; false when it is not part of this run. */
static bool make_workload(struct bench_ctx *ctx, int w)
{
    const struct bench_opts *o = &ctx->opt;
    struct wres *wr = &ctx->res[w];
    if (o->replay_only && w != W_REPLAY)
        return false;
    if (o->only && !in_only(o->only, w))
        return false;
    if (w == W_PYTHON && (o->quick || o->replay_only || o->trace))
        return false;
    if (w >= W_REPLAY) {
        if (!load_trace(ctx, w, &wr->s)) {
            progress(ctx, "workload %s: skipped (no shim or no python3)",
                     workload_name(w));
            return false;
        }
    } else
        workload_gen(w, &o->wp, &wr->s);
    wr->ran = true;
    return true;
}

/* Every workload on every allocator. */
static void measure(struct bench_ctx *ctx)
{
    const struct bench_opts *o = &ctx->opt;
    int nw = 0;
    for (int w = 0; w < W_COUNT; w++) {
        if (!make_workload(ctx, w))
            continue;
        struct wres *wr = &ctx->res[w];
        char b[32];
        progress(ctx,
                 "workload %d/%d %s: %zu allocator calls, peak live %s, "
                 "sizes %zu-%zu B",
                 ++nw, o->replay_only ? 1 : W_COUNT - (o->quick || o->trace),
                 wr->s.name, wr->s.allocs, human(wr->s.peak_live, b, sizeof b),
                 wr->s.min_size, wr->s.max_size);
        if (o->only_instructions)
            continue;
        run_arena(ctx, wr);
        if (!o->no_process)
            run_process(ctx, wr);
    }
    if (o->only_instructions)
        return;
    if (!o->replay_only)
        run_indefinite(ctx);
    if (!o->replay_only && !o->no_process)
        run_real(ctx);
}

static void summary(const struct bench_ctx *ctx)
{
    const struct indef *ind = &ctx->ind;
    if (!ctx->opt.only_instructions) {
        table_md(ctx, stdout, false);
        real_md(ctx, stdout, false);
    }
    icount_md(ctx, stdout, false);
    if (ind->ran) {
        printf("\nindefinite run (interp, arena %.2fx peak live, %zu "
               "iterations): ",
               (double)ind->arena / (double)ind->peak_live, ind->iters);
        for (int k = 0; k < H_COUNT; k++)
            printf("%s%s %zu%s", k ? ", " : "", heap_name(k), ind->survived[k],
                   ind->survived[k] >= ind->iters ? " (never failed)" : "");
        printf("\n");
    }
    printf("\nreport: %s/report.md (%.0f s)\n", ctx->opt.out,
           now_sec() - ctx->t_start);
}

int main(int argc, char **argv)
{
    struct bench_ctx *ctx = calloc(1, sizeof *ctx);
    if (!ctx)
        die("out of memory");
    ctx->t_start = now_sec();
    setvbuf(stdout, NULL, _IOLBF, 0);
    char **rest;
    int nrest;
    const char *cmd = bench_options(ctx, argc, argv, &rest, &nrest);
    int rc = -1;
    if (!strcmp(cmd, "selftest"))
        rc = selftest();
    else if (!strcmp(cmd, "record"))
        rc = record_main(ctx, rest, nrest);
    else if (!strcmp(cmd, "icount-arena"))
        rc = icount_arena_main(nrest, rest);
    if (rc >= 0) {
        free(ctx);
        return rc;
    }
    find_exe_dir(ctx);
    mkdirs(ctx->opt.out);
    find_drivers(ctx);
    printf("catena-bench %s: block %zu B; output in %s/\n", PACKAGE_VERSION,
           catena_block_size(), ctx->opt.out);
    printf("process allocators:");
    for (int a = A_GLIBC; a < A_COUNT; a++)
        if (ctx->driver_path[a][0] && !ctx->opt.no_process)
            printf(" %s", bench_anames[a]);
    printf("%s\n",
           ctx->driver_path[A_PRELOAD][0] ? "" : " (no LD_PRELOAD shim)");
    measure(ctx);
    if (ctx->opt.instructions)
        run_icount(ctx);
    write_csvs(ctx);
    real_csv(ctx);
    icount_csv(ctx);
    if (!ctx->opt.only_instructions)
        plots(ctx);
    report(ctx);
    summary(ctx);
    for (int w = 0; w < W_COUNT; w++)
        bstream_free(&ctx->res[w].s);
    free(ctx);
    return 0;
}
