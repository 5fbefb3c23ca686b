/*
 * real.c - whole programs under each process allocator, chosen by
 * LD_PRELOAD (nothing for glibc): catena-bench-mt (larson, xmalloc,
 * st-churn) and bench/workloads.py (python3, sqlite3, redis-server).
 * Speed and peak RSS (wait4) are reported as ratios to jemalloc in the
 * same run (report.c, csv.c).
 */
#define _GNU_SOURCE
#include "ctx.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifndef CATENA_SRCDIR
#define CATENA_SRCDIR "."
#endif

const char *const bench_rnames[R_NA] = {"catena-preload", "glibc", "jemalloc",
                                        "mimalloc"};
/* workloads.py's names for them */
static const char *const rpy[R_NA] = {"catena", "glibc", "jemalloc",
                                      "mimalloc"};

const struct real_workload bench_rw[RW_COUNT] = {
    {"st-churn", "churn", NULL,
     "one thread: 20 000 live objects replaced at random (mostly 16-256 B, "
     "1 in 64 of 1-64 KiB, 1 in 7 a realloc), every byte written "
     "(bench/mt.c)",
     4.0},
    {"larson", "larson", NULL,
     "larson-style server simulation, our version (bench/mt.c): each "
     "thread replaces random objects of 16-1024 B in an array of 4000; 20 "
     "rounds, each on new threads that take over the previous round's "
     "arrays, so frees are of objects other threads allocated",
     15.0},
    {"xmalloc", "xmalloc", NULL,
     "xmalloc-style producer/consumer, our version (bench/mt.c): producers "
     "malloc 16-512 B objects and pass them in batches of 256 through a "
     "bounded queue to consumers, which free them: every free is "
     "cross-thread",
     3.0},
    {"python3", NULL, "python",
     "python3 with PYTHONMALLOC=malloc: 600 000 steps of dict/list/str "
     "churn (bench/workloads.py), start-up included",
     0},
    {"sqlite3", NULL, "sqlite",
     "sqlite3 :memory:: 400 000 rows inserted, indexed, a third deleted, "
     "updates, a join (bench/workloads.py)",
     0},
    {"redis", NULL, "redis",
     "redis-server on 127.0.0.1: 300 000 keys of 200 B filled with "
     "redis-cli --pipe, 80 % deleted, refilled to the same count; peak RSS "
     "of the server (bench/workloads.py)",
     0},
};

static void find_peer_sos(struct bench_ctx *ctx)
{
    static const char *dirs[] = {"/usr/lib/x86_64-linux-gnu",
                                 "/usr/lib/aarch64-linux-gnu",
                                 "/usr/lib64",
                                 "/usr/lib",
                                 "/usr/local/lib",
                                 "/lib/x86_64-linux-gnu"};
    static const char *names[R_NA][2] = {
        [R_JEMALLOC] = {"libjemalloc.so.2", "libjemalloc.so"},
        [R_MIMALLOC] = {"libmimalloc.so.2", "libmimalloc.so"}};
    if (ctx->opt.preload && ctx->driver_path[A_PRELOAD][0])
        snprintf(ctx->real.so[R_PRELOAD], sizeof ctx->real.so[0], "%s",
                 ctx->opt.preload);
    for (int a = R_JEMALLOC; a <= R_MIMALLOC; a++)
        for (size_t d = 0;
             d < sizeof dirs / sizeof dirs[0] && !ctx->real.so[a][0]; d++)
            for (int n = 0; n < 2 && !ctx->real.so[a][0]; n++) {
                char p[PATH_MAX + 64];
                snprintf(p, sizeof p, "%s/%s", dirs[d], names[a][n]);
                if (file_ok(p))
                    snprintf(ctx->real.so[a], sizeof ctx->real.so[a], "%s", p);
            }
}

static bool ralloc_ok(const struct bench_ctx *ctx, int a)
{
    return a == R_GLIBC || ctx->real.so[a][0];
}

/* Run argv with LD_PRELOAD for allocator a; its stdout into out.  The
 * exit status, and the child's peak RSS (KiB) in *maxrss. */
static int run_prog(const struct bench_ctx *ctx, int a, char *const argv[],
                    char *out, size_t outlen, size_t *maxrss)
{
    return spawn(argv, a == R_GLIBC ? NULL : ctx->real.so[a], true, out,
                 outlen, maxrss);
}

static const char *kv(const char *line, const char *key, char *v, size_t n)
{
    char pat[64];
    snprintf(pat, sizeof pat, " %s=", key);
    const char *p = strstr(line, pat);
    if (!p)
        return NULL;
    p += strlen(pat);
    size_t i = 0;
    while (p[i] && p[i] != ' ' && p[i] != '\n' && i < n - 1) {
        v[i] = p[i];
        i++;
    }
    v[i] = 0;
    return v;
}

static void run_mt(struct bench_ctx *ctx, int w)
{
    char exe[PATH_MAX + 64], scale[32], thr[16];
    snprintf(exe, sizeof exe, "%s/catena-bench-mt", ctx->exe_dir);
    if (access(exe, X_OK) != 0) {
        snprintf(ctx->real.w[w].note, sizeof ctx->real.w[w].note,
                 "bench/catena-bench-mt not "
                 "built: skipped");
        return;
    }
    snprintf(scale, sizeof scale, "%g",
             bench_rw[w].scale * (ctx->opt.quick ? 0.05 : 1));
    snprintf(thr, sizeof thr, "%d", ctx->real.mt_threads);
    char *argv[] = {exe, (char *)bench_rw[w].mt, scale, thr, NULL};
    int reps = ctx->opt.reps;
    double t[R_NA][16], pk[R_NA][16];
    int ok[R_NA] = {0};
    for (int j = 0; j < reps; j++) /* interleaved: drift hits all alike */
        for (int a = 0; a < R_NA; a++) {
            if (!ralloc_ok(ctx, a))
                continue;
            char out[512], v[64];
            size_t rss = 0;
            struct rcell *c = &ctx->real.w[w].c[a];
            if (run_prog(ctx, a, argv, out, sizeof out, &rss) == 0 &&
                !strncmp(out, "ok ", 3) && kv(out, "seconds", v, sizeof v)) {
                t[a][ok[a]] = strtod(v, NULL);
                if (kv(out, "hwm_kib", v, sizeof v)) /* its own VmHWM */
                    rss = (size_t)strtoull(v, NULL, 10);
                pk[a][ok[a]++] = (double)rss;
                if (kv(out, "ops", v, sizeof v))
                    c->ops = (size_t)strtoull(v, NULL, 10);
            }
            if (j == reps - 1 && ok[a]) {
                c->ok = true;
                c->sec = median(t[a], ok[a]);
                c->rss_kib = (size_t)median(pk[a], ok[a]);
            }
        }
    ctx->real.w[w].ran = true;
    progress(ctx, "  %-9s %s", bench_rw[w].name, "done");
}

/* Documented in ctx.h. */
void run_real(struct bench_ctx *ctx)
{
    find_peer_sos(ctx);
    long nc = sysconf(_SC_NPROCESSORS_ONLN);
    ctx->real.mt_threads = nc < 2 ? 2 : nc > 8 ? 8 : (int)nc;
    progress(ctx, "process allocators under real programs:%s%s%s%s",
             ctx->real.so[R_PRELOAD][0] ? " catena-preload" : "", " glibc",
             ctx->real.so[R_JEMALLOC][0] ? " jemalloc" : "",
             ctx->real.so[R_MIMALLOC][0] ? " mimalloc" : "");
    for (int w = 0; w < RW_COUNT; w++)
        if (bench_rw[w].mt)
            run_mt(ctx, w);
    if (ctx->opt.quick || ctx->opt.no_real) {
        snprintf(ctx->real.note, sizeof ctx->real.note,
                 "%s: python3, sqlite3 and redis-server were not run.",
                 ctx->opt.quick ? "--quick" : "--no-real");
        for (int w = 0; w < RW_COUNT; w++)
            if (bench_rw[w].py)
                snprintf(ctx->real.w[w].note, sizeof ctx->real.w[w].note,
                         "not run (%s)",
                         ctx->opt.quick ? "--quick" : "--no-real");
        return;
    }
    char script[PATH_MAX + 64];
    snprintf(script, sizeof script, "%s",
             ctx->opt.workloads ? ctx->opt.workloads
                                : CATENA_SRCDIR "/bench/workloads.py");
    if (!file_ok(script)) {
        snprintf(ctx->real.note, sizeof ctx->real.note,
                 "%s not found: python3, "
                 "sqlite3 and redis-server were not run.",
                 script);
        return;
    }
    char allocs[128] = "", peers[2][PATH_MAX + 80];
    for (int a = 0; a < R_NA; a++)
        if (ralloc_ok(ctx, a)) {
            strcat(allocs, allocs[0] ? "," : "");
            strcat(allocs, rpy[a]);
        }
    snprintf(peers[0], sizeof peers[0], "jemalloc=%s",
             ctx->real.so[R_JEMALLOC]);
    snprintf(peers[1], sizeof peers[1], "mimalloc=%s",
             ctx->real.so[R_MIMALLOC]);
    for (int w = 0; w < RW_COUNT; w++) {
        if (!bench_rw[w].py)
            continue;
        char *argv[16];
        int n = 0;
        argv[n++] = "python3";
        argv[n++] = script;
        argv[n++] = "--shim";
        argv[n++] = ctx->real.so[R_PRELOAD][0] ? ctx->real.so[R_PRELOAD]
                                               : "/nonexistent";
        argv[n++] = "--alloc";
        argv[n++] = allocs;
        argv[n++] = "--peer";
        argv[n++] = peers[0];
        argv[n++] = "--peer";
        argv[n++] = peers[1];
        argv[n++] = (char *)bench_rw[w].py;
        argv[n] = NULL;
        static char out[8192];
        size_t rss;
        int rc = run_prog(ctx, R_GLIBC, argv, out, sizeof out, &rss);
        if (rc == 127) {
            snprintf(ctx->real.note, sizeof ctx->real.note,
                     "python3 not found: "
                     "python3, sqlite3 and redis-server were not run.");
            return;
        }
        for (char *line = strtok(out, "\n"); line; line = strtok(NULL, "\n")) {
            char l[1024], v[64];
            snprintf(l, sizeof l, " %s", line);
            if (kv(l, "skipped", v, sizeof v) && !strstr(l, " alloc=")) {
                snprintf(ctx->real.w[w].note, sizeof ctx->real.w[w].note,
                         "skipped: %.64s", v);
                continue;
            }
            if (!kv(l, "alloc", v, sizeof v))
                continue;
            int a = 0;
            while (a < R_NA && strcmp(rpy[a], v))
                a++;
            if (a == R_NA)
                continue;
            struct rcell *c = &ctx->real.w[w].c[a];
            if (kv(l, "skipped", v, sizeof v))
                continue;
            if (!kv(l, "secs", v, sizeof v))
                continue;
            c->sec = strtod(v, NULL);
            if (kv(l, "peak_rss_kib", v, sizeof v))
                c->rss_kib = (size_t)strtoull(v, NULL, 10);
            static const char *fk[3] = {"frag_fill", "frag_delete",
                                        "frag_refill"};
            for (int i = 0; i < 3; i++)
                if (kv(l, fk[i], v, sizeof v))
                    snprintf(c->frag[i], sizeof c->frag[i], "%.15s", v);
            if (kv(l, "used_kib", v, sizeof v))
                c->used_kib = (size_t)strtoull(v, NULL, 10);
            if (kv(l, "rss_kib", v, sizeof v))
                c->end_rss_kib = (size_t)strtoull(v, NULL, 10);
            c->ok = true;
            ctx->real.w[w].ran = true;
        }
        if (!ctx->real.w[w].ran && !ctx->real.w[w].note[0])
            snprintf(ctx->real.w[w].note, sizeof ctx->real.w[w].note,
                     "failed (workloads.py "
                     "exit %d)",
                     rc);
        progress(ctx, "  %-9s %s", bench_rw[w].name,
                 ctx->real.w[w].ran ? "done" : ctx->real.w[w].note);
    }
    if (!ctx->real.w[RW_REDIS].c[R_GLIBC].ok && ctx->real.w[RW_REDIS].ran)
        snprintf(ctx->real.note, sizeof ctx->real.note,
                 "redis under glibc: not run (Debian's redis-server links "
                 "jemalloc itself, so plain redis-server is the jemalloc "
                 "column).");
}
