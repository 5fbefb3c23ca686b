/*
 * catena.h - a fixed-block heap whose objects are chains of runs.
 *
 * One block size B for the whole heap.  An object is one contiguous run of
 * blocks when such a run exists, and otherwise a chain of runs (extents)
 * indexed by a small tree of one-block spine nodes.  Allocation therefore
 * never fails because of fragmentation:
 *
 *     catena_alloc(h, n) succeeds whenever catena_stats().free_blocks
 *     >= catena_blocks_for(n), whatever the allocation history.
 *
 * Conventions for every function below:
 *  - Thread safety: none.  A heap is used by one thread at a time (give each
 *    thread its own heap, or hold a lock around every call).  Distinct heaps
 *    are independent: lib/ keeps no global state.
 *  - Errors: functions that return a pointer return NULL, functions that
 *    return int return a CATENA_E* code (0 is success).  Every error is also
 *    recorded for catena_last_error() and passed to the error hook, if set.
 *    An error never changes the heap.
 *  - Complexity: k is the number of extents of the object involved, d its
 *    size in blocks, N the heap size in blocks.  The free-run index has a
 *    fixed number of size classes (at most 248), counted as O(1).
 *
 * Freestanding C99: only <stddef.h>, <stdint.h>, <stdbool.h> are needed here.
 */
#ifndef CATENA_H
#define CATENA_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

#ifndef CATENA_NO_CONFIG_H
#include "catena_config.h"
#endif

/* Block size in bytes: a power of two >= 16.  Default: 16 where pointers
 * are 32-bit, 32 where they are 64-bit (as MicroPython). */
#ifndef CATENA_BLOCK_SIZE
#if defined(CATENA_CONF_BLOCK_SIZE) && CATENA_CONF_BLOCK_SIZE > 0
#define CATENA_BLOCK_SIZE CATENA_CONF_BLOCK_SIZE
#elif UINTPTR_MAX > 0xFFFFFFFFu
#define CATENA_BLOCK_SIZE 32
#else
#define CATENA_BLOCK_SIZE 16
#endif
#endif

/* Width of a block index: 16 or 32.  It sets the largest heap (65534 or
 * 2^28 - 1 blocks) and the cost of a chain's spine (an entry is two
 * indexes).  Default: 16 with 16-byte blocks (heaps up to 1 MiB, the
 * MicroPython-sized case, where 32-bit entries would double the worst-case
 * spine), 32 otherwise. */
#ifndef CATENA_INDEX_BITS
#if defined(CATENA_CONF_INDEX_BITS) && CATENA_CONF_INDEX_BITS > 0
#define CATENA_INDEX_BITS CATENA_CONF_INDEX_BITS
#elif CATENA_BLOCK_SIZE == 16
#define CATENA_INDEX_BITS 16
#else
#define CATENA_INDEX_BITS 32
#endif
#endif

#ifdef __cplusplus
extern "C" {
#endif

typedef struct catena_heap catena_heap_t;

/* Error codes. */
enum {
    CATENA_OK = 0,
    CATENA_ENOMEM,     /* fewer free blocks than the request needs */
    CATENA_ESIZE,      /* size 0, or larger than any heap can hold */
    CATENA_EINVAL,     /* bad argument (NULL, bad flags, bad option) */
    CATENA_EFOREIGN,   /* pointer is not inside this heap's blocks */
    CATENA_EINTERIOR,  /* pointer inside an object, not its handle */
    CATENA_EFREE,      /* pointer to free memory: double free */
    CATENA_ERANGE,     /* offset / length outside the object */
    CATENA_ESMALL,     /* arena too small for the control data + 2 blocks */
    CATENA_EALIGN,     /* arena not aligned to CATENA_ARENA_ALIGN */
    CATENA_EBIG,       /* arena holds more blocks than the index can name */
    CATENA_ECORRUPT,   /* heap metadata is inconsistent */
    CATENA_ENOCHAIN,   /* request needs chaining, chaining is disabled */
    CATENA_ELOCKED,    /* heap locked (allocation from a finaliser, GC lock) */
    CATENA_NERR
};

/* Allocation flags (used by the collector; plain heaps pass 0). */
enum {
    CATENA_NOSCAN = 1u,    /* contents never hold pointers: GC skips them */
    CATENA_FINAL = 2u,     /* call the heap's finaliser before freeing */
    CATENA_NOCOLLECT = 4u, /* never collected: only catena_free frees it */
    CATENA_ZERO = 8u       /* zero the memory (not stored) */
};

/* Required alignment of the arena passed to catena_init. */
#define CATENA_ARENA_ALIGN (sizeof(void *) > 4 ? sizeof(void *) : 4)

/* Called on every error: code, the pointer involved (or NULL) and the name
 * of the public function that failed. */
typedef void (*catena_hook_fn)(void *ctx, catena_heap_t *h, int err,
                               const void *ptr, const char *where);

/* ---- heap ------------------------------------------------------------ */

/* Create a heap over arena[0, size).  The control data and block table
 * live at the start of the arena; the rest is blocks.  On success stores
 * the handle (which points into the arena) in *out and returns 0.
 * Fails: CATENA_EINVAL (NULL), CATENA_EALIGN, CATENA_ESMALL, CATENA_EBIG.
 * O(N) (the table is cleared). */
int catena_init(void *arena, size_t size, catena_heap_t **out);

/* Blocks a heap over an arena of `size` bytes at address `addr` gets
 * (0 when too small; may exceed the index limit: see catena_init).  O(1). */
size_t catena_arena_blocks(uintptr_t addr, size_t size);

/* Bytes of control data, table and alignment padding of a heap of
 * `nblocks` blocks whose arena is block-aligned:
 *     catena_overhead(n) = H + I*C(n) + ceil(n/2)  rounded up to B
 * (H = sizeof the control struct, I = bytes per index, C(n) = number of
 * size classes).  O(1). */
size_t catena_overhead(size_t nblocks);

/* Worst-case blocks an object of n bytes consumes, all costs included:
 *     d = ceil(n / B);  blocks_for(n) = d            if d <= 1
 *                                      = d + 1 + S(d) otherwise
 * where S(k) = sum over levels j >= 1 of ceil(k / f^j) while the level
 * below (ceil(k / f^(j-1))) exceeds r; f = B / (2 * index bytes) entries
 * per spine node, r = f (32-bit indexes) or f - 1 (16-bit) in the root.
 * SIZE_MAX when n is 0 or too large.  O(log n). */
size_t catena_blocks_for(size_t n);

/* Block size of this build (CATENA_BLOCK_SIZE).  O(1). */
size_t catena_block_size(void);

/* Most blocks a heap of this build can have (catena_init fails with
 * CATENA_EBIG beyond).  O(1). */
size_t catena_max_blocks(void);

/* Install an error hook (NULL removes it).  O(1). */
void catena_set_hook(catena_heap_t *h, catena_hook_fn fn, void *ctx);

/* The code of the last error on this heap (0 if none).  O(1). */
int catena_last_error(const catena_heap_t *h);

/* A static English description of an error code.  O(1). */
const char *catena_strerror(int err);

/* Enable or disable chaining (default on).  Disabled, the heap is a
 * contiguous-only allocator over the same index: a baseline for measuring
 * what chaining buys.  O(1). */
void catena_set_chaining(catena_heap_t *h, bool on);

/* ---- allocation ------------------------------------------------------ */

/* Allocate n bytes (rounded up to blocks).  Returns the object's handle.
 * When a free run of ceil(n/B) blocks exists the object is contiguous and
 * the handle addresses all its bytes; otherwise it is chained.
 * Fails (NULL): CATENA_ESIZE (n == 0), CATENA_ENOMEM (free blocks <
 * blocks needed; never when free >= catena_blocks_for(n)), CATENA_ENOCHAIN.
 * O(k) index work plus O(1) table writes per extent. */
void *catena_alloc(catena_heap_t *h, size_t n);

/* As catena_alloc, with CATENA_* flags.  Fails also CATENA_EINVAL (unknown
 * flags, or FINAL with NOCOLLECT). */
void *catena_alloc_flags(catena_heap_t *h, size_t n, unsigned flags);

/* Free an object by its handle; NULL is a no-op.  Freed runs coalesce with
 * free neighbours.  Fails: CATENA_EFOREIGN, CATENA_EINTERIOR, CATENA_EFREE,
 * CATENA_ECORRUPT.  O(k). */
int catena_free(catena_heap_t *h, void *obj);

/* Resize to n bytes.  Growing extends the last run in place when the next
 * run is free, else appends extents: data is never copied or moved, but a
 * contiguous object that becomes chained gets a new handle (its spine
 * root).  Shrinking releases tail blocks; a chained object left with one
 * extent becomes contiguous again (new handle).  obj NULL: catena_alloc.
 * Returns the (possibly new) handle; on failure NULL and obj is untouched.
 * Grows succeed whenever free blocks >= blocks_for(n) - blocks held.
 * Fails: as catena_alloc and catena_free.  O(k old + k new). */
void *catena_realloc(catena_heap_t *h, void *obj, size_t n);

/* As catena_realloc, but the result is contiguous: extends in place when
 * possible, else allocates a contiguous run, copies and frees obj.  Fails
 * (NULL, obj untouched) when no run is long enough.  O(k + d). */
void *catena_realloc_contig(catena_heap_t *h, void *obj, size_t n);

/* Make a chained object contiguous (copy into one run).  Returns the new
 * handle (obj itself if already contiguous); NULL with CATENA_ENOMEM when
 * no run is long enough (obj untouched).  O(k + d). */
void *catena_flatten(catena_heap_t *h, void *obj);

/* ---- access ---------------------------------------------------------- */

struct catena_iovec { /* same layout as POSIX struct iovec */
    void *iov_base;
    size_t iov_len;
};

/* Capacity in bytes (blocks * B); 0 for an invalid handle.  O(log k). */
size_t catena_size(catena_heap_t *h, const void *obj);

/* Number of extents (1 for a contiguous object; 0 invalid).  O(k). */
size_t catena_extents(catena_heap_t *h, const void *obj);

/* Whether obj is contiguous (its handle addresses its bytes).  O(1). */
bool catena_is_contiguous(catena_heap_t *h, const void *obj);

/* The stored CATENA_NOSCAN/FINAL/NOCOLLECT flags of obj.  O(1). */
unsigned catena_flags(catena_heap_t *h, const void *obj);

/* Direct pointer to byte `off`; *avail (if not NULL) gets the number of
 * bytes contiguous from there.  NULL with CATENA_ERANGE if off >= size.
 * O(log k). */
void *catena_ptr(catena_heap_t *h, void *obj, size_t off, size_t *avail);

/* Copy n bytes at off out of / into the object.  Return 0 or an error
 * (CATENA_ERANGE if off + n > size; nothing copied).  O(log k + segs). */
int catena_read(catena_heap_t *h, void *obj, size_t off, void *dst, size_t n);
int catena_write(catena_heap_t *h, void *obj, size_t off, const void *src,
                 size_t n);

/* One byte at off: 0..255, or -1 with CATENA_ERANGE.  O(log k). */
int catena_get(catena_heap_t *h, void *obj, size_t off);
int catena_put(catena_heap_t *h, void *obj, size_t off, uint8_t byte);

/* A pointer to len bytes at off: direct when they are contiguous, else a
 * copy in scratch (len bytes).  NULL with CATENA_ERANGE.  O(log k + segs). */
const void *catena_get_contiguous(catena_heap_t *h, void *obj, size_t off,
                                  size_t len, void *scratch);

/* Describe bytes [off, off+len) as segments in iov[0..max).  Returns the
 * number of segments the range has (may exceed max: then only max are
 * filled); 0 with CATENA_ERANGE on a bad range.  O(log k + segs). */
size_t catena_iov(catena_heap_t *h, void *obj, size_t off, size_t len,
                  struct catena_iovec *iov, size_t max);

/* Segment iterator: for (catena_iter_init(&it, h, o); catena_iter_next(&it,
 * &p, &n);) ...  Each step O(log k). */
typedef struct {
    catena_heap_t *h;
    void *obj;
    size_t off, size;
} catena_iter_t;
void catena_iter_init(catena_iter_t *it, catena_heap_t *h, void *obj);
bool catena_iter_next(catena_iter_t *it, void **ptr, size_t *len);

/* ---- introspection --------------------------------------------------- */

struct catena_stats {
    size_t block_size;
    size_t total_blocks, free_blocks, used_blocks, peak_used;
    size_t largest_free_run, free_runs;
    size_t objects, chained_objects, spine_blocks;
    size_t allocs, frees, failed_allocs;
    unsigned frag_permille; /* umm_malloc metric, 0..1000 */
};

/* Fill *st.  O(number of size classes + runs in the largest class). */
void catena_stats(catena_heap_t *h, struct catena_stats *st);

/* umm_malloc's fragmentation metric 1000 - 1000*sqrt(sum r^2)/sum r over
 * free runs r, in per mille (0: one free run).  O(N). */
unsigned catena_frag(catena_heap_t *h);

/* Print a map of the heap, 64 blocks a line, through print(ctx, line):
 * '.' free, 'h' head, '=' tail, 'c' chained root, 'e' extent, 'n' spine
 * node, 'p' never-collected, 'f' finalisable, 's' no-scan; upper case when
 * marked.  O(N). */
void catena_dump(catena_heap_t *h, void (*print)(void *ctx, const char *line),
                 void *ctx);

/* Validate every invariant of the heap.  Returns 0, or CATENA_ECORRUPT
 * (and calls the hook with a description).  O(N). */
int catena_check(catena_heap_t *h);

#ifdef __cplusplus
}
#endif
#endif /* CATENA_H */
