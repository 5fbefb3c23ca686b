/*
 * bench.h - catena-bench: operation streams, workloads and the runners.
 *
 * A workload is generated once, from a seed, into an operation stream (an
 * array of struct bop).  Every allocator replays the very same stream: the
 * in-arena heaps in this process (arena.c), the process allocators in a
 * driver process of their own that maps the stream from a file (driver.c).
 * Objects are named by slots (small integers reused after a free), never
 * by addresses, so a stream does not depend on the allocator it runs on.
 */
#ifndef CATENA_BENCH_H
#define CATENA_BENCH_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

/*
 * ==== SWITCH: catena's collector (lib/gc.c) ====
 * 1: the interpreter workload also runs on catena GC-only with its real
 * collector (catena_collect_start/_root/_end, CATENA_GC_AUTO: collect on
 * a failed allocation, then retry).  0 (for a catena without lib/gc.c):
 * the GC-only row is simulated -- dropped objects are freed in bulk when
 * an allocation fails, then it is retried.
 */
#ifndef BENCH_CATENA_GC
#define BENCH_CATENA_GC 1
#endif

/* ---- operation streams ------------------------------------------------ */

enum bop_kind {
    BOP_ALLOC = 1,   /* slot <- alloc(size) */
    BOP_FREE = 2,    /* free(slot) (object of `old` bytes) */
    BOP_REALLOC = 3, /* slot <- realloc(slot, size), it had `old` bytes */
    BOP_TICK = 4     /* an iteration boundary (no allocator call) */
};

struct bop {
    uint32_t slot, size, old;
    uint8_t kind, pad[3];
};

/* File form of a stream (written by catena-bench, mapped by a driver):
 * struct bstream_hdr, then nops struct bop. */
#define BSTREAM_MAGIC 0x3154534243ULL /* "CBST1" */
struct bstream_hdr {
    uint64_t magic, nops, nslots, hash;
    uint32_t touch, pad;
};

struct bstream {
    const char *name;  /* short name: "sparse", "robson", ... */
    const char *title; /* one line for tables */
    const char *desc;  /* a paragraph for the report */
    struct bop *ops;
    size_t nops, cap;
    size_t nslots;     /* slots are < nslots */
    size_t peak_live;  /* most requested bytes live at once */
    size_t peak_objs;  /* most objects live at once */
    size_t min_size, max_size;
    size_t allocs;     /* allocator calls (ALLOC + FREE + REALLOC) */
    size_t ticks;      /* BOP_TICK count (iterations) */
    bool touch;        /* write every allocated byte (false: micro) */
    bool gc_ok;        /* FREE ops are "drop the last reference" */
    uint64_t hash;     /* FNV-1a of the ops: same seed => same hash */
    /* generator state */
    uint32_t *free_slots;
    size_t nfree_slots, cap_free_slots;
    uint32_t *sizes;   /* size of the live object in each slot, 0 = none */
    size_t cap_slots, live;
};

/* Workload ids. */
enum {
    W_SPARSE, W_ROBSON, W_INTERP, W_KV, W_GROWTH, W_MICRO1, W_MICROMIX,
    W_MICROBIG, W_REPLAY, W_PYTHON, W_COUNT
};

struct wparams {
    uint64_t seed;
    double scale;      /* 1.0 = the default size; --quick uses less */
    size_t interp_iters; /* iterations of the interpreter loop */
};

/* Generate workload w (not W_REPLAY) into *s.  Exits on out of memory. */
void workload_gen(int w, const struct wparams *p, struct bstream *s);
/* Name of workload w (also for W_REPLAY). */
const char *workload_name(int w);
void bstream_free(struct bstream *s);
/* Write s to path (struct bstream_hdr + ops).  0 or -1 (errno set). */
int bstream_save(const struct bstream *s, const char *path);

/* Stream-building helpers (also used by the trace reader). */
void bs_init(struct bstream *s, const char *name, bool touch);
uint32_t bs_alloc(struct bstream *s, size_t size);
void bs_free(struct bstream *s, uint32_t slot);
void bs_realloc(struct bstream *s, uint32_t slot, size_t size);
void bs_tick(struct bstream *s);
void bs_finish(struct bstream *s);

/* ---- traces (include/catena_trace.h format) ------------------------- */

/* Read a trace into a stream.  Returns 0, or -1 with a message in err. */
int trace_load(const char *path, struct bstream *s, char *err, size_t errlen);
/* Write stream s as a trace (ids = slot + 1 + generation).  0 or -1. */
int trace_save(const struct bstream *s, const char *path);

/* ---- in-arena heaps ---------------------------------------------------- */

enum { H_CATENA, H_CONTIG, H_MPHEAP, H_MPGC, H_CATGC, H_COUNT };

struct arena_result {
    bool ok;              /* completed with no failed allocation */
    size_t ops_done;      /* allocator calls before the first failure */
    size_t failed;        /* failed allocations (run continued) */
    size_t ticks_done;    /* iterations completed before the first failure */
    double seconds;
    /* catena only (at the end of the run / at the peak) */
    size_t chained_allocs, allocs, extents_sum, spine_peak;
    size_t collections;
};

struct frag_sample {
    size_t op;
    size_t free_bytes, largest_run, live_bytes;
};

/* Replay s on heap kind k in an arena of `bytes` (the memory at `mem`,
 * which has room).  Stop after max_fail failed allocations (0: never; 1:
 * at the first).
 * samples (may be NULL): up to nsamples, filled every nops/nsamples ops;
 * *nfilled gets how many. */
void arena_run(int k, const struct bstream *s, void *mem, size_t bytes,
               size_t max_fail, struct arena_result *r,
               struct frag_sample *samples, size_t nsamples, size_t *nfilled);
const char *heap_name(int k);
/* Memory for arena_run: at least `bytes`, aligned; reused.  fresh: give
 * the pages back first, so that the run faults them in as a process
 * allocator's run does. */
void *arena_mem(size_t bytes);
void arena_fresh(void);

/* ---- helpers ---------------------------------------------------------- */

double now_sec(void);
uint64_t fnv1a(uint64_t h, const void *p, size_t n);

#endif
