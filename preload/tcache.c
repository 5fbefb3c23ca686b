/*
 * tcache.c - the per-thread caches (CATENA_TCACHE), above arena.c (which
 * never calls it): their slow paths, registry, fork handlers and walk.
 *
 * Per-thread caches (CATENA_TCACHE, on by default): a thread keeps freed
 * objects of up to TC_CLASSES blocks in LIFO stacks by size in blocks
 * (arrays of pointers in the cache's own mapping) and hands them out
 * again without a lock or a catena call; a stack that grows past its
 * bound gives half back (under the owning slots' locks), an empty one is
 * refilled with a few objects under one lock.  Cached objects stay
 * allocated in catena's view (their state bytes: arena.h).
 *
 * Depots: what a stack that overflows gives back does not go to catena
 * one object at a time (a lock-held catena_free each, ~250 instructions)
 * but, while there is room, into the depot of the object's slot and size:
 * a list under the slot's lock, linked through the objects, whose objects
 * stay cached (state k | TC_FREE).  A refill takes up to half a stack
 * from its slot's depot before it asks catena: a producer/consumer pair
 * (every free another thread's) then moves objects in batches, a few
 * instructions each.  A depot holds at most one stack's bound (tc_max)
 * of objects, and a slot's depots together at most DEPOT_BYTES of them:
 * that much RSS per slot in use at most, memory catena cannot reuse
 * for another size meanwhile.  Fork and the exit report give caches
 * back to catena directly, and an allocation that finds no memory
 * empties every depot and orphan first (small.c).
 *
 * A cached object's first word is what a bug in the program (a write
 * after free, an overflow of the object before it) overwrites first.  In
 * a thread's stack it holds a seal (the per-process secret), checked when
 * the object leaves the stack; in a depot list (and in the lists the
 * flushes pass on) it holds a link masked with the secret and the word's
 * own address (tc_link), and every read (tc_next) checks that the link
 * decodes to a block-aligned address in an arena whose state byte says
 * "cached, this size" before anything follows it.  A broken seal or link
 * is reported (one line, as a bad free) instead of crashing later.
 * At thread exit (a pthread key destructor) a cache is cut to a quarter
 * and kept for the next thread of its slot (orphan, below) or, when its
 * slot has one already, flushed; in a forked child, the caches of the
 * threads that did not survive the fork are flushed (unless the fork
 * caught one mid-update: then it is leaked).
 */
#include "tcache.h"

#include <pthread.h>
#include <string.h>

__thread struct tcache *my_tc __attribute__((tls_model("initial-exec")));
__thread struct tcache *my_hot __attribute__((tls_model("initial-exec")));
static atomic_uint slot_threads[NSLOTS];

/* ---- per-thread caches ------------------------------------------------- */

static pthread_key_t tc_key;
static atomic_int tc_key_state; /* 0 none, 1 made, 2 cannot */
static shim_lock_t tc_key_lock, reg_lock;
static struct tcache *reg_first;
/* The cache of a thread that exited, per slot, kept (registered, its
 * stacks cut to a quarter of their bounds) for the next thread that
 * starts in that slot: programs that create threads over and over
 * (larson, thread pools) then neither flush every exiting thread's
 * objects to catena nor refill every new thread's from it (~250
 * instructions per object each way).  At most one per slot, under
 * reg_lock; emptied by tc_depots_flush (out of memory, exit report) and
 * in a forked child. */
static struct tcache *orphan[NSLOTS];

const char tc_overwritten[] =
    "freed object overwritten (use after free, or an overflow of the "
    "object before it)";
const char tc_twice[] =
    "double free (two threads freed this object at the same moment)";

/* The bound of a list of k-block objects (index k - 1): TC_BIN_BYTES of
 * them, clamped to TC_BIN_MIN..TC_BIN_MAX.  Set with the pthread key,
 * before any thread has a cache. */
static uint32_t tc_max[TC_CLASSES];
/* The bytes of one cache's mapping: the record and its stacks. */
static size_t tc_bytes;
/* The depots (slot, size): each under its slot's lock, as is the
 * count of the blocks in a slot's depots. */
static struct tc_list depot[NSLOTS][TC_CLASSES];
static uint32_t depot_blocks[NSLOTS];

static void tc_del(struct tcache *tc) { shim_unmap(tc, tc_bytes); }

/* Keep cached object p of arena a in its slot's depot (the slot's lock
 * held); false: that depot is full. */
static bool depot_put(struct arena *a, void *p)
{
    unsigned k = atomic_load_explicit(state_of(a, p), memory_order_relaxed) &
                 (unsigned)~TC_FREE;
    struct tc_list *d = &depot[a->slot][k - 1];
    if (d->n >= tc_max[k - 1] ||
        depot_blocks[a->slot] + k > (DEPOT_BYTES >> TC_BSHIFT))
        return false;
    depot_blocks[a->slot] += k;
    tc_list_push(d, p);
    return true;
}

/* Objects on their way back to catena, gathered per arena so that one
 * catena_free_many takes them (adjacent ones merge: one index operation
 * per group, not per object), under their slot's lock. */
#define GIVE_BATCH 64
struct give {
    struct slot *s;
    struct arena *a;
    size_t n;
    void *objs[GIVE_BATCH];
};

static void give_flush(struct give *g)
{
    if (g->n)
        give_back_many(g->s, g->a, g->objs, g->n);
    g->n = 0;
}

/* Add p of arena a (slot s, whose lock is held) to the batch. */
static void give_add(struct give *g, struct slot *s, struct arena *a, void *p)
{
    if (g->n && (g->a != a || g->n == GIVE_BATCH))
        give_flush(g);
    g->s = s;
    g->a = a;
    g->objs[g->n++] = p;
}

/* Give a detached list of cached objects back, taking each owning slot's
 * lock once per run of objects from the same slot: to the slot's depot
 * while it has room if `keep`, else to catena (in batches). */
void flush_list(void *list, bool keep, const char *fn)
{
    struct slot *held = NULL;
    struct give g = {.n = 0};
    while (list) {
        void *p = list;
        list = tc_next(p, 0, fn);
        struct arena *a = arena_at(p);
        struct slot *s = &slots[a->slot];
        if (s != held) {
            if (held) {
                give_flush(&g);
                shim_unlock(&held->lock);
            }
            shim_lock(&s->lock);
            held = s;
        }
        if (!keep || !depot_put(a, p))
            give_add(&g, s, a, p);
    }
    if (held) {
        give_flush(&g);
        shim_unlock(&held->lock);
    }
}

/* Detach the newest objects of depot list d (of k-block objects) until
 * it holds `keep` (or its list ends early: a link was overwritten). */
static void *list_cut(struct tc_list *d, unsigned k, uint32_t keep,
                      const char *fn)
{
    void *list = NULL;
    while (d->n > keep && d->head) {
        void *p = d->head;
        d->head = tc_next(p, k, fn);
        d->n = d->head ? d->n - 1 : 0;
        tc_link(p, list);
        list = p;
    }
    return list;
}

static void tc_orphans_flush(void);

void tc_depots_flush(void)
{
    tc_orphans_flush();
    for (unsigned i = 0; i < NSLOTS; i++) {
        struct slot *s = &slots[i];
        shim_lock(&s->lock);
        depot_blocks[i] = 0; /* every list cut below */
        struct give g = {.n = 0};
        for (unsigned k = 1; k <= TC_CLASSES; k++) {
            void *l = list_cut(&depot[i][k - 1], k, 0, "malloc");
            while (l) {
                void *p = l;
                l = tc_next(p, k, "malloc");
                give_add(&g, s, arena_at(p), p);
            }
        }
        give_flush(&g);
        shim_unlock(&s->lock);
    }
}

/* The count drops first: a fork caught in the loop leaks the objects
 * already cut instead of flushing them twice. */
void *bin_cut(struct tc_bin *b, unsigned k, uint32_t keep, const char *fn)
{
    void *list = NULL;
    uint32_t n = b->n;
    if (n <= keep)
        return NULL;
    __atomic_store_n(&b->n, keep, __ATOMIC_RELEASE);
    while (n > keep) {
        void *p = b->stack[--n];
        if (__builtin_expect(!tc_whole(p, k), 0)) {
            shim_fault(fn, tc_sealed(p) ? tc_twice : tc_overwritten, p);
            continue;
        }
        tc_link(p, list);
        list = p;
    }
    return list;
}

/* Cut every stack of tc down to its bound / div (div 0: to nothing),
 * and give what was cut back (to the depots first if `keep`). */
static void cut_all(struct tcache *tc, uint32_t div, bool keep,
                    const char *fn)
{
    void *all = NULL;
    tc_busy(tc);
    for (unsigned i = 0; i < TC_CLASSES; i++) {
        struct tc_bin *b = &tc->bin[i];
        void *l = bin_cut(b, i + 1, div ? b->max / div : 0, fn);
        while (l) { /* splice */
            void *p = l;
            l = tc_next(p, i + 1, fn);
            tc_link(p, all);
            all = p;
        }
    }
    tc_idle(tc);
    flush_list(all, keep, fn);
}

void tc_flush_all(struct tcache *tc, const char *fn)
{
    cut_all(tc, 0, false, fn);
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

/* Flush a cache that no thread owns any more and unmap it (it is out of
 * the registry and the orphans). */
static void tc_retire(struct tcache *tc, const char *fn)
{
    tc_flush_all(tc, fn);
    tc_del(tc);
}

static void tc_destroy(void *v)
{
    struct tcache *tc = v;
    my_tc = TC_DEAD; /* later calls of this thread: the locked path */
    my_hot = NULL;
    if (!tc)
        return;
    /* an orphan holds at most a quarter of the bounds: 256 KiB of
     * objects (to the depots while they have room) */
    cut_all(tc, 4, true, "free");
    shim_lock(&reg_lock);
    bool keep = orphan[tc->slot] == NULL;
    if (keep)
        orphan[tc->slot] = tc; /* stays registered: CATENA_CHECK, fork */
    else
        reg_unlink(tc);
    shim_unlock(&reg_lock);
    atomic_fetch_sub(&slot_threads[tc->slot], 1);
    if (!keep)
        tc_retire(tc, "free");
}

/* Every orphaned cache back to catena. */
static void tc_orphans_flush(void)
{
    for (unsigned i = 0; i < NSLOTS; i++) {
        shim_lock(&reg_lock);
        struct tcache *tc = orphan[i];
        orphan[i] = NULL;
        if (tc)
            reg_unlink(tc);
        shim_unlock(&reg_lock);
        if (tc)
            tc_retire(tc, "malloc");
    }
}

/* A fresh cache for slot `slot`, registered; NULL: no memory. */
static struct tcache *tc_new(unsigned slot)
{
    struct tcache *tc = shim_map(tc_bytes);
    if (!tc)
        return NULL;
    memset(tc, 0, sizeof *tc);
    void **stack = (void **)(tc + 1);
    for (unsigned i = 0; i < TC_CLASSES; i++) {
        tc->bin[i].max = tc_max[i];
        tc->bin[i].stack = stack;
        stack += tc_max[i] + 1;
    }
    tc->slot = slot;
    shim_lock(&reg_lock);
    tc->next = reg_first;
    if (reg_first)
        reg_first->prev = tc;
    reg_first = tc;
    shim_unlock(&reg_lock);
    return tc;
}

/* The calling thread's cache, made on first use; NULL: none. */
struct tcache *tc_get_slow(void)
{
    if (!tc_on)
        return NULL;
    my_tc = TC_DEAD; /* anything below that allocates: the locked path */
    if (atomic_load(&tc_key_state) == 0) {
        shim_lock(&tc_key_lock);
        if (atomic_load(&tc_key_state) == 0) {
            size_t stacks = 0;
            for (unsigned i = 0; i < TC_CLASSES; i++) {
                size_t m = TC_BIN_BYTES / ((i + 1) * bsize);
                tc_max[i] = m < TC_BIN_MIN   ? TC_BIN_MIN
                            : m > TC_BIN_MAX ? TC_BIN_MAX
                                             : (uint32_t)m;
                stacks += tc_max[i] + 1;
            }
            tc_bytes = (sizeof(struct tcache) + stacks * sizeof(void *) +
                        shim_page - 1) & ~(shim_page - 1);
            atomic_store(&tc_key_state,
                         pthread_key_create(&tc_key, tc_destroy) == 0 ? 1
                                                                        : 2);
        }
        shim_unlock(&tc_key_lock);
    }
    if (atomic_load(&tc_key_state) != 1)
        return NULL;
    /* the least used slot: threads that come and go do not keep opening
     * arenas in new slots */
    unsigned best = 0, bn = UINT32_MAX;
    for (unsigned i = 0; i < NSLOTS; i++) {
        unsigned c = atomic_load_explicit(&slot_threads[i],
                                          memory_order_relaxed);
        if (c < bn)
            bn = c, best = i;
    }
    shim_lock(&reg_lock);
    struct tcache *tc = orphan[best]; /* adopt an exited thread's */
    orphan[best] = NULL;
    shim_unlock(&reg_lock);
    if (!tc && !(tc = tc_new(best)))
        return NULL;
    atomic_fetch_add(&slot_threads[best], 1);
    if (pthread_setspecific(tc_key, tc) != 0) {
        atomic_fetch_sub(&slot_threads[best], 1);
        shim_lock(&reg_lock);
        reg_unlink(tc);
        shim_unlock(&reg_lock);
        tc_retire(tc, "malloc");
        return NULL;
    }
    my_tc = tc;
    if (!shim_opt.check)
        my_hot = tc;
    return tc;
}

/* A miss with objects in the slot's depot (its lock held): one returned
 * (live), up to half a list more moved into the cache, all under the
 * lock (a fork never sees them in neither place). */
static void *refill_depot(struct tcache *tc, struct tc_list *d, unsigned k,
                          unsigned flags)
{
    struct tc_bin *b = &tc->bin[k - 1];
    uint32_t want = b->max / 2 + 1;
    uint32_t n0 = d->n;
    void *l = list_cut(d, k, n0 > want ? n0 - want : 0, "malloc");
    depot_blocks[tc->slot] -= (n0 - d->n) * k; /* a cut list: all of it */
    if (!l)
        return NULL;
    void *p = l;
    l = tc_next(p, k, "malloc");
    atomic_store_explicit(state_of(arena_at(p), p), (unsigned char)k,
                          memory_order_relaxed);
    tc_busy(tc);
    while (l) {
        void *q = l;
        l = tc_next(q, k, "malloc");
        tc_push(b, q);
    }
    tc_idle(tc);
    if (flags & CATENA_ZERO)
        memset(p, 0, (size_t)k << bshift);
    return p;
}

/* A miss: k-block objects from the slot's depot, else from catena, one
 * returned, up to TC_REFILL - 1 more into the cache.  From catena in one
 * call (catena_alloc_many: adjacent objects cut from one free run, one
 * index operation for all of them where the run is there). */
void *tc_refill(struct tcache *tc, unsigned k, unsigned flags)
{
    struct slot *s = &slots[tc->slot];
    struct tc_bin *b = &tc->bin[k - 1];
    size_t n = (size_t)k << bshift;
    void *got[TC_REFILL];
    shim_lock(&s->lock);
    struct tc_list *d = &depot[tc->slot][k - 1];
    void *p = d->n ? refill_depot(tc, d, k, flags) : NULL;
    if (p) {
        shim_unlock(&s->lock);
        return p;
    }
    size_t want = 1 + (b->max / 2 < TC_REFILL - 1 ? b->max / 2
                                                   : TC_REFILL - 1);
    size_t m = alloc_many_in(s, n, got, want), ne = m;
    for (size_t j = 0; j < m; j++) {
        if (!block_aligned(got[j])) { /* not expected: never cache them */
            for (size_t i = j ? j : 1; i < m; i++)
                give_back(s, arena_of(got[i]), got[i]);
            ne = j ? j : 1; /* the first is still returned, uncached */
            break;
        }
        atomic_store_explicit(state_of(arena_at(got[j]), got[j]),
                              (unsigned char)(j ? k | TC_FREE : k),
                              memory_order_relaxed);
    }
    shim_unlock(&s->lock);
    if (!ne)
        return NULL;
    p = got[0];
    if (ne > 1) {
        tc_busy(tc);
        while (ne > 1) /* lowest address on top */
            tc_push(b, got[--ne]);
        tc_idle(tc);
    }
    if (flags & CATENA_ZERO)
        memset(p, 0, n);
    return p;
}

void tcache_flush_mine(void)
{
    struct tcache *tc = my_tc;
    if (tc && tc != TC_DEAD)
        tc_flush_all(tc, "free");
    if (tc_on)
        tc_depots_flush();
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
    for (unsigned i = 0; i < NSLOTS; i++) {
        atomic_store(&slot_threads[i], 0);
        orphan[i] = NULL; /* registered: flushed below */
    }
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

/* ---- validation (CATENA_CHECK) ------------------------------------------ */

/* Is every object stacked in bin b a cached k-block object, sealed? */
static bool bin_ok(const struct tc_bin *b, unsigned k, const void **at)
{
    uint32_t n = __atomic_load_n(&b->n, __ATOMIC_RELAXED);
    for (uint32_t i = 0; i < n && i <= b->max; i++) {
        const void *p = __atomic_load_n(&b->stack[i], __ATOMIC_RELAXED);
        *at = p;
        if (!p || !tc_cached((uintptr_t)p, k) ||
            __atomic_load_n((const uintptr_t *)p, __ATOMIC_RELAXED) !=
                tc_secret)
            return false;
    }
    return true;
}

static bool list_ok(const struct tc_list *b, unsigned k, const void **at)
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
void tc_check(const char *fn, const char *when)
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
    for (unsigned i = 0; i < NSLOTS; i++) {
        shim_lock(&slots[i].lock);
        for (unsigned k = 1; k <= TC_CLASSES; k++) {
            const void *at = &depot[i][k - 1];
            if (!list_ok(&depot[i][k - 1], k, &at)) {
                shim_unlock(&slots[i].lock);
                shim_corrupt(fn, when, tc_overwritten, at);
            }
        }
        shim_unlock(&slots[i].lock);
    }
}

