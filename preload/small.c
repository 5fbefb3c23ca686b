/*
 * small.c - objects below the large threshold.
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
 * Per-thread caches (CATENA_TCACHE, on by default): a thread keeps freed
 * objects of up to TC_CLASSES blocks in LIFO lists by size in blocks and
 * hands them out again without a lock or a catena call; a list that grows
 * past its bound gives half back to catena (under the owning slots'
 * locks), an empty one is refilled with a few objects under one lock.
 * Cached objects stay allocated in catena's view.  To keep bad frees
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
 *
 * A cached object is linked through its first word, which a bug in the
 * program (a write after free, an overflow of the object before it) may
 * overwrite.  So links are stored masked with a per-process secret and
 * the word's own address (tc_link), and every read (tc_next) checks that
 * the link decodes to a block-aligned address in an arena whose state
 * byte says "cached, this size" before anything follows it: an overwritten
 * link is reported (one line, as a bad free) instead of crashing later.
 * Caches are flushed at thread exit (a pthread key destructor); in a
 * forked child, the caches of the threads that did not survive the fork
 * are flushed (unless the fork caught one mid-update: then it is leaked).
 *
 * Aligned objects (alignment > B): allocate n + align bytes, return the
 * first aligned address q past the start p, and store {ALIAS ^ q, p} in
 * the 16 bytes below q.  q - p >= B >= 16 so they fit.  free(q) sees the
 * tag and frees p.
 */
#include "shim.h"

#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <sys/mman.h>

#ifndef MAP_FIXED_NOREPLACE
#define MAP_FIXED_NOREPLACE 0x100000
#endif

#define NSLOTS 32
#define ARENA_MAGIC 0x61726e61u
#define ALIAS_TAG ((uintptr_t)0x5a17a11a5e7ca7e5u)
#define ALIAS_GONE ((uintptr_t)0x6a0eda11a5fe7ca7u) /* a freed alias's tag */
#define HDR 64 /* struct arena, rounded so the heap starts aligned */

struct arena {
    uint32_t magic, slot;
    catena_heap_t *h;
    struct arena *next; /* in its slot */
    /* CATENA_TRIM (slot lock): blocks allocated (cached objects count),
     * and their high-water mark since the last trim */
    size_t used, mark;
    unsigned char *states; /* its state bytes (one per block) */
};

struct slot {
    shim_lock_t lock;
    struct arena *first, *cur;
    size_t live; /* bytes of live objects (when tracked) */
    uint64_t trims, trimmed; /* trim passes, bytes madvised */
} __attribute__((aligned(64)));

static struct slot slots[NSLOTS];
static size_t asz, bsize;
/* Bit i set: an arena starts at i * asz.  Set once, never cleared (an
 * arena is never unmapped); covers the addresses below 2^ADDR_BITS. */
static _Atomic uint64_t *arena_bits;
static size_t arena_slots;
static unsigned char *last_arena; /* the latest arena (arena_lock) */
#define ADDR_BITS (sizeof(void *) == 8 ? 48 : 32)
static shim_lock_t arena_lock;
static bool track; /* keep slot->live (stats, fixed arena) */
static size_t trim_blocks; /* CATENA_TRIM in blocks; 0: off */

_Static_assert(sizeof(struct arena) <= HDR, "arena header fits");

/* ---- per-thread caches: declarations ------------------------------------ */
#define TC_CLASSES 32           /* objects of 1..32 blocks (1 KiB at 32 B) */
#define TC_FREE 0x80            /* state byte: in a cache */
#define TC_GONE 0x40            /* state byte: an object was freed here */
#define TC_REFILL 8             /* objects fetched per lock on a miss */
#define TC_BIN_BYTES (32 * 1024) /* bound of one list, in bytes... */
#define TC_BIN_MIN 16           /* ...but at least this many objects */
#define TC_BIN_MAX 256          /* ...and at most this many */
/* The hot checks take the block size as a constant (catena's, built into
 * this library); the caches are on only when bsize == TC_B. */
#define TC_B ((uintptr_t)CATENA_BLOCK_SIZE)
#define TC_BSHIFT ((unsigned)__builtin_ctzl(CATENA_BLOCK_SIZE))

struct tc_bin {
    void *head;
    uint32_t n, max;
};
struct tcache {
    struct tc_bin bin[TC_CLASSES];
    atomic_uint busy;           /* odd: the owner is changing the lists;
                                 * +1 at each change and after it, so a
                                 * validator sees that it raced one */
    uint32_t slot;              /* where this thread allocates */
    struct tcache *next, *prev; /* the registry */
};
#define TC_DEAD ((struct tcache *)1) /* exited, registering, or no cache */
static __thread struct tcache *my_tc __attribute__((tls_model("initial-exec")));
static bool tc_on;              /* set once at init */
static size_t mapsz;            /* state bytes per arena */
static unsigned bshift;         /* log2 of the block size */
static unsigned ashift;         /* log2 of the arena size */
static atomic_uint slot_threads[NSLOTS];
static uintptr_t tc_secret;     /* the secret of the masked links */
static void tc_put(struct tcache *tc, void *p, unsigned k);

bool small_init(void)
{
    bsize = catena_block_size();
    /* 32 MiB arenas: the table (asz/2B bytes, written by catena_init) is
     * 512 KiB of RSS per arena, and 2^20 blocks index comfortably.  Builds
     * with 16-bit indexes cap a heap at 65534 blocks: use less. */
    bshift = (unsigned)__builtin_ctzl(bsize);
    asz = (size_t)32 << 20;
    for (;;) {
        if (asz <= 1024 * 1024 ||
            catena_arena_blocks(HDR, asz - HDR) <= catena_max_blocks())
            break;
        asz /= 2;
    }
    mapsz = asz >> bshift; /* one state byte per block of an arena */
    ashift = (unsigned)__builtin_ctzl(asz);
    shim_opts_cap_large(asz / 4);
    /* 1 MiB of bits for 48-bit addresses and 32 MiB arenas; pages of it
     * are touched only where arenas are. */
    arena_slots = (size_t)1 << (ADDR_BITS - ashift);
    arena_bits = shim_map_aligned((arena_slots + 63) / 64 * 8, shim_page,
                                  true);
    track = shim_opt.stats || shim_opt.arena;
    if (shim_opt.trim)
        trim_blocks = shim_opt.trim >> bshift ? shim_opt.trim >> bshift : 1;
    tc_on = shim_opt.tcache && !shim_opt.trace && bsize >= sizeof(void *) &&
            (bsize & (bsize - 1)) == 0 && bsize == TC_B;
    tc_secret = shim_secret();
    return arena_bits != NULL;
}

/* Does an arena start at p rounded down to asz?  Inline: the checked
 * cache links (tc_cached) ask it on every cached malloc. */
static inline bool arena_bit(uintptr_t p)
{
    size_t i = p >> ashift;
    return i < arena_slots &&
           (atomic_load_explicit(&arena_bits[i / 64], memory_order_acquire) >>
                (i % 64) &
            1);
}

bool small_owns(const void *p) { return arena_bit((uintptr_t)p); }

/* The arena of a pointer known to be ours (cached or just allocated). */
static inline struct arena *arena_at(const void *p)
{
    return (struct arena *)((uintptr_t)p >> ashift << ashift);
}

/* The arena of p, known to pass small_owns (the entry points' contract,
 * shim.h); NULL if its header is not an arena's. */
static struct arena *arena_owned(const void *p)
{
    struct arena *a = arena_at(p);
    return a->magic == ARENA_MAGIC ? a : NULL;
}

/* The arena of any pointer, or NULL. */
static struct arena *arena_of(const void *p)
{
    return small_owns(p) ? arena_owned(p) : NULL;
}

/* ---- giving free pages back (CATENA_TRIM) --------------------------------
 *
 * Each arena counts its allocated blocks (objects in the per-thread caches
 * included: catena sees them allocated) and their high-water mark since
 * its last trim.  When a free leaves the count below the mark by more than
 * CATENA_TRIM and by more than a quarter of the count (a live set that
 * merely fluctuates must not pay for madvise and page faults over and
 * over), the arena is trimmed there and then, under its slot's lock:
 * catena_free_ranges lists the interiors of its free runs of at least a
 * page, and the whole pages inside each are madvise(MADV_DONTNEED)'d,
 * together with the pages of state bytes that describe only those blocks
 * (0 or TC_GONE while free: a released TC_GONE reads 0, which only loses
 * the history that names a double free).  Then mark = count.  So a trim
 * costs at most one pass per CATENA_TRIM bytes (and per fifth of the
 * arena's use) of net shrinking; steady churn, which keeps the count near
 * its mark, does not trim.  The released pages read
 * as zero when reused, which catena does not mind (it never reads a free
 * run's interior). */
struct trim_ctx {
    const struct arena *a;
    uint64_t bytes;
};

static void trim_range(void *ctx, void *p, size_t n)
{
    struct trim_ctx *t = ctx;
    uintptr_t pg = (uintptr_t)shim_page - 1;
    uintptr_t lo = ((uintptr_t)p + pg) & ~pg;
    uintptr_t hi = ((uintptr_t)p + n) & ~pg;
    if (hi <= lo)
        return;
    if (madvise((void *)lo, hi - lo, MADV_DONTNEED) == 0)
        t->bytes += hi - lo;
    /* the state bytes of exactly these blocks, whole pages of them */
    uintptr_t a = (uintptr_t)t->a, st = (uintptr_t)t->a->states;
    uintptr_t slo = st + ((lo - a) >> bshift);
    uintptr_t shi = st + ((hi - a) >> bshift);
    slo = (slo + pg) & ~pg;
    shi &= ~pg;
    if (shi > slo)
        madvise((void *)slo, shi - slo, MADV_DONTNEED);
}

/* Trim arena a of slot s (its lock held) if it shrank enough. */
static inline void trim_check(struct slot *s, struct arena *a)
{
    size_t drop = a->mark - a->used;
    if (__builtin_expect(drop <= trim_blocks || drop <= a->used / 2, 1))
        return;
    struct trim_ctx t = {a, 0};
    catena_free_ranges(a->h, shim_page, trim_range, &t);
    a->mark = a->used;
    s->trims++;
    s->trimmed += t.bytes;
}

/* k blocks of arena a went back to catena (slot lock held). */
static inline void trim_note_free(struct slot *s, struct arena *a, size_t k)
{
    if (!trim_blocks)
        return;
    a->used -= k <= a->used ? k : a->used;
    trim_check(s, a);
}

/* asz bytes at exactly `at`, or NULL. */
static unsigned char *map_at(unsigned char *at)
{
    void *r = mmap(at, asz, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE |
                       MAP_FIXED_NOREPLACE,
                   -1, 0);
    if (r == at)
        return at;
    if (r != MAP_FAILED) /* a kernel without MAP_FIXED_NOREPLACE */
        munmap(r, asz);
    return NULL;
}

/* The mapping of a new arena (arena_lock held): right below or above the
 * last one when that is free (top-down or bottom-up placement leaves it
 * so): aligned without over-mapping, which under RLIMIT_AS would need
 * twice the room. */
static unsigned char *map_arena(void)
{
    unsigned char *at = NULL;
    if (last_arena && (uintptr_t)last_arena > asz)
        at = map_at(last_arena - asz);
    if (!at && last_arena)
        at = map_at(last_arena + asz);
    return at ? at : shim_map_aligned(asz, asz, true);
}

/* A fresh arena for slot s (its lock held). */
static struct arena *new_arena(struct slot *s)
{
    shim_lock(&arena_lock);
    struct arena *a = NULL;
    catena_heap_t *h;
    /* MAP_NORESERVE: untouched blocks are not charged (as the PROT_NONE
     * reservation they replace was not); the state bytes, in a mapping of
     * their own (the heaps keep the layout catena was tuned with) */
    unsigned char *at = map_arena();
    unsigned char *st =
        at ? shim_map_aligned(mapsz, shim_page, true) : NULL;
    size_t i = (uintptr_t)at >> ashift;
    if (st && i < arena_slots &&
        catena_init(at + HDR, asz - HDR, &h) == CATENA_OK) {
        catena_set_chaining(h, false);
        a = (struct arena *)(void *)at;
        a->magic = ARENA_MAGIC;
        a->slot = (uint32_t)(s - slots);
        a->h = h;
        a->states = st;
        last_arena = at;
        a->next = s->first;
        s->first = a;
        atomic_fetch_or_explicit(&arena_bits[i / 64], (uint64_t)1 << (i % 64),
                                 memory_order_release);
    } else {
        shim_unmap(at, asz);
        shim_unmap(st, mapsz);
    }
    shim_unlock(&arena_lock);
    return a;
}

static void *alloc_in(struct slot *s, size_t n, unsigned flags)
{
    void *p = NULL;
    if (s->cur)
        p = catena_alloc_flags(s->cur->h, n, flags);
    for (struct arena *a = s->first; !p && a; a = a->next)
        if (a != s->cur && (p = catena_alloc_flags(a->h, n, flags)))
            s->cur = a;
    if (!p) {
        struct arena *a = new_arena(s);
        if (a && (p = catena_alloc_flags(a->h, n, flags)))
            s->cur = a;
    }
    if (p && track)
        s->live += (n + bsize - 1) / bsize * bsize;
    if (p && trim_blocks) {
        struct arena *a = arena_at(p);
        a->used += (n + bsize - 1) >> bshift; /* catena takes exactly that */
        if (a->used > a->mark)
            a->mark = a->used;
    }
    return p;
}

/* The state byte of the block at p (p in arena a). */
static inline _Atomic unsigned char *state_of(const struct arena *a,
                                              const void *p)
{
    return (_Atomic unsigned char *)a->states +
           (((uintptr_t)p - (uintptr_t)a) >> bshift);
}

static inline bool block_aligned(const void *p)
{
    return ((uintptr_t)p & (bsize - 1)) == 0;
}

/* Give a cached object back to catena (its slot's lock held): its state
 * byte becomes TC_GONE first. */
static void give_back(struct slot *s, struct arena *a, void *p)
{
    _Atomic unsigned char *st = state_of(a, p);
    size_t k = atomic_load_explicit(st, memory_order_relaxed) &
               (unsigned char)~TC_FREE; /* a cached object's size */
    atomic_store_explicit(st, TC_GONE, memory_order_relaxed);
    size_t sz = track || (trim_blocks && !k) ? catena_size(a->h, p)
                                             : k << bshift;
    int e = catena_free(a->h, p);
    if (e)
        shim_die("tcache: a cached object was not allocated");
    if (track)
        s->live -= sz;
    trim_note_free(s, a, sz >> bshift);
}

static struct slot *my_slot(void)
{
    struct tcache *tc = my_tc;
    if (tc && tc != TC_DEAD)
        return &slots[tc->slot];
    return &slots[shim_tid() % NSLOTS];
}

static void *small_alloc_raw(size_t n, unsigned flags)
{
    struct slot *s = my_slot();
    shim_lock(&s->lock);
    void *p = alloc_in(s, n ? n : 1, flags);
    shim_unlock(&s->lock);
    return p;
}

/* ---- per-thread caches ------------------------------------------------- */

static pthread_key_t tc_key;
static atomic_int tc_key_state; /* 0 none, 1 made, 2 cannot */
static shim_lock_t tc_key_lock, reg_lock;
static struct tcache *reg_first;

/* Only the owner writes busy: a plain load and store count it up. */
static void tc_busy(struct tcache *tc)
{
    unsigned g = atomic_load_explicit(&tc->busy, memory_order_relaxed);
    atomic_store_explicit(&tc->busy, g + 1, memory_order_relaxed);
    atomic_thread_fence(memory_order_release); /* before the list stores */
}

static void tc_idle(struct tcache *tc)
{
    unsigned g = atomic_load_explicit(&tc->busy, memory_order_relaxed);
    atomic_store_explicit(&tc->busy, g + 1, memory_order_release);
}

/* ---- masked links ---------------------------------------------------- */

static inline uintptr_t tc_mask(const void *at)
{
    return tc_secret ^ ((uintptr_t)at >> TC_BSHIFT);
}

/* Store in cached object p the link to next (NULL: the end). */
static inline void tc_link(void *p, const void *next)
{
    *(uintptr_t *)p = (uintptr_t)next ^ tc_mask(p);
}

/* Is q the start of a cached object (of k blocks; k 0: of any size)?
 * Block-aligned, in an arena (its bit: so its header and state bytes are
 * mapped), and its state byte says so.  Three loads: the bit, the arena's
 * states pointer, the byte. */
static inline bool tc_cached(uintptr_t q, unsigned k)
{
    if (q & (TC_B - 1) || !arena_bit(q))
        return false;
    const struct arena *a = arena_at((const void *)q);
    unsigned v = atomic_load_explicit(
        (_Atomic unsigned char *)a->states + ((q - (uintptr_t)a) >> TC_BSHIFT),
        memory_order_relaxed);
    /* k 0: only the TC_FREE bit must match */
    return (v & (k ? 0xffu : TC_FREE)) == (k | TC_FREE);
}

static const char tc_overwritten[] =
    "freed object overwritten (use after free, or an overflow of the "
    "object before it)";

/* The object after cached object p in a list of k-block objects (k 0:
 * mixed sizes), NULL at its end.  A link that does not lead to a cached
 * object was overwritten: reported as a fault of fn (the list then ends
 * at p; the objects after it are leaked). */
static inline void *tc_next(const void *p, unsigned k, const char *fn)
{
    uintptr_t q = *(const uintptr_t *)p ^ tc_mask(p);
    if (__builtin_expect(!q || tc_cached(q, k), 1))
        return (void *)q;
    shim_fault(fn, tc_overwritten, p);
    return NULL;
}

/* A cache is a mapping of its own (shim_map): a heap for the shim's own
 * records would cost an arena of address space. */
static void tc_del(struct tcache *tc) { shim_unmap(tc, sizeof *tc); }

/* Give a detached list of cached objects back to catena, taking each
 * owning slot's lock once per run of objects from the same slot. */
static void flush_list(void *list, const char *fn)
{
    struct slot *held = NULL;
    while (list) {
        void *p = list;
        list = tc_next(p, 0, fn);
        struct arena *a = arena_at(p);
        struct slot *s = &slots[a->slot];
        if (s != held) {
            if (held)
                shim_unlock(&held->lock);
            shim_lock(&s->lock);
            held = s;
        }
        give_back(s, a, p);
    }
    if (held)
        shim_unlock(&held->lock);
}

/* Detach the newest objects of bin b (of k-block objects) until it holds
 * `keep` (or its list ends early: a link was overwritten). */
static void *bin_cut(struct tc_bin *b, unsigned k, uint32_t keep,
                     const char *fn)
{
    void *list = NULL;
    while (b->n > keep && b->head) {
        void *p = b->head;
        b->head = tc_next(p, k, fn);
        b->n = b->head ? b->n - 1 : 0;
        tc_link(p, list);
        list = p;
    }
    return list;
}

static void tc_flush_all(struct tcache *tc, const char *fn)
{
    void *all = NULL;
    tc_busy(tc);
    for (unsigned i = 0; i < TC_CLASSES; i++) {
        void *l = bin_cut(&tc->bin[i], i + 1, 0, fn);
        while (l) { /* splice */
            void *p = l;
            l = tc_next(p, i + 1, fn);
            tc_link(p, all);
            all = p;
        }
    }
    tc_idle(tc);
    flush_list(all, fn);
}

static void reg_unlink(struct tcache *tc)
{
    if (tc->prev)
        tc->prev->next = tc->next;
    else
        reg_first = tc->next;
    if (tc->next)
        tc->next->prev = tc->prev;
}

static void tc_destroy(void *v)
{
    struct tcache *tc = v;
    my_tc = TC_DEAD; /* later calls of this thread: the locked path */
    if (!tc)
        return;
    tc_flush_all(tc, "free");
    shim_lock(&reg_lock);
    reg_unlink(tc);
    shim_unlock(&reg_lock);
    atomic_fetch_sub(&slot_threads[tc->slot], 1);
    tc_del(tc);
}

/* The calling thread's cache, made on first use; NULL: none. */
static struct tcache *tc_get_slow(void)
{
    if (!tc_on)
        return NULL;
    my_tc = TC_DEAD; /* anything below that allocates: the locked path */
    if (atomic_load(&tc_key_state) == 0) {
        shim_lock(&tc_key_lock);
        if (atomic_load(&tc_key_state) == 0)
            atomic_store(&tc_key_state,
                         pthread_key_create(&tc_key, tc_destroy) == 0 ? 1
                                                                        : 2);
        shim_unlock(&tc_key_lock);
    }
    if (atomic_load(&tc_key_state) != 1)
        return NULL;
    struct tcache *tc = shim_map(sizeof *tc);
    if (!tc)
        return NULL;
    memset(tc, 0, sizeof *tc);
    for (unsigned i = 0; i < TC_CLASSES; i++) {
        size_t m = TC_BIN_BYTES / ((i + 1) * bsize);
        tc->bin[i].max = m < TC_BIN_MIN ? TC_BIN_MIN
                         : m > TC_BIN_MAX ? TC_BIN_MAX
                                          : (uint32_t)m;
    }
    /* the least used slot: threads that come and go do not keep opening
     * arenas in new slots */
    unsigned best = 0, bn = UINT32_MAX;
    for (unsigned i = 0; i < NSLOTS; i++) {
        unsigned c = atomic_load_explicit(&slot_threads[i],
                                          memory_order_relaxed);
        if (c < bn)
            bn = c, best = i;
    }
    atomic_fetch_add(&slot_threads[best], 1);
    tc->slot = best;
    if (pthread_setspecific(tc_key, tc) != 0) {
        atomic_fetch_sub(&slot_threads[best], 1);
        tc_del(tc);
        return NULL;
    }
    shim_lock(&reg_lock);
    tc->next = reg_first;
    if (reg_first)
        reg_first->prev = tc;
    reg_first = tc;
    shim_unlock(&reg_lock);
    my_tc = tc;
    return tc;
}

static inline struct tcache *tc_get(void)
{
    struct tcache *tc = my_tc;
    if (__builtin_expect(tc != NULL, 1))
        return tc == TC_DEAD ? NULL : tc;
    return tc_get_slow();
}

/* A miss: k-block objects from catena, one returned, up to TC_REFILL - 1
 * more into the cache. */
static void *tc_refill(struct tcache *tc, unsigned k, unsigned flags)
{
    struct slot *s = &slots[tc->slot];
    size_t n = (size_t)k << bshift;
    void *extra[TC_REFILL];
    unsigned ne = 0;
    shim_lock(&s->lock);
    void *p = alloc_in(s, n, flags);
    if (p && block_aligned(p)) {
        atomic_store_explicit(state_of(arena_at(p), p), (unsigned char)k,
                              memory_order_relaxed);
        struct tc_bin *b = &tc->bin[k - 1];
        for (unsigned want = b->max / 2 < TC_REFILL - 1 ? b->max / 2
                                                        : TC_REFILL - 1;
             ne < want; ne++) {
            void *q = alloc_in(s, n, 0);
            if (!q)
                break;
            if (!block_aligned(q)) { /* not expected: never cache it */
                struct arena *a = arena_of(q);
                give_back(s, a, q);
                break;
            }
            atomic_store_explicit(state_of(arena_at(q), q),
                                  (unsigned char)(k | TC_FREE),
                                  memory_order_relaxed);
            extra[ne] = q;
        }
    }
    shim_unlock(&s->lock);
    if (ne) {
        tc_busy(tc);
        struct tc_bin *b = &tc->bin[k - 1];
        while (ne) { /* lowest address on top */
            void *q = extra[--ne];
            tc_link(q, b->head);
            b->head = q;
            b->n++;
        }
        tc_idle(tc);
    }
    return p;
}

void *small_alloc(size_t n, unsigned flags)
{
    if (n == 0)
        n = 1;
    unsigned k = (unsigned)((n + bsize - 1) >> bshift);
    struct tcache *tc;
    if (k > TC_CLASSES || !tc_on || !(tc = tc_get()))
        return small_alloc_raw(n, flags);
    struct tc_bin *b = &tc->bin[k - 1];
    void *p = b->head;
    if (p) {
        tc_busy(tc);
        b->head = tc_next(p, k, "malloc");
        b->n--;
        if (__builtin_expect(!b->head, 0))
            b->n = 0; /* the end, or the rest is lost (tc_next) */
        tc_idle(tc);
        atomic_store_explicit(state_of(arena_at(p), p), (unsigned char)k,
                              memory_order_relaxed);
        if (flags & CATENA_ZERO)
            memset(p, 0, n);
        return p;
    }
    p = tc_refill(tc, k, flags);
    if (!p) { /* out of memory: give back what this thread holds, retry */
        tc_flush_all(tc, "malloc");
        p = small_alloc_raw(n, flags);
    }
    return p;
}

static void tc_put(struct tcache *tc, void *p, unsigned k)
{
    struct tc_bin *b = &tc->bin[k - 1];
    void *cut = NULL;
    tc_busy(tc);
    tc_link(p, b->head);
    b->head = p;
    if (++b->n > b->max)
        cut = bin_cut(b, k, b->max / 2, "free");
    tc_idle(tc);
    if (cut)
        flush_list(cut, "free");
}

void tcache_flush_mine(void)
{
    struct tcache *tc = my_tc;
    if (tc && tc != TC_DEAD)
        tc_flush_all(tc, "free");
}

void tcache_prepare_fork(void)
{
    shim_lock(&reg_lock);
}

void tcache_parent_fork(void)
{
    shim_unlock(&reg_lock);
}

/* In the child (every lock reset, one thread): the other threads' caches
 * go back to catena; a cache caught mid-update is leaked. */
void tcache_child_fork(void)
{
    shim_lock_reset(&reg_lock);
    shim_lock_reset(&tc_key_lock);
    struct tcache *mine = my_tc, *next;
    for (unsigned i = 0; i < NSLOTS; i++)
        atomic_store(&slot_threads[i], 0);
    for (struct tcache *tc = reg_first; tc; tc = next) {
        next = tc->next;
        if (tc == mine)
            continue;
        reg_unlink(tc);
        if (!(atomic_load(&tc->busy) & 1)) {
            tc_flush_all(tc, "fork");
            tc_del(tc);
        }
    }
    if (mine && mine != TC_DEAD)
        atomic_store(&slot_threads[mine->slot], 1);
}

void *small_memalign(size_t align, size_t n)
{
    /* Size 0 is 1: the aligned address may be p + align, which must lie
     * inside the object, not at the start of the next one. */
    if (n == 0)
        n = 1;
    if (align <= bsize)
        return small_alloc_raw(n, 0);
    unsigned char *p = small_alloc_raw(n + align, 0);
    if (!p)
        return NULL;
    /* The first aligned address above p: p < q <= p + align. */
    uintptr_t q = ((uintptr_t)p + align) & ~(uintptr_t)(align - 1);
    uintptr_t *tag = (uintptr_t *)q;
    tag[-2] = ALIAS_TAG ^ q;
    tag[-1] = (uintptr_t)p;
    return (void *)q;
}

/* The start of the allocation an aligned alias q stands for, or NULL. */
/* The base pointer beside q when q's tag is `kind` ^ q, else NULL.  A
 * tag lies past the arena's header: an address at (or just past) the
 * arena's start, whose 16 bytes below may be unmapped, has none. */
static void *alias_tagged(const struct arena *a, const void *q,
                          uintptr_t kind)
{
    const uintptr_t *tag = q;
    if ((uintptr_t)q % (2 * bsize) ||
        (uintptr_t)q - (uintptr_t)a < HDR + 2 * sizeof *tag ||
        tag[-2] != (kind ^ (uintptr_t)q))
        return NULL;
    void *p = (void *)tag[-1];
    return p < q && arena_of(p) == a ? p : NULL;
}

static void *alias_base(const struct arena *a, const void *q)
{
    return alias_tagged(a, q, ALIAS_TAG);
}

static const char *fault_name(int e)
{
    switch (e) {
    case CATENA_EFREE: return "double free (pointer to free memory)";
    case CATENA_EINTERIOR: return "interior pointer (not the start of an object)";
    case CATENA_EFOREIGN: return "invalid pointer (not from this allocator)";
    default: return "heap metadata corrupt at";
    }
}

/* Was q an aligned alias that was freed?  (free_in leaves ALIAS_GONE in
 * its tag; its base pointer stays beside it.) */
static bool alias_freed(const struct arena *a, const void *q)
{
    return alias_tagged(a, q, ALIAS_GONE) != NULL;
}

/* What a call on p that catena refused with e is, told apart with what
 * the shim remembers: a freed alias's tag, and TC_GONE in the state byte
 * of a freed object's start.  Only the fault path calls this. */
static const char *bad_name(const struct arena *a, const void *p, int e)
{
    if ((e == CATENA_EFREE || e == CATENA_EINTERIOR) && alias_freed(a, p))
        return "double free (aligned object)";
    if (e == CATENA_EFREE &&
        (!block_aligned(p) ||
         atomic_load_explicit(state_of(a, p), memory_order_relaxed) !=
             TC_GONE))
        return "free of a pointer that is not an allocated object (inside "
               "free heap space)";
    return fault_name(e);
}

static void free_in(struct arena *a, void *p, const char *fn)
{
    struct slot *s = &slots[a->slot];
    shim_lock(&s->lock);
    uintptr_t *tag = p;
    void *real = alias_base(a, p);
    if (real) {
        /* a later object at this address is not an alias, and a second
         * free of this one is told apart (bad_name) */
        tag[-2] = ALIAS_GONE ^ (uintptr_t)p;
        p = real;
    }
    _Atomic unsigned char *st = state_of(a, p);
    if (tc_on && block_aligned(p) &&
        (atomic_load_explicit(st, memory_order_relaxed) & TC_FREE)) {
        shim_unlock(&s->lock); /* in a cache: freed already */
        shim_fault(fn, fault_name(CATENA_EFREE), p);
        return;
    }
    size_t sz = track || trim_blocks ? catena_size(a->h, p) : 0;
    int e = catena_free(a->h, p);
    if (!e) {
        if (block_aligned(p))
            atomic_store_explicit(st, TC_GONE, memory_order_relaxed);
        if (track)
            s->live -= sz;
        trim_note_free(s, a, sz >> bshift);
    }
    const char *what = e ? bad_name(a, tag, e) : NULL;
    shim_unlock(&s->lock);
    if (e)
        shim_fault(fn, what, tag);
}

void small_free(void *p, const char *fn)
{
    struct arena *a = arena_owned(p);
    if (!a) {
        shim_fault(fn, fault_name(CATENA_EFOREIGN), p);
        return;
    }
    if (tc_on && block_aligned(p)) {
        _Atomic unsigned char *st = state_of(a, p);
        unsigned char v = atomic_load_explicit(st, memory_order_relaxed);
        if (v & TC_FREE) {
            shim_fault(fn, fault_name(CATENA_EFREE), p);
            return;
        }
        struct tcache *tc;
        if ((unsigned)v - 1u < TC_CLASSES && (tc = tc_get())) {
            if (!atomic_compare_exchange_strong_explicit(
                    st, &v, (unsigned char)(v | TC_FREE),
                    memory_order_relaxed, memory_order_relaxed)) {
                shim_fault(fn, fault_name(CATENA_EFREE), p); /* a race */
                return;
            }
            tc_put(tc, p, v);
            return;
        }
    }
    free_in(a, p, fn);
}

size_t small_size(const void *p, const char *fn)
{
    struct arena *a = arena_owned(p);
    size_t n = 0;
    int e = CATENA_EFOREIGN;
    const char *what = fault_name(e);
    if (a) {
        struct slot *s = &slots[a->slot];
        shim_lock(&s->lock);
        const void *real = alias_base(a, p);
        n = catena_size(a->h, real ? real : p);
        if (n && real)
            n -= (size_t)((const unsigned char *)p -
                          (const unsigned char *)real);
        e = n ? 0 : catena_last_error(a->h);
        if (tc_on && block_aligned(p) &&
            (atomic_load_explicit(state_of(a, p), memory_order_relaxed) &
             TC_FREE))
            n = 0, e = CATENA_EFREE; /* in a cache: freed */
        if (!n)
            what = bad_name(a, p, e);
        shim_unlock(&s->lock);
    }
    if (!n)
        shim_fault(fn, what, p);
    return n;
}

void *small_realloc_inplace(void *p, size_t n, const char *fn, bool *bad)
{
    struct arena *a = arena_owned(p);
    *bad = false;
    if (!a) {
        *bad = true;
        shim_fault(fn, fault_name(CATENA_EFOREIGN), p);
        return NULL;
    }
    struct slot *s = &slots[a->slot];
    shim_lock(&s->lock);
    if (alias_base(a, p)) { /* aligned: the caller moves it */
        shim_unlock(&s->lock);
        return NULL;
    }
    unsigned char v = 0;
    if (tc_on && block_aligned(p)) {
        v = atomic_load_explicit(state_of(a, p), memory_order_relaxed);
        if (v & TC_FREE) { /* in a cache: freed */
            shim_unlock(&s->lock);
            *bad = true;
            shim_fault(fn, fault_name(CATENA_EFREE), p);
            return NULL;
        }
    }
    size_t old = track || trim_blocks ? catena_size(a->h, p) : 0;
    void *q = catena_realloc_contig(a->h, p, n ? n : 1);
    int e = q ? 0 : catena_last_error(a->h);
    if (q && (track || trim_blocks)) {
        size_t now = catena_size(a->h, q);
        if (track)
            s->live += now - old;
        if (trim_blocks) {
            if (now >= old) {
                a->used += (now - old) >> bshift;
                if (a->used > a->mark)
                    a->mark = a->used;
            } else {
                trim_note_free(s, a, (old - now) >> bshift);
            }
        }
    }
    if (q && (unsigned)v - 1u < TC_CLASSES) {
        /* keep the state bytes right: the object may move */
        atomic_store_explicit(state_of(a, p), 0, memory_order_relaxed);
        size_t k = catena_size(a->h, q) >> bshift;
        if (k <= TC_CLASSES && block_aligned(q))
            atomic_store_explicit(state_of(a, q), (unsigned char)k,
                                  memory_order_relaxed);
    }
    if (q && q != p && block_aligned(p)) /* catena freed p */
        atomic_store_explicit(state_of(a, p), TC_GONE, memory_order_relaxed);
    *bad = e != 0 && e != CATENA_ENOMEM && e != CATENA_ENOCHAIN;
    const char *what = *bad ? bad_name(a, p, e) : NULL;
    shim_unlock(&s->lock);
    if (*bad)
        shim_fault(fn, what, p);
    return q;
}

/* ---- validation, fork, statistics -------------------------------------- */

/* catena_check's hook: keep its description of what is wrong. */
static void check_hook(void *ctx, catena_heap_t *h, int err, const void *p,
                       const char *where)
{
    (void)h, (void)err, (void)p;
    *(const char **)ctx = where;
}

/* Is bin b of k-block objects well linked?  Reads another thread's lists
 * while it may change them: *raced tells the caller to ignore the answer
 * (only "busy" moved).  *at: the object whose link is wrong. */
static bool bin_ok(const struct tc_bin *b, unsigned k, const void **at)
{
    const void *p = __atomic_load_n(&b->head, __ATOMIC_RELAXED);
    uint32_t n = __atomic_load_n(&b->n, __ATOMIC_RELAXED);
    for (uint32_t i = 0; i < n; i++) {
        if (!p || !tc_cached((uintptr_t)p, k))
            return false; /* *at: the object linking here (or the bin) */
        *at = p;
        p = (const void *)(__atomic_load_n((const uintptr_t *)p,
                                           __ATOMIC_RELAXED) ^
                           tc_mask(p));
    }
    return p == NULL;
}

/* Every cached object of every thread: its state byte says "cached, this
 * size" and its link leads on to the next; each list ends after n. */
static void tc_check(const char *fn, const char *when)
{
    shim_lock(&reg_lock);
    for (struct tcache *tc = reg_first; tc; tc = tc->next)
        for (unsigned i = 0; i < TC_CLASSES; i++) {
            unsigned g = atomic_load_explicit(&tc->busy, memory_order_acquire);
            const void *at = &tc->bin[i];
            bool ok = (g & 1) || bin_ok(&tc->bin[i], i + 1, &at);
            atomic_thread_fence(memory_order_acquire);
            if (!ok && g == atomic_load_explicit(&tc->busy,
                                                 memory_order_relaxed)) {
                shim_unlock(&reg_lock);
                shim_corrupt(fn, when, tc_overwritten, at);
            }
        }
    shim_unlock(&reg_lock);
}

void small_check(const char *fn, const char *when)
{
    if (tc_on)
        tc_check(fn, when);
    for (size_t i = 0; i < NSLOTS; i++) {
        shim_lock(&slots[i].lock);
        for (struct arena *a = slots[i].first; a; a = a->next) {
            const char *what = "heap metadata inconsistent";
            catena_set_hook(a->h, check_hook, &what);
            int e = catena_check(a->h);
            catena_set_hook(a->h, NULL, NULL);
            if (e) {
                shim_unlock(&slots[i].lock);
                shim_corrupt(fn, when, what, a);
            }
        }
        shim_unlock(&slots[i].lock);
    }
}

void small_lock_all(void)
{
    for (size_t i = 0; i < NSLOTS; i++)
        shim_lock(&slots[i].lock);
}

void small_unlock_all(bool child)
{
    for (size_t i = 0; i < NSLOTS; i++)
        child ? shim_lock_reset(&slots[i].lock) : shim_unlock(&slots[i].lock);
}

void small_lock_arenas(void) { shim_lock(&arena_lock); }

void small_unlock_arenas(bool child)
{
    child ? shim_lock_reset(&arena_lock) : shim_unlock(&arena_lock);
}

size_t small_live_bytes(void)
{
    size_t n = 0;
    for (size_t i = 0; i < NSLOTS; i++) /* racy on purpose: a report */
        n += *(volatile size_t *)&slots[i].live;
    return n;
}

void small_totals(struct small_totals *t)
{
    memset(t, 0, sizeof *t);
    for (size_t i = 0; i < NSLOTS; i++) {
        shim_lock(&slots[i].lock);
        for (struct arena *a = slots[i].first; a; a = a->next) {
            struct catena_stats st;
            catena_stats(a->h, &st);
            t->arenas++;
            t->blocks += st.total_blocks;
            t->free_blocks += st.free_blocks;
            t->used_blocks += st.used_blocks;
            t->objects += st.objects;
            t->free_runs += st.free_runs;
            if (st.largest_free_run > t->largest_run)
                t->largest_run = st.largest_free_run;
            /* Recover sqrt(sum r^2) from the per-heap metric so the
             * arenas combine into one figure. */
            uint64_t root = (uint64_t)(1000 - st.frag_permille) *
                            st.free_blocks / 1000;
            t->sum_run += st.free_blocks;
            t->sum_run_sq += root * root;
        }
        t->trims += slots[i].trims;
        t->trimmed += slots[i].trimmed;
        shim_unlock(&slots[i].lock);
    }
}
