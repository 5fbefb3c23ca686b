/*
 * options.c - catena-bench's command line: defaults, options, subcommands.
 *
 *   catena-bench [--quick] [--out DIR] [--reps N] [--seed N]
 *                [--headroom PCT] [--indef-headroom PCT] [--indef-iters N]
 *                [--trace FILE] [--gnuplot PATH]
 *                [--drivers DIR] [--preload SO] [--no-process]
 *                [--no-real] [--workloads PATH]
 *                [--instructions | --no-instructions] [--valgrind PATH]
 *                [--only WORKLOAD,...]
 *   catena-bench replay FILE [options]   only the trace FILE
 *   catena-bench record WORKLOAD FILE    write a workload as a trace
 *   catena-bench selftest                determinism + trace reader checks
 *   catena-bench icount-arena HEAP STREAM BYTES   (run by --instructions
 *                                        under callgrind: one replay)
 *
 * See doc/bench.md for the workloads and the metrics.
 */
#define _GNU_SOURCE
#include "ctx.h"

#include <stdlib.h>
#include <string.h>

/* Documented in ctx.h. */
void bench_usage(void)
{
    fprintf(stderr,
            "usage: catena-bench [--quick] [--out DIR] [--reps N] [--seed N]\n"
            "                    [--headroom PCT] [--indef-headroom PCT] "
            "[--indef-iters N]\n"
            "                    [--trace FILE] [--gnuplot PATH]\n"
            "                    [--drivers DIR] [--preload SO] "
            "[--no-process]\n"
            "                    [--no-real] [--workloads PATH]\n"
            "                    [--instructions | --no-instructions] "
            "[--valgrind PATH]\n"
            "                    [--only WORKLOAD,...]\n"
            "       catena-bench replay FILE [options]\n"
            "       catena-bench record WORKLOAD FILE\n"
            "       catena-bench selftest\n"
            "workloads: sparse robson interp kv growth micro1 micromix "
            "microbig\n");
    exit(2);
}

static void defaults(struct bench_opts *o)
{
    o->out = "bench/results";
    o->reps = 3;
    o->headroom = 25;
    o->indef_headroom = 5;
    o->wp.seed = 1;
    o->wp.scale = 1.0;
    o->wp.interp_iters = 10000;
    o->indef_iters = 200000;
    o->instructions = true;
    o->valgrind = "valgrind";
}

/* A flag (an option without a value): true when `a` is one. */
static bool flag(struct bench_opts *o, const char *a)
{
    if (!strcmp(a, "--quick"))
        o->quick = true;
    else if (!strcmp(a, "--no-process"))
        o->no_process = true;
    else if (!strcmp(a, "--no-real"))
        o->no_real = true;
    else if (!strcmp(a, "--instructions"))
        o->instructions = o->only_instructions = true;
    else if (!strcmp(a, "--no-instructions"))
        o->instructions = false;
    else
        return false;
    return true;
}

/* An option `a` with its value `v`; usage on an unknown one. */
static void valued(struct bench_opts *o, const char *a, const char *v)
{
    if (!strcmp(a, "--out"))
        o->out = v;
    else if (!strcmp(a, "--trace"))
        o->trace = v;
    else if (!strcmp(a, "--gnuplot"))
        o->gnuplot = v;
    else if (!strcmp(a, "--drivers"))
        o->drivers = v;
    else if (!strcmp(a, "--preload"))
        o->preload = v;
    else if (!strcmp(a, "--workloads"))
        o->workloads = v;
    else if (!strcmp(a, "--valgrind"))
        o->valgrind = v;
    else if (!strcmp(a, "--only"))
        o->only = v;
    else if (!strcmp(a, "--reps"))
        o->reps = atoi(v);
    else if (!strcmp(a, "--seed"))
        o->wp.seed = strtoull(v, NULL, 10);
    else if (!strcmp(a, "--headroom"))
        o->headroom = (unsigned)atoi(v);
    else if (!strcmp(a, "--indef-headroom"))
        o->indef_headroom = (unsigned)atoi(v);
    else if (!strcmp(a, "--indef-iters"))
        o->indef_iters = strtoull(v, NULL, 10);
    else
        bench_usage();
}

/* Documented in ctx.h. */
const char *bench_options(struct bench_ctx *ctx, int argc, char **argv,
                          char ***rest, int *nrest)
{
    struct bench_opts *o = &ctx->opt;
    defaults(o);
    *rest = argv + 2;
    *nrest = argc > 2 ? argc - 2 : 0;
    if (argc > 1 &&
        (!strcmp(argv[1], "selftest") || !strcmp(argv[1], "record") ||
         !strcmp(argv[1], "icount-arena")))
        return argv[1];
    int i = 1;
    const char *cmd = "run";
    if (argc > 1 && !strcmp(argv[1], "replay")) {
        if (argc < 3)
            bench_usage();
        o->trace = argv[2];
        o->replay_only = true;
        cmd = "replay";
        i = 3;
    }
    for (; i < argc; i++) {
        if (flag(o, argv[i]))
            continue;
        if (i + 1 >= argc)
            bench_usage();
        valued(o, argv[i], argv[i + 1]);
        i++;
    }
    if (o->quick) {
        o->wp.scale = 0.1;
        o->wp.interp_iters = 2000;
        o->indef_iters = 20000;
        if (o->reps == 3)
            o->reps = 1;
    }
    if (o->reps < 1 || o->reps > 15)
        die("--reps must be 1..15");
    return cmd;
}
