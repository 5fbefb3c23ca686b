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
 * workloads are generated at scale ICOUNT_SCALE at most; the traces are
 * replayed whole.
 */
#define _GNU_SOURCE
#include "ctx.h"
#include "catena.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define ICOUNT_SCALE 0.1

/* The functions of the replay loops (arena.c, driver.c) whose calls are
 * counted, and the allocator entry points of each kind of call. */
static const char *const callers[] = {"arena_run", "step", "c_alloc",
                                      "c_realloc", "main", NULL};
static const char *const entries[IC_KINDS][8] = {
    [IC_ALLOC] = {"catena_alloc", "mp_alloc", "malloc", "__libc_malloc",
                  "mi_malloc", NULL},
    [IC_FREE] = {"catena_free", "mp_free", "free", "__libc_free", "cfree",
                 "mi_free", NULL},
    [IC_REALLOC] = {"catena_realloc", "catena_realloc_contig", "mp_realloc",
                    "realloc", "__libc_realloc", "mi_realloc", NULL},
};

static bool in_list(const char *const *list, const char *name)
{
    for (; *list; list++)
        if (!strcmp(*list, name))
            return true;
    return false;
}

/* The kind of call to `name` (IC_*), or -1: not an allocator entry. */
static int entry_kind(const char *name)
{
    for (int k = 0; k < IC_KINDS; k++)
        if (in_list(entries[k], name))
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

/* A function name without callgrind's recursion suffix ("free'2"). */
static int kind_of_callee(const char *name)
{
    char base[256];
    snprintf(base, sizeof base, "%s", name);
    base[strcspn(base, "'")] = 0;
    return entry_kind(base);
}

/* Add the calls from the replay loop to the allocator entries in the
 * callgrind output `path` into *ic.  0, or -1 when it cannot be read. */
static int parse_callgrind(const char *path, struct icell *ic)
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
            for (int i = 0; i < npos; i++)
                strtoull(p, &p, 0), p += strspn(p, " ");
            if (caller_ok && callee >= 0) {
                ic->calls[callee] += pending;
                ic->ir[callee] += strtoull(p, NULL, 10);
            }
        } else if (!strncmp(line, "positions:", 10)) {
            npos = 0;
            for (char *t = strtok(line + 10, " \n"); t; t = strtok(NULL, " \n"))
                npos++;
        } else if (!strncmp(line, "fn=", 3)) {
            caller_ok = in_list(callers, name_of(&fn, line + 3));
        } else if (!strncmp(line, "cfn=", 4)) {
            callee = kind_of_callee(name_of(&fn, line + 4));
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

/* Run argv under callgrind (LD_PRELOAD = preload, or none) and parse its
 * output into *ic.  0, or -1 with a note in ctx. */
static int callgrind(struct bench_ctx *ctx, char *const argv[],
                     const char *preload, struct icell *ic)
{
    char out[PATH_MAX + 64], opt_out[PATH_MAX + 96], buf[512];
    snprintf(out, sizeof out, "%s/.callgrind.out", ctx->opt.out);
    snprintf(opt_out, sizeof opt_out, "--callgrind-out-file=%s", out);
    char *vg[16] = {(char *)ctx->opt.valgrind, "-q", "--tool=callgrind",
                    opt_out};
    int n = 4;
    for (int i = 0; argv[i] && n < 15; i++)
        vg[n++] = argv[i];
    vg[n] = NULL;
    unlink(out);
    int st = spawn(vg, preload, true, buf, sizeof buf, NULL);
    memset(ic, 0, sizeof *ic);
    int rc = st == 0 && strncmp(buf, "ok ", 3) == 0 ? parse_callgrind(out, ic)
                                                   : -1;
    unlink(out);
    if (rc != 0)
        snprintf(ctx->icount_note, sizeof ctx->icount_note,
                 "%s %s failed under callgrind (exit %d)", argv[0],
                 argv[1] ? argv[1] : "", st);
    return rc;
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

/* The stream whose instructions are counted for workload w: the run's own,
 * or (a synthetic workload at a larger scale) the same workload at
 * ICOUNT_SCALE, into *tmp.  NULL: none. */
static const struct bstream *icount_stream(const struct bench_ctx *ctx,
                                           int w, struct bstream *tmp)
{
    const struct wres *wr = &ctx->res[w];
    if (!wr->ran)
        return NULL;
    if (w >= W_REPLAY || ctx->opt.wp.scale <= ICOUNT_SCALE)
        return &wr->s;
    struct wparams p = ctx->opt.wp;
    p.scale = ICOUNT_SCALE;
    p.interp_iters = 2000; /* --quick's */
    workload_gen(w, &p, tmp);
    return tmp;
}

static void icount_workload(struct bench_ctx *ctx, int w)
{
    struct bstream tmp = {0};
    const struct bstream *s = icount_stream(ctx, w, &tmp);
    if (!s)
        return;
    struct wres *wr = &ctx->res[w];
    char stream[PATH_MAX + 64], bytes[32], exe[PATH_MAX + 32];
    snprintf(stream, sizeof stream, "%s/.icount-%s.bin", ctx->opt.out,
             s->name);
    if (bstream_save(s, stream) != 0)
        die("cannot write %s: %s", stream, strerror(errno));
    /* an arena the heaps fit in with room: 4x the fixed arena */
    snprintf(bytes, sizeof bytes, "%zu", 4 * fixed_arena(s, 25));
    snprintf(exe, sizeof exe, "%s/catena-bench", ctx->exe_dir);
    wr->ic_allocs = s->allocs;
    for (int k = 0; k < H_COUNT; k++) {
        if ((k == H_MPGC || k == H_CATGC) && !s->gc_ok)
            continue;
        char *argv[] = {exe, "icount-arena", (char *)heap_name(k), stream,
                        bytes, NULL};
        callgrind(ctx, argv, NULL, &wr->ic[k]);
    }
    for (int a = A_GLIBC; a < A_COUNT; a++) {
        if (!ctx->driver_path[a][0])
            continue;
        char *argv[] = {ctx->driver_path[a], stream, "-", NULL};
        callgrind(ctx, argv, a == A_PRELOAD ? ctx->opt.preload : NULL,
                  &wr->ic[a]);
    }
    unlink(stream);
    bstream_free(&tmp);
    progress(ctx, "  %-9s instructions counted (%zu allocator calls)",
             s->name, s->allocs);
}

/* Documented in ctx.h. */
void run_icount(struct bench_ctx *ctx)
{
    if (!have_callgrind(ctx))
        return;
    progress(ctx, "instructions per allocator call (callgrind)");
    for (int w = 0; w < W_COUNT; w++)
        icount_workload(ctx, w);
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
    void *mem = arena_mem(bytes);
    if (!mem)
        die("cannot map an arena of %zu bytes", bytes);
    struct arena_result r;
    arena_run(k, &s, mem, bytes, 0, &r, NULL, 0, NULL);
    printf("ok heap=%s failed=%zu\n", heap_name(k), r.failed);
    free(s.ops);
    return 0;
}
