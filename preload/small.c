/*
 * small.c - objects below the large threshold.
 *
 * One reservation of address space holds every arena, back to back, each
 * `asz` bytes: [struct arena | catena heap (control, table, blocks)].  So a
 * pointer's arena is (p - base) / asz, an O(1) lookup that also tells
 * foreign pointers apart.  Each arena is a catena heap with chaining off:
 * C programs need contiguous objects.
 *
 * Threads: arenas are grouped in NSLOTS slots, each with one lock; thread
 * t allocates from slot t % NSLOTS, and a free or realloc takes the lock
 * of the slot that owns the pointer's arena (cross-thread frees are just
 * frees under another slot's lock).  Slot NSLOTS is the shim's own
 * metadata heap.
 *
 * Aligned objects (alignment > B): allocate n + align bytes, return the
 * first aligned address q past the start p, and store {ALIAS ^ q, p} in
 * the 16 bytes below q.  q - p >= B >= 16 so they fit.  free(q) sees the
 * tag and frees p.
 */
#include "shim.h"

#include <errno.h>
#include <string.h>
#include <sys/mman.h>

#define NSLOTS 32
#define META NSLOTS
#define ARENA_MAGIC 0x61726e61u
#define ALIAS_TAG ((uintptr_t)0x5a17a11a5e7ca7e5u)
#define HDR 64 /* struct arena, rounded so the heap starts aligned */

struct arena {
    uint32_t magic, slot;
    catena_heap_t *h;
    struct arena *next; /* in its slot */
};

struct slot {
    shim_lock_t lock;
    struct arena *first, *cur;
    size_t live; /* bytes of live objects (when tracked) */
} __attribute__((aligned(64)));

static struct slot slots[NSLOTS + 1];
static unsigned char *base;
static size_t reserved, asz, bsize;
static atomic_size_t narenas;
static shim_lock_t arena_lock;
static bool track; /* keep slot->live (stats, fixed arena) */

_Static_assert(sizeof(struct arena) <= HDR, "arena header fits");

bool small_init(void)
{
    bsize = catena_block_size();
    /* 32 MiB arenas: the table (asz/2B bytes, written by catena_init) is
     * 512 KiB of RSS per arena, and 2^20 blocks index comfortably.  Builds
     * with 16-bit indexes cap a heap at 65534 blocks: use less. */
    asz = (size_t)32 << 20;
    while (asz > 1024 * 1024 &&
           catena_arena_blocks(HDR, asz - HDR) > catena_max_blocks())
        asz /= 2;
    if (shim_opt.large > asz / 4)
        shim_opt.large = asz / 4;
    /* As much address space as the system lets us reserve (PROT_NONE and
     * MAP_NORESERVE cost nothing until an arena is opened). */
    size_t want = sizeof(void *) == 8 ? (size_t)1 << 40 : (size_t)1 << 30;
    for (; want >= 8 * asz; want /= 2) {
        void *p = mmap(NULL, want, PROT_NONE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (p != MAP_FAILED) {
            base = p;
            reserved = want;
            break;
        }
    }
    track = shim_opt.stats || shim_opt.arena;
    return base != NULL;
}

bool small_owns(const void *p)
{
    return (const unsigned char *)p >= base &&
           (const unsigned char *)p < base + reserved;
}

static struct arena *arena_of(const void *p)
{
    size_t i = (size_t)((const unsigned char *)p - base) / asz;
    if (i >= atomic_load_explicit(&narenas, memory_order_acquire))
        return NULL;
    struct arena *a = (struct arena *)(void *)(base + i * asz);
    return a->magic == ARENA_MAGIC ? a : NULL;
}

/* A fresh arena for slot s (its lock held). */
static struct arena *new_arena(struct slot *s)
{
    shim_lock(&arena_lock);
    size_t i = atomic_load_explicit(&narenas, memory_order_relaxed);
    struct arena *a = NULL;
    catena_heap_t *h;
    unsigned char *at = base + i * asz;
    if ((i + 1) * asz <= reserved &&
        mprotect(at, asz, PROT_READ | PROT_WRITE) == 0 &&
        catena_init(at + HDR, asz - HDR, &h) == CATENA_OK) {
        catena_set_chaining(h, false);
        a = (struct arena *)(void *)at;
        a->magic = ARENA_MAGIC;
        a->slot = (uint32_t)(s - slots);
        a->h = h;
        a->next = s->first;
        s->first = a;
        atomic_store_explicit(&narenas, i + 1, memory_order_release);
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
    return p;
}

void *small_alloc(size_t n, unsigned flags)
{
    struct slot *s = &slots[shim_tid() % NSLOTS];
    shim_lock(&s->lock);
    void *p = alloc_in(s, n ? n : 1, flags);
    shim_unlock(&s->lock);
    return p;
}

void *meta_alloc(size_t n)
{
    shim_lock(&slots[META].lock);
    void *p = alloc_in(&slots[META], n, 0);
    shim_unlock(&slots[META].lock);
    return p;
}

void *small_memalign(size_t align, size_t n)
{
    if (align <= bsize)
        return small_alloc(n, 0);
    unsigned char *p = small_alloc(n + align, 0);
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
static void *alias_base(const struct arena *a, const void *q)
{
    const uintptr_t *tag = q;
    if ((uintptr_t)q % (2 * bsize) || tag[-2] != (ALIAS_TAG ^ (uintptr_t)q))
        return NULL;
    void *p = (void *)tag[-1];
    if (p >= q || arena_of(p) != a)
        return NULL;
    return p;
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

static void free_in(struct arena *a, void *p, const char *fn)
{
    struct slot *s = &slots[a->slot];
    shim_lock(&s->lock);
    uintptr_t *tag = p;
    void *real = alias_base(a, p);
    if (real) {
        tag[-2] = 0; /* a later object at this address is not an alias */
        p = real;
    }
    size_t sz = track ? catena_size(a->h, p) : 0;
    int e = catena_free(a->h, p);
    if (!e)
        s->live -= sz;
    shim_unlock(&s->lock);
    if (e)
        shim_fault(fn, fault_name(e), p);
}

void small_free(void *p, const char *fn)
{
    struct arena *a = arena_of(p);
    if (!a) {
        shim_fault(fn, fault_name(CATENA_EFOREIGN), p);
        return;
    }
    free_in(a, p, fn);
}

void meta_free(void *p)
{
    if (p)
        free_in(arena_of(p), p, "meta_free");
}

size_t small_size(const void *p, const char *fn)
{
    struct arena *a = arena_of(p);
    size_t n = 0;
    int e = CATENA_EFOREIGN;
    if (a) {
        struct slot *s = &slots[a->slot];
        shim_lock(&s->lock);
        const void *real = alias_base(a, p);
        n = catena_size(a->h, real ? real : p);
        if (n && real)
            n -= (size_t)((const unsigned char *)p -
                          (const unsigned char *)real);
        e = n ? 0 : catena_last_error(a->h);
        shim_unlock(&s->lock);
    }
    if (!n)
        shim_fault(fn, fault_name(e), p);
    return n;
}

void *small_realloc_inplace(void *p, size_t n, const char *fn, bool *bad)
{
    struct arena *a = arena_of(p);
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
    size_t old = track ? catena_size(a->h, p) : 0;
    void *q = catena_realloc_contig(a->h, p, n ? n : 1);
    int e = q ? 0 : catena_last_error(a->h);
    if (q && track)
        s->live += catena_size(a->h, q) - old;
    shim_unlock(&s->lock);
    if (e != 0 && e != CATENA_ENOMEM && e != CATENA_ENOCHAIN) {
        *bad = true;
        shim_fault(fn, fault_name(e), p);
    }
    return q;
}

/* ---- validation, fork, statistics -------------------------------------- */

static void check_fail(catena_heap_t *h)
{
    (void)h;
    shim_die("CATENA_CHECK: heap validation failed");
}

void small_check(void)
{
    for (size_t i = 0; i <= NSLOTS; i++) {
        shim_lock(&slots[i].lock);
        for (struct arena *a = slots[i].first; a; a = a->next)
            if (catena_check(a->h))
                check_fail(a->h);
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

void small_lock_meta(void)
{
    shim_lock(&slots[META].lock);
    shim_lock(&arena_lock);
}

void small_unlock_meta(bool child)
{
    if (child) {
        shim_lock_reset(&arena_lock);
        shim_lock_reset(&slots[META].lock);
    } else {
        shim_unlock(&arena_lock);
        shim_unlock(&slots[META].lock);
    }
}

size_t small_live_bytes(void)
{
    size_t n = 0;
    for (size_t i = 0; i <= NSLOTS; i++) /* racy on purpose: a report */
        n += *(volatile size_t *)&slots[i].live;
    return n;
}

void small_totals(struct small_totals *t)
{
    memset(t, 0, sizeof *t);
    for (size_t i = 0; i <= NSLOTS; i++) {
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
        shim_unlock(&slots[i].lock);
    }
}
