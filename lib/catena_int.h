/*
 * catena_int.h - internal layout, block states and invariants of a heap,
 * and the interfaces between the layers of lib/.
 *
 * Layout of an arena:
 *
 *   [struct catena_heap | bin heads | nibble table | pad | block 0 .. N-1]
 *
 * Every block has a 4-bit state in the table.  A *run* is a maximal
 * sequence "start block, then TAIL blocks"; the start's state says what the
 * run is.  Free runs keep their bookkeeping inside themselves: a header
 * {next, prev, len} in the first block and a footer (the start index) in the
 * last word of the last block.
 *
 * THE INVARIANTS (checked by catena_check, asserted in debug builds):
 *  I1  Every block belongs to exactly one run; block 0 is a run start; a
 *      TAIL never starts a run.
 *  I2  Free runs are maximal: no two free runs are adjacent.
 *  I3  Each free run is in exactly one bin list, the one of its length, and
 *      a bin's bit in the bitmap is set iff its list is non-empty.
 *  I4  A contiguous object is one run whose start is a HEAD state.
 *  I5  A chained object is a CHAIN root block plus >= 2 EXT runs (its data)
 *      plus NODE blocks, linked by the spine: a tree of one-block nodes that
 *      is left-packed and of minimal depth, so it has exactly S(k) non-root
 *      nodes for k extents (the blocks_for formula counts on this).
 *  I6  free_blocks, free_runs, the objects (heap_objects: allocs - frees
 *      - dropped), chained and spine_blocks counters equal what a walk of
 *      the table finds (used blocks are N - free, never more than
 *      N - min_free); free_blocks counts the free runs' blocks and the
 *      parked ones (P1).
 *
 * PARKING (park.c; P1 and P2 checked by catena_check):
 *  P1  A parked run is a freed contiguous object of d <= CATENA_PARK_MAX
 *      blocks kept out of the index: its start is ST_PARKED (the marked
 *      plain HEAD state, see G1), its other blocks TAIL, and it is on
 *      exactly one list, park[d - 1], linked through its first block.
 *      Its blocks are free blocks (parked_blocks counts them), not an
 *      object.
 *  P2  The park lists are empty whenever parking is off (park_cap == 0:
 *      chaining off, CATENA_GC_ZERO, or the small build) or the heap is
 *      locked, and parked <= park_cap.  So the allocation that pops a
 *      list needs no lock or zeroing test.
 *
 * THE COLLECTOR'S INVARIANT (gc.c; G1 checked by catena_check):
 *  G1  Outside a collection no object is marked: a marked state outside
 *      a collection is ST_PARKED (a parked run, P1) and nothing else.  A
 *      collection flushes the park lists first, so during one ST_PARKED
 *      is a marked plain object.
 *  G2  During marking, a marked object is black (scanned: everything it
 *      references is marked) or grey: on the mark stack, dropped from a
 *      full stack at an index >= ovf_lo or >= the rescan cursor, or the
 *      owner of an extent listed in hits[].  Marking ends only when no
 *      object is grey, so then every object reachable from the roots is
 *      marked, and the sweep may free every unmarked collectable one.
 *
 * THE LAYERS, lowest first; a file calls only into the layers below it
 * (doc/design.md, "Map"):
 *   table.c   block states, run length, handle validation, object flags,
 *             error reporting
 *   index.c   the free-run index (I2, I3)
 *   scan.c    instead of index.c with CATENA_SCAN: the same interface with
 *             no index (free runs found in the table; no I3 to keep)
 *   park.c    parked runs (P1, P2): freed short objects kept by exact
 *             length for the next allocation of that length
 *   spine.c   the extent tree of a chained object and its one walker (I5)
 *   heap.c    creation over an arena, formulas, statistics, the map
 *   check.c   the validator (every invariant, I6, G1)
 *   alloc.c   allocation, free, resize
 *   access.c  reading and writing objects; object queries
 *   gc.c      the collector (G2), reached from alloc.c only through the
 *             hook in struct gc_state that catena_gc_set_options installs
 *   gc_ffi.c  libffi closures as collectable objects (hosted)
 */
#ifndef CATENA_INT_H
#define CATENA_INT_H

#include "catena.h"
#include <string.h>
#include <limits.h>

#ifndef CATENA_DEBUG
#define CATENA_DEBUG 0
#endif
/* Debug code is always compiled (so it cannot rot) and folded away. */
static const bool catena_debug = CATENA_DEBUG;

/* The small build (./configure --enable-small, or CATENA_SMALL=1 where
 * lib/ is compiled without catena_config.h): the smallest code.  It turns
 * off CATENA_FAST_PATHS, the speed paths, caches and forced inlining of
 * the hosted build; each such path has a plain equivalent that gives the
 * same results (doc/embedded.md, "Code size"). */
#ifndef CATENA_SMALL
#define CATENA_SMALL 0
#endif
#ifndef CATENA_FAST_PATHS
#define CATENA_FAST_PATHS (!CATENA_SMALL)
#endif
/* The free-run layer: index.c (class lists, headers in the free runs) or,
 * with CATENA_SCAN (./configure --enable-scan), scan.c (table scans, no
 * headers).  The build picks the file; the few readers of a free run's
 * header elsewhere ask this. */
#ifndef CATENA_SCAN
#define CATENA_SCAN 0
#endif

/* Parking (park.c): a speed path of the hosted fast paths' build, with
 * the index (scan.c has no footers to merge a parked run by).  Bare metal
 * leaves it off by default (its ~1.2 KB of code on Cortex-M; a port may
 * define it 1).  Everything of it folds away where this is 0. */
#ifndef CATENA_PARKING
#if defined(__unix__) || defined(__APPLE__) || defined(_WIN32)
#define CATENA_PARKING (CATENA_FAST_PATHS && !CATENA_SCAN)
#else
#define CATENA_PARKING 0
#endif
#endif

/* For the few small helpers of the fast paths that the compiler would
 * otherwise keep out of line: a call costs as much as their body.  The
 * small build leaves the choice to the compiler (-Os: mostly calls). */
#if defined(__GNUC__) && CATENA_FAST_PATHS
#define CATENA_ALWAYS_INLINE static inline __attribute__((always_inline))
#else
#define CATENA_ALWAYS_INLINE static inline
#endif

/* A helper of the fast paths: inline where CATENA_FAST_PATHS (default 1)
 * asks for speed, one out-of-line copy where a small build asks for size. */
#if CATENA_FAST_PATHS
#define CATENA_FAST_INLINE CATENA_ALWAYS_INLINE
#else
#define CATENA_FAST_INLINE static
#endif

/* The block size as a size_t, for arithmetic without conversions. */
#define CATENA_B ((size_t)CATENA_BLOCK_SIZE)

#if CATENA_BLOCK_SIZE < 16 || (CATENA_BLOCK_SIZE & (CATENA_BLOCK_SIZE - 1))
#error "CATENA_BLOCK_SIZE must be a power of two >= 16"
#endif

#if CATENA_INDEX_BITS == 32
typedef uint32_t cidx;
#define CATENA_NIL UINT32_MAX
#elif CATENA_INDEX_BITS == 16
typedef uint16_t cidx;
#define CATENA_NIL UINT16_MAX
#else
#error "CATENA_INDEX_BITS must be 16 or 32"
#endif

/* A chained object's flags: with 32-bit indexes they ride in the top 4
 * bits of the root's first cumulative count (so a heap holds at most
 * 2^28 - 1 blocks and the root has a full f entries); with 16-bit indexes
 * the root starts with a one-entry header instead (f - 1 entries) so that a
 * heap can have 65534 blocks. */
#if CATENA_INDEX_BITS == 32
#define CATENA_FLAG_SHIFT 28
#define CATENA_MAX_BLOCKS (((size_t)1 << 28) - 1)
#define CATENA_CUM_MASK ((cidx)CATENA_MAX_BLOCKS)
#define ROOT_HDR 0
#else
#define CATENA_MAX_BLOCKS ((size_t)CATENA_NIL - 1)
#define CATENA_CUM_MASK ((cidx)CATENA_NIL)
#define ROOT_HDR 4 /* a whole entry: keeps the root's entries 4-byte aligned */
#endif

/* The object flags that are stored (CATENA_ZERO is not). */
#define CATENA_FLAG_MASK \
    ((unsigned)(CATENA_NOSCAN | CATENA_FINAL | CATENA_NOCOLLECT))
/* Every collector option (catena_gc_set_options, and the validator). */
#define CATENA_GC_ALL_OPTS \
    ((unsigned)(CATENA_GC_AUTO | CATENA_GC_INTERIOR | CATENA_GC_ZERO))

/* ---- block states (4 bits) ------------------------------------------- */
enum {
    ST_FREE = 0,  /* first block of a free run */
    ST_TAIL = 1,  /* any non-first block of any run */
    ST_EXT = 2,   /* first block of a data extent of a chained object */
    ST_NODE = 3,  /* a (non-root) spine node block */
    ST_HEAD = 4,  /* 4..11: contiguous object, 4 + 2*kind + mark,
                   * kind bit0 = NOSCAN, bit1 = FINAL */
    ST_CHAIN = 12, /* 12, 13 (marked): root of a chained object */
    ST_PIN = 14   /* 14, 15: NOCOLLECT contiguous object, +1 if NOSCAN */
};

/* A parked run's start (P1): outside a collection the marked plain HEAD
 * state means this and nothing else (G1). */
#define ST_PARKED (ST_HEAD + 1)

#define ST_IS_HEAD(s) ((s) >= ST_HEAD)        /* any object handle */
#define ST_IS_CONTIG(s) ((s) >= ST_HEAD && ((s) < ST_CHAIN || (s) >= ST_PIN))
#define ST_IS_CHAIN(s) (((s) | 1u) == ST_CHAIN + 1u)

static inline unsigned table_get(const unsigned char *t, size_t i)
{
    return ((unsigned)t[i >> 1] >> ((i & 1) * 4)) & 0xFu;
}
static inline void table_put(unsigned char *t, size_t i, unsigned s)
{
    unsigned sh = (unsigned)((i & 1) * 4);
    t[i >> 1] = (unsigned char)((t[i >> 1] & ~(0xFu << sh)) | (s << sh));
}

/* ---- the collector's state (its code is gc.c) -------------------------- */
struct gc_roots {
    void *const *ptrs;
    size_t n;
};

struct gc_state {
    unsigned opts;        /* CATENA_GC_* */
    unsigned lock;        /* nesting depth; a collection holds one level */
    bool collecting;      /* between collect_start and collect_end */
    /* The allocator's way to the collector: NULL until
     * catena_gc_set_options installs it, so that a program that never
     * configures the collector does not link gc.c.  Runs an automatic
     * collection if enabled and allowed, keeping object `keep` (or NIL)
     * alive; true if one ran. */
    bool (*auto_collect)(catena_heap_t *h, size_t keep);
    cidx *stack;          /* the mark stack: handles of grey objects */
    size_t cap, sp;
    size_t ovf_lo;        /* lowest dropped grey object (SIZE_MAX: none) */
    size_t horizon;       /* drops at >= horizon need no record (rescan) */
    size_t unmarked_chains;
    unsigned nhits;       /* extents hit by interior pointers, owner unknown */
    cidx hits[CATENA_GC_HITS];
    size_t keep;          /* transient root: the object being resized */
    size_t since, threshold; /* blocks allocated since the last collection */
    void *stack_top;
    catena_final_fn final_fn;
    void *final_ctx;
    catena_collect_fn collect_fn;
    void *collect_ctx;
    struct gc_roots roots[CATENA_GC_ROOTS];
    size_t collections, last_marked, last_freed, overflows, finalised;
    uint64_t total_marked, total_freed;
    cidx stack0[CATENA_GC_STACK];
};

/* The state of a new heap (after zeroing): no collection, nothing grey,
 * the built-in mark stack.  Part of the data layout, so catena_init sets
 * it without linking the collector. */
static inline void gc_state_init(struct gc_state *g)
{
    g->stack = g->stack0;
    g->cap = CATENA_GC_STACK;
    g->ovf_lo = SIZE_MAX;
    g->horizon = SIZE_MAX;
    g->keep = CATENA_NIL;
}

/* ---- the heap control block ------------------------------------------ */
#define CATENA_MAGIC 0x63617465u /* "cate" */
#define SL_BITS 3
#define SL_N (1u << SL_BITS)
#define MAX_BINS 256
/* Parking (park.c): freed contiguous objects of up to CATENA_PARK_MAX
 * blocks wait on exact-length lists, at most max(CATENA_PARK_MIN,
 * N / CATENA_PARK_DIV) blocks in all. */
#ifndef CATENA_PARK_MAX
#define CATENA_PARK_MAX 14
#endif
#ifndef CATENA_PARK_MIN
#define CATENA_PARK_MIN 32
#endif
#ifndef CATENA_PARK_DIV
#define CATENA_PARK_DIV 16
#endif

struct catena_heap {
    uint32_t magic;
    uint32_t nbins;
    size_t nblocks;
    unsigned char *table;
    unsigned char *base; /* block 0 */
    cidx *bins;          /* nbins list heads */
    uint32_t binmap[MAX_BINS / 32];
    uint32_t summary; /* bit w set iff binmap[w] != 0 */
    bool chaining;
    /* Debug builds: work of the bounded paths (CATENA_STEP), modulo 2^16.
     * 16 bits fit in the padding after `chaining`, so the control block
     * keeps its size. */
    uint16_t steps;
    int last_err;
    catena_hook_fn hook;
    void *hook_ctx;
    /* counters (I6) */
    /* used: nblocks - free_blocks; the peak of use is nblocks - min_free
     * (the fewest free blocks so far: one compare on the alloc path) */
    size_t free_blocks, free_runs, min_free;
    /* live objects: allocs - frees - dropped (heap_objects), so that
     * the hit paths keep one counter each; dropped counts the objects
     * released without a successful catena_free (the sweep, a free that
     * found the index corrupt) */
    size_t dropped, chained, spine_blocks;
    size_t allocs, frees, failed;
    struct gc_state gc;
    /* parking (P1, P2): list heads by length - 1, the cap on parked
     * blocks and the room left under it (parked_blocks: cap - room, so
     * that a park tests and keeps one field); last, so that the fields
     * above keep their offsets (and the small build, which never parks,
     * its code) */
    cidx park[CATENA_PARK_MAX];
    size_t park_room, park_cap;
};

/* Free-run header, in the run's first block. */
struct run_hdr {
    cidx next, prev, len;
};

/* Spine entries: a child block (NODE or EXT) and the cumulative number of
 * data blocks of the object up to the end of that child. */
struct ent {
    cidx idx, cum;
};
#define FANOUT ((unsigned)(CATENA_BLOCK_SIZE / sizeof(struct ent)))
#define ROOT_CAP ((unsigned)((CATENA_BLOCK_SIZE - ROOT_HDR) / sizeof(struct ent)))
#define MAX_DEPTH 34
/* A node's entry count fits an index (spine.c keeps counts as cidx). */
#if CATENA_BLOCK_SIZE / (CATENA_INDEX_BITS / 4) >= (1L << (CATENA_INDEX_BITS - 1))
#error "CATENA_BLOCK_SIZE too large for the index width"
#endif

/* ---- pointers and indexes -------------------------------------------- */
static inline void *block_ptr(const catena_heap_t *h, size_t i)
{
    return h->base + i * CATENA_B;
}
static inline size_t block_index(const catena_heap_t *h, const void *p)
{
    return (size_t)((const unsigned char *)p - h->base) / CATENA_B;
}
static inline unsigned block_state(const catena_heap_t *h, size_t i)
{
    return table_get(h->table, i);
}
static inline struct run_hdr *run_at(const catena_heap_t *h, size_t i)
{
    return (struct run_hdr *)block_ptr(h, i);
}
static inline struct ent *node_at(const catena_heap_t *h, size_t i)
{
    return (struct ent *)block_ptr(h, i);
}
static inline cidx *footer_at(const catena_heap_t *h, size_t last)
{
    return (cidx *)((unsigned char *)block_ptr(h, last) + CATENA_B -
                    sizeof(cidx));
}
/* The entries of spine node `node` of the object whose root is `root`,
 * and how many it can hold. */
static inline struct ent *ents(const catena_heap_t *h, size_t root,
                               size_t node)
{
    return (struct ent *)(void *)((unsigned char *)block_ptr(h, node) +
                                  (node == root ? ROOT_HDR : 0));
}
static inline unsigned cap_of(size_t root, size_t node)
{
    return node == root ? ROOT_CAP : FANOUT;
}
/* An entry's cumulative count without the root's flag bits. */
static inline size_t ent_cum(const struct ent *e)
{
    return e->cum & CATENA_CUM_MASK;
}
/* Blocks parked (P1): modulo 2^n, so exact even where a failed flush
 * left runs parked on a poisoned heap whose cap is 0. */
static inline size_t parked_blocks(const catena_heap_t *h)
{
    return h->park_cap - h->park_room;
}
static inline size_t heap_objects(const catena_heap_t *h)
{
    return h->allocs - h->frees - h->dropped;
}
static inline bool bad_heap(const catena_heap_t *h)
{
    return !h || h->magic != CATENA_MAGIC;
}
/* Is p an object's handle (a block start in HEAD state) in valid heap h?
 * Its block in *i.  One table read: the test every call on an object
 * starts with; _catena_handle classifies the other pointers. */
static inline bool is_handle(const catena_heap_t *h, const void *p, size_t *i)
{
    size_t off = (size_t)((uintptr_t)p - (uintptr_t)h->base);
    *i = off / CATENA_B;
    if (off % CATENA_B != 0 || *i >= h->nblocks)
        return false;
    unsigned s = block_state(h, *i);
    /* a parked run is free memory (P1), except as a marked object during
     * a collection (G1); the second test is reached only for that state */
    return ST_IS_HEAD(s) &&
           (!CATENA_PARKING || s != ST_PARKED || h->gc.collecting);
}

/* ---- named state transitions ----------------------------------------- */
/* Each asserts the state it leaves, so a wrong transition is caught where
 * it happens rather than by the next validation.  A failed assertion
 * reports "file:line: condition" as the hook's `where`. */
#define CATENA_STR_(x) #x
#define CATENA_STR(x) CATENA_STR_(x)
#define CATENA_ASSERT(h, c)                                               \
    do {                                                                  \
        if (catena_debug && !(c))                                         \
            _catena_assert_fail(h, __FILE__ ":" CATENA_STR(__LINE__)      \
                                            ": " #c);                     \
    } while (0)
#define TRANSITION(h, i, from_ok, to) \
    do { CATENA_ASSERT(h, from_ok); table_put((h)->table, (i), (to)); } while (0)

/* From a known state (FREE or TAIL) the nibble changes by from ^ to: one
 * read-modify-write with no mask, where every split and merge does two. */
#if CATENA_FAST_PATHS
static inline void table_flip(unsigned char *t, size_t i, unsigned x)
{
    t[i >> 1] = (unsigned char)(t[i >> 1] ^ (x << ((i & 1) * 4)));
}
#define KNOWN_TRANSITION(h, i, from, to) \
    do { CATENA_ASSERT(h, block_state(h, i) == (from)); \
         table_flip((h)->table, (i), (unsigned)(from) ^ (unsigned)(to)); } while (0)
#else
#define KNOWN_TRANSITION(h, i, from, to) \
    TRANSITION(h, i, block_state(h, i) == (from), to)
#endif
#define FREE_TO_HEAD(h, i, s)  KNOWN_TRANSITION(h, i, ST_FREE, s)
#define FREE_TO_TAIL(h, i)     KNOWN_TRANSITION(h, i, ST_FREE, ST_TAIL)
#define TAIL_TO_HEAD(h, i, s)  KNOWN_TRANSITION(h, i, ST_TAIL, s)
#define TAIL_TO_FREE(h, i)     KNOWN_TRANSITION(h, i, ST_TAIL, ST_FREE)
#define HEAD_TO_FREE(h, i)     TRANSITION(h, i, block_state(h, i) >= ST_EXT, ST_FREE)
#define HEAD_TO_TAIL(h, i)     TRANSITION(h, i, block_state(h, i) >= ST_EXT, ST_TAIL)
#define HEAD_TO_EXT(h, i)      TRANSITION(h, i, ST_IS_CONTIG(block_state(h, i)), ST_EXT)
#define EXT_TO_HEAD(h, i, s)   TRANSITION(h, i, block_state(h, i) == ST_EXT, s)
/* Parking (P1): a contiguous object of known state s to a parked run, and
 * back to an object of state s. */
#define HEAD_TO_PARKED(h, i, s) \
    do { CATENA_ASSERT(h, ST_IS_CONTIG(s) && !ST_MARKED(s)); \
         KNOWN_TRANSITION(h, i, s, ST_PARKED); } while (0)
#define PARKED_TO_HEAD(h, i, s) KNOWN_TRANSITION(h, i, ST_PARKED, s)
/* Any allocated run start, or a TAIL where a run is trimmed, to FREE. */
#define RUN_TO_FREE(h, i)      TRANSITION(h, i, block_state(h, i) != ST_FREE, ST_FREE)

/* The mark bit: bit 0 of the collectable handle states (HEAD 4..11 and
 * CHAIN 12..13).  PIN objects have none: they are roots, never swept. */
#define ST_MARKABLE(s) ((s) >= ST_HEAD && (s) < ST_PIN)
#define ST_MARKED(s) (ST_MARKABLE(s) && ((s) & 1u))
#define MARK(h, i) \
    TRANSITION(h, i, ST_MARKABLE(block_state(h, i)) && \
                         !(block_state(h, i) & 1u), block_state(h, i) | 1u)
#define UNMARK(h, i) \
    TRANSITION(h, i, ST_MARKED(block_state(h, i)), block_state(h, i) & ~1u)

/* ---- the lowest layer: here and table.c ------------------------------- */
/* Length of the run starting at s (I1): count the TAIL states after it,
 * sixteen blocks (one 64-bit word of the table) at a time: a word of all
 * TAIL nibbles equals CATENA_TAILS, and the first other nibble is the
 * lowest set nibble of word ^ CATENA_TAILS.  Words are read only where
 * all 16 blocks exist (the last, partial word goes a nibble at a time), so
 * nothing past the table is looked at.  Inline: every free and every
 * measure of a contiguous object asks.  At most len / 16 + 2 words plus
 * 15 nibbles. */
#define CATENA_TAILS (UINT64_C(0x1111111111111111) * ST_TAIL)

/* Table word w (blocks 16w .. 16w+15), nibble j of it in bits 4j..4j+3
 * whatever the byte order. */
static inline uint64_t table_word(const unsigned char *t, size_t w)
{
    uint64_t x;
    memcpy(&x, t + w * 8, sizeof x);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    x = __builtin_bswap64(x);
#elif !defined(__BYTE_ORDER__)
    {
        const unsigned char *b = t + w * 8;
        x = 0;
        for (unsigned k = 8; k-- > 0;)
            x = x << 8 | b[k];
    }
#endif
    return x;
}

/* Index of the lowest nonzero nibble of x (x != 0). */
static inline unsigned low_nibble(uint64_t x)
{
#if defined(__GNUC__)
    return (unsigned)__builtin_ctzll(x) / 4;
#else
    unsigned j = 0;
    while (!(x & 0xFu)) {
        x >>= 4;
        j++;
    }
    return j;
#endif
}

/* Work counter of the bounded paths (doc/design.md, "Worst cases"): debug
 * builds count each table word or block a run-length scan reads, so a test
 * can assert the stated bound; release builds fold it away.  Like the
 * error record, the count is not part of the heap's state, so a query
 * given a const heap may add to it. */
#define CATENA_STEP(h, n)                                                 \
    do {                                                                  \
        if (catena_debug)                                                 \
            ((catena_heap_t *)(uintptr_t)(h))->steps =                    \
                (uint16_t)(((catena_heap_t *)(uintptr_t)(h))->steps + (n)); \
    } while (0)

/* The length of the run at s whose blocks s + 1 .. from - 1 are known
 * to be TAIL (s < from <= N): the scan starts at block from. */
static inline size_t _catena_run_length_from(const catena_heap_t *h,
                                             size_t s, size_t from)
{
    size_t i = from, n = h->nblocks;
    /* Whole words: the first one with the nibbles before block i masked
     * off (they belong to this run's start or to earlier runs). */
    while ((i | 15) < n) {
        CATENA_STEP(h, 1);
        uint64_t x = (table_word(h->table, i / 16) ^ CATENA_TAILS) &
                     (~UINT64_C(0) << (4 * (i & 15)));
        if (x)
            return (i & ~(size_t)15) + low_nibble(x) - s;
        i = (i | 15) + 1;
    }
    while (i < n && block_state(h, i) == ST_TAIL) { /* the last word */
        CATENA_STEP(h, 1);
        i++;
    }
    return i - s;
}
static inline size_t _catena_run_length_words(const catena_heap_t *h,
                                             size_t s)
{
    return _catena_run_length_from(h, s, s + 1);
}
/* Inline where the fast paths ask for speed; the small build has one
 * out-of-line copy (table.c) instead of one in every file that measures a
 * run (on v6-M, 140 bytes each: the 64-bit word scan). */
#if CATENA_FAST_PATHS
static inline size_t _catena_run_length(const catena_heap_t *h, size_t s)
{
    return _catena_run_length_words(h, s);
}
#else
size_t _catena_run_length(const catena_heap_t *h, size_t s);
#endif

/* The length of free run s: its header's, or with scan.c (no headers)
 * the table's. */
static inline size_t _catena_free_len(const catena_heap_t *h, size_t s)
{
    return CATENA_SCAN ? _catena_run_length(h, s) : run_at(h, s)->len;
}

/* Record err for catena_last_error and call the hook; returns err.  The
 * error record is the one thing a function given a const heap writes. */
int _catena_err(const catena_heap_t *h, int err, const void *p,
                const char *where);
void _catena_assert_fail(const catena_heap_t *h, const char *what);
/* Validate a handle: 0 and its block in *out, or the error (reported). */
int _catena_handle(const catena_heap_t *h, const void *p, const char *where,
                   size_t *out);
/* Object states and flags: a contiguous object's flags are in its state,
 * a chained one's in its root block. */
unsigned _catena_head_state(unsigned flags);
unsigned _catena_state_flags(unsigned s);
unsigned _catena_root_flags(const catena_heap_t *h, size_t root);
void _catena_root_set_flags(catena_heap_t *h, size_t root, unsigned f);
unsigned _catena_obj_flags(const catena_heap_t *h, size_t i);

/* Block b of a free run (its start, or a TAIL) becomes a spine node of
 * state `to` that links `next` in-band: the list of spare nodes that a
 * chain being built consumes (_catena_run_take_nodes). */
static inline size_t node_take(catena_heap_t *h, size_t b, bool start,
                               unsigned to, size_t next)
{
    if (start)
        FREE_TO_HEAD(h, b, to);
    else
        TAIL_TO_HEAD(h, b, to);
    *(cidx *)(void *)(h->base + b * CATENA_B) = (cidx)next;
    return b;
}

/* ---- index.c: the free-run index ---------------------------------------- */
/* The most runs a contiguous fit examines (doc/design.md, "Worst cases"). */
#define CATENA_FIT_PROBES 8
unsigned _catena_bin_of(size_t len);
void _catena_run_insert(catena_heap_t *h, size_t s, size_t len);
void _catena_run_unlink(catena_heap_t *h, size_t s);
size_t _catena_run_fit(catena_heap_t *h, size_t want);
/* Length of free run s after checking its header (index.c); 0 and the heap
 * poisoned (magic cleared: CATENA_ECORRUPT) when the header is not sound. */
size_t _catena_run_len(catena_heap_t *h, size_t s);
void _catena_run_take(catena_heap_t *h, size_t s, size_t want);
size_t _catena_run_claim(catena_heap_t *h, size_t want, bool probe);
void _catena_run_release(catena_heap_t *h, size_t s, size_t len);
/* Building a chain (alloc.c): how many extents the extent takes will cut
 * for `want` blocks (SIZE_MAX: the free runs do not hold them), then the
 * extents one by one (the first block EXT, the length in *len), then the
 * nodes (an in-band list; its head becomes `first_state`, the others
 * NODE).  index.c takes the longest runs first and nodes from the
 * shortest; scan.c takes the extents in one address-order pass, resumed
 * at *cur (start it at 0; index.c ignores it), and the nodes from the top
 * down. */
size_t _catena_greedy_extents(catena_heap_t *h, size_t want);
size_t _catena_run_take_extent(catena_heap_t *h, size_t *cur, size_t want,
                               bool room, size_t *len);
size_t _catena_run_take_nodes(catena_heap_t *h, size_t n,
                              unsigned first_state);

/* ---- park.c: parked runs (P1, P2) --------------------------------------- */
/* A parked run's first block: the next run on its list and a check word
 * (the link mixed with the run's length), so that a program writing into
 * freed memory is caught before its link is followed. */
struct park_hdr {
    cidx next, chk;
};
static inline cidx park_chk(size_t next, size_t d)
{
    return (cidx)(next ^ (CATENA_MAGIC + d));
}
#if CATENA_PARK_MAX < 1 || CATENA_PARK_MAX > 14
#error "CATENA_PARK_MAX must be 1..14 (a table word's nibbles, see below)"
#endif
/* Length of the run starting at s if it has at most CATENA_PARK_MAX
 * blocks, else 0: one unaligned table read of the 16 nibbles from the
 * byte holding block s, so at least blocks s + 1 .. s + 14.  Only where
 * they all exist:
 * s + CATENA_PARK_MAX < N (the caller asks park_len_ok first).  The word
 * may reach past the table into the arena's padding and blocks; those
 * nibbles are masked off. */
static inline bool park_len_ok(const catena_heap_t *h, size_t s)
{
    return s + CATENA_PARK_MAX < h->nblocks;
}
/* The table's nibbles from block s's on (s's the lowest): one unaligned
 * read, so that the free that parks reads the state and the length
 * together. */
CATENA_ALWAYS_INLINE uint64_t park_word(const catena_heap_t *h, size_t s)
{
    CATENA_ASSERT(h, park_len_ok(h, s));
    CATENA_STEP(h, 1);
    uint64_t x;
    memcpy(&x, h->table + s / 2, sizeof x);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    x = __builtin_bswap64(x);
#elif !defined(__BYTE_ORDER__)
    x = table_word(h->table + s / 2, 0);
#endif
    return x >> (4 * (s & 1));
}
/* The length of the run at s if at most CATENA_PARK_MAX blocks, else 0,
 * from park_word's x. */
CATENA_ALWAYS_INLINE size_t park_word_len(uint64_t x)
{
    x = ((x >> 4) ^ CATENA_TAILS) &
        ((UINT64_C(1) << (4 * CATENA_PARK_MAX)) - 1);
    return x ? 1 + low_nibble(x) : 0;
}
/* The states a free may park (P1): a contiguous object's but ST_PARKED
 * (the heap is unlocked, so no collection runs and nothing else is
 * marked: G1).  One shift and test for what is_handle and the chain test
 * ask. */
#define PARKABLE_STATES \
    ((1u << ST_HEAD) | (0x3Fu << (ST_HEAD + 2)) | (3u << ST_PIN))
static inline bool parkable(unsigned st)
{
    return (PARKABLE_STATES >> st) & 1u;
}

/* Park contiguous object s (handle obj) of state st and d <=
 * CATENA_PARK_MAX blocks; the caller has checked d <= park_room.  O(1),
 * no index work. */
CATENA_ALWAYS_INLINE void park_push(catena_heap_t *h, size_t s, void *obj,
                                    unsigned st, size_t d)
{
    struct park_hdr *p = (struct park_hdr *)obj;
    CATENA_ASSERT(h, obj == block_ptr(h, s));
    HEAD_TO_PARKED(h, s, st);
    p->next = h->park[d - 1];
    p->chk = park_chk(p->next, d);
    h->park[d - 1] = (cidx)s;
    h->park_room -= d;
    h->free_blocks += d;
}
/* Pop parked run s, the head of the list of d blocks, which the caller
 * has found in the heap (s < N: NIL is not, so an empty list fails that
 * test), so reading its block is safe.  Then s is still ST_PARKED, for
 * the caller to make an object; false (and the heap poisoned, as index.c
 * does for a free run's header) when its link was overwritten.  The check
 * word must match before the link becomes the head, so a write after
 * free into the first two words is caught before the link it spoiled is
 * followed: by this pop, or by the next, which finds a head outside the
 * heap.  Only a write of a matching pair (next, park_chk(next, d))
 * passes; the state of a run so reached is asserted (debug builds) and
 * checked by the validator and every flush. */
CATENA_ALWAYS_INLINE bool park_pop(catena_heap_t *h, size_t d, size_t s)
{
    CATENA_ASSERT(h, s == h->park[d - 1] && s < h->nblocks &&
                         block_state(h, s) == ST_PARKED);
    const struct park_hdr *p = (const struct park_hdr *)block_ptr(h, s);
    size_t next = p->next;
    if (p->chk != park_chk(next, d)) {
        h->magic = 0;
        return false;
    }
    h->park[d - 1] = (cidx)next;
    h->park_room += d;
    h->free_blocks -= d;
    return true;
}
/* Return every parked run to the index (merging as a free does); O(parked
 * runs), each like a free of at most CATENA_PARK_MAX blocks. */
void _catena_park_flush(catena_heap_t *h);
/* Turn parking on or off as the heap's policy says (P2), flushing when
 * off.  After catena_init, set_chaining and the collector's options. */
void _catena_park_policy(catena_heap_t *h);
/* The lists' part of the validator: 0 or CATENA_ECORRUPT (reported);
 * runs and blocks are what the caller's table walk found parked. */
int _catena_park_check(const catena_heap_t *h, size_t runs, size_t blocks);
/* The free runs as a flush would leave them, for the statistics: groups
 * of adjacent free and parked runs with a parked one, the free runs they
 * hold, the sums of squared lengths of both, and the longest group. */
struct park_view {
    size_t groups, merged, largest;
    uint64_t sq_groups, sq_merged;
};
void _catena_park_view(const catena_heap_t *h, struct park_view *v);
/* Flush if anything is parked; true if something was and the heap is
 * still sound (the caller may retry what missed).  Folds away in the
 * small build, which never parks. */
static inline bool park_flush(catena_heap_t *h)
{
    if (!CATENA_PARKING || h->park_room == h->park_cap)
        return false;
    _catena_park_flush(h);
    return !bad_heap(h);
}

/* ---- spine.c: the extent tree of a chained object ----------------------- */
/* The one walker of a spine, depth first in object order; the collector,
 * the validator, release and copying share it.  Each step reports one
 * entry of a node, or a node whose entries are all done (the root last):
 *   SPINE_EXT   v->blk is an extent covering object blocks [lo, hi)
 *   SPINE_NODE  v->blk is any other child (entered next, unless it is out
 *               of range or MAX_DEPTH is reached: the validator checks)
 *   SPINE_DONE  v->blk is a node (or the root) left for good
 * v->depth is the depth of the node holding the entry (root: 0), v->slot
 * its index there; w->node[0..depth] is the path to that node. */
struct spine_walk {
    size_t root;
    int sp;
    size_t node[MAX_DEPTH];
    unsigned pos[MAX_DEPTH];
    size_t prev; /* end of the last extent reported: where the next starts */
};
struct spine_visit {
    size_t blk, lo, hi;
    int depth;
    unsigned slot;
};
enum { SPINE_END, SPINE_EXT, SPINE_NODE, SPINE_DONE };
void _catena_spine_walk(struct spine_walk *w, size_t root);
int _catena_spine_step(const catena_heap_t *h, struct spine_walk *w,
                       struct spine_visit *v);
/* The next extent only: false at the end. */
bool _catena_spine_next(const catena_heap_t *h, struct spine_walk *w,
                        struct spine_visit *v);

/* A block offset's extent: start block, and object blocks [lo, hi). */
struct seg {
    size_t start, lo, hi;
};
size_t _catena_spine_nodes(size_t k);
size_t _catena_spine_total(const catena_heap_t *h, size_t root);
void _catena_spine_init(catena_heap_t *h, size_t root, unsigned flags);
unsigned _catena_spine_entries(const catena_heap_t *h, size_t root,
                               size_t node);
bool _catena_spine_find(const catena_heap_t *h, size_t root, size_t b,
                        struct seg *out);
size_t _catena_spine_count(const catena_heap_t *h, size_t root);
/* Grow the last extent by `add` blocks, then append the extents of the
 * in-band list `ext`, using up the spare nodes of in-band list `spare`. */
void _catena_spine_append(catena_heap_t *h, size_t root, size_t add,
                          size_t ext, size_t spare);
void _catena_spine_truncate(catena_heap_t *h, size_t root, size_t keep);
void _catena_spine_release(catena_heap_t *h, size_t root);
size_t _catena_spine_last_end(const catena_heap_t *h, size_t root);
/* Blocks of data of object i, contiguous or chained. */
size_t _catena_obj_blocks(const catena_heap_t *h, size_t i);

/* ---- alloc.c: what the collector needs from allocation ------------------ */
/* Return object i's blocks to the index (an explicit free or the sweep). */
void _catena_release_obj(catena_heap_t *h, size_t i);

/* ---- the collector, as allocation sees it ------------------------------- */
/* An automatic collection through the hook (none until the collector is
 * configured), keeping object `keep` (or NIL) alive; true if one ran. */
static inline bool _catena_gc_auto(catena_heap_t *h, size_t keep)
{
    return h->gc.auto_collect && h->gc.auto_collect(h, keep);
}
/* Collect when the allocation threshold is reached; inline because every
 * allocation asks and the answer is almost always no. */
static inline void _catena_gc_threshold(catena_heap_t *h, size_t keep)
{
    if (h->gc.threshold && h->gc.since >= h->gc.threshold)
        _catena_gc_auto(h, keep);
}

/* ---- gc.c / regs_arm.c -------------------------------------------------- */
/* Scan the calling thread's callee-saved registers as roots.  Hosted
 * builds use setjmp; bare-metal ports override the weak default (a no-op:
 * catena_collect then relies on the compiler spilling registers to the
 * stack it scans). */
void _catena_gc_scan_regs(catena_heap_t *h);

#endif /* CATENA_INT_H */
