/*
 * shim.h - internals shared by the files of libcatena-preload.so.
 *
 * Layers, one file each, lowest first; a file calls (and reads the
 * globals of) only files above it in this list, never one below
 * (t/preload/layers.sh checks it on the objects with nm):
 *   util.c      locks, thread numbers, output without malloc, pages from
 *               the kernel, the address map
 *   options.c   the option table and its parsing from the environment
 *   diag.c      one-line diagnoses (bad call, corruption, fatal)
 *   geometry.c  small objects: arena and block size, the arena bitmap,
 *               the settings small_init fixes (arena.h: the records and
 *               inline lookups the small-object files share)
 *   trim.c      CATENA_TRIM: free pages of an arena back to the kernel
 *   arena.c     the arenas: catena heaps (chaining off) over mmap'd
 *               arenas in NSLOTS slots, the locked path, bad-free naming,
 *               aligned aliases, in-place realloc, totals
 *   tcache.c    per-thread caches: refill, flush, registry, adoption of an
 *               exited thread's cache, fork, walk
 *               (tcache.h: the inline hit path, which malloc.c's
 *               malloc, calloc and free take first)
 *   small.c     the small-object front: malloc/free through the cache or
 *               the arenas, memalign, CATENA_CHECK of arenas and caches
 *   large.c     objects at or above the threshold: private anonymous
 *               pages in one contiguous virtual range, moved (never
 *               copied) by realloc
 *   trace.c     CATENA_TRACE recording (format: catena_trace.h)
 *   malloc.c    the exported malloc family, init, fork, exit report
 *
 * Lock order (fork's prepare handler takes them all in this order):
 *   tcache registry -> trace -> slot 0..NSLOTS-1 -> large -> arena
 *   creation.
 * No path takes an earlier lock while holding a later one.
 */
#ifndef CATENA_SHIM_H
#define CATENA_SHIM_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "catena.h"

#define SHIM_EXPORT __attribute__((visibility("default")))
#define SHIM_HIDDEN __attribute__((visibility("hidden")))

/* ---- options (options.c) ---------------------------------------------- */
struct shim_opts {
    size_t arena;        /* CATENA_ARENA: fixed large-object pool, 0 = grow */
    size_t large;        /* CATENA_LARGE: the large-object threshold */
    bool stats;          /* CATENA_STATS */
    const char *trace;   /* CATENA_TRACE path, or NULL */
    unsigned long check; /* CATENA_CHECK: validate every N operations */
    bool abort_on_error; /* CATENA_ABORT_ON_ERROR (default on) */
    bool help;           /* CATENA_HELP: print the table at start-up */
    bool tcache;         /* CATENA_TCACHE: per-thread caches (default on) */
    size_t trim;         /* CATENA_TRIM: release free small-object pages
                          * once an arena's free bytes grew by this much
                          * (at first: trim.c's slack) since its last
                          * trim; 0 = never */
};
extern struct shim_opts shim_opt SHIM_HIDDEN;
SHIM_HIDDEN void shim_opts_parse(void);
SHIM_HIDDEN void shim_opts_help(int fd);
/* Cap CATENA_LARGE at max (small.c's limit), saying so. */
SHIM_HIDDEN void shim_opts_cap_large(size_t max);

/* ---- util.c (shim_fault, shim_corrupt, shim_die: diag.c) ------------- */
/* A test-and-test-and-set lock: critical sections are a few hundred
 * instructions, and it needs no initialisation, so it works before any
 * constructor and can simply be reset in a forked child. */
typedef struct {
    atomic_int v;
} shim_lock_t;
SHIM_HIDDEN void shim_lock(shim_lock_t *l);
static inline void shim_unlock(shim_lock_t *l)
{
    atomic_store_explicit(&l->v, 0, memory_order_release);
}
static inline void shim_lock_reset(shim_lock_t *l)
{
    atomic_store_explicit(&l->v, 0, memory_order_relaxed);
}

/* Building one output line without malloc or stdio. */
struct shim_line {
    char buf[512];
    size_t n;
};
SHIM_HIDDEN void ln_str(struct shim_line *l, const char *s);
SHIM_HIDDEN void ln_dec(struct shim_line *l, uint64_t v);
SHIM_HIDDEN void ln_hex(struct shim_line *l, uintptr_t v);
SHIM_HIDDEN void ln_kib(struct shim_line *l, uint64_t bytes);
SHIM_HIDDEN void ln_put(struct shim_line *l, int fd); /* adds '\n' */

/* A bad call (bad free, bad realloc): one line, then abort unless
 * CATENA_ABORT_ON_ERROR=0. */
SHIM_HIDDEN void shim_fault(const char *fn, const char *what, const void *p);
/* An internal failure we cannot recover from. */
SHIM_HIDDEN _Noreturn void shim_die(const char *what);
/* Corruption that CATENA_CHECK found when (before|after) a call of fn:
 * one line, always aborts (nothing after it can be trusted). */
SHIM_HIDDEN _Noreturn void shim_corrupt(const char *fn, const char *when,
                                        const char *what, const void *p);
/* A per-process secret (the kernel's AT_RANDOM bytes). */
SHIM_HIDDEN uintptr_t shim_secret(void);
/* The calling thread's number: 0, 1, ... in order of first call. */
SHIM_HIDDEN uint32_t shim_tid(void);

/* Pages straight from the kernel: the shim's only source of memory. */
SHIM_HIDDEN void *shim_map(size_t bytes);
/* len bytes aligned to align (a power of two; below it a page): a plain
 * mapping when that comes out aligned, else
 * len + align - page mapped and its ends cut off (so under RLIMIT_AS it
 * may need that much for a moment).  noreserve: MAP_NORESERVE.  NULL on
 * failure. */
SHIM_HIDDEN void *shim_map_aligned(size_t len, size_t align, bool noreserve);
SHIM_HIDDEN void shim_unmap(void *p, size_t bytes);
extern size_t shim_page SHIM_HIDDEN;

/* An open-addressing map from an address to two words, for the large
 * object table and the trace ids.  Grows by mmap; caller locks. */
struct shim_map_ent {
    uintptr_t key; /* 0: empty */
    uint64_t a, b;
};
struct shim_amap {
    struct shim_map_ent *e;
    size_t cap, n; /* cap a power of two */
};
SHIM_HIDDEN struct shim_map_ent *amap_get(struct shim_amap *m, uintptr_t k);
SHIM_HIDDEN bool amap_put(struct shim_amap *m, uintptr_t k, uint64_t a,
                          uint64_t b);
SHIM_HIDDEN bool amap_del(struct shim_amap *m, uintptr_t k, uint64_t *a,
                          uint64_t *b);

/* ---- small objects (small.c, arena.c, tcache.c, geometry.c) ---------- */
SHIM_HIDDEN bool small_init(void);
SHIM_HIDDEN void *small_alloc(size_t n, unsigned flags);
/* Is p inside the small-object reservation (any arena)? */
SHIM_HIDDEN bool small_owns(const void *p);
/* Free / size / resize a pointer small_owns() said yes to.  free and
 * size handle the aligned aliases of small_memalign. */
SHIM_HIDDEN void small_free(void *p, const char *fn);
SHIM_HIDDEN size_t small_size(const void *p, const char *fn);
/* Resize in its own arena; NULL if that needs another arena. */
SHIM_HIDDEN void *small_realloc_inplace(void *p, size_t n, const char *fn,
                                        bool *bad);
SHIM_HIDDEN void *small_memalign(size_t align, size_t n);
/* CATENA_CHECK: every arena and every thread's cache, when ("before"
 * or "after") a call of fn; corruption: shim_corrupt. */
SHIM_HIDDEN void small_check(const char *fn, const char *when);
/* Per-thread caches: fork handlers (the registry lock comes first in the
 * lock order) and flushing the calling thread's cache (exit report). */
SHIM_HIDDEN void tcache_prepare_fork(void);
SHIM_HIDDEN void tcache_parent_fork(void);
SHIM_HIDDEN void tcache_child_fork(void);
SHIM_HIDDEN void tcache_flush_mine(void);
SHIM_HIDDEN void small_lock_all(void);
SHIM_HIDDEN void small_unlock_all(bool child);
SHIM_HIDDEN void small_lock_arenas(void); /* arena creation */
SHIM_HIDDEN void small_unlock_arenas(bool child);
struct small_totals {
    size_t arenas, blocks, free_blocks, used_blocks, objects, free_runs,
        largest_run;
    uint64_t sum_run, sum_run_sq;
    uint64_t trims, trimmed; /* CATENA_TRIM passes, bytes madvised */
    uint64_t madvises;       /* their madvise calls */
};
SHIM_HIDDEN void small_totals(struct small_totals *t);
SHIM_HIDDEN size_t small_live_bytes(void);

/* ---- large.c ---------------------------------------------------------- */
SHIM_HIDDEN bool large_init(void);
SHIM_HIDDEN void *large_alloc(size_t n, size_t align);
/* 1 freed, 0 not a large object. */
SHIM_HIDDEN int large_free(void *p);
/* Usable size, 0 if not a large object. */
SHIM_HIDDEN size_t large_size(const void *p);
/* Resize without copying (remaps pages).  NULL with *found set when out of
 * memory; *found false when p is not a large object. */
SHIM_HIDDEN void *large_realloc(void *p, size_t n, bool *found);
/* Does p fall inside (not at the start of) a large object? */
SHIM_HIDDEN bool large_interior(const void *p);
SHIM_HIDDEN void large_check(void);
SHIM_HIDDEN void large_prepare_fork(void);
SHIM_HIDDEN void large_parent_fork(void);
SHIM_HIDDEN void large_child_fork(void);
struct large_totals {
    size_t objects, pages, peak_pages, pool_pages, enomem;
    size_t moves;          /* reallocs that moved pages to a new range */
    size_t live_at_enomem; /* bytes live (small + large) at the first */
};
SHIM_HIDDEN void large_totals(struct large_totals *t);
SHIM_HIDDEN void shim_note_enomem(void);

/* ---- trace.c ---------------------------------------------------------- */
extern bool shim_tracing SHIM_HIDDEN;
SHIM_HIDDEN void trace_init(void);
SHIM_HIDDEN void trace_lock(void);
SHIM_HIDDEN void trace_unlock(void);
/* Record an allocation returning p (NULL: failed).  Caller holds the lock
 * (so the record and the address map agree with the allocator). */
SHIM_HIDDEN void trace_alloc(int op, void *p, size_t size, uint64_t arg);
/* Forget p; returns its id (0 if unknown) and records a FREE. */
SHIM_HIDDEN void trace_free(void *p);
/* realloc: old p -> q. */
SHIM_HIDDEN void trace_realloc(void *p, void *q, size_t size);
SHIM_HIDDEN void trace_flush(bool final);
SHIM_HIDDEN void trace_child_fork(void);

/* ---- malloc.c --------------------------------------------------------- */
extern atomic_size_t shim_enomem_count SHIM_HIDDEN;

#endif
