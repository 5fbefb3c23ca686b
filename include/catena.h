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
 *    return int return a CATENA_E* code (0 is success); each function says
 *    what else it returns on failure.  Every error is also recorded for
 *    catena_last_error() and passed to the error hook, if set.  An error
 *    never changes the heap, with one exception: when a call finds a free
 *    run's header overwritten (by a program writing past its object or
 *    into freed memory), it fails with CATENA_ECORRUPT and poisons the
 *    heap instead of following the damaged links; every later call on
 *    that heap then fails with CATENA_ECORRUPT too (catena_check
 *    included).  Allocation, free and resize check the headers of the runs
 *    they take or merge, in O(1).
 *  - Handles: a function given an object validates it; a pointer that is
 *    not a live object's handle fails with CATENA_EFOREIGN (not in this
 *    heap's blocks; NULL too), CATENA_EINTERIOR (inside an object),
 *    CATENA_EFREE (free memory) or CATENA_ECORRUPT (h is not a heap).
 *  - const: a function that takes a const heap changes nothing in it.  It
 *    still records an error for catena_last_error() and calls the hook, as
 *    every function does: the error record is not the heap's state (think
 *    of errno), and the heap always lives in a writable arena.  Queries of
 *    the heap and its objects take a const heap; functions that hand out,
 *    copy or change an object's bytes (which are the heap's memory) do not.
 *  - Complexity: k is the number of extents of the object involved, d its
 *    size in blocks, N the heap size in blocks, R the number of free runs.
 *    The free-run index has a fixed number of size classes (at most 248),
 *    counted as O(1).  A contiguous object's length is read from the block
 *    table (it has no header): O(d) table bytes, d/2, where a function
 *    measures one.  Classifying an invalid pointer costs O(length of the run
 *    it points into).
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
 * Fails: CATENA_EINVAL (NULL), CATENA_EALIGN, CATENA_ESMALL, CATENA_EBIG
 * (returned only: there is no heap to record them in).  O(N) (the table
 * is cleared). */
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

/* Install an error hook (NULL removes it).  h must be a heap (not
 * checked).  O(1). */
void catena_set_hook(catena_heap_t *h, catena_hook_fn fn, void *ctx);

/* The code of the last error on this heap (0 if none; a success does not
 * clear it).  O(1). */
int catena_last_error(const catena_heap_t *h);

/* A static English description of an error code.  O(1). */
const char *catena_strerror(int err);

/* Enable or disable chaining (default on).  Disabled, the heap is a
 * contiguous-only allocator over the same index: a baseline for measuring
 * what chaining buys; objects already chained stay chained.  O(1). */
void catena_set_chaining(catena_heap_t *h, bool on);

/* ---- allocation ------------------------------------------------------ */

/* Allocate n bytes (rounded up to blocks).  Returns the object's handle.
 * When a free run of ceil(n/B) blocks exists the object is contiguous and
 * the handle addresses all its bytes; otherwise it is chained.
 * Fails (NULL): CATENA_ESIZE (n == 0 or more blocks than any heap has),
 * CATENA_ENOMEM (free blocks < blocks needed; never when free >=
 * catena_blocks_for(n)), CATENA_ENOCHAIN (the blocks are free but not in
 * one run, and chaining is off), CATENA_ELOCKED, CATENA_ECORRUPT (h is not
 * a heap).  O(1) contiguous, O(k) chained; with the collector's
 * CATENA_GC_AUTO also a collection when one triggers, and O(d) zeroing
 * when asked for. */
void *catena_alloc(catena_heap_t *h, size_t n);

/* As catena_alloc, with CATENA_* flags.  Fails also CATENA_EINVAL (unknown
 * flags, or FINAL with NOCOLLECT). */
void *catena_alloc_flags(catena_heap_t *h, size_t n, unsigned flags);

/* Free an object by its handle; NULL is a no-op.  Freed runs coalesce with
 * free neighbours.  Fails: the handle errors (CATENA_EFOREIGN,
 * CATENA_EINTERIOR, CATENA_EFREE, CATENA_ECORRUPT), CATENA_ELOCKED.
 * O(d) table bytes for a contiguous object, O(k + S(k)) chained. */
int catena_free(catena_heap_t *h, void *obj);

/* Allocate up to count plain objects of n bytes each (as catena_alloc(h,
 * n) would, flags 0) into out[0..count-1]; returns how many it made.
 * It takes them run by run: a parked run of the length each (heaps that
 * park), then the free run that catena_alloc(h, n) would take (the
 * index's fit for d = ceil(n/B) blocks), cut into as many objects as it
 * holds and the batch still wants, with one index operation per run; when
 * no run fits, one object as catena_alloc makes it (a flush of the parked
 * runs, a chain where chaining is on).  So it fills the same holes a loop
 * of catena_alloc would, and objects cut from one run are adjacent in
 * memory, in address order.  Partial success: it stops at the first object it
 * cannot make and returns the number made (>= 1: no error is reported,
 * out[result..] are untouched).  The collector's threshold is asked once,
 * before the first object, and an automatic collection (CATENA_GC_AUTO)
 * runs only when none could be made (then it retries once): the objects
 * already made are in no root the collector knows.  Zeroed when the
 * collector's CATENA_GC_ZERO asks.  Each object counts as one catena_alloc
 * in the statistics.  Fails (0): CATENA_ESIZE (n == 0, too many blocks,
 * or count == 0), CATENA_EINVAL (out NULL), CATENA_ENOMEM,
 * CATENA_ENOCHAIN (as catena_alloc for one object), CATENA_ELOCKED,
 * CATENA_ECORRUPT (h is not a heap; when the heap is found poisoned after
 * some objects were made, ECORRUPT is reported and their number returned).
 * O(count) table writes and O(r) index operations, r <= count the runs
 * used (each O(1), probing at most CATENA_FIT_PROBES runs), plus what
 * catena_alloc costs for the objects made one at a time; O(count * d)
 * zeroing when asked for.  Thread safety: as every function (one thread
 * per heap). */
size_t catena_alloc_many(catena_heap_t *h, size_t n, void **out,
                         size_t count);

/* Free objs[0..count-1] (NULL entries are skipped, as catena_free(NULL)).
 * Every handle is validated as catena_free validates it; one that is not
 * a live object's handle is reported (under the name catena_free, with
 * catena_free's error) and skipped, and the others are still freed: so a
 * pointer given twice is freed once and reported once (CATENA_EFREE).
 * Returns CATENA_OK, or the first such error.  On a heap that does not
 * park (chaining off, CATENA_GC_ZERO), objects that follow each other in
 * objs and are adjacent in memory (in ascending or descending address
 * order, as catena_alloc_many made them) are released as one run: one
 * index operation per group instead of one per object.  A heap that parks
 * frees them one by one as catena_free does (short ones are parked).  objs
 * is not changed.  Fails before freeing anything: CATENA_ECORRUPT (h is
 * not a heap), CATENA_EINVAL (objs NULL and count > 0), CATENA_ELOCKED.
 * A free run found overwritten stops the batch with CATENA_ECORRUPT (the
 * heap is poisoned; the objects after it stay allocated).  O(sum of d)
 * table bytes plus O(1) index work per group of adjacent objects (O(k +
 * S(k)) per chained object).  Thread safety: as every function. */
int catena_free_many(catena_heap_t *h, void *const *objs, size_t count);

/* Resize to n bytes.  Growing extends the last run in place when the next
 * run is free, else appends extents: data is never copied or moved, but a
 * contiguous object that becomes chained gets a new handle (its spine
 * root).  Shrinking releases tail blocks; a chained object left with one
 * extent becomes contiguous again (new handle).  obj NULL: catena_alloc.
 * Returns the (possibly new) handle; on failure NULL and obj is untouched.
 * Grows succeed whenever free blocks >= blocks_for(n) - blocks held.
 * Fails: the handle errors, CATENA_ESIZE, CATENA_ENOMEM (too few free
 * blocks), CATENA_ENOCHAIN (the blocks are free but not after the object,
 * and chaining is off), CATENA_ELOCKED.  O(d) table bytes for a contiguous
 * object, plus O(k old + k new); with CATENA_GC_AUTO also a collection
 * when one triggers. */
void *catena_realloc(catena_heap_t *h, void *obj, size_t n);

/* As catena_realloc, but the result is contiguous: extends in place when
 * the run after the object is free and long enough, else allocates a
 * contiguous run, copies and frees obj.  obj NULL: a contiguous
 * catena_alloc.  Fails (NULL, obj untouched): the handle errors,
 * CATENA_ESIZE, CATENA_ENOMEM (no run is long enough, whatever the
 * chaining policy), CATENA_ELOCKED.  O(k + d). */
void *catena_realloc_contig(catena_heap_t *h, void *obj, size_t n);

/* Make a chained object contiguous (copy into one run).  Returns the new
 * handle (obj itself if already contiguous).  Fails (NULL, obj
 * untouched): the handle errors (NULL is CATENA_EFOREIGN), CATENA_ENOMEM
 * (no run is long enough), CATENA_ELOCKED.  O(k + d). */
void *catena_flatten(catena_heap_t *h, void *obj);

/* ---- access ---------------------------------------------------------- */

struct catena_iovec { /* same layout as POSIX struct iovec */
    void *iov_base;
    size_t iov_len;
};

/* Capacity in bytes (blocks * B); 0 for an invalid handle.  O(1) for a
 * chained object (its total is in the root), O(d) table bytes for a
 * contiguous one. */
size_t catena_size(const catena_heap_t *h, const void *obj);

/* Number of extents: 1 for a contiguous object, 0 for an invalid handle.
 * O(log k) (the spine is left-packed: only its right edge is read). */
size_t catena_extents(const catena_heap_t *h, const void *obj);

/* Whether obj is contiguous (its handle addresses its bytes); false for an
 * invalid handle.  O(1). */
bool catena_is_contiguous(const catena_heap_t *h, const void *obj);

/* The stored CATENA_NOSCAN/FINAL/NOCOLLECT flags of obj; 0 for an invalid
 * handle (catena_last_error tells it from an object without flags).
 * O(1). */
unsigned catena_flags(const catena_heap_t *h, const void *obj);

/* Every function below validates obj once and measures it: O(d) table
 * bytes for a contiguous object, then O(log k) per lookup of an offset in
 * a chained one.  A range off + n beyond the object fails with
 * CATENA_ERANGE and touches nothing. */

/* Direct pointer to byte `off`; *avail (if not NULL) gets the number of
 * bytes contiguous from there.  NULL on failure: the handle errors,
 * CATENA_ERANGE if off >= size.  O(log k). */
void *catena_ptr(catena_heap_t *h, void *obj, size_t off, size_t *avail);

/* Copy n bytes at off out of / into the object (n == 0 is a valid empty
 * range).  Return 0 or an error: the handle errors, CATENA_ERANGE if
 * off + n > size (nothing copied).  O(log k + segments). */
int catena_read(catena_heap_t *h, const void *obj, size_t off, void *dst,
                size_t n);
int catena_write(catena_heap_t *h, void *obj, size_t off, const void *src,
                 size_t n);

/* One byte at off: stored in *out / written.  Return 0 or an error: the
 * handle errors, CATENA_ERANGE if off >= size (*out untouched).
 * O(log k). */
int catena_read_byte(catena_heap_t *h, const void *obj, size_t off,
                     uint8_t *out);
int catena_write_byte(catena_heap_t *h, void *obj, size_t off, uint8_t byte);

/* A pointer to len bytes at off: direct when they are contiguous, else a
 * copy in scratch (len bytes).  NULL on failure: the handle errors,
 * CATENA_ERANGE (len == 0 or beyond the object).  O(log k + segments). */
const void *catena_get_contiguous(catena_heap_t *h, const void *obj,
                                  size_t off, size_t len, void *scratch);

/* Describe bytes [off, off+len) as segments in iov[0..max).  Returns the
 * number of segments the range has (may exceed max: then only max are
 * filled); 0 on failure: the handle errors, CATENA_ERANGE (len == 0 or
 * beyond the object).  O(log k + segments). */
size_t catena_iov(catena_heap_t *h, void *obj, size_t off, size_t len,
                  struct catena_iovec *iov, size_t max);

/* Segment iterator: for (catena_iter_init(&it, h, o); catena_iter_next(&it,
 * &p, &n);) ...  An invalid handle gives an iterator that yields nothing
 * (catena_iter_init records the handle error).  catena_iter_next returns
 * false at the end; it stores the next segment's pointer and length
 * otherwise.  Initialisation and each step measure the object (see
 * above), plus O(log k) a step. */
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
    /* the collector (all 0 on a heap that never collected) */
    size_t gc_collections;
    size_t gc_last_marked;  /* blocks held by survivors of the last one */
    size_t gc_last_freed;   /* blocks it freed */
    uint64_t gc_total_marked, gc_total_freed; /* over all collections */
    size_t gc_overflows;    /* grey objects dropped by a full mark stack */
    size_t gc_finalised;    /* finaliser calls */
};

/* Fill *st.  h must be a heap (not checked).  O(R): the longest free run
 * and frag_permille come from one pass over the free runs.  A heap that
 * chains keeps some freed short objects aside for reuse ("parked", doc/
 * design.md); free_blocks counts them as free, and free_runs,
 * largest_free_run and frag_permille (and catena_frag) describe the free
 * space as it is once they are merged back, which any call that needs
 * them does first (plus O(parked runs), at most N / 16). */
void catena_stats(const catena_heap_t *h, struct catena_stats *st);

/* The heap's free blocks, the count the guarantee is stated in: an
 * allocation of n bytes succeeds while this is >= catena_blocks_for(n).
 * Parked blocks (see catena_stats) are free blocks.
 * h must be a heap (not checked).  O(1): a counter the heap keeps.  A
 * caller that must know how many blocks a free or resize gave back or took
 * (e.g. for its own accounting) reads it before and after, instead of
 * measuring the object with catena_size (O(d)). */
size_t catena_free_blocks(const catena_heap_t *h);

/* umm_malloc's fragmentation metric 1000 - 1000*sqrt(sum r^2)/sum r over
 * free runs r, in per mille (0: one free run, or none).  h must be a heap
 * (not checked).  O(R). */
unsigned catena_frag(const catena_heap_t *h);

/* Call fn(ctx, p, n) for the interior of every free run of at least
 * min_bytes: the bytes of the run except its first and last block, which
 * hold the run's bookkeeping.  The heap never reads those bytes while the
 * run is free, so a hosted caller may hand them back to the OS (e.g.
 * madvise(MADV_DONTNEED)); they read as anything afterwards.  fn must not
 * call into the heap.  Not const: it hands out the free memory for
 * writing, and first merges any parked runs (see catena_stats) back into
 * the free runs.  h must be a heap (not checked).  O(R + parked runs). */
void catena_free_ranges(catena_heap_t *h, size_t min_bytes,
                        void (*fn)(void *ctx, void *p, size_t n), void *ctx);

/* Print a map of the heap, 64 blocks a line, through print(ctx, line):
 * '.' free, 'h' head, '=' tail, 'c' chained root, 'e' extent, 'n' spine
 * node, 'p' never-collected, 'f' finalisable, 's' no-scan; upper case when
 * marked ('H' outside a collection: a parked run, free memory).  After at least one collection a last line gives the collector's
 * statistics ("gc: ...").  h must be a heap (not checked).  O(N). */
void catena_dump(const catena_heap_t *h,
                 void (*print)(void *ctx, const char *line), void *ctx);

/* Validate every invariant of the heap (doc/design.md).  Returns 0, or
 * CATENA_ECORRUPT (and calls the hook with a description of the first
 * broken invariant as `where`; also when h is not a heap).  O(N). */
int catena_check(const catena_heap_t *h);

/* ---- the collector (lib/gc.c) ------------------------------------------
 *
 * A conservative mark-sweep collector over the heap's own block table: no
 * allocation, no recursion, one fixed mark stack.  Objects allocated with
 * catena_alloc* are collectable unless CATENA_NOCOLLECT; one collection
 * frees every collectable object that no root reaches.  doc/gc.md explains
 * the phases, the root rules and the costs.
 *
 * Roots, as in MicroPython's API (a port can switch heaps by renaming):
 *     catena_collect_start(h);
 *     catena_collect_root(h, ptrs, n);   any number of ranges
 *     catena_collect_end(h);             finishes marking and sweeps
 * or catena_collect(h), which scans the registered root ranges and, when a
 * stack top is set, the calling thread's stack and callee-saved registers.
 * Never-collected objects are roots themselves (scanned unless NOSCAN).
 *
 * A word is a reference when it equals an object's handle (MicroPython's
 * rule); with CATENA_GC_INTERIOR, when it points anywhere into the object,
 * including into any extent of a chained object.
 *
 * While a collection runs and while the GC lock is held, allocation,
 * resize and free fail with CATENA_ELOCKED and change nothing.  Finalisers
 * run inside the collection: they may read any object, dead or alive, but
 * cannot allocate or free.
 *
 * Thread safety: as the rest of the API (one thread per heap).  A port
 * that collects from another thread must stop the heap's thread first.
 */

/* The collector's sizes.  Its state lives in the heap's control block,
 * so a program and the library it links must agree on them: they are
 * fixed when the library is configured (catena_config.h), and a program
 * that defines one differently does not compile.  Built without the
 * config header (CATENA_NO_CONFIG_H: the sources compiled into a
 * firmware), CATENA_CONF_GC_* set them for every file alike.
 *   CATENA_GC_STACK  built-in mark stack entries (MicroPython: 64)
 *   CATENA_GC_ROOTS  registered permanent root ranges
 *   CATENA_GC_HITS   pending interior pointers into extents */
#ifndef CATENA_CONF_GC_STACK
#define CATENA_CONF_GC_STACK 64
#endif
#ifndef CATENA_CONF_GC_ROOTS
#define CATENA_CONF_GC_ROOTS 8
#endif
#ifndef CATENA_CONF_GC_HITS
#define CATENA_CONF_GC_HITS 16
#endif
#if defined(CATENA_GC_STACK) && CATENA_GC_STACK != CATENA_CONF_GC_STACK
#error "CATENA_GC_STACK is fixed when libcatena is configured (catena_config.h)"
#endif
#if defined(CATENA_GC_ROOTS) && CATENA_GC_ROOTS != CATENA_CONF_GC_ROOTS
#error "CATENA_GC_ROOTS is fixed when libcatena is configured (catena_config.h)"
#endif
#if defined(CATENA_GC_HITS) && CATENA_GC_HITS != CATENA_CONF_GC_HITS
#error "CATENA_GC_HITS is fixed when libcatena is configured (catena_config.h)"
#endif
#undef CATENA_GC_STACK
#undef CATENA_GC_ROOTS
#undef CATENA_GC_HITS
#define CATENA_GC_STACK CATENA_CONF_GC_STACK
#define CATENA_GC_ROOTS CATENA_CONF_GC_ROOTS
#define CATENA_GC_HITS CATENA_CONF_GC_HITS
/* Bytes per mark stack entry (a block index), for caller-supplied stacks. */
#define CATENA_GC_ENTRY_SIZE (CATENA_INDEX_BITS / 8)

/* Options (catena_gc_set_options). */
enum {
    CATENA_GC_AUTO = 1u,     /* collect on allocation failure (then retry
                              * once) and at the threshold */
    CATENA_GC_INTERIOR = 2u, /* interior pointers keep objects alive */
    CATENA_GC_ZERO = 4u      /* zero new scannable memory (allocations and
                              * grown parts without CATENA_NOSCAN) so that
                              * stale pointers cannot retain garbage */
};

/* Called with each dying object flagged CATENA_FINAL, before any block of
 * the collection is freed. */
typedef void (*catena_final_fn)(void *ctx, catena_heap_t *h, void *obj);
/* Performs an automatic collection (start, the port's roots, end). */
typedef void (*catena_collect_fn)(void *ctx, catena_heap_t *h);

/* Begin a collection: lock the heap, mark the never-collected objects.
 * Fails: CATENA_ECORRUPT (h is not a heap), CATENA_ELOCKED (lock held or a
 * collection is already running; nothing changes).  O(N) plus scanning
 * the never-collected objects. */
int catena_collect_start(catena_heap_t *h);

/* Scan n words at ptrs as roots (between start and end; else, or when h
 * is not a heap, the call is ignored with CATENA_EINVAL recorded).
 * O(n + what they reach). */
void catena_collect_root(catena_heap_t *h, void *const *ptrs, size_t n);

/* Finish marking, run finalisers, free every unmarked collectable object,
 * unlock.  Fails: CATENA_EINVAL (no collection running, or h is not a
 * heap).  Marking is
 * O(live words) plus O(N) per mark-stack overflow recovery; the sweep is
 * O(N) plus O(k) per freed chained object. */
int catena_collect_end(catena_heap_t *h);

/* One full collection: start, the registered root ranges, the calling
 * thread's registers and stack (when catena_gc_set_stack_top was given),
 * end.  Fails: as catena_collect_start.  O(N + live). */
int catena_collect(catena_heap_t *h);

/* Register / unregister a permanent root range of n words (at most
 * CATENA_GC_ROOTS ranges; the memory must stay valid while registered).
 * Fails: CATENA_EINVAL (h is not a heap; add: NULL with n > 0; remove:
 * NULL, or not registered), CATENA_ENOMEM (table full).
 * O(CATENA_GC_ROOTS). */
int catena_gc_add_roots(catena_heap_t *h, void *const *ptrs, size_t n);
int catena_gc_remove_roots(catena_heap_t *h, void *const *ptrs);

/* The address where the calling thread's stack begins (its highest used
 * address on a descending stack, e.g. a local of main()); NULL: do not
 * scan the stack.  catena_collect scans from its own frame to there.
 * h must be a heap (not checked).  O(1). */
void catena_gc_set_stack_top(catena_heap_t *h, void *top);

/* Set / get the CATENA_GC_* options (default none: a plain heap never
 * collects by itself).  Setting them also connects the allocator to the
 * collector (a hook in the heap): a program that never calls this links
 * the core without lib/gc.c.  Fails: CATENA_EINVAL (unknown bits, or h is
 * not a heap), CATENA_ELOCKED (during a collection).  catena_gc_options:
 * h must be a heap (not checked).  O(1). */
int catena_gc_set_options(catena_heap_t *h, unsigned opts);
unsigned catena_gc_options(const catena_heap_t *h);

/* Use a mark stack of `entries` entries: buf NULL selects the built-in one
 * (1 <= entries <= CATENA_GC_STACK), else buf holds entries *
 * CATENA_GC_ENTRY_SIZE bytes, aligned for that size, and must outlive its
 * use.  Deeper stacks overflow less often; an overflow costs a rescan,
 * never a wrong result.  Fails: CATENA_EINVAL (h is not a heap, entries
 * 0 or too many for the built-in stack, buf misaligned), CATENA_ELOCKED
 * (during a collection).  O(1). */
int catena_gc_set_mark_stack(catena_heap_t *h, void *buf, size_t entries);

/* The finaliser (NULL: none) and the automatic-collection hook (NULL: use
 * catena_collect).  h must be a heap (not checked).  O(1). */
void catena_gc_set_finaliser(catena_heap_t *h, catena_final_fn fn, void *ctx);
void catena_gc_set_collect_hook(catena_heap_t *h, catena_collect_fn fn,
                                void *ctx);

/* With CATENA_GC_AUTO, collect before an allocation or a growth once
 * `blocks` blocks were allocated since the last collection (0: never).
 * h must be a heap (not checked).  O(1). */
void catena_gc_set_threshold(catena_heap_t *h, size_t blocks);

/* The GC lock, nested: while held, allocation, resize, free and
 * collection fail with CATENA_ELOCKED (e.g. around interrupt handlers).
 * catena_gc_unlock returns 0, or CATENA_EINVAL when the lock is not held
 * (a running collection's own level cannot be released).  h must be a heap
 * (not checked).  O(1). */
void catena_gc_lock(catena_heap_t *h);
int catena_gc_unlock(catena_heap_t *h);
bool catena_gc_locked(const catena_heap_t *h);

/* GC-managed libffi closures: <catena_ffi.h>. */

#ifdef __cplusplus
}
#endif
#endif /* CATENA_H */
