/*
 * arena.c - the arenas: mapping them, the locked path into their catena
 * heaps, naming bad frees, aligned aliases, in-place realloc, totals.
 * Calls trim.c and geometry.c, never the caches above it.
 *
 * Aligned objects (alignment > B): allocate n + align bytes, return the
 * first aligned address q past the start p, and store {ALIAS ^ q, p} in
 * the 16 bytes below q.  q - p >= B >= 16 so they fit.  free(q) sees the
 * tag and frees p.
 */
#include "arena.h"

#include <errno.h>
#include <string.h>
#include <sys/mman.h>

#ifndef MAP_FIXED_NOREPLACE
#define MAP_FIXED_NOREPLACE 0x100000
#endif

struct slot slots[NSLOTS];
static unsigned char *last_arena; /* the latest arena (arena_lock) */
static shim_lock_t arena_lock;

bool small_owns(const void *p) { return arena_bit((uintptr_t)p); }

/* The arena of any pointer, or NULL. */
struct arena *arena_of(const void *p)
{
    return small_owns(p) ? arena_owned(p) : NULL;
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
        a->sbias = (uintptr_t)st - ((uintptr_t)at >> TC_BSHIFT);
        trim_start(a);
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

/* An allocation in arena a.  A refusal with CATENA_ECORRUPT is not a full
 * arena: lib/ found a free run's header overwritten (an overflow out of the
 * object before it, or a write after free) and poisoned the heap rather
 * than follow its links; that is the program's bug, reported like one. */
static void *alloc_at(struct arena *a, size_t n, unsigned flags)
{
    void *p = catena_alloc_flags(a->h, n, flags);
    if (!p && catena_last_error(a->h) == CATENA_ECORRUPT)
        shim_fault("malloc", "heap metadata corrupt (a freed object's header "
                             "was overwritten: an overflow or a write after "
                             "free) in the arena at", a);
    return p;
}

void *alloc_in(struct slot *s, size_t n, unsigned flags)
{
    void *p = NULL;
    if (s->cur)
        p = alloc_at(s->cur, n, flags);
    for (struct arena *a = s->first; !p && a; a = a->next)
        if (a != s->cur && (p = alloc_at(a, n, flags)))
            s->cur = a;
    if (!p) {
        struct arena *a = new_arena(s);
        if (a && (p = alloc_at(a, n, flags)))
            s->cur = a;
    }
    if (p && track)
        s->live += (n + bsize - 1) / bsize * bsize;
    if (p) /* catena takes exactly that many blocks */
        trim_note_alloc(arena_at(p), (n + bsize - 1) >> bshift);
    return p;
}

/* Up to count objects of n bytes in arena a (catena_alloc_many: one
 * index operation per free run they are cut from); how many. */
static size_t alloc_many_at(struct slot *s, struct arena *a, size_t n,
                            void **out, size_t count)
{
    size_t got = catena_alloc_many(a->h, n, out, count);
    if (!got && catena_last_error(a->h) == CATENA_ECORRUPT)
        shim_fault("malloc", "heap metadata corrupt (a freed object's header "
                             "was overwritten: an overflow or a write after "
                             "free) in the arena at", a);
    size_t k = (n + bsize - 1) >> bshift;
    if (got && track)
        s->live += got * (k << bshift);
    if (got)
        trim_note_alloc(a, got * k);
    return got;
}

size_t alloc_many_in(struct slot *s, size_t n, void **out, size_t count)
{
    size_t got = s->cur ? alloc_many_at(s, s->cur, n, out, count) : 0;
    if (got)
        return got;
    /* the current arena has none: one object the way alloc_in finds it
     * (the other arenas, a new one), then the rest where it came from */
    if (!(out[0] = alloc_in(s, n, 0)))
        return 0;
    if (count > 1 && s->cur == arena_at(out[0]))
        return 1 + alloc_many_at(s, s->cur, n, out + 1, count - 1);
    return 1;
}

/* Give a cached object back to catena (its slot's lock held): its state
 * byte becomes TC_GONE first. */
void give_back(struct slot *s, struct arena *a, void *p)
{
    atomic_store_explicit(state_of(a, p), TC_GONE, memory_order_relaxed);
    size_t f0 = catena_free_blocks(a->h);
    int e = catena_free(a->h, p);
    if (e)
        shim_die("tcache: a cached object was not allocated");
    /* what the free gave back, read from catena's counter in O(1):
     * measuring the object first (catena_size) scans its run */
    size_t sz = (catena_free_blocks(a->h) - f0) << bshift;
    if (track)
        s->live -= sz;
    trim_note_free(s, a, sz >> bshift);
}

void give_back_many(struct slot *s, struct arena *a, void **objs, size_t n)
{
    for (size_t j = 0; j < n; j++)
        atomic_store_explicit(state_of(a, objs[j]), TC_GONE,
                              memory_order_relaxed);
    size_t f0 = catena_free_blocks(a->h);
    if (catena_free_many(a->h, objs, n))
        shim_die("tcache: a cached object was not allocated");
    size_t sz = (catena_free_blocks(a->h) - f0) << bshift;
    if (track)
        s->live -= sz;
    trim_note_free(s, a, sz >> bshift);
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

const char *fault_name(int e)
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

void free_in(struct arena *a, void *p, const char *fn)
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
    size_t f0 = catena_free_blocks(a->h);
    int e = catena_free(a->h, p);
    size_t sz = (catena_free_blocks(a->h) - f0) << bshift;
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
    size_t f0 = catena_free_blocks(a->h);
    void *q = catena_realloc_contig(a->h, p, n ? n : 1);
    int e = q ? 0 : catena_last_error(a->h);
    if (q) { /* the blocks it took (or gave back), from catena's counter */
        size_t f1 = catena_free_blocks(a->h);
        if (track)
            s->live += (f0 - f1) << bshift; /* modulo 2^n if it shrank */
        if (f1 <= f0) {
            trim_note_alloc(a, f0 - f1);
        } else {
            trim_note_free(s, a, f1 - f0);
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
        t->madvises += slots[i].madvises;
        shim_unlock(&slots[i].lock);
    }
}
