/*
 * arena.h - private to the small-object files (geometry.c, trim.c,
 * arena.c, tcache.c, small.c): the arena and slot records, the settings
 * small_init fixes, and the inline lookups every layer of that side uses
 * (pointer -> arena, block -> state byte).
 *
 * An arena is one mapping of `asz` bytes aligned to asz: [struct arena |
 * catena heap (control, table, blocks)], opened when a slot needs one
 * (nothing is reserved ahead: a program under RLIMIT_AS pays only for the
 * arenas it uses).  One bit per asz-aligned slot of the address space
 * says whether an arena starts there, so a pointer's arena is p rounded
 * down to asz, an O(1) lookup that also tells foreign pointers apart.
 * Each arena is a catena heap with chaining off: C programs need
 * contiguous objects.
 *
 * Threads: arenas are grouped in NSLOTS slots, each with one lock; thread
 * t allocates from slot t % NSLOTS, and a free or realloc takes the lock
 * of the slot that owns the pointer's arena (cross-thread frees are just
 * frees under another slot's lock).
 *
 * State bytes.  Cached objects (tcache.c) stay allocated in catena's
 * view.  To keep bad frees
 * diagnosed without catena, each arena has a state byte per block (in a
 * mapping of their own, a->states; 3 % of the blocks' bytes, touched where
 * blocks are): 0 for a block that is not the start of an
 * object handed out by the cached path (free then takes the locked path, where
 * catena diagnoses it), k (1..TC_CLASSES) for the start of such a live
 * object of k blocks, k | TC_FREE once it is in some thread's cache.  free
 * moves k -> k | TC_FREE with a compare-and-swap, so a second free of a
 * cached object (from any thread) is reported as a double free.  Every
 * path that gives an object back to catena sets its byte to TC_GONE
 * (with or without the caches): "an object started here and was freed",
 * the history that tells a double free from a free of an address that was
 * never an object when catena says "free memory" (a byte in pages that
 * CATENA_TRIM released reads 0 again: then only the latter is claimed).
 * TC_GONE may stay on the start of a live object of the locked path:
 * like 0, it sends free to the locked path.
 */
#ifndef CATENA_ARENA_H
#define CATENA_ARENA_H

#include "shim.h"

#define NSLOTS 32
#define ARENA_MAGIC 0x61726e61u
#define ALIAS_TAG ((uintptr_t)0x5a17a11a5e7ca7e5u)
#define ALIAS_GONE ((uintptr_t)0x6a0eda11a5fe7ca7u) /* a freed alias's tag */
#define HDR 128 /* struct arena, rounded so the heap starts aligned */

struct arena {
    uint32_t magic, slot;
    catena_heap_t *h;
    struct arena *next; /* in its slot */
    /* its state bytes (one per block, a mapping of their own), biased:
     * the byte of block p is at sbias + (p >> TC_BSHIFT) (state_of), one
     * load and one add on the hit paths */
    uintptr_t sbias;
    /* CATENA_TRIM (slot lock), in blocks: allocated (cached objects
     * count), their high-water mark since the last trim, the slack a trim
     * must exceed, and the use at which a trim proves premature (trim.c).
     * Written on every locked call: on a cache line apart from the fields
     * above, which every cached call of every thread reads. */
    _Alignas(64) uint32_t used;
    uint32_t mark, slack, regrow;
    uint64_t churn;    /* blocks ever allocated here: the trim's clock */
    uint64_t decay_at; /* churn at which slack halves */
};

struct slot {
    shim_lock_t lock;
    struct arena *first, *cur;
    size_t live; /* bytes of live objects (when tracked) */
    uint64_t trims, trimmed; /* trim passes, bytes madvised */
    uint64_t madvises;       /* madvise calls of the trims */
} __attribute__((aligned(64)));

/* ---- settings: set once by small_init (geometry.c), read-only after */
SHIM_HIDDEN extern struct slot slots[NSLOTS]; /* arena.c */
SHIM_HIDDEN extern size_t asz, bsize;
/* Bit i set: an arena starts at i * asz.  Set once, never cleared (an
 * arena is never unmapped); covers the addresses below 2^ADDR_BITS. */
SHIM_HIDDEN extern _Atomic uint64_t *arena_bits;
SHIM_HIDDEN extern size_t arena_slots;
#define ADDR_BITS (sizeof(void *) == 8 ? 48 : 32)
SHIM_HIDDEN extern bool track; /* keep slot->live (stats, fixed arena) */
SHIM_HIDDEN extern size_t trim_blocks; /* CATENA_TRIM in blocks; 0: off */

_Static_assert(sizeof(struct arena) <= HDR, "arena header fits");

/* The state bytes (one per block, a->states): values */
#define TC_CLASSES 32           /* objects of 1..32 blocks (1 KiB at 32 B) */
#define TC_FREE 0x80            /* state byte: in a cache */
#define TC_GONE 0x40            /* state byte: an object was freed here */
/* The hot checks take the block size as a constant (catena's, built into
 * this library); the caches are on only when bsize == TC_B. */
#define TC_B ((uintptr_t)CATENA_BLOCK_SIZE)
#define TC_BSHIFT ((unsigned)__builtin_ctzl(CATENA_BLOCK_SIZE))
SHIM_HIDDEN extern bool tc_on;              /* set once at init */
SHIM_HIDDEN extern size_t mapsz;            /* state bytes per arena */
SHIM_HIDDEN extern unsigned bshift;         /* log2 of the block size */
SHIM_HIDDEN extern unsigned ashift;         /* log2 of the arena size */
SHIM_HIDDEN extern uintptr_t tc_secret;     /* the secret of the masked links */

/* log2 of the arena size.  With 32-bit block indexes arenas are 32 MiB
 * (small_init checks): a constant saves the cache's hit path a load and
 * makes "round down to the arena" one AND.  16-bit indexes size arenas
 * at start-up. */
#if CATENA_INDEX_BITS == 32
#define TC_ASHIFT 25u
#define ARENA_SLOTS ((size_t)1 << (ADDR_BITS - TC_ASHIFT))
#else
#define TC_ASHIFT ashift
#define ARENA_SLOTS arena_slots
#endif

/* ---- lookups (inline: the cached paths take them on every call) ------- */
/* Does an arena start at p rounded down to asz?  Inline: the checked
 * cache links (tc_cached) ask it on every cached malloc. */
static inline bool arena_bit(uintptr_t p)
{
    size_t i = p >> TC_ASHIFT;
    return i < ARENA_SLOTS &&
           (atomic_load_explicit(&arena_bits[i / 64], memory_order_acquire) >>
                (i % 64) &
            1);
}

/* The arena of a pointer known to be ours (cached or just allocated). */
static inline struct arena *arena_at(const void *p)
{
    return (struct arena *)((uintptr_t)p &
                            ~(((uintptr_t)1 << TC_ASHIFT) - 1));
}

/* The arena of p, known to pass small_owns (the entry points' contract,
 * shim.h); NULL if its header is not an arena's. */
static inline struct arena *arena_owned(const void *p)
{
    struct arena *a = arena_at(p);
    return a->magic == ARENA_MAGIC ? a : NULL;
}

/* The state byte of the block at p (p in arena a). */
static inline _Atomic unsigned char *state_of(const struct arena *a,
                                              const void *p)
{
    return (_Atomic unsigned char *)(a->sbias +
                                     ((uintptr_t)p >> TC_BSHIFT));
}

/* The first of arena a's state bytes (the one of its header's block). */
static inline unsigned char *arena_states(const struct arena *a)
{
    return (unsigned char *)(a->sbias + ((uintptr_t)a >> TC_BSHIFT));
}

static inline bool block_aligned(const void *p)
{
    return ((uintptr_t)p & (bsize - 1)) == 0;
}

/* ---- trim.c ------------------------------------------------------------ */
SHIM_HIDDEN void trim_start(struct arena *a);
SHIM_HIDDEN void trim_note_alloc(struct arena *a, size_t k);
SHIM_HIDDEN void trim_note_free(struct slot *s, struct arena *a, size_t k);

/* ---- arena.c ----------------------------------------------------------- */
SHIM_HIDDEN struct arena *arena_of(const void *p);
SHIM_HIDDEN void *alloc_in(struct slot *s, size_t n, unsigned flags);
SHIM_HIDDEN void give_back(struct slot *s, struct arena *a, void *p);
/* Batches (catena_alloc_many, catena_free_many; slot lock held): up to
 * count objects of n bytes, adjacent where one free run holds them, from
 * the current arena (else one the way alloc_in finds it, then the rest
 * from its arena), how many made (0: none); and give_back for n cached
 * objects of arena a at once (adjacent ones merge in one index
 * operation). */
SHIM_HIDDEN size_t alloc_many_in(struct slot *s, size_t n, void **out,
                                 size_t count);
SHIM_HIDDEN void give_back_many(struct slot *s, struct arena *a, void **objs,
                                size_t n);
SHIM_HIDDEN const char *fault_name(int e);
SHIM_HIDDEN void free_in(struct arena *a, void *p, const char *fn);

#endif
