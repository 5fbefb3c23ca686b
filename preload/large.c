/*
 * large.c - objects at or above the large threshold.
 *
 * Physical memory is a memfd, cut into pages ("physical blocks").  A
 * large object is a list of extents (runs of memfd pages, anywhere in the
 * file) mapped MAP_SHARED|MAP_FIXED one after another into one reserved
 * virtual range: contiguous for the program, a chain for the pool.  So
 * the pool cannot fragment: an object needs free pages, not a free run,
 * and a fixed pool (CATENA_ARENA) fails only when fewer pages are free
 * than the object needs.  Freed pages are punched out of the file
 * (FALLOC_FL_PUNCH_HOLE): they go back to the kernel at once.
 *
 * Growing an object maps new pages after it, or moves the whole mapping
 * to a new range: the data stays in the file, so realloc never copies.
 *
 * Pages are tracked by a bitmap (1 = used); object records live in the
 * shim's metadata heap, found by their address in a map.  One lock.
 */
#define _FILE_OFFSET_BITS 64
#include "shim.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#ifndef MAP_FIXED_NOREPLACE
#define MAP_FIXED_NOREPLACE 0x100000
#endif

struct ext {
    size_t page, n; /* first memfd page, number of pages */
};

struct lobj {
    size_t npages;
    size_t next, cap; /* extents used / allocated */
    struct ext *ext;  /* &one, or an array in the metadata heap */
    struct ext one;
};

static shim_lock_t lock;
static int fd = -1;
static uint64_t *bm;          /* page bitmap */
static size_t cap_pages;      /* pool size in pages */
static size_t hw;             /* pages [0, hw) have been handed out */
static size_t used, peak;     /* pages */
static size_t cursor;         /* next-fit start (a word index) */
static struct shim_amap objs; /* address -> struct lobj * */
static int fork_pipe[2] = {-1, -1};
static atomic_size_t live_at_enomem;
atomic_size_t shim_enomem_count SHIM_HIDDEN;

static int memfd(void)
{
    /* glibc 2.27 has memfd_create(); older ones only the syscall. */
    return memfd_create("catena-pool", MFD_CLOEXEC);
}

bool large_init(void)
{
    size_t ps = shim_page;
    if (shim_opt.arena)
        cap_pages = (shim_opt.arena + ps - 1) / ps;
    else /* a sparse file: size costs nothing until pages are used */
        cap_pages = sizeof(void *) == 8 ? (size_t)1 << 28 : (size_t)1 << 18;
    fd = memfd();
    if (fd < 0)
        return false;
    while (ftruncate(fd, (off_t)cap_pages * (off_t)ps) != 0) {
        if (shim_opt.arena || cap_pages < 1024) {
            close(fd);
            fd = -1;
            return false;
        }
        cap_pages /= 2;
    }
    bm = mmap(NULL, (cap_pages + 63) / 64 * 8, PROT_READ | PROT_WRITE,
              MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (bm == MAP_FAILED) {
        bm = NULL;
        return false;
    }
    return true;
}

/* ---- the page bitmap ------------------------------------------------------ */

static bool bit(size_t i) { return bm[i / 64] >> (i % 64) & 1; }

static void set_run(size_t s, size_t n, bool on)
{
    for (size_t i = s; i < s + n; i++) {
        uint64_t m = (uint64_t)1 << (i % 64);
        bm[i / 64] = on ? bm[i / 64] | m : bm[i / 64] & ~m;
    }
    if (on) {
        used += n;
        if (used > peak)
            peak = used;
    } else {
        used -= n;
    }
}

/* First run of n free pages in [from, hw); SIZE_MAX if none. */
static size_t find_run(size_t from, size_t n)
{
    size_t run = 0, start = 0;
    for (size_t i = from; i < hw;) {
        if (i % 64 == 0 && i + 64 <= hw) {
            uint64_t w = bm[i / 64];
            if (w == ~(uint64_t)0) { /* 64 used pages: skip the word */
                run = 0;
                i += 64;
                continue;
            }
            if (w == 0) {
                if (!run)
                    start = i;
                run += 64;
                i += 64;
                if (run >= n)
                    return start;
                continue;
            }
        }
        if (bit(i))
            run = 0;
        else if (!run++)
            start = i;
        i++;
        if (run && run >= n)
            return start;
    }
    return SIZE_MAX;
}

/* Take n pages as extents into *out (count in *k, array from the metadata
 * heap when more than one).  One run when there is one; else the high
 * water mark moves; else, in a full pool, free runs are gathered in
 * address order — the chain.  false (nothing taken) when fewer than n
 * pages are free. */
static bool take_pages(size_t n, struct ext **out, size_t *k,
                       struct ext *one)
{
    if (cap_pages - used < n)
        return false;
    size_t s = SIZE_MAX;
    if (hw - used >= n) { /* enough free pages below the high water */
        s = find_run(cursor * 64 < hw ? cursor * 64 : 0, n);
        if (s == SIZE_MAX && cursor)
            s = find_run(0, n);
    }
    if (s == SIZE_MAX && hw + n <= cap_pages) {
        s = hw;
        hw += n;
    }
    if (s != SIZE_MAX) {
        set_run(s, n, true);
        cursor = (s + n) / 64;
        one->page = s;
        one->n = n;
        *out = one;
        *k = 1;
        return true;
    }
    /* Gather: count the runs first, so the array is allocated once. */
    size_t runs = 0, got = 0;
    for (size_t i = 0; i < cap_pages && got < n; i++)
        if (!bit(i)) {
            if (i == 0 || bit(i - 1))
                runs++;
            got++;
        }
    struct ext *e = meta_alloc(runs * sizeof *e);
    if (!e)
        return false;
    size_t j = 0;
    got = 0;
    for (size_t i = 0; i < cap_pages && got < n; i++)
        if (!bit(i)) {
            if (j == 0 || e[j - 1].page + e[j - 1].n != i)
                e[j++] = (struct ext){i, 0};
            e[j - 1].n++;
            got++;
        }
    for (size_t x = 0; x < j; x++) {
        set_run(e[x].page, e[x].n, true);
        if (e[x].page + e[x].n > hw)
            hw = e[x].page + e[x].n;
    }
    *out = e;
    *k = j;
    return true;
}

static void give_pages(size_t page, size_t n)
{
    /* The kernel frees the pages now; the file keeps its size. */
    fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
              (off_t)page * (off_t)shim_page, (off_t)n * (off_t)shim_page);
    set_run(page, n, false);
    if (page / 64 < cursor)
        cursor = page / 64;
}

/* Map extents e[0..k) at v, back to back.  noreplace: fail rather than
 * replace an existing mapping.  Returns false (and unmaps what it mapped,
 * when noreplace) on failure. */
static bool map_exts(unsigned char *v, const struct ext *e, size_t k,
                     bool noreplace)
{
    size_t off = 0;
    for (size_t i = 0; i < k; i++) {
        size_t len = e[i].n * shim_page;
        void *r = mmap(v + off, len, PROT_READ | PROT_WRITE,
                       MAP_SHARED | (noreplace ? MAP_FIXED_NOREPLACE : MAP_FIXED),
                       fd, (off_t)e[i].page * (off_t)shim_page);
        if (r != v + off) {
            if (r != MAP_FAILED)
                munmap(r, len);
            if (noreplace && off)
                munmap(v, off);
            return false;
        }
        off += len;
    }
    return true;
}

/* A PROT_NONE range of len bytes aligned to align (>= page). */
static unsigned char *reserve(size_t len, size_t align)
{
    size_t extra = align > shim_page ? align : 0;
    unsigned char *r = mmap(NULL, len + extra, PROT_NONE,
                            MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (r == MAP_FAILED)
        return NULL;
    if (!extra)
        return r;
    unsigned char *a =
        (unsigned char *)(((uintptr_t)r + align - 1) & ~(uintptr_t)(align - 1));
    if (a > r)
        munmap(r, (size_t)(a - r));
    if (a + len < r + len + extra)
        munmap(a + len, (size_t)(r + len + extra - (a + len)));
    return a;
}

static void release_exts(struct lobj *o)
{
    for (size_t i = 0; i < o->next; i++)
        give_pages(o->ext[i].page, o->ext[i].n);
    if (o->ext != &o->one)
        meta_free(o->ext);
}

static void note_enomem_locked(void);

void *large_alloc(size_t n, size_t align)
{
    size_t np = n / shim_page + (n % shim_page != 0);
    if (np == 0 || np > SIZE_MAX / shim_page / 2)
        return NULL;
    struct lobj *o = meta_alloc(sizeof *o);
    if (!o)
        return NULL;
    unsigned char *v = NULL;
    shim_lock(&lock);
    o->npages = np;
    if (!take_pages(np, &o->ext, &o->next, &o->one)) {
        note_enomem_locked();
        goto fail;
    }
    o->cap = o->next;
    v = reserve(np * shim_page, align);
    if (!v || !map_exts(v, o->ext, o->next, false) ||
        !amap_put(&objs, (uintptr_t)v, (uintptr_t)o, 0)) {
        if (v)
            munmap(v, np * shim_page);
        release_exts(o);
        goto fail;
    }
    shim_unlock(&lock);
    return v;
fail:
    shim_unlock(&lock);
    meta_free(o);
    return NULL;
}

int large_free(void *p)
{
    uint64_t a;
    shim_lock(&lock);
    if (!amap_del(&objs, (uintptr_t)p, &a, NULL)) {
        shim_unlock(&lock);
        return 0;
    }
    struct lobj *o = (struct lobj *)(uintptr_t)a;
    munmap(p, o->npages * shim_page);
    release_exts(o);
    shim_unlock(&lock);
    meta_free(o);
    return 1;
}

size_t large_size(const void *p)
{
    shim_lock(&lock);
    struct shim_map_ent *e = amap_get(&objs, (uintptr_t)p);
    size_t n = e ? ((struct lobj *)(uintptr_t)e->a)->npages * shim_page : 0;
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
            const struct lobj *o = (const struct lobj *)(uintptr_t)objs.e[i].a;
            in = (const unsigned char *)p > v &&
                 (const unsigned char *)p < v + o->npages * shim_page;
        }
    shim_unlock(&lock);
    return in;
}

/* Keep the first `keep` pages of o's extents; give the rest back. */
static void trim_exts(struct lobj *o, size_t keep)
{
    size_t seen = 0, i = 0;
    while (i < o->next && seen + o->ext[i].n <= keep)
        seen += o->ext[i++].n;
    /* extent i straddles (or starts at) the cut */
    if (keep > seen) {
        size_t stay = keep - seen;
        give_pages(o->ext[i].page + stay, o->ext[i].n - stay);
        o->ext[i].n = stay;
        i++;
    }
    for (size_t j = i; j < o->next; j++)
        give_pages(o->ext[j].page, o->ext[j].n);
    o->next = i;
    o->npages = keep;
}

static void shrink(unsigned char *v, struct lobj *o, size_t keep)
{
    munmap(v + keep * shim_page, (o->npages - keep) * shim_page);
    trim_exts(o, keep);
}

/* Append extents e[0..k) to o's list (merging a physically adjacent
 * first one).  false if the array cannot grow. */
static bool append(struct lobj *o, const struct ext *e, size_t k)
{
    size_t need = o->next + k;
    if (need > o->cap) {
        size_t cap = need * 2;
        struct ext *a = meta_alloc(cap * sizeof *a);
        if (!a)
            return false;
        memcpy(a, o->ext, o->next * sizeof *a);
        if (o->ext != &o->one)
            meta_free(o->ext);
        o->ext = a;
        o->cap = cap;
    }
    for (size_t i = 0; i < k; i++) {
        struct ext *last = &o->ext[o->next - 1];
        if (last->page + last->n == e[i].page)
            last->n += e[i].n;
        else
            o->ext[o->next++] = e[i];
    }
    return true;
}

void *large_realloc(void *p, size_t n, bool *found)
{
    size_t np = n / shim_page + (n % shim_page != 0);
    shim_lock(&lock);
    struct shim_map_ent *me = amap_get(&objs, (uintptr_t)p);
    *found = me != NULL;
    if (!me || np > SIZE_MAX / shim_page / 2) {
        shim_unlock(&lock);
        return NULL;
    }
    struct lobj *o = (struct lobj *)(uintptr_t)me->a;
    unsigned char *v = p;
    if (np <= o->npages) {
        if (np < o->npages)
            shrink(v, o, np ? np : 1);
        shim_unlock(&lock);
        return p;
    }
    size_t add = np - o->npages, k;
    struct ext one, *e;
    if (!take_pages(add, &e, &k, &one)) {
        note_enomem_locked();
        shim_unlock(&lock);
        return NULL;
    }
    size_t old = o->npages;
    bool ok = append(o, e, k);
    if (ok) {
        o->npages = np;
        /* In place when the addresses after it are free; else move the
         * mapping: the pages stay where they are, nothing is copied. */
        if (!map_exts(v + old * shim_page, e, k, true)) {
            unsigned char *w = reserve(np * shim_page, shim_page);
            if (w && map_exts(w, o->ext, o->next, false)) {
                munmap(v, old * shim_page);
                /* del then put: the put reuses the freed entry's room, so
                 * it does not need to grow the map and cannot fail */
                amap_del(&objs, (uintptr_t)v, NULL, NULL);
                amap_put(&objs, (uintptr_t)w, (uintptr_t)o, 0);
                v = w;
            } else {
                if (w)
                    munmap(w, np * shim_page);
                trim_exts(o, old); /* undo; nothing new was mapped */
                ok = false;
            }
        }
    } else {
        for (size_t i = 0; i < k; i++)
            give_pages(e[i].page, e[i].n);
    }
    if (e != &one)
        meta_free(e);
    shim_unlock(&lock);
    return ok ? v : NULL;
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
    size_t pages = 0, bits = 0;
    for (size_t i = 0; i < objs.cap; i++)
        if (objs.e[i].key) {
            const struct lobj *o = (const struct lobj *)(uintptr_t)objs.e[i].a;
            size_t n = 0;
            for (size_t j = 0; j < o->next; j++) {
                for (size_t q = 0; q < o->ext[j].n; q++)
                    if (!bit(o->ext[j].page + q))
                        shim_die("CATENA_CHECK: large object page not marked used");
                n += o->ext[j].n;
            }
            if (n != o->npages)
                shim_die("CATENA_CHECK: large object extents do not add up");
            pages += n;
        }
    for (size_t i = 0; i < (hw + 63) / 64; i++)
        bits += (size_t)__builtin_popcountll(bm[i]);
    if (pages != used || bits != used)
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
    for (size_t i = 0; i < objs.cap; i++)
        if (objs.e[i].key)
            t->mapped_extents += ((struct lobj *)(uintptr_t)objs.e[i].a)->next;
    t->enomem = atomic_load(&shim_enomem_count);
    t->live_at_enomem = atomic_load(&live_at_enomem);
    shim_unlock(&lock);
}

/* ---- fork ------------------------------------------------------------------- */
/* The child inherits MAP_SHARED mappings of the same memfd: without care,
 * parent and child would write each other's large objects.  So the child
 * copies every live large object into a memfd of its own and maps it over
 * the same addresses, while the parent waits (holding every allocator
 * lock, so no large object is freed or moved under the copy) until the
 * child closes its end of a pipe. */

void large_prepare_fork(void)
{
    shim_lock(&lock);
    if (objs.n && pipe2(fork_pipe, O_CLOEXEC) != 0)
        fork_pipe[0] = fork_pipe[1] = -1;
}

void large_parent_fork(void)
{
    if (fork_pipe[0] >= 0) {
        char c;
        close(fork_pipe[1]);
        while (read(fork_pipe[0], &c, 1) < 0 && errno == EINTR)
            ;
        close(fork_pipe[0]);
        fork_pipe[0] = fork_pipe[1] = -1;
    }
    shim_unlock(&lock);
}

/* Runs with every lock already reset (the child has one thread). */
void large_child_fork(void)
{
    if (fork_pipe[0] >= 0)
        close(fork_pipe[0]);
    if (fd < 0)
        goto done;
    int nfd = memfd();
    if (nfd < 0 || ftruncate(nfd, (off_t)cap_pages * (off_t)shim_page) != 0)
        shim_die("fork: cannot create the child's page pool");
    memset(bm, 0, (hw + 63) / 64 * 8);
    used = 0;
    size_t next = 0;
    for (size_t i = 0; i < objs.cap; i++) {
        if (!objs.e[i].key)
            continue;
        unsigned char *v = (unsigned char *)objs.e[i].key;
        struct lobj *o = (struct lobj *)(uintptr_t)objs.e[i].a;
        size_t len = o->npages * shim_page;
        void *tmp = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, nfd,
                         (off_t)next * (off_t)shim_page);
        if (tmp == MAP_FAILED)
            shim_die("fork: cannot map the child's copy");
        memcpy(tmp, v, len);
        if (mmap(v, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, nfd,
                 (off_t)next * (off_t)shim_page) != v)
            shim_die("fork: cannot remap a large object");
        munmap(tmp, len);
        if (o->ext != &o->one)
            meta_free(o->ext);
        o->one = (struct ext){next, o->npages};
        o->ext = &o->one;
        o->next = o->cap = 1;
        set_run(next, o->npages, true);
        next += o->npages;
    }
    close(fd);
    fd = nfd;
    hw = next;
    cursor = 0;
done:
    if (fork_pipe[1] >= 0)
        close(fork_pipe[1]); /* the parent may go on */
    fork_pipe[0] = fork_pipe[1] = -1;
    shim_lock_reset(&lock);
}
