/*
 * process.c - the process allocators: each workload's stream is written to
 * a file and replayed by a driver process of each allocator (driver.c),
 * which reports its time and peak resident memory.
 */
#define _GNU_SOURCE
#include "ctx.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Documented in ctx.h. */
void find_drivers(struct bench_ctx *ctx)
{
    static const char *bin[A_COUNT] = {[A_GLIBC] = "catena-bench-glibc",
                                       [A_JEMALLOC] = "catena-bench-jemalloc",
                                       [A_MIMALLOC] = "catena-bench-mimalloc",
                                       [A_PRELOAD] = "catena-bench-glibc"};
    const char *dir = ctx->opt.drivers ? ctx->opt.drivers : ctx->exe_dir;
    for (int a = A_GLIBC; a < A_COUNT; a++) {
        char p[PATH_MAX + 64];
        snprintf(p, sizeof p, "%s/%s", dir, bin[a]);
        if (access(p, X_OK) == 0)
            snprintf(ctx->driver_path[a], sizeof ctx->driver_path[a], "%s", p);
    }
    /* the shim: --preload, else the build tree's preload/.libs */
    char *so = ctx->preload_so;
    size_t sosz = sizeof ctx->preload_so;
    if (ctx->opt.preload)
        snprintf(so, sosz, "%s", ctx->opt.preload);
    else {
        static const char *cand[] = {"../.libs/libcatena-preload.so",
                                     "../preload/.libs/libcatena-preload.so"};
        so[0] = 0;
        for (size_t i = 0; i < 2; i++) {
            char p[PATH_MAX + 64];
            snprintf(p, sizeof p, "%s/%s", ctx->exe_dir, cand[i]);
            if (file_ok(p)) {
                char *rp = realpath(p, NULL);
                snprintf(so, sosz, "%s", rp ? rp : p);
                free(rp);
                break;
            }
        }
    }
    if (!so[0] || !file_ok(so))
        ctx->driver_path[A_PRELOAD][0] = 0;
    else
        ctx->opt.preload = so;
}

/* Run driver a on the stream file; parse its line.  0 on success. */
static int run_driver(const struct bench_ctx *ctx, int a, const char *stream,
                      const char *rsscsv, double *sec, size_t *peak,
                      char *version)
{
    char *argv[] = {(char *)ctx->driver_path[a], (char *)stream,
                    (char *)rsscsv, NULL};
    char buf[1024];
    int st = spawn(argv, a == A_PRELOAD ? ctx->opt.preload : NULL, false, buf,
                   sizeof buf, NULL);
    if (st != 0 || strncmp(buf, "ok ", 3) != 0)
        return -1;
    char *p;
    if ((p = strstr(buf, "seconds=")))
        *sec = strtod(p + 8, NULL);
    if ((p = strstr(buf, "peak=")))
        *peak = (size_t)strtoull(p + 5, NULL, 10);
    if ((p = strstr(buf, "version="))) {
        size_t i = 0;
        p += 8;
        while (p[i] && p[i] != ' ' && p[i] != '\n' && i < 63) {
            version[i] = p[i] == '_' ? ' ' : p[i];
            i++;
        }
        version[i] = 0;
    }
    return 0;
}

/* Documented in ctx.h. */
void run_process(struct bench_ctx *ctx, struct wres *wr)
{
    const struct bstream *s = &wr->s;
    char stream[PATH_MAX + 64];
    snprintf(stream, sizeof stream, "%s/.stream-%s.bin", ctx->opt.out,
             s->name);
    if (bstream_save(s, stream) != 0)
        die("cannot write %s: %s", stream, strerror(errno));
    for (int a = A_GLIBC; a < A_COUNT; a++) {
        if (!ctx->driver_path[a][0])
            continue;
        struct cell *c = &wr->c[a];
        double t[16], pk[16];
        int ok = 0;
        for (int j = 0; j < ctx->opt.reps; j++) {
            char csv[PATH_MAX + 128];
            snprintf(csv, sizeof csv, "%s/rss-%s-%s.csv", ctx->opt.out,
                     s->name, bench_anames[a]);
            size_t peak = 0;
            if (run_driver(ctx, a, stream, j == 0 ? csv : "-", &t[ok], &peak,
                           c->version) == 0)
                pk[ok++] = (double)peak;
        }
        if (!ok) {
            progress(ctx, "  %-9s %-14s FAILED to run", s->name,
                     bench_anames[a]);
            continue;
        }
        c->ran = c->timed = true;
        c->sec = median(t, ok);
        c->rss_peak = (size_t)median(pk, ok);
        c->rss_ratio = (double)c->rss_peak / (double)s->peak_live;
        progress(ctx, "  %-9s %-14s peak RSS %.2fx peak live, %.0f ns/op",
                 s->name, bench_anames[a], c->rss_ratio,
                 1e9 * c->sec / (double)s->allocs);
    }
    unlink(stream);
}
