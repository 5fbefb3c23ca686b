/*
 * large.c - objects at or above the large threshold.
 *
 * A large object is private anonymous memory: one mmap of its pages, in
 * one contiguous virtual range, exactly what glibc gives a program for
 * an mmap'd chunk.  So it is ordinary process memory: no descriptor, no
 * file-size limit, copy-on-write at fork (the kernel's, no copy and no
 * stall), madvise as under glibc (MADV_DONTNEED zeroes, MADV_FREE,
 * MADV_WIPEONFORK work).
 *
 * What stays catena's: the object is a chain of physical pages (the
 * kernel's) behind one contiguous virtual range, and the physical pages
 * never move or get copied when it grows.  realloc maps new pages right
 * after the object when that range is free (MAP_FIXED_NOREPLACE); else
 * it moves the existing pages to a new range with mremap — the page
 * table entries move, the bytes do not — and maps the new pages after
 * them.  A fixed pool (CATENA_ARENA) is a page budget: an allocation
 * fails iff fewer pages are left than it needs, wherever the freed ones
 * were (the kernel's pages cannot fragment for a virtual range).
 *
 * The table (address -> pages) and the page counts have one lock; system
 * calls run outside it.
 */
#include "shim.h"

#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#ifndef MAP_FIXED_NOREPLACE
#define MAP_FIXED_NOREPLACE 0x100000
#endif
#ifndef MREMAP_FIXED
#define MREMAP_FIXED 2
#endif

static shim_lock_t lock;
static size_t cap_pages;      /* CATENA_ARENA in pages; SIZE_MAX: none */
static size_t used, peak;     /* pages of live objects */
static size_t moves;          /* reallocs that moved pages (mremap) */
static uint64_t move_seq;     /* marks an entry whose pages may move */
static struct shim_amap objs; /* address -> pages (a) */
static atomic_size_t live_at_enomem;
atomic_size_t shim_enomem_count SHIM_HIDDEN;

static void note_enomem_locked(void);

bool large_init(void)
{
    size_t ps = shim_page;
    cap_pages = shim_opt.arena ? (shim_opt.arena + ps - 1) / ps : SIZE_MAX;
    return true;
}

/* ---- the page budget ------------------------------------------------------ */

/* Take n pages from the budget (lock held); false: too few are left. */
static bool take_pages(size_t n)
{
    if (cap_pages - used < n) {
        note_enomem_locked();
        return false;
    }
    used += n;
    if (used > peak)
        peak = used;
    return true;
}

static void give_pages(size_t n)
{
    shim_lock(&lock);
    used -= n;
    shim_unlock(&lock);
}

static size_t pages_of(size_t n)
{
    return n / shim_page + (n % shim_page != 0);
}

/* ---- mappings ------------------------------------------------------------- */

/* Move the pages of [v, v + len) to w (a range of ours, len bytes or
 * more, that they replace).  The range may span several mappings (the
 * program may have mprotect'ed or madvise'd part of it, which splits a
 * mapping, and mremap moves one mapping at a time): a piece that fails
 * is halved until it lies in one mapping.  O(mappings x log pages) calls.
 * false when the kernel refuses a single page or fails otherwise (e.g.
 * vm.max_map_count): the pieces moved so far are at w, the rest at v. */
static bool move_pages(unsigned char *v, unsigned char *w, size_t len)
{
    size_t off = 0;
    while (off < len) {
        size_t n = len - off;
        while (mremap(v + off, n, n, MREMAP_MAYMOVE | MREMAP_FIXED,
                      w + off) == MAP_FAILED) {
            if (errno != EFAULT || n == shim_page)
                return false;
            n = (n / 2 + shim_page - 1) & ~(shim_page - 1);
        }
        off += n;
    }
    return true;
}

/* Grow the mapping at v from old to len bytes without copying; returns
 * its address (v, or a new one), NULL when out of address space. */
static unsigned char *grow_mapping(unsigned char *v, size_t old, size_t len)
{
    /* In place: new pages right after it, if that range is free. */
    void *r = mmap(v + old, len - old, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
    if (r == v + old)
        return v;
    if (r != MAP_FAILED) /* a kernel without MAP_FIXED_NOREPLACE */
        munmap(r, len - old);
    /* Elsewhere: one mremap when the object is one mapping... */
    r = mremap(v, old, len, MREMAP_MAYMOVE);
    if (r != MAP_FAILED)
        return r;
    /* ...else a fresh range (its tail is the new pages) and the old
     * pages moved over its head. */
    unsigned char *w = shim_map_aligned(len, shim_page, false);
    if (!w)
        return NULL;
    /* Half an object in each range cannot be given back to the program,
     * and copying is what this allocator does not do: stop loudly. */
    if (!move_pages(v, w, old))
        shim_die("realloc: the kernel refused to move a large object's pages");
    return w;
}

/* ---- the table ------------------------------------------------------------ */

void *large_alloc(size_t n, size_t align)
{
    size_t np = pages_of(n ? n : 1);
    if (np > SIZE_MAX / shim_page / 2)
        return NULL;
    shim_lock(&lock);
    bool ok = take_pages(np);
    shim_unlock(&lock);
    if (!ok)
        return NULL;
    unsigned char *v = shim_map_aligned(np * shim_page, align, false);
    if (v) {
        shim_lock(&lock);
        ok = amap_put(&objs, (uintptr_t)v, np, 0);
        shim_unlock(&lock);
        if (ok)
            return v;
        munmap(v, np * shim_page);
    }
    give_pages(np);
    return NULL;
}

int large_free(void *p)
{
    uint64_t np;
    shim_lock(&lock);
    if (!amap_del(&objs, (uintptr_t)p, &np, NULL)) {
        shim_unlock(&lock);
        return 0;
    }
    used -= np;
    shim_unlock(&lock);
    munmap(p, np * shim_page);
    return 1;
}

size_t large_size(const void *p)
{
    shim_lock(&lock);
    struct shim_map_ent *e = amap_get(&objs, (uintptr_t)p);
    size_t n = e ? e->a * shim_page : 0;
    shim_unlock(&lock);
    return n;
}

bool large_interior(const void *p)
{
    bool in = false;
    shim_lock(&lock);
    for (size_t i = 0; i < objs.cap && !in; i++)
        if (objs.e[i].key) {
            const unsigned char *v = (const unsigned char *)objs.e[i].key;
            in = (const unsigned char *)p > v &&
                 (const unsigned char *)p < v + objs.e[i].a * shim_page;
        }
    shim_unlock(&lock);
    return in;
}

void *large_realloc(void *p, size_t n, bool *found)
{
    size_t np = pages_of(n ? n : 1);
    shim_lock(&lock);
    struct shim_map_ent *me = amap_get(&objs, (uintptr_t)p);
    *found = me != NULL;
    if (!me || np > SIZE_MAX / shim_page / 2) {
        shim_unlock(&lock);
        return NULL;
    }
    size_t old = (size_t)me->a;
    unsigned char *v = p;
    if (np <= old) { /* shrink: give the tail back */
        me->a = np;
        used -= old - np;
        shim_unlock(&lock);
        if (np < old)
            munmap(v + np * shim_page, (old - np) * shim_page);
        return p;
    }
    bool ok = take_pages(np - old);
    /* While the lock is dropped the pages may leave v, and another
     * thread's mmap may then get v and record its own object there (the
     * same key): mark this entry, and below drop only an entry that still
     * carries the mark. */
    uint64_t mark = ++move_seq;
    me->b = mark;
    shim_unlock(&lock);
    if (!ok)
        return NULL;
    unsigned char *w = grow_mapping(v, old * shim_page, np * shim_page);
    shim_lock(&lock);
    struct shim_map_ent *e = amap_get(&objs, (uintptr_t)v);
    bool mine = e && e->b == mark;
    if (!w) {
        used -= np - old;
        note_enomem_locked();
    } else if (w == v) {
        e->a = np; /* still mapped at v: nobody else can have v */
    } else {
        if (mine)
            amap_del(&objs, (uintptr_t)v, NULL, NULL);
        if (!amap_put(&objs, (uintptr_t)w, np, 0))
            shim_die("realloc: no memory to record a moved large object");
        moves++;
    }
    shim_unlock(&lock);
    return w;
}

/* ---- ENOMEM accounting ------------------------------------------------------ */

static void note_enomem_locked(void)
{
    if (atomic_fetch_add(&shim_enomem_count, 1) == 0)
        atomic_store(&live_at_enomem, small_live_bytes() + used * shim_page);
}

void shim_note_enomem(void)
{
    if (atomic_fetch_add(&shim_enomem_count, 1) == 0)
        atomic_store(&live_at_enomem,
                     small_live_bytes() + *(volatile size_t *)&used * shim_page);
}

/* ---- validation, statistics ------------------------------------------------- */

void large_check(void)
{
    shim_lock(&lock);
    size_t pages = 0;
    for (size_t i = 0; i < objs.cap; i++)
        if (objs.e[i].key) {
            if (objs.e[i].key % shim_page || !objs.e[i].a)
                shim_die("CATENA_CHECK: large object record corrupt");
            pages += objs.e[i].a;
        }
    if (pages != used || used > cap_pages)
        shim_die("CATENA_CHECK: large page counts disagree");
    shim_unlock(&lock);
}

void large_totals(struct large_totals *t)
{
    shim_lock(&lock);
    memset(t, 0, sizeof *t);
    t->objects = objs.n;
    t->pages = used;
    t->peak_pages = peak;
    t->pool_pages = shim_opt.arena ? cap_pages : 0;
    t->moves = moves;
    t->enomem = atomic_load(&shim_enomem_count);
    t->live_at_enomem = atomic_load(&live_at_enomem);
    shim_unlock(&lock);
}

/* ---- fork ------------------------------------------------------------------- */
/* The pages are private: the kernel makes them copy-on-write.  The lock
 * is held across fork only so that the child's table is consistent. */

void large_prepare_fork(void) { shim_lock(&lock); }
void large_parent_fork(void) { shim_unlock(&lock); }
void large_child_fork(void) { shim_lock_reset(&lock); }
