/*
 * icount.c - instructions per allocator call, counted by valgrind's
 * callgrind (time on a shared machine is noisy; instruction counts are
 * not).
 *
 * Each workload's stream is replayed once per allocator under callgrind:
 * the in-arena heaps by `catena-bench icount-arena HEAP STREAM BYTES`
 * (arena.c's replay, in this program), the process allocators by their
 * drivers (driver.c; catena-preload is the glibc driver under LD_PRELOAD).
 * From callgrind's call graph we take only the calls the replay makes to
 * an allocator entry point (caller: the replay loop's functions; callee:
 * alloc/malloc, free, realloc) and their inclusive instructions.  What the
 * replay does around a call -- writing the new bytes, catena_ptr,
 * statistics, RSS samples -- is left out, so no null pass is needed; what
 * the allocator does inside the call (a collection, a page fault's
 * instructions are not counted: they are the kernel's) is in.
 *
 * Counts are deterministic, so a smaller stream serves: synthetic
 * workloads are generated at scale ICOUNT_SCALE at most; of a trace, its
 * first ICOUNT_MAX_OPS operations are replayed (the first-fit heap spends
 * ~10^5 instructions per call on the long traces).
 */
#define _GNU_SOURCE
#include "ctx.h"
#include "catena.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* Where the replay loop calls the allocator: its functions, and the
 * allocator's entry points of each kind of call (IC_*).  In-arena heaps
 * (arena.c's replay) and process allocators (driver.c's main). */
struct site {
    const char *callers[6];
    const char *entries[IC_KINDS][8];
};
static const struct site arena_site = {
    {"arena_run", "step", "c_alloc", "c_realloc", NULL},
    {[IC_ALLOC] = {"catena_alloc", "mp_alloc", NULL},
     [IC_FREE] = {"catena_free", "mp_free", NULL},
     [IC_REALLOC] = {"catena_realloc", "catena_realloc_contig", "mp_realloc",
                     NULL}}};
static const struct site process_site = {
    {"main", NULL},
    {[IC_ALLOC] = {"malloc", "__libc_malloc", "mi_malloc", NULL},
     [IC_FREE] = {"free", "__libc_free", "cfree", "mi_free", NULL},
     [IC_REALLOC] = {"realloc", "__libc_realloc", "mi_realloc", NULL}}};

static bool in_list(const char *const *list, const char *name)
{
    for (; *list; list++)
        if (!strcmp(*list, name))
            return true;
    return false;
}

/* The kind of call to `name` (IC_*), or -1: not an allocator entry.
 * Callgrind's recursion suffix ("free'2") is not part of the name. */
static int entry_kind(const struct site *site, const char *name)
{
    char base[256];
    snprintf(base, sizeof base, "%s", name);
    base[strcspn(base, "'")] = 0;
    for (int k = 0; k < IC_KINDS; k++)
        if (in_list(site->entries[k], base))
            return k;
    return -1;
}

/* callgrind's compressed names: "(id) name" defines id, "(id)" uses it. */
struct names {
    char **v;
    size_t n;
};

static const char *name_of(struct names *t, char *s)
{
    s[strcspn(s, "\n")] = 0;
    if (*s != '(')
        return s;
    char *end;
    size_t id = strtoull(s + 1, &end, 10);
    if (*end != ')')
        return "";
    if (id >= t->n) {
        size_t n = id + 64;
        char **v = realloc(t->v, n * sizeof *v);
        if (!v)
            die("out of memory");
        memset(v + t->n, 0, (n - t->n) * sizeof *v);
        t->v = v;
        t->n = n;
    }
    if (end[1] == ' ') {
        free(t->v[id]);
        t->v[id] = strdup(end + 2);
        if (!t->v[id])
            die("out of memory");
    }
    return t->v[id] ? t->v[id] : "";
}

/* Add the calls from the replay loop to the allocator entries in the
 * callgrind output `path` into *ic.  0, or -1 when it cannot be read. */
static int parse_callgrind(const char *path, const struct site *site,
                           struct icell *ic)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    struct names fn = {0};
    char *line = NULL;
    size_t cap = 0;
    int npos = 1, callee = -1;
    bool caller_ok = false;
    unsigned long long pending = 0;
    bool have_calls = false;
    while (getline(&line, &cap, f) > 0) {
        if (have_calls) { /* the cost line of a call: positions, then Ir */
            have_calls = false;
            char *p = line;
            for (int i = 0; i < npos; i++) { /* "12", "+3", "-2", "*" */
                p += strcspn(p, " \n");
                p += strspn(p, " ");
            }
            if (caller_ok && callee >= 0) {
                ic->calls[callee] += pending;
                ic->ir[callee] += strtoull(p, NULL, 10);
            }
        } else if (!strncmp(line, "positions:", 10)) {
            npos = 0;
            for (char *t = strtok(line + 10, " \n"); t;
                 t = strtok(NULL, " \n"))
                npos++;
        } else if (!strncmp(line, "fn=", 3)) {
            caller_ok = in_list(site->callers, name_of(&fn, line + 3));
        } else if (!strncmp(line, "cfn=", 4)) {
            callee = entry_kind(site, name_of(&fn, line + 4));
        } else if (!strncmp(line, "calls=", 6)) {
            pending = strtoull(line + 6, NULL, 10);
            have_calls = true;
        }
    }
    free(line);
    for (size_t i = 0; i < fn.n; i++)
        free(fn.v[i]);
    free(fn.v);
    fclose(f);
    ic->ran = true;
    return 0;
}

/* One replay under callgrind: what it runs, where its output goes, which
 * cell its counts fill. */
struct job {
    char *argv[8];
    const char *preload;
    const struct site *site;
    struct icell *ic;
    char cg[PATH_MAX + 64], log[PATH_MAX + 64];
    pid_t pid;
};

/* Start job j: valgrind, its standard output into j->log. */
static void job_start(const struct bench_ctx *ctx, struct job *j)
{
    char opt_out[PATH_MAX + 96];
    snprintf(opt_out, sizeof opt_out, "--callgrind-out-file=%s", j->cg);
    char *vg[16] = {(char *)ctx->opt.valgrind, "-q", "--tool=callgrind",
                    opt_out};
    int n = 4;
    for (int i = 0; j->argv[i] && n < 15; i++)
        vg[n++] = j->argv[i];
    vg[n] = NULL;
    unlink(j->cg);
    fflush(stdout);
    j->pid = fork();
    if (j->pid == 0) {
        int out = open(j->log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        int null = open("/dev/null", O_WRONLY);
        if (out < 0 || null < 0)
            _exit(126);
        dup2(out, 1);
        dup2(null, 2);
        /* Bind every symbol at start-up: a lazily bound first call
         * reaches the allocator from the dynamic linker's resolver, and
         * callgrind would not count it as a call from the replay. */
        setenv("LD_BIND_NOW", "1", 1);
        if (j->preload)
            setenv("LD_PRELOAD", j->preload, 1);
        else
            unsetenv("LD_PRELOAD");
        execvp(vg[0], vg);
        _exit(127);
    }
}

/* Job j has exited with status st: parse its counts (its replay printed
 * "ok ...") or note the failure. */
static void job_done(struct bench_ctx *ctx, struct job *j, int st)
{
    char buf[256] = "";
    FILE *f = fopen(j->log, "r");
    if (f) {
        if (!fgets(buf, sizeof buf, f))
            buf[0] = 0;
        fclose(f);
    }
    memset(j->ic, 0, sizeof *j->ic);
    if (!(WIFEXITED(st) && WEXITSTATUS(st) == 0 && !strncmp(buf, "ok ", 3) &&
          parse_callgrind(j->cg, j->site, j->ic) == 0))
        snprintf(ctx->icount_note, sizeof ctx->icount_note,
                 "%s %s failed under callgrind", j->argv[0],
                 j->argv[1] ? j->argv[1] : "");
    unlink(j->cg);
    unlink(j->log);
}

/* Run the jobs, as many at once as there are cores. */
static void run_jobs(struct bench_ctx *ctx, struct job *jobs, size_t n)
{
    long nc = sysconf(_SC_NPROCESSORS_ONLN);
    size_t par = nc < 1 ? 1 : (size_t)nc, next = 0, running = 0;
    while (next < n || running) {
        while (next < n && running < par) {
            job_start(ctx, &jobs[next]);
            if (jobs[next].pid < 0)
                job_done(ctx, &jobs[next], -1);
            else
                running++;
            next++;
        }
        int st;
        pid_t pid = wait(&st);
        if (pid < 0)
            break;
        for (size_t i = 0; i < next; i++)
            if (jobs[i].pid == pid) {
                job_done(ctx, &jobs[i], st);
                jobs[i].pid = 0;
                running--;
            }
    }
}

/* Is valgrind's callgrind usable here?  Counts a trivial run. */
static bool have_callgrind(struct bench_ctx *ctx)
{
    char buf[256];
    char *argv[] = {(char *)ctx->opt.valgrind, "--version", NULL};
    if (spawn(argv, NULL, true, buf, sizeof buf, NULL) != 0 ||
        strncmp(buf, "valgrind", 8) != 0) {
        snprintf(ctx->icount_note, sizeof ctx->icount_note,
                 "%s not found: instructions were not counted",
                 ctx->opt.valgrind);
        return false;
    }
    return true;
}

/* The first n operations of s into *t (a stream of its own: hash and
 * allocator calls of the prefix). */
static void stream_prefix(const struct bstream *s, size_t n, struct bstream *t)
{
    memset(t, 0, sizeof *t);
    t->name = s->name;
    t->title = s->title;
    t->desc = s->desc;
    t->ops = malloc(n * sizeof *t->ops);
    if (!t->ops)
        die("out of memory");
    memcpy(t->ops, s->ops, n * sizeof *t->ops);
    t->nops = t->cap = n;
    t->nslots = s->nslots;
    t->touch = s->touch;
    t->gc_ok = s->gc_ok;
    for (size_t i = 0; i < n; i++)
        t->allocs += t->ops[i].kind != BOP_TICK;
    t->hash = fnv1a(1469598103934665603ULL, t->ops, n * sizeof *t->ops);
}

/* The stream whose instructions are counted for workload w: a synthetic
 * workload at ICOUNT_SCALE at most, a trace's first ICOUNT_MAX_OPS
 * operations; the run's own stream when it is no larger, else a new one
 * in *tmp.  NULL: none. */
static const struct bstream *icount_stream(const struct bench_ctx *ctx, int w,
                                           struct bstream *tmp)
{
    const struct wres *wr = &ctx->res[w];
    if (!wr->ran)
        return NULL;
    if (w >= W_REPLAY) {
        if (wr->s.nops <= ICOUNT_MAX_OPS)
            return &wr->s;
        stream_prefix(&wr->s, ICOUNT_MAX_OPS, tmp);
        return tmp;
    }
    if (ctx->opt.wp.scale <= ICOUNT_SCALE)
        return &wr->s;
    struct wparams p = ctx->opt.wp;
    p.scale = ICOUNT_SCALE;
    p.interp_iters = 2000; /* --quick's */
    workload_gen(w, &p, tmp);
    return tmp;
}

/* Queue the replays of workload w (stream file saved into sfile) into
 * jobs[*n...]. */
static void icount_workload(struct bench_ctx *ctx, int w, struct job *jobs,
                            size_t *n, char *sfile, char *bytes)
{
    struct bstream tmp = {0};
    const struct bstream *s = icount_stream(ctx, w, &tmp);
    if (!s)
        return;
    struct wres *wr = &ctx->res[w];
    if (bstream_save(s, sfile) != 0)
        die("cannot write %s: %s", sfile, strerror(errno));
    /* an arena the heaps fit in with room: 4x the fixed arena */
    snprintf(bytes, 32, "%zu", 4 * fixed_arena(s, 25));
    wr->ic_allocs = s->allocs;
    for (int a = 0; a < A_COUNT; a++) {
        struct job *j = &jobs[*n];
        if (bench_is_arena(a)) {
            if ((a == A_MPGC || a == A_CATGC) && !s->gc_ok)
                continue;
            char **v = j->argv;
            v[0] = (char *)ctx->exe_path;
            v[1] = "icount-arena";
            v[2] = (char *)heap_name(a);
            v[3] = sfile;
            v[4] = bytes;
            j->site = &arena_site;
        } else {
            if (!ctx->driver_path[a][0] || ctx->opt.no_process)
                continue;
            j->argv[0] = ctx->driver_path[a];
            j->argv[1] = sfile;
            j->argv[2] = "-";
            j->preload = a == A_PRELOAD ? ctx->opt.preload : NULL;
            j->site = &process_site;
        }
        j->ic = &wr->ic[a];
        snprintf(j->cg, sizeof j->cg, "%s/.callgrind-%s-%s.out", ctx->opt.out,
                 s->name, bench_anames[a]);
        snprintf(j->log, sizeof j->log, "%s/.callgrind-%s-%s.log",
                 ctx->opt.out, s->name, bench_anames[a]);
        (*n)++;
    }
    bstream_free(&tmp);
}

/* Documented in ctx.h. */
void run_icount(struct bench_ctx *ctx)
{
    if (!have_callgrind(ctx))
        return;
    double t0 = now_sec();
    struct job *jobs = calloc(W_COUNT * A_COUNT, sizeof *jobs);
    char(*sfile)[PATH_MAX + 64] = calloc(W_COUNT, sizeof *sfile);
    char(*bytes)[32] = calloc(W_COUNT, sizeof *bytes);
    if (!jobs || !sfile || !bytes)
        die("out of memory");
    size_t n = 0;
    for (int w = 0; w < W_COUNT; w++) {
        snprintf(sfile[w], sizeof sfile[w], "%s/.icount-%s.bin", ctx->opt.out,
                 workload_name(w));
        icount_workload(ctx, w, jobs, &n, sfile[w], bytes[w]);
    }
    progress(ctx,
             "instructions per allocator call: %zu replays under "
             "callgrind",
             n);
    run_jobs(ctx, jobs, n);
    for (int w = 0; w < W_COUNT; w++)
        unlink(sfile[w]);
    free(jobs);
    free(sfile);
    free(bytes);
    progress(ctx, "  instructions counted (%.0f s)", now_sec() - t0);
}

/* The stream file `path` (written by bstream_save) into *s; dies on a bad
 * file. */
static void load_stream(const char *path, struct bstream *s)
{
    struct bstream_hdr h;
    FILE *f = fopen(path, "rb");
    if (!f || fread(&h, sizeof h, 1, f) != 1 || h.magic != BSTREAM_MAGIC)
        die("%s: not a stream file", path);
    memset(s, 0, sizeof *s);
    s->ops = malloc((h.nops ? h.nops : 1) * sizeof *s->ops);
    if (!s->ops)
        die("out of memory");
    if (fread(s->ops, sizeof *s->ops, h.nops, f) != h.nops ||
        fnv1a(1469598103934665603ULL, s->ops, h.nops * sizeof *s->ops) !=
            h.hash)
        die("%s: truncated or corrupt stream file", path);
    fclose(f);
    s->nops = h.nops;
    s->nslots = h.nslots;
    s->touch = h.touch != 0;
    for (size_t i = 0; i < s->nops; i++)
        s->allocs += s->ops[i].kind != BOP_TICK;
}

/* Documented in ctx.h: `catena-bench icount-arena HEAP STREAM BYTES`. */
int icount_arena_main(int argc, char **argv)
{
    if (argc != 3)
        bench_usage();
    int k = 0;
    while (k < H_COUNT && strcmp(heap_name(k), argv[0]))
        k++;
    if (k == H_COUNT)
        bench_usage();
    struct bstream s;
    load_stream(argv[1], &s);
    size_t bytes = (size_t)strtoull(argv[2], NULL, 10);
    /* A build with 16-bit block indexes (32-bit hosts) caps a heap at
     * catena_max_blocks(): give it the largest arena it accepts rather
     * than one it refuses (a replay that then runs short of memory still
     * makes every call, its failures included). */
    size_t nmax = catena_max_blocks();
    size_t cap = nmax * catena_block_size() + catena_overhead(nmax);
    if (k != H_MPHEAP && k != H_MPGC && bytes > cap)
        bytes = cap;
    void *mem = arena_mem(bytes);
    if (!mem)
        die("cannot map an arena of %zu bytes", bytes);
    catena_heap_t *probe;
    if (k != H_MPHEAP && k != H_MPGC && catena_init(mem, bytes, &probe) != 0)
        die("catena_init refuses an arena of %zu bytes", bytes);
    struct arena_result r;
    arena_run(k, &s, mem, bytes, 0, &r, NULL, 0, NULL);
    printf("ok heap=%s failed=%zu\n", heap_name(k), r.failed);
    free(s.ops);
    return 0;
}
