/*
 * main.c - catena-bench: run every workload on every allocator, print a
 * summary, write a Markdown report, CSV files and gnuplot plots.
 *
 *   catena-bench [--quick] [--out DIR] [--reps N] [--seed N]
 *                [--headroom PCT] [--indef-headroom PCT] [--indef-iters N]
 *                [--trace FILE] [--gnuplot PATH]
 *                [--drivers DIR] [--preload SO] [--no-process]
 *                [--no-real] [--workloads PATH]
 *   catena-bench replay FILE [options]   only the trace FILE
 *   catena-bench record WORKLOAD FILE    write a workload as a trace
 *   catena-bench selftest                determinism + trace reader checks
 *
 * See doc/bench.md for the workloads and the metrics.
 */
#define _GNU_SOURCE
#include "bench.h"
#include "catena.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef PACKAGE_VERSION
#define PACKAGE_VERSION "?"
#endif

/* ---- allocators (columns) ---------------------------------------------- */

enum { A_CATENA, A_CONTIG, A_MPHEAP, A_MPGC, A_CATGC, A_GLIBC, A_JEMALLOC, A_MIMALLOC,
       A_PRELOAD, A_COUNT };
static const char *anames[A_COUNT] = {"catena", "catena-contig", "mpheap",
                                      "mpheap-gc", "catena-gc", "glibc", "jemalloc",
                                      "mimalloc", "catena-preload"};
static const char *adesc[A_COUNT] = {
    "catena, chained (this library)",
    "catena with chaining disabled: contiguous runs only, same index",
    "MicroPython-style heap (bench/mpheap.c), explicit frees",
    "MicroPython-style heap, GC-only: drops clear the reference, collect on "
    "failure then retry",
#if BENCH_CATENA_GC
    "catena, GC-only: drops clear the reference; its collector (lib/gc.c) "
    "runs when an allocation fails, then the allocation is retried",
#else
    "catena, GC-only SIMULATED (no collector in this build): drops are "
    "freed in bulk only when an allocation fails, then retry",
#endif
    "glibc malloc (own process)", "jemalloc (own process)",
    "mimalloc (own process)",
    "catena LD_PRELOAD shim (own process, glibc driver)"};

static bool is_arena(int a) { return a <= A_CATGC; }
/* The fixed-arena runs stop after this many failed allocations (a failing
 * first-fit scan costs a whole heap scan). */
#define MAX_FAIL 256

static bool is_micro(int w) { return w >= W_MICRO1 && w <= W_MICROBIG; }

struct cell {
    bool ran;
    /* in-arena */
    size_t min_arena;        /* 0: not found */
    double mult;             /* min_arena / peak_live */
    size_t fix_failed, fix_ops, fix_ticks;
    bool fix_ok;
    size_t chained, allocs, extents, spine_peak, collections;
    /* process */
    size_t rss_peak;
    double rss_ratio;
    char version[64];
    /* both */
    double sec;              /* median seconds of a replay */
    bool timed;
};

struct wres {
    bool ran;
    struct bstream s;
    size_t fixed_arena;
    struct cell c[A_COUNT];
};

/* ---- options ------------------------------------------------------------ */

static struct {
    bool quick, no_process, no_real;
    const char *out, *trace, *gnuplot, *drivers, *preload, *workloads;
    int reps;
    unsigned headroom, indef_headroom;
    struct wparams wp;
    size_t indef_iters;
} opt;

static struct wres res[W_COUNT];
static char trace_note[2][768];
static char exe_dir[PATH_MAX];
static double t_start;

/* ---- small helpers ---------------------------------------------------- */

static void progress(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    printf("[%6.1fs] ", now_sec() - t_start);
    vprintf(fmt, ap);
    printf("\n");
    fflush(stdout);
    va_end(ap);
}

static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "catena-bench: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    exit(1);
}

static void mkdirs(const char *path)
{
    char buf[PATH_MAX];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *p = buf + 1; *p; p++)
        if (*p == '/') {
            *p = 0;
            mkdir(buf, 0777);
            *p = '/';
        }
    if (mkdir(buf, 0777) != 0 && errno != EEXIST)
        die("cannot create %s: %s", path, strerror(errno));
}

static FILE *outf(const char *fmt, ...)
{
    char name[PATH_MAX], path[PATH_MAX + 256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(name, sizeof name, fmt, ap);
    va_end(ap);
    snprintf(path, sizeof path, "%s/%s", opt.out, name);
    FILE *f = fopen(path, "w");
    if (!f)
        die("cannot write %s: %s", path, strerror(errno));
    return f;
}

static int cmp_dbl(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_dbl);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static const char *human(size_t b, char *buf, size_t len)
{
    if (b >= 10u * 1024 * 1024)
        snprintf(buf, len, "%.1f MiB", (double)b / (1024.0 * 1024));
    else if (b >= 10u * 1024)
        snprintf(buf, len, "%.1f KiB", (double)b / 1024.0);
    else
        snprintf(buf, len, "%zu B", b);
    return buf;
}

static bool file_ok(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0;
}

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
static size_t fixed_arena(const struct bstream *s, unsigned headroom)
{
    size_t pb = peak_live_blocks(s);
    size_t nb = pb + (pb * headroom + 99) / 100 + 2;
    return nb * catena_block_size() + catena_overhead(nb);
}

/* ---- in-arena measurements -------------------------------------------- */

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

static void write_frag_csv(const char *w, int k, const struct frag_sample *fs,
                           size_t n, const struct bstream *s)
{
    FILE *f = outf("frag-%s-%s.csv", w, heap_name(k));
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

static void run_arena(struct wres *wr)
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
    wr->fixed_arena = fixed_arena(s, opt.headroom);
    for (int i = 0; i < nh; i++) {
        int k = heaps[i];
        struct cell *c = &wr->c[k]; /* H_* == A_* for the in-arena heaps */
        double t0 = now_sec();
        c->ran = true;
        c->min_arena = min_arena(k, s);
        c->mult = c->min_arena ? (double)c->min_arena / (double)s->peak_live
                               : 0;
        if (c->min_arena > maxmin)
            maxmin = c->min_arena;
        /* fixed arena: count failures, sample fragmentation */
        enum { NSAMP = 300 };
        static struct frag_sample fs[NSAMP + 1];
        size_t nf;
        struct arena_result r;
        arena_run(k, s, arena_mem(wr->fixed_arena), wr->fixed_arena,
                  MAX_FAIL, &r, fs, NSAMP, &nf);
        c->fix_failed = r.failed;
        c->fix_ops = r.ops_done;
        c->fix_ticks = r.ticks_done;
        c->fix_ok = r.ok;
        c->chained = r.chained_allocs;
        c->allocs = r.allocs;
        c->extents = r.extents_sum;
        c->spine_peak = r.spine_peak;
        c->collections = r.collections;
        write_frag_csv(s->name, k, fs, nf, s);
        progress("  %-9s %-14s min arena %.3fx peak live; at %.2fx: %zu "
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
        int reps = opt.reps;
        for (int j = 0; j < reps; j++) {
            struct arena_result r;
            arena_fresh();
            arena_run(k, s, arena_mem(tb), tb, 0, &r, NULL, 0, NULL);
            t[j] = r.seconds;
        }
        wr->c[k].sec = median(t, reps);
        wr->c[k].timed = true;
    }
    progress("  %-9s throughput (arena %.2fx peak live): catena %.0f ns/op, "
             "contig %.0f, mpheap %.0f",
             s->name, (double)tb / (double)s->peak_live,
             1e9 * wr->c[A_CATENA].sec / (double)s->allocs,
             1e9 * wr->c[A_CONTIG].sec / (double)s->allocs,
             1e9 * wr->c[A_MPHEAP].sec / (double)s->allocs);
}

/* ---- process allocators ----------------------------------------------- */

static char driver_path[A_COUNT][PATH_MAX + 128];

static void find_drivers(void)
{
    static const char *bin[A_COUNT] = {
        [A_GLIBC] = "catena-bench-glibc", [A_JEMALLOC] = "catena-bench-jemalloc",
        [A_MIMALLOC] = "catena-bench-mimalloc", [A_PRELOAD] = "catena-bench-glibc"};
    const char *dir = opt.drivers ? opt.drivers : exe_dir;
    for (int a = A_GLIBC; a < A_COUNT; a++) {
        char p[PATH_MAX + 64];
        snprintf(p, sizeof p, "%s/%s", dir, bin[a]);
        if (access(p, X_OK) == 0)
            snprintf(driver_path[a], sizeof driver_path[a], "%s", p);
    }
    /* the shim: --preload, else the build tree's preload/.libs */
    static char so[PATH_MAX + 64];
    if (opt.preload)
        snprintf(so, sizeof so, "%s", opt.preload);
    else {
        static const char *cand[] = {"../.libs/libcatena-preload.so",
                                     "../preload/.libs/libcatena-preload.so"};
        so[0] = 0;
        for (size_t i = 0; i < 2; i++) {
            char p[PATH_MAX + 64];
            snprintf(p, sizeof p, "%s/%s", exe_dir, cand[i]);
            if (file_ok(p)) {
                char *rp = realpath(p, NULL);
                snprintf(so, sizeof so, "%s", rp ? rp : p);
                free(rp);
                break;
            }
        }
    }
    if (!so[0] || !file_ok(so))
        driver_path[A_PRELOAD][0] = 0;
    else
        opt.preload = so;
}

/* Run argv (found in PATH) with LD_PRELOAD set to `preload`, or unset
 * when it is NULL; its standard output goes into out (NUL-terminated,
 * the rest drained), its standard error to /dev/null when quiet.  Returns
 * the exit status (128 + signal when killed, -1 when it could not run)
 * and the child's peak RSS in KiB in *maxrss. */
static int spawn(char *const argv[], const char *preload, bool quiet,
                 char *out, size_t outlen, size_t *maxrss)
{
    int pfd[2];
    if (pipe(pfd) != 0)
        return -1;
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        close(pfd[0]);
        dup2(pfd[1], 1);
        int null = quiet ? open("/dev/null", O_WRONLY) : -1;
        if (null >= 0)
            dup2(null, 2);
        if (preload)
            setenv("LD_PRELOAD", preload, 1);
        else
            unsetenv("LD_PRELOAD");
        execvp(argv[0], argv);
        _exit(127);
    }
    close(pfd[1]);
    size_t n = 0;
    ssize_t k;
    char sink[4096];
    for (;;) {
        if (n < outlen - 1)
            k = read(pfd[0], out + n, outlen - 1 - n);
        else
            k = read(pfd[0], sink, sizeof sink);
        if (k <= 0)
            break;
        if (n < outlen - 1)
            n += (size_t)k;
    }
    out[n] = 0;
    close(pfd[0]);
    int st;
    struct rusage ru;
    if (wait4(pid, &st, 0, &ru) < 0)
        return -1;
    if (maxrss)
        *maxrss = (size_t)ru.ru_maxrss;
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* Run driver a on the stream file; parse its line.  0 on success. */
static int run_driver(int a, const char *stream, const char *rsscsv,
                      double *sec, size_t *peak, char *version)
{
    char *argv[] = {driver_path[a], (char *)stream, (char *)rsscsv, NULL};
    char buf[1024];
    int st = spawn(argv, a == A_PRELOAD ? opt.preload : NULL, false, buf,
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

static void run_process(int w, struct wres *wr)
{
    const struct bstream *s = &wr->s;
    char stream[PATH_MAX + 64];
    snprintf(stream, sizeof stream, "%s/.stream-%s.bin", opt.out, s->name);
    if (bstream_save(s, stream) != 0)
        die("cannot write %s: %s", stream, strerror(errno));
    for (int a = A_GLIBC; a < A_COUNT; a++) {
        if (!driver_path[a][0])
            continue;
        struct cell *c = &wr->c[a];
        double t[16], pk[16];
        int ok = 0;
        for (int j = 0; j < opt.reps; j++) {
            char csv[PATH_MAX + 128];
            snprintf(csv, sizeof csv, "%s/rss-%s-%s.csv", opt.out, s->name,
                     anames[a]);
            size_t peak = 0;
            if (run_driver(a, stream, j == 0 ? csv : "-", &t[ok], &peak,
                           c->version) == 0)
                pk[ok++] = (double)peak;
        }
        if (!ok) {
            progress("  %-9s %-14s FAILED to run", s->name, anames[a]);
            continue;
        }
        c->ran = c->timed = true;
        c->sec = median(t, ok);
        c->rss_peak = (size_t)median(pk, ok);
        c->rss_ratio = (double)c->rss_peak / (double)s->peak_live;
        progress("  %-9s %-14s peak RSS %.2fx peak live, %.0f ns/op", s->name,
                 anames[a], c->rss_ratio, 1e9 * c->sec / (double)s->allocs);
    }
    (void)w;
    unlink(stream);
}

/* ---- the indefinite run (the headline) -------------------------------- */

struct indef {
    size_t iters, arena, peak_live, max_size;
    size_t survived[H_COUNT];
    bool ran;
};
static struct indef ind;

static void run_indefinite(void)
{
    struct wparams p = opt.wp;
    p.interp_iters = opt.indef_iters;
    struct bstream s;
    workload_gen(W_INTERP, &p, &s);
    ind.iters = s.ticks;
    ind.arena = fixed_arena(&s, opt.indef_headroom);
    ind.peak_live = s.peak_live;
    ind.max_size = s.max_size;
    ind.ran = true;
    progress("indefinite run: interpreter loop, %zu iterations, arena %.2fx "
             "peak live (%zu B)",
             ind.iters, (double)ind.arena / (double)s.peak_live, ind.arena);
    for (int k = 0; k < H_COUNT; k++) {
        enum { NSAMP = 400 };
        static struct frag_sample fs[NSAMP + 1];
        size_t nf;
        struct arena_result r;
        arena_run(k, &s, arena_mem(ind.arena), ind.arena, 1, &r, fs, NSAMP,
                  &nf);
        ind.survived[k] = r.ticks_done;
        write_frag_csv("indefinite", k, fs, nf, &s);
        progress("  %-14s %s after %zu iterations", heap_name(k),
                 r.ok ? "survived, stopped" : "FAILED", r.ticks_done);
    }
    bstream_free(&s);
}

/* ---- process allocators under real programs ----------------------------- */

/* Whole programs run under each process allocator, chosen by LD_PRELOAD
 * (nothing for glibc): catena-bench-mt (larson, xmalloc, churn) and
 * preload/workloads.py (python3, sqlite3, redis-server).  Speed and peak
 * RSS (wait4) are reported as ratios to jemalloc in the same run. */

#ifndef CATENA_SRCDIR
#define CATENA_SRCDIR "."
#endif

enum { R_PRELOAD, R_GLIBC, R_JEMALLOC, R_MIMALLOC, R_NA };
static const char *rnames[R_NA] = {"catena-preload", "glibc", "jemalloc",
                                   "mimalloc"};
/* workloads.py's names for them */
static const char *rpy[R_NA] = {"catena", "glibc", "jemalloc", "mimalloc"};

enum { RW_CHURN, RW_LARSON, RW_XMALLOC, RW_PYTHON, RW_SQLITE, RW_REDIS,
       RW_COUNT };
static const struct {
    const char *name, *mt, *py, *desc;
    double scale; /* catena-bench-mt SCALE at the default run */
} rw[RW_COUNT] = {
    {"st-churn", "churn", NULL,
     "one thread: 20 000 live objects replaced at random (mostly 16-256 B, "
     "1 in 64 of 1-64 KiB, 1 in 7 a realloc), every byte written "
     "(bench/mt.c)", 4.0},
    {"larson", "larson", NULL,
     "larson-style server simulation, our version (bench/mt.c): each "
     "thread replaces random objects of 16-1024 B in an array of 4000; 20 "
     "rounds, each on new threads that take over the previous round's "
     "arrays, so frees are of objects other threads allocated", 15.0},
    {"xmalloc", "xmalloc", NULL,
     "xmalloc-style producer/consumer, our version (bench/mt.c): producers "
     "malloc 16-512 B objects and pass them in batches of 256 through a "
     "bounded queue to consumers, which free them: every free is "
     "cross-thread", 3.0},
    {"python3", NULL, "python",
     "python3 with PYTHONMALLOC=malloc: 600 000 steps of dict/list/str "
     "churn (preload/workloads.py), start-up included", 0},
    {"sqlite3", NULL, "sqlite",
     "sqlite3 :memory:: 400 000 rows inserted, indexed, a third deleted, "
     "updates, a join (preload/workloads.py)", 0},
    {"redis", NULL, "redis",
     "redis-server on 127.0.0.1: 300 000 keys of 200 B filled with "
     "redis-cli --pipe, 80 % deleted, refilled to the same count; peak RSS "
     "of the server (preload/workloads.py)", 0},
};

struct rcell {
    bool ok;
    double sec;       /* median seconds (mt: of the workload; programs:
                         the whole run) */
    size_t ops;       /* mt only */
    size_t rss_kib;   /* peak RSS (ru_maxrss / VmHWM) */
    char frag[3][16]; /* redis: fill, delete, refill */
    size_t used_kib, end_rss_kib;
};
static struct {
    bool ran;
    char note[256];
    struct rcell c[R_NA];
} rr[RW_COUNT];
static char real_note[PATH_MAX + 256];
static char rso[R_NA][PATH_MAX + 64];
static int mt_threads;

static void find_peer_sos(void)
{
    static const char *dirs[] = {
        "/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu",
        "/usr/lib64", "/usr/lib", "/usr/local/lib", "/lib/x86_64-linux-gnu"};
    static const char *names[R_NA][2] = {
        [R_JEMALLOC] = {"libjemalloc.so.2", "libjemalloc.so"},
        [R_MIMALLOC] = {"libmimalloc.so.2", "libmimalloc.so"}};
    if (opt.preload && driver_path[A_PRELOAD][0])
        snprintf(rso[R_PRELOAD], sizeof rso[0], "%s", opt.preload);
    for (int a = R_JEMALLOC; a <= R_MIMALLOC; a++)
        for (size_t d = 0; d < sizeof dirs / sizeof dirs[0] && !rso[a][0];
             d++)
            for (int n = 0; n < 2 && !rso[a][0]; n++) {
                char p[PATH_MAX + 64];
                snprintf(p, sizeof p, "%s/%s", dirs[d], names[a][n]);
                if (file_ok(p))
                    snprintf(rso[a], sizeof rso[a], "%s", p);
            }
}

static bool ralloc_ok(int a) { return a == R_GLIBC || rso[a][0]; }

/* Run argv with LD_PRELOAD for allocator a; its stdout into out.  The
 * exit status, and the child's peak RSS (KiB) in *maxrss. */
static int run_prog(int a, char *const argv[], char *out, size_t outlen,
                    size_t *maxrss)
{
    return spawn(argv, a == R_GLIBC ? NULL : rso[a], true, out, outlen,
                 maxrss);
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

static void run_mt(int w)
{
    char exe[PATH_MAX + 64], scale[32], thr[16];
    snprintf(exe, sizeof exe, "%s/catena-bench-mt", exe_dir);
    if (access(exe, X_OK) != 0) {
        snprintf(rr[w].note, sizeof rr[w].note, "bench/catena-bench-mt not "
                 "built: skipped");
        return;
    }
    snprintf(scale, sizeof scale, "%g", rw[w].scale * (opt.quick ? 0.05 : 1));
    snprintf(thr, sizeof thr, "%d", mt_threads);
    char *argv[] = {exe, (char *)rw[w].mt, scale, thr, NULL};
    int reps = opt.reps;
    for (int j = 0; j < reps; j++) /* interleaved: drift hits all alike */
        for (int a = 0; a < R_NA; a++) {
            if (!ralloc_ok(a))
                continue;
            static double t[R_NA][16], pk[R_NA][16];
            static int ok[R_NA];
            if (j == 0)
                ok[a] = 0;
            char out[512], v[64];
            size_t rss = 0;
            struct rcell *c = &rr[w].c[a];
            if (run_prog(a, argv, out, sizeof out, &rss) == 0 &&
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
    rr[w].ran = true;
    progress("  %-9s %s", rw[w].name, "done");
}

static void run_real(void)
{
    find_peer_sos();
    long nc = sysconf(_SC_NPROCESSORS_ONLN);
    mt_threads = nc < 2 ? 2 : nc > 8 ? 8 : (int)nc;
    progress("process allocators under real programs:%s%s%s%s",
             rso[R_PRELOAD][0] ? " catena-preload" : "", " glibc",
             rso[R_JEMALLOC][0] ? " jemalloc" : "",
             rso[R_MIMALLOC][0] ? " mimalloc" : "");
    for (int w = 0; w < RW_COUNT; w++)
        if (rw[w].mt)
            run_mt(w);
    if (opt.quick || opt.no_real) {
        snprintf(real_note, sizeof real_note,
                 "%s: python3, sqlite3 and redis-server were not run.",
                 opt.quick ? "--quick" : "--no-real");
        for (int w = 0; w < RW_COUNT; w++)
            if (rw[w].py)
                snprintf(rr[w].note, sizeof rr[w].note, "not run (%s)",
                         opt.quick ? "--quick" : "--no-real");
        return;
    }
    char script[PATH_MAX + 64];
    snprintf(script, sizeof script, "%s",
             opt.workloads ? opt.workloads
                           : CATENA_SRCDIR "/preload/workloads.py");
    if (!file_ok(script)) {
        snprintf(real_note, sizeof real_note, "%s not found: python3, "
                 "sqlite3 and redis-server were not run.", script);
        return;
    }
    char allocs[128] = "", peers[2][PATH_MAX + 80];
    for (int a = 0; a < R_NA; a++)
        if (ralloc_ok(a)) {
            strcat(allocs, allocs[0] ? "," : "");
            strcat(allocs, rpy[a]);
        }
    snprintf(peers[0], sizeof peers[0], "jemalloc=%s", rso[R_JEMALLOC]);
    snprintf(peers[1], sizeof peers[1], "mimalloc=%s", rso[R_MIMALLOC]);
    for (int w = 0; w < RW_COUNT; w++) {
        if (!rw[w].py)
            continue;
        char *argv[16];
        int n = 0;
        argv[n++] = "python3";
        argv[n++] = script;
        argv[n++] = "--shim";
        argv[n++] = rso[R_PRELOAD][0] ? rso[R_PRELOAD] : "/nonexistent";
        argv[n++] = "--alloc";
        argv[n++] = allocs;
        argv[n++] = "--peer";
        argv[n++] = peers[0];
        argv[n++] = "--peer";
        argv[n++] = peers[1];
        argv[n++] = (char *)rw[w].py;
        argv[n] = NULL;
        static char out[8192];
        size_t rss;
        int rc = run_prog(R_GLIBC, argv, out, sizeof out, &rss);
        if (rc == 127) {
            snprintf(real_note, sizeof real_note, "python3 not found: "
                     "python3, sqlite3 and redis-server were not run.");
            return;
        }
        for (char *line = strtok(out, "\n"); line; line = strtok(NULL, "\n")) {
            char l[1024], v[64];
            snprintf(l, sizeof l, " %s", line);
            if (kv(l, "skipped", v, sizeof v) && !strstr(l, " alloc=")) {
                snprintf(rr[w].note, sizeof rr[w].note, "skipped: %.64s", v);
                continue;
            }
            if (!kv(l, "alloc", v, sizeof v))
                continue;
            int a = 0;
            while (a < R_NA && strcmp(rpy[a], v))
                a++;
            if (a == R_NA)
                continue;
            struct rcell *c = &rr[w].c[a];
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
            rr[w].ran = true;
        }
        if (!rr[w].ran && !rr[w].note[0])
            snprintf(rr[w].note, sizeof rr[w].note, "failed (workloads.py "
                     "exit %d)", rc);
        progress("  %-9s %s", rw[w].name, rr[w].ran ? "done" : rr[w].note);
    }
    if (!rr[RW_REDIS].c[R_GLIBC].ok && rr[RW_REDIS].ran)
        snprintf(real_note, sizeof real_note,
                 "redis under glibc: not run (Debian's redis-server links "
                 "jemalloc itself, so plain redis-server is the jemalloc "
                 "column).");
}

/* Speed ratio to jemalloc (time of jemalloc / time), and peak RSS ratio. */
static void real_md(FILE *f, bool md)
{
    bool any = false;
    for (int w = 0; w < RW_COUNT; w++)
        any |= rr[w].ran || rr[w].note[0];
    if (!any)
        return;
    if (md)
        fprintf(f, "\n## Process allocators under real programs\n\n"
                   "Each program runs whole under each allocator, chosen by "
                   "LD_PRELOAD (glibc: nothing preloaded): "
                   "`bench/catena-bench-mt` (%d threads for larson and "
                   "xmalloc; median of %d run(s), peak RSS its own VmHWM) and "
                   "`preload/workloads.py` (one run each).  "
                   "Throughput is jemalloc's time divided by the "
                   "allocator's (higher is better; in parentheses M "
                   "allocator calls/s, or seconds for whole programs); "
                   "peak RSS is the process's high-water mark (VmHWM, or "
                   "wait4's ru_maxrss for python3 and sqlite3, which "
                   "cannot be below the launching script's own RSS, "
                   "~10 MiB) divided by jemalloc's (lower is better; in "
                   "parentheses MiB).  Same machine, same run.\n\n",
                mt_threads, opt.reps);
    for (int tab = 0; tab < 2; tab++) {
        if (md)
            fprintf(f, "%s\n\n| workload |",
                    tab ? "**Peak RSS, ratio to jemalloc** (lower is better)"
                        : "**Throughput, ratio to jemalloc** (higher is "
                          "better)");
        else
            fprintf(f, "\nreal programs: %s\n%-10s",
                    tab ? "peak RSS / jemalloc's (MiB)"
                        : "speed vs jemalloc (M calls/s or s)",
                    "workload");
        for (int a = 0; a < R_NA; a++)
            fprintf(f, md ? " %s |" : " %17s", rnames[a]);
        if (md) {
            fprintf(f, " note |\n|---|");
            for (int a = 0; a < R_NA; a++)
                fprintf(f, "---:|");
            fprintf(f, "---|");
        }
        fprintf(f, "\n");
        for (int w = 0; w < RW_COUNT; w++) {
            if (!rr[w].ran && !rr[w].note[0])
                continue;
            fprintf(f, md ? "| %s |" : "%-10s", rw[w].name);
            const struct rcell *je = &rr[w].c[R_JEMALLOC];
            for (int a = 0; a < R_NA; a++) {
                const struct rcell *c = &rr[w].c[a];
                char v[64];
                if (!c->ok)
                    snprintf(v, sizeof v, "-");
                else if (tab == 0) {
                    char absv[32];
                    if (c->ops)
                        snprintf(absv, sizeof absv, "%.1f",
                                 (double)c->ops / c->sec / 1e6);
                    else
                        snprintf(absv, sizeof absv, "%.2f s", c->sec);
                    if (je->ok && c->sec > 0)
                        snprintf(v, sizeof v, "%.2f (%s)", je->sec / c->sec,
                                 absv);
                    else
                        snprintf(v, sizeof v, "(%s)", absv);
                } else {
                    if (je->ok && je->rss_kib)
                        snprintf(v, sizeof v, "%.2f (%.1f)",
                                 (double)c->rss_kib / (double)je->rss_kib,
                                 (double)c->rss_kib / 1024.0);
                    else
                        snprintf(v, sizeof v, "(%.1f)",
                                 (double)c->rss_kib / 1024.0);
                }
                fprintf(f, md ? " %s |" : " %17s", v);
            }
            if (rr[w].note[0] || md)
                fprintf(f, md ? " %s |" : "  %s", rr[w].note);
            fprintf(f, "\n");
        }
        if (md)
            fprintf(f, "\n");
    }
    if (rr[RW_REDIS].ran) {
        fprintf(f, md ? "**redis-server: mem_fragmentation_ratio** (RSS / "
                        "used_memory, from INFO memory) after filling 300 000 "
                        "keys, deleting 80 %% and refilling\n\n| allocator | "
                        "after fill | after delete | after refill | "
                        "used_memory at end | RSS at end | seconds |\n"
                        "|---|---:|---:|---:|---:|---:|---:|\n"
                      : "\nredis mem_fragmentation_ratio (fill / delete 80%% "
                        "/ refill)\n");
        for (int a = 0; a < R_NA; a++) {
            const struct rcell *c = &rr[RW_REDIS].c[a];
            if (!c->ok)
                continue;
            if (md)
                fprintf(f, "| %s | %s | %s | %s | %.1f MiB | %.1f MiB | "
                           "%.2f |\n",
                        rnames[a], c->frag[0], c->frag[1], c->frag[2],
                        (double)c->used_kib / 1024.0,
                        (double)c->end_rss_kib / 1024.0, c->sec);
            else
                fprintf(f, "%-15s %s / %s / %s\n", rnames[a], c->frag[0],
                        c->frag[1], c->frag[2]);
        }
    }
    if (real_note[0])
        fprintf(f, md ? "\n%s\n" : "%s\n", real_note);
    if (md) {
        fprintf(f, "\n");
        for (int w = 0; w < RW_COUNT; w++)
            fprintf(f, "- **%s**: %s.\n", rw[w].name, rw[w].desc);
        fprintf(f, "\nLibraries preloaded: ");
        for (int a = 0; a < R_NA; a++)
            if (a != R_GLIBC)
                fprintf(f, "%s%s `%s`", a ? ", " : "", rnames[a],
                        rso[a][0] ? rso[a] : "(not found)");
        fprintf(f, ".  The data are in `real.csv`.\n");
    }
}

static void real_csv(void)
{
    bool any = false;
    for (int w = 0; w < RW_COUNT; w++)
        any |= rr[w].ran;
    if (!any)
        return;
    FILE *f = outf("real.csv");
    fprintf(f, "workload,allocator,seconds,calls,peak_rss_kib,"
               "speed_vs_jemalloc,rss_vs_jemalloc,frag_fill,frag_delete,"
               "frag_refill\n");
    for (int w = 0; w < RW_COUNT; w++)
        for (int a = 0; a < R_NA; a++) {
            const struct rcell *c = &rr[w].c[a], *je = &rr[w].c[R_JEMALLOC];
            if (!c->ok)
                continue;
            fprintf(f, "%s,%s,%.4f,%zu,%zu,", rw[w].name, rnames[a], c->sec,
                    c->ops, c->rss_kib);
            if (je->ok && c->sec > 0 && je->rss_kib)
                fprintf(f, "%.3f,%.3f,", je->sec / c->sec,
                        (double)c->rss_kib / (double)je->rss_kib);
            else
                fprintf(f, ",,");
            fprintf(f, "%s,%s,%s\n", c->frag[0], c->frag[1], c->frag[2]);
        }
    fclose(f);
}

/* ---- the report ----------------------------------------------------- */

static double robson(const struct bstream *s)
{
    double n = s->min_size ? (double)s->max_size / (double)s->min_size : 1;
    return 1 + log2(n < 1 ? 1 : n) / 2;
}

static double o1heap(const struct bstream *s)
{
    double n = s->min_size ? (double)s->max_size / (double)s->min_size : 1;
    return 2 * (1 + ceil(log2(n < 1 ? 1 : n)));
}

static bool have_col(int a)
{
    for (int w = 0; w < W_COUNT; w++)
        if (res[w].ran && res[w].c[a].ran)
            return true;
    return false;
}

static void fmt_mult(const struct cell *c, char *b, size_t n)
{
    if (!c->ran)
        snprintf(b, n, "-");
    else if (!c->min_arena)
        snprintf(b, n, ">256");
    else
        snprintf(b, n, "%.2f", c->mult);
}

static double ops_per_s(const struct wres *wr, int a)
{
    const struct cell *c = &wr->c[a];
    return c->timed && c->sec > 0 ? (double)wr->s.allocs / c->sec : 0;
}

static void machine(FILE *f)
{
    char model[256] = "?", line[512];
    FILE *ci = fopen("/proc/cpuinfo", "r");
    if (ci) {
        while (fgets(line, sizeof line, ci))
            if (!strncmp(line, "model name", 10)) {
                char *p = strchr(line, ':');
                if (p) {
                    snprintf(model, sizeof model, "%s", p + 2);
                    model[strcspn(model, "\n")] = 0;
                }
                break;
            }
        fclose(ci);
    }
    struct utsname u;
    uname(&u);
    time_t t = time(NULL);
    char date[64];
    strftime(date, sizeof date, "%Y-%m-%d %H:%M:%S UTC", gmtime(&t));
    fprintf(f, "| | |\n|---|---|\n");
    fprintf(f, "| date | %s |\n", date);
    fprintf(f, "| CPU | %s |\n", model);
    fprintf(f, "| cores online | %ld |\n", sysconf(_SC_NPROCESSORS_ONLN));
    fprintf(f, "| kernel | %s %s %s |\n", u.sysname, u.release, u.machine);
#if defined(__clang__)
    fprintf(f, "| compiler | clang %s |\n", __VERSION__);
#elif defined(__GNUC__)
    fprintf(f, "| compiler | gcc %s |\n", __VERSION__);
#endif
    fprintf(f, "| catena | %s, block %zu B, %d-bit indexes |\n",
            PACKAGE_VERSION, catena_block_size(), CATENA_INDEX_BITS);
    fprintf(f, "| run | %s, seed %llu, scale %.2f, %d repetition(s) (median), "
               "headroom %u %% |\n",
            opt.quick ? "--quick" : "default",
            (unsigned long long)opt.wp.seed, opt.wp.scale, opt.reps,
            opt.headroom);
}

/* Catena's chain statistics of one workload at its fixed arena (the
 * catena.csv row and the report's "chains" table). */
struct chainrow {
    const struct cell *c;
    double share, mean_ext; /* chained / allocs, extents / allocs */
    size_t overhead;        /* control data + table of that arena */
};

static bool chain_row(const struct wres *wr, struct chainrow *r)
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

static void write_csvs(void)
{
    FILE *f = outf("workloads.csv");
    fprintf(f, "workload,title,ops,allocator_calls,iterations,slots,peak_live_"
               "bytes,peak_objects,min_size,max_size,robson_mult,o1heap_mult,"
               "fixed_arena_bytes,stream_hash\n");
    for (int w = 0; w < W_COUNT; w++) {
        const struct wres *wr = &res[w];
        if (!wr->ran)
            continue;
        const struct bstream *s = &wr->s;
        fprintf(f, "%s,\"%s\",%zu,%zu,%zu,%zu,%zu,%zu,%zu,%zu,%.3f,%.3f,%zu,"
                   "%016llx\n",
                s->name, s->title, s->nops, s->allocs, s->ticks, s->nslots,
                s->peak_live, s->peak_objs, s->min_size, s->max_size,
                robson(s), o1heap(s), wr->fixed_arena,
                (unsigned long long)s->hash);
    }
    fclose(f);
    f = outf("summary.csv");
    fprintf(f, "workload,allocator,kind,peak_live_bytes,min_arena_bytes,"
               "arena_multiplier,fixed_arena_bytes,fixed_failed_allocs,"
               "fixed_ops_before_failure,peak_rss_bytes,rss_ratio,seconds,"
               "ops_per_s,ns_per_op,speed_vs_jemalloc\n");
    for (int w = 0; w < W_COUNT; w++) {
        const struct wres *wr = &res[w];
        if (!wr->ran)
            continue;
        double je = ops_per_s(wr, A_JEMALLOC);
        for (int a = 0; a < A_COUNT; a++) {
            const struct cell *c = &wr->c[a];
            if (!c->ran)
                continue;
            double ops = ops_per_s(wr, a);
            fprintf(f, "%s,%s,%s,%zu,", wr->s.name, anames[a],
                    is_arena(a) ? "arena" : "process", wr->s.peak_live);
            if (is_arena(a))
                fprintf(f, "%zu,%.4f,%zu,%zu,%zu,,,", c->min_arena, c->mult,
                        wr->fixed_arena, c->fix_failed, c->fix_ops);
            else
                fprintf(f, ",,,,,%zu,%.4f,", c->rss_peak, c->rss_ratio);
            fprintf(f, "%.6f,%.0f,%.1f,", c->sec, ops,
                    ops ? 1e9 / ops : 0.0);
            if (je > 0)
                fprintf(f, "%.3f\n", ops / je);
            else
                fprintf(f, "\n");
        }
    }
    fclose(f);
    f = outf("catena.csv");
    fprintf(f, "workload,allocations,chained_allocations,chained_share,"
               "mean_extents,spine_blocks_peak,table_overhead_bytes,"
               "fixed_arena_bytes\n");
    for (int w = 0; w < W_COUNT; w++) {
        struct chainrow r;
        if (chain_row(&res[w], &r))
            fprintf(f, "%s,%zu,%zu,%.5f,%.4f,%zu,%zu,%zu\n", res[w].s.name,
                    r.c->allocs, r.c->chained, r.share, r.mean_ext,
                    r.c->spine_peak, r.overhead, res[w].fixed_arena);
    }
    fclose(f);
    if (ind.ran) {
        f = outf("indefinite.csv");
        fprintf(f, "heap,arena_bytes,peak_live_bytes,iterations,survived\n");
        for (int k = 0; k < H_COUNT; k++)
            fprintf(f, "%s,%zu,%zu,%zu,%zu\n", heap_name(k), ind.arena,
                    ind.peak_live, ind.iters, ind.survived[k]);
        fclose(f);
    }
    /* bar-chart data for gnuplot (whitespace separated, quoted heads) */
    f = outf("multiplier.dat");
    fprintf(f, "workload");
    for (int a = 0; a < A_COUNT; a++)
        if (a != A_MPGC && a != A_CATGC && have_col(a))
            fprintf(f, " \"%s\"", anames[a]);
    fprintf(f, " \"Robson bound\"\n");
    for (int w = 0; w < W_COUNT; w++) {
        const struct wres *wr = &res[w];
        if (!wr->ran || is_micro(w))
            continue;
        fprintf(f, "%s", wr->s.name);
        for (int a = 0; a < A_COUNT; a++) {
            if (a == A_MPGC || a == A_CATGC || !have_col(a))
                continue;
            const struct cell *c = &wr->c[a];
            double v = !c->ran ? NAN : is_arena(a) ? c->mult : c->rss_ratio;
            if (is_arena(a) && c->ran && !c->min_arena)
                v = NAN;
            if (isnan(v))
                fprintf(f, " -");
            else
                fprintf(f, " %.4f", v);
        }
        fprintf(f, " %.4f\n", robson(&wr->s));
    }
    fclose(f);
    f = outf("throughput.dat");
    fprintf(f, "workload");
    for (int a = 0; a < A_COUNT; a++)
        if (have_col(a))
            fprintf(f, " \"%s\"", anames[a]);
    fprintf(f, "\n");
    for (int w = 0; w < W_COUNT; w++) {
        const struct wres *wr = &res[w];
        if (!wr->ran)
            continue;
        fprintf(f, "%s", wr->s.name);
        for (int a = 0; a < A_COUNT; a++) {
            if (!have_col(a))
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

static bool gnuplot_ok;

static void plots(void)
{
    const char *gp = opt.gnuplot ? opt.gnuplot : "gnuplot";
    if (!*gp)
        return;
    FILE *f = outf("plots.gp");
    fprintf(f, "# generated by catena-bench; run: cd %s && gnuplot plots.gp\n"
               "set terminal pngcairo size 1100,620 font ',10'\n"
               "set datafile separator whitespace\n"
               "set key outside right top\nset grid ytics\n"
               "set linetype 9 lc rgb '#8c564b'\n"
               "set linetype 10 lc rgb '#e377c2'\n",
            opt.out);
    /* bars: arena multiplier / RSS ratio */
    int ncol = 1;
    for (int a = 0; a < A_COUNT; a++)
        if (a != A_MPGC && a != A_CATGC && have_col(a))
            ncol++;
    fprintf(f,
            "set output 'multiplier.png'\n"
            "set title 'Memory needed / peak live bytes (in-arena heaps: "
            "smallest arena; process allocators: peak RSS)'\n"
            "set ylabel 'multiple of peak live bytes'\nset xlabel 'workload'\n"
            "set style data histograms\nset style histogram clustered gap 1\n"
            "set style fill solid 0.8 border -1\nset yrange [0:*]\n"
            "set datafile missing '-'\n"
            "plot for [i=2:%d] 'multiplier.dat' using i:xtic(1) title "
            "columnhead\n",
            ncol + 1);
    int tcol = 0;
    for (int a = 0; a < A_COUNT; a++)
        if (have_col(a))
            tcol++;
    fprintf(f,
            "set output 'throughput.png'\n"
            "set title 'Throughput (same operation stream for all; higher is "
            "better)'\n"
            "set ylabel 'million allocator calls per second (log scale)'\n"
            "set logscale y\nset yrange [*:*]\n"
            "plot for [i=2:%d] 'throughput.dat' using i:xtic(1) title "
            "columnhead\nunset logscale y\n",
            tcol + 1);
    fprintf(f, "set style data lines\nset datafile separator ','\n"
               "set key inside right top\nunset xrange\nset yrange [0:*]\n");
    /* fragmentation over time, per workload (fixed arena) */
    for (int w = 0; w < W_COUNT; w++) {
        const struct wres *wr = &res[w];
        if (!wr->ran || is_micro(w))
            continue;
        const char *n = wr->s.name;
        fprintf(f,
                "set output 'frag-%s.png'\n"
                "set title \"%s: largest free run and free memory, arena "
                "%.2fx peak live\"\n"
                "set xlabel 'operation'\nset ylabel 'KiB'\n"
                "plot 'frag-%s-catena.csv' every ::1 using 1:($3/1024) lw 2 "
                "lc rgb '#1f77b4' dt 2 title 'free (catena)', \\\n"
                " 'frag-%s-catena.csv' every ::1 using 1:($4/1024) lw 2 lc rgb "
                "'#1f77b4' title 'largest free run: catena', \\\n"
                " 'frag-%s-catena-contig.csv' every ::1 using 1:($4/1024) lw 2 "
                "lc rgb '#ff7f0e' title 'largest free run: catena-contig', \\\n"
                " 'frag-%s-mpheap.csv' every ::1 using 1:($4/1024) lw 2 lc "
                "rgb '#2ca02c' title 'largest free run: mpheap', \\\n"
                " 'frag-%s-mpheap.csv' every ::1 using 1:($3/1024) lw 1 lc "
                "rgb '#2ca02c' dt 2 title 'free (mpheap)'\n",
                n, wr->s.title, (double)wr->fixed_arena /
                (double)wr->s.peak_live, n, n, n, n, n);
        /* RSS over time for the process allocators */
        bool any = false;
        for (int a = A_GLIBC; a < A_COUNT; a++)
            if (wr->c[a].ran)
                any = true;
        if (!any)
            continue;
        fprintf(f,
                "set output 'rss-%s.png'\n"
                "set title \"%s: resident memory of each process allocator "
                "(above its baseline)\"\n"
                "set xlabel 'operation'\nset ylabel 'MiB'\nplot ",
                n, wr->s.title);
        bool first = true;
        for (int a = A_GLIBC; a < A_COUNT; a++) {
            if (!wr->c[a].ran)
                continue;
            fprintf(f, "%s'rss-%s-%s.csv' every ::1 using 1:($2/1048576) lw "
                       "2 title '%s'",
                    first ? "" : ", \\\n ", n, anames[a], anames[a]);
            first = false;
            if (a == A_GLIBC || (a == A_JEMALLOC && !wr->c[A_GLIBC].ran))
                fprintf(f, ", \\\n 'rss-%s-%s.csv' every ::1 using "
                           "1:($3/1048576) lw 2 lc rgb 'black' dt 2 title "
                           "'live bytes'",
                        n, anames[a]);
        }
        fprintf(f, "\n");
    }
    if (ind.ran)
        fprintf(f,
                "set output 'indefinite.png'\n"
                "set title 'Interpreter loop in an arena of %.2fx peak live: "
                "largest free run (a line ends at the first failed "
                "allocation)'\n"
                "set xlabel 'iteration (request), log scale'\n"
                "set ylabel 'largest free run (KiB)'\nset logscale x\n"
                "set autoscale xfix\n"
                "set key outside right top\nset yrange [0:*]\n"
                "plot 'frag-indefinite-catena.csv' every ::2 using 2:($4/1024) "
                "lw 2 title 'catena (chained)', \\\n"
                " 'frag-indefinite-catena-gc.csv' every ::2 using "
                "2:($4/1024) lw 2 title 'catena (GC)', \\\n"
                " 'frag-indefinite-catena-contig.csv' every ::2 using "
                "2:($4/1024) lw 2 title 'catena-contig', \\\n"
                " 'frag-indefinite-mpheap.csv' every ::2 using 2:($4/1024) lw 2 "
                "title 'mpheap (explicit free)', \\\n"
                " 'frag-indefinite-mpheap-gc.csv' every ::2 using 2:($4/1024) "
                "lw 2 title 'mpheap (GC)', \\\n"
                " %zu/1024.0 lw 1 lc rgb 'black' dt 2 title 'largest request'\n"
                "unset logscale x\nset autoscale x\n",
                (double)ind.arena / (double)ind.peak_live, ind.max_size);
    fclose(f);
    pid_t pid = fork();
    if (pid == 0) {
        if (chdir(opt.out) != 0)
            _exit(126);
        int null = open("/dev/null", O_WRONLY);
        if (null >= 0)
            dup2(null, 1);
        execlp(gp, gp, "plots.gp", (char *)NULL);
        _exit(127);
    }
    int st = 1;
    if (pid > 0)
        waitpid(pid, &st, 0);
    gnuplot_ok = pid > 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0;
    progress("plots: %s", gnuplot_ok ? "written (gnuplot)"
                                     : "gnuplot failed or missing: no PNG");
}

static void table_md(FILE *f, bool md);

static void report(void)
{
    FILE *f = outf("report.md");
    char b1[32], b2[32];
    fprintf(f, "# catena benchmark report\n\n"
               "Generated by `catena-bench%s`.  Every allocator replays the "
               "same operation streams (same seed, same hash in "
               "`workloads.csv`); the in-arena heaps are measured in this "
               "process in an arena of a given size, the process allocators "
               "each in a process of their own by resident memory.  See "
               "doc/bench.md for the method.\n\n## Machine\n\n",
            opt.quick ? " --quick" : "");
    machine(f);
    fprintf(f, "\n## Allocators\n\n| name | what | version |\n|---|---|---|\n");
    for (int a = 0; a < A_COUNT; a++) {
        const char *v = "";
        for (int w = 0; w < W_COUNT; w++)
            if (res[w].c[a].version[0])
                v = res[w].c[a].version;
        if (!have_col(a)) {
            if (a == A_PRELOAD)
                fprintf(f, "| %s | %s | not built: skipped |\n", anames[a],
                        adesc[a]);
            continue;
        }
        fprintf(f, "| %s | %s | %s |\n", anames[a], adesc[a],
                is_arena(a) ? (a == A_MPHEAP || a == A_MPGC ? "bench/mpheap.c"
                                                            : PACKAGE_VERSION)
                            : v);
    }
    if (ind.ran) {
        fprintf(f, "\n## Headline: the indefinite run\n\n"
                   "The interpreter loop (workload `interp`) for %zu "
                   "iterations in an arena of %s = **%.2fx its peak live "
                   "bytes** (%s); each heap runs until its first failed "
                   "allocation.\n\n| heap | iterations survived | |\n"
                   "|---|---:|---|\n",
                ind.iters, human(ind.arena, b1, sizeof b1),
                (double)ind.arena / (double)ind.peak_live,
                human(ind.peak_live, b2, sizeof b2));
        for (int k = 0; k < H_COUNT; k++)
            fprintf(f, "| %s | %zu | %s |\n", heap_name(k), ind.survived[k],
                    ind.survived[k] >= ind.iters ? "never failed (stopped)"
                                                 : "**failed**");
#if !BENCH_CATENA_GC
        fprintf(f, "\nNote: catena's collector is not in this build "
                   "(switch BENCH_CATENA_GC in bench/bench.h), so the "
                   "catena-gc row is simulated: dropped objects stay "
                   "allocated until an allocation fails, then all of them "
                   "are freed and the allocation retried.\n");
#else
        fprintf(f, "\ncatena-gc and mpheap-gc never free explicitly: a "
                   "dropped object is only unreferenced, and each heap's "
                   "mark-sweep collector runs when an allocation fails (then "
                   "the allocation is retried once), as MicroPython does.\n");
#endif
        fprintf(f, "\n![fragmentation over the indefinite run]"
                   "(indefinite.png)\n");
    }
    table_md(f, true);
    real_md(f, true);
    fprintf(f, "\n## Catena's chains\n\nAt the fixed arena of each workload "
               "(from `catena.csv`): how many allocations (and reallocs) got a "
               "chain, the mean extents per allocation, the most spine blocks "
               "at once, and the control data + table for that arena.\n\n"
               "| workload | allocations | chained | mean extents | spine "
               "blocks (peak) | table overhead |\n|---|---:|---:|---:|---:|"
               "---:|\n");
    for (int w = 0; w < W_COUNT; w++) {
        struct chainrow r;
        if (chain_row(&res[w], &r))
            fprintf(f, "| %s | %zu | %.2f %% | %.3f | %zu | %s (%.2f %%) |\n",
                    res[w].s.name, r.c->allocs, 100.0 * r.share, r.mean_ext,
                    r.c->spine_peak, human(r.overhead, b1, sizeof b1),
                    100.0 * (double)r.overhead / (double)res[w].fixed_arena);
    }
    if (res[W_INTERP].ran)
        fprintf(f, "\nGC: in the interpreter workload's fixed-arena run "
                   "mpheap-gc ran %zu collections and catena-gc %zu.  GC "
                   "time is inside the throughput of the -gc rows.\n",
                res[W_INTERP].c[A_MPGC].collections,
                res[W_INTERP].c[A_CATGC].collections);
    fprintf(f, "\n## Plots\n\n");
    if (!gnuplot_ok)
        fprintf(f, "gnuplot was not available: no plots (the data are in the "
                   "CSV files).\n\n");
    fprintf(f, "![arena multiplier and RSS ratio](multiplier.png)\n\n"
               "![throughput](throughput.png)\n\n");
    for (int w = 0; w < W_COUNT; w++)
        if (res[w].ran && !is_micro(w))
            fprintf(f, "![%s: fragmentation](frag-%s.png)\n\n", res[w].s.name,
                    res[w].s.name);
    for (int w = 0; w < W_COUNT; w++)
        if (res[w].ran && !is_micro(w) && res[w].c[A_GLIBC].ran)
            fprintf(f, "![%s: RSS over time](rss-%s.png)\n\n", res[w].s.name,
                    res[w].s.name);
    fprintf(f, "## Workloads\n\n");
    for (int w = 0; w < W_COUNT; w++) {
        const struct wres *wr = &res[w];
        if (!wr->ran)
            continue;
        const struct bstream *s = &wr->s;
        fprintf(f, "**%s** (`%s`): %s  %zu operations (%zu allocator calls), "
                   "peak live %s in %zu objects, sizes %zu-%zu B, stream hash "
                   "%016llx.\n\n",
                s->title, s->name, s->desc, s->nops, s->allocs,
                human(s->peak_live, b1, sizeof b1), s->peak_objs, s->min_size,
                s->max_size, (unsigned long long)s->hash);
    }
    for (int i = 0; i < 2; i++)
        if (trace_note[i][0])
            fprintf(f, "Trace (%s): %s\n\n", i ? "python3" : "replay",
                    trace_note[i]);
    fprintf(f, "## Files\n\n`summary.csv` (every cell of the tables), "
               "`workloads.csv`, `catena.csv`, `indefinite.csv`, "
               "`frag-WORKLOAD-HEAP.csv` (free bytes and largest free run "
               "over the fixed-arena run), `rss-WORKLOAD-ALLOCATOR.csv` (RSS "
               "over the run), `plots.gp` (regenerates the PNGs).\n");
    fclose(f);
}

/* The tables, in Markdown (report) or plain text (terminal). */
static void table_md(FILE *f, bool md)
{
    int cols[A_COUNT], nc = 0;
    for (int a = 0; a < A_COUNT; a++)
        if (have_col(a))
            cols[nc++] = a;
    const char *sep = md ? " | " : " ";
    /* memory */
    if (md)
        fprintf(f, "\n## Memory: multiple of peak live bytes (lower is "
                   "better)\n\nIn-arena heaps: the smallest arena in which the "
                   "workload completes with no failed allocation, found by "
                   "bisection (to 0.5 %%), divided by the peak of live "
                   "requested bytes.  Process allocators: peak RSS above the "
                   "process's baseline, divided by the same peak.  Bounds "
                   "for a non-moving allocator with the workload's size ratio "
                   "n = max/min: Robson M(1 + log2(n)/2), o1heap "
                   "2M(1 + ceil(log2 n)).  The micro workloads (throughput "
                   "only: they hold a few KiB live and never touch their "
                   "memory) are left out; their numbers are in summary.csv."
                   "\n\n");
    else
        fprintf(f, "\nmemory needed / peak live bytes (in-arena: min arena; "
                   "process: peak RSS)\n");
    fprintf(f, md ? "| workload | peak live" : "%-10s %10s", "workload",
            "peak live");
    for (int i = 0; i < nc; i++)
        fprintf(f, md ? " | %s" : " %14s", anames[cols[i]]);
    fprintf(f, md ? " | Robson | o1heap |\n" : " %7s %7s\n", "Robson",
            "o1heap");
    if (md) {
        fprintf(f, "|---|---:");
        for (int i = 0; i < nc; i++)
            fprintf(f, "|---:");
        fprintf(f, "|---:|---:|\n");
    }
    for (int w = 0; w < W_COUNT; w++) {
        const struct wres *wr = &res[w];
        if (!wr->ran || is_micro(w))
            continue;
        char b[32], v[32];
        human(wr->s.peak_live, b, sizeof b);
        fprintf(f, md ? "| %s | %s" : "%-10s %10s", wr->s.name, b);
        for (int i = 0; i < nc; i++) {
            const struct cell *c = &wr->c[cols[i]];
            if (is_arena(cols[i]))
                fmt_mult(c, v, sizeof v);
            else if (c->ran)
                snprintf(v, sizeof v, "%.2f", c->rss_ratio);
            else
                snprintf(v, sizeof v, "-");
            fprintf(f, md ? " | %s" : " %14s", v);
        }
        fprintf(f, md ? " | %.2f | %.0f |\n" : " %7.2f %7.0f\n",
                robson(&wr->s), o1heap(&wr->s));
    }
    (void)sep;
    /* fixed arena */
    if (md) {
        fprintf(f, "\n## At a fixed arena: (1 + %u %%) x peak live blocks + "
                   "catena's table\n\nFailed allocations over the whole "
                   "stream (each failure skipped, the run continued; it stops "
                   "at %d failures), and in parentheses the allocator calls "
                   "completed before the first failure (of the stream's "
                   "total).\n\n"
                   "| workload | arena |",
                opt.headroom, MAX_FAIL);
        for (int a = 0; a <= A_CATGC; a++)
            if (have_col(a))
                fprintf(f, " %s |", anames[a]);
        fprintf(f, "\n|---|---:|");
        for (int a = 0; a <= A_CATGC; a++)
            if (have_col(a))
                fprintf(f, "---:|");
        fprintf(f, "\n");
        for (int w = 0; w < W_COUNT; w++) {
            const struct wres *wr = &res[w];
            if (!wr->ran)
                continue;
            char b[32];
            fprintf(f, "| %s | %s (%.2fx) |", wr->s.name,
                    human(wr->fixed_arena, b, sizeof b),
                    (double)wr->fixed_arena / (double)wr->s.peak_live);
            for (int a = 0; a <= A_CATGC; a++) {
                if (!have_col(a))
                    continue;
                const struct cell *c = &wr->c[a];
                if (!c->ran)
                    fprintf(f, " - |");
                else if (c->fix_ok)
                    fprintf(f, " 0 |");
                else
                    fprintf(f, " %s%zu (%zu of %zu) |",
                            c->fix_failed >= MAX_FAIL ? "&ge;" : "",
                            c->fix_failed, c->fix_ops, wr->s.allocs);
            }
            fprintf(f, "\n");
        }
    }
    /* throughput */
    if (md)
        fprintf(f, "\n## Throughput: million allocator calls per second, and "
                   "ratio to jemalloc (higher is better)\n\nMedian of %d "
                   "replay(s) of the same stream, including writing every "
                   "allocated byte (except the micro workloads).  In-arena "
                   "heaps run in an arena of twice the largest minimum arena. "
                   " The machine is shared and noisy: compare ratios from the "
                   "same run.\n\n| workload",
                opt.reps);
    else
        fprintf(f, "\nthroughput: M calls/s (ratio to jemalloc)\n%-10s",
                "workload");
    for (int i = 0; i < nc; i++)
        fprintf(f, md ? " | %s" : " %14s", anames[cols[i]]);
    fprintf(f, md ? " |\n|---" : "\n");
    if (md) {
        for (int i = 0; i < nc; i++)
            fprintf(f, "|---:");
        fprintf(f, "|\n");
    }
    for (int w = 0; w < W_COUNT; w++) {
        const struct wres *wr = &res[w];
        if (!wr->ran)
            continue;
        double je = ops_per_s(wr, A_JEMALLOC);
        fprintf(f, md ? "| %s" : "%-10s", wr->s.name);
        for (int i = 0; i < nc; i++) {
            double o = ops_per_s(wr, cols[i]);
            char v[48];
            if (o <= 0)
                snprintf(v, sizeof v, "-");
            else if (je > 0)
                snprintf(v, sizeof v, "%.1f (%.2f)", o / 1e6, o / je);
            else
                snprintf(v, sizeof v, "%.1f", o / 1e6);
            fprintf(f, md ? " | %s" : " %14s", v);
        }
        fprintf(f, md ? " |\n" : "\n");
    }
}

/* ---- the trace for workload 7 ---------------------------------------- */

/* A small web-request loop for python3, run under the shim to record a
 * real program's trace (PYTHONMALLOC=malloc: every object is a malloc). */
static const char py_script[] =
    "import json, re, sys\n"
    "cache = {}\n"
    "out = []\n"
    "pat = re.compile(r'(\\w+)=(\\d+)')\n"
    "for i in range(int(sys.argv[1])):\n"
    "    req = json.dumps({'id': i, 'path': '/item/%d' % (i % 97),\n"
    "                      'q': 'a=%d&b=%d' % (i, i * 7), 'body': 'x' * (i % 700)})\n"
    "    r = json.loads(req)\n"
    "    params = dict(pat.findall(r['q']))\n"
    "    words = r['body'].split('x')[:20]\n"
    "    resp = '<html>%s %s %d</html>' % (r['path'], params, len(words))\n"
    "    if i % 10 == 0:\n"
    "        cache[r['path']] = resp * (1 + i % 5)\n"
    "    out.append(len(resp))\n"
    "    if len(out) > 500:\n"
    "        out = out[250:]\n"
    "print(len(cache), sum(out))\n";

static const char sql_script[] =
    "create table kv(k integer primary key, v text, b blob);\n"
    "with recursive c(x) as (select 1 union all select x+1 from c where x < "
    "3000)\n"
    "insert into kv select x, printf('value-%d-%s', x, substr(hex("
    "zeroblob(200)), 1, x % 300)), zeroblob(x % 1000) from c;\n"
    "create index kv_v on kv(v);\n"
    "delete from kv where k % 5 != 0;\n"
    "with recursive c(x) as (select 1 union all select x+1 from c where x < "
    "2000)\n"
    "insert into kv select 10000 + x, printf('new-%d', x), zeroblob(500 + x "
    "% 3000) from c;\n"
    "select count(*), sum(length(b)) from kv;\n"
    "select v from kv order by v limit 3;\n";

/* Record `prog` under the shim into path: the script text goes to a file
 * in the output directory, given as argument (python3, with `arg`) or as
 * standard input (sqlite3).  0 or -1. */
static int record_prog(const char *prog, const char *sname, const char *text,
                       bool on_stdin, const char *arg, const char *path)
{
    if (!driver_path[A_PRELOAD][0] || !opt.preload)
        return -1;
    char script[PATH_MAX + 64];
    snprintf(script, sizeof script, "%s/%s", opt.out, sname);
    FILE *f = fopen(script, "w");
    if (!f)
        return -1;
    fputs(text, f);
    fclose(f);
    unlink(path);
    pid_t pid = fork();
    if (pid == 0) {
        int null = open("/dev/null", O_WRONLY);
        if (null >= 0) {
            dup2(null, 1);
            dup2(null, 2);
        }
        if (on_stdin) {
            int in = open(script, O_RDONLY);
            if (in < 0)
                _exit(126);
            dup2(in, 0);
        }
        setenv("CATENA_TRACE", path, 1);
        setenv("PYTHONMALLOC", "malloc", 1);
        setenv("LD_PRELOAD", opt.preload, 1);
        if (on_stdin)
            execlp(prog, prog, arg, (char *)NULL);
        else
            execlp(prog, prog, script, arg, (char *)NULL);
        _exit(127);
    }
    int st = 1;
    if (pid > 0)
        waitpid(pid, &st, 0);
    return pid > 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0 && file_ok(path)
               ? 0
               : -1;
}

/* Workload W_REPLAY (--trace FILE, else sqlite3 recorded now, else a
 * synthetic trace) or W_PYTHON (python3 recorded now).  false: skip. */
static bool load_trace(int w, struct bstream *s)
{
    char err[512], path[PATH_MAX + 64], *note = trace_note[w == W_PYTHON];
    size_t nlen = sizeof trace_note[0];
    int iters = 300;
    if (w == W_PYTHON) {
        snprintf(path, sizeof path, "%s/python3.trace", opt.out);
        char arg[32];
        snprintf(arg, sizeof arg, "%d", iters);
        if (record_prog("python3", "python3-workload.py", py_script, false,
                        arg, path) != 0 ||
            trace_load(path, s, err, sizeof err) != 0)
            return false;
        snprintf(note, nlen,
                 "`python3 python3-workload.py %d` (a JSON request loop: "
                 "json.dumps/loads, a regex, string formatting, a dict "
                 "cache; the script is in the output directory) recorded by "
                 "libcatena-preload.so with CATENA_TRACE and "
                 "PYTHONMALLOC=malloc, start-up and exit included "
                 "(`python3.trace`).",
                 iters);
        s->name = "python3";
        s->title = "trace replay: python3";
    } else if (opt.trace) {
        if (trace_load(opt.trace, s, err, sizeof err) != 0)
            die("%s", err);
        snprintf(note, nlen, "replayed `%s`.", opt.trace);
        s->name = "replay";
        s->title = "trace replay";
    } else {
        snprintf(path, sizeof path, "%s/sqlite3.trace", opt.out);
        if (record_prog("sqlite3", "sqlite3-workload.sql", sql_script, true,
                        ":memory:", path) == 0 &&
            trace_load(path, s, err, sizeof err) == 0) {
            snprintf(note, nlen,
                     "`sqlite3 :memory: < sqlite3-workload.sql` (create a "
                     "table of 3000 rows of text and blobs, index it, delete "
                     "80 %%, insert 2000 larger rows, query; the script is "
                     "in the output directory) recorded by "
                     "libcatena-preload.so with CATENA_TRACE "
                     "(`sqlite3.trace`).");
            s->title = "trace replay: sqlite3";
        } else {
            /* no shim or no sqlite3: the kv workload (a quarter of its
             * scale) written as a trace, which exercises the trace path */
            struct wparams p = opt.wp;
            p.scale *= 0.25;
            struct bstream k;
            workload_gen(W_KV, &p, &k);
            snprintf(path, sizeof path, "%s/synthetic.trace", opt.out);
            if (trace_save(&k, path) != 0)
                die("cannot write %s", path);
            bstream_free(&k);
            if (trace_load(path, s, err, sizeof err) != 0)
                die("%s", err);
            snprintf(note, nlen,
                     "the shim or sqlite3 is missing, so the `kv` workload "
                     "at a quarter of its scale was written as a trace "
                     "(`synthetic.trace`) and replayed: this checks the "
                     "trace path, it is not a real program.");
            s->title = "trace replay: synthetic";
        }
        s->name = "replay";
    }
    s->desc = "Replay of an allocation trace in the format of "
              "preload/trace.h (object ids mapped to slots; failed "
              "allocations skipped; frees of memory allocated before the "
              "recording ignored).";
    return true;
}

/* ---- self test (make check) ----------------------------------------- */

/* A new empty file for the self-test, named by process and a counter in
 * $TMPDIR (or /tmp), created exclusively.  Returns its descriptor. */
static int selftest_file(char *path, size_t n)
{
    static unsigned count;
    const char *dir = getenv("TMPDIR");
    snprintf(path, n, "%s/catena-bench-selftest-%ld-%u", dir ? dir : "/tmp",
             (long)getpid(), count++);
    return open(path, O_RDWR | O_CREAT | O_EXCL, 0600);
}

static int selftest(void)
{
    int fails = 0;
    struct wparams p = {.seed = 7, .scale = 0.05, .interp_iters = 200};
    for (int w = 0; w < W_REPLAY; w++) {
        struct bstream a, b;
        workload_gen(w, &p, &a);
        workload_gen(w, &p, &b);
        bool same = a.nops == b.nops && a.hash == b.hash &&
                    !memcmp(a.ops, b.ops, a.nops * sizeof *a.ops);
        p.seed = 8;
        struct bstream c;
        workload_gen(w, &p, &c);
        p.seed = 7;
        bool differs = c.hash != a.hash || w == W_ROBSON || w == W_MICRO1;
        printf("%s determinism %-9s %zu ops hash %016llx\n",
               same && differs ? "ok  " : "FAIL", workload_name(w), a.nops,
               (unsigned long long)a.hash);
        fails += !(same && differs);
        /* trace round trip */
        char path[PATH_MAX];
        int fd = selftest_file(path, sizeof path);
        if (fd >= 0)
            close(fd);
        struct bstream t;
        char err[512];
        bool rt = fd >= 0 && trace_save(&a, path) == 0 &&
                  trace_load(path, &t, err, sizeof err) == 0;
        if (rt) {
            rt = t.allocs == a.allocs && t.peak_live == a.peak_live;
            bstream_free(&t);
        }
        printf("%s trace round trip %s\n", rt ? "ok  " : "FAIL",
               workload_name(w));
        fails += !rt;
        unlink(path);
        bstream_free(&a);
        bstream_free(&b);
        bstream_free(&c);
    }
    /* corrupt traces: clear errors, never a crash */
    static const struct {
        const char *what;
        const char *bytes;
        size_t len;
    } bad[] = {
        {"empty file", "", 0},
        {"bad magic", "NOTATRACE0000000", 16},
        {"bad version", "CATRACE1\x09\0\0\0\0\0\0\0", 16},
        {"truncated record", "CATRACE1\x01\0\0\0\0\0\0\0\x01\0\0\0", 20},
        {"unknown op",
         "CATRACE1\x01\0\0\0\0\0\0\0"
         "\x09\0\0\0\0\0\0\0\x01\0\0\0\0\0\0\0\x10\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0",
         48},
        {"no allocations", "CATRACE1\x01\0\0\0\0\0\0\0", 16},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char path[PATH_MAX];
        int fd = selftest_file(path, sizeof path);
        if (fd < 0)
            return 1;
        if (write(fd, bad[i].bytes, bad[i].len) != (ssize_t)bad[i].len)
            fails++;
        close(fd);
        struct bstream t;
        char err[512] = "";
        int rc = trace_load(path, &t, err, sizeof err);
        printf("%s corrupt trace (%s): %s\n", rc != 0 && err[0] ? "ok  " : "FAIL",
               bad[i].what, err);
        fails += !(rc != 0 && err[0]);
        unlink(path);
    }
    printf("%s\n", fails ? "selftest FAILED" : "selftest passed");
    return fails ? 1 : 0;
}

/* ---- main ------------------------------------------------------------ */

static void usage(void)
{
    fprintf(stderr,
            "usage: catena-bench [--quick] [--out DIR] [--reps N] [--seed N]\n"
            "                    [--headroom PCT] [--indef-headroom PCT] "
            "[--indef-iters N]\n"
            "                    [--trace FILE] [--gnuplot PATH]\n"
            "                    [--drivers DIR] [--preload SO] "
            "[--no-process]\n"
            "                    [--no-real] [--workloads PATH]\n"
            "       catena-bench replay FILE [options]\n"
            "       catena-bench record WORKLOAD FILE\n"
            "       catena-bench selftest\n"
            "workloads: sparse robson interp kv growth micro1 micromix "
            "microbig\n");
    exit(2);
}

int main(int argc, char **argv)
{
    t_start = now_sec();
    setvbuf(stdout, NULL, _IOLBF, 0);
    opt.out = "bench/results";
    opt.reps = 3;
    opt.headroom = 25;
    opt.indef_headroom = 5;
    opt.wp.seed = 1;
    opt.wp.scale = 1.0;
    opt.wp.interp_iters = 10000;
    opt.indef_iters = 200000;
    bool replay_only = false;
    int i = 1;
    if (argc > 1 && !strcmp(argv[1], "selftest"))
        return selftest();
    if (argc > 1 && !strcmp(argv[1], "record")) {
        if (argc != 4)
            usage();
        int w = 0;
        while (w < W_REPLAY && strcmp(workload_name(w), argv[2]))
            w++;
        if (w == W_REPLAY)
            usage();
        struct bstream s;
        workload_gen(w, &opt.wp, &s);
        if (trace_save(&s, argv[3]) != 0)
            die("cannot write %s: %s", argv[3], strerror(errno));
        printf("%s: %zu records\n", argv[3], s.allocs);
        return 0;
    }
    if (argc > 1 && !strcmp(argv[1], "replay")) {
        if (argc < 3)
            usage();
        opt.trace = argv[2];
        replay_only = true;
        i = 3;
    }
    for (; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--quick"))
            opt.quick = true;
        else if (!strcmp(a, "--no-process"))
            opt.no_process = true;
        else if (!strcmp(a, "--no-real"))
            opt.no_real = true;
        else if (!v)
            usage();
        else if (!strcmp(a, "--out"))
            opt.out = v, i++;
        else if (!strcmp(a, "--trace"))
            opt.trace = v, i++;
        else if (!strcmp(a, "--gnuplot"))
            opt.gnuplot = v, i++;
        else if (!strcmp(a, "--drivers"))
            opt.drivers = v, i++;
        else if (!strcmp(a, "--preload"))
            opt.preload = v, i++;
        else if (!strcmp(a, "--workloads"))
            opt.workloads = v, i++;
        else if (!strcmp(a, "--reps"))
            opt.reps = atoi(v), i++;
        else if (!strcmp(a, "--seed"))
            opt.wp.seed = strtoull(v, NULL, 10), i++;
        else if (!strcmp(a, "--headroom"))
            opt.headroom = (unsigned)atoi(v), i++;
        else if (!strcmp(a, "--indef-headroom"))
            opt.indef_headroom = (unsigned)atoi(v), i++;
        else if (!strcmp(a, "--indef-iters"))
            opt.indef_iters = strtoull(v, NULL, 10), i++;
        else
            usage();
    }
    if (opt.quick) {
        opt.wp.scale = 0.1;
        opt.wp.interp_iters = 2000;
        opt.indef_iters = 20000;
        if (opt.reps == 3)
            opt.reps = 1;
    }
    if (opt.reps < 1 || opt.reps > 15)
        die("--reps must be 1..15");
    ssize_t n = readlink("/proc/self/exe", exe_dir, sizeof exe_dir - 1);
    if (n > 0) {
        exe_dir[n] = 0;
        char *sl = strrchr(exe_dir, '/');
        if (sl)
            *sl = 0;
    } else
        snprintf(exe_dir, sizeof exe_dir, ".");
    mkdirs(opt.out);
    find_drivers();
    printf("catena-bench %s: block %zu B; output in %s/\n", PACKAGE_VERSION,
           catena_block_size(), opt.out);
    printf("process allocators:");
    for (int a = A_GLIBC; a < A_COUNT; a++)
        if (driver_path[a][0] && !opt.no_process)
            printf(" %s", anames[a]);
    printf("%s\n", driver_path[A_PRELOAD][0] ? "" : " (no LD_PRELOAD shim)");
    int nw = 0;
    for (int w = 0; w < W_COUNT; w++) {
        if (replay_only && w != W_REPLAY)
            continue;
        struct wres *wr = &res[w];
        if (w == W_PYTHON && (opt.quick || replay_only || opt.trace))
            continue;
        if (w >= W_REPLAY) {
            if (!load_trace(w, &wr->s)) {
                progress("workload %s: skipped (no shim or no python3)",
                         workload_name(w));
                continue;
            }
        } else
            workload_gen(w, &opt.wp, &wr->s);
        wr->ran = true;
        char b[32];
        progress("workload %d/%d %s: %zu allocator calls, peak live %s, "
                 "sizes %zu-%zu B",
                 ++nw, replay_only ? 1 : W_COUNT - (opt.quick || opt.trace),
                 wr->s.name, wr->s.allocs,
                 human(wr->s.peak_live, b, sizeof b), wr->s.min_size,
                 wr->s.max_size);
        run_arena(wr);
        if (!opt.no_process)
            run_process(w, wr);
    }
    if (!replay_only)
        run_indefinite();
    if (!replay_only && !opt.no_process)
        run_real();
    write_csvs();
    real_csv();
    plots();
    report();
    table_md(stdout, false);
    real_md(stdout, false);
    if (ind.ran) {
        printf("\nindefinite run (interp, arena %.2fx peak live, %zu "
               "iterations): ",
               (double)ind.arena / (double)ind.peak_live, ind.iters);
        for (int k = 0; k < H_COUNT; k++)
            printf("%s%s %zu%s", k ? ", " : "", heap_name(k),
                   ind.survived[k],
                   ind.survived[k] >= ind.iters ? " (never failed)" : "");
        printf("\n");
    }
    printf("\nreport: %s/report.md (%.0f s)\n", opt.out, now_sec() - t_start);
    for (int w = 0; w < W_COUNT; w++)
        bstream_free(&res[w].s);
    return 0;
}
