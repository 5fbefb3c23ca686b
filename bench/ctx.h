/*
 * ctx.h - catena-bench's jobs and the context they share.
 *
 * One run of catena-bench is a sequence of jobs, one file each:
 *
 *   allocators.c  the allocator table (the columns of every table)
 *   options.c     the command line -> struct bench_opts
 *   output.c      progress lines, files in the output directory
 *   arena_jobs.c  in-arena measurements (minimum arena, fixed arena,
 *                 throughput) on top of arena.c's replay
 *   process.c     the process allocators: drivers in processes of their own
 *   indefinite.c  the headline: the interpreter loop until the first failure
 *   real.c        whole programs under each process allocator
 *   record.c      recording the real programs' traces (workloads replay and
 *                 python3)
 *   icount.c      instructions per allocator call, under callgrind
 *   csv.c, plots.c, report.c   the output files and the terminal summary
 *   selftest.c    `catena-bench selftest`
 *   main.c        the order of the jobs
 *
 * Every job gets the run's struct bench_ctx explicitly: options in, results
 * out.  Nothing of a run lives in file-level variables.
 */
#ifndef CATENA_BENCH_CTX_H
#define CATENA_BENCH_CTX_H

#include "bench.h"

#include <limits.h>
#include <stdio.h>

#ifndef PACKAGE_VERSION
#define PACKAGE_VERSION "?"
#endif

/* ---- allocators (columns; allocators.c) -------------------------------- */

/* The in-arena heaps first, in arena.c's H_* order (A_x == H_x). */
enum {
    A_CATENA,
    A_CONTIG,
    A_MPHEAP,
    A_MPGC,
    A_CATGC,
    A_GLIBC,
    A_JEMALLOC,
    A_MIMALLOC,
    A_PRELOAD,
    A_COUNT
};
extern const char *const bench_anames[A_COUNT];
extern const char *const bench_adesc[A_COUNT];
bool bench_is_arena(int a);
bool bench_is_micro(int w);

/* The fixed-arena runs stop after this many failed allocations (a failing
 * first-fit scan costs a whole heap scan). */
#define MAX_FAIL 256

/* ---- options (options.c) --------------------------------------------- */

struct bench_opts {
    bool quick, no_process, no_real, replay_only;
    bool instructions;      /* count instructions per call (callgrind) */
    bool only_instructions; /* --instructions: nothing else */
    const char *out, *trace, *gnuplot, *drivers, *preload, *workloads;
    const char *valgrind;
    const char *only; /* --only W,W...: these workloads alone */
    int reps;
    unsigned headroom, indef_headroom;
    struct wparams wp;
    size_t indef_iters;
};

/* ---- results ------------------------------------------------------------ */

/* One allocator on one workload. */
struct cell {
    bool ran;
    /* in-arena */
    size_t min_arena; /* 0: not found */
    double mult;      /* min_arena / peak_live */
    size_t fix_failed, fix_ops, fix_ticks;
    bool fix_ok;
    size_t chained, allocs, extents, spine_peak, collections;
    /* process */
    size_t rss_peak;
    double rss_ratio;
    char version[64];
    /* both */
    double sec; /* median seconds of a replay */
    bool timed;
};

/* Instructions (callgrind's Ir) in one kind of allocator call. */
enum { IC_ALLOC, IC_FREE, IC_REALLOC, IC_KINDS };
struct icell {
    bool ran;
    size_t calls[IC_KINDS];
    unsigned long long ir[IC_KINDS];
};

/* One workload. */
struct wres {
    bool ran;
    struct bstream s;
    size_t fixed_arena;
    struct cell c[A_COUNT];
    struct icell ic[A_COUNT];
    size_t ic_allocs; /* allocator calls of the stream counted (icount.c) */
};

/* The indefinite run. */
struct indef {
    size_t iters, arena, peak_live, max_size;
    size_t survived[H_COUNT];
    bool ran;
};

/* Whole programs under the process allocators (real.c). */
enum { R_PRELOAD, R_GLIBC, R_JEMALLOC, R_MIMALLOC, R_NA };
enum {
    RW_CHURN,
    RW_LARSON,
    RW_XMALLOC,
    RW_PYTHON,
    RW_SQLITE,
    RW_REDIS,
    RW_COUNT
};
struct real_workload {
    const char *name, *mt, *py, *desc;
    double scale; /* catena-bench-mt SCALE at the default run */
};
extern const struct real_workload bench_rw[RW_COUNT];
extern const char *const bench_rnames[R_NA];

struct rcell {
    bool ok;
    double sec;       /* median seconds (mt: of the workload; programs:
                         the whole run) */
    size_t ops;       /* mt only */
    size_t rss_kib;   /* peak RSS (ru_maxrss / VmHWM) */
    char frag[3][16]; /* redis: fill, delete, refill */
    size_t used_kib, end_rss_kib;
};

struct real {
    struct {
        bool ran;
        char note[256];
        struct rcell c[R_NA];
    } w[RW_COUNT];
    char note[PATH_MAX + 256];
    char so[R_NA][PATH_MAX + 64]; /* what LD_PRELOAD gets ("": not found) */
    int mt_threads;
};

/* ---- the context of a run ----------------------------------------------- */

struct bench_ctx {
    struct bench_opts opt;
    double t_start;
    char exe_dir[PATH_MAX];
    char exe_path[PATH_MAX]; /* this program (icount.c runs it) */
    char driver_path[A_COUNT][PATH_MAX + 128]; /* "": not available */
    char preload_so[PATH_MAX + 64];
    struct wres res[W_COUNT];
    char trace_note[2][768]; /* how the replay / python3 trace was made */
    struct indef ind;
    struct real real;
    bool gnuplot_ok;
    char icount_note[256]; /* why instructions were not counted */
};

/* ---- helpers (output.c) ------------------------------------------------- */

void progress(const struct bench_ctx *ctx, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
void mkdirs(const char *path);
/* A new file in the output directory, named by fmt; dies on failure. */
FILE *outf(const struct bench_ctx *ctx, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
double median(double *v, int n);
const char *human(size_t b, char *buf, size_t len);
bool file_ok(const char *path);
/* Run argv (found in PATH) with LD_PRELOAD = preload (unset when NULL);
 * its stdout into out (NUL-terminated, the rest drained), its stderr to
 * /dev/null when quiet.  The exit status (128 + signal when killed, -1
 * when it could not run); the child's peak RSS in KiB in *maxrss. */
int spawn(char *const argv[], const char *preload, bool quiet, char *out,
          size_t outlen, size_t *maxrss);

/* ---- the jobs ---------------------------------------------------------- */

/* options.c: defaults, then argv; exits with usage on a bad option.
 * Returns the subcommand ("run", "selftest", "record", "replay",
 * "icount-arena") and leaves its arguments in *rest / *nrest. */
const char *bench_options(struct bench_ctx *ctx, int argc, char **argv,
                          char ***rest, int *nrest);
void bench_usage(void) __attribute__((noreturn));

/* arena_jobs.c */
size_t fixed_arena(const struct bstream *s, unsigned headroom);
void write_frag_csv(const struct bench_ctx *ctx, const char *w, int k,
                    const struct frag_sample *fs, size_t n,
                    const struct bstream *s);
void run_arena(struct bench_ctx *ctx, struct wres *wr);

/* process.c */
void find_drivers(struct bench_ctx *ctx);
void run_process(struct bench_ctx *ctx, struct wres *wr);

/* indefinite.c */
void run_indefinite(struct bench_ctx *ctx);

/* real.c */
void run_real(struct bench_ctx *ctx);

/* record.c: workload W_REPLAY or W_PYTHON into *s; false: skipped. */
bool load_trace(struct bench_ctx *ctx, int w, struct bstream *s);

/* icount.c: synthetic workloads are counted at this scale at most, traces
 * up to this many operations (counts are deterministic: a smaller stream
 * serves). */
#define ICOUNT_SCALE 0.1
#define ICOUNT_MAX_OPS 100000
void run_icount(struct bench_ctx *ctx);
int icount_arena_main(int argc, char **argv);

/* csv.c, plots.c, report.c */
/* Catena's chain statistics of one workload at its fixed arena (the
 * catena.csv row and the report's "chains" table). */
struct chainrow {
    const struct cell *c;
    double share, mean_ext; /* chained / allocs, extents / allocs */
    size_t overhead;        /* control data + table of that arena */
};

bool chain_row(const struct wres *wr, struct chainrow *r);
bool have_col(const struct bench_ctx *ctx, int a);
double ops_per_s(const struct wres *wr, int a);
double robson(const struct bstream *s);
double o1heap(const struct bstream *s);
void write_csvs(const struct bench_ctx *ctx);
void real_csv(const struct bench_ctx *ctx);
/* Instructions per call of one kind (IC_*; -1: all calls), 0 when none. */
double icount_per_call(const struct icell *ic, int kind);
void icount_csv(const struct bench_ctx *ctx);
void plots(struct bench_ctx *ctx);
void report(const struct bench_ctx *ctx);
void table_md(const struct bench_ctx *ctx, FILE *f, bool md);
void real_md(const struct bench_ctx *ctx, FILE *f, bool md);
void icount_md(const struct bench_ctx *ctx, FILE *f, bool md);

/* selftest.c */
int selftest(void);

#endif
