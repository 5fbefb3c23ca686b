/*
 * mpheap.h - a MicroPython-style heap, the baseline for catena's benchmarks.
 *
 * An independent implementation of the algorithm MicroPython's py/gc.c is
 * documented to use: one block size B (16 or 32 bytes), an
 * allocation table of 2 bits per block (FREE, HEAD, TAIL, MARK), a finaliser
 * table of 1 bit per block, then the blocks.  An object is one contiguous run
 * of blocks: a HEAD followed by TAILs.  Allocation is a first-fit linear scan
 * that starts at a "last free" hint, so it can fail while plenty of memory is
 * free but no run is long enough (the fragmentation catena removes).
 *
 * The collector is conservative mark-sweep: a word counts as a reference only
 * when it holds the exact address of a HEAD block (interior pointers do not
 * keep objects alive).  Marking uses an explicit stack of MP_MARK_STACK
 * entries; when it overflows, the heap is rescanned for marked objects until
 * no overflow happens.
 *
 * Conventions for every function below:
 *  - Thread safety: none.  One thread uses a heap at a time; distinct heaps
 *    are independent (there is no global state).
 *  - Complexity: N is the heap size in blocks, d the size of the object
 *    involved in blocks.
 *
 * Freestanding C99: only <stddef.h>, <stdint.h>, <stdbool.h> (and <string.h>
 * in the implementation).
 */
#ifndef MPHEAP_H
#define MPHEAP_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct mp_heap mp_heap_t;

/* Allocation flags. */
enum {
    MP_HAS_FINALISER = 1u /* call the finaliser callback when the GC frees it */
};

/* Entries in the explicit mark stack. */
#define MP_MARK_STACK 64

/* Collect callback: called by mp_alloc when no run is found; it is expected
 * to run a collection (mp_collect_start / _root / _end). */
typedef void (*mp_collect_fn)(mp_heap_t *h, void *ctx);

/* Finaliser callback: called by the sweep for each dying object that was
 * allocated with MP_HAS_FINALISER.  The heap is locked meanwhile. */
typedef void (*mp_finaliser_fn)(void *ctx, void *obj);

struct mp_stats {
    size_t block_size;         /* B, in bytes */
    size_t total_blocks;       /* blocks in the heap */
    size_t free_blocks;
    size_t used_blocks;        /* total_blocks - free_blocks */
    size_t largest_free_run;   /* longest run of free blocks */
    size_t free_runs;          /* number of maximal free runs */
    size_t objects;            /* live objects (HEAD blocks) */
    size_t collections;        /* completed mp_collect_end calls */
    size_t failed_allocs;      /* allocations that found no run, after the
                                  collect-and-retry (not n == 0, not locked) */
    size_t blocks_freed_by_gc; /* total blocks freed by sweeps */
    size_t mark_overflows;     /* pushes that found the mark stack full */
};

/* Create a heap over arena[0, size).  The control struct and both tables
 * live at the start of the arena; the blocks follow, aligned to
 * block_size.  Returns the handle (which points at the arena), or NULL when
 * arena is NULL or not aligned to sizeof(void *), block_size is not 16 or 32,
 * or the arena cannot hold the control data and at least one block.
 * O(N) (the tables are cleared; the blocks are not touched). */
mp_heap_t *mp_heap_init(void *arena, size_t size, size_t block_size);

/* Allocate n bytes, rounded up to whole blocks, zeroed.  flags: 0 or
 * MP_HAS_FINALISER (other bits are ignored).  First-fit: the lowest run of
 * ceil(n/B) free blocks at or after the "last free" hint.  When no run
 * exists and a collect callback is set, calls it once and retries once.
 * Returns NULL when n == 0, when the heap is locked (mp_lock, or during a
 * collection), or when no run is found.  O(N + d); plus the callback. */
void *mp_alloc(mp_heap_t *h, size_t n, unsigned flags);

/* Free the object whose handle is p.  Does nothing when p is NULL, not the
 * first byte of a live object (foreign, interior or already free), or when
 * the heap is locked.  Does not call the finaliser.  O(d). */
void mp_free(mp_heap_t *h, void *p);

/* Usable size in bytes of the object whose handle is p (a multiple of B),
 * or 0 when p is not the first byte of a live object.  O(d). */
size_t mp_nbytes(mp_heap_t *h, const void *p);

/* Resize the object p to n bytes.  p == NULL: same as mp_alloc(h, n, 0).
 * n == 0: frees p, returns NULL.  Otherwise shrinks in place (freeing the
 * surplus blocks), grows in place when the following blocks are free (the
 * new blocks are zeroed), and else, when allow_move, allocates a new object
 * with the same finaliser flag, copies the old blocks and frees the old
 * object (bytes past the old blocks are zero).  The contents up to
 * min(old, new) size are kept.  Returns the (possibly new) handle, or NULL
 * (p unchanged) when the heap is locked, p is not a live object's handle,
 * or there is no room.  O(d + d'), O(N + d') when moving. */
void *mp_realloc(mp_heap_t *h, void *p, size_t n, bool allow_move);

/* Lock / unlock the heap (a nesting counter).  While locked, mp_alloc and
 * mp_realloc return NULL and mp_free does nothing.  mp_unlock on an unlocked
 * heap does nothing.  O(1). */
void mp_lock(mp_heap_t *h);
void mp_unlock(mp_heap_t *h);

/* Install the collect callback used by mp_alloc on failure (NULL removes
 * it).  O(1). */
void mp_set_collect(mp_heap_t *h, mp_collect_fn cb, void *ctx);

/* Install the finaliser callback (NULL: objects die silently).  O(1). */
void mp_set_finaliser(mp_heap_t *h, mp_finaliser_fn fn, void *ctx);

/* Begin a collection: locks the heap, and marks the object being moved by
 * an mp_realloc in progress (if any).  Ignored when a collection is already
 * in progress.  O(1) plus that marking. */
void mp_collect_start(mp_heap_t *h);

/* Mark the objects reachable from the n words at ptrs (each is a root when
 * it is the handle of a live object).  Ignored outside a collection.
 * O(n + words of the newly marked objects). */
void mp_collect_root(mp_heap_t *h, void **ptrs, size_t n);

/* Finish a collection: resolves mark-stack overflows by rescanning the
 * heap, then sweeps: every unmarked object is freed (its finaliser called
 * first if it has the finaliser bit), marks are cleared, the "last free"
 * hint is reset and the heap unlocked.  Ignored outside a collection.
 * O(N) per rescan + O(N) sweep. */
void mp_collect_end(mp_heap_t *h);

/* Fill *st with the heap's statistics.  O(N). */
void mp_stats(mp_heap_t *h, struct mp_stats *st);

#ifdef __cplusplus
}
#endif

#endif /* MPHEAP_H */
